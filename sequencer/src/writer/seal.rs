//! Sealing: a block every `block_interval` (its root computed here, once per block), a batch by
//! block count or age once its priority deadlines allow, and state snapshots.

use std::time::Instant;

use crate::deadlines::{self, SealCheck};
use state::diff::BatchTouches;
use state::pubdata::{PubdataCommitment, WithdrawalsCommitment};

use crate::snapshotter::SnapshotJob;
use rollup_prover::capacity::BatchLoad;
use rollup_storage::batches::BatchRow;
use rollup_storage::log::{BlockRow, SealedBatch, SealedBlock, WriteItem};
use rollup_storage::snapshots::NewSnapshot;
use rollup_storage::witness::{BatchWitness, WITNESS_VERSION};
use rollup_storage::BatchStatus;

use super::*;

impl Writer {
    pub(super) fn seal_block(&mut self) {
        if self.block.txs == 0 {
            return;
        }
        self.flush_group();
        let started = Instant::now();
        let root = self.state.root();
        metrics::histogram!("rollup_block_root_seconds").record(started.elapsed().as_secs_f64());
        let row = BlockRow {
            number: self.block.number,
            state_root: root,
            first_seq: self.block.first_seq,
            tx_count: self.block.txs,
            block_time: self.block.time,
        };
        self.batch
            .block_times
            .push((self.block.number, self.block.time));
        let activity = std::mem::take(&mut self.block.activity);
        self.send(
            WriteItem::Block(Box::new(SealedBlock { row, activity })),
            Vec::new(),
            None,
        );
        metrics::gauge!("rollup_block_height").set(self.block.number as f64);
        if let Ok(mut h) = self.head.lock() {
            h.block = self.block.number;
            h.root = root;
            h.accepted = self.next_seq - 1;
            h.num_accounts = self.state.num_accounts();
            h.next_deposit_seq = self.state.next_deposit_seq();
        }
        self.block = OpenBlock {
            number: self.block.number + 1,
            first_seq: self.next_seq,
            time: unix_now().max(self.block.time),
            txs: 0,
            opened: None,
            activity: BlockActivity::default(),
        };
        debug_assert_eq!(self.keys.len() as u64, self.state.num_accounts());
    }

    pub(super) fn maybe_seal_batch(&mut self) {
        let Some(last_block) = self.batch.last_block else {
            self.batch.opened = Instant::now();
            return;
        };
        if self.batch.seal_refused {
            return;
        }
        // Only whole sealed blocks go into a batch.
        if last_block >= self.block.number {
            return;
        }
        let blocks = last_block + 1 - self.batch.first_block;
        if blocks < self.cfg.batch_max_blocks
            && self.batch.opened.elapsed() < self.cfg.batch_max_age
        {
            return;
        }
        if self.deadline_holds(blocks) {
            return;
        }
        self.seal_batch(last_block, blocks);
    }

    /// The open batch's load so far: every account it touched counted once, its payouts,
    /// priority ops and split lanes ([`BatchLoad`]).
    pub(super) fn batch_load(&self) -> BatchLoad {
        let b = &self.batch;
        let accounts = b.touches.len() as u64;
        let created = b.counts.created.min(accounts);
        BatchLoad {
            txs: u64::from(b.tx_count),
            old_accounts: accounts - created,
            new_accounts: created,
            stream_records: b.touches.stream_slots() as u64 + b.counts.diff_runs,
            policy_bodies: b.counts.policy_bodies,
            priority_ops: b.counts.priority_ops,
            payouts: (b.withdrawals.len() + b.refunds.len()) as u64,
            split_lanes: b.counts.split_lanes,
            walk_lanes: b.counts.walk_lanes,
        }
    }

    /// Seals the open block and the batch first if `tx` could take the batch past what the
    /// circuits prove (`WriterConfig::capacity`, `rollup_prover::capacity`): such a batch
    /// would never be proven, and every later batch would wait behind it. Ahead of priority
    /// deadline holds: a batch that cannot be proven never commits the op either. A
    /// transaction too large even for an empty batch (a distribute over more shares than a
    /// batch holds; splits are refused at the door) goes alone into its own batch, logged.
    pub(super) fn make_room_for(&mut self, tx: &Transaction) {
        let Some(cap) = self.cfg.capacity else {
            return;
        };
        let bound = BatchLoad::bound_of(tx, |a| {
            self.state.shares_of(a).map_or(0, |s| s.parts().len())
        });
        if !cap.fits(&bound) {
            tracing::error!(
                batch = self.batch.number,
                kind = %tx.kind(),
                needs = cap.chunks_for(&bound),
                max = cap.max_chunks(),
                "a transaction larger than a batch of the pinned circuits: its batch cannot be proven"
            );
        }
        if self.batch.tx_count == 0 || cap.fits(&self.batch_load().plus(&bound)) {
            return;
        }
        if self.batch.seal_refused {
            return;
        }
        self.seal_block();
        let Some(last_block) = self.batch.last_block else {
            return;
        };
        let blocks = last_block + 1 - self.batch.first_block;
        tracing::info!(
            batch = self.batch.number,
            txs = self.batch.tx_count,
            chunks = cap.chunks_for(&self.batch_load()),
            max = cap.max_chunks(),
            "sealing a full batch: the next transaction could take it past what the circuits prove"
        );
        metrics::counter!("rollup_batch_sealed_full_total").increment(1);
        self.seal_batch(last_block, blocks);
    }

    /// Seals the open batch at `last_block` (its `blocks` blocks all sealed).
    fn seal_batch(&mut self, last_block: u64, blocks: u64) {
        let new_root = self.state.root();
        // The L1 data of the batch, checked against the previous batch's root before anything
        // is written: a diff that does not rebuild `new_root` must never reach L1 (SPEC 10.4).
        let started = Instant::now();
        let l1_pubdata = match self
            .batch
            .touches
            .seal(&mut self.state, self.batch.old_root)
        {
            Ok(blob) => blob,
            Err(e) => {
                // Only a bug can get here (a transaction whose Effects miss a change). Sealing
                // stops so that no unverifiable data is published; transactions are still
                // accepted and durable, and a restart after the fix seals them.
                tracing::error!(
                    batch = self.batch.number,
                    "refusing to seal the batch: its state diff does not check: {e}"
                );
                metrics::counter!("rollup_batch_seal_refused_total").increment(1);
                self.batch.seal_refused = true;
                return;
            }
        };
        metrics::histogram!("rollup_batch_diff_seconds").record(started.elapsed().as_secs_f64());
        let row = BatchRow {
            number: self.batch.number,
            first_block: self.batch.first_block,
            last_block,
            first_seq: self.batch.first_seq,
            last_seq: self.batch.first_seq + u64::from(self.batch.tx_count) - 1,
            old_root: self.batch.old_root,
            new_root,
            pubdata_commitment: self.batch.pubdata_c.digest(),
            withdrawals_commitment: self.batch.withdrawals_c.digest(),
            first_deposit_seq: self.batch.first_deposit_seq,
            next_deposit_seq: self.state.next_deposit_seq(),
            tx_count: self.batch.tx_count,
            status: BatchStatus::Sealed,
        };
        let witness = batch_witness(&row, &self.batch);
        let snapshot = NewSnapshot {
            batch_number: row.number,
            block_number: row.last_block,
            last_seq: row.last_seq,
            block_time: self
                .batch
                .block_times
                .last()
                .map_or(self.block.time, |&(_, t)| t),
            state_root: new_root,
            format_version: state::snapshot::SNAPSHOT_VERSION,
        };
        let pubdata = std::mem::take(&mut self.batch.pubdata);
        tracing::info!(
            batch = row.number,
            blocks,
            txs = row.tx_count,
            l1_bytes = l1_pubdata.len(),
            "batch sealed"
        );
        metrics::gauge!("rollup_batch_height").set(row.number as f64);
        if let Ok(mut h) = self.head.lock() {
            h.batch = row.number;
        }
        let next = OpenBatch {
            number: row.number + 1,
            first_block: last_block + 1,
            last_block: None,
            first_seq: row.last_seq + 1,
            old_root: new_root,
            first_deposit_seq: row.next_deposit_seq,
            pubdata: Vec::new(),
            pubdata_c: PubdataCommitment::new(),
            withdrawals_c: WithdrawalsCommitment::new(),
            withdrawals: Vec::new(),
            refunds: Vec::new(),
            touches: BatchTouches::new(self.state.num_accounts()),
            seal_refused: false,
            held: false,
            block_times: Vec::new(),
            tx_count: 0,
            counts: LoadCounts::default(),
            opened: Instant::now(),
        };
        self.batch = next;
        self.send(
            WriteItem::Batch(Box::new(SealedBatch {
                row,
                pubdata,
                l1_pubdata,
                witness,
            })),
            Vec::new(),
            None,
        );
        self.maybe_snapshot(snapshot);
    }

    /// Whether the batch, due for sealing with `blocks` blocks, must stay open because it
    /// would leave a priority op unconsumed whose deadline passes before it can be committed
    /// (`crate::deadlines`). Past [`deadlines::HOLD_LIMIT`] times its usual size it is sealed
    /// anyway, with an error: its commit will be refused unless the op is consumed on L1 time.
    pub(super) fn deadline_holds(&mut self, blocks: u64) -> bool {
        let next = self.state.next_deposit_seq();
        let verdict = deadlines::check(
            next,
            self.deadlines.of(next),
            unix_now(),
            self.cfg.seal_deadline_margin.as_secs(),
        );
        let SealCheck::AtRisk { serial, deadline } = verdict else {
            metrics::gauge!("rollup_batch_held_for_deadline").set(0.0);
            return false;
        };
        if blocks < deadlines::HOLD_LIMIT.saturating_mul(self.cfg.batch_max_blocks) {
            if !self.batch.held {
                tracing::warn!(
                    batch = self.batch.number,
                    serial,
                    deadline,
                    margin_secs = self.cfg.seal_deadline_margin.as_secs(),
                    "holding the batch open: it would leave a priority op unconsumed that is due before the batch can be committed"
                );
                metrics::counter!("rollup_batch_seal_held_total").increment(1);
                self.batch.held = true;
            }
            metrics::gauge!("rollup_batch_held_for_deadline").set(1.0);
            return true;
        }
        tracing::error!(
            batch = self.batch.number,
            serial,
            deadline,
            blocks,
            "sealing a batch that leaves a priority op due before its commit unconsumed: \
             L1 will refuse the commit after the deadline (is the L1 ingest stuck?)"
        );
        metrics::counter!("rollup_batch_sealed_at_risk_total").increment(1);
        metrics::gauge!("rollup_batch_held_for_deadline").set(0.0);
        false
    }

    /// Takes a state snapshot at this batch boundary if one is due and none is in flight.
    /// Runs right after the seal, while the state is exactly the sealed batch's new state.
    pub(super) fn maybe_snapshot(&mut self, meta: NewSnapshot) {
        let every = self.cfg.snapshot_every_txs;
        let Some(out) = &self.snapshots else { return };
        if every == 0 || meta.last_seq < self.last_snapshot_seq.saturating_add(every) {
            return;
        }
        if out.capacity() == 0 {
            tracing::debug!(
                batch = meta.batch_number,
                "previous snapshot still in flight"
            );
            return;
        }
        let started = Instant::now();
        let bytes = self.state.encode_snapshot();
        metrics::histogram!("rollup_snapshot_encode_seconds")
            .record(started.elapsed().as_secs_f64());
        let last_seq = meta.last_seq;
        if out.try_send(SnapshotJob { meta, bytes }).is_ok() {
            self.last_snapshot_seq = last_seq;
        }
    }
}

/// The prover's view of a batch besides its transactions (which live in `transactions`).
pub(super) fn batch_witness(row: &BatchRow, batch: &OpenBatch) -> BatchWitness {
    BatchWitness {
        version: WITNESS_VERSION,
        batch: row.number,
        blocks: (row.first_block, row.last_block),
        block_times: batch.block_times.clone(),
        seqs: (row.first_seq, row.last_seq),
        old_root: row.old_root,
        new_root: row.new_root,
        pubdata_commitment: row.pubdata_commitment,
        withdrawals_commitment: row.withdrawals_commitment,
        deposits: (row.first_deposit_seq, row.next_deposit_seq),
        withdrawals: batch.withdrawals.clone(),
        refunds: batch.refunds.clone(),
    }
}
