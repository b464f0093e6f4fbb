//! Both sides of an x402 payment in Rust against a real node: an axum route behind
//! `rollup_x402::paywall`, the node's facilitator, and the SDK's `X402Payer`.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use rollup_client::x402::{Budget, PayError, X402Payer};
use rollup_client::{AccountIndex, Amount, Client, KeyFile};
use rollup_x402::exact::{network_id, ExactPayload};
use rollup_x402::paywall::{FacilitatorError, Paywall};
use rollup_x402::wire::{
    decode_header, encode_header, PaymentPayload, PaymentRequired, PaymentRequirements,
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE,
};
use state::tx::UnsignedTransfer;

const PRICE: u64 = 1_000;

fn terms(client: &Client, asset: &str, pay_to: AccountIndex) -> PaymentRequirements {
    PaymentRequirements::exact(network_id(&client.domain()), asset, pay_to, PRICE, 60)
}

/// A paid API on a free port: `/weather` costs PRICE, `/broken` costs PRICE but fails, `/free`
/// is free.
async fn paid_api(paywall: Paywall) -> SocketAddr {
    let paid = Router::new()
        .route("/weather", get(|| async { "sunny" }))
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "no weather today") }),
        )
        // The paywall as a tower layer (`require_payment` is the same as a middleware fn).
        .layer(paywall);
    let app = paid.route("/free", get(|| async { "free" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

pub async fn a_paid_route_is_paid_once_within_budget(client: &Client, http: &str) {
    let facilitator = format!("{http}/x402");
    let asset = reqwest::get(format!("{facilitator}/supported"))
        .await
        .expect("GET /x402/supported")
        .json::<serde_json::Value>()
        .await
        .expect("supported JSON")["kinds"][0]["extra"]["asset"]
        .as_str()
        .expect("the node's asset")
        .to_owned();
    let key = KeyFile::generate();
    let payer = client.register(key.secret_key(), None).await.unwrap().index;
    client
        .faucet(payer, Amount::new(10_000).unwrap())
        .await
        .unwrap();
    let payee = client
        .register(KeyFile::generate().secret_key(), None)
        .await
        .unwrap()
        .index;
    let balance = |i| async move { client.account(i).await.unwrap().balance.get() };

    let paywall = Paywall::new(&facilitator, vec![terms(client, &asset, payee)])
        .with_description("Weather data");
    paywall
        .check_facilitator()
        .await
        .expect("the node settles what the paywall asks");
    let mut elsewhere = terms(client, &asset, payee);
    elsewhere.network = "eip155:8453".into();
    let wrong = Paywall::new(&facilitator, vec![elsewhere])
        .check_facilitator()
        .await;
    assert!(
        matches!(wrong, Err(FacilitatorError::Unsupported { .. })),
        "{wrong:?}"
    );
    let api = format!("http://{}", paid_api(paywall).await);

    // Unpaid: 402 with the terms, and nothing else.
    let unpaid = reqwest::get(format!("{api}/weather")).await.unwrap();
    assert_eq!(unpaid.status().as_u16(), 402);
    let offer: PaymentRequired =
        decode_header(unpaid.headers()[PAYMENT_REQUIRED].as_bytes()).expect("PAYMENT-REQUIRED");
    assert_eq!(offer.accepts, vec![terms(client, &asset, payee)]);
    assert_eq!(
        offer.resource.map(|r| r.url),
        Some(format!("{api}/weather"))
    );

    let budget = Budget::new(Amount::new(1_500).unwrap(), 2_500);
    let wallet = X402Payer::new(client.clone(), key.secret_key().clone(), payer, budget);
    let free = wallet.get(&format!("{api}/free")).await.unwrap();
    assert_eq!((free.status, free.payment.is_none()), (200, true));

    let paid = wallet.get(&format!("{api}/weather")).await.unwrap();
    assert_eq!(
        (paid.status, paid.body.as_slice()),
        (200, b"sunny".as_slice())
    );
    let settlement = &paid.payment.as_ref().expect("paid").settlement;
    assert!(settlement.success);
    assert!(paid.headers.contains_key(PAYMENT_RESPONSE));
    let id: rollup_client::TxId = settlement.transaction.parse().expect("a transaction id");
    let receipt = client
        .receipt(&id)
        .await
        .unwrap()
        .expect("settled on the rollup");
    assert!(receipt.is_accepted());
    assert_eq!((balance(payer).await, balance(payee).await), (9_000, PRICE));
    assert_eq!(wallet.spent().await, PRICE);

    // A handler that fails is not charged: the signed payment is never submitted.
    let err = wallet.get(&format!("{api}/broken")).await.unwrap_err();
    assert!(matches!(err, PayError::Refused { .. }), "{err}");
    assert_eq!((balance(payer).await, wallet.spent().await), (9_000, PRICE));

    // The budget: a second payment fits, a third does not (and is never signed).
    wallet.get(&format!("{api}/weather")).await.unwrap();
    let over = wallet.get(&format!("{api}/weather")).await.unwrap_err();
    assert!(
        matches!(
            over,
            PayError::OverBudget {
                which: "budget",
                ..
            }
        ),
        "{over}"
    );
    let tight = X402Payer::new(
        client.clone(),
        key.secret_key().clone(),
        payer,
        Budget::new(Amount::new(PRICE - 1).unwrap(), 1_000_000),
    );
    let capped = tight.get(&format!("{api}/weather")).await.unwrap_err();
    assert!(
        matches!(
            capped,
            PayError::OverBudget {
                which: "per-payment cap",
                ..
            }
        ),
        "{capped}"
    );
    assert_eq!(
        (balance(payer).await, balance(payee).await),
        (8_000, 2 * PRICE)
    );

    // A replayed PAYMENT-SIGNATURE gets the resource once: the second is refused unpaid.
    let nonce = client.next_nonce(payer).await.unwrap();
    let transfer = UnsignedTransfer {
        from: payer,
        to: payee,
        amount: Amount::new(PRICE).unwrap(),
        fee: Amount::ZERO,
        nonce,
        valid_until: client.deadline(),
    }
    .sign(&client.domain(), key.secret_key());
    let payment = encode_header(&PaymentPayload {
        x402_version: 2,
        resource: None,
        accepted: terms(client, &asset, payee),
        payload: serde_json::to_value(ExactPayload::new(&transfer)).unwrap(),
        extensions: None,
    });
    let send = || {
        reqwest::Client::new()
            .get(format!("{api}/weather"))
            .header(PAYMENT_SIGNATURE, payment.clone())
            .send()
    };
    assert_eq!(send().await.unwrap().status().as_u16(), 200);
    let replay = send().await.unwrap();
    assert_eq!(replay.status().as_u16(), 402);
    let why: PaymentRequired =
        decode_header(replay.headers()[PAYMENT_REQUIRED].as_bytes()).unwrap();
    assert_eq!(
        why.error.as_deref(),
        Some("invalid_exact_rollup_payload_nonce")
    );
    assert_eq!(balance(payer).await, 7_000);
    // A tampered header is refused before the facilitator is asked.
    let tampered = reqwest::Client::new()
        .get(format!("{api}/weather"))
        .header(PAYMENT_SIGNATURE, "bm90IGpzb24=")
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status().as_u16(), 402);
    assert_eq!(balance(payer).await, 7_000);
}
