//! The block explorer (`/explorer` and `/v1/explorer/*`), over real HTTP against a real node:
//! the page and its assets with their security headers, the lists newest first and paged
//! without gaps or repeats, an account's history, a batch's L1 transactions once the bridge
//! recorded them, and a problem body for every unknown or malformed input. The page itself is
//! tested in a real browser by interop/explorer/run.sh.

use std::time::{Duration, Instant};

use rollup_storage::l1::{set_l1_tx, NewL1Batch};
use rollup_storage::{BatchStatus, Store, SubmissionKind};
use serde_json::Value;

use crate::common::*;

async fn get(url: &str) -> (u16, String, Value) {
    let r = reqwest::get(url).await.expect("HTTP request");
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, ctype, body)
}

async fn ok(url: &str) -> Value {
    let (status, _, body) = get(url).await;
    assert_eq!(status, 200, "{url}: {body}");
    body
}

/// Polls `url` until `check` holds (a block or batch gets sealed a few intervals later).
async fn until(url: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = get(url).await;
        if status == 200 && check(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{what}: last answer {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|t| t["tx_id"].as_str().expect("tx_id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_with_a_self_only_policy() {
    let db = fresh_database("explorer_page").await;
    let node = TestNode::start(&db, &[]).await;
    for (path, ctype) in [
        ("/explorer", "text/html"),
        ("/explorer/app.js", "text/javascript"),
        ("/explorer/style.css", "text/css"),
        ("/explorer/favicon.svg", "image/svg+xml"),
    ] {
        let r = reqwest::get(format!("{}{path}", node.http)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(ctype),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        for directive in [
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(h["x-content-type-options"], "nosniff");
        let body = r.text().await.unwrap();
        // Nothing is fetched from elsewhere: no absolute URL in any asset (the SVG namespace
        // is an identifier, not a fetch).
        let external = body
            .replace("http://www.w3.org/2000/svg", "")
            .contains("://");
        assert!(!external, "{path} names an external URL");
    }
    let page = reqwest::get(format!("{}/explorer", node.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"src="/explorer/app.js""#));
    assert!(
        !page.contains("<script>"),
        "no inline script (the CSP forbids it)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_batches_and_histories_are_listed_newest_first_and_paged() {
    let db = fresh_database("explorer_lists").await;
    let node = TestNode::start(
        &db,
        &[
            "--block-interval-ms",
            "50",
            "--batch-max-blocks",
            "2",
            "--explorer-l1-tx-url",
            "https://l1.example/tx/{tx}",
        ],
    )
    .await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ka, kb) = (key(41), key(42));
    let a = register(&mut c, &d, now, &ka).await;
    let b = register(&mut c, &d, now, &kb).await;
    faucet(&mut c, a, 1_000_000).await;
    let mut paid = Vec::new();
    for n in 0..5u64 {
        let tx = transfer(&d, &ka, a, b, 100 + n, 1, n, now + 600);
        let r = c.submit(raw(&tx)).await.unwrap().into_inner();
        assert_eq!(r.reason_code, "", "{r:?}");
        paid.push(format!("0x{}", hex::encode(&r.tx_id)));
        tokio::time::sleep(Duration::from_millis(80)).await; // spread over several blocks
    }
    let base = format!("{}/v1/explorer", node.http);

    // The summary: head, counters, newest blocks, where the bridge feed is.
    let s = until(&format!("{base}/summary"), "summary with blocks", |s| {
        s["blocks"].as_array().is_some_and(|b| b.len() >= 2) && s["batches"][0].is_object()
    })
    .await;
    assert!(s["head_block"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!(
        s["accepted_txs"], 8,
        "2 registrations, a deposit, 5 payments: {s}"
    );
    assert_eq!(s["num_accounts"], 3, "{s}");
    assert_eq!(
        s["l1_tx_url"], "https://l1.example/tx/{tx}",
        "the flag reaches the page"
    );
    assert!(s["tps"].as_f64().unwrap() > 0.0, "{s}");
    assert!(s["event_kinds"]
        .as_array()
        .unwrap()
        .contains(&Value::from("batch_finalized")));
    let numbers: Vec<u64> = s["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["number"].as_u64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] > w[1]), "{numbers:?}");

    // Blocks, one per page: every sealed block exactly once, newest first.
    let mut seen = Vec::new();
    let mut url = format!("{base}/blocks?limit=1");
    loop {
        let page = ok(&url).await;
        seen.extend(
            page["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["number"].as_u64().unwrap()),
        );
        match page["next_before"].as_u64() {
            Some(n) => url = format!("{base}/blocks?limit=1&before={n}"),
            None => break,
        }
    }
    let all_blocks = ok(&format!("{base}/blocks?limit=100")).await;
    let expected: Vec<u64> = all_blocks["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["number"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(seen.last(), Some(&1));

    // The account's history: newest first, paged by seq, the registration last.
    let acc = ok(&format!("{base}/accounts/{}?limit=3", a.0)).await;
    assert_eq!(
        acc["balance"],
        1_000_000 - (100 + 101 + 102 + 103 + 104) - 5
    );
    assert_eq!(acc["nonce"], 5);
    let mut history = ids(&acc["txs"]);
    let mut before = acc["next_before"].as_u64();
    while let Some(seq) = before {
        let page = ok(&format!("{base}/accounts/{}/txs?limit=3&before={seq}", a.0)).await;
        history.extend(ids(&page["txs"]));
        before = page["next_before"].as_u64();
    }
    let newest_first: Vec<String> = paid.iter().rev().cloned().collect();
    assert_eq!(history[..5], newest_first[..], "payments, newest first");
    assert_eq!(
        history.len(),
        7,
        "5 payments, the deposit, the registration"
    );
    let full = ok(&format!("{base}/accounts/{}/txs?limit=100", a.0)).await;
    assert_eq!(ids(&full["txs"]), history);
    assert_eq!(full["txs"][6]["tx"]["kind"], "register");
    assert_eq!(full["txs"][6]["account_index"], a.0);
    assert_eq!(full["txs"][5]["tx"]["kind"], "deposit");
    assert_eq!(full["txs"][0]["tx"]["amount"], 104);
    // The payee sees the payments too, and only what touched it.
    let payee = ok(&format!("{base}/accounts/{}/txs?limit=100", b.0)).await;
    assert_eq!(
        ids(&payee["txs"]).len(),
        6,
        "5 payments and its registration"
    );

    // A payment: its block, its batch once sealed, decoded.
    let last = &paid[4];
    let t = until(&format!("{base}/txs/{last}"), "tx in a batch", |t| {
        t["batch"].is_object()
    })
    .await;
    assert_eq!(t["tx"]["kind"], "transfer");
    assert_eq!(t["tx"]["from"], a.0);
    assert_eq!(t["finality"], "accepted");
    assert_eq!(t["batch"]["status"], "sealed");
    assert!(t["raw"].as_str().unwrap().starts_with("0x"));
    let block_n = t["block_number"].as_u64().unwrap();
    let blk = ok(&format!("{base}/blocks/{block_n}")).await;
    assert!(ids(&blk["txs"]).contains(last), "{blk}");
    assert_eq!(blk["batch"], t["batch"]["number"]);
    // One page of a block at a time.
    let first_block = ok(&format!("{base}/blocks/1?limit=1")).await;
    assert_eq!(first_block["txs"].as_array().unwrap().len(), 1);
    if first_block["tx_count"].as_u64().unwrap() > 1 {
        assert_eq!(first_block["next_offset"], 1);
    }

    // Batches, newest first; batch 1's finality moves as the bridge records it on L1.
    let batches = ok(&format!("{base}/batches?limit=100")).await;
    let list = batches["batches"].as_array().unwrap();
    assert!(!list.is_empty());
    assert_eq!(list.last().unwrap()["number"], 1);
    assert!(
        list[0]["number"].as_u64() > list.last().unwrap()["number"].as_u64() || list.len() == 1
    );
    let b1 = ok(&format!("{base}/batches/1")).await;
    assert_eq!(b1["status"], "sealed");
    assert_eq!(b1["commit_tx"], Value::Null);
    assert_eq!(b1["first_block"], 1);

    let store = Store::connect_pool(&db, 1, Duration::from_secs(5))
        .await
        .unwrap();
    use BatchStatus::*;
    for (from, to) in [(Sealed, Proving), (Proving, Proven)] {
        assert!(store.batches().transition(1, from, to, None).await.unwrap());
    }
    store
        .l1()
        .upsert_l1_batch(&NewL1Batch {
            batch_number: 1,
            header: &[1, 2, 3],
            pubdata_hash: [1; 32],
            statement: [2; 32],
            withdrawals_root: [3; 32],
            payouts: &[],
        })
        .await
        .unwrap();
    let (commit, finalize) = ([0xc0; 32], [0xf1; 32]);
    let mut conn = store.pool().acquire().await.unwrap();
    set_l1_tx(&mut conn, 1, SubmissionKind::Commit, commit, 77)
        .await
        .unwrap();
    drop(conn);
    assert!(store
        .batches()
        .transition(1, Proven, Committed, None)
        .await
        .unwrap());
    let b1 = ok(&format!("{base}/batches/1")).await;
    assert_eq!(b1["status"], "committed");
    assert_eq!(b1["commit_tx"], format!("0x{}", "c0".repeat(32)));
    assert_eq!(b1["commit_block"], 77);
    assert_eq!(b1["finalize_tx"], Value::Null);
    let mut conn = store.pool().acquire().await.unwrap();
    set_l1_tx(&mut conn, 1, SubmissionKind::Finalize, finalize, 78)
        .await
        .unwrap();
    drop(conn);
    assert!(store
        .batches()
        .transition(1, Committed, Finalized, None)
        .await
        .unwrap());
    let b1 = ok(&format!("{base}/batches/1")).await;
    assert_eq!(b1["status"], "finalized");
    assert_eq!(b1["finality"], "finalized");
    assert_eq!(b1["finalize_tx"], format!("0x{}", "f1".repeat(32)));
    assert_eq!(b1["finalize_block"], 78);
    // Its transactions say so, with the batch's L1 transactions.
    let reg = &full["txs"][6]["tx_id"];
    let t = ok(&format!("{base}/txs/{}", reg.as_str().unwrap())).await;
    assert_eq!(t["finality"], "finalized");
    assert_eq!(t["batch"]["number"], 1);
    assert_eq!(t["batch"]["commit_tx"], b1["commit_tx"]);
    let s = ok(&format!("{base}/summary")).await;
    assert_eq!(s["batches_progress"]["finalized"], 1, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_input_get_problem_bodies() {
    let db = fresh_database("explorer_bad").await;
    let node = TestNode::start(&db, &[]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let a = register(&mut c, &d, now, &key(43)).await;
    let base = format!("{}/v1/explorer", node.http);
    let zero_id = format!("0x{}", "00".repeat(32));
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("txs/{zero_id}"), 404, "UNKNOWN_TRANSACTION"),
        ("accounts/4000000000".into(), 404, "UNKNOWN_ACCOUNT"),
        ("accounts/4000000000/txs".into(), 404, "UNKNOWN_ACCOUNT"),
        ("blocks/999999".into(), 404, "UNKNOWN_BLOCK"),
        ("batches/999999".into(), 404, "UNKNOWN_BATCH"),
        ("txs/0x1234".into(), 400, "MALFORMED"),
        (format!("txs/0x{}", "zz".repeat(32)), 400, "MALFORMED"),
        ("txs/nonsense".into(), 400, "MALFORMED"),
        ("accounts/abc".into(), 400, "MALFORMED"),
        ("accounts/-1".into(), 400, "MALFORMED"),
        ("accounts/4294967296".into(), 400, "MALFORMED"),
        ("blocks/x".into(), 400, "MALFORMED"),
        ("blocks/-3".into(), 400, "MALFORMED"),
        ("batches/1.5".into(), 400, "MALFORMED"),
        ("blocks?before=x".into(), 400, "MALFORMED"),
        ("batches?before=-1".into(), 400, "MALFORMED"),
        (
            format!("accounts/{}/txs?before=soon", a.0),
            400,
            "MALFORMED",
        ),
        ("blocks?limit=0".into(), 400, "VALUE_OUT_OF_RANGE"),
        ("batches?limit=101".into(), 400, "VALUE_OUT_OF_RANGE"),
        ("summary?limit=1000".into(), 400, "VALUE_OUT_OF_RANGE"),
        ("blocks?limit=ten".into(), 400, "MALFORMED"),
        (format!("accounts/{}?before=3", a.0), 400, "MALFORMED"),
    ];
    for (path, status, code) in cases {
        let (got, ctype, body) = get(&format!("{base}/{path}")).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(ctype, "application/problem+json", "{path}");
        assert_eq!(body["title"], code, "{path}: {body}");
        assert_eq!(body["status"], status, "{path}");
        assert!(!body["detail"].as_str().unwrap_or("").is_empty(), "{path}");
    }
    // Existing things still answer: the account exists, with an empty history but for its
    // registration; an empty page of blocks is a list, not an error.
    let acc = ok(&format!("{base}/accounts/{}", a.0)).await;
    assert_eq!(acc["txs"].as_array().unwrap().len(), 1);
    assert_eq!(acc["next_before"], Value::Null);
    let none = ok(&format!("{base}/blocks?before=1")).await;
    assert_eq!(none["blocks"], serde_json::json!([]));
}
