//! An owner's delegate and policy change in the payment circuit (SPEC 20.5, 20.6; 20.8,
//! "Owner kinds"): a leaf with policy checks creates an agent at the next index with its fresh
//! passport and replaces a policy as the native rules do, and its op enters the pubdata chain
//! by its fixed bytes and the policy's digest (SPEC 10.2). Each rule broken by a witness
//! forged past the native checks (the accesses written as the circuit writes them) is
//! refused, by name where the rule has one.

use rollup_prover::circuits::payment::OwnerRule;
use rollup_prover::witness::{AccountFields, AgentOpening, OwnerOpening, SignerOpening};
use state::ext::{ext_digest, Profile};
use state::passport::{Passport, Policy};
use state::tx::{PassportAction, PassportOp};

use super::agents::{
    agent_key, agent_transfer, agents_circuit, every_kind_circuit, forged_owner_slot, owner_tx,
    policy, refused_owner, world, FREE, LISTED,
};
use super::*;

/// The index `world` gives the next account.
const NEXT: AccountIndex = AccountIndex(7);

/// The `ext` of a new agent of `owner` under `policy`: an empty book, the fresh passport.
fn fresh_ext(owner: AccountIndex, policy: &Policy) -> Digest {
    let profile = Profile {
        passport: Passport::new(owner, policy.clone()).digest(),
        ..Profile::default()
    };
    ext_digest(
        state::smt::empty_hashes()[state::stream::SLOT_DEPTH],
        profile.digest(),
    )
}

fn delegate(key: &SecretKey, fund: u64, policy: Policy) -> PassportAction {
    PassportAction::Delegate {
        agent_key: key.public_key().into(),
        fund: Amount::new(fund).unwrap(),
        policy,
    }
}

#[test]
fn an_owner_delegates_and_changes_policies_as_the_native_rules_do() {
    let k = keys();
    let mut state = world(&k);
    let new_key = agent_key(NEXT);
    let txs = [
        // Alice creates a fourth agent (listing Bob, funded with 60), which pays Bob in the
        // same batch; she raises FREE's cap and lists Carol for LISTED; and creates a fifth
        // agent with nothing (a fund of 0 is allowed).
        owner_tx(
            ALICE,
            delegate(&new_key, 60, policy(100, NOW + 500, vec![BOB])),
            3,
            &k.alice,
        ),
        agent_transfer(NEXT, BOB, 30, 2, 0),
        owner_tx(
            ALICE,
            PassportAction::SetPolicy {
                agent: FREE,
                policy: policy(900, NOW + 1000, vec![]),
            },
            4,
            &k.alice,
        ),
        owner_tx(
            ALICE,
            PassportAction::SetPolicy {
                agent: LISTED,
                policy: policy(250, NOW + 1000, vec![BOB, AccountIndex(3)]),
            },
            5,
            &k.alice,
        ),
        owner_tx(
            ALICE,
            delegate(&agent_key(AccountIndex(8)), 0, policy(1, NOW + 5, vec![])),
            6,
            &k.alice,
        ),
    ];
    let leaves = leaves_of(&mut state, &txs);
    assert_eq!(state.passport(NEXT).unwrap().owner(), ALICE);
    assert_eq!(state.account(NEXT).unwrap().balance, amt(60 - 32));
    assert_eq!(state.passport(AccountIndex(8)).unwrap().owner(), ALICE);
    assert_eq!(state.passport(FREE).unwrap().policy().cap, amt(900));
    for leaf in &leaves {
        let proven = try_prove_with(agents_circuit(), leaf).unwrap();
        assert_eq!(proven, leaf.statement);
    }
    assert_eq!(leaves.last().unwrap().statement.new_root, state.root());
    // The chain the leaves prove is the native one, whose delegate and policy change entries
    // are their fixed bytes and the policy digest.
    let mut replay = world(&k);
    let ops: Vec<_> = txs
        .iter()
        .map(|tx| replay.apply(tx, &ctx()).unwrap().pubdata)
        .collect();
    assert_eq!(
        leaves.last().unwrap().statement.pubdata_out,
        pubdata_commitment(&ops)
    );

    // The batch's diff publishes the three policies' bodies and one without (the delegate's
    // agent's spend is in the same batch, so its record carries the body). The full grouped
    // diff proves them, each body starting a chunk, in no more chunks than the capacity the
    // node seals batches by counts; the registry's chunk circuit proves a body's chunk.
    diff_of_policy_changes(&k, &txs);

    // Only a leaf with policy checks has these slots.
    let mut chain = rollup_prover::circuits::split::SplitChainBuilder::new(4);
    let err = rollup_prover::circuits::leaf::LeafCircuit::witnesses(
        circuit(),
        &mut world(&k),
        &[(txs[0].clone(), ctx())],
        ts(),
        &depositor,
        0,
        &mut chain,
    )
    .unwrap_err();
    assert!(format!("{err:?}").contains("delegate"), "{err:?}");
}

fn diff_of_policy_changes(k: &Keys, txs: &[Transaction]) {
    use rollup_prover::capacity::{BatchCapacity, BatchLoad};
    use rollup_prover::circuits::diff_grouped::{grouped_chunks, GroupedParts};
    use rollup_prover::planner::chunks::diff_kind;
    use rollup_storage::{DiffCircuitKind, ProofTree};
    use sha2::{Digest as _, Sha256};
    use state::diff::{AccountTree, BatchTouches};

    let before = world(k);
    let mut after = world(k);
    let mut touches = BatchTouches::new(after.num_accounts());
    for tx in txs {
        touches.absorb(&after.apply(tx, &ctx()).unwrap());
    }
    let diff = touches.diff(&after).unwrap();
    let bodies = diff
        .passports()
        .iter()
        .filter(|p| p.policy.is_some())
        .count();
    assert_eq!(bodies, 4, "two delegates and two policy changes");
    assert_eq!(diff_kind(&diff), DiffCircuitKind::V4Shares);
    let reg = super::kinds_registry();
    let shape = reg.shape();
    let chunks = grouped_chunks(
        &AccountTree::from_state(&before),
        &diff,
        shape.grouped_cap,
        shape.grouped_subs,
        GroupedParts::Shares,
        1,
    )
    .unwrap();
    let with_body: Vec<usize> = (0..chunks.len())
        .filter(|&c| chunks[c].0.slots[0].policy.is_some())
        .collect();
    assert_eq!(with_body.len(), bodies, "each body starts a chunk");
    assert!(chunks
        .iter()
        .all(|(w, _)| w.slots[1..].iter().all(|s| s.policy.is_none())));
    let used = chunks
        .iter()
        .filter(|(w, _)| w.slots.iter().any(|s| s.used))
        .count() as u64;
    let load = txs
        .iter()
        .map(|tx| BatchLoad::bound_of(tx, |_| 0))
        .fold(BatchLoad::default(), |a, b| a.plus(&b));
    let cap = BatchCapacity::new(K, 3);
    assert!(
        cap.chunks_for(&load) >= used,
        "the capacity counts {} chunks, the diff takes {used}",
        cap.chunks_for(&load)
    );
    let last = &chunks.last().unwrap().1;
    assert_eq!(last.base.root_out, after.root());
    assert_eq!(
        last.base.diff_hash(),
        <[u8; 32]>::from(Sha256::digest(diff.encode_published()))
    );
    // The planner pads the batch's other trees to the diff's count (here more chunks than the
    // batch has leaves: the bodies start chunks of their own).
    let inputs = rollup_prover::jobs::SettlementInputs {
        diff_bytes: diff.encode_published(),
        state_diff: diff.clone(),
        settled: state::settlement::OpsSettlement {
            withdrawals: vec![],
            payouts: vec![],
            consumed: vec![],
            next_priority_op: 0,
        },
        depositors: Default::default(),
        queue_before: [0; 32],
        queue_after: [0; 32],
    };
    let kind = diff_kind(&diff);
    let planned = rollup_prover::planner::chunks::chain_chunks(
        shape,
        1,
        &rollup_prover::planner::chunks::Before::of(&before, kind),
        0,
        &inputs,
        1,
    )
    .unwrap();
    assert_eq!(planned.diff.len(), chunks.len());
    assert_eq!(
        (planned.priority.len(), planned.payout.len()),
        (chunks.len(), chunks.len()),
        "every tree of the batch has the diff's count"
    );
    let (w, s) = chunks[with_body[0]].clone();
    let stated: Vec<u64> = s.to_fields().iter().map(|x| x.to_canonical_u64()).collect();
    let proof = reg
        .prove_tree_leaf(
            ProofTree::Diff,
            DiffCircuitKind::V4Shares,
            &chunk_input(w, s),
        )
        .unwrap();
    assert_eq!(proof.statement, serde_json::json!(stated));
}

/// A leaf of one delegate forged on `state`: `signer` (with `key`) creates an agent of
/// `agent`'s key funded with `fund` under `policy`, written at index `at` after reading the
/// account at `below`; the accesses as the circuit writes them (the signer pays the fund and a
/// fee of 1), no rule checked.
fn forged_delegate(
    state: &mut State,
    signer: AccountIndex,
    key: &SecretKey,
    fund: u64,
    at: u32,
    below: u32,
) -> LeafWitness {
    let nonce = state.account(signer).unwrap().nonce.get();
    let policy = policy(50, NOW + 100, vec![BOB]);
    let agent = agent_key(NEXT);
    let action = delegate(&agent, fund, policy.clone());
    let Transaction::Passport(tx) = owner_tx(signer, action.clone(), nonce, key) else {
        unreachable!()
    };
    let mut s = intent(SlotKind::Delegate);
    (s.a.index, s.b.index) = (signer.0, at);
    (s.fee, s.nonce, s.valid_until, s.amount) = (1, nonce, NOW + 60, fund);
    let pubkey = agent
        .public_key()
        .to_field_elements()
        .map(|e| e.to_canonical_u64());
    s.pubkey = pubkey;
    s.parts_digest = policy.digest();
    s.signature = Some(tx.signature);
    s.signer = Some(SignerOpening::of(state, signer, ts(), None));
    s.owner = Some(OwnerOpening::of(state, signer));
    let op = PassportOp {
        owner: signer,
        agent: AccountIndex(at),
        action,
        fee: amt(1),
    };
    let mut f = Forger::new(state);
    super::shares::forged_leaf(&mut f, |f, _| {
        s.a = f.access(signer.0, |old| {
            old.map(|mut a| {
                a.balance = (felt(a.balance) - felt(fund + 1)).to_canonical_u64();
                a.nonce += 1;
                a
            })
        });
        s.below = Some(f.access(below, |old| old));
        s.b = f.access(at, |_| {
            Some(AccountFields {
                pubkey,
                balance: fund,
                nonce: 0,
                ext: fresh_ext(signer, &policy),
            })
        });
        s.c = f.access(0, |old| {
            old.map(|mut o| {
                o.balance += 1;
                o
            })
        });
        f.pubdata = state::pubdata::policy_entry(f.pubdata, &op).unwrap();
        vec![s]
    })
}

/// A policy change of `agent` to a cap of 900, as [`forged_owner_slot`] forges it.
fn new_policy(agent: AccountIndex) -> PassportAction {
    PassportAction::SetPolicy {
        agent,
        policy: policy(900, NOW + 100, vec![]),
    }
}

#[test]
fn delegates_and_policy_changes_the_rules_refuse_have_no_proof() {
    let k = keys();
    let last = NEXT.0 - 1;
    // The forges are sound: Alice's delegate at the next index, and her policy change of
    // LISTED, prove.
    let mut s = world(&k);
    let w = forged_delegate(&mut s, ALICE, &k.alice, 40, NEXT.0, last);
    try_prove_with(agents_circuit(), &w).unwrap();
    let mut s = world(&k);
    let o = AgentOpening::of(&s, LISTED).unwrap();
    let w = forged_owner_slot(&mut s, ALICE, new_policy(LISTED), o, &k.alice);
    try_prove_with(agents_circuit(), &w).unwrap();

    // A delegation not signed by the owner: Alice's, signed by Bob's key.
    let mut s = world(&k);
    let w = forged_delegate(&mut s, ALICE, &k.bob, 40, NEXT.0, last);
    let err = try_prove_with(agents_circuit(), &w).expect_err("a delegate signed by another");
    println!("a delegate not signed by the owner: refused: {err}");
    // An agent delegating (its own key, its own name).
    let mut s = world(&k);
    let w = forged_delegate(&mut s, FREE, &agent_key(FREE), 40, NEXT.0, last);
    assert_eq!(
        refused_owner("an agent delegates", &w),
        Some((0, OwnerRule::AgentCannotDelegate))
    );
    // Not the next index: one past it (the account below it is empty), and the last account
    // overwritten (B is not empty).
    let mut s = world(&k);
    let w = forged_delegate(&mut s, ALICE, &k.alice, 40, NEXT.0 + 1, NEXT.0);
    assert_eq!(
        refused_owner("a skipped index", &w),
        Some((0, OwnerRule::NotNextIndex))
    );
    let mut s = world(&k);
    let w = forged_delegate(&mut s, ALICE, &k.alice, 40, last, last - 1);
    assert_eq!(
        refused_owner("an existing account", &w),
        Some((0, OwnerRule::NotNextIndex))
    );
    // A fund past the owner's balance (Alice holds 100 after funding her three agents: the fee tips it over).
    let mut s = world(&k);
    let alice = s.account(ALICE).unwrap().balance.get();
    let w = forged_delegate(&mut s, ALICE, &k.alice, alice, NEXT.0, last);
    let err = try_prove_with(agents_circuit(), &w).expect_err("a fund past the balance");
    println!("a fund past the owner's balance: refused: {err}");

    // A policy change signed by the agent: in its own name (it owns no agent) and in Alice's.
    let mut s = world(&k);
    let o = AgentOpening::of(&s, LISTED).unwrap();
    let w = forged_owner_slot(&mut s, LISTED, new_policy(LISTED), o, &agent_key(LISTED));
    assert_eq!(
        refused_owner("the agent changes its own policy", &w),
        Some((0, OwnerRule::NotOwner))
    );
    let mut s = world(&k);
    let o = AgentOpening::of(&s, LISTED).unwrap();
    let w = forged_owner_slot(&mut s, ALICE, new_policy(LISTED), o, &agent_key(LISTED));
    let err = try_prove_with(agents_circuit(), &w).expect_err("a policy change by the agent");
    println!("a policy change signed by the agent: refused: {err}");
    // Another owner's, and a revoked agent's.
    let mut s = world(&k);
    let o = AgentOpening::of(&s, LISTED).unwrap();
    let w = forged_owner_slot(&mut s, BOB, new_policy(LISTED), o, &k.bob);
    assert_eq!(
        refused_owner("another owner", &w),
        Some((0, OwnerRule::NotOwner))
    );
    let mut s = world(&k);
    s.apply(
        &owner_tx(ALICE, PassportAction::Revoke { agent: LISTED }, 3, &k.alice),
        &ctx(),
    )
    .unwrap();
    let o = AgentOpening::of(&s, LISTED).unwrap();
    let w = forged_owner_slot(&mut s, ALICE, new_policy(LISTED), o, &k.alice);
    assert_eq!(
        refused_owner("a revoked agent", &w),
        Some((0, OwnerRule::Revoked))
    );
}

#[test]
fn revenue_shares_lock_an_owners_delegate_and_its_sweep() {
    use rollup_prover::circuits::payment::SharesRule;
    let k = keys();
    let last = NEXT.0 - 1;
    // In a circuit with every kind, Alice's delegate proves while she has no shares.
    let mut s = world(&k);
    let w = forged_delegate(&mut s, ALICE, &k.alice, 40, NEXT.0, last);
    try_prove_with(every_kind_circuit(), &w).unwrap();
    // Once her shares are registered, the lock refuses it (natively: SHARES_LOCKED).
    let mut s = world(&k);
    let shares = super::shares::register_shares(ALICE, vec![(BOB, 10_000)], 0, 3, &k.alice);
    s.apply(&shares.into(), &ctx()).unwrap();
    let tx = owner_tx(
        ALICE,
        delegate(&agent_key(NEXT), 40, policy(50, NOW + 100, vec![BOB])),
        4,
        &k.alice,
    );
    // (A refused transaction changes nothing: the forge below starts from the same state.)
    let got = s.apply(&tx, &ctx()).map(|_| ()).map_err(|r| r.code());
    assert_eq!(got, Err("SHARES_LOCKED"));
    let w = forged_delegate(&mut s, ALICE, &k.alice, 40, NEXT.0, last);
    assert_eq!(
        refused_with(
            every_kind_circuit(),
            "a delegate from an account with shares",
            &w,
            PaymentCircuit::refused_by_shares
        ),
        Some((0, SharesRule::SharesLocked))
    );

    // An agent with shares: its owner's sweep is refused too (natively: SHARES_LOCKED), in
    // the circuit by the owner branch's opening of the agent.
    let mut s = world(&k);
    let shares = super::shares::register_shares(FREE, vec![(BOB, 10_000)], 0, 0, &agent_key(FREE));
    s.apply(&shares.into(), &ctx()).unwrap();
    let sweep = PassportAction::Sweep {
        agent: FREE,
        amount: amt(10),
    };
    let tx = owner_tx(ALICE, sweep.clone(), 3, &k.alice);
    let got = s.apply(&tx, &ctx()).map(|_| ()).map_err(|r| r.code());
    assert_eq!(got, Err("SHARES_LOCKED"));
    let o = AgentOpening::of(&s, FREE).unwrap();
    let w = forged_owner_slot(&mut s, ALICE, sweep, o, &k.alice);
    assert_eq!(
        refused_owner("a sweep from an agent with shares", &w),
        Some((0, OwnerRule::SharesLocked))
    );
}
