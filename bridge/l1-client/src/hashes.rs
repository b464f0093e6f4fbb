//! What the node computes exactly as the Rollup contract does (docs/SPEC.md section 15).

use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_sol_types::SolValue;

use crate::contracts::Rollup::BatchHeader;

/// Priority op kind of a deposit (the L2 tag of a deposit).
pub const KIND_DEPOSIT: u8 = 4;
/// Priority op kind of a forced withdrawal (the L2 tag of a withdraw).
pub const KIND_FORCED_WITHDRAWAL: u8 = 3;
/// Payout leaves with `from >= REFUND_FROM_BASE` refund deposit `from - REFUND_FROM_BASE`.
pub const REFUND_FROM_BASE: u64 = 1 << 32;

/// Entry hash of a queued deposit (SPEC 15.2).
pub fn deposit_entry(serial: u64, depositor: Address, recipient: u32, amount: u64) -> B256 {
    keccak256(
        (
            U256::from(KIND_DEPOSIT),
            serial,
            depositor,
            recipient,
            amount,
        )
            .abi_encode_params(),
    )
}

/// Entry hash of a queued forced withdrawal (SPEC 15.2).
pub fn forced_withdrawal_entry(serial: u64, requested_at: u64, withdraw_tx: &[u8]) -> B256 {
    keccak256(
        (
            U256::from(KIND_FORCED_WITHDRAWAL),
            serial,
            requested_at,
            keccak256(withdraw_tx),
        )
            .abi_encode_params(),
    )
}

/// Tag of the L2 forced-withdrawal transaction (SPEC 9).
pub const L2_TAG_FORCED_WITHDRAW: u8 = 5;

/// The L2 transaction a queued forced withdrawal becomes (SPEC 9): `5 ‖ serial (LE64) ‖
/// requested_at (LE64) ‖ withdrawTx`.
pub fn forced_withdraw_l2_tx(serial: u64, requested_at: u64, withdraw_tx: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + withdraw_tx.len());
    out.push(L2_TAG_FORCED_WITHDRAW);
    out.extend_from_slice(&serial.to_le_bytes());
    out.extend_from_slice(&requested_at.to_le_bytes());
    out.extend_from_slice(withdraw_tx);
    out
}

/// `H_{s+1}` from `H_s` and entry `s` (SPEC 15.2); `H_0` is zero.
pub fn next_priority_hash(prev: B256, entry: B256) -> B256 {
    keccak256((prev, entry).abi_encode_params())
}

/// The statement a batch is committed and verified under (SPEC 15.3).
pub fn batch_statement(header: &BatchHeader, pubdata: &[u8]) -> B256 {
    keccak256((header.clone(), keccak256(pubdata)).abi_encode_params())
}

/// One L1 payout of a batch (SPEC 15.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payout {
    /// L2 account index, or `REFUND_FROM_BASE + seq` for the refund of deposit `seq`.
    pub from: u64,
    pub to: Address,
    pub amount: u64,
}

/// The payout leaf of payout `index` of batch `batch` (SPEC 15.5).
pub fn payout_leaf(batch: u64, index: u64, p: &Payout) -> B256 {
    keccak256((batch, index, p.from, p.to, p.amount).abi_encode_params())
}

/// The keccak payout tree of one batch (SPEC 15.5).
#[derive(Clone, Debug)]
pub struct PayoutTree {
    /// levels[0] = leaves padded with zeros to a power of two; the last level is the root.
    levels: Vec<Vec<B256>>,
}

impl PayoutTree {
    pub fn new(batch: u64, payouts: &[Payout]) -> PayoutTree {
        if payouts.is_empty() {
            return PayoutTree { levels: vec![] };
        }
        let width = payouts.len().next_power_of_two();
        let mut level: Vec<B256> = payouts
            .iter()
            .enumerate()
            .map(|(i, p)| payout_leaf(batch, i as u64, p))
            .collect();
        level.resize(width, B256::ZERO);
        let mut levels = vec![level];
        while levels.last().expect("non-empty").len() > 1 {
            let upper = levels
                .last()
                .expect("non-empty")
                .chunks(2)
                .map(|pair| keccak256([pair[0].as_slice(), pair[1].as_slice()].concat()))
                .collect();
            levels.push(upper);
        }
        PayoutTree { levels }
    }

    /// The root (zero for a batch without payouts).
    pub fn root(&self) -> B256 {
        self.levels.last().map_or(B256::ZERO, |l| l[0])
    }

    /// The siblings of payout `index`, leaf level first.
    pub fn proof(&self, index: usize) -> Vec<B256> {
        let depth = self.levels.len().saturating_sub(1);
        (0..depth)
            .map(|l| self.levels[l][(index >> l) ^ 1])
            .collect()
    }
}

/// Checks a payout proof as `Rollup.claimWithdrawal` does.
pub fn verify_payout(root: B256, leaf: B256, index: u64, proof: &[B256]) -> bool {
    if root == B256::ZERO || proof.len() > 64 || (proof.len() < 64 && index >> proof.len() != 0) {
        return false;
    }
    let mut node = leaf;
    for (l, sibling) in proof.iter().enumerate() {
        node = if (index >> l) & 1 == 0 {
            keccak256([node.as_slice(), sibling.as_slice()].concat())
        } else {
            keccak256([sibling.as_slice(), node.as_slice()].concat())
        };
    }
    node == root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payouts(n: usize) -> Vec<Payout> {
        (0..n)
            .map(|i| Payout {
                from: i as u64,
                to: Address::repeat_byte(i as u8 + 1),
                amount: 1000 + i as u64,
            })
            .collect()
    }

    #[test]
    fn every_payout_proves_and_only_its_own() {
        assert_eq!(PayoutTree::new(1, &[]).root(), B256::ZERO);
        for n in 1..=9 {
            let ps = payouts(n);
            let tree = PayoutTree::new(7, &ps);
            for (i, p) in ps.iter().enumerate() {
                let proof = tree.proof(i);
                assert_eq!(proof.len(), n.next_power_of_two().trailing_zeros() as usize);
                assert!(verify_payout(
                    tree.root(),
                    payout_leaf(7, i as u64, p),
                    i as u64,
                    &proof
                ));
                let mut other = *p;
                other.amount += 1;
                assert!(!verify_payout(
                    tree.root(),
                    payout_leaf(7, i as u64, &other),
                    i as u64,
                    &proof
                ));
                assert!(!verify_payout(
                    tree.root(),
                    payout_leaf(8, i as u64, p),
                    i as u64,
                    &proof
                ));
            }
        }
        let one = PayoutTree::new(3, &payouts(1));
        assert_eq!(one.root(), payout_leaf(3, 0, &payouts(1)[0]));
    }
}
