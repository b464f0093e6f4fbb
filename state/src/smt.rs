//! TEMPORARY stand-in for the sparse Merkle tree (the real one is written on branch `smt`).
//!
//! Same API and same tree (depth 32, empty leaf ZERO, E[l+1] = two_to_one(E[l], E[l]), index
//! bits from the bottom choose left/right), computed naively so the rules can be tested. To be
//! replaced by `main`'s `smt.rs` as soon as it lands.

use std::collections::BTreeMap;

use crate::hash::{two_to_one, Digest};

pub const DEPTH: usize = 32;

fn empty_hashes() -> [Digest; DEPTH + 1] {
    let mut e = [Digest::ZERO; DEPTH + 1];
    for l in 0..DEPTH {
        e[l + 1] = two_to_one(e[l], e[l]);
    }
    e
}

#[derive(Clone, Debug)]
pub struct SparseMerkleTree {
    leaves: BTreeMap<u32, Digest>,
    empty: [Digest; DEPTH + 1],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleProof {
    /// Sibling hashes from the leaf level up.
    pub siblings: Vec<Digest>,
}

impl Default for SparseMerkleTree {
    fn default() -> Self {
        Self::new()
    }
}

impl SparseMerkleTree {
    pub fn new() -> Self {
        SparseMerkleTree {
            leaves: BTreeMap::new(),
            empty: empty_hashes(),
        }
    }

    /// Hash of the subtree at `level` whose leaves are `prefix << level ..`.
    fn node(&self, level: usize, prefix: u64) -> Digest {
        let lo = prefix << level;
        let hi = ((prefix + 1) << level) - 1;
        if self.leaves.range(lo as u32..=hi as u32).next().is_none() {
            return self.empty[level];
        }
        if level == 0 {
            return self.leaf(lo as u32);
        }
        two_to_one(
            self.node(level - 1, 2 * prefix),
            self.node(level - 1, 2 * prefix + 1),
        )
    }

    pub fn root(&self) -> Digest {
        self.node(DEPTH, 0)
    }

    pub fn leaf(&self, index: u32) -> Digest {
        self.leaves.get(&index).copied().unwrap_or(Digest::ZERO)
    }

    pub fn set(&mut self, index: u32, leaf: Digest) {
        if leaf == Digest::ZERO {
            self.leaves.remove(&index);
        } else {
            self.leaves.insert(index, leaf);
        }
    }

    pub fn update_batch(&mut self, updates: &[(u32, Digest)]) {
        for &(i, l) in updates {
            self.set(i, l);
        }
    }

    pub fn proof(&self, index: u32) -> MerkleProof {
        let idx = index as u64;
        MerkleProof {
            siblings: (0..DEPTH).map(|l| self.node(l, (idx >> l) ^ 1)).collect(),
        }
    }
}

impl MerkleProof {
    pub fn compute_root(&self, index: u32, leaf: Digest) -> Digest {
        let mut h = leaf;
        for (l, s) in self.siblings.iter().enumerate() {
            h = if (index >> l) & 1 == 0 {
                two_to_one(h, *s)
            } else {
                two_to_one(*s, h)
            };
        }
        h
    }

    pub fn verify(&self, root: Digest, index: u32, leaf: Digest) -> bool {
        self.compute_root(index, leaf) == root
    }
}
