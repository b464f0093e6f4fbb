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

use sqlx::{PgConnection, PgPool};

use crate::convert::{hash32_of, i64_of, u64_of};
use crate::status::{EventFinality, EventKind};
use crate::{Result, StorageError};

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

/// A row of `bridge_events` as `query_as!` types it against the schema at compile time.
struct EventRecord {
    id: i64,
    kind: EventKind,
    finality: EventFinality,
    payload: serde_json::Value,
    l1_tx_hash: Option<Vec<u8>>,
    l1_block: Option<i64>,
    created_at_ms: i64,
}

impl TryFrom<EventRecord> for EventRow {
    type Error = StorageError;

    fn try_from(r: EventRecord) -> Result<Self> {
        Ok(EventRow {
            id: r.id,
            kind: r.kind,
            finality: r.finality,
            payload: r.payload,
            l1_tx_hash: r
                .l1_tx_hash
                .map(|h| hash32_of(&h, "l1_tx_hash"))
                .transpose()?,
            l1_block: r.l1_block.map(|b| u64_of(b, "l1_block")).transpose()?,
            created_at_ms: r.created_at_ms,
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
    let id = sqlx::query_scalar!(
        "INSERT INTO bridge_events (kind, payload, finality, l1_tx_hash, l1_block) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        kind.as_str(),
        payload,
        finality.as_str(),
        l1_tx.as_ref().map(|h| &h[..]),
        l1_block.map(i64_of),
    )
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
        sqlx::query_as!(
            EventRecord,
            r#"SELECT id, kind AS "kind: EventKind", finality AS "finality: EventFinality",
                      payload, l1_tx_hash, l1_block,
                      (extract(epoch FROM created_at) * 1000)::bigint AS "created_at_ms!"
               FROM bridge_events WHERE id > $1 ORDER BY id LIMIT $2"#,
            cursor,
            limit,
        )
        .fetch_all(self.pool)
        .await?
        .into_iter()
        .map(EventRow::try_from)
        .collect()
    }

    /// The newest event id (0 when the feed is empty).
    pub async fn last_id(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar!(r#"SELECT coalesce(max(id), 0) AS "id!" FROM bridge_events"#)
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
