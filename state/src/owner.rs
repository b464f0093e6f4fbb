//! Ownership on L1 (SPEC 20.9): the holder of an L2 key names the L1 address that answers for
//! the key's accounts, so that an exchange or a counterparty can see who stands behind an agent
//! (an agent's passport names its owner account; that account's key names its L1 owner).
//!
//! The binding is a message of this rollup's domain (SPEC 8) under a tag no transaction uses
//! (like the exit authorisation, SPEC 15.9), signed by the L2 key and sent to
//! `Rollup.bindOwner` **by the L1 address it names**: the signature proves control of the key,
//! the sender proves control of the address, so neither side can claim the other alone. The
//! contract checks the signature with its own ECgFp5 verifier and records the address once per
//! key (a second binding, even a valid one, is refused, so an old signature cannot be replayed
//! over a newer choice). Nothing on L2 changes: keys never change (SPEC 11), so the binding
//! holds for the key's accounts for good, and no circuit has to prove it.

use crate::crypto::schnorr::MessageHash;
use crate::exodus::address_message;
use crate::tx::{Domain, L1Address};

/// The kind element of an owner binding (8.2: transactions use 1 to 5 and 7 to 16, the exit
/// authorisation 6).
pub const TAG_OWNER_BINDING: u64 = 17;

/// `H(domain0..3, 17, t0..t4)`: the message a key signs to be owned by the L1 address `owner`.
pub fn owner_binding_message(domain: &Domain, owner: &L1Address) -> MessageHash {
    address_message(domain, TAG_OWNER_BINDING, owner)
}
