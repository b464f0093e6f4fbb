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

use alloy_primitives::{Address, Bytes, B256};
use alloy_sol_types::{SolCall, SolValue};
use rollup_storage::l1::{L1Payout, NewL1Batch};
use rollup_storage::{BatchStatus, StorageError, Store, SubmissionKind};
use sqlx::postgres::PgPool;
use state::tx::L1Address;

use crate::contracts::Rollup::{self, BatchHeader, BatchStatement};
use crate::hashes::{encode_payouts, statement_hash, statement_struct, NativeStatement, Payout};
use crate::rpc::{Rpc, RpcError};
pub use crate::settle::ProvenBatch;
use crate::signer::{L1Signer, SignerError};

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
            return self
                .send_new(batch, SubmissionKind::Finalize, call.abi_encode().into())
                .await;
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
        self.send_new(batch, SubmissionKind::Commit, call.abi_encode().into())
            .await
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

mod commit;
mod follow;
mod rlp;

#[cfg(test)]
mod tests;
