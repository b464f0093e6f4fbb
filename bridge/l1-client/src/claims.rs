//! Finalized payouts nobody has claimed yet, from L1 data alone (SPEC 15.5, 16.7): the payout
//! lists the commits carry (read by the rebuild), the contract's `lastFinalizedBatch` and its
//! `claimed(leaf)` marks. Each comes with the proof `claimWithdrawal` takes, so a withdrawal can
//! be claimed with the node and its database gone.

use alloy_primitives::{Address, B256};

use crate::contracts::Rollup;
use crate::hashes::{payout_leaf, PayoutTree};
use crate::rebuild::Rebuilt;
use crate::rpc::{Rpc, RpcError};

/// A finalized payout not claimed yet, with everything `claimWithdrawal` needs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unclaimed {
    pub batch: u64,
    pub index: u64,
    /// L2 account index, or `2^32 + seq` for the refund of deposit `seq`.
    pub from: u64,
    pub to: Address,
    pub amount: u64,
    pub leaf: B256,
    pub proof: Vec<B256>,
}

impl Unclaimed {
    /// The `claimWithdrawal` call that pays it (to `to`, whoever sends it).
    pub fn claim_call(&self) -> Rollup::claimWithdrawalCall {
        Rollup::claimWithdrawalCall {
            batchNumber: self.batch,
            index: self.index,
            from: self.from,
            to: self.to,
            amount: self.amount,
            proof: self.proof.clone(),
        }
    }
}

/// The payouts of `rebuilt`'s finalized batches that are not claimed on L1 (one `claimed` view
/// per payout of a finalized batch).
pub async fn unclaimed(
    rpc: &Rpc,
    rollup: Address,
    rebuilt: &Rebuilt,
) -> Result<Vec<Unclaimed>, RpcError> {
    let finalized = rpc.view(rollup, &Rollup::lastFinalizedBatchCall {}).await?;
    let mut out = Vec::new();
    for b in rebuilt.payouts.iter().filter(|b| b.batch <= finalized) {
        let tree = PayoutTree::new(b.batch, &b.payouts);
        for (i, p) in b.payouts.iter().enumerate() {
            let leaf = payout_leaf(b.batch, i as u64, p);
            if rpc.view(rollup, &Rollup::claimedCall(leaf)).await? {
                continue;
            }
            out.push(Unclaimed {
                batch: b.batch,
                index: i as u64,
                from: p.from,
                to: p.to,
                amount: p.amount,
                leaf,
                proof: tree.proof(i),
            });
        }
    }
    Ok(out)
}
