//! Chaos: Postgres restarted and stopped under load, on a private cluster of the test's own
//! (restarting the shared server would hit every other test).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollup_proto::v1 as pb;
use state::account::AccountIndex;
use state::tx::Transaction;

use super::{readyz, wait_until};
use crate::common::*;

/// What one agent saw.
#[derive(Default)]
struct AgentLog {
    /// Accepted receipts, in nonce order.
    acked: Vec<pb::Receipt>,
    /// Refusals (UNAVAILABLE, RESOURCE_EXHAUSTED) by tx id.
    refused: HashMap<Vec<u8>, String>,
    /// A refusal claimed the payment was not accepted, and a resubmission came back as a
    /// duplicate: the claim was false.
    lied_to: Vec<String>,
    /// Answers that are neither accepted nor a clean "retry later".
    unexpected: Vec<String>,
}

/// One agent paying another, one payment at a time; a refused payment is retried unchanged
/// (same nonce, same id), as a real client would.
async fn pay_until(
    mut c: rollup_proto::v1::rollup_client::RollupClient<tonic::transport::Channel>,
    d: state::tx::Domain,
    txs: Vec<Transaction>,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<AgentLog>>,
) {
    let mut next = 0;
    while next < txs.len() && !stop.load(Ordering::Relaxed) {
        let req = raw(&txs[next]);
        let outcome = match c.submit(req).await {
            Ok(r) => {
                let r = r.into_inner();
                if r.status == pb::TxStatus::Accepted as i32 {
                    Ok(r)
                } else if matches!(r.reason_code.as_str(), "UNAVAILABLE" | "RESOURCE_EXHAUSTED") {
                    Err((r.tx_id.clone(), format!("{}: {}", r.reason_code, r.message)))
                } else {
                    log.lock().unwrap().unexpected.push(format!("{r:?}"));
                    return;
                }
            }
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::Unavailable | tonic::Code::ResourceExhausted
                ) =>
            {
                Err((Vec::new(), format!("{:?}: {}", s.code(), s.message())))
            }
            // The call's time-out (--grpc-timeout-ms) cut it while the payment waited for
            // Postgres: the outcome is unknown, and resubmitting the same payment is safe.
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
                ) =>
            {
                continue;
            }
            Err(s) => {
                log.lock().unwrap().unexpected.push(format!("{s:?}"));
                return;
            }
        };
        let refused = {
            let mut l = log.lock().unwrap();
            match outcome {
                Ok(r) => {
                    let claimed = |why: &&String| why.contains("not accepted");
                    if let Some(why) = l
                        .refused
                        .get(&r.tx_id)
                        .filter(claimed)
                        .filter(|_| r.duplicate)
                    {
                        let lie = format!("seq {} was answered {why:?} yet was durable", r.seq);
                        l.lied_to.push(lie);
                    }
                    l.acked.push(r);
                    next += 1;
                    false
                }
                Err((id, why)) => {
                    let id = if id.is_empty() {
                        // Unary errors carry no id: the payment's own id.
                        txs[next].id(&d).0.to_bytes().to_vec()
                    } else {
                        id
                    };
                    l.refused.insert(id, why);
                    true
                }
            }
        };
        if refused {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Postgres restarted (`pg_ctl stop -m fast` + start: every session cut with 57P01) and then
/// stopped for 30 s, under load. The node recovers by itself, reports not-ready while
/// Postgres is away, refuses cleanly meanwhile with bounded memory, loses no acknowledged
/// payment, applies none twice, and never tells a client "not accepted" for a payment that
/// became durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_and_stopped_under_load_loses_nothing() {
    const AGENTS: usize = 4;
    const OUTAGE: Duration = Duration::from_secs(30);
    let data_dir = std::env::temp_dir().join(format!("rollup-chaos-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut server = devkit::postgres::ensure_server(&devkit::postgres::PgOptions::private(Some(
        data_dir.clone(),
    )))
    .await
    .expect("a private Postgres cluster (initdb/pg_ctl)");
    server.set_stop_on_drop(true);
    let cluster = server.cluster().expect("a private cluster").clone();
    let db = devkit::postgres::fresh_database(server.admin_url(), "chaos")
        .await
        .expect("database");
    let node = TestNode::start(&db, &["--db-outage-limit-secs", "120"]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let keys: Vec<_> = (400..400 + AGENTS as u64).map(key).collect();
    let mut idx = Vec::new();
    for k in &keys {
        idx.push(register(&mut c, &d, now, k).await);
    }
    for &i in &idx {
        faucet(&mut c, i, 1_000_000).await;
    }
    // An agent that only pays during the outage, to see how a new payment is answered.
    let probe_key = key(499);
    let probe = register(&mut c, &d, now, &probe_key).await;

    let stop = Arc::new(AtomicBool::new(false));
    let logs: Vec<Arc<Mutex<AgentLog>>> = (0..AGENTS).map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for (n, k) in keys.iter().enumerate() {
        let to = idx[(n + 1) % AGENTS];
        let txs: Vec<Transaction> = (0..100_000)
            .map(|nonce| transfer(&d, k, idx[n], to, 1, 0, nonce, now + 3600))
            .collect();
        let client = node.client().await;
        let (stop, log) = (stop.clone(), logs[n].clone());
        tasks.push(tokio::spawn(pay_until(client, d, txs, stop, log)));
    }
    let acked = |logs: &[Arc<Mutex<AgentLog>>]| -> usize {
        logs.iter().map(|l| l.lock().unwrap().acked.len()).sum()
    };
    wait_until(
        Duration::from_secs(30),
        "load before the restart",
        || async { acked(&logs) >= 200 },
    )
    .await;

    // 1. Restart: every connection is cut; the node retries and comes back by itself.
    cluster.restart_fast().await.expect("pg restart");
    let before = acked(&logs);
    wait_until(
        Duration::from_secs(60),
        "payments accepted after the restart",
        || async { acked(&logs) >= before + 200 },
    )
    .await;
    assert_eq!(readyz(&node.http).await, 200);

    // 2. Postgres stopped for 30 s: not ready, clean refusals, bounded memory.
    cluster.stop().await.expect("pg stop");
    wait_until(Duration::from_secs(20), "/readyz turns 503", || async {
        readyz(&node.http).await == 503
    })
    .await;
    let rss_start = node.rss_kib();
    let during = acked(&logs);
    let outage_started = std::time::Instant::now();
    // The agents' payments in flight wait for Postgres (they were accepted by the writer and
    // are answered once durable); a new payment is refused at once, cleanly.
    let asked = std::time::Instant::now();
    let answer = c
        .submit(raw(&transfer(
            &d,
            &probe_key,
            probe,
            idx[0],
            1,
            0,
            0,
            now + 3600,
        )))
        .await;
    let status = answer.expect_err("a payment accepted while Postgres is down");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("DATABASE_UNAVAILABLE"),
        "{status:?}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "refusal took {:?}",
        asked.elapsed()
    );
    // Reads show durable state only: each agent has a payment accepted by the writer but not
    // durable, which an account read must not show (it answers UNAVAILABLE instead).
    for (n, &i) in idx.iter().enumerate() {
        let acked_n = logs[n].lock().unwrap().acked.len() as u64;
        match c.get_account(pb::GetAccountRequest { index: i.0 }).await {
            Ok(acc) => assert!(
                acc.get_ref().nonce <= acked_n,
                "agent {n}: a read shows nonce {} with {acked_n} durable payments",
                acc.get_ref().nonce
            ),
            Err(s) => assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}"),
        }
    }
    tokio::time::sleep(OUTAGE.saturating_sub(outage_started.elapsed())).await;
    let rss_end = node.rss_kib();
    assert_eq!(
        readyz(&node.http).await,
        503,
        "still not ready while Postgres is away"
    );
    assert!(
        acked(&logs) <= during + AGENTS,
        "payments acknowledged while Postgres was down ({} -> {})",
        during,
        acked(&logs)
    );
    assert!(
        rss_end < rss_start + 64 * 1024,
        "RSS grew from {rss_start} to {rss_end} KiB during the outage"
    );
    cluster.start_again().await.expect("pg start");
    wait_until(Duration::from_secs(60), "/readyz back to 200", || async {
        readyz(&node.http).await == 200
    })
    .await;
    let after = acked(&logs);
    wait_until(
        Duration::from_secs(60),
        "payments accepted after the outage",
        || async { acked(&logs) >= after + 200 },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("agent task");
    }

    // Every acknowledged payment is durable at its place; none applied twice; no lies.
    let mut c = node.client().await;
    let mut total = account(&mut c, AccountIndex(0)).await.balance;
    for (n, log) in logs.iter().enumerate() {
        // The agents are done: take the log out rather than hold the lock across the awaits.
        let log = std::mem::take(&mut *log.lock().unwrap());
        assert!(log.unexpected.is_empty(), "agent {n}: {:?}", log.unexpected);
        assert!(log.lied_to.is_empty(), "agent {n}: {:?}", log.lied_to);
        for r in &log.acked {
            let got = c
                .get_receipt(pb::GetReceiptRequest {
                    tx_id: r.tx_id.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("acknowledged payment lost: {e:?}"))
                .into_inner();
            assert_eq!(
                (got.seq, got.block_number, got.position),
                (r.seq, r.block_number, r.position)
            );
        }
        let acc = account(&mut c, idx[n]).await;
        assert_eq!(
            acc.nonce,
            log.acked.len() as u64,
            "agent {n}: durable payments differ from acknowledged ones"
        );
        total += acc.balance;
    }
    assert_eq!(
        account(&mut c, probe).await.nonce,
        0,
        "the refused payment was not applied"
    );
    assert_eq!(total, 1_000_000 * AGENTS as u64, "supply conserved");
    drop(node);
    drop(server);
    let _ = std::fs::remove_dir_all(&data_dir);
}
