//! `loadtest`: a swarm of simulated agents that measures a node's throughput and receipt
//! latency.
//!
//! It registers its own agents, funds them from the devnet faucet, pre-signs their transfers on
//! all cores, then streams them over K concurrent `PaymentStream` calls for the requested time
//! and reports accepted and rejected counts, throughput and latency percentiles, and the
//! ratio of the throughput to this machine's verification ceiling, measured just before.
//!
//! With `--idle-watchers N --node-pid PID` it measures instead the node's CPU cost of N idle
//! `WatchReceipts` streams (see `idle`).

mod agents;
mod ceiling;
mod driver;
mod idle;
mod lanes;
mod plan;
mod procstat;
mod progress;
mod report;
#[cfg(test)]
mod stub_node;
mod ticks;
mod x402;

use std::collections::{HashMap, VecDeque};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use rollup_client::{Amount, Client, DEFAULT_ENDPOINT};
use tokio_util::sync::CancellationToken;

use crate::ceiling::Ceiling;
use crate::driver::{Live, Settings, Timeline};
use crate::idle::IdleArgs;
use crate::plan::Shape;
use crate::report::{Report, RunInfo};

/// Transfers per second assumed when sizing the pre-signed supply without `--rate`.
const ASSUMED_MAX_TPS: u64 = 15_000;

/// Bytes one pre-signed transfer holds in memory (the transfer and its id), for the log.
const BYTES_PER_PRESIGNED: u64 = 160;

/// Pre-signed transfers the ceiling measurement cycles through (more would only cost memory).
const CEILING_SAMPLE: usize = 65_536;

/// The load's flags that mean nothing with `--idle-watchers`.
const LOAD_ONLY: [&str; 9] = [
    "agents",
    "streams",
    "warmup",
    "rate",
    "fee",
    "max_amount",
    "window",
    "max_presigned",
    "ceiling_after",
];

#[derive(Parser)]
#[command(
    name = "loadtest",
    version,
    about = "Load generator: simulated agents stream pre-signed payments to a rollup node and \
             measure throughput and receipt latency.",
    long_about = "Load generator: simulated agents stream pre-signed payments to a rollup node and \
                  measure throughput and receipt latency.\n\n\
                  It registers --agents fresh accounts, funds them from the faucet (the node must \
                  run with --devnet), pre-signs enough transfers for the run on all cores, then \
                  sends them over --streams concurrent PaymentStream calls (each agent on one \
                  stream, so its nonces arrive in order) for --warmup + --duration seconds. \
                  Back-pressure (RESOURCE_EXHAUSTED) is counted, backed off and retried.\n\n\
                  Before the load it measures the verification ceiling for --ceiling-seconds: \
                  the run's own pre-signed transfers verified (state::apply::VerifiedTx::verify, \
                  as the node does) on one thread per core, like the node's verifier pool, and \
                  again after the load (--ceiling-after). The report gives ceiling_tps (the \
                  higher of the two), ceiling_before_tps, ceiling_after_tps and ratio = \
                  accepted tps / ceiling_tps.\n\n\
                  With --idle-watchers N --node-pid PID it measures instead the CPU cost of N \
                  idle WatchReceipts streams: it registers N accounts that nothing pays, opens \
                  one stream on each (--watchers-per-connection per HTTP/2 connection), waits \
                  until all are open plus --settle seconds, then reads the node's CPU time \
                  (utime + stime) from /proc/PID/stat over --duration seconds while two other \
                  accounts pay each other at --background-tps. It prints count, seconds, \
                  node_cpu_percent (100 = one core), background_tps, ... and fails if \
                  /proc/PID/stat cannot be read (the node must run on this machine).",
    after_help = "Exit status: 0 after a complete run, 1 if the node is unreachable, refuses the \
                  setup, or a stream failed (with --idle-watchers: a watch stream ended or \
                  /proc/PID/stat is unreadable)."
)]
struct Args {
    /// gRPC endpoint of the node.
    #[arg(long, env = "ROLLUP_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    endpoint: String,

    /// Number of simulated agents (accounts), at least 2.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(2..))]
    agents: u32,

    /// Concurrent payment streams (gRPC calls, each on its own connection).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    streams: u32,

    /// Seconds of measured load (with --idle-watchers: of the CPU measurement window).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,

    /// Seconds of load before the measurement starts (not counted).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    warmup: u64,

    /// Target transfers per second over all streams; as fast as the node answers if absent.
    #[arg(long, value_name = "TPS", value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,

    /// Fee of every transfer, in base units.
    #[arg(long, default_value_t = 0)]
    fee: u64,

    /// Largest transfer amount in base units (amounts are uniform in 1..=this).
    #[arg(long, value_name = "A", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    max_amount: u64,

    /// Transfers in flight (sent, not yet answered) per stream at most.
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,

    /// Upper bound on pre-signed transfers (about 160 bytes each); the run stops early and
    /// says so if they run out.
    #[arg(long, value_name = "N", default_value_t = 3_000_000)]
    max_presigned: u64,

    /// Seed of the payees and amounts (random if absent).
    #[arg(long)]
    seed: Option<u64>,

    /// Print exactly one JSON object on stdout (progress and logs go to stderr).
    #[arg(long)]
    json: bool,

    /// Seconds spent measuring the verification ceiling before the load (the run's pre-signed
    /// transfers verified on one thread per core, as the node's verifier pool does); 0 skips
    /// it. The report gives `ceiling_tps` and `ratio` = accepted tps / ceiling_tps.
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    ceiling_seconds: u64,

    /// Measure the ceiling after the load as well (the default), and report the higher of the
    /// two as `ceiling_tps`: anything else running on the machine during a measurement only
    /// lowers it, which would inflate the ratio. `--ceiling-after false` measures before only.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    ceiling_after: bool,

    /// Instead of the load: measure the node's CPU cost of N idle WatchReceipts streams, on N
    /// freshly registered accounts that nothing pays (needs --node-pid; --duration is the
    /// measured window).
    #[arg(
        long,
        value_name = "N",
        help_heading = "Idle watchers",
        requires = "node_pid",
        conflicts_with_all = LOAD_ONLY,
        conflicts_with = "ceiling_seconds"
    )]
    idle_watchers: Option<u32>,

    /// Process id of the node (on this machine): its CPU time is read from /proc/PID/stat.
    #[arg(
        long,
        value_name = "PID",
        help_heading = "Idle watchers",
        requires = "idle_watchers"
    )]
    node_pid: Option<u32>,

    /// Transfers per second between two other accounts during the measurement, so that
    /// commits happen while the watchers idle (0: none).
    #[arg(
        long,
        value_name = "TPS",
        default_value_t = 0,
        help_heading = "Idle watchers",
        requires = "idle_watchers"
    )]
    background_tps: u64,

    /// WatchReceipts streams per HTTP/2 connection (a server takes a few hundred at most).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100,
        help_heading = "Idle watchers",
        requires = "idle_watchers",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    watchers_per_connection: u32,

    /// Seconds between the last stream opening and the measured window (the streams' first
    /// queries and the background traffic's start are left out).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 5,
        help_heading = "Idle watchers",
        requires = "idle_watchers"
    )]
    settle: u64,

    /// Instead of the payment streams: load the node's x402 facilitator. `settle`: every
    /// agent but the first pays the first at an even share of --rate (default 1000), open loop,
    /// latency from each settlement's scheduled time; `verify`: --x402-concurrency workers
    /// verify as fast as the node answers. Reports throughput and latency percentiles.
    #[arg(
        long,
        value_name = "MODE",
        help_heading = "x402",
        conflicts_with = "idle_watchers"
    )]
    x402: Option<x402::Mode>,

    /// The facilitator's base URL (the node's HTTP address + /x402).
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080/x402",
        help_heading = "x402"
    )]
    x402_url: String,

    /// HTTP requests in flight at most (connections stay below the node's 64 per peer).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 32,
        help_heading = "x402",
        value_parser = clap::value_parser!(u64).range(1..=60)
    )]
    x402_concurrency: u64,

    /// Instead of the payments: load the tick relay (a devnet node with
    /// --experimental-streams). Every agent opens a payment stream to the next one and ticks
    /// over --streams SendTicks calls, at --rate ticks per second in all (open loop) or with
    /// --window ticks in flight per call. Reports accepted ticks per second and the
    /// acknowledgement latency.
    #[arg(
        long,
        help_heading = "Ticks",
        conflicts_with_all = ["idle_watchers", "x402"]
    )]
    ticks: bool,

    /// With --ticks: every stream commits a tick tree instead of a hash chain (SPEC 18.8), so
    /// each tick carries the siblings the relay lacks after the one before it (under two on
    /// average) and costs the relay as many hashes plus one.
    #[arg(long, help_heading = "Ticks", requires = "ticks")]
    tick_tree: bool,

    /// Make every sending account an agent under a passport (SPEC 20) instead of a plain
    /// account: one owner delegates --agents agents, each funded and bound by a policy its
    /// payments keep to (a cap of twice its funding per hour, a maximum payment of
    /// --max-amount, a maximum fee of --fee, no allow-list). The node must run with --devnet
    /// --experimental-agents. Compare with a run without it on the same node
    /// (loadtest/policy-bench.sh).
    #[arg(long, conflicts_with_all = ["idle_watchers", "x402", "ticks", "lane"])]
    policies: bool,

    /// Lanes mode: be one worker of an account that pays from nonce lane L (0 to 7; SPEC
    /// 20.1) at --rate payments per second for --duration seconds, 1 unit each to --to, from
    /// the registered and funded account of --key. Eight workers, one per lane, share nothing
    /// but the key (loadtest/lanes-bench.sh runs them); the node must run with --devnet
    /// --experimental-agents. The report lists rejections by reason (BAD_NONCE included).
    #[arg(
        long,
        value_name = "L",
        help_heading = "Lanes",
        requires_all = ["key", "to", "rate"],
        conflicts_with_all = ["idle_watchers", "x402", "ticks"],
        value_parser = clap::value_parser!(u8).range(0..8)
    )]
    lane: Option<u8>,

    /// Lanes mode: the key file of the paying account (registered, funded).
    #[arg(long, value_name = "FILE", help_heading = "Lanes", requires = "lane")]
    key: Option<std::path::PathBuf>,

    /// Lanes mode: the payee's account index.
    #[arg(long, value_name = "N", help_heading = "Lanes", requires = "lane")]
    to: Option<u32>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();

    let json = args.json;
    if let Some(count) = args.idle_watchers {
        return idle_watchers(args, count).await;
    }
    if args.ticks {
        let run = ticks::run(ticks::TickArgs {
            endpoint: args.endpoint,
            agents: args.agents,
            calls: args.streams,
            seconds: args.duration,
            warmup: args.warmup,
            rate: args.rate,
            window: args.window,
            tree: args.tick_tree,
        })
        .await;
        return conclude(run, json);
    }
    if let (Some(lane), Some(key), Some(to), Some(rate)) =
        (args.lane, &args.key, args.to, args.rate)
    {
        let run = lanes::run(lanes::LaneArgs {
            endpoint: args.endpoint.clone(),
            key: key.clone(),
            lane,
            to,
            rate,
            seconds: args.duration,
            warmup: args.warmup,
            window: usize::try_from(args.window).unwrap_or(usize::MAX),
        })
        .await;
        return conclude(run, json);
    }
    if let Some(mode) = args.x402 {
        let run = x402::run(x402::X402Args {
            endpoint: args.endpoint,
            url: args.x402_url.trim_end_matches('/').to_owned(),
            mode,
            agents: args.agents,
            tps: args.rate.unwrap_or(1000),
            seconds: args.duration,
            concurrency: args.x402_concurrency as usize,
        })
        .await;
        return conclude(run, json);
    }
    conclude(run(args).await, json)
}

/// A report that lists what went wrong during the run (empty: success).
trait RunErrors {
    fn run_errors(&self) -> &[String];
}

macro_rules! run_errors {
    ($($t:ty),*) => {$(
        impl RunErrors for $t {
            fn run_errors(&self) -> &[String] {
                &self.errors
            }
        }
    )*};
}
run_errors!(
    Report,
    idle::IdleReport,
    x402::X402Report,
    ticks::TickReport
);

/// Prints the run's report, or the error that stopped it; the exit status says which, and a
/// report that lists errors fails too.
fn conclude<R: serde::Serialize + std::fmt::Display + RunErrors>(
    run: anyhow::Result<R>,
    json: bool,
) -> ExitCode {
    match run {
        Ok(report) => print_report(&report, report.run_errors(), json),
        Err(err) => {
            eprintln!("error: {}", rollup_client::error_line(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Prints a report (one JSON line with `--json`, else text); fails when it lists errors.
fn print_report<R: serde::Serialize + std::fmt::Display>(
    report: &R,
    errors: &[String],
    json: bool,
) -> ExitCode {
    if json {
        match serde_json::to_string(report) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("error: cannot print the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{report}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn idle_watchers(args: Args, count: u32) -> ExitCode {
    let json = args.json;
    let idle = IdleArgs {
        endpoint: args.endpoint,
        count,
        per_connection: args.watchers_per_connection,
        // clap requires --node-pid with --idle-watchers.
        node_pid: args.node_pid.unwrap_or(0),
        seconds: args.duration,
        settle: args.settle,
        background_tps: args.background_tps,
        seed: args.seed.unwrap_or_else(rand::random),
    };
    conclude(idle::run(idle).await, json)
}

async fn run(args: Args) -> anyhow::Result<Report> {
    let client = Client::connect(&args.endpoint).await?;
    let status = client.connected_status().clone();
    if !status.devnet {
        bail!(
            "the node at {} is not a devnet node: the load test funds its agents from the \
             faucet, so start the node with --devnet",
            args.endpoint
        );
    }
    let fee = Amount::new(args.fee).context("--fee is above 2^63 - 1")?;
    // More streams than agents would leave some streams empty.
    let streams = (args.streams as usize).min(args.agents as usize);
    let window = usize::try_from(args.window).unwrap_or(usize::MAX);

    // Size the supply: the target rate with 10% headroom, or the assumed ceiling.
    let seconds = args.warmup + args.duration;
    let wanted = match args.rate {
        Some(rate) => rate.saturating_mul(seconds).saturating_mul(11) / 10,
        None => ASSUMED_MAX_TPS.saturating_mul(seconds),
    };
    let total = wanted.min(args.max_presigned).max(u64::from(args.agents));
    let per_agent = total.div_ceil(u64::from(args.agents));
    let presigned = per_agent * u64::from(args.agents);
    if wanted > args.max_presigned {
        tracing::warn!(
            "pre-signing is capped at {} transfers by --max-presigned; the run stops early if they run out",
            args.max_presigned
        );
    }
    let shape = Shape {
        per_agent,
        max_amount: args.max_amount,
        fee,
        // Valid long after the run, including the time to sign.
        valid_until: client.deadline_in(Duration::from_secs(seconds + 3 * 3600)),
        seed: args.seed.unwrap_or_else(rand::random),
    };
    let funding = plan::funding_per_agent(&shape)
        .context("the agents would need more than 2^63 - 1 each: lower --max-amount or --fee")?;

    let began = Instant::now();
    let agents = if args.policies {
        // Every sender an agent under a policy that its payments keep to (SPEC 20): the run
        // then measures what judging each payment by a passport costs the node.
        let agents = agents::delegate(&client, args.agents, funding, shape.max_amount, fee).await?;
        tracing::info!(
            "delegated {} agents under policies, funded with {funding} each, in {:.1} s",
            agents.len(),
            began.elapsed().as_secs_f64()
        );
        agents
    } else {
        let agents = agents::register(&client, args.agents).await?;
        tracing::info!(
            "registered {} agents in {:.1} s",
            agents.len(),
            began.elapsed().as_secs_f64()
        );
        let began = Instant::now();
        agents::fund(&client, &agents, funding).await?;
        tracing::info!(
            "funded {} agents with {funding} each in {:.1} s",
            agents.len(),
            began.elapsed().as_secs_f64()
        );
        agents
    };

    let began = Instant::now();
    tracing::info!(
        "pre-signing {presigned} transfers (~{} MB)",
        (presigned * BYTES_PER_PRESIGNED) >> 20
    );
    let domain = client.domain();
    let keys: HashMap<_, _> = agents
        .iter()
        .map(|a| (a.index, a.key.public_key()))
        .collect();
    let plans = tokio::task::spawn_blocking(move || {
        let bar = progress::counter(presigned, "sign");
        let plans = plan::presign(&agents, streams, shape, &domain, &bar);
        bar.finish_and_clear();
        plans
    })
    .await
    .context("the signing task failed")?;
    tracing::info!(
        "pre-signed {presigned} transfers in {:.1} s",
        began.elapsed().as_secs_f64()
    );

    // The ceiling's sample is kept for the measurement after the load (the plans go to the
    // streams).
    let ceiling_sample =
        (args.ceiling_seconds > 0).then(|| CeilingSample::of(&plans, keys, domain));
    let ceiling_before = match &ceiling_sample {
        Some(sample) => Some(
            sample
                .measure(args.ceiling_seconds, "before the load")
                .await?,
        ),
        None => None,
    };

    // One connection per stream, so the node spreads them over its connection tasks.
    let mut clients = Vec::with_capacity(streams);
    for _ in 0..streams {
        clients.push(Client::connect(&args.endpoint).await?);
    }

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let timeline = Timeline {
        start,
        measure_from,
        stop_at: measure_from + Duration::from_secs(args.duration),
    };
    let settings = Settings {
        window,
        rate: args.rate.map(|r| r as f64 / streams as f64),
        drain_timeout: Duration::from_secs(30),
    };
    let live = Arc::new(Live::default());
    let stop = CancellationToken::new();
    let ticker = tokio::spawn(show_progress(
        live.clone(),
        start,
        args.warmup,
        seconds,
        stop.clone(),
    ));

    let tasks: Vec<_> = clients
        .into_iter()
        .zip(plans)
        .enumerate()
        .map(|(id, (client, txs))| {
            let live = live.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                driver::drive(id, client, txs, settings, timeline, &live, stop).await
            })
        })
        .collect();
    // Ctrl-C ends the run early but still drains and reports what was measured.
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on_interrupt = {
        let (stop, interrupted) = (stop.clone(), interrupted.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::warn!("interrupted: draining, then reporting what was measured");
                interrupted.store(true, Ordering::Relaxed);
                stop.cancel();
            }
        })
    };
    let mut stats = Vec::with_capacity(tasks.len());
    for task in tasks {
        stats.push(task.await.context("a stream task panicked")?);
    }
    on_interrupt.abort();
    stop.cancel();
    let _ = ticker.await;
    let interrupted = interrupted.load(Ordering::Relaxed);

    let ceiling_after = match &ceiling_sample {
        Some(sample) if args.ceiling_after && !interrupted => {
            // The last receipts are durable (closed loop); a moment for the node's timers.
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some(
                sample
                    .measure(args.ceiling_seconds, "after the load")
                    .await?,
            )
        }
        _ => None,
    };

    let run = RunInfo {
        endpoint: args.endpoint,
        agents: args.agents,
        streams,
        window,
        target_rate: args.rate,
        warmup_s: args.warmup as f64,
        presigned,
    };
    let mut report = Report::new(run, stats, measure_from, timeline.stop_at);
    report.interrupted = interrupted;
    report.set_ceiling(ceiling_before, ceiling_after);
    Ok(report)
}

/// What the verification ceiling is measured on: a sample of the run's own pre-signed
/// transfers (taken evenly from every stream) and their senders' keys.
struct CeilingSample {
    transfers: Arc<Vec<state::tx::Transfer>>,
    keys: Arc<HashMap<rollup_client::AccountIndex, rollup_client::PublicKey>>,
    domain: rollup_client::Domain,
}

impl CeilingSample {
    fn of(
        plans: &[Vec<plan::Planned>],
        keys: HashMap<rollup_client::AccountIndex, rollup_client::PublicKey>,
        domain: rollup_client::Domain,
    ) -> Self {
        let per_stream = CEILING_SAMPLE.div_ceil(plans.len().max(1));
        let transfers = plans
            .iter()
            .flat_map(|txs| txs.iter().take(per_stream).map(|p| p.tx))
            .collect();
        CeilingSample {
            transfers: Arc::new(transfers),
            keys: Arc::new(keys),
            domain,
        }
    }

    /// The ceiling on one thread per core for `seconds`, logged with `when`.
    async fn measure(&self, seconds: u64, when: &'static str) -> anyhow::Result<Ceiling> {
        let threads = ceiling::default_threads();
        tracing::info!(
            "measuring the verification ceiling {when} for {seconds} s on {threads} threads"
        );
        let (transfers, keys, domain) = (self.transfers.clone(), self.keys.clone(), self.domain);
        let c = tokio::task::spawn_blocking(move || {
            ceiling::measure(
                &transfers,
                &keys,
                &domain,
                threads,
                Duration::from_secs(seconds),
            )
        })
        .await
        .context("the ceiling task failed")??;
        tracing::info!(
            "verification ceiling {when}: {:.0} transfers/s on {} threads ({} verified in {:.1} s)",
            c.tps,
            c.threads,
            c.verified,
            c.seconds
        );
        Ok(c)
    }
}

/// Updates the timed bar four times a second with the throughput of the last second.
async fn show_progress(
    live: Arc<Live>,
    start: Instant,
    warmup: u64,
    seconds: u64,
    stop: CancellationToken,
) {
    let bar = progress::timed(seconds);
    let mut samples: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        let now = Instant::now();
        let accepted = live.accepted.load(Ordering::Relaxed);
        samples.push_back((now, accepted));
        while samples.len() > 5 {
            samples.pop_front();
        }
        let tps = match (samples.front(), samples.back()) {
            (Some(&(t0, a0)), Some(&(t1, a1))) if t1 > t0 => {
                (a1 - a0) as f64 / (t1 - t0).as_secs_f64()
            }
            _ => 0.0,
        };
        let elapsed = now.duration_since(start).as_secs();
        bar.set_position(elapsed.min(seconds));
        bar.set_message(format!(
            "{tps:>7.0} tx/s  accepted {accepted}  rejected {}  back-pressure {}{}",
            live.rejected.load(Ordering::Relaxed),
            live.backpressure.load(Ordering::Relaxed),
            if elapsed < warmup { "  (warm-up)" } else { "" },
        ));
    }
    bar.finish_and_clear();
}
