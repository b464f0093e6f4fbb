//! The event feed for exchanges (`bridge_events`, SPEC 16.4).
//!
//! Events are written in the same database transaction as the state change they report, so a
//! change and its event exist together or not at all. Every writer takes one advisory lock
//! before inserting, so ids (the cursor) become visible strictly in id order: a reader that
//! follows `id > cursor` sees every event exactly once, in order, across restarts of either side.

use std::time::Duration;

use alloy_primitives::B256;
use futures::Stream;
use serde::Serialize;
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{PgConnection, Row};

/// The advisory lock key serializing event inserts.
pub const EVENT_LOCK: i64 = 5_000_001;
/// The NOTIFY channel announcing new events.
pub const CHANNEL: &str = "bridge_events";

/// Kinds of events.
pub mod kind {
    pub const DEPOSIT_SEEN: &str = "deposit_seen";
    pub const DEPOSIT_CONFIRMED: &str = "deposit_confirmed";
    pub const DEPOSIT_REORGED: &str = "deposit_reorged";
    pub const DEPOSIT_CREDITED: &str = "deposit_credited";
    pub const FORCED_WITHDRAWAL_SEEN: &str = "forced_withdrawal_seen";
    /// Consumed on L2: `outcome` is `APPLIED` (paid out once its batch is final) or the reason
    /// code of the rule it breaks.
    pub const FORCED_WITHDRAWAL_PROCESSED: &str = "forced_withdrawal_processed";
    pub const BATCH_COMMITTED: &str = "batch_committed";
    pub const BATCH_FINALIZED: &str = "batch_finalized";
    pub const WITHDRAWAL_CLAIMABLE: &str = "withdrawal_claimable";
    pub const WITHDRAWAL_CLAIMED: &str = "withdrawal_claimed";
}

/// Finality levels of events (SPEC 16.4).
pub mod finality {
    /// In an L1 block above the confirmation depth: may still be reorged away.
    pub const L1_SEEN: &str = "l1_seen";
    /// At or below the confirmation depth on L1.
    pub const L1_CONFIRMED: &str = "l1_confirmed";
    /// Was seen, then its L1 block left the canonical chain; it will never be credited.
    pub const L1_REORGED: &str = "l1_reorged";
    /// Durable on L2 (signed receipt).
    pub const ACCEPTED: &str = "accepted";
    pub const COMMITTED: &str = "committed";
    pub const FINALIZED: &str = "finalized";
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// The cursor: resume with `cursor = id` to get the events after this one.
    pub id: i64,
    pub kind: String,
    pub finality: String,
    pub payload: serde_json::Value,
    /// `0x..` hash of the L1 transaction, when the event has one.
    pub l1_tx_hash: Option<String>,
    pub l1_block: Option<i64>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
}

/// Appends an event inside the caller's transaction (takes the feed lock, notifies readers at
/// commit).
pub async fn append(
    db: &mut PgConnection,
    kind: &str,
    finality: &str,
    payload: serde_json::Value,
    l1_tx: Option<B256>,
    l1_block: Option<u64>,
) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENT_LOCK)
        .execute(&mut *db)
        .await?;
    let id: i64 = sqlx::query(
        "INSERT INTO bridge_events (kind, payload, finality, l1_tx_hash, l1_block) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(kind)
    .bind(payload)
    .bind(finality)
    .bind(l1_tx.map(|h| h.to_vec()))
    .bind(l1_block.map(|b| b as i64))
    .fetch_one(&mut *db)
    .await?
    .get(0);
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(id.to_string())
        .execute(&mut *db)
        .await?;
    Ok(id)
}

/// Events with `id > cursor`, oldest first, at most `limit`.
pub async fn read_after(pool: &PgPool, cursor: i64, limit: i64) -> Result<Vec<Event>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, kind, finality, payload, l1_tx_hash, l1_block, \
         (extract(epoch FROM created_at) * 1000)::bigint AS ms \
         FROM bridge_events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(cursor)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let hash: Option<Vec<u8>> = r.try_get("l1_tx_hash")?;
            Ok(Event {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                finality: r.try_get("finality")?,
                payload: r.try_get("payload")?,
                l1_tx_hash: hash.map(|h| format!("0x{}", hex::encode(h))),
                l1_block: r.try_get("l1_block")?,
                created_at_ms: r.try_get("ms")?,
            })
        })
        .collect()
}

/// Every event after `cursor`, then new ones as they are committed, forever (until the
/// consumer drops the stream). Wakes on NOTIFY, and polls every `poll` as a fallback.
pub fn follow(
    pool: PgPool,
    cursor: i64,
    poll: Duration,
) -> impl Stream<Item = Result<Event, sqlx::Error>> + Send + 'static {
    struct St {
        pool: PgPool,
        cursor: i64,
        buf: std::collections::VecDeque<Event>,
        listener: Option<PgListener>,
        poll: Duration,
        failed: bool,
    }
    let st = St {
        pool,
        cursor,
        buf: Default::default(),
        listener: None,
        poll,
        failed: false,
    };
    futures::stream::unfold(st, |mut st| async move {
        if st.failed {
            return None;
        }
        if st.listener.is_none() {
            // Listen before the first read, so nothing committed in between is missed.
            match PgListener::connect_with(&st.pool).await {
                Ok(mut l) => {
                    if l.listen(CHANNEL).await.is_ok() {
                        st.listener = Some(l);
                    }
                }
                Err(e) => tracing::warn!("feed: LISTEN unavailable, polling: {e}"),
            }
        }
        loop {
            if let Some(e) = st.buf.pop_front() {
                st.cursor = e.id;
                return Some((Ok(e), st));
            }
            match read_after(&st.pool, st.cursor, 500).await {
                Ok(rows) if !rows.is_empty() => {
                    st.buf.extend(rows);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    st.failed = true;
                    return Some((Err(e), st));
                }
            }
            match st.listener.as_mut() {
                Some(l) => {
                    // Drain whatever notifications arrive, or time out and poll anyway.
                    if let Ok(Err(_)) = tokio::time::timeout(st.poll, l.recv()).await {
                        st.listener = None;
                    }
                }
                None => tokio::time::sleep(st.poll).await,
            }
        }
    })
}
