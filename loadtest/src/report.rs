//! The result of a run: per-stream figures merged, printed for people or as one JSON object.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use serde::Serialize;

use crate::ceiling::Ceiling;
use crate::driver::StreamStats;

/// The run's parameters, echoed in the report.
#[derive(Serialize)]
pub struct RunInfo {
    pub endpoint: String,
    pub agents: u32,
    pub streams: usize,
    pub window: usize,
    pub target_rate: Option<u64>,
    pub warmup_s: f64,
    pub presigned: u64,
}

/// What a run measured. The first seven fields are the stable interface for scripts.
#[derive(Serialize)]
pub struct Report {
    /// Transfers accepted (first sent in the measured window).
    pub accepted: u64,
    /// Transfers rejected, for any reason but back-pressure (which is retried).
    pub rejected: u64,
    /// Accepted transfers per second over `duration_s`.
    pub tps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// From the start of the measured window to its last receipt.
    pub duration_s: f64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub duplicates: u64,
    pub backpressure_retries: u64,
    pub reconnects: u64,
    pub unanswered: u64,
    pub abandoned: u64,
    pub mismatched_receipts: u64,
    pub sent: u64,
    /// The pre-signed supply ran out before the requested duration.
    pub supply_exhausted: bool,
    /// Ctrl-C ended the run early.
    pub interrupted: bool,
    pub errors: Vec<String>,
    /// Transfers per second this machine verifies on all cores (`--ceiling-seconds`): the
    /// higher of the measurements before and after the load, `null` if disabled. Whatever
    /// else runs on the machine during a measurement (a neighbour on the VM's host, an
    /// autovacuum) only lowers it, and a lowered ceiling inflates the ratio; the higher of two
    /// measurements half a minute apart is the better estimate of what the cores can do.
    pub ceiling_tps: Option<f64>,
    /// The measurement before the load and the one after it (`null` if skipped:
    /// `--ceiling-after false`, or a run interrupted by Ctrl-C).
    pub ceiling_before_tps: Option<f64>,
    pub ceiling_after_tps: Option<f64>,
    /// `tps / ceiling_tps`: the share of the verification ceiling the node sustained.
    pub ratio: Option<f64>,
    /// Threads and seconds of each ceiling measurement.
    pub ceiling_threads: Option<usize>,
    pub ceiling_s: Option<f64>,
    #[serde(flatten)]
    pub run: RunInfo,
}

impl Report {
    /// Merges the streams' figures; the window is `measure_from` to the last counted receipt
    /// (or `fallback_end` if none came).
    pub fn new(
        run: RunInfo,
        streams: Vec<StreamStats>,
        measure_from: Instant,
        fallback_end: Instant,
    ) -> Report {
        let mut merged = StreamStats::new();
        let mut rejected_by_reason = BTreeMap::new();
        let mut errors = Vec::new();
        for s in streams {
            merged.accepted += s.accepted;
            merged.duplicates += s.duplicates;
            merged.sent += s.sent;
            merged.backpressure += s.backpressure;
            merged.reconnects += s.reconnects;
            merged.unanswered += s.unanswered;
            merged.abandoned += s.abandoned;
            merged.mismatched += s.mismatched;
            merged.exhausted |= s.exhausted;
            merged.last_receipt = merged.last_receipt.max(s.last_receipt);
            // Same bounds on both sides, so adding cannot fail.
            let _ = merged.latency_us.add(&s.latency_us);
            for (code, n) in s.rejected {
                *rejected_by_reason.entry(code).or_insert(0) += n;
            }
            errors.extend(s.error);
        }
        let end = merged.last_receipt.unwrap_or(fallback_end);
        let duration_s = end.saturating_duration_since(measure_from).as_secs_f64();
        let h = &merged.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let quantile = |q: f64| {
            if h.is_empty() {
                0.0
            } else {
                ms(h.value_at_quantile(q))
            }
        };
        Report {
            accepted: merged.accepted,
            rejected: rejected_by_reason.values().sum(),
            tps: if duration_s > 0.0 {
                merged.accepted as f64 / duration_s
            } else {
                0.0
            },
            p50_ms: quantile(0.50),
            p90_ms: quantile(0.90),
            p99_ms: quantile(0.99),
            max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
            mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            duration_s,
            rejected_by_reason,
            duplicates: merged.duplicates,
            backpressure_retries: merged.backpressure,
            reconnects: merged.reconnects,
            unanswered: merged.unanswered,
            abandoned: merged.abandoned,
            mismatched_receipts: merged.mismatched,
            sent: merged.sent,
            supply_exhausted: merged.exhausted,
            interrupted: false,
            errors,
            ceiling_tps: None,
            ceiling_before_tps: None,
            ceiling_after_tps: None,
            ratio: None,
            ceiling_threads: None,
            ceiling_s: None,
            run,
        }
    }

    /// Records the verification ceiling measured before the load and, if it was, after it,
    /// and the run's ratio to the higher of the two.
    pub fn set_ceiling(&mut self, before: Option<Ceiling>, after: Option<Ceiling>) {
        let best = match (before, after) {
            (Some(b), Some(a)) => Some(if a.tps > b.tps { a } else { b }),
            (b, a) => b.or(a),
        };
        self.ceiling_tps = best.map(|c| c.tps);
        self.ceiling_before_tps = before.map(|c| c.tps);
        self.ceiling_after_tps = after.map(|c| c.tps);
        self.ratio = best.filter(|c| c.tps > 0.0).map(|c| self.tps / c.tps);
        self.ceiling_threads = best.map(|c| c.threads);
        self.ceiling_s = best.map(|c| c.seconds);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self
            .run
            .target_rate
            .map_or("unlimited".to_owned(), |r| format!("{r} tx/s"));
        writeln!(
            f,
            "{} agents on {} streams (window {}), target rate {rate}, {:.1} s measured after {:.0} s warm-up, against {}",
            self.run.agents,
            self.run.streams,
            self.run.window,
            self.duration_s,
            self.run.warmup_s,
            self.run.endpoint
        )?;
        writeln!(f, "accepted       {} ({:.0} tx/s)", self.accepted, self.tps)?;
        write!(f, "rejected       {}", self.rejected)?;
        if !self.rejected_by_reason.is_empty() {
            let reasons: Vec<String> = self
                .rejected_by_reason
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect();
            write!(f, " ({})", reasons.join(", "))?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "latency ms     p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (mean {:.2})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.mean_ms
        )?;
        write!(
            f,
            "back-pressure  {} retried, {} reconnects",
            self.backpressure_retries, self.reconnects
        )?;
        if let (Some(ceiling), Some(ratio)) = (self.ceiling_tps, self.ratio) {
            let when = match (self.ceiling_before_tps, self.ceiling_after_tps) {
                (Some(b), Some(a)) => {
                    format!("the higher of {b:.0} before and {a:.0} after the load")
                }
                (Some(_), None) => "before the load".to_owned(),
                _ => "after the load".to_owned(),
            };
            write!(
                f,
                "\nceiling        {ceiling:.0} verifications/s on {} threads ({:.1} s each, {when}); ratio {ratio:.2}",
                self.ceiling_threads.unwrap_or(0),
                self.ceiling_s.unwrap_or(0.0),
            )?;
        }
        if self.duplicates > 0 {
            write!(
                f,
                "\nduplicates     {} (resends answered with the original receipt)",
                self.duplicates
            )?;
        }
        if self.unanswered + self.abandoned > 0 {
            write!(
                f,
                "\nunfinished     {} without a receipt at the end, {} set aside for a resend",
                self.unanswered, self.abandoned
            )?;
        }
        if self.mismatched_receipts > 0 {
            write!(
                f,
                "\nWARNING        {} receipts did not answer the request at their position",
                self.mismatched_receipts
            )?;
        }
        if self.supply_exhausted {
            write!(
                f,
                "\nNOTE           the {} pre-signed transfers ran out: the run stopped early (raise --max-presigned)",
                self.run.presigned
            )?;
        }
        if self.interrupted {
            write!(f, "\nNOTE           interrupted: the run ended early")?;
        }
        for e in &self.errors {
            write!(f, "\nERROR          {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run() -> RunInfo {
        RunInfo {
            endpoint: "http://127.0.0.1:50051".into(),
            agents: 10,
            streams: 2,
            window: 512,
            target_rate: None,
            warmup_s: 0.0,
            presigned: 100,
        }
    }

    #[test]
    fn merges_streams_and_reports_the_required_keys() {
        let start = Instant::now();
        let mut a = StreamStats::new();
        a.accepted = 30;
        for ms in 1..=30 {
            a.latency_us.record(ms * 1000).unwrap();
        }
        a.rejected.insert("BAD_NONCE".into(), 2);
        a.last_receipt = Some(start + Duration::from_secs(2));
        let mut b = StreamStats::new();
        b.accepted = 10;
        b.latency_us.record(100_000).unwrap();
        b.rejected.insert("BAD_NONCE".into(), 1);
        b.rejected.insert("EXPIRED".into(), 4);
        b.last_receipt = Some(start + Duration::from_secs(1));

        let report = Report::new(run(), vec![a, b], start, start);
        assert_eq!(report.accepted, 40);
        assert_eq!(report.rejected, 7);
        assert!((report.duration_s - 2.0).abs() < 1e-9);
        assert!((report.tps - 20.0).abs() < 1e-9);
        assert!((report.max_ms - 100.0).abs() < 0.1);
        assert!(report.p50_ms > 10.0 && report.p50_ms < 20.0);

        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "accepted",
            "rejected",
            "tps",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms",
            "duration_s",
            "rejected_by_reason",
            "agents",
            "streams",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["rejected_by_reason"]["BAD_NONCE"], 3);
        // No ceiling measured: the keys are there, null.
        assert!(
            json["ceiling_tps"].is_null() && json["ratio"].is_null(),
            "{json}"
        );
        let text = report.to_string();
        assert!(text.contains("BAD_NONCE 3, EXPIRED 4"), "{text}");
        assert!(!text.contains("ceiling"), "{text}");
    }

    #[test]
    fn the_ratio_is_the_throughput_over_the_ceiling() {
        let start = Instant::now();
        let mut a = StreamStats::new();
        a.accepted = 1000;
        a.last_receipt = Some(start + Duration::from_secs(1));
        let mut report = Report::new(run(), vec![a], start, start);
        let ceiling = |tps: f64| Ceiling {
            tps,
            threads: 2,
            verified: (tps * 3.0) as u64,
            seconds: 3.0,
        };
        report.set_ceiling(Some(ceiling(4000.0)), None);
        assert_eq!(report.ceiling_tps, Some(4000.0));
        assert!((report.ratio.unwrap() - 0.25).abs() < 1e-9);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ceiling_tps"], 4000.0);
        assert_eq!(json["ceiling_before_tps"], 4000.0);
        assert!(json["ceiling_after_tps"].is_null(), "{json}");
        assert_eq!(json["ratio"], 0.25);
        assert_eq!(json["accepted"], 1000, "the existing keys stay");
        let text = report.to_string();
        assert!(
            text.contains("ceiling        4000 verifications/s on 2 threads (3.0 s each, before the load); ratio 0.25"),
            "{text}"
        );

        // Measured on both sides of the load: the ratio is to the higher, whichever side.
        for (before, after) in [(4000.0, 5000.0), (5000.0, 4000.0)] {
            report.set_ceiling(Some(ceiling(before)), Some(ceiling(after)));
            assert_eq!(report.ceiling_tps, Some(5000.0));
            assert_eq!(report.ceiling_before_tps, Some(before));
            assert_eq!(report.ceiling_after_tps, Some(after));
            assert!((report.ratio.unwrap() - 0.2).abs() < 1e-9);
        }
        let text = report.to_string();
        assert!(
            text.contains("5000 verifications/s on 2 threads (3.0 s each, the higher of 5000 before and 4000 after the load); ratio 0.20"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_run_reports_zeros() {
        let start = Instant::now();
        let report = Report::new(run(), vec![StreamStats::new()], start, start);
        assert_eq!(report.tps, 0.0);
        assert_eq!(report.p99_ms, 0.0);
        assert!(serde_json::to_string(&report).is_ok());
    }
}
