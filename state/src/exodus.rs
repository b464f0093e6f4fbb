//! Exodus (SPEC 15.9): what the owner of an L2 key signs so that its accounts can leave through
//! L1 alone once the operator has failed.
//!
//! In exodus the contract pays every account of the last finalized state its balance, once,
//! against a Merkle proof of its leaf. The leaf names no L1 address, so the key says where the
//! money goes: it signs an **exit authorisation** for one L1 address, which the contract checks
//! with its own ECgFp5 Schnorr verifier (`contracts/src/Schnorr.sol`) and records. The
//! authorisation is a message of this rollup's domain (SPEC 8) under a tag no transaction uses,
//! so it can never be replayed as a transaction, nor a transaction as it.

use plonky2::field::types::Field;

use crate::crypto::schnorr::MessageHash;
use crate::hash::{hash_no_pad, F};
use crate::tx::{Domain, L1Address};

/// The kind element of an exit authorisation (8.2 uses 1 to 5 and 7 to 9 for transactions).
pub const TAG_EXIT_AUTHORISATION: u64 = 6;

/// `H(domain0..3, 6, t0..t4)`: the message a key signs to send its exits to `to`.
pub fn exit_authorisation_message(domain: &Domain, to: &L1Address) -> MessageHash {
    address_message(domain, TAG_EXIT_AUTHORISATION, to)
}

/// `H(domain0..3, tag, t0..t4)`: a message of the domain about one L1 address (the exit
/// authorisation, the owner binding of [`crate::owner`]; `ExodusVerifier.addressMessage` on L1).
pub(crate) fn address_message(domain: &Domain, tag: u64, a: &L1Address) -> MessageHash {
    let mut buf = [F::ZERO; 10];
    buf[..4].copy_from_slice(&domain.digest().elements());
    buf[4] = F::from_canonical_u64(tag);
    buf[5..].copy_from_slice(&a.to_field_elements());
    MessageHash(hash_no_pad(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::schnorr::SecretKey;
    use crate::tx::TxKind;

    fn domain() -> Domain {
        Domain {
            chain_id: 31337,
            rollup: [0x5f; 20],
        }
    }

    /// The tags of the messages about an address (the exit authorisation, the owner binding of
    /// [`crate::owner`]) are no transaction's, nor each other's: no signature of one is ever
    /// another.
    #[test]
    fn address_tags_are_no_transaction_kind_nor_each_other() {
        use crate::owner::{owner_binding_message, TAG_OWNER_BINDING};
        assert_ne!(TAG_OWNER_BINDING, TAG_EXIT_AUTHORISATION);
        for tag in 0..=255u8 {
            if let Some(kind) = TxKind::from_tag(tag) {
                assert_ne!(kind as u64, TAG_EXIT_AUTHORISATION, "{kind:?}");
                assert_ne!(kind as u64, TAG_OWNER_BINDING, "{kind:?}");
            }
        }
        let a = L1Address([1; 20]);
        assert_ne!(
            owner_binding_message(&domain(), &a),
            exit_authorisation_message(&domain(), &a)
        );
    }

    #[test]
    fn message_binds_domain_and_address() {
        let a = L1Address([1; 20]);
        let b = L1Address([2; 20]);
        let d = domain();
        let other = Domain {
            chain_id: 1,
            ..domain()
        };
        assert_ne!(
            exit_authorisation_message(&d, &a),
            exit_authorisation_message(&d, &b)
        );
        assert_ne!(
            exit_authorisation_message(&d, &a),
            exit_authorisation_message(&other, &a)
        );
    }

    #[test]
    fn hints_satisfy_what_l1_checks() {
        use crate::crypto::ecgfp5::GFp5;
        let sk = SecretKey::from_bytes(&[7; 40]).expect("small scalar is a valid key");
        let pk = sk.public_key();
        let m = exit_authorisation_message(&domain(), &L1Address([9; 20]));
        let sig = sk.sign(&m);
        let h = pk.l1_verify_hints(&m, &sig).expect("valid signature");
        // qx = 7 qy^2 and the decoding equation x^2 - (w^2 - 2) x + b = 0.
        let seven = GFp5::from_base(F::from_canonical_u64(7));
        assert_eq!(h.qy.square() * seven, h.qx);
        let w = pk.encoding();
        let b = GFp5::from_u64s([0, 263, 0, 0, 0]).expect("canonical");
        let two = GFp5::from_base(F::TWO);
        assert!((h.qx.square() - (w.square() - two) * h.qx + b).is_zero());
        // A signature on another message yields no hints.
        let other = exit_authorisation_message(&domain(), &L1Address([8; 20]));
        assert!(pk.l1_verify_hints(&other, &sig).is_err());
    }
}
