//! Goldilocks field and Poseidon helpers shared by every commitment in the rollup.
//!
//! The hash is plonky2 1.1.0's Poseidon (`hash_no_pad`, `two_to_one`) so that every value
//! computed here can be recomputed in-circuit with the standard Poseidon gate.

use std::fmt;

use plonky2::field::goldilocks_field::GoldilocksField;
use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::hash_types::HashOut;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::plonk::config::Hasher;

/// The base field: Goldilocks, p = 2^64 - 2^32 + 1.
pub type F = GoldilocksField;

/// The Goldilocks modulus.
pub const P: u64 = 0xffff_ffff_0000_0001;

/// A Poseidon digest: four canonical field elements.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digest(pub [F; 4]);

impl Digest {
    pub const ZERO: Digest = Digest([F::ZERO; 4]);
    pub const BYTES: usize = 32;

    /// Canonical byte encoding: the four elements as little-endian u64s, in order.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, e) in self.0.iter().enumerate() {
            out[8 * i..8 * i + 8].copy_from_slice(&e.to_canonical_u64().to_le_bytes());
        }
        out
    }

    /// Parses [`Digest::to_bytes`]; `None` if any limb is not below p (non-canonical).
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        let mut out = [F::ZERO; 4];
        for (i, limb) in out.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[8 * i..8 * i + 8]);
            *limb = canonical_from_u64(u64::from_le_bytes(b))?;
        }
        Some(Digest(out))
    }

    /// Parses from a byte slice of any length; `None` unless it is exactly 32 canonical bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: &[u8; 32] = bytes.try_into().ok()?;
        Self::from_bytes(arr)
    }

    pub fn to_u64s(&self) -> [u64; 4] {
        self.0.map(|e| e.to_canonical_u64())
    }

    pub fn elements(&self) -> [F; 4] {
        self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()?;
        Self::from_slice(&bytes)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(0x{})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", self.to_hex())
    }
}

impl From<HashOut<F>> for Digest {
    fn from(h: HashOut<F>) -> Self {
        Digest(h.elements)
    }
}

impl From<Digest> for HashOut<F> {
    fn from(d: Digest) -> Self {
        HashOut { elements: d.0 }
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", self.to_hex()))
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        Digest::from_hex(&s).ok_or_else(|| serde::de::Error::custom("invalid digest hex"))
    }
}

/// `Some(x)` if `v < p`, i.e. if `v` is the canonical representative of a field element.
#[inline]
pub fn canonical_from_u64(v: u64) -> Option<F> {
    (v < P).then(|| F::from_canonical_u64(v))
}

/// Poseidon over a sequence of field elements, without padding (plonky2 `hash_no_pad`).
/// Callers fix the length of every input they hash, so no padding is needed for injectivity.
pub fn hash_no_pad(inputs: &[F]) -> Digest {
    PoseidonHash::hash_no_pad(inputs).into()
}

/// Poseidon two-to-one compression (plonky2 `two_to_one`), used for Merkle nodes.
pub fn two_to_one(left: Digest, right: Digest) -> Digest {
    PoseidonHash::two_to_one(left.into(), right.into()).into()
}

/// Splits a u64 into two 32-bit limbs (low first) so it always fits a field element.
#[inline]
pub fn u64_to_limbs(v: u64) -> [F; 2] {
    [
        F::from_canonical_u32(v as u32),
        F::from_canonical_u32((v >> 32) as u32),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_bytes_roundtrip_and_reject_noncanonical() {
        let d = hash_no_pad(&[F::ONE, F::TWO]);
        assert_eq!(Digest::from_bytes(&d.to_bytes()), Some(d));
        let mut b = d.to_bytes();
        b[0..8].copy_from_slice(&P.to_le_bytes());
        assert_eq!(Digest::from_bytes(&b), None);
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
    }

    #[test]
    fn two_to_one_is_order_sensitive() {
        let a = hash_no_pad(&[F::ONE]);
        let b = hash_no_pad(&[F::TWO]);
        assert_ne!(two_to_one(a, b), two_to_one(b, a));
    }
}
