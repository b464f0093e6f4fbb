//! The account-state sparse Merkle tree.
//!
//! A binary Merkle tree of depth [`DEPTH`] = 32 whose leaves are indexed by a `u32` (the account
//! index). Leaves are opaque [`Digest`]s supplied by the caller: the tree knows nothing about
//! accounts. The rules below are part of the protocol (the circuits recompute them), so they must
//! never change:
//!
//! - an empty leaf is [`Digest::ZERO`];
//! - the empty-subtree hashes are `E[0] = ZERO` and `E[l + 1] = two_to_one(E[l], E[l])`;
//! - an inner node is `two_to_one(left, right)`;
//! - the node at level `l` (0 = leaves) and position `i` has its children at level `l - 1`,
//!   positions `2i` (left) and `2i + 1` (right), so a leaf index is read from its least
//!   significant bit (leaf level) to its most significant bit (just below the root);
//! - the root of the empty tree is `E[32]`.
//!
//! Storage is canonical: a node is stored only if it differs from the empty-subtree hash of its
//! level. Setting a leaf back to `ZERO` therefore leaves exactly the same stored nodes as never
//! having set it, which makes [`SparseMerkleTree::len_nonempty`] exact and structural equality
//! ([`PartialEq`]) equivalent to equality of the leaf sets.

use std::fmt;
use std::sync::OnceLock;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::hash::{two_to_one, Digest};

/// Depth of the tree: one level per bit of the `u32` leaf index.
pub const DEPTH: usize = 32;

/// Below this many nodes per parallel task the rayon scheduling overhead outweighs the
/// Poseidon work (a few microseconds per hash), so small levels are hashed on one thread.
const PAR_MIN_LEN: usize = 128;

/// The empty-subtree hashes `E[0..=DEPTH]`: `E[0] = ZERO`, `E[l + 1] = two_to_one(E[l], E[l])`.
///
/// `E[l]` is the value of every node at level `l` whose subtree holds only empty leaves, and
/// `E[DEPTH]` is the root of the empty tree. Computed once per process (33 hashes) and cached.
pub fn empty_hashes() -> &'static [Digest; DEPTH + 1] {
    static EMPTY: OnceLock<[Digest; DEPTH + 1]> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let mut e = [Digest::ZERO; DEPTH + 1];
        for l in 0..DEPTH {
            e[l + 1] = two_to_one(e[l], e[l]);
        }
        e
    })
}

/// Position of the ancestor at `level` of leaf `index` (`level` in `0..=DEPTH`).
///
/// Shifts in `u64` because `index >> 32` on a `u32` would overflow at the root level.
#[inline]
fn ancestor(index: u32, level: usize) -> u32 {
    ((index as u64) >> level) as u32
}

/// Positions a level may grow its dense part by in one step. The state allocates account
/// indices sequentially, so every write lands at or just past the end of the dense part; a
/// write far beyond it (only unit tests and tools do that) goes to the sparse overflow instead
/// of allocating the gap.
const DENSE_SLACK: usize = 1024;

/// One level of the tree: positions `0..dense.len()` in a vector (an empty node holds the
/// level's empty hash), positions beyond in a map holding only non-empty nodes.
#[derive(Clone, Default)]
struct Level {
    dense: Vec<Digest>,
    sparse: FxHashMap<u32, Digest>,
}

/// A sparse Merkle tree of depth 32 keyed by `u32` leaf index.
///
/// Storage follows the state's allocation pattern: leaf indices are handed out sequentially,
/// so each level keeps a dense vector of its leftmost nodes (32 bytes a node, no hashing or
/// map overhead: a million accounts cost ~64 MB, against ~120 MB in per-level hash maps) and
/// a map for the rare node far to the right of it. A leaf at index 4,000,000,000 therefore
/// still costs 33 map entries, not gigabytes.
#[derive(Clone)]
pub struct SparseMerkleTree {
    /// `levels[l]` holds level `l`: `levels[0]` the leaves, `levels[DEPTH]` the root.
    levels: Vec<Level>,
    /// The number of leaves that are not `ZERO` (kept by `put`).
    nonempty: usize,
}

impl Default for SparseMerkleTree {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SparseMerkleTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SparseMerkleTree")
            .field("root", &self.root())
            .field("len_nonempty", &self.len_nonempty())
            .finish()
    }
}

/// Two trees are equal iff they hold the same non-empty leaves. Compared node by node over
/// the leaf level (inner nodes are functions of the leaves), whatever part of either tree is
/// dense.
impl PartialEq for SparseMerkleTree {
    fn eq(&self, other: &Self) -> bool {
        self.nonempty == other.nonempty && self.nonempty_leaves().all(|(i, d)| other.leaf(i) == d)
    }
}

impl Eq for SparseMerkleTree {}

impl SparseMerkleTree {
    /// The empty tree: every leaf is `ZERO` and the root is `E[DEPTH]`.
    pub fn new() -> Self {
        SparseMerkleTree {
            levels: vec![Level::default(); DEPTH + 1],
            nonempty: 0,
        }
    }

    /// The current root.
    pub fn root(&self) -> Digest {
        self.node(DEPTH, 0)
    }

    /// The leaf at `index`; `ZERO` if it was never set (or was set back to `ZERO`).
    pub fn leaf(&self, index: u32) -> Digest {
        self.node(0, index)
    }

    /// The number of leaves that are not `ZERO`.
    pub fn len_nonempty(&self) -> usize {
        self.nonempty
    }

    /// Every non-empty leaf with its index (dense part in index order, then the overflow).
    pub fn nonempty_leaves(&self) -> impl Iterator<Item = (u32, Digest)> + '_ {
        let leaves = &self.levels[0];
        leaves
            .dense
            .iter()
            .enumerate()
            .filter(|(_, d)| **d != Digest::ZERO)
            .map(|(i, d)| (i as u32, *d))
            .chain(leaves.sparse.iter().map(|(&i, &d)| (i, d)))
    }

    /// The node at (`level`, `pos`): the stored value, or `E[level]` if none is stored.
    #[inline]
    fn node(&self, level: usize, pos: u32) -> Digest {
        let l = &self.levels[level];
        match l.dense.get(pos as usize) {
            Some(d) => *d,
            None => match l.sparse.get(&pos) {
                Some(d) => *d,
                None => empty_hashes()[level],
            },
        }
    }

    /// Stores `value` at (`level`, `pos`): in the dense part if `pos` is inside it or close
    /// enough to its end to extend it, else in the overflow map (where an empty value is
    /// removed rather than stored).
    #[inline]
    fn put(&mut self, level: usize, pos: u32, value: Digest) {
        if level == 0 {
            let was_empty = self.node(0, pos) == Digest::ZERO;
            let is_empty = value == Digest::ZERO;
            match (was_empty, is_empty) {
                (true, false) => self.nonempty += 1,
                (false, true) => self.nonempty -= 1,
                _ => {}
            }
        }
        let empty = empty_hashes()[level];
        let l = &mut self.levels[level];
        let p = pos as usize;
        if p < l.dense.len() {
            l.dense[p] = value;
        } else if p <= l.dense.len() + DENSE_SLACK {
            l.dense.resize(p + 1, empty);
            l.dense[p] = value;
            if !l.sparse.is_empty() {
                // Nodes the dense part now covers move into it (the map only holds what lies
                // beyond the dense part).
                let len = l.dense.len();
                let moved: Vec<(u32, Digest)> = l
                    .sparse
                    .iter()
                    .filter(|(&q, _)| (q as usize) < len)
                    .map(|(&q, &d)| (q, d))
                    .collect();
                for (q, d) in moved {
                    l.sparse.remove(&q);
                    if q != pos {
                        l.dense[q as usize] = d;
                    }
                }
            }
        } else if value == empty {
            l.sparse.remove(&pos);
        } else {
            l.sparse.insert(pos, value);
        }
    }

    /// Appends the stored nodes to `out` (the tree part of a state snapshot, see
    /// `crate::snapshot`): per level, the dense part's length (u64) and nodes, then the
    /// overflow's length (u64) and `(position u32, node)` pairs in position order.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        for level in &self.levels {
            out.extend_from_slice(&(level.dense.len() as u64).to_le_bytes());
            for d in &level.dense {
                out.extend_from_slice(&d.to_bytes());
            }
            let mut sparse: Vec<(&u32, &Digest)> = level.sparse.iter().collect();
            sparse.sort_unstable_by_key(|(p, _)| **p);
            out.extend_from_slice(&(sparse.len() as u64).to_le_bytes());
            for (p, d) in sparse {
                out.extend_from_slice(&p.to_le_bytes());
                out.extend_from_slice(&d.to_bytes());
            }
        }
    }

    /// Reads what [`Self::encode_into`] wrote, from the front of `bytes`; returns the tree and
    /// the number of bytes read, or `None` if the bytes are short or hold a non-canonical node.
    /// Inner nodes are taken as stored (the snapshot's checksum and the root check against the
    /// sealed block vouch for them).
    pub(crate) fn decode_from(bytes: &[u8]) -> Option<(SparseMerkleTree, usize)> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = bytes.get(at..at.checked_add(n)?)?;
            at += n;
            Some(s)
        };
        let mut tree = SparseMerkleTree::new();
        for level in tree.levels.iter_mut() {
            let n = usize::try_from(u64::from_le_bytes(take(8)?.try_into().ok()?)).ok()?;
            let raw = take(n.checked_mul(32)?)?;
            level.dense = raw
                .chunks_exact(32)
                .map(|c| Digest::from_bytes(c.try_into().ok()?))
                .collect::<Option<Vec<Digest>>>()?;
            let m = usize::try_from(u64::from_le_bytes(take(8)?.try_into().ok()?)).ok()?;
            let raw = take(m.checked_mul(36)?)?;
            let mut sparse = FxHashMap::default();
            sparse.reserve(m);
            for c in raw.chunks_exact(36) {
                let pos = u32::from_le_bytes(c[..4].try_into().ok()?);
                if (pos as usize) < level.dense.len() {
                    return None;
                }
                sparse.insert(pos, Digest::from_bytes(c[4..].try_into().ok()?)?);
            }
            level.sparse = sparse;
        }
        tree.nonempty = tree.levels[0]
            .dense
            .iter()
            .filter(|d| **d != Digest::ZERO)
            .count()
            + tree.levels[0].sparse.len();
        Some((tree, at))
    }

    /// Sets the leaf at `index` and recomputes its path to the root (32 hashes).
    ///
    /// For many leaves at once use [`Self::update_batch`], which shares the upper levels and
    /// hashes in parallel.
    pub fn set(&mut self, index: u32, leaf: Digest) {
        self.put(0, index, leaf);
        let mut cur = leaf;
        for level in 0..DEPTH {
            let pos = ancestor(index, level);
            let sibling = self.node(level, pos ^ 1);
            cur = if pos & 1 == 0 {
                two_to_one(cur, sibling)
            } else {
                two_to_one(sibling, cur)
            };
            self.put(level + 1, pos >> 1, cur);
        }
    }

    /// Sets many leaves and recomputes the root once.
    ///
    /// If an index occurs more than once the **last** occurrence wins, exactly as if the changes
    /// were applied one by one with [`Self::set`]; the resulting tree is identical to that.
    ///
    /// The work goes level by level: the changed positions of a level are sorted and distinct,
    /// so their parents are found by one linear pass, every touched inner node is hashed exactly
    /// once, and siblings that were themselves changed are taken from the pass instead of the
    /// map. The hashing of each level runs in parallel (rayon); map writes stay sequential as
    /// they cost far less than the Poseidon permutations.
    pub fn update_batch(&mut self, changes: &[(u32, Digest)]) {
        if changes.is_empty() {
            return;
        }
        // Stable sort keeps duplicates in input order; `dedup_by` then folds each run of equal
        // indices into its first slot, overwriting the value so the last occurrence survives.
        let mut cur: Vec<(u32, Digest)> = changes.to_vec();
        cur.sort_by_key(|&(index, _)| index);
        cur.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                kept.1 = later.1;
                true
            } else {
                false
            }
        });
        for &(index, leaf) in &cur {
            self.put(0, index, leaf);
        }

        // Reused across levels: (parent position, left child, right child) and the hashed
        // parents, so a batch allocates two buffers in total rather than per node or per level.
        let mut pairs: Vec<(u32, Digest, Digest)> = Vec::with_capacity(cur.len());
        let mut next: Vec<(u32, Digest)> = Vec::with_capacity(cur.len());
        for level in 0..DEPTH {
            pairs.clear();
            let mut i = 0;
            while i < cur.len() {
                let (pos, value) = cur[i];
                let parent = pos >> 1;
                if pos & 1 == 0 {
                    // Left child; the right one is either the next changed node or unchanged.
                    match cur.get(i + 1) {
                        Some(&(p, right)) if p == pos | 1 => {
                            pairs.push((parent, value, right));
                            i += 2;
                        }
                        _ => {
                            pairs.push((parent, value, self.node(level, pos | 1)));
                            i += 1;
                        }
                    }
                } else {
                    // Right child whose left sibling was not changed (else it was consumed above).
                    pairs.push((parent, self.node(level, pos & !1), value));
                    i += 1;
                }
            }

            pairs
                .par_iter()
                .with_min_len(PAR_MIN_LEN)
                .map(|&(parent, left, right)| (parent, two_to_one(left, right)))
                .collect_into_vec(&mut next);

            for &(parent, value) in &next {
                self.put(level + 1, parent, value);
            }
            std::mem::swap(&mut cur, &mut next);
        }
    }

    /// The authentication path of leaf `index`: its sibling at every level, leaf level first.
    /// Valid for unset indices too (a proof of emptiness: verify it against leaf `ZERO`).
    pub fn proof(&self, index: u32) -> MerkleProof {
        let mut siblings = [Digest::ZERO; DEPTH];
        for (level, sibling) in siblings.iter_mut().enumerate() {
            *sibling = self.node(level, ancestor(index, level) ^ 1);
        }
        MerkleProof { siblings }
    }
}

/// One level up: `node` hashed with its `sibling`, `node` on the right when `right` (its
/// index's bit at that level is 1), on the left otherwise.
pub fn hash_up(node: Digest, sibling: Digest, right: bool) -> Digest {
    if right {
        two_to_one(sibling, node)
    } else {
        two_to_one(node, sibling)
    }
}

/// The root implied by `leaf` at `index` and its `siblings`, leaf level first, for a tree of
/// any depth up to 32 (`siblings.len()`): the account tree's, a payer's stream book's, a tick
/// tree's. Bit `l` of `index` says whether the running node is the right child at level `l`.
pub fn root_of(index: u32, leaf: Digest, siblings: &[Digest]) -> Digest {
    siblings
        .iter()
        .enumerate()
        .fold(leaf, |node, (level, sibling)| {
            hash_up(node, *sibling, ancestor(index, level) & 1 == 1)
        })
}

/// A Merkle authentication path for one leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleProof {
    /// `siblings[l]` is the sibling, at level `l`, of the leaf's ancestor at level `l`;
    /// `siblings[0]` is the leaf-level sibling and `siblings[DEPTH - 1]` a child of the root.
    pub siblings: [Digest; DEPTH],
}

impl MerkleProof {
    /// The root implied by this path for `leaf` at `index`: bit `l` of `index` says whether the
    /// running node is the right (1) or left (0) child at level `l`.
    pub fn compute_root(&self, index: u32, leaf: Digest) -> Digest {
        root_of(index, leaf, &self.siblings)
    }

    /// Whether this path proves that the leaf at `index` is `leaf` in the tree with `root`.
    pub fn verify(&self, root: Digest, index: u32, leaf: Digest) -> bool {
        self.compute_root(index, leaf) == root
    }
}

/// The root of a tree after replacing several of its leaves, computed from one Merkle proof per
/// replaced leaf (all taken against that same tree) instead of the tree itself.
///
/// `replaced` holds `(index, new leaf, proof of index)`. Walking up level by level, two replaced
/// siblings are hashed together, and any other sibling is read from the proof of a replaced leaf
/// below it: its subtree holds no replaced leaf, so the proof's value is still current. This is
/// how a party holding only proofs (a batch's writer checking its own diff, a future circuit)
/// recomputes the root of a multi-leaf update; every shared ancestor is hashed once.
///
/// `None` if `replaced` is empty (no root follows) or names an index twice.
pub fn root_after_replacing(replaced: &[(u32, Digest, &MerkleProof)]) -> Option<Digest> {
    // (position at the current level, node value, which proof covers it)
    let mut cur: Vec<(u32, Digest, usize)> = replaced
        .iter()
        .enumerate()
        .map(|(k, &(index, leaf, _))| (index, leaf, k))
        .collect();
    cur.sort_unstable_by_key(|&(index, _, _)| index);
    if cur.is_empty() || cur.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    let mut pairs: Vec<(u32, Digest, Digest, usize)> = Vec::with_capacity(cur.len());
    let mut next: Vec<(u32, Digest, usize)> = Vec::with_capacity(cur.len());
    for level in 0..DEPTH {
        pairs.clear();
        let mut i = 0;
        while i < cur.len() {
            let (pos, value, k) = cur[i];
            let sibling = replaced[k].2.siblings[level];
            if pos & 1 == 0 {
                match cur.get(i + 1) {
                    Some(&(p, right, _)) if p == pos | 1 => {
                        pairs.push((pos >> 1, value, right, k));
                        i += 2;
                    }
                    _ => {
                        pairs.push((pos >> 1, value, sibling, k));
                        i += 1;
                    }
                }
            } else {
                pairs.push((pos >> 1, sibling, value, k));
                i += 1;
            }
        }
        pairs
            .par_iter()
            .with_min_len(PAR_MIN_LEN)
            .map(|&(parent, left, right, k)| (parent, two_to_one(left, right), k))
            .collect_into_vec(&mut next);
        std::mem::swap(&mut cur, &mut next);
    }
    cur.first().map(|&(_, root, _)| root)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::hash::{hash_no_pad, F};
    use plonky2::field::types::Field;

    /// Empty-subtree hashes recomputed here, independently of `empty_hashes`.
    fn test_empty() -> Vec<Digest> {
        let mut e = vec![Digest::ZERO];
        for l in 0..DEPTH {
            let prev = e[l];
            e.push(two_to_one(prev, prev));
        }
        e
    }

    fn digest(seed: u64) -> Digest {
        hash_no_pad(&[F::from_canonical_u64(seed), F::from_canonical_u64(0xabcd)])
    }

    /// Root of a single non-empty leaf, folded by hand over the independent empty hashes.
    fn single_leaf_root(index: u32, leaf: Digest) -> Digest {
        let e = test_empty();
        let mut cur = leaf;
        for (l, &empty) in e.iter().take(DEPTH).enumerate() {
            let bit = (u64::from(index) >> l) & 1;
            cur = if bit == 0 {
                two_to_one(cur, empty)
            } else {
                two_to_one(empty, cur)
            };
        }
        cur
    }

    /// Naive recursive root of a leaf map: the node at (`level`, `pos`) covers leaf indices
    /// `[pos << level, (pos + 1) << level)`; an empty range is the empty hash.
    fn naive_node(leaves: &BTreeMap<u32, Digest>, e: &[Digest], level: usize, pos: u64) -> Digest {
        let lo = pos << level;
        let hi = (pos + 1) << level; // exclusive, up to 2^32
        let lo32 = lo as u32;
        let any = if hi > u64::from(u32::MAX) {
            leaves.range(lo32..).next().is_some()
        } else {
            leaves.range(lo32..hi as u32).next().is_some()
        };
        if !any {
            return e[level];
        }
        if level == 0 {
            return leaves[&lo32];
        }
        two_to_one(
            naive_node(leaves, e, level - 1, 2 * pos),
            naive_node(leaves, e, level - 1, 2 * pos + 1),
        )
    }

    fn naive_root(leaves: &BTreeMap<u32, Digest>) -> Digest {
        naive_node(leaves, &test_empty(), DEPTH, 0)
    }

    #[test]
    fn empty_root_is_e32() {
        let e = test_empty();
        assert_eq!(empty_hashes().as_slice(), e.as_slice());
        let t = SparseMerkleTree::new();
        assert_eq!(t.root(), e[DEPTH]);
        assert_ne!(t.root(), Digest::ZERO);
        assert_eq!(t.len_nonempty(), 0);
        assert_eq!(SparseMerkleTree::default().root(), e[DEPTH]);
    }

    #[test]
    fn single_leaf_root_matches_hand_fold() {
        for index in [0u32, 1, 2, 5, 1 << 20, 4_000_000_000, u32::MAX] {
            let leaf = digest(u64::from(index) + 7);
            let mut t = SparseMerkleTree::new();
            t.set(index, leaf);
            assert_eq!(t.root(), single_leaf_root(index, leaf), "index {index}");
            let mut b = SparseMerkleTree::new();
            b.update_batch(&[(index, leaf)]);
            assert_eq!(b.root(), t.root(), "index {index}");
            assert_eq!(t.leaf(index), leaf);
            assert_eq!(t.len_nonempty(), 1);
        }
    }

    #[test]
    fn two_sibling_leaves_hash_left_then_right() {
        let e = test_empty();
        let (a, b) = (digest(1), digest(2));
        let mut t = SparseMerkleTree::new();
        t.set(0, a);
        t.set(1, b);
        let mut cur = two_to_one(a, b);
        for &empty in e.iter().take(DEPTH).skip(1) {
            cur = two_to_one(cur, empty);
        }
        assert_eq!(t.root(), cur);
        let mut swapped = SparseMerkleTree::new();
        swapped.update_batch(&[(0, b), (1, a)]);
        assert_ne!(swapped.root(), t.root());
    }

    #[test]
    fn huge_index_is_cheap_and_correct() {
        let mut t = SparseMerkleTree::new();
        t.set(4_000_000_000, digest(9));
        // Near the root the ancestors' positions are small enough for the dense parts; below,
        // one overflow entry per level. Nothing near 4e9 slots is allocated.
        let stored: usize = t
            .levels
            .iter()
            .map(|m| m.dense.len() + m.sparse.len())
            .sum();
        assert!(stored <= 2 * DENSE_SLACK + DEPTH, "{stored} nodes stored");
        assert!(t.levels[0].dense.is_empty() && t.levels[0].sparse.len() == 1);
        assert_eq!(t.leaf(4_000_000_000), digest(9));
        assert_eq!(t.leaf(4_000_000_001), Digest::ZERO);
    }

    #[test]
    fn dense_part_absorbs_overflow_nodes_it_grows_over() {
        // Index 1500 lies beyond the slack of an empty level: it starts in the overflow map,
        // and the sequential writes that follow grow the dense part over it.
        let far = (DENSE_SLACK + 476) as u32;
        let mut t = SparseMerkleTree::new();
        let mut leaves = BTreeMap::new();
        t.set(far, digest(1));
        leaves.insert(far, digest(1));
        assert_eq!(t.levels[0].sparse.len(), 1);
        for i in 0..far + 10 {
            if i % 7 == 3 {
                continue;
            }
            let d = digest(u64::from(i) + 100);
            t.set(i, d);
            leaves.insert(i, d);
        }
        assert!(
            t.levels[0].sparse.is_empty(),
            "the overflow node moved into the dense part"
        );
        assert_eq!(t.leaf(far), leaves[&far]);
        assert_eq!(t.root(), naive_root(&leaves));
        assert_eq!(t.len_nonempty(), leaves.len());
    }

    /// A change list with duplicates (last must win), resets to ZERO, and huge indices.
    fn tricky_changes() -> Vec<(u32, Digest)> {
        let mut v = Vec::new();
        for i in 0..200u32 {
            v.push(((i * 37) % 150, digest(u64::from(i))));
        }
        v.push((3, digest(1000)));
        v.push((3, digest(1001))); // duplicate: this one wins
        v.push((4, digest(1002)));
        v.push((4, Digest::ZERO)); // set then reset in the same batch
        v.push((u32::MAX, digest(1003)));
        v.push((u32::MAX - 1, digest(1004)));
        v.push((1 << 31, digest(1005)));
        v.push((10, Digest::ZERO));
        v.push((u32::MAX, digest(1006)));
        v
    }

    #[test]
    fn batch_equals_sequential_sets() {
        let changes = tricky_changes();
        let mut seq = SparseMerkleTree::new();
        for &(i, d) in &changes {
            seq.set(i, d);
        }
        let mut batch = SparseMerkleTree::new();
        batch.update_batch(&changes);
        assert_eq!(batch.root(), seq.root());
        assert_eq!(batch.len_nonempty(), seq.len_nonempty());
        assert!(batch == seq);
        assert_eq!(batch.leaf(3), digest(1001));
        assert_eq!(batch.leaf(4), Digest::ZERO);
        assert_eq!(batch.leaf(u32::MAX), digest(1006));
        for &(i, _) in &changes {
            assert_eq!(batch.leaf(i), seq.leaf(i));
            assert_eq!(batch.proof(i), seq.proof(i));
        }

        // A second batch on top of a non-empty tree, again against sequential sets.
        let second: Vec<(u32, Digest)> = (0..300u32)
            .map(|i| {
                let d = if i % 3 == 0 {
                    Digest::ZERO
                } else {
                    digest(5000 + u64::from(i))
                };
                ((i * 11) % 160, d)
            })
            .collect();
        for &(i, d) in &second {
            seq.set(i, d);
        }
        batch.update_batch(&second);
        assert_eq!(batch.root(), seq.root());
        assert!(batch == seq);
        for i in 0..160 {
            assert_eq!(batch.proof(i), seq.proof(i));
        }
    }

    #[test]
    fn batch_wide_enough_to_run_in_parallel() {
        // More pairs per level than PAR_MIN_LEN, so the rayon path is exercised.
        let changes: Vec<(u32, Digest)> = (0..2000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) % 5000, digest(u64::from(i))))
            .collect();
        let mut seq = SparseMerkleTree::new();
        for &(i, d) in &changes {
            seq.set(i, d);
        }
        let mut batch = SparseMerkleTree::new();
        batch.update_batch(&changes);
        assert_eq!(batch.root(), seq.root());
        assert!(batch == seq);
    }

    #[test]
    fn resetting_to_zero_restores_the_untouched_tree() {
        let mut t = SparseMerkleTree::new();
        t.update_batch(&[
            (1, digest(1)),
            (2, digest(2)),
            (3, digest(3)),
            (u32::MAX, digest(4)),
        ]);
        t.set(2, Digest::ZERO);
        t.update_batch(&[(u32::MAX, Digest::ZERO)]);
        let mut expected = SparseMerkleTree::new();
        expected.update_batch(&[(1, digest(1)), (3, digest(3))]);
        assert!(t == expected);
        assert_eq!(t.root(), expected.root());
        assert_eq!(t.len_nonempty(), 2);

        t.update_batch(&[(1, Digest::ZERO), (3, Digest::ZERO)]);
        assert!(t == SparseMerkleTree::new());
        assert_eq!(t.root(), test_empty()[DEPTH]);
        assert_eq!(t.len_nonempty(), 0);
        let e = test_empty();
        for (l, level) in t.levels.iter().enumerate() {
            assert!(level.sparse.is_empty(), "level {l} keeps an overflow entry");
            assert!(
                level.dense.iter().all(|d| *d == e[l]),
                "level {l} keeps a node"
            );
        }
    }

    #[test]
    fn empty_batch_is_a_no_op() {
        let mut t = SparseMerkleTree::new();
        t.set(5, digest(5));
        let before = t.clone();
        t.update_batch(&[]);
        assert!(t == before);
    }

    #[test]
    fn proofs_verify_and_reject_tampering() {
        let mut t = SparseMerkleTree::new();
        let changes: Vec<(u32, Digest)> = (0..50u32)
            .map(|i| (i * 3, digest(u64::from(i) + 100)))
            .collect();
        t.update_batch(&changes);
        t.set(u32::MAX, digest(77));
        let root = t.root();

        // Set and unset indices, including neighbours of set ones and the far end.
        for index in [0u32, 3, 147, 1, 2, 148, 1_000_000, u32::MAX, u32::MAX - 1] {
            let leaf = t.leaf(index);
            let proof = t.proof(index);
            assert!(proof.verify(root, index, leaf), "index {index}");
            assert_eq!(proof.compute_root(index, leaf), root);

            // Wrong leaf.
            let wrong = if leaf == Digest::ZERO {
                digest(1)
            } else {
                Digest::ZERO
            };
            assert!(!proof.verify(root, index, wrong));
            // Wrong index: differing in the lowest and in the highest bit. (Swapping the
            // lowest bit cannot be detected when the leaf equals its sibling, e.g. two empty
            // neighbours: the claim "leaf index^1 is ZERO" is then true.)
            if leaf != proof.siblings[0] {
                assert!(!proof.verify(root, index ^ 1, leaf), "index {index}");
            }
            assert!(!proof.verify(root, index ^ (1 << 31), leaf));
            // Tampered sibling at each level.
            for level in 0..DEPTH {
                let mut bad = proof.clone();
                bad.siblings[level] = digest(9999);
                assert!(
                    !bad.verify(root, index, leaf),
                    "index {index} level {level}"
                );
            }
            // Wrong root.
            assert!(!proof.verify(SparseMerkleTree::new().root(), index, leaf));
        }
    }

    #[test]
    fn proof_siblings_are_the_neighbouring_subtrees() {
        let e = test_empty();
        let mut t = SparseMerkleTree::new();
        t.set(0, digest(1));
        t.set(1, digest(2));
        let p = t.proof(2);
        assert_eq!(p.siblings[0], Digest::ZERO); // leaf 3, empty
        assert_eq!(p.siblings[1], two_to_one(digest(1), digest(2))); // node (1, 0)
        for (level, &empty) in e.iter().enumerate().take(DEPTH).skip(2) {
            assert_eq!(p.siblings[level], empty);
        }
    }

    fn index_strategy() -> impl Strategy<Value = u32> {
        prop_oneof![
            6 => 0u32..64,
            1 => Just(u32::MAX),
            1 => Just(u32::MAX - 1),
            1 => Just(1u32 << 31),
            1 => 4_000_000_000u32..=u32::MAX,
        ]
    }

    fn change_strategy() -> impl Strategy<Value = (u32, Digest)> {
        (index_strategy(), prop::option::weighted(0.75, any::<u64>()))
            .prop_map(|(i, seed)| (i, seed.map_or(Digest::ZERO, digest)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn batches_match_naive_reference(
            batches in prop::collection::vec(prop::collection::vec(change_strategy(), 0..40), 1..4),
        ) {
            let mut tree = SparseMerkleTree::new();
            let mut reference: BTreeMap<u32, Digest> = BTreeMap::new();
            for batch in &batches {
                tree.update_batch(batch);
                for &(i, d) in batch {
                    if d == Digest::ZERO {
                        reference.remove(&i);
                    } else {
                        reference.insert(i, d);
                    }
                }
                prop_assert_eq!(tree.root(), naive_root(&reference));
                prop_assert_eq!(tree.len_nonempty(), reference.len());
            }
            for (&i, &d) in &reference {
                prop_assert_eq!(tree.leaf(i), d);
                prop_assert!(tree.proof(i).verify(tree.root(), i, d));
            }
        }

        #[test]
        fn root_from_proofs_equals_the_updated_tree(
            before in prop::collection::vec(change_strategy(), 0..40),
            update in prop::collection::vec(change_strategy(), 1..30),
        ) {
            let mut tree = SparseMerkleTree::new();
            tree.update_batch(&before);
            // Last occurrence wins, as in update_batch.
            let update: BTreeMap<u32, Digest> = update.into_iter().collect();
            let old_leaves: Vec<(u32, Digest)> = update.keys().map(|&i| (i, tree.leaf(i))).collect();
            let proofs: Vec<(u32, Digest, MerkleProof)> =
                update.iter().map(|(&i, &d)| (i, d, tree.proof(i))).collect();
            let replaced: Vec<(u32, Digest, &MerkleProof)> =
                proofs.iter().map(|(i, d, p)| (*i, *d, p)).collect();
            let from_proofs = root_after_replacing(&replaced);
            let old_root = tree.root();
            let changes: Vec<(u32, Digest)> = update.into_iter().collect();
            tree.update_batch(&changes);
            prop_assert_eq!(from_proofs, Some(tree.root()));
            // The other way round: proofs from the updated tree with the old leaves put back
            // give the old root (what a batch writer checks against the previous batch).
            let new_proofs: Vec<MerkleProof> = old_leaves.iter().map(|&(i, _)| tree.proof(i)).collect();
            let restore: Vec<(u32, Digest, &MerkleProof)> = old_leaves
                .iter()
                .zip(&new_proofs)
                .map(|(&(i, d), p)| (i, d, p))
                .collect();
            prop_assert_eq!(root_after_replacing(&restore), Some(old_root));
        }
    }

    #[test]
    fn root_from_proofs_rejects_empty_and_duplicate_input() {
        let t = SparseMerkleTree::new();
        let p = t.proof(5);
        assert_eq!(root_after_replacing(&[]), None);
        assert_eq!(
            root_after_replacing(&[(5, digest(1), &p), (5, digest(2), &p)]),
            None
        );
        assert_eq!(
            root_after_replacing(&[(5, digest(1), &p)]),
            Some(p.compute_root(5, digest(1)))
        );
    }
}
