//! `l1_priority_ops`: the priority ops the watcher saw on L1 and their status.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Row};
use state::tx::L1Address;

use crate::convert::i64_of;
use crate::status::{PriorityOpKind, PriorityOpStatus};
use crate::{Result, StorageError};

use super::{address_col, hash_col, opt_hash_col, opt_u64_col, u64_col};

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

pub(super) const OP_COLUMNS: &str =
    "id, serial, kind, depositor, recipient, amount, priority_hash, payload, \
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
