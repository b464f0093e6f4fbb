//! SHA-256 in-circuit (FIPS 180-4), the hash the L1 contract recomputes for the batch statement,
//! the priority-queue chain and the payout tree (SPEC 15.8).
//!
//! **Why SHA-256 and not keccak-256.** Both cost the L1 little (the SHA-256 precompile at `0x02`
//! charges `60 + 12` gas per 32-byte word plus a `STATICCALL`, keccak `30 + 6` per word). In a
//! Goldilocks circuit they differ by an order of magnitude: SHA-256 works on 32-bit words whose
//! additions are native field additions (the reduction mod `2^32` is one carry), so a round is
//! two custom-gate rows (`gates`); keccak's 1,600-bit state is all XOR/AND/rotation, about
//! 6,400 bit operations per round, ~300 rows per round in generic arithmetic gates.
//!
//! **Cost.** One compression (64-byte block) is 64 [`Sha256RoundEGate`] rows, 64
//! [`Sha256RoundAGate`] rows, 48 [`Sha256ScheduleGate`] rows, 8 `BaseSumGate` rows for the final
//! additions and a few arithmetic rows for `K_t + W_t`: about 190 rows (measured by
//! `tests::rows_per_block`, reported in docs/BENCHMARKS.md).
//!
//! **Inputs.** A word is a [`Target`] holding an integer below `2^32`. [`compress`] requires
//! its state and block words to be range-checked by the caller (the IV is constant, a previous
//! [`compress`] output is range-checked, bytes built by [`bytes_to_words`] are range-checked if
//! the bytes are). Outputs are range-checked.

mod gates;
pub mod stream;
#[cfg(test)]
mod tests;

pub use gates::{
    Sha256RoundAGate, Sha256RoundAGenerator, Sha256RoundEGate, Sha256RoundEGenerator,
    Sha256ScheduleGate, Sha256ScheduleGenerator,
};

use plonky2::field::types::Field;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::plonk::circuit_builder::CircuitBuilder;

use crate::{D, F};

/// The initial hash value `H^(0)` (FIPS 180-4, 5.3.3).
pub const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The round constants `K_t` (FIPS 180-4, 4.2.2).
pub const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Eight range-checked 32-bit words: a chaining value or a digest (big-endian word order, as
/// FIPS 180-4 prints it: the digest's bytes are the words' big-endian bytes in order).
pub type Sha256Words = [Target; 8];

/// The IV as constants.
pub fn iv(b: &mut CircuitBuilder<F, D>) -> Sha256Words {
    IV.map(|w| b.constant(F::from_canonical_u32(w)))
}

/// One application of the compression function: `state` (range-checked words) absorbs `block`
/// (sixteen range-checked big-endian words).
pub fn compress(
    b: &mut CircuitBuilder<F, D>,
    state: &Sha256Words,
    block: &[Target; 16],
) -> Sha256Words {
    let mut w: Vec<Target> = block.to_vec();
    for t in 16..64 {
        let row = b.add_gate(Sha256ScheduleGate, vec![]);
        let wire = |c| Target::wire(row, c);
        b.connect(w[t - 2], wire(Sha256ScheduleGate::W2));
        b.connect(w[t - 7], wire(Sha256ScheduleGate::W7));
        b.connect(w[t - 15], wire(Sha256ScheduleGate::W15));
        b.connect(w[t - 16], wire(Sha256ScheduleGate::W16));
        w.push(wire(Sha256ScheduleGate::W_NEW));
    }
    rounds(b, state, &w)
}

/// [`compress`] of a block known when the circuit is built (e.g. the padding block of a 64-byte
/// message): the message schedule is computed natively, so the 48 schedule rows and the
/// `K_t + W_t` additions disappear (about 140 rows instead of about 190).
pub fn compress_constant_block(
    b: &mut CircuitBuilder<F, D>,
    state: &Sha256Words,
    block: &[u32; 16],
) -> Sha256Words {
    let mut w = block.to_vec();
    for t in 16..64 {
        let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
        let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
        w.push(
            s1.wrapping_add(w[t - 7])
                .wrapping_add(s0)
                .wrapping_add(w[t - 16]),
        );
    }
    let w: Vec<Target> = w
        .into_iter()
        .map(|x| b.constant(F::from_canonical_u32(x)))
        .collect();
    rounds(b, state, &w)
}

/// The 64 rounds and the final additions on the scheduled words `w` (range-checked words).
fn rounds(b: &mut CircuitBuilder<F, D>, state: &Sha256Words, w: &[Target]) -> Sha256Words {
    let [mut a, mut bb, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for t in 0..64 {
        let kw = b.add_const(w[t], F::from_canonical_u32(K[t]));

        let row = b.add_gate(Sha256RoundEGate, vec![]);
        let wire = |col| Target::wire(row, col);
        for (x, col) in [
            (e, Sha256RoundEGate::E),
            (f, Sha256RoundEGate::F),
            (g, Sha256RoundEGate::G),
            (h, Sha256RoundEGate::H),
            (d, Sha256RoundEGate::D),
            (kw, Sha256RoundEGate::KW),
        ] {
            b.connect(x, wire(col));
        }
        let t1 = wire(Sha256RoundEGate::T1);
        let e_new = wire(Sha256RoundEGate::E_NEW);

        let row = b.add_gate(Sha256RoundAGate, vec![]);
        let wire = |col| Target::wire(row, col);
        for (x, col) in [
            (a, Sha256RoundAGate::A),
            (bb, Sha256RoundAGate::B),
            (c, Sha256RoundAGate::C),
            (t1, Sha256RoundAGate::T1),
        ] {
            b.connect(x, wire(col));
        }
        let a_new = wire(Sha256RoundAGate::A_NEW);

        (h, g, f, e) = (g, f, e, e_new);
        (d, c, bb, a) = (c, bb, a, a_new);
    }

    let v = [a, bb, c, d, e, f, g, h];
    core::array::from_fn(|i| add_mod_2_32(b, state[i], v[i]))
}

/// `(x + y) mod 2^32` for `x` range-checked and `y` an integer below `2^40` in absolute value
/// congruent to its true value (the gates' invariant); the result is range-checked.
fn add_mod_2_32(b: &mut CircuitBuilder<F, D>, x: Target, y: Target) -> Target {
    let s = b.add(x, y);
    // An honest sum is below 2^33; the result is the low 32 of its 33 bits, so it is exactly
    // `(x + y) mod 2^32`, and a dishonest `y` (off by a multiple of 2^32) has no 33-bit sum.
    let bits = b.split_le(s, 33);
    let top = bits[32].target;
    b.mul_const_add(-F::from_canonical_u64(1 << 32), top, s)
}

/// `bytes.len() / 4` big-endian words from bytes (each a target below `2^8`: the words are
/// range-checked iff the bytes are). `bytes.len()` must be a multiple of 4.
pub fn bytes_to_words(b: &mut CircuitBuilder<F, D>, bytes: &[Target]) -> Vec<Target> {
    assert_eq!(bytes.len() % 4, 0, "whole words only");
    let base = F::from_canonical_u32(256);
    bytes
        .chunks(4)
        .map(|q| {
            let mut acc = q[0];
            for &byte in &q[1..] {
                acc = b.mul_const_add(base, acc, byte);
            }
            acc
        })
        .collect()
}

/// The padded message of FIPS 180-4 5.1.1 for a fixed `bytes.len()`: the bytes, `0x80`,
/// zeros, and the bit length as a big-endian u64, as constants where they are constant.
pub fn pad(b: &mut CircuitBuilder<F, D>, bytes: &[Target]) -> Vec<Target> {
    let len = bytes.len();
    let total = (len + 9).div_ceil(64) * 64;
    let mut out = bytes.to_vec();
    out.push(b.constant(F::from_canonical_u32(0x80)));
    while out.len() < total - 8 {
        out.push(b.zero());
    }
    for byte in ((len as u64) * 8).to_be_bytes() {
        out.push(b.constant(F::from_canonical_u8(byte)));
    }
    out
}

/// SHA-256 of a message of fixed length, given as range-checked bytes.
pub fn sha256_bytes(b: &mut CircuitBuilder<F, D>, bytes: &[Target]) -> Sha256Words {
    let padded = pad(b, bytes);
    let words = bytes_to_words(b, &padded);
    let mut state = iv(b);
    for block in words.chunks(16) {
        let block: [Target; 16] = block.try_into().expect("padding makes whole blocks");
        state = compress(b, &state, &block);
    }
    state
}

/// The 32 bits of a range-checked word, little-endian (one `BaseSumGate` row).
pub fn word_bits(b: &mut CircuitBuilder<F, D>, w: Target) -> Vec<BoolTarget> {
    b.split_le(w, 32)
}

/// The four big-endian bytes of a word, each range-checked (one `BaseSumGate` row plus a few
/// arithmetic operations): the digest's byte string, for hashing it again.
pub fn word_to_bytes(b: &mut CircuitBuilder<F, D>, w: Target) -> [Target; 4] {
    let bits = word_bits(b, w);
    core::array::from_fn(|k| {
        let lo = 8 * (3 - k);
        b.le_sum(bits[lo..lo + 8].iter())
    })
}
