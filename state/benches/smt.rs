//! Sparse Merkle tree benchmarks on a 1,000,000-account tree (leaves at indices 0..1,000,000).
//!
//! Run with `cargo bench -p state --bench smt`. The tree is built once, outside every timed
//! loop; `update_batch` benchmarks clone it per iteration with `iter_batched` so the clone is
//! not timed.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use plonky2::field::types::Field;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use state::hash::{hash_no_pad, Digest, F};
use state::smt::SparseMerkleTree;

const ACCOUNTS: u32 = 1_000_000;
const CHANGED: usize = 10_000;

/// A deterministic pseudo-random leaf: the Poseidon hash of `(seed, salt)`.
fn leaf(seed: u32, salt: u64) -> Digest {
    hash_no_pad(&[F::from_canonical_u32(seed), F::from_canonical_u64(salt)])
}

fn build_tree() -> SparseMerkleTree {
    let leaves: Vec<(u32, Digest)> = (0..ACCOUNTS).map(|i| (i, leaf(i, 0))).collect();
    let mut tree = SparseMerkleTree::new();
    tree.update_batch(&leaves);
    tree
}

fn bench_smt(c: &mut Criterion) {
    let tree = build_tree();
    let mut rng = StdRng::seed_from_u64(42);
    let changes: Vec<(u32, Digest)> = (0..CHANGED)
        .map(|k| (rng.gen_range(0..ACCOUNTS), leaf(k as u32, 1)))
        .collect();

    let mut group = c.benchmark_group("smt");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("update_batch_10k_in_1m", |b| {
        b.iter_batched(
            || tree.clone(),
            |mut t| {
                t.update_batch(&changes);
                t
            },
            BatchSize::LargeInput,
        )
    });

    group.sample_size(100);
    group.measurement_time(Duration::from_secs(5));
    // Leaf values prepared up front so the timed loop is the tree update alone.
    let values: Vec<Digest> = (0..1024).map(|k| leaf(k, 2)).collect();
    let mut single = tree.clone();
    let mut k = 0u32;
    group.bench_function("set_single_in_1m", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            let index = k.wrapping_mul(2_654_435_761) % ACCOUNTS;
            single.set(index, values[k as usize % values.len()]);
        })
    });

    let mut p = 0u32;
    group.bench_function("proof_in_1m", |b| {
        b.iter(|| {
            p = p.wrapping_add(1);
            let index = p.wrapping_mul(2_654_435_761) % ACCOUNTS;
            tree.proof(index)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_smt);
criterion_main!(benches);
