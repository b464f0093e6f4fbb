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
    pub streamed: BoolTarget,
}

impl CarryTargets {
    /// Fresh targets for a chunk's carry in (range-checked as a [`SharesCarry`]'s values).
    pub fn new(b: &mut CircuitBuilder<F, D>) -> CarryTargets {
        let c = CarryTargets {
            left: b.add_virtual_target(),
            n: b.add_virtual_target(),
            chain: b.add_virtual_hash(),
            digest: b.add_virtual_hash(),
            streamed: b.add_virtual_bool_target_safe(),
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
        v.push(self.streamed.target);
        v
    }

    pub fn set(&self, pw: &mut PartialWitness<F>, c: &SharesCarry) -> anyhow::Result<()> {
        pw.set_target(self.left, F::from_canonical_u16(c.left))?;
        pw.set_target(self.n, F::from_canonical_u16(c.n))?;
        pw.set_hash_target(self.chain, c.chain.into())?;
        pw.set_hash_target(self.digest, c.digest.into())?;
        pw.set_bool_target(self.streamed, c.streamed)?;
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
    /// `n >= 1`, an empty chain, the declared digest, no stream record read); a continuation
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
        // streamed = before.streamed unless a group starts here.
        let kept = b.arithmetic(
            F::NEG_ONE,
            F::ONE,
            noncont.target,
            before.streamed.target,
            before.streamed.target,
        );
        SharesSlot {
            targets,
            with,
            carry: CarryTargets {
                left,
                n,
                chain,
                digest,
                streamed: BoolTarget::new_unsafe(kept),
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
    /// Reads up to [`RUN_ITEMS`] items from `carry` (updated); `header` is the slot's
    /// declaration when this is the slot's first sub-slot (its first item is then the header
    /// of a group that starts with a shares record: `(index, n)`, not folded).
    pub fn define(
        b: &mut CircuitBuilder<F, D>,
        carry: &mut CarryTargets,
        header: Option<(&SharesSlot, Target)>,
    ) -> Run {
        let is_run = carry.pending(b);
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
            let on = if e == 0 { is_run } else { carry.pending(b) };
            active.push(on);
            // The header (a group's first item): the account and the count, not folded. A group
            // with a record starts with `n + 1 >= 2` items left, so `with` implies `on`.
            let fold = match (e, header) {
                (0, Some((slot, index))) => {
                    connect_if(
                        b,
                        slot.with.target,
                        &[item.first, item.second],
                        &[index, slot.targets.n],
                    );
                    BoolTarget::new_unsafe(b.sub(on.target, slot.with.target))
                }
                _ => on,
            };
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
