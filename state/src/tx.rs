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
//!
//! The message hash is what is signed *and* the transaction id. The signature is never hashed
//! into the id, so re-encoding or malleating a signature cannot produce a second transaction.
//! Each kind hashes a fixed number of elements, so `hash_no_pad` needs no padding.
//!
//! # Canonical byte encoding
//!
//! One tag byte, then the fields in the order above with fixed sizes, integers little-endian,
//! the public key as its 40-byte encoding, an L1 address as its 20 raw bytes and the 72-byte
//! signature last. Each kind has a fixed length ([`TxKind::encoded_len`]):
//!
//! * Register (121): `tag ‖ pubkey(40) ‖ valid_until(8) ‖ signature(72)`
//! * Transfer (113): `tag ‖ from(4) ‖ to(4) ‖ amount(8) ‖ fee(8) ‖ nonce(8) ‖ valid_until(8) ‖ signature(72)`
//! * Withdraw (129): `tag ‖ from(4) ‖ to_l1(20) ‖ amount(8) ‖ fee(8) ‖ nonce(8) ‖ valid_until(8) ‖ signature(72)`
//! * Deposit (21): `tag ‖ seq(8) ‖ to(4) ‖ amount(8)`
//! * ForcedWithdraw (146): `tag ‖ seq(8) ‖ requested_at(8) ‖ withdraw(129)`, the last part being
//!   the embedded withdraw's own encoding (tag 3 included), i.e. the L1 `withdrawTx` bytes
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
}

impl TxKind {
    /// Every kind, in tag order.
    pub const ALL: [TxKind; 5] = [
        TxKind::Register,
        TxKind::Transfer,
        TxKind::Withdraw,
        TxKind::Deposit,
        TxKind::ForcedWithdraw,
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
            _ => None,
        }
    }

    /// The fixed length of this kind's canonical encoding, tag byte included.
    pub const fn encoded_len(self) -> usize {
        match self {
            TxKind::Register => 1 + PublicKey::BYTES + 8 + Signature::BYTES,
            TxKind::Transfer => 1 + 4 + 4 + 8 + 8 + 8 + 8 + Signature::BYTES,
            TxKind::Withdraw => 1 + 4 + 20 + 8 + 8 + 8 + 8 + Signature::BYTES,
            TxKind::Deposit => 1 + 8 + 4 + 8,
            TxKind::ForcedWithdraw => 1 + 8 + 8 + TxKind::Withdraw.encoded_len(),
        }
    }

    /// A stable lower-case name ("register", "transfer", "withdraw", "deposit",
    /// "forced_withdraw").
    pub const fn name(self) -> &'static str {
        match self {
            TxKind::Register => "register",
            TxKind::Transfer => "transfer",
            TxKind::Withdraw => "withdraw",
            TxKind::Deposit => "deposit",
            TxKind::ForcedWithdraw => "forced_withdraw",
        }
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

/// Maximum number of elements hashed by any message hash (Withdraw: 4 + 1 + 10).
const MAX_HASHED: usize = 15;

/// `hash_no_pad(domain ‖ kind tag ‖ fields)` on a stack buffer.
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
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transaction {
    Register(Register),
    Transfer(Transfer),
    Withdraw(Withdraw),
    Deposit(Deposit),
    ForcedWithdraw(ForcedWithdraw),
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

impl Transaction {
    pub fn kind(&self) -> TxKind {
        match self {
            Transaction::Register(_) => TxKind::Register,
            Transaction::Transfer(_) => TxKind::Transfer,
            Transaction::Withdraw(_) => TxKind::Withdraw,
            Transaction::Deposit(_) => TxKind::Deposit,
            Transaction::ForcedWithdraw(_) => TxKind::ForcedWithdraw,
        }
    }

    /// Who must have signed this transaction.
    pub fn signer(&self) -> Signer {
        match self {
            Transaction::Register(t) => Signer::Key(t.pubkey),
            Transaction::Transfer(t) => Signer::Account(t.from),
            Transaction::Withdraw(t) => Signer::Account(t.from),
            Transaction::Deposit(_) | Transaction::ForcedWithdraw(_) => Signer::L1,
        }
    }

    /// The signature checked at admission: `None` for a deposit and for a forced withdrawal
    /// (whose embedded signature is judged by the rules; see [`ForcedWithdraw`]).
    pub fn signature(&self) -> Option<&Signature> {
        match self {
            Transaction::Register(t) => Some(&t.signature),
            Transaction::Transfer(t) => Some(&t.signature),
            Transaction::Withdraw(t) => Some(&t.signature),
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
            Transaction::Deposit(_) | Transaction::ForcedWithdraw(_) => return Ok(()),
        };
        sender_key
            .verify(id, signature)
            .map_err(|_| Rejection::BadSignature)
    }

    /// The canonical byte encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.kind().encoded_len());
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
        }
        debug_assert_eq!(out.len(), self.kind().encoded_len());
        out
    }

    /// Parses the canonical encoding, accepting nothing else (see the module docs).
    pub fn decode(bytes: &[u8]) -> Result<Transaction, DecodeError> {
        let (&tag, _) = bytes.split_first().ok_or(DecodeError::Empty)?;
        let kind = TxKind::from_tag(tag).ok_or(DecodeError::UnknownTag(tag))?;
        if bytes.len() != kind.encoded_len() {
            return Err(DecodeError::WrongLength {
                kind,
                expected: kind.encoded_len(),
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
        }
    }
}

/// A cursor over the fixed-size fields of an encoding whose total length was already checked.
struct Reader<'a> {
    rest: &'a [u8],
    kind: TxKind,
    total: usize,
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

    fn pubkey(&mut self) -> Result<PublicKey, DecodeError> {
        PublicKey::from_bytes(&self.array()?).map_err(DecodeError::PublicKey)
    }

    fn signature(&mut self) -> Result<Signature, DecodeError> {
        Signature::from_bytes(&self.array()?).map_err(DecodeError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_domain_is_the_documented_ascii_constant() {
        assert_eq!(TAG_DOMAIN, 0x726f_6c6c_7570_7631);
        const { assert!(TAG_DOMAIN < crate::hash::P) };
    }

    #[test]
    fn encoded_lengths() {
        assert_eq!(TxKind::Register.encoded_len(), 121);
        assert_eq!(TxKind::Transfer.encoded_len(), 113);
        assert_eq!(TxKind::Withdraw.encoded_len(), 129);
        assert_eq!(TxKind::Deposit.encoded_len(), 21);
        assert_eq!(TxKind::ForcedWithdraw.encoded_len(), 146);
        for kind in TxKind::ALL {
            assert_eq!(TxKind::from_tag(kind.tag()), Some(kind));
        }
        assert_eq!(TxKind::from_tag(0), None);
        assert_eq!(TxKind::from_tag(6), None);
    }

    #[test]
    fn domain_digest_binds_every_byte() {
        let d = Domain {
            chain_id: 31337,
            rollup: [7u8; 20],
        };
        let base = d.digest();
        let mut other = d;
        other.chain_id = 31337 + (1 << 32);
        assert_ne!(other.digest(), base, "high half of the chain id is hashed");
        for i in 0..20 {
            let mut other = d;
            other.rollup[i] ^= 1;
            assert_ne!(other.digest(), base, "address byte {i} is hashed");
        }
        let e = d.to_field_elements();
        use plonky2::field::types::PrimeField64;
        assert_eq!(e[3].to_canonical_u64(), 0x0707_0707);
    }

    #[test]
    fn address_limbs_are_big_endian() {
        use plonky2::field::types::PrimeField64;
        let mut a = [0u8; 20];
        a[0] = 0x12;
        a[3] = 0x34;
        a[19] = 0xff;
        let limbs = L1Address(a).to_field_elements();
        assert_eq!(limbs[0].to_canonical_u64(), 0x1200_0034);
        assert_eq!(limbs[4].to_canonical_u64(), 0xff);
    }

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const D: Domain = Domain {
        chain_id: 31337,
        rollup: [9; 20],
    };

    fn sk(seed: u64) -> SecretKey {
        SecretKey::random(&mut StdRng::seed_from_u64(seed))
    }

    /// One transaction of each kind, with real keys and signatures.
    fn samples() -> [Transaction; 5] {
        let k = sk(1);
        let n = |v| Amount::new(v).unwrap();
        let withdraw = UnsignedWithdraw {
            from: AccountIndex(3),
            to_l1: L1Address([0x5a; 20]),
            amount: n(9),
            fee: n(1),
            nonce: Nonce::new(2).unwrap(),
            valid_until: Timestamp::new(1_800_000_000).unwrap(),
        }
        .sign(&D, &k);
        [
            UnsignedRegister {
                pubkey: k.public_key(),
                valid_until: Timestamp::new(1_700_000_000).unwrap(),
            }
            .sign(&D, &k)
            .into(),
            UnsignedTransfer {
                from: AccountIndex(1),
                to: AccountIndex(u32::MAX),
                amount: n(5),
                fee: Amount::MAX,
                nonce: Nonce::new(3).unwrap(),
                valid_until: Timestamp::MAX,
            }
            .sign(&D, &k)
            .into(),
            UnsignedWithdraw {
                from: AccountIndex(7),
                to_l1: L1Address([0xa5; 20]),
                amount: Amount::MAX,
                fee: n(0),
                nonce: Nonce::MAX,
                valid_until: Timestamp::ZERO,
            }
            .sign(&D, &k)
            .into(),
            Deposit {
                seq: MAX_U63,
                to: AccountIndex(2),
                amount: n(1),
            }
            .into(),
            ForcedWithdraw {
                seq: 12,
                requested_at: Timestamp::new(1_750_000_000).unwrap(),
                withdraw,
            }
            .into(),
        ]
    }

    #[test]
    fn every_kind_roundtrips_and_has_a_fixed_length() {
        for tx in samples() {
            let bytes = tx.encode();
            assert_eq!(bytes.len(), tx.kind().encoded_len());
            assert_eq!(bytes[0], tx.kind().tag());
            assert_eq!(Transaction::decode(&bytes), Ok(tx));
        }
    }

    #[test]
    fn every_kind_rejects_truncation_and_trailing_bytes() {
        for tx in samples() {
            let bytes = tx.encode();
            let kind = tx.kind();
            for len in 1..bytes.len() {
                assert_eq!(
                    Transaction::decode(&bytes[..len]),
                    Err(DecodeError::WrongLength {
                        kind,
                        expected: bytes.len(),
                        got: len
                    })
                );
            }
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(
                Transaction::decode(&long),
                Err(DecodeError::WrongLength {
                    kind,
                    expected: bytes.len(),
                    got: bytes.len() + 1
                })
            );
        }
    }

    #[test]
    fn decode_rejects_invalid_public_keys() {
        let reg = samples()[0].encode();
        let mut bad = reg.clone();
        bad[1..41].fill(0xff);
        assert_eq!(
            Transaction::decode(&bad),
            Err(DecodeError::PublicKey(KeyError::NonCanonical))
        );
        // w = 0 encodes the neutral element, which is not a valid key.
        let mut neutral = reg.clone();
        neutral[1..41].fill(0);
        assert_eq!(
            Transaction::decode(&neutral),
            Err(DecodeError::PublicKey(KeyError::Neutral))
        );
        // A canonical encoding that is not a group element (about half of them).
        let off_curve = (1u64..1000)
            .map(|v| {
                let mut b = [0u8; 40];
                b[..8].copy_from_slice(&v.to_le_bytes());
                b
            })
            .find(|b| PublicKey::from_bytes(b) == Err(KeyError::NotOnCurve))
            .expect("some small w is off the curve");
        let mut bad = reg;
        bad[1..41].copy_from_slice(&off_curve);
        assert_eq!(
            Transaction::decode(&bad),
            Err(DecodeError::PublicKey(KeyError::NotOnCurve))
        );
    }

    #[test]
    fn forced_withdraw_embeds_the_l1_bytes_and_checks_them() {
        let forced = samples()[4];
        let Transaction::ForcedWithdraw(f) = forced else {
            panic!("sample 4 is a forced withdrawal")
        };
        let bytes = forced.encode();
        // The embedded withdraw is byte for byte the L1 payload (`withdrawTx`).
        assert_eq!(
            &bytes[17..],
            &Transaction::Withdraw(f.withdraw).encode()[..]
        );
        for (at, field) in [(1, "seq"), (9, "requested_at")] {
            let mut bad = bytes.clone();
            bad[at..at + 8].copy_from_slice(&(MAX_U63 + 1).to_le_bytes());
            assert_eq!(
                Transaction::decode(&bad),
                Err(DecodeError::OutOfRange {
                    field,
                    value: MAX_U63 + 1
                })
            );
        }
        let mut bad = bytes.clone();
        bad[17] = TxKind::Transfer.tag();
        assert_eq!(
            Transaction::decode(&bad),
            Err(DecodeError::ForcedNotAWithdraw(2))
        );
        let mut bad = bytes.clone();
        bad[17 + 41..17 + 49].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            Transaction::decode(&bad),
            Err(DecodeError::OutOfRange {
                field: "nonce",
                value: u64::MAX
            })
        );
        let mut bad = bytes;
        let sig = bad.len() - Signature::BYTES;
        bad[sig + 32..].fill(0xff);
        assert_eq!(
            Transaction::decode(&bad),
            Err(DecodeError::Signature(SignatureError::NonCanonicalScalar))
        );
        // The id binds the serial, the L1 time and the embedded withdraw.
        let id = forced.id(&D);
        let mut other = f;
        other.seq += 1;
        assert_ne!(Transaction::ForcedWithdraw(other).id(&D), id);
        let mut other = f;
        other.requested_at = Timestamp::new(1).unwrap();
        assert_ne!(Transaction::ForcedWithdraw(other).id(&D), id);
        let mut other = f;
        other.withdraw.fee = Amount::new(2).unwrap();
        assert_ne!(Transaction::ForcedWithdraw(other).id(&D), id);
        assert_ne!(id, Transaction::Withdraw(f.withdraw).id(&D));
    }

    #[test]
    fn decode_rejects_non_canonical_signatures() {
        for tx in &samples()[..3] {
            let bytes = tx.encode();
            let sig = bytes.len() - Signature::BYTES;
            let mut bad_e = bytes.clone();
            bad_e[sig..sig + 8].copy_from_slice(&crate::hash::P.to_le_bytes());
            assert_eq!(
                Transaction::decode(&bad_e),
                Err(DecodeError::Signature(
                    SignatureError::NonCanonicalChallenge
                ))
            );
            let mut bad_s = bytes;
            bad_s[sig + 32..].fill(0xff);
            assert_eq!(
                Transaction::decode(&bad_s),
                Err(DecodeError::Signature(SignatureError::NonCanonicalScalar))
            );
        }
    }

    #[test]
    fn decode_rejects_a_withdrawal_to_the_zero_address() {
        let [_, _, withdraw, _, forced] = samples().map(|t| t.encode());
        let mut bad = withdraw.clone();
        bad[5..25].fill(0);
        assert_eq!(Transaction::decode(&bad), Err(DecodeError::ZeroDestination));
        assert_eq!(DecodeError::ZeroDestination.code(), "ZERO_DESTINATION");
        // Embedded in a forced withdrawal (offset 17 + 5), the same.
        let mut bad = forced.clone();
        bad[22..42].fill(0);
        assert_eq!(Transaction::decode(&bad), Err(DecodeError::ZeroDestination));
        // One non-zero byte is a destination.
        let mut ok = withdraw;
        ok[5..25].fill(0);
        ok[24] = 1;
        assert!(Transaction::decode(&ok).is_ok());
    }

    #[test]
    fn decode_rejects_integers_above_the_bound() {
        let [reg, transfer, withdraw, _, _] = samples().map(|t| t.encode());
        let cases: [(&Vec<u8>, usize, &str); 9] = [
            (&reg, 41, "valid_until"),
            (&transfer, 9, "amount"),
            (&transfer, 17, "fee"),
            (&transfer, 25, "nonce"),
            (&transfer, 33, "valid_until"),
            (&withdraw, 25, "amount"),
            (&withdraw, 33, "fee"),
            (&withdraw, 41, "nonce"),
            (&withdraw, 49, "valid_until"),
        ];
        for (bytes, at, field) in cases {
            for value in [MAX_U63 + 1, u64::MAX] {
                let mut bad = bytes.clone();
                bad[at..at + 8].copy_from_slice(&value.to_le_bytes());
                assert_eq!(
                    Transaction::decode(&bad),
                    Err(DecodeError::OutOfRange { field, value }),
                    "{field} at {at}"
                );
            }
            // The bound itself is accepted (the signature no longer matches, but decoding
            // does not check signatures).
            let mut ok = bytes.clone();
            ok[at..at + 8].copy_from_slice(&MAX_U63.to_le_bytes());
            assert!(Transaction::decode(&ok).is_ok(), "{field} at {at}");
        }
    }

    #[test]
    fn id_is_the_hash_of_domain_and_fields_without_the_signature() {
        let lens = [7, 7, 11, 4, 7];
        for (tx, len) in samples().iter().zip(lens) {
            let fields = tx.to_field_elements(&D);
            assert_eq!(fields.len(), len, "{}", tx.kind());
            let input = [&D.digest().elements()[..], &fields[..]].concat();
            assert_eq!(tx.id(&D), MessageHash(hash_no_pad(&input)));
            assert_eq!(tx.id(&D), tx.message_hash(&D));
        }
        // Same body, other signature (here: signed by another key): same id.
        if let Transaction::Transfer(t) = samples()[1] {
            let resigned = t.unsigned().sign(&D, &sk(2));
            assert_ne!(resigned.signature, t.signature);
            assert_eq!(
                Transaction::from(resigned).id(&D),
                Transaction::from(t).id(&D)
            );
        }
    }

    #[test]
    fn signer_and_signature_accessors() {
        let [reg, transfer, withdraw, deposit, _] = samples();
        assert_eq!(reg.signer(), Signer::Key(sk(1).public_key()));
        assert_eq!(transfer.signer(), Signer::Account(AccountIndex(1)));
        assert_eq!(withdraw.signer(), Signer::Account(AccountIndex(7)));
        assert_eq!(deposit.signer(), Signer::L1);
        assert!(deposit.signature().is_none() && transfer.signature().is_some());
    }

    /// Deposits carry no key or signature, so their encoding can be tested without Schnorr.
    #[test]
    fn deposit_roundtrip_and_rejections() {
        let dep = Transaction::Deposit(Deposit {
            seq: 9,
            to: AccountIndex(3),
            amount: Amount::new(1_000).unwrap(),
        });
        let bytes = dep.encode();
        assert_eq!(bytes.len(), 21);
        assert_eq!(Transaction::decode(&bytes), Ok(dep));

        assert_eq!(Transaction::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Transaction::decode(&[0]), Err(DecodeError::UnknownTag(0)));
        assert_eq!(
            Transaction::decode(&[6; 21]),
            Err(DecodeError::UnknownTag(6))
        );
        assert_eq!(
            Transaction::decode(&bytes[..20]),
            Err(DecodeError::WrongLength {
                kind: TxKind::Deposit,
                expected: 21,
                got: 20
            })
        );
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            Transaction::decode(&long),
            Err(DecodeError::WrongLength { got: 22, .. })
        ));

        let mut big_amount = bytes.clone();
        big_amount[13..21].copy_from_slice(&(MAX_U63 + 1).to_le_bytes());
        assert_eq!(
            Transaction::decode(&big_amount),
            Err(DecodeError::OutOfRange {
                field: "amount",
                value: MAX_U63 + 1
            })
        );
        let mut big_seq = bytes;
        big_seq[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            Transaction::decode(&big_seq),
            Err(DecodeError::OutOfRange {
                field: "seq",
                value: u64::MAX
            })
        );
    }

    #[test]
    fn deposit_id_depends_on_every_field_and_the_domain() {
        let d = Domain {
            chain_id: 1,
            rollup: [1; 20],
        };
        let dep = Deposit {
            seq: 1,
            to: AccountIndex(2),
            amount: Amount::new(3).unwrap(),
        };
        let id = Transaction::Deposit(dep).id(&d);
        let variants = [
            Deposit { seq: 2, ..dep },
            Deposit {
                to: AccountIndex(3),
                ..dep
            },
            Deposit {
                amount: Amount::new(4).unwrap(),
                ..dep
            },
        ];
        for v in variants {
            assert_ne!(Transaction::Deposit(v).id(&d), id);
        }
        let other = Domain { chain_id: 2, ..d };
        assert_ne!(Transaction::Deposit(dep).id(&other), id);
        let fields = Transaction::Deposit(dep).to_field_elements(&d);
        assert_eq!(fields.len(), 4);
        let mut input = d.digest().elements().to_vec();
        input.extend(fields);
        assert_eq!(
            hash_no_pad(&input),
            id.0,
            "id = H(domain ‖ to_field_elements)"
        );
    }
}
