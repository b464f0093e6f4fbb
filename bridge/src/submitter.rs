//! The batch submitter (SPEC 16.3): commits proven batches to L1 in order, finalizes them with
//! the stage 0 attestation, and follows both transactions until they are past the confirmation
//! depth: a batch becomes `committed` (and `finalized`) in the database only then, so what the
//! database and the feed say is never undone by a reorg within the depth. A transaction whose
//! receipt disappears before the depth (reorged out) is broadcast again, the very same bytes;
//! one that moved to another block is tracked there.
//!
//! Never twice, also across restarts: before a transaction is broadcast, its signed bytes, nonce
//! and hash are written to `l1_submissions`; at start (and every step) pending rows are resolved
//! first (receipt found: apply it; not found: re-broadcast the same bytes, or after
//! `resend_after` a replacement with the same nonce and a bumped gas price, so at most one of
//! them can ever be mined). A new commit is only built for `lastCommittedBatch + 1` as read from
//! the contract, which itself rejects any other number.
//!
//! After `Rollup.revertBatches` the watcher puts the reverted batches back to `proven`
//! (`rollup_storage::l1::revert_batches`); the contract's `lastCommittedBatch` went back too, so
//! the next steps commit the same batches again. A commit reaching the depth after the revert
//! superseded it is not applied (`lock_mined`).

use std::time::Duration;

use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_sol_types::{SolCall, SolEvent, SolValue};
use rollup_storage::batches::transition;
use rollup_storage::l1::{self as l1db, L1Payout, NewL1Batch, NewSubmission, SubmissionRow};
use rollup_storage::{
    feed, BatchStatus, EventFinality, EventKind, StorageError, Store, SubmissionKind,
    SubmissionStatus,
};
use serde_json::json;
use sqlx::postgres::PgPool;
use state::diff::StateDiff;
use state::tx::L1Address;

use crate::contracts::Rollup::{self, BatchHeader, BatchStatement};
use crate::hashes::{encode_payouts, statement_hash, statement_struct, NativeStatement, Payout};
use crate::rpc::{Receipt, Rpc, RpcError};
use crate::settle::settle;
pub use crate::settle::ProvenBatch;
use crate::signer::{L1Signer, LegacyTx, SignerError};

/// Checks a batch proof before the batch is committed and reports what it binds. The real
/// verifier is `rollup_prover::verify::verify_batch_proof` against the statement rebuilt from the
/// node's rows (plug it in where the node builds the submitter; the bridge does not depend on
/// the prover crate). Everything the submitter sends is derived from the returned
/// [`ProvenBatch`] (see [`crate::settle`]).
pub trait ProofVerifier: Send + Sync {
    fn verify(&self, batch_number: u64, proof: &[u8]) -> Result<ProvenBatch, String>;
}

impl<F> ProofVerifier for F
where
    F: Fn(u64, &[u8]) -> Result<ProvenBatch, String> + Send + Sync,
{
    fn verify(&self, batch_number: u64, proof: &[u8]) -> Result<ProvenBatch, String> {
        self(batch_number, proof)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error("batch {0}: {1}")]
    Batch(u64, String),
    #[error("decoding: {0}")]
    Abi(#[from] alloy_sol_types::Error),
}

#[derive(Clone, Debug)]
pub struct SubmitterConfig {
    pub rollup: Address,
    pub chain_id: u64,
    /// Depth after which a finalization counts as final (`finalized`).
    pub confirmations: u64,
    /// A broadcast transaction not mined after this long is replaced with a higher gas price.
    pub resend_after: Duration,
    /// Gas price bump per replacement, in percent (at least 10 for most nodes' mempools).
    pub gas_bump_percent: u64,
    pub poll_interval: Duration,
}

/// What [`Submitter::prepare_commit`] derived for one batch.
#[derive(Clone, Debug)]
pub struct PreparedCommit {
    /// `commitBatch`'s first argument.
    pub header: BatchHeader,
    /// The statement the contract computes at commit (the attester signs it at finalize).
    pub statement: NativeStatement,
    /// The state diff (SPEC 10.4), `commitBatch`'s calldata.
    pub pubdata: Vec<u8>,
    pub payouts: Vec<Payout>,
}

pub struct Submitter {
    pub rpc: Rpc,
    pub pool: PgPool,
    pub signer: L1Signer,
    /// The stage 0 attester's key (`AttestationVerifier`, SPEC 15.4): signs the statement of a
    /// batch whose proof verified. Not the operator's key (the node refuses to start with one
    /// key for both).
    pub attester: L1Signer,
    pub verifier: Box<dyn ProofVerifier>,
    pub cfg: SubmitterConfig,
}

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Idle,
    /// A transaction is in flight (waiting for its receipt).
    Waiting,
    Sent {
        batch: u64,
        kind: SubmissionKind,
        nonce: u64,
        tx: B256,
    },
    Resent {
        batch: u64,
        kind: SubmissionKind,
        nonce: u64,
        tx: B256,
    },
    Mined {
        batch: u64,
        kind: SubmissionKind,
        tx: B256,
    },
    /// A commit is past the confirmation depth: the batch is `committed`.
    Committed {
        batch: u64,
    },
    Finalized {
        batch: u64,
    },
    /// A mined transaction's receipt disappeared before the depth (a reorg): it is pending
    /// again and will be broadcast again.
    Reorged {
        batch: u64,
        kind: SubmissionKind,
        tx: B256,
    },
}

/// What to do with an in-flight submission, from what L1 said about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingAction {
    /// The attempt at this index has a receipt: apply it.
    Mined(usize),
    /// The nonce was consumed by a transaction we did not record: give the row up.
    NonceUsedElsewhere,
    /// Recorded but never broadcast (crash in between): broadcast the very same bytes.
    Broadcast,
    /// Stuck for `resend_after`: replace it (same nonce, more gas).
    Replace,
    /// Still in flight: re-broadcast (harmless) in case the node forgot it.
    Rebroadcast,
}

/// The decision for an in-flight submission with nonce `nonce`.
///
/// `latest_nonce` must be read from L1 *before* `has_receipt` (one entry per recorded attempt
/// with this nonce). Then "nonce passed and no receipt" means the nonce was used by a
/// transaction that is none of ours: had one of ours been mined, it was mined before the nonce
/// read, so its receipt was there when the receipts were read. Read the other way round, an
/// attempt mined between the two reads looks replaced, is given up, and its batch never
/// reaches `committed`.
pub fn decide_pending(
    latest_nonce: u64,
    nonce: u64,
    has_receipt: &[bool],
    broadcast_yet: bool,
    stuck: bool,
) -> PendingAction {
    if let Some(i) = has_receipt.iter().position(|r| *r) {
        PendingAction::Mined(i)
    } else if latest_nonce > nonce {
        PendingAction::NonceUsedElsewhere
    } else if !broadcast_yet {
        PendingAction::Broadcast
    } else if stuck {
        PendingAction::Replace
    } else {
        PendingAction::Rebroadcast
    }
}

/// The depth rule (as the watcher's): a transaction in block `block` is past the depth when
/// `head - block >= confirmations`.
fn past_depth(head: u64, block: u64, confirmations: u64) -> bool {
    head >= block && head - block >= confirmations
}

/// A transaction to sign and send.
struct Outgoing {
    batch: u64,
    kind: SubmissionKind,
    data: Bytes,
    nonce: u64,
    gas_price: u128,
    attempts: i32,
    /// `None`: estimate.
    gas_limit: Option<u64>,
}

/// Attempts per batch and kind that may be mined and revert before the submitter stops trying
/// (an operator looks at the `failed` rows).
const MAX_FAILED_ATTEMPTS: u64 = 5;

impl Submitter {
    /// The storage layer over this submitter's pool (a pool handle is a shared reference).
    fn store(&self) -> Store {
        Store::from_pool(self.pool.clone())
    }

    async fn view<C: SolCall>(&self, call: C) -> Result<C::Return, SubmitError> {
        let out = self
            .rpc
            .call(self.cfg.rollup, Bytes::from(call.abi_encode()))
            .await?;
        Ok(C::abi_decode_returns(&out)?)
    }

    pub async fn last_committed(&self) -> Result<u64, SubmitError> {
        self.view(Rollup::lastCommittedBatchCall {}).await
    }

    pub async fn last_finalized(&self) -> Result<u64, SubmitError> {
        self.view(Rollup::lastFinalizedBatchCall {}).await
    }

    /// Everything a commit of proven batch `batch` needs, derived from what its proof binds and
    /// checked against L1 (SPEC 16.3): the header, the statement the contract will compute, the
    /// state diff and the payouts. Refuses (with the reason) anything that does not match.
    pub async fn prepare_commit(&self, batch: u64) -> Result<PreparedCommit, SubmitError> {
        let err = |m: String| SubmitError::Batch(batch, m);
        let store = self.store();
        let witness = store
            .batches()
            .witness(batch)
            .await?
            .ok_or_else(|| err("no witness for the batch".into()))?;
        let proof = store
            .l1()
            .final_proof(batch)
            .await?
            .ok_or_else(|| err("proven but no final proof in batch_proofs".into()))?;
        let proven = self
            .verifier
            .verify(batch, &proof)
            .map_err(|e| err(format!("proof does not verify: {e}")))?;

        // The statement must be this deployment's and this batch's.
        if proven.chain_id != self.cfg.chain_id
            || proven.rollup.0 != self.cfg.rollup.into_array()
            || proven.batch_number != batch
        {
            return Err(err(format!(
                "the proof is for chain {} rollup {} batch {}, not this deployment's batch",
                proven.chain_id, proven.rollup, proven.batch_number
            )));
        }

        // The state diff, not the per-transaction ops: those stay off L1 (SPEC 15.7). The
        // settlement proof binds its hash to the old and new roots (SPEC 13.7).
        let pubdata: Vec<u8> = witness.l1_pubdata.ok_or_else(|| {
            err(
                "no state diff (sealed before migration 0005_state_diff): cannot be committed"
                    .into(),
            )
        })?;
        StateDiff::decode(&pubdata)
            .map_err(|e| err(format!("the stored state diff does not decode: {e}")))?;

        // Payouts and consumed priority ops from the stored ops, checked against the proven
        // payout root and queue hashes (settle.rs); the depositors from the watcher.
        let mut depositors = std::collections::BTreeMap::new();
        for seq in proven.first_priority_op..proven.next_priority_op {
            if let Some(op) = store.l1().live_op(seq).await? {
                depositors.insert(seq, op.op.depositor);
            }
        }
        let settlement = settle(&proven, &witness.pubdata, &pubdata, |seq| {
            depositors.get(&seq).copied()
        })
        .map_err(|e| err(format!("refusing to commit: {e}")))?;

        // What the contract takes from its own storage must be what the proof started from:
        // otherwise the commit would succeed and the batch could never be finalized.
        let committed_root = self.view(Rollup::committedRootCall {}).await?;
        if committed_root.0 != proven.old_root {
            return Err(err(format!(
                "the proof starts from root 0x{}, L1's committed root is {committed_root}",
                hex::encode(proven.old_root)
            )));
        }
        let first = self.view(Rollup::nextPriorityOpCommittedCall {}).await?;
        if first != proven.first_priority_op {
            return Err(err(format!(
                "the proof consumes priority ops from {}, L1 expects {first}",
                proven.first_priority_op
            )));
        }
        let before = self
            .view(Rollup::priorityHashAfterCall(U256::from(first)))
            .await?;
        let after = self
            .view(Rollup::priorityHashAfterCall(U256::from(
                proven.next_priority_op,
            )))
            .await?;
        if before.0 != proven.priority_hash_before || after.0 != proven.priority_hash_after {
            return Err(err(format!(
                "the proof chains the queue from 0x{} to 0x{}, L1's queue hashes are {before} \
                 and {after}: the watcher's records of serials {first}..{} differ from L1",
                hex::encode(proven.priority_hash_before),
                hex::encode(proven.priority_hash_after),
                proven.next_priority_op
            )));
        }
        let lower = self.view(Rollup::lastCommittedTimestampCall {}).await?;
        if proven.timestamp < lower {
            return Err(err(format!(
                "batch timestamp {} is before the previous batch's ({lower})",
                proven.timestamp
            )));
        }

        // `settle` checked that these payouts build the proven payout root.
        let payouts: Vec<Payout> = settlement.payouts.into_iter().map(Payout::from).collect();
        let statement: NativeStatement = proven;
        let header = BatchHeader {
            batchNumber: batch,
            newRoot: B256::from(proven.new_root),
            payoutRoot: B256::from(proven.payout_root),
            nextPriorityOp: proven.next_priority_op,
            timestamp: proven.timestamp,
        };
        Ok(PreparedCommit {
            header,
            statement,
            pubdata,
            payouts,
        })
    }

    /// Signs a call to the rollup, records it, then broadcasts it.
    async fn submit(&self, o: Outgoing) -> Result<B256, SubmitError> {
        let Outgoing {
            batch,
            kind,
            data,
            nonce,
            gas_price,
            attempts,
            gas_limit,
        } = o;
        // A replacement keeps the original's gas limit: estimating again could run against a
        // pending state that already includes the original (and revert).
        let gas = match gas_limit {
            Some(g) => g,
            None => {
                let g = self
                    .rpc
                    .estimate_gas(self.signer.address(), self.cfg.rollup, &data)
                    .await?;
                g + g / 4 + 10_000
            }
        };
        let tx = LegacyTx {
            chain_id: self.cfg.chain_id,
            nonce,
            gas_price,
            gas,
            to: self.cfg.rollup,
            value: U256::ZERO,
            data,
        };
        let (raw, hash) = self.signer.sign_legacy(&tx)?;
        let id = self
            .store()
            .l1()
            .insert_submission(&NewSubmission {
                batch_number: batch,
                kind,
                nonce,
                l1_tx_hash: hash.0,
                gas_price,
                raw_tx: &raw,
                attempts,
            })
            .await?;
        self.broadcast(id, &raw).await?;
        metrics::counter!("bridge_l1_txs_sent_total", "kind" => kind.as_str()).increment(1);
        Ok(hash)
    }

    async fn broadcast(&self, id: i64, raw: &[u8]) -> Result<(), SubmitError> {
        match self.rpc.send_raw(raw).await {
            Ok(_) => {}
            // Already in the mempool (a re-broadcast after a restart): fine.
            Err(RpcError::Node { message, .. })
                if message.contains("already") || message.contains("known") => {}
            Err(e) => return Err(e.into()),
        }
        self.store().l1().mark_sent(id).await?;
        Ok(())
    }

    /// Records a submission's first receipt. The batch status and the feed wait until the
    /// transaction is past the depth ([`Submitter::follow`]); until then a reorg can still take
    /// it away.
    async fn on_mined(&self, p: &SubmissionRow, receipt: &Receipt) -> Result<(), SubmitError> {
        let block = receipt.block_number.to::<u64>();
        let tx = B256::from(p.l1_tx_hash);
        let mut db = self.pool.begin().await?;
        let ok = receipt.status == U256::from(1);
        // Every other row with this nonce lost the race (recorded in the same transaction).
        l1db::record_receipt(&mut db, p.id, p.nonce, ok, block, Some("reverted")).await?;
        if ok {
            l1db::set_l1_tx(&mut db, p.batch_number, p.kind, p.l1_tx_hash, block).await?;
            tracing::info!(
                batch = p.batch_number,
                kind = %p.kind,
                %tx,
                block,
                confirmations = self.cfg.confirmations,
                "L1 transaction mined; following it until past the depth"
            );
        } else {
            tracing::error!(batch = p.batch_number, kind = %p.kind, %tx, "L1 transaction reverted");
        }
        db.commit().await?;
        Ok(())
    }

    /// A commit past the depth: the batch is `committed`, with its feed event, once.
    async fn on_commit_deep(
        &self,
        id: i64,
        batch: u64,
        tx: B256,
        receipt: &Receipt,
    ) -> Result<(), SubmitError> {
        let block = receipt.block_number.to::<u64>();
        let committed = receipt
            .logs
            .iter()
            .filter(|l| l.address == self.cfg.rollup)
            .find_map(|l| {
                Rollup::BatchCommitted::decode_raw_log(l.topics.iter().copied(), &l.data).ok()
            })
            .ok_or_else(|| SubmitError::Batch(batch, "no BatchCommitted log".into()))?;
        let mut db = self.pool.begin().await?;
        if !l1db::lock_mined(&mut db, id).await? {
            // The watcher followed an L1 revert of this batch in the meantime (the row is
            // `superseded`): the commit no longer stands, nothing to record.
            return Ok(());
        }
        l1db::set_l1_tx(&mut db, batch, SubmissionKind::Commit, tx.0, block).await?;
        let moved = transition(
            &mut db,
            batch,
            BatchStatus::Proven,
            BatchStatus::Committed,
            None,
        )
        .await?;
        if let Some(recorded) = self.store().l1().l1_batch(batch).await? {
            if recorded.statement != committed.statement.0 {
                // Cannot happen unless L1 state moved under the checks of prepare_commit; the
                // attester will not sign L1's statement, so this batch cannot be finalized.
                tracing::error!(
                    batch,
                    l1 = %committed.statement,
                    expected = %B256::from(recorded.statement),
                    "L1 computed another statement than the one the proof was checked against"
                );
            }
        }
        if moved {
            let s = &committed.s;
            feed::append(
                &mut db,
                EventKind::BatchCommitted,
                EventFinality::Committed,
                &json!({
                    "batch": batch,
                    "statement": committed.statement,
                    "old_root": s.oldRoot,
                    "new_root": s.newRoot,
                    "diff_hash": s.diffHash,
                    "first_priority_op": s.firstPriorityOp,
                    "next_priority_op": s.nextPriorityOp,
                    "withdrawals_root": s.payoutRoot,
                    "timestamp": s.timestamp,
                }),
                Some(tx.0),
                Some(block),
            )
            .await?;
        }
        db.commit().await?;
        metrics::gauge!("bridge_last_committed_batch").set(batch as f64);
        tracing::info!(batch, %tx, block, "batch committed on L1 (past the confirmation depth)");
        Ok(())
    }

    /// A finalization past the depth: the batch is `finalized`, its payouts claimable, once.
    async fn on_finalize_deep(&self, batch: u64, tx: B256, block: u64) -> Result<(), SubmitError> {
        let l1_batch =
            self.store().l1().l1_batch(batch).await?.ok_or_else(|| {
                SubmitError::Batch(batch, "finalized but not in l1_batches".into())
            })?;
        let mut db = self.pool.begin().await?;
        l1db::set_l1_tx(&mut db, batch, SubmissionKind::Finalize, tx.0, block).await?;
        let moved = transition(
            &mut db,
            batch,
            BatchStatus::Committed,
            BatchStatus::Finalized,
            None,
        )
        .await?;
        if moved {
            feed::append(
                &mut db,
                EventKind::BatchFinalized,
                EventFinality::Finalized,
                &json!({
                    "batch": batch,
                    "statement": B256::from(l1_batch.statement),
                    "withdrawals_root": B256::from(l1_batch.withdrawals_root),
                    "confirmations": self.cfg.confirmations,
                }),
                Some(tx.0),
                Some(block),
            )
            .await?;
            for (i, p) in l1_batch.payouts.iter().enumerate() {
                feed::append(
                    &mut db,
                    EventKind::WithdrawalClaimable,
                    EventFinality::Finalized,
                    &json!({
                        "from": p.from,
                        "to": p.to,
                        "amount": p.amount,
                        "batch": batch,
                        "index": i,
                    }),
                    Some(tx.0),
                    Some(block),
                )
                .await?;
            }
        }
        db.commit().await?;
        metrics::gauge!("bridge_last_finalized_batch").set(batch as f64);
        tracing::info!(batch, %tx, block, "batch finalized (past the confirmation depth)");
        Ok(())
    }

    /// Follows the mined commit and finalize transactions whose batch has not reached the
    /// matching status yet, lowest nonce first, until they are past the depth. Returns the
    /// first thing that changed.
    ///
    /// The receipt is asked for again at every step: the node only serves receipts of
    /// canonical transactions, so no receipt means the transaction was reorged out (it goes
    /// back to `signed` and is broadcast again, the same bytes and nonce), and a receipt in
    /// another block means it was mined again there (the depth counts from the new block).
    async fn follow(&self, head: u64) -> Result<Option<Step>, SubmitError> {
        let store = self.store();
        for m in store.l1().mined_awaiting_depth().await? {
            let s = &m.submission;
            let (id, batch, kind) = (s.id, s.batch_number, s.kind);
            let tx = B256::from(s.l1_tx_hash);
            let stored_block = s.l1_block;
            let Some(receipt) = self.rpc.receipt(tx).await? else {
                let mut db = self.pool.begin().await?;
                let changed =
                    l1db::unmine(&mut db, id, "reorged out before the confirmation depth").await?;
                l1db::clear_l1_tx(&mut db, batch, kind, tx.0).await?;
                db.commit().await?;
                if changed {
                    metrics::counter!("bridge_l1_txs_reorged_total", "kind" => kind.as_str())
                        .increment(1);
                    tracing::warn!(
                        batch,
                        kind = %kind,
                        %tx,
                        l1_block = ?stored_block,
                        "L1 transaction reorged out before the confirmation depth; sending it again"
                    );
                }
                return Ok(Some(Step::Reorged { batch, kind, tx }));
            };
            let block = receipt.block_number.to::<u64>();
            if receipt.status != U256::from(1) {
                // Mined again after a reorg, on a chain where it now reverts.
                store
                    .l1()
                    .record_receipt(id, s.nonce, false, block, Some("reverted after a reorg"))
                    .await?;
                tracing::error!(batch, kind = %kind, %tx, block, "L1 transaction reverted after a reorg");
                return Ok(Some(Step::Mined { batch, kind, tx }));
            }
            if stored_block != Some(block) {
                store.l1().move_to_block(id, block).await?;
                tracing::info!(batch, kind = %kind, %tx, from = ?stored_block, to = block, "L1 transaction moved to another block; tracking it there");
            }
            if !past_depth(head, block, self.cfg.confirmations) {
                continue;
            }
            match kind {
                SubmissionKind::Commit => {
                    self.on_commit_deep(id, batch, tx, &receipt).await?;
                    return Ok(Some(Step::Committed { batch }));
                }
                // A finalization counts once its batch's commit is past the depth too (the
                // commit is mined first, so it gets there first).
                SubmissionKind::Finalize if m.batch_status == BatchStatus::Committed => {
                    self.on_finalize_deep(batch, tx, block).await?;
                    return Ok(Some(Step::Finalized { batch }));
                }
                SubmissionKind::Finalize => {}
            }
        }
        Ok(None)
    }

    /// Resolves the in-flight submission `p`.
    async fn resolve(&self, p: SubmissionRow) -> Result<Step, SubmitError> {
        let store = self.store();
        // The nonce first, then the receipts: see `decide_pending` (the other order loses a
        // transaction mined between the two reads).
        let latest_nonce = self.rpc.nonce(self.signer.address(), "latest").await?;
        // Any row with this nonce may be the one that got mined.
        let rows = store.l1().attempts_with_nonce(p.nonce).await?;
        let mut attempts = Vec::with_capacity(rows.len());
        for r in rows {
            let receipt = self.rpc.receipt(B256::from(r.l1_tx_hash)).await?;
            attempts.push((r, receipt));
        }
        let has_receipt: Vec<bool> = attempts.iter().map(|a| a.1.is_some()).collect();
        let action = decide_pending(
            latest_nonce,
            p.nonce,
            &has_receipt,
            p.status != SubmissionStatus::Signed,
            p.age >= self.cfg.resend_after,
        );
        let (batch, kind, tx) = (p.batch_number, p.kind, B256::from(p.l1_tx_hash));
        match action {
            PendingAction::Mined(i) => {
                let Some((mined, Some(receipt))) = attempts.get(i) else {
                    return Err(SubmitError::Batch(batch, "receipt vanished".into()));
                };
                self.on_mined(mined, receipt).await?;
                Ok(Step::Mined {
                    batch: mined.batch_number,
                    kind: mined.kind,
                    tx: B256::from(mined.l1_tx_hash),
                })
            }
            PendingAction::NonceUsedElsewhere => {
                // Another process with this key used the nonce: give the row up; the
                // contract's state decides what happens next.
                store
                    .l1()
                    .mark_replaced(p.id, Some("nonce used elsewhere"))
                    .await?;
                tracing::warn!(
                    batch,
                    kind = %kind,
                    nonce = p.nonce,
                    latest_nonce,
                    "L1 nonce used by a transaction we did not send"
                );
                Ok(Step::Waiting)
            }
            PendingAction::Broadcast => {
                // Recorded but not (or no longer, after a reorg) known to the node: broadcast
                // the very same bytes.
                self.broadcast(p.id, &p.raw_tx).await?;
                Ok(Step::Resent {
                    batch,
                    kind,
                    nonce: p.nonce,
                    tx,
                })
            }
            PendingAction::Replace => {
                let bumped =
                    p.gas_price + p.gas_price * u128::from(self.cfg.gas_bump_percent) / 100 + 1;
                let price = bumped.max(self.rpc.gas_price().await?);
                let data = Bytes::from(decode_field(&p.raw_tx, 5)?);
                let gas_limit = U256::from_be_slice(&decode_field(&p.raw_tx, 2)?).to::<u64>();
                let attempts =
                    store.l1().mark_replaced(p.id, None).await?.ok_or_else(|| {
                        SubmitError::Batch(batch, "submission row vanished".into())
                    })?;
                let tx = self
                    .submit(Outgoing {
                        batch,
                        kind,
                        data,
                        nonce: p.nonce,
                        gas_price: price,
                        attempts: attempts + 1,
                        gas_limit: Some(gas_limit),
                    })
                    .await?;
                tracing::warn!(
                    batch,
                    kind = %kind,
                    nonce = p.nonce,
                    gas_price = price,
                    "replaced a stuck L1 transaction"
                );
                Ok(Step::Resent {
                    batch,
                    kind,
                    nonce: p.nonce,
                    tx,
                })
            }
            PendingAction::Rebroadcast => {
                // Still in the mempool: re-broadcast (harmless) in case the node forgot it.
                let _ = self.rpc.send_raw(&p.raw_tx).await;
                Ok(Step::Waiting)
            }
        }
    }

    async fn next_nonce(&self) -> Result<u64, SubmitError> {
        let chain = self.rpc.nonce(self.signer.address(), "pending").await?;
        let recorded = self.store().l1().max_live_nonce().await?;
        Ok(chain.max(recorded.map_or(0, |n| n + 1)))
    }

    /// One step of the submitter's state machine. Call repeatedly.
    pub async fn step(&self) -> Result<Step, SubmitError> {
        let store = self.store();
        // 1. Follow mined transactions to the depth, or notice they were reorged out. This
        // comes before the in-flight one: when a reorg takes out a lower nonce, the in-flight
        // transaction cannot be mined until the lower one is sent again.
        let head = self.rpc.block_number().await?;
        if let Some(step) = self.follow(head).await? {
            return Ok(step);
        }
        if let Some(p) = store.l1().next_pending_submission().await? {
            return self.resolve(p).await;
        }
        let lc = self.last_committed().await?;
        let lf = self.last_finalized().await?;

        // 2. Finalize the next committed batch.
        if lf < lc
            && store
                .l1()
                .failed_attempts(lf + 1, SubmissionKind::Finalize)
                .await?
                < MAX_FAILED_ATTEMPTS
        {
            let batch = lf + 1;
            let Some(r) = store.l1().l1_batch(batch).await? else {
                return Err(SubmitError::Batch(
                    batch,
                    "committed on L1 but unknown to this database".into(),
                ));
            };
            // The statement recorded at commit: the attester signs only what was derived from
            // the verified proof (prepare_commit), never a statement read back from L1.
            let fields = BatchStatement::abi_decode(&r.header)?;
            let statement = statement_hash(&fields);
            if statement.0 != r.statement {
                return Err(SubmitError::Batch(
                    batch,
                    "l1_batches row: the recorded statement fields do not hash to the recorded statement".into(),
                ));
            }
            let proof = self
                .attester
                .attest(self.cfg.chain_id, self.cfg.rollup, statement)?;
            let call = Rollup::finalizeBatchCall { s: fields, proof };
            let nonce = self.next_nonce().await?;
            let price = self.rpc.gas_price().await?;
            let tx = self
                .submit(Outgoing {
                    batch,
                    kind: SubmissionKind::Finalize,
                    data: call.abi_encode().into(),
                    nonce,
                    gas_price: price,
                    attempts: 1,
                    gas_limit: None,
                })
                .await?;
            return Ok(Step::Sent {
                batch,
                kind: SubmissionKind::Finalize,
                nonce,
                tx,
            });
        }

        // 3. Commit the next proven batch.
        let batch = lc + 1;
        if store.batches().status(batch).await? != Some(BatchStatus::Proven)
            || store
                .l1()
                .failed_attempts(batch, SubmissionKind::Commit)
                .await?
                >= MAX_FAILED_ATTEMPTS
        {
            return Ok(Step::Idle);
        }
        let PreparedCommit {
            header,
            statement,
            pubdata,
            payouts,
        } = self.prepare_commit(batch).await?;
        let l1_payouts: Vec<L1Payout> = payouts
            .iter()
            .map(|p| L1Payout {
                from: p.from,
                to: L1Address(p.to.into_array()),
                amount: p.amount,
            })
            .collect();
        let encoded = statement_struct(&statement).abi_encode();
        store
            .l1()
            .upsert_l1_batch(&NewL1Batch {
                batch_number: batch,
                header: &encoded,
                pubdata_hash: statement.diff_hash,
                statement: statement.hash(),
                withdrawals_root: statement.payout_root,
                payouts: &l1_payouts,
            })
            .await?;
        let call = Rollup::commitBatchCall {
            h: header,
            pubdata: pubdata.into(),
            payouts: encode_payouts(&payouts).into(),
        };
        let nonce = self.next_nonce().await?;
        let price = self.rpc.gas_price().await?;
        let tx = self
            .submit(Outgoing {
                batch,
                kind: SubmissionKind::Commit,
                data: call.abi_encode().into(),
                nonce,
                gas_price: price,
                attempts: 1,
                gas_limit: None,
            })
            .await?;
        Ok(Step::Sent {
            batch,
            kind: SubmissionKind::Commit,
            nonce,
            tx,
        })
    }

    /// Steps until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let idle = match self.step().await {
                Ok(Step::Idle) | Ok(Step::Waiting) => true,
                Ok(s) => {
                    tracing::debug!(?s, "submitter");
                    false
                }
                // The error never carries the endpoint URL (see `Rpc::request`).
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        l1 = %self.rpc.endpoint_for_logs(),
                        "batch submitter step failed; retrying"
                    );
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            } else if *stop.borrow() {
                return;
            }
        }
    }
}

/// Field `index` of a signed legacy transaction (2 = gas limit, 5 = data), to rebuild a
/// replacement.
fn decode_field(raw: &[u8], index: usize) -> Result<Vec<u8>, SubmitError> {
    let bad = || SubmitError::Batch(0, "cannot decode a recorded transaction".into());
    // RLP list header.
    let (mut pos, _) = rlp_header(raw, 0).ok_or_else(bad)?;
    for field in 0..=index {
        let (start, len) = rlp_header(raw, pos).ok_or_else(bad)?;
        if field == index {
            return raw
                .get(start..start + len)
                .map(<[u8]>::to_vec)
                .ok_or_else(bad);
        }
        pos = start + len;
    }
    Err(bad())
}

/// (payload start, payload length) of the RLP item at `pos` (lists: the start of their items).
fn rlp_header(raw: &[u8], pos: usize) -> Option<(usize, usize)> {
    let b = *raw.get(pos)?;
    let long = |base: u8| -> Option<(usize, usize)> {
        let n = (b - base) as usize;
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *raw.get(pos + 1 + i)? as usize;
        }
        Some((pos + 1 + n, len))
    };
    match b {
        0x00..=0x7f => Some((pos, 1)),
        0x80..=0xb7 => Some((pos + 1, (b - 0x80) as usize)),
        0xb8..=0xbf => long(0xb7),
        0xc0..=0xf7 => Some((pos + 1, (b - 0xc0) as usize)),
        _ => long(0xf7),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::{L1Signer, ANVIL_DEV_KEY_0};

    #[test]
    fn replacement_reuses_the_recorded_input() {
        let s = L1Signer::from_hex(ANVIL_DEV_KEY_0).unwrap();
        for len in [0usize, 1, 55, 56, 300, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let tx = LegacyTx {
                chain_id: 31337,
                nonce: 7,
                gas_price: 1_000_000_000,
                gas: 100_000,
                to: Address::repeat_byte(9),
                value: U256::ZERO,
                data: data.clone().into(),
            };
            let (raw, _) = s.sign_legacy(&tx).unwrap();
            assert_eq!(decode_field(&raw, 5).unwrap(), data);
            assert_eq!(
                U256::from_be_slice(&decode_field(&raw, 2).unwrap()),
                U256::from(100_000)
            );
        }
    }

    /// The receipt-versus-nonce race: our transaction (nonce 7) is mined at some instant
    /// relative to the two reads of one resolve step. Reading the nonce first, then the
    /// receipts, never gives a mined transaction up, wherever the mining falls; the other order
    /// does when it falls between the two reads (the bug this replaced).
    #[test]
    fn a_transaction_mined_between_the_reads_is_never_given_up() {
        const NONCE: u64 = 7;
        // Instants: 0 = first read, 1 = second read; `mined_at` in {before 0, between, after 1}.
        let nonce_at = |t: u32, mined_at: u32| if mined_at <= t { NONCE + 1 } else { NONCE };
        let receipt_at = |t: u32, mined_at: u32| mined_at <= t;
        for mined_at in 0..3u32 {
            // Fixed order: nonce at instant 0, receipts at instant 1.
            let action = decide_pending(
                nonce_at(0, mined_at),
                NONCE,
                &[receipt_at(1, mined_at)],
                true,
                false,
            );
            assert_ne!(
                action,
                PendingAction::NonceUsedElsewhere,
                "mined at {mined_at}"
            );
            if mined_at <= 1 {
                assert_eq!(action, PendingAction::Mined(0), "mined at {mined_at}");
            } else {
                // Not mined yet when both reads happened: keep waiting, the next step sees it.
                assert_eq!(action, PendingAction::Rebroadcast);
            }
        }
        // The old order (receipts at instant 0, nonce at instant 1), mined in between: the
        // transaction was mined, yet it looks replaced.
        assert_eq!(
            decide_pending(nonce_at(1, 1), NONCE, &[receipt_at(0, 1)], true, false),
            PendingAction::NonceUsedElsewhere
        );
    }

    #[test]
    fn pending_decisions() {
        // A replacement (second attempt) was the one mined.
        assert_eq!(
            decide_pending(8, 7, &[false, true], true, true),
            PendingAction::Mined(1)
        );
        // The nonce passed and none of our attempts has a receipt: used elsewhere.
        assert_eq!(
            decide_pending(8, 7, &[false, false], true, false),
            PendingAction::NonceUsedElsewhere
        );
        // Recorded, never broadcast (or reorged out): the same bytes again.
        assert_eq!(
            decide_pending(7, 7, &[false], false, true),
            PendingAction::Broadcast
        );
        assert_eq!(
            decide_pending(7, 7, &[false], true, true),
            PendingAction::Replace
        );
        assert_eq!(
            decide_pending(7, 7, &[false], true, false),
            PendingAction::Rebroadcast
        );
        assert!(past_depth(12, 10, 2) && !past_depth(11, 10, 2) && !past_depth(9, 10, 0));
    }
}
