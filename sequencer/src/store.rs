//! Postgres persistence (sqlx): the durable transaction log, blocks, batches and chain metadata.
//!
//! The node writes through [`Store::write`] only, from the single committer task, so rows land
//! in acceptance order; everything else here is reads (recovery and queries).

use futures::TryStreamExt;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use state::Digest;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// One accepted transaction as persisted (and as its receipt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRow {
    pub seq: u64,
    pub tx_id: [u8; 32],
    pub kind: i16,
    pub sender: Option<u32>,
    pub recipient: Option<u32>,
    pub account_index: Option<u32>,
    pub raw: Vec<u8>,
    pub block_number: u64,
    pub position: u32,
    pub block_time: u64,
    /// Status of the batch holding the transaction (`None` before its batch is sealed, and
    /// for rows read by recovery, which does not ask).
    pub batch_status: Option<String>,
}

impl TxRow {
    /// The finality level of the transaction (DESIGN.md): `accepted` until its batch is
    /// proven, then the batch's status.
    pub fn finality(&self) -> Finality {
        match self.batch_status.as_deref() {
            Some("proven") => Finality::Proven,
            Some("committed") => Finality::Committed,
            Some("finalized") => Finality::Finalized,
            _ => Finality::Accepted,
        }
    }
}

/// Finality levels, from weakest to strongest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Finality {
    Accepted,
    Proven,
    Committed,
    Finalized,
}

impl Finality {
    pub fn as_str(self) -> &'static str {
        match self {
            Finality::Accepted => "accepted",
            Finality::Proven => "proven",
            Finality::Committed => "committed",
            Finality::Finalized => "finalized",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRow {
    pub number: u64,
    pub state_root: Digest,
    pub first_seq: u64,
    pub tx_count: u32,
    pub block_time: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRow {
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

/// A batch together with the data the prover needs besides the transactions.
#[derive(Clone, Debug)]
pub struct SealedBatch {
    pub row: BatchRow,
    /// The per-transaction ops (SPEC 10) whose Poseidon commitment the proof binds.
    pub pubdata: Vec<u8>,
    /// The net state diff published on L1 (SPEC 10.4).
    pub l1_pubdata: Vec<u8>,
    pub witness: serde_json::Value,
}

/// What the committer persists, in order.
#[derive(Clone, Debug)]
pub enum WriteItem {
    Txs(Vec<TxRow>),
    Block(BlockRow),
    Batch(Box<SealedBatch>),
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

fn i64_of(v: u64) -> i64 {
    // Every stored integer is below 2^63 by protocol rules (indices, seqs, times, amounts).
    v as i64
}

fn digest_from(bytes: &[u8], what: &str) -> Result<Digest, StoreError> {
    Digest::from_slice(bytes).ok_or_else(|| StoreError::Corrupt(format!("bad {what} digest")))
}

fn tx_id_from(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("tx_id is not 32 bytes".into()))
}

impl Store {
    /// Connects and applies pending migrations (`migrations/`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let store = Store::connect_pool(url, max_connections, Duration::from_secs(10)).await?;
        rollup_storage::MIGRATOR.run(&store.pool).await?;
        Ok(store)
    }

    /// A pool of its own (no migrations), e.g. the committer's: queries and feeds never take
    /// its connections. `acquire_timeout` bounds how long one attempt waits for a connection.
    pub async fn connect_pool(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .connect(url)
            .await?;
        Ok(Store { pool })
    }

    /// Whether the commit group `items` is in the log. One group is one database transaction,
    /// so its first row answers for all of it (the committer asks after a failed attempt,
    /// whose COMMIT may have succeeded with its answer lost).
    pub async fn is_written(&self, items: &[WriteItem]) -> Result<bool, StoreError> {
        for item in items {
            let q = match item {
                WriteItem::Txs(rows) => match rows.first() {
                    Some(r) => sqlx::query(
                        "SELECT EXISTS (SELECT 1 FROM transactions WHERE seq = $1 AND tx_id = $2)",
                    )
                    .bind(i64_of(r.seq))
                    .bind(r.tx_id.to_vec()),
                    None => continue,
                },
                WriteItem::Block(b) => {
                    sqlx::query("SELECT EXISTS (SELECT 1 FROM blocks WHERE number = $1)")
                        .bind(i64_of(b.number))
                }
                WriteItem::Batch(b) => {
                    sqlx::query("SELECT EXISTS (SELECT 1 FROM batches WHERE number = $1)")
                        .bind(i64_of(b.row.number))
                }
            };
            let found: bool = q.fetch_one(&self.pool).await?.try_get(0)?;
            return Ok(found);
        }
        Ok(true)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM chain_meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Stores `value` under `key` unless a value is there already; returns the stored value.
    pub async fn meta_init(&self, key: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO chain_meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        self.meta(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("meta {key} vanished")))
    }

    /// Persists items in one database transaction, in order. Called only by the committer.
    pub async fn write(&self, items: &[WriteItem]) -> Result<(), StoreError> {
        let mut db = self.pool.begin().await?;
        // Gather all transaction rows first: one multi-row insert per commit.
        let mut txs: Vec<&TxRow> = Vec::new();
        for item in items {
            if let WriteItem::Txs(rows) = item {
                txs.extend(rows.iter());
            }
        }
        if !txs.is_empty() {
            let seq: Vec<i64> = txs.iter().map(|t| i64_of(t.seq)).collect();
            let tx_id: Vec<Vec<u8>> = txs.iter().map(|t| t.tx_id.to_vec()).collect();
            let kind: Vec<i16> = txs.iter().map(|t| t.kind).collect();
            let sender: Vec<Option<i64>> = txs.iter().map(|t| t.sender.map(i64::from)).collect();
            let recipient: Vec<Option<i64>> =
                txs.iter().map(|t| t.recipient.map(i64::from)).collect();
            let account_index: Vec<Option<i64>> =
                txs.iter().map(|t| t.account_index.map(i64::from)).collect();
            let raw: Vec<Vec<u8>> = txs.iter().map(|t| t.raw.clone()).collect();
            let block: Vec<i64> = txs.iter().map(|t| i64_of(t.block_number)).collect();
            let position: Vec<i32> = txs.iter().map(|t| t.position as i32).collect();
            let block_time: Vec<i64> = txs.iter().map(|t| i64_of(t.block_time)).collect();
            sqlx::query(
                "INSERT INTO transactions \
                 (seq, tx_id, kind, sender, recipient, account_index, raw, block_number, position, block_time) \
                 SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::smallint[], $4::bigint[], \
                 $5::bigint[], $6::bigint[], $7::bytea[], $8::bigint[], $9::int[], $10::bigint[])",
            )
            .bind(seq)
            .bind(tx_id)
            .bind(kind)
            .bind(sender)
            .bind(recipient)
            .bind(account_index)
            .bind(raw)
            .bind(block)
            .bind(position)
            .bind(block_time)
            .execute(&mut *db)
            .await?;
        }
        for item in items {
            match item {
                WriteItem::Txs(_) => {}
                WriteItem::Block(b) => {
                    sqlx::query(
                        "INSERT INTO blocks (number, state_root, first_seq, tx_count, block_time) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(i64_of(b.number))
                    .bind(b.state_root.to_bytes().to_vec())
                    .bind(i64_of(b.first_seq))
                    .bind(b.tx_count as i32)
                    .bind(i64_of(b.block_time))
                    .execute(&mut *db)
                    .await?;
                }
                WriteItem::Batch(batch) => {
                    let r = &batch.row;
                    sqlx::query(
                        "INSERT INTO batches (number, first_block, last_block, first_seq, last_seq, \
                         old_root, new_root, pubdata_commitment, withdrawals_commitment, \
                         first_deposit_seq, next_deposit_seq, tx_count, status) \
                         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
                    )
                    .bind(i64_of(r.number))
                    .bind(i64_of(r.first_block))
                    .bind(i64_of(r.last_block))
                    .bind(i64_of(r.first_seq))
                    .bind(i64_of(r.last_seq))
                    .bind(r.old_root.to_bytes().to_vec())
                    .bind(r.new_root.to_bytes().to_vec())
                    .bind(r.pubdata_commitment.to_bytes().to_vec())
                    .bind(r.withdrawals_commitment.to_bytes().to_vec())
                    .bind(i64_of(r.first_deposit_seq))
                    .bind(i64_of(r.next_deposit_seq))
                    .bind(r.tx_count as i32)
                    .bind(&r.status)
                    .execute(&mut *db)
                    .await?;
                    sqlx::query(
                        "INSERT INTO batch_witness (batch_number, pubdata, witness, l1_pubdata) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(i64_of(r.number))
                    .bind(&batch.pubdata)
                    .bind(&batch.witness)
                    .bind(&batch.l1_pubdata)
                    .execute(&mut *db)
                    .await?;
                }
            }
        }
        db.commit().await?;
        Ok(())
    }

    fn tx_from_row(row: &sqlx::postgres::PgRow) -> Result<TxRow, StoreError> {
        let opt_u32 = |name: &str| -> Result<Option<u32>, StoreError> {
            let v: Option<i64> = row.try_get(name)?;
            v.map(|x| {
                u32::try_from(x).map_err(|_| StoreError::Corrupt(format!("{name} out of range")))
            })
            .transpose()
        };
        Ok(TxRow {
            seq: row.try_get::<i64, _>("seq")? as u64,
            tx_id: tx_id_from(&row.try_get::<Vec<u8>, _>("tx_id")?)?,
            kind: row.try_get("kind")?,
            sender: opt_u32("sender")?,
            recipient: opt_u32("recipient")?,
            account_index: opt_u32("account_index")?,
            raw: row.try_get("raw")?,
            block_number: row.try_get::<i64, _>("block_number")? as u64,
            position: row.try_get::<i32, _>("position")? as u32,
            block_time: row.try_get::<i64, _>("block_time")? as u64,
            batch_status: row.try_get("batch_status").ok().flatten(),
        })
    }

    const TX_COLUMNS: &'static str =
        "seq, tx_id, kind, sender, recipient, account_index, raw, block_number, position, block_time";

    /// [`Self::TX_COLUMNS`] plus the status of the batch holding the row (for receipts and
    /// queries; the index on `batches (last_seq)` makes it one index probe per row).
    const TX_COLUMNS_WITH_BATCH: &'static str =
        "seq, tx_id, kind, sender, recipient, account_index, raw, block_number, position, block_time, \
         (SELECT b.status FROM batches b WHERE b.last_seq >= transactions.seq \
          AND b.first_seq <= transactions.seq ORDER BY b.last_seq LIMIT 1) AS batch_status";

    /// Every accepted transaction in order, streamed (recovery reads the whole log).
    pub async fn for_each_tx(
        &self,
        mut f: impl FnMut(TxRow) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let sql = format!("SELECT {} FROM transactions ORDER BY seq", Self::TX_COLUMNS);
        let mut rows = sqlx::query(&sql).fetch(&self.pool);
        let mut n = 0;
        while let Some(row) = rows.try_next().await? {
            f(Self::tx_from_row(&row)?)?;
            n += 1;
        }
        Ok(n)
    }

    pub async fn get_tx(&self, tx_id: &[u8; 32]) -> Result<Option<TxRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM transactions WHERE tx_id = $1",
            Self::TX_COLUMNS_WITH_BATCH
        );
        let row = sqlx::query(&sql)
            .bind(tx_id.to_vec())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::tx_from_row).transpose()
    }

    /// Accepted transactions touching `account` with `seq > after`, oldest first.
    pub async fn txs_for_account(
        &self,
        account: u32,
        after: u64,
        limit: i64,
    ) -> Result<Vec<TxRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM transactions WHERE seq > $2 AND \
             (sender = $1 OR recipient = $1 OR account_index = $1) ORDER BY seq LIMIT $3",
            Self::TX_COLUMNS_WITH_BATCH
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(account))
            .bind(i64_of(after))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::tx_from_row).collect()
    }

    /// The ids of one page of a block's transactions, in position order.
    pub async fn block_tx_ids(
        &self,
        number: u64,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        let rows = sqlx::query(
            "SELECT tx_id FROM transactions WHERE block_number = $1 AND position >= $2 \
             ORDER BY position LIMIT $3",
        )
        .bind(i64_of(number))
        .bind(i64::from(offset))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| tx_id_from(&r.try_get::<Vec<u8>, _>("tx_id")?))
            .collect()
    }

    pub async fn block_txs(&self, number: u64) -> Result<Vec<TxRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM transactions WHERE block_number = $1 ORDER BY position",
            Self::TX_COLUMNS_WITH_BATCH
        );
        let rows = sqlx::query(&sql)
            .bind(i64_of(number))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::tx_from_row).collect()
    }

    fn block_from_row(row: &sqlx::postgres::PgRow) -> Result<BlockRow, StoreError> {
        Ok(BlockRow {
            number: row.try_get::<i64, _>("number")? as u64,
            state_root: digest_from(&row.try_get::<Vec<u8>, _>("state_root")?, "state_root")?,
            first_seq: row.try_get::<i64, _>("first_seq")? as u64,
            tx_count: row.try_get::<i32, _>("tx_count")? as u32,
            block_time: row.try_get::<i64, _>("block_time")? as u64,
        })
    }

    pub async fn get_block(&self, number: u64) -> Result<Option<BlockRow>, StoreError> {
        let row = sqlx::query(
            "SELECT number, state_root, first_seq, tx_count, block_time FROM blocks WHERE number = $1",
        )
        .bind(i64_of(number))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::block_from_row).transpose()
    }

    /// All sealed blocks, oldest first (recovery checks every root).
    pub async fn all_blocks(&self) -> Result<Vec<BlockRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT number, state_root, first_seq, tx_count, block_time FROM blocks ORDER BY number",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::block_from_row).collect()
    }

    pub async fn last_batch(&self) -> Result<Option<BatchRow>, StoreError> {
        let row = sqlx::query(
            "SELECT number, first_block, last_block, first_seq, last_seq, old_root, new_root, \
             pubdata_commitment, withdrawals_commitment, first_deposit_seq, next_deposit_seq, \
             tx_count, status FROM batches ORDER BY number DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let d = |name: &str| -> Result<Digest, StoreError> {
            digest_from(&row.try_get::<Vec<u8>, _>(name)?, name)
        };
        let u = |name: &str| -> Result<u64, StoreError> { Ok(row.try_get::<i64, _>(name)? as u64) };
        Ok(Some(BatchRow {
            number: u("number")?,
            first_block: u("first_block")?,
            last_block: u("last_block")?,
            first_seq: u("first_seq")?,
            last_seq: u("last_seq")?,
            old_root: d("old_root")?,
            new_root: d("new_root")?,
            pubdata_commitment: d("pubdata_commitment")?,
            withdrawals_commitment: d("withdrawals_commitment")?,
            first_deposit_seq: u("first_deposit_seq")?,
            next_deposit_seq: u("next_deposit_seq")?,
            tx_count: row.try_get::<i32, _>("tx_count")? as u32,
            status: row.try_get("status")?,
        }))
    }

    /// The highest batch number at each finality level (0 = none yet): sealed, proven (or
    /// beyond), committed (or beyond), finalized.
    pub async fn batch_progress(&self) -> Result<[u64; 4], StoreError> {
        let row = sqlx::query(
            "SELECT coalesce(max(number), 0), \
             coalesce(max(number) FILTER (WHERE status IN ('proven', 'committed', 'finalized')), 0), \
             coalesce(max(number) FILTER (WHERE status IN ('committed', 'finalized')), 0), \
             coalesce(max(number) FILTER (WHERE status = 'finalized'), 0) FROM batches",
        )
        .fetch_one(&self.pool)
        .await?;
        let mut out = [0u64; 4];
        for (i, v) in out.iter_mut().enumerate() {
            *v = row.try_get::<i64, _>(i)? as u64;
        }
        Ok(out)
    }

    /// Deposits in the log (kind 4) that no credited L1 deposit accounts for: devnet faucet
    /// credits (a database from before `deposit_source` was recorded).
    pub async fn count_faucet_deposits(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT (SELECT count(*) FROM transactions WHERE kind = 4) \
             - (SELECT count(*) FROM l1_priority_ops WHERE kind = 'deposit' AND status = 'credited')",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(n.max(0) as u64)
    }

    pub async fn count_txs(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query("SELECT count(*) FROM transactions")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        Ok(n as u64)
    }
}
