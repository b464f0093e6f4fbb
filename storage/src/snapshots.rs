//! `state_snapshots` and `state_snapshot_chunks`: the sequencer's state at the end of a batch.
//!
//! Written by the node's snapshot task (one database transaction for the row and its chunks,
//! after the batch row is durable; older snapshots beyond the newest `keep` are deleted in the
//! same transaction), read once at start-up by recovery. The bytes are opaque here (the format
//! belongs to `state::snapshot`); this module only stores them in chunks of at most
//! [`CHUNK_BYTES`] and checks their SHA-256 on the way back.
//!
//! Cost: a snapshot of a million accounts is ~150 MB, i.e. ~19 chunk rows; reading it back is
//! one sequential scan of those rows and one SHA-256 pass (~0.1 s with SHA-NI).

use sha2::{Digest as _, Sha256};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};
use state::Digest;

use crate::convert::{decode_err, digest_of, hash32_of, i64_of, u32_of, u64_of};
use crate::{Result, StorageError};

/// Largest chunk row: big enough that a snapshot is a handful of rows, small enough that no
/// single value comes near Postgres's 1 GB limit or needs one huge allocation in the driver.
pub const CHUNK_BYTES: usize = 8 << 20;

/// What a snapshot is of: one row of `state_snapshots`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub batch_number: u64,
    pub block_number: u64,
    pub last_seq: u64,
    pub block_time: u64,
    pub state_root: Digest,
    pub format_version: u32,
    pub byte_len: u64,
    pub sha256: [u8; 32],
}

impl<'r> FromRow<'r, PgRow> for SnapshotMeta {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let u = |name: &str| -> Result<u64, sqlx::Error> {
            u64_of(row.try_get::<i64, _>(name)?, name).map_err(|e| decode_err(name, e))
        };
        Ok(SnapshotMeta {
            batch_number: u("batch_number")?,
            block_number: u("block_number")?,
            last_seq: u("last_seq")?,
            block_time: u("block_time")?,
            byte_len: u("byte_len")?,
            state_root: digest_of(&row.try_get::<Vec<u8>, _>("state_root")?, "state_root")
                .map_err(|e| decode_err("state_root", e))?,
            format_version: u32_of(
                i64::from(row.try_get::<i32, _>("format_version")?),
                "format",
            )
            .map_err(|e| decode_err("format_version", e))?,
            sha256: hash32_of(&row.try_get::<Vec<u8>, _>("sha256")?, "sha256")
                .map_err(|e| decode_err("sha256", e))?,
        })
    }
}

/// The state a snapshot describes, before its bytes are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSnapshot {
    pub batch_number: u64,
    pub block_number: u64,
    pub last_seq: u64,
    pub block_time: u64,
    pub state_root: Digest,
    pub format_version: u32,
}

#[derive(Clone, Copy, Debug)]
pub struct SnapshotsDal<'a> {
    pool: &'a PgPool,
}

impl<'a> SnapshotsDal<'a> {
    pub(crate) fn new(pool: &'a PgPool) -> Self {
        SnapshotsDal { pool }
    }

    /// Stores a snapshot and deletes all but the newest `keep` (at least one: this one).
    /// Returns `false`, storing nothing, if its batch is not in `batches` yet (the caller
    /// retries once the batch is durable) or a snapshot of that batch exists already.
    pub async fn insert(self, snap: &NewSnapshot, bytes: &[u8], keep: u32) -> Result<bool> {
        let sha = Sha256::digest(bytes);
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO state_snapshots (batch_number, block_number, last_seq, block_time, \
             state_root, format_version, byte_len, sha256) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
             WHERE EXISTS (SELECT 1 FROM batches WHERE number = $1 AND last_block = $2 \
                           AND last_seq = $3 AND new_root = $5) \
             ON CONFLICT (batch_number) DO NOTHING",
        )
        .bind(i64_of(snap.batch_number))
        .bind(i64_of(snap.block_number))
        .bind(i64_of(snap.last_seq))
        .bind(i64_of(snap.block_time))
        .bind(snap.state_root.to_bytes().to_vec())
        .bind(snap.format_version as i32)
        .bind(i64_of(bytes.len() as u64))
        .bind(sha.to_vec())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        for (i, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
            sqlx::query(
                "INSERT INTO state_snapshot_chunks (batch_number, chunk, data) VALUES ($1, $2, $3)",
            )
            .bind(i64_of(snap.batch_number))
            .bind(i32::try_from(i).unwrap_or(i32::MAX))
            .bind(chunk)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM state_snapshots WHERE batch_number NOT IN \
             (SELECT batch_number FROM state_snapshots ORDER BY batch_number DESC LIMIT $1)",
        )
        .bind(i64::from(keep.max(1)))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Snapshots, newest first.
    pub async fn list(self) -> Result<Vec<SnapshotMeta>> {
        Ok(sqlx::query_as::<_, SnapshotMeta>(
            "SELECT batch_number, block_number, last_seq, block_time, state_root, \
             format_version, byte_len, sha256 FROM state_snapshots ORDER BY batch_number DESC",
        )
        .fetch_all(self.pool)
        .await?)
    }

    /// The bytes of a snapshot, checked against its length and SHA-256.
    pub async fn read(self, meta: &SnapshotMeta) -> Result<Vec<u8>> {
        let len = usize::try_from(meta.byte_len)
            .map_err(|_| StorageError::Corrupt("snapshot length".into()))?;
        let rows = sqlx::query(
            "SELECT chunk, data FROM state_snapshot_chunks WHERE batch_number = $1 ORDER BY chunk",
        )
        .bind(i64_of(meta.batch_number))
        .fetch_all(self.pool)
        .await?;
        let mut bytes = Vec::with_capacity(len);
        for (i, row) in rows.iter().enumerate() {
            let chunk: i32 = row.try_get("chunk")?;
            if usize::try_from(chunk).ok() != Some(i) {
                return Err(StorageError::Corrupt(format!(
                    "snapshot of batch {} misses chunk {i}",
                    meta.batch_number
                )));
            }
            bytes.extend_from_slice(row.try_get::<&[u8], _>("data")?);
        }
        drop(rows);
        if bytes.len() != len || Sha256::digest(&bytes).as_slice() != meta.sha256 {
            return Err(StorageError::Corrupt(format!(
                "snapshot of batch {} does not match its length or checksum",
                meta.batch_number
            )));
        }
        Ok(bytes)
    }
}
