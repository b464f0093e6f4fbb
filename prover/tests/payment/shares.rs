//! The revenue-share kinds in the payment circuit (SPEC 19.6, "In-circuit"): a leaf built
//! with them registers shares and distributes exactly as the native rules do, hands the lists
//! and payouts to the split-credit chain as the records its kinds fold, locks every spend from
//! an account with shares (a forced withdrawal from one publishes status 15), and refuses each
//! rule broken by a witness built past the native checks, naming it.
//!
//! The attacks forge slots with the accounts forger of `payment.rs` (a transfer or a forced
//! withdrawal from a locked account), or with [`forge`] below (a registration or a distribute
//! the rules refuse): the slot's writes as the circuit makes them, no rule checked.

use rollup_prover::circuits::payment::{PaymentKinds, SharesRule};
use rollup_prover::circuits::split::{SplitChainBuilder, SplitKind};
use rollup_prover::witness::{leaf_witnesses_and_chain, OwnerOpening};
use state::ext::{ext_digest, Profile};
use state::pubdata::{shares_entry, ForcedStatus};
use state::split::{shares_chain, shares_digest, BPS_WHOLE};
use state::tx::{DistributeBody, RegisterShares, Signed, Unsigned, UnsignedRegisterShares};

use super::*;

const CAROL: AccountIndex = AccountIndex(3);

/// Carol's shares: 60% to Alice, 40% to Bob.
fn parts() -> Vec<(AccountIndex, u16)> {
    vec![(ALICE, 6_000), (BOB, 4_000)]
}

/// The payment circuit with the revenue-share kinds (`K` slots, no stream kind), built once
/// per test binary (the settlement test proves with [`super::kinds_registry`]).
fn shares_circuit() -> &'static PaymentCircuit {
    static C: OnceLock<PaymentCircuit> = OnceLock::new();
    C.get_or_init(|| {
        let t = Instant::now();
        let kinds = PaymentKinds {
            shares: true,
            ..PaymentKinds::default()
        };
        let c = PaymentCircuit::build_kinds(K, kinds);
        println!(
            "payment circuit with the revenue-share kinds, k={K}: {} rows (degree), {} gates \
             per slot (without them: {}), built in {:?}",
            c.data.common.degree(),
            c.gates_per_slot,
            PaymentCircuit::gates_per_slot_of(PaymentKinds::default()),
            t.elapsed()
        );
        c
    })
}

pub(super) fn register_shares(
    account: AccountIndex,
    parts: Vec<(AccountIndex, u16)>,
    fee: u64,
    nonce: u64,
    k: &SecretKey,
) -> RegisterShares {
    UnsignedRegisterShares {
        account,
        parts,
        fee: amt(fee),
        nonce: Nonce::new(nonce).unwrap(),
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, k)
}

fn distribute(
    signer: AccountIndex,
    account: AccountIndex,
    fee: u64,
    nonce: u64,
    k: &SecretKey,
) -> Signed<DistributeBody> {
    Unsigned {
        body: DistributeBody { signer, account },
        fee: amt(fee),
        nonce: Nonce::new(nonce).unwrap(),
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, k)
}

/// [`setup`] with Carol (3) registered and 40 deposited to her.
fn world(k: &Keys) -> State {
    let mut s = setup(k);
    for tx in [register(&k.carol), deposit(2, CAROL, 40)] {
        s.apply(&tx, &ctx()).unwrap();
    }
    s
}

/// [`world`] with Carol's shares registered (natively, nonce 0, fee 1).
fn locked_world(k: &Keys) -> State {
    let mut s = world(k);
    let tx = register_shares(CAROL, parts(), 1, 0, &k.carol);
    s.apply(&tx.into(), &ctx()).unwrap();
    s
}

fn leaves_and_chain(
    state: &mut State,
    txs: &[Transaction],
) -> (Vec<LeafWitness>, SplitChainBuilder) {
    let with_ctx: Vec<_> = txs.iter().map(|t| (t.clone(), ctx())).collect();
    let mut chain = SplitChainBuilder::new(4);
    let leaves =
        leaf_witnesses_and_chain(state, &with_ctx, ts(), K, 0, &depositor, Some(&mut chain))
            .unwrap();
    (leaves, chain)
}

#[test]
fn shares_register_distribute_and_lock_as_the_native_rules_do() {
    let k = keys();
    let mut state = world(&k);
    let txs: Vec<Transaction> = vec![
        register_shares(CAROL, parts(), 1, 0, &k.carol).into(),
        transfer(ALICE, CAROL, 101, 1, 0, &k.alice),
        // Bob triggers the payout of Carol's 140: 56 to Bob (40%), the 84 left to Alice.
        distribute(BOB, CAROL, 1, 0, &k.bob).into(),
        transfer(ALICE, CAROL, 10, 1, 1, &k.alice),
        // Carol's own withdrawal from L1 is refused for the lock (15, after the nonce rules).
        forced(3, NOW, withdraw(CAROL, 5, 0, 1, &k.carol)),
        // Carol distributes her own 10 after her fee: 3 to Bob, 6 to Alice.
        distribute(CAROL, CAROL, 1, 1, &k.carol).into(),
    ];
    let (leaves, chain) = leaves_and_chain(&mut state, &txs);
    assert_eq!(leaves.len(), 2);
    let forced_status = leaves[1].slots[0].forced_status;
    assert_eq!(forced_status, ForcedStatus::SharesLocked as u8);
    assert_eq!(state.account(CAROL).unwrap().balance, Amount::ZERO);
    assert_eq!(state.shares_of(CAROL).unwrap().parts(), parts().as_slice());
    let kinds: Vec<SplitKind> = leaves
        .iter()
        .flat_map(|l| l.slots.iter().filter_map(|s| s.split_record()))
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            SplitKind::Register,
            SplitKind::Distribute,
            SplitKind::Distribute
        ]
    );
    // The chain folds the records the leaves hand over (leaf_witnesses_and_chain checks each).
    let chunks = chain.chunks(1, 1);
    assert_eq!(
        chunks.last().unwrap().statement.acc_out,
        leaves[1].statement.splits_out
    );
    for leaf in &leaves {
        let proven = try_prove_with(shares_circuit(), leaf).unwrap();
        assert_eq!(proven, leaf.statement);
    }
    // A leaf without the revenue-share kinds has no slot for them.
    let err = circuit().prove(&leaves[0]).unwrap_err();
    assert!(
        format!("{err:#}").contains("without the revenue-share kinds"),
        "{err:#}"
    );
}

/// Proves `w` with the shares circuit; the rule it broke (the attack must be refused).
fn refused(name: &str, w: &LeafWitness) -> Option<(usize, SharesRule)> {
    refused_with(shares_circuit(), name, w, PaymentCircuit::refused_by_shares)
}

/// A transfer intent with the owner's opening the circuit reads.
fn opened(mut s: SlotWitness, state: &State, owner: AccountIndex) -> SlotWitness {
    s.owner = Some(OwnerOpening::of(state, owner));
    s
}

#[test]
fn a_spend_from_an_account_with_shares_has_no_proof() {
    let k = keys();
    // Carol (shares set, 39 left, nonce 1) pays Alice 5 past the native lock.
    let w = forged_transfer(&k, |s| {
        opened(t_intent(3, 1, 5, 1, 1, NOW + 60, &k.carol), s, CAROL)
    });
    assert_eq!(
        refused("a transfer from a locked account", &w),
        Some((0, SharesRule::SharesLocked))
    );
    // The same transfer with an opening that hides the shares (the parts of an account with
    // no profile but Carol's book): the opening is not Carol's `ext`.
    let w = forged_transfer(&k, |s| {
        let mut t = opened(t_intent(3, 1, 5, 1, 1, NOW + 60, &k.carol), s, CAROL);
        if let Some(o) = t.owner.as_mut() {
            o.profile.shares = Digest::ZERO;
        }
        t
    });
    assert_eq!(
        refused("a locked account's shares hidden", &w),
        Some((0, SharesRule::OwnerExt))
    );
    // The same transfer from Alice (no shares) proves: the lock is the rule that refused.
    let w = forged_transfer(&k, |s| {
        opened(t_intent(1, 3, 5, 1, 0, NOW + 60, &k.alice), s, ALICE)
    });
    try_prove_with(shares_circuit(), &w).unwrap();
}

/// A leaf of the one slot `intent` (made against [`locked_world`]) forged on that world by
/// the accounts forger.
fn forged_transfer(k: &Keys, intent: impl FnOnce(&State) -> SlotWitness) -> LeafWitness {
    let mut state = locked_world(k);
    let t = intent(&state);
    Forger::new(&mut state).leaf(vec![(t, Cheat::None)])
}

#[test]
fn a_forced_withdrawal_from_an_account_with_shares_publishes_the_lock() {
    let k = keys();
    let request = || withdraw(CAROL, 5, 0, 1, &k.carol);
    // Applied (status 0), or refused for the balance (7, a later rule): both have no proof.
    for status in [0, ForcedStatus::InsufficientBalance as u8] {
        let mut state = locked_world(&k);
        let mut forger = Forger::new(&mut state);
        let mut f = f_intent(3, NOW, request(), status);
        f.owner = Some(OwnerOpening::of(&state, CAROL));
        let w = forger.leaf(vec![(f, Cheat::None)]);
        let err = try_prove_with(shares_circuit(), &w)
            .expect_err(&format!("status {status} for a locked sender proved"));
        println!("forced withdrawal from a locked account with status {status}: refused: {err}");
    }
    // Its native status (15) proves.
    let mut state = locked_world(&k);
    let (leaves, _) = leaves_and_chain(&mut state, &[forced(3, NOW, request())]);
    assert_eq!(leaves[0].slots[0].forced_status, 15);
    try_prove_with(shares_circuit(), &leaves[0]).unwrap();
}

/// What a forged revenue-share slot writes: A's new fields, B's.
type Write = Box<dyn Fn(AccountFields) -> AccountFields>;

/// A revenue-share slot `s` (kind, fields, indices, signature, opening; a registration's
/// `list`) applied to the forger's tree as the circuit applies it, no rule checked: A's
/// write, B's, the record folded into `splits` (a distribute's credits are the chain's: none
/// here, so `split_root` is the root after B), C's fee; the op absorbed.
fn forge(
    f: &mut Forger,
    mut s: SlotWitness,
    list: &[(AccountIndex, u16)],
    a: Write,
    b: Write,
    splits: &mut Digest,
) -> SlotWitness {
    let (ai, bi, fee) = (s.a.index, s.b.index, s.fee);
    s.a = f.access(ai, |old| old.map(&a));
    s.b = f.access(bi, |old| old.map(&b));
    s.split_root = f.tree.root();
    *splits = s.split_record().unwrap().absorb(*splits);
    s.c = f.access(0, |old| {
        old.map(|mut o| {
            o.balance += fee;
            o
        })
    });
    f.pubdata = match s.kind {
        SlotKind::RegisterShares => shares_entry(f.pubdata, AccountIndex(ai), list, amt(fee)),
        _ => {
            let mut bytes = vec![12];
            bytes.extend(ai.to_le_bytes());
            bytes.extend(bi.to_le_bytes());
            bytes.extend(fee.to_le_bytes());
            absorb_bytes(f.pubdata, &bytes)
        }
    };
    s
}

/// A leaf of the forged slots `slots` (built by `build` on the forger), padded with no-ops.
pub(super) fn forged_leaf(
    f: &mut Forger,
    build: impl FnOnce(&mut Forger, &mut Digest) -> Vec<SlotWitness>,
) -> LeafWitness {
    let old_root = f.tree.root();
    let (pubdata_in, withdrawals_in, deposits_first, entries_in) =
        (f.pubdata, f.withdrawals, f.deposits, f.entries);
    let mut splits = Digest::ZERO;
    let mut slots = build(f, &mut splits);
    while slots.len() < K {
        slots.push(f.slot(intent(SlotKind::Noop), Cheat::None));
    }
    LeafWitness {
        statement: RangeStatement {
            old_root,
            new_root: f.tree.root(),
            pubdata_in,
            pubdata_out: f.pubdata,
            withdrawals_in,
            withdrawals_out: f.withdrawals,
            deposits_first,
            deposits_next: f.deposits,
            timestamp: NOW,
            domain: DOMAIN.digest(),
            entries_in,
            entries_out: f.entries,
            splits_in: Digest::ZERO,
            splits_out: splits,
            walks_in: Digest::ZERO,
            walks_out: Digest::ZERO,
        },
        slots,
    }
}

/// A registration slot of `parts` by `account`, signed with `k`, as its intent.
fn register_intent(
    state: &State,
    account: AccountIndex,
    parts: Vec<(AccountIndex, u16)>,
    nonce: u64,
    k: &SecretKey,
) -> SlotWitness {
    let tx = register_shares(account, parts.clone(), 1, nonce, k);
    let mut s = intent(SlotKind::RegisterShares);
    s.a.index = account.0;
    s.fee = 1;
    s.nonce = nonce;
    s.valid_until = NOW + 60;
    s.n = parts.len() as u32;
    s.parts_digest = shares_chain(&parts);
    s.signature = Some(tx.signature);
    s.owner = Some(OwnerOpening::of(state, account));
    s
}

/// A distribute slot of `account`'s `amount` by `signer` (fee 1), for the list `parts`.
fn distribute_intent(
    state: &State,
    signer: AccountIndex,
    account: AccountIndex,
    amount: u64,
    parts: &[(AccountIndex, u16)],
    nonce: u64,
    k: &SecretKey,
) -> SlotWitness {
    let tx = distribute(signer, account, 1, nonce, k);
    let mut s = intent(SlotKind::Distribute);
    s.a.index = signer.0;
    s.b.index = account.0;
    s.amount = amount;
    s.fee = 1;
    s.nonce = nonce;
    s.valid_until = NOW + 60;
    s.n = parts.len() as u32;
    s.parts_digest = shares_chain(parts);
    s.signature = Some(tx.signature);
    s.owner = Some(OwnerOpening::of(state, account));
    s
}

/// The signer's write: the fee paid, the nonce used.
fn pays_fee() -> Write {
    Box::new(|mut a| {
        a.balance -= 1;
        a.nonce += 1;
        a
    })
}

fn emptied() -> Write {
    Box::new(|mut a| {
        a.balance = 0;
        a
    })
}

#[test]
fn registrations_and_distributes_the_rules_refuse_have_no_proof() {
    let k = keys();

    // A second registration over Carol's shares (its new `ext` commits the new list).
    let mut state = locked_world(&k);
    let other = vec![(ALICE, BPS_WHOLE)];
    let profile = Profile {
        shares: shares_digest(&other),
        ..state.profile_of(CAROL)
    };
    let new_ext = ext_digest(state.streams_of(CAROL).root(), profile.digest());
    let s = register_intent(&state, CAROL, other.clone(), 1, &k.carol);
    let mut f = Forger::new(&mut state);
    let w = forged_leaf(&mut f, |f, splits| {
        let a: Write = Box::new(move |mut a| {
            a.balance -= 1;
            a.nonce += 1;
            a.ext = new_ext;
            a
        });
        vec![forge(f, s, &other, a, Box::new(|b| b), splits)]
    });
    assert_eq!(
        refused("shares registered twice", &w),
        Some((0, SharesRule::SharesAlreadySet))
    );

    // A distribute of Alice's balance, who has no shares, by Carol's list.
    let w = forged_distributes(&k, |s| {
        vec![distribute_intent(s, BOB, ALICE, 1000, &parts(), 0, &k.bob)]
    });
    assert_eq!(
        refused("a distribute without shares", &w),
        Some((0, SharesRule::NoShares))
    );

    // A distribute of part of Carol's 39 (the rest would stay in a locked account).
    let w = forged_distributes(&k, |s| {
        vec![distribute_intent(s, BOB, CAROL, 30, &parts(), 0, &k.bob)]
    });
    assert_eq!(
        refused("a distribute of part of the balance", &w),
        Some((0, SharesRule::WholeBalance))
    );

    // A distribute of nothing: Carol's balance paid out, then distributed again.
    let w = forged_distributes(&k, |s| {
        vec![
            distribute_intent(s, BOB, CAROL, 39, &parts(), 0, &k.bob),
            distribute_intent(s, BOB, CAROL, 0, &parts(), 1, &k.bob),
        ]
    });
    assert_eq!(
        refused("a distribute of nothing", &w),
        Some((1, SharesRule::NothingToDistribute))
    );

    // A distribute of an index no account holds (its leaf is empty: no fields, `ext` ZERO).
    let w = forged_distributes(&k, |s| {
        vec![distribute_intent(
            s,
            BOB,
            AccountIndex(9),
            0,
            &parts(),
            0,
            &k.bob,
        )]
    });
    let rule = refused("a distribute of an empty index", &w);
    assert!(
        matches!(
            rule,
            Some((0, SharesRule::UnknownAccount | SharesRule::NoShares))
        ),
        "{rule:?}"
    );

    // The forge itself is sound: Carol's whole balance distributed proves.
    let w = forged_distributes(&k, |s| {
        vec![distribute_intent(s, BOB, CAROL, 39, &parts(), 0, &k.bob)]
    });
    try_prove_with(shares_circuit(), &w).unwrap();
}

/// A leaf of the distribute slots `intents` (made against [`locked_world`]) forged on that
/// world, each paying its signer's fee and emptying its account.
fn forged_distributes(k: &Keys, intents: impl FnOnce(&State) -> Vec<SlotWitness>) -> LeafWitness {
    let mut state = locked_world(k);
    let slots = intents(&state);
    let mut f = Forger::new(&mut state);
    forged_leaf(&mut f, |f, splits| {
        slots
            .into_iter()
            .map(|s| forge(f, s, &[], pays_fee(), emptied(), splits))
            .collect()
    })
}

/// A batch that registers Carol's shares, pays her and distributes, proven end to end: its
/// leaf, its version 4 diff with the shares record (the `v4-shares` chunk), its priority and
/// payout chunks and its split-credit chain with the registration's and the distribute's
/// records, under the `final-0-v4-shares-splits` settlement circuit, whose proof states the
/// batch's L1 statement and verifies against the exported verifier. The finals of `v4-shares`
/// without the chain, or over a leaf without the kinds, are refused.
#[test]
fn a_batch_with_a_registration_and_lanes_settles_with_its_shares_diff() {
    use rollup_prover::circuits::diff_grouped::{grouped_chunks, GroupedParts};
    use rollup_prover::circuits::split::LANE_PAYEES;
    use rollup_prover::pins::FinalId;
    use rollup_prover::planner::chunks::{diff_kind, split_chunks};
    use rollup_prover::verify::{verify_batch_proof, VerifierSet};
    use rollup_storage::{DiffCircuitKind, ProofTree};
    use state::diff::{AccountTree, BatchTouches};

    const BATCH: u64 = 5;
    let k = keys();
    // Alice's second payment is in lane 3 (SPEC 20.1): the diff's lanes record, proven by the
    // same shape (agent parts with the shares runs) over a leaf with policy checks.
    let lane_3 = super::agents::in_lane(3, 0);
    let txs: Vec<(Transaction, BlockContext)> = [
        register_shares(CAROL, parts(), 1, 0, &k.carol).into(),
        transfer(ALICE, CAROL, 101, 1, 0, &k.alice),
        distribute(BOB, CAROL, 1, 0, &k.bob).into(),
        transfer(ALICE, BOB, 7, 1, lane_3, &k.alice),
    ]
    .into_iter()
    .map(|t| (t, ctx()))
    .collect();
    let lanes_on = |mut s: State| {
        s.enable_lanes();
        s
    };
    let mut before = lanes_on(world(&k));
    let mut after = lanes_on(world(&k));
    let mut touches = BatchTouches::new(after.num_accounts());
    for (tx, ctx) in &txs {
        touches.absorb(&after.apply(tx, ctx).unwrap());
    }
    let diff = touches.diff(&after).unwrap();
    assert_eq!(diff.shares().len(), 1);
    assert_eq!(diff.lanes().len(), 1, "Alice's lane 3");
    let published = diff.encode_published();
    let kind = diff_kind(&diff);
    assert_eq!(kind, DiffCircuitKind::V4Shares);

    let reg = super::kinds_registry();
    let shape = reg.shape();
    assert!(
        shape.split_shares,
        "the chain of a leaf with the kinds proves their records"
    );
    let mut replay = lanes_on(world(&k));
    let mut chain = SplitChainBuilder::new(LANE_PAYEES);
    let leaves =
        leaf_witnesses_and_chain(&mut replay, &txs, ts(), K, 1, &depositor, Some(&mut chain))
            .unwrap();
    assert_eq!(leaves.len(), 1);
    let prove =
        |tree: ProofTree, input: &[u8]| reg.prove_tree_leaf(tree, kind, input).unwrap().bytes;
    let range = prove(ProofTree::Range, &serde_json::to_vec(&leaves[0]).unwrap());
    let tree = AccountTree::from_state(&before);
    let (gw, gs) = grouped_chunks(
        &tree,
        &diff,
        shape.grouped_cap,
        shape.grouped_subs,
        GroupedParts::Shares,
        1,
    )
    .unwrap()
    .remove(0);
    let diff_root = prove(ProofTree::Diff, &chunk_input(gw, gs));
    let quiet = quiet_batch(reg, kind, BATCH, (&mut before, &mut after), &published);
    let splits_in = split_chunks(chain, shape, 1).unwrap();
    let splits = prove(ProofTree::Splits, &splits_in[0]);

    let id = FinalId::of(0, kind).with_splits();
    let roots = [range, diff_root, quiet.priority, quiet.payout, splits];
    let (bytes, statement) = reg.prove_final(id, &roots, &DOMAIN).unwrap();
    let expected = quiet.expected;
    assert_eq!(statement, expected);
    let set = VerifierSet::from_source(reg, [id]).unwrap();
    verify_batch_proof(&set, &bytes, &expected).unwrap();

    // A `v4-shares` final without the chain proves nothing a batch needs; a registry whose
    // leaf lacks the kinds (and the lock) builds none.
    let err = reg
        .prove_final(FinalId::of(0, kind), &roots[..4], &DOMAIN)
        .expect_err("a v4-shares final without the chain");
    assert!(format!("{err:#}").contains("--leaf-shares"), "{err:#}");
    let plain = Circuits::new(PaymentCircuit::build(1), CircuitCache::disabled());
    let err = plain
        .final_circuit(id)
        .err()
        .expect("a v4-shares final over a plain leaf");
    assert!(format!("{err:#}").contains("--leaf-shares"), "{err:#}");
    // Nor does it build the finals of `v4-agents` diffs (a batch with lanes and no shares
    // record): their lanes records need a leaf with policy checks.
    let err = plain
        .final_circuit(FinalId::of(0, DiffCircuitKind::V4Agents))
        .err()
        .expect("a v4-agents final over a plain leaf");
    assert!(format!("{err:#}").contains("--leaf-policies"), "{err:#}");
}
