//! HTTP (axum): health, readiness, Prometheus metrics and JSON queries.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use state::account::AccountIndex;
use state::tx::Transaction;

use crate::store::{Store, TxRow};
use crate::supervisor::Readiness;
use crate::writer::{ReadError, WriterHandle};

#[derive(Clone)]
pub struct HttpState {
    pub writer: WriterHandle,
    pub store: Store,
    /// The bridge event feed, one reader shared by every SSE subscriber.
    pub feed: rollup_bridge::feed::FeedHub,
    pub prometheus: PrometheusHandle,
    pub readiness: Arc<Readiness>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/status", get(status))
        .route("/v1/accounts/{index}", get(account))
        .route("/v1/txs/{id}", get(tx))
        .route("/v1/blocks/{number}", get(block))
        .route("/v1/bridge/events", get(crate::bridge_api::sse))
        .route(
            "/v1/withdrawals/{batch}/{index}/proof",
            get(crate::bridge_api::payout_proof),
        )
        .with_state(state)
}

/// An RFC 7807 problem body.
pub fn problem(status: StatusCode, code: &str, detail: impl Into<String>) -> Response {
    let body = json!({
        "type": format!("https://rollup.invalid/problems/{}", code.to_ascii_lowercase()),
        "title": code,
        "status": status.as_u16(),
        "detail": detail.into(),
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

async fn readyz(AxState(s): AxState<HttpState>) -> Response {
    if let Err(why) = s.readiness.check() {
        return problem(StatusCode::SERVICE_UNAVAILABLE, why.code(), why.detail());
    }
    match tokio::time::timeout(Duration::from_secs(2), s.store.ping()).await {
        Ok(Ok(())) => "ready".into_response(),
        _ => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
            "Postgres does not answer",
        ),
    }
}

async fn metrics_text(AxState(s): AxState<HttpState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.prometheus.render(),
    )
        .into_response()
}

async fn status(AxState(s): AxState<HttpState>) -> Response {
    let h = s.writer.head();
    // Finality progress comes from Postgres (the prover and the bridge write it); a database
    // hiccup degrades the status to the writer's view rather than failing it.
    let batches = s.store.batch_progress().await.ok().map(|[sealed, proven, committed, finalized]| {
        json!({"sealed": sealed, "proven": proven, "committed": committed, "finalized": finalized})
    });
    Json(json!({
        "head_block": h.block,
        "head_state_root": h.root,
        "accepted_txs": h.accepted,
        "num_accounts": h.num_accounts,
        "next_deposit_seq": h.next_deposit_seq,
        "last_batch": h.batch,
        "batches": batches,
    }))
    .into_response()
}

async fn account(AxState(s): AxState<HttpState>, Path(index): Path<String>) -> Response {
    let Ok(index) = index.parse::<u32>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "MALFORMED",
            "account index must be a u32",
        );
    };
    match s
        .writer
        .durable_account(AccountIndex(index), Duration::from_millis(200))
        .await
    {
        Ok(Some(a)) => Json(json!({
            "index": index,
            "public_key": a.pubkey,
            "balance": a.balance.get(),
            "nonce": a.nonce.get(),
        }))
        .into_response(),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            "UNKNOWN_ACCOUNT",
            format!("account {index} does not exist"),
        ),
        Err(ReadError::Enqueue(_)) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "RESOURCE_EXHAUSTED",
            "the sequencer is busy",
        ),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            e.to_string(),
        ),
    }
}

fn tx_json(row: &TxRow) -> serde_json::Value {
    let decoded = Transaction::decode(&row.raw).ok();
    let body = decoded.map(|tx| match tx {
        Transaction::Register(r) => json!({"kind": "register", "public_key": r.pubkey, "valid_until": r.valid_until.get()}),
        Transaction::Transfer(t) => json!({"kind": "transfer", "from": t.from.0, "to": t.to.0, "amount": t.amount.get(), "fee": t.fee.get(), "nonce": t.nonce.get(), "valid_until": t.valid_until.get()}),
        Transaction::Withdraw(w) => json!({"kind": "withdraw", "from": w.from.0, "to_l1": format!("{}", w.to_l1), "amount": w.amount.get(), "fee": w.fee.get(), "nonce": w.nonce.get(), "valid_until": w.valid_until.get()}),
        Transaction::Deposit(d) => json!({"kind": "deposit", "seq": d.seq, "to": d.to.0, "amount": d.amount.get()}),
        Transaction::ForcedWithdraw(f) => {
            let w = &f.withdraw;
            json!({"kind": "forced_withdraw", "seq": f.seq, "requested_at": f.requested_at.get(), "from": w.from.0, "to_l1": format!("{}", w.to_l1), "amount": w.amount.get(), "fee": w.fee.get(), "nonce": w.nonce.get(), "valid_until": w.valid_until.get()})
        }
    });
    json!({
        "tx_id": format!("0x{}", hex::encode(row.tx_id)),
        "seq": row.seq,
        "block_number": row.block_number,
        "position": row.position,
        "status": "accepted",
        "finality": row.finality().as_str(),
        "account_index": row.account_index,
        "tx": body,
        "raw": format!("0x{}", hex::encode(&row.raw)),
    })
}

async fn tx(AxState(s): AxState<HttpState>, Path(id): Path<String>) -> Response {
    let bytes = hex::decode(id.strip_prefix("0x").unwrap_or(&id)).ok();
    let Some(id) = bytes.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "MALFORMED",
            "tx id must be 32 bytes of hex",
        );
    };
    match s.store.get_tx(&id).await {
        Ok(Some(row)) => Json(tx_json(&row)).into_response(),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            "UNKNOWN_TRANSACTION",
            "no accepted transaction has this id",
        ),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
    }
}

async fn block(AxState(s): AxState<HttpState>, Path(number): Path<String>) -> Response {
    let Ok(number) = number.parse::<u64>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "MALFORMED",
            "block number must be a u64",
        );
    };
    let block = match s.store.get_block(number).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                "UNKNOWN_BLOCK",
                format!("block {number} is not sealed"),
            )
        }
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
    };
    let txs = match s.store.block_txs(number).await {
        Ok(t) => t,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
    };
    Json(json!({
        "number": block.number,
        "state_root": block.state_root,
        "first_seq": block.first_seq,
        "tx_count": block.tx_count,
        "block_time": block.block_time,
        "tx_ids": txs.iter().map(|t| format!("0x{}", hex::encode(t.tx_id))).collect::<Vec<_>>(),
    }))
    .into_response()
}
