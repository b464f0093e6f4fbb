//! The stream transactions through [`State::apply`]: a whole life (open, settle, close), each
//! refusal with its reason and nothing changed, conservation of money with escrows, the `ext`
//! of the payer, and snapshots that carry the streams.

use super::*;
use crate::hash::F;
use crate::stream::rules::{Close, Open, Settle};
use crate::stream::tick_tree::{TickPath, TickTree};
use crate::stream::{StreamId, StreamSlot, TickChain, TickCount};
use crate::tx::{SettleBody, SettlePathBody, Unsigned};
use plonky2::field::types::Field;

const SLOT: StreamSlot = StreamSlot(3);
const PRICE: u64 = 7;
const MAX: u32 = 100;
const EXPIRY: u64 = NOW + 600;

/// Alice's chain for her stream to Bob opened at her nonce `opened_at`.
fn chain(opened_at: u64) -> TickChain {
    let id = StreamId {
        payer: ALICE,
        slot: SLOT,
        opened_at: nonce(opened_at),
    };
    TickChain::new(
        id,
        TickCount::new(MAX).unwrap(),
        Digest([F::from_canonical_u64(5); 4]),
    )
}

fn open_tx(alice: &SecretKey, n: u64, fee: u64, anchor: Digest) -> Transaction {
    Unsigned {
        body: Open {
            payer: ALICE,
            payee: BOB,
            slot: SLOT,
            price: amt(PRICE),
            max_ticks: TickCount::new(MAX).unwrap(),
            expiry: ts(EXPIRY),
            anchor,
        },
        fee: amt(fee),
        nonce: nonce(n),
        valid_until: ts(NOW + 10),
    }
    .sign(&DOMAIN, alice)
    .into()
}

fn settle_tx(
    signer: &SecretKey,
    payee: AccountIndex,
    n: u64,
    from: u32,
    to: u32,
    value: Digest,
) -> Transaction {
    settle_in(SLOT, signer, payee, n, from, to, value)
}

fn settle_in(
    slot: StreamSlot,
    signer: &SecretKey,
    payee: AccountIndex,
    n: u64,
    from: u32,
    to: u32,
    value: Digest,
) -> Transaction {
    Unsigned {
        body: SettleBody {
            payee,
            terms: Settle {
                payer: ALICE,
                slot,
                from: TickCount::new(from).unwrap(),
                to: TickCount::new(to).unwrap(),
                value,
            },
        },
        fee: amt(1),
        nonce: nonce(n),
        valid_until: Timestamp::MAX,
    }
    .sign(&DOMAIN, signer)
    .into()
}

fn close_tx(signer_key: &SecretKey, signer: AccountIndex, n: u64) -> Transaction {
    Unsigned {
        body: Close {
            payer: ALICE,
            slot: SLOT,
            signer,
        },
        fee: amt(0),
        nonce: nonce(n),
        valid_until: Timestamp::MAX,
    }
    .sign(&DOMAIN, signer_key)
    .into()
}

fn at(t: u64) -> BlockContext {
    BlockContext::at(ts(t))
}

fn assert_refused(state: &mut State, tx: &Transaction, when: BlockContext, code: &str) {
    let before = snapshot(state);
    let got = state.apply(tx, &when).expect_err(code);
    assert_eq!(got.code(), code, "{got}");
    assert_eq!(
        snapshot(state),
        before,
        "{code}: a refused transaction changed the state"
    );
}

#[test]
fn a_stream_escrows_settles_by_tick_and_refunds_the_rest() {
    let mut w = world();
    let mut ticks = chain(0);
    let fx = w
        .state
        .apply(&open_tx(&w.alice, 0, 2, ticks.anchor()), &ctx())
        .unwrap();
    let escrow = PRICE * u64::from(MAX);
    assert_eq!(balance(&w.state, ALICE), 1000 - escrow - 2);
    assert_eq!(w.state.escrowed(), u128::from(escrow));
    assert!(conserved(&w.state));
    let ext = w.state.account(ALICE).unwrap().ext;
    assert_ne!(ext, Digest::ZERO, "the payer's leaf commits to its stream");
    assert_eq!(ext, w.state.streams_of(ALICE).ext());
    assert_eq!(
        fx.ext
            .iter()
            .map(|e| (e.before, e.after))
            .collect::<Vec<_>>(),
        [(Digest::ZERO, ext)]
    );
    assert!(matches!(fx.pubdata, PubdataOp::StreamOpen { fee, .. } if fee == amt(2)));
    assert_eq!(w.state.root(), root_from_scratch(&w.state));

    // Bob settles ticks 1..=3, then 3..=10: each pays ticks x price.
    let t3 = ticks.tick(3).unwrap().value;
    w.state
        .apply(&settle_tx(&w.bob, BOB, 0, 0, 3, t3), &ctx())
        .unwrap();
    assert_eq!(balance(&w.state, BOB), 50 - 1 + 3 * PRICE);
    let t10 = ticks.tick(10).unwrap().value;
    w.state
        .apply(&settle_tx(&w.bob, BOB, 1, 3, 10, t10), &ctx())
        .unwrap();
    assert_eq!(balance(&w.state, BOB), 50 - 2 + 10 * PRICE);
    assert_eq!(w.state.escrowed(), u128::from(PRICE * u64::from(MAX - 10)));
    assert!(conserved(&w.state));

    // A tick never settles twice: the same settlement again (new nonce) is stale.
    assert_refused(
        &mut w.state,
        &settle_tx(&w.bob, BOB, 2, 3, 10, t10),
        ctx(),
        "STALE_SETTLE",
    );

    // Bob closes: Alice gets the other 90 ticks back, the slot and her ext are empty again.
    let alice_before = balance(&w.state, ALICE);
    let fx = w.state.apply(&close_tx(&w.bob, BOB, 2), &ctx()).unwrap();
    assert_eq!(
        balance(&w.state, ALICE),
        alice_before + PRICE * u64::from(MAX - 10)
    );
    assert_eq!(w.state.escrowed(), 0);
    assert!(w.state.streams_of(ALICE).is_empty());
    assert_eq!(w.state.account(ALICE).unwrap().ext, Digest::ZERO);
    assert_eq!(
        fx.ext.iter().map(|e| e.after).collect::<Vec<_>>(),
        [Digest::ZERO]
    );
    assert!(conserved(&w.state));
    assert_eq!(w.state.root(), root_from_scratch(&w.state));

    // The slot can be reused; the new stream's ticks are not the old one's.
    let mut again = chain(1);
    w.state
        .apply(&open_tx(&w.alice, 1, 0, again.anchor()), &ctx())
        .unwrap();
    assert_refused(
        &mut w.state,
        &settle_tx(&w.bob, BOB, 3, 0, 3, t3),
        ctx(),
        "TICK_MISMATCH",
    );
    let fresh = again.tick(3).unwrap().value;
    w.state
        .apply(&settle_tx(&w.bob, BOB, 3, 0, 3, fresh), &ctx())
        .unwrap();
    assert!(conserved(&w.state));
}

fn settle_path_tx(
    signer: &SecretKey,
    payee: AccountIndex,
    n: u64,
    from: u32,
    to: u32,
    secret: Digest,
    path: TickPath,
) -> Transaction {
    Unsigned {
        body: SettlePathBody {
            payee,
            terms: Settle {
                payer: ALICE,
                slot: SLOT,
                from: TickCount::new(from).unwrap(),
                to: TickCount::new(to).unwrap(),
                value: secret,
            },
            path,
        },
        fee: amt(1),
        nonce: nonce(n),
        valid_until: ts(NOW + 10),
    }
    .sign(&DOMAIN, signer)
    .into()
}

#[test]
fn a_tree_stream_settles_by_paths_and_refuses_a_bent_one_changing_nothing() {
    let mut w = world();
    let id = StreamId {
        payer: ALICE,
        slot: SLOT,
        opened_at: nonce(0),
    };
    let mut tree = TickTree::new(
        id,
        TickCount::new(MAX).unwrap(),
        Digest([F::from_canonical_u64(9); 4]),
    );
    let root = tree.root();
    w.state
        .apply(&open_tx(&w.alice, 0, 0, root), &ctx())
        .unwrap();
    let tick = |tree: &mut TickTree, k: u32| {
        let t = tree.tick(k, None).unwrap();
        (t.secret, tree.path(k).unwrap())
    };

    let (s40, p40) = tick(&mut tree, 40);
    let mut bent = p40;
    bent[0] = bent[1];
    assert_refused(
        &mut w.state,
        &settle_path_tx(&w.bob, BOB, 0, 0, 40, s40, bent),
        ctx(),
        "TICK_MISMATCH",
    );
    assert_refused(
        &mut w.state,
        &settle_path_tx(&w.alice, ALICE, 1, 0, 40, s40, p40),
        ctx(),
        "NOT_PAYEE",
    );
    // The secret walked as a chain value opens nothing either.
    assert_refused(
        &mut w.state,
        &settle_tx(&w.bob, BOB, 0, 0, 40, s40),
        ctx(),
        "TICK_MISMATCH",
    );

    let tx = settle_path_tx(&w.bob, BOB, 0, 0, 40, s40, p40);
    assert_eq!(tx.encode().len(), 915);
    assert_eq!(Transaction::decode(&tx.encode()).unwrap(), tx);
    let fx = w.state.apply(&tx, &ctx()).unwrap();
    assert_eq!(balance(&w.state, BOB), 50 - 1 + 40 * PRICE);
    assert_eq!(w.state.streams_of(ALICE).get(SLOT).unwrap().head, root);
    assert!(
        matches!(&fx.pubdata, PubdataOp::StreamSettlePath { body, .. } if body.terms.to.get() == 40)
    );
    let op = fx.pubdata.to_bytes();
    assert_eq!(op.len(), 59);
    assert_eq!(
        PubdataOp::decode_prefix(&op).unwrap(),
        (fx.pubdata.clone(), 59)
    );
    assert!(conserved(&w.state));
    assert_eq!(w.state.root(), root_from_scratch(&w.state));

    assert_refused(
        &mut w.state,
        &settle_path_tx(&w.bob, BOB, 1, 0, 40, s40, p40),
        ctx(),
        "STALE_SETTLE",
    );
    let (s100, p100) = tick(&mut tree, MAX);
    w.state
        .apply(&settle_path_tx(&w.bob, BOB, 1, 40, MAX, s100, p100), &ctx())
        .unwrap();
    assert_eq!(balance(&w.state, BOB), 50 - 2 + u64::from(MAX) * PRICE);
    assert_eq!(w.state.escrowed(), 0);
    assert!(conserved(&w.state));
}

/// A walk computed ahead ([`VerifiedTx::with_walk`]) decides exactly as the walk on the
/// applying thread: used for the stream opened at its nonce, ignored for any other.
#[test]
fn a_walk_computed_ahead_decides_as_the_walk_it_replaces() {
    let mut w = world();
    let mut ticks = chain(0);
    w.state
        .apply(&open_tx(&w.alice, 0, 0, ticks.anchor()), &ctx())
        .unwrap();
    let t3 = ticks.tick(3).unwrap().value;
    let t5 = ticks.tick(5).unwrap().value;
    let verify = |s: &State, tx: Transaction| {
        VerifiedTx::verify(tx, &DOMAIN, |i| s.public_key_of(i)).unwrap()
    };
    // A forged tick value, walked ahead for the right stream: still TICK_MISMATCH.
    let forged = verify(&w.state, settle_tx(&w.bob, BOB, 0, 0, 3, t5)).with_walk(nonce(0));
    let before = snapshot(&mut w.state);
    let got = w.state.apply_verified(forged, &ctx()).unwrap_err();
    assert_eq!(got.code(), "TICK_MISMATCH");
    assert_eq!(snapshot(&mut w.state), before);
    // The good one, walked ahead: applied.
    let good = verify(&w.state, settle_tx(&w.bob, BOB, 0, 0, 3, t3)).with_walk(nonce(0));
    w.state.apply_verified(good, &ctx()).unwrap();
    assert_eq!(
        w.state.streams_of(ALICE).get(SLOT).unwrap().settled.get(),
        3
    );
    // Walked ahead for another opening of the slot (a stale guess): ignored, the state walks
    // itself and accepts the good one.
    let stale = verify(&w.state, settle_tx(&w.bob, BOB, 1, 3, 5, t5)).with_walk(nonce(9));
    w.state.apply_verified(stale, &ctx()).unwrap();
    assert_eq!(
        w.state.streams_of(ALICE).get(SLOT).unwrap().settled.get(),
        5
    );
    // And a forged value walked ahead under a stale guess is refused by the state's own walk.
    let forged = verify(&w.state, settle_tx(&w.bob, BOB, 2, 5, 7, t5)).with_walk(nonce(9));
    let got = w.state.apply_verified(forged, &ctx()).unwrap_err();
    assert_eq!(got.code(), "TICK_MISMATCH");
}

#[test]
fn every_stream_refusal_has_its_reason_and_changes_nothing() {
    let mut w = world();
    let mut ticks = chain(0);
    let anchor = ticks.anchor();
    // Opens: a forgery, an escrow above the balance (1000 < 7 x 100 + 301), a stale nonce.
    let Transaction::StreamOpen(good) = open_tx(&w.alice, 0, 0, anchor) else {
        unreachable!()
    };
    let forged: Transaction = good.unsigned().sign(&DOMAIN, &w.mallory).into();
    assert_refused(&mut w.state, &forged, ctx(), "BAD_SIGNATURE");
    assert_refused(
        &mut w.state,
        &open_tx(&w.alice, 0, 301, anchor),
        ctx(),
        "INSUFFICIENT_BALANCE",
    );
    assert_refused(
        &mut w.state,
        &open_tx(&w.alice, 1, 0, anchor),
        ctx(),
        "BAD_NONCE",
    );
    let to_nowhere: Transaction = Unsigned {
        body: Open {
            payee: NOWHERE,
            ..good.body
        },
        ..good.unsigned()
    }
    .sign(&DOMAIN, &w.alice)
    .into();
    assert_refused(&mut w.state, &to_nowhere, ctx(), "UNKNOWN_ACCOUNT");
    let to_self: Transaction = Unsigned {
        body: Open {
            payee: ALICE,
            ..good.body
        },
        ..good.unsigned()
    }
    .sign(&DOMAIN, &w.alice)
    .into();
    assert_refused(&mut w.state, &to_self, ctx(), "SELF_STREAM");
    assert_refused(
        &mut w.state,
        &open_tx(&w.alice, 0, 0, anchor),
        at(EXPIRY),
        "EXPIRED",
    );

    w.state
        .apply(&open_tx(&w.alice, 0, 0, anchor), &ctx())
        .unwrap();
    assert_refused(
        &mut w.state,
        &open_tx(&w.alice, 1, 0, anchor),
        ctx(),
        "STREAM_SLOT_TAKEN",
    );

    // Settlements: by someone who is not the payee (signed correctly by Mallory), beyond the
    // maximum, with a wrong value, after the window.
    let mallory = w
        .state
        .apply(&register_tx(&w.mallory, &w.mallory, NOW + 10), &ctx())
        .unwrap();
    let mallory = mallory.registered.unwrap();
    w.deposit(mallory, 10).unwrap();
    let t5 = ticks.tick(5).unwrap().value;
    assert_refused(
        &mut w.state,
        &settle_tx(&w.mallory, mallory, 0, 0, 5, t5),
        ctx(),
        "NOT_PAYEE",
    );
    assert_refused(
        &mut w.state,
        &settle_tx(&w.bob, BOB, 0, 0, MAX + 1, t5),
        ctx(),
        "TICK_BEYOND_MAX",
    );
    assert_refused(
        &mut w.state,
        &settle_tx(&w.bob, BOB, 0, 0, 6, t5),
        ctx(),
        "TICK_MISMATCH",
    );
    assert_refused(
        &mut w.state,
        &settle_tx(&w.bob, BOB, 0, 5, 5, t5),
        ctx(),
        "STALE_SETTLE",
    );
    assert_refused(
        &mut w.state,
        &settle_tx(&w.bob, BOB, 0, 0, 5, t5),
        at(EXPIRY + 3601),
        "SETTLE_WINDOW_OVER",
    );
    // Forged: Bob's settlement signed by Mallory.
    let Transaction::StreamSettle(s) = settle_tx(&w.bob, BOB, 0, 0, 5, t5) else {
        unreachable!()
    };
    let forged: Transaction = s.unsigned().sign(&DOMAIN, &w.mallory).into();
    assert_refused(&mut w.state, &forged, ctx(), "BAD_SIGNATURE");

    // Closes: the payer before the payee's window ends, a stranger, an empty slot.
    assert_refused(
        &mut w.state,
        &close_tx(&w.alice, ALICE, 1),
        at(EXPIRY + 3600),
        "CLOSE_TOO_EARLY",
    );
    assert_refused(
        &mut w.state,
        &close_tx(&w.mallory, mallory, 0),
        ctx(),
        "NOT_STREAM_PARTY",
    );
    // The window is judged at the batch's clock (SPEC 18.0): a block past the window's end in a
    // batch that began before it is still too early (the proof would know only the batch's).
    assert_refused(
        &mut w.state,
        &close_tx(&w.alice, ALICE, 1),
        BlockContext::in_batch(ts(EXPIRY + 3601), ts(EXPIRY + 3600)),
        "CLOSE_TOO_EARLY",
    );
    w.state
        .apply(&close_tx(&w.alice, ALICE, 1), &at(EXPIRY + 3601))
        .unwrap();
    assert_refused(
        &mut w.state,
        &close_tx(&w.bob, BOB, 0),
        at(EXPIRY + 3601),
        "UNKNOWN_STREAM",
    );
    assert_eq!(
        balance(&w.state, ALICE),
        1000,
        "the payer got all of its escrow back"
    );
    assert!(conserved(&w.state));
}

#[test]
fn a_snapshot_carries_the_streams_and_refuses_a_tampered_ext() {
    let mut w = world();
    let mut ticks = chain(0);
    w.state
        .apply(&open_tx(&w.alice, 0, 1, ticks.anchor()), &ctx())
        .unwrap();
    let t4 = ticks.tick(4).unwrap().value;
    w.state
        .apply(&settle_tx(&w.bob, BOB, 0, 0, 4, t4), &ctx())
        .unwrap();
    let bytes = w.state.encode_snapshot();
    let mut back = State::decode_snapshot(&bytes, &DOMAIN).unwrap();
    assert_eq!(snapshot(&mut back), snapshot(&mut w.state));
    // The decoded state goes on: the next settlement starts at the settled head.
    let t9 = ticks.tick(9).unwrap().value;
    back.apply(&settle_tx(&w.bob, BOB, 1, 4, 9, t9), &ctx())
        .unwrap();
    assert!(conserved(&back));

    // A stream whose payer's ext does not commit to it is refused (flip a bit of `settled`,
    // the 38th byte of the only stream record, which sits right after the accounts).
    let streams_at = 8 + 4 + 28 + 16 + 32 + w.state.accounts().len() * 88;
    let mut bad = bytes.clone();
    bad[streams_at + 8 + 38] ^= 1;
    assert_eq!(
        State::decode_snapshot(&bad, &DOMAIN).err(),
        Some(crate::snapshot::SnapshotError::ExtMismatch(ALICE.0))
    );
}

/// One step of the random sequences below.
#[derive(Clone, Debug)]
enum Step {
    Open {
        slot: u16,
        price: u64,
        max: u32,
        fee: u64,
    },
    Settle {
        slot: u16,
        ticks: u32,
        honest: bool,
    },
    Close {
        slot: u16,
        by_payee: bool,
    },
    Transfer {
        amount: u64,
    },
    Wait {
        secs: u64,
    },
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (0u16..2, 1u64..40, 1u32..40, 0u64..3).prop_map(|(slot, price, max, fee)| Step::Open {
            slot,
            price,
            max,
            fee
        }),
        (0u16..2, 0u32..12, proptest::bool::weighted(0.8)).prop_map(|(slot, ticks, honest)| {
            Step::Settle {
                slot,
                ticks,
                honest,
            }
        }),
        (0u16..2, any::<bool>()).prop_map(|(slot, by_payee)| Step::Close { slot, by_payee }),
        (1u64..300).prop_map(|amount| Step::Transfer { amount }),
        (0u64..2500).prop_map(|secs| Step::Wait { secs }),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, ..Default::default() })]

    /// Money is conserved across streams (`deposited = balances + escrowed + withdrawn`), the
    /// escrow total is the sum of the open streams' escrows and never negative, every payer's
    /// `ext` commits to its book, a tick never settles twice (`settled` only grows), and a
    /// refused transaction changes nothing.
    #[test]
    fn streams_conserve_money_through_the_state(steps in proptest::collection::vec(step(), 1..40)) {
        let mut w = world();
        w.deposit(ALICE, 20_000).unwrap();
        let mut now = NOW;
        let mut nonces = [0u64; 3]; // alice, bob: their next nonces (index 1, 2)
        let mut chains: std::collections::HashMap<u16, TickChain> = Default::default();
        for st in steps {
            let ctx = at(now);
            let tx = match &st {
                Step::Wait { secs } => {
                    now += secs;
                    continue;
                }
                Step::Open { slot, price, max, fee } => {
                    let id = StreamId { payer: ALICE, slot: StreamSlot(*slot), opened_at: nonce(nonces[1]) };
                    let max_ticks = TickCount::new(*max).unwrap();
                    let chain = TickChain::new(id, max_ticks, Digest([F::from_canonical_u64(u64::from(*slot) + 1); 4]));
                    let tx: Transaction = Unsigned {
                        body: Open {
                            payer: ALICE, payee: BOB, slot: StreamSlot(*slot), price: amt(*price),
                            max_ticks, expiry: ts(now + 1800), anchor: chain.anchor(),
                        },
                        fee: amt(*fee), nonce: nonce(nonces[1]), valid_until: ts(now),
                    }.sign(&DOMAIN, &w.alice).into();
                    if w.state.streams_of(ALICE).get(StreamSlot(*slot)).is_none() {
                        chains.insert(*slot, chain);
                    }
                    tx
                }
                Step::Settle { slot, ticks, honest } => {
                    let settled = w.state.streams_of(ALICE).get(StreamSlot(*slot)).map_or(0, |s| s.settled.get());
                    let to = settled + ticks;
                    let value = match (chains.get_mut(slot), honest) {
                        (Some(c), true) => c.tick(to).map_or(Digest::ZERO, |t| t.value),
                        _ => Digest([F::from_canonical_u64(u64::from(to)); 4]),
                    };
                    settle_in(StreamSlot(*slot), &w.bob, BOB, nonces[2], settled, to, value)
                }
                Step::Close { slot, by_payee } => {
                    let (k, who, n) = if *by_payee { (&w.bob, BOB, nonces[2]) } else { (&w.alice, ALICE, nonces[1]) };
                    Unsigned {
                        body: Close { payer: ALICE, slot: StreamSlot(*slot), signer: who },
                        fee: amt(0), nonce: nonce(n), valid_until: ts(now),
                    }.sign(&DOMAIN, k).into()
                }
                Step::Transfer { amount } => signed(
                    UnsignedTransfer { valid_until: ts(now), ..transfer(ALICE, BOB, *amount, 0, nonces[1]) },
                    &w.alice,
                ),
            };
            let before = snapshot(&mut w.state);
            let settled_before: Vec<u32> = w.state.streams_of(ALICE).iter().map(|s| s.settled.get()).collect();
            match w.state.apply(&tx, &ctx) {
                Ok(fx) => {
                    if let Some(n) = fx.nonce {
                        nonces[n.account.0 as usize] += 1;
                    }
                    if let Step::Close { slot, .. } = st {
                        chains.remove(&slot);
                    }
                }
                Err(_) => proptest::prop_assert_eq!(snapshot(&mut w.state), before),
            }
            proptest::prop_assert!(conserved(&w.state));
            let book = w.state.streams_of(ALICE);
            let sum: u128 = book.iter().map(|s| u128::from(s.escrow().get())).sum();
            proptest::prop_assert_eq!(w.state.escrowed(), sum);
            let want = if book.is_empty() { Digest::ZERO } else { book.ext() };
            proptest::prop_assert_eq!(w.state.account(ALICE).unwrap().ext, want);
            proptest::prop_assert_eq!(w.state.account(BOB).unwrap().ext, Digest::ZERO);
            // `settled` only grows for a stream that stays (a slot reopened starts at 0).
            if let Step::Settle { .. } = st {
                let after: Vec<u32> = w.state.streams_of(ALICE).iter().map(|s| s.settled.get()).collect();
                for (a, b) in settled_before.iter().zip(&after) {
                    proptest::prop_assert!(b >= a);
                }
            }
        }
        proptest::prop_assert_eq!(w.state.root(), root_from_scratch(&w.state));
    }
}
