//! Message hashes (SPEC 8.3): `hash_no_pad(domain ‖ kind ‖ fields)`.

use plonky2::field::types::Field;

use crate::account::{AccountIndex, Amount, Nonce, Timestamp};
use crate::crypto::schnorr::MessageHash;
use crate::hash::{hash_no_pad, F};

use super::{Domain, TxKind};

/// Maximum number of elements hashed by any message hash (Delegate: 4 + 1 + 14).
const MAX_HASHED: usize = 19;

/// `hash_no_pad(domain ‖ kind tag ‖ fields)` on a stack buffer.
/// The hashed fields of a transaction that carries a list as its digest (a split's parts, SPEC
/// 19.4; a share registration's shares, 19.6): `signer, n, digest (4), fee, nonce,
/// valid_until`, a fixed 9 elements whatever the list's length.
pub(crate) fn list_fields(
    signer: AccountIndex,
    n: usize,
    digest: crate::hash::Digest,
    fee: Amount,
    nonce: Nonce,
    valid_until: Timestamp,
) -> [F; 9] {
    let d = digest.elements();
    [
        signer.to_field(),
        F::from_canonical_usize(n),
        d[0],
        d[1],
        d[2],
        d[3],
        fee.to_field(),
        nonce.to_field(),
        valid_until.to_field(),
    ]
}

pub(crate) fn message_hash(domain: &Domain, kind: TxKind, fields: &[F]) -> MessageHash {
    debug_assert!(4 + 1 + fields.len() <= MAX_HASHED);
    let mut buf = [F::ZERO; MAX_HASHED];
    buf[..4].copy_from_slice(&domain.digest().elements());
    buf[4] = kind.tag_field();
    buf[5..5 + fields.len()].copy_from_slice(fields);
    MessageHash(hash_no_pad(&buf[..5 + fields.len()]))
}
