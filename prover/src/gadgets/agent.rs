//! Agent fields in-circuit, the pieces the version 4 diff circuit (docs/PROVER.md, "Proving the
//! agent kinds") and the stream slots of the payment circuit are built from:
//!
//! - [`StreamFieldsTarget`]: a stream's fields (SPEC 18.5) as the 68 bytes a diff publishes
//!   (`Stream::write_fields`, SPEC 10.4) and as the leaf its payer's book holds
//!   (`Stream::leaf_hash`). Each value is range-checked to its width, and the bytes are taken
//!   from the checked bits, so the bytes are the one encoding of the leaf's fields: a value a
//!   decoder would refuse (a price, expiry or `opened_at` of `2^63` or more) has no witness.
//! - [`book_root`]: a slot of a payer's stream book (depth 16, SPEC 18.3) from its leaf and path.
//! - [`ext_digest`]: an account's `ext` from its stream root and profile, `ZERO` when both are
//!   empty (SPEC 18.3, `state::ext::ext_digest`); [`profile_digest`] the profile from its
//!   parts, `ZERO` when all are.
//!
//! Costs (standard recursion config): the bytes of one stream ~15 rows of range checks (the
//! 32-bit values split into bits, the three 63-bit ones two rows each, the four head limbs two
//! rows each) and its leaf two Poseidon rows (ten elements); a book path 16 Poseidon rows; an
//! `ext` one Poseidon row and ~3 of comparisons.

use anyhow::Context;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::smt::empty_hashes;
use state::stream::{Stream, SLOT_DEPTH};

use crate::gadgets::range::{range_check_u63, range_check_u64};
use crate::gadgets::smt::{constant_digest, hash_level, select_hash, zero_digest};
use crate::{D, F};

/// A stream's fields after its position (payer and slot are the leaf's place in the books).
#[derive(Clone, Copy, Debug)]
pub struct StreamFieldsTarget {
    pub payee: Target,
    pub price: Target,
    pub max_ticks: Target,
    pub expiry: Target,
    pub opened_at: Target,
    pub settled: Target,
    pub head: HashOutTarget,
}

/// The little-endian bytes of `bits` (8 per byte).
fn le_bytes(b: &mut CircuitBuilder<F, D>, bits: &[BoolTarget]) -> Vec<Target> {
    bits.chunks(8).map(|c| b.le_sum(c.iter())).collect()
}

impl StreamFieldsTarget {
    /// Fresh targets, to be set with [`StreamFieldsTarget::set`] or tied by the caller.
    pub fn new(b: &mut CircuitBuilder<F, D>) -> Self {
        StreamFieldsTarget {
            payee: b.add_virtual_target(),
            price: b.add_virtual_target(),
            max_ticks: b.add_virtual_target(),
            expiry: b.add_virtual_target(),
            opened_at: b.add_virtual_target(),
            settled: b.add_virtual_target(),
            head: b.add_virtual_hash(),
        }
    }

    /// The ten leaf elements, in the order of `Stream::to_field_elements`.
    fn elements(&self) -> [Target; 10] {
        let h = self.head.elements;
        [
            self.payee,
            self.price,
            self.max_ticks,
            self.expiry,
            self.opened_at,
            self.settled,
            h[0],
            h[1],
            h[2],
            h[3],
        ]
    }

    /// Sets the fields of `s`, or raw field elements (for a witness built by hand).
    pub fn set(&self, pw: &mut PartialWitness<F>, s: &Stream) -> anyhow::Result<()> {
        self.set_elements(pw, &s.to_field_elements())
    }

    /// Sets the ten leaf elements as given (an attack test's out-of-range value included).
    pub fn set_elements(&self, pw: &mut PartialWitness<F>, e: &[F; 10]) -> anyhow::Result<()> {
        for (t, v) in self.elements().iter().zip(e) {
            pw.set_target(*t, *v).context("a stream field")?;
        }
        Ok(())
    }

    /// The 68 bytes of `Stream::write_fields`: `payee LE32 ‖ price LE64 ‖ max_ticks LE32 ‖
    /// expiry LE64 ‖ opened_at LE64 ‖ settled LE32 ‖ head (4 x LE64)`, from range-checked bits:
    /// the 32-bit fields below 2^32, price, expiry and `opened_at` below 2^63, the head limbs
    /// canonical (below p). The rules that relate fields (a positive price, `settled <=
    /// max_ticks`, the payee not the payer) are the state transition's, not the encoding's.
    pub fn bytes(&self, b: &mut CircuitBuilder<F, D>) -> Vec<Target> {
        let u32_bytes = |b: &mut CircuitBuilder<F, D>, x: Target| {
            let bits = b.split_le(x, 32);
            le_bytes(b, &bits)
        };
        let u63_bytes = |b: &mut CircuitBuilder<F, D>, x: Target| {
            let bits = range_check_u63(b, x).bits64(b);
            le_bytes(b, &bits)
        };
        let mut out = u32_bytes(b, self.payee);
        out.extend(u63_bytes(b, self.price));
        out.extend(u32_bytes(b, self.max_ticks));
        out.extend(u63_bytes(b, self.expiry));
        out.extend(u63_bytes(b, self.opened_at));
        out.extend(u32_bytes(b, self.settled));
        for &h in &self.head.elements {
            let bits = range_check_u64(b, h);
            out.extend(le_bytes(b, &bits));
        }
        debug_assert_eq!(out.len(), state::stream::STREAM_FIELDS_BYTES);
        out
    }

    /// `Stream::leaf_hash`: Poseidon (`hash_no_pad`) of the ten elements.
    pub fn leaf(&self, b: &mut CircuitBuilder<F, D>) -> HashOutTarget {
        b.hash_n_to_hash_no_pad::<PoseidonHash>(self.elements().to_vec())
    }
}

/// The root of a payer's stream book with `leaf` in the slot whose 16 little-endian bits are
/// `slot_bits`, under the sibling hashes `path` (leaf level first).
pub fn book_root(
    b: &mut CircuitBuilder<F, D>,
    leaf: HashOutTarget,
    slot_bits: &[BoolTarget],
    path: &[HashOutTarget],
) -> HashOutTarget {
    assert_eq!(slot_bits.len(), SLOT_DEPTH, "a slot has {SLOT_DEPTH} bits");
    assert_eq!(
        path.len(),
        SLOT_DEPTH,
        "a book path has {SLOT_DEPTH} siblings"
    );
    let mut cur = leaf;
    for (&bit, &sibling) in slot_bits.iter().zip(path) {
        cur = hash_level(b, cur, sibling, bit);
    }
    cur
}

/// `ext` from a stream root and a profile digest: `ZERO` if the book is empty (`E[16]`) and
/// the profile `ZERO`, else `hash_no_pad(streams_root ‖ profile)`.
pub fn ext_digest(
    b: &mut CircuitBuilder<F, D>,
    streams_root: HashOutTarget,
    profile: HashOutTarget,
) -> HashOutTarget {
    let empty_book = empty_book(b);
    let zero = zero_digest(b);
    let mut empty = b._true();
    for i in 0..4 {
        let r = b.is_equal(streams_root.elements[i], empty_book.elements[i]);
        let p = b.is_equal(profile.elements[i], zero.elements[i]);
        empty = b.and(empty, r);
        empty = b.and(empty, p);
    }
    let mut inputs = streams_root.elements.to_vec();
    inputs.extend_from_slice(&profile.elements);
    let h = b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs);
    select_hash(b, empty, zero, h)
}

/// `profile` from its parts `[shares, passport, lanes]` (SPEC 18.3): `ZERO` if all three are,
/// else `hash_no_pad` of the twelve elements.
pub fn profile_digest(b: &mut CircuitBuilder<F, D>, parts: &[HashOutTarget; 3]) -> HashOutTarget {
    let zero = zero_digest(b);
    let mut empty = b._true();
    let mut inputs = Vec::with_capacity(12);
    for part in parts {
        for &e in &part.elements {
            let z = b.is_equal(e, zero.elements[0]);
            empty = b.and(empty, z);
            inputs.push(e);
        }
    }
    let h = b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs);
    select_hash(b, empty, zero, h)
}

/// `ext` from a stream root and profile parts `[shares, passport, lanes]` known not all `ZERO`
/// (a part the caller set to a digest: an agent's passport, a moved lanes part, a registered
/// shares part): `hash_no_pad(streams_root ‖ hash_no_pad(parts))`, two plain hashes, without
/// the emptiness tests of [`profile_digest`] and [`ext_digest`], whose values they equal then.
pub fn ext_of_parts(
    b: &mut CircuitBuilder<F, D>,
    streams_root: HashOutTarget,
    parts: &[HashOutTarget; 3],
) -> HashOutTarget {
    let profile =
        b.hash_n_to_hash_no_pad::<PoseidonHash>(parts.iter().flat_map(|p| p.elements).collect());
    let mut inputs = streams_root.elements.to_vec();
    inputs.extend(profile.elements);
    b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs)
}

/// One step of a chained payee list (`state::split::list_digest_step`, SPEC 19.2):
/// `hash_no_pad(d (4) ‖ to ‖ value)`, a split's parts and a registration's shares alike.
pub fn list_digest_step(
    b: &mut CircuitBuilder<F, D>,
    d: HashOutTarget,
    to: Target,
    value: Target,
) -> HashOutTarget {
    let mut inputs = d.elements.to_vec();
    inputs.extend([to, value]);
    b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs)
}

/// The shares digest `hash_no_pad(TAG_SHARES, n, s)` of a list of `n` shares whose chain is
/// `s` (`state::split::shares_digest_of`, SPEC 19.2): the profile's shares part.
pub fn shares_digest(
    b: &mut CircuitBuilder<F, D>,
    n: Target,
    chain: HashOutTarget,
) -> HashOutTarget {
    let mut inputs = vec![
        b.constant(plonky2::field::types::Field::from_canonical_u64(
            state::split::TAG_SHARES,
        )),
        n,
    ];
    inputs.extend(chain.elements);
    b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs)
}

/// The empty book's root `E[16]` as a constant (a stream book with no open stream).
pub fn empty_book(b: &mut CircuitBuilder<F, D>) -> HashOutTarget {
    constant_digest(b, empty_hashes()[SLOT_DEPTH])
}

#[cfg(test)]
mod tests;
