//! `loadtest`: a swarm of simulated agents that measures a node's throughput and receipt
//! latency.
//!
//! It registers its own agents, funds them from the devnet faucet, pre-signs their transfers on
//! all cores, then streams them over K concurrent `PaymentStream` calls for the requested time
//! and reports accepted and rejected counts, throughput and latency percentiles.

mod agents;
mod driver;
mod plan;
mod progress;
mod report;
#[cfg(test)]
mod stub_node;

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use rollup_client::{Amount, Client, DEFAULT_ENDPOINT};
use tokio_util::sync::CancellationToken;

use crate::driver::{Live, Settings, Timeline};
use crate::plan::Shape;
use crate::report::{Report, RunInfo};

/// Transfers per second assumed when sizing the pre-signed supply without `--rate`.
const ASSUMED_MAX_TPS: u64 = 15_000;

/// Bytes one pre-signed transfer holds in memory (the transfer and its id), for the log.
const BYTES_PER_PRESIGNED: u64 = 160;

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
                  Back-pressure (RESOURCE_EXHAUSTED) is counted, backed off and retried.",
    after_help = "Exit status: 0 after a complete run, 1 if the node is unreachable, refuses the \
                  setup, or a stream failed."
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

    /// Seconds of measured load.
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
    match run(args).await {
        Ok(report) => {
            if json {
                match serde_json::to_string(&report) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("error: cannot print the report: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                println!("{report}");
            }
            if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("error: {}", rollup_client::error_line(err.as_ref()));
            ExitCode::FAILURE
        }
    }
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

    let began = Instant::now();
    tracing::info!(
        "pre-signing {presigned} transfers (~{} MB)",
        (presigned * BYTES_PER_PRESIGNED) >> 20
    );
    let domain = client.domain();
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
    report.interrupted = interrupted.load(Ordering::Relaxed);
    Ok(report)
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
