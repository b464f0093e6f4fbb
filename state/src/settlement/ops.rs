//! From a batch's pubdata ops to what it settles on L1 (SPEC 15.2, 15.5): the priority entries
//! it consumed, with the status each op published, and its payouts in tree order (withdrawals in
//! op order, then refunds).
//!
//! The bridge derives the payouts it submits from this, and the prover derives the witnesses of
//! the priority and payout circuits from it, so both read the same ops the same way. The only
//! input besides the ops is each deposit's L1 depositor, which an op does not carry; it is bound
//! later by the queue hash (the entry hashes it).

use crate::pubdata::{DepositStatus, ForcedStatus, PubdataOp, WithdrawalRecord};
use crate::tx::{L1Address, Transaction};

use super::{Consumed, Payout, PriorityEntry, REFUND_FROM_BASE};

/// Why ops cannot be settled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpsError {
    #[error("priority op {found} applied where serial {expected} was due")]
    PriorityOutOfOrder { expected: u64, found: u64 },
    #[error("deposit {0} is unknown to the L1 watcher (no depositor to refund)")]
    UnknownDepositor(u64),
}

/// What a batch's ops settle on L1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpsSettlement {
    /// The withdrawal records (SPEC 10.3) in op order: L2 withdraws and applied forced
    /// withdrawals, exactly what the withdrawals commitment chains.
    pub withdrawals: Vec<WithdrawalRecord>,
    /// The payout list of the payout tree: the withdrawals, then the refunds.
    pub payouts: Vec<Payout>,
    /// The priority entries consumed, in serial order, with the status each op published.
    pub consumed: Vec<Consumed>,
    /// The serial after the last consumed one (`first` when none).
    pub next_priority_op: u64,
}

impl OpsSettlement {
    /// The consumed entries alone, as the queue chain hashes them.
    pub fn entries(&self) -> Vec<PriorityEntry> {
        self.consumed.iter().map(|c| c.entry.clone()).collect()
    }
}

/// Settles `ops`, whose priority ops must consume serials `first, first + 1, ...` in order;
/// `depositor(seq)` is the L1 sender of deposit `seq`.
pub fn settle_ops(
    ops: &[PubdataOp],
    first: u64,
    depositor: impl Fn(u64) -> Option<L1Address>,
) -> Result<OpsSettlement, OpsError> {
    let mut withdrawals = Vec::new();
    let mut refunds = Vec::new();
    let mut consumed = Vec::new();
    let mut next = first;
    let mut expect = |seq: u64| {
        if seq != next {
            return Err(OpsError::PriorityOutOfOrder {
                expected: next,
                found: seq,
            });
        }
        next += 1;
        Ok(())
    };
    for op in ops {
        match op.clone() {
            PubdataOp::Withdraw {
                from,
                to_l1,
                amount,
                ..
            } => withdrawals.push(WithdrawalRecord {
                from,
                to_l1,
                amount,
            }),
            PubdataOp::Deposit {
                seq,
                to,
                amount,
                status,
            } => {
                expect(seq)?;
                let depositor = depositor(seq).ok_or(OpsError::UnknownDepositor(seq))?;
                consumed.push(Consumed {
                    entry: PriorityEntry::Deposit {
                        serial: seq,
                        depositor,
                        recipient: to.0,
                        amount: amount.get(),
                    },
                    status: status as u8,
                });
                if status == DepositStatus::Refunded {
                    refunds.push(Payout {
                        from: REFUND_FROM_BASE + seq,
                        to: depositor,
                        amount: amount.get(),
                    });
                }
            }
            PubdataOp::ForcedWithdraw {
                seq,
                requested_at,
                withdraw,
                status,
            } => {
                expect(seq)?;
                consumed.push(Consumed {
                    entry: PriorityEntry::ForcedWithdrawal {
                        serial: seq,
                        requested_at: requested_at.get(),
                        withdraw_tx: Transaction::Withdraw(withdraw).encode(),
                    },
                    status: status as u8,
                });
                if status == ForcedStatus::Applied {
                    withdrawals.push(WithdrawalRecord {
                        from: withdraw.from,
                        to_l1: withdraw.to_l1,
                        amount: withdraw.amount,
                    });
                }
            }
            // Nothing for L1 to pay out or consume: the money stays inside the rollup.
            PubdataOp::Register { .. }
            | PubdataOp::Transfer { .. }
            | PubdataOp::StreamOpen { .. }
            | PubdataOp::StreamSettle { .. }
            | PubdataOp::StreamSettlePath { .. }
            | PubdataOp::StreamClose { .. }
            | PubdataOp::Split { .. }
            | PubdataOp::Passport(_)
            | PubdataOp::RegisterShares { .. }
            | PubdataOp::Distribute { .. } => {}
        }
    }
    let mut payouts: Vec<Payout> = withdrawals.iter().map(Payout::from).collect();
    payouts.extend(refunds);
    Ok(OpsSettlement {
        withdrawals,
        payouts,
        consumed,
        next_priority_op: next,
    })
}

impl From<&WithdrawalRecord> for Payout {
    fn from(w: &WithdrawalRecord) -> Payout {
        Payout {
            from: u64::from(w.from.0),
            to: w.to_l1,
            amount: w.amount.get(),
        }
    }
}
