//! `--idle-watchers N`: the node's CPU cost of N idle `WatchReceipts` streams.
//!
//! Registers N fresh accounts that nothing pays, opens one `WatchReceipts` stream on each,
//! spread over several HTTP/2 connections (a server takes a few hundred concurrent streams per
//! connection), waits until every stream is open (response headers received), lets the node
//! settle (each new stream runs one query), then reads the node process's CPU time from
//! `/proc/PID/stat` at the start and the end of the measured window. Meanwhile, with
//! `--background-tps`, two other accounts pay each other at that rate so that commits happen
//! while the watchers idle (an idle watcher must not wake for a commit that does not touch its
//! account).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt, TryStreamExt};
use rollup_client::{AccountIndex, Amount, Client};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::driver::{self, Live, Settings, Timeline};
use crate::plan::{self, Shape};
use crate::{agents, procstat, progress};

/// Streams being opened at once.
const OPEN_CONCURRENCY: usize = 256;

/// The background traffic may go on this long after the window's nominal end, so that it
/// covers the whole CPU window (which starts a little after its nominal start); it is stopped
/// as soon as the window's CPU time is read.
const BACKGROUND_TAIL: Duration = Duration::from_secs(1);

/// What to measure.
pub struct IdleArgs {
    pub endpoint: String,
    pub count: u32,
    pub per_connection: u32,
    pub node_pid: u32,
    pub seconds: u64,
    pub settle: u64,
    pub background_tps: u64,
    pub seed: u64,
}

/// The measurement, printed as one JSON object with `--json`.
#[derive(Debug, Serialize)]
pub struct IdleReport {
    /// Idle `WatchReceipts` streams open during the window.
    pub count: u32,
    /// Length of the measured window.
    pub seconds: f64,
    /// The node's CPU time (user + system) over the window as a percentage of one core
    /// (200 = both cores of a 2-core machine busy).
    pub node_cpu_percent: f64,
    /// The requested background rate (transfers per second between two other accounts).
    pub background_tps: u64,
    /// Background transfers accepted per second during the window.
    pub background_accepted_tps: f64,
    pub background_rejected: u64,
    /// The node's CPU seconds over the window.
    pub node_cpu_s: f64,
    /// Clock ticks per second of `/proc` CPU times (`CLK_TCK`).
    pub clk_tck: u64,
    pub node_pid: u32,
    /// `/proc/PID/comm` of `node_pid`.
    pub node_command: Option<String>,
    /// The node's resident memory before the watchers were opened and at the end of the window.
    pub node_rss_mib_before: Option<f64>,
    pub node_rss_mib_after: Option<f64>,
    /// HTTP/2 connections the streams are spread over.
    pub connections: usize,
    pub watchers_per_connection: u32,
    /// Seconds to open every stream (after registering their accounts).
    pub open_s: f64,
    /// Seconds between the last stream opening and the window.
    pub settle_s: u64,
    /// Receipts the idle streams received (expected 0: nothing touches their accounts).
    pub watcher_receipts: u64,
    /// Streams that ended or failed before the end of the window (expected 0).
    pub watchers_closed: u64,
    pub endpoint: String,
    pub errors: Vec<String>,
}

/// What the watcher tasks saw.
#[derive(Default)]
struct WatchCounters {
    receipts: AtomicU64,
    closed: AtomicU64,
}

/// Runs the measurement. Fails at once if `/proc/PID/stat` is unreadable (a CPU share of 0
/// would be a lie).
pub async fn run(args: IdleArgs) -> anyhow::Result<IdleReport> {
    let clk_tck = procstat::clock_ticks_per_second()?;
    procstat::cpu_ticks(args.node_pid).context("--node-pid")?;
    let node_command = procstat::command_name(args.node_pid);
    if node_command.as_deref() != Some("rollup-node") {
        tracing::warn!(
            "process {} is {:?}, not rollup-node: measuring it anyway",
            args.node_pid,
            node_command.as_deref().unwrap_or("?")
        );
    }

    let client = Client::connect(&args.endpoint).await?;
    if args.background_tps > 0 && !client.connected_status().devnet {
        bail!(
            "the node at {} is not a devnet node: the background traffic is funded from the \
             faucet, so start the node with --devnet (or use --background-tps 0)",
            args.endpoint
        );
    }

    // Accounts for the watchers: registered, never paid.
    let began = Instant::now();
    let watched = agents::register(&client, args.count).await?;
    tracing::info!(
        "registered {} accounts to watch in {:.1} s",
        watched.len(),
        began.elapsed().as_secs_f64()
    );
    let accounts: Vec<AccountIndex> = watched.iter().map(|a| a.index).collect();
    drop(watched);

    // Background traffic: two other agents paying each other, pre-signed like the load.
    let window = Duration::from_secs(args.settle + args.seconds);
    let background = if args.background_tps > 0 {
        Some(prepare_background(&client, &args, window).await?)
    } else {
        None
    };

    let rss_before = procstat::rss_mib(args.node_pid);
    let began = Instant::now();
    let counters = Arc::new(WatchCounters::default());
    let per_connection = args.per_connection.max(1) as usize;
    let connections = accounts.len().div_ceil(per_connection);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(Client::connect(&args.endpoint).await?);
    }
    let watchers = open_watchers(&clients, &accounts, per_connection, counters.clone()).await?;
    let open_s = began.elapsed().as_secs_f64();
    tracing::info!(
        "{} WatchReceipts streams open on {connections} connections in {open_s:.1} s; settling {} s",
        watchers.len(),
        args.settle
    );

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.settle);
    let timeline = Timeline {
        start,
        measure_from,
        stop_at: measure_from + Duration::from_secs(args.seconds) + BACKGROUND_TAIL,
    };
    let stop = CancellationToken::new();
    let live = Arc::new(Live::default());
    let traffic = background.map(|(bg_client, txs)| {
        let settings = Settings {
            window: 64,
            rate: Some(args.background_tps as f64),
            drain_timeout: Duration::from_secs(10),
        };
        let (live, stop) = (live.clone(), stop.clone());
        tokio::spawn(async move {
            driver::drive(0, bg_client, txs, settings, timeline, &live, stop).await
        })
    });

    tokio::time::sleep_until(measure_from.into()).await;
    let closed_before = counters.closed.load(Ordering::Relaxed);
    let (t0, ticks0) = (Instant::now(), procstat::cpu_ticks(args.node_pid)?);
    let end = t0 + Duration::from_secs(args.seconds);
    let bar = progress::timed(args.seconds);
    bar.set_message("measuring the node's CPU time");
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(250).min(end - Instant::now())).await;
        bar.set_position(t0.elapsed().as_secs().min(args.seconds));
    }
    let ticks1 = procstat::cpu_ticks(args.node_pid)
        .context("the node process went away during the measurement")?;
    let elapsed = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let rss_after = procstat::rss_mib(args.node_pid);

    // The background traffic stops here (before its nominal end): its rate is over the time
    // it actually ran inside the window.
    stop.cancel();
    let background_s = measure_from.elapsed().as_secs_f64();
    let mut errors = Vec::new();
    let (mut background_accepted, mut background_rejected) = (0, 0);
    if let Some(task) = traffic {
        let stats = task.await.context("the background traffic task panicked")?;
        background_accepted = stats.accepted;
        background_rejected = stats.rejected.values().sum();
        if stats.exhausted {
            errors.push("the background traffic ran out of pre-signed transfers".to_owned());
        }
        errors.extend(stats.error);
    }
    let watchers_closed = counters.closed.load(Ordering::Relaxed);
    if watchers_closed > 0 {
        errors.push(format!(
            "{watchers_closed} watch streams ended before the end of the window ({closed_before} \
             before it started)"
        ));
    }
    for w in watchers {
        w.abort();
    }

    let node_cpu_s = ticks1.saturating_sub(ticks0) as f64 / clk_tck as f64;
    Ok(IdleReport {
        count: args.count,
        seconds: elapsed,
        node_cpu_percent: 100.0 * node_cpu_s / elapsed,
        background_tps: args.background_tps,
        background_accepted_tps: background_accepted as f64 / background_s,
        background_rejected,
        node_cpu_s,
        clk_tck,
        node_pid: args.node_pid,
        node_command,
        node_rss_mib_before: rss_before,
        node_rss_mib_after: rss_after,
        connections,
        watchers_per_connection: args.per_connection,
        open_s,
        settle_s: args.settle,
        watcher_receipts: counters.receipts.load(Ordering::Relaxed),
        watchers_closed,
        endpoint: args.endpoint,
        errors,
    })
}

/// Two fresh agents funded for `window` of transfers at the background rate (plus headroom),
/// their transfers pre-signed, and the connection that will send them.
async fn prepare_background(
    client: &Client,
    args: &IdleArgs,
    window: Duration,
) -> anyhow::Result<(Client, Vec<plan::Planned>)> {
    let pair = agents::register(client, 2).await?;
    let wanted = args.background_tps * (window.as_secs() + 5) * 11 / 10;
    let shape = Shape {
        per_agent: wanted.div_ceil(2).max(1),
        max_amount: 100,
        fee: Amount::ZERO,
        valid_until: client.deadline_in(window + Duration::from_secs(3600)),
        seed: args.seed,
    };
    let funding = plan::funding_per_agent(&shape).context("background funding overflows")?;
    agents::fund(client, &pair, funding).await?;
    let domain = client.domain();
    let mut plans = tokio::task::spawn_blocking(move || {
        plan::presign(&pair, 1, shape, &domain, &indicatif::ProgressBar::hidden())
    })
    .await
    .context("the signing task failed")?;
    let txs = plans.pop().unwrap_or_default();
    Ok((Client::connect(&args.endpoint).await?, txs))
}

/// Opens one `WatchReceipts` stream per account, account `i` on connection
/// `i / per_connection`, and returns once every stream's response headers are in. Each stream
/// is then read by its own task, which counts what arrives and whether the stream ends.
async fn open_watchers(
    clients: &[Client],
    accounts: &[AccountIndex],
    per_connection: usize,
    counters: Arc<WatchCounters>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let bar = progress::counter(accounts.len() as u64, "watch");
    let tasks = stream::iter(accounts.iter().enumerate())
        .map(|(i, &account)| {
            let client = &clients[i / per_connection];
            let counters = counters.clone();
            async move {
                let mut receipts = client.watch(account, None).await.with_context(|| {
                    format!(
                        "opening WatchReceipts stream {} of {} (account {account}); the \
                             node limits calls per client address and streams per connection \
                             (rollup-node --max-rpcs-per-peer, \
                             --grpc-max-streams-per-connection)",
                        i + 1,
                        accounts.len()
                    )
                })?;
                Ok::<_, anyhow::Error>(tokio::spawn(async move {
                    loop {
                        match receipts.next().await {
                            Some(Ok(_)) => {
                                counters.receipts.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(Err(e)) => {
                                tracing::warn!("WatchReceipts on account {account} failed: {e}");
                                counters.closed.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            None => {
                                counters.closed.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                }))
            }
        })
        .buffer_unordered(OPEN_CONCURRENCY)
        .inspect_ok(|_| bar.inc(1))
        .try_collect()
        .await?;
    bar.finish_and_clear();
    Ok(tasks)
}

impl std::fmt::Display for IdleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} idle WatchReceipts streams on {} connections, {:.1} s measured after {} s settling, against {} (pid {})",
            self.count, self.connections, self.seconds, self.settle_s, self.endpoint, self.node_pid
        )?;
        writeln!(
            f,
            "node CPU       {:.2}% of one core ({:.2} CPU s, CLK_TCK {})",
            self.node_cpu_percent, self.node_cpu_s, self.clk_tck
        )?;
        writeln!(
            f,
            "background     {} tx/s requested, {:.1} tx/s accepted, {} rejected",
            self.background_tps, self.background_accepted_tps, self.background_rejected
        )?;
        let mib = |m: Option<f64>| m.map_or("?".to_owned(), |m| format!("{m:.0} MiB"));
        write!(
            f,
            "node RSS       {} before the streams, {} after; {} receipts on idle streams, {} closed",
            mib(self.node_rss_mib_before),
            mib(self.node_rss_mib_after),
            self.watcher_receipts,
            self.watchers_closed
        )?;
        for e in &self.errors {
            write!(f, "\nERROR          {e}")?;
        }
        Ok(())
    }
}
