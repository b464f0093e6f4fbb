//! Transactions: their types, canonical byte encoding, field-element encoding and message hash.
//!
//! # Kinds
//!
//! | tag | kind | signed by | effect |
//! |---|---|---|---|
//! | 1 | [`Register`] | the key it registers (proof of possession) | binds the key to the next free account index |
//! | 2 | [`Transfer`] | the sender account's key | moves `amount` from `from` to `to`, `fee` to the operator |
//! | 3 | [`Withdraw`] | the sender account's key | `amount` leaves the rollup to an L1 address, `fee` to the operator |
//! | 4 | [`Deposit`] | nobody: it comes from the L1 priority queue | credits `amount` to `to` (or is refunded on L1) |
//! | 5 | [`ForcedWithdraw`] | the embedded withdraw's signature, judged by the rules | a withdraw queued on L1: applied, or rejected with a reason; its serial is consumed either way |
//! | 7 | [`StreamOpen`] | the payer | opens a payment stream, escrowing `price x max_ticks` ([`stream`]) |
//! | 8 | [`StreamSettle`] | the payee | pays the ticks up to a revealed tick out of the escrow |
//! | 9 | [`StreamClose`] | the payer or the payee | refunds the rest of the escrow and frees the slot |
//! | 10 | [`Split`] | the sender account's key | pays up to 1,024 payees at once, all or nothing ([`split`]) |
//! | 13 | [`PassportTx`] delegate | the owner | creates an agent account bound to the owner by a policy ([`passport`]) |
//! | 14 | [`PassportTx`] set policy | the owner | replaces an agent's policy |
//! | 15 | [`PassportTx`] revoke | the owner | revokes an agent for good |
//! | 16 | [`PassportTx`] sweep | the owner | moves an agent's balance back to its owner |
//!
//! Tag 6 is no transaction: it is the kind element of an exit authorisation
//! ([`crate::exodus`]), so that neither can be replayed as the other. Tags 11 and 12 are the
//! planned revenue-share transactions (SPEC 19.6). Tags 7 to 10 and 13 to 16 are defined here
//! (encodings, hashes, known answers) but not yet accepted by a node: the circuits do not prove
//! them yet (docs/SPEC.md sections 18.5, 19.4 and 20.5).
//!
//! # Domain separation
//!
//! Every message hash starts with the digest of the [`Domain`] (L1 chain id and Rollup contract
//! address), so a signature for one deployment is worthless on another:
//!
//! ```text
//! domain = hash_no_pad([TAG_DOMAIN, chain_id mod 2^32, chain_id >> 32, a0, a1, a2, a3, a4])
//! ```
//!
//! with `a_i = u32::from_be_bytes(rollup[4i..4i+4])` and [`TAG_DOMAIN`] the ASCII bytes
//! `"rollupv1"` read as a big-endian u64 (`0x726f6c6c75707631`, below p).
//!
//! # Message hash = transaction id
//!
//! ```text
//! message_hash = hash_no_pad(domain (4 elements) ‖ kind tag ‖ fields)
//! ```
//!
//! with these fields, one field element each (integers are below 2^63, so always canonical):
//!
//! * Register: `w0..w4` (the public key's encoding), `valid_until`
//! * Transfer: `from, to, amount, fee, nonce, valid_until`
//! * Withdraw: `from, l1 address as five big-endian u32 limbs, amount, fee, nonce, valid_until`
//! * Deposit: `seq, to, amount` (unsigned; this is only its id)
//! * ForcedWithdraw: `seq, requested_at, m0..m3` where `m` is the embedded withdraw's message hash
//! * StreamOpen, StreamSettle, StreamClose: their body, then `fee, nonce, valid_until` ([`stream`])
//! * Split: `from, n, d0..d3, fee, nonce, valid_until` with `d` the parts' chained digest ([`split`])
//! * Delegate, SetPolicy, Revoke, Sweep: `owner`, the action's fields (a policy as its digest),
//!   then `fee, nonce, valid_until` ([`passport`])
//!
//! The message hash is what is signed *and* the transaction id. The signature is never hashed
//! into the id, so re-encoding or malleating a signature cannot produce a second transaction.
//! Each kind hashes a fixed number of elements, so `hash_no_pad` needs no padding.
//!
//! # Canonical byte encoding
//!
//! One tag byte, then the fields in the order above with fixed sizes, integers little-endian,
//! the public key as its 40-byte encoding, an L1 address as its 20 raw bytes and the 72-byte
//! signature last. Each kind but the split has a fixed length ([`TxKind::encoded_len`]):
//!
//! * Register (121): `tag ‖ pubkey(40) ‖ valid_until(8) ‖ signature(72)`
//! * Transfer (113): `tag ‖ from(4) ‖ to(4) ‖ amount(8) ‖ fee(8) ‖ nonce(8) ‖ valid_until(8) ‖ signature(72)`
//! * Withdraw (129): `tag ‖ from(4) ‖ to_l1(20) ‖ amount(8) ‖ fee(8) ‖ nonce(8) ‖ valid_until(8) ‖ signature(72)`
//! * Deposit (21): `tag ‖ seq(8) ‖ to(4) ‖ amount(8)`
//! * ForcedWithdraw (146): `tag ‖ seq(8) ‖ requested_at(8) ‖ withdraw(129)`, the last part being
//!   the embedded withdraw's own encoding (tag 3 included), i.e. the L1 `withdrawTx` bytes
//! * StreamOpen (159), StreamSettle (147), StreamClose (107): `tag ‖ body ‖ fee(8) ‖ nonce(8) ‖
//!   valid_until(8) ‖ signature(72)` ([`stream`])
//! * Split (103 + 12 n): `tag ‖ from(4) ‖ n(2) ‖ [to(4) ‖ amount(8)] x n ‖ fee(8) ‖ nonce(8) ‖
//!   valid_until(8) ‖ signature(72)` ([`split`]; `n <= 1024`, else `TOO_MANY_PAYEES`)
//!
//! [`Transaction::decode`] accepts exactly the outputs of [`Transaction::encode`]: it rejects an
//! empty input, an unknown tag, any other length (truncated or trailing bytes), a public key that
//! is non-canonical or not a valid group element, a non-canonical signature, and any
//! amount, nonce, timestamp or deposit serial number above 2^63 - 1.

use std::fmt;

use plonky2::field::types::Field;

use crate::account::{AccountIndex, Amount, Nonce, Timestamp, MAX_U63};
use crate::apply::Rejection;
use crate::crypto::schnorr::{
    KeyError, MessageHash, PublicKey, SecretKey, Signature, SignatureError,
};
use crate::hash::{hash_no_pad, Digest, F};

pub mod passport;
pub mod shares;
pub mod split;
pub mod stream;
pub use passport::{PassportAction, PassportOp, PassportTx, UnsignedPassportTx};
pub use shares::{Distribute, DistributeBody, RegisterShares, UnsignedRegisterShares};
pub use split::{Split, UnsignedSplit};
pub use stream::{SettleBody, Signed, StreamClose, StreamOpen, StreamSettle, Unsigned};

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

/// The kind of a transaction; its discriminant is the tag byte and the kind element hashed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[repr(u8)]
pub enum TxKind {
    Register = 1,
    Transfer = 2,
    Withdraw = 3,
    Deposit = 4,
    ForcedWithdraw = 5,
    StreamOpen = 7,
    StreamSettle = 8,
    StreamClose = 9,
    Split = 10,
    RegisterShares = 11,
    Distribute = 12,
    Delegate = 13,
    SetPolicy = 14,
    Revoke = 15,
    Sweep = 16,
}

impl TxKind {
    /// Every kind, in tag order.
    pub const ALL: [TxKind; 15] = [
        TxKind::Register,
        TxKind::Transfer,
        TxKind::Withdraw,
        TxKind::Deposit,
        TxKind::ForcedWithdraw,
        TxKind::StreamOpen,
        TxKind::StreamSettle,
        TxKind::StreamClose,
        TxKind::Split,
        TxKind::RegisterShares,
        TxKind::Distribute,
        TxKind::Delegate,
        TxKind::SetPolicy,
        TxKind::Revoke,
        TxKind::Sweep,
    ];

    /// The tag byte (also the kind element of the message hash).
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// The kind with this tag, if any.
    pub const fn from_tag(tag: u8) -> Option<TxKind> {
        match tag {
            1 => Some(TxKind::Register),
            2 => Some(TxKind::Transfer),
            3 => Some(TxKind::Withdraw),
            4 => Some(TxKind::Deposit),
            5 => Some(TxKind::ForcedWithdraw),
            7 => Some(TxKind::StreamOpen),
            8 => Some(TxKind::StreamSettle),
            9 => Some(TxKind::StreamClose),
            10 => Some(TxKind::Split),
            11 => Some(TxKind::RegisterShares),
            12 => Some(TxKind::Distribute),
            13 => Some(TxKind::Delegate),
            14 => Some(TxKind::SetPolicy),
            15 => Some(TxKind::Revoke),
            16 => Some(TxKind::Sweep),
            _ => None,
        }
    }

    /// The fixed length of this kind's canonical encoding, tag byte included; for a split,
    /// whose length varies, the length with no payee, and for a delegate or a policy change
    /// the length with an empty URI and allow-list ([`Transaction::encoded_len`] is exact).
    pub const fn encoded_len(self) -> usize {
        match self {
            TxKind::Register => 1 + PublicKey::BYTES + 8 + Signature::BYTES,
            TxKind::Transfer => 1 + 4 + 4 + 8 + 8 + 8 + 8 + Signature::BYTES,
            TxKind::Withdraw => 1 + 4 + 20 + 8 + 8 + 8 + 8 + Signature::BYTES,
            TxKind::Deposit => 1 + 8 + 4 + 8,
            TxKind::ForcedWithdraw => 1 + 8 + 8 + TxKind::Withdraw.encoded_len(),
            TxKind::StreamOpen => StreamOpen::ENCODED_LEN,
            TxKind::StreamSettle => StreamSettle::ENCODED_LEN,
            TxKind::StreamClose => StreamClose::ENCODED_LEN,
            TxKind::Split => split::SPLIT_BASE_BYTES,
            TxKind::RegisterShares => shares::REGISTER_SHARES_BASE_BYTES,
            TxKind::Distribute => shares::Distribute::ENCODED_LEN,
            TxKind::Delegate => 1 + 4 + PublicKey::BYTES + 8 + passport::POLICY_BASE_BYTES + 96,
            TxKind::SetPolicy => 1 + 4 + 4 + passport::POLICY_BASE_BYTES + 96,
            TxKind::Revoke => 1 + 4 + 4 + 96,
            TxKind::Sweep => 1 + 4 + 4 + 8 + 96,
        }
    }

    /// A stable lower-case name ("register", "transfer", "withdraw", "deposit",
    /// "forced_withdraw", "stream_open", "stream_settle", "stream_close", "split", "delegate",
    /// "set_policy", "revoke", "sweep").
    pub const fn name(self) -> &'static str {
        match self {
            TxKind::Register => "register",
            TxKind::Transfer => "transfer",
            TxKind::Withdraw => "withdraw",
            TxKind::Deposit => "deposit",
            TxKind::ForcedWithdraw => "forced_withdraw",
            TxKind::StreamOpen => "stream_open",
            TxKind::StreamSettle => "stream_settle",
            TxKind::StreamClose => "stream_close",
            TxKind::Split => "split",
            TxKind::RegisterShares => "register_shares",
            TxKind::Distribute => "distribute",
            TxKind::Delegate => "delegate",
            TxKind::SetPolicy => "set_policy",
            TxKind::Revoke => "revoke",
            TxKind::Sweep => "sweep",
        }
    }

    /// Whether a node of this version accepts the kind. The stream kinds and the split are
    /// defined but not yet proven by the circuits, so a node refuses them at the door
    /// (`KIND_NOT_ENABLED`) rather than accept what it could not prove.
    pub const fn is_enabled(self) -> bool {
        !matches!(
            self,
            TxKind::StreamOpen
                | TxKind::StreamSettle
                | TxKind::StreamClose
                | TxKind::Split
                | TxKind::RegisterShares
                | TxKind::Distribute
                | TxKind::Delegate
                | TxKind::SetPolicy
                | TxKind::Revoke
                | TxKind::Sweep
        )
    }

    fn tag_field(self) -> F {
        F::from_canonical_u8(self.tag())
    }
}

impl fmt::Display for TxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Maximum number of elements hashed by any message hash (Delegate: 4 + 1 + 14).
const MAX_HASHED: usize = 19;

/// `hash_no_pad(domain ‖ kind tag ‖ fields)` on a stack buffer.
/// The hashed fields of a transaction that carries a list as its digest (a split's parts, SPEC
/// 19.4; a share registration's shares, 19.6): `signer, n, digest (4), fee, nonce,
/// valid_until`, a fixed 9 elements whatever the list's length.
fn list_fields(
    signer: AccountIndex,
    n: usize,
    digest: crate::hash::Digest,
    fee: Amount,
    nonce: Nonce,
    valid_until: Timestamp,
) -> [F; 9] {
    let d = digest.elements();
    [
        signer.to_field(),
        F::from_canonical_usize(n),
        d[0],
        d[1],
        d[2],
        d[3],
        fee.to_field(),
        nonce.to_field(),
        valid_until.to_field(),
    ]
}

fn message_hash(domain: &Domain, kind: TxKind, fields: &[F]) -> MessageHash {
    debug_assert!(4 + 1 + fields.len() <= MAX_HASHED);
    let mut buf = [F::ZERO; MAX_HASHED];
    buf[..4].copy_from_slice(&domain.digest().elements());
    buf[4] = kind.tag_field();
    buf[5..5 + fields.len()].copy_from_slice(fields);
    MessageHash(hash_no_pad(&buf[..5 + fields.len()]))
}

// ---------------------------------------------------------------------------------------------
// Unsigned bodies: what a wallet fills in before signing.

/// The signed part of a [`Register`]; sign it with the key being registered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UnsignedRegister {
    pub pubkey: PublicKey,
    pub valid_until: Timestamp,
}

/// The signed part of a [`Transfer`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UnsignedTransfer {
    pub from: AccountIndex,
    pub to: AccountIndex,
    pub amount: Amount,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
}

/// The signed part of a [`Withdraw`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UnsignedWithdraw {
    pub from: AccountIndex,
    pub to_l1: L1Address,
    pub amount: Amount,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
}

impl UnsignedRegister {
    /// The hashed fields: `w0..w4, valid_until`.
    pub fn fields(&self) -> [F; 6] {
        let w = self.pubkey.to_field_elements();
        [w[0], w[1], w[2], w[3], w[4], self.valid_until.to_field()]
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        message_hash(domain, TxKind::Register, &self.fields())
    }

    /// Signs with `key`, which must be the secret key of `self.pubkey` for the result to be
    /// accepted (the signature is the proof of possession).
    pub fn sign(self, domain: &Domain, key: &SecretKey) -> Register {
        Register {
            pubkey: self.pubkey,
            valid_until: self.valid_until,
            signature: key.sign(&self.message_hash(domain)),
        }
    }
}

impl UnsignedTransfer {
    /// The hashed fields: `from, to, amount, fee, nonce, valid_until`.
    pub fn fields(&self) -> [F; 6] {
        [
            self.from.to_field(),
            self.to.to_field(),
            self.amount.to_field(),
            self.fee.to_field(),
            self.nonce.to_field(),
            self.valid_until.to_field(),
        ]
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        message_hash(domain, TxKind::Transfer, &self.fields())
    }

    /// Signs with `key` (the sender account's key).
    pub fn sign(self, domain: &Domain, key: &SecretKey) -> Transfer {
        let signature = key.sign(&self.message_hash(domain));
        let UnsignedTransfer {
            from,
            to,
            amount,
            fee,
            nonce,
            valid_until,
        } = self;
        Transfer {
            from,
            to,
            amount,
            fee,
            nonce,
            valid_until,
            signature,
        }
    }
}

impl UnsignedWithdraw {
    /// The hashed fields: `from, address limbs 0..4, amount, fee, nonce, valid_until`.
    pub fn fields(&self) -> [F; 10] {
        let a = self.to_l1.to_field_elements();
        [
            self.from.to_field(),
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            self.amount.to_field(),
            self.fee.to_field(),
            self.nonce.to_field(),
            self.valid_until.to_field(),
        ]
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        message_hash(domain, TxKind::Withdraw, &self.fields())
    }

    /// Signs with `key` (the sender account's key).
    pub fn sign(self, domain: &Domain, key: &SecretKey) -> Withdraw {
        let signature = key.sign(&self.message_hash(domain));
        let UnsignedWithdraw {
            from,
            to_l1,
            amount,
            fee,
            nonce,
            valid_until,
        } = self;
        Withdraw {
            from,
            to_l1,
            amount,
            fee,
            nonce,
            valid_until,
            signature,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Transactions.

/// Registers `pubkey` at the next free account index (chosen by the state, not signed).
/// Signed by `pubkey` itself, which proves possession of the secret key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Register {
    pub pubkey: PublicKey,
    pub valid_until: Timestamp,
    pub signature: Signature,
}

/// A payment from `from` to `to`; `fee` goes to the operator account.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Transfer {
    pub from: AccountIndex,
    pub to: AccountIndex,
    pub amount: Amount,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
    pub signature: Signature,
}

/// Moves `amount` out of the rollup to `to_l1`; `fee` goes to the operator account.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Withdraw {
    pub from: AccountIndex,
    pub to_l1: L1Address,
    pub amount: Amount,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
    pub signature: Signature,
}

/// A deposit from the L1 priority queue. Unsigned: the L1 contract authenticated it, and the
/// batch proof binds the range of queue serial numbers it consumed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Deposit {
    /// The L1 priority-queue serial number. Deposits are consumed strictly in order, from 0.
    /// Must be `<= 2^63 - 1` to be one canonical field element (decoding enforces it).
    pub seq: u64,
    pub to: AccountIndex,
    pub amount: Amount,
}

/// A withdrawal forced through the L1 priority queue (`Rollup.requestForcedWithdrawal`): the
/// signed L2 [`Withdraw`] exactly as queued on L1, its queue serial and the L1 time it was
/// queued. Unlike a deposit it is *not* authenticated by L1 (the contract cannot check an
/// ECgFp5 signature): the L2 judges the embedded withdraw by the withdraw rules and either
/// applies it or rejects it with a reason, and consumes the serial either way. Expiry is judged
/// at `requested_at`, so a sequencer that waits cannot make a request expire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ForcedWithdraw {
    /// The L1 priority-queue serial number (shared with deposits), `<= 2^63 - 1`.
    pub seq: u64,
    /// `block.timestamp` of the L1 block that queued the request.
    pub requested_at: Timestamp,
    pub withdraw: Withdraw,
}

impl ForcedWithdraw {
    /// The hashed fields: `seq, requested_at`, then the embedded withdraw's message hash (four
    /// elements), so the id commits to the signed withdraw without re-hashing its fields.
    pub fn fields(&self, domain: &Domain) -> [F; 6] {
        let m = self.withdraw.unsigned().message_hash(domain).0.elements();
        [
            F::from_noncanonical_u64(self.seq),
            self.requested_at.to_field(),
            m[0],
            m[1],
            m[2],
            m[3],
        ]
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        message_hash(domain, TxKind::ForcedWithdraw, &self.fields(domain))
    }
}

impl Register {
    pub fn unsigned(&self) -> UnsignedRegister {
        UnsignedRegister {
            pubkey: self.pubkey,
            valid_until: self.valid_until,
        }
    }
}

impl Transfer {
    pub fn unsigned(&self) -> UnsignedTransfer {
        UnsignedTransfer {
            from: self.from,
            to: self.to,
            amount: self.amount,
            fee: self.fee,
            nonce: self.nonce,
            valid_until: self.valid_until,
        }
    }
}

impl Withdraw {
    pub fn unsigned(&self) -> UnsignedWithdraw {
        UnsignedWithdraw {
            from: self.from,
            to_l1: self.to_l1,
            amount: self.amount,
            fee: self.fee,
            nonce: self.nonce,
            valid_until: self.valid_until,
        }
    }
}

impl Deposit {
    /// The hashed fields: `seq, to, amount`.
    pub fn fields(&self) -> [F; 3] {
        [
            // seq <= 2^63 - 1 < p for every deposit the L1 queue can produce.
            F::from_noncanonical_u64(self.seq),
            self.to.to_field(),
            self.amount.to_field(),
        ]
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        message_hash(domain, TxKind::Deposit, &self.fields())
    }
}

/// Who authorises a transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Signer {
    /// A registration: signed by the key it carries (proof of possession).
    Key(PublicKey),
    /// A transfer or withdrawal: signed by the key registered at this account.
    Account(AccountIndex),
    /// A deposit or a forced withdrawal: queued by the L1 contract. A forced withdrawal carries
    /// a signature, but it is part of the rules ([`crate::apply`]), not of admission.
    L1,
}

/// Any transaction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Transaction {
    Register(Register),
    Transfer(Transfer),
    Withdraw(Withdraw),
    Deposit(Deposit),
    ForcedWithdraw(ForcedWithdraw),
    StreamOpen(StreamOpen),
    StreamSettle(StreamSettle),
    StreamClose(StreamClose),
    Split(Split),
    /// Delegate, set policy, revoke or sweep (tags 13 to 16): what an owner does to an agent.
    Passport(PassportTx),
    RegisterShares(RegisterShares),
    Distribute(Distribute),
}

impl From<RegisterShares> for Transaction {
    fn from(t: RegisterShares) -> Self {
        Transaction::RegisterShares(t)
    }
}
impl From<Distribute> for Transaction {
    fn from(t: Distribute) -> Self {
        Transaction::Distribute(t)
    }
}

impl From<PassportTx> for Transaction {
    fn from(t: PassportTx) -> Self {
        Transaction::Passport(t)
    }
}
impl From<Split> for Transaction {
    fn from(t: Split) -> Self {
        Transaction::Split(t)
    }
}
impl From<Register> for Transaction {
    fn from(t: Register) -> Self {
        Transaction::Register(t)
    }
}
impl From<Transfer> for Transaction {
    fn from(t: Transfer) -> Self {
        Transaction::Transfer(t)
    }
}
impl From<Withdraw> for Transaction {
    fn from(t: Withdraw) -> Self {
        Transaction::Withdraw(t)
    }
}
impl From<Deposit> for Transaction {
    fn from(t: Deposit) -> Self {
        Transaction::Deposit(t)
    }
}
impl From<ForcedWithdraw> for Transaction {
    fn from(t: ForcedWithdraw) -> Self {
        Transaction::ForcedWithdraw(t)
    }
}
impl From<StreamOpen> for Transaction {
    fn from(t: StreamOpen) -> Self {
        Transaction::StreamOpen(t)
    }
}
impl From<StreamSettle> for Transaction {
    fn from(t: StreamSettle) -> Self {
        Transaction::StreamSettle(t)
    }
}
impl From<StreamClose> for Transaction {
    fn from(t: StreamClose) -> Self {
        Transaction::StreamClose(t)
    }
}

impl Transaction {
    pub fn kind(&self) -> TxKind {
        match self {
            Transaction::Register(_) => TxKind::Register,
            Transaction::Transfer(_) => TxKind::Transfer,
            Transaction::Withdraw(_) => TxKind::Withdraw,
            Transaction::Deposit(_) => TxKind::Deposit,
            Transaction::ForcedWithdraw(_) => TxKind::ForcedWithdraw,
            Transaction::StreamOpen(_) => TxKind::StreamOpen,
            Transaction::StreamSettle(_) => TxKind::StreamSettle,
            Transaction::StreamClose(_) => TxKind::StreamClose,
            Transaction::Split(_) => TxKind::Split,
            Transaction::Passport(t) => t.kind(),
            Transaction::RegisterShares(_) => TxKind::RegisterShares,
            Transaction::Distribute(_) => TxKind::Distribute,
        }
    }

    /// Who must have signed this transaction.
    pub fn signer(&self) -> Signer {
        match self {
            Transaction::Register(t) => Signer::Key(t.pubkey),
            Transaction::Transfer(t) => Signer::Account(t.from),
            Transaction::Withdraw(t) => Signer::Account(t.from),
            Transaction::StreamOpen(t) => Signer::Account(t.signer()),
            Transaction::StreamSettle(t) => Signer::Account(t.signer()),
            Transaction::StreamClose(t) => Signer::Account(t.signer()),
            Transaction::Split(t) => Signer::Account(t.from),
            Transaction::Passport(t) => Signer::Account(t.owner),
            Transaction::RegisterShares(t) => Signer::Account(t.account),
            Transaction::Distribute(t) => Signer::Account(t.signer()),
            Transaction::Deposit(_) | Transaction::ForcedWithdraw(_) => Signer::L1,
        }
    }

    /// The nonce of an account-signed transaction (its signer's; the embedded withdraw's for a
    /// forced withdrawal); `None` for a registration and a deposit.
    pub fn nonce(&self) -> Option<Nonce> {
        match self {
            Transaction::Transfer(t) => Some(t.nonce),
            Transaction::Withdraw(t) => Some(t.nonce),
            Transaction::ForcedWithdraw(t) => Some(t.withdraw.nonce),
            Transaction::StreamOpen(t) => Some(t.nonce),
            Transaction::StreamSettle(t) => Some(t.nonce),
            Transaction::StreamClose(t) => Some(t.nonce),
            Transaction::Split(t) => Some(t.nonce),
            Transaction::Passport(t) => Some(t.nonce),
            Transaction::RegisterShares(t) => Some(t.nonce),
            Transaction::Distribute(t) => Some(t.nonce),
            Transaction::Register(_) | Transaction::Deposit(_) => None,
        }
    }

    /// The signature checked at admission: `None` for a deposit and for a forced withdrawal
    /// (whose embedded signature is judged by the rules; see [`ForcedWithdraw`]).
    pub fn signature(&self) -> Option<&Signature> {
        match self {
            Transaction::Register(t) => Some(&t.signature),
            Transaction::Transfer(t) => Some(&t.signature),
            Transaction::Withdraw(t) => Some(&t.signature),
            Transaction::StreamOpen(t) => Some(&t.signature),
            Transaction::StreamSettle(t) => Some(&t.signature),
            Transaction::StreamClose(t) => Some(&t.signature),
            Transaction::Split(t) => Some(&t.signature),
            Transaction::Passport(t) => Some(&t.signature),
            Transaction::RegisterShares(t) => Some(&t.signature),
            Transaction::Distribute(t) => Some(&t.signature),
            Transaction::Deposit(_) | Transaction::ForcedWithdraw(_) => None,
        }
    }

    /// The field elements hashed after the domain digest: the kind tag, then the kind's fields
    /// (see the module docs). This is the circuits' view of the transaction.
    pub fn to_field_elements(&self, domain: &Domain) -> Vec<F> {
        let mut out = vec![self.kind().tag_field()];
        match self {
            Transaction::Register(t) => out.extend(t.unsigned().fields()),
            Transaction::Transfer(t) => out.extend(t.unsigned().fields()),
            Transaction::Withdraw(t) => out.extend(t.unsigned().fields()),
            Transaction::Deposit(t) => out.extend(t.fields()),
            Transaction::ForcedWithdraw(t) => out.extend(t.fields(domain)),
            Transaction::StreamOpen(t) => out.extend(t.unsigned().fields()),
            Transaction::StreamSettle(t) => out.extend(t.unsigned().fields()),
            Transaction::StreamClose(t) => out.extend(t.unsigned().fields()),
            Transaction::Split(t) => out.extend(t.unsigned().fields()),
            Transaction::Passport(t) => out.extend(t.unsigned().fields()),
            Transaction::RegisterShares(t) => out.extend(t.unsigned().fields()),
            Transaction::Distribute(t) => out.extend(t.unsigned().fields()),
        }
        out
    }

    /// `hash_no_pad(domain digest ‖ kind tag ‖ fields)`: what is signed.
    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        match self {
            Transaction::Register(t) => t.unsigned().message_hash(domain),
            Transaction::Transfer(t) => t.unsigned().message_hash(domain),
            Transaction::Withdraw(t) => t.unsigned().message_hash(domain),
            Transaction::Deposit(t) => t.message_hash(domain),
            Transaction::ForcedWithdraw(t) => t.message_hash(domain),
            Transaction::StreamOpen(t) => t.unsigned().message_hash(domain),
            Transaction::StreamSettle(t) => t.unsigned().message_hash(domain),
            Transaction::StreamClose(t) => t.unsigned().message_hash(domain),
            Transaction::Split(t) => t.unsigned().message_hash(domain),
            Transaction::Passport(t) => t.unsigned().message_hash(domain),
            Transaction::RegisterShares(t) => t.unsigned().message_hash(domain),
            Transaction::Distribute(t) => t.unsigned().message_hash(domain),
        }
    }

    /// The transaction id: the message hash. Independent of the signature bytes, so a
    /// malleated signature cannot create a second transaction.
    pub fn id(&self, domain: &Domain) -> MessageHash {
        self.message_hash(domain)
    }

    /// Checks the signature against `sender_key`, which must be the key of [`Self::signer`]:
    /// the key registered at `from` for a transfer or withdrawal, the carried key for a
    /// registration (any other key is refused). A deposit has no signature and always passes.
    pub fn verify_signature(
        &self,
        domain: &Domain,
        sender_key: &PublicKey,
    ) -> Result<(), Rejection> {
        self.verify_signature_with_id(&self.message_hash(domain), sender_key)
    }

    /// [`Self::verify_signature`] with an already computed message hash.
    pub(crate) fn verify_signature_with_id(
        &self,
        id: &MessageHash,
        sender_key: &PublicKey,
    ) -> Result<(), Rejection> {
        let signature = match self {
            Transaction::Register(t) => {
                if *sender_key != t.pubkey {
                    return Err(Rejection::BadSignature);
                }
                &t.signature
            }
            Transaction::Transfer(t) => &t.signature,
            Transaction::Withdraw(t) => &t.signature,
            Transaction::StreamOpen(t) => &t.signature,
            Transaction::StreamSettle(t) => &t.signature,
            Transaction::StreamClose(t) => &t.signature,
            Transaction::Split(t) => &t.signature,
            Transaction::Passport(t) => &t.signature,
            Transaction::RegisterShares(t) => &t.signature,
            Transaction::Distribute(t) => &t.signature,
            Transaction::Deposit(_) | Transaction::ForcedWithdraw(_) => return Ok(()),
        };
        sender_key
            .verify(id, signature)
            .map_err(|_| Rejection::BadSignature)
    }

    /// The length of [`Transaction::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        match self {
            Transaction::Split(t) => t.encoded_len(),
            Transaction::Passport(t) => t.encoded_len(),
            Transaction::RegisterShares(t) => t.encoded_len(),
            Transaction::Distribute(_) => TxKind::Distribute.encoded_len(),
            other => other.kind().encoded_len(),
        }
    }

    /// The canonical byte encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(self.kind().tag());
        match self {
            Transaction::Register(t) => {
                out.extend_from_slice(&t.pubkey.to_bytes());
                out.extend_from_slice(&t.valid_until.get().to_le_bytes());
                out.extend_from_slice(&t.signature.to_bytes());
            }
            Transaction::Transfer(t) => {
                out.extend_from_slice(&t.from.0.to_le_bytes());
                out.extend_from_slice(&t.to.0.to_le_bytes());
                out.extend_from_slice(&t.amount.get().to_le_bytes());
                out.extend_from_slice(&t.fee.get().to_le_bytes());
                out.extend_from_slice(&t.nonce.get().to_le_bytes());
                out.extend_from_slice(&t.valid_until.get().to_le_bytes());
                out.extend_from_slice(&t.signature.to_bytes());
            }
            Transaction::Withdraw(t) => {
                out.extend_from_slice(&t.from.0.to_le_bytes());
                out.extend_from_slice(&t.to_l1.0);
                out.extend_from_slice(&t.amount.get().to_le_bytes());
                out.extend_from_slice(&t.fee.get().to_le_bytes());
                out.extend_from_slice(&t.nonce.get().to_le_bytes());
                out.extend_from_slice(&t.valid_until.get().to_le_bytes());
                out.extend_from_slice(&t.signature.to_bytes());
            }
            Transaction::Deposit(t) => {
                out.extend_from_slice(&t.seq.to_le_bytes());
                out.extend_from_slice(&t.to.0.to_le_bytes());
                out.extend_from_slice(&t.amount.get().to_le_bytes());
            }
            Transaction::ForcedWithdraw(t) => {
                out.extend_from_slice(&t.seq.to_le_bytes());
                out.extend_from_slice(&t.requested_at.get().to_le_bytes());
                out.extend_from_slice(&Transaction::Withdraw(t.withdraw).encode());
            }
            Transaction::StreamOpen(t) => t.write(&mut out),
            Transaction::StreamSettle(t) => t.write(&mut out),
            Transaction::StreamClose(t) => t.write(&mut out),
            Transaction::Split(t) => t.write(&mut out),
            Transaction::Passport(t) => t.write(&mut out),
            Transaction::RegisterShares(t) => t.write(&mut out),
            Transaction::Distribute(t) => t.write(&mut out),
        }
        debug_assert_eq!(out.len(), self.encoded_len());
        out
    }

    /// Parses the canonical encoding, accepting nothing else (see the module docs).
    pub fn decode(bytes: &[u8]) -> Result<Transaction, DecodeError> {
        let (&tag, _) = bytes.split_first().ok_or(DecodeError::Empty)?;
        let kind = TxKind::from_tag(tag).ok_or(DecodeError::UnknownTag(tag))?;
        let expected = match kind {
            // A split's length follows from its payee count (a truncated header is a length
            // error against the length with no payee).
            TxKind::Split => match split::payee_count(bytes) {
                Some(n) if n > crate::split::MAX_PAYEES => {
                    return Err(DecodeError::TooManyPayees(n))
                }
                Some(n) => split::SPLIT_BASE_BYTES + split::PART_BYTES * n,
                None => kind.encoded_len(),
            },
            // The same header as a split's: account, then the count.
            TxKind::RegisterShares => match split::payee_count(bytes) {
                Some(n) if n > crate::split::MAX_PAYEES => {
                    return Err(DecodeError::TooManyPayees(n))
                }
                Some(n) => shares::REGISTER_SHARES_BASE_BYTES + shares::SHARE_BYTES * n,
                None => kind.encoded_len(),
            },
            _ => passport::tx_len(kind, bytes)?,
        };
        if bytes.len() != expected {
            return Err(DecodeError::WrongLength {
                kind,
                expected,
                got: bytes.len(),
            });
        }
        let mut r = Reader {
            rest: &bytes[1..],
            kind,
            total: bytes.len(),
        };
        let tx = match kind {
            TxKind::Register => Transaction::Register(Register {
                pubkey: r.pubkey()?,
                valid_until: r.bounded("valid_until")?,
                signature: r.signature()?,
            }),
            TxKind::Transfer => Transaction::Transfer(Transfer {
                from: r.index()?,
                to: r.index()?,
                amount: r.bounded("amount")?,
                fee: r.bounded("fee")?,
                nonce: r.bounded("nonce")?,
                valid_until: r.bounded("valid_until")?,
                signature: r.signature()?,
            }),
            TxKind::Withdraw => Transaction::Withdraw(Withdraw {
                from: r.index()?,
                to_l1: {
                    // The token refuses a transfer to address zero: such a payout could never be
                    // claimed, so the withdrawal would burn the money (SPEC 9).
                    let to = L1Address(r.array()?);
                    if to.0 == [0; 20] {
                        return Err(DecodeError::ZeroDestination);
                    }
                    to
                },
                amount: r.bounded("amount")?,
                fee: r.bounded("fee")?,
                nonce: r.bounded("nonce")?,
                valid_until: r.bounded("valid_until")?,
                signature: r.signature()?,
            }),
            TxKind::Deposit => {
                let seq = r.u64()?;
                if seq > MAX_U63 {
                    return Err(DecodeError::OutOfRange {
                        field: "seq",
                        value: seq,
                    });
                }
                Transaction::Deposit(Deposit {
                    seq,
                    to: r.index()?,
                    amount: r.bounded("amount")?,
                })
            }
            TxKind::ForcedWithdraw => {
                let seq = r.u64()?;
                if seq > MAX_U63 {
                    return Err(DecodeError::OutOfRange {
                        field: "seq",
                        value: seq,
                    });
                }
                let requested_at = r.bounded("requested_at")?;
                let inner: [u8; TxKind::Withdraw.encoded_len()] = r.array()?;
                if inner[0] != TxKind::Withdraw.tag() {
                    return Err(DecodeError::ForcedNotAWithdraw(inner[0]));
                }
                match Transaction::decode(&inner)? {
                    Transaction::Withdraw(withdraw) => {
                        Transaction::ForcedWithdraw(ForcedWithdraw {
                            seq,
                            requested_at,
                            withdraw,
                        })
                    }
                    other => return Err(DecodeError::ForcedNotAWithdraw(other.kind().tag())),
                }
            }
            TxKind::StreamOpen => Transaction::StreamOpen(Signed::read(&mut r)?),
            TxKind::StreamSettle => Transaction::StreamSettle(Signed::read(&mut r)?),
            TxKind::StreamClose => Transaction::StreamClose(Signed::read(&mut r)?),
            TxKind::Split => Transaction::Split(Split::read(&mut r)?),
            TxKind::Delegate | TxKind::SetPolicy | TxKind::Revoke | TxKind::Sweep => {
                Transaction::Passport(PassportTx::read(kind, &mut r)?)
            }
            TxKind::RegisterShares => Transaction::RegisterShares(RegisterShares::read(&mut r)?),
            TxKind::Distribute => Transaction::Distribute(Signed::read(&mut r)?),
        };
        // The length check above makes the field sizes add up exactly.
        debug_assert!(r.rest.is_empty());
        Ok(tx)
    }
}

/// Why [`Transaction::decode`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty transaction encoding")]
    Empty,
    #[error("unknown transaction tag {0}")]
    UnknownTag(u8),
    #[error("a {kind} transaction is {expected} bytes long, got {got}")]
    WrongLength {
        kind: TxKind,
        expected: usize,
        got: usize,
    },
    #[error("invalid public key: {0}")]
    PublicKey(#[source] KeyError),
    #[error("invalid signature encoding: {0}")]
    Signature(#[source] SignatureError),
    #[error("{field} = {value} is above 2^63 - 1")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("a forced withdrawal must embed a withdraw (tag 3), got tag {0}")]
    ForcedNotAWithdraw(u8),
    #[error("a withdrawal to the zero address could never be claimed")]
    ZeroDestination,
    #[error("{0} is not four canonical field elements (each below p)")]
    NonCanonicalDigest(&'static str),
    #[error("a split to {0} payees: at most 1,024")]
    TooManyPayees(usize),
    #[error("a card URI must be UTF-8")]
    UriNotUtf8,
    /// A policy that is not one ([`crate::passport::AllowList::new`], [`crate::passport::Card::new`]).
    #[error(transparent)]
    Passport(crate::passport::PassportRejection),
}

impl DecodeError {
    /// Stable machine-readable name, as used in docs/SPEC.md section 9.1 and the vectors.
    pub const fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "EMPTY",
            DecodeError::UnknownTag(_) => "UNKNOWN_TAG",
            DecodeError::WrongLength { .. } => "WRONG_LENGTH",
            DecodeError::PublicKey(KeyError::NonCanonical) => "PUBLIC_KEY_NON_CANONICAL",
            DecodeError::PublicKey(KeyError::NotOnCurve) => "PUBLIC_KEY_NOT_ON_CURVE",
            DecodeError::PublicKey(KeyError::Neutral) => "PUBLIC_KEY_NEUTRAL",
            DecodeError::PublicKey(_) => "PUBLIC_KEY_INVALID",
            DecodeError::Signature(SignatureError::NonCanonicalChallenge) => {
                "SIGNATURE_NON_CANONICAL_CHALLENGE"
            }
            DecodeError::Signature(SignatureError::NonCanonicalScalar) => {
                "SIGNATURE_NON_CANONICAL_SCALAR"
            }
            DecodeError::Signature(_) => "SIGNATURE_INVALID",
            DecodeError::OutOfRange { .. } => "OUT_OF_RANGE",
            DecodeError::ForcedNotAWithdraw(_) => "FORCED_NOT_A_WITHDRAW",
            DecodeError::ZeroDestination => "ZERO_DESTINATION",
            DecodeError::NonCanonicalDigest(_) => "NON_CANONICAL_DIGEST",
            DecodeError::TooManyPayees(_) => "TOO_MANY_PAYEES",
            DecodeError::UriNotUtf8 => "URI_NOT_UTF8",
            DecodeError::Passport(r) => r.code(),
        }
    }
}

/// A cursor over the fixed-size fields of an encoding whose total length was already checked.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    kind: TxKind,
    total: usize,
}

/// Runs `read` over exactly `bytes` (a pubdata op's body) with the transaction decoder's field
/// checks; bytes left over are a length error.
pub(crate) fn read_exact<T>(
    bytes: &[u8],
    kind: TxKind,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader {
        rest: bytes,
        kind,
        total: bytes.len(),
    };
    let value = read(&mut r)?;
    if !r.rest.is_empty() {
        return Err(DecodeError::WrongLength {
            kind,
            expected: bytes.len() - r.rest.len(),
            got: bytes.len(),
        });
    }
    Ok(value)
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        // Cannot fail once the length matched the kind; reported as a length error if it did.
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::WrongLength {
                kind: self.kind,
                expected: self.kind.encoded_len(),
                got: self.total,
            })?;
        self.rest = tail;
        Ok(*head)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    fn index(&mut self) -> Result<AccountIndex, DecodeError> {
        self.array().map(|b| AccountIndex(u32::from_le_bytes(b)))
    }

    fn bounded<T: TryFrom<u64>>(&mut self, field: &'static str) -> Result<T, DecodeError> {
        let value = self.u64()?;
        T::try_from(value).map_err(|_| DecodeError::OutOfRange { field, value })
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::WrongLength {
                kind: self.kind,
                expected: self.kind.encoded_len(),
                got: self.total,
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn pubkey(&mut self) -> Result<PublicKey, DecodeError> {
        PublicKey::from_bytes(&self.array()?).map_err(DecodeError::PublicKey)
    }

    fn signature(&mut self) -> Result<Signature, DecodeError> {
        Signature::from_bytes(&self.array()?).map_err(DecodeError::Signature)
    }
}

#[cfg(test)]
mod tests;
