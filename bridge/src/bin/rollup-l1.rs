//! `rollup-l1`: L1 chores for a devnet (deploy the contracts from the committed artifacts, mint
//! test tokens), for anyone, rebuilding the L2 state from L1 data alone, and for the operator,
//! reverting unfinalized batches. The bridge service itself runs inside `rollup-node`
//! (`--l1-rpc`).

use std::process::ExitCode;

use alloy_sol_types::SolCall;
use clap::{Parser, Subcommand};
use rollup_bridge::deploy::{self, DeployConfig, Deployment};
use rollup_bridge::rebuild::{self, RebuildConfig, RebuildError};
use rollup_bridge::revert;
use rollup_bridge::rpc::Rpc;
use rollup_bridge::signer::L1Signer;
use rollup_bridge::{Address, B256};
use state::crypto::schnorr::PublicKey;

#[derive(Parser)]
#[command(
    name = "rollup-l1",
    version,
    about = "Deploy the rollup's L1 contracts, mint devnet tokens, rebuild the L2 state from L1, revert unfinalized batches"
)]
struct Cli {
    /// L1 JSON-RPC endpoint (`deploy` and `mint` send from its first unlocked account, i.e.
    /// anvil's dev account 0: devnet only; `rebuild-state` only reads).
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
    /// Rebuild the L2 state from the Rollup contract's commits alone (state diffs in the
    /// commitBatch calldata, SPEC 10.4), checking every batch's new root. Exit code 2 when the
    /// L1 data is inconsistent (a root mismatch, an invalid diff), 1 on other failures.
    RebuildState {
        #[arg(long, env = "ROLLUP_ROLLUP_ADDRESS")]
        rollup_address: Address,
        /// The operator's L2 public key (40 bytes hex; `rollup-node --print-operator-pubkey`),
        /// which with the genesis rule (SPEC 11.1) gives the genesis state; checked against the
        /// root the contract started from.
        #[arg(long, env = "ROLLUP_OPERATOR_PUBKEY")]
        operator_pubkey: String,
        /// First L1 block to scan (the deployment block; `rollup-l1 deploy` prints it).
        #[arg(long, default_value_t = 0)]
        from_block: u64,
        /// Blocks per eth_getLogs request.
        #[arg(long, default_value_t = 10_000)]
        max_range: u64,
        /// JSON Lines: one object per batch, then the summary.
        #[arg(long)]
        json: bool,
        /// Also list the payouts of finalized batches not claimed yet (read from the commits'
        /// payout lists), each with the proof `claimWithdrawal` takes: claimable with the node
        /// gone.
        #[arg(long)]
        unclaimed: bool,
    },
    /// Revert the committed, unfinalized batches after `--keep` (SPEC 15.9): the operator's
    /// way out of a batch that cannot be finalized. Sent with the operator's L1 key; a running
    /// node follows the `BatchesReverted` event at its confirmation depth and commits the same
    /// batches again. Prints the plan (and, without --dry-run, the L1 transaction) as JSON.
    RevertBatches {
        #[arg(long, env = "ROLLUP_ROLLUP_ADDRESS")]
        rollup_address: Address,
        /// The batch that stays the last committed one (the last finalized batch, or 0 before
        /// any finalization, reverts every unfinalized batch).
        #[arg(long)]
        keep: u64,
        /// File with the operator's secp256k1 key (32 bytes hex), the only sender the contract
        /// accepts. The node's batch submitter uses the same key: it gives up a nonce taken by
        /// this transaction and carries on.
        #[arg(long, env = "ROLLUP_OPERATOR_L1_KEY")]
        operator_l1_key: std::path::PathBuf,
        /// First L1 block to scan for the kept batch's commit (the deployment block).
        #[arg(long, default_value_t = 0)]
        from_block: u64,
        /// Blocks per eth_getLogs request.
        #[arg(long, default_value_t = 10_000)]
        max_range: u64,
        /// Print the plan without sending anything.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Why the tool failed; the exit code tells inconsistent L1 data from other failures.
enum Failure {
    Data(RebuildError),
    Other(Box<dyn std::error::Error>),
}

impl<E: Into<Box<dyn std::error::Error>>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Other(e.into())
    }
}

async fn rebuild_state(
    rpc: &Rpc,
    cfg: RebuildConfig,
    operator: PublicKey,
    json: bool,
    list_unclaimed: bool,
) -> Result<(), Failure> {
    let done = rebuild::rebuild(rpc, &cfg, operator, |b| {
        if json {
            println!("{}", serde_json::json!(b));
        } else {
            println!(
                "batch {}: {} records ({} new accounts), {} bytes, {} accounts, root {} (l1 tx {})",
                b.batch, b.records, b.new_accounts, b.diff_bytes, b.accounts, b.root, b.l1_tx
            );
        }
    })
    .await;
    let done = match done {
        Ok(d) => d,
        Err(e) if e.is_data_error() => return Err(Failure::Data(e)),
        Err(e) => return Err(Failure::Other(e.into())),
    };
    if list_unclaimed {
        for u in rollup_bridge::claims::unclaimed(rpc, cfg.rollup, &done).await? {
            if json {
                println!("{}", serde_json::json!({ "unclaimed": u }));
            } else {
                println!(
                    "unclaimed: batch {} payout {}: {} from {} to {} (leaf {})",
                    u.batch, u.index, u.amount, u.from, u.to, u.leaf
                );
            }
        }
    }
    let summary = done.summary();
    if json {
        println!("{summary}");
    } else {
        println!(
            "rebuilt {} batches: {} accounts, total balance {}, root {} (L1 block {})",
            summary["batches"],
            summary["accounts"],
            summary["total_balance"].as_str().unwrap_or_default(),
            summary["root"].as_str().unwrap_or_default(),
            summary["l1_block"]
        );
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let rpc = Rpc::new(cli.l1_rpc);
    if let Cmd::RebuildState {
        rollup_address,
        operator_pubkey,
        from_block,
        max_range,
        json,
        unclaimed,
    } = cli.cmd
    {
        let operator =
            PublicKey::from_hex(&operator_pubkey).map_err(|e| format!("--operator-pubkey: {e}"))?;
        let cfg = RebuildConfig {
            rollup: rollup_address,
            from_block,
            max_range,
            until: None,
        };
        return rebuild_state(&rpc, cfg, operator, json, unclaimed).await;
    }
    if let Cmd::RevertBatches {
        rollup_address,
        keep,
        operator_l1_key,
        from_block,
        max_range,
        dry_run,
    } = cli.cmd
    {
        let signer = L1Signer::from_key_file(&operator_l1_key)
            .map_err(|e| format!("--operator-l1-key: {e}"))?;
        let (call, plan) =
            revert::revert_call(&rpc, rollup_address, keep, from_block, max_range).await?;
        if dry_run {
            println!("{}", serde_json::json!({ "plan": plan, "sent": false }));
            return Ok(());
        }
        let receipt = rpc
            .send_signed(&signer, rollup_address, call.abi_encode().into())
            .await?;
        println!(
            "{}",
            serde_json::json!({
                "plan": plan,
                "sent": true,
                "l1_tx": receipt.transaction_hash,
                "l1_block": receipt.block_number,
            })
        );
        return Ok(());
    }
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
                permutation,
            } = deploy::deploy_devnet(&rpc, &DeployConfig::devnet(from, genesis_root)).await?;
            println!(
                "{}",
                serde_json::json!({
                    "token": token, "verifier": verifier, "rollup": rollup,
                    "poseidon_permutation": permutation,
                    "operator": from, "chain_id": rpc.chain_id().await?, "start_block": start,
                })
            );
        }
        Cmd::Mint { token, to, amount } => {
            let d = Deployment {
                token,
                verifier: Address::ZERO,
                rollup: Address::ZERO,
                permutation: Address::ZERO,
            };
            let r = deploy::mint(&rpc, &d, from, to, amount).await?;
            println!(
                "{}",
                serde_json::json!({"to": to, "amount": amount, "l1_tx": r.transaction_hash})
            );
        }
        Cmd::RebuildState { .. } | Cmd::RevertBatches { .. } => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Data(e)) => {
            eprintln!("rollup-l1: the L1 data does not rebuild the committed state: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("rollup-l1: {e}");
            ExitCode::FAILURE
        }
    }
}
