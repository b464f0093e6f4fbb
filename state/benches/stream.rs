//! Payment-stream tick costs (SPEC 18.1), natively, on one core.
//!
//! Run with `cargo bench -p state --bench stream`. What it answers:
//!
//! - `tick_check`: what the node's relay spends per tick ([`TickCheck::check`] on the next
//!   tick: one Poseidon permutation and a comparison). Its inverse is one core's ceiling of
//!   ticks checked per second, the bound under the 100,000 ticks/s relay goal of issue 14.
//! - `tick_produce`: what a payer spends per tick when ticking in order (amortised over a
//!   64-tick segment of its chain).
//! - `chain_build/65536`: opening a stream of 2^16 ticks (the whole chain hashed once).
//! - `settle_walk/1024`: a settlement's chain walk over 1,024 ticks ([`Settle::claimed_head`]),
//!   the part of a settlement checked beside the signature.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use plonky2::field::types::Field;
use state::account::{AccountIndex, Nonce};
use state::hash::{hash_no_pad, F};
use state::stream::{Settle, StreamId, StreamSlot, TickChain, TickCheck, TickCount};

fn id() -> StreamId {
    StreamId {
        payer: AccountIndex(5),
        slot: StreamSlot(1),
        opened_at: Nonce::ZERO,
    }
}

fn bench_ticks(c: &mut Criterion) {
    const N: u32 = 1 << 16;
    let max = TickCount::new(N).expect("2^16 ticks");
    let seed = hash_no_pad(&[F::from_canonical_u64(7)]);
    let mut chain = TickChain::new(id(), max, seed);
    let ticks: Vec<_> = (1..=N).map(|k| chain.tick(k).expect("in range")).collect();

    let mut g = c.benchmark_group("stream");
    g.measurement_time(Duration::from_secs(10));

    g.throughput(Throughput::Elements(1));
    g.bench_function("tick_check", |b| {
        // A checker at a random point of the chain, checking the tick after it.
        let mut k = 0usize;
        b.iter_batched(
            || {
                k = (k + 7919) % (ticks.len() - 1);
                let t = &ticks[k];
                (TickCheck::new(id(), max, t.k, t.value), ticks[k + 1])
            },
            |(mut check, next)| check.check(&next).expect("the next tick checks"),
            BatchSize::SmallInput,
        )
    });

    g.bench_function("tick_produce", |b| {
        let mut payer = TickChain::new(id(), max, seed);
        let mut k = 0u32;
        b.iter(|| {
            k = k % N + 1;
            payer.tick(k).expect("in range")
        })
    });

    g.throughput(Throughput::Elements(u64::from(N)));
    g.sample_size(10);
    g.bench_function("chain_build/65536", |b| {
        b.iter(|| TickChain::new(id(), max, seed))
    });

    g.throughput(Throughput::Elements(1024));
    g.sample_size(20);
    let settle = Settle {
        payer: id().payer,
        slot: id().slot,
        from: TickCount::new(1000).expect("small"),
        to: TickCount::new(2024).expect("small"),
        value: ticks[2023].value,
    };
    g.bench_function("settle_walk/1024", |b| {
        b.iter(|| settle.claimed_head(Nonce::ZERO).expect("in range"))
    });
    g.finish();
}

criterion_group!(benches, bench_ticks);
criterion_main!(benches);
