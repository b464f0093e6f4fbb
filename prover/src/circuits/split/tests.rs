//! The split-credit circuit from the attacker's side: every witness below is built by hand
//! around the native checks (the builder applies no rule of 19.1), and each is refused by the
//! rule named, without a proof.

use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::SeedableRng;
use state::account::{Amount, Timestamp, MAX_U63};
use state::apply::BlockContext;
use state::crypto::schnorr::SecretKey;
use state::tx::{Deposit, Domain, Transaction, UnsignedRegister};

use super::*;

/// Payee slots per circuit in these tests.
const CAPACITY: usize = 4;

fn circuit() -> &'static SplitCreditCircuit {
    static C: OnceLock<SplitCreditCircuit> = OnceLock::new();
    C.get_or_init(|| SplitCreditCircuit::build(CAPACITY))
}

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [0x11; 20],
};

fn ctx() -> BlockContext {
    BlockContext::at(Timestamp::new(1_700_000_000).unwrap())
}

/// The operator and accounts 1..=6, account `i` holding `100 x i`; account 6 holds almost
/// 2^63 - 1.
fn world() -> State {
    let mut rng = StdRng::seed_from_u64(7);
    let op = SecretKey::random(&mut rng);
    let mut s = State::genesis(DOMAIN, op.public_key());
    for i in 1..=6u64 {
        let k = SecretKey::random(&mut rng);
        let r: Transaction = UnsignedRegister {
            pubkey: k.public_key(),
            valid_until: Timestamp::new(1_700_000_100).unwrap(),
        }
        .sign(&DOMAIN, &k)
        .into();
        s.apply(&r, &ctx()).unwrap();
        let amount = if i == 6 { MAX_U63 - 10 } else { 100 * i };
        let d = Transaction::Deposit(Deposit {
            seq: i - 1,
            to: AccountIndex(i as u32),
            amount: Amount::new(amount).unwrap(),
        });
        s.apply(&d, &ctx()).unwrap();
    }
    s
}

fn part(to: u32, amount: u64) -> Payout {
    Payout {
        to: AccountIndex(to),
        amount: Amount::new(amount).unwrap(),
    }
}

fn witness(parts: &[Payout]) -> SplitCreditWitness {
    SplitCreditWitness::build(&mut world(), AccountIndex(1), parts, CAPACITY).unwrap()
}

/// Proves and verifies, or the refusal's message.
fn try_prove(w: &SplitCreditWitness) -> Result<ProofWithPublicInputs<F, C, D>, String> {
    let c = circuit();
    crate::circuits::refusal::prove_and_verify(&c.data, || c.prove(w))
}

/// `w` is refused by `rule` (at `slot`, `None` for the statement).
fn assert_refused(w: &SplitCreditWitness, slot: Option<usize>, rule: SplitRule) {
    let err = try_prove(w).expect_err("a broken witness must not prove");
    assert_eq!(
        circuit().refused_by(&err),
        Some(SplitRefusal { slot, rule }),
        "{err}"
    );
}

#[test]
fn a_split_is_credited_as_the_state_would() {
    let parts = [part(2, 30), part(3, 7), part(5, 1)];
    let w = witness(&parts);
    let proof = try_prove(&w).expect("an honest split proves");
    let s = statement_of(&proof).unwrap();
    assert_eq!(s, w.statement);
    assert_eq!((s.n, s.sum), (3, 38));
    assert_eq!(s.parts_digest, parts_digest(&parts));
    // The same credits applied natively (as deposits: balance only) give the same root.
    let mut native = world();
    assert_eq!(native.root(), s.root_in);
    for (i, p) in parts.iter().enumerate() {
        let d = Transaction::Deposit(Deposit {
            seq: 6 + i as u64,
            to: p.to,
            amount: p.amount,
        });
        native.apply(&d, &ctx()).unwrap();
    }
    assert_eq!(native.root(), s.root_out);
    // A full circuit (no padding) proves too.
    let full = [part(0, 1), part(2, 2), part(3, 3), part(4, 4)];
    try_prove(&witness(&full)).expect("four payees in four slots");
}

#[test]
fn bad_parts_are_refused_by_their_rule() {
    // The rules of SPEC 19.1 the builder does not check, each by hand.
    assert_refused(
        &witness(&[part(3, 5), part(2, 5)]),
        Some(1),
        SplitRule::PayeesNotSorted,
    );
    assert_refused(
        &witness(&[part(2, 5), part(2, 5)]),
        Some(1),
        SplitRule::PayeesNotSorted,
    );
    assert_refused(
        &witness(&[part(2, 5), part(3, 0)]),
        Some(1),
        SplitRule::ZeroPart,
    );
    assert_refused(&witness(&[part(1, 5)]), Some(0), SplitRule::SelfPayee);
    assert_refused(
        &witness(&[part(2, 5), part(6, 11)]),
        Some(1),
        SplitRule::BalanceOverflow,
    );
    let big = 1u64 << 62;
    assert_refused(
        &witness(&[part(2, big), part(3, big)]),
        None,
        SplitRule::SplitOverflow,
    );
    // Parts whose sum is p plus a small total: it must not pass as its remainder mod p.
    let p = 0xffff_ffff_0000_0001u64;
    let large = 3u64 << 61;
    let rest = p - 2 * large + 5;
    assert_refused(
        &witness(&[part(2, large), part(3, large), part(4, rest)]),
        None,
        SplitRule::SplitOverflow,
    );
}

#[test]
fn tampered_slots_are_refused_by_their_rule() {
    let honest = witness(&[part(2, 30), part(3, 7)]);
    // Padding that credits someone.
    let mut w = honest.clone();
    w.slots[3].amount = 5;
    assert_refused(&w, Some(3), SplitRule::Padding);
    // A live slot after a padding slot (an extra payee hidden from `n`).
    let mut w = honest.clone();
    w.slots[3].live = true;
    assert_refused(&w, Some(3), SplitRule::LivePrefix);
    // A payee richer than the state says, or one that does not exist (an empty index dressed
    // as an account): in the last slot of a full split, with the statement claiming the root
    // that the tampered leaf gives, so that only the path can refuse it.
    let full = witness(&[part(0, 1), part(2, 2), part(3, 3), part(4, 4)]);
    let claim_tampered_root = |w: &mut SplitCreditWitness| {
        let slot = &w.slots[3];
        let mut after = slot.access.account.unwrap();
        after.balance += slot.amount;
        let mut cur = after.leaf();
        for (l, sib) in slot.access.siblings.iter().enumerate() {
            cur = if (slot.access.index >> l) & 1 == 0 {
                state::hash::two_to_one(cur, *sib)
            } else {
                state::hash::two_to_one(*sib, cur)
            };
        }
        w.statement.root_out = cur;
    };
    let mut w = full.clone();
    if let Some(a) = w.slots[3].access.account.as_mut() {
        a.balance += 1_000;
    }
    claim_tampered_root(&mut w);
    assert_refused(&w, Some(3), SplitRule::Path);
    let mut w = full.clone();
    let siblings = world().proof(AccountIndex(40)).siblings.to_vec();
    w.slots[3].access.index = 40;
    w.slots[3].access.siblings = siblings;
    w.statement.parts_digest = parts_digest(&[part(0, 1), part(2, 2), part(3, 3), part(40, 4)]);
    claim_tampered_root(&mut w);
    assert_refused(&w, Some(3), SplitRule::Path);
}

#[test]
fn a_statement_other_than_the_credits_is_refused() {
    let honest = witness(&[part(2, 30), part(3, 7)]);
    let claims: [fn(&mut SplitCreditStatement); 4] = [
        |s| s.sum += 1,
        |s| s.n = 1,
        |s| s.parts_digest = parts_digest(&[part(2, 30), part(3, 8)]),
        |s| s.root_out = s.root_in,
    ];
    for claim in claims {
        let mut w = honest.clone();
        claim(&mut w.statement);
        assert_refused(&w, None, SplitRule::Statement);
    }
}

#[test]
fn rows_per_payee() {
    let one = SplitCreditCircuit::build(1);
    let nine = SplitCreditCircuit::build(9);
    let per_payee = (nine.gates - one.gates) as f64 / 8.0;
    println!(
        "split credits: {per_payee} rows per payee (slot 2 alone {} rows); one slot alone {} rows",
        nine.gates_per_payee, one.gates
    );
    // Deterministic counts: a regression guard, not a speed claim.
    assert!(per_payee <= 80.0, "{per_payee} rows per payee");
}
