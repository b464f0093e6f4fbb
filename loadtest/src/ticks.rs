//! `--ticks`: the tick relay under load (issue 14's node goal: 100,000 ticks a second from
//! 1,000 agents, p99 acknowledgement under 5 ms at half load).
//!
//! Every agent opens one payment stream to the next agent (needs a devnet node with
//! `--experimental-streams`), then the agents tick over `--streams` `SendTicks` calls, each
//! carrying the ticks of `agents / streams` agents in round robin. With `--rate` the ticks are
//! sent on a schedule (open loop) and latency is measured from each tick's scheduled time, so
//! a slow node shows as latency rather than as a slower schedule; without it, each call keeps
//! `--window` ticks in flight and latency is from the send. Ticks are made on the fly (one
//! hash each, as a payer would). With `--tick-tree` the streams commit tick trees (SPEC 18.8):
//! a tick carries the siblings the relay lacks after the one before it on the same call
//! (ticks of a call are checked in order, and an honest run refuses none).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt, TryStreamExt};
use rollup_client::ticks::{PayerStream, StreamTerms};
use rollup_client::{Amount, Client};
use tokio::sync::{Mutex, Semaphore};

use crate::agents;
use crate::progress;
use crate::x402::Latency;

pub struct TickArgs {
    pub endpoint: String,
    pub agents: u32,
    pub calls: u32,
    pub seconds: u64,
    pub warmup: u64,
    pub rate: Option<u64>,
    pub window: u64,
    /// Tick trees instead of hash chains.
    pub tree: bool,
}

#[derive(serde::Serialize)]
pub struct TickReport {
    pub mode: &'static str,
    pub agents: u32,
    pub calls: u32,
    pub seconds: f64,
    /// The scheduled rate (ticks per second), or none (closed loop).
    pub target_tps: Option<u64>,
    pub sent: u64,
    pub accepted: u64,
    /// Refused ticks by reason (an honest run has none).
    pub refused: BTreeMap<String, u64>,
    /// Accepted ticks per second over the measured window.
    pub accepted_per_second: f64,
    pub latency_ms: Latency,
    #[serde(skip)]
    pub errors: Vec<String>,
}

impl std::fmt::Display for TickReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.latency_ms;
        writeln!(
            f,
            "ticks: {} agents over {} calls: {} sent, {} accepted, {:.0}/s over {:.1} s (target {})",
            self.agents,
            self.calls,
            self.sent,
            self.accepted,
            self.accepted_per_second,
            self.seconds,
            self.target_tps
                .map_or("as fast as acknowledged".to_string(), |t| format!("{t}/s"))
        )?;
        writeln!(
            f,
            "ack latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            l.p50, l.p90, l.p99, l.p999, l.max
        )?;
        if !self.refused.is_empty() {
            writeln!(f, "refused: {:?}", self.refused)?;
        }
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        Ok(())
    }
}

/// What one call's receiver measured.
struct Tally {
    accepted: u64,
    refused: BTreeMap<String, u64>,
    histogram: hdrhistogram::Histogram<u64>,
}

pub async fn run(args: TickArgs) -> anyhow::Result<TickReport> {
    let client = Client::connect(&args.endpoint).await?;
    if !client.connected_status().devnet {
        bail!("the node is not a devnet node (start it with --devnet --experimental-streams)");
    }
    let calls = args.calls.clamp(1, args.agents);
    // Enough ticks per stream for the whole run at the target (or a generous guess).
    let per_second = args.rate.unwrap_or(200_000);
    let max_ticks = (per_second * (args.seconds + args.warmup + 5) / u64::from(args.agents) + 64)
        .min(1 << 24) as u32;
    let price = Amount::new(1).expect("1 fits");
    let agents = agents::register(&client, args.agents).await?;
    agents::fund(
        &client,
        &agents,
        Amount::new(u64::from(max_ticks) + 10).expect("u63"),
    )
    .await?;
    let bar = progress::counter(agents.len() as u64, "open streams");
    let tree = args.tree;
    let n = agents.len();
    let streams: Vec<PayerStream> = stream::iter(0..n)
        .map(|i| {
            let (client, agents, bar) = (&client, &agents, &bar);
            async move {
                let mut terms = StreamTerms::new(
                    agents[(i + 1) % n].index,
                    price,
                    max_ticks,
                    Duration::from_secs(3600),
                );
                if tree {
                    terms = terms.with_tick_tree();
                }
                let s = client
                    .open_pay_stream(&agents[i].key, agents[i].index, 0, terms)
                    .await
                    .with_context(|| format!("opening the stream of agent {}", agents[i].index))?;
                bar.inc(1);
                anyhow::Ok(s)
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    bar.finish_and_clear();

    // Deal the streams to the calls.
    let mut dealt: Vec<Vec<PayerStream>> = (0..calls).map(|_| Vec::new()).collect();
    for (i, s) in streams.into_iter().enumerate() {
        dealt[i % calls as usize].push(s);
    }
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.seconds);
    let per_call_rate = args.rate.map(|r| (r as f64 / f64::from(calls)).max(1.0));
    let mut tasks = Vec::new();
    for mut mine in dealt {
        // One connection per call, as separate agents' processes would have.
        let endpoint = args.endpoint.clone();
        let window = args.window;
        tasks.push(tokio::spawn(async move {
            let client = Client::connect(&endpoint).await?;
            let (sender, mut acks) = client.send_ticks().await?;
            // Scheduled (or sent) instants of the ticks in flight, in order.
            let in_flight: Arc<Mutex<VecDeque<Instant>>> = Arc::new(Mutex::new(VecDeque::new()));
            let slots = Arc::new(Semaphore::new(window.max(1) as usize));
            let q = in_flight.clone();
            let s2 = slots.clone();
            let receiver = tokio::spawn(async move {
                let mut t = Tally {
                    accepted: 0,
                    refused: BTreeMap::new(),
                    histogram: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)?,
                };
                while let Some(ack) = acks.message().await? {
                    let at = q.lock().await.pop_front().context("an ack for no tick")?;
                    s2.add_permits(1);
                    let now = Instant::now();
                    if at >= measure_from && at < end {
                        if ack.accepted {
                            t.accepted += 1;
                        } else {
                            *t.refused.entry(ack.reason).or_default() += 1;
                        }
                        let us = now.saturating_duration_since(at).as_micros() as u64;
                        t.histogram.record(us.max(1))?;
                    }
                }
                anyhow::Ok(t)
            });
            tokio::time::sleep_until(start.into()).await;
            let mut k = 0u32;
            let mut i = 0usize;
            let mut sent = 0u64;
            'send: loop {
                let scheduled = match per_call_rate {
                    Some(r) => {
                        let at = start + Duration::from_secs_f64(sent as f64 / r);
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    None => {
                        slots.acquire().await?.forget();
                        Instant::now()
                    }
                };
                if scheduled >= end {
                    break 'send;
                }
                if i == 0 {
                    k += 1;
                }
                let Some(tick) = mine[i].tick(k) else {
                    break 'send;
                };
                // The next tick of this stream assumes this one accepted (a tree's siblings).
                mine[i].acknowledged(k);
                i = (i + 1) % mine.len();
                in_flight.lock().await.push_back(scheduled);
                sender.send(tick).await?;
                sent += 1;
            }
            drop(sender);
            let tally = receiver.await??;
            anyhow::Ok((sent, tally))
        }));
    }
    let mut report = TickReport {
        mode: if args.tree { "tree-ticks" } else { "ticks" },
        agents: args.agents,
        calls,
        seconds: args.seconds as f64,
        target_tps: args.rate,
        sent: 0,
        accepted: 0,
        refused: BTreeMap::new(),
        accepted_per_second: 0.0,
        latency_ms: Latency {
            p50: 0.0,
            p90: 0.0,
            p99: 0.0,
            p999: 0.0,
            max: 0.0,
        },
        errors: Vec::new(),
    };
    let mut all = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        match t.await {
            Ok(Ok((sent, tally))) => {
                report.sent += sent;
                report.accepted += tally.accepted;
                for (r, c) in tally.refused {
                    *report.refused.entry(r).or_default() += c;
                }
                all.add(&tally.histogram)?;
            }
            Ok(Err(e)) => report.errors.push(format!("{e:#}")),
            Err(e) => report.errors.push(format!("a call's task failed: {e}")),
        }
    }
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    report.latency_ms = Latency {
        p50: ms(0.5),
        p90: ms(0.9),
        p99: ms(0.99),
        p999: ms(0.999),
        max: all.max() as f64 / 1000.0,
    };
    report.accepted_per_second = report.accepted as f64 / args.seconds as f64;
    if !report.refused.is_empty() {
        report
            .errors
            .push(format!("honest ticks were refused: {:?}", report.refused));
    }
    Ok(report)
}
