//! Agents' spends in the payment circuit (SPEC 20.8, "Binding"): a leaf built with policy
//! checks judges every spend of an agent by its passport as the native rules do, charges the
//! passport in the agent's `ext`, publishes a forced withdrawal's policy status (9 to 14), and
//! refuses each rule broken by a witness built past the native checks, naming it.
//!
//! The attacks forge one slot each with the accounts forger of `payment.rs`: the transaction
//! applied to the tree as the circuit applies it (the agent's `ext` after it recomputed the way
//! the circuit computes it, so that only the targeted rule can fail), no rule checked.

use rollup_prover::circuits::payment::{PaymentKinds, PolicyChecks};
use rollup_prover::circuits::policy::PolicyRule;
use rollup_prover::witness::SignerOpening;
use state::ext::{ext_digest, Profile};
use state::passport::{AllowList, Card, Policy};
use state::pubdata::ForcedStatus;
use state::tx::{PassportAction, UnsignedPassportTx};

use super::*;

pub(super) const CAROL: AccountIndex = AccountIndex(3);
/// Alice's agent whose policy lists Bob alone.
pub(super) const LISTED: AccountIndex = AccountIndex(4);
/// Alice's agent without a list: 150 per hour, 100 per payment, fee 5.
pub(super) const FREE: AccountIndex = AccountIndex(5);
/// Alice's agent whose policy expired before the batch.
pub(super) const STALE: AccountIndex = AccountIndex(6);

pub(super) fn agent_key(i: AccountIndex) -> SecretKey {
    key(100 + u64::from(i.0))
}

/// The payment circuit with policy checks and allow-lists (`K` slots), built once per test
/// binary.
pub(super) fn agents_circuit() -> &'static PaymentCircuit {
    static C: OnceLock<PaymentCircuit> = OnceLock::new();
    C.get_or_init(|| {
        let t = Instant::now();
        let kinds = PaymentKinds {
            policies: PolicyChecks::WithLists,
            ..PaymentKinds::default()
        };
        let c = PaymentCircuit::build_kinds(K, kinds);
        println!(
            "payment circuit with policy checks and lists, k={K}: {} rows (degree), {} gates \
             per slot, built in {:?}",
            c.data.common.degree(),
            c.gates_per_slot,
            t.elapsed()
        );
        c
    })
}

pub(super) fn policy(cap: u64, expiry: u64, allow: Vec<AccountIndex>) -> Policy {
    Policy {
        cap: amt(cap),
        window: 3600,
        max_payment: amt(100),
        max_fee: amt(5),
        expiry: Timestamp::new(expiry).unwrap(),
        allow: AllowList::new(allow).unwrap(),
        card: Card::new([7; 32], "https://agents.example/card".into()).unwrap(),
    }
}

/// An owner transaction of Alice's (nonce `nonce`, no fee).
pub(super) fn alice_says(k: &Keys, action: PassportAction, nonce: u64) -> Transaction {
    UnsignedPassportTx {
        owner: ALICE,
        action,
        fee: amt(0),
        nonce: Nonce::new(nonce).unwrap(),
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &k.alice)
    .into()
}

/// [`setup`] with Carol (3) registered and funded with 40, and Alice's three agents, each
/// funded with 300: LISTED (cap 250 an hour, Bob only), FREE (cap 150 an hour, anyone) and
/// STALE (expired at `NOW - 1`). Alice's next nonce is 3.
pub(super) fn world(k: &Keys) -> State {
    let mut s = setup(k);
    for tx in [register(&k.carol), deposit(2, CAROL, 40)] {
        s.apply(&tx, &ctx()).unwrap();
    }
    let agents = [
        (LISTED, policy(250, NOW + 1000, vec![BOB])),
        (FREE, policy(150, NOW + 1000, vec![])),
        (STALE, policy(150, NOW - 1, vec![])),
    ];
    for (nonce, (index, policy)) in agents.into_iter().enumerate() {
        let action = PassportAction::Delegate {
            agent_key: agent_key(index).public_key().into(),
            fund: amt(300),
            policy,
        };
        let e = s
            .apply(&alice_says(k, action, nonce as u64), &ctx())
            .unwrap();
        assert_eq!(e.registered, Some(index));
    }
    s
}

pub(super) fn agent_transfer(
    from: AccountIndex,
    to: AccountIndex,
    amount: u64,
    fee: u64,
    nonce: u64,
) -> Transaction {
    transfer(from, to, amount, fee, nonce, &agent_key(from))
}

fn agent_withdraw(from: AccountIndex, amount: u64, fee: u64, nonce: u64) -> Transaction {
    withdraw(from, amount, fee, nonce, &agent_key(from))
}

/// A split of `from`'s, signed by its agent key.
fn agent_split(
    from: AccountIndex,
    parts: &[(AccountIndex, u64)],
    fee: u64,
    nonce: u64,
) -> Transaction {
    let parts = parts
        .iter()
        .map(|&(to, amount)| state::split::Payout {
            to,
            amount: amt(amount),
        })
        .collect();
    state::tx::split::UnsignedSplit {
        from,
        parts,
        fee: amt(fee),
        nonce: Nonce::new(nonce).unwrap(),
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &agent_key(from))
    .into()
}

fn f(v: u64) -> F {
    F::from_noncanonical_u64(v)
}

/// The `ext` the circuit leaves an agent whose opening is `o` after a spend moving `value`
/// with `fee` in lane 0: its passport not revoked, in window `q`, with `spent' + value + fee`
/// spent.
fn charged_ext(o: &SignerOpening, value: u64, fee: u64) -> Digest {
    spent_ext(o, 0, value, fee).expect("an agent's spend changes its ext")
}

/// The `ext` the circuit leaves the signer whose opening is `o` after a spend with `nonce`
/// moving `value` with `fee`: an agent's passport charged, a lane other than 0 raised. `None`
/// when it keeps its `ext` (no agent, lane 0).
fn spent_ext(o: &SignerOpening, nonce: u64, value: u64, fee: u64) -> Option<Digest> {
    let lane = (nonce >> 60) as usize;
    let mut seqs = o.lane_seqs;
    if lane > 0 {
        seqs[lane - 1] += 1;
    }
    let lanes = state::lanes::LaneNonces::from_seqs(seqs).unwrap().digest();
    let passport = match &o.passport {
        None if lane == 0 => return None,
        None => Digest::ZERO,
        Some(p) => p.charged(value, fee).digest(),
    };
    let profile = Profile {
        shares: o.shares,
        passport,
        lanes,
    };
    Some(ext_digest(o.streams_root, profile.digest()))
}

/// A transfer intent from `from` with its signer's opening in `state`.
fn t_opened(
    state: &State,
    from: AccountIndex,
    to: AccountIndex,
    amount: u64,
    fee: u64,
    nonce: u64,
) -> SlotWitness {
    let mut s = t_intent(from.0, to.0, amount, fee, nonce, NOW + 60, &agent_key(from));
    s.signer = Some(SignerOpening::of(state, from, ts(), Some(to)));
    s
}

/// A withdrawal intent from `from` with its signer's opening in `state`.
fn w_opened(state: &State, from: AccountIndex, amount: u64, fee: u64, nonce: u64) -> SlotWitness {
    let Transaction::Withdraw(w) = agent_withdraw(from, amount, fee, nonce) else {
        unreachable!()
    };
    let mut s = intent(SlotKind::Withdraw);
    s.a.index = from.0;
    s.b.index = 0;
    (s.amount, s.fee, s.nonce, s.valid_until) = (amount, fee, nonce, NOW);
    s.to_l1 = w.to_l1.0;
    s.signature = Some(w.signature);
    s.signer = Some(SignerOpening::of(state, from, ts(), None));
    s
}

/// A leaf of the one forged slot `s`, the spender's `ext` after it recomputed as the
/// circuit's (a spend charged with `value` and the slot's fee, its lane raised) unless
/// `keep_ext`.
fn forged(state: &mut State, s: SlotWitness, value: u64, keep_ext: bool) -> LeafWitness {
    let cheat = match &s.signer {
        Some(_) if keep_ext => Cheat::None,
        Some(o) => spend_cheat(o, s.nonce, value, s.fee),
        None => Cheat::None,
    };
    Forger::new(state).leaf(vec![(s, cheat)])
}

/// How the forger writes a spend's `ext` and nonce (see [`spent_ext`]).
fn spend_cheat(o: &SignerOpening, nonce: u64, value: u64, fee: u64) -> Cheat {
    match spent_ext(o, nonce, value, fee) {
        Some(e) if nonce >> 60 > 0 => Cheat::LaneSpend(e),
        Some(e) => Cheat::AgentExt(e),
        None => Cheat::None,
    }
}

/// The policy rule (and slot) that refused `w`; panics if it proved.
fn refused(name: &str, w: &LeafWitness) -> Option<(usize, PolicyRule)> {
    refused_with(agents_circuit(), name, w, PaymentCircuit::refused_by_policy)
}

/// The rows the policy checks add to a slot (docs/BENCHMARKS.md, issue 15's budget: 60 without
/// a list, one Merkle path more with one). Printed, not asserted: a cost is measured.
#[test]
fn policy_checks_cost_per_slot() {
    let of = |policies| {
        PaymentCircuit::gates_per_slot_of(PaymentKinds {
            policies,
            ..PaymentKinds::default()
        })
    };
    let (plain, checks, lists) = (
        of(PolicyChecks::None),
        of(PolicyChecks::Plain),
        of(PolicyChecks::WithLists),
    );
    println!(
        "gates per slot: plain {plain}, with policy checks {checks} (+{}), with lists {lists} \
         (+{})",
        checks - plain,
        lists - plain
    );
    assert_eq!(agents_circuit().gates_per_slot, lists);
}

#[test]
fn agents_spend_within_their_policies_as_the_native_rules_do() {
    let k = keys();
    let mut state = world(&k);
    let txs = [
        // LISTED pays Bob, its one listed payee (62 of its 250).
        agent_transfer(LISTED, BOB, 60, 2, 0),
        // FREE pays Carol, then withdraws up to its cap exactly (105 + 45 = 150).
        agent_transfer(FREE, CAROL, 100, 5, 0),
        agent_withdraw(FREE, 40, 5, 1),
        // Alice tops LISTED up: an ordinary transfer to an agent.
        transfer(ALICE, LISTED, 10, 1, 3, &k.alice),
        // Forced withdrawals: from LISTED (under a list, L1 is no payee: 13), from FREE (its
        // cap is spent: 14), from STALE (expired: 10).
        forced(3, NOW, agent_withdraw(LISTED, 10, 0, 1)),
        forced(4, NOW, agent_withdraw(FREE, 1, 0, 2)),
        forced(5, NOW, agent_withdraw(STALE, 1, 0, 0)),
        // And a deposit to an agent after them.
        deposit(6, FREE, 5),
    ];
    let leaves = leaves_of(&mut state, &txs);
    let statuses = forced_statuses(&leaves);
    use ForcedStatus as S;
    assert_eq!(
        statuses,
        vec![
            S::PolicyPayee as u8,
            S::PolicyCap as u8,
            S::PolicyExpired as u8
        ]
    );
    // What the passports recorded natively: the circuit's roots below include them.
    let (_, spent) = state.passport(FREE).unwrap().spent();
    assert_eq!(spent, amt(150));
    for leaf in &leaves {
        let proven = try_prove_with(agents_circuit(), leaf).unwrap();
        assert_eq!(proven, leaf.statement);
    }
    assert_eq!(leaves.last().unwrap().statement.new_root, state.root());
    // The forger (no rules) builds the same slots, so the attacks below are meaningful: the
    // first leaf's two transfers, the agent's `ext` recomputed as the circuit's.
    let mut fresh = world(&k);
    let first = &leaves[0];
    let intents = intents_of(first)
        .into_iter()
        .map(|(s, _)| {
            let value = if s.kind == SlotKind::Noop {
                0
            } else {
                s.amount
            };
            let cheat = match &s.signer {
                Some(o) if o.passport.is_some() => Cheat::AgentExt(charged_ext(o, value, s.fee)),
                _ => Cheat::None,
            };
            (s, cheat)
        })
        .collect();
    assert_eq!(&Forger::new(&mut fresh).leaf(intents), first);
}

#[test]
fn spends_the_policy_refuses_have_no_proof() {
    let k = keys();
    // The forge is sound: LISTED paying Bob 10 proves.
    let mut s = world(&k);
    let t = t_opened(&s, LISTED, BOB, 10, 1, 0);
    try_prove_with(agents_circuit(), &forged(&mut s, t, 10, false)).unwrap();

    // Revoked (Alice revokes LISTED first).
    let mut s = world(&k);
    s.apply(
        &alice_says(&k, PassportAction::Revoke { agent: LISTED }, 3),
        &ctx(),
    )
    .unwrap();
    let t = t_opened(&s, LISTED, BOB, 10, 1, 0);
    assert_eq!(
        refused("a revoked agent pays", &forged(&mut s, t, 10, false)),
        Some((0, PolicyRule::Revoked))
    );

    // One transfer each, past one rule: from the expired agent; a fee and a payment above
    // their maxima; to a payee off the list (no path).
    for (name, from, to, amount, fee, rule) in [
        (
            "an expired agent pays",
            STALE,
            BOB,
            10,
            1,
            PolicyRule::PolicyExpired,
        ),
        (
            "a fee above the maximum",
            FREE,
            CAROL,
            10,
            6,
            PolicyRule::PolicyFee,
        ),
        (
            "a payment above the maximum",
            FREE,
            CAROL,
            101,
            1,
            PolicyRule::PolicyPayment,
        ),
        (
            "a payee off the list",
            LISTED,
            CAROL,
            10,
            1,
            PolicyRule::PolicyPayee,
        ),
    ] {
        let mut s = world(&k);
        let t = t_opened(&s, from, to, amount, fee, 0);
        assert_eq!(
            refused(name, &forged(&mut s, t, amount, false)),
            Some((0, rule))
        );
    }
    // The payee off the list with a listed payee's path.
    let mut s = world(&k);
    let mut t = t_opened(&s, LISTED, CAROL, 10, 1, 0);
    let bobs = SignerOpening::of(&s, LISTED, ts(), Some(BOB));
    t.signer
        .as_mut()
        .unwrap()
        .passport
        .as_mut()
        .unwrap()
        .membership = bobs.passport.unwrap().membership;
    assert_eq!(
        refused(
            "a payee off the list with Bob's path",
            &forged(&mut s, t, 10, false)
        ),
        Some((0, PolicyRule::PolicyPayee))
    );
    // A withdrawal under a list.
    let mut s = world(&k);
    let t = w_opened(&s, LISTED, 10, 1, 0);
    assert_eq!(
        refused("a withdrawal under a list", &forged(&mut s, t, 10, false)),
        Some((0, PolicyRule::PolicyPayee))
    );

    // Two payments each under the maximum that together pass the cap: FREE spent 100 in this
    // window, then pays 50 with a fee of 1 (151 > 150).
    let spent_100 = |k: &Keys| {
        let mut s = world(k);
        s.apply(&agent_transfer(FREE, CAROL, 95, 5, 0), &ctx())
            .unwrap();
        s
    };
    let mut s = spent_100(&k);
    let t = t_opened(&s, FREE, CAROL, 50, 1, 1);
    assert_eq!(
        refused(
            "payments adding up past the cap",
            &forged(&mut s, t, 50, false)
        ),
        Some((0, PolicyRule::PolicyCap))
    );
    // The same payment with a false window (the quotient one less), which would start the
    // spending afresh.
    let mut s = spent_100(&k);
    let mut t = t_opened(&s, FREE, CAROL, 50, 1, 1);
    {
        let p = t.signer.as_mut().unwrap().passport.as_mut().unwrap();
        p.q -= 1;
        p.r += p.policy.window;
    }
    assert_eq!(
        refused(
            "a false window resets the spending",
            &forged(&mut s, t, 50, false)
        ),
        Some((0, PolicyRule::Window))
    );

    // An agent's `ext` opened without its passport (as if it were no agent), its `ext` kept.
    let mut s = world(&k);
    let mut t = t_opened(&s, LISTED, BOB, 10, 1, 0);
    t.signer.as_mut().unwrap().passport = None;
    assert_eq!(
        refused("an agent's passport hidden", &forged(&mut s, t, 10, true)),
        Some((0, PolicyRule::Statement))
    );
    // An agent's spend that leaves its passport uncharged.
    let mut s = world(&k);
    let t = t_opened(&s, LISTED, BOB, 10, 1, 0);
    assert!(
        try_prove_with(agents_circuit(), &forged(&mut s, t, 10, true)).is_err(),
        "an agent's spend left its passport as it was"
    );
}

#[test]
fn a_forced_withdrawal_from_an_agent_publishes_the_first_policy_rule_it_breaks() {
    let k = keys();
    // LISTED's request breaks the payee rule (13): applied (0), or refused for a later rule
    // (the balance's 7, the cap's 14): none has a proof.
    let request = || agent_withdraw(LISTED, 10, 0, 0);
    for status in [
        0,
        ForcedStatus::InsufficientBalance as u8,
        ForcedStatus::PolicyCap as u8,
    ] {
        let mut s = world(&k);
        let mut f = f_intent(3, NOW, request(), status);
        let o = SignerOpening::of(&s, LISTED, ts(), None);
        let cheat = match status {
            0 => Cheat::AgentExt(charged_ext(&o, 10, 0)),
            _ => Cheat::None,
        };
        f.signer = Some(o);
        let w = Forger::new(&mut s).leaf(vec![(f, cheat)]);
        let err = try_prove_with(agents_circuit(), &w).expect_err(&format!(
            "status {status} for a request under a list proved"
        ));
        println!("forced withdrawal under a list with status {status}: refused: {err}");
    }
    // Its native status proves, and so does FREE's same request, applied.
    let mut s = world(&k);
    let txs = [
        forced(3, NOW, request()),
        forced(4, NOW, agent_withdraw(FREE, 10, 0, 0)),
    ];
    let leaves = leaves_of(&mut s, &txs);
    let statuses: Vec<u8> = leaves[0].slots[..2]
        .iter()
        .map(|s| s.forced_status)
        .collect();
    assert_eq!(statuses, vec![ForcedStatus::PolicyPayee as u8, 0]);
    try_prove_with(agents_circuit(), &leaves[0]).unwrap();
}

/// The payment circuit with every optional kind (streams, revenue shares, policy checks with
/// lists), built once per test binary: where an agent's charge meets the other branches'
/// changes of its `ext`.
pub(super) fn every_kind_circuit() -> &'static PaymentCircuit {
    static C: OnceLock<PaymentCircuit> = OnceLock::new();
    C.get_or_init(|| {
        PaymentCircuit::build_kinds(
            K,
            PaymentKinds {
                streams: true,
                shares: true,
                policies: PolicyChecks::WithLists,
            },
        )
    })
}

#[test]
fn an_agents_stream_and_shares_change_its_ext_with_its_passport() {
    use state::stream::chain::TickChain;
    use state::stream::rules::{Open, Settle};
    use state::stream::{StreamId, StreamSlot, TickCount};
    use state::tx::stream::SettleBody;

    let k = keys();
    let mut state = world(&k);
    // FREE opens a stream to Carol (3 a tick, 10 ticks: 30 escrowed, the payment its policy
    // counts, fee 1), Carol settles 4 ticks (FREE's book changes, not its passport), LISTED
    // pays Bob, FREE splits 20 between Bob and Carol (fee 1), and FREE registers its shares
    // (fee 1): every `ext` change of an agent is its passport's and another branch's at once,
    // and a split's record starts from the charged passport.
    let id = StreamId {
        payer: FREE,
        slot: StreamSlot(0),
        opened_at: Nonce::ZERO,
    };
    let ticks = TickCount::new(10).unwrap();
    let mut chain = TickChain::new(id, ticks, hash_no_pad(&[f(5)]));
    let open = Open {
        payer: FREE,
        payee: CAROL,
        slot: StreamSlot(0),
        price: amt(3),
        max_ticks: ticks,
        expiry: Timestamp::new(NOW + 100).unwrap(),
        anchor: chain.anchor(),
    };
    let settle = SettleBody {
        payee: CAROL,
        terms: Settle {
            payer: FREE,
            slot: StreamSlot(0),
            from: TickCount::new(0).unwrap(),
            to: TickCount::new(4).unwrap(),
            value: chain.tick(4).unwrap().value,
        },
    };
    let txs = [
        Transaction::StreamOpen(super::stream::signed(open, 1, 0, &agent_key(FREE))),
        Transaction::StreamSettle(super::stream::signed(settle, 1, 0, &k.carol)),
        agent_transfer(LISTED, BOB, 10, 1, 0),
        agent_split(FREE, &[(BOB, 12), (CAROL, 8)], 1, 1),
        super::shares::register_shares(FREE, vec![(ALICE, 10_000)], 1, 2, &agent_key(FREE)).into(),
    ];
    let with_ctx: Vec<_> = txs.iter().map(|t| (t.clone(), ctx())).collect();
    let mut chain_builder = rollup_prover::circuits::split::SplitChainBuilder::new(4);
    let leaves = rollup_prover::witness::leaf_witnesses_and_chain(
        &mut state,
        &with_ctx,
        ts(),
        K,
        0,
        &depositor,
        Some(&mut chain_builder),
    )
    .unwrap();
    let (_, spent) = state.passport(FREE).unwrap().spent();
    assert_eq!(spent, amt(53), "the escrow, the split and the three fees");
    for leaf in &leaves {
        let proven = try_prove_with(every_kind_circuit(), leaf).unwrap();
        assert_eq!(proven, leaf.statement);
    }
    assert_eq!(leaves.last().unwrap().statement.new_root, state.root());
}

#[test]
fn a_leaf_without_what_an_agents_spend_needs_reports_it() {
    use rollup_prover::circuits::leaf::{LeafCircuit, LeafPlanError};
    let k = keys();
    let plan = |leaf: &PaymentCircuit, txs: &[Transaction]| {
        let mut chain = rollup_prover::circuits::split::SplitChainBuilder::new(4);
        let txs: Vec<_> = txs.iter().map(|t| (t.clone(), ctx())).collect();
        leaf.witnesses(&mut world(&k), &txs, ts(), &depositor, 0, &mut chain)
    };
    let reported = |err: LeafPlanError, what: &str| {
        assert!(
            matches!(&err, LeafPlanError::Other(e) if e.to_string().contains(what)),
            "{err:?}"
        );
    };
    // A circuit without policy checks: any agent's spend.
    let free_pays = agent_transfer(FREE, BOB, 10, 1, 0);
    reported(
        plan(circuit(), std::slice::from_ref(&free_pays)).unwrap_err(),
        "policy-checked",
    );
    // Policy checks without the membership paths (`--leaf-policies plain`): an agent under a
    // list paying its listed payee, whether it is older than the batch or delegated in it
    // (account 7, after a payment of FREE's, which needs no path).
    let plain = super::kinds_registry().leaf();
    let listed_pays = agent_transfer(LISTED, BOB, 10, 1, 0);
    reported(
        plan(plain, &[free_pays.clone(), listed_pays.clone()]).unwrap_err(),
        "transaction 1 is a listed-agent payment",
    );
    const NEW: AccountIndex = AccountIndex(7);
    let delegate = PassportAction::Delegate {
        agent_key: agent_key(NEW).public_key().into(),
        fund: amt(100),
        policy: policy(250, NOW + 1000, vec![BOB]),
    };
    let new_pays = agent_transfer(NEW, BOB, 10, 1, 0);
    reported(
        plan(
            plain,
            &[free_pays.clone(), alice_says(&k, delegate, 3), new_pays],
        )
        .unwrap_err(),
        "transaction 2 is a listed-agent payment",
    );
    // The same leaf plans the payments that need no path, and the shape with paths plans the
    // listed one.
    plan(plain, std::slice::from_ref(&free_pays)).unwrap();
    plan(agents_circuit(), &[free_pays, listed_pays]).unwrap();
    // A split from an agent under a list is refused natively, even to its listed payee: its
    // payees are the split-credit chain's, which proves no membership (SPEC 20.4; the
    // circuit's refusal is `circuits::policy::tests`).
    let err = world(&k)
        .apply(&agent_split(LISTED, &[(BOB, 10)], 1, 0), &ctx())
        .unwrap_err();
    assert_eq!(err.code(), "POLICY_PAYEE");
}

/// A nonce in `lane` with sequence number `seq`.
pub(super) fn in_lane(lane: u64, seq: u64) -> u64 {
    lane << 60 | seq
}

#[test]
fn lanes_move_one_at_a_time_as_the_native_rules_do() {
    let k = keys();
    let lanes_world = |k: &Keys| {
        let mut s = world(k);
        s.enable_lanes();
        s
    };
    let mut state = lanes_world(&k);
    let bob = |to, amount, nonce| transfer(BOB, to, amount, 0, nonce, &k.bob);
    let txs = [
        // Bob (no agent) pays in lanes 1, 3, 1 and 0: four independent sequences.
        bob(CAROL, 1, in_lane(1, 0)),
        bob(CAROL, 2, in_lane(3, 0)),
        bob(CAROL, 3, in_lane(1, 1)),
        bob(CAROL, 4, 0),
        // FREE (an agent) pays in lane 2: its passport and its lanes in one `ext`.
        agent_transfer(FREE, CAROL, 10, 1, in_lane(2, 0)),
        // Forced withdrawals: Bob's lane 1 replayed (5), his lane 7 at its first number
        // (applied).
        forced(3, NOW, withdraw(BOB, 1, 0, in_lane(1, 1), &k.bob)),
        forced(4, NOW, withdraw(BOB, 1, 0, in_lane(7, 0), &k.bob)),
    ];
    let leaves = leaves_of(&mut state, &txs);
    let statuses = forced_statuses(&leaves);
    assert_eq!(statuses, vec![ForcedStatus::BadNonce as u8, 0]);
    assert_eq!(state.lanes_of(BOB).seqs(), [2, 0, 1, 0, 0, 0, 1]);
    assert_eq!(state.account(BOB).unwrap().nonce, Nonce::new(1).unwrap());
    for leaf in &leaves {
        let proven = try_prove_with(agents_circuit(), leaf).unwrap();
        assert_eq!(proven, leaf.statement);
    }
    assert_eq!(leaves.last().unwrap().statement.new_root, state.root());
    // The forger builds the same first leaf (the attacks below rely on it).
    let mut fresh = lanes_world(&k);
    let intents = intents_of(&leaves[0])
        .into_iter()
        .map(|(s, _)| {
            let o = s.signer.clone().unwrap();
            let cheat = spend_cheat(&o, s.nonce, s.amount, s.fee);
            (s, cheat)
        })
        .collect();
    assert_eq!(Forger::new(&mut fresh).leaf(intents), leaves[0]);
    // A leaf without policy checks reports a lane's spend rather than fail to prove it.
    let mut chain = rollup_prover::circuits::split::SplitChainBuilder::new(4);
    let err = rollup_prover::circuits::leaf::LeafCircuit::witnesses(
        circuit(),
        &mut lanes_world(&k),
        &[(bob(CAROL, 1, in_lane(1, 0)), ctx())],
        ts(),
        &depositor,
        0,
        &mut chain,
    )
    .unwrap_err();
    assert!(format!("{err:?}").contains("lane-nonce"), "{err:?}");

    // A lane's number replayed: Bob's lane 1 at 0 again, after it moved.
    let mut s = lanes_world(&k);
    s.apply(&bob(CAROL, 1, in_lane(1, 0)), &ctx()).unwrap();
    let mut t = t_intent(2, 3, 1, 0, in_lane(1, 0), NOW + 60, &k.bob);
    t.signer = Some(SignerOpening::of(&s, BOB, ts(), Some(CAROL)));
    let err = try_prove_with(agents_circuit(), &forged(&mut s, t, 1, false))
        .expect_err("a replayed lane nonce proved");
    println!("a replayed lane nonce: refused: {err}");
    // A lane's number skipped (lane 1 at 1 before 0).
    let mut s = lanes_world(&k);
    let mut t = t_intent(2, 3, 1, 0, in_lane(1, 1), NOW + 60, &k.bob);
    t.signer = Some(SignerOpening::of(&s, BOB, ts(), Some(CAROL)));
    let err = try_prove_with(agents_circuit(), &forged(&mut s, t, 1, false))
        .expect_err("a skipped lane nonce proved");
    println!("a skipped lane nonce: refused: {err}");
    // The lanes opened as other numbers than the `ext` holds (lane 1 claimed at 1, so that a
    // replay of 1 would pass): the opening is not Bob's `ext`.
    let mut s = lanes_world(&k);
    s.apply(&bob(CAROL, 1, in_lane(1, 0)), &ctx()).unwrap();
    let mut t = t_intent(2, 3, 1, 0, in_lane(1, 0), NOW + 60, &k.bob);
    let mut o = SignerOpening::of(&s, BOB, ts(), Some(CAROL));
    o.lane_seqs[0] = 0;
    t.signer = Some(o);
    assert_eq!(
        refused(
            "lanes opened as other numbers",
            &forged(&mut s, t, 1, false)
        ),
        Some((0, PolicyRule::Statement))
    );
    // The control: Bob's lane 1 at its next number proves.
    let mut s = lanes_world(&k);
    s.apply(&bob(CAROL, 1, in_lane(1, 0)), &ctx()).unwrap();
    let mut t = t_intent(2, 3, 1, 0, in_lane(1, 1), NOW + 60, &k.bob);
    t.signer = Some(SignerOpening::of(&s, BOB, ts(), Some(CAROL)));
    try_prove_with(agents_circuit(), &forged(&mut s, t, 1, false)).unwrap();
}

/// An owner transaction signed by `key` in the name of `owner` (nonce `nonce`, fee 1).
pub(super) fn owner_tx(
    owner: AccountIndex,
    action: PassportAction,
    nonce: u64,
    key: &SecretKey,
) -> Transaction {
    UnsignedPassportTx {
        owner,
        action,
        fee: amt(1),
        nonce: Nonce::new(nonce).unwrap(),
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, key)
    .into()
}

#[test]
fn an_owner_revokes_and_sweeps_its_agents_as_the_native_rules_do() {
    let k = keys();
    let mut state = world(&k);
    let txs = [
        // Alice sweeps 50 back from FREE, revokes LISTED, and sweeps LISTED after the
        // revocation (allowed); LISTED's forced withdrawal after it publishes REVOKED (9).
        owner_tx(
            ALICE,
            PassportAction::Sweep {
                agent: FREE,
                amount: amt(50),
            },
            3,
            &k.alice,
        ),
        owner_tx(ALICE, PassportAction::Revoke { agent: LISTED }, 4, &k.alice),
        owner_tx(
            ALICE,
            PassportAction::Sweep {
                agent: LISTED,
                amount: amt(300),
            },
            5,
            &k.alice,
        ),
        forced(3, NOW, agent_withdraw(LISTED, 1, 0, 0)),
    ];
    let leaves = leaves_of(&mut state, &txs);
    assert_eq!(forced_statuses(&leaves), vec![ForcedStatus::Revoked as u8]);
    assert!(state.passport(LISTED).unwrap().is_revoked());
    assert_eq!(state.account(LISTED).unwrap().balance, amt(0));
    for leaf in &leaves {
        let proven = try_prove_with(agents_circuit(), leaf).unwrap();
        assert_eq!(proven, leaf.statement);
    }
    assert_eq!(leaves.last().unwrap().statement.new_root, state.root());
    // A leaf with policy checks is the only one with these slots.
    let mut chain = rollup_prover::circuits::split::SplitChainBuilder::new(4);
    let revoke = owner_tx(ALICE, PassportAction::Revoke { agent: LISTED }, 3, &k.alice);
    let err = rollup_prover::circuits::leaf::LeafCircuit::witnesses(
        circuit(),
        &mut world(&k),
        &[(revoke, ctx())],
        ts(),
        &depositor,
        0,
        &mut chain,
    )
    .unwrap_err();
    assert!(format!("{err:?}").contains("revoke"), "{err:?}");
}

/// The `ext` an agent opened as `o` has under `policy` (a digest) with `revoked`, its window
/// and spending kept, as the circuit computes it (a revocation, a policy change).
fn passport_ext(o: &rollup_prover::witness::AgentOpening, policy: Digest, revoked: bool) -> Digest {
    let mut pp = vec![F::from_canonical_u32(o.owner)];
    pp.extend(policy.0);
    pp.extend([F::from_bool(revoked), f(o.window_id), f(o.spent)]);
    let profile = Profile {
        shares: o.shares,
        passport: hash_no_pad(&pp),
        lanes: o.lanes,
    };
    ext_digest(o.streams_root, profile.digest())
}

/// A leaf of one owner slot forged on `state`: `signer` (with `key`) takes `action` (a policy
/// change, a revoke or a sweep) on its agent, with `opening` as the agent's; the accesses as
/// the circuit writes them (the owner pays a fee of 1 and gains a sweep's amount, the agent
/// pays it or takes the changed passport), no rule checked.
pub(super) fn forged_owner_slot(
    state: &mut State,
    signer: AccountIndex,
    action: PassportAction,
    opening: rollup_prover::witness::AgentOpening,
    key: &SecretKey,
) -> LeafWitness {
    let agent = action
        .agent()
        .expect("a delegate is forged by `forged_delegate`");
    let nonce = state.account(signer).unwrap().nonce.get();
    let Transaction::Passport(tx) = owner_tx(signer, action.clone(), nonce, key) else {
        unreachable!()
    };
    let (kind, amount, ext_after) = match &action {
        PassportAction::Sweep { amount, .. } => (SlotKind::Sweep, amount.get(), None),
        PassportAction::Revoke { .. } => (
            SlotKind::Revoke,
            0,
            Some(passport_ext(&opening, opening.policy, true)),
        ),
        PassportAction::SetPolicy { policy, .. } => (
            SlotKind::SetPolicy,
            0,
            Some(passport_ext(&opening, policy.digest(), false)),
        ),
        PassportAction::Delegate { .. } => unreachable!("no agent yet"),
    };
    let mut s = intent(kind);
    (s.a.index, s.b.index) = (signer.0, agent.0);
    (s.fee, s.nonce, s.valid_until, s.amount) = (1, nonce, NOW + 60, amount);
    if let PassportAction::SetPolicy { policy, .. } = &action {
        s.parts_digest = policy.digest();
    }
    s.signature = Some(tx.signature);
    s.signer = Some(SignerOpening::of(state, signer, ts(), None));
    s.agent = Some(opening);
    let mut f = Forger::new(state);
    super::shares::forged_leaf(&mut f, |f, _| {
        s.a = f.access(signer.0, |old| {
            old.map(|mut a| {
                a.balance = a.balance - 1 + amount;
                a.nonce += 1;
                a
            })
        });
        s.b = f.access(agent.0, |old| {
            old.map(|mut b| {
                b.balance = (felt(b.balance) - felt(amount)).to_canonical_u64();
                b.ext = ext_after.unwrap_or(b.ext);
                b
            })
        });
        s.c = f.access(0, |old| {
            old.map(|mut o| {
                o.balance += 1;
                o
            })
        });
        // A policy change enters the chain by its fixed bytes and the policy digest (SPEC
        // 10.2); a revoke and a sweep by their bytes, written out here.
        f.pubdata = match kind {
            SlotKind::SetPolicy => {
                let op = state::tx::PassportOp {
                    owner: signer,
                    agent,
                    action,
                    fee: amt(1),
                };
                state::pubdata::policy_entry(f.pubdata, &op).unwrap()
            }
            _ => {
                let mut bytes = vec![action.kind().tag()];
                bytes.extend(signer.0.to_le_bytes());
                bytes.extend(agent.0.to_le_bytes());
                if kind == SlotKind::Sweep {
                    bytes.extend(amount.to_le_bytes());
                }
                bytes.extend(1u64.to_le_bytes());
                absorb_bytes(f.pubdata, &bytes)
            }
        };
        vec![s]
    })
}

fn revoke(agent: AccountIndex) -> PassportAction {
    PassportAction::Revoke { agent }
}

fn sweep(agent: AccountIndex, amount: u64) -> PassportAction {
    PassportAction::Sweep {
        agent,
        amount: Amount::new(amount).unwrap(),
    }
}

pub(super) fn refused_owner(
    name: &str,
    w: &LeafWitness,
) -> Option<(usize, rollup_prover::circuits::payment::OwnerRule)> {
    refused_with(agents_circuit(), name, w, PaymentCircuit::refused_by_owner)
}

#[test]
fn revocations_and_sweeps_the_rules_refuse_have_no_proof() {
    use rollup_prover::circuits::payment::OwnerRule;
    use rollup_prover::witness::AgentOpening;
    let k = keys();
    let listed = |s: &State| AgentOpening::of(s, LISTED).unwrap();
    // The forge is sound: Alice revoking LISTED, and sweeping 10 from FREE, prove.
    let mut s = world(&k);
    let o = listed(&s);
    try_prove_with(
        agents_circuit(),
        &forged_owner_slot(&mut s, ALICE, revoke(LISTED), o, &k.alice),
    )
    .unwrap();
    let mut s = world(&k);
    let o = AgentOpening::of(&s, FREE).unwrap();
    let w = forged_owner_slot(&mut s, ALICE, sweep(FREE, 10), o, &k.alice);
    try_prove_with(agents_circuit(), &w).unwrap();

    // Bob revokes Alice's agent; the agent revokes itself in its own name.
    let mut s = world(&k);
    let o = listed(&s);
    let w = forged_owner_slot(&mut s, BOB, revoke(LISTED), o, &k.bob);
    assert_eq!(
        refused_owner("another owner", &w),
        Some((0, OwnerRule::NotOwner))
    );
    let mut s = world(&k);
    let o = listed(&s);
    let w = forged_owner_slot(&mut s, LISTED, revoke(LISTED), o, &agent_key(LISTED));
    assert!(refused_owner("the agent revokes itself", &w).is_some());
    // Alice's revocation signed by the agent's key: no signature.
    let mut s = world(&k);
    let o = listed(&s);
    let w = forged_owner_slot(&mut s, ALICE, revoke(LISTED), o, &agent_key(LISTED));
    let err = try_prove_with(agents_circuit(), &w).expect_err("a revocation signed by the agent");
    println!("a revocation signed by the agent: refused: {err}");
    // A second revocation.
    let mut s = world(&k);
    s.apply(
        &alice_says(&k, PassportAction::Revoke { agent: LISTED }, 3),
        &ctx(),
    )
    .unwrap();
    let o = listed(&s);
    let w = forged_owner_slot(&mut s, ALICE, revoke(LISTED), o, &k.alice);
    assert_eq!(
        refused_owner("a second revocation", &w),
        Some((0, OwnerRule::Revoked))
    );
    // An account without a passport, opened as if it had one (Carol's leaf with LISTED's
    // passport).
    let mut s = world(&k);
    let o = listed(&s);
    let w = forged_owner_slot(&mut s, ALICE, revoke(CAROL), o, &k.alice);
    assert_eq!(
        refused_owner("no agent", &w),
        Some((0, OwnerRule::NotAnAgent))
    );
    // A sweep of nothing, and of more than the agent holds.
    let mut s = world(&k);
    let o = AgentOpening::of(&s, FREE).unwrap();
    let w = forged_owner_slot(&mut s, ALICE, sweep(FREE, 0), o, &k.alice);
    assert_eq!(
        refused_owner("a sweep of nothing", &w),
        Some((0, OwnerRule::ZeroAmount))
    );
    let mut s = world(&k);
    let o = AgentOpening::of(&s, FREE).unwrap();
    let w = forged_owner_slot(&mut s, ALICE, sweep(FREE, 301), o, &k.alice);
    let err = try_prove_with(agents_circuit(), &w).expect_err("a sweep past the balance");
    println!("a sweep past the agent's balance: refused: {err}");
}
