//! Tick trees: ticks as the leaves of a Merkle tree the payer commits to at open, so that a
//! settlement costs one path whatever the ticks it settles (SPEC 18.8).
//!
//! ```text
//! leaf_k  = hash_no_pad([id0, id1, k, TAG_TICK_LEAF, s0, s1, s2, s3])   (one permutation)
//! tree    = depth 24, tick k (1 <= k <= max_ticks) at index k - 1, every other leaf ZERO,
//!           nodes two_to_one(left, right), index bits read from the leaf up (the rules of 6)
//! anchor  = the tree's root                                              (carried by the open)
//! ```
//!
//! `s_k` is the tick's secret; tick `k` reveals it with the siblings the receiver still lacks.
//! Nothing in a path reveals a secret of another tick: a sibling is a leaf's or a node's hash.
//! The payer derives the secrets from one seed ([`secret`]: `hash_no_pad(seed ‖ k ‖ "secr")`,
//! a wallet's choice, not a rule), so it keeps only the tree's upper levels and recomputes a
//! 64-leaf block when it ticks into it.
//!
//! # Why a second commitment beside the chain
//!
//! A chain settlement ([`super::chain`]) walks one permutation per tick settled: a minute of
//! ticks at ten a second is 600 permutations, more rows than the signature that authorises it.
//! Here a settlement opens one leaf, 25 permutations whatever it settles. The price is paid by
//! the ticks: a tick carries the siblings its receiver lacks (on average one digest, 32 bytes,
//! when ticks arrive in order; up to 24 after a gap), and a receiver checks it with the hashes
//! up to where its path meets the last good tick's (on average two, at most 25): see
//! [`TreeTickCheck`].
//!
//! # The two commitments cannot stand in for each other
//!
//! The open's anchor is either a chain's `t_0` or a tree's root, and nothing records which: a
//! settlement says how it opens the anchor (a walk, tag 8, or a path, tag 18). Passing a chain
//! stream off as a tree (or the reverse) needs a Poseidon preimage of the head: a path's last
//! step `two_to_one(a, b) = head` for a head that is a chain value means a leaf digest equal to
//! a chain step's output, and the leaf's element 3 is [`TAG_TICK_LEAF`] where a step's is
//! [`super::chain::TAG_TICK`], so that is a collision between inputs that differ; a walk ending
//! at a root means `H_k(x) = root`, a preimage. (The payee of a chain stream knows many
//! `two_to_one` decompositions of chain values; the distinct tags are what keep them from
//! forming a path, SPEC 18.8.)

use plonky2::field::types::Field;
use serde::{Deserialize, Serialize};

use super::chain::{follows, TickError};
use super::{StreamId, TickCount};
use crate::hash::{hash_no_pad, two_to_one, Digest, F};
use crate::smt::{empty_hashes, hash_up, root_of};

/// Domain element of a tick leaf: the ASCII bytes `"leaf"` as a big-endian u32.
pub const TAG_TICK_LEAF: u32 = u32::from_be_bytes(*b"leaf");

/// Domain element of the wallet's secret derivation ([`secret`]): ASCII `"secr"`.
pub const TAG_TICK_SECRET: u32 = u32::from_be_bytes(*b"secr");

/// Depth of a tick tree: 2^24 leaves, one per possible tick (`MAX_TICKS`).
pub const TICK_TREE_DEPTH: usize = 24;

/// Bytes of a path in a transaction: 24 digests.
pub const TICK_PATH_BYTES: usize = TICK_TREE_DEPTH * Digest::BYTES;

/// The siblings of a leaf from level 0 (the leaf's neighbour) to level 23.
pub type TickPath = [Digest; TICK_TREE_DEPTH];

/// Levels the payer recomputes on demand rather than stores: blocks of 64 leaves.
const BLOCK_LEVELS: usize = 6;
const BLOCK: u32 = 1 << BLOCK_LEVELS;

/// Tick `k`'s leaf.
pub fn leaf(id: &StreamId, k: u32, secret: Digest) -> Digest {
    let [i0, i1] = id.to_field_elements();
    let s = secret.elements();
    hash_no_pad(&[
        i0,
        i1,
        F::from_canonical_u32(k),
        F::from_canonical_u32(TAG_TICK_LEAF),
        s[0],
        s[1],
        s[2],
        s[3],
    ])
}

/// The wallet's secret of tick `k`: `hash_no_pad(seed0..3 ‖ k ‖ TAG_TICK_SECRET)`. Not a rule
/// (any secret works); the SDK's choice, so that a payer keeps one seed.
pub fn secret(seed: Digest, k: u32) -> Digest {
    let s = seed.elements();
    hash_no_pad(&[
        s[0],
        s[1],
        s[2],
        s[3],
        F::from_canonical_u32(k),
        F::from_canonical_u32(TAG_TICK_SECRET),
    ])
}

/// The root that tick `k` with `secret` and `path` opens to, or `None` for `k = 0` or
/// `k > 2^24` (no leaf holds them). 25 hashes.
pub fn root_from_path(
    id: &StreamId,
    k: TickCount,
    secret: Digest,
    path: &TickPath,
) -> Option<Digest> {
    let index = k.get().checked_sub(1)?;
    Some(root_of(index, leaf(id, k.get(), secret), path))
}

/// A tick of a tree stream as it travels: the secret and the siblings from level 0 up to as
/// high as the receiver needs (all 24 for a receiver that has no earlier path).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TreeTick {
    pub stream: StreamId,
    pub k: TickCount,
    pub secret: Digest,
    pub siblings: Vec<Digest>,
}

/// The payer's side: the tick tree of one stream.
#[derive(Clone, Debug)]
pub struct TickTree {
    id: StreamId,
    max_ticks: u32,
    seed: Digest,
    /// `upper[l - BLOCK_LEVELS]` holds the nodes of level `l` (`BLOCK_LEVELS..=DEPTH`) over
    /// the ticks; a node past the end is the empty subtree `E[l]`.
    upper: Vec<Vec<Digest>>,
    /// The block last ticked from.
    block: Option<Block>,
}

/// One 64-leaf block of a payer's tree, recomputed when it ticks into it.
#[derive(Clone, Debug)]
struct Block {
    number: u32,
    /// Its ticks' secrets (`ZERO` past `max_ticks`), kept so that a tick does not hash its
    /// secret again.
    secrets: Vec<Digest>,
    /// Its levels `0..BLOCK_LEVELS`, the leaves first.
    levels: Vec<Vec<Digest>>,
}

impl TickTree {
    /// Builds the tree of `id` for `max_ticks` ticks from `seed`: about `3 x max_ticks`
    /// hashes (secrets, leaves, nodes); keeps `max_ticks / 32` digests (16 MB at 2^24).
    pub fn new(id: StreamId, max_ticks: TickCount, seed: Digest) -> TickTree {
        let n = max_ticks.get();
        let mut tree = TickTree {
            id,
            max_ticks: n,
            seed,
            upper: Vec::with_capacity(TICK_TREE_DEPTH - BLOCK_LEVELS + 1),
            block: None,
        };
        // A tree of no tick is the empty tree (its one block's leaves all ZERO).
        let blocks = n.div_ceil(BLOCK).max(1);
        let mut level: Vec<Digest> = (0..blocks)
            .map(|b| {
                let top = &tree.block(b).levels[BLOCK_LEVELS - 1];
                two_to_one(top[0], top[1])
            })
            .collect();
        // A node past the ticks' end pairs with the empty subtree of its level.
        for empty in &empty_hashes()[BLOCK_LEVELS..TICK_TREE_DEPTH] {
            let next = level
                .chunks(2)
                .map(|p| two_to_one(p[0], p.get(1).copied().unwrap_or(*empty)))
                .collect();
            tree.upper.push(std::mem::replace(&mut level, next));
        }
        tree.upper.push(level);
        tree
    }

    /// Block `b`: its secrets and levels (leaves past `max_ticks` are `ZERO`).
    fn block(&self, b: u32) -> Block {
        let first = b * BLOCK + 1;
        let ticks = first..(first + BLOCK).min(self.max_ticks + 1);
        let secrets: Vec<Digest> = ticks.map(|k| secret(self.seed, k)).collect();
        let mut level: Vec<Digest> = (0..BLOCK as usize)
            .map(|i| match secrets.get(i) {
                Some(s) => leaf(&self.id, first + i as u32, *s),
                None => Digest::ZERO,
            })
            .collect();
        let mut levels = Vec::with_capacity(BLOCK_LEVELS);
        for _ in 0..BLOCK_LEVELS {
            let next = level.chunks(2).map(|p| two_to_one(p[0], p[1])).collect();
            levels.push(std::mem::replace(&mut level, next));
        }
        Block {
            number: b,
            secrets,
            levels,
        }
    }

    /// Makes the block of leaf `index` the cached one (recomputed unless it is).
    fn load_block(&mut self, index: u32) {
        let b = index / BLOCK;
        if self.block.as_ref().is_none_or(|c| c.number != b) {
            self.block = Some(self.block(b));
        }
    }

    pub fn id(&self) -> StreamId {
        self.id
    }

    /// The root: the anchor the open commits to.
    pub fn root(&self) -> Digest {
        self.upper[TICK_TREE_DEPTH - BLOCK_LEVELS][0]
    }

    /// The full path of tick `k` (`1 ..= max_ticks`), or `None` beyond the tree.
    pub fn path(&mut self, k: u32) -> Option<TickPath> {
        if k == 0 || k > self.max_ticks {
            return None;
        }
        let index = k - 1;
        self.load_block(index);
        let low = &self.block.as_ref()?.levels;
        let empty = empty_hashes();
        let mut path = [Digest::ZERO; TICK_TREE_DEPTH];
        for (level, sibling) in path.iter_mut().enumerate() {
            let at = ((index >> level) ^ 1) as usize;
            *sibling = if level < BLOCK_LEVELS {
                low[level][at % (BLOCK as usize >> level)]
            } else {
                self.upper[level - BLOCK_LEVELS]
                    .get(at)
                    .copied()
                    .unwrap_or(empty[level])
            };
        }
        Some(path)
    }

    /// Tick `k` for a receiver whose last good tick is `known` (`None`: it has no path yet),
    /// carrying the siblings below the level where the two paths meet ([`levels_needed`]).
    pub fn tick(&mut self, k: u32, known: Option<u32>) -> Option<TreeTick> {
        let path = self.path(k)?;
        let needed = levels_needed(k, known);
        // `path` cached the tick's block, secrets included.
        let secret = *self
            .block
            .as_ref()?
            .secrets
            .get(((k - 1) % BLOCK) as usize)?;
        Some(TreeTick {
            stream: self.id,
            k: TickCount::new(k)?,
            secret,
            siblings: path[..needed].to_vec(),
        })
    }
}

/// The siblings a receiver whose last good tick is `known` needs to check tick `k`: the
/// levels below the first where `k`'s ancestor is `known`'s or its sibling (24 without a
/// known tick, or for `known = k`).
pub fn levels_needed(k: u32, known: Option<u32>) -> usize {
    let (Some(known), Some(index)) = (known.and_then(|j| j.checked_sub(1)), k.checked_sub(1))
    else {
        return TICK_TREE_DEPTH;
    };
    (0..TICK_TREE_DEPTH)
        .find(|&l| (index >> l) == (known >> l) || (index >> l) == (known >> l) ^ 1)
        .filter(|_| index != known)
        .unwrap_or(TICK_TREE_DEPTH)
}

/// The last good tick's path, as a receiver keeps it: `nodes[l]` its ancestor at level `l`
/// (`nodes[24]` the root) and `siblings[l]` that ancestor's sibling. Every entry is
/// authenticated: it hashed up to the root.
#[derive(Clone, Copy, Debug)]
struct KnownPath {
    index: u32,
    secret: Digest,
    nodes: [Digest; TICK_TREE_DEPTH + 1],
    siblings: TickPath,
}

/// The checking side of a tree stream (the node's relay, a payee): the root, the last good
/// tick and its path, so a tick in order costs the hashes up to where the paths meet.
#[derive(Clone, Debug)]
pub struct TreeTickCheck {
    id: StreamId,
    max_ticks: u32,
    root: Digest,
    last: u32,
    /// Boxed: 1.6 KB, and a relay keeps one check per stream of either kind.
    known: Option<Box<KnownPath>>,
}

impl TreeTickCheck {
    /// Starts from a stream's root and settled count (no path known: the next tick carries
    /// all 24 siblings).
    pub fn new(id: StreamId, max_ticks: TickCount, settled: TickCount, root: Digest) -> Self {
        TreeTickCheck {
            id,
            max_ticks: max_ticks.get(),
            root,
            last: settled.get(),
            known: None,
        }
    }

    pub fn stream(&self) -> StreamId {
        self.id
    }

    /// The last tick that checked (or the settled count it started from).
    pub fn last(&self) -> TickCount {
        TickCount::new(self.last).unwrap_or(TickCount::MAX)
    }

    /// The last good tick with its full path, if one checked since the start (what a payee
    /// settles with, what a relay forwards).
    pub fn last_tick(&self) -> Option<TreeTick> {
        let p = self.known.as_ref()?;
        Some(TreeTick {
            stream: self.id,
            k: TickCount::new(self.last)?,
            secret: p.secret,
            siblings: p.siblings.to_vec(),
        })
    }

    /// Checks `tick` and, if it is good, remembers it and its path. A refused tick changes
    /// nothing. Reasons: those of the chain's check but the gap (a tick costs at most 25
    /// hashes however far it jumps), and `TICK_PATH_TOO_SHORT`.
    pub fn check(&mut self, tick: &TreeTick) -> Result<(), TickError> {
        let k = tick.k.get();
        follows(self.id, self.max_ticks, self.last, tick.stream, k)?;
        let index = k - 1;
        let mut nodes = [Digest::ZERO; TICK_TREE_DEPTH + 1];
        let mut siblings = [Digest::ZERO; TICK_TREE_DEPTH];
        nodes[0] = leaf(&self.id, k, tick.secret);
        for level in 0..=TICK_TREE_DEPTH {
            let at = index >> level;
            if let Some(known) = self.known.as_ref().filter(|_| level < TICK_TREE_DEPTH) {
                let theirs = known.index >> level;
                let meets = if at == theirs {
                    Some(known.nodes[level])
                } else if at == theirs ^ 1 {
                    Some(known.siblings[level])
                } else {
                    None
                };
                if let Some(expected) = meets {
                    if nodes[level] != expected {
                        return Err(TickError::Mismatch { k });
                    }
                    // From here up the path is the known one (shifted by one sibling when the
                    // two meet as siblings).
                    for l in level..TICK_TREE_DEPTH {
                        nodes[l + 1] = known.nodes[l + 1];
                        siblings[l] = if l == level && at != theirs {
                            known.nodes[l]
                        } else {
                            known.siblings[l]
                        };
                    }
                    self.remember(k, index, tick.secret, nodes, siblings);
                    return Ok(());
                }
            }
            if level == TICK_TREE_DEPTH {
                break;
            }
            let sibling = *tick.siblings.get(level).ok_or(TickError::PathTooShort {
                k,
                given: tick.siblings.len(),
            })?;
            siblings[level] = sibling;
            nodes[level + 1] = hash_up(nodes[level], sibling, at & 1 == 1);
        }
        if nodes[TICK_TREE_DEPTH] != self.root {
            return Err(TickError::Mismatch { k });
        }
        self.remember(k, index, tick.secret, nodes, siblings);
        Ok(())
    }

    fn remember(
        &mut self,
        k: u32,
        index: u32,
        secret: Digest,
        nodes: [Digest; TICK_TREE_DEPTH + 1],
        siblings: TickPath,
    ) {
        self.last = k;
        let known = KnownPath {
            index,
            secret,
            nodes,
            siblings,
        };
        // In place after the first: a relay checks every tick of a stream here.
        match &mut self.known {
            Some(b) => **b = known,
            None => self.known = Some(Box::new(known)),
        }
    }
}

#[cfg(test)]
mod tests;
