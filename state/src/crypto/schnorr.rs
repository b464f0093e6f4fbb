//! Schnorr signatures over ECgFp5 (API skeleton; bodies being written).
#![allow(unused_variables)]

use crate::hash::{Digest, F};

/// The hash of a transaction's canonical encoding; what is signed, and the transaction id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct MessageHash(pub Digest);

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
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature challenge is not canonical")]
    NonCanonicalChallenge,
    #[error("signature scalar is not below the group order")]
    NonCanonicalScalar,
    #[error("signature does not verify")]
    Invalid,
}

#[derive(Clone)]
pub struct SecretKey(());

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicKey(());

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Signature(());

impl SecretKey {
    pub const BYTES: usize = 40;
    pub fn random<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        todo!()
    }
    pub fn from_bytes(bytes: &[u8; 40]) -> Result<Self, KeyError> {
        todo!()
    }
    pub fn to_bytes(&self) -> [u8; 40] {
        todo!()
    }
    pub fn public_key(&self) -> PublicKey {
        todo!()
    }
    pub fn sign(&self, msg: &MessageHash) -> Signature {
        todo!()
    }
}

impl PublicKey {
    pub const BYTES: usize = 40;
    /// Five canonical field elements: the point's encoding w.
    pub fn to_field_elements(&self) -> [F; 5] {
        todo!()
    }
    pub fn from_bytes(bytes: &[u8; 40]) -> Result<Self, KeyError> {
        todo!()
    }
    pub fn to_bytes(&self) -> [u8; 40] {
        todo!()
    }
    pub fn verify(&self, msg: &MessageHash, sig: &Signature) -> Result<(), SignatureError> {
        todo!()
    }
}

impl Signature {
    pub const BYTES: usize = 72;
    pub fn from_bytes(bytes: &[u8; 72]) -> Result<Self, SignatureError> {
        todo!()
    }
    pub fn to_bytes(&self) -> [u8; 72] {
        todo!()
    }
}
