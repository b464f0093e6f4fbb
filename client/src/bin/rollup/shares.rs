//! `rollup shares …`: revenue-share accounts from the command line (SPEC 19.2, 19.6; on a node
//! whose pinned circuits prove them, or a devnet node started with --experimental-streams).
//!
//! `register` is final: the shares never change and the account can no longer send payments;
//! its income leaves only by `distribute`, which any registered key may send (and pays the fee
//! of).

use std::path::PathBuf;

use clap::Subcommand;
use rollup_client::{AccountIndex, Amount, Client};
use serde::Serialize;

use crate::{parse_amount, registered_key, Output};

#[derive(Subcommand)]
pub enum SharesCommand {
    /// Register how the income of the key file's account is shared, for good: from then on its
    /// balance leaves only by `rollup shares distribute`.
    Register {
        /// Key file of the revenue account (must be registered).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// A payee and its part in basis points (10,000 = 100 %), as ACCOUNT:BPS; repeat for
        /// each payee, in any order; the parts must add up to 10,000.
        #[arg(long = "to", value_name = "N:BPS", required = true, value_parser = parse_share)]
        shares: Vec<(AccountIndex, u16)>,
        /// Fee for the operator, in base units.
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
    },
    /// Pay a revenue account's whole balance out by its shares; signed (and its fee paid) by
    /// the key file's account, which may be anyone's.
    Distribute {
        /// Key file of the account that sends the distribute and pays its fee.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The revenue account's index.
        #[arg(long, value_name = "N")]
        account: u32,
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
    },
    /// Show an account's registered shares and the balance a distribute would pay out now.
    Show {
        /// The account's index.
        #[arg(long, value_name = "N")]
        account: u32,
    },
}

fn parse_share(s: &str) -> Result<(AccountIndex, u16), String> {
    let (to, bps) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not ACCOUNT:BPS"))?;
    let to: u32 = to
        .parse()
        .map_err(|_| format!("`{to}` is not an account index"))?;
    let bps: u16 = bps
        .parse()
        .ok()
        .filter(|&b| b <= 10_000)
        .ok_or_else(|| format!("`{bps}` is not a number of basis points from 0 to 10,000"))?;
    Ok((AccountIndex(to), bps))
}

#[derive(Serialize)]
struct SharesView {
    account: u32,
    balance: u64,
    /// (payee, basis points), in payee order; empty when none are registered.
    shares: Vec<(u32, u16)>,
}

impl SharesView {
    fn line(&self) -> String {
        if self.shares.is_empty() {
            return format!("account {} has no registered shares", self.account);
        }
        let parts: Vec<String> = self
            .shares
            .iter()
            .map(|(p, b)| format!("{p}:{}.{:02}%", b / 100, b % 100))
            .collect();
        format!(
            "account {}: balance {} to distribute, shares {}",
            self.account,
            self.balance,
            parts.join(" ")
        )
    }
}

pub async fn run(out: &Output, endpoint: &str, command: SharesCommand) -> anyhow::Result<()> {
    let client = Client::connect(endpoint).await?;
    match command {
        SharesCommand::Register { key, shares, fee } => {
            let (key, account) = registered_key(&key)?;
            let n = shares.len();
            let receipt = client
                .register_shares(key.secret_key(), account, shares, fee)
                .await?;
            out.emit(&receipt, || {
                format!("account {account} shares its income with {n} payees ({receipt})")
            })
        }
        SharesCommand::Distribute { key, account, fee } => {
            let (key, signer) = registered_key(&key)?;
            let receipt = client
                .distribute(key.secret_key(), signer, AccountIndex(account), fee)
                .await?;
            out.emit(&receipt, || {
                format!("distributed the balance of account {account} by its shares ({receipt})")
            })
        }
        SharesCommand::Show { account } => {
            let a = client.account(AccountIndex(account)).await?;
            let view = SharesView {
                account,
                balance: a.balance.get(),
                shares: a.shares.iter().map(|&(p, b)| (p.0, b)).collect(),
            };
            out.emit(&view, || view.line())
        }
    }
}
