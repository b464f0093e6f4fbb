//! The batch planner: turns sealed batches into proving jobs, one batch at a time, in order.
//!
//! Exactly one planner runs across the fleet: every worker tries to take a Postgres session
//! advisory lock on a dedicated connection, and the one that gets it plans until it stops (the
//! lock is released with its connection, so another worker takes over after a crash).
//!
//! The planner keeps the rollup state in memory at the end of the last batch it planned. It
//! rebuilds it when needed by replaying the transaction log with the rules of `state`, the same
//! way the node recovers (`sequencer/src/recovery.rs`: signatures were checked before the rows
//! were written and are not checked again). For each sealed batch in order it loads the batch's
//! transactions with their block times, builds the chunks of the diff, priority and payout
//! trees from what the batch settles on L1 ([`chunks`]), asks the leaf stage for the leaf
//! witnesses (which re-applies the rules and advances the state, and builds the split-credit
//! chain of a batch with splits as it goes), pads all the trees to the same power of two of
//! leaves, and inserts every job, setting the batch to `proving`, in one transaction. A batch
//! the rules reject is marked `rejected` with the reason and logged; later batches build on a
//! state the rules cannot reach, so planning stops there until an operator intervenes.

use anyhow::Context;
use rollup_storage::prover_jobs::PlannerLock;
use rollup_storage::BatchStatus;
use state::apply::{BlockContext, State, VerifiedTx};
use state::tx::Transaction;

use crate::circuits::leaf::{LeafCircuit, LeafPlanError};
use crate::circuits::split::{SplitChainBuilder, LANE_PAYEES};
use crate::circuits::trees::ChunkShape;
use crate::jobs::{batch_timestamp, JobStore, TreeInputs};

pub mod chunks;

/// Advisory lock key of the planner ("rollup-p").
pub use rollup_storage::prover_jobs::PLANNER_LOCK;

/// What one planning pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanReport {
    pub planned: Vec<u64>,
    pub rejected: Vec<u64>,
    /// Batch number planning is stuck behind (a rejected batch), if any.
    pub blocked_at: Option<u64>,
}

pub struct Planner {
    url: String,
    lock: Option<PlannerLock>,
    /// The state after the batch `.0` (0 = genesis).
    state: Option<(u64, State)>,
    warned_blocked: Option<u64>,
}

impl Planner {
    pub fn new(database_url: &str) -> Planner {
        Planner {
            url: database_url.to_string(),
            lock: None,
            state: None,
            warned_blocked: None,
        }
    }

    /// Whether this process holds the planner lock.
    pub fn is_leader(&self) -> bool {
        self.lock.is_some()
    }

    async fn take_lock(&mut self) -> anyhow::Result<bool> {
        if let Some(lock) = self.lock.as_mut() {
            if lock.is_alive().await {
                return Ok(true);
            }
            tracing::warn!("planner lock connection lost");
            self.lock = None;
            self.state = None;
        }
        self.lock = PlannerLock::try_take(&self.url).await?;
        if self.lock.is_some() {
            tracing::info!("this worker is the batch planner");
        }
        Ok(self.lock.is_some())
    }

    /// Plans every sealed batch that can be planned now (if this process is the planner),
    /// into leaves of `leaf` and chunks of `shape` (the registry's: [`Circuits::shape`]).
    ///
    /// [`Circuits::shape`]: crate::circuits::registry::Circuits::shape
    pub async fn tick<L: LeafCircuit>(
        &mut self,
        jobs: &JobStore,
        leaf: &L,
        shape: ChunkShape,
    ) -> anyhow::Result<PlanReport> {
        let mut report = PlanReport::default();
        if !self.take_lock().await? {
            return Ok(report);
        }
        loop {
            let Some(batch) = jobs.next_unplanned_batch().await? else {
                return Ok(report);
            };
            if batch.status == BatchStatus::Rejected {
                if self.warned_blocked != Some(batch.number) {
                    tracing::error!(
                        batch = batch.number,
                        "planning is blocked behind a batch the rules reject"
                    );
                    self.warned_blocked = Some(batch.number);
                }
                report.blocked_at = Some(batch.number);
                return Ok(report);
            }
            let started = std::time::Instant::now();
            let mut state = match self.state.take() {
                Some((n, s)) if n + 1 == batch.number => s,
                _ => replay(jobs, batch.first_seq).await?,
            };
            let mut txs: Vec<(Transaction, BlockContext)> =
                Vec::with_capacity(batch.tx_count as usize);
            if batch.last_seq >= batch.first_seq {
                jobs.for_each_tx(batch.first_seq, batch.last_seq, |_, tx, ctx| {
                    txs.push((tx, ctx));
                    Ok(())
                })
                .await?;
            }
            anyhow::ensure!(
                txs.len() as u64 == batch.last_seq + 1 - batch.first_seq,
                "batch {}: the log has {} of its {} transactions",
                batch.number,
                txs.len(),
                batch.last_seq + 1 - batch.first_seq
            );
            let ts = batch_timestamp(jobs.block_time(batch.first_block).await?);
            let settles = jobs.settlement_inputs(&batch).await?;
            let lookup = |seq: u64| settles.depositors.get(&seq).copied();
            let before = chunks::Before::of(&state, chunks::diff_kind(&settles.state_diff));
            let chain_chunks = |min: usize| {
                chunks::chain_chunks(
                    shape,
                    batch.number,
                    &before,
                    batch.first_deposit_seq,
                    &settles,
                    min,
                )
                .with_context(|| format!("batch {}", batch.number))
            };
            // At least as many chunks as the leaves, the split-credit chain and the tick-walk
            // tree need (their lanes are counted from the transactions alone), so that the
            // leaves are padded to the chunks' count and the chunks (the diff's cost
            // O(accounts)) are built once; again only if a leaf stage ever made more leaves
            // than `leaf_count` says.
            let split_lanes = chunks::split_lanes(&state, &txs);
            let walk_lanes = chunks::walk_lanes(&txs);
            let leaves = crate::witness::leaf_count(txs.len(), leaf.leaf_size(), 1)
                .max(split_lanes.div_ceil(shape.split_lanes))
                .max(walk_lanes.div_ceil(shape.walk_lanes));
            let mut chains = tokio::task::block_in_place(|| chain_chunks(leaves))?;
            let mut split_chain = SplitChainBuilder::new(LANE_PAYEES);
            let witnesses = tokio::task::block_in_place(|| {
                leaf.witnesses(
                    &mut state,
                    &txs,
                    ts,
                    &lookup,
                    chains.len(),
                    &mut split_chain,
                )
            });
            match witnesses {
                Ok(ws) => {
                    if ws.len() > chains.len() {
                        chains = tokio::task::block_in_place(|| chain_chunks(ws.len()))?;
                    }
                    // Every `v4-shares` final verifies the chain: a batch of that diff kind
                    // without a split-credit record (a policy change) proves an empty one.
                    let splits = (split_lanes > 0
                        || chains.diff_kind == rollup_storage::DiffCircuitKind::V4Shares)
                        .then(|| chunks::split_chunks(split_chain, shape, ws.len()))
                        .transpose()
                        .with_context(|| format!("batch {}", batch.number))?;
                    let records = leaf.walk_records(&ws);
                    let walks = (!records.is_empty())
                        .then(|| chunks::walk_chunks(&records, shape, ws.len()))
                        .transpose()
                        .with_context(|| format!("batch {}", batch.number))?;
                    anyhow::ensure!(
                        state.root() == batch.new_root,
                        "batch {}: re-execution ends at root {}, the batch says {}",
                        batch.number,
                        state.root(),
                        batch.new_root
                    );
                    let range = ws
                        .iter()
                        .map(serde_json::to_vec)
                        .collect::<Result<Vec<_>, _>>()
                        .context("serializing leaf witnesses")?;
                    let inputs = TreeInputs {
                        range,
                        diff: chains.diff,
                        diff_kind: chains.diff_kind,
                        priority: chains.priority,
                        payout: chains.payout,
                        splits,
                        walks,
                    };
                    if jobs.plan_batch(batch.number, &inputs).await? {
                        tracing::info!(
                            batch = batch.number,
                            txs = txs.len(),
                            leaves = inputs.range.len(),
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "batch planned"
                        );
                        metrics::counter!("prover_batches_planned_total").increment(1);
                        report.planned.push(batch.number);
                        self.state = Some((batch.number, state));
                    }
                }
                Err(LeafPlanError::Rejected(reason)) => {
                    tracing::error!(batch = batch.number, %reason, "the rules reject the batch; it will not be proven");
                    metrics::counter!("prover_batches_rejected_total").increment(1);
                    jobs.reject_batch(batch.number, &reason).await?;
                    report.rejected.push(batch.number);
                    self.state = None;
                }
                Err(LeafPlanError::Other(e)) => {
                    self.state = None;
                    return Err(e.context(format!("witnesses of batch {}", batch.number)));
                }
            }
        }
    }
}

/// The state after every transaction with `seq < before_seq`, replayed from the log.
pub async fn replay(jobs: &JobStore, before_seq: u64) -> anyhow::Result<State> {
    let started = std::time::Instant::now();
    let (domain, operator) = jobs.chain().await?;
    let mut state = State::genesis(domain, operator);
    if before_seq <= 1 {
        return Ok(state);
    }
    let mut expected = 1;
    let n = jobs
        .for_each_tx(1, before_seq - 1, |seq, tx, ctx| {
            anyhow::ensure!(
                seq == expected,
                "transaction log has a gap at seq {expected}"
            );
            expected += 1;
            let verified = VerifiedTx::from_durable_log(tx, &domain, |i| state.key_of(i))
                .map_err(|r| anyhow::anyhow!("seq {seq}: {r}"))?;
            state
                .apply_verified(verified, &ctx)
                .map_err(|r| anyhow::anyhow!("replay of seq {seq} rejected: {r}"))?;
            Ok(())
        })
        .await?;
    tracing::info!(
        txs = n,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "planner state replayed from the log"
    );
    Ok(state)
}
