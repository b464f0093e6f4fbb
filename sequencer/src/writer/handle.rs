//! [`WriterHandle`]: how the services reach the writer thread (enqueue with patience, durable
//! reads, shutdown).

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use state::account::{Account, AccountIndex};
use state::apply::{CheckError, VerifiedTx};
use state::stream::{Stream, StreamSlot};
use tokio::sync::oneshot;

use super::*;

impl WriterHandle {
    /// Asks the writer to flush and stop; it finishes what is queued ahead of this.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        // Wake an idle writer at once; a full queue needs no wake-up (and must not block the
        // caller, an async task): the writer sees the flag after its current command.
        self.depth.fetch_add(1, Ordering::Relaxed);
        if self.queue.try_send(Command::Shutdown).is_err() {
            self.depth.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Enqueues without blocking the async runtime: retries for up to `patience` while the
    /// queue is full, then reports `Full` (mapped to RESOURCE_EXHAUSTED by the API).
    pub async fn enqueue(&self, mut cmd: Command, patience: Duration) -> Result<(), EnqueueError> {
        let deadline = Instant::now() + patience;
        let w = cmd.weight();
        loop {
            // Count before sending: the writer may take the command (and decrement) before
            // try_send even returns. Over capacity in transactions counts as full, except for
            // a command alone in the queue (a group larger than a tiny capacity still passes).
            let d = self.depth.fetch_add(w, Ordering::Relaxed) + w;
            let sent = if d > self.capacity && d > w {
                Err(mpsc::TrySendError::Full(cmd))
            } else {
                self.queue.try_send(cmd)
            };
            match sent {
                Ok(()) => {
                    metrics::gauge!("rollup_writer_queue_depth").set(d as f64);
                    return Ok(());
                }
                Err(mpsc::TrySendError::Disconnected(_)) => {
                    self.depth.fetch_sub(w, Ordering::Relaxed);
                    return Err(EnqueueError::Closed);
                }
                Err(mpsc::TrySendError::Full(c)) => {
                    self.depth.fetch_sub(w, Ordering::Relaxed);
                    if Instant::now() >= deadline {
                        return Err(EnqueueError::Full);
                    }
                    cmd = c;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }

    /// An account as of durable state: the writer's view, returned once every transaction it
    /// reflects is durable (a few milliseconds under load), so a read never shows a payment
    /// that a crash could still undo. `patience` bounds both the queue wait and the durability
    /// wait.
    pub async fn durable_account(
        &self,
        index: AccountIndex,
        patience: Duration,
    ) -> Result<Option<Account>, ReadError> {
        Ok(self
            .durable_account_view(index, patience)
            .await?
            .map(|v| v.account))
    }

    /// [`Self::durable_account`] with the account's agent fields: its lanes, its passport if it
    /// is an agent, the agents it owns.
    pub async fn durable_account_view(
        &self,
        index: AccountIndex,
        patience: Duration,
    ) -> Result<Option<AccountView>, ReadError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(Command::Account { index, reply }, patience)
            .await
            .map_err(ReadError::Enqueue)?;
        let (account, seq) = rx.await.map_err(|_| ReadError::Stopped)?;
        let mut durable = self.durable.clone();
        let wait = async move { durable.wait_for(|d| *d >= seq).await.is_ok() };
        match tokio::time::timeout(patience.max(Duration::from_secs(2)), wait).await {
            Ok(true) => Ok(account),
            Ok(false) => Err(ReadError::Stopped),
            Err(_) => Err(ReadError::NotDurable),
        }
    }

    /// [`Command::Stream`]: the stream in `slot` of `payer` now (accepted transactions included,
    /// durable or not: ticks are not stored, and a payer ticks after its open's receipt).
    pub async fn stream(
        &self,
        payer: AccountIndex,
        slot: StreamSlot,
        patience: Duration,
    ) -> Result<Option<Stream>, ReadError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(Command::Stream { payer, slot, reply }, patience)
            .await
            .map_err(ReadError::Enqueue)?;
        rx.await.map_err(|_| ReadError::Stopped)
    }

    /// [`Command::Check`]: whether `tx` would be accepted now, applying nothing.
    pub async fn check(
        &self,
        tx: VerifiedTx,
        patience: Duration,
    ) -> Result<Result<(), CheckError>, ReadError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(
            Command::Check {
                tx: Box::new(tx),
                reply,
            },
            patience,
        )
        .await
        .map_err(ReadError::Enqueue)?;
        rx.await.map_err(|_| ReadError::Stopped)
    }

    pub fn head(&self) -> Head {
        self.head.lock().map(|h| h.clone()).unwrap_or_default()
    }
}
