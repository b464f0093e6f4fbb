//! What an applied transaction did ([`Effects`]): the balances, nonces and `ext` digests it
//! changed and its outcome for the L1 bookkeeping, as the sequencer and the prover read them.

use crate::account::{AccountIndex, Amount, Nonce};
use crate::crypto::schnorr::MessageHash;
use crate::hash::Digest;
use crate::pubdata::{ForcedStatus, PubdataOp, WithdrawalRecord};
use crate::tx::TxKind;

use super::Rejection;

/// A balance that a transaction changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BalanceChange {
    pub account: AccountIndex,
    pub before: Amount,
    pub after: Amount,
}

/// A nonce that a transaction changed (always `after = before + 1`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NonceChange {
    pub account: AccountIndex,
    pub before: Nonce,
    pub after: Nonce,
}

/// An account's `ext` digest that a transaction changed, and the slot of its stream book it
/// changed, if any (a passport or a lane changes `ext` without a slot).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExtChange {
    pub account: AccountIndex,
    pub slot: Option<crate::stream::StreamSlot>,
    pub before: Digest,
    pub after: Digest,
}

/// Why a deposit was refunded instead of credited.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RefundReason {
    /// The destination account does not exist.
    UnknownAccount,
    /// Crediting would push the destination's balance above 2^63 - 1.
    BalanceOverflow,
}

/// What happened to a deposit that was consumed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DepositOutcome {
    Credited,
    Refunded { reason: RefundReason },
}

/// What happened to a forced withdrawal that was consumed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ForcedOutcome {
    /// Applied like a withdraw: the amount is paid out on L1.
    Applied,
    /// The embedded withdraw breaks a rule; nothing changed but the serial counter.
    Rejected(Rejection),
}

impl ForcedOutcome {
    /// The status published in the pubdata op (0 = applied, else the reason).
    pub fn status(&self) -> ForcedStatus {
        match self {
            ForcedOutcome::Applied => ForcedStatus::Applied,
            // apply_forced only builds outcomes whose rejection has a status.
            ForcedOutcome::Rejected(r) => {
                ForcedStatus::from_rejection(r).unwrap_or(ForcedStatus::BadSignature)
            }
        }
    }
}

/// Everything an applied transaction did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Effects {
    /// The transaction id (its message hash).
    pub id: MessageHash,
    pub kind: TxKind,
    /// The op published for data availability.
    pub pubdata: PubdataOp,
    /// Net balance changes, one per touched account, in order of first touch.
    pub balances: Vec<BalanceChange>,
    /// The sender's nonce change (transfers and withdrawals).
    pub nonce: Option<NonceChange>,
    /// The index assigned by a registration.
    pub registered: Option<AccountIndex>,
    /// The withdrawal to release on L1.
    pub withdrawal: Option<WithdrawalRecord>,
    /// The outcome of a deposit.
    pub deposit: Option<DepositOutcome>,
    /// The outcome of a forced withdrawal.
    pub forced: Option<ForcedOutcome>,
    /// The `ext` changes, at most one per account (a stream's payer, an agent's passport, an
    /// account's nonce lanes), in order of first change.
    pub ext: Vec<ExtChange>,
}

impl Effects {
    /// The effects of a transaction whose op is `pubdata` (its kind is the op's).
    pub(super) fn new(id: MessageHash, pubdata: PubdataOp) -> Self {
        Effects {
            id,
            kind: pubdata.kind(),
            pubdata,
            balances: Vec::new(),
            nonce: None,
            registered: None,
            withdrawal: None,
            deposit: None,
            forced: None,
            ext: Vec::new(),
        }
    }
}
