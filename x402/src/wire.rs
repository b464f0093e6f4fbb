//! The x402 v2 messages, as JSON, and the base64 codec of the three headers.
//!
//! Field names follow the specification (camelCase). Amounts are decimal strings of atomic
//! units. Unknown fields are ignored on input and never produced, so a newer peer's additions
//! do not break us; `extra` and `extensions` pass through untouched.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version these types speak.
pub const X402_VERSION: u32 = 2;

/// The server's 402 answer, carried (base64 JSON) in this header.
pub const PAYMENT_REQUIRED: &str = "payment-required";
/// The client's signed payment (a [`PaymentPayload`]), base64 JSON.
pub const PAYMENT_SIGNATURE: &str = "payment-signature";
/// The settlement (a [`SettleResponse`]), base64 JSON, on the paid answer.
pub const PAYMENT_RESPONSE: &str = "payment-response";

/// What a resource costs, in one scheme on one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    pub scheme: String,
    /// A CAIP-2 network id.
    pub network: String,
    /// Atomic units, decimal.
    pub amount: String,
    pub asset: String,
    pub pay_to: String,
    pub max_timeout_seconds: u64,
    /// Always sent, even empty: the reference middleware compares the server's `extra` with
    /// the client's as objects, and an absent one is not an empty one.
    #[serde(default)]
    pub extra: Map<String, Value>,
}

impl PaymentRequirements {
    /// Whether `accepted` (from a client's payload) is these requirements: every field equal,
    /// and `extra` a superset of ours (the rule the reference middleware applies).
    pub fn is_accepted_by(&self, accepted: &PaymentRequirements) -> bool {
        self.scheme == accepted.scheme
            && self.network == accepted.network
            && self.amount == accepted.amount
            && self.asset == accepted.asset
            && self.pay_to == accepted.pay_to
            && self.max_timeout_seconds == accepted.max_timeout_seconds
            && self
                .extra
                .iter()
                .all(|(k, v)| accepted.extra.get(k) == Some(v))
    }
}

/// The paid resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// A 402 answer: what the resource accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    pub x402_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    pub accepts: Vec<PaymentRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// A client's payment: the requirements it accepted and the scheme's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    pub x402_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    pub accepted: PaymentRequirements,
    /// Scheme-specific; for `exact` on this rollup an [`crate::exact::ExactPayload`].
    pub payload: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// The body of a facilitator's `POST /verify` and `POST /settle`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FacilitatorRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x402_version: Option<u32>,
    pub payment_payload: PaymentPayload,
    /// The resource server's own copy (not the client's `accepted`).
    pub payment_requirements: PaymentRequirements,
}

/// A facilitator's answer to `/verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub is_valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

/// A facilitator's answer to `/settle`, and the `PAYMENT-RESPONSE` header's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// The transaction id (`0x` and 64 hex digits); empty when nothing was settled.
    pub transaction: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// This rollup adds the settlement's finality, block and sequence number here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// One (version, scheme, network) a facilitator settles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    pub x402_version: u32,
    pub scheme: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// A facilitator's answer to `GET /supported`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    pub kinds: Vec<SupportedKind>,
    #[serde(default)]
    pub extensions: Vec<String>,
    #[serde(default)]
    pub signers: Map<String, Value>,
}

impl SupportedResponse {
    /// The kind that settles `scheme` in this protocol version, if the facilitator offers one.
    pub fn kind(&self, scheme: &str) -> Option<&SupportedKind> {
        self.kinds
            .iter()
            .find(|k| k.scheme == scheme && k.x402_version == X402_VERSION)
    }
}

impl SupportedKind {
    /// The asset the kind settles (`extra.asset`), as this rollup's facilitator announces it.
    pub fn asset(&self) -> Option<&str> {
        self.extra.as_ref()?.get("asset")?.as_str()
    }
}

/// A header value that is not base64 of the expected JSON.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("not standard base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A message as a header value: standard, padded base64 of its JSON.
pub fn encode_header<T: Serialize>(message: &T) -> String {
    // Serializing these plain structs cannot fail (string keys, no maps with other keys).
    let json = serde_json::to_vec(message).unwrap_or_default();
    STANDARD.encode(json)
}

/// A header value back to its message.
pub fn decode_header<T: DeserializeOwned>(value: &[u8]) -> Result<T, HeaderError> {
    let json = STANDARD.decode(value.trim_ascii())?;
    Ok(serde_json::from_slice(&json)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirements() -> PaymentRequirements {
        PaymentRequirements {
            scheme: "exact".into(),
            network: "arollup:31337-0000000000000000".into(),
            amount: "1000".into(),
            asset: "native".into(),
            pay_to: "7".into(),
            max_timeout_seconds: 60,
            extra: Map::new(),
        }
    }

    /// The field names the reference implementation (npm `@x402/core` 2.27) sends.
    #[test]
    fn json_uses_the_specification_names() {
        let r = requirements();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"scheme": "exact", "network": "arollup:31337-0000000000000000",
                "amount": "1000", "asset": "native", "payTo": "7", "maxTimeoutSeconds": 60,
                "extra": {}})
        );
        let settle: SettleResponse = serde_json::from_value(serde_json::json!({
            "success": false, "errorReason": "insufficient_funds", "transaction": "",
            "network": "x:y", "unknownField": 1
        }))
        .unwrap();
        assert_eq!(settle.error_reason.as_deref(), Some("insufficient_funds"));
    }

    #[test]
    fn headers_round_trip_and_refuse_garbage() {
        let p = PaymentRequired {
            x402_version: X402_VERSION,
            error: Some("Payment required".into()),
            resource: None,
            accepts: vec![requirements()],
            extensions: None,
        };
        let h = encode_header(&p);
        assert_eq!(decode_header::<PaymentRequired>(h.as_bytes()).unwrap(), p);
        assert!(matches!(
            decode_header::<PaymentRequired>(b"%%%"),
            Err(HeaderError::Base64(_))
        ));
        let not_json = STANDARD.encode(b"{not json");
        assert!(matches!(
            decode_header::<PaymentRequired>(not_json.as_bytes()),
            Err(HeaderError::Json(_))
        ));
    }

    #[test]
    fn accepted_must_match_every_field_and_keep_our_extra() {
        let ours = requirements();
        assert!(ours.is_accepted_by(&ours.clone()));
        let mut other = ours.clone();
        other.pay_to = "8".into();
        assert!(!ours.is_accepted_by(&other));
        let mut other = ours.clone();
        other.amount = "999".into();
        assert!(!ours.is_accepted_by(&other));
        let mut with_extra = ours.clone();
        with_extra.extra.insert("k".into(), Value::from(1));
        assert!(
            ours.is_accepted_by(&with_extra),
            "a superset of our extra is fine"
        );
        assert!(!with_extra.is_accepted_by(&ours), "our extra must be kept");
    }
}
