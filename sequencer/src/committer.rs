//! Group commit: the only task that writes to Postgres.
//!
//! It takes whatever the writer has queued (transaction groups, sealed blocks, sealed batches),
//! writes all of it in one database transaction, and only then releases the receipts. While one
//! commit is in flight the next group accumulates, so the commit rate adapts to the load: one
//! fsync covers hundreds of transactions under load and one transaction when idle.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::store::{Store, WriteItem};
use crate::writer::CommitJob;

/// Upper bound on jobs merged into one database transaction.
const MAX_JOBS_PER_COMMIT: usize = 256;

pub struct Committer {
    pub store: Store,
    pub rx: mpsc::Receiver<CommitJob>,
    pub durable_seq: Arc<AtomicU64>,
    pub durable_tx: watch::Sender<u64>,
}

impl Committer {
    /// Runs until the writer drops its sender (shutdown) and everything is written.
    /// A write that keeps failing is fatal: the in-memory state is then ahead of the durable
    /// log, and the only safe continuation is a restart that recovers from Postgres. No receipt
    /// was sent for the unwritten transactions, so nothing acknowledged is lost.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let mut jobs: Vec<CommitJob> = Vec::new();
        while let Some(first) = self.rx.recv().await {
            jobs.push(first);
            while jobs.len() < MAX_JOBS_PER_COMMIT {
                match self.rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            metrics::gauge!("rollup_commit_queue_depth").set(self.rx.len() as f64);
            let items: Vec<WriteItem> = jobs.iter().map(|j| j.item.clone()).collect();
            let txs: usize = items
                .iter()
                .map(|i| {
                    if let WriteItem::Txs(r) = i {
                        r.len()
                    } else {
                        0
                    }
                })
                .sum();
            let started = Instant::now();
            let mut attempt = 0;
            loop {
                match self.store.write(&items).await {
                    Ok(()) => break,
                    Err(e) if attempt < 3 && is_transient(&e) => {
                        attempt += 1;
                        tracing::warn!(error = %e, attempt, "commit failed, retrying");
                        tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "commit failed; stopping so that recovery can restore a consistent state");
                        return Err(e.into());
                    }
                }
            }
            metrics::histogram!("rollup_commit_latency_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!("rollup_commit_txs").record(txs as f64);
            let last = jobs.iter().filter_map(|j| j.last_seq).max();
            if let Some(last) = last {
                self.durable_seq.store(last, Ordering::Release);
                let _ = self.durable_tx.send(last);
                metrics::gauge!("rollup_durable_seq").set(last as f64);
            }
            for job in jobs.drain(..) {
                for w in job.waiters {
                    let _ = w.send(());
                }
            }
        }
        tracing::info!("committer drained");
        Ok(())
    }
}

/// Connection-level failures are worth a retry (the transaction was rolled back); a constraint
/// violation or a corrupt row is not.
fn is_transient(e: &crate::store::StoreError) -> bool {
    matches!(
        e,
        crate::store::StoreError::Db(sqlx::Error::Io(_))
            | crate::store::StoreError::Db(sqlx::Error::PoolTimedOut)
            | crate::store::StoreError::Db(sqlx::Error::PoolClosed)
    )
}
