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
//! | 18 | [`StreamSettlePath`] | the payee | settles a tree stream by the path of its tick (SPEC 18.8) |
//! | 10 | [`Split`] | the sender account's key | pays up to 1,024 payees at once, all or nothing ([`split`]) |
//! | 13 | [`PassportTx`] delegate | the owner | creates an agent account bound to the owner by a policy ([`passport`]) |
//! | 14 | [`PassportTx`] set policy | the owner | replaces an agent's policy |
//! | 15 | [`PassportTx`] revoke | the owner | revokes an agent for good |
//! | 16 | [`PassportTx`] sweep | the owner | moves an agent's balance back to its owner |
//!
//! Tag 6 is no transaction: it is the kind element of an exit authorisation
//! ([`crate::exodus`]), so that neither can be replayed as the other. Tags 11 and 12 are the
//! planned revenue-share transactions (SPEC 19.6). Tag 17 is no transaction: it is the kind
//! element of an owner binding ([`crate::owner`]). Tags 7 to 10, 13 to 16 and 18 are defined here
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
//! * StreamSettlePath: a settlement's fields (its path is not hashed), then `fee, nonce, valid_until`
//! * Split: `from, n, d0..d3, fee, nonce, valid_until` with `d` the parts' chained digest ([`split`])
//! * Delegate, SetPolicy, Revoke, Sweep: `owner`, the action's fields (a policy as its digest),
//!   then `fee, nonce, valid_until` ([`passport`])
//!
//! The message hash is what is signed *and* the transaction id. The signature is never hashed
//! into the id, so re-encoding or malleating a signature cannot produce a second transaction.
//! Nor is a settlement's path (tag 18): it is evidence, unique short of a Poseidon collision,
//! so another path under the same id only makes the transaction fail (`TICK_MISMATCH`); a
//! refused transaction is not remembered, so a malleated copy sent first blocks nothing.
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
//! * StreamSettlePath (915): `tag ‖ settle body(50) ‖ path(768) ‖ fee(8) ‖ nonce(8) ‖
//!   valid_until(8) ‖ signature(72)`
//! * Split (103 + 12 n): `tag ‖ from(4) ‖ n(2) ‖ [to(4) ‖ amount(8)] x n ‖ fee(8) ‖ nonce(8) ‖
//!   valid_until(8) ‖ signature(72)` ([`split`]; `n <= 1024`, else `TOO_MANY_PAYEES`)
//!
//! [`Transaction::decode`] accepts exactly the outputs of [`Transaction::encode`]: it rejects an
//! empty input, an unknown tag, any other length (truncated or trailing bytes), a public key that
//! is non-canonical or not a valid group element, a non-canonical signature, and any
//! amount, nonce, timestamp or deposit serial number above 2^63 - 1.

use crate::account::{AccountIndex, Nonce};
use crate::apply::Rejection;
use crate::crypto::schnorr::{MessageHash, PublicKey, Signature};
use crate::hash::F;

mod basic;
mod codec;
mod domain;
mod kind;
mod message;
pub mod passport;
pub mod shares;
pub mod split;
pub mod stream;
pub use basic::{
    Deposit, ForcedWithdraw, Register, Transfer, UnsignedRegister, UnsignedTransfer,
    UnsignedWithdraw, Withdraw,
};
pub use codec::DecodeError;
pub(crate) use codec::{read_exact, Reader};
pub use domain::{Domain, L1Address, ParseL1AddressError, TAG_DOMAIN};
pub use kind::TxKind;
pub(crate) use message::{list_fields, message_hash};
pub use passport::{PassportAction, PassportOp, PassportTx, UnsignedPassportTx};
pub use shares::{Distribute, DistributeBody, RegisterShares, UnsignedRegisterShares};
pub use split::{Split, UnsignedSplit};
pub use stream::{
    SettleBody, SettlePathBody, Signed, StreamClose, StreamOpen, StreamSettle, StreamSettlePath,
    Unsigned,
};

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
    /// Boxed: its path makes it the largest kind by far (915 bytes).
    StreamSettlePath(Box<StreamSettlePath>),
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
impl From<StreamSettlePath> for Transaction {
    fn from(t: StreamSettlePath) -> Self {
        Transaction::StreamSettlePath(Box::new(t))
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
            Transaction::StreamSettlePath(_) => TxKind::StreamSettlePath,
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
            Transaction::StreamSettlePath(t) => Signer::Account(t.signer()),
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
            Transaction::StreamSettlePath(t) => Some(t.nonce),
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
            Transaction::StreamSettlePath(t) => Some(&t.signature),
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
            Transaction::StreamSettlePath(t) => out.extend(t.unsigned().fields()),
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
            Transaction::StreamSettlePath(t) => t.unsigned().message_hash(domain),
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
            Transaction::StreamSettlePath(t) => &t.signature,
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
}

#[cfg(test)]
mod tests;
