//! `bridge_events`: the event feed for exchanges (SPEC 16.4).
//!
//! Invariants:
//!
//! - An event is appended ([`append`]) inside the transaction of the state change it reports,
//!   so a change and its event exist together or not at all.
//! - Every writer takes [`EVENT_LOCK`] before inserting, so ids (the cursor) become visible
//!   strictly in id order: a reader that follows `id > cursor` ([`FeedDal::read_after`]) sees
//!   every event exactly once, in order, across restarts of either side.
//! - `kind` and `finality` are [`EventKind`] and [`EventFinality`], stored and sent on the
//!   wire by their `snake_case` names.
//!
//! The LISTEN side (streaming, fan-out) is the bridge's; this module owns the SQL and the
//! channel name it listens on.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgPool, Row};

use crate::convert::{decode_err, hash32_of, i64_of, u64_of};
use crate::status::{EventFinality, EventKind};
use crate::Result;

/// The advisory lock key serializing event inserts.
pub const EVENT_LOCK: i64 = 5_000_001;
/// The NOTIFY channel announcing new events (payload: the new id).
pub const CHANNEL: &str = "bridge_events";

/// One row of `bridge_events`.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// The cursor: resume with `cursor = id` to get the events after this one.
    pub id: i64,
    pub kind: EventKind,
    pub finality: EventFinality,
    pub payload: serde_json::Value,
    /// The L1 transaction, when the event has one.
    pub l1_tx_hash: Option<[u8; 32]>,
    pub l1_block: Option<u64>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
}

impl<'r> FromRow<'r, PgRow> for EventRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let l1_tx_hash = row
            .try_get::<Option<Vec<u8>>, _>("l1_tx_hash")?
            .map(|h| hash32_of(&h, "l1_tx_hash").map_err(|e| decode_err("l1_tx_hash", e)))
            .transpose()?;
        let l1_block = row
            .try_get::<Option<i64>, _>("l1_block")?
            .map(|b| u64_of(b, "l1_block").map_err(|e| decode_err("l1_block", e)))
            .transpose()?;
        Ok(EventRow {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            finality: row.try_get("finality")?,
            payload: row.try_get("payload")?,
            l1_tx_hash,
            l1_block,
            created_at_ms: row.try_get("created_at_ms")?,
        })
    }
}

/// Appends an event inside the caller's transaction: takes the feed lock (held until that
/// transaction ends) and notifies readers at commit. Returns the event's id.
pub async fn append(
    db: &mut PgConnection,
    kind: EventKind,
    finality: EventFinality,
    payload: &serde_json::Value,
    l1_tx: Option<[u8; 32]>,
    l1_block: Option<u64>,
) -> Result<i64> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENT_LOCK)
        .execute(&mut *db)
        .await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO bridge_events (kind, payload, finality, l1_tx_hash, l1_block) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(kind)
    .bind(payload)
    .bind(finality)
    .bind(l1_tx.map(|h| h.to_vec()))
    .bind(l1_block.map(i64_of))
    .fetch_one(&mut *db)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(id.to_string())
        .execute(&mut *db)
        .await?;
    Ok(id)
}

pub struct FeedDal<'a> {
    pool: &'a PgPool,
}

impl<'a> FeedDal<'a> {
    pub(crate) fn new(pool: &'a PgPool) -> Self {
        FeedDal { pool }
    }

    /// Events with `id > cursor`, oldest first, at most `limit`.
    pub async fn read_after(&self, cursor: i64, limit: i64) -> Result<Vec<EventRow>> {
        Ok(sqlx::query_as::<_, EventRow>(
            "SELECT id, kind, finality, payload, l1_tx_hash, l1_block, \
             (extract(epoch FROM created_at) * 1000)::bigint AS created_at_ms \
             FROM bridge_events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(cursor)
        .bind(limit)
        .fetch_all(self.pool)
        .await?)
    }

    /// The newest event id (0 when the feed is empty).
    pub async fn last_id(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM bridge_events")
                .fetch_one(self.pool)
                .await?,
        )
    }

    /// Appends an event in a transaction of its own (see [`append`] to do it together with
    /// the change it reports).
    pub async fn append(
        &self,
        kind: EventKind,
        finality: EventFinality,
        payload: &serde_json::Value,
        l1_tx: Option<[u8; 32]>,
        l1_block: Option<u64>,
    ) -> Result<i64> {
        let mut db = self.pool.begin().await?;
        let id = append(&mut db, kind, finality, payload, l1_tx, l1_block).await?;
        db.commit().await?;
        Ok(id)
    }
}

impl std::fmt::Debug for FeedDal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FeedDal")
    }
}
