//! Aggregation with the dummy leaf circuit: leaves -> merges, the rejection cases, the on-disk
//! circuit cache and pinned final (settlement) circuits. One test function per expensive
//! setup: the circuits are built once per test binary. (A final proof needs a real batch, with
//! its diff, priority and payout proofs: `tests/fleet.rs` proves and verifies one.)

use std::sync::OnceLock;
use std::time::Instant;

use rollup_prover::cache::{CircuitCache, CircuitSpec};
use rollup_prover::circuits::aggregate::MergeCircuit;
use rollup_prover::circuits::leaf::{chain_statement, DummyLeaf, DummyLeafWitness, LeafCircuit};
use rollup_prover::circuits::public::RangeStatement;
use rollup_prover::circuits::registry::Circuits;
use rollup_prover::circuits::settlement::{SettlementCircuit, SettlementInner};
use rollup_prover::pins::{CircuitPins, FinalId, PinError};
use rollup_prover::verify::VerifierSet;

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
fn four_leaves_merge_in_order() {
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
    let (_root, rs) = c.prove_merge(2, &m0, &m1).unwrap();
    let merge2 = t.elapsed();
    eprintln!("merge level 1: {merge1:?}, merge level 2: {merge2:?}");
    assert_eq!(s0.old_root, statements[0].old_root);
    assert_eq!(s0.new_root, statements[1].new_root);
    assert_eq!(rs.old_root, statements[0].old_root);
    assert_eq!(rs.new_root, statements[3].new_root);
    assert_eq!(rs.deposits_next, statements[3].deposits_next);
    // Out-of-order children are refused; so is a proof of the wrong level.
    assert!(c.prove_merge(1, &leaves[1], &leaves[0]).is_err());
    assert!(c.prove_merge(2, &leaves[0], &leaves[1]).is_err());
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
    // The fingerprint recomputed from the cached file is the built circuit's.
    assert_eq!(m1.fingerprint, m1b.fingerprint);

    // A corrupt file is rebuilt, not trusted.
    let leaf = again.leaf().data();
    let key = MergeCircuit::key(1, leaf);
    let spec = CircuitSpec {
        name: "merge-1",
        key: &key,
        num_public_inputs: rollup_prover::circuits::public::RANGE_PUBLIC_INPUTS,
        pinned: None,
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
    let other_key = MergeCircuit::key(2, leaf);
    let other = CircuitSpec {
        key: &other_key,
        ..spec.clone()
    };
    assert!(third.cache().decode(&other, &fixed).is_err());
}

/// Verifier files and cached circuits are checked against the deployment's pins (fingerprints of
/// the complete verifier data), not only for self-consistency.
#[test]
fn pinned_final_circuits() {
    let c = &fixture().circuits;
    let ser = c.cache().serializers();
    let f0 = c.final_circuit(FinalId::v1(0)).unwrap();
    let f2 = c.final_circuit(FinalId::v1(1)).unwrap();
    assert_ne!(f0.fingerprint, f2.fingerprint);

    // An honest export loads against its manifest.
    let vdir = tempfile::tempdir().unwrap();
    let pins = VerifierSet::from_source(c, [FinalId::v1(0), FinalId::v1(1)])
        .unwrap()
        .write_dir(vdir.path(), ser)
        .unwrap();
    assert_eq!(pins.get("final-0"), Some(f0.fingerprint));
    assert_eq!(pins.get("final-1"), Some(f2.fingerprint));
    assert_eq!(
        CircuitPins::load(&vdir.path().join("circuits.json")).unwrap(),
        pins
    );
    let loaded = VerifierSet::load_dir(vdir.path(), ser, &pins).unwrap();
    assert_eq!(
        loaded.ids().collect::<Vec<_>>(),
        vec![FinalId::v1(0), FinalId::v1(1)]
    );
    let path2 = vdir.path().join("final-1.verifier");
    let honest = std::fs::read(&path2).unwrap();
    let refused = |what: &str| -> PinError {
        match VerifierSet::load_dir(vdir.path(), ser, &pins) {
            Ok(_) => panic!("{what}: loaded"),
            Err(e) => e.downcast::<PinError>().unwrap(),
        }
    };

    // final-1 with the FRI query rounds lowered to 1: the circuit digest (constants/sigmas cap
    // and degree) is unchanged and self-consistent, which is all that was checked before.
    let mut weak = (*f2.verifier).clone();
    weak.common.config.fri_config.num_query_rounds = 1;
    weak.common.fri_params.config.num_query_rounds = 1;
    assert_eq!(
        rollup_prover::cache::recompute_digest(&weak.verifier_only, &weak.common),
        f2.data.verifier_only.circuit_digest
    );
    std::fs::write(&path2, weak.to_bytes(ser.gates.as_ref()).unwrap()).unwrap();
    match refused("lowered FRI query rounds") {
        PinError::Mismatch {
            what,
            pinned,
            found,
        } => {
            assert!(what.ends_with("final-1.verifier"));
            assert_eq!(pinned, f2.fingerprint);
            assert_ne!(found, f2.fingerprint);
        }
        e => panic!("{e}"),
    }

    // final-1 swapped for another final circuit's verifier (same layout, consistent).
    std::fs::copy(vdir.path().join("final-0.verifier"), &path2).unwrap();
    assert!(matches!(
        refused("swapped file"),
        PinError::Mismatch { found, .. } if found == f0.fingerprint
    ));
    std::fs::write(&path2, &honest).unwrap();
    VerifierSet::load_dir(vdir.path(), ser, &pins).unwrap();

    // A registry serving pinned circuits: a cached final circuit that is not the pinned one is
    // refused (not rebuilt), and an unpinned final circuit is not served.
    let dir = c.cache().dir().unwrap().to_path_buf();
    let mut wrong = pins.clone();
    wrong.insert("final-0", f2.fingerprint);
    let registry = Circuits::new(DummyLeaf::build(4), CircuitCache::in_dir(&dir))
        .with_pins(wrong)
        .unwrap();
    let e = registry.final_circuit(FinalId::v1(0)).err().unwrap();
    assert!(
        format!("{e:#}").contains(&f2.fingerprint.to_string()),
        "{e:#}"
    );
    assert!(registry.final_circuit(FinalId::v1(2)).is_err());
    let registry = Circuits::new(DummyLeaf::build(4), CircuitCache::in_dir(&dir))
        .with_pins(pins.clone())
        .unwrap();
    assert_eq!(
        registry.final_circuit(FinalId::v1(0)).unwrap().fingerprint,
        f0.fingerprint
    );

    // A cache file whose payload was swapped for another circuit's, by someone who also
    // recomputed the checksum and the header: refused when pinned, the file left in place.
    let cdir = tempfile::tempdir().unwrap();
    let cache = CircuitCache::in_dir(cdir.path());
    let chains = c.chains().unwrap();
    let inner = SettlementInner {
        range: c.leaf().data(),
        diff: &chains.diff.chunk.data,
        priority: &chains.priority.chunk.data,
        payout: &chains.payout.chunk.data,
        splits: None,
        walks: None,
    };
    let key = SettlementCircuit::key(0, rollup_storage::DiffCircuitKind::V1, &inner);
    let spec = CircuitSpec {
        name: "final-0",
        key: &key,
        num_public_inputs: rollup_prover::circuits::settlement::SETTLEMENT_PUBLIC_INPUTS,
        pinned: Some(f0.fingerprint),
    };
    let swapped = cache.encode(&spec, &f2.data).unwrap();
    let cpath = cache.path_of(&spec).unwrap();
    std::fs::write(&cpath, &swapped).unwrap();
    let e = SettlementCircuit::build_or_load(
        0,
        rollup_storage::DiffCircuitKind::V1,
        inner,
        &cache,
        Some(f0.fingerprint),
    )
    .err()
    .unwrap();
    let msg = format!("{e:#}");
    assert!(
        msg.contains(&f0.fingerprint.to_string()) && msg.contains(&f2.fingerprint.to_string()),
        "{msg}"
    );
    assert_eq!(std::fs::read(&cpath).unwrap(), swapped);
}

/// A deployment's tick-walk chunk (`rollup-prover --walk-lanes`) is its registry's shape, what
/// the planner cuts batches by: bounded, chosen before any circuit is built, and pins made for
/// another walk chunk, another leaf size or another shape of policy checks are refused by
/// name (their finals could not match).
#[test]
fn the_walk_chunk_is_the_registry_s_and_the_pins_name_it() {
    use rollup_prover::cache::Serializers;
    use rollup_prover::circuits::trees::ChunkShape;
    let registry = || Circuits::new(DummyLeaf::build(4), CircuitCache::disabled());
    assert_eq!(registry().shape(), ChunkShape::for_leaf(4));
    assert_eq!(registry().shape().walk_lanes, 64, "16 per slot by default");
    let dense = registry().with_walk_lanes(1_600).unwrap();
    assert_eq!(
        dense.shape(),
        ChunkShape::for_leaf(4).with_walk_lanes(1_600)
    );
    for lanes in [0, 4_097] {
        assert!(registry().with_walk_lanes(lanes).is_err(), "{lanes} lanes");
    }
    let mut pins = CircuitPins::new(&Serializers::rollup());
    pins.walk_lanes = Some(64);
    let err = format!("{:#}", dense.with_pins(pins.clone()).err().unwrap());
    assert!(err.contains("1600 (--walk-lanes)"), "{err}");
    assert!(registry().with_pins(pins.clone()).is_ok());
    // The dummy leaf has no policy checks: pins of a leaf with lists are not its.
    let mut lists = pins.clone();
    lists.leaf_policies = Some(rollup_prover::circuits::payment::PolicyChecks::WithLists);
    let err = format!("{:#}", registry().with_pins(lists).err().unwrap());
    assert!(
        err.contains("WithLists, not None (--leaf-policies)"),
        "{err}"
    );
    pins.leaf_policies = Some(rollup_prover::circuits::payment::PolicyChecks::None);
    assert!(registry().with_pins(pins.clone()).is_ok());
    pins.leaf_size = Some(8);
    let err = format!("{:#}", registry().with_pins(pins).err().unwrap());
    assert!(err.contains("not 4 (--leaf-size)"), "{err}");
}
