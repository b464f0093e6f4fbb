//! The passport rules (SPEC 20.4): what an agent's spend must satisfy, and who may act on an
//! agent.
//!
//! # Order of the spend rules
//!
//! After the transaction's own rules and before its balances:
//!
//! 1. the passport is not revoked (`REVOKED`);
//! 2. `T <= expiry` (`POLICY_EXPIRED`);
//! 3. `fee <= max_fee` (`POLICY_FEE`);
//! 4. `value <= max_payment` (`POLICY_PAYMENT`);
//! 5. every payee is on the allow-list, if it has any (`POLICY_PAYEE`; a withdrawal to L1
//!    and a split under a list, too: a split's payees are credited by the split-credit chain,
//!    which proves no list membership, so an agent under a list pays one listed payee at a
//!    time, SPEC 20.4);
//! 6. `spent + value + fee <= cap`, with `spent` reset to 0 in a new window (`POLICY_CAP`).
//!
//! `value` is what the transaction moves out of the agent's balance besides the fee: a
//! transfer's or withdrawal's amount, a split's sum, an open's escrow, 0 for a settle or close
//! (their fee still counts).

use super::{Passport, PassportRejection};
use crate::account::{AccountIndex, Amount, Timestamp};
use crate::split::Payout;

/// Who a spend pays, for the allow-list.
#[derive(Clone, Copy, Debug)]
pub enum Payees<'a> {
    /// No new payee (a settlement or close: the stream's payee was judged at its open).
    None,
    One(AccountIndex),
    /// A split's parts (refused under a list, whatever they are: module docs).
    Parts(&'a [Payout]),
    /// A withdrawal to L1: no account to find on a list.
    L1,
}

/// One spend by an agent, as the rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Spend<'a> {
    pub value: Amount,
    pub fee: Amount,
    pub payees: Payees<'a>,
}

impl Spend<'_> {
    /// A spend of its fee alone, paying nobody new (a settlement, a close, a policy action).
    pub fn fee_only(fee: Amount) -> Spend<'static> {
        Spend {
            value: Amount::ZERO,
            fee,
            payees: Payees::None,
        }
    }
}

/// What an accepted spend leaves in the passport.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Charge {
    pub window_id: u64,
    pub spent: Amount,
}

/// Judges `spend` by the agent's passport at block time `now` (module docs, in order).
pub fn charge(
    p: &Passport,
    spend: &Spend<'_>,
    now: Timestamp,
) -> Result<Charge, PassportRejection> {
    let policy = p.policy();
    if p.is_revoked() {
        return Err(PassportRejection::Revoked);
    }
    if now > policy.expiry {
        return Err(PassportRejection::PolicyExpired {
            expiry: policy.expiry,
            now,
        });
    }
    if spend.fee > policy.max_fee {
        return Err(PassportRejection::PolicyFee {
            fee: spend.fee,
            max: policy.max_fee,
        });
    }
    if spend.value > policy.max_payment {
        return Err(PassportRejection::PolicyPayment {
            value: spend.value,
            max: policy.max_payment,
        });
    }
    let allow = &policy.allow;
    if !allow.is_anyone() {
        match spend.payees {
            Payees::None => {}
            Payees::One(to) if !allow.allows(to) => return Err(PassportRejection::PolicyPayee(to)),
            Payees::One(_) => {}
            Payees::Parts(_) => return Err(PassportRejection::PolicySplit),
            Payees::L1 => return Err(PassportRejection::PolicyWithdrawal),
        }
    }
    let window_id = policy.window_id(now);
    let (last_window, last_spent) = p.spent();
    let spent = if window_id == last_window {
        last_spent
    } else {
        Amount::ZERO
    };
    // Each term is below 2^63: the sum fits in a u64 only for the last two, so add in u128.
    let required = spend.value.get() + spend.fee.get();
    let total = u128::from(spent.get()) + u128::from(required);
    if total > u128::from(policy.cap.get()) {
        return Err(PassportRejection::PolicyCap {
            cap: policy.cap,
            spent,
            required,
        });
    }
    Ok(Charge {
        window_id,
        // total <= cap < 2^63.
        spent: Amount::new(total as u64).unwrap_or(Amount::MAX),
    })
}

/// The passport of `agent` if `signer` owns it (`NOT_AN_AGENT`, then `NOT_OWNER`).
pub fn owned_by(
    passport: Option<&Passport>,
    agent: AccountIndex,
    signer: AccountIndex,
) -> Result<&Passport, PassportRejection> {
    let p = passport.ok_or(PassportRejection::NotAnAgent(agent))?;
    if p.owner() != signer {
        return Err(PassportRejection::NotOwner { owner: p.owner() });
    }
    Ok(p)
}
