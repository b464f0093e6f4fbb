//! Net state diffs: what a batch publishes on L1 for data availability (SPEC 10.4).
//!
//! Per-transaction ops (section 10) cost L1 calldata for every payment; agents that pay the same
//! counterparties again and again touch far fewer accounts than they make payments, so a batch
//! publishes one record per account it touched instead, with the account's values *after* the
//! batch. Anyone holding the state before the batch (ultimately: genesis plus every earlier
//! diff) rebuilds the state after it, and its root, from the diff alone.
//!
//! # Encoding, version 1
//!
//! ```text
//! header   version (1 byte) = 1 ‖ count_before LE64 ‖ n LE32                 13 bytes
//! record   index LE32 ‖ balance LE64 ‖ nonce LE64 [‖ pubkey (40 bytes)]       20 or 60 bytes
//! ```
//!
//! `count_before` is the number of accounts before the batch (at most 2^32) and `n` the number
//! of records that follow, sorted strictly by index. A record with `index >= count_before` is an
//! account created by the batch and carries its public key; accounts are dense, so these records
//! are exactly `count_before, count_before + 1, ...`. The header states `count_before` (8 bytes
//! per batch, mostly zeros) rather than leaving it to the decoder's knowledge of the previous
//! state, so that a blob parses on its own, and applying it to the wrong state is caught as a
//! count mismatch rather than misread. A decoder rejects, in byte order: an unknown version,
//! `count_before > 2^32`, a record cut short or missing, an index not above the previous one,
//! a new account out of sequence, a balance or nonce above 2^63 - 1, an invalid key, and bytes
//! after the last record. Hence every diff has exactly one encoding.
//!
//! The leaf's `ext` digest is not carried: it is zero for every account in v1 (SPEC 6), so a
//! builder refuses an account with a non-zero `ext` ([`DiffError::NonZeroExt`]); the version byte
//! leaves room for a layout that carries it once agent fields exist.
//!
//! # Which accounts
//!
//! Every account the batch touched (from each accepted transaction's [`Effects`]) plus every
//! account it created. Under the v1 rules a touched account always ends the batch changed (a
//! sender's nonce only grows; an account that only receives only gains), so dropping
//! "touched but unchanged" records would save nothing and is not done; such a record would be
//! harmless (applying it rewrites the same values).
//!
//! # Checking a diff before publishing it
//!
//! [`BatchTouches::seal`] builds the diff from the state after the batch and checks it against
//! the root before the batch without a copy of the old state: it decodes its own blob, compares
//! every record with the state, and recomputes the *previous* root from Merkle proofs of the
//! touched leaves with their pre-batch values put back ([`root_after_replacing`]). If that gives
//! the previous batch's root, the two trees differ only at the diff's indices, so applying the
//! diff to the previous state yields exactly the new root.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use crate::account::{Account, AccountIndex, Amount, Nonce};
use crate::apply::{Effects, State};
use crate::crypto::schnorr::{EncodedKey, KeyError, PublicKey};
use crate::hash::Digest;
use crate::smt::{root_after_replacing, MerkleProof, SparseMerkleTree};

/// The encoding version written by [`StateDiff::encode`] and the only one decoded.
pub const DIFF_VERSION: u8 = 1;
/// Bytes of the header: version, `count_before`, number of records.
pub const HEADER_BYTES: usize = 1 + 8 + 4;
/// Bytes of a record of an account that existed before the batch.
pub const RECORD_BYTES: usize = 4 + 8 + 8;
/// Bytes of a record of an account created by the batch (with its public key).
pub const NEW_RECORD_BYTES: usize = RECORD_BYTES + PublicKey::BYTES;
/// The number of account indices (the tree has depth 32).
pub const MAX_ACCOUNTS: u64 = 1 << 32;

/// An account's values after the batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AccountRecord {
    pub index: AccountIndex,
    pub balance: Amount,
    pub nonce: Nonce,
    /// Present exactly for accounts created by the batch.
    pub pubkey: Option<EncodedKey>,
}

/// The net effect of a batch on the accounts: see the module docs. Always well formed: the
/// constructors check what the decoder checks.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StateDiff {
    count_before: u64,
    records: Vec<AccountRecord>,
}

/// Why a state diff could not be built, parsed, applied or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("state diff ends early")]
    Truncated,
    #[error("{0} bytes after the last record of the state diff")]
    TrailingBytes(usize),
    #[error("unsupported state diff version {0}")]
    UnsupportedVersion(u8),
    #[error("account count {0} is above 2^32")]
    CountOutOfRange(u64),
    #[error(
        "record of account {index} follows account {previous}: records must be sorted by index"
    )]
    Unsorted { previous: u32, index: u32 },
    #[error("account {0} has two records")]
    DuplicateIndex(u32),
    #[error("record of new account {index} where account {expected} was due (new accounts are consecutive)")]
    NewAccountGap { expected: u64, index: u32 },
    #[error("account {index}: {value} is above 2^63 - 1")]
    OutOfRange { index: u32, value: u64 },
    #[error("account {index}: invalid public key: {source}")]
    PublicKey {
        index: u32,
        #[source]
        source: KeyError,
    },
    #[error("record of existing account {0} carries a public key")]
    UnexpectedKey(u32),
    #[error("record of new account {0} has no public key")]
    MissingKey(u32),
    #[error("more records than account indices")]
    TooManyRecords,
    #[error("account {0} does not exist")]
    UnknownAccount(u32),
    #[error("account {0} has a non-zero ext digest, which diff version 1 cannot carry")]
    NonZeroExt(u32),
    #[error("the diff starts from {diff} accounts but the state has {state}")]
    CountMismatch { diff: u64, state: u64 },
    #[error("record of account {0} differs from the state")]
    RecordMismatch(u32),
    #[error("the diff does not start from the previous root {expected}: the touched accounts put back give {computed}")]
    OldRootMismatch { expected: Digest, computed: Digest },
}

impl DiffError {
    /// Stable machine-readable name (docs/SPEC.md 10.4), e.g. for the rebuild tool's output.
    pub fn code(&self) -> &'static str {
        match self {
            DiffError::Truncated => "TRUNCATED",
            DiffError::TrailingBytes(_) => "TRAILING_BYTES",
            DiffError::UnsupportedVersion(_) => "UNSUPPORTED_VERSION",
            DiffError::CountOutOfRange(_) => "COUNT_OUT_OF_RANGE",
            DiffError::Unsorted { .. } => "UNSORTED",
            DiffError::DuplicateIndex(_) => "DUPLICATE_INDEX",
            DiffError::NewAccountGap { .. } => "NEW_ACCOUNT_GAP",
            DiffError::OutOfRange { .. } => "OUT_OF_RANGE",
            DiffError::PublicKey { source, .. } => match source {
                KeyError::NonCanonical => "PUBLIC_KEY_NON_CANONICAL",
                KeyError::NotOnCurve => "PUBLIC_KEY_NOT_ON_CURVE",
                KeyError::Neutral => "PUBLIC_KEY_NEUTRAL",
                // `PublicKey::from_bytes` reports no other error for 40 bytes.
                _ => "PUBLIC_KEY_INVALID",
            },
            DiffError::UnexpectedKey(_) => "UNEXPECTED_KEY",
            DiffError::MissingKey(_) => "MISSING_KEY",
            DiffError::TooManyRecords => "TOO_MANY_RECORDS",
            DiffError::UnknownAccount(_) => "UNKNOWN_ACCOUNT",
            DiffError::NonZeroExt(_) => "NON_ZERO_EXT",
            DiffError::CountMismatch { .. } => "COUNT_MISMATCH",
            DiffError::RecordMismatch(_) => "RECORD_MISMATCH",
            DiffError::OldRootMismatch { .. } => "OLD_ROOT_MISMATCH",
        }
    }
}

/// The rules every sequence of records obeys, applied one record at a time (by the decoder as
/// it reads, so the first bad field decides the error, and by [`StateDiff::new`]).
struct Sequence {
    count_before: u64,
    previous: Option<u32>,
    next_new: u64,
}

impl Sequence {
    fn new(count_before: u64) -> Result<Self, DiffError> {
        if count_before > MAX_ACCOUNTS {
            return Err(DiffError::CountOutOfRange(count_before));
        }
        Ok(Sequence {
            count_before,
            previous: None,
            next_new: count_before,
        })
    }

    /// Checks the next record's index; returns whether it is a new account (carries a key).
    fn next(&mut self, index: u32) -> Result<bool, DiffError> {
        if let Some(previous) = self.previous {
            if index == previous {
                return Err(DiffError::DuplicateIndex(index));
            }
            if index < previous {
                return Err(DiffError::Unsorted { previous, index });
            }
        }
        self.previous = Some(index);
        let is_new = u64::from(index) >= self.count_before;
        if is_new {
            if u64::from(index) != self.next_new {
                return Err(DiffError::NewAccountGap {
                    expected: self.next_new,
                    index,
                });
            }
            self.next_new += 1;
        }
        Ok(is_new)
    }
}

impl StateDiff {
    /// A diff from its parts, checked like a decoded one.
    pub fn new(count_before: u64, records: Vec<AccountRecord>) -> Result<Self, DiffError> {
        if records.len() as u64 > MAX_ACCOUNTS - 1 {
            return Err(DiffError::TooManyRecords);
        }
        let mut seq = Sequence::new(count_before)?;
        for r in &records {
            match (seq.next(r.index.0)?, r.pubkey.is_some()) {
                (true, false) => return Err(DiffError::MissingKey(r.index.0)),
                (false, true) => return Err(DiffError::UnexpectedKey(r.index.0)),
                _ => {}
            }
        }
        Ok(StateDiff {
            count_before,
            records,
        })
    }

    /// The diff that takes a state with `count_before` accounts to `accounts`, given the indices
    /// the batch touched. Every account at `count_before` or above is included whether listed or
    /// not (a created account is always part of the diff).
    pub fn from_accounts(
        accounts: &[Account],
        touched: impl IntoIterator<Item = AccountIndex>,
        count_before: u64,
    ) -> Result<Self, DiffError> {
        let count = accounts.len() as u64;
        if count_before > count {
            return Err(DiffError::CountMismatch {
                diff: count_before,
                state: count,
            });
        }
        let mut indices: BTreeSet<u32> = touched.into_iter().map(|i| i.0).collect();
        // count <= 2^32, so every index below it is a u32.
        indices.extend((count_before..count).map(|i| i as u32));
        let records = indices
            .into_iter()
            .map(|i| {
                let a = accounts
                    .get(i as usize)
                    .ok_or(DiffError::UnknownAccount(i))?;
                if a.ext != Digest::ZERO {
                    return Err(DiffError::NonZeroExt(i));
                }
                Ok(AccountRecord {
                    index: AccountIndex(i),
                    balance: a.balance,
                    nonce: a.nonce,
                    pubkey: (u64::from(i) >= count_before).then_some(a.pubkey),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        StateDiff::new(count_before, records)
    }

    /// [`StateDiff::from_accounts`] over the accounts of `state` (the state after the batch).
    pub fn from_state(
        state: &State,
        touched: impl IntoIterator<Item = AccountIndex>,
        count_before: u64,
    ) -> Result<Self, DiffError> {
        StateDiff::from_accounts(state.accounts(), touched, count_before)
    }

    /// The number of accounts before the batch.
    pub fn count_before(&self) -> u64 {
        self.count_before
    }

    /// The number of accounts after the batch.
    pub fn count_after(&self) -> u64 {
        self.count_before + self.records.iter().filter(|r| r.pubkey.is_some()).count() as u64
    }

    /// The records, sorted by index.
    pub fn records(&self) -> &[AccountRecord] {
        &self.records
    }

    /// The length of [`StateDiff::encode`].
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES
            + self
                .records
                .iter()
                .map(|r| {
                    if r.pubkey.is_some() {
                        NEW_RECORD_BYTES
                    } else {
                        RECORD_BYTES
                    }
                })
                .sum::<usize>()
    }

    /// The canonical bytes (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(DIFF_VERSION);
        out.extend_from_slice(&self.count_before.to_le_bytes());
        // `new` bounds the number of records below 2^32.
        out.extend_from_slice(&(self.records.len() as u32).to_le_bytes());
        for r in &self.records {
            out.extend_from_slice(&r.index.0.to_le_bytes());
            out.extend_from_slice(&r.balance.get().to_le_bytes());
            out.extend_from_slice(&r.nonce.get().to_le_bytes());
            if let Some(k) = &r.pubkey {
                out.extend_from_slice(&k.to_bytes());
            }
        }
        debug_assert_eq!(out.len(), self.encoded_len());
        out
    }

    /// Parses and checks an encoded diff (see the module docs for what is rejected).
    pub fn decode(bytes: &[u8]) -> Result<Self, DiffError> {
        let mut r = Reader(bytes);
        let [version] = r.take::<1>()?;
        if version != DIFF_VERSION {
            return Err(DiffError::UnsupportedVersion(version));
        }
        let count_before = u64::from_le_bytes(r.take()?);
        let mut seq = Sequence::new(count_before)?;
        let n = u32::from_le_bytes(r.take()?);
        // Do not trust `n` for the allocation: it is bounded by what the bytes can hold.
        let mut records = Vec::with_capacity((n as usize).min(bytes.len() / RECORD_BYTES));
        for _ in 0..n {
            let index = u32::from_le_bytes(r.take()?);
            let is_new = seq.next(index)?;
            let balance = r.bounded(index, Amount::new)?;
            let nonce = r.bounded(index, Nonce::new)?;
            let pubkey = if is_new {
                let k = EncodedKey::from_bytes(&r.take()?)
                    .map_err(|source| DiffError::PublicKey { index, source })?;
                Some(k)
            } else {
                None
            };
            records.push(AccountRecord {
                index: AccountIndex(index),
                balance,
                nonce,
                pubkey,
            });
        }
        if !r.0.is_empty() {
            return Err(DiffError::TrailingBytes(r.0.len()));
        }
        Ok(StateDiff {
            count_before,
            records,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DiffError> {
        let (head, tail) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(DiffError::Truncated)?;
        self.0 = tail;
        Ok(*head)
    }

    fn bounded<T>(&mut self, index: u32, new: impl Fn(u64) -> Option<T>) -> Result<T, DiffError> {
        let value = u64::from_le_bytes(self.take()?);
        new(value).ok_or(DiffError::OutOfRange { index, value })
    }
}

/// The accounts and their tree, as anyone rebuilds them from L1: genesis, then one diff per
/// batch. No domain, deposit counter or supply bookkeeping: only what the root commits.
#[derive(Clone, Debug)]
pub struct AccountTree {
    accounts: Vec<Account>,
    by_key: HashMap<EncodedKey, u32>,
    tree: SparseMerkleTree,
}

impl AccountTree {
    /// The genesis accounts (SPEC 11.1): the operator at index 0, balance 0, nonce 0. Its root
    /// is the root of [`State::genesis`] with the same key, whatever the domain.
    pub fn genesis(operator: PublicKey) -> Self {
        AccountTree::from_accounts(&[Account::new(operator)])
    }

    /// A tree holding `accounts` at indices `0..len` (e.g. a copy of a [`State`]'s accounts).
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
        }
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
}

impl BatchTouches {
    /// An empty batch that starts from `count_before` accounts.
    pub fn new(count_before: u64) -> Self {
        BatchTouches {
            count_before,
            before: BTreeMap::new(),
        }
    }

    /// Records the accounts an accepted transaction touched; the first `before` value of each
    /// field is its value before the batch.
    pub fn absorb(&mut self, fx: &Effects) {
        for c in &fx.balances {
            let b = self.before.entry(c.account.0).or_default();
            b.balance.get_or_insert(c.before);
        }
        if let Some(n) = &fx.nonce {
            let b = self.before.entry(n.account.0).or_default();
            b.nonce.get_or_insert(n.before);
        }
        if let Some(i) = fx.registered {
            self.before.entry(i.0).or_default();
        }
        if let Some(e) = &fx.ext {
            let b = self.before.entry(e.account.0).or_default();
            b.ext.get_or_insert(e.before);
        }
    }

    pub fn count_before(&self) -> u64 {
        self.count_before
    }

    /// The touched indices, ascending.
    pub fn indices(&self) -> impl Iterator<Item = AccountIndex> + '_ {
        self.before.keys().map(|&i| AccountIndex(i))
    }

    pub fn len(&self) -> usize {
        self.before.len()
    }

    pub fn is_empty(&self) -> bool {
        self.before.is_empty()
    }

    /// Builds the batch's diff from `state` (the state after the batch), encodes it, checks the
    /// encoding with [`BatchTouches::verify`], and returns the bytes to publish.
    pub fn seal(&self, state: &mut State, old_root: Digest) -> Result<Vec<u8>, DiffError> {
        let blob = StateDiff::from_state(state, self.indices(), self.count_before)?.encode();
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
            if now.ext != Digest::ZERO {
                return Err(DiffError::NonZeroExt(i));
            }
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

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::account::Timestamp;
    use crate::apply::BlockContext;
    use crate::crypto::schnorr::SecretKey;
    use crate::tx::{Deposit, Domain, Transaction, UnsignedRegister, UnsignedTransfer};

    const DOMAIN: Domain = Domain {
        chain_id: 31337,
        rollup: [7; 20],
    };
    const NOW: u64 = 1_700_000_000;

    fn key(seed: u64) -> SecretKey {
        SecretKey::random(&mut StdRng::seed_from_u64(seed))
    }
    fn amt(v: u64) -> Amount {
        Amount::new(v).unwrap()
    }
    fn nonce(v: u64) -> Nonce {
        Nonce::new(v).unwrap()
    }
    fn ctx() -> BlockContext {
        BlockContext {
            timestamp: Timestamp::new(NOW).unwrap(),
        }
    }
    fn rec(index: u32, balance: u64, n: u64, pubkey: Option<PublicKey>) -> AccountRecord {
        AccountRecord {
            index: AccountIndex(index),
            balance: amt(balance),
            nonce: nonce(n),
            pubkey: pubkey.map(EncodedKey::from),
        }
    }

    /// Accounts 0..3 exist; the batch touches 1 and 2 and creates 3.
    fn sample() -> StateDiff {
        StateDiff::new(
            3,
            vec![
                rec(1, 500, 2, None),
                rec(2, 0x0102_0304_0506, 0, None),
                rec(3, 7, 1, Some(key(9).public_key())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn layout_is_header_then_fixed_records() {
        let d = sample();
        let b = d.encode();
        assert_eq!(b.len(), HEADER_BYTES + 2 * RECORD_BYTES + NEW_RECORD_BYTES);
        assert_eq!(b.len(), d.encoded_len());
        assert_eq!(b[0], 1, "version");
        assert_eq!(&b[1..9], &3u64.to_le_bytes(), "count before");
        assert_eq!(&b[9..13], &3u32.to_le_bytes(), "records");
        assert_eq!(&b[13..17], &1u32.to_le_bytes());
        assert_eq!(&b[17..25], &500u64.to_le_bytes());
        assert_eq!(&b[25..33], &2u64.to_le_bytes());
        assert_eq!(&b[33..37], &2u32.to_le_bytes());
        let new = &b[HEADER_BYTES + 2 * RECORD_BYTES..];
        assert_eq!(&new[..4], &3u32.to_le_bytes());
        assert_eq!(&new[20..], &key(9).public_key().to_bytes());
        assert_eq!(d.count_after(), 4);
        assert_eq!(StateDiff::decode(&b), Ok(d));
    }

    #[test]
    fn an_empty_diff_is_just_the_header() {
        let d = StateDiff::new(5, vec![]).unwrap();
        assert_eq!(
            d.encode(),
            [&[1u8][..], &5u64.to_le_bytes(), &[0; 4]].concat()
        );
        assert_eq!(StateDiff::decode(&d.encode()), Ok(d));
    }

    #[test]
    fn decode_rejects_every_malformed_input() {
        let good = sample().encode();
        let with = |at: usize, bytes: &[u8]| {
            let mut b = good.clone();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            StateDiff::decode(&b)
        };
        use DiffError::*;
        assert_eq!(StateDiff::decode(&[]), Err(Truncated));
        assert_eq!(
            StateDiff::decode(&good[..12]),
            Err(Truncated),
            "short header"
        );
        for cut in [13, 20, 33, 34, good.len() - 1] {
            assert_eq!(
                StateDiff::decode(&good[..cut]),
                Err(Truncated),
                "cut at {cut}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(StateDiff::decode(&long), Err(TrailingBytes(1)));
        assert_eq!(
            with(9, &2u32.to_le_bytes()),
            Err(TrailingBytes(NEW_RECORD_BYTES))
        );
        assert_eq!(
            with(9, &4u32.to_le_bytes()),
            Err(Truncated),
            "a record missing"
        );
        assert_eq!(with(0, &[2]), Err(UnsupportedVersion(2)));
        assert_eq!(with(0, &[0]), Err(UnsupportedVersion(0)));
        assert_eq!(
            with(1, &(MAX_ACCOUNTS + 1).to_le_bytes()),
            Err(CountOutOfRange(MAX_ACCOUNTS + 1))
        );
        // Second record's index: equal to, then below, the first.
        assert_eq!(with(33, &1u32.to_le_bytes()), Err(DuplicateIndex(1)));
        assert_eq!(
            with(33, &0u32.to_le_bytes()),
            Err(Unsorted {
                previous: 1,
                index: 0
            })
        );
        // The new account must be 3, the first index after the count before.
        let new_at = HEADER_BYTES + 2 * RECORD_BYTES;
        assert_eq!(
            with(new_at, &4u32.to_le_bytes()),
            Err(NewAccountGap {
                expected: 3,
                index: 4
            })
        );
        assert_eq!(
            with(17, &(1u64 << 63).to_le_bytes()),
            Err(OutOfRange {
                index: 1,
                value: 1 << 63
            }),
            "balance"
        );
        assert_eq!(
            with(25, &u64::MAX.to_le_bytes()),
            Err(OutOfRange {
                index: 1,
                value: u64::MAX
            }),
            "nonce"
        );
        assert_eq!(
            with(new_at + RECORD_BYTES, &[0xff; 40]),
            Err(PublicKey {
                index: 3,
                source: KeyError::NonCanonical
            })
        );
        // A count that makes the third record an existing account: it is read as 20 bytes and
        // the key's bytes are left over.
        assert_eq!(
            with(1, &4u64.to_le_bytes()),
            Err(TrailingBytes(NEW_RECORD_BYTES - RECORD_BYTES))
        );
        // A count that makes account 2 new: its record is read as 60 bytes, misaligning the
        // rest (here the next "index" is read from key bytes and is out of sequence).
        assert_eq!(
            with(1, &2u64.to_le_bytes()),
            Err(NewAccountGap {
                expected: 3,
                index: 1_941_425_040
            })
        );
    }

    #[test]
    fn error_codes_are_the_spec_names() {
        let good = sample().encode();
        let code = |b: &[u8]| StateDiff::decode(b).unwrap_err().code();
        assert_eq!(code(&good[..5]), "TRUNCATED");
        assert_eq!(code(&[&good[..], &[0]].concat()), "TRAILING_BYTES");
        assert_eq!(
            code(&[&[9u8][..], &good[1..]].concat()),
            "UNSUPPORTED_VERSION"
        );
        let mut bad_key = good.clone();
        let at = HEADER_BYTES + 2 * RECORD_BYTES + RECORD_BYTES;
        bad_key[at..].fill(0xff);
        assert_eq!(code(&bad_key), "PUBLIC_KEY_NON_CANONICAL");
    }

    #[test]
    fn new_checks_what_decode_checks() {
        let k = key(1).public_key();
        use DiffError::*;
        assert_eq!(
            StateDiff::new(2, vec![rec(2, 0, 0, None)]),
            Err(MissingKey(2))
        );
        assert_eq!(
            StateDiff::new(2, vec![rec(1, 0, 0, Some(k))]),
            Err(UnexpectedKey(1))
        );
        assert_eq!(
            StateDiff::new(2, vec![rec(1, 0, 0, None), rec(1, 0, 0, None)]),
            Err(DuplicateIndex(1))
        );
        assert_eq!(
            StateDiff::new(2, vec![rec(3, 0, 0, Some(k))]),
            Err(NewAccountGap {
                expected: 2,
                index: 3
            })
        );
        assert_eq!(
            StateDiff::new(MAX_ACCOUNTS + 1, vec![]),
            Err(CountOutOfRange(MAX_ACCOUNTS + 1))
        );
        // The full state: no new account is possible, every u32 index is an existing one.
        let full = StateDiff::new(MAX_ACCOUNTS, vec![rec(u32::MAX, 1, 1, None)]).unwrap();
        assert_eq!(StateDiff::decode(&full.encode()), Ok(full));
    }

    #[test]
    fn genesis_tree_has_the_genesis_state_root() {
        let op = key(1).public_key();
        let mut s = State::genesis(DOMAIN, op);
        assert_eq!(AccountTree::genesis(op).root(), s.root());
    }

    /// Operator, Alice and Bob with deposits, as a batch boundary.
    fn world() -> (State, Vec<SecretKey>) {
        let keys: Vec<SecretKey> = (0..4).map(key).collect();
        let mut s = State::genesis(DOMAIN, keys[0].public_key());
        for k in &keys[1..3] {
            let r: Transaction = UnsignedRegister {
                pubkey: k.public_key(),
                valid_until: Timestamp::new(NOW + 60).unwrap(),
            }
            .sign(&DOMAIN, k)
            .into();
            s.apply(&r, &ctx()).unwrap();
        }
        for to in [1, 2] {
            let d = Transaction::Deposit(Deposit {
                seq: s.next_deposit_seq(),
                to: AccountIndex(to),
                amount: amt(1_000),
            });
            s.apply(&d, &ctx()).unwrap();
        }
        (s, keys)
    }

    fn pay(
        s: &mut State,
        keys: &[SecretKey],
        from: u32,
        to: u32,
        amount: u64,
        fee: u64,
    ) -> Effects {
        let n = s.account(AccountIndex(from)).unwrap().nonce;
        let t: Transaction = UnsignedTransfer {
            from: AccountIndex(from),
            to: AccountIndex(to),
            amount: amt(amount),
            fee: amt(fee),
            nonce: n,
            valid_until: Timestamp::new(NOW + 60).unwrap(),
        }
        .sign(&DOMAIN, &keys[from as usize])
        .into();
        s.apply(&t, &ctx()).unwrap()
    }

    /// One batch: Alice pays Bob twice, Carol registers and is paid by Bob.
    fn batch(s: &mut State, keys: &[SecretKey]) -> (BatchTouches, Vec<Effects>) {
        let mut touches = BatchTouches::new(s.num_accounts());
        let mut fxs = vec![pay(s, keys, 1, 2, 100, 1), pay(s, keys, 1, 2, 50, 0)];
        let r: Transaction = UnsignedRegister {
            pubkey: keys[3].public_key(),
            valid_until: Timestamp::new(NOW + 60).unwrap(),
        }
        .sign(&DOMAIN, &keys[3])
        .into();
        fxs.push(s.apply(&r, &ctx()).unwrap());
        fxs.push(pay(s, keys, 2, 3, 25, 2));
        for fx in &fxs {
            touches.absorb(fx);
        }
        (touches, fxs)
    }

    #[test]
    fn a_sealed_batch_diff_rebuilds_the_new_root_from_the_old_accounts() {
        let (mut s, keys) = world();
        let old_root = s.root();
        let mut replica = AccountTree::from_accounts(s.accounts());
        assert_eq!(replica.root(), old_root);
        let (touches, _) = batch(&mut s, &keys);
        assert_eq!(
            touches.indices().map(|i| i.0).collect::<Vec<_>>(),
            vec![0, 1, 2, 3],
            "operator (fees), Alice, Bob, Carol"
        );
        let blob = touches.seal(&mut s, old_root).unwrap();
        let diff = StateDiff::decode(&blob).unwrap();
        assert_eq!(diff.count_before(), 3);
        assert_eq!(diff.records()[3].pubkey, Some(keys[3].public_key().into()));
        assert_eq!(replica.apply(&diff), Ok(s.root()));
        assert_eq!(replica.accounts(), s.accounts());
        assert_eq!(replica.total_balance(), s.total_balance());
        // The same diff again no longer fits: the replica has 4 accounts now.
        assert_eq!(
            replica.apply(&diff),
            Err(DiffError::CountMismatch { diff: 3, state: 4 })
        );
    }

    #[test]
    fn seal_refuses_a_diff_that_does_not_lead_from_the_previous_root() {
        let (mut s, keys) = world();
        let old_root = s.root();
        let (touches, fxs) = batch(&mut s, &keys);
        let blob = touches.seal(&mut s, old_root).unwrap();

        // A wrong previous root.
        let other = AccountTree::genesis(keys[0].public_key()).root();
        assert!(matches!(
            touches.seal(&mut s, other),
            Err(DiffError::OldRootMismatch { .. })
        ));
        // Touches that missed a transaction (as if a new kind reported no effects): Bob's last
        // payment is not folded in, so Bob's pre-batch nonce is taken as his current one.
        let mut partial = BatchTouches::new(3);
        for fx in &fxs[..3] {
            partial.absorb(fx);
        }
        assert!(matches!(
            partial.seal(&mut s, old_root),
            Err(DiffError::OldRootMismatch { .. })
        ));
        // A tampered record (Bob's balance) is not what the state holds.
        let mut bad = blob.clone();
        let bob_balance = HEADER_BYTES + 2 * RECORD_BYTES + 4;
        bad[bob_balance] ^= 1;
        assert_eq!(
            touches.verify(&bad, &mut s, old_root),
            Err(DiffError::RecordMismatch(2))
        );
        // A record left out (Alice's, with the count of records lowered).
        let diff = StateDiff::decode(&blob).unwrap();
        let mut fewer = diff.records().to_vec();
        fewer.remove(1);
        let fewer = StateDiff::new(3, fewer).unwrap().encode();
        assert!(matches!(
            touches.verify(&fewer, &mut s, old_root),
            Err(DiffError::OldRootMismatch { .. })
        ));
        // A count before that is not the batch's.
        let shifted = StateDiff::new(
            2,
            diff.records()
                .iter()
                .map(|r| AccountRecord {
                    pubkey: (r.index.0 >= 2).then(|| s.account(r.index).unwrap().pubkey),
                    ..*r
                })
                .collect(),
        )
        .unwrap()
        .encode();
        assert_eq!(
            touches.verify(&shifted, &mut s, old_root),
            Err(DiffError::CountMismatch { diff: 2, state: 3 })
        );
    }

    #[test]
    fn from_accounts_includes_new_accounts_and_refuses_ext() {
        let (mut s, keys) = world();
        let n = s.num_accounts();
        let r: Transaction = UnsignedRegister {
            pubkey: keys[3].public_key(),
            valid_until: Timestamp::new(NOW + 60).unwrap(),
        }
        .sign(&DOMAIN, &keys[3])
        .into();
        s.apply(&r, &ctx()).unwrap();
        // Not listed as touched, still in the diff.
        let d = StateDiff::from_state(&s, [], n).unwrap();
        assert_eq!(d.records().len(), 1);
        assert_eq!(d.records()[0].index, AccountIndex(3));
        let mut accounts = s.accounts().to_vec();
        accounts[1].ext = AccountTree::genesis(keys[0].public_key()).root();
        assert_eq!(
            StateDiff::from_accounts(&accounts, [AccountIndex(1)], n),
            Err(DiffError::NonZeroExt(1))
        );
        assert_eq!(
            StateDiff::from_accounts(&accounts, [AccountIndex(9)], n),
            Err(DiffError::UnknownAccount(9))
        );
        assert_eq!(
            StateDiff::from_accounts(&accounts, [], n + 5),
            Err(DiffError::CountMismatch {
                diff: n + 5,
                state: n + 1
            })
        );
    }

    #[test]
    fn a_replayed_key_is_its_own_account_and_its_signatures_stay_its_own() {
        // The written argument of SPEC 13.6, checked: a registration replayed at another index
        // (which the circuit cannot refuse) gives a second account with the same key, balance 0,
        // nonce 0. The rebuild from L1 applies it (data availability does not depend on key
        // uniqueness), and a transfer the key signed for one account is not a valid signature
        // for the other: the sender index is in the signed message (SPEC 8.3).
        let (s, keys) = world();
        let mut replica = AccountTree::from_accounts(s.accounts());
        let reuse = StateDiff::new(
            3,
            vec![rec(1, 1, 1, None), rec(3, 0, 0, Some(keys[1].public_key()))],
        )
        .unwrap();
        let root = replica.apply(&reuse).unwrap();
        let mut expected = s.accounts().to_vec();
        expected[1].balance = amt(1);
        expected[1].nonce = nonce(1);
        expected.push(Account::new(keys[1].public_key()));
        assert_eq!(root, AccountTree::from_accounts(&expected).root());
        assert_eq!(replica.accounts(), &expected[..]);
        // Twice in one diff, too.
        let twice = StateDiff::new(
            4,
            vec![
                rec(4, 0, 0, Some(keys[3].public_key())),
                rec(5, 0, 0, Some(keys[3].public_key())),
            ],
        )
        .unwrap();
        replica.apply(&twice).unwrap();
        assert_eq!(replica.num_accounts(), 6);

        let pay = |from: u32| UnsignedTransfer {
            from: AccountIndex(from),
            to: AccountIndex(2),
            amount: amt(5),
            fee: amt(0),
            nonce: nonce(0),
            valid_until: Timestamp::new(NOW + 60).unwrap(),
        };
        let signed_for_1 = pay(1).sign(&DOMAIN, &keys[1]);
        let pk = keys[1].public_key();
        assert!(pk
            .verify(&pay(1).message_hash(&DOMAIN), &signed_for_1.signature)
            .is_ok());
        assert!(pk
            .verify(&pay(3).message_hash(&DOMAIN), &signed_for_1.signature)
            .is_err());
    }
}
