//! The kinds of version 1 (register, transfer, withdraw, forced withdrawal, deposit; module docs
//! of [`super`] for their rules in order) and the staging and commit of a signed spend that
//! every spending kind shares.

use crate::account::{Account, AccountIndex, Nonce, MAX_U63, OPERATOR};
use crate::crypto::schnorr::{EncodedKey, MessageHash};
use crate::lanes::Lane;
use crate::passport::{Payees, Spend};
use crate::pubdata::{DepositStatus, ForcedStatus, PubdataOp, WithdrawalRecord};
use crate::tx::{Deposit, ForcedWithdraw, Register, Transfer, Withdraw};

use super::{
    BlockContext, DepositOutcome, Effects, ForcedOutcome, Ledger, NonceChange, RefundReason,
    Rejection, Staged, State,
};

impl State {
    pub(super) fn apply_register(
        &mut self,
        r: &Register,
        id: MessageHash,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        Self::check_expiry(r.valid_until, ctx)?;
        if let Some(existing) = self.index_of_key(&EncodedKey::from(r.pubkey)) {
            return Err(Rejection::DuplicateKey { existing });
        }
        if self.num_accounts() >= self.max_accounts {
            return Err(Rejection::StateFull);
        }
        let index = self.push_account(r.pubkey);
        let mut effects = Effects::new(
            id,
            PubdataOp::Register {
                index,
                pubkey: r.pubkey,
            },
        );
        effects.registered = Some(index);
        Ok(effects)
    }

    /// Writes a validated spend: staged balances, the sender's next nonce in its lane, what an
    /// agent spent, and the sender's `ext` if a lane or its passport changed.
    /// Applies a spend signed by `from` that passed every rule ([`Self::commit_spend`]) and
    /// returns its effects, whose op is `pubdata`.
    pub(super) fn spend(
        &mut self,
        from: AccountIndex,
        id: MessageHash,
        pubdata: PubdataOp,
        staged: Staged,
    ) -> Effects {
        let mut effects = Effects::new(id, pubdata);
        self.commit_spend(from, staged, &mut effects);
        effects
    }

    pub(super) fn commit_spend(
        &mut self,
        from: AccountIndex,
        staged: Staged,
        effects: &mut Effects,
    ) {
        let Staged {
            ledger,
            next_nonce,
            charge,
        } = staged;
        let i = from.0;
        let lane0 = next_nonce.lane() == Lane::ZERO;
        // next_nonce came from check_nonce: the same lane, one above the nonce carried.
        let before = Nonce::new(next_nonce.get() - 1).unwrap_or(Nonce::ZERO);
        effects.nonce = Some(NonceChange {
            account: from,
            before,
            after: next_nonce,
        });
        if lane0 {
            self.accounts[i as usize].nonce = next_nonce;
        } else {
            self.lanes.entry(i).or_default().set(next_nonce);
        }
        self.dirty.push(i);
        effects.balances = ledger.commit(&mut self.accounts, &mut self.dirty);
        if let Some(c) = charge {
            if let Some(p) = self.passports.get_mut(&i) {
                p.record(c);
            }
        }
        if !lane0 || charge.is_some() {
            self.refresh_ext(from, None, effects);
        }
    }

    pub(super) fn apply_transfer(
        &mut self,
        t: &Transfer,
        key: &EncodedKey,
        id: MessageHash,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        let sender = self.signed_sender(t.from, key)?;
        let staged = self.validate_transfer(sender, t, ctx)?;
        let op = PubdataOp::Transfer {
            from: t.from,
            to: t.to,
            amount: t.amount,
            fee: t.fee,
        };
        Ok(self.spend(t.from, id, op, staged))
    }

    /// The Transfer rules after authentication (expiry, payee, amount, nonce, an agent's
    /// policy, balances).
    pub(super) fn validate_transfer(
        &self,
        sender: &Account,
        t: &Transfer,
        ctx: &BlockContext,
    ) -> Result<Staged, Rejection> {
        Self::check_expiry(t.valid_until, ctx)?;
        if self.account(t.to).is_none() {
            return Err(Rejection::UnknownAccount(t.to));
        }
        if t.from == t.to {
            return Err(Rejection::SelfTransfer);
        }
        if t.amount.is_zero() {
            return Err(Rejection::ZeroAmount);
        }
        let next_nonce = self.check_nonce(t.from, sender, t.nonce)?;
        self.check_unlocked(t.from)?;
        let spend = Spend {
            value: t.amount,
            fee: t.fee,
            payees: Payees::One(t.to),
        };
        let charge = self.police(t.from, spend, ctx)?;
        let mut ledger = Ledger::default();
        ledger.debit(&self.accounts, t.from, t.amount, t.fee)?;
        ledger.credit(&self.accounts, t.to, t.amount)?;
        ledger.credit(&self.accounts, OPERATOR, t.fee)?;
        Ok(Staged {
            ledger,
            next_nonce,
            charge,
        })
    }

    pub(super) fn apply_withdraw(
        &mut self,
        w: &Withdraw,
        key: &EncodedKey,
        id: MessageHash,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        let sender = self.signed_sender(w.from, key)?;
        let staged = self.validate_withdraw(sender, w, ctx)?;
        let mut effects = Effects::new(
            id,
            PubdataOp::Withdraw {
                from: w.from,
                to_l1: w.to_l1,
                amount: w.amount,
                fee: w.fee,
            },
        );
        self.commit_withdraw(w, staged, &mut effects);
        Ok(effects)
    }

    /// The Withdraw rules after authentication (expiry, amount, nonce, an agent's policy,
    /// balances).
    pub(super) fn validate_withdraw(
        &self,
        sender: &Account,
        w: &Withdraw,
        ctx: &BlockContext,
    ) -> Result<Staged, Rejection> {
        Self::check_expiry(w.valid_until, ctx)?;
        if w.amount.is_zero() {
            return Err(Rejection::ZeroAmount);
        }
        let next_nonce = self.check_nonce(w.from, sender, w.nonce)?;
        self.check_unlocked(w.from)?;
        let spend = Spend {
            value: w.amount,
            fee: w.fee,
            payees: Payees::L1,
        };
        let charge = self.police(w.from, spend, ctx)?;
        let mut ledger = Ledger::default();
        ledger.debit(&self.accounts, w.from, w.amount, w.fee)?;
        ledger.credit(&self.accounts, OPERATOR, w.fee)?;
        Ok(Staged {
            ledger,
            next_nonce,
            charge,
        })
    }

    pub(super) fn commit_withdraw(&mut self, w: &Withdraw, staged: Staged, effects: &mut Effects) {
        self.commit_spend(w.from, staged, effects);
        self.withdrawn += u128::from(w.amount.get());
        effects.withdrawal = Some(WithdrawalRecord {
            from: w.from,
            to_l1: w.to_l1,
            amount: w.amount,
        });
    }

    /// The Withdraw rules for a withdraw queued on L1, signature included (module docs).
    pub(super) fn judge_forced(&self, f: &ForcedWithdraw) -> Result<Staged, Rejection> {
        let w = &f.withdraw;
        let sender = self
            .account(w.from)
            .ok_or(Rejection::UnknownAccount(w.from))?;
        let msg = w.unsigned().message_hash(&self.domain);
        sender
            .pubkey
            .decode()
            .map_err(|_| Rejection::BadSignature)?
            .verify(&msg, &w.signature)
            .map_err(|_| Rejection::BadSignature)?;
        let at_request = BlockContext::at(f.requested_at);
        self.validate_withdraw(sender, w, &at_request)
    }

    pub(super) fn apply_forced(
        &mut self,
        f: &ForcedWithdraw,
        id: MessageHash,
    ) -> Result<Effects, Rejection> {
        self.check_priority_seq(f.seq)?;
        let outcome = self.judge_forced(f);
        let status = match &outcome {
            Ok(_) => ForcedStatus::Applied,
            // A rule without a published status cannot fail for a withdraw; if it ever did,
            // refusing the whole op (nothing written) is the safe answer.
            Err(r) => ForcedStatus::from_rejection(r).ok_or(*r)?,
        };
        let mut effects = Effects::new(
            id,
            PubdataOp::ForcedWithdraw {
                seq: f.seq,
                requested_at: f.requested_at,
                withdraw: f.withdraw,
                status,
            },
        );
        self.next_deposit_seq = f.seq + 1;
        effects.forced = Some(match outcome {
            Ok(staged) => {
                self.commit_withdraw(&f.withdraw, staged, &mut effects);
                ForcedOutcome::Applied
            }
            Err(r) => ForcedOutcome::Rejected(r),
        });
        Ok(effects)
    }

    /// Priority ops (deposits and forced withdrawals) are consumed strictly in queue order.
    pub(super) fn check_priority_seq(&self, seq: u64) -> Result<(), Rejection> {
        // Serial numbers are hashed as one field element, so they share the 2^63 - 1 bound.
        if seq != self.next_deposit_seq || seq > MAX_U63 {
            return Err(Rejection::BadDepositOrder {
                expected: self.next_deposit_seq,
                got: seq,
            });
        }
        Ok(())
    }

    pub(super) fn apply_deposit(
        &mut self,
        d: &Deposit,
        id: MessageHash,
    ) -> Result<Effects, Rejection> {
        self.check_priority_seq(d.seq)?;
        let mut ledger = Ledger::default();
        // Checked explicitly: a zero credit touches no account, not even a missing one.
        let outcome = if self.account(d.to).is_none() {
            DepositOutcome::Refunded {
                reason: RefundReason::UnknownAccount,
            }
        } else if ledger.credit(&self.accounts, d.to, d.amount).is_err() {
            DepositOutcome::Refunded {
                reason: RefundReason::BalanceOverflow,
            }
        } else {
            DepositOutcome::Credited
        };
        let status = match outcome {
            DepositOutcome::Credited => DepositStatus::Credited,
            DepositOutcome::Refunded { .. } => DepositStatus::Refunded,
        };
        let mut effects = Effects::new(
            id,
            PubdataOp::Deposit {
                seq: d.seq,
                to: d.to,
                amount: d.amount,
                status,
            },
        );
        self.next_deposit_seq = d.seq + 1;
        if outcome == DepositOutcome::Credited {
            effects.balances = ledger.commit(&mut self.accounts, &mut self.dirty);
            self.deposited += u128::from(d.amount.get());
        }
        effects.deposit = Some(outcome);
        Ok(effects)
    }
}
