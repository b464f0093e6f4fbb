//! The bridge inside the real `rollup-node` binary, against a real anvil and Postgres:
//! L1 deposits credited once after the depth (no faucet), batches committed and finalized on
//! L1, a withdrawal claimed once with the node's payout proof, and the event feed (gRPC and
//! SSE) resumed from a cursor after a kill -9 delivering every event exactly once, in order.

mod common;

use std::time::{Duration, Instant};

use alloy_sol_types::{SolCall, SolEvent};
use common::*;
use devkit::anvil::Anvil;
use futures::StreamExt;
use rollup_bridge::contracts::{Rollup, TestStablecoin};
use rollup_bridge::deploy::{self, DeployConfig};
use rollup_bridge::rpc::Rpc;
use rollup_bridge::signer::L1Signer;
use rollup_bridge::{Address, Bytes, B256, U256};
use rollup_proto::v1 as pb;
use rollup_proto::v1::bridge_events_client::BridgeEventsClient;
use rollup_proto::v1::rollup_client::RollupClient;
use serde_json::json;
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::apply::State;
use state::tx::{Domain, L1Address, Transaction, UnsignedWithdraw};
use tonic::transport::Channel;

/// anvil's second dev key (publicly known).
const ANVIL_DEV_KEY_1: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

async fn wait_for<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn mine(rpc: &Rpc, n: u64) {
    let _: serde_json::Value = rpc
        .request("anvil_mine", json!([format!("0x{n:x}")]))
        .await
        .unwrap();
}

async fn watch_events(grpc: &str, cursor: u64, n: usize) -> Vec<pb::BridgeEvent> {
    let mut c = BridgeEventsClient::connect(grpc.to_string()).await.unwrap();
    let stream = c
        .watch(pb::WatchBridgeEventsRequest { cursor })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(
        Duration::from_secs(20),
        stream.take(n).map(|e| e.unwrap()).collect::<Vec<_>>(),
    )
    .await
    .expect("events within 20 s")
}

/// anvil with the contracts deployed (genesis root of the devnet operator), 1,000,000 tokens
/// minted to `alice` (anvil's second account), and a node with the bridge on a fresh database
/// (2 confirmations, 100 ms polls, a batch per block; `flags`, to start another node on it).
struct Bridge {
    anvil: Anvil,
    rpc: Rpc,
    d: deploy::Deployment,
    alice: Address,
    db: String,
    node: TestNode,
    flags: Vec<String>,
}

impl Bridge {
    async fn start(db_prefix: &str) -> Bridge {
        Bridge::start_with(db_prefix, &[]).await
    }

    /// [`Bridge::start`] with `extra` node flags for the first node only.
    async fn start_with(db_prefix: &str, extra: &[&str]) -> Bridge {
        let anvil = Anvil::start(&[]).expect("anvil (run scripts/ensure-l1-tools.sh)");
        let rpc = Rpc::new(anvil.endpoint());
        rpc.wait_ready(Duration::from_secs(10)).await.unwrap();
        let accounts = rpc.accounts().await.unwrap();
        let (operator, alice) = (accounts[0], accounts[1]);
        // The genesis root does not depend on the domain: deploy with it, then start the node.
        let genesis = State::genesis(
            Domain {
                chain_id: 31337,
                rollup: [0; 20],
            },
            rollup_sequencer::node::devnet_operator_key().public_key(),
        )
        .root();
        let d = deploy::deploy_devnet(
            &rpc,
            &DeployConfig::devnet(operator, B256::from(genesis.to_bytes())),
        )
        .await
        .unwrap();
        deploy::mint(&rpc, &d, operator, alice, 1_000_000)
            .await
            .unwrap();
        let db = fresh_database(db_prefix).await;
        let flags: Vec<String> = [
            "--l1-rpc",
            &anvil.endpoint(),
            "--rollup-address",
            &format!("{}", d.rollup),
            "--l1-confirmations",
            "2",
            "--l1-poll-ms",
            "100",
            "--batch-max-blocks",
            "1",
            "--batch-max-secs",
            "1",
        ]
        .iter()
        .map(|f| f.to_string())
        .collect();
        let mut first: Vec<&str> = flags.iter().map(String::as_str).collect();
        first.extend_from_slice(extra);
        let node = TestNode::start(&db, &first).await;
        Bridge {
            anvil,
            rpc,
            d,
            alice,
            db,
            node,
            flags,
        }
    }
}

/// Deposits `amount` on L1 (from `alice`) to account `a`, whose L2 balance is 0, buries it
/// under the node's 2 confirmations and waits until L2 has credited it.
async fn deposit_credited(
    rpc: &Rpc,
    d: &deploy::Deployment,
    alice: Address,
    c: &RollupClient<Channel>,
    a: AccountIndex,
    amount: u64,
) {
    deploy::deposit(rpc, d, alice, a.0, amount).await.unwrap();
    mine(rpc, 2).await;
    wait_for("the deposit to be credited", 20, || {
        let mut c = c.clone();
        async move { account(&mut c, a).await.balance == amount }
    })
    .await;
}

/// Marks every sealed batch proven (as the prover would, with a stand-in proof) while mining,
/// until `done` holds.
async fn prove_until<F, Fut>(anvil: &Anvil, pool: &sqlx::PgPool, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let miner = {
        let rpc = Rpc::new(anvil.endpoint());
        tokio::spawn(async move {
            loop {
                mine(&rpc, 1).await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    let diag_pool = pool.clone();
    let waited = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(wait_for(what, 60, || {
        let pool = pool.clone();
        let done = done();
        async move {
            sqlx::query(
                "INSERT INTO batch_proofs (batch_number, top_level, proof, statement, digest, leaves, prove_ms) \
                 SELECT number, 0, '\\x01'::bytea, '{}'::jsonb, '\\x00'::bytea, 1, 0 FROM batches \
                 WHERE status = 'sealed' ON CONFLICT DO NOTHING",
            )
            .execute(&pool)
            .await
            .unwrap();
            // Only batches that have their stand-in proof: one sealed between the two
            // statements must wait for the next round (marked proven without a proof, the
            // submitter would refuse it forever).
            sqlx::query(
                "UPDATE batches SET status = 'proven' WHERE status = 'sealed' \
                 AND number IN (SELECT batch_number FROM batch_proofs)",
            )
                .execute(&pool)
                .await
                .unwrap();
            done.await
        }
    })))
    .await;
    if let Err(panic) = waited {
        let batches: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT number, last_seq, status FROM batches ORDER BY number")
                .fetch_all(&diag_pool)
                .await
                .unwrap_or_default();
        let subs: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
            "SELECT batch_number, kind, status, error FROM l1_submissions ORDER BY id",
        )
        .fetch_all(&diag_pool)
        .await
        .unwrap_or_default();
        eprintln!("batches {batches:?}\nl1_submissions {subs:?}");
        std::panic::resume_unwind(panic);
    }
    miner.abort();
}

/// [`prove_until`] `payouts` payouts in all are finalized on L1; returns the batch of the
/// first payout.
async fn prove_until_payouts_are_final(anvil: &Anvil, pool: &sqlx::PgPool, payouts: i64) -> i64 {
    prove_until(
        anvil,
        pool,
        "the batches with the payouts to be finalized",
        || {
            let pool = pool.clone();
            async move {
                let n: i64 = sqlx::query_scalar(
                    "SELECT coalesce(sum(jsonb_array_length(l.payouts)), 0)::bigint FROM l1_batches l \
                     JOIN batches b ON b.number = l.batch_number WHERE b.status = 'finalized'",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                n == payouts
            }
        },
    )
    .await;
    sqlx::query_scalar(
        "SELECT batch_number FROM l1_batches WHERE jsonb_array_length(payouts) > 0 \
         ORDER BY batch_number LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Every batch committed on L1 carries the statement the node derived from what the batch's
/// proof binds (`l1_batches.statement`, SPEC 16.3): the contract, computing it from its own
/// storage and the calldata (SPEC 15.3), arrived at the same 32 bytes.
async fn assert_l1_statements_are_the_nodes(
    rpc: &Rpc,
    d: &deploy::Deployment,
    pool: &sqlx::PgPool,
) {
    let head = rpc.block_number().await.unwrap();
    let logs = rpc
        .logs(d.rollup, &[Rollup::BatchCommitted::SIGNATURE_HASH], 0, head)
        .await
        .unwrap();
    assert!(!logs.is_empty());
    for l in logs {
        let ev = Rollup::BatchCommitted::decode_raw_log(l.topics.iter().copied(), &l.data).unwrap();
        let ours: Vec<u8> =
            sqlx::query_scalar("SELECT statement FROM l1_batches WHERE batch_number = $1")
                .bind(ev.batchNumber as i64)
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(
            ev.statement.as_slice(),
            &ours[..],
            "batch {}",
            ev.batchNumber
        );
        assert_eq!(rollup_bridge::hashes::statement_hash(&ev.s), ev.statement);
        // The statement the settlement proof must prove (SPEC 13.11), derived by the prover's
        // job store from the node's and the watcher's records alone, is the contract's.
        let jobs = rollup_prover::jobs::JobStore::from_pool(pool.clone());
        let row = jobs.batch(ev.batchNumber).await.unwrap().unwrap();
        let expected = jobs.settlement_statement(&row).await.unwrap();
        assert_eq!(
            expected.hash().as_slice(),
            ev.statement.as_slice(),
            "batch {}: the prover expects {expected:?}",
            ev.batchNumber
        );
    }
}

/// Claims a payout on L1 (anyone may: anvil's second key sends it); a second claim is rejected.
async fn claim_once(rpc: &Rpc, d: &deploy::Deployment, claim: &Rollup::claimWithdrawalCall) {
    let claimer = L1Signer::from_hex(ANVIL_DEV_KEY_1).unwrap();
    rpc.send_signed(&claimer, d.rollup, claim.abi_encode().into())
        .await
        .expect("first claim");
    assert!(rpc
        .send_signed(&claimer, d.rollup, claim.abi_encode().into())
        .await
        .is_err());
}

async fn token_balance(rpc: &Rpc, d: &deploy::Deployment, who: Address) -> U256 {
    let bal = rpc
        .call(
            d.token,
            Bytes::from(TestStablecoin::balanceOfCall(who).abi_encode()),
        )
        .await
        .unwrap();
    U256::from_be_slice(&bal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_deposits_batches_claims_and_a_resumable_feed() {
    let Bridge {
        anvil,
        rpc,
        d,
        alice,
        db,
        node,
        ..
    } = Bridge::start("bridge_node").await;
    let mut node = node;
    let mut c = node.client().await;
    let (domain, now) = domain(&mut c).await;
    assert_eq!(domain.rollup, d.rollup.0 .0);

    // Money enters through L1 only.
    let sk = key(1);
    let a = register(&mut c, &domain, now, &sk).await;
    let err = c
        .faucet(pb::FaucetRequest {
            account: a.0,
            amount: 5,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(err.message().contains("FAUCET_DISABLED"), "{err}");

    // A deposit is credited only after 2 confirmations, and only once.
    deploy::deposit(&rpc, &d, alice, a.0, 1_000).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(account(&mut c, a).await.balance, 0, "depth 0 < 2");
    mine(&rpc, 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(account(&mut c, a).await.balance, 0, "depth 1 < 2");
    mine(&rpc, 1).await;
    let c2 = c.clone();
    wait_for("the deposit to be credited", 20, || {
        let mut c = c2.clone();
        async move { account(&mut c, a).await.balance == 1_000 }
    })
    .await;
    mine(&rpc, 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(account(&mut c, a).await.balance, 1_000, "credited once");

    // Events so far, over gRPC: seen, confirmed, credited.
    let first = watch_events(&node.grpc, 0, 3).await;
    let kinds: Vec<&str> = first.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["deposit_seen", "deposit_confirmed", "deposit_credited"]
    );
    assert_eq!(first[2].finality, "accepted");
    assert_eq!(first[0].l1_tx_hash.len(), 32);

    // Kill -9 and restart: resuming from the last cursor gives the later events exactly once.
    node.kill9();
    node.restart().await;
    c = node.client().await;
    assert_eq!(
        account(&mut c, a).await.balance,
        1_000,
        "no double credit after restart"
    );
    deploy::deposit(&rpc, &d, alice, a.0, 500).await.unwrap();
    mine(&rpc, 2).await;
    let rest = watch_events(&node.grpc, first[2].cursor, 3).await;
    let kinds: Vec<&str> = rest.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["deposit_seen", "deposit_confirmed", "deposit_credited"]
    );
    let all = watch_events(&node.grpc, 0, 6).await;
    assert_eq!(all[..3], first[..]);
    assert_eq!(all[3..], rest[..]);
    assert!(all.windows(2).all(|w| w[0].cursor < w[1].cursor));
    let payload: serde_json::Value = serde_json::from_str(&rest[2].payload_json).unwrap();
    assert_eq!(payload["serial"], 1);
    assert_eq!(payload["amount"], 500);

    // SSE: the same feed, `id:` = cursor, resumable with Last-Event-ID.
    let http = reqwest::Client::new();
    let mut resp = http
        .get(format!("{}/v1/bridge/events", node.http))
        .header("Last-Event-ID", all[3].cursor.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut text = String::new();
    while text.matches("\n\n").count() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(&format!("id: {}\n", all[4].cursor)), "{text}");
    assert!(text.contains("event: deposit_confirmed"), "{text}");
    assert!(
        !text.contains(&format!("id: {}\n", all[3].cursor)),
        "{text}"
    );

    // Withdraw on L2, let batches be "proven" (as the prover would mark them), and watch the
    // node commit and finalize them on L1.
    let bob = Address::repeat_byte(0xb0);
    let w = UnsignedWithdraw {
        from: a,
        to_l1: L1Address(bob.0 .0),
        amount: Amount::new(300).unwrap(),
        fee: Amount::new(0).unwrap(),
        nonce: Nonce::new(0).unwrap(),
        valid_until: Timestamp::new(now + 3600).unwrap(),
    }
    .sign(&domain, &sk);
    let r = c
        .submit(raw(&Transaction::Withdraw(w)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, pb::TxStatus::Accepted as i32, "{r:?}");
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let batch = prove_until_payouts_are_final(&anvil, &pool, 1).await;
    assert_l1_statements_are_the_nodes(&rpc, &d, &pool).await;
    let last_committed: u64 = Rollup::lastCommittedBatchCall::abi_decode_returns(
        &rpc.call(
            d.rollup,
            Rollup::lastCommittedBatchCall {}.abi_encode().into(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(last_committed >= batch as u64);

    // The payout proof from the node, claimed on L1 by anyone (alice's key); twice fails.
    let p: serde_json::Value = http
        .get(format!("{}/v1/withdrawals/{batch}/0/proof", node.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["claimable"], true, "{p}");
    assert_eq!(p["amount"], 300);
    let claim = Rollup::claimWithdrawalCall {
        batchNumber: batch as u64,
        index: 0,
        from: p["from"].as_u64().unwrap(),
        to: serde_json::from_value(p["to"].clone()).unwrap(),
        amount: 300,
        proof: serde_json::from_value(p["proof"].clone()).unwrap(),
    };
    claim_once(&rpc, &d, &claim).await;
    assert_eq!(token_balance(&rpc, &d, bob).await, U256::from(300));

    // The feed tells the whole story, in order, each event once.
    mine(&rpc, 3).await;
    let mut c = BridgeEventsClient::connect(node.grpc.clone())
        .await
        .unwrap();
    let mut s = c
        .watch(pb::WatchBridgeEventsRequest { cursor: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    let mut last = 0;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(3), s.next()).await {
        let e = e.unwrap();
        assert!(e.cursor > last);
        last = e.cursor;
        kinds.push(e.kind);
    }
    for k in [
        "batch_committed",
        "batch_finalized",
        "withdrawal_claimable",
        "withdrawal_claimed",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    assert_eq!(
        kinds.iter().filter(|k| *k == "withdrawal_claimed").count(),
        1
    );
    assert_eq!(kinds.iter().filter(|k| *k == "deposit_credited").count(), 2);

    // Anyone can rebuild the L2 state from L1 alone (SPEC 10.4): the state diffs the node
    // committed, across the kill -9 above, lead to the node's roots and balances.
    let rebuilt = rollup_bridge::rebuild::rebuild(
        &rpc,
        &rollup_bridge::rebuild::RebuildConfig {
            rollup: d.rollup,
            from_block: 0,
            max_range: 10_000,
            until: None,
        },
        rollup_sequencer::node::devnet_operator_key().public_key(),
        |_| {},
    )
    .await
    .expect("the L2 state rebuilds from L1");
    assert!(rebuilt.batches >= batch as u64);
    let node_root: Vec<u8> = sqlx::query_scalar("SELECT new_root FROM batches WHERE number = $1")
        .bind(rebuilt.batches as i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rebuilt.tree.root().to_bytes().to_vec(), node_root);
    let mut rc = node.client().await;
    assert_eq!(
        rebuilt.tree.accounts()[a.0 as usize].balance.get(),
        account(&mut rc, a).await.balance
    );
    assert_eq!(rebuilt.tree.total_balance(), 1_200);
}

/// Every event of the feed from cursor 0 that arrives within a few seconds of quiet.
async fn all_events(grpc: &str) -> Vec<pb::BridgeEvent> {
    let mut c = BridgeEventsClient::connect(grpc.to_string()).await.unwrap();
    let mut s = c
        .watch(pb::WatchBridgeEventsRequest { cursor: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(3), s.next()).await {
        out.push(e.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_withdrawals_are_consumed_in_queue_order_and_claimed_on_l1() {
    let Bridge {
        anvil,
        rpc,
        d,
        alice,
        db,
        node,
        ..
    } = Bridge::start("bridge_forced").await;
    let mut c = node.client().await;
    let (domain, now) = domain(&mut c).await;
    let sk = key(1);
    let a = register(&mut c, &domain, now, &sk).await;
    deposit_credited(&rpc, &d, alice, &c, a, 1_000).await;

    // Anyone (here alice's L1 key) queues two signed withdraws of account `a` on L1: one
    // signed by another key, one by the account's key. Then a deposit queues behind them.
    let to = Address::repeat_byte(0xb0);
    let withdraw = |signer: &state::crypto::schnorr::SecretKey, amount: u64| {
        Transaction::Withdraw(
            UnsignedWithdraw {
                from: a,
                to_l1: L1Address(to.0 .0),
                amount: Amount::new(amount).unwrap(),
                fee: Amount::new(0).unwrap(),
                nonce: Nonce::new(0).unwrap(),
                valid_until: Timestamp::new(now + 3600).unwrap(),
            }
            .sign(&domain, signer),
        )
    };
    let requester = L1Signer::from_hex(ANVIL_DEV_KEY_1).unwrap();
    let request = |tx: Vec<u8>| Rollup::requestForcedWithdrawalCall {
        withdrawTx: tx.into(),
    };
    // L1 refuses an encoding the L2 could not decode (here a fee above 2^63 - 1).
    let mut malformed = withdraw(&sk, 200).encode();
    malformed[33 + 7] = 0x80;
    let fee = view(&rpc, &d, Rollup::FORCED_REQUEST_FEECall {}).await;
    assert!(rpc
        .send_signed_with_value(
            &requester,
            d.rollup,
            request(malformed).abi_encode().into(),
            fee
        )
        .await
        .is_err());
    for tx in [withdraw(&key(2), 100), withdraw(&sk, 200)] {
        rpc.send_signed_with_value(
            &requester,
            d.rollup,
            request(tx.encode()).abi_encode().into(),
            fee,
        )
        .await
        .expect("forced withdrawal queued");
    }
    deploy::deposit(&rpc, &d, alice, a.0, 50).await.unwrap();
    // And a deposit to an account that does not exist: consumed and refunded on L1.
    const NOBODY: u32 = 4_000_000;
    deploy::deposit(&rpc, &d, alice, NOBODY, 70).await.unwrap();
    mine(&rpc, 2).await;
    let c2 = c.clone();
    wait_for(
        "both forced withdrawals and the deposit behind them",
        30,
        || {
            let mut c = c2.clone();
            async move { account(&mut c, a).await.balance == 1_000 - 200 + 50 }
        },
    )
    .await;
    let acct = account(&mut c, a).await;
    assert_eq!(acct.nonce, 1, "only the genuine one was applied");
    // The refunded deposit is consumed too (a `deposit_credited` event whose outcome says it
    // credited nothing).
    let grpc = node.grpc.clone();
    wait_for("the deposit to nobody to be consumed", 30, || {
        let grpc = grpc.clone();
        async move {
            all_events(&grpc)
                .await
                .iter()
                .filter(|e| e.kind == "deposit_credited")
                .count()
                == 3
        }
    })
    .await;

    let events = all_events(&node.grpc).await;
    let processed: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| e.kind == "forced_withdrawal_processed")
        .map(|e| serde_json::from_str(&e.payload_json).unwrap())
        .collect();
    assert_eq!(processed.len(), 2, "{processed:?}");
    assert_eq!(processed[0]["serial"], 1);
    assert_eq!(processed[0]["outcome"], "BAD_SIGNATURE");
    assert_eq!(processed[1]["serial"], 2);
    assert_eq!(processed[1]["outcome"], "APPLIED");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "deposit_credited")
            .count(),
        3
    );
    let outcomes: Vec<(u64, String)> = events
        .iter()
        .filter(|e| e.kind == "deposit_credited")
        .map(|e| {
            let p: serde_json::Value = serde_json::from_str(&e.payload_json).unwrap();
            (
                p["serial"].as_u64().unwrap(),
                p["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (0, "CREDITED".to_string()),
            (3, "CREDITED".to_string()),
            (4, "REFUNDED".to_string())
        ]
    );

    // Ownership on L1 (SPEC 20.9): `a`'s key binds the address of the requester's L1 key as its
    // owner with `rollup agent bind-l1`; recorded once, and announced by the feed.
    let dir = tempfile::tempdir().unwrap();
    let l1_key = dir.path().join("l1.key");
    std::fs::write(&l1_key, ANVIL_DEV_KEY_1).unwrap();
    let key_a = key_file(dir.path(), "a", &sk);
    let (rollup_addr, l1_rpc) = (d.rollup.to_string(), anvil.endpoint());
    let bind = |extra: &[&str]| {
        let mut args = vec![
            "agent",
            "bind-l1",
            "--key",
            &key_a,
            "--rollup",
            &rollup_addr,
            "--l1-rpc",
            &l1_rpc,
            "--l1-key",
            l1_key.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        wallet(&args)
    };
    let bound = bind(&[]).unwrap_or_else(|e| panic!("rollup agent bind-l1: {e}"));
    let owner = requester.address();
    assert_eq!(bound["owner"], owner.to_string().to_lowercase(), "{bound}");
    let key_id = rollup_bridge::exodus::key_id(&sk.public_key());
    assert_eq!(view(&rpc, &d, Rollup::ownerOfCall(key_id)).await, owner);
    let again = bind(&[]).expect_err("once per key");
    assert!(again.contains("already bound"), "{again}");
    let shown = bind(&["--show"]).unwrap();
    assert_eq!(shown["owner"], bound["owner"], "{shown}");
    mine(&rpc, 3).await;
    let grpc = node.grpc.clone();
    wait_for("the owner binding in the feed", 30, || {
        let grpc = grpc.clone();
        let want = json!({"key_id": key_id, "owner": owner});
        async move {
            all_events(&grpc).await.iter().any(|e| {
                e.kind == "owner_bound"
                    && serde_json::from_str::<serde_json::Value>(&e.payload_json).ok()
                        == Some(want.clone())
            })
        }
    })
    .await;

    // Proven (as the prover would mark them), committed and finalized: the applied one is a
    // payout of its batch, claimed once on L1, and so is the refund. The contract computed the
    // statement of each batch (deposits, forced withdrawals applied and rejected, the refund)
    // exactly as the node derived it from what the proofs bind.
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let batch = prove_until_payouts_are_final(&anvil, &pool, 2).await;
    assert_l1_statements_are_the_nodes(&rpc, &d, &pool).await;
    // Both payouts can be read back from L1 alone (the commits carry their lists), with the
    // proofs that claim them.
    let unclaimed_on_l1 = || async {
        let rebuilt = rollup_bridge::rebuild::rebuild(
            &rpc,
            &rollup_bridge::rebuild::RebuildConfig {
                rollup: d.rollup,
                from_block: 0,
                max_range: 10_000,
                until: None,
            },
            rollup_sequencer::node::devnet_operator_key().public_key(),
            |_| {},
        )
        .await
        .unwrap();
        let mut open: Vec<(u64, Address, u64)> =
            rollup_bridge::claims::unclaimed(&rpc, d.rollup, &rebuilt)
                .await
                .unwrap()
                .iter()
                .map(|u| (u.from, u.to, u.amount))
                .collect();
        open.sort();
        open
    };
    assert_eq!(
        unclaimed_on_l1().await,
        vec![(u64::from(a.0), to, 200), ((1u64 << 32) + 4, alice, 70)]
    );
    let (refund_batch, refund_index): (i64, i64) = sqlx::query_as(
        "SELECT l.batch_number, (p.i - 1)::bigint FROM l1_batches l, \
         jsonb_array_elements(l.payouts) WITH ORDINALITY AS p(v, i) \
         WHERE (p.v->>'from')::bigint = $1",
    )
    .bind((1i64 << 32) + 4)
    .fetch_one(&pool)
    .await
    .expect("the refund of deposit 4 is a payout");
    let http = reqwest::Client::new();
    let r: serde_json::Value = http
        .get(format!(
            "{}/v1/withdrawals/{refund_batch}/{refund_index}/proof",
            node.http
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["amount"], 70, "{r}");
    let before = token_balance(&rpc, &d, alice).await;
    let refund = Rollup::claimWithdrawalCall {
        batchNumber: refund_batch as u64,
        index: refund_index as u64,
        from: (1u64 << 32) + 4,
        to: alice,
        amount: 70,
        proof: serde_json::from_value(r["proof"].clone()).unwrap(),
    };
    claim_once(&rpc, &d, &refund).await;
    assert_eq!(
        token_balance(&rpc, &d, alice).await,
        before + U256::from(70)
    );
    let http = reqwest::Client::new();
    let p: serde_json::Value = http
        .get(format!("{}/v1/withdrawals/{batch}/0/proof", node.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["amount"], 200, "{p}");
    assert_eq!(p["from"], a.0, "{p}");
    // The withdrawal is claimed with a proof built from L1 data alone (`rollup claim
    // --from-l1`, no node), the same proof the node serves; a second claim finds nothing.
    let dir = tempfile::tempdir().unwrap();
    let l1_key = dir.path().join("l1.key");
    std::fs::write(&l1_key, ANVIL_DEV_KEY_1).unwrap();
    let operator_pubkey = operator_pubkey_hex();
    let (batch_s, rollup_s) = (batch.to_string(), d.rollup.to_string());
    let claim_args = [
        "claim",
        "--batch",
        &batch_s,
        "--index",
        "0",
        "--from-l1",
        "--operator-pubkey",
        &operator_pubkey,
        "--rollup",
        &rollup_s,
        "--l1-rpc",
        &anvil.endpoint(),
        "--l1-key",
        l1_key.to_str().unwrap(),
    ];
    let out = wallet(&claim_args).unwrap_or_else(|e| panic!("rollup claim --from-l1: {e}"));
    assert_eq!(out["amount"], 200, "{out}");
    assert_eq!(token_balance(&rpc, &d, to).await, U256::from(200));
    let err = wallet(&claim_args).expect_err("claimed once");
    assert!(err.contains("no unclaimed finalized payout"), "{err}");
    assert_eq!(token_balance(&rpc, &d, to).await, U256::from(200));
    assert_eq!(unclaimed_on_l1().await, vec![], "both claimed");
}

/// The `rollup` wallet built beside the tests (`cargo test --workspace` builds it; so does
/// scripts/test.sh before the tests).
fn rollup_cli() -> std::process::Command {
    let exe = std::env::current_exe().expect("test executable path");
    let cli = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("rollup"))
        .expect("target directory");
    assert!(
        cli.exists(),
        "{} is missing: build it with `cargo build -p rollup-client --bin rollup`",
        cli.display()
    );
    std::process::Command::new(cli)
}

/// The devnet operator's public key as the wallet's `--operator-pubkey` takes it.
fn operator_pubkey_hex() -> String {
    format!(
        "0x{}",
        rollup_sequencer::node::devnet_operator_key()
            .public_key()
            .to_hex()
    )
}

/// Runs the wallet with `args`; returns its JSON output, or its stderr on failure.
fn wallet(args: &[&str]) -> Result<serde_json::Value, String> {
    let out = rollup_cli()
        .arg("--json")
        .args(args)
        .output()
        .expect("run rollup");
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}")))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A key file as `rollup keygen` writes it (mode 0600).
fn key_file(dir: &std::path::Path, name: &str, sk: &state::crypto::schnorr::SecretKey) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("{name}.json"));
    let text = json!({
        "secret_key": format!("0x{}", hex::encode(sk.to_bytes())),
        "public_key": format!("0x{}", sk.public_key().to_hex()),
    });
    std::fs::write(&path, text.to_string()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_string()
}

async fn view<C: SolCall>(rpc: &Rpc, d: &deploy::Deployment, call: C) -> C::Return {
    rpc.view(d.rollup, &call).await.unwrap()
}

/// Issue 12's acceptance on a real node and anvil: the operator runs, its batches are
/// finalized, then it is killed (-9). A deposit and a forced withdrawal wait in the queue past
/// their deadline; anyone activates exodus; every account leaves with `rollup exit` built from
/// L1 data alone (the node is dead, its database unused), paid exactly its finalized balance;
/// a second exit, an exit for a wrong amount and a commit after exodus each fail; the queued
/// deposit is refunded once with `rollup refund`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exodus_after_the_operator_dies_pays_everyone_from_l1_alone() {
    use rollup_bridge::exodus;
    let Bridge {
        anvil,
        rpc,
        d,
        alice,
        db,
        mut node,
        ..
    } = Bridge::start("bridge_exodus").await;
    let mut c = node.client().await;
    let (domain, now) = domain(&mut c).await;
    let (ka, kb) = (key(21), key(22));
    let a = register(&mut c, &domain, now, &ka).await;
    let b = register(&mut c, &domain, now, &kb).await;
    deposit_credited(&rpc, &d, alice, &c, a, 1_000).await;
    let pay = transfer(&domain, &ka, a, b, 300, 5, 0, now + 3600);
    let r = c.submit(raw(&pay)).await.unwrap().into_inner();
    assert_eq!(r.status, pb::TxStatus::Accepted as i32, "{r:?}");

    let c2 = c.clone();
    wait_for("the transfer to be applied", 20, || {
        let mut c = c2.clone();
        async move { account(&mut c, b).await.balance == 300 }
    })
    .await;
    // Everything finalized on L1: a finalized batch covers the transfer.
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let seq = r.seq as i64;
    let proving = prove_until(
        &anvil,
        &pool,
        "the transfer's batch to be finalized on L1",
        || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM batches WHERE last_seq >= $1 AND status = 'finalized')",
            )
            .bind(seq)
            .fetch_one(&pool)
            .await
            .unwrap()
            }
        },
    );
    if let Err(panic) =
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(proving)).await
    {
        let log = node.log_text();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!(
            "node log (last 40 lines, newest first):\n{}",
            tail.join("\n")
        );
        std::panic::resume_unwind(panic);
    }
    let finalized = view(&rpc, &d, Rollup::lastFinalizedBatchCall {}).await;

    // The operator dies. A deposit and a forced withdrawal queue behind it, unprocessed.
    node.kill9();
    pool.close().await;
    deploy::deposit(&rpc, &d, alice, a.0, 77).await.unwrap();
    let forced = Transaction::Withdraw(
        UnsignedWithdraw {
            from: b,
            to_l1: L1Address([0xb0; 20]),
            amount: Amount::new(100).unwrap(),
            fee: Amount::new(0).unwrap(),
            nonce: Nonce::new(0).unwrap(),
            valid_until: Timestamp::new(now + 3600).unwrap(),
        }
        .sign(&domain, &kb),
    );
    let requester = L1Signer::from_hex(ANVIL_DEV_KEY_1).unwrap();
    rpc.send_signed_with_value(
        &requester,
        d.rollup,
        Rollup::requestForcedWithdrawalCall {
            withdrawTx: forced.encode().into(),
        }
        .abi_encode()
        .into(),
        view(&rpc, &d, Rollup::FORCED_REQUEST_FEECall {}).await,
    )
    .await
    .expect("forced withdrawal queued");

    let dir = tempfile::tempdir().unwrap();
    let l1_key = dir.path().join("l1.key");
    std::fs::write(&l1_key, ANVIL_DEV_KEY_1).unwrap();
    let operator_pubkey = operator_pubkey_hex();
    let rollup_addr = format!("{}", d.rollup);
    let exit_args = |key: &str, to: &str| -> Vec<String> {
        [
            "exit",
            "--key",
            key,
            "--to",
            to,
            "--activate",
            "--operator-pubkey",
            &operator_pubkey,
            "--rollup",
            &rollup_addr,
            "--l1-rpc",
            &anvil.endpoint(),
            "--l1-key",
            l1_key.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let key_a = key_file(dir.path(), "a", &ka);
    let key_b = key_file(dir.path(), "b", &kb);
    let key_op = key_file(
        dir.path(),
        "operator",
        &rollup_sequencer::node::devnet_operator_key(),
    );
    let (to_a, to_b, to_op) = (
        Address::repeat_byte(0xa1),
        Address::repeat_byte(0xb1),
        Address::repeat_byte(0x0e),
    );
    let args = exit_args(&key_a, &to_a.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Before the deadline nothing is due: the tool says so and changes nothing.
    let err = wallet(&args).expect_err("not due yet");
    assert!(err.contains("not in exodus"), "{err}");

    // Past the deadline: anyone activates exodus (the first `rollup exit --activate` does).
    let _: serde_json::Value = rpc
        .request("evm_increaseTime", json!([3 * 24 * 3600 + 60]))
        .await
        .unwrap();
    mine(&rpc, 1).await;
    let st = exodus::status(&rpc, d.rollup).await.unwrap();
    assert!(st.due && !st.exodus, "{st:?}");
    let mut paid = std::collections::BTreeMap::new();
    for (key, to) in [(&key_a, to_a), (&key_b, to_b), (&key_op, to_op)] {
        let args = exit_args(key, &to.to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = wallet(&args).unwrap_or_else(|e| panic!("rollup exit: {e}"));
        assert_eq!(out["finalized_batch"], finalized, "{out}");
        let got = token_balance(&rpc, &d, to).await;
        assert_eq!(got.to_string(), out["paid"].as_str().unwrap(), "{out}");
        paid.insert(key.clone(), got);
    }
    assert!(exodus::status(&rpc, d.rollup).await.unwrap().exodus);
    // The finalized balances: a paid 300 + 5 fee, b received 300, the operator the fee.
    assert_eq!(paid[&key_a], U256::from(695));
    assert_eq!(paid[&key_b], U256::from(300));
    assert_eq!(paid[&key_op], U256::from(5));

    // Again: nothing more is paid, and a direct second exit reverts.
    let out = wallet(&args).unwrap();
    assert_eq!(out["paid"], "0", "{out}");
    assert_eq!(token_balance(&rpc, &d, to_a).await, U256::from(695));
    let st = exodus::status(&rpc, d.rollup).await.unwrap();
    let tree = exodus::finalized_state(
        &rpc,
        d.rollup,
        0,
        10_000,
        rollup_sequencer::node::devnet_operator_key().public_key(),
        &st,
    )
    .await
    .unwrap();
    let again = exodus::exit_call(&tree, a).unwrap();
    assert!(rpc
        .send_signed(&requester, d.rollup, again.abi_encode().into())
        .await
        .is_err());
    // Before b's own exit record existed this would be the attack: more than the leaf holds.
    let exodus::ExitCall::Plain(mut more) = exodus::exit_call(&tree, b).unwrap() else {
        panic!("b's leaf has no ext: a plain exit");
    };
    more.balance += 1;
    assert!(rpc
        .send_signed(&requester, d.rollup, more.abi_encode().into())
        .await
        .is_err());
    // No commit after exodus, even from the operator's address.
    let operator = rpc.accounts().await.unwrap()[0];
    let commit = Rollup::commitBatchCall {
        h: Rollup::BatchHeader {
            batchNumber: view(&rpc, &d, Rollup::lastCommittedBatchCall {}).await + 1,
            newRoot: B256::repeat_byte(1),
            payoutRoot: B256::ZERO,
            nextPriorityOp: view(&rpc, &d, Rollup::nextPriorityOpCommittedCall {}).await,
            timestamp: 0,
        },
        pubdata: Bytes::new(),
        payouts: Bytes::new(),
    };
    assert!(rpc
        .send(operator, Some(d.rollup), commit.abi_encode().into())
        .await
        .is_err());

    // The deposit no finalized batch consumed goes back to alice, once.
    // (`l1_key` is alice's: anvil's dev key 1.)
    let refund_args = [
        "refund",
        "--rollup",
        &rollup_addr,
        "--l1-rpc",
        &anvil.endpoint(),
        "--l1-key",
        l1_key.to_str().unwrap(),
    ];
    let before = token_balance(&rpc, &d, alice).await;
    let out = wallet(&refund_args).unwrap_or_else(|e| panic!("rollup refund: {e}"));
    assert_eq!(out["paid"], "77", "{out}");
    assert_eq!(
        token_balance(&rpc, &d, alice).await,
        before + U256::from(77)
    );
    let out = wallet(&refund_args).unwrap();
    assert_eq!(out["paid"], "0", "{out}");
    assert_eq!(
        token_balance(&rpc, &d, alice).await,
        before + U256::from(77)
    );
}

/// Waits (20 s at most) until the boolean query `sql` holds.
async fn wait_until_db(pool: &sqlx::PgPool, what: &str, sql: &'static str) {
    wait_for(what, 20, || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    })
    .await;
}

/// Whether batch `n` has status `status`.
async fn batch_is(pool: sqlx::PgPool, n: i64, status: &'static str) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM batches WHERE number = $1 AND status = $2)",
    )
    .bind(n)
    .bind(status)
    .fetch_one(&pool)
    .await
    .unwrap()
}

/// Issue 12, item 4 on a real node and anvil: a committed batch that cannot be finalized (the
/// node's attester key is not the deployment's, so L1 refuses every finalization) is reverted
/// by the operator (`revertBatches`, built by `rollup-l1 revert-batches`' library call). The
/// node, restarted with the right attester, follows the `BatchesReverted` event at the depth:
/// the batch goes back in line with its transactions, is committed again and finalized, L1's
/// finalized root is the node's, and the feed reports the revert with what it put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reverted_batch_is_committed_again_with_the_same_transactions() {
    use rollup_bridge::revert;
    use rollup_bridge::signer::ANVIL_DEV_KEY_0;
    let dir = tempfile::tempdir().unwrap();
    // Any key but the deployment's attester (anvil's third): here alice's.
    let wrong_attester = dir.path().join("wrong-attester.key");
    std::fs::write(&wrong_attester, ANVIL_DEV_KEY_1).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrong_attester, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let Bridge {
        anvil,
        rpc,
        d,
        alice,
        db,
        mut node,
        flags,
    } = Bridge::start_with(
        "bridge_revert",
        &["--attester-l1-key", wrong_attester.to_str().unwrap()],
    )
    .await;
    let mut c = node.client().await;
    let (domain, now) = domain(&mut c).await;
    let a = register(&mut c, &domain, now, &key(31)).await;
    deposit_credited(&rpc, &d, alice, &c, a, 4_000).await;
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    wait_until_db(
        &pool,
        "the deposit's batch to be sealed",
        "SELECT EXISTS (SELECT 1 FROM batches WHERE next_deposit_seq > 0)",
    )
    .await;
    // The first batch (the registration) is committed, then the submitter is stuck on its
    // finalization; the deposit's batch waits behind it.
    let batch: i64 = 1;
    let (first_seq, last_seq, tx_count): (i64, i64, i32) =
        sqlx::query_as("SELECT first_seq, last_seq, tx_count FROM batches WHERE number = $1")
            .bind(batch)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(tx_count >= 1);
    let deposit_batch: i64 =
        sqlx::query_scalar("SELECT min(number) FROM batches WHERE next_deposit_seq > 0")
            .fetch_one(&pool)
            .await
            .unwrap();
    prove_until(&anvil, &pool, "the first batch to be committed", || {
        batch_is(pool.clone(), batch, "committed")
    })
    .await;
    // Committed, never finalized: L1 refuses the wrong attester's signature (the submitter
    // says so, and keeps trying).
    mine(&rpc, 3).await;
    wait_for(
        "the submitter to report the refused finalization",
        20,
        || {
            let log = node.log_text();
            async move { log.contains("batch submitter step failed") }
        },
    )
    .await;
    assert_eq!(view(&rpc, &d, Rollup::lastFinalizedBatchCall {}).await, 0);
    let last_committed = view(&rpc, &d, Rollup::lastCommittedBatchCall {}).await;
    assert!(last_committed >= batch as u64);

    // The operator stops the node and reverts every unfinalized batch. A kept batch that is
    // not between the last finalized and the last committed is refused before anything is sent.
    node.kill9();
    let out_of_range = revert::revert_call(&rpc, d.rollup, last_committed, 0, 10_000).await;
    assert!(
        matches!(out_of_range, Err(revert::RevertError::OutOfRange { .. })),
        "{out_of_range:?}"
    );
    let (call, plan) = revert::revert_call(&rpc, d.rollup, 0, 0, 10_000)
        .await
        .unwrap();
    assert_eq!(
        (plan.first_reverted, plan.last_reverted),
        (1, last_committed)
    );
    let operator = L1Signer::from_hex(ANVIL_DEV_KEY_0).unwrap();
    rpc.send_signed(&operator, d.rollup, call.abi_encode().into())
        .await
        .expect("revertBatches by the operator");
    assert_eq!(view(&rpc, &d, Rollup::lastCommittedBatchCall {}).await, 0);

    // The node comes back with the deployment's attester (the devnet default) and follows.
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let node = TestNode::start(&db, &args).await;
    prove_until(
        &anvil,
        &pool,
        "the reverted batch and the deposit's to be committed and finalized",
        || batch_is(pool.clone(), deposit_batch, "finalized"),
    )
    .await;

    // The same batch, with the same transactions, and L1 agrees with the node.
    let (first2, last2, count2): (i64, i64, i32) =
        sqlx::query_as("SELECT first_seq, last_seq, tx_count FROM batches WHERE number = $1")
            .bind(batch)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((first2, last2, count2), (first_seq, last_seq, tx_count));
    assert!(view(&rpc, &d, Rollup::lastFinalizedBatchCall {}).await >= batch as u64);
    assert_l1_statements_are_the_nodes(&rpc, &d, &pool).await;
    let superseded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM l1_submissions WHERE batch_number = $1 AND status = 'superseded'",
    )
    .bind(batch)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(superseded >= 1, "the first commit is kept as superseded");
    let mut c = node.client().await;
    assert_eq!(account(&mut c, a).await.balance, 4_000, "nothing dropped");

    // The feed: committed, reverted (with the batch put back), committed again, finalized.
    mine(&rpc, 3).await;
    let events = all_events(&node.grpc).await;
    let of_batch = |kind: &str| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| serde_json::from_str::<serde_json::Value>(&e.payload_json).unwrap())
            .filter(|p| p["batch"] == batch || kind == "batches_reverted")
            .collect()
    };
    let reverted = of_batch("batches_reverted");
    assert_eq!(reverted.len(), 1, "{events:?}");
    assert_eq!(reverted[0]["first_reverted"], 1);
    let requeued = reverted[0]["requeued"].as_array().unwrap();
    let ours = requeued
        .iter()
        .find(|b| b["number"] == batch)
        .expect("the batch is reported as put back");
    assert_eq!(ours["tx_count"], tx_count);
    assert_eq!(ours["first_seq"], first_seq);
    assert_eq!(ours["was"], "committed");
    assert_eq!(
        of_batch("batch_committed").len(),
        2,
        "committed, then again"
    );
    assert_eq!(of_batch("batch_finalized").len(), 1);
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let pos = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
    assert!(
        pos("batches_reverted") < pos("batch_finalized"),
        "{kinds:?}"
    );
}

/// SPEC 16.2, deadlines before sealing: with a seal-to-commit margin longer than any deadline,
/// a batch that would leave a queued priority op unconsumed is held open (L1 would refuse its
/// commit) instead of sealed, and is sealed once it has taken the op, with the transactions
/// that arrived meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_would_miss_a_priority_deadline_is_held_until_it_takes_the_op() {
    let Bridge {
        anvil: _anvil,
        rpc,
        d,
        alice,
        db,
        node,
        ..
    } = Bridge::start_with(
        "bridge_deadline",
        // Ten years: every queued op is due before such a batch could be committed.
        &["--seal-deadline-margin-secs", "315360000"],
    )
    .await;
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let mut c = node.client().await;
    let (domain, now) = domain(&mut c).await;
    let a = register(&mut c, &domain, now, &key(41)).await;
    // Nothing queued yet: the registration's batch seals as usual.
    wait_until_db(
        &pool,
        "the registration's batch to be sealed",
        "SELECT EXISTS (SELECT 1 FROM batches)",
    )
    .await;
    let sealed = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM batches")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = sealed(pool.clone()).await;

    // A deposit is queued on L1 (seen, with its deadline; not deep enough to be credited), then
    // an L2 transaction arrives: its batch is due but held.
    deploy::deposit(&rpc, &d, alice, a.0, 700).await.unwrap();
    wait_until_db(
        &pool,
        "the deposit to be seen with its deadline",
        "SELECT EXISTS (SELECT 1 FROM l1_priority_ops WHERE serial = 0 AND deadline IS NOT NULL)",
    )
    .await;
    let b = register(&mut c, &domain, now, &key(42)).await;
    let http = node.http.clone();
    wait_for("the writer to hold the batch", 20, || {
        let http = http.clone();
        async move {
            let text = reqwest::get(format!("{http}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines()
                .any(|l| l.starts_with("rollup_batch_held_for_deadline 1"))
        }
    })
    .await;
    assert_eq!(
        sealed(pool.clone()).await,
        before,
        "no batch sealed while it would leave the op unconsumed"
    );

    // The op becomes deep enough, is credited, and the held batch seals with it and with the
    // registration that waited.
    mine(&rpc, 2).await;
    wait_until_db(
        &pool,
        "the held batch to be sealed with the deposit",
        "SELECT EXISTS (SELECT 1 FROM batches WHERE next_deposit_seq = 1)",
    )
    .await;
    let (first_deposit, registrations): (i64, i64) = sqlx::query_as(
        "SELECT b.first_deposit_seq, (SELECT count(*) FROM transactions t WHERE t.seq BETWEEN \
         b.first_seq AND b.last_seq AND t.account_index = $1) FROM batches b WHERE b.next_deposit_seq = 1",
    )
    .bind(i64::from(b.0))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(first_deposit, 0, "the batch consumed the op");
    assert_eq!(registrations, 1, "the registration that waited is in it");
    assert_eq!(account(&mut c, a).await.balance, 700);
}
