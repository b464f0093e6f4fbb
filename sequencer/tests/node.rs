//! End-to-end tests of `rollup-node` against a real Postgres, over real gRPC and HTTP.

mod agents;
mod common;
mod explorer;
mod operations;
mod streams;
mod x402;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use rollup_proto::v1 as pb;
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::tx::Transaction;

fn accepted(r: &pb::Receipt) -> bool {
    r.status == pb::TxStatus::Accepted as i32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_are_accepted_durable_and_queryable() {
    let db = fresh_database("seq_pay").await;
    let node = TestNode::start(&db, &[]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ka, kb) = (key(1), key(2));
    let a = register(&mut c, &d, now, &ka).await;
    let b = register(&mut c, &d, now, &kb).await;
    assert_ne!(a, b);
    faucet(&mut c, a, 1_000).await;

    let tx = transfer(&d, &ka, a, b, 250, 5, 0, now + 600);
    let r = c.submit(raw(&tx)).await.unwrap().into_inner();
    assert!(accepted(&r), "{r:?}");
    assert_eq!(r.finality, pb::Finality::Accepted as i32);
    assert_eq!(r.tx_id, tx.id(&d).0.to_bytes().to_vec());
    assert!(r.block_number >= 1 && r.seq >= 1);

    assert_eq!(account(&mut c, a).await.balance, 745);
    assert_eq!(account(&mut c, a).await.nonce, 1);
    assert_eq!(account(&mut c, b).await.balance, 250);
    assert_eq!(
        account(&mut c, AccountIndex(0)).await.balance,
        5,
        "fee to the operator"
    );

    // Durable receipt by id, over gRPC and HTTP.
    let got = c
        .get_receipt(pb::GetReceiptRequest {
            tx_id: r.tx_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (got.seq, got.block_number, got.position),
        (r.seq, r.block_number, r.position)
    );
    let http: serde_json::Value =
        reqwest::get(format!("{}/v1/txs/0x{}", node.http, hex::encode(&r.tx_id)))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(http["tx"]["amount"], 250);
    assert_eq!(http["tx"]["kind"], "transfer");
    let acc: serde_json::Value = reqwest::get(format!("{}/v1/accounts/{}", node.http, b.0))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(acc["balance"], 250);

    // The block gets sealed one block interval after its first transaction and lists it.
    let url = format!("{}/v1/blocks/{}", node.http, r.block_number);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let block: serde_json::Value = loop {
        let resp = reqwest::get(&url).await.unwrap();
        if resp.status().is_success() {
            break resp.json().await.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "block {} never sealed",
            r.block_number
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ids = block["tx_ids"].as_array().unwrap();
    assert!(ids
        .iter()
        .any(|i| i == &serde_json::json!(format!("0x{}", hex::encode(&r.tx_id)))));
    let missing = reqwest::get(format!("{}/v1/blocks/999999", node.http))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );

    // Metrics expose the accepted counter and block height.
    let metrics = reqwest::get(format!("{}/metrics", node.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("rollup_txs_accepted_total"), "{metrics}");
    assert!(metrics.contains("rollup_block_height"));
    assert!(metrics.contains("rollup_commit_latency_seconds"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmission_returns_the_original_receipt_and_applies_once() {
    let db = fresh_database("seq_idem").await;
    let node = TestNode::start(&db, &[]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ka, kb) = (key(3), key(4));
    let a = register(&mut c, &d, now, &ka).await;
    let b = register(&mut c, &d, now, &kb).await;
    faucet(&mut c, a, 100).await;
    let tx = transfer(&d, &ka, a, b, 10, 0, 0, now + 600);
    let first = c.submit(raw(&tx)).await.unwrap().into_inner();
    assert!(accepted(&first) && !first.duplicate);
    for _ in 0..3 {
        let again = c.submit(raw(&tx)).await.unwrap().into_inner();
        assert!(accepted(&again) && again.duplicate, "{again:?}");
        assert_eq!(
            (again.seq, again.block_number, again.position),
            (first.seq, first.block_number, first.position)
        );
    }
    // Through the structured form too: same id, same receipt.
    let Transaction::Transfer(t) = tx else {
        unreachable!()
    };
    let structured = pb::SubmitRequest {
        tx: Some(pb::submit_request::Tx::Transfer(pb::Transfer {
            from: t.from.0,
            to: t.to.0,
            amount: t.amount.get(),
            fee: t.fee.get(),
            nonce: t.nonce.get(),
            valid_until: t.valid_until.get(),
            signature: t.signature.to_bytes().to_vec(),
        })),
        work_nonce: 0,
    };
    let again = c.submit(structured).await.unwrap().into_inner();
    assert!(again.duplicate && again.seq == first.seq);
    assert_eq!(account(&mut c, a).await.balance, 90);
    assert_eq!(account(&mut c, b).await.balance, 10);
    assert_eq!(account(&mut c, a).await.nonce, 1);

    // Also after a restart (older resubmissions are answered from Postgres).
    let mut node = node;
    assert!(
        node.terminate().expect("SIGTERM").success(),
        "clean shutdown; log:\n{}",
        node.log_text()
    );
    node.restart().await;
    let mut c = node.client().await;
    let again = c.submit(raw(&tx)).await.unwrap().into_inner();
    assert!(again.duplicate && again.seq == first.seq, "{again:?}");
    assert_eq!(account(&mut c, b).await.balance, 10);
}

/// A payment stream's requests are verified, applied and made durable in groups (of what has
/// arrived, up to 64); each still gets its own receipt, in the order sent, and they are applied
/// in that order: consecutive nonces of one sender across groups all pass, a repeat inside a
/// group is a duplicate of the first, and refusals answer only their own request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_stream_answers_each_request_in_order() {
    #[derive(Debug)]
    enum Expect {
        Accepted,
        Duplicate(usize),
        Rejected(&'static str),
    }
    let db = fresh_database("seq_stream_order").await;
    let node = TestNode::start(&db, &[]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ka, kb) = (key(5), key(6));
    let a = register(&mut c, &d, now, &ka).await;
    let b = register(&mut c, &d, now, &kb).await;
    faucet(&mut c, a, 1_000_000).await;
    let mut sent: Vec<(Transaction, Expect)> = Vec::new();
    for n in 0..300u64 {
        sent.push((
            transfer(&d, &ka, a, b, 10, 1, n, now + 600),
            Expect::Accepted,
        ));
        if n == 10 {
            let first = sent.len() - 1;
            sent.push((sent[first].0.clone(), Expect::Duplicate(first)));
        }
        if n == 100 {
            let skipped = transfer(&d, &ka, a, b, 10, 1, n + 5, now + 600);
            sent.push((skipped, Expect::Rejected("BAD_NONCE")));
        }
        if n == 200 {
            let overspend = transfer(&d, &ka, a, b, 5_000_000, 1, n + 1, now + 600);
            sent.push((overspend, Expect::Rejected("INSUFFICIENT_BALANCE")));
        }
    }
    let reqs: Vec<_> = sent.iter().map(|(t, _)| raw(t)).collect();
    let mut inbound = c
        .payment_stream(futures::stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let mut receipts = Vec::new();
    while let Some(r) = inbound.message().await.unwrap() {
        receipts.push(r);
    }
    assert_eq!(receipts.len(), sent.len(), "one receipt per request");
    let mut last_seq = 0;
    for (i, ((tx, expect), r)) in sent.iter().zip(&receipts).enumerate() {
        assert_eq!(
            r.tx_id,
            tx.id(&d).0.to_bytes().to_vec(),
            "receipt {i} in order"
        );
        match expect {
            Expect::Accepted => {
                assert!(accepted(r) && !r.duplicate, "{i}: {r:?}");
                assert!(r.seq > last_seq, "{i}: applied in the order sent");
                last_seq = r.seq;
            }
            Expect::Duplicate(first) => {
                assert!(accepted(r) && r.duplicate, "{i}: {r:?}");
                assert_eq!(r.seq, receipts[*first].seq, "{i}: the original's receipt");
            }
            Expect::Rejected(code) => {
                assert_eq!(r.status, pb::TxStatus::Rejected as i32, "{i}: {r:?}");
                assert_eq!(r.reason_code, *code, "{i}");
            }
        }
    }
    let payer = account(&mut c, a).await;
    assert_eq!((payer.nonce, payer.balance), (300, 1_000_000 - 300 * 11));
    assert_eq!(account(&mut c, b).await.balance, 3_000);
}

/// Each bad input gets its own reason and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_with_a_reason_and_changes_nothing() {
    let db = fresh_database("seq_bad").await;
    let node = TestNode::start(&db, &["--max-message-bytes", "1024"]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ka, kb) = (key(5), key(6));
    let a = register(&mut c, &d, now, &ka).await;
    let b = register(&mut c, &d, now, &kb).await;
    faucet(&mut c, a, 1_000).await;
    let before = c
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let bal = |acc: pb::Account| (acc.balance, acc.nonce);
    let a_before = bal(account(&mut c, a).await);
    let b_before = bal(account(&mut c, b).await);

    // Rule violations: a REJECTED receipt with the rule's code.
    let valid = transfer(&d, &ka, a, b, 10, 0, 0, now + 600);
    let mut forged_bytes = valid.encode();
    let last = forged_bytes.len() - 45; // inside s, keeps it canonical in practice
    forged_bytes[last] ^= 1;
    let cases: Vec<(&str, Transaction)> = vec![
        (
            "BAD_SIGNATURE",
            transfer(&d, &kb, a, b, 10, 0, 0, now + 600),
        ), // signed by another key
        ("BAD_NONCE", transfer(&d, &ka, a, b, 10, 0, 7, now + 600)),
        (
            "INSUFFICIENT_BALANCE",
            transfer(&d, &ka, a, b, 5_000, 0, 0, now + 600),
        ),
        (
            "UNKNOWN_ACCOUNT",
            transfer(&d, &ka, a, AccountIndex(9_999), 10, 0, 0, now + 600),
        ),
        ("ZERO_AMOUNT", transfer(&d, &ka, a, b, 0, 0, 0, now + 600)),
        (
            "EXPIRED",
            transfer(&d, &ka, a, b, 10, 0, 0, now.saturating_sub(120)),
        ),
        (
            "SELF_TRANSFER",
            transfer(&d, &ka, a, a, 10, 0, 0, now + 600),
        ),
    ];
    for (code, tx) in cases {
        let r = c.submit(raw(&tx)).await.unwrap().into_inner();
        assert_eq!(r.status, pb::TxStatus::Rejected as i32, "{code}: {r:?}");
        assert_eq!(r.reason_code, code, "{r:?}");
        assert!(!r.message.is_empty());
    }
    if let Ok(tx) = Transaction::decode(&forged_bytes) {
        let r = c.submit(raw(&tx)).await.unwrap().into_inner();
        assert_eq!(r.reason_code, "BAD_SIGNATURE", "flipped bit: {r:?}");
    }

    // Undecodable input: INVALID_ARGUMENT with the decoder's code.
    let mut amount_overflow = valid.encode();
    amount_overflow[9..17].copy_from_slice(&u64::MAX.to_le_bytes()); // the amount field
    let bad: Vec<(&str, pb::SubmitRequest)> = vec![
        (
            "EMPTY_REQUEST",
            pb::SubmitRequest {
                tx: None,
                work_nonce: 0,
            },
        ),
        (
            "MALFORMED",
            pb::SubmitRequest {
                tx: Some(pb::submit_request::Tx::Raw(valid.encode()[..50].to_vec())),
                work_nonce: 0,
            },
        ),
        (
            "MALFORMED",
            pb::SubmitRequest {
                tx: Some(pb::submit_request::Tx::Raw(vec![99; 113])),
                work_nonce: 0,
            },
        ),
        (
            "VALUE_OUT_OF_RANGE",
            pb::SubmitRequest {
                tx: Some(pb::submit_request::Tx::Raw(amount_overflow)),
                work_nonce: 0,
            },
        ),
        (
            "VALUE_OUT_OF_RANGE",
            pb::SubmitRequest {
                tx: Some(pb::submit_request::Tx::Transfer(pb::Transfer {
                    from: a.0,
                    to: b.0,
                    amount: u64::MAX,
                    fee: 0,
                    nonce: 0,
                    valid_until: now + 600,
                    signature: vec![0; 72],
                })),
                work_nonce: 0,
            },
        ),
        (
            "INVALID_SIGNATURE_ENCODING",
            pb::SubmitRequest {
                tx: Some(pb::submit_request::Tx::Transfer(pb::Transfer {
                    from: a.0,
                    to: b.0,
                    amount: 1,
                    fee: 0,
                    nonce: 0,
                    valid_until: now + 600,
                    signature: vec![0xff; 72],
                })),
                work_nonce: 0,
            },
        ),
        (
            "INVALID_PUBLIC_KEY",
            pb::SubmitRequest {
                tx: Some(pb::submit_request::Tx::Register(pb::Register {
                    public_key: vec![0u8; 40],
                    valid_until: now + 600,
                    signature: vec![0; 72],
                })),
                work_nonce: 0,
            },
        ),
        (
            "DEPOSIT_NOT_ALLOWED",
            pb::SubmitRequest {
                tx: Some(pb::submit_request::Tx::Raw(
                    Transaction::Deposit(state::tx::Deposit {
                        seq: 1,
                        to: a,
                        amount: state::account::Amount::new(1_000_000).unwrap(),
                    })
                    .encode(),
                )),
                work_nonce: 0,
            },
        ),
        (
            // Signed by the payer, well formed, but a kind this version does not prove yet.
            "KIND_NOT_ENABLED",
            raw(&Transaction::StreamOpen(
                state::tx::Unsigned {
                    body: state::stream::rules::Open {
                        payer: a,
                        payee: b,
                        slot: state::stream::StreamSlot(0),
                        price: state::account::Amount::new(1).unwrap(),
                        max_ticks: state::stream::TickCount::new(10).unwrap(),
                        expiry: state::account::Timestamp::new(now + 600).unwrap(),
                        anchor: state::hash::Digest::ZERO,
                    },
                    fee: state::account::Amount::new(0).unwrap(),
                    nonce: state::account::Nonce::new(0).unwrap(),
                    valid_until: state::account::Timestamp::new(now + 600).unwrap(),
                }
                .sign(&d, &ka),
            )),
        ),
    ];
    // Nor does it relay ticks.
    let err = c
        .send_ticks(tokio_stream::iter(Vec::<pb::Tick>::new()))
        .await
        .expect_err("no tick relay without --experimental-streams");
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");
    assert_eq!(
        err.metadata()
            .get("reason-code")
            .map(|v| v.to_str().unwrap()),
        Some("STREAMS_NOT_ENABLED")
    );
    let err = c
        .get_stream(pb::GetStreamRequest { payer: 0, slot: 0 })
        .await
        .expect_err("no stream lookup without --experimental-streams");
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");
    assert!(err.message().starts_with("STREAMS_NOT_ENABLED"), "{err:?}");
    for (code, req) in bad {
        let err = c.submit(req).await.expect_err(code);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{code}: {err:?}");
        assert!(err.message().starts_with(code), "{code}: {}", err.message());
        assert_eq!(
            err.metadata()
                .get("reason-code")
                .and_then(|v| v.to_str().ok()),
            Some(code)
        );
    }

    // Oversized message: refused by the transport limit.
    let huge = pb::SubmitRequest {
        tx: Some(pb::submit_request::Tx::Raw(vec![2u8; 64 * 1024])),
        work_nonce: 0,
    };
    let err = c.submit(huge).await.expect_err("oversized");
    assert!(
        matches!(
            err.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted | tonic::Code::InvalidArgument
        ),
        "{err:?}"
    );

    // A protobuf field with the wrong wire type (field 1 `raw` sent as a varint).
    let mut grpc = tonic::client::Grpc::new(
        tonic::transport::Channel::from_shared(node.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/rollup.v1.Rollup/Submit");
    let res: Result<tonic::Response<bytes::Bytes>, _> = grpc
        .unary(
            tonic::Request::new(bytes::Bytes::from_static(&[0x08, 0x96, 0x01])),
            path,
            RawCodec,
        )
        .await;
    let err = res.expect_err("wrong wire type must not decode");
    assert_ne!(err.code(), tonic::Code::Ok);

    // The faucet refuses unknown accounts rather than consuming a deposit for nothing.
    let r = c
        .faucet(pb::FaucetRequest {
            account: 9_999,
            amount: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.reason_code, "UNKNOWN_ACCOUNT", "{r:?}");

    // Nothing changed.
    let after = c
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.accepted_txs, before.accepted_txs);
    assert_eq!(bal(account(&mut c, a).await), a_before);
    assert_eq!(bal(account(&mut c, b).await), b_before);
    // And the valid transaction still goes through afterwards (nonce 0 was never consumed).
    let r = c.submit(raw(&valid)).await.unwrap().into_inner();
    assert!(accepted(&r), "{r:?}");
}

/// Sends raw bytes as a gRPC message, to test what the server does with garbage.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = bytes::Bytes;
    type Decode = bytes::Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Self::Item,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, Self::Error> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovers_the_same_state() {
    let db = fresh_database("seq_restart").await;
    let mut node = TestNode::start(
        &db,
        &["--block-interval-ms", "50", "--batch-max-blocks", "2"],
    )
    .await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let keys: Vec<_> = (10..14).map(key).collect();
    let mut idx = Vec::new();
    for k in &keys {
        idx.push(register(&mut c, &d, now, k).await);
    }
    for &i in &idx {
        faucet(&mut c, i, 10_000).await;
    }
    for round in 0..5u64 {
        for (n, k) in keys.iter().enumerate() {
            let to = idx[(n + 1) % idx.len()];
            let r = c
                .submit(raw(&transfer(
                    &d,
                    k,
                    idx[n],
                    to,
                    7 + round,
                    1,
                    round,
                    now + 600,
                )))
                .await
                .unwrap()
                .into_inner();
            assert!(accepted(&r), "{r:?}");
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = c
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut balances = Vec::new();
    for &i in &idx {
        balances.push(account(&mut c, i).await);
    }
    assert!(
        node.terminate().expect("SIGTERM").success(),
        "log:\n{}",
        node.log_text()
    );
    node.restart().await;
    let mut c = node.client().await;
    let after = c
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.accepted_txs, before.accepted_txs);
    assert_eq!(
        after.head_state_root, before.head_state_root,
        "root recomputed from the log"
    );
    for (n, &i) in idx.iter().enumerate() {
        assert_eq!(account(&mut c, i).await, balances[n]);
    }
    assert!(node
        .log_text()
        .contains("state recovered from the durable log"));
    // Batches were sealed along the way.
    let http: serde_json::Value = reqwest::get(format!("{}/v1/status", node.http))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(http["last_batch"].as_u64().unwrap() >= 1, "{http}");
    // And the chain continues: the next nonce works.
    let r = c
        .submit(raw(&transfer(
            &d,
            &keys[0],
            idx[0],
            idx[1],
            1,
            0,
            5,
            now + 600,
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(accepted(&r), "{r:?}");
}

/// Under load, `kill -9` the node; after restart every receipt a client received is there with
/// the same position, and nothing was applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_payment() {
    let db = fresh_database("seq_kill").await;
    let mut node = TestNode::start(&db, &[]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    const AGENTS: usize = 8;
    const PER_AGENT: u64 = 400;
    let keys: Vec<_> = (100..100 + AGENTS as u64).map(key).collect();
    let mut idx = Vec::new();
    for k in &keys {
        idx.push(register(&mut c, &d, now, k).await);
    }
    for &i in &idx {
        faucet(&mut c, i, 1_000_000).await;
    }
    // Pre-sign every payment: agent n pays agent n+1, nonces 0..PER_AGENT.
    let mut all: Vec<Vec<Transaction>> = Vec::new();
    for (n, k) in keys.iter().enumerate() {
        let to = idx[(n + 1) % AGENTS];
        all.push(
            (0..PER_AGENT)
                .map(|nonce| transfer(&d, k, idx[n], to, 3, 1, nonce, now + 3600))
                .collect(),
        );
    }
    let (tx_receipts, mut rx_receipts) =
        tokio::sync::mpsc::unbounded_channel::<(usize, pb::Receipt)>();
    let mut tasks = Vec::new();
    for (n, txs) in all.iter().cloned().enumerate() {
        let mut c = node.client().await;
        let out = tx_receipts.clone();
        tasks.push(tokio::spawn(async move {
            let reqs = futures::stream::iter(txs.into_iter().map(|t| raw(&t)));
            let Ok(resp) = c.payment_stream(reqs).await else {
                return;
            };
            let mut inbound = resp.into_inner();
            while let Ok(Some(r)) = inbound.message().await {
                let _ = out.send((n, r));
            }
        }));
    }
    drop(tx_receipts);
    // Let some receipts arrive, then pull the plug mid-stream.
    let mut received: Vec<(usize, pb::Receipt)> = Vec::new();
    while received.len() < 300 {
        match tokio::time::timeout(Duration::from_secs(20), rx_receipts.recv()).await {
            Ok(Some(r)) => received.push(r),
            _ => break,
        }
    }
    node.kill9();
    while let Ok(Some(r)) =
        tokio::time::timeout(Duration::from_millis(200), rx_receipts.recv()).await
    {
        received.push(r);
    }
    for t in tasks {
        let _ = t.await;
    }
    let acked: Vec<&pb::Receipt> = received
        .iter()
        .map(|(_, r)| r)
        .filter(|r| accepted(r))
        .collect();
    assert!(
        acked.len() >= 300,
        "only {} receipts before the kill",
        acked.len()
    );

    node.restart().await;
    let mut c = node.client().await;
    // Every acknowledged receipt survived, at the same place.
    for r in &acked {
        let got = c
            .get_receipt(pb::GetReceiptRequest {
                tx_id: r.tx_id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("acknowledged tx lost: {e:?}"))
            .into_inner();
        assert_eq!(
            (got.seq, got.block_number, got.position),
            (r.seq, r.block_number, r.position)
        );
    }
    // Nothing applied twice: each agent's nonce equals the number of its durable payments, and the
    // supply is conserved.
    let mut durable_per_agent: HashMap<usize, u64> = HashMap::new();
    for (n, txs) in all.iter().enumerate() {
        for t in txs {
            let id = t.id(&d).0.to_bytes().to_vec();
            if c.get_receipt(pb::GetReceiptRequest { tx_id: id })
                .await
                .is_ok()
            {
                *durable_per_agent.entry(n).or_default() += 1;
            }
        }
    }
    let mut total = account(&mut c, AccountIndex(0)).await.balance;
    for (n, &i) in idx.iter().enumerate() {
        let acc = account(&mut c, i).await;
        let durable = durable_per_agent.get(&n).copied().unwrap_or(0);
        assert_eq!(acc.nonce, durable, "agent {n}");
        // The log is a prefix per agent: acknowledged nonces are all below the durable count.
        total += acc.balance;
    }
    assert_eq!(total, 1_000_000 * AGENTS as u64, "supply conserved");
    // Resubmitting everything: durable ones come back as duplicates, the rest apply once.
    let mut c2 = node.client().await;
    for txs in &all {
        let reqs = futures::stream::iter(txs.iter().map(raw).collect::<Vec<_>>());
        let mut inbound = c2.payment_stream(reqs).await.unwrap().into_inner();
        while let Some(r) = inbound.message().await.unwrap() {
            assert!(accepted(&r), "{r:?}");
        }
    }
    for &i in &idx {
        assert_eq!(account(&mut c, i).await.nonce, PER_AGENT);
    }
}

/// A tiny queue under a flood: clients get RESOURCE_EXHAUSTED, the node stays up and small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_pressure_answers_resource_exhausted() {
    let db = fresh_database("seq_bp").await;
    let node = TestNode::start(
        &db,
        &["--queue-capacity", "2", "--enqueue-patience-ms", "0"],
    )
    .await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let k = key(7);
    let a = register(&mut c, &d, now, &k).await;
    let b = register(&mut c, &d, now, &key(8)).await;
    faucet(&mut c, a, 1_000_000).await;
    let rss_before = node.rss_kib();
    let txs: Vec<_> = (0..3000)
        .map(|n| transfer(&d, &k, a, b, 1, 0, n, now + 600))
        .collect();
    let mut exhausted = 0;
    let mut accepted_n = 0;
    let mut handles = Vec::new();
    for chunk in txs.chunks(100) {
        let mut c = node.client().await;
        let chunk = chunk.to_vec();
        handles.push(tokio::spawn(async move {
            let mut e = 0;
            let mut ok = 0;
            for t in chunk {
                match c.submit(raw(&t)).await {
                    Err(s) if s.code() == tonic::Code::ResourceExhausted => e += 1,
                    Ok(r) if r.get_ref().status == pb::TxStatus::Accepted as i32 => ok += 1,
                    _ => {}
                }
            }
            (e, ok)
        }));
    }
    for h in handles {
        let (e, ok) = h.await.unwrap();
        exhausted += e;
        accepted_n += ok;
    }
    assert!(
        exhausted > 0,
        "a 2-slot queue under 30 concurrent clients must push back"
    );
    let rss_after = node.rss_kib();
    assert!(
        rss_after < rss_before + 200 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    // Still healthy and consistent.
    let acc = account(&mut c, a).await;
    assert_eq!(
        acc.balance,
        1_000_000 - acc.nonce,
        "every accepted payment applied once"
    );
    assert!(accepted_n as u64 <= acc.nonce);
    let ready = reqwest::get(format!("{}/readyz", node.http)).await.unwrap();
    assert!(ready.status().is_success());
}

/// `grpcurl` needs server reflection; load balancers need the standard health service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let db = fresh_database("seq_meta").await;
    let node = TestNode::start(&db, &[]).await;
    let channel = tonic::transport::Channel::from_shared(node.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "rollup.v1.Rollup".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = reflection
        .server_reflection_info(futures::stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = resp.message().await.unwrap().expect("a reflection answer");
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected reflection answer: {msg:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"rollup.v1.Rollup".to_string()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_sealed_within_what_one_batch_proof_holds() {
    // Leaves of 2, top level 1: at most 2 chunks per tree (4 transactions, 10 existing and 4
    // new accounts, 4 priority ops, 4 payouts). Batches never age out in this test: only the
    // cap seals them.
    let db = fresh_database("seq_capacity").await;
    let node = TestNode::start(
        &db,
        &[
            "--batch-leaf-size",
            "2",
            "--batch-top-level",
            "1",
            "--batch-max-secs",
            "3600",
            "--batch-max-blocks",
            "100000",
        ],
    )
    .await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ka, kb) = (key(1), key(2));
    let a = register(&mut c, &d, now, &ka).await;
    let b = register(&mut c, &d, now, &kb).await;
    faucet(&mut c, a, 1_000).await;

    // A split to 9 payees touches 11 accounts: more than a batch's 10, refused at the door
    // whatever its payees (the rules never see it).
    let split = |payees: u32| {
        Transaction::Split(
            state::tx::UnsignedSplit {
                from: a,
                parts: (0..payees)
                    .map(|i| state::split::Payout {
                        to: AccountIndex(100 + i),
                        amount: Amount::new(1).unwrap(),
                    })
                    .collect(),
                fee: Amount::ZERO,
                nonce: Nonce::ZERO,
                valid_until: Timestamp::new(now + 600).unwrap(),
            }
            .sign(&d, &ka),
        )
    };
    let err = c.submit(raw(&split(9))).await.expect_err("too large");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert_eq!(
        err.metadata()
            .get("reason-code")
            .and_then(|v| v.to_str().ok()),
        Some("EXCEEDS_BATCH_CAPACITY")
    );
    assert_eq!(account(&mut c, a).await.nonce, 0, "nothing changed");
    // Eight payees (10 accounts) pass the door and meet the rules (unknown payees).
    let r = c.submit(raw(&split(8))).await.unwrap().into_inner();
    assert_eq!(r.reason_code, "UNKNOWN_ACCOUNT", "{r:?}");

    for nonce in 0..9 {
        let tx = transfer(&d, &ka, a, b, 10, 0, nonce, now + 600);
        let r = c.submit(raw(&tx)).await.unwrap().into_inner();
        assert!(accepted(&r), "{r:?}");
    }
    assert_eq!(account(&mut c, b).await.balance, 90);

    // Twelve transactions, at most four per batch: at least two batches sealed (the rest
    // stays open), each within the cap. Wait for the seals to be durable.
    let store = rollup_storage::Store::connect_and_migrate(&db, 2)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let sealed = loop {
        let last = store.batches().last().await.unwrap();
        if let Some(last) = last.filter(|b| b.number >= 2) {
            break last.number;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no batch sealed for capacity"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut txs = 0;
    for n in 1..=sealed {
        let batch = store.batches().get(n).await.unwrap().unwrap();
        assert!(
            (1..=4).contains(&batch.tx_count),
            "batch {n} holds {} transactions",
            batch.tx_count
        );
        txs += batch.tx_count;
    }
    assert!(txs >= 8, "{txs} transactions in {sealed} sealed batches");
    let metrics = reqwest::get(format!("{}/metrics", node.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rollup_batch_sealed_full_total"),
        "{metrics}"
    );
}
