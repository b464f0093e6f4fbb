//! What a batch puts on L1, derived only from what its proof binds (SPEC 16.3).
//!
//! The node's proof verifier checks the batch proof against a statement and reports it as a
//! [`ProvenBatch`]. Everything the submitter sends is derived from those values, or from data
//! hashed here and compared with them:
//!
//! - the per-transaction ops of the batch must hash to the proven pubdata commitment (SPEC
//!   10.2), so the payouts and the consumed priority ops come from the ops the proof applied,
//!   never from a JSON document another process could have edited;
//! - the withdrawal records taken from those ops must hash to the proven withdrawals commitment
//!   (SPEC 10.3);
//! - the consumed priority ops, completed with their L1 depositor, must chain (SHA-256, SPEC
//!   15.2) from the contract's queue hash before the batch to the one after it (checked by the
//!   submitter against L1 views), so a depositor changed in the database cannot redirect a
//!   refund.
//!
//! Not covered until the diff circuit lands: the state diff published as calldata is checked
//! against the roots by the writer at seal (SPEC 10.4), not here.

use state::pubdata::{decode_ops, pubdata_commitment, withdrawals_commitment};
use state::settlement::{settle_ops, OpsError, Payout, PriorityEntry};
use state::tx::L1Address;
use state::Digest;

/// The statement a verified batch proof binds (the node's verifier rebuilt it from its rows and
/// the proof verified against it).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProvenBatch {
    pub old_root: Digest,
    pub new_root: Digest,
    pub pubdata_commitment: Digest,
    pub withdrawals_commitment: Digest,
    /// L1 priority ops consumed: `[first_priority_op, next_priority_op)`.
    pub first_priority_op: u64,
    pub next_priority_op: u64,
    /// The batch timestamp every `valid_until` was checked against.
    pub timestamp: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettleError {
    #[error("the stored ops do not decode: {0}")]
    OpsUndecodable(String),
    #[error("the stored ops hash to {stored}, the proof binds {proven}")]
    OpsNotProven { stored: Digest, proven: Digest },
    #[error("the withdrawals of the ops hash to {stored}, the proof binds {proven}")]
    WithdrawalsNotProven { stored: Digest, proven: Digest },
    /// The ops themselves cannot be settled (`state::settlement::settle_ops`).
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("the ops consume priority ops up to {consumed}, the proof up to {proven}")]
    PriorityRange { consumed: u64, proven: u64 },
}

/// The L1 side of a proven batch: its payouts (SPEC 15.5 order) and the priority-queue entries
/// it consumed (SPEC 15.2), to be chained against the contract's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub payouts: Vec<Payout>,
    pub entries: Vec<PriorityEntry>,
}

/// Derives the settlement of a batch from its stored ops (`pubdata`, SPEC 10) after checking
/// them against `proven`; `depositor(seq)` is the L1 sender of deposit `seq` as the watcher
/// recorded it (checked later through the queue hash).
pub fn settle(
    proven: &ProvenBatch,
    pubdata: &[u8],
    depositor: impl Fn(u64) -> Option<L1Address>,
) -> Result<Settlement, SettleError> {
    let ops = decode_ops(pubdata).map_err(|e| SettleError::OpsUndecodable(format!("{e:?}")))?;
    let stored = pubdata_commitment(&ops);
    if stored != proven.pubdata_commitment {
        return Err(SettleError::OpsNotProven {
            stored,
            proven: proven.pubdata_commitment,
        });
    }
    let settled = settle_ops(&ops, proven.first_priority_op, depositor)?;
    if settled.next_priority_op != proven.next_priority_op {
        return Err(SettleError::PriorityRange {
            consumed: settled.next_priority_op,
            proven: proven.next_priority_op,
        });
    }
    let stored = withdrawals_commitment(&settled.withdrawals);
    if stored != proven.withdrawals_commitment {
        return Err(SettleError::WithdrawalsNotProven {
            stored,
            proven: proven.withdrawals_commitment,
        });
    }
    Ok(Settlement {
        entries: settled.entries(),
        payouts: settled.payouts,
    })
}

#[cfg(test)]
mod tests {
    use state::account::{AccountIndex, Amount, Nonce, Timestamp};
    use state::crypto::schnorr::SecretKey;
    use state::pubdata::{
        DepositStatus, ForcedStatus, PubdataOp, WithdrawalRecord, WithdrawalsCommitment,
    };
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

    fn proven(ops: &[PubdataOp]) -> ProvenBatch {
        let mut w = WithdrawalsCommitment::new();
        for r in [
            WithdrawalRecord {
                from: AccountIndex(2),
                to_l1: ALICE_L1,
                amount: amount(10),
            },
            WithdrawalRecord {
                from: AccountIndex(3),
                to_l1: ALICE_L1,
                amount: amount(40),
            },
        ] {
            w.absorb(&r);
        }
        ProvenBatch {
            old_root: Digest::ZERO,
            new_root: Digest::ZERO,
            pubdata_commitment: pubdata_commitment(ops),
            withdrawals_commitment: w.digest(),
            first_priority_op: 4,
            next_priority_op: 8,
            timestamp: 60,
        }
    }

    fn depositor(_: u64) -> Option<L1Address> {
        Some(DEPOSITOR)
    }

    #[test]
    fn payouts_and_entries_come_from_the_proven_ops() {
        let ops = ops();
        let s = settle(&proven(&ops), &state::pubdata::encode_ops(&ops), depositor).unwrap();
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
        // Redirect the first withdrawal: the ops no longer hash to what the proof binds.
        let ops = ops();
        let p = proven(&ops);
        let mut edited = ops.clone();
        edited[0] = PubdataOp::Withdraw {
            from: AccountIndex(2),
            to_l1: L1Address([0xee; 20]),
            amount: amount(10),
            fee: amount(1),
        };
        let err = settle(&p, &state::pubdata::encode_ops(&edited), depositor).unwrap_err();
        assert!(matches!(err, SettleError::OpsNotProven { .. }), "{err}");
    }

    #[test]
    fn withdrawals_must_be_the_proven_ones() {
        let ops = ops();
        let mut p = proven(&ops);
        p.withdrawals_commitment = Digest::ZERO;
        let err = settle(&p, &state::pubdata::encode_ops(&ops), depositor).unwrap_err();
        assert!(
            matches!(err, SettleError::WithdrawalsNotProven { .. }),
            "{err}"
        );
    }

    #[test]
    fn the_priority_range_must_be_the_proven_one() {
        let ops = ops();
        let mut p = proven(&ops);
        p.next_priority_op = 9;
        let bytes = state::pubdata::encode_ops(&ops);
        assert_eq!(
            settle(&p, &bytes, depositor).unwrap_err(),
            SettleError::PriorityRange {
                consumed: 8,
                proven: 9
            }
        );
        p.next_priority_op = 8;
        p.first_priority_op = 3;
        assert_eq!(
            settle(&p, &bytes, depositor).unwrap_err(),
            SettleError::Ops(OpsError::PriorityOutOfOrder {
                expected: 3,
                found: 4
            })
        );
        let p = proven(&ops);
        assert_eq!(
            settle(&p, &bytes, |_| None).unwrap_err(),
            SettleError::Ops(OpsError::UnknownDepositor(4))
        );
    }
}
