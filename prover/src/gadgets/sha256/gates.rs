//! The three custom gates of the SHA-256 compression function, one row each.
//!
//! A 32-bit word travels between rows as one field element. A gate that needs a word's bits
//! holds them as advice wires of its own row (booleanity plus one recomposition constraint per
//! word), so a bit is never copied between rows: the copy constraints carry only whole words.
//!
//! | gate | computes | wires | constraints | degree |
//! |---|---|---|---|---|
//! | [`Sha256RoundEGate`] | `t1 = h + kw + Σ1(e) + Ch(e,f,g)`, `e' = d + t1 mod 2^32` | 107 | 104 | 3 |
//! | [`Sha256RoundAGate`] | `a' = t1 + Σ0(a) + Maj(a,b,c) mod 2^32` | 104 | 103 | 3 |
//! | [`Sha256ScheduleGate`] | `w = σ1(w2) + w7 + σ0(w15) + w16 mod 2^32` | 71 | 69 | 3 |
//!
//! `kw` is `K_t + W_t` (an addition outside the gate). A reduction `x = s - carry * 2^32` takes
//! its carry as three (two for the schedule) boolean wires, so `carry` is in `[0, 8)` (`[0, 4)`):
//! enough for every honest sum (below `6 * 2^32`, `7 * 2^32` and `4 * 2^32`).
//!
//! **Soundness invariant.** The gates do not range-check their outputs: `e'`, `a'` and `w` are
//! range-checked where they are next decomposed (as `e`, `a`, `w2` or `w15` of a later row, or
//! by the final addition of [`super::compress`]). Every value the gates produce is an integer
//! of absolute value below `2^40` congruent to the true value modulo `2^32` (each equation holds
//! over the integers because no term comes near `p`), so a value that is decomposed later is
//! exactly the true one, and one that is not (`h`, `d`, `w7`, `w16`, `W_62`, `W_63`, the last
//! `a'` and `e'`) contributes only modulo `2^32` to a value that is.

use anyhow::Result;
use plonky2::field::types::{Field, PrimeField64};
use plonky2::gates::gate::Gate;
use plonky2::iop::generator::{GeneratedValues, SimpleGenerator, WitnessGeneratorRef};
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartitionWitness, Witness, WitnessWrite};
use plonky2::plonk::circuit_data::CommonCircuitData;
use plonky2::util::serialization::{Buffer, IoResult, Read, Write};

use crate::gadgets::gfp5::{gate_evals, Alg};
use crate::{D, F};

/// How one input bit of a σ/Σ function is taken from a word: a rotation or a shift.
#[derive(Clone, Copy)]
enum Op {
    Rotr(usize),
    Shr(usize),
}

const BIG_SIGMA0: [Op; 3] = [Op::Rotr(2), Op::Rotr(13), Op::Rotr(22)];
const BIG_SIGMA1: [Op; 3] = [Op::Rotr(6), Op::Rotr(11), Op::Rotr(25)];
const SMALL_SIGMA0: [Op; 3] = [Op::Rotr(7), Op::Rotr(18), Op::Shr(3)];
const SMALL_SIGMA1: [Op; 3] = [Op::Rotr(17), Op::Rotr(19), Op::Shr(10)];

/// Bit `i` of `op(x)` as an index into `x`'s bits, or `None` for a shifted-in zero.
fn source(op: Op, i: usize) -> Option<usize> {
    match op {
        Op::Rotr(n) => Some((i + n) % 32),
        Op::Shr(n) => (i + n < 32).then_some(i + n),
    }
}

fn two_pow(i: usize) -> F {
    F::from_canonical_u64(1u64 << i)
}

/// `x ^ y` on bits: `x + y - 2xy`.
fn xor2<A: Alg>(a: &mut A, x: A::V, y: A::V) -> A::V {
    let s = a.add(x, y);
    let p = a.mul(x, y);
    let p2 = a.scale(F::TWO, p);
    a.sub(s, p2)
}

/// The value of `op0(x) ^ op1(x) ^ op2(x)` from `x`'s bits (degree 3 in the bits).
fn sigma<A: Alg>(a: &mut A, bits: &[A::V], ops: [Op; 3]) -> A::V {
    let mut acc = a.constant(F::ZERO);
    for i in 0..32 {
        let mut terms = ops.iter().filter_map(|&op| source(op, i).map(|j| bits[j]));
        let first = terms.next().expect("a rotation contributes every bit");
        let bit = terms.fold(first, |x, y| xor2(a, x, y));
        let term = a.scale(two_pow(i), bit);
        acc = a.add(acc, term);
    }
    acc
}

/// The value of `Ch(e, f, g) = (e & f) ^ (!e & g)`: per bit `g + e (f - g)`.
fn ch<A: Alg>(a: &mut A, e: &[A::V], f: &[A::V], g: &[A::V]) -> A::V {
    let mut acc = a.constant(F::ZERO);
    for i in 0..32 {
        let d = a.sub(f[i], g[i]);
        let m = a.mul(e[i], d);
        let bit = a.add(g[i], m);
        let term = a.scale(two_pow(i), bit);
        acc = a.add(acc, term);
    }
    acc
}

/// The value of `Maj(x, y, z)`: per bit `xy + xz + yz - 2xyz`.
fn maj<A: Alg>(a: &mut A, x: &[A::V], y: &[A::V], z: &[A::V]) -> A::V {
    let mut acc = a.constant(F::ZERO);
    for i in 0..32 {
        let xy = a.mul(x[i], y[i]);
        let xz = a.mul(x[i], z[i]);
        let yz = a.mul(y[i], z[i]);
        let xyz = a.mul(xy, z[i]);
        let s = a.add(xy, xz);
        let s = a.add(s, yz);
        let t = a.scale(F::TWO, xyz);
        let bit = a.sub(s, t);
        let term = a.scale(two_pow(i), bit);
        acc = a.add(acc, term);
    }
    acc
}

/// Booleanity of each bit, then `word - sum 2^i bits[i]`.
fn decompose<A: Alg>(a: &mut A, word: A::V, bits: &[A::V], out: &mut Vec<A::V>) {
    let mut acc = a.constant(F::ZERO);
    for (i, &bit) in bits.iter().enumerate() {
        let sq = a.mul(bit, bit);
        out.push(a.sub(sq, bit));
        let term = a.scale(two_pow(i), bit);
        acc = a.add(acc, term);
    }
    out.push(a.sub(word, acc));
}

/// Booleanity of each carry bit; returns the carry's value.
fn carry<A: Alg>(a: &mut A, bits: &[A::V], out: &mut Vec<A::V>) -> A::V {
    let mut acc = a.constant(F::ZERO);
    for (i, &bit) in bits.iter().enumerate() {
        let sq = a.mul(bit, bit);
        out.push(a.sub(sq, bit));
        let term = a.scale(two_pow(i), bit);
        acc = a.add(acc, term);
    }
    acc
}

/// `result + carry * 2^32 - sum`.
fn reduction<A: Alg>(a: &mut A, result: A::V, carry: A::V, sum: A::V) -> A::V {
    let c = a.scale(two_pow(32), carry);
    let r = a.add(result, c);
    a.sub(r, sum)
}

fn u32_bits(x: u64) -> impl Iterator<Item = F> {
    (0..32).map(move |i| F::from_bool((x >> i) & 1 == 1))
}

fn rotr_native(x: u32, ops: [Op; 3]) -> u32 {
    ops.iter().fold(0, |acc, &op| {
        acc ^ match op {
            Op::Rotr(n) => x.rotate_right(n as u32),
            Op::Shr(n) => x >> n,
        }
    })
}

/// The low 32 bits of a field value (an honest word is below `2^32`; a dishonest one then
/// fails the recomposition constraint).
fn low32(x: F) -> u32 {
    x.to_canonical_u64() as u32
}

/// Runs a gate's `witness` on the row's input wires (its first `inputs.len()` wires) and sets
/// the rest of the row.
fn set_row(
    row: usize,
    w: &PartitionWitness<F>,
    out: &mut GeneratedValues<F>,
    inputs: &[Target],
    witness: fn(&[F]) -> Vec<F>,
) -> Result<()> {
    let values: Vec<F> = inputs.iter().map(|&t| w.get_target(t)).collect();
    for (col, v) in witness(&values).into_iter().enumerate().skip(inputs.len()) {
        out.set_target(Target::wire(row, col), v)?;
    }
    Ok(())
}

/// Writes `v`'s 32 bits at `start` and `c`'s `n` bits at `carry`.
fn put_bits(row: &mut [F], start: usize, v: u32) {
    for (i, bit) in u32_bits(v.into()).enumerate() {
        row[start + i] = bit;
    }
}

fn put_carry(row: &mut [F], start: usize, n: usize, c: u64) {
    for i in 0..n {
        row[start + i] = F::from_bool((c >> i) & 1 == 1);
    }
}

/// Splits `sum` into `(result, carry)` with `result < 2^32`; the carry keeps only the bits the
/// gate has wires for, so an out-of-range sum yields a witness that fails its constraint.
fn split_sum(sum: F, carry_bits: usize) -> (F, u64) {
    let s = sum.to_canonical_u64();
    let c = (s >> 32) & ((1 << carry_bits) - 1);
    (sum - F::from_canonical_u64(c << 32), c)
}

/// The `Gate` impl of a one-row gate whose input wires come first, and its generator.
macro_rules! plain_gate_impl {
    ($gate:ident, $gen:ident) => {
        impl Gate<F, D> for $gate {
            fn id(&self) -> String {
                stringify!($gate).into()
            }
            fn serialize(&self, _: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
                Ok(())
            }
            fn deserialize(_: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
                Ok($gate)
            }

            gate_evals!();

            fn generators(&self, row: usize, _: &[F]) -> Vec<WitnessGeneratorRef<F, D>> {
                vec![WitnessGeneratorRef::new($gen { row }.adapter())]
            }
            fn num_wires(&self) -> usize {
                $gate::WIRES
            }
            fn num_constants(&self) -> usize {
                0
            }
            fn degree(&self) -> usize {
                3
            }
            fn num_constraints(&self) -> usize {
                $gate::CONSTRAINTS
            }
        }

        /// Fills the row from its input wires with the gate's `witness`.
        #[derive(Clone, Debug, Default)]
        pub struct $gen {
            row: usize,
        }

        impl SimpleGenerator<F, D> for $gen {
            fn id(&self) -> String {
                stringify!($gen).into()
            }
            fn dependencies(&self) -> Vec<Target> {
                (0..$gate::INPUTS)
                    .map(|c| Target::wire(self.row, c))
                    .collect()
            }
            fn run_once(
                &self,
                w: &PartitionWitness<F>,
                out: &mut GeneratedValues<F>,
            ) -> Result<()> {
                set_row(self.row, w, out, &self.dependencies(), $gate::witness)
            }
            fn serialize(&self, dst: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
                dst.write_usize(self.row)
            }
            fn deserialize(src: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
                Ok($gen {
                    row: src.read_usize()?,
                })
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------

/// One round's `t1` and new `e`:
/// `t1 = h + kw + Σ1(e) + Ch(e, f, g)` (unreduced) and `e' = (d + t1) mod 2^32`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sha256RoundEGate;

impl Sha256RoundEGate {
    pub const E: usize = 0;
    pub const F: usize = 1;
    pub const G: usize = 2;
    pub const H: usize = 3;
    pub const D: usize = 4;
    pub const KW: usize = 5;
    /// The input wires `[e, f, g, h, d, kw]` are the first ones.
    const INPUTS: usize = 6;
    pub const T1: usize = 6;
    pub const E_NEW: usize = 7;
    const CARRY: usize = 8;
    const CARRY_BITS: usize = 3;
    const BITS_E: usize = 11;
    const BITS_F: usize = 43;
    const BITS_G: usize = 75;
    const WIRES: usize = 107;
    const CONSTRAINTS: usize = 3 * 33 + 3 + 2;

    fn eval<A: Alg>(&self, a: &mut A, w: &[A::V], out: &mut Vec<A::V>) {
        let (e, f, g) = (
            &w[Self::BITS_E..Self::BITS_E + 32],
            &w[Self::BITS_F..Self::BITS_F + 32],
            &w[Self::BITS_G..Self::BITS_G + 32],
        );
        decompose(a, w[Self::E], e, out);
        decompose(a, w[Self::F], f, out);
        decompose(a, w[Self::G], g, out);
        let c = carry(a, &w[Self::CARRY..Self::CARRY + Self::CARRY_BITS], out);
        let s1 = sigma(a, e, BIG_SIGMA1);
        let chv = ch(a, e, f, g);
        let t = a.add(w[Self::H], w[Self::KW]);
        let t = a.add(t, s1);
        let t = a.add(t, chv);
        out.push(a.sub(w[Self::T1], t));
        let sum = a.add(w[Self::D], w[Self::T1]);
        out.push(reduction(a, w[Self::E_NEW], c, sum));
    }

    /// The honest row for inputs `[e, f, g, h, d, kw]`.
    pub(crate) fn witness(inputs: &[F]) -> Vec<F> {
        let mut row = vec![F::ZERO; Self::WIRES];
        row[..Self::INPUTS].copy_from_slice(inputs);
        let (e, f, g) = (low32(inputs[0]), low32(inputs[1]), low32(inputs[2]));
        put_bits(&mut row, Self::BITS_E, e);
        put_bits(&mut row, Self::BITS_F, f);
        put_bits(&mut row, Self::BITS_G, g);
        let chv = (e & f) ^ (!e & g);
        let t1 = row[Self::H]
            + row[Self::KW]
            + F::from_canonical_u32(rotr_native(e, BIG_SIGMA1))
            + F::from_canonical_u32(chv);
        row[Self::T1] = t1;
        let (e_new, c) = split_sum(row[Self::D] + t1, Self::CARRY_BITS);
        row[Self::E_NEW] = e_new;
        put_carry(&mut row, Self::CARRY, Self::CARRY_BITS, c);
        row
    }
}

plain_gate_impl!(Sha256RoundEGate, Sha256RoundEGenerator);

// ---------------------------------------------------------------------------------------------

/// One round's new `a`: `a' = (t1 + Σ0(a) + Maj(a, b, c)) mod 2^32`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sha256RoundAGate;

impl Sha256RoundAGate {
    pub const A: usize = 0;
    pub const B: usize = 1;
    pub const C: usize = 2;
    pub const T1: usize = 3;
    pub const A_NEW: usize = 4;
    /// The input wires `[a, b, c, t1]` are the first ones.
    const INPUTS: usize = 4;
    const CARRY: usize = 5;
    const CARRY_BITS: usize = 3;
    const BITS_A: usize = 8;
    const BITS_B: usize = 40;
    const BITS_C: usize = 72;
    const WIRES: usize = 104;
    const CONSTRAINTS: usize = 3 * 33 + 3 + 1;

    fn eval<A: Alg>(&self, a: &mut A, w: &[A::V], out: &mut Vec<A::V>) {
        let (x, y, z) = (
            &w[Self::BITS_A..Self::BITS_A + 32],
            &w[Self::BITS_B..Self::BITS_B + 32],
            &w[Self::BITS_C..Self::BITS_C + 32],
        );
        decompose(a, w[Self::A], x, out);
        decompose(a, w[Self::B], y, out);
        decompose(a, w[Self::C], z, out);
        let c = carry(a, &w[Self::CARRY..Self::CARRY + Self::CARRY_BITS], out);
        let s0 = sigma(a, x, BIG_SIGMA0);
        let m = maj(a, x, y, z);
        let sum = a.add(w[Self::T1], s0);
        let sum = a.add(sum, m);
        out.push(reduction(a, w[Self::A_NEW], c, sum));
    }

    /// The honest row for inputs `[a, b, c, t1]`.
    pub(crate) fn witness(inputs: &[F]) -> Vec<F> {
        let mut row = vec![F::ZERO; Self::WIRES];
        row[..Self::INPUTS].copy_from_slice(inputs);
        let (x, y, z) = (low32(inputs[0]), low32(inputs[1]), low32(inputs[2]));
        put_bits(&mut row, Self::BITS_A, x);
        put_bits(&mut row, Self::BITS_B, y);
        put_bits(&mut row, Self::BITS_C, z);
        let m = (x & y) ^ (x & z) ^ (y & z);
        let sum = row[Self::T1]
            + F::from_canonical_u32(rotr_native(x, BIG_SIGMA0))
            + F::from_canonical_u32(m);
        let (a_new, c) = split_sum(sum, Self::CARRY_BITS);
        row[Self::A_NEW] = a_new;
        put_carry(&mut row, Self::CARRY, Self::CARRY_BITS, c);
        row
    }
}

plain_gate_impl!(Sha256RoundAGate, Sha256RoundAGenerator);

// ---------------------------------------------------------------------------------------------

/// One message-schedule word: `W_t = (σ1(W_{t-2}) + W_{t-7} + σ0(W_{t-15}) + W_{t-16}) mod 2^32`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sha256ScheduleGate;

impl Sha256ScheduleGate {
    pub const W2: usize = 0;
    pub const W7: usize = 1;
    pub const W15: usize = 2;
    pub const W16: usize = 3;
    pub const W_NEW: usize = 4;
    /// The input wires `[w2, w7, w15, w16]` are the first ones.
    const INPUTS: usize = 4;
    const CARRY: usize = 5;
    const CARRY_BITS: usize = 2;
    const BITS_W2: usize = 7;
    const BITS_W15: usize = 39;
    const WIRES: usize = 71;
    const CONSTRAINTS: usize = 2 * 33 + 2 + 1;

    fn eval<A: Alg>(&self, a: &mut A, w: &[A::V], out: &mut Vec<A::V>) {
        let (x2, x15) = (
            &w[Self::BITS_W2..Self::BITS_W2 + 32],
            &w[Self::BITS_W15..Self::BITS_W15 + 32],
        );
        decompose(a, w[Self::W2], x2, out);
        decompose(a, w[Self::W15], x15, out);
        let c = carry(a, &w[Self::CARRY..Self::CARRY + Self::CARRY_BITS], out);
        let s1 = sigma(a, x2, SMALL_SIGMA1);
        let s0 = sigma(a, x15, SMALL_SIGMA0);
        let sum = a.add(s1, w[Self::W7]);
        let sum = a.add(sum, s0);
        let sum = a.add(sum, w[Self::W16]);
        out.push(reduction(a, w[Self::W_NEW], c, sum));
    }

    /// The honest row for inputs `[w2, w7, w15, w16]`.
    pub(crate) fn witness(inputs: &[F]) -> Vec<F> {
        let mut row = vec![F::ZERO; Self::WIRES];
        row[..Self::INPUTS].copy_from_slice(inputs);
        let (x2, x15) = (low32(inputs[0]), low32(inputs[2]));
        put_bits(&mut row, Self::BITS_W2, x2);
        put_bits(&mut row, Self::BITS_W15, x15);
        let sum = F::from_canonical_u32(rotr_native(x2, SMALL_SIGMA1))
            + row[Self::W7]
            + F::from_canonical_u32(rotr_native(x15, SMALL_SIGMA0))
            + row[Self::W16];
        let (w_new, c) = split_sum(sum, Self::CARRY_BITS);
        row[Self::W_NEW] = w_new;
        put_carry(&mut row, Self::CARRY, Self::CARRY_BITS, c);
        row
    }
}

plain_gate_impl!(Sha256ScheduleGate, Sha256ScheduleGenerator);

#[cfg(test)]
mod tests {
    //! Each gate on honest rows (all constraints vanish) and on rows tampered by hand, the way
    //! a dishonest prover would fill them: the test names the constraint that refuses each.

    use plonky2::gates::gate_testing::{test_eval_fns, test_low_degree};
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::gadgets::gfp5::Native;
    use crate::C;

    fn constraints(eval: impl Fn(&mut Native<F>, &[F], &mut Vec<F>), row: &[F]) -> Vec<F> {
        let mut out = Vec::new();
        eval(&mut Native::base(), row, &mut out);
        out
    }

    /// Indices of the constraints a row breaks.
    fn broken(eval: impl Fn(&mut Native<F>, &[F], &mut Vec<F>), row: &[F]) -> Vec<usize> {
        constraints(eval, row)
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != F::ZERO)
            .map(|(i, _)| i)
            .collect()
    }

    fn e_eval(a: &mut Native<F>, w: &[F], out: &mut Vec<F>) {
        Sha256RoundEGate.eval(a, w, out)
    }
    fn a_eval(a: &mut Native<F>, w: &[F], out: &mut Vec<F>) {
        Sha256RoundAGate.eval(a, w, out)
    }
    fn s_eval(a: &mut Native<F>, w: &[F], out: &mut Vec<F>) {
        Sha256ScheduleGate.eval(a, w, out)
    }

    fn word(rng: &mut impl Rng) -> F {
        F::from_canonical_u32(rng.gen())
    }

    // Constraint indices: word k's booleanity is 33k..33k+32, its recomposition 33k+32, then
    // the carry bits, then the gate's sums.
    const RECOMPOSE_0: usize = 32;
    const E_T1: usize = 3 * 33 + 3;
    const E_REDUCTION: usize = E_T1 + 1;
    const A_REDUCTION: usize = 3 * 33 + 3;
    const S_REDUCTION: usize = 2 * 33 + 2;

    #[test]
    fn gates_have_the_declared_degree() {
        test_low_degree::<F, _, D>(Sha256RoundEGate);
        test_low_degree::<F, _, D>(Sha256RoundAGate);
        test_low_degree::<F, _, D>(Sha256ScheduleGate);
    }

    #[test]
    fn gate_evaluations_agree() -> Result<()> {
        test_eval_fns::<F, C, _, D>(Sha256RoundEGate)?;
        test_eval_fns::<F, C, _, D>(Sha256RoundAGate)?;
        test_eval_fns::<F, C, _, D>(Sha256ScheduleGate)
    }

    #[test]
    fn honest_rows_satisfy_every_constraint() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            // h and kw as large as a round can make them (kw = K + W, h a word).
            let e_in: Vec<F> = (0..6).map(|_| word(&mut rng)).collect();
            let row = Sha256RoundEGate::witness(&e_in);
            assert_eq!(broken(e_eval, &row), Vec::<usize>::new());
            let t1 = row[Sha256RoundEGate::T1];
            let a_in = [word(&mut rng), word(&mut rng), word(&mut rng), t1];
            assert_eq!(
                broken(a_eval, &Sha256RoundAGate::witness(&a_in)),
                Vec::<usize>::new()
            );
            let s_in: Vec<F> = (0..4).map(|_| word(&mut rng)).collect();
            assert_eq!(
                broken(s_eval, &Sha256ScheduleGate::witness(&s_in)),
                Vec::<usize>::new()
            );
        }
    }

    #[test]
    fn the_gates_compute_sha256_round_functions() {
        // e' and a' against a plain-integer round, on the FIPS 180-4 definitions.
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        for _ in 0..200 {
            let [a, b, c, d, e, f, g, h, w]: [u32; 9] = core::array::from_fn(|_| rng.gen());
            let k = K_SAMPLE;
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(k)
                .wrapping_add(w);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let (want_e, want_a) = (d.wrapping_add(t1), t1.wrapping_add(s0.wrapping_add(maj)));

            let kw = F::from_canonical_u32(k) + F::from_canonical_u32(w);
            let f32 = F::from_canonical_u32;
            let row_e = Sha256RoundEGate::witness(&[f32(e), f32(f), f32(g), f32(h), f32(d), kw]);
            assert_eq!(row_e[Sha256RoundEGate::E_NEW], f32(want_e));
            let t1f = row_e[Sha256RoundEGate::T1];
            let row_a = Sha256RoundAGate::witness(&[f32(a), f32(b), f32(c), t1f]);
            assert_eq!(row_a[Sha256RoundAGate::A_NEW], f32(want_a));

            let [w2, w7, w15, w16]: [u32; 4] = core::array::from_fn(|_| rng.gen());
            let sig1 = w2.rotate_right(17) ^ w2.rotate_right(19) ^ (w2 >> 10);
            let sig0 = w15.rotate_right(7) ^ w15.rotate_right(18) ^ (w15 >> 3);
            let want = sig1.wrapping_add(w7).wrapping_add(sig0).wrapping_add(w16);
            let row = Sha256ScheduleGate::witness(&[f32(w2), f32(w7), f32(w15), f32(w16)]);
            assert_eq!(row[Sha256ScheduleGate::W_NEW], f32(want));
        }
    }

    const K_SAMPLE: u32 = 0xc67178f2;

    #[test]
    fn a_flipped_bit_breaks_the_recomposition() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let inputs: Vec<F> = (0..6).map(|_| word(&mut rng)).collect();
        let mut row = Sha256RoundEGate::witness(&inputs);
        let bit = Sha256RoundEGate::BITS_E + 5;
        row[bit] = F::ONE - row[bit];
        // The bits no longer sum to e; t1, computed from the bits, no longer matches either.
        assert_eq!(broken(e_eval, &row), vec![RECOMPOSE_0, E_T1]);
    }

    #[test]
    fn a_non_boolean_bit_that_keeps_the_sum_breaks_booleanity() {
        // e = ...01 written with bit0 = 3, bit1 = 0... is caught even though the sum holds.
        let inputs = [1u32, 2, 3, 4, 5, 6].map(F::from_canonical_u32);
        let mut row = Sha256RoundEGate::witness(&inputs);
        // e = 1: bit0 = 1. Rewrite as bit0 = 1 + 2, bit1 = -1 (sum unchanged).
        row[Sha256RoundEGate::BITS_E] = F::from_canonical_u32(3);
        row[Sha256RoundEGate::BITS_E + 1] = -F::ONE;
        let b = broken(e_eval, &row);
        assert!(b.contains(&0) && b.contains(&1), "{b:?}");
        assert!(!b.contains(&RECOMPOSE_0));
    }

    #[test]
    fn a_wrong_t1_or_result_breaks_its_sum() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(10);
        let inputs: Vec<F> = (0..6).map(|_| word(&mut rng)).collect();
        let honest = Sha256RoundEGate::witness(&inputs);

        let mut row = honest.clone();
        row[Sha256RoundEGate::T1] += F::ONE;
        // t1 is also an input of the reduction, so e' no longer matches it either.
        assert_eq!(broken(e_eval, &row), vec![E_T1, E_REDUCTION]);

        let mut row = honest;
        row[Sha256RoundEGate::E_NEW] += F::ONE;
        assert_eq!(broken(e_eval, &row), vec![E_REDUCTION]);

        let a_in = [
            word(&mut rng),
            word(&mut rng),
            word(&mut rng),
            word(&mut rng),
        ];
        let mut row = Sha256RoundAGate::witness(&a_in);
        row[Sha256RoundAGate::A_NEW] += F::ONE;
        assert_eq!(broken(a_eval, &row), vec![A_REDUCTION]);

        let s_in = [
            word(&mut rng),
            word(&mut rng),
            word(&mut rng),
            word(&mut rng),
        ];
        let mut row = Sha256ScheduleGate::witness(&s_in);
        row[Sha256ScheduleGate::W_NEW] -= F::ONE;
        assert_eq!(broken(s_eval, &row), vec![S_REDUCTION]);
    }

    #[test]
    fn a_result_off_by_2_pow_32_passes_its_row_and_is_refused_by_the_next() {
        // The gates do not range-check their results (module docs): e' + 2^32 with carry - 1
        // satisfies this row, so the row that decomposes e' next must refuse it.
        let inputs = [
            0xffff_ffffu32,
            0xffff_ffff,
            0xffff_ffff,
            0xffff_ffff,
            0xffff_ffff,
            7,
        ]
        .map(F::from_canonical_u32);
        let honest = Sha256RoundEGate::witness(&inputs);
        let carry_of = |row: &[F]| {
            (0..Sha256RoundEGate::CARRY_BITS)
                .map(|i| row[Sha256RoundEGate::CARRY + i].to_canonical_u64() << i)
                .sum::<u64>()
        };
        let c = carry_of(&honest);
        assert!(c >= 1, "this input needs a carry");
        let mut row = honest.clone();
        row[Sha256RoundEGate::E_NEW] += F::from_canonical_u64(1 << 32);
        put_carry(
            &mut row,
            Sha256RoundEGate::CARRY,
            Sha256RoundEGate::CARRY_BITS,
            c - 1,
        );
        assert_eq!(broken(e_eval, &row), Vec::<usize>::new());

        // Next round: the forged e' is the new e. Whatever 32 boolean bits the prover puts
        // (here its low 32 bits), they sum below 2^32 and the recomposition refuses it.
        let forged = row[Sha256RoundEGate::E_NEW];
        let next_inputs = [
            forged, inputs[0], inputs[1], inputs[2], inputs[3], inputs[5],
        ];
        let next = Sha256RoundEGate::witness(&next_inputs);
        assert_eq!(broken(e_eval, &next), vec![RECOMPOSE_0]);
    }

    #[test]
    fn a_carry_above_its_bits_cannot_be_written() {
        // A schedule sum needs at most carry 3; the row has two carry bits. Claiming a result
        // 4 * 2^32 lower needs carry = carry + 4, which two boolean bits cannot hold: writing 4
        // into the top carry bit breaks its booleanity.
        let s_in = [0u32, 5, 0, 9].map(F::from_canonical_u32);
        let mut row = Sha256ScheduleGate::witness(&s_in);
        row[Sha256ScheduleGate::W_NEW] -= F::from_canonical_u64(4 << 32);
        row[Sha256ScheduleGate::CARRY + 1] = F::TWO;
        let b = broken(s_eval, &row);
        assert_eq!(b, vec![2 * 33 + 1]);
    }
}
