//! A policy's allow-list root (SPEC 20.2) rebuilt in-circuit from the list itself, sixteen
//! payees at a time: the piece a grouped diff chunk needs to prove the body of a passport
//! record that carries its policy (SPEC 20.9, "Diff circuit"; not wired into it yet).
//!
//! The native root is a complete tree of depth 10 over the leaves `(payee_i, 1, 0, 0)` for
//! `i < n` and `ZERO` after, `ZERO` itself for the empty list (`state::passport::AllowList`).
//! Here the list comes in **runs** of [`RUN_PAYEES`] leaves (a prefix of each run active, ZERO
//! after): a run hashes its leaves into the root of a depth-4 subtree ([`run_root`], 15
//! hashes), and the **frontier** ([`Frontier`]) folds the runs' roots in order into the six
//! levels above, keeping the pending left node of each level (an incremental Merkle tree: a
//! run at position `r` merges with the pending nodes of the levels where `r` has a 1 bit and
//! stops at the first 0 bit, where it waits). [`Frontier::root`] closes the tree with the
//! empty subtrees of the levels still open. Every step has a fixed shape (six hashes, selected),
//! so a run costs the same wherever it falls, and the frontier is small enough (a count and
//! seven digests) to cross slots and chunks as a carry.
//!
//! Cost: 15 + 6 permutations and about 60 selects per run; 6 permutations to close (each level
//! one hash, its sibling selected and swapped in). A list of 1,024 payees is 64 runs.

use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::hash::{two_to_one, Digest};
use state::passport::{ALLOW_DEPTH, MAX_ALLOWED};

use super::smt::{constant_digest, hash_level, select_hash, zero_digest};
use crate::{D, F};

/// Payees per run: the leaves of one subtree.
pub const RUN_PAYEES: usize = 16;
/// The depth of a run's subtree.
pub const RUN_DEPTH: usize = 4;
/// The levels above a run's subtree.
pub const FRONTIER_LEVELS: usize = ALLOW_DEPTH - RUN_DEPTH;
/// Runs in a full list.
pub const MAX_RUNS: usize = MAX_ALLOWED / RUN_PAYEES;

/// `E[h]`: the root of an empty subtree of height `h` (ZERO leaves), `0 <= h <= 10`.
pub fn empty_subtrees() -> [Digest; ALLOW_DEPTH + 1] {
    let mut e = [Digest::ZERO; ALLOW_DEPTH + 1];
    for h in 1..=ALLOW_DEPTH {
        e[h] = two_to_one(e[h - 1], e[h - 1]);
    }
    e
}

/// `two_to_one(l, r)`: one permutation.
fn h2(b: &mut CircuitBuilder<F, D>, l: HashOutTarget, r: HashOutTarget) -> HashOutTarget {
    let unswapped = b._false();
    hash_level(b, l, r, unswapped)
}

/// The root of one run's subtree: leaf `i` is `(payees[i], 1, 0, 0)` where `active[i]`, else
/// ZERO (its payee is then not read). 15 permutations.
pub fn run_root(
    b: &mut CircuitBuilder<F, D>,
    payees: &[Target; RUN_PAYEES],
    active: &[BoolTarget; RUN_PAYEES],
) -> HashOutTarget {
    let zero = b.zero();
    let mut level: Vec<HashOutTarget> = payees
        .iter()
        .zip(active)
        .map(|(&p, a)| HashOutTarget {
            elements: [b.mul(p, a.target), a.target, zero, zero],
        })
        .collect();
    while level.len() > 1 {
        level = level.chunks(2).map(|c| h2(b, c[0], c[1])).collect();
    }
    level[0]
}

/// The allow tree in progress: the runs folded so far, the pending left node of each level
/// above a run, and the root once all [`MAX_RUNS`] are in.
#[derive(Clone, Copy, Debug)]
pub struct Frontier {
    pub runs: Target,
    pub left: [HashOutTarget; FRONTIER_LEVELS],
    pub full: HashOutTarget,
}

impl Frontier {
    /// No run yet (every part zero).
    pub fn empty(b: &mut CircuitBuilder<F, D>) -> Frontier {
        let zero = zero_digest(b);
        Frontier {
            runs: b.zero(),
            left: [zero; FRONTIER_LEVELS],
            full: zero,
        }
    }

    /// The bits of `runs` (seven: 0 to 64). Range-checks it.
    fn run_bits(&self, b: &mut CircuitBuilder<F, D>) -> Vec<BoolTarget> {
        b.split_le(self.runs, FRONTIER_LEVELS + 1)
    }

    /// Folds the next run's subtree root in, if `enabled`: it merges with the pending nodes of
    /// the levels where the run's position has a 1 bit and waits at the first 0 bit. Six
    /// permutations, whatever the position. A 65th run has no proof.
    pub fn fold(
        &self,
        b: &mut CircuitBuilder<F, D>,
        run: HashOutTarget,
        enabled: BoolTarget,
    ) -> Frontier {
        let bits = self.run_bits(b);
        let mut node = run;
        let mut carry = enabled;
        let mut left = self.left;
        for (l, pending) in left.iter_mut().enumerate() {
            let merged = h2(b, *pending, node);
            let merge = b.and(carry, bits[l]);
            let not_bit = b.not(bits[l]);
            let store = b.and(carry, not_bit);
            *pending = select_hash(b, store, node, *pending);
            node = select_hash(b, merge, merged, node);
            carry = merge;
        }
        // Still carrying above the top level: this was the 64th run, `node` the root.
        let full = select_hash(b, carry, node, self.full);
        // No run after the 64th (its position's bit 6 is set only at 64).
        let past = b.mul(enabled.target, bits[FRONTIER_LEVELS].target);
        b.assert_zero(past);
        let runs = b.add(self.runs, enabled.target);
        Frontier { runs, left, full }
    }

    /// The root of the list folded so far, padded with empty runs: ZERO if `empty_list` (the
    /// list names no payee). Six permutations.
    pub fn root(&self, b: &mut CircuitBuilder<F, D>, empty_list: BoolTarget) -> HashOutTarget {
        let bits = self.run_bits(b);
        let e = empty_subtrees();
        let mut acc = constant_digest(b, e[RUN_DEPTH]);
        for (l, &pending) in self.left.iter().enumerate() {
            // A 1 bit: the pending node on the left; a 0 bit: an empty subtree on the right.
            let empty = constant_digest(b, e[RUN_DEPTH + l]);
            let sibling = select_hash(b, bits[l], pending, empty);
            acc = hash_level(b, acc, sibling, bits[l]);
        }
        // 64 runs: no level open, the fold's root.
        let root = select_hash(b, bits[FRONTIER_LEVELS], self.full, acc);
        let zero = zero_digest(b);
        select_hash(b, empty_list, zero, root)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use plonky2::field::types::Field;
    use plonky2::iop::witness::{PartialWitness, WitnessWrite};
    use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
    use state::account::AccountIndex;
    use state::passport::AllowList;

    use super::*;
    use crate::C;

    /// A circuit of every run of a full list: payees, a prefix of `n` active, the root public.
    struct Whole {
        data: CircuitData<F, C, D>,
        payees: Vec<Target>,
        active: Vec<BoolTarget>,
        empty: BoolTarget,
        root: HashOutTarget,
    }

    fn whole() -> &'static Whole {
        static W: OnceLock<Whole> = OnceLock::new();
        W.get_or_init(|| {
            let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
            let payees: Vec<Target> = (0..MAX_ALLOWED).map(|_| b.add_virtual_target()).collect();
            let active: Vec<BoolTarget> = (0..MAX_ALLOWED)
                .map(|_| b.add_virtual_bool_target_safe())
                .collect();
            let mut f = Frontier::empty(&mut b);
            for r in 0..MAX_RUNS {
                let span = r * RUN_PAYEES..(r + 1) * RUN_PAYEES;
                let p: [Target; RUN_PAYEES] = payees[span.clone()].try_into().unwrap();
                let a: [BoolTarget; RUN_PAYEES] = active[span].try_into().unwrap();
                let sub = run_root(&mut b, &p, &a);
                f = f.fold(&mut b, sub, a[0]);
            }
            let empty = b.add_virtual_bool_target_safe();
            let root = f.root(&mut b, empty);
            b.register_public_inputs(&root.elements);
            let data = b.build::<C>();
            println!(
                "allow root of 1,024 payees in runs of 16: degree {} (64 runs and the root)",
                data.common.degree()
            );
            Whole {
                data,
                payees,
                active,
                empty,
                root,
            }
        })
    }

    /// Proves the list `payees` (all inactive past it) with `claimed` as its root.
    fn prove(payees: &[u32], claimed: Digest) -> anyhow::Result<()> {
        let w = whole();
        let mut pw = PartialWitness::new();
        for (i, (&t, &a)) in w.payees.iter().zip(&w.active).enumerate() {
            let p = payees.get(i).copied();
            pw.set_target(t, F::from_canonical_u32(p.unwrap_or(0)))?;
            pw.set_bool_target(a, p.is_some())?;
        }
        pw.set_bool_target(w.empty, payees.is_empty())?;
        pw.set_hash_target(w.root, claimed.into())?;
        let proof = w.data.prove(pw)?;
        w.data.verify(proof)
    }

    fn native(payees: &[u32]) -> Digest {
        AllowList::new(payees.iter().map(|&p| AccountIndex(p)).collect())
            .unwrap()
            .root()
    }

    #[test]
    fn the_runs_rebuild_the_native_root_for_every_shape_of_list() {
        // Empty, one payee, a run exactly, one past it, an odd count of runs, all but one, full.
        for n in [0, 1, 16, 17, 100, 1023, 1024] {
            let payees: Vec<u32> = (0..n).map(|i| 3 * i + 5).collect();
            prove(&payees, native(&payees)).unwrap_or_else(|e| panic!("n = {n}: {e}"));
        }
    }

    #[test]
    fn a_root_other_than_the_lists_has_no_proof() {
        let payees: Vec<u32> = (0..40).map(|i| 2 * i + 1).collect();
        // Another list's root, the same list shifted by one payee, and ZERO (the empty list's).
        let mut other = payees.clone();
        other[39] += 1;
        for (what, root) in [
            ("another list's", native(&other)),
            ("one payee fewer", native(&payees[..39])),
            ("the empty list's", Digest::ZERO),
        ] {
            assert!(prove(&payees, root).is_err(), "{what} root proved");
        }
        // ZERO for a non-empty list claimed empty is refused too (the flag is the caller's
        // to bind to the count; here it is the claim that must match).
        assert!(prove(&payees[..0], native(&payees)).is_err());
    }
}
