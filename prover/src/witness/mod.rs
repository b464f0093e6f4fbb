//! Witness generation for the payment (leaf) circuit: pure, deterministic, no I/O.
//!
//! [`leaf_witnesses`] re-applies a batch's transactions with the native rules
//! ([`State::apply`]) and records, per transaction, everything the circuit needs: the fields,
//! the signature, and the three leaf accesses A, B, C (old account and Merkle siblings) in the
//! circuit's order, each against the root left by the previous access (see
//! `docs/SPEC.md`, "Payment circuit"). The result is plain data (serde), stored by the worker and
//! proven elsewhere by [`crate::circuits::payment::PaymentCircuit::prove`].
//!
//! Layout: the witness types here, [`slot`] builds one transaction's slot, [`leaves`] cuts a
//! batch into leaves, [`overlay`] tracks the tree nodes a transaction's accesses wrote.

mod leaves;
mod overlay;
mod slot;

pub use leaves::{leaf_count, leaf_witnesses, leaf_witnesses_and_chain};
pub(crate) use overlay::Overlay;
pub(crate) use state::smt::root_of;

use plonky2::field::types::{Field, PrimeField64};
use serde::{Deserialize, Serialize};
use state::account::{Account, AccountIndex};
use state::crypto::schnorr::Signature;
use state::ext::Profile;
use state::hash::{hash_no_pad, Digest};
use state::pubdata::PubdataOp;
use state::settlement::entries_absorb;
use state::stream::{StreamId, StreamSlot};
use state::tx::L1Address;

use crate::circuits::policy::PassportOpening;
use crate::circuits::public::RangeStatement;
use crate::circuits::split::{SplitKind, SplitRecord};
use crate::circuits::ticks::WalkRecord;
use crate::F;

/// The fields of an account leaf, as raw integers (a tampered witness may hold anything; the
/// circuit decides).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountFields {
    /// The five coefficients of the public key encoding `w`.
    pub pubkey: [u64; 5],
    pub balance: u64,
    pub nonce: u64,
    pub ext: Digest,
}

impl AccountFields {
    pub fn from_account(a: &Account) -> Self {
        AccountFields {
            pubkey: a.pubkey.to_field_elements().map(|e| e.to_canonical_u64()),
            balance: a.balance.get(),
            nonce: a.nonce.get(),
            ext: a.ext,
        }
    }

    /// The 12 leaf elements (`Account::to_field_elements`).
    pub fn to_field_elements(&self) -> [F; 12] {
        let mut v = [F::ZERO; 12];
        for (i, w) in self.pubkey.iter().enumerate() {
            v[i] = F::from_noncanonical_u64(*w);
        }
        v[5] = F::from_noncanonical_u64(self.balance);
        v[6] = F::from_noncanonical_u64(self.nonce);
        v[8..].copy_from_slice(&self.ext.0);
        v
    }

    pub fn leaf(&self) -> Digest {
        hash_no_pad(&self.to_field_elements())
    }
}

/// One leaf access of a slot: the index, the account there before the access (`None`: empty
/// leaf) and the 32 siblings (leaf level first) against the root before the access.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LeafAccess {
    pub index: u32,
    pub account: Option<AccountFields>,
    pub siblings: Vec<Digest>,
}

impl LeafAccess {
    pub fn leaf(&self) -> Digest {
        self.account.map(|a| a.leaf()).unwrap_or(Digest::ZERO)
    }
}

/// What a slot does.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// Padding: every access writes its leaf back, nothing else changes.
    Noop,
    Register,
    Transfer,
    Withdraw,
    Deposit,
    ForcedWithdraw,
    /// A split payment: the debit here, the credits in the split-credit chain (SPEC 19.5).
    Split,
    /// The stream kinds (SPEC 18.5), in a payment circuit built with them: A signs; the book
    /// that changes is A's (open) or B's (settle, close), described by [`StreamWitness`].
    StreamOpen,
    StreamSettle,
    StreamClose,
    /// A settlement by path (tag 18, SPEC 18.8): a settlement whose tick opens the tick tree
    /// committed as the stream's head, with no walk.
    StreamSettlePath,
    /// The revenue-share kinds (SPEC 19.6), in a payment circuit built with them: A signs a
    /// registration of its own shares, or a distribute of B's balance by B's shares; the
    /// split-credit chain checks the list or pays the payouts (SPEC 19.5, "Kinds").
    RegisterShares,
    Distribute,
    /// An owner's kinds (SPEC 20.6), in a payment circuit with policy checks: A (the owner)
    /// signs, B is the agent, described by [`AgentOpening`] (a delegate's B is the new,
    /// empty index, and [`SlotWitness::below`] the account below it).
    Delegate,
    SetPolicy,
    Revoke,
    Sweep,
}

impl SlotKind {
    /// Whether A signs the slot's transaction, pays its fee and uses its nonce: every signed
    /// kind but the account registration (signed by the key it registers, no fee) and the
    /// forced withdrawal (which does so only when applied).
    pub fn signer_pays_fee(self) -> bool {
        matches!(
            self,
            SlotKind::Transfer
                | SlotKind::Withdraw
                | SlotKind::Split
                | SlotKind::StreamOpen
                | SlotKind::StreamSettle
                | SlotKind::StreamClose
                | SlotKind::StreamSettlePath
                | SlotKind::RegisterShares
                | SlotKind::Distribute
                | SlotKind::Delegate
                | SlotKind::SetPolicy
                | SlotKind::Revoke
                | SlotKind::Sweep
        )
    }
}

/// The `ext` of a slot's owner (B for a distribute, A otherwise) opened to its parts, in a
/// payment circuit with the revenue-share kinds: where the kind reads its shares part (the
/// lock, a registration, a distribute). Raw digests: a tampered witness may hold anything.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnerOpening {
    pub streams_root: Digest,
    pub profile: Profile,
}

impl OwnerOpening {
    /// An account with no stream and no profile (an empty leaf's `ext`, `ZERO`, opens to it).
    pub fn empty() -> Self {
        OwnerOpening {
            streams_root: state::smt::empty_hashes()[state::stream::SLOT_DEPTH],
            profile: Profile::default(),
        }
    }

    /// `account`'s opening in `state` as it stands (the empty one without computing anything
    /// when its `ext` is `ZERO`, as most accounts' is: no stream, no profile).
    pub fn of(state: &state::apply::State, account: AccountIndex) -> Self {
        match state.account(account) {
            Some(a) if a.ext != Digest::ZERO => OwnerOpening {
                streams_root: state.streams_of(account).root(),
                profile: state.profile_of(account),
            },
            _ => OwnerOpening::empty(),
        }
    }
}

/// A signer's `ext` opened for the policy checks (SPEC 20.8), in a payment circuit with them:
/// every slot whose signer spends or whose forced withdrawal is judged. `passport` is `None`
/// for a signer that is no agent (its profile's passport part is `ZERO`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SignerOpening {
    pub streams_root: Digest,
    pub shares: Digest,
    /// The next sequence numbers of lanes 1 to 7 (the profile's `lanes` part hashes them).
    pub lane_seqs: [u64; state::lanes::LANES - 1],
    pub passport: Option<PassportOpening>,
}

impl SignerOpening {
    /// An account with no stream, no profile and no passport (an empty leaf opens to it).
    pub fn empty() -> Self {
        let o = OwnerOpening::empty();
        SignerOpening {
            streams_root: o.streams_root,
            shares: o.profile.shares,
            lane_seqs: [0; state::lanes::LANES - 1],
            passport: None,
        }
    }

    /// `account`'s opening in `state` as it stands, its passport judged at `now` for a spend
    /// that pays `payee` (the membership path under a list).
    pub fn of(
        state: &state::apply::State,
        account: AccountIndex,
        now: state::account::Timestamp,
        payee: Option<AccountIndex>,
    ) -> Self {
        let o = OwnerOpening::of(state, account);
        SignerOpening {
            streams_root: o.streams_root,
            shares: o.profile.shares,
            lane_seqs: state.lanes_of(account).seqs(),
            passport: PassportOpening::of(state, account, now, payee),
        }
    }
}

/// An agent's `ext` opened to its passport for its owner's policy change, revoke or sweep
/// (SPEC 20.6), in a
/// payment circuit with policy checks: the policy as its digest. Raw values: a forged witness
/// may hold anything.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentOpening {
    pub streams_root: Digest,
    pub shares: Digest,
    pub lanes: Digest,
    pub owner: u32,
    pub policy: Digest,
    pub revoked: bool,
    pub window_id: u64,
    pub spent: u64,
}

impl AgentOpening {
    /// `agent`'s opening in `state` as it stands; `None` for an account without a passport.
    pub fn of(state: &state::apply::State, agent: AccountIndex) -> Option<Self> {
        let p = state.passport(agent)?;
        let profile = state.profile_of(agent);
        let (window_id, spent) = p.spent();
        Some(AgentOpening {
            streams_root: state.streams_of(agent).root(),
            shares: profile.shares,
            lanes: profile.lanes,
            owner: p.owner().0,
            policy: p.policy().digest(),
            revoked: p.is_revoked(),
            window_id,
            spent: spent.get(),
        })
    }
}

/// What a stream slot needs besides the accesses: the book owner's book before the slot and
/// the transaction's terms. Raw integers: a tampered witness may hold anything.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StreamWitness {
    pub slot: u16,
    /// The slot's 16 siblings in the owner's book (leaf level first).
    pub path: Vec<Digest>,
    /// The owner's book root and profile before the slot (its `ext` opens to them).
    pub streams_root: Digest,
    pub profile: Digest,
    /// The stream in the slot before (settle, close): `Stream::to_field_elements`, canonical.
    pub old: [u64; 10],
    /// Open: the terms.
    pub price: u64,
    pub max_ticks: u32,
    pub expiry: u64,
    pub anchor: Digest,
    /// Settle: the tick settled to and its value (a settlement by path: its secret).
    pub to: u32,
    pub t_to: Digest,
    /// A settlement by path: the tick's 24 siblings in the tick tree (empty otherwise).
    #[serde(default)]
    pub tick_path: Vec<Digest>,
}

impl StreamWitness {
    /// The values of a slot that is not a stream kind.
    pub fn idle() -> Self {
        StreamWitness {
            slot: 0,
            path: vec![Digest::ZERO; state::stream::SLOT_DEPTH],
            streams_root: Digest::ZERO,
            profile: Digest::ZERO,
            old: [0; 10],
            price: 0,
            max_ticks: 0,
            expiry: 0,
            anchor: Digest::ZERO,
            to: 0,
            t_to: Digest::ZERO,
            tick_path: Vec::new(),
        }
    }

    /// The tick-walk record of a settlement slot (SPEC 18.7): its stream's identity, the tick
    /// settled to and from, and both values.
    pub fn walk_record(&self, payer: u32) -> WalkRecord {
        WalkRecord {
            id: StreamId {
                payer: AccountIndex(payer),
                slot: StreamSlot(self.slot),
                opened_at: state::account::Nonce::new(self.old[4]).unwrap_or_default(),
            },
            to: self.to,
            from: self.old[5] as u32,
            t_to: self.t_to,
            head: Digest([6, 7, 8, 9].map(|i| F::from_noncanonical_u64(self.old[i]))),
        }
    }
}

/// One transaction slot. Unused fields are zero.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SlotWitness {
    pub kind: SlotKind,
    /// Register: the key being registered; delegate: the agent's key (`w` coefficients).
    pub pubkey: [u64; 5],
    pub amount: u64,
    pub fee: u64,
    pub nonce: u64,
    pub valid_until: u64,
    /// Deposit, forced withdrawal: the L1 queue serial number.
    pub seq: u64,
    /// Forced withdrawal: the L1 time of the request.
    #[serde(default)]
    pub requested_at: u64,
    /// Forced withdrawal: `ForcedStatus` (0 = applied, else the broken rule).
    #[serde(default)]
    pub forced_status: u8,
    /// Withdraw: the L1 destination.
    pub to_l1: [u8; 20],
    /// Deposit: the L1 sender, part of the priority entry the leaf commits to (SPEC 13.8).
    #[serde(default)]
    pub depositor: [u8; 20],
    /// Split: the payee count, the parts digest (SPEC 19.4) and the root after the credits,
    /// where access C continues. Delegate, set policy: `parts_digest` is the policy's digest.
    #[serde(default)]
    pub n: u32,
    #[serde(default)]
    pub parts_digest: Digest,
    #[serde(default)]
    pub split_root: Digest,
    /// The stream kinds' book and terms (`None` for the other kinds).
    #[serde(default)]
    pub stream: Option<StreamWitness>,
    /// The owner's `ext` opened (every slot of a leaf with the revenue-share kinds; `None`
    /// elsewhere, or for a slot that reads no shares part).
    #[serde(default)]
    pub owner: Option<OwnerOpening>,
    /// The signer's `ext` opened for the policy checks (every slot whose signer spends or
    /// whose forced withdrawal is judged; `None` elsewhere).
    #[serde(default)]
    pub signer: Option<SignerOpening>,
    /// The agent's `ext` opened (an owner's policy change, revoke or sweep; `None`
    /// elsewhere).
    #[serde(default)]
    pub agent: Option<AgentOpening>,
    /// A delegate's first free index: the account below the new one, read under the root
    /// after access A (`None` for the other kinds).
    #[serde(default)]
    pub below: Option<LeafAccess>,
    /// Register, transfer, withdraw, forced withdrawal, split, the stream kinds.
    pub signature: Option<Signature>,
    /// A: sender, registered index or deposit recipient (the operator for a no-op).
    pub a: LeafAccess,
    /// B: transfer recipient; for a register, the account just below the new index.
    pub b: LeafAccess,
    /// C: the operator (index 0), credited with the fee.
    pub c: LeafAccess,
}

impl SlotWitness {
    /// A slot of `kind` whose every field is zero or absent and whose three accesses are
    /// `access` (the witness builder and the tests' forgers fill in the rest).
    pub fn new(kind: SlotKind, access: LeafAccess) -> Self {
        SlotWitness {
            kind,
            pubkey: [0; 5],
            amount: 0,
            fee: 0,
            nonce: 0,
            valid_until: 0,
            seq: 0,
            requested_at: 0,
            forced_status: 0,
            to_l1: [0; 20],
            depositor: [0; 20],
            n: 0,
            parts_digest: Digest::ZERO,
            split_root: Digest::ZERO,
            stream: None,
            owner: None,
            signer: None,
            agent: None,
            below: None,
            signature: None,
            a: access.clone(),
            b: access.clone(),
            c: access,
        }
    }

    /// The tick-walk record a settlement slot hands over (SPEC 18.7); `None` for other kinds.
    pub fn walk_record(&self) -> Option<WalkRecord> {
        let w = self.stream.as_ref()?;
        (self.kind == SlotKind::StreamSettle).then(|| w.walk_record(self.b.index))
    }

    /// The record a split, share-registration or distribute slot hands over to the
    /// split-credit chain: from the root its accesses A and B reach to `split_root` (a
    /// registration's: the same root). `None` for other kinds.
    pub fn split_record(&self) -> Option<SplitRecord> {
        // The root after B: B writes its leaf back, except a distribute's (balance 0).
        let b_after = match self.kind {
            SlotKind::Distribute => self.b.account.map(|b| AccountFields { balance: 0, ..b }),
            _ => self.b.account,
        };
        let root_before = root_of(
            self.b.index,
            b_after.map_or(Digest::ZERO, |b| b.leaf()),
            &self.b.siblings,
        );
        let (kind, from, root_after, sum) = match self.kind {
            SlotKind::Split => (SplitKind::Pay, self.a.index, self.split_root, self.amount),
            SlotKind::RegisterShares => (
                SplitKind::Register,
                self.a.index,
                root_before,
                u64::from(state::split::BPS_WHOLE),
            ),
            SlotKind::Distribute => (
                SplitKind::Distribute,
                self.b.index,
                self.split_root,
                self.amount,
            ),
            _ => return None,
        };
        Some(SplitRecord {
            root_before,
            root_after,
            from: AccountIndex(from),
            n: self.n,
            sum,
            parts_digest: self.parts_digest,
            kind,
        })
    }
}

/// Everything a leaf proof needs: its statement and exactly `k` slots.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LeafWitness {
    pub statement: RangeStatement,
    pub slots: Vec<SlotWitness>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// The native rules reject the transaction at `position`: the batch is reported, not
    /// proven (the state keeps the transactions before it).
    #[error("transaction {position} is rejected: {code}")]
    Rejected { position: usize, code: &'static str },
    /// A signed transaction whose `valid_until` is below the batch timestamp (the circuit
    /// checks expiry against the batch timestamp; block timestamps must not go backwards).
    #[error("transaction {position} expires before the batch timestamp")]
    ExpiredAtBatchTimestamp { position: usize },
    #[error("k must be at least 1")]
    ZeroK,
    /// A deposit whose L1 sender is unknown (the watcher has no live record of its serial).
    #[error("deposit {seq}: no depositor known")]
    UnknownDepositor { seq: u64 },
    /// A kind the payment circuit has no slot for yet (the stream kinds, SPEC 18.5): a node
    /// of this version never accepts one, so a batch holding one is reported, not proven.
    #[error("transaction {position} is a {kind} transaction, which this prover cannot prove yet")]
    KindNotProvable { position: usize, kind: &'static str },
    #[error("internal witness error: {0}")]
    Internal(String),
}

/// The L1 sender of a deposit serial, from the watcher's records.
pub type Depositors<'a> = &'a (dyn Fn(u64) -> Option<L1Address> + Sync);

/// One step of `entries_commitment` (SPEC 13.8) for an applied op: deposits (with their
/// depositor) and forced withdrawals extend it, other ops leave it.
pub fn absorb_entry(
    entries: Digest,
    op: &PubdataOp,
    depositors: Depositors<'_>,
) -> Result<Digest, WitnessError> {
    Ok(match op {
        PubdataOp::Deposit { seq, .. } => {
            let d = depositors(*seq).ok_or(WitnessError::UnknownDepositor { seq: *seq })?;
            entries_absorb(entries, &op.to_bytes(), Some(&d))
        }
        PubdataOp::ForcedWithdraw { .. } => entries_absorb(entries, &op.to_bytes(), None),
        _ => entries,
    })
}
