//! The canonical byte encoding of [`Transaction`] (module docs of [`super`]) and its strict
//! decoder.

use crate::account::{AccountIndex, MAX_U63};
use crate::crypto::schnorr::{KeyError, PublicKey, Signature, SignatureError};

use super::{
    passport, shares, split, Deposit, ForcedWithdraw, L1Address, PassportTx, Register,
    RegisterShares, Signed, Split, Transaction, Transfer, TxKind, Withdraw,
};

impl Transaction {
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
            Transaction::StreamSettlePath(t) => t.write(&mut out),
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
            TxKind::StreamSettlePath => {
                Transaction::StreamSettlePath(Box::new(Signed::read(&mut r)?))
            }
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
    pub(crate) rest: &'a [u8],
    pub(crate) kind: TxKind,
    pub(crate) total: usize,
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
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
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

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    pub(crate) fn index(&mut self) -> Result<AccountIndex, DecodeError> {
        self.array().map(|b| AccountIndex(u32::from_le_bytes(b)))
    }

    pub(crate) fn bounded<T: TryFrom<u64>>(
        &mut self,
        field: &'static str,
    ) -> Result<T, DecodeError> {
        let value = self.u64()?;
        T::try_from(value).map_err(|_| DecodeError::OutOfRange { field, value })
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&[u8], DecodeError> {
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

    pub(crate) fn pubkey(&mut self) -> Result<PublicKey, DecodeError> {
        PublicKey::from_bytes(&self.array()?).map_err(DecodeError::PublicKey)
    }

    pub(crate) fn signature(&mut self) -> Result<Signature, DecodeError> {
        Signature::from_bytes(&self.array()?).map_err(DecodeError::Signature)
    }
}
