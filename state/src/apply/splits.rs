//! Applying the split payment (SPEC 19.4): the envelope of every account-signed transaction,
//! then the rules of [`crate::split::check_split`], then the writes.
//!
//! # Order of the checks
//!
//! 1. the sender exists and the signature verified under its key (`UNKNOWN_ACCOUNT`,
//!    `BAD_SIGNATURE`);
//! 2. not expired (`EXPIRED`), then the sender's nonce (`BAD_NONCE`, `NONCE_EXHAUSTED`);
//! 3. the split rules of 19.1 in their order (`NO_PAYEES`, `TOO_MANY_PAYEES`,
//!    `PAYEES_NOT_SORTED`, `SELF_PAYEE`, `ZERO_PART`, `SPLIT_OVERFLOW`);
//! 4. every payee exists, the first missing one named (`UNKNOWN_ACCOUNT`);
//! 5. a sender that is an agent: its passport, the sum being the payment (SPEC 20.4);
//! 6. the sender pays the sum and the fee before any credit (`INSUFFICIENT_BALANCE`); then the
//!    credits (each payee's part, the fee to the operator, who may be a payee too) keep every
//!    balance at most `2^63 - 1` (`BALANCE_OVERFLOW`).
//!
//! Every check runs before the first write, so a refused split changes nothing: all or
//! nothing.
//!
//! # Costs
//!
//! One lookup per payee for rule 4 and one staged credit per payee; staging searches the
//! ledger's touched accounts linearly, so a 1,024-payee split stages in about half a million
//! comparisons (well under a millisecond), next to its message hash (one permutation per part).

use super::{BlockContext, Effects, Ledger, Rejection, Staged, State};
use crate::account::OPERATOR;
use crate::crypto::schnorr::{EncodedKey, MessageHash};
use crate::passport::{Payees, Spend};
use crate::pubdata::PubdataOp;
use crate::split::{check_split, SplitRejection};
use crate::tx::Split;

impl From<SplitRejection> for Rejection {
    fn from(r: SplitRejection) -> Self {
        Rejection::Split(r)
    }
}

impl State {
    pub(super) fn apply_split(
        &mut self,
        t: &Split,
        key: &EncodedKey,
        id: MessageHash,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        let next_nonce = self.envelope(t.from, key, t.nonce, t.valid_until, ctx)?;
        self.check_unlocked(t.from)?;
        let sum = check_split(t.from, &t.parts)?;
        if let Some(p) = t.parts.iter().find(|p| self.account(p.to).is_none()) {
            return Err(Rejection::UnknownAccount(p.to));
        }
        let spend = Spend {
            value: sum,
            fee: t.fee,
            payees: Payees::Parts(&t.parts),
        };
        let charge = self.police(t.from, spend, ctx)?;
        let mut ledger = Ledger::default();
        ledger.debit(&self.accounts, t.from, sum, t.fee)?;
        for p in &t.parts {
            ledger.credit(&self.accounts, p.to, p.amount)?;
        }
        ledger.credit(&self.accounts, OPERATOR, t.fee)?;

        let op = PubdataOp::Split {
            from: t.from,
            parts: t.parts.clone(),
            fee: t.fee,
        };
        let staged = Staged {
            ledger,
            next_nonce,
            charge,
        };
        Ok(self.spend(t.from, id, op, staged))
    }
}
