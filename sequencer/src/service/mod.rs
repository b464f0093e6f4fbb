//! The rollup.v1 gRPC service.
//!
//! Every submission goes through three stages: decode and verify the signature (in parallel,
//! on the rayon pool), enqueue to the single writer (in request order, so a stream's nonces
//! arrive in order), then wait for the writer's verdict and, if accepted, for durability.
//! On a stream the first and last stages run for up to `max_in_flight` requests at once while
//! receipts still come back in request order, and a group of requests that arrived together
//! is one verifier job, one writer command and one durability wait.
//!
//! Layout: this file holds the service's parts and its non-gRPC API (x402's `submit_request`
//! and `check`); `submit.rs` the submission pipeline; `grpc.rs` the gRPC methods.

mod grpc;
mod submit;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rollup_proto::v1 as pb;
use state::account::AccountIndex;
use state::apply::VerifiedTx;
use state::tx::Domain;
use state::tx::Transaction;
use tokio::sync::{oneshot, watch};
use tonic::Status;

use crate::convert::RequestError;
use crate::limits::{Limit, TxLimits};
use crate::receipt_watch::AccountWakeups;
use crate::supervisor::Readiness;
use crate::ticks::TickRelay;
use crate::unsealed::UnsealedActivity;
use crate::writer::{AccountView, EnqueueError, ReadError, WriterHandle};
use rollup_prover::capacity::BatchLoad;
use rollup_prover::circuits::payment::PolicyChecks;
use rollup_prover::pins::FinalId;
use rollup_storage::log::TxRow;
use rollup_storage::Store;

pub use submit::limited_status;

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
    /// Accept the passport kinds, allow-lists included, and nonces of lanes 1 to 7 (devnet
    /// only, experimental).
    pub experimental_agents: bool,
    /// Accept the passport kinds (delegate, set policy, revoke, sweep): the node's pinned
    /// circuits include a `v4-agents` final, which the prover builds only over a leaf with
    /// policy checks, and whose grouped diff proves a policy's body ([`passports_provable`]).
    pub passports: bool,
    /// With [`Self::passports`], accept policies with an allow-list too: the pins record a leaf
    /// whose slots take the payee's membership path (`leaf_policies: lists`,
    /// [`allow_lists_provable`]). Otherwise such a policy is refused
    /// (`ALLOW_LIST_NOT_ENABLED`): its agent could pay no account in a batch the node's
    /// circuits prove.
    pub allow_lists: bool,
    /// Accept splits: the node's pinned circuits include final circuits that verify the
    /// split-credit chain (or it verifies no proof, a devnet without verifiers), so a batch
    /// holding one can be proven and committed ([`splits_provable`]).
    pub splits: bool,
    /// Accept the stream kinds (open, settle, close) and relay ticks: the node's pinned
    /// circuits include final circuits that verify the tick-walk tree ([`streams_provable`]),
    /// so a batch with a settlement can be proven and committed. (`--experimental-streams`
    /// accepts them on a devnet without such circuits.)
    pub streams: bool,
    /// Accept the revenue-share kinds (register shares, distribute): the node's pinned
    /// circuits include a `v4-shares` final, which the prover builds only over a leaf with
    /// those kinds and the lock, and a split-credit chain that proves their records
    /// ([`shares_provable`]). (`--experimental-streams` accepts them on a devnet without.)
    pub shares: bool,
    /// Accept nonces of lanes 1 to 7 and report them (SPEC 20.1): the node's pinned circuits
    /// include a `v4-agents` final, which the prover builds only over a leaf with policy
    /// checks, whose slots take a nonce in its lane ([`lanes_provable`]), or the node runs
    /// with `--experimental-agents`. (The state refuses those nonces otherwise.)
    pub lanes: bool,
    /// What one batch of the node's circuits holds (`None`: unknown, nothing refused for
    /// size): a transaction that alone exceeds it is refused (`EXCEEDS_BATCH_CAPACITY`).
    pub capacity: Option<rollup_prover::capacity::BatchCapacity>,
}

/// Whether a node whose proof verifiers are the final circuits `finals` (`None`: it verifies
/// no proof) can commit a
/// batch that holds a split: only if some pinned final circuit verifies the split-credit chain
/// (`final-<level>[-<diff kind>]-splits`). Accepting a split it cannot commit would stall
/// every later batch behind it.
pub fn splits_provable(finals: Option<&[FinalId]>) -> bool {
    finals.is_none_or(|f| f.iter().any(|id| id.splits))
}

/// Whether a node with the final circuits `finals` can commit a batch that holds a stream
/// settlement: only if some pinned final circuit verifies the tick-walk tree
/// (`final-<level>-<v4 kind>[-splits]-walks`, which the prover builds with a leaf that has the
/// stream kinds). A node that verifies no proof does not know its prover's leaf: the stream
/// kinds stay behind `--experimental-streams` there.
pub fn streams_provable(finals: Option<&[FinalId]>) -> bool {
    finals.is_some_and(|f| f.iter().any(|id| id.walks))
}

/// Whether a node with the final circuits `finals` can commit batches with the revenue-share
/// kinds: only if some pinned final proves a `v4-shares` diff (the registration's shares
/// record) with the split-credit chain. The prover builds those only over a leaf with the
/// revenue-share kinds, whose split-credit chain proves their records (every pinned final
/// with `-splits` verifies that one chain, so a distribute's batch, whatever its diff kind,
/// is provable too). A node that verifies no proof does not know its prover's leaf: the kinds
/// stay behind `--experimental-streams` there.
pub fn shares_provable(finals: Option<&[FinalId]>) -> bool {
    finals.is_some_and(|f| {
        f.iter()
            .any(|id| id.splits && id.kind == rollup_storage::DiffCircuitKind::V4Shares)
    })
}

/// Whether a node with the final circuits `finals` can commit batches with nonces of lanes 1
/// to 7 (SPEC 20.1): only if some pinned final proves a `v4-agents` diff (the lanes record of
/// an account that used one), which the prover builds only over a leaf with policy checks.
pub fn lanes_provable(finals: Option<&[FinalId]>) -> bool {
    finals.is_some_and(|f| {
        f.iter()
            .any(|id| id.kind == rollup_storage::DiffCircuitKind::V4Agents)
    })
}

/// Whether a node with the final circuits `finals` can commit batches with the passport
/// kinds (SPEC 20.5): as for lanes, a pinned `v4-agents` final, over a leaf with policy checks
/// (the owner's four kinds and an agent's spends judged by its passport), and a pinned
/// `v4-shares` final with the chain, whose full grouped diff proves a policy's body (13.7.1;
/// the prover builds both over one leaf). Policies with an allow-list need more
/// ([`allow_lists_provable`]).
pub fn passports_provable(finals: Option<&[FinalId]>) -> bool {
    lanes_provable(finals) && shares_provable(finals)
}

/// Whether a node whose pinned verifiers state the leaf's policy checks `leaf_policies` (and
/// whose finals prove passports) can commit the payments of an agent under an allow-list:
/// only if the leaf takes the payee's membership path (`rollup-prover --leaf-policies
/// lists`); a leaf without refuses every payment of such an agent to an account (SPEC 20.8).
/// A manifest that does not say (written before it was recorded) allows no list.
pub fn allow_lists_provable(leaf_policies: Option<PolicyChecks>) -> bool {
    leaf_policies == Some(PolicyChecks::WithLists)
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
    /// The open blocks' transactions by account, which `account_blocks` lacks (unsealed.rs).
    unsealed: Arc<UnsealedActivity>,
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

/// What the service is built from (node.rs wires it).
pub struct ServiceDeps {
    pub writer: WriterHandle,
    pub store: Store,
    pub wakeups: Arc<AccountWakeups>,
    pub unsealed: Arc<UnsealedActivity>,
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
        let ticks = (d.cfg.experimental_streams || d.cfg.streams)
            .then(|| Arc::new(TickRelay::new(d.writer.clone(), d.cfg.enqueue_patience)));
        Ok(RollupService {
            inner: Arc::new(Inner {
                ticks,
                verifiers,
                writer: d.writer,
                store: d.store,
                wakeups: d.wakeups,
                unsealed: d.unsealed,
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

impl ServiceConfig {
    /// Whether this node takes `tx` (no state read): every enabled kind (the split, the stream
    /// kinds, the revenue-share kinds and the passport kinds only on a node whose circuits
    /// prove them), all three first on a node with `--experimental-streams`, the passport kinds
    /// with allow-lists where the pinned leaf takes membership paths or on a node with
    /// `--experimental-agents`; and a transaction no batch of the node's circuits could hold is
    /// refused.
    pub fn admit(&self, tx: &Transaction) -> Result<(), RequestError> {
        let kind = tx.kind();
        let allowed = match tx {
            Transaction::Split(_) => self.splits || self.experimental_streams,
            Transaction::Passport(t) if self.passports && !self.experimental_agents => {
                if !self.allow_lists && t.action.policy().is_some_and(|p| !p.allow.is_anyone()) {
                    return Err(RequestError::AllowListNotEnabled);
                }
                true
            }
            Transaction::Passport(_) => self.experimental_agents,
            Transaction::StreamOpen(_)
            | Transaction::StreamSettle(_)
            | Transaction::StreamClose(_)
            | Transaction::StreamSettlePath(_) => self.streams || self.experimental_streams,
            Transaction::RegisterShares(_) | Transaction::Distribute(_) => {
                self.shares || self.experimental_streams
            }
            _ => kind.is_enabled(),
        };
        if !allowed {
            return Err(RequestError::KindNotEnabled(kind));
        }
        // Only a split's and a policy's size are in the transaction itself; the writer seals
        // around the others (and a distribute, whose size is its account's share count).
        if let Some(cap) = self.capacity {
            let needs = cap.chunks_for(&BatchLoad::bound_of(tx, |_| 0));
            if needs > cap.max_chunks() {
                return Err(RequestError::ExceedsBatchCapacity {
                    needs,
                    max: cap.max_chunks(),
                });
            }
        }
        Ok(())
    }
}

impl Inner {
    /// The request as a transaction, if this node takes it ([`ServiceConfig::admit`]).
    fn decode(&self, req: &pb::SubmitRequest) -> Result<Transaction, RequestError> {
        let tx = rollup_proto::convert::any_transaction_from_request(req)?;
        self.cfg.admit(&tx)?;
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

    /// Resolves when the node starts shutting down: what ends a streaming call.
    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut shutdown = self.shutdown.clone();
        async move {
            let _ = shutdown.wait_for(|s| *s).await;
        }
    }

    /// The tick relay, or UNIMPLEMENTED (STREAMS_NOT_ENABLED).
    fn relay(&self) -> Result<&Arc<TickRelay>, Status> {
        self.ticks.as_ref().ok_or_else(|| {
            with_reason(
                Status::unimplemented(
                    "STREAMS_NOT_ENABLED: this node accepts no payment streams (its pinned \
                     circuits verify no tick-walk tree; a devnet node started with \
                     --experimental-streams relays ticks whatever its pins)",
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

pub(super) fn row_receipt(row: &TxRow) -> pb::Receipt {
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

pub(super) fn finality_pb(f: rollup_storage::Finality) -> pb::Finality {
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

pub(super) fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{
        allow_lists_provable, lanes_provable, passports_provable, shares_provable, splits_provable,
        streams_provable,
    };
    use rollup_prover::circuits::payment::PolicyChecks;
    use rollup_prover::pins::FinalId;
    use rollup_storage::DiffCircuitKind;

    /// A delegation from account 1 to a fresh key, under a policy with `payees` listed.
    fn delegate(payees: u32) -> state::tx::Transaction {
        use state::account::{AccountIndex, Amount, Nonce, Timestamp};
        use state::crypto::schnorr::SecretKey;
        use state::passport::{AllowList, Card, Policy};
        use state::tx::passport::{PassportAction, UnsignedPassportTx};
        let amount = |v| Amount::new(v).unwrap();
        let mut rng = rand::rngs::OsRng;
        let policy = Policy {
            cap: amount(1_000),
            window: 3_600,
            max_payment: amount(100),
            max_fee: amount(1),
            expiry: Timestamp::new(1_900_000_000).unwrap(),
            allow: AllowList::new((0..payees).map(|i| AccountIndex(2 + i)).collect()).unwrap(),
            card: Card::new([7; 32], "https://agents.example/a".into()).unwrap(),
        };
        let tx = UnsignedPassportTx {
            owner: AccountIndex(1),
            action: PassportAction::Delegate {
                agent_key: SecretKey::random(&mut rng).public_key().into(),
                fund: amount(500),
                policy,
            },
            fee: amount(1),
            nonce: Nonce::new(0).unwrap(),
            valid_until: Timestamp::MAX,
        };
        let domain = state::tx::Domain {
            chain_id: 31_337,
            rollup: [9; 20],
        };
        state::tx::Transaction::Passport(tx.sign(&domain, &SecretKey::random(&mut rng)))
    }

    fn config(
        passports: bool,
        allow_lists: bool,
        experimental_agents: bool,
    ) -> super::ServiceConfig {
        super::ServiceConfig {
            max_in_flight_per_stream: 1,
            enqueue_patience: std::time::Duration::ZERO,
            devnet: experimental_agents,
            faucet_max: 0,
            l1_deposits: true,
            experimental_streams: false,
            experimental_agents,
            splits: true,
            streams: false,
            shares: false,
            lanes: passports,
            passports,
            allow_lists,
            capacity: None,
        }
    }

    #[test]
    fn passports_are_admitted_where_their_batches_are_proven() {
        let code = |cfg: &super::ServiceConfig, tx| cfg.admit(&tx).map_err(|e| e.code());
        // No `v4-agents` final: refused, whatever the policy (lists or not).
        for lists in [false, true] {
            assert_eq!(
                code(&config(false, lists, false), delegate(0)),
                Err("KIND_NOT_ENABLED")
            );
        }
        // Pinned over a leaf without membership paths: a policy without a list is taken, one
        // with a list is refused by its reason.
        let pinned = config(true, false, false);
        assert_eq!(code(&pinned, delegate(0)), Ok(()));
        assert_eq!(code(&pinned, delegate(3)), Err("ALLOW_LIST_NOT_ENABLED"));
        // Over a leaf with them: both.
        let lists = config(true, true, false);
        assert_eq!(code(&lists, delegate(0)), Ok(()));
        assert_eq!(code(&lists, delegate(3)), Ok(()));
        // A devnet with `--experimental-agents` takes both.
        assert_eq!(code(&config(false, false, true), delegate(3)), Ok(()));
        // Only a manifest that says `lists` allows them.
        assert!(allow_lists_provable(Some(PolicyChecks::WithLists)));
        for other in [None, Some(PolicyChecks::Plain), Some(PolicyChecks::None)] {
            assert!(!allow_lists_provable(other), "{other:?}");
        }
    }

    #[test]
    fn splits_and_streams_are_accepted_only_where_they_can_be_committed() {
        // A node that verifies no proof (a devnet without verifiers) commits whatever it is
        // given; one whose pins hold no `-splits` final could never commit a split's batch.
        let plain = [FinalId::v1(0), FinalId::v1(4)];
        let v4 = FinalId::of(4, DiffCircuitKind::V4);
        assert!(splits_provable(None));
        assert!(!splits_provable(Some(&plain)));
        assert!(splits_provable(Some(&[FinalId::v1(4).with_splits()])));
        // Streams need a pinned final that verifies the tick-walk tree: never assumed.
        assert!(!streams_provable(None));
        assert!(!streams_provable(Some(&plain)));
        assert!(!streams_provable(Some(&[v4, v4.with_splits()])));
        assert!(streams_provable(Some(&[FinalId::v1(4), v4.with_walks()])));
        // Revenue shares need a pinned `v4-shares` final with the chain: never assumed.
        let shares = FinalId::of(4, DiffCircuitKind::V4Shares);
        assert!(!shares_provable(None));
        assert!(!shares_provable(Some(&[v4.with_splits(), v4.with_walks()])));
        assert!(!shares_provable(Some(&[shares])));
        assert!(shares_provable(Some(&[
            FinalId::v1(4),
            shares.with_splits()
        ])));
        // Lanes need a pinned `v4-agents` final (over a leaf with policy checks).
        let agents = FinalId::of(4, DiffCircuitKind::V4Agents);
        assert!(!lanes_provable(None));
        assert!(!lanes_provable(Some(&[v4, shares.with_splits()])));
        assert!(lanes_provable(Some(&[FinalId::v1(4), agents])));
        assert!(lanes_provable(Some(&[agents.with_splits()])));
        // The passport kinds need both: the leaf's checks and the full diff for the bodies.
        assert!(!passports_provable(None));
        assert!(!passports_provable(Some(&[v4, shares.with_splits()])));
        assert!(!passports_provable(Some(&[FinalId::v1(4), agents])));
        assert!(passports_provable(Some(&[agents, shares.with_splits()])));
    }
}
