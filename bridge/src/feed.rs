//! The event feed for exchanges (`bridge_events`, SPEC 16.4): streaming and fan-out.
//!
//! The SQL (append, read, the lock that makes ids visible in id order) is
//! `rollup_storage::feed`; this module turns rows into the wire [`Event`] and follows the feed
//! with LISTEN/NOTIFY. Events are appended with `rollup_storage::feed::append` inside the
//! transaction of the state change they report, so a change and its event exist together or
//! not at all, and a reader that follows `id > cursor` sees every event exactly once, in order,
//! across restarts of either side.

use std::time::Duration;

use futures::Stream;
use rollup_storage::feed::EventRow;
use rollup_storage::{EventFinality, EventKind, StorageError, Store};
use serde::Serialize;
use sqlx::postgres::{PgListener, PgPool};

pub use rollup_storage::feed::{CHANNEL, EVENT_LOCK};

/// An event as sent to exchanges (SSE JSON; gRPC takes the same fields). `kind` and
/// `finality` serialize as their `snake_case` names.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// The cursor: resume with `cursor = id` to get the events after this one.
    pub id: i64,
    pub kind: EventKind,
    pub finality: EventFinality,
    pub payload: serde_json::Value,
    /// `0x..` hash of the L1 transaction, when the event has one.
    pub l1_tx_hash: Option<String>,
    pub l1_block: Option<i64>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Event {
        Event {
            id: r.id,
            kind: r.kind,
            finality: r.finality,
            payload: r.payload,
            l1_tx_hash: r.l1_tx_hash.map(|h| format!("0x{}", hex::encode(h))),
            // Stored as BIGINT: always below 2^63.
            l1_block: r.l1_block.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
            created_at_ms: r.created_at_ms,
        }
    }
}

/// Events with `id > cursor`, oldest first, at most `limit`.
pub async fn read_after(
    pool: &PgPool,
    cursor: i64,
    limit: i64,
) -> Result<Vec<Event>, StorageError> {
    let rows = Store::from_pool(pool.clone())
        .feed()
        .read_after(cursor, limit)
        .await?;
    Ok(rows.into_iter().map(Event::from).collect())
}

/// Every event after `cursor`, then new ones as they are committed, forever (until the
/// consumer drops the stream). Wakes on NOTIFY, and polls every `poll` as a fallback.
pub fn follow(
    pool: PgPool,
    cursor: i64,
    poll: Duration,
) -> impl Stream<Item = Result<Event, StorageError>> + Send + 'static {
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

/// Events kept in memory by a [`FeedHub`] for subscribers that are live.
const HUB_WINDOW: usize = 4096;

/// One feed reader per process, shared by every subscriber (fan-out).
///
/// [`follow`] costs each subscriber its own LISTEN connection and a query per new event; with
/// many exchange subscribers that exhausts Postgres. The hub holds the only LISTEN connection,
/// reads each new event once, keeps the latest [`HUB_WINDOW`] in memory and wakes subscribers
/// through a watch channel. A subscriber behind the window (a cursor from long ago) catches up
/// from the database with pooled connections, then serves from memory. Ordering and
/// exactly-once are those of [`read_after`]: ids become visible in id order (section 16.4 of
/// the spec), and the hub advances its cursor only over what it read.
#[derive(Clone)]
pub struct FeedHub {
    inner: std::sync::Arc<HubInner>,
}

struct HubInner {
    pool: PgPool,
    /// `floor` and the events with `id > floor`, in id order: complete above `floor`.
    window: std::sync::RwLock<(i64, std::collections::VecDeque<Event>)>,
    /// The newest id the hub has read.
    head: tokio::sync::watch::Sender<i64>,
    poll: Duration,
}

impl FeedHub {
    /// Starts the reader task; it stops when `stop` turns true.
    pub async fn start(
        pool: PgPool,
        poll: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<FeedHub, StorageError> {
        Ok(Self::start_supervised(pool, poll, stop).await?.0)
    }

    /// [`FeedHub::start`], also returning the reader task, for a supervisor to watch: the reader
    /// ends only at `stop` (errors are retried inside), so an earlier end is a failure.
    pub async fn start_supervised(
        pool: PgPool,
        poll: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(FeedHub, tokio::task::JoinHandle<()>), StorageError> {
        let last = Store::from_pool(pool.clone()).feed().last_id().await?;
        let (head, _) = tokio::sync::watch::channel(last);
        let hub = FeedHub {
            inner: std::sync::Arc::new(HubInner {
                pool,
                window: std::sync::RwLock::new((last, Default::default())),
                head,
                poll,
            }),
        };
        let inner = hub.inner.clone();
        let reader = tokio::spawn(async move {
            tokio::select! {
                _ = inner.run(last) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
        Ok((hub, reader))
    }

    /// Number of subscribers following the hub now.
    pub fn subscribers(&self) -> usize {
        self.inner.head.receiver_count()
    }

    /// Like [`follow`]: every event after `cursor`, then new ones, without a connection of its
    /// own while it is live.
    pub fn follow(
        &self,
        cursor: i64,
    ) -> impl Stream<Item = Result<Event, StorageError>> + Send + 'static {
        struct St {
            inner: std::sync::Arc<HubInner>,
            head: tokio::sync::watch::Receiver<i64>,
            cursor: i64,
            buf: std::collections::VecDeque<Event>,
            failed: bool,
        }
        let st = St {
            head: self.inner.head.subscribe(),
            inner: self.inner.clone(),
            cursor,
            buf: Default::default(),
            failed: false,
        };
        futures::stream::unfold(st, |mut st| async move {
            if st.failed {
                return None;
            }
            loop {
                if let Some(e) = st.buf.pop_front() {
                    st.cursor = e.id;
                    return Some((Ok(e), st));
                }
                // Live: everything after the cursor is in the window.
                let from_memory = {
                    let w = st.inner.window.read().unwrap_or_else(|p| p.into_inner());
                    (st.cursor >= w.0).then(|| {
                        w.1.iter()
                            .filter(|e| e.id > st.cursor)
                            .cloned()
                            .collect::<Vec<_>>()
                    })
                };
                match from_memory {
                    Some(events) if !events.is_empty() => {
                        st.buf.extend(events);
                        continue;
                    }
                    Some(_) => {
                        // Up to date: wait for the hub (or poll, should it be stuck).
                        let _ = tokio::time::timeout(st.inner.poll, st.head.changed()).await;
                        continue;
                    }
                    None => {}
                }
                // Behind the window: catch up from the database.
                match read_after(&st.inner.pool, st.cursor, 500).await {
                    Ok(rows) if !rows.is_empty() => st.buf.extend(rows),
                    Ok(_) => {
                        let _ = tokio::time::timeout(st.inner.poll, st.head.changed()).await;
                    }
                    Err(e) => {
                        st.failed = true;
                        return Some((Err(e), st));
                    }
                }
            }
        })
    }
}

impl HubInner {
    async fn run(&self, mut last: i64) {
        let mut listener: Option<PgListener> = None;
        loop {
            if listener.is_none() {
                // Listen before reading, so nothing committed in between is missed.
                match PgListener::connect_with(&self.pool).await {
                    Ok(mut l) => {
                        if l.listen(CHANNEL).await.is_ok() {
                            listener = Some(l);
                        }
                    }
                    Err(e) => tracing::warn!("feed hub: LISTEN unavailable, polling: {e}"),
                }
            }
            // Senders count their receivers: one per live subscriber.
            metrics::gauge!("bridge_feed_subscribers").set(self.head.receiver_count() as f64);
            match read_after(&self.pool, last, 500).await {
                Ok(rows) if !rows.is_empty() => {
                    let full = rows.len() == 500;
                    {
                        let mut w = self.window.write().unwrap_or_else(|p| p.into_inner());
                        for e in rows {
                            last = e.id;
                            w.1.push_back(e);
                        }
                        while w.1.len() > HUB_WINDOW {
                            if let Some(old) = w.1.pop_front() {
                                w.0 = old.id;
                            }
                        }
                    }
                    self.head.send_replace(last);
                    if full {
                        continue;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("feed hub: reading events: {e}"),
            }
            match listener.as_mut() {
                Some(l) => {
                    if let Ok(Err(_)) = tokio::time::timeout(self.poll, l.recv()).await {
                        listener = None;
                    }
                }
                None => tokio::time::sleep(self.poll).await,
            }
        }
    }
}
