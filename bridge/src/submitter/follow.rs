//! Sending a transaction and following it: recorded before it is broadcast, resolved from its
//! receipt, applied once past the confirmation depth, re-broadcast or replaced when it
//! disappears (module docs of [`super`]).

use alloy_primitives::{Bytes, B256, U256};
use alloy_sol_types::SolEvent;
use rollup_storage::batches::transition;
use rollup_storage::l1::{self as l1db, NewSubmission, SubmissionRow};
use rollup_storage::{
    feed, BatchStatus, EventFinality, EventKind, SubmissionKind, SubmissionStatus,
};
use serde_json::json;

use crate::contracts::Rollup;
use crate::rpc::{Receipt, RpcError};
use crate::signer::LegacyTx;

use super::rlp::decode_field;
use super::{decide_pending, past_depth, Outgoing, PendingAction, Step, SubmitError, Submitter};

impl Submitter {
    /// Signs a call to the rollup, records it, then broadcasts it.
    pub(super) async fn submit(&self, o: Outgoing) -> Result<B256, SubmitError> {
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
        let id = self
            .store()
            .l1()
            .insert_submission(&NewSubmission {
                batch_number: batch,
                kind,
                nonce,
                l1_tx_hash: hash.0,
                gas_price,
                raw_tx: &raw,
                attempts,
            })
            .await?;
        self.broadcast(id, &raw).await?;
        metrics::counter!("bridge_l1_txs_sent_total", "kind" => kind.as_str()).increment(1);
        Ok(hash)
    }

    pub(super) async fn broadcast(&self, id: i64, raw: &[u8]) -> Result<(), SubmitError> {
        match self.rpc.send_raw(raw).await {
            Ok(_) => {}
            // Already in the mempool (a re-broadcast after a restart): fine.
            Err(RpcError::Node { message, .. })
                if message.contains("already") || message.contains("known") => {}
            Err(e) => return Err(e.into()),
        }
        self.store().l1().mark_sent(id).await?;
        Ok(())
    }

    /// Records a submission's first receipt. The batch status and the feed wait until the
    /// transaction is past the depth ([`Submitter::follow`]); until then a reorg can still take
    /// it away.
    pub(super) async fn on_mined(
        &self,
        p: &SubmissionRow,
        receipt: &Receipt,
    ) -> Result<(), SubmitError> {
        let block = receipt.block_number.to::<u64>();
        let tx = B256::from(p.l1_tx_hash);
        let mut db = self.pool.begin().await?;
        let ok = receipt.status == U256::from(1);
        // Every other row with this nonce lost the race (recorded in the same transaction).
        l1db::record_receipt(&mut db, p.id, p.nonce, ok, block, Some("reverted")).await?;
        if ok {
            l1db::set_l1_tx(&mut db, p.batch_number, p.kind, p.l1_tx_hash, block).await?;
            tracing::info!(
                batch = p.batch_number,
                kind = %p.kind,
                %tx,
                block,
                confirmations = self.cfg.confirmations,
                "L1 transaction mined; following it until past the depth"
            );
        } else {
            tracing::error!(batch = p.batch_number, kind = %p.kind, %tx, "L1 transaction reverted");
        }
        db.commit().await?;
        Ok(())
    }

    /// A commit past the depth: the batch is `committed`, with its feed event, once.
    pub(super) async fn on_commit_deep(
        &self,
        id: i64,
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
        if !l1db::lock_mined(&mut db, id).await? {
            // The watcher followed an L1 revert of this batch in the meantime (the row is
            // `superseded`): the commit no longer stands, nothing to record.
            return Ok(());
        }
        l1db::set_l1_tx(&mut db, batch, SubmissionKind::Commit, tx.0, block).await?;
        let moved = transition(
            &mut db,
            batch,
            BatchStatus::Proven,
            BatchStatus::Committed,
            None,
        )
        .await?;
        if let Some(recorded) = self.store().l1().l1_batch(batch).await? {
            if recorded.statement != committed.statement.0 {
                // Cannot happen unless L1 state moved under the checks of prepare_commit; the
                // attester will not sign L1's statement, so this batch cannot be finalized.
                tracing::error!(
                    batch,
                    l1 = %committed.statement,
                    expected = %B256::from(recorded.statement),
                    "L1 computed another statement than the one the proof was checked against"
                );
            }
        }
        if moved {
            let s = &committed.s;
            feed::append(
                &mut db,
                EventKind::BatchCommitted,
                EventFinality::Committed,
                &json!({
                    "batch": batch,
                    "statement": committed.statement,
                    "old_root": s.oldRoot,
                    "new_root": s.newRoot,
                    "diff_hash": s.diffHash,
                    "first_priority_op": s.firstPriorityOp,
                    "next_priority_op": s.nextPriorityOp,
                    "withdrawals_root": s.payoutRoot,
                    "timestamp": s.timestamp,
                }),
                Some(tx.0),
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
    pub(super) async fn on_finalize_deep(
        &self,
        batch: u64,
        tx: B256,
        block: u64,
    ) -> Result<(), SubmitError> {
        let l1_batch =
            self.store().l1().l1_batch(batch).await?.ok_or_else(|| {
                SubmitError::Batch(batch, "finalized but not in l1_batches".into())
            })?;
        let mut db = self.pool.begin().await?;
        l1db::set_l1_tx(&mut db, batch, SubmissionKind::Finalize, tx.0, block).await?;
        let moved = transition(
            &mut db,
            batch,
            BatchStatus::Committed,
            BatchStatus::Finalized,
            None,
        )
        .await?;
        if moved {
            feed::append(
                &mut db,
                EventKind::BatchFinalized,
                EventFinality::Finalized,
                &json!({
                    "batch": batch,
                    "statement": B256::from(l1_batch.statement),
                    "withdrawals_root": B256::from(l1_batch.withdrawals_root),
                    "confirmations": self.cfg.confirmations,
                }),
                Some(tx.0),
                Some(block),
            )
            .await?;
            for (i, p) in l1_batch.payouts.iter().enumerate() {
                feed::append(
                    &mut db,
                    EventKind::WithdrawalClaimable,
                    EventFinality::Finalized,
                    &json!({
                        "from": p.from,
                        "to": p.to,
                        "amount": p.amount,
                        "batch": batch,
                        "index": i,
                    }),
                    Some(tx.0),
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
    pub(super) async fn follow(&self, head: u64) -> Result<Option<Step>, SubmitError> {
        let store = self.store();
        for m in store.l1().mined_awaiting_depth().await? {
            let s = &m.submission;
            let (id, batch, kind) = (s.id, s.batch_number, s.kind);
            let tx = B256::from(s.l1_tx_hash);
            let stored_block = s.l1_block;
            let Some(receipt) = self.rpc.receipt(tx).await? else {
                let mut db = self.pool.begin().await?;
                let changed =
                    l1db::unmine(&mut db, id, "reorged out before the confirmation depth").await?;
                l1db::clear_l1_tx(&mut db, batch, kind, tx.0).await?;
                db.commit().await?;
                if changed {
                    metrics::counter!("bridge_l1_txs_reorged_total", "kind" => kind.as_str())
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
                store
                    .l1()
                    .record_receipt(id, s.nonce, false, block, Some("reverted after a reorg"))
                    .await?;
                tracing::error!(batch, kind = %kind, %tx, block, "L1 transaction reverted after a reorg");
                return Ok(Some(Step::Mined { batch, kind, tx }));
            }
            if stored_block != Some(block) {
                store.l1().move_to_block(id, block).await?;
                tracing::info!(batch, kind = %kind, %tx, from = ?stored_block, to = block, "L1 transaction moved to another block; tracking it there");
            }
            if !past_depth(head, block, self.cfg.confirmations) {
                continue;
            }
            match kind {
                SubmissionKind::Commit => {
                    self.on_commit_deep(id, batch, tx, &receipt).await?;
                    return Ok(Some(Step::Committed { batch }));
                }
                // A finalization counts once its batch's commit is past the depth too (the
                // commit is mined first, so it gets there first).
                SubmissionKind::Finalize if m.batch_status == BatchStatus::Committed => {
                    self.on_finalize_deep(batch, tx, block).await?;
                    return Ok(Some(Step::Finalized { batch }));
                }
                SubmissionKind::Finalize => {}
            }
        }
        Ok(None)
    }

    /// Resolves the in-flight submission `p`.
    pub(super) async fn resolve(&self, p: SubmissionRow) -> Result<Step, SubmitError> {
        let store = self.store();
        // The nonce first, then the receipts: see `decide_pending` (the other order loses a
        // transaction mined between the two reads).
        let latest_nonce = self.rpc.nonce(self.signer.address(), "latest").await?;
        // Any row with this nonce may be the one that got mined.
        let rows = store.l1().attempts_with_nonce(p.nonce).await?;
        let mut attempts = Vec::with_capacity(rows.len());
        for r in rows {
            let receipt = self.rpc.receipt(B256::from(r.l1_tx_hash)).await?;
            attempts.push((r, receipt));
        }
        let has_receipt: Vec<bool> = attempts.iter().map(|a| a.1.is_some()).collect();
        let action = decide_pending(
            latest_nonce,
            p.nonce,
            &has_receipt,
            p.status != SubmissionStatus::Signed,
            p.age >= self.cfg.resend_after,
        );
        let (batch, kind, tx) = (p.batch_number, p.kind, B256::from(p.l1_tx_hash));
        match action {
            PendingAction::Mined(i) => {
                let Some((mined, Some(receipt))) = attempts.get(i) else {
                    return Err(SubmitError::Batch(batch, "receipt vanished".into()));
                };
                self.on_mined(mined, receipt).await?;
                Ok(Step::Mined {
                    batch: mined.batch_number,
                    kind: mined.kind,
                    tx: B256::from(mined.l1_tx_hash),
                })
            }
            PendingAction::NonceUsedElsewhere => {
                // Another process with this key used the nonce: give the row up; the
                // contract's state decides what happens next.
                store
                    .l1()
                    .mark_replaced(p.id, Some("nonce used elsewhere"))
                    .await?;
                tracing::warn!(
                    batch,
                    kind = %kind,
                    nonce = p.nonce,
                    latest_nonce,
                    "L1 nonce used by a transaction we did not send"
                );
                Ok(Step::Waiting)
            }
            PendingAction::Broadcast => {
                // Recorded but not (or no longer, after a reorg) known to the node: broadcast
                // the very same bytes.
                self.broadcast(p.id, &p.raw_tx).await?;
                Ok(Step::Resent {
                    batch,
                    kind,
                    nonce: p.nonce,
                    tx,
                })
            }
            PendingAction::Replace => {
                let bumped =
                    p.gas_price + p.gas_price * u128::from(self.cfg.gas_bump_percent) / 100 + 1;
                let price = bumped.max(self.rpc.gas_price().await?);
                let data = Bytes::from(decode_field(&p.raw_tx, 5)?);
                let gas_limit = U256::from_be_slice(&decode_field(&p.raw_tx, 2)?).to::<u64>();
                let attempts =
                    store.l1().mark_replaced(p.id, None).await?.ok_or_else(|| {
                        SubmitError::Batch(batch, "submission row vanished".into())
                    })?;
                let tx = self
                    .submit(Outgoing {
                        batch,
                        kind,
                        data,
                        nonce: p.nonce,
                        gas_price: price,
                        attempts: attempts + 1,
                        gas_limit: Some(gas_limit),
                    })
                    .await?;
                tracing::warn!(
                    batch,
                    kind = %kind,
                    nonce = p.nonce,
                    gas_price = price,
                    "replaced a stuck L1 transaction"
                );
                Ok(Step::Resent {
                    batch,
                    kind,
                    nonce: p.nonce,
                    tx,
                })
            }
            PendingAction::Rebroadcast => {
                // Still in the mempool: re-broadcast (harmless) in case the node forgot it.
                let _ = self.rpc.send_raw(&p.raw_tx).await;
                Ok(Step::Waiting)
            }
        }
    }

    /// Sends a first attempt of `kind` for `batch` at the next nonce and the current gas price
    /// (gas estimated), recorded before it is broadcast (`submit`).
    pub(super) async fn send_new(
        &self,
        batch: u64,
        kind: SubmissionKind,
        data: Bytes,
    ) -> Result<Step, SubmitError> {
        let nonce = self.next_nonce().await?;
        let gas_price = self.rpc.gas_price().await?;
        let tx = self
            .submit(Outgoing {
                batch,
                kind,
                data,
                nonce,
                gas_price,
                attempts: 1,
                gas_limit: None,
            })
            .await?;
        Ok(Step::Sent {
            batch,
            kind,
            nonce,
            tx,
        })
    }

    pub(super) async fn next_nonce(&self) -> Result<u64, SubmitError> {
        let chain = self.rpc.nonce(self.signer.address(), "pending").await?;
        let recorded = self.store().l1().max_live_nonce().await?;
        Ok(chain.max(recorded.map_or(0, |n| n + 1)))
    }
}
