//! The policy circuit from the attacker's side: every witness below is built by hand past the
//! native rules (the attacker recomputes the `ext` it claims, so that only the targeted rule can
//! fail), and each is refused by the rule named, without a proof.

use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::SeedableRng;
use state::account::{AccountIndex, Amount, Timestamp, MAX_U63};
use state::apply::BlockContext;
use state::apply::State;
use state::crypto::schnorr::SecretKey;
use state::hash::Digest;
use state::passport::{charge, Payees, Spend};
use state::passport::{AllowList, Card, Policy};
use state::split::Payout;
use state::tx::{
    Deposit, Domain, PassportAction, Transaction, UnsignedPassportTx, UnsignedRegister,
};

use super::*;

fn circuit(with_list: bool) -> &'static PolicyCircuit {
    static PLAIN: OnceLock<PolicyCircuit> = OnceLock::new();
    static LISTED: OnceLock<PolicyCircuit> = OnceLock::new();
    if with_list {
        LISTED.get_or_init(|| PolicyCircuit::build(true))
    } else {
        PLAIN.get_or_init(|| PolicyCircuit::build(false))
    }
}

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [0x11; 20],
};
const NOW: u64 = 1_700_000_000;
const AGENT: AccountIndex = AccountIndex(4);
const BOB: AccountIndex = AccountIndex(2);
const CAROL: AccountIndex = AccountIndex(3);

fn ts(v: u64) -> Timestamp {
    Timestamp::new(v).unwrap()
}
fn amt(v: u64) -> Amount {
    Amount::new(v).unwrap()
}

/// The operator, alice (1, the owner, 10,000), bob (2), carol (3), and alice's agent (4) funded
/// with 1,000 under a cap of 500 per hour, 100 per payment, fee 5, and `allow`.
fn world(allow: Vec<AccountIndex>) -> State {
    let mut rng = StdRng::seed_from_u64(9);
    let op = SecretKey::random(&mut rng);
    let mut s = State::genesis(DOMAIN, op.public_key());
    let ctx = BlockContext::at(ts(NOW));
    let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random(&mut rng)).collect();
    for k in &keys {
        let r: Transaction = UnsignedRegister {
            pubkey: k.public_key(),
            valid_until: ts(NOW + 100),
        }
        .sign(&DOMAIN, k)
        .into();
        s.apply(&r, &ctx).unwrap();
    }
    let d = Transaction::Deposit(Deposit {
        seq: 0,
        to: AccountIndex(1),
        amount: amt(10_000),
    });
    s.apply(&d, &ctx).unwrap();
    let agent = SecretKey::random(&mut rng);
    let delegate: Transaction = UnsignedPassportTx {
        owner: AccountIndex(1),
        action: PassportAction::Delegate {
            agent_key: agent.public_key().into(),
            fund: amt(1_000),
            policy: Policy {
                cap: amt(500),
                window: 3600,
                max_payment: amt(100),
                max_fee: amt(5),
                expiry: ts(NOW + 100_000),
                allow: AllowList::new(allow).unwrap(),
                card: Card::new([3; 32], "https://a.example/card".into()).unwrap(),
            },
        },
        fee: amt(0),
        nonce: state::account::Nonce::ZERO,
        valid_until: ts(NOW + 100),
    }
    .sign(&DOMAIN, &keys[0])
    .into();
    assert_eq!(s.apply(&delegate, &ctx).unwrap().registered, Some(AGENT));
    s
}

fn spend(value: u64, fee: u64, to: AccountIndex) -> Spend<'static> {
    Spend {
        value: amt(value),
        fee: amt(fee),
        payees: Payees::One(to),
    }
}

fn honest(allow: Vec<AccountIndex>, s: &Spend<'_>) -> PolicyWitness {
    PolicyWitness::build(&world(allow), AGENT, s, ts(NOW)).unwrap()
}

/// The `ext` of the witnessed parts with the passport `(revoked, window_id, spent)`, as the
/// circuit hashes it.
fn ext(w: &PolicyWitness, revoked: u64, window_id: u64, spent: u64) -> Digest {
    let passport = PassportOpening {
        revoked,
        window_id,
        spent,
        ..w.passport.clone()
    };
    let profile = state::ext::Profile {
        shares: w.shares,
        passport: passport.digest(),
        lanes: w.lanes,
    };
    state::ext::ext_digest(w.streams_root, profile.digest())
}

/// Recomputes what the attacker claims: `ext_before` of the tampered parts, the window split of
/// the claimed time (unless `keep_window`), and `ext_after` by the circuit's formula, wrapping.
fn reseal(w: &mut PolicyWitness, keep_window: bool) {
    let t = w.statement.spend.time;
    if !keep_window {
        (w.passport.q, w.passport.r) = match w.passport.policy.window {
            0 => (0, t),
            win => (t / win, t % win),
        };
    }
    w.statement.ext_before = ext(
        w,
        w.passport.revoked,
        w.passport.window_id,
        w.passport.spent,
    );
    let s = &w.statement.spend;
    let after = w.passport.charged(s.value, s.fee);
    w.statement.ext_after = ext(w, 0, after.window_id, after.spent);
}

fn try_prove(w: &PolicyWitness, with_list: bool) -> Result<(), String> {
    let c = circuit(with_list);
    crate::circuits::refusal::prove_and_verify(&c.data, || c.prove(w)).map(|_| ())
}

fn assert_refused(w: &PolicyWitness, with_list: bool, rule: PolicyRule) {
    let err = try_prove(w, with_list).expect_err("a broken witness must not prove");
    assert_eq!(
        circuit(with_list).refused_by(&err),
        Some(rule),
        "refused for another reason: {err}"
    );
}

#[test]
fn honest_spends_prove_in_both_shapes_and_state_the_native_ext() {
    let w = honest(vec![], &spend(60, 2, BOB));
    try_prove(&w, false).unwrap();
    try_prove(&w, true).unwrap();
    // The resealed statement is the native one: the formula above is the state's.
    let mut again = w.clone();
    reseal(&mut again, false);
    assert_eq!(again, w);
    let listed = honest(vec![BOB, CAROL], &spend(60, 2, CAROL));
    assert!(listed.passport.membership.is_some());
    try_prove(&listed, true).unwrap();
    // A settlement pays nobody new: no path needed, even under a list.
    let settle = Spend::fee_only(amt(1));
    let w = PolicyWitness::build(&world(vec![BOB]), AGENT, &settle, ts(NOW)).unwrap();
    try_prove(&w, false).unwrap();
}

#[test]
fn a_revoked_agent_cannot_spend() {
    let mut w = honest(vec![], &spend(10, 0, BOB));
    w.passport.revoked = 1;
    reseal(&mut w, false);
    assert_refused(&w, false, PolicyRule::Revoked);
}

#[test]
fn an_expired_policy_refuses_the_spend() {
    let mut w = honest(vec![], &spend(10, 0, BOB));
    w.statement.spend.time = w.passport.policy.expiry + 1;
    reseal(&mut w, false);
    assert_refused(&w, false, PolicyRule::PolicyExpired);
}

#[test]
fn a_fee_or_a_payment_above_its_maximum_is_refused() {
    let mut w = honest(vec![], &spend(10, 0, BOB));
    w.statement.spend.fee = w.passport.policy.max_fee + 1;
    reseal(&mut w, false);
    assert_refused(&w, false, PolicyRule::PolicyFee);
    let mut w = honest(vec![], &spend(10, 0, BOB));
    w.statement.spend.value = w.passport.policy.max_payment + 1;
    reseal(&mut w, false);
    assert_refused(&w, false, PolicyRule::PolicyPayment);
}

#[test]
fn payments_that_add_up_past_the_cap_are_refused_and_sums_cannot_wrap() {
    // Earlier payments of this window have spent 450 of 500: 60 more does not fit.
    let mut w = honest(vec![], &spend(60, 0, BOB));
    w.passport.window_id = w.passport.q;
    w.passport.spent = 450;
    reseal(&mut w, true);
    assert_refused(&w, false, PolicyRule::PolicyCap);
    // Under a huge cap and maximum, a spent amount plus a payment past 2^63 - 1 must not pass
    // as its remainder.
    let mut w = honest(vec![], &spend(60, 0, BOB));
    w.passport.policy.cap = MAX_U63;
    w.passport.policy.max_payment = MAX_U63;
    w.passport.window_id = w.passport.q;
    w.passport.spent = MAX_U63 - 10;
    w.statement.spend.value = 20;
    reseal(&mut w, true);
    // The attacker claims the sum the limbs leave past the bound (x + y - 2^63), so that only
    // the cap can refuse it.
    w.statement.ext_after = ext(&w, 0, w.passport.q, MAX_U63 - 10 + 20 - (1 << 63));
    assert_refused(&w, false, PolicyRule::PolicyCap);
}

#[test]
fn a_false_window_cannot_reset_what_was_spent() {
    // Spent 450 in this window; claiming the previous window would restart from 0.
    let mut w = honest(vec![], &spend(60, 0, BOB));
    w.passport.window_id = w.passport.q;
    w.passport.spent = 450;
    w.passport.q -= 1;
    w.passport.r += w.passport.policy.window;
    reseal(&mut w, true);
    assert_refused(&w, false, PolicyRule::Window);
    // A lifetime cap has one window, 0.
    let mut w = honest(vec![], &spend(60, 0, BOB));
    w.passport.policy.window = 0;
    w.passport.q = 1;
    w.passport.r = w.statement.spend.time;
    reseal(&mut w, true);
    assert_refused(&w, false, PolicyRule::Window);
}

#[test]
fn a_payee_off_the_list_or_a_withdrawal_under_a_list_is_refused() {
    // Carol is not listed: bob's path does not lead to the root for her.
    let mut w = honest(vec![BOB], &spend(10, 0, BOB));
    w.statement.spend.payee = CAROL.0;
    reseal(&mut w, false);
    assert_refused(&w, true, PolicyRule::PolicyPayee);
    // The shape without a path cannot pay an account under a list.
    let w = honest(vec![BOB], &spend(10, 0, BOB));
    assert_refused(&w, false, PolicyRule::PolicyPayee);
    // A withdrawal to L1 under a list.
    let mut w = honest(vec![BOB], &spend(10, 0, BOB));
    w.statement.spend.pays_account = false;
    w.statement.spend.to_l1 = true;
    w.passport.membership = None;
    reseal(&mut w, false);
    assert_refused(&w, true, PolicyRule::PolicyPayee);
}

#[test]
fn a_split_under_a_list_is_refused_even_to_listed_payees() {
    let parts = [Payout {
        to: BOB,
        amount: amt(10),
    }];
    let split = Spend {
        value: amt(10),
        fee: amt(0),
        payees: Payees::Parts(&parts),
    };
    // Without a list, a split proves (the flag alone refuses nothing).
    let w = honest(vec![], &split);
    assert!(w.statement.spend.pays_many);
    circuit(false).prove(&w).unwrap();
    // Under a list naming its one payee: the native rules refuse it (POLICY_PAYEE), so the
    // attacker turns bob's honest transfer into the split, with bob's path kept.
    assert_eq!(
        charge(world(vec![BOB]).passport(AGENT).unwrap(), &split, ts(NOW))
            .unwrap_err()
            .code(),
        "POLICY_PAYEE"
    );
    for with_path in [true, false] {
        let mut w = honest(vec![BOB], &spend(10, 0, BOB));
        w.statement.spend.pays_account = false;
        w.statement.spend.pays_many = true;
        if !with_path {
            w.passport.membership = None;
        }
        reseal(&mut w, false);
        assert_refused(&w, with_path, PolicyRule::PolicyPayee);
    }
}

#[test]
fn a_false_statement_is_refused() {
    // The ext left behind claims nothing was spent.
    let mut w = honest(vec![], &spend(60, 0, BOB));
    w.statement.ext_after = ext(&w, 0, w.passport.q, 0);
    assert_refused(&w, false, PolicyRule::Statement);
    // A passport that is not the committed one (a higher cap).
    let mut w = honest(vec![], &spend(60, 0, BOB));
    w.passport.policy.cap = 1_000_000;
    assert_refused(&w, false, PolicyRule::Statement);
}
