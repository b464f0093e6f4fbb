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
use sqlx::PgPool;
use state::Digest;

use crate::convert::{digest_of, hash32_of, i64_of, u32_of, u64_of};
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

/// A row of `state_snapshots` as the database types it (`query_as!` checks these types
/// against the schema at compile time); [`SnapshotMeta`] is the checked domain view.
struct SnapshotRecord {
    batch_number: i64,
    block_number: i64,
    last_seq: i64,
    block_time: i64,
    state_root: Vec<u8>,
    format_version: i32,
    byte_len: i64,
    sha256: Vec<u8>,
}

impl TryFrom<SnapshotRecord> for SnapshotMeta {
    type Error = StorageError;

    fn try_from(r: SnapshotRecord) -> Result<Self> {
        Ok(SnapshotMeta {
            batch_number: u64_of(r.batch_number, "batch_number")?,
            block_number: u64_of(r.block_number, "block_number")?,
            last_seq: u64_of(r.last_seq, "last_seq")?,
            block_time: u64_of(r.block_time, "block_time")?,
            state_root: digest_of(&r.state_root, "state_root")?,
            format_version: u32_of(i64::from(r.format_version), "format_version")?,
            byte_len: u64_of(r.byte_len, "byte_len")?,
            sha256: hash32_of(&r.sha256, "sha256")?,
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
        let inserted = sqlx::query!(
            "INSERT INTO state_snapshots (batch_number, block_number, last_seq, block_time, \
             state_root, format_version, byte_len, sha256) \
             SELECT $1::BIGINT, $2::BIGINT, $3::BIGINT, $4::BIGINT, $5::BYTEA, $6::INTEGER, \
                    $7::BIGINT, $8::BYTEA \
             WHERE EXISTS (SELECT 1 FROM batches WHERE number = $1 AND last_block = $2 \
                           AND last_seq = $3 AND new_root = $5) \
             ON CONFLICT (batch_number) DO NOTHING",
            i64_of(snap.batch_number),
            i64_of(snap.block_number),
            i64_of(snap.last_seq),
            i64_of(snap.block_time),
            &snap.state_root.to_bytes()[..],
            i32::try_from(snap.format_version).unwrap_or(i32::MAX),
            i64_of(bytes.len() as u64),
            sha.as_slice(),
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        for (i, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
            sqlx::query!(
                "INSERT INTO state_snapshot_chunks (batch_number, chunk, data) VALUES ($1, $2, $3)",
                i64_of(snap.batch_number),
                i32::try_from(i).unwrap_or(i32::MAX),
                chunk,
            )
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query!(
            "DELETE FROM state_snapshots WHERE batch_number NOT IN \
             (SELECT batch_number FROM state_snapshots ORDER BY batch_number DESC LIMIT $1)",
            i64::from(keep.max(1)),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Snapshots, newest first.
    pub async fn list(self) -> Result<Vec<SnapshotMeta>> {
        sqlx::query_as!(
            SnapshotRecord,
            "SELECT batch_number, block_number, last_seq, block_time, state_root, \
             format_version, byte_len, sha256 FROM state_snapshots ORDER BY batch_number DESC"
        )
        .fetch_all(self.pool)
        .await?
        .into_iter()
        .map(SnapshotMeta::try_from)
        .collect()
    }

    /// The bytes of a snapshot, checked against its length and SHA-256.
    pub async fn read(self, meta: &SnapshotMeta) -> Result<Vec<u8>> {
        let len = usize::try_from(meta.byte_len)
            .map_err(|_| StorageError::Corrupt("snapshot length".into()))?;
        let rows = sqlx::query!(
            "SELECT chunk, data FROM state_snapshot_chunks WHERE batch_number = $1 ORDER BY chunk",
            i64_of(meta.batch_number),
        )
        .fetch_all(self.pool)
        .await?;
        let mut bytes = Vec::with_capacity(len);
        for (i, row) in rows.iter().enumerate() {
            if usize::try_from(row.chunk).ok() != Some(i) {
                return Err(StorageError::Corrupt(format!(
                    "snapshot of batch {} misses chunk {i}",
                    meta.batch_number
                )));
            }
            bytes.extend_from_slice(&row.data);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    async fn store() -> Store {
        let url = devkit::postgres::test_database("storage_snapshots")
            .await
            .expect("a Postgres server (see rollup-devkit)");
        Store::connect_and_migrate(&url, 2).await.expect("migrate")
    }

    fn root(n: u64) -> Digest {
        Digest::from_bytes(&{
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&n.to_le_bytes());
            b
        })
        .expect("canonical")
    }

    async fn seal_batch(store: &Store, n: u64) {
        sqlx::query(
            "INSERT INTO batches (number, first_block, last_block, first_seq, last_seq, old_root, \
             new_root, pubdata_commitment, withdrawals_commitment, first_deposit_seq, \
             next_deposit_seq, tx_count) VALUES ($1, $1, $1, $1, $1, $2, $3, $2, $2, 0, 0, 1)",
        )
        .bind(n as i64)
        .bind(root(0).to_bytes().to_vec())
        .bind(root(n).to_bytes().to_vec())
        .execute(store.pool())
        .await
        .expect("batch");
    }

    fn snap(n: u64) -> NewSnapshot {
        NewSnapshot {
            batch_number: n,
            block_number: n,
            last_seq: n,
            block_time: 1_000 + n,
            state_root: root(n),
            format_version: 1,
        }
    }

    #[tokio::test]
    async fn stored_only_for_a_durable_batch_pruned_and_checksummed() {
        let store = store().await;
        let dal = store.snapshots();
        // Bytes spanning several chunks, the last one short.
        let bytes: Vec<u8> = (0..CHUNK_BYTES * 2 + 1234)
            .map(|i| (i * 7 % 251) as u8)
            .collect();

        // Its batch is not durable yet: nothing is stored.
        assert!(!dal.insert(&snap(1), &bytes, 2).await.unwrap());
        assert!(dal.list().await.unwrap().is_empty());
        seal_batch(&store, 1).await;
        // A snapshot that disagrees with its batch (another root) is refused too.
        let mut wrong = snap(1);
        wrong.state_root = root(99);
        assert!(!dal.insert(&wrong, &bytes, 2).await.unwrap());
        assert!(dal.insert(&snap(1), &bytes, 2).await.unwrap());
        assert!(
            !dal.insert(&snap(1), &bytes, 2).await.unwrap(),
            "once per batch"
        );

        let listed = dal.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].block_time, 1_001);
        assert_eq!(listed[0].byte_len, bytes.len() as u64);
        assert_eq!(dal.read(&listed[0]).await.unwrap(), bytes);

        // Keep 2: the third snapshot removes the first, chunks included.
        for n in [2, 3] {
            seal_batch(&store, n).await;
            assert!(dal
                .insert(&snap(n), &bytes[..100 * n as usize], 2)
                .await
                .unwrap());
        }
        let kept: Vec<u64> = dal
            .list()
            .await
            .unwrap()
            .iter()
            .map(|m| m.batch_number)
            .collect();
        assert_eq!(kept, vec![3, 2]);
        let chunks: i64 =
            sqlx::query_scalar("SELECT count(*) FROM state_snapshot_chunks WHERE batch_number = 1")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(chunks, 0);

        // A flipped byte or a missing chunk is detected before anyone decodes the bytes.
        sqlx::query(
            "UPDATE state_snapshot_chunks SET data = set_byte(data, 5, (get_byte(data, 5) + 1) % 256) \
             WHERE batch_number = 3",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let newest = dal.list().await.unwrap()[0].clone();
        assert!(matches!(
            dal.read(&newest).await,
            Err(StorageError::Corrupt(_))
        ));
        sqlx::query("DELETE FROM state_snapshot_chunks WHERE batch_number = 2")
            .execute(store.pool())
            .await
            .unwrap();
        let older = dal.list().await.unwrap()[1].clone();
        assert!(matches!(
            dal.read(&older).await,
            Err(StorageError::Corrupt(_))
        ));
    }
}
