//! Spam and abuse control: every limit answers RESOURCE_EXHAUSTED with its limit code (or, for
//! connections, closes them), and nothing past a limit is applied.

use std::time::Duration;

use futures::StreamExt;
use rollup_proto::v1 as pb;
use rollup_proto::v1::bridge_events_client::BridgeEventsClient;
use rollup_proto::v1::rollup_client::RollupClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

fn limit_of(s: &tonic::Status) -> String {
    s.metadata()
        .get("limit")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The per-account rate (after verification) and the verification queue (before it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_and_verification_limits_refuse_with_their_code() {
    let db = fresh_database("seq_limit_rate").await;
    let node = TestNode::start(&db, &["--account-rate", "5", "--verify-queue", "1"]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ka, kb) = (key(501), key(502));
    let a = register(&mut c, &d, now, &ka).await;
    let b = register(&mut c, &d, now, &kb).await;
    faucet(&mut c, a, 1_000_000).await;

    // 200 payments on one stream: verification runs for many at once, one slot is free.
    let txs: Vec<_> = (0..200)
        .map(|n| raw(&transfer(&d, &ka, a, b, 1, 0, n, now + 600)))
        .collect();
    let mut receipts = c
        .payment_stream(futures::stream::iter(txs))
        .await
        .expect("stream")
        .into_inner();
    // Receipts come back in submission order. A payment refused by a limit leaves its nonce
    // unused, so a later payment that passes every limit is refused for its nonce: BAD_NONCE
    // is the right answer there, and only there (never before the first limit refusal).
    let (mut accepted, mut by_limit) = (0u64, std::collections::HashMap::<String, u64>::new());
    let mut first_limited = None;
    let mut position = 0u64;
    while let Some(r) = receipts.next().await {
        let r = r.expect("receipt");
        if r.status == pb::TxStatus::Accepted as i32 {
            assert!(
                first_limited.is_none(),
                "payment {position} accepted past a gap: {r:?}"
            );
            accepted += 1;
        } else if r.reason_code == "BAD_NONCE" {
            assert!(
                first_limited.is_some_and(|f| f < position),
                "payment {position}: BAD_NONCE without an earlier limit refusal: {r:?}"
            );
        } else {
            assert_eq!(r.reason_code, "RESOURCE_EXHAUSTED", "{r:?}");
            first_limited.get_or_insert(position);
            let code = r.message.split(':').next().unwrap_or("").to_string();
            *by_limit.entry(code).or_default() += 1;
        }
        position += 1;
    }
    assert_eq!(position, 200, "one receipt per payment");
    assert!(
        by_limit.get("VERIFY_QUEUE_FULL").copied().unwrap_or(0) > 0,
        "{by_limit:?}"
    );
    // Bursts of twice the rate: at most ~10 in the first instant, a few more as it refills.
    assert!(accepted <= 30, "{accepted} accepted at 5/s");
    // A unary call over the account's rate: a status with the limit code.
    // The verification queue holds one payment: on a loaded machine it may still be busy
    // from the burst above, and VERIFY_QUEUE_FULL (nothing applied) says nothing about the
    // account's rate, so the same payment is sent again, within a deadline.
    let mut refused = None;
    let mut n = accepted;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while n < accepted + 40 {
        match c
            .submit(raw(&transfer(&d, &ka, a, b, 1, 0, n, now + 600)))
            .await
        {
            Err(s) if limit_of(&s) == "VERIFY_QUEUE_FULL" => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the verification queue stayed full for 30 s: {s:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => {
                refused = Some(s);
                break;
            }
            Ok(r) => {
                assert_eq!(r.into_inner().status, pb::TxStatus::Accepted as i32);
                n += 1;
            }
        }
    }
    let s = refused.expect("the account rate refuses a unary call");
    assert_eq!(s.code(), tonic::Code::ResourceExhausted);
    assert_eq!(limit_of(&s), "ACCOUNT_RATE_LIMITED", "{s:?}");
    // Whatever was refused was not applied: balance and nonce agree.
    let acc = account(&mut c, a).await;
    assert_eq!(acc.balance, 1_000_000 - acc.nonce);
}

/// Streams per connection (HTTP/2 SETTINGS), calls in flight per peer, connections per peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_call_and_connection_limits_hold() {
    let db = fresh_database("seq_limit_conn").await;
    let node = TestNode::start(
        &db,
        &[
            "--grpc-max-streams-per-connection",
            "2",
            "--max-rpcs-per-peer",
            "3",
            "--grpc-max-connections-per-peer",
            "2",
        ],
    )
    .await;
    let watch = |account: u32| pb::WatchReceiptsRequest {
        account,
        from_seq: None,
    };
    let channel = || async {
        tonic::transport::Channel::from_shared(node.grpc.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    };
    let connect = || async { RollupClient::new(channel().await) };
    let in_flight = |n: f64| {
        let http = node.http.clone();
        async move {
            super::wait_until(Duration::from_secs(10), "calls in flight settle", || {
                let http = http.clone();
                async move { super::metric(&http, "rollup_rpcs_in_flight").await == n }
            })
            .await
        }
    };
    // Calls in flight per peer: two streams on connection A, one on B, the fourth refused.
    let mut a = connect().await;
    let b_channel = channel().await;
    let mut b = RollupClient::new(b_channel.clone());
    let w1 = a.watch_receipts(watch(1)).await.expect("w1");
    let w2 = a.watch_receipts(watch(2)).await.expect("w2");
    let w3 = b.watch_receipts(watch(3)).await.expect("w3");
    in_flight(3.0).await;
    let s = b
        .watch_receipts(watch(4))
        .await
        .expect_err("a fourth call in flight from one peer");
    assert_eq!(s.code(), tonic::Code::ResourceExhausted, "{s:?}");
    assert_eq!(limit_of(&s), "PEER_RPCS_LIMITED", "{s:?}");
    drop(w3);
    in_flight(2.0).await;
    // The bridge feed's Watch stream counts against the same per-peer limit.
    let mut feed = BridgeEventsClient::new(b_channel.clone());
    let f1 = feed
        .watch(pb::WatchBridgeEventsRequest { cursor: 0 })
        .await
        .expect("a feed watcher within the limit");
    in_flight(3.0).await;
    let s = feed
        .watch(pb::WatchBridgeEventsRequest { cursor: 0 })
        .await
        .expect_err("a fourth stream from one peer, on the feed");
    assert_eq!(s.code(), tonic::Code::ResourceExhausted, "{s:?}");
    assert_eq!(limit_of(&s), "PEER_RPCS_LIMITED", "{s:?}");
    drop(f1);
    in_flight(2.0).await;

    // Streams per connection: A holds two; a third waits for a free slot.
    let mut a3 = a.clone();
    let third = tokio::spawn(async move { a3.watch_receipts(watch(5)).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !third.is_finished(),
        "a third concurrent stream was opened on one connection"
    );
    drop(w1);
    tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("the third stream opens once a slot frees")
        .expect("task")
        .expect("stream 5");
    drop(w2);

    // Connections per peer: A and B are open; a third from the same address is closed.
    let third_conn = async {
        let mut c = RollupClient::connect(node.grpc.clone()).await?;
        c.get_status(pb::GetStatusRequest {})
            .await
            .map_err(|s| Box::new(s) as Box<dyn std::error::Error + Send + Sync>)?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    };
    let r = tokio::time::timeout(Duration::from_secs(10), third_conn)
        .await
        .expect("answered or closed, not hung");
    assert!(r.is_err(), "a third connection from one peer was served");
    let metrics = reqwest::get(format!("{}/metrics", node.http))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("rollup_connections_refused_total{listener=\"grpc\",limit=\"per_peer\"}"),
        "{metrics}"
    );
}

/// A client that never finishes its headers is disconnected; list endpoints are paged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_and_block_lists_are_paged() {
    let db = fresh_database("seq_limit_http").await;
    let node = TestNode::start(&db, &["--http-header-timeout-ms", "300"]).await;
    let addr = node.http.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("partial headers");
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
        .await
        .expect("the server closes a slow connection")
        .unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        n == 0 || answer.starts_with("HTTP/1.1 408"),
        "slow headers got {answer:?}"
    );

    // Five transactions in one block, listed two at a time.
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let txs: Vec<_> = (0..5u64)
        .map(|i| raw_with_work(&d, &register_tx(&d, now, &key(600 + i))))
        .collect();
    let mut receipts = c
        .payment_stream(futures::stream::iter(txs))
        .await
        .expect("stream")
        .into_inner();
    let mut blocks = std::collections::BTreeMap::<u64, usize>::new();
    while let Some(r) = receipts.next().await {
        let r = r.expect("receipt");
        assert_eq!(r.status, pb::TxStatus::Accepted as i32, "{r:?}");
        *blocks.entry(r.block_number).or_default() += 1;
    }
    let (&number, &count) = blocks.iter().max_by_key(|(_, c)| **c).expect("a block");
    let get = |q: String| {
        let url = format!("{}/v1/blocks/{number}{q}", node.http);
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            loop {
                let resp = reqwest::get(&url).await.expect("GET");
                if resp.status() != 404 {
                    let code = resp.status().as_u16();
                    return (
                        code,
                        resp.json::<serde_json::Value>().await.unwrap_or_default(),
                    );
                }
                assert!(std::time::Instant::now() < deadline, "block never sealed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (code, first) = get("?limit=2".into()).await;
    assert_eq!(code, 200);
    assert_eq!(first["tx_ids"].as_array().map(Vec::len), Some(2.min(count)));
    let mut all: Vec<serde_json::Value> = first["tx_ids"].as_array().cloned().unwrap_or_default();
    let mut next = first["next_offset"].as_u64();
    while let Some(offset) = next {
        let (code, page) = get(format!("?offset={offset}&limit=2")).await;
        assert_eq!(code, 200);
        all.extend(page["tx_ids"].as_array().cloned().unwrap_or_default());
        next = page["next_offset"].as_u64();
    }
    assert_eq!(all.len(), count, "every id once across the pages");
    for bad in ["?limit=0", "?limit=1001"] {
        let (code, body) = get(bad.into()).await;
        assert_eq!(code, 400, "{bad}");
        assert_eq!(body["title"], "VALUE_OUT_OF_RANGE");
    }
}

/// The registration proof of work (docs/API.md, "Registration"), from the attacker's side: a
/// validly signed Register without work, with too little, or with work done for another key is
/// refused before its signature is checked, and creates no account; with valid work it is
/// accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_without_valid_work_is_refused_before_verification() {
    use rollup_proto::work::{solve, work_ok};
    use state::account::Timestamp;
    use state::tx::UnsignedRegister;

    const BITS: u32 = 16;
    let db = fresh_database("seq_limit_work").await;
    let node = TestNode::start(&db, &["--registration-work-bits", "16"]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let reader = c.clone();
    let status = || {
        let mut c = reader.clone();
        async move {
            c.get_status(pb::GetStatusRequest {})
                .await
                .expect("status")
                .into_inner()
        }
    };
    let before = status().await;
    assert_eq!(before.registration_work_bits, BITS, "the status tells SDKs");
    let http: serde_json::Value = reqwest::get(format!("{}/v1/status", node.http))
        .await
        .expect("GET /v1/status")
        .json()
        .await
        .expect("json");
    assert_eq!(http["registration_work_bits"], BITS);

    let (victim, other) = (key(701), key(702));
    let pk = victim.public_key().to_bytes();
    let tx = register_tx(&d, now, &victim);
    let with_nonce = |n: u64| pb::SubmitRequest {
        work_nonce: n,
        ..raw(&tx)
    };
    // Work that does not count, each checked to be invalid for this key and these bits.
    let none = (0u64..).find(|&n| !work_ok(&d, &pk, n, BITS)).unwrap();
    let too_little = solve(&d, &pk, 6);
    let for_other_key = solve(&d, &other.public_key().to_bytes(), BITS);
    let other_domain = state::tx::Domain {
        chain_id: d.chain_id + 1,
        ..d
    };
    let for_other_chain = solve(&other_domain, &pk, BITS);
    for (what, n) in [
        ("no work", none),
        ("6 bits", too_little),
        ("another key's work", for_other_key),
        ("another chain's work", for_other_chain),
    ] {
        assert!(
            !work_ok(&d, &pk, n, BITS),
            "{what}: nonce {n} happens to be valid"
        );
        let s = c
            .submit(with_nonce(n))
            .await
            .expect_err("refused for its work");
        assert_eq!(s.code(), tonic::Code::ResourceExhausted, "{what}: {s:?}");
        assert_eq!(limit_of(&s), "REGISTRATION_WORK_REQUIRED", "{what}: {s:?}");
        assert_eq!(
            s.metadata()
                .get("reason-code")
                .and_then(|v| v.to_str().ok()),
            Some("RESOURCE_EXHAUSTED")
        );
        assert!(
            s.message().contains("REGISTRATION_WORK_REQUIRED"),
            "{what}: {}",
            s.message()
        );
    }
    // Checked before the signature: a forged Register (the victim's key, signed by another)
    // without work is refused for its work, not verified.
    let forged = state::tx::Transaction::Register(
        UnsignedRegister {
            pubkey: victim.public_key(),
            valid_until: Timestamp::new(now + 3600).unwrap(),
        }
        .sign(&d, &other),
    );
    let s = c
        .submit(pb::SubmitRequest {
            work_nonce: none,
            ..raw(&forged)
        })
        .await
        .expect_err("refused for its work");
    assert_eq!(limit_of(&s), "REGISTRATION_WORK_REQUIRED", "{s:?}");
    // On a stream: a RESOURCE_EXHAUSTED receipt whose message starts with the code.
    let mut receipts = c
        .payment_stream(futures::stream::iter([with_nonce(none)]))
        .await
        .expect("stream")
        .into_inner();
    let r = receipts.next().await.expect("a receipt").expect("receipt");
    assert_eq!(r.reason_code, "RESOURCE_EXHAUSTED", "{r:?}");
    assert!(
        r.message.starts_with("REGISTRATION_WORK_REQUIRED:"),
        "{r:?}"
    );

    // Nothing changed, and every refusal was counted.
    let after = status().await;
    assert_eq!(after.num_accounts, before.num_accounts);
    assert_eq!(after.accepted_txs, before.accepted_txs);
    let metrics = reqwest::get(format!("{}/metrics", node.http))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics");
    let limited = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rollup_limited_total{limit=\"REGISTRATION_WORK_REQUIRED\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert_eq!(limited, Some(6.0), "{metrics}");

    // With valid work the forged one reaches verification (and fails it), the real one is
    // accepted.
    let n = solve(&d, &pk, BITS);
    let r = c
        .submit(pb::SubmitRequest {
            work_nonce: n,
            ..raw(&forged)
        })
        .await
        .expect("verified")
        .into_inner();
    assert_eq!(r.reason_code, "BAD_SIGNATURE", "{r:?}");
    let r = c
        .submit(with_nonce(n))
        .await
        .expect("accepted")
        .into_inner();
    assert_eq!(r.status, pb::TxStatus::Accepted as i32, "{r:?}");
    assert!(r.account_index.is_some(), "{r:?}");
    // The status counts accounts as of the head block (sealed within --block-interval-ms).
    super::wait_until(
        Duration::from_secs(10),
        "the new account in the status",
        || {
            let status = status();
            async move { status.await.num_accounts == before.num_accounts + 1 }
        },
    )
    .await;
}
