//! Accounts and the bounded integers they are made of.
//!
//! # Bounded integers
//!
//! Every integer that enters a commitment ([`Amount`], [`Nonce`], [`Timestamp`]) is bounded by
//! [`MAX_U63`] = 2^63 - 1. The bound is enforced by the constructors, so a value of these types
//! is always
//!
//! * one canonical Goldilocks element (2^63 - 1 < p), hashed without any limb splitting, and
//! * provable in-circuit with a single 64-bit range check; the sum of two of them
//!   (`amount + fee`, `balance + credit`) still fits in a `u64`, so native code can check a
//!   debit or a credit without overflow.
//!
//! [`AccountIndex`] is a plain `u32`: the state tree has depth 32, so every `u32` is a leaf.
//!
//! All of them serialize with serde as plain JSON numbers; deserialization re-checks the bound.
//!
//! # Account leaf
//!
//! An account is committed in the state tree at its index by [`Account::leaf_hash`]:
//!
//! ```text
//! leaf = hash_no_pad([w0, w1, w2, w3, w4, balance, nonce, 0, ext0, ext1, ext2, ext3])   (12 elements)
//! ```
//!
//! where `w0..w4` are the five canonical field elements of the public key encoding, the `0` is
//! a reserved version element (leaf layout version 0), and `ext` is a commitment reserved for the
//! planned agent fields (payment streams, passports), [`Digest::ZERO`] for now. An index with no
//! account has the leaf [`Digest::ZERO`], which is *not* the hash of any account (not the hash of
//! twelve zeros either), so "empty" and "exists with zero balance" are different leaves.
//!
//! Account 0 ([`OPERATOR`]) is the operator's fee account, created at genesis; every fee is
//! credited to it.

use std::fmt;

use plonky2::field::types::Field;
use serde::{Deserialize, Serialize};

use crate::crypto::schnorr::EncodedKey;
use crate::hash::{hash_no_pad, Digest, F};

/// The largest value of every bounded integer: 2^63 - 1.
pub const MAX_U63: u64 = (1 << 63) - 1;

/// The largest balance or transfer amount: 2^63 - 1 base units.
pub const MAX_AMOUNT: u64 = MAX_U63;

/// The operator's fee account, created at genesis. Fees of every transaction are credited here.
pub const OPERATOR: AccountIndex = AccountIndex(0);

/// The position of an account in the state tree (depth 32). Indices are allocated
/// sequentially by registration, starting with the operator at 0.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct AccountIndex(pub u32);

impl AccountIndex {
    /// The index as one (canonical) field element.
    pub fn to_field(self) -> F {
        F::from_canonical_u32(self.0)
    }
}

impl fmt::Display for AccountIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u32> for AccountIndex {
    fn from(v: u32) -> Self {
        AccountIndex(v)
    }
}

/// Returned when a value above [`MAX_U63`] is given to a bounded integer (e.g. by serde).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{value} is above the bound 2^63 - 1")]
pub struct OutOfRange {
    pub value: u64,
}

/// Defines a `u64` newtype bounded by [`MAX_U63`] with the shared constructors and impls.
macro_rules! bounded_u63 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize,
            Deserialize,
        )]
        #[serde(try_from = "u64", into = "u64")]
        pub struct $name(u64);

        impl $name {
            /// Zero.
            pub const ZERO: $name = $name(0);
            /// The largest value, 2^63 - 1.
            pub const MAX: $name = $name(MAX_U63);

            /// `Some` if `v <= 2^63 - 1`, the only values this type can hold.
            #[inline]
            pub const fn new(v: u64) -> Option<Self> {
                if v <= MAX_U63 {
                    Some($name(v))
                } else {
                    None
                }
            }

            /// The value as a plain integer.
            #[inline]
            pub const fn get(self) -> u64 {
                self.0
            }

            /// The value as one canonical field element (always below p, see the module docs).
            #[inline]
            pub fn to_field(self) -> F {
                F::from_canonical_u64(self.0)
            }
        }

        impl TryFrom<u64> for $name {
            type Error = OutOfRange;
            fn try_from(value: u64) -> Result<Self, OutOfRange> {
                Self::new(value).ok_or(OutOfRange { value })
            }
        }

        impl From<$name> for u64 {
            fn from(v: $name) -> u64 {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

bounded_u63! {
    /// An amount of the settlement token in base units, always `<= 2^63 - 1` ([`MAX_AMOUNT`]).
    ///
    /// Balances, transfer amounts, fees and deposits are all `Amount`s. Arithmetic is checked:
    /// a result above the bound is `None`, never a wrap-around.
    Amount
}

bounded_u63! {
    /// A per-account transaction counter, always `<= 2^63 - 1`.
    ///
    /// Every accepted signed transaction from an account (transfer, withdrawal) must carry the
    /// account's current nonce and increments it by exactly one. An account whose nonce reached
    /// [`Nonce::MAX`] can sign nothing more (a practically unreachable state, but a defined one).
    Nonce
}

bounded_u63! {
    /// Unix time in seconds, always `<= 2^63 - 1`. Used for `valid_until` of signed
    /// transactions and for the block timestamp.
    Timestamp
}

impl Amount {
    /// `self + rhs`, or `None` if the sum exceeds 2^63 - 1.
    #[inline]
    pub fn checked_add(self, rhs: Amount) -> Option<Amount> {
        // Both are < 2^63, so the u64 sum cannot wrap.
        Amount::new(self.0 + rhs.0)
    }

    /// `self - rhs`, or `None` if `rhs > self`.
    #[inline]
    pub fn checked_sub(self, rhs: Amount) -> Option<Amount> {
        self.0.checked_sub(rhs.0).map(Amount)
    }

    /// Whether the amount is zero.
    #[inline]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl Nonce {
    /// The nonce after this one, or `None` at [`Nonce::MAX`] (the account is exhausted).
    #[inline]
    pub fn next(self) -> Option<Nonce> {
        Nonce::new(self.0 + 1)
    }
}

/// An account: the key that controls it, its balance and nonce, and reserved room for the
/// planned agent fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Account {
    /// The Schnorr public key that signs for this account. Fixed at registration, never changes
    /// (which is what lets the sequencer check signatures in parallel with the state writer).
    /// Kept as its encoding: 40 bytes instead of 200 for the decoded point.
    pub pubkey: EncodedKey,
    /// The spendable balance.
    pub balance: Amount,
    /// The nonce the next signed transaction from this account must carry.
    pub nonce: Nonce,
    /// Commitment to planned agent fields (payment streams, passports). [`Digest::ZERO`] for now.
    pub ext: Digest,
}

impl Account {
    /// A freshly registered account: zero balance, nonce 0, empty extension.
    pub fn new(pubkey: impl Into<EncodedKey>) -> Self {
        Account {
            pubkey: pubkey.into(),
            balance: Amount::ZERO,
            nonce: Nonce::ZERO,
            ext: Digest::ZERO,
        }
    }

    /// The twelve field elements committed by the leaf, in order (see the module docs).
    pub fn to_field_elements(&self) -> [F; 12] {
        let w = self.pubkey.to_field_elements();
        let e = self.ext.elements();
        [
            w[0],
            w[1],
            w[2],
            w[3],
            w[4],
            self.balance.to_field(),
            self.nonce.to_field(),
            F::ZERO, // leaf layout version / reserved
            e[0],
            e[1],
            e[2],
            e[3],
        ]
    }

    /// The account's leaf in the state tree: `hash_no_pad` of [`Account::to_field_elements`].
    pub fn leaf_hash(&self) -> Digest {
        hash_no_pad(&self.to_field_elements())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_bounds() {
        assert_eq!(Amount::new(MAX_AMOUNT), Some(Amount::MAX));
        assert_eq!(Amount::new(MAX_AMOUNT + 1), None);
        assert_eq!(Amount::new(u64::MAX), None);
        assert_eq!(Amount::MAX.checked_add(Amount::new(1).unwrap()), None);
        assert_eq!(
            Amount::MAX.checked_add(Amount::ZERO),
            Some(Amount::MAX),
            "adding zero at the bound is fine"
        );
        assert_eq!(Amount::ZERO.checked_sub(Amount::new(1).unwrap()), None);
        let a = Amount::new(10).unwrap();
        let b = Amount::new(3).unwrap();
        assert_eq!(a.checked_sub(b), Amount::new(7));
        assert_eq!(a.checked_add(b), Amount::new(13));
    }

    #[test]
    fn nonce_and_timestamp_bounds() {
        assert_eq!(Nonce::ZERO.next(), Nonce::new(1));
        assert_eq!(Nonce::MAX.next(), None);
        assert_eq!(Nonce::new(MAX_U63 + 1), None);
        assert_eq!(Timestamp::new(MAX_U63), Some(Timestamp::MAX));
        assert_eq!(Timestamp::new(MAX_U63 + 1), None);
    }

    #[test]
    fn serde_is_plain_numbers_and_rechecks_bounds() {
        let a = Amount::new(42).unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "42");
        assert_eq!(serde_json::from_str::<Amount>("42").unwrap(), a);
        assert!(serde_json::from_str::<Amount>("9223372036854775808").is_err());
        assert!(serde_json::from_str::<Nonce>("18446744073709551615").is_err());
        assert_eq!(serde_json::to_string(&AccountIndex(7)).unwrap(), "7");
        assert_eq!(
            serde_json::from_str::<Timestamp>("9223372036854775807").unwrap(),
            Timestamp::MAX
        );
    }

    #[test]
    fn field_encoding_is_canonical_at_the_bound() {
        use plonky2::field::types::PrimeField64;
        assert_eq!(Amount::MAX.to_field().to_canonical_u64(), MAX_U63);
        assert_eq!(
            AccountIndex(u32::MAX).to_field().to_canonical_u64(),
            u32::MAX as u64
        );
    }
}
