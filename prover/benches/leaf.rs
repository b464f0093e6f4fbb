//! Leaf (payment circuit) proving time for several chunk sizes K, on transfers between
//! registered agents (every slot carries a real signature check).
//!
//! `cargo bench -p rollup-prover --bench leaf` (set `LEAF_BENCH_K=4,8,16` to choose sizes;
//! `LEAF_BENCH_STREAMS=1` also measures the circuit built with the stream kinds, SPEC 13.3.1,
//! `LEAF_BENCH_SHARES=1` the one with the revenue-share kinds, SPEC 19.6; a circuit's proving
//! time does not depend on the kinds its slots hold).
//! Prints rows per circuit and per slot; criterion reports the proving time per leaf, from
//! which the amortised time per payment is time / K (docs/BENCHMARKS.md).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rollup_prover::circuits::payment::{PaymentCircuit, PaymentKinds, PolicyChecks};
use rollup_prover::witness::{leaf_witnesses, LeafWitness};
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::apply::{BlockContext, State};
use state::crypto::schnorr::SecretKey;
use state::tx::{Deposit, Domain, Transaction, UnsignedRegister, UnsignedTransfer};

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [0x42; 20],
};
const NOW: u64 = 1_700_000_000;
const AGENTS: u32 = 8;

/// A state with `AGENTS` funded agents and one leaf of K signed transfers between them.
fn leaf_of_transfers(k: usize) -> LeafWitness {
    let ctx = BlockContext::at(Timestamp::new(NOW).expect("u63"));
    let key = |i: u64| SecretKey::random(&mut StdRng::seed_from_u64(i));
    let mut state = State::genesis(DOMAIN, key(0).public_key());
    let until = Timestamp::new(NOW + 3600).expect("u63");
    for i in 1..=AGENTS {
        let reg: Transaction = UnsignedRegister {
            pubkey: key(i as u64).public_key(),
            valid_until: until,
        }
        .sign(&DOMAIN, &key(i as u64))
        .into();
        state.apply(&reg, &ctx).expect("register");
        let dep = Transaction::Deposit(Deposit {
            seq: (i - 1) as u64,
            to: AccountIndex(i),
            amount: Amount::new(1_000_000).expect("u63"),
        });
        state.apply(&dep, &ctx).expect("deposit");
    }
    let mut nonces = vec![0u64; AGENTS as usize + 1];
    let txs: Vec<(Transaction, BlockContext)> = (0..k)
        .map(|j| {
            let from = 1 + (j as u32 % AGENTS);
            let to = 1 + ((j as u32 + 3) % AGENTS);
            let nonce = nonces[from as usize];
            nonces[from as usize] += 1;
            let tx: Transaction = UnsignedTransfer {
                from: AccountIndex(from),
                to: AccountIndex(to),
                amount: Amount::new(10 + j as u64).expect("u63"),
                fee: Amount::new(1).expect("u63"),
                nonce: Nonce::new(nonce).expect("u63"),
                valid_until: until,
            }
            .sign(&DOMAIN, &key(from as u64))
            .into();
            (tx, ctx)
        })
        .collect();
    let depositor = |_| Some(state::tx::L1Address([0xd0; 20]));
    let mut leaves =
        leaf_witnesses(&mut state, &txs, ctx.timestamp, k, 0, &depositor).expect("valid");
    assert_eq!(leaves.len(), 1);
    leaves.remove(0)
}

fn sizes() -> Vec<usize> {
    std::env::var("LEAF_BENCH_K")
        .unwrap_or_else(|_| "4,8,16".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("leaf_prove");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    let on = |var: &str| std::env::var(var).is_ok_and(|v| v == "1");
    let mut variants = vec![("plain", PaymentKinds::default())];
    if on("LEAF_BENCH_STREAMS") {
        let kinds = PaymentKinds {
            streams: true,
            ..PaymentKinds::default()
        };
        variants.push(("streams", kinds));
    }
    if on("LEAF_BENCH_SHARES") {
        let kinds = PaymentKinds {
            shares: true,
            ..PaymentKinds::default()
        };
        variants.push(("shares", kinds));
    }
    if on("LEAF_BENCH_POLICIES") {
        for (name, policies) in [
            ("policies", PolicyChecks::Plain),
            ("policies-lists", PolicyChecks::WithLists),
        ] {
            let kinds = PaymentKinds {
                policies,
                ..PaymentKinds::default()
            };
            variants.push((name, kinds));
        }
    }
    for k in sizes() {
        for &(name, kinds) in &variants {
            let t = std::time::Instant::now();
            let circuit = PaymentCircuit::build_kinds(k, kinds);
            println!(
                "payment circuit ({name}) K={k}: 2^{} rows, {} rows per slot, built in {:?}",
                circuit.data.common.degree_bits(),
                circuit.gates_per_slot,
                t.elapsed()
            );
            let w = leaf_of_transfers(k);
            let id = match name {
                "plain" => BenchmarkId::from_parameter(k),
                _ => BenchmarkId::new(name, k),
            };
            g.bench_with_input(id, &k, |b, _| {
                b.iter(|| circuit.prove(&w).expect("honest leaf proves"))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
