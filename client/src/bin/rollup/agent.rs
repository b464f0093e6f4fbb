//! `rollup agent …`: agent passports from the command line (SPEC 20, docs/API.md "Agents";
//! experimental: a devnet node started with --experimental-agents).
//!
//! The owner's key file signs every command; `create` stores the agent's new account index in
//! the agent's key file (generated with `rollup keygen`), which the agent then pays with like any
//! registered key (`rollup pay --key AGENT_FILE`), within its policy.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rollup_client::{AccountIndex, Amount, Client, KeyFile, Timestamp};
use serde::Serialize;
use state::passport::{AllowList, Card, Policy};

use crate::{parse_amount, registered_key, Output};

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Create an agent account for the key of --agent-key, funded from the owner, under a
    /// policy; stores the agent's account index in its key file.
    Create {
        /// Key file of the owner (must be registered).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Key file of the agent (from `rollup keygen`, not registered).
        #[arg(long, value_name = "FILE")]
        agent_key: PathBuf,
        /// Moved from the owner to the agent at creation, in base units.
        #[arg(long, value_name = "A", value_parser = parse_amount, default_value = "0")]
        fund: Amount,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Fee for the operator, in base units.
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
    },
    /// Replace an agent's policy (what it spent in the current window is kept).
    Policy {
        /// Key file of the owner.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The agent's account index.
        #[arg(long, value_name = "N")]
        agent: u32,
        #[command(flatten)]
        policy: PolicyArgs,
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
    },
    /// Revoke an agent for good: it can spend nothing from the next transaction on.
    Revoke {
        /// Key file of the owner.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The agent's account index.
        #[arg(long, value_name = "N")]
        agent: u32,
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
    },
    /// Move an amount of an agent's balance back to its owner (also after a revocation).
    Sweep {
        /// Key file of the owner.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The agent's account index.
        #[arg(long, value_name = "N")]
        agent: u32,
        #[arg(long, value_name = "A", value_parser = parse_amount)]
        amount: Amount,
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
    },
    /// Show an agent's passport: owner, policy, what it spent and may still spend.
    Show {
        /// The agent's account index.
        #[arg(long, value_name = "N")]
        agent: u32,
    },
    /// List the agents an account owns, with their passports.
    List {
        /// The owner's account index.
        #[arg(long, value_name = "N")]
        owner: u32,
    },
    /// Bind the address of --l1-key on L1 as the owner of the key file's accounts
    /// (`Rollup.bindOwner`, SPEC 20.9): the L2 key signs, the L1 key sends. Once per key; the
    /// bridge feed announces it (`owner_bound`). With --show, only print the recorded owner.
    BindL1 {
        /// Key file of the L2 key (an owner's: its agents' passports name its account).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Print the L1 owner recorded for the key (zero address: none) and send nothing.
        #[arg(long)]
        show: bool,
        #[command(flatten)]
        l1: crate::L1Args,
    },
}

/// A policy from the command line (SPEC 20.2).
#[derive(Args)]
pub struct PolicyArgs {
    /// The most the agent may spend (amounts and fees) in one window, in base units.
    #[arg(long, value_name = "A", value_parser = parse_amount)]
    cap: Amount,
    /// The window's length in seconds (fixed windows); 0 makes the cap a lifetime cap.
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    window: u32,
    /// The most one payment may move, in base units (default: the cap).
    #[arg(long, value_name = "A", value_parser = parse_amount)]
    max_payment: Option<Amount>,
    /// The most fee one payment may pay, in base units.
    #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
    max_fee: Amount,
    /// Seconds from now until the policy expires (the agent spends nothing after).
    #[arg(long, value_name = "SECS", default_value_t = 30 * 86_400)]
    lasts: u64,
    /// A payee the agent may pay; repeat for each (none: any payee, and withdrawals to L1).
    /// Under a list the agent pays one listed payee per payment: no split, no withdrawal. A
    /// node accepts lists when its pinned leaf takes membership paths (else
    /// ALLOW_LIST_NOT_ENABLED).
    #[arg(long = "allow", value_name = "N")]
    allow: Vec<u32>,
    /// Where the agent card (public metadata) lives.
    #[arg(long, value_name = "URI", default_value = "")]
    card_uri: String,
    /// The card document's hash, 32 bytes as hex (default: zero).
    #[arg(long, value_name = "HEX")]
    card_hash: Option<String>,
}

impl PolicyArgs {
    fn policy(&self, client: &Client) -> anyhow::Result<Policy> {
        let mut allow: Vec<AccountIndex> = self.allow.iter().copied().map(AccountIndex).collect();
        allow.sort();
        allow.dedup();
        let hash = match &self.card_hash {
            None => [0; 32],
            Some(h) => hex::decode(h.trim_start_matches("0x"))
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .context("--card-hash must be 32 bytes of hex")?,
        };
        let now = client.node_now();
        Ok(Policy {
            cap: self.cap,
            window: self.window,
            max_payment: self.max_payment.unwrap_or(self.cap),
            max_fee: self.max_fee,
            expiry: Timestamp::new(now.saturating_add(self.lasts)).context("--lasts too long")?,
            allow: AllowList::new(allow).map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?,
            card: Card::new(hash, self.card_uri.clone())
                .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?,
        })
    }
}

#[derive(Serialize)]
struct PassportView {
    agent: u32,
    owner: u32,
    revoked: bool,
    spent: u64,
    remaining: u64,
    policy: Policy,
}

impl From<rollup_client::AgentPassport> for PassportView {
    fn from(p: rollup_client::AgentPassport) -> Self {
        PassportView {
            agent: p.agent.0,
            owner: p.owner.0,
            revoked: p.revoked,
            spent: p.spent.get(),
            remaining: p.remaining.get(),
            policy: p.policy,
        }
    }
}

impl PassportView {
    fn line(&self) -> String {
        let p = &self.policy;
        let payees = if p.allow.is_anyone() {
            "any payee".to_string()
        } else {
            format!(
                "payees {:?}",
                p.allow.payees().iter().map(|a| a.0).collect::<Vec<_>>()
            )
        };
        // A window of 0 makes the cap one for the passport's whole life (SPEC 20.2).
        let window = match p.window {
            0 => "in all".to_string(),
            w => format!("per {w} s"),
        };
        format!(
            "agent {} of owner {}{}: spent {} of cap {} {}, {} left; at most {} a payment, fee {}, until {}, {}",
            self.agent,
            self.owner,
            if self.revoked { " (REVOKED)" } else { "" },
            self.spent,
            p.cap,
            window,
            self.remaining,
            p.max_payment,
            p.max_fee,
            p.expiry,
            payees
        )
    }
}

pub async fn run(out: &Output, endpoint: &str, command: AgentCommand) -> anyhow::Result<()> {
    if let AgentCommand::BindL1 { key, show, l1 } = command {
        return bind_l1(out, endpoint, &key, show, &l1).await;
    }
    let client = Client::connect(endpoint).await?;
    match command {
        AgentCommand::Create {
            key,
            agent_key,
            fund,
            policy,
            fee,
        } => {
            let (owner_key, owner) = registered_key(&key)?;
            let mut agent_file = KeyFile::load(&agent_key)?;
            if let Some(index) = agent_file.account_index {
                bail!("{} is already account {index}", agent_key.display());
            }
            let policy = policy.policy(&client)?;
            let delegated = client
                .delegate(
                    owner_key.secret_key(),
                    owner,
                    *agent_file.public_key(),
                    fund,
                    policy,
                    fee,
                )
                .await?;
            agent_file.account_index = Some(delegated.agent);
            agent_file.save(&agent_key, true).with_context(|| {
                format!(
                    "agent created as account {}, but could not store it in its key file",
                    delegated.agent
                )
            })?;
            #[derive(Serialize)]
            struct Created {
                agent: u32,
                receipt: rollup_client::Receipt,
            }
            let created = Created {
                agent: delegated.agent.0,
                receipt: delegated.receipt,
            };
            out.emit(&created, || {
                format!(
                    "agent account {} created ({})",
                    created.agent, created.receipt
                )
            })
        }
        AgentCommand::Policy {
            key,
            agent,
            policy,
            fee,
        } => {
            let (owner_key, owner) = registered_key(&key)?;
            let policy = policy.policy(&client)?;
            let receipt = client
                .set_policy(
                    owner_key.secret_key(),
                    owner,
                    AccountIndex(agent),
                    policy,
                    fee,
                )
                .await?;
            out.emit(&receipt, || {
                format!("policy of agent {agent} replaced ({receipt})")
            })
        }
        AgentCommand::Revoke { key, agent, fee } => {
            let (owner_key, owner) = registered_key(&key)?;
            let receipt = client
                .revoke(owner_key.secret_key(), owner, AccountIndex(agent), fee)
                .await?;
            out.emit(&receipt, || format!("agent {agent} revoked ({receipt})"))
        }
        AgentCommand::Sweep {
            key,
            agent,
            amount,
            fee,
        } => {
            let (owner_key, owner) = registered_key(&key)?;
            let receipt = client
                .sweep(
                    owner_key.secret_key(),
                    owner,
                    AccountIndex(agent),
                    amount,
                    fee,
                )
                .await?;
            out.emit(&receipt, || {
                format!("swept {amount} from agent {agent} ({receipt})")
            })
        }
        AgentCommand::Show { agent } => {
            let view = PassportView::from(client.passport(AccountIndex(agent)).await?);
            out.emit(&view, || view.line())
        }
        AgentCommand::List { owner } => {
            let agents = client.account(AccountIndex(owner)).await?.agents;
            for agent in agents {
                let view = PassportView::from(client.passport(agent).await?);
                out.emit(&view, || view.line())?;
            }
            Ok(())
        }
        AgentCommand::BindL1 { .. } => bail!("internal: bind-l1 is handled before connecting"),
    }
}

/// `rollup agent bind-l1`: records (or shows) the L1 owner of the key file's key.
async fn bind_l1(
    out: &Output,
    endpoint: &str,
    key: &std::path::Path,
    show: bool,
    l1: &crate::L1Args,
) -> anyhow::Result<()> {
    use alloy_sol_types::SolCall;
    use rollup_l1_client::owner;
    let key = KeyFile::load(key)?;
    let (rpc, signer, rollup) = crate::l1_setup(endpoint, l1).await?;
    #[derive(Serialize)]
    struct Bound {
        key_id: rollup_l1_client::B256,
        owner: rollup_l1_client::Address,
        /// The binding's L1 transaction (absent with --show).
        l1_tx: Option<rollup_l1_client::B256>,
    }
    let key_id = rollup_l1_client::exodus::key_id(key.public_key());
    let recorded = owner::owner_of(&rpc, rollup, key.public_key()).await?;
    if show {
        let b = Bound {
            key_id,
            owner: recorded,
            l1_tx: None,
        };
        return out.emit(&b, || {
            format!("key {} is owned on L1 by {}", b.key_id, b.owner)
        });
    }
    if recorded != rollup_l1_client::Address::ZERO {
        bail!("key {key_id} is already bound to {recorded} on L1 (once per key)");
    }
    let domain = state::tx::Domain {
        chain_id: rpc.chain_id().await?,
        rollup: rollup.0 .0,
    };
    let call = owner::bind_owner_call(&domain, key.secret_key(), signer.address())?;
    let receipt = rpc
        .send_signed(&signer, rollup, call.abi_encode().into())
        .await
        .map_err(|e| anyhow::anyhow!("bindOwner rejected by L1: {e}"))?;
    let b = Bound {
        key_id,
        owner: signer.address(),
        l1_tx: Some(receipt.transaction_hash),
    };
    out.emit(&b, || {
        format!(
            "key {} is now owned on L1 by {} (tx {})",
            b.key_id, b.owner, receipt.transaction_hash
        )
    })
}
