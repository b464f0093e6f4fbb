//! Payment streams (SPEC 18): open a stream to a payee, tick, settle, close. Ticks travel
//! through the node's relay (`SendTicks`, `WatchTicks`, docs/API.md "Ticks"), which checks
//! each and stores none; the payee settles the latest one it saw.
//!
//! A node accepts these transactions when its pinned circuits prove them (the `-walks` finals,
//! built by a prover whose leaf has the stream kinds), or a devnet node started with
//! `--experimental-streams`; others refuse them (`KIND_NOT_ENABLED`).
//!
//! ```no_run
//! use std::time::Duration;
//! use rollup_client::{AccountIndex, Amount, Client, KeyFile};
//! use rollup_client::ticks::StreamTerms;
//!
//! # async fn demo(payer_key: KeyFile, payer: AccountIndex, payee: AccountIndex) -> rollup_client::Result<()> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! let terms = StreamTerms::new(payee, Amount::new(3).unwrap(), 1_000, Duration::from_secs(600));
//! let mut stream = client.open_pay_stream(payer_key.secret_key(), payer, 0, terms).await?;
//! let (ticks, mut acks) = client.send_ticks().await?;
//! ticks.send(stream.tick(1).expect("within max_ticks")).await.ok();
//! let ack = acks.message().await?;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use rand_core::RngCore;
use rollup_proto::v1 as proto;
use state::account::{AccountIndex, Amount, Timestamp};
use state::crypto::schnorr::SecretKey;
use state::hash::Digest;
use state::stream::rules::{Close, Open, Settle};
use state::stream::tick_tree::TickPath;
use state::stream::{StreamId, StreamSlot, TickChain, TickCount, TickTree, TICK_TREE_DEPTH};
use state::tx::{SettleBody, SettlePathBody, Transaction, Unsigned};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use serde::Serialize;
use state::stream::Tick;
use tonic::Code;

pub use rollup_proto::convert::{tick_message, tree_tick_message};

use crate::client::Client;

mod file;
use crate::error::{Error, Result};
use crate::receipt::Receipt;
pub use file::StreamFileError;

/// What a payer offers when it opens a stream.
#[derive(Clone, Copy, Debug)]
pub struct StreamTerms {
    pub payee: AccountIndex,
    /// Paid per tick.
    pub price: Amount,
    /// At most this many ticks (1 to 2^24); `price x max_ticks` is escrowed at open.
    pub max_ticks: u32,
    /// Ticks are worth nothing after this long; the payee may settle for an hour more.
    pub lasts: Duration,
    /// Fee of the open, to the operator.
    pub fee: Amount,
    /// How the open commits to the ticks: a hash chain (the default) or a tick tree.
    pub ticks: TickKind,
}

/// How a stream's open commits to its ticks (SPEC 18.1, 18.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TickKind {
    /// A hash chain: a tick is 40 bytes and one hash to check; settling `m` ticks costs `m`
    /// permutations in the batch proof, at most 2^16 per settlement.
    #[default]
    Chain,
    /// A tree of tick secrets: a tick carries a sibling or two more; a settlement costs one
    /// path whatever it settles (for long streams and rare settlements).
    Tree,
}

impl StreamTerms {
    pub fn new(payee: AccountIndex, price: Amount, max_ticks: u32, lasts: Duration) -> Self {
        StreamTerms {
            payee,
            price,
            max_ticks,
            lasts,
            fee: Amount::ZERO,
            ticks: TickKind::Chain,
        }
    }

    /// The same terms with a tick tree instead of a chain (SPEC 18.8).
    pub fn with_tick_tree(self) -> Self {
        StreamTerms {
            ticks: TickKind::Tree,
            ..self
        }
    }
}

/// What a payer keeps to make ticks.
enum Commitment {
    Chain(TickChain),
    /// The tree and the last tick the relay acknowledged (ticks after it carry only the
    /// siblings the relay lacks; without one, the full path).
    Tree(TickTree, Option<u32>),
}

impl Commitment {
    fn build(id: StreamId, max: TickCount, seed: Digest, kind: TickKind) -> Commitment {
        match kind {
            TickKind::Chain => Commitment::Chain(TickChain::new(id, max, seed)),
            TickKind::Tree => Commitment::Tree(TickTree::new(id, max, seed), None),
        }
    }

    fn anchor(&self) -> Digest {
        match self {
            Commitment::Chain(c) => c.anchor(),
            Commitment::Tree(t, _) => t.root(),
        }
    }
}

/// A stream this process pays: its hash chain, from which it makes ticks.
pub struct PayerStream {
    pub id: StreamId,
    pub terms: StreamTerms,
    /// The open's receipt (none for a stream resumed from its seed).
    pub receipt: Option<Receipt>,
    seed: Digest,
    commitment: Commitment,
}

impl std::fmt::Debug for PayerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayerStream")
            .field("id", &self.id)
            .field("terms", &self.terms)
            .finish_non_exhaustive()
    }
}

impl PayerStream {
    /// A stream opened earlier, from its seed (kept secret by the payer: whoever has it can
    /// make every tick) and its terms' tick kind. `max_ticks` hashes (three times that for a
    /// tree).
    pub fn resume(id: StreamId, terms: StreamTerms, seed: Digest) -> Option<PayerStream> {
        let max = TickCount::new(terms.max_ticks).filter(|m| m.get() > 0)?;
        Some(PayerStream {
            id,
            terms,
            receipt: None,
            seed,
            commitment: Commitment::build(id, max, seed, terms.ticks),
        })
    }

    /// The anchor the open carries: the chain's `t_0` or the tree's root.
    pub fn anchor(&self) -> Digest {
        self.commitment.anchor()
    }

    /// The chain's seed, to store (secretly) and [`PayerStream::resume`] later.
    pub fn seed(&self) -> Digest {
        self.seed
    }

    /// Tick `k` (1..=max_ticks) as the relay takes it; `None` beyond the maximum. Ticking in
    /// order costs one hash per tick (the chain keeps a checkpoint every 64 values; a tree
    /// recomputes a 64-leaf block when it enters one). A tree tick carries the siblings the
    /// relay lacks after the last tick reported by [`PayerStream::acknowledged`] (under two
    /// in order), or its full path when none was.
    pub fn tick(&mut self, k: u32) -> Option<proto::Tick> {
        match &mut self.commitment {
            Commitment::Chain(c) => c.tick(k).map(|t| tick_message(&t)),
            Commitment::Tree(t, acked) => t.tick(k, *acked).map(|t| tree_tick_message(&t)),
        }
    }

    /// Reports that the relay accepted tick `k` (its `TickAck`), so that the next tree ticks
    /// carry only the siblings it lacks. A chain stream ignores it. After a refusal, or when
    /// unsure (the node restarted), report nothing: [`PayerStream::forget_acknowledged`] makes
    /// the next tick carry its full path.
    pub fn acknowledged(&mut self, k: u32) {
        if let Commitment::Tree(_, acked) = &mut self.commitment {
            *acked = Some(k);
        }
    }

    /// Makes the next tree tick carry its full path (the relay lost the last one's).
    pub fn forget_acknowledged(&mut self) {
        if let Commitment::Tree(_, acked) = &mut self.commitment {
            *acked = None;
        }
    }
}

/// A stream as the node holds it now ([`Client::stream`]).
#[derive(Clone, Debug, Serialize)]
pub struct StreamState {
    pub id: StreamId,
    pub payee: AccountIndex,
    pub price: Amount,
    pub max_ticks: TickCount,
    /// Ticks are worth nothing after this time; the payee may settle for an hour more.
    pub expiry: Timestamp,
    /// Ticks settled so far: the `from` of the next settlement.
    pub settled: TickCount,
    /// `t_settled`.
    pub head: Digest,
    /// `price x (max_ticks - settled)`, held for the payee or the payer's refund.
    pub escrow: Amount,
    /// The latest tick the node's relay accepted past `settled`: what the payee settles next
    /// (of a tree stream: the tick's secret).
    pub relayed: Option<Tick>,
    /// The relayed tick's path, for a tree stream (SPEC 18.8).
    pub relayed_path: Option<TickPath>,
}

impl StreamState {
    /// What settling the relayed tick would pay the payee (zero without one).
    pub fn unsettled(&self) -> Amount {
        let ticks = self
            .relayed
            .map_or(0, |t| t.k.get().saturating_sub(self.settled.get()));
        Amount::new(self.price.get().saturating_mul(u64::from(ticks))).unwrap_or(Amount::MAX)
    }
}

impl TryFrom<proto::StreamInfo> for StreamState {
    type Error = Error;

    fn try_from(s: proto::StreamInfo) -> Result<StreamState> {
        let bad = |what: &str| Error::protocol("GetStream", format!("bad {what} in the answer"));
        let slot = StreamSlot(u16::try_from(s.slot).map_err(|_| bad("slot"))?);
        let id = StreamId {
            payer: AccountIndex(s.payer),
            slot,
            opened_at: state::account::Nonce::new(s.opened_at).ok_or_else(|| bad("opened_at"))?,
        };
        let (relayed, relayed_path) = match s.relayed {
            Some(t) => {
                let tick = Tick {
                    stream: id,
                    k: TickCount::new(t.k).ok_or_else(|| bad("relayed tick"))?,
                    value: Digest::from_slice(&t.value).ok_or_else(|| bad("relayed tick value"))?,
                };
                let path = if t.tree {
                    Some(full_path(&t.siblings).ok_or_else(|| bad("relayed tick path"))?)
                } else {
                    None
                };
                (Some(tick), path)
            }
            None => (None, None),
        };
        Ok(StreamState {
            id,
            payee: AccountIndex(s.payee),
            price: Amount::new(s.price).ok_or_else(|| bad("price"))?,
            max_ticks: TickCount::new(s.max_ticks).ok_or_else(|| bad("max_ticks"))?,
            expiry: Timestamp::new(s.expiry).ok_or_else(|| bad("expiry"))?,
            settled: TickCount::new(s.settled).ok_or_else(|| bad("settled"))?,
            head: Digest::from_slice(&s.head).ok_or_else(|| bad("head"))?,
            escrow: Amount::new(s.escrow).ok_or_else(|| bad("escrow"))?,
            relayed,
            relayed_path,
        })
    }
}

/// The sending half of a `SendTicks` call: each tick sent gets one [`proto::TickAck`], in
/// order, on the receiving half.
#[derive(Clone)]
pub struct TickSender(mpsc::Sender<proto::Tick>);

impl TickSender {
    /// Queues a tick (waits while the local buffer is full: gRPC flow control).
    pub async fn send(&self, tick: proto::Tick) -> Result<()> {
        self.0
            .send(tick)
            .await
            .map_err(|_| Error::protocol("SendTicks", "the call ended"))
    }
}

/// A tree tick's 24 siblings, or `None` if they are not 24 canonical digests.
fn full_path(siblings: &[Vec<u8>]) -> Option<TickPath> {
    if siblings.len() != TICK_TREE_DEPTH {
        return None;
    }
    let mut path = [Digest::ZERO; TICK_TREE_DEPTH];
    for (p, s) in path.iter_mut().zip(siblings) {
        *p = Digest::from_slice(s)?;
    }
    Some(path)
}

/// A random chain seed: four limbs of 63 random bits (always canonical), 252 bits in all.
fn random_seed() -> Digest {
    let mut rng = rand_core::OsRng;
    let mut bytes = [0u8; 32];
    for limb in bytes.chunks_exact_mut(8) {
        limb.copy_from_slice(&(rng.next_u64() >> 1).to_le_bytes());
    }
    Digest::from_bytes(&bytes).unwrap_or(Digest::ZERO)
}

impl Client {
    /// Opens a payment stream from `payer` (signed with `key`) in its stream slot `slot`,
    /// escrowing `price x max_ticks`: [`Client::prepare_pay_stream`], then submits the open.
    pub async fn open_pay_stream(
        &self,
        key: &SecretKey,
        payer: AccountIndex,
        slot: u16,
        terms: StreamTerms,
    ) -> Result<PayerStream> {
        let (mut stream, open) = self.prepare_pay_stream(key, payer, slot, terms).await?;
        stream.receipt = Some(self.submit(&open).await?.into_accepted()?);
        Ok(stream)
    }

    /// Builds a stream's tick chain (or tree, by `terms.ticks`) from a fresh random seed
    /// (`max_ticks` hashes, three times that for a tree) and signs
    /// its open with the payer's next nonce, without submitting it: a caller that must keep
    /// the seed (e.g. [`PayerStream::save`]) stores it first, so that no accepted open is ever
    /// left without the seed that makes its ticks.
    pub async fn prepare_pay_stream(
        &self,
        key: &SecretKey,
        payer: AccountIndex,
        slot: u16,
        terms: StreamTerms,
    ) -> Result<(PayerStream, Transaction)> {
        let max_ticks = TickCount::new(terms.max_ticks)
            .filter(|m| m.get() > 0)
            .ok_or_else(|| Error::protocol("open_pay_stream", "max_ticks must be 1 to 2^24"))?;
        let nonce = self.next_nonce(payer).await?;
        let id = StreamId {
            payer,
            slot: StreamSlot(slot),
            opened_at: nonce,
        };
        let seed = random_seed();
        let kind = terms.ticks;
        let commitment =
            tokio::task::spawn_blocking(move || Commitment::build(id, max_ticks, seed, kind))
                .await
                .map_err(|e| Error::protocol("open_pay_stream", e.to_string()))?;
        let expiry = Timestamp::new(self.node_now().saturating_add(terms.lasts.as_secs()))
            .unwrap_or(Timestamp::MAX);
        let tx: Transaction = Unsigned {
            body: Open {
                payer,
                payee: terms.payee,
                slot: id.slot,
                price: terms.price,
                max_ticks,
                expiry,
                anchor: commitment.anchor(),
            },
            fee: terms.fee,
            nonce,
            valid_until: self.deadline(),
        }
        .sign(&self.domain(), key)
        .into();
        let stream = PayerStream {
            id,
            terms,
            receipt: None,
            seed,
            commitment,
        };
        Ok((stream, tx))
    }

    /// Settles, as the payee (`key`), the stream in `slot` of `payer` from `from` (the stream's
    /// settled count) up to the tick `tick` it received: `(k - from) x price` is paid to it.
    /// A tree tick (with its full path, as the relay forwards it) settles by path (tag 18).
    pub async fn settle_stream(
        &self,
        key: &SecretKey,
        payee: AccountIndex,
        from: u32,
        tick: &proto::Tick,
        fee: Amount,
    ) -> Result<Receipt> {
        let bad = |what| Error::protocol("settle_stream", what);
        let slot = u16::try_from(tick.slot).map_err(|_| bad("slot above 65535"))?;
        let value = Digest::from_slice(&tick.value).ok_or_else(|| bad("tick value"))?;
        let terms = Settle {
            payer: AccountIndex(tick.payer),
            slot: StreamSlot(slot),
            from: TickCount::new(from).ok_or_else(|| bad("from above 2^24"))?,
            to: TickCount::new(tick.k).ok_or_else(|| bad("k above 2^24"))?,
            value,
        };
        let (nonce, valid_until) = (self.next_nonce(payee).await?, self.deadline());
        let tx: Transaction = if tick.tree {
            let path = full_path(&tick.siblings)
                .ok_or_else(|| bad("a tree tick settles with its 24 siblings"))?;
            Unsigned {
                body: SettlePathBody { payee, terms, path },
                fee,
                nonce,
                valid_until,
            }
            .sign(&self.domain(), key)
            .into()
        } else {
            Unsigned {
                body: SettleBody { payee, terms },
                fee,
                nonce,
                valid_until,
            }
            .sign(&self.domain(), key)
            .into()
        };
        self.submit(&tx).await?.into_accepted()
    }

    /// Closes the stream in `slot` of `payer`, signed by `signer` (the payer, after expiry and
    /// the payee's hour; or the payee, any time): the rest of the escrow returns to the payer.
    pub async fn close_stream(
        &self,
        key: &SecretKey,
        signer: AccountIndex,
        payer: AccountIndex,
        slot: u16,
        fee: Amount,
    ) -> Result<Receipt> {
        let tx: Transaction = Unsigned {
            body: Close {
                payer,
                slot: StreamSlot(slot),
                signer,
            },
            fee,
            nonce: self.next_nonce(signer).await?,
            valid_until: self.deadline(),
        }
        .sign(&self.domain(), key)
        .into();
        self.submit(&tx).await?.into_accepted()
    }

    /// The stream in `slot` of `payer` now, with the latest tick the relay accepted for it;
    /// `None` when the slot is empty.
    pub async fn stream(&self, payer: AccountIndex, slot: u16) -> Result<Option<StreamState>> {
        let answer = self
            .rpc()
            .get_stream(proto::GetStreamRequest {
                payer: payer.0,
                slot: u32::from(slot),
            })
            .await;
        match answer {
            Ok(s) => s.into_inner().try_into().map(Some),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status.into()),
        }
    }

    /// [`Client::stream`] for a slot that must hold a stream: [`Error::UnknownStream`] if it
    /// is empty.
    pub async fn existing_stream(&self, payer: AccountIndex, slot: u16) -> Result<StreamState> {
        self.stream(payer, slot)
            .await?
            .ok_or(Error::UnknownStream { payer, slot })
    }

    /// Settles, as the payee, the latest tick the node relayed for the stream in `slot` of
    /// `payer` (from the stream's settled count). `None` when there is nothing to settle: no
    /// tick relayed past the settled count (e.g. the node restarted since).
    pub async fn settle_relayed(
        &self,
        key: &SecretKey,
        payee: AccountIndex,
        payer: AccountIndex,
        slot: u16,
        fee: Amount,
    ) -> Result<Option<(StreamState, Receipt)>> {
        let stream = self.existing_stream(payer, slot).await?;
        let Some(tick) = stream.relayed else {
            return Ok(None);
        };
        let mut message = tick_message(&tick);
        if let Some(path) = &stream.relayed_path {
            message.tree = true;
            message.siblings = path.iter().map(|d| d.to_bytes().to_vec()).collect();
        }
        let receipt = self
            .settle_stream(key, payee, stream.settled.get(), &message, fee)
            .await?;
        Ok(Some((stream, receipt)))
    }

    /// Starts a `SendTicks` call: ticks go in through the [`TickSender`], one acknowledgement
    /// per tick comes back, in order, on the returned stream.
    pub async fn send_ticks(&self) -> Result<(TickSender, tonic::Streaming<proto::TickAck>)> {
        let (tx, rx) = mpsc::channel(1024);
        let acks = self
            .rpc()
            .send_ticks(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok((TickSender(tx), acks))
    }

    /// The accepted ticks of streams paying `payee`, from now on.
    pub async fn watch_ticks(&self, payee: AccountIndex) -> Result<tonic::Streaming<proto::Tick>> {
        Ok(self
            .rpc()
            .watch_ticks(proto::WatchTicksRequest { payee: payee.0 })
            .await?
            .into_inner())
    }
}
