//! Applying the passport transactions (SPEC 20.5): what an owner does to its agents.
//!
//! # Order of the checks
//!
//! 1. the owner exists and the signature verified under its key (`UNKNOWN_ACCOUNT`,
//!    `BAD_SIGNATURE`); a transaction the agent signs names the agent as `owner` and fails
//!    rule 3 (`NOT_OWNER`), or names the owner and fails here;
//! 2. not expired (`EXPIRED`), then the owner's nonce (`BAD_NONCE`, `NONCE_EXHAUSTED`);
//! 3. the kind's rules:
//!    * delegate: the owner is no agent (`AGENT_CANNOT_DELEGATE`), the agent's key controls no
//!      account yet (`DUPLICATE_KEY`), an index is left (`STATE_FULL`), the owner has no
//!      revenue shares (`SHARES_LOCKED`: its balance moves by a distribute only);
//!    * set policy, revoke, sweep: the agent is one (`NOT_AN_AGENT`) and the signer owns it
//!      (`NOT_OWNER`); set policy and revoke: it is not revoked (`REVOKED`); sweep: a positive
//!      amount (`ZERO_AMOUNT`) from an agent without revenue shares (`SHARES_LOCKED`);
//! 4. the balances: the owner pays the fee (and a delegate's `fund`) before any credit, a sweep
//!    then takes its amount from the agent (`INSUFFICIENT_BALANCE`, naming the agent's
//!    balance); the credits (the sweep to the owner, the fee to the operator) keep every balance
//!    at most `2^63 - 1` (`BALANCE_OVERFLOW`).
//!
//! Every check runs before the first write, so a refused transaction changes nothing. Owner
//! actions are not charged to any policy: the owner is never an agent.
//!
//! # Effects
//!
//! The owner's nonce goes up by one and the fee goes to the operator. A delegate creates the
//! agent's account at the next index (like a registration: balance `fund`, nonce 0) with a
//! fresh passport; the others change the passport, and a sweep moves money back. The agent's
//! `ext` follows its passport ([`crate::ext`]).

use super::{BlockContext, Effects, Ledger, Rejection, Staged, State};
use crate::account::{AccountIndex, Amount, OPERATOR};
use crate::crypto::schnorr::{EncodedKey, MessageHash};
use crate::passport::{owned_by, Passport, PassportRejection};
use crate::pubdata::PubdataOp;
use crate::tx::{PassportAction, PassportOp, PassportTx};

impl From<PassportRejection> for Rejection {
    fn from(r: PassportRejection) -> Self {
        Rejection::Passport(r)
    }
}

impl State {
    /// The passport of `agent`, if it is one.
    pub fn passport(&self, agent: AccountIndex) -> Option<&Passport> {
        self.passports.get(&agent.0)
    }

    /// The next sequence numbers of `account`'s lanes 1 to 7 (all 0 when it used none).
    pub fn lanes_of(&self, account: AccountIndex) -> crate::lanes::LaneNonces {
        self.lanes.get(&account.0).copied().unwrap_or_default()
    }

    /// Every agent of `owner` with its passport, by index.
    pub fn agents_of(
        &self,
        owner: AccountIndex,
    ) -> impl Iterator<Item = (AccountIndex, &Passport)> {
        self.passports
            .iter()
            .filter(move |(_, p)| p.owner() == owner)
            .map(|(&i, p)| (AccountIndex(i), p))
    }

    /// Accepts nonces in lanes 1 to 7 from now on (SPEC 20.1). Off by default: a node turns it
    /// on only where its circuits prove lanes.
    pub fn enable_lanes(&mut self) {
        self.lanes_enabled = true;
    }

    pub(super) fn apply_passport(
        &mut self,
        t: &PassportTx,
        key: &EncodedKey,
        id: MessageHash,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        let owner = t.owner;
        let next_nonce = self.envelope(owner, key, t.nonce, t.valid_until, ctx)?;

        let mut ledger = Ledger::default();
        let agent = match &t.action {
            PassportAction::Delegate {
                agent_key, fund, ..
            } => {
                if self.passports.contains_key(&owner.0) {
                    return Err(PassportRejection::AgentCannotDelegate.into());
                }
                if let Some(existing) = self.index_of_key(agent_key) {
                    return Err(Rejection::DuplicateKey { existing });
                }
                if self.num_accounts() >= self.max_accounts {
                    return Err(Rejection::StateFull);
                }
                // An account with shares moves its balance by a distribute only (SPEC 19.6):
                // an agent of its own would be a way around (its fund). Refused whatever the
                // fund, so that the circuit's lock is one rule over the kind.
                self.check_unlocked(owner)?;
                ledger.debit(&self.accounts, owner, *fund, t.fee)?;
                // The next index: num_accounts() < max_accounts <= 2^32.
                AccountIndex(self.accounts.len() as u32)
            }
            PassportAction::SetPolicy { agent, .. } | PassportAction::Revoke { agent } => {
                let p = owned_by(self.passport(*agent), *agent, owner)?;
                if p.is_revoked() {
                    return Err(PassportRejection::Revoked.into());
                }
                ledger.debit(&self.accounts, owner, Amount::ZERO, t.fee)?;
                *agent
            }
            PassportAction::Sweep { agent, amount } => {
                owned_by(self.passport(*agent), *agent, owner)?;
                if amount.is_zero() {
                    return Err(Rejection::ZeroAmount);
                }
                // An agent with revenue shares pays out by a distribute only (SPEC 19.6), its
                // owner's sweep included.
                self.check_unlocked(*agent)?;
                ledger.debit(&self.accounts, owner, Amount::ZERO, t.fee)?;
                ledger.debit(&self.accounts, *agent, *amount, Amount::ZERO)?;
                ledger.credit(&self.accounts, owner, *amount)?;
                *agent
            }
        };
        ledger.credit(&self.accounts, OPERATOR, t.fee)?;

        // Every check passed: write.
        let mut effects = Effects::new(
            id,
            PubdataOp::Passport(PassportOp {
                owner,
                agent,
                action: t.action.clone(),
                fee: t.fee,
            }),
        );
        match &t.action {
            PassportAction::Delegate {
                agent_key,
                fund,
                policy,
            } => {
                let index = self.push_account(*agent_key);
                debug_assert_eq!(index, agent);
                ledger.credit_new(index, *fund);
                self.passports
                    .insert(index.0, Passport::new(owner, policy.clone()));
                effects.registered = Some(index);
            }
            PassportAction::SetPolicy { policy, .. } => {
                if let Some(p) = self.passports.get_mut(&agent.0) {
                    p.set_policy(policy.clone());
                }
            }
            PassportAction::Revoke { .. } => {
                if let Some(p) = self.passports.get_mut(&agent.0) {
                    p.revoke();
                }
            }
            PassportAction::Sweep { .. } => {}
        }
        let staged = Staged {
            ledger,
            next_nonce,
            charge: None,
        };
        self.commit_spend(owner, staged, &mut effects);
        self.refresh_ext(agent, None, &mut effects);
        Ok(effects)
    }
}
