//! The account reads against a real Postgres: what they return, and that they stay index
//! range scans on a long log (the plan of the very query the DAL runs, under `EXPLAIN
//! ANALYZE`).

use serde_json::Value;

use super::*;
use crate::Store;

async fn store(name: &str) -> Store {
    let url = devkit::postgres::test_database(name)
        .await
        .expect("a Postgres server (see rollup-devkit)");
    Store::connect_and_migrate(&url, 2).await.expect("migrate")
}

fn row(seq: u64, sender: Option<u32>, recipient: Option<u32>, registered: Option<u32>) -> TxRow {
    let mut tx_id = [0u8; 32];
    tx_id[..8].copy_from_slice(&seq.to_le_bytes());
    tx_id[31] = 0xA5;
    TxRow {
        seq,
        tx_id,
        kind: if registered.is_some() { 1 } else { 2 },
        sender,
        recipient,
        account_index: registered,
        raw: vec![0; 8],
        block_number: 1 + seq / 1000,
        position: (seq % 1000) as u32,
        block_time: 1_000,
        batch_time: 1_000,
        batch_status: None,
        parties: Vec::new(),
    }
}

/// Account 3 registered first, an agent 9 delegated (recipient and registered: the same row on
/// two sides), account 3 paid once in the middle and once at the end, account 7 a split's
/// payee once, and `n` transfers between accounts 1 and 2 around them.
async fn long_log(store: &Store, n: u64) -> (u64, u64, u64) {
    let mut rows = vec![
        row(1, None, None, Some(3)),
        row(2, Some(3), Some(9), Some(9)),
    ];
    let middle = 3 + n / 2;
    let split = 4 + n / 2;
    let last = n + 5;
    for seq in 3..last {
        rows.push(match seq {
            s if s == middle => row(s, Some(1), Some(3), None),
            s if s == split => TxRow {
                parties: vec![7],
                ..row(s, Some(2), None, None)
            },
            s => row(s, Some(1 + (s % 2) as u32), Some(2 - (s % 2) as u32), None),
        });
    }
    rows.push(row(last, Some(2), Some(3), None));
    store
        .log()
        .write(&[WriteItem::Txs(rows)])
        .await
        .expect("write");
    sqlx::query("ANALYZE transactions")
        .execute(store.pool())
        .await
        .expect("analyze");
    sqlx::query("ANALYZE tx_parties")
        .execute(store.pool())
        .await
        .expect("analyze");
    (middle, split, last)
}

fn seqs(rows: &[TxRow]) -> Vec<u64> {
    rows.iter().map(|r| r.seq).collect()
}

#[tokio::test]
async fn an_accounts_transactions_each_once_from_either_side_of_a_cursor() {
    let store = store("storage_log_account_reads").await;
    let (middle, split, last) = long_log(&store, 2_000).await;
    let log = store.log();

    assert_eq!(
        seqs(&log.txs_for_account(3, 0, 100).await.unwrap()),
        [1, 2, middle, last]
    );
    assert_eq!(
        seqs(&log.txs_for_account(3, 2, 100).await.unwrap()),
        [middle, last]
    );
    assert_eq!(
        seqs(&log.txs_for_account(3, 0, 2).await.unwrap()),
        [1, 2],
        "a page"
    );
    assert_eq!(
        seqs(&log.txs_for_account(3, last, 100).await.unwrap()),
        Vec::<u64>::new()
    );
    // The agent's delegation names it twice (recipient, registered): listed once.
    assert_eq!(seqs(&log.txs_for_account(9, 0, 100).await.unwrap()), [2]);
    assert_eq!(seqs(&log.account_history(9, None, 100).await.unwrap()), [2]);
    assert_eq!(
        seqs(&log.txs_for_account(7, 0, 100).await.unwrap()),
        [split]
    );

    assert_eq!(
        seqs(&log.account_history(3, None, 100).await.unwrap()),
        [last, middle, 2, 1]
    );
    assert_eq!(
        seqs(&log.account_history(3, Some(last), 2).await.unwrap()),
        [middle, 2]
    );
    assert_eq!(
        seqs(&log.account_history(7, None, 10).await.unwrap()),
        [split]
    );
    // A busy account's page is the newest `limit` of both sides.
    let page = log.account_history(1, None, 5).await.unwrap();
    assert_eq!(
        seqs(&page),
        [last - 1, last - 2, last - 3, last - 4, last - 5]
    );
}

/// The committer's `COPY` (copy.rs) writes every column as the reads decode it: NULLs, the
/// largest values each column holds, an empty and a long `raw`, several commits in a row; and
/// a commit whose rows break a constraint writes nothing of itself, the log before it intact.
#[tokio::test]
async fn the_committers_copy_round_trips_every_column() {
    let store = store("storage_log_copy_round_trip").await;
    let log = store.log();
    let mut rows = vec![
        row(1, None, None, Some(u32::MAX)),
        TxRow {
            kind: 4,
            raw: Vec::new(),
            ..row(2, None, Some(0), None)
        },
        TxRow {
            kind: 3,
            raw: (0..=255u8).cycle().take(12_345).collect(),
            block_number: i64::MAX as u64,
            position: i32::MAX as u32,
            block_time: i64::MAX as u64,
            batch_time: 0,
            ..row(3, Some(u32::MAX), None, None)
        },
    ];
    rows[0].tx_id = [0xFF; 32];
    log.write(&[WriteItem::Txs(rows[..1].to_vec())])
        .await
        .expect("first commit");
    log.write(&[WriteItem::Txs(rows[1..].to_vec())])
        .await
        .expect("second commit");

    let mut back = Vec::new();
    log.for_each_tx(|r| {
        back.push(r);
        Ok(())
    })
    .await
    .expect("read back");
    assert_eq!(back, rows);
    let stamped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM transactions WHERE accepted_at > now() - interval '1 hour'",
    )
    .fetch_one(store.pool())
    .await
    .expect("accepted_at");
    assert_eq!(stamped, 3, "accepted_at takes its default");

    // A commit group whose second row repeats a seq (the primary key): refused, nothing of
    // it written, and the pool's connections (two: the failed one among them) fit for the
    // commits after it.
    let dup = vec![
        row(4, Some(1), Some(2), None),
        row(3, Some(1), Some(2), None),
    ];
    assert!(
        log.write(&[WriteItem::Txs(dup)]).await.is_err(),
        "a repeated seq is refused"
    );
    for seq in 4..=6 {
        log.write(&[WriteItem::Txs(vec![row(seq, Some(1), Some(2), None)])])
            .await
            .expect("the next commits");
    }
    let seqs_now: Vec<i64> = sqlx::query_scalar("SELECT seq FROM transactions ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .expect("seqs");
    assert_eq!(seqs_now, [1, 2, 3, 4, 5, 6]);
}

/// Sums `Rows Removed by Filter` over a JSON plan and collects its node types.
fn walk(plan: &Value, removed: &mut f64, nodes: &mut Vec<String>) {
    if let Some(n) = plan.get("Rows Removed by Filter").and_then(Value::as_f64) {
        *removed += n;
    }
    if let Some(t) = plan.get("Node Type").and_then(Value::as_str) {
        let rel = plan
            .get("Relation Name")
            .and_then(Value::as_str)
            .unwrap_or("");
        nodes.push(format!("{t} {rel}"));
    }
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        walk(child, removed, nodes);
    }
}

#[tokio::test]
async fn account_reads_stay_index_range_scans_on_a_long_log() {
    let store = store("storage_log_account_plans").await;
    let n = 40_000;
    let (_, _, last) = long_log(&store, n).await;
    // A quiet account read from the start and from before its last payment, a history page of
    // it and of an agent: each must touch its own rows, not the 40,000 others.
    for (direction, account, cursor) in [
        (Direction::After, 3u32, 0i64),
        (Direction::After, 3, 3),
        (Direction::Before, 3, i64::MAX),
        (Direction::Before, 9, i64::MAX),
        (Direction::Before, 3, last as i64),
    ] {
        let sql = format!(
            "EXPLAIN (ANALYZE, FORMAT JSON) {}",
            account_txs_sql(direction)
        );
        let plan: Value = sqlx::query_scalar(&sql)
            .bind(i64::from(account))
            .bind(cursor)
            .bind(50i64)
            .fetch_one(store.pool())
            .await
            .expect("explain");
        let (mut removed, mut nodes) = (0.0, Vec::new());
        walk(&plan[0]["Plan"], &mut removed, &mut nodes);
        let case = format!("{direction:?} account {account} cursor {cursor}: {nodes:?}");
        assert!(removed < 100.0, "{case}: {removed} rows read and dropped");
        assert!(
            !nodes.iter().any(|n| n == "Seq Scan transactions"),
            "{case}: a sequential scan of the log"
        );
    }
}
