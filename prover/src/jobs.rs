//! The proving job queue in Postgres (`prover_jobs`, `batch_proofs`; migrations 0001 and 0002).
//!
//! A batch of `2^L` leaves has `2^L` leaf jobs (level 0, `queued`, input = serialized witness),
//! `2^(L-l)` merge jobs at each level `l` in `1..=L` and one final job at level `L`, all created
//! `waiting` by the planner in one transaction. A merge job at `(l, p)` becomes `queued` when
//! both children `(l-1, 2p)` and `(l-1, 2p+1)` are done; the final job when the root `(L, 0)` is.
//! The promotion happens in the transaction that completes the second child, after locking the
//! parent row (so two children completing at once cannot both miss each other); a periodic sweep
//! ([`JobStore::promote_ready`]) is a safety net.
//!
//! Claiming is `SELECT ... FOR UPDATE SKIP LOCKED` in a transaction: workers never wait for
//! each other and never get the same job. A claim sets `running`, the worker id, the heartbeat
//! and increments `attempts`; `(worker, attempts)` is the fencing token: completion, failure and
//! heartbeats only touch the row while it is still `running` under that exact token. A worker
//! that stops heartbeating (crash, SIGKILL, partition) has its jobs re-queued by any worker's
//! reaper ([`JobStore::reap`]) once the heartbeat is older than the timeout; if it comes back with
//! a late result, its token no longer matches and the result is dropped, so every job completes
//! exactly once (`completions` counts it).

use std::time::Duration;

use anyhow::Context;
use futures::TryStreamExt;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction as DbTx};
use state::account::Timestamp;
use state::apply::BlockContext;
use state::crypto::schnorr::PublicKey;
use state::tx::{Domain, Transaction};
use state::Digest;

use crate::circuits::public::BatchStatement;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    Leaf,
    Merge,
    Final,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Leaf => "leaf",
            JobKind::Merge => "merge",
            JobKind::Final => "final",
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "leaf" => Some(JobKind::Leaf),
            "merge" => Some(JobKind::Merge),
            "final" => Some(JobKind::Final),
            _ => None,
        }
    }
}

/// A job this worker holds.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    pub id: i64,
    pub batch: u64,
    pub kind: JobKind,
    pub level: u32,
    pub position: u32,
    /// The fencing token together with the worker id.
    pub attempt: i32,
    /// Leaf jobs: the serialized witness.
    pub input: Option<Vec<u8>>,
}

/// What a batch row says, as the prover needs it.
#[derive(Clone, Debug)]
pub struct BatchInfo {
    pub number: u64,
    pub first_block: u64,
    pub last_block: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub old_root: Digest,
    pub new_root: Digest,
    pub pubdata_commitment: Digest,
    pub withdrawals_commitment: Digest,
    pub first_deposit_seq: u64,
    pub next_deposit_seq: u64,
    pub tx_count: u32,
    pub status: String,
}

/// Counts for metrics.
#[derive(Clone, Debug, Default)]
pub struct QueueStats {
    /// `(kind, state, count)`.
    pub jobs: Vec<(String, String, i64)>,
    /// Batches sealed by the sequencer but not yet proven (sealed or proving).
    pub unproven_batches: i64,
    /// Age of the oldest unproven batch, seconds.
    pub oldest_unproven_secs: f64,
    pub last_sealed: i64,
    pub last_proven: i64,
}

/// The parent job of `(kind, level, position)` in a batch of top level `top`.
fn parent_of(kind: JobKind, level: u32, position: u32, top: u32) -> Option<(JobKind, u32, u32)> {
    match kind {
        JobKind::Final => None,
        _ if level == top => Some((JobKind::Final, top, 0)),
        _ => Some((JobKind::Merge, level + 1, position / 2)),
    }
}

fn child_kind(level: u32) -> JobKind {
    if level == 0 {
        JobKind::Leaf
    } else {
        JobKind::Merge
    }
}

fn digest_col(row: &sqlx::postgres::PgRow, name: &str) -> anyhow::Result<Digest> {
    let b: Vec<u8> = row.try_get(name)?;
    Digest::from_slice(&b).with_context(|| format!("corrupt digest in column {name}"))
}

/// The batch timestamp every transaction's `valid_until` is checked against in the proof: the
/// time of the batch's first block. Block times never decrease and every transaction was valid
/// at its own block's time, so none is expired at this time.
pub fn batch_timestamp(first_block_time: u64) -> Timestamp {
    Timestamp::new(first_block_time).unwrap_or(Timestamp::MAX)
}

#[derive(Clone)]
pub struct JobStore {
    pool: PgPool,
}

impl JobStore {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<JobStore> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("connecting to Postgres")?;
        rollup_storage::MIGRATOR
            .run(&pool)
            .await
            .context("applying migrations")?;
        Ok(JobStore { pool })
    }

    pub fn from_pool(pool: PgPool) -> JobStore {
        JobStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    // ---- chain and batches -------------------------------------------------------------

    /// The domain and operator key the node stored at genesis (`chain_meta`).
    pub async fn chain(&self) -> anyhow::Result<(Domain, PublicKey)> {
        let get = |k: &'static str| async move {
            let v: Option<String> =
                sqlx::query_scalar("SELECT value FROM chain_meta WHERE key = $1")
                    .bind(k)
                    .fetch_optional(&self.pool)
                    .await?;
            v.with_context(|| format!("chain_meta has no {k}: has the node run on this database?"))
        };
        let chain_id: u64 = get("chain_id").await?.parse().context("chain_id")?;
        let addr = get("rollup_address").await?;
        let bytes = hex::decode(addr.trim_start_matches("0x")).context("rollup_address")?;
        let rollup: [u8; 20] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("rollup_address is not 20 bytes"))?;
        let operator = PublicKey::from_hex(&get("operator_public_key").await?)
            .map_err(|e| anyhow::anyhow!("operator_public_key: {e}"))?;
        Ok((Domain { chain_id, rollup }, operator))
    }

    fn batch_from_row(row: &sqlx::postgres::PgRow) -> anyhow::Result<BatchInfo> {
        let u = |n: &str| -> anyhow::Result<u64> { Ok(row.try_get::<i64, _>(n)? as u64) };
        Ok(BatchInfo {
            number: u("number")?,
            first_block: u("first_block")?,
            last_block: u("last_block")?,
            first_seq: u("first_seq")?,
            last_seq: u("last_seq")?,
            old_root: digest_col(row, "old_root")?,
            new_root: digest_col(row, "new_root")?,
            pubdata_commitment: digest_col(row, "pubdata_commitment")?,
            withdrawals_commitment: digest_col(row, "withdrawals_commitment")?,
            first_deposit_seq: u("first_deposit_seq")?,
            next_deposit_seq: u("next_deposit_seq")?,
            tx_count: row.try_get::<i32, _>("tx_count")? as u32,
            status: row.try_get("status")?,
        })
    }

    const BATCH_COLUMNS: &'static str = "number, first_block, last_block, first_seq, last_seq, \
        old_root, new_root, pubdata_commitment, withdrawals_commitment, first_deposit_seq, \
        next_deposit_seq, tx_count, status";

    pub async fn batch(&self, number: u64) -> anyhow::Result<Option<BatchInfo>> {
        let sql = format!(
            "SELECT {} FROM batches WHERE number = $1",
            Self::BATCH_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(number as i64)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::batch_from_row).transpose()
    }

    /// The lowest-numbered batch that is neither proven nor being proven (`sealed` or
    /// `rejected`), if any.
    pub async fn next_unplanned_batch(&self) -> anyhow::Result<Option<BatchInfo>> {
        let sql = format!(
            "SELECT {} FROM batches WHERE status IN ('sealed', 'rejected') ORDER BY number LIMIT 1",
            Self::BATCH_COLUMNS
        );
        let row = sqlx::query(&sql).fetch_optional(&self.pool).await?;
        row.as_ref().map(Self::batch_from_row).transpose()
    }

    pub async fn block_time(&self, block: u64) -> anyhow::Result<u64> {
        let t: Option<i64> = sqlx::query_scalar("SELECT block_time FROM blocks WHERE number = $1")
            .bind(block as i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(t.with_context(|| format!("block {block} is not sealed"))? as u64)
    }

    /// The statement a batch's proof must prove, from the node's records alone.
    pub async fn expected_statement(&self, b: &BatchInfo) -> anyhow::Result<BatchStatement> {
        let (domain, _) = self.chain().await?;
        let timestamp = batch_timestamp(self.block_time(b.first_block).await?);
        Ok(BatchStatement {
            old_root: b.old_root,
            new_root: b.new_root,
            pubdata_commitment: b.pubdata_commitment,
            withdrawals_commitment: b.withdrawals_commitment,
            deposits_first: b.first_deposit_seq,
            deposits_next: b.next_deposit_seq,
            timestamp: timestamp.get(),
            domain: domain.digest(),
        })
    }

    /// Streams the transaction log with `seq` in `[from, to]`, in order.
    pub async fn for_each_tx(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, Transaction, BlockContext) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let mut rows = sqlx::query(
            "SELECT seq, raw, block_time FROM transactions WHERE seq BETWEEN $1 AND $2 ORDER BY seq",
        )
        .bind(from as i64)
        .bind(to as i64)
        .fetch(&self.pool);
        let mut n = 0;
        while let Some(row) = rows.try_next().await? {
            let seq = row.try_get::<i64, _>(0)? as u64;
            let raw: Vec<u8> = row.try_get(1)?;
            let time = row.try_get::<i64, _>(2)? as u64;
            let tx = Transaction::decode(&raw)
                .map_err(|e| anyhow::anyhow!("undecodable transaction seq {seq}: {e:?}"))?;
            let ctx = BlockContext {
                timestamp: Timestamp::new(time).unwrap_or(Timestamp::MAX),
            };
            f(seq, tx, ctx)?;
            n += 1;
        }
        Ok(n)
    }

    /// Creates every job of a batch and marks it `proving`, atomically. `inputs` are the
    /// serialized leaf witnesses (a power-of-two count). Returns false if the batch was not
    /// `sealed` any more (someone else planned it).
    pub async fn plan_batch(&self, batch: u64, inputs: &[Vec<u8>]) -> anyhow::Result<bool> {
        anyhow::ensure!(
            inputs.len().is_power_of_two(),
            "leaf count {} is not a power of two",
            inputs.len()
        );
        let top = inputs.len().trailing_zeros();
        let mut db = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE batches SET status = 'proving' WHERE number = $1 AND status = 'sealed'",
        )
        .bind(batch as i64)
        .execute(&mut *db)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        let b = batch as i64;
        let positions: Vec<i32> = (0..inputs.len() as i32).collect();
        sqlx::query(
            "INSERT INTO prover_jobs (batch_number, kind, level, position, state, input) \
             SELECT $1, 'leaf', 0, p, 'queued', i FROM UNNEST($2::int[], $3::bytea[]) AS t(p, i)",
        )
        .bind(b)
        .bind(&positions)
        .bind(inputs)
        .execute(&mut *db)
        .await?;
        for level in 1..=top {
            let n = 1i32 << (top - level);
            sqlx::query(
                "INSERT INTO prover_jobs (batch_number, kind, level, position, state) \
                 SELECT $1, 'merge', $2, p, 'waiting' FROM generate_series(0, $3 - 1) AS p",
            )
            .bind(b)
            .bind(level as i32)
            .bind(n)
            .execute(&mut *db)
            .await?;
        }
        sqlx::query(
            "INSERT INTO prover_jobs (batch_number, kind, level, position, state) \
             VALUES ($1, 'final', $2, 0, 'waiting')",
        )
        .bind(b)
        .bind(top as i32)
        .execute(&mut *db)
        .await?;
        db.commit().await?;
        Ok(true)
    }

    /// Marks a batch the native rules reject; it will not be proven.
    pub async fn reject_batch(&self, batch: u64, reason: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE batches SET status = 'rejected', rejection = $2 WHERE number = $1 AND status = 'sealed'",
        )
        .bind(batch as i64)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- claiming and completing ----------------------------------------------------------

    /// Claims up to `limit` queued jobs of the given kinds: oldest batch first, and within a
    /// batch final, then merges (highest level first), then leaves, so batches finish early.
    pub async fn claim(
        &self,
        worker: &str,
        kinds: &[JobKind],
        limit: usize,
    ) -> anyhow::Result<Vec<ClaimedJob>> {
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let mut db = self.pool.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM prover_jobs WHERE state = 'queued' AND kind = ANY($1) \
             ORDER BY batch_number, CASE kind WHEN 'final' THEN 0 WHEN 'merge' THEN 1 ELSE 2 END, \
             level DESC, position \
             LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(&kinds)
        .bind(limit as i64)
        .fetch_all(&mut *db)
        .await?;
        if ids.is_empty() {
            db.rollback().await?;
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "UPDATE prover_jobs SET state = 'running', worker = $2, attempts = attempts + 1, \
             heartbeat_at = now(), started_at = now(), error = NULL \
             WHERE id = ANY($1) \
             RETURNING id, batch_number, kind, level, position, attempts, input",
        )
        .bind(&ids)
        .bind(worker)
        .fetch_all(&mut *db)
        .await?;
        db.commit().await?;
        let mut jobs = rows
            .iter()
            .map(|r| -> anyhow::Result<ClaimedJob> {
                let kind: String = r.try_get("kind")?;
                Ok(ClaimedJob {
                    id: r.try_get("id")?,
                    batch: r.try_get::<i64, _>("batch_number")? as u64,
                    kind: JobKind::parse(&kind).context("unknown job kind")?,
                    level: r.try_get::<i32, _>("level")? as u32,
                    position: r.try_get::<i32, _>("position")? as u32,
                    attempt: r.try_get("attempts")?,
                    input: r.try_get("input")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        jobs.sort_by_key(|j| (j.batch, j.level, j.position));
        Ok(jobs)
    }

    /// The proofs a merge or final job consumes, in order (left, right / root).
    pub async fn child_proofs(&self, job: &ClaimedJob) -> anyhow::Result<Vec<Vec<u8>>> {
        let (kind, level, positions) = match job.kind {
            JobKind::Leaf => return Ok(Vec::new()),
            JobKind::Merge => (
                child_kind(job.level - 1),
                job.level - 1,
                vec![2 * job.position as i32, 2 * job.position as i32 + 1],
            ),
            JobKind::Final => (child_kind(job.level), job.level, vec![0]),
        };
        let rows = sqlx::query(
            "SELECT position, proof FROM prover_jobs WHERE batch_number = $1 AND kind = $2 \
             AND level = $3 AND position = ANY($4) AND state = 'done' ORDER BY position",
        )
        .bind(job.batch as i64)
        .bind(kind.as_str())
        .bind(level as i32)
        .bind(&positions)
        .fetch_all(&self.pool)
        .await?;
        anyhow::ensure!(
            rows.len() == positions.len(),
            "job {}: children are not all done",
            job.id
        );
        rows.iter()
            .map(|r| {
                let p: Option<Vec<u8>> = r.try_get("proof")?;
                p.context("a done child has no proof")
            })
            .collect()
    }

    /// Fenced update: `running` under this worker and attempt.
    const FENCE: &'static str = "id = $1 AND state = 'running' AND worker = $2 AND attempts = $3";

    /// Records a leaf or merge proof and queues the parent when its inputs are complete.
    /// Returns false (and changes nothing) if the job is no longer ours.
    pub async fn complete(
        &self,
        job: &ClaimedJob,
        worker: &str,
        proof: &[u8],
        statement: &serde_json::Value,
        prove_ms: u64,
    ) -> anyhow::Result<bool> {
        let mut db = self.pool.begin().await?;
        if !Self::finish_fenced(&mut db, job, worker, proof, statement, prove_ms).await? {
            db.rollback().await?;
            return Ok(false);
        }
        let top: i32 = sqlx::query_scalar(
            "SELECT level FROM prover_jobs WHERE batch_number = $1 AND kind = 'final'",
        )
        .bind(job.batch as i64)
        .fetch_one(&mut *db)
        .await?;
        if let Some((pk, pl, pp)) = parent_of(job.kind, job.level, job.position, top as u32) {
            Self::promote_if_ready(&mut db, job.batch, pk, pl, pp).await?;
        }
        db.commit().await?;
        Ok(true)
    }

    async fn finish_fenced(
        db: &mut DbTx<'_, Postgres>,
        job: &ClaimedJob,
        worker: &str,
        proof: &[u8],
        statement: &serde_json::Value,
        prove_ms: u64,
    ) -> anyhow::Result<bool> {
        let sql = format!(
            "UPDATE prover_jobs SET state = 'done', proof = $4, statement = $5, prove_ms = $6, \
             finished_at = now(), completions = completions + 1, completed_by = $2 WHERE {}",
            Self::FENCE
        );
        let n = sqlx::query(&sql)
            .bind(job.id)
            .bind(worker)
            .bind(job.attempt)
            .bind(proof)
            .bind(statement)
            .bind(prove_ms as i64)
            .execute(&mut **db)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn promote_if_ready(
        db: &mut DbTx<'_, Postgres>,
        batch: u64,
        kind: JobKind,
        level: u32,
        position: u32,
    ) -> anyhow::Result<()> {
        // Lock the parent first: a sibling completing concurrently waits here, then sees our
        // committed row when it counts.
        let parent: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM prover_jobs WHERE batch_number = $1 AND kind = $2 AND level = $3 \
             AND position = $4 AND state = 'waiting' FOR UPDATE",
        )
        .bind(batch as i64)
        .bind(kind.as_str())
        .bind(level as i32)
        .bind(position as i32)
        .fetch_optional(&mut **db)
        .await?;
        let Some(parent) = parent else { return Ok(()) };
        let (ck, cl, cps) = match kind {
            JobKind::Merge => (
                child_kind(level - 1),
                level - 1,
                vec![2 * position as i32, 2 * position as i32 + 1],
            ),
            JobKind::Final => (child_kind(level), level, vec![0]),
            JobKind::Leaf => return Ok(()),
        };
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM prover_jobs WHERE batch_number = $1 AND kind = $2 AND level = $3 \
             AND position = ANY($4) AND state = 'done'",
        )
        .bind(batch as i64)
        .bind(ck.as_str())
        .bind(cl as i32)
        .bind(&cps)
        .fetch_one(&mut **db)
        .await?;
        if done as usize == cps.len() {
            sqlx::query("UPDATE prover_jobs SET state = 'queued' WHERE id = $1")
                .bind(parent)
                .execute(&mut **db)
                .await?;
        }
        Ok(())
    }

    /// Records the final proof (already verified by the caller) and marks the batch proven.
    pub async fn complete_final(
        &self,
        job: &ClaimedJob,
        worker: &str,
        batch_proof: &[u8],
        statement: &BatchStatement,
        prove_ms: u64,
    ) -> anyhow::Result<bool> {
        let st = serde_json::to_value(statement)?;
        let mut db = self.pool.begin().await?;
        if !Self::finish_fenced(&mut db, job, worker, batch_proof, &st, prove_ms).await? {
            db.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO batch_proofs (batch_number, top_level, proof, statement, digest, leaves, prove_ms) \
             SELECT $1, $2, $3, $4, $5, \
               (SELECT count(*) FROM prover_jobs WHERE batch_number = $1 AND kind = 'leaf'), \
               (SELECT coalesce(sum(prove_ms), 0) FROM prover_jobs WHERE batch_number = $1) \
             ON CONFLICT (batch_number) DO NOTHING",
        )
        .bind(job.batch as i64)
        .bind(job.level as i32)
        .bind(batch_proof)
        .bind(&st)
        .bind(statement.digest().to_bytes().to_vec())
        .execute(&mut *db)
        .await?;
        sqlx::query(
            "UPDATE batches SET status = 'proven' WHERE number = $1 AND status = 'proving'",
        )
        .bind(job.batch as i64)
        .execute(&mut *db)
        .await?;
        db.commit().await?;
        Ok(true)
    }

    /// Gives a job back: re-queued while attempts remain, else `failed`. Fenced.
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        worker: &str,
        error: &str,
        max_attempts: i32,
    ) -> anyhow::Result<bool> {
        let sql = format!(
            "UPDATE prover_jobs SET state = CASE WHEN attempts >= $4 THEN 'failed' ELSE 'queued' END, \
             error = $5, worker = NULL, finished_at = now() WHERE {}",
            Self::FENCE
        );
        let n = sqlx::query(&sql)
            .bind(job.id)
            .bind(worker)
            .bind(job.attempt)
            .bind(max_attempts)
            .bind(error)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Refreshes the heartbeat of jobs this worker still holds; returns how many it holds.
    pub async fn heartbeat(&self, jobs: &[(i64, i32)], worker: &str) -> anyhow::Result<u64> {
        let ids: Vec<i64> = jobs.iter().map(|j| j.0).collect();
        let attempts: Vec<i32> = jobs.iter().map(|j| j.1).collect();
        Ok(sqlx::query(
            "UPDATE prover_jobs j SET heartbeat_at = now() FROM UNNEST($1::bigint[], $2::int[]) AS t(id, a) \
             WHERE j.id = t.id AND j.attempts = t.a AND j.worker = $3 AND j.state = 'running'",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(worker)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Re-queues running jobs whose heartbeat is older than `stale_after` (or fails them once
    /// they used `max_attempts`). Returns the ids re-queued or failed.
    pub async fn reap(&self, stale_after: Duration, max_attempts: i32) -> anyhow::Result<Vec<i64>> {
        let ids = sqlx::query_scalar(
            "UPDATE prover_jobs SET state = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'queued' END, \
             error = 'worker ' || coalesce(worker, '?') || ' stopped heartbeating', worker = NULL \
             WHERE state = 'running' AND heartbeat_at < now() - make_interval(secs => $1) \
             RETURNING id",
        )
        .bind(stale_after.as_secs_f64())
        .bind(max_attempts)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    /// Queues every waiting job whose inputs are all done (a safety net for the promotion done
    /// on completion).
    pub async fn promote_ready(&self) -> anyhow::Result<u64> {
        Ok(sqlx::query(
            "UPDATE prover_jobs p SET state = 'queued' WHERE p.state = 'waiting' AND ( \
               (p.kind = 'merge' AND (SELECT count(*) FROM prover_jobs c WHERE c.batch_number = p.batch_number \
                  AND c.level = p.level - 1 AND c.kind = CASE WHEN p.level = 1 THEN 'leaf' ELSE 'merge' END \
                  AND c.position IN (2 * p.position, 2 * p.position + 1) AND c.state = 'done') = 2) \
               OR (p.kind = 'final' AND EXISTS (SELECT 1 FROM prover_jobs c WHERE c.batch_number = p.batch_number \
                  AND c.level = p.level AND c.kind = CASE WHEN p.level = 0 THEN 'leaf' ELSE 'merge' END \
                  AND c.position = 0 AND c.state = 'done')))",
        )
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    pub async fn stats(&self) -> anyhow::Result<QueueStats> {
        let rows = sqlx::query("SELECT kind, state, count(*) FROM prover_jobs GROUP BY 1, 2")
            .fetch_all(&self.pool)
            .await?;
        let jobs = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE status IN ('sealed', 'proving')), \
             coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status IN ('sealed', 'proving')))::float8, 0), \
             coalesce(max(number), 0), \
             coalesce(max(number) FILTER (WHERE status IN ('proven', 'committed', 'finalized')), 0) \
             FROM batches",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueStats {
            jobs,
            unproven_batches: row.try_get(0)?,
            oldest_unproven_secs: row.try_get(1)?,
            last_sealed: row.try_get(2)?,
            last_proven: row.try_get(3)?,
        })
    }

    /// The stored final proof of a batch.
    pub async fn batch_proof(&self, batch: u64) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT proof FROM batch_proofs WHERE batch_number = $1")
                .bind(batch as i64)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(
            parent_of(JobKind::Leaf, 0, 3, 2),
            Some((JobKind::Merge, 1, 1))
        );
        assert_eq!(
            parent_of(JobKind::Merge, 2, 0, 2),
            Some((JobKind::Final, 2, 0))
        );
        assert_eq!(
            parent_of(JobKind::Leaf, 0, 0, 0),
            Some((JobKind::Final, 0, 0))
        );
        assert_eq!(parent_of(JobKind::Final, 2, 0, 2), None);
    }
}
