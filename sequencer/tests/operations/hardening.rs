//! Idle watchers, an open block's payments read before it is sealed, a dead committer, block time across restarts, key file modes, deposit sources.

use std::time::Duration;

use futures::StreamExt;
use rollup_proto::v1 as pb;

use super::{metric, readyz, wait_until};
use crate::common::*;

/// An idle `WatchReceipts` stream used to poll Postgres in a loop (56% of a core each). Now a
/// watcher queries once at start and then only when a commit touched its account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_receipt_watchers_cost_no_queries() {
    const WATCHERS: usize = 20;
    let db = fresh_database("seq_idle_watch").await;
    let node = TestNode::start(&db, &[]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (kw, kb, kc) = (key(301), key(302), key(303));
    let watched = register(&mut c, &d, now, &kw).await;
    let b = register(&mut c, &d, now, &kb).await;
    let cc = register(&mut c, &d, now, &kc).await;
    faucet(&mut c, b, 1_000_000).await;

    let mut streams = Vec::new();
    for _ in 0..WATCHERS {
        let mut wc = node.client().await;
        let s = wc
            .watch_receipts(pb::WatchReceiptsRequest {
                account: watched.0,
                from_seq: None,
            })
            .await
            .expect("watch")
            .into_inner();
        streams.push(s);
    }
    wait_until(
        Duration::from_secs(10),
        "each watcher's first query",
        || async { metric(&node.http, "rollup_watch_queries_total").await >= WATCHERS as f64 },
    )
    .await;

    // Traffic that does not touch the watched account: 40 commits, no watcher wakes.
    for nonce in 0..40 {
        let tx = transfer(&d, &kb, b, cc, 1, 0, nonce, now + 600);
        let r = c.submit(raw(&tx)).await.expect("submit").into_inner();
        assert_eq!(r.status, pb::TxStatus::Accepted as i32, "{r:?}");
    }
    // Give any polling loop ample time to show itself.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queries = metric(&node.http, "rollup_watch_queries_total").await;
    assert_eq!(
        queries, WATCHERS as f64,
        "idle watchers queried Postgres {queries} times for {WATCHERS} streams"
    );

    // A payment to the watched account wakes every watcher once, and each gets the receipt.
    let tx = transfer(&d, &kb, b, watched, 7, 0, 40, now + 600);
    let r = c.submit(raw(&tx)).await.expect("submit").into_inner();
    assert_eq!(r.status, pb::TxStatus::Accepted as i32, "{r:?}");
    for s in streams.iter_mut() {
        let got = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("the watcher is woken")
            .expect("stream open")
            .expect("a receipt");
        assert_eq!(got.tx_id, r.tx_id);
    }
    let queries = metric(&node.http, "rollup_watch_queries_total").await;
    assert_eq!(queries, 2.0 * WATCHERS as f64, "one query per wake");
}

/// An account's transactions are indexed by sealed block (`account_blocks`, storage migration
/// 0018); those of the block still open come from the node's memory (`unsealed.rs`). A
/// watcher and a history page see a payment while its block is open, and after a `kill -9`
/// recovery seals that block with its rows, so that the history still lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_blocks_payments_are_read_before_and_after_it_is_sealed() {
    let db = fresh_database("seq_open_block_reads").await;
    // A block is sealed an hour after its first transaction: everything here is in block 1.
    let mut node = TestNode::start(&db, &["--block-interval-ms", "3600000"]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ka, kb) = (key(321), key(322));
    let a = register(&mut c, &d, now, &ka).await;
    let b = register(&mut c, &d, now, &kb).await;
    let deposit = faucet(&mut c, a, 1_000).await;
    let mut watch = c
        .watch_receipts(pb::WatchReceiptsRequest {
            account: b.0,
            from_seq: Some(deposit.seq),
        })
        .await
        .expect("watch")
        .into_inner();
    let r = c
        .submit(raw(&transfer(&d, &ka, a, b, 7, 0, 0, now + 600)))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(r.status, pb::TxStatus::Accepted as i32, "{r:?}");
    let got = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("the watcher gets the payment of the open block")
        .expect("stream open")
        .expect("a receipt");
    assert_eq!((got.tx_id, got.seq), (r.tx_id.clone(), r.seq));

    let pool = sqlx::PgPool::connect(&db).await.expect("connect");
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .expect(sql)
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM blocks").await,
        0,
        "block 1 open"
    );
    assert_eq!(count("SELECT count(*) FROM account_blocks").await, 0);
    let http = node.http.clone();
    let history = |account: u32| {
        let url = format!("{http}/v1/explorer/accounts/{account}/txs?limit=10");
        async move {
            let body: serde_json::Value = reqwest::get(&url)
                .await
                .expect("history")
                .json()
                .await
                .expect("json");
            body["txs"]
                .as_array()
                .expect("txs")
                .iter()
                .map(|t| t["seq"].as_u64().expect("seq"))
                .collect::<Vec<u64>>()
        }
    };
    // Newest first: the payment, the faucet's deposit, the registration.
    let before_crash = history(a.0).await;
    assert_eq!(before_crash.len(), 3, "{before_crash:?}");
    assert_eq!(before_crash[..2], [r.seq, deposit.seq]);
    assert_eq!(history(b.0).await.first(), Some(&r.seq));

    // Killed with block 1 open: recovery seals it, and its rows with it.
    node.kill9();
    node.restart().await;
    assert_eq!(
        count("SELECT count(*) FROM blocks").await,
        1,
        "sealed by recovery"
    );
    let rows: Vec<(i64, Vec<i64>)> =
        sqlx::query_as("SELECT account, seqs FROM account_blocks ORDER BY account")
            .fetch_all(&pool)
            .await
            .expect("account_blocks");
    let seq = |s: u64| s as i64;
    assert_eq!(
        rows,
        [
            (i64::from(a.0), vec![seq(deposit.seq), seq(r.seq)]),
            (i64::from(b.0), vec![seq(r.seq)]),
        ]
    );
    assert_eq!(history(a.0).await, before_crash);
}

/// A committer that dies used to leave the node answering "ready" while every submission got
/// UNAVAILABLE. Now the node turns not-ready and exits non-zero, for its supervisor to restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_committer_stops_the_node() {
    let db = fresh_database("seq_dead_committer").await;
    let mut node = TestNode::start(&db, &[]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    register(&mut c, &d, now, &key(311)).await;

    // A schema the committer cannot write to: a permanent (non-transient) error.
    let pool = sqlx::PgPool::connect(&db).await.expect("connect");
    sqlx::query("ALTER TABLE transactions RENAME TO transactions_moved")
        .execute(&pool)
        .await
        .expect("rename");
    let tx = register_tx(&d, now, &key(312));
    match c.submit(raw_with_work(&d, &tx)).await {
        Ok(r) => {
            let r = r.into_inner();
            assert_ne!(
                r.status,
                pb::TxStatus::Accepted as i32,
                "accepted without being durable: {r:?}"
            );
        }
        Err(s) => assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}"),
    }
    let status = node
        .wait_exit(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| {
            panic!(
                "the node kept running without a committer; log:\n{}",
                node.log_text()
            )
        });
    assert!(!status.success(), "exit status {status}");
    let log = node.log_text();
    assert!(log.contains("critical task committer stopped"), "{log}");
    assert_eq!(
        readyz(&node.http).await,
        0,
        "nothing answers after the exit"
    );
}

/// The next block's time used to restart from the wall clock: a clock stepped back gave a block
/// an earlier time than its predecessor (an unprovable batch). Block times are monotonic
/// across restarts now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_time_never_goes_back_across_restarts() {
    let db = fresh_database("seq_block_time").await;
    let mut node = TestNode::start(&db, &[]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let r = c
        .submit(raw_with_work(&d, &register_tx(&d, now, &key(321))))
        .await
        .expect("submit")
        .into_inner();
    let first_block = r.block_number;
    node.terminate().expect("SIGTERM");

    // The clock "was" half an hour ahead when those blocks were sealed (within the payments'
    // validity, so the log still replays): shift their times forward.
    const AHEAD: i64 = 1_800;
    let pool = sqlx::PgPool::connect(&db).await.expect("connect");
    for sql in [
        "UPDATE blocks SET block_time = block_time + $1",
        "UPDATE transactions SET block_time = block_time + $1",
    ] {
        sqlx::query(sql)
            .bind(AHEAD)
            .execute(&pool)
            .await
            .expect("shift");
    }
    let before: i64 = sqlx::query_scalar("SELECT max(block_time) FROM blocks")
        .fetch_one(&pool)
        .await
        .expect("max time");

    node.restart().await;
    let mut c = node.client().await;
    let r = c
        .submit(raw_with_work(&d, &register_tx(&d, now, &key(322))))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(r.status, pb::TxStatus::Accepted as i32, "{r:?}");
    assert!(r.block_number > first_block);
    let url = format!("{}/v1/blocks/{}", node.http, r.block_number);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let block: serde_json::Value = loop {
        match reqwest::get(&url).await {
            Ok(resp) if resp.status().is_success() => break resp.json().await.expect("json"),
            _ => {
                assert!(std::time::Instant::now() < deadline, "block never sealed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let after = block["block_time"].as_i64().expect("block_time");
    assert!(
        after >= before,
        "block {} has time {after}, before its predecessor's {before}",
        r.block_number
    );
}

/// Secret key files readable by others are refused, as ssh does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile_dir("opkey");
    let path = dir.join("operator.key");
    std::fs::write(&path, format!("0x{}", "01".repeat(20))).expect("write key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_rollup-node"));
    let key_arg = path.to_string_lossy().into_owned();
    let (status, log) = devkit::node::NodeProcess::run_to_exit(
        binary,
        "postgres://nobody@127.0.0.1:1/none",
        &["--operator-key", &key_arg],
        Duration::from_secs(20),
    )
    .await;
    let status = status.expect("the node exits by itself");
    assert!(!status.success());
    assert!(log.contains("chmod 600"), "{log}");
}

/// A devnet database that used the faucet, started with L1 deposits, used to mark real L1
/// deposits as credited (the faucet had consumed their serials). It is refused now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faucet_database_is_refused_for_l1_deposits() {
    let db = fresh_database("seq_faucet_l1").await;
    let mut node = TestNode::start(&db, &[]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let a = register(&mut c, &d, now, &key(331)).await;
    faucet(&mut c, a, 10).await;
    node.terminate().expect("SIGTERM");
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_rollup-node"));
    let (status, log) = devkit::node::NodeProcess::run_to_exit(
        binary,
        &db,
        &["--l1-deposits"],
        Duration::from_secs(30),
    )
    .await;
    let status = status.expect("the node exits by itself");
    assert!(!status.success());
    assert!(log.contains("faucet deposits"), "{log}");
}

fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rollup-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The writer used to keep every accepted transaction id in memory forever (and recovery
/// rebuilt them all from the log), ~80 bytes per transaction. Now it keeps the ids not yet
/// durable and the last `--dedup-window` durable ones; an older resubmission is refused by the
/// rules (used nonce, registered key) and answered from Postgres with its original receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_resubmissions_are_answered_from_postgres_and_the_dedup_set_stays_bounded() {
    const WINDOW: usize = 16;
    const NEWER: u64 = 60;
    let db = fresh_database("seq_dedup_window").await;
    let window = WINDOW.to_string();
    let node = TestNode::start(&db, &["--dedup-window", &window]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ka, kb) = (key(321), key(322));
    let reg_a = register_tx(&d, now, &ka);
    let reg_first = c
        .submit(raw_with_work(&d, &reg_a))
        .await
        .expect("register")
        .into_inner();
    assert_eq!(
        reg_first.status,
        pb::TxStatus::Accepted as i32,
        "{reg_first:?}"
    );
    let a = state::account::AccountIndex(reg_first.account_index.expect("index"));
    let b = register(&mut c, &d, now, &kb).await;
    faucet(&mut c, a, 1_000).await;
    let old = transfer(&d, &ka, a, b, 5, 0, 0, now + 600);
    let first = c.submit(raw(&old)).await.expect("submit").into_inner();
    assert_eq!(first.status, pb::TxStatus::Accepted as i32, "{first:?}");
    assert!(!first.duplicate);
    for nonce in 1..=NEWER {
        let tx = transfer(&d, &ka, a, b, 1, 0, nonce, now + 600);
        let r = c.submit(raw(&tx)).await.expect("submit").into_inner();
        assert_eq!(r.status, pb::TxStatus::Accepted as i32, "{r:?}");
    }
    // Everything is durable: the in-memory set shrinks to the window.
    wait_until(Duration::from_secs(10), "the dedup set pruned", || async {
        let n = metric(&node.http, "rollup_dedup_entries").await;
        n > 0.0 && n <= WINDOW as f64
    })
    .await;

    let same = |again: &pb::Receipt, first: &pb::Receipt| {
        assert_eq!(again.status, pb::TxStatus::Accepted as i32, "{again:?}");
        assert!(again.duplicate, "{again:?}");
        assert_eq!(
            (
                &again.tx_id,
                again.seq,
                again.block_number,
                again.position,
                again.finality,
                again.account_index
            ),
            (
                &first.tx_id,
                first.seq,
                first.block_number,
                first.position,
                first.finality,
                first.account_index
            )
        );
    };
    let balances = |c: &mut rollup_proto::v1::rollup_client::RollupClient<_>| {
        let mut c = c.clone();
        async move {
            let x = account(&mut c, a).await;
            let y = account(&mut c, b).await;
            (x.balance, x.nonce, y.balance)
        }
    };
    let expected = (1_000 - 5 - NEWER, NEWER + 1, 5 + NEWER);
    assert_eq!(balances(&mut c).await, expected);

    // An old transfer and an old registration, far outside the window.
    let again = c.submit(raw(&old)).await.expect("submit").into_inner();
    same(&again, &first);
    let again = c
        .submit(raw_with_work(&d, &reg_a))
        .await
        .expect("submit")
        .into_inner();
    same(&again, &reg_first);
    assert_eq!(balances(&mut c).await, expected);
    // A stale nonce that was never accepted is still refused.
    let never = transfer(&d, &ka, a, b, 7, 0, 0, now + 600);
    let r = c.submit(raw(&never)).await.expect("submit").into_inner();
    assert_eq!(r.reason_code, "BAD_NONCE", "{r:?}");

    // After a restart nothing is rebuilt in memory; the answers are the same.
    let mut node = node;
    assert!(
        node.terminate().expect("SIGTERM").success(),
        "clean shutdown; log:\n{}",
        node.log_text()
    );
    node.restart().await;
    let mut c = node.client().await;
    assert_eq!(metric(&node.http, "rollup_dedup_entries").await, 0.0);
    let again = c.submit(raw(&old)).await.expect("submit").into_inner();
    same(&again, &first);
    let again = c
        .submit(raw_with_work(&d, &reg_a))
        .await
        .expect("submit")
        .into_inner();
    same(&again, &reg_first);
    assert_eq!(balances(&mut c).await, expected);
}
