//! Settlements by path (SPEC 18.8) in the payment circuit: a tree stream settles ticks with
//! one path whatever their number (past the 2^16 a walk may settle), keeps its root as the
//! head and hands no walk over; a secret, a sibling or a tick that does not open the tree, and
//! a chain stream passed off as a tree, are refused by the rule `TickPath`.

use state::stream::tick_tree::TickPath;
use state::stream::TickTree;
use state::tx::SettlePathBody;

use super::*;

/// Alice's tick tree for the test stream (slot 0, opened at nonce 0), `max` ticks.
fn tree(max: u32) -> TickTree {
    TickTree::new(
        chain().id(),
        TickCount::new(max).unwrap(),
        hash_no_pad(&[felt(77)]),
    )
}

fn settle_path_tx(from: u32, to: u32, t: &mut TickTree, nonce: u64, k: &Keys) -> Transaction {
    let tick = t.tick(to, None).unwrap();
    let body = SettlePathBody {
        payee: BOB,
        terms: Settle {
            payer: ALICE,
            slot: StreamSlot(0),
            from: TickCount::new(from).unwrap(),
            to: TickCount::new(to).unwrap(),
            value: tick.secret,
        },
        path: t.path(to).unwrap(),
    };
    signed(body, 1, nonce, &k.bob).into()
}

/// Alice's tree stream to Bob of `max` ticks at `PRICE`, open natively at `NOW`.
fn world_with_tree(k: &Keys, max: u32) -> State {
    let mut state = world_with_stream(k, NOW, NOW + 100);
    // Bob closes the chain stream of slot 0; Alice opens the tree stream there.
    state.apply(&close_tx(BOB, 0, 0, &k.bob), &ctx()).unwrap();
    state.apply(&deposit(3, ALICE, 1 << 40), &ctx()).unwrap();
    let terms = Open {
        max_ticks: TickCount::new(max).unwrap(),
        ..open_terms(tree_at(1, max).root())
    };
    state
        .apply(
            &Transaction::StreamOpen(signed(terms, 1, 1, &k.alice)),
            &ctx(),
        )
        .unwrap();
    state
}

/// The tree of the stream Alice opens at nonce `opened_at`.
fn tree_at(opened_at: u64, max: u32) -> TickTree {
    let mut id = chain().id();
    id.opened_at = Nonce::new(opened_at).unwrap();
    TickTree::new(id, TickCount::new(max).unwrap(), hash_no_pad(&[felt(77)]))
}

/// A settlement by path of Alice's slot 0 by Bob, signed by `k` (tag 18, the fields of tag 8).
fn settle_path_intent(
    from: u32,
    to: u32,
    secret: Digest,
    path: TickPath,
    nonce: u64,
    k: &SecretKey,
) -> SlotWitness {
    let mut fields = vec![
        felt(BOB.0.into()),
        felt(ALICE.0.into()),
        felt(0),
        felt(from.into()),
        felt(to.into()),
    ];
    fields.extend(secret.elements());
    let sig = sign_fields(k, 18, &fields, nonce);
    s_intent(
        SlotKind::StreamSettlePath,
        BOB,
        ALICE,
        0,
        nonce,
        StreamWitness {
            slot: 0,
            to,
            t_to: secret,
            tick_path: path.to_vec(),
            ..StreamWitness::idle()
        },
        Some(sig),
    )
}

#[test]
fn a_tree_stream_settles_by_paths_with_the_native_statement_past_what_a_walk_may_settle() {
    let _ = tree(1);
    let k = keys();
    // 2^17 ticks: one path settles 100,000 of them, which no walk may (2^16 at most).
    let max = 1 << 17;
    let mut state = world_with_tree(&k, max);
    let mut t = tree_at(1, max);
    let root = t.root();
    let txs = vec![
        (settle_path_tx(0, 100_000, &mut t, 1, &k), ctx()),
        (settle_path_tx(100_000, max, &mut t, 2, &k), ctx()),
    ];
    let bob_before = state.account(BOB).unwrap().balance.get();
    let leaves = leaf_witnesses(&mut state, &txs, ts(), K, 0, &depositor).unwrap();
    let w = &leaves[0];
    let s = prove_streams(w).unwrap_or_else(|e| panic!("the honest settlements by path: {e}"));
    assert_eq!(s, w.statement);
    assert_eq!(s.new_root, state.root());
    assert_eq!(
        state.account(BOB).unwrap().balance.get(),
        bob_before + PRICE * u64::from(max) - 2
    );
    let stream = *state.streams_of(ALICE).get(StreamSlot(0)).unwrap();
    assert_eq!((stream.settled.get(), stream.head), (max, root));
    // No walk is handed over.
    assert_eq!(s.walks_out, s.walks_in);
    assert!(walk_records(&leaves).is_empty());
}

#[test]
fn a_tick_that_does_not_open_the_tree_is_refused_by_the_circuit() {
    let k = keys();
    let max = TICKS;
    let attack = |name: &str, world: &dyn Fn() -> State, intent: SlotWitness, rule: StreamRule| {
        let mut state = world();
        let w = StreamForger::new(&mut state).leaf(vec![(intent, StreamCheat::None)]);
        assert_eq!(refused(name, &w), Some((0, rule)), "{name}");
    };
    let with_tree = || world_with_tree(&keys(), max);
    let mut t = tree_at(1, max);
    let (s4, p4) = (t.tick(4, None).unwrap().secret, t.path(4).unwrap());
    // The honest one proves (the forger agrees with the circuit).
    let mut state = with_tree();
    let honest = StreamForger::new(&mut state).leaf(vec![(
        settle_path_intent(0, 4, s4, p4, 1, &k.bob),
        StreamCheat::None,
    )]);
    prove_streams(&honest).unwrap_or_else(|e| panic!("the honest forged settlement: {e}"));

    attack(
        "another secret",
        &with_tree,
        settle_path_intent(0, 4, hash_no_pad(&[felt(5)]), p4, 1, &k.bob),
        StreamRule::TickPath,
    );
    let mut bent = p4;
    bent[3] = bent[2];
    attack(
        "a bent sibling",
        &with_tree,
        settle_path_intent(0, 4, s4, bent, 1, &k.bob),
        StreamRule::TickPath,
    );
    attack(
        "tick 4's opening claimed for tick 5",
        &with_tree,
        settle_path_intent(0, 5, s4, p4, 1, &k.bob),
        StreamRule::TickPath,
    );
    attack(
        "a tick past the maximum",
        &with_tree,
        settle_path_intent(0, max + 1, s4, p4, 1, &k.bob),
        StreamRule::TickBeyondMax,
    );
    // A chain stream settled by path: the payee's chain values stacked into a "path" to the
    // anchor (every step a true chain step), with tick 24's... the chain has 10 ticks, so the
    // stack uses what the payee holds; no leaf hashes to a chain value.
    let chain_world = || world_with_stream(&keys(), NOW, NOW + 100);
    let mut ch = chain();
    let t4 = ch.tick(4).unwrap().value;
    let [i0, i1] = ch.id().to_field_elements();
    let tag = felt(state::stream::chain::TAG_TICK.into());
    let mut stack = [Digest::ZERO; state::stream::TICK_TREE_DEPTH];
    for (l, sibling) in stack.iter_mut().enumerate().take(4) {
        *sibling = Digest([i0, i1, felt((4 - l) as u64), tag]);
    }
    attack(
        "a chain stream settled by path",
        &chain_world,
        settle_path_intent(0, 4, t4, stack, 0, &k.bob),
        StreamRule::TickPath,
    );
}
