//! The tick-walk circuit (SPEC 18.7): proving time of one chunk and of the merge above two
//! chunks, from which the ticks proven per second of one machine, aggregation included.
//!
//! `cargo bench -p rollup-prover --bench tick_walk` (set `TICK_WALK_LANES=100,400` to choose
//! chunk sizes; a lane is 32 ticks). Prints rows per chunk; criterion reports the times.
//! Per chunk of `n` lanes, ticks per second = `32 n / (chunk + merge / 1)` amortised over a
//! binary tree (one merge per chunk, docs/BENCHMARKS.md).
//!
//! Also measures the bare chain (one permutation and one decrement per tick, no lanes), the
//! floor any in-circuit walk pays (`tick_walk_bare/<steps>`).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use rollup_prover::circuits::chain::ChainMerge;
use rollup_prover::circuits::ticks::{
    plan_walks, walk_layout, TickWalkCircuit, WalkRecord, LANE_STEPS,
};
use rollup_prover::{C, D, F};
use state::account::{AccountIndex, Nonce};
use state::hash::{hash_no_pad, Digest};
use state::stream::chain::{walk, TAG_TICK};
use state::stream::{StreamId, StreamSlot};

fn list(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn stream(i: u32) -> StreamId {
    StreamId {
        payer: AccountIndex(1 + i),
        slot: StreamSlot(0),
        opened_at: Nonce::new(3).expect("u63"),
    }
}

/// Settlements of 600 ticks each (1,000 streams at 10 ticks per second for a minute settle
/// 600 ticks apiece), enough to fill `chunks` chunks of `lanes` lanes.
fn settlements(lanes: usize, chunks: usize) -> Vec<WalkRecord> {
    const TICKS: u32 = 600;
    let per_record = (TICKS as usize).div_ceil(LANE_STEPS);
    let n = (lanes * chunks) / per_record;
    (0..n as u32)
        .map(|i| {
            let id = stream(i);
            let seed = hash_no_pad(&[F::from_canonical_u32(i)]);
            let t_to = walk(&id, TICKS + 50, seed, TICKS);
            WalkRecord {
                id,
                to: TICKS,
                from: 0,
                t_to,
                head: walk(&id, TICKS, t_to, 0),
            }
        })
        .collect()
}

fn bench_chunks(c: &mut Criterion) {
    let mut g = c.benchmark_group("tick_walk");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    for lanes in list("TICK_WALK_LANES", "100,400") {
        let t = std::time::Instant::now();
        let circuit = TickWalkCircuit::build(lanes);
        let records = settlements(lanes, 2);
        let ticks: u32 = records.iter().map(|r| r.steps()).sum();
        let chunks = plan_walks(&records, lanes, 2).expect("honest walks");
        println!(
            "tick walk chunk of {lanes} lanes ({} ticks of capacity): {} rows, 2^{}, built in \
             {:?}; two chunks carry {ticks} ticks of {} settlements",
            lanes * LANE_STEPS,
            circuit.gates,
            circuit.data.common.degree_bits(),
            t.elapsed(),
            records.len()
        );
        g.bench_with_input(BenchmarkId::new("chunk", lanes), &lanes, |b, _| {
            b.iter(|| circuit.prove(&chunks[0]).expect("an honest chunk proves"))
        });
        let left = circuit.prove(&chunks[0]).expect("proves");
        let right = circuit.prove(&chunks[1]).expect("proves");
        let merge = ChainMerge::build(&circuit.data, walk_layout());
        println!(
            "merge of two {lanes}-lane chunks: 2^{} rows",
            merge.data.common.degree_bits()
        );
        g.bench_with_input(BenchmarkId::new("merge", lanes), &lanes, |b, _| {
            b.iter(|| merge.prove(&left, &right).expect("adjacent chunks merge"))
        });
    }
    g.finish();
}

struct Bare {
    data: CircuitData<F, C, D>,
    id: [Target; 2],
    top_k: Target,
    top: HashOutTarget,
}

/// `steps` chained chain steps and nothing else.
fn bare(steps: usize) -> Bare {
    let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let id = [b.add_virtual_target(), b.add_virtual_target()];
    let top_k = b.add_virtual_target();
    let top = b.add_virtual_hash();
    let tag = b.constant(F::from_canonical_u32(TAG_TICK));
    let one = b.one();
    let (mut k, mut x) = (top_k, top);
    for _ in 0..steps {
        let e = x.elements;
        x = b.hash_n_to_hash_no_pad::<PoseidonHash>(vec![
            id[0], id[1], k, tag, e[0], e[1], e[2], e[3],
        ]);
        k = b.sub(k, one);
    }
    b.register_public_inputs(&x.elements);
    Bare {
        data: b.build::<C>(),
        id,
        top_k,
        top,
    }
}

fn bench_bare(c: &mut Criterion) {
    let mut g = c.benchmark_group("tick_walk_bare");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    let id = stream(0);
    for steps in list("TICK_WALK_BARE_STEPS", "15200") {
        let circuit = bare(steps);
        println!(
            "bare chain of {steps} steps: 2^{} rows",
            circuit.data.common.degree_bits()
        );
        let top: Digest = hash_no_pad(&[F::ONE]);
        let k = steps as u32 + 5;
        let bottom = walk(&id, k, top, 5);
        g.bench_with_input(BenchmarkId::from_parameter(steps), &steps, |b, _| {
            b.iter(|| {
                let mut pw = PartialWitness::new();
                let [i0, i1] = id.to_field_elements();
                pw.set_target(circuit.id[0], i0).expect("fresh witness");
                pw.set_target(circuit.id[1], i1).expect("fresh witness");
                pw.set_target(circuit.top_k, F::from_canonical_u32(k))
                    .expect("fresh witness");
                pw.set_hash_target(circuit.top, top.into())
                    .expect("fresh witness");
                let proof = circuit.data.prove(pw).expect("an honest walk proves");
                assert_eq!(proof.public_inputs, bottom.elements().to_vec());
                proof
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_chunks, bench_bare);
criterion_main!(benches);
