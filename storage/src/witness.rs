//! `batch_witness.witness`: what the prover and the submitter need about a batch besides its
//! transactions, as a typed, versioned JSON document.
//!
//! The writer builds it at seal; nobody parses it by hand. Field names are those of version 1
//! as written since the first migration, so batches sealed by older nodes still decode.

use serde::{Deserialize, Serialize};
use state::account::{AccountIndex, Amount};
use state::tx::L1Address;
use state::Digest;

/// The only version written today.
pub const WITNESS_VERSION: u32 = 1;

/// One withdrawal of the batch, in transaction order (the order of the proven withdrawals
/// commitment and of the L1 payout list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessWithdrawal {
    pub from: AccountIndex,
    pub to_l1: L1Address,
    pub amount: Amount,
}

/// A deposit the batch consumed but refused (refunded to its L1 depositor on finalize).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessRefund {
    /// The deposit's priority-queue serial.
    pub seq: u64,
    pub amount: Amount,
}

/// The batch witness document (version 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchWitness {
    pub version: u32,
    pub batch: u64,
    /// `[first_block, last_block]`.
    pub blocks: (u64, u64),
    /// `(block number, unix seconds)` of every block of the batch.
    pub block_times: Vec<(u64, u64)>,
    /// `[first_seq, last_seq]` (`last = first - 1` for an empty batch).
    pub seqs: (u64, u64),
    pub old_root: Digest,
    pub new_root: Digest,
    pub pubdata_commitment: Digest,
    pub withdrawals_commitment: Digest,
    /// L1 priority ops consumed: `[first, next)`.
    pub deposits: (u64, u64),
    pub withdrawals: Vec<WitnessWithdrawal>,
    pub refunds: Vec<WitnessRefund>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document exactly as the writer's `serde_json::json!` wrote it before this type
    /// existed: batches already in databases must keep decoding.
    #[test]
    fn decodes_the_version_1_documents_already_stored() {
        let zero = serde_json::to_value(Digest::ZERO).unwrap_or_default();
        let doc = serde_json::json!({
            "version": 1,
            "batch": 7,
            "blocks": [10, 12],
            "block_times": [[10, 1000], [11, 1001], [12, 1001]],
            "seqs": [100, 140],
            "old_root": zero,
            "new_root": zero,
            "pubdata_commitment": zero,
            "withdrawals_commitment": zero,
            "deposits": [3, 5],
            "withdrawals": [{"from": 4, "to_l1": "0x00000000000000000000000000000000000000aa", "amount": 25}],
            "refunds": [{"seq": 4, "amount": 9}],
        });
        let w: BatchWitness = match serde_json::from_value(doc.clone()) {
            Ok(w) => w,
            Err(e) => panic!("stored witness does not decode: {e}"),
        };
        assert_eq!(w.withdrawals[0].to_l1.0[19], 0xaa);
        assert_eq!(w.withdrawals[0].amount.get(), 25);
        assert_eq!(w.refunds[0].seq, 4);
        assert_eq!(w.block_times.len(), 3);
        // And writes the same document back.
        assert_eq!(serde_json::to_value(&w).ok(), Some(doc));
    }

    #[test]
    fn a_malformed_payout_address_is_refused() {
        let bad = serde_json::json!({"from": 1, "to_l1": "0x12", "amount": 1});
        assert!(serde_json::from_value::<WitnessWithdrawal>(bad).is_err());
        let bad = serde_json::json!({"from": 1, "to_l1": "00000000000000000000000000000000000000aa", "amount": 1});
        assert!(serde_json::from_value::<WitnessWithdrawal>(bad).is_err());
    }
}
