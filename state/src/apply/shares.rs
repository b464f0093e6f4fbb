//! Applying the revenue-share transactions (SPEC 19.6): registering an account's shares, and
//! a distribute that pays its whole balance out by them; and the lock that keeps every other
//! spend from an account with shares.
//!
//! # Order of the checks
//!
//! Register shares (signed by the account): the envelope (signer, signature, expiry, nonce);
//! the shares (`NO_PAYEES`, `TOO_MANY_PAYEES`, `PAYEES_NOT_SORTED`, `SELF_PAYEE`, `ZERO_PART`,
//! `SHARES_NOT_WHOLE`); `SHARES_ALREADY_SET`; every payee exists (`UNKNOWN_ACCOUNT`); an agent's
//! passport for the fee; the fee.
//!
//! Distribute (signed by anyone): the envelope; the account has shares (`NO_SHARES`); an agent
//! signer's passport for the fee; the signer pays the fee (`INSUFFICIENT_BALANCE`); the
//! account's balance after that is positive (`NOTHING_TO_DISTRIBUTE`); the payouts by the
//! shares (SPEC 19.3) and the fee credited, none past `2^63 - 1` (`BALANCE_OVERFLOW`).
//!
//! # Invariants
//!
//! Shares never change once registered; the account's balance leaves only by distribute (every
//! other spend it signs is refused `SHARES_LOCKED`, [`State::check_unlocked`]); a distribute
//! conserves money (the parts add up to the balance).

use super::{BlockContext, Effects, Ledger, Rejection, Staged, State};
use crate::account::{AccountIndex, Amount, OPERATOR};
use crate::crypto::schnorr::{EncodedKey, MessageHash};
use crate::passport::Spend;
use crate::pubdata::PubdataOp;
use crate::split::{Shares, SplitRejection};
use crate::tx::{Distribute, RegisterShares};

impl State {
    /// The registered shares of `account`, if any.
    pub fn shares_of(&self, account: AccountIndex) -> Option<&Shares> {
        self.shares.get(&account.0)
    }

    /// `SHARES_LOCKED` for a spend signed by an account with shares.
    pub(super) fn check_unlocked(&self, from: AccountIndex) -> Result<(), Rejection> {
        if self.shares.contains_key(&from.0) {
            return Err(SplitRejection::SharesLocked(from).into());
        }
        Ok(())
    }

    pub(super) fn apply_register_shares(
        &mut self,
        t: &RegisterShares,
        key: &EncodedKey,
        id: MessageHash,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        let account = t.account;
        let next_nonce = self.envelope(account, key, t.nonce, t.valid_until, ctx)?;
        let shares = Shares::new(account, t.parts.clone())?;
        if self.shares.contains_key(&account.0) {
            return Err(SplitRejection::SharesAlreadySet(account).into());
        }
        if let Some(&(to, _)) = t.parts.iter().find(|p| self.account(p.0).is_none()) {
            return Err(Rejection::UnknownAccount(to));
        }
        let charge = self.police(account, Spend::fee_only(t.fee), ctx)?;
        let mut ledger = Ledger::default();
        ledger.debit(&self.accounts, account, Amount::ZERO, t.fee)?;
        ledger.credit(&self.accounts, OPERATOR, t.fee)?;

        let op = PubdataOp::RegisterShares {
            account,
            parts: t.parts.clone(),
            fee: t.fee,
        };
        let staged = Staged {
            ledger,
            next_nonce,
            charge,
        };
        let mut effects = self.spend(account, id, op, staged);
        self.shares.insert(account.0, shares);
        self.refresh_ext(account, None, &mut effects);
        Ok(effects)
    }

    pub(super) fn apply_distribute(
        &mut self,
        t: &Distribute,
        key: &EncodedKey,
        id: MessageHash,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        let signer = t.body.signer;
        let account = t.body.account;
        let next_nonce = self.envelope(signer, key, t.nonce, t.valid_until, ctx)?;
        let shares = self
            .shares
            .get(&account.0)
            .ok_or(SplitRejection::NoShares(account))?;
        let charge = self.police(signer, Spend::fee_only(t.fee), ctx)?;
        let mut ledger = Ledger::default();
        ledger.debit(&self.accounts, signer, Amount::ZERO, t.fee)?;
        let balance = ledger.staged(&self.accounts, account)?;
        let payouts = shares.distribute(balance)?;
        ledger.debit(&self.accounts, account, balance, Amount::ZERO)?;
        for p in &payouts {
            ledger.credit(&self.accounts, p.to, p.amount)?;
        }
        ledger.credit(&self.accounts, OPERATOR, t.fee)?;

        let op = PubdataOp::Distribute {
            body: t.body,
            fee: t.fee,
        };
        let staged = Staged {
            ledger,
            next_nonce,
            charge,
        };
        Ok(self.spend(signer, id, op, staged))
    }
}
