//! The submission pipeline behind `Submit`, `PaymentStream` and x402: admit (limits, decoding,
//! registration work), verify on the verifier pool (a group per job), hand to the writer (a group
//! per command, in request order), then answer once durable (one wait per group).

use std::net::SocketAddr;
use std::time::Instant;

use rayon::prelude::*;
use rollup_proto::v1 as pb;
use state::account::AccountIndex;
use state::apply::Rejection;
use state::apply::VerifiedTx;
use state::tx::Transaction;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tonic::Status;

use crate::convert::{accepted_receipt, rejected_receipt, rejection_receipt};
use crate::limits::Limit;
use crate::writer::{kind_label, Command, Durability, EnqueueError, GroupOutcome, SubmitOutcome};

use super::{row_receipt, with_reason, Inner};

/// A submission after stage one: either verified or already answered.
pub(super) enum Prepared {
    Verified(Box<VerifiedTx>),
    Answered(pb::Receipt),
    /// Refused by a limit before or after verification (limits.rs).
    Limited(Limit, Option<[u8; 32]>),
}

/// A submission after stage two: waiting for the writer, or already answered.
pub(super) enum Enqueued {
    Waiting(oneshot::Receiver<SubmitOutcome>, [u8; 32], Instant),
    Answered(pb::Receipt),
    Limited(Limit, Option<[u8; 32]>),
}

/// A group of submissions after stage two: the answers already known, and the writer's
/// pending answer for the verified ones (their positions in the group and ids).
pub(super) struct EnqueuedGroup {
    answered: Vec<Option<(pb::Receipt, Option<Limit>)>>,
    waiting: Option<GroupWait>,
}

pub(super) struct GroupWait {
    rx: oneshot::Receiver<GroupOutcome>,
    at: Vec<(usize, [u8; 32])>,
    started: Instant,
}

/// The answer when the node stops between accepting a transaction and confirming it durable.
/// It may or may not have reached Postgres (a COMMIT can succeed with its answer lost), so the
/// node never claims it was not accepted: resubmitting the same transaction tells (it is
/// idempotent: a durable one comes back as a duplicate with its original receipt).
pub(super) const OUTCOME_UNKNOWN: &str =
    "the sequencer stopped before confirming the transaction durable; \
     its outcome is unknown: resubmit the same transaction to learn it";

/// Most requests of one stream verified by one job of the verifier pool (`prepare_many`).
pub(super) const VERIFY_GROUP: usize = 64;

/// The receipt of a submission refused by `limit`: `RESOURCE_EXHAUSTED`, the limit's code
/// first in the message (docs/API.md, "Limits").
pub(super) fn limited_receipt(limit: Limit, id: Option<[u8; 32]>) -> pb::Receipt {
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
pub(super) fn limit_status(limit: Limit) -> Status {
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
pub(super) fn signer_of(v: &VerifiedTx) -> Option<u64> {
    let state::tx::Signer::Account(account) = v.tx().signer() else {
        return None;
    };
    let lane = v.tx().nonce().map_or(0, |n| n.lane().get());
    Some(rate_key(account, lane))
}

/// The account-rate key of a signer and the lane of its nonce (SPEC 20.1): each lane of an
/// account has the account rate, so that an account's throughput grows with the lanes its
/// workers use (a node without lanes refuses lanes other than 0 anyway).
pub(super) fn rate_key(account: AccountIndex, lane: u8) -> u64 {
    (u64::from(account.0) << 3) | u64::from(lane & 7)
}

impl Inner {
    /// Stage one up to the signature: outage, decoding, registration work, the peer's rate
    /// and a verification slot (held until the signature is checked).
    pub(super) fn admit(
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
    pub(super) fn judge(
        &self,
        tx: &Transaction,
        verdict: Result<VerifiedTx, Rejection>,
    ) -> Prepared {
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

    pub(super) async fn prepare(
        &self,
        req: pb::SubmitRequest,
        peer: Option<SocketAddr>,
    ) -> Prepared {
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
    pub(super) async fn prepare_many(
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

    pub(super) async fn enqueue(&self, p: Prepared) -> Enqueued {
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
    pub(super) async fn finish(&self, e: Enqueued) -> (pb::Receipt, Option<Limit>) {
        match e {
            Enqueued::Answered(r) => (r, None),
            Enqueued::Limited(l, id) => (limited_receipt(l, id), Some(l)),
            Enqueued::Waiting(rx, id, started) => (self.outcome(rx, id, started).await, None),
        }
    }

    pub(super) async fn outcome(
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
    pub(super) async fn receipt_of(
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

    pub(super) async fn durable_receipt(
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
    pub(super) async fn enqueue_group(&self, prepared: Vec<Prepared>) -> EnqueuedGroup {
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
    pub(super) async fn finish_group(&self, g: EnqueuedGroup) -> Vec<pb::Receipt> {
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
    pub(super) async fn resubmitted(
        &self,
        id: [u8; 32],
        r: &state::apply::Rejection,
    ) -> pb::Receipt {
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

    pub(super) async fn process(
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
pub(super) fn verifier_dropped() -> Prepared {
    Prepared::Answered(rejected_receipt(
        None,
        "INTERNAL",
        "verifier dropped the request".into(),
    ))
}

/// Whether a transaction refused with `r` may be one accepted before: its nonce is used, its
/// key registered, its deposit consumed, or it expired since (expiry is checked first).
pub(super) fn may_be_applied(r: &state::apply::Rejection) -> bool {
    use state::apply::Rejection;
    match r {
        Rejection::BadNonce { expected, got } => got.get() < expected.get(),
        Rejection::BadDepositOrder { expected, got } => got < expected,
        Rejection::DuplicateKey { .. } | Rejection::Expired { .. } => true,
        _ => false,
    }
}
