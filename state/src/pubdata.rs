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

use plonky2::field::types::Field;

use crate::account::{AccountIndex, Amount, Timestamp, MAX_U63};
use crate::apply::Rejection;
use crate::crypto::schnorr::{KeyError, PublicKey};
use crate::hash::{hash_no_pad, Digest, F};
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
    /// not enabled), so the payment circuit, which proves statuses 0 to 8, never meets these.
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
                PassportRejection::PolicyPayee(_) | PassportRejection::PolicyWithdrawal => {
                    ForcedStatus::PolicyPayee
                }
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
            PubdataOp::StreamSettle { body, fee } => {
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

/// 7-byte little-endian chunks of `bytes`, the last one zero-padded (SPEC 10.1).
pub fn bytes_to_chunks(bytes: &[u8]) -> Vec<F> {
    bytes
        .chunks(CHUNK_BYTES)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            // At most 7 bytes: below 2^56 < p, hence canonical.
            F::from_canonical_u64(u64::from_le_bytes(b))
        })
        .collect()
}

/// The running pubdata commitment `c_i` of a batch (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct PubdataCommitment(Digest);

impl PubdataCommitment {
    /// `c_0 = ZERO`: the commitment of an empty batch.
    pub fn new() -> Self {
        PubdataCommitment(Digest::ZERO)
    }

    /// `c_{i+1} = hash_no_pad(c_i ‖ len ‖ chunks)`.
    pub fn absorb(&mut self, op: &PubdataOp) {
        let bytes = op.to_bytes();
        let chunks = bytes_to_chunks(&bytes);
        let head = |buf: &mut [F]| {
            buf[..4].copy_from_slice(&self.0.elements());
            buf[4] = F::from_canonical_usize(bytes.len());
            buf[5..].copy_from_slice(&chunks);
        };
        // The fixed-length ops (every kind the payment circuit proves) fit a stack buffer; a
        // split's or a policy's op may be kilobytes long and is hashed from the heap.
        self.0 = if chunks.len() <= MAX_CHUNKS {
            let mut buf = [F::ZERO; 5 + MAX_CHUNKS];
            head(&mut buf[..5 + chunks.len()]);
            hash_no_pad(&buf[..5 + chunks.len()])
        } else {
            let mut buf = vec![F::ZERO; 5 + chunks.len()];
            head(&mut buf);
            hash_no_pad(&buf)
        };
    }

    pub fn digest(&self) -> Digest {
        self.0
    }
}

/// The pubdata commitment of a sequence of ops, in order.
pub fn pubdata_commitment<'a>(ops: impl IntoIterator<Item = &'a PubdataOp>) -> Digest {
    let mut c = PubdataCommitment::new();
    ops.into_iter().for_each(|op| c.absorb(op));
    c.digest()
}

/// A withdrawal to be released by the L1 contract once its batch is final.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct WithdrawalRecord {
    pub from: AccountIndex,
    pub to_l1: L1Address,
    pub amount: Amount,
}

impl WithdrawalRecord {
    /// `from, address limbs 0..4, amount`: what the withdrawals commitment hashes.
    pub fn to_field_elements(&self) -> [F; 7] {
        let a = self.to_l1.to_field_elements();
        [
            self.from.to_field(),
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            self.amount.to_field(),
        ]
    }
}

/// The running withdrawals commitment `w_i` of a batch (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct WithdrawalsCommitment(Digest);

impl WithdrawalsCommitment {
    /// `w_0 = ZERO`: a batch without withdrawals.
    pub fn new() -> Self {
        WithdrawalsCommitment(Digest::ZERO)
    }

    /// `w_{i+1} = hash_no_pad(w_i ‖ from ‖ address limbs ‖ amount)`.
    pub fn absorb(&mut self, w: &WithdrawalRecord) {
        let mut buf = [F::ZERO; 11];
        buf[..4].copy_from_slice(&self.0.elements());
        buf[4..].copy_from_slice(&w.to_field_elements());
        self.0 = hash_no_pad(&buf);
    }

    pub fn digest(&self) -> Digest {
        self.0
    }
}

/// The withdrawals commitment of a sequence of withdrawals, in order.
pub fn withdrawals_commitment<'a>(ws: impl IntoIterator<Item = &'a WithdrawalRecord>) -> Digest {
    let mut c = WithdrawalsCommitment::new();
    ws.into_iter().for_each(|w| c.absorb(w));
    c.digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use plonky2::field::types::PrimeField64;

    fn amt(v: u64) -> Amount {
        Amount::new(v).unwrap()
    }

    fn keyless_ops() -> Vec<PubdataOp> {
        vec![
            PubdataOp::Transfer {
                from: AccountIndex(1),
                to: AccountIndex(2),
                amount: amt(300),
                fee: amt(1),
            },
            PubdataOp::Withdraw {
                from: AccountIndex(2),
                to_l1: L1Address([0xab; 20]),
                amount: amt(u64::MAX >> 1),
                fee: amt(0),
            },
            PubdataOp::Deposit {
                seq: 7,
                to: AccountIndex(9),
                amount: amt(5),
                status: DepositStatus::Refunded,
            },
        ]
    }

    #[test]
    fn ops_longer_than_any_fixed_kind_commit_like_the_others() {
        // A 1,024-payee split is 12,303 bytes: past the stack buffer of the fixed kinds.
        let parts = (0..1024u32)
            .map(|i| Payout {
                to: AccountIndex(i + 5),
                amount: amt(1),
            })
            .collect();
        let op = PubdataOp::Split {
            from: AccountIndex(1),
            parts,
            fee: amt(0),
        };
        let bytes = op.to_bytes();
        assert!(bytes_to_chunks(&bytes).len() > MAX_CHUNKS);
        let mut by_hand = Digest::ZERO.elements().to_vec();
        by_hand.push(F::from_canonical_usize(bytes.len()));
        by_hand.extend(bytes_to_chunks(&bytes));
        let first = ops_commitment_after(&keyless_ops());
        let mut c = first;
        c.absorb(&op);
        let mut expect = first.digest().elements().to_vec();
        expect.push(F::from_canonical_usize(bytes.len()));
        expect.extend(bytes_to_chunks(&bytes));
        assert_eq!(c.digest(), hash_no_pad(&expect));
        assert_eq!(pubdata_commitment([&op]), hash_no_pad(&by_hand));
    }

    fn ops_commitment_after(ops: &[PubdataOp]) -> PubdataCommitment {
        let mut c = PubdataCommitment::new();
        ops.iter().for_each(|op| c.absorb(op));
        c
    }

    #[test]
    fn op_lengths_and_layout() {
        assert_eq!(op_len(TxKind::Register), 45);
        assert_eq!(op_len(TxKind::Transfer), 25);
        assert_eq!(op_len(TxKind::Withdraw), 41);
        assert_eq!(op_len(TxKind::Deposit), 22);
        let ops = keyless_ops();
        let t = ops[0].to_bytes();
        assert_eq!(t.len(), 25);
        assert_eq!(t[0], 2);
        assert_eq!(&t[1..5], &1u32.to_le_bytes());
        assert_eq!(&t[9..17], &300u64.to_le_bytes());
        let d = ops[2].to_bytes();
        assert_eq!(d.len(), 22);
        assert_eq!(d[21], 1, "refunded status byte");
    }

    #[test]
    fn blob_roundtrip_and_rejections() {
        let ops = keyless_ops();
        let blob = encode_ops(&ops);
        assert_eq!(decode_ops(&blob), Ok(ops.clone()));
        assert_eq!(
            decode_ops(&blob[..blob.len() - 1]),
            Err(PubdataError::Truncated)
        );
        let mut bad_status = ops[2].to_bytes();
        bad_status[21] = 2;
        assert_eq!(decode_ops(&bad_status), Err(PubdataError::BadStatus(2)));
        assert_eq!(decode_ops(&[17]), Err(PubdataError::UnknownTag(17)));
        assert_eq!(decode_ops(&[10, 0, 0]), Err(PubdataError::Truncated));
        let mut big = ops[0].to_bytes();
        big[9..17].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(decode_ops(&big), Err(PubdataError::OutOfRange(u64::MAX)));
    }

    #[test]
    fn register_op_roundtrips_and_validates_the_key() {
        use rand::SeedableRng;
        let key =
            crate::crypto::schnorr::SecretKey::random(&mut rand::rngs::StdRng::seed_from_u64(7));
        let op = PubdataOp::Register {
            index: AccountIndex(0x0102_0304),
            pubkey: key.public_key(),
        };
        let bytes = op.to_bytes();
        assert_eq!(bytes.len(), 45);
        assert_eq!(&bytes[1..5], &[4, 3, 2, 1]);
        assert_eq!(&bytes[5..], &key.public_key().to_bytes());
        assert_eq!(PubdataOp::decode_prefix(&bytes), Ok((op.clone(), 45)));
        assert_eq!(op.chunks().len(), 7);
        let mut bad = bytes;
        bad[5..].fill(0xff);
        assert_eq!(
            decode_ops(&bad),
            Err(PubdataError::PublicKey(KeyError::NonCanonical))
        );
    }

    #[test]
    fn chunks_are_seven_byte_little_endian() {
        let op = keyless_ops()[0].clone();
        let bytes = op.to_bytes();
        let chunks = op.chunks();
        assert_eq!(chunks.len(), 4, "25 bytes = 3 full chunks + 4 bytes");
        let mut b = [0u8; 8];
        b[..7].copy_from_slice(&bytes[..7]);
        assert_eq!(chunks[0].to_canonical_u64(), u64::from_le_bytes(b));
        let mut last = [0u8; 8];
        last[..4].copy_from_slice(&bytes[21..]);
        assert_eq!(chunks[3].to_canonical_u64(), u64::from_le_bytes(last));
        // All 0xff bytes must still be canonical.
        assert_eq!(
            bytes_to_chunks(&[0xff; 7])[0].to_canonical_u64(),
            (1 << 56) - 1
        );
    }

    #[test]
    fn pubdata_commitment_chains_in_order() {
        let ops = keyless_ops();
        assert_eq!(pubdata_commitment([]), Digest::ZERO);
        let c1 = hash_no_pad(
            &[
                Digest::ZERO.elements().to_vec(),
                vec![F::from_canonical_u64(25)],
                ops[0].chunks(),
            ]
            .concat(),
        );
        assert_eq!(pubdata_commitment(&ops[..1]), c1);
        let full = pubdata_commitment(&ops);
        let swapped = pubdata_commitment([&ops[1], &ops[0], &ops[2]]);
        assert_ne!(full, swapped, "order matters");
        assert_ne!(full, pubdata_commitment(&ops[..2]), "every op matters");
        // Changing a single bit of one op changes the commitment.
        let mut changed = ops.clone();
        changed[2] = PubdataOp::Deposit {
            seq: 7,
            to: AccountIndex(9),
            amount: amt(5),
            status: DepositStatus::Credited,
        };
        assert_ne!(full, pubdata_commitment(&changed));
    }

    #[test]
    fn withdrawals_commitment_chains_in_order() {
        let a = WithdrawalRecord {
            from: AccountIndex(1),
            to_l1: L1Address([1; 20]),
            amount: amt(10),
        };
        let b = WithdrawalRecord {
            amount: amt(11),
            ..a
        };
        assert_eq!(withdrawals_commitment([]), Digest::ZERO);
        let w1 = hash_no_pad(&[&Digest::ZERO.elements()[..], &a.to_field_elements()[..]].concat());
        assert_eq!(withdrawals_commitment([&a]), w1);
        assert_ne!(
            withdrawals_commitment([&a, &b]),
            withdrawals_commitment([&b, &a])
        );
    }

    #[test]
    fn stream_ops_roundtrip_and_refuse_bad_bodies() {
        use crate::stream::rules::Settle;
        use crate::stream::{StreamSlot, TickCount};
        let open = Open {
            payer: AccountIndex(1),
            payee: AccountIndex(2),
            slot: StreamSlot(4),
            price: Amount::new(3).unwrap(),
            max_ticks: TickCount::MAX,
            expiry: Timestamp::MAX,
            anchor: Digest([F::from_canonical_u64(9); 4]),
        };
        let settle = SettleBody {
            payee: AccountIndex(2),
            terms: Settle {
                payer: AccountIndex(1),
                slot: StreamSlot(4),
                from: TickCount::ZERO,
                to: TickCount::new(8).unwrap(),
                value: Digest([F::from_canonical_u64(1); 4]),
            },
        };
        let close = Close {
            payer: AccountIndex(1),
            slot: StreamSlot(4),
            signer: AccountIndex(1),
        };
        let fee = Amount::MAX;
        let ops = [
            PubdataOp::StreamOpen { body: open, fee },
            PubdataOp::StreamSettle { body: settle, fee },
            PubdataOp::StreamClose { body: close, fee },
        ];
        let mut blob = Vec::new();
        for (op, len) in ops.iter().zip([71, 59, 19]) {
            let bytes = op.to_bytes();
            assert_eq!((bytes.len(), op_len(op.kind())), (len, len));
            assert_eq!(bytes[0], op.kind().tag());
            assert_eq!(PubdataOp::decode_prefix(&bytes), Ok((op.clone(), len)));
            assert_eq!(
                PubdataOp::decode_prefix(&bytes[..len - 1]),
                Err(PubdataError::Truncated)
            );
            blob.extend(bytes);
        }
        assert_eq!(decode_ops(&blob), Ok(ops.to_vec()));
        // The body is checked as in a transaction: a non-canonical anchor (offset 31), a tick
        // count above 2^24 (max_ticks at 19), a fee above 2^63 - 1 (the last eight bytes).
        let bytes = ops[0].to_bytes();
        let mut bad = bytes.clone();
        bad[31..39].copy_from_slice(&crate::hash::P.to_le_bytes());
        assert_eq!(
            PubdataOp::decode_prefix(&bad),
            Err(PubdataError::Stream(DecodeError::NonCanonicalDigest(
                "anchor"
            )))
        );
        let mut bad = bytes.clone();
        bad[19..23].copy_from_slice(&((1u32 << 24) + 1).to_le_bytes());
        assert!(matches!(
            PubdataOp::decode_prefix(&bad),
            Err(PubdataError::Stream(DecodeError::OutOfRange {
                field: "max_ticks",
                ..
            }))
        ));
        let mut bad = bytes;
        bad[63..].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            PubdataOp::decode_prefix(&bad),
            Err(PubdataError::OutOfRange(u64::MAX))
        );
        // Tag 6 (the exit authorisation's kind element) is no op.
        assert_eq!(
            PubdataOp::decode_prefix(&[6; 30]),
            Err(PubdataError::UnknownTag(6))
        );
    }
}
