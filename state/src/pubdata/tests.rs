use plonky2::field::types::{Field, PrimeField64};

use super::*;
use crate::hash::{hash_no_pad, Digest};
use crate::split as state_split;

fn amt(v: u64) -> Amount {
    Amount::new(v).unwrap()
}

fn keyless_ops() -> Vec<PubdataOp> {
    vec![
        PubdataOp::Transfer {
            from: AccountIndex(1),
            to: AccountIndex(2),
            amount: amt(300),
            fee: amt(1),
        },
        PubdataOp::Withdraw {
            from: AccountIndex(2),
            to_l1: L1Address([0xab; 20]),
            amount: amt(u64::MAX >> 1),
            fee: amt(0),
        },
        PubdataOp::Deposit {
            seq: 7,
            to: AccountIndex(9),
            amount: amt(5),
            status: DepositStatus::Refunded,
        },
    ]
}

#[test]
fn a_delegate_and_a_policy_change_enter_the_chain_by_their_fixed_bytes_and_the_policy_digest() {
    // With 1,024 allowed payees a policy change's op is 4,277 bytes; its entry is two
    // permutations (a delegate's three) whatever the list.
    use crate::crypto::schnorr::{EncodedKey, SecretKey};
    use crate::passport::{AllowList, Card, Policy};
    use crate::tx::passport::{PassportAction, PassportOp};
    let policy = |last: u32| Policy {
        cap: amt(10),
        window: 60,
        max_payment: amt(5),
        max_fee: amt(1),
        expiry: crate::account::Timestamp::new(2_000_000_000).unwrap(),
        allow: AllowList::new(
            (0..1023u32)
                .map(|i| AccountIndex(i + 5))
                .chain([AccountIndex(last)])
                .collect(),
        )
        .unwrap(),
        card: Card::new([7; 32], "https://agents.example/card.json".into()).unwrap(),
    };
    let key = EncodedKey::from(SecretKey::from_bytes(&[7; 40]).unwrap().public_key());
    let delegate = |p: Policy| {
        PubdataOp::Passport(PassportOp {
            owner: AccountIndex(1),
            agent: AccountIndex(40),
            action: PassportAction::Delegate {
                agent_key: key,
                fund: amt(0x0a0b_0c0d),
                policy: p,
            },
            fee: amt(0x0102_0304_0506),
        })
    };
    let set_policy = |p: Policy| {
        PubdataOp::Passport(PassportOp {
            owner: AccountIndex(1),
            agent: AccountIndex(2),
            action: PassportAction::SetPolicy {
                agent: AccountIndex(2),
                policy: p,
            },
            fee: amt(9),
        })
    };
    let c = ops_commitment_after(&keyless_ops());
    // (op, bytes before the policy, fixed bytes, elements hashed)
    for (make, head, fixed_len, elements) in [
        (
            &delegate as &dyn Fn(Policy) -> PubdataOp,
            57,
            DELEGATE_FIXED_BYTES,
            19,
        ),
        (&set_policy, 9, SET_POLICY_FIXED_BYTES, 12),
    ] {
        let op = make(policy(5000));
        let bytes = op.to_bytes();
        assert!(bytes.len() > 4000);
        let mut fixed = bytes[..head].to_vec();
        fixed.extend_from_slice(&bytes[bytes.len() - 8..]);
        assert_eq!(fixed.len(), fixed_len);
        let mut expect = c.digest().elements().to_vec();
        expect.push(F::from_canonical_usize(fixed_len));
        expect.extend(bytes_to_chunks(&fixed));
        expect.extend(policy(5000).digest().elements());
        assert_eq!(expect.len(), elements);
        let mut got = c;
        got.absorb(&op);
        assert_eq!(got.digest(), hash_no_pad(&expect));
        // Another last payee: another policy digest, another entry.
        let mut other = c;
        other.absorb(&make(policy(5001)));
        assert_ne!(other.digest(), got.digest());
    }
}

#[test]
fn a_split_enters_the_chain_by_its_fixed_bytes_and_its_parts_digest() {
    let split = |parts: Vec<Payout>| PubdataOp::Split {
        from: AccountIndex(3),
        parts,
        fee: amt(0x0102_0304_0506),
    };
    let parts: Vec<Payout> = (0..1024u32)
        .map(|i| Payout {
            to: AccountIndex(i + 5),
            amount: amt(u64::from(i) + 1),
        })
        .collect();
    let op = split(parts.clone());
    let c = ops_commitment_after(&keyless_ops());
    let expect = list_entry_by_hand(c, &op, state_split::parts_digest(&parts));
    assert_eq!(expect.len(), 12, "two permutations");
    let mut got = c;
    got.absorb(&op);
    assert_eq!(got.digest(), hash_no_pad(&expect));
    // Other parts, same count and fee: another entry.
    let mut other = parts;
    other[1000].amount = amt(7);
    let mut c2 = c;
    c2.absorb(&split(other));
    assert_ne!(c2.digest(), got.digest());
}

#[test]
fn a_share_registration_enters_the_chain_like_a_split() {
    let parts: Vec<(AccountIndex, u16)> = (0..1000u32).map(|i| (AccountIndex(i + 5), 10)).collect();
    let register = |parts: Vec<(AccountIndex, u16)>| PubdataOp::RegisterShares {
        account: AccountIndex(3),
        parts,
        fee: amt(0x0102_0304_0506),
    };
    let op = register(parts.clone());
    let c = ops_commitment_after(&keyless_ops());
    let expect = list_entry_by_hand(c, &op, state_split::shares_chain(&parts));
    let mut got = c;
    got.absorb(&op);
    assert_eq!(got.digest(), hash_no_pad(&expect));
    // Other points for one payee: another entry.
    let mut other = parts;
    other[999].1 = 11;
    let mut c2 = c;
    c2.absorb(&register(other));
    assert_ne!(c2.digest(), got.digest());
}

/// The elements a split's or a registration's entry hashes, by hand from the op's bytes (SPEC
/// 10.2): after `c`, 15 and the chunks of the first seven bytes (tag, owner, n) and the last
/// eight (the fee), then the list's digest `d` (the parts digest of 19.4, the shares chain of
/// 19.2).
fn list_entry_by_hand(c: PubdataCommitment, op: &PubdataOp, d: Digest) -> Vec<F> {
    let bytes = op.to_bytes();
    let mut fixed = bytes[..7].to_vec();
    fixed.extend_from_slice(&bytes[bytes.len() - 8..]);
    let mut expect = c.digest().elements().to_vec();
    expect.push(F::from_canonical_usize(15));
    expect.extend(bytes_to_chunks(&fixed));
    expect.extend(d.elements());
    expect
}

fn ops_commitment_after(ops: &[PubdataOp]) -> PubdataCommitment {
    let mut c = PubdataCommitment::new();
    ops.iter().for_each(|op| c.absorb(op));
    c
}

#[test]
fn op_lengths_and_layout() {
    assert_eq!(op_len(TxKind::Register), 45);
    assert_eq!(op_len(TxKind::Transfer), 25);
    assert_eq!(op_len(TxKind::Withdraw), 41);
    assert_eq!(op_len(TxKind::Deposit), 22);
    let ops = keyless_ops();
    let t = ops[0].to_bytes();
    assert_eq!(t.len(), 25);
    assert_eq!(t[0], 2);
    assert_eq!(&t[1..5], &1u32.to_le_bytes());
    assert_eq!(&t[9..17], &300u64.to_le_bytes());
    let d = ops[2].to_bytes();
    assert_eq!(d.len(), 22);
    assert_eq!(d[21], 1, "refunded status byte");
}

#[test]
fn blob_roundtrip_and_rejections() {
    let ops = keyless_ops();
    let blob = encode_ops(&ops);
    assert_eq!(decode_ops(&blob), Ok(ops.clone()));
    assert_eq!(
        decode_ops(&blob[..blob.len() - 1]),
        Err(PubdataError::Truncated)
    );
    let mut bad_status = ops[2].to_bytes();
    bad_status[21] = 2;
    assert_eq!(decode_ops(&bad_status), Err(PubdataError::BadStatus(2)));
    assert_eq!(decode_ops(&[17]), Err(PubdataError::UnknownTag(17)));
    assert_eq!(decode_ops(&[10, 0, 0]), Err(PubdataError::Truncated));
    let mut big = ops[0].to_bytes();
    big[9..17].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(decode_ops(&big), Err(PubdataError::OutOfRange(u64::MAX)));
}

#[test]
fn register_op_roundtrips_and_validates_the_key() {
    use rand::SeedableRng;
    let key = crate::crypto::schnorr::SecretKey::random(&mut rand::rngs::StdRng::seed_from_u64(7));
    let op = PubdataOp::Register {
        index: AccountIndex(0x0102_0304),
        pubkey: key.public_key(),
    };
    let bytes = op.to_bytes();
    assert_eq!(bytes.len(), 45);
    assert_eq!(&bytes[1..5], &[4, 3, 2, 1]);
    assert_eq!(&bytes[5..], &key.public_key().to_bytes());
    assert_eq!(PubdataOp::decode_prefix(&bytes), Ok((op.clone(), 45)));
    assert_eq!(op.chunks().len(), 7);
    let mut bad = bytes;
    bad[5..].fill(0xff);
    assert_eq!(
        decode_ops(&bad),
        Err(PubdataError::PublicKey(KeyError::NonCanonical))
    );
}

#[test]
fn chunks_are_seven_byte_little_endian() {
    let op = keyless_ops()[0].clone();
    let bytes = op.to_bytes();
    let chunks = op.chunks();
    assert_eq!(chunks.len(), 4, "25 bytes = 3 full chunks + 4 bytes");
    let mut b = [0u8; 8];
    b[..7].copy_from_slice(&bytes[..7]);
    assert_eq!(chunks[0].to_canonical_u64(), u64::from_le_bytes(b));
    let mut last = [0u8; 8];
    last[..4].copy_from_slice(&bytes[21..]);
    assert_eq!(chunks[3].to_canonical_u64(), u64::from_le_bytes(last));
    // All 0xff bytes must still be canonical.
    assert_eq!(
        bytes_to_chunks(&[0xff; 7])[0].to_canonical_u64(),
        (1 << 56) - 1
    );
}

#[test]
fn pubdata_commitment_chains_in_order() {
    let ops = keyless_ops();
    assert_eq!(pubdata_commitment([]), Digest::ZERO);
    let c1 = hash_no_pad(
        &[
            Digest::ZERO.elements().to_vec(),
            vec![F::from_canonical_u64(25)],
            ops[0].chunks(),
        ]
        .concat(),
    );
    assert_eq!(pubdata_commitment(&ops[..1]), c1);
    let full = pubdata_commitment(&ops);
    let swapped = pubdata_commitment([&ops[1], &ops[0], &ops[2]]);
    assert_ne!(full, swapped, "order matters");
    assert_ne!(full, pubdata_commitment(&ops[..2]), "every op matters");
    // Changing a single bit of one op changes the commitment.
    let mut changed = ops.clone();
    changed[2] = PubdataOp::Deposit {
        seq: 7,
        to: AccountIndex(9),
        amount: amt(5),
        status: DepositStatus::Credited,
    };
    assert_ne!(full, pubdata_commitment(&changed));
}

#[test]
fn withdrawals_commitment_chains_in_order() {
    let a = WithdrawalRecord {
        from: AccountIndex(1),
        to_l1: L1Address([1; 20]),
        amount: amt(10),
    };
    let b = WithdrawalRecord {
        amount: amt(11),
        ..a
    };
    assert_eq!(withdrawals_commitment([]), Digest::ZERO);
    let w1 = hash_no_pad(&[&Digest::ZERO.elements()[..], &a.to_field_elements()[..]].concat());
    assert_eq!(withdrawals_commitment([&a]), w1);
    assert_ne!(
        withdrawals_commitment([&a, &b]),
        withdrawals_commitment([&b, &a])
    );
}

#[test]
fn stream_ops_roundtrip_and_refuse_bad_bodies() {
    use crate::stream::rules::Settle;
    use crate::stream::{StreamSlot, TickCount};
    let open = Open {
        payer: AccountIndex(1),
        payee: AccountIndex(2),
        slot: StreamSlot(4),
        price: Amount::new(3).unwrap(),
        max_ticks: TickCount::MAX,
        expiry: Timestamp::MAX,
        anchor: Digest([F::from_canonical_u64(9); 4]),
    };
    let settle = SettleBody {
        payee: AccountIndex(2),
        terms: Settle {
            payer: AccountIndex(1),
            slot: StreamSlot(4),
            from: TickCount::ZERO,
            to: TickCount::new(8).unwrap(),
            value: Digest([F::from_canonical_u64(1); 4]),
        },
    };
    let close = Close {
        payer: AccountIndex(1),
        slot: StreamSlot(4),
        signer: AccountIndex(1),
    };
    let fee = Amount::MAX;
    let ops = [
        PubdataOp::StreamOpen { body: open, fee },
        PubdataOp::StreamSettle { body: settle, fee },
        PubdataOp::StreamClose { body: close, fee },
    ];
    let mut blob = Vec::new();
    for (op, len) in ops.iter().zip([71, 59, 19]) {
        let bytes = op.to_bytes();
        assert_eq!((bytes.len(), op_len(op.kind())), (len, len));
        assert_eq!(bytes[0], op.kind().tag());
        assert_eq!(PubdataOp::decode_prefix(&bytes), Ok((op.clone(), len)));
        assert_eq!(
            PubdataOp::decode_prefix(&bytes[..len - 1]),
            Err(PubdataError::Truncated)
        );
        blob.extend(bytes);
    }
    assert_eq!(decode_ops(&blob), Ok(ops.to_vec()));
    // The body is checked as in a transaction: a non-canonical anchor (offset 31), a tick
    // count above 2^24 (max_ticks at 19), a fee above 2^63 - 1 (the last eight bytes).
    let bytes = ops[0].to_bytes();
    let mut bad = bytes.clone();
    bad[31..39].copy_from_slice(&crate::hash::P.to_le_bytes());
    assert_eq!(
        PubdataOp::decode_prefix(&bad),
        Err(PubdataError::Stream(DecodeError::NonCanonicalDigest(
            "anchor"
        )))
    );
    let mut bad = bytes.clone();
    bad[19..23].copy_from_slice(&((1u32 << 24) + 1).to_le_bytes());
    assert!(matches!(
        PubdataOp::decode_prefix(&bad),
        Err(PubdataError::Stream(DecodeError::OutOfRange {
            field: "max_ticks",
            ..
        }))
    ));
    let mut bad = bytes;
    bad[63..].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        PubdataOp::decode_prefix(&bad),
        Err(PubdataError::OutOfRange(u64::MAX))
    );
    // Tag 6 (the exit authorisation's kind element) is no op.
    assert_eq!(
        PubdataOp::decode_prefix(&[6; 30]),
        Err(PubdataError::UnknownTag(6))
    );
}
