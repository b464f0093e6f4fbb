//! The L1 watcher (SPEC 16.2): reads the Rollup contract's priority-queue logs, records them as
//! `seen` with their block hash, marks them `reorged` when their block leaves the canonical
//! chain and `confirmed` once they are `confirmations` blocks deep. Only `confirmed` ops are
//! ever credited on L2 (by the node's ingest, `sequencer/src/l1_ingest.rs`).
//!
//! Every poll rescans the blocks that are not yet past the confirmation depth, so an op that
//! vanished in a reorg is noticed (its block hash changed, or its log is gone) before it could
//! be confirmed; blocks past the depth are never looked at again. A reorg deeper than the
//! confirmation depth is outside the model (choose the depth accordingly).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use alloy_primitives::{Address, B256};
use alloy_sol_types::SolEvent;
use rollup_storage::l1::{self as l1db, L1PriorityOp, PriorityOpRow};
use rollup_storage::{feed, EventFinality, EventKind, PriorityOpStatus, StorageError};
use serde_json::json;
use sqlx::postgres::PgPool;
use state::tx::L1Address;

use crate::contracts::Rollup;
use crate::rpc::{Log, Rpc, RpcError};

/// The two priority operations (`l1_priority_ops.kind`).
pub use rollup_storage::PriorityOpKind as OpKind;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("bad log: {0}")]
    BadLog(String),
}

/// A priority op as read from an L1 log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedOp {
    pub serial: u64,
    pub kind: OpKind,
    pub depositor: Address,
    pub recipient: u32,
    pub amount: u64,
    pub priority_hash: B256,
    pub payload: Option<Vec<u8>>,
    /// `Rollup.priorityDeadline` of the op (unix seconds).
    pub deadline: u64,
    pub block: u64,
    pub block_hash: B256,
    pub tx_hash: B256,
    pub log_index: u64,
}

/// A stored op still at status `seen` (above the confirmation depth when it was last looked at).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOp {
    pub id: i64,
    pub block: u64,
    pub block_hash: B256,
    pub log_index: u64,
}

/// What one poll decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Stored ops whose block is no longer canonical (or whose log is gone).
    pub reorged: Vec<i64>,
    /// Stored ops now deep enough.
    pub confirm: Vec<i64>,
    /// New ops to record; `true` when already deep enough to be confirmed at once.
    pub insert: Vec<(ObservedOp, bool)>,
}

/// The depth rule: an op in block `block` is confirmed when `head - block >= confirmations`.
pub fn is_deep_enough(head: u64, block: u64, confirmations: u64) -> bool {
    head >= block && head - block >= confirmations
}

/// The pure decision of one poll.
///
/// `pending`: stored `seen` ops. `observed`: the logs of blocks `scanned_from..=head`.
/// `canonical`: the canonical hash of every block number that appears in either (absent when
/// the block is beyond the head).
pub fn decide(
    pending: &[PendingOp],
    observed: &[ObservedOp],
    scanned_from: u64,
    head: u64,
    canonical: &BTreeMap<u64, B256>,
    confirmations: u64,
) -> Decision {
    let is_canonical = |block: u64, hash: &B256| canonical.get(&block) == Some(hash);
    let live: HashSet<(B256, u64)> = observed
        .iter()
        .filter(|o| is_canonical(o.block, &o.block_hash))
        .map(|o| (o.block_hash, o.log_index))
        .collect();
    let mut d = Decision::default();
    let mut stored: HashSet<(B256, u64)> = HashSet::new();
    for p in pending {
        stored.insert((p.block_hash, p.log_index));
        let gone_from_scan = p.block >= scanned_from
            && p.block <= head
            && !live.contains(&(p.block_hash, p.log_index));
        if !is_canonical(p.block, &p.block_hash) || gone_from_scan {
            d.reorged.push(p.id);
        } else if is_deep_enough(head, p.block, confirmations) {
            d.confirm.push(p.id);
        }
    }
    for o in observed {
        if !is_canonical(o.block, &o.block_hash) || stored.contains(&(o.block_hash, o.log_index)) {
            continue;
        }
        d.insert
            .push((o.clone(), is_deep_enough(head, o.block, confirmations)));
    }
    d.insert.sort_by_key(|(o, _)| o.serial);
    d
}

fn position(log: &Log) -> Result<(u64, B256, B256, u64), WatchError> {
    let bad = || WatchError::BadLog("log without block/tx position".into());
    Ok((
        log.block_number.ok_or_else(bad)?.to::<u64>(),
        log.block_hash.ok_or_else(bad)?,
        log.transaction_hash.ok_or_else(bad)?,
        log.log_index.ok_or_else(bad)?.to::<u64>(),
    ))
}

/// Logs the watcher reports once they are past the confirmation depth, as feed events of their
/// own: withdrawal claims, the control changes and the exodus an exchange watches (SPEC 15.1,
/// 15.9, 16.5).
const FINAL_ONLY: &[B256] = &[
    Rollup::WithdrawalClaimed::SIGNATURE_HASH,
    Rollup::ChangeAnnounced::SIGNATURE_HASH,
    Rollup::ChangeCancelled::SIGNATURE_HASH,
    Rollup::VerifierChanged::SIGNATURE_HASH,
    Rollup::OperatorChanged::SIGNATURE_HASH,
    Rollup::Paused::SIGNATURE_HASH,
    Rollup::Unpaused::SIGNATURE_HASH,
    Rollup::ExodusActivated::SIGNATURE_HASH,
    Rollup::ExitAuthorised::SIGNATURE_HASH,
    Rollup::OwnerBound::SIGNATURE_HASH,
    Rollup::ExitPerformed::SIGNATURE_HASH,
    Rollup::DepositRefunded::SIGNATURE_HASH,
    Rollup::BatchesReverted::SIGNATURE_HASH,
];

/// The name of a `Rollup.ChangeKind`.
fn change_kind(kind: u8) -> &'static str {
    match kind {
        0 => "verifier",
        1 => "operator",
        _ => "unknown",
    }
}

/// The feed event of a [`FINAL_ONLY`] log; `None` for the deployment's own role settings (a
/// `VerifierChanged` or `OperatorChanged` from the zero address is the constructor's, not a
/// change).
fn final_only_event(log: &Log) -> Result<Option<(EventKind, serde_json::Value)>, WatchError> {
    let bad = |e: alloy_sol_types::Error| WatchError::BadLog(e.to_string());
    let topics = || log.topics.iter().copied();
    let topic0 = log.topics.first().copied().unwrap_or_default();
    Ok(Some(
        if topic0 == Rollup::WithdrawalClaimed::SIGNATURE_HASH {
            let e = Rollup::WithdrawalClaimed::decode_raw_log(topics(), &log.data).map_err(bad)?;
            (
                EventKind::WithdrawalClaimed,
                json!({
                    "batch": e.batchNumber,
                    "index": e.index,
                    "from": e.from,
                    "to": e.to,
                    "amount": e.amount,
                    "leaf": e.leaf,
                }),
            )
        } else if topic0 == Rollup::ChangeAnnounced::SIGNATURE_HASH {
            let e = Rollup::ChangeAnnounced::decode_raw_log(topics(), &log.data).map_err(bad)?;
            (
                EventKind::ChangeAnnounced,
                json!({ "change": change_kind(e.kind), "next": e.next, "eta": e.eta }),
            )
        } else if topic0 == Rollup::ChangeCancelled::SIGNATURE_HASH {
            let e = Rollup::ChangeCancelled::decode_raw_log(topics(), &log.data).map_err(bad)?;
            (
                EventKind::ChangeCancelled,
                json!({ "change": change_kind(e.kind), "next": e.next }),
            )
        } else if topic0 == Rollup::VerifierChanged::SIGNATURE_HASH {
            let e = Rollup::VerifierChanged::decode_raw_log(topics(), &log.data).map_err(bad)?;
            if e.previous == Address::ZERO {
                return Ok(None);
            }
            (
                EventKind::ChangeApplied,
                json!({ "change": "verifier", "previous": e.previous, "next": e.current }),
            )
        } else if topic0 == Rollup::OperatorChanged::SIGNATURE_HASH {
            let e = Rollup::OperatorChanged::decode_raw_log(topics(), &log.data).map_err(bad)?;
            if e.previous == Address::ZERO {
                return Ok(None);
            }
            (
                EventKind::ChangeApplied,
                json!({ "change": "operator", "previous": e.previous, "next": e.current }),
            )
        } else if topic0 == Rollup::Paused::SIGNATURE_HASH {
            let e = Rollup::Paused::decode_raw_log(topics(), &log.data).map_err(bad)?;
            (EventKind::Paused, json!({ "by": e.by, "until": e.until }))
        } else if topic0 == Rollup::Unpaused::SIGNATURE_HASH {
            let e = Rollup::Unpaused::decode_raw_log(topics(), &log.data).map_err(bad)?;
            (EventKind::Unpaused, json!({ "by": e.by }))
        } else if topic0 == Rollup::ExodusActivated::SIGNATURE_HASH {
            let e = Rollup::ExodusActivated::decode_raw_log(topics(), &log.data).map_err(bad)?;
            (
                EventKind::ExodusActivated,
                json!({
                    "last_finalized_batch": e.lastFinalizedBatch,
                    "finalized_root": e.finalizedRoot,
                    "next_priority_op_finalized": e.nextPriorityOpFinalized,
                }),
            )
        } else if topic0 == Rollup::ExitAuthorised::SIGNATURE_HASH {
            let e = Rollup::ExitAuthorised::decode_raw_log(topics(), &log.data).map_err(bad)?;
            (
                EventKind::ExitAuthorised,
                json!({ "key_id": e.keyId, "to": e.to }),
            )
        } else if topic0 == Rollup::OwnerBound::SIGNATURE_HASH {
            let e = Rollup::OwnerBound::decode_raw_log(topics(), &log.data).map_err(bad)?;
            (
                EventKind::OwnerBound,
                json!({ "key_id": e.keyId, "owner": e.owner }),
            )
        } else if topic0 == Rollup::ExitPerformed::SIGNATURE_HASH {
            let e = Rollup::ExitPerformed::decode_raw_log(topics(), &log.data).map_err(bad)?;
            (
                EventKind::ExitPerformed,
                json!({ "account": e.account, "key_id": e.keyId, "to": e.to, "amount": e.amount }),
            )
        } else if topic0 == Rollup::DepositRefunded::SIGNATURE_HASH {
            let e = Rollup::DepositRefunded::decode_raw_log(topics(), &log.data).map_err(bad)?;
            (
                EventKind::DepositRefunded,
                json!({ "serial": e.serial, "depositor": e.depositor, "amount": e.amount }),
            )
        } else if topic0 == Rollup::BatchesReverted::SIGNATURE_HASH {
            let e = Rollup::BatchesReverted::decode_raw_log(topics(), &log.data).map_err(bad)?;
            (
                EventKind::BatchesReverted,
                json!({
                    "first_reverted": e.firstReverted,
                    "last_reverted": e.lastReverted,
                    "committed_root": e.committedRoot,
                }),
            )
        } else {
            return Err(WatchError::BadLog(format!("unexpected log topic {topic0}")));
        },
    ))
}

/// Decodes a `Deposit` or `ForcedWithdrawalRequested` log.
pub fn decode_op(log: &Log) -> Result<Option<ObservedOp>, WatchError> {
    let (block, block_hash, tx_hash, log_index) = position(log)?;
    let topic0 = log.topics.first().copied().unwrap_or_default();
    if topic0 == Rollup::Deposit::SIGNATURE_HASH {
        let e = Rollup::Deposit::decode_raw_log(log.topics.iter().copied(), &log.data)
            .map_err(|e| WatchError::BadLog(e.to_string()))?;
        return Ok(Some(ObservedOp {
            serial: e.serial,
            kind: OpKind::Deposit,
            depositor: e.depositor,
            recipient: e.recipient,
            amount: e.amount,
            priority_hash: e.priorityHash,
            payload: None,
            deadline: e.deadline,
            block,
            block_hash,
            tx_hash,
            log_index,
        }));
    }
    if topic0 == Rollup::ForcedWithdrawalRequested::SIGNATURE_HASH {
        let e = Rollup::ForcedWithdrawalRequested::decode_raw_log(
            log.topics.iter().copied(),
            &log.data,
        )
        .map_err(|e| WatchError::BadLog(e.to_string()))?;
        return Ok(Some(ObservedOp {
            serial: e.serial,
            kind: OpKind::ForcedWithdrawal,
            depositor: e.requester,
            recipient: e.account,
            amount: e.amount,
            priority_hash: e.priorityHash,
            // Stored as the L2 transaction it becomes, so the ingest needs nothing else.
            payload: Some(crate::hashes::forced_withdraw_l2_tx(
                e.serial,
                e.requestedAt,
                &e.withdrawTx,
            )),
            deadline: e.deadline,
            block,
            block_hash,
            tx_hash,
            log_index,
        }));
    }
    Ok(None)
}

#[derive(Clone, Debug)]
pub struct WatcherConfig {
    pub rollup: Address,
    /// Blocks an op must be buried under before it is credited (`head - block >= confirmations`).
    pub confirmations: u64,
    /// First L1 block to scan (the Rollup's deployment block).
    pub start_block: u64,
    /// Most blocks scanned per poll.
    pub max_range: u64,
    pub poll_interval: Duration,
}

/// What one poll did (for tests and logs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollReport {
    pub head: u64,
    pub seen: usize,
    pub confirmed: usize,
    pub reorged: usize,
    pub claims: usize,
    /// Control changes reported (announced, cancelled or applied changes, pauses).
    pub control: usize,
    /// The provider is behind what this poll needs (a `null` block at or below its head, or a
    /// head below an op already seen): nothing was decided, the next poll retries.
    pub l1_behind: bool,
}

pub struct Watcher {
    pub rpc: Rpc,
    pub pool: PgPool,
    pub cfg: WatcherConfig,
}

fn op_json(o: &ObservedOp) -> serde_json::Value {
    json!({
        "serial": o.serial,
        "op": o.kind,
        "depositor": o.depositor,
        "recipient": o.recipient,
        "amount": o.amount,
        "l1_block": o.block,
        "l1_block_hash": o.block_hash,
    })
}

impl ObservedOp {
    /// The op as `l1_priority_ops` records it (storage types instead of alloy's).
    fn to_new(&self) -> L1PriorityOp {
        L1PriorityOp {
            serial: self.serial,
            kind: self.kind,
            depositor: L1Address(self.depositor.into_array()),
            recipient: u64::from(self.recipient),
            amount: self.amount,
            priority_hash: self.priority_hash.0,
            payload: self.payload.clone(),
            l1_block: self.block,
            l1_block_hash: self.block_hash.0,
            l1_tx_hash: self.tx_hash.0,
            log_index: self.log_index,
            deadline: Some(self.deadline),
        }
    }
}

/// The feed payload of a stored op (`extra`: fields of the event besides the op's own).
fn row_json(r: &PriorityOpRow, extra: Option<(&str, serde_json::Value)>) -> serde_json::Value {
    let mut v = json!({
        "serial": r.op.serial,
        "op": r.op.kind,
        "depositor": Address::from(r.op.depositor.0),
        "recipient": r.op.recipient,
        "amount": r.op.amount,
        "l1_block": r.op.l1_block,
        "l1_block_hash": B256::from(r.op.l1_block_hash),
    });
    if let (Some((k, x)), Some(o)) = (extra, v.as_object_mut()) {
        o.insert(k.to_string(), x);
    }
    v
}

/// Upper bound on the `seen` ops read per poll (far above any real backlog: a poll confirms
/// what is deep enough, so `seen` holds only the last `confirmations` blocks' ops).
const MAX_PENDING: i64 = 1_000_000;

impl Watcher {
    /// Where the last poll left the scan: every block <= this is final for the watcher.
    async fn final_block(&self, db: &mut sqlx::PgConnection) -> Result<i64, WatchError> {
        Ok(l1db::final_block(db)
            .await?
            .unwrap_or(self.cfg.start_block as i64 - 1))
    }

    /// One poll: read the cursor and the pending ops, ask L1, decide, then record the decision
    /// and its events in one transaction.
    ///
    /// No database transaction, lock or pooled connection is held while L1 is asked: a slow or
    /// hung provider (each call is bounded by the client's request time-out) must not block
    /// the node's other database users, nor a second watcher. The write phase re-reads the
    /// cursor under the watcher lock and drops the decision if another watcher moved it in the
    /// meantime; every write is conditional, so replaying a decision changes nothing.
    pub async fn poll(&self) -> Result<PollReport, WatchError> {
        let (final_block, pending) = {
            let mut conn = self.pool.acquire().await?;
            let final_block = self.final_block(&mut conn).await?;
            let pending: Vec<PendingOp> =
                l1db::ops_with_status(&mut conn, PriorityOpStatus::Seen, MAX_PENDING)
                    .await?
                    .iter()
                    .map(|r| PendingOp {
                        id: r.id,
                        block: r.op.l1_block,
                        block_hash: B256::from(r.op.l1_block_hash),
                        log_index: r.op.log_index,
                    })
                    .collect();
            (final_block, pending)
        };

        let head = self.rpc.block_number().await?;
        let mut report = PollReport {
            head,
            ..Default::default()
        };
        // A head below an op we already saw: the provider answers from a node that is behind
        // (load-balanced endpoints do), or the chain got shorter. Deciding now would call that
        // op reorged on the word of a lagging node; wait until the head passes it again.
        if let Some(p) = pending.iter().find(|p| p.block > head) {
            tracing::debug!(
                head,
                op_block = p.block,
                "L1 head behind a pending op: not yet"
            );
            report.l1_behind = true;
            return Ok(report);
        }
        let from = (final_block + 1) as u64;
        if from > head {
            return Ok(report);
        }
        let to = head.min(from + self.cfg.max_range.max(1) - 1);
        let mut topics = vec![
            Rollup::Deposit::SIGNATURE_HASH,
            Rollup::ForcedWithdrawalRequested::SIGNATURE_HASH,
        ];
        topics.extend_from_slice(FINAL_ONLY);
        let logs = self.rpc.logs(self.cfg.rollup, &topics, from, to).await?;
        let mut observed = Vec::new();
        // Logs reported once past the depth: withdrawal claims and control changes.
        let mut claims = Vec::new();
        for log in &logs {
            if log.topics.first().is_some_and(|t| FINAL_ONLY.contains(t)) {
                claims.push(log.clone());
            } else if let Some(op) = decode_op(log)? {
                observed.push(op);
            }
        }
        let mut blocks: Vec<u64> = pending
            .iter()
            .map(|p| p.block)
            .chain(observed.iter().map(|o| o.block))
            .chain(
                claims
                    .iter()
                    .filter_map(|l| l.block_number.map(|b| b.to::<u64>())),
            )
            .collect();
        blocks.push(to);
        blocks.sort_unstable();
        blocks.dedup();
        let mut canonical = BTreeMap::new();
        for b in blocks {
            match self.rpc.block(b).await? {
                Some(h) => {
                    canonical.insert(b, h.hash);
                }
                // Every block asked for is at or below the head this provider reported, so a
                // `null` means "not available yet" (a lagging node behind the balancer), not
                // "gone": taking it for a reorg would drop live deposits, and advancing the
                // cursor past it would skip them. Retry at the next poll.
                None => {
                    tracing::debug!(head, block = b, "L1 block not available yet");
                    report.l1_behind = true;
                    return Ok(report);
                }
            }
        }
        // The effective head of this scan is `to` (a capped range confirms relative to it).
        let d = decide(
            &pending,
            &observed,
            from,
            to,
            &canonical,
            self.cfg.confirmations,
        );

        let mut db = self.pool.begin().await?;
        l1db::lock_watcher(&mut db).await?;
        if self.final_block(&mut db).await? != final_block {
            // Another watcher applied a newer decision while we were asking L1: ours is stale.
            db.rollback().await?;
            tracing::debug!("L1 watcher: cursor moved by another watcher, decision dropped");
            return Ok(report);
        }

        for id in &d.reorged {
            let r = l1db::transition_op(
                &mut db,
                *id,
                PriorityOpStatus::Seen,
                PriorityOpStatus::Reorged,
                None,
            )
            .await?;
            // Gone from `seen` since we read it: someone already decided it.
            let Some(r) = r else { continue };
            feed::append(
                &mut db,
                EventKind::DepositReorged,
                EventFinality::L1Reorged,
                &row_json(&r, None),
                Some(r.op.l1_tx_hash),
                Some(r.op.l1_block),
            )
            .await?;
            tracing::warn!(
                serial = r.op.serial,
                "L1 priority op reorged away; it will not be credited"
            );
            report.reorged += 1;
        }
        let mut confirm_ids: Vec<i64> = d.confirm.clone();
        for (o, deep) in &d.insert {
            // A log is identified by (block hash, log index). When a block we saw leave the
            // chain comes back (the chain flips back to it, or a provider's getLogs missed the
            // log for one poll), its row is `reorged` and the log is live again: revive that row
            // as `seen` instead of inserting a second one, which the unique key refuses (and a
            // refused insert would roll the whole poll back, every poll, for good). Only
            // `reorged` rows are revived: a `reorged` row was never `confirmed`, so it was
            // never credited, and a revived one goes through the depth rule again; a row that
            // is live already (`seen`, `confirmed`, `credited`) is left alone, so nothing is
            // ever credited twice.
            let Some((id, fresh)) = l1db::insert_seen_op(&mut db, &o.to_new()).await? else {
                // Stored and live already (not in our `seen` snapshot): nothing to record.
                continue;
            };
            if !fresh {
                tracing::info!(
                    serial = o.serial,
                    l1_block = o.block,
                    "L1 priority op back on the canonical chain after a reorg"
                );
            }
            let k = match o.kind {
                OpKind::Deposit => EventKind::DepositSeen,
                OpKind::ForcedWithdrawal => EventKind::ForcedWithdrawalSeen,
            };
            feed::append(
                &mut db,
                k,
                EventFinality::L1Seen,
                &op_json(o),
                Some(o.tx_hash.0),
                Some(o.block),
            )
            .await?;
            report.seen += 1;
            // Already deep enough: confirmed below, with the stored ones, in serial order.
            if *deep {
                confirm_ids.push(id);
            }
        }
        let mut confirmed_rows = Vec::new();
        for id in confirm_ids {
            let r = l1db::transition_op(
                &mut db,
                id,
                PriorityOpStatus::Seen,
                PriorityOpStatus::Confirmed,
                None,
            )
            .await?;
            if let Some(r) = r {
                confirmed_rows.push(r);
            }
        }
        confirmed_rows.sort_by_key(|r| r.op.serial);
        for r in confirmed_rows {
            let payload = row_json(&r, Some(("confirmations", json!(self.cfg.confirmations))));
            feed::append(
                &mut db,
                EventKind::DepositConfirmed,
                EventFinality::L1Confirmed,
                &payload,
                Some(r.op.l1_tx_hash),
                Some(r.op.l1_block),
            )
            .await?;
            report.confirmed += 1;
        }

        // Blocks now past the depth are final for us: report their withdrawal claims once.
        let new_final = if to >= self.cfg.confirmations {
            (to - self.cfg.confirmations) as i64
        } else {
            -1
        }
        .max(final_block);
        for log in &claims {
            let (block, hash, tx, _) = position(log)?;
            if (block as i64) > new_final || canonical.get(&block) != Some(&hash) {
                continue;
            }
            let Some((kind, mut payload)) = final_only_event(log)? else {
                continue;
            };
            if kind == EventKind::BatchesReverted {
                // The node follows the revert in this very transaction (its batches go back in
                // line to be committed again), and the event says what happened to them.
                let e =
                    Rollup::BatchesReverted::decode_raw_log(log.topics.iter().copied(), &log.data)
                        .map_err(|e| WatchError::BadLog(e.to_string()))?;
                let requeued =
                    l1db::revert_batches(&mut db, e.firstReverted, e.lastReverted).await?;
                tracing::warn!(
                    first = e.firstReverted,
                    last = e.lastReverted,
                    batches = requeued.len(),
                    txs = requeued.iter().map(|b| u64::from(b.tx_count)).sum::<u64>(),
                    "batches reverted on L1; they will be committed again with the same transactions"
                );
                metrics::counter!("bridge_batches_reverted_total")
                    .increment(e.lastReverted.saturating_sub(e.firstReverted) + 1);
                if let Some(o) = payload.as_object_mut() {
                    o.insert("requeued".into(), json!(requeued));
                }
            }
            feed::append(
                &mut db,
                kind,
                EventFinality::L1Confirmed,
                &payload,
                Some(tx.0),
                Some(block),
            )
            .await?;
            if kind == EventKind::WithdrawalClaimed {
                report.claims += 1;
            } else {
                report.control += 1;
            }
        }
        // Claims in blocks above the depth are looked at again next poll, so the range only
        // advances to the new final block.
        let head_hash = canonical.get(&to).copied().unwrap_or_default();
        l1db::save_sync(&mut db, new_final, to, head_hash.0).await?;
        db.commit().await?;
        metrics::gauge!("bridge_l1_head").set(head as f64);
        Ok(report)
    }

    /// Polls until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.poll().await {
                Ok(r) if r.seen + r.confirmed + r.reorged + r.claims > 0 => {
                    tracing::info!(
                        head = r.head,
                        seen = r.seen,
                        confirmed = r.confirmed,
                        reorged = r.reorged,
                        claims = r.claims,
                        "L1 watcher"
                    )
                }
                Ok(r) if r.l1_behind => {
                    tracing::debug!(head = r.head, "L1 watcher: provider behind, retrying")
                }
                Ok(_) => {}
                // The error never carries the endpoint URL (see `Rpc::request`).
                Err(e) => tracing::warn!(
                    error = %e,
                    l1 = %self.rpc.endpoint_for_logs(),
                    "L1 watcher poll failed; retrying"
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(serial: u64, block: u64, hash: u8) -> ObservedOp {
        ObservedOp {
            serial,
            kind: OpKind::Deposit,
            depositor: Address::repeat_byte(1),
            recipient: 1,
            amount: 10,
            priority_hash: B256::ZERO,
            payload: None,
            deadline: 1_000_000,
            block,
            block_hash: B256::repeat_byte(hash),
            tx_hash: B256::repeat_byte(0xee),
            log_index: 0,
        }
    }

    #[test]
    fn depth_rule() {
        assert!(is_deep_enough(10, 10, 0));
        assert!(!is_deep_enough(10, 10, 1));
        assert!(is_deep_enough(13, 10, 3));
        assert!(!is_deep_enough(12, 10, 3));
        assert!(!is_deep_enough(9, 10, 0));
    }

    #[test]
    fn new_ops_are_seen_then_confirmed_at_depth() {
        let canon = BTreeMap::from([(5, B256::repeat_byte(5))]);
        let d = decide(&[], &[op(0, 5, 5)], 1, 6, &canon, 3);
        assert_eq!(d.insert, vec![(op(0, 5, 5), false)]);
        let pending = [PendingOp {
            id: 1,
            block: 5,
            block_hash: B256::repeat_byte(5),
            log_index: 0,
        }];
        // Still in the scan window and still canonical: not yet deep.
        let d = decide(&pending, &[op(0, 5, 5)], 1, 7, &canon, 3);
        assert_eq!(d, Decision::default());
        let d = decide(&pending, &[op(0, 5, 5)], 1, 8, &canon, 3);
        assert_eq!(d.confirm, vec![1]);
        assert!(d.insert.is_empty());
    }

    #[test]
    fn a_replaced_block_reorgs_its_ops_and_the_new_one_is_seen() {
        let pending = [PendingOp {
            id: 1,
            block: 5,
            block_hash: B256::repeat_byte(5),
            log_index: 0,
        }];
        // Block 5 now has another hash, and the op reappears in block 6.
        let canon = BTreeMap::from([(5, B256::repeat_byte(0x55)), (6, B256::repeat_byte(6))]);
        let d = decide(&pending, &[op(0, 6, 6)], 1, 9, &canon, 3);
        assert_eq!(d.reorged, vec![1]);
        assert_eq!(d.insert, vec![(op(0, 6, 6), true)]);
        // Chain shortened below the op's block: reorged.
        let d = decide(&pending, &[], 1, 4, &BTreeMap::new(), 3);
        assert_eq!(d.reorged, vec![1]);
        // Same hash but the log is gone from the rescan: reorged.
        let canon = BTreeMap::from([(5, B256::repeat_byte(5))]);
        let d = decide(&pending, &[], 1, 9, &canon, 3);
        assert_eq!(d.reorged, vec![1]);
    }

    #[test]
    fn stale_logs_are_ignored() {
        let canon = BTreeMap::from([(5, B256::repeat_byte(0x55))]);
        let d = decide(&[], &[op(0, 5, 5)], 1, 9, &canon, 3);
        assert!(d.insert.is_empty());
    }
}
