//! A payer's stream tree and how it enters the account leaf's `ext`.
//!
//! Each account's open streams live in a sparse Merkle tree of depth [`SLOT_DEPTH`] = 16 keyed
//! by [`StreamSlot`], with the account-tree rules (SPEC section 6: empty leaf `ZERO`, empty
//! subtrees `E[l]`, `two_to_one` nodes, index bits from the leaf up). A slot holds
//! [`Stream::leaf_hash`] or `ZERO`. A settlement or close proves one slot with 16 sibling
//! hashes.
//!
//! The account leaf's `ext` (SPEC section 4) commits to the account's agent fields:
//!
//! ```text
//! ext = ZERO                                      if streams_root = E[16] and profile = ZERO
//! ext = hash_no_pad(streams_root ‖ profile)       otherwise (8 elements, one permutation)
//! ```
//!
//! `profile` commits the account's other agent fields (revenue shares, passport, nonce lanes:
//! [`crate::ext`]). An account without streams or agent fields keeps `ext = ZERO`, so every
//! leaf committed before they existed is unchanged.

use std::collections::BTreeMap;

use super::{Stream, StreamSlot};
use crate::hash::{two_to_one, Digest};
use crate::smt::empty_hashes;

/// Depth of a payer's stream tree: 2^16 slots.
pub const SLOT_DEPTH: usize = 16;

pub use crate::ext::ext_digest;

/// One payer's open streams.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PayerStreams {
    slots: BTreeMap<StreamSlot, Stream>,
}

impl PayerStreams {
    pub fn get(&self, slot: StreamSlot) -> Option<&Stream> {
        self.slots.get(&slot)
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Stream> {
        self.slots.values()
    }

    /// The lowest free slot, if any (what a wallet picks for a new stream).
    pub fn free_slot(&self) -> Option<StreamSlot> {
        (0..=u16::MAX)
            .map(StreamSlot)
            .find(|s| !self.slots.contains_key(s))
    }

    /// Puts `stream` in its slot (replacing what was there).
    pub fn put(&mut self, stream: Stream) {
        self.slots.insert(stream.id.slot, stream);
    }

    /// Empties `slot`, returning what it held.
    pub fn remove(&mut self, slot: StreamSlot) -> Option<Stream> {
        self.slots.remove(&slot)
    }

    /// The escrow of every open stream together (fits in a u128 whatever the count).
    pub fn escrowed(&self) -> u128 {
        self.slots.values().map(|s| s.escrow().get() as u128).sum()
    }

    /// The tree's root: 16 levels over the occupied slots (`16 x` their count hashes at most).
    pub fn root(&self) -> Digest {
        let mut level: Vec<(u32, Digest)> = self
            .slots
            .iter()
            .map(|(slot, s)| (slot.0 as u32, s.leaf_hash()))
            .collect();
        let empty = empty_hashes();
        for &empty_l in &empty[..SLOT_DEPTH] {
            let mut next: Vec<(u32, Digest)> = Vec::with_capacity(level.len());
            let mut i = 0;
            while i < level.len() {
                let (pos, node) = level[i];
                let parent = pos >> 1;
                let (left, right, used) = if pos & 1 == 0 {
                    match level.get(i + 1) {
                        Some(&(p2, sib)) if p2 == pos + 1 => (node, sib, 2),
                        _ => (node, empty_l, 1),
                    }
                } else {
                    (empty_l, node, 1)
                };
                next.push((parent, two_to_one(left, right)));
                i += used;
            }
            level = next;
        }
        level.first().map_or(empty[SLOT_DEPTH], |&(_, d)| d)
    }

    /// The 16 siblings of `slot`, leaf level first (for a settlement or close witness).
    pub fn path(&self, slot: StreamSlot) -> [Digest; SLOT_DEPTH] {
        let empty = empty_hashes();
        let mut siblings = [Digest::ZERO; SLOT_DEPTH];
        // Node values per level, computed over the occupied slots only.
        let mut level: BTreeMap<u32, Digest> = self
            .slots
            .iter()
            .map(|(s, st)| (s.0 as u32, st.leaf_hash()))
            .collect();
        let mut pos = slot.0 as u32;
        for (l, sibling) in siblings.iter_mut().enumerate() {
            *sibling = level.get(&(pos ^ 1)).copied().unwrap_or(empty[l]);
            let mut next = BTreeMap::new();
            for (&p, &d) in &level {
                next.entry(p >> 1).or_insert_with(|| {
                    let (left, right) = if p & 1 == 0 {
                        (d, level.get(&(p + 1)).copied().unwrap_or(empty[l]))
                    } else {
                        (level.get(&(p - 1)).copied().unwrap_or(empty[l]), d)
                    };
                    two_to_one(left, right)
                });
            }
            level = next;
            pos >>= 1;
        }
        siblings
    }

    /// The `ext` of the payer's leaf with these streams and no profile.
    pub fn ext(&self) -> Digest {
        ext_digest(self.root(), Digest::ZERO)
    }
}

/// The root from a slot's leaf and its [`PayerStreams::path`].
pub fn root_from_path(slot: StreamSlot, leaf: Digest, path: &[Digest; SLOT_DEPTH]) -> Digest {
    crate::smt::root_of(u32::from(slot.0), leaf, path)
}
