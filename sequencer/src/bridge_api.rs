//! The bridge's public API on the node: the `BridgeEvents.Watch` gRPC stream, the same feed as
//! Server-Sent Events (`GET /v1/bridge/events?cursor=N`), and payout proofs for claims
//! (`GET /v1/withdrawals/{batch}/{index}/proof`). SPEC 16.4-16.5.

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{Stream, StreamExt};
use rollup_bridge::feed;
use rollup_bridge::hashes::{payout_leaf, Payout, PayoutTree};
use rollup_bridge::{Address, B256};
use rollup_proto::v1 as pb;
use serde_json::json;
use tokio::sync::watch;
use tonic::{Request, Response as GrpcResponse, Status};

use crate::http::{problem, HttpState};

/// How often a feed reader polls when no NOTIFY arrives.
pub const FEED_POLL: Duration = Duration::from_secs(1);

fn to_pb(e: feed::Event) -> pb::BridgeEvent {
    pb::BridgeEvent {
        cursor: e.id as u64,
        kind: e.kind.to_string(),
        finality: e.finality.to_string(),
        payload_json: e.payload.to_string(),
        l1_tx_hash: e
            .l1_tx_hash
            .and_then(|h| hex::decode(h.trim_start_matches("0x")).ok())
            .unwrap_or_default(),
        l1_block: e.l1_block.unwrap_or(0) as u64,
        created_at_ms: e.created_at_ms,
    }
}

#[derive(Clone)]
pub struct BridgeEventsService {
    pub feed: feed::FeedHub,
    pub shutdown: watch::Receiver<bool>,
    /// The node's per-peer count of calls in flight (`--max-rpcs-per-peer`), shared with the
    /// Rollup service: a watcher of the feed is a stream like any other.
    pub rpcs: std::sync::Arc<crate::limits::PeerCounter>,
    pub max_rpcs_per_peer: usize,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::BridgeEvent, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::bridge_events_server::BridgeEvents for BridgeEventsService {
    type WatchStream = EventStream;

    async fn watch(
        &self,
        request: Request<pb::WatchBridgeEventsRequest>,
    ) -> Result<GrpcResponse<Self::WatchStream>, Status> {
        let rpc = match request.remote_addr() {
            Some(p) => Some(
                self.rpcs
                    .acquire(p.ip(), self.max_rpcs_per_peer)
                    .ok_or_else(|| {
                        crate::service::limited_status(crate::limits::Limit::PeerRpcs)
                    })?,
            ),
            None => None,
        };
        let cursor = i64::try_from(request.into_inner().cursor)
            .map_err(|_| Status::invalid_argument("cursor out of range"))?;
        let mut sd = self.shutdown.clone();
        let stream = self
            .feed
            .follow(cursor)
            // The guard lives as long as the stream: the peer's count drops when it ends.
            .map(move |r| {
                let _held = &rpc;
                r.map(to_pb).map_err(|e| Status::internal(e.to_string()))
            })
            .take_until(async move {
                let _ = sd.wait_for(|s| *s).await;
            });
        Ok(GrpcResponse::new(Box::pin(stream)))
    }
}

#[derive(serde::Deserialize)]
pub struct CursorQuery {
    cursor: Option<i64>,
}

/// `GET /v1/bridge/events?cursor=N`: the feed as Server-Sent Events. `Last-Event-ID` (sent by
/// a reconnecting EventSource) wins over `cursor`.
pub async fn sse(
    AxState(s): AxState<HttpState>,
    headers: HeaderMap,
    Query(q): Query<CursorQuery>,
) -> Response {
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let cursor = last_id.or(q.cursor).unwrap_or(0);
    if cursor < 0 {
        return problem(StatusCode::BAD_REQUEST, "MALFORMED", "cursor must be >= 0");
    }
    let stream = s.feed.follow(cursor).map(|r| {
        Ok::<_, Infallible>(match r {
            Ok(e) => SseEvent::default()
                .id(e.id.to_string())
                .event(e.kind.as_str())
                .data(serde_json::to_string(&e).unwrap_or_default()),
            Err(err) => SseEvent::default().event("error").data(err.to_string()),
        })
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `GET /v1/withdrawals/{batch}/{index}/proof`: what `rollup claim` passes to
/// `Rollup.claimWithdrawal` (SPEC 15.5).
pub async fn payout_proof(
    AxState(s): AxState<HttpState>,
    Path((batch, index)): Path<(u64, u64)>,
) -> Response {
    let (l1_batch, status) = match s.store.l1().l1_batch_with_status(batch).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                "UNKNOWN_BATCH",
                format!("batch {batch} is not committed on L1"),
            )
        }
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
    };
    let list: Vec<Payout> = l1_batch
        .payouts
        .iter()
        .map(|p| Payout {
            from: p.from,
            to: Address::from(p.to.0),
            amount: p.amount,
        })
        .collect();
    let Some(p) = list.get(index as usize).copied() else {
        return problem(
            StatusCode::NOT_FOUND,
            "UNKNOWN_PAYOUT",
            format!("batch {batch} has {} payouts", list.len()),
        );
    };
    let tree = PayoutTree::new(batch, &list);
    let root = B256::from(l1_batch.withdrawals_root);
    Json(json!({
        "batch": batch,
        "index": index,
        "from": p.from,
        "to": p.to,
        "amount": p.amount,
        "leaf": payout_leaf(batch, index, &p),
        "proof": tree.proof(index as usize),
        "withdrawals_root": root,
        "claimable": l1_batch.finalize_block.is_some(),
        "batch_status": status,
    }))
    .into_response()
}
