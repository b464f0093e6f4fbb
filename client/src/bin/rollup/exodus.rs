//! `rollup exit`, `rollup refund` and `rollup claim --from-l1`: leaving the rollup through L1
//! alone (SPEC 15.5, 15.9). They read only L1 (the state and the payout lists are rebuilt from
//! the batches' calldata), so they work with the node and the operator gone.

use std::path::PathBuf;

use alloy_sol_types::SolCall;
use anyhow::{anyhow, bail};
use rollup_client::KeyFile;
use rollup_l1_client::contracts::Rollup;
use rollup_l1_client::exodus::{self, ExodusStatus};
use rollup_l1_client::rpc::{Receipt, Rpc};
use rollup_l1_client::signer::L1Signer;
use rollup_l1_client::{Address, B256};
use state::crypto::schnorr::PublicKey;

use crate::{l1_setup, L1Args, Output};

/// Where the rollup's history starts on L1 and how to read it.
#[derive(clap::Args)]
pub struct HistoryArgs {
    /// First L1 block to scan: the Rollup contract's deployment block.
    #[arg(long, value_name = "N", default_value_t = 0)]
    from_block: u64,
    /// Blocks per eth_getLogs request (lower it for providers that cap log ranges).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_range: u64,
    /// Activate exodus first if it is due and not active yet (anyone may).
    #[arg(long)]
    activate: bool,
}

/// `rollup exit`.
#[derive(clap::Args)]
pub struct ExitArgs {
    /// Key file whose accounts leave: every account of its key in the last finalized state.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// L1 address that receives the balances (default: the address of --l1-key). The first
    /// exit of a key records it on L1 with the key's signature; later exits of the same key
    /// pay the recorded address.
    #[arg(long, value_name = "ADDRESS")]
    to: Option<Address>,
    /// Public key of the operator (0x + 80 hex digits): the genesis account the rebuild starts
    /// from.
    #[arg(long, env = "ROLLUP_OPERATOR_PUBKEY", value_name = "HEX")]
    operator_pubkey: String,
    #[command(flatten)]
    history: HistoryArgs,
    #[command(flatten)]
    l1: L1Args,
}

/// `rollup refund`.
#[derive(clap::Args)]
pub struct RefundArgs {
    /// Refund the deposits of this L1 address (default: the address of --l1-key). Anyone
    /// may send a refund: the tokens always go to the depositor.
    #[arg(long, value_name = "ADDRESS")]
    depositor: Option<Address>,
    #[command(flatten)]
    history: HistoryArgs,
    #[command(flatten)]
    l1: L1Args,
}

/// The L1 side with no node: `--rollup` is required, since there may be no node to ask.
async fn setup(l1: &L1Args) -> anyhow::Result<(Rpc, L1Signer, Address)> {
    if l1.rollup.is_none() {
        bail!("--rollup is required: in exodus the node may be gone");
    }
    l1_setup("", l1).await
}

async fn send(
    rpc: &Rpc,
    signer: &L1Signer,
    rollup: Address,
    what: &str,
    data: Vec<u8>,
) -> anyhow::Result<Receipt> {
    rpc.send_signed(signer, rollup, data.into())
        .await
        .map_err(|e| anyhow!("{what} rejected by L1: {e}"))
}

/// The contract's status, with exodus activated first if asked and due.
async fn in_exodus(
    rpc: &Rpc,
    signer: &L1Signer,
    rollup: Address,
    activate: bool,
) -> anyhow::Result<ExodusStatus> {
    let mut st = exodus::status(rpc, rollup).await?;
    if !st.exodus {
        if !(activate && st.due) {
            bail!(
                "the rollup is not in exodus ({}); nothing can exit through L1 alone",
                if st.due {
                    "it is due: add --activate"
                } else {
                    "the operator is keeping up"
                }
            );
        }
        send(
            rpc,
            signer,
            rollup,
            "activateExodus",
            Rollup::activateExodusCall {}.abi_encode(),
        )
        .await?;
        st = exodus::status(rpc, rollup).await?;
    }
    Ok(st)
}

#[derive(serde::Serialize)]
struct Exited {
    account: u32,
    /// The stream slot whose escrow was paid back (absent: the account's balance).
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_slot: Option<u16>,
    amount: u64,
    /// The exit's L1 transaction (absent: it had exited before).
    l1_tx: Option<B256>,
}

pub async fn exit(out: &Output, args: ExitArgs) -> anyhow::Result<()> {
    let key = KeyFile::load(&args.key)?;
    let operator = PublicKey::from_hex(&args.operator_pubkey)
        .map_err(|e| anyhow!("--operator-pubkey: {e}"))?;
    let (rpc, signer, rollup) = setup(&args.l1).await?;
    let st = in_exodus(&rpc, &signer, rollup, args.history.activate).await?;
    let tree = exodus::finalized_state(
        &rpc,
        rollup,
        args.history.from_block,
        args.history.max_range,
        operator,
        &st,
    )
    .await?;
    // The key's own accounts, except its agents' (SPEC 20.9: an agent's money goes to its
    // owner's address, so its owner's key exits it), and the agents its accounts own.
    let (accounts, agents) = exodus::accounts_to_exit(&tree, key.public_key());
    if accounts.is_empty() && agents.is_empty() {
        bail!(
            "key {} has no account in the finalized state (batch {})",
            key.public_key(),
            st.last_finalized_batch
        );
    }
    for index in &agents {
        tracing::warn!(
            account = index.0,
            owner = exodus::owner_of_agent(&tree, *index).map(|o| o.0),
            "an agent's balance exits to its owner's address: run `rollup exit` with the owner's key"
        );
    }
    if accounts.is_empty() {
        bail!(
            "every account of key {} is an agent: their balances exit to their owners' addresses, \
             with the owners' keys",
            key.public_key()
        );
    }
    let wanted = args.to.unwrap_or_else(|| signer.address());
    let mut to = exodus::exit_address(&rpc, rollup, key.public_key()).await?;
    if to == Address::ZERO {
        let call = exodus::authorise_call(&st.domain(), key.secret_key(), wanted)?;
        send(&rpc, &signer, rollup, "authoriseExit", call.abi_encode()).await?;
        to = wanted;
    } else if to != wanted {
        tracing::warn!(recorded = %to, asked = %wanted, "this key's exits go to the address recorded first");
    }
    let mut done = Vec::new();
    for index in accounts {
        let call = exodus::exit_call(&tree, index)
            .ok_or_else(|| anyhow!("account {} vanished", index.0))?;
        let amount = call.balance();
        let l1_tx = if exodus::exited(&rpc, rollup, index).await? {
            None
        } else {
            Some(
                send(&rpc, &signer, rollup, call.name(), call.abi_encode())
                    .await?
                    .transaction_hash,
            )
        };
        done.push(Exited {
            account: index.0,
            stream_slot: None,
            amount,
            l1_tx,
        });
        // The escrows of its open streams, each its own exit (SPEC 15.9, "Streams").
        for call in exodus::exit_stream_calls(&tree, index) {
            let slot = call.slot;
            let amount = call.stream.price * u64::from(call.stream.maxTicks - call.stream.settled);
            let l1_tx = if exodus::stream_exited(&rpc, rollup, index, slot).await? {
                None
            } else {
                Some(
                    send(&rpc, &signer, rollup, "exitStream", call.abi_encode())
                        .await?
                        .transaction_hash,
                )
            };
            done.push(Exited {
                account: index.0,
                stream_slot: Some(slot),
                amount,
                l1_tx,
            });
        }
    }
    let total: u128 = done
        .iter()
        .filter(|e| e.l1_tx.is_some())
        .map(|e| u128::from(e.amount))
        .sum();
    let v = serde_json::json!({
        "finalized_batch": st.last_finalized_batch,
        "finalized_root": st.finalized_root,
        "to": to,
        "exits": done,
        "paid": total.to_string(),
    });
    out.emit(&v, || {
        let lines: Vec<String> = done
            .iter()
            .map(|e| {
                let what = match e.stream_slot {
                    Some(slot) => format!("account {} stream {slot} escrow", e.account),
                    None => format!("account {}", e.account),
                };
                match e.l1_tx {
                    Some(tx) => format!("{what}: {} paid, tx {tx}", e.amount),
                    None => format!("{what}: had already exited"),
                }
            })
            .collect();
        format!(
            "exited from the state of batch {} to {to}: {total} paid\n{}",
            st.last_finalized_batch,
            lines.join("\n")
        )
    })
}

#[derive(serde::Serialize)]
struct Refunded {
    serial: u64,
    depositor: Address,
    amount: u64,
    l1_tx: Option<B256>,
}

pub async fn refund(out: &Output, args: RefundArgs) -> anyhow::Result<()> {
    let (rpc, signer, rollup) = setup(&args.l1).await?;
    let st = in_exodus(&rpc, &signer, rollup, args.history.activate).await?;
    let depositor = args.depositor.unwrap_or_else(|| signer.address());
    let calls = exodus::refundable_deposits(
        &rpc,
        &st,
        args.history.from_block,
        args.history.max_range,
        Some(depositor),
    )
    .await?;
    let mut done = Vec::new();
    for call in calls {
        let l1_tx = if exodus::refunded(&rpc, rollup, call.serial).await? {
            None
        } else {
            Some(
                send(&rpc, &signer, rollup, "refundDeposit", call.abi_encode())
                    .await?
                    .transaction_hash,
            )
        };
        done.push(Refunded {
            serial: call.serial,
            depositor: call.depositor,
            amount: call.amount,
            l1_tx,
        });
    }
    let total: u128 = done
        .iter()
        .filter(|r| r.l1_tx.is_some())
        .map(|r| u128::from(r.amount))
        .sum();
    let v =
        serde_json::json!({ "depositor": depositor, "refunds": done, "paid": total.to_string() });
    out.emit(&v, || {
        format!(
            "{} deposits of {depositor} not consumed by a finalized batch; {total} refunded now",
            done.len()
        )
    })
}

/// `rollup claim --from-l1`: the payout's proof from the commits' payout lists, then
/// `claimWithdrawal`.
pub async fn claim_from_l1(
    out: &Output,
    batch: u64,
    index: u64,
    operator_pubkey: Option<String>,
    l1: &L1Args,
) -> anyhow::Result<()> {
    let operator = operator_pubkey
        .ok_or_else(|| anyhow!("--from-l1 needs --operator-pubkey (the genesis account)"))?;
    let operator = PublicKey::from_hex(&operator).map_err(|e| anyhow!("--operator-pubkey: {e}"))?;
    let (rpc, signer, rollup) = setup(l1).await?;
    let cfg = rollup_l1_client::rebuild::RebuildConfig {
        rollup,
        from_block: 0,
        max_range: 10_000,
        until: None,
    };
    let rebuilt = rollup_l1_client::rebuild::rebuild(&rpc, &cfg, operator, |_| {}).await?;
    let open = rollup_l1_client::claims::unclaimed(&rpc, rollup, &rebuilt).await?;
    let Some(p) = open.iter().find(|u| u.batch == batch && u.index == index) else {
        bail!("batch {batch} has no unclaimed finalized payout {index} on L1 (claimed already, not finalized, or no such payout)");
    };
    let r = send(
        &rpc,
        &signer,
        rollup,
        "claimWithdrawal",
        p.claim_call().abi_encode(),
    )
    .await?;
    let v = serde_json::json!({"batch": batch, "index": index, "to": p.to, "amount": p.amount, "l1_tx": r.transaction_hash});
    out.emit(&v, || {
        format!(
            "claimed {} to {} (batch {batch}, payout {index}, proof from L1), tx {}",
            p.amount, p.to, r.transaction_hash
        )
    })
}
