//! The prover's view of the database: the job queue and the batches it proves, through
//! `rollup-storage` (which owns every query; see `rollup_storage::prover_jobs` for the queue's
//! invariants: the aggregation tree, claiming with `SKIP LOCKED`, fencing by `(worker,
//! attempt)`, promotion, and a batch being `proven` iff its proof is in `batch_proofs`).
//!
//! [`JobStore`] adds what needs the prover's own types: decoding the log's transactions for
//! the planner, and the statement a batch's proof must prove
//! ([`JobStore::settlement_statement`], also what the node's submitter checks a proof
//! against). It holds no SQL.

use anyhow::Context;
use rollup_storage::batches::BatchRow;
use rollup_storage::{BatchStatus, Store};
use sqlx::postgres::PgPool;
use state::account::Timestamp;
use state::apply::BlockContext;
use state::crypto::schnorr::PublicKey;
use state::tx::{Domain, Transaction};

pub use rollup_storage::prover_jobs::{ClaimedJob, QueueStats, TreeInputs};
pub use rollup_storage::{JobKind, JobState, ProofTree};

/// What a batch settles on L1 ([`JobStore::settlement_inputs`]).
#[derive(Clone, Debug)]
pub struct SettlementInputs {
    /// The state diff's bytes, as published on L1.
    pub diff_bytes: Vec<u8>,
    pub state_diff: state::diff::StateDiff,
    pub settled: state::settlement::OpsSettlement,
    /// The L1 senders of the deposits the batch consumed, from the watcher's live records.
    pub depositors: std::collections::BTreeMap<u64, state::tx::L1Address>,
    /// `H_first` and `H_next` of the priority queue (SPEC 15.2).
    pub queue_before: state::settlement::Hash32,
    pub queue_after: state::settlement::Hash32,
}

/// The batch timestamp every transaction's `valid_until` is checked against in the proof: the
/// time of the batch's first block. Block times never decrease and every transaction was valid
/// at its own block's time, so none is expired at this time.
pub fn batch_timestamp(first_block_time: u64) -> Timestamp {
    Timestamp::new(first_block_time).unwrap_or(Timestamp::MAX)
}

#[derive(Clone, Debug)]
pub struct JobStore {
    store: Store,
}

impl JobStore {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<JobStore> {
        let store = Store::connect_and_migrate(url, max_connections)
            .await
            .context("connecting to Postgres and applying migrations")?;
        Ok(JobStore { store })
    }

    pub fn new(store: Store) -> JobStore {
        JobStore { store }
    }

    pub fn from_pool(pool: PgPool) -> JobStore {
        JobStore::new(Store::from_pool(pool))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn pool(&self) -> &PgPool {
        self.store.pool()
    }

    // ---- chain and batches -------------------------------------------------------------

    /// The domain and operator key the node stored at genesis (`chain_meta`).
    pub async fn chain(&self) -> anyhow::Result<(Domain, PublicKey)> {
        let meta = self.store.meta();
        let get = |k: &'static str| {
            let meta = &meta;
            async move {
                meta.get(k).await?.with_context(|| {
                    format!("chain_meta has no {k}: has the node run on this database?")
                })
            }
        };
        let chain_id: u64 = get("chain_id").await?.parse().context("chain_id")?;
        let addr = get("rollup_address").await?;
        let bytes = hex::decode(addr.trim_start_matches("0x")).context("rollup_address")?;
        let rollup: [u8; 20] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("rollup_address is not 20 bytes"))?;
        let operator = PublicKey::from_hex(&get("operator_public_key").await?)
            .map_err(|e| anyhow::anyhow!("operator_public_key: {e}"))?;
        Ok((Domain { chain_id, rollup }, operator))
    }

    pub async fn batch(&self, number: u64) -> anyhow::Result<Option<BatchRow>> {
        Ok(self.store.batches().get(number).await?)
    }

    /// The lowest-numbered batch that is neither proven nor being proven (`sealed` or
    /// `rejected`), if any.
    pub async fn next_unplanned_batch(&self) -> anyhow::Result<Option<BatchRow>> {
        Ok(self
            .store
            .batches()
            .first_with_status(&[BatchStatus::Sealed, BatchStatus::Rejected])
            .await?)
    }

    pub async fn block_time(&self, block: u64) -> anyhow::Result<u64> {
        let b = self.store.log().get_block(block).await?;
        Ok(b.with_context(|| format!("block {block} is not sealed"))?
            .block_time)
    }

    /// What batch `b` settles on L1, from the node's records and the watcher's: its state diff,
    /// its ops settled ([`state::settlement::settle_ops`] with the watcher's depositors) and
    /// the queue hashes around the priority ops it consumed. The planner builds the diff,
    /// priority and payout chunks from it; [`JobStore::settlement_statement`] the statement.
    pub async fn settlement_inputs(&self, b: &BatchRow) -> anyhow::Result<SettlementInputs> {
        use state::settlement::settle_ops;
        let witness = self.witness(b).await?;
        let diff = witness.l1_pubdata.as_deref().with_context(|| {
            format!(
                "batch {}: no state diff (sealed before migration 0005)",
                b.number
            )
        })?;
        let state_diff = state::diff::StateDiff::decode(diff)
            .map_err(|e| anyhow::anyhow!("batch {}: stored state diff: {e:?}", b.number))?;
        let ops = state::pubdata::decode_ops(&witness.pubdata)
            .map_err(|e| anyhow::anyhow!("batch {}: stored ops do not decode: {e:?}", b.number))?;
        let depositors = self
            .depositors(b.first_deposit_seq, b.next_deposit_seq)
            .await?;
        let settled = settle_ops(&ops, b.first_deposit_seq, |seq| {
            depositors.get(&seq).copied()
        })
        .map_err(|e| anyhow::anyhow!("batch {}: {e}", b.number))?;
        anyhow::ensure!(
            settled.next_priority_op == b.next_deposit_seq,
            "batch {}: its ops consume priority ops up to {}, the batch row says {}",
            b.number,
            settled.next_priority_op,
            b.next_deposit_seq
        );
        Ok(SettlementInputs {
            diff_bytes: diff.to_vec(),
            state_diff,
            settled,
            depositors,
            queue_before: self.queue_hash(b.first_deposit_seq).await?,
            queue_after: self.queue_hash(b.next_deposit_seq).await?,
        })
    }

    /// The L1 statement of batch `b` (SPEC 15.3), from the node's records and the watcher's:
    /// what the contract computes when the batch is committed, so what the batch's settlement
    /// proof (SPEC 13.11) must prove. The payouts come from the batch's stored ops
    /// ([`state::settlement::settle_ops`]) with the watcher's depositors, the queue hashes
    /// from the watcher's live priority ops (`H_serial` of SPEC 15.2, `H_0` = zero bytes).
    pub async fn settlement_statement(
        &self,
        b: &BatchRow,
    ) -> anyhow::Result<state::settlement::BatchStatement> {
        use state::settlement::{diff_hash, BatchStatement, PayoutTree};
        let (domain, _) = self.chain().await?;
        let timestamp = batch_timestamp(self.block_time(b.first_block).await?);
        let inputs = self.settlement_inputs(b).await?;
        Ok(BatchStatement {
            chain_id: domain.chain_id,
            rollup: state::tx::L1Address(domain.rollup),
            batch_number: b.number,
            old_root: b.old_root.to_bytes(),
            new_root: b.new_root.to_bytes(),
            diff_hash: diff_hash(&inputs.diff_bytes),
            payout_root: PayoutTree::new(b.number, &inputs.settled.payouts).root(),
            first_priority_op: b.first_deposit_seq,
            next_priority_op: b.next_deposit_seq,
            priority_hash_before: inputs.queue_before,
            priority_hash_after: inputs.queue_after,
            timestamp: timestamp.get(),
        })
    }

    /// The batch's stored ops and state diff (`batch_witness`).
    async fn witness(
        &self,
        b: &BatchRow,
    ) -> anyhow::Result<rollup_storage::batches::BatchWitnessRow> {
        self.store
            .batches()
            .witness(b.number)
            .await?
            .with_context(|| format!("batch {}: no witness", b.number))
    }

    /// `H_serial` (SPEC 15.2): the queue hash after the first `serial` priority ops, as the
    /// watcher recorded it (zero bytes for `serial = 0`).
    pub async fn queue_hash(&self, serial: u64) -> anyhow::Result<[u8; 32]> {
        let Some(last) = serial.checked_sub(1) else {
            return Ok([0; 32]);
        };
        let row = self
            .store
            .l1()
            .live_op(last)
            .await?
            .with_context(|| format!("priority op {last} is unknown to the L1 watcher"))?;
        Ok(row.op.priority_hash)
    }

    /// The L1 senders of the deposits with serials in `[first, next)`, from the watcher's live
    /// records (a deposit the watcher does not know has no entry: proving it fails).
    pub async fn depositors(
        &self,
        first: u64,
        next: u64,
    ) -> anyhow::Result<std::collections::BTreeMap<u64, state::tx::L1Address>> {
        let mut out = std::collections::BTreeMap::new();
        for serial in first..next {
            if let Some(row) = self.store.l1().live_op(serial).await? {
                out.insert(serial, row.op.depositor);
            }
        }
        Ok(out)
    }

    /// Streams the transaction log with `seq` in `[from, to]`, in order, decoded.
    pub async fn for_each_tx(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, Transaction, BlockContext) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        self.store
            .jobs()
            .for_each_tx_between(from, to, |row| -> anyhow::Result<()> {
                let tx = Transaction::decode(&row.raw).map_err(|e| {
                    anyhow::anyhow!("undecodable transaction seq {}: {e:?}", row.seq)
                })?;
                f(row.seq, tx, row.context())
            })
            .await
    }

    /// Creates every job of a batch and marks it `proving`, atomically. `inputs` are the
    /// serialized chunk witnesses of its four trees (one power-of-two count). Returns false if
    /// the batch was not `sealed` any more (someone else planned it).
    pub async fn plan_batch(&self, batch: u64, inputs: &TreeInputs) -> anyhow::Result<bool> {
        Ok(self.store.jobs().plan_batch(batch, inputs).await?)
    }

    /// Marks a `sealed` batch the native rules reject; it will not be proven.
    pub async fn reject_batch(&self, batch: u64, reason: &str) -> anyhow::Result<()> {
        self.store
            .batches()
            .transition(
                batch,
                BatchStatus::Sealed,
                BatchStatus::Rejected,
                Some(reason),
            )
            .await?;
        Ok(())
    }

    // ---- claiming and completing ----------------------------------------------------------

    /// Claims up to `limit` queued jobs of the given kinds (see
    /// `rollup_storage::prover_jobs::JobsDal::claim` for the order).
    pub async fn claim(
        &self,
        worker: &str,
        kinds: &[JobKind],
        limit: usize,
    ) -> anyhow::Result<Vec<ClaimedJob>> {
        Ok(self.store.jobs().claim(worker, kinds, limit).await?)
    }

    /// The proofs a merge or final job consumes, in order (left, right / root).
    pub async fn child_proofs(&self, job: &ClaimedJob) -> anyhow::Result<Vec<Vec<u8>>> {
        Ok(self.store.jobs().child_proofs(job).await?)
    }

    /// Records a leaf or merge proof with what it states and queues the parent when its
    /// inputs are complete. Returns false (and changes nothing) if the job is no longer ours.
    pub async fn complete(
        &self,
        job: &ClaimedJob,
        worker: &str,
        proof: &[u8],
        statement: &serde_json::Value,
        prove_ms: u64,
    ) -> anyhow::Result<bool> {
        Ok(self
            .store
            .jobs()
            .complete(job, worker, proof, statement, prove_ms)
            .await?)
    }

    /// Records the final proof (already verified by the caller) and marks the batch proven.
    pub async fn complete_final(
        &self,
        job: &ClaimedJob,
        worker: &str,
        batch_proof: &[u8],
        statement: &state::settlement::BatchStatement,
        prove_ms: u64,
    ) -> anyhow::Result<bool> {
        Ok(self
            .store
            .jobs()
            .complete_final(
                job,
                worker,
                batch_proof,
                statement,
                &statement.hash(),
                prove_ms,
            )
            .await?)
    }

    /// Gives a job back: re-queued while attempts remain, else `failed`. Fenced.
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        worker: &str,
        error: &str,
        max_attempts: i32,
    ) -> anyhow::Result<bool> {
        Ok(self
            .store
            .jobs()
            .fail(job, worker, error, max_attempts)
            .await?)
    }

    /// Refreshes the heartbeat of jobs this worker still holds; returns how many it holds.
    pub async fn heartbeat(&self, jobs: &[(i64, i32)], worker: &str) -> anyhow::Result<u64> {
        Ok(self.store.jobs().heartbeat(jobs, worker).await?)
    }

    /// Re-queues running jobs whose heartbeat is older than `stale_after` (or fails them once
    /// they used `max_attempts`). Returns the ids re-queued or failed.
    pub async fn reap(
        &self,
        stale_after: std::time::Duration,
        max_attempts: i32,
    ) -> anyhow::Result<Vec<i64>> {
        Ok(self.store.jobs().reap(stale_after, max_attempts).await?)
    }

    /// Queues every waiting job whose inputs are all done (a safety net for the promotion done
    /// on completion).
    pub async fn promote_ready(&self) -> anyhow::Result<u64> {
        Ok(self.store.jobs().promote_ready().await?)
    }

    pub async fn stats(&self) -> anyhow::Result<QueueStats> {
        Ok(self.store.jobs().stats().await?)
    }

    /// The stored final proof of a batch.
    pub async fn batch_proof(&self, batch: u64) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.store.jobs().batch_proof(batch).await?)
    }
}
