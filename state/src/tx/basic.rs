//! The kinds of version 1 (register, transfer, withdraw, deposit, forced withdrawal): their
//! unsigned bodies, what a wallet signs, and the transactions.

use plonky2::field::types::Field;

use crate::account::{AccountIndex, Amount, Nonce, Timestamp};
use crate::crypto::schnorr::{MessageHash, PublicKey, SecretKey, Signature};
use crate::hash::F;

use super::{message_hash, Domain, L1Address, TxKind};

// ---------------------------------------------------------------------------------------------
// Unsigned bodies: what a wallet fills in before signing.

/// The signed part of a [`Register`]; sign it with the key being registered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UnsignedRegister {
    pub pubkey: PublicKey,
    pub valid_until: Timestamp,
}

/// The signed part of a [`Transfer`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UnsignedTransfer {
    pub from: AccountIndex,
    pub to: AccountIndex,
    pub amount: Amount,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
}

/// The signed part of a [`Withdraw`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UnsignedWithdraw {
    pub from: AccountIndex,
    pub to_l1: L1Address,
    pub amount: Amount,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
}

impl UnsignedRegister {
    /// The hashed fields: `w0..w4, valid_until`.
    pub fn fields(&self) -> [F; 6] {
        let w = self.pubkey.to_field_elements();
        [w[0], w[1], w[2], w[3], w[4], self.valid_until.to_field()]
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        message_hash(domain, TxKind::Register, &self.fields())
    }

    /// Signs with `key`, which must be the secret key of `self.pubkey` for the result to be
    /// accepted (the signature is the proof of possession).
    pub fn sign(self, domain: &Domain, key: &SecretKey) -> Register {
        Register {
            pubkey: self.pubkey,
            valid_until: self.valid_until,
            signature: key.sign(&self.message_hash(domain)),
        }
    }
}

impl UnsignedTransfer {
    /// The hashed fields: `from, to, amount, fee, nonce, valid_until`.
    pub fn fields(&self) -> [F; 6] {
        [
            self.from.to_field(),
            self.to.to_field(),
            self.amount.to_field(),
            self.fee.to_field(),
            self.nonce.to_field(),
            self.valid_until.to_field(),
        ]
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        message_hash(domain, TxKind::Transfer, &self.fields())
    }

    /// Signs with `key` (the sender account's key).
    pub fn sign(self, domain: &Domain, key: &SecretKey) -> Transfer {
        let signature = key.sign(&self.message_hash(domain));
        let UnsignedTransfer {
            from,
            to,
            amount,
            fee,
            nonce,
            valid_until,
        } = self;
        Transfer {
            from,
            to,
            amount,
            fee,
            nonce,
            valid_until,
            signature,
        }
    }
}

impl UnsignedWithdraw {
    /// The hashed fields: `from, address limbs 0..4, amount, fee, nonce, valid_until`.
    pub fn fields(&self) -> [F; 10] {
        let a = self.to_l1.to_field_elements();
        [
            self.from.to_field(),
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            self.amount.to_field(),
            self.fee.to_field(),
            self.nonce.to_field(),
            self.valid_until.to_field(),
        ]
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        message_hash(domain, TxKind::Withdraw, &self.fields())
    }

    /// Signs with `key` (the sender account's key).
    pub fn sign(self, domain: &Domain, key: &SecretKey) -> Withdraw {
        let signature = key.sign(&self.message_hash(domain));
        let UnsignedWithdraw {
            from,
            to_l1,
            amount,
            fee,
            nonce,
            valid_until,
        } = self;
        Withdraw {
            from,
            to_l1,
            amount,
            fee,
            nonce,
            valid_until,
            signature,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Transactions.

/// Registers `pubkey` at the next free account index (chosen by the state, not signed).
/// Signed by `pubkey` itself, which proves possession of the secret key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Register {
    pub pubkey: PublicKey,
    pub valid_until: Timestamp,
    pub signature: Signature,
}

/// A payment from `from` to `to`; `fee` goes to the operator account.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Transfer {
    pub from: AccountIndex,
    pub to: AccountIndex,
    pub amount: Amount,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
    pub signature: Signature,
}

/// Moves `amount` out of the rollup to `to_l1`; `fee` goes to the operator account.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Withdraw {
    pub from: AccountIndex,
    pub to_l1: L1Address,
    pub amount: Amount,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
    pub signature: Signature,
}

/// A deposit from the L1 priority queue. Unsigned: the L1 contract authenticated it, and the
/// batch proof binds the range of queue serial numbers it consumed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Deposit {
    /// The L1 priority-queue serial number. Deposits are consumed strictly in order, from 0.
    /// Must be `<= 2^63 - 1` to be one canonical field element (decoding enforces it).
    pub seq: u64,
    pub to: AccountIndex,
    pub amount: Amount,
}

/// A withdrawal forced through the L1 priority queue (`Rollup.requestForcedWithdrawal`): the
/// signed L2 [`Withdraw`] exactly as queued on L1, its queue serial and the L1 time it was
/// queued. Unlike a deposit it is *not* authenticated by L1 (the contract cannot check an
/// ECgFp5 signature): the L2 judges the embedded withdraw by the withdraw rules and either
/// applies it or rejects it with a reason, and consumes the serial either way. Expiry is judged
/// at `requested_at`, so a sequencer that waits cannot make a request expire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ForcedWithdraw {
    /// The L1 priority-queue serial number (shared with deposits), `<= 2^63 - 1`.
    pub seq: u64,
    /// `block.timestamp` of the L1 block that queued the request.
    pub requested_at: Timestamp,
    pub withdraw: Withdraw,
}

impl ForcedWithdraw {
    /// The hashed fields: `seq, requested_at`, then the embedded withdraw's message hash (four
    /// elements), so the id commits to the signed withdraw without re-hashing its fields.
    pub fn fields(&self, domain: &Domain) -> [F; 6] {
        let m = self.withdraw.unsigned().message_hash(domain).0.elements();
        [
            F::from_noncanonical_u64(self.seq),
            self.requested_at.to_field(),
            m[0],
            m[1],
            m[2],
            m[3],
        ]
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        message_hash(domain, TxKind::ForcedWithdraw, &self.fields(domain))
    }
}

impl Register {
    pub fn unsigned(&self) -> UnsignedRegister {
        UnsignedRegister {
            pubkey: self.pubkey,
            valid_until: self.valid_until,
        }
    }
}

impl Transfer {
    pub fn unsigned(&self) -> UnsignedTransfer {
        UnsignedTransfer {
            from: self.from,
            to: self.to,
            amount: self.amount,
            fee: self.fee,
            nonce: self.nonce,
            valid_until: self.valid_until,
        }
    }
}

impl Withdraw {
    pub fn unsigned(&self) -> UnsignedWithdraw {
        UnsignedWithdraw {
            from: self.from,
            to_l1: self.to_l1,
            amount: self.amount,
            fee: self.fee,
            nonce: self.nonce,
            valid_until: self.valid_until,
        }
    }
}

impl Deposit {
    /// The hashed fields: `seq, to, amount`.
    pub fn fields(&self) -> [F; 3] {
        [
            // seq <= 2^63 - 1 < p for every deposit the L1 queue can produce.
            F::from_noncanonical_u64(self.seq),
            self.to.to_field(),
            self.amount.to_field(),
        ]
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        message_hash(domain, TxKind::Deposit, &self.fields())
    }
}
