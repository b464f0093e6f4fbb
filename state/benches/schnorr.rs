//! Schnorr and ECgFp5 timings. Run: `cargo bench -p state --bench schnorr`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use plonky2::field::types::Field;
use rand::SeedableRng;
use state::crypto::ecgfp5::{GFp5, Point};
use state::crypto::schnorr::{MessageHash, SecretKey};
use state::hash::{hash_no_pad, F};

fn bench(c: &mut Criterion) {
    let sk = SecretKey::random(&mut rand::rngs::StdRng::seed_from_u64(1));
    let pk = sk.public_key();
    let msg = MessageHash(hash_no_pad(&[F::from_canonical_u64(42)]));
    let sig = sk.sign(&msg);
    // Build the generator table outside the timed loops.
    let _ = sk.sign(&msg);

    let mut g = c.benchmark_group("schnorr");
    g.bench_function("sign", |b| b.iter(|| sk.sign(black_box(&msg))));
    g.bench_function("verify", |b| {
        b.iter(|| pk.verify(black_box(&msg), black_box(&sig)))
    });
    g.finish();

    // The sequencer's ceiling: verifications per second on every core of this machine
    // (rayon's global pool), the figure the sustained sequencer rate is compared against.
    use rayon::prelude::*;
    let batch: Vec<_> = (0..2048u64)
        .map(|i| {
            let m = MessageHash(hash_no_pad(&[F::from_canonical_u64(i)]));
            (m, sk.sign(&m))
        })
        .collect();
    let mut g = c.benchmark_group("schnorr_parallel");
    g.throughput(criterion::Throughput::Elements(batch.len() as u64));
    g.sample_size(20);
    g.bench_function("verify_2048_all_cores", |b| {
        b.iter(|| {
            batch
                .par_iter()
                .filter(|(m, s)| pk.verify(m, s).is_ok())
                .count()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("ecgfp5");
    let w = pk.encoding();
    let a = GFp5::from_u64s([1, 2, 3, 4, 5]).unwrap_or(GFp5::ONE);
    let p = *pk.point();
    g.bench_function("gfp5_mul", |b| b.iter(|| black_box(a) * black_box(w)));
    g.bench_function("gfp5_square", |b| b.iter(|| black_box(w).square()));
    g.bench_function("gfp5_inverse", |b| {
        b.iter(|| black_box(w).inverse_or_zero())
    });
    g.bench_function("point_add", |b| b.iter(|| black_box(p) + black_box(p)));
    g.bench_function("point_double", |b| b.iter(|| black_box(p).double()));
    g.bench_function("point_decode", |b| b.iter(|| Point::decode(black_box(w))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
