//! Group commit: the only task that writes to Postgres.
//!
//! It takes whatever the writer has queued (transaction groups, sealed blocks, sealed batches),
//! writes all of it in one database transaction, and only then releases the receipts. While one
//! commit is in flight the next group accumulates, so the commit rate adapts to the load: one
//! fsync covers hundreds of transactions under load and one transaction when idle.
//!
//! Failures:
//! - A transient error (the connection dropped, Postgres restarting or shutting down, the pool
//!   timing out) is retried with backoff for up to `outage_limit`; meanwhile the node reports
//!   `DATABASE_UNAVAILABLE` (not ready) and the service refuses new submissions early.
//! - Before every retry the committer asks Postgres whether the previous attempt was in fact
//!   committed (a COMMIT whose answer was lost): one group is one database transaction, so one
//!   probe of its first row tells. A durable group is therefore never written twice and never
//!   reported as not accepted.
//! - Anything else, or an outage longer than the limit, ends the task with an error: the
//!   in-memory state is then ahead of the durable log, and the supervisor stops the node so
//!   that recovery restores a consistent state. No receipt was sent for unwritten transactions.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::receipt_watch::AccountWakeups;
use crate::supervisor::Readiness;
use crate::unsealed::UnsealedActivity;
use crate::writer::CommitJob;
use rollup_storage::log::WriteItem;
use rollup_storage::{StorageError as StoreError, Store};

/// Upper bound on jobs merged into one database transaction.
const MAX_JOBS_PER_COMMIT: usize = 256;
/// Backoff between attempts while Postgres is away.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Where a commit group goes: the durable log, and the question "is this group there?".
/// [`Store`] is the one implementation; tests wrap it to lose answers on purpose.
pub trait CommitLog: Send + Sync + 'static {
    fn write(&self, items: &[WriteItem]) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn is_written(
        &self,
        items: &[WriteItem],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl CommitLog for Store {
    fn write(&self, items: &[WriteItem]) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.log().write(items)
    }

    fn is_written(
        &self,
        items: &[WriteItem],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.log().is_written(items)
    }
}

pub struct Committer<L: CommitLog = Store> {
    pub log: L,
    pub rx: mpsc::Receiver<CommitJob>,
    pub durable_seq: Arc<AtomicU64>,
    pub durable_tx: watch::Sender<u64>,
    pub wakeups: Arc<AccountWakeups>,
    /// The open blocks' transactions, readable once durable (unsealed.rs).
    pub unsealed: Arc<UnsealedActivity>,
    pub readiness: Arc<Readiness>,
    /// How long Postgres may stay away before the node gives up and stops.
    pub outage_limit: Duration,
}

impl<L: CommitLog> Committer<L> {
    /// Runs until the writer drops its sender (shutdown) and everything is written.
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
                .map(|i| match i {
                    WriteItem::Txs(r) => r.len(),
                    _ => 0,
                })
                .sum();
            let started = Instant::now();
            self.write_until_durable(&items).await?;
            // Readable before anyone is told (unsealed.rs).
            self.unsealed.committed(&items);
            metrics::histogram!("rollup_commit_latency_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!("rollup_commit_txs").record(txs as f64);
            if let Some(last) = jobs.iter().filter_map(|j| j.last_seq).max() {
                self.durable_seq.store(last, Ordering::Release);
                let _ = self.durable_tx.send(last);
                metrics::gauge!("rollup_durable_seq").set(last as f64);
                self.wakeups.notify(touched_accounts(&items), last);
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

    /// Writes `items` once, retrying transient failures and resolving lost answers.
    async fn write_until_durable(&self, items: &[WriteItem]) -> anyhow::Result<()> {
        let first_failure = Instant::now();
        let mut attempt: u32 = 0;
        let mut delay = RETRY_MIN;
        loop {
            // After a failed attempt, the group may be durable all the same (the COMMIT reached
            // Postgres and only its answer was lost): ask before writing again.
            let outcome = if attempt > 0 {
                match self.log.is_written(items).await {
                    Ok(true) => {
                        tracing::warn!(
                            attempt,
                            "the previous commit was durable although its answer was lost"
                        );
                        metrics::counter!("rollup_commit_lost_answers_total").increment(1);
                        Ok(())
                    }
                    Ok(false) => self.log.write(items).await,
                    Err(e) => Err(e),
                }
            } else {
                self.log.write(items).await
            };
            let e = match outcome {
                Ok(()) => {
                    self.readiness.set_db_outage(false);
                    return Ok(());
                }
                Err(e) => e,
            };
            attempt += 1;
            if !is_transient(&e) {
                tracing::error!(error = %e, "commit failed; stopping so that recovery restores a consistent state");
                return Err(anyhow::Error::new(e).context("commit failed"));
            }
            if first_failure.elapsed() >= self.outage_limit {
                tracing::error!(error = %e, limit_secs = self.outage_limit.as_secs(), "Postgres stayed unavailable past the limit; stopping");
                return Err(anyhow::Error::new(e).context(format!(
                    "Postgres unavailable for more than {} s",
                    self.outage_limit.as_secs()
                )));
            }
            self.readiness.set_db_outage(true);
            metrics::counter!("rollup_commit_retries_total").increment(1);
            tracing::warn!(error = %e, attempt, "commit failed, retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RETRY_MAX);
        }
    }
}

/// Accounts whose receipts a commit adds: signers, recipients and new registrations.
fn touched_accounts(items: &[WriteItem]) -> impl Iterator<Item = u32> + '_ {
    items
        .iter()
        .filter_map(|i| match i {
            WriteItem::Txs(rows) => Some(rows.iter()),
            _ => None,
        })
        .flatten()
        .flat_map(|r| {
            [r.sender, r.recipient, r.account_index]
                .into_iter()
                .flatten()
                .chain(r.parties.iter().copied())
        })
}

/// Worth a retry: the connection or the server went away (the transaction was rolled back, or
/// committed with its answer lost, which the probe resolves). Not: a constraint violation, a
/// missing table, a corrupt row.
pub fn is_transient(e: &StoreError) -> bool {
    match e {
        StoreError::Db(sqlx::Error::Io(_))
        | StoreError::Db(sqlx::Error::PoolTimedOut)
        | StoreError::Db(sqlx::Error::Protocol(_))
        | StoreError::Db(sqlx::Error::WorkerCrashed) => true,
        StoreError::Db(sqlx::Error::Database(d)) => {
            d.code().is_some_and(|c| is_transient_sqlstate(&c))
        }
        _ => false,
    }
}

/// SQLSTATEs after which the same statement can succeed on a new connection.
pub fn is_transient_sqlstate(code: &str) -> bool {
    // Class 08: connection exception. 57P01 admin_shutdown (`pg_ctl restart -m fast`),
    // 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up), 53300 too many
    // connections, 40001 serialization failure, 40P01 deadlock.
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollup_storage::log::TxRow;
    use std::sync::atomic::AtomicBool;

    /// A log whose first COMMIT succeeds but whose answer is lost on the way back.
    struct LosesFirstAnswer {
        store: Store,
        lost: AtomicBool,
    }

    impl CommitLog for LosesFirstAnswer {
        async fn write(&self, items: &[WriteItem]) -> Result<(), StoreError> {
            self.store.write(items).await?;
            if !self.lost.swap(true, Ordering::SeqCst) {
                let reset = std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset after COMMIT",
                );
                return Err(StoreError::Db(sqlx::Error::Io(reset)));
            }
            Ok(())
        }

        fn is_written(
            &self,
            items: &[WriteItem],
        ) -> impl Future<Output = Result<bool, StoreError>> + Send {
            self.store.log().is_written(items)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_commit_answer_is_resolved_as_durable_and_not_written_twice() {
        let url = devkit::postgres::test_database("seq_lost_commit")
            .await
            .expect("a Postgres server (rollup-devkit)");
        let store = Store::connect_and_migrate(&url, 2).await.expect("connect");
        let (jobs, rx) = mpsc::channel(8);
        let (durable_tx, durable_rx) = watch::channel(0);
        let committer = Committer {
            log: LosesFirstAnswer {
                store: store.clone(),
                lost: AtomicBool::new(false),
            },
            rx,
            durable_seq: Arc::new(AtomicU64::new(0)),
            durable_tx,
            wakeups: Arc::default(),
            unsealed: Arc::new(UnsealedActivity::new(0)),
            readiness: Arc::new(Readiness::default()),
            outage_limit: Duration::from_secs(30),
        };
        let task = tokio::spawn(committer.run());
        let row = TxRow {
            seq: 1,
            tx_id: [7; 32],
            kind: 2,
            sender: Some(1),
            recipient: Some(2),
            account_index: None,
            raw: vec![2; 10],
            block_number: 1,
            position: 0,
            block_time: 1,
            batch_time: 1,
            batch_status: None,
            parties: Vec::new(),
        };
        let (waiter, durable) = tokio::sync::oneshot::channel();
        jobs.send(CommitJob {
            item: WriteItem::Txs(vec![row]),
            waiters: vec![waiter],
            last_seq: Some(1),
            budget: None,
        })
        .await
        .expect("queue");
        tokio::time::timeout(Duration::from_secs(20), durable)
            .await
            .expect("answered in time")
            .expect("reported durable, not 'not accepted'");
        assert_eq!(*durable_rx.borrow(), 1);
        drop(jobs);
        task.await
            .expect("task")
            .expect("the committer did not fail on its own row");
        assert_eq!(
            store.log().count_txs().await.expect("count"),
            1,
            "written once"
        );
    }

    #[test]
    fn restarts_and_lost_connections_are_transient_constraint_violations_are_not() {
        for c in [
            "57P01", "57P02", "57P03", "08006", "08003", "53300", "40001",
        ] {
            assert!(is_transient_sqlstate(c), "{c}");
        }
        for c in ["23505", "42P01", "22003", "XX000"] {
            assert!(!is_transient_sqlstate(c), "{c}");
        }
        assert!(is_transient(&StoreError::Db(sqlx::Error::PoolTimedOut)));
        assert!(!is_transient(&StoreError::Corrupt("x".into())));
    }
}
