//! Pubdata: the compact record of every applied transaction, published for data availability,
//! and the Poseidon commitments a batch proof binds.
//!
//! # Ops
//!
//! Each applied transaction produces one [`PubdataOp`]: just enough to replay its effect on the
//! state tree from L1 data alone. Nonces and signatures are omitted: a nonce is implied (it is
//! +1 per transfer or withdrawal of the sender) and signatures are checked by the proof.
//! Integers are little-endian, the first byte is the transaction kind tag:
//!
//! | kind | layout | bytes |
//! |---|---|---|
//! | Register (1) | `tag ‖ index(4) ‖ pubkey(40)` | 45 |
//! | Transfer (2) | `tag ‖ from(4) ‖ to(4) ‖ amount(8) ‖ fee(8)` | 25 |
//! | Withdraw (3) | `tag ‖ from(4) ‖ to_l1(20) ‖ amount(8) ‖ fee(8)` | 41 |
//! | Deposit (4) | `tag ‖ seq(8) ‖ to(4) ‖ amount(8) ‖ status(1)` | 22 |
//! | ForcedWithdraw (5) | `tag ‖ seq(8) ‖ requested_at(8) ‖ from(4) ‖ to_l1(20) ‖ amount(8) ‖ fee(8) ‖ nonce(8) ‖ valid_until(8) ‖ signature(72) ‖ status(1)` | 146 |
//! | StreamOpen (7) | `tag ‖ body(62) ‖ fee(8)`: the transaction's body (`payer payee slot price max_ticks expiry anchor`) | 71 |
//! | StreamSettle (8) | `tag ‖ body(50) ‖ fee(8)` (`payee payer slot from to t_to`) | 59 |
//! | StreamClose (9) | `tag ‖ body(10) ‖ fee(8)` (`signer payer slot`) | 19 |
//! | StreamSettlePath (18) | `tag ‖ body(50) ‖ fee(8)`: a settlement's op but the tag; the path is left out (it changes nothing) | 59 |
//! | Split (10) | `tag ‖ from(4) ‖ n(2) ‖ [to(4) ‖ amount(8)] x n ‖ fee(8)` | 15 + 12 n |
//!
//! A stream op is its transaction without nonce, validity and signature, like a transfer's:
//! replaying the ops in order rebuilds every stream (the opened-at nonce is the payer's nonce
//! count at the open) and every balance.
//!
//! Deposit status: 0 = credited, 1 = refunded (the account does not exist or the credit would
//! overflow; the depositor reclaims the funds on L1). A forced withdrawal is published whole
//! (nonce and signature included) because it may be rejected: the proof shows the reason
//! against exactly these bytes, which are the ones queued on L1. Its status is a
//! [`ForcedStatus`]: 0 = applied, otherwise the rule it breaks. Every op length is fixed by its tag (a
//! split's by its tag and its `n`), so a batch's pubdata is the plain concatenation of its ops
//! ([`decode_ops`] splits it again).
//!
//! # Pubdata commitment
//!
//! Each op's bytes are split into 7-byte chunks read as little-endian integers (each below 2^56,
//! so one canonical field element; the last chunk is zero-padded, which the length makes
//! unambiguous). The ops of a batch are chained in order:
//!
//! ```text
//! c_0     = ZERO
//! c_{i+1} = hash_no_pad(c_i (4 elements) ‖ byte length of op i ‖ chunks of op i)
//! ```
//!
//! The final `c_n` is the batch's pubdata commitment.
//!
//! # Withdrawals commitment
//!
//! Chained the same way over the batch's withdrawals, in order, so the L1 contract can release
//! them:
//!
//! ```text
//! w_0     = ZERO
//! w_{i+1} = hash_no_pad(w_i (4 elements) ‖ from ‖ l1 address as five big-endian u32 limbs ‖ amount)
//! ```

use crate::account::{AccountIndex, Amount, Timestamp, MAX_U63};
use crate::apply::Rejection;
use crate::crypto::schnorr::{KeyError, PublicKey};
use crate::hash::F;
use crate::passport::PassportRejection;
use crate::split::Payout;
use crate::stream::rules::{Close, Open};
use crate::tx::passport::{op_len_at, PassportOp, POLICY_BASE_BYTES};
use crate::tx::shares::{read_op_shares, write_shares, DistributeBody, SHARE_BYTES};
use crate::tx::split::{read_op_parts, write_parts, PART_BYTES};
use crate::tx::stream::{read_body, Body};
use crate::tx::{DecodeError, L1Address, SettleBody, Transaction, TxKind, Withdraw};

/// What happened to a deposit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum DepositStatus {
    /// The amount was credited to the account.
    Credited = 0,
    /// The deposit was consumed but credited nothing; the depositor reclaims it on L1.
    Refunded = 1,
}

impl DepositStatus {
    /// The outcome code, as in the API and the event feed.
    pub const fn code(self) -> &'static str {
        match self {
            DepositStatus::Credited => "CREDITED",
            DepositStatus::Refunded => "REFUNDED",
        }
    }
}

/// What happened to a forced withdrawal: applied, or the Withdraw rule it breaks (the first, in
/// the order of the rules). Published as one byte; the circuit proves the reason.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum ForcedStatus {
    Applied = 0,
    UnknownAccount = 1,
    BadSignature = 2,
    Expired = 3,
    ZeroAmount = 4,
    BadNonce = 5,
    NonceExhausted = 6,
    InsufficientBalance = 7,
    BalanceOverflow = 8,
    /// The passport rules of an agent (SPEC 20.4): a forced withdrawal from an agent obeys its
    /// policy like any of its spends. No agent exists on a node of this version (delegates are
    /// not enabled); a payment circuit built with policy checks proves them (SPEC 20.8).
    Revoked = 9,
    PolicyExpired = 10,
    PolicyFee = 11,
    PolicyPayment = 12,
    PolicyPayee = 13,
    PolicyCap = 14,
    /// The account has registered revenue shares (SPEC 19.6): its balance leaves only by
    /// distribute.
    SharesLocked = 15,
}

impl ForcedStatus {
    pub const ALL: [ForcedStatus; 16] = [
        ForcedStatus::Applied,
        ForcedStatus::UnknownAccount,
        ForcedStatus::BadSignature,
        ForcedStatus::Expired,
        ForcedStatus::ZeroAmount,
        ForcedStatus::BadNonce,
        ForcedStatus::NonceExhausted,
        ForcedStatus::InsufficientBalance,
        ForcedStatus::BalanceOverflow,
        ForcedStatus::Revoked,
        ForcedStatus::PolicyExpired,
        ForcedStatus::PolicyFee,
        ForcedStatus::PolicyPayment,
        ForcedStatus::PolicyPayee,
        ForcedStatus::PolicyCap,
        ForcedStatus::SharesLocked,
    ];

    pub fn from_u8(v: u8) -> Option<ForcedStatus> {
        Self::ALL.get(usize::from(v)).copied()
    }

    /// The status of a rejection, for the rules a withdraw can break.
    pub fn from_rejection(r: &Rejection) -> Option<ForcedStatus> {
        Some(match r {
            Rejection::UnknownAccount(_) => ForcedStatus::UnknownAccount,
            Rejection::BadSignature => ForcedStatus::BadSignature,
            Rejection::Expired { .. } => ForcedStatus::Expired,
            Rejection::ZeroAmount => ForcedStatus::ZeroAmount,
            Rejection::BadNonce { .. } => ForcedStatus::BadNonce,
            Rejection::NonceExhausted => ForcedStatus::NonceExhausted,
            Rejection::InsufficientBalance { .. } => ForcedStatus::InsufficientBalance,
            Rejection::BalanceOverflow { .. } => ForcedStatus::BalanceOverflow,
            Rejection::Passport(p) => match p {
                PassportRejection::Revoked => ForcedStatus::Revoked,
                PassportRejection::PolicyExpired { .. } => ForcedStatus::PolicyExpired,
                PassportRejection::PolicyFee { .. } => ForcedStatus::PolicyFee,
                PassportRejection::PolicyPayment { .. } => ForcedStatus::PolicyPayment,
                PassportRejection::PolicyPayee(_)
                | PassportRejection::PolicyWithdrawal
                | PassportRejection::PolicySplit => ForcedStatus::PolicyPayee,
                PassportRejection::PolicyCap { .. } => ForcedStatus::PolicyCap,
                _ => return None,
            },
            Rejection::Split(crate::split::SplitRejection::SharesLocked(_)) => {
                ForcedStatus::SharesLocked
            }
            _ => return None,
        })
    }

    /// The reason code of the rejection, as in the API ("APPLIED" when applied).
    pub const fn code(self) -> &'static str {
        match self {
            ForcedStatus::Applied => "APPLIED",
            ForcedStatus::UnknownAccount => "UNKNOWN_ACCOUNT",
            ForcedStatus::BadSignature => "BAD_SIGNATURE",
            ForcedStatus::Expired => "EXPIRED",
            ForcedStatus::ZeroAmount => "ZERO_AMOUNT",
            ForcedStatus::BadNonce => "BAD_NONCE",
            ForcedStatus::NonceExhausted => "NONCE_EXHAUSTED",
            ForcedStatus::InsufficientBalance => "INSUFFICIENT_BALANCE",
            ForcedStatus::BalanceOverflow => "BALANCE_OVERFLOW",
            ForcedStatus::Revoked => "REVOKED",
            ForcedStatus::PolicyExpired => "POLICY_EXPIRED",
            ForcedStatus::PolicyFee => "POLICY_FEE",
            ForcedStatus::PolicyPayment => "POLICY_PAYMENT",
            ForcedStatus::PolicyPayee => "POLICY_PAYEE",
            ForcedStatus::PolicyCap => "POLICY_CAP",
            ForcedStatus::SharesLocked => "SHARES_LOCKED",
        }
    }
}

/// The pubdata of one applied transaction (see the module docs).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PubdataOp {
    Register {
        index: AccountIndex,
        pubkey: PublicKey,
    },
    Transfer {
        from: AccountIndex,
        to: AccountIndex,
        amount: Amount,
        fee: Amount,
    },
    Withdraw {
        from: AccountIndex,
        to_l1: L1Address,
        amount: Amount,
        fee: Amount,
    },
    Deposit {
        seq: u64,
        to: AccountIndex,
        amount: Amount,
        status: DepositStatus,
    },
    ForcedWithdraw {
        seq: u64,
        requested_at: Timestamp,
        withdraw: Withdraw,
        status: ForcedStatus,
    },
    StreamOpen {
        body: Open,
        fee: Amount,
    },
    StreamSettle {
        body: SettleBody,
        fee: Amount,
    },
    StreamClose {
        body: Close,
        fee: Amount,
    },
    /// A settlement by path (tag 18): the stream's head stays (it is the tick tree's root).
    StreamSettlePath {
        body: SettleBody,
        fee: Amount,
    },
    Split {
        from: AccountIndex,
        parts: Vec<Payout>,
        fee: Amount,
    },
    /// A delegate, policy change, revocation or sweep ([`crate::tx::passport`]).
    Passport(PassportOp),
    /// A share registration ([`crate::tx::shares`]).
    RegisterShares {
        account: AccountIndex,
        parts: Vec<(AccountIndex, u16)>,
        fee: Amount,
    },
    /// A distribute: the payouts follow from the shares and the balance when it applied.
    Distribute {
        body: DistributeBody,
        fee: Amount,
    },
}

/// The fixed pubdata length of each kind, tag byte included; for a split, whose length varies,
/// the length with no payee ([`PubdataOp::byte_len`] is exact).
pub const fn op_len(kind: TxKind) -> usize {
    match kind {
        TxKind::Register => 1 + 4 + PublicKey::BYTES,
        TxKind::Transfer => 1 + 4 + 4 + 8 + 8,
        TxKind::Withdraw => 1 + 4 + 20 + 8 + 8,
        TxKind::Deposit => 1 + 8 + 4 + 8 + 1,
        TxKind::ForcedWithdraw => 1 + 8 + 8 + (TxKind::Withdraw.encoded_len() - 1) + 1,
        TxKind::StreamOpen => 1 + <Open as Body>::BYTES + 8,
        TxKind::StreamSettle => 1 + <SettleBody as Body>::BYTES + 8,
        TxKind::StreamClose => 1 + <Close as Body>::BYTES + 8,
        TxKind::StreamSettlePath => 1 + <SettleBody as Body>::BYTES + 8,
        TxKind::Split => 1 + 4 + 2 + 8,
        TxKind::RegisterShares => 1 + 4 + 2 + 8,
        TxKind::Distribute => 1 + <DistributeBody as Body>::BYTES + 8,
        TxKind::Delegate => 1 + 4 + 4 + PublicKey::BYTES + 8 + POLICY_BASE_BYTES + 8,
        TxKind::SetPolicy => 1 + 4 + 4 + POLICY_BASE_BYTES + 8,
        TxKind::Revoke => 1 + 4 + 4 + 8,
        TxKind::Sweep => 1 + 4 + 4 + 8 + 8,
    }
}

/// Bytes per field element of the pubdata commitment.
pub const CHUNK_BYTES: usize = 7;

/// The longest op (ForcedWithdraw, 146 bytes) in chunks.
pub const MAX_CHUNKS: usize = op_len(TxKind::ForcedWithdraw).div_ceil(CHUNK_BYTES);

impl PubdataOp {
    pub fn kind(&self) -> TxKind {
        match self {
            PubdataOp::Register { .. } => TxKind::Register,
            PubdataOp::Transfer { .. } => TxKind::Transfer,
            PubdataOp::Withdraw { .. } => TxKind::Withdraw,
            PubdataOp::Deposit { .. } => TxKind::Deposit,
            PubdataOp::ForcedWithdraw { .. } => TxKind::ForcedWithdraw,
            PubdataOp::StreamOpen { .. } => TxKind::StreamOpen,
            PubdataOp::StreamSettle { .. } => TxKind::StreamSettle,
            PubdataOp::StreamClose { .. } => TxKind::StreamClose,
            PubdataOp::StreamSettlePath { .. } => TxKind::StreamSettlePath,
            PubdataOp::Split { .. } => TxKind::Split,
            PubdataOp::Passport(op) => op.action.kind(),
            PubdataOp::RegisterShares { .. } => TxKind::RegisterShares,
            PubdataOp::Distribute { .. } => TxKind::Distribute,
        }
    }

    /// The length of [`PubdataOp::to_bytes`]'s output.
    pub fn byte_len(&self) -> usize {
        match self {
            PubdataOp::Split { parts, .. } => op_len(TxKind::Split) + PART_BYTES * parts.len(),
            PubdataOp::Passport(op) => op.byte_len(),
            PubdataOp::RegisterShares { parts, .. } => {
                op_len(TxKind::RegisterShares) + SHARE_BYTES * parts.len()
            }
            other => op_len(other.kind()),
        }
    }

    /// The op's bytes (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.byte_len());
        out.push(self.kind().tag());
        match self {
            PubdataOp::Register { index, pubkey } => {
                out.extend_from_slice(&index.0.to_le_bytes());
                out.extend_from_slice(&pubkey.to_bytes());
            }
            PubdataOp::Transfer {
                from,
                to,
                amount,
                fee,
            } => {
                out.extend_from_slice(&from.0.to_le_bytes());
                out.extend_from_slice(&to.0.to_le_bytes());
                out.extend_from_slice(&amount.get().to_le_bytes());
                out.extend_from_slice(&fee.get().to_le_bytes());
            }
            PubdataOp::Withdraw {
                from,
                to_l1,
                amount,
                fee,
            } => {
                out.extend_from_slice(&from.0.to_le_bytes());
                out.extend_from_slice(&to_l1.0);
                out.extend_from_slice(&amount.get().to_le_bytes());
                out.extend_from_slice(&fee.get().to_le_bytes());
            }
            PubdataOp::Deposit {
                seq,
                to,
                amount,
                status,
            } => {
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&to.0.to_le_bytes());
                out.extend_from_slice(&amount.get().to_le_bytes());
                out.push(*status as u8);
            }
            PubdataOp::ForcedWithdraw {
                seq,
                requested_at,
                withdraw,
                status,
            } => {
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&requested_at.get().to_le_bytes());
                // The embedded withdraw's encoding without its tag byte.
                out.extend_from_slice(&Transaction::Withdraw(*withdraw).encode()[1..]);
                out.push(*status as u8);
            }
            PubdataOp::StreamOpen { body, fee } => {
                body.write(&mut out);
                out.extend_from_slice(&fee.get().to_le_bytes());
            }
            PubdataOp::StreamSettle { body, fee } | PubdataOp::StreamSettlePath { body, fee } => {
                body.write(&mut out);
                out.extend_from_slice(&fee.get().to_le_bytes());
            }
            PubdataOp::StreamClose { body, fee } => {
                body.write(&mut out);
                out.extend_from_slice(&fee.get().to_le_bytes());
            }
            PubdataOp::Split { from, parts, fee } => {
                write_parts(*from, parts, &mut out);
                out.extend_from_slice(&fee.get().to_le_bytes());
            }
            PubdataOp::Passport(op) => op.write(&mut out),
            PubdataOp::RegisterShares {
                account,
                parts,
                fee,
            } => {
                write_shares(*account, parts, &mut out);
                out.extend_from_slice(&fee.get().to_le_bytes());
            }
            PubdataOp::Distribute { body, fee } => {
                body.write(&mut out);
                out.extend_from_slice(&fee.get().to_le_bytes());
            }
        }
        debug_assert_eq!(out.len(), self.byte_len());
        out
    }

    /// Parses the op at the start of `bytes`; returns it and the number of bytes it used.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(PubdataOp, usize), PubdataError> {
        let (&tag, _) = bytes.split_first().ok_or(PubdataError::Truncated)?;
        let kind = TxKind::from_tag(tag).ok_or(PubdataError::UnknownTag(tag))?;
        let len = match kind {
            TxKind::Split => {
                let n = bytes.get(5..7).ok_or(PubdataError::Truncated)?;
                op_len(kind) + PART_BYTES * usize::from(u16::from_le_bytes([n[0], n[1]]))
            }
            TxKind::RegisterShares => {
                let n = bytes.get(5..7).ok_or(PubdataError::Truncated)?;
                op_len(kind) + SHARE_BYTES * usize::from(u16::from_le_bytes([n[0], n[1]]))
            }
            _ => match op_len_at(kind, bytes) {
                Some(len) => len.map_err(PubdataError::Stream)?,
                None => op_len(kind),
            },
        };
        let body = bytes.get(1..len).ok_or(PubdataError::Truncated)?;
        let mut r = Cursor(body);
        let op = match kind {
            TxKind::Register => PubdataOp::Register {
                index: AccountIndex(u32::from_le_bytes(r.take()?)),
                pubkey: PublicKey::from_bytes(&r.take()?).map_err(PubdataError::PublicKey)?,
            },
            TxKind::Transfer => PubdataOp::Transfer {
                from: AccountIndex(u32::from_le_bytes(r.take()?)),
                to: AccountIndex(u32::from_le_bytes(r.take()?)),
                amount: r.amount()?,
                fee: r.amount()?,
            },
            TxKind::Withdraw => PubdataOp::Withdraw {
                from: AccountIndex(u32::from_le_bytes(r.take()?)),
                to_l1: L1Address(r.take()?),
                amount: r.amount()?,
                fee: r.amount()?,
            },
            TxKind::Deposit => {
                let seq = u64::from_le_bytes(r.take()?);
                if seq > MAX_U63 {
                    return Err(PubdataError::OutOfRange(seq));
                }
                PubdataOp::Deposit {
                    seq,
                    to: AccountIndex(u32::from_le_bytes(r.take()?)),
                    amount: r.amount()?,
                    status: match r.take::<1>()?[0] {
                        0 => DepositStatus::Credited,
                        1 => DepositStatus::Refunded,
                        s => return Err(PubdataError::BadStatus(s)),
                    },
                }
            }
            TxKind::ForcedWithdraw => {
                let seq = u64::from_le_bytes(r.take()?);
                let requested_at = u64::from_le_bytes(r.take()?);
                if seq > MAX_U63 || requested_at > MAX_U63 {
                    return Err(PubdataError::OutOfRange(seq.max(requested_at)));
                }
                let mut inner = [0u8; TxKind::Withdraw.encoded_len()];
                inner[0] = TxKind::Withdraw.tag();
                inner[1..].copy_from_slice(&r.take::<{ TxKind::Withdraw.encoded_len() - 1 }>()?);
                let withdraw = match Transaction::decode(&inner) {
                    Ok(Transaction::Withdraw(w)) => w,
                    Ok(_) => return Err(PubdataError::UnknownTag(tag)),
                    Err(e) => return Err(PubdataError::ForcedWithdraw(e)),
                };
                let status = r.take::<1>()?[0];
                PubdataOp::ForcedWithdraw {
                    seq,
                    requested_at: Timestamp::new(requested_at)
                        .ok_or(PubdataError::OutOfRange(requested_at))?,
                    withdraw,
                    status: ForcedStatus::from_u8(status).ok_or(PubdataError::BadStatus(status))?,
                }
            }
            TxKind::StreamOpen => {
                let (b, f) = stream_op_parts(body)?;
                PubdataOp::StreamOpen {
                    body: read_body(b).map_err(PubdataError::Stream)?,
                    fee: f,
                }
            }
            TxKind::StreamSettle => {
                let (b, f) = stream_op_parts(body)?;
                PubdataOp::StreamSettle {
                    body: read_body(b).map_err(PubdataError::Stream)?,
                    fee: f,
                }
            }
            TxKind::StreamClose => {
                let (b, f) = stream_op_parts(body)?;
                PubdataOp::StreamClose {
                    body: read_body(b).map_err(PubdataError::Stream)?,
                    fee: f,
                }
            }
            TxKind::StreamSettlePath => {
                let (b, f) = stream_op_parts(body)?;
                PubdataOp::StreamSettlePath {
                    body: read_body(b).map_err(PubdataError::Stream)?,
                    fee: f,
                }
            }
            TxKind::Split => {
                let (b, fee) = stream_op_parts(body)?;
                let (from, parts) = read_op_parts(b).map_err(PubdataError::Stream)?;
                PubdataOp::Split { from, parts, fee }
            }
            TxKind::Delegate | TxKind::SetPolicy | TxKind::Revoke | TxKind::Sweep => {
                PubdataOp::Passport(PassportOp::read(kind, body).map_err(PubdataError::Stream)?)
            }
            TxKind::RegisterShares => {
                let (b, fee) = stream_op_parts(body)?;
                let (account, parts) = read_op_shares(b).map_err(PubdataError::Stream)?;
                PubdataOp::RegisterShares {
                    account,
                    parts,
                    fee,
                }
            }
            TxKind::Distribute => {
                let (b, fee) = stream_op_parts(body)?;
                PubdataOp::Distribute {
                    body: read_body(b).map_err(PubdataError::Stream)?,
                    fee,
                }
            }
        };
        Ok((op, len))
    }

    /// The op's bytes as field elements: 7-byte little-endian chunks, the last zero-padded.
    pub fn chunks(&self) -> Vec<F> {
        bytes_to_chunks(&self.to_bytes())
    }
}

/// Splits a pubdata blob (the concatenation of a batch's ops) back into ops.
pub fn decode_ops(mut bytes: &[u8]) -> Result<Vec<PubdataOp>, PubdataError> {
    let mut ops = Vec::new();
    while !bytes.is_empty() {
        let (op, used) = PubdataOp::decode_prefix(bytes)?;
        ops.push(op);
        bytes = &bytes[used..];
    }
    Ok(ops)
}

/// Concatenates ops into a pubdata blob.
pub fn encode_ops<'a>(ops: impl IntoIterator<Item = &'a PubdataOp>) -> Vec<u8> {
    ops.into_iter().flat_map(|op| op.to_bytes()).collect()
}

/// Why a pubdata blob could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PubdataError {
    #[error("pubdata ends in the middle of an op")]
    Truncated,
    #[error("unknown pubdata op tag {0}")]
    UnknownTag(u8),
    #[error("invalid public key in a register op: {0}")]
    PublicKey(#[source] KeyError),
    #[error("integer {0} in pubdata is above 2^63 - 1")]
    OutOfRange(u64),
    #[error("unknown deposit or forced-withdrawal status {0}")]
    BadStatus(u8),
    #[error("invalid withdraw in a forced-withdrawal op: {0}")]
    ForcedWithdraw(#[source] DecodeError),
    #[error("invalid body in a stream op: {0}")]
    Stream(#[source] DecodeError),
}

/// A stream op after its tag: the body, then the fee (the last eight bytes).
fn stream_op_parts(rest: &[u8]) -> Result<(&[u8], Amount), PubdataError> {
    let (body, fee) = rest
        .split_last_chunk::<8>()
        .ok_or(PubdataError::Truncated)?;
    let fee = u64::from_le_bytes(*fee);
    Ok((body, Amount::new(fee).ok_or(PubdataError::OutOfRange(fee))?))
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], PubdataError> {
        let (head, tail) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(PubdataError::Truncated)?;
        self.0 = tail;
        Ok(*head)
    }

    fn amount(&mut self) -> Result<Amount, PubdataError> {
        let v = u64::from_le_bytes(self.take()?);
        Amount::new(v).ok_or(PubdataError::OutOfRange(v))
    }
}

mod commitment;

pub use commitment::{
    bytes_to_chunks, policy_entry, pubdata_commitment, shares_entry, split_entry,
    withdrawals_commitment, PubdataCommitment, WithdrawalRecord, WithdrawalsCommitment,
    DELEGATE_FIXED_BYTES, SET_POLICY_FIXED_BYTES, SPLIT_FIXED_BYTES,
};

#[cfg(test)]
mod tests;
