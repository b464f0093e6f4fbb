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

/// A transfer (a registration if `registered`) at `seq`, in block `1 + seq / 1000`.
pub(super) fn row(
    seq: u64,
    sender: Option<u32>,
    recipient: Option<u32>,
    registered: Option<u32>,
) -> TxRow {
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

/// The log of `rows` (blocks of 1,000 seqs, `row`), written in one commit with every block
/// sealed but the last, which stays open as the node's newest block does: its activity is
/// returned, what the node keeps in memory and passes to the reads as `unsealed`.
async fn write_log(store: &Store, rows: Vec<TxRow>) -> BlockActivity {
    let last_block = rows.iter().map(|r| r.block_number).max().unwrap_or(0);
    let mut items = Vec::new();
    let mut open = BlockActivity::default();
    for number in 1..=last_block {
        let block: Vec<&TxRow> = rows.iter().filter(|r| r.block_number == number).collect();
        if number == last_block {
            open = BlockActivity::of_rows(block);
            continue;
        }
        items.push(WriteItem::Block(Box::new(SealedBlock {
            row: BlockRow {
                number,
                state_root: Digest::ZERO,
                first_seq: block.first().map_or(0, |r| r.seq),
                tx_count: block.len() as u32,
                block_time: 1_000,
            },
            activity: BlockActivity::of_rows(block),
        })));
    }
    items.insert(0, WriteItem::Txs(rows));
    store.log().write(&items).await.expect("write");
    for table in ["transactions", "tx_parties", "account_blocks"] {
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(store.pool())
            .await
            .expect("analyze");
    }
    open
}

/// Account 3 registered first, an agent 9 delegated (recipient and registered: the same row on
/// two sides), account 3 paid once in the middle and once at the end (in the open block),
/// account 7 a split's payee once, and `n` transfers between accounts 1 and 2 around them.
/// Returns the three seqs and the open block's activity.
async fn long_log(store: &Store, n: u64) -> (u64, u64, u64, BlockActivity) {
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
    let open = write_log(store, rows).await;
    assert!(
        !open.seqs(3).is_empty(),
        "the last payment is in the open block"
    );
    (middle, split, last, open)
}

fn seqs(rows: &[TxRow]) -> Vec<u64> {
    rows.iter().map(|r| r.seq).collect()
}

#[tokio::test]
async fn an_accounts_transactions_each_once_from_either_side_of_a_cursor() {
    let store = store("storage_log_account_reads").await;
    let (middle, split, last, open) = long_log(&store, 2_000).await;
    let log = store.log();
    let unsealed_of = |account: u32| UnsealedSeqs {
        seqs: open.seqs(account).to_vec(),
        through: last,
    };
    let after = |account: u32, cursor: u64, limit: i64| {
        let unsealed = unsealed_of(account);
        async move {
            seqs(
                &log.txs_for_account(account, cursor, limit, &unsealed)
                    .await
                    .unwrap(),
            )
        }
    };
    let before = |account: u32, cursor: Option<u64>, limit: u32| {
        let unsealed = unsealed_of(account);
        async move {
            seqs(
                &log.account_history(account, cursor, limit, &unsealed)
                    .await
                    .unwrap(),
            )
        }
    };

    assert_eq!(after(3, 0, 100).await, [1, 2, middle, last]);
    assert_eq!(after(3, 2, 100).await, [middle, last]);
    assert_eq!(after(3, 0, 2).await, [1, 2], "a page");
    assert_eq!(after(3, last, 100).await, Vec::<u64>::new());
    // The agent's delegation names it twice (recipient, registered): listed once.
    assert_eq!(after(9, 0, 100).await, [2]);
    assert_eq!(before(9, None, 100).await, [2]);
    assert_eq!(after(7, 0, 100).await, [split]);

    assert_eq!(before(3, None, 100).await, [last, middle, 2, 1]);
    assert_eq!(before(3, Some(last), 2).await, [middle, 2]);
    assert_eq!(before(7, None, 10).await, [split]);
    // A busy account's page is the newest `limit` of both sides.
    assert_eq!(
        before(1, None, 5).await,
        [last - 1, last - 2, last - 3, last - 4, last - 5]
    );
    // Cursors inside a sealed block (its row straddles them) and pages across the boundary
    // between the sealed blocks and the open one (block 2 ends at 1999).
    assert_eq!(before(1, Some(1500), 3).await, [1499, 1498, 1497]);
    assert_eq!(after(1, 1500, 3).await, [1501, 1502, 1503]);
    assert_eq!(after(1, 1995, 20).await, (1996..=2004).collect::<Vec<_>>());
    assert_eq!(
        before(1, Some(2002), 5).await,
        [2001, 2000, 1999, 1998, 1997]
    );
    // The open block's transactions come from `unsealed` only: without it they are missing.
    let sealed_only = UnsealedSeqs::all_sealed();
    assert_eq!(
        seqs(
            &log.txs_for_account(1, 1995, 20, &sealed_only)
                .await
                .unwrap()
        ),
        [1996, 1997, 1998, 1999]
    );
    assert_eq!(
        seqs(
            &log.account_history(3, None, 100, &sealed_only)
                .await
                .unwrap()
        ),
        [middle, 2, 1]
    );
    // Nothing after `through`, from any side (a sealed block's row, a split's payee, the
    // registration), whatever the cursor: the cut a reader's memory was taken at.
    let upto = |through: u64| UnsealedSeqs {
        seqs: Vec::new(),
        through,
    };
    assert_eq!(
        seqs(
            &log.txs_for_account(3, 0, 100, &upto(middle - 1))
                .await
                .unwrap()
        ),
        [1, 2]
    );
    assert_eq!(
        seqs(
            &log.account_history(3, None, 100, &upto(middle))
                .await
                .unwrap()
        ),
        [middle, 2, 1]
    );
    assert_eq!(
        seqs(
            &log.account_history(3, Some(last), 2, &upto(2))
                .await
                .unwrap()
        ),
        [2, 1],
        "a page starts at the bound when the cursor is past it"
    );
    assert!(log
        .txs_for_account(7, 0, 100, &upto(split - 1))
        .await
        .unwrap()
        .is_empty());
    assert!(log
        .txs_for_account(9, 1, 100, &upto(1))
        .await
        .unwrap()
        .is_empty());
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

/// Migration 0018 on a log written before it: every sealed block's accounts get their rows
/// (a transfer to oneself once, a deposit and a withdrawal on their one side), the open
/// block's are left to recovery, and the two per-transaction indexes are gone.
#[tokio::test]
async fn the_account_blocks_migration_indexes_an_existing_log_by_block() {
    let url = devkit::postgres::test_database("storage_log_migration_0018")
        .await
        .expect("a Postgres server (see rollup-devkit)");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    // The migrations before 0018, from a copy of them (the same files: the later run of all of
    // them finds these applied with matching checksums).
    let before = tempfile::tempdir().expect("tempdir");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(&dir).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.as_bytes().first().is_some_and(u8::is_ascii_digit) && name < "0018" {
            std::fs::copy(&path, before.path().join(name)).expect("copy");
        }
    }
    sqlx::migrate::Migrator::new(before.path())
        .await
        .expect("the earlier migrations")
        .run(&pool)
        .await
        .expect("migrate to 0017");

    // Blocks 1 and 2 sealed, block 3 open.
    let rows = [
        row(1, None, None, Some(1)),
        row(2, Some(1), Some(2), None),
        TxRow {
            kind: 4,
            ..row(3, None, Some(1), None)
        },
        row(4, Some(2), Some(2), None),
        TxRow {
            kind: 3,
            ..row(5, Some(1), None, None)
        },
        row(6, Some(2), Some(1), None),
    ];
    let blocks = [(1, 1, 3), (2, 4, 2)]; // (number, first seq, count); seq 6 in block 3
    for (i, r) in rows.iter().enumerate() {
        let block = match r.seq {
            1..=3 => 1i64,
            4..=5 => 2,
            _ => 3,
        };
        sqlx::query(
            "INSERT INTO transactions (seq, tx_id, kind, sender, recipient, account_index, raw, \
             block_number, position, block_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1000)",
        )
        .bind(r.seq as i64)
        .bind(r.tx_id.to_vec())
        .bind(r.kind)
        .bind(r.sender.map(i64::from))
        .bind(r.recipient.map(i64::from))
        .bind(r.account_index.map(i64::from))
        .bind(r.raw.clone())
        .bind(block)
        .bind(i as i32)
        .execute(&pool)
        .await
        .expect("an old row");
    }
    for (number, first, count) in blocks {
        sqlx::query(
            "INSERT INTO blocks (number, state_root, first_seq, tx_count, block_time) \
             VALUES ($1, $2, $3, $4, 1000)",
        )
        .bind(number)
        .bind(vec![0u8; 32])
        .bind(first)
        .bind(count)
        .execute(&pool)
        .await
        .expect("an old block");
    }

    crate::MIGRATOR
        .run(&pool)
        .await
        .expect("migrate to the end");
    let got: Vec<(i64, i64, Vec<i64>)> = sqlx::query_as(
        "SELECT account, last_seq, seqs FROM account_blocks ORDER BY account, last_seq",
    )
    .fetch_all(&pool)
    .await
    .expect("account_blocks");
    assert_eq!(
        got,
        [
            (1, 3, vec![2, 3]),
            (1, 5, vec![5]),
            (2, 2, vec![2]),
            (2, 4, vec![4]),
        ]
    );
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'transactions' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("indexes");
    assert!(
        !indexes
            .iter()
            .any(|i| i == "transactions_sender" || i == "transactions_recipient"),
        "{indexes:?}"
    );
    // The reads over the migrated log, block 3 given as the node's open block.
    let store = Store::connect_and_migrate(&url, 2).await.expect("connect");
    let log = store.log();
    let open = |seq: u64| UnsealedSeqs {
        seqs: vec![seq],
        through: seq,
    };
    let history = log
        .account_history(1, None, 10, &open(6))
        .await
        .expect("history");
    assert_eq!(seqs(&history), [6, 5, 3, 2, 1]);
    let watch = log
        .txs_for_account(2, 0, 10, &open(6))
        .await
        .expect("watch");
    assert_eq!(seqs(&watch), [2, 4, 6]);
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
    let (_, _, last, open) = long_log(&store, n).await;
    // Other accounts' rows, so that the side tables are as long as the log and a sequential
    // scan of them would show (on a few rows, one is the planner's right choice).
    for sql in [
        "INSERT INTO account_blocks (account, last_seq, seqs) \
         SELECT a, b * 1000 + 999, ARRAY[b * 1000 + 5] \
         FROM generate_series(100, 1099) a, generate_series(1, 40) b",
        "INSERT INTO tx_parties (account, seq) SELECT 100 + s % 1000, s FROM generate_series(3, 40000) s",
        "ANALYZE account_blocks",
        "ANALYZE tx_parties",
    ] {
        sqlx::query(sql)
            .execute(store.pool())
            .await
            .expect("the side tables' other rows");
    }
    // A quiet account read from the start and from before its last payment, a history page of
    // it and of an agent: each must touch its own rows, not the 40,000 others. Account 1 is in
    // every transfer: a page of it from the middle of the log reads the row of the block the
    // cursor falls in (1,000 seqs, those on the wrong side dropped) and no other.
    for (direction, account, cursor, may_drop) in [
        (Direction::After, 3u32, 0i64, 100.0),
        (Direction::After, 3, 3, 100.0),
        (Direction::Before, 3, i64::MAX, 100.0),
        (Direction::Before, 9, i64::MAX, 100.0),
        (Direction::Before, 3, last as i64, 100.0),
        (Direction::After, 1, 20_000, 100.0),
        (Direction::Before, 1, 20_000, 1_100.0),
        (Direction::After, 1, 20_500, 600.0),
    ] {
        let sql = format!(
            "EXPLAIN (ANALYZE, FORMAT JSON) {}",
            account_txs_sql(direction)
        );
        let plan: Value = sqlx::query_scalar(&sql)
            .bind(i64::from(account))
            .bind(cursor)
            .bind(50i64)
            .bind(
                open.seqs(account)
                    .iter()
                    .map(|&s| s as i64)
                    .collect::<Vec<_>>(),
            )
            .bind(last as i64)
            .fetch_one(store.pool())
            .await
            .expect("explain");
        let (mut removed, mut nodes) = (0.0, Vec::new());
        walk(&plan[0]["Plan"], &mut removed, &mut nodes);
        let case = format!("{direction:?} account {account} cursor {cursor}: {nodes:?}");
        assert!(
            removed < may_drop,
            "{case}: {removed} rows read and dropped"
        );
        assert!(
            !nodes.iter().any(|n| n.starts_with("Seq Scan")),
            "{case}: a sequential scan of the log"
        );
    }
}
