//! Revenue-share accounts on a devnet node with `--experimental-streams`: an account registers
//! its shares, is locked, anyone's distribute pays its balance out by them (the payees see it
//! in their receipt watch), every refusal comes back with its reason and no effect, the sealed
//! batch publishes the shares in its diff, and a restart keeps them.

use rollup_proto::v1::rollup_client::RollupClient;
use sqlx::Row;
use state::crypto::schnorr::SecretKey;
use state::diff::StateDiff;
use state::tx::{DistributeBody, Domain, UnsignedRegisterShares};
use tonic::transport::Channel;

use super::*;

fn register_shares(
    d: &Domain,
    k: &SecretKey,
    account: AccountIndex,
    parts: &[(AccountIndex, u16)],
    n: u64,
    now: u64,
) -> Transaction {
    UnsignedRegisterShares {
        account,
        parts: parts.to_vec(),
        fee: Amount::new(1).unwrap(),
        nonce: Nonce::new(n).unwrap(),
        valid_until: Timestamp::new(now + 600).unwrap(),
    }
    .sign(d, k)
    .into()
}

fn distribute(
    d: &Domain,
    k: &SecretKey,
    signer: AccountIndex,
    account: AccountIndex,
    n: u64,
    now: u64,
) -> Transaction {
    Unsigned {
        body: DistributeBody { signer, account },
        fee: Amount::ZERO,
        nonce: Nonce::new(n).unwrap(),
        valid_until: Timestamp::new(now + 600).unwrap(),
    }
    .sign(d, k)
    .into()
}

async fn send(c: &mut RollupClient<Channel>, tx: &Transaction) -> pb::Receipt {
    c.submit(raw(tx)).await.unwrap().into_inner()
}

/// Waits (30 s deadline) until a sealed batch's published diff carries `account`'s shares.
async fn wait_for_published_shares(pool: &sqlx::PgPool, account: AccountIndex, node: &TestNode) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let blobs: Vec<Vec<u8>> = sqlx::query(
            "SELECT w.l1_pubdata FROM batches b \
             JOIN batch_witness w ON w.batch_number = b.number ORDER BY b.number",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .filter_map(|r| r.get::<Option<Vec<u8>>, _>(0))
        .collect();
        let published = blobs.iter().any(|b| {
            StateDiff::decode(b)
                .unwrap()
                .shares()
                .iter()
                .any(|r| r.account() == account)
        });
        if published {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no sealed batch published the shares in 30 s; log:\n{}",
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revenue_share_account_is_locked_and_anyone_distributes_it() {
    let db = fresh_database("seq_shares").await;
    let flags = [
        "--experimental-streams",
        "--block-interval-ms",
        "50",
        "--batch-max-blocks",
        "2",
    ];
    let mut node = TestNode::start(&db, &flags).await;
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let (ka, kb, kc) = (key(61), key(62), key(63));
    let alice = register(&mut c, &d, now, &ka).await;
    let bob = register(&mut c, &d, now, &kb).await;
    let carol = register(&mut c, &d, now, &kc).await;
    faucet(&mut c, alice, 1_000).await;
    let parts = [(bob, 7_000), (carol, 3_000)];

    // Refused shares change nothing (alice's nonce stays 0).
    for (bad, reason) in [
        (vec![(bob, 7_000), (carol, 2_999)], "SHARES_NOT_WHOLE"),
        (vec![(bob, 10_000), (alice, 0)], "PAYEES_NOT_SORTED"),
        (vec![(alice, 10_000)], "SELF_PAYEE"),
        (vec![(bob, 0), (carol, 10_000)], "ZERO_PART"),
        (
            vec![(bob, 5_000), (AccountIndex(9_999), 5_000)],
            "UNKNOWN_ACCOUNT",
        ),
    ] {
        let r = send(&mut c, &register_shares(&d, &ka, alice, &bad, 0, now)).await;
        assert_eq!(r.reason_code, reason, "{r:?}");
    }
    let r = send(&mut c, &register_shares(&d, &ka, alice, &parts, 0, now)).await;
    assert!(accepted(&r), "{r:?}");
    let shares = |a: &pb::Account| -> Vec<(u32, u32)> {
        a.shares.iter().map(|s| (s.payee, s.bps)).collect()
    };
    let a = account(&mut c, alice).await;
    assert_eq!(shares(&a), [(bob.0, 7_000), (carol.0, 3_000)]);
    assert_eq!((a.balance, a.nonce), (999, 1));
    let over_http: serde_json::Value =
        reqwest::get(format!("{}/v1/accounts/{}", node.http, alice.0))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        over_http["shares"],
        serde_json::json!([{"to": bob.0, "bps": 7000}, {"to": carol.0, "bps": 3000}])
    );
    assert!(
        over_http.get("lane_nonces").is_none(),
        "no lanes without --experimental-agents"
    );
    let again = [(bob, 5_000), (carol, 5_000)];
    let r = send(&mut c, &register_shares(&d, &ka, alice, &again, 1, now)).await;
    assert_eq!(r.reason_code, "SHARES_ALREADY_SET", "{r:?}");
    // Locked: alice can no longer pay.
    let r = send(&mut c, &transfer(&d, &ka, alice, bob, 5, 0, 1, now + 600)).await;
    assert_eq!(r.reason_code, "SHARES_LOCKED", "{r:?}");

    // Carol, with no balance of her own, distributes alice's 999 (fee 0): payee 2 gets
    // floor(999 x 3000 / 10000) = 299, payee 1 the rest.
    let r = send(&mut c, &distribute(&d, &kc, carol, alice, 0, now)).await;
    assert!(accepted(&r), "{r:?}");
    assert_eq!(account(&mut c, alice).await.balance, 0);
    assert_eq!(account(&mut c, bob).await.balance, 700);
    assert_eq!(account(&mut c, carol).await.balance, 299);
    // Bob, a payee but neither signer nor account, finds it in his receipt watch.
    assert!(
        watch_sees(&mut c, bob, &r.tx_id).await,
        "bob sees the distribute"
    );
    let r = send(&mut c, &distribute(&d, &kc, carol, alice, 1, now)).await;
    assert_eq!(r.reason_code, "NOTHING_TO_DISTRIBUTE", "{r:?}");
    let r = send(&mut c, &distribute(&d, &kc, carol, bob, 1, now)).await;
    assert_eq!(r.reason_code, "NO_SHARES", "{r:?}");
    assert_eq!(
        account(&mut c, carol).await.nonce,
        1,
        "refusals changed nothing"
    );

    // The sealed batch publishes the shares (its diff checked at seal against the old root).
    wait_for_published_shares(&pool, alice, &node).await;

    // A restart keeps the shares and the lock; money paid in is distributed again.
    let before = account(&mut c, alice).await;
    drop(c);
    let code = node.terminate().expect("SIGTERM");
    assert!(code.success(), "{code:?}\nlog:\n{}", node.log_text());
    node.restart().await;
    let mut c = node.client().await;
    assert_eq!(account(&mut c, alice).await, before);
    let r = send(&mut c, &transfer(&d, &ka, alice, bob, 5, 0, 1, now + 600)).await;
    assert_eq!(r.reason_code, "SHARES_LOCKED", "{r:?}");
    faucet(&mut c, alice, 10).await;
    let r = send(&mut c, &distribute(&d, &kb, bob, alice, 0, now)).await;
    assert!(accepted(&r), "{r:?}");
    assert_eq!(account(&mut c, bob).await.balance, 707);
    assert_eq!(account(&mut c, carol).await.balance, 302);
}
