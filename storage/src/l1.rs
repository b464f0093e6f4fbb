//! `l1_priority_ops`, `l1_sync`, `l1_submissions`, `l1_batches`: the bridge's L1 records.
//!
//! Writers: the bridge watcher (priority ops `seen -> confirmed | reorged`, the scan cursor,
//! and an L1 revert of batches: [`revert_batches`]),
//! the node's ingest (`confirmed -> credited`) and the batch submitter (submissions and the L1
//! facts of each batch). Invariants kept here:
//!
//! - A priority op's status changes only through [`transition_op`], a compare-and-set that
//!   refuses what [`PriorityOpStatus::can_become`] forbids, so an op is credited at most once
//!   and never after it was reorged away.
//! - At most one row per serial is not `reorged` (a unique index); a log that comes back after
//!   a reorg revives its own row ([`insert_seen_op`]) instead of adding a second one.
//! - A submission row exists (`signed`, with its raw bytes) before its transaction is
//!   broadcast, so a restart re-sends the same bytes and never signs a second one blindly.
//! - Functions that take a `&mut PgConnection` run inside the caller's transaction: the
//!   change lands together with its feed event (`crate::feed::append`) or batch status
//!   (`crate::batches::transition`).
//!
//! Hashes are stored as 32 raw bytes and L1 addresses as 20; any other length is a corrupt row.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgPool, Row};
use state::tx::L1Address;

use crate::convert::{decode_err, hash32_of, i64_of, u64_of};
use crate::status::{
    BatchStatus, PriorityOpKind, PriorityOpStatus, SubmissionKind, SubmissionStatus,
};
use crate::{Result, StorageError};

/// Advisory lock of the watcher's write phase: two watchers on one database apply their
/// decisions one after the other, never interleaved (the feed's lock is
/// [`crate::feed::EVENT_LOCK`]).
pub const WATCHER_LOCK: i64 = 5_000_002;

fn u64_col(row: &PgRow, name: &str) -> Result<u64, sqlx::Error> {
    u64_of(row.try_get::<i64, _>(name)?, name).map_err(|e| decode_err(name, e))
}

fn opt_u64_col(row: &PgRow, name: &str) -> Result<Option<u64>, sqlx::Error> {
    row.try_get::<Option<i64>, _>(name)?
        .map(|v| u64_of(v, name).map_err(|e| decode_err(name, e)))
        .transpose()
}

fn hash_col(row: &PgRow, name: &str) -> Result<[u8; 32], sqlx::Error> {
    hash32_of(&row.try_get::<Vec<u8>, _>(name)?, name).map_err(|e| decode_err(name, e))
}

fn opt_hash_col(row: &PgRow, name: &str) -> Result<Option<[u8; 32]>, sqlx::Error> {
    row.try_get::<Option<Vec<u8>>, _>(name)?
        .map(|v| hash32_of(&v, name).map_err(|e| decode_err(name, e)))
        .transpose()
}

fn address_col(row: &PgRow, name: &str) -> Result<L1Address, sqlx::Error> {
    let bytes: Vec<u8> = row.try_get(name)?;
    let a: [u8; 20] = bytes.as_slice().try_into().map_err(|_| {
        decode_err(
            name,
            StorageError::Corrupt(format!("{name} is not 20 bytes")),
        )
    })?;
    Ok(L1Address(a))
}

// ---------------------------------------------------------------------------------------------
// l1_priority_ops

/// A priority op as read from an L1 log: what the watcher records as `seen`, and the
/// observed part of every `l1_priority_ops` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L1PriorityOp {
    /// Queue serial (= the L2 deposit seq).
    pub serial: u64,
    pub kind: PriorityOpKind,
    /// The L1 sender.
    pub depositor: L1Address,
    /// The L2 account index (the recipient of a deposit, the account of a forced withdrawal).
    pub recipient: u64,
    pub amount: u64,
    /// `H_{serial+1}` (SPEC 15.2).
    pub priority_hash: [u8; 32],
    /// A forced withdrawal's L2 transaction (SPEC 9), as the ingest submits it.
    pub payload: Option<Vec<u8>>,
    pub l1_block: u64,
    pub l1_block_hash: [u8; 32],
    pub l1_tx_hash: [u8; 32],
    pub log_index: u64,
    /// The L1 time (unix seconds) by which a committed batch must have consumed the op
    /// (`Rollup.priorityDeadline`); `None` for rows recorded before migration 0009.
    pub deadline: Option<u64>,
}

/// One row of `l1_priority_ops`: one occurrence of a priority-queue log on L1, and where it
/// stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriorityOpRow {
    pub id: i64,
    pub op: L1PriorityOp,
    pub status: PriorityOpStatus,
    /// The L2 transaction that consumed it, once `credited` (unknown when it was consumed
    /// before a crash and marked after it).
    pub l2_tx_id: Option<[u8; 32]>,
}

impl<'r> FromRow<'r, PgRow> for PriorityOpRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(PriorityOpRow {
            id: row.try_get("id")?,
            op: L1PriorityOp {
                serial: u64_col(row, "serial")?,
                kind: row.try_get("kind")?,
                depositor: address_col(row, "depositor")?,
                recipient: u64_col(row, "recipient")?,
                amount: u64_col(row, "amount")?,
                priority_hash: hash_col(row, "priority_hash")?,
                payload: row.try_get("payload")?,
                l1_block: u64_col(row, "l1_block")?,
                l1_block_hash: hash_col(row, "l1_block_hash")?,
                l1_tx_hash: hash_col(row, "l1_tx_hash")?,
                log_index: u64_col(row, "log_index")?,
                deadline: opt_u64_col(row, "deadline")?,
            },
            status: row.try_get("status")?,
            l2_tx_id: opt_hash_col(row, "l2_tx_id")?,
        })
    }
}

const OP_COLUMNS: &str = "id, serial, kind, depositor, recipient, amount, priority_hash, payload, \
    l1_block, l1_block_hash, l1_tx_hash, log_index, deadline, status, l2_tx_id";

impl PriorityOpStatus {
    /// Whether an op may move from `self` to `to`: `seen -> confirmed -> credited`, `seen ->
    /// reorged`, and `reorged -> seen` when its log comes back. A `confirmed` op is never
    /// reorged (the depth rule makes that outside the model), and nothing leaves `credited`.
    pub fn can_become(self, to: PriorityOpStatus) -> bool {
        use PriorityOpStatus::*;
        matches!(
            (self, to),
            (Seen, Confirmed) | (Seen, Reorged) | (Reorged, Seen) | (Confirmed, Credited)
        )
    }
}

/// Moves op `id` from `from` to `to` inside the caller's transaction; `l2_tx_id` is stored
/// with a move to `credited`. Returns the row as changed, or `None` when it was not in `from`
/// (someone else decided it first).
pub async fn transition_op(
    db: &mut PgConnection,
    id: i64,
    from: PriorityOpStatus,
    to: PriorityOpStatus,
    l2_tx_id: Option<[u8; 32]>,
) -> Result<Option<PriorityOpRow>> {
    if !from.can_become(to) {
        return Err(StorageError::Corrupt(format!(
            "priority op status cannot go from {from} to {to}"
        )));
    }
    let sql = format!(
        "UPDATE l1_priority_ops SET status = $3, updated_at = now(), \
         l2_tx_id = CASE WHEN $3 = $5 THEN $4 ELSE l2_tx_id END \
         WHERE id = $1 AND status = $2 RETURNING {OP_COLUMNS}"
    );
    Ok(sqlx::query_as::<_, PriorityOpRow>(&sql)
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(l2_tx_id.map(|t| t.to_vec()))
        .bind(PriorityOpStatus::Credited)
        .fetch_optional(db)
        .await?)
}

/// Records an op as `seen` inside the caller's transaction. A log is identified by (block
/// hash, log index): when its row exists and is `reorged` (its block left the chain and came
/// back, or a provider missed the log for one poll) that row is revived as `seen` rather than
/// inserting a second one, which the unique key would refuse. Returns `(id, fresh)`, `fresh`
/// false for a revived row; `None` when the row exists and is live (nothing to record).
pub async fn insert_seen_op(
    db: &mut PgConnection,
    op: &L1PriorityOp,
) -> Result<Option<(i64, bool)>> {
    let row = sqlx::query(
        "INSERT INTO l1_priority_ops (serial, kind, depositor, recipient, amount, \
         priority_hash, payload, l1_block, l1_block_hash, l1_tx_hash, log_index, status, \
         deadline) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$14) \
         ON CONFLICT (l1_block_hash, log_index) DO UPDATE SET status = $12, \
         updated_at = now() WHERE l1_priority_ops.status = $13 \
         RETURNING id, (xmax = 0) AS fresh",
    )
    .bind(i64_of(op.serial))
    .bind(op.kind)
    .bind(op.depositor.0.to_vec())
    .bind(i64_of(op.recipient))
    .bind(i64_of(op.amount))
    .bind(op.priority_hash.to_vec())
    .bind(op.payload.as_deref())
    .bind(i64_of(op.l1_block))
    .bind(op.l1_block_hash.to_vec())
    .bind(op.l1_tx_hash.to_vec())
    .bind(i64_of(op.log_index))
    .bind(PriorityOpStatus::Seen)
    .bind(PriorityOpStatus::Reorged)
    .bind(op.deadline.map(i64_of))
    .fetch_optional(db)
    .await?;
    row.map(|r| -> Result<(i64, bool)> { Ok((r.try_get("id")?, r.try_get("fresh")?)) })
        .transpose()
}

/// Ops in `status`, in serial order, at most `limit`, inside the caller's connection.
pub async fn ops_with_status(
    db: &mut PgConnection,
    status: PriorityOpStatus,
    limit: i64,
) -> Result<Vec<PriorityOpRow>> {
    let sql = format!(
        "SELECT {OP_COLUMNS} FROM l1_priority_ops WHERE status = $1 ORDER BY serial LIMIT $2"
    );
    Ok(sqlx::query_as::<_, PriorityOpRow>(&sql)
        .bind(status)
        .bind(limit)
        .fetch_all(db)
        .await?)
}

// ---------------------------------------------------------------------------------------------
// l1_sync

/// Where the watcher's scan is. Every block at or below the returned `final_block` is past the
/// confirmation depth and fully processed; `None` before the first poll.
pub async fn final_block(db: &mut PgConnection) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT final_block FROM l1_sync")
        .fetch_optional(db)
        .await?)
}

/// Takes the watcher's advisory lock until the caller's transaction ends.
pub async fn lock_watcher(db: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WATCHER_LOCK)
        .execute(db)
        .await?;
    Ok(())
}

/// Moves the watcher's cursor. `final_block` may be -1 (nothing final yet).
pub async fn save_sync(
    db: &mut PgConnection,
    final_block: i64,
    last_block: u64,
    last_hash: [u8; 32],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO l1_sync (id, final_block, last_block, last_hash) VALUES (TRUE, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET final_block = $1, last_block = $2, last_hash = $3, \
         updated_at = now()",
    )
    .bind(final_block)
    .bind(i64_of(last_block))
    .bind(last_hash.to_vec())
    .execute(db)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// l1_submissions

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
const SUBMISSION_COLUMNS: &str = "s.id, s.batch_number, s.kind, s.nonce, s.l1_tx_hash, \
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

// ---------------------------------------------------------------------------------------------
// l1_batches

/// One payout of a finalized batch (SPEC 15.5): withdrawals in order, then refunds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1Payout {
    /// The L2 account, or `REFUND_FROM_BASE + serial` for a refund.
    pub from: u64,
    pub to: L1Address,
    pub amount: u64,
}

/// One row of `l1_batches`: what was (or is being) committed for a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L1BatchRow {
    pub batch_number: u64,
    /// `abi.encode(BatchHeader)` as committed.
    pub header: Vec<u8>,
    pub pubdata_hash: [u8; 32],
    pub statement: [u8; 32],
    pub withdrawals_root: [u8; 32],
    pub commit_tx: Option<[u8; 32]>,
    pub commit_block: Option<u64>,
    pub finalize_tx: Option<[u8; 32]>,
    pub finalize_block: Option<u64>,
    pub payouts: Vec<L1Payout>,
}

impl<'r> FromRow<'r, PgRow> for L1BatchRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let sqlx::types::Json(payouts) =
            row.try_get::<sqlx::types::Json<Vec<L1Payout>>, _>("payouts")?;
        Ok(L1BatchRow {
            batch_number: u64_col(row, "batch_number")?,
            header: row.try_get("header")?,
            pubdata_hash: hash_col(row, "pubdata_hash")?,
            statement: hash_col(row, "statement")?,
            withdrawals_root: hash_col(row, "withdrawals_root")?,
            commit_tx: opt_hash_col(row, "commit_tx")?,
            commit_block: opt_u64_col(row, "commit_block")?,
            finalize_tx: opt_hash_col(row, "finalize_tx")?,
            finalize_block: opt_u64_col(row, "finalize_block")?,
            payouts,
        })
    }
}

const L1_BATCH_COLUMNS: &str = "l.batch_number, l.header, l.pubdata_hash, l.statement, \
    l.withdrawals_root, l.commit_tx, l.commit_block, l.finalize_tx, l.finalize_block, l.payouts";

/// What the submitter records about a batch before its commit is broadcast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewL1Batch<'a> {
    pub batch_number: u64,
    pub header: &'a [u8],
    pub pubdata_hash: [u8; 32],
    pub statement: [u8; 32],
    pub withdrawals_root: [u8; 32],
    pub payouts: &'a [L1Payout],
}

/// The `{kind}_tx`, `{kind}_block` columns of `l1_batches`: a column name from an enum,
/// never from input.
fn tx_columns(kind: SubmissionKind) -> (&'static str, &'static str) {
    match kind {
        SubmissionKind::Commit => ("commit_tx", "commit_block"),
        SubmissionKind::Finalize => ("finalize_tx", "finalize_block"),
    }
}

/// Records where the `kind` transaction of `batch` was mined, inside the caller's transaction.
pub async fn set_l1_tx(
    db: &mut PgConnection,
    batch: u64,
    kind: SubmissionKind,
    tx: [u8; 32],
    block: u64,
) -> Result<()> {
    let (tx_col, block_col) = tx_columns(kind);
    sqlx::query(&format!(
        "UPDATE l1_batches SET {tx_col} = $2, {block_col} = $3 WHERE batch_number = $1"
    ))
    .bind(i64_of(batch))
    .bind(tx.to_vec())
    .bind(i64_of(block))
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets the `kind` transaction of `batch` if it is still `tx` (reorged out), inside the
/// caller's transaction.
pub async fn clear_l1_tx(
    db: &mut PgConnection,
    batch: u64,
    kind: SubmissionKind,
    tx: [u8; 32],
) -> Result<()> {
    let (tx_col, block_col) = tx_columns(kind);
    sqlx::query(&format!(
        "UPDATE l1_batches SET {tx_col} = NULL, {block_col} = NULL \
         WHERE batch_number = $1 AND {tx_col} = $2"
    ))
    .bind(i64_of(batch))
    .bind(tx.to_vec())
    .execute(db)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The pool-level DAL

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_op_transitions_are_allowed() {
        use PriorityOpStatus::*;
        let allowed = [
            (Seen, Confirmed),
            (Seen, Reorged),
            (Reorged, Seen),
            (Confirmed, Credited),
        ];
        for from in PriorityOpStatus::ALL {
            for to in PriorityOpStatus::ALL {
                assert_eq!(
                    from.can_become(*to),
                    allowed.contains(&(*from, *to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn payouts_keep_their_stored_json_shape() {
        let doc = serde_json::json!([
            {"from": 5, "to": "0x00000000000000000000000000000000000000aa", "amount": 250}
        ]);
        let p: Vec<L1Payout> = match serde_json::from_value(doc.clone()) {
            Ok(p) => p,
            Err(e) => panic!("stored payouts do not decode: {e}"),
        };
        assert_eq!(p[0].to.0[19], 0xaa);
        assert_eq!(serde_json::to_value(&p).ok(), Some(doc));
    }
}
