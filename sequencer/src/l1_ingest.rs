//! Crediting L1 deposits on L2 (SPEC 16.2): reads `confirmed` deposits from `l1_priority_ops`
//! in serial order and hands each to the writer as the deposit transaction `(seq = serial, to,
//! amount)`, exactly like the devnet faucet did. The writer applies it only when `serial` is the
//! state's `next_deposit_seq`, so a serial is credited at most once whatever happens (restarts,
//! two ingest loops, a crash between the durable receipt and marking the row). The row becomes
//! `credited`, with a `deposit_credited` feed event, only after the L2 transaction is durable.

use std::time::Duration;

use rollup_bridge::feed::{self, finality, kind};
use serde_json::json;
use sqlx::Row;
use state::account::{AccountIndex, Amount};
use tokio::sync::{oneshot, watch};

use crate::store::Store;
use crate::writer::{Command, SubmitOutcome, WriterHandle};

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
) -> Result<bool, sqlx::Error> {
    let mut db = store.pool().begin().await?;
    let row = sqlx::query(
        "UPDATE l1_priority_ops SET status = 'credited', l2_tx_id = $2, updated_at = now() \
         WHERE id = $1 AND status = 'confirmed' \
         RETURNING serial, recipient, amount, l1_tx_hash, l1_block",
    )
    .bind(id)
    .bind(tx_id.map(|t| t.to_vec()))
    .fetch_optional(&mut *db)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let l1_tx: Vec<u8> = row.get(3);
    feed::append(
        &mut db,
        kind::DEPOSIT_CREDITED,
        finality::ACCEPTED,
        json!({
            "serial": row.get::<i64, _>(0),
            "recipient": row.get::<i64, _>(1),
            "amount": row.get::<i64, _>(2),
            "l2_tx_id": tx_id.map(|t| format!("0x{}", hex::encode(t))),
            "l2_seq": l2_seq,
        }),
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
            "SELECT id, serial, kind, recipient, amount FROM l1_priority_ops \
             WHERE status = 'confirmed' ORDER BY serial LIMIT 500",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut done = 0;
        for r in rows {
            let id: i64 = r.get(0);
            let serial = r.get::<i64, _>(1) as u64;
            let op: String = r.get(2);
            if op != "deposit" {
                // SPEC 15.6: the L2 has no op for forced withdrawals yet; the queue stalls here.
                tracing::warn!(
                    serial,
                    "forced withdrawal in the L1 queue: not processed yet (SPEC 15.6)"
                );
                break;
            }
            let to = AccountIndex(u32::try_from(r.get::<i64, _>(3))?);
            let amount = Amount::new(r.get::<i64, _>(4) as u64)
                .ok_or_else(|| anyhow::anyhow!("deposit {serial}: amount out of range"))?;
            let (reply, rx) = oneshot::channel();
            self.writer
                .enqueue(
                    Command::L1Deposit {
                        seq: serial,
                        to,
                        amount,
                        reply,
                    },
                    Duration::from_secs(1),
                )
                .await
                .map_err(|e| anyhow::anyhow!("writer: {e}"))?;
            match rx.await? {
                Err(next) if next > serial => {
                    // Credited before (e.g. a crash before the row was marked).
                    if mark_credited(&self.store, id, None, None).await? {
                        done += 1;
                    }
                }
                Err(next) => {
                    tracing::debug!(serial, next, "deposit not yet creditable");
                    break;
                }
                Ok(SubmitOutcome::Accepted { meta, durable })
                | Ok(SubmitOutcome::Duplicate { meta, durable }) => {
                    if !durable.wait().await {
                        anyhow::bail!("deposit {serial}: the committer is gone");
                    }
                    if mark_credited(&self.store, id, Some(meta.tx_id), Some(meta.seq)).await? {
                        metrics::counter!("bridge_deposits_credited_total").increment(1);
                        tracing::info!(
                            serial,
                            to = to.0,
                            amount = amount.get(),
                            "L1 deposit credited"
                        );
                        done += 1;
                    }
                }
                Ok(SubmitOutcome::Rejected(r)) => {
                    anyhow::bail!("deposit {serial} rejected by the state: {}", r.code());
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
