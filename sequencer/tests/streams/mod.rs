//! Payment streams on a devnet node with `--experimental-streams`: a stream opens through
//! Submit, the payer's ticks go through SendTicks (each acknowledged in order, every refusal
//! with its reason and no effect), the payee's WatchTicks sees exactly the accepted ones, and
//! the payee settles the latest tick it saw; a stream whose anchor is a tick tree (SPEC 18.8)
//! ticks with siblings and settles by path.

use std::time::Duration;

use state::account::{Amount, Nonce, Timestamp};
use state::hash::{hash_no_pad, Digest};
use state::stream::rules::{Open, Settle};
use state::stream::{StreamId, StreamSlot, TickChain, TickCount};
use state::tx::{SettleBody, Unsigned};

use futures::StreamExt;

use super::*;

mod shares;

/// Whether `account`'s receipt watch, replayed from the start, shows `tx_id` within 10 s.
async fn watch_sees(
    c: &mut rollup_proto::v1::rollup_client::RollupClient<tonic::transport::Channel>,
    account: state::account::AccountIndex,
    tx_id: &[u8],
) -> bool {
    let mut watch = c
        .watch_receipts(pb::WatchReceiptsRequest {
            account: account.0,
            from_seq: Some(0),
        })
        .await
        .unwrap()
        .into_inner();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(receipt)) = watch.next().await {
            if receipt.tx_id == tx_id {
                return true;
            }
        }
        false
    })
    .await;
    seen == Ok(true)
}

/// Sends `sent`'s ticks on one `SendTicks` call and returns their acknowledgements.
async fn send_all(
    c: &mut rollup_proto::v1::rollup_client::RollupClient<tonic::transport::Channel>,
    sent: &[(pb::Tick, &str)],
) -> Vec<pb::TickAck> {
    let acks: Vec<pb::TickAck> = c
        .send_ticks(tokio_stream::iter(
            sent.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
        ))
        .await
        .unwrap()
        .into_inner()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("an acknowledgement per tick");
    assert_eq!(acks.len(), sent.len());
    acks
}

/// The open of stream `id` to `payee` at `(price, max_ticks, fee)` with `anchor`, signed by
/// the payer's key `k`, expiring and valid for 600 s from `now`.
fn open_tx(
    d: &state::tx::Domain,
    k: &state::crypto::schnorr::SecretKey,
    (id, payee): (StreamId, state::account::AccountIndex),
    (price, max_ticks, fee): (u64, TickCount, u64),
    anchor: Digest,
    now: u64,
) -> Transaction {
    Transaction::StreamOpen(
        Unsigned {
            body: Open {
                payer: id.payer,
                payee,
                slot: id.slot,
                price: Amount::new(price).unwrap(),
                max_ticks,
                expiry: Timestamp::new(now + 600).unwrap(),
                anchor,
            },
            fee: Amount::new(fee).unwrap(),
            nonce: id.opened_at,
            valid_until: Timestamp::new(now + 600).unwrap(),
        }
        .sign(d, k),
    )
}

fn tick(id: &StreamId, k: u32, value: Digest) -> pb::Tick {
    pb::Tick {
        payer: id.payer.0,
        slot: u32::from(id.slot.0),
        opened_at: id.opened_at.get(),
        k,
        value: value.to_bytes().to_vec(),
        tree: false,
        siblings: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_are_checked_relayed_to_the_payee_and_settled() {
    let db = fresh_database("seq_ticks").await;
    let node = TestNode::start(&db, &["--experimental-streams"]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (kp, kq) = (key(31), key(32));
    let payer = register(&mut c, &d, now, &kp).await;
    let payee = register(&mut c, &d, now, &kq).await;
    faucet(&mut c, payer, 20_000).await;

    let id = StreamId {
        payer,
        slot: StreamSlot(1),
        opened_at: Nonce::new(0).unwrap(),
    };
    let max = TickCount::new(2_000).unwrap();
    let mut chain = TickChain::new(id, max, hash_no_pad(&[]));
    let open = open_tx(&d, &kp, (id, payee), (7, max, 1), chain.anchor(), now);
    let r = c.submit(raw(&open)).await.unwrap().into_inner();
    assert!(accepted(&r), "{r:?}");
    assert_eq!(account(&mut c, payer).await.balance, 20_000 - 14_000 - 1);

    // The payee watches before the payer ticks.
    let mut watch = c
        .watch_ticks(pb::WatchTicksRequest { payee: payee.0 })
        .await
        .unwrap()
        .into_inner();

    let t = |k: u32, chain: &mut TickChain| chain.tick(k).unwrap().value;
    let (t1, t2, t3, t5) = (
        t(1, &mut chain),
        t(2, &mut chain),
        t(3, &mut chain),
        t(5, &mut chain),
    );
    let sent = vec![
        (tick(&id, 1, t1), ""),
        (tick(&id, 2, t2), ""),
        (tick(&id, 3, t3), ""),
        (tick(&id, 3, t3), "TICK_STALE"),
        (tick(&id, 2, t2), "TICK_STALE"),
        (tick(&id, 10, t3), "TICK_MISMATCH"),
        (tick(&id, 2_001, t3), "TICK_BEYOND_MAX"),
        (tick(&id, 3 + 1025, t3), "TICK_GAP_TOO_LARGE"),
        (
            tick(
                &StreamId {
                    slot: StreamSlot(9),
                    ..id
                },
                4,
                t5,
            ),
            "UNKNOWN_STREAM",
        ),
        (
            tick(
                &StreamId {
                    opened_at: Nonce::new(5).unwrap(),
                    ..id
                },
                4,
                t5,
            ),
            "TICK_WRONG_STREAM",
        ),
        (
            pb::Tick {
                value: vec![1; 31],
                ..tick(&id, 4, t5)
            },
            "BAD_TICK",
        ),
        (tick(&id, 5, t5), ""),
    ];
    let acks = send_all(&mut c, &sent).await;
    assert_eq!(acks.len(), sent.len());
    for ((t, want), ack) in sent.iter().zip(&acks) {
        assert_eq!((ack.k, ack.slot), (t.k, t.slot));
        assert_eq!(ack.reason, *want, "tick {}: {ack:?}", t.k);
        assert_eq!(ack.accepted, want.is_empty());
    }

    // Exactly the accepted ticks reach the payee, in order.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let next = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("the payee sees the accepted ticks within 10 s")
            .expect("the watch stays open")
            .expect("a tick");
        seen.push((next.k, next.value));
    }
    let want: Vec<(u32, Vec<u8>)> = [(1, t1), (2, t2), (3, t3), (5, t5)]
        .into_iter()
        .map(|(k, v)| (k, v.to_bytes().to_vec()))
        .collect();
    assert_eq!(seen, want);

    // GetStream: the stream as held now and the latest tick relayed past its settled count.
    let info = c
        .get_stream(pb::GetStreamRequest {
            payer: payer.0,
            slot: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (info.payee, info.settled, info.escrow, info.opened_at),
        (payee.0, 0, 14_000, 0)
    );
    let relayed = info.relayed.expect("tick 5 was relayed");
    assert_eq!(
        (relayed.k, relayed.value.clone()),
        (5, t5.to_bytes().to_vec())
    );
    for (slot, code, reason) in [
        (9, tonic::Code::NotFound, "UNKNOWN_STREAM"),
        (70_000, tonic::Code::InvalidArgument, "OUT_OF_RANGE"),
    ] {
        let err = c
            .get_stream(pb::GetStreamRequest {
                payer: payer.0,
                slot,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(err.message().starts_with(reason), "{err:?}");
    }

    // The payee settles the latest tick it saw: 5 ticks of 7.
    let settle = |nonce: u64| {
        Transaction::StreamSettle(
            Unsigned {
                body: SettleBody {
                    payee,
                    terms: Settle {
                        payer,
                        slot: id.slot,
                        from: TickCount::new(0).unwrap(),
                        to: TickCount::new(5).unwrap(),
                        value: t5,
                    },
                },
                fee: Amount::new(0).unwrap(),
                nonce: Nonce::new(nonce).unwrap(),
                valid_until: Timestamp::new(now + 600).unwrap(),
            }
            .sign(&d, &kq),
        )
    };
    let r = c.submit(raw(&settle(0))).await.unwrap().into_inner();
    assert!(accepted(&r), "{r:?}");
    assert_eq!(account(&mut c, payee).await.balance, 35);
    // The same transaction again is answered with its receipt (idempotent), paid once; a new
    // settlement of the same ticks is a replay: refused (STALE_SETTLE), nothing paid twice.
    let again = c.submit(raw(&settle(0))).await.unwrap().into_inner();
    assert!(again.duplicate, "{again:?}");
    let r = c.submit(raw(&settle(1))).await.unwrap().into_inner();
    assert!(!accepted(&r), "{r:?}");
    assert_eq!(r.reason_code, "STALE_SETTLE");
    assert_eq!(account(&mut c, payee).await.balance, 35);
    // Settled: nothing relayed past the settled count any more.
    let info = c
        .get_stream(pb::GetStreamRequest {
            payer: payer.0,
            slot: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((info.settled, info.escrow), (5, 14_000 - 35));
    assert_eq!(info.head, t5.to_bytes().to_vec());
    assert!(info.relayed.is_none(), "{info:?}");

    tree_ticks_are_checked_relayed_whole_and_settled_by_path(
        &mut c,
        &d,
        now,
        (&kp, payer),
        (&kq, payee),
    )
    .await;
}

/// The same node, a tree stream (slot 2): ticks in order carry the siblings the relay lacks
/// and are forwarded whole; a forged, a short and a chain-kind tick are refused with their
/// reasons; the payee settles the relayed tick by its path (tag 18), once.
async fn tree_ticks_are_checked_relayed_whole_and_settled_by_path(
    c: &mut rollup_proto::v1::rollup_client::RollupClient<tonic::transport::Channel>,
    d: &state::tx::Domain,
    now: u64,
    (kp, payer): (
        &state::crypto::schnorr::SecretKey,
        state::account::AccountIndex,
    ),
    (kq, payee): (
        &state::crypto::schnorr::SecretKey,
        state::account::AccountIndex,
    ),
) {
    use rollup_proto::convert::tree_tick_message;
    use state::stream::TickTree;
    use state::tx::SettlePathBody;

    let id = StreamId {
        payer,
        slot: StreamSlot(2),
        opened_at: Nonce::new(1).unwrap(),
    };
    let max = TickCount::new(5_000).unwrap();
    let mut tree = TickTree::new(id, max, hash_no_pad(&[]));
    let open = open_tx(d, kp, (id, payee), (1, max, 0), tree.root(), now);
    let r = c.submit(raw(&open)).await.unwrap().into_inner();
    assert!(accepted(&r), "{r:?}");
    let mut watch = c
        .watch_ticks(pb::WatchTicksRequest { payee: payee.0 })
        .await
        .unwrap()
        .into_inner();

    let mut t = |k: u32, known: Option<u32>| tree_tick_message(&tree.tick(k, known).unwrap());
    let mut forged = t(3, Some(2));
    forged.value = hash_no_pad(&[]).to_bytes().to_vec();
    let chain_kind = pb::Tick {
        tree: false,
        siblings: vec![],
        ..t(5, Some(4))
    };
    let sent = [
        (t(1, None), ""),
        (t(2, Some(1)), ""),
        (forged, "TICK_MISMATCH"),
        (t(3000, Some(2999)), "TICK_PATH_TOO_SHORT"),
        (chain_kind, "TICK_WRONG_MODE"),
        (t(3, Some(2)), ""),
        // A jump with its full path: no gap limit.
        (t(4000, None), ""),
    ];
    let acks = send_all(c, &sent).await;
    for ((t, want), ack) in sent.iter().zip(&acks) {
        assert_eq!(ack.reason, *want, "tick {}: {ack:?}", t.k);
    }
    // Forwarded whole: the payee could check and settle any of them on its own.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let next = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("the payee sees the accepted ticks within 10 s")
            .expect("the watch stays open")
            .expect("a tick");
        assert!(next.tree && next.siblings.len() == 24, "{next:?}");
        seen.push(next.k);
    }
    assert_eq!(seen, [1, 2, 3, 4000]);

    let info = c
        .get_stream(pb::GetStreamRequest {
            payer: payer.0,
            slot: 2,
        })
        .await
        .unwrap()
        .into_inner();
    let relayed = info.relayed.expect("tick 4000 was relayed");
    assert!(relayed.tree && relayed.siblings.len() == 24);
    let mut path = [Digest::ZERO; 24];
    for (p, s) in path.iter_mut().zip(&relayed.siblings) {
        *p = Digest::from_slice(s).unwrap();
    }
    let settle = |nonce: u64| {
        Transaction::from(
            Unsigned {
                body: SettlePathBody {
                    payee,
                    terms: Settle {
                        payer,
                        slot: id.slot,
                        from: TickCount::ZERO,
                        to: TickCount::new(relayed.k).unwrap(),
                        value: Digest::from_slice(&relayed.value).unwrap(),
                    },
                    path,
                },
                fee: Amount::new(0).unwrap(),
                nonce: Nonce::new(nonce).unwrap(),
                valid_until: Timestamp::new(now + 600).unwrap(),
            }
            .sign(d, kq),
        )
    };
    let before = account(c, payee).await.balance;
    // The payee's nonce 1: its replayed chain settlement above was refused.
    let r = c.submit(raw(&settle(1))).await.unwrap().into_inner();
    assert!(accepted(&r), "{r:?}");
    assert_eq!(account(c, payee).await.balance, before + 4000);
    let r = c.submit(raw(&settle(2))).await.unwrap().into_inner();
    assert_eq!(r.reason_code, "STALE_SETTLE");
    let info = c
        .get_stream(pb::GetStreamRequest {
            payer: payer.0,
            slot: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.settled, 4000);
    assert_eq!(
        info.head,
        tree.root().to_bytes().to_vec(),
        "the root stays the head"
    );
}

/// Split payments on the same kind of node: one accepted, paid to every payee at once; each
/// bad one refused with its reason code and no effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_pay_every_payee_at_once_or_are_refused_with_their_reason() {
    use state::split::Payout;
    use state::tx::UnsignedSplit;

    let db = fresh_database("seq_splits").await;
    let node = TestNode::start(&db, &["--experimental-streams"]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ks, k1, k2) = (key(41), key(42), key(43));
    let from = register(&mut c, &d, now, &ks).await;
    let p1 = register(&mut c, &d, now, &k1).await;
    let p2 = register(&mut c, &d, now, &k2).await;
    faucet(&mut c, from, 1_000).await;
    let part = |to: state::account::AccountIndex, amount: u64| Payout {
        to,
        amount: Amount::new(amount).unwrap(),
    };
    let split = |parts: Vec<Payout>, fee: u64, n: u64| {
        Transaction::Split(
            UnsignedSplit {
                from,
                parts,
                fee: Amount::new(fee).unwrap(),
                nonce: Nonce::new(n).unwrap(),
                valid_until: Timestamp::new(now + 600).unwrap(),
            }
            .sign(&d, &ks),
        )
    };
    let r = c
        .submit(raw(&split(vec![part(p1, 300), part(p2, 200)], 5, 0)))
        .await
        .unwrap()
        .into_inner();
    assert!(accepted(&r), "{r:?}");
    assert_eq!(account(&mut c, from).await.balance, 1_000 - 505);
    assert_eq!(account(&mut c, p1).await.balance, 300);
    assert_eq!(account(&mut c, p2).await.balance, 200);
    // Each payee's receipt watch shows the split (its payees are indexed as its parties).
    for payee in [p1, p2] {
        assert!(
            watch_sees(&mut c, payee, &r.tx_id).await,
            "payee {payee} sees the split"
        );
    }

    let nowhere = state::account::AccountIndex(9_999);
    for (parts, fee, reason) in [
        (vec![part(p2, 1), part(p1, 1)], 0, "PAYEES_NOT_SORTED"),
        (vec![part(from, 1)], 0, "SELF_PAYEE"),
        (vec![part(p1, 0)], 0, "ZERO_PART"),
        (vec![], 0, "NO_PAYEES"),
        (vec![part(p1, 1), part(nowhere, 1)], 0, "UNKNOWN_ACCOUNT"),
        (
            vec![part(p1, 250), part(p2, 245)],
            1,
            "INSUFFICIENT_BALANCE",
        ),
    ] {
        let r = c
            .submit(raw(&split(parts, fee, 1)))
            .await
            .unwrap()
            .into_inner();
        assert!(!accepted(&r), "{reason}: {r:?}");
        assert_eq!(r.reason_code, reason);
    }
    // The replay of the accepted split is answered with its receipt, applied once.
    let again = c
        .submit(raw(&split(vec![part(p1, 300), part(p2, 200)], 5, 0)))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate, "{again:?}");
    // More than 1,024 payees: refused by the decoder.
    let many = (0..1025).map(|i| part(state::account::AccountIndex(100 + i), 1));
    let err = c
        .submit(raw(&split(many.collect(), 0, 1)))
        .await
        .expect_err("TOO_MANY_PAYEES");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().starts_with("TOO_MANY_PAYEES"), "{err:?}");
    // Nothing changed after the first split.
    assert_eq!(account(&mut c, from).await.balance, 495);
    assert_eq!(account(&mut c, from).await.nonce, 1);
    assert_eq!(account(&mut c, p1).await.balance, 300);
}
