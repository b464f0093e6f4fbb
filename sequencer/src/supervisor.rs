//! Readiness and the supervision of the node's critical tasks.
//!
//! A node that cannot make transactions durable must not answer "ready". Every long-running
//! task the node depends on is started through [`Supervisor`]; when one ends before shutdown was
//! asked for, the node turns not-ready (`/readyz` 503, gRPC health NOT_SERVING), stops intake
//! and exits non-zero, so that the orchestrator restarts it and recovery rebuilds a consistent
//! state from Postgres. The policy per task (docs/API.md, "Supervision"):
//!
//! | task | on exit |
//! |---|---|
//! | committer | stop the node: the writer's memory is ahead of the durable log, only recovery is safe |
//! | writer thread | stop the node: nothing else may order transactions |
//! | gRPC / HTTP servers | stop the node: it can no longer be reached |
//! | bridge feed hub | stop the node: exchanges would silently stop getting events |
//! | L1 watcher, ingest, submitter | stop the node: each resumes from Postgres and L1 at the next start |
//!
//! None is restarted in place: each holds state (a connection, a cursor, a nonce) whose
//! consistency after a failure is easiest to guarantee by the same recovery path as a crash.
//! Transient failures (a Postgres restart, an L1 RPC error) are retried inside the tasks and
//! never reach the supervisor; they show as not-ready while they last.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio::sync::{mpsc, watch};

/// Why the node is not ready, as a stable reason code (docs/API.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReady {
    Starting,
    ShuttingDown,
    /// The committer cannot reach Postgres; it keeps retrying.
    DatabaseUnavailable,
    /// A critical task ended; the node is stopping.
    TaskFailed(String),
}

impl NotReady {
    pub fn code(&self) -> &'static str {
        match self {
            NotReady::Starting => "STARTING",
            NotReady::ShuttingDown => "SHUTTING_DOWN",
            NotReady::DatabaseUnavailable => "DATABASE_UNAVAILABLE",
            NotReady::TaskFailed(_) => "TASK_FAILED",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            NotReady::Starting => "recovering state; not accepting payments yet".into(),
            NotReady::ShuttingDown => "shutting down".into(),
            NotReady::DatabaseUnavailable => {
                "Postgres does not answer; acknowledged payments are safe, new ones wait".into()
            }
            NotReady::TaskFailed(t) => format!("critical task {t} stopped; the node is stopping"),
        }
    }
}

/// The node's readiness, shared by the HTTP and gRPC health endpoints, the service (which
/// refuses new work early while the database is away) and the committer.
pub struct Readiness {
    started: AtomicBool,
    stopping: AtomicBool,
    db_outage: AtomicBool,
    failed: Mutex<Option<String>>,
    /// Bumped on every change, so the gRPC health reporter follows without polling.
    changed: watch::Sender<u64>,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            started: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            db_outage: AtomicBool::new(false),
            failed: Mutex::new(None),
            changed: watch::channel(0).0,
        }
    }
}

impl Readiness {
    /// `Ok` when the node takes payments; otherwise the first reason it does not.
    pub fn check(&self) -> Result<(), NotReady> {
        if let Some(t) = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(NotReady::TaskFailed(t));
        }
        if self.stopping.load(Ordering::Acquire) {
            return Err(NotReady::ShuttingDown);
        }
        if !self.started.load(Ordering::Acquire) {
            return Err(NotReady::Starting);
        }
        if self.db_outage.load(Ordering::Acquire) {
            return Err(NotReady::DatabaseUnavailable);
        }
        Ok(())
    }

    pub fn is_db_outage(&self) -> bool {
        self.db_outage.load(Ordering::Acquire)
    }

    pub fn set_started(&self) {
        self.set(&self.started, true);
    }

    pub fn set_stopping(&self) {
        self.set(&self.stopping, true);
    }

    pub fn set_db_outage(&self, outage: bool) {
        if self.db_outage.load(Ordering::Acquire) != outage {
            metrics::gauge!("rollup_db_outage").set(if outage { 1.0 } else { 0.0 });
            self.set(&self.db_outage, outage);
        }
    }

    pub fn set_failed(&self, task: &str) {
        let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(task.to_string());
        }
        drop(f);
        self.changed.send_modify(|v| *v += 1);
    }

    fn set(&self, flag: &AtomicBool, value: bool) {
        flag.store(value, Ordering::Release);
        self.changed.send_modify(|v| *v += 1);
    }

    /// A receiver that changes whenever readiness may have changed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// A critical task that ended, with its outcome.
#[derive(Debug)]
pub struct TaskExit {
    pub task: &'static str,
    pub result: Result<(), String>,
}

/// Starts critical tasks and reports the first that ends.
pub struct Supervisor {
    exits_tx: mpsc::UnboundedSender<TaskExit>,
    exits_rx: mpsc::UnboundedReceiver<TaskExit>,
}

impl Default for Supervisor {
    fn default() -> Self {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        Supervisor { exits_tx, exits_rx }
    }
}

impl Supervisor {
    /// Spawns `fut` as a critical task; its end (return, error or panic) is reported.
    pub fn spawn<F>(&self, task: &'static str, fut: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let exits = self.exits_tx.clone();
        tokio::spawn(async move {
            let result = match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("{e:#}")),
                Err(panic) => Err(panic_message(panic.as_ref())),
            };
            let _ = exits.send(TaskExit { task, result });
        })
    }

    /// A guard for a task that is not a future (the writer thread): dropping it, also by
    /// unwinding from a panic, reports the task's end.
    pub fn guard(&self, task: &'static str) -> ExitGuard {
        ExitGuard {
            task,
            exits: self.exits_tx.clone(),
            clean: false,
        }
    }

    /// Waits for the next task to end.
    pub async fn next_exit(&mut self) -> Option<TaskExit> {
        self.exits_rx.recv().await
    }

    /// Exits reported so far, without waiting (after shutdown: did anything fail?).
    pub fn drain(&mut self) -> Vec<TaskExit> {
        let mut out = Vec::new();
        while let Ok(e) = self.exits_rx.try_recv() {
            out.push(e);
        }
        out
    }
}

/// Reports a non-future task's end when dropped; see [`Supervisor::guard`].
pub struct ExitGuard {
    task: &'static str,
    exits: mpsc::UnboundedSender<TaskExit>,
    clean: bool,
}

impl ExitGuard {
    /// Marks a normal end (otherwise the drop reports a failure: a panic unwound through it).
    pub fn finish(mut self) {
        self.clean = true;
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let result = if self.clean {
            Ok(())
        } else {
            Err("panicked".to_string())
        };
        let _ = self.exits.send(TaskExit {
            task: self.task,
            result,
        });
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".into()
    }
}

/// Keeps the gRPC health service in step with [`Readiness`] (no polling: it waits on changes).
pub async fn follow_health(
    readiness: Arc<Readiness>,
    reporter: tonic_health::server::HealthReporter,
) {
    use rollup_proto::v1::rollup_server::RollupServer;
    let mut changes = readiness.subscribe();
    loop {
        let status = if readiness.check().is_ok() {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        reporter.set_service_status("", status).await;
        reporter
            .set_service_status(
                <RollupServer<crate::service::RollupService> as tonic::server::NamedService>::NAME,
                status,
            )
            .await;
        if changes.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_reports_the_strongest_reason() {
        let r = Readiness::default();
        assert_eq!(r.check(), Err(NotReady::Starting));
        r.set_started();
        assert_eq!(r.check(), Ok(()));
        r.set_db_outage(true);
        assert_eq!(r.check(), Err(NotReady::DatabaseUnavailable));
        r.set_db_outage(false);
        assert_eq!(r.check(), Ok(()));
        r.set_failed("committer");
        r.set_stopping();
        assert_eq!(r.check(), Err(NotReady::TaskFailed("committer".into())));
    }

    #[tokio::test]
    async fn a_task_that_ends_is_reported_even_when_it_panics() {
        let mut s = Supervisor::default();
        s.spawn("ok", async { Ok(()) });
        s.spawn("err", async { anyhow::bail!("boom") });
        s.spawn("panic", async { panic!("kaput") });
        let mut got = Vec::new();
        for _ in 0..3 {
            let e = s.next_exit().await.expect("an exit");
            got.push((e.task, e.result));
        }
        got.sort_by_key(|g| g.0);
        assert_eq!(got[0], ("err", Err("boom".into())));
        assert_eq!(got[1], ("ok", Ok(())));
        assert_eq!(got[2], ("panic", Err("panicked: kaput".into())));
        let g = s.guard("writer");
        drop(g);
        let e = s.next_exit().await.expect("guard exit");
        assert_eq!((e.task, e.result), ("writer", Err("panicked".into())));
    }
}
