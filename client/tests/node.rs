//! The SDK against a real node (see `support`): one devnet node, the scenarios in sequence.

mod x402;

use std::time::Duration;

use futures::StreamExt;
use rollup_client::{
    raw_submit_request, submit_request, AccountIndex, Amount, Client, Error, KeyFile, Nonce,
    Transaction, TxId,
};
use state::tx::UnsignedTransfer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_against_a_devnet_node() {
    let devnet =
        devkit::node::Devnet::start_with("client_sdk_e2e", &["--experimental-streams"]).await;
    let client = Client::connect(&devnet.endpoint).await.unwrap();
    assert!(client.connected_status().devnet, "a --devnet node");
    register_fund_pay_and_query(&client).await;
    rejections_carry_their_reason_code(&client).await;
    resubmission_returns_the_original_receipt_in_either_form(&client).await;
    a_payment_stream_answers_in_order_and_watch_sees_it(&client).await;
    a_tick_stream_opens_ticks_settles_and_closes(&client).await;
    let http = devnet
        .process
        .as_ref()
        .map(|p| p.http.clone())
        .or_else(|| std::env::var("ROLLUP_E2E_HTTP").ok())
        .expect("the node's HTTP URL (ROLLUP_E2E_HTTP beside ROLLUP_E2E_ENDPOINT)");
    x402::a_paid_route_is_paid_once_within_budget(&client, &http).await;
}

/// The stream SDK (SPEC 18; the node runs with --experimental-streams): open, tick through
/// the relay, watch as the payee, settle the latest tick, close as the payee.
async fn a_tick_stream_opens_ticks_settles_and_closes(client: &Client) {
    use rollup_client::ticks::StreamTerms;
    let (payer_key, payer) = agent(client, 1_000).await;
    let (payee_key, payee) = agent(client, 0).await;
    let terms = StreamTerms::new(payee, amount(4), 50, Duration::from_secs(600));
    let mut stream = client
        .open_pay_stream(payer_key.secret_key(), payer, 2, terms)
        .await
        .unwrap();
    assert!(stream.receipt.as_ref().is_some_and(|r| r.is_accepted()));
    assert_eq!(
        client.account(payer).await.unwrap().balance.get(),
        1_000 - 200
    );
    let mut watch = client.watch_ticks(payee).await.unwrap();
    let (ticks, mut acks) = client.send_ticks().await.unwrap();
    for k in 1..=6 {
        ticks.send(stream.tick(k).unwrap()).await.unwrap();
        let ack = acks.message().await.unwrap().expect("an ack per tick");
        assert!(ack.accepted && ack.k == k, "{ack:?}");
    }
    // A replayed tick is refused and not relayed.
    ticks.send(stream.tick(3).unwrap()).await.unwrap();
    let ack = acks.message().await.unwrap().unwrap();
    assert_eq!((ack.accepted, ack.reason.as_str()), (false, "TICK_STALE"));
    assert!(stream.tick(51).is_none(), "beyond max_ticks");
    let mut last = None;
    for _ in 0..6 {
        let t = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("the payee sees each accepted tick")
            .unwrap()
            .unwrap();
        last = Some(t);
    }
    let last = last.unwrap();
    assert_eq!(last.k, 6);
    let r = client
        .settle_stream(payee_key.secret_key(), payee, 0, &last, Amount::ZERO)
        .await
        .unwrap();
    assert!(r.is_accepted());
    assert_eq!(client.account(payee).await.unwrap().balance.get(), 24);
    // Two more ticks, settled from the node's view (`stream`, `settle_relayed`).
    for k in 7..=8 {
        ticks.send(stream.tick(k).unwrap()).await.unwrap();
        assert!(acks.message().await.unwrap().unwrap().accepted);
    }
    let view = client.stream(payer, 2).await.unwrap().expect("open");
    assert_eq!((view.settled.get(), view.escrow.get()), (6, 176));
    assert_eq!(view.relayed.map(|t| t.k.get()), Some(8));
    assert_eq!(view.unsettled().get(), 8);
    let (_, r) = client
        .settle_relayed(payee_key.secret_key(), payee, payer, 2, Amount::ZERO)
        .await
        .unwrap()
        .expect("tick 8 to settle");
    assert!(r.is_accepted());
    assert!(
        client
            .settle_relayed(payee_key.secret_key(), payee, payer, 2, Amount::ZERO)
            .await
            .unwrap()
            .is_none(),
        "nothing relayed past the settled count"
    );
    assert_eq!(client.account(payee).await.unwrap().balance.get(), 32);
    // The payee closes: the rest of the escrow (42 ticks x 4) returns to the payer.
    client
        .close_stream(payee_key.secret_key(), payee, payer, 2, Amount::ZERO)
        .await
        .unwrap();
    assert_eq!(
        client.account(payer).await.unwrap().balance.get(),
        1_000 - 32
    );
    assert!(matches!(
        client
            .settle_relayed(payee_key.secret_key(), payee, payer, 2, Amount::ZERO)
            .await,
        Err(rollup_client::Error::UnknownStream { .. })
    ));
}

fn amount(v: u64) -> Amount {
    Amount::new(v).unwrap()
}

/// A registered, funded agent.
async fn agent(client: &Client, funds: u64) -> (KeyFile, AccountIndex) {
    let key = KeyFile::generate();
    let index = client.register(key.secret_key(), None).await.unwrap().index;
    if funds > 0 {
        client.faucet(index, amount(funds)).await.unwrap();
    }
    (key, index)
}

async fn register_fund_pay_and_query(client: &Client) {
    let (alice, a) = agent(client, 1_000).await;
    let (_bob, b) = agent(client, 0).await;
    assert_ne!(a, b);

    let receipt = client
        .pay(alice.secret_key(), a, b, amount(250), amount(2), None)
        .await
        .unwrap();
    assert!(receipt.is_accepted() && !receipt.duplicate);
    let alice_now = client.account(a).await.unwrap();
    assert_eq!(alice_now.balance.get(), 1_000 - 252);
    assert_eq!(alice_now.nonce.get(), 1);
    assert_eq!(alice_now.public_key.as_ref(), Some(alice.public_key()));
    assert_eq!(client.account(b).await.unwrap().balance.get(), 250);

    let id = receipt.tx_id.unwrap();
    let stored = client.receipt(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.seq, stored.block_number),
        (receipt.seq, receipt.block_number)
    );
    assert_eq!(client.receipt(&TxId([0; 32])).await.unwrap(), None);
}

async fn rejections_carry_their_reason_code(client: &Client) {
    let (alice, a) = agent(client, 100).await;
    let (_, b) = agent(client, 0).await;
    let cases = [
        (amount(1_000), None, "INSUFFICIENT_BALANCE"),
        (amount(1), Some(Nonce::new(5).unwrap()), "BAD_NONCE"),
        (Amount::ZERO, None, "ZERO_AMOUNT"),
    ];
    for (value, nonce, code) in cases {
        let err = client
            .pay(alice.secret_key(), a, b, value, Amount::ZERO, nonce)
            .await
            .unwrap_err();
        assert_eq!(err.reason_code(), Some(code), "{err}");
        assert!(matches!(err, Error::Rejected { .. }));
    }
    // Signed by another key.
    let (mallory, _) = agent(client, 0).await;
    let err = client
        .pay(mallory.secret_key(), a, b, amount(1), Amount::ZERO, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason_code(), Some("BAD_SIGNATURE"));
    // Nothing changed.
    let account = client.account(a).await.unwrap();
    assert_eq!((account.balance.get(), account.nonce.get()), (100, 0));
    assert!(matches!(
        client.account(AccountIndex(u32::MAX)).await,
        Err(Error::UnknownAccount(_))
    ));
}

async fn resubmission_returns_the_original_receipt_in_either_form(client: &Client) {
    let (alice, a) = agent(client, 100).await;
    let (_, b) = agent(client, 0).await;
    let tx: Transaction = UnsignedTransfer {
        from: a,
        to: b,
        amount: amount(10),
        fee: Amount::ZERO,
        nonce: Nonce::ZERO,
        valid_until: client.deadline(),
    }
    .sign(&client.domain(), alice.secret_key())
    .into();
    let first = client.submit_request(submit_request(&tx)).await.unwrap();
    let again = client
        .submit_request(raw_submit_request(&tx))
        .await
        .unwrap();
    assert!(first.is_accepted() && again.is_accepted());
    assert!(again.duplicate && !first.duplicate);
    assert_eq!((again.tx_id, again.seq), (first.tx_id, first.seq));
    assert_eq!(first.tx_id, Some(TxId::from(tx.id(&client.domain()))));
    assert_eq!(client.account(a).await.unwrap().balance.get(), 90);
}

async fn a_payment_stream_answers_in_order_and_watch_sees_it(client: &Client) {
    let (alice, a) = agent(client, 10_000).await;
    let (_, b) = agent(client, 0).await;
    let from_seq = client.status().await.unwrap().accepted_txs;
    let mut watch = client.watch(b, None).await.unwrap();

    let stream = client.open_stream().await.unwrap();
    let (sender, mut receiver) = stream.split();
    let txs: Vec<Transaction> = (0..50)
        .map(|n| {
            UnsignedTransfer {
                from: a,
                to: b,
                amount: amount(1 + n),
                fee: Amount::ZERO,
                nonce: Nonce::new(n).unwrap(),
                valid_until: client.deadline(),
            }
            .sign(&client.domain(), alice.secret_key())
            .into()
        })
        .collect();
    let ids: Vec<TxId> = txs.iter().map(|t| t.id(&client.domain()).into()).collect();
    let producer = tokio::spawn(async move {
        for tx in &txs {
            sender.send(tx).await.unwrap();
        }
        // Dropping the sender ends the request side; the node then ends the stream.
    });
    let mut seqs = Vec::new();
    while let Some(receipt) = receiver.next_receipt().await.unwrap() {
        assert!(receipt.is_accepted(), "{receipt}");
        assert_eq!(
            receipt.tx_id,
            Some(ids[seqs.len()]),
            "receipts in request order"
        );
        seqs.push(receipt.seq);
    }
    producer.await.unwrap();
    assert_eq!(seqs.len(), 50);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        client.account(b).await.unwrap().balance.get(),
        (1..=50u64).sum::<u64>()
    );

    // The watch sees all fifty, in order, and a resumed watch replays them from a cursor.
    for id in &ids {
        let seen = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("watch delivers")
            .unwrap()
            .unwrap();
        assert_eq!(seen.tx_id.as_ref(), Some(id));
    }
    let mut resumed = client.watch(b, Some(from_seq)).await.unwrap();
    let mut replayed = Vec::new();
    while replayed.len() < 50 {
        let r = tokio::time::timeout(Duration::from_secs(10), resumed.next())
            .await
            .expect("resumed watch delivers")
            .unwrap()
            .unwrap();
        if r.tx_id.is_some_and(|id| ids.contains(&id)) {
            replayed.push(r.seq);
        }
    }
    assert_eq!(replayed, seqs);
}
