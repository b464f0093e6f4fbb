//! Receipts: the node's answer to every submitted transaction, in a typed form.

use std::fmt;
use std::str::FromStr;

use rollup_proto::v1 as proto;
use serde::{Serialize, Serializer};
use state::account::AccountIndex;
use state::crypto::schnorr::MessageHash;

use crate::error::{Error, Result};

/// A transaction id: the 32-byte message hash of the transaction (never a hash of the
/// signature). Shown and parsed as `0x` followed by 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub [u8; 32]);

impl TxId {
    pub const BYTES: usize = 32;

    /// The id from its wire form; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<TxId> {
        bytes.try_into().ok().map(TxId)
    }
}

impl From<MessageHash> for TxId {
    fn from(hash: MessageHash) -> Self {
        TxId(hash.0.to_bytes())
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxId({self})")
    }
}

/// Why a string is not a transaction id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a transaction id is 0x followed by 64 hex digits")]
pub struct ParseTxIdError;

impl FromStr for TxId {
    type Err = ParseTxIdError;
    fn from_str(s: &str) -> Result<Self, ParseTxIdError> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(digits).map_err(|_| ParseTxIdError)?;
        TxId::from_slice(&bytes).ok_or(ParseTxIdError)
    }
}

impl Serialize for TxId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How final an accepted transaction is (DESIGN.md, "Finality levels").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finality {
    /// No finality (a rejection).
    None,
    /// Durable in the node's database, with a receipt.
    Accepted,
    /// Its batch has a proof that verifies.
    Proven,
    /// Its batch is committed on L1.
    Committed,
    /// L1 verified it and it is past the confirmation depth.
    Finalized,
}

impl Finality {
    fn from_wire(value: i32) -> Finality {
        match proto::Finality::try_from(value) {
            Ok(proto::Finality::Accepted) => Finality::Accepted,
            Ok(proto::Finality::Proven) => Finality::Proven,
            Ok(proto::Finality::Committed) => Finality::Committed,
            Ok(proto::Finality::Finalized) => Finality::Finalized,
            // A level this SDK does not know yet is reported as the weakest one rather than
            // failing the whole receipt: the transaction's status is what matters to callers.
            Ok(proto::Finality::Unspecified) | Err(_) => Finality::None,
        }
    }
}

impl fmt::Display for Finality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Finality::None => "none",
            Finality::Accepted => "accepted",
            Finality::Proven => "proven",
            Finality::Committed => "committed",
            Finality::Finalized => "finalized",
        })
    }
}

/// The node's decision on a transaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Rejected {
        /// Stable machine-readable reason, e.g. `BAD_NONCE`.
        reason_code: String,
        /// Human-readable detail.
        message: String,
    },
}

/// A receipt (rollup.proto `Receipt`), checked and typed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Receipt {
    /// `None` when the node could not decode the request (so it has no id).
    pub tx_id: Option<TxId>,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub block_number: u64,
    /// Position of the transaction inside its block.
    pub position: u32,
    pub finality: Finality,
    /// Global acceptance sequence number (a cursor for [`crate::Client::watch`]).
    pub seq: u64,
    /// For an accepted registration: the account index assigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_index: Option<AccountIndex>,
    /// True when this answers a resubmission of an already accepted transaction.
    pub duplicate: bool,
}

impl Receipt {
    pub fn is_accepted(&self) -> bool {
        self.outcome == Outcome::Accepted
    }

    /// The rejection's reason code, `None` if accepted.
    pub fn reason_code(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Accepted => None,
            Outcome::Rejected { reason_code, .. } => Some(reason_code),
        }
    }

    /// `Ok(self)` if accepted, otherwise [`Error::Rejected`] carrying the reason code.
    pub fn into_accepted(self) -> Result<Receipt> {
        match &self.outcome {
            Outcome::Accepted => Ok(self),
            Outcome::Rejected {
                reason_code,
                message,
            } => Err(Error::Rejected {
                code: reason_code.clone(),
                message: message.clone(),
                receipt: Box::new(self),
            }),
        }
    }
}

impl TryFrom<proto::Receipt> for Receipt {
    type Error = Error;

    fn try_from(r: proto::Receipt) -> Result<Self> {
        let tx_id = if r.tx_id.is_empty() {
            None
        } else {
            Some(TxId::from_slice(&r.tx_id).ok_or_else(|| {
                Error::protocol(
                    "receipt",
                    format!("tx_id of {} bytes, expected 32", r.tx_id.len()),
                )
            })?)
        };
        let outcome = match proto::TxStatus::try_from(r.status) {
            Ok(proto::TxStatus::Accepted) => Outcome::Accepted,
            Ok(proto::TxStatus::Rejected) => Outcome::Rejected {
                reason_code: r.reason_code,
                message: r.message,
            },
            Ok(proto::TxStatus::Unspecified) | Err(_) => {
                return Err(Error::protocol(
                    "receipt",
                    format!("status {} is neither accepted nor rejected", r.status),
                ))
            }
        };
        Ok(Receipt {
            tx_id,
            outcome,
            block_number: r.block_number,
            position: r.position,
            finality: Finality::from_wire(r.finality),
            seq: r.seq,
            account_index: r.account_index.map(AccountIndex),
            duplicate: r.duplicate,
        })
    }
}

impl fmt::Display for Receipt {
    /// One line: `accepted tx 0x.. block 3 position 7 seq 42 (finality accepted)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Accepted => f.write_str("accepted")?,
            Outcome::Rejected {
                reason_code,
                message,
            } => write!(f, "rejected {reason_code} ({message})")?,
        }
        if let Some(id) = &self.tx_id {
            write!(f, " tx {id}")?;
        }
        if self.is_accepted() {
            write!(
                f,
                " block {} position {} seq {} finality {}",
                self.block_number, self.position, self.seq, self.finality
            )?;
        }
        if let Some(index) = self.account_index {
            write!(f, " account {index}")?;
        }
        if self.duplicate {
            f.write_str(" (duplicate)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(status: proto::TxStatus) -> proto::Receipt {
        proto::Receipt {
            tx_id: vec![7; 32],
            status: status as i32,
            reason_code: if status == proto::TxStatus::Rejected {
                "BAD_NONCE".into()
            } else {
                String::new()
            },
            message: "nonce 3 is not the account's next nonce 2".into(),
            block_number: 4,
            position: 9,
            finality: proto::Finality::Accepted as i32,
            seq: 77,
            account_index: Some(12),
            duplicate: true,
        }
    }

    #[test]
    fn accepted_receipt_converts_and_serializes() {
        let r = Receipt::try_from(wire(proto::TxStatus::Accepted)).unwrap();
        assert!(r.is_accepted());
        assert_eq!(r.tx_id, Some(TxId([7; 32])));
        assert_eq!(r.account_index, Some(AccountIndex(12)));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["status"], "accepted");
        assert_eq!(json["finality"], "accepted");
        assert_eq!(json["tx_id"], format!("0x{}", "07".repeat(32)));
        assert!(r.clone().into_accepted().is_ok());
    }

    #[test]
    fn rejection_becomes_an_error_with_the_reason_code() {
        let r = Receipt::try_from(wire(proto::TxStatus::Rejected)).unwrap();
        assert_eq!(r.reason_code(), Some("BAD_NONCE"));
        let err = r.into_accepted().unwrap_err();
        assert_eq!(err.reason_code(), Some("BAD_NONCE"));
        assert!(err.to_string().starts_with("rejected: BAD_NONCE: "));
    }

    #[test]
    fn malformed_receipts_are_protocol_errors() {
        let mut bad_id = wire(proto::TxStatus::Accepted);
        bad_id.tx_id = vec![1; 31];
        assert!(matches!(
            Receipt::try_from(bad_id),
            Err(Error::Protocol { .. })
        ));
        let mut no_status = wire(proto::TxStatus::Accepted);
        no_status.status = 0;
        assert!(matches!(
            Receipt::try_from(no_status),
            Err(Error::Protocol { .. })
        ));
        let mut empty_id = wire(proto::TxStatus::Rejected);
        empty_id.tx_id.clear();
        assert_eq!(Receipt::try_from(empty_id).unwrap().tx_id, None);
    }

    #[test]
    fn tx_id_parses_its_display_form() {
        let id = TxId([0xab; 32]);
        assert_eq!(id.to_string().parse::<TxId>(), Ok(id));
        assert_eq!("ab".repeat(32).parse::<TxId>(), Ok(id));
        assert_eq!("0xabc".parse::<TxId>(), Err(ParseTxIdError));
        assert_eq!("zz".repeat(32).parse::<TxId>(), Err(ParseTxIdError));
    }
}
