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
//!
//! [`PriorityOpStatus::can_become`]: crate::status::PriorityOpStatus::can_become

use sqlx::postgres::PgRow;
use sqlx::Row;
use state::tx::L1Address;

use crate::convert::{decode_err, hash32_of, u64_of};
use crate::{Result, StorageError};

/// Advisory lock of the watcher's write phase: two watchers on one database apply their
/// decisions one after the other, never interleaved (the feed's lock is
/// [`crate::feed::EVENT_LOCK`]).
pub const WATCHER_LOCK: i64 = 5_000_002;

pub(super) fn u64_col(row: &PgRow, name: &str) -> Result<u64, sqlx::Error> {
    u64_of(row.try_get::<i64, _>(name)?, name).map_err(|e| decode_err(name, e))
}

pub(super) fn opt_u64_col(row: &PgRow, name: &str) -> Result<Option<u64>, sqlx::Error> {
    row.try_get::<Option<i64>, _>(name)?
        .map(|v| u64_of(v, name).map_err(|e| decode_err(name, e)))
        .transpose()
}

pub(super) fn hash_col(row: &PgRow, name: &str) -> Result<[u8; 32], sqlx::Error> {
    hash32_of(&row.try_get::<Vec<u8>, _>(name)?, name).map_err(|e| decode_err(name, e))
}

pub(super) fn opt_hash_col(row: &PgRow, name: &str) -> Result<Option<[u8; 32]>, sqlx::Error> {
    row.try_get::<Option<Vec<u8>>, _>(name)?
        .map(|v| hash32_of(&v, name).map_err(|e| decode_err(name, e)))
        .transpose()
}

pub(super) fn address_col(row: &PgRow, name: &str) -> Result<L1Address, sqlx::Error> {
    let bytes: Vec<u8> = row.try_get(name)?;
    let a: [u8; 20] = bytes.as_slice().try_into().map_err(|_| {
        decode_err(
            name,
            StorageError::Corrupt(format!("{name} is not 20 bytes")),
        )
    })?;
    Ok(L1Address(a))
}

mod batches;
mod dal;
mod priority_ops;
mod submissions;
mod sync;

pub use batches::{clear_l1_tx, set_l1_tx, L1BatchRow, L1Payout, NewL1Batch};
pub use dal::L1Dal;
pub use priority_ops::{
    insert_seen_op, ops_with_status, transition_op, L1PriorityOp, PriorityOpRow,
};
pub use submissions::{
    lock_mined, record_receipt, revert_batches, unmine, MinedSubmission, NewSubmission,
    RevertedBatch, SubmissionRow,
};
pub use sync::{final_block, lock_watcher, save_sync};

#[cfg(test)]
mod tests;
