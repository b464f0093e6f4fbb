use std::sync::OnceLock;

use plonky2::field::types::Field;
use state::account::{AccountIndex, Nonce};
use state::hash::{hash_no_pad, Digest};
use state::stream::chain::walk;
use state::stream::{StreamId, StreamSlot};

use super::*;
use crate::circuits::chain::ChainMerge;

/// Lanes per chunk in these tests: small, so walks cross chunk boundaries.
const LANES: usize = 3;
/// Every stream here has this many ticks.
const N: u32 = 1_000;

fn circuit() -> &'static TickWalkCircuit {
    static C: OnceLock<TickWalkCircuit> = OnceLock::new();
    C.get_or_init(|| TickWalkCircuit::build(LANES))
}

fn id(payer: u32, slot: u16) -> StreamId {
    StreamId {
        payer: AccountIndex(payer),
        slot: StreamSlot(slot),
        opened_at: Nonce::new(payer as u64 + 5).expect("u63"),
    }
}

fn seed(id: &StreamId) -> Digest {
    let [a, b] = id.to_field_elements();
    hash_no_pad(&[a, b, F::from_canonical_u32(0x5eed)])
}

/// `t_k` of `id`'s chain.
fn value(id: &StreamId, k: u32) -> Digest {
    walk(id, N, seed(id), k)
}

fn record(id: StreamId, from: u32, to: u32) -> WalkRecord {
    WalkRecord {
        id,
        to,
        from,
        t_to: value(&id, to),
        head: value(&id, from),
    }
}

/// 70 ticks (3 lanes), 1, 32 (one full lane) and 33 (two lanes): with 3 lanes per chunk the
/// last walk crosses from chunk 1 into chunk 2, whose third lane idles.
fn records() -> Vec<WalkRecord> {
    vec![
        record(id(1, 0), 100, 170),
        record(id(2, 7), 0, 1),
        record(id(3, 1), 968, 1000),
        record(id(1, 1), 17, 50),
    ]
}

fn try_prove(w: &WalkChunkWitness) -> Result<ProofWithPublicInputs<F, C, D>, String> {
    let c = circuit();
    crate::circuits::refusal::prove_and_verify(&c.data, || c.prove(w))
}

fn accumulate(records: &[WalkRecord]) -> Digest {
    records.iter().fold(Digest::ZERO, absorb)
}

#[test]
fn planning_cuts_walks_into_lanes_and_carries_across_chunks() {
    let rs = records();
    let chunks = plan_walks(&rs, LANES, 1).unwrap();
    assert_eq!(chunks.len(), 3);
    let lanes: Vec<Lane> = chunks.iter().flat_map(|c| c.lanes.clone()).collect();
    let starts: Vec<usize> = (0..lanes.len())
        .filter(|&i| lanes[i].start.is_some())
        .collect();
    let ends: Vec<(usize, u32)> = (0..lanes.len())
        .filter_map(|i| lanes[i].end.map(|e| (i, e.steps)))
        .collect();
    assert_eq!(starts, vec![0, 3, 4, 5]);
    assert_eq!(ends, vec![(2, 6), (3, 1), (4, 32), (6, 1)]);
    assert_eq!(lanes[7], Lane::default());
    // Chunk boundaries: nothing open after chunk 0, the last walk open after chunk 1.
    assert_eq!(chunks[0].statement.carry_out, None);
    let open = chunks[1]
        .statement
        .carry_out
        .expect("the 33-tick walk is open");
    assert_eq!((open.k, open.x), (18, value(&id(1, 1), 18)));
    assert_eq!(chunks[2].statement.carry_in, Some(open));
    assert_eq!(chunks[2].statement.carry_out, None);
    for pair in chunks.windows(2) {
        assert_eq!(pair[0].statement.acc_out, pair[1].statement.acc_in);
        assert_eq!(pair[0].statement.carry_out, pair[1].statement.carry_in);
    }
    assert_eq!(chunks[0].statement.acc_in, Digest::ZERO);
    assert_eq!(chunks[2].statement.acc_out, accumulate(&rs));
    // Padding up to a minimum number of chunks.
    assert_eq!(plan_walks(&rs, LANES, 5).unwrap().len(), 5);
    assert_eq!(plan_walks(&[], LANES, 1).unwrap().len(), 1);
}

#[test]
fn planning_refuses_walks_that_do_not_hold() {
    let mut bad = records();
    bad[2].head = value(&id(3, 1), 967);
    assert_eq!(
        plan_walks(&bad, LANES, 1),
        Err(WalkPlanError::Mismatch { index: 2 })
    );
    let mut other_stream = records();
    other_stream[1].t_to = value(&id(9, 7), 1);
    assert_eq!(
        plan_walks(&other_stream, LANES, 1),
        Err(WalkPlanError::Mismatch { index: 1 })
    );
    let empty = [record(id(1, 0), 5, 5)];
    assert_eq!(
        plan_walks(&empty, LANES, 1),
        Err(WalkPlanError::Empty {
            index: 0,
            to: 5,
            from: 5
        })
    );
}

#[test]
fn honest_walks_prove_and_merge_with_their_statements() {
    let rs = records();
    let chunks = plan_walks(&rs, LANES, 1).unwrap();
    let proofs: Vec<_> = chunks
        .iter()
        .map(|w| {
            let p = try_prove(w).expect("an honest chunk proves");
            assert_eq!(p.public_inputs, w.statement.public_inputs());
            p
        })
        .collect();
    // The merge links the accumulator and the open walk across the boundary.
    let merge = ChainMerge::build(&circuit().data, walk_layout());
    let merged = merge.prove(&proofs[1], &proofs[2]).expect("adjacent");
    merge.data.verify(merged.clone()).expect("verifies");
    let pi = &merged.public_inputs;
    assert_eq!(pi[0..4], chunks[1].statement.acc_in.elements());
    assert_eq!(pi[17..21], accumulate(&rs).elements());
    assert!(pi[21..].iter().all(|e| *e == F::ZERO), "closed at the end");
    // Not adjacent: chunk 0 then chunk 2 (the carry and the accumulator differ).
    crate::circuits::chain::assert_not_mergeable(&merge, "skipped chunk", &proofs[0], &proofs[2]);
}

/// The honest chunks of [`records`], for an attacker to edit.
fn honest() -> Vec<WalkChunkWitness> {
    plan_walks(&records(), LANES, 1).unwrap()
}

/// Asserts the witness does not prove, and that the circuit refused it by `rule` (at `lane`,
/// `None` for the statement).
fn assert_refused(name: &str, w: &WalkChunkWitness, lane: Option<usize>, rule: WalkRule) {
    let err = try_prove(w)
        .err()
        .unwrap_or_else(|| panic!("attack {name} produced a valid proof"));
    let refusal = circuit().refused_by(&err);
    println!("attack {name}: refused by {refusal:?}: {err}");
    assert_eq!(refusal, Some(Refusal { lane, rule }), "{name}: {err}");
}

/// Rewrites chunk 1 of the honest plan so that its second walk (stream (2, 7), lane 3, one
/// lane) is replaced by `forged`, with the statement a forger would need: the accumulator over
/// the forged record. Only the rule under test is broken.
fn forge_walk(edit: impl FnOnce(&mut WalkRecord, &mut Lane)) -> WalkChunkWitness {
    let mut chunks = honest();
    let w = &mut chunks[1];
    let mut r = records()[1];
    let mut lane = w.lanes[0];
    edit(&mut r, &mut lane);
    w.lanes[0] = lane;
    let mut forged = records();
    forged[1] = r;
    w.statement.acc_out = match w.statement.carry_out {
        // The chunk ends inside the fourth walk: its accumulator covers the first three.
        Some(_) => accumulate(&forged[..3]),
        None => accumulate(&forged),
    };
    w.clone()
}

#[test]
fn attack_a_head_off_the_chain_is_refused() {
    // The payee claims its tick settles down to a head the chain does not reach.
    assert_refused(
        "head off the chain",
        &forge_walk(|r, lane| {
            r.head = value(&r.id, 3);
            lane.end.as_mut().expect("ends").head = r.head;
        }),
        Some(0),
        WalkRule::HeadOffChain,
    );
}

#[test]
fn attack_a_tick_of_another_stream_is_refused() {
    // A tick value of stream (9, 7) presented as one of stream (2, 7).
    assert_refused(
        "another stream's tick",
        &forge_walk(|r, lane| {
            r.t_to = value(&id(9, 7), 1);
            lane.start.as_mut().expect("starts").t_to = r.t_to;
        }),
        Some(0),
        WalkRule::HeadOffChain,
    );
}

#[test]
fn attack_a_walk_shorter_than_its_record_is_refused() {
    // 40 ticks settled (from 10 to 50) with the head of 49 after one step: the position
    // check refuses it (the head is honest for one step, the record claims 40).
    let mut chunks = honest();
    let w = &mut chunks[1];
    let mut forged = records();
    forged[1] = WalkRecord {
        id: id(2, 7),
        to: 50,
        from: 10,
        t_to: value(&id(2, 7), 50),
        head: value(&id(2, 7), 49),
    };
    w.lanes[0] = Lane {
        start: Some(LaneStart {
            id: id(2, 7),
            to: 50,
            t_to: forged[1].t_to,
        }),
        end: Some(LaneEnd {
            steps: 1,
            from: 10,
            head: forged[1].head,
        }),
    };
    w.statement.acc_out = accumulate(&forged[..3]);
    assert_refused(
        "walk shorter than its record",
        w,
        Some(0),
        WalkRule::EndPosition,
    );
}

#[test]
fn attack_a_record_from_an_idle_lane_is_refused() {
    // One 30-tick walk (130 down to 100) in lane 0; its lane hashes on to t_98. The idle lane
    // 1 "ends" a walk after one more step: the record (130 -> 97) even holds on the chain, but
    // nobody started it there, and every other rule is satisfied.
    let walked = record(id(1, 0), 100, 130);
    let mut w = plan_walks(&[walked], LANES, 1).unwrap().remove(0);
    let fake = record(id(1, 0), 97, 130);
    w.lanes[1].end = Some(LaneEnd {
        steps: 1,
        from: fake.from,
        head: fake.head,
    });
    w.statement.acc_out = accumulate(&[walked, fake]);
    assert_refused(
        "record from an idle lane",
        &w,
        Some(1),
        WalkRule::EndWithoutWalk,
    );
}

#[test]
fn attack_starting_a_walk_over_an_open_one_is_refused() {
    // Chunk 0 walks stream (1, 0) through three lanes; restarting in lane 1 with a one-lane
    // walk that ends there would drop the first walk's remaining ticks.
    let mut chunks = honest();
    let w = &mut chunks[0];
    let other = record(id(5, 0), 10, 20);
    w.lanes[1] = Lane {
        start: Some(LaneStart {
            id: other.id,
            to: other.to,
            t_to: other.t_to,
        }),
        end: Some(LaneEnd {
            steps: 10,
            from: other.from,
            head: other.head,
        }),
    };
    w.lanes[2] = Lane::default();
    w.statement.acc_out = accumulate(&[other]);
    assert_refused(
        "start over an open walk",
        w,
        Some(1),
        WalkRule::StartWhileOpen,
    );
}

#[test]
fn attack_dropping_an_open_walk_at_a_chunk_boundary_is_refused() {
    // Chunk 1 ends inside the 33-tick walk; claiming nothing is open would let the next chunk
    // skip its last tick.
    let mut chunks = honest();
    let w = &mut chunks[1];
    w.statement.carry_out = None;
    assert_refused("dropped carry", w, None, WalkRule::Carry);
}

#[test]
fn attack_a_statement_without_one_of_the_records_is_refused() {
    let mut chunks = honest();
    let w = &mut chunks[1];
    let rs = records();
    w.statement.acc_out = accumulate(&[rs[0], rs[2]]);
    assert_refused(
        "record left out of the accumulator",
        w,
        None,
        WalkRule::Accumulator,
    );
}

#[test]
fn rows_per_tick() {
    let one = TickWalkCircuit::build(1);
    let nine = TickWalkCircuit::build(9);
    let per_lane = (nine.gates - one.gates) as f64 / 8.0;
    let per_tick = per_lane / LANE_STEPS as f64;
    println!(
        "tick walk: {per_lane} rows per lane of {LANE_STEPS} ticks = {per_tick:.3} rows per tick; \
         one lane alone {} rows",
        one.gates
    );
    // Deterministic counts: a regression guard, not a speed claim.
    assert!(per_tick < 1.3, "{per_tick} rows per tick");
}
