//! Staging: a transaction's balance changes are computed and checked in a [`Ledger`] before any
//! is written, so a rejected transaction changes nothing.

use crate::account::{Account, AccountIndex, Amount, Nonce};
use crate::passport::Charge;

use super::{BalanceChange, Rejection};

/// A signed spend that passed every rule, staged for [`State::commit_spend`].
pub(super) struct Staged {
    pub(super) ledger: Ledger,
    pub(super) next_nonce: Nonce,
    /// What the spend leaves in the signer's passport, if the signer is an agent.
    pub(super) charge: Option<Charge>,
}

/// Balance changes of one transaction, staged and checked before any is written.
#[derive(Default)]
pub(super) struct Ledger(Vec<BalanceChange>);

impl Ledger {
    pub(super) fn entry(
        &mut self,
        accounts: &[Account],
        account: AccountIndex,
    ) -> Result<&mut BalanceChange, Rejection> {
        let pos = match self.0.iter().position(|c| c.account == account) {
            Some(pos) => pos,
            None => {
                let before = accounts
                    .get(account.0 as usize)
                    .ok_or(Rejection::UnknownAccount(account))?
                    .balance;
                self.0.push(BalanceChange {
                    account,
                    before,
                    after: before,
                });
                self.0.len() - 1
            }
        };
        Ok(&mut self.0[pos])
    }

    /// Takes `amount + fee` from `account`.
    pub(super) fn debit(
        &mut self,
        accounts: &[Account],
        account: AccountIndex,
        amount: Amount,
        fee: Amount,
    ) -> Result<(), Rejection> {
        // Both are below 2^63, so the sum fits in a u64.
        let required = amount.get() + fee.get();
        let entry = self.entry(accounts, account)?;
        entry.after = entry
            .after
            .get()
            .checked_sub(required)
            .and_then(Amount::new)
            .ok_or(Rejection::InsufficientBalance {
                available: entry.after,
                required,
            })?;
        Ok(())
    }

    /// Gives `amount` to `account`; a zero credit touches nothing.
    pub(super) fn credit(
        &mut self,
        accounts: &[Account],
        account: AccountIndex,
        amount: Amount,
    ) -> Result<(), Rejection> {
        if amount.is_zero() {
            return Ok(());
        }
        let entry = self.entry(accounts, account)?;
        entry.after = entry
            .after
            .checked_add(amount)
            .ok_or(Rejection::BalanceOverflow { account })?;
        Ok(())
    }

    /// The balance of `account` with this transaction's changes so far.
    pub(super) fn staged(
        &mut self,
        accounts: &[Account],
        account: AccountIndex,
    ) -> Result<Amount, Rejection> {
        Ok(self.entry(accounts, account)?.after)
    }

    /// Gives `amount` to an account created by this transaction after every check (its
    /// balance was 0, so the credit cannot overflow).
    pub(super) fn credit_new(&mut self, account: AccountIndex, amount: Amount) {
        self.0.push(BalanceChange {
            account,
            before: Amount::ZERO,
            after: amount,
        });
    }

    /// Writes the staged balances; returns the changes that are not no-ops.
    pub(super) fn commit(
        self,
        accounts: &mut [Account],
        dirty: &mut Vec<u32>,
    ) -> Vec<BalanceChange> {
        let mut changes = self.0;
        changes.retain(|c| c.before != c.after);
        for c in &changes {
            accounts[c.account.0 as usize].balance = c.after;
            dirty.push(c.account.0);
        }
        changes
    }
}
