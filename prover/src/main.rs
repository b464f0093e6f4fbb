//! `rollup-prover`: the proving worker fleet and the batch proof verifier.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use rollup_prover::cache::CircuitCache;
use rollup_prover::circuits::payment::PolicyChecks;
use rollup_prover::circuits::registry::Circuits;
use rollup_prover::jobs::JobStore;
use rollup_prover::pins::{CircuitPins, FinalId, PINS_FILE};
use rollup_prover::verify::{verify_batch_proof, FinalVerifiers, VerifierSet};
use rollup_prover::worker::{self, WorkerConfig};
use rollup_prover::ActiveLeaf;
use state::settlement::BatchStatement;

/// rollup-prover: proves the rollup's batches with plonky2.
///
/// Workers share one Postgres database with the sequencer. Each claims proving jobs (leaf proofs
/// of chunks of transactions, of the state diff, of the priority ops and of the payouts, their
/// 2-to-1 merges, and the final settlement proof of the L1 statement) with FOR UPDATE SKIP
/// LOCKED, so any number of workers on any number of machines cooperate; one of them (elected
/// with an advisory lock) also turns sealed batches into jobs. Crashed workers' jobs are
/// re-queued once their heartbeat is stale.
#[derive(Parser, Debug)]
#[command(name = "rollup-prover", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a proving worker until SIGTERM/SIGINT.
    Run(RunArgs),
    /// Verify a batch proof: a proven batch from the database (--batch), or a proof file
    /// against a statement (--proof and --statement).
    Verify(VerifyArgs),
    /// Build (or check) every circuit up to a top level in the cache directory, so workers
    /// start warm.
    Circuits(CircuitsArgs),
}

#[derive(Args, Debug, Clone)]
struct CircuitArgs {
    /// Directory where built circuits are cached (created if missing). Workers sharing it
    /// build each circuit once; a corrupt or stale file is rebuilt.
    #[arg(long, env = "PROVER_CACHE_DIR", default_value = ".prover-cache")]
    cache_dir: PathBuf,

    /// Transactions per leaf proof (K). Must match the planner's and every worker's.
    #[arg(long, env = "PROVER_LEAF_SIZE", default_value_t = 8)]
    leaf_size: usize,

    /// Build the leaf circuit with the stream kinds (open, settle, close; docs/SPEC.md
    /// 13.3.1), so that batches with stream transactions can be proven. Every slot then costs
    /// 616 rows instead of 475: a leaf of 6 fits the degree of a plain leaf of 8. Must match
    /// the planner's and every worker's (the final circuits, hence the pins, differ).
    #[arg(long, env = "PROVER_LEAF_STREAMS")]
    leaf_streams: bool,

    /// Build the leaf circuit with the revenue-share kinds (register shares, distribute, and
    /// the lock on every spend from an account with shares; docs/SPEC.md 19.6), and the
    /// split-credit chunk with their records, so that batches with them can be proven (the
    /// `v4-shares` finals need it). Every slot then costs 26 rows more (501 against 475 for a
    /// plain slot): a leaf of 8 keeps its degree. Must match the planner's and every
    /// worker's (the final circuits, hence the pins, differ).
    #[arg(long, env = "PROVER_LEAF_SHARES")]
    leaf_shares: bool,

    /// Build the leaf circuit with policy checks (docs/SPEC.md 20.8): every spend's signer
    /// opened, an agent's spends judged by its passport, nonce lanes 1 to 7 and the owner's
    /// four kinds, so that batches with them can be proven (the `v4-agents` finals need it).
    /// `plain`: an agent under an allow-list pays no account (632 rows per slot against 475);
    /// `lists`: with a ten-hash membership path in every slot (643). A leaf of 6 keeps the
    /// plain leaf's degree, one of 8 doubles it. Must match the planner's and every worker's
    /// (the final circuits, hence the pins, differ).
    #[arg(long, env = "PROVER_LEAF_POLICIES", value_enum)]
    leaf_policies: Option<LeafPolicies>,

    /// Lanes (of 32 ticks) per tick-walk chunk, the proof tree of stream settlements
    /// (docs/SPEC.md 13.11, "Walks"). Default: 16 per leaf slot (128 for leaves of 8). Larger
    /// chunks prove more ticks per second with aggregation (3,680 at 1,600 lanes against 1,400
    /// at 100, docs/BENCHMARKS.md) and let a batch settle more ticks; smaller ones cost
    /// less for batches that settle few. At most 4,096. Must match the planner's and every
    /// worker's, and is recorded in the exported pins (the final circuits differ).
    #[arg(long, env = "PROVER_WALK_LANES", value_parser = clap::value_parser!(u64).range(1..=4096))]
    walk_lanes: Option<u64>,

    /// Threads for proving (rayon); 0 = one per CPU.
    #[arg(long, env = "PROVER_THREADS", default_value_t = 0)]
    threads: usize,

    /// Log format: "text" or "json".
    #[arg(long, env = "PROVER_LOG_FORMAT", default_value = "text")]
    log_format: String,

    /// The deployment's circuit pins: a `circuits.json` manifest (as written by `circuits
    /// --export-verifiers`) naming each final circuit by the SHA-256 of its complete verifier
    /// data. With it, only the pinned final circuits are served, each must have exactly its
    /// pinned fingerprint (from the cache or built), and `run` checks them all before taking
    /// jobs: a prover built from other code refuses to start instead of proving for circuits
    /// the deployment does not verify. A cached circuit that differs is refused, not rebuilt.
    #[arg(long, env = "PROVER_CIRCUIT_PINS")]
    circuit_pins: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Postgres connection URL (the sequencer's database). Migrations are applied at start.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,

    /// This worker's id in the job table (fencing token with the attempt number). Defaults to
    /// hostname-pid.
    #[arg(long, env = "PROVER_WORKER_ID")]
    worker_id: Option<String>,

    /// Leaf jobs claimed and proven in parallel.
    #[arg(long, env = "PROVER_PARALLEL_LEAVES", default_value_t = 2)]
    parallel_leaves: usize,

    /// Proofs kept for reuse: a leaf or merge job whose circuit and inputs are byte-identical
    /// to a recent one (the idle padding at the end of each tree, and the merges of two idle
    /// proofs) takes that proof instead of proving again. 0 proves every job.
    #[arg(long, env = "PROVER_PROOF_MEMO", default_value_t = rollup_prover::memo::CAPACITY)]
    proof_memo: usize,

    /// Seconds between heartbeats of the jobs in hand.
    #[arg(long, env = "PROVER_HEARTBEAT_SECS", default_value_t = 5)]
    heartbeat_secs: u64,

    /// A running job whose heartbeat is older than this (seconds) is re-queued by any worker.
    /// Must be well above --heartbeat-secs.
    #[arg(long, env = "PROVER_STALE_AFTER_SECS", default_value_t = 30)]
    stale_after_secs: u64,

    /// Attempts after which a job is marked failed instead of re-queued.
    #[arg(long, env = "PROVER_MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: i32,

    /// Milliseconds to wait before polling again when there is no job.
    #[arg(long, env = "PROVER_IDLE_POLL_MS", default_value_t = 500)]
    idle_poll_ms: u64,

    /// Do not take part in planning (turning sealed batches into jobs).
    #[arg(long, env = "PROVER_NO_PLAN")]
    no_plan: bool,

    /// Exit when no batch is waiting for a proof (one-shot runs, tests).
    #[arg(long, env = "PROVER_EXIT_WHEN_IDLE")]
    exit_when_idle: bool,

    /// Address for Prometheus metrics (/metrics) and /healthz; unset = no HTTP server.
    #[arg(long, env = "PROVER_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,

    /// Postgres connections in the pool.
    #[arg(long, env = "PROVER_DB_CONNECTIONS", default_value_t = 4)]
    db_connections: u32,

    #[command(flatten)]
    circuits: CircuitArgs,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// Verify the stored proof of this batch against the batch's row (needs --database-url).
    #[arg(long, conflicts_with_all = ["proof", "statement"])]
    batch: Option<u64>,

    /// Postgres connection URL (with --batch).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,

    /// A batch proof file (binary, as stored in batch_proofs.proof).
    #[arg(long, requires = "statement")]
    proof: Option<PathBuf>,

    /// The expected L1 statement (`state::settlement::BatchStatement`, SPEC 15.3) as JSON
    /// (inline, or @FILE).
    #[arg(long, requires = "proof")]
    statement: Option<String>,

    /// Verify with the exported final verifiers in this directory instead of building or
    /// loading the circuits. They are checked against --circuit-pins, or (without it) against
    /// the directory's own circuits.json, which only shows the files were not changed since
    /// that manifest was written.
    #[arg(long)]
    verifiers: Option<PathBuf>,

    #[command(flatten)]
    circuits: CircuitArgs,
}

#[derive(Args, Debug)]
struct CircuitsArgs {
    /// Build every circuit needed for batches of up to 2^top_level leaves.
    #[arg(long, default_value_t = 2)]
    top_level: u32,

    /// Also write the final circuits' verifier data (levels 0..=top_level, each diff kind of
    /// --diff-kinds) to this directory, for `verify --verifiers` and for the node and the
    /// bridge, with the manifest `circuits.json` of their fingerprints (what a deployment pins
    /// with --circuit-pins).
    #[arg(long)]
    export_verifiers: Option<PathBuf>,

    /// The diff circuits whose final circuits to build (and export): `v1` (batches of account
    /// records only: every batch without stream or agent transactions), `v4` (version 4
    /// diffs with stream records), `v4-agents` (with passport or lanes records: a leaf with
    /// --leaf-policies only), `v4-shares`
    /// (with a shares record: a revenue-share registration). A deployment that accepts the
    /// agent kinds needs the first three pinned, one that accepts revenue shares the fourth.
    #[arg(long, value_delimiter = ',', default_value = "v1")]
    diff_kinds: Vec<rollup_storage::DiffCircuitKind>,

    /// Also build (and export) the final circuits that verify a split-credit chain
    /// (`final-<level>[-<diff kind>]-splits`, one per final circuit above): batches with
    /// split payments are proven with them. A deployment that accepts splits needs them pinned.
    #[arg(long)]
    splits: bool,

    /// Also build (and export) the final circuits that verify a tick-walk tree
    /// (`final-<level>-<v4 kind>[-splits]-walks`, for the version 4 kinds of --diff-kinds: a
    /// stream is always in a version 4 diff): batches with stream settlements are proven with
    /// them. Needs --leaf-streams (a plain leaf hands no walk over).
    #[arg(long, requires = "leaf_streams")]
    walks: bool,

    #[command(flatten)]
    circuits: CircuitArgs,
}

fn hex_digest(e: &[rollup_prover::F; 4]) -> String {
    use plonky2::field::types::PrimeField64;
    e.iter()
        .map(|x| format!("{:016x}", x.to_canonical_u64()))
        .collect()
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The shapes of `--leaf-policies` ([`PolicyChecks`] without its `None`).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LeafPolicies {
    /// The policy rules and lanes, no membership path.
    Plain,
    /// With allow-lists.
    Lists,
}

fn circuits(args: &CircuitArgs) -> anyhow::Result<Arc<Circuits<ActiveLeaf>>> {
    if args.threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(args.threads)
            .build_global()
            .context("configuring the rayon thread pool")?;
    }
    anyhow::ensure!(args.leaf_size > 0, "--leaf-size must be positive");
    let leaf = ActiveLeaf::build_kinds(
        args.leaf_size,
        rollup_prover::circuits::payment::PaymentKinds {
            streams: args.leaf_streams,
            shares: args.leaf_shares,
            policies: match args.leaf_policies {
                None => PolicyChecks::None,
                Some(LeafPolicies::Plain) => PolicyChecks::Plain,
                Some(LeafPolicies::Lists) => PolicyChecks::WithLists,
            },
        },
    );
    let mut c = Circuits::new(leaf, CircuitCache::in_dir(&args.cache_dir));
    if let Some(lanes) = args.walk_lanes {
        c = c.with_walk_lanes(usize::try_from(lanes)?)?;
    }
    if let Some(path) = &args.circuit_pins {
        c = c.with_pins(CircuitPins::load(path)?)?;
    }
    Ok(Arc::new(c))
}

/// Loads (or builds) every pinned final circuit, so a registry whose circuits differ from the
/// pins fails now rather than at its first final job.
async fn check_pinned(c: &Arc<Circuits<ActiveLeaf>>) -> anyhow::Result<()> {
    let Some(pins) = c.pins() else {
        tracing::warn!(
            "no --circuit-pins: the final circuits are not checked against a deployment"
        );
        return Ok(());
    };
    let finals: Vec<FinalId> = pins.finals().collect();
    anyhow::ensure!(!finals.is_empty(), "the circuit pins name no final circuit");
    let c2 = c.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for id in finals {
            let f = c2.final_circuit(id)?;
            tracing::info!(circuit = %id, fingerprint = %f.fingerprint, "final circuit matches its pin");
        }
        Ok(())
    })
    .await?
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0, 120.0])
        .context("metrics buckets")?
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    let worker_id = args.worker_id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "prover".into());
        format!("{host}-{}", std::process::id())
    });
    anyhow::ensure!(
        args.stale_after_secs > args.heartbeat_secs,
        "--stale-after-secs must be larger than --heartbeat-secs"
    );
    let jobs = JobStore::connect(&args.database_url, args.db_connections).await?;
    let c = circuits(&args.circuits)?;
    check_pinned(&c).await?;
    if let Some(addr) = args.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics address {addr}"))?;
        let app = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let p = prometheus.clone();
                    async move { p.render() }
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        tracing::info!(%addr, "metrics at /metrics");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let cfg = WorkerConfig {
        database_url: args.database_url.clone(),
        worker_id,
        parallel_leaves: args.parallel_leaves,
        proof_memo: args.proof_memo,
        heartbeat: Duration::from_secs(args.heartbeat_secs.max(1)),
        stale_after: Duration::from_secs(args.stale_after_secs),
        max_attempts: args.max_attempts,
        idle_poll: Duration::from_millis(args.idle_poll_ms.max(10)),
        plan: !args.no_plan,
        exit_when_idle: args.exit_when_idle,
    };
    worker::run(cfg, c, jobs, stop_rx).await
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let c: Arc<dyn FinalVerifiers> = match &args.verifiers {
        Some(dir) => {
            let ser = rollup_prover::cache::Serializers::rollup();
            let pins = match &args.circuits.circuit_pins {
                Some(p) => CircuitPins::load(p)?,
                None => {
                    eprintln!(
                        "warning: no --circuit-pins; checking {} against its own circuits.json",
                        dir.display()
                    );
                    CircuitPins::load(&dir.join(PINS_FILE))?
                }
            };
            Arc::new(
                VerifierSet::load_dir(dir, &ser, &pins)
                    .with_context(|| format!("loading the verifiers in {}", dir.display()))?,
            )
        }
        None => circuits(&args.circuits)?,
    };
    let (bytes, expected, what) = match (args.batch, args.proof, args.statement) {
        (Some(n), _, _) => {
            let url = args
                .database_url
                .context("--batch needs --database-url (or DATABASE_URL)")?;
            let jobs = JobStore::connect(&url, 2).await?;
            let batch = jobs
                .batch(n)
                .await?
                .with_context(|| format!("no batch {n}"))?;
            let proof = jobs
                .batch_proof(n)
                .await?
                .with_context(|| format!("batch {n} has no proof (status {})", batch.status))?;
            (
                proof,
                jobs.settlement_statement(&batch).await?,
                format!("batch {n}"),
            )
        }
        (None, Some(path), Some(st)) => {
            let proof =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let text = match st.strip_prefix('@') {
                Some(file) => {
                    std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
                }
                None => st,
            };
            let statement: BatchStatement =
                serde_json::from_str(&text).context("--statement is not a BatchStatement")?;
            (proof, statement, path.display().to_string())
        }
        _ => anyhow::bail!("give --batch N, or --proof FILE and --statement JSON"),
    };
    let r = tokio::task::spawn_blocking(move || verify_batch_proof(c.as_ref(), &bytes, &expected))
        .await?;
    match r {
        Ok(()) => {
            println!("{what}: valid");
            Ok(())
        }
        Err(e) => anyhow::bail!("{what}: INVALID: {e}"),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Run(a) => a.circuits.log_format.clone(),
        Command::Verify(a) => a.circuits.log_format.clone(),
        Command::Circuits(a) => a.circuits.log_format.clone(),
    };
    init_tracing(&format);
    let result = match cli.command {
        Command::Run(a) => run(a).await,
        Command::Verify(a) => verify(a).await,
        Command::Circuits(a) => {
            async {
                let c = circuits(&a.circuits)?;
                check_pinned(&c).await?;
                let top = a.top_level;
                let kinds = a.diff_kinds.clone();
                anyhow::ensure!(!kinds.is_empty(), "--diff-kinds names no diff circuit");
                let splits: &[bool] = if a.splits { &[false, true] } else { &[false] };
                let walks: &[bool] = if a.walks { &[false, true] } else { &[false] };
                let tops: Vec<FinalId> = kinds
                    .iter()
                    .flat_map(|&kind| {
                        splits.iter().flat_map(move |&splits| {
                            walks.iter().map(move |&walks| FinalId {
                                level: top,
                                kind,
                                splits,
                                walks,
                            })
                        })
                    })
                    // A stream's records make a version 4 diff: no `v1` final walks. A shares
                    // record comes with its registration's split-credit record: every
                    // `v4-shares` final verifies the chain.
                    .filter(|id| !(id.walks && id.kind == rollup_storage::DiffCircuitKind::V1))
                    .filter(|id| id.splits || id.kind != rollup_storage::DiffCircuitKind::V4Shares)
                    .collect();
                let finals: Vec<FinalId> = tops
                    .iter()
                    .flat_map(|&id| (0..=top).map(move |level| FinalId { level, ..id }))
                    .collect();
                let c2 = c.clone();
                let built = tops.clone();
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    for id in built {
                        c2.final_circuit(id)?;
                    }
                    Ok(())
                })
                .await??;
                if let Some(dir) = &a.export_verifiers {
                    let set = VerifierSet::from_source(c.as_ref(), finals)?;
                    let pins = set.write_dir(dir, c.cache().serializers())?;
                    println!(
                        "final verifiers and their pins ({PINS_FILE}) written to {}",
                        dir.display()
                    );
                    for (name, fp) in &pins.circuits {
                        println!("{name} fingerprint {fp}");
                    }
                }
                println!("circuits up to top level {top} are in the cache");
                for l in 1..=top {
                    let d = c.merge(l)?.data.verifier_only.circuit_digest;
                    println!("merge-{l} digest {}", hex_digest(&d.elements));
                }
                for id in tops {
                    let f = c.final_circuit(id)?;
                    let d = f.data.verifier_only.circuit_digest;
                    println!("{id} digest {}", hex_digest(&d.elements));
                    println!("{id} fingerprint {}", f.fingerprint);
                }
                Ok(())
            }
            .await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("rollup-prover: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
