//! The single writer: the only code that mutates the rollup state.
//!
//! It runs on its own OS thread and takes commands from a bounded queue in arrival order.
//! Signatures were already checked in parallel (`VerifiedTx`), so applying a transaction costs
//! microseconds. Accepted transactions are grouped and handed to the committer; the writer
//! never waits for Postgres, it only hands over a receiver that fires once the group is durable.
//! Blocks are sealed every `block_interval` (computing the root here, once per block), and
//! batches by block count or age.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::deadlines::{self, OpenDeadlines, SealCheck};
use crate::keys::KeyDirectory;
use state::account::{Account, AccountIndex, Amount, Timestamp, OPERATOR};
use state::apply::{BlockContext, CheckError, Effects, Rejection, State, VerifiedTx};
use state::diff::BatchTouches;
use state::pubdata::{
    DepositStatus, ForcedStatus, PubdataCommitment, PubdataOp, WithdrawalsCommitment,
};
use state::stream::{Stream, StreamSlot};
use state::tx::{Deposit, ForcedWithdraw, Transaction, TxKind};
use state::Digest;
use tokio::sync::{oneshot, watch};

use crate::snapshotter::SnapshotJob;
use rollup_storage::batches::BatchRow;
use rollup_storage::log::{BlockRow, SealedBatch, TxRow, WriteItem};
use rollup_storage::snapshots::NewSnapshot;
use rollup_storage::witness::{BatchWitness, WitnessRefund, WitnessWithdrawal, WITNESS_VERSION};
use rollup_storage::BatchStatus;

/// Where an accepted transaction sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptedMeta {
    pub tx_id: [u8; 32],
    pub kind: TxKind,
    pub seq: u64,
    pub block_number: u64,
    pub position: u32,
    pub account_index: Option<u32>,
    /// A forced withdrawal's outcome: applied, or the rule it breaks.
    pub forced: Option<ForcedStatus>,
    /// A deposit's outcome: credited, or refunded on L1 (unknown account, or the credit would
    /// overflow the balance).
    pub deposit: Option<DepositStatus>,
}

/// How the caller learns that an accepted transaction is durable.
#[derive(Debug)]
pub enum Durability {
    /// Already durable.
    Now,
    /// Fires once the commit group holding the transaction is in Postgres.
    Group(oneshot::Receiver<()>),
    /// A resubmission of a transaction still in flight: wait for the durable watermark.
    Watermark(watch::Receiver<u64>, u64),
    /// Accepted as part of a [`Command::SubmitGroup`]: durable when the group's
    /// [`GroupOutcome::durable`] fires.
    WithGroup,
}

impl Durability {
    /// Resolves once durable; `false` if the committer is gone (the node is failing).
    pub async fn wait(self) -> bool {
        match self {
            Durability::Now => true,
            Durability::Group(rx) => rx.await.is_ok(),
            Durability::Watermark(mut rx, seq) => rx.wait_for(|d| *d >= seq).await.is_ok(),
            // The caller waits on the group's receiver instead; nothing is left to wait for
            // here once it has.
            Durability::WithGroup => true,
        }
    }
}

/// The writer's answer to a [`Command::SubmitGroup`]: one outcome per transaction, in order.
#[derive(Debug)]
pub struct GroupOutcome {
    pub outcomes: Vec<SubmitOutcome>,
    /// Fires once every transaction the group accepted is durable (`None`: it accepted none).
    /// All of them are in one commit group: the writer flushes only between commands.
    pub durable: Option<oneshot::Receiver<()>>,
}

#[derive(Debug)]
pub enum SubmitOutcome {
    Accepted {
        meta: AcceptedMeta,
        durable: Durability,
    },
    Duplicate {
        meta: AcceptedMeta,
        durable: Durability,
    },
    Rejected(Rejection),
}

/// Public head information, updated at every block seal.
#[derive(Clone, Debug, Default)]
pub struct Head {
    pub block: u64,
    pub root: Digest,
    pub accepted: u64,
    pub num_accounts: u64,
    pub next_deposit_seq: u64,
    pub batch: u64,
}

/// An account and its agent fields (docs/SPEC.md 20), as a read returns them.
#[derive(Clone, Debug)]
pub struct AccountView {
    pub account: Account,
    /// The next sequence numbers of lanes 1 to 7 (all 0 when unused).
    pub lanes: state::lanes::LaneNonces,
    pub passport: Option<state::passport::Passport>,
    /// The agents it owns, ascending.
    pub agents: Vec<AccountIndex>,
    /// Its registered revenue shares, if any.
    pub shares: Option<state::split::Shares>,
}

pub enum Command {
    Submit {
        tx: Box<VerifiedTx>,
        reply: oneshot::Sender<SubmitOutcome>,
    },
    /// Several verified transactions of one stream, applied in order as if submitted one by
    /// one, answered once and made durable together: one queue slot, one reply and one
    /// durability wake-up per group instead of per transaction (docs/BENCHMARKS.md, issue 10).
    SubmitGroup {
        txs: Vec<VerifiedTx>,
        reply: oneshot::Sender<GroupOutcome>,
    },
    /// Devnet faucet: credit `to` through an ordinary L2 deposit.
    Faucet {
        to: AccountIndex,
        amount: Amount,
        reply: oneshot::Sender<SubmitOutcome>,
    },
    /// A confirmed L1 priority op (a deposit or a forced withdrawal) with queue serial `seq`:
    /// applied only if `seq` is the state's next priority serial; otherwise answered with
    /// `Err(next_deposit_seq)` (already consumed when `seq` is below it, not yet when above).
    L1PriorityOp {
        op: L1Op,
        reply: oneshot::Sender<Result<SubmitOutcome, u64>>,
    },
    /// The account as the writer has it, with the last accepted seq (which may not be durable
    /// yet: see [`WriterHandle::durable_account`]).
    Account {
        index: AccountIndex,
        reply: oneshot::Sender<(Option<AccountView>, u64)>,
    },
    /// The stream in `slot` of `payer` as the writer has it (the tick relay's lookup).
    Stream {
        payer: AccountIndex,
        slot: StreamSlot,
        reply: oneshot::Sender<Option<Stream>>,
    },
    /// Whether a verified spend would be accepted now, against the writer's state (which
    /// includes accepted, not yet durable transactions), without applying it (x402 `/verify`).
    Check {
        tx: Box<VerifiedTx>,
        reply: oneshot::Sender<Result<(), CheckError>>,
    },
    /// Flush, seal the open block and stop (graceful shutdown).
    Shutdown,
}

impl Command {
    /// What the command counts for in the queue's capacity: a group its transactions, any
    /// other command one.
    fn weight(&self) -> usize {
        match self {
            Command::SubmitGroup { txs, .. } => txs.len().max(1),
            _ => 1,
        }
    }
}

/// An L1 priority op as the L2 applies it (only these two kinds come from the L1 queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L1Op {
    Deposit(Deposit),
    ForcedWithdraw(ForcedWithdraw),
}

impl L1Op {
    pub fn seq(&self) -> u64 {
        match self {
            L1Op::Deposit(d) => d.seq,
            L1Op::ForcedWithdraw(f) => f.seq,
        }
    }

    pub fn into_tx(self) -> Transaction {
        match self {
            L1Op::Deposit(d) => d.into(),
            L1Op::ForcedWithdraw(f) => f.into(),
        }
    }
}

/// Why a durable read could not be answered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("{0}")]
    Enqueue(EnqueueError),
    #[error("the sequencer stopped")]
    Stopped,
    #[error("the state is not durable yet (Postgres is slow or unavailable)")]
    NotDurable,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnqueueError {
    #[error("the sequencer queue is full")]
    Full,
    #[error("the sequencer is shutting down")]
    Closed,
}

/// Cheap, cloneable handle used by the gRPC and HTTP handlers.
#[derive(Clone)]
pub struct WriterHandle {
    queue: mpsc::SyncSender<Command>,
    /// Transactions (and other commands) queued: a group counts as its transactions, so that
    /// `queue_capacity` bounds transactions whatever their grouping.
    depth: Arc<AtomicUsize>,
    capacity: usize,
    /// Set by [`WriterHandle::shutdown`]; the writer checks it at every turn, so a stop is
    /// seen even when the command queue is full.
    stop: Arc<AtomicBool>,
    pub keys: Arc<KeyDirectory>,
    pub head: Arc<Mutex<Head>>,
    pub durable: watch::Receiver<u64>,
    /// The open priority ops' deadlines, written by the ingest, read by the writer before it
    /// seals a batch (`crate::deadlines`).
    pub deadlines: Arc<OpenDeadlines>,
}

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

#[derive(Clone, Debug)]
pub struct WriterConfig {
    pub block_interval: Duration,
    pub batch_max_blocks: u64,
    pub batch_max_age: Duration,
    /// Upper bound on transactions per commit group.
    pub max_group: usize,
    pub queue_capacity: usize,
    /// Bytes of rows the commit queue may hold (see [`CommitJob::bytes`]); the writer waits for
    /// room, the writer queue then fills, and clients get RESOURCE_EXHAUSTED.
    pub commit_queue_bytes: usize,
    /// Durable transaction ids kept in memory to answer resubmissions without Postgres; older
    /// ones are looked up in Postgres (service.rs). Ids not yet durable are always kept.
    pub dedup_window: usize,
    /// A state snapshot is taken at the first batch seal after this many transactions since
    /// the last one (0: never). See `snapshotter`.
    pub snapshot_every_txs: u64,
    /// Expected time from a batch's seal to its commit on L1: a batch that would leave a
    /// priority op due within it unconsumed is held open (`crate::deadlines`).
    pub seal_deadline_margin: Duration,
}

/// What the committer receives: rows to persist and who to tell when they are durable.
pub struct CommitJob {
    pub item: WriteItem,
    pub waiters: Vec<oneshot::Sender<()>>,
    /// Highest transaction seq in this job, if any.
    pub last_seq: Option<u64>,
    /// Its share of the commit queue's byte budget, returned when the job is dropped.
    pub budget: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl CommitJob {
    /// Approximate memory of the job's rows (what the byte budget counts).
    pub fn bytes(item: &WriteItem) -> usize {
        match item {
            WriteItem::Txs(rows) => rows.iter().map(|r| r.raw.len() + 128).sum(),
            WriteItem::Block(_) => 128,
            WriteItem::Batch(b) => b.pubdata.len() + b.l1_pubdata.len() + 4096,
        }
    }
}

struct OpenBlock {
    number: u64,
    first_seq: u64,
    time: u64,
    txs: u32,
    /// When the first transaction arrived (blocks are only sealed when non-empty).
    opened: Option<Instant>,
}

struct OpenBatch {
    number: u64,
    first_block: u64,
    last_block: Option<u64>,
    first_seq: u64,
    old_root: Digest,
    first_deposit_seq: u64,
    pubdata: Vec<u8>,
    pubdata_c: PubdataCommitment,
    withdrawals_c: WithdrawalsCommitment,
    withdrawals: Vec<WitnessWithdrawal>,
    /// Consumed L1 deposits that were refunded (status 1): paid back on L1 (SPEC 15.5).
    refunds: Vec<WitnessRefund>,
    /// Accounts touched so far and their values before the batch, for its state diff (SPEC 10.4).
    touches: BatchTouches,
    /// The state diff failed its check once: the batch is not sealed (an implementation bug,
    /// logged once; see `maybe_seal_batch`).
    seal_refused: bool,
    /// Held open for a priority op due before it could be committed (logged once).
    held: bool,
    block_times: Vec<(u64, u64)>,
    tx_count: u32,
    opened: Instant,
}

/// Accepted transaction ids the writer answers resubmissions of by itself: every id not yet
/// durable (a resubmission must wait for the original's durability) and the last `window`
/// durable ones. A resubmission of an older transaction is refused by the rules (its nonce is
/// used, its key registered, or it expired) and the service finds its receipt in Postgres.
pub struct Dedup {
    map: HashMap<[u8; 32], AcceptedMeta>,
    /// Ids in seq order, with their seq.
    order: VecDeque<([u8; 32], u64)>,
    window: usize,
}

impl Dedup {
    pub fn new(window: usize) -> Self {
        Dedup {
            map: HashMap::new(),
            order: VecDeque::new(),
            window,
        }
    }

    pub fn get(&self, id: &[u8; 32]) -> Option<&AcceptedMeta> {
        self.map.get(id)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records a newly accepted transaction (seqs arrive in increasing order).
    pub fn insert(&mut self, meta: AcceptedMeta) {
        if self.map.insert(meta.tx_id, meta).is_none() {
            self.order.push_back((meta.tx_id, meta.seq));
        }
    }

    /// Forgets the oldest ids beyond the window, only those durable (seq <= `durable`).
    pub fn prune(&mut self, durable: u64) {
        while self.order.len() > self.window {
            match self.order.front() {
                Some(&(id, seq)) if seq <= durable => {
                    self.order.pop_front();
                    self.map.remove(&id);
                }
                _ => break,
            }
        }
    }
}

/// Everything recovery rebuilt, handed to the writer thread.
pub struct Recovered {
    pub state: State,
    pub next_seq: u64,
    pub next_block: u64,
    pub batch_number: u64,
    pub batch_first_block: u64,
    pub batch_first_seq: u64,
    pub batch_old_root: Digest,
    pub batch_first_deposit_seq: u64,
    /// Effects of transactions already in the open batch, in order (to rebuild pubdata).
    pub open_batch_effects: Vec<(u64, Effects)>,
    pub open_batch_block_times: Vec<(u64, u64)>,
    /// The latest block time in the log: the next block's time is never below it.
    pub last_block_time: u64,
    /// Last transaction seq covered by the snapshot recovery started from (0: none).
    pub snapshot_seq: u64,
    pub head: Head,
}

pub struct Writer {
    cfg: WriterConfig,
    state: State,
    known: Dedup,
    next_seq: u64,
    block: OpenBlock,
    batch: OpenBatch,
    group: Vec<TxRow>,
    group_waiters: Vec<oneshot::Sender<()>>,
    out: tokio::sync::mpsc::Sender<CommitJob>,
    keys: Arc<KeyDirectory>,
    head: Arc<Mutex<Head>>,
    depth: Arc<AtomicUsize>,
    durable_watch: watch::Receiver<u64>,
    durable_seq: Arc<AtomicU64>,
    stop_requested: bool,
    stop: Arc<AtomicBool>,
    commit_budget: Arc<tokio::sync::Semaphore>,
    commit_budget_total: usize,
    snapshots: Option<tokio::sync::mpsc::Sender<SnapshotJob>>,
    last_snapshot_seq: u64,
    deadlines: Arc<OpenDeadlines>,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The node's clock as a timestamp (what a passport's remaining allowance is judged at, by
/// gRPC and HTTP alike).
pub fn now_timestamp() -> Timestamp {
    Timestamp::new(unix_now()).unwrap_or(Timestamp::MAX)
}

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
fn absorb(batch: &mut OpenBatch, fx: &Effects) {
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
}

/// The database row for an accepted transaction.
pub fn tx_row(
    tx: &Transaction,
    fx: &Effects,
    seq: u64,
    block: u64,
    position: u32,
    time: u64,
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
        block_time: time,
        batch_status: None,
        parties,
    }
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Command>) {
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
    fn stop(mut self) {
        self.flush_group();
        self.seal_block();
        tracing::info!("writer stopped");
    }

    fn handle(&mut self, cmd: Command) {
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
                let ctx = BlockContext {
                    timestamp: Timestamp::new(time).unwrap_or(Timestamp::MAX),
                };
                let _ = reply.send(self.state.check_verified(&tx, &ctx));
            }
            // Only reached when queued behind other commands in a drain; stop at the next turn.
            Command::Shutdown => self.stop_requested = true,
        }
    }

    fn submit(&mut self, tx: VerifiedTx) -> SubmitOutcome {
        self.apply_one(tx, true)
    }

    /// Applies one transaction. `own_waiter`: an accepted one gets its own durability
    /// notification ([`Durability::Group`]); otherwise the caller registers one for its whole
    /// group and the outcome says [`Durability::WithGroup`].
    fn apply_one(&mut self, tx: VerifiedTx, own_waiter: bool) -> SubmitOutcome {
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
        if self.block.opened.is_none() {
            // The block's time is taken when its first transaction arrives, so an idle node
            // never judges `valid_until` against a stale clock.
            self.block.opened = Some(Instant::now());
            self.block.time = unix_now().max(self.block.time);
        }
        let ctx = BlockContext {
            timestamp: Timestamp::new(self.block.time).unwrap_or(Timestamp::MAX),
        };
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
                let row = tx_row(
                    &raw_tx,
                    &fx,
                    seq,
                    self.block.number,
                    position,
                    self.block.time,
                );
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

    fn send(&mut self, item: WriteItem, waiters: Vec<oneshot::Sender<()>>, last_seq: Option<u64>) {
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

    fn flush_group(&mut self) {
        if self.group.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.group);
        let waiters = std::mem::take(&mut self.group_waiters);
        let last_seq = rows.last().map(|r| r.seq);
        self.send(WriteItem::Txs(rows), waiters, last_seq);
    }

    fn seal_block(&mut self) {
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
        self.send(WriteItem::Block(row), Vec::new(), None);
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
        };
        debug_assert_eq!(self.keys.len() as u64, self.state.num_accounts());
    }

    fn maybe_seal_batch(&mut self) {
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
    fn deadline_holds(&mut self, blocks: u64) -> bool {
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
    fn maybe_snapshot(&mut self, meta: NewSnapshot) {
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
fn batch_witness(row: &BatchRow, batch: &OpenBatch) -> BatchWitness {
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

/// The metrics label of a kind: its stable name.
pub fn kind_label(kind: TxKind) -> &'static str {
    kind.name()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(seq: u64) -> AcceptedMeta {
        let mut tx_id = [0u8; 32];
        tx_id[..8].copy_from_slice(&seq.to_le_bytes());
        AcceptedMeta {
            tx_id,
            kind: TxKind::Transfer,
            seq,
            block_number: 1,
            position: 0,
            account_index: None,
            forced: None,
            deposit: None,
        }
    }

    #[test]
    fn the_dedup_set_keeps_the_window_and_everything_not_durable() {
        let mut d = Dedup::new(16);
        // Nothing durable yet: every id stays (a resubmission must wait for durability).
        for seq in 1..=100 {
            d.insert(meta(seq));
            d.prune(0);
        }
        assert_eq!(d.len(), 100);
        // Durable up to 90: the 10 in flight and the window's last durable ids remain.
        d.prune(90);
        assert_eq!(d.len(), 16);
        assert!(d.get(&meta(84).tx_id).is_none());
        assert!(d.get(&meta(85).tx_id).is_some());
        assert!(d.get(&meta(100).tx_id).is_some());
        // Many more, durable as they go: bounded by the window.
        for seq in 101..=100_000 {
            d.insert(meta(seq));
            d.prune(seq);
            assert!(d.len() <= 16);
        }
        assert_eq!(d.get(&meta(100_000).tx_id).map(|m| m.seq), Some(100_000));
        // A window of zero keeps only what is in flight.
        let mut z = Dedup::new(0);
        z.insert(meta(1));
        z.insert(meta(2));
        z.prune(1);
        assert_eq!(z.len(), 1);
        assert!(z.get(&meta(2).tx_id).is_some());
    }
}
