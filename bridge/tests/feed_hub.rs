//! The feed fan-out against a real Postgres: many subscribers, one LISTEN connection, every
//! event delivered to each exactly once and in order, also to subscribers that start behind
//! the hub's memory window or join while events are being appended.

mod common;

use std::time::Duration;

use futures::StreamExt;
use rollup_bridge::feed::{self, FeedHub};
use rollup_storage::{EventFinality, EventKind};
use serde_json::json;
use sqlx::PgPool;

async fn append(pool: &PgPool, n: usize) {
    for i in 0..n {
        let mut db = pool.begin().await.unwrap();
        rollup_storage::feed::append(
            &mut db,
            EventKind::DepositSeen,
            EventFinality::L1Seen,
            &json!({ "i": i }),
            None,
            None,
        )
        .await
        .unwrap();
        db.commit().await.unwrap();
    }
}

async fn listeners(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_subscribers_share_one_listener_and_each_gets_every_event_once_in_order() {
    let pool = common::database("feed_hub").await;
    // Some history before the hub starts: subscribers from cursor 0 catch up from the table.
    append(&pool, 30).await;
    let history = feed::read_after(&pool, 0, 100).await.unwrap();
    let middle = history[14].id;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let hub = FeedHub::start(pool.clone(), Duration::from_millis(200), stop)
        .await
        .unwrap();
    const SUBSCRIBERS: usize = 40;
    const TOTAL: usize = 30 + 120;
    let mut seen = Vec::new();
    let mut tasks = Vec::new();
    for s in 0..SUBSCRIBERS {
        // Half start from the beginning, half from the middle of the history.
        let cursor = if s % 2 == 0 { 0 } else { middle };
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
        seen.push(got.clone());
        let mut stream = Box::pin(hub.follow(cursor));
        // Each subscriber stays connected (as an exchange would) and records what it gets.
        tasks.push(tokio::spawn(async move {
            while let Some(e) = stream.next().await {
                got.lock().unwrap().push(e.unwrap().id);
            }
        }));
    }
    // Events keep coming while the subscribers are live.
    append(&pool, 120).await;
    let all: Vec<i64> = feed::read_after(&pool, 0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all.len(), TOTAL);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done = seen.iter().enumerate().all(|(s, got)| {
            let want = if s % 2 == 0 { TOTAL } else { TOTAL - 15 };
            got.lock().unwrap().len() >= want
        });
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "every event within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing more arrives, and all of them are still connected through one LISTEN.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hub.subscribers(), SUBSCRIBERS);
    assert_eq!(
        listeners(&pool).await,
        1,
        "one LISTEN connection for {SUBSCRIBERS} subscribers"
    );
    for (s, got) in seen.iter().enumerate() {
        let from = if s % 2 == 0 { 0 } else { 15 };
        assert_eq!(*got.lock().unwrap(), all[from..], "subscriber {s}");
    }
    for t in tasks {
        t.abort();
    }
    let _ = stop_tx.send(true);
}
