//! Proving time of the settlement circuits (docs/SPEC.md 13.7 to 13.9) at full capacity: the
//! diff circuit (8 records of existing accounts, 4 new accounts), the priority circuit (4
//! entries: deposits and a forced withdrawal) and the payout circuit (8 payouts).
//!
//! `cargo bench -p rollup-prover --bench settlement`. Prints rows and degree per circuit;
//! criterion reports the proving time (docs/BENCHMARKS.md).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rollup_prover::circuits::diff::{diff_witness, DiffCircuit};
use rollup_prover::circuits::payout::{payout_witness, PayoutCircuit};
use rollup_prover::circuits::priority::{priority_witness, PriorityCircuit};
use state::account::{Account, AccountIndex, Amount, Nonce};
use state::crypto::schnorr::SecretKey;
use state::diff::StateDiff;
use state::settlement::{Consumed, Payout, PriorityEntry, REFUND_FROM_BASE};
use state::tx::L1Address;

fn account(seed: u64, balance: u64) -> Account {
    let mut a = Account::new(SecretKey::random(&mut StdRng::seed_from_u64(seed)).public_key());
    a.balance = Amount::new(balance).expect("u63");
    a
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("settlement_prove");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));

    // Diff: 20 accounts before; 8 change, 4 are created.
    let before: Vec<Account> = (0..20).map(|i| account(i, 1_000 + i)).collect();
    let mut after = before.clone();
    for i in (1..17).step_by(2) {
        after[i].balance = Amount::new(7 * i as u64).expect("u63");
        after[i].nonce = Nonce::new(3).expect("u63");
    }
    after.extend((100..104).map(|s| account(s, 5)));
    let touched = (1..17).step_by(2).map(|i| AccountIndex(i as u32));
    let diff = StateDiff::from_accounts(&after, touched, 20).expect("diff");
    let circuit = DiffCircuit::build(8, 4);
    println!(
        "diff circuit 8 + 4: 2^{} rows",
        circuit.data.common.degree_bits()
    );
    let (w, s) = diff_witness(&before, &diff, 8, 4).expect("witness");
    g.bench_function("diff_8_plus_4", |b| {
        b.iter(|| circuit.prove(&w, &s).expect("honest diff proves"))
    });

    // Priority: three deposits (one refunded) and a forced withdrawal.
    let dep = |serial: u64, status: u8| Consumed {
        entry: PriorityEntry::Deposit {
            serial,
            depositor: L1Address([0xd0; 20]),
            recipient: 3,
            amount: 1_000_000,
        },
        status,
    };
    let mut tx = vec![3u8];
    tx.extend((1..129).map(|i| i as u8));
    let consumed = vec![
        dep(0, 0),
        dep(1, 1),
        Consumed {
            entry: PriorityEntry::ForcedWithdrawal {
                serial: 2,
                requested_at: 1_700_000_000,
                withdraw_tx: tx,
            },
            status: 0,
        },
        dep(3, 0),
    ];
    let circuit = PriorityCircuit::build(4);
    println!(
        "priority circuit 4 slots: 2^{} rows",
        circuit.data.common.degree_bits()
    );
    let (w, s) = priority_witness([0; 32], 0, &consumed, 4).expect("witness");
    g.bench_function("priority_4", |b| {
        b.iter(|| circuit.prove(&w, &s).expect("honest chain proves"))
    });

    // Payouts: six withdrawals and two refunds.
    let payouts: Vec<Payout> = (0..8u64)
        .map(|i| Payout {
            from: if i < 6 { i + 1 } else { REFUND_FROM_BASE + i },
            to: L1Address([i as u8 + 1; 20]),
            amount: 100 * (i + 1),
        })
        .collect();
    let circuit = PayoutCircuit::build(3);
    println!(
        "payout circuit 8 slots: 2^{} rows",
        circuit.data.common.degree_bits()
    );
    let (w, s) = payout_witness(7, &payouts, 3).expect("witness");
    g.bench_function("payout_8", |b| {
        b.iter(|| circuit.prove(&w, &s).expect("honest payouts prove"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
