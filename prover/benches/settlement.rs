//! Proving time of the settlement circuits (docs/SPEC.md 13.7 to 13.9) at full capacity: the
//! diff circuit (8 records of existing accounts, 4 new accounts), the priority circuit (4
//! entries: deposits and a forced withdrawal) and the payout circuit (8 payouts).
//!
//! Then the settlement proof of a real one-leaf batch (K = 4: a credited and a refunded deposit,
//! a transfer and a withdraw) over the chunk shape the pipeline uses for it
//! ([`ChunkShape::for_leaf`]), and the three chunk proofs it needs beside the leaf. (The final
//! proof of a Poseidon digest it replaced was measured against it at fbb5aae; see
//! docs/BENCHMARKS.md.)
//!
//! `cargo bench -p rollup-prover --bench settlement`. Prints rows and degree per circuit;
//! criterion reports the proving time (docs/BENCHMARKS.md).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rollup_prover::circuits::diff::{diff_witness, DiffCircuit};
use rollup_prover::circuits::payment::PaymentCircuit;
use rollup_prover::circuits::payout::{payout_witness, PayoutCircuit};
use rollup_prover::circuits::priority::{priority_witness, PriorityCircuit};
use rollup_prover::circuits::settlement::{SettlementCircuit, SettlementInner, SettlementProofs};
use rollup_prover::circuits::trees::ChunkShape;
use rollup_prover::witness::leaf_witnesses;
use state::account::{Account, AccountIndex, Amount, Nonce, Timestamp};
use state::apply::{BlockContext, State};
use state::crypto::schnorr::SecretKey;
use state::diff::{BatchTouches, StateDiff};
use state::settlement::{settle_ops, Consumed, Payout, PriorityEntry, REFUND_FROM_BASE};
use state::tx::{
    Deposit, Domain, L1Address, Transaction, UnsignedRegister, UnsignedTransfer, UnsignedWithdraw,
};

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

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [0x42; 20],
};
const NOW: u64 = 1_700_000_000;

fn secret(seed: u64) -> SecretKey {
    SecretKey::random(&mut StdRng::seed_from_u64(seed))
}

fn ctx() -> BlockContext {
    BlockContext::at(Timestamp::new(NOW).expect("u63"))
}

fn amount(v: u64) -> Amount {
    Amount::new(v).expect("u63")
}

fn register(k: &SecretKey) -> Transaction {
    UnsignedRegister {
        pubkey: k.public_key(),
        valid_until: Timestamp::new(NOW + 10).expect("u63"),
    }
    .sign(&DOMAIN, k)
    .into()
}

fn deposit(seq: u64, to: u32, v: u64) -> Transaction {
    Transaction::Deposit(Deposit {
        seq,
        to: AccountIndex(to),
        amount: amount(v),
    })
}

fn depositor(_: u64) -> Option<L1Address> {
    Some(L1Address([0xd0; 20]))
}

fn bench_settlement(c: &mut Criterion) {
    const K: usize = 4;
    let (op, alice, bob) = (secret(1), secret(2), secret(3));
    let setup = || {
        let mut state = State::genesis(DOMAIN, op.public_key());
        for tx in [
            register(&alice),
            register(&bob),
            deposit(0, 1, 1000),
            deposit(1, 2, 50),
        ] {
            state.apply(&tx, &ctx()).expect("setup");
        }
        state
    };
    let mut state = setup();
    let txs: Vec<Transaction> = vec![
        deposit(2, 1, 70),
        deposit(3, 99, 5),
        UnsignedTransfer {
            from: AccountIndex(1),
            to: AccountIndex(2),
            amount: amount(100),
            fee: amount(2),
            nonce: Nonce::new(0).expect("u63"),
            valid_until: Timestamp::new(NOW + 60).expect("u63"),
        }
        .sign(&DOMAIN, &alice)
        .into(),
        UnsignedWithdraw {
            from: AccountIndex(2),
            to_l1: L1Address([0xa1; 20]),
            amount: amount(30),
            fee: amount(1),
            nonce: Nonce::new(0).expect("u63"),
            valid_until: Timestamp::new(NOW).expect("u63"),
        }
        .sign(&DOMAIN, &bob)
        .into(),
    ];
    // Native: ops, touched accounts, the diff and the settlement.
    let before = state.accounts().to_vec();
    let mut native = setup();
    let mut touches = BatchTouches::new(before.len() as u64);
    let mut ops = Vec::new();
    for tx in &txs {
        let fx = native.apply(tx, &ctx()).expect("valid batch");
        touches.absorb(&fx);
        ops.push(fx.pubdata);
    }
    let diff = touches.diff(&native).expect("diff");
    let settled = settle_ops(&ops, 2, depositor).expect("settled");

    let leaf = PaymentCircuit::build(K);
    let with_ctx: Vec<_> = txs.iter().map(|t| (t.clone(), ctx())).collect();
    let ws = leaf_witnesses(
        &mut state,
        &with_ctx,
        Timestamp::new(NOW).expect("u63"),
        K,
        1,
        &depositor,
    )
    .expect("witnesses");
    assert_eq!(ws.len(), 1, "one leaf");
    let range = leaf.prove(&ws[0]).expect("leaf proves");

    let shape = ChunkShape::for_leaf(K);
    let diff_c = DiffCircuit::build(shape.diff_old, shape.diff_new);
    let priority_c = PriorityCircuit::build(shape.priority);
    let payout_c = PayoutCircuit::build(shape.payout_depth);
    let (w, s) = diff_witness(&before, &diff, shape.diff_old, shape.diff_new).expect("diff");
    let diff_p = diff_c.prove(&w, &s).expect("diff proves");
    let queue = [0x5a; 32];
    let (w, s) = priority_witness(queue, 2, &settled.consumed, shape.priority).expect("priority");
    let priority_p = priority_c.prove(&w, &s).expect("priority proves");
    let (w, s) = payout_witness(7, &settled.payouts, shape.payout_depth).expect("payouts");
    let payout_p = payout_c.prove(&w, &s).expect("payouts prove");
    let settlement = SettlementCircuit::build(
        0,
        rollup_storage::DiffCircuitKind::V1,
        SettlementInner {
            range: &leaf.data,
            diff: &diff_c.data,
            priority: &priority_c.data,
            payout: &payout_c.data,
            splits: None,
            walks: None,
        },
    );
    println!(
        "shape for K = {K}: {shape:?}; diff 2^{}, priority 2^{}, payout 2^{}, settlement 2^{} rows",
        diff_c.data.common.degree_bits(),
        priority_c.data.common.degree_bits(),
        payout_c.data.common.degree_bits(),
        settlement.data.common.degree_bits()
    );
    let proofs = SettlementProofs {
        range: &range,
        diff: &diff_p,
        priority: &priority_p,
        payout: &payout_p,
        splits: None,
        walks: None,
    };

    let mut g = c.benchmark_group("settlement_batch");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(60));
    g.bench_function("settlement_k4", |b| {
        b.iter(|| settlement.prove(&proofs, &DOMAIN).expect("settles"))
    });
    let (proof, statement) = settlement.prove(&proofs, &DOMAIN).expect("settles");
    g.bench_function("verify_settlement_k4", |b| {
        b.iter(|| settlement.verify(&proof, &statement).expect("verifies"))
    });
    g.bench_function("diff_priority_payout_k4", |b| {
        b.iter(|| {
            let (w, s) =
                diff_witness(&before, &diff, shape.diff_old, shape.diff_new).expect("diff");
            diff_c.prove(&w, &s).expect("diff proves");
            let (w, s) =
                priority_witness(queue, 2, &settled.consumed, shape.priority).expect("priority");
            priority_c.prove(&w, &s).expect("priority proves");
            let (w, s) = payout_witness(7, &settled.payouts, shape.payout_depth).expect("payouts");
            payout_c.prove(&w, &s).expect("payouts prove")
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_settlement);
criterion_main!(benches);
