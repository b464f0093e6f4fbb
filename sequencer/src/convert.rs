//! Conversions between the wire (rollup.v1) and the rules (`state`), with reason codes.

use rollup_proto::v1 as pb;
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::apply::Rejection;
use state::crypto::schnorr::{PublicKey, Signature};
use state::tx::{DecodeError, L1Address, Register, Transaction, Transfer, Withdraw};

use crate::writer::AcceptedMeta;

/// Why a request could not even be turned into a transaction. Each variant has a stable code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("the request carries no transaction")]
    Empty,
    #[error("{}: {}", .0.code(), .0)]
    Decode(#[from] DecodeError),
    #[error("invalid public key: {0}")]
    PublicKey(String),
    #[error("invalid signature encoding: {0}")]
    Signature(String),
    #[error("{field} = {value} is above 2^63 - 1")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("the L1 address must be 20 bytes, got {0}")]
    L1Address(usize),
    #[error("deposits come from L1 only")]
    DepositNotAllowed,
    #[error("forced withdrawals are requested on L1 (Rollup.requestForcedWithdrawal); over the API, send a plain withdraw")]
    ForcedWithdrawalNotAllowed,
}

impl RequestError {
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::Empty => "EMPTY_REQUEST",
            RequestError::Decode(DecodeError::PublicKey(_)) | RequestError::PublicKey(_) => {
                "INVALID_PUBLIC_KEY"
            }
            RequestError::Decode(DecodeError::Signature(_)) | RequestError::Signature(_) => {
                "INVALID_SIGNATURE_ENCODING"
            }
            RequestError::Decode(DecodeError::OutOfRange { .. })
            | RequestError::OutOfRange { .. } => "VALUE_OUT_OF_RANGE",
            RequestError::Decode(_) => "MALFORMED",
            RequestError::L1Address(_) => "INVALID_L1_ADDRESS",
            RequestError::DepositNotAllowed => "DEPOSIT_NOT_ALLOWED",
            RequestError::ForcedWithdrawalNotAllowed => "FORCED_WITHDRAWAL_NOT_ALLOWED",
        }
    }
}

fn amount(field: &'static str, v: u64) -> Result<Amount, RequestError> {
    Amount::new(v).ok_or(RequestError::OutOfRange { field, value: v })
}
fn nonce(v: u64) -> Result<Nonce, RequestError> {
    Nonce::new(v).ok_or(RequestError::OutOfRange {
        field: "nonce",
        value: v,
    })
}
fn timestamp(v: u64) -> Result<Timestamp, RequestError> {
    Timestamp::new(v).ok_or(RequestError::OutOfRange {
        field: "valid_until",
        value: v,
    })
}
fn signature(b: &[u8]) -> Result<Signature, RequestError> {
    Signature::from_slice(b).map_err(|e| RequestError::Signature(e.to_string()))
}

/// Turns a request into a transaction, validating every field; deposits are refused (they only
/// enter from L1, or the devnet faucet).
pub fn transaction_from_request(req: pb::SubmitRequest) -> Result<Transaction, RequestError> {
    let tx = match req.tx.ok_or(RequestError::Empty)? {
        pb::submit_request::Tx::Raw(bytes) => Transaction::decode(&bytes)?,
        pb::submit_request::Tx::Transfer(t) => Transaction::Transfer(Transfer {
            from: AccountIndex(t.from),
            to: AccountIndex(t.to),
            amount: amount("amount", t.amount)?,
            fee: amount("fee", t.fee)?,
            nonce: nonce(t.nonce)?,
            valid_until: timestamp(t.valid_until)?,
            signature: signature(&t.signature)?,
        }),
        pb::submit_request::Tx::Register(r) => Transaction::Register(Register {
            pubkey: PublicKey::from_slice(&r.public_key)
                .map_err(|e| RequestError::PublicKey(e.to_string()))?,
            valid_until: timestamp(r.valid_until)?,
            signature: signature(&r.signature)?,
        }),
        pb::submit_request::Tx::Withdraw(w) => {
            let addr: [u8; 20] = w
                .to_l1
                .as_slice()
                .try_into()
                .map_err(|_| RequestError::L1Address(w.to_l1.len()))?;
            Transaction::Withdraw(Withdraw {
                from: AccountIndex(w.from),
                to_l1: L1Address(addr),
                amount: amount("amount", w.amount)?,
                fee: amount("fee", w.fee)?,
                nonce: nonce(w.nonce)?,
                valid_until: timestamp(w.valid_until)?,
                signature: signature(&w.signature)?,
            })
        }
    };
    match tx {
        Transaction::Deposit(_) => return Err(RequestError::DepositNotAllowed),
        Transaction::ForcedWithdraw(_) => return Err(RequestError::ForcedWithdrawalNotAllowed),
        _ => {}
    }
    Ok(tx)
}

pub fn accepted_receipt(meta: &AcceptedMeta, duplicate: bool) -> pb::Receipt {
    pb::Receipt {
        tx_id: meta.tx_id.to_vec(),
        status: pb::TxStatus::Accepted as i32,
        reason_code: String::new(),
        message: String::new(),
        block_number: meta.block_number,
        position: meta.position,
        finality: pb::Finality::Accepted as i32,
        seq: meta.seq,
        account_index: meta.account_index,
        duplicate,
    }
}

pub fn rejected_receipt(tx_id: Option<[u8; 32]>, code: &str, message: String) -> pb::Receipt {
    pb::Receipt {
        tx_id: tx_id.map(|i| i.to_vec()).unwrap_or_default(),
        status: pb::TxStatus::Rejected as i32,
        reason_code: code.to_string(),
        message,
        block_number: 0,
        position: 0,
        finality: pb::Finality::Unspecified as i32,
        seq: 0,
        account_index: None,
        duplicate: false,
    }
}

pub fn rejection_receipt(tx_id: [u8; 32], r: &Rejection) -> pb::Receipt {
    rejected_receipt(Some(tx_id), r.code(), r.to_string())
}
