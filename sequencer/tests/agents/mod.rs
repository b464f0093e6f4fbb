//! Agent passports and nonce lanes on a devnet node with `--experimental-agents`: an owner
//! delegates, the agent pays within its policy and is refused past it with the policy's reason,
//! the owner's workers pay on separate lanes, a revocation stops the agent from the next
//! transaction, the owner sweeps, and a restart (snapshots of version 3, the log replayed with
//! lanes) comes back with the same passports and lanes.

use std::time::Duration;

use rollup_proto::v1::rollup_client::RollupClient;
use state::account::{Amount, Nonce, Timestamp};
use state::crypto::schnorr::SecretKey;
use state::lanes::Lane;
use state::passport::{AllowList, Card, Policy};
use state::tx::{Domain, PassportAction, UnsignedPassportTx};
use tonic::transport::Channel;

use super::*;

fn owner_tx(
    d: &Domain,
    sk: &SecretKey,
    owner: AccountIndex,
    action: PassportAction,
    nonce: u64,
    now: u64,
) -> Transaction {
    UnsignedPassportTx {
        owner,
        action,
        fee: Amount::new(1).unwrap(),
        nonce: Nonce::new(nonce).unwrap(),
        valid_until: Timestamp::new(now + 600).unwrap(),
    }
    .sign(d, sk)
    .into()
}

async fn send(c: &mut RollupClient<Channel>, tx: &Transaction) -> pb::Receipt {
    c.submit(raw(tx)).await.expect("submit").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_spends_within_its_policy_on_a_node_with_experimental_agents() {
    let db = fresh_database("seq_agents").await;
    let flags = [
        "--experimental-agents",
        "--block-interval-ms",
        "50",
        "--batch-max-blocks",
        "2",
    ];
    let mut node = TestNode::start(&db, &flags).await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ka, kb, kagent) = (key(51), key(52), key(53));
    let alice = register(&mut c, &d, now, &ka).await;
    let bob = register(&mut c, &d, now, &kb).await;
    faucet(&mut c, alice, 10_000).await;

    let policy = Policy {
        cap: Amount::new(150).unwrap(),
        window: 3600,
        max_payment: Amount::new(100).unwrap(),
        max_fee: Amount::new(2).unwrap(),
        expiry: Timestamp::new(now + 3600).unwrap(),
        allow: AllowList::new(vec![bob]).unwrap(),
        card: Card::new([9; 32], "https://agents.example/shopper.json".into()).unwrap(),
    };
    let delegate = PassportAction::Delegate {
        agent_key: kagent.public_key().into(),
        fund: Amount::new(1_000).unwrap(),
        policy: policy.clone(),
    };
    let r = send(&mut c, &owner_tx(&d, &ka, alice, delegate, 0, now)).await;
    assert!(accepted(&r), "{r:?}");
    let agent = AccountIndex(r.account_index.expect("the agent's index"));

    let p = c
        .get_passport(pb::GetAccountRequest { index: agent.0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((p.owner, p.remaining, p.revoked), (alice.0, 150, false));
    assert_eq!(
        p.policy.as_ref().map(|p| p.allow.clone()),
        Some(vec![bob.0])
    );
    let a = account(&mut c, alice).await;
    assert_eq!(a.agents, vec![agent.0]);
    assert_eq!(
        a.lane_nonces.len(),
        7,
        "a node with lanes reports lanes 1 to 7"
    );
    let not_agent = c
        .get_passport(pb::GetAccountRequest { index: bob.0 })
        .await
        .unwrap_err();
    assert_eq!(not_agent.code(), tonic::Code::NotFound);
    assert!(
        not_agent.message().starts_with("NOT_AN_AGENT"),
        "{not_agent:?}"
    );

    // Within the policy, then each breach with its reason.
    let pay = |to, amount, fee, n| transfer(&d, &kagent, agent, to, amount, fee, n, now + 600);
    let r = send(&mut c, &pay(bob, 100, 1, 0)).await;
    assert!(accepted(&r), "{r:?}");
    for (tx, reason) in [
        (pay(bob, 60, 1, 1), "POLICY_CAP"),
        (pay(alice, 10, 1, 1), "POLICY_PAYEE"),
        (pay(bob, 10, 3, 1), "POLICY_FEE"),
        (pay(bob, 101, 0, 1), "POLICY_PAYMENT"),
    ] {
        let r = send(&mut c, &tx).await;
        assert_eq!(r.reason_code, reason, "{r:?}");
    }
    let raise = PassportAction::SetPolicy {
        agent,
        policy: Policy {
            cap: Amount::new(1_000_000).unwrap(),
            ..policy.clone()
        },
    };
    let r = send(&mut c, &owner_tx(&d, &kagent, agent, raise, 1, now)).await;
    assert_eq!(
        r.reason_code, "NOT_OWNER",
        "the agent cannot raise its own cap"
    );
    let p = c
        .get_passport(pb::GetAccountRequest { index: agent.0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((p.spent, p.remaining), (101, 49));
    // The same over HTTP: the agent's passport, the owner's agents and lane nonces.
    let http = |i: state::account::AccountIndex| {
        let url = format!("{}/v1/accounts/{}", node.http, i.0);
        async move {
            let r = reqwest::get(url).await.unwrap();
            assert!(r.status().is_success(), "{r:?}");
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let a = http(agent).await;
    assert_eq!(a["passport"]["owner"], alice.0);
    assert_eq!(
        (
            a["passport"]["spent"].as_u64(),
            a["passport"]["remaining"].as_u64()
        ),
        (Some(101), Some(49))
    );
    assert_eq!(a["passport"]["policy"]["cap"], 150);
    let o = http(alice).await;
    assert_eq!(o["agents"], serde_json::json!([agent.0]));
    assert!(o["passport"].is_null());
    assert_eq!(o["lane_nonces"].as_array().map(Vec::len), Some(7));

    // Alice's workers pay on lanes 0, 3 and 5 without coordinating; a replay in a lane fails.
    let lane = |l: u8, seq: u64| Nonce::in_lane(Lane::new(l).unwrap(), seq).unwrap().get();
    for n in [lane(3, 0), lane(5, 0), 1, lane(3, 1), lane(5, 1)] {
        let r = send(&mut c, &transfer(&d, &ka, alice, bob, 5, 0, n, now + 600)).await;
        assert!(accepted(&r), "nonce {n:#x}: {r:?}");
    }
    // (Another payment at a used nonce: the same one again would get its original receipt.)
    let r = send(
        &mut c,
        &transfer(&d, &ka, alice, bob, 6, 0, lane(3, 1), now + 600),
    )
    .await;
    assert_eq!(r.reason_code, "BAD_NONCE", "{r:?}");
    let a = account(&mut c, alice).await;
    assert_eq!(a.nonce, 2);
    assert_eq!(a.lane_nonces[2], lane(3, 2));
    assert_eq!(a.lane_nonces[4], lane(5, 2));

    // Revocation: from the next transaction on; the owner sweeps the rest back.
    let revoke = PassportAction::Revoke { agent };
    let r = send(&mut c, &owner_tx(&d, &ka, alice, revoke, 2, now)).await;
    assert!(accepted(&r), "{r:?}");
    let r = send(&mut c, &pay(bob, 1, 0, 1)).await;
    assert_eq!(r.reason_code, "REVOKED", "{r:?}");
    let sweep = PassportAction::Sweep {
        agent,
        amount: Amount::new(899).unwrap(),
    };
    let r = send(&mut c, &owner_tx(&d, &ka, alice, sweep, 3, now)).await;
    assert!(accepted(&r), "{r:?}");
    assert_eq!(account(&mut c, agent).await.balance, 0);

    // A restart replays the log (lanes accepted again) and comes back with the same state.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = (account(&mut c, alice).await, account(&mut c, agent).await);
    drop(c);
    let code = node.terminate().expect("SIGTERM");
    assert!(code.success(), "{code:?}\nlog:\n{}", node.log_text());
    node.restart().await;
    let mut c = node.client().await;
    assert_eq!(
        (account(&mut c, alice).await, account(&mut c, agent).await),
        before
    );
    let p = c
        .get_passport(pb::GetAccountRequest { index: agent.0 })
        .await
        .unwrap()
        .into_inner();
    assert!(p.revoked);
    let r = send(
        &mut c,
        &transfer(&d, &ka, alice, bob, 5, 0, lane(5, 2), now + 600),
    )
    .await;
    assert!(accepted(&r), "lanes survive the restart: {r:?}");
}
