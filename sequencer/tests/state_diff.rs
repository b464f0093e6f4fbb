//! The writer's state diffs (SPEC 10.4) through the real `rollup-node` binary and Postgres:
//! every sealed batch stores a diff that, applied in order from genesis, gives the batch's
//! root and the node's balances, also for a batch that was open when the node was killed
//! with `kill -9` (recovery refolds the open batch's effects, so the diff still covers the
//! accounts touched before the crash with their pre-batch values; otherwise the writer's check
//! refuses to seal and this test times out).

mod common;

use std::time::{Duration, Instant};

use common::*;
use rollup_proto::v1 as pb;
use sqlx::Row;
use state::account::AccountIndex;
use state::diff::{AccountTree, StateDiff};
use state::Digest;

fn accepted(r: &pb::Receipt) -> bool {
    r.status == pb::TxStatus::Accepted as i32
}

async fn sealed_batches(pool: &sqlx::PgPool) -> Vec<(u64, Digest, Digest, Option<Vec<u8>>)> {
    sqlx::query(
        "SELECT b.number, b.old_root, b.new_root, w.l1_pubdata FROM batches b \
         JOIN batch_witness w ON w.batch_number = b.number ORDER BY b.number",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get::<i64, _>(0) as u64,
            Digest::from_slice(&r.get::<Vec<u8>, _>(1)).unwrap(),
            Digest::from_slice(&r.get::<Vec<u8>, _>(2)).unwrap(),
            r.get(3),
        )
    })
    .collect()
}

async fn wait_for_batches(pool: &sqlx::PgPool, n: usize, node: &TestNode) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while sealed_batches(pool).await.len() < n {
        assert!(
            Instant::now() < deadline,
            "batch {n} not sealed in 30 s; log:\n{}",
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_open_across_kill_9_seals_with_a_diff_that_rebuilds_its_root() {
    let db = fresh_database("seq_diff").await;
    // Batches close by age only, 6 s after their first block.
    let flags = [
        "--block-interval-ms",
        "50",
        "--batch-max-blocks",
        "100000",
        "--batch-max-secs",
        "6",
    ];
    let mut node = TestNode::start(&db, &flags).await;
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let keys: Vec<_> = (30..33).map(key).collect();

    // Batch 1: Alice and Bob register and are funded.
    let alice = register(&mut c, &d, now, &keys[0]).await;
    let bob = register(&mut c, &d, now, &keys[1]).await;
    faucet(&mut c, alice, 1_000).await;
    faucet(&mut c, bob, 500).await;
    wait_for_batches(&pool, 1, &node).await;

    // Batch 2, part one: Alice pays Bob; then the node dies before the batch closes.
    let pay = transfer(&d, &keys[0], alice, bob, 100, 1, 0, now + 600);
    assert!(accepted(&c.submit(raw(&pay)).await.unwrap().into_inner()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sealed_batches(&pool).await.len(),
        1,
        "batch 2 must still be open at the crash"
    );
    node.kill9();
    node.restart().await;
    let mut c = node.client().await;

    // Part two, after the restart, a clock second later at least: Carol registers and Bob
    // pays her.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let carol = register(&mut c, &d, now, &keys[2]).await;
    let pay = transfer(&d, &keys[1], bob, carol, 50, 0, 0, now + 600);
    assert!(accepted(&c.submit(raw(&pay)).await.unwrap().into_inner()));
    wait_for_batches(&pool, 2, &node).await;
    assert!(!node.log_text().contains("refusing to seal"));

    // Every transaction carries its batch's clock (SPEC 18.0, what the agent rules are judged
    // at): the time of the batch's first block, also those accepted after the restart in the
    // batch open across it, whose own blocks are a second later or more.
    let by_batch =
        "FROM transactions t JOIN batches b ON t.seq BETWEEN b.first_seq AND b.last_seq \
                    JOIN blocks k ON k.number = b.first_block";
    let off: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) {by_batch} WHERE t.batch_time IS DISTINCT FROM k.block_time"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        off, 0,
        "transactions judged at another clock than their batch's"
    );
    let later: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) {by_batch} WHERE b.number = 2 AND t.block_time > t.batch_time"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(later >= 2, "batch 2's later blocks are after its first");

    let batches = sealed_batches(&pool).await;
    let mut replica =
        AccountTree::genesis(rollup_sequencer::node::devnet_operator_key().public_key());
    for (n, old, new, blob) in &batches[..2] {
        assert_eq!(
            replica.root(),
            *old,
            "batch {n} starts where the last ended"
        );
        let diff = StateDiff::decode(blob.as_ref().expect("a diff with every batch")).unwrap();
        assert_eq!(replica.apply(&diff), Ok(*new), "batch {n}");
    }
    let diff = StateDiff::decode(batches[1].3.as_ref().unwrap()).unwrap();
    assert_eq!(diff.count_before(), 3, "operator, Alice, Bob");
    assert_eq!(
        diff.records()
            .iter()
            .map(|r| (r.index, r.pubkey.is_some()))
            .collect::<Vec<_>>(),
        vec![
            (AccountIndex(0), false), // the fee of Alice's payment, before the crash
            (alice, false),
            (bob, false),
            (carol, true),
        ]
    );
    for i in [AccountIndex(0), alice, bob, carol] {
        let a = account(&mut c, i).await;
        let r = &replica.accounts()[i.0 as usize];
        assert_eq!(
            (r.balance.get(), r.nonce.get()),
            (a.balance, a.nonce),
            "{i}"
        );
    }
    assert_eq!(replica.total_balance(), 1_500);
}
