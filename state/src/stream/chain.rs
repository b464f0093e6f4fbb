//! The tick hash chain: how a payer makes ticks, and how a relay or payee checks them.
//!
//! ```text
//! H_k(x)  = hash_no_pad([id0, id1, k, TAG_TICK, x0, x1, x2, x3])     (8 elements: one permutation)
//! t_N     = seed (secret, chosen by the payer; N = max_ticks)
//! t_{k-1} = H_k(t_k)                                                   for k = N, ..., 1
//! anchor  = t_0                                                        (published in the open)
//! ```
//!
//! `id0, id1` are the [`StreamId`] elements and [`TAG_TICK`] is the ASCII `"tick"` as a
//! big-endian u32. Hashing the stream id and the position into every step means a chain value
//! is worth nothing in another stream or at another position, even if a payer reused a seed.
//!
//! Costs: building a chain is `N` hashes once (the payer keeps one value in [`CHECKPOINT`]);
//! checking tick `k` after tick `j` is `k - j` hashes, so a relay that sees every tick does one
//! hash per tick.

use plonky2::field::types::Field;
use serde::{Deserialize, Serialize};

use super::{StreamId, TickCount};
use crate::hash::{hash_no_pad, Digest, F};

/// Domain element of a chain step: the ASCII bytes `"tick"` as a big-endian u32.
pub const TAG_TICK: u32 = u32::from_be_bytes(*b"tick");

/// The payer keeps every `CHECKPOINT`-th chain value, so producing any tick costs at most
/// `CHECKPOINT - 1` hashes and memory is `N / CHECKPOINT` digests (8 MB at `N = 2^24`).
pub const CHECKPOINT: u32 = 64;

/// The most hashes a relay spends on one tick ([`TickCheck`]): a payer may skip ticks (a
/// lost message, a coarser price step) but not make the relay walk a long chain for free.
pub const MAX_TICK_GAP: u32 = 1024;

/// One chain step: `t_{k-1} = H_k(t_k)`.
pub fn step(id: &StreamId, k: u32, value: Digest) -> Digest {
    let [i0, i1] = id.to_field_elements();
    let x = value.elements();
    hash_no_pad(&[
        i0,
        i1,
        F::from_canonical_u32(k),
        F::from_canonical_u32(TAG_TICK),
        x[0],
        x[1],
        x[2],
        x[3],
    ])
}

/// `t_to` from `t_from` (`to <= from`): `from - to` steps.
pub fn walk(id: &StreamId, from: u32, value: Digest, to: u32) -> Digest {
    debug_assert!(to <= from);
    (to + 1..=from).rev().fold(value, |x, k| step(id, k, x))
}

/// A tick: the payer's proof that `k` ticks of the stream are owed. Sent to the payee (and
/// through the node's relay); never stored on chain except as a settlement.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Tick {
    pub stream: StreamId,
    pub k: TickCount,
    /// `t_k`.
    pub value: Digest,
}

/// Why a tick was refused by [`TickCheck`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TickError {
    #[error("the tick is for another stream")]
    WrongStream,
    #[error("tick {k} is beyond the stream's maximum of {max} ticks")]
    BeyondMax { k: u32, max: u32 },
    #[error("tick {k} is not after the last checked tick {last}")]
    Stale { k: u32, last: u32 },
    #[error("tick {k} skips more than {MAX_TICK_GAP} ticks after {last}")]
    GapTooLarge { k: u32, last: u32 },
    #[error("tick {k} does not hash to the previous tick: not made from this stream's chain")]
    Mismatch { k: u32 },
    #[error("tick {k} carries {given} siblings, fewer than its path needs to meet a known one")]
    PathTooShort { k: u32, given: usize },
}

impl TickError {
    /// A stable reason code (part of the API).
    pub const fn code(&self) -> &'static str {
        match self {
            TickError::WrongStream => "TICK_WRONG_STREAM",
            TickError::BeyondMax { .. } => "TICK_BEYOND_MAX",
            TickError::Stale { .. } => "TICK_STALE",
            TickError::GapTooLarge { .. } => "TICK_GAP_TOO_LARGE",
            TickError::Mismatch { .. } => "TICK_MISMATCH",
            TickError::PathTooShort { .. } => "TICK_PATH_TOO_SHORT",
        }
    }
}

/// The payer's side: the chain of one stream, from which it produces ticks.
#[derive(Clone, Debug)]
pub struct TickChain {
    id: StreamId,
    max_ticks: u32,
    /// `checkpoints[i] = t_{min(i * CHECKPOINT, N)}`; the last entry is the seed `t_N`.
    checkpoints: Vec<Digest>,
    /// The values of the segment last produced from: `(first k, t_first..=t_last)`, so that
    /// ticking in order costs one hash per tick amortised.
    segment: Option<(u32, Vec<Digest>)>,
}

impl TickChain {
    /// Builds the chain for `id` of `max_ticks` ticks from `seed` (`max_ticks` hashes).
    pub fn new(id: StreamId, max_ticks: TickCount, seed: Digest) -> TickChain {
        let n = max_ticks.get();
        let slots = n.div_ceil(CHECKPOINT) as usize + 1;
        let mut checkpoints = vec![Digest::ZERO; slots];
        checkpoints[slots - 1] = seed;
        let mut x = seed;
        for k in (1..=n).rev() {
            x = step(&id, k, x);
            if (k - 1) % CHECKPOINT == 0 {
                checkpoints[((k - 1) / CHECKPOINT) as usize] = x;
            }
        }
        TickChain {
            id,
            max_ticks: n,
            checkpoints,
            segment: None,
        }
    }

    pub fn id(&self) -> StreamId {
        self.id
    }

    /// `t_0`, the anchor the open commits to.
    pub fn anchor(&self) -> Digest {
        self.checkpoints[0]
    }

    /// Tick `k` (`1 ..= max_ticks`), or `None` beyond the chain.
    pub fn tick(&mut self, k: u32) -> Option<Tick> {
        if k == 0 || k > self.max_ticks {
            return None;
        }
        let first = (k - 1) / CHECKPOINT * CHECKPOINT + 1;
        let cached = matches!(&self.segment, Some((f, _)) if *f == first);
        if !cached {
            // The segment's top is the next checkpoint (or the seed at the end of the chain).
            let top = (first - 1 + CHECKPOINT).min(self.max_ticks);
            let idx = (top.div_ceil(CHECKPOINT)) as usize;
            let top_value = if top == self.max_ticks {
                self.checkpoints[self.checkpoints.len() - 1]
            } else {
                self.checkpoints[idx]
            };
            let mut values = vec![Digest::ZERO; (top - first + 1) as usize];
            let mut x = top_value;
            for j in (first..=top).rev() {
                values[(j - first) as usize] = x;
                x = step(&self.id, j, x);
            }
            self.segment = Some((first, values));
        }
        let (f, values) = self.segment.as_ref()?;
        Some(Tick {
            stream: self.id,
            k: TickCount::new(k)?,
            value: values[(k - f) as usize],
        })
    }
}

/// The checks every tick kind shares: tick `k` of `stream` is for the checked stream `id`,
/// within its `max_ticks` and after its `last` good tick.
pub(super) fn follows(
    id: StreamId,
    max_ticks: u32,
    last: u32,
    stream: StreamId,
    k: u32,
) -> Result<(), TickError> {
    if stream != id {
        return Err(TickError::WrongStream);
    }
    if k > max_ticks {
        return Err(TickError::BeyondMax { k, max: max_ticks });
    }
    if k <= last {
        return Err(TickError::Stale { k, last });
    }
    Ok(())
}

/// The checking side (the node's relay, a payee): remembers the last good tick, so each new
/// tick costs the hashes since it.
#[derive(Clone, Copy, Debug)]
pub struct TickCheck {
    id: StreamId,
    max_ticks: u32,
    last: u32,
    last_value: Digest,
}

impl TickCheck {
    /// Starts from a known point of the chain: the anchor (`settled = 0`) or a stream's
    /// settled head.
    pub fn new(id: StreamId, max_ticks: TickCount, settled: TickCount, head: Digest) -> Self {
        TickCheck {
            id,
            max_ticks: max_ticks.get(),
            last: settled.get(),
            last_value: head,
        }
    }

    /// The stream whose ticks this checks.
    pub fn stream(&self) -> StreamId {
        self.id
    }

    /// The last tick that checked (or the starting point).
    pub fn last(&self) -> (TickCount, Digest) {
        (TickCount(self.last), self.last_value)
    }

    /// Checks `tick` against the last good one and, if it is good, remembers it. A refused
    /// tick changes nothing.
    pub fn check(&mut self, tick: &Tick) -> Result<(), TickError> {
        let k = tick.k.get();
        follows(self.id, self.max_ticks, self.last, tick.stream, k)?;
        if k - self.last > MAX_TICK_GAP {
            return Err(TickError::GapTooLarge { k, last: self.last });
        }
        if walk(&self.id, k, tick.value, self.last) != self.last_value {
            return Err(TickError::Mismatch { k });
        }
        self.last = k;
        self.last_value = tick.value;
        Ok(())
    }
}
