//! The payout circuit on real payout lists (honest proofs whose public inputs are the native
//! `PayoutTree` root and the withdrawals-commitment-style chain) and on witnesses edited by hand
//! the way a dishonest prover would build them: each has no proof, or proves other public
//! inputs than the honest statement.

use std::sync::OnceLock;

use state::account::{AccountIndex, Amount};
use state::pubdata::{withdrawals_commitment, WithdrawalRecord};
use state::settlement::{payout_leaf, PayoutTree, REFUND_FROM_BASE};

use super::*;

const DEPTH: usize = 3;
const BATCH: u64 = 0x0102_0304_0506;

fn circuit() -> &'static PayoutCircuit {
    static C: OnceLock<PayoutCircuit> = OnceLock::new();
    C.get_or_init(|| PayoutCircuit::build(DEPTH))
}

/// The first merge level over [`circuit`] (built once for the tests that merge).
fn merge() -> &'static crate::circuits::chain::ChainMerge {
    use crate::circuits::chain::ChainMerge;
    static M: OnceLock<ChainMerge> = OnceLock::new();
    M.get_or_init(|| ChainMerge::build_with(&circuit().data, payout_layout(), &derive_merge))
}

fn address(seed: u8) -> L1Address {
    L1Address(core::array::from_fn(|k| {
        seed.wrapping_mul(31)
            .wrapping_add((k as u8).wrapping_mul(17))
    }))
}

/// `n` withdrawals from accounts 3, 4, ... (large values where the limbs matter).
fn withdrawals(n: usize) -> Vec<WithdrawalRecord> {
    (0..n)
        .map(|i| WithdrawalRecord {
            from: AccountIndex(if i == 1 { u32::MAX } else { 3 + i as u32 }),
            to_l1: address(i as u8 + 1),
            amount: Amount::new(if i == 2 { MAX_U63 } else { 1_000 + i as u64 }).unwrap(),
        })
        .collect()
}

fn as_payouts(ws: &[WithdrawalRecord]) -> Vec<Payout> {
    ws.iter()
        .map(|w| Payout {
            from: u64::from(w.from.0),
            to: w.to_l1,
            amount: w.amount.get(),
        })
        .collect()
}

/// `n - refunds` withdrawals, then `refunds` refunds (deposits 7, 8, ...), as a batch pays out.
fn payouts(n: usize, refunds: usize) -> Vec<Payout> {
    let mut ps = as_payouts(&withdrawals(n - refunds));
    ps.extend((0..refunds).map(|j| Payout {
        from: REFUND_FROM_BASE + 7 + j as u64,
        to: address(100 + j as u8),
        amount: 50 + j as u64,
    }));
    ps
}

#[test]
fn honest_lists_prove_the_native_root_and_chain() {
    // No payout, one, a partial tree with refunds, a full one with refunds (each proof is a
    // few seconds: the edges and one of each shape, not every count).
    let cases = [(0, 0), (1, 0), (3, 1), (5, 2), (8, 3)];
    for (n, refunds) in cases {
        let ps = payouts(n, refunds);
        let (w, s) = payout_witness(BATCH, &ps, DEPTH).unwrap();
        assert_eq!(s.root, PayoutTree::new(BATCH, &ps).root());
        assert_eq!(s.n, n as u64);
        // The withdrawals commitment of the leaf circuits (SPEC 10.3), and the refunds'
        // records chained alike from ZERO (the priority circuit's refunds_commitment).
        assert_eq!(
            s.withdrawals,
            withdrawals_commitment(&withdrawals(n - refunds))
        );
        let refunds_chained = ps[n - refunds..].iter().fold(Digest::ZERO, |w, p| {
            hash_no_pad(&[&w.elements()[..], &payout_record(p)[..]].concat())
        });
        assert_eq!(s.refunds, refunds_chained);
        if n == 0 {
            assert_eq!(s.root, [0; 32]);
            assert_eq!(s.withdrawals, Digest::ZERO);
            assert_eq!(s.refunds, Digest::ZERO);
        }
        if n == 1 {
            assert_eq!(s.root, payout_leaf(BATCH, 0, &ps[0]));
        }
        let proof = circuit().prove(&w, &s).unwrap();
        assert_eq!(proof.public_inputs, s.to_fields());
        circuit().verify(proof).unwrap();
        println!(
            "{n} payouts ({refunds} refunds): proven, root {}",
            hex::encode(s.root)
        );
    }
}

#[test]
fn the_native_witness_refuses_what_the_circuit_cannot_state() {
    assert!(payout_witness(BATCH, &payouts(8, 0), DEPTH).is_ok());
    let mut nine = payouts(8, 0);
    nine.push(nine[0]);
    assert!(payout_witness(BATCH, &nine, DEPTH).is_err());
    let mut ps = payouts(2, 0);
    ps[1].from = FROM_BOUND;
    assert!(payout_witness(BATCH, &ps, DEPTH).is_err());
    let mut ps = payouts(2, 0);
    ps[1].amount = MAX_U63 + 1;
    assert!(payout_witness(BATCH, &ps, DEPTH).is_err());
    assert!(payout_witness(MAX_U63 + 1, &[], DEPTH).is_err());
}

/// What proving `w` gives: `None` if there is no proof (an error, or a panic in witness
/// generation: plonky2's decomposition generators assert that a value fits, which is the range
/// check refusing it), else the public inputs the proof states.
fn attempt(w: &PayoutWitness) -> Option<Vec<F>> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| circuit().prove_any(w)));
    match r {
        Ok(Ok(proof)) => {
            circuit().verify(proof.clone()).unwrap();
            Some(proof.public_inputs)
        }
        Ok(Err(_)) | Err(_) => None,
    }
}

/// Which parts of the statement `got` differs from `honest` in.
fn differing(got: &[F], honest: &PayoutStatement) -> Vec<&'static str> {
    let want = honest.to_fields();
    // Every other public input is the chunk's start, which these witnesses keep; "root" covers
    // the chunk's node too (both change with any leaf).
    [
        ("batch", 0..1),
        ("withdrawals", 7..11),
        ("refunds", 15..19),
        ("n", 20..21),
        ("root", 25..41),
    ]
    .into_iter()
    .filter(|(_, r)| got[r.clone()] != want[r.clone()])
    .map(|(name, _)| name)
    .collect()
}

/// `w` has a proof, of a statement other than `honest` exactly in the parts `expect` (a
/// non-empty difference: `PayoutCircuit::prove(w, honest)` compares exactly these public
/// inputs, so it would refuse `w`; proving a second time to watch it do so would only double
/// the test's cost).
fn proves_other(name: &str, w: &PayoutWitness, honest: &PayoutStatement, expect: &[&str]) {
    assert!(!expect.is_empty(), "{name}: a difference is expected");
    let got = attempt(w).unwrap_or_else(|| panic!("{name}: expected a proof of other inputs"));
    let diff = differing(&got, honest);
    println!("{name}: proves other public inputs ({})", diff.join(", "));
    assert_eq!(diff, expect, "{name}");
    assert_ne!(got, honest.to_fields(), "{name}");
}

/// `w` has no proof at all.
fn refused(name: &str, w: &PayoutWitness) {
    assert!(attempt(w).is_none(), "{name}: a proof exists");
    println!("{name}: no proof");
}

#[test]
fn dishonest_witnesses_prove_nothing_the_honest_statement_says() {
    let ps = payouts(5, 1);
    let (honest, s) = payout_witness(BATCH, &ps, DEPTH).unwrap();

    // A payout redirected to another address.
    let mut w = honest.clone();
    w.slots[2].to = address(200);
    proves_other("redirected payout", &w, &s, &["withdrawals", "root"]);

    // A changed amount (in the high limb too).
    let mut w = honest.clone();
    w.slots[1].amount += 1;
    proves_other("amount + 1", &w, &s, &["withdrawals", "root"]);
    let mut w = honest.clone();
    w.slots[1].amount += 1 << 40;
    proves_other("amount + 2^40", &w, &s, &["withdrawals", "root"]);

    // A refund passed off as a withdrawal of the same index (from - 2^32).
    let mut w = honest.clone();
    w.slots[4].from -= REFUND_FROM_BASE;
    proves_other(
        "refund as withdrawal",
        &w,
        &s,
        &["withdrawals", "refunds", "root"],
    );

    // A payout dropped (the later ones move up), or the last one dropped.
    let mut w = honest.clone();
    w.slots.remove(2);
    w.slots.push(honest.slots[7]);
    proves_other("dropped payout", &w, &s, &["withdrawals", "n", "root"]);
    let mut w = honest.clone();
    w.slots[4].used = false;
    proves_other("last payout dropped", &w, &s, &["refunds", "n", "root"]);

    // Two payouts swapped.
    let mut w = honest.clone();
    w.slots.swap(0, 3);
    proves_other("swapped payouts", &w, &s, &["withdrawals", "root"]);
    // A refund moved before a withdrawal: refunds come last.
    let mut w = honest.clone();
    w.slots.swap(3, 4);
    refused("refund before a withdrawal", &w);

    // A wrong batch number: the chain does not hash it, the leaves do.
    let mut w = honest.clone();
    w.batch += 1;
    proves_other("wrong batch", &w, &s, &["batch", "root"]);

    // A used slot after an unused one: hiding a payout from `n` (and the root's level).
    let mut w = honest.clone();
    w.slots[5] = w.slots[4];
    w.slots[4].used = false;
    refused("used after unused", &w);
    let mut w = honest.clone();
    w.slots[2].used = false;
    refused("hole in the middle", &w);

    // Out-of-range fields: from >= 2^33, amount >= 2^63, an address limb above 32 bits is
    // impossible by construction (the witness holds bytes).
    let mut w = honest.clone();
    w.slots[0].from = FROM_BOUND;
    refused("from = 2^33", &w);
    let mut w = honest.clone();
    w.slots[0].amount = MAX_U63 + 1;
    refused("amount = 2^63", &w);
    let mut w = honest.clone();
    w.batch = MAX_U63 + 1;
    refused("batch = 2^63", &w);

    // What an unused slot holds does not matter: the honest statement again.
    let mut w = honest.clone();
    w.slots[6] = PayoutSlot {
        used: false,
        ..honest.slots[0]
    };
    assert_eq!(attempt(&w), Some(s.to_fields()));
}

#[test]
fn rows_per_payout() {
    let rows = |depth: usize| {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        PayoutCircuit::define(&mut b, depth);
        b.num_gates()
    };
    let (r8, r16) = (rows(3), rows(4));
    let per_payout = (r16 - r8) / 8;
    println!(
        "payout circuit: {per_payout} rows per payout (one leaf block, one inner node of two \
         blocks, the chain and the range checks); capacity 8: {r8} rows (degree 2^{}), \
         capacity 16: {r16} rows (degree 2^{}); built capacity 8: degree 2^{}",
        r8.next_power_of_two().trailing_zeros(),
        r16.next_power_of_two().trailing_zeros(),
        circuit().data.common.degree_bits()
    );
    assert!(per_payout <= 600, "{per_payout}");
}

#[test]
fn the_refunds_chain_is_the_one_the_priority_circuit_derives() {
    // Deposits 7 (refunded), 8 (credited), 9 (refunded) as the priority circuit sees them, and
    // the payouts the batch owes for them: the two commitments agree, so the final circuit can
    // tie the payout proof's refunds to the priority proof.
    use state::settlement::{refunds_commitment, Consumed, PriorityEntry};
    let consumed: Vec<Consumed> = [(7u64, 1u8), (8, 0), (9, 1)]
        .iter()
        .map(|&(serial, status)| Consumed {
            entry: PriorityEntry::Deposit {
                serial,
                depositor: address(serial as u8),
                recipient: 1,
                amount: 1_000 + serial,
            },
            status,
        })
        .collect();
    let mut ps = payouts(2, 0);
    for serial in [7u64, 9] {
        ps.push(Payout {
            from: REFUND_FROM_BASE + serial,
            to: address(serial as u8),
            amount: 1_000 + serial,
        });
    }
    let (_, s) = payout_witness(BATCH, &ps, DEPTH).unwrap();
    assert_eq!(s.refunds, refunds_commitment(&consumed));
}

#[test]
fn chunk_proofs_merge_into_the_batch_root() {
    // Chunks of 8 slots; a merge of two covers 16. Eleven payouts (two refunds) fill the first
    // chunk and three slots of the second; four fill half of the first and none of the second
    // (the planner's idle chunk: an_idle_chunk_is_one_proof_that_stands_anywhere); nine
    // refunds cross the chunk boundary.
    let merge = merge();
    let mut eleven = Vec::new();
    for (n, refunds) in [(11, 2), (4, 1), (9, 9)] {
        let ps = payouts(n, refunds);
        let split = n.min(8);
        let c0 = payout_chunk(BATCH, PayoutStart::BATCH, &ps[..split], DEPTH).unwrap();
        let c1 = match ps.get(split..).filter(|rest| !rest.is_empty()) {
            Some(rest) => payout_chunk(BATCH, PayoutStart::after(&c0.1), rest, DEPTH).unwrap(),
            None => idle_payout_chunk(DEPTH).unwrap(),
        };
        let chunks = [c0, c1];
        if n == 11 {
            // The planner's cut of the same list: the chunks proven here.
            let planned = payout_chunks(BATCH, &ps, DEPTH, 1).unwrap();
            assert_eq!(planned.len(), 2);
            assert!(planned.iter().zip(&chunks).all(|(p, c)| p.1 == c.1));
        }
        let proofs: Vec<_> = chunks
            .iter()
            .map(|(w, s)| circuit().prove(w, s).unwrap())
            .collect();
        let merged = merge.prove(&proofs[0], &proofs[1]).unwrap();
        let s = merged_statement(&chunks[0].1, &chunks[1].1);
        assert_eq!(merged.public_inputs, s.to_fields(), "{n} payouts");
        assert!(s.starts_batch());
        assert_eq!(s.root, PayoutTree::new(BATCH, &ps).root(), "{n} payouts");
        assert_eq!(s.n, n as u64);
        merge.data.verify(merged).unwrap();
        if n == 11 {
            eleven = proofs;
        }
    }

    // A hole: a first chunk of five payouts (not full, so `open` ends at 0) and a second
    // chunk with the next three, proven from a start that continues every chained value of
    // the first but claims it was full (`open` = 1). And the two chunks of an honest split
    // swapped.
    let ps = payouts(11, 2);
    let (w, s) = payout_witness(BATCH, &ps[..5], DEPTH).unwrap();
    let partial = circuit().prove(&w, &s).unwrap();
    let start = PayoutStart {
        open: true,
        ..PayoutStart::after(&s)
    };
    let (w, s) = payout_chunk(BATCH, start, &ps[5..8], DEPTH).unwrap();
    let after_hole = circuit().prove(&w, &s).unwrap();
    let [first, second] = [&eleven[0], &eleven[1]];
    for (name, l, r) in [
        ("after a partial chunk", &partial, &after_hole),
        ("swapped", second, first),
    ] {
        crate::circuits::chain::assert_not_mergeable(merge, name, l, r);
    }
}

#[test]
fn an_idle_chunk_is_one_proof_that_stands_anywhere() {
    let merge = merge();
    let prove = |c: &(PayoutWitness, PayoutStatement)| circuit().prove(&c.0, &c.1).unwrap();
    // The planner's four chunks of five payouts: the three after the first are one idle chunk.
    let ps = payouts(5, 1);
    let planned = payout_chunks(BATCH, &ps, DEPTH, 4).unwrap();
    let idle = idle_payout_chunk(DEPTH).unwrap();
    assert_eq!(planned.len(), 4);
    assert!(
        planned[1..].iter().all(|c| *c == idle),
        "byte-identical jobs"
    );
    assert!(!idle.1.starts_batch(), "an idle chunk cannot begin a batch");
    let idle_proof = prove(&idle);

    // After a full first chunk (a partly used one: chunk_proofs_merge_into_the_batch_root):
    // the batch's statement, its root the native tree's, `open` ending at 0 so that no payout
    // can follow.
    let ps = payouts(8, 2);
    let full = payout_witness(BATCH, &ps, DEPTH).unwrap();
    let full_proof = prove(&full);
    let m = merge.prove(&full_proof, &idle_proof).unwrap();
    let s = merged_statement(&full.1, &idle.1);
    assert_eq!(m.public_inputs, s.to_fields());
    assert!(s.starts_batch() && full.1.open);
    assert_eq!(s.root, PayoutTree::new(BATCH, &ps).root());
    assert_eq!(
        (s.n, s.next_offset, s.open, s.refund),
        (8, 16, false, false)
    );
    assert_eq!(
        (s.withdrawals, s.refunds),
        (full.1.withdrawals, full.1.refunds)
    );
    assert_eq!(s.batch, BATCH);
    // Two idle chunks merge into the idle proof of the next level: one for every position.
    let both = merge.prove(&idle_proof, &idle_proof).unwrap();
    let s = merged_statement(&idle.1, &idle.1);
    assert_eq!(both.public_inputs, s.to_fields());
    assert_eq!((s.batch, s.offset, s.next_offset, s.n), (0, 0, 16, 0));

    // A chunk that pays may not stand anywhere: the next payouts proven as a fresh batch's
    // first chunk (offset 0, empty chains, `open` 1) after a full chunk are refused, because
    // the links hold for a right half that adds payouts.
    let more = payouts(11, 2);
    let fresh = payout_witness(BATCH, &more[8..], DEPTH).unwrap();
    crate::circuits::chain::assert_not_mergeable(
        merge,
        "a paying chunk out of place",
        &full_proof,
        &prove(&fresh),
    );
}
