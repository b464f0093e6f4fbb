//! Helpers shared by the anvil integration tests: a per-test Postgres database with the
//! migrations, a fresh anvil with the contracts deployed, proven batches as the sequencer and
//! prover leave them, and a submitter wired to both.

#![allow(dead_code)]

use std::time::Duration;

use alloy_primitives::{Address, B256};
use alloy_sol_types::SolEvent;
use devkit::anvil::Anvil;
use rollup_bridge::contracts::Rollup;
use rollup_bridge::deploy::{self, DeployConfig, Deployment};
use rollup_bridge::rpc::Rpc;
use rollup_bridge::signer::{L1Signer, ANVIL_DEV_KEY_0, ANVIL_DEV_KEY_2};
use rollup_bridge::submitter::{ProvenBatch, Submitter, SubmitterConfig};
use rollup_bridge::watcher::{Watcher, WatcherConfig};
use serde_json::json;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use state::account::{AccountIndex, Amount};
use state::diff::StateDiff;
use state::pubdata::{
    encode_ops, pubdata_commitment, withdrawals_commitment, DepositStatus, PubdataOp,
    WithdrawalRecord,
};
use state::tx::L1Address;

pub async fn database(prefix: &str) -> PgPool {
    let url = devkit::postgres::test_database(prefix)
        .await
        .expect("a Postgres server (see rollup-devkit)");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    rollup_storage::MIGRATOR.run(&pool).await.unwrap();
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

/// Waits until anvil has a receipt for `tx` (10 s at most). Automine mines a transaction on a
/// task of its own, so a receipt asked for right after the send can still be missing: a test
/// that expects the submitter's next step to find it mined waits for this first.
pub async fn wait_mined(rpc: &Rpc, tx: B256) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if rpc.receipt(tx).await.unwrap().is_some() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no receipt for {tx} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Puts proven batches into the sequencer's tables as the sequencer and prover would, with an
/// empty state diff as their L1 data (the contract does not look inside it). The batch's ops
/// are the deposits `[deposits.0, deposits.1)` exactly as the watcher recorded them (credited),
/// then the withdrawals (`[{"from", "to_l1", "amount"}]`); the commitments are computed from
/// them, and the stand-in proof carries the [`ProvenBatch`] the stand-in verifier reports.
pub async fn proven_batch(
    l1: &L1,
    pool: &PgPool,
    n: u64,
    old: B256,
    new: B256,
    deposits: (u64, u64),
    withdrawals: serde_json::Value,
) {
    let empty = StateDiff::new(1, vec![]).unwrap().encode();
    proven_batch_with_diff(l1, pool, n, (old, new), deposits, withdrawals, Some(empty)).await
}

/// The ops of a stand-in batch (see [`proven_batch`]).
pub async fn batch_ops(
    pool: &PgPool,
    deposits: (u64, u64),
    withdrawals: &serde_json::Value,
) -> Vec<PubdataOp> {
    let store = rollup_storage::Store::from_pool(pool.clone());
    let mut ops = Vec::new();
    for seq in deposits.0..deposits.1 {
        let op = store
            .l1()
            .live_op(seq)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("deposit {seq} is not in l1_priority_ops"))
            .op;
        ops.push(PubdataOp::Deposit {
            seq,
            to: AccountIndex(op.recipient as u32),
            amount: Amount::new(op.amount).unwrap(),
            status: DepositStatus::Credited,
        });
    }
    for w in withdrawals.as_array().unwrap() {
        ops.push(PubdataOp::Withdraw {
            from: AccountIndex(w["from"].as_u64().unwrap() as u32),
            to_l1: L1Address(
                w["to_l1"]
                    .as_str()
                    .unwrap()
                    .parse::<Address>()
                    .unwrap()
                    .into_array(),
            ),
            amount: Amount::new(w["amount"].as_u64().unwrap()).unwrap(),
            fee: Amount::ZERO,
        });
    }
    ops
}

/// [`proven_batch`] with the given L1 data (`None`: a row from before migration 0005).
pub async fn proven_batch_with_diff(
    l1: &L1,
    pool: &PgPool,
    n: u64,
    (old, new): (B256, B256),
    deposits: (u64, u64),
    withdrawals: serde_json::Value,
    l1_pubdata: Option<Vec<u8>>,
) {
    let ops = batch_ops(pool, deposits, &withdrawals).await;
    let records: Vec<WithdrawalRecord> = ops
        .iter()
        .filter_map(|op| match *op {
            PubdataOp::Withdraw {
                from,
                to_l1,
                amount,
                ..
            } => Some(WithdrawalRecord {
                from,
                to_l1,
                amount,
            }),
            _ => None,
        })
        .collect();
    // The statement an honest proof of this batch would bind (what the contract computes).
    let store = rollup_storage::Store::from_pool(pool.clone());
    let queue_hash = |serial: u64| {
        let store = store.clone();
        async move {
            match serial.checked_sub(1) {
                None => [0u8; 32],
                Some(last) => {
                    store
                        .l1()
                        .live_op(last)
                        .await
                        .unwrap()
                        .expect("the watcher recorded the op")
                        .op
                        .priority_hash
                }
            }
        }
    };
    let mut depositors = std::collections::BTreeMap::new();
    for seq in deposits.0..deposits.1 {
        let op = store.l1().live_op(seq).await.unwrap().expect("recorded");
        depositors.insert(seq, op.op.depositor);
    }
    let settled =
        state::settlement::settle_ops(&ops, deposits.0, |seq| depositors.get(&seq).copied())
            .expect("stand-in ops settle");
    let proven = ProvenBatch {
        chain_id: 31337,
        rollup: L1Address(l1.d.rollup.into_array()),
        batch_number: n,
        old_root: old.0,
        new_root: new.0,
        diff_hash: state::settlement::diff_hash(l1_pubdata.as_deref().unwrap_or_default()),
        payout_root: state::settlement::PayoutTree::new(n, &settled.payouts).root(),
        first_priority_op: deposits.0,
        next_priority_op: deposits.1,
        priority_hash_before: queue_hash(deposits.0).await,
        priority_hash_after: queue_hash(deposits.1).await,
        timestamp: n,
    };
    sqlx::query(
        "INSERT INTO batches (number, first_block, last_block, first_seq, last_seq, old_root, new_root, \
         pubdata_commitment, withdrawals_commitment, first_deposit_seq, next_deposit_seq, tx_count, status) \
         VALUES ($1, $1, $1, $1, $1, $2, $3, $4, $5, $6, $7, 1, 'proven')",
    )
    .bind(n as i64)
    .bind(old.to_vec())
    .bind(new.to_vec())
    .bind(pubdata_commitment(&ops).to_bytes().to_vec())
    .bind(withdrawals_commitment(&records).to_bytes().to_vec())
    .bind(deposits.0 as i64)
    .bind(deposits.1 as i64)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO batch_witness (batch_number, pubdata, witness, l1_pubdata) VALUES ($1, $2, $3, $4)",
    )
    .bind(n as i64)
    .bind(encode_ops(&ops))
    .bind(witness(n, deposits, withdrawals))
    .bind(l1_pubdata)
    .execute(pool)
    .await
    .unwrap();
    // The prover's output table, which the submitter reads (never `prover_jobs`).
    sqlx::query(
        "INSERT INTO batch_proofs (batch_number, top_level, proof, statement, digest, leaves, prove_ms) \
         VALUES ($1, 0, $2, '{}', $3, 1, 0)",
    )
    .bind(n as i64)
    .bind(stand_in_proof(&proven))
    .bind(vec![0u8; 32])
    .execute(pool)
    .await
    .unwrap();
}

const PROOF_PREFIX: &[u8] = b"proof of batch:";

/// A stand-in proof: it "proves" exactly the given statement (the stand-in verifier reports it).
pub fn stand_in_proof(p: &ProvenBatch) -> Vec<u8> {
    let mut out = PROOF_PREFIX.to_vec();
    out.extend(serde_json::to_vec(p).unwrap());
    out
}

/// The statement a stand-in proof "proves".
pub fn stand_in_statement(proof: &[u8]) -> Option<ProvenBatch> {
    proof
        .strip_prefix(PROOF_PREFIX)
        .and_then(|body| serde_json::from_slice::<ProvenBatch>(body).ok())
}

/// A complete version 1 witness document (what the writer seals) for batch `n`; the submitter
/// reads none of its lists (payouts come from the proven ops).
fn witness(n: u64, deposits: (u64, u64), withdrawals: serde_json::Value) -> serde_json::Value {
    let zero = serde_json::to_value(state::Digest::ZERO).unwrap();
    json!({
        "version": 1,
        "batch": n,
        "blocks": [n, n],
        "block_times": [[n, 0]],
        "seqs": [n, n],
        "old_root": zero,
        "new_root": zero,
        "pubdata_commitment": zero,
        "withdrawals_commitment": zero,
        "deposits": [deposits.0, deposits.1],
        "withdrawals": withdrawals,
        "refunds": [],
    })
}

pub fn watcher(l1: &L1, pool: &PgPool, confirmations: u64) -> Watcher {
    Watcher {
        rpc: Rpc::new(l1.url.clone()),
        pool: pool.clone(),
        cfg: WatcherConfig {
            rollup: l1.d.rollup,
            confirmations,
            start_block: 0,
            max_range: 1000,
            poll_interval: Duration::from_millis(50),
        },
    }
}

pub fn submitter(l1: &L1, pool: &PgPool) -> Submitter {
    Submitter {
        rpc: Rpc::new(l1.url.clone()),
        pool: pool.clone(),
        signer: L1Signer::from_hex(ANVIL_DEV_KEY_0).unwrap(),
        attester: L1Signer::from_hex(ANVIL_DEV_KEY_2).unwrap(),
        verifier: Box::new(|_: u64, proof: &[u8]| {
            stand_in_statement(proof).ok_or_else(|| "bad proof".to_string())
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

/// What a stand-in L1 endpoint does with one JSON-RPC request: `Some(response)` answers it
/// (the whole JSON-RPC response object), `None` keeps the connection open and never answers.
pub type Handler = std::sync::Arc<
    dyn Fn(serde_json::Value) -> futures::future::BoxFuture<'static, Option<serde_json::Value>>
        + Send
        + Sync,
>;

/// A [`Handler`] from an async function of the request.
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<serde_json::Value>> + Send + 'static,
{
    std::sync::Arc::new(
        move |req: serde_json::Value| -> futures::future::BoxFuture<'static, Option<serde_json::Value>> {
            Box::pin(f(req))
        },
    )
}

/// A JSON-RPC response with `result` for the request `req`.
pub fn answer(req: &serde_json::Value, result: serde_json::Value) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": req["id"].clone(), "result": result})
}

/// A tiny HTTP/1.1 JSON-RPC server on 127.0.0.1 that stands for a broken L1 provider (hung,
/// lagging) or sits in front of a real anvil to order events around the client's calls. It
/// serves until the test's runtime ends. Returns its URL.
pub async fn l1_endpoint(handler: Handler) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve_connection(sock, handler.clone()));
        }
    });
    format!("http://{addr}")
}

async fn serve_connection(mut sock: tokio::net::TcpStream, handler: Handler) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // One request after the other on a kept-alive connection (reqwest reuses them).
    loop {
        let header_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < header_end + len {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..header_end + len).skip(header_end).collect();
        let Ok(req) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return;
        };
        let Some(resp) = handler(req).await else {
            // Hung provider: the connection stays open and silent.
            std::future::pending::<()>().await;
            return;
        };
        let text = resp.to_string();
        let out = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if sock.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Forwards one JSON-RPC request to `url` (a real anvil) and returns its response.
pub async fn forward(url: &str, req: &serde_json::Value) -> serde_json::Value {
    reqwest::Client::new()
        .post(url)
        .json(req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
