//! `rollup`: the command-line wallet (keys, registration, payments, balances, receipts).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use rollup_client::x402::{Budget, X402Payer};
use rollup_client::{AccountIndex, Amount, Client, Error, KeyFile, Nonce, TxId, DEFAULT_ENDPOINT};
use serde::Serialize;

mod agent;
mod exodus;
mod shares;
mod stream;

const EXIT_CODES: &str = "\
Amounts are integers in base units of the settlement token (6 decimals on devnet).

Exit status: 0 on success, 1 on any error (node unreachable, bad input, ...), 2 on a usage
error, 3 when the node rejected the transaction or a tick (the reason code is printed).";

/// Exit status for a transaction the node rejected (distinct from a failure to ask).
const EXIT_REJECTED: u8 = 3;

#[derive(Parser)]
#[command(
    name = "rollup",
    version,
    about = "Wallet for the agent-payments rollup: keys, registration, payments, balances and receipts.",
    after_help = EXIT_CODES
)]
struct Cli {
    /// gRPC endpoint of the node.
    #[arg(long, global = true, env = "ROLLUP_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    endpoint: String,

    /// Print machine-readable JSON (one object per line) instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a new key pair and write it to a key file readable only by you (mode 0600).
    Keygen {
        /// Where to write the key file (JSON).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace the file if it exists (the old key is lost).
        #[arg(long)]
        force: bool,
    },
    /// Register the key of a key file on the rollup and store the assigned account index in it.
    Register {
        /// Key file written by `rollup keygen`.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Seconds the registration stays valid if the node cannot include it at once.
        #[arg(long, value_name = "SECS", default_value_t = 3600)]
        valid_for: u64,
    },
    /// Pay another account from the registered account of a key file.
    Pay {
        /// Key file of the paying account (must be registered).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Account index of the payee.
        #[arg(long, value_name = "N")]
        to: u32,
        /// Amount to pay, in base units.
        #[arg(long, value_name = "A", value_parser = parse_amount)]
        amount: Amount,
        /// Fee for the operator, in base units.
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
        /// Nonce to sign with (default: the account's next nonce, asked from the node).
        #[arg(long, value_name = "N", value_parser = parse_nonce)]
        nonce: Option<Nonce>,
        /// Seconds the payment stays valid: after that the node refuses it (EXPIRED).
        #[arg(long, value_name = "SECS", default_value_t = 3600)]
        valid_for: u64,
    },
    /// Pay several accounts at once from the registered account of a key file: one split
    /// payment (up to 1,024 payees, all or nothing; a node accepts splits when its pinned
    /// circuits prove them). Payees may be given in any order.
    Split {
        /// Key file of the paying account (must be registered).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// A payee and its amount in base units, as ACCOUNT:AMOUNT; repeat for each payee.
        #[arg(long = "to", value_name = "N:A", required = true, value_parser = parse_part)]
        parts: Vec<(AccountIndex, Amount)>,
        /// Fee for the operator, in base units.
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
        /// Nonce to sign with (default: the account's next nonce, asked from the node).
        #[arg(long, value_name = "N", value_parser = parse_nonce)]
        nonce: Option<Nonce>,
    },
    /// Fetch an HTTP resource, paying for it with x402 v2 if it answers 402: one transfer in
    /// the `exact` scheme on this rollup, to the payee and of the amount the server asks,
    /// within --max-amount. Prints the body (with --json: status, settlement and body).
    Fetch {
        /// URL of the resource.
        #[arg(value_name = "URL")]
        url: String,
        /// Key file of the paying account (must be registered).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The most this request may cost (base units); a higher price is refused unpaid.
        #[arg(long, value_name = "A", value_parser = parse_amount)]
        max_amount: Amount,
        /// Fee for the operator, in base units, on top of the price.
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
    },
    /// Show an account's balance and next nonce.
    Balance {
        /// Account index.
        #[arg(
            long,
            value_name = "N",
            conflicts_with = "key",
            required_unless_present = "key"
        )]
        account: Option<u32>,
        /// Key file whose registered account to show.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Print receipts of transactions touching an account as they are accepted (Ctrl-C stops).
    Watch {
        /// Account index to watch (as sender, recipient or registrant).
        #[arg(long, value_name = "N")]
        account: u32,
        /// Resume after this global sequence number (default: from now on).
        #[arg(long, value_name = "S")]
        from_seq: Option<u64>,
    },
    /// Devnet only: credit an account with test funds (the node must run with --devnet).
    Faucet {
        /// Account index to credit.
        #[arg(long, value_name = "N")]
        account: u32,
        /// Amount to credit, in base units.
        #[arg(long, value_name = "A", value_parser = parse_amount)]
        amount: Amount,
    },
    /// Withdraw from the registered account of a key file to an L1 address (an L2
    /// transaction). Once its batch is finalized on L1, `rollup claim` pays it out.
    Withdraw {
        #[command(flatten)]
        w: WithdrawArgs,
    },
    /// Force a withdrawal through L1 when the sequencer ignores yours: signs the withdraw with the
    /// account's key and queues it with `Rollup.requestForcedWithdrawal`, paying its fee in ether
    /// (`FORCED_REQUEST_FEE`, 0.001 ETH, to the operator). The sequencer must
    /// process it before the queue deadline (applied, or rejected with a reason if it breaks a
    /// rule, e.g. a stale nonce); an applied one is claimed with `rollup claim`. Works without
    /// the node when --nonce and --rollup are given (the domain comes from the L1 chain id).
    ForceWithdraw {
        #[command(flatten)]
        w: WithdrawArgs,
        /// Seconds the signed withdraw stays valid; it is judged at the L1 request time, so
        /// this only needs to cover the time until the request is mined.
        #[arg(long, value_name = "SECS", default_value = "3600")]
        valid_for: u64,
        #[command(flatten)]
        l1: L1Args,
    },
    /// Deposit L1 tokens to an L2 account through the L1 Rollup contract (approve + deposit),
    /// signed with a local secp256k1 key. Credited on L2 after the node's confirmation depth.
    Deposit {
        /// L2 account index to credit.
        #[arg(long, value_name = "N")]
        account: u32,
        /// Amount, in base units.
        #[arg(long, value_name = "A", value_parser = parse_amount)]
        amount: Amount,
        #[command(flatten)]
        l1: L1Args,
    },
    /// Claim a finalized withdrawal (payout `index` of batch `batch`) on L1: fetches the payout
    /// proof from the node's HTTP API and calls `Rollup.claimWithdrawal`. Anyone may claim; the
    /// tokens always go to the withdrawal's L1 address. A second claim is rejected by L1.
    Claim {
        /// Batch number of the withdrawal.
        #[arg(long, value_name = "B")]
        batch: u64,
        /// Payout index within the batch (see the `withdrawal_claimable` event).
        #[arg(long, value_name = "I")]
        index: u64,
        /// HTTP base URL of the node (serves /v1/withdrawals/{batch}/{index}/proof).
        #[arg(long, env = "ROLLUP_HTTP", default_value = "http://127.0.0.1:8080")]
        http: String,
        /// Build the proof from L1 data alone instead of asking the node: the payout list the
        /// batch's commit carries (needs --operator-pubkey and --rollup; works with the node
        /// gone).
        #[arg(long)]
        from_l1: bool,
        /// With --from-l1: the operator's public key (0x + 80 hex digits), the genesis account
        /// the rebuild starts from.
        #[arg(long, env = "ROLLUP_OPERATOR_PUBKEY", value_name = "HEX")]
        operator_pubkey: Option<String>,
        #[command(flatten)]
        l1: L1Args,
    },
    /// Leave through L1 alone once the rollup is in exodus (the operator failed): rebuilds the
    /// last finalized state from L1 calldata, authorises the exit address with the key's
    /// signature (once per key) and exits every account of the key with a Merkle proof of its
    /// balance. Needs no node. A second run pays nothing twice.
    Exit(exodus::ExitArgs),
    /// In exodus, refund the deposits no finalized batch consumed to their depositor, from L1
    /// logs alone. Each is refunded once.
    Refund(exodus::RefundArgs),
    /// Payment streams (on a node whose circuits prove them, or a devnet node started with
    /// --experimental-streams): open a stream to a payee, tick it through the node's relay,
    /// watch and settle the ticks as the payee, close it.
    Stream {
        #[command(subcommand)]
        command: stream::StreamCommand,
    },
    /// Agent passports (experimental: a devnet node started with --experimental-agents):
    /// create an agent account bound to an owner by a spending policy, change the policy,
    /// revoke the agent, sweep its balance back, show and list passports.
    Agent {
        #[command(subcommand)]
        command: agent::AgentCommand,
    },
    /// Revenue-share accounts (on a node whose circuits prove them, or a devnet node started
    /// with --experimental-streams): register for good how an account's income is shared, pay
    /// its balance out by the shares (anyone may), show them.
    Shares {
        #[command(subcommand)]
        command: shares::SharesCommand,
    },
    /// Show the chain id, rollup address, head block and counters of the node.
    Status,
    /// Show the receipt of a transaction by id.
    Receipt {
        /// Transaction id (0x followed by 64 hex digits).
        #[arg(value_name = "TX_ID")]
        tx_id: TxId,
    },
}

/// What `withdraw` and `force-withdraw` sign.
#[derive(clap::Args)]
struct WithdrawArgs {
    /// Key file of the withdrawing account (must be registered).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// L1 address (0x + 40 hex digits) that receives the tokens on L1.
    #[arg(long, value_name = "ADDRESS")]
    to_l1: String,
    /// Amount to withdraw, in base units.
    #[arg(long, value_name = "A", value_parser = parse_amount)]
    amount: Amount,
    /// Fee to the operator, in base units.
    #[arg(long, value_name = "A", value_parser = parse_amount, default_value = "0")]
    fee: Amount,
    /// Nonce to use (default: the account's next nonce, asked from the node).
    #[arg(long, value_name = "N", value_parser = parse_nonce)]
    nonce: Option<Nonce>,
}

#[derive(clap::Args)]
struct L1Args {
    /// L1 JSON-RPC endpoint.
    #[arg(long, env = "ROLLUP_L1_RPC", default_value = "http://127.0.0.1:8545")]
    l1_rpc: String,
    /// File with the secp256k1 key (32 bytes hex) that signs the L1 transactions.
    #[arg(long, env = "ROLLUP_L1_KEY_FILE", value_name = "FILE")]
    l1_key: PathBuf,
    /// L1 Rollup contract (default: the rollup address the node reports).
    #[arg(long, value_name = "ADDRESS")]
    rollup: Option<String>,
}

async fn l1_setup(
    endpoint: &str,
    l1: &L1Args,
) -> anyhow::Result<(
    rollup_l1_client::rpc::Rpc,
    rollup_l1_client::signer::L1Signer,
    rollup_l1_client::Address,
)> {
    let text = std::fs::read_to_string(&l1.l1_key)
        .map_err(|e| anyhow!("reading {}: {e}", l1.l1_key.display()))?;
    let signer = rollup_l1_client::signer::L1Signer::from_hex(&text)?;
    let rollup = match &l1.rollup {
        Some(a) => a
            .parse()
            .map_err(|_| anyhow!("--rollup is not an address"))?,
        None => {
            let status = Client::connect(endpoint).await?.status().await?;
            rollup_l1_client::Address::from(status.rollup_address)
        }
    };
    Ok((
        rollup_l1_client::rpc::Rpc::new(l1.l1_rpc.clone()),
        signer,
        rollup,
    ))
}

/// A key file that must be registered, and its account (for commands that sign spends).
fn registered_key(path: &Path) -> anyhow::Result<(KeyFile, AccountIndex)> {
    let key = KeyFile::load(path)?;
    let from = key.account_index.ok_or_else(|| {
        anyhow!(
            "{} has no account index: run `rollup register --key {}` first",
            path.display(),
            path.display()
        )
    })?;
    Ok((key, from))
}

/// The key file (registered), its account and the `--to-l1` address of a withdrawal.
fn withdrawal_args(
    path: &std::path::Path,
    to_l1: &str,
) -> anyhow::Result<(KeyFile, AccountIndex, state::tx::L1Address)> {
    let key = KeyFile::load(path)?;
    let from = key.account_index.ok_or_else(|| {
        anyhow!(
            "{} has no account index: it is not registered",
            path.display()
        )
    })?;
    let bytes = hex::decode(to_l1.trim_start_matches("0x"))
        .ok()
        .and_then(|b| <[u8; 20]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| anyhow!("--to-l1 must be 0x followed by 40 hex digits"))?;
    Ok((key, from, state::tx::L1Address(bytes)))
}

fn parse_amount(s: &str) -> Result<Amount, String> {
    let v: u64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number of base units"))?;
    Amount::new(v).ok_or_else(|| format!("{v} is above the maximum amount 2^63 - 1"))
}

fn parse_part(s: &str) -> Result<(AccountIndex, Amount), String> {
    let (to, amount) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not ACCOUNT:AMOUNT"))?;
    let to: u32 = to
        .parse()
        .map_err(|_| format!("`{to}` is not an account index"))?;
    Ok((AccountIndex(to), parse_amount(amount)?))
}

fn parse_nonce(s: &str) -> Result<Nonce, String> {
    let v: u64 = s.parse().map_err(|_| format!("`{s}` is not a nonce"))?;
    Nonce::new(v).ok_or_else(|| format!("{v} is above the maximum nonce 2^63 - 1"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, with the causes (e.g. "cannot reach the node at ...: transport error:
            // tcp connect error: Connection refused").
            eprintln!("error: {}", rollup_client::error_line(err.as_ref()));
            let rejected = err
                .downcast_ref::<Error>()
                .is_some_and(|e| matches!(e, Error::Rejected { .. }))
                || err.downcast_ref::<stream::TickRefused>().is_some();
            ExitCode::from(if rejected { EXIT_REJECTED } else { 1 })
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = Output { json: cli.json };
    let endpoint = cli.endpoint.as_str();
    match cli.command {
        Command::Keygen { out: path, force } => {
            let key = KeyFile::generate();
            key.save(&path, force)?;
            #[derive(Serialize)]
            struct Generated<'a> {
                path: &'a Path,
                public_key: String,
            }
            let public_key = key.public_key().to_string();
            out.emit(
                &Generated {
                    path: &path,
                    public_key: public_key.clone(),
                },
                || format!("wrote {}\npublic key {public_key}", path.display()),
            )
        }
        Command::Register {
            key: path,
            valid_for,
        } => {
            let mut key = KeyFile::load(&path)?;
            if let Some(index) = key.account_index {
                bail!(
                    "{} is already registered as account {index} (remove account_index from the file to register again)",
                    path.display()
                );
            }
            let client = Client::connect(endpoint).await?;
            let valid_until = client.deadline_in(Duration::from_secs(valid_for));
            let registered = client.register(key.secret_key(), Some(valid_until)).await?;
            key.account_index = Some(registered.index);
            key.save(&path, true).with_context(|| {
                format!(
                    "registered as account {}, but could not store it in the key file",
                    registered.index
                )
            })?;
            out.emit(&registered, || {
                format!(
                    "registered account {} ({})",
                    registered.index, registered.receipt
                )
            })
        }
        Command::Pay {
            key: path,
            to,
            amount,
            fee,
            nonce,
            valid_for,
        } => {
            let (key, from) = registered_key(&path)?;
            let client = Client::connect(endpoint)
                .await?
                .with_valid_for(Duration::from_secs(valid_for));
            let receipt = client
                .pay(key.secret_key(), from, AccountIndex(to), amount, fee, nonce)
                .await?;
            out.emit(&receipt, || receipt.to_string())
        }
        Command::Split {
            key: path,
            parts,
            fee,
            nonce,
        } => {
            let (key, from) = registered_key(&path)?;
            let client = Client::connect(endpoint).await?;
            let total: u128 = parts.iter().map(|(_, a)| u128::from(a.get())).sum();
            let n = parts.len();
            let receipt = client
                .pay_split(key.secret_key(), from, parts, fee, nonce)
                .await?;
            out.emit(&receipt, || {
                format!("paid {total} to {n} payees at once ({receipt})")
            })
        }
        Command::Fetch {
            url,
            key: path,
            max_amount,
            fee,
        } => {
            let (key, from) = registered_key(&path)?;
            let client = Client::connect(endpoint).await?;
            let budget = Budget::new(max_amount, max_amount.get().saturating_add(fee.get()));
            let payer =
                X402Payer::new(client, key.secret_key().clone(), from, budget).with_fee(fee);
            let answer = payer.get(&url).await?;
            let body = String::from_utf8_lossy(&answer.body).into_owned();
            let settlement = answer.payment.as_ref().map(|p| &p.settlement);
            if answer.status >= 400 {
                bail!("{url} answered {}: {body}", answer.status);
            }
            let json = serde_json::json!({
                "status": answer.status,
                "settlement": settlement,
                "body": body,
            });
            out.emit(&json, || match settlement {
                Some(s) => format!(
                    "{body}\npaid {} to {} in {} ({})",
                    answer
                        .payment
                        .as_ref()
                        .map_or("", |p| p.requirements.amount.as_str()),
                    answer
                        .payment
                        .as_ref()
                        .map_or("", |p| p.requirements.pay_to.as_str()),
                    s.transaction,
                    s.network
                ),
                None => body.clone(),
            })
        }
        Command::Balance { account, key } => {
            let index = match (account, key) {
                (Some(index), _) => AccountIndex(index),
                (None, Some(path)) => KeyFile::load(&path)?.account_index.ok_or_else(|| {
                    anyhow!(
                        "{} has no account index: it is not registered",
                        path.display()
                    )
                })?,
                (None, None) => bail!("give --account N or --key FILE"),
            };
            let client = Client::connect(endpoint).await?;
            let account = client.account(index).await?;
            out.emit(&account, || {
                format!(
                    "account {}: balance {}, next nonce {}",
                    account.index, account.balance, account.nonce
                )
            })
        }
        Command::Watch { account, from_seq } => {
            let client = Client::connect(endpoint).await?;
            let mut receipts = client.watch(AccountIndex(account), from_seq).await?;
            loop {
                tokio::select! {
                    next = receipts.next() => match next {
                        Some(receipt) => {
                            let receipt = receipt?;
                            out.emit(&receipt, || receipt.to_string())?;
                        }
                        None => bail!("the node ended the watch"),
                    },
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                }
            }
        }
        Command::Faucet { account, amount } => {
            let client = Client::connect(endpoint).await?;
            let receipt = client.faucet(AccountIndex(account), amount).await?;
            out.emit(&receipt, || {
                format!("credited account {account} with {amount} ({receipt})")
            })
        }
        Command::Withdraw {
            w:
                WithdrawArgs {
                    key: path,
                    to_l1,
                    amount,
                    fee,
                    nonce,
                },
        } => {
            let (key, from, to) = withdrawal_args(&path, &to_l1)?;
            let client = Client::connect(endpoint).await?;
            let receipt = client
                .withdraw(key.secret_key(), from, to, amount, fee, nonce)
                .await?;
            out.emit(&receipt, || {
                format!("withdrawal of {amount} to {to_l1} accepted ({receipt}); claim it on L1 with `rollup claim` once its batch is finalized")
            })
        }
        Command::ForceWithdraw {
            w:
                WithdrawArgs {
                    key: path,
                    to_l1,
                    amount,
                    fee,
                    nonce,
                },
            valid_for,
            l1,
        } => {
            use alloy_sol_types::SolCall;
            use rollup_l1_client::contracts::Rollup;
            let (key, from, to) = withdrawal_args(&path, &to_l1)?;
            let (rpc, signer, rollup) = l1_setup(endpoint, &l1).await?;
            let nonce = match nonce {
                Some(n) => n,
                None => Client::connect(endpoint).await?.next_nonce(from).await?,
            };
            let domain = state::tx::Domain {
                chain_id: rpc.chain_id().await?,
                rollup: rollup.0 .0,
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let valid_until = state::account::Timestamp::new(now.saturating_add(valid_for))
                .ok_or_else(|| anyhow!("--valid-for is too large"))?;
            let w = state::tx::UnsignedWithdraw {
                from,
                to_l1: to,
                amount,
                fee,
                nonce,
                valid_until,
            }
            .sign(&domain, key.secret_key());
            let call = Rollup::requestForcedWithdrawalCall {
                withdrawTx: state::tx::Transaction::Withdraw(w).encode().into(),
            };
            // The anti-spam fee (SPEC 15.2), read from the contract rather than assumed.
            let fee_out = rpc
                .call(
                    rollup,
                    Rollup::FORCED_REQUEST_FEECall {}.abi_encode().into(),
                )
                .await?;
            let fee = Rollup::FORCED_REQUEST_FEECall::abi_decode_returns(&fee_out)?;
            let r = rpc
                .send_signed_with_value(&signer, rollup, call.abi_encode().into(), fee)
                .await
                .map_err(|e| anyhow!("requestForcedWithdrawal rejected by L1: {e}"))?;
            let serial = r
                .logs
                .iter()
                .find_map(|l| {
                    <Rollup::ForcedWithdrawalRequested as alloy_sol_types::SolEvent>::decode_raw_log(
                        l.topics.iter().copied(),
                        &l.data,
                    )
                    .ok()
                })
                .map(|e| (e.serial, e.deadline))
                .ok_or_else(|| anyhow!("no ForcedWithdrawalRequested event in the receipt"))?;
            let v = serde_json::json!({"serial": serial.0, "deadline": serial.1, "account": from.0, "amount": amount.get(), "nonce": nonce.get(), "l1_tx": r.transaction_hash});
            out.emit(&v, || {
                format!(
                    "forced withdrawal of {amount} from account {} queued on L1: serial {}, the sequencer must process it by {} (unix time), tx {}",
                    from.0, serial.0, serial.1, r.transaction_hash
                )
            })
        }
        Command::Deposit {
            account,
            amount,
            l1,
        } => {
            use alloy_sol_types::SolCall;
            use rollup_l1_client::contracts::{Rollup, TestStablecoin};
            let (rpc, signer, rollup) = l1_setup(endpoint, &l1).await?;
            let token_out = rpc
                .call(rollup, Rollup::tokenCall {}.abi_encode().into())
                .await?;
            let token = Rollup::tokenCall::abi_decode_returns(&token_out)?;
            let approve = TestStablecoin::approveCall {
                spender: rollup,
                value: rollup_l1_client::U256::from(amount.get()),
            };
            rpc.send_signed(&signer, token, approve.abi_encode().into())
                .await?;
            let call = Rollup::depositCall {
                recipient: account,
                amount: amount.get(),
            };
            let r = rpc
                .send_signed(&signer, rollup, call.abi_encode().into())
                .await?;
            let serial = r
                .logs
                .iter()
                .find_map(|l| {
                    <Rollup::Deposit as alloy_sol_types::SolEvent>::decode_raw_log(
                        l.topics.iter().copied(),
                        &l.data,
                    )
                    .ok()
                })
                .map(|e| e.serial)
                .ok_or_else(|| anyhow!("no Deposit event in the receipt"))?;
            let v = serde_json::json!({"serial": serial, "account": account, "amount": amount.get(), "l1_tx": r.transaction_hash});
            out.emit(&v, || {
                format!(
                    "deposited {amount} to account {account}: L1 serial {serial}, tx {}",
                    r.transaction_hash
                )
            })
        }
        Command::Claim {
            batch,
            index,
            from_l1: true,
            operator_pubkey,
            l1,
            ..
        } => exodus::claim_from_l1(&out, batch, index, operator_pubkey, &l1).await,
        Command::Claim {
            batch,
            index,
            http,
            l1,
            ..
        } => {
            use alloy_sol_types::SolCall;
            let (rpc, signer, rollup) = l1_setup(endpoint, &l1).await?;
            let url = format!(
                "{}/v1/withdrawals/{batch}/{index}/proof",
                http.trim_end_matches('/')
            );
            let resp = reqwest::get(&url).await?;
            if !resp.status().is_success() {
                let body = resp.text().await.unwrap_or_default();
                return Err(anyhow!("{url}: {body}"));
            }
            let p: serde_json::Value = resp.json().await?;
            if p["claimable"] != serde_json::json!(true) {
                return Err(anyhow!(
                    "batch {batch} is not finalized on L1 yet ({})",
                    p["batch_status"]
                ));
            }
            let proof: Vec<rollup_l1_client::B256> = serde_json::from_value(p["proof"].clone())?;
            let call = rollup_l1_client::contracts::Rollup::claimWithdrawalCall {
                batchNumber: batch,
                index,
                from: p["from"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("bad proof answer"))?,
                to: serde_json::from_value(p["to"].clone())?,
                amount: p["amount"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("bad proof answer"))?,
                proof,
            };
            let r = rpc
                .send_signed(&signer, rollup, call.abi_encode().into())
                .await
                .map_err(|e| anyhow!("claim rejected by L1 (already claimed?): {e}"))?;
            let v = serde_json::json!({"batch": batch, "index": index, "to": p["to"], "amount": p["amount"], "l1_tx": r.transaction_hash});
            out.emit(&v, || {
                format!(
                    "claimed {} to {} (batch {batch}, payout {index}), tx {}",
                    p["amount"],
                    p["to"].as_str().unwrap_or_default(),
                    r.transaction_hash
                )
            })
        }
        Command::Stream { command } => stream::run(&out, endpoint, command).await,
        Command::Agent { command } => agent::run(&out, endpoint, command).await,
        Command::Shares { command } => shares::run(&out, endpoint, command).await,
        Command::Exit(args) => exodus::exit(&out, args).await,
        Command::Refund(args) => exodus::refund(&out, args).await,
        Command::Status => {
            let client = Client::connect(endpoint).await?;
            let status = client.status().await?;
            out.emit(&status, || {
                format!(
                    "endpoint      {endpoint}\n\
                     chain id      {}\n\
                     rollup        0x{}\n\
                     devnet        {}\n\
                     head block    {}\n\
                     state root    0x{}\n\
                     accounts      {}\n\
                     accepted txs  {}\n\
                     next deposit  {}\n\
                     node time     {}",
                    status.chain_id,
                    hex::encode(status.rollup_address),
                    if status.devnet { "yes" } else { "no" },
                    status.head_block,
                    hex::encode(&status.head_state_root),
                    status.num_accounts,
                    status.accepted_txs,
                    status.next_deposit_seq,
                    status.now,
                )
            })
        }
        Command::Receipt { tx_id } => {
            let client = Client::connect(endpoint).await?;
            match client.receipt(&tx_id).await? {
                Some(receipt) => out.emit(&receipt, || receipt.to_string()),
                None => bail!("the node knows no transaction {tx_id}"),
            }
        }
    }
}

/// Text for people, or one JSON object per line for programs.
struct Output {
    json: bool,
}

impl Output {
    fn emit<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string(value)?);
        } else {
            println!("{}", text());
        }
        Ok(())
    }
}
