//! Payment streams: one signed open escrows `price x max_ticks`, ticks travel payer to payee
//! off-chain, and the payee settles the latest tick whenever it likes.
//!
//! This module holds the stream rules with no I/O (SPEC section 18). They are pure functions
//! over a [`Stream`] record and the balances involved; wiring them into [`crate::apply::State`]
//! (transaction tags, pubdata, circuits) builds on them.
//!
//! # Ticks: a Poseidon hash chain (PayWord)
//!
//! The payer picks a secret seed `t_N` for a stream of at most `N = max_ticks` ticks and
//! publishes, in the open, the anchor `t_0` where `t_{k-1} = H_k(t_k)` (see [`chain`]). Tick `k`
//! reveals `t_k`. Whoever knows `t_j` (`j < k`) checks `t_k` with `k - j` hashes, and nobody can
//! produce `t_k` from the earlier values without inverting Poseidon. A tick is therefore 40 bytes
//! (`k`, `t_k`), the relay checks each with **one** hash (it keeps the previous tick), and a
//! settlement from `s` to `k` ticks costs `k - s` hashes, each a single Poseidon permutation
//! (one row of a plonky2 circuit): the cost scales with ticks settled, not with ticks sent.
//!
//! Why not a signature per tick (as in payment channels)? An ECgFp5 Schnorr verification costs
//! ~40 us natively and 127 circuit rows; a chain step costs ~2 us and one row. Why not a Merkle
//! tree of tick secrets? Each tick would carry a `log N`-digest path (~0.7 KB at `N = 2^20`)
//! instead of one digest, which at 100,000 ticks a second is the relay's whole bandwidth.
//!
//! # Settlement and close
//!
//! * Settle (signed by the payee): from the stream's settled count `s` and head `t_s` to a
//!   later tick `k`, with `s < k <= max_ticks` and `k - s <= MAX_SETTLE_TICKS`; pays
//!   `(k - s) x price` out of the escrow to the payee, records `k` and `t_k`. The stream stays
//!   open. Allowed until `expiry + SETTLE_WINDOW_SECS`; a tick already settled cannot settle
//!   again because the settled count only grows.
//! * Close: the payee may close at any time (it gives up the unsettled ticks); the payer only
//!   once `expiry + SETTLE_WINDOW_SECS` has passed, so the payee always has the window to
//!   settle. Closing refunds the rest of the escrow to the payer and empties the slot.
//!
//! # Invariant
//!
//! `escrow = price x (max_ticks - settled)` at all times; it is never negative, and the money in
//! streams plus the balances is constant across open, settle and close (fees aside).

pub mod chain;
pub mod rules;
pub mod tick_tree;
pub mod tree;

use plonky2::field::types::Field;
use serde::{Deserialize, Serialize};

use crate::account::{AccountIndex, Amount, Nonce, Timestamp};
use crate::hash::{hash_no_pad, Digest, F};

pub use chain::{Tick, TickChain, TickCheck, TickError};
pub use rules::{Close, Closed, Open, Party, Settle, Settled, StreamRejection};
pub use tick_tree::{TickPath, TickTree, TreeTick, TreeTickCheck, TICK_TREE_DEPTH};
pub use tree::{PayerStreams, SLOT_DEPTH};

/// The most ticks a stream may have: 2^24. The payer hashes the whole chain once at open
/// (16.7 million Poseidon permutations, ~30 s on one core at the bound).
pub const MAX_TICKS: u32 = 1 << 24;

/// The most ticks one settlement may cover: 2^16. A settlement's chain walk is done where
/// signatures are checked (in parallel, before the state writer), and this bounds its cost
/// (~0.15 s at the bound) and the circuit's per-settlement work.
pub const MAX_SETTLE_TICKS: u32 = 1 << 16;

/// How long after its expiry a stream's payee may still settle, and before which the payer
/// cannot close it: one hour.
pub const SETTLE_WINDOW_SECS: u64 = 3600;

/// A payer's stream slot: the leaf of its stream tree (depth [`SLOT_DEPTH`]) a stream occupies.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct StreamSlot(pub u16);

/// A number of ticks, at most [`MAX_TICKS`].
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct TickCount(u32);

impl TickCount {
    pub const ZERO: TickCount = TickCount(0);
    pub const MAX: TickCount = TickCount(MAX_TICKS);

    /// `Some` if `v <= MAX_TICKS`.
    pub const fn new(v: u32) -> Option<Self> {
        if v <= MAX_TICKS {
            Some(TickCount(v))
        } else {
            None
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }

    pub fn to_field(self) -> F {
        F::from_canonical_u32(self.0)
    }
}

impl std::fmt::Display for TickCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<u32> for TickCount {
    type Error = crate::account::OutOfRange;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        TickCount::new(v).ok_or(crate::account::OutOfRange { value: v as u64 })
    }
}

impl From<TickCount> for u32 {
    fn from(t: TickCount) -> u32 {
        t.0
    }
}

/// A stream's identity: the payer, its slot and the payer's nonce when the stream was opened.
/// The nonce makes the identity unique over time (a slot is reused after a close), so a tick of
/// a closed stream is not a tick of its successor.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct StreamId {
    pub payer: AccountIndex,
    pub slot: StreamSlot,
    pub opened_at: Nonce,
}

impl StreamId {
    /// The two field elements of the identity: `payer x 2^16 + slot` (below 2^48) and
    /// `opened_at` (below 2^63).
    pub fn to_field_elements(&self) -> [F; 2] {
        [
            F::from_canonical_u64(((self.payer.0 as u64) << 16) | self.slot.0 as u64),
            self.opened_at.to_field(),
        ]
    }
}

/// An open stream, as committed in its payer's stream tree.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Stream {
    pub id: StreamId,
    pub payee: AccountIndex,
    /// Paid per tick, positive.
    pub price: Amount,
    /// Positive, at most [`MAX_TICKS`]; `price x max_ticks <= 2^63 - 1`.
    pub max_ticks: TickCount,
    /// Ticks are worth nothing after this time; the payee settles until
    /// `expiry + SETTLE_WINDOW_SECS`.
    pub expiry: Timestamp,
    /// Ticks settled so far (`0` at open).
    pub settled: TickCount,
    /// `t_settled`: the anchor at open, then the last settled tick's value.
    pub head: Digest,
}

/// Bytes of a stream's fields in a snapshot or a state diff record ([`Stream::write_fields`]).
pub const STREAM_FIELDS_BYTES: usize = 4 + 8 + 4 + 8 + 8 + 4 + 32;

impl Stream {
    /// The fields after the stream's position (payer and slot), as snapshots and state diffs
    /// store them: `payee LE32 ‖ price LE64 ‖ max_ticks LE32 ‖ expiry LE64 ‖ opened_at LE64 ‖
    /// settled LE32 ‖ head (4 x LE64)`.
    pub fn write_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.payee.0.to_le_bytes());
        out.extend_from_slice(&self.price.get().to_le_bytes());
        out.extend_from_slice(&self.max_ticks.get().to_le_bytes());
        out.extend_from_slice(&self.expiry.get().to_le_bytes());
        out.extend_from_slice(&self.id.opened_at.get().to_le_bytes());
        out.extend_from_slice(&self.settled.get().to_le_bytes());
        out.extend_from_slice(&self.head.to_bytes());
    }

    /// Reads [`Stream::write_fields`] for the stream in `slot` of `payer`, with every rule an
    /// open stream obeys (18.4): a payee other than the payer and below `accounts`, a positive
    /// price, `1 <= max_ticks <= 2^24`, an escrow `price x max_ticks` below 2^63, `expiry` and
    /// `opened_at` below 2^63, `settled <= max_ticks`, a canonical head. On error, the name of
    /// the first field (in byte order) that breaks them.
    pub fn read_fields(
        payer: AccountIndex,
        slot: StreamSlot,
        bytes: &[u8; STREAM_FIELDS_BYTES],
        accounts: u64,
    ) -> Result<Stream, &'static str> {
        let u32_at =
            |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let payee = u32_at(0);
        if u64::from(payee) >= accounts || payee == payer.0 {
            return Err("payee");
        }
        let price = Amount::new(u64_at(4))
            .filter(|p| !p.is_zero())
            .ok_or("price")?;
        let max_ticks = TickCount::new(u32_at(12))
            .filter(|m| m.get() > 0)
            .ok_or("max_ticks")?;
        price
            .get()
            .checked_mul(u64::from(max_ticks.get()))
            .and_then(Amount::new)
            .ok_or("price")?;
        let expiry = Timestamp::new(u64_at(16)).ok_or("expiry")?;
        let opened_at = Nonce::new(u64_at(24)).ok_or("opened_at")?;
        let settled = TickCount::new(u32_at(32))
            .filter(|s| s.get() <= max_ticks.get())
            .ok_or("settled")?;
        let mut head = [0u8; 32];
        head.copy_from_slice(&bytes[36..68]);
        let head = Digest::from_bytes(&head).ok_or("head")?;
        Ok(Stream {
            id: StreamId {
                payer,
                slot,
                opened_at,
            },
            payee: AccountIndex(payee),
            price,
            max_ticks,
            expiry,
            settled,
            head,
        })
    }

    /// The escrow still held: `price x (max_ticks - settled)`. Fits in 63 bits because
    /// `price x max_ticks` does (checked at open) and `settled <= max_ticks`.
    pub fn escrow(&self) -> Amount {
        let left = u64::from(self.max_ticks.0 - self.settled.0);
        Amount::new(self.price.get() * left).unwrap_or(Amount::MAX)
    }

    /// The ten field elements of the stream leaf:
    /// `[payee, price, max_ticks, expiry, opened_at, settled, head0..head3]`. The payer and
    /// slot are the leaf's position, so they are not repeated.
    pub fn to_field_elements(&self) -> [F; 10] {
        let h = self.head.elements();
        [
            self.payee.to_field(),
            self.price.to_field(),
            self.max_ticks.to_field(),
            self.expiry.to_field(),
            self.id.opened_at.to_field(),
            self.settled.to_field(),
            h[0],
            h[1],
            h[2],
            h[3],
        ]
    }

    /// The stream's leaf in its payer's stream tree: `hash_no_pad` of the ten elements above
    /// (two permutations). An empty slot is [`Digest::ZERO`].
    pub fn leaf_hash(&self) -> Digest {
        hash_no_pad(&self.to_field_elements())
    }
}

#[cfg(test)]
mod tests;
