//! Finalized payouts nobody has claimed yet, from L1 data alone (SPEC 15.5, 16.7): the payout
//! lists the commits carry (read by the rebuild), the contract's `lastFinalizedBatch` and its
//! `claimed(leaf)` marks. Each comes with the proof `claimWithdrawal` takes, so a withdrawal can
//! be claimed with the node and its database gone.

use alloy_primitives::{Address, B256};
use alloy_sol_types::SolCall;

use crate::contracts::Rollup;
use crate::hashes::{payout_leaf, PayoutTree};
use crate::rebuild::Rebuilt;
use crate::rpc::{Rpc, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("the contract's answer to {0} does not decode: {1}")]
    BadView(&'static str, #[source] alloy_sol_types::Error),
}

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

async fn view<C: SolCall>(
    rpc: &Rpc,
    rollup: Address,
    name: &'static str,
    call: C,
) -> Result<C::Return, ClaimsError> {
    let out = rpc.call(rollup, call.abi_encode().into()).await?;
    C::abi_decode_returns(&out).map_err(|e| ClaimsError::BadView(name, e))
}

/// The payouts of `rebuilt`'s finalized batches that are not claimed on L1 (one `claimed` view
/// per payout of a finalized batch).
pub async fn unclaimed(
    rpc: &Rpc,
    rollup: Address,
    rebuilt: &Rebuilt,
) -> Result<Vec<Unclaimed>, ClaimsError> {
    let finalized = view(
        rpc,
        rollup,
        "lastFinalizedBatch()",
        Rollup::lastFinalizedBatchCall {},
    )
    .await?;
    let mut out = Vec::new();
    for b in rebuilt.payouts.iter().filter(|b| b.batch <= finalized) {
        let tree = PayoutTree::new(b.batch, &b.payouts);
        for (i, p) in b.payouts.iter().enumerate() {
            let leaf = payout_leaf(b.batch, i as u64, p);
            if view(rpc, rollup, "claimed(leaf)", Rollup::claimedCall(leaf)).await? {
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
