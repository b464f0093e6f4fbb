//! State snapshot encode and decode at 1,000,000 accounts: the writer's pause when it takes a
//! snapshot (`encode_snapshot`) and the decode part of a restart (`decode_snapshot`, key index
//! rebuilt). Figures in docs/BENCHMARKS.md.
//!
//! Run with `cargo bench -p state --bench snapshot`. The state is built once, outside the timed
//! loops: a million keys registered (signed on all cores, applied as the node re-admits its
//! own log) and the tree brought up to date; that setup takes about a minute.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::SeedableRng;
use rayon::prelude::*;
use state::account::Timestamp;
use state::apply::{BlockContext, State, VerifiedTx};
use state::crypto::schnorr::SecretKey;
use state::tx::{Domain, Transaction, UnsignedRegister};

const ACCOUNTS: u64 = 1_000_000;
const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [7; 20],
};

fn build_state() -> State {
    let op = SecretKey::random(&mut rand::rngs::StdRng::seed_from_u64(0));
    let mut state = State::genesis(DOMAIN, op.public_key());
    let valid_until = Timestamp::new(1_000_000).expect("in range");
    let ctx = BlockContext::at(Timestamp::new(1).expect("in range"));
    let regs: Vec<Transaction> = (1..ACCOUNTS)
        .into_par_iter()
        .map(|i| {
            let key = SecretKey::random(&mut rand::rngs::StdRng::seed_from_u64(i));
            Transaction::Register(
                UnsignedRegister {
                    pubkey: key.public_key(),
                    valid_until,
                }
                .sign(&DOMAIN, &key),
            )
        })
        .collect();
    for tx in regs {
        let admitted =
            VerifiedTx::from_durable_log(tx, &DOMAIN, |_| None).expect("a register admits");
        state.apply_verified(admitted, &ctx).expect("fresh key");
    }
    state.root();
    state
}

fn bench_snapshot(c: &mut Criterion) {
    let mut state = build_state();
    let bytes = state.encode_snapshot();
    println!(
        "snapshot of {} accounts: {} bytes ({:.1} per account)",
        state.num_accounts(),
        bytes.len(),
        bytes.len() as f64 / state.num_accounts() as f64
    );
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("encode_1m_accounts", |b| b.iter(|| state.encode_snapshot()));
    group.bench_function("decode_1m_accounts", |b| {
        b.iter(|| State::decode_snapshot(&bytes, &DOMAIN).expect("decodes"))
    });
    group.finish();
}

criterion_group!(benches, bench_snapshot);
criterion_main!(benches);
