//! The depth-32 Poseidon state tree in-circuit, exactly as `state::smt`: a node is
//! `two_to_one(left, right)`, bit `l` of the leaf index (bit 0 = leaf level) says whether the
//! running node is the right child at level `l`, and the root is the node at level 32.
//!
//! One Poseidon gate row per level: the state `[cur, sibling, 0, 0, 0, 0]` goes through the
//! gate's swap wire (`AlgebraicHasher::permute_swapped`), which exchanges the two halves when
//! the index bit is 1.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::{HashOut, HashOutTarget};
use plonky2::hash::hashing::PlonkyPermutation;
use plonky2::hash::poseidon::{PoseidonHash, PoseidonPermutation};
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::config::AlgebraicHasher;
use state::hash::Digest;
use state::smt::DEPTH;

use crate::{D, F};

/// The 32 siblings of an authentication path, leaf level first.
#[derive(Clone, Debug)]
pub struct MerklePathTarget {
    pub siblings: Vec<HashOutTarget>,
}

impl MerklePathTarget {
    pub fn new(b: &mut CircuitBuilder<F, D>) -> Self {
        MerklePathTarget {
            siblings: (0..DEPTH).map(|_| b.add_virtual_hash()).collect(),
        }
    }

    pub fn set(&self, pw: &mut PartialWitness<F>, siblings: &[Digest]) -> anyhow::Result<()> {
        anyhow::ensure!(siblings.len() == DEPTH, "a path has {DEPTH} siblings");
        for (t, s) in self.siblings.iter().zip(siblings) {
            pw.set_hash_target(*t, HashOut::from(*s))?;
        }
        Ok(())
    }
}

/// `two_to_one(cur, sibling)` if `bit` is 0, `two_to_one(sibling, cur)` if 1 (one row).
pub fn hash_level(
    b: &mut CircuitBuilder<F, D>,
    cur: HashOutTarget,
    sibling: HashOutTarget,
    bit: BoolTarget,
) -> HashOutTarget {
    let zero = b.zero();
    let mut state = [zero; 12];
    state[..4].copy_from_slice(&cur.elements);
    state[4..8].copy_from_slice(&sibling.elements);
    let out = <PoseidonHash as AlgebraicHasher<F>>::permute_swapped(
        PoseidonPermutation::new(state),
        bit,
        b,
    );
    HashOutTarget::from_vec(out.squeeze()[..4].to_vec())
}

/// The root implied by `leaf` at the index with little-endian `bits` (32 rows).
pub fn compute_root(
    b: &mut CircuitBuilder<F, D>,
    leaf: HashOutTarget,
    bits: &[BoolTarget],
    path: &MerklePathTarget,
) -> HashOutTarget {
    assert_eq!(bits.len(), DEPTH);
    let mut cur = leaf;
    for (bit, sib) in bits.iter().zip(&path.siblings) {
        cur = hash_level(b, cur, *sib, *bit);
    }
    cur
}

/// Constrains that `leaf` is at the index with `bits` under `root` (32 rows).
pub fn verify_membership(
    b: &mut CircuitBuilder<F, D>,
    root: HashOutTarget,
    leaf: HashOutTarget,
    bits: &[BoolTarget],
    path: &MerklePathTarget,
) {
    let r = compute_root(b, leaf, bits, path);
    b.connect_hashes(r, root);
}

/// The roots before and after replacing `old_leaf` by `new_leaf` at one index with the same
/// siblings (64 rows).
pub fn update_roots(
    b: &mut CircuitBuilder<F, D>,
    old_leaf: HashOutTarget,
    new_leaf: HashOutTarget,
    bits: &[BoolTarget],
    path: &MerklePathTarget,
) -> (HashOutTarget, HashOutTarget) {
    let old_root = compute_root(b, old_leaf, bits, path);
    let new_root = compute_root(b, new_leaf, bits, path);
    (old_root, new_root)
}

/// Replaces `old_leaf` by `new_leaf` at one index with the same siblings (64 rows): constrains
/// `old_leaf` under `old_root` and returns the root after the write.
pub fn update(
    b: &mut CircuitBuilder<F, D>,
    old_root: HashOutTarget,
    old_leaf: HashOutTarget,
    new_leaf: HashOutTarget,
    bits: &[BoolTarget],
    path: &MerklePathTarget,
) -> HashOutTarget {
    let (computed_old, new_root) = update_roots(b, old_leaf, new_leaf, bits, path);
    b.connect_hashes(computed_old, old_root);
    new_root
}

/// The leaf of an account: `hash_no_pad` of its 12 field elements (2 rows).
pub fn leaf_hash(b: &mut CircuitBuilder<F, D>, fields: &[Target; 12]) -> HashOutTarget {
    b.hash_n_to_hash_no_pad::<PoseidonHash>(fields.to_vec())
}

/// `h` if `keep`, else the zero digest (the empty leaf).
pub fn hash_or_zero(
    b: &mut CircuitBuilder<F, D>,
    keep: BoolTarget,
    h: HashOutTarget,
) -> HashOutTarget {
    HashOutTarget::from_vec(h.elements.iter().map(|&e| b.mul(keep.target, e)).collect())
}

/// `x` if `c`, else `y`, per element.
pub fn select_hash(
    b: &mut CircuitBuilder<F, D>,
    c: BoolTarget,
    x: HashOutTarget,
    y: HashOutTarget,
) -> HashOutTarget {
    HashOutTarget::from_vec(
        (0..4)
            .map(|i| b.select(c, x.elements[i], y.elements[i]))
            .collect(),
    )
}

/// Constant digest target.
pub fn constant_digest(b: &mut CircuitBuilder<F, D>, d: Digest) -> HashOutTarget {
    b.constant_hash(HashOut { elements: d.0 })
}

/// Zero digest target.
pub fn zero_digest(b: &mut CircuitBuilder<F, D>) -> HashOutTarget {
    constant_digest(b, Digest([F::ZERO; 4]))
}

/// Whether `h` is the zero digest (an empty leaf, an unset profile part): every element 0.
/// Sound both ways (four equality tests).
pub fn is_zero_digest(b: &mut CircuitBuilder<F, D>, h: HashOutTarget) -> BoolTarget {
    let zero = b.zero();
    let mut all = b._true();
    for e in h.elements {
        let z = b.is_equal(e, zero);
        all = b.and(all, z);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use plonky2::plonk::circuit_data::CircuitConfig;
    use state::hash::hash_no_pad;
    use state::smt::SparseMerkleTree;

    use crate::C;

    fn digest(v: u64) -> Digest {
        hash_no_pad(&[F::from_canonical_u64(v)])
    }

    /// One circuit: update at a witnessed index; returns whether (old_root, new_root) verify.
    fn prove_update(
        index: u32,
        old: Digest,
        new: Digest,
        sibs: &[Digest],
        old_root: Digest,
        new_root: Digest,
    ) -> bool {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let idx = b.add_virtual_target();
        let bits = b.split_le(idx, DEPTH);
        let path = MerklePathTarget::new(&mut b);
        let ol = b.add_virtual_hash();
        let nl = b.add_virtual_hash();
        let or = b.add_virtual_hash();
        let nr = update(&mut b, or, ol, nl, &bits, &path);
        b.register_public_inputs(&nr.elements);
        let data = b.build::<C>();
        let mut pw = PartialWitness::new();
        pw.set_target(idx, F::from_canonical_u32(index)).unwrap();
        path.set(&mut pw, sibs).unwrap();
        pw.set_hash_target(ol, old.into()).unwrap();
        pw.set_hash_target(nl, new.into()).unwrap();
        pw.set_hash_target(or, old_root.into()).unwrap();
        match data.prove(pw) {
            Ok(p) => p.public_inputs == new_root.0.to_vec() && data.verify(p).is_ok(),
            Err(_) => false,
        }
    }

    #[test]
    fn update_matches_native_tree() {
        let mut t = SparseMerkleTree::new();
        for i in [0u32, 1, 2, 5, 4_000_000_000] {
            t.set(i, digest(i as u64 + 1));
        }
        let index = 5u32;
        let r0 = t.root();
        let proof = t.proof(index);
        let old = t.leaf(index);
        let new = digest(99);
        t.set(index, new);
        let r1 = t.root();
        assert!(prove_update(index, old, new, &proof.siblings, r0, r1));
        // Wrong old leaf, wrong index, wrong root.
        assert!(!prove_update(
            index,
            digest(7),
            new,
            &proof.siblings,
            r0,
            r1
        ));
        assert!(!prove_update(4, old, new, &proof.siblings, r0, r1));
        assert!(!prove_update(index, old, new, &proof.siblings, r1, r1));
        // A high index (bit 31 set) and an empty leaf.
        let mut t = SparseMerkleTree::new();
        t.set(1, digest(1));
        let index = u32::MAX;
        let r0 = t.root();
        let proof = t.proof(index);
        t.set(index, new);
        assert!(prove_update(
            index,
            Digest::ZERO,
            new,
            &proof.siblings,
            r0,
            t.root()
        ));
    }
}
