//! The public inputs shared by leaf and merge proofs, in one fixed layout.
//!
//! A leaf proof covers a contiguous chunk of a batch's transactions; a merge proof covers the
//! union of two adjacent ranges. Both expose the same 39 field elements, in this order:
//!
//! | offset | len | field |
//! |---|---|---|
//! | 0 | 4 | `old_root`: state root before the range |
//! | 4 | 4 | `new_root`: state root after the range |
//! | 8 | 4 | `pubdata_in`: pubdata commitment chain value before the range |
//! | 12 | 4 | `pubdata_out`: ... after the range |
//! | 16 | 4 | `withdrawals_in`: withdrawals commitment chain value before the range |
//! | 20 | 4 | `withdrawals_out`: ... after the range |
//! | 24 | 1 | `deposits_first`: next L1 deposit serial before the range |
//! | 25 | 1 | `deposits_next`: next L1 deposit serial after the range |
//! | 26 | 1 | `timestamp`: the batch timestamp every `valid_until` is checked against |
//! | 27 | 4 | `domain`: `Domain::digest()` the signatures are bound to |
//! | 31 | 4 | `entries_in`: `entries_commitment` (SPEC 13.8) of the priority ops before the range |
//! | 35 | 4 | `entries_out`: ... after the range |
//!
//! A merge of `l` then `r` requires `l.new_root == r.old_root`, `l.pubdata_out == r.pubdata_in`,
//! `l.withdrawals_out == r.withdrawals_in`, `l.deposits_next == r.deposits_first`,
//! `l.entries_out == r.entries_in`, and equal
//! `timestamp` and `domain`; it exposes `l`'s "before" values and `r`'s "after" values.
//! The settlement circuit (SPEC 13.11) additionally requires `pubdata_in == withdrawals_in ==
//! entries_in == ZERO` of the root (a whole batch) and ties the root to the diff, priority and
//! payout proofs.

use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::Target;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use serde::{Deserialize, Serialize};
use state::hash::Digest;

use crate::{D, F};

/// Number of public inputs of a leaf or merge proof.
pub const RANGE_PUBLIC_INPUTS: usize = 39;

/// The statement of a leaf or merge proof (see the module docs for the layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeStatement {
    pub old_root: Digest,
    pub new_root: Digest,
    pub pubdata_in: Digest,
    pub pubdata_out: Digest,
    pub withdrawals_in: Digest,
    pub withdrawals_out: Digest,
    pub deposits_first: u64,
    pub deposits_next: u64,
    pub timestamp: u64,
    pub domain: Digest,
    pub entries_in: Digest,
    pub entries_out: Digest,
}

impl RangeStatement {
    pub fn to_fields(&self) -> Vec<F> {
        let mut v = Vec::with_capacity(RANGE_PUBLIC_INPUTS);
        for d in [
            self.old_root,
            self.new_root,
            self.pubdata_in,
            self.pubdata_out,
            self.withdrawals_in,
            self.withdrawals_out,
        ] {
            v.extend_from_slice(&d.elements());
        }
        v.push(F::from_canonical_u64(self.deposits_first));
        v.push(F::from_canonical_u64(self.deposits_next));
        v.push(F::from_canonical_u64(self.timestamp));
        v.extend_from_slice(&self.domain.elements());
        v.extend_from_slice(&self.entries_in.elements());
        v.extend_from_slice(&self.entries_out.elements());
        v
    }

    /// Parses the public inputs of a leaf or merge proof; `None` if the length is wrong.
    pub fn from_fields(v: &[F]) -> Option<RangeStatement> {
        if v.len() != RANGE_PUBLIC_INPUTS {
            return None;
        }
        let d = |o: usize| Digest([v[o], v[o + 1], v[o + 2], v[o + 3]]);
        Some(RangeStatement {
            old_root: d(0),
            new_root: d(4),
            pubdata_in: d(8),
            pubdata_out: d(12),
            withdrawals_in: d(16),
            withdrawals_out: d(20),
            deposits_first: v[24].to_canonical_u64(),
            deposits_next: v[25].to_canonical_u64(),
            timestamp: v[26].to_canonical_u64(),
            domain: d(27),
            entries_in: d(31),
            entries_out: d(35),
        })
    }
}

/// Targets of a [`RangeStatement`], either registered as public inputs or read from an inner
/// proof's public inputs.
#[derive(Clone, Copy, Debug)]
pub struct RangeStatementTargets {
    pub old_root: HashOutTarget,
    pub new_root: HashOutTarget,
    pub pubdata_in: HashOutTarget,
    pub pubdata_out: HashOutTarget,
    pub withdrawals_in: HashOutTarget,
    pub withdrawals_out: HashOutTarget,
    pub deposits_first: Target,
    pub deposits_next: Target,
    pub timestamp: Target,
    pub domain: HashOutTarget,
    pub entries_in: HashOutTarget,
    pub entries_out: HashOutTarget,
}

impl RangeStatementTargets {
    /// Requires the range to start a batch: its pubdata, withdrawals and priority-entries
    /// chains start at `ZERO` (no transaction of the batch left out at the front).
    pub fn assert_starts_batch(&self, b: &mut CircuitBuilder<F, D>) {
        for t in self
            .pubdata_in
            .elements
            .iter()
            .chain(&self.withdrawals_in.elements)
            .chain(&self.entries_in.elements)
        {
            b.assert_zero(*t);
        }
    }

    /// Views the 39 targets of an inner proof's public inputs.
    pub fn from_targets(t: &[Target]) -> RangeStatementTargets {
        assert_eq!(
            t.len(),
            RANGE_PUBLIC_INPUTS,
            "range statement needs 39 targets"
        );
        let h = |o: usize| HashOutTarget::from_vec(t[o..o + 4].to_vec());
        RangeStatementTargets {
            old_root: h(0),
            new_root: h(4),
            pubdata_in: h(8),
            pubdata_out: h(12),
            withdrawals_in: h(16),
            withdrawals_out: h(20),
            deposits_first: t[24],
            deposits_next: t[25],
            timestamp: t[26],
            domain: h(27),
            entries_in: h(31),
            entries_out: h(35),
        }
    }

    pub fn to_targets(&self) -> Vec<Target> {
        let mut v = Vec::with_capacity(RANGE_PUBLIC_INPUTS);
        for h in [
            self.old_root,
            self.new_root,
            self.pubdata_in,
            self.pubdata_out,
            self.withdrawals_in,
            self.withdrawals_out,
        ] {
            v.extend_from_slice(&h.elements);
        }
        v.push(self.deposits_first);
        v.push(self.deposits_next);
        v.push(self.timestamp);
        v.extend_from_slice(&self.domain.elements);
        v.extend_from_slice(&self.entries_in.elements);
        v.extend_from_slice(&self.entries_out.elements);
        v
    }

    /// Registers these targets as the circuit's public inputs, in the canonical order.
    pub fn register(&self, b: &mut CircuitBuilder<F, D>) {
        b.register_public_inputs(&self.to_targets());
    }
}

/// Eight public inputs below `2^32` as the digest whose big-endian words they are.
pub(crate) fn hash32_of_fields(v: &[F]) -> Option<[u8; 32]> {
    if v.len() != 8 {
        return None;
    }
    let mut out = [0u8; 32];
    for (chunk, x) in out.chunks_mut(4).zip(v) {
        let w = u32::try_from(x.to_canonical_u64()).ok()?;
        chunk.copy_from_slice(&w.to_be_bytes());
    }
    Some(out)
}

/// A public input that is a flag (`None` if it is neither 0 nor 1).
pub(crate) fn bool_of_field(x: F) -> Option<bool> {
    match x.to_canonical_u64() {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}
