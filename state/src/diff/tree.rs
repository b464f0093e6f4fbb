//! The accounts and their tree as anyone rebuilds them from L1 (SPEC 16.7): genesis, then one
//! diff per batch.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use super::{DiffError, PassportRecord, StateDiff};
use crate::account::{Account, AccountIndex};
use crate::crypto::schnorr::{EncodedKey, PublicKey};
use crate::ext::{ext_digest, Profile};
use crate::hash::Digest;
use crate::lanes::LaneNonces;
use crate::smt::SparseMerkleTree;
use crate::stream::PayerStreams;

/// The accounts and their tree, as anyone rebuilds them from L1: genesis, then one diff per
/// batch. No domain, deposit counter or supply bookkeeping: only what the root commits.
#[derive(Clone, Debug)]
pub struct AccountTree {
    accounts: Vec<Account>,
    by_key: HashMap<EncodedKey, u32>,
    tree: SparseMerkleTree,
    /// Each payer's stream book, from the stream records (only payers with a stream).
    streams: BTreeMap<u32, PayerStreams>,
    /// Each agent's latest passport record, with the last policy published for it.
    passports: BTreeMap<u32, PassportRecord>,
    /// Each account's lanes 1 to 7 (only accounts that used one).
    lanes: BTreeMap<u32, LaneNonces>,
    /// Each revenue-share account's shares digest (SPEC 19.2; shares never change).
    shares: BTreeMap<u32, Digest>,
}

impl AccountTree {
    /// The genesis accounts (SPEC 11.1): the operator at index 0, balance 0, nonce 0. Its root
    /// is the root of [`State::genesis`] with the same key, whatever the domain.
    pub fn genesis(operator: PublicKey) -> Self {
        AccountTree::from_accounts(&[Account::new(operator)])
    }

    /// A tree holding `accounts` at indices `0..len` and no streams (e.g. a copy of the
    /// accounts of a [`crate::apply::State`] without streams; an account's `ext` is kept as
    /// given, but a later diff recomputes the `ext` of a payer it names from the books).
    pub fn from_accounts(accounts: &[Account]) -> Self {
        let leaves: Vec<(u32, Digest)> = accounts
            .par_iter()
            .enumerate()
            .map(|(i, a)| (i as u32, a.leaf_hash()))
            .collect();
        let mut tree = SparseMerkleTree::new();
        tree.update_batch(&leaves);
        AccountTree {
            accounts: accounts.to_vec(),
            by_key: accounts
                .iter()
                .enumerate()
                .map(|(i, a)| (a.pubkey, i as u32))
                .collect(),
            tree,
            streams: BTreeMap::new(),
            passports: BTreeMap::new(),
            lanes: BTreeMap::new(),
            shares: BTreeMap::new(),
        }
    }

    /// A copy of `state`'s accounts and stream books (a replica caught up by other means, e.g.
    /// a snapshot), from which later diffs apply like on one that followed every diff.
    pub fn from_state(state: &crate::apply::State) -> Self {
        let mut t = AccountTree::from_accounts(state.accounts());
        t.streams = state.streams.clone();
        t.passports = state
            .passports
            .iter()
            .map(|(&i, p)| (i, PassportRecord::of(AccountIndex(i), p, true)))
            .collect();
        t.lanes = state.lanes.clone();
        t.shares = state.shares.iter().map(|(&i, s)| (i, s.digest())).collect();
        t
    }

    pub fn root(&self) -> Digest {
        self.tree.root()
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    pub fn num_accounts(&self) -> u64 {
        self.accounts.len() as u64
    }

    /// The Merkle proof of account `index`'s leaf under [`AccountTree::root`] (SPEC 7): what an
    /// exit in exodus presents to L1.
    pub fn proof(&self, index: u32) -> crate::smt::MerkleProof {
        self.tree.proof(index)
    }

    /// A payer's open streams, as the diffs so far published them.
    pub fn streams_of(&self, payer: u32) -> Option<&PayerStreams> {
        self.streams.get(&payer)
    }

    /// An agent's passport, as the diffs so far published it (with the last policy they carried).
    pub fn passport_of(&self, agent: u32) -> Option<&PassportRecord> {
        self.passports.get(&agent)
    }

    /// The agents whose passports name `owner` (SPEC 20.2), ascending.
    pub fn agents_owned_by(&self, owner: u32) -> impl Iterator<Item = u32> + '_ {
        self.passports
            .iter()
            .filter(move |(_, p)| p.owner.0 == owner)
            .map(|(&a, _)| a)
    }

    /// The parts of `account`'s profile (SPEC 18.3) as the diffs so far published them.
    pub fn profile_of(&self, account: u32) -> Profile {
        Profile {
            shares: self.shares.get(&account).copied().unwrap_or(Digest::ZERO),
            passport: self
                .passports
                .get(&account)
                .map_or(Digest::ZERO, PassportRecord::digest),
            lanes: self
                .lanes
                .get(&account)
                .map_or(Digest::ZERO, LaneNonces::digest),
        }
    }

    /// The root of `payer`'s stream book (the empty book's without streams).
    pub fn streams_root(&self, payer: u32) -> Digest {
        self.streams.get(&payer).map_or(
            crate::smt::empty_hashes()[crate::stream::SLOT_DEPTH],
            PayerStreams::root,
        )
    }

    /// The sum of all balances (it can exceed a u64).
    pub fn total_balance(&self) -> u128 {
        self.accounts
            .iter()
            .map(|a| u128::from(a.balance.get()))
            .sum()
    }

    /// Applies a batch's diff and returns the new root. All checks run before any write: on
    /// error the tree is unchanged.
    pub fn apply(&mut self, diff: &StateDiff) -> Result<Digest, DiffError> {
        let count = self.num_accounts();
        if diff.count_before != count {
            return Err(DiffError::CountMismatch {
                diff: diff.count_before,
                state: count,
            });
        }
        // A new account may reuse a key (SPEC 13.6): the sequencer's rules refuse it, but a
        // proof cannot, so data availability must not depend on it. The state is keyed by
        // index; `by_key` keeps the first account of a key.
        let mut new_keys: HashMap<EncodedKey, u32> = HashMap::new();
        for r in &diff.records {
            if let Some(k) = r.pubkey {
                if !self.by_key.contains_key(&k) {
                    new_keys.entry(k).or_insert(r.index.0);
                }
            }
        }
        for r in &diff.records {
            match r.pubkey {
                // Sequence::next guarantees new records come in index order from `count`.
                Some(pubkey) => self.accounts.push(Account {
                    pubkey,
                    balance: r.balance,
                    nonce: r.nonce,
                    ext: Digest::ZERO,
                }),
                None => {
                    let a = &mut self.accounts[r.index.0 as usize];
                    a.balance = r.balance;
                    a.nonce = r.nonce;
                }
            }
        }
        self.by_key.extend(new_keys);
        // Stream and agent records: rewrite the slots, passports and lanes, then the `ext` of each
        // account they name from its book and profile (SPEC 18.3).
        let mut named = std::collections::BTreeSet::new();
        for r in diff.passports() {
            let mut rec = r.clone();
            if rec.policy.is_none() {
                rec.policy = self
                    .passports
                    .get(&r.agent.0)
                    .filter(|old| old.policy_digest == r.policy_digest)
                    .and_then(|old| old.policy.clone());
            }
            self.passports.insert(r.agent.0, rec);
            named.insert(r.agent.0);
        }
        for r in diff.lanes() {
            self.lanes.insert(r.account.0, r.lanes);
            named.insert(r.account.0);
        }
        for r in diff.shares() {
            self.shares.insert(r.account().0, r.0.digest());
            named.insert(r.account().0);
        }
        let mut payers = Vec::new();
        for r in diff.streams() {
            let book = self.streams.entry(r.payer.0).or_default();
            match r.stream {
                Some(s) => book.put(s),
                None => {
                    book.remove(r.slot);
                }
            }
            if payers.last() != Some(&r.payer.0) {
                payers.push(r.payer.0);
            }
        }
        for p in payers {
            if self.streams.get(&p).is_some_and(PayerStreams::is_empty) {
                self.streams.remove(&p);
            }
            named.insert(p);
        }
        for a in named {
            let ext = ext_digest(self.streams_root(a), self.profile_of(a).digest());
            self.accounts[a as usize].ext = ext;
        }
        let accounts = &self.accounts;
        let leaves: Vec<(u32, Digest)> = diff
            .records
            .par_iter()
            .with_min_len(64)
            .map(|r| (r.index.0, accounts[r.index.0 as usize].leaf_hash()))
            .collect();
        self.tree.update_batch(&leaves);
        Ok(self.tree.root())
    }
}
