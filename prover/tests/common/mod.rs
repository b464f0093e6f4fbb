//! Seeding a database with what the sequencer would have written for one sealed batch.

#![allow(dead_code)]

use rollup_prover::jobs::{batch_timestamp, JobStore};
use rollup_prover::witness::leaf_witnesses;
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::apply::{BlockContext, State};
use state::crypto::schnorr::SecretKey;
use state::split::Payout;
use state::tx::{Deposit, Domain, Transaction, UnsignedRegister, UnsignedSplit};

pub const T0: u64 = 1_750_000_000;

pub fn domain() -> Domain {
    Domain {
        chain_id: 31337,
        rollup: [7u8; 20],
    }
}

pub fn operator() -> SecretKey {
    let mut bytes = [0u8; 40];
    bytes[..9].copy_from_slice(b"test-oper");
    SecretKey::from_bytes(&bytes).unwrap()
}

/// A fresh database with the schema and `chain_meta`.
pub async fn fresh(prefix: &str) -> (String, JobStore) {
    let url = devkit::postgres::test_database(prefix)
        .await
        .expect("Postgres");
    let jobs = JobStore::connect(&url, 4).await.expect("connect + migrate");
    let d = domain();
    for (k, v) in [
        ("chain_id", d.chain_id.to_string()),
        ("rollup_address", format!("0x{}", hex::encode(d.rollup))),
        ("operator_public_key", operator().public_key().to_hex()),
    ] {
        sqlx::query("INSERT INTO chain_meta (key, value) VALUES ($1, $2)")
            .bind(k)
            .bind(v)
            .execute(jobs.pool())
            .await
            .unwrap();
    }
    (url, jobs)
}

/// Writes batch 1 of `2 * n` transactions (n registrations in block 1, n deposits in block 2)
/// with the commitments the sequencer would have computed.
pub async fn seed_batch(jobs: &JobStore, n: u32) {
    seed(jobs, n, false).await
}

/// [`seed_batch`] whose last transaction is a split instead of the last deposit: account 1
/// (the first registered, credited by the first deposit) pays 7 to each of accounts `2..=n`.
pub async fn seed_batch_with_split(jobs: &JobStore, n: u32) {
    assert!(n >= 2, "a split needs a payee besides its sender");
    seed(jobs, n, true).await
}

async fn seed(jobs: &JobStore, n: u32, split: bool) {
    let d = domain();
    let mut rng = rand::thread_rng();
    let mut txs: Vec<(Transaction, BlockContext, u64)> = Vec::new();
    let mut first_key = None;
    for _ in 0..n {
        let sk = SecretKey::random(&mut rng);
        first_key.get_or_insert(sk.clone());
        let reg = UnsignedRegister {
            pubkey: sk.public_key(),
            valid_until: Timestamp::new(T0 + 3600).unwrap(),
        }
        .sign(&d, &sk);
        txs.push((Transaction::Register(reg), ctx(T0), 1));
    }
    let deposits = if split { n - 1 } else { n };
    for i in 0..deposits {
        let dep = Deposit {
            seq: u64::from(i),
            to: AccountIndex(i + 1),
            amount: Amount::new(1_000 + u64::from(i)).unwrap(),
        };
        txs.push((Transaction::Deposit(dep), ctx(T0 + 1), 2));
    }
    if let (true, Some(sk)) = (split, &first_key) {
        let t = UnsignedSplit {
            from: AccountIndex(1),
            parts: (2..=n)
                .map(|i| Payout {
                    to: AccountIndex(i),
                    amount: Amount::new(7).unwrap(),
                })
                .collect(),
            fee: Amount::new(1).unwrap(),
            nonce: Nonce::ZERO,
            valid_until: Timestamp::new(T0 + 3600).unwrap(),
        }
        .sign(&d, sk);
        txs.push((Transaction::Split(t), ctx(T0 + 1), 2));
    }
    let mut st = State::genesis(d, operator().public_key());
    let old_root = st.root();
    let plain: Vec<(Transaction, BlockContext)> = txs.iter().map(|t| (t.0.clone(), t.1)).collect();
    let stmts: Vec<_> = leaf_witnesses(&mut st, &plain, batch_timestamp(T0), 2, 1, &|_| {
        Some(DEPOSITOR)
    })
    .unwrap()
    .into_iter()
    .map(|w| w.statement)
    .collect();
    // The watcher's records of the deposits (their depositor is part of the priority entries
    // the leaves commit to) and the batch's ops as the writer stores them.
    let mut conn = jobs.pool().acquire().await.unwrap();
    let mut queue_hash = [0u8; 32];
    for i in 0..deposits {
        // The contract's queue hash after this deposit (SPEC 15.2).
        queue_hash = state::settlement::priority_chain(
            queue_hash,
            &[state::settlement::PriorityEntry::Deposit {
                serial: u64::from(i),
                depositor: DEPOSITOR,
                recipient: i + 1,
                amount: 1_000 + u64::from(i),
            }],
        );
        rollup_storage::l1::insert_seen_op(
            &mut conn,
            &rollup_storage::l1::L1PriorityOp {
                serial: u64::from(i),
                kind: rollup_storage::PriorityOpKind::Deposit,
                depositor: DEPOSITOR,
                recipient: u64::from(i + 1),
                amount: 1_000 + u64::from(i),
                priority_hash: queue_hash,
                payload: None,
                l1_block: 1,
                l1_block_hash: [1; 32],
                l1_tx_hash: [i as u8; 32],
                log_index: u64::from(i),
                deadline: None,
            },
        )
        .await
        .unwrap();
    }
    drop(conn);
    // The ops and the state diff the writer stores with the batch.
    let mut replay = State::genesis(d, operator().public_key());
    let count_before = replay.accounts().len() as u64;
    let mut touches = state::diff::BatchTouches::new(count_before);
    let ops: Vec<state::pubdata::PubdataOp> = plain
        .iter()
        .map(|(tx, c)| {
            let fx = replay.apply(tx, c).unwrap();
            touches.absorb(&fx);
            fx.pubdata
        })
        .collect();
    assert_eq!(touches.count_before(), count_before);
    let l1_diff = touches.diff(&replay).unwrap().encode();
    let last = stmts.last().unwrap();
    let mut pos = [0i32; 3];
    for (i, (tx, _, block)) in txs.iter().enumerate() {
        let seq = i as i64 + 1;
        let (sender, recipient, account_index) = match tx {
            Transaction::Register(_) => (None, None, Some(i as i64 + 1)),
            Transaction::Deposit(dp) => (None, Some(i64::from(dp.to.0)), None),
            Transaction::Split(s) => (Some(i64::from(s.from.0)), None, None),
            _ => unreachable!(),
        };
        sqlx::query(
            "INSERT INTO transactions (seq, tx_id, kind, sender, recipient, account_index, raw, \
             block_number, position, block_time) VALUES ($1,$2,$3,$10,$4,$5,$6,$7,$8,$9)",
        )
        .bind(seq)
        .bind(tx.message_hash(&d).0.to_bytes().to_vec())
        .bind(tx.kind() as i16)
        .bind(recipient)
        .bind(account_index)
        .bind(tx.encode())
        .bind(*block as i64)
        .bind(pos[*block as usize])
        .bind(if *block == 1 {
            T0 as i64
        } else {
            T0 as i64 + 1
        })
        .bind(sender)
        .execute(jobs.pool())
        .await
        .unwrap();
        pos[*block as usize] += 1;
    }
    for (b, first, t) in [
        (1i64, 1i64, T0 as i64),
        (2, i64::from(n) + 1, T0 as i64 + 1),
    ] {
        sqlx::query(
            "INSERT INTO blocks (number, state_root, first_seq, tx_count, block_time) VALUES ($1,$2,$3,$4,$5)",
        )
        .bind(b)
        .bind(last.new_root.to_bytes().to_vec())
        .bind(first)
        .bind(n as i32)
        .bind(t)
        .execute(jobs.pool())
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO batches (number, first_block, last_block, first_seq, last_seq, old_root, \
         new_root, pubdata_commitment, withdrawals_commitment, first_deposit_seq, next_deposit_seq, \
         tx_count) VALUES (1, 1, 2, 1, $1, $2, $3, $4, $5, 0, $6, $7)",
    )
    .bind(2 * i64::from(n))
    .bind(old_root.to_bytes().to_vec())
    .bind(last.new_root.to_bytes().to_vec())
    .bind(last.pubdata_out.to_bytes().to_vec())
    .bind(last.withdrawals_out.to_bytes().to_vec())
    .bind(last.deposits_next as i64)
    .bind(2 * n as i32)
    .execute(jobs.pool())
    .await
    .unwrap();
    let zero = serde_json::to_value(state::Digest::ZERO).unwrap();
    sqlx::query(
        "INSERT INTO batch_witness (batch_number, pubdata, witness, l1_pubdata) \
         VALUES (1, $1, $2, $3)",
    )
    .bind(state::pubdata::encode_ops(&ops))
    .bind(serde_json::json!({
        "version": 1, "batch": 1, "blocks": [1, 2], "block_times": [[1, T0], [2, T0 + 1]],
        "seqs": [1, 2 * n], "old_root": zero, "new_root": zero,
        "pubdata_commitment": zero, "withdrawals_commitment": zero,
        "deposits": [0, deposits], "withdrawals": [], "refunds": [],
    }))
    .bind(l1_diff)
    .execute(jobs.pool())
    .await
    .unwrap();
}

/// The L1 sender of every seeded deposit.
pub const DEPOSITOR: state::tx::L1Address = state::tx::L1Address([0xd0; 20]);

fn ctx(t: u64) -> BlockContext {
    BlockContext::at(Timestamp::new(t).unwrap())
}
