//! The explorer's read-only JSON endpoints, under `/v1/explorer` (docs/API.md, "Explorer").
//!
//! Every list is newest first and paged with a `before` cursor (a block number, a batch number
//! or a seq: the next page is `?before=<next_before>`), at most [`MAX_LIST`] items a page, so
//! no request reads more than a bounded number of rows. Bad input gets a problem body: 400
//! `MALFORMED` for a number or id that does not parse, 400 `VALUE_OUT_OF_RANGE` for a page size
//! outside `1..=MAX_LIST`, 404 `UNKNOWN_*` for what does not exist.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use state::account::AccountIndex;
use state::tx::Transaction;

use crate::http::{problem, HttpState};
use crate::writer::ReadError;
use rollup_storage::batches::BatchSummary;
use rollup_storage::log::{BlockRow, TxRow};
use rollup_storage::{EventKind, StorageError};

/// Most items one page of an explorer list holds.
pub const MAX_LIST: u32 = 100;
/// Items a page holds when `limit` is not given.
pub const DEFAULT_LIST: u32 = 20;
/// The throughput window of `/v1/explorer/summary`, seconds.
const TPS_WINDOW_SECS: u64 = 60;
/// Blocks read to measure throughput (a block every 250 ms at most: a minute of blocks).
const TPS_BLOCKS: u32 = 240;

/// The routes, relative to the node's root.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/explorer/summary", get(summary))
        .route("/v1/explorer/blocks", get(blocks))
        .route("/v1/explorer/blocks/{number}", get(block))
        .route("/v1/explorer/batches", get(batches))
        .route("/v1/explorer/batches/{number}", get(batch))
        .route("/v1/explorer/txs/{id}", get(tx))
        .route("/v1/explorer/accounts/{index}", get(account))
        .route("/v1/explorer/accounts/{index}/txs", get(account_txs))
}

/// `?before=&limit=` (and `offset` for a block's transactions), as strings so that a bad value
/// gets a problem body rather than the extractor's plain-text rejection.
#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    before: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

/// A problem body to answer (boxed: a [`Response`] is large).
pub struct ApiError(Box<Response>);

impl ApiError {
    fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> ApiError {
        ApiError(Box::new(problem(status, code, detail)))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        *self.0
    }
}

type ApiResult = Result<Response, ApiError>;

fn internal(e: StorageError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string())
}

fn malformed(what: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "MALFORMED", what)
}

fn not_found(code: &str, detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, code, detail)
}

fn parse_u64(s: &str, what: &str) -> Result<u64, ApiError> {
    s.parse::<u64>()
        .map_err(|_| malformed(format!("{what} must be an unsigned integer, not {s:?}")))
}

/// The page size (`DEFAULT_LIST` when absent).
fn limit_of(q: &ListQuery) -> Result<u32, ApiError> {
    let Some(l) = q.limit.as_deref() else {
        return Ok(DEFAULT_LIST);
    };
    let n = parse_u64(l, "limit")?;
    if n == 0 || n > u64::from(MAX_LIST) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "VALUE_OUT_OF_RANGE",
            format!("limit must be in 1..={MAX_LIST}"),
        ));
    }
    Ok(n as u32)
}

fn before_of(q: &ListQuery) -> Result<Option<u64>, ApiError> {
    q.before
        .as_deref()
        .map(|b| parse_u64(b, "before"))
        .transpose()
}

fn hex32(b: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(b))
}

/// The decoded body of a transaction (its kind and fields), `null` if the stored bytes do not
/// decode (which recovery would have refused).
pub fn tx_body(raw: &[u8]) -> Value {
    match Transaction::decode(raw) {
        Ok(Transaction::Register(r)) => {
            json!({"kind": "register", "public_key": r.pubkey, "valid_until": r.valid_until.get()})
        }
        Ok(Transaction::Transfer(t)) => json!({
            "kind": "transfer", "from": t.from.0, "to": t.to.0, "amount": t.amount.get(),
            "fee": t.fee.get(), "nonce": t.nonce.get(), "valid_until": t.valid_until.get(),
        }),
        Ok(Transaction::Withdraw(w)) => json!({
            "kind": "withdraw", "from": w.from.0, "to_l1": format!("{}", w.to_l1),
            "amount": w.amount.get(), "fee": w.fee.get(), "nonce": w.nonce.get(),
            "valid_until": w.valid_until.get(),
        }),
        Ok(Transaction::Deposit(d)) => {
            json!({"kind": "deposit", "seq": d.seq, "to": d.to.0, "amount": d.amount.get()})
        }
        Ok(Transaction::ForcedWithdraw(f)) => {
            let w = &f.withdraw;
            json!({
                "kind": "forced_withdraw", "seq": f.seq, "requested_at": f.requested_at.get(),
                "from": w.from.0, "to_l1": format!("{}", w.to_l1), "amount": w.amount.get(),
                "fee": w.fee.get(), "nonce": w.nonce.get(), "valid_until": w.valid_until.get(),
            })
        }
        Ok(Transaction::StreamOpen(t)) => {
            let o = &t.body;
            json!({
                "kind": "stream_open", "payer": o.payer.0, "payee": o.payee.0, "slot": o.slot.0,
                "price": o.price.get(), "max_ticks": o.max_ticks.get(), "expiry": o.expiry.get(),
                "anchor": hex32(&o.anchor.to_bytes()), "fee": t.fee.get(), "nonce": t.nonce.get(),
                "valid_until": t.valid_until.get(),
            })
        }
        Ok(Transaction::StreamSettle(t)) => {
            let s = &t.body.terms;
            json!({
                "kind": "stream_settle", "payee": t.body.payee.0, "payer": s.payer.0,
                "slot": s.slot.0, "from": s.from.get(), "to": s.to.get(),
                "t_to": hex32(&s.value.to_bytes()), "fee": t.fee.get(), "nonce": t.nonce.get(),
                "valid_until": t.valid_until.get(),
            })
        }
        Ok(Transaction::StreamSettlePath(t)) => {
            let s = &t.body.terms;
            json!({
                "kind": "stream_settle_path", "payee": t.body.payee.0, "payer": s.payer.0,
                "slot": s.slot.0, "from": s.from.get(), "to": s.to.get(),
                "secret": hex32(&s.value.to_bytes()), "fee": t.fee.get(), "nonce": t.nonce.get(),
                "valid_until": t.valid_until.get(),
            })
        }
        Ok(Transaction::StreamClose(t)) => json!({
            "kind": "stream_close", "signer": t.body.signer.0, "payer": t.body.payer.0,
            "slot": t.body.slot.0, "fee": t.fee.get(), "nonce": t.nonce.get(),
            "valid_until": t.valid_until.get(),
        }),
        Ok(Transaction::Split(t)) => json!({
            "kind": "split", "from": t.from.0,
            "parts": t.parts.iter().map(|p| json!({"to": p.to.0, "amount": p.amount.get()})).collect::<Vec<_>>(),
            "fee": t.fee.get(), "nonce": t.nonce.get(), "valid_until": t.valid_until.get(),
        }),
        Ok(Transaction::Passport(t)) => passport_body(&t),
        Ok(Transaction::RegisterShares(t)) => json!({
            "kind": "register_shares", "account": t.account.0,
            "shares": t.parts.iter().map(|(to, bps)| json!({"to": to.0, "bps": bps})).collect::<Vec<_>>(),
            "fee": t.fee.get(), "nonce": t.nonce.get(), "valid_until": t.valid_until.get(),
        }),
        Ok(Transaction::Distribute(t)) => json!({
            "kind": "distribute", "signer": t.body.signer.0, "account": t.body.account.0,
            "fee": t.fee.get(), "nonce": t.nonce.get(), "valid_until": t.valid_until.get(),
        }),
        Err(_) => Value::Null,
    }
}

/// A policy as JSON: its digest and bounds, the allow-list's size rather than the list.
pub fn policy_json(p: &state::passport::Policy) -> Value {
    json!({
        "digest": hex32(&p.digest().to_bytes()), "cap": p.cap.get(), "window": p.window,
        "max_payment": p.max_payment.get(), "max_fee": p.max_fee.get(),
        "expiry": p.expiry.get(), "allow_list_len": p.allow.payees().len(),
        "card_hash": hex32(&p.card.hash), "card_uri": p.card.uri(),
    })
}

/// An agent's passport as JSON (the fields of `GetPassport`), with what it may still spend at
/// `now`.
pub fn passport_json(p: &state::passport::Passport, now: state::account::Timestamp) -> Value {
    let (window_id, spent) = p.spent();
    json!({
        "owner": p.owner().0, "policy": policy_json(p.policy()), "revoked": p.is_revoked(),
        "window_id": window_id, "spent": spent.get(), "remaining": p.remaining(now).get(),
    })
}

/// A passport transaction's body: the owner, the agent and what changes (a policy with its
/// digest and the allow-list's size rather than the list).
fn passport_body(t: &state::tx::PassportTx) -> Value {
    use state::tx::PassportAction;
    let policy = policy_json;
    let mut body = json!({
        "kind": t.kind().name(), "owner": t.owner.0, "fee": t.fee.get(),
        "nonce": t.nonce.get(), "valid_until": t.valid_until.get(),
    });
    let extra = match &t.action {
        PassportAction::Delegate {
            agent_key,
            fund,
            policy: p,
        } => json!({"agent_key": agent_key, "fund": fund.get(), "policy": policy(p)}),
        PassportAction::SetPolicy { agent, policy: p } => {
            json!({"agent": agent.0, "policy": policy(p)})
        }
        PassportAction::Revoke { agent } => json!({"agent": agent.0}),
        PassportAction::Sweep { agent, amount } => {
            json!({"agent": agent.0, "amount": amount.get()})
        }
    };
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    body
}

/// A transaction as the explorer lists it.
pub fn tx_json(row: &TxRow) -> Value {
    json!({
        "tx_id": hex32(&row.tx_id),
        "seq": row.seq,
        "block_number": row.block_number,
        "position": row.position,
        "block_time": row.block_time,
        "finality": row.finality().as_str(),
        "account_index": row.account_index,
        "tx": tx_body(&row.raw),
    })
}

fn block_json(b: &BlockRow) -> Value {
    json!({
        "number": b.number,
        "state_root": b.state_root,
        "first_seq": b.first_seq,
        "tx_count": b.tx_count,
        "block_time": b.block_time,
    })
}

fn batch_json(b: &BatchSummary) -> Value {
    json!({
        "number": b.number,
        "status": b.status.as_str(),
        "finality": b.status.finality().as_str(),
        "first_block": b.first_block,
        "last_block": b.last_block,
        "first_seq": b.first_seq,
        "last_seq": b.last_seq,
        "tx_count": b.tx_count,
        "new_root": b.new_root,
        "sealed_at_ms": b.sealed_at_ms,
        "commit_tx": b.commit_tx.as_ref().map(hex32),
        "commit_block": b.commit_block,
        "finalize_tx": b.finalize_tx.as_ref().map(hex32),
        "finalize_block": b.finalize_block,
    })
}

/// The cursor of the page after `items` (the last item's key), `None` when the page was not
/// full (nothing older).
fn next_before(len: usize, limit: u32, last: Option<u64>) -> Option<u64> {
    (len == limit as usize).then_some(last).flatten()
}

/// Transactions per second over the last [`TPS_WINDOW_SECS`] of `recent` (newest first).
fn throughput(recent: &[BlockRow], now: u64) -> f64 {
    let since = now.saturating_sub(TPS_WINDOW_SECS);
    let in_window: Vec<&BlockRow> = recent.iter().filter(|b| b.block_time >= since).collect();
    let txs: u64 = in_window.iter().map(|b| u64::from(b.tx_count)).sum();
    // When the read blocks do not reach back a whole window, measure over what they span.
    let span = match in_window.last() {
        Some(oldest) if recent.len() == TPS_BLOCKS as usize => {
            now.saturating_sub(oldest.block_time).max(1)
        }
        _ => TPS_WINDOW_SECS,
    };
    txs as f64 / span as f64
}

/// `GET /v1/explorer/summary?limit=`: everything the explorer's home page shows, in one
/// request: the head, throughput, finality progress, the newest blocks (`limit`, default 20)
/// and batches, and where the bridge feed is (to start the SSE stream near its end).
async fn summary(AxState(s): AxState<HttpState>, Query(q): Query<ListQuery>) -> ApiResult {
    let limit = limit_of(&q)?;
    let h = s.writer.head();
    let store = &s.store;
    let feed = store.feed();
    let (recent, batches, progress, last_event) = tokio::try_join!(
        store.log().recent_blocks(None, TPS_BLOCKS),
        store.batches().recent_summaries(None, limit),
        store.batches().progress(),
        feed.last_id(),
    )
    .map_err(internal)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let head_block = recent.first();
    Ok(Json(json!({
        "head_block": h.block,
        "head_state_root": h.root,
        "head_block_time": head_block.map(|b| b.block_time),
        "accepted_txs": h.accepted,
        "num_accounts": h.num_accounts,
        "last_batch": h.batch,
        "batches_progress": {
            "sealed": progress.sealed,
            "proven": progress.proven,
            "committed": progress.committed,
            "finalized": progress.finalized,
        },
        "tps": throughput(&recent, now),
        "tps_window_secs": TPS_WINDOW_SECS,
        "server_time": now,
        "blocks": recent.iter().take(limit as usize).map(block_json).collect::<Vec<_>>(),
        "batches": batches.iter().map(batch_json).collect::<Vec<_>>(),
        "last_event_id": last_event,
        "event_kinds": EventKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "l1_tx_url": s.explorer_l1_tx_url,
    }))
    .into_response())
}

/// `GET /v1/explorer/blocks?before=&limit=`: sealed blocks, newest first.
async fn blocks(AxState(s): AxState<HttpState>, Query(q): Query<ListQuery>) -> ApiResult {
    let (before, limit) = (before_of(&q)?, limit_of(&q)?);
    let rows = s
        .store
        .log()
        .recent_blocks(before, limit)
        .await
        .map_err(internal)?;
    Ok(Json(json!({
        "blocks": rows.iter().map(block_json).collect::<Vec<_>>(),
        "next_before": next_before(rows.len(), limit, rows.last().map(|b| b.number)),
    }))
    .into_response())
}

/// `GET /v1/explorer/blocks/{number}?offset=&limit=`: a sealed block, the batch holding it
/// and one page of its transactions (decoded).
async fn block(
    AxState(s): AxState<HttpState>,
    Path(number): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let number = parse_u64(&number, "block number")?;
    let limit = limit_of(&q)?;
    let offset = match q.offset.as_deref() {
        None => 0,
        Some(o) => u32::try_from(parse_u64(o, "offset")?).unwrap_or(u32::MAX),
    };
    let b = s
        .store
        .log()
        .get_block(number)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found("UNKNOWN_BLOCK", format!("block {number} is not sealed")))?;
    let (txs, batch) = tokio::try_join!(
        s.store.log().block_txs(&b, offset, limit),
        s.store.batches().number_of_block(number),
    )
    .map_err(internal)?;
    let end = u64::from(offset) + txs.len() as u64;
    let mut body = block_json(&b);
    body["batch"] = json!(batch);
    body["offset"] = json!(offset);
    body["next_offset"] = json!((end < u64::from(b.tx_count)).then_some(end));
    body["txs"] = Value::Array(txs.iter().map(tx_json).collect());
    Ok(Json(body).into_response())
}

/// `GET /v1/explorer/batches?before=&limit=`: batches newest first, with their status and L1
/// commit and finalize transactions.
async fn batches(AxState(s): AxState<HttpState>, Query(q): Query<ListQuery>) -> ApiResult {
    let (before, limit) = (before_of(&q)?, limit_of(&q)?);
    let rows = s
        .store
        .batches()
        .recent_summaries(before, limit)
        .await
        .map_err(internal)?;
    Ok(Json(json!({
        "batches": rows.iter().map(batch_json).collect::<Vec<_>>(),
        "next_before": next_before(rows.len(), limit, rows.last().map(|b| b.number)),
    }))
    .into_response())
}

/// `GET /v1/explorer/batches/{number}`.
async fn batch(AxState(s): AxState<HttpState>, Path(number): Path<String>) -> ApiResult {
    let number = parse_u64(&number, "batch number")?;
    let b = s
        .store
        .batches()
        .summary(number)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found("UNKNOWN_BATCH", format!("batch {number} is not sealed")))?;
    Ok(Json(batch_json(&b)).into_response())
}

/// `GET /v1/explorer/txs/{id}`: a transaction, its batch (number, status, L1 transactions)
/// and its raw bytes.
async fn tx(AxState(s): AxState<HttpState>, Path(id): Path<String>) -> ApiResult {
    let bytes = hex::decode(id.strip_prefix("0x").unwrap_or(&id)).ok();
    let Some(id) = bytes.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()) else {
        return Err(malformed(
            "a transaction id is 32 bytes of hex (0x followed by 64 digits)",
        ));
    };
    let row = s
        .store
        .log()
        .get_tx(&id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found("UNKNOWN_TRANSACTION", "no accepted transaction has this id"))?;
    let batch = match s
        .store
        .batches()
        .number_of_seq(row.seq)
        .await
        .map_err(internal)?
    {
        Some(n) => s.store.batches().summary(n).await.map_err(internal)?,
        None => None,
    };
    let mut body = tx_json(&row);
    body["batch"] = batch.as_ref().map_or(Value::Null, batch_json);
    body["raw"] = json!(format!("0x{}", hex::encode(&row.raw)));
    Ok(Json(body).into_response())
}

fn parse_account(index: &str) -> Result<u32, ApiError> {
    index
        .parse::<u32>()
        .map_err(|_| malformed(format!("an account index is a u32, not {index:?}")))
}

/// Account `index` (as of durable state), or the problem to answer when it does not exist.
async fn existing_account(s: &HttpState, index: u32) -> Result<state::account::Account, ApiError> {
    match s
        .writer
        .durable_account(AccountIndex(index), Duration::from_millis(200))
        .await
    {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(not_found(
            "UNKNOWN_ACCOUNT",
            format!("account {index} does not exist"),
        )),
        Err(ReadError::Enqueue(_)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "RESOURCE_EXHAUSTED",
            "the sequencer is busy",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            e.to_string(),
        )),
    }
}

/// A page of an account's history, newest first.
async fn history(s: &HttpState, index: u32, q: &ListQuery) -> Result<Value, ApiError> {
    let (before, limit) = (before_of(q)?, limit_of(q)?);
    // The open blocks' part first (unsealed.rs: what makes the read gap-free).
    let unsealed = s.unsealed.before(index, before, limit as usize);
    let rows = s
        .store
        .log()
        .account_history(index, before, limit, &unsealed)
        .await
        .map_err(internal)?;
    Ok(json!({
        "txs": rows.iter().map(tx_json).collect::<Vec<_>>(),
        "next_before": next_before(rows.len(), limit, rows.last().map(|t| t.seq)),
    }))
}

/// `GET /v1/explorer/accounts/{index}?limit=`: the account (durable state) and the first page
/// of its history.
async fn account(
    AxState(s): AxState<HttpState>,
    Path(index): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let index = parse_account(&index)?;
    if q.before.is_some() {
        return Err(malformed(
            "page the history with /v1/explorer/accounts/{index}/txs?before=",
        ));
    }
    let a = existing_account(&s, index).await?;
    let mut body = history(&s, index, &q).await?;
    body["index"] = json!(index);
    body["public_key"] = json!(a.pubkey);
    body["balance"] = json!(a.balance.get());
    body["nonce"] = json!(a.nonce.get());
    Ok(Json(body).into_response())
}

/// `GET /v1/explorer/accounts/{index}/txs?before=&limit=`: one page of an account's history.
async fn account_txs(
    AxState(s): AxState<HttpState>,
    Path(index): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let index = parse_account(&index)?;
    existing_account(&s, index).await?;
    Ok(Json(history(&s, index, &q).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(number: u64, time: u64, txs: u32) -> BlockRow {
        BlockRow {
            number,
            state_root: state::Digest::default(),
            first_seq: 1,
            tx_count: txs,
            block_time: time,
        }
    }

    #[test]
    fn throughput_counts_the_last_minute() {
        // 120 transactions within the window, 1000 before it.
        let recent = vec![b(3, 1_000, 60), b(2, 970, 60), b(1, 900, 1_000)];
        assert_eq!(throughput(&recent, 1_000), 2.0);
        assert_eq!(throughput(&[], 1_000), 0.0);
    }

    #[test]
    fn next_page_only_after_a_full_page() {
        assert_eq!(next_before(20, 20, Some(7)), Some(7));
        assert_eq!(next_before(3, 20, Some(7)), None);
        assert_eq!(next_before(0, 20, None), None);
    }
}
