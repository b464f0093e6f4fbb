//! Two `rollup-prover` worker processes prove one multi-leaf batch together; one is killed
//! with SIGKILL in the middle of a job. The batch still ends proven, every job (each leaf in
//! particular) was completed exactly once, and its settlement proof verifies against exactly
//! the L1 statement the node computes (SPEC 13.11), from the registry and from exported,
//! pinned verifier files, and against no other statement. The batch holds a split, so the
//! planner queues its split-credit chain as a fifth tree and the final circuit is the one that
//! verifies it (`final-1-splits`, SPEC 19.5): the whole path of a split, from the log to a
//! verified batch proof.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rollup_prover::cache::CircuitCache;
use rollup_prover::circuits::payment::PaymentCircuit;
use rollup_prover::circuits::registry::Circuits;
use rollup_prover::jobs::{JobKind, JobState, ProofTree};
use rollup_prover::pins::FinalId;
use rollup_prover::verify::{batch_proof_id, verify_batch_proof, VerifierSet, VerifyError};
use rollup_storage::{BatchStatus, SideTrees};

const LEAF_SIZE: usize = 2;

/// tree, kind, level, position, state, completions, attempts, completed_by
type JobRow = (
    ProofTree,
    JobKind,
    i32,
    i32,
    JobState,
    i32,
    i32,
    Option<String>,
);

fn worker(db: &str, id: &str, cache: &Path, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    Command::new(env!("CARGO_BIN_EXE_rollup-prover"))
        .args([
            "run",
            "--worker-id",
            id,
            "--leaf-size",
            &LEAF_SIZE.to_string(),
        ])
        .args([
            "--parallel-leaves",
            "1",
            "--threads",
            "1",
            "--heartbeat-secs",
            "1",
        ])
        .args(["--stale-after-secs", "4", "--idle-poll-ms", "200"])
        .arg("--cache-dir")
        .arg(cache)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "info,sqlx=warn")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start rollup-prover")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_one_killed_batch_still_proven_exactly_once() {
    let (db, jobs) = common::fresh("prover_fleet").await;
    // 4 txs (2 registrations, a deposit, a split), 2 per leaf: 2 leaves per tree, top level 1.
    common::seed_batch_with_split(&jobs, 2).await;
    let final_id = FinalId::v1(1).with_splits();

    // Build every circuit once, into the cache both workers share.
    let dir = tempfile::tempdir().unwrap();
    let circuits = Circuits::new(
        PaymentCircuit::build(LEAF_SIZE),
        CircuitCache::in_dir(dir.path()),
    );
    let t = Instant::now();
    tokio::task::block_in_place(|| circuits.final_circuit(final_id)).unwrap();
    eprintln!("circuits built in {:?}", t.elapsed());

    let logs = tempfile::tempdir().unwrap();
    let (log1, log2) = (logs.path().join("w1.log"), logs.path().join("w2.log"));
    let mut w1 = worker(&db, "w1", dir.path(), &log1);
    let mut w2 = worker(&db, "w2", dir.path(), &log2);
    let dump = |why: &str| {
        panic!(
            "{why}\n--- w1 ---\n{}\n--- w2 ---\n{}",
            std::fs::read_to_string(&log1).unwrap_or_default(),
            std::fs::read_to_string(&log2).unwrap_or_default()
        )
    };

    // Kill w1 while it holds a job.
    let deadline = Instant::now() + Duration::from_secs(180);
    let victim: i64 = loop {
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM prover_jobs WHERE state = $1 AND worker = 'w1' LIMIT 1",
        )
        .bind(JobState::Running)
        .fetch_optional(jobs.pool())
        .await
        .unwrap();
        if let Some(id) = held {
            break id;
        }
        if Instant::now() > deadline {
            dump("w1 never claimed a job");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    w1.kill().unwrap();
    let _ = w1.wait();
    eprintln!("killed w1 while it held job {victim}");

    let deadline = Instant::now() + Duration::from_secs(420);
    loop {
        let status = jobs.store().batches().status(1).await.unwrap();
        if status == Some(BatchStatus::Proven) {
            break;
        }
        if let Ok(Some(s)) = w2.try_wait() {
            dump(&format!("w2 exited early: {s}"));
        }
        if Instant::now() > deadline {
            dump(&format!("batch still {status:?}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Graceful stop of the survivor.
    // SAFETY: kill(2) on our own child.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(w2.id() as libc::pid_t, libc::SIGTERM)
    };
    let status = w2.wait().unwrap();
    assert!(status.success(), "w2 did not stop cleanly: {status}");

    let rows: Vec<JobRow> = sqlx::query_as(
        "SELECT tree, kind, level, position, state, completions, attempts, completed_by \
         FROM prover_jobs WHERE batch_number = 1 ORDER BY tree, kind, level, position",
    )
    .fetch_all(jobs.pool())
    .await
    .unwrap();
    eprintln!("{rows:#?}");
    // The batch has a split and no stream settlement: five trees, none of walks.
    let side = SideTrees {
        splits: true,
        walks: false,
    };
    for &tree in ProofTree::ALL {
        let of = |k: JobKind| rows.iter().filter(|r| r.0 == tree && r.1 == k).count();
        let expected = if ProofTree::of_batch(side).contains(&tree) {
            (2, 1)
        } else {
            (0, 0)
        };
        assert_eq!((of(JobKind::Leaf), of(JobKind::Merge)), expected, "{tree}");
    }
    assert_eq!(rows.iter().filter(|r| r.1 == JobKind::Final).count(), 1);
    for r in &rows {
        assert_eq!(r.4, JobState::Done, "{r:?}");
        assert_eq!(r.5, 1, "completed more or less than once: {r:?}");
    }
    let (attempts, by): (i32, String) =
        sqlx::query_as("SELECT attempts, completed_by FROM prover_jobs WHERE id = $1")
            .bind(victim)
            .fetch_one(jobs.pool())
            .await
            .unwrap();
    // The killed worker's job was taken over (unless w1 finished it in the instant before the
    // kill, in which case it was recorded once, by w1).
    assert!(attempts >= 2 || by == "w1", "attempts {attempts}, by {by}");

    let proof = jobs.batch_proof(1).await.unwrap().expect("a stored proof");
    assert_eq!(
        batch_proof_id(&proof).unwrap(),
        (final_id, 7),
        "a version 3 header"
    );
    let batch = jobs.batch(1).await.unwrap().unwrap();
    let expected = jobs.settlement_statement(&batch).await.unwrap();
    tokio::task::block_in_place(|| {
        verify_batch_proof(&circuits, &proof, &expected).unwrap();
        // Any other statement: rejected before the (costly) verification.
        let mut other = expected;
        other.payout_root[0] ^= 1;
        assert!(matches!(
            verify_batch_proof(&circuits, &proof, &other),
            Err(VerifyError::StatementMismatch)
        ));
        // The same proof through verifier data exported to files (what the node loads).
        let vdir = tempfile::tempdir().unwrap();
        let set = VerifierSet::from_source(&circuits, [final_id]).unwrap();
        let pins = set
            .write_dir(vdir.path(), circuits.cache().serializers())
            .unwrap();
        assert!(pins.get("final-1-splits").is_some(), "{pins:?}");
        let loaded =
            VerifierSet::load_dir(vdir.path(), circuits.cache().serializers(), &pins).unwrap();
        verify_batch_proof(&loaded, &proof, &expected).unwrap();
        assert!(verify_batch_proof(&loaded, &proof, &other).is_err());
        // Any flipped byte fails (sampled positions across header, inputs and body; against
        // the pinned set, so that a header naming another circuit finds no verifier rather
        // than having the registry build it).
        let n = proof.len();
        let mut positions = vec![0, 4, 5, 6, 7, 10, 40, n / 3, n / 2, n - 9, n - 1];
        positions.extend((0..8).map(|i| 7 + i * (n - 8) / 8));
        for pos in positions {
            let mut bad = proof.clone();
            bad[pos] ^= 0x01;
            let r = verify_batch_proof(&loaded, &bad, &expected);
            assert!(r.is_err(), "flipping byte {pos} of {n} still verifies");
        }
        // Without its splits bit, the kind byte of `v1` is refused (that circuit has a version
        // 2 header only), and that header names the final circuit without the chain, which
        // this deployment does not pin.
        let mut unsplit = proof.clone();
        unsplit[6] ^= rollup_prover::verify::SPLITS_BIT;
        assert!(matches!(
            verify_batch_proof(&loaded, &unsplit, &expected),
            Err(VerifyError::Kind(0))
        ));
        let version_2 = [&b"RBPF\x02\x01"[..], &proof[7..]].concat();
        assert!(matches!(
            verify_batch_proof(&loaded, &version_2, &expected),
            Err(VerifyError::NoVerifier { .. })
        ));
        assert!(verify_batch_proof(&loaded, &proof[..n - 1], &expected).is_err());
        assert!(verify_batch_proof(&loaded, b"garbage", &expected).is_err());
    });

    // The CLI verifies it from the database too.
    let out = Command::new(env!("CARGO_BIN_EXE_rollup-prover"))
        .args([
            "verify",
            "--batch",
            "1",
            "--leaf-size",
            &LEAF_SIZE.to_string(),
        ])
        .arg("--cache-dir")
        .arg(dir.path())
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
}
