//! The shape with shares runs (SPEC 19.6 "Diff") on a real version 4 diff whose shares records
//! run over several sub-slots, slots and chunks, beside stream records that follow them in the
//! same slot, in the next slot and in the next chunk; and on witnesses edited by hand past
//! every native check, each of which must have no proof at all.

use std::sync::OnceLock;

use state::account::AccountIndex;
use state::diff::{AccountTree, SharesRecord, StateDiff};
use state::hash::Digest;
use state::split::{shares_digest, Shares};

use super::{accounts, assert_chains_to, emptied, lanes, open, record, refused_in, stream};
use crate::circuits::diff_grouped::*;

const CAP: usize = 2;
const SUBS: usize = 2;

/// The full shape (shares runs and policy bodies), built once for this module and `policy`.
pub(super) fn circuit() -> &'static GroupedDiffCircuit {
    static C: OnceLock<GroupedDiffCircuit> = OnceLock::new();
    C.get_or_init(|| GroupedDiffCircuit::build(CAP, SUBS, GroupedParts::Shares))
}

/// `owner`'s shares to the `n` accounts from `first` on, in basis points that add up to
/// 10,000 (the last takes the remainder).
fn shares_of(owner: u32, first: u32, n: u32) -> SharesRecord {
    let each = 10_000 / n as u16;
    let last = 10_000 - each * (n as u16 - 1);
    let parts = (0..n)
        .map(|k| {
            let bps = if k + 1 == n { last } else { each };
            (AccountIndex(first + k), bps)
        })
        .collect();
    SharesRecord(Shares::new(AccountIndex(owner), parts).expect("valid shares"))
}

/// Forty accounts; payer 1 has streams in slots 2 and 5, payer 3 in slot 0. The batch: account 1
/// registers 30 shares (31 items: runs of 11, 11 and 9) and settles slot 2, empties slot 5 and
/// opens slot 9; account 2 registers 30 shares and has no stream record; account 3 registers 21
/// shares (22 items: two full runs, the whole first slot) and empties slot 0; account 4 uses a
/// lane. In slots of two sub-slots and chunks of two slots:
///
/// | chunk | slots |
/// |---|---|
/// | 0 | 1: run, run; 1 continued: run, slot 2 |
/// | 1 | 1 continued: slots 5 and 9; 2: run, run |
/// | 2 | 2 continued: run; 3: run, run |
/// | 3 | 3 continued: slot 0; 4: lanes |
///
/// so a record is pending across a chunk boundary with no stream record to come (1 to 2), a
/// group's stream records go on in the next chunk (0 to 1), and a group's first stream record
/// comes in a continuation after another group's higher slot (3).
fn transition() -> (AccountTree, StateDiff, Digest) {
    let mut before = AccountTree::from_accounts(&accounts(40));
    let setup = StateDiff::with_streams(
        40,
        vec![record(1, 7_000, 4), record(3, 8_000, 5)],
        vec![
            open(1, stream(1, 2, 2, 0, 1)),
            open(1, stream(1, 5, 4, 10, 2)),
            open(3, stream(3, 0, 1, 0, 3)),
        ],
    )
    .unwrap();
    before.apply(&setup).unwrap();
    let diff = StateDiff::with_streams(
        40,
        vec![
            record(1, 6_500, 6),
            record(2, 10_502, 3),
            record(3, 8_100, 6),
            record(4, 10_004, 5),
        ],
        vec![
            open(1, stream(1, 2, 2, 20, 11)),
            emptied(1, 5),
            open(1, stream(1, 9, 3, 0, 12)),
            emptied(3, 0),
        ],
    )
    .unwrap()
    .with_agents(
        vec![],
        vec![lanes(4, [0, 2, 0, 0, 0, 0, 0])],
        vec![
            shares_of(1, 10, 30),
            shares_of(2, 10, 30),
            shares_of(3, 10, 21),
        ],
    )
    .unwrap();
    let mut after = before.clone();
    let new_root = after.apply(&diff).unwrap();
    (before, diff, new_root)
}

#[test]
fn shares_records_prove_across_sub_slots_slots_and_chunks() {
    use crate::planner::chunks::diff_kind;
    use rollup_storage::DiffCircuitKind;

    let (before, diff, new_root) = transition();
    assert_eq!(diff_kind(&diff), DiffCircuitKind::V4Shares);
    let chunks = grouped_chunks(&before, &diff, CAP, SUBS, GroupedParts::Shares, 1).unwrap();
    assert_eq!(chunks.len(), 4);
    let items = |c: usize, s: usize| -> Vec<usize> {
        chunks[c].0.slots[s]
            .subs
            .iter()
            .map(|u| if u.used { 0 } else { u.run.len() })
            .collect()
    };
    // The layout of the table in `transition` (0: a stream record).
    assert_eq!(items(0, 0), [11, 11]);
    assert_eq!(items(0, 1), [9, 0]);
    assert_eq!(items(1, 1), [11, 11]);
    assert_eq!(items(2, 0), [9, 0]);
    assert_eq!(items(2, 1), [11, 11]);
    assert!(chunks[3].0.slots[0].cont && chunks[3].0.slots[0].subs[0].used);
    assert_eq!(
        chunks[0].0.slots[0].subs[0].run[0],
        (1, 30),
        "the header comes first"
    );
    // What crosses each boundary.
    let carry = |c: usize| chunks[c].1.shares.unwrap()[1];
    // `next_slot`: above 0 once a group's stream record was read, 0 at a group's start.
    assert_eq!(carry(0).left, 0);
    assert!(chunks[0].1.more_out && chunks[0].1.next_slot_out > 0);
    assert_eq!(
        (carry(1).left, carry(1).n, chunks[1].1.next_slot_out),
        (9, 30, 0)
    );
    assert_eq!(
        carry(1).digest,
        shares_digest(shares_of(2, 10, 30).0.parts())
    );
    assert_eq!((carry(2).left, chunks[2].1.next_slot_out), (0, 0));
    assert!(chunks[2].1.more_out, "the group's stream records come next");

    assert_chains_to(&chunks, GroupedParts::Shares, &diff, new_root);
    let layout = grouped_layout(GroupedParts::Shares);
    let whole = chunks[1..]
        .iter()
        .fold(chunks[0].1.to_fields(), |acc, (_, s)| {
            layout.merged(&acc, &s.to_fields(), &[])
        });
    let whole = GroupedStatement::from_fields(&whole).unwrap();
    assert!(whole.whole_batch(), "the chain states the whole batch");
    // Unfinished at the end: not a whole batch (the settlement circuit asserts the same).
    let mut open_end = whole.clone();
    if let Some([_, out]) = open_end.shares.as_mut() {
        out.left = 1;
    }
    assert!(!open_end.whole_batch());

    for (w, s) in &chunks {
        circuit().verify(circuit().prove(w, s).unwrap()).unwrap();
    }
}

#[test]
fn dishonest_shares_witnesses_have_no_proof() {
    let (before, diff, _) = transition();
    let chunks = grouped_chunks(&before, &diff, CAP, SUBS, GroupedParts::Shares, 1).unwrap();

    // An entry other than the one the digest commits (a payee moved): the run that reads the
    // last item finds another chain than the declared digest.
    let mut w = chunks[0].0.clone();
    w.slots[0].subs[1].run[4].0 += 1;
    refused_in(circuit(), "an entry the digest does not commit", &w);

    // A declared digest other than the entries' (account 3 declares and finishes in one slot).
    let mut w = chunks[2].0.clone();
    if let Some(d) = w.slots[1].shares.as_mut() {
        d.digest = shares_digest(shares_of(3, 11, 21).0.parts());
    }
    refused_in(circuit(), "a declared digest other than the entries'", &w);

    // The record in progress carried into a chunk with another digest.
    let mut w = chunks[2].0.clone();
    w.shares_in.digest = Digest::ZERO;
    refused_in(circuit(), "a carried digest changed", &w);

    // A header that is not the group's (index, n).
    let mut w = chunks[0].0.clone();
    w.slots[0].subs[0].run[0] = (1, 31);
    refused_in(circuit(), "a header with another n", &w);
    let mut w = chunks[0].0.clone();
    w.slots[0].subs[0].run[0] = (2, 30);
    refused_in(circuit(), "a header of another account", &w);

    // Account 2's record dropped after its first slot: the chunk after it goes on with
    // account 3's groups (whose paths are against the same root: account 2's continuation
    // does not change its leaf) though 9 items are left. The control carries the record as it
    // stands after the continuation, and proves.
    let skipping = |shares_in: SharesCarry| GroupedWitness {
        slots: vec![chunks[2].0.slots[1].clone(), chunks[3].0.slots[0].clone()],
        shares_in,
        ..chunks[2].0.clone()
    };
    let finished = chunks[2].0.slots[0].subs[0].run.len() as u16;
    assert_eq!(chunks[2].0.shares_in.left, finished);
    let mut done = chunks[1].1.shares.unwrap()[1];
    done.left = 0;
    done.chain = state::split::shares_chain(shares_of(2, 10, 30).0.parts());
    let control = skipping(done);
    circuit()
        .data
        .prove(circuit().partial_witness(&control).unwrap())
        .expect("the control (the record finished) proves");
    refused_in(
        circuit(),
        "items left, and the next group",
        &skipping(chunks[2].0.shares_in),
    );

    // A record of no entry added to account 4's group (its digest is `H(TAG_SHARES, 0,
    // ZERO)`, which its header-only run would check): refused by `n >= 1` alone, since the
    // same edit with one entry proves.
    let at = 1;
    let declare = |w: &mut GroupedWitness, parts: &[(AccountIndex, u16)]| {
        let n = parts.len() as u16;
        let slot = &mut w.slots[at];
        slot.shares = Some(SharesPart {
            n,
            digest: shares_digest(parts),
        });
        slot.subs[0].run = std::iter::once((4, n))
            .chain(parts.iter().map(|&(to, bps)| (to.0, bps)))
            .collect();
    };
    let mut control = chunks[3].0.clone();
    assert_eq!(control.slots[at].index, 4);
    declare(&mut control, &[(AccountIndex(10), 10_000)]);
    circuit()
        .data
        .prove(circuit().partial_witness(&control).unwrap())
        .expect("the control (one entry) proves");
    let mut w = chunks[3].0.clone();
    declare(&mut w, &[]);
    refused_in(circuit(), "a shares record of no entry", &w);
}

/// A shape without shares runs has no room for them: the builder refuses the diff.
#[test]
fn shapes_without_shares_runs_refuse_a_shares_record() {
    let (before, diff, _) = transition();
    for parts in [GroupedParts::Streams, GroupedParts::Agents] {
        let err = grouped_chunks(&before, &diff, CAP, SUBS, parts, 1).unwrap_err();
        assert!(err.to_string().contains("no shares runs"), "{err:#}");
    }
}
