//! `batches` and `batch_witness`: a batch from seal to L1 finality.
//!
//! The writer inserts a batch with its witness in the same database transaction as its last
//! block ([`insert_sealed`], called by [`crate::log::LogDal::write`]). From then on only its
//! `status` changes, and only through [`transition`], which refuses any move that
//! [`BatchStatus::can_become`] does not allow and performs it as a compare-and-set
//! (`WHERE status = <from>`), so two services racing on one batch cannot both win.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgPool, Row};
use state::Digest;

use crate::convert::{decode_err, digest_of, i64_of, u32_of, u64_of};
use crate::log::SealedBatch;
use crate::status::{BatchStatus, Finality};
use crate::witness::BatchWitness;
use crate::{Result, StorageError};

/// One row of `batches`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRow {
    pub number: u64,
    pub first_block: u64,
    pub last_block: u64,
    pub first_seq: u64,
    /// `first_seq - 1` when the batch is empty.
    pub last_seq: u64,
    pub old_root: Digest,
    pub new_root: Digest,
    pub pubdata_commitment: Digest,
    pub withdrawals_commitment: Digest,
    /// L1 priority ops consumed: `[first_deposit_seq, next_deposit_seq)`.
    pub first_deposit_seq: u64,
    pub next_deposit_seq: u64,
    pub tx_count: u32,
    pub status: BatchStatus,
}

impl<'r> FromRow<'r, PgRow> for BatchRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let u = |name: &str| -> Result<u64, sqlx::Error> {
            u64_of(row.try_get::<i64, _>(name)?, name).map_err(|e| decode_err(name, e))
        };
        let d = |name: &str| -> Result<Digest, sqlx::Error> {
            digest_of(&row.try_get::<Vec<u8>, _>(name)?, name).map_err(|e| decode_err(name, e))
        };
        Ok(BatchRow {
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
            tx_count: u32_of(i64::from(row.try_get::<i32, _>("tx_count")?), "tx_count")
                .map_err(|e| decode_err("tx_count", e))?,
            status: row.try_get("status")?,
        })
    }
}

/// `batch_witness`: what the prover and the submitter read about a batch besides its
/// transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchWitnessRow {
    pub batch_number: u64,
    /// The per-transaction ops (SPEC 10) whose Poseidon commitment the proof binds.
    pub pubdata: Vec<u8>,
    pub witness: BatchWitness,
    /// The net state diff published on L1 (SPEC 10.4). `None` for batches sealed before
    /// migration 0005: those cannot be committed.
    pub l1_pubdata: Option<Vec<u8>>,
}

impl<'r> FromRow<'r, PgRow> for BatchWitnessRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let batch_number = u64_of(row.try_get::<i64, _>("batch_number")?, "batch_number")
            .map_err(|e| decode_err("batch_number", e))?;
        let sqlx::types::Json(witness) =
            row.try_get::<sqlx::types::Json<BatchWitness>, _>("witness")?;
        Ok(BatchWitnessRow {
            batch_number,
            pubdata: row.try_get("pubdata")?,
            witness,
            l1_pubdata: row.try_get("l1_pubdata")?,
        })
    }
}

impl BatchStatus {
    /// Whether a batch may move from `self` to `to`. The happy path is `sealed -> proving ->
    /// proven -> committed -> finalized`; the prover may reject a `sealed` or `proving` batch
    /// and re-plan a `rejected` one (after an operator fixed what made it refuse).
    pub fn can_become(self, to: BatchStatus) -> bool {
        use BatchStatus::*;
        matches!(
            (self, to),
            (Sealed, Proving)
                | (Rejected, Proving)
                | (Proving, Proven)
                | (Sealed, Rejected)
                | (Proving, Rejected)
                | (Proven, Committed)
                | (Committed, Finalized)
                // `Rollup.revertBatches` took the commit off L1: committed again later.
                | (Committed, Proven)
        )
    }
}

/// A status change [`BatchStatus::can_become`] forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("batch status cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: BatchStatus,
    pub to: BatchStatus,
}

/// Moves batch `number` from `from` to `to` inside the caller's transaction (so the change
/// lands together with what caused it: a proof, an L1 receipt, an event). Returns whether this
/// call made the change: `false` when the batch was not in `from` (another service moved it
/// first, or it does not exist). `rejection` is stored with a move to `rejected`.
pub async fn transition(
    db: &mut PgConnection,
    number: u64,
    from: BatchStatus,
    to: BatchStatus,
    rejection: Option<&str>,
) -> Result<bool> {
    if !from.can_become(to) {
        return Err(StorageError::Corrupt(
            IllegalTransition { from, to }.to_string(),
        ));
    }
    let n = sqlx::query!(
        "UPDATE batches SET status = $3, rejection = $4 WHERE number = $1 AND status = $2",
        i64_of(number),
        from.as_str(),
        to.as_str(),
        rejection.filter(|_| to == BatchStatus::Rejected),
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Inserts a sealed batch and its witness (inside the committer's transaction).
pub(crate) async fn insert_sealed(db: &mut PgConnection, batch: &SealedBatch) -> Result<()> {
    let r = &batch.row;
    sqlx::query!(
        "INSERT INTO batches (number, first_block, last_block, first_seq, last_seq, \
         old_root, new_root, pubdata_commitment, withdrawals_commitment, \
         first_deposit_seq, next_deposit_seq, tx_count, status) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
        i64_of(r.number),
        i64_of(r.first_block),
        i64_of(r.last_block),
        i64_of(r.first_seq),
        i64_of(r.last_seq),
        &r.old_root.to_bytes()[..],
        &r.new_root.to_bytes()[..],
        &r.pubdata_commitment.to_bytes()[..],
        &r.withdrawals_commitment.to_bytes()[..],
        i64_of(r.first_deposit_seq),
        i64_of(r.next_deposit_seq),
        i32::try_from(r.tx_count).unwrap_or(i32::MAX),
        r.status.as_str(),
    )
    .execute(&mut *db)
    .await?;
    let witness = serde_json::to_value(&batch.witness)
        .map_err(|e| StorageError::Corrupt(format!("batch witness does not serialize: {e}")))?;
    sqlx::query!(
        "INSERT INTO batch_witness (batch_number, pubdata, witness, l1_pubdata) \
         VALUES ($1, $2, $3, $4)",
        i64_of(r.number),
        &batch.pubdata,
        witness,
        &batch.l1_pubdata,
    )
    .execute(&mut *db)
    .await?;
    Ok(())
}

const BATCH_COLUMNS: &str = "number, first_block, last_block, first_seq, last_seq, \
    old_root, new_root, pubdata_commitment, withdrawals_commitment, first_deposit_seq, \
    next_deposit_seq, tx_count, status";

/// The highest batch number at each finality level (0 = none yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchProgress {
    pub sealed: u64,
    /// Proven or beyond.
    pub proven: u64,
    /// Committed or beyond.
    pub committed: u64,
    pub finalized: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct BatchesDal<'a> {
    pool: &'a PgPool,
}

impl<'a> BatchesDal<'a> {
    pub(crate) fn new(pool: &'a PgPool) -> Self {
        BatchesDal { pool }
    }

    pub async fn get(self, number: u64) -> Result<Option<BatchRow>> {
        let sql = format!("SELECT {BATCH_COLUMNS} FROM batches WHERE number = $1");
        Ok(sqlx::query_as::<_, BatchRow>(&sql)
            .bind(i64_of(number))
            .fetch_optional(self.pool)
            .await?)
    }

    pub async fn last(self) -> Result<Option<BatchRow>> {
        let sql = format!("SELECT {BATCH_COLUMNS} FROM batches ORDER BY number DESC LIMIT 1");
        Ok(sqlx::query_as::<_, BatchRow>(&sql)
            .fetch_optional(self.pool)
            .await?)
    }

    /// The lowest-numbered batch in one of `statuses`.
    pub async fn first_with_status(self, statuses: &[BatchStatus]) -> Result<Option<BatchRow>> {
        let sql = format!(
            "SELECT {BATCH_COLUMNS} FROM batches WHERE status = ANY($1) ORDER BY number LIMIT 1"
        );
        Ok(sqlx::query_as::<_, BatchRow>(&sql)
            .bind(statuses)
            .fetch_optional(self.pool)
            .await?)
    }

    /// The highest batch number in one of `statuses` (0 when none).
    pub async fn last_number_with_status(self, statuses: &[BatchStatus]) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(number), 0) FROM batches WHERE status = ANY($1)",
        )
        .bind(statuses)
        .fetch_one(self.pool)
        .await?;
        u64_of(n, "batch number")
    }

    /// The status of batch `number`, if it exists.
    pub async fn status(self, number: u64) -> Result<Option<BatchStatus>> {
        Ok(
            sqlx::query_scalar("SELECT status FROM batches WHERE number = $1")
                .bind(i64_of(number))
                .fetch_optional(self.pool)
                .await?,
        )
    }

    /// The highest batch number at each finality level.
    pub async fn progress(self) -> Result<BatchProgress> {
        let (sealed, proven, committed, finalized): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT coalesce(max(number), 0), \
             coalesce(max(number) FILTER (WHERE status = ANY($1)), 0), \
             coalesce(max(number) FILTER (WHERE status = ANY($2)), 0), \
             coalesce(max(number) FILTER (WHERE status = ANY($3)), 0) FROM batches",
        )
        .bind(BatchStatus::at_least(Finality::Proven))
        .bind(BatchStatus::at_least(Finality::Committed))
        .bind(BatchStatus::at_least(Finality::Finalized))
        .fetch_one(self.pool)
        .await?;
        Ok(BatchProgress {
            sealed: u64_of(sealed, "batch number")?,
            proven: u64_of(proven, "batch number")?,
            committed: u64_of(committed, "batch number")?,
            finalized: u64_of(finalized, "batch number")?,
        })
    }

    /// The witness row of batch `number`.
    pub async fn witness(self, number: u64) -> Result<Option<BatchWitnessRow>> {
        Ok(sqlx::query_as::<_, BatchWitnessRow>(
            "SELECT batch_number, pubdata, witness, l1_pubdata FROM batch_witness \
             WHERE batch_number = $1",
        )
        .bind(i64_of(number))
        .fetch_optional(self.pool)
        .await?)
    }

    /// Moves batch `number` from `from` to `to` in a transaction of its own (see
    /// [`transition`] to do it together with other writes).
    pub async fn transition(
        &self,
        number: u64,
        from: BatchStatus,
        to: BatchStatus,
        rejection: Option<&str>,
    ) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        transition(&mut conn, number, from, to, rejection).await
    }
}

/// A batch as the explorer lists it: its range, its status and the L1 transactions that
/// committed and finalized it (from `l1_batches`, once mined; `None` before, or after a revert
/// took the commit off L1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchSummary {
    pub number: u64,
    pub first_block: u64,
    pub last_block: u64,
    pub first_seq: u64,
    /// `first_seq - 1` when the batch is empty.
    pub last_seq: u64,
    pub tx_count: u32,
    pub new_root: Digest,
    pub status: BatchStatus,
    /// When the batch was sealed, unix milliseconds (the database's clock).
    pub sealed_at_ms: i64,
    pub commit_tx: Option<[u8; 32]>,
    pub commit_block: Option<u64>,
    pub finalize_tx: Option<[u8; 32]>,
    pub finalize_block: Option<u64>,
}

/// A [`BatchSummary`] as `query_as!` types it against the schema at compile time.
struct BatchSummaryRecord {
    number: i64,
    first_block: i64,
    last_block: i64,
    first_seq: i64,
    last_seq: i64,
    tx_count: i32,
    new_root: Vec<u8>,
    status: BatchStatus,
    sealed_at_ms: i64,
    commit_tx: Option<Vec<u8>>,
    commit_block: Option<i64>,
    finalize_tx: Option<Vec<u8>>,
    finalize_block: Option<i64>,
}

impl TryFrom<BatchSummaryRecord> for BatchSummary {
    type Error = StorageError;

    fn try_from(r: BatchSummaryRecord) -> Result<Self> {
        let hash = |h: Option<Vec<u8>>, what: &str| {
            h.map(|h| crate::convert::hash32_of(&h, what)).transpose()
        };
        let block = |b: Option<i64>, what: &str| b.map(|b| u64_of(b, what)).transpose();
        Ok(BatchSummary {
            number: u64_of(r.number, "number")?,
            first_block: u64_of(r.first_block, "first_block")?,
            last_block: u64_of(r.last_block, "last_block")?,
            first_seq: u64_of(r.first_seq, "first_seq")?,
            last_seq: u64_of(r.last_seq, "last_seq")?,
            tx_count: u32_of(i64::from(r.tx_count), "tx_count")?,
            new_root: digest_of(&r.new_root, "new_root")?,
            status: r.status,
            sealed_at_ms: r.sealed_at_ms,
            commit_tx: hash(r.commit_tx, "commit_tx")?,
            commit_block: block(r.commit_block, "commit_block")?,
            finalize_tx: hash(r.finalize_tx, "finalize_tx")?,
            finalize_block: block(r.finalize_block, "finalize_block")?,
        })
    }
}

impl<'a> BatchesDal<'a> {
    /// Batches numbered below `before` (`None`: from the newest), newest first, at most
    /// `limit`, with their L1 commit and finalize transactions: the explorer's batch list.
    pub async fn recent_summaries(
        self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<BatchSummary>> {
        sqlx::query_as!(
            BatchSummaryRecord,
            r#"SELECT b.number, b.first_block, b.last_block, b.first_seq, b.last_seq,
                      b.tx_count, b.new_root, b.status AS "status: BatchStatus",
                      (extract(epoch FROM b.created_at) * 1000)::bigint AS "sealed_at_ms!",
                      l.commit_tx AS "commit_tx?", l.commit_block AS "commit_block?",
                      l.finalize_tx AS "finalize_tx?", l.finalize_block AS "finalize_block?"
               FROM batches b LEFT JOIN l1_batches l ON l.batch_number = b.number
               WHERE b.number < $1 ORDER BY b.number DESC LIMIT $2"#,
            before.map_or(i64::MAX, i64_of),
            i64::from(limit),
        )
        .fetch_all(self.pool)
        .await?
        .into_iter()
        .map(BatchSummary::try_from)
        .collect()
    }

    /// Batch `number` with its L1 transactions, if it exists.
    pub async fn summary(self, number: u64) -> Result<Option<BatchSummary>> {
        let next = number.saturating_add(1);
        Ok(self
            .recent_summaries(Some(next), 1)
            .await?
            .into_iter()
            .find(|b| b.number == number))
    }

    /// The number of the batch holding transaction `seq` (through the `last_seq` index), if
    /// it is sealed in one yet.
    pub async fn number_of_seq(self, seq: u64) -> Result<Option<u64>> {
        sqlx::query_scalar!(
            "SELECT number FROM batches WHERE last_seq >= $1 AND first_seq <= $1 \
             ORDER BY last_seq LIMIT 1",
            i64_of(seq),
        )
        .fetch_optional(self.pool)
        .await?
        .map(|n| u64_of(n, "batch number"))
        .transpose()
    }

    /// The number of the batch holding block `block`, if it is sealed in one yet. Batches
    /// cover consecutive block ranges in number order, so this is the first batch whose last
    /// block is at or after it.
    pub async fn number_of_block(self, block: u64) -> Result<Option<u64>> {
        sqlx::query_scalar!(
            "SELECT number FROM batches WHERE last_block >= $1 AND first_block <= $1 \
             ORDER BY number LIMIT 1",
            i64_of(block),
        )
        .fetch_optional(self.pool)
        .await?
        .map(|n| u64_of(n, "batch number"))
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_transitions_are_allowed() {
        use BatchStatus::*;
        let allowed = [
            (Sealed, Proving),
            (Rejected, Proving),
            (Proving, Proven),
            (Sealed, Rejected),
            (Proving, Rejected),
            (Proven, Committed),
            (Committed, Finalized),
            (Committed, Proven),
        ];
        for from in BatchStatus::ALL {
            for to in BatchStatus::ALL {
                assert_eq!(
                    from.can_become(*to),
                    allowed.contains(&(*from, *to)),
                    "{from} -> {to}"
                );
            }
        }
        // Nothing leaves `finalized`, and nothing skips the proof.
        assert!(!Finalized.can_become(Committed));
        assert!(!Sealed.can_become(Committed));
    }
}
