//! The chain's registration and distribution kinds (SPEC 19.5, "Kinds"), honest and from the
//! attacker's side: each bad witness is built by hand past the native rules ([`Shares`] would
//! refuse it) and refused by the rule named.

use std::sync::OnceLock;

use state::split::{shares_chain, shares_digest_of, Shares, BPS_WHOLE};

use super::*;

/// The circuit with the kinds, of the tests' shape.
fn circuit() -> &'static SplitChainCircuit {
    static C: OnceLock<SplitChainCircuit> = OnceLock::new();
    C.get_or_init(|| SplitChainCircuit::build_with_shares(LANES, M))
}

fn try_prove(w: &SplitChunkWitness) -> Result<ProofWithPublicInputs<F, C, D>, String> {
    try_prove_on(circuit(), w)
}

fn assert_refused(w: &SplitChunkWitness, lane: usize, slot: Option<usize>, rule: SplitRule) {
    assert_refused_on(circuit(), w, lane, slot, rule)
}

/// Account 1's shares: five payees, so a run takes two lanes of four.
fn shares() -> Shares {
    let parts = [(2, 4_000), (3, 2_501), (5, 1_999), (7, 1_000), (9, 500)];
    Shares::new(
        AccountIndex(1),
        parts
            .iter()
            .map(|&(to, bps)| (AccountIndex(to), bps))
            .collect(),
    )
    .unwrap()
}

/// The slot values of a distribution of `total` by `shares()`, to tamper with.
fn payouts(total: u64) -> Vec<Value> {
    let s = shares();
    s.split(Amount::new(total).unwrap())
        .iter()
        .zip(s.parts())
        .map(|(p, &(to, bps))| Value {
            to,
            amount: p.amount.get(),
            bps,
        })
        .collect()
}

/// One chunk of a distribution of `total` from account 1 with these slot values.
fn distribution(total: u64, values: &[Value]) -> SplitChunkWitness {
    let mut chain = SplitChainBuilder::new(M);
    chain
        .push_distribution(&mut world(), AccountIndex(1), total, values)
        .unwrap();
    chain.chunks(LANES, 1).remove(0)
}

#[test]
fn registrations_and_distributions_are_proven_as_the_state_would() {
    // A registration (two lanes), then a distribution (two lanes) across a chunk boundary.
    let mut state = world();
    let s = shares();
    let mut chain = SplitChainBuilder::new(M);
    let root = state.root();
    let register = chain.push_register(&mut state, &s).unwrap();
    assert_eq!(register.kind, SplitKind::Register);
    assert_eq!(
        (register.root_before, register.root_after),
        (root, root),
        "a registration credits nothing"
    );
    assert_eq!((register.n, register.sum), (5, u64::from(BPS_WHOLE)));
    // The leaf binds the profile to the record: H(TAG_SHARES, n, chain).
    assert_eq!(register.parts_digest, shares_chain(s.parts()));
    assert_eq!(shares_digest_of(5, register.parts_digest), s.digest());

    // The owner's debit of its balance (the leaf's) happens before the payouts.
    let total = 1_000_003;
    let distribute = chain
        .push_distribute(&mut state, &s, Amount::new(total).unwrap())
        .unwrap();
    // (The builder left the state as it was: credit the payouts natively now.)
    for p in s.split(Amount::new(total).unwrap()) {
        credit(&mut state, p.to, p.amount.get());
    }
    assert_eq!(distribute.kind, SplitKind::Distribute);
    assert_eq!(
        (distribute.root_before, distribute.root_after),
        (root, state.root())
    );
    assert_eq!(distribute.sum, total);
    assert_eq!(distribute.parts_digest, register.parts_digest);
    assert_ne!(
        distribute.absorb(Digest::ZERO),
        register.absorb(Digest::ZERO),
        "the kind is in the record"
    );

    let chunks = chain.chunks(LANES, 1);
    assert_eq!(chunks.len(), 2);
    let mut acc = Digest::ZERO;
    for w in &chunks {
        let proof = try_prove(w).expect("an honest chunk proves");
        let st = SplitStatement::from_public_inputs(&proof.public_inputs).unwrap();
        assert_eq!(st.acc_in, acc);
        acc = st.acc_out;
    }
    assert_eq!(
        acc,
        distribute.absorb(register.absorb(Digest::ZERO)),
        "both records, folded in order"
    );
    // The chunk boundary falls inside the distribution: its kind and total are carried.
    let carried = chunks[0].statement.carry_out.expect("open at the boundary");
    assert_eq!(
        (carried.kind, carried.total),
        (SplitKind::Distribute, total)
    );
}

#[test]
fn bad_registrations_and_distributions_are_refused_by_their_rule() {
    let total = 1_000_003;
    // Payee 2 (slot 1) gets a unit more, taken from payee 1, so the sum still holds: its
    // remainder is negative.
    let mut v = payouts(total);
    v[0].amount -= 1;
    v[1].amount += 1;
    assert_refused(&distribution(total, &v), 0, Some(1), SplitRule::Rounding);
    // A unit less for payee 3 (slot 2), given to payee 1: a remainder of 10,000 or more.
    let mut v = payouts(total);
    v[0].amount += 1;
    v[2].amount -= 1;
    assert_refused(&distribution(total, &v), 0, Some(2), SplitRule::Rounding);
    // Points past 2^14 for payee 4 (slot 3) with the amount that matches them.
    let mut v = payouts(total);
    v[3].bps = 1 << BPS_BITS;
    v[3].amount = total * u64::from(v[3].bps) / u64::from(BPS_WHOLE);
    assert_refused(&distribution(total, &v), 0, Some(3), SplitRule::Rounding);
    // The first payee takes more than the rest: the payouts exceed the total.
    let mut v = payouts(total);
    v[0].amount += 1;
    assert_refused(&distribution(total, &v), 1, None, SplitRule::WrongTotal);
    // An honest distribution of the same values proves (the tampering is what is refused).
    try_prove(&distribution(total, &payouts(total))).expect("honest");

    let points = |bps: [u64; 2]| -> Vec<Value> {
        [2, 3]
            .into_iter()
            .zip(bps)
            .map(|(to, amount)| Value {
                to: AccountIndex(to),
                amount,
                bps: 0,
            })
            .collect()
    };
    let registration = |values: &[Value]| {
        let mut chain = SplitChainBuilder::new(M);
        chain
            .push_registration(&mut world(), AccountIndex(1), values)
            .unwrap();
        chain.chunks(LANES, 1).remove(0)
    };
    assert_refused(
        &registration(&points([5_000, 4_999])),
        0,
        None,
        SplitRule::SharesNotWhole,
    );
    assert_refused(
        &registration(&points([10_000, 0])),
        0,
        Some(1),
        SplitRule::ZeroPart,
    );
    try_prove(&registration(&points([5_000, 5_000]))).expect("honest");

    // A registration that credits its payees: the lanes of a split payment of the points,
    // relabelled. The circuit credits nothing, so the next payee's path (written over the
    // credited tree) is not under its root.
    let mut chain = SplitChainBuilder::new(M);
    let parts = [part(2, 5_000), part(3, 5_000)];
    chain.push(&mut world(), AccountIndex(1), &parts).unwrap();
    let mut w = chain.chunks(LANES, 1).remove(0);
    w.lanes[0].kind = SplitKind::Register;
    assert_refused(&w, 0, Some(1), SplitRule::Path);
}

#[test]
fn a_circuit_without_the_kinds_takes_no_registration() {
    // The circuit of the other tests (split payments only) has no targets for the kinds:
    // its witness is refused before proving, and its records are all of kind 0.
    let mut chain = SplitChainBuilder::new(M);
    chain.push_register(&mut world(), &shares()).unwrap();
    let w = chain.chunks(LANES, 1).remove(0);
    let err = super::circuit()
        .prove(&w)
        .expect_err("no kinds in this circuit");
    assert!(
        format!("{err:#}").contains("built without shares"),
        "{err:#}"
    );
    assert!(!super::circuit().has_shares() && circuit().has_shares());
}
