//! Version 3: shares records. A registration publishes its shares once; a replica recomputes
//! the owner's profile from them; seal refuses a missing, extra or wrong record; the decoder
//! refuses every malformed one; a snapshot carries them.

use super::*;
use crate::split::Shares;
use crate::tx::{DistributeBody, Unsigned, UnsignedRegisterShares};

const ALICE: AccountIndex = AccountIndex(1);
const BOB: AccountIndex = AccountIndex(2);
const PARTS: [(AccountIndex, u16); 2] = [(AccountIndex(0), 2_000), (BOB, 8_000)];

fn register(s: &State, keys: &[SecretKey]) -> Transaction {
    UnsignedRegisterShares {
        account: ALICE,
        parts: PARTS.to_vec(),
        fee: amt(1),
        nonce: s.account(ALICE).unwrap().nonce,
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &keys[1])
    .into()
}

fn distribute(s: &State, keys: &[SecretKey]) -> Transaction {
    Unsigned {
        body: DistributeBody {
            signer: BOB,
            account: ALICE,
        },
        fee: amt(2),
        nonce: s.account(BOB).unwrap().nonce,
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &keys[2])
    .into()
}

/// A state where alice registered her shares in one sealed batch; its touches and blob.
fn registered() -> (State, Vec<SecretKey>, Digest, BatchTouches, Vec<u8>) {
    let (mut s, keys) = world();
    let old_root = s.root();
    let mut touches = BatchTouches::new(s.num_accounts());
    touches.absorb(&s.apply(&register(&s, &keys), &ctx()).unwrap());
    let blob = touches
        .seal(&mut s, old_root)
        .expect("the batch's diff checks");
    (s, keys, old_root, touches, blob)
}

#[test]
fn a_registration_publishes_its_shares_once_and_a_replica_rebuilds_the_profile() {
    let (mut s, keys) = world();
    let mut replica = AccountTree::from_accounts(s.accounts());
    let old_root = s.root();
    let mut touches = BatchTouches::new(s.num_accounts());
    touches.absorb(&s.apply(&register(&s, &keys), &ctx()).unwrap());
    // The registration and a distribute in the same batch.
    touches.absorb(&s.apply(&distribute(&s, &keys), &ctx()).unwrap());
    let blob = touches.seal(&mut s, old_root).unwrap();
    let d = StateDiff::decode(&blob).unwrap();
    assert_eq!(blob[0], 4, "published grouped by account");
    assert_eq!(d.version(), 3, "what earlier nodes published for it");
    assert_eq!(d.encode_grouped(), blob, "one encoding");
    assert_eq!(StateDiff::decode(&d.encode()), Ok(d.clone()));
    assert!(d.passports().is_empty() && d.lanes().is_empty());
    assert_eq!(
        d.shares(),
        [SharesRecord(Shares::new(ALICE, PARTS.to_vec()).unwrap())]
    );
    assert_ne!(s.account(ALICE).unwrap().ext, Digest::ZERO);
    assert_eq!(replica.apply(&d), Ok(s.root()));
    assert_eq!(replica.accounts()[1].ext, s.account(ALICE).unwrap().ext);

    // A later distribute changes balances only: version 1, and the replica keeps the profile.
    let old_root = s.root();
    let mut touches = BatchTouches::new(s.num_accounts());
    touches.absorb(&pay(&mut s, &keys, 2, 1, 50, 0));
    touches.absorb(&s.apply(&distribute(&s, &keys), &ctx()).unwrap());
    let blob = touches.seal(&mut s, old_root).unwrap();
    assert_eq!(blob[0], 1);
    assert_eq!(
        replica.apply(&StateDiff::decode(&blob).unwrap()),
        Ok(s.root())
    );

    // A replica that caught up from the state itself follows too.
    assert_eq!(AccountTree::from_state(&s).root(), s.root());
}

#[test]
fn seal_refuses_a_shares_record_that_is_missing_extra_or_wrong() {
    let (mut s, keys, old_root, touches, blob) = registered();
    let good = StateDiff::decode(&blob).unwrap();
    let bare = || StateDiff::with_streams(good.count_before(), good.records().to_vec(), vec![]);
    // Without the record a replica could not recompute alice's ext.
    assert_eq!(
        touches
            .verify(&bare().unwrap().encode(), &mut s, old_root)
            .map(|_| ()),
        Err(DiffError::AgentMismatch(1))
    );
    // Other shares than the state's.
    let other = Shares::new(ALICE, vec![(AccountIndex(0), 5_000), (BOB, 5_000)]).unwrap();
    let wrong = bare()
        .unwrap()
        .with_agents(vec![], vec![], vec![SharesRecord(other)])
        .unwrap()
        .encode();
    assert_eq!(
        touches.verify(&wrong, &mut s, old_root).map(|_| ()),
        Err(DiffError::AgentMismatch(1))
    );
    // The same shares again in a batch that did not register them.
    let old_root2 = s.root();
    let mut later = BatchTouches::new(s.num_accounts());
    later.absorb(&s.apply(&distribute(&s, &keys), &ctx()).unwrap());
    let honest = StateDiff::decode(&later.seal(&mut s, old_root2).unwrap()).unwrap();
    let repeated =
        StateDiff::with_streams(honest.count_before(), honest.records().to_vec(), vec![])
            .unwrap()
            .with_agents(vec![], vec![], good.shares().to_vec())
            .unwrap()
            .encode();
    assert_eq!(
        later.verify(&repeated, &mut s, old_root2).map(|_| ()),
        Err(DiffError::AgentMismatch(1))
    );
}

#[test]
fn version_3_decoding_refuses_every_malformed_shares_record() {
    // The version 3 encoding of a published batch (earlier nodes published it; every node
    // decodes it).
    let (.., published) = registered();
    let blob = StateDiff::decode(&published).unwrap().encode();
    // The shares record closes the blob: account, n = 2, then two (payee, bps) parts.
    let rec = blob.len() - (SHARES_RECORD_BYTES + 2 * 6);
    assert_eq!(
        &blob[rec - 4..rec],
        &1u32.to_le_bytes(),
        "one shares record"
    );
    assert_eq!(&blob[rec..rec + 4], &1u32.to_le_bytes(), "account");
    assert_eq!(&blob[rec + 4..rec + 6], &2u16.to_le_bytes(), "n");
    let patched = |offset: usize, bytes: &[u8]| {
        let mut b = blob.clone();
        b[offset..offset + bytes.len()].copy_from_slice(bytes);
        StateDiff::decode(&b).map(|_| ()).map_err(|e| e.to_string())
    };
    let bad = |field: &str| Err(format!("shares record of account 1: invalid {field}"));
    assert_eq!(
        patched(rec, &7u32.to_le_bytes()),
        Err("shares record of account 7: invalid account".into())
    );
    assert_eq!(
        patched(rec + 6, &7u32.to_le_bytes()),
        bad("payee"),
        "unknown"
    );
    assert_eq!(
        patched(rec + 6, &1u32.to_le_bytes()),
        bad("payee"),
        "itself"
    );
    assert_eq!(patched(rec + 6, &2u32.to_le_bytes()), bad("payee"), "twice");
    assert_eq!(
        patched(rec + 10, &2_001u16.to_le_bytes()),
        bad("bps"),
        "not whole"
    );
    assert_eq!(patched(rec + 10, &0u16.to_le_bytes()), bad("bps"), "zero");
    assert_eq!(
        patched(rec, &0u32.to_le_bytes()).map_err(|_| ()),
        Err(()),
        "the operator has no account record here"
    );
    assert_eq!(
        StateDiff::decode(&blob[..blob.len() - 1]).map(|_| ()),
        Err(DiffError::Truncated)
    );
    assert_eq!(
        DiffError::BadShares {
            account: 1,
            field: "n"
        }
        .code(),
        "BAD_SHARES"
    );
    // No shares: the section's count alone is not version 3.
    let mut empty = blob[..rec - 4].to_vec();
    empty.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        StateDiff::decode(&empty).map(|_| ()),
        Err(DiffError::EmptyAgentSection)
    );
}

#[test]
fn a_snapshot_carries_the_shares_and_refuses_a_state_whose_profile_lost_them() {
    let (mut s, keys, ..) = registered();
    let bytes = s.encode_snapshot();
    let mut back = State::decode_snapshot(&bytes, &DOMAIN).unwrap();
    assert_eq!(back.root(), s.root());
    assert_eq!(back.shares_of(ALICE), s.shares_of(ALICE));
    assert_eq!(back.encode_snapshot(), bytes, "canonical");
    // The restored state still locks alice and distributes like the original.
    let d = distribute(&back, &keys);
    assert_eq!(back.apply(&d, &ctx()), s.apply(&d, &ctx()));
    assert_eq!(back.root(), s.root());
    // A snapshot whose shares section is emptied no longer explains alice's ext.
    let tree_len = {
        let mut t = Vec::new();
        s.root();
        s.tree.encode_into(&mut t);
        t.len()
    };
    let shares_at = bytes.len() - tree_len - (8 + SHARES_RECORD_BYTES + 2 * 6);
    assert_eq!(&bytes[shares_at..shares_at + 8], &1u64.to_le_bytes());
    let mut cut = bytes[..shares_at].to_vec();
    cut.extend_from_slice(&0u64.to_le_bytes());
    cut.extend_from_slice(&bytes[bytes.len() - tree_len..]);
    assert_eq!(
        State::decode_snapshot(&cut, &DOMAIN).err(),
        Some(crate::snapshot::SnapshotError::ExtMismatch(1))
    );
}
