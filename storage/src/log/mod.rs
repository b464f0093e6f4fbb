//! `transactions` and `blocks`: the durable log the sequencer's state is rebuilt from; and
//! `account_blocks`, which accounts each sealed block's transactions name (activity.rs).
//!
//! Only the committer writes here, through [`LogDal::write`], one commit group per database
//! transaction, so rows land in acceptance order; a row exists before its receipt is sent and
//! doubles as the receipt. Everything else is reads (recovery and queries).

use std::sync::LazyLock;

use futures::TryStreamExt;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};

use state::account::Timestamp;
use state::apply::BlockContext;
use state::Digest;

use crate::batches::BatchRow;
use crate::convert::{decode_err, digest_of, hash32_of, i64_of, u32_of, u64_of};
use crate::status::{BatchStatus, Finality};
use crate::witness::BatchWitness;
use crate::Result;

mod activity;
mod copy;

pub use activity::BlockActivity;

/// One accepted transaction as persisted (and as its receipt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRow {
    pub seq: u64,
    pub tx_id: [u8; 32],
    /// The SPEC 9 kind byte (1 register, 2 transfer, 3 withdraw, 4 deposit, 5 forced).
    pub kind: i16,
    pub sender: Option<u32>,
    pub recipient: Option<u32>,
    pub account_index: Option<u32>,
    /// Canonical encoding (SPEC 9).
    pub raw: Vec<u8>,
    pub block_number: u64,
    pub position: u32,
    /// The block's time, what `valid_until` was judged at.
    pub block_time: u64,
    /// The time of the first block of the transaction's batch, what the agent rules were
    /// judged at (SPEC 18.0; `state::apply::BlockContext`). Rows from before migration 0013
    /// read back their `block_time`, the clock they were judged at.
    pub batch_time: u64,
    /// Status of the batch holding the transaction (`None` before its batch is sealed, and
    /// for rows read by recovery, which does not ask).
    pub batch_status: Option<BatchStatus>,
    /// The accounts the transaction pays besides `sender` and `recipient` (a split's payees,
    /// a distribute's), ascending: written to `tx_parties` with the row, so that they find it
    /// by account. Set by the writer, which knows the effects (a distribute's payees are in
    /// the state, not in `raw`); empty in rows read back, whose parties stay in `tx_parties`.
    pub parties: Vec<u32>,
}

impl TxRow {
    /// The finality level of the transaction (DESIGN.md): `accepted` until its batch is
    /// proven, then the batch's status.
    pub fn finality(&self) -> Finality {
        Finality::of_batch(self.batch_status)
    }

    /// The clocks the rules judged the transaction at, to replay it (recovery, the prover's
    /// planner). A time above `2^63 - 1` cannot have been written; it reads as the maximum.
    pub fn context(&self) -> BlockContext {
        let t = |v: u64| Timestamp::new(v).unwrap_or(Timestamp::MAX);
        BlockContext::in_batch(t(self.block_time), t(self.batch_time))
    }
}

fn opt_u32(row: &PgRow, name: &str) -> Result<Option<u32>, sqlx::Error> {
    let v: Option<i64> = row.try_get(name)?;
    v.map(|x| u32_of(x, name).map_err(|e| decode_err(name, e)))
        .transpose()
}

fn u64_col(row: &PgRow, name: &str) -> Result<u64, sqlx::Error> {
    u64_of(row.try_get::<i64, _>(name)?, name).map_err(|e| decode_err(name, e))
}

impl<'r> FromRow<'r, PgRow> for TxRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        // `batch_status` is selected only by the queries that report finality.
        let batch_status = match row.try_get::<Option<BatchStatus>, _>("batch_status") {
            Ok(s) => s,
            Err(sqlx::Error::ColumnNotFound(_)) => None,
            Err(e) => return Err(e),
        };
        Ok(TxRow {
            seq: u64_col(row, "seq")?,
            tx_id: hash32_of(&row.try_get::<Vec<u8>, _>("tx_id")?, "tx_id")
                .map_err(|e| decode_err("tx_id", e))?,
            kind: row.try_get("kind")?,
            sender: opt_u32(row, "sender")?,
            recipient: opt_u32(row, "recipient")?,
            account_index: opt_u32(row, "account_index")?,
            raw: row.try_get("raw")?,
            block_number: u64_col(row, "block_number")?,
            position: u32_of(i64::from(row.try_get::<i32, _>("position")?), "position")
                .map_err(|e| decode_err("position", e))?,
            block_time: u64_col(row, "block_time")?,
            batch_time: u64_col(row, "batch_time")?,
            batch_status,
            parties: Vec::new(),
        })
    }
}

/// A sealed block (every ~250 ms). Its root is recomputed and checked at recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRow {
    pub number: u64,
    pub state_root: Digest,
    /// First transaction seq (== the next seq when the block is empty).
    pub first_seq: u64,
    pub tx_count: u32,
    pub block_time: u64,
}

impl<'r> FromRow<'r, PgRow> for BlockRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(BlockRow {
            number: u64_col(row, "number")?,
            state_root: digest_of(&row.try_get::<Vec<u8>, _>("state_root")?, "state_root")
                .map_err(|e| decode_err("state_root", e))?,
            first_seq: u64_col(row, "first_seq")?,
            tx_count: u32_of(i64::from(row.try_get::<i32, _>("tx_count")?), "tx_count")
                .map_err(|e| decode_err("tx_count", e))?,
            block_time: u64_col(row, "block_time")?,
        })
    }
}

/// What the node knows of an account's transactions that `account_blocks` does not hold yet
/// (those in blocks not sealed), for [`LogDal::txs_for_account`] and
/// [`LogDal::account_history`]: their seqs, and the last seq durable when they were read.
///
/// A read returns the account's transactions up to `through` and none after it, from every
/// place alike, so that it is a consistent cut of the log even though `seqs` was read a moment
/// before the query: a commit landing in between (a split paying the account, say, after a
/// transfer to it in the same open block) cannot show its later row without the earlier one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsealedSeqs {
    /// The account's seqs in unsealed blocks (any order; those beyond the cursor are ignored).
    pub seqs: Vec<u64>,
    /// The last durable seq when `seqs` was read.
    pub through: u64,
}

impl UnsealedSeqs {
    /// For a log whose every block is sealed (nothing in memory, no bound).
    pub fn all_sealed() -> Self {
        UnsealedSeqs {
            seqs: Vec::new(),
            through: u64::MAX,
        }
    }

    fn seqs_param(&self) -> Vec<i64> {
        self.seqs.iter().map(|&s| i64_of(s)).collect()
    }
}

/// A block as the writer (or recovery) seals it: its row, and which accounts its
/// transactions name, for `account_blocks` (written in the same database transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBlock {
    pub row: BlockRow,
    pub activity: BlockActivity,
}

/// A batch together with the data the prover needs besides the transactions.
#[derive(Clone, Debug)]
pub struct SealedBatch {
    pub row: BatchRow,
    /// The per-transaction ops (SPEC 10) whose Poseidon commitment the proof binds.
    pub pubdata: Vec<u8>,
    /// The net state diff published on L1 (SPEC 10.4).
    pub l1_pubdata: Vec<u8>,
    pub witness: BatchWitness,
}

/// What the committer persists, in order.
#[derive(Clone, Debug)]
pub enum WriteItem {
    Txs(Vec<TxRow>),
    Block(Box<SealedBlock>),
    Batch(Box<SealedBatch>),
}

/// The column list of [`TX_COLUMNS`], as a literal for `concat!`.
macro_rules! tx_columns {
    () => {
        "seq, tx_id, kind, sender, recipient, account_index, raw, block_number, position, \
         block_time, COALESCE(batch_time, block_time) AS batch_time"
    };
}

/// The columns [`TxRow`]'s `FromRow` reads without the batch status (replays: recovery and
/// the prover's planner; the one list, so a new column reaches both).
pub(crate) const TX_COLUMNS: &str = tx_columns!();

/// [`TX_COLUMNS`] plus the status of the batch holding the row (for receipts and queries; the
/// index on `batches (last_seq)` makes it one index probe per row).
const TX_COLUMNS_WITH_BATCH: &str = concat!(
    tx_columns!(),
    ", (SELECT b.status FROM batches b WHERE b.last_seq >= transactions.seq \
     AND b.first_seq <= transactions.seq ORDER BY b.last_seq LIMIT 1) AS batch_status"
);

const BLOCK_COLUMNS: &str = "number, state_root, first_seq, tx_count, block_time";

#[derive(Clone, Copy)]
pub struct LogDal<'a> {
    pool: &'a PgPool,
}

impl<'a> LogDal<'a> {
    pub(crate) fn new(pool: &'a PgPool) -> Self {
        LogDal { pool }
    }

    /// Persists items in one database transaction, in order. Called only by the committer.
    pub async fn write(self, items: &[WriteItem]) -> Result<()> {
        let mut db = self.pool.begin().await?;
        // Gather all transaction rows first: one `COPY` per commit (copy.rs).
        let txs: Vec<&TxRow> = items
            .iter()
            .filter_map(|i| match i {
                WriteItem::Txs(rows) => Some(rows.iter()),
                _ => None,
            })
            .flatten()
            .collect();
        if !txs.is_empty() {
            copy::send(&mut db, copy::COPY_TXS, copy::encode_txs(&txs)).await?;
            let (mut account, mut party_seq) = (Vec::<i64>::new(), Vec::<i64>::new());
            for t in &txs {
                for &a in &t.parties {
                    account.push(i64::from(a));
                    party_seq.push(i64_of(t.seq));
                }
            }
            if !account.is_empty() {
                sqlx::query!(
                    "INSERT INTO tx_parties (account, seq) \
                     SELECT * FROM UNNEST($1::bigint[], $2::bigint[])",
                    &account,
                    &party_seq,
                )
                .execute(&mut *db)
                .await?;
            }
        }
        // The sealed blocks' `account_blocks` rows: one `COPY` for all of them.
        let activity: Vec<&BlockActivity> = items
            .iter()
            .filter_map(|i| match i {
                WriteItem::Block(b) if !b.activity.is_empty() => Some(&b.activity),
                _ => None,
            })
            .collect();
        if !activity.is_empty() {
            let data = copy::encode_account_blocks(activity);
            copy::send(&mut db, copy::COPY_ACCOUNT_BLOCKS, data).await?;
        }
        for item in items {
            match item {
                WriteItem::Txs(_) => {}
                WriteItem::Block(sealed) => {
                    let b = &sealed.row;
                    sqlx::query!(
                        "INSERT INTO blocks (number, state_root, first_seq, tx_count, block_time) \
                         VALUES ($1, $2, $3, $4, $5)",
                        i64_of(b.number),
                        &b.state_root.to_bytes()[..],
                        i64_of(b.first_seq),
                        i32::try_from(b.tx_count).unwrap_or(i32::MAX),
                        i64_of(b.block_time),
                    )
                    .execute(&mut *db)
                    .await?;
                }
                WriteItem::Batch(batch) => crate::batches::insert_sealed(&mut db, batch).await?,
            }
        }
        db.commit().await?;
        Ok(())
    }

    /// Whether the commit group `items` is in the log. One group is one database transaction,
    /// so its first row answers for all of it (the committer asks after a failed attempt,
    /// whose COMMIT may have succeeded with its answer lost).
    pub async fn is_written(self, items: &[WriteItem]) -> Result<bool> {
        for item in items {
            let exists = match item {
                WriteItem::Txs(rows) => match rows.first() {
                    Some(r) => sqlx::query_scalar!(
                        r#"SELECT EXISTS (SELECT 1 FROM transactions WHERE seq = $1 AND tx_id = $2) AS "e!""#,
                        i64_of(r.seq),
                        &r.tx_id[..],
                    )
                    .fetch_one(self.pool)
                    .await?,
                    None => continue,
                },
                WriteItem::Block(b) => sqlx::query_scalar!(
                    r#"SELECT EXISTS (SELECT 1 FROM blocks WHERE number = $1) AS "e!""#,
                    i64_of(b.row.number),
                )
                .fetch_one(self.pool)
                .await?,
                WriteItem::Batch(b) => sqlx::query_scalar!(
                    r#"SELECT EXISTS (SELECT 1 FROM batches WHERE number = $1) AS "e!""#,
                    i64_of(b.row.number),
                )
                .fetch_one(self.pool)
                .await?,
            };
            return Ok(exists);
        }
        Ok(true)
    }

    /// Every accepted transaction with `seq > after` in order, streamed (recovery reads the
    /// log's tail after its snapshot, or the whole log without one).
    pub async fn for_each_tx_after(
        &self,
        after: u64,
        mut f: impl FnMut(TxRow) -> Result<()>,
    ) -> Result<u64> {
        let sql = format!("SELECT {TX_COLUMNS} FROM transactions WHERE seq > $1 ORDER BY seq");
        let mut rows = sqlx::query_as::<_, TxRow>(&sql)
            .bind(i64_of(after))
            .fetch(self.pool);
        let mut n = 0;
        while let Some(row) = rows.try_next().await? {
            f(row)?;
            n += 1;
        }
        Ok(n)
    }

    /// Every accepted transaction in order, streamed.
    pub async fn for_each_tx(self, f: impl FnMut(TxRow) -> Result<()>) -> Result<u64> {
        self.for_each_tx_after(0, f).await
    }

    pub async fn get_tx(self, tx_id: &[u8; 32]) -> Result<Option<TxRow>> {
        let sql = format!("SELECT {TX_COLUMNS_WITH_BATCH} FROM transactions WHERE tx_id = $1");
        Ok(sqlx::query_as::<_, TxRow>(&sql)
            .bind(tx_id.to_vec())
            .fetch_optional(self.pool)
            .await?)
    }

    /// Accepted transactions touching `account` (as sender, recipient, registrant or a split's
    /// payee) with `seq > after`, oldest first, at most `limit`, each with its batch's status
    /// ([`account_txs_sql`]: index range scans only, whatever the log's length).
    ///
    /// `unsealed`: the account's durable transactions in blocks not sealed yet, which
    /// `account_blocks` does not hold (the node keeps them in memory; read them *before*
    /// calling this, so that a block sealed meanwhile is found here). Nothing after
    /// `unsealed.through` is returned.
    pub async fn txs_for_account(
        self,
        account: u32,
        after: u64,
        limit: i64,
        unsealed: &UnsealedSeqs,
    ) -> Result<Vec<TxRow>> {
        Ok(
            sqlx::query_as::<_, TxRow>(account_txs_sql(Direction::After))
                .bind(i64::from(account))
                .bind(i64_of(after))
                .bind(limit)
                .bind(unsealed.seqs_param())
                .bind(i64_of(unsealed.through))
                .fetch_all(self.pool)
                .await?,
        )
    }

    /// The ids of one page of a sealed block's transactions, in position order: the seq range
    /// `[first_seq + offset, first_seq + tx_count)` through the primary key.
    pub async fn block_tx_ids(
        self,
        block: &BlockRow,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<[u8; 32]>> {
        let from = block.first_seq.saturating_add(u64::from(offset));
        let end = block.first_seq.saturating_add(u64::from(block.tx_count));
        let ids = sqlx::query_scalar!(
            "SELECT tx_id FROM transactions WHERE seq >= $1 AND seq < $2 ORDER BY seq LIMIT $3",
            i64_of(from),
            i64_of(end),
            i64::from(limit),
        )
        .fetch_all(self.pool)
        .await?;
        ids.iter().map(|b| hash32_of(b, "tx_id")).collect()
    }

    pub async fn get_block(self, number: u64) -> Result<Option<BlockRow>> {
        let sql = format!("SELECT {BLOCK_COLUMNS} FROM blocks WHERE number = $1");
        Ok(sqlx::query_as::<_, BlockRow>(&sql)
            .bind(i64_of(number))
            .fetch_optional(self.pool)
            .await?)
    }

    /// Sealed blocks with `number > after`, oldest first (recovery checks every root after
    /// its snapshot).
    pub async fn blocks_after(self, after: u64) -> Result<Vec<BlockRow>> {
        let sql = format!("SELECT {BLOCK_COLUMNS} FROM blocks WHERE number > $1 ORDER BY number");
        Ok(sqlx::query_as::<_, BlockRow>(&sql)
            .bind(i64_of(after))
            .fetch_all(self.pool)
            .await?)
    }

    /// All sealed blocks, oldest first.
    pub async fn all_blocks(self) -> Result<Vec<BlockRow>> {
        self.blocks_after(0).await
    }

    /// Deposits in the log (kind 4) that no credited L1 deposit accounts for: devnet faucet
    /// credits (a database from before `deposit_source` was recorded).
    pub async fn count_faucet_deposits(self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM transactions WHERE kind = 4) \
             - (SELECT count(*) FROM l1_priority_ops WHERE kind = $1 AND status = $2)",
        )
        .bind(crate::PriorityOpKind::Deposit)
        .bind(crate::PriorityOpStatus::Credited)
        .fetch_one(self.pool)
        .await?;
        Ok(n.max(0) as u64)
    }

    pub async fn count_txs(self) -> Result<u64> {
        let n = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM transactions"#)
            .fetch_one(self.pool)
            .await?;
        u64_of(n, "count")
    }
}

/// A `transactions` row (with its batch's status) as `query_as!` types it against the schema
/// at compile time; converted to a [`TxRow`] with checked integer conversions.
struct TxRecord {
    seq: i64,
    tx_id: Vec<u8>,
    kind: i16,
    sender: Option<i64>,
    recipient: Option<i64>,
    account_index: Option<i64>,
    raw: Vec<u8>,
    block_number: i64,
    position: i32,
    block_time: i64,
    batch_time: i64,
    batch_status: Option<BatchStatus>,
}

impl TryFrom<TxRecord> for TxRow {
    type Error = crate::StorageError;

    fn try_from(r: TxRecord) -> Result<Self> {
        let opt = |v: Option<i64>, what: &str| v.map(|x| u32_of(x, what)).transpose();
        Ok(TxRow {
            seq: u64_of(r.seq, "seq")?,
            tx_id: hash32_of(&r.tx_id, "tx_id")?,
            kind: r.kind,
            sender: opt(r.sender, "sender")?,
            recipient: opt(r.recipient, "recipient")?,
            account_index: opt(r.account_index, "account_index")?,
            raw: r.raw,
            block_number: u64_of(r.block_number, "block_number")?,
            position: u32_of(i64::from(r.position), "position")?,
            block_time: u64_of(r.block_time, "block_time")?,
            batch_time: u64_of(r.batch_time, "batch_time")?,
            batch_status: r.batch_status,
            parties: Vec::new(),
        })
    }
}

/// A `blocks` row as `query_as!` types it.
struct BlockRecord {
    number: i64,
    state_root: Vec<u8>,
    first_seq: i64,
    tx_count: i32,
    block_time: i64,
}

impl TryFrom<BlockRecord> for BlockRow {
    type Error = crate::StorageError;

    fn try_from(r: BlockRecord) -> Result<Self> {
        Ok(BlockRow {
            number: u64_of(r.number, "number")?,
            state_root: digest_of(&r.state_root, "state_root")?,
            first_seq: u64_of(r.first_seq, "first_seq")?,
            tx_count: u32_of(i64::from(r.tx_count), "tx_count")?,
            block_time: u64_of(r.block_time, "block_time")?,
        })
    }
}

impl<'a> LogDal<'a> {
    /// Sealed blocks numbered below `before` (`None`: from the newest), newest first, at most
    /// `limit`: the explorer's block list, one primary-key range scan.
    pub async fn recent_blocks(self, before: Option<u64>, limit: u32) -> Result<Vec<BlockRow>> {
        sqlx::query_as!(
            BlockRecord,
            "SELECT number, state_root, first_seq, tx_count, block_time FROM blocks \
             WHERE number < $1 ORDER BY number DESC LIMIT $2",
            before.map_or(i64::MAX, i64_of),
            i64::from(limit),
        )
        .fetch_all(self.pool)
        .await?
        .into_iter()
        .map(BlockRow::try_from)
        .collect()
    }

    /// One page of a sealed block's transactions, in position order, each with its batch's
    /// status: the seq range `[first_seq + offset, first_seq + tx_count)` through the primary
    /// key, at most `limit`.
    pub async fn block_txs(self, block: &BlockRow, offset: u32, limit: u32) -> Result<Vec<TxRow>> {
        let from = block.first_seq.saturating_add(u64::from(offset));
        let end = block.first_seq.saturating_add(u64::from(block.tx_count));
        sqlx::query_as!(
            TxRecord,
            r#"SELECT t.seq, t.tx_id, t.kind, t.sender, t.recipient, t.account_index, t.raw,
                      t.block_number, t.position, t.block_time,
                      COALESCE(t.batch_time, t.block_time) AS "batch_time!",
                      (SELECT b.status FROM batches b WHERE b.last_seq >= t.seq
                       AND b.first_seq <= t.seq ORDER BY b.last_seq LIMIT 1)
                       AS "batch_status: BatchStatus"
               FROM transactions t WHERE t.seq >= $1 AND t.seq < $2 ORDER BY t.seq LIMIT $3"#,
            i64_of(from),
            i64_of(end),
            i64::from(limit),
        )
        .fetch_all(self.pool)
        .await?
        .into_iter()
        .map(TxRow::try_from)
        .collect()
    }

    /// The history of `account`, newest first: accepted transactions touching it (as sender,
    /// recipient, registrant or a split's payee) with `seq < before` (`None`: from the newest),
    /// at most `limit`, each with its batch's status ([`account_txs_sql`]). `unsealed` as for
    /// [`Self::txs_for_account`].
    pub async fn account_history(
        self,
        account: u32,
        before: Option<u64>,
        limit: u32,
        unsealed: &UnsealedSeqs,
    ) -> Result<Vec<TxRow>> {
        // Nothing after `through`: start the page there if the cursor is beyond it, so that
        // the rows read are the page's (not newer rows the bound would drop).
        let cursor = before
            .unwrap_or(u64::MAX)
            .min(unsealed.through.saturating_add(1));
        Ok(
            sqlx::query_as::<_, TxRow>(account_txs_sql(Direction::Before))
                .bind(i64::from(account))
                .bind(i64_of(cursor))
                .bind(i64::from(limit))
                .bind(unsealed.seqs_param())
                .bind(i64_of(unsealed.through))
                .fetch_all(self.pool)
                .await?,
        )
    }
}

/// Which side of the cursor an account's transactions are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// `seq > cursor`, oldest first (a receipt watch catching up).
    After,
    /// `seq < cursor`, newest first (a history page).
    Before,
}

/// The query behind [`LogDal::txs_for_account`] and [`LogDal::account_history`]: `$1` the
/// account, `$2` the cursor, `$3` the page size, `$4` the account's seqs in unsealed blocks,
/// `$5` the last seq a read may return ([`UnsealedSeqs`]).
///
/// An account appears in five places: `account_blocks` (a sealed block's transfers,
/// withdrawals and deposits naming it as sender or recipient, one row per block, migration
/// 0018), `$4` (the same for the blocks not sealed yet, from the node's memory),
/// `transactions.account_index` (its registration, migration 0012) and `tx_parties` (a
/// split's or a distribute's payees). Each side is one index range scan from the cursor that
/// stops after a page; the seqs are merged without duplicates (an agent's delegation has the
/// agent both as recipient and as the registered account) and only the page's rows are read.
///
/// `account_blocks` is keyed by the last seq of each row, and an account's rows hold disjoint
/// ascending seq ranges: after a cursor, the rows whose last seq is past it; before it, the
/// rows whose last seq is below it and the one row that may straddle it (the first whose last
/// seq is not below). Each side reads at most a page of rows, each holding at least one seq.
/// A filter over the primary key instead (`seq > $2 AND (sender = $1 OR ...)`) would read
/// every transaction since the cursor.
pub(crate) fn account_txs_sql(direction: Direction) -> &'static str {
    static AFTER: LazyLock<String> = LazyLock::new(|| build_account_txs_sql(Direction::After));
    static BEFORE: LazyLock<String> = LazyLock::new(|| build_account_txs_sql(Direction::Before));
    match direction {
        Direction::After => &AFTER,
        Direction::Before => &BEFORE,
    }
}

/// [`account_txs_sql`] for one side of the cursor. The page's rows are read with
/// [`TX_COLUMNS_WITH_BATCH`], the list every other read of a transaction uses (the page's own
/// column is named `page_seq` so that those unqualified names are the transaction's).
fn build_account_txs_sql(direction: Direction) -> String {
    let (cmp, order) = match direction {
        Direction::After => (">", "ASC"),
        Direction::Before => ("<", "DESC"),
    };
    let side = |table: &str, column: &str| {
        format!(
            "(SELECT seq FROM {table} WHERE {column} = $1 AND seq {cmp} $2 AND seq <= $5 \
             ORDER BY seq {order} LIMIT $3)"
        )
    };
    // The rows reaching past the cursor, nearest first. Before it: from the row that may
    // straddle it (the first whose last seq is not below it; one probe of the key) down.
    let block_rows = match direction {
        Direction::After => {
            "(SELECT seqs, last_seq FROM account_blocks \
             WHERE account = $1 AND last_seq > $2 ORDER BY last_seq ASC LIMIT $3)"
        }
        Direction::Before => {
            "(SELECT seqs, last_seq FROM account_blocks \
             WHERE account = $1 AND last_seq <= COALESCE((SELECT b.last_seq \
             FROM account_blocks b WHERE b.account = $1 AND b.last_seq >= $2 \
             ORDER BY b.last_seq ASC LIMIT 1), $2) ORDER BY last_seq DESC LIMIT $3)"
        }
    };
    // Ordered by the row, then the seq within it (the same order as by seq: the rows' ranges
    // are disjoint), so that an incremental sort unnests only the rows the page needs: a busy
    // account's row holds a seq per payment of its block.
    let blocks = format!(
        "(SELECT s AS seq FROM {block_rows} ab, unnest(ab.seqs) s \
         WHERE s {cmp} $2 AND s <= $5 ORDER BY ab.last_seq {order}, s {order} LIMIT $3)"
    );
    let unsealed =
        format!("(SELECT s AS seq FROM unnest($4::bigint[]) s WHERE s {cmp} $2 AND s <= $5)");
    format!(
        "SELECT {TX_COLUMNS_WITH_BATCH} \
         FROM (SELECT seq AS page_seq FROM ({blocks} UNION {unsealed} UNION {} UNION {}) sides \
               ORDER BY seq {order} LIMIT $3) page \
         JOIN transactions ON transactions.seq = page.page_seq \
         ORDER BY transactions.seq {order}",
        side("transactions", "account_index"),
        side("tx_parties", "account"),
    )
}

impl<'a> std::fmt::Debug for LogDal<'a> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogDal")
    }
}

#[cfg(test)]
mod tests;
