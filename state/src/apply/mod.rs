//! The state-transition function.
//!
//! [`State::apply`] takes one transaction and either applies it completely, returning its
//! [`Effects`], or rejects it with a [`Rejection`] and changes *nothing*: every check runs before
//! the first write.
//!
//! # Authentication first, then validation
//!
//! A signed transaction is first authenticated ([`VerifiedTx::verify`]: the sender account
//! must exist, `UnknownAccount`, and the signature must verify under its key, `BadSignature`),
//! then validated against the state. The sequencer runs the first step in parallel, outside the
//! state writer: an account's key never changes after registration, so reading keys concurrently
//! is safe. [`State::apply_verified`] then applies without re-checking the signature; it only
//! compares the key the signature was checked against with the key stored at the sender's
//! index (a cheap equality) and the domain it was checked for with the state's.
//!
//! # Rules, in the order they are checked
//!
//! A transaction expires when `valid_until < block timestamp` (`valid_until` itself is valid).
//!
//! **Register** (signed by the key it registers):
//! 1. signature by the carried key (`BadSignature`);
//! 2. not expired (`Expired`);
//! 3. the key is not registered yet (`DuplicateKey`; a replay of an accepted registration is
//!    caught here, and the sequencer's tx-id dedup returns the original receipt);
//! 4. a free index is left (`StateFull` once all 2^32 are taken).
//!
//! The key gets index = number of accounts (indices are sequential, chosen by the state and not
//! signed), balance 0, nonce 0. Registration carries no fee.
//!
//! **Transfer**:
//! 1. `from` exists (`UnknownAccount`); signature by its key (`BadSignature`);
//! 2. not expired (`Expired`);
//! 3. `to` exists (`UnknownAccount`);
//! 4. `from != to` (`SelfTransfer`);
//! 5. `amount > 0` (`ZeroAmount`; a zero fee is allowed);
//! 6. `nonce` equals the sender's nonce (`BadNonce`), which is below the maximum
//!    (`NonceExhausted`);
//! 7. `amount + fee <= balance(from)` (`InsufficientBalance`; the sum is computed in u64, where
//!    two values below 2^63 cannot overflow);
//! 8. after the debit, crediting `amount` to `to` and then `fee` to the operator (account 0)
//!    keeps every balance `<= 2^63 - 1` (`BalanceOverflow`).
//!
//! Effects: `from` loses `amount + fee` and its nonce goes up by one, `to` gains `amount`, the
//! operator gains `fee`. The operator may itself send (its fee comes back to it) or receive.
//!
//! **Withdraw**: as Transfer (there is no recipient account, so no steps 3 and 4); `amount`
//! leaves the rollup: it is added to [`State::withdrawn`] and returned as a
//! [`WithdrawalRecord`](crate::pubdata::WithdrawalRecord) for the batch's withdrawals commitment.
//!
//! **Deposit** (unsigned, from the L1 priority queue): `seq` must equal
//! [`State::next_deposit_seq`] (`BadDepositOrder`, the only way a deposit is rejected). A deposit
//! in order is always consumed (`next_deposit_seq` goes up by one). If `to` does not exist or
//! the credit would push its balance above 2^63 - 1, it credits nothing and its outcome is
//! [`DepositOutcome::Refunded`]: the L1 contract lets the depositor reclaim it, so no deposit can
//! block the queue and no money is lost. Otherwise `amount` is credited and added to
//! [`State::deposited`].
//!
//! **ForcedWithdraw** (a signed withdraw queued on L1, section 15.2 of the spec): `seq` must equal
//! [`State::next_deposit_seq`] (`BadDepositOrder`, the only way it is rejected as a whole; the
//! serial counter is shared by all L1 priority ops). The embedded withdraw is then judged by
//! the Withdraw rules above, in the same order, with the signature checked here (the sender
//! account must exist, `UnknownAccount`; the signature must verify under its key,
//! `BadSignature`) and expiry judged at `requested_at` (the L1 time of the request, so a
//! sequencer that delays cannot make it expire). If every rule holds it is applied exactly like
//! a withdraw ([`ForcedOutcome::Applied`]); otherwise nothing but the serial counter changes
//! and the outcome is [`ForcedOutcome::Rejected`] with the first failing rule. The serial is
//! consumed either way, so no request can block the L1 queue.
//!
//! **StreamOpen, StreamSettle, StreamClose**: the envelope of a signed spend, then the stream
//! rules (SPEC 18.4); see [`streams`] for the order. A node of this version refuses the three
//! kinds at its door (`KIND_NOT_ENABLED`) until the circuits prove them; the rules here are
//! complete so that the circuits have a reference to be tested against.
//!
//! # Supply
//!
//! `deposited == total_balance + escrowed + withdrawn` after every transaction (fees stay
//! inside, in the operator account; [`State::escrowed`] is what open streams hold).
//!
//! # Roots
//!
//! Mutations only mark leaves dirty; [`State::root`] rehashes the dirty accounts (in parallel)
//! and updates the tree in one batch. The sequencer asks for roots at block seal, off the
//! per-transaction hot path.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use rayon::prelude::*;

use crate::account::{Account, AccountIndex, Amount, Nonce, Timestamp};
use crate::crypto::schnorr::{EncodedKey, PublicKey};
use crate::ext::{ext_digest, Profile};
use crate::hash::Digest;
use crate::lanes::{Lane, LaneNonces};
use crate::passport::{self, Charge, Passport, PassportRejection, Spend};
use crate::smt::{MerkleProof, SparseMerkleTree};
use crate::split::SplitRejection;
use crate::stream::rules::StreamRejection;
use crate::stream::{PayerStreams, StreamSlot};
use crate::tx::{Domain, Transaction, TxKind};

/// Why a transaction was rejected. A rejected transaction changed nothing.
///
/// [`Rejection::code`] is the stable, machine-readable reason returned to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("signature does not verify under the signer's key")]
    BadSignature,
    #[error("account {0} does not exist")]
    UnknownAccount(AccountIndex),
    #[error("a transfer must go to another account")]
    SelfTransfer,
    #[error("amount must be positive")]
    ZeroAmount,
    #[error("nonce {got} is not the account's next nonce {expected}")]
    BadNonce { expected: Nonce, got: Nonce },
    #[error("the account's nonce is exhausted")]
    NonceExhausted,
    #[error("expired: valid until {valid_until}, block time {now}")]
    Expired {
        valid_until: Timestamp,
        now: Timestamp,
    },
    #[error("insufficient balance: {available} available, {required} required")]
    InsufficientBalance { available: Amount, required: u64 },
    #[error("the balance of account {account} would exceed 2^63 - 1")]
    BalanceOverflow { account: AccountIndex },
    #[error("this key is already registered at account {existing}")]
    DuplicateKey { existing: AccountIndex },
    #[error("every account index is taken")]
    StateFull,
    #[error("deposit {got} is out of order: the next deposit is {expected}")]
    BadDepositOrder { expected: u64, got: u64 },
    #[error("the transaction was verified for another rollup domain")]
    WrongDomain,
    #[error("{0} transactions are defined but not enabled in this version (the circuits do not prove them yet)")]
    KindNotEnabled(TxKind),
    /// A stream rule (SPEC 18.4); its code is the rule's own.
    #[error(transparent)]
    Stream(StreamRejection),
    /// A split rule (SPEC 19.1); its code is the rule's own.
    #[error(transparent)]
    Split(SplitRejection),
    /// A passport rule (SPEC 20.4); its code is the rule's own.
    #[error(transparent)]
    Passport(PassportRejection),
}

impl Rejection {
    /// A stable SCREAMING_SNAKE_CASE reason code (part of the API: never change one).
    pub const fn code(&self) -> &'static str {
        match self {
            Rejection::BadSignature => "BAD_SIGNATURE",
            Rejection::UnknownAccount(_) => "UNKNOWN_ACCOUNT",
            Rejection::SelfTransfer => "SELF_TRANSFER",
            Rejection::ZeroAmount => "ZERO_AMOUNT",
            Rejection::BadNonce { .. } => "BAD_NONCE",
            Rejection::NonceExhausted => "NONCE_EXHAUSTED",
            Rejection::Expired { .. } => "EXPIRED",
            Rejection::InsufficientBalance { .. } => "INSUFFICIENT_BALANCE",
            Rejection::BalanceOverflow { .. } => "BALANCE_OVERFLOW",
            Rejection::DuplicateKey { .. } => "DUPLICATE_KEY",
            Rejection::StateFull => "STATE_FULL",
            Rejection::BadDepositOrder { .. } => "BAD_DEPOSIT_ORDER",
            Rejection::WrongDomain => "WRONG_DOMAIN",
            Rejection::KindNotEnabled(_) => "KIND_NOT_ENABLED",
            Rejection::Stream(r) => r.code(),
            Rejection::Split(r) => r.code(),
            Rejection::Passport(r) => r.code(),
        }
    }
}

/// The answer of [`State::check_verified`] when the transaction would not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// Applying it now would reject it for this reason.
    #[error(transparent)]
    Rejected(Rejection),
    /// Only signed transfers and withdrawals are checked ahead of time.
    #[error("only transfers and withdrawals can be checked without applying them")]
    NotCheckable,
}

/// The rollup state: every account, the state tree and the L1 bookkeeping.
pub struct State {
    pub(crate) domain: Domain,
    /// Accounts by index; indices are allocated sequentially, so this is dense.
    pub(crate) accounts: Vec<Account>,
    /// Key -> index, for `DuplicateKey` and lookups by key (keys compare by canonical
    /// encoding). Holds only the index (4 bytes a slot) and compares against `accounts`, so
    /// the key is stored once: a map keyed by the key would add ~50 MB per million accounts.
    pub(crate) by_key: HashTable<AccountIndex>,
    /// The hasher of `by_key`, seeded per process: keys are chosen by their owners, so an
    /// unkeyed hash would let someone grind keys into one probe chain.
    pub(crate) key_hasher: RandomState,
    /// The state tree; stale for the indices in `dirty` until [`State::root`].
    pub(crate) tree: SparseMerkleTree,
    /// Indices whose leaf changed since the last root (may repeat).
    pub(crate) dirty: Vec<u32>,
    pub(crate) next_deposit_seq: u64,
    /// Sum of credited deposits.
    pub(crate) deposited: u128,
    /// Sum of withdrawn amounts (fees excluded).
    pub(crate) withdrawn: u128,
    /// Number of indices available: 2^32 (lowered only by unit tests).
    pub(crate) max_accounts: u64,
    /// Open payment streams by payer index; only payers with at least one stream.
    pub(crate) streams: BTreeMap<u32, PayerStreams>,
    /// Sum of the escrows of all open streams.
    pub(crate) escrowed: u128,
    /// Passports by agent index (SPEC 20).
    pub(crate) passports: BTreeMap<u32, Passport>,
    /// Registered revenue shares by account index (SPEC 19.2).
    pub(crate) shares: BTreeMap<u32, crate::split::Shares>,
    /// Nonce lanes 1 to 7 by account index; only accounts that used one.
    pub(crate) lanes: BTreeMap<u32, LaneNonces>,
    /// Whether nonces of lanes 1 to 7 are accepted ([`State::enable_lanes`]); until the circuits
    /// prove them, a node's state refuses them (`BAD_NONCE`, as the circuits would), including
    /// in forced withdrawals that come from L1 without passing the node's door.
    pub(crate) lanes_enabled: bool,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("domain", &self.domain)
            .field("accounts", &self.accounts.len())
            .field("dirty", &self.dirty.len())
            .field("next_deposit_seq", &self.next_deposit_seq)
            .field("deposited", &self.deposited)
            .field("withdrawn", &self.withdrawn)
            .field("payers_with_streams", &self.streams.len())
            .field("escrowed", &self.escrowed)
            .finish_non_exhaustive()
    }
}

impl State {
    /// The genesis state: only account 0, the operator's fee account, with `operator` as its
    /// key, zero balance and nonce 0; no deposit consumed yet.
    pub fn genesis(domain: Domain, operator: PublicKey) -> State {
        let mut state = State {
            domain,
            accounts: Vec::new(),
            by_key: HashTable::new(),
            key_hasher: RandomState::new(),
            tree: SparseMerkleTree::new(),
            dirty: Vec::new(),
            next_deposit_seq: 0,
            deposited: 0,
            withdrawn: 0,
            max_accounts: 1 << 32,
            streams: BTreeMap::new(),
            escrowed: 0,
            passports: BTreeMap::new(),
            shares: BTreeMap::new(),
            lanes: BTreeMap::new(),
            lanes_enabled: false,
        };
        state.push_account(operator);
        state
    }

    fn push_account(&mut self, pubkey: impl Into<EncodedKey>) -> AccountIndex {
        let pubkey = pubkey.into();
        let index = AccountIndex(self.accounts.len() as u32);
        self.accounts.push(Account::new(pubkey));
        self.insert_key(index);
        self.dirty.push(index.0);
        index
    }

    /// Adds the key of existing account `index` to the key index. The caller has checked
    /// that no other account holds that key ([`Self::index_of_key`]).
    pub(crate) fn insert_key(&mut self, index: AccountIndex) {
        let (accounts, hasher) = (&self.accounts, &self.key_hasher);
        let key = accounts[index.0 as usize].pubkey;
        self.by_key.insert_unique(hasher.hash_one(key), index, |i| {
            hasher.hash_one(accounts[i.0 as usize].pubkey)
        });
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    pub fn account(&self, index: AccountIndex) -> Option<&Account> {
        self.accounts.get(index.0 as usize)
    }

    /// All accounts, by index.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    pub fn account_by_key(&self, key: impl Into<EncodedKey>) -> Option<(AccountIndex, &Account)> {
        let index = self.index_of_key(&key.into())?;
        Some((index, self.account(index)?))
    }

    pub(crate) fn index_of_key(&self, key: &EncodedKey) -> Option<AccountIndex> {
        self.by_key
            .find(self.key_hasher.hash_one(key), |i| {
                self.accounts[i.0 as usize].pubkey == *key
            })
            .copied()
    }

    /// The key registered at `index`, as [`VerifiedTx::from_durable_log`] wants it.
    pub fn key_of(&self, index: AccountIndex) -> Option<EncodedKey> {
        self.account(index).map(|a| a.pubkey)
    }

    /// The key registered at `index`, decoded for [`VerifiedTx::verify`] (one square root,
    /// ~8 µs: callers that verify often keep decoded keys).
    pub fn public_key_of(&self, index: AccountIndex) -> Option<PublicKey> {
        self.account(index).and_then(|a| a.pubkey.decode().ok())
    }

    pub fn num_accounts(&self) -> u64 {
        self.accounts.len() as u64
    }

    /// The serial number the next deposit must carry (= number of deposits consumed).
    pub fn next_deposit_seq(&self) -> u64 {
        self.next_deposit_seq
    }

    /// The sum of all balances, operator included.
    pub fn total_balance(&self) -> u128 {
        self.accounts
            .iter()
            .map(|a| u128::from(a.balance.get()))
            .sum()
    }

    /// The sum of all credited deposits (refunded deposits excluded).
    pub fn deposited(&self) -> u128 {
        self.deposited
    }

    /// The sum of all withdrawn amounts (their fees stay in the operator account).
    pub fn withdrawn(&self) -> u128 {
        self.withdrawn
    }

    /// The state root. Rehashes the leaves changed since the last call, in parallel, and
    /// updates the tree in one batch.
    pub fn root(&mut self) -> Digest {
        self.flush();
        self.tree.root()
    }

    /// A Merkle proof of `index`'s current leaf against [`State::root`].
    pub fn proof(&mut self, index: AccountIndex) -> MerkleProof {
        self.flush();
        self.tree.proof(index.0)
    }

    fn flush(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let accounts = &self.accounts;
        let updates: Vec<(u32, Digest)> = dirty
            .par_iter()
            .with_min_len(64)
            .map(|&i| (i, accounts[i as usize].leaf_hash()))
            .collect();
        self.tree.update_batch(&updates);
        // Reuse the allocation.
        dirty.clear();
        self.dirty = dirty;
    }

    /// Authenticates and applies `tx` (see the module docs for the rules).
    pub fn apply(&mut self, tx: &Transaction, ctx: &BlockContext) -> Result<Effects, Rejection> {
        let verified = VerifiedTx::verify(tx.clone(), &self.domain, |i| self.public_key_of(i))?;
        self.apply_verified(verified, ctx)
    }

    /// Applies an already authenticated transaction without checking its signature again.
    pub fn apply_verified(
        &mut self,
        tx: VerifiedTx,
        ctx: &BlockContext,
    ) -> Result<Effects, Rejection> {
        if tx.domain != self.domain {
            return Err(Rejection::WrongDomain);
        }
        match (&tx.tx, tx.key) {
            (Transaction::Register(r), _) => self.apply_register(r, tx.id, ctx),
            (Transaction::Transfer(t), Some(key)) => self.apply_transfer(t, &key, tx.id, ctx),
            (Transaction::Withdraw(w), Some(key)) => self.apply_withdraw(w, &key, tx.id, ctx),
            (Transaction::Deposit(d), _) => self.apply_deposit(d, tx.id),
            (Transaction::ForcedWithdraw(f), _) => self.apply_forced(f, tx.id),
            (Transaction::StreamOpen(t), Some(key)) => self.apply_stream_open(t, &key, tx.id, ctx),
            (Transaction::StreamSettle(t), Some(key)) => {
                self.apply_stream_settle(t, &key, tx.id, ctx, &tx)
            }
            (Transaction::StreamClose(t), Some(key)) => {
                self.apply_stream_close(t, &key, tx.id, ctx)
            }
            (Transaction::StreamSettlePath(t), Some(key)) => {
                self.apply_stream_settle_path(t, &key, tx.id, ctx)
            }
            (Transaction::Split(t), Some(key)) => self.apply_split(t, &key, tx.id, ctx),
            (Transaction::Passport(t), Some(key)) => self.apply_passport(t, &key, tx.id, ctx),
            (Transaction::RegisterShares(t), Some(key)) => {
                self.apply_register_shares(t, &key, tx.id, ctx)
            }
            (Transaction::Distribute(t), Some(key)) => self.apply_distribute(t, &key, tx.id, ctx),
            // VerifiedTx::verify always records a key for signed kinds.
            (
                Transaction::Transfer(_)
                | Transaction::Withdraw(_)
                | Transaction::StreamOpen(_)
                | Transaction::StreamSettle(_)
                | Transaction::StreamClose(_)
                | Transaction::StreamSettlePath(_)
                | Transaction::Split(_)
                | Transaction::Passport(_)
                | Transaction::RegisterShares(_)
                | Transaction::Distribute(_),
                None,
            ) => Err(Rejection::BadSignature),
        }
    }

    /// Whether a signed transfer or withdrawal would be applied now, in a block with `ctx`,
    /// without applying it: the same rules as [`Self::apply_verified`] in the same order, so
    /// the rejection is the one applying would give. Costs a few lookups; nothing changes.
    /// Other kinds are not checked ahead of time (`Err(NotCheckable)` is never returned for
    /// the two signed spends).
    pub fn check_verified(&self, tx: &VerifiedTx, ctx: &BlockContext) -> Result<(), CheckError> {
        if tx.domain != self.domain {
            return Err(CheckError::Rejected(Rejection::WrongDomain));
        }
        let rejected = CheckError::Rejected;
        match (&tx.tx, tx.key) {
            (Transaction::Transfer(t), Some(key)) => {
                let sender = self.signed_sender(t.from, &key).map_err(rejected)?;
                self.validate_transfer(sender, t, ctx).map_err(rejected)?;
                Ok(())
            }
            (Transaction::Withdraw(w), Some(key)) => {
                let sender = self.signed_sender(w.from, &key).map_err(rejected)?;
                self.validate_withdraw(sender, w, ctx).map_err(rejected)?;
                Ok(())
            }
            (Transaction::Transfer(_) | Transaction::Withdraw(_), None) => {
                Err(CheckError::Rejected(Rejection::BadSignature))
            }
            _ => Err(CheckError::NotCheckable),
        }
    }

    fn check_expiry(valid_until: Timestamp, ctx: &BlockContext) -> Result<(), Rejection> {
        if valid_until < ctx.timestamp {
            return Err(Rejection::Expired {
                valid_until,
                now: ctx.timestamp,
            });
        }
        Ok(())
    }

    /// The sender of a signed transaction, checked against the key its signature verified
    /// under.
    fn signed_sender(&self, from: AccountIndex, key: &EncodedKey) -> Result<&Account, Rejection> {
        let sender = self.account(from).ok_or(Rejection::UnknownAccount(from))?;
        if sender.pubkey != *key {
            return Err(Rejection::BadSignature);
        }
        Ok(sender)
    }

    /// The envelope every account-signed kind but the transfer and the withdraw checks first
    /// (those two interleave their own rules): the signer and the key its signature verified
    /// under, expiry, then the nonce of its lane. Returns the next nonce.
    fn envelope(
        &self,
        signer: AccountIndex,
        key: &EncodedKey,
        nonce: Nonce,
        valid_until: Timestamp,
        ctx: &BlockContext,
    ) -> Result<Nonce, Rejection> {
        let sender = self.signed_sender(signer, key)?;
        Self::check_expiry(valid_until, ctx)?;
        self.check_nonce(signer, sender, nonce)
    }

    /// The nonce after `got`, if `got` is the next nonce of its lane (SPEC 20.1); a lane other
    /// than 0 counts only once lanes are enabled (else its expected nonce is lane 0's).
    fn check_nonce(
        &self,
        from: AccountIndex,
        sender: &Account,
        got: Nonce,
    ) -> Result<Nonce, Rejection> {
        let lane = got.lane();
        let expected = if lane == Lane::ZERO || !self.lanes_enabled {
            sender.nonce
        } else {
            self.lanes
                .get(&from.0)
                .copied()
                .unwrap_or_default()
                .next(lane, sender.nonce)
        };
        if got != expected {
            return Err(Rejection::BadNonce { expected, got });
        }
        got.next_in_lane().ok_or(Rejection::NonceExhausted)
    }

    /// The passport rules (SPEC 20.4) for a spend signed by `signer`: `None` for an account
    /// that is no agent, else what the spend leaves in its passport.
    fn police(
        &self,
        signer: AccountIndex,
        spend: Spend<'_>,
        ctx: &BlockContext,
    ) -> Result<Option<Charge>, Rejection> {
        match self.passports.get(&signer.0) {
            None => Ok(None),
            Some(p) => Ok(Some(passport::charge(p, &spend, ctx.batch_timestamp)?)),
        }
    }

    /// The parts of `account`'s profile (SPEC 18.3), each `ZERO` when absent.
    pub fn profile_of(&self, account: AccountIndex) -> Profile {
        let i = account.0;
        Profile {
            shares: self
                .shares
                .get(&i)
                .map_or(Digest::ZERO, crate::split::Shares::digest),
            passport: self
                .passports
                .get(&i)
                .map_or(Digest::ZERO, Passport::digest),
            lanes: self.lanes.get(&i).map_or(Digest::ZERO, LaneNonces::digest),
        }
    }

    /// Recomputes `account`'s `ext` from its parts (streams and the profile's shares,
    /// passport and lanes: [`crate::ext`]) and records the change in `effects` (merged with an
    /// earlier change of the same account).
    pub(crate) fn refresh_ext(
        &mut self,
        account: AccountIndex,
        slot: Option<StreamSlot>,
        effects: &mut Effects,
    ) {
        let i = account.0;
        let profile = self.profile_of(account);
        let ext = ext_digest(self.streams_of(account).root(), profile.digest());
        let before = std::mem::replace(&mut self.accounts[i as usize].ext, ext);
        self.dirty.push(i);
        match effects.ext.iter_mut().find(|e| e.account == account) {
            Some(e) => {
                e.after = ext;
                e.slot = e.slot.or(slot);
            }
            None if before != ext || slot.is_some() => effects.ext.push(ExtChange {
                account,
                slot,
                before,
                after: ext,
            }),
            None => {}
        }
    }
}

mod context;
mod effects;
mod ledger;
mod passports;
mod payments;
mod shares;
mod splits;
mod streams;

pub use context::{BlockContext, VerifiedTx};
pub use effects::{
    BalanceChange, DepositOutcome, Effects, ExtChange, ForcedOutcome, NonceChange, RefundReason,
};
use ledger::{Ledger, Staged};

#[cfg(test)]
mod tests;
