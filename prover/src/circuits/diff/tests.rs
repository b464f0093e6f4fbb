//! The diff circuit on real diffs (honest proofs whose public inputs are the roots and the
//! SHA-256 of the encoded diff) and on witnesses edited by hand the way a dishonest prover would
//! build them, past every native check: each must have no proof.

use std::sync::OnceLock;

use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::CircuitConfig;
use rand::SeedableRng;
use sha2::{Digest as _, Sha256};
use state::account::{Account, AccountIndex, Amount, Nonce};
use state::crypto::schnorr::SecretKey;
use state::diff::{AccountTree, StateDiff};
use state::smt::{SparseMerkleTree, DEPTH};

use super::*;
use crate::D;

const CAP_OLD: usize = 4;
const CAP_NEW: usize = 2;

fn circuit() -> &'static DiffCircuit {
    static C: OnceLock<DiffCircuit> = OnceLock::new();
    C.get_or_init(|| DiffCircuit::build(CAP_OLD, CAP_NEW))
}

fn account(seed: u64, balance: u64, nonce: u64) -> Account {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut a = Account::new(SecretKey::random(&mut rng).public_key());
    a.balance = Amount::new(balance).unwrap();
    a.nonce = Nonce::new(nonce).unwrap();
    a
}

/// Six accounts before; after: three of them changed (1, 3, 4) and two created (6, 7).
fn transition() -> (Vec<Account>, Vec<Account>, StateDiff) {
    let before: Vec<Account> = (0..6).map(|i| account(i, 1_000 * i, i)).collect();
    let mut after = before.clone();
    after[1].balance = Amount::new(1).unwrap();
    after[1].nonce = Nonce::new(9).unwrap();
    after[3].balance = Amount::new(state::account::MAX_U63).unwrap();
    after[4].balance = Amount::new(0).unwrap();
    after.push(account(60, 5, 0));
    after.push(account(70, 0, 0));
    let touched = [1, 3, 4].map(AccountIndex);
    let diff = StateDiff::from_accounts(&after, touched, 6).unwrap();
    (before, after, diff)
}

/// Proving `w` fails: an error, or a panic in witness generation (plonky2's decomposition
/// generators assert that the value fits, which is the range check refusing it).
fn refused(name: &str, w: &DiffWitness, s: &DiffStatement) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| circuit().prove(w, s)));
    match r {
        Ok(Ok(_)) => panic!("{name}: a proof exists"),
        Ok(Err(e)) => println!("{name}: refused: {e:#}"),
        Err(p) => println!(
            "{name}: refused (witness generation): {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        ),
    }
}

#[test]
fn an_honest_diff_proves_its_roots_and_hash() {
    let (before, after, diff) = transition();
    let (w, s) = diff_witness(&before, &diff, CAP_OLD, CAP_NEW).unwrap();
    assert_eq!(s.root_in, AccountTree::from_accounts(&before).root());
    assert_eq!(s.batch_old_root, s.root_in);
    assert_eq!(s.root_out, AccountTree::from_accounts(&after).root());
    assert!(s.whole_batch());
    assert_eq!(
        s.diff_hash(),
        <[u8; 32]>::from(Sha256::digest(diff.encode()))
    );
    let proof = circuit().prove(&w, &s).unwrap();
    circuit().verify(proof).unwrap();

    // Fewer records than slots, no new account, and an empty diff.
    for touched in [vec![2], vec![]] {
        let d =
            StateDiff::from_accounts(&before, touched.into_iter().map(AccountIndex), 6).unwrap();
        let (w, s) = diff_witness(&before, &d, CAP_OLD, CAP_NEW).unwrap();
        assert_eq!(s.root_in, s.root_out);
        circuit().verify(circuit().prove(&w, &s).unwrap()).unwrap();
    }
}

/// Recomputes every slot's siblings for the slots' order as they stand (the running tree), so
/// that an edited witness fails only where the circuit's rules say it must.
fn resequence(before: &[Account], w: &mut DiffWitness) {
    let mut tree = SparseMerkleTree::new();
    for (i, a) in before.iter().enumerate() {
        tree.set(i as u32, a.leaf_hash());
    }
    for s in w.old.iter_mut().filter(|s| s.used) {
        s.siblings = tree.proof(s.index).siblings.to_vec();
        tree.set(s.index, leaf_of(&s.key, s.balance, s.nonce, s.ext));
    }
    for (j, s) in w.new.iter_mut().enumerate().filter(|(_, s)| s.used) {
        let index = w.start.count.count_before + j as u32;
        s.siblings = tree.proof(index).siblings.to_vec();
        tree.set(index, leaf_of(&s.key, s.balance, s.nonce, Digest::ZERO));
    }
}

#[test]
fn dishonest_witnesses_have_no_proof() {
    let (before, _, diff) = transition();
    let (honest, s) = diff_witness(&before, &diff, CAP_OLD, CAP_NEW).unwrap();

    // Records out of order (3 before 1): the index order is a constraint, not a parse.
    let mut w = honest.clone();
    w.old.swap(0, 1);
    resequence(&before, &mut w);
    refused("unsorted records", &w, &s);

    // The same account twice.
    let mut w = honest.clone();
    w.old[1] = w.old[0].clone();
    w.old[1].nonce += 1;
    resequence(&before, &mut w);
    refused("duplicate record", &w, &s);

    // A new account passed off as an existing one (index >= count_before).
    let mut w = honest.clone();
    w.old[2] = OldSlot {
        used: true,
        index: 6,
        key: w.new[0].key,
        balance_before: 0,
        nonce_before: 0,
        balance: w.new[0].balance,
        nonce: w.new[0].nonce,
        ext: Digest::ZERO,
        siblings: vec![],
    };
    w.new[0].used = false;
    w.new[1].used = false;
    resequence(&before, &mut w);
    refused("new account as an existing one", &w, &s);

    // A balance before that is not the account's: the old leaf is not under the root.
    let mut w = honest.clone();
    w.old[0].balance_before += 1;
    refused("wrong balance before", &w, &s);

    // count_before misstated (one more than the state has): the leaf below it is empty.
    let mut w = honest.clone();
    w.start.count.count_before += 1;
    w.new.remove(0);
    w.new.push(NewSlot {
        used: false,
        key: [0; 5],
        balance: 0,
        nonce: 0,
        siblings: vec![Digest::ZERO; DEPTH],
    });
    resequence(&before, &mut w);
    let mut tree = SparseMerkleTree::new();
    for (i, a) in before.iter().enumerate() {
        tree.set(i as u32, a.leaf_hash());
    }
    w.start.count.last_siblings = tree.proof(w.start.count.count_before - 1).siblings.to_vec();
    w.start.count.free_siblings = tree.proof(w.start.count.count_before).siblings.to_vec();
    refused("count_before + 1", &w, &s);
    // ... or one less: the leaf at it is an account, not empty.
    let mut w = honest.clone();
    w.start.count.count_before -= 1;
    w.start.count.last_key = key_of(&before[4]);
    w.start.count.last_balance = before[4].balance.get();
    w.start.count.last_nonce = before[4].nonce.get();
    w.start.count.last_siblings = tree.proof(w.start.count.count_before - 1).siblings.to_vec();
    w.start.count.free_siblings = tree.proof(w.start.count.count_before).siblings.to_vec();
    refused("count_before - 1", &w, &s);

    // A used slot after an unused one (a record hidden from the count `n`).
    let mut w = honest.clone();
    w.old[3] = w.old[2].clone();
    w.old[2].used = false;
    refused("used after unused", &w, &s);
}

/// Accounts with agent fields (a stream book, shares, a passport: a non-zero `ext`) touched by
/// plain payments: the version 1 records keep their `ext`, as the rebuild from L1 does, and
/// the proof's new root is the rebuilt one. A prover cannot misstate an `ext`: the old leaf
/// would not be under the root, and the one witnessed `ext` is in both leaves.
#[test]
fn records_keep_the_accounts_ext() {
    let (mut before, mut after, diff) = transition();
    let ext = |n: u64| state::hash::hash_no_pad(&[F::from_canonical_u64(n)]);
    for (i, n) in [(1, 11), (3, 33), (2, 22)] {
        before[i].ext = ext(n);
        after[i].ext = ext(n);
    }
    let (w, s) = diff_witness(&before, &diff, CAP_OLD, CAP_NEW).unwrap();
    assert_eq!(s.root_in, AccountTree::from_accounts(&before).root());
    let rebuilt = {
        let mut t = AccountTree::from_accounts(&before);
        t.apply(&diff).unwrap()
    };
    assert_eq!(s.root_out, rebuilt);
    assert_eq!(s.root_out, AccountTree::from_accounts(&after).root());
    circuit().verify(circuit().prove(&w, &s).unwrap()).unwrap();

    // The ext of another account, or none: the old leaf is not under the root.
    let mut bad = w.clone();
    bad.old[0].ext = ext(33);
    refused("misstated ext", &bad, &s);
    let mut bad = w.clone();
    bad.old[1].ext = Digest::ZERO;
    refused("ext dropped", &bad, &s);
    // Whatever ext the prover picks, the new root is the one with the ext kept: an ext
    // cleared in the new leaf would be a new root the statement does not have.
    let mut cleared = after.clone();
    cleared[1].ext = Digest::ZERO;
    assert_ne!(AccountTree::from_accounts(&cleared).root(), s.root_out);
}

#[test]
fn a_diff_other_than_the_transition_states_other_public_inputs() {
    // Publishing a record with another balance (or leaving one out) gives a proof of another
    // transition, never one with the true new root and the published bytes' hash.
    let (before, after, diff) = transition();
    let (_, s) = diff_witness(&before, &diff, CAP_OLD, CAP_NEW).unwrap();
    let mut records = diff.records().to_vec();
    records[0].balance = Amount::new(2).unwrap();
    let forged = StateDiff::new(6, records).unwrap();
    let (w, fs) = diff_witness(&before, &forged, CAP_OLD, CAP_NEW).unwrap();
    assert_ne!(fs.root_out, AccountTree::from_accounts(&after).root());
    let proof = circuit().prove(&w, &fs).unwrap();
    assert_ne!(proof.public_inputs, s.to_fields());
    // The honest witness proved against the forged bytes' hash: refused.
    let (hw, _) = diff_witness(&before, &diff, CAP_OLD, CAP_NEW).unwrap();
    let other = DiffStatement {
        stream_out: fs.stream_out.clone(),
        ..s
    };
    assert!(circuit().prove(&hw, &other).is_err());
}

#[test]
fn rows_per_record() {
    let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let (_, [start, old_end, new_end]) = DiffCircuit::define(&mut b, 8, 4);
    let per_old = (old_end - start) / 8;
    let per_new = (new_end - old_end) / 4;
    println!(
        "diff circuit: {per_old} rows per existing-account record, {per_new} per new account, \
         {start} rows before the records; 8 + 4 slots: {} rows (degree 2^{})",
        b.num_gates(),
        b.num_gates().next_power_of_two().trailing_zeros()
    );
    // The goal: at most 1,000 rows per account touched, hashing included.
    assert!(
        per_old <= 1_000 && per_new <= 1_000,
        "{per_old} / {per_new}"
    );
}

#[test]
fn chunk_proofs_merge_into_the_batch_diff() {
    use crate::circuits::chain::ChainMerge;
    // Three existing accounts' records and two new ones in chunks of 2 + 1 slots: chunk 0
    // holds two existing records, chunk 1 the third and the first new one, chunk 2 the second
    // new one, chunk 3 nothing (padding to four).
    let (before, after, diff) = transition();
    let cap = (2, 1);
    let small = DiffCircuit::build(cap.0, cap.1);
    let chunks = diff_chunks(&before, &diff, cap.0, cap.1, 1).unwrap();
    assert_eq!(chunks.len(), 4);
    // No chunk alone is a whole batch (the header announces five records).
    assert!(chunks.iter().all(|(_, s)| !s.whole_batch()));
    let proofs: Vec<_> = chunks
        .iter()
        .map(|(w, s)| small.prove(w, s).unwrap())
        .collect();
    // Merged pair by pair; the two merges chain into the whole batch (what the level above
    // computes: every level is the same `ChainMerge`, proven above level 1 by the registry
    // tests).
    let m1 = ChainMerge::build(&small.data, diff_layout());
    let left = m1.prove(&proofs[0], &proofs[1]).unwrap();
    let right = m1.prove(&proofs[2], &proofs[3]).unwrap();
    m1.data.verify(right.clone()).unwrap();
    diff_layout()
        .check_adjacent(&left.public_inputs, &right.public_inputs)
        .unwrap();
    let root = diff_layout().merged(&left.public_inputs, &right.public_inputs, &[]);
    let s = DiffStatement::from_fields(&root).unwrap();
    assert!(s.whole_batch());
    assert_eq!(s.root_in, AccountTree::from_accounts(&before).root());
    assert_eq!(s.root_out, AccountTree::from_accounts(&after).root());
    assert_eq!(
        s.diff_hash(),
        <[u8; 32]>::from(Sha256::digest(diff.encode()))
    );

    // Out of order: a chunk before the one it follows, and a chunk skipped.
    for (name, l, r) in [
        ("swapped", &proofs[1], &proofs[0]),
        ("skipped", &proofs[0], &proofs[2]),
    ] {
        crate::circuits::chain::assert_not_mergeable(&m1, name, l, r);
    }
}
