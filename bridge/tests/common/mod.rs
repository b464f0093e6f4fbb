//! Helpers shared by the anvil integration tests: a per-test Postgres database with the
//! migrations, a fresh anvil with the contracts deployed, proven batches as the sequencer and
//! prover leave them, and a submitter wired to both.

#![allow(dead_code)]

use std::time::Duration;

use alloy_primitives::{keccak256, Address, B256};
use alloy_sol_types::SolEvent;
use devkit::anvil::Anvil;
use rollup_bridge::contracts::Rollup;
use rollup_bridge::deploy::{self, DeployConfig, Deployment};
use rollup_bridge::rpc::Rpc;
use rollup_bridge::signer::{L1Signer, ANVIL_DEV_KEY_0};
use rollup_bridge::submitter::{Submitter, SubmitterConfig};
use serde_json::json;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use state::diff::StateDiff;

pub async fn database(prefix: &str) -> PgPool {
    let url = devkit::postgres::test_database(prefix)
        .await
        .expect("a Postgres server (see rollup-devkit)");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    sqlx::migrate!("../migrations").run(&pool).await.unwrap();
    pool
}

pub struct L1 {
    pub _anvil: Anvil,
    pub url: String,
    pub rpc: Rpc,
    pub d: Deployment,
    pub operator: Address,
    pub alice: Address,
}

pub async fn l1(genesis: B256) -> L1 {
    let anvil = Anvil::start(&[]).expect("anvil (run scripts/ensure-l1-tools.sh)");
    let url = anvil.endpoint();
    let rpc = Rpc::new(url.clone());
    rpc.wait_ready(Duration::from_secs(10)).await.unwrap();
    let accounts = rpc.accounts().await.unwrap();
    let (operator, alice) = (accounts[0], accounts[1]);
    let d = deploy::deploy_devnet(&rpc, &DeployConfig::devnet(operator, genesis))
        .await
        .unwrap();
    deploy::mint(&rpc, &d, operator, alice, 1_000_000_000)
        .await
        .unwrap();
    L1 {
        _anvil: anvil,
        url,
        rpc,
        d,
        operator,
        alice,
    }
}

pub async fn mine(rpc: &Rpc, blocks: u64) {
    let _: serde_json::Value = rpc
        .request("anvil_mine", json!([format!("0x{blocks:x}")]))
        .await
        .unwrap();
}

/// Puts proven batches into the sequencer's tables as the sequencer and prover would, with an
/// empty state diff as their L1 data (the contract does not look inside it).
pub async fn proven_batch(
    pool: &PgPool,
    n: u64,
    old: B256,
    new: B256,
    deposits: (u64, u64),
    withdrawals: serde_json::Value,
) {
    let empty = StateDiff::new(1, vec![]).unwrap().encode();
    proven_batch_with_diff(pool, n, old, new, deposits, withdrawals, Some(empty)).await
}

/// [`proven_batch`] with the given L1 data (`None`: a row from before migration 0005).
pub async fn proven_batch_with_diff(
    pool: &PgPool,
    n: u64,
    old: B256,
    new: B256,
    deposits: (u64, u64),
    withdrawals: serde_json::Value,
    l1_pubdata: Option<Vec<u8>>,
) {
    sqlx::query(
        "INSERT INTO batches (number, first_block, last_block, first_seq, last_seq, old_root, new_root, \
         pubdata_commitment, withdrawals_commitment, first_deposit_seq, next_deposit_seq, tx_count, status) \
         VALUES ($1, $1, $1, $1, $1, $2, $3, $4, $5, $6, $7, 1, 'proven')",
    )
    .bind(n as i64)
    .bind(old.to_vec())
    .bind(new.to_vec())
    .bind(keccak256(format!("pubdata {n}")).to_vec())
    .bind(keccak256(format!("withdrawals {n}")).to_vec())
    .bind(deposits.0 as i64)
    .bind(deposits.1 as i64)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO batch_witness (batch_number, pubdata, witness, l1_pubdata) VALUES ($1, $2, $3, $4)",
    )
    .bind(n as i64)
    .bind(vec![n as u8; 40])
    .bind(json!({"version": 1, "withdrawals": withdrawals, "refunds": []}))
    .bind(l1_pubdata)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO prover_jobs (batch_number, kind, state, proof) VALUES ($1, 'final', 'done', $2)",
    )
    .bind(n as i64)
    .bind(format!("proof of batch {n}").into_bytes())
    .execute(pool)
    .await
    .unwrap();
}

pub fn submitter(l1: &L1, pool: &PgPool) -> Submitter {
    Submitter {
        rpc: Rpc::new(l1.url.clone()),
        pool: pool.clone(),
        signer: L1Signer::from_hex(ANVIL_DEV_KEY_0).unwrap(),
        verifier: Box::new(|_: u64, proof: &[u8]| {
            if proof.starts_with(b"proof of batch") {
                Ok(())
            } else {
                Err("bad proof".to_string())
            }
        }),
        cfg: SubmitterConfig {
            rollup: l1.d.rollup,
            chain_id: 31337,
            confirmations: 2,
            resend_after: Duration::from_secs(30),
            gas_bump_percent: 20,
            poll_interval: Duration::from_millis(20),
        },
    }
}

pub async fn committed_logs(l1: &L1) -> Vec<u64> {
    let head = l1.rpc.block_number().await.unwrap();
    l1.rpc
        .logs(
            l1.d.rollup,
            &[Rollup::BatchCommitted::SIGNATURE_HASH],
            0,
            head,
        )
        .await
        .unwrap()
        .iter()
        .map(|l| {
            Rollup::BatchCommitted::decode_raw_log(l.topics.iter().copied(), &l.data)
                .unwrap()
                .batchNumber
        })
        .collect()
}

pub async fn batch_status(pool: &PgPool, n: u64) -> String {
    sqlx::query("SELECT status FROM batches WHERE number = $1")
        .bind(n as i64)
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0)
}
