//! `rollup-l1`: L1 chores for a devnet: deploy the contracts from the committed artifacts and
//! mint test tokens. The bridge service itself runs inside `rollup-node` (`--l1-rpc`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rollup_bridge::deploy::{self, DeployConfig, Deployment};
use rollup_bridge::rpc::Rpc;
use rollup_bridge::{Address, B256};

#[derive(Parser)]
#[command(
    name = "rollup-l1",
    version,
    about = "Deploy the rollup's L1 contracts and mint devnet tokens"
)]
struct Cli {
    /// L1 JSON-RPC endpoint (transactions are sent from its first unlocked account, i.e.
    /// anvil's dev account 0: devnet only).
    #[arg(long, env = "ROLLUP_L1_RPC", default_value = "http://127.0.0.1:8545")]
    l1_rpc: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Deploy TestStablecoin, AttestationVerifier and Rollup with every role on the first
    /// account; prints the addresses and the deployment block as JSON.
    Deploy {
        /// L2 genesis state root (`rollup-node --devnet --print-genesis-root`).
        #[arg(long)]
        genesis_root: B256,
    },
    /// Mint TestStablecoin (the first account is the minter).
    Mint {
        #[arg(long)]
        token: Address,
        #[arg(long)]
        to: Address,
        #[arg(long)]
        amount: u64,
    },
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let rpc = Rpc::new(cli.l1_rpc);
    let from = *rpc
        .accounts()
        .await?
        .first()
        .ok_or("the L1 endpoint holds no account")?;
    match cli.cmd {
        Cmd::Deploy { genesis_root } => {
            let start = rpc.block_number().await?;
            let Deployment {
                token,
                verifier,
                rollup,
            } = deploy::deploy_devnet(&rpc, &DeployConfig::devnet(from, genesis_root)).await?;
            println!(
                "{}",
                serde_json::json!({
                    "token": token, "verifier": verifier, "rollup": rollup,
                    "operator": from, "chain_id": rpc.chain_id().await?, "start_block": start,
                })
            );
        }
        Cmd::Mint { token, to, amount } => {
            let d = Deployment {
                token,
                verifier: Address::ZERO,
                rollup: Address::ZERO,
            };
            let r = deploy::mint(&rpc, &d, from, to, amount).await?;
            println!(
                "{}",
                serde_json::json!({"to": to, "amount": amount, "l1_tx": r.transaction_hash})
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rollup-l1: {e}");
            ExitCode::FAILURE
        }
    }
}
