//! Property tests of the canonical encodings: every transaction round-trips, and decoding
//! accepts nothing but canonical encodings (anything it accepts re-encodes to the same bytes),
//! never panicking on arbitrary input. Same for pubdata blobs.

use std::sync::OnceLock;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use state::account::{AccountIndex, Amount, Nonce, Timestamp, MAX_U63};
use state::crypto::schnorr::SecretKey;
use state::pubdata::{decode_ops, encode_ops, DepositStatus, PubdataOp};
use state::tx::{
    DecodeError, Deposit, Domain, L1Address, Transaction, TxKind, UnsignedRegister,
    UnsignedTransfer, UnsignedWithdraw,
};

const DOMAIN: Domain = Domain {
    chain_id: 8453,
    rollup: [0x22; 20],
};

fn keys() -> &'static [SecretKey] {
    static KEYS: OnceLock<Vec<SecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(42);
        (0..4).map(|_| SecretKey::random(&mut rng)).collect()
    })
}

fn u63() -> impl Strategy<Value = u64> {
    prop_oneof![0..=MAX_U63, Just(MAX_U63), Just(0)]
}
fn amount() -> impl Strategy<Value = Amount> {
    u63().prop_map(|v| Amount::new(v).unwrap())
}
fn nonce() -> impl Strategy<Value = Nonce> {
    u63().prop_map(|v| Nonce::new(v).unwrap())
}
fn timestamp() -> impl Strategy<Value = Timestamp> {
    u63().prop_map(|v| Timestamp::new(v).unwrap())
}
fn index() -> impl Strategy<Value = AccountIndex> {
    any::<u32>().prop_map(AccountIndex)
}
fn key() -> impl Strategy<Value = &'static SecretKey> {
    (0..4usize).prop_map(|i| &keys()[i])
}

fn transaction() -> impl Strategy<Value = Transaction> {
    prop_oneof![
        (key(), timestamp()).prop_map(|(k, valid_until)| UnsignedRegister {
            pubkey: k.public_key(),
            valid_until
        }
        .sign(&DOMAIN, k)
        .into()),
        (
            key(),
            index(),
            index(),
            amount(),
            amount(),
            nonce(),
            timestamp()
        )
            .prop_map(
                |(k, from, to, amount, fee, nonce, valid_until)| UnsignedTransfer {
                    from,
                    to,
                    amount,
                    fee,
                    nonce,
                    valid_until
                }
                .sign(&DOMAIN, k)
                .into()
            ),
        (
            key(),
            index(),
            any::<[u8; 20]>().prop_filter("a non-zero destination (ZERO_DESTINATION)", |a| *a
                != [0; 20]),
            amount(),
            amount(),
            nonce(),
            timestamp()
        )
            .prop_map(|(k, from, to_l1, amount, fee, nonce, valid_until)| {
                UnsignedWithdraw {
                    from,
                    to_l1: L1Address(to_l1),
                    amount,
                    fee,
                    nonce,
                    valid_until,
                }
                .sign(&DOMAIN, k)
                .into()
            }),
        (u63(), index(), amount()).prop_map(|(seq, to, amount)| Deposit { seq, to, amount }.into()),
    ]
}

fn pubdata_op() -> impl Strategy<Value = PubdataOp> {
    prop_oneof![
        (index(), key()).prop_map(|(index, k)| PubdataOp::Register {
            index,
            pubkey: k.public_key()
        }),
        (index(), index(), amount(), amount()).prop_map(|(from, to, amount, fee)| {
            PubdataOp::Transfer {
                from,
                to,
                amount,
                fee,
            }
        }),
        (index(), any::<[u8; 20]>(), amount(), amount()).prop_map(|(from, a, amount, fee)| {
            PubdataOp::Withdraw {
                from,
                to_l1: L1Address(a),
                amount,
                fee,
            }
        }),
        (u63(), index(), amount(), any::<bool>()).prop_map(|(seq, to, amount, refunded)| {
            PubdataOp::Deposit {
                seq,
                to,
                amount,
                status: if refunded {
                    DepositStatus::Refunded
                } else {
                    DepositStatus::Credited
                },
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn transactions_roundtrip(tx in transaction()) {
        let bytes = tx.encode();
        prop_assert_eq!(bytes.len(), tx.kind().encoded_len());
        prop_assert_eq!(Transaction::decode(&bytes), Ok(tx.clone()));
        // Signed transactions verify after the round trip.
        if let Transaction::Transfer(t) = tx {
            let key = keys().iter().map(|k| k.public_key()).find(|k| tx.verify_signature(&DOMAIN, k).is_ok());
            prop_assert!(key.is_some());
            prop_assert_eq!(Transaction::decode(&bytes).unwrap().id(&DOMAIN), Transaction::from(t).id(&DOMAIN));
        }
    }

    #[test]
    fn a_changed_byte_is_rejected_or_re_encodes_identically(
        tx in transaction(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut bytes = tx.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        match Transaction::decode(&bytes) {
            Ok(other) => {
                prop_assert_eq!(other.encode(), bytes);
                prop_assert_ne!(other, tx);
            }
            Err(DecodeError::UnknownTag(_) | DecodeError::WrongLength { .. }) => prop_assert_eq!(i, 0),
            Err(_) => {}
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_only_canonical_ones_decode(
        kind in prop::sample::select(TxKind::ALL.to_vec()),
        body in prop::collection::vec(any::<u8>(), 0..140),
        exact in any::<bool>(),
    ) {
        let mut bytes = vec![kind.tag()];
        bytes.extend(body);
        if exact {
            bytes.resize(kind.encoded_len(), 0);
        }
        if let Ok(tx) = Transaction::decode(&bytes) {
            prop_assert_eq!(tx.encode(), bytes);
        }
    }

    #[test]
    fn pubdata_blobs_roundtrip(ops in prop::collection::vec(pubdata_op(), 0..12)) {
        let blob = encode_ops(&ops);
        prop_assert_eq!(decode_ops(&blob), Ok(ops.clone()));
        if !blob.is_empty() {
            prop_assert!(decode_ops(&blob[..blob.len() - 1]).is_err());
        }
    }
}
