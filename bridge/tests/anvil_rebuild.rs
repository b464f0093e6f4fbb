//! State diffs on L1 (SPEC 10.4) against a real anvil and Postgres: batches built with the real
//! state-transition function and sealed with their checked diffs are committed by the
//! submitter, and the L2 state is rebuilt from L1 alone (the library and the `rollup-l1
//! rebuild-state` binary), matching the L2's roots, accounts and balances. From the other
//! side: a tampered diff committed by a dishonest operator is caught by the rebuild, and the
//! submitter refuses to send a diff that does not decode or is missing.
//! Needs scripts/ensure-l1-tools.sh (anvil) and a Postgres server (see rollup-devkit).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use common::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rollup_bridge::contracts::Rollup;
use rollup_bridge::deploy;
use rollup_bridge::rebuild::{rebuild, BatchApplied, RebuildConfig, RebuildError};
use rollup_bridge::signer::ANVIL_DEV_KEY_0;
use rollup_bridge::submitter::{Step, SubmitError, Submitter};
use serde_json::json;
use sqlx::postgres::PgPool;
use state::account::{AccountIndex, Amount, Timestamp};
use state::apply::{BlockContext, State};
use state::crypto::schnorr::SecretKey;
use state::diff::{AccountRecord, BatchTouches, StateDiff};
use state::tx::{Deposit, Domain, Transaction, UnsignedRegister, UnsignedTransfer};
use state::Digest;

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [0x42; 20],
};
const NOW: u64 = 1_700_000_000;

fn key(seed: u64) -> SecretKey {
    SecretKey::random(&mut StdRng::seed_from_u64(seed))
}

fn b256(d: Digest) -> B256 {
    B256::from(d.to_bytes())
}

/// The L2 side: the real state and the agents' keys (key 0 is the operator's).
struct L2 {
    state: State,
    keys: Vec<SecretKey>,
}

impl L2 {
    fn new() -> L2 {
        let keys: Vec<SecretKey> = (0..5).map(key).collect();
        L2 {
            state: State::genesis(DOMAIN, keys[0].public_key()),
            keys,
        }
    }

    fn register(&self, k: usize) -> Transaction {
        UnsignedRegister {
            pubkey: self.keys[k].public_key(),
            valid_until: Timestamp::new(NOW + 60).unwrap(),
        }
        .sign(&DOMAIN, &self.keys[k])
        .into()
    }

    fn deposit(&self, seq: u64, to: u32, amount: u64) -> Transaction {
        Transaction::Deposit(Deposit {
            seq,
            to: AccountIndex(to),
            amount: Amount::new(amount).unwrap(),
        })
    }

    /// Account `from` (registered with key `from`) pays `to`.
    fn pay(&self, from: u32, to: u32, amount: u64, fee: u64, nonce: u64) -> Transaction {
        UnsignedTransfer {
            from: AccountIndex(from),
            to: AccountIndex(to),
            amount: Amount::new(amount).unwrap(),
            fee: Amount::new(fee).unwrap(),
            nonce: state::account::Nonce::new(nonce).unwrap(),
            valid_until: Timestamp::new(NOW + 60).unwrap(),
        }
        .sign(&DOMAIN, &self.keys[from as usize])
        .into()
    }

    /// Applies `txs` as one batch, as the node's writer does: returns the roots before and
    /// after and the sealed (checked) state diff.
    fn batch(&mut self, txs: &[Transaction]) -> (Digest, Digest, Vec<u8>) {
        let ctx = BlockContext::at(Timestamp::new(NOW).unwrap());
        let old = self.state.root();
        let mut touches = BatchTouches::new(self.state.num_accounts());
        for tx in txs {
            let fx = self
                .state
                .apply(tx, &ctx)
                .expect("every test transaction is valid");
            touches.absorb(&fx);
        }
        let blob = touches.seal(&mut self.state, old).expect("the diff checks");
        (old, self.state.root(), blob)
    }
}

/// Steps the submitter until L1 has committed `n` batches.
async fn commit_until(s: &Submitter, l1: &L1, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.last_committed().await.unwrap() < n {
        assert!(Instant::now() < deadline, "batches not committed in 60 s");
        match s.step().await.unwrap() {
            Step::Idle => mine(&l1.rpc, 1).await,
            Step::Waiting => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => {}
        }
    }
}

fn rebuild_cfg(l1: &L1) -> RebuildConfig {
    RebuildConfig {
        rollup: l1.d.rollup,
        from_block: 0,
        // Small pages, so that the scan crosses several eth_getLogs requests.
        max_range: 3,
        until: None,
    }
}

/// Runs `rollup-l1 rebuild-state --json`; returns the exit code, stdout lines and stderr.
fn rebuild_cli(l1: &L1, operator: &SecretKey) -> (i32, Vec<serde_json::Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rollup-l1"))
        .args([
            "--l1-rpc",
            &l1.url,
            "rebuild-state",
            "--rollup-address",
            &l1.d.rollup.to_string(),
            "--operator-pubkey",
            &operator.public_key().to_hex(),
            "--json",
        ])
        .output()
        .expect("run rollup-l1");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Three batches: registrations and L1 deposits; payments; a registration, a payment to it
/// and a deposit to it.
async fn three_batches(l2: &mut L2, l1: &L1, pool: &PgPool) -> Vec<(Digest, Digest, Vec<u8>)> {
    for (to, amount) in [(1, 1_000), (2, 500), (4, 300)] {
        deploy::deposit(&l1.rpc, &l1.d, l1.alice, to, amount)
            .await
            .unwrap();
    }
    let b1 = [
        l2.register(1),
        l2.register(2),
        l2.register(3),
        l2.deposit(0, 1, 1_000),
        l2.deposit(1, 2, 500),
    ];
    let b1 = l2.batch(&b1);
    let b2 = [
        l2.pay(1, 2, 100, 1, 0),
        l2.pay(2, 3, 50, 0, 0),
        l2.pay(1, 3, 25, 2, 1),
    ];
    let b2 = l2.batch(&b2);
    let b3 = [
        l2.register(4),
        l2.pay(3, 4, 10, 1, 0),
        l2.deposit(2, 4, 300),
    ];
    let b3 = l2.batch(&b3);
    let batches = vec![b1, b2, b3];
    // The watcher records the deposits (the submitter takes their depositors from it).
    watcher(l1, pool, 0).poll().await.unwrap();
    let deposits = [(0, 2), (2, 2), (2, 3)];
    for (i, (old, new, blob)) in batches.iter().enumerate() {
        let n = i as u64 + 1;
        proven_batch_with_diff(
            l1,
            pool,
            n,
            (b256(*old), b256(*new)),
            deposits[i],
            json!([]),
            Some(blob.clone()),
        )
        .await;
    }
    batches
}

#[tokio::test]
async fn the_l2_state_is_rebuilt_from_l1_alone() {
    let mut l2 = L2::new();
    let genesis = l2.state.root();
    let l1 = l1(b256(genesis)).await;
    let pool = database("bridge_rebuild").await;

    // Before any batch, the rebuild is the genesis state, checked against the contract.
    let empty = rebuild(&l1.rpc, &rebuild_cfg(&l1), l2.keys[0].public_key(), |_| {})
        .await
        .unwrap();
    assert_eq!((empty.batches, empty.tree.root()), (0, genesis));

    let batches = three_batches(&mut l2, &l1, &pool).await;
    let s = submitter(&l1, &pool);
    commit_until(&s, &l1, 3).await;

    let mut seen: Vec<BatchApplied> = Vec::new();
    let rebuilt = rebuild(&l1.rpc, &rebuild_cfg(&l1), l2.keys[0].public_key(), |b| {
        seen.push(b.clone())
    })
    .await
    .unwrap();
    assert_eq!(rebuilt.batches, 3);
    assert_eq!(
        seen.iter().map(|b| (b.batch, b.root)).collect::<Vec<_>>(),
        batches
            .iter()
            .enumerate()
            .map(|(i, (_, new, _))| (i as u64 + 1, b256(*new)))
            .collect::<Vec<_>>(),
        "every batch, in order, with the L2's root"
    );
    assert_eq!(
        seen.iter().map(|b| b.new_accounts).collect::<Vec<_>>(),
        [3, 0, 1]
    );
    assert_eq!(seen[1].diff_bytes, batches[1].2.len());
    assert_eq!(rebuilt.tree.root(), l2.state.root());
    assert_eq!(rebuilt.tree.accounts(), l2.state.accounts());
    assert_eq!(rebuilt.tree.total_balance(), 1_800);

    // The binary says the same, as JSON lines: one per batch, then the summary.
    let (code, lines, stderr) = rebuild_cli(&l1, &l2.keys[0]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[2]["batch"], 3);
    let summary = &lines[3];
    assert_eq!(summary["batches"], 3);
    assert_eq!(summary["accounts"], 5);
    assert_eq!(summary["total_balance"], "1800");
    assert_eq!(summary["root"], json!(b256(l2.state.root())));

    // The wrong operator key gives another genesis, which the contract did not start from.
    let wrong = rebuild(&l1.rpc, &rebuild_cfg(&l1), l2.keys[1].public_key(), |_| {}).await;
    assert!(
        matches!(wrong, Err(RebuildError::GenesisMismatch { .. })),
        "{wrong:?}"
    );

    // The operator reverts the unfinalized batch with `rollup-l1 revert-batches` (SPEC 15.9).
    // The submitter finalizes batch n before it commits n + 1, so batch 3 is the unfinalized one.
    let lf = l1
        .rpc
        .view(l1.d.rollup, &Rollup::lastFinalizedBatchCall {})
        .await
        .unwrap();
    assert_eq!(lf, 2);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("operator.key");
    std::fs::write(&key, ANVIL_DEV_KEY_0).unwrap();
    // A key file others can read is refused, before anything is sent.
    let (code, _, stderr) = revert_cli(&l1, &key, 2, false);
    assert_eq!(code, 1);
    assert!(stderr.contains("accessible by group or others"), "{stderr}");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // A finalized batch cannot be reverted: refused with the range, nothing sent.
    let (code, _, stderr) = revert_cli(&l1, &key, 1, false);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot keep batch 1"), "{stderr}");
    let (code, plan, stderr) = revert_cli(&l1, &key, 2, true);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(plan["sent"], false);
    assert_eq!(plan["plan"]["first_reverted"], 3);
    assert_eq!(plan["plan"]["committed_root"], json!(b256(batches[1].1)));
    let (code, sent, stderr) = revert_cli(&l1, &key, 2, false);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(sent["sent"], true);
    assert_eq!(
        l1.rpc
            .view(l1.d.rollup, &Rollup::lastCommittedBatchCall {})
            .await
            .unwrap(),
        2
    );
    // Rebuilt from L1 after the revert: two batches, ending at batch 2's root.
    let after = rebuild(&l1.rpc, &rebuild_cfg(&l1), l2.keys[0].public_key(), |_| {})
        .await
        .unwrap();
    assert_eq!((after.batches, after.tree.root()), (2, batches[1].1));
}

/// Runs `rollup-l1 revert-batches --keep K`; returns the exit code, the JSON it printed (null
/// on failure) and stderr.
fn revert_cli(
    l1: &L1,
    key: &std::path::Path,
    keep: u64,
    dry_run: bool,
) -> (i32, serde_json::Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollup-l1"));
    cmd.args([
        "--l1-rpc",
        &l1.url,
        "revert-batches",
        "--rollup-address",
        &l1.d.rollup.to_string(),
        "--keep",
        &keep.to_string(),
        "--operator-l1-key",
    ])
    .arg(key);
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd.output().expect("run rollup-l1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_tampered_diff_on_l1_is_caught_by_the_rebuild_and_bad_diffs_are_never_sent() {
    let mut l2 = L2::new();
    let l1 = l1(b256(l2.state.root())).await;
    let pool = database("bridge_tamper").await;
    let batches = three_batches(&mut l2, &l1, &pool).await;

    // A dishonest operator publishes batch 2 with one balance raised by 1: a well-formed diff
    // with the honest roots in the header.
    let diff = StateDiff::decode(&batches[1].2).unwrap();
    let records: Vec<AccountRecord> = diff
        .records()
        .iter()
        .map(|r| match r.index.0 {
            2 => AccountRecord {
                balance: Amount::new(r.balance.get() + 1).unwrap(),
                ..*r
            },
            _ => *r,
        })
        .collect();
    let forged = StateDiff::new(diff.count_before(), records)
        .unwrap()
        .encode();
    sqlx::query("UPDATE batch_witness SET l1_pubdata = $1 WHERE batch_number = 2")
        .bind(&forged)
        .execute(&pool)
        .await
        .unwrap();
    // The proof binds the honest diff's hash: the submitter refuses the forged one.
    let s = submitter(&l1, &pool);
    commit_until(&s, &l1, 1).await;
    let err = s.prepare_commit(2).await.unwrap_err();
    assert!(
        matches!(&err, SubmitError::Batch(2, m) if m.contains("the stored state diff hashes to")),
        "{err}"
    );
    // The operator forges the proof too (stage 0: the contract checks no proof, the operator
    // attests), so the forged diff reaches L1.
    let proof: Vec<u8> =
        sqlx::query_scalar("SELECT proof FROM batch_proofs WHERE batch_number = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut lie = stand_in_statement(&proof).unwrap();
    lie.diff_hash = state::settlement::diff_hash(&forged);
    sqlx::query("UPDATE batch_proofs SET proof = $1 WHERE batch_number = 2")
        .bind(stand_in_proof(&lie))
        .execute(&pool)
        .await
        .unwrap();
    // Batch 3's diff does not even decode: the submitter refuses to send it.
    sqlx::query("UPDATE batch_witness SET l1_pubdata = '\\x01ff'::bytea WHERE batch_number = 3")
        .execute(&pool)
        .await
        .unwrap();
    commit_until(&s, &l1, 2).await;
    let refused = loop {
        match s.step().await {
            Err(e) => break e,
            Ok(Step::Idle) => mine(&l1.rpc, 1).await,
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert!(
        matches!(&refused, SubmitError::Batch(3, m) if m.contains("does not decode")),
        "{refused}"
    );
    // A batch sealed before migration 0005 has no diff: refused with a clear error.
    sqlx::query("UPDATE batch_witness SET l1_pubdata = NULL WHERE batch_number = 3")
        .execute(&pool)
        .await
        .unwrap();
    let err = s.prepare_commit(3).await.unwrap_err();
    assert!(
        matches!(&err, SubmitError::Batch(3, m) if m.contains("0005_state_diff")),
        "{err}"
    );
    assert_eq!(s.last_committed().await.unwrap(), 2);

    // Anyone rebuilding from L1 finds the forgery at batch 2.
    let mut seen = Vec::new();
    let r = rebuild(&l1.rpc, &rebuild_cfg(&l1), l2.keys[0].public_key(), |b| {
        seen.push(b.batch)
    })
    .await;
    match r {
        Err(e @ RebuildError::RootMismatch { batch: 2, .. }) => {
            assert!(e.is_data_error());
            if let RebuildError::RootMismatch {
                committed,
                computed,
                ..
            } = e
            {
                assert_eq!(committed, b256(batches[1].1));
                assert_ne!(computed, committed);
            }
        }
        other => panic!("expected a root mismatch at batch 2, got {other:?}"),
    }
    assert_eq!(seen, vec![1], "batch 1 was honest");
    let (code, lines, stderr) = rebuild_cli(&l1, &l2.keys[0]);
    assert_eq!(
        code, 2,
        "inconsistent L1 data has its own exit code; {stderr}"
    );
    assert_eq!(lines.len(), 1, "only batch 1 applied: {lines:?}");
    assert!(
        stderr.contains("batch 2") && stderr.contains("root"),
        "{stderr}"
    );
}
