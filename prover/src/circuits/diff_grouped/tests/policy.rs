//! Passport records that carry their policy body (SPEC 13.7.1) in the full shape: a
//! delegate's new agent with a long URI and an allow-list that runs over sub-slots, slots and
//! a chunk boundary, and a policy change to an empty list with a URI of 250 bytes (the tail's
//! last window); then witnesses edited by hand past every native check, each of which must
//! have no proof at all.

use state::account::{AccountIndex, Amount, Timestamp};
use state::diff::{AccountTree, PassportRecord, StateDiff};
use state::hash::{two_to_one, Digest};
use state::passport::{AllowList, Card, Policy, ALLOW_DEPTH};

use super::shares::circuit;
use super::{accounts, assert_chains_to, key, lanes, open, record, refused_in, stream, CAP, SUBS};
use crate::circuits::diff_grouped::*;

/// A policy with `n` payees from 5 on (every third index) and a URI of `uri_len` bytes.
fn policy(n: u32, uri_len: usize) -> Policy {
    let uri: String = "https://agents.example/card/"
        .chars()
        .chain(('a'..='z').cycle())
        .take(uri_len)
        .collect();
    Policy {
        cap: Amount::new(5_000).unwrap(),
        window: 3_600,
        max_payment: Amount::new(700).unwrap(),
        max_fee: Amount::new(9).unwrap(),
        expiry: Timestamp::new(1_800_000_000).unwrap(),
        allow: AllowList::new((0..n).map(|i| AccountIndex(5 + 3 * i)).collect()).unwrap(),
        card: Card::new([0xa5; 32], uri).unwrap(),
    }
}

fn with_policy(agent: u32, owner: u32, p: Policy) -> PassportRecord {
    PassportRecord {
        agent: AccountIndex(agent),
        owner: AccountIndex(owner),
        revoked: false,
        window_id: 0,
        spent: Amount::ZERO,
        policy_digest: p.digest(),
        policy: Some(p),
    }
}

/// Six accounts, account 4 an agent of 2 (an earlier diff). The batch: payer 1 opens a stream
/// in slot 3; owner 2 changes agent 4's policy to an empty list and a 250-byte URI; owner 2
/// delegates to a new agent 6 with a 200-byte URI and 70 payees (five runs: 16 x 4 and 6),
/// which also uses lane 2. In chunks of two slots of two sub-slots:
///
/// | chunk | slots |
/// |---|---|
/// | 0 | 1: slot 3; 2 |
/// | 1 | 4 (body, no runs) |
/// | 2 | 6 (body): run, run; 6 continued: run, run |
/// | 3 | 6 continued: run |
///
/// so agent 4's and agent 6's groups each start a chunk (a slot left unused before them), and
/// the list's carry crosses slots and a chunk.
fn transition() -> (AccountTree, StateDiff, Digest) {
    let mut before = AccountTree::from_accounts(&accounts(6));
    let setup = StateDiff::with_streams(6, vec![record(4, 600, 0)], vec![])
        .unwrap()
        .with_agents(vec![with_policy(4, 2, policy(3, 10))], vec![], vec![])
        .unwrap();
    before.apply(&setup).unwrap();
    let mut created = record(6, 90, 0);
    created.pubkey = Some(key(60).public_key().into());
    let diff = StateDiff::with_streams(
        6,
        vec![
            record(1, 9_000, 2),
            record(2, 9_800, 3),
            record(4, 600, 0),
            created,
        ],
        vec![open(1, stream(1, 3, 2, 0, 5))],
    )
    .unwrap()
    .with_agents(
        vec![
            with_policy(4, 2, policy(0, 250)),
            with_policy(6, 2, policy(70, 200)),
        ],
        vec![lanes(6, [0, 1, 0, 0, 0, 0, 0])],
        vec![],
    )
    .unwrap();
    let mut after = before.clone();
    let new_root = after.apply(&diff).unwrap();
    (before, diff, new_root)
}

fn refused(name: &str, w: &GroupedWitness) {
    refused_in(circuit(), name, w)
}

#[test]
fn policy_bodies_prove_with_their_allow_lists_across_slots_and_chunks() {
    use crate::planner::chunks::diff_kind;
    let (before, diff, new_root) = transition();
    assert_eq!(diff_kind(&diff), rollup_storage::DiffCircuitKind::V4Shares);
    let chunks = grouped_chunks(&before, &diff, CAP, SUBS, GroupedParts::Shares, 1).unwrap();
    assert_eq!(chunks.len(), 4);
    let body = |c: usize| {
        chunks[c].0.slots[0]
            .policy
            .as_ref()
            .map(|b| (b.n, b.uri.len()))
    };
    assert_eq!(body(1), Some((0, 250)), "agent 4's body starts chunk 1");
    assert!(
        !chunks[1].0.slots[1].used,
        "the rest of chunk 1 is left unused"
    );
    assert_eq!(body(2), Some((70, 200)), "agent 6's starts chunk 2");
    let runs = |c: usize, s: usize| -> Vec<usize> {
        chunks[c].0.slots[s]
            .subs
            .iter()
            .map(|u| u.payees.len())
            .collect()
    };
    assert_eq!(
        (runs(2, 0), runs(2, 1), runs(3, 0)),
        (vec![16, 16], vec![16, 16], vec![6, 0])
    );
    let carry = |c: usize| chunks[c].1.policy.unwrap()[1];
    assert_eq!(
        (carry(2).left, carry(2).runs),
        (6, 4),
        "the list crosses the chunk"
    );
    assert_eq!(carry(3).left, 0);

    assert_chains_to(&chunks, GroupedParts::Shares, &diff, new_root);
    for (w, s) in &chunks {
        circuit().verify(circuit().prove(w, s).unwrap()).unwrap();
    }
}

/// The allow root of `payees` in any order: the complete tree of depth 10 (SPEC 20.2).
fn any_root(payees: &[u32]) -> Digest {
    let mut level: Vec<Digest> = (0..1 << ALLOW_DEPTH)
        .map(|i| match payees.get(i) {
            Some(&p) => AllowList::leaf(AccountIndex(p)),
            None => Digest::ZERO,
        })
        .collect();
    while level.len() > 1 {
        level = level.chunks(2).map(|c| two_to_one(c[0], c[1])).collect();
    }
    level[0]
}

#[test]
fn dishonest_policy_bodies_have_no_proof() {
    let (before, diff, _) = transition();
    let chunks = grouped_chunks(&before, &diff, CAP, SUBS, GroupedParts::Shares, 1).unwrap();
    // Chunk 2: agent 6's body and its first four runs (the carry out is the chunk's, unchecked
    // by a lone proof: each edit below must break a rule inside the chunk).
    let honest = chunks[2].0.clone();
    circuit()
        .data
        .prove(circuit().partial_witness(&honest).unwrap())
        .expect("the control proves");
    let p6 = diff.passports()[1].policy.clone().unwrap();

    // A field of the body other than the policy's: its digest is not the record's.
    let mut w = honest.clone();
    w.slots[0].policy.as_mut().unwrap().cap += 1;
    refused("cap misstated", &w);

    // A shorter URI (the card differs).
    let mut w = honest.clone();
    w.slots[0].policy.as_mut().unwrap().uri.pop();
    refused("URI cut by a byte", &w);

    // An empty list claimed for a policy that has one: `allow` must be ZERO for n = 0.
    let mut w = honest.clone();
    w.slots[0].policy.as_mut().unwrap().n = 0;
    drop_runs(&mut w);
    refused("n = 0 with a non-empty allow root", &w);

    // A payee swapped for another: the runs rebuild another root than the digest's. Chunk 3's
    // last run closes the tree, so the edit goes there.
    let mut w = chunks[3].0.clone();
    w.slots[0].subs[0].payees[2] += 1;
    refused("a payee of the last run changed", &w);

    // One payee fewer (`n` is not in the digest): the last run closes a shorter list's tree.
    let mut w = chunks[3].0.clone();
    w.policy_in.left -= 1;
    w.slots[0].subs[0].payees.pop();
    refused("the list cut short", &w);

    // Payees out of order under a root and a digest that match them: only the rule that the
    // list strictly increases refuses it (the tree closes in chunk 3, so this chunk checks the
    // order and the digest). Agent 6's list with its first two payees swapped.
    let mut payees: Vec<u32> = p6.allow.payees().iter().map(|p| p.0).collect();
    payees.swap(0, 1);
    let allow = any_root(&payees);
    let mut forged = honest.clone();
    forged.slots[0].passport.as_mut().unwrap().policy_digest = p6.digest_with_allow(allow);
    forged.slots[0].policy.as_mut().unwrap().allow = allow;
    // The continuation opens the leaf slot 0 wrote: its passport part is the forged one.
    let mut record = diff.passports()[1].clone();
    record.policy_digest = p6.digest_with_allow(allow);
    forged.slots[1].parts[1] = record.digest();
    let mut w = forged.clone();
    w.slots[0].subs[0].payees.swap(0, 1);
    refused("payees out of order", &w);
    // Without the swap the forged root and digest prove here: the swap alone was refused.
    circuit()
        .data
        .prove(circuit().partial_witness(&forged).unwrap())
        .expect("the control without the swap proves");

    // A policy body in a slot that starts no chunk is refused before any proving.
    let mut w = honest.clone();
    w.slots[1].policy = w.slots[0].policy.clone();
    assert!(circuit().partial_witness(&w).is_err());
}

#[test]
fn a_policy_set_without_its_body_has_no_proof() {
    let (before, diff, _) = transition();
    let chunks = grouped_chunks(&before, &diff, CAP, SUBS, GroupedParts::Shares, 1).unwrap();
    // Chunk 1: agent 4's policy change, its body in the chunk's first slot (no runs: the new
    // list is empty). The operator publishes the record with the new digest but not the body
    // (has_policy = 0), which would leave the policy unknown to every replica.
    let honest = chunks[1].0.clone();
    let changed = honest.slots[0].passport.unwrap();
    let was = honest.slots[0].passport_before.unwrap();
    assert_ne!(changed.policy_digest, was.policy_digest);
    // (The honest chunk proves: `policy_bodies_prove_with_their_allow_lists_across_slots_and_
    // chunks` proves every chunk of this transition.)
    let mut w = honest.clone();
    w.slots[0].policy = None;
    refused("a changed policy without its body", &w);
    // Claiming the old passport had the new policy: it no longer opens the old part.
    let mut w = honest.clone();
    w.slots[0].policy = None;
    w.slots[0].passport_before.as_mut().unwrap().policy_digest = changed.policy_digest;
    refused("the old passport misstated", &w);
    // Or that the agent had no passport: its old part is not ZERO.
    let mut w = honest.clone();
    w.slots[0].policy = None;
    w.slots[0].passport_before = None;
    refused("the old passport hidden", &w);
    // A new agent (chunk 2's, delegated in the batch) without its body: no passport before.
    let mut w = chunks[2].0.clone();
    assert_eq!(w.slots[0].passport_before, None);
    w.slots[0].policy = None;
    drop_runs(&mut w);
    refused("a new agent's policy without its body", &w);
}

/// Chunk 2 without its payee runs: no payee read, the continuing slot left unused.
fn drop_runs(w: &mut GroupedWitness) {
    for s in &mut w.slots {
        for sub in &mut s.subs {
            sub.payees.clear();
        }
    }
    w.slots[1].used = false;
    w.slots[1].cont = false;
}
