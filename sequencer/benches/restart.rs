//! Restart time and memory at scale (issue 10; figures in docs/BENCHMARKS.md).
//!
//! ```text
//! cargo bench -p rollup-sequencer --bench restart -- [--accounts N] [--txs M] [--snapshot-every K]
//! ```
//!
//! 1. Builds a history through the node's own pipeline, in process: recovery, the writer
//!    thread, the committer and the snapshot task exactly as `rollup-node` runs them, on a
//!    real Postgres (`DATABASE_URL`, or the devkit's private cluster). `N` accounts register,
//!    the first 2,000 are funded by the devnet faucet, and they pay random accounts until the
//!    log holds `M` transactions. Every transaction is signed by its account's key; the
//!    pipeline admits them as the node admits its own log (no second verification, no gRPC),
//!    which is the point: the history is built at the writer's speed, not the verifiers'.
//! 2. Starts the real `rollup-node` binary on that database three times and reports the
//!    median time from spawn to `/readyz` = 200 and the node's RSS once ready.
//! 3. Deletes the snapshots and times a full replay of the log (`recovery::recover`, in
//!    process), the restart time without snapshots.
//!
//! Prints one JSON object on stdout. Needs ~4 GB of disk per 10 million transactions.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use rollup_sequencer::committer::Committer;
use rollup_sequencer::config::Config;
use rollup_sequencer::node::{devnet_operator_key, writer_config};
use rollup_sequencer::receipt_watch::AccountWakeups;
use rollup_sequencer::supervisor::{Readiness, Supervisor};
use rollup_sequencer::writer::{self, Command, SubmitOutcome, WriterConfig, WriterHandle};
use rollup_storage::Store;
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::apply::VerifiedTx;
use state::crypto::schnorr::{EncodedKey, SecretKey};
use state::tx::{Domain, Transaction, UnsignedRegister, UnsignedTransfer};
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Parser)]
struct Args {
    /// Registered accounts.
    #[arg(long, default_value_t = 1_000_000)]
    accounts: u64,
    /// Transactions in the log at the end (registrations and faucet credits included).
    #[arg(long, default_value_t = 10_000_000)]
    txs: u64,
    /// `--snapshot-every-txs` of the pipeline and of the restarted node.
    #[arg(long, default_value_t = 100_000)]
    snapshot_every: u64,
    /// Restarts to time (the median is reported).
    #[arg(long, default_value_t = 3)]
    restarts: usize,
    /// Accepted for `cargo bench` compatibility.
    #[arg(long, hide = true)]
    bench: bool,
}

const PAYERS: u64 = 2_000;
const WINDOW: usize = 50_000;
const CHUNK: u64 = 100_000;

/// Submits commands and keeps at most `WINDOW` answers outstanding; fails on a rejection.
struct Feeder {
    writer: WriterHandle,
    pending: VecDeque<oneshot::Receiver<SubmitOutcome>>,
    accepted: u64,
}

impl Feeder {
    async fn push(
        &mut self,
        cmd: Command,
        reply: oneshot::Receiver<SubmitOutcome>,
    ) -> anyhow::Result<()> {
        if self
            .writer
            .enqueue(cmd, Duration::from_secs(60))
            .await
            .is_err()
        {
            bail!("the writer queue stayed full or closed");
        }
        self.pending.push_back(reply);
        while self.pending.len() > WINDOW {
            self.settle_one().await?;
        }
        Ok(())
    }

    async fn settle_one(&mut self) -> anyhow::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            match rx.await.context("writer dropped an answer")? {
                SubmitOutcome::Accepted { .. } => self.accepted += 1,
                SubmitOutcome::Duplicate { .. } => bail!("a generated transaction repeats"),
                SubmitOutcome::Rejected(r) => bail!("a generated transaction was rejected: {r}"),
            }
        }
        Ok(())
    }

    async fn drain(&mut self) -> anyhow::Result<()> {
        while !self.pending.is_empty() {
            self.settle_one().await?;
        }
        Ok(())
    }

    /// Submits `tx`, signed by `signer` (the sender's registered key; none for a register).
    async fn submit(
        &mut self,
        domain: &Domain,
        tx: Transaction,
        signer: Option<EncodedKey>,
    ) -> anyhow::Result<()> {
        let admitted = VerifiedTx::from_durable_log(tx, domain, |_| signer)
            .map_err(|r| anyhow::anyhow!("admission: {r}"))?;
        let (reply, rx) = oneshot::channel();
        self.push(
            Command::Submit {
                tx: Box::new(admitted),
                reply,
            },
            rx,
        )
        .await
    }
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.accounts < PAYERS + 2 || args.txs < args.accounts + PAYERS {
        bail!("need --accounts > {PAYERS} and --txs >= accounts + {PAYERS}");
    }
    let db = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => devkit::postgres::test_database("bench_restart")
            .await
            .context("a Postgres server (DATABASE_URL or the devkit's private cluster)")?,
    };
    let cfg = Config::parse_from([
        "rollup-node",
        "--devnet",
        "--database-url",
        "postgres://unused",
    ]);
    let rollup: [u8; 20] = hex::decode(cfg.rollup_address.trim_start_matches("0x"))?
        .try_into()
        .map_err(|_| anyhow::anyhow!("rollup address"))?;
    let domain = Domain {
        chain_id: cfg.chain_id,
        rollup,
    };
    let operator = devnet_operator_key().public_key();
    let store = Store::connect_and_migrate(&db, 8).await?;
    let commit_store = Store::connect_pool(&db, 4, Duration::from_secs(5)).await?;
    let recovered = rollup_sequencer::recovery::recover(&store, domain, operator, false).await?;
    let durable_start = recovered.next_seq - 1;
    if durable_start != 0 {
        bail!("the database is not empty");
    }

    // The pipeline, as node::run wires it.
    let sup = Supervisor::default();
    let (commit_tx, commit_rx) = mpsc::channel(1024);
    let durable_seq = Arc::new(AtomicU64::new(0));
    let (durable_tx, durable_rx) = watch::channel(0);
    let committer = tokio::spawn(
        Committer {
            log: commit_store,
            rx: commit_rx,
            durable_seq: durable_seq.clone(),
            durable_tx,
            wakeups: Arc::new(AccountWakeups::default()),
            unsealed: Arc::new(rollup_sequencer::unsealed::UnsealedActivity::new(0)),
            readiness: Arc::new(Readiness::default()),
            outage_limit: Duration::from_secs(60),
        }
        .run(),
    );
    let (snapshot_tx, snapshot_rx) = mpsc::channel(1);
    let snapshotter = tokio::spawn(rollup_sequencer::snapshotter::run(
        store.clone(),
        snapshot_rx,
        2,
    ));
    let (handle, thread) = writer::spawn(
        WriterConfig {
            snapshot_every_txs: args.snapshot_every,
            ..writer_config(&cfg)
        },
        recovered,
        commit_tx,
        durable_rx,
        durable_seq,
        Some(snapshot_tx),
        sup.guard("writer"),
    )?;
    let mut feed = Feeder {
        writer: handle.clone(),
        pending: VecDeque::new(),
        accepted: 0,
    };
    let build = Instant::now();
    let valid_until = Timestamp::new(writer::unix_now() + 30 * 24 * 3600).unwrap_or(Timestamp::MAX);

    // Accounts: keys and signed registrations, made on all cores a chunk at a time.
    let mut payer_keys: Vec<SecretKey> = Vec::new();
    let mut made = 0u64;
    while made < args.accounts {
        let n = CHUNK.min(args.accounts - made);
        let regs: Vec<(SecretKey, Transaction)> = (made..made + n)
            .into_par_iter()
            .map(|i| {
                let key = SecretKey::random(&mut rand::rngs::StdRng::seed_from_u64(i + 1));
                let tx = UnsignedRegister {
                    pubkey: key.public_key(),
                    valid_until,
                }
                .sign(&domain, &key);
                (key, Transaction::Register(tx))
            })
            .collect();
        for (key, tx) in regs {
            if (payer_keys.len() as u64) < PAYERS {
                payer_keys.push(key);
            }
            feed.submit(&domain, tx, None).await?;
        }
        made += n;
        eprintln!(
            "registered {made} / {} accounts ({:.0} s)",
            args.accounts,
            build.elapsed().as_secs_f64()
        );
    }
    // Payer p is account p + 1 (account 0 is the operator's).
    for p in 0..PAYERS {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Faucet {
            to: AccountIndex(p as u32 + 1),
            amount: Amount::new(1 << 40).unwrap_or(Amount::MAX),
            reply,
        };
        feed.push(cmd, rx).await?;
    }
    let payer_pubs: Vec<EncodedKey> = payer_keys.iter().map(|k| k.public_key().into()).collect();
    // Transfers until the log holds `txs`.
    let transfers = args.txs - args.accounts - PAYERS;
    let mut nonces = vec![0u64; PAYERS as usize];
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut sent = 0u64;
    while sent < transfers {
        let n = CHUNK.min(transfers - sent);
        let plan: Vec<(usize, u64, u32)> = (0..n)
            .map(|k| {
                let p = ((sent + k) % PAYERS) as usize;
                let nonce = nonces[p];
                nonces[p] += 1;
                let to = loop {
                    let to = rng.gen_range(1..=args.accounts as u32);
                    if to != p as u32 + 1 {
                        break to;
                    }
                };
                (p, nonce, to)
            })
            .collect();
        let txs: Vec<Transaction> = plan
            .par_iter()
            .map(|&(p, nonce, to)| {
                Transaction::Transfer(
                    UnsignedTransfer {
                        from: AccountIndex(p as u32 + 1),
                        to: AccountIndex(to),
                        amount: Amount::new(1).unwrap_or(Amount::ZERO),
                        fee: Amount::ZERO,
                        nonce: Nonce::new(nonce).unwrap_or(Nonce::MAX),
                        valid_until,
                    }
                    .sign(&domain, &payer_keys[p]),
                )
            })
            .collect();
        for (tx, &(p, _, _)) in txs.into_iter().zip(&plan) {
            feed.submit(&domain, tx, Some(payer_pubs[p])).await?;
        }
        sent += n;
        eprintln!(
            "{} / {} transactions ({:.0} s)",
            args.accounts + PAYERS + sent,
            args.txs,
            build.elapsed().as_secs_f64()
        );
    }
    feed.drain().await?;
    handle.shutdown();
    drop(feed);
    drop(handle);
    tokio::task::spawn_blocking(move || thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("writer panicked"))?;
    committer.await??;
    snapshotter.await?;
    let build_secs = build.elapsed().as_secs_f64();
    let log_txs = store.log().count_txs().await?;
    let snaps = store.snapshots().list().await?;
    let newest = snaps.first().context("no snapshot was taken")?.clone();
    eprintln!(
        "history: {log_txs} transactions in {build_secs:.0} s; newest snapshot at seq {} ({} bytes)",
        newest.last_seq, newest.byte_len
    );

    // Restarts of the real binary on that database.
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_rollup-node"));
    let every = args.snapshot_every.to_string();
    let mut times = Vec::new();
    let mut rss = Vec::new();
    let mut hwm = Vec::new();
    for i in 0..args.restarts {
        let started = Instant::now();
        let mut node =
            devkit::node::NodeProcess::start(&binary, &db, &["--snapshot-every-txs", &every]).await;
        let secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pid = node.pid();
        rss.push(vm_kib(pid, "VmRSS:") as f64 / 1024.0);
        hwm.push(vm_kib(pid, "VmHWM:") as f64 / 1024.0);
        times.push(secs);
        eprintln!("restart {i}: ready in {secs:.2} s, RSS {:.0} MB", rss[i]);
        let status = node.terminate()?;
        if !status.success() {
            bail!(
                "the node did not stop cleanly: {status}\n{}",
                node.log_text()
            );
        }
    }

    // Without snapshots: the whole log replayed.
    sqlx::query("DELETE FROM state_snapshots")
        .execute(store.pool())
        .await?;
    let started = Instant::now();
    let full = rollup_sequencer::recovery::recover(&store, domain, operator, false).await?;
    let full_replay_secs = started.elapsed().as_secs_f64();
    drop(full);

    let report = serde_json::json!({
        "accounts": args.accounts,
        "log_txs": log_txs,
        "history_build_secs": build_secs,
        "snapshot_every_txs": args.snapshot_every,
        "snapshot_seq": newest.last_seq,
        "tail_txs": log_txs - newest.last_seq,
        "snapshot_bytes": newest.byte_len,
        "restart_secs_median": median(times.clone()),
        "restart_secs": times,
        "rss_mb_median": median(rss.clone()),
        "rss_peak_mb_median": median(hwm),
        "full_replay_secs": full_replay_secs,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    println!("{report}");
    Ok(())
}
