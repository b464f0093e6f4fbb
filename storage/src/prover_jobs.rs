//! `prover_jobs` and `batch_proofs`: the prover fleet's job queue and the final proofs.
//!
//! A batch is proven by four trees of jobs ([`ProofTree`], SPEC 13.11): its transactions
//! (`range`), its state diff, the priority ops it consumed and its payout tree; a batch with a
//! split has a fifth, its split-credit chain (`splits`, every job of the batch says so in its
//! `splits` column). Each tree of a
//! batch of `2^L` leaves has `2^L` leaf jobs (level 0, `queued`, input = the serialized chunk
//! witness) and `2^(L-l)` merge jobs at each level `l` in `1..=L`; one final job at level `L`
//! (filed under `range`) verifies the roots. All are created by [`JobsDal::plan_batch`] in
//! the transaction that moves the batch `sealed -> proving`. A merge job at `(tree, l, p)`
//! becomes `queued` when both children `(tree, l-1, 2p)` and `(tree, l-1, 2p+1)` are done; the
//! final job when the roots `(tree, L, 0)` of all the batch's trees are. The promotion happens in the transaction
//! that completes the last child, after locking the parent row (so two children completing at
//! once cannot both miss each other); [`JobsDal::promote_ready`] is a sweep that catches
//! anything missed.
//!
//! Claiming is `SELECT ... FOR UPDATE SKIP LOCKED` in a transaction: workers never wait for each
//! other and never get the same job. A claim sets `running`, the worker id and the heartbeat, and
//! increments `attempts`; `(worker, attempts)` is the fencing token ([`ClaimedJob`]): completion,
//! failure and heartbeats only touch the row while it is still `running` under that exact token.
//! A worker that stops heartbeating has its jobs re-queued by [`JobsDal::reap`]; a late result
//! from it no longer matches its token and is dropped, so every job completes exactly once
//! (`completions` counts it).
//!
//! A batch's final proof lands in `batch_proofs` in the same transaction as the `proving ->
//! proven` transition ([`crate::batches::transition`]): a batch is `proven` iff its proof is
//! stored.
//!
//! Job states, kinds and trees are bound as [`JobState`] / [`JobKind`] / [`ProofTree`] values,
//! never spelled in SQL. The statements proven (the prover's chunk and range statements, the
//! L1 statement of the final proof) are typed serde documents written as JSONB through
//! [`sqlx::types::Json`]; this crate does not know their shape (the prover's circuits define
//! them), hence the generic parameters.

use futures::TryStreamExt;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Connection, FromRow, PgConnection, PgPool, Postgres, Row, Transaction};

use crate::batches::transition;
use crate::convert::{decode_err, i64_of, u32_of, u64_of};
use crate::log::{TxRow, TX_COLUMNS};
use crate::status::{
    BatchStatus, DiffCircuitKind, Finality, JobKind, JobState, ProofTree, SideTrees,
};
use crate::{Result, StorageError};

/// Advisory lock key of the batch planner ("rollup-p"): exactly one planner runs across the
/// fleet, the holder of this session lock ([`PlannerLock`]).
pub const PLANNER_LOCK: i64 = 0x726f_6c6c_7570_2d70;

/// A job a worker holds. `(worker, attempt)` is its fencing token: every later write about the
/// job names it and is refused once the job was re-queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub batch: u64,
    pub tree: ProofTree,
    pub kind: JobKind,
    pub level: u32,
    pub position: u32,
    /// The attempt number this claim made (`attempts` after the claim).
    pub attempt: i32,
    /// Leaf jobs: the serialized chunk witness of its tree.
    pub input: Option<Vec<u8>>,
    /// The circuit of the batch's diff tree and final job (the same on every job of a batch).
    pub diff_kind: DiffCircuitKind,
    /// Whether the batch has a split-credit tree (the same on every job of a batch).
    pub splits: bool,
    /// Whether the batch has a tick-walk tree (the same on every job of a batch).
    pub walks: bool,
}

impl<'r> FromRow<'r, PgRow> for ClaimedJob {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let u32_col = |name: &str| -> Result<u32, sqlx::Error> {
            u32_of(i64::from(row.try_get::<i32, _>(name)?), name).map_err(|e| decode_err(name, e))
        };
        Ok(ClaimedJob {
            id: row.try_get("id")?,
            batch: u64_of(row.try_get::<i64, _>("batch_number")?, "batch_number")
                .map_err(|e| decode_err("batch_number", e))?,
            tree: row.try_get("tree")?,
            kind: row.try_get("kind")?,
            level: u32_col("level")?,
            position: u32_col("position")?,
            attempt: row.try_get("attempts")?,
            input: row.try_get("input")?,
            diff_kind: row.try_get("diff_kind")?,
            splits: row.try_get("splits")?,
            walks: row.try_get("walks")?,
        })
    }
}

/// One group of `SELECT kind, state, count(*) FROM prover_jobs GROUP BY kind, state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
struct JobCount {
    kind: JobKind,
    state: JobState,
    count: i64,
}

/// The batch side of [`QueueStats`], one row over `batches`.
#[derive(Clone, Copy, Debug, sqlx::FromRow)]
struct BatchLag {
    unproven: i64,
    oldest_unproven_secs: f64,
    last_sealed: i64,
    last_proven: i64,
}

/// Queue and lag figures for the prover's metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueStats {
    /// Jobs per `(kind, state)`; pairs with no job are absent.
    pub jobs: Vec<(JobKind, JobState, i64)>,
    /// Batches sealed by the sequencer but not yet proven (`sealed` or `proving`).
    pub unproven_batches: u64,
    /// Age of the oldest unproven batch, seconds (0 when none).
    pub oldest_unproven_secs: f64,
    pub last_sealed: u64,
    /// The highest batch proven or beyond.
    pub last_proven: u64,
}

/// The serialized chunk witnesses of a batch's trees (leaf job inputs), in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeInputs {
    pub range: Vec<Vec<u8>>,
    /// Chunks of the circuit of `diff_kind`.
    pub diff: Vec<Vec<u8>>,
    pub diff_kind: DiffCircuitKind,
    pub priority: Vec<Vec<u8>>,
    pub payout: Vec<Vec<u8>>,
    /// The split-credit chain's chunks, for a batch with a split.
    pub splits: Option<Vec<Vec<u8>>>,
    /// The tick-walk tree's chunks, for a batch with a stream settlement.
    pub walks: Option<Vec<Vec<u8>>>,
}

impl TreeInputs {
    /// The optional trees the batch has.
    pub fn side(&self) -> SideTrees {
        SideTrees {
            splits: self.splits.is_some(),
            walks: self.walks.is_some(),
        }
    }

    /// The batch's trees ([`ProofTree::of_batch`]).
    pub fn trees(&self) -> &'static [ProofTree] {
        ProofTree::of_batch(self.side())
    }

    /// The chunks of `tree` (none for a tree the batch does not have).
    pub fn of(&self, tree: ProofTree) -> &[Vec<u8>] {
        match tree {
            ProofTree::Range => &self.range,
            ProofTree::Diff => &self.diff,
            ProofTree::Priority => &self.priority,
            ProofTree::Payout => &self.payout,
            ProofTree::Splits => self.splits.as_deref().unwrap_or_default(),
            ProofTree::Walks => self.walks.as_deref().unwrap_or_default(),
        }
    }
}

/// One job of a batch's proof trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobNode {
    pub tree: ProofTree,
    pub kind: JobKind,
    pub level: u32,
    pub position: u32,
}

impl JobNode {
    /// The leaf or merge job at `(level, position)` of `tree`.
    pub fn at(tree: ProofTree, level: u32, position: u32) -> JobNode {
        let kind = if level == 0 {
            JobKind::Leaf
        } else {
            JobKind::Merge
        };
        JobNode {
            tree,
            kind,
            level,
            position,
        }
    }

    /// The final job of a batch whose trees have `top` levels above the leaves.
    pub fn final_at(top: u32) -> JobNode {
        JobNode {
            tree: ProofTree::Range,
            kind: JobKind::Final,
            level: top,
            position: 0,
        }
    }

    /// The job this one's proof feeds, in a batch whose final job is at level `top`.
    pub fn parent(&self, top: u32) -> Option<JobNode> {
        match self.kind {
            JobKind::Final => None,
            _ if self.level == top => Some(JobNode::final_at(top)),
            _ => Some(JobNode::at(self.tree, self.level + 1, self.position / 2)),
        }
    }

    /// The jobs whose proofs this one consumes, in order: none for a leaf, the left and right
    /// child for a merge, the roots of the batch's trees (in [`ProofTree::of_batch`] order,
    /// `side`: the optional trees it has) for the final job.
    pub fn children(&self, side: SideTrees) -> Vec<JobNode> {
        match self.kind {
            JobKind::Leaf => Vec::new(),
            JobKind::Merge => match self.level.checked_sub(1) {
                Some(below) => (0..2)
                    .map(|i| JobNode::at(self.tree, below, 2 * self.position + i))
                    .collect(),
                None => Vec::new(),
            },
            JobKind::Final => ProofTree::of_batch(side)
                .iter()
                .map(|&t| JobNode::at(t, self.level, 0))
                .collect(),
        }
    }
}

impl ClaimedJob {
    /// The optional trees of the job's batch.
    pub fn side(&self) -> SideTrees {
        SideTrees {
            splits: self.splits,
            walks: self.walks,
        }
    }

    pub fn node(&self) -> JobNode {
        JobNode {
            tree: self.tree,
            kind: self.kind,
            level: self.level,
            position: self.position,
        }
    }
}

fn i32_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// `running` under this worker and attempt: `$1` id, `$2` worker, `$3` attempt, `$4` the
/// `running` state.
const FENCE: &str = "id = $1 AND worker = $2 AND attempts = $3 AND state = $4";

/// The planner's session advisory lock, held on a connection of its own: it is released when
/// the connection goes (crash, network), so another worker takes over.
#[derive(Debug)]
pub struct PlannerLock {
    conn: PgConnection,
}

impl PlannerLock {
    /// Takes [`PLANNER_LOCK`] on a new connection to `url`; `None` when another session holds
    /// it.
    pub async fn try_take(url: &str) -> Result<Option<PlannerLock>> {
        let mut conn = PgConnection::connect(url).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(PLANNER_LOCK)
            .fetch_one(&mut conn)
            .await?;
        Ok(got.then_some(PlannerLock { conn }))
    }

    /// Whether the lock's connection still answers (the lock lives exactly as long).
    pub async fn is_alive(&mut self) -> bool {
        self.conn.ping().await.is_ok()
    }
}

pub struct JobsDal<'a> {
    pool: &'a PgPool,
}

impl<'a> JobsDal<'a> {
    pub(crate) fn new(pool: &'a PgPool) -> Self {
        JobsDal { pool }
    }

    // ---- the log, as the planner reads it ------------------------------------------------

    /// Streams the transactions with `seq` in `[from, to]` in order (the planner replays the
    /// log and loads each batch's transactions). `f`'s error stops the stream and is returned.
    pub async fn for_each_tx_between<E: From<StorageError>>(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(TxRow) -> Result<(), E>,
    ) -> Result<u64, E> {
        let sql = format!(
            "SELECT {TX_COLUMNS} FROM transactions WHERE seq BETWEEN $1 AND $2 ORDER BY seq"
        );
        let mut rows = sqlx::query_as::<_, TxRow>(&sql)
            .bind(i64_of(from))
            .bind(i64_of(to))
            .fetch(self.pool);
        let mut n = 0;
        while let Some(row) = rows.try_next().await.map_err(StorageError::from)? {
            f(row)?;
            n += 1;
        }
        Ok(n)
    }

    // ---- planning ---------------------------------------------------------------------------

    /// Creates every job of batch `batch` and moves it `sealed -> proving`, atomically.
    /// `inputs` are the serialized chunk witnesses of each tree (the same power-of-two count
    /// for all the batch's trees, else nothing is written and [`StorageError::Corrupt`] is
    /// returned).
    /// Returns false, writing nothing, if the batch was not `sealed` any more (another planner
    /// took it).
    pub async fn plan_batch(&self, batch: u64, inputs: &TreeInputs) -> Result<bool> {
        let n = inputs.range.len();
        let trees = inputs.trees();
        if !n.is_power_of_two() || trees.iter().any(|&t| inputs.of(t).len() != n) {
            return Err(StorageError::Corrupt(format!(
                "batch {batch}: chunk counts {:?} are not one power of two",
                trees
                    .iter()
                    .map(|&t| inputs.of(t).len())
                    .collect::<Vec<_>>()
            )));
        }
        let top = n.trailing_zeros();
        let mut db = self.pool.begin().await?;
        if !transition(
            &mut db,
            batch,
            BatchStatus::Sealed,
            BatchStatus::Proving,
            None,
        )
        .await?
        {
            db.rollback().await?;
            return Ok(false);
        }
        let b = i64_of(batch);
        let positions: Vec<i32> = (0..i32::try_from(n).unwrap_or(i32::MAX)).collect();
        let SideTrees { splits, walks } = inputs.side();
        for &tree in trees {
            sqlx::query(
                "INSERT INTO prover_jobs \
                 (batch_number, tree, kind, level, position, state, input, diff_kind, splits, \
                 walks) \
                 SELECT $1, $6, $4, 0, p, $5, i, $7, $8, $9 \
                 FROM UNNEST($2::int[], $3::bytea[]) AS t(p, i)",
            )
            .bind(b)
            .bind(&positions)
            .bind(inputs.of(tree))
            .bind(JobKind::Leaf)
            .bind(JobState::Queued)
            .bind(tree)
            .bind(inputs.diff_kind)
            .bind(splits)
            .bind(walks)
            .execute(&mut *db)
            .await?;
            for level in 1..=top {
                sqlx::query(
                    "INSERT INTO prover_jobs \
                     (batch_number, tree, kind, level, position, state, diff_kind, splits, walks) \
                     SELECT $1, $6, $4, $2, p, $5, $7, $8, $9 \
                     FROM generate_series(0, $3 - 1) AS p",
                )
                .bind(b)
                .bind(i32_of(level))
                .bind(1i32 << (top - level))
                .bind(JobKind::Merge)
                .bind(JobState::Waiting)
                .bind(tree)
                .bind(inputs.diff_kind)
                .bind(splits)
                .bind(walks)
                .execute(&mut *db)
                .await?;
            }
        }
        let fin = JobNode::final_at(top);
        sqlx::query(
            "INSERT INTO prover_jobs \
             (batch_number, tree, kind, level, position, state, diff_kind, splits, walks) \
             VALUES ($1, $5, $3, $2, 0, $4, $6, $7, $8)",
        )
        .bind(b)
        .bind(i32_of(top))
        .bind(fin.kind)
        .bind(JobState::Waiting)
        .bind(fin.tree)
        .bind(inputs.diff_kind)
        .bind(splits)
        .bind(walks)
        .execute(&mut *db)
        .await?;
        db.commit().await?;
        Ok(true)
    }

    // ---- claiming and completing --------------------------------------------------------

    /// Claims up to `limit` queued jobs of the given kinds for `worker`: oldest batch first, and
    /// within a batch the final job, then merges (highest level first), then leaves, so batches
    /// finish early. Sorted by `(batch, level, position)`.
    pub async fn claim(
        &self,
        worker: &str,
        kinds: &[JobKind],
        limit: usize,
    ) -> Result<Vec<ClaimedJob>> {
        let mut db = self.pool.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM prover_jobs WHERE state = $3 AND kind = ANY($1) \
             ORDER BY batch_number, CASE kind WHEN $4 THEN 0 WHEN $5 THEN 1 ELSE 2 END, \
             level DESC, position \
             LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(kinds)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(JobState::Queued)
        .bind(JobKind::Final)
        .bind(JobKind::Merge)
        .fetch_all(&mut *db)
        .await?;
        if ids.is_empty() {
            db.rollback().await?;
            return Ok(Vec::new());
        }
        let mut jobs = sqlx::query_as::<_, ClaimedJob>(
            "UPDATE prover_jobs SET state = $3, worker = $2, attempts = attempts + 1, \
             heartbeat_at = now(), started_at = now(), error = NULL \
             WHERE id = ANY($1) \
             RETURNING id, batch_number, tree, kind, level, position, attempts, input, diff_kind, \
             splits, walks",
        )
        .bind(&ids)
        .bind(worker)
        .bind(JobState::Running)
        .fetch_all(&mut *db)
        .await?;
        db.commit().await?;
        jobs.sort_by_key(|j| (j.batch, j.level, j.position));
        Ok(jobs)
    }

    /// The proofs a merge or final job consumes, in [`JobNode::children`] order (left, right
    /// / the roots); none for a leaf. A claimed merge or final job was queued only once
    /// its children were done, so a missing child proof is a corrupt queue.
    pub async fn child_proofs(&self, job: &ClaimedJob) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for child in job.node().children(job.side()) {
            let proof: Option<Option<Vec<u8>>> = sqlx::query_scalar(
                "SELECT proof FROM prover_jobs WHERE batch_number = $1 AND tree = $2 \
                 AND kind = $3 AND level = $4 AND position = $5 AND state = $6",
            )
            .bind(i64_of(job.batch))
            .bind(child.tree)
            .bind(child.kind)
            .bind(i32_of(child.level))
            .bind(i32_of(child.position))
            .bind(JobState::Done)
            .fetch_optional(self.pool)
            .await?;
            match proof {
                Some(Some(p)) => out.push(p),
                Some(None) => {
                    return Err(StorageError::Corrupt(format!(
                        "job {}: a done child has no proof",
                        job.id
                    )))
                }
                None => {
                    return Err(StorageError::Corrupt(format!(
                        "job {}: its child {child:?} is not done",
                        job.id
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Records a leaf or merge proof and the statement it proves, and queues the parent when
    /// its inputs are complete. Returns false (and changes nothing) if the job is no longer
    /// `worker`'s under this attempt.
    pub async fn complete<S: Serialize + Sync>(
        &self,
        job: &ClaimedJob,
        worker: &str,
        proof: &[u8],
        statement: &S,
        prove_ms: u64,
    ) -> Result<bool> {
        let mut db = self.pool.begin().await?;
        if !finish_fenced(&mut db, job, worker, proof, statement, prove_ms).await? {
            db.rollback().await?;
            return Ok(false);
        }
        let top: i32 = sqlx::query_scalar(
            "SELECT level FROM prover_jobs WHERE batch_number = $1 AND kind = $2",
        )
        .bind(i64_of(job.batch))
        .bind(JobKind::Final)
        .fetch_one(&mut *db)
        .await?;
        let top = u32_of(i64::from(top), "final job level")?;
        if let Some(parent) = job.node().parent(top) {
            promote_if_ready(&mut db, job.batch, parent, job.side()).await?;
        }
        db.commit().await?;
        Ok(true)
    }

    /// Records the final proof (already verified by the caller against the batch's own rows),
    /// stores it in `batch_proofs` with the statement and its digest (the public input), and
    /// moves the batch `proving -> proven`, in one transaction. Returns false (and changes
    /// nothing) if the job is no longer `worker`'s under this attempt.
    pub async fn complete_final<S: Serialize + Sync>(
        &self,
        job: &ClaimedJob,
        worker: &str,
        batch_proof: &[u8],
        statement: &S,
        statement_hash: &[u8; 32],
        prove_ms: u64,
    ) -> Result<bool> {
        let mut db = self.pool.begin().await?;
        if !finish_fenced(&mut db, job, worker, batch_proof, statement, prove_ms).await? {
            db.rollback().await?;
            return Ok(false);
        }
        // The final job completes once (fenced above), so the conflict arm only matters for a
        // database an operator repaired by hand: the first stored proof stays.
        sqlx::query(
            "INSERT INTO batch_proofs (batch_number, top_level, proof, statement, digest, leaves, prove_ms) \
             SELECT $1, $2, $3, $4, $5, \
               (SELECT count(*) FROM prover_jobs WHERE batch_number = $1 AND kind = $6 AND tree = $7), \
               (SELECT coalesce(sum(prove_ms), 0) FROM prover_jobs WHERE batch_number = $1) \
             ON CONFLICT (batch_number) DO NOTHING",
        )
        .bind(i64_of(job.batch))
        .bind(i32_of(job.level))
        .bind(batch_proof)
        .bind(Json(statement))
        .bind(statement_hash.to_vec())
        .bind(JobKind::Leaf)
        .bind(ProofTree::Range)
        .execute(&mut *db)
        .await?;
        // Not `proving` any more only if an operator moved it meanwhile; the proof is kept
        // either way (it proves the batch's rows, whatever their status says).
        transition(
            &mut db,
            job.batch,
            BatchStatus::Proving,
            BatchStatus::Proven,
            None,
        )
        .await?;
        db.commit().await?;
        Ok(true)
    }

    /// Gives a job back: re-queued while attempts remain (`attempts < max_attempts`), else
    /// `failed`. Fenced: false when the job is no longer `worker`'s under this attempt.
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        worker: &str,
        error: &str,
        max_attempts: i32,
    ) -> Result<bool> {
        let sql = format!(
            "UPDATE prover_jobs SET state = CASE WHEN attempts >= $5 THEN $7 ELSE $8 END, \
             error = $6, worker = NULL, finished_at = now() WHERE {FENCE}"
        );
        let n = sqlx::query(&sql)
            .bind(job.id)
            .bind(worker)
            .bind(job.attempt)
            .bind(JobState::Running)
            .bind(max_attempts)
            .bind(error)
            .bind(JobState::Failed)
            .bind(JobState::Queued)
            .execute(self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Refreshes the heartbeat of the jobs `worker` still holds, given as `(id, attempt)`;
    /// returns how many it holds.
    pub async fn heartbeat(&self, jobs: &[(i64, i32)], worker: &str) -> Result<u64> {
        let ids: Vec<i64> = jobs.iter().map(|j| j.0).collect();
        let attempts: Vec<i32> = jobs.iter().map(|j| j.1).collect();
        Ok(sqlx::query(
            "UPDATE prover_jobs j SET heartbeat_at = now() \
             FROM UNNEST($1::bigint[], $2::int[]) AS t(id, a) \
             WHERE j.id = t.id AND j.attempts = t.a AND j.worker = $3 AND j.state = $4",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(worker)
        .bind(JobState::Running)
        .execute(self.pool)
        .await?
        .rows_affected())
    }

    /// Re-queues running jobs whose heartbeat is older than `stale_after` (or fails those that
    /// used `max_attempts`). Returns the ids re-queued or failed.
    pub async fn reap(
        &self,
        stale_after: std::time::Duration,
        max_attempts: i32,
    ) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE prover_jobs SET state = CASE WHEN attempts >= $2 THEN $4 ELSE $5 END, \
             error = 'worker ' || coalesce(worker, '?') || ' stopped heartbeating', worker = NULL \
             WHERE state = $3 AND heartbeat_at < now() - make_interval(secs => $1) \
             RETURNING id",
        )
        .bind(stale_after.as_secs_f64())
        .bind(max_attempts)
        .bind(JobState::Running)
        .bind(JobState::Failed)
        .bind(JobState::Queued)
        .fetch_all(self.pool)
        .await?)
    }

    /// Queues every waiting job whose inputs are all done (the sweep behind the promotion done
    /// on completion). Returns how many it queued.
    pub async fn promote_ready(&self) -> Result<u64> {
        // A merge's children: its tree, one level down, positions 2p and 2p+1. The final's:
        // the root (position 0, its level) of every tree of its batch.
        Ok(sqlx::query(
            "UPDATE prover_jobs p SET state = $1 WHERE p.state = $2 AND ( \
               (p.kind = $3 AND (SELECT count(*) FROM prover_jobs c \
                  WHERE c.batch_number = p.batch_number AND c.tree = p.tree \
                  AND c.level = p.level - 1 \
                  AND c.kind = CASE WHEN p.level = 1 THEN $4 ELSE $3 END \
                  AND c.position IN (2 * p.position, 2 * p.position + 1) AND c.state = $5) = 2) \
               OR (p.kind = $6 AND (SELECT count(*) FROM prover_jobs c \
                  WHERE c.batch_number = p.batch_number AND c.level = p.level \
                  AND c.kind = CASE WHEN p.level = 0 THEN $4 ELSE $3 END \
                  AND c.position = 0 AND c.state = $5) \
                  = $7 + p.splits::int + p.walks::int))",
        )
        .bind(JobState::Queued)
        .bind(JobState::Waiting)
        .bind(JobKind::Merge)
        .bind(JobKind::Leaf)
        .bind(JobState::Done)
        .bind(JobKind::Final)
        .bind(ProofTree::of_batch(SideTrees::default()).len() as i64)
        .execute(self.pool)
        .await?
        .rows_affected())
    }

    // ---- reads ------------------------------------------------------------------------------

    /// Job counts per kind and state, and how far proving lags behind sealing.
    pub async fn stats(&self) -> Result<QueueStats> {
        let counts = sqlx::query_as::<_, JobCount>(
            "SELECT kind, state, count(*) AS count FROM prover_jobs GROUP BY kind, state",
        )
        .fetch_all(self.pool)
        .await?;
        let lag = sqlx::query_as::<_, BatchLag>(
            "SELECT count(*) FILTER (WHERE status = ANY($1)) AS unproven, \
             coalesce(extract(epoch FROM now() - min(created_at) \
               FILTER (WHERE status = ANY($1)))::float8, 0) AS oldest_unproven_secs, \
             coalesce(max(number), 0) AS last_sealed, \
             coalesce(max(number) FILTER (WHERE status = ANY($2)), 0) AS last_proven \
             FROM batches",
        )
        .bind([BatchStatus::Sealed, BatchStatus::Proving].as_slice())
        .bind(BatchStatus::at_least(Finality::Proven))
        .fetch_one(self.pool)
        .await?;
        Ok(QueueStats {
            jobs: counts.iter().map(|c| (c.kind, c.state, c.count)).collect(),
            unproven_batches: u64_of(lag.unproven, "count")?,
            oldest_unproven_secs: lag.oldest_unproven_secs,
            last_sealed: u64_of(lag.last_sealed, "batch number")?,
            last_proven: u64_of(lag.last_proven, "batch number")?,
        })
    }

    /// The stored final proof of batch `batch` (`batch_proofs.proof`), if it is proven.
    pub async fn batch_proof(&self, batch: u64) -> Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT proof FROM batch_proofs WHERE batch_number = $1")
                .bind(i64_of(batch))
                .fetch_optional(self.pool)
                .await?,
        )
    }
}

impl<'a> std::fmt::Debug for JobsDal<'a> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobsDal")
    }
}

/// Marks a job `done` with its proof and statement if it is still `running` under the claim's
/// token. Returns whether it did.
async fn finish_fenced<S: Serialize + Sync>(
    db: &mut Transaction<'_, Postgres>,
    job: &ClaimedJob,
    worker: &str,
    proof: &[u8],
    statement: &S,
    prove_ms: u64,
) -> Result<bool> {
    let sql = format!(
        "UPDATE prover_jobs SET state = $5, proof = $6, statement = $7, prove_ms = $8, \
         finished_at = now(), completions = completions + 1, completed_by = $2 WHERE {FENCE}"
    );
    let n = sqlx::query(&sql)
        .bind(job.id)
        .bind(worker)
        .bind(job.attempt)
        .bind(JobState::Running)
        .bind(JobState::Done)
        .bind(proof)
        .bind(Json(statement))
        .bind(i64_of(prove_ms))
        .execute(&mut **db)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Queues the waiting job `node` of `batch` (`side`: its optional trees) if all its children
/// are done.
async fn promote_if_ready(
    db: &mut Transaction<'_, Postgres>,
    batch: u64,
    node: JobNode,
    side: SideTrees,
) -> Result<()> {
    // Lock the parent first: a sibling completing concurrently waits here, then sees our
    // committed row when it counts.
    let parent: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM prover_jobs WHERE batch_number = $1 AND tree = $6 AND kind = $2 \
         AND level = $3 AND position = $4 AND state = $5 FOR UPDATE",
    )
    .bind(i64_of(batch))
    .bind(node.kind)
    .bind(i32_of(node.level))
    .bind(i32_of(node.position))
    .bind(JobState::Waiting)
    .bind(node.tree)
    .fetch_optional(&mut **db)
    .await?;
    let Some(parent) = parent else { return Ok(()) };
    let children = node.children(side);
    let mut done = 0;
    for c in &children {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM prover_jobs WHERE batch_number = $1 AND tree = $2 \
             AND kind = $3 AND level = $4 AND position = $5 AND state = $6",
        )
        .bind(i64_of(batch))
        .bind(c.tree)
        .bind(c.kind)
        .bind(i32_of(c.level))
        .bind(i32_of(c.position))
        .bind(JobState::Done)
        .fetch_one(&mut **db)
        .await?;
        done += n;
    }
    if usize::try_from(done).ok() == Some(children.len()) {
        sqlx::query("UPDATE prover_jobs SET state = $2 WHERE id = $1")
            .bind(parent)
            .bind(JobState::Queued)
            .execute(&mut **db)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trees_link_each_job_to_its_parent_and_back() {
        let at = JobNode::at;
        for &t in ProofTree::ALL {
            assert_eq!(at(t, 0, 3).parent(2), Some(at(t, 1, 1)));
            assert_eq!(at(t, 2, 0).parent(2), Some(JobNode::final_at(2)));
            assert_eq!(at(t, 0, 0).parent(0), Some(JobNode::final_at(0)));
            let (none, both) = (
                SideTrees::default(),
                SideTrees {
                    splits: true,
                    walks: true,
                },
            );
            assert_eq!(at(t, 0, 3).children(none), vec![]);
            assert_eq!(at(t, 1, 1).children(both), vec![at(t, 0, 2), at(t, 0, 3)]);
            assert_eq!(at(t, 2, 0).children(none), vec![at(t, 1, 0), at(t, 1, 1)]);
            for top in [0, 2] {
                let fin = JobNode::final_at(top);
                assert_eq!(fin.parent(top), None);
                for (splits, walks) in [(false, false), (true, false), (false, true), (true, true)]
                {
                    let roots = fin.children(SideTrees { splits, walks });
                    assert_eq!(roots.len(), 4 + usize::from(splits) + usize::from(walks));
                    let has = match t {
                        ProofTree::Splits => splits,
                        ProofTree::Walks => walks,
                        _ => true,
                    };
                    assert_eq!(roots.contains(&at(t, top, 0)), has);
                    // The roots in the final circuit's order: the four, the chain, the walks.
                    assert_eq!(roots[0].tree, ProofTree::Range);
                    if walks {
                        assert_eq!(roots.last().map(|r| r.tree), Some(ProofTree::Walks));
                    }
                    for r in roots {
                        assert_eq!(r.parent(top), Some(fin));
                    }
                }
            }
        }
    }
}
