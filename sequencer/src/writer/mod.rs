//! The single writer: the only code that mutates the rollup state.
//!
//! It runs on its own OS thread and takes commands from a bounded queue in arrival order.
//! Signatures were already checked in parallel (`VerifiedTx`), so applying a transaction costs
//! microseconds. Accepted transactions are grouped and handed to the committer; the writer
//! never waits for Postgres, it only hands over a receiver that fires once the group is durable.
//! Blocks are sealed every `block_interval` (computing the root here, once per block), and
//! batches by block count or age.
//!
//! Layout: this file holds the writer's types and its command set; `handle.rs` the
//! handle the services enqueue through; `run.rs` the thread (spawn, the command loop, applying
//! transactions, commit groups); `seal.rs` block and batch sealing; `dedup.rs` the window of
//! recent transaction ids.

mod dedup;
mod handle;
mod run;
mod seal;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::deadlines::OpenDeadlines;
use crate::keys::KeyDirectory;
use state::account::{Account, AccountIndex, Amount, Timestamp};
use state::apply::{CheckError, Effects, Rejection, State, VerifiedTx};
use state::diff::BatchTouches;
use state::pubdata::{DepositStatus, ForcedStatus, PubdataCommitment, WithdrawalsCommitment};
use state::stream::{Stream, StreamSlot};
use state::tx::{Deposit, ForcedWithdraw, Transaction, TxKind};
use state::Digest;
use tokio::sync::{oneshot, watch};

use crate::snapshotter::SnapshotJob;
use rollup_storage::log::{BlockActivity, TxRow, WriteItem};
use rollup_storage::witness::{WitnessRefund, WitnessWithdrawal};

pub use dedup::Dedup;
pub use run::{spawn, tx_row};

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
    /// What one batch of the deployment's circuits can hold: a batch is sealed before a
    /// transaction that could take it past this (`None`: no cap, e.g. no circuits known).
    pub capacity: Option<rollup_prover::capacity::BatchCapacity>,
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
            WriteItem::Block(b) => 128 + 48 * b.activity.len() + 8 * b.activity.entries(),
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
    /// The accounts its transactions name (its `account_blocks` rows, written with it).
    activity: BlockActivity,
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
    /// What the batch's load counts beside its touches and payouts (`Writer::batch_load`).
    counts: LoadCounts,
    opened: Instant,
}

/// The parts of an open batch's load ([`rollup_prover::capacity::BatchLoad`]) that its other
/// fields do not hold, counted as transactions are absorbed.
#[derive(Clone, Copy, Debug, Default)]
struct LoadCounts {
    /// Accounts the batch created (registrations, delegations).
    created: u64,
    /// Deposits and forced withdrawals consumed.
    priority_ops: u64,
    /// Lanes of the batch's split-credit chain.
    split_lanes: u64,
    /// Lanes of the batch's tick-walk tree.
    walk_lanes: u64,
    /// Grouped diff runs of the shares records and allow-lists the batch publishes.
    diff_runs: u64,
    /// Policy bodies the batch publishes (each starts a grouped diff chunk).
    policy_bodies: u64,
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

/// The metrics label of a kind: its stable name.
pub fn kind_label(kind: TxKind) -> &'static str {
    kind.name()
}
