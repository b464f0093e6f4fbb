//! The grouped diff circuit on a real version 4 diff (stream records that open, settle and
//! empty slots, an account whose records continue in a second slot, an account that only
//! received, a new account that opens a stream), checked against the native rebuild from L1
//! (`AccountTree::apply`) and the SHA-256 of `encode_grouped`; and on witnesses edited by hand
//! past every native check, each of which must have no proof at all.

use std::sync::OnceLock;

use rand::SeedableRng;
use sha2::{Digest as _, Sha256};
use state::account::{Account, AccountIndex, Amount, Nonce, Timestamp};
use state::crypto::schnorr::SecretKey;
use state::diff::{AccountRecord, LanesRecord, PassportRecord, StreamRecord};
use state::lanes::LaneNonces;
use state::stream::{Stream, StreamId, StreamSlot, TickCount};

use plonky2::field::types::PrimeField64;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::CircuitConfig;
use state::diff::{AccountTree, StateDiff};
use state::stream::PayerStreams;

use super::*;
use crate::D;

const CAP: usize = 2;
const SUBS: usize = 2;

fn circuit() -> &'static GroupedDiffCircuit {
    static C: OnceLock<GroupedDiffCircuit> = OnceLock::new();
    C.get_or_init(|| GroupedDiffCircuit::build(CAP, SUBS, GroupedParts::Agents))
}

fn key(seed: u64) -> SecretKey {
    SecretKey::random(&mut rand::rngs::StdRng::seed_from_u64(seed))
}

fn stream(payer: u32, slot: u16, payee: u32, settled: u32, head: u64) -> Stream {
    Stream {
        id: StreamId {
            payer: AccountIndex(payer),
            slot: StreamSlot(slot),
            opened_at: Nonce::new(3).unwrap(),
        },
        payee: AccountIndex(payee),
        price: Amount::new(25).unwrap(),
        max_ticks: TickCount::new(100).unwrap(),
        expiry: Timestamp::new(1_700_003_600).unwrap(),
        settled: TickCount::new(settled).unwrap(),
        head: state::hash::hash_no_pad(&[F::from_canonical_u64(head)]),
    }
}

/// `n` accounts, account `i` with balance `10,000 + i` and nonce `i`.
fn accounts(n: u64) -> Vec<Account> {
    (0..n)
        .map(|i| {
            let mut a = Account::new(key(i).public_key());
            a.balance = Amount::new(10_000 + i).unwrap();
            a.nonce = Nonce::new(i).unwrap();
            a
        })
        .collect()
}

fn record(index: u32, balance: u64, nonce: u64) -> AccountRecord {
    AccountRecord {
        index: AccountIndex(index),
        balance: Amount::new(balance).unwrap(),
        nonce: Nonce::new(nonce).unwrap(),
        pubkey: None,
    }
}

fn open(payer: u32, s: Stream) -> StreamRecord {
    StreamRecord {
        payer: AccountIndex(payer),
        slot: s.id.slot,
        stream: Some(s),
    }
}

fn emptied(payer: u32, slot: u16) -> StreamRecord {
    StreamRecord {
        payer: AccountIndex(payer),
        slot: StreamSlot(slot),
        stream: None,
    }
}

fn passport(agent: u32, window_id: u64, spent: u64) -> PassportRecord {
    PassportRecord {
        agent: AccountIndex(agent),
        owner: AccountIndex(2),
        revoked: false,
        window_id,
        spent: Amount::new(spent).unwrap(),
        policy_digest: state::hash::hash_no_pad(&[F::from_canonical_u64(77)]),
        policy: None,
    }
}

fn lanes(account: u32, seqs: [u64; 7]) -> LanesRecord {
    LanesRecord {
        account: AccountIndex(account),
        lanes: LaneNonces::from_seqs(seqs).unwrap(),
    }
}

/// Six accounts; payer 1 has streams in slots 2 and 5 and used lane 1, payer 3 has a stream in
/// slot 0, account 4 is an agent of 2 (published by an earlier diff). Then the batch: payer 1
/// settles slot 2, empties slot 5, opens slot 9 (three records: two slots of two) and uses
/// lanes 1 and 3; account 2 received and uses lane 2 for the first time; payer 3 empties slot
/// 0 (its book is empty again: ext ZERO); agent 4 spends (its passport's `spent` moves);
/// account 6 is created and opens slot 1 to account 2.
fn transition() -> (AccountTree, StateDiff, Digest) {
    transition_with(true)
}

/// [`transition`], or without the agent's spend and the lanes (`agents` false): only accounts
/// and stream records, for the shape without agent parts.
fn transition_with(agents: bool) -> (AccountTree, StateDiff, Digest) {
    let mut before = AccountTree::from_accounts(&accounts(6));
    let setup = StateDiff::with_streams(
        6,
        vec![record(1, 7_000, 4), record(3, 8_000, 5), record(4, 600, 0)],
        vec![
            open(1, stream(1, 2, 2, 0, 1)),
            open(1, stream(1, 5, 4, 10, 2)),
            open(3, stream(3, 0, 1, 0, 3)),
        ],
    )
    .unwrap()
    .with_agents(
        vec![passport(4, 1, 5)],
        vec![lanes(1, [1, 0, 0, 0, 0, 0, 0])],
        vec![],
    )
    .unwrap();
    before.apply(&setup).unwrap();
    let mut created = record(6, 90, 1);
    created.pubkey = Some(key(60).public_key().into());
    let diff = StateDiff::with_streams(
        6,
        vec![
            record(1, 6_500, 6),
            record(2, 10_502, 2),
            record(3, 8_100, 5),
            record(4, 590, 0),
            created,
        ],
        vec![
            open(1, stream(1, 2, 2, 20, 11)),
            emptied(1, 5),
            open(1, stream(1, 9, 3, 0, 12)),
            emptied(3, 0),
            open(6, stream(6, 1, 2, 0, 13)),
        ],
    )
    .unwrap();
    let diff = if agents {
        diff.with_agents(
            vec![passport(4, 1, 15)],
            vec![
                lanes(1, [2, 0, 3, 0, 0, 0, 0]),
                lanes(2, [0, 1, 0, 0, 0, 0, 0]),
            ],
            vec![],
        )
        .unwrap()
    } else {
        diff
    };
    let mut after = before.clone();
    let new_root = after.apply(&diff).unwrap();
    (before, diff, new_root)
}

#[test]
fn a_grouped_diff_proves_the_rebuilt_root_and_the_hash_of_its_bytes() {
    let (before, diff, new_root) = transition();
    let chunks = grouped_chunks(&before, &diff, CAP, SUBS, GroupedParts::Agents, 1).unwrap();
    // Slots: 1 (lanes; slots 2 and 5), 1 continued (slot 9), 2 (lanes), 3 (slot 0), 4
    // (passport), 6 (slot 1): 3 chunks, padded to 4.
    assert_eq!(chunks.len(), 4);
    assert!(chunks[0].0.slots[0].lanes.is_some() && chunks[0].0.slots[1].lanes.is_none());
    assert!(chunks[2].0.slots[0].passport.is_some());
    assert!(
        chunks[0].0.slots[1].cont,
        "payer 1 continues in the second slot"
    );
    assert!(chunks[0].1.whole_batch() || chunks.len() > 1);
    assert_eq!(chunks[0].1.base.root_in, before.root());
    for pair in chunks.windows(2) {
        let (a, b) = (&pair[0].1, &pair[1].1);
        assert_eq!(
            (
                a.base.root_out,
                &a.base.stream_out,
                a.more_out,
                a.next_slot_out
            ),
            (b.base.root_in, &b.base.stream_in, b.more_in, b.next_slot_in),
            "chunks chain"
        );
    }
    let last = &chunks.last().unwrap().1;
    assert_eq!(last.base.root_out, new_root, "the root a replica rebuilds");
    assert_eq!(
        last.base.diff_hash(),
        <[u8; 32]>::from(Sha256::digest(diff.encode_grouped())),
        "SHA-256 of the version 4 bytes"
    );
    let whole = GroupedStatement {
        base: DiffStatement {
            root_out: last.base.root_out,
            stream_out: last.base.stream_out.clone(),
            records_out: last.base.records_out,
            lower_out: last.base.lower_out,
            new_out: last.base.new_out,
            started_out: last.base.started_out,
            ..chunks[0].1.base.clone()
        },
        more_out: last.more_out,
        next_slot_out: last.next_slot_out,
        policy: last
            .policy
            .map(|[_, o]| [chunks[0].1.policy.unwrap()[0], o]),
        ..chunks[0].1.clone()
    };
    assert!(whole.whole_batch(), "the chain states the whole batch");
    let proofs: Vec<_> = chunks
        .iter()
        .map(|(w, s)| circuit().prove(w, s).unwrap())
        .collect();
    // The chunks' proofs merge (`grouped_layout`, what the settlement's diff tree uses) pair by
    // pair, and the two merges chain into exactly the whole batch's statement (what the level
    // above computes: every merge level is the same `ChainMerge`, proven above level 1 by the
    // registry tests); out of order they do not merge.
    use crate::circuits::chain::{assert_not_mergeable, ChainMerge};
    let layout = super::grouped_layout(GroupedParts::Agents);
    let m1 = ChainMerge::build(&circuit().data, layout.clone());
    let left = m1.prove(&proofs[0], &proofs[1]).unwrap();
    let right = m1.prove(&proofs[2], &proofs[3]).unwrap();
    layout
        .check_adjacent(&left.public_inputs, &right.public_inputs)
        .unwrap();
    assert_eq!(
        GroupedStatement::from_fields(&layout.merged(
            &left.public_inputs,
            &right.public_inputs,
            &[]
        )),
        Some(whole)
    );
    m1.data.verify(right).unwrap();
    assert_not_mergeable(&m1, "swapped", &proofs[1], &proofs[0]);
}

/// The chunks chain as `parts`' layout links them, and the last ends at `new_root` with the
/// SHA-256 of `diff`'s version 4 bytes.
fn assert_chains_to(
    chunks: &[(GroupedWitness, GroupedStatement)],
    parts: GroupedParts,
    diff: &StateDiff,
    new_root: Digest,
) {
    let layout = grouped_layout(parts);
    for pair in chunks.windows(2) {
        layout
            .check_adjacent(&pair[0].1.to_fields(), &pair[1].1.to_fields())
            .unwrap();
    }
    let last = &chunks.last().expect("a chunk").1;
    assert_eq!(last.base.root_out, new_root, "the root a replica rebuilds");
    assert_eq!(
        last.base.diff_hash(),
        <[u8; 32]>::from(Sha256::digest(diff.encode_grouped())),
        "SHA-256 of the version 4 bytes"
    );
}

/// Proving `w` fails whatever the statement: an error, or a panic in witness generation.
fn refused(name: &str, w: &GroupedWitness) {
    refused_in(circuit(), name, w)
}

/// [`refused`] in circuit `c`.
fn refused_in(c: &GroupedDiffCircuit, name: &str, w: &GroupedWitness) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.data.prove(c.partial_witness(w)?)
    }));
    match r {
        Ok(Ok(_)) => panic!("{name}: a proof exists"),
        Ok(Err(e)) => println!("{name}: refused: {e:#}"),
        Err(_) => println!("{name}: refused (witness generation)"),
    }
}

/// Recomputes the book paths and old leaves of `slot`'s records for their order as they stand,
/// from the book `book` before them, so that an edited witness breaks only the rule under test.
fn replay(book: &mut PayerStreams, slot: &mut GroupSlot, streams: &[(u16, Option<Stream>)]) {
    slot.streams_root = book.root();
    for sub in slot.subs.iter_mut().filter(|s| s.used) {
        sub.old_leaf = book
            .get(StreamSlot(sub.slot))
            .map_or(Digest::ZERO, |s| s.leaf_hash());
        sub.path = book.path(StreamSlot(sub.slot)).to_vec();
        let (_, content) = streams
            .iter()
            .find(|(n, _)| *n == sub.slot)
            .expect("a record of the diff");
        match content {
            Some(s) => book.put(*s),
            None => {
                book.remove(StreamSlot(sub.slot));
            }
        }
        sub.fields = content.map_or([0; 10], |s| {
            s.to_field_elements().map(|e| e.to_canonical_u64())
        });
        sub.open = content.is_some();
    }
}

#[test]
fn dishonest_witnesses_have_no_proof() {
    let (before, diff, _) = transition();
    let chunks = grouped_chunks(&before, &diff, CAP, SUBS, GroupedParts::Agents, 1).unwrap();
    let honest = chunks[0].0.clone();
    circuit()
        .data
        .prove(circuit().partial_witness(&honest).unwrap())
        .expect("the control proves");

    // The last record of the first slot says no other follows, yet the next slot continues.
    let mut w = honest.clone();
    w.slots[0].subs[1].more = false;
    refused("more cleared before a continuation", &w);

    // A record that says the slot was empty before (it held a stream): not under the book.
    let mut w = honest.clone();
    w.slots[0].subs[0].old_leaf = Digest::ZERO;
    refused("old stream leaf misstated", &w);

    // Records of a group out of slot order (5 before 2), the books replayed for that order.
    let mut w = honest.clone();
    w.slots[0].subs.swap(0, 1);
    w.slots[0].subs[0].more = true;
    w.slots[0].subs[1].more = true;
    let mut book = before.streams_of(1).cloned().unwrap_or_default();
    let contents: Vec<(u16, Option<Stream>)> = diff
        .streams()
        .iter()
        .filter(|r| r.payer.0 == 1)
        .map(|r| (r.slot.0, r.stream))
        .collect();
    replay(&mut book, &mut w.slots[0], &contents);
    refused("stream records out of slot order", &w);

    // The parts byte denies streams while the records are there.
    let mut w = honest.clone();
    w.slots[0].has_streams = false;
    refused("parts byte without the streams bit", &w);

    // A continuation that changes the balance (its record bytes are not published).
    let mut w = honest.clone();
    w.slots[1].balance += 1;
    refused("balance changed in a continuation", &w);

    // A continuation of another account.
    let mut w = honest.clone();
    w.slots[1].index = 2;
    refused("continuation of another account", &w);

    // Old profile parts other than the account's (its lanes digest dropped): the old leaf's
    // ext is not under the root.
    let mut w = honest.clone();
    w.slots[0].parts[2] = Digest::ZERO;
    refused("old lanes part misstated", &w);

    // A lane's sequence number of 2^60 (no decoder accepts it).
    let mut w = honest.clone();
    w.slots[0].lanes = Some([1 << 60, 0, 3, 0, 0, 0, 0]);
    refused("lane sequence of 2^60", &w);

    // A passport whose spent is 2^63 (no decoder accepts it).
    let agent_chunk = chunks[2].0.clone();
    let mut w = agent_chunk.clone();
    if let Some(p) = w.slots[0].passport.as_mut() {
        p.spent = 1 << 63;
    }
    refused("passport spent of 2^63", &w);

    // A new account that starts with a non-empty book: its old leaf is empty, so only the
    // rule that a new account's book starts empty refuses it.
    let new_chunk = chunks
        .iter()
        .find(|(w, _)| w.slots.iter().any(|s| s.used && s.is_new))
        .expect("the chunk of account 6");
    let mut w = new_chunk.0.clone();
    let at = w.slots.iter().position(|s| s.is_new).unwrap();
    let mut book = before.streams_of(1).cloned().unwrap();
    let contents = vec![(1u16, diff.streams().last().unwrap().stream)];
    replay(&mut book, &mut w.slots[at], &contents);
    refused("a new account with streams before it existed", &w);
}

/// The shape without agent parts proves a batch of accounts and stream records, and refuses a
/// witness that carries a passport or lanes record (it has nowhere to put them).
/// The planner proves each diff with the shape that can: stream records only without agent
/// parts, a passport or lanes record with them (a version 1 diff: `payment::settlement`).
#[test]
fn the_planner_picks_the_shape_that_proves_the_diff() {
    use crate::planner::chunks::diff_kind;
    use rollup_storage::DiffCircuitKind;
    assert_eq!(diff_kind(&transition_with(false).1), DiffCircuitKind::V4);
    assert_eq!(diff_kind(&transition().1), DiffCircuitKind::V4Agents);
}

#[test]
fn the_shape_without_agent_parts_proves_streams_and_refuses_agent_records() {
    let plain = GroupedDiffCircuit::build(CAP, SUBS, GroupedParts::Streams);
    let (before, diff, new_root) = transition_with(false);
    let chunks = grouped_chunks(&before, &diff, CAP, SUBS, GroupedParts::Streams, 1).unwrap();
    assert_eq!(chunks.last().unwrap().1.base.root_out, new_root);
    for (w, s) in &chunks {
        plain.verify(plain.prove(w, s).unwrap()).unwrap();
    }
    let (before, diff, _) = transition();
    let chunks = grouped_chunks(&before, &diff, CAP, SUBS, GroupedParts::Agents, 1).unwrap();
    let err = plain.prove(&chunks[0].0, &chunks[0].1).unwrap_err();
    assert!(err.to_string().contains("no agent parts"), "{err:#}");
}

#[test]
fn rows_per_slot() {
    for parts in [
        GroupedParts::Streams,
        GroupedParts::Agents,
        GroupedParts::Shares,
    ] {
        // rows = start + header + cap (account + subs x sub): the header (a policy body's, in
        // a chunk's first slot) once per chunk.
        let rows = |cap: usize, subs: usize| {
            let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
            let (_, [start, end]) = GroupedDiffCircuit::define(&mut b, cap, subs, parts);
            (start, (end - start) as isize, b.num_gates())
        };
        let (start, slots_4_1, _) = rows(4, 1);
        let (_, slots_4_2, total) = rows(4, 2);
        let (_, slots_8_1, _) = rows(8, 1);
        let per_record = (slots_4_2 - slots_4_1) / 4;
        let account = (slots_8_1 - slots_4_1) / 4 - per_record;
        let header = slots_4_1 - 4 * (account + per_record);
        println!(
            "grouped diff circuit ({parts:?}): {account} rows per account part, {per_record} \
             per sub-slot, {header} for a policy body's header (once per chunk), {start} \
             before the slots; 4 slots of 2: {total} rows (degree 2^{})",
            total.next_power_of_two().trailing_zeros()
        );
        assert!(per_record > 0 && account > 0);
        // Up to the packing of arithmetic operations into rows, no header without agent parts.
        assert_eq!(header > 500, parts.policy_bodies(), "{header}");
    }
}

mod policy;
mod shares;
