//! The batch submitter (SPEC 16.3): commits proven batches to L1 in order, finalizes them with
//! the stage 0 attestation, and follows both transactions until they are past the confirmation
//! depth: a batch becomes `committed` (and `finalized`) in the database only then, so what the
//! database and the feed say is never undone by a reorg within the depth. A transaction whose
//! receipt disappears before the depth (reorged out) is broadcast again, the very same bytes;
//! one that moved to another block is tracked there.
//!
//! Never twice, also across restarts: before a transaction is broadcast, its signed bytes, nonce
//! and hash are written to `l1_submissions`; at start (and every step) pending rows are resolved
//! first (receipt found: apply it; not found: re-broadcast the same bytes, or after
//! `resend_after` a replacement with the same nonce and a bumped gas price, so at most one of
//! them can ever be mined). A new commit is only built for `lastCommittedBatch + 1` as read from
//! the contract, which itself rejects any other number.

use std::time::Duration;

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_sol_types::{SolCall, SolEvent, SolValue};
use serde_json::json;
use sqlx::postgres::PgPool;
use sqlx::Row;
use state::diff::StateDiff;

use crate::contracts::Rollup::{self, BatchHeader};
use crate::feed::{self, finality, kind};
use crate::hashes::{batch_statement, Payout, PayoutTree, REFUND_FROM_BASE};
use crate::rpc::{Receipt, Rpc, RpcError};
use crate::signer::{L1Signer, LegacyTx, SignerError};

/// Checks a batch proof before the batch is committed. The real verifier is
/// `rollup_prover::verify::verify_batch_proof` (plug it in where the node builds the submitter;
/// the bridge does not depend on the prover crate).
pub trait ProofVerifier: Send + Sync {
    fn verify(&self, batch_number: u64, proof: &[u8]) -> Result<(), String>;
}

impl<F> ProofVerifier for F
where
    F: Fn(u64, &[u8]) -> Result<(), String> + Send + Sync,
{
    fn verify(&self, batch_number: u64, proof: &[u8]) -> Result<(), String> {
        self(batch_number, proof)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error("batch {0}: {1}")]
    Batch(u64, String),
    #[error("decoding: {0}")]
    Abi(#[from] alloy_sol_types::Error),
}

#[derive(Clone, Debug)]
pub struct SubmitterConfig {
    pub rollup: Address,
    pub chain_id: u64,
    /// Depth after which a finalization counts as final (`finalized`).
    pub confirmations: u64,
    /// A broadcast transaction not mined after this long is replaced with a higher gas price.
    pub resend_after: Duration,
    /// Gas price bump per replacement, in percent (at least 10 for most nodes' mempools).
    pub gas_bump_percent: u64,
    pub poll_interval: Duration,
}

pub struct Submitter {
    pub rpc: Rpc,
    pub pool: PgPool,
    pub signer: L1Signer,
    pub verifier: Box<dyn ProofVerifier>,
    pub cfg: SubmitterConfig,
}

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Idle,
    /// A transaction is in flight (waiting for its receipt).
    Waiting,
    Sent {
        batch: u64,
        kind: &'static str,
        nonce: u64,
        tx: B256,
    },
    Resent {
        batch: u64,
        kind: &'static str,
        nonce: u64,
        tx: B256,
    },
    Mined {
        batch: u64,
        kind: String,
        tx: B256,
    },
    /// A commit is past the confirmation depth: the batch is `committed`.
    Committed {
        batch: u64,
    },
    Finalized {
        batch: u64,
    },
    /// A mined transaction's receipt disappeared before the depth (a reorg): it is pending
    /// again and will be broadcast again.
    Reorged {
        batch: u64,
        kind: String,
        tx: B256,
    },
}

/// What to do with an in-flight submission, from what L1 said about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingAction {
    /// The attempt at this index has a receipt: apply it.
    Mined(usize),
    /// The nonce was consumed by a transaction we did not record: give the row up.
    NonceUsedElsewhere,
    /// Recorded but never broadcast (crash in between): broadcast the very same bytes.
    Broadcast,
    /// Stuck for `resend_after`: replace it (same nonce, more gas).
    Replace,
    /// Still in flight: re-broadcast (harmless) in case the node forgot it.
    Rebroadcast,
}

/// The decision for an in-flight submission with nonce `nonce`.
///
/// `latest_nonce` must be read from L1 *before* `has_receipt` (one entry per recorded attempt
/// with this nonce). Then "nonce passed and no receipt" means the nonce was used by a
/// transaction that is none of ours: had one of ours been mined, it was mined before the nonce
/// read, so its receipt was there when the receipts were read. Read the other way round, an
/// attempt mined between the two reads looks replaced, is given up, and its batch never
/// reaches `committed`.
pub fn decide_pending(
    latest_nonce: u64,
    nonce: u64,
    has_receipt: &[bool],
    broadcast_yet: bool,
    stuck: bool,
) -> PendingAction {
    if let Some(i) = has_receipt.iter().position(|r| *r) {
        PendingAction::Mined(i)
    } else if latest_nonce > nonce {
        PendingAction::NonceUsedElsewhere
    } else if !broadcast_yet {
        PendingAction::Broadcast
    } else if stuck {
        PendingAction::Replace
    } else {
        PendingAction::Rebroadcast
    }
}

/// The depth rule (as the watcher's): a transaction in block `block` is past the depth when
/// `head - block >= confirmations`.
fn past_depth(head: u64, block: u64, confirmations: u64) -> bool {
    head >= block && head - block >= confirmations
}

fn static_kind(kind: &str) -> &'static str {
    if kind == "commit" {
        "commit"
    } else {
        "finalize"
    }
}

/// A transaction to sign and send.
struct Outgoing {
    batch: u64,
    kind: &'static str,
    data: Bytes,
    nonce: u64,
    gas_price: u128,
    attempts: i32,
    /// `None`: estimate.
    gas_limit: Option<u64>,
}

struct Pending {
    id: i64,
    batch: u64,
    kind: String,
    nonce: u64,
    tx: B256,
    gas_price: u128,
    raw: Vec<u8>,
    status: String,
    age: Duration,
}

fn b256(v: Vec<u8>) -> B256 {
    B256::left_padding_from(&v)
}

impl Submitter {
    async fn view<C: SolCall>(&self, call: C) -> Result<C::Return, SubmitError> {
        let out = self
            .rpc
            .call(self.cfg.rollup, Bytes::from(call.abi_encode()))
            .await?;
        Ok(C::abi_decode_returns(&out)?)
    }

    pub async fn last_committed(&self) -> Result<u64, SubmitError> {
        self.view(Rollup::lastCommittedBatchCall {}).await
    }

    pub async fn last_finalized(&self) -> Result<u64, SubmitError> {
        self.view(Rollup::lastFinalizedBatchCall {}).await
    }

    /// The header, L1 pubdata (the batch's state diff, SPEC 10.4) and proof of a proven batch
    /// (SPEC 15.3, 15.5).
    pub async fn build_header(
        &self,
        batch: u64,
    ) -> Result<(BatchHeader, Vec<u8>, Vec<u8>, Vec<Payout>), SubmitError> {
        let err = |m: &str| SubmitError::Batch(batch, m.to_string());
        let row = sqlx::query(
            "SELECT b.old_root, b.new_root, b.pubdata_commitment, b.withdrawals_commitment, \
             b.first_deposit_seq, b.next_deposit_seq, w.l1_pubdata, w.witness \
             FROM batches b JOIN batch_witness w ON w.batch_number = b.number WHERE b.number = $1",
        )
        .bind(batch as i64)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| err("no such batch"))?;
        let proof: Vec<u8> = sqlx::query(
            "SELECT proof FROM prover_jobs WHERE batch_number = $1 AND kind = 'final' \
             AND state = 'done' AND proof IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(batch as i64)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| err("proven but no final proof in prover_jobs"))?;
        let first = row.get::<i64, _>(4) as u64;
        let next = row.get::<i64, _>(5) as u64;
        // The state diff, not the per-transaction ops: those stay off L1 (SPEC 15.7). The writer
        // checked at seal that it leads from the previous batch's root to this one's (SPEC
        // 10.4); here it must at least parse, so that L1 never carries bytes nobody can apply.
        let pubdata: Vec<u8> = row.get::<Option<Vec<u8>>, _>(6).ok_or_else(|| {
            err("no state diff (sealed before migration 0005_state_diff): cannot be committed")
        })?;
        StateDiff::decode(&pubdata)
            .map_err(|e| err(&format!("the stored state diff does not decode: {e}")))?;
        let witness: serde_json::Value = row.get(7);
        let priority_ops_hash = if next == 0 {
            B256::ZERO
        } else {
            let h: Option<Vec<u8>> = sqlx::query(
                "SELECT priority_hash FROM l1_priority_ops WHERE serial = $1 AND status <> 'reorged'",
            )
            .bind((next - 1) as i64)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0));
            match h {
                Some(h) => b256(h),
                None => {
                    self.view(Rollup::priorityHashAfterCall(U256::from(next)))
                        .await?
                }
            }
        };
        // Payouts: withdrawals in order, then refunds of consumed deposits (SPEC 15.5).
        let mut payouts = Vec::new();
        for w in witness["withdrawals"].as_array().into_iter().flatten() {
            let to: Address = w["to_l1"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| err("witness withdrawal without to_l1"))?;
            payouts.push(Payout {
                from: w["from"].as_u64().ok_or_else(|| err("withdrawal from"))?,
                to,
                amount: w["amount"]
                    .as_u64()
                    .ok_or_else(|| err("withdrawal amount"))?,
            });
        }
        for r in witness["refunds"].as_array().into_iter().flatten() {
            let seq = r["seq"].as_u64().ok_or_else(|| err("refund seq"))?;
            let depositor: Vec<u8> = sqlx::query(
                "SELECT depositor FROM l1_priority_ops WHERE serial = $1 AND status <> 'reorged'",
            )
            .bind(seq as i64)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| err("refunded deposit unknown to the watcher"))?;
            payouts.push(Payout {
                from: REFUND_FROM_BASE + seq,
                to: Address::from_slice(&depositor),
                amount: r["amount"].as_u64().ok_or_else(|| err("refund amount"))?,
            });
        }
        let header = BatchHeader {
            batchNumber: batch,
            oldRoot: b256(row.get(0)),
            newRoot: b256(row.get(1)),
            pubdataCommitment: b256(row.get(2)),
            withdrawalsCommitment: b256(row.get(3)),
            withdrawalsRoot: PayoutTree::new(batch, &payouts).root(),
            firstPriorityOp: first,
            nextPriorityOp: next,
            priorityOpsHash: priority_ops_hash,
            proofHash: keccak256(&proof),
        };
        Ok((header, pubdata, proof, payouts))
    }

    /// The in-flight submission to resolve first: the lowest nonce (after a reorg several can be
    /// pending again, and a higher nonce cannot be mined before the lower one), its latest
    /// attempt.
    async fn pending(&self) -> Result<Option<Pending>, SubmitError> {
        let r = sqlx::query(
            "SELECT id, batch_number, kind, nonce, l1_tx_hash, gas_price::text, raw_tx, status, \
             extract(epoch FROM now() - updated_at)::float8 \
             FROM l1_submissions WHERE status IN ('signed', 'sent') ORDER BY nonce, id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(|r| Pending {
            id: r.get(0),
            batch: r.get::<i64, _>(1) as u64,
            kind: r.get(2),
            nonce: r.get::<i64, _>(3) as u64,
            tx: b256(r.get(4)),
            gas_price: r.get::<String, _>(5).parse().unwrap_or(0),
            raw: r.get(6),
            status: r.get(7),
            age: Duration::from_secs_f64(r.get::<f64, _>(8).max(0.0)),
        }))
    }

    /// Signs a call to the rollup, records it, then broadcasts it.
    async fn submit(&self, o: Outgoing) -> Result<B256, SubmitError> {
        let Outgoing {
            batch,
            kind,
            data,
            nonce,
            gas_price,
            attempts,
            gas_limit,
        } = o;
        // A replacement keeps the original's gas limit: estimating again could run against a
        // pending state that already includes the original (and revert).
        let gas = match gas_limit {
            Some(g) => g,
            None => {
                let g = self
                    .rpc
                    .estimate_gas(self.signer.address(), self.cfg.rollup, &data)
                    .await?;
                g + g / 4 + 10_000
            }
        };
        let tx = LegacyTx {
            chain_id: self.cfg.chain_id,
            nonce,
            gas_price,
            gas,
            to: self.cfg.rollup,
            value: U256::ZERO,
            data,
        };
        let (raw, hash) = self.signer.sign_legacy(&tx)?;
        let id: i64 = sqlx::query(
            "INSERT INTO l1_submissions (batch_number, kind, nonce, l1_tx_hash, gas_price, raw_tx, attempts) \
             VALUES ($1, $2, $3, $4, $5::text::numeric, $6, $7) RETURNING id",
        )
        .bind(batch as i64)
        .bind(kind)
        .bind(nonce as i64)
        .bind(hash.to_vec())
        .bind(gas_price.to_string())
        .bind(&raw)
        .bind(attempts)
        .fetch_one(&self.pool)
        .await?
        .get(0);
        self.broadcast(id, &raw).await?;
        metrics::counter!("bridge_l1_txs_sent_total", "kind" => kind).increment(1);
        Ok(hash)
    }

    async fn broadcast(&self, id: i64, raw: &[u8]) -> Result<(), SubmitError> {
        match self.rpc.send_raw(raw).await {
            Ok(_) => {}
            // Already in the mempool (a re-broadcast after a restart): fine.
            Err(RpcError::Node { message, .. })
                if message.contains("already") || message.contains("known") => {}
            Err(e) => return Err(e.into()),
        }
        sqlx::query(
            "UPDATE l1_submissions SET status = 'sent', updated_at = now() WHERE id = $1 AND status = 'signed'",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a submission's first receipt. The batch status and the feed wait until the
    /// transaction is past the depth ([`Submitter::follow`]); until then a reorg can still take
    /// it away.
    async fn on_mined(&self, p: &Pending, receipt: &Receipt) -> Result<(), SubmitError> {
        let block = receipt.block_number.to::<u64>();
        let mut db = self.pool.begin().await?;
        let ok = receipt.status == U256::from(1);
        sqlx::query(
            "UPDATE l1_submissions SET status = $2, l1_block = $3, updated_at = now(), \
             error = CASE WHEN $2 = 'failed' THEN 'reverted' ELSE NULL END WHERE id = $1",
        )
        .bind(p.id)
        .bind(if ok { "mined" } else { "failed" })
        .bind(block as i64)
        .execute(&mut *db)
        .await?;
        // Every other row with this nonce lost the race.
        sqlx::query(
            "UPDATE l1_submissions SET status = 'replaced', updated_at = now() \
             WHERE nonce = $1 AND id <> $2 AND status IN ('signed', 'sent')",
        )
        .bind(p.nonce as i64)
        .bind(p.id)
        .execute(&mut *db)
        .await?;
        if ok {
            let column = if p.kind == "commit" {
                "commit"
            } else {
                "finalize"
            };
            sqlx::query(&format!(
                "UPDATE l1_batches SET {column}_tx = $2, {column}_block = $3 WHERE batch_number = $1"
            ))
            .bind(p.batch as i64)
            .bind(p.tx.to_vec())
            .bind(block as i64)
            .execute(&mut *db)
            .await?;
            tracing::info!(
                batch = p.batch,
                kind = %p.kind,
                tx = %p.tx,
                block,
                confirmations = self.cfg.confirmations,
                "L1 transaction mined; following it until past the depth"
            );
        } else {
            tracing::error!(batch = p.batch, kind = %p.kind, tx = %p.tx, "L1 transaction reverted");
        }
        db.commit().await?;
        Ok(())
    }

    /// A commit past the depth: the batch is `committed`, with its feed event, once.
    async fn on_commit_deep(
        &self,
        batch: u64,
        tx: B256,
        receipt: &Receipt,
    ) -> Result<(), SubmitError> {
        let block = receipt.block_number.to::<u64>();
        let committed = receipt
            .logs
            .iter()
            .filter(|l| l.address == self.cfg.rollup)
            .find_map(|l| {
                Rollup::BatchCommitted::decode_raw_log(l.topics.iter().copied(), &l.data).ok()
            })
            .ok_or_else(|| SubmitError::Batch(batch, "no BatchCommitted log".into()))?;
        let mut db = self.pool.begin().await?;
        sqlx::query(
            "UPDATE l1_batches SET commit_tx = $2, commit_block = $3 WHERE batch_number = $1",
        )
        .bind(batch as i64)
        .bind(tx.to_vec())
        .bind(block as i64)
        .execute(&mut *db)
        .await?;
        let n = sqlx::query(
            "UPDATE batches SET status = 'committed' WHERE number = $1 AND status = 'proven'",
        )
        .bind(batch as i64)
        .execute(&mut *db)
        .await?
        .rows_affected();
        if n == 1 {
            let h = &committed.header;
            feed::append(
                &mut db,
                kind::BATCH_COMMITTED,
                finality::COMMITTED,
                json!({
                    "batch": batch,
                    "statement": committed.statement,
                    "old_root": h.oldRoot,
                    "new_root": h.newRoot,
                    "first_priority_op": h.firstPriorityOp,
                    "next_priority_op": h.nextPriorityOp,
                    "withdrawals_root": h.withdrawalsRoot,
                }),
                Some(tx),
                Some(block),
            )
            .await?;
        }
        db.commit().await?;
        metrics::gauge!("bridge_last_committed_batch").set(batch as f64);
        tracing::info!(batch, %tx, block, "batch committed on L1 (past the confirmation depth)");
        Ok(())
    }

    /// A finalization past the depth: the batch is `finalized`, its payouts claimable, once.
    async fn on_finalize_deep(&self, batch: u64, tx: B256, block: u64) -> Result<(), SubmitError> {
        let r = sqlx::query(
            "SELECT statement, withdrawals_root, payouts FROM l1_batches WHERE batch_number = $1",
        )
        .bind(batch as i64)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| SubmitError::Batch(batch, "finalized but not in l1_batches".into()))?;
        let payouts: serde_json::Value = r.get(2);
        let mut db = self.pool.begin().await?;
        sqlx::query(
            "UPDATE l1_batches SET finalize_tx = $2, finalize_block = $3 WHERE batch_number = $1",
        )
        .bind(batch as i64)
        .bind(tx.to_vec())
        .bind(block as i64)
        .execute(&mut *db)
        .await?;
        let n = sqlx::query(
            "UPDATE batches SET status = 'finalized' WHERE number = $1 AND status = 'committed'",
        )
        .bind(batch as i64)
        .execute(&mut *db)
        .await?
        .rows_affected();
        if n == 1 {
            feed::append(
                &mut db,
                kind::BATCH_FINALIZED,
                finality::FINALIZED,
                json!({
                    "batch": batch,
                    "statement": b256(r.get(0)),
                    "withdrawals_root": b256(r.get(1)),
                    "confirmations": self.cfg.confirmations,
                }),
                Some(tx),
                Some(block),
            )
            .await?;
            for (i, p) in payouts.as_array().into_iter().flatten().enumerate() {
                let mut payload = p.clone();
                payload["batch"] = json!(batch);
                payload["index"] = json!(i);
                feed::append(
                    &mut db,
                    kind::WITHDRAWAL_CLAIMABLE,
                    finality::FINALIZED,
                    payload,
                    Some(tx),
                    Some(block),
                )
                .await?;
            }
        }
        db.commit().await?;
        metrics::gauge!("bridge_last_finalized_batch").set(batch as f64);
        tracing::info!(batch, %tx, block, "batch finalized (past the confirmation depth)");
        Ok(())
    }

    /// Follows the mined commit and finalize transactions whose batch has not reached the
    /// matching status yet, lowest nonce first, until they are past the depth. Returns the
    /// first thing that changed.
    ///
    /// The receipt is asked for again at every step: the node only serves receipts of
    /// canonical transactions, so no receipt means the transaction was reorged out (it goes
    /// back to `signed` and is broadcast again, the same bytes and nonce), and a receipt in
    /// another block means it was mined again there (the depth counts from the new block).
    async fn follow(&self, head: u64) -> Result<Option<Step>, SubmitError> {
        let rows = sqlx::query(
            "SELECT s.id, s.batch_number, s.kind, s.l1_tx_hash, s.l1_block, b.status \
             FROM l1_submissions s JOIN batches b ON b.number = s.batch_number \
             WHERE s.status = 'mined' AND ((s.kind = 'commit' AND b.status = 'proven') \
             OR (s.kind = 'finalize' AND b.status IN ('proven', 'committed'))) \
             ORDER BY s.nonce, s.id",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let id: i64 = r.get(0);
            let batch = r.get::<i64, _>(1) as u64;
            let kind: String = r.get(2);
            let tx = b256(r.get(3));
            let stored_block = r.get::<Option<i64>, _>(4).map(|b| b as u64);
            let batch_status: String = r.get(5);
            let Some(receipt) = self.rpc.receipt(tx).await? else {
                let mut db = self.pool.begin().await?;
                let n = sqlx::query(
                    "UPDATE l1_submissions SET status = 'signed', l1_block = NULL, \
                     error = 'reorged out before the confirmation depth', updated_at = now() \
                     WHERE id = $1 AND status = 'mined'",
                )
                .bind(id)
                .execute(&mut *db)
                .await?
                .rows_affected();
                let column = static_kind(&kind);
                sqlx::query(&format!(
                    "UPDATE l1_batches SET {column}_tx = NULL, {column}_block = NULL \
                     WHERE batch_number = $1 AND {column}_tx = $2"
                ))
                .bind(batch as i64)
                .bind(tx.to_vec())
                .execute(&mut *db)
                .await?;
                db.commit().await?;
                if n == 1 {
                    metrics::counter!("bridge_l1_txs_reorged_total", "kind" => static_kind(&kind))
                        .increment(1);
                    tracing::warn!(
                        batch,
                        kind = %kind,
                        %tx,
                        l1_block = ?stored_block,
                        "L1 transaction reorged out before the confirmation depth; sending it again"
                    );
                }
                return Ok(Some(Step::Reorged { batch, kind, tx }));
            };
            let block = receipt.block_number.to::<u64>();
            if receipt.status != U256::from(1) {
                // Mined again after a reorg, on a chain where it now reverts.
                sqlx::query(
                    "UPDATE l1_submissions SET status = 'failed', l1_block = $2, \
                     error = 'reverted after a reorg', updated_at = now() WHERE id = $1",
                )
                .bind(id)
                .bind(block as i64)
                .execute(&self.pool)
                .await?;
                tracing::error!(batch, kind = %kind, %tx, block, "L1 transaction reverted after a reorg");
                return Ok(Some(Step::Mined { batch, kind, tx }));
            }
            if stored_block != Some(block) {
                sqlx::query(
                    "UPDATE l1_submissions SET l1_block = $2, updated_at = now() WHERE id = $1",
                )
                .bind(id)
                .bind(block as i64)
                .execute(&self.pool)
                .await?;
                tracing::info!(batch, kind = %kind, %tx, from = ?stored_block, to = block, "L1 transaction moved to another block; tracking it there");
            }
            if !past_depth(head, block, self.cfg.confirmations) {
                continue;
            }
            if kind == "commit" {
                self.on_commit_deep(batch, tx, &receipt).await?;
                return Ok(Some(Step::Committed { batch }));
            }
            // A finalization counts once its batch's commit is past the depth too (the commit
            // is mined first, so it gets there first).
            if batch_status == "committed" {
                self.on_finalize_deep(batch, tx, block).await?;
                return Ok(Some(Step::Finalized { batch }));
            }
        }
        Ok(None)
    }

    /// Resolves the in-flight submission, if any.
    async fn resolve(&self, p: Pending) -> Result<Step, SubmitError> {
        // The nonce first, then the receipts: see `decide_pending` (the other order loses a
        // transaction mined between the two reads).
        let latest_nonce = self.rpc.nonce(self.signer.address(), "latest").await?;
        // Any row with this nonce may be the one that got mined.
        let rows = sqlx::query(
            "SELECT id, l1_tx_hash FROM l1_submissions WHERE nonce = $1 AND status IN ('signed','sent','replaced') ORDER BY id",
        )
        .bind(p.nonce as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut attempts = Vec::with_capacity(rows.len());
        for r in &rows {
            let hash = b256(r.get(1));
            attempts.push((r.get::<i64, _>(0), hash, self.rpc.receipt(hash).await?));
        }
        let has_receipt: Vec<bool> = attempts.iter().map(|a| a.2.is_some()).collect();
        let action = decide_pending(
            latest_nonce,
            p.nonce,
            &has_receipt,
            p.status != "signed",
            p.age >= self.cfg.resend_after,
        );
        let kind = static_kind(&p.kind);
        match action {
            PendingAction::Mined(i) => {
                let (id, hash, receipt) = &attempts[i];
                let Some(receipt) = receipt else {
                    return Err(SubmitError::Batch(p.batch, "receipt vanished".into()));
                };
                let mined = Pending {
                    id: *id,
                    tx: *hash,
                    ..p
                };
                self.on_mined(&mined, receipt).await?;
                Ok(Step::Mined {
                    batch: mined.batch,
                    kind: mined.kind,
                    tx: *hash,
                })
            }
            PendingAction::NonceUsedElsewhere => {
                // Another process with this key used the nonce: give the row up; the
                // contract's state decides what happens next.
                sqlx::query("UPDATE l1_submissions SET status = 'replaced', error = 'nonce used elsewhere', updated_at = now() WHERE id = $1")
                    .bind(p.id)
                    .execute(&self.pool)
                    .await?;
                tracing::warn!(
                    batch = p.batch,
                    kind,
                    nonce = p.nonce,
                    latest_nonce,
                    "L1 nonce used by a transaction we did not send"
                );
                Ok(Step::Waiting)
            }
            PendingAction::Broadcast => {
                // Recorded but not (or no longer, after a reorg) known to the node: broadcast
                // the very same bytes.
                self.broadcast(p.id, &p.raw).await?;
                Ok(Step::Resent {
                    batch: p.batch,
                    kind,
                    nonce: p.nonce,
                    tx: p.tx,
                })
            }
            PendingAction::Replace => {
                let bumped =
                    p.gas_price + p.gas_price * u128::from(self.cfg.gas_bump_percent) / 100 + 1;
                let price = bumped.max(self.rpc.gas_price().await?);
                let data = Bytes::from(decode_field(&p.raw, 5)?);
                let gas_limit = U256::from_be_slice(&decode_field(&p.raw, 2)?).to::<u64>();
                let attempts: i32 = sqlx::query(
                    "UPDATE l1_submissions SET status = 'replaced', updated_at = now() WHERE id = $1 RETURNING attempts",
                )
                .bind(p.id)
                .fetch_one(&self.pool)
                .await?
                .get(0);
                let tx = self
                    .submit(Outgoing {
                        batch: p.batch,
                        kind,
                        data,
                        nonce: p.nonce,
                        gas_price: price,
                        attempts: attempts + 1,
                        gas_limit: Some(gas_limit),
                    })
                    .await?;
                tracing::warn!(
                    batch = p.batch,
                    kind,
                    nonce = p.nonce,
                    gas_price = price,
                    "replaced a stuck L1 transaction"
                );
                Ok(Step::Resent {
                    batch: p.batch,
                    kind,
                    nonce: p.nonce,
                    tx,
                })
            }
            PendingAction::Rebroadcast => {
                // Still in the mempool: re-broadcast (harmless) in case the node forgot it.
                let _ = self.rpc.send_raw(&p.raw).await;
                Ok(Step::Waiting)
            }
        }
    }

    async fn next_nonce(&self) -> Result<u64, SubmitError> {
        let chain = self.rpc.nonce(self.signer.address(), "pending").await?;
        let recorded: Option<i64> = sqlx::query(
            "SELECT max(nonce) FROM l1_submissions WHERE status IN ('signed', 'sent', 'mined')",
        )
        .fetch_one(&self.pool)
        .await?
        .get(0);
        Ok(chain.max(recorded.map_or(0, |n| n as u64 + 1)))
    }

    async fn failed_attempts(&self, batch: u64, kind: &str) -> Result<i64, SubmitError> {
        Ok(sqlx::query(
            "SELECT count(*) FROM l1_submissions WHERE batch_number = $1 AND kind = $2 AND status = 'failed'",
        )
        .bind(batch as i64)
        .bind(kind)
        .fetch_one(&self.pool)
        .await?
        .get(0))
    }

    /// One step of the submitter's state machine. Call repeatedly.
    pub async fn step(&self) -> Result<Step, SubmitError> {
        // 1. Follow mined transactions to the depth, or notice they were reorged out. This
        // comes before the in-flight one: when a reorg takes out a lower nonce, the in-flight
        // transaction cannot be mined until the lower one is sent again.
        let head = self.rpc.block_number().await?;
        if let Some(step) = self.follow(head).await? {
            return Ok(step);
        }
        if let Some(p) = self.pending().await? {
            return self.resolve(p).await;
        }
        let lc = self.last_committed().await?;
        let lf = self.last_finalized().await?;

        // 2. Finalize the next committed batch.
        if lf < lc && self.failed_attempts(lf + 1, "finalize").await? < 5 {
            let batch = lf + 1;
            let r =
                sqlx::query("SELECT header, pubdata_hash FROM l1_batches WHERE batch_number = $1")
                    .bind(batch as i64)
                    .fetch_optional(&self.pool)
                    .await?;
            let Some(r) = r else {
                return Err(SubmitError::Batch(
                    batch,
                    "committed on L1 but unknown to this database".into(),
                ));
            };
            let header = BatchHeader::abi_decode(&r.get::<Vec<u8>, _>(0))?;
            let pubdata_hash = b256(r.get(1));
            let statement = keccak256((header.clone(), pubdata_hash).abi_encode_params());
            let proof = self
                .signer
                .attest(self.cfg.chain_id, self.cfg.rollup, statement)?;
            let call = Rollup::finalizeBatchCall {
                h: header,
                pubdataHash: pubdata_hash,
                proof,
            };
            let nonce = self.next_nonce().await?;
            let price = self.rpc.gas_price().await?;
            let tx = self
                .submit(Outgoing {
                    batch,
                    kind: "finalize",
                    data: call.abi_encode().into(),
                    nonce,
                    gas_price: price,
                    attempts: 1,
                    gas_limit: None,
                })
                .await?;
            return Ok(Step::Sent {
                batch,
                kind: "finalize",
                nonce,
                tx,
            });
        }

        // 3. Commit the next proven batch.
        let batch = lc + 1;
        let status: Option<String> = sqlx::query("SELECT status FROM batches WHERE number = $1")
            .bind(batch as i64)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0));
        if status.as_deref() != Some("proven") || self.failed_attempts(batch, "commit").await? >= 5
        {
            return Ok(Step::Idle);
        }
        let (header, pubdata, proof, payouts) = self.build_header(batch).await?;
        self.verifier
            .verify(batch, &proof)
            .map_err(|e| SubmitError::Batch(batch, format!("proof does not verify: {e}")))?;
        let pubdata_hash = keccak256(&pubdata);
        let statement = batch_statement(&header, &pubdata);
        let payouts_json: Vec<serde_json::Value> = payouts
            .iter()
            .map(|p| json!({"from": p.from, "to": p.to, "amount": p.amount}))
            .collect();
        sqlx::query(
            "INSERT INTO l1_batches (batch_number, header, pubdata_hash, statement, withdrawals_root, payouts) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (batch_number) DO UPDATE SET \
             header = $2, pubdata_hash = $3, statement = $4, withdrawals_root = $5, payouts = $6",
        )
        .bind(batch as i64)
        .bind(header.abi_encode())
        .bind(pubdata_hash.to_vec())
        .bind(statement.to_vec())
        .bind(header.withdrawalsRoot.to_vec())
        .bind(serde_json::Value::Array(payouts_json))
        .execute(&self.pool)
        .await?;
        let call = Rollup::commitBatchCall {
            h: header,
            pubdata: pubdata.into(),
        };
        let nonce = self.next_nonce().await?;
        let price = self.rpc.gas_price().await?;
        let tx = self
            .submit(Outgoing {
                batch,
                kind: "commit",
                data: call.abi_encode().into(),
                nonce,
                gas_price: price,
                attempts: 1,
                gas_limit: None,
            })
            .await?;
        Ok(Step::Sent {
            batch,
            kind: "commit",
            nonce,
            tx,
        })
    }

    /// Steps until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let idle = match self.step().await {
                Ok(Step::Idle) | Ok(Step::Waiting) => true,
                Ok(s) => {
                    tracing::debug!(?s, "submitter");
                    false
                }
                // The error never carries the endpoint URL (see `Rpc::request`).
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        l1 = %self.rpc.endpoint_for_logs(),
                        "batch submitter step failed; retrying"
                    );
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            } else if *stop.borrow() {
                return;
            }
        }
    }
}

/// Field `index` of a signed legacy transaction (2 = gas limit, 5 = data), to rebuild a
/// replacement.
fn decode_field(raw: &[u8], index: usize) -> Result<Vec<u8>, SubmitError> {
    let bad = || SubmitError::Batch(0, "cannot decode a recorded transaction".into());
    // RLP list header.
    let (mut pos, _) = rlp_header(raw, 0).ok_or_else(bad)?;
    for field in 0..=index {
        let (start, len) = rlp_header(raw, pos).ok_or_else(bad)?;
        if field == index {
            return raw
                .get(start..start + len)
                .map(<[u8]>::to_vec)
                .ok_or_else(bad);
        }
        pos = start + len;
    }
    Err(bad())
}

/// (payload start, payload length) of the RLP item at `pos` (lists: the start of their items).
fn rlp_header(raw: &[u8], pos: usize) -> Option<(usize, usize)> {
    let b = *raw.get(pos)?;
    let long = |base: u8| -> Option<(usize, usize)> {
        let n = (b - base) as usize;
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *raw.get(pos + 1 + i)? as usize;
        }
        Some((pos + 1 + n, len))
    };
    match b {
        0x00..=0x7f => Some((pos, 1)),
        0x80..=0xb7 => Some((pos + 1, (b - 0x80) as usize)),
        0xb8..=0xbf => long(0xb7),
        0xc0..=0xf7 => Some((pos + 1, (b - 0xc0) as usize)),
        _ => long(0xf7),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::{L1Signer, ANVIL_DEV_KEY_0};

    #[test]
    fn replacement_reuses_the_recorded_input() {
        let s = L1Signer::from_hex(ANVIL_DEV_KEY_0).unwrap();
        for len in [0usize, 1, 55, 56, 300, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let tx = LegacyTx {
                chain_id: 31337,
                nonce: 7,
                gas_price: 1_000_000_000,
                gas: 100_000,
                to: Address::repeat_byte(9),
                value: U256::ZERO,
                data: data.clone().into(),
            };
            let (raw, _) = s.sign_legacy(&tx).unwrap();
            assert_eq!(decode_field(&raw, 5).unwrap(), data);
            assert_eq!(
                U256::from_be_slice(&decode_field(&raw, 2).unwrap()),
                U256::from(100_000)
            );
        }
    }

    /// The receipt-versus-nonce race: our transaction (nonce 7) is mined at some instant
    /// relative to the two reads of one resolve step. Reading the nonce first, then the
    /// receipts, never gives a mined transaction up, wherever the mining falls; the other order
    /// does when it falls between the two reads (the bug this replaced).
    #[test]
    fn a_transaction_mined_between_the_reads_is_never_given_up() {
        const NONCE: u64 = 7;
        // Instants: 0 = first read, 1 = second read; `mined_at` in {before 0, between, after 1}.
        let nonce_at = |t: u32, mined_at: u32| if mined_at <= t { NONCE + 1 } else { NONCE };
        let receipt_at = |t: u32, mined_at: u32| mined_at <= t;
        for mined_at in 0..3u32 {
            // Fixed order: nonce at instant 0, receipts at instant 1.
            let action = decide_pending(
                nonce_at(0, mined_at),
                NONCE,
                &[receipt_at(1, mined_at)],
                true,
                false,
            );
            assert_ne!(
                action,
                PendingAction::NonceUsedElsewhere,
                "mined at {mined_at}"
            );
            if mined_at <= 1 {
                assert_eq!(action, PendingAction::Mined(0), "mined at {mined_at}");
            } else {
                // Not mined yet when both reads happened: keep waiting, the next step sees it.
                assert_eq!(action, PendingAction::Rebroadcast);
            }
        }
        // The old order (receipts at instant 0, nonce at instant 1), mined in between: the
        // transaction was mined, yet it looks replaced.
        assert_eq!(
            decide_pending(nonce_at(1, 1), NONCE, &[receipt_at(0, 1)], true, false),
            PendingAction::NonceUsedElsewhere
        );
    }

    #[test]
    fn pending_decisions() {
        // A replacement (second attempt) was the one mined.
        assert_eq!(
            decide_pending(8, 7, &[false, true], true, true),
            PendingAction::Mined(1)
        );
        // The nonce passed and none of our attempts has a receipt: used elsewhere.
        assert_eq!(
            decide_pending(8, 7, &[false, false], true, false),
            PendingAction::NonceUsedElsewhere
        );
        // Recorded, never broadcast (or reorged out): the same bytes again.
        assert_eq!(
            decide_pending(7, 7, &[false], false, true),
            PendingAction::Broadcast
        );
        assert_eq!(
            decide_pending(7, 7, &[false], true, true),
            PendingAction::Replace
        );
        assert_eq!(
            decide_pending(7, 7, &[false], true, false),
            PendingAction::Rebroadcast
        );
        assert!(past_depth(12, 10, 2) && !past_depth(11, 10, 2) && !past_depth(9, 10, 0));
    }
}
