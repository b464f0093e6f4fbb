//! The chunk witnesses of a batch's diff, priority and payout trees (SPEC 13.11), from what the
//! batch settles on L1 ([`SettlementInputs`]) and the accounts before it.
//!
//! Cost: the diff chunks rebuild the state tree of the accounts before the batch (O(accounts)
//! hashes, once per planned batch); the priority and payout chunks are linear in the batch.

use anyhow::Context;
use serde::Serialize;
use state::account::Account;

use crate::circuits::diff::diff_chunks;
use crate::circuits::payout::payout_chunks;
use crate::circuits::priority::priority_chunks;
use crate::circuits::trees::{ChunkInput, ChunkShape};
use crate::jobs::SettlementInputs;

/// The serialized chunk inputs of the three chained trees of one batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainChunks {
    pub diff: Vec<Vec<u8>>,
    pub priority: Vec<Vec<u8>>,
    pub payout: Vec<Vec<u8>>,
}

impl ChainChunks {
    /// The most chunks any of the three trees has.
    pub fn len(&self) -> usize {
        self.diff
            .len()
            .max(self.priority.len())
            .max(self.payout.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn serialize<W: Serialize, S: Serialize>(chunks: Vec<(W, S)>) -> anyhow::Result<Vec<Vec<u8>>> {
    chunks
        .into_iter()
        .map(|(witness, statement)| {
            serde_json::to_vec(&ChunkInput { witness, statement }).context("serializing a chunk")
        })
        .collect()
}

/// The chunks of batch `batch`, each tree padded with empty chunks to a power of two of at
/// least `min_chunks`.
pub fn chain_chunks(
    shape: ChunkShape,
    batch: u64,
    before: &[Account],
    first_priority_op: u64,
    inputs: &SettlementInputs,
    min_chunks: usize,
) -> anyhow::Result<ChainChunks> {
    let diff = diff_chunks(
        before,
        &inputs.state_diff,
        shape.diff_old,
        shape.diff_new,
        min_chunks,
    )
    .context("diff chunks")?;
    let priority = priority_chunks(
        inputs.queue_before,
        first_priority_op,
        &inputs.settled.consumed,
        shape.priority,
        min_chunks,
    )
    .context("priority chunks")?;
    let payout = payout_chunks(
        batch,
        &inputs.settled.payouts,
        shape.payout_depth,
        min_chunks,
    )
    .context("payout chunks")?;
    Ok(ChainChunks {
        diff: serialize(diff)?,
        priority: serialize(priority)?,
        payout: serialize(payout)?,
    })
}
