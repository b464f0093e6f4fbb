//! The node's x402 v2 facilitator (docs/API.md, "x402 facilitator"): `GET /x402/supported`,
//! `POST /x402/verify`, `POST /x402/settle`, for the `exact` scheme on this rollup's network.
//!
//! `/verify` applies nothing: the payment's terms are checked by `rollup_x402::check_payment`,
//! its signature on the verifier pool, and the rollup's rules against the writer's current
//! state (balance, nonce, expiry), exactly as a submission would be judged now. `/settle`
//! submits the transfer through the same path as the gRPC `Submit` and answers once it is
//! durable. A payment settles at most once: its transfer's nonce is spent, and a second
//! `/settle` of the same payload answers `invalid_exact_rollup_payload_already_settled` with
//! the first settlement's transaction id in the message.
//!
//! Verdicts on a payment are `200` with `isValid`/`success` false and the x402 reason (what the
//! reference middleware expects); a body that is not a facilitator request is `400`; a limit
//! is `429`; a node that cannot decide now (database outage, stopping) is `503`. Each answer
//! is an x402 document.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rollup_proto::v1 as pb;
use rollup_x402::exact::{check_payment, Invalid, Network, Reason, SCHEME};
use rollup_x402::wire::{
    FacilitatorRequest, SettleResponse, SupportedKind, SupportedResponse, VerifyResponse,
    X402_VERSION,
};
use state::tx::{Transaction, Transfer};

use crate::service::{Checked, RollupService};

/// What the facilitator routes need.
#[derive(Clone)]
pub struct Facilitator {
    pub service: RollupService,
    pub network: Network,
}

/// The facilitator's routes, to nest under `/x402`.
pub fn routes<S>(facilitator: Facilitator) -> Router<S> {
    Router::new()
        .route("/supported", get(supported))
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .with_state(facilitator)
}

fn count(endpoint: &'static str, outcome: &'static str) {
    metrics::counter!("rollup_x402_requests_total", "endpoint" => endpoint, "outcome" => outcome)
        .increment(1);
}

async fn supported(State(f): State<Facilitator>) -> Response {
    count("supported", "ok");
    Json(SupportedResponse {
        kinds: vec![SupportedKind {
            x402_version: X402_VERSION,
            scheme: SCHEME.into(),
            network: f.network.id.clone(),
            extra: Some(serde_json::json!({ "asset": f.network.asset })),
        }],
        extensions: Vec::new(),
        signers: serde_json::Map::new(),
    })
    .into_response()
}

/// The request body, or the answer for one that is not a facilitator request.
fn parse(body: &[u8]) -> Result<FacilitatorRequest, Invalid> {
    let request: FacilitatorRequest = serde_json::from_slice(body).map_err(|e| {
        Invalid::new(
            Reason::InvalidPayload,
            format!("not a facilitator request ({{paymentPayload, paymentRequirements}}): {e}"),
        )
    })?;
    if let Some(v) = request.x402_version.filter(|v| *v != X402_VERSION) {
        return Err(Invalid::new(
            Reason::InvalidX402Version,
            format!("version {v} (this facilitator speaks {X402_VERSION})"),
        ));
    }
    Ok(request)
}

/// Why a request carries no acceptable payment: the HTTP status, the x402 verdict and the
/// metrics outcome.
struct Refusal {
    status: StatusCode,
    why: Invalid,
    outcome: &'static str,
}

/// The transfer paying the request's requirements: parsing and [`check_payment`], shared by
/// `/verify` and `/settle` (the state's rules come after, each its own way).
fn read_payment(f: &Facilitator, body: &[u8]) -> Result<Transfer, Refusal> {
    let request = parse(body).map_err(|why| Refusal {
        status: StatusCode::BAD_REQUEST,
        why,
        outcome: "malformed",
    })?;
    check_payment(
        &request.payment_payload,
        &request.payment_requirements,
        &f.network,
    )
    .map_err(|why| Refusal {
        status: StatusCode::OK,
        why,
        outcome: "invalid",
    })
}

fn payer(t: &Transfer) -> Option<String> {
    Some(t.from.0.to_string())
}

fn invalid(status: StatusCode, why: Invalid, payer: Option<String>) -> Response {
    let body = VerifyResponse {
        is_valid: false,
        invalid_reason: Some(why.reason.as_str().into()),
        invalid_message: Some(why.message),
        payer,
    };
    (status, Json(body)).into_response()
}

async fn verify(State(f): State<Facilitator>, body: Bytes) -> Response {
    let transfer = match read_payment(&f, &body) {
        Ok(t) => t,
        Err(r) => {
            count("verify", r.outcome);
            return invalid(r.status, r.why, None);
        }
    };
    match f.service.check(Transaction::Transfer(transfer), None).await {
        Checked::WouldAccept => {
            count("verify", "valid");
            Json(VerifyResponse {
                is_valid: true,
                invalid_reason: None,
                invalid_message: None,
                payer: payer(&transfer),
            })
            .into_response()
        }
        Checked::Rejected(r) => {
            count("verify", "invalid");
            let why = Invalid::new(Reason::of_rejection(&r), format!("{}: {r}", r.code()));
            invalid(StatusCode::OK, why, payer(&transfer))
        }
        Checked::Limited(limit) => {
            count("verify", "limited");
            let why = Invalid::new(
                Reason::UnexpectedVerifyError,
                format!("RESOURCE_EXHAUSTED: {}", limit.message()),
            );
            invalid(StatusCode::TOO_MANY_REQUESTS, why, payer(&transfer))
        }
        Checked::Unavailable(detail) => {
            count("verify", "unavailable");
            let why = Invalid::new(Reason::UnexpectedVerifyError, detail);
            invalid(StatusCode::SERVICE_UNAVAILABLE, why, payer(&transfer))
        }
    }
}

fn settle_failed(
    status: StatusCode,
    f: &Facilitator,
    why: Invalid,
    payer: Option<String>,
    transaction: String,
) -> Response {
    let body = SettleResponse {
        success: false,
        error_reason: Some(why.reason.as_str().into()),
        error_message: Some(why.message),
        payer,
        transaction,
        network: f.network.id.clone(),
        amount: None,
        extra: None,
    };
    (status, Json(body)).into_response()
}

fn hex_id(id: &[u8]) -> String {
    format!("0x{}", hex::encode(id))
}

async fn settle(State(f): State<Facilitator>, body: Bytes) -> Response {
    let started = Instant::now();
    let transfer = match read_payment(&f, &body) {
        Ok(t) => t,
        Err(r) => {
            count("settle", r.outcome);
            return settle_failed(r.status, &f, r.why, None, String::new());
        }
    };
    let submit = pb::SubmitRequest {
        tx: Some(pb::submit_request::Tx::Raw(
            Transaction::Transfer(transfer).encode(),
        )),
        work_nonce: 0,
    };
    let (receipt, limit) = f.service.submit_request(submit, None).await;
    let id = hex_id(&receipt.tx_id);
    if let Some(limit) = limit {
        count("settle", "limited");
        let why = Invalid::new(
            Reason::UnexpectedSettleError,
            format!("RESOURCE_EXHAUSTED: {}", limit.message()),
        );
        return settle_failed(StatusCode::TOO_MANY_REQUESTS, &f, why, payer(&transfer), id);
    }
    if receipt.status != pb::TxStatus::Accepted as i32 {
        let (status, reason) = match receipt.reason_code.as_str() {
            "UNAVAILABLE" | "INTERNAL" => (
                StatusCode::SERVICE_UNAVAILABLE,
                Reason::UnexpectedSettleError,
            ),
            "RESOURCE_EXHAUSTED" => (StatusCode::TOO_MANY_REQUESTS, Reason::UnexpectedSettleError),
            code => (StatusCode::OK, Reason::of_rollup_code(code)),
        };
        count("settle", "refused");
        let why = Invalid::new(
            reason,
            format!("{}: {}", receipt.reason_code, receipt.message),
        );
        return settle_failed(status, &f, why, payer(&transfer), String::new());
    }
    if receipt.duplicate {
        // The same signed payment again: it was paid once and is never paid twice, and a
        // resource server must not serve it twice either.
        count("settle", "already_settled");
        let why = Invalid::new(
            Reason::AlreadySettled,
            format!(
                "this payment was settled before as {id} (block {}, seq {})",
                receipt.block_number, receipt.seq
            ),
        );
        return settle_failed(StatusCode::OK, &f, why, payer(&transfer), id);
    }
    count("settle", "settled");
    metrics::histogram!("rollup_x402_settle_seconds").record(started.elapsed().as_secs_f64());
    let finality = pb::Finality::try_from(receipt.finality)
        .map(|f| {
            f.as_str_name()
                .trim_start_matches("FINALITY_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    Json(SettleResponse {
        success: true,
        error_reason: None,
        error_message: None,
        payer: payer(&transfer),
        transaction: id,
        network: f.network.id.clone(),
        amount: Some(transfer.amount.get().to_string()),
        extra: Some(serde_json::json!({
            "finality": finality,
            "blockNumber": receipt.block_number,
            "position": receipt.position,
            "seq": receipt.seq,
        })),
    })
    .into_response()
}
