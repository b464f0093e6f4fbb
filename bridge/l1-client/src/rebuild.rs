//! Rebuilding the L2 state from L1 data alone (SPEC 10.4, 16.7): the data-availability promise
//! of the state diffs, checked the way an exchange or a user leaving the rollup would.
//!
//! Starting from the genesis accounts (the operator's public key is the only input; its root
//! is checked against the root the contract started from), the rebuild reads every
//! `BatchCommitted` event of the Rollup contract in order, fetches the transaction that emitted
//! it, decodes its `commitBatch(header, pubdata, payouts)` calldata, checks that the calldata is the one
//! the event reports (same batch number, new root, payout root, priority range end and
//! timestamp; `sha256(pubdata)` is the statement's `diffHash`), applies `pubdata` as a state
//! diff and requires the result to be the statement's `newRoot`, and reads the payout list
//! back (its tree must have the statement's payout root), so that unclaimed payouts can be
//! claimed from L1 data alone. Any difference stops the rebuild with a typed error naming the
//! batch.

use alloy_primitives::{Address, B256};
use alloy_sol_types::{SolCall, SolEvent};
use state::crypto::schnorr::PublicKey;
use state::diff::{AccountTree, DiffError, StateDiff};
use state::Digest;

use crate::contracts::Rollup;
use crate::hashes::{decode_payouts, Payout, PayoutTree};
use crate::rpc::{Rpc, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("the genesis of operator key {operator} has root {computed}, but the contract started from {contract}")]
    GenesisMismatch {
        operator: String,
        computed: B256,
        contract: B256,
    },
    #[error("BatchCommitted log without a transaction hash (pending?)")]
    LogWithoutTransaction,
    #[error("a BatchCommitted log does not decode: {0}")]
    BadLog(#[source] alloy_sol_types::Error),
    #[error("batch {batch}: the node does not know transaction {tx}")]
    MissingTransaction { batch: u64, tx: B256 },
    #[error("batch {batch}: transaction {tx} is not a direct commitBatch call to the rollup (commits through another contract are not supported)")]
    NotACommitCall { batch: u64, tx: B256 },
    #[error("batch {batch}: the payout list in {tx} does not have the batch's payout root")]
    PayoutsMismatch { batch: u64, tx: B256 },
    #[error("batch {batch}: the calldata of {tx} is not the batch its event reports")]
    CalldataMismatch { batch: u64, tx: B256 },
    #[error("batch {batch} was asked for, but only {committed} batches stand committed on L1")]
    NotCommitted { batch: u64, committed: u64 },
    #[error("batch {found} committed where batch {expected} was due")]
    OutOfOrder { expected: u64, found: u64 },
    #[error("batch {batch}: old root {header} is not the rebuilt root {rebuilt}")]
    OldRootMismatch {
        batch: u64,
        header: B256,
        rebuilt: B256,
    },
    #[error("batch {batch}: its state diff is invalid: {source}")]
    Diff {
        batch: u64,
        #[source]
        source: DiffError,
    },
    #[error("batch {batch}: applying its state diff gives root {computed}, but the batch commits to {committed}")]
    RootMismatch {
        batch: u64,
        committed: B256,
        computed: B256,
    },
}

impl RebuildError {
    /// Whether the L1 data itself is wrong (the rollup's data is unavailable or inconsistent),
    /// as opposed to a failure to read it: the tool exits with a distinct code for these.
    pub fn is_data_error(&self) -> bool {
        matches!(
            self,
            RebuildError::GenesisMismatch { .. }
                | RebuildError::CalldataMismatch { .. }
                | RebuildError::PayoutsMismatch { .. }
                | RebuildError::OutOfOrder { .. }
                | RebuildError::OldRootMismatch { .. }
                | RebuildError::Diff { .. }
                | RebuildError::RootMismatch { .. }
        )
    }
}

#[derive(Clone, Debug)]
pub struct RebuildConfig {
    pub rollup: Address,
    /// First L1 block to scan (the deployment block).
    pub from_block: u64,
    /// Blocks per `eth_getLogs` request.
    pub max_range: u64,
    /// Stop after this batch (`None`: every committed batch). Exodus rebuilds up to the last
    /// finalized batch: the state its exits are proven against.
    pub until: Option<u64>,
}

/// One batch applied.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BatchApplied {
    pub batch: u64,
    pub l1_block: Option<u64>,
    pub l1_tx: B256,
    pub diff_bytes: usize,
    pub records: usize,
    pub new_accounts: u64,
    pub accounts: u64,
    pub root: B256,
    /// Payouts the batch lists (withdrawals and refunds, SPEC 15.5).
    pub payouts: usize,
}

/// The payout list of one batch, read from its commit calldata and checked against its
/// payout root: what a finalized batch lets anyone claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchPayouts {
    pub batch: u64,
    pub payouts: Vec<Payout>,
}

/// The rebuilt state.
#[derive(Clone, Debug)]
pub struct Rebuilt {
    pub tree: AccountTree,
    /// The last batch applied (0: none).
    pub batches: u64,
    /// The last L1 block scanned.
    pub l1_block: u64,
    /// The payouts of every applied batch that has any, in batch order.
    pub payouts: Vec<BatchPayouts>,
}

impl Rebuilt {
    /// The summary the tool prints.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "batches": self.batches,
            "accounts": self.tree.num_accounts(),
            // A string: the sum of u64 balances does not fit a JSON-safe integer.
            "total_balance": self.tree.total_balance().to_string(),
            "root": b256(self.tree.root()),
            "l1_block": self.l1_block,
        })
    }
}

fn b256(d: Digest) -> B256 {
    B256::from(d.to_bytes())
}

/// A committed batch that no later `BatchesReverted` undid: its event and where it came from.
#[derive(Clone, Debug)]
pub struct CommittedBatch {
    pub event: Rollup::BatchCommitted,
    pub tx: B256,
    pub l1_block: Option<u64>,
}

/// The batches committed on L1 that stand (no later `BatchesReverted` undid them), in order,
/// from the logs between `from_block` and the head (`max_range` blocks per request): the
/// logs are read in L1 order, so a reverted batch and its recommitted successor are told apart.
/// Also returns the head the scan went to.
pub async fn committed_batches(
    rpc: &Rpc,
    rollup: Address,
    from_block: u64,
    max_range: u64,
) -> Result<(Vec<CommittedBatch>, u64), RebuildError> {
    let head = rpc.block_number().await?;
    let mut chain: Vec<CommittedBatch> = Vec::new();
    let mut from = from_block;
    let step = max_range.max(1);
    while from <= head {
        let to = head.min(from.saturating_add(step - 1));
        let logs = rpc
            .logs(
                rollup,
                &[
                    Rollup::BatchCommitted::SIGNATURE_HASH,
                    Rollup::BatchesReverted::SIGNATURE_HASH,
                ],
                from,
                to,
            )
            .await?;
        for log in logs {
            if log.topics.first() == Some(&Rollup::BatchesReverted::SIGNATURE_HASH) {
                let ev =
                    Rollup::BatchesReverted::decode_raw_log(log.topics.iter().copied(), &log.data)
                        .map_err(RebuildError::BadLog)?;
                chain.truncate(ev.firstReverted.saturating_sub(1) as usize);
                continue;
            }
            let event =
                Rollup::BatchCommitted::decode_raw_log(log.topics.iter().copied(), &log.data)
                    .map_err(RebuildError::BadLog)?;
            let expected = chain.len() as u64 + 1;
            if event.batchNumber != expected {
                return Err(RebuildError::OutOfOrder {
                    expected,
                    found: event.batchNumber,
                });
            }
            let tx = log
                .transaction_hash
                .ok_or(RebuildError::LogWithoutTransaction)?;
            chain.push(CommittedBatch {
                event,
                tx,
                l1_block: log.block_number.map(|n| n.to::<u64>()),
            });
        }
        from = to + 1;
    }
    Ok((chain, head))
}

/// Rebuilds the state committed on L1 up to the current head (or up to batch `cfg.until`);
/// `progress` sees every batch applied.
///
/// Two passes: the batches that stand ([`committed_batches`]), then their calldata, applied in
/// order.
pub async fn rebuild(
    rpc: &Rpc,
    cfg: &RebuildConfig,
    operator: PublicKey,
    mut progress: impl FnMut(&BatchApplied),
) -> Result<Rebuilt, RebuildError> {
    let mut tree = AccountTree::genesis(operator);
    let (mut chain, head) =
        committed_batches(rpc, cfg.rollup, cfg.from_block, cfg.max_range).await?;
    if let Some(until) = cfg.until {
        if until > chain.len() as u64 {
            return Err(RebuildError::NotCommitted {
                batch: until,
                committed: chain.len() as u64,
            });
        }
        chain.truncate(until as usize);
    }
    let mut next = 1u64;
    let mut all_payouts = Vec::new();
    for CommittedBatch {
        event: ev,
        tx: tx_hash,
        l1_block,
    } in chain
    {
        let batch = ev.batchNumber;
        let tx = rpc
            .transaction(tx_hash)
            .await?
            .ok_or(RebuildError::MissingTransaction { batch, tx: tx_hash })?;
        if tx.to != Some(cfg.rollup) {
            return Err(RebuildError::NotACommitCall { batch, tx: tx_hash });
        }
        let call = Rollup::commitBatchCall::abi_decode(&tx.input)
            .map_err(|_| RebuildError::NotACommitCall { batch, tx: tx_hash })?;
        // The event is what the contract accepted; the calldata must be that very batch.
        let header = &ev.s;
        let h = &call.h;
        if h.batchNumber != header.batchNumber
            || h.newRoot != header.newRoot
            || h.payoutRoot != header.payoutRoot
            || h.nextPriorityOp != header.nextPriorityOp
            || h.timestamp != header.timestamp
            || B256::from(state::settlement::diff_hash(&call.pubdata)) != header.diffHash
        {
            return Err(RebuildError::CalldataMismatch { batch, tx: tx_hash });
        }
        if batch == 1 && header.oldRoot != b256(tree.root()) {
            return Err(RebuildError::GenesisMismatch {
                operator: operator.to_hex(),
                computed: b256(tree.root()),
                contract: header.oldRoot,
            });
        }
        if header.oldRoot != b256(tree.root()) {
            return Err(RebuildError::OldRootMismatch {
                batch,
                header: header.oldRoot,
                rebuilt: b256(tree.root()),
            });
        }
        let payouts = decode_payouts(&call.payouts)
            .filter(|list| PayoutTree::new(batch, list).root() == header.payoutRoot)
            .ok_or(RebuildError::PayoutsMismatch { batch, tx: tx_hash })?;
        let diff = StateDiff::decode(&call.pubdata)
            .map_err(|source| RebuildError::Diff { batch, source })?;
        let before = tree.num_accounts();
        let root = b256(
            tree.apply(&diff)
                .map_err(|source| RebuildError::Diff { batch, source })?,
        );
        if root != header.newRoot {
            return Err(RebuildError::RootMismatch {
                batch,
                committed: header.newRoot,
                computed: root,
            });
        }
        progress(&BatchApplied {
            batch,
            l1_block,
            l1_tx: tx_hash,
            diff_bytes: call.pubdata.len(),
            records: diff.records().len(),
            new_accounts: tree.num_accounts() - before,
            accounts: tree.num_accounts(),
            root,
            payouts: payouts.len(),
        });
        if !payouts.is_empty() {
            all_payouts.push(BatchPayouts { batch, payouts });
        }
        next += 1;
    }
    if next == 1 && cfg.until.is_none() {
        // No batch yet: the contract's committed root is still its genesis root.
        let contract = rpc.view(cfg.rollup, &Rollup::committedRootCall {}).await?;
        if contract != b256(tree.root()) {
            return Err(RebuildError::GenesisMismatch {
                operator: operator.to_hex(),
                computed: b256(tree.root()),
                contract,
            });
        }
    }
    Ok(Rebuilt {
        tree,
        batches: next - 1,
        l1_block: head,
        payouts: all_payouts,
    })
}
