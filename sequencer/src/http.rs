//! HTTP (axum): health, readiness, Prometheus metrics and JSON queries.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use state::account::AccountIndex;

use crate::limits::{limited_incoming, ConnLimits};
use crate::supervisor::Readiness;
use crate::writer::{ReadError, WriterHandle};
use rollup_storage::log::TxRow;
use rollup_storage::Store;

#[derive(Clone)]
pub struct HttpState {
    pub writer: WriterHandle,
    pub store: Store,
    /// The open blocks' transactions by account, for account histories (unsealed.rs).
    pub unsealed: Arc<crate::unsealed::UnsealedActivity>,
    /// The bridge event feed, one reader shared by every SSE subscriber.
    pub feed: rollup_bridge::feed::FeedHub,
    pub prometheus: PrometheusHandle,
    pub readiness: Arc<Readiness>,
    /// `--registration-work-bits`, reported by `/v1/status`.
    pub registration_work_bits: u32,
    /// The x402 facilitator, served under `/x402` unless `--x402 false`.
    pub x402: Option<crate::x402::Facilitator>,
    /// `--explorer-l1-tx-url`: the explorer's link template for L1 transactions.
    pub explorer_l1_tx_url: Option<String>,
    /// Lanes are accepted (`ServiceConfig::lanes`): accounts report their lane nonces.
    pub lanes: bool,
}

/// The routes; every request but the SSE event stream is answered within `request_timeout`
/// (408 beyond it).
pub fn router(state: HttpState, request_timeout: Duration) -> Router {
    let mut bounded = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/status", get(status))
        .route("/v1/accounts/{index}", get(account))
        .route("/v1/txs/{id}", get(tx))
        .route("/v1/blocks/{number}", get(block))
        .route(
            "/v1/withdrawals/{batch}/{index}/proof",
            get(crate::bridge_api::payout_proof),
        )
        .merge(crate::explorer::routes());
    if let Some(f) = state.x402.clone() {
        bounded = bounded.nest("/x402", crate::x402::routes(f));
    }
    let bounded = bounded.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        request_timeout,
    ));
    Router::new()
        .route("/v1/bridge/events", get(crate::bridge_api::sse))
        .merge(bounded)
        .with_state(state)
}

/// Connection limits of the HTTP server.
#[derive(Clone)]
pub struct HttpLimits {
    pub conns: ConnLimits,
    /// Time to receive a request's headers (HTTP/1); slower clients are disconnected.
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets open
/// requests finish (at most 5 s; SSE streams end with the shutdown signal they watch).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let incoming = limited_incoming(listener, limits.conns);
    tokio::pin!(incoming);
    tokio::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            c = incoming.next() => match c {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    continue;
                }
                None => break,
            },
            _ = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(conn), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that disconnects or times out is its own business, not an error.
            let _ = conn.await;
        });
    }
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after 5 s of shutdown; closing them");
    }
    Ok(())
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
    let batches = s.store.batches().progress().await.ok().map(|p| {
        json!({"sealed": p.sealed, "proven": p.proven, "committed": p.committed, "finalized": p.finalized})
    });
    Json(json!({
        "head_block": h.block,
        "head_state_root": h.root,
        "accepted_txs": h.accepted,
        "num_accounts": h.num_accounts,
        "next_deposit_seq": h.next_deposit_seq,
        "last_batch": h.batch,
        "batches": batches,
        "registration_work_bits": s.registration_work_bits,
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
        .durable_account_view(AccountIndex(index), Duration::from_millis(200))
        .await
    {
        Ok(Some(view)) => {
            let a = &view.account;
            let now = crate::writer::now_timestamp();
            let mut body = json!({
                "index": index,
                "public_key": a.pubkey,
                "balance": a.balance.get(),
                "nonce": a.nonce.get(),
                "agents": view.agents.iter().map(|i| i.0).collect::<Vec<_>>(),
                "passport": view.passport.as_ref().map(|p| crate::explorer::api::passport_json(p, now)),
                "shares": view.shares.as_ref().map_or_else(Vec::new, |sh| {
                    sh.parts().iter().map(|(to, bps)| json!({"to": to.0, "bps": bps})).collect()
                }),
            });
            if s.lanes {
                body["lane_nonces"] = state::lanes::Lane::all()
                    .skip(1)
                    .map(|l| view.lanes.next(l, a.nonce).get())
                    .collect::<Vec<_>>()
                    .into();
            }
            Json(body).into_response()
        }
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
    let body = crate::explorer::api::tx_body(&row.raw);
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
    match s.store.log().get_tx(&id).await {
        Ok(Some(row)) => Json(tx_json(&row)).into_response(),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            "UNKNOWN_TRANSACTION",
            "no accepted transaction has this id",
        ),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
    }
}

/// `?offset=&limit=` of a list endpoint.
#[derive(serde::Deserialize)]
pub struct Page {
    offset: Option<u32>,
    limit: Option<u32>,
}

/// Most items one page of a list holds (and the default page size).
pub const MAX_PAGE: u32 = 1000;

/// A block and one page of its transaction ids (`?offset=0&limit=1000` by default; at most
/// [`MAX_PAGE`] per page). `next_offset` is the next page's offset, `null` after the last.
async fn block(
    AxState(s): AxState<HttpState>,
    Path(number): Path<String>,
    Query(page): Query<Page>,
) -> Response {
    let Ok(number) = number.parse::<u64>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "MALFORMED",
            "block number must be a u64",
        );
    };
    let offset = page.offset.unwrap_or(0);
    let limit = page.limit.unwrap_or(MAX_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return problem(
            StatusCode::BAD_REQUEST,
            "VALUE_OUT_OF_RANGE",
            format!("limit must be in 1..={MAX_PAGE}"),
        );
    }
    let block = match s.store.log().get_block(number).await {
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
    let ids = match s.store.log().block_tx_ids(&block, offset, limit).await {
        Ok(t) => t,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
    };
    let end = u64::from(offset) + ids.len() as u64;
    let next_offset = (end < u64::from(block.tx_count)).then_some(end);
    Json(json!({
        "number": block.number,
        "state_root": block.state_root,
        "first_seq": block.first_seq,
        "tx_count": block.tx_count,
        "block_time": block.block_time,
        "offset": offset,
        "limit": limit,
        "next_offset": next_offset,
        "tx_ids": ids.iter().map(|t| format!("0x{}", hex::encode(t))).collect::<Vec<_>>(),
    }))
    .into_response()
}
