//! The split payment (tag 10): one signed payment from one account to up to 1,024 payees, all
//! or nothing (docs/SPEC.md section 19.4; rules in [`crate::split`]).
//!
//! ```text
//! encoding     tag(1) from(4) n(2) [to(4) amount(8)] x n fee(8) nonce(8) valid_until(8) signature(72)
//! hashed       from, n, d0, d1, d2, d3, fee, nonce, valid_until   (d = parts_digest, below)
//! pubdata op   tag(1) from(4) n(2) [to(4) amount(8)] x n fee(8)
//! ```
//!
//! The only kind whose length varies: `103 + 12 n` bytes. The message hash carries the parts as
//! their chained digest ([`crate::split::parts_digest`]: one permutation per part), so it hashes
//! a fixed 14 elements whatever `n`, and a circuit folds the parts one payee at a time. The
//! decoder refuses `n > 1,024` itself (`TOO_MANY_PAYEES`), so no request makes the node hash
//! more than 1,026 permutations; every other rule of 19.1 (`NO_PAYEES` included) is the
//! state's.

use super::{DecodeError, Domain, Reader, TxKind};
use crate::account::{AccountIndex, Amount, Nonce, Timestamp};
use crate::crypto::schnorr::{MessageHash, SecretKey, Signature};
use crate::hash::F;
use crate::split::{parts_digest, Payout, MAX_PAYEES};

/// Bytes of a split with no payee (the parts add 12 bytes each).
pub const SPLIT_BASE_BYTES: usize = 1 + 4 + 2 + 8 + 8 + 8 + Signature::BYTES;

/// Bytes of one part (`to(4) amount(8)`), in the transaction and in its pubdata op.
pub const PART_BYTES: usize = 4 + 8;

/// A split payment before signing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UnsignedSplit {
    pub from: AccountIndex,
    /// The payees in strictly increasing index order, each with a positive amount.
    pub parts: Vec<Payout>,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
}

/// A signed split payment (tag 10), signed by `from`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Split {
    pub from: AccountIndex,
    pub parts: Vec<Payout>,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
    pub signature: Signature,
}

impl UnsignedSplit {
    /// The hashed fields (module docs): `from, n, parts_digest (4), fee, nonce, valid_until`.
    pub fn fields(&self) -> [F; 9] {
        super::list_fields(
            self.from,
            self.parts.len(),
            parts_digest(&self.parts),
            self.fee,
            self.nonce,
            self.valid_until,
        )
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        super::message_hash(domain, TxKind::Split, &self.fields())
    }

    /// Signs with `key` (the key registered at `from`).
    pub fn sign(self, domain: &Domain, key: &SecretKey) -> Split {
        let signature = key.sign(&self.message_hash(domain));
        let UnsignedSplit {
            from,
            parts,
            fee,
            nonce,
            valid_until,
        } = self;
        Split {
            from,
            parts,
            fee,
            nonce,
            valid_until,
            signature,
        }
    }
}

impl Split {
    pub fn unsigned(&self) -> UnsignedSplit {
        UnsignedSplit {
            from: self.from,
            parts: self.parts.clone(),
            fee: self.fee,
            nonce: self.nonce,
            valid_until: self.valid_until,
        }
    }

    /// The encoded length, tag byte included.
    pub fn encoded_len(&self) -> usize {
        SPLIT_BASE_BYTES + PART_BYTES * self.parts.len()
    }

    /// Appends everything after the tag byte.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        write_parts(self.from, &self.parts, out);
        out.extend_from_slice(&self.fee.get().to_le_bytes());
        out.extend_from_slice(&self.nonce.get().to_le_bytes());
        out.extend_from_slice(&self.valid_until.get().to_le_bytes());
        out.extend_from_slice(&self.signature.to_bytes());
    }

    /// Reads everything after the tag byte (the length was checked against `n`).
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Split, DecodeError> {
        let (from, parts) = read_parts(r)?;
        Ok(Split {
            from,
            parts,
            fee: r.bounded("fee")?,
            nonce: r.bounded("nonce")?,
            valid_until: r.bounded("valid_until")?,
            signature: r.signature()?,
        })
    }
}

/// `from(4) n(2) [to(4) amount(8)] x n`: the body shared by the transaction and its op.
pub(crate) fn write_parts(from: AccountIndex, parts: &[Payout], out: &mut Vec<u8>) {
    out.extend_from_slice(&from.0.to_le_bytes());
    // At most MAX_PAYEES parts are ever built by a decoder; a wallet that builds more gets a
    // transaction every node refuses (the count is written modulo 2^16 and the length check
    // fails), never a different valid one.
    out.extend_from_slice(&(parts.len() as u16).to_le_bytes());
    for p in parts {
        out.extend_from_slice(&p.to.0.to_le_bytes());
        out.extend_from_slice(&p.amount.get().to_le_bytes());
    }
}

/// Reads what [`write_parts`] wrote.
pub(crate) fn read_parts(r: &mut Reader<'_>) -> Result<(AccountIndex, Vec<Payout>), DecodeError> {
    let from = r.index()?;
    let n = usize::from(u16::from_le_bytes(r.array()?));
    if n > MAX_PAYEES {
        return Err(DecodeError::TooManyPayees(n));
    }
    let mut parts = Vec::with_capacity(n);
    for _ in 0..n {
        parts.push(Payout {
            to: r.index()?,
            amount: r.bounded("amount")?,
        });
    }
    Ok((from, parts))
}

/// The payee count of the split encoded in `bytes` (tag byte included), if the header is there.
pub(super) fn payee_count(bytes: &[u8]) -> Option<usize> {
    let n = bytes.get(5..7)?;
    Some(usize::from(u16::from_le_bytes([n[0], n[1]])))
}

/// Reads `from(4) n(2) [to(4) amount(8)] x n` from exactly `bytes` (a split's pubdata op
/// between its tag and its fee), with the transaction's own field checks.
pub(crate) fn read_op_parts(bytes: &[u8]) -> Result<(AccountIndex, Vec<Payout>), DecodeError> {
    super::read_exact(bytes, TxKind::Split, read_parts)
}
