//! Conversions between the wire (rollup.v1) and the rules (`state`), with reason codes: requests
//! to transactions (`rollup_proto::convert`, re-exported), outcomes to receipts.

use rollup_proto::v1 as pb;
use state::apply::Rejection;

use crate::writer::AcceptedMeta;

/// The request-to-transaction conversion and its reason codes live in `rollup_proto::convert`,
/// shared with the SDK.
pub use rollup_proto::convert::{transaction_from_request, RequestError};

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
