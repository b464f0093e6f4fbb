//! Leaf kinds of one shape and the merge over their set, on toy kinds whose statements are
//! free inputs (what each kind proves about its transactions is not the point here: which
//! circuits the merge accepts is).

use plonky2::hash::poseidon::PoseidonHash;

use super::*;
use crate::circuits::leaf::chain_statement;
use crate::circuits::public::RangeStatementTargets;

type Proof = ProofWithPublicInputs<F, C, D>;

/// A toy leaf kind: its range statement as free inputs, and some work of its own.
struct Kind {
    data: CircuitData<F, C, D>,
    inputs: Vec<Target>,
}

impl Kind {
    fn prove(&self, s: &RangeStatement) -> anyhow::Result<Proof> {
        let mut pw = PartialWitness::new();
        for (t, v) in self.inputs.iter().zip(s.to_fields()) {
            pw.set_target(*t, v)?;
        }
        self.data.prove(pw)
    }
}

/// Positions of `deposits_first` and `deposits_next` in the statement's fields.
const DEPOSITS_FIRST: usize = 24;
const DEPOSITS_NEXT: usize = 25;

/// Kind 0 hashes its statement (Poseidon rows); kind 1 range-checks its counters and does a
/// few hundred arithmetic operations (base-sum and arithmetic rows, a larger degree); kind 2 is
/// kind 0 with one more rule (`deposits_next = deposits_first + 1`): the same gates, another
/// circuit.
fn build(kind: u8, shape: Option<&LeafShape>) -> Kind {
    let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let inputs = b.add_virtual_targets(RANGE_PUBLIC_INPUTS);
    RangeStatementTargets::from_targets(&inputs).register(&mut b);
    if kind == 1 {
        for &i in &[DEPOSITS_FIRST, DEPOSITS_NEXT] {
            b.range_check(inputs[i], 62);
        }
        let mut acc = inputs[0];
        for i in 0..600 {
            acc = b.mul_add(acc, inputs[i % RANGE_PUBLIC_INPUTS], inputs[1]);
        }
        let _ = acc;
    } else {
        let h = b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs.clone());
        let sq = b.mul(h.elements[0], h.elements[1]);
        let _ = b.add(sq, h.elements[2]);
        if kind == 2 {
            let one = b.one();
            let next = b.add(inputs[DEPOSITS_FIRST], one);
            b.connect(next, inputs[DEPOSITS_NEXT]);
        }
    }
    if let Some(shape) = shape {
        shape.apply(&mut b);
    }
    Kind {
        data: b.build::<C>(),
        inputs,
    }
}

#[test]
fn a_set_merge_accepts_each_kind_and_nothing_else() {
    // As they are, the kinds have different common data: no single verifier takes both.
    let (a, b) = (build(0, None), build(1, None));
    assert_ne!(a.data.common, b.data.common);
    let shape = LeafShape::union([&a.data.common, &b.data.common]);
    let kinds: Vec<Kind> = (0..3).map(|k| build(k, Some(&shape))).collect();
    for k in &kinds[1..] {
        assert_eq!(k.data.common, kinds[0].data.common, "one shape");
    }
    let digest = |k: &Kind| k.data.verifier_only.circuit_digest;
    assert_ne!(digest(&kinds[0]), digest(&kinds[1]));
    assert_ne!(digest(&kinds[0]), digest(&kinds[2]));
    println!(
        "leaf kinds: 2^{} and 2^{} as they are, 2^{} padded to one shape of {} gate types",
        a.data.common.degree_bits(),
        b.data.common.degree_bits(),
        kinds[0].data.common.degree_bits(),
        shape.gates.len()
    );

    // The set is kinds 0 and 1; kind 2 has the same shape but is not in it.
    // A kind not built to the set's shape is refused when the merge is built.
    let err = SetMerge::build(&[&kinds[0].data, &a.data]).err().unwrap();
    assert!(
        err.to_string().contains("not of the set's shape"),
        "{err:#}"
    );
    assert!(SetMerge::build(&[]).is_err());
    let merge = SetMerge::build(&[&kinds[0].data, &kinds[1].data]).unwrap();
    let single = crate::circuits::aggregate::MergeCircuit::build_or_load(
        1,
        &kinds[0].data,
        &crate::cache::CircuitCache::disabled(),
        None,
    )
    .unwrap();
    println!(
        "set merge over two kinds: 2^{} rows; the merge over one kind: 2^{}",
        merge.data.common.degree_bits(),
        single.data.common.degree_bits(),
    );
    let s0 = chain_statement(0, None);
    let s1 = chain_statement(1, Some(&s0));
    assert_eq!(
        s1.deposits_next,
        s1.deposits_first + 1,
        "kind 2 can prove s1"
    );
    let p0 = kinds[0].prove(&s0).unwrap();
    let p1 = kinds[1].prove(&s1).unwrap();
    let p1_as_0 = kinds[0].prove(&s1).unwrap();
    let p2 = kinds[2].prove(&s1).unwrap();
    kinds[2].data.verify(p2.clone()).unwrap();

    // Each kind, in either position, merges into the merged statement: the left range's
    // "before" values, the right one's "after" values (the side accumulators included).
    for (left, right) in [((&p0, 0), (&p1, 1)), ((&p0, 0), (&p1_as_0, 0))] {
        let m = merge.prove(left, right).unwrap();
        let got = RangeStatement::from_fields(&m.public_inputs).unwrap();
        assert_eq!(got, s0.merged(&s1));
        assert_eq!(
            (got.splits_in, got.splits_out, got.walks_in, got.walks_out),
            (s0.splits_in, s1.splits_out, s0.walks_in, s1.walks_out)
        );
        assert_ne!(got.splits_in, got.splits_out, "the chain moved");
        merge.data.verify(m).unwrap();
    }

    // A proof under another kind's index, and a proof of a circuit outside the set under every
    // index the merge admits (the two of the set and the padding's), have no merge proof.
    let no_proof = |left: (&Proof, usize), right: (&Proof, usize)| {
        // A refusal is an error or a panic in witness generation: either way nothing to verify.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            merge.prove_unchecked(left, right)
        })) {
            Ok(Ok(p)) => merge.data.verify(p).is_err(),
            Ok(Err(_)) | Err(_) => true,
        }
    };
    assert!(no_proof((&p0, 1), (&p1, 1)), "kind 0 merged as kind 1");
    assert!(no_proof((&p0, 0), (&p1, 0)), "kind 1 merged as kind 0");
    for index in 0..2 {
        assert!(
            no_proof((&p0, 0), (&p2, index)),
            "a kind outside the set merged as kind {index}"
        );
    }
    // Natively: an index out of the set, and ranges that do not follow each other.
    assert!(merge.prove((&p0, 0), (&p1, 2)).is_err());
    assert!(merge.prove((&p1, 1), (&p0, 0)).is_err());

    // A side accumulator that does not continue (a record handed over by the left range and
    // lost, or one the right range claims from nowhere): refused natively by name, and the
    // circuit alone has no proof for it.
    type Side = fn(&mut RangeStatement) -> &mut state::Digest;
    let sides: [(&str, Side); 2] = [
        ("split records", |s| &mut s.splits_in),
        ("walk records", |s| &mut s.walks_in),
    ];
    for (name, side) in sides {
        let mut broken = s1;
        side(&mut broken).0[0] += F::ONE;
        let p = kinds[0].prove(&broken).unwrap();
        let err = merge.prove((&p0, 0), (&p, 0)).err().unwrap();
        assert!(err.to_string().contains(name), "{name}: {err:#}");
        assert!(
            no_proof((&p0, 0), (&p, 0)),
            "{name} broken between the ranges"
        );
    }
}
