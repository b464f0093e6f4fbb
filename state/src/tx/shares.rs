//! The revenue-share transactions (tags 11 and 12, docs/SPEC.md 19.6; rules in
//! [`crate::split::Shares`]).
//!
//! ```text
//! register shares  tag(1) account(4) n(2) [payee(4) bps(2)] x n fee(8) nonce(8) valid_until(8) signature(72)
//!                  hashed: account, n, s0..s3, fee, nonce, valid_until   (s = shares_digest)
//!                  op:     tag(1) account(4) n(2) [payee(4) bps(2)] x n fee(8)
//! distribute       tag(1) signer(4) account(4) fee(8) nonce(8) valid_until(8) signature(72)
//!                  hashed: signer, account, fee, nonce, valid_until
//!                  op:     tag(1) signer(4) account(4) fee(8)
//! ```
//!
//! A registration is `103 + 6 n` bytes; the decoder refuses `n > 1,024` itself
//! (`TOO_MANY_PAYEES`), every other rule of 19.2 is the state's. A distribute is the envelope
//! of [`super::stream::Signed`] around a fixed body, like the stream kinds.

use super::stream::{Body, Read, Signed};
use super::{DecodeError, Domain, Reader, TxKind};
use crate::account::{AccountIndex, Amount, Nonce, Timestamp};
use crate::crypto::schnorr::{MessageHash, SecretKey, Signature};
use crate::hash::F;
use crate::split::{shares_digest, MAX_PAYEES};

/// Bytes of a registration with no payee (the parts add 6 bytes each).
pub const REGISTER_SHARES_BASE_BYTES: usize = 1 + 4 + 2 + 8 + 8 + 8 + Signature::BYTES;

/// Bytes of one share (`payee(4) bps(2)`).
pub const SHARE_BYTES: usize = 4 + 2;

/// A share registration before signing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UnsignedRegisterShares {
    pub account: AccountIndex,
    /// Payees in strictly increasing order with their basis points (adding up to 10,000).
    pub parts: Vec<(AccountIndex, u16)>,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
}

/// A share registration (tag 11), signed by `account`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RegisterShares {
    pub account: AccountIndex,
    pub parts: Vec<(AccountIndex, u16)>,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
    pub signature: Signature,
}

impl UnsignedRegisterShares {
    /// `account, n, shares_digest (4), fee, nonce, valid_until`.
    pub fn fields(&self) -> [F; 9] {
        super::list_fields(
            self.account,
            self.parts.len(),
            shares_digest(&self.parts),
            self.fee,
            self.nonce,
            self.valid_until,
        )
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        super::message_hash(domain, TxKind::RegisterShares, &self.fields())
    }

    pub fn sign(self, domain: &Domain, key: &SecretKey) -> RegisterShares {
        let signature = key.sign(&self.message_hash(domain));
        RegisterShares {
            account: self.account,
            parts: self.parts,
            fee: self.fee,
            nonce: self.nonce,
            valid_until: self.valid_until,
            signature,
        }
    }
}

impl RegisterShares {
    pub fn unsigned(&self) -> UnsignedRegisterShares {
        UnsignedRegisterShares {
            account: self.account,
            parts: self.parts.clone(),
            fee: self.fee,
            nonce: self.nonce,
            valid_until: self.valid_until,
        }
    }

    pub fn encoded_len(&self) -> usize {
        REGISTER_SHARES_BASE_BYTES + SHARE_BYTES * self.parts.len()
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        write_shares(self.account, &self.parts, out);
        out.extend_from_slice(&self.fee.get().to_le_bytes());
        out.extend_from_slice(&self.nonce.get().to_le_bytes());
        out.extend_from_slice(&self.valid_until.get().to_le_bytes());
        out.extend_from_slice(&self.signature.to_bytes());
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<RegisterShares, DecodeError> {
        let (account, parts) = read_shares(r)?;
        Ok(RegisterShares {
            account,
            parts,
            fee: r.bounded("fee")?,
            nonce: r.bounded("nonce")?,
            valid_until: r.bounded("valid_until")?,
            signature: r.signature()?,
        })
    }
}

/// `account(4) n(2) [payee(4) bps(2)] x n`: the body shared by the transaction and its op.
pub(crate) fn write_shares(
    account: AccountIndex,
    parts: &[(AccountIndex, u16)],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&account.0.to_le_bytes());
    // A decoder builds at most MAX_PAYEES parts; a wallet that builds more gets a transaction
    // every node refuses (the count is written modulo 2^16 and the length check fails).
    out.extend_from_slice(&(parts.len() as u16).to_le_bytes());
    for (to, bps) in parts {
        out.extend_from_slice(&to.0.to_le_bytes());
        out.extend_from_slice(&bps.to_le_bytes());
    }
}

pub(crate) fn read_shares(
    r: &mut Reader<'_>,
) -> Result<(AccountIndex, Vec<(AccountIndex, u16)>), DecodeError> {
    let account = r.index()?;
    let n = usize::from(u16::from_le_bytes(r.array()?));
    if n > MAX_PAYEES {
        return Err(DecodeError::TooManyPayees(n));
    }
    let mut parts = Vec::with_capacity(n);
    for _ in 0..n {
        parts.push((r.index()?, u16::from_le_bytes(r.array()?)));
    }
    Ok((account, parts))
}

/// Reads `account(4) n(2) parts` from exactly `bytes` (a registration's op between its tag and
/// its fee).
pub(crate) fn read_op_shares(
    bytes: &[u8],
) -> Result<(AccountIndex, Vec<(AccountIndex, u16)>), DecodeError> {
    super::read_exact(bytes, TxKind::RegisterShares, read_shares)
}

/// The body of a distribute: who signs (and pays the fee) and whose balance is paid out.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct DistributeBody {
    pub signer: AccountIndex,
    pub account: AccountIndex,
}

/// Pays an account's whole balance out by its shares (tag 12), signed by anyone.
pub type Distribute = Signed<DistributeBody>;

impl Body for DistributeBody {
    const KIND: TxKind = TxKind::Distribute;
    const FIELDS: usize = 2;
    const BYTES: usize = 4 + 4;

    fn signer(&self) -> AccountIndex {
        self.signer
    }

    fn fields(&self, out: &mut Vec<F>) {
        out.extend([self.signer.to_field(), self.account.to_field()]);
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.signer.0.to_le_bytes());
        out.extend_from_slice(&self.account.0.to_le_bytes());
    }
}

impl Read for DistributeBody {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DistributeBody {
            signer: r.index()?,
            account: r.index()?,
        })
    }
}
