//! The job queue against a real Postgres: claiming, reaping, fencing, promotion, planning.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use rollup_prover::circuits::leaf::chain_statement;
use rollup_prover::circuits::leaf::DummyLeaf;
use rollup_prover::circuits::trees::ChunkShape;
use rollup_prover::jobs::{JobKind, JobState, JobStore, ProofTree, TreeInputs};
use rollup_prover::planner::Planner;
use rollup_storage::{BatchStatus, DiffCircuitKind};

/// A made-up statement: the queue stores whatever a job proves without reading it.
fn st() -> serde_json::Value {
    serde_json::to_value(chain_statement(0, None)).unwrap()
}

/// Jobs of `kind` (all of them with `None` filters), in `state` and at `level` when given.
async fn count(
    jobs: &JobStore,
    kind: Option<JobKind>,
    state: Option<JobState>,
    level: Option<i32>,
) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM prover_jobs WHERE ($1::text IS NULL OR kind = $1) \
         AND ($2::text IS NULL OR state = $2) AND ($3::int IS NULL OR level = $3)",
    )
    .bind(kind)
    .bind(state)
    .bind(level)
    .fetch_one(jobs.pool())
    .await
    .unwrap()
}

/// A sealed batch row with four made-up leaf inputs per tree, planned (with a split-credit
/// chain and a tick-walk tree: six trees).
async fn planned(prefix: &str) -> JobStore {
    let (_url, jobs) = common::fresh(prefix).await;
    common::seed_batch(&jobs, 4).await;
    let leaves = |tag: u8| -> Vec<Vec<u8>> { (0..4u8).map(|i| vec![tag, i]).collect() };
    let inputs = TreeInputs {
        range: leaves(0),
        diff: leaves(1),
        // Not the default, and the newest kind (migration 0017's constraint admits it): every
        // job of the batch must carry the planner's choice.
        diff_kind: DiffCircuitKind::V4Shares,
        priority: leaves(2),
        payout: leaves(3),
        splits: Some(leaves(4)),
        walks: Some(leaves(5)),
    };
    let mut uneven = inputs.clone();
    uneven.payout.pop();
    assert!(jobs.plan_batch(1, &uneven).await.is_err(), "uneven trees");
    let mut uneven = inputs.clone();
    uneven.splits = Some(leaves(4)[..2].to_vec());
    assert!(
        jobs.plan_batch(1, &uneven).await.is_err(),
        "uneven split tree"
    );
    let mut uneven = inputs.clone();
    uneven.walks = Some(leaves(5)[..1].to_vec());
    assert!(
        jobs.plan_batch(1, &uneven).await.is_err(),
        "uneven tick-walk tree"
    );
    assert!(jobs.plan_batch(1, &inputs).await.unwrap());
    assert!(!jobs.plan_batch(1, &inputs).await.unwrap(), "planned twice");
    jobs
}

/// Claims and completes every queued job of `tree` (level by level) up to its root.
async fn finish_tree(jobs: &JobStore, tree: ProofTree) {
    loop {
        let mut done = 0;
        for j in jobs
            .claim("t", &[JobKind::Leaf, JobKind::Merge], 100)
            .await
            .unwrap()
        {
            assert_eq!(j.diff_kind, DiffCircuitKind::V4Shares, "{j:?}");
            assert!(j.splits && j.walks, "{j:?}");
            if j.tree == tree {
                assert!(jobs.complete(&j, "t", b"p", &st(), 1).await.unwrap());
                done += 1;
            } else {
                assert!(jobs.fail(&j, "t", "not this tree", 100).await.unwrap());
            }
        }
        if done == 0 {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_exclusive_and_merges_wait_for_children() {
    let jobs = planned("prover_jobs_claim").await;
    assert_eq!(count(&jobs, Some(JobKind::Leaf), None, None).await, 24);
    assert_eq!(
        count(&jobs, Some(JobKind::Merge), Some(JobState::Waiting), None).await,
        18
    );
    assert_eq!(count(&jobs, Some(JobKind::Final), None, Some(2)).await, 1);
    assert_eq!(
        jobs.store().batches().status(1).await.unwrap(),
        Some(BatchStatus::Proving)
    );

    // Twenty-eight concurrent claimers for twenty-four leaves: each leaf goes to exactly one.
    let mut handles = Vec::new();
    for w in 0..28 {
        let jobs = jobs.clone();
        handles.push(tokio::spawn(async move {
            jobs.claim(&format!("w{w}"), &[JobKind::Leaf], 1)
                .await
                .unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut claimed = Vec::new();
    for h in handles {
        for j in h.await.unwrap() {
            assert!(ids.insert(j.id), "job {} claimed twice", j.id);
            claimed.push(j);
        }
    }
    assert_eq!(claimed.len(), 24);
    assert!(jobs
        .claim("late", &[JobKind::Leaf, JobKind::Merge, JobKind::Final], 10)
        .await
        .unwrap()
        .is_empty());

    // The range tree: merges wait for both children.
    let mut range: Vec<_> = claimed
        .iter()
        .filter(|j| j.tree == ProofTree::Range)
        .cloned()
        .collect();
    range.sort_by_key(|j| j.position);
    for j in &range[..3] {
        let w = jobs_worker(&jobs, j.id).await;
        assert!(jobs.complete(j, &w, b"proof", &st(), 5).await.unwrap());
    }
    // Merge (1,0) is queued, (1,1) still waits for leaf 3.
    let merges = jobs.claim("m", &[JobKind::Merge], 10).await.unwrap();
    assert_eq!(merges.len(), 1);
    assert_eq!(
        (merges[0].tree, merges[0].level, merges[0].position),
        (ProofTree::Range, 1, 0)
    );
    assert_eq!(jobs.child_proofs(&merges[0]).await.unwrap().len(), 2);
    let w = jobs_worker(&jobs, range[3].id).await;
    assert!(jobs
        .complete(&range[3], &w, b"proof", &st(), 5)
        .await
        .unwrap());
    let merges2 = jobs.claim("m", &[JobKind::Merge], 10).await.unwrap();
    assert_eq!((merges2[0].level, merges2[0].position), (1, 1));
    assert!(jobs
        .complete(&merges[0], "m", b"p", &st(), 1)
        .await
        .unwrap());
    assert!(jobs
        .complete(&merges2[0], "m", b"p", &st(), 1)
        .await
        .unwrap());
    let top = jobs.claim("m", &[JobKind::Merge], 10).await.unwrap();
    assert_eq!((top[0].level, top[0].position), (2, 0));
    assert!(jobs
        .complete(&top[0], "m", b"root", &st(), 1)
        .await
        .unwrap());

    // The final job waits for the roots of the six trees.
    for j in claimed.iter().filter(|j| j.tree != ProofTree::Range) {
        let w = jobs_worker(&jobs, j.id).await;
        let proof = format!("{}-{}", j.tree.as_str(), j.position);
        assert!(jobs
            .complete(j, &w, proof.as_bytes(), &st(), 5)
            .await
            .unwrap());
    }
    for tree in [
        ProofTree::Diff,
        ProofTree::Priority,
        ProofTree::Payout,
        ProofTree::Splits,
        ProofTree::Walks,
    ] {
        assert!(
            jobs.claim("f", &[JobKind::Final], 10)
                .await
                .unwrap()
                .is_empty(),
            "the final job ran before the {tree} root"
        );
        finish_tree(&jobs, tree).await;
    }
    // The sweep agrees: back to waiting, it is queued again (all six roots are done).
    sqlx::query("UPDATE prover_jobs SET state = $1 WHERE kind = $2")
        .bind(JobState::Waiting)
        .bind(JobKind::Final)
        .execute(jobs.pool())
        .await
        .unwrap();
    assert_eq!(jobs.promote_ready().await.unwrap(), 1);
    let fin = jobs.claim("f", &[JobKind::Final], 10).await.unwrap();
    assert_eq!(fin.len(), 1);
    assert!(fin[0].splits && fin[0].walks);
    assert_eq!(
        jobs.child_proofs(&fin[0]).await.unwrap(),
        vec![
            b"root".to_vec(),
            b"p".to_vec(),
            b"p".to_vec(),
            b"p".to_vec(),
            b"p".to_vec(),
            b"p".to_vec()
        ]
    );
}

async fn jobs_worker(jobs: &JobStore, id: i64) -> String {
    sqlx::query_scalar("SELECT worker FROM prover_jobs WHERE id=$1")
        .bind(id)
        .fetch_one(jobs.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaped_jobs_are_requeued_and_late_results_are_fenced() {
    let jobs = planned("prover_jobs_reap").await;
    let a = jobs
        .claim("w1", &[JobKind::Leaf], 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(a.attempt, 1);
    assert_eq!(jobs.heartbeat(&[(a.id, a.attempt)], "w1").await.unwrap(), 1);
    // Fresh heartbeat: nothing to reap.
    assert!(jobs
        .reap(Duration::from_secs(60), 5)
        .await
        .unwrap()
        .is_empty());
    // w1 goes silent.
    sqlx::query("UPDATE prover_jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1")
        .bind(a.id)
        .execute(jobs.pool())
        .await
        .unwrap();
    assert_eq!(
        jobs.reap(Duration::from_secs(60), 5).await.unwrap(),
        vec![a.id]
    );
    // w2 takes it over (the lowest position comes first again).
    let b = jobs
        .claim("w2", &[JobKind::Leaf], 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((b.id, b.attempt), (a.id, 2));
    // w1 comes back: its heartbeat, result and failure are all refused.
    assert_eq!(jobs.heartbeat(&[(a.id, a.attempt)], "w1").await.unwrap(), 0);
    assert!(!jobs.complete(&a, "w1", b"late", &st(), 1).await.unwrap());
    assert!(!jobs.fail(&a, "w1", "boom", 5).await.unwrap());
    // Even the same worker id with the old attempt is fenced out.
    assert!(!jobs.complete(&a, "w2", b"late", &st(), 1).await.unwrap());
    assert!(jobs.complete(&b, "w2", b"good", &st(), 1).await.unwrap());
    assert!(!jobs.complete(&b, "w2", b"again", &st(), 1).await.unwrap());
    let (completions, proof, by): (i32, Vec<u8>, String) =
        sqlx::query_as("SELECT completions, proof, completed_by FROM prover_jobs WHERE id = $1")
            .bind(a.id)
            .fetch_one(jobs.pool())
            .await
            .unwrap();
    assert_eq!(
        (completions, proof.as_slice(), by.as_str()),
        (1, &b"good"[..], "w2")
    );

    // Attempts run out: failed, not re-queued.
    let c = jobs
        .claim("w3", &[JobKind::Leaf], 1)
        .await
        .unwrap()
        .remove(0);
    assert!(jobs.fail(&c, "w3", "transient", 2).await.unwrap());
    let c2 = jobs
        .claim("w3", &[JobKind::Leaf], 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((c2.id, c2.attempt), (c.id, 2));
    assert!(jobs.fail(&c2, "w3", "again", 2).await.unwrap());
    let state: JobState = sqlx::query_scalar("SELECT state FROM prover_jobs WHERE id=$1")
        .bind(c.id)
        .fetch_one(jobs.pool())
        .await
        .unwrap();
    assert_eq!(state, JobState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planner_makes_jobs_once_and_only_one_planner_runs() {
    let (url, jobs) = common::fresh("prover_jobs_plan").await;
    common::seed_batch(&jobs, 3).await; // 6 txs, k = 2: 3 leaves padded to 4
    let leaf = DummyLeaf::build(2);
    let mut p1 = Planner::new(&url);
    let mut p2 = Planner::new(&url);
    let r1 = p1
        .tick(&jobs, &leaf, ChunkShape::for_leaf(2))
        .await
        .unwrap();
    assert_eq!(r1.planned, vec![1]);
    assert!(p1.is_leader());
    let r2 = p2
        .tick(&jobs, &leaf, ChunkShape::for_leaf(2))
        .await
        .unwrap();
    assert!(r2.planned.is_empty() && !p2.is_leader());
    // Four leaves per tree: the range needs 4 (3 padded), the chained trees are padded to it.
    assert_eq!(count(&jobs, Some(JobKind::Leaf), None, None).await, 16);
    for &tree in ProofTree::ALL {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM prover_jobs WHERE kind = $1 AND tree = $2")
                .bind(JobKind::Leaf)
                .bind(tree)
                .fetch_one(jobs.pool())
                .await
                .unwrap();
        // No split and no stream settlement in the batch: neither side tree.
        let side = matches!(tree, ProofTree::Splits | ProofTree::Walks);
        let expected = if side { 0 } else { 4 };
        assert_eq!(n, expected, "{tree}");
    }
    // The statements chain from the batch's old root to its new root.
    let first: Vec<u8> = sqlx::query_scalar(
        "SELECT input FROM prover_jobs WHERE kind = $1 AND tree = $2 AND position = 0",
    )
    .bind(JobKind::Leaf)
    .bind(ProofTree::Range)
    .fetch_one(jobs.pool())
    .await
    .unwrap();
    let w: rollup_prover::circuits::leaf::DummyLeafWitness =
        serde_json::from_slice(&first).unwrap();
    let b = jobs.batch(1).await.unwrap().unwrap();
    assert_eq!(w.statement.old_root, b.old_root);
    assert_eq!(w.statement.timestamp, common::T0);
    // The leader goes away: the other one takes over.
    drop(p1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    p2.tick(&jobs, &leaf, ChunkShape::for_leaf(2))
        .await
        .unwrap();
    assert!(p2.is_leader());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_rules_reject_is_marked_and_not_planned() {
    let (url, jobs) = common::fresh("prover_jobs_reject").await;
    common::seed_batch(&jobs, 2).await;
    // Corrupt the log: deposit serials out of order.
    sqlx::query("DELETE FROM transactions WHERE seq = 3")
        .execute(jobs.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE transactions SET seq = 3 WHERE seq = 4")
        .execute(jobs.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE batches SET last_seq = 3, tx_count = 3")
        .execute(jobs.pool())
        .await
        .unwrap();
    let mut p = Planner::new(&url);
    let r = p
        .tick(&jobs, &DummyLeaf::build(2), ChunkShape::for_leaf(2))
        .await
        .unwrap();
    assert_eq!(r.rejected, vec![1]);
    let (status, why): (BatchStatus, Option<String>) =
        sqlx::query_as("SELECT status, rejection FROM batches WHERE number=1")
            .fetch_one(jobs.pool())
            .await
            .unwrap();
    assert_eq!(status, BatchStatus::Rejected);
    assert!(why.unwrap().len() > 3);
    assert_eq!(count(&jobs, None, None, None).await, 0);
    let r = p
        .tick(&jobs, &DummyLeaf::build(2), ChunkShape::for_leaf(2))
        .await
        .unwrap();
    assert_eq!(r.blocked_at, Some(1));
}
