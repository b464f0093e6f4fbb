//! Proving time of the range merge circuits (levels 1 and 2), over dummy leaves. Circuits are
//! cached in `target/prover-bench-cache` so only the first run builds them. The final
//! (settlement) proof needs a real batch: `benches/settlement.rs`.

use criterion::{criterion_group, criterion_main, Criterion};
use rollup_prover::cache::CircuitCache;
use rollup_prover::circuits::leaf::{chain_statement, DummyLeaf, DummyLeafWitness};
use rollup_prover::circuits::public::RangeStatement;
use rollup_prover::circuits::registry::Circuits;

fn bench(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/prover-bench-cache");
    let circuits = Circuits::new(DummyLeaf::build(8), CircuitCache::in_dir(dir));
    circuits.merge(2).expect("circuits");
    let mut statements: Vec<RangeStatement> = Vec::new();
    for i in 0..4 {
        let s = chain_statement(i, statements.last());
        statements.push(s);
    }
    let leaves: Vec<Vec<u8>> = statements
        .iter()
        .map(|s| {
            circuits
                .prove_leaf(&DummyLeafWitness { statement: *s })
                .unwrap()
                .0
        })
        .collect();
    let (m0, _) = circuits.prove_merge(1, &leaves[0], &leaves[1]).unwrap();
    let (m1, _) = circuits.prove_merge(1, &leaves[2], &leaves[3]).unwrap();

    let mut g = c.benchmark_group("aggregate");
    g.sample_size(10);
    g.bench_function("merge_level1", |b| {
        b.iter(|| circuits.prove_merge(1, &leaves[0], &leaves[1]).unwrap())
    });
    g.bench_function("merge_level2", |b| {
        b.iter(|| circuits.prove_merge(2, &m0, &m1).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
