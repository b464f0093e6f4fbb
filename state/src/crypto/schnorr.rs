//! Schnorr signatures over ECgFp5 with a Poseidon challenge.
//!
//! - Key pair: secret scalar `d` (non-zero, below n), public key `Q = d G`, published as
//!   its 40-byte encoding `w` (five little-endian canonical limbs). A `PublicKey` value only
//!   exists for a validated encoding (canonical, decodes to a group element, not neutral).
//! - Signing a [`MessageHash`] `m`: deterministic nonce `k` (below), `R = k G`,
//!   `e = Poseidon(w_R || m)` (nine elements, `hash_no_pad`), read as the 256-bit integer
//!   `e0 + 2^64 e1 + 2^128 e2 + 2^192 e3` (always below n), and `s = k - e d mod n`.
//!   The signature is `(e, s)`: 32 bytes of `e` (canonical limbs) then 40 bytes of `s`.
//! - Verifying: reject non-canonical `e` limbs or `s >= n`, compute `R' = s G + e Q`, accept
//!   iff `Poseidon(w_R' || m) == e`. No point of the signature is decoded, so there is no
//!   R encoding to malleate, and the transaction id is `m`, never a hash of the signature.
//! - Nonce: `k = (H(tag, d, m, 0) || H(tag, d, m, 1)) mod n` with Poseidon `H` over the
//!   secret scalar's ten 32-bit limbs; the 512-bit value reduced mod the 319-bit n is
//!   unbiased for all practical purposes. A zero `k` (probability ~2^-319) moves on to
//!   counters 2 and 3.

use std::fmt;

use plonky2::field::types::Field;

use super::ecgfp5::{GFp5, Point, Scalar};
use crate::hash::{hash_no_pad, Digest, F};

/// The hash of a transaction's canonical field encoding: what is signed, and the id.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, Default, serde::Serialize, serde::Deserialize,
)]
pub struct MessageHash(pub Digest);

/// Domain tag for nonce derivation: ASCII "ecgfp5nk" read little-endian (below p).
const NONCE_TAG: u64 = u64::from_le_bytes(*b"ecgfp5nk");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("public key encoding is not a canonical GF(p^5) element")]
    NonCanonical,
    #[error("public key encoding is not a point of the ECgFp5 group")]
    NotOnCurve,
    #[error("public key is the neutral element")]
    Neutral,
    #[error("secret key is zero or not below the group order")]
    InvalidSecret,
    #[error("key has the wrong length: expected {expected} bytes, got {got}")]
    WrongLength { expected: usize, got: usize },
    #[error("key is not valid hex")]
    BadHex,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature challenge is not canonical")]
    NonCanonicalChallenge,
    #[error("signature scalar is not below the group order")]
    NonCanonicalScalar,
    #[error("signature has the wrong length: expected 72 bytes, got {0}")]
    WrongLength(usize),
    #[error("signature does not verify")]
    Invalid,
}

impl KeyError {
    /// Stable machine-readable name (docs/SPEC.md section 4).
    pub const fn code(&self) -> &'static str {
        match self {
            KeyError::NonCanonical => "NON_CANONICAL",
            KeyError::NotOnCurve => "NOT_ON_CURVE",
            KeyError::Neutral => "NEUTRAL",
            KeyError::InvalidSecret => "INVALID_SECRET",
            KeyError::WrongLength { .. } => "WRONG_LENGTH",
            KeyError::BadHex => "BAD_HEX",
        }
    }
}

impl SignatureError {
    /// Stable machine-readable name (docs/SPEC.md section 4).
    pub const fn code(&self) -> &'static str {
        match self {
            SignatureError::NonCanonicalChallenge => "NON_CANONICAL_CHALLENGE",
            SignatureError::NonCanonicalScalar => "NON_CANONICAL_SCALAR",
            SignatureError::WrongLength(_) => "WRONG_LENGTH",
            SignatureError::Invalid => "INVALID",
        }
    }
}

/// A secret signing key: a non-zero scalar.
#[derive(Clone)]
pub struct SecretKey {
    d: Scalar,
}

/// A validated public key: a non-neutral group element and its canonical encoding.
#[derive(Clone, Copy)]
pub struct PublicKey {
    point: Point,
    w: GFp5,
}

/// A validated public key kept as its 40-byte encoding `w` only (`PublicKey` is 200 bytes:
/// the decoded point plus `w`).
///
/// The state stores one per account, so at a million accounts this is the difference between
/// 40 MB and 200 MB. It is only built from a [`PublicKey`] (validated once, at registration)
/// or by decoding with the same checks, so [`EncodedKey::decode`] of a stored key cannot fail
/// in practice; it costs one square root (~8 µs), which is why verifiers cache decoded keys.
/// Equality and hashing are those of the encoding, exactly as for `PublicKey`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodedKey(GFp5);

impl EncodedKey {
    pub const BYTES: usize = 40;

    /// Validates the encoding (canonical, on the curve, not neutral) and keeps only `w`.
    pub fn from_bytes(bytes: &[u8; 40]) -> Result<Self, KeyError> {
        PublicKey::from_bytes(bytes).map(EncodedKey::from)
    }

    /// Reads an encoding that was validated before it was stored (the node's own state
    /// snapshots): only canonical limbs are checked, not the curve equation, which would cost a
    /// square root per key (8 s for a million accounts). Never use it for outside input.
    pub fn from_validated_bytes(bytes: &[u8; 40]) -> Option<Self> {
        GFp5::from_le_bytes(bytes).map(EncodedKey)
    }

    /// The full key, for verifying signatures (decodes the point: one square root).
    pub fn decode(&self) -> Result<PublicKey, KeyError> {
        PublicKey::from_encoding(self.0)
    }

    pub fn to_bytes(&self) -> [u8; 40] {
        self.0.to_le_bytes()
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// The encoding `w` as five canonical field elements (for hashing and circuits).
    pub fn to_field_elements(&self) -> [F; 5] {
        self.0.to_field_elements()
    }

    pub fn encoding(&self) -> GFp5 {
        self.0
    }
}

impl From<PublicKey> for EncodedKey {
    fn from(k: PublicKey) -> Self {
        EncodedKey(k.w)
    }
}

impl From<&PublicKey> for EncodedKey {
    fn from(k: &PublicKey) -> Self {
        EncodedKey(k.w)
    }
}

impl PartialEq<PublicKey> for EncodedKey {
    fn eq(&self, o: &PublicKey) -> bool {
        self.0 == o.w
    }
}

impl PartialEq<EncodedKey> for PublicKey {
    fn eq(&self, o: &EncodedKey) -> bool {
        self.w == o.0
    }
}

impl fmt::Debug for EncodedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(0x{})", self.to_hex())
    }
}

impl fmt::Display for EncodedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", self.to_hex())
    }
}

impl serde::Serialize for EncodedKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", self.to_hex()))
    }
}

impl<'de> serde::Deserialize<'de> for EncodedKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PublicKey::deserialize(d).map(EncodedKey::from)
    }
}

/// A signature `(e, s)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    e: Digest,
    s: Scalar,
}

fn challenge(r: &Point, msg: &MessageHash) -> Digest {
    let mut input = [F::ZERO; 9];
    input[..5].copy_from_slice(&r.encode().to_field_elements());
    input[5..].copy_from_slice(&msg.0.elements());
    hash_no_pad(&input)
}

impl SecretKey {
    pub const BYTES: usize = 40;

    /// A fresh key from a cryptographic RNG.
    pub fn random<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        loop {
            let mut wide = [0u8; 64];
            rng.fill_bytes(&mut wide);
            let d = Scalar::from_le_bytes_wide(&wide);
            if !d.is_zero() {
                return SecretKey { d };
            }
        }
    }

    /// Parses 40 little-endian bytes; rejects zero and values not below n.
    pub fn from_bytes(bytes: &[u8; 40]) -> Result<Self, KeyError> {
        match Scalar::from_le_bytes(bytes) {
            Some(d) if !d.is_zero() => Ok(SecretKey { d }),
            _ => Err(KeyError::InvalidSecret),
        }
    }

    pub fn to_bytes(&self) -> [u8; 40] {
        self.d.to_le_bytes()
    }

    pub fn public_key(&self) -> PublicKey {
        let point = Point::mulgen(&self.d);
        PublicKey {
            point,
            w: point.encode(),
        }
    }

    fn nonce(&self, msg: &MessageHash) -> Scalar {
        let limbs = self.d.to_le_bytes();
        let mut input = [F::ZERO; 16];
        input[0] = F::from_canonical_u64(NONCE_TAG);
        for i in 0..10 {
            let mut b = [0u8; 4];
            b.copy_from_slice(&limbs[4 * i..4 * i + 4]);
            input[1 + i] = F::from_canonical_u32(u32::from_le_bytes(b));
        }
        input[11..15].copy_from_slice(&msg.0.elements());
        let mut counter = 0u64;
        loop {
            let mut wide = [0u8; 64];
            for half in 0..2 {
                input[15] = F::from_canonical_u64(counter + half);
                wide[32 * half as usize..32 * half as usize + 32]
                    .copy_from_slice(&hash_no_pad(&input).to_bytes());
            }
            let k = Scalar::from_le_bytes_wide(&wide);
            if !k.is_zero() {
                return k;
            }
            counter += 2;
        }
    }

    /// Deterministic Schnorr signature (constant time in the secret key and nonce).
    pub fn sign(&self, msg: &MessageHash) -> Signature {
        let k = self.nonce(msg);
        let r = Point::mulgen(&k);
        let e = challenge(&r, msg);
        let es = Scalar::from_u64x4(e.to_u64s());
        Signature {
            e,
            s: k - es * self.d,
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl PublicKey {
    pub const BYTES: usize = 40;

    /// Validates an encoding `w`: it must decode to a group element other than the neutral.
    pub fn from_encoding(w: GFp5) -> Result<Self, KeyError> {
        let point = Point::decode(w).ok_or(KeyError::NotOnCurve)?;
        if point.is_neutral() {
            return Err(KeyError::Neutral);
        }
        Ok(PublicKey { point, w })
    }

    /// Parses and validates the 40-byte encoding (five little-endian canonical limbs).
    pub fn from_bytes(bytes: &[u8; 40]) -> Result<Self, KeyError> {
        let w = GFp5::from_le_bytes(bytes).ok_or(KeyError::NonCanonical)?;
        Self::from_encoding(w)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: &[u8; 40] = bytes.try_into().map_err(|_| KeyError::WrongLength {
            expected: 40,
            got: bytes.len(),
        })?;
        Self::from_bytes(arr)
    }

    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|_| KeyError::BadHex)?;
        Self::from_slice(&bytes)
    }

    pub fn to_bytes(&self) -> [u8; 40] {
        self.w.to_le_bytes()
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// The encoding `w` as five canonical field elements (for hashing and circuits).
    pub fn to_field_elements(&self) -> [F; 5] {
        self.w.to_field_elements()
    }

    pub fn encoding(&self) -> GFp5 {
        self.w
    }

    pub fn point(&self) -> &Point {
        &self.point
    }

    /// Verifies `sig` over `msg` (variable time: all inputs are public).
    pub fn verify(&self, msg: &MessageHash, sig: &Signature) -> Result<(), SignatureError> {
        let e = Scalar::from_u64x4(sig.e.to_u64s());
        let r = Point::mulgen_add_vartime(&sig.s, &e, &self.point);
        if challenge(&r, msg) == sig.e {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        }
    }
}

/// What the L1 verifier (`contracts/src/Schnorr.sol`) needs besides the key, the message and
/// the signature: the results of a square root and an inversion in GF(p^5), which L1 cannot
/// afford, given as hints it checks with a few multiplications (SPEC 15.9).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct L1VerifyHints {
    /// x of the key's point (the non-square root of its decoding equation).
    pub qx: GFp5,
    /// A square root of `qx / 7`: proves `qx` is the non-square root (7 is a non-square).
    pub qy: GFp5,
    /// The encoding of `R' = s G + e Q`, whose hash with the message is `e`.
    pub w_r: GFp5,
}

impl PublicKey {
    /// The hints for verifying `sig` on L1; `Err` if the signature does not verify here.
    pub fn l1_verify_hints(
        &self,
        msg: &MessageHash,
        sig: &Signature,
    ) -> Result<L1VerifyHints, SignatureError> {
        self.verify(msg, sig)?;
        let (qx, _) = self.point.to_affine();
        let seven = GFp5::from_base(F::from_canonical_u64(7));
        // qx is a non-square and 7 is one, so qx / 7 is a square.
        let qy = (qx * seven.inverse_or_zero())
            .sqrt()
            .ok_or(SignatureError::Invalid)?;
        let e = Scalar::from_u64x4(sig.e.to_u64s());
        let w_r = Point::mulgen_add_vartime(&sig.s, &e, &self.point).encode();
        Ok(L1VerifyHints { qx, qy, w_r })
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, o: &Self) -> bool {
        self.w == o.w
    }
}
impl Eq for PublicKey {}
impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.w.hash(h)
    }
}
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(0x{})", self.to_hex())
    }
}
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", self.to_hex())
    }
}
impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", self.to_hex()))
    }
}
impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        PublicKey::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

impl Signature {
    pub const BYTES: usize = 72;

    /// Parses `e || s`, rejecting non-canonical limbs of `e` and `s >= n`.
    pub fn from_bytes(bytes: &[u8; 72]) -> Result<Self, SignatureError> {
        let mut eb = [0u8; 32];
        eb.copy_from_slice(&bytes[..32]);
        let e = Digest::from_bytes(&eb).ok_or(SignatureError::NonCanonicalChallenge)?;
        let mut sb = [0u8; 40];
        sb.copy_from_slice(&bytes[32..]);
        let s = Scalar::from_le_bytes(&sb).ok_or(SignatureError::NonCanonicalScalar)?;
        Ok(Signature { e, s })
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, SignatureError> {
        let arr: &[u8; 72] = bytes
            .try_into()
            .map_err(|_| SignatureError::WrongLength(bytes.len()))?;
        Self::from_bytes(arr)
    }

    pub fn to_bytes(&self) -> [u8; 72] {
        let mut out = [0u8; 72];
        out[..32].copy_from_slice(&self.e.to_bytes());
        out[32..].copy_from_slice(&self.s.to_le_bytes());
        out
    }

    /// The challenge `e` (needed by the circuit, which recomputes it).
    pub fn challenge(&self) -> Digest {
        self.e
    }

    /// The response `s` as 40 little-endian bytes.
    pub fn response_bytes(&self) -> [u8; 40] {
        self.s.to_le_bytes()
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(0x{})", hex::encode(self.to_bytes()))
    }
}
impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(self.to_bytes())))
    }
}
impl<'de> serde::Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        let bytes =
            hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)?;
        Signature::from_slice(&bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn key(seed: u64) -> SecretKey {
        SecretKey::random(&mut rand::rngs::StdRng::seed_from_u64(seed))
    }

    fn msg(i: u64) -> MessageHash {
        MessageHash(hash_no_pad(&[F::from_canonical_u64(i)]))
    }

    #[test]
    fn sign_verify_roundtrip_and_determinism() {
        let sk = key(1);
        let pk = sk.public_key();
        let m = msg(7);
        let sig = sk.sign(&m);
        assert_eq!(pk.verify(&m, &sig), Ok(()));
        assert_eq!(sk.sign(&m), sig, "nonces are deterministic");
        assert_ne!(sk.sign(&msg(8)), sig);
        let back = Signature::from_bytes(&sig.to_bytes()).unwrap();
        assert_eq!(back, sig);
        assert_eq!(PublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
        assert_eq!(
            SecretKey::from_bytes(&sk.to_bytes()).unwrap().public_key(),
            pk
        );
    }

    #[test]
    fn other_message_rejected() {
        let sk = key(2);
        let sig = sk.sign(&msg(1));
        assert_eq!(
            sk.public_key().verify(&msg(2), &sig),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn other_key_rejected() {
        let sig = key(3).sign(&msg(1));
        assert_eq!(
            key(4).public_key().verify(&msg(1), &sig),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let sk = key(5);
        let pk = sk.public_key();
        let m = msg(3);
        let bytes = sk.sign(&m).to_bytes();
        for bit in 0..72 * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            // Either the bytes no longer parse (non-canonical) or the signature fails.
            if let Ok(sig) = Signature::from_bytes(&b) {
                assert_eq!(
                    pk.verify(&m, &sig),
                    Err(SignatureError::Invalid),
                    "bit {bit}"
                );
            }
        }
    }

    #[test]
    fn non_canonical_scalar_rejected_even_if_equivalent() {
        // s + n is the same residue but must not parse: no second encoding of a signature.
        let sk = key(6);
        let m = msg(4);
        let sig = sk.sign(&m);
        let mut s = [0u64; 5];
        let sb = sig.response_bytes();
        for (i, l) in s.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&sb[8 * i..8 * i + 8]);
            *l = u64::from_le_bytes(b);
        }
        // s + n fits 320 bits whenever s < 2^320 - n, which holds for every s < n.
        let mut carry = 0u128;
        for (l, n) in s.iter_mut().zip(crate::crypto::scalar::N) {
            let v = *l as u128 + n as u128 + carry;
            *l = v as u64;
            carry = v >> 64;
        }
        assert_eq!(carry, 0);
        let mut bytes = sig.to_bytes();
        for (i, l) in s.iter().enumerate() {
            bytes[32 + 8 * i..40 + 8 * i].copy_from_slice(&l.to_le_bytes());
        }
        assert_eq!(
            Signature::from_bytes(&bytes),
            Err(SignatureError::NonCanonicalScalar)
        );
        // And a challenge limb >= p is rejected.
        let mut bytes = sig.to_bytes();
        bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            Signature::from_bytes(&bytes),
            Err(SignatureError::NonCanonicalChallenge)
        );
    }

    #[test]
    fn forgery_with_invalid_r_encoding_rejected() {
        // An attacker without the key picks some w that is not a point encoding, derives
        // e = H(w || m) honestly, and tries random s: the verifier recomputes R' from s and e,
        // whose encoding is always a valid point, so it can never match H(w || m).
        let pk = key(7).public_key();
        let m = msg(5);
        let mut w = GFp5::from_u64s([1, 2, 3, 4, 5]).unwrap();
        while Point::decode(w).is_some() {
            w += GFp5::ONE;
        }
        let mut input = w.to_field_elements().to_vec();
        input.extend_from_slice(&m.0.elements());
        let e = hash_no_pad(&input);
        for s_seed in 0..8u8 {
            let mut raw = [0u8; 72];
            raw[..32].copy_from_slice(&e.to_bytes());
            raw[32] = s_seed;
            let sig = Signature::from_bytes(&raw).unwrap();
            assert_eq!(pk.verify(&m, &sig), Err(SignatureError::Invalid));
        }
    }

    #[test]
    fn invalid_public_keys_rejected() {
        // Non-canonical limb.
        let mut b = [0u8; 40];
        b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(PublicKey::from_bytes(&b), Err(KeyError::NonCanonical));
        // Neutral.
        assert_eq!(PublicKey::from_bytes(&[0u8; 40]), Err(KeyError::Neutral));
        // Not a group element.
        let mut w = GFp5::from_u64s([9, 9, 9, 9, 9]).unwrap();
        while Point::decode(w).is_some() {
            w += GFp5::ONE;
        }
        assert_eq!(
            PublicKey::from_bytes(&w.to_le_bytes()),
            Err(KeyError::NotOnCurve)
        );
        assert!(matches!(
            PublicKey::from_slice(&[1, 2, 3]),
            Err(KeyError::WrongLength { .. })
        ));
        // Zero and out-of-range secret keys.
        assert_eq!(
            SecretKey::from_bytes(&[0u8; 40]).err(),
            Some(KeyError::InvalidSecret)
        );
        assert_eq!(
            SecretKey::from_bytes(&[0xff; 40]).err(),
            Some(KeyError::InvalidSecret)
        );
    }

    #[test]
    fn serde_roundtrip() {
        let sk = key(8);
        let pk = sk.public_key();
        let sig = sk.sign(&msg(1));
        let j = serde_json::to_string(&(pk, sig)).unwrap();
        let (pk2, sig2): (PublicKey, Signature) = serde_json::from_str(&j).unwrap();
        assert_eq!((pk2, sig2), (pk, sig));
    }
}
