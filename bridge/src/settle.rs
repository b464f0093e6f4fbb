//! What a batch puts on L1, derived only from what its proof binds (SPEC 16.3).
//!
//! The node's proof verifier checks the batch proof against the L1 statement
//! (`state::settlement::BatchStatement`, SPEC 15.3) the node rebuilt from its own rows and
//! reports it as the [`ProvenBatch`]. Everything the submitter sends is that statement's, or
//! data hashed here and compared with it:
//!
//! - the state diff published as calldata must hash to the proven `diff_hash` (the settlement
//!   proof binds it to the old and new roots, SPEC 13.7);
//! - the payouts are taken from the batch's per-transaction ops (SPEC 10) and must build the
//!   proven `payout_root` (SPEC 15.5), so a withdrawal or refund edited in the database is
//!   refused, never paid;
//! - the consumed priority ops, completed with their L1 depositor, must chain (SHA-256, SPEC
//!   15.2) from the proven queue hash before the batch to the proven one after it (and the
//!   submitter checks both against the contract's views).

use state::pubdata::decode_ops;
use state::settlement::{
    diff_hash, priority_chain, settle_ops, OpsError, Payout, PayoutTree, PriorityEntry,
};
use state::tx::L1Address;

/// The statement a verified batch proof binds: the node's verifier rebuilt it from its rows
/// and the watcher's, and the proof verified against it.
pub type ProvenBatch = state::settlement::BatchStatement;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettleError {
    #[error("the stored ops do not decode: {0}")]
    OpsUndecodable(String),
    #[error("the stored state diff hashes to 0x{stored}, the proof binds 0x{proven}")]
    DiffNotProven { stored: String, proven: String },
    /// The ops themselves cannot be settled (`state::settlement::settle_ops`).
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("the ops consume priority ops up to {consumed}, the proof up to {proven}")]
    PriorityRange { consumed: u64, proven: u64 },
    #[error("the payouts of the stored ops build root 0x{stored}, the proof binds 0x{proven}")]
    PayoutsNotProven { stored: String, proven: String },
    #[error("the consumed priority ops chain to 0x{stored}, the proof binds 0x{proven}")]
    EntriesNotProven { stored: String, proven: String },
}

/// The L1 side of a proven batch: its payouts (SPEC 15.5 order) and the priority-queue entries
/// it consumed (SPEC 15.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub payouts: Vec<Payout>,
    pub entries: Vec<PriorityEntry>,
}

/// Derives the settlement of a batch from its stored ops (`pubdata`, SPEC 10) and checks it,
/// with the stored state diff (`l1_pubdata`), against `proven`; `depositor(seq)` is the L1
/// sender of deposit `seq` as the watcher recorded it (checked through the queue hash).
pub fn settle(
    proven: &ProvenBatch,
    pubdata: &[u8],
    l1_pubdata: &[u8],
    depositor: impl Fn(u64) -> Option<L1Address>,
) -> Result<Settlement, SettleError> {
    let stored = diff_hash(l1_pubdata);
    if stored != proven.diff_hash {
        return Err(SettleError::DiffNotProven {
            stored: hex::encode(stored),
            proven: hex::encode(proven.diff_hash),
        });
    }
    let ops = decode_ops(pubdata).map_err(|e| SettleError::OpsUndecodable(format!("{e:?}")))?;
    let settled = settle_ops(&ops, proven.first_priority_op, depositor)?;
    if settled.next_priority_op != proven.next_priority_op {
        return Err(SettleError::PriorityRange {
            consumed: settled.next_priority_op,
            proven: proven.next_priority_op,
        });
    }
    let root = PayoutTree::new(proven.batch_number, &settled.payouts).root();
    if root != proven.payout_root {
        return Err(SettleError::PayoutsNotProven {
            stored: hex::encode(root),
            proven: hex::encode(proven.payout_root),
        });
    }
    let entries = settled.entries();
    let chained = priority_chain(proven.priority_hash_before, &entries);
    if chained != proven.priority_hash_after {
        return Err(SettleError::EntriesNotProven {
            stored: hex::encode(chained),
            proven: hex::encode(proven.priority_hash_after),
        });
    }
    Ok(Settlement {
        entries,
        payouts: settled.payouts,
    })
}

#[cfg(test)]
mod tests {
    use state::account::{AccountIndex, Amount, Nonce, Timestamp};
    use state::crypto::schnorr::SecretKey;
    use state::pubdata::{DepositStatus, ForcedStatus, PubdataOp};
    use state::settlement::REFUND_FROM_BASE;
    use state::tx::{Domain, UnsignedWithdraw};

    use super::*;

    const ALICE_L1: L1Address = L1Address([0xa1; 20]);
    const DEPOSITOR: L1Address = L1Address([0xd0; 20]);

    fn amount(v: u64) -> Amount {
        Amount::new(v).unwrap()
    }

    /// A withdraw, a refunded deposit (serial 4), a credited one (5), an applied forced
    /// withdrawal (6) and a rejected one (7).
    fn ops() -> Vec<PubdataOp> {
        let sk = SecretKey::from_bytes(&[7; 40]).unwrap();
        let domain = Domain {
            chain_id: 31337,
            rollup: [0x5f; 20],
        };
        let w = UnsignedWithdraw {
            from: AccountIndex(3),
            to_l1: ALICE_L1,
            amount: amount(40),
            fee: amount(1),
            nonce: Nonce::new(0).unwrap(),
            valid_until: Timestamp::new(99).unwrap(),
        }
        .sign(&domain, &sk);
        vec![
            PubdataOp::Withdraw {
                from: AccountIndex(2),
                to_l1: ALICE_L1,
                amount: amount(10),
                fee: amount(1),
            },
            PubdataOp::Deposit {
                seq: 4,
                to: AccountIndex(77),
                amount: amount(500),
                status: DepositStatus::Refunded,
            },
            PubdataOp::Deposit {
                seq: 5,
                to: AccountIndex(2),
                amount: amount(600),
                status: DepositStatus::Credited,
            },
            PubdataOp::ForcedWithdraw {
                seq: 6,
                requested_at: Timestamp::new(50).unwrap(),
                withdraw: w,
                status: ForcedStatus::Applied,
            },
            PubdataOp::ForcedWithdraw {
                seq: 7,
                requested_at: Timestamp::new(51).unwrap(),
                withdraw: w,
                status: ForcedStatus::BadNonce,
            },
        ]
    }

    const DIFF: &[u8] = b"the state diff bytes";

    /// The statement an honest proof of `ops` binds (what the node's verifier reports).
    fn proven(ops: &[PubdataOp]) -> ProvenBatch {
        let settled = settle_ops(ops, 4, depositor).unwrap();
        let before = [0x11; 32];
        ProvenBatch {
            chain_id: 31337,
            rollup: L1Address([0x5f; 20]),
            batch_number: 9,
            old_root: [1; 32],
            new_root: [2; 32],
            diff_hash: diff_hash(DIFF),
            payout_root: PayoutTree::new(9, &settled.payouts).root(),
            first_priority_op: 4,
            next_priority_op: 8,
            priority_hash_before: before,
            priority_hash_after: priority_chain(before, &settled.entries()),
            timestamp: 60,
        }
    }

    fn depositor(_: u64) -> Option<L1Address> {
        Some(DEPOSITOR)
    }

    fn settle_ops_bytes(
        p: &ProvenBatch,
        ops: &[PubdataOp],
        depositor: impl Fn(u64) -> Option<L1Address>,
    ) -> Result<Settlement, SettleError> {
        settle(p, &state::pubdata::encode_ops(ops), DIFF, depositor)
    }

    #[test]
    fn payouts_and_entries_come_from_the_proven_ops() {
        let ops = ops();
        let s = settle_ops_bytes(&proven(&ops), &ops, depositor).unwrap();
        let payouts: Vec<(u64, L1Address, u64)> =
            s.payouts.iter().map(|p| (p.from, p.to, p.amount)).collect();
        assert_eq!(
            payouts,
            vec![
                (2, ALICE_L1, 10),
                (3, ALICE_L1, 40),
                (REFUND_FROM_BASE + 4, DEPOSITOR, 500)
            ]
        );
        let serials: Vec<u64> = s.entries.iter().map(PriorityEntry::serial).collect();
        assert_eq!(serials, vec![4, 5, 6, 7]);
        let PriorityEntry::ForcedWithdrawal { withdraw_tx, .. } = &s.entries[2] else {
            panic!("serial 6 is a forced withdrawal");
        };
        assert_eq!(withdraw_tx.len(), 129);
    }

    #[test]
    fn ops_edited_in_the_database_are_refused() {
        // Redirect the first withdrawal: its payout leaf changes, so does the root.
        let ops = ops();
        let p = proven(&ops);
        let mut edited = ops.clone();
        edited[0] = PubdataOp::Withdraw {
            from: AccountIndex(2),
            to_l1: L1Address([0xee; 20]),
            amount: amount(10),
            fee: amount(1),
        };
        let err = settle_ops_bytes(&p, &edited, depositor).unwrap_err();
        assert!(matches!(err, SettleError::PayoutsNotProven { .. }), "{err}");
    }

    #[test]
    fn the_state_diff_must_be_the_proven_one() {
        let ops = ops();
        let p = proven(&ops);
        let bytes = state::pubdata::encode_ops(&ops);
        let err = settle(&p, &bytes, b"another diff", depositor).unwrap_err();
        assert!(matches!(err, SettleError::DiffNotProven { .. }), "{err}");
    }

    #[test]
    fn a_depositor_edited_in_the_database_is_refused() {
        // The refund of deposit 4 would go elsewhere; the entry it chains differs too, and
        // the payout root comes first.
        let ops = ops();
        let p = proven(&ops);
        let other = |_: u64| Some(L1Address([0xee; 20]));
        let err = settle_ops_bytes(&p, &ops, other).unwrap_err();
        assert!(matches!(err, SettleError::PayoutsNotProven { .. }), "{err}");
        // Without refunds the queue hash catches it.
        let credited: Vec<PubdataOp> = ops
            .iter()
            .filter(|op| !matches!(op, PubdataOp::Deposit { seq: 4, .. }))
            .cloned()
            .collect();
        let mut p = proven(&ops);
        p.first_priority_op = 5;
        let settled = settle_ops(&credited, 5, depositor).unwrap();
        p.payout_root = PayoutTree::new(9, &settled.payouts).root();
        p.priority_hash_after = priority_chain(p.priority_hash_before, &settled.entries());
        settle_ops_bytes(&p, &credited, depositor).unwrap();
        let err = settle_ops_bytes(&p, &credited, other).unwrap_err();
        assert!(matches!(err, SettleError::EntriesNotProven { .. }), "{err}");
    }

    #[test]
    fn the_priority_range_must_be_the_proven_one() {
        let ops = ops();
        let mut p = proven(&ops);
        p.next_priority_op = 9;
        assert_eq!(
            settle_ops_bytes(&p, &ops, depositor).unwrap_err(),
            SettleError::PriorityRange {
                consumed: 8,
                proven: 9
            }
        );
        p.next_priority_op = 8;
        p.first_priority_op = 3;
        assert_eq!(
            settle_ops_bytes(&p, &ops, depositor).unwrap_err(),
            SettleError::Ops(OpsError::PriorityOutOfOrder {
                expected: 3,
                found: 4
            })
        );
        let p = proven(&ops);
        assert_eq!(
            settle_ops_bytes(&p, &ops, |_| None).unwrap_err(),
            SettleError::Ops(OpsError::UnknownDepositor(4))
        );
    }
}
