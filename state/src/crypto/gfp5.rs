//! GF(p^5) = GF(p)\[z\] / (z^5 - 3), the base field of ECgFp5 (p = 2^64 - 2^32 + 1).
//!
//! Elements are `c0 + c1 z + c2 z^2 + c3 z^3 + c4 z^4` with `ci` in Goldilocks. The
//! Frobenius map is cheap here (`z^p = ω z` with ω a fifth root of unity in GF(p)), which
//! makes inversion, the Legendre symbol and square roots cost one exponentiation in GF(p)
//! plus a few multiplications, as described in section 3 of the ECgFp5 paper.

use core::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use plonky2::field::types::{Field, PrimeField, PrimeField64};

use crate::hash::{canonical_from_u64, F};

/// An element of GF(p^5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GFp5(pub(crate) [F; 5]);

/// ω^i for i = 0..4, with ω = 3^((p-1)/5) = z^(p-1): the Frobenius map multiplies
/// coefficient i by ω^i.
const FROB1: [F; 5] = [
    F::ONE,
    GoldilocksConst(1041288259238279555).get(),
    GoldilocksConst(15820824984080659046).get(),
    GoldilocksConst(211587555138949697).get(),
    GoldilocksConst(1373043270956696022).get(),
];
/// ω^(2i): the square of the Frobenius map.
const FROB2: [F; 5] = [
    F::ONE,
    GoldilocksConst(15820824984080659046).get(),
    GoldilocksConst(1373043270956696022).get(),
    GoldilocksConst(1041288259238279555).get(),
    GoldilocksConst(211587555138949697).get(),
];

/// Builds a field constant in a `const` context (the value must be canonical).
struct GoldilocksConst(u64);
impl GoldilocksConst {
    const fn get(self) -> F {
        plonky2::field::goldilocks_field::GoldilocksField(self.0)
    }
}

/// Reduces `lo + carry * 2^128` modulo p. Since 2^96 = -1 (mod p), 2^128 = -2^32.
#[inline(always)]
fn reduce_wide(lo: u128, carry: u64) -> F {
    F::from_noncanonical_u128(lo) - F::from_canonical_u64(carry << 32)
}

/// Accumulates up to five 128-bit products, counting overflows of the u128 accumulator.
#[inline(always)]
fn dot(pairs: [(u64, u64); 5]) -> F {
    let mut acc: u128 = 0;
    let mut carry: u64 = 0;
    for (a, b) in pairs {
        let (s, o) = acc.overflowing_add(a as u128 * b as u128);
        acc = s;
        carry += o as u64;
    }
    reduce_wide(acc, carry)
}

#[inline(always)]
fn raw(x: F) -> u64 {
    // Goldilocks values are stored in [0, 2^64); products of two stay below 2^128.
    x.0
}

impl GFp5 {
    pub const ZERO: GFp5 = GFp5([F::ZERO; 5]);
    pub const ONE: GFp5 = GFp5([F::ONE, F::ZERO, F::ZERO, F::ZERO, F::ZERO]);

    /// Builds an element from five coefficients (constant term first); `None` if any is >= p,
    /// so every element has exactly one representation.
    pub fn from_u64s(c: [u64; 5]) -> Option<GFp5> {
        let mut out = [F::ZERO; 5];
        for (o, v) in out.iter_mut().zip(c) {
            *o = canonical_from_u64(v)?;
        }
        Some(GFp5(out))
    }

    /// `const` constructor for curve constants; every value must be below p.
    pub(crate) const fn from_canonical_const(c: [u64; 5]) -> GFp5 {
        GFp5([
            GoldilocksConst(c[0]).get(),
            GoldilocksConst(c[1]).get(),
            GoldilocksConst(c[2]).get(),
            GoldilocksConst(c[3]).get(),
            GoldilocksConst(c[4]).get(),
        ])
    }

    /// The five canonical coefficients, constant term first.
    pub fn to_u64s(&self) -> [u64; 5] {
        self.0.map(|x| x.to_canonical_u64())
    }

    /// The five coefficients as field elements (canonical), e.g. for hashing.
    pub fn to_field_elements(&self) -> [F; 5] {
        self.0.map(|x| F::from_canonical_u64(x.to_canonical_u64()))
    }

    /// Builds an element from its five coefficients (any field elements; the circuit's
    /// witness generation works on these).
    pub fn from_fields(c: [F; 5]) -> GFp5 {
        GFp5(c)
    }

    pub fn from_base(x: F) -> GFp5 {
        GFp5([x, F::ZERO, F::ZERO, F::ZERO, F::ZERO])
    }

    /// 40-byte little-endian encoding (coefficient 0 first).
    pub fn to_le_bytes(&self) -> [u8; 40] {
        let mut out = [0u8; 40];
        for (i, c) in self.to_u64s().iter().enumerate() {
            out[8 * i..8 * i + 8].copy_from_slice(&c.to_le_bytes());
        }
        out
    }

    /// Parses [`GFp5::to_le_bytes`]; `None` on a non-canonical coefficient.
    pub fn from_le_bytes(bytes: &[u8; 40]) -> Option<GFp5> {
        let mut c = [0u64; 5];
        for (i, ci) in c.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[8 * i..8 * i + 8]);
            *ci = u64::from_le_bytes(b);
        }
        GFp5::from_u64s(c)
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|c| c.is_zero())
    }

    #[inline]
    pub fn double(&self) -> GFp5 {
        GFp5(self.0.map(|c| c.double()))
    }

    /// Multiplication by a small integer.
    #[inline]
    pub fn mul_small(&self, k: u64) -> GFp5 {
        let k = F::from_canonical_u64(k);
        GFp5(self.0.map(|c| c * k))
    }

    /// Multiplication by z: (c0..c4) -> (3 c4, c0, c1, c2, c3).
    #[inline]
    pub fn mul_z(&self) -> GFp5 {
        let c = self.0;
        GFp5([c[4] * F::from_canonical_u64(3), c[0], c[1], c[2], c[3]])
    }

    #[inline]
    pub fn square(&self) -> GFp5 {
        let a = self.0;
        let d = [a[0].double(), a[1].double(), a[2].double(), a[3].double()];
        let three = F::from_canonical_u64(3);
        let (a3x3, a4x3) = (a[3] * three, a[4] * three);
        let (a3x6, a4x6) = (raw(a3x3.double()), raw(a4x3.double()));
        let (a3x3, a4x3) = (raw(a3x3), raw(a4x3));
        let r = |x: F| raw(x);
        GFp5([
            dot([
                (r(a[0]), r(a[0])),
                (r(a[1]), a4x6),
                (r(a[2]), a3x6),
                (0, 0),
                (0, 0),
            ]),
            dot([
                (r(a[0]), r(d[1])),
                (r(a[2]), a4x6),
                (r(a[3]), a3x3),
                (0, 0),
                (0, 0),
            ]),
            dot([
                (r(a[0]), r(d[2])),
                (r(a[1]), r(a[1])),
                (r(a[3]), a4x6),
                (0, 0),
                (0, 0),
            ]),
            dot([
                (r(a[0]), r(d[3])),
                (r(a[1]), r(d[2])),
                (r(a[4]), a4x3),
                (0, 0),
                (0, 0),
            ]),
            dot([
                (r(d[0]), r(a[4])),
                (r(d[1]), r(a[3])),
                (r(a[2]), r(a[2])),
                (0, 0),
                (0, 0),
            ]),
        ])
    }

    /// `self^(2^k)`.
    pub fn square_n(&self, k: usize) -> GFp5 {
        let mut x = *self;
        for _ in 0..k {
            x = x.square();
        }
        x
    }

    /// The Frobenius map x -> x^p.
    #[inline]
    pub fn frobenius(&self) -> GFp5 {
        let c = self.0;
        GFp5([
            c[0],
            c[1] * FROB1[1],
            c[2] * FROB1[2],
            c[3] * FROB1[3],
            c[4] * FROB1[4],
        ])
    }

    /// x -> x^(p^2).
    #[inline]
    pub fn frobenius2(&self) -> GFp5 {
        let c = self.0;
        GFp5([
            c[0],
            c[1] * FROB2[1],
            c[2] * FROB2[2],
            c[3] * FROB2[3],
            c[4] * FROB2[4],
        ])
    }

    /// `self^e` for a 64-bit exponent (square-and-multiply; variable time in `e` only).
    pub fn exp_u64(&self, e: u64) -> GFp5 {
        let mut acc = GFp5::ONE;
        for i in (0..64).rev() {
            acc = acc.square();
            if (e >> i) & 1 == 1 {
                acc *= *self;
            }
        }
        acc
    }

    /// Returns `(a^(p + p^2 + p^3 + p^4), N(a))` where `N(a) = a^(1+p+p^2+p^3+p^4)` is the
    /// norm, which lies in GF(p).
    fn norm_parts(&self) -> (GFp5, F) {
        let t1 = self.frobenius() * self.frobenius2(); // a^(p + p^2)
        let t2 = t1.frobenius2(); // a^(p^3 + p^4)
        let t = t1 * t2;
        let a = self.0;
        let tt = t.0;
        let three = F::from_canonical_u64(3);
        // Only the constant coefficient of a * t is needed: the product is in GF(p).
        let n = a[0] * tt[0] + three * (a[1] * tt[4] + a[2] * tt[3] + a[3] * tt[2] + a[4] * tt[1]);
        (t, n)
    }

    /// The norm to GF(p).
    pub fn norm(&self) -> F {
        self.norm_parts().1
    }

    /// Multiplicative inverse; zero maps to zero (convenient for encodings of the neutral).
    pub fn inverse_or_zero(&self) -> GFp5 {
        let (t, n) = self.norm_parts();
        match n.try_inverse() {
            Some(ninv) => GFp5(t.0.map(|c| c * ninv)),
            None => GFp5::ZERO,
        }
    }

    /// Legendre symbol: 0 for zero, 1 for a non-zero square, -1 otherwise.
    /// An element is a square in GF(p^5) iff its norm is a square in GF(p).
    pub fn legendre(&self) -> i8 {
        let n = self.norm();
        legendre_base(n)
    }

    /// A square root, if one exists. Both roots are valid; which one is returned is
    /// unspecified (callers that need a canonical root must normalise).
    ///
    /// With r = (p^5 - 1)/(p - 1) and e = a^((r-1)/2), f = a e^2 = N(a) lies in GF(p);
    /// if g = sqrt(f) exists then (g a e / f)^2 = a. The exponent (r-1)/2 equals
    /// 2 + ((p-1)/2)(4 + 3p + 2p^2 + p^3), so e costs one 63-bit exponentiation plus
    /// Frobenius maps.
    pub fn sqrt(&self) -> Option<GFp5> {
        if self.is_zero() {
            return Some(GFp5::ZERO);
        }
        let b = self.exp_u64((crate::hash::P - 1) / 2);
        let b2 = b.square();
        let b3 = b2 * b;
        let b4 = b2.square();
        let e = self.square() * b4 * b3.frobenius() * b2.frobenius2() * b.frobenius().frobenius2();
        let f = *self * e.square();
        debug_assert!(f.0[1..].iter().all(|c| c.is_zero()));
        let f0 = f.0[0];
        let g = sqrt_base(f0)?;
        let finv = f0.try_inverse()?;
        let k = g * finv;
        let r = *self * e;
        Some(GFp5(r.0.map(|c| c * k)))
    }
}

/// Legendre symbol in GF(p) via Euler's criterion.
fn legendre_base(x: F) -> i8 {
    if x.is_zero() {
        return 0;
    }
    let l = x.exp_u64((crate::hash::P - 1) / 2);
    if l.is_one() {
        1
    } else {
        -1
    }
}

/// Square root in GF(p) (Tonelli-Shanks through plonky2's generic implementation).
fn sqrt_base(x: F) -> Option<F> {
    if legendre_base(x) < 0 {
        return None;
    }
    let r = PrimeField::sqrt(&x)?;
    (r * r == x).then_some(r)
}

impl Add for GFp5 {
    type Output = GFp5;
    #[inline]
    fn add(self, o: GFp5) -> GFp5 {
        GFp5([
            self.0[0] + o.0[0],
            self.0[1] + o.0[1],
            self.0[2] + o.0[2],
            self.0[3] + o.0[3],
            self.0[4] + o.0[4],
        ])
    }
}

impl Sub for GFp5 {
    type Output = GFp5;
    #[inline]
    fn sub(self, o: GFp5) -> GFp5 {
        GFp5([
            self.0[0] - o.0[0],
            self.0[1] - o.0[1],
            self.0[2] - o.0[2],
            self.0[3] - o.0[3],
            self.0[4] - o.0[4],
        ])
    }
}

impl Neg for GFp5 {
    type Output = GFp5;
    #[inline]
    fn neg(self) -> GFp5 {
        GFp5(self.0.map(|c| -c))
    }
}

impl Mul for GFp5 {
    type Output = GFp5;
    /// Schoolbook product with the reduction z^5 = 3 folded in: the wrapped terms use
    /// 3 b_j, and each output coefficient is a single sum of five 128-bit products reduced
    /// once.
    #[inline]
    fn mul(self, o: GFp5) -> GFp5 {
        let a = self.0.map(raw);
        let b = o.0.map(raw);
        let three = F::from_canonical_u64(3);
        let b3 = [
            0,
            raw(o.0[1] * three),
            raw(o.0[2] * three),
            raw(o.0[3] * three),
            raw(o.0[4] * three),
        ];
        GFp5([
            dot([
                (a[0], b[0]),
                (a[1], b3[4]),
                (a[2], b3[3]),
                (a[3], b3[2]),
                (a[4], b3[1]),
            ]),
            dot([
                (a[0], b[1]),
                (a[1], b[0]),
                (a[2], b3[4]),
                (a[3], b3[3]),
                (a[4], b3[2]),
            ]),
            dot([
                (a[0], b[2]),
                (a[1], b[1]),
                (a[2], b[0]),
                (a[3], b3[4]),
                (a[4], b3[3]),
            ]),
            dot([
                (a[0], b[3]),
                (a[1], b[2]),
                (a[2], b[1]),
                (a[3], b[0]),
                (a[4], b3[4]),
            ]),
            dot([
                (a[0], b[4]),
                (a[1], b[3]),
                (a[2], b[2]),
                (a[3], b[1]),
                (a[4], b[0]),
            ]),
        ])
    }
}

impl AddAssign for GFp5 {
    #[inline]
    fn add_assign(&mut self, o: GFp5) {
        *self = *self + o;
    }
}
impl SubAssign for GFp5 {
    #[inline]
    fn sub_assign(&mut self, o: GFp5) {
        *self = *self - o;
    }
}
impl MulAssign for GFp5 {
    #[inline]
    fn mul_assign(&mut self, o: GFp5) {
        *self = *self * o;
    }
}

impl core::fmt::Debug for GFp5 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "GFp5{:?}", self.to_u64s())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn rnd(rng: &mut rand::rngs::StdRng) -> GFp5 {
        GFp5::from_u64s([0; 5].map(|_| rng.gen_range(0..crate::hash::P))).unwrap()
    }

    /// Reference product by plain polynomial multiplication and reduction, no tricks.
    fn mul_ref(a: GFp5, b: GFp5) -> GFp5 {
        let mut prod = [F::ZERO; 9];
        for i in 0..5 {
            for j in 0..5 {
                prod[i + j] += a.0[i] * b.0[j];
            }
        }
        let three = F::from_canonical_u64(3);
        let mut out = [F::ZERO; 5];
        for (k, v) in prod.iter().enumerate() {
            if k < 5 {
                out[k] += *v;
            } else {
                out[k - 5] += three * *v;
            }
        }
        GFp5(out)
    }

    #[test]
    fn frobenius_constants_are_powers_of_three() {
        let omega = F::from_canonical_u64(3).exp_u64((crate::hash::P - 1) / 5);
        for i in 0..5 {
            assert_eq!(FROB1[i], omega.exp_u64(i as u64));
            assert_eq!(FROB2[i], omega.exp_u64(2 * i as u64));
        }
        assert!(!omega.is_one());
    }

    #[test]
    fn mul_square_match_reference_including_extreme_values() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let pm1 = crate::hash::P - 1;
        let mut cases = vec![(
            GFp5::from_u64s([pm1; 5]).unwrap(),
            GFp5::from_u64s([pm1; 5]).unwrap(),
        )];
        for _ in 0..200 {
            cases.push((rnd(&mut rng), rnd(&mut rng)));
        }
        for (a, b) in cases {
            assert_eq!(a * b, mul_ref(a, b));
            assert_eq!(a.square(), mul_ref(a, a));
        }
    }

    #[test]
    fn frobenius_is_pth_power() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let a = rnd(&mut rng);
        // a^p computed by square-and-multiply.
        assert_eq!(a.frobenius(), a.exp_u64(crate::hash::P));
        assert_eq!(a.frobenius2(), a.frobenius().frobenius());
    }

    #[test]
    fn inverse_sqrt_legendre() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        assert_eq!(GFp5::ZERO.inverse_or_zero(), GFp5::ZERO);
        assert_eq!(GFp5::ZERO.legendre(), 0);
        let mut squares = 0;
        for _ in 0..50 {
            let a = rnd(&mut rng);
            assert_eq!(a * a.inverse_or_zero(), GFp5::ONE);
            let s = a.square();
            assert_eq!(s.legendre(), 1);
            let r = s.sqrt().expect("a square has a root");
            assert!(r == a || r == -a);
            match a.legendre() {
                1 => {
                    squares += 1;
                    assert_eq!(a.sqrt().unwrap().square(), a);
                }
                -1 => assert!(a.sqrt().is_none()),
                _ => unreachable!(),
            }
        }
        // Half the elements are squares; 50 draws with none or all would be astronomically rare.
        assert!(squares > 5 && squares < 45);
    }

    #[test]
    fn non_canonical_rejected() {
        assert!(GFp5::from_u64s([crate::hash::P, 0, 0, 0, 0]).is_none());
        assert!(GFp5::from_u64s([0, 0, 0, 0, u64::MAX]).is_none());
        let x = GFp5::from_u64s([1, 2, 3, 4, crate::hash::P - 1]).unwrap();
        assert_eq!(GFp5::from_le_bytes(&x.to_le_bytes()), Some(x));
    }
}
