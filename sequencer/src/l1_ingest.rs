//! Consuming the L1 priority queue on L2 (SPEC 16.2): reads `confirmed` ops from
//! `l1_priority_ops` in serial order and hands each to the writer: a deposit as the deposit
//! transaction `(seq = serial, to, amount)`, a forced withdrawal as the forced-withdraw
//! transaction stored by the watcher (`payload`). The writer applies it only when `serial` is
//! the state's `next_deposit_seq`, so a serial is consumed at most once whatever happens
//! (restarts, two ingest loops, a crash between the durable receipt and marking the row). The
//! row becomes `credited` (consumed), with a `deposit_credited` or
//! `forced_withdrawal_processed` feed event, only after the L2 transaction is durable.

use std::time::Duration;

use rollup_bridge::feed::{self, finality, kind};
use serde_json::json;
use sqlx::Row;
use state::account::{AccountIndex, Amount};
use state::pubdata::ForcedStatus;
use state::tx::{Deposit, Transaction};
use tokio::sync::{oneshot, watch};

use crate::store::Store;
use crate::writer::{Command, L1Op, SubmitOutcome, WriterHandle};

pub struct Ingest {
    pub store: Store,
    pub writer: WriterHandle,
    pub poll: Duration,
}

async fn mark_credited(
    store: &Store,
    id: i64,
    tx_id: Option<[u8; 32]>,
    l2_seq: Option<u64>,
    forced: Option<ForcedStatus>,
) -> Result<bool, sqlx::Error> {
    let mut db = store.pool().begin().await?;
    let row = sqlx::query(
        "UPDATE l1_priority_ops SET status = 'credited', l2_tx_id = $2, updated_at = now() \
         WHERE id = $1 AND status = 'confirmed' \
         RETURNING serial, recipient, amount, l1_tx_hash, l1_block, kind",
    )
    .bind(id)
    .bind(tx_id.map(|t| t.to_vec()))
    .fetch_optional(&mut *db)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let l1_tx: Vec<u8> = row.get(3);
    let op: String = row.get(5);
    let (event, payload) = if op == "deposit" {
        (
            kind::DEPOSIT_CREDITED,
            json!({
                "serial": row.get::<i64, _>(0),
                "recipient": row.get::<i64, _>(1),
                "amount": row.get::<i64, _>(2),
                "l2_tx_id": tx_id.map(|t| format!("0x{}", hex::encode(t))),
                "l2_seq": l2_seq,
            }),
        )
    } else {
        (
            kind::FORCED_WITHDRAWAL_PROCESSED,
            json!({
                "serial": row.get::<i64, _>(0),
                "account": row.get::<i64, _>(1),
                "amount": row.get::<i64, _>(2),
                // Unknown only if the op was consumed before a crash and marked after it.
                "outcome": forced.map(|s| s.code()),
                "l2_tx_id": tx_id.map(|t| format!("0x{}", hex::encode(t))),
                "l2_seq": l2_seq,
            }),
        )
    };
    feed::append(
        &mut db,
        event,
        finality::ACCEPTED,
        payload,
        Some(rollup_bridge::B256::left_padding_from(&l1_tx)),
        Some(row.get::<i64, _>(4) as u64),
    )
    .await?;
    db.commit().await?;
    Ok(true)
}

impl Ingest {
    /// Credits what can be credited now; returns how many rows became `credited`.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let rows = sqlx::query(
            "SELECT id, serial, kind, recipient, amount, payload FROM l1_priority_ops \
             WHERE status = 'confirmed' ORDER BY serial LIMIT 500",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut done = 0;
        for r in rows {
            let id: i64 = r.get(0);
            let serial = r.get::<i64, _>(1) as u64;
            let kind: String = r.get(2);
            let op = if kind == "deposit" {
                let to = AccountIndex(u32::try_from(r.get::<i64, _>(3))?);
                let amount = Amount::new(r.get::<i64, _>(4) as u64)
                    .ok_or_else(|| anyhow::anyhow!("deposit {serial}: amount out of range"))?;
                L1Op::Deposit(Deposit {
                    seq: serial,
                    to,
                    amount,
                })
            } else {
                let raw: Option<Vec<u8>> = r.get(5);
                // The contract queues only canonical withdraws (SPEC 15.2), so this decodes; if it
                // ever did not, stopping loudly beats guessing (the serial must be consumed).
                match raw.as_deref().map(Transaction::decode) {
                    Some(Ok(Transaction::ForcedWithdraw(f))) if f.seq == serial => {
                        L1Op::ForcedWithdraw(f)
                    }
                    other => anyhow::bail!(
                        "forced withdrawal {serial}: stored payload is not its L2 transaction ({other:?})"
                    ),
                }
            };
            let (reply, rx) = oneshot::channel();
            self.writer
                .enqueue(Command::L1PriorityOp { op, reply }, Duration::from_secs(1))
                .await
                .map_err(|e| anyhow::anyhow!("writer: {e}"))?;
            match rx.await? {
                Err(next) if next > serial => {
                    // Credited before (e.g. a crash before the row was marked).
                    if mark_credited(&self.store, id, None, None, None).await? {
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
                    if mark_credited(
                        &self.store,
                        id,
                        Some(meta.tx_id),
                        Some(meta.seq),
                        meta.forced,
                    )
                    .await?
                    {
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

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!("L1 deposit ingest: {e:#}");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}
