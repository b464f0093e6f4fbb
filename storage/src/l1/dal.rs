//! [`L1Dal`]: the pool-level reads and writes of the L1 tables.

use sqlx::{FromRow, PgPool, Row};

use crate::convert::{i64_of, u64_of};
use crate::status::{BatchStatus, PriorityOpStatus, SubmissionKind, SubmissionStatus};
use crate::Result;

use super::{
    ops_with_status, record_receipt, L1BatchRow, MinedSubmission, NewL1Batch, NewSubmission,
    PriorityOpRow, SubmissionRow,
};

use super::batches::L1_BATCH_COLUMNS;
use super::priority_ops::OP_COLUMNS;
use super::submissions::SUBMISSION_COLUMNS;

pub struct L1Dal<'a> {
    pool: &'a PgPool,
}

impl<'a> L1Dal<'a> {
    pub(crate) fn new(pool: &'a PgPool) -> Self {
        L1Dal { pool }
    }

    /// Ops in `status`, in serial order, at most `limit`.
    pub async fn ops_with_status(
        &self,
        status: PriorityOpStatus,
        limit: i64,
    ) -> Result<Vec<PriorityOpRow>> {
        let mut conn = self.pool.acquire().await?;
        ops_with_status(&mut conn, status, limit).await
    }

    /// The deadlines of the live ops not consumed yet (`seen` or `confirmed`), lowest serial
    /// first, at most `limit`: what the sequencer checks before it seals a batch. Ops recorded
    /// before migration 0009 (no deadline) are left out.
    pub async fn open_deadlines(&self, limit: i64) -> Result<Vec<(u64, u64)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT serial, deadline FROM l1_priority_ops WHERE status = ANY($1) \
             AND deadline IS NOT NULL ORDER BY serial LIMIT $2",
        )
        .bind([PriorityOpStatus::Seen, PriorityOpStatus::Confirmed])
        .bind(limit)
        .fetch_all(self.pool)
        .await?;
        rows.into_iter()
            .map(|(s, d)| Ok((u64_of(s, "serial")?, u64_of(d, "deadline")?)))
            .collect()
    }

    /// The live (not `reorged`) op with queue serial `serial`: at most one exists.
    pub async fn live_op(&self, serial: u64) -> Result<Option<PriorityOpRow>> {
        let sql =
            format!("SELECT {OP_COLUMNS} FROM l1_priority_ops WHERE serial = $1 AND status <> $2");
        Ok(sqlx::query_as::<_, PriorityOpRow>(&sql)
            .bind(i64_of(serial))
            .bind(PriorityOpStatus::Reorged)
            .fetch_optional(self.pool)
            .await?)
    }

    /// The final proof of `batch` from `batch_proofs`, the prover's output table (written with
    /// the batch's move to `proven`). Never from `prover_jobs`: a job's proof is an
    /// intermediate the prover may re-plan.
    pub async fn final_proof(&self, batch: u64) -> Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT proof FROM batch_proofs WHERE batch_number = $1")
                .bind(i64_of(batch))
                .fetch_optional(self.pool)
                .await?,
        )
    }

    /// The in-flight submission to resolve first: the lowest nonce among `signed` and `sent`
    /// rows (after a reorg several can be pending again, and a higher nonce cannot be mined
    /// before the lower one), its latest attempt.
    pub async fn next_pending_submission(&self) -> Result<Option<SubmissionRow>> {
        let sql = format!(
            "SELECT {SUBMISSION_COLUMNS} FROM l1_submissions s WHERE s.status = ANY($1) \
             ORDER BY s.nonce, s.id DESC LIMIT 1"
        );
        Ok(sqlx::query_as::<_, SubmissionRow>(&sql)
            .bind([SubmissionStatus::Signed, SubmissionStatus::Sent])
            .fetch_optional(self.pool)
            .await?)
    }

    /// Every attempt with `nonce` that may still be the one mined (`signed`, `sent`,
    /// `replaced`), oldest first.
    pub async fn attempts_with_nonce(&self, nonce: u64) -> Result<Vec<SubmissionRow>> {
        let sql = format!(
            "SELECT {SUBMISSION_COLUMNS} FROM l1_submissions s \
             WHERE s.nonce = $1 AND s.status = ANY($2) ORDER BY s.id"
        );
        Ok(sqlx::query_as::<_, SubmissionRow>(&sql)
            .bind(i64_of(nonce))
            .bind([
                SubmissionStatus::Signed,
                SubmissionStatus::Sent,
                SubmissionStatus::Replaced,
            ])
            .fetch_all(self.pool)
            .await?)
    }

    /// Mined submissions whose batch has not reached the status they lead to (a commit whose
    /// batch is still `proven`, a finalize whose batch is not `finalized`), lowest nonce first.
    pub async fn mined_awaiting_depth(&self) -> Result<Vec<MinedSubmission>> {
        let sql = format!(
            "SELECT {SUBMISSION_COLUMNS}, b.status AS batch_status \
             FROM l1_submissions s JOIN batches b ON b.number = s.batch_number \
             WHERE s.status = $1 AND ((s.kind = $2 AND b.status = $4) \
             OR (s.kind = $3 AND b.status = ANY($5))) ORDER BY s.nonce, s.id"
        );
        let rows = sqlx::query(&sql)
            .bind(SubmissionStatus::Mined)
            .bind(SubmissionKind::Commit)
            .bind(SubmissionKind::Finalize)
            .bind(BatchStatus::Proven)
            .bind([BatchStatus::Proven, BatchStatus::Committed])
            .fetch_all(self.pool)
            .await?;
        rows.iter()
            .map(|r| -> Result<MinedSubmission> {
                Ok(MinedSubmission {
                    submission: SubmissionRow::from_row(r)?,
                    batch_status: r.try_get("batch_status")?,
                })
            })
            .collect()
    }

    /// Records a signed transaction before it is broadcast; returns its row id.
    pub async fn insert_submission(&self, s: &NewSubmission<'_>) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO l1_submissions (batch_number, kind, nonce, l1_tx_hash, gas_price, \
             raw_tx, attempts, status) VALUES ($1, $2, $3, $4, $5::text::numeric, $6, $7, $8) \
             RETURNING id",
        )
        .bind(i64_of(s.batch_number))
        .bind(s.kind)
        .bind(i64_of(s.nonce))
        .bind(s.l1_tx_hash.to_vec())
        .bind(s.gas_price.to_string())
        .bind(s.raw_tx)
        .bind(s.attempts)
        .bind(SubmissionStatus::Signed)
        .fetch_one(self.pool)
        .await?)
    }

    /// `signed -> sent` once the node took the transaction (a no-op for any other status).
    pub async fn mark_sent(&self, id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE l1_submissions SET status = $2, updated_at = now() WHERE id = $1 AND status = $3",
        )
        .bind(id)
        .bind(SubmissionStatus::Sent)
        .bind(SubmissionStatus::Signed)
        .execute(self.pool)
        .await?;
        Ok(())
    }

    /// Gives submission `id` up as `replaced` (another transaction took or will take its
    /// nonce), with `error` saying why; returns its attempt count (`None`: no such row).
    pub async fn mark_replaced(&self, id: i64, error: Option<&str>) -> Result<Option<i32>> {
        Ok(sqlx::query_scalar(
            "UPDATE l1_submissions SET status = $2, error = coalesce($3, error), \
             updated_at = now() WHERE id = $1 RETURNING attempts",
        )
        .bind(id)
        .bind(SubmissionStatus::Replaced)
        .bind(error)
        .fetch_optional(self.pool)
        .await?)
    }

    /// Records a receipt of submission `id` in a transaction of its own (see
    /// [`record_receipt`]).
    pub async fn record_receipt(
        &self,
        id: i64,
        nonce: u64,
        succeeded: bool,
        block: u64,
        error: Option<&str>,
    ) -> Result<()> {
        let mut db = self.pool.begin().await?;
        record_receipt(&mut db, id, nonce, succeeded, block, error).await?;
        db.commit().await?;
        Ok(())
    }

    /// A mined submission's receipt is now in another block (mined again after a reorg).
    pub async fn move_to_block(&self, id: i64, block: u64) -> Result<()> {
        sqlx::query("UPDATE l1_submissions SET l1_block = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(i64_of(block))
            .execute(self.pool)
            .await?;
        Ok(())
    }

    /// The highest nonce recorded by a submission that used or may use it (`signed`, `sent`,
    /// `mined`).
    pub async fn max_live_nonce(&self) -> Result<Option<u64>> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT max(nonce) FROM l1_submissions WHERE status = ANY($1)")
                .bind([
                    SubmissionStatus::Signed,
                    SubmissionStatus::Sent,
                    SubmissionStatus::Mined,
                ])
                .fetch_one(self.pool)
                .await?;
        n.map(|n| u64_of(n, "nonce")).transpose()
    }

    /// How many `kind` attempts of `batch` were mined and reverted.
    pub async fn failed_attempts(&self, batch: u64, kind: SubmissionKind) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM l1_submissions WHERE batch_number = $1 AND kind = $2 \
             AND status = $3",
        )
        .bind(i64_of(batch))
        .bind(kind)
        .bind(SubmissionStatus::Failed)
        .fetch_one(self.pool)
        .await?;
        u64_of(n, "count")
    }

    /// Records (or re-records, with a rebuilt header) what will be committed for a batch.
    pub async fn upsert_l1_batch(&self, b: &NewL1Batch<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO l1_batches (batch_number, header, pubdata_hash, statement, \
             withdrawals_root, payouts) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (batch_number) DO UPDATE SET header = $2, pubdata_hash = $3, \
             statement = $4, withdrawals_root = $5, payouts = $6",
        )
        .bind(i64_of(b.batch_number))
        .bind(b.header)
        .bind(b.pubdata_hash.to_vec())
        .bind(b.statement.to_vec())
        .bind(b.withdrawals_root.to_vec())
        .bind(sqlx::types::Json(b.payouts))
        .execute(self.pool)
        .await?;
        Ok(())
    }

    pub async fn l1_batch(&self, batch: u64) -> Result<Option<L1BatchRow>> {
        let sql = format!("SELECT {L1_BATCH_COLUMNS} FROM l1_batches l WHERE l.batch_number = $1");
        Ok(sqlx::query_as::<_, L1BatchRow>(&sql)
            .bind(i64_of(batch))
            .fetch_optional(self.pool)
            .await?)
    }

    /// A batch's L1 record with the status of the batch (the payout-proof endpoint).
    pub async fn l1_batch_with_status(
        &self,
        batch: u64,
    ) -> Result<Option<(L1BatchRow, BatchStatus)>> {
        let sql = format!(
            "SELECT {L1_BATCH_COLUMNS}, b.status AS batch_status FROM l1_batches l \
             JOIN batches b ON b.number = l.batch_number WHERE l.batch_number = $1"
        );
        let row = sqlx::query(&sql)
            .bind(i64_of(batch))
            .fetch_optional(self.pool)
            .await?;
        row.map(|r| -> Result<(L1BatchRow, BatchStatus)> {
            Ok((L1BatchRow::from_row(&r)?, r.try_get("batch_status")?))
        })
        .transpose()
    }
}

impl std::fmt::Debug for L1Dal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("L1Dal")
    }
}
