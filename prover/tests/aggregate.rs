//! Aggregation end to end with the dummy leaf circuit: leaves -> merges -> final -> verify,
//! the rejection cases, and the on-disk circuit cache. One test function per expensive setup:
//! the circuits are built once per test binary.

use std::sync::OnceLock;
use std::time::Instant;

use rollup_prover::cache::{CircuitCache, CircuitSpec};
use rollup_prover::circuits::aggregate::{Circuits, FinalCircuit, MergeCircuit};
use rollup_prover::circuits::leaf::{chain_statement, DummyLeaf, DummyLeafWitness, LeafCircuit};
use rollup_prover::circuits::public::{BatchStatement, RangeStatement};
use rollup_prover::verify::{verify_batch_proof, VerifyError};

struct Fixture {
    circuits: Circuits<DummyLeaf>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let circuits = Circuits::new(DummyLeaf::build(4), CircuitCache::in_dir(dir.path()));
        Fixture {
            circuits,
            _dir: dir,
        }
    })
}

fn chain(n: u64) -> Vec<RangeStatement> {
    let mut v: Vec<RangeStatement> = Vec::new();
    for i in 0..n {
        let s = chain_statement(i, v.last());
        v.push(s);
    }
    v
}

#[test]
fn four_leaves_to_a_verified_batch_proof() {
    let c = &fixture().circuits;
    let statements = chain(4);
    let mut leaves = Vec::new();
    for s in &statements {
        let (p, got) = c.prove_leaf(&DummyLeafWitness { statement: *s }).unwrap();
        assert_eq!(&got, s);
        leaves.push(p);
    }
    c.merge(2).unwrap(); // build outside the timings
    let t = Instant::now();
    let (m0, s0) = c.prove_merge(1, &leaves[0], &leaves[1]).unwrap();
    let merge1 = t.elapsed();
    let (m1, _) = c.prove_merge(1, &leaves[2], &leaves[3]).unwrap();
    let t = Instant::now();
    let (root, rs) = c.prove_merge(2, &m0, &m1).unwrap();
    let merge2 = t.elapsed();
    assert_eq!(s0.old_root, statements[0].old_root);
    assert_eq!(s0.new_root, statements[1].new_root);
    assert_eq!(rs.new_root, statements[3].new_root);
    assert_eq!(rs.deposits_next, statements[3].deposits_next);

    c.final_circuit(2).unwrap();
    let t = Instant::now();
    let (proof, statement) = c.prove_final(2, &root).unwrap();
    let fin = t.elapsed();
    eprintln!(
        "merge level 1: {merge1:?}, merge level 2: {merge2:?}, final: {fin:?}, batch proof {} bytes",
        proof.len()
    );
    assert_eq!(Some(statement), BatchStatement::from_range(&rs));
    verify_batch_proof(c, &proof, &statement).unwrap();

    // Another statement: rejected before the (costly) verification.
    let mut other = statement;
    other.new_root = statements[0].new_root;
    assert!(matches!(
        verify_batch_proof(c, &proof, &other),
        Err(VerifyError::StatementMismatch)
    ));
    // Any single flipped byte fails (sampled positions across header, inputs and body).
    let n = proof.len();
    let mut positions = vec![0, 4, 5, 6, 7, 10, 40, n / 3, n / 2, n - 9, n - 1];
    positions.extend((0..16).map(|i| 6 + i * (n - 7) / 16));
    for pos in positions {
        let mut bad = proof.clone();
        bad[pos] ^= 0x01;
        let r = verify_batch_proof(c, &bad, &statement);
        assert!(r.is_err(), "flipping byte {pos} of {n} still verifies");
    }
    assert!(verify_batch_proof(c, &proof[..n - 1], &statement).is_err());
    assert!(verify_batch_proof(c, b"garbage", &statement).is_err());

    // The same proof through verifier data exported to files (what the node/bridge load).
    let vdir = tempfile::tempdir().unwrap();
    let set = rollup_prover::verify::VerifierSet::from_source(c, [2]).unwrap();
    set.write_dir(vdir.path(), c.cache().serializers()).unwrap();
    let loaded =
        rollup_prover::verify::VerifierSet::load_dir(vdir.path(), c.cache().serializers()).unwrap();
    verify_batch_proof(&loaded, &proof, &statement).unwrap();
    assert!(verify_batch_proof(&loaded, &proof, &other).is_err());

    // Out-of-order children are refused.
    assert!(c.prove_merge(1, &leaves[1], &leaves[0]).is_err());
    // A root that does not start a batch cannot be finalized.
    assert!(c.prove_final(1, &m1).is_err());
}

#[test]
fn single_leaf_batch() {
    let c = &fixture().circuits;
    let mut s = chain(1)[0];
    s.pubdata_in = state::Digest::ZERO;
    let (leaf, _) = c.prove_leaf(&DummyLeafWitness { statement: s }).unwrap();
    let (proof, statement) = c.prove_final(0, &leaf).unwrap();
    verify_batch_proof(c, &proof, &statement).unwrap();
}

#[test]
fn merge_circuit_digests_match_across_builds_and_cache() {
    let c = &fixture().circuits;
    let m1 = c.merge(1).unwrap();
    // A second registry on the same cache loads the same circuits (same digests) from disk.
    let dir = c.cache().dir().unwrap().to_path_buf();
    let again = Circuits::new(DummyLeaf::build(4), CircuitCache::in_dir(&dir));
    let t = Instant::now();
    let m1b = again.merge(1).unwrap();
    eprintln!("merge-1 loaded from the cache in {:?}", t.elapsed());
    assert_eq!(
        m1.data.verifier_only.circuit_digest,
        m1b.data.verifier_only.circuit_digest
    );

    // A corrupt file is rebuilt, not trusted.
    let leaf = again.leaf().data();
    let key = MergeCircuit::key(1, leaf);
    let spec = CircuitSpec {
        name: "merge-1",
        key: &key,
        num_public_inputs: 31,
        pinned_digest: None,
    };
    let path = again.cache().path_of(&spec).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(again.cache().decode(&spec, &bytes).is_ok());
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    assert!(again.cache().decode(&spec, &bytes).is_err());
    std::fs::write(&path, &bytes).unwrap();
    let third = Circuits::new(DummyLeaf::build(4), CircuitCache::in_dir(&dir));
    let m1c = third.merge(1).unwrap();
    assert_eq!(
        m1.data.verifier_only.circuit_digest,
        m1c.data.verifier_only.circuit_digest
    );
    // ... and rewritten correctly.
    let fixed = std::fs::read(&path).unwrap();
    assert!(third.cache().decode(&spec, &fixed).is_ok());

    // Another definition (key) never reads this file.
    let other_key = FinalCircuit::key(1, leaf);
    let other = CircuitSpec {
        key: &other_key,
        ..spec.clone()
    };
    assert!(third.cache().decode(&other, &fixed).is_err());
}
