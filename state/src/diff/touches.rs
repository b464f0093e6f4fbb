//! What a batch touched, and the check of its diff before it is published (SPEC 10.4, "Checked
//! before publishing").

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use super::{DiffError, PassportRecord, StateDiff};
use crate::account::{Account, AccountIndex, Amount, Nonce};
use crate::apply::{Effects, State};
use crate::hash::Digest;
use crate::pubdata::PubdataOp;
use crate::smt::{root_after_replacing, MerkleProof};
use crate::stream::StreamSlot;
use crate::tx::PassportAction;

/// What a batch did to one account before the batch's first change of each field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Before {
    balance: Option<Amount>,
    nonce: Option<Nonce>,
    ext: Option<Digest>,
}

/// The accounts a batch touched and their values before it, folded from the [`Effects`] of its
/// accepted transactions in order (the writer keeps one per open batch; recovery refolds the
/// open batch's effects). Only the generic fields of `Effects` are read (balance changes, nonce
/// change, registration), never the transaction kind, so new kinds are covered as long as they
/// report their changes there; one that does not is caught by [`BatchTouches::seal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchTouches {
    count_before: u64,
    before: BTreeMap<u32, Before>,
    /// The stream slots the batch changed: `(payer, slot)`.
    slots: BTreeSet<(AccountIndex, StreamSlot)>,
    /// The accounts whose `ext` the batch changed (their passport or lanes, if any, are
    /// published).
    exts: BTreeSet<AccountIndex>,
    /// The agents whose policy the batch set (their passport records carry it).
    policies: BTreeSet<AccountIndex>,
    /// The accounts that registered their revenue shares in the batch (published once).
    registered: BTreeSet<AccountIndex>,
}

impl BatchTouches {
    /// An empty batch that starts from `count_before` accounts.
    pub fn new(count_before: u64) -> Self {
        BatchTouches {
            count_before,
            before: BTreeMap::new(),
            slots: BTreeSet::new(),
            exts: BTreeSet::new(),
            policies: BTreeSet::new(),
            registered: BTreeSet::new(),
        }
    }

    /// Records the accounts an accepted transaction touched; the first `before` value of each
    /// field is its value before the batch.
    pub fn absorb(&mut self, fx: &Effects) {
        for c in &fx.balances {
            let b = self.before.entry(c.account.0).or_default();
            b.balance.get_or_insert(c.before);
        }
        // The diff carries lane 0 only (the leaf's nonce); lanes 1 to 7 live in `ext`.
        if let Some(n) = fx
            .nonce
            .filter(|n| n.before.lane() == crate::lanes::Lane::ZERO)
        {
            let b = self.before.entry(n.account.0).or_default();
            b.nonce.get_or_insert(n.before);
        }
        if let Some(i) = fx.registered {
            self.before.entry(i.0).or_default();
        }
        for e in &fx.ext {
            let b = self.before.entry(e.account.0).or_default();
            b.ext.get_or_insert(e.before);
            if let Some(slot) = e.slot {
                self.slots.insert((e.account, slot));
            }
            self.exts.insert(e.account);
        }
        // The two kind-specific reads: a policy travels in the diff of the batch that set it,
        // and shares in the diff of the batch that registered them.
        match &fx.pubdata {
            PubdataOp::Passport(op) => {
                if let PassportAction::Delegate { .. } | PassportAction::SetPolicy { .. } =
                    op.action
                {
                    self.policies.insert(op.agent);
                }
            }
            PubdataOp::RegisterShares { account, .. } => {
                self.registered.insert(*account);
            }
            _ => {}
        }
    }

    pub fn count_before(&self) -> u64 {
        self.count_before
    }

    /// The touched indices, ascending.
    pub fn indices(&self) -> impl Iterator<Item = AccountIndex> + '_ {
        self.before.keys().map(|&i| AccountIndex(i))
    }

    /// The stream slots the batch changed, ascending by `(payer, slot)`.
    pub fn slots(&self) -> impl Iterator<Item = (AccountIndex, StreamSlot)> + '_ {
        self.slots.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.before.len()
    }

    /// How many stream slots the batch changed (its stream records).
    pub fn stream_slots(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.before.is_empty()
    }

    /// The batch's diff from `state` (the state after the batch), unchecked ([`Self::seal`]
    /// checks it against the previous root).
    pub fn diff(&self, state: &State) -> Result<StateDiff, DiffError> {
        StateDiff::from_state(
            state,
            self.indices(),
            self.slots(),
            self.exts.iter().copied(),
            &self.policies,
            &self.registered,
            self.count_before,
        )
    }

    /// Builds the batch's diff from `state` (the state after the batch), encodes it
    /// ([`StateDiff::encode_published`]: version 1, or 4 with stream or agent records), checks
    /// the encoding with [`BatchTouches::verify`], and returns the bytes to publish.
    pub fn seal(&self, state: &mut State, old_root: Digest) -> Result<Vec<u8>, DiffError> {
        let blob = self.diff(state)?.encode_published();
        self.verify(&blob, state, old_root)?;
        Ok(blob)
    }

    /// Checks that `blob` takes the state whose root is `old_root` (the previous batch's) to
    /// `state` (see the module docs): it decodes, starts from the account count before the
    /// batch, ends at the state's count, every record equals the state's account, and the
    /// state's tree with the records' accounts put back to their pre-batch values has the root
    /// `old_root`.
    pub fn verify(
        &self,
        blob: &[u8],
        state: &mut State,
        old_root: Digest,
    ) -> Result<StateDiff, DiffError> {
        let diff = StateDiff::decode(blob)?;
        if diff.count_before != self.count_before {
            return Err(DiffError::CountMismatch {
                diff: diff.count_before,
                state: self.count_before,
            });
        }
        if diff.count_after() != state.num_accounts() {
            return Err(DiffError::CountMismatch {
                diff: diff.count_after(),
                state: state.num_accounts(),
            });
        }
        let mut old_leaves = Vec::with_capacity(diff.records.len());
        for r in &diff.records {
            let i = r.index.0;
            let now = *state.account(r.index).ok_or(DiffError::UnknownAccount(i))?;
            let key_matches = r.pubkey.is_none_or(|k| k == now.pubkey);
            if r.balance != now.balance || r.nonce != now.nonce || !key_matches {
                return Err(DiffError::RecordMismatch(i));
            }
            // Before the batch: absent (ZERO leaf) for a new account; otherwise the same key
            // (keys never change) with each field's first recorded `before`, or its current
            // value if the batch never changed that field.
            let old = if r.pubkey.is_some() {
                None
            } else {
                let b = self.before.get(&i).copied().unwrap_or_default();
                Some(Account {
                    balance: b.balance.unwrap_or(now.balance),
                    nonce: b.nonce.unwrap_or(now.nonce),
                    ext: b.ext.unwrap_or(now.ext),
                    ..now
                })
            };
            old_leaves.push((i, old));
        }
        // Stream records: the slots the batch changed, each equal to the state's. With the
        // account records this rebuilds each payer's book, hence its `ext`; an `ext` change no
        // transaction reported would have left the wrong `before` in the root check below.
        let published: Vec<(AccountIndex, StreamSlot)> =
            diff.streams().iter().map(|r| (r.payer, r.slot)).collect();
        for r in diff.streams() {
            if state.streams_of(r.payer).get(r.slot) != r.stream.as_ref() {
                return Err(DiffError::StreamMismatch {
                    payer: r.payer.0,
                    slot: r.slot.0,
                });
            }
        }
        if let Some((payer, slot)) = self.slots().find(|k| published.binary_search(k).is_err()) {
            return Err(DiffError::StreamMismatch {
                payer: payer.0,
                slot: slot.0,
            });
        }
        // Agent records: equal to the state's, and one for every account whose `ext` changed
        // and that has a passport or used lanes (else a replica could not recompute its `ext`).
        for r in diff.passports() {
            let now = state
                .passport(r.agent)
                .ok_or(DiffError::AgentMismatch(r.agent.0))?;
            let want = PassportRecord::of(r.agent, now, r.policy.is_some());
            if *r != want || (self.policies.contains(&r.agent) && r.policy.is_none()) {
                return Err(DiffError::AgentMismatch(r.agent.0));
            }
        }
        for r in diff.lanes() {
            if state.lanes_of(r.account) != r.lanes {
                return Err(DiffError::AgentMismatch(r.account.0));
            }
        }
        // Shares: exactly those registered in the batch, equal to the state's (they never
        // change, so a record in any other batch could only repeat or contradict them).
        let published: BTreeSet<AccountIndex> = diff.shares().iter().map(|r| r.account()).collect();
        if let Some(a) = published.symmetric_difference(&self.registered).next() {
            return Err(DiffError::AgentMismatch(a.0));
        }
        for r in diff.shares() {
            if state.shares_of(r.account()) != Some(&r.0) {
                return Err(DiffError::AgentMismatch(r.account().0));
            }
        }
        for &a in &self.exts {
            let has_passport = state.passport(a).is_some();
            let has_lanes = !state.lanes_of(a).is_unused();
            let published_passport = diff
                .passports()
                .binary_search_by_key(&a, |r| r.agent)
                .is_ok();
            let published_lanes = diff.lanes().binary_search_by_key(&a, |r| r.account).is_ok();
            if has_passport != published_passport || has_lanes != published_lanes {
                return Err(DiffError::AgentMismatch(a.0));
            }
        }
        let proofs: Vec<MerkleProof> = diff.records.iter().map(|r| state.proof(r.index)).collect();
        let replaced: Vec<(u32, Digest, &MerkleProof)> = old_leaves
            .par_iter()
            .zip(proofs.par_iter())
            .map(|(&(i, old), p)| (i, old.map_or(Digest::ZERO, |a| a.leaf_hash()), p))
            .collect();
        let computed = root_after_replacing(&replaced).unwrap_or_else(|| state.root());
        if computed != old_root {
            return Err(DiffError::OldRootMismatch {
                expected: old_root,
                computed,
            });
        }
        Ok(diff)
    }
}
