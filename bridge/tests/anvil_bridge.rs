//! The bridge service against a real anvil and a real Postgres: the watcher's confirmation depth
//! and reorg handling, the submitter's in-order commits, finalization and restart safety,
//! withdrawal claims, and the event feed's exactly-once resumption.
//! Needs scripts/ensure-l1-tools.sh (anvil) and a Postgres server (see rollup-devkit).

mod common;

use std::time::Duration;

use alloy_primitives::{keccak256, Address, Bytes, U256};
use alloy_sol_types::{SolCall, SolEvent};
use common::*;
use futures::StreamExt;
use rollup_bridge::contracts::Rollup;
use rollup_bridge::deploy;
use rollup_bridge::feed;
use rollup_bridge::hashes::{payout_leaf, statement_hash, statement_struct, Payout};
use rollup_bridge::rpc::{Rpc, RpcError};
use rollup_bridge::submitter::{PreparedCommit, Step, SubmitError};
use rollup_bridge::watcher::PollReport;
use rollup_storage::{EventKind, SubmissionKind};
use serde_json::json;
use sqlx::postgres::PgPool;
use sqlx::Row;
use state::diff::StateDiff;

async fn statuses(pool: &PgPool) -> Vec<(i64, String)> {
    sqlx::query("SELECT serial, status FROM l1_priority_ops ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn event_kinds(pool: &PgPool) -> Vec<String> {
    feed::read_after(pool, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind.to_string())
        .collect()
}

#[tokio::test]
async fn deposits_confirm_at_depth_and_reorged_ones_never_do() {
    let l1 = l1(keccak256("genesis")).await;
    let pool = database("bridge_watch").await;
    let w = watcher(&l1, &pool, 3);

    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 7, 1_000)
        .await
        .unwrap();
    let r = w.poll().await.unwrap();
    assert_eq!((r.seen, r.confirmed), (1, 0));
    mine(&l1.rpc, 2).await;
    let r = w.poll().await.unwrap();
    assert_eq!((r.seen, r.confirmed), (0, 0), "depth 2 < 3");
    mine(&l1.rpc, 1).await;
    let r = w.poll().await.unwrap();
    assert_eq!((r.seen, r.confirmed), (0, 1), "depth 3");
    mine(&l1.rpc, 5).await;
    let r = w.poll().await.unwrap();
    assert_eq!(
        r,
        PollReport {
            head: r.head,
            ..Default::default()
        },
        "nothing twice"
    );
    assert_eq!(statuses(&pool).await, vec![(0, "confirmed".into())]);

    // A deposit that a reorg removes before the depth is never confirmed.
    let snap: U256 = l1.rpc.request("evm_snapshot", json!([])).await.unwrap();
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 8, 2_000)
        .await
        .unwrap();
    let r = w.poll().await.unwrap();
    assert_eq!((r.seen, r.confirmed), (1, 0));
    let ok: bool = l1.rpc.request("evm_revert", json!([snap])).await.unwrap();
    assert!(ok);
    mine(&l1.rpc, 6).await;
    let r = w.poll().await.unwrap();
    assert_eq!((r.seen, r.confirmed, r.reorged), (0, 0, 1));
    assert_eq!(
        statuses(&pool).await,
        vec![(0, "confirmed".into()), (1, "reorged".into())]
    );

    // The same serial, now from another deposit on the new chain, is seen and confirmed once.
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 9, 3_000)
        .await
        .unwrap();
    w.poll().await.unwrap();
    mine(&l1.rpc, 3).await;
    let r = w.poll().await.unwrap();
    assert_eq!(r.confirmed, 1);
    let rows = sqlx::query(
        "SELECT serial, recipient, amount, status FROM l1_priority_ops WHERE status <> 'reorged' ORDER BY serial",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let live: Vec<(i64, i64, i64, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        live,
        vec![
            (0, 7, 1_000, "confirmed".into()),
            (1, 9, 3_000, "confirmed".into())
        ]
    );
    assert_eq!(
        event_kinds(&pool).await,
        vec![
            "deposit_seen",
            "deposit_confirmed",
            "deposit_seen",
            "deposit_reorged",
            "deposit_seen",
            "deposit_confirmed"
        ]
    );

    // anvil_reorg: replace the last 2 blocks (the new deposit's block among them) with empty ones.
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 10, 4_000)
        .await
        .unwrap();
    mine(&l1.rpc, 1).await;
    assert_eq!(w.poll().await.unwrap().seen, 1);
    let _: serde_json::Value = l1.rpc.request("anvil_reorg", json!([2, []])).await.unwrap();
    mine(&l1.rpc, 5).await;
    let r = w.poll().await.unwrap();
    assert_eq!((r.reorged, r.confirmed), (1, 0));
}

#[tokio::test]
async fn batches_commit_in_order_finalize_and_survive_a_restart_and_claims_work_once() {
    let genesis = keccak256("genesis");
    let l1 = l1(genesis).await;
    let pool = database("bridge_submit").await;
    // Two deposits fund the contract and are consumed by batch 1.
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 1, 600)
        .await
        .unwrap();
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 2, 400)
        .await
        .unwrap();
    let w = watcher(&l1, &pool, 0);
    assert_eq!(w.poll().await.unwrap().confirmed, 2);

    let bob = Address::repeat_byte(0xb0);
    let (r1, r2, r3) = (keccak256("r1"), keccak256("r2"), keccak256("r3"));
    proven_batch(
        &l1,
        &pool,
        1,
        genesis,
        r1,
        (0, 2),
        json!([{"from": 5, "to_l1": bob.to_string(), "amount": 250}]),
    )
    .await;
    proven_batch(&l1, &pool, 2, r1, r2, (2, 2), json!([])).await;
    proven_batch(&l1, &pool, 3, r2, r3, (2, 2), json!([])).await;

    // First run: commit batch 1, then "crash" right after broadcasting batch 2's commit.
    let s = submitter(&l1, &pool);
    let mut sent = Vec::new();
    loop {
        let step = s.step().await.unwrap();
        if let Step::Sent { batch, kind, .. } = &step {
            sent.push((*batch, *kind));
            if (*batch, *kind) == (2, SubmissionKind::Commit) {
                break;
            }
        }
        if step == Step::Idle {
            mine(&l1.rpc, 1).await;
        }
        if step == Step::Waiting {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(s);
    // Second run: a new process on the same database finishes everything.
    let s = submitter(&l1, &pool);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let step = s.step().await.unwrap();
        if step == Step::Waiting {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Step::Sent { batch, kind, .. } = &step {
            sent.push((*batch, *kind));
        }
        if step == Step::Idle {
            if batch_status(&pool, 3).await == "finalized" {
                break;
            }
            mine(&l1.rpc, 1).await;
        }
    }
    assert_eq!(
        sent,
        vec![
            (1, SubmissionKind::Commit),
            (1, SubmissionKind::Finalize),
            (2, SubmissionKind::Commit),
            (2, SubmissionKind::Finalize),
            (3, SubmissionKind::Commit),
            (3, SubmissionKind::Finalize)
        ],
        "in order, each once, across the restart"
    );
    assert_eq!(
        committed_logs(&l1).await,
        vec![1, 2, 3],
        "one commit per batch on L1"
    );
    for n in 1..=3 {
        assert_eq!(batch_status(&pool, n).await, "finalized");
    }
    let subs: i64 = sqlx::query("SELECT count(*) FROM l1_submissions WHERE status = 'mined'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(subs, 6);

    // Claim batch 1's payout from the recorded tree; a second claim is rejected.
    let p = Payout {
        from: 5,
        to: bob,
        amount: 250,
    };
    let claim = Rollup::claimWithdrawalCall {
        batchNumber: 1,
        index: 0,
        from: p.from,
        to: p.to,
        amount: p.amount,
        proof: vec![],
    };
    let r = l1
        .rpc
        .send(l1.alice, Some(l1.d.rollup), claim.abi_encode().into())
        .await
        .expect("first claim");
    let ev = r
        .logs
        .iter()
        .find_map(|l| {
            Rollup::WithdrawalClaimed::decode_raw_log(l.topics.iter().copied(), &l.data).ok()
        })
        .unwrap();
    assert_eq!(ev.leaf, payout_leaf(1, 0, &p));
    let again = l1
        .rpc
        .send(l1.alice, Some(l1.d.rollup), claim.abi_encode().into())
        .await;
    assert!(
        matches!(
            again,
            Err(RpcError::Node { .. }) | Err(RpcError::Reverted(..))
        ),
        "second claim must fail: {again:?}"
    );
    let bal = l1
        .rpc
        .call(
            l1.d.token,
            Bytes::from(rollup_bridge::contracts::TestStablecoin::balanceOfCall(bob).abi_encode()),
        )
        .await
        .unwrap();
    assert_eq!(U256::from_be_slice(&bal), U256::from(250));
    let _ = l1.operator;

    // The claim reaches the feed once it is past the watcher's depth.
    mine(&l1.rpc, 1).await;
    assert_eq!(w.poll().await.unwrap().claims, 1);
    assert_eq!(w.poll().await.unwrap().claims, 0);

    // The feed: every event once, in order; resuming from any cursor gives exactly the rest.
    let all = feed::read_after(&pool, 0, 10_000).await.unwrap();
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "deposit_seen",
            "deposit_seen",
            "deposit_confirmed",
            "deposit_confirmed",
            // A batch is `committed` (and `finalized`) once its transaction is past the depth;
            // the commit is mined before the finalization, so each batch's pair comes in order.
            "batch_committed",
            "batch_finalized",
            "withdrawal_claimable",
            "batch_committed",
            "batch_finalized",
            "batch_committed",
            "batch_finalized",
            "withdrawal_claimed"
        ]
    );
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    for k in [0, 3, all.len() - 1] {
        let cursor = all[k].id;
        let rest: Vec<feed::Event> = feed::follow(pool.clone(), cursor, Duration::from_millis(50))
            .take(all.len() - k - 1)
            .map(|e| e.unwrap())
            .collect()
            .await;
        assert_eq!(rest, all[k + 1..].to_vec());
    }
    // A follower sees new events as they are committed.
    let mut live = Box::pin(feed::follow(
        pool.clone(),
        all.last().unwrap().id,
        Duration::from_secs(5),
    ));
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 3, 5)
        .await
        .unwrap();
    w.poll().await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(3), live.next())
        .await
        .expect("NOTIFY wakes the follower")
        .unwrap()
        .unwrap();
    assert_eq!(next.kind, EventKind::DepositSeen);
    assert_eq!(next.payload["serial"], 2);
}

#[tokio::test]
async fn a_stuck_commit_is_replaced_with_more_gas_and_mined_once() {
    let genesis = keccak256("genesis");
    let l1 = l1(genesis).await;
    let pool = database("bridge_bump").await;
    proven_batch(&l1, &pool, 1, genesis, keccak256("r1"), (0, 0), json!([])).await;
    let mut s = submitter(&l1, &pool);
    s.cfg.resend_after = Duration::from_millis(300);
    // Blocks are only mined on request from now on: the commit stays in the mempool.
    let _: serde_json::Value = l1
        .rpc
        .request("evm_setAutomine", json!([false]))
        .await
        .unwrap();
    let first = s.step().await.unwrap();
    let Step::Sent {
        batch: 1,
        kind: SubmissionKind::Commit,
        nonce,
        tx: tx1,
    } = first
    else {
        panic!("{first:?}")
    };
    assert_eq!(s.step().await.unwrap(), Step::Waiting);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = s.step().await.unwrap();
    let Step::Resent {
        batch: 1,
        kind: SubmissionKind::Commit,
        nonce: n2,
        tx: tx2,
    } = second
    else {
        panic!("{second:?}")
    };
    assert_eq!(n2, nonce, "a replacement reuses the nonce");
    assert_ne!(tx2, tx1);
    mine(&l1.rpc, 1).await;
    let third = s.step().await.unwrap();
    assert!(
        matches!(third, Step::Mined { batch: 1, kind: SubmissionKind::Commit, tx } if tx == tx2),
        "{third:?}"
    );
    assert!(
        l1.rpc.receipt(tx1).await.unwrap().is_none(),
        "the replaced one is never mined"
    );
    let rows: Vec<(String, String)> =
        sqlx::query("SELECT status, gas_price::text FROM l1_submissions ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].0.as_str(), rows[1].0.as_str()),
        ("replaced", "mined")
    );
    let (p1, p2): (u128, u128) = (rows[0].1.parse().unwrap(), rows[1].1.parse().unwrap());
    assert!(p2 >= p1 + p1 / 5, "gas price bumped by 20%: {p1} -> {p2}");
    assert_eq!(committed_logs(&l1).await, vec![1]);
    // `committed` once the commit is past the depth (2), not before.
    assert_eq!(batch_status(&pool, 1).await, "proven");
    mine(&l1.rpc, 2).await;
    assert_eq!(s.step().await.unwrap(), Step::Committed { batch: 1 });
    assert_eq!(batch_status(&pool, 1).await, "committed");
}

#[tokio::test]
async fn a_commit_recorded_but_never_broadcast_is_sent_after_a_restart() {
    let genesis = keccak256("genesis");
    let l1 = l1(genesis).await;
    let pool = database("bridge_crash").await;
    proven_batch(&l1, &pool, 1, genesis, keccak256("r1"), (0, 0), json!([])).await;
    let _: serde_json::Value = l1
        .rpc
        .request("evm_setAutomine", json!([false]))
        .await
        .unwrap();
    let s = submitter(&l1, &pool);
    let Step::Sent { tx, nonce, .. } = s.step().await.unwrap() else {
        panic!("expected a commit")
    };
    drop(s);
    // As if the process died after recording the signed transaction and before broadcasting
    // it: the node never saw it, and the row is still `signed`.
    let _: serde_json::Value = l1
        .rpc
        .request("anvil_dropTransaction", json!([tx]))
        .await
        .unwrap();
    sqlx::query("UPDATE l1_submissions SET status = 'signed'")
        .execute(&pool)
        .await
        .unwrap();
    let s = submitter(&l1, &pool);
    let step = s.step().await.unwrap();
    assert_eq!(
        step,
        Step::Resent {
            batch: 1,
            kind: SubmissionKind::Commit,
            nonce,
            tx
        },
        "the very same transaction, not a new one"
    );
    mine(&l1.rpc, 1).await;
    assert!(matches!(
        s.step().await.unwrap(),
        Step::Mined { batch: 1, .. }
    ));
    assert_eq!(committed_logs(&l1).await, vec![1]);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM l1_submissions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

/// `commitBatch` from `from` with `header`: the receipt if mined, Err if it reverted.
async fn try_commit(
    l1: &L1,
    from: Address,
    header: &Rollup::BatchHeader,
    pubdata: &[u8],
    payouts: &[u8],
) -> Result<rollup_bridge::rpc::Receipt, RpcError> {
    let call = Rollup::commitBatchCall {
        h: header.clone(),
        pubdata: pubdata.to_vec().into(),
        payouts: payouts.to_vec().into(),
    };
    l1.rpc
        .send(from, Some(l1.d.rollup), call.abi_encode().into())
        .await
}

/// `finalizeBatch(s, attestation of s)` from the operator: Ok if mined, Err if it reverted.
async fn try_finalize(
    l1: &L1,
    s: &rollup_bridge::submitter::Submitter,
    fields: &Rollup::BatchStatement,
) -> Result<(), RpcError> {
    try_finalize_signed(l1, &s.attester, fields).await
}

/// Sends `finalizeBatch` with `fields` attested by `signer`.
async fn try_finalize_signed(
    l1: &L1,
    signer: &rollup_bridge::signer::L1Signer,
    fields: &Rollup::BatchStatement,
) -> Result<(), RpcError> {
    let proof = signer
        .attest(31337, l1.d.rollup, statement_hash(fields))
        .unwrap();
    let call = Rollup::finalizeBatchCall {
        s: fields.clone(),
        proof,
    };
    l1.rpc
        .send(l1.operator, Some(l1.d.rollup), call.abi_encode().into())
        .await
        .map(|_| ())
}

fn reverted(name: &str, r: Result<impl std::fmt::Debug, RpcError>) {
    assert!(
        matches!(r, Err(RpcError::Reverted(..))),
        "{name}: expected a revert, got {r:?}"
    );
}

#[tokio::test]
async fn the_contract_computes_the_statement_the_node_checked_and_refuses_any_other() {
    let genesis = keccak256("genesis");
    let l1 = l1(genesis).await;
    let pool = database("bridge_statement").await;
    // One deposit in the L1 queue, seen by the watcher, consumed by batch 1 with a withdrawal.
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 1, 600)
        .await
        .unwrap();
    let w = watcher(&l1, &pool, 0);
    assert_eq!(w.poll().await.unwrap().confirmed, 1);
    let r1 = keccak256("r1");
    let bob = Address::repeat_byte(0xb0);
    proven_batch(
        &l1,
        &pool,
        1,
        genesis,
        r1,
        (0, 1),
        json!([{"from": 1, "to_l1": bob.to_string(), "amount": 250}]),
    )
    .await;
    let s = submitter(&l1, &pool);
    let prepared = s.prepare_commit(1).await.unwrap();
    let good = prepared.header.clone();
    let diff = prepared.pubdata.clone();
    let list = rollup_bridge::hashes::encode_payouts(&prepared.payouts);

    // Commit: what the operator alone decides is checked against L1 state and L1 time.
    reverted(
        "non-operator",
        try_commit(&l1, l1.alice, &good, &diff, &list).await,
    );
    let mut h = good.clone();
    h.batchNumber = 2;
    reverted(
        "skipped batch number",
        try_commit(&l1, l1.operator, &h, &diff, &list).await,
    );
    let mut h = good.clone();
    h.nextPriorityOp = 2;
    reverted(
        "a deposit L1 never queued",
        try_commit(&l1, l1.operator, &h, &diff, &list).await,
    );
    let mut h = good.clone();
    h.timestamp = u64::MAX >> 1;
    reverted(
        "a timestamp after the block",
        try_commit(&l1, l1.operator, &h, &diff, &list).await,
    );
    assert_eq!(
        s.last_committed().await.unwrap(),
        0,
        "nothing changed the contract"
    );

    // The honest header: the contract computes exactly the statement the node derived.
    let receipt = try_commit(&l1, l1.operator, &good, &diff, &list)
        .await
        .expect("the honest commit is accepted");
    let ev = receipt
        .logs
        .iter()
        .find_map(|l| {
            Rollup::BatchCommitted::decode_raw_log(l.topics.iter().copied(), &l.data).ok()
        })
        .expect("BatchCommitted");
    assert_eq!(ev.s, statement_struct(&prepared.statement));
    assert_eq!(ev.statement.0, prepared.statement.hash());
    assert_eq!(
        ev.s.oldRoot, genesis,
        "old root from the contract's storage"
    );
    assert_eq!(ev.s.priorityHashAfter, view_priority_hash(&l1, 1).await);
    reverted(
        "replayed batch",
        try_commit(&l1, l1.operator, &good, &diff, &list).await,
    );

    // Finalize: a statement that differs in any one field is refused, even with a valid
    // attestation of that other statement.
    let honest = ev.s.clone();
    type Change = fn(&mut Rollup::BatchStatement);
    let variants: Vec<(&str, Change)> = vec![
        ("chainId", |s| s.chainId += 1),
        ("rollup", |s| s.rollup = Address::repeat_byte(1)),
        ("batchNumber", |s| s.batchNumber += 1),
        ("oldRoot", |s| s.oldRoot = keccak256("o")),
        ("newRoot", |s| s.newRoot = keccak256("n")),
        ("diffHash", |s| s.diffHash = keccak256("d")),
        ("payoutRoot", |s| s.payoutRoot = keccak256("p")),
        ("firstPriorityOp", |s| s.firstPriorityOp += 1),
        ("nextPriorityOp", |s| s.nextPriorityOp += 1),
        ("priorityHashBefore", |s| {
            s.priorityHashBefore = keccak256("b")
        }),
        ("priorityHashAfter", |s| {
            s.priorityHashAfter = keccak256("a")
        }),
        ("timestamp", |s| s.timestamp += 1),
    ];
    for (field, change) in variants {
        let mut forged = honest.clone();
        change(&mut forged);
        reverted(field, try_finalize(&l1, &s, &forged).await);
    }
    // The operator's hot key is not the attester: its signature finalizes nothing.
    reverted(
        "operator-signed",
        try_finalize_signed(&l1, &s.signer, &honest).await,
    );
    try_finalize(&l1, &s, &honest)
        .await
        .expect("the honest statement finalizes");

    // The next batch cannot claim a time before batch 1's.
    proven_batch(&l1, &pool, 2, r1, keccak256("r2"), (1, 1), json!([])).await;
    let next = s.prepare_commit(2).await.unwrap();
    let mut h = next.header.clone();
    h.timestamp = honest.timestamp - 1;
    reverted(
        "a timestamp before the previous batch",
        try_commit(&l1, l1.operator, &h, &next.pubdata, &[]).await,
    );
    try_commit(&l1, l1.operator, &next.header, &next.pubdata, &[])
        .await
        .expect("batch 2 with its own timestamp");
    assert_eq!(committed_logs(&l1).await, vec![1, 2]);
}

async fn view_priority_hash(l1: &L1, n: u64) -> alloy_primitives::B256 {
    let raw = l1
        .rpc
        .call(
            l1.d.rollup,
            Rollup::priorityHashAfterCall(U256::from(n))
                .abi_encode()
                .into(),
        )
        .await
        .unwrap();
    Rollup::priorityHashAfterCall::abi_decode_returns(&raw).unwrap()
}

#[tokio::test]
async fn a_tampered_database_row_makes_the_submitter_refuse() {
    let genesis = keccak256("genesis");
    let l1 = l1(genesis).await;
    let pool = database("bridge_tamper").await;
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 1, 600)
        .await
        .unwrap();
    let w = watcher(&l1, &pool, 0);
    assert_eq!(w.poll().await.unwrap().confirmed, 1);
    let bob = Address::repeat_byte(0xb0);
    let mallory = Address::repeat_byte(0x66);
    let withdrawals = json!([{"from": 1, "to_l1": bob.to_string(), "amount": 250}]);
    proven_batch(
        &l1,
        &pool,
        1,
        genesis,
        keccak256("r1"),
        (0, 1),
        withdrawals.clone(),
    )
    .await;
    let s = submitter(&l1, &pool);
    let honest = s.prepare_commit(1).await.unwrap();
    let refused = |r: Result<PreparedCommit, SubmitError>, what: &str| {
        let e = r.expect_err(what).to_string();
        assert!(e.contains(what), "expected '{what}' in: {e}");
    };

    // 1. The ops redirected to mallory: their payouts no longer build the proven payout root.
    let redirected = json!([{"from": 1, "to_l1": mallory.to_string(), "amount": 250}]);
    let ops = state::pubdata::encode_ops(&batch_ops(&pool, (0, 1), &redirected).await);
    let saved: Vec<u8> =
        sqlx::query_scalar("SELECT pubdata FROM batch_witness WHERE batch_number = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query("UPDATE batch_witness SET pubdata = $1 WHERE batch_number = 1")
        .bind(&ops)
        .execute(&pool)
        .await
        .unwrap();
    refused(
        s.prepare_commit(1).await,
        "the payouts of the stored ops build root",
    );
    sqlx::query("UPDATE batch_witness SET pubdata = $1 WHERE batch_number = 1")
        .bind(&saved)
        .execute(&pool)
        .await
        .unwrap();

    // 2. The witness document's withdrawal list edited: not read at all, the payouts stay the
    // proven ones.
    sqlx::query(
        "UPDATE batch_witness SET witness = jsonb_set(witness, '{withdrawals,0,to_l1}', to_jsonb($1::text)) \
         WHERE batch_number = 1",
    )
    .bind(mallory.to_string())
    .execute(&pool)
    .await
    .unwrap();
    let again = s.prepare_commit(1).await.unwrap();
    assert_eq!(again.payouts, honest.payouts);
    assert_eq!(again.payouts[0].to, bob);

    // 3. The watcher's record of the deposit edited (another depositor, who would get a
    // refund): the consumed ops no longer chain to the proven queue hash.
    sqlx::query("UPDATE l1_priority_ops SET depositor = $1 WHERE serial = 0")
        .bind(mallory.to_vec())
        .execute(&pool)
        .await
        .unwrap();
    refused(
        s.prepare_commit(1).await,
        "the consumed priority ops chain to",
    );
    sqlx::query("UPDATE l1_priority_ops SET depositor = $1 WHERE serial = 0")
        .bind(l1.alice.to_vec())
        .execute(&pool)
        .await
        .unwrap();

    // 4. The state diff edited: it no longer hashes to the proven diff hash.
    sqlx::query("UPDATE batch_witness SET l1_pubdata = $1 WHERE batch_number = 1")
        .bind(StateDiff::new(2, vec![]).unwrap().encode())
        .execute(&pool)
        .await
        .unwrap();
    refused(s.prepare_commit(1).await, "the stored state diff hashes to");
    sqlx::query("UPDATE batch_witness SET l1_pubdata = $1 WHERE batch_number = 1")
        .bind(StateDiff::new(1, vec![]).unwrap().encode())
        .execute(&pool)
        .await
        .unwrap();

    // 5. The stored proof replaced: it does not verify (the node's verifier checks the proof
    // against the statement rebuilt from the batch row, so an edited row fails the same way).
    let stand_in: Vec<u8> =
        sqlx::query_scalar("SELECT proof FROM batch_proofs WHERE batch_number = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query("UPDATE batch_proofs SET proof = $1 WHERE batch_number = 1")
        .bind(b"not a proof".to_vec())
        .execute(&pool)
        .await
        .unwrap();
    refused(s.prepare_commit(1).await, "proof does not verify");
    sqlx::query("UPDATE batch_proofs SET proof = $1 WHERE batch_number = 1")
        .bind(stand_in)
        .execute(&pool)
        .await
        .unwrap();

    // Nothing was sent in the meantime; the restored rows commit.
    assert_eq!(s.last_committed().await.unwrap(), 0);
    assert_eq!(
        s.prepare_commit(1).await.unwrap().statement,
        honest.statement
    );
}

/// Credits every `confirmed` op as the node's ingest does (sequencer/src/l1_ingest.rs,
/// `mark_credited`: only a `confirmed` row becomes `credited`); returns how many it credited.
async fn credit_confirmed(pool: &PgPool) -> u64 {
    sqlx::query(
        "UPDATE l1_priority_ops SET status = 'credited', updated_at = now() WHERE status = 'confirmed'",
    )
    .execute(pool)
    .await
    .unwrap()
    .rows_affected()
}

async fn sync_row(pool: &PgPool) -> Option<(i64, i64, Vec<u8>)> {
    sqlx::query("SELECT final_block, last_block, last_hash FROM l1_sync")
        .fetch_optional(pool)
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
}

#[tokio::test]
async fn a_log_that_comes_back_after_a_reorg_is_seen_again_and_credited_once() {
    let l1 = l1(keccak256("genesis")).await;
    let pool = database("bridge_revive").await;
    let w = watcher(&l1, &pool, 3);
    // Approve once up front, so the deposit is a single transaction in a single block that
    // can be mined again, identically, after a reorg.
    let approve = rollup_bridge::contracts::TestStablecoin::approveCall {
        spender: l1.d.rollup,
        value: U256::from(1_000_000u64),
    };
    l1.rpc
        .send(l1.alice, Some(l1.d.token), approve.abi_encode().into())
        .await
        .unwrap();
    let before: U256 = l1.rpc.request("evm_snapshot", json!([])).await.unwrap();
    let deposit = Rollup::depositCall {
        recipient: 7,
        amount: 1_000,
    };
    let receipt = l1
        .rpc
        .send(l1.alice, Some(l1.d.rollup), deposit.abi_encode().into())
        .await
        .unwrap();
    let raw: Bytes = l1
        .rpc
        .request(
            "eth_getRawTransactionByHash",
            json!([receipt.transaction_hash]),
        )
        .await
        .unwrap();
    let n = receipt.block_number.to::<u64>();
    let original = l1.rpc.block(n).await.unwrap().unwrap();
    assert_eq!(w.poll().await.unwrap().seen, 1);

    // Reorg: other (empty) blocks take the deposit's height; the op is `reorged`.
    let ok: bool = l1.rpc.request("evm_revert", json!([before])).await.unwrap();
    assert!(ok);
    let before: U256 = l1.rpc.request("evm_snapshot", json!([])).await.unwrap();
    mine(&l1.rpc, 2).await;
    let r = w.poll().await.unwrap();
    assert_eq!((r.seen, r.reorged, r.confirmed), (0, 1, 0));
    assert_eq!(statuses(&pool).await, vec![(0, "reorged".into())]);

    // The chain flips back: the very same transaction in the very same block (same parent,
    // time, base fee), so the log has the identity the watcher stored: block hash, log index.
    let ok: bool = l1.rpc.request("evm_revert", json!([before])).await.unwrap();
    assert!(ok);
    let _: serde_json::Value = l1
        .rpc
        .request("evm_setNextBlockTimestamp", json!([original.timestamp]))
        .await
        .unwrap();
    let _: serde_json::Value = l1
        .rpc
        .request(
            "anvil_setNextBlockBaseFeePerGas",
            json!([original.base_fee_per_gas.unwrap()]),
        )
        .await
        .unwrap();
    let again = l1.rpc.send_raw(&raw).await.unwrap();
    assert_eq!(again, receipt.transaction_hash);
    let mined = l1.rpc.wait_receipt(again).await.unwrap();
    assert_eq!(mined.block_number.to::<u64>(), n);
    let replayed = l1.rpc.block(n).await.unwrap().unwrap();
    assert_eq!(
        replayed.hash, original.hash,
        "anvil rebuilt the identical block"
    );

    // The watcher keeps going: the reorged row is live again, once.
    let r = w
        .poll()
        .await
        .expect("a log that comes back must not wedge the watcher");
    assert_eq!((r.seen, r.reorged, r.confirmed), (1, 0, 0));
    assert_eq!(statuses(&pool).await, vec![(0, "seen".into())]);
    mine(&l1.rpc, 3).await;
    assert_eq!(w.poll().await.unwrap().confirmed, 1);
    assert_eq!(credit_confirmed(&pool).await, 1);
    mine(&l1.rpc, 4).await;
    for _ in 0..2 {
        let r = w.poll().await.unwrap();
        assert_eq!((r.seen, r.reorged, r.confirmed), (0, 0, 0));
    }
    assert_eq!(credit_confirmed(&pool).await, 0, "credited exactly once");
    assert_eq!(statuses(&pool).await, vec![(0, "credited".into())]);
    assert_eq!(
        event_kinds(&pool).await,
        vec![
            "deposit_seen",
            "deposit_reorged",
            "deposit_seen",
            "deposit_confirmed"
        ]
    );
    // And it keeps progressing past it.
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 8, 2_000)
        .await
        .unwrap();
    assert_eq!(w.poll().await.unwrap().seen, 1);
    mine(&l1.rpc, 3).await;
    assert_eq!(w.poll().await.unwrap().confirmed, 1);
    assert_eq!(
        statuses(&pool).await,
        vec![(0, "credited".into()), (1, "confirmed".into())]
    );
}

#[tokio::test]
async fn a_hung_l1_endpoint_times_out_and_holds_no_database_lock() {
    let l1 = l1(keccak256("genesis")).await;
    let pool = database("bridge_hung").await;
    let w = watcher(&l1, &pool, 0);

    // Accepts connections, reads the request, never answers anything.
    let silent = l1_endpoint(handler(|_| async { None })).await;
    let bound = Duration::from_millis(500);
    let mut hung = watcher(&l1, &pool, 0);
    hung.rpc = Rpc::with_timeout(silent, bound);
    let t0 = std::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), hung.poll())
        .await
        .expect("the poll must not hang");
    assert!(
        matches!(
            r,
            Err(rollup_bridge::watcher::WatchError::Rpc(
                RpcError::RequestTimeout {
                    method: "eth_blockNumber",
                    ..
                }
            ))
        ),
        "{r:?}"
    );
    assert!(t0.elapsed() < bound * 4, "{:?}", t0.elapsed());

    // A provider that tells the head and then hangs on eth_getLogs, in the middle of a poll:
    // meanwhile a watcher on a healthy endpoint and the same database makes progress (no
    // transaction or row lock is held across the L1 call).
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 7, 1_000)
        .await
        .unwrap();
    assert_eq!(w.poll().await.unwrap().confirmed, 1);
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 8, 2_000)
        .await
        .unwrap();
    let head = l1.rpc.block_number().await.unwrap();
    let (asked, mut got_asked) = tokio::sync::watch::channel(false);
    let asked = std::sync::Arc::new(asked);
    let stalls = l1_endpoint(handler(move |req: serde_json::Value| {
        let asked = asked.clone();
        async move {
            match req["method"].as_str() {
                Some("eth_blockNumber") => Some(answer(&req, json!(format!("0x{head:x}")))),
                _ => {
                    let _ = asked.send(true);
                    None
                }
            }
        }
    }))
    .await;
    let mut stalled = watcher(&l1, &pool, 0);
    let bound = Duration::from_secs(3);
    stalled.rpc = Rpc::with_timeout(stalls, bound);
    let healthy = async {
        tokio::time::timeout(Duration::from_secs(5), got_asked.wait_for(|a| *a))
            .await
            .expect("the stalled poll reaches eth_getLogs")
            .unwrap();
        let t = std::time::Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(1), w.poll())
            .await
            .expect("the healthy watcher is not blocked by the stalled one")
            .unwrap();
        (r, t.elapsed())
    };
    let t0 = std::time::Instant::now();
    let (stalled_result, (healthy_report, _)) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(15), stalled.poll()),
        healthy
    );
    let stalled_result = stalled_result.expect("the stalled poll must end");
    assert!(
        matches!(
            stalled_result,
            Err(rollup_bridge::watcher::WatchError::Rpc(
                RpcError::RequestTimeout {
                    method: "eth_getLogs",
                    ..
                }
            ))
        ),
        "{stalled_result:?}"
    );
    assert!(t0.elapsed() < bound * 3, "{:?}", t0.elapsed());
    assert_eq!((healthy_report.seen, healthy_report.confirmed), (1, 1));
    assert_eq!(
        statuses(&pool).await,
        vec![(0, "confirmed".into()), (1, "confirmed".into())]
    );
    // The stalled poll wrote nothing: each deposit confirmed once.
    assert_eq!(
        event_kinds(&pool).await,
        vec![
            "deposit_seen",
            "deposit_confirmed",
            "deposit_seen",
            "deposit_confirmed"
        ]
    );
}

#[tokio::test]
async fn null_blocks_from_a_lagging_provider_mean_not_yet_and_the_watcher_resumes_on_anvil() {
    let l1 = l1(keccak256("genesis")).await;
    let pool = database("bridge_null").await;
    let w = watcher(&l1, &pool, 2);
    deploy::deposit(&l1.rpc, &l1.d, l1.alice, 7, 1_000)
        .await
        .unwrap();
    assert_eq!(w.poll().await.unwrap().seen, 1);
    let sync = sync_row(&pool).await;
    let events = event_kinds(&pool).await;

    // A provider behind a balancer: the head comes from a node ahead, the blocks and logs from
    // one that does not have them yet (`null`, `[]`).
    let head = l1.rpc.block_number().await.unwrap() + 5;
    let lagging = l1_endpoint(handler(move |req: serde_json::Value| async move {
        let result = match req["method"].as_str() {
            Some("eth_blockNumber") => json!(format!("0x{head:x}")),
            Some("eth_chainId") => json!("0x7a69"),
            Some("eth_getLogs") => json!([]),
            _ => serde_json::Value::Null,
        };
        Some(answer(&req, result))
    }))
    .await;
    let mut lag = watcher(&l1, &pool, 2);
    lag.rpc = Rpc::new(lagging);
    for _ in 0..3 {
        let r = lag
            .poll()
            .await
            .expect("a null block is 'not yet', not an error");
        assert!(r.l1_behind, "{r:?}");
        assert_eq!((r.seen, r.confirmed, r.reorged, r.claims), (0, 0, 0, 0));
    }
    assert_eq!(statuses(&pool).await, vec![(0, "seen".into())]);
    assert_eq!(sync_row(&pool).await, sync, "no progress");
    assert_eq!(event_kinds(&pool).await, events);
    assert_eq!(credit_confirmed(&pool).await, 0, "no credit");

    // Back on anvil (a second watcher on the same database): it resumes, the deposit is
    // confirmed and credited once.
    mine(&l1.rpc, 2).await;
    let r = w.poll().await.unwrap();
    assert_eq!(
        (r.seen, r.confirmed, r.reorged, r.l1_behind),
        (0, 1, 0, false)
    );
    assert_eq!(credit_confirmed(&pool).await, 1);
    mine(&l1.rpc, 3).await;
    assert_eq!(w.poll().await.unwrap().confirmed, 0);
    assert_eq!(lag.poll().await.unwrap().confirmed, 0);
    assert_eq!(credit_confirmed(&pool).await, 0);
    assert_eq!(statuses(&pool).await, vec![(0, "credited".into())]);
    assert_eq!(
        event_kinds(&pool).await,
        vec!["deposit_seen", "deposit_confirmed"]
    );
}

/// Steps `s` until batch `n` is `finalized`, mining a block whenever it waits; returns every
/// step. Fails the test after `within`.
async fn step_until_finalized(
    l1: &L1,
    pool: &PgPool,
    s: &rollup_bridge::submitter::Submitter,
    n: u64,
    within: Duration,
) -> Vec<Step> {
    let deadline = std::time::Instant::now() + within;
    let mut steps = Vec::new();
    while batch_status(pool, n).await != "finalized" {
        assert!(
            std::time::Instant::now() < deadline,
            "batch {n} not finalized within {within:?} (status {}), steps: {steps:?}",
            batch_status(pool, n).await
        );
        let step = s.step().await.unwrap();
        if matches!(step, Step::Idle | Step::Waiting) {
            mine(&l1.rpc, 1).await;
        }
        steps.push(step);
    }
    steps
}

async fn batch_event_kinds(pool: &PgPool) -> Vec<String> {
    event_kinds(pool)
        .await
        .into_iter()
        .filter(|k| k.starts_with("batch_"))
        .collect()
}

#[tokio::test]
async fn a_commit_reorged_out_before_depth_is_sent_again_and_the_batch_committed_once() {
    let genesis = keccak256("genesis");
    let l1 = l1(genesis).await;
    let pool = database("bridge_commit_reorg").await;
    proven_batch(&l1, &pool, 1, genesis, keccak256("r1"), (0, 0), json!([])).await;
    let s = submitter(&l1, &pool);
    assert_eq!(s.cfg.confirmations, 2);
    let snap: U256 = l1.rpc.request("evm_snapshot", json!([])).await.unwrap();
    let Step::Sent {
        batch: 1,
        kind: SubmissionKind::Commit,
        nonce,
        tx,
    } = s.step().await.unwrap()
    else {
        panic!("expected the commit")
    };
    wait_mined(&l1.rpc, tx).await;
    assert_eq!(
        s.step().await.unwrap(),
        Step::Mined {
            batch: 1,
            kind: SubmissionKind::Commit,
            tx
        }
    );
    // The finalization goes out meanwhile (the contract has the commit) and is mined in the
    // next block: the commit is 1 deep of 2, so the batch is not `committed` in the database.
    let step = s.step().await.unwrap();
    let Step::Sent {
        batch: 1,
        kind: SubmissionKind::Finalize,
        tx: finalize,
        ..
    } = step
    else {
        panic!("expected the finalization, got {step:?}")
    };
    wait_mined(&l1.rpc, finalize).await;
    let step = s.step().await.unwrap();
    assert!(matches!(step, Step::Mined { batch: 1, .. }), "{step:?}");
    assert_eq!(
        batch_status(&pool, 1).await,
        "proven",
        "not before the depth"
    );
    assert_eq!(committed_logs(&l1).await, vec![1]);

    // Reorg: the blocks with the commit and the finalization are replaced by empty ones.
    let ok: bool = l1.rpc.request("evm_revert", json!([snap])).await.unwrap();
    assert!(ok);
    mine(&l1.rpc, 4).await;
    assert!(
        committed_logs(&l1).await.is_empty(),
        "the reorg took it out"
    );
    assert!(l1.rpc.receipt(tx).await.unwrap().is_none());

    let steps = step_until_finalized(&l1, &pool, &s, 1, Duration::from_secs(60)).await;
    assert!(
        steps.contains(&Step::Reorged {
            batch: 1,
            kind: SubmissionKind::Commit,
            tx
        }),
        "{steps:?}"
    );
    assert!(
        steps.contains(&Step::Resent {
            batch: 1,
            kind: SubmissionKind::Commit,
            nonce,
            tx
        }),
        "the very same transaction again: {steps:?}"
    );
    assert!(steps.contains(&Step::Committed { batch: 1 }), "{steps:?}");
    assert_eq!(committed_logs(&l1).await, vec![1], "one commit on L1");
    assert_eq!(
        batch_event_kinds(&pool).await,
        vec!["batch_committed", "batch_finalized"],
        "committed once, finalized once"
    );
    let commits: Vec<(Vec<u8>, String)> = sqlx::query(
        "SELECT l1_tx_hash, status FROM l1_submissions WHERE kind = 'commit' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(commits, vec![(tx.to_vec(), "mined".to_string())]);
    let l1_commit: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT commit_tx FROM l1_batches WHERE batch_number = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(l1_commit, Some(tx.to_vec()));
}

#[tokio::test]
async fn a_commit_mined_between_the_receipt_and_nonce_reads_is_not_lost() {
    let genesis = keccak256("genesis");
    let l1 = l1(genesis).await;
    let pool = database("bridge_race").await;
    proven_batch(&l1, &pool, 1, genesis, keccak256("r1"), (0, 0), json!([])).await;
    let _: serde_json::Value = l1
        .rpc
        .request("evm_setAutomine", json!([false]))
        .await
        .unwrap();
    // In front of the real anvil: the first time it answers "no receipt yet", a block is mined
    // right after that answer, i.e. between the submitter's receipt read and its next read.
    let anvil = l1.url.clone();
    let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fired_in = fired.clone();
    let proxy = l1_endpoint(handler(move |req: serde_json::Value| {
        let anvil = anvil.clone();
        let fired = fired_in.clone();
        async move {
            let resp = forward(&anvil, &req).await;
            if req["method"] == "eth_getTransactionReceipt"
                && resp["result"].is_null()
                && !fired.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                forward(
                    &anvil,
                    &json!({"jsonrpc": "2.0", "id": 0, "method": "evm_mine", "params": []}),
                )
                .await;
            }
            Some(resp)
        }
    }))
    .await;
    let mut s = submitter(&l1, &pool);
    s.rpc = Rpc::new(proxy);
    let Step::Sent {
        batch: 1,
        kind: SubmissionKind::Commit,
        ..
    } = s.step().await.unwrap()
    else {
        panic!("expected the commit")
    };
    let steps = step_until_finalized(&l1, &pool, &s, 1, Duration::from_secs(60)).await;
    assert!(
        fired.load(std::sync::atomic::Ordering::SeqCst),
        "the interleaving happened"
    );
    assert!(steps.contains(&Step::Committed { batch: 1 }), "{steps:?}");
    assert_eq!(committed_logs(&l1).await, vec![1]);
    let given_up: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM l1_submissions WHERE status = 'replaced' OR error IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(given_up, 0, "no transaction was given up");
    assert_eq!(
        batch_event_kinds(&pool).await,
        vec!["batch_committed", "batch_finalized"]
    );
}

/// Control changes (SPEC 15.1) reach the feed once past the watcher's depth, each once: an
/// announced operator change, its cancellation, a pause and an unpause, with their payloads.
#[tokio::test]
async fn control_changes_reach_the_feed_once_final() {
    let l1 = l1(keccak256("genesis")).await;
    let pool = database("bridge_control").await;
    let w = watcher(&l1, &pool, 2);
    let admin = l1.operator; // the devnet deployer holds every role
    let rpc = &l1.rpc;
    let rollup = l1.d.rollup;
    let send =
        |data: Vec<u8>| async move { rpc.send(admin, Some(rollup), data.into()).await.unwrap() };
    let announced = send(
        Rollup::announceChangeCall {
            kind: 1,
            next: l1.alice,
        }
        .abi_encode(),
    )
    .await;
    // The announcement is not past the depth yet (and the deployment's own role settings are
    // not changes).
    assert_eq!(w.poll().await.unwrap().control, 0);
    send(Rollup::cancelChangeCall { kind: 1 }.abi_encode()).await;
    send(Rollup::pauseCall {}.abi_encode()).await;
    send(Rollup::unpauseCall {}.abi_encode()).await;
    // Announced again and applied after the delay (anvil's clock moved forward).
    send(
        Rollup::announceChangeCall {
            kind: 1,
            next: l1.alice,
        }
        .abi_encode(),
    )
    .await;
    let _: serde_json::Value = l1
        .rpc
        .request("evm_increaseTime", json!([10 * 24 * 3600 + 1]))
        .await
        .unwrap();
    mine(&l1.rpc, 1).await;
    send(Rollup::applyChangeCall { kind: 1 }.abi_encode()).await;
    mine(&l1.rpc, 2).await;
    assert_eq!(w.poll().await.unwrap().control, 6);
    assert_eq!(w.poll().await.unwrap().control, 0, "reported once");
    let events = feed::read_after(&pool, 0, 10_000).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "change_announced",
            "change_cancelled",
            "paused",
            "unpaused",
            "change_announced",
            "change_applied"
        ]
    );
    let applied = &events[5].payload;
    assert_eq!(applied["change"], "operator");
    assert_eq!(
        applied["next"].as_str().unwrap().to_lowercase(),
        l1.alice.to_string().to_lowercase()
    );
    let payload = &events[0].payload;
    assert_eq!(payload["change"], "operator");
    assert_eq!(
        payload["next"].as_str().unwrap().to_lowercase(),
        l1.alice.to_string().to_lowercase()
    );
    // eta = the announcing block's time + changeDelay (3 days + 7 days on the devnet).
    let block: serde_json::Value = l1
        .rpc
        .request(
            "eth_getBlockByNumber",
            json!([format!("0x{:x}", announced.block_number), false]),
        )
        .await
        .unwrap();
    let time = u64::from_str_radix(
        block["timestamp"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert_eq!(payload["eta"].as_u64(), Some(time + 10 * 24 * 3600));
    assert_eq!(
        events[2].payload["until"].as_u64().map(|u| u > time),
        Some(true)
    );

    // The operator fails a deposit's deadline: anyone activates exodus and the deposit is
    // refunded; both reach the feed once final (SPEC 15.9).
    let control_before = events.len();
    let dep = deploy::deposit(&l1.rpc, &l1.d, l1.alice, 7, 321)
        .await
        .unwrap();
    let _: serde_json::Value = l1
        .rpc
        .request("evm_increaseTime", json!([3 * 24 * 3600 + 1]))
        .await
        .unwrap();
    mine(&l1.rpc, 1).await;
    send(Rollup::activateExodusCall {}.abi_encode()).await;
    send(
        Rollup::refundDepositCall {
            serial: dep.serial,
            depositor: l1.alice,
            recipient: 7,
            amount: 321,
        }
        .abi_encode(),
    )
    .await;
    mine(&l1.rpc, 2).await;
    while w.poll().await.unwrap().control > 0 {}
    let events = feed::read_after(&pool, 0, 10_000).await.unwrap();
    let exodus: Vec<_> = events
        .iter()
        .skip(control_before)
        .filter(|e| {
            !e.kind.as_str().starts_with("deposit_seen") && e.kind.as_str() != "deposit_confirmed"
        })
        .collect();
    let kinds: Vec<&str> = exodus.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["exodus_activated", "deposit_refunded"]);
    assert_eq!(exodus[0].payload["last_finalized_batch"], 0);
    assert_eq!(exodus[0].payload["next_priority_op_finalized"], 0);
    assert_eq!(exodus[1].payload["serial"], dep.serial);
    assert_eq!(exodus[1].payload["amount"], 321);
}
