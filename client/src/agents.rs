//! Agent passports from the SDK (docs/SPEC.md 20): an owner delegates to an agent key under a
//! policy, changes the policy, sweeps the agent's balance back and revokes it; anyone reads a
//! passport. Experimental: a devnet node started with `--experimental-agents` accepts these
//! (others refuse them, `KIND_NOT_ENABLED`), and no batch holding one is proven yet.
//!
//! An agent signs its payments with its own key and account index, like any account
//! ([`Client::pay`]); its policy is enforced by the node (and, once bound, by the circuit), so
//! a payment that breaks it comes back rejected with its reason (`POLICY_CAP`, `POLICY_PAYEE`,
//! `POLICY_EXPIRED`, `REVOKED`, ...).
//!
//! Nonce lanes: eight processes that share a key take one lane each and never coordinate;
//! [`Client::next_nonce_in_lane`] gives a lane's next nonce, and [`Client::pay`] takes it.

use state::account::{AccountIndex, Amount, Nonce};
use state::crypto::schnorr::{PublicKey, SecretKey};
use state::lanes::Lane;
use state::passport::Policy;
use state::tx::{PassportAction, UnsignedPassportTx};
use tonic::Code;

use crate::client::{unary, Client};
use crate::error::{Error, Result};
use crate::proto;
use crate::receipt::Receipt;

/// An agent's passport as the node reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AgentPassport {
    pub agent: AccountIndex,
    pub owner: AccountIndex,
    pub policy: Policy,
    pub revoked: bool,
    /// The window of the agent's last spend and what it spent in it.
    pub window_id: u64,
    pub spent: Amount,
    /// What it may still spend now under its cap.
    pub remaining: Amount,
}

impl TryFrom<proto::Passport> for AgentPassport {
    type Error = Error;
    fn try_from(p: proto::Passport) -> Result<Self> {
        let bad = |what: String| Error::protocol("passport", what);
        let policy = p.policy.ok_or_else(|| bad("no policy".into()))?;
        Ok(AgentPassport {
            agent: AccountIndex(p.agent),
            owner: AccountIndex(p.owner),
            policy: rollup_proto::convert::policy_from_message(&policy).map_err(bad)?,
            revoked: p.revoked,
            window_id: p.window_id,
            spent: Amount::new(p.spent).ok_or_else(|| bad("spent above 2^63 - 1".into()))?,
            remaining: Amount::new(p.remaining)
                .ok_or_else(|| bad("remaining above 2^63 - 1".into()))?,
        })
    }
}

/// A successful delegation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegated {
    /// The agent's new account index.
    pub agent: AccountIndex,
    pub receipt: Receipt,
}

impl Client {
    /// Signs `action` as `owner` with `key` and submits it; `nonce: None` fetches the owner's
    /// next lane-0 nonce.
    async fn owner_action(
        &self,
        key: &SecretKey,
        owner: AccountIndex,
        action: PassportAction,
        fee: Amount,
        nonce: Option<Nonce>,
    ) -> Result<Receipt> {
        let nonce = match nonce {
            Some(n) => n,
            None => self.next_nonce(owner).await?,
        };
        let tx = UnsignedPassportTx {
            owner,
            action,
            fee,
            nonce,
            valid_until: self.deadline(),
        }
        .sign(&self.domain(), key);
        self.submit(&tx.into()).await?.into_accepted()
    }

    /// Creates an agent account for `agent_key`, funded with `fund` from `owner`, under
    /// `policy` (SPEC 20.5, tag 13); returns the agent's index.
    pub async fn delegate(
        &self,
        key: &SecretKey,
        owner: AccountIndex,
        agent_key: PublicKey,
        fund: Amount,
        policy: Policy,
        fee: Amount,
    ) -> Result<Delegated> {
        let action = PassportAction::Delegate {
            agent_key: agent_key.into(),
            fund,
            policy,
        };
        let receipt = self.owner_action(key, owner, action, fee, None).await?;
        let agent = receipt.account_index.ok_or_else(|| {
            Error::protocol("receipt", "accepted delegation without an account index")
        })?;
        Ok(Delegated { agent, receipt })
    }

    /// Replaces `agent`'s policy (tag 14; the spending of the current window is kept).
    pub async fn set_policy(
        &self,
        key: &SecretKey,
        owner: AccountIndex,
        agent: AccountIndex,
        policy: Policy,
        fee: Amount,
    ) -> Result<Receipt> {
        let action = PassportAction::SetPolicy { agent, policy };
        self.owner_action(key, owner, action, fee, None).await
    }

    /// Revokes `agent` for good, from the next transaction on (tag 15).
    pub async fn revoke(
        &self,
        key: &SecretKey,
        owner: AccountIndex,
        agent: AccountIndex,
        fee: Amount,
    ) -> Result<Receipt> {
        self.owner_action(key, owner, PassportAction::Revoke { agent }, fee, None)
            .await
    }

    /// Moves `amount` of `agent`'s balance back to `owner` (tag 16; allowed after revocation).
    pub async fn sweep(
        &self,
        key: &SecretKey,
        owner: AccountIndex,
        agent: AccountIndex,
        amount: Amount,
        fee: Amount,
    ) -> Result<Receipt> {
        let action = PassportAction::Sweep { agent, amount };
        self.owner_action(key, owner, action, fee, None).await
    }

    /// `agent`'s passport; [`Error::UnknownAccount`] if the account does not exist or is no
    /// agent.
    pub async fn passport(&self, agent: AccountIndex) -> Result<AgentPassport> {
        let answer = self
            .rpc()
            .get_passport(unary(proto::GetAccountRequest { index: agent.0 }))
            .await;
        match answer {
            Ok(p) => p.into_inner().try_into(),
            Err(status) if status.code() == Code::NotFound => Err(Error::UnknownAccount(agent)),
            Err(status) => Err(status.into()),
        }
    }

    /// The next nonce of `index`'s `lane` (SPEC 20.1). Lane 0 is [`Client::next_nonce`]; the
    /// others need a node that accepts lanes (`--experimental-agents`), else this is an error.
    pub async fn next_nonce_in_lane(&self, index: AccountIndex, lane: Lane) -> Result<Nonce> {
        let account = self.account(index).await?;
        match lane.get() {
            0 => Ok(account.nonce),
            l => account
                .lane_nonces
                .get(usize::from(l) - 1)
                .copied()
                .ok_or_else(|| Error::protocol("account", "this node accepts no nonce lanes")),
        }
    }
}
