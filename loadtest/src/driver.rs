//! One payment stream's driver: sends its share of the pre-signed transfers, keeps at most
//! `window` of them in flight, times every receipt, and rides out back-pressure.
//!
//! # Back-pressure
//!
//! When the node answers `RESOURCE_EXHAUSTED`, that transfer was not applied, so the sender's
//! later transfers already in flight will come back `BAD_NONCE`. Resending only the refused one
//! would break the nonce order, so the driver pauses: it sends nothing new, lets everything in
//! flight come back, sets aside the refused transfer and every `BAD_NONCE` of the same senders,
//! waits a growing back-off, then resends the set-aside transfers in plan order (which is nonce
//! order per sender) before any fresh one. A call that ends early (the node restarting, or
//! refusing the stream) is handled the same way on a new call: what was in flight is resent,
//! and the node answers an already accepted one with its original receipt.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rollup_client::proto::submit_request::Tx;
use rollup_client::proto::SubmitRequest;
use rollup_client::{
    AccountIndex, Client, Error, Outcome, Receipt, SendPermit, StreamReceiver, StreamSender,
    Transaction, RESOURCE_EXHAUSTED,
};
use tokio_util::sync::CancellationToken;

use crate::plan::Planned;

/// Shortest and longest pause after back-pressure.
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Calls in a row that may fail without a single receipt before the stream gives up.
const MAX_RECONNECTS: u32 = 5;

/// How far a paced stream may fall behind and then catch up in a burst.
const MAX_CATCH_UP: Duration = Duration::from_millis(20);

/// The reason code of a transfer whose nonce is not the account's next one.
const BAD_NONCE: &str = "BAD_NONCE";

/// Reason code of a transfer the node could not take because it is stopping: not applied, so
/// it is set aside and resent like back-pressure.
const UNAVAILABLE: &str = "UNAVAILABLE";

/// Reason code counted for a receipt the SDK could not read.
const INVALID_RECEIPT: &str = "INVALID_RECEIPT";

/// The timed phase: transfers first sent before `measure_from` are warm-up and not counted;
/// nothing new is sent from `stop_at` on.
#[derive(Clone, Copy)]
pub struct Timeline {
    pub start: Instant,
    pub measure_from: Instant,
    pub stop_at: Instant,
}

/// How a stream sends.
#[derive(Clone, Copy)]
pub struct Settings {
    /// Transfers in flight (sent, no receipt yet) at most.
    pub window: usize,
    /// Target transfers per second on this stream; unlimited if `None`.
    pub rate: Option<f64>,
    /// How long to wait for receipts once sending stopped.
    pub drain_timeout: Duration,
}

/// Counters shared with the progress display.
#[derive(Default)]
pub struct Live {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub backpressure: AtomicU64,
}

/// What one stream measured. Only transfers first sent inside the measured window count in
/// `accepted`, `rejected` and `latency_us`.
pub struct StreamStats {
    pub accepted: u64,
    /// Accepted receipts that answered a resend of an already accepted transfer.
    pub duplicates: u64,
    pub rejected: HashMap<String, u64>,
    /// Receipt latency (first send to final receipt) in microseconds.
    pub latency_us: Histogram<u64>,
    /// Requests written to the stream, resends included.
    pub sent: u64,
    /// `RESOURCE_EXHAUSTED` (or `UNAVAILABLE`) answers, each one resent later.
    pub backpressure: u64,
    pub reconnects: u64,
    /// In flight when the drain timed out or the stream broke after the end.
    pub unanswered: u64,
    /// Set aside for a resend when the run ended.
    pub abandoned: u64,
    /// Receipts whose tx id was not the one sent at that position.
    pub mismatched: u64,
    /// When the last counted receipt arrived.
    pub last_receipt: Option<Instant>,
    /// The pre-signed supply of this stream ran out before the end.
    pub exhausted: bool,
    /// Why the stream stopped early, if it did.
    pub error: Option<String>,
}

impl StreamStats {
    pub fn new() -> StreamStats {
        StreamStats {
            accepted: 0,
            duplicates: 0,
            rejected: HashMap::new(),
            // 1 us to 1 h at 3 significant digits; saturating_record clamps anything longer.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant histogram bounds are valid"),
            sent: 0,
            backpressure: 0,
            reconnects: 0,
            unanswered: 0,
            abandoned: 0,
            mismatched: 0,
            last_receipt: None,
            exhausted: false,
            error: None,
        }
    }
}

/// Sends `txs` over payment streams of `client` until the timeline's end, the supply runs
/// out, or `stop` is cancelled (which it cancels itself when its supply runs out).
pub async fn drive(
    id: usize,
    client: Client,
    txs: Vec<Planned>,
    settings: Settings,
    timeline: Timeline,
    live: &Live,
    stop: CancellationToken,
) -> StreamStats {
    let mut driver = Driver {
        id,
        txs: &txs,
        settings,
        timeline,
        live,
        stop: &stop,
        next: 0,
        retry: BTreeMap::new(),
        in_flight: VecDeque::with_capacity(settings.window),
        stalled: HashSet::new(),
        pause_until: None,
        backoff: MIN_BACKOFF,
        pacer: settings.rate.map(|rate| Pacer::new(rate, timeline.start)),
        stopping: false,
        drain_deadline: timeline.stop_at + settings.drain_timeout,
        receipts_this_call: 0,
        stats: StreamStats::new(),
    };
    let mut failures = 0;
    loop {
        driver.receipts_this_call = 0;
        let result = match client.open_stream().await {
            Ok(stream) => {
                let (sender, receiver) = stream.split();
                driver.run_call(&sender, receiver).await
            }
            Err(e) => Err(e),
        };
        let Err(e) = result else { break };
        if driver.stopping {
            // Time is up: what the broken call had in flight stays unanswered.
            driver.stats.unanswered += driver.in_flight.len() as u64;
            driver.in_flight.clear();
            break;
        }
        driver.requeue_in_flight();
        failures = if driver.receipts_this_call > 0 {
            1
        } else {
            failures + 1
        };
        if !e.is_retryable() || failures > MAX_RECONNECTS {
            driver.stats.error = Some(format!("stream {id}: {e}"));
            break;
        }
        tracing::warn!(
            "stream {id}: the call ended ({e}); resending {} in {:?}",
            driver.retry.len(),
            driver.backoff
        );
        driver.stats.reconnects += 1;
        tokio::time::sleep(driver.backoff).await;
        driver.backoff = (driver.backoff * 2).min(MAX_BACKOFF);
        driver.resume();
    }
    driver.stats.abandoned = driver.retry.len() as u64;
    driver.stats
}

struct Driver<'a> {
    id: usize,
    txs: &'a [Planned],
    settings: Settings,
    timeline: Timeline,
    live: &'a Live,
    stop: &'a CancellationToken,
    /// The next fresh transfer.
    next: usize,
    /// Transfers set aside for a resend (plan index -> first send), resent in plan order.
    retry: BTreeMap<usize, Instant>,
    /// Sent, no receipt yet, in send order (receipts come back in this order).
    in_flight: VecDeque<(usize, Instant)>,
    /// Senders with a transfer set aside during the current pause.
    stalled: HashSet<AccountIndex>,
    /// Paused after back-pressure: no sends until everything in flight is back and this passed.
    pause_until: Option<Instant>,
    backoff: Duration,
    pacer: Option<Pacer>,
    stopping: bool,
    drain_deadline: Instant,
    receipts_this_call: u64,
    stats: StreamStats,
}

impl Driver<'_> {
    /// One gRPC call. `Ok` when the run is over and drained; `Err` if the call ended early.
    async fn run_call(
        &mut self,
        sender: &StreamSender,
        mut receiver: StreamReceiver,
    ) -> Result<(), Error> {
        loop {
            let now = Instant::now();
            if !self.stopping && (now >= self.timeline.stop_at || self.stop.is_cancelled()) {
                self.begin_stop(now);
            }
            if !self.stopping
                && self.next == self.txs.len()
                && self.retry.is_empty()
                && self.in_flight.is_empty()
            {
                // Everything was sent and answered: the supply ran out before the time did.
                tracing::warn!("stream {}: the pre-signed supply ran out", self.id);
                self.stats.exhausted = true;
                self.stop.cancel();
                self.begin_stop(now);
            }
            if self.stopping && (self.in_flight.is_empty() || now >= self.drain_deadline) {
                self.stats.unanswered += self.in_flight.len() as u64;
                self.in_flight.clear();
                return Ok(());
            }
            if let Some(until) = self.pause_until {
                if self.in_flight.is_empty() && now >= until {
                    self.resume();
                }
            }
            let has_next = !self.retry.is_empty() || self.next < self.txs.len();
            let can_send = !self.stopping
                && self.pause_until.is_none()
                && self.in_flight.len() < self.settings.window
                && has_next;
            let send_at = self.pacer.as_ref().map_or(now, |p| p.next_at);

            // The next moment something is due without a receipt arriving.
            let mut wake = if self.stopping {
                self.drain_deadline
            } else {
                self.timeline.stop_at
            };
            if let Some(until) = self.pause_until {
                if self.in_flight.is_empty() {
                    wake = wake.min(until);
                }
            }
            if can_send && send_at > now {
                wake = wake.min(send_at);
            }

            tokio::select! {
                biased;
                receipt = receiver.next_receipt() => match receipt {
                    Ok(Some(receipt)) => self.on_receipt(receipt)?,
                    Ok(None) => return Err(Error::StreamClosed),
                    // An unreadable receipt still answers the next request in line.
                    Err(Error::Protocol { detail, .. }) => self.on_invalid_receipt(&detail)?,
                    Err(e) => return Err(e),
                },
                _ = self.stop.cancelled(), if !self.stopping => {}
                permit = sender.reserve(), if can_send && send_at <= now => self.send(permit?),
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    fn send(&mut self, permit: SendPermit<'_>) {
        let now = Instant::now();
        let (index, first_sent) = match self.retry.pop_first() {
            Some(resend) => resend,
            None => {
                self.next += 1;
                (self.next - 1, now)
            }
        };
        let raw = Transaction::Transfer(self.txs[index].tx).encode();
        permit.send_request(SubmitRequest {
            tx: Some(Tx::Raw(raw)),
            work_nonce: 0,
        });
        self.in_flight.push_back((index, first_sent));
        self.stats.sent += 1;
        if let Some(pacer) = &mut self.pacer {
            pacer.advance(now);
        }
    }

    fn on_receipt(&mut self, receipt: Receipt) -> Result<(), Error> {
        let (index, first_sent) = self.answered()?;
        let planned = &self.txs[index];
        if receipt.tx_id.is_some_and(|id| id != planned.id) {
            if self.stats.mismatched == 0 {
                tracing::warn!(
                    "stream {}: a receipt's tx id is not the one sent at its position",
                    self.id
                );
            }
            self.stats.mismatched += 1;
        }
        match &receipt.outcome {
            Outcome::Accepted => {
                self.backoff = MIN_BACKOFF;
                self.live.accepted.fetch_add(1, Ordering::Relaxed);
                if self.counted(first_sent) {
                    self.stats.accepted += 1;
                    self.stats.duplicates += u64::from(receipt.duplicate);
                    self.record_latency(first_sent);
                }
            }
            Outcome::Rejected { reason_code, .. }
                if reason_code == RESOURCE_EXHAUSTED || reason_code == UNAVAILABLE =>
            {
                self.stats.backpressure += 1;
                self.live.backpressure.fetch_add(1, Ordering::Relaxed);
                self.set_aside(index, first_sent);
                if self.pause_until.is_none() {
                    self.pause_until = Some(Instant::now() + self.backoff);
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
            Outcome::Rejected { reason_code, .. }
                if reason_code == BAD_NONCE && self.stalled.contains(&planned.tx.from) =>
            {
                // Follows a refused transfer of the same sender: resent after it.
                self.set_aside(index, first_sent);
            }
            Outcome::Rejected { reason_code, .. } => {
                let code = reason_code.clone();
                self.reject(code, first_sent);
            }
        }
        Ok(())
    }

    fn on_invalid_receipt(&mut self, detail: &str) -> Result<(), Error> {
        tracing::warn!("stream {}: invalid receipt: {detail}", self.id);
        let (_, first_sent) = self.answered()?;
        self.reject(INVALID_RECEIPT.to_owned(), first_sent);
        Ok(())
    }

    /// The request a receipt answers: the oldest one in flight.
    fn answered(&mut self) -> Result<(usize, Instant), Error> {
        self.receipts_this_call += 1;
        self.in_flight.pop_front().ok_or_else(|| Error::Protocol {
            what: "receipt",
            detail: "more receipts than requests on the stream".into(),
        })
    }

    fn reject(&mut self, code: String, first_sent: Instant) {
        self.live.rejected.fetch_add(1, Ordering::Relaxed);
        if self.counted(first_sent) {
            *self.stats.rejected.entry(code).or_default() += 1;
            self.record_latency(first_sent);
        }
    }

    fn set_aside(&mut self, index: usize, first_sent: Instant) {
        self.retry.insert(index, first_sent);
        self.stalled.insert(self.txs[index].tx.from);
    }

    /// Whether a transfer belongs to the measured window (warm-up ones do not).
    fn counted(&self, first_sent: Instant) -> bool {
        first_sent >= self.timeline.measure_from
    }

    fn record_latency(&mut self, first_sent: Instant) {
        let now = Instant::now();
        let micros = u64::try_from(now.duration_since(first_sent).as_micros()).unwrap_or(u64::MAX);
        self.stats.latency_us.saturating_record(micros.max(1));
        self.stats.last_receipt = Some(now);
    }

    fn begin_stop(&mut self, now: Instant) {
        self.stopping = true;
        self.drain_deadline = now + self.settings.drain_timeout;
    }

    /// Ends a pause: the set-aside transfers go out next, in plan order.
    fn resume(&mut self) {
        self.pause_until = None;
        self.stalled.clear();
    }

    /// After a broken call: everything in flight is resent (duplicates of accepted ones get
    /// their original receipt).
    fn requeue_in_flight(&mut self) {
        for (index, first_sent) in self.in_flight.drain(..) {
            self.retry.insert(index, first_sent);
        }
        self.pause_until = None;
        self.stalled.clear();
    }
}

/// Spaces sends evenly at a target rate.
struct Pacer {
    interval: Duration,
    next_at: Instant,
}

impl Pacer {
    fn new(rate: f64, start: Instant) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate.max(1e-3)),
            next_at: start,
        }
    }

    fn advance(&mut self, now: Instant) {
        self.next_at += self.interval;
        // A stream held back (full window, pause) catches up only a little, rather than
        // bursting everything it missed and distorting the latency it measures.
        if let Some(floor) = now.checked_sub(MAX_CATCH_UP) {
            self.next_at = self.next_at.max(floor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::Agent;
    use crate::plan::{self, Shape};
    use crate::stub_node::{self, Trouble, STUB_DOMAIN};
    use indicatif::ProgressBar;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rollup_client::{Amount, SecretKey, Timestamp};
    use std::sync::Arc;

    /// Runs `agents` agents with `per_agent` transfers each over `streams` streams against
    /// the node at `endpoint` until the supply runs out.
    async fn run_until_exhausted(
        endpoint: &str,
        agents: u32,
        streams: usize,
        per_agent: u64,
    ) -> Vec<StreamStats> {
        let mut rng = StdRng::seed_from_u64(7);
        let agents: Vec<Agent> = (1..=agents)
            .map(|i| Agent {
                key: SecretKey::random(&mut rng),
                index: AccountIndex(i),
            })
            .collect();
        let shape = Shape {
            per_agent,
            max_amount: 10,
            fee: Amount::ZERO,
            valid_until: Timestamp::new(2_000_000_000).unwrap(),
            seed: 1,
        };
        let plans = plan::presign(
            &agents,
            streams,
            shape,
            &STUB_DOMAIN,
            &ProgressBar::hidden(),
        );
        let start = Instant::now();
        let timeline = Timeline {
            start,
            measure_from: start,
            stop_at: start + Duration::from_secs(60),
        };
        let settings = Settings {
            window: 32,
            rate: None,
            drain_timeout: Duration::from_secs(10),
        };
        let live = Arc::new(Live::default());
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for (id, txs) in plans.into_iter().enumerate() {
            let client = Client::connect(endpoint).await.unwrap();
            let (live, stop) = (live.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                drive(id, client, txs, settings, timeline, &live, stop).await
            }));
        }
        let mut stats = Vec::new();
        for task in tasks {
            stats.push(task.await.unwrap());
        }
        stats
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn back_pressure_is_resent_in_nonce_order_until_everything_is_accepted() {
        let trouble = Trouble {
            refuse_every: Some(13),
            ..Trouble::default()
        };
        let (endpoint, ledger) = stub_node::start(trouble).await;
        let stats = run_until_exhausted(&endpoint, 20, 1, 30).await;
        let s = &stats[0];
        assert_eq!(s.accepted, 20 * 30);
        assert!(s.backpressure > 0);
        assert!(
            s.rejected.is_empty(),
            "no rejection counted: {:?}",
            s.rejected
        );
        assert!(s.error.is_none() && s.exhausted);
        assert_eq!((s.abandoned, s.unanswered, s.mismatched), (0, 0, 0));
        assert_eq!(s.latency_us.len(), s.accepted);
        let ledger = ledger.lock().unwrap();
        assert_eq!(ledger.accepted.len(), 20 * 30);
        assert!(ledger.nonces.values().all(|&n| n == 30));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_stop_together_and_count_each_accepted_transfer_once() {
        let trouble = Trouble {
            refuse_every: Some(7),
            ..Trouble::default()
        };
        let (endpoint, ledger) = stub_node::start(trouble).await;
        let stats = run_until_exhausted(&endpoint, 20, 3, 30).await;
        // The first stream to run out stops the others (the load would no longer be the one
        // asked for); whatever they had set aside is reported, never counted as a rejection.
        assert!(stats.iter().any(|s| s.exhausted));
        let accepted: u64 = stats.iter().map(|s| s.accepted).sum();
        assert_eq!(accepted, ledger.lock().unwrap().accepted.len() as u64);
        for s in &stats {
            assert!(
                s.rejected.is_empty(),
                "no rejection counted: {:?}",
                s.rejected
            );
            assert!(s.error.is_none());
            assert_eq!((s.unanswered, s.mismatched, s.duplicates), (0, 0, 0));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_call_is_resumed_on_a_new_one_without_double_counting() {
        let trouble = Trouble {
            break_first_call_after: Some(50),
            ..Trouble::default()
        };
        let (endpoint, ledger) = stub_node::start(trouble).await;
        let stats = run_until_exhausted(&endpoint, 10, 1, 20).await;
        let s = &stats[0];
        assert!(s.error.is_none(), "{:?}", s.error);
        assert_eq!(s.reconnects, 1);
        assert_eq!(s.accepted, 200);
        // Applied by the broken call but never answered: answered again as duplicates.
        assert_eq!(s.duplicates, 4);
        assert!(s.rejected.is_empty(), "{:?}", s.rejected);
        assert_eq!(ledger.lock().unwrap().accepted.len(), 200);
    }

    #[test]
    fn pacer_spaces_sends_and_limits_catch_up() {
        let start = Instant::now();
        let mut pacer = Pacer::new(1000.0, start);
        pacer.advance(start);
        assert_eq!(pacer.next_at, start + Duration::from_millis(1));
        // Held back for a second: it may burst at most MAX_CATCH_UP worth.
        let late = start + Duration::from_secs(1);
        pacer.advance(late);
        assert_eq!(pacer.next_at, late - MAX_CATCH_UP);
    }
}
