//! `rollup`: the command-line wallet (keys, registration, payments, balances, receipts).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use rollup_client::{AccountIndex, Amount, Client, Error, KeyFile, Nonce, TxId, DEFAULT_ENDPOINT};
use serde::Serialize;

const EXIT_CODES: &str = "\
Amounts are integers in base units of the settlement token (6 decimals on devnet).

Exit status: 0 on success, 1 on any error (node unreachable, bad input, ...), 2 on a usage
error, 3 when the node rejected the transaction (the reason code is printed).";

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
    /// Show the chain id, rollup address, head block and counters of the node.
    Status,
    /// Show the receipt of a transaction by id.
    Receipt {
        /// Transaction id (0x followed by 64 hex digits).
        #[arg(value_name = "TX_ID")]
        tx_id: TxId,
    },
}

fn parse_amount(s: &str) -> Result<Amount, String> {
    let v: u64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number of base units"))?;
    Amount::new(v).ok_or_else(|| format!("{v} is above the maximum amount 2^63 - 1"))
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
                .is_some_and(|e| matches!(e, Error::Rejected { .. }));
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
            let key = KeyFile::load(&path)?;
            let from = key.account_index.ok_or_else(|| {
                anyhow!(
                    "{} has no account index: run `rollup register --key {}` first",
                    path.display(),
                    path.display()
                )
            })?;
            let client = Client::connect(endpoint)
                .await?
                .with_valid_for(Duration::from_secs(valid_for));
            let receipt = client
                .pay(key.secret_key(), from, AccountIndex(to), amount, fee, nonce)
                .await?;
            out.emit(&receipt, || receipt.to_string())
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
