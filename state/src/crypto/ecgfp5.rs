//! ECgFp5: the prime-order group of Pornin (eprint 2022/274) on the double-odd curve
//! `y^2 = x (x^2 + a x + b)` over GF(p^5), with `a = 2` and `b = 263 z`.
//!
//! The curve has order 2n (n prime, 319 bits). The group is the set of points that are *not*
//! n-torsion; its neutral element is the curve's point of order two, N = (0, 0), and the
//! group law is P + Q + N on the curve. Points are encoded by `w = y / x` (N encodes to 0).
//!
//! Internally points use fractional (x, u) coordinates `(X : Z : U : T)` with `x = X/Z` and
//! `u = x/y = U/T` (u = 0 for N). In these coordinates the addition formula is complete: one
//! formula covers doubling and the neutral, so there are no data-dependent branches.

use core::ops::{Add, AddAssign, Mul, Neg, Sub};
use std::sync::OnceLock;

pub use super::gfp5::GFp5;
pub use super::scalar::Scalar;

/// `b = 263 z`; only ever used through [`mul_b`].
const B_MUL: u64 = 263;

/// Multiplies by the curve constant b = 263 z (a shift with wrap-around, then a small
/// multiplication: much cheaper than a general product).
#[inline]
fn mul_b(v: GFp5) -> GFp5 {
    v.mul_z().mul_small(B_MUL)
}

/// A group element in fractional (x, u) coordinates. Z and T are never zero.
#[derive(Clone, Copy)]
pub struct Point {
    x: GFp5,
    z: GFp5,
    u: GFp5,
    t: GFp5,
}

/// A group element with Z = T = 1, for precomputed tables (cheaper mixed additions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AffinePoint {
    x: GFp5,
    u: GFp5,
}

impl AffinePoint {
    pub const NEUTRAL: AffinePoint = AffinePoint {
        x: GFp5::ZERO,
        u: GFp5::ZERO,
    };

    #[inline]
    fn neg(&self) -> AffinePoint {
        AffinePoint {
            x: self.x,
            u: -self.u,
        }
    }

    /// Constant-time conditional replacement: `self = other` if `choice == 1`.
    #[inline]
    fn cmov(&mut self, other: &AffinePoint, choice: u64) {
        cmov_gfp5(&mut self.x, &other.x, choice);
        cmov_gfp5(&mut self.u, &other.u, choice);
    }
}

#[inline]
fn cmov_gfp5(dst: &mut GFp5, src: &GFp5, choice: u64) {
    let mask = choice.wrapping_neg();
    for i in 0..5 {
        let a = dst.0[i].0;
        let b = src.0[i].0;
        dst.0[i].0 = a ^ (mask & (a ^ b));
    }
}

/// 1 if `a == b`, else 0, without branching.
#[inline]
fn ct_eq_u64(a: u64, b: u64) -> u64 {
    let x = a ^ b;
    // (x | -x) has its top bit set iff x != 0.
    1 ^ ((x | x.wrapping_neg()) >> 63)
}

impl Point {
    /// The neutral element N = (0, 0): x = 0, u = 0.
    pub const NEUTRAL: Point = Point {
        x: GFp5::ZERO,
        z: GFp5::ONE,
        u: GFp5::ZERO,
        t: GFp5::ONE,
    };

    /// The conventional generator: the unique group element with `w = y/x = 4`.
    pub const GENERATOR: Point = Point {
        x: GFp5::from_canonical_const([
            12883135586176881569,
            4356519642755055268,
            5248930565894896907,
            2165973894480315022,
            2448410071095648785,
        ]),
        z: GFp5::ONE,
        u: GFp5::ONE,
        t: GFp5::from_canonical_const([4, 0, 0, 0, 0]),
    };

    /// Decodes `w`; `None` if `w` is not the encoding of a group element.
    ///
    /// For w != 0 the point satisfies `x^2 - (w^2 - a) x + b = 0`. Its discriminant
    /// `(w^2 - a)^2 - 4b` must be a square; of the two roots (their product is b, a
    /// non-square) exactly one is a non-square, and that one is the group element's x.
    pub fn decode(w: GFp5) -> Option<Point> {
        if w.is_zero() {
            return Some(Point::NEUTRAL);
        }
        let e = w.square() - GFp5::from_base(plonky2::field::types::Field::TWO);
        let delta = e.square() - mul_b(GFp5::ONE).mul_small(4);
        let r = delta.sqrt()?;
        let half = GFp5::from_base(<crate::hash::F as plonky2::field::types::Field>::TWO)
            .inverse_or_zero();
        let x1 = (e + r) * half;
        let x2 = (e - r) * half;
        let x = if x1.legendre() == -1 { x1 } else { x2 };
        // Belt and braces: the chosen root must be a non-square (it always is when delta is
        // a non-zero square; delta = 0 would give a double root, which cannot happen for this
        // curve, but reject rather than return a point outside the group).
        if x.legendre() != -1 {
            return None;
        }
        Some(Point {
            x,
            z: GFp5::ONE,
            u: GFp5::ONE,
            t: w,
        })
    }

    /// The canonical encoding `w = y/x = T/U` (0 for the neutral).
    pub fn encode(&self) -> GFp5 {
        self.t * self.u.inverse_or_zero()
    }

    /// The affine coordinates `(x, u) = (X/Z, U/T)` (the neutral is (0, 0)). The circuit
    /// works on these: its curve gates take and produce affine points.
    pub fn to_affine(&self) -> (GFp5, GFp5) {
        (
            self.x * self.z.inverse_or_zero(),
            self.u * self.t.inverse_or_zero(),
        )
    }

    /// The group element with affine coordinates `(x, u)`; the caller guarantees the point is
    /// in the group (used to check circuit witnesses against the native formulas).
    pub fn from_affine_unchecked(x: GFp5, u: GFp5) -> Point {
        Point {
            x,
            z: GFp5::ONE,
            u,
            t: GFp5::ONE,
        }
    }

    pub fn is_neutral(&self) -> bool {
        self.u.is_zero()
    }

    /// Complete addition in fractional (x, u) coordinates (11 multiplications).
    ///
    /// With t1 = X1X2, t2 = Z1Z2, t3 = U1U2, t4 = T1T2, t5 = X1Z2 + X2Z1, t6 = U1T2 + U2T1,
    /// t7 = t1 + b t2, t8 = t1 - b t2, the affine formulas of the paper become
    /// X3 = b (t5 t4 + a t5 t3 + 2 t3 t7), Z3 = t7 t4 - a t7 t3 - 2b t3 t5,
    /// U3 = -t6 t8, T3 = t7 t4 + a t7 t3 + 2b t3 t5.
    fn add_proj(&self, o: &Point) -> Point {
        let t1 = self.x * o.x;
        let t2 = self.z * o.z;
        let t3 = self.u * o.u;
        let t4 = self.t * o.t;
        let t5 = (self.x + self.z) * (o.x + o.z) - t1 - t2;
        let t6 = (self.u + self.t) * (o.u + o.t) - t3 - t4;
        Self::finish(t1, t2, t3, t4, t5, t6)
    }

    /// Mixed addition with an affine point (Z2 = T2 = 1): 9 multiplications.
    fn add_affine(&self, o: &AffinePoint) -> Point {
        let t1 = self.x * o.x;
        let t2 = self.z;
        let t3 = self.u * o.u;
        let t4 = self.t;
        let t5 = self.x + o.x * self.z;
        let t6 = self.u + o.u * self.t;
        Self::finish(t1, t2, t3, t4, t5, t6)
    }

    #[inline(always)]
    fn finish(t1: GFp5, t2: GFp5, t3: GFp5, t4: GFp5, t5: GFp5, t6: GFp5) -> Point {
        let bt2 = mul_b(t2);
        let t7 = t1 + bt2;
        let t8 = t1 - bt2;
        let a_ = t7 * t4;
        let b_ = t7 * t3;
        let c_ = t3 * t5;
        let d_ = t5 * t4;
        let ab = b_.double(); // a = 2
        let bc2 = mul_b(c_).double();
        Point {
            x: mul_b(d_ + c_.double() + b_.double()),
            z: a_ - ab - bc2,
            u: -(t6 * t8),
            t: a_ + ab + bc2,
        }
    }

    /// Doubling: the addition formula with both inputs equal, using squarings (5M + 6S).
    pub fn double(&self) -> Point {
        let t1 = self.x.square();
        let t2 = self.z.square();
        let t3 = self.u.square();
        let t4 = self.t.square();
        let t5 = (self.x + self.z).square() - t1 - t2;
        let t6 = (self.u + self.t).square() - t3 - t4;
        Self::finish(t1, t2, t3, t4, t5, t6)
    }

    /// `2^k * self`.
    pub fn double_n(&self, k: usize) -> Point {
        let mut p = *self;
        for _ in 0..k {
            p = p.double();
        }
        p
    }

    /// Constant-time conditional replacement.
    #[inline]
    fn cmov(&mut self, other: &Point, choice: u64) {
        cmov_gfp5(&mut self.x, &other.x, choice);
        cmov_gfp5(&mut self.z, &other.z, choice);
        cmov_gfp5(&mut self.u, &other.u, choice);
        cmov_gfp5(&mut self.t, &other.t, choice);
    }

    /// Constant-time conditional negation.
    #[inline]
    fn cneg(&mut self, choice: u64) {
        let neg = -self.u;
        cmov_gfp5(&mut self.u, &neg, choice);
    }

    /// Normalises many points to affine form with one inversion (Montgomery's trick).
    pub fn batch_to_affine(points: &[Point]) -> Vec<AffinePoint> {
        // Invert all Z and T together: 2 per point.
        let mut dens = Vec::with_capacity(points.len() * 2);
        for p in points {
            dens.push(p.z);
            dens.push(p.t);
        }
        let mut prefix = Vec::with_capacity(dens.len());
        let mut acc = GFp5::ONE;
        for d in &dens {
            prefix.push(acc);
            acc *= *d;
        }
        let mut inv = acc.inverse_or_zero();
        let mut invs = vec![GFp5::ZERO; dens.len()];
        for i in (0..dens.len()).rev() {
            invs[i] = inv * prefix[i];
            inv *= dens[i];
        }
        points
            .iter()
            .enumerate()
            .map(|(i, p)| AffinePoint {
                x: p.x * invs[2 * i],
                u: p.u * invs[2 * i + 1],
            })
            .collect()
    }

    /// Constant-time `k * self` (signed 5-bit fixed windows, table lookups by masking).
    pub fn mul_ct(&self, k: &Scalar) -> Point {
        let mut table = [*self; 16];
        for i in 1..16 {
            table[i] = table[i - 1].add_proj(self);
        }
        let digits = recode_signed5(k);
        let mut acc = Point::NEUTRAL;
        for i in (0..DIGITS).rev() {
            acc = acc.double_n(5);
            let d = digits[i];
            let (mag, sign) = digit_parts(d);
            let mut sel = Point::NEUTRAL;
            for (j, entry) in table.iter().enumerate() {
                sel.cmov(entry, ct_eq_u64(mag, j as u64 + 1));
            }
            sel.cneg(sign);
            acc = acc.add_proj(&sel);
        }
        acc
    }

    /// Constant-time `k * G` from the precomputed comb (no doublings: 64 mixed additions).
    pub fn mulgen(k: &Scalar) -> Point {
        let table = generator_table();
        let digits = recode_signed5(k);
        let mut acc = Point::NEUTRAL;
        for (i, row) in table.iter().enumerate() {
            let (mag, sign) = digit_parts(digits[i]);
            let mut sel = AffinePoint::NEUTRAL;
            for (j, entry) in row.iter().enumerate() {
                sel.cmov(entry, ct_eq_u64(mag, j as u64 + 1));
            }
            let neg = sel.neg();
            sel.cmov(&neg, sign);
            acc = acc.add_affine(&sel);
        }
        acc
    }

    /// `2^k * self` in variable time, through Jacobian (x, w) coordinates where a doubling
    /// costs 3M + 4S instead of 5M + 6S. For x = X/Z^2 and w = W/Z, with
    /// t = 2X + aZ^2 - W^2: X' = 16 b W^4 Z^4, W' = -(W^4 + (4b - a^2) Z^4), Z' = 2 W Z t
    /// (the paper's affine doubling x' = 4 b w^2 / (2x + a - w^2)^2,
    /// w' = -(w^4 + 4b - a^2) / (2 w (2x + a - w^2)), with denominators cleared).
    /// Not defined for the neutral (w is infinite there), which doubles to itself.
    pub fn double_n_vartime(&self, k: usize) -> Point {
        if k == 0 || self.is_neutral() {
            return *self;
        }
        // (X:Z:U:T) -> Jacobian: Zj = Z U, Wj = T Z, Xj = X Z U^2.
        let mut zj = self.z * self.u;
        let mut wj = self.t * self.z;
        let mut xj = self.x * self.z * self.u.square();
        for _ in 0..k {
            let ww = wj.square();
            let zz = zj.square();
            let w4 = ww.square();
            let z4 = zz.square();
            let t = xj.double() + zz.double() - ww;
            let nx = mul_b(w4 * z4).mul_small(16);
            // (4b - a^2) Z^4 = 4 (b Z^4 - Z^4) with a = 2.
            let cz4 = (mul_b(z4) - z4).mul_small(4);
            let nw = -(w4 + cz4);
            let nz = (wj * zj * t).double();
            xj = nx;
            wj = nw;
            zj = nz;
        }
        // Back: x = Xj / Zj^2 and u = 1/w = Zj / Wj.
        Point {
            x: xj,
            z: zj.square(),
            u: zj,
            t: wj,
        }
    }

    /// Variable-time `s * G + e * self`, for signature verification (public inputs only).
    /// `e` is at most 256 bits (a Poseidon digest): width-5 wNAF over a table of odd
    /// multiples of `self`, with runs of doublings done in Jacobian coordinates; the
    /// generator part uses the comb table and needs no doublings at all.
    pub fn mulgen_add_vartime(s: &Scalar, e: &Scalar, q: &Point) -> Point {
        let gtab = generator_table();
        // Odd multiples Q, 3Q, ..., 15Q.
        let q2 = q.double();
        let mut qtab = [*q; 8];
        for i in 1..8 {
            qtab[i] = qtab[i - 1].add_proj(&q2);
        }
        let naf = wnaf5(e);
        let mut acc = Point::NEUTRAL;
        let mut pending = 0usize;
        for &d in naf.iter().rev() {
            pending += 1;
            if d != 0 {
                acc = acc.double_n_vartime(pending - 1);
                pending = 1;
                let entry = qtab[(d.unsigned_abs() / 2) as usize];
                acc = if d > 0 {
                    acc.add_proj(&entry)
                } else {
                    acc.add_proj(&-entry)
                };
            }
        }
        acc = acc.double_n_vartime(pending.saturating_sub(1));
        let sd = recode_signed5(s);
        for (i, row) in gtab.iter().enumerate() {
            let d = sd[i];
            if d > 0 {
                acc = acc.add_affine(&row[(d - 1) as usize]);
            } else if d < 0 {
                acc = acc.add_affine(&row[(-d - 1) as usize].neg());
            }
        }
        acc
    }
}

/// Width-5 non-adjacent form of a scalar (vartime): digits are 0 or odd in [-15, 15], any
/// non-zero digit is followed by at least four zeros, and k = sum d_i 2^i.
fn wnaf5(k: &Scalar) -> Vec<i8> {
    let limbs = k.limbs();
    // Work on a little-endian bit array with room for the final carry.
    let mut bits = [0u8; 321];
    for (i, b) in bits.iter_mut().take(320).enumerate() {
        *b = ((limbs[i / 64] >> (i % 64)) & 1) as u8;
    }
    let mut out = vec![0i8; 321];
    let mut i = 0;
    let mut carry = 0i32;
    while i < 321 {
        let bit = bits[i] as i32 + carry;
        if bit == 1 {
            // Take the next five bits (with the current one) as a window.
            let mut window = 0i32;
            for j in 0..5 {
                if i + j < 321 {
                    window |= (bits[i + j] as i32) << j;
                }
            }
            window += carry;
            let d = if window >= 16 { window - 32 } else { window };
            out[i] = d as i8;
            carry = if window >= 16 { 1 } else { 0 };
            // Positions i+1..i+4 are absorbed into the window.
            for j in 1..5 {
                if i + j < 321 {
                    bits[i + j] = 0;
                }
            }
            i += 5;
        } else {
            // bit is 0 or 2 (a carry into a set bit): emit 0 and propagate.
            carry = bit >> 1;
            i += 1;
        }
    }
    out
}

/// Number of signed 5-bit digits covering a scalar below n < 2^319.
const DIGITS: usize = 64;

/// Recodes k (< 2^319) into 64 digits d_i in [-16, 16] with k = sum d_i 32^i, in constant
/// time (no branch on the digits).
fn recode_signed5(k: &Scalar) -> [i8; DIGITS] {
    let limbs = k.limbs();
    let mut out = [0i8; DIGITS];
    let mut carry = 0u64;
    for (i, o) in out.iter_mut().enumerate() {
        let bit = 5 * i;
        let (li, sh) = (bit / 64, bit % 64);
        let mut chunk = limbs[li] >> sh;
        if sh > 59 && li + 1 < 5 {
            chunk |= limbs[li + 1] << (64 - sh);
        }
        let chunk = (chunk & 31) + carry;
        if i == DIGITS - 1 {
            // Top digit: k < 2^319 so chunk <= 15 + 1; keep it non-negative.
            *o = chunk as i8;
        } else {
            // wrap = 1 iff chunk >= 16
            let wrap = (chunk + 16) >> 5;
            *o = (chunk as i64 - 32 * wrap as i64) as i8;
            carry = wrap;
        }
    }
    out
}

/// (|d|, 1 if d < 0 else 0), branch-free.
#[inline]
fn digit_parts(d: i8) -> (u64, u64) {
    let d = d as i64;
    let sign = (d >> 63) as u64 & 1;
    let mag = ((d ^ (d >> 63)) - (d >> 63)) as u64;
    (mag, sign)
}

/// Row i holds (j+1) * 32^i * G for j = 0..16, in affine form.
type GeneratorTable = Vec<[AffinePoint; 16]>;

fn generator_table() -> &'static GeneratorTable {
    static TABLE: OnceLock<GeneratorTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut points = Vec::with_capacity(DIGITS * 16);
        let mut base = Point::GENERATOR;
        for _ in 0..DIGITS {
            let mut m = base;
            for _ in 0..16 {
                points.push(m);
                m = m.add_proj(&base);
            }
            base = base.double_n(5);
        }
        let affine = Point::batch_to_affine(&points);
        affine
            .chunks_exact(16)
            .map(|c| {
                let mut row = [AffinePoint::NEUTRAL; 16];
                row.copy_from_slice(c);
                row
            })
            .collect()
    })
}

impl PartialEq for Point {
    /// Two group elements are equal iff their u coordinates are (w = 1/u is canonical).
    fn eq(&self, o: &Point) -> bool {
        self.u * o.t == o.u * self.t
    }
}
impl Eq for Point {}

impl core::fmt::Debug for Point {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Point(w = {:?})", self.encode())
    }
}

impl Add for Point {
    type Output = Point;
    fn add(self, o: Point) -> Point {
        self.add_proj(&o)
    }
}
impl AddAssign for Point {
    fn add_assign(&mut self, o: Point) {
        *self = self.add_proj(&o);
    }
}
impl Neg for Point {
    type Output = Point;
    fn neg(self) -> Point {
        Point {
            x: self.x,
            z: self.z,
            u: -self.u,
            t: self.t,
        }
    }
}
impl Sub for Point {
    type Output = Point;
    fn sub(self, o: Point) -> Point {
        self.add_proj(&-o)
    }
}
impl Mul<Scalar> for Point {
    type Output = Point;
    /// Constant-time scalar multiplication.
    fn mul(self, k: Scalar) -> Point {
        self.mul_ct(&k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn rnd_scalar(rng: &mut rand::rngs::StdRng) -> Scalar {
        let mut b = [0u8; 64];
        rng.fill(&mut b[..]);
        Scalar::from_le_bytes_wide(&b)
    }

    #[test]
    fn generator_decodes_from_four() {
        let g = Point::decode(GFp5::from_u64s([4, 0, 0, 0, 0]).unwrap()).unwrap();
        assert_eq!(g, Point::GENERATOR);
        assert_eq!(g.x, Point::GENERATOR.x);
        assert_eq!(Point::GENERATOR.encode().to_u64s(), [4, 0, 0, 0, 0]);
    }

    #[test]
    fn neutral_laws() {
        let g = Point::GENERATOR;
        assert_eq!(g + Point::NEUTRAL, g);
        assert_eq!(Point::NEUTRAL.double(), Point::NEUTRAL);
        assert_eq!(g - g, Point::NEUTRAL);
        assert!(Point::NEUTRAL.encode().is_zero());
        assert_ne!(g, Point::NEUTRAL);
    }

    #[test]
    fn double_matches_add() {
        let mut p = Point::GENERATOR;
        for _ in 0..20 {
            assert_eq!(p.double(), p + p);
            p = p.double() + Point::GENERATOR;
        }
    }

    #[test]
    fn group_order_annihilates() {
        // n * G = N: computed as (n - 1) * G + G.
        let nm1 = -Scalar::ONE;
        assert_eq!(Point::GENERATOR * nm1 + Point::GENERATOR, Point::NEUTRAL);
        assert_eq!(Point::mulgen(&nm1), -Point::GENERATOR);
    }

    #[test]
    fn scalar_mult_paths_agree() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let q = Point::GENERATOR.double_n(7) + Point::GENERATOR;
        for _ in 0..20 {
            let k = rnd_scalar(&mut rng);
            let e = rnd_scalar(&mut rng);
            let gk = Point::mulgen(&k);
            assert_eq!(gk, Point::GENERATOR * k);
            // Linearity: (k + e) G = k G + e G, (k e) G = k (e G).
            assert_eq!(Point::mulgen(&(k + e)), gk + Point::GENERATOR * e);
            assert_eq!(Point::GENERATOR * (k * e), (Point::GENERATOR * e) * k);
            let e256 = Scalar::from_u64x4([rng.gen(), rng.gen(), rng.gen(), rng.gen()]);
            assert_eq!(Point::mulgen_add_vartime(&k, &e256, &q), gk + q * e256);
        }
        assert_eq!(Point::mulgen(&Scalar::ZERO), Point::NEUTRAL);
        assert_eq!(
            Point::mulgen_add_vartime(&Scalar::ZERO, &Scalar::ZERO, &q),
            Point::NEUTRAL
        );
    }

    #[test]
    fn encode_decode_roundtrip_and_rejection() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let mut rejected = 0;
        for _ in 0..40 {
            let p = Point::mulgen(&rnd_scalar(&mut rng));
            let w = p.encode();
            let d = Point::decode(w).expect("valid encoding decodes");
            assert_eq!(d, p);
            assert_eq!(d.encode(), w);
            // Random field elements: about half are not valid encodings.
            let junk = GFp5::from_u64s([0; 5].map(|_| rng.gen_range(0..crate::hash::P))).unwrap();
            match Point::decode(junk) {
                None => rejected += 1,
                Some(q) => assert_eq!(q.encode(), junk),
            }
        }
        assert!(rejected > 0);
    }

    #[test]
    fn jacobian_doublings_match_complete_formula() {
        let mut p = Point::GENERATOR.double() + Point::GENERATOR;
        for k in 0..12 {
            assert_eq!(p.double_n_vartime(k), p.double_n(k), "k = {k}");
            p = p.double_n_vartime(3) + Point::GENERATOR;
        }
        assert_eq!(Point::NEUTRAL.double_n_vartime(4), Point::NEUTRAL);
    }

    #[test]
    fn wnaf_reconstructs_scalar() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let mut cases = vec![Scalar::ZERO, Scalar::ONE, -Scalar::ONE];
        for _ in 0..50 {
            cases.push(rnd_scalar(&mut rng));
        }
        for k in cases {
            let d = wnaf5(&k);
            let mut acc = Scalar::ZERO;
            let two = Scalar([2, 0, 0, 0, 0]);
            let mut last_nonzero: Option<usize> = None;
            for (i, &di) in d.iter().enumerate().rev() {
                acc = acc * two;
                let m = Scalar([di.unsigned_abs() as u64, 0, 0, 0, 0]);
                acc = if di < 0 { acc - m } else { acc + m };
                if di != 0 {
                    assert!(di % 2 != 0 && (-15..=15).contains(&di));
                    if let Some(j) = last_nonzero {
                        assert!(j - i >= 5, "digits too close");
                    }
                    last_nonzero = Some(i);
                }
            }
            assert_eq!(acc, k);
        }
    }

    #[test]
    fn recoding_reconstructs_scalar() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..50 {
            let k = rnd_scalar(&mut rng);
            let d = recode_signed5(&k);
            let mut acc = Scalar::ZERO;
            let thirty_two = Scalar([32, 0, 0, 0, 0]);
            for &di in d.iter().rev() {
                acc = acc * thirty_two;
                let m = Scalar([di.unsigned_abs() as u64, 0, 0, 0, 0]);
                acc = if di < 0 { acc - m } else { acc + m };
                assert!((-16..=16).contains(&di));
            }
            assert_eq!(acc, k);
        }
    }
}
