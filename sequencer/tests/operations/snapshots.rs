//! State snapshots: a restart loads the newest snapshot and replays only the log after it,
//! and a damaged snapshot costs time, never correctness.

use std::time::Duration;

use rollup_proto::v1 as pb;
use sqlx::Row;

use super::wait_until;
use crate::common::*;

async fn status(
    c: &mut rollup_proto::v1::rollup_client::RollupClient<tonic::transport::Channel>,
) -> pb::Status {
    c.get_status(pb::GetStatusRequest {})
        .await
        .expect("status")
        .into_inner()
}

#[tokio::test]
async fn restart_replays_only_the_log_after_the_newest_snapshot() {
    let db = fresh_database("seq_snapshots").await;
    let mut node = TestNode::start(
        &db,
        &[
            "--block-interval-ms",
            "30",
            "--batch-max-blocks",
            "1",
            "--snapshot-every-txs",
            "12",
            "--snapshots-keep",
            "2",
        ],
    )
    .await;
    let mut c = node.client().await;
    let (d, now) = domain(&mut c).await;
    let pool = sqlx::PgPool::connect(&db).await.expect("connect");
    let snapshot_count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM state_snapshots")
            .fetch_one(&pool)
            .await
            .expect("count")
    };
    let keys: Vec<_> = (600..612).map(key).collect();
    let mut idx = Vec::new();
    for k in &keys {
        idx.push(register(&mut c, &d, now, k).await);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // The first batch seal at or after seq 12 takes a snapshot; the 7 transactions below
    // are fewer than another 12, so they stay in the log's tail.
    wait_until(Duration::from_secs(30), "a snapshot stored", || async {
        snapshot_count().await >= 1
    })
    .await;
    // Transactions after the snapshot (the tail a restart replays).
    for &i in &idx[..4] {
        faucet(&mut c, i, 50_000).await;
    }
    for (n, k) in keys[..3].iter().enumerate() {
        let r = c
            .submit(raw(&transfer(
                &d,
                k,
                idx[n],
                idx[n + 4],
                100 + n as u64,
                1,
                0,
                now + 600,
            )))
            .await
            .expect("transfer")
            .into_inner();
        assert_eq!(r.status, pb::TxStatus::Accepted as i32, "{r:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = status(&mut c).await;
    let mut accounts = Vec::new();
    for &i in &idx {
        accounts.push(account(&mut c, i).await);
    }
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let code = node.terminate().expect("SIGTERM");
    assert!(code.success(), "{code:?}\nlog:\n{}", node.log_text());

    // Make every transaction up to the newest snapshot unreadable: a full replay would stop
    // at the first one, so a restart that succeeds read none of them.
    let newest = sqlx::query(
        "SELECT batch_number, last_seq FROM state_snapshots ORDER BY batch_number DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .expect("newest snapshot");
    let snap_seq: i64 = newest.get("last_seq");
    assert!(
        snap_seq >= 12 && snap_seq + 3 <= before.accepted_txs as i64,
        "a tail exists: snapshot at {snap_seq}, {} accepted",
        before.accepted_txs
    );
    let saved: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, raw FROM transactions WHERE seq <= $1 ORDER BY seq")
            .bind(snap_seq)
            .fetch_all(&pool)
            .await
            .expect("save raw");
    sqlx::query("UPDATE transactions SET raw = '\\xff'::bytea WHERE seq <= $1")
        .bind(snap_seq)
        .execute(&pool)
        .await
        .expect("garble history");

    node.restart().await;
    let mut c = node.client().await;
    let after = status(&mut c).await;
    assert_eq!(after.accepted_txs, before.accepted_txs);
    assert_eq!(after.head_state_root, before.head_state_root);
    for (n, &i) in idx.iter().enumerate() {
        assert_eq!(account(&mut c, i).await, accounts[n], "account {i:?}");
    }
    // The chain continues from the restored state: nonces, keys and balances all carried.
    let r = c
        .submit(raw(&transfer(
            &d,
            &keys[0],
            idx[0],
            idx[1],
            5,
            1,
            1,
            now + 600,
        )))
        .await
        .expect("transfer")
        .into_inner();
    assert_eq!(r.status, pb::TxStatus::Accepted as i32, "{r:?}");
    // A new registration of a key registered before the snapshot (not a resubmission of the
    // same transaction, which would be answered with its original receipt).
    let again = state::tx::Transaction::Register(
        state::tx::UnsignedRegister {
            pubkey: keys[2].public_key(),
            valid_until: state::account::Timestamp::new(now + 3000).unwrap(),
        }
        .sign(&d, &keys[2]),
    );
    let dup = c
        .submit(raw_with_work(&d, &again))
        .await
        .expect("duplicate register")
        .into_inner();
    assert_eq!(
        dup.status,
        pb::TxStatus::Rejected as i32,
        "a key stays registered"
    );
    assert_eq!(dup.reason_code, "DUPLICATE_KEY", "{dup:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = status(&mut c).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let code = node.terminate().expect("SIGTERM");
    assert!(code.success(), "{code:?}\nlog:\n{}", node.log_text());

    // Restore the history and damage every snapshot: the node falls back to a full replay
    // and reaches the same state.
    for (seq, raw) in &saved {
        sqlx::query("UPDATE transactions SET raw = $2 WHERE seq = $1")
            .bind(seq)
            .bind(raw)
            .execute(&pool)
            .await
            .expect("restore");
    }
    sqlx::query("UPDATE state_snapshot_chunks SET data = set_byte(data, 100, (get_byte(data, 100) + 1) % 256)")
        .execute(&pool)
        .await
        .expect("damage snapshots");
    node.restart().await;
    let mut c = node.client().await;
    let after = status(&mut c).await;
    assert_eq!(after.accepted_txs, before.accepted_txs);
    assert_eq!(after.head_state_root, before.head_state_root);
    assert!(
        node.log_text().contains("state snapshot not used"),
        "the damaged snapshot was detected"
    );
}
