//! In-circuit Schnorr verification over ECgFp5, the same check as
//! `state::crypto::schnorr::PublicKey::verify`:
//!
//! ```text
//! R' = s G + e Q,   accept iff Poseidon(w(R') ‖ msg) == e
//! ```
//!
//! Cost per signature (rows of the standard recursion config): one [`KeyDecodeGate`], one
//! [`EcAddGate`] (G + Q for the joint double-and-add), 107 [`ScalarMulStepGate`] rows (321
//! steps, three per row; s < 2^319 and e < 2^256 both fit), four 64-bit decompositions of e
//! with their canonicity checks, a fifth of a [`Gfp5MulGate`] row (the encoding w(R') =
//! 1/u(R')), one Poseidon row and a few arithmetic operations: about 120 rows in all,
//! measured by the `rows_per_signature` test and recorded in docs/BENCHMARKS.md.
//!
//! Soundness notes:
//! - every point entering the curve gates is a group element (see `curve`'s module docs), so
//!   the complete formulas leave the prover no freedom;
//! - e's limbs are decomposed canonically (a limb's bits cannot spell `limb + p`), so the
//!   scalar multiplied with Q is exactly the challenge integer the native code uses;
//! - s is free witness: any integer s with s G + e Q = R' is as good as s mod n, and the
//!   transaction id never depends on s, so this admits no new transaction;
//! - R' may be the neutral (a signer can aim for it: s = -e d): its encoding is w = 0, as in the
//!   native code, so such a signature is judged (and rejected) like any other instead of
//!   having no proof at all; that matters for forced withdrawals, which must be consumed;
//! - [`SchnorrTargets::e_calc`] exposes the recomputed challenge, so a caller can prove that a
//!   signature does *not* verify; s is then bound through [`SchnorrTargets::s_stream_bits`]
//!   (s < 2^320, bit 320 is constrained to zero), since a free s would let the prover fail any
//!   signature.

use anyhow::Result;
use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::crypto::schnorr::Signature;

use super::curve::{generator_affine, EcAddGate, KeyDecodeGate, ScalarMulStepGate};
use super::gfp5::{inverse_or_zero_gfp5, wires5};
use crate::{D, F};

/// The encoding `w = 4` of the generator: a valid key to feed [`verify_schnorr`] when it is
/// disabled (the key-decoding constraints hold for every valid key, enabled or not).
pub const DUMMY_KEY_W: [u64; 5] = [4, 0, 0, 0, 0];

/// Bit positions processed by the double-and-add, most significant first (a multiple of the
/// gate's three steps, at least 319 for s).
const STEP_BITS: usize = 321;
const STEP_ROWS: usize = STEP_BITS / ScalarMulStepGate::STEPS;

/// The witness targets of one signature check.
#[derive(Clone, Debug)]
pub struct SchnorrTargets {
    /// The claimed challenge e (four limbs, as in the signature).
    pub e: [Target; 4],
    /// e's limbs' canonical little-endian bits, limb 0 first (256 bits).
    pub e_bits: Vec<BoolTarget>,
    /// The recomputed challenge `Poseidon(w(sG + eQ) ‖ msg)`.
    pub e_calc: [Target; 4],
    /// The bits of s: `s_bits[p]` is bit p (little-endian position), for p < [`STEP_BITS`].
    s_bits: Vec<Target>,
}

fn point_targets(row: usize, start: usize) -> ([Target; 5], [Target; 5]) {
    (wires5(row, start), wires5(row, start + 5))
}

fn connect5(b: &mut CircuitBuilder<F, D>, x: [Target; 5], y: [Target; 5]) {
    for i in 0..5 {
        b.connect(x[i], y[i]);
    }
}

/// Constrains that `limb`'s 64 little-endian bits are its canonical representation: if the
/// high 32 bits are all one, the low 32 bits are zero (otherwise the bits could spell
/// `limb + p`).
fn canonical_limb_bits(b: &mut CircuitBuilder<F, D>, limb: Target) -> Vec<BoolTarget> {
    let bits = b.split_le(limb, 64);
    let hi = b.le_sum(bits[32..].iter());
    let two32 = b.constant(F::from_canonical_u64(1 << 32));
    let lo = b.arithmetic(-F::ONE, F::ONE, hi, two32, limb); // limb - hi * 2^32
    let all_ones = b.constant(F::from_canonical_u64(u32::MAX as u64));
    let hi_full = b.is_equal(hi, all_ones);
    let bad = b.mul(hi_full.target, lo);
    let zero = b.zero();
    b.connect(bad, zero);
    bits
}

/// Constrains `pk` to be the encoding of a valid key (on the curve, in the group: one
/// [`KeyDecodeGate`] row), for a key that no signature checks (a delegate's agent key). No
/// proof exists otherwise; feed [`DUMMY_KEY_W`] where none is read.
pub fn assert_valid_key(b: &mut CircuitBuilder<F, D>, pk: [Target; 5]) {
    let row = b.add_gate(KeyDecodeGate, vec![]);
    connect5(b, pk, wires5(row, KeyDecodeGate::W));
}

/// Constrains: if `enabled`, a signature (e, s) on `msg` verifies under the key whose encoding
/// is `pk`. `pk` must always be the encoding of a valid key (use [`DUMMY_KEY_W`] when disabled);
/// no proof exists otherwise.
pub fn verify_schnorr(
    b: &mut CircuitBuilder<F, D>,
    pk: [Target; 5],
    msg: HashOutTarget,
    enabled: BoolTarget,
) -> SchnorrTargets {
    let zero = b.zero();

    // Q from its encoding.
    let row = b.add_gate(KeyDecodeGate, vec![]);
    connect5(b, pk, wires5(row, KeyDecodeGate::W));
    let q = (wires5(row, KeyDecodeGate::X), wires5(row, KeyDecodeGate::U));

    // G + Q.
    let (gx, gu) = generator_affine();
    let g = (gx.map(|c| b.constant(c)), gu.map(|c| b.constant(c)));
    let row = b.add_gate(EcAddGate, vec![]);
    connect5(b, g.0, wires5(row, EcAddGate::P1_X));
    connect5(b, g.1, wires5(row, EcAddGate::P1_U));
    connect5(b, q.0, wires5(row, EcAddGate::P2_X));
    connect5(b, q.1, wires5(row, EcAddGate::P2_U));
    let gq = point_targets(row, EcAddGate::OUT_X);

    // e's bits, little-endian positions; positions 256.. are zero.
    let e: [Target; 4] = core::array::from_fn(|_| b.add_virtual_target());
    let mut e_bits = vec![zero; STEP_BITS];
    let mut e_limb_bits = Vec::with_capacity(256);
    for (i, limb) in e.iter().enumerate() {
        for (k, bit) in canonical_limb_bits(b, *limb).into_iter().enumerate() {
            e_bits[64 * i + k] = bit.target;
            e_limb_bits.push(bit);
        }
    }

    // R' = s G + e Q by a joint double-and-add from the neutral, most significant bit first.
    let mut acc = ([zero; 5], [zero; 5]);
    let mut s_bits = vec![zero; STEP_BITS];
    for r in 0..STEP_ROWS {
        let row = b.add_gate(ScalarMulStepGate, vec![]);
        let (ax, au) = point_targets(row, ScalarMulStepGate::ACC_IN);
        connect5(b, acc.0, ax);
        connect5(b, acc.1, au);
        let (qx, qu) = point_targets(row, ScalarMulStepGate::Q);
        connect5(b, q.0, qx);
        connect5(b, q.1, qu);
        let (gqx, gqu) = point_targets(row, ScalarMulStepGate::GQ);
        connect5(b, gq.0, gqx);
        connect5(b, gq.1, gqu);
        for j in 0..ScalarMulStepGate::STEPS {
            let pos = STEP_BITS - 1 - (ScalarMulStepGate::STEPS * r + j);
            b.connect(
                e_bits[pos],
                Target::wire(row, ScalarMulStepGate::E_BITS + j),
            );
            s_bits[pos] = Target::wire(row, ScalarMulStepGate::S_BITS + j);
        }
        acc = point_targets(row, ScalarMulStepGate::ACC_OUT);
    }

    // s < 2^320, so that its 40 published bytes are all of it.
    b.connect(s_bits[STEP_BITS - 1], zero);

    // e' = Poseidon(w(R') ‖ msg), w = 1/u (0 for the neutral).
    let w = inverse_or_zero_gfp5(b, acc.1);
    let mut inputs = w.to_vec();
    inputs.extend_from_slice(&msg.elements);
    let e_calc = b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs);
    for (calc, claimed) in e_calc.elements.into_iter().zip(e) {
        let diff = b.sub(calc, claimed);
        let gated = b.mul(diff, enabled.target);
        b.connect(gated, zero);
    }
    SchnorrTargets {
        e,
        e_bits: e_limb_bits,
        e_calc: e_calc.elements,
        s_bits,
    }
}

impl SchnorrTargets {
    /// s's 320 little-endian bits (its 40-byte encoding). Boolean: the step gate constrains
    /// every bit it consumes.
    pub fn s_stream_bits(&self) -> Vec<BoolTarget> {
        self.s_bits[..320]
            .iter()
            .map(|t| BoolTarget::new_unsafe(*t))
            .collect()
    }

    /// Fills the signature witness; `None` for a disabled check (the dummy signature e = 0,
    /// s = 1, whose R' = G has an encoding).
    pub fn set(&self, pw: &mut PartialWitness<F>, sig: Option<&Signature>) -> Result<()> {
        let (e, s_bytes) = match sig {
            Some(sig) => (sig.challenge().elements(), sig.response_bytes()),
            None => {
                let mut one = [0u8; 40];
                one[0] = 1;
                ([F::ZERO; 4], one)
            }
        };
        for (t, v) in self.e.iter().zip(e) {
            pw.set_target(*t, v)?;
        }
        for (pos, t) in self.s_bits.iter().enumerate() {
            let bit = if pos < 320 {
                (s_bytes[pos / 8] >> (pos % 8)) & 1
            } else {
                0
            };
            pw.set_target(*t, F::from_canonical_u8(bit))?;
        }
        Ok(())
    }
}
