//! The stream transactions (tags 7, 8, 9): open, settle and close a payment stream
//! (docs/SPEC.md section 18.5).
//!
//! Each is a *body* (the stream terms of [`crate::stream::rules`]) wrapped in the envelope every
//! account-signed transaction carries: `fee`, `nonce` and `valid_until` of the signer, then the
//! signature. [`Signed<B>`] is that envelope, generic over the body, so the three kinds share one
//! encoder, decoder, message hash and signer instead of three copies of each.
//!
//! | tag | kind | signer | body fields, in order (hashed and encoded) |
//! |---|---|---|---|
//! | 7 | [`StreamOpen`] | the payer | `payer(4) payee(4) slot(2) price(8) max_ticks(4) expiry(8) anchor(32)` |
//! | 8 | [`StreamSettle`] | the payee | `payee(4) payer(4) slot(2) from(4) to(4) t_to(32)` |
//! | 9 | [`StreamClose`] | the payer or the payee | `signer(4) payer(4) slot(2)` |
//! | 18 | [`StreamSettlePath`] | the payee | `payee(4) payer(4) slot(2) from(4) to(4) s_to(32)`, then `path(768)`, not hashed |
//!
//! then `fee(8) nonce(8) valid_until(8) signature(72)`. A digest (`anchor`, `t_to`) is four
//! canonical little-endian u64 (each below p) and hashes as four elements; every other field is
//! one element. Tick counts (`max_ticks`, `from`, `to`) are at most 2^24, amounts and times at
//! most 2^63 - 1; the decoder refuses anything else (`OUT_OF_RANGE`, `NON_CANONICAL_DIGEST`).

use plonky2::field::types::Field;

use super::{message_hash, DecodeError, Domain, Reader, TxKind};
use crate::account::{AccountIndex, Amount, Nonce, Timestamp};
use crate::crypto::schnorr::{MessageHash, SecretKey, Signature};
use crate::hash::{Digest, F};
use crate::stream::rules::{Close, Open, Settle};
use crate::stream::tick_tree::{TickPath, TICK_PATH_BYTES, TICK_TREE_DEPTH};
use crate::stream::{StreamSlot, TickCount};

/// What a stream transaction says besides the envelope: its kind, signer, hashed fields and
/// bytes.
pub trait Body: Copy + Sized {
    /// The transaction kind this body is the body of.
    const KIND: TxKind;
    /// Number of field elements [`Body::fields`] writes.
    const FIELDS: usize;
    /// Number of bytes [`Body::write`] appends.
    const BYTES: usize;

    /// The account whose key signs, whose nonce is used and who pays the fee.
    fn signer(&self) -> AccountIndex;
    /// Appends the hashed fields (module docs).
    fn fields(&self, out: &mut Vec<F>);
    /// Appends the canonical bytes (module docs).
    fn write(&self, out: &mut Vec<u8>);
}

/// Decoding, kept inside the crate: it reads from the decoder's private cursor.
pub(crate) trait Read: Body {
    /// Reads what [`Body::write`] wrote, refusing out-of-range values.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// A stream body with the signer's envelope, before signing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Unsigned<B> {
    pub body: B,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
}

/// A signed stream transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Signed<B> {
    pub body: B,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
    pub signature: Signature,
}

/// Opens a stream (tag 7), signed by the payer.
pub type StreamOpen = Signed<Open>;
/// Settles a stream up to a tick (tag 8), signed by the payee.
pub type StreamSettle = Signed<SettleBody>;
/// Closes a stream (tag 9), signed by its payer or payee.
pub type StreamClose = Signed<Close>;
/// Settles a tree stream up to a tick by its path (tag 18, SPEC 18.8), signed by the payee.
pub type StreamSettlePath = Signed<SettlePathBody>;

/// The body of a settlement: the payee that signs it and the settlement terms.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct SettleBody {
    pub payee: AccountIndex,
    pub terms: Settle,
}

/// The body of a settlement by path: a settlement's body (`value` the tick's secret) and the
/// tick's path in the stream's tick tree. The path is evidence, not intent: it is not hashed
/// into the signed message (a valid one is unique short of a Poseidon collision, so changing
/// it only makes the transaction fail), which keeps the message that of tag 8 but for the tag,
/// and keeps a circuit's message hash from growing by 96 elements for one kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct SettlePathBody {
    pub payee: AccountIndex,
    pub terms: Settle,
    pub path: TickPath,
}

impl<B: Body> Unsigned<B> {
    /// The hashed fields: the body's, then `fee, nonce, valid_until`.
    pub fn fields(&self) -> Vec<F> {
        let mut out = Vec::with_capacity(B::FIELDS + 3);
        self.body.fields(&mut out);
        out.extend([
            self.fee.to_field(),
            self.nonce.to_field(),
            self.valid_until.to_field(),
        ]);
        out
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        message_hash(domain, B::KIND, &self.fields())
    }

    /// Signs with `key` (the key registered at [`Body::signer`]).
    pub fn sign(self, domain: &Domain, key: &SecretKey) -> Signed<B> {
        let signature = key.sign(&self.message_hash(domain));
        Signed {
            body: self.body,
            fee: self.fee,
            nonce: self.nonce,
            valid_until: self.valid_until,
            signature,
        }
    }
}

impl<B: Body> Signed<B> {
    /// The tag byte plus the fixed sizes of the body, the envelope and the signature.
    pub const ENCODED_LEN: usize = 1 + B::BYTES + 8 + 8 + 8 + Signature::BYTES;

    pub fn unsigned(&self) -> Unsigned<B> {
        Unsigned {
            body: self.body,
            fee: self.fee,
            nonce: self.nonce,
            valid_until: self.valid_until,
        }
    }

    pub fn signer(&self) -> AccountIndex {
        self.body.signer()
    }

    /// Appends everything after the tag byte.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        self.body.write(out);
        out.extend_from_slice(&self.fee.get().to_le_bytes());
        out.extend_from_slice(&self.nonce.get().to_le_bytes());
        out.extend_from_slice(&self.valid_until.get().to_le_bytes());
        out.extend_from_slice(&self.signature.to_bytes());
    }

    /// Reads everything after the tag byte.
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>
    where
        B: Read,
    {
        Ok(Signed {
            body: B::read(r)?,
            fee: r.bounded("fee")?,
            nonce: r.bounded("nonce")?,
            valid_until: r.bounded("valid_until")?,
            signature: r.signature()?,
        })
    }
}

/// Reads one body of exactly [`Body::BYTES`] bytes (the pubdata ops of the stream kinds are the
/// body and the fee, so they decode with the transaction's own field checks).
pub(crate) fn read_body<B: Read>(bytes: &[u8]) -> Result<B, DecodeError> {
    let wrong = DecodeError::WrongLength {
        kind: B::KIND,
        expected: B::BYTES,
        got: bytes.len(),
    };
    if bytes.len() != B::BYTES {
        return Err(wrong);
    }
    let mut r = Reader {
        rest: bytes,
        kind: B::KIND,
        total: bytes.len(),
    };
    B::read(&mut r)
}

impl Reader<'_> {
    fn slot(&mut self) -> Result<StreamSlot, DecodeError> {
        self.array().map(|b| StreamSlot(u16::from_le_bytes(b)))
    }

    fn ticks(&mut self, field: &'static str) -> Result<TickCount, DecodeError> {
        let value = u32::from_le_bytes(self.array()?);
        TickCount::new(value).ok_or(DecodeError::OutOfRange {
            field,
            value: value.into(),
        })
    }

    fn digest(&mut self, field: &'static str) -> Result<Digest, DecodeError> {
        Digest::from_bytes(&self.array()?).ok_or(DecodeError::NonCanonicalDigest(field))
    }
}

fn put_digest(out: &mut Vec<u8>, d: &Digest) {
    out.extend_from_slice(&d.to_bytes());
}

impl Body for Open {
    const KIND: TxKind = TxKind::StreamOpen;
    const FIELDS: usize = 10;
    const BYTES: usize = 4 + 4 + 2 + 8 + 4 + 8 + 32;

    fn signer(&self) -> AccountIndex {
        self.payer
    }

    fn fields(&self, out: &mut Vec<F>) {
        out.extend([
            self.payer.to_field(),
            self.payee.to_field(),
            F::from_canonical_u16(self.slot.0),
            self.price.to_field(),
            self.max_ticks.to_field(),
            self.expiry.to_field(),
        ]);
        out.extend(self.anchor.elements());
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.payer.0.to_le_bytes());
        out.extend_from_slice(&self.payee.0.to_le_bytes());
        out.extend_from_slice(&self.slot.0.to_le_bytes());
        out.extend_from_slice(&self.price.get().to_le_bytes());
        out.extend_from_slice(&self.max_ticks.get().to_le_bytes());
        out.extend_from_slice(&self.expiry.get().to_le_bytes());
        put_digest(out, &self.anchor);
    }
}

impl Read for Open {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Open {
            payer: r.index()?,
            payee: r.index()?,
            slot: r.slot()?,
            price: r.bounded("price")?,
            max_ticks: r.ticks("max_ticks")?,
            expiry: r.bounded("expiry")?,
            anchor: r.digest("anchor")?,
        })
    }
}

impl Body for SettleBody {
    const KIND: TxKind = TxKind::StreamSettle;
    const FIELDS: usize = 9;
    const BYTES: usize = 4 + 4 + 2 + 4 + 4 + 32;

    fn signer(&self) -> AccountIndex {
        self.payee
    }

    fn fields(&self, out: &mut Vec<F>) {
        let t = &self.terms;
        out.extend([
            self.payee.to_field(),
            t.payer.to_field(),
            F::from_canonical_u16(t.slot.0),
            t.from.to_field(),
            t.to.to_field(),
        ]);
        out.extend(t.value.elements());
    }

    fn write(&self, out: &mut Vec<u8>) {
        let t = &self.terms;
        out.extend_from_slice(&self.payee.0.to_le_bytes());
        out.extend_from_slice(&t.payer.0.to_le_bytes());
        out.extend_from_slice(&t.slot.0.to_le_bytes());
        out.extend_from_slice(&t.from.get().to_le_bytes());
        out.extend_from_slice(&t.to.get().to_le_bytes());
        put_digest(out, &t.value);
    }
}

impl Read for SettleBody {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SettleBody {
            payee: r.index()?,
            terms: Settle {
                payer: r.index()?,
                slot: r.slot()?,
                from: r.ticks("from")?,
                to: r.ticks("to")?,
                value: r.digest("t_to")?,
            },
        })
    }
}

impl Body for Close {
    const KIND: TxKind = TxKind::StreamClose;
    const FIELDS: usize = 3;
    const BYTES: usize = 4 + 4 + 2;

    fn signer(&self) -> AccountIndex {
        self.signer
    }

    fn fields(&self, out: &mut Vec<F>) {
        out.extend([
            self.signer.to_field(),
            self.payer.to_field(),
            F::from_canonical_u16(self.slot.0),
        ]);
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.signer.0.to_le_bytes());
        out.extend_from_slice(&self.payer.0.to_le_bytes());
        out.extend_from_slice(&self.slot.0.to_le_bytes());
    }
}

impl Read for Close {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Close {
            signer: r.index()?,
            payer: r.index()?,
            slot: r.slot()?,
        })
    }
}

impl Body for SettlePathBody {
    const KIND: TxKind = TxKind::StreamSettlePath;
    const FIELDS: usize = <SettleBody as Body>::FIELDS;
    const BYTES: usize = <SettleBody as Body>::BYTES + TICK_PATH_BYTES;

    fn signer(&self) -> AccountIndex {
        self.payee
    }

    fn fields(&self, out: &mut Vec<F>) {
        self.settle_body().fields(out);
    }

    fn write(&self, out: &mut Vec<u8>) {
        self.settle_body().write(out);
        for sibling in &self.path {
            put_digest(out, sibling);
        }
    }
}

impl SettlePathBody {
    /// The settlement's fields without the path (its hashed fields, and its pubdata op's).
    pub fn settle_body(&self) -> SettleBody {
        SettleBody {
            payee: self.payee,
            terms: self.terms,
        }
    }
}

impl Read for SettlePathBody {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let SettleBody { payee, terms } = SettleBody::read(r)?;
        let mut path = [Digest::ZERO; TICK_TREE_DEPTH];
        for sibling in &mut path {
            *sibling = r.digest("path")?;
        }
        Ok(SettlePathBody { payee, terms, path })
    }
}
