//! What the node computes exactly as the Rollup contract does (docs/SPEC.md section 15): the
//! pure definitions live in `state::settlement`; this module converts to and from the
//! contract's ABI types.

use alloy_primitives::{Address, B256};

use crate::contracts::Rollup::BatchStatement;

pub use state::settlement::{
    BatchStatement as NativeStatement, PriorityEntry, KIND_DEPOSIT, KIND_FORCED_WITHDRAWAL,
    REFUND_FROM_BASE,
};
use state::tx::L1Address;

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

/// The queue entry of a deposit (SPEC 15.2).
pub fn deposit_entry(
    serial: u64,
    depositor: Address,
    recipient: u32,
    amount: u64,
) -> PriorityEntry {
    PriorityEntry::Deposit {
        serial,
        depositor: L1Address(depositor.into_array()),
        recipient,
        amount,
    }
}

/// `H_{s+1}` from `H_s` and entry `s` (SPEC 15.2); `H_0` is zero.
pub fn next_priority_hash(prev: B256, entry: &PriorityEntry) -> B256 {
    B256::from(entry.chain(&prev.0))
}

/// The contract's `BatchStatement` struct from the native one (same fields).
pub fn statement_struct(s: &NativeStatement) -> BatchStatement {
    BatchStatement {
        chainId: s.chain_id,
        rollup: Address::from(s.rollup.0),
        batchNumber: s.batch_number,
        oldRoot: B256::from(s.old_root),
        newRoot: B256::from(s.new_root),
        diffHash: B256::from(s.diff_hash),
        payoutRoot: B256::from(s.payout_root),
        firstPriorityOp: s.first_priority_op,
        nextPriorityOp: s.next_priority_op,
        priorityHashBefore: B256::from(s.priority_hash_before),
        priorityHashAfter: B256::from(s.priority_hash_after),
        timestamp: s.timestamp,
    }
}

/// The native statement from the contract's struct (as emitted in `BatchCommitted`).
pub fn native_statement(s: &BatchStatement) -> NativeStatement {
    NativeStatement {
        chain_id: s.chainId,
        rollup: L1Address(s.rollup.into_array()),
        batch_number: s.batchNumber,
        old_root: s.oldRoot.0,
        new_root: s.newRoot.0,
        diff_hash: s.diffHash.0,
        payout_root: s.payoutRoot.0,
        first_priority_op: s.firstPriorityOp,
        next_priority_op: s.nextPriorityOp,
        priority_hash_before: s.priorityHashBefore.0,
        priority_hash_after: s.priorityHashAfter.0,
        timestamp: s.timestamp,
    }
}

/// `statementHash(s)` as the contract computes it (SPEC 15.3).
pub fn statement_hash(s: &BatchStatement) -> B256 {
    B256::from(native_statement(s).hash())
}

/// One L1 payout of a batch (SPEC 15.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payout {
    /// L2 account index, or `REFUND_FROM_BASE + seq` for the refund of deposit `seq`.
    pub from: u64,
    pub to: Address,
    pub amount: u64,
}

impl From<state::settlement::Payout> for Payout {
    fn from(p: state::settlement::Payout) -> Payout {
        Payout {
            from: p.from,
            to: Address::from(p.to.0),
            amount: p.amount,
        }
    }
}

impl Payout {
    fn native(&self) -> state::settlement::Payout {
        state::settlement::Payout {
            from: self.from,
            to: L1Address(self.to.into_array()),
            amount: self.amount,
        }
    }
}

/// Bytes of one entry of `commitBatch`'s payout list: uint64 from ‖ address to ‖ uint64 amount.
pub const PAYOUT_ENTRY_LENGTH: usize = 36;

/// The payout list a commit carries (SPEC 15.5): the entries packed big-endian, in payout order.
pub fn encode_payouts(payouts: &[Payout]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payouts.len() * PAYOUT_ENTRY_LENGTH);
    for p in payouts {
        out.extend_from_slice(&p.from.to_be_bytes());
        out.extend_from_slice(p.to.as_slice());
        out.extend_from_slice(&p.amount.to_be_bytes());
    }
    out
}

/// Reads a commit's payout list back; `None` if its length is not a multiple of an entry.
pub fn decode_payouts(bytes: &[u8]) -> Option<Vec<Payout>> {
    if !bytes.len().is_multiple_of(PAYOUT_ENTRY_LENGTH) {
        return None;
    }
    let be64 = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_be_bytes(a)
    };
    Some(
        bytes
            .chunks_exact(PAYOUT_ENTRY_LENGTH)
            .map(|e| Payout {
                from: be64(&e[..8]),
                to: Address::from_slice(&e[8..28]),
                amount: be64(&e[28..]),
            })
            .collect(),
    )
}

/// The payout leaf of payout `index` of batch `batch` (SPEC 15.5).
pub fn payout_leaf(batch: u64, index: u64, p: &Payout) -> B256 {
    B256::from(state::settlement::payout_leaf(batch, index, &p.native()))
}

/// The SHA-256 payout tree of one batch (SPEC 15.5).
#[derive(Clone, Debug)]
pub struct PayoutTree(state::settlement::PayoutTree);

impl PayoutTree {
    pub fn new(batch: u64, payouts: &[Payout]) -> PayoutTree {
        let native: Vec<_> = payouts.iter().map(Payout::native).collect();
        PayoutTree(state::settlement::PayoutTree::new(batch, &native))
    }

    /// The root (zero for a batch without payouts).
    pub fn root(&self) -> B256 {
        B256::from(self.0.root())
    }

    /// The siblings of payout `index`, leaf level first.
    pub fn proof(&self, index: usize) -> Vec<B256> {
        self.0.proof(index).into_iter().map(B256::from).collect()
    }
}

/// Checks a payout proof as `Rollup.claimWithdrawal` does.
pub fn verify_payout(root: B256, leaf: B256, index: u64, proof: &[B256]) -> bool {
    let proof: Vec<[u8; 32]> = proof.iter().map(|h| h.0).collect();
    state::settlement::verify_payout(&root.0, &leaf.0, index, &proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payout_lists_round_trip_and_refuse_partial_entries() {
        let list = payouts(5);
        let bytes = encode_payouts(&list);
        assert_eq!(bytes.len(), 5 * PAYOUT_ENTRY_LENGTH);
        assert_eq!(decode_payouts(&bytes), Some(list));
        assert_eq!(decode_payouts(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode_payouts(&[]), Some(vec![]));
    }

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
