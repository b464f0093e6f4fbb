//! Proving throughput of the worker fleet: one batch of `2 n` transactions (n registrations,
//! n deposits; every slot of the payment circuit costs the same whatever its kind), proven end
//! to end (leaves, merges, final, verification) by 1 worker using every core, then by 2 worker
//! processes sharing the machine (one thread each).
//!
//! `cargo bench -p rollup-prover --bench fleet` (FLEET_BENCH_AGENTS=n, default 16, i.e. 32
//! transactions = 4 leaves of 8). Needs Postgres (DATABASE_URL or a local server). Circuits are
//! built into a shared cache first, so only proving is timed. The single worker runs twice,
//! proving every job (`--proof-memo 0`) and reusing identical proofs (the default): with `n`
//! such that the leaves are not a power of two (e.g. 20: 5 leaves padded to 8), the padding's
//! repeated jobs show. Prints the figures.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rollup_prover::cache::CircuitCache;
use rollup_prover::circuits::payment::PaymentCircuit;
use rollup_prover::circuits::registry::Circuits;

const LEAF_SIZE: usize = 8;

fn worker(db: &str, id: &str, threads: usize, memo: usize, cache: &Path) -> Child {
    let exe = std::env::current_exe().expect("bench path");
    // target/<profile>/deps/fleet-xxxx -> target/<profile>/rollup-prover
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("rollup-prover"))
        .expect("binary beside the bench");
    Command::new(bin)
        .args([
            "run",
            "--worker-id",
            id,
            "--leaf-size",
            &LEAF_SIZE.to_string(),
        ])
        .args(["--threads", &threads.to_string(), "--idle-poll-ms", "100"])
        .args(["--proof-memo", &memo.to_string()])
        .args(["--parallel-leaves", if threads == 1 { "1" } else { "2" }])
        .arg("--cache-dir")
        .arg(cache)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rollup-prover (cargo build -p rollup-prover --release first)")
}

async fn run(n: u32, workers: &[(&str, usize)], memo: usize, cache: &Path) -> Duration {
    let (db, jobs) = common::fresh("prover_fleet_bench").await;
    common::seed_batch(&jobs, n).await;
    let t = Instant::now();
    let mut children: Vec<Child> = workers
        .iter()
        .map(|(id, threads)| worker(&db, id, *threads, memo, cache))
        .collect();
    loop {
        let status = jobs
            .store()
            .batches()
            .status(1)
            .await
            .expect("batch status");
        if status == Some(rollup_storage::BatchStatus::Proven) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(900),
            "batch still {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = t.elapsed();
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    elapsed
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u32 = std::env::var("FLEET_BENCH_AGENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let txs = 2 * n as usize;
    let leaves = txs.div_ceil(LEAF_SIZE).next_power_of_two();
    let top = leaves.trailing_zeros();
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let circuits = Circuits::new(
        PaymentCircuit::build(LEAF_SIZE),
        CircuitCache::in_dir(dir.path()),
    );
    tokio::task::block_in_place(|| circuits.warm_up(top)).expect("circuits");
    println!(
        "circuits for {leaves} leaves of {LEAF_SIZE} built in {:?}",
        t.elapsed()
    );

    // Without and with reuse of identical proofs (the idle padding of each tree, `memo`), one
    // after the other on the same circuits.
    let memo = rollup_prover::memo::CAPACITY;
    for (label, workers, memo) in [
        (
            "1 worker, 2 threads, every job proven",
            vec![("solo", 0usize)],
            0,
        ),
        ("1 worker, 2 threads", vec![("solo", 0usize)], memo),
        ("2 workers, 1 thread each", vec![("a", 1), ("b", 1)], memo),
    ] {
        let d = run(n, &workers, memo, dir.path()).await;
        println!(
            "{label}: {txs} txs ({leaves} leaves) proven in {:.1} s: {:.2} tx/s, {:.0} ms per tx (incl. worker start-up and the leaf circuit build)",
            d.as_secs_f64(),
            txs as f64 / d.as_secs_f64(),
            d.as_secs_f64() * 1000.0 / txs as f64
        );
    }
}
