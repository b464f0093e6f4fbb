//! The snapshot task: stores the state snapshots the writer takes at batch boundaries.
//!
//! Every `--snapshot-every-txs` transactions, at the next sealed batch, the writer encodes its
//! state (`state::snapshot`, a linear copy: ~0.1 s and ~150 MB at a million accounts, ~1 ms
//! at ten thousand) and hands the bytes here; this task waits until the batch is durable,
//! then writes the snapshot in one database transaction and prunes old ones
//! (`rollup_storage::snapshots`). At most one snapshot is in flight: if the previous one is
//! still being written, the writer skips this batch and tries again at the next.
//!
//! Not a critical task: a snapshot that cannot be written only makes the next restart replay
//! more of the log, so failures are logged and counted (`rollup_snapshot_failures_total`)
//! and the node keeps serving. Restart time is bounded by the age of the newest snapshot.

use std::time::{Duration, Instant};

use rollup_storage::snapshots::NewSnapshot;
use rollup_storage::Store;
use tokio::sync::mpsc;

/// A snapshot taken by the writer, on its way to Postgres.
pub struct SnapshotJob {
    pub meta: NewSnapshot,
    pub bytes: Vec<u8>,
}

/// How long a snapshot waits for its batch to become durable before it is dropped (the
/// committer retries through Postgres outages for longer than this only when something is
/// badly wrong; the next snapshot will try again).
const WAIT_FOR_BATCH: Duration = Duration::from_secs(120);

pub async fn run(store: Store, mut rx: mpsc::Receiver<SnapshotJob>, keep: u32) {
    while let Some(job) = rx.recv().await {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match store.snapshots().insert(&job.meta, &job.bytes, keep).await {
                Ok(true) => {
                    metrics::histogram!("rollup_snapshot_write_seconds")
                        .record(started.elapsed().as_secs_f64());
                    metrics::gauge!("rollup_snapshot_bytes").set(job.bytes.len() as f64);
                    metrics::gauge!("rollup_snapshot_batch").set(job.meta.batch_number as f64);
                    tracing::info!(
                        batch = job.meta.batch_number,
                        block = job.meta.block_number,
                        seq = job.meta.last_seq,
                        bytes = job.bytes.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "state snapshot stored"
                    );
                    break;
                }
                // The batch row is not durable yet (or this snapshot exists already).
                Ok(false) if started.elapsed() < WAIT_FOR_BATCH => {}
                Ok(false) => {
                    metrics::counter!("rollup_snapshot_failures_total").increment(1);
                    tracing::warn!(
                        batch = job.meta.batch_number,
                        "state snapshot dropped: its batch did not become durable in time"
                    );
                    break;
                }
                Err(e) if started.elapsed() < WAIT_FOR_BATCH => {
                    tracing::debug!(batch = job.meta.batch_number, "snapshot write failed: {e}");
                }
                Err(e) => {
                    metrics::counter!("rollup_snapshot_failures_total").increment(1);
                    tracing::warn!(batch = job.meta.batch_number, "state snapshot dropped: {e}");
                    break;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
