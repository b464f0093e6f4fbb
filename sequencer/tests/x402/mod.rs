//! The node's x402 v2 facilitator (/x402), over real HTTP against a real node: a payment is
//! verified without being applied, settled once, never twice, and every payment for
//! something else, forged, stale or unpayable is refused with its x402 reason and settles
//! nothing.

use rollup_proto::v1::rollup_client::RollupClient;
use rollup_x402::exact::{network_id, ExactPayload, SCHEME};
use rollup_x402::wire::{
    FacilitatorRequest, PaymentPayload, PaymentRequirements, SettleResponse, SupportedResponse,
    VerifyResponse,
};
use serde_json::{json, Value};
use state::account::AccountIndex;
use state::tx::{Domain, Transaction};
use tonic::transport::Channel;

use crate::common::*;

/// The asset the test node announces (`--x402-asset`).
const ASSET: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

struct Facilitator {
    base: String,
    http: reqwest::Client,
}

impl Facilitator {
    fn of(node: &TestNode) -> Facilitator {
        Facilitator {
            base: format!("{}/x402", node.http),
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("facilitator answers");
        let status = r.status().as_u16();
        (status, r.json().await.expect("an x402 JSON document"))
    }

    async fn verify(&self, req: &FacilitatorRequest) -> (u16, VerifyResponse) {
        let (s, v) = self
            .post("verify", &serde_json::to_value(req).unwrap())
            .await;
        (s, serde_json::from_value(v).expect("a VerifyResponse"))
    }

    async fn settle(&self, req: &FacilitatorRequest) -> (u16, SettleResponse) {
        let (s, v) = self
            .post("settle", &serde_json::to_value(req).unwrap())
            .await;
        (s, serde_json::from_value(v).expect("a SettleResponse"))
    }
}

fn requirements(d: &Domain, pay_to: AccountIndex, amount: u64) -> PaymentRequirements {
    PaymentRequirements::exact(network_id(d), ASSET, pay_to, amount, 60)
}

fn request(tx: &Transaction, req: &PaymentRequirements) -> FacilitatorRequest {
    let Transaction::Transfer(t) = tx else {
        panic!("a transfer")
    };
    FacilitatorRequest {
        x402_version: Some(2),
        payment_payload: PaymentPayload {
            x402_version: 2,
            resource: None,
            accepted: req.clone(),
            payload: serde_json::to_value(ExactPayload::new(t)).unwrap(),
            extensions: None,
        },
        payment_requirements: req.clone(),
    }
}

struct World {
    node: TestNode,
    c: RollupClient<Channel>,
    d: Domain,
    now: u64,
    payer_key: state::crypto::schnorr::SecretKey,
    payer: AccountIndex,
    payee: AccountIndex,
    other: AccountIndex,
}

async fn world(name: &str) -> World {
    let db = fresh_database(name).await;
    let node = TestNode::start(&db, &["--x402-asset", ASSET]).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (kp, kq, ko) = (key(4021), key(4022), key(4023));
    let payer = register(&mut c, &d, now, &kp).await;
    let payee = register(&mut c, &d, now, &kq).await;
    let other = register(&mut c, &d, now, &ko).await;
    faucet(&mut c, payer, 10_000).await;
    World {
        node,
        c,
        d,
        now,
        payer_key: kp,
        payer,
        payee,
        other,
    }
}

async fn balance_and_nonce(c: &mut RollupClient<Channel>, i: AccountIndex) -> (u64, u64) {
    let a = account(c, i).await;
    (a.balance, a.nonce)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_verified_without_being_applied_and_settled_exactly_once() {
    let mut w = world("x402_settle").await;
    let f = Facilitator::of(&w.node);

    let supported: SupportedResponse = reqwest::get(format!("{}/supported", f.base))
        .await
        .expect("GET /supported")
        .json()
        .await
        .expect("a SupportedResponse");
    assert_eq!(supported.kinds.len(), 1, "{supported:?}");
    let kind = &supported.kinds[0];
    assert_eq!(
        (
            kind.x402_version,
            kind.scheme.as_str(),
            kind.network.as_str()
        ),
        (2, SCHEME, network_id(&w.d).as_str())
    );
    assert_eq!(kind.extra, Some(json!({ "asset": ASSET })));

    let terms = requirements(&w.d, w.payee, 1_000);
    let tx = transfer(
        &w.d,
        &w.payer_key,
        w.payer,
        w.payee,
        1_000,
        0,
        0,
        w.now + 600,
    );
    let req = request(&tx, &terms);

    let (status, v) = f.verify(&req).await;
    assert_eq!(status, 200);
    assert!(v.is_valid, "{v:?}");
    assert_eq!(v.payer.as_deref(), Some(w.payer.0.to_string().as_str()));
    // Verifying twice is fine: nothing was applied.
    assert!(f.verify(&req).await.1.is_valid);
    assert_eq!(balance_and_nonce(&mut w.c, w.payer).await, (10_000, 0));

    let (status, s) = f.settle(&req).await;
    assert_eq!(status, 200);
    assert!(s.success, "{s:?}");
    assert_eq!(
        s.transaction,
        format!("0x{}", hex::encode(tx.id(&w.d).0.to_bytes()))
    );
    assert_eq!(s.network, network_id(&w.d));
    assert_eq!(s.amount.as_deref(), Some("1000"));
    let extra = s.extra.clone().expect("settlement details");
    assert_eq!(extra["finality"], "accepted", "{extra}");
    assert!(
        extra["blockNumber"].as_u64().is_some_and(|b| b >= 1),
        "{extra}"
    );
    assert_eq!(balance_and_nonce(&mut w.c, w.payer).await, (9_000, 1));
    assert_eq!(balance_and_nonce(&mut w.c, w.payee).await, (1_000, 0));
    // The settled transaction is the rollup's: its id answers on the node's HTTP API.
    let by_id = reqwest::get(format!("{}/v1/txs/{}", w.node.http, s.transaction))
        .await
        .expect("GET /v1/txs");
    assert_eq!(by_id.status().as_u16(), 200);

    // The same payment again: refused by both, pays nothing, names the first settlement.
    let (status, again) = f.settle(&req).await;
    assert_eq!(status, 200);
    assert!(!again.success);
    assert_eq!(
        again.error_reason.as_deref(),
        Some("invalid_exact_rollup_payload_already_settled")
    );
    assert_eq!(again.transaction, s.transaction);
    let (_, v) = f.verify(&req).await;
    assert!(!v.is_valid);
    assert_eq!(
        v.invalid_reason.as_deref(),
        Some("invalid_exact_rollup_payload_nonce")
    );
    assert_eq!(balance_and_nonce(&mut w.c, w.payer).await, (9_000, 1));
    assert_eq!(balance_and_nonce(&mut w.c, w.payee).await, (1_000, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payments_are_refused_with_their_reason_and_settle_nothing() {
    let mut w = world("x402_refuse").await;
    let f = Facilitator::of(&w.node);
    let (d, now, kp, payer, payee) = (w.d, w.now, &w.payer_key, w.payer, w.payee);
    let terms = requirements(&d, payee, 1_000);
    let good = transfer(&d, kp, payer, payee, 1_000, 0, 0, now + 600);

    let mut cases: Vec<(&str, FacilitatorRequest, &str)> = Vec::new();
    // For another payee, another amount.
    let to_other = transfer(&d, kp, payer, w.other, 1_000, 0, 0, now + 600);
    cases.push((
        "pays another account",
        request(&to_other, &terms),
        "invalid_exact_rollup_payload_recipient_mismatch",
    ));
    let less = transfer(&d, kp, payer, payee, 999, 0, 0, now + 600);
    cases.push((
        "pays less",
        request(&less, &terms),
        "invalid_exact_rollup_payload_amount_mismatch",
    ));
    // The client accepted other terms than the server's.
    let mut r = request(&good, &terms);
    r.payment_payload.accepted.pay_to = w.other.0.to_string();
    cases.push(("accepted another payee", r, "invalid_payment_requirements"));
    // Another network, asset, scheme or version.
    let mut elsewhere = terms.clone();
    elsewhere.network = "eip155:8453".into();
    cases.push((
        "another network",
        request(&good, &elsewhere),
        "invalid_network",
    ));
    let mut other_asset = terms.clone();
    other_asset.asset = "0x0000000000000000000000000000000000000bad".into();
    cases.push((
        "another asset",
        request(&good, &other_asset),
        "invalid_payment_requirements",
    ));
    let mut upto = terms.clone();
    upto.scheme = "upto".into();
    cases.push((
        "another scheme",
        request(&good, &upto),
        "unsupported_scheme",
    ));
    let mut v1 = request(&good, &terms);
    v1.payment_payload.x402_version = 1;
    cases.push(("version 1", v1, "invalid_x402_version"));
    // Forged: signed by a key that is not the payer's.
    let forged = transfer(&d, &key(666), payer, payee, 1_000, 0, 0, now + 600);
    cases.push((
        "forged signature",
        request(&forged, &terms),
        "invalid_exact_rollup_payload_signature",
    ));
    // Tampered after signing: the fee byte changed, the signature no longer covers it.
    let mut tampered = request(&good, &terms);
    let mut bytes = good.encode();
    bytes[1 + 4 + 4 + 8] ^= 1; // the fee's low byte
    tampered.payment_payload.payload = json!({"transaction": format!("0x{}", hex::encode(&bytes))});
    cases.push((
        "tampered fee",
        tampered,
        "invalid_exact_rollup_payload_signature",
    ));
    let mut garbage = request(&good, &terms);
    garbage.payment_payload.payload = json!({"transaction": "0x01ff"});
    cases.push(("undecodable transaction", garbage, "invalid_payload"));
    // Stale or unpayable.
    let expired = transfer(&d, kp, payer, payee, 1_000, 0, 0, now - 120);
    cases.push((
        "expired",
        request(&expired, &terms),
        "invalid_exact_rollup_payload_expired",
    ));
    let future_nonce = transfer(&d, kp, payer, payee, 1_000, 0, 5, now + 600);
    cases.push((
        "nonce out of order",
        request(&future_nonce, &terms),
        "invalid_exact_rollup_payload_nonce",
    ));
    let dear = requirements(&d, payee, 50_000);
    let overspend = transfer(&d, kp, payer, payee, 50_000, 0, 0, now + 600);
    cases.push((
        "overspend",
        request(&overspend, &dear),
        "insufficient_funds",
    ));
    let nobody = transfer(&d, kp, AccountIndex(9_999), payee, 1_000, 0, 0, now + 600);
    cases.push((
        "unknown payer",
        request(&nobody, &terms),
        "invalid_exact_rollup_payload_unknown_payer",
    ));

    for (what, req, reason) in &cases {
        let (status, v) = f.verify(req).await;
        assert_eq!(status, 200, "{what}: verify status");
        assert!(!v.is_valid, "{what}: verified");
        assert_eq!(v.invalid_reason.as_deref(), Some(*reason), "{what}: {v:?}");
        let (status, s) = f.settle(req).await;
        assert_eq!(status, 200, "{what}: settle status");
        assert!(!s.success, "{what}: settled");
        assert_eq!(s.error_reason.as_deref(), Some(*reason), "{what}: {s:?}");
    }
    // A body that is not a facilitator request: 400 with an x402 document.
    let (status, v) = f.post("verify", &json!({"paymentPayload": 7})).await;
    assert_eq!(status, 400);
    assert_eq!(v["isValid"], false);
    assert_eq!(v["invalidReason"], "invalid_payload");
    let (status, s) = f.post("settle", &json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(s["success"], false);
    assert_eq!(s["transaction"], "");

    // Nothing moved; the honest payment still settles afterwards.
    assert_eq!(balance_and_nonce(&mut w.c, payer).await, (10_000, 0));
    assert_eq!(balance_and_nonce(&mut w.c, payee).await, (0, 0));
    let (_, s) = f.settle(&request(&good, &terms)).await;
    assert!(s.success, "{s:?}");
}
