//! x402 v2 on the rollup: HTTP 402 payments settled as rollup transfers.
//!
//! - [`wire`]: the protocol's messages (PaymentRequired, PaymentPayload, the facilitator's
//!   verify/settle/supported documents) and the base64 header codec.
//! - [`exact`]: the `exact` scheme on this rollup's network: the payload is one signed
//!   transfer; [`exact::check_payment`] checks it against a server's requirements without the
//!   state (the node's facilitator adds the signature, balance, nonce and expiry).
//! - `paywall` (feature `paywall`): an axum middleware that makes a route paid through any
//!   facilitator that settles this scheme.
//!
//! This crate holds no database driver and no node: the SDK's paying client and the node's
//! facilitator both build on it.

pub mod exact;
#[cfg(feature = "paywall")]
pub mod paywall;
pub mod wire;

pub use exact::{check_payment, network_id, ExactPayload, Invalid, Network, Reason, SCHEME};
pub use wire::{
    decode_header, encode_header, FacilitatorRequest, PaymentPayload, PaymentRequired,
    PaymentRequirements, ResourceInfo, SettleResponse, SupportedKind, SupportedResponse,
    VerifyResponse, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X402_VERSION,
};
