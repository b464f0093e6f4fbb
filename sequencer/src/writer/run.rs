//! The writer thread: spawned once, it takes commands in arrival order, applies transactions to
//! the state and hands commit groups to the committer.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::deadlines::OpenDeadlines;
use crate::keys::KeyDirectory;
use state::account::{Timestamp, OPERATOR};
use state::apply::{BlockContext, Effects, Rejection, VerifiedTx};
use state::diff::BatchTouches;
use state::pubdata::{PubdataCommitment, PubdataOp, WithdrawalsCommitment};
use state::tx::{Deposit, Transaction};
use tokio::sync::{oneshot, watch};

use crate::snapshotter::SnapshotJob;
use rollup_storage::log::{BlockActivity, TxRow, WriteItem};
use rollup_storage::witness::{WitnessRefund, WitnessWithdrawal};

use super::*;

/// Spawns the writer thread; returns its handle and the thread's join handle.
pub fn spawn(
    cfg: WriterConfig,
    rec: Recovered,
    out: tokio::sync::mpsc::Sender<CommitJob>,
    durable_watch: watch::Receiver<u64>,
    durable_seq: Arc<AtomicU64>,
    snapshots: Option<tokio::sync::mpsc::Sender<SnapshotJob>>,
    exit: crate::supervisor::ExitGuard,
) -> std::io::Result<(WriterHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel(cfg.queue_capacity);
    let keys = Arc::new(KeyDirectory::default());
    for a in rec.state.accounts() {
        keys.push_encoded(a.pubkey);
    }
    let head = Arc::new(Mutex::new(rec.head.clone()));
    let depth = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadlines = Arc::new(OpenDeadlines::default());
    let handle = WriterHandle {
        queue: tx,
        depth: depth.clone(),
        capacity: cfg.queue_capacity,
        stop: stop.clone(),
        keys: keys.clone(),
        head: head.clone(),
        durable: durable_watch.clone(),
        deadlines: deadlines.clone(),
    };
    // The open batch started before the accounts its own registrations created; folding its
    // effects below then yields the same touches as if the node had never stopped.
    let registered_in_open_batch = rec
        .open_batch_effects
        .iter()
        .filter(|(_, fx)| fx.registered.is_some())
        .count() as u64;
    let count_before = rec
        .state
        .num_accounts()
        .saturating_sub(registered_in_open_batch);
    let mut batch = OpenBatch {
        number: rec.batch_number,
        first_block: rec.batch_first_block,
        last_block: None,
        first_seq: rec.batch_first_seq,
        old_root: rec.batch_old_root,
        first_deposit_seq: rec.batch_first_deposit_seq,
        pubdata: Vec::new(),
        pubdata_c: PubdataCommitment::new(),
        withdrawals_c: WithdrawalsCommitment::new(),
        withdrawals: Vec::new(),
        refunds: Vec::new(),
        touches: BatchTouches::new(count_before),
        seal_refused: false,
        held: false,
        block_times: rec.open_batch_block_times.clone(),
        tx_count: 0,
        counts: LoadCounts::default(),
        opened: Instant::now(),
    };
    for (_, fx) in &rec.open_batch_effects {
        absorb(&mut batch, fx);
    }
    if let Some((b, _)) = rec.open_batch_block_times.last() {
        batch.last_block = Some(*b);
    }
    let budget = cfg.commit_queue_bytes.clamp(
        1 << 16,
        tokio::sync::Semaphore::MAX_PERMITS.min(u32::MAX as usize),
    );
    let commit_budget = Arc::new(tokio::sync::Semaphore::new(budget));
    let known = Dedup::new(cfg.dedup_window);
    let writer = Writer {
        block: OpenBlock {
            number: rec.next_block,
            first_seq: rec.next_seq,
            time: unix_now().max(rec.last_block_time),
            txs: 0,
            opened: None,
            activity: BlockActivity::default(),
        },
        batch,
        cfg,
        state: rec.state,
        known,
        next_seq: rec.next_seq,
        group: Vec::new(),
        group_waiters: Vec::new(),
        out,
        keys,
        head,
        depth,
        durable_watch,
        durable_seq,
        stop_requested: false,
        stop,
        commit_budget,
        commit_budget_total: budget,
        snapshots,
        last_snapshot_seq: rec.snapshot_seq,
        deadlines,
    };
    let join = std::thread::Builder::new()
        .name("sequencer-writer".into())
        .spawn(move || {
            // A panic unwinds through `exit` and reports the writer's end to the supervisor.
            writer.run(rx);
            exit.finish();
        })?;
    Ok((handle, join))
}

/// Adds a transaction's effects to the open batch's pubdata, commitments and touched accounts.
pub(super) fn absorb(batch: &mut OpenBatch, fx: &Effects) {
    batch.pubdata.extend_from_slice(&fx.pubdata.to_bytes());
    batch.pubdata_c.absorb(&fx.pubdata);
    batch.touches.absorb(fx);
    if let Some(w) = &fx.withdrawal {
        batch.withdrawals_c.absorb(w);
        batch.withdrawals.push(WitnessWithdrawal {
            from: w.from,
            to_l1: w.to_l1,
            amount: w.amount,
        });
    }
    if let state::pubdata::PubdataOp::Deposit {
        seq,
        amount,
        status: state::pubdata::DepositStatus::Refunded,
        ..
    } = &fx.pubdata
    {
        batch.refunds.push(WitnessRefund {
            seq: *seq,
            amount: *amount,
        });
    }
    batch.tx_count += 1;
    batch.counts.created += u64::from(fx.registered.is_some());
    batch.counts.priority_ops += u64::from(fx.deposit.is_some() || fx.forced.is_some());
    match &fx.pubdata {
        state::pubdata::PubdataOp::Split { parts, .. } => {
            batch.counts.split_lanes += rollup_prover::circuits::split::lanes_for(
                parts.len(),
                rollup_prover::circuits::split::LANE_PAYEES,
            ) as u64;
        }
        state::pubdata::PubdataOp::RegisterShares { parts, .. } => {
            batch.counts.diff_runs += rollup_prover::capacity::shares_runs(parts.len());
        }
        state::pubdata::PubdataOp::Passport(op) => {
            if let Some(policy) = op.action.policy() {
                let body = rollup_prover::capacity::policy_body(policy);
                batch.counts.diff_runs += body.stream_records;
                batch.counts.policy_bodies += body.policy_bodies;
            }
        }
        state::pubdata::PubdataOp::StreamSettle { body, .. } => {
            let t = &body.terms;
            batch.counts.walk_lanes +=
                rollup_prover::capacity::settle_lanes(t.from.get(), t.to.get());
        }
        _ => {}
    }
}

/// The database row for an accepted transaction, judged at the clocks of `ctx`.
pub fn tx_row(
    tx: &Transaction,
    fx: &Effects,
    seq: u64,
    block: u64,
    position: u32,
    ctx: &BlockContext,
) -> TxRow {
    let (sender, recipient) = match tx {
        Transaction::Transfer(t) => (Some(t.from.0), Some(t.to.0)),
        Transaction::Withdraw(w) => (Some(w.from.0), None),
        Transaction::Deposit(d) => (None, Some(d.to.0)),
        Transaction::ForcedWithdraw(f) => (Some(f.withdraw.from.0), None),
        Transaction::Register(_) => (None, None),
        // Never accepted by this version (KIND_NOT_ENABLED at the door); the parties if one is.
        Transaction::StreamOpen(t) => (Some(t.body.payer.0), Some(t.body.payee.0)),
        Transaction::StreamSettle(t) => (Some(t.body.payee.0), None),
        Transaction::StreamSettlePath(t) => (Some(t.body.payee.0), None),
        Transaction::StreamClose(t) => (Some(t.body.signer.0), None),
        // The payees are the row's parties (below).
        Transaction::Split(t) => (Some(t.from.0), None),
        Transaction::Passport(t) => (Some(t.owner.0), t.action.agent().map(|a| a.0)),
        Transaction::RegisterShares(t) => (Some(t.account.0), None),
        Transaction::Distribute(t) => (Some(t.body.signer.0), Some(t.body.account.0)),
    };
    let parties = match tx {
        Transaction::Split(t) => t.parts.iter().map(|p| p.to.0).collect(),
        // A distribute's payees follow from the shares: the accounts it credited, besides the
        // operator's fee (the operator is a payee only if it got more than the fee).
        Transaction::Distribute(t) => {
            let mut payees: Vec<u32> = fx
                .balances
                .iter()
                .filter(|c| c.after > c.before)
                .filter(|c| c.account != OPERATOR || c.after.get() - c.before.get() > t.fee.get())
                .map(|c| c.account.0)
                .filter(|&a| Some(a) != sender && Some(a) != recipient)
                .collect();
            payees.sort_unstable();
            payees
        }
        _ => Vec::new(),
    };
    TxRow {
        seq,
        tx_id: fx.id.0.to_bytes(),
        kind: tx.kind() as i16,
        sender,
        recipient,
        account_index: fx.registered.map(|i| i.0),
        raw: tx.encode(),
        block_number: block,
        position,
        block_time: ctx.timestamp.get(),
        batch_time: ctx.batch_timestamp.get(),
        batch_status: None,
        parties,
    }
}

impl Writer {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Command>) {
        tracing::info!(
            block = self.block.number,
            seq = self.next_seq,
            "writer started"
        );
        loop {
            // Wait until the open block's deadline (or idle-poll when the block is empty).
            let timeout = match self.block.opened {
                Some(t) => (t + self.cfg.block_interval).saturating_duration_since(Instant::now()),
                None => Duration::from_millis(100),
            };
            match rx.recv_timeout(timeout) {
                Ok(Command::Shutdown) => return self.stop(),
                Ok(cmd) => {
                    self.handle(cmd);
                    // Drain whatever else is queued before flushing: this is the group commit.
                    while self.group.len() < self.cfg.max_group {
                        match rx.try_recv() {
                            Ok(cmd) => self.handle(cmd),
                            Err(_) => break,
                        }
                    }
                    self.flush_group();
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.stop(),
            }
            self.known.prune(self.durable_seq.load(Ordering::Acquire));
            metrics::gauge!("rollup_dedup_entries").set(self.known.len() as f64);
            if self.stop_requested || self.stop.load(Ordering::Acquire) {
                return self.stop();
            }
            if let Some(t) = self.block.opened {
                if t.elapsed() >= self.cfg.block_interval {
                    self.seal_block();
                }
            }
            self.maybe_seal_batch();
        }
    }

    /// Shutdown: everything accepted is flushed and the open block sealed.
    pub(super) fn stop(mut self) {
        self.flush_group();
        self.seal_block();
        tracing::info!("writer stopped");
    }

    pub(super) fn handle(&mut self, cmd: Command) {
        let w = cmd.weight();
        let d = self.depth.fetch_sub(w, Ordering::Relaxed).saturating_sub(w);
        metrics::gauge!("rollup_writer_queue_depth").set(d as f64);
        match cmd {
            Command::Submit { tx, reply } => {
                let out = self.submit(*tx);
                let _ = reply.send(out);
            }
            Command::SubmitGroup { txs, reply } => {
                let outcomes: Vec<SubmitOutcome> = txs
                    .into_iter()
                    .map(|tx| self.apply_one(tx, false))
                    .collect();
                let accepted = outcomes
                    .iter()
                    .any(|o| matches!(o, SubmitOutcome::Accepted { .. }));
                let durable = accepted.then(|| {
                    let (tx, rx) = oneshot::channel();
                    self.group_waiters.push(tx);
                    rx
                });
                let _ = reply.send(GroupOutcome { outcomes, durable });
            }
            Command::Faucet { to, amount, reply } => {
                // An L1 deposit to an unknown account is consumed and refunded; the faucet has
                // no L1 side to refund to, so it refuses up front instead.
                if self.state.account(to).is_none() {
                    let _ = reply.send(SubmitOutcome::Rejected(Rejection::UnknownAccount(to)));
                    return;
                }
                let deposit = Transaction::Deposit(Deposit {
                    seq: self.state.next_deposit_seq(),
                    to,
                    amount,
                });
                let out = match VerifiedTx::verify(deposit, self.state.domain(), |_| None) {
                    Ok(v) => self.submit(v),
                    Err(r) => SubmitOutcome::Rejected(r),
                };
                let _ = reply.send(out);
            }
            Command::L1PriorityOp { op, reply } => {
                let next = self.state.next_deposit_seq();
                if op.seq() != next {
                    let _ = reply.send(Err(next));
                    return;
                }
                // Unlike the faucet, an unknown recipient is fine: the deposit is consumed and
                // refunded on L1 (SPEC 15.5). A forced withdrawal is consumed too, applied or
                // rejected by the rules (its signature is one of them).
                let out = match VerifiedTx::verify(op.into_tx(), self.state.domain(), |_| None) {
                    Ok(v) => self.submit(v),
                    Err(r) => SubmitOutcome::Rejected(r),
                };
                let _ = reply.send(Ok(out));
            }
            Command::Account { index, reply } => {
                let view = self.state.account(index).map(|a| AccountView {
                    account: *a,
                    lanes: self.state.lanes_of(index),
                    passport: self.state.passport(index).cloned(),
                    agents: self.state.agents_of(index).map(|(i, _)| i).collect(),
                    shares: self.state.shares_of(index).cloned(),
                });
                let _ = reply.send((view, self.next_seq - 1));
            }
            Command::Stream { payer, slot, reply } => {
                let _ = reply.send(self.state.streams_of(payer).get(slot).copied());
            }
            Command::Check { tx, reply } => {
                // The time the next transaction would be judged at: the open block's, or now.
                let time = match self.block.opened {
                    Some(_) => self.block.time,
                    None => unix_now().max(self.block.time),
                };
                let ctx = self.context(time);
                let _ = reply.send(self.state.check_verified(&tx, &ctx));
            }
            // Only reached when queued behind other commands in a drain; stop at the next turn.
            Command::Shutdown => self.stop_requested = true,
        }
    }

    /// The rules' clocks for a transaction in a block at `time` (unix seconds) of the open
    /// batch: the batch's are its first block's, the open block's when no block of the batch
    /// is sealed yet.
    fn context(&self, time: u64) -> BlockContext {
        let batch_time = self.batch_time().unwrap_or(time);
        BlockContext::in_batch(
            Timestamp::new(time).unwrap_or(Timestamp::MAX),
            Timestamp::new(batch_time).unwrap_or(Timestamp::MAX),
        )
    }

    /// The time of the open batch's first sealed block, if it has one.
    fn batch_time(&self) -> Option<u64> {
        self.batch.block_times.first().map(|&(_, t)| t)
    }

    pub(super) fn submit(&mut self, tx: VerifiedTx) -> SubmitOutcome {
        self.apply_one(tx, true)
    }

    /// Applies one transaction. `own_waiter`: an accepted one gets its own durability
    /// notification ([`Durability::Group`]); otherwise the caller registers one for its whole
    /// group and the outcome says [`Durability::WithGroup`].
    pub(super) fn apply_one(&mut self, tx: VerifiedTx, own_waiter: bool) -> SubmitOutcome {
        let id = tx.id().0.to_bytes();
        if let Some(meta) = self.known.get(&id) {
            let durable = if meta.seq <= self.durable_seq.load(Ordering::Acquire) {
                Durability::Now
            } else {
                Durability::Watermark(self.durable_watch.clone(), meta.seq)
            };
            return SubmitOutcome::Duplicate {
                meta: *meta,
                durable,
            };
        }
        self.make_room_for(tx.tx());
        if self.block.opened.is_none() {
            // The block's time is taken when its first transaction arrives, so an idle node
            // never judges `valid_until` against a stale clock.
            self.block.opened = Some(Instant::now());
            self.block.time = unix_now().max(self.block.time);
        }
        let ctx = self.context(self.block.time);
        let raw_tx = tx.tx().clone();
        match self.state.apply_verified(tx, &ctx) {
            Err(r) => {
                if self.block.txs == 0 {
                    self.block.opened = None;
                }
                metrics::counter!("rollup_txs_rejected_total", "reason" => r.code()).increment(1);
                SubmitOutcome::Rejected(r)
            }
            Ok(fx) => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let position = self.block.txs;
                self.block.txs += 1;
                // A registration or a delegation (the agent's key) created an account.
                match (&raw_tx, fx.registered) {
                    (Transaction::Register(r), Some(_)) => self.keys.push(r.pubkey),
                    (_, Some(i)) => {
                        if let Some(a) = self.state.account(i) {
                            self.keys.push_encoded(a.pubkey);
                        }
                    }
                    (_, None) => {}
                }
                let row = tx_row(&raw_tx, &fx, seq, self.block.number, position, &ctx);
                self.block.activity.record(&row);
                absorb(&mut self.batch, &fx);
                self.batch.last_block = Some(self.block.number);
                let meta = AcceptedMeta {
                    tx_id: id,
                    kind: raw_tx.kind(),
                    seq,
                    block_number: self.block.number,
                    position,
                    account_index: fx.registered.map(|i| i.0),
                    forced: fx.forced.map(|o| o.status()),
                    deposit: match fx.pubdata {
                        PubdataOp::Deposit { status, .. } => Some(status),
                        _ => None,
                    },
                };
                self.known.insert(meta);
                self.known.prune(self.durable_seq.load(Ordering::Acquire));
                self.group.push(row);
                let durable = if own_waiter {
                    let (tx, rx) = oneshot::channel();
                    self.group_waiters.push(tx);
                    Durability::Group(rx)
                } else {
                    Durability::WithGroup
                };
                metrics::counter!("rollup_txs_accepted_total", "kind" => kind_label(raw_tx.kind()))
                    .increment(1);
                SubmitOutcome::Accepted { meta, durable }
            }
        }
    }

    pub(super) fn send(
        &mut self,
        item: WriteItem,
        waiters: Vec<oneshot::Sender<()>>,
        last_seq: Option<u64>,
    ) {
        // A full commit queue (in bytes or in jobs) blocks the writer, which fills the writer
        // queue, which turns into RESOURCE_EXHAUSTED for clients: memory stays bounded end to
        // end. The writer is a plain thread, so blocking on the async semaphore is fine here.
        let max = self.commit_budget_total;
        let want = CommitJob::bytes(&item).clamp(1, max) as u32;
        let budget =
            futures::executor::block_on(self.commit_budget.clone().acquire_many_owned(want)).ok();
        let job = CommitJob {
            item,
            waiters,
            last_seq,
            budget,
        };
        if self.out.blocking_send(job).is_err() {
            tracing::error!("committer is gone; the node cannot make transactions durable");
        }
    }

    pub(super) fn flush_group(&mut self) {
        // Waiters without rows: a group whose accepted rows went out with a seal in its middle
        // (`make_room_for`); an empty job after them tells them once those are durable.
        if self.group.is_empty() && self.group_waiters.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.group);
        let waiters = std::mem::take(&mut self.group_waiters);
        let last_seq = rows.last().map(|r| r.seq);
        self.send(WriteItem::Txs(rows), waiters, last_seq);
    }
}
