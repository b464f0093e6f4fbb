//! The policy circuit (SPEC 20.4, 20.8): the rows an agent's spend adds to a payment slot, with
//! and without an allow-list, and the time to prove each shape on its own.
//!
//! `cargo bench -p rollup-prover --bench policy`. Prints each shape's rows (gates before padding:
//! the whole circuit but its public inputs) and the rows of the membership path; criterion
//! reports the proving time of one honest spend, verification excluded.

use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rollup_prover::circuits::policy::{PolicyCircuit, PolicyWitness};
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::apply::{BlockContext, State};
use state::crypto::schnorr::SecretKey;
use state::passport::{AllowList, Card, Payees, Policy, Spend};
use state::tx::{
    Deposit, Domain, PassportAction, Transaction, UnsignedPassportTx, UnsignedRegister,
};

const NOW: u64 = 1_700_000_000;

fn ts(v: u64) -> Timestamp {
    Timestamp::new(v).expect("time")
}
fn amt(v: u64) -> Amount {
    Amount::new(v).expect("amount")
}

/// Owner 1, payees 2 and 3, and the owner's agent 4 under a policy listing `allow`.
fn world(allow: Vec<AccountIndex>) -> State {
    let domain = Domain {
        chain_id: 31337,
        rollup: [0x22; 20],
    };
    let ctx = BlockContext::at(ts(NOW));
    let mut rng = StdRng::seed_from_u64(5);
    let mut s = State::genesis(domain, SecretKey::random(&mut rng).public_key());
    let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random(&mut rng)).collect();
    for k in &keys {
        let r: Transaction = UnsignedRegister {
            pubkey: k.public_key(),
            valid_until: ts(NOW + 100),
        }
        .sign(&domain, k)
        .into();
        s.apply(&r, &ctx).expect("register");
    }
    let d = Transaction::Deposit(Deposit {
        seq: 0,
        to: AccountIndex(1),
        amount: amt(10_000),
    });
    s.apply(&d, &ctx).expect("deposit");
    let delegate: Transaction = UnsignedPassportTx {
        owner: AccountIndex(1),
        action: PassportAction::Delegate {
            agent_key: SecretKey::random(&mut rng).public_key().into(),
            fund: amt(1_000),
            policy: Policy {
                cap: amt(500),
                window: 3600,
                max_payment: amt(100),
                max_fee: amt(5),
                expiry: ts(NOW + 100_000),
                allow: AllowList::new(allow).expect("list"),
                card: Card::default(),
            },
        },
        fee: amt(0),
        nonce: Nonce::ZERO,
        valid_until: ts(NOW + 100),
    }
    .sign(&domain, &keys[0])
    .into();
    s.apply(&delegate, &ctx).expect("delegate");
    s
}

fn bench(c: &mut Criterion) {
    let spend = Spend {
        value: amt(60),
        fee: amt(2),
        payees: Payees::One(AccountIndex(2)),
    };
    let mut group = c.benchmark_group("policy_prove");
    group.sample_size(20);
    for with_list in [false, true] {
        let circuit = PolicyCircuit::build(with_list);
        let allow = if with_list {
            (2..1026).map(AccountIndex).collect()
        } else {
            Vec::new()
        };
        let w =
            PolicyWitness::build(&world(allow), AccountIndex(4), &spend, ts(NOW)).expect("witness");
        let name = if with_list {
            "with_list"
        } else {
            "without_list"
        };
        println!(
            "policy {name}: {} rows ({} of them the membership path), degree 2^{}",
            circuit.gates,
            circuit.gates_of_list,
            circuit.data.common.degree_bits()
        );
        group.bench_function(name, |b| {
            b.iter(|| circuit.prove(&w).expect("prove"));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
