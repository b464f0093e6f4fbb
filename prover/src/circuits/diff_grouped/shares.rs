//! The shares records of the grouped diff circuit's shape with shares runs (SPEC 19.6 "Diff";
//! module docs of [`super`]): the carry a group's record keeps across sub-slots, slots and
//! chunks, the slot's declaration of `n` and the digest, and one run of items.
//!
//! Invariants the constraints keep: `left` is the number of items not read yet (the header
//! counts as one) and only decreases; it is 0 outside a group with a shares record (an unused
//! slot has `left = 0`, because a slot with items left before it is a continuation, which is
//! used); a run reads items while `left > 0`, so its active items are a prefix; the run that
//! brings `left` to 0 requires `H(TAG_SHARES, n, chain) = digest`, the digest the group's first
//! slot wrote into the profile.
//!
//! Cost per sub-slot (a run beside the stream record): eleven items of two range splits, one
//! Poseidon permutation, a zero test and four selects each; the digest check; the byte
//! selects against the stream record's bytes and ten more candidate lengths in the appends
//! (`tests::rows_per_slot`).

use super::circuit::connect_if;
use crate::circuits::diff::le_bytes;
use crate::gadgets::agent::{list_digest_step, shares_digest};
use crate::gadgets::smt::{select_hash, zero_digest};
use crate::{D, F};
use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;

use super::{SharesCarry, RUN_ITEMS};

/// A [`SharesCarry`] in the circuit.
#[derive(Clone, Copy)]
pub(super) struct CarryTargets {
    pub left: Target,
    pub n: Target,
    pub chain: HashOutTarget,
    pub digest: HashOutTarget,
}

impl CarryTargets {
    /// Fresh targets for a chunk's carry in (range-checked as a [`SharesCarry`]'s values).
    pub fn new(b: &mut CircuitBuilder<F, D>) -> CarryTargets {
        let c = CarryTargets {
            left: b.add_virtual_target(),
            n: b.add_virtual_target(),
            chain: b.add_virtual_hash(),
            digest: b.add_virtual_hash(),
        };
        b.range_check(c.left, 16);
        b.range_check(c.n, 16);
        c
    }

    /// In [`SharesCarry::to_fields`]'s order.
    pub fn to_vec(self) -> Vec<Target> {
        let mut v = vec![self.left, self.n];
        v.extend(self.chain.elements);
        v.extend(self.digest.elements);
        v
    }

    pub fn set(&self, pw: &mut PartialWitness<F>, c: &SharesCarry) -> anyhow::Result<()> {
        pw.set_target(self.left, F::from_canonical_u16(c.left))?;
        pw.set_target(self.n, F::from_canonical_u16(c.n))?;
        pw.set_hash_target(self.chain, c.chain.into())?;
        pw.set_hash_target(self.digest, c.digest.into())?;
        Ok(())
    }

    /// Items are left to read (`left != 0`).
    pub fn pending(&self, b: &mut CircuitBuilder<F, D>) -> BoolTarget {
        let zero = b.zero();
        let done = b.is_equal(self.left, zero);
        b.not(done)
    }
}

/// A slot's declaration of its group's shares record (read in a group's first slot).
pub(super) struct SharesSlotTargets {
    pub has: BoolTarget,
    pub n: Target,
    pub digest: HashOutTarget,
}

/// What a slot starts from and what its first slot declares.
pub(super) struct SharesSlot {
    pub targets: SharesSlotTargets,
    /// The group's first slot has a shares record (`noncont && has`).
    pub with: BoolTarget,
    /// The carry the slot's sub-slots go on from.
    pub carry: CarryTargets,
}

impl SharesSlot {
    /// The slot's start: a group's first slot (`noncont`) begins its record (`n + 1` items,
    /// `n >= 1`, an empty chain, the declared digest); a continuation
    /// goes on from `before`; an unused slot (neither) leaves it as it is (`left` is 0 there).
    pub fn define(
        b: &mut CircuitBuilder<F, D>,
        noncont: BoolTarget,
        cont: BoolTarget,
        before: &CarryTargets,
    ) -> SharesSlot {
        let zero = b.zero();
        let one = b.one();
        let targets = SharesSlotTargets {
            has: b.add_virtual_bool_target_safe(),
            n: b.add_virtual_target(),
            digest: b.add_virtual_hash(),
        };
        b.range_check(targets.n, 16);
        let with = b.and(noncont, targets.has);
        // A record of no entry would leave its digest unchecked (no run would finish it).
        let empty = b.is_equal(targets.n, zero);
        let bad = b.mul(with.target, empty.target);
        b.assert_zero(bad);
        let items = b.add(targets.n, one);
        let fresh = b.mul(with.target, items);
        let left = b.mul_add(cont.target, before.left, fresh);
        let n = b.select(noncont, targets.n, before.n);
        let digest = select_hash(b, noncont, targets.digest, before.digest);
        let empty_chain = zero_digest(b);
        let chain = select_hash(b, noncont, empty_chain, before.chain);
        SharesSlot {
            targets,
            with,
            carry: CarryTargets {
                left,
                n,
                chain,
                digest,
            },
        }
    }
}

/// One item's witness targets: `payee ‖ bps`, or the header's `account ‖ n`.
pub(super) struct ItemTargets {
    pub first: Target,
    pub second: Target,
}

/// A sub-slot's run: its items, whether it is one, its bytes and the candidate lengths of
/// its appends.
pub(super) struct Run {
    pub items: Vec<ItemTargets>,
    /// The sub-slot reads items (`left != 0` before it).
    pub is_run: BoolTarget,
    /// The items' bytes, six each (66).
    pub bytes: Vec<Target>,
    /// `(6 m, flag)` for the runs of `m < 11` items (the first append's candidates).
    pub short: Vec<(usize, BoolTarget)>,
    /// A run of eleven items (64 bytes in the first append, 2 in the second).
    pub full: BoolTarget,
}

impl Run {
    /// Reads up to [`RUN_ITEMS`] items from `carry` (updated) if `free` (no payee run in the
    /// sub-slot: an allow-list comes first). The record's first item (`left = n + 1`) is its
    /// header `(index, n)`, not folded; `index` is the group's.
    pub fn define(
        b: &mut CircuitBuilder<F, D>,
        carry: &mut CarryTargets,
        index: Target,
        free: BoolTarget,
    ) -> Run {
        let one = b.one();
        let pending = carry.pending(b);
        let is_run = b.and(pending, free);
        let mut items = Vec::with_capacity(RUN_ITEMS);
        let mut bytes = Vec::with_capacity(6 * RUN_ITEMS);
        let mut active = Vec::with_capacity(RUN_ITEMS);
        for e in 0..RUN_ITEMS {
            let item = ItemTargets {
                first: b.add_virtual_target(),
                second: b.add_virtual_target(),
            };
            let first_bits = b.split_le(item.first, 32);
            let second_bits = b.split_le(item.second, 16);
            bytes.extend(le_bytes(b, &first_bits));
            bytes.extend(le_bytes(b, &second_bits));
            let on = match e {
                0 => is_run,
                _ => {
                    let pending = carry.pending(b);
                    b.and(pending, free)
                }
            };
            active.push(on);
            // The header (the record's first item): the account and the count, not folded.
            let all = b.add(carry.n, one);
            let first = b.is_equal(carry.left, all);
            let header = b.and(on, first);
            connect_if(
                b,
                header.target,
                &[item.first, item.second],
                &[index, carry.n],
            );
            let fold = BoolTarget::new_unsafe(b.sub(on.target, header.target));
            let step = list_digest_step(b, carry.chain, item.first, item.second);
            carry.chain = select_hash(b, fold, step, carry.chain);
            carry.left = b.sub(carry.left, on.target);
            items.push(item);
        }
        // The run that reads the last item checks the digest the profile holds.
        let zero = b.zero();
        let done = b.is_equal(carry.left, zero);
        let finish = b.and(is_run, done);
        let digest = shares_digest(b, carry.n, carry.chain);
        connect_if(b, finish.target, &carry.digest.elements, &digest.elements);
        // Active items are a prefix: exactly m of them when item m - 1 is and item m is not.
        let short = (1..RUN_ITEMS)
            .map(|m| {
                let f = b.sub(active[m - 1].target, active[m].target);
                (6 * m, BoolTarget::new_unsafe(f))
            })
            .collect();
        Run {
            items,
            is_run,
            bytes,
            short,
            full: active[RUN_ITEMS - 1],
        }
    }
}
