use super::*;
use crate::account::{Amount, Timestamp, MAX_U63};
use crate::crypto::schnorr::{KeyError, SecretKey, SignatureError};
use crate::hash::{hash_no_pad, Digest};
use plonky2::field::types::Field;

#[test]
fn tag_domain_is_the_documented_ascii_constant() {
    assert_eq!(TAG_DOMAIN, 0x726f_6c6c_7570_7631);
    const { assert!(TAG_DOMAIN < crate::hash::P) };
}

#[test]
fn encoded_lengths() {
    assert_eq!(TxKind::Register.encoded_len(), 121);
    assert_eq!(TxKind::Transfer.encoded_len(), 113);
    assert_eq!(TxKind::Withdraw.encoded_len(), 129);
    assert_eq!(TxKind::Deposit.encoded_len(), 21);
    assert_eq!(TxKind::ForcedWithdraw.encoded_len(), 146);
    for kind in TxKind::ALL {
        assert_eq!(TxKind::from_tag(kind.tag()), Some(kind));
    }
    assert_eq!(TxKind::from_tag(0), None);
    assert_eq!(TxKind::StreamOpen.encoded_len(), 159);
    assert_eq!(TxKind::StreamSettle.encoded_len(), 147);
    assert_eq!(TxKind::StreamClose.encoded_len(), 107);
    assert_eq!(TxKind::StreamSettlePath.encoded_len(), 915);
    assert_eq!(
        TxKind::from_tag(6),
        None,
        "the exit authorisation's kind element"
    );
    assert_eq!(TxKind::Split.encoded_len(), 103, "a split with no payee");
    assert_eq!(
        TxKind::RegisterShares.encoded_len(),
        103,
        "shares with no payee"
    );
    assert_eq!(TxKind::Distribute.encoded_len(), 105);
    assert_eq!(TxKind::Revoke.encoded_len(), 105);
    assert_eq!(TxKind::Sweep.encoded_len(), 113);
    assert_eq!(TxKind::from_tag(17), None);
    let enabled: Vec<_> = TxKind::ALL.iter().filter(|k| k.is_enabled()).collect();
    assert_eq!(enabled.len(), 6, "the agent kinds wait for their circuits");
    assert!(
        TxKind::Split.is_enabled(),
        "the split-credit chain proves splits"
    );
}

#[test]
fn domain_digest_binds_every_byte() {
    let d = Domain {
        chain_id: 31337,
        rollup: [7u8; 20],
    };
    let base = d.digest();
    let mut other = d;
    other.chain_id = 31337 + (1 << 32);
    assert_ne!(other.digest(), base, "high half of the chain id is hashed");
    for i in 0..20 {
        let mut other = d;
        other.rollup[i] ^= 1;
        assert_ne!(other.digest(), base, "address byte {i} is hashed");
    }
    let e = d.to_field_elements();
    use plonky2::field::types::PrimeField64;
    assert_eq!(e[3].to_canonical_u64(), 0x0707_0707);
}

#[test]
fn address_limbs_are_big_endian() {
    use plonky2::field::types::PrimeField64;
    let mut a = [0u8; 20];
    a[0] = 0x12;
    a[3] = 0x34;
    a[19] = 0xff;
    let limbs = L1Address(a).to_field_elements();
    assert_eq!(limbs[0].to_canonical_u64(), 0x1200_0034);
    assert_eq!(limbs[4].to_canonical_u64(), 0xff);
}

use rand::rngs::StdRng;
use rand::SeedableRng;

const D: Domain = Domain {
    chain_id: 31337,
    rollup: [9; 20],
};

fn sk(seed: u64) -> SecretKey {
    SecretKey::random(&mut StdRng::seed_from_u64(seed))
}

/// One transaction of each kind, with real keys and signatures.
fn samples() -> [Transaction; 5] {
    let k = sk(1);
    let n = |v| Amount::new(v).unwrap();
    let withdraw = UnsignedWithdraw {
        from: AccountIndex(3),
        to_l1: L1Address([0x5a; 20]),
        amount: n(9),
        fee: n(1),
        nonce: Nonce::new(2).unwrap(),
        valid_until: Timestamp::new(1_800_000_000).unwrap(),
    }
    .sign(&D, &k);
    [
        UnsignedRegister {
            pubkey: k.public_key(),
            valid_until: Timestamp::new(1_700_000_000).unwrap(),
        }
        .sign(&D, &k)
        .into(),
        UnsignedTransfer {
            from: AccountIndex(1),
            to: AccountIndex(u32::MAX),
            amount: n(5),
            fee: Amount::MAX,
            nonce: Nonce::new(3).unwrap(),
            valid_until: Timestamp::MAX,
        }
        .sign(&D, &k)
        .into(),
        UnsignedWithdraw {
            from: AccountIndex(7),
            to_l1: L1Address([0xa5; 20]),
            amount: Amount::MAX,
            fee: n(0),
            nonce: Nonce::MAX,
            valid_until: Timestamp::ZERO,
        }
        .sign(&D, &k)
        .into(),
        Deposit {
            seq: MAX_U63,
            to: AccountIndex(2),
            amount: n(1),
        }
        .into(),
        ForcedWithdraw {
            seq: 12,
            requested_at: Timestamp::new(1_750_000_000).unwrap(),
            withdraw,
        }
        .into(),
    ]
}

/// One signed transaction of each stream kind (payer 1, payee 2, slot 5).
fn stream_samples() -> [Transaction; 3] {
    use crate::stream::rules::{Close, Open, Settle};
    use crate::stream::{StreamSlot, TickCount};
    let n = |v| Amount::new(v).unwrap();
    let d = |v: u64| Digest([F::from_canonical_u64(v); 4]);
    [
        Unsigned {
            body: Open {
                payer: AccountIndex(1),
                payee: AccountIndex(2),
                slot: StreamSlot(5),
                price: n(3),
                max_ticks: TickCount::MAX,
                expiry: Timestamp::new(1_800_000_000).unwrap(),
                anchor: d(crate::hash::P - 1),
            },
            fee: n(1),
            nonce: Nonce::new(7).unwrap(),
            valid_until: Timestamp::MAX,
        }
        .sign(&D, &sk(1))
        .into(),
        Unsigned {
            body: SettleBody {
                payee: AccountIndex(2),
                terms: Settle {
                    payer: AccountIndex(1),
                    slot: StreamSlot(u16::MAX),
                    from: TickCount::ZERO,
                    to: TickCount::MAX,
                    value: d(9),
                },
            },
            fee: Amount::MAX,
            nonce: Nonce::MAX,
            valid_until: Timestamp::ZERO,
        }
        .sign(&D, &sk(2))
        .into(),
        Unsigned {
            body: Close {
                payer: AccountIndex(1),
                slot: StreamSlot(5),
                signer: AccountIndex(u32::MAX),
            },
            fee: n(0),
            nonce: Nonce::new(1).unwrap(),
            valid_until: Timestamp::new(1).unwrap(),
        }
        .sign(&D, &sk(3))
        .into(),
    ]
}

/// A settlement by path (tag 18) with every sibling distinct and the largest canonical value.
fn settle_path_sample() -> Transaction {
    use crate::stream::rules::Settle;
    use crate::stream::{StreamSlot, TickCount};
    let mut path = [Digest::ZERO; crate::stream::TICK_TREE_DEPTH];
    for (i, sibling) in path.iter_mut().enumerate() {
        *sibling = Digest([F::from_canonical_u64(crate::hash::P - 1 - i as u64); 4]);
    }
    Unsigned {
        body: SettlePathBody {
            payee: AccountIndex(2),
            terms: Settle {
                payer: AccountIndex(1),
                slot: StreamSlot(4),
                from: TickCount::new(10).unwrap(),
                to: TickCount::MAX,
                value: Digest([F::from_canonical_u64(3); 4]),
            },
            path,
        },
        fee: Amount::new(2).unwrap(),
        nonce: Nonce::new(5).unwrap(),
        valid_until: Timestamp::MAX,
    }
    .sign(&D, &sk(2))
    .into()
}

/// A split from account 4 to accounts 2 and 9.
fn split_sample() -> Transaction {
    use crate::split::Payout;
    let n = |v| Amount::new(v).unwrap();
    UnsignedSplit {
        from: AccountIndex(4),
        parts: vec![
            Payout {
                to: AccountIndex(2),
                amount: n(30),
            },
            Payout {
                to: AccountIndex(9),
                amount: n(12),
            },
        ],
        fee: n(1),
        nonce: Nonce::new(6).unwrap(),
        valid_until: Timestamp::new(1_800_000_000).unwrap(),
    }
    .sign(&D, &sk(4))
    .into()
}

/// One of each passport kind, owner 3: a delegate with a card URI and a three-payee list, a
/// policy change with neither, a revocation and a sweep.
fn passport_samples() -> [Transaction; 4] {
    use crate::passport::{AllowList, Card, Policy};
    let n = |v| Amount::new(v).unwrap();
    let policy = |uri: &str, allow: Vec<u32>| Policy {
        cap: n(1_000),
        window: 86_400,
        max_payment: n(50),
        max_fee: n(2),
        expiry: Timestamp::new(1_900_000_000).unwrap(),
        allow: AllowList::new(allow.into_iter().map(AccountIndex).collect()).unwrap(),
        card: Card::new([7; 32], uri.into()).unwrap(),
    };
    let tx = |action, nonce| {
        UnsignedPassportTx {
            owner: AccountIndex(3),
            action,
            fee: n(1),
            nonce: Nonce::new(nonce).unwrap(),
            valid_until: Timestamp::new(1_800_000_000).unwrap(),
        }
        .sign(&D, &sk(3))
        .into()
    };
    [
        tx(
            PassportAction::Delegate {
                agent_key: sk(9).public_key().into(),
                fund: n(300),
                policy: policy("https://agents.example/card.json", vec![2, 4, 900]),
            },
            1,
        ),
        tx(
            PassportAction::SetPolicy {
                agent: AccountIndex(10),
                policy: policy("", vec![]),
            },
            2,
        ),
        tx(
            PassportAction::Revoke {
                agent: AccountIndex(10),
            },
            3,
        ),
        tx(
            PassportAction::Sweep {
                agent: AccountIndex(10),
                amount: Amount::MAX,
            },
            4,
        ),
    ]
}

/// A share registration of account 5 (two payees) and a distribute of it signed by account 6.
fn shares_samples() -> [Transaction; 2] {
    let n = |v| Amount::new(v).unwrap();
    [
        UnsignedRegisterShares {
            account: AccountIndex(5),
            parts: vec![(AccountIndex(2), 7_000), (AccountIndex(9), 3_000)],
            fee: n(1),
            nonce: Nonce::new(3).unwrap(),
            valid_until: Timestamp::new(1_800_000_000).unwrap(),
        }
        .sign(&D, &sk(5))
        .into(),
        Unsigned {
            body: DistributeBody {
                signer: AccountIndex(6),
                account: AccountIndex(5),
            },
            fee: n(2),
            nonce: Nonce::new(8).unwrap(),
            valid_until: Timestamp::new(1_800_000_000).unwrap(),
        }
        .sign(&D, &sk(6))
        .into(),
    ]
}

fn all_samples() -> Vec<Transaction> {
    samples()
        .into_iter()
        .chain(stream_samples())
        .chain([split_sample()])
        .chain(shares_samples())
        .chain(passport_samples())
        .chain([settle_path_sample()])
        .collect()
}

#[test]
fn every_kind_roundtrips_and_has_a_fixed_length() {
    let all = all_samples();
    let kinds: Vec<TxKind> = all.iter().map(|t| t.kind()).collect();
    assert_eq!(kinds, TxKind::ALL, "one sample per kind, in tag order");
    for tx in all {
        let bytes = tx.encode();
        assert_eq!(bytes.len(), tx.encoded_len());
        let fixed = tx.kind().encoded_len();
        match tx.kind() {
            // Lengths that vary: 12 bytes per payee; a URI and 4 bytes per allowed payee.
            TxKind::Split => assert_eq!(bytes.len(), fixed + 2 * 12),
            TxKind::RegisterShares => assert_eq!(bytes.len(), fixed + 2 * 6),
            TxKind::Delegate => assert_eq!(bytes.len(), fixed + 32 + 3 * 4),
            _ => assert_eq!(bytes.len(), fixed),
        }
        assert_eq!(bytes[0], tx.kind().tag());
        assert_eq!(Transaction::decode(&bytes), Ok(tx));
    }
}

#[test]
fn every_kind_rejects_truncation_and_trailing_bytes() {
    for tx in all_samples() {
        let bytes = tx.encode();
        let kind = tx.kind();
        for len in 1..bytes.len() {
            // A split cut inside its header (tag, from, n) is measured against no payee.
            // A delegate or policy change cut before its list count is measured against an
            // empty URI and list (the count sits after the URI).
            let count_end =
                |policy_at: usize| policy_at + 69 + usize::from(bytes[policy_at + 68]) + 2;
            let header_cut = match kind {
                TxKind::Split | TxKind::RegisterShares => len < 7,
                TxKind::Delegate => len < count_end(1 + 4 + 40 + 8),
                TxKind::SetPolicy => len < count_end(1 + 4 + 4),
                _ => false,
            };
            let expected = if header_cut {
                kind.encoded_len()
            } else {
                bytes.len()
            };
            assert_eq!(
                Transaction::decode(&bytes[..len]),
                Err(DecodeError::WrongLength {
                    kind,
                    expected,
                    got: len
                })
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            Transaction::decode(&long),
            Err(DecodeError::WrongLength {
                kind,
                expected: bytes.len(),
                got: bytes.len() + 1
            })
        );
    }
}

#[test]
fn decode_rejects_invalid_public_keys() {
    let reg = samples()[0].encode();
    let mut bad = reg.clone();
    bad[1..41].fill(0xff);
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::PublicKey(KeyError::NonCanonical))
    );
    // w = 0 encodes the neutral element, which is not a valid key.
    let mut neutral = reg.clone();
    neutral[1..41].fill(0);
    assert_eq!(
        Transaction::decode(&neutral),
        Err(DecodeError::PublicKey(KeyError::Neutral))
    );
    // A canonical encoding that is not a group element (about half of them).
    let off_curve = (1u64..1000)
        .map(|v| {
            let mut b = [0u8; 40];
            b[..8].copy_from_slice(&v.to_le_bytes());
            b
        })
        .find(|b| PublicKey::from_bytes(b) == Err(KeyError::NotOnCurve))
        .expect("some small w is off the curve");
    let mut bad = reg;
    bad[1..41].copy_from_slice(&off_curve);
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::PublicKey(KeyError::NotOnCurve))
    );
}

#[test]
fn forced_withdraw_embeds_the_l1_bytes_and_checks_them() {
    let forced = samples()[4].clone();
    let Transaction::ForcedWithdraw(f) = forced else {
        panic!("sample 4 is a forced withdrawal")
    };
    let bytes = forced.encode();
    // The embedded withdraw is byte for byte the L1 payload (`withdrawTx`).
    assert_eq!(
        &bytes[17..],
        &Transaction::Withdraw(f.withdraw).encode()[..]
    );
    for (at, field) in [(1, "seq"), (9, "requested_at")] {
        let mut bad = bytes.clone();
        bad[at..at + 8].copy_from_slice(&(MAX_U63 + 1).to_le_bytes());
        assert_eq!(
            Transaction::decode(&bad),
            Err(DecodeError::OutOfRange {
                field,
                value: MAX_U63 + 1
            })
        );
    }
    let mut bad = bytes.clone();
    bad[17] = TxKind::Transfer.tag();
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::ForcedNotAWithdraw(2))
    );
    let mut bad = bytes.clone();
    bad[17 + 41..17 + 49].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::OutOfRange {
            field: "nonce",
            value: u64::MAX
        })
    );
    let mut bad = bytes;
    let sig = bad.len() - Signature::BYTES;
    bad[sig + 32..].fill(0xff);
    assert_eq!(
        Transaction::decode(&bad),
        Err(DecodeError::Signature(SignatureError::NonCanonicalScalar))
    );
    // The id binds the serial, the L1 time and the embedded withdraw.
    let id = forced.id(&D);
    let mut other = f;
    other.seq += 1;
    assert_ne!(Transaction::ForcedWithdraw(other).id(&D), id);
    let mut other = f;
    other.requested_at = Timestamp::new(1).unwrap();
    assert_ne!(Transaction::ForcedWithdraw(other).id(&D), id);
    let mut other = f;
    other.withdraw.fee = Amount::new(2).unwrap();
    assert_ne!(Transaction::ForcedWithdraw(other).id(&D), id);
    assert_ne!(id, Transaction::Withdraw(f.withdraw).id(&D));
}

#[test]
fn decode_rejects_non_canonical_signatures() {
    let signed: Vec<Transaction> = samples()[..3]
        .iter()
        .cloned()
        .chain(stream_samples())
        .collect();
    for tx in &signed {
        let bytes = tx.encode();
        let sig = bytes.len() - Signature::BYTES;
        let mut bad_e = bytes.clone();
        bad_e[sig..sig + 8].copy_from_slice(&crate::hash::P.to_le_bytes());
        assert_eq!(
            Transaction::decode(&bad_e),
            Err(DecodeError::Signature(
                SignatureError::NonCanonicalChallenge
            ))
        );
        let mut bad_s = bytes;
        bad_s[sig + 32..].fill(0xff);
        assert_eq!(
            Transaction::decode(&bad_s),
            Err(DecodeError::Signature(SignatureError::NonCanonicalScalar))
        );
    }
}

#[test]
fn decode_rejects_a_withdrawal_to_the_zero_address() {
    let [_, _, withdraw, _, forced] = samples().map(|t| t.encode());
    let mut bad = withdraw.clone();
    bad[5..25].fill(0);
    assert_eq!(Transaction::decode(&bad), Err(DecodeError::ZeroDestination));
    assert_eq!(DecodeError::ZeroDestination.code(), "ZERO_DESTINATION");
    // Embedded in a forced withdrawal (offset 17 + 5), the same.
    let mut bad = forced.clone();
    bad[22..42].fill(0);
    assert_eq!(Transaction::decode(&bad), Err(DecodeError::ZeroDestination));
    // One non-zero byte is a destination.
    let mut ok = withdraw;
    ok[5..25].fill(0);
    ok[24] = 1;
    assert!(Transaction::decode(&ok).is_ok());
}

#[test]
fn decode_rejects_integers_above_the_bound() {
    let [reg, transfer, withdraw, _, _] = samples().map(|t| t.encode());
    let cases: [(&Vec<u8>, usize, &str); 9] = [
        (&reg, 41, "valid_until"),
        (&transfer, 9, "amount"),
        (&transfer, 17, "fee"),
        (&transfer, 25, "nonce"),
        (&transfer, 33, "valid_until"),
        (&withdraw, 25, "amount"),
        (&withdraw, 33, "fee"),
        (&withdraw, 41, "nonce"),
        (&withdraw, 49, "valid_until"),
    ];
    for (bytes, at, field) in cases {
        for value in [MAX_U63 + 1, u64::MAX] {
            let mut bad = bytes.clone();
            bad[at..at + 8].copy_from_slice(&value.to_le_bytes());
            assert_eq!(
                Transaction::decode(&bad),
                Err(DecodeError::OutOfRange { field, value }),
                "{field} at {at}"
            );
        }
        // The bound itself is accepted (the signature no longer matches, but decoding
        // does not check signatures).
        let mut ok = bytes.clone();
        ok[at..at + 8].copy_from_slice(&MAX_U63.to_le_bytes());
        assert!(Transaction::decode(&ok).is_ok(), "{field} at {at}");
    }
}

#[test]
fn id_is_the_hash_of_domain_and_fields_without_the_signature() {
    let lens = [7, 7, 11, 4, 7];
    for (tx, len) in samples().iter().zip(lens) {
        let fields = tx.to_field_elements(&D);
        assert_eq!(fields.len(), len, "{}", tx.kind());
        let input = [&D.digest().elements()[..], &fields[..]].concat();
        assert_eq!(tx.id(&D), MessageHash(hash_no_pad(&input)));
        assert_eq!(tx.id(&D), tx.message_hash(&D));
    }
    // Same body, other signature (here: signed by another key): same id.
    if let Transaction::Transfer(t) = samples()[1] {
        let resigned = t.unsigned().sign(&D, &sk(2));
        assert_ne!(resigned.signature, t.signature);
        assert_eq!(
            Transaction::from(resigned).id(&D),
            Transaction::from(t).id(&D)
        );
    }
}

#[test]
fn signer_and_signature_accessors() {
    let [reg, transfer, withdraw, deposit, _] = samples();
    assert_eq!(reg.signer(), Signer::Key(sk(1).public_key()));
    assert_eq!(transfer.signer(), Signer::Account(AccountIndex(1)));
    assert_eq!(withdraw.signer(), Signer::Account(AccountIndex(7)));
    assert_eq!(deposit.signer(), Signer::L1);
    assert!(deposit.signature().is_none() && transfer.signature().is_some());
}

/// Deposits carry no key or signature, so their encoding can be tested without Schnorr.
#[test]
fn deposit_roundtrip_and_rejections() {
    let dep = Transaction::Deposit(Deposit {
        seq: 9,
        to: AccountIndex(3),
        amount: Amount::new(1_000).unwrap(),
    });
    let bytes = dep.encode();
    assert_eq!(bytes.len(), 21);
    assert_eq!(Transaction::decode(&bytes), Ok(dep));

    assert_eq!(Transaction::decode(&[]), Err(DecodeError::Empty));
    assert_eq!(Transaction::decode(&[0]), Err(DecodeError::UnknownTag(0)));
    assert_eq!(
        Transaction::decode(&[6; 21]),
        Err(DecodeError::UnknownTag(6))
    );
    assert_eq!(
        Transaction::decode(&bytes[..20]),
        Err(DecodeError::WrongLength {
            kind: TxKind::Deposit,
            expected: 21,
            got: 20
        })
    );
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        Transaction::decode(&long),
        Err(DecodeError::WrongLength { got: 22, .. })
    ));

    let mut big_amount = bytes.clone();
    big_amount[13..21].copy_from_slice(&(MAX_U63 + 1).to_le_bytes());
    assert_eq!(
        Transaction::decode(&big_amount),
        Err(DecodeError::OutOfRange {
            field: "amount",
            value: MAX_U63 + 1
        })
    );
    let mut big_seq = bytes;
    big_seq[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        Transaction::decode(&big_seq),
        Err(DecodeError::OutOfRange {
            field: "seq",
            value: u64::MAX
        })
    );
}

#[test]
fn deposit_id_depends_on_every_field_and_the_domain() {
    let d = Domain {
        chain_id: 1,
        rollup: [1; 20],
    };
    let dep = Deposit {
        seq: 1,
        to: AccountIndex(2),
        amount: Amount::new(3).unwrap(),
    };
    let id = Transaction::Deposit(dep).id(&d);
    let variants = [
        Deposit { seq: 2, ..dep },
        Deposit {
            to: AccountIndex(3),
            ..dep
        },
        Deposit {
            amount: Amount::new(4).unwrap(),
            ..dep
        },
    ];
    for v in variants {
        assert_ne!(Transaction::Deposit(v).id(&d), id);
    }
    let other = Domain { chain_id: 2, ..d };
    assert_ne!(Transaction::Deposit(dep).id(&other), id);
    let fields = Transaction::Deposit(dep).to_field_elements(&d);
    assert_eq!(fields.len(), 4);
    let mut input = d.digest().elements().to_vec();
    input.extend(fields);
    assert_eq!(
        hash_no_pad(&input),
        id.0,
        "id = H(domain ‖ to_field_elements)"
    );
}

#[test]
fn stream_kinds_are_signed_by_their_party_and_bind_every_field() {
    use crate::stream::{StreamSlot, TickCount};
    let [open, settle, close] = stream_samples();
    let expect = [
        (open.clone(), 1u32, 1u64),
        (settle.clone(), 2, 2),
        (close.clone(), u32::MAX, 3),
    ];
    for (tx, signer, seed) in expect {
        assert_eq!(
            tx.signer(),
            Signer::Account(AccountIndex(signer)),
            "{}",
            tx.kind()
        );
        assert!(tx.verify_signature(&D, &sk(seed).public_key()).is_ok());
        assert_eq!(
            tx.verify_signature(&D, &sk(seed + 10).public_key()),
            Err(Rejection::BadSignature),
            "{}: another key",
            tx.kind()
        );
        let other_domain = Domain { chain_id: 1, ..D };
        assert_eq!(
            tx.verify_signature(&other_domain, &sk(seed).public_key()),
            Err(Rejection::BadSignature),
            "{}: another deployment",
            tx.kind()
        );
        // The id leaves the signature out (a malleated signature is not a second transaction).
        let mut elements = D.digest().elements().to_vec();
        elements.extend(tx.to_field_elements(&D));
        assert_eq!(hash_no_pad(&elements), tx.id(&D).0);
    }
    // Every field of each kind moves its id.
    let (Transaction::StreamOpen(o), Transaction::StreamSettle(st), Transaction::StreamClose(c)) =
        (open.clone(), settle.clone(), close.clone())
    else {
        unreachable!("stream_samples is in tag order")
    };
    let one = Amount::new(1).unwrap();
    let opens = [
        Signed {
            body: crate::stream::rules::Open {
                payer: AccountIndex(9),
                ..o.body
            },
            ..o
        },
        Signed {
            body: crate::stream::rules::Open {
                payee: AccountIndex(9),
                ..o.body
            },
            ..o
        },
        Signed {
            body: crate::stream::rules::Open {
                slot: StreamSlot(6),
                ..o.body
            },
            ..o
        },
        Signed {
            body: crate::stream::rules::Open {
                price: one,
                ..o.body
            },
            ..o
        },
        Signed {
            body: crate::stream::rules::Open {
                max_ticks: TickCount::ZERO,
                ..o.body
            },
            ..o
        },
        Signed {
            body: crate::stream::rules::Open {
                expiry: Timestamp::ZERO,
                ..o.body
            },
            ..o
        },
        Signed {
            body: crate::stream::rules::Open {
                anchor: Digest::ZERO,
                ..o.body
            },
            ..o
        },
        Signed {
            fee: Amount::ZERO,
            ..o
        },
        Signed {
            nonce: Nonce::ZERO,
            ..o
        },
        Signed {
            valid_until: Timestamp::ZERO,
            ..o
        },
    ];
    for (i, v) in opens.iter().enumerate() {
        assert_ne!(Transaction::from(*v).id(&D), open.id(&D), "open field {i}");
    }
    let t = st.body.terms;
    let settles = [
        SettleBody {
            payee: AccountIndex(9),
            ..st.body
        },
        SettleBody {
            terms: crate::stream::rules::Settle {
                payer: AccountIndex(9),
                ..t
            },
            ..st.body
        },
        SettleBody {
            terms: crate::stream::rules::Settle {
                slot: StreamSlot(1),
                ..t
            },
            ..st.body
        },
        SettleBody {
            terms: crate::stream::rules::Settle {
                from: TickCount::new(1).unwrap(),
                ..t
            },
            ..st.body
        },
        SettleBody {
            terms: crate::stream::rules::Settle {
                to: TickCount::new(1).unwrap(),
                ..t
            },
            ..st.body
        },
        SettleBody {
            terms: crate::stream::rules::Settle {
                value: Digest::ZERO,
                ..t
            },
            ..st.body
        },
    ];
    for (i, body) in settles.into_iter().enumerate() {
        assert_ne!(
            Transaction::from(Signed { body, ..st }).id(&D),
            settle.id(&D),
            "settle field {i}"
        );
    }
    let closes = [
        crate::stream::rules::Close {
            signer: AccountIndex(9),
            ..c.body
        },
        crate::stream::rules::Close {
            payer: AccountIndex(9),
            ..c.body
        },
        crate::stream::rules::Close {
            slot: StreamSlot(0),
            ..c.body
        },
    ];
    for (i, body) in closes.into_iter().enumerate() {
        assert_ne!(
            Transaction::from(Signed { body, ..c }).id(&D),
            close.id(&D),
            "close field {i}"
        );
    }
}

#[test]
fn stream_kinds_refuse_out_of_range_ticks_and_non_canonical_digests() {
    let [open, settle, _] = stream_samples().map(|t| t.encode());
    let with = |base: &[u8], at: usize, bytes: &[u8]| {
        let mut v = base.to_vec();
        v[at..at + bytes.len()].copy_from_slice(bytes);
        Transaction::decode(&v)
    };
    let over = ((1u32 << 24) + 1).to_le_bytes();
    let p = crate::hash::P.to_le_bytes();
    // Open: max_ticks at 19, expiry at 23, anchor at 31.
    assert_eq!(
        with(&open, 19, &over),
        Err(DecodeError::OutOfRange {
            field: "max_ticks",
            value: (1 << 24) + 1
        })
    );
    assert_eq!(
        with(&open, 23, &u64::MAX.to_le_bytes()),
        Err(DecodeError::OutOfRange {
            field: "expiry",
            value: u64::MAX
        })
    );
    for limb in 0..4 {
        assert_eq!(
            with(&open, 31 + 8 * limb, &p),
            Err(DecodeError::NonCanonicalDigest("anchor"))
        );
    }
    // Settle: from at 11, to at 15, t_to at 19.
    assert_eq!(
        with(&settle, 11, &over),
        Err(DecodeError::OutOfRange {
            field: "from",
            value: (1 << 24) + 1
        })
    );
    assert_eq!(
        with(&settle, 15, &over),
        Err(DecodeError::OutOfRange {
            field: "to",
            value: (1 << 24) + 1
        })
    );
    assert_eq!(
        with(&settle, 19, &p),
        Err(DecodeError::NonCanonicalDigest("t_to"))
    );
    assert_eq!(
        DecodeError::NonCanonicalDigest("t_to").code(),
        "NON_CANONICAL_DIGEST"
    );
    // p - 1 is canonical (the open sample's anchor is all p - 1).
    assert!(Transaction::decode(&open).is_ok());
}
