//! Consuming the L1 priority queue on L2 (SPEC 16.2): reads `confirmed` ops from
//! `l1_priority_ops` in serial order and hands each to the writer: a deposit as the deposit
//! transaction `(seq = serial, to, amount)`, a forced withdrawal as the forced-withdraw
//! transaction stored by the watcher (`payload`). The writer applies it only when `serial` is
//! the state's `next_deposit_seq`, so a serial is consumed at most once whatever happens
//! (restarts, two ingest loops, a crash between the durable receipt and marking the row). The
//! row becomes `credited` (consumed), with a `deposit_credited` or
//! `forced_withdrawal_processed` feed event, only after the L2 transaction is durable.

use std::time::Duration;

use rollup_storage::l1::{transition_op, PriorityOpRow};
use rollup_storage::{feed, EventFinality, EventKind, PriorityOpKind, PriorityOpStatus};
use serde_json::json;
use state::account::{AccountIndex, Amount};
use state::pubdata::ForcedStatus;
use state::tx::{Deposit, Transaction};
use tokio::sync::{oneshot, watch};

use crate::writer::{AcceptedMeta, Command, L1Op, SubmitOutcome, WriterHandle};
use rollup_storage::Store;

/// Confirmed ops handed to the writer per tick.
const BATCH: i64 = 500;
/// Open ops whose deadlines the writer gets (it needs the first one a batch leaves
/// unconsumed, which is among the first few unless a backlog of this size builds up).
const DEADLINES: i64 = 4096;

pub struct Ingest {
    pub store: Store,
    pub writer: WriterHandle,
    pub poll: Duration,
}

/// The feed event reporting that `op` was consumed on L2 (`meta`: the writer's record of it,
/// unknown when it was consumed before a crash and is marked after it).
fn credited_event(
    op: &PriorityOpRow,
    meta: Option<&AcceptedMeta>,
) -> (EventKind, serde_json::Value) {
    let l2_tx_id = meta.map(|m| format!("0x{}", hex::encode(m.tx_id)));
    let l2_seq = meta.map(|m| m.seq);
    let forced: Option<ForcedStatus> = meta.and_then(|m| m.forced);
    match op.op.kind {
        PriorityOpKind::Deposit => (
            EventKind::DepositCredited,
            json!({
                "serial": op.op.serial,
                "recipient": op.op.recipient,
                "amount": op.op.amount,
                // REFUNDED: consumed without a credit; the depositor claims it on L1.
                "outcome": meta.and_then(|m| m.deposit).map(|s| s.code()),
                "l2_tx_id": l2_tx_id,
                "l2_seq": l2_seq,
            }),
        ),
        PriorityOpKind::ForcedWithdrawal => (
            EventKind::ForcedWithdrawalProcessed,
            json!({
                "serial": op.op.serial,
                "account": op.op.recipient,
                "amount": op.op.amount,
                // Unknown only if the op was consumed before a crash and marked after it.
                "outcome": forced.map(|s| s.code()),
                "l2_tx_id": l2_tx_id,
                "l2_seq": l2_seq,
            }),
        ),
    }
}

/// `confirmed -> credited` with its feed event, in one transaction. `false`: the row was not
/// `confirmed` any more (another ingest loop marked it first).
async fn mark_credited(
    store: &Store,
    id: i64,
    meta: Option<&AcceptedMeta>,
) -> anyhow::Result<bool> {
    let tx_id = meta.map(|m| m.tx_id);
    let mut db = store.pool().begin().await?;
    let Some(op) = transition_op(
        &mut db,
        id,
        PriorityOpStatus::Confirmed,
        PriorityOpStatus::Credited,
        tx_id,
    )
    .await?
    else {
        return Ok(false);
    };
    let (event, payload) = credited_event(&op, meta);
    feed::append(
        &mut db,
        event,
        EventFinality::Accepted,
        &payload,
        Some(op.op.l1_tx_hash),
        Some(op.op.l1_block),
    )
    .await?;
    db.commit().await?;
    Ok(true)
}

impl Ingest {
    /// Credits what can be credited now; returns how many rows became `credited`.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let rows = self
            .store
            .l1()
            .ops_with_status(PriorityOpStatus::Confirmed, BATCH)
            .await?;
        let mut done = 0;
        for r in rows {
            let (id, serial) = (r.id, r.op.serial);
            let op = match r.op.kind {
                PriorityOpKind::Deposit => {
                    let to = AccountIndex(u32::try_from(r.op.recipient)?);
                    let amount = Amount::new(r.op.amount)
                        .ok_or_else(|| anyhow::anyhow!("deposit {serial}: amount out of range"))?;
                    L1Op::Deposit(Deposit {
                        seq: serial,
                        to,
                        amount,
                    })
                }
                // The contract queues only canonical withdraws (SPEC 15.2), so this decodes; if
                // it ever did not, stopping loudly beats guessing (the serial must be consumed).
                PriorityOpKind::ForcedWithdrawal => match r.op.payload.as_deref().map(Transaction::decode) {
                    Some(Ok(Transaction::ForcedWithdraw(f))) if f.seq == serial => {
                        L1Op::ForcedWithdraw(f)
                    }
                    other => anyhow::bail!(
                        "forced withdrawal {serial}: stored payload is not its L2 transaction ({other:?})"
                    ),
                },
            };
            let (reply, rx) = oneshot::channel();
            self.writer
                .enqueue(Command::L1PriorityOp { op, reply }, Duration::from_secs(1))
                .await
                .map_err(|e| anyhow::anyhow!("writer: {e}"))?;
            match rx.await? {
                Err(next) if next > serial => {
                    // Credited before (e.g. a crash before the row was marked).
                    if mark_credited(&self.store, id, None).await? {
                        done += 1;
                    }
                }
                Err(next) => {
                    tracing::debug!(serial, next, "priority op not yet consumable");
                    break;
                }
                Ok(SubmitOutcome::Accepted { meta, durable })
                | Ok(SubmitOutcome::Duplicate { meta, durable }) => {
                    if !durable.wait().await {
                        anyhow::bail!("deposit {serial}: the committer is gone");
                    }
                    if mark_credited(&self.store, id, Some(&meta)).await? {
                        match op {
                            L1Op::Deposit(d) => {
                                metrics::counter!("bridge_deposits_credited_total").increment(1);
                                tracing::info!(
                                    serial,
                                    to = d.to.0,
                                    amount = d.amount.get(),
                                    "L1 deposit credited"
                                );
                            }
                            L1Op::ForcedWithdraw(f) => {
                                let outcome = meta.forced.map(|s| s.code()).unwrap_or("?");
                                metrics::counter!("bridge_forced_withdrawals_total", "outcome" => outcome)
                                    .increment(1);
                                tracing::info!(
                                    serial,
                                    account = f.withdraw.from.0,
                                    amount = f.withdraw.amount.get(),
                                    outcome,
                                    "L1 forced withdrawal processed"
                                );
                            }
                        }
                        done += 1;
                    }
                }
                Ok(SubmitOutcome::Rejected(r)) => {
                    anyhow::bail!("priority op {serial} rejected by the state: {}", r.code());
                }
            }
        }
        Ok(done)
    }

    /// Hands the open ops' deadlines to the writer, which checks them before sealing a batch
    /// (`crate::deadlines`).
    async fn publish_deadlines(&self) -> anyhow::Result<()> {
        let open = self.store.l1().open_deadlines(DEADLINES).await?;
        self.writer.deadlines.replace(open);
        Ok(())
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!("L1 deposit ingest: {e:#}");
            }
            if let Err(e) = self.publish_deadlines().await {
                tracing::warn!("L1 deposit ingest: reading the priority-op deadlines: {e:#}");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}
