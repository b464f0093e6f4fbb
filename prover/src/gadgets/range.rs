//! Range checks and exact arithmetic on bounded integers.
//!
//! Goldilocks has `p = 2^64 - 2^32 + 1 < 2^64`, so the sign of a difference of two values below
//! 2^63 cannot be read from one field element (the 2^64 - 1 possible differences do not fit in
//! p residues): `b - a` range-checked to 63 bits accepts some `a > b` near the top of the range,
//! and `x + y` can wrap past p. Every comparison and every checked sum here therefore works on
//! two limbs, a low 32-bit and a high 31-bit one, with an explicit carry or borrow bit, where
//! nothing can wrap.
//!
//! A [`U63Target`] is a value `< 2^63` together with those limbs and its 63 little-endian bits
//! (the bits come for free from the limbs' range checks and feed the pubdata encoding).
//! Row costs (standard recursion config, one `BaseSumGate` row per range check):
//! [`range_check_u63`] 2, [`add_u63`] 2, [`add_u63_overflow`] 3, [`sub_u63`] 2, [`is_le_u63`] 3.

use plonky2::field::types::{Field, PrimeField64};
use plonky2::iop::generator::{GeneratedValues, SimpleGenerator};
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartitionWitness, Witness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::CommonCircuitData;
use plonky2::util::serialization::{Buffer, IoResult, Read, Write};

use crate::{D, F};

const TWO_32: u64 = 1 << 32;
const TWO_31: u64 = 1 << 31;

/// A value `< 2^63`: `value = lo + 2^32 hi` with `lo < 2^32`, `hi < 2^31`; `bits` are its 63
/// little-endian bits (`bits[0..32]` of `lo`, `bits[32..63]` of `hi`).
#[derive(Clone, Debug)]
pub struct U63Target {
    pub value: Target,
    pub lo: Target,
    pub hi: Target,
    pub bits: Vec<BoolTarget>,
}

impl U63Target {
    /// The 64 little-endian bits of the value's `LE64` encoding (the top bit is zero).
    pub fn bits64(&self, b: &mut CircuitBuilder<F, D>) -> Vec<BoolTarget> {
        let mut v = self.bits.clone();
        v.push(b._false());
        v
    }
}

/// Witness generator: `low = x mod 2^n_log`, `high = x >> n_log` on the canonical value of `x`.
#[derive(Debug, Default)]
pub struct SplitGenerator {
    x: Target,
    n_log: usize,
    low: Target,
    high: Target,
}

impl SimpleGenerator<F, D> for SplitGenerator {
    fn id(&self) -> String {
        "rollup::SplitGenerator".to_string()
    }

    fn dependencies(&self) -> Vec<Target> {
        vec![self.x]
    }

    fn run_once(
        &self,
        witness: &PartitionWitness<F>,
        out: &mut GeneratedValues<F>,
    ) -> anyhow::Result<()> {
        let v = witness.get_target(self.x).to_canonical_u64();
        let mask = if self.n_log >= 64 {
            u64::MAX
        } else {
            (1u64 << self.n_log) - 1
        };
        out.set_target(self.low, F::from_canonical_u64(v & mask))?;
        let high = if self.n_log >= 64 { 0 } else { v >> self.n_log };
        out.set_target(self.high, F::from_canonical_u64(high))
    }

    fn serialize(&self, dst: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        dst.write_target(self.x)?;
        dst.write_usize(self.n_log)?;
        dst.write_target(self.low)?;
        dst.write_target(self.high)
    }

    fn deserialize(src: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(SplitGenerator {
            x: src.read_target()?,
            n_log: src.read_usize()?,
            low: src.read_target()?,
            high: src.read_target()?,
        })
    }
}

/// Witnesses `(low, high)` with `x = low + 2^n_log high` (constrained) and nothing else: the
/// caller range-checks both parts.
pub fn split_at(b: &mut CircuitBuilder<F, D>, x: Target, n_log: usize) -> (Target, Target) {
    let low = b.add_virtual_target();
    let high = b.add_virtual_target();
    b.add_simple_generator(SplitGenerator {
        x,
        n_log,
        low,
        high,
    });
    let pow = b.constant(F::from_canonical_u64(1u64 << n_log));
    let recomposed = b.mul_add(high, pow, low);
    b.connect(x, recomposed);
    (low, high)
}

/// A boolean witnessed by [`split_at`] (constrained to be 0 or 1 with one arithmetic op).
fn split_bit(b: &mut CircuitBuilder<F, D>, x: Target, n_log: usize) -> (Target, BoolTarget) {
    let (low, high) = split_at(b, x, n_log);
    let bit = BoolTarget::new_unsafe(high);
    b.assert_bool(bit);
    (low, bit)
}

/// Constrains `x < 2^63` and returns its limbs and bits (2 rows).
pub fn range_check_u63(b: &mut CircuitBuilder<F, D>, x: Target) -> U63Target {
    let (lo, hi) = split_at(b, x, 32);
    let mut bits = b.split_le(lo, 32);
    bits.extend(b.split_le(hi, 31));
    U63Target {
        value: x,
        lo,
        hi,
        bits,
    }
}

/// The 64 little-endian bits of the canonical representative of `x` (2 rows): `x = lo + 2^32
/// hi` with both limbs below 2^32 and `(lo, hi)` not encoding a value `>= p` (if `hi = 2^32 -
/// 1` then `lo = 0`), so the bits are exactly those of `x.to_canonical_u64()`.
pub fn range_check_u64(b: &mut CircuitBuilder<F, D>, x: Target) -> Vec<BoolTarget> {
    let (lo, hi) = split_at(b, x, 32);
    let mut bits = b.split_le(lo, 32);
    bits.extend(b.split_le(hi, 32));
    let max_hi = b.constant(F::from_canonical_u64(TWO_32 - 1));
    let hi_is_max = b.is_equal(hi, max_hi);
    let bad = b.mul(hi_is_max.target, lo);
    b.assert_zero(bad);
    bits
}

/// Limbs of a value assembled from a low limb `< 2^32` and a high limb `< 2^31` that are
/// already range-checked.
fn assemble(
    b: &mut CircuitBuilder<F, D>,
    lo: Target,
    hi: Target,
    bits: Vec<BoolTarget>,
) -> U63Target {
    let two32 = b.constant(F::from_canonical_u64(TWO_32));
    let value = b.mul_add(hi, two32, lo);
    U63Target {
        value,
        lo,
        hi,
        bits,
    }
}

/// Low limb and carry of `x.lo + y.lo` (1 row).
fn add_low(
    b: &mut CircuitBuilder<F, D>,
    x: &U63Target,
    y: &U63Target,
) -> (Target, Vec<BoolTarget>, BoolTarget) {
    let s = b.add(x.lo, y.lo);
    let (lo, carry) = split_bit(b, s, 32);
    let bits = b.split_le(lo, 32);
    (lo, bits, carry)
}

/// `x + y`, constrained to be `<= 2^63 - 1` (2 rows).
pub fn add_u63(b: &mut CircuitBuilder<F, D>, x: &U63Target, y: &U63Target) -> U63Target {
    let (lo, mut bits, carry) = add_low(b, x, y);
    let h = b.add(x.hi, y.hi);
    let hi = b.add(h, carry.target);
    bits.extend(b.split_le(hi, 31));
    assemble(b, lo, hi, bits)
}

/// `x + y` and whether it exceeds `2^63 - 1` (3 rows). When it does, the returned value is
/// `x + y - 2^63` and must not be used.
pub fn add_u63_overflow(
    b: &mut CircuitBuilder<F, D>,
    x: &U63Target,
    y: &U63Target,
) -> (U63Target, BoolTarget) {
    let (lo, mut bits, carry) = add_low(b, x, y);
    let h = b.add(x.hi, y.hi);
    let h = b.add(h, carry.target); // < 2^32
    let (hi, overflow) = split_bit(b, h, 31);
    bits.extend(b.split_le(hi, 31));
    (assemble(b, lo, hi, bits), overflow)
}

/// Low limb of `x - y` and the "no borrow" bit (1 row).
fn sub_low(
    b: &mut CircuitBuilder<F, D>,
    x: &U63Target,
    y: &U63Target,
) -> (Target, Vec<BoolTarget>, BoolTarget) {
    let two32 = b.constant(F::from_canonical_u64(TWO_32));
    let d = b.sub(x.lo, y.lo);
    let t = b.add(d, two32); // in [1, 2^33)
    let (lo, no_borrow) = split_bit(b, t, 32);
    let bits = b.split_le(lo, 32);
    (lo, bits, no_borrow)
}

/// `x - y`, constrained to be `>= 0`, i.e. `y <= x` (2 rows).
pub fn sub_u63(b: &mut CircuitBuilder<F, D>, x: &U63Target, y: &U63Target) -> U63Target {
    let (lo, mut bits, no_borrow) = sub_low(b, x, y);
    // hi = x.hi - y.hi - (1 - no_borrow), in [-2^31, 2^31): a 31-bit range check rejects < 0.
    let d = b.sub(x.hi, y.hi);
    let d = b.add(d, no_borrow.target);
    let one = b.one();
    let hi = b.sub(d, one);
    bits.extend(b.split_le(hi, 31));
    assemble(b, lo, hi, bits)
}

/// Whether `a <= b` (3 rows), sound in both directions.
pub fn is_le_u63(bld: &mut CircuitBuilder<F, D>, a: &U63Target, b: &U63Target) -> BoolTarget {
    let (_lo, _bits, no_borrow) = sub_low(bld, b, a);
    // u = b.hi - a.hi - (1 - no_borrow) + 2^31 in [0, 2^32); bit 31 is set iff b - a >= 0.
    let d = bld.sub(b.hi, a.hi);
    let d = bld.add(d, no_borrow.target);
    let off = bld.constant(F::from_canonical_u64(TWO_31 - 1));
    let u = bld.add(d, off);
    let (hi, ge) = split_bit(bld, u, 31);
    bld.range_check(hi, 31);
    ge
}

/// Constrains `a <= b` (2 rows).
pub fn assert_le_u63(bld: &mut CircuitBuilder<F, D>, a: &U63Target, b: &U63Target) {
    sub_u63(bld, b, a);
}

/// `flag * x` as a [`U63Target`] for a boolean `flag`: the limbs scale with it, so they stay
/// within their widths (three arithmetic operations, no bits).
pub fn scale_u63(b: &mut CircuitBuilder<F, D>, flag: BoolTarget, x: &U63Target) -> U63Target {
    U63Target {
        value: b.mul(flag.target, x.value),
        lo: b.mul(flag.target, x.lo),
        hi: b.mul(flag.target, x.hi),
        bits: vec![],
    }
}

/// A constant as a [`U63Target`] (no rows beyond constants).
pub fn constant_u63(b: &mut CircuitBuilder<F, D>, v: u64) -> U63Target {
    assert!(v < 1 << 63);
    let lo = b.constant(F::from_canonical_u64(v & (TWO_32 - 1)));
    let hi = b.constant(F::from_canonical_u64(v >> 32));
    let bits = (0..63)
        .map(|i| b.constant_bool((v >> i) & 1 == 1))
        .collect();
    let value = b.constant(F::from_canonical_u64(v));
    U63Target {
        value,
        lo,
        hi,
        bits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plonky2::iop::witness::PartialWitness;
    use plonky2::plonk::circuit_data::CircuitConfig;

    use crate::C;

    const MAX: u64 = (1 << 63) - 1;
    const P: u64 = 0xffff_ffff_0000_0001;

    /// Builds a circuit over two inputs with `f`, proves it with `(x, y)`; true iff it proves
    /// and verifies.
    fn run(f: &dyn Fn(&mut CircuitBuilder<F, D>, Target, Target), x: u64, y: u64) -> bool {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let tx = b.add_virtual_target();
        let ty = b.add_virtual_target();
        f(&mut b, tx, ty);
        let data = b.build::<C>();
        let mut pw = PartialWitness::new();
        pw.set_target(tx, F::from_noncanonical_u64(x)).unwrap();
        pw.set_target(ty, F::from_noncanonical_u64(y)).unwrap();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| data.prove(pw)));
        match res {
            Ok(Ok(proof)) => data.verify(proof).is_ok(),
            _ => false,
        }
    }

    fn u63_pair(b: &mut CircuitBuilder<F, D>, x: Target, y: Target) -> (U63Target, U63Target) {
        (range_check_u63(b, x), range_check_u63(b, y))
    }

    #[test]
    fn u63_range() {
        let f = |b: &mut CircuitBuilder<F, D>, x: Target, _y: Target| {
            range_check_u63(b, x);
        };
        assert!(run(&f, 0, 0));
        assert!(run(&f, MAX, 0));
        assert!(!run(&f, MAX + 1, 0));
        assert!(!run(&f, P - 1, 0));
    }

    #[test]
    fn u64_bits_are_canonical() {
        let f = |b: &mut CircuitBuilder<F, D>, x: Target, y: Target| {
            let bits = range_check_u64(b, x);
            let s = b.le_sum(bits[..32].iter());
            let lo = b.le_sum(bits[32..].iter());
            let two32 = b.constant(F::from_canonical_u64(TWO_32));
            let v = b.mul_add(lo, two32, s);
            b.connect(v, y);
        };
        assert!(run(&f, P - 1, P - 1));
        assert!(run(&f, 5, 5));
        assert!(run(&f, 1 << 40, 1 << 40));
    }

    #[test]
    fn le_assert_and_flag() {
        let assert_le = |b: &mut CircuitBuilder<F, D>, x: Target, y: Target| {
            let (x, y) = u63_pair(b, x, y);
            assert_le_u63(b, &x, &y);
        };
        for (x, y, ok) in [
            (0, 0, true),
            (3, 5, true),
            (5, 3, false),
            (MAX, MAX, true),
            (0, MAX, true),
            (MAX, 0, false),
            // The aliasing region of a single-element check: a - b > p - 2^63.
            (MAX, 1, false),
            (MAX - 1, 0, false),
            (1 << 32, (1 << 32) - 1, false),
        ] {
            assert_eq!(run(&assert_le, x, y), ok, "assert {x} <= {y}");
        }
        for (x, y) in [
            (0u64, 0u64),
            (3, 5),
            (5, 3),
            (MAX, 0),
            (0, MAX),
            (MAX, 1),
            (7 << 32, 6 << 32),
        ] {
            let expect = x <= y;
            let flag = move |b: &mut CircuitBuilder<F, D>, tx: Target, ty: Target| {
                let (xx, yy) = u63_pair(b, tx, ty);
                let le = is_le_u63(b, &xx, &yy);
                let want = b.constant_bool(expect);
                b.connect(le.target, want.target);
            };
            assert!(run(&flag, x, y), "flag {x} <= {y}");
            let wrong = move |b: &mut CircuitBuilder<F, D>, tx: Target, ty: Target| {
                let (xx, yy) = u63_pair(b, tx, ty);
                let le = is_le_u63(b, &xx, &yy);
                let want = b.constant_bool(!expect);
                b.connect(le.target, want.target);
            };
            assert!(!run(&wrong, x, y), "wrong flag {x} <= {y}");
        }
    }

    #[test]
    fn add_and_sub() {
        let add = |b: &mut CircuitBuilder<F, D>, x: Target, y: Target| {
            let (x, y) = u63_pair(b, x, y);
            let s = add_u63(b, &x, &y);
            let v = b.add(x.value, y.value);
            b.connect(s.value, v);
        };
        assert!(run(&add, 1, 2));
        assert!(run(&add, MAX, 0));
        assert!(run(&add, MAX - 5, 5));
        assert!(!run(&add, MAX, 1));
        assert!(!run(&add, MAX, MAX));
        // The sum wraps past p here; a single-element check would accept it.
        assert!(!run(&add, MAX, P - 1 - MAX));
        let ovf = |b: &mut CircuitBuilder<F, D>, x: Target, y: Target| {
            let (x, y) = u63_pair(b, x, y);
            let (_s, o) = add_u63_overflow(b, &x, &y);
            b.assert_one(o.target);
        };
        assert!(run(&ovf, MAX, 1));
        assert!(run(&ovf, MAX, MAX));
        assert!(!run(&ovf, MAX - 1, 1));
        let sub = |b: &mut CircuitBuilder<F, D>, x: Target, y: Target| {
            let (x, y) = u63_pair(b, x, y);
            let d = sub_u63(b, &x, &y);
            let v = b.sub(x.value, y.value);
            b.connect(d.value, v);
        };
        assert!(run(&sub, 5, 3));
        assert!(run(&sub, MAX, MAX));
        assert!(run(&sub, MAX, 0));
        assert!(!run(&sub, 3, 5));
        assert!(!run(&sub, 0, MAX));
        assert!(!run(&sub, 1, MAX));
    }
}
