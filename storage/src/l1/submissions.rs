//! `l1_submissions`: every signed commit or finalize attempt, and what its receipt said.

use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Row};

use crate::convert::{decode_err, i64_of};
use crate::status::{BatchStatus, SubmissionKind, SubmissionStatus};
use crate::{Result, StorageError};

use super::{hash_col, opt_u64_col, u64_col};

/// One row of `l1_submissions`: one signed attempt of a commit or finalize transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmissionRow {
    pub id: i64,
    pub batch_number: u64,
    pub kind: SubmissionKind,
    pub nonce: u64,
    pub l1_tx_hash: [u8; 32],
    /// Wei per gas.
    pub gas_price: u128,
    /// The signed transaction, re-broadcast as is.
    pub raw_tx: Vec<u8>,
    pub status: SubmissionStatus,
    pub attempts: i32,
    pub l1_block: Option<u64>,
    pub error: Option<String>,
    /// Time since the row last changed (by the database's clock).
    pub age: Duration,
}

impl<'r> FromRow<'r, PgRow> for SubmissionRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let price: String = row.try_get("gas_price")?;
        let gas_price = price.parse::<u128>().map_err(|_| {
            decode_err(
                "gas_price",
                StorageError::Corrupt(format!("gas price {price:?} is not a u128")),
            )
        })?;
        let age = row.try_get::<f64, _>("age_secs")?;
        Ok(SubmissionRow {
            id: row.try_get("id")?,
            batch_number: u64_col(row, "batch_number")?,
            kind: row.try_get("kind")?,
            nonce: u64_col(row, "nonce")?,
            l1_tx_hash: hash_col(row, "l1_tx_hash")?,
            gas_price,
            raw_tx: row.try_get("raw_tx")?,
            status: row.try_get("status")?,
            attempts: row.try_get("attempts")?,
            l1_block: opt_u64_col(row, "l1_block")?,
            error: row.try_get("error")?,
            // A clock step back can make it negative: that is "just now".
            age: Duration::try_from_secs_f64(age.max(0.0)).unwrap_or(Duration::MAX),
        })
    }
}

/// `NUMERIC` and the interval are rendered in SQL so that the row maps by name.
pub(super) const SUBMISSION_COLUMNS: &str = "s.id, s.batch_number, s.kind, s.nonce, s.l1_tx_hash, \
    s.gas_price::text AS gas_price, s.raw_tx, s.status, s.attempts, s.l1_block, s.error, \
    extract(epoch FROM now() - s.updated_at)::float8 AS age_secs";

/// A signed transaction to record before it is broadcast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSubmission<'a> {
    pub batch_number: u64,
    pub kind: SubmissionKind,
    pub nonce: u64,
    pub l1_tx_hash: [u8; 32],
    pub gas_price: u128,
    pub raw_tx: &'a [u8],
    pub attempts: i32,
}

/// A `mined` submission whose batch has not reached the status it leads to, with that
/// batch's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinedSubmission {
    pub submission: SubmissionRow,
    pub batch_status: BatchStatus,
}

/// Records a receipt of submission `id` inside the caller's transaction: `mined` when it
/// succeeded, `failed` (with `error`) when it reverted. Every other live attempt with the same
/// nonce lost the race and becomes `replaced`.
pub async fn record_receipt(
    db: &mut PgConnection,
    id: i64,
    nonce: u64,
    succeeded: bool,
    block: u64,
    error: Option<&str>,
) -> Result<()> {
    let status = if succeeded {
        SubmissionStatus::Mined
    } else {
        SubmissionStatus::Failed
    };
    sqlx::query(
        "UPDATE l1_submissions SET status = $2, l1_block = $3, updated_at = now(), error = $4 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(i64_of(block))
    .bind(error.filter(|_| !succeeded))
    .execute(&mut *db)
    .await?;
    sqlx::query(
        "UPDATE l1_submissions SET status = $3, updated_at = now() \
         WHERE nonce = $1 AND id <> $2 AND status = ANY($4)",
    )
    .bind(i64_of(nonce))
    .bind(id)
    .bind(SubmissionStatus::Replaced)
    .bind([SubmissionStatus::Signed, SubmissionStatus::Sent])
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// A `mined` submission whose receipt disappeared before the depth: back to `signed` (to be
/// broadcast again, the same bytes), its L1 block cleared, inside the caller's transaction.
/// Returns whether this call changed it.
pub async fn unmine(db: &mut PgConnection, id: i64, error: &str) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE l1_submissions SET status = $2, l1_block = NULL, error = $3, updated_at = now() \
         WHERE id = $1 AND status = $4",
    )
    .bind(id)
    .bind(SubmissionStatus::Signed)
    .bind(error)
    .bind(SubmissionStatus::Mined)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Locks submission `id` for the rest of the caller's transaction and tells whether it is
/// still `mined`: the submitter applies a receipt past the depth only then, so a revert the
/// watcher applied in between (which supersedes the row, [`revert_batches`]) wins.
pub async fn lock_mined(db: &mut PgConnection, id: i64) -> Result<bool> {
    let status: Option<SubmissionStatus> =
        sqlx::query_scalar("SELECT status FROM l1_submissions WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(status == Some(SubmissionStatus::Mined))
}

/// One batch `Rollup.revertBatches` took off L1, as the node puts it back in line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RevertedBatch {
    pub number: u64,
    /// Its transactions (`first_seq..=last_seq`; empty when `last_seq < first_seq`): kept, in
    /// the same order, and committed again with the batch.
    pub first_seq: u64,
    pub last_seq: u64,
    pub tx_count: u32,
    /// Its status before the revert (`committed`, or `proven` when the commit was not past the
    /// depth yet).
    pub was: BatchStatus,
}

/// Follows `BatchesReverted(first, last)` (SPEC 16.3) inside the caller's transaction, which
/// also appends the feed event: batches `first..=last` leave `committed` for `proven` (their
/// proofs and transactions stay; the submitter commits them again, in order, from the number
/// L1 now expects), their L1 records are dropped (the recommit writes them again), and their
/// mined or failed submissions become `superseded` (no longer followed to the depth, no longer
/// counted as failed attempts).
///
/// A batch the database holds as `finalized` cannot have been reverted (the contract refuses
/// to): that is a corrupt record, an error, and nothing is changed.
pub async fn revert_batches(
    db: &mut PgConnection,
    first: u64,
    last: u64,
) -> Result<Vec<RevertedBatch>> {
    // Submissions first: this waits for a submitter that is applying one of them past the
    // depth (it holds the row, `lock_mined`), so the batch statuses read below include its move.
    sqlx::query(
        "UPDATE l1_submissions SET status = $3, error = 'its batch was reverted on L1', \
         updated_at = now() WHERE batch_number BETWEEN $1 AND $2 AND status = ANY($4)",
    )
    .bind(i64_of(first))
    .bind(i64_of(last))
    .bind(SubmissionStatus::Superseded)
    .bind([SubmissionStatus::Mined, SubmissionStatus::Failed])
    .execute(&mut *db)
    .await?;
    let rows = sqlx::query(
        "SELECT number, first_seq, last_seq, tx_count, status FROM batches \
         WHERE number BETWEEN $1 AND $2 ORDER BY number FOR UPDATE",
    )
    .bind(i64_of(first))
    .bind(i64_of(last))
    .fetch_all(&mut *db)
    .await?;
    let mut reverted = Vec::with_capacity(rows.len());
    for r in &rows {
        let b = RevertedBatch {
            number: u64_col(r, "number")?,
            first_seq: u64_col(r, "first_seq")?,
            last_seq: u64_col(r, "last_seq")?,
            tx_count: crate::convert::u32_of(
                i64::from(r.try_get::<i32, _>("tx_count")?),
                "tx_count",
            )?,
            was: r.try_get("status")?,
        };
        match b.was {
            BatchStatus::Finalized => {
                return Err(StorageError::Corrupt(format!(
                    "batch {} is finalized here but L1 reverted it",
                    b.number
                )))
            }
            BatchStatus::Committed => {
                crate::batches::transition(
                    db,
                    b.number,
                    BatchStatus::Committed,
                    BatchStatus::Proven,
                    None,
                )
                .await?;
            }
            _ => {}
        }
        reverted.push(b);
    }
    sqlx::query("DELETE FROM l1_batches WHERE batch_number BETWEEN $1 AND $2")
        .bind(i64_of(first))
        .bind(i64_of(last))
        .execute(&mut *db)
        .await?;
    Ok(reverted)
}
