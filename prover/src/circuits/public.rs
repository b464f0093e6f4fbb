//! The public inputs shared by leaf and merge proofs, in one fixed layout.
//!
//! A leaf proof covers a contiguous chunk of a batch's transactions; a merge proof covers the
//! union of two adjacent ranges. Both expose the same 55 field elements, in this order:
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
//! | 39 | 4 | `splits_in`: the split-record accumulator (SPEC 13.1) before the range |
//! | 43 | 4 | `splits_out`: ... after the range |
//! | 47 | 4 | `walks_in`: the walk-record accumulator (SPEC 18.7) before the range |
//! | 51 | 4 | `walks_out`: ... after the range |
//!
//! A merge of `l` then `r` requires every chain to continue (`l`'s "after" value is `r`'s
//! "before" value: the root, the pubdata, withdrawals and entries chains, both accumulators and
//! the deposit counter) and equal `timestamp` and `domain` ([`Range::links`]); it exposes `l`'s
//! "before" values and `r`'s "after" values ([`Range::merged`]).
//! The settlement circuit (SPEC 13.11) additionally requires every chain of the root (a whole
//! batch) to start at `ZERO` ([`Range::batch_starts`]), ties the root to the diff, priority and
//! payout proofs, and ties each accumulator's end to its side tree: `splits_out` to the
//! split-credit chain's fold (or `ZERO` for a batch without splits); `walks_out` must be `ZERO`
//! until the settlement verifies the tick-walk tree.
//!
//! **Side accumulators.** A leaf slot has a fixed shape, so the part of a transaction whose
//! cost grows with it (a split's payees, a stream settlement's tick walk) is proven by a side
//! circuit and handed over as a record folded into an accumulator, the way `entries` hands the
//! priority ops to the priority circuit: the leaf folds the records it relies on, the side tree
//! folds the records it proves, and the settlement requires the two to be equal. Leaves that
//! hand nothing over pass both accumulators through unchanged.
//!
//! The layout is one generic struct, [`Range`], for the statement's values
//! ([`RangeStatement`]) and for its targets in a circuit ([`RangeStatementTargets`]), so that
//! the order, the links a merge checks and the merged statement are written once for both.

use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::Target;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use serde::{Deserialize, Serialize};
use state::hash::Digest;

use crate::{D, F};

/// Number of public inputs of a leaf or merge proof.
pub const RANGE_PUBLIC_INPUTS: usize = 55;

/// The statement of a leaf or merge proof (see the module docs for the layout), over digests
/// `H` and numbers `S`: values ([`RangeStatement`]) or a circuit's targets
/// ([`RangeStatementTargets`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range<H, S> {
    pub old_root: H,
    pub new_root: H,
    pub pubdata_in: H,
    pub pubdata_out: H,
    pub withdrawals_in: H,
    pub withdrawals_out: H,
    pub deposits_first: S,
    pub deposits_next: S,
    pub timestamp: S,
    pub domain: H,
    pub entries_in: H,
    pub entries_out: H,
    // The side accumulators came after the statements some stored leaf jobs hold; such a
    // job's range handed nothing over, which is `ZERO` to `ZERO`.
    #[serde(default)]
    pub splits_in: H,
    #[serde(default)]
    pub splits_out: H,
    #[serde(default)]
    pub walks_in: H,
    #[serde(default)]
    pub walks_out: H,
}

/// The values of a range statement.
pub type RangeStatement = Range<Digest, u64>;

/// The targets of a range statement, registered as public inputs or read from an inner proof's.
pub type RangeStatementTargets = Range<HashOutTarget, Target>;

/// One pair a merge requires equal, with its name.
pub type Link<T> = (&'static str, T, T);

impl<H: Copy, S: Copy> Range<H, S> {
    /// What a merge of `self` then `next` requires equal, by name: the digests (every chain's
    /// end against the next range's start, and the domain) and the numbers (the deposit
    /// counter, and the timestamp).
    pub fn links(&self, next: &Self) -> ([Link<H>; 7], [Link<S>; 2]) {
        (
            [
                ("state root", self.new_root, next.old_root),
                ("pubdata chain", self.pubdata_out, next.pubdata_in),
                (
                    "withdrawals chain",
                    self.withdrawals_out,
                    next.withdrawals_in,
                ),
                ("priority entries chain", self.entries_out, next.entries_in),
                ("split records", self.splits_out, next.splits_in),
                ("walk records", self.walks_out, next.walks_in),
                ("domain", self.domain, next.domain),
            ],
            [
                ("deposits counter", self.deposits_next, next.deposits_first),
                ("timestamp", self.timestamp, next.timestamp),
            ],
        )
    }

    /// The statement of `self` then `next`: `self`'s "before" values, `next`'s "after" values.
    pub fn merged(&self, next: &Self) -> Self {
        Range {
            old_root: self.old_root,
            new_root: next.new_root,
            pubdata_in: self.pubdata_in,
            pubdata_out: next.pubdata_out,
            withdrawals_in: self.withdrawals_in,
            withdrawals_out: next.withdrawals_out,
            deposits_first: self.deposits_first,
            deposits_next: next.deposits_next,
            timestamp: self.timestamp,
            domain: self.domain,
            entries_in: self.entries_in,
            entries_out: next.entries_out,
            splits_in: self.splits_in,
            splits_out: next.splits_out,
            walks_in: self.walks_in,
            walks_out: next.walks_out,
        }
    }

    /// A range of no transaction after `self`: every "before" value is `self`'s "after" value,
    /// and the "after" values are the same (how the planner pads a batch to a power of two).
    pub fn empty_after(&self) -> Self {
        Range {
            old_root: self.new_root,
            pubdata_in: self.pubdata_out,
            withdrawals_in: self.withdrawals_out,
            deposits_first: self.deposits_next,
            entries_in: self.entries_out,
            splits_in: self.splits_out,
            walks_in: self.walks_out,
            ..*self
        }
    }

    /// The chains a whole batch starts at `ZERO`, by name (a range that starts anywhere else
    /// left a transaction out at the front).
    pub fn batch_starts(&self) -> [(&'static str, H); 5] {
        [
            ("pubdata", self.pubdata_in),
            ("withdrawals", self.withdrawals_in),
            ("entries", self.entries_in),
            ("split records", self.splits_in),
            ("walk records", self.walks_in),
        ]
    }

    /// The statement as a flat list in the layout of the module docs, each digest as its four
    /// elements and each number as one.
    fn flatten<E>(&self, digest: impl Fn(H) -> [E; 4], number: impl Fn(S) -> E) -> Vec<E> {
        let mut v = Vec::with_capacity(RANGE_PUBLIC_INPUTS);
        for h in [
            self.old_root,
            self.new_root,
            self.pubdata_in,
            self.pubdata_out,
            self.withdrawals_in,
            self.withdrawals_out,
        ] {
            v.extend(digest(h));
        }
        for s in [self.deposits_first, self.deposits_next, self.timestamp] {
            v.push(number(s));
        }
        for h in [
            self.domain,
            self.entries_in,
            self.entries_out,
            self.splits_in,
            self.splits_out,
            self.walks_in,
            self.walks_out,
        ] {
            v.extend(digest(h));
        }
        v
    }

    /// The inverse of [`Self::flatten`]; `None` if `v` is not [`RANGE_PUBLIC_INPUTS`] long.
    fn unflatten<E: Copy>(
        v: &[E],
        digest: impl Fn([E; 4]) -> H,
        number: impl Fn(E) -> S,
    ) -> Option<Self> {
        if v.len() != RANGE_PUBLIC_INPUTS {
            return None;
        }
        let d = |o: usize| digest([v[o], v[o + 1], v[o + 2], v[o + 3]]);
        Some(Range {
            old_root: d(0),
            new_root: d(4),
            pubdata_in: d(8),
            pubdata_out: d(12),
            withdrawals_in: d(16),
            withdrawals_out: d(20),
            deposits_first: number(v[24]),
            deposits_next: number(v[25]),
            timestamp: number(v[26]),
            domain: d(27),
            entries_in: d(31),
            entries_out: d(35),
            splits_in: d(39),
            splits_out: d(43),
            walks_in: d(47),
            walks_out: d(51),
        })
    }
}

impl RangeStatement {
    pub fn to_fields(&self) -> Vec<F> {
        self.flatten(|d| d.elements(), F::from_canonical_u64)
    }

    /// Parses the public inputs of a leaf or merge proof; `None` if the length is wrong.
    pub fn from_fields(v: &[F]) -> Option<RangeStatement> {
        Self::unflatten(v, Digest, |x| x.to_canonical_u64())
    }
}

impl RangeStatementTargets {
    /// Requires the range to start a batch: every chain starts at `ZERO` (no transaction of
    /// the batch left out at the front).
    pub fn assert_starts_batch(&self, b: &mut CircuitBuilder<F, D>) {
        for (_, h) in self.batch_starts() {
            for t in h.elements {
                b.assert_zero(t);
            }
        }
    }

    /// Requires `self` then `next` to be adjacent ranges ([`Range::links`]).
    pub fn connect_links(&self, next: &Self, b: &mut CircuitBuilder<F, D>) {
        let (digests, numbers) = self.links(next);
        for (_, x, y) in digests {
            b.connect_hashes(x, y);
        }
        for (_, x, y) in numbers {
            b.connect(x, y);
        }
    }

    /// Views the targets of an inner proof's public inputs.
    pub fn from_targets(t: &[Target]) -> RangeStatementTargets {
        Self::unflatten(t, |elements| HashOutTarget { elements }, |x| x).unwrap_or_else(|| {
            panic!(
                "a range statement has {RANGE_PUBLIC_INPUTS} targets, not {}",
                t.len()
            )
        })
    }

    pub fn to_targets(&self) -> Vec<Target> {
        self.flatten(|h| h.elements, |x| x)
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
