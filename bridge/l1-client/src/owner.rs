//! Ownership on L1 (SPEC 20.9): a key names the L1 address that answers for its accounts with
//! `Rollup.bindOwner`, sent **from** that address, with the key's signature of the owner binding
//! (`state::owner`). Recorded once per key (`ownerOf(keyId)`); the `OwnerBound` event reaches the
//! bridge feed as `owner_bound`.

use alloy_primitives::Address;
use state::crypto::schnorr::{PublicKey, SecretKey, SignatureError};
use state::owner::owner_binding_message;
use state::tx::{Domain, L1Address};

use crate::contracts::Rollup;
use crate::exodus::{key_id, l1_signature};
use crate::rpc::{Rpc, RpcError};

/// `bindOwner(w, sig)`: `key`'s signature of the binding to `owner`, the address that must send
/// the call.
pub fn bind_owner_call(
    domain: &Domain,
    key: &SecretKey,
    owner: Address,
) -> Result<Rollup::bindOwnerCall, SignatureError> {
    let m = owner_binding_message(domain, &L1Address(owner.0 .0));
    let (w, sig) = l1_signature(key, &m)?;
    Ok(Rollup::bindOwnerCall { w, sig })
}

/// The L1 owner recorded for `key`, or the zero address.
pub async fn owner_of(rpc: &Rpc, rollup: Address, key: &PublicKey) -> Result<Address, RpcError> {
    rpc.view(rollup, &Rollup::ownerOfCall(key_id(key))).await
}
