//! Every status column of the schema as a Rust enum, stored as its `snake_case` name in a
//! `TEXT` column guarded by a `CHECK` constraint (the migrations list the same names).
//!
//! A status is written and read only through these types: an unknown string in the database
//! is a decode error (`StorageError::Db`), never a silently defaulted value.

use std::fmt;
use std::str::FromStr;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// A status string that names no variant of the expected enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: {value:?}")]
pub struct ParseStatusError {
    pub what: &'static str,
    pub value: String,
}

/// Declares a text-backed enum with `as_str`, `ALL`, `FromStr`, `Display`, serde and sqlx
/// (`TEXT`) mappings. The names are the database's and the wire's (feed, JSON APIs).
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = ParseStatusError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseStatusError { what: $what, value: s.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <str as Type<Postgres>>::compatible(ty)
            }
        }

        impl<'q> Encode<'q, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<'q, Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let s = <&str as Decode<'r, Postgres>>::decode(value)?;
                Ok(s.parse()?)
            }
        }

        impl sqlx::postgres::PgHasArrayType for $name {
            fn array_type_info() -> PgTypeInfo {
                <&str as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }
    };
}

text_enum! {
    /// `batches.status`: where a batch is on its way to L1. Transitions (each a guarded
    /// `UPDATE ... WHERE status = <from>` in [`crate::batches`]):
    /// `sealed -> proving -> proven -> committed -> finalized`, `sealed | proving ->
    /// rejected` when the prover's re-execution of the rules refuses the batch, and
    /// `committed -> proven` when `Rollup.revertBatches` takes the commit off L1.
    BatchStatus, "batch status" {
        /// Written by the sequencer's writer with the batch.
        Sealed = "sealed",
        /// The prover planned its jobs.
        Proving = "proving",
        /// The final proof is in `batch_proofs`.
        Proven = "proven",
        /// The prover's native re-execution refused it (`batches.rejection` says why).
        Rejected = "rejected",
        /// `Rollup.commitBatch` mined and past the confirmation depth.
        Committed = "committed",
        /// `Rollup.finalizeBatch` mined and past the confirmation depth.
        Finalized = "finalized",
    }
}

impl BatchStatus {
    /// The finality a transaction in a batch of this status has reached.
    pub fn finality(self) -> Finality {
        match self {
            BatchStatus::Sealed | BatchStatus::Proving | BatchStatus::Rejected => {
                Finality::Accepted
            }
            BatchStatus::Proven => Finality::Proven,
            BatchStatus::Committed => Finality::Committed,
            BatchStatus::Finalized => Finality::Finalized,
        }
    }

    /// The statuses at or beyond `level` (for "highest batch at each level" queries).
    pub fn at_least(level: Finality) -> Vec<BatchStatus> {
        BatchStatus::ALL
            .iter()
            .copied()
            .filter(|s| *s != BatchStatus::Rejected && s.finality() >= level)
            .collect()
    }
}

text_enum! {
    /// Finality of an L2 transaction (DESIGN.md, "Finality levels"), weakest first: the
    /// derived `Ord` is the order of strength.
    Finality, "finality" {
        /// Durable in the sequencer's log (signed receipt).
        Accepted = "accepted",
        /// Its batch has a validity proof.
        Proven = "proven",
        /// Its batch is committed on L1.
        Committed = "committed",
        /// Its batch is finalized on L1.
        Finalized = "finalized",
    }
}

impl Finality {
    /// The finality of a transaction whose batch has `status` (`None`: not yet in a batch).
    pub fn of_batch(status: Option<BatchStatus>) -> Finality {
        status.map_or(Finality::Accepted, BatchStatus::finality)
    }
}

text_enum! {
    /// `prover_jobs.kind`: the aggregation tree of a batch (leaves, merges, one final).
    JobKind, "job kind" {
        Leaf = "leaf",
        Merge = "merge",
        Final = "final",
    }
}

text_enum! {
    /// `prover_jobs.tree`: which of a batch's proof trees a leaf or merge job belongs to (SPEC
    /// 13.11): four for every batch, then the split-credit chain of a batch with a split and the
    /// tick-walk tree of a batch with a stream settlement ([`SideTrees`]). Every tree of a batch has
    /// the same number of leaves (`2^level` of the final job); the final job, which verifies
    /// the roots, is filed under `range`.
    ProofTree, "proof tree" {
        /// The transactions: payment leaves and their merges.
        Range = "range",
        /// The state diff published on L1 (SPEC 13.7).
        Diff = "diff",
        /// The L1 priority ops the batch consumed (SPEC 13.8).
        Priority = "priority",
        /// The payout tree (SPEC 13.9).
        Payout = "payout",
        /// The split-credit chain (SPEC 19.5): only in a batch with a split.
        Splits = "splits",
        /// The tick-walk tree (SPEC 18.7): only in a batch with a stream settlement.
        Walks = "walks",
    }
}

/// Which of the optional proof trees a batch has (the same on every job of the batch, in
/// `prover_jobs.splits` and `prover_jobs.walks`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SideTrees {
    /// The split-credit chain (a batch with a split).
    pub splits: bool,
    /// The tick-walk tree (a batch with a stream settlement).
    pub walks: bool,
}

impl ProofTree {
    /// The trees of a batch, in the order the final job takes their roots: the four every
    /// batch has, then the split-credit chain and the tick-walk tree it has.
    pub fn of_batch(side: SideTrees) -> &'static [ProofTree] {
        use ProofTree::*;
        const WALKS_ONLY: [ProofTree; 5] = [Range, Diff, Priority, Payout, Walks];
        match (side.splits, side.walks) {
            (false, false) => &ProofTree::ALL[..4],
            (true, false) => &ProofTree::ALL[..5],
            (false, true) => &WALKS_ONLY,
            (true, true) => ProofTree::ALL,
        }
    }
}

text_enum! {
    /// Which circuit proves a batch's published state diff, chosen by the planner from the
    /// diff's version and content (SPEC 13.11). Each has its own diff tree circuits and its own
    /// settlement (final) circuits, pinned as `final-<level>` (`v1`) and
    /// `final-<level>-<name>` (the others).
    DiffCircuitKind, "diff circuit" {
        /// A version 1 diff: account records only (SPEC 13.7).
        V1 = "v1",
        /// A version 4 diff (grouped by account) without passport or lanes records: account
        /// and stream records (SPEC 13.7.1).
        V4 = "v4",
        /// A version 4 diff with passport or lanes records (every slot carries their appends).
        V4Agents = "v4-agents",
        /// A version 4 diff with a shares record (SPEC 19.6 "Diff": every sub-slot can also be
        /// a run of its entries; passport and lanes records too).
        V4Shares = "v4-shares",
    }
}

impl Default for DiffCircuitKind {
    /// Every batch without stream or agent records publishes a version 1 diff.
    fn default() -> Self {
        DiffCircuitKind::V1
    }
}

text_enum! {
    /// `prover_jobs.state`. `waiting -> queued -> running -> done`, `running -> queued` when
    /// a worker's heartbeat goes stale, `running -> failed` after the last attempt.
    JobState, "job state" {
        /// A merge or final job whose children are not all done.
        Waiting = "waiting",
        /// Claimable by a worker.
        Queued = "queued",
        /// Claimed; the worker heartbeats.
        Running = "running",
        /// Its proof is stored.
        Done = "done",
        /// Gave up after the attempt limit.
        Failed = "failed",
    }
}

text_enum! {
    /// `l1_priority_ops.kind`: the two L1 priority operations.
    PriorityOpKind, "priority op kind" {
        Deposit = "deposit",
        ForcedWithdrawal = "forced_withdrawal",
    }
}

text_enum! {
    /// `l1_priority_ops.status`: `seen -> confirmed -> credited`, and `seen | confirmed ->
    /// reorged` when the log's block leaves the canonical chain (a log that comes back is a
    /// row again, `seen`).
    PriorityOpStatus, "priority op status" {
        Seen = "seen",
        Confirmed = "confirmed",
        Credited = "credited",
        Reorged = "reorged",
    }
}

text_enum! {
    /// `l1_submissions.kind`: the two L1 calls per batch.
    SubmissionKind, "submission kind" {
        Commit = "commit",
        Finalize = "finalize",
    }
}

text_enum! {
    /// `l1_submissions.status`: `signed -> sent -> mined`; `replaced` when another
    /// transaction took the nonce, `failed` when mined but reverted.
    SubmissionStatus, "submission status" {
        /// Written before broadcast (so a restart never sends a second one blindly).
        Signed = "signed",
        Sent = "sent",
        Mined = "mined",
        Replaced = "replaced",
        Failed = "failed",
        /// Mined (or mined and reverted), then its batch was reverted on L1
        /// (`Rollup.revertBatches`): kept for the record, no longer followed or counted.
        Superseded = "superseded",
    }
}

text_enum! {
    /// `bridge_events.finality` (SPEC 16.4).
    EventFinality, "event finality" {
        /// In an L1 block above the confirmation depth: may still be reorged away.
        L1Seen = "l1_seen",
        /// At or below the confirmation depth on L1.
        L1Confirmed = "l1_confirmed",
        /// Was seen, then its L1 block left the canonical chain; it will never be credited.
        L1Reorged = "l1_reorged",
        /// Durable on L2 (signed receipt).
        Accepted = "accepted",
        Committed = "committed",
        Finalized = "finalized",
    }
}

text_enum! {
    /// `bridge_events.kind` (SPEC 16.4).
    EventKind, "event kind" {
        DepositSeen = "deposit_seen",
        DepositConfirmed = "deposit_confirmed",
        DepositReorged = "deposit_reorged",
        DepositCredited = "deposit_credited",
        ForcedWithdrawalSeen = "forced_withdrawal_seen",
        /// Consumed on L2: `outcome` is `APPLIED` (paid out once its batch is final) or the
        /// reason code of the rule it breaks.
        ForcedWithdrawalProcessed = "forced_withdrawal_processed",
        BatchCommitted = "batch_committed",
        BatchFinalized = "batch_finalized",
        WithdrawalClaimable = "withdrawal_claimable",
        WithdrawalClaimed = "withdrawal_claimed",
        /// The admin announced a new verifier or operator (`Rollup.ChangeAnnounced`): it may
        /// apply from `eta`.
        ChangeAnnounced = "change_announced",
        ChangeCancelled = "change_cancelled",
        /// A new verifier or operator is in force (`VerifierChanged` / `OperatorChanged`).
        ChangeApplied = "change_applied",
        Paused = "paused",
        Unpaused = "unpaused",
        /// The operator failed and someone switched the contract to exodus (SPEC 15.9): from
        /// here on money leaves only by exits and refunds.
        ExodusActivated = "exodus_activated",
        /// A key named the L1 address its accounts exit to.
        ExitAuthorised = "exit_authorised",
        /// A key named the L1 address that answers for its accounts (SPEC 20.9).
        OwnerBound = "owner_bound",
        /// An account left with its finalized balance.
        ExitPerformed = "exit_performed",
        /// A deposit no finalized batch consumed went back to its depositor.
        DepositRefunded = "deposit_refunded",
        /// The operator reverted committed, unfinalized batches.
        BatchesReverted = "batches_reverted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(all: &[T])
    where
        T: Copy + fmt::Debug + PartialEq + fmt::Display + FromStr<Err = ParseStatusError>,
    {
        let mut seen = std::collections::HashSet::new();
        for v in all {
            let s = v.to_string();
            assert!(seen.insert(s.clone()), "duplicate name {s}");
            assert_eq!(s.parse::<T>().as_ref(), Ok(v));
        }
        assert!("".parse::<T>().is_err());
        assert!("SEALED".parse::<T>().is_err(), "names are case-sensitive");
    }

    #[test]
    fn every_status_round_trips_through_its_name() {
        round_trip(BatchStatus::ALL);
        round_trip(Finality::ALL);
        round_trip(JobKind::ALL);
        round_trip(ProofTree::ALL);
        round_trip(DiffCircuitKind::ALL);
        round_trip(JobState::ALL);
        round_trip(PriorityOpKind::ALL);
        round_trip(PriorityOpStatus::ALL);
        round_trip(SubmissionKind::ALL);
        round_trip(SubmissionStatus::ALL);
        round_trip(EventFinality::ALL);
        round_trip(EventKind::ALL);
    }

    /// The names must be exactly those the migrations' CHECK constraints allow: a variant the
    /// database refuses would fail only at run time.
    #[test]
    fn every_name_is_allowed_by_the_schema() {
        let schema: String = crate::MIGRATOR
            .iter()
            .map(|m| m.sql.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        let quoted = |s: &str| format!("'{s}'");
        for s in BatchStatus::ALL {
            assert!(schema.contains(&quoted(s.as_str())), "{s}");
        }
        for s in JobState::ALL {
            assert!(schema.contains(&quoted(s.as_str())), "{s}");
        }
        for s in JobKind::ALL {
            assert!(schema.contains(&quoted(s.as_str())), "{s}");
        }
        for s in ProofTree::ALL {
            assert!(schema.contains(&quoted(s.as_str())), "{s}");
        }
        for s in DiffCircuitKind::ALL {
            assert!(schema.contains(&quoted(s.as_str())), "{s}");
        }
        for s in PriorityOpStatus::ALL {
            assert!(schema.contains(&quoted(s.as_str())), "{s}");
        }
        for s in PriorityOpKind::ALL {
            assert!(schema.contains(&quoted(s.as_str())), "{s}");
        }
        for s in SubmissionStatus::ALL {
            assert!(schema.contains(&quoted(s.as_str())), "{s}");
        }
        for s in SubmissionKind::ALL {
            assert!(schema.contains(&quoted(s.as_str())), "{s}");
        }
    }

    #[test]
    fn batch_finality_is_monotonic_along_the_happy_path() {
        let path = [
            BatchStatus::Sealed,
            BatchStatus::Proving,
            BatchStatus::Proven,
            BatchStatus::Committed,
            BatchStatus::Finalized,
        ];
        for w in path.windows(2) {
            assert!(w[0].finality() <= w[1].finality());
        }
        assert_eq!(Finality::of_batch(None), Finality::Accepted);
        assert_eq!(
            Finality::of_batch(Some(BatchStatus::Rejected)),
            Finality::Accepted
        );
        assert_eq!(
            BatchStatus::at_least(Finality::Committed),
            vec![BatchStatus::Committed, BatchStatus::Finalized]
        );
    }

    #[test]
    fn serde_uses_the_database_names() {
        let j = serde_json::to_string(&EventFinality::L1Confirmed).unwrap_or_default();
        assert_eq!(j, "\"l1_confirmed\"");
        let back: Result<EventFinality, _> = serde_json::from_str(&j);
        assert_eq!(back.ok(), Some(EventFinality::L1Confirmed));
        assert!(serde_json::from_str::<EventFinality>("\"l1_safe\"").is_err());
    }
}
