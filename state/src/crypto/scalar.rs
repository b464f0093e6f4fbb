//! Integers modulo the ECgFp5 group order
//! n = 1067993516717146951041484916571792702745057740581727230159139685185762082554198619328292418486241
//! (a 319-bit prime).
//!
//! Values are kept fully reduced in five little-endian 64-bit limbs. Multiplication uses
//! Montgomery reduction with constant-time final subtraction, since scalars include secret
//! keys and signing nonces.

use core::ops::{Add, Mul, Neg, Sub};

/// The group order n, little-endian 64-bit limbs.
pub const N: [u64; 5] = [
    0xe80f_d996_948b_ffe1,
    0xe888_5c39_d724_a09c,
    0x7fff_ffe6_cfb8_0639,
    0x7fff_fff1_0000_0016,
    0x7fff_fffd_8000_0007,
];

/// -n^(-1) mod 2^64, for Montgomery reduction (Newton iteration at compile time).
const N0_INV: u64 = {
    let mut inv: u64 = 1;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(N[0].wrapping_mul(inv)));
        i += 1;
    }
    inv.wrapping_neg()
};

/// R^2 mod n with R = 2^320, computed at compile time by 640 modular doublings of 1.
const R2: [u64; 5] = {
    let mut x = [1u64, 0, 0, 0, 0];
    let mut i = 0;
    while i < 640 {
        // x < n < 2^319, so 2x < 2^320 fits five limbs.
        let mut carry = 0u64;
        let mut j = 0;
        while j < 5 {
            let v = x[j];
            x[j] = (v << 1) | carry;
            carry = v >> 63;
            j += 1;
        }
        let (d, borrow) = sub_limbs(x, N);
        if !borrow {
            x = d;
        }
        i += 1;
    }
    x
};

const fn sub_limbs(a: [u64; 5], b: [u64; 5]) -> ([u64; 5], bool) {
    let mut out = [0u64; 5];
    let mut borrow = 0u64;
    let mut i = 0;
    while i < 5 {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(borrow);
        out[i] = d2;
        borrow = (b1 | b2) as u64;
        i += 1;
    }
    (out, borrow != 0)
}

fn add_limbs(a: [u64; 5], b: [u64; 5]) -> [u64; 5] {
    let mut out = [0u64; 5];
    let mut carry = 0u64;
    for i in 0..5 {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(carry);
        out[i] = s2;
        carry = (c1 | c2) as u64;
    }
    // Operands are below n < 2^319, so the sum never leaves five limbs.
    debug_assert_eq!(carry, 0);
    out
}

/// Returns `a` if `choice == 0`, `b` if `choice == 1`, without branching.
#[inline]
fn select(choice: u64, a: [u64; 5], b: [u64; 5]) -> [u64; 5] {
    let mask = choice.wrapping_neg();
    let mut out = [0u64; 5];
    for i in 0..5 {
        out[i] = a[i] ^ (mask & (a[i] ^ b[i]));
    }
    out
}

/// Subtracts n if `x >= n`, in constant time. Requires x < 2n.
#[inline]
fn reduce_once(x: [u64; 5]) -> [u64; 5] {
    let (d, borrow) = sub_limbs(x, N);
    select(borrow as u64, d, x)
}

/// Montgomery product a * b / 2^320 mod n, for a < 2^320 and b < n.
fn mont_mul(a: [u64; 5], b: [u64; 5]) -> [u64; 5] {
    // CIOS: t stays below 2n < 2^320, with one extra word for carries.
    let mut t = [0u64; 7];
    for &ai in a.iter() {
        let mut carry: u128 = 0;
        for j in 0..5 {
            let v = t[j] as u128 + ai as u128 * b[j] as u128 + carry;
            t[j] = v as u64;
            carry = v >> 64;
        }
        let v = t[5] as u128 + carry;
        t[5] = v as u64;
        t[6] = (v >> 64) as u64;

        let m = t[0].wrapping_mul(N0_INV);
        let mut carry: u128 = (t[0] as u128 + m as u128 * N[0] as u128) >> 64;
        for j in 1..5 {
            let v = t[j] as u128 + m as u128 * N[j] as u128 + carry;
            t[j - 1] = v as u64;
            carry = v >> 64;
        }
        let v = t[5] as u128 + carry;
        t[4] = v as u64;
        t[5] = t[6] + (v >> 64) as u64;
        t[6] = 0;
    }
    debug_assert_eq!(t[5], 0);
    reduce_once([t[0], t[1], t[2], t[3], t[4]])
}

/// An integer modulo n, always fully reduced.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scalar(pub(crate) [u64; 5]);

impl Scalar {
    pub const ZERO: Scalar = Scalar([0; 5]);
    pub const ONE: Scalar = Scalar([1, 0, 0, 0, 0]);

    /// Parses 40 little-endian bytes; `None` if the value is not below n, so each scalar has
    /// exactly one encoding (signatures cannot be malleated through `s + n`).
    pub fn from_le_bytes(bytes: &[u8; 40]) -> Option<Scalar> {
        let limbs = limbs_from_le(bytes);
        let (_, borrow) = sub_limbs(limbs, N);
        borrow.then_some(Scalar(limbs))
    }

    pub fn to_le_bytes(&self) -> [u8; 40] {
        let mut out = [0u8; 40];
        for (i, l) in self.0.iter().enumerate() {
            out[8 * i..8 * i + 8].copy_from_slice(&l.to_le_bytes());
        }
        out
    }

    /// Reduces an arbitrary 64-byte little-endian integer modulo n (for nonce derivation:
    /// 512 bits reduced to 319 leaves a bias far below 2^-128).
    pub fn from_le_bytes_wide(bytes: &[u8; 64]) -> Scalar {
        let mut lo = [0u8; 40];
        lo.copy_from_slice(&bytes[..40]);
        let mut hi = [0u8; 40];
        hi[..24].copy_from_slice(&bytes[40..]);
        // lo < 2^320: lo * R2 / R = lo * R mod n, then / R again gives lo mod n.
        let lo_m = mont_mul(limbs_from_le(&lo), R2);
        let lo_red = mont_mul(lo_m, [1, 0, 0, 0, 0]);
        // hi * 2^320 mod n = hi * R mod n = mont_mul(hi, R2).
        let hi_red = mont_mul(limbs_from_le(&hi), R2);
        Scalar(lo_red) + Scalar(hi_red)
    }

    /// Builds a scalar from four limbs below 2^64 each (e.g. a Poseidon digest): the value is
    /// below 2^256 < n, so no reduction happens and the map is injective.
    pub fn from_u64x4(l: [u64; 4]) -> Scalar {
        Scalar([l[0], l[1], l[2], l[3], 0])
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().fold(0, |acc, l| acc | l) == 0
    }

    pub(crate) fn limbs(&self) -> [u64; 5] {
        self.0
    }
}

fn limbs_from_le(bytes: &[u8; 40]) -> [u64; 5] {
    let mut limbs = [0u64; 5];
    for (i, l) in limbs.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[8 * i..8 * i + 8]);
        *l = u64::from_le_bytes(b);
    }
    limbs
}

impl Add for Scalar {
    type Output = Scalar;
    fn add(self, o: Scalar) -> Scalar {
        Scalar(reduce_once(add_limbs(self.0, o.0)))
    }
}

impl Sub for Scalar {
    type Output = Scalar;
    fn sub(self, o: Scalar) -> Scalar {
        let (d, borrow) = sub_limbs(self.0, o.0);
        let fixed = add_limbs_wrapping(d, N);
        Scalar(select(borrow as u64, d, fixed))
    }
}

/// Addition modulo 2^320 (used to undo a borrow in subtraction).
fn add_limbs_wrapping(a: [u64; 5], b: [u64; 5]) -> [u64; 5] {
    let mut out = [0u64; 5];
    let mut carry = 0u64;
    for i in 0..5 {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(carry);
        out[i] = s2;
        carry = (c1 | c2) as u64;
    }
    out
}

impl Neg for Scalar {
    type Output = Scalar;
    fn neg(self) -> Scalar {
        Scalar::ZERO - self
    }
}

impl Mul for Scalar {
    type Output = Scalar;
    fn mul(self, o: Scalar) -> Scalar {
        // (a b / R) * R^2 / R = a b.
        Scalar(mont_mul(mont_mul(self.0, o.0), R2))
    }
}

impl core::fmt::Debug for Scalar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Scalars may be secret keys; print only a marker unless explicitly asked for bytes.
        write!(f, "Scalar(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Reference arithmetic on u128 chunks is awkward for 320-bit values; instead test
    /// algebraic identities plus fixed values computed independently (Python).
    fn rnd(rng: &mut rand::rngs::StdRng) -> Scalar {
        let mut b = [0u8; 64];
        rng.fill(&mut b[..]);
        Scalar::from_le_bytes_wide(&b)
    }

    fn from_dec(s: &str) -> [u64; 5] {
        // Minimal decimal parser into 5 limbs for test constants.
        let mut limbs = [0u64; 5];
        for ch in s.bytes() {
            let d = (ch - b'0') as u128;
            let mut carry = d;
            for l in limbs.iter_mut() {
                let v = *l as u128 * 10 + carry;
                *l = v as u64;
                carry = v >> 64;
            }
        }
        limbs
    }

    #[test]
    fn order_constant_matches_paper() {
        assert_eq!(
            N,
            from_dec("1067993516717146951041484916571792702745057740581727230159139685185762082554198619328292418486241")
        );
        assert_eq!(N[0].wrapping_mul(N0_INV.wrapping_neg()), 1);
    }

    #[test]
    fn encoding_rejects_n_and_above() {
        let mut b = [0u8; 40];
        for (i, l) in N.iter().enumerate() {
            b[8 * i..8 * i + 8].copy_from_slice(&l.to_le_bytes());
        }
        assert!(Scalar::from_le_bytes(&b).is_none());
        b[0] -= 1; // n - 1
        let nm1 = Scalar::from_le_bytes(&b).expect("n-1 is canonical");
        assert_eq!(nm1 + Scalar::ONE, Scalar::ZERO);
        assert_eq!(-Scalar::ONE, nm1);
        assert!(Scalar::from_le_bytes(&[0xff; 40]).is_none());
    }

    #[test]
    fn field_identities() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for _ in 0..200 {
            let (a, b, c) = (rnd(&mut rng), rnd(&mut rng), rnd(&mut rng));
            assert_eq!(a * (b + c), a * b + a * c);
            assert_eq!((a * b) * c, a * (b * c));
            assert_eq!(a * b, b * a);
            assert_eq!(a - b + b, a);
            assert_eq!(a * Scalar::ONE, a);
        }
    }

    #[test]
    fn multiplication_known_answer() {
        // (n-1)^2 = 1 mod n; 2^319 * 2 mod n computed independently.
        let nm1 = -Scalar::ONE;
        assert_eq!(nm1 * nm1, Scalar::ONE);
        let two = Scalar([2, 0, 0, 0, 0]);
        let mut x = Scalar::ONE;
        for _ in 0..320 {
            x = x * two;
        }
        // 2^320 mod n, from Python: pow(2, 320, n).
        let expected = from_dec(
            "2486616180312051873025966709112589041193198309628762237450695560672243311366377249964094",
        );
        assert_eq!(x.0, expected);
    }

    #[test]
    fn wide_reduction_matches_repeated_addition() {
        // 2^512 - 1 reduced, checked against (2^256)^2 - 1 computed with multiplications.
        let all = [0xffu8; 64];
        let r = Scalar::from_le_bytes_wide(&all);
        let two128 = Scalar([0, 0, 1, 0, 0]);
        let two256 = two128 * two128;
        assert_eq!(r, two256 * two256 - Scalar::ONE);
    }
}
