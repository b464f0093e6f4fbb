//! The rollup.v1 gRPC service.
//!
//! Every submission goes through three stages: decode and verify the signature (in parallel,
//! on the rayon pool), enqueue to the single writer (in request order, so a stream's nonces
//! arrive in order), then wait for the writer's verdict and, if accepted, for durability.
//! On a stream the first and last stages run for up to `max_in_flight` requests at once while
//! receipts still come back in request order.

use crate::writer::AccountView;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use rayon::prelude::*;
use rollup_proto::v1 as pb;
use rollup_proto::v1::rollup_server::Rollup;
use state::account::{AccountIndex, Amount};
use state::apply::Rejection;
use state::apply::VerifiedTx;
use state::tx::Domain;
use state::tx::Transaction;
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit};
use tonic::{Request, Response, Status};

use crate::convert::{accepted_receipt, rejected_receipt, rejection_receipt, RequestError};
use crate::limits::{Limit, TxLimits};
use crate::receipt_watch::AccountWakeups;
use crate::supervisor::Readiness;
use crate::ticks::TickRelay;
use crate::writer::{
    kind_label, unix_now, Command, Durability, EnqueueError, GroupOutcome, ReadError,
    SubmitOutcome, WriterHandle,
};
use rollup_storage::log::TxRow;
use rollup_storage::Store;

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub max_in_flight_per_stream: usize,
    /// How long a submission may wait for room in the writer queue before RESOURCE_EXHAUSTED.
    pub enqueue_patience: Duration,
    pub devnet: bool,
    pub faucet_max: u64,
    /// Money enters through L1 deposits (the bridge runs): the faucet is off.
    pub l1_deposits: bool,
    /// Devnet, experimental: stream transactions are accepted and ticks relayed
    /// (`--experimental-streams`).
    pub experimental_streams: bool,
    /// Accept the passport kinds and nonces of lanes 1 to 7 (devnet only, experimental).
    pub experimental_agents: bool,
}

#[derive(Clone)]
pub struct RollupService {
    inner: Arc<Inner>,
}

struct Inner {
    /// Signature checks run here, not on rayon's global pool: the writer computes block roots
    /// on the global pool, and must not queue behind thousands of pending verifications.
    verifiers: rayon::ThreadPool,
    writer: WriterHandle,
    store: Store,
    /// Wake-ups of `WatchReceipts` streams by account (fed by the committer).
    wakeups: Arc<AccountWakeups>,
    readiness: Arc<Readiness>,
    limits: TxLimits,
    /// The faucet's first credit recorded `deposit_source = faucet` (node.rs).
    faucet_recorded: std::sync::atomic::AtomicBool,
    domain: Domain,
    cfg: ServiceConfig,
    shutdown: watch::Receiver<bool>,
    /// The tick relay, when stream transactions are enabled.
    ticks: Option<Arc<TickRelay>>,
}

/// Ticks of one `SendTicks` call checked together at most (what has arrived, up to this).
const TICK_GROUP: usize = 256;

/// A submission after stage one: either verified or already answered.
enum Prepared {
    Verified(Box<VerifiedTx>),
    Answered(pb::Receipt),
    /// Refused by a limit before or after verification (limits.rs).
    Limited(Limit, Option<[u8; 32]>),
}

/// A submission after stage two: waiting for the writer, or already answered.
enum Enqueued {
    Waiting(oneshot::Receiver<SubmitOutcome>, [u8; 32], Instant),
    Answered(pb::Receipt),
    Limited(Limit, Option<[u8; 32]>),
}

/// A group of submissions after stage two: the answers already known, and the writer's
/// pending answer for the verified ones (their positions in the group and ids).
struct EnqueuedGroup {
    answered: Vec<Option<(pb::Receipt, Option<Limit>)>>,
    waiting: Option<GroupWait>,
}

struct GroupWait {
    rx: oneshot::Receiver<GroupOutcome>,
    at: Vec<(usize, [u8; 32])>,
    started: Instant,
}

/// The answer when the node stops between accepting a transaction and confirming it durable.
/// It may or may not have reached Postgres (a COMMIT can succeed with its answer lost), so the
/// node never claims it was not accepted: resubmitting the same transaction tells (it is
/// idempotent: a durable one comes back as a duplicate with its original receipt).
const OUTCOME_UNKNOWN: &str = "the sequencer stopped before confirming the transaction durable; \
     its outcome is unknown: resubmit the same transaction to learn it";

/// Most requests of one stream verified by one job of the verifier pool (`prepare_many`).
const VERIFY_GROUP: usize = 64;

/// The receipt of a submission refused by `limit`: `RESOURCE_EXHAUSTED`, the limit's code
/// first in the message (docs/API.md, "Limits").
fn limited_receipt(limit: Limit, id: Option<[u8; 32]>) -> pb::Receipt {
    limit.count();
    metrics::counter!("rollup_txs_rejected_total", "reason" => "RESOURCE_EXHAUSTED").increment(1);
    rejected_receipt(id, "RESOURCE_EXHAUSTED", limit.message())
}

/// The gRPC status for a call refused by `limit`, with `reason-code` and `limit` metadata
/// (counted).
pub fn limited_status(limit: Limit) -> Status {
    limit.count();
    limit_status(limit)
}

/// [`limited_status`] for a refusal already counted (by [`limited_receipt`]).
fn limit_status(limit: Limit) -> Status {
    let mut s = with_reason(
        Status::resource_exhausted(format!("RESOURCE_EXHAUSTED: {}", limit.message())),
        "RESOURCE_EXHAUSTED",
    );
    s.metadata_mut().insert(
        "limit",
        tonic::metadata::MetadataValue::from_static(limit.code()),
    );
    s
}

/// The account whose allowance a transaction spends: its signer.
fn signer_of(v: &VerifiedTx) -> Option<u64> {
    let state::tx::Signer::Account(account) = v.tx().signer() else {
        return None;
    };
    let lane = v.tx().nonce().map_or(0, |n| n.lane().get());
    Some(rate_key(account, lane))
}

/// The account-rate key of a signer and the lane of its nonce (SPEC 20.1): each lane of an
/// account has the account rate, so that an account's throughput grows with the lanes its
/// workers use (a node without lanes refuses lanes other than 0 anyway).
fn rate_key(account: AccountIndex, lane: u8) -> u64 {
    (u64::from(account.0) << 3) | u64::from(lane & 7)
}

/// What the service is built from (node.rs wires it).
pub struct ServiceDeps {
    pub writer: WriterHandle,
    pub store: Store,
    pub wakeups: Arc<AccountWakeups>,
    pub readiness: Arc<Readiness>,
    pub limits: TxLimits,
    pub domain: Domain,
    pub cfg: ServiceConfig,
    pub shutdown: watch::Receiver<bool>,
}

impl RollupService {
    pub fn new(d: ServiceDeps) -> anyhow::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let verifiers = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("verify-{i}"))
            .build()?;
        let ticks = d
            .cfg
            .experimental_streams
            .then(|| Arc::new(TickRelay::new(d.writer.clone(), d.cfg.enqueue_patience)));
        Ok(RollupService {
            inner: Arc::new(Inner {
                ticks,
                verifiers,
                writer: d.writer,
                store: d.store,
                wakeups: d.wakeups,
                readiness: d.readiness,
                limits: d.limits,
                faucet_recorded: std::sync::atomic::AtomicBool::new(false),
                domain: d.domain,
                cfg: d.cfg,
                shutdown: d.shutdown,
            }),
        })
    }
}

impl Inner {
    /// The request as a transaction: every enabled kind, the stream kinds, the split and the
    /// revenue-share kinds on a node with `--experimental-streams`, the passport kinds on one
    /// with `--experimental-agents`.
    fn decode(&self, req: &pb::SubmitRequest) -> Result<Transaction, RequestError> {
        let tx = rollup_proto::convert::any_transaction_from_request(req)?;
        let kind = tx.kind();
        let allowed = kind.is_enabled()
            || match tx {
                Transaction::Passport(_) => self.cfg.experimental_agents,
                Transaction::StreamOpen(_)
                | Transaction::StreamSettle(_)
                | Transaction::StreamClose(_)
                | Transaction::Split(_)
                | Transaction::RegisterShares(_)
                | Transaction::Distribute(_) => self.cfg.experimental_streams,
                _ => false,
            };
        if !allowed {
            return Err(RequestError::KindNotEnabled(kind));
        }
        Ok(tx)
    }

    /// An account with its agent fields as of durable state, or its status (`UNKNOWN_ACCOUNT`,
    /// a full writer queue, an unavailable writer).
    async fn account_view(&self, index: AccountIndex) -> Result<AccountView, Status> {
        let view = self
            .writer
            .durable_account_view(index, self.cfg.enqueue_patience)
            .await
            .map_err(|e| match e {
                ReadError::Enqueue(EnqueueError::Full) => limited_status(Limit::WriterQueue),
                _ => with_reason(
                    Status::unavailable(format!("UNAVAILABLE: {e}")),
                    "UNAVAILABLE",
                ),
            })?;
        view.ok_or_else(|| {
            with_reason(
                Status::not_found(format!("UNKNOWN_ACCOUNT: account {index} does not exist")),
                "UNKNOWN_ACCOUNT",
            )
        })
    }

    /// The tick relay, or UNIMPLEMENTED (STREAMS_NOT_ENABLED).
    fn relay(&self) -> Result<&Arc<TickRelay>, Status> {
        self.ticks.as_ref().ok_or_else(|| {
            with_reason(
                Status::unimplemented(
                    "STREAMS_NOT_ENABLED: this node accepts no payment streams (a devnet node \
                     started with --experimental-streams relays ticks)",
                ),
                "STREAMS_NOT_ENABLED",
            )
        })
    }
}

/// The verdict on a transaction checked without applying it ([`RollupService::check`]).
#[derive(Debug)]
pub enum Checked {
    /// It would be accepted now (payer as the signature says).
    WouldAccept,
    /// Applying it now would reject it.
    Rejected(state::apply::Rejection),
    /// Refused by a limit before any work.
    Limited(Limit),
    /// The node cannot tell now (busy, stopping, database outage).
    Unavailable(String),
}

impl RollupService {
    /// Submits `req` as `Submit` would, and waits for the receipt (durable when accepted);
    /// the limit that refused it, if one did (x402 `/settle`).
    pub async fn submit_request(
        &self,
        req: pb::SubmitRequest,
        peer: Option<SocketAddr>,
    ) -> (pb::Receipt, Option<Limit>) {
        self.inner.process(req, peer).await
    }

    /// Whether `tx` would be accepted now, applying nothing (x402 `/verify`): the peer's rate
    /// and a verification slot, the signature on the verifier pool, then the rules against
    /// the writer's state. The account rate is not spent: a check is not a submission.
    pub async fn check(&self, tx: state::tx::Transaction, peer: Option<SocketAddr>) -> Checked {
        let inner = &self.inner;
        if inner.readiness.is_db_outage() {
            return Checked::Unavailable("DATABASE_UNAVAILABLE: Postgres does not answer".into());
        }
        let slot = match inner.limits.before_verify(peer) {
            Ok(slot) => slot,
            Err(limit) => {
                limit.count();
                return Checked::Limited(limit);
            }
        };
        let (tx_out, rx) = oneshot::channel();
        let keys = inner.writer.keys.clone();
        let domain = inner.domain;
        inner.verifiers.spawn(move || {
            let _ = tx_out.send(VerifiedTx::verify(tx, &domain, |i| keys.get(i)));
            drop(slot);
        });
        let verified = match rx.await {
            Ok(Ok(v)) => v,
            Ok(Err(r)) => return Checked::Rejected(r),
            Err(_) => return Checked::Unavailable("verifier dropped the request".into()),
        };
        match inner
            .writer
            .check(verified, inner.cfg.enqueue_patience)
            .await
        {
            Ok(Ok(())) => Checked::WouldAccept,
            Ok(Err(state::apply::CheckError::Rejected(r))) => Checked::Rejected(r),
            Ok(Err(e @ state::apply::CheckError::NotCheckable)) => {
                Checked::Unavailable(e.to_string())
            }
            Err(ReadError::Enqueue(EnqueueError::Full)) => Checked::Limited(Limit::WriterQueue),
            Err(e) => Checked::Unavailable(e.to_string()),
        }
    }
}

impl Inner {
    /// Stage one up to the signature: outage, decoding, registration work, the peer's rate
    /// and a verification slot (held until the signature is checked).
    fn admit(
        &self,
        req: pb::SubmitRequest,
        peer: Option<SocketAddr>,
    ) -> Result<(Transaction, OwnedSemaphorePermit), Prepared> {
        // While Postgres is away nothing can become durable: answer at once instead of
        // verifying and queueing work that would only wait (and hold memory).
        if self.readiness.is_db_outage() {
            metrics::counter!("rollup_txs_rejected_total", "reason" => "DATABASE_UNAVAILABLE")
                .increment(1);
            return Err(Prepared::Answered(rejected_receipt(
                None,
                "UNAVAILABLE",
                "DATABASE_UNAVAILABLE: Postgres does not answer; this submission was not \
                 processed (an earlier submission of the same transaction may still complete); \
                 retry later"
                    .into(),
            )));
        }
        let work_nonce = req.work_nonce;
        let tx = match self.decode(&req) {
            Ok(tx) => tx,
            Err(e) => {
                metrics::counter!("rollup_txs_rejected_total", "reason" => e.code()).increment(1);
                return Err(Prepared::Answered(rejected_receipt(
                    None,
                    e.code(),
                    e.to_string(),
                )));
            }
        };
        // A Register's proof of work (one hash), before the peer's rate and any signature work:
        // an account must cost its creator more than its refusal costs the node.
        if let Err(limit) = self.limits.registration_work(&tx, &self.domain, work_nonce) {
            return Err(Prepared::Limited(limit, None));
        }
        // The peer's rate and a verification slot, before any signature work.
        match self.limits.before_verify(peer) {
            Ok(slot) => Ok((tx, slot)),
            Err(limit) => Err(Prepared::Limited(limit, None)),
        }
    }

    /// Stage one after the signature check: the signer's rate, or the rejection's receipt.
    fn judge(&self, tx: &Transaction, verdict: Result<VerifiedTx, Rejection>) -> Prepared {
        match verdict {
            Ok(v) => match self.limits.after_verify(signer_of(&v)) {
                Ok(()) => Prepared::Verified(Box::new(v)),
                Err(limit) => Prepared::Limited(limit, Some(v.id().0.to_bytes())),
            },
            Err(r) => {
                metrics::counter!("rollup_txs_rejected_total", "reason" => r.code()).increment(1);
                Prepared::Answered(rejection_receipt(
                    tx.message_hash(&self.domain).0.to_bytes(),
                    &r,
                ))
            }
        }
    }

    async fn prepare(&self, req: pb::SubmitRequest, peer: Option<SocketAddr>) -> Prepared {
        self.prepare_many(vec![req], peer)
            .await
            .pop()
            .unwrap_or_else(verifier_dropped)
    }

    /// Stage one for several requests of one stream, in order: each is admitted on its own,
    /// then the admitted ones are verified by one job on the verifier pool (spread over its
    /// threads) that answers once. One hand-off and one wake-up per group instead of one per
    /// transaction: at saturation those cost the verifier threads ~8% of their time in
    /// reschedule interrupts (docs/BENCHMARKS.md, issue 10).
    async fn prepare_many(
        &self,
        reqs: Vec<pb::SubmitRequest>,
        peer: Option<SocketAddr>,
    ) -> Vec<Prepared> {
        let mut out: Vec<Option<Prepared>> = Vec::with_capacity(reqs.len());
        let mut work = Vec::with_capacity(reqs.len());
        for req in reqs {
            match self.admit(req, peer) {
                Ok((tx, slot)) => {
                    work.push((out.len(), tx, slot));
                    out.push(None);
                }
                Err(answer) => out.push(Some(answer)),
            }
        }
        if !work.is_empty() {
            // A settlement's walk (up to 2^16 hashes) runs here, on the verifier pool, for the
            // stream its slot holds now, so that the writer only compares a digest (a stale
            // guess is ignored by the state, which then walks itself).
            let mut opened_at = Vec::with_capacity(work.len());
            for (_, tx, _) in &work {
                opened_at.push(match tx {
                    Transaction::StreamSettle(t) => self
                        .writer
                        .stream(
                            t.body.terms.payer,
                            t.body.terms.slot,
                            self.cfg.enqueue_patience,
                        )
                        .await
                        .ok()
                        .flatten()
                        .map(|s| s.id.opened_at),
                    _ => None,
                });
            }
            let (tx_out, rx) = oneshot::channel();
            let keys = self.writer.keys.clone();
            let domain = self.domain;
            self.verifiers.spawn(move || {
                let verdicts: Vec<_> =
                    work.into_par_iter()
                        .zip(opened_at)
                        .with_max_len(8)
                        .map(|((at, tx, slot), opened_at)| {
                            let verdict = VerifiedTx::verify(tx.clone(), &domain, |i| keys.get(i))
                                .map(|v| match opened_at {
                                    Some(n) => v.with_walk(n),
                                    None => v,
                                });
                            drop(slot);
                            (at, tx, verdict)
                        })
                        .collect();
                let _ = tx_out.send(verdicts);
            });
            // A dropped job leaves its requests unanswered here; they get INTERNAL below.
            if let Ok(verdicts) = rx.await {
                for (at, tx, verdict) in verdicts {
                    out[at] = Some(self.judge(&tx, verdict));
                }
            }
        }
        out.into_iter()
            .map(|p| p.unwrap_or_else(verifier_dropped))
            .collect()
    }

    async fn enqueue(&self, p: Prepared) -> Enqueued {
        let v = match p {
            Prepared::Answered(r) => return Enqueued::Answered(r),
            Prepared::Limited(l, id) => return Enqueued::Limited(l, id),
            Prepared::Verified(v) => v,
        };
        let id = v.id().0.to_bytes();
        let (reply, rx) = oneshot::channel();
        match self
            .writer
            .enqueue(Command::Submit { tx: v, reply }, self.cfg.enqueue_patience)
            .await
        {
            Ok(()) => Enqueued::Waiting(rx, id, Instant::now()),
            Err(EnqueueError::Full) => Enqueued::Limited(Limit::WriterQueue, Some(id)),
            Err(EnqueueError::Closed) => Enqueued::Answered(rejected_receipt(
                Some(id),
                "UNAVAILABLE",
                "the sequencer is shutting down".into(),
            )),
        }
    }

    /// The receipt, and the limit that refused the submission if one did.
    async fn finish(&self, e: Enqueued) -> (pb::Receipt, Option<Limit>) {
        match e {
            Enqueued::Answered(r) => (r, None),
            Enqueued::Limited(l, id) => (limited_receipt(l, id), Some(l)),
            Enqueued::Waiting(rx, id, started) => (self.outcome(rx, id, started).await, None),
        }
    }

    async fn outcome(
        &self,
        rx: oneshot::Receiver<SubmitOutcome>,
        id: [u8; 32],
        started: Instant,
    ) -> pb::Receipt {
        match rx.await {
            Ok(o) => self.receipt_of(o, id, started, true).await,
            Err(_) => rejected_receipt(Some(id), "UNAVAILABLE", OUTCOME_UNKNOWN.into()),
        }
    }

    /// The receipt of the writer's outcome for `id`, once durable if accepted. `group_durable`:
    /// whether the group of a [`Durability::WithGroup`] outcome became durable.
    async fn receipt_of(
        &self,
        outcome: SubmitOutcome,
        id: [u8; 32],
        started: Instant,
        group_durable: bool,
    ) -> pb::Receipt {
        match outcome {
            SubmitOutcome::Rejected(r) if may_be_applied(&r) => self.resubmitted(id, &r).await,
            SubmitOutcome::Rejected(r) => rejection_receipt(id, &r),
            SubmitOutcome::Accepted { meta, durable } => {
                self.durable_receipt(meta, durable, false, id, started, group_durable)
                    .await
            }
            SubmitOutcome::Duplicate { meta, durable } => {
                self.durable_receipt(meta, durable, true, id, started, group_durable)
                    .await
            }
        }
    }

    async fn durable_receipt(
        &self,
        meta: crate::writer::AcceptedMeta,
        durable: Durability,
        duplicate: bool,
        id: [u8; 32],
        started: Instant,
        group_durable: bool,
    ) -> pb::Receipt {
        let ok = match durable {
            Durability::WithGroup => group_durable,
            other => other.wait().await,
        };
        if !ok {
            return rejected_receipt(Some(id), "UNAVAILABLE", OUTCOME_UNKNOWN.into());
        }
        metrics::histogram!("rollup_receipt_latency_seconds", "kind" => kind_label(meta.kind))
            .record(started.elapsed().as_secs_f64());
        accepted_receipt(&meta, duplicate)
    }

    /// Stage two for one group of a stream, in order: the verified transactions go to the
    /// writer as one command (applied in request order, answered once).
    async fn enqueue_group(&self, prepared: Vec<Prepared>) -> EnqueuedGroup {
        let mut answered = Vec::with_capacity(prepared.len());
        let mut txs = Vec::new();
        let mut at = Vec::new();
        for (i, p) in prepared.into_iter().enumerate() {
            match p {
                Prepared::Answered(r) => answered.push(Some((r, None))),
                Prepared::Limited(l, id) => answered.push(Some((limited_receipt(l, id), Some(l)))),
                Prepared::Verified(v) => {
                    at.push((i, v.id().0.to_bytes()));
                    txs.push(*v);
                    answered.push(None);
                }
            }
        }
        if txs.is_empty() {
            return EnqueuedGroup {
                answered,
                waiting: None,
            };
        }
        let (reply, rx) = oneshot::channel();
        match self
            .writer
            .enqueue(
                Command::SubmitGroup { txs, reply },
                self.cfg.enqueue_patience,
            )
            .await
        {
            Ok(()) => EnqueuedGroup {
                answered,
                waiting: Some(GroupWait {
                    rx,
                    at,
                    started: Instant::now(),
                }),
            },
            Err(e) => {
                for (i, id) in at {
                    answered[i] = Some(match e {
                        EnqueueError::Full => (
                            limited_receipt(Limit::WriterQueue, Some(id)),
                            Some(Limit::WriterQueue),
                        ),
                        EnqueueError::Closed => (
                            rejected_receipt(
                                Some(id),
                                "UNAVAILABLE",
                                "the sequencer is shutting down".into(),
                            ),
                            None,
                        ),
                    });
                }
                EnqueuedGroup {
                    answered,
                    waiting: None,
                }
            }
        }
    }

    /// The receipts of a group, in order, once its accepted transactions are durable (one
    /// wait for all of them).
    async fn finish_group(&self, g: EnqueuedGroup) -> Vec<pb::Receipt> {
        let EnqueuedGroup {
            mut answered,
            waiting,
        } = g;
        if let Some(w) = waiting {
            match w.rx.await {
                Ok(GroupOutcome { outcomes, durable }) => {
                    let group_durable = match durable {
                        Some(rx) => rx.await.is_ok(),
                        None => true,
                    };
                    for (o, (i, id)) in outcomes.into_iter().zip(w.at) {
                        let r = self.receipt_of(o, id, w.started, group_durable).await;
                        answered[i] = Some((r, None));
                    }
                }
                Err(_) => {
                    for (i, id) in w.at {
                        answered[i] = Some((
                            rejected_receipt(Some(id), "UNAVAILABLE", OUTCOME_UNKNOWN.into()),
                            None,
                        ));
                    }
                }
            }
        }
        answered
            .into_iter()
            .map(|a| {
                a.map(|(r, _)| r).unwrap_or_else(|| {
                    rejected_receipt(None, "INTERNAL", "the writer gave no outcome".into())
                })
            })
            .collect()
    }

    /// A refusal that an already accepted transaction also gets: the writer only remembers
    /// recent ids, so an older resubmission is found in Postgres and answered with its
    /// original receipt (`duplicate`, finality `accepted` as the first answer said).
    async fn resubmitted(&self, id: [u8; 32], r: &state::apply::Rejection) -> pb::Receipt {
        match self.store.log().get_tx(&id).await {
            Ok(Some(row)) => pb::Receipt {
                finality: pb::Finality::Accepted as i32,
                duplicate: true,
                ..row_receipt(&row)
            },
            Ok(None) => rejection_receipt(id, r),
            Err(e) => rejected_receipt(
                Some(id),
                "UNAVAILABLE",
                format!(
                    "could not check whether this transaction was accepted before ({e}); \
                     resubmit it to learn its outcome"
                ),
            ),
        }
    }

    /// Records that this database's deposits come from the faucet (once per process).
    async fn record_faucet_source(&self) -> Result<(), Status> {
        use std::sync::atomic::Ordering;
        if self.faucet_recorded.load(Ordering::Acquire) {
            return Ok(());
        }
        let stored = self
            .store
            .meta()
            .init(crate::node::DEPOSIT_SOURCE, "faucet")
            .await
            .map_err(|e| Status::unavailable(format!("UNAVAILABLE: {e}")))?;
        if stored != "faucet" {
            return Err(Status::failed_precondition(
                "FAUCET_DISABLED: this database credits L1 deposits",
            ));
        }
        self.faucet_recorded.store(true, Ordering::Release);
        Ok(())
    }

    async fn process(
        &self,
        req: pb::SubmitRequest,
        peer: Option<SocketAddr>,
    ) -> (pb::Receipt, Option<Limit>) {
        let p = self.prepare(req, peer).await;
        let e = self.enqueue(p).await;
        self.finish(e).await
    }
}

/// The answer when the verifier pool dropped a job (it only does when shutting down).
fn verifier_dropped() -> Prepared {
    Prepared::Answered(rejected_receipt(
        None,
        "INTERNAL",
        "verifier dropped the request".into(),
    ))
}

/// Whether a transaction refused with `r` may be one accepted before: its nonce is used, its
/// key registered, its deposit consumed, or it expired since (expiry is checked first).
fn may_be_applied(r: &state::apply::Rejection) -> bool {
    use state::apply::Rejection;
    match r {
        Rejection::BadNonce { expected, got } => got.get() < expected.get(),
        Rejection::BadDepositOrder { expected, got } => got < expected,
        Rejection::DuplicateKey { .. } | Rejection::Expired { .. } => true,
        _ => false,
    }
}

fn row_receipt(row: &TxRow) -> pb::Receipt {
    pb::Receipt {
        tx_id: row.tx_id.to_vec(),
        status: pb::TxStatus::Accepted as i32,
        reason_code: String::new(),
        message: String::new(),
        block_number: row.block_number,
        position: row.position,
        finality: finality_pb(row.finality()) as i32,
        seq: row.seq,
        account_index: row.account_index,
        duplicate: false,
    }
}

fn finality_pb(f: rollup_storage::Finality) -> pb::Finality {
    use rollup_storage::Finality;
    match f {
        Finality::Accepted => pb::Finality::Accepted,
        Finality::Proven => pb::Finality::Proven,
        Finality::Committed => pb::Finality::Committed,
        Finality::Finalized => pb::Finality::Finalized,
    }
}

/// Attaches the stable reason code as `reason-code` metadata (docs/API.md).
pub fn with_reason(mut status: Status, code: &'static str) -> Status {
    status.metadata_mut().insert(
        "reason-code",
        tonic::metadata::MetadataValue::from_static(code),
    );
    status
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

type ReceiptStream = Pin<Box<dyn Stream<Item = Result<pb::Receipt, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Rollup for RollupService {
    type PaymentStreamStream = ReceiptStream;
    type WatchReceiptsStream = ReceiptStream;
    type SendTicksStream = Pin<Box<dyn Stream<Item = Result<pb::TickAck, Status>> + Send>>;
    type WatchTicksStream = Pin<Box<dyn Stream<Item = Result<pb::Tick, Status>> + Send>>;

    async fn send_ticks(
        &self,
        request: Request<tonic::Streaming<pb::Tick>>,
    ) -> Result<Response<Self::SendTicksStream>, Status> {
        let relay = self.inner.relay()?.clone();
        let rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let mut shutdown = self.inner.shutdown.clone();
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        // In order, one acknowledgement per tick; a malformed frame ends the stream with the
        // decoder's status (after the acknowledgements of the ticks before it). Whatever has
        // arrived is checked as one group and its acknowledgements leave together, so a busy
        // call costs one wake-up per group rather than per tick.
        let out = request
            .into_inner()
            .take_until(stop)
            .ready_chunks(TICK_GROUP)
            .then(move |items| {
                let relay = relay.clone();
                async move {
                    // The relay's own share of a tick's acknowledgement: from the group's
                    // arrival to its acknowledgements (what gRPC and the network add is not
                    // in it).
                    let started = std::time::Instant::now();
                    let mut acks = Vec::with_capacity(items.len());
                    for item in items {
                        let t = match item {
                            Ok(t) => t,
                            Err(status) => {
                                acks.push(Err(status));
                                break;
                            }
                        };
                        let verdict = relay.relay(&t).await;
                        acks.push(Ok(pb::TickAck {
                            payer: t.payer,
                            slot: t.slot,
                            k: t.k,
                            accepted: verdict.is_ok(),
                            reason: verdict
                                .err()
                                .map(|e| e.code().to_string())
                                .unwrap_or_default(),
                        }));
                    }
                    metrics::histogram!("rollup_tick_group_seconds")
                        .record(started.elapsed().as_secs_f64());
                    metrics::histogram!("rollup_tick_group_size").record(acks.len() as f64);
                    futures::stream::iter(acks)
                }
            })
            .flatten()
            .map(move |r| {
                let _in_flight = &rpc;
                r
            });
        Ok(Response::new(Box::pin(out)))
    }

    async fn watch_ticks(
        &self,
        request: Request<pb::WatchTicksRequest>,
    ) -> Result<Response<Self::WatchTicksStream>, Status> {
        let relay = self.inner.relay()?;
        let rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let rx = relay.watch(AccountIndex(request.into_inner().payee));
        let mut shutdown = self.inner.shutdown.clone();
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        // A watcher that lags skips what it missed (only the latest tick settles).
        let out = tokio_stream::wrappers::BroadcastStream::new(rx)
            .filter_map(|r| async move { r.ok().map(Ok) })
            .take_until(stop)
            .map(move |r| {
                let _in_flight = &rpc;
                r
            });
        Ok(Response::new(Box::pin(out)))
    }

    async fn get_stream(
        &self,
        request: Request<pb::GetStreamRequest>,
    ) -> Result<Response<pb::StreamInfo>, Status> {
        let relay = self.inner.relay()?;
        let _rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let pb::GetStreamRequest { payer, slot } = request.into_inner();
        let slot = u16::try_from(slot).map_err(|_| {
            with_reason(
                Status::invalid_argument(format!("OUT_OF_RANGE: slot {slot} is above 65535")),
                "OUT_OF_RANGE",
            )
        })?;
        let found = relay
            .lookup(AccountIndex(payer), state::stream::StreamSlot(slot))
            .await
            .map_err(|e| with_reason(Status::unavailable(format!("UNAVAILABLE: {e}")), e.code()))?;
        let (stream, relayed) = found.ok_or_else(|| {
            with_reason(
                Status::not_found(format!(
                    "UNKNOWN_STREAM: slot {slot} of account {payer} holds no open stream"
                )),
                "UNKNOWN_STREAM",
            )
        })?;
        Ok(Response::new(pb::StreamInfo {
            payer,
            slot: u32::from(slot),
            opened_at: stream.id.opened_at.get(),
            payee: stream.payee.0,
            price: stream.price.get(),
            max_ticks: stream.max_ticks.get(),
            expiry: stream.expiry.get(),
            settled: stream.settled.get(),
            head: stream.head.to_bytes().to_vec(),
            escrow: stream.escrow().get(),
            relayed: relayed.as_ref().map(rollup_proto::convert::tick_message),
        }))
    }

    async fn payment_stream(
        &self,
        request: Request<tonic::Streaming<pb::SubmitRequest>>,
    ) -> Result<Response<Self::PaymentStreamStream>, Status> {
        let peer = request.remote_addr();
        // The stream counts as one call in flight for its peer until it ends.
        let rpc = self.inner.limits.enter_rpc(peer).map_err(limited_status)?;
        let inbound = request.into_inner();
        let n = self.inner.cfg.max_in_flight_per_stream.max(1);
        let mut shutdown = self.inner.shutdown.clone();
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        // A malformed frame ends the stream with the decoder's status (INVALID_ARGUMENT,
        // OUT_OF_RANGE for an oversized message); everything decodable gets a receipt.
        let (i1, i2, i3) = (self.inner.clone(), self.inner.clone(), self.inner.clone());
        let chunks = n.div_ceil(VERIFY_GROUP).max(1);
        let out = inbound
            .take_until(stop)
            // Whatever has arrived, up to a group: one verifier job per group (prepare_many),
            // one writer command (enqueue_group, in order: a stream's transactions are applied
            // in the order sent) and one durability wait (finish_group). A decoding error ends
            // the stream after the requests before it.
            .ready_chunks(VERIFY_GROUP)
            .map(move |items| {
                let inner = i1.clone();
                async move {
                    let mut reqs = Vec::with_capacity(items.len());
                    let mut end = None;
                    for item in items {
                        match item {
                            Ok(req) => reqs.push(req),
                            Err(status) => {
                                end = Some(status);
                                break;
                            }
                        }
                    }
                    (inner.prepare_many(reqs, peer).await, end)
                }
            })
            .buffered(chunks)
            .then(move |(prepared, end)| {
                let inner = i2.clone();
                async move { (inner.enqueue_group(prepared).await, end) }
            })
            .map(move |(group, end)| {
                let inner = i3.clone();
                async move {
                    let mut out: Vec<Result<pb::Receipt, Status>> = inner
                        .finish_group(group)
                        .await
                        .into_iter()
                        .map(Ok)
                        .collect();
                    out.extend(end.map(Err));
                    futures::stream::iter(out)
                }
            })
            .buffered(chunks)
            .flatten()
            .map(move |r| {
                let _in_flight = &rpc;
                r
            });
        Ok(Response::new(Box::pin(out)))
    }

    async fn submit(
        &self,
        request: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let peer = request.remote_addr();
        let _rpc = self.inner.limits.enter_rpc(peer).map_err(limited_status)?;
        let req = request.into_inner();
        // Undecodable input is an invalid argument of the call itself; rule violations are
        // answered with a REJECTED receipt carrying the reason code.
        if let Err(e) = self.inner.decode(&req) {
            metrics::counter!("rollup_txs_rejected_total", "reason" => e.code()).increment(1);
            let mut status = Status::invalid_argument(format!("{}: {e}", e.code()));
            if let Ok(v) = e.code().parse() {
                status.metadata_mut().insert("reason-code", v);
            }
            return Err(status);
        }
        let (receipt, limit) = self.inner.process(req, peer).await;
        if let Some(limit) = limit {
            // Counted once, by `limited_receipt`.
            return Err(limit_status(limit));
        }
        match receipt.reason_code.as_str() {
            "UNAVAILABLE" => Err(with_reason(
                Status::unavailable(receipt.message),
                "UNAVAILABLE",
            )),
            _ => Ok(Response::new(receipt)),
        }
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let _rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let index = AccountIndex(request.into_inner().index);
        let view = self.inner.account_view(index).await?;
        let acc = &view.account;
        let lane_nonces = if self.inner.cfg.experimental_agents {
            state::lanes::Lane::all()
                .skip(1)
                .map(|l| view.lanes.next(l, acc.nonce).get())
                .collect()
        } else {
            Vec::new()
        };
        let now = crate::writer::now_timestamp();
        Ok(Response::new(pb::Account {
            index: index.0,
            public_key: acc.pubkey.to_bytes().to_vec(),
            balance: acc.balance.get(),
            nonce: acc.nonce.get(),
            lane_nonces,
            passport: view
                .passport
                .as_ref()
                .map(|p| rollup_proto::convert::passport_message(index, p, now)),
            agents: view.agents.iter().map(|a| a.0).collect(),
            shares: view.shares.as_ref().map_or_else(Vec::new, |s| {
                s.parts()
                    .iter()
                    .map(|&(payee, bps)| pb::Share {
                        payee: payee.0,
                        bps: u32::from(bps),
                    })
                    .collect()
            }),
        }))
    }

    async fn get_passport(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Passport>, Status> {
        let _rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let index = AccountIndex(request.into_inner().index);
        let view = self.inner.account_view(index).await?;
        let passport = view.passport.as_ref().ok_or_else(|| {
            with_reason(
                Status::not_found(format!("NOT_AN_AGENT: account {index} is not an agent")),
                "NOT_AN_AGENT",
            )
        })?;
        let now = crate::writer::now_timestamp();
        Ok(Response::new(rollup_proto::convert::passport_message(
            index, passport, now,
        )))
    }

    async fn get_receipt(
        &self,
        request: Request<pb::GetReceiptRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let _rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let id: [u8; 32] = request
            .into_inner()
            .tx_id
            .as_slice()
            .try_into()
            .map_err(|_| Status::invalid_argument("MALFORMED: tx_id must be 32 bytes"))?;
        let row = self.inner.store.log().get_tx(&id).await.map_err(internal)?;
        let row = row.ok_or_else(|| {
            Status::not_found("UNKNOWN_TRANSACTION: no accepted transaction has this id")
        })?;
        Ok(Response::new(row_receipt(&row)))
    }

    async fn watch_receipts(
        &self,
        request: Request<pb::WatchReceiptsRequest>,
    ) -> Result<Response<Self::WatchReceiptsStream>, Status> {
        let rpc = self
            .inner
            .limits
            .enter_rpc(request.remote_addr())
            .map_err(limited_status)?;
        let req = request.into_inner();
        let inner = self.inner.clone();
        let start = req
            .from_seq
            .unwrap_or_else(|| *inner.writer.durable.borrow());
        // Subscribe before the first query (receipt_watch.rs): a commit that lands in between
        // wakes the stream, one that landed before is in the query's answer.
        let wake = inner.wakeups.subscribe(req.account);
        let stream = receipt_stream(
            inner.store.clone(),
            req.account,
            start,
            wake,
            inner.shutdown.clone(),
        )
        .map(move |r| {
            let _in_flight = &rpc;
            r
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::Status>, Status> {
        let head = self.inner.writer.head();
        Ok(Response::new(pb::Status {
            chain_id: self.inner.domain.chain_id,
            rollup_address: self.inner.domain.rollup.to_vec(),
            head_block: head.block,
            head_state_root: head.root.to_bytes().to_vec(),
            accepted_txs: head.accepted,
            num_accounts: head.num_accounts,
            devnet: self.inner.cfg.devnet,
            next_deposit_seq: head.next_deposit_seq,
            now: unix_now(),
            registration_work_bits: self.inner.limits.registration_work_bits,
        }))
    }

    async fn faucet(
        &self,
        request: Request<pb::FaucetRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        if !self.inner.cfg.devnet {
            return Err(Status::permission_denied(
                "FAUCET_DISABLED: the faucet only runs on a --devnet node",
            ));
        }
        if self.inner.cfg.l1_deposits {
            return Err(Status::failed_precondition(
                "FAUCET_DISABLED: this node credits L1 deposits (money enters through the L1 \
                 Rollup contract: `Rollup.deposit`); the faucet is off",
            ));
        }
        let req = request.into_inner();
        if req.amount == 0 || req.amount > self.inner.cfg.faucet_max {
            return Err(Status::invalid_argument(format!(
                "VALUE_OUT_OF_RANGE: faucet amount must be in 1..={}",
                self.inner.cfg.faucet_max
            )));
        }
        let amount = Amount::new(req.amount)
            .ok_or_else(|| Status::invalid_argument("VALUE_OUT_OF_RANGE"))?;
        self.inner.record_faucet_source().await?;
        let (reply, rx) = oneshot::channel();
        self.inner
            .writer
            .enqueue(
                Command::Faucet {
                    to: AccountIndex(req.account),
                    amount,
                    reply,
                },
                self.inner.cfg.enqueue_patience,
            )
            .await
            .map_err(|e| Status::resource_exhausted(e.to_string()))?;
        let (receipt, _) = self
            .inner
            .finish(Enqueued::Waiting(rx, [0u8; 32], Instant::now()))
            .await;
        Ok(Response::new(receipt))
    }
}

/// Streams durable receipts touching `account` with seq > `after`: one query at start, then
/// one per wake-up, and a wake-up only comes when a durable commit touched the account. Ends at
/// shutdown or on a database error (with its status).
fn receipt_stream(
    store: Store,
    account: u32,
    after: u64,
    wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<pb::Receipt, Status>> + Send + 'static {
    struct Cursor {
        store: Store,
        after: u64,
        buf: std::collections::VecDeque<pb::Receipt>,
        wake: watch::Receiver<u64>,
        shutdown: watch::Receiver<bool>,
        /// Query before waiting (true at start and after a full page).
        query_now: bool,
    }
    const PAGE: i64 = 1000;
    let cursor = Cursor {
        store,
        after,
        buf: std::collections::VecDeque::new(),
        wake,
        shutdown,
        query_now: true,
    };
    futures::stream::unfold(Some(cursor), move |c| async move {
        let mut c = c?;
        loop {
            if let Some(r) = c.buf.pop_front() {
                return Some((Ok(r), Some(c)));
            }
            if !c.query_now {
                tokio::select! {
                    changed = c.wake.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                    _ = c.shutdown.wait_for(|s| *s) => return None,
                }
            }
            metrics::counter!("rollup_watch_queries_total").increment(1);
            match c.store.log().txs_for_account(account, c.after, PAGE).await {
                Ok(rows) => {
                    c.query_now = rows.len() as i64 == PAGE;
                    if let Some(last) = rows.last() {
                        c.after = last.seq;
                    }
                    c.buf.extend(rows.iter().map(row_receipt));
                }
                Err(e) => return Some((Err(internal(e)), None)),
            }
        }
    })
}
