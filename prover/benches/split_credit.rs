//! The split-credit chain (SPEC 19.5): proving a full split of `n` payees as one chunk job.
//!
//! `cargo bench -p rollup-prover --bench split_credit` (set `SPLIT_PAYEES=64,1024` to choose
//! the sizes; each is a chunk of `n / 16` lanes of [`LANE_PAYEES`]). Prints each circuit's
//! rows per payee, degree and build time, and the peak resident memory of the process after
//! proving; criterion reports the proving time of one chunk holding one full split (every
//! slot live), verification excluded. `SPLIT_KIND=distribute` proves a revenue-share
//! distribution of `n` payees instead, with the chunk circuit built with shares (SPEC 19.5,
//! "Kinds").

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rollup_prover::circuits::split::{
    SplitChainBuilder, SplitChainCircuit, SplitChunkWitness, LANE_PAYEES,
};
use state::account::{AccountIndex, Amount, Timestamp};
use state::apply::{BlockContext, State};
use state::crypto::schnorr::SecretKey;
use state::split::{Payout, Shares, BPS_WHOLE};
use state::tx::{Deposit, Domain, Transaction, UnsignedRegister};

fn list(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Peak resident memory of this process so far (`VmHWM`), in MiB.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// A state with the operator and `n + 1` funded accounts; account 1 pays accounts 2..=n+1.
fn world(n: usize) -> (State, Vec<Payout>) {
    let domain = Domain {
        chain_id: 31337,
        rollup: [0x22; 20],
    };
    let ctx = BlockContext::at(Timestamp::new(1_700_000_000).expect("time"));
    let mut rng = StdRng::seed_from_u64(5);
    let mut s = State::genesis(domain, SecretKey::random(&mut rng).public_key());
    for i in 1..=n as u64 + 1 {
        let k = SecretKey::random(&mut rng);
        let r: Transaction = UnsignedRegister {
            pubkey: k.public_key(),
            valid_until: Timestamp::new(1_700_000_100).expect("time"),
        }
        .sign(&domain, &k)
        .into();
        s.apply(&r, &ctx).expect("register");
        let d = Transaction::Deposit(Deposit {
            seq: i - 1,
            to: AccountIndex(i as u32),
            amount: Amount::new(1_000 * i).expect("amount"),
        });
        s.apply(&d, &ctx).expect("deposit");
    }
    let parts = (2..=n as u32 + 1)
        .map(|i| Payout {
            to: AccountIndex(i),
            amount: Amount::new(u64::from(i)).expect("amount"),
        })
        .collect();
    (s, parts)
}

/// Shares of account 1 over the payees of `parts` (about equal points, the first the rest).
fn shares(parts: &[Payout]) -> Shares {
    let each = BPS_WHOLE / parts.len() as u16;
    let first = BPS_WHOLE - each * (parts.len() as u16 - 1);
    let points = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (p.to, if i == 0 { first } else { each }))
        .collect();
    Shares::new(AccountIndex(1), points).expect("valid shares")
}

fn split_credit(c: &mut Criterion) {
    let distribute = std::env::var("SPLIT_KIND").as_deref() == Ok("distribute");
    let mut group = c.benchmark_group(if distribute {
        "distribute_prove"
    } else {
        "split_credit_prove"
    });
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for n in list("SPLIT_PAYEES", "64,1024") {
        let started = Instant::now();
        let lanes = n.div_ceil(LANE_PAYEES);
        let circuit = if distribute {
            SplitChainCircuit::build_with_shares(lanes, LANE_PAYEES)
        } else {
            SplitChainCircuit::build(lanes, LANE_PAYEES)
        };
        let built = started.elapsed();
        let degree = circuit.data.common.degree_bits();
        println!(
            "split_credit/{n}: {} rows ({:.2} per payee), degree 2^{degree}, built in {:.1} s",
            circuit.gates,
            circuit.gates as f64 / n as f64,
            built.as_secs_f64()
        );
        let (mut state, parts) = world(n);
        let mut chain = SplitChainBuilder::new(LANE_PAYEES);
        if distribute {
            let total = Amount::new(987_654_321_987).expect("amount");
            chain
                .push_distribute(&mut state, &shares(&parts), total)
                .expect("witness");
        } else {
            chain
                .push(&mut state, AccountIndex(1), &parts)
                .expect("witness");
        }
        let w: SplitChunkWitness = chain.chunks(lanes, 1).remove(0);
        let proof = circuit.prove(&w).expect("an honest split proves");
        circuit.data.verify(proof).expect("and verifies");
        if let Some(mib) = peak_rss_mib() {
            println!("split_credit/{n}: peak resident memory so far {mib} MiB");
        }
        group.bench_with_input(BenchmarkId::from_parameter(n), &w, |b, w| {
            b.iter(|| circuit.prove(w).expect("proves"))
        });
    }
    group.finish();
}

criterion_group!(benches, split_credit);
criterion_main!(benches);
