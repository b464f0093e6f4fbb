//! Checked conversions between the schema's column types and the domain's.

use state::Digest;

use crate::{Result, StorageError};

/// `u64` to `BIGINT`. Every stored integer is below 2^63 by protocol rules (indices, seqs,
/// times, amounts); a larger one is a bug upstream, refused rather than wrapped.
pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `BIGINT` to `u64`: a negative value is a corrupt row.
pub(crate) fn u64_of(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StorageError::Corrupt(format!("{what} is negative: {v}")))
}

/// `INTEGER`/`BIGINT` to `u32`.
pub(crate) fn u32_of(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StorageError::Corrupt(format!("{what} out of range: {v}")))
}

pub(crate) fn digest_of(bytes: &[u8], what: &str) -> Result<Digest> {
    Digest::from_slice(bytes).ok_or_else(|| StorageError::Corrupt(format!("bad {what} digest")))
}

pub(crate) fn hash32_of(bytes: &[u8], what: &str) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StorageError::Corrupt(format!("{what} is not 32 bytes")))
}

/// A decode error for [`sqlx::FromRow`] impls: the column name and why.
pub(crate) fn decode_err(column: &str, e: StorageError) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(e),
    }
}
