//! What the rules are given: a transaction whose signature was checked ([`VerifiedTx`]) and the
//! block's two clocks ([`BlockContext`]).

use crate::account::{AccountIndex, Nonce, Timestamp};
use crate::crypto::schnorr::{EncodedKey, MessageHash, PublicKey};
use crate::hash::Digest;
use crate::tx::{Domain, Signer, Transaction};

use super::Rejection;

/// What the block being built provides to the rules: two clocks.
///
/// `valid_until` (section 11) is judged at the block's own time. The agent rules (streams,
/// splits' policies, passports: SPEC 18.0) are judged at `batch_timestamp`, the time of the
/// first block of the batch the block is in, because that is the only time the batch proof
/// knows (SPEC 13.1): a rule of the form `T > x` (a payer's close after the settle window, a
/// policy window that has turned) judged at the block's later time would hold natively and
/// fail in the circuit, and the batch would be unprovable. `batch_timestamp <= timestamp`
/// (block times never decrease).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlockContext {
    /// The block's timestamp; transactions with `valid_until < timestamp` are expired.
    pub timestamp: Timestamp,
    /// The time of the first block of the block's batch: the agent rules' clock.
    pub batch_timestamp: Timestamp,
}

impl BlockContext {
    /// The first block of a batch: both clocks at `timestamp`.
    pub fn at(timestamp: Timestamp) -> BlockContext {
        BlockContext {
            timestamp,
            batch_timestamp: timestamp,
        }
    }

    /// A block at `timestamp` of a batch whose first block is at `batch_timestamp` (taken as
    /// `timestamp` if it is later, which block times that never decrease rule out).
    pub fn in_batch(timestamp: Timestamp, batch_timestamp: Timestamp) -> BlockContext {
        BlockContext {
            timestamp,
            batch_timestamp: batch_timestamp.min(timestamp),
        }
    }
}

/// A transaction whose signature has been checked: proof, by construction, that
/// [`VerifiedTx::verify`] succeeded. Also carries the id, so the writer does not rehash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTx {
    pub(super) tx: Transaction,
    pub(super) id: MessageHash,
    pub(super) domain: Domain,
    /// The key the signature verified under (its encoding: the state compares it with the
    /// sender's); `None` for a deposit and a forced withdrawal.
    pub(super) key: Option<EncodedKey>,
    /// A settlement's walk (SPEC 18.4 rule 8) computed ahead, off the thread that applies it,
    /// for the stream opened at this nonce ([`VerifiedTx::with_walk`]).
    pub(super) walked: Option<(Nonce, Option<Digest>)>,
}

impl VerifiedTx {
    /// Authenticates `tx` for `domain`. `sender_key` looks up the key registered at an account
    /// index (only called for transfers and withdrawals); `None` there means the account does
    /// not exist (`UnknownAccount`). Deposits are unsigned and always pass.
    pub fn verify(
        tx: Transaction,
        domain: &Domain,
        sender_key: impl FnOnce(AccountIndex) -> Option<PublicKey>,
    ) -> Result<VerifiedTx, Rejection> {
        let id = tx.message_hash(domain);
        let key = match tx.signer() {
            Signer::Key(pubkey) => Some(pubkey),
            Signer::Account(from) => Some(sender_key(from).ok_or(Rejection::UnknownAccount(from))?),
            // A forced withdrawal's signature is part of its rules (State::apply_forced).
            Signer::L1 => None,
        };
        if let Some(key) = &key {
            tx.verify_signature_with_id(&id, key)?;
        }
        Ok(VerifiedTx {
            tx,
            id,
            domain: *domain,
            key: key.map(EncodedKey::from),
            walked: None,
        })
    }

    /// Re-admits a transaction from the node's own durable log without checking its
    /// signature again: it was verified before it was persisted, and re-verifying a long log
    /// at start-up would cost ~120 µs per transaction. Never use this for input from outside.
    pub fn from_durable_log(
        tx: Transaction,
        domain: &Domain,
        sender_key: impl FnOnce(AccountIndex) -> Option<EncodedKey>,
    ) -> Result<VerifiedTx, Rejection> {
        let id = tx.message_hash(domain);
        Self::from_durable_log_with_id(tx, id, domain, sender_key)
    }

    /// [`Self::from_durable_log`] with the id computed by the caller, who must pass
    /// `tx.message_hash(domain)` (recovery hashes a chunk of the log on all cores, checks each
    /// hash against the stored id, then applies the chunk in order).
    pub fn from_durable_log_with_id(
        tx: Transaction,
        id: MessageHash,
        domain: &Domain,
        sender_key: impl FnOnce(AccountIndex) -> Option<EncodedKey>,
    ) -> Result<VerifiedTx, Rejection> {
        debug_assert_eq!(id, tx.message_hash(domain));
        let key = match tx.signer() {
            Signer::Key(pubkey) => Some(EncodedKey::from(pubkey)),
            Signer::Account(from) => Some(sender_key(from).ok_or(Rejection::UnknownAccount(from))?),
            // A forced withdrawal's signature is part of its rules (State::apply_forced).
            Signer::L1 => None,
        };
        Ok(VerifiedTx {
            tx,
            id,
            domain: *domain,
            key,
            walked: None,
        })
    }

    /// For a settlement, walks its revealed tick down to its `from` as the stream opened at
    /// `opened_at` would (up to 2^16 hashes, SPEC 18.4 rule 8), so that the thread applying it
    /// only compares a digest; other kinds are returned as they are. Applying uses the walk
    /// only if the stream it names was opened at `opened_at` (else it walks itself), so a
    /// stale guess costs time, never correctness.
    pub fn with_walk(mut self, opened_at: Nonce) -> VerifiedTx {
        if let Transaction::StreamSettle(t) = &self.tx {
            self.walked = Some((opened_at, t.body.terms.claimed_head(opened_at)));
        }
        self
    }

    /// The walk computed ahead for a stream opened at `opened_at`, if any.
    pub(crate) fn walked_for(&self, opened_at: Nonce) -> Option<Option<Digest>> {
        self.walked
            .filter(|(at, _)| *at == opened_at)
            .map(|(_, head)| head)
    }

    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// The transaction id (message hash) under the domain it was verified for.
    pub fn id(&self) -> MessageHash {
        self.id
    }

    pub fn into_tx(self) -> Transaction {
        self.tx
    }
}
