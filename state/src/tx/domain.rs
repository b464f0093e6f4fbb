//! The deployment a transaction is bound to ([`Domain`], SPEC 8.1) and L1 addresses.

use std::fmt;

use plonky2::field::types::Field;

use crate::hash::{hash_no_pad, Digest, F};

/// Domain tag of [`Domain::digest`]: the ASCII bytes `"rollupv1"` as a big-endian u64.
pub const TAG_DOMAIN: u64 = u64::from_be_bytes(*b"rollupv1");

/// Five big-endian u32 limbs of 20 bytes (an L1 address), as field elements.
fn address_limbs(bytes: &[u8; 20]) -> [F; 5] {
    std::array::from_fn(|i| {
        let limb = [
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ];
        F::from_canonical_u32(u32::from_be_bytes(limb))
    })
}

/// Which deployment a signature is for: the L1 chain id and the Rollup contract's address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Domain {
    /// The L1 chain id (EIP-155).
    pub chain_id: u64,
    /// The address of the Rollup contract on that chain.
    pub rollup: [u8; 20],
}

impl Domain {
    /// The eight field elements hashed by [`Domain::digest`].
    pub fn to_field_elements(&self) -> [F; 8] {
        let a = address_limbs(&self.rollup);
        [
            F::from_canonical_u64(TAG_DOMAIN),
            F::from_canonical_u32(self.chain_id as u32),
            F::from_canonical_u32((self.chain_id >> 32) as u32),
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
        ]
    }

    /// `hash_no_pad([TAG_DOMAIN, chain_id low u32, chain_id high u32, address limbs 0..4])`.
    pub fn digest(&self) -> Digest {
        hash_no_pad(&self.to_field_elements())
    }
}

/// A 20-byte L1 (Ethereum) address, the destination of a withdrawal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct L1Address(pub [u8; 20]);

impl L1Address {
    /// The address as five big-endian u32 limbs, one field element each.
    pub fn to_field_elements(&self) -> [F; 5] {
        address_limbs(&self.0)
    }
}

impl fmt::Display for L1Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

/// A malformed L1 address: not `0x` followed by 40 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an L1 address (0x and 40 hex digits): {0:?}")]
pub struct ParseL1AddressError(pub String);

impl std::str::FromStr for L1Address {
    type Err = ParseL1AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseL1AddressError(s.to_string());
        let hex_part = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .ok_or_else(bad)?;
        let bytes = hex::decode(hex_part).map_err(|_| bad())?;
        Ok(L1Address(bytes.try_into().map_err(|_| bad())?))
    }
}

/// As its `0x`-prefixed lowercase hex string (the JSON form in batch witnesses and APIs).
impl serde::Serialize for L1Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for L1Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for L1Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L1Address({self})")
    }
}
