//! `l1_batches`: the L1 facts of each committed batch (header, statement, payouts, transactions).

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Row};
use state::tx::L1Address;

use crate::convert::i64_of;
use crate::status::SubmissionKind;
use crate::Result;

use super::{hash_col, opt_hash_col, opt_u64_col, u64_col};

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

pub(super) const L1_BATCH_COLUMNS: &str = "l.batch_number, l.header, l.pubdata_hash, l.statement, \
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
pub(super) fn tx_columns(kind: SubmissionKind) -> (&'static str, &'static str) {
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
