//! Reverting committed, unfinalized batches (SPEC 15.9, 16.3): the operator's way out of a
//! batch that was committed but cannot be finalized (its proof is refused on L1, its header is
//! wrong). `Rollup.revertBatches(keep)` takes every batch after `keep` off L1; the node follows
//! the `BatchesReverted` event at the confirmation depth and commits the same batches, with the
//! same transactions, again (`rollup_storage::l1::revert_batches`).
//!
//! The kept batch is named by the statement the contract emitted when it committed it, read
//! here from the logs that stand (a batch reverted and committed again is the later one). The
//! call is returned, not sent, so a tool can show it first and a test can tamper with it.

use alloy_primitives::{Address, B256};

use crate::contracts::Rollup::{self, BatchStatement};
use crate::rebuild::{committed_batches, RebuildError};
use crate::rpc::{Rpc, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Logs(#[from] RebuildError),
    /// The contract only reverts committed batches after the last finalized one.
    #[error("cannot keep batch {keep}: batches up to {last_finalized} are finalized and only {last_committed} are committed (keep one of {last_finalized}..{last_committed})")]
    OutOfRange {
        keep: u64,
        last_finalized: u64,
        last_committed: u64,
    },
    #[error("batch {keep} is committed on L1 but its BatchCommitted log was not found from block {from_block}")]
    NoCommitLog { keep: u64, from_block: u64 },
}

/// What a revert will do, for a tool to print before sending.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RevertPlan {
    pub keep: u64,
    pub first_reverted: u64,
    pub last_reverted: u64,
    /// The committed root after the revert (the kept batch's new root, or the finalized root).
    pub committed_root: B256,
}

/// The `revertBatches` call that keeps batch `keep` as the last committed one, checked against
/// the contract's counters (`from_block`, `max_range`: where and how to read the commit logs).
pub async fn revert_call(
    rpc: &Rpc,
    rollup: Address,
    keep: u64,
    from_block: u64,
    max_range: u64,
) -> Result<(Rollup::revertBatchesCall, RevertPlan), RevertError> {
    let last_committed = rpc.view(rollup, &Rollup::lastCommittedBatchCall {}).await?;
    let last_finalized = rpc.view(rollup, &Rollup::lastFinalizedBatchCall {}).await?;
    if keep < last_finalized || keep >= last_committed {
        return Err(RevertError::OutOfRange {
            keep,
            last_finalized,
            last_committed,
        });
    }
    let statement = if keep == 0 {
        // Before any finalization the contract reads only the number.
        zero_statement()
    } else {
        let (chain, _) = committed_batches(rpc, rollup, from_block, max_range).await?;
        chain
            .into_iter()
            .find(|c| c.event.batchNumber == keep)
            .map(|c| c.event.s)
            .ok_or(RevertError::NoCommitLog { keep, from_block })?
    };
    let committed_root = if keep == 0 {
        rpc.view(rollup, &Rollup::finalizedRootCall {}).await?
    } else {
        statement.newRoot
    };
    let plan = RevertPlan {
        keep,
        first_reverted: keep + 1,
        last_reverted: last_committed,
        committed_root,
    };
    Ok((Rollup::revertBatchesCall { keep: statement }, plan))
}

fn zero_statement() -> BatchStatement {
    BatchStatement {
        chainId: 0,
        rollup: Address::ZERO,
        batchNumber: 0,
        oldRoot: B256::ZERO,
        newRoot: B256::ZERO,
        diffHash: B256::ZERO,
        payoutRoot: B256::ZERO,
        firstPriorityOp: 0,
        nextPriorityOp: 0,
        priorityHashBefore: B256::ZERO,
        priorityHashAfter: B256::ZERO,
        timestamp: 0,
    }
}
