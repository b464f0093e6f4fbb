//! The `exact` scheme on this rollup (docs/SPEC.md, "x402"): the payment is one signed
//! transfer of exactly the required amount to the required account.
//!
//! - **Network**: `arollup:<chain id>-<first 8 bytes of the Rollup contract address, hex>`
//!   (CAIP-2: a namespace of 3-8 characters, a reference of at most 32 for chain ids of up to
//!   15 digits). It names both the L1 chain and the rollup on it, like the signing domain.
//! - **Asset**: the settlement token's id as the facilitator announces it in `/supported`
//!   (`extra.asset`); a rollup has exactly one.
//! - **payTo**: the payee's account index, decimal. **amount**: atomic units, decimal.
//! - **payload**: `{"transaction": "0x…"}`, the transfer's canonical encoding (SPEC §9).
//!
//! [`check_payment`] is everything a facilitator can decide without the state (versions,
//! scheme, network, asset, the client's `accepted` against the server's requirements, payee,
//! amount, decoding); the signature, the payer's balance, nonce and the expiry are the rollup's
//! own rules, judged by the node against its current state.

use serde::{Deserialize, Serialize};
use state::account::AccountIndex;
use state::apply::Rejection;
use state::tx::{Domain, Transaction, Transfer};

use crate::wire::{PaymentPayload, PaymentRequirements, X402_VERSION};

/// The scheme's name.
pub const SCHEME: &str = "exact";
/// The CAIP-2 namespace of this rollup's networks.
pub const NAMESPACE: &str = "arollup";

/// The CAIP-2 network id of the rollup with signing domain `domain`.
pub fn network_id(domain: &Domain) -> String {
    format!(
        "{NAMESPACE}:{}-{}",
        domain.chain_id,
        hex::encode(&domain.rollup[..8])
    )
}

/// The `payload` of an `exact` payment on this rollup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactPayload {
    /// `0x` and the hex of the signed transfer's canonical encoding.
    pub transaction: String,
}

impl ExactPayload {
    pub fn new(transfer: &Transfer) -> ExactPayload {
        ExactPayload {
            transaction: format!(
                "0x{}",
                hex::encode(Transaction::Transfer(*transfer).encode())
            ),
        }
    }
}

/// The standard reasons (x402 v2 §9) this facilitator answers with, and this scheme's own
/// (`invalid_exact_rollup_*`, named after the specification's `invalid_exact_evm_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    InsufficientFunds,
    InvalidNetwork,
    InvalidPayload,
    InvalidPaymentRequirements,
    InvalidScheme,
    UnsupportedScheme,
    InvalidX402Version,
    InvalidTransactionState,
    UnexpectedVerifyError,
    UnexpectedSettleError,
    Signature,
    RecipientMismatch,
    AmountMismatch,
    Expired,
    Nonce,
    UnknownPayer,
    AlreadySettled,
}

impl Reason {
    /// The reason string on the wire (stable).
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::InsufficientFunds => "insufficient_funds",
            Reason::InvalidNetwork => "invalid_network",
            Reason::InvalidPayload => "invalid_payload",
            Reason::InvalidPaymentRequirements => "invalid_payment_requirements",
            Reason::InvalidScheme => "invalid_scheme",
            Reason::UnsupportedScheme => "unsupported_scheme",
            Reason::InvalidX402Version => "invalid_x402_version",
            Reason::InvalidTransactionState => "invalid_transaction_state",
            Reason::UnexpectedVerifyError => "unexpected_verify_error",
            Reason::UnexpectedSettleError => "unexpected_settle_error",
            Reason::Signature => "invalid_exact_rollup_payload_signature",
            Reason::RecipientMismatch => "invalid_exact_rollup_payload_recipient_mismatch",
            Reason::AmountMismatch => "invalid_exact_rollup_payload_amount_mismatch",
            Reason::Expired => "invalid_exact_rollup_payload_expired",
            Reason::Nonce => "invalid_exact_rollup_payload_nonce",
            Reason::UnknownPayer => "invalid_exact_rollup_payload_unknown_payer",
            Reason::AlreadySettled => "invalid_exact_rollup_payload_already_settled",
        }
    }

    /// The x402 reason for a rollup rejection of the payment's transfer.
    pub fn of_rejection(r: &Rejection) -> Reason {
        Reason::of_rollup_code(r.code())
    }

    /// The x402 reason for a rollup reason code (a receipt's `reason_code`).
    pub fn of_rollup_code(code: &str) -> Reason {
        match code {
            "INSUFFICIENT_BALANCE" => Reason::InsufficientFunds,
            "BAD_SIGNATURE" => Reason::Signature,
            "BAD_NONCE" | "NONCE_EXHAUSTED" => Reason::Nonce,
            "EXPIRED" => Reason::Expired,
            "UNKNOWN_ACCOUNT" => Reason::UnknownPayer,
            "WRONG_DOMAIN" => Reason::InvalidNetwork,
            "MALFORMED" => Reason::InvalidPayload,
            _ => Reason::InvalidTransactionState,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a payment is not acceptable: the x402 reason and a human-readable detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Invalid {
    pub reason: Reason,
    pub message: String,
}

impl Invalid {
    pub fn new(reason: Reason, message: impl Into<String>) -> Invalid {
        Invalid {
            reason,
            message: message.into(),
        }
    }
}

/// What a facilitator on this rollup accepts: its network and its asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub id: String,
    pub asset: String,
}

impl Network {
    pub fn new(domain: &Domain, asset: impl Into<String>) -> Network {
        Network {
            id: network_id(domain),
            asset: asset.into(),
        }
    }
}

impl PaymentRequirements {
    /// `exact` terms on `network`: `amount` base units of `asset` to account `pay_to`.
    pub fn exact(
        network: impl Into<String>,
        asset: impl Into<String>,
        pay_to: AccountIndex,
        amount: u64,
        max_timeout_seconds: u64,
    ) -> PaymentRequirements {
        PaymentRequirements {
            scheme: SCHEME.into(),
            network: network.into(),
            amount: amount.to_string(),
            asset: asset.into(),
            pay_to: pay_to.0.to_string(),
            max_timeout_seconds,
            extra: serde_json::Map::new(),
        }
    }
}

/// Requirements as this scheme reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    pub pay_to: AccountIndex,
    pub amount: u64,
}

/// Reads the payee and amount of `requirements` written for `network`.
pub fn terms(requirements: &PaymentRequirements, network: &Network) -> Result<Terms, Invalid> {
    if requirements.scheme != SCHEME {
        return Err(Invalid::new(
            Reason::UnsupportedScheme,
            format!(
                "this facilitator settles only `{SCHEME}`, not `{}`",
                requirements.scheme
            ),
        ));
    }
    if requirements.network != network.id {
        return Err(Invalid::new(
            Reason::InvalidNetwork,
            format!(
                "this facilitator settles on `{}`, not `{}`",
                network.id, requirements.network
            ),
        ));
    }
    if !requirements.asset.eq_ignore_ascii_case(&network.asset) {
        return Err(Invalid::new(
            Reason::InvalidPaymentRequirements,
            format!(
                "the asset on `{}` is `{}`, not `{}`",
                network.id, network.asset, requirements.asset
            ),
        ));
    }
    let pay_to = requirements.pay_to.parse::<u32>().map_err(|_| {
        Invalid::new(
            Reason::InvalidPaymentRequirements,
            format!("payTo `{}` is not an account index", requirements.pay_to),
        )
    })?;
    let amount = requirements
        .amount
        .parse::<u64>()
        .ok()
        .filter(|a| *a > 0 && *a < 1 << 63)
        .ok_or_else(|| {
            Invalid::new(
                Reason::InvalidPaymentRequirements,
                format!(
                    "amount `{}` is not a positive amount below 2^63",
                    requirements.amount
                ),
            )
        })?;
    Ok(Terms {
        pay_to: AccountIndex(pay_to),
        amount,
    })
}

/// Checks `payload` against the server's `requirements` on `network`, and returns the
/// transfer that pays them. Nothing here depends on the rollup's state.
pub fn check_payment(
    payload: &PaymentPayload,
    requirements: &PaymentRequirements,
    network: &Network,
) -> Result<Transfer, Invalid> {
    if payload.x402_version != X402_VERSION {
        return Err(Invalid::new(
            Reason::InvalidX402Version,
            format!(
                "version {} (this facilitator speaks {X402_VERSION})",
                payload.x402_version
            ),
        ));
    }
    let terms = terms(requirements, network)?;
    let accepted = &payload.accepted;
    if accepted.scheme != requirements.scheme {
        return Err(Invalid::new(
            Reason::InvalidScheme,
            format!("the payment is for scheme `{}`", accepted.scheme),
        ));
    }
    if accepted.network != requirements.network {
        return Err(Invalid::new(
            Reason::InvalidNetwork,
            format!("the payment is for network `{}`", accepted.network),
        ));
    }
    if !requirements.is_accepted_by(accepted) {
        return Err(Invalid::new(
            Reason::InvalidPaymentRequirements,
            "the payment accepted other requirements (payee, amount, asset or timeout)",
        ));
    }
    let exact: ExactPayload = serde_json::from_value(payload.payload.clone()).map_err(|e| {
        Invalid::new(
            Reason::InvalidPayload,
            format!("payload: {e} (expected {{\"transaction\": \"0x…\"}})"),
        )
    })?;
    let hex_tx = exact
        .transaction
        .strip_prefix("0x")
        .unwrap_or(&exact.transaction);
    let bytes = hex::decode(hex_tx)
        .map_err(|e| Invalid::new(Reason::InvalidPayload, format!("transaction: {e}")))?;
    let tx = Transaction::decode(&bytes)
        .map_err(|e| Invalid::new(Reason::InvalidPayload, format!("transaction: {e}")))?;
    let Transaction::Transfer(transfer) = tx else {
        return Err(Invalid::new(
            Reason::InvalidPayload,
            "the transaction is not a transfer",
        ));
    };
    if transfer.to != terms.pay_to {
        return Err(Invalid::new(
            Reason::RecipientMismatch,
            format!(
                "the transfer pays account {}, not {}",
                transfer.to, terms.pay_to
            ),
        ));
    }
    if transfer.amount.get() != terms.amount {
        return Err(Invalid::new(
            Reason::AmountMismatch,
            format!(
                "the transfer pays {}, not {}",
                transfer.amount.get(),
                terms.amount
            ),
        ));
    }
    Ok(transfer)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use state::account::{Amount, Nonce, Timestamp};
    use state::crypto::schnorr::SecretKey;
    use state::tx::UnsignedTransfer;

    use super::*;

    const DOMAIN: Domain = Domain {
        chain_id: 31337,
        rollup: [
            0x5f, 0xbd, 0xb2, 0x31, 0x56, 0x78, 0xaf, 0xec, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ],
    };

    fn network() -> Network {
        Network::new(&DOMAIN, "native")
    }

    fn requirements() -> PaymentRequirements {
        PaymentRequirements::exact(network().id, "native", AccountIndex(7), 1000, 60)
    }

    fn transfer(to: u32, amount: u64) -> Transfer {
        let key = SecretKey::random(&mut StdRng::seed_from_u64(3));
        UnsignedTransfer {
            from: AccountIndex(3),
            to: AccountIndex(to),
            amount: Amount::new(amount).unwrap(),
            fee: Amount::ZERO,
            nonce: Nonce::new(0).unwrap(),
            valid_until: Timestamp::new(2_000_000_000).unwrap(),
        }
        .sign(&DOMAIN, &key)
    }

    fn payment(t: &Transfer) -> PaymentPayload {
        PaymentPayload {
            x402_version: 2,
            resource: None,
            accepted: requirements(),
            payload: serde_json::to_value(ExactPayload::new(t)).unwrap(),
            extensions: None,
        }
    }

    fn reason(p: &PaymentPayload, r: &PaymentRequirements) -> Reason {
        check_payment(p, r, &network()).unwrap_err().reason
    }

    #[test]
    fn network_id_names_the_chain_and_the_rollup() {
        assert_eq!(network_id(&DOMAIN), "arollup:31337-5fbdb2315678afec");
        let other = Domain {
            chain_id: 1,
            ..DOMAIN
        };
        assert_ne!(network_id(&other), network_id(&DOMAIN));
    }

    #[test]
    fn the_exact_transfer_passes() {
        let t = transfer(7, 1000);
        assert_eq!(
            check_payment(&payment(&t), &requirements(), &network()),
            Ok(t)
        );
    }

    /// Each way a payment can be for something else is refused with its reason.
    #[test]
    fn a_payment_for_something_else_is_refused() {
        let r = requirements();
        assert_eq!(
            reason(&payment(&transfer(8, 1000)), &r),
            Reason::RecipientMismatch
        );
        assert_eq!(
            reason(&payment(&transfer(7, 999)), &r),
            Reason::AmountMismatch
        );
        assert_eq!(
            reason(&payment(&transfer(7, 1001)), &r),
            Reason::AmountMismatch
        );

        let good = payment(&transfer(7, 1000));
        let mut p = good.clone();
        p.x402_version = 1;
        assert_eq!(reason(&p, &r), Reason::InvalidX402Version);
        let mut p = good.clone();
        p.accepted.network = "eip155:8453".into();
        assert_eq!(reason(&p, &r), Reason::InvalidNetwork);
        let mut p = good.clone();
        p.accepted.scheme = "upto".into();
        assert_eq!(reason(&p, &r), Reason::InvalidScheme);
        let mut p = good.clone();
        p.accepted.pay_to = "8".into();
        assert_eq!(reason(&p, &r), Reason::InvalidPaymentRequirements);
        let mut p = good.clone();
        p.accepted.asset = "0xdead".into();
        assert_eq!(reason(&p, &r), Reason::InvalidPaymentRequirements);

        // The server's own requirements on another network, scheme or asset.
        let mut other = r.clone();
        other.network = "arollup:1-5fbdb2315678afec".into();
        assert_eq!(reason(&good, &other), Reason::InvalidNetwork);
        let mut other = r.clone();
        other.scheme = "upto".into();
        assert_eq!(reason(&good, &other), Reason::UnsupportedScheme);
        let mut other = r.clone();
        other.asset = "usdc".into();
        assert_eq!(reason(&good, &other), Reason::InvalidPaymentRequirements);
        let mut other = r.clone();
        other.amount = "0".into();
        assert_eq!(reason(&good, &other), Reason::InvalidPaymentRequirements);
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let r = requirements();
        let mut p = payment(&transfer(7, 1000));
        p.payload = serde_json::json!({"transaction": "0x00"});
        assert_eq!(reason(&p, &r), Reason::InvalidPayload);
        p.payload = serde_json::json!({"transaction": "0xzz"});
        assert_eq!(reason(&p, &r), Reason::InvalidPayload);
        p.payload = serde_json::json!({"signature": "0x00"});
        assert_eq!(reason(&p, &r), Reason::InvalidPayload);
        // A flipped byte in the payee: the decoded transfer pays someone else.
        let t = transfer(7, 1000);
        let mut bytes = Transaction::Transfer(t).encode();
        let to_offset = 1 + 4;
        bytes[to_offset] ^= 1;
        p.payload = serde_json::json!({"transaction": format!("0x{}", hex::encode(&bytes))});
        assert_eq!(reason(&p, &r), Reason::RecipientMismatch);
    }

    #[test]
    fn rollup_codes_map_to_x402_reasons() {
        assert_eq!(
            Reason::of_rollup_code("INSUFFICIENT_BALANCE").as_str(),
            "insufficient_funds"
        );
        assert_eq!(Reason::of_rollup_code("BAD_NONCE"), Reason::Nonce);
        assert_eq!(
            Reason::of_rollup_code("SOMETHING_NEW"),
            Reason::InvalidTransactionState
        );
    }
}
