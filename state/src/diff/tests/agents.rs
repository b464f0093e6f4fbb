//! Version 3: passport and lanes records. Batches of passport transactions, agent spends and
//! lane payments whose diffs rebuild the state (profiles and `ext` included) on a replica, the
//! layout, and the decoder's refusals.

use super::*;
use crate::lanes::{Lane, LaneNonces};
use crate::passport::{AllowList, Card, Policy};
use crate::tx::{PassportAction, UnsignedPassportTx};

const ALICE: AccountIndex = AccountIndex(1);
const BOB: AccountIndex = AccountIndex(2);
const AGENT: AccountIndex = AccountIndex(3);

fn policy(cap: u64) -> Policy {
    Policy {
        cap: amt(cap),
        window: 600,
        max_payment: amt(100),
        max_fee: amt(5),
        expiry: Timestamp::new(NOW + 10_000).unwrap(),
        allow: AllowList::new(vec![BOB]).unwrap(),
        card: Card::new([1; 32], "https://agents.example/x".into()).unwrap(),
    }
}

fn owner(s: &State, keys: &[SecretKey], action: PassportAction) -> Transaction {
    UnsignedPassportTx {
        owner: ALICE,
        action,
        fee: amt(1),
        nonce: s.account(ALICE).unwrap().nonce,
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &keys[1])
    .into()
}

fn agent_pays(s: &State, agent: &SecretKey, amount: u64) -> Transaction {
    UnsignedTransfer {
        from: AGENT,
        to: BOB,
        amount: amt(amount),
        fee: amt(1),
        nonce: s.account(AGENT).unwrap().nonce,
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, agent)
    .into()
}

/// Applies `txs` as one batch and seals it; returns the published bytes.
fn seal(s: &mut State, txs: impl FnOnce(&mut State) -> Vec<Effects>) -> Vec<u8> {
    let old_root = s.root();
    let mut touches = BatchTouches::new(s.num_accounts());
    for fx in txs(s) {
        touches.absorb(&fx);
    }
    touches.seal(s, old_root).expect("the batch's diff checks")
}

#[test]
fn agent_batches_publish_records_that_rebuild_profiles_and_roots() {
    let (mut s, keys) = world();
    s.enable_lanes();
    let mut replica = AccountTree::from_accounts(s.accounts());
    let agent = key(40);
    // Batch 1: alice delegates (the policy travels), the agent pays, alice pays on lane 2.
    let blob = seal(&mut s, |s| {
        let d = owner(
            s,
            &keys,
            PassportAction::Delegate {
                agent_key: agent.public_key().into(),
                fund: amt(300),
                policy: policy(500),
            },
        );
        let mut fx = vec![s.apply(&d, &ctx()).unwrap()];
        fx.push(s.apply(&agent_pays(s, &agent, 40), &ctx()).unwrap());
        let lane2 = Nonce::in_lane(Lane::new(2).unwrap(), 0).unwrap();
        let t: Transaction = UnsignedTransfer {
            from: ALICE,
            to: BOB,
            amount: amt(7),
            fee: amt(0),
            nonce: lane2,
            valid_until: Timestamp::new(NOW + 60).unwrap(),
        }
        .sign(&DOMAIN, &keys[1])
        .into();
        fx.push(s.apply(&t, &ctx()).unwrap());
        fx
    });
    let d1 = StateDiff::decode(&blob).unwrap();
    assert_eq!(blob[0], 4, "published grouped by account");
    assert_eq!(d1.version(), 3, "what earlier nodes published for it");
    assert_eq!(d1.encode_grouped(), blob, "one encoding");
    assert_eq!(StateDiff::decode(&d1.encode()), Ok(d1.clone()));
    assert_eq!(d1.passports().len(), 1);
    assert!(
        d1.passports()[0].policy.is_some(),
        "the delegate's batch carries the policy"
    );
    assert_eq!(
        d1.lanes().iter().map(|r| r.account).collect::<Vec<_>>(),
        [ALICE]
    );
    assert_eq!(replica.apply(&d1), Ok(s.root()));
    assert_eq!(replica.accounts()[3].ext, s.account(AGENT).unwrap().ext);

    // Batch 2: the agent pays again: its record carries the digest only, and the replica keeps
    // the policy it saw.
    let blob = seal(&mut s, |s| {
        vec![s.apply(&agent_pays(s, &agent, 30), &ctx()).unwrap()]
    });
    let d2 = StateDiff::decode(&blob).unwrap();
    assert_eq!(d2.passports()[0].policy, None);
    assert!(d2.lanes().is_empty(), "alice's lanes did not change");
    assert_eq!(replica.apply(&d2), Ok(s.root()));
    assert_eq!(
        replica.passport_of(3).and_then(|r| r.policy.clone()),
        Some(policy(500))
    );

    // Batch 3: a policy change and a revocation.
    let blob = seal(&mut s, |s| {
        let p = owner(
            s,
            &keys,
            PassportAction::SetPolicy {
                agent: AGENT,
                policy: policy(900),
            },
        );
        let fx1 = s.apply(&p, &ctx()).unwrap();
        let r = owner(s, &keys, PassportAction::Revoke { agent: AGENT });
        vec![fx1, s.apply(&r, &ctx()).unwrap()]
    });
    let d3 = StateDiff::decode(&blob).unwrap();
    assert!(d3.passports()[0].revoked);
    assert_eq!(d3.passports()[0].policy, Some(policy(900)));
    assert_eq!(replica.apply(&d3), Ok(s.root()));

    // A plain batch stays version 1.
    let blob = seal(&mut s, |s| vec![pay(s, &keys, 2, 1, 5, 0)]);
    assert_eq!(blob[0], 1);
    assert_eq!(
        replica.apply(&StateDiff::decode(&blob).unwrap()),
        Ok(s.root())
    );
}

#[test]
fn seal_refuses_an_agent_record_that_is_missing_or_wrong() {
    let (mut s, keys) = world();
    let agent = key(40);
    let old_root = s.root();
    let mut touches = BatchTouches::new(s.num_accounts());
    let d = owner(
        &s,
        &keys,
        PassportAction::Delegate {
            agent_key: agent.public_key().into(),
            fund: amt(300),
            policy: policy(500),
        },
    );
    touches.absorb(&s.apply(&d, &ctx()).unwrap());
    let blob = touches.seal(&mut s, old_root).unwrap();
    let good = StateDiff::decode(&blob).unwrap();
    // The same accounts without the passport: a replica could not recompute the agent's ext.
    let bare = StateDiff::with_streams(good.count_before(), good.records().to_vec(), vec![])
        .unwrap()
        .encode();
    assert_eq!(
        touches.verify(&bare, &mut s, old_root).map(|_| ()),
        Err(DiffError::AgentMismatch(3))
    );
    // A passport that says more was spent than the state's.
    let mut wrong = good.passports()[0].clone();
    wrong.spent = amt(1);
    let tampered = StateDiff::with_streams(good.count_before(), good.records().to_vec(), vec![])
        .unwrap()
        .with_agents(vec![wrong], vec![], vec![])
        .unwrap()
        .encode();
    assert_eq!(
        touches.verify(&tampered, &mut s, old_root).map(|_| ()),
        Err(DiffError::AgentMismatch(3))
    );
}

#[test]
fn version_3_decoding_refuses_every_malformed_agent_record() {
    let (mut s, keys) = world();
    let agent = key(40);
    let d = owner(
        &s,
        &keys,
        PassportAction::Delegate {
            agent_key: agent.public_key().into(),
            fund: amt(300),
            policy: policy(500),
        },
    );
    let published = seal(&mut s, |s| vec![s.apply(&d, &ctx()).unwrap()]);
    // The same content in version 3, which earlier nodes published and every node decodes.
    let blob = StateDiff::decode(&published).unwrap().encode();
    let diff = StateDiff::decode(&blob).unwrap();
    // Layout: the account records, an empty stream section, then one passport record.
    let at = HEADER_BYTES
        + diff
            .records()
            .iter()
            .map(|r| {
                if r.pubkey.is_some() {
                    NEW_RECORD_BYTES
                } else {
                    RECORD_BYTES
                }
            })
            .sum::<usize>();
    assert_eq!(&blob[at..at + 4], &0u32.to_le_bytes(), "no stream record");
    assert_eq!(
        &blob[at + 4..at + 8],
        &1u32.to_le_bytes(),
        "one passport record"
    );
    let rec = at + 8;
    assert_eq!(&blob[rec..rec + 4], &3u32.to_le_bytes(), "agent");
    assert_eq!(&blob[rec + 4..rec + 8], &1u32.to_le_bytes(), "owner");
    assert_eq!(
        blob[blob.len() - 8..],
        [0; 8],
        "the lanes and shares counts end it"
    );
    let patched = |offset: usize, bytes: &[u8]| {
        let mut b = blob.clone();
        b[offset..offset + bytes.len()].copy_from_slice(bytes);
        StateDiff::decode(&b).map(|_| ()).map_err(|e| e.code())
    };
    assert_eq!(
        patched(rec, &9u32.to_le_bytes()),
        Err("BAD_AGENT"),
        "agent unknown"
    );
    assert_eq!(
        patched(rec + 4, &3u32.to_le_bytes()),
        Err("BAD_AGENT"),
        "its own owner"
    );
    assert_eq!(patched(rec + 8, &[2]), Err("BAD_AGENT"), "revoked 2");
    assert_eq!(
        patched(rec + 17, &(1u64 << 63).to_le_bytes()),
        Err("BAD_AGENT"),
        "spent"
    );
    assert_eq!(
        patched(rec + 25, &[0x55]),
        Err("BAD_AGENT"),
        "a policy of another digest"
    );
    assert_eq!(patched(rec + 57, &[2]), Err("BAD_AGENT"), "has_policy 2");
    assert_eq!(
        patched(rec, &2u32.to_le_bytes()),
        Err("AGENT_WITHOUT_ACCOUNT"),
        "bob has no record"
    );
    // The passport count zero: no agent record at all is not version 3.
    let mut empty = blob[..at + 4].to_vec();
    for _ in 0..3 {
        empty.extend_from_slice(&0u32.to_le_bytes());
    }
    assert_eq!(
        StateDiff::decode(&empty).map(|_| ()),
        Err(DiffError::EmptyAgentSection)
    );
    // A lanes record with a sequence number of 2^60.
    let mut lanes = blob[..blob.len() - 8].to_vec();
    lanes.extend_from_slice(&1u32.to_le_bytes());
    lanes.extend_from_slice(&1u32.to_le_bytes());
    let mut seqs = [0u64; 7];
    seqs[3] = 1 << 60;
    for q in seqs {
        lanes.extend_from_slice(&q.to_le_bytes());
    }
    lanes.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        StateDiff::decode(&lanes).map(|_| ()),
        Err(DiffError::BadLanes(1))
    );
    assert!(LaneNonces::from_seqs(seqs).is_none());
    assert_eq!(
        StateDiff::decode(&blob[..blob.len() - 1]).map(|_| ()),
        Err(DiffError::Truncated)
    );
}
