//! `rollup stream …`: payment streams from the command line (SPEC 18, docs/API.md "Ticks").
//!
//! The payer's side keeps its stream in a stream file (`open --out`, mode 0600: the seed makes
//! every tick), written before the open is submitted so that an accepted open never lacks its
//! seed. `tick` resumes from the later of the file's last tick and the node's (a run killed
//! after the relay accepted ticks it had not yet recorded loses nothing and replays nothing).
//! The payee's side needs no file: `watch` prints the ticks as they arrive and `settle` settles
//! the latest one the node relayed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use rollup_client::ticks::{PayerStream, StreamState, StreamTerms};
use rollup_client::{AccountIndex, Amount, Client};
use serde::Serialize;

use crate::{parse_amount, registered_key, Output};

#[derive(Subcommand)]
pub enum StreamCommand {
    /// Open a stream from the registered account of a key file to a payee: escrows
    /// price x max-ticks from the payer's balance and writes the stream (its seed, which makes
    /// every tick) to --out with mode 0600, before submitting the open.
    Open {
        /// Key file of the paying account (must be registered).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Account index of the payee.
        #[arg(long, value_name = "N")]
        to: u32,
        /// Paid per tick, in base units (positive).
        #[arg(long, value_name = "A", value_parser = parse_amount)]
        price: Amount,
        /// At most this many ticks (1 to 16,777,216).
        #[arg(long, value_name = "M")]
        max_ticks: u32,
        /// Seconds until the stream expires; the payee may settle for one hour more, then the
        /// payer may close it and take back the rest of the escrow.
        #[arg(long, value_name = "SECS", default_value_t = 3600)]
        lasts: u64,
        /// The payer's stream slot (0 to 65,535) that holds the stream until it is closed.
        #[arg(long, value_name = "S", default_value_t = 0)]
        slot: u16,
        /// Fee of the open, to the operator, in base units.
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
        /// Where to write the stream file (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Commit to a tree of tick secrets instead of a hash chain (SPEC 18.8): each tick
        /// carries a sibling or two more (32 bytes each), and a settlement costs one path in
        /// the batch proof however many ticks it settles, with no 65,536-tick limit. For long
        /// streams settled rarely.
        #[arg(long)]
        tree: bool,
    },
    /// Send the next ticks of a stream through the node's relay (each one checked and
    /// acknowledged) and record the last one accepted in the stream file. Stops at the first
    /// refused tick (exit status 3, with its reason).
    Tick {
        /// Stream file written by `rollup stream open`.
        #[arg(long, value_name = "FILE")]
        stream: PathBuf,
        /// How many ticks to send (never beyond the stream's maximum).
        #[arg(long, value_name = "N", default_value_t = 1)]
        count: u32,
        /// Milliseconds between ticks (0: as fast as the relay acknowledges them).
        #[arg(long, value_name = "MS", default_value_t = 0)]
        every: u64,
    },
    /// Print the ticks of the streams paying an account as the relay accepts them (Ctrl-C
    /// stops). Settle the latest one with `rollup stream settle`, or let the watch settle:
    /// with --settle-every it settles a stream whenever that many ticks are unsettled, and
    /// settles what is left when stopped.
    Watch {
        /// Account index of the payee.
        #[arg(
            long,
            value_name = "N",
            conflicts_with = "key",
            required_unless_present = "key"
        )]
        account: Option<u32>,
        /// Key file whose registered account is the payee (needed to settle).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Settle a stream as soon as this many of its ticks are unsettled (needs --key).
        #[arg(
            long,
            value_name = "TICKS",
            requires = "key",
            conflicts_with = "account",
            value_parser = clap::value_parser!(u32).range(1..)
        )]
        settle_every: Option<u32>,
    },
    /// Show a stream: its terms, how many ticks are settled, the escrow left and the latest
    /// tick the node relayed.
    Show {
        #[command(flatten)]
        at: StreamAt,
    },
    /// As the payee, settle the latest tick the node relayed for a stream: price x (tick -
    /// settled) is paid to the payee and the stream stays open.
    Settle {
        /// Key file of the payee (must be registered).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        #[command(flatten)]
        at: StreamAt,
        /// Fee of the settlement, to the operator, in base units.
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
    },
    /// Close a stream, as its payee (any time: unsettled ticks are given up) or its payer (only
    /// one hour after expiry): the rest of the escrow returns to the payer.
    Close {
        /// Key file of the payer or the payee (must be registered).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        #[command(flatten)]
        at: StreamAt,
        /// Fee of the close, to the operator, in base units.
        #[arg(long, value_name = "F", value_parser = parse_amount, default_value = "0")]
        fee: Amount,
    },
}

/// Which stream: the payer's account and its slot.
#[derive(clap::Args)]
pub struct StreamAt {
    /// Account index of the payer.
    #[arg(long, value_name = "N")]
    payer: u32,
    /// The payer's stream slot.
    #[arg(long, value_name = "S")]
    slot: u16,
}

/// A tick the relay refused: the command fails with the rejection exit status.
#[derive(Debug, thiserror::Error)]
#[error("tick {k} refused: {reason}")]
pub struct TickRefused {
    pub k: u32,
    pub reason: String,
}

pub async fn run(out: &Output, endpoint: &str, command: StreamCommand) -> anyhow::Result<()> {
    match command {
        StreamCommand::Open {
            key,
            to,
            price,
            max_ticks,
            lasts,
            slot,
            fee,
            out: path,
            tree,
        } => {
            let (key, payer) = registered_key(&key)?;
            if path.exists() {
                bail!(
                    "{} already exists (a stream file holds the only copy of a stream's seed)",
                    path.display()
                );
            }
            let client = Client::connect(endpoint).await?;
            let mut terms = StreamTerms::new(
                AccountIndex(to),
                price,
                max_ticks,
                Duration::from_secs(lasts),
            );
            terms.fee = fee;
            if tree {
                terms = terms.with_tick_tree();
            }
            let (stream, open) = client
                .prepare_pay_stream(key.secret_key(), payer, slot, terms)
                .await?;
            stream.save(&path, 0, false)?;
            let receipt = match client.submit(&open).await.and_then(|r| r.into_accepted()) {
                Ok(r) => r,
                Err(e) => {
                    // Not opened: the seed is worth nothing, and the file would only mislead.
                    let _ = std::fs::remove_file(&path);
                    return Err(e.into());
                }
            };
            let escrow = u128::from(price.get()) * u128::from(max_ticks);
            #[derive(Serialize)]
            struct Opened<'a> {
                payer: u32,
                slot: u16,
                opened_at: u64,
                payee: u32,
                escrow: u128,
                file: &'a std::path::Path,
                receipt: &'a rollup_client::Receipt,
            }
            out.emit(
                &Opened {
                    payer: payer.0,
                    slot,
                    opened_at: stream.id.opened_at.get(),
                    payee: to,
                    escrow,
                    file: &path,
                    receipt: &receipt,
                },
                || {
                    format!(
                        "opened stream {}/{slot} to account {to}: {max_ticks} ticks of {price}, {escrow} escrowed ({receipt})\nstream file {} (keep it secret: it makes every tick)",
                        payer.0,
                        path.display()
                    )
                },
            )
        }
        StreamCommand::Tick {
            stream: path,
            count,
            every,
        } => tick(out, endpoint, path, count, Duration::from_millis(every)).await,
        StreamCommand::Watch {
            account,
            key,
            settle_every,
        } => {
            let (key, payee) = match (account, key) {
                (Some(a), _) => (None, AccountIndex(a)),
                (None, Some(path)) => {
                    let (k, i) = registered_key(&path)?;
                    (Some(k), i)
                }
                (None, None) => bail!("give --account N or --key FILE"),
            };
            let settler = match (key, settle_every) {
                (Some(k), Some(every)) => Some((k, every)),
                _ => None,
            };
            watch(out, endpoint, payee, settler).await
        }
        StreamCommand::Show { at } => {
            let client = Client::connect(endpoint).await?;
            let s = client
                .existing_stream(AccountIndex(at.payer), at.slot)
                .await?;
            out.emit(&s, || describe(&s))
        }
        StreamCommand::Settle { key, at, fee } => {
            let (key, payee) = registered_key(&key)?;
            let client = Client::connect(endpoint).await?;
            let settled = client
                .settle_relayed(
                    key.secret_key(),
                    payee,
                    AccountIndex(at.payer),
                    at.slot,
                    fee,
                )
                .await?;
            let Some((before, receipt)) = settled else {
                bail!(
                    "nothing to settle: the node relayed no tick of stream {}/{} past the settled count (a restarted node knows only ticks sent since)",
                    at.payer,
                    at.slot
                );
            };
            let to = before.relayed.map_or(0, |t| t.k.get());
            let paid = before.unsettled();
            let v = serde_json::json!({
                "payer": at.payer, "slot": at.slot, "from": before.settled.get(), "to": to,
                "paid": paid.get(), "payee": payee.0, "receipt": receipt,
            });
            out.emit(&v, || {
                format!(
                    "settled ticks {}..{to} of stream {}/{}: {paid} paid to account {} ({receipt})",
                    before.settled.get() + 1,
                    at.payer,
                    at.slot,
                    payee.0
                )
            })
        }
        StreamCommand::Close { key, at, fee } => {
            let (key, signer) = registered_key(&key)?;
            let client = Client::connect(endpoint).await?;
            let payer = AccountIndex(at.payer);
            let before = client.existing_stream(payer, at.slot).await?;
            let receipt = client
                .close_stream(key.secret_key(), signer, payer, at.slot, fee)
                .await?;
            let v = serde_json::json!({
                "payer": at.payer, "slot": at.slot, "refunded": before.escrow.get(), "receipt": receipt,
            });
            out.emit(&v, || {
                format!(
                    "closed stream {}/{}: {} returned to account {} ({receipt})",
                    at.payer, at.slot, before.escrow, at.payer
                )
            })
        }
    }
}

/// What a settling watch knows of one stream: its opening, settled count and latest tick.
struct Watched {
    opened_at: u64,
    settled: u32,
    latest: rollup_client::proto::Tick,
}

/// `rollup stream watch`: prints each tick; with a settler, settles a stream once `every` of
/// its ticks are unsettled, and settles the rest on Ctrl-C. A settlement the node refuses
/// (e.g. the payee settled elsewhere: `STALE_SETTLE`) is reported and the stream re-read; the
/// watch goes on.
async fn watch(
    out: &Output,
    endpoint: &str,
    payee: AccountIndex,
    settler: Option<(rollup_client::KeyFile, u32)>,
) -> anyhow::Result<()> {
    let client = Client::connect(endpoint).await?;
    let mut ticks = client.watch_ticks(payee).await?;
    let mut streams: std::collections::HashMap<(u32, u32), Watched> =
        std::collections::HashMap::new();
    loop {
        let t = tokio::select! {
            next = ticks.message() => match next? {
                Some(t) => t,
                None => bail!("the node ended the watch"),
            },
            _ = tokio::signal::ctrl_c() => {
                if let Some((key, _)) = &settler {
                    for w in streams.values() {
                        if w.latest.k > w.settled {
                            settle_watched(out, &client, key, payee, w).await;
                        }
                    }
                }
                return Ok(());
            }
        };
        let value = format!("0x{}", hex::encode(&t.value));
        let seen = serde_json::json!({
            "event": "tick", "payer": t.payer, "slot": t.slot, "opened_at": t.opened_at,
            "k": t.k, "value": value,
        });
        out.emit(&seen, || {
            format!(
                "tick {} of stream {}/{} (opened at nonce {})",
                t.k, t.payer, t.slot, t.opened_at
            )
        })?;
        let Some((key, every)) = &settler else {
            continue;
        };
        let slot = u16::try_from(t.slot).map_err(|_| anyhow!("the node sent slot {}", t.slot))?;
        let id = (t.payer, t.slot);
        let known = streams.get(&id).is_some_and(|w| w.opened_at == t.opened_at);
        if !known {
            let Some(s) = client.stream(AccountIndex(t.payer), slot).await? else {
                continue;
            };
            streams.insert(
                id,
                Watched {
                    opened_at: s.id.opened_at.get(),
                    settled: s.settled.get(),
                    latest: t.clone(),
                },
            );
        }
        let Some(w) = streams.get_mut(&id) else {
            continue;
        };
        if t.k > w.latest.k {
            w.latest = t.clone();
        }
        if w.latest.k.saturating_sub(w.settled) >= *every {
            match settle_watched(out, &client, key, payee, w).await {
                Some(to) => w.settled = to,
                None => {
                    if let Some(s) = client.stream(AccountIndex(t.payer), slot).await? {
                        w.settled = s.settled.get();
                    }
                }
            }
        }
    }
}

/// Settles the latest tick of `w`; the new settled count, or `None` (reported on stderr) if
/// the node refused it.
async fn settle_watched(
    out: &Output,
    client: &Client,
    key: &rollup_client::KeyFile,
    payee: AccountIndex,
    w: &Watched,
) -> Option<u32> {
    let t = &w.latest;
    match client
        .settle_stream(key.secret_key(), payee, w.settled, t, Amount::ZERO)
        .await
    {
        Ok(receipt) => {
            let v = serde_json::json!({
                "event": "settled", "payer": t.payer, "slot": t.slot, "from": w.settled,
                "to": t.k, "receipt": receipt,
            });
            let _ = out.emit(&v, || {
                format!(
                    "settled ticks {}..{} of stream {}/{} ({receipt})",
                    w.settled + 1,
                    t.k,
                    t.payer,
                    t.slot
                )
            });
            Some(t.k)
        }
        Err(e) => {
            eprintln!(
                "warning: settling stream {}/{} up to tick {} failed: {}",
                t.payer,
                t.slot,
                t.k,
                rollup_client::error_line(&e)
            );
            None
        }
    }
}

fn describe(s: &StreamState) -> String {
    let relayed = match s.relayed {
        Some(t) => format!("tick {} ({} unsettled)", t.k.get(), s.unsettled()),
        None => "none past the settled count".to_string(),
    };
    format!(
        "stream        {}/{} (opened at nonce {})\n\
         payee         {}\n\
         price         {} per tick, at most {} ticks\n\
         expiry        {} (unix time; settle until an hour later)\n\
         settled       {} ticks\n\
         escrow        {}\n\
         relayed       {relayed}",
        s.id.payer.0,
        s.id.slot.0,
        s.id.opened_at.get(),
        s.payee.0,
        s.price,
        s.max_ticks.get(),
        s.expiry.get(),
        s.settled.get(),
        s.escrow,
    )
}

/// `rollup stream tick`: ticks `last + 1 ..= last + count`, where `last` is the later of the
/// file's record and the node's (relayed or settled), one acknowledgement per tick.
async fn tick(
    out: &Output,
    endpoint: &str,
    path: PathBuf,
    count: u32,
    every: Duration,
) -> anyhow::Result<()> {
    let (mut stream, recorded) = PayerStream::load(&path)?;
    let client = Client::connect(endpoint).await?;
    let id = stream.id;
    let node = client.existing_stream(id.payer, id.slot.0).await?;
    if node.id != id {
        bail!(
            "slot {} of account {} now holds another stream (opened at nonce {}, this file's at {})",
            id.slot.0,
            id.payer.0,
            node.id.opened_at.get(),
            id.opened_at.get()
        );
    }
    let start = recorded
        .max(node.settled.get())
        .max(node.relayed.map_or(0, |t| t.k.get()));
    let end = start.saturating_add(count).min(stream.terms.max_ticks);
    if end == start {
        bail!(
            "the stream has no ticks left: tick {start} of {} was the last",
            stream.terms.max_ticks
        );
    }
    let (sender, mut acks) = client.send_ticks().await?;
    // A tree tick carries the siblings the relay lacks: it holds the path of the tick it
    // relayed last (none after a restart or a settlement: the first tick then carries all
    // 24); each tick after assumes the one before it accepted (the command stops at the
    // first refusal).
    match node.relayed {
        Some(t) if t.k.get() == start => stream.acknowledged(start),
        _ => stream.forget_acknowledged(),
    }
    let mut ticks = Vec::with_capacity((end - start) as usize);
    for k in start + 1..=end {
        ticks.push(
            stream
                .tick(k)
                .ok_or_else(|| anyhow!("tick {k} is beyond the stream's maximum"))?,
        );
        stream.acknowledged(k);
    }
    let send = tokio::spawn(async move {
        for t in ticks {
            sender.send(t).await?;
            if !every.is_zero() {
                tokio::time::sleep(every).await;
            }
        }
        Ok::<_, rollup_client::Error>(())
    });
    let mut last = start;
    let mut refused = None;
    while last < end {
        let Some(ack) = acks.message().await? else {
            break;
        };
        if !ack.accepted {
            refused = Some(TickRefused {
                k: ack.k,
                reason: ack.reason,
            });
            break;
        }
        last = ack.k;
    }
    if last > recorded {
        stream
            .save(&path, last, true)
            .with_context(|| format!("ticks up to {last} were accepted"))?;
    }
    if let Some(r) = refused {
        // The ticks after a refused one would be refused too: stop sending them.
        send.abort();
        return Err(r.into());
    }
    if last < end {
        send.abort();
        bail!("the node ended the call after tick {last}");
    }
    send.await??;
    let owed = u128::from(stream.terms.price.get()) * u128::from(last - node.settled.get());
    let v = serde_json::json!({
        "payer": id.payer.0, "slot": id.slot.0, "first": start + 1, "last": last,
        "settled": node.settled.get(), "owed": owed,
    });
    out.emit(&v, || {
        format!(
            "ticks {}..{last} of stream {}/{} accepted; {owed} owed to account {} since the last settlement",
            start + 1,
            id.payer.0,
            id.slot.0,
            stream.terms.payee.0
        )
    })
}
