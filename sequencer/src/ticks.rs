//! The tick relay (SPEC 18.1, 18.8, docs/API.md "Ticks"): checks payers' ticks against their
//! streams' hash chains or tick trees and hands the accepted ones to the payees' watchers.
//! Nothing here is stored: a tick is worth something only when its payee settles it, on chain.
//!
//! **State.** One check per stream the relay has seen, keyed by `(payer, slot)`: the last
//! accepted tick and its value ([`TickCheck`]) or its path ([`TreeTickCheck`]), started from
//! the stream's settled head the first time the stream is named (one lookup in the writer).
//! The first tick says which (its `tree` flag); a tick of the other kind is refused
//! (`TICK_WRONG_MODE`) once one was accepted, and restarts the check in its kind before. A
//! cached stream is looked up again every [`REVALIDATE_AFTER`] on average (a closed stream
//! stops relaying within 1.5 times that) and whenever a tick names another `opened_at` (the
//! slot was reopened), so the writer sees about one lookup per stream per few seconds whatever
//! the tick rate.
//!
//! **Cost.** A chain tick is one Poseidon permutation per tick it advances (at most
//! `MAX_TICK_GAP`), a tree tick one per sibling it carries plus one (at most 25; under three
//! in order), under its own stream's lock; the map lock is held only to clone an `Arc`. A tree
//! tick is forwarded to watchers with its full path (24 siblings, built only when the payee
//! has a watcher), so a watcher that missed ticks can still check and settle the next one.
//! Watchers get ticks through a bounded broadcast channel per payee: one that falls behind
//! skips to newer ticks (the latest is the one that settles), and the payer never waits for a
//! payee.
//!
//! **Invariants.** A tick is accepted only if it extends the last accepted one of the same
//! stream (`TickCheck`), so a replayed, reordered or forged tick is refused with its reason and
//! changes nothing; the relay never accepts a tick for a stream the writer does not hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rollup_proto::convert::{tick_message, tree_tick_message};
use rollup_proto::v1 as pb;
use state::account::{AccountIndex, Nonce};
use state::hash::Digest;
use state::stream::{
    Stream, StreamId, StreamSlot, Tick, TickCheck, TickCount, TreeTick, TreeTickCheck,
    TICK_TREE_DEPTH,
};
use tokio::sync::broadcast;

use crate::writer::WriterHandle;

/// How long a cached stream is trusted before the writer is asked again, on average: each
/// entry draws its time uniformly between half and one and a half of this, so that streams
/// first seen together (a fleet of agents starting at once) do not all ask again in the same
/// instant and stall their ticks behind one burst of writer lookups.
pub const REVALIDATE_AFTER: Duration = Duration::from_secs(2);

fn trusted_until() -> Instant {
    let spread = REVALIDATE_AFTER.as_millis() as u64;
    Instant::now() + Duration::from_millis(spread / 2 + rand::random::<u64>() % spread.max(1))
}

/// Ticks a payee's watchers may fall behind before skipping to newer ones.
const WATCH_BUFFER: usize = 1024;

/// Why a tick was not accepted (the `reason` of its `TickAck`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TickRefusal {
    /// Not a tick: a slot above 2^16 - 1, `opened_at` above 2^63 - 1, `k` above 2^24 or a value
    /// that is not 32 canonical bytes.
    #[error("malformed tick: {0}")]
    Malformed(&'static str),
    #[error("no open stream in this slot")]
    UnknownStream,
    #[error(transparent)]
    Check(#[from] state::stream::TickError),
    #[error("the node is busy or stopping")]
    Unavailable,
    /// A chain tick for a stream whose accepted ticks are a tree's, or the reverse.
    #[error("the stream's ticks are of the other kind (chain or tree)")]
    WrongMode,
}

impl TickRefusal {
    /// The stable reason code (docs/API.md).
    pub fn code(&self) -> &'static str {
        match self {
            TickRefusal::Malformed(_) => "BAD_TICK",
            TickRefusal::UnknownStream => "UNKNOWN_STREAM",
            TickRefusal::Check(e) => e.code(),
            TickRefusal::Unavailable => "UNAVAILABLE",
            TickRefusal::WrongMode => "TICK_WRONG_MODE",
        }
    }
}

/// A stream's check, by the kind of its anchor (SPEC 18.8).
#[derive(Clone, Debug)]
enum Check {
    Chain(TickCheck),
    Tree(TreeTickCheck),
}

impl Check {
    fn stream(&self) -> StreamId {
        match self {
            Check::Chain(c) => c.stream(),
            Check::Tree(c) => c.stream(),
        }
    }

    fn last(&self) -> TickCount {
        match self {
            Check::Chain(c) => c.last().0,
            Check::Tree(c) => c.last(),
        }
    }
}

/// A tick as it arrives, of either kind.
#[derive(Debug)]
enum Arrived {
    Chain(Tick),
    Tree(TreeTick),
}

impl Arrived {
    fn stream(&self) -> StreamId {
        match self {
            Arrived::Chain(t) => t.stream,
            Arrived::Tree(t) => t.stream,
        }
    }
}

struct Relayed {
    check: Check,
    /// The stream as looked up: its payee, and what restarts the check in the other kind.
    stream: Stream,
    trusted_until: Instant,
}

impl Relayed {
    fn new(stream: Stream, tree: bool) -> Relayed {
        Relayed {
            check: fresh_check(&stream, tree),
            stream,
            trusted_until: trusted_until(),
        }
    }

    /// Checks `tick`; a tree tick accepted comes back with its full path when `whole` (what
    /// watchers get: built only when someone watches, it is 24 digests copied per tick).
    fn check(&mut self, tick: &Arrived, whole: bool) -> Result<Option<TreeTick>, TickRefusal> {
        let fresh = self.check.last() == self.stream.settled;
        match (&mut self.check, tick) {
            (Check::Chain(c), Arrived::Chain(t)) => c.check(t).map(|()| None).map_err(Into::into),
            (Check::Tree(c), Arrived::Tree(t)) => {
                c.check(t)?;
                Ok(c.last_tick().filter(|_| whole))
            }
            // Nothing accepted yet since the lookup: the first tick's kind decides.
            _ if fresh => {
                self.check = fresh_check(&self.stream, matches!(tick, Arrived::Tree(_)));
                self.check(tick, whole)
            }
            _ => Err(TickRefusal::WrongMode),
        }
    }
}

fn fresh_check(s: &Stream, tree: bool) -> Check {
    if tree {
        Check::Tree(TreeTickCheck::new(s.id, s.max_ticks, s.settled, s.head))
    } else {
        Check::Chain(TickCheck::new(s.id, s.max_ticks, s.settled, s.head))
    }
}

type Key = (u32, u16);

/// An accepted tick's payee, its watchers' channel if any, and a tree tick's full path.
type Checked = (
    AccountIndex,
    Option<broadcast::Sender<pb::Tick>>,
    Option<TreeTick>,
);

/// See the module docs.
pub struct TickRelay {
    writer: WriterHandle,
    patience: Duration,
    streams: Arc<Mutex<HashMap<Key, Arc<Mutex<Relayed>>>>>,
    watchers: Mutex<HashMap<u32, broadcast::Sender<pb::Tick>>>,
}

/// A tick as the relay checks it.
fn parse(t: &pb::Tick) -> Result<Arrived, TickRefusal> {
    let slot = u16::try_from(t.slot).map_err(|_| TickRefusal::Malformed("slot above 65535"))?;
    let opened_at =
        Nonce::new(t.opened_at).ok_or(TickRefusal::Malformed("opened_at above 2^63 - 1"))?;
    let k = TickCount::new(t.k).ok_or(TickRefusal::Malformed("k above 2^24"))?;
    let value = Digest::from_slice(&t.value)
        .ok_or(TickRefusal::Malformed("value is not 32 canonical bytes"))?;
    let stream = StreamId {
        payer: AccountIndex(t.payer),
        slot: StreamSlot(slot),
        opened_at,
    };
    if !t.tree {
        if !t.siblings.is_empty() {
            return Err(TickRefusal::Malformed("siblings in a chain tick"));
        }
        return Ok(Arrived::Chain(Tick { stream, k, value }));
    }
    if t.siblings.len() > TICK_TREE_DEPTH {
        return Err(TickRefusal::Malformed("more than 24 siblings"));
    }
    let siblings = t
        .siblings
        .iter()
        .map(|s| Digest::from_slice(s))
        .collect::<Option<Vec<_>>>()
        .ok_or(TickRefusal::Malformed(
            "a sibling is not 32 canonical bytes",
        ))?;
    Ok(Arrived::Tree(TreeTick {
        stream,
        k,
        secret: value,
        siblings,
    }))
}

impl TickRelay {
    pub fn new(writer: WriterHandle, patience: Duration) -> TickRelay {
        TickRelay {
            writer,
            patience,
            streams: Arc::new(Mutex::new(HashMap::new())),
            watchers: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `t` and, if it is good, remembers it and hands it to the payee's watchers.
    pub async fn relay(&self, t: &pb::Tick) -> Result<(), TickRefusal> {
        let result = self.check(t).await;
        let label = match &result {
            Ok(_) => "ACCEPTED",
            Err(e) => e.code(),
        };
        metrics::counter!("rollup_ticks_total", "result" => label).increment(1);
        let (payee, sender, full) = result?;
        if let Some(tx) = sender {
            let forwarded = full.map_or_else(|| t.clone(), |f| tree_tick_message(&f));
            if tx.send(forwarded).is_err() {
                // Every watcher left: drop the channel unless one subscribed meanwhile.
                let mut w = lock(&self.watchers);
                if w.get(&payee.0).is_some_and(|s| s.receiver_count() == 0) {
                    w.remove(&payee.0);
                }
            }
        }
        Ok(())
    }

    /// Checks `t` under its stream's lock; returns the payee, its watchers' channel if it has
    /// one, and a tree tick's full path for them.
    async fn check(&self, t: &pb::Tick) -> Result<Checked, TickRefusal> {
        let tick = parse(t)?;
        let entry = self.entry(&tick.stream(), t.tree).await?;
        let mut e = lock(&entry);
        let payee = e.stream.payee;
        // Lock order: a stream's entry, then the watchers (`relay` takes the watchers alone).
        let sender = lock(&self.watchers).get(&payee.0).cloned();
        let full = e.check(&tick, sender.is_some())?;
        Ok((payee, sender, full))
    }

    /// The stream's relay state: cached, or (re)built from the writer's stream.
    async fn entry(&self, id: &StreamId, tree: bool) -> Result<Arc<Mutex<Relayed>>, TickRefusal> {
        let key = (id.payer.0, id.slot.0);
        let cached = lock(&self.streams).get(&key).cloned();
        if let Some(c) = &cached {
            let (same, stale) = {
                let mut e = lock(c);
                let same = e.check.stream() == *id;
                let stale = Instant::now() >= e.trusted_until;
                if same && stale {
                    // Refreshed once, in the background: this tick (and the next ones) are
                    // checked against the cached stream meanwhile, so a tick never waits for
                    // the writer once its stream is known.
                    e.trusted_until = trusted_until();
                }
                (same, stale)
            };
            if same {
                if stale {
                    self.refresh_later(*id);
                }
                return Ok(c.clone());
            }
        }
        let stream = self
            .writer
            .stream(id.payer, id.slot, self.patience)
            .await
            .map_err(|_| TickRefusal::Unavailable)?;
        let Some(stream) = stream else {
            lock(&self.streams).remove(&key);
            return Err(TickRefusal::UnknownStream);
        };
        let mut map = lock(&self.streams);
        // The same stream as cached: keep its progress, trust it again.
        if let Some(c) = map.get(&key) {
            let mut e = lock(c);
            if e.check.stream() == stream.id {
                e.trusted_until = trusted_until();
                drop(e);
                let c = c.clone();
                drop(map);
                return if stream.id == *id {
                    Ok(c)
                } else {
                    Err(state::stream::TickError::WrongStream.into())
                };
            }
        }
        let fresh = Arc::new(Mutex::new(Relayed::new(stream, tree)));
        map.insert(key, fresh.clone());
        drop(map);
        if stream.id == *id {
            Ok(fresh)
        } else {
            Err(state::stream::TickError::WrongStream.into())
        }
    }

    /// Asks the writer again about the stream of `id` without making anyone wait: drops the
    /// entry if the slot is empty or holds another stream (the next tick looks it up afresh).
    fn refresh_later(&self, id: StreamId) {
        let (writer, streams, patience) =
            (self.writer.clone(), self.streams.clone(), self.patience);
        tokio::spawn(async move {
            let key = (id.payer.0, id.slot.0);
            match writer.stream(id.payer, id.slot, patience).await {
                Ok(Some(s)) if s.id == id => {}
                // Closed or reopened: forget it. On a lookup error keep it (the node is busy
                // or stopping; the next refresh asks again).
                Ok(_) => {
                    let mut m = lock(&streams);
                    if m.get(&key).is_some_and(|c| lock(c).check.stream() == id) {
                        m.remove(&key);
                    }
                }
                Err(_) => {}
            }
        });
    }

    /// The accepted ticks of streams paying `payee`, from now on.
    pub fn watch(&self, payee: AccountIndex) -> broadcast::Receiver<pb::Tick> {
        lock(&self.watchers)
            .entry(payee.0)
            .or_insert_with(|| broadcast::channel(WATCH_BUFFER).0)
            .subscribe()
    }

    /// The stream in `slot` of `payer` as the writer holds it now, and the latest tick this
    /// relay accepted for it when that is past the stream's settled count (what its payee
    /// settles next; a tree tick with its full path). One writer lookup; the relay's cache is
    /// read, not changed.
    pub async fn lookup(
        &self,
        payer: AccountIndex,
        slot: StreamSlot,
    ) -> Result<Option<(Stream, Option<pb::Tick>)>, TickRefusal> {
        let stream = self
            .writer
            .stream(payer, slot, self.patience)
            .await
            .map_err(|_| TickRefusal::Unavailable)?;
        let Some(stream) = stream else {
            return Ok(None);
        };
        let cached = lock(&self.streams).get(&(payer.0, slot.0)).cloned();
        let relayed = cached.and_then(|c| {
            let e = lock(&c);
            if e.check.stream() != stream.id || e.check.last() <= stream.settled {
                return None;
            }
            match &e.check {
                Check::Chain(check) => {
                    let (k, value) = check.last();
                    Some(tick_message(&Tick {
                        stream: stream.id,
                        k,
                        value,
                    }))
                }
                Check::Tree(check) => check.last_tick().map(|t| tree_tick_message(&t)),
            }
        });
        Ok(Some((stream, relayed)))
    }

    /// Streams the relay holds state for (a gauge for operators).
    pub fn streams(&self) -> usize {
        lock(&self.streams).len()
    }
}

/// A poisoned lock only means a thread panicked while holding it; the maps stay consistent
/// (every update is a single insert or remove), so carry on with the data.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_ticks_are_refused_before_any_lookup() {
        let good = pb::Tick {
            payer: 1,
            slot: 2,
            opened_at: 3,
            k: 4,
            value: Digest::ZERO.to_bytes().to_vec(),
            tree: false,
            siblings: vec![],
        };
        assert!(parse(&good).is_ok());
        let tree = pb::Tick {
            tree: true,
            siblings: vec![Digest::ZERO.to_bytes().to_vec(); 24],
            ..good.clone()
        };
        assert!(parse(&tree).is_ok());
        for (bad, why) in [
            (
                pb::Tick {
                    slot: 70_000,
                    ..good.clone()
                },
                "slot",
            ),
            (
                pb::Tick {
                    opened_at: 1 << 63,
                    ..good.clone()
                },
                "opened_at",
            ),
            (
                pb::Tick {
                    k: (1 << 24) + 1,
                    ..good.clone()
                },
                "k",
            ),
            (
                pb::Tick {
                    value: vec![0; 31],
                    ..good.clone()
                },
                "value",
            ),
            (
                pb::Tick {
                    value: vec![0xff; 32],
                    ..good.clone()
                },
                "value",
            ),
            (
                pb::Tick {
                    siblings: vec![vec![0; 32]],
                    ..good.clone()
                },
                "siblings in a chain tick",
            ),
            (
                pb::Tick {
                    siblings: vec![vec![0; 32]; 25],
                    ..tree.clone()
                },
                "more than 24",
            ),
            (
                pb::Tick {
                    siblings: vec![vec![0; 32], vec![0xff; 32]],
                    ..tree.clone()
                },
                "sibling",
            ),
        ] {
            let e = parse(&bad).unwrap_err();
            assert_eq!(e.code(), "BAD_TICK");
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    /// A stream's first accepted tick fixes its kind; before one, a tick of either kind may
    /// start the check; after, the other kind is refused and changes nothing.
    #[test]
    fn the_first_accepted_tick_fixes_a_streams_kind() {
        use state::account::{Amount, Timestamp};
        use state::stream::{TickChain, TickTree};
        let id = StreamId {
            payer: AccountIndex(3),
            slot: StreamSlot(1),
            opened_at: Nonce::new(2).unwrap(),
        };
        let max = TickCount::new(100).unwrap();
        let seed = Digest::from_bytes(&[7; 32]).unwrap();
        let mut tree = TickTree::new(id, max, seed);
        let mut chain = TickChain::new(id, max, seed);
        let stream = Stream {
            id,
            payee: AccountIndex(4),
            price: Amount::new(1).unwrap(),
            max_ticks: max,
            expiry: Timestamp::new(1000).unwrap(),
            settled: TickCount::ZERO,
            head: tree.root(),
        };
        // Created for a chain tick (the relay's first guess), a chain tick does not check
        // (the head is a root) and changes nothing; the tree tick then restarts the check.
        let mut r = Relayed::new(stream, false);
        let chain_tick = Arrived::Chain(chain.tick(1).unwrap());
        assert_eq!(
            r.check(&chain_tick, true).unwrap_err().code(),
            "TICK_MISMATCH"
        );
        let t1 = tree.tick(1, None).unwrap();
        let full = r.check(&Arrived::Tree(t1.clone()), true).unwrap().unwrap();
        assert_eq!(
            full.siblings,
            tree.path(1).unwrap().to_vec(),
            "forwarded whole"
        );
        // In order, tick 2 carries no sibling (its path meets tick 1's at level 0) and is
        // forwarded with all 24.
        let t2 = tree.tick(2, Some(1)).unwrap();
        assert!(t2.siblings.is_empty());
        let full = r.check(&Arrived::Tree(t2.clone()), true).unwrap().unwrap();
        assert_eq!(full.siblings.len(), 24);
        // Without a watcher nothing is built.
        let t3 = tree.tick(3, Some(2)).unwrap();
        assert_eq!(r.check(&Arrived::Tree(t3), false).unwrap(), None);
        assert_eq!(
            r.check(&chain_tick, true).unwrap_err().code(),
            "TICK_WRONG_MODE"
        );
        assert_eq!(r.check.last(), TickCount::new(3).unwrap());
    }
}
