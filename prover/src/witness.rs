//! Witness generation for the payment (leaf) circuit: pure, deterministic, no I/O.
//!
//! [`leaf_witnesses`] re-applies a batch's transactions with the native rules
//! ([`State::apply`]) and records, per transaction, everything the circuit needs: the fields,
//! the signature, and the three leaf accesses A, B, C (old account and Merkle siblings) in the
//! circuit's order, each against the root left by the previous access (see
//! `docs/SPEC.md`, "Payment circuit"). The result is plain data (serde), stored by the worker and
//! proven elsewhere by [`crate::circuits::payment::PaymentCircuit::prove`].

use std::collections::HashMap;

use plonky2::field::types::{Field, PrimeField64};
use serde::{Deserialize, Serialize};
use state::account::{Account, AccountIndex, Timestamp, OPERATOR};
use state::apply::{BlockContext, DepositOutcome, Effects, ForcedOutcome, State};
use state::crypto::schnorr::Signature;
use state::hash::{hash_no_pad, two_to_one, Digest};
use state::pubdata::{PubdataCommitment, PubdataOp, WithdrawalsCommitment};
use state::settlement::entries_absorb;
use state::smt::DEPTH;
use state::split::parts_digest;
use state::tx::{L1Address, Transaction};

use crate::circuits::public::RangeStatement;
use crate::circuits::split::{SplitChainBuilder, SplitKind, SplitRecord};
use crate::circuits::ticks::WalkRecord;
use crate::F;
use state::stream::{StreamId, StreamSlot};

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
    /// Settle: the tick settled to and its value.
    pub to: u32,
    pub t_to: Digest,
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
    /// Register: the key being registered (`w` coefficients).
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
    /// where access C continues.
    #[serde(default)]
    pub n: u32,
    #[serde(default)]
    pub parts_digest: Digest,
    #[serde(default)]
    pub split_root: Digest,
    /// The stream kinds' book and terms (`None` for the other kinds).
    #[serde(default)]
    pub stream: Option<StreamWitness>,
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
    /// The tick-walk record a settlement slot hands over (SPEC 18.7); `None` for other kinds.
    pub fn walk_record(&self) -> Option<WalkRecord> {
        let w = self.stream.as_ref()?;
        (self.kind == SlotKind::StreamSettle).then(|| w.walk_record(self.b.index))
    }

    /// The record a split slot hands over to the split-credit chain: from the root its
    /// accesses A and B reach (B writes its leaf back) to `split_root`. `None` for other
    /// kinds.
    pub fn split_record(&self) -> Option<SplitRecord> {
        (self.kind == SlotKind::Split).then(|| SplitRecord {
            root_before: root_of(self.b.index, self.b.leaf(), &self.b.siblings),
            root_after: self.split_root,
            from: AccountIndex(self.a.index),
            n: self.n,
            sum: self.amount,
            parts_digest: self.parts_digest,
            kind: SplitKind::Pay,
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

/// Nodes written by the accesses of the current transaction, over the state's tree before it.
#[derive(Default)]
pub(crate) struct Overlay {
    nodes: HashMap<(usize, u64), Digest>,
}

impl Overlay {
    /// Siblings of `index` in the tree as modified so far, from its proof before the transaction.
    pub(crate) fn siblings(&self, index: u32, base: &[Digest]) -> Vec<Digest> {
        (0..DEPTH)
            .map(|l| {
                let pos = ((index as u64) >> l) ^ 1;
                self.nodes.get(&(l, pos)).copied().unwrap_or(base[l])
            })
            .collect()
    }

    /// The root after the writes so far (`None` before the first).
    pub(crate) fn root(&self) -> Option<Digest> {
        self.nodes.get(&(DEPTH, 0)).copied()
    }

    /// Writes `leaf` at `index` with `siblings`; returns the new root.
    pub(crate) fn write(&mut self, index: u32, leaf: Digest, siblings: &[Digest]) -> Digest {
        let mut cur = leaf;
        self.nodes.insert((0, index as u64), cur);
        for (l, sib) in siblings.iter().enumerate() {
            let pos = (index as u64) >> l;
            cur = if pos & 1 == 0 {
                two_to_one(cur, *sib)
            } else {
                two_to_one(*sib, cur)
            };
            self.nodes.insert((l + 1, pos >> 1), cur);
        }
        cur
    }
}

pub(crate) fn root_of(index: u32, leaf: Digest, siblings: &[Digest]) -> Digest {
    let mut cur = leaf;
    for (l, sib) in siblings.iter().enumerate() {
        cur = if ((index as u64) >> l) & 1 == 0 {
            two_to_one(cur, *sib)
        } else {
            two_to_one(*sib, cur)
        };
    }
    cur
}

/// Running values between slots.
#[derive(Clone, Copy)]
struct Io {
    root: Digest,
    pubdata: Digest,
    withdrawals: Digest,
    deposits: u64,
    entries: Digest,
    /// The split records handed over so far (SPEC 13.1).
    splits: Digest,
    /// The settlements' tick walks handed over so far (SPEC 13.1, 18.7).
    walks: Digest,
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

/// A no-op slot against the current state (all three accesses read the operator's leaf).
fn noop_slot(state: &mut State) -> SlotWitness {
    let access = LeafAccess {
        index: OPERATOR.0,
        account: state.account(OPERATOR).map(AccountFields::from_account),
        siblings: state.proof(OPERATOR).siblings.to_vec(),
    };
    SlotWitness {
        kind: SlotKind::Noop,
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
        signature: None,
        a: access.clone(),
        b: access.clone(),
        c: access,
    }
}

/// Sets the signer's envelope of a slot.
fn envelope(slot: &mut SlotWitness, fee: u64, nonce: u64, valid_until: u64) {
    slot.fee = fee;
    slot.nonce = nonce;
    slot.valid_until = valid_until;
}

fn no_book() -> WitnessError {
    WitnessError::Internal("a stream slot without its book".into())
}

/// Applies `tx` natively and returns its slot (accesses A, B, C in circuit order).
fn tx_slot(
    state: &mut State,
    tx: &Transaction,
    ctx: &BlockContext,
    position: usize,
) -> Result<(SlotWitness, Effects), WitnessError> {
    let n = state.num_accounts();
    let (kind, a_idx, b_idx) = match tx {
        // If n = 2^32 the native rules reject it (StateFull) below.
        Transaction::Register(_) => (
            SlotKind::Register,
            n.min(u32::MAX as u64) as u32,
            (n - 1) as u32,
        ),
        Transaction::Transfer(t) => (SlotKind::Transfer, t.from.0, t.to.0),
        Transaction::Withdraw(w) => (SlotKind::Withdraw, w.from.0, OPERATOR.0),
        Transaction::Deposit(d) => (SlotKind::Deposit, d.to.0, OPERATOR.0),
        Transaction::ForcedWithdraw(f) => (SlotKind::ForcedWithdraw, f.withdraw.from.0, OPERATOR.0),
        Transaction::Split(t) => (SlotKind::Split, t.from.0, OPERATOR.0),
        Transaction::StreamOpen(t) => (SlotKind::StreamOpen, t.body.payer.0, t.body.payee.0),
        Transaction::StreamSettle(t) => {
            (SlotKind::StreamSettle, t.body.payee.0, t.body.terms.payer.0)
        }
        Transaction::StreamClose(t) => (SlotKind::StreamClose, t.body.signer.0, t.body.payer.0),
        Transaction::Passport(_) | Transaction::RegisterShares(_) | Transaction::Distribute(_) => {
            return Err(WitnessError::KindNotProvable {
                position,
                kind: tx.kind().name(),
            })
        }
    };
    let r0 = state.root();
    // The book that a stream kind changes, as it is before (its owner: A for an open, B else).
    let book_before = match tx {
        Transaction::StreamOpen(t) => Some((t.body.payer, t.body.slot)),
        Transaction::StreamSettle(t) => Some((t.body.terms.payer, t.body.terms.slot)),
        Transaction::StreamClose(t) => Some((t.body.payer, t.body.slot)),
        _ => None,
    }
    .map(|(owner, slot)| {
        let book = state.streams_of(owner);
        let old = book.get(slot).map_or([0; 10], |s| {
            s.to_field_elements().map(|e| e.to_canonical_u64())
        });
        (
            owner,
            StreamWitness {
                slot: slot.0,
                path: book.path(slot).to_vec(),
                streams_root: book.root(),
                profile: state.profile_of(owner).digest(),
                old,
                ..StreamWitness::idle()
            },
        )
    });
    let mut base = HashMap::new();
    let mut view: HashMap<u32, Option<AccountFields>> = HashMap::new();
    for i in [a_idx, b_idx, OPERATOR.0] {
        base.insert(i, state.proof(i.into()).siblings);
        view.insert(i, state.account(i.into()).map(AccountFields::from_account));
    }
    let effects = state.apply(tx, ctx).map_err(|r| WitnessError::Rejected {
        position,
        code: r.code(),
    })?;

    let mut slot = SlotWitness {
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
        signature: tx.signature().copied(),
        a: LeafAccess {
            index: 0,
            account: None,
            siblings: vec![],
        },
        b: LeafAccess {
            index: 0,
            account: None,
            siblings: vec![],
        },
        c: LeafAccess {
            index: 0,
            account: None,
            siblings: vec![],
        },
    };
    let (debit, credit_b, credit_c, credit_a) = match tx {
        Transaction::Register(r) => {
            slot.pubkey = r.pubkey.to_field_elements().map(|e| e.to_canonical_u64());
            slot.valid_until = r.valid_until.get();
            (0, 0, 0, 0)
        }
        Transaction::Transfer(t) => {
            slot.amount = t.amount.get();
            slot.fee = t.fee.get();
            slot.nonce = t.nonce.get();
            slot.valid_until = t.valid_until.get();
            (t.amount.get() + t.fee.get(), t.amount.get(), t.fee.get(), 0)
        }
        Transaction::Withdraw(w) => {
            slot.amount = w.amount.get();
            slot.fee = w.fee.get();
            slot.nonce = w.nonce.get();
            slot.valid_until = w.valid_until.get();
            slot.to_l1 = w.to_l1.0;
            (w.amount.get() + w.fee.get(), 0, w.fee.get(), 0)
        }
        Transaction::Deposit(d) => {
            slot.amount = d.amount.get();
            slot.seq = d.seq;
            let credited = effects.deposit == Some(DepositOutcome::Credited);
            (0, 0, 0, if credited { d.amount.get() } else { 0 })
        }
        Transaction::ForcedWithdraw(f) => {
            let w = &f.withdraw;
            slot.amount = w.amount.get();
            slot.fee = w.fee.get();
            slot.nonce = w.nonce.get();
            slot.valid_until = w.valid_until.get();
            slot.to_l1 = w.to_l1.0;
            slot.seq = f.seq;
            slot.requested_at = f.requested_at.get();
            slot.signature = Some(w.signature);
            let outcome = effects.forced.ok_or_else(|| {
                WitnessError::Internal(format!(
                    "slot {position}: forced withdrawal without outcome"
                ))
            })?;
            slot.forced_status = outcome.status() as u8;
            if outcome == ForcedOutcome::Applied {
                (w.amount.get() + w.fee.get(), 0, w.fee.get(), 0)
            } else {
                (0, 0, 0, 0)
            }
        }
        Transaction::Split(t) => {
            let sum = t.parts.iter().map(|p| p.amount.get()).sum::<u64>();
            slot.amount = sum;
            slot.fee = t.fee.get();
            slot.nonce = t.nonce.get();
            slot.valid_until = t.valid_until.get();
            slot.n = t.parts.len() as u32;
            slot.parts_digest = parts_digest(&t.parts);
            (sum + t.fee.get(), 0, t.fee.get(), 0)
        }
        Transaction::StreamOpen(t) => {
            let (_, mut w) = book_before.clone().ok_or_else(no_book)?;
            let o = &t.body;
            w.price = o.price.get();
            w.max_ticks = o.max_ticks.get();
            w.expiry = o.expiry.get();
            w.anchor = o.anchor;
            let escrow = o.price.get() * u64::from(o.max_ticks.get());
            slot.amount = escrow;
            envelope(&mut slot, t.fee.get(), t.nonce.get(), t.valid_until.get());
            slot.stream = Some(w);
            (escrow + t.fee.get(), 0, t.fee.get(), 0)
        }
        Transaction::StreamSettle(t) => {
            let (_, mut w) = book_before.clone().ok_or_else(no_book)?;
            let terms = &t.body.terms;
            w.to = terms.to.get();
            w.t_to = terms.value;
            let price = w.old[1];
            let payout = price * u64::from(terms.to.get().saturating_sub(w.old[5] as u32));
            envelope(&mut slot, t.fee.get(), t.nonce.get(), t.valid_until.get());
            slot.stream = Some(w);
            (t.fee.get(), 0, t.fee.get(), payout)
        }
        Transaction::StreamClose(t) => {
            let (_, w) = book_before.clone().ok_or_else(no_book)?;
            let refund = w.old[1] * w.old[2].saturating_sub(w.old[5]);
            envelope(&mut slot, t.fee.get(), t.nonce.get(), t.valid_until.get());
            slot.stream = Some(w);
            (t.fee.get(), refund, t.fee.get(), 0)
        }
        Transaction::Passport(_) | Transaction::RegisterShares(_) | Transaction::Distribute(_) => {
            return Err(WitnessError::KindNotProvable {
                position,
                kind: tx.kind().name(),
            })
        }
    };

    let mut overlay = Overlay::default();
    let mut root = r0;
    let mut access = |index: u32,
                      new: &dyn Fn(Option<AccountFields>) -> Option<AccountFields>|
     -> Result<LeafAccess, WitnessError> {
        let old = view[&index];
        let siblings = overlay.siblings(index, &base[&index]);
        let la = LeafAccess {
            index,
            account: old,
            siblings,
        };
        if root_of(index, la.leaf(), &la.siblings) != root {
            return Err(WitnessError::Internal(format!(
                "access to {index} does not open the running root"
            )));
        }
        let updated = new(old);
        root = overlay.write(
            index,
            updated.map(|a| a.leaf()).unwrap_or(Digest::ZERO),
            &la.siblings,
        );
        view.insert(index, updated);
        Ok(la)
    };
    let is_spend = matches!(
        kind,
        SlotKind::Transfer
            | SlotKind::Withdraw
            | SlotKind::Split
            | SlotKind::StreamOpen
            | SlotKind::StreamSettle
            | SlotKind::StreamClose
    ) || (kind == SlotKind::ForcedWithdraw && slot.forced_status == 0);
    // The book owner's `ext` after the slot: the state's, now that the transaction applied.
    let new_ext = match &book_before {
        Some((owner, _)) => state.account(*owner).map(|a| a.ext),
        None => None,
    };
    let a_ext = new_ext.filter(|_| kind == SlotKind::StreamOpen);
    let b_ext = new_ext.filter(|_| matches!(kind, SlotKind::StreamSettle | SlotKind::StreamClose));
    let pubkey = slot.pubkey;
    slot.a = access(a_idx, &|old| match kind {
        SlotKind::Register => Some(AccountFields {
            pubkey,
            balance: 0,
            nonce: 0,
            ext: Digest::ZERO,
        }),
        _ => old.map(|mut a| {
            a.balance = a.balance - debit + credit_a;
            a.nonce += u64::from(is_spend);
            a.ext = a_ext.unwrap_or(a.ext);
            a
        }),
    })?;
    slot.b = access(b_idx, &|old| {
        old.map(|mut a| {
            a.balance += credit_b;
            a.ext = b_ext.unwrap_or(a.ext);
            a
        })
    })?;
    if kind == SlotKind::Split {
        // The credits happened between B and C (the chain proves them): C reads the operator
        // as the split left it before its fee, under the root the credits left.
        let op = state
            .account(OPERATOR)
            .map(AccountFields::from_account)
            .ok_or_else(|| WitnessError::Internal("no operator account".into()))?;
        let siblings = state.proof(OPERATOR).siblings.to_vec();
        let before_fee = AccountFields {
            balance: op.balance - credit_c,
            ..op
        };
        slot.split_root = root_of(OPERATOR.0, before_fee.leaf(), &siblings);
        root = root_of(OPERATOR.0, op.leaf(), &siblings);
        slot.c = LeafAccess {
            index: OPERATOR.0,
            account: Some(before_fee),
            siblings,
        };
    } else {
        slot.c = access(OPERATOR.0, &|old| {
            old.map(|mut a| {
                a.balance += credit_c;
                a
            })
        })?;
    }
    if root != state.root() {
        return Err(WitnessError::Internal(format!(
            "slot {position}: sequential accesses do not reach the native root"
        )));
    }
    Ok((slot, effects))
}

/// How many leaves [`leaf_witnesses`] makes of `txs` transactions in leaves of `k`: one per
/// `k` (the last partly filled), then with `min_leaves > 0` padded to a power of two of at
/// least `min_leaves` (0: no padding). The planner sizes the batch's other trees with it.
pub fn leaf_count(txs: usize, k: usize, min_leaves: usize) -> usize {
    let n = txs.div_ceil(k.max(1));
    if min_leaves > 0 {
        n.max(min_leaves).next_power_of_two()
    } else {
        n
    }
}

/// Witnesses of the leaf proofs of a batch: `txs` in order, each with its block's context,
/// applied to `state` with the native rules, cut into chunks of `k` slots (the last padded
/// with no-op slots); with `min_leaves > 0`, whole no-op leaves are added so that the number
/// of leaves is a power of two, at least `min_leaves` (0: no padding). Leaf `i` starts where leaf `i - 1` ends;
/// the first starts from the state's root, `ZERO` commitments and `state.next_deposit_seq()`.
///
/// A transaction the native rules reject yields [`WitnessError::Rejected`]; `state` then holds
/// the transactions before it.
pub fn leaf_witnesses(
    state: &mut State,
    txs: &[(Transaction, BlockContext)],
    batch_timestamp: Timestamp,
    k: usize,
    min_leaves: usize,
    depositors: Depositors<'_>,
) -> Result<Vec<LeafWitness>, WitnessError> {
    leaf_witnesses_and_chain(state, txs, batch_timestamp, k, min_leaves, depositors, None)
}

/// [`leaf_witnesses`], appending to `chain` (if given) the lanes of every split of the batch,
/// each built from the state just before it: the split-credit chain whose records are the
/// ones the leaves fold (checked).
pub fn leaf_witnesses_and_chain(
    state: &mut State,
    txs: &[(Transaction, BlockContext)],
    batch_timestamp: Timestamp,
    k: usize,
    min_leaves: usize,
    depositors: Depositors<'_>,
    mut chain: Option<&mut SplitChainBuilder>,
) -> Result<Vec<LeafWitness>, WitnessError> {
    if k == 0 {
        return Err(WitnessError::ZeroK);
    }
    let domain = state.domain().digest();
    let mut pubdata = PubdataCommitment::new();
    let mut withdrawals = WithdrawalsCommitment::new();
    let mut entries = Digest::ZERO;
    let start = Io {
        root: state.root(),
        pubdata: pubdata.digest(),
        withdrawals: withdrawals.digest(),
        deposits: state.next_deposit_seq(),
        entries,
        splits: Digest::ZERO,
        walks: Digest::ZERO,
    };
    let mut splits = Digest::ZERO;
    let mut walks = Digest::ZERO;
    let mut slots = Vec::with_capacity(txs.len());
    let mut after = Vec::with_capacity(txs.len());
    for (position, (tx, ctx)) in txs.iter().enumerate() {
        let valid_until = match tx {
            Transaction::Register(r) => Some(r.valid_until),
            Transaction::Transfer(t) => Some(t.valid_until),
            Transaction::Withdraw(w) => Some(w.valid_until),
            Transaction::StreamOpen(t) => Some(t.valid_until),
            Transaction::StreamSettle(t) => Some(t.valid_until),
            Transaction::StreamClose(t) => Some(t.valid_until),
            Transaction::Split(t) => Some(t.valid_until),
            Transaction::Passport(t) => Some(t.valid_until),
            Transaction::RegisterShares(t) => Some(t.valid_until),
            Transaction::Distribute(t) => Some(t.valid_until),
            // Judged at its L1 request time (in the rules and in the circuit).
            Transaction::Deposit(_) | Transaction::ForcedWithdraw(_) => None,
        };
        // Before the slot applies the split: its credits start from the state before it. A
        // split the rules refuse fails here or in the slot; only the slot's verdict counts.
        let chained = match (tx, chain.as_deref_mut()) {
            (Transaction::Split(split), Some(chain)) => {
                Some(chain.push_split(state, split).map_err(|e| format!("{e:#}")))
            }
            _ => None,
        };
        let (mut slot, effects) = tx_slot(state, tx, ctx, position)?;
        if let Some(record) = chained {
            let record = record.map_err(|e| {
                WitnessError::Internal(format!("slot {position}: the split-credit chain: {e}"))
            })?;
            if slot.split_record() != Some(record) {
                return Err(WitnessError::Internal(format!(
                    "slot {position}: the split-credit chain folds another record than the leaf"
                )));
            }
        }
        if let Transaction::Deposit(d) = tx {
            slot.depositor = depositors(d.seq)
                .ok_or(WitnessError::UnknownDepositor { seq: d.seq })?
                .0;
        }
        entries = absorb_entry(entries, &effects.pubdata, depositors)?;
        if valid_until.is_some_and(|v| v < batch_timestamp) {
            return Err(WitnessError::ExpiredAtBatchTimestamp { position });
        }
        pubdata.absorb(&effects.pubdata);
        if let Some(w) = &effects.withdrawal {
            withdrawals.absorb(w);
        }
        if let Some(r) = slot.split_record() {
            splits = r.absorb(splits);
        }
        if let Some(r) = slot.walk_record() {
            walks = crate::circuits::ticks::absorb(walks, &r);
        }
        slots.push(slot);
        after.push(Io {
            root: state.root(),
            pubdata: pubdata.digest(),
            withdrawals: withdrawals.digest(),
            deposits: state.next_deposit_seq(),
            entries,
            splits,
            walks,
        });
    }
    let n_leaves = leaf_count(slots.len(), k, min_leaves);
    let end = after.last().copied().unwrap_or(start);
    let mut leaves = Vec::with_capacity(n_leaves);
    let mut slots = slots.into_iter();
    for i in 0..n_leaves {
        let first = i * k;
        let io_in = if first == 0 {
            start
        } else {
            after.get(first - 1).copied().unwrap_or(end)
        };
        let mut leaf_slots: Vec<SlotWitness> = slots.by_ref().take(k).collect();
        let used = leaf_slots.len();
        let io_out = if used == 0 {
            io_in
        } else {
            after[first + used - 1]
        };
        while leaf_slots.len() < k {
            leaf_slots.push(noop_slot(state));
        }
        leaves.push(LeafWitness {
            statement: RangeStatement {
                old_root: io_in.root,
                new_root: io_out.root,
                pubdata_in: io_in.pubdata,
                pubdata_out: io_out.pubdata,
                withdrawals_in: io_in.withdrawals,
                withdrawals_out: io_out.withdrawals,
                deposits_first: io_in.deposits,
                deposits_next: io_out.deposits,
                timestamp: batch_timestamp.get(),
                domain,
                entries_in: io_in.entries,
                entries_out: io_out.entries,
                splits_in: io_in.splits,
                splits_out: io_out.splits,
                walks_in: io_in.walks,
                walks_out: io_out.walks,
            },
            slots: leaf_slots,
        });
    }
    Ok(leaves)
}
