//! Stream rules from the attacker's side, and property tests of the money they move.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::chain::{step, walk, MAX_TICK_GAP};
use super::rules::{self, Close, Open, Party, Settle, StreamRejection};
use super::tree::{ext_digest, root_from_path, PayerStreams, SLOT_DEPTH};
use super::*;
use crate::hash::hash_no_pad;
use crate::smt::empty_hashes;

fn amt(v: u64) -> Amount {
    Amount::new(v).unwrap()
}
fn ts(v: u64) -> Timestamp {
    Timestamp::new(v).unwrap()
}
fn ticks(v: u32) -> TickCount {
    TickCount::new(v).unwrap()
}
fn seed(n: u64) -> Digest {
    hash_no_pad(&[F::from_canonical_u64(n)])
}
fn id(payer: u32, slot: u16, nonce: u64) -> StreamId {
    StreamId {
        payer: AccountIndex(payer),
        slot: StreamSlot(slot),
        opened_at: Nonce::new(nonce).unwrap(),
    }
}

#[test]
fn every_tick_checks_with_one_step_and_the_last_is_the_seed() {
    for n in [1u32, 63, 64, 65, 200] {
        let sid = id(3, 1, 9);
        let mut chain = TickChain::new(sid, ticks(n), seed(n as u64));
        let anchor = chain.anchor();
        let mut check = TickCheck::new(sid, ticks(n), TickCount::ZERO, anchor);
        let mut prev = anchor;
        for k in 1..=n {
            let t = chain.tick(k).unwrap();
            assert_eq!(step(&sid, k, t.value), prev, "n={n} k={k}");
            check.check(&t).unwrap();
            prev = t.value;
        }
        assert_eq!(prev, seed(n as u64), "tick N reveals the seed");
        assert_eq!(chain.tick(n + 1), None);
        assert_eq!(chain.tick(0), None);
        // Out of order production agrees with in-order production.
        let mut fresh = TickChain::new(sid, ticks(n), seed(n as u64));
        assert_eq!(fresh.tick(n).unwrap().value, seed(n as u64));
        assert_eq!(walk(&sid, n, seed(n as u64), 0), anchor);
    }
}

#[test]
fn forged_replayed_and_foreign_ticks_are_refused_with_their_reason() {
    let sid = id(3, 1, 9);
    let mut chain = TickChain::new(sid, ticks(3000), seed(1));
    let mut check = TickCheck::new(sid, ticks(3000), TickCount::ZERO, chain.anchor());
    let t5 = chain.tick(5).unwrap();
    check.check(&t5).unwrap();
    // Replay and stale.
    assert_eq!(check.check(&t5), Err(TickError::Stale { k: 5, last: 5 }));
    let t3 = chain.tick(3).unwrap();
    assert_eq!(check.check(&t3).unwrap_err().code(), "TICK_STALE");
    // A forged value: the right position, a made-up digest.
    let forged = Tick {
        value: seed(77),
        ..chain.tick(6).unwrap()
    };
    assert_eq!(check.check(&forged), Err(TickError::Mismatch { k: 6 }));
    // Another stream's chain (same payer and slot, an earlier open) does not check here.
    let old = id(3, 1, 8);
    let mut other = TickChain::new(old, ticks(3000), seed(1));
    let foreign = Tick {
        stream: sid,
        ..other.tick(6).unwrap()
    };
    assert_eq!(check.check(&foreign), Err(TickError::Mismatch { k: 6 }));
    assert_eq!(
        check.check(&other.tick(6).unwrap()),
        Err(TickError::WrongStream)
    );
    // Beyond the maximum and too far ahead.
    let mut short = TickChain::new(sid, ticks(10), seed(2));
    let mut c10 = TickCheck::new(sid, ticks(10), TickCount::ZERO, short.anchor());
    let mut beyond = short.tick(10).unwrap();
    beyond.k = ticks(11);
    assert_eq!(c10.check(&beyond).unwrap_err().code(), "TICK_BEYOND_MAX");
    let far = chain.tick(5 + MAX_TICK_GAP + 1).unwrap();
    assert_eq!(check.check(&far).unwrap_err().code(), "TICK_GAP_TOO_LARGE");
    // Nothing refused moved the checker: tick 6 still checks, and a gap of exactly the limit.
    check.check(&chain.tick(6).unwrap()).unwrap();
    check.check(&chain.tick(6 + MAX_TICK_GAP).unwrap()).unwrap();
    assert_eq!(check.last().0, ticks(6 + MAX_TICK_GAP));
}

fn stream(payer: u32, slot: u16, payee: u32, price: u64, max: u32) -> Stream {
    Stream {
        id: id(payer, slot, 1),
        payee: AccountIndex(payee),
        price: amt(price),
        max_ticks: ticks(max),
        expiry: ts(1000),
        settled: TickCount::ZERO,
        head: seed(slot as u64),
    }
}

#[test]
fn the_stream_tree_root_agrees_with_every_path_and_an_empty_tree_leaves_ext_zero() {
    let mut s = PayerStreams::default();
    assert_eq!(s.root(), empty_hashes()[SLOT_DEPTH]);
    assert_eq!(s.ext(), Digest::ZERO);
    for slot in [0u16, 1, 2, 7, 300, u16::MAX] {
        s.put(stream(4, slot, 5, 2, 10));
    }
    let root = s.root();
    for slot in [0u16, 1, 2, 3, 7, 300, 301, u16::MAX - 1, u16::MAX] {
        let leaf = s
            .get(StreamSlot(slot))
            .map_or(Digest::ZERO, Stream::leaf_hash);
        assert_eq!(
            root_from_path(StreamSlot(slot), leaf, &s.path(StreamSlot(slot))),
            root,
            "slot {slot}"
        );
    }
    assert_ne!(s.ext(), Digest::ZERO);
    assert_eq!(s.ext(), ext_digest(root, Digest::ZERO));
    // Removing every stream returns to the empty tree and ext ZERO.
    for slot in [0u16, 1, 2, 7, 300, u16::MAX] {
        s.remove(StreamSlot(slot));
    }
    assert_eq!(s.root(), empty_hashes()[SLOT_DEPTH]);
    assert_eq!(s.ext(), Digest::ZERO);
    assert_eq!(s.free_slot(), Some(StreamSlot(0)));
}

fn open_terms(
    payer: u32,
    payee: u32,
    slot: u16,
    price: u64,
    max: u32,
    expiry: u64,
    anchor: Digest,
) -> Open {
    Open {
        payer: AccountIndex(payer),
        payee: AccountIndex(payee),
        slot: StreamSlot(slot),
        price: amt(price),
        max_ticks: ticks(max),
        expiry: ts(expiry),
        anchor,
    }
}

#[test]
fn bad_opens_settlements_and_closes_are_refused_with_their_reason() {
    let now = ts(100);
    let n0 = Nonce::ZERO;
    let mut book = PayerStreams::default();
    let code = |r: Result<rules::Opened, StreamRejection>| r.unwrap_err().code();
    assert_eq!(
        code(rules::open(
            &open_terms(1, 1, 0, 5, 10, 200, seed(0)),
            n0,
            &book,
            now
        )),
        "SELF_STREAM"
    );
    assert_eq!(
        code(rules::open(
            &open_terms(1, 2, 0, 0, 10, 200, seed(0)),
            n0,
            &book,
            now
        )),
        "ZERO_PRICE"
    );
    assert_eq!(
        code(rules::open(
            &open_terms(1, 2, 0, 5, 0, 200, seed(0)),
            n0,
            &book,
            now
        )),
        "BAD_TICK_COUNT"
    );
    assert_eq!(
        code(rules::open(
            &open_terms(1, 2, 0, Amount::MAX.get() / 2, 3, 200, seed(0)),
            n0,
            &book,
            now
        )),
        "ESCROW_OVERFLOW"
    );
    assert_eq!(
        code(rules::open(
            &open_terms(1, 2, 0, 5, 10, 100, seed(0)),
            n0,
            &book,
            now
        )),
        "STREAM_EXPIRY_PASSED"
    );
    assert!(
        TickCount::new(MAX_TICKS + 1).is_none(),
        "more than 2^24 ticks is not representable"
    );

    let sid = id(1, 0, 0);
    let mut chain = TickChain::new(sid, ticks(10), seed(5));
    let opened = rules::open(
        &open_terms(1, 2, 0, 5, 10, 200, chain.anchor()),
        n0,
        &book,
        now,
    )
    .unwrap();
    assert_eq!(opened.escrow, amt(50));
    book.put(opened.stream);
    assert_eq!(
        code(rules::open(
            &open_terms(1, 3, 0, 5, 10, 200, seed(0)),
            n0,
            &book,
            now
        )),
        "STREAM_SLOT_TAKEN"
    );

    let settle_to = |chain: &mut TickChain, from: u32, to: u32| {
        let t = chain.tick(to).unwrap();
        Settle {
            payer: AccountIndex(1),
            slot: StreamSlot(0),
            from: ticks(from),
            to: ticks(to),
            value: t.value,
        }
    };
    let judge = |s: &Settle, signer: u32, book: &PayerStreams, now: Timestamp| {
        rules::settle(s, AccountIndex(signer), s.claimed_head(n0), book, now)
    };
    let s4 = settle_to(&mut chain, 0, 4);
    let missing = Settle {
        slot: StreamSlot(9),
        ..s4
    };
    assert_eq!(
        judge(&missing, 2, &book, now).unwrap_err().code(),
        "UNKNOWN_STREAM"
    );
    assert_eq!(judge(&s4, 3, &book, now).unwrap_err().code(), "NOT_PAYEE");
    assert_eq!(
        judge(&s4, 1, &book, now).unwrap_err().code(),
        "NOT_PAYEE",
        "the payer cannot settle its own stream"
    );
    let late = ts(200 + SETTLE_WINDOW_SECS + 1);
    assert_eq!(
        judge(&s4, 2, &book, late).unwrap_err().code(),
        "SETTLE_WINDOW_OVER"
    );
    let forged = Settle {
        value: seed(99),
        ..s4
    };
    assert_eq!(
        judge(&forged, 2, &book, now).unwrap_err().code(),
        "TICK_MISMATCH"
    );
    // A genuine tick claimed at the wrong position does not check either.
    let shifted = Settle { to: ticks(5), ..s4 };
    assert_eq!(
        judge(&shifted, 2, &book, now).unwrap_err().code(),
        "TICK_MISMATCH"
    );

    // Settle to 4 inside the window (after expiry), then every replay or stale form is refused.
    let settled = judge(&s4, 2, &book, ts(200 + SETTLE_WINDOW_SECS)).unwrap();
    assert_eq!(settled.payout, amt(20));
    assert_eq!(settled.stream.escrow(), amt(30));
    book.put(settled.stream);
    assert_eq!(
        judge(&s4, 2, &book, now).unwrap_err().code(),
        "STALE_SETTLE",
        "a replayed settlement"
    );
    let same = settle_to(&mut chain, 4, 4);
    assert_eq!(
        judge(&same, 2, &book, now).unwrap_err().code(),
        "TICK_NOT_NEWER"
    );
    let back = Settle {
        from: ticks(4),
        to: ticks(3),
        ..settle_to(&mut chain, 0, 3)
    };
    assert_eq!(
        judge(&back, 2, &book, now).unwrap_err().code(),
        "TICK_NOT_NEWER"
    );
    let over = Settle {
        to: ticks(11),
        ..settle_to(&mut chain, 4, 10)
    };
    assert_eq!(
        judge(&over, 2, &book, now).unwrap_err().code(),
        "TICK_BEYOND_MAX"
    );
    let s10 = settle_to(&mut chain, 4, 10);
    assert_eq!(judge(&s10, 2, &book, now).unwrap().payout, amt(30));

    // Closes.
    let close = |signer: u32, slot: u16| Close {
        payer: AccountIndex(1),
        slot: StreamSlot(slot),
        signer: AccountIndex(signer),
    };
    assert_eq!(
        rules::close(&close(2, 9), &book, now).unwrap_err().code(),
        "UNKNOWN_STREAM"
    );
    assert_eq!(
        rules::close(&close(3, 0), &book, now).unwrap_err().code(),
        "NOT_STREAM_PARTY"
    );
    let edge = ts(200 + SETTLE_WINDOW_SECS);
    assert_eq!(
        rules::close(&close(1, 0), &book, edge).unwrap_err().code(),
        "CLOSE_TOO_EARLY"
    );
    let by_payer = rules::close(&close(1, 0), &book, ts(200 + SETTLE_WINDOW_SECS + 1)).unwrap();
    assert_eq!((by_payer.refund, by_payer.by), (amt(30), Party::Payer));
    let by_payee = rules::close(&close(2, 0), &book, now).unwrap();
    assert_eq!((by_payee.refund, by_payee.by), (amt(30), Party::Payee));

    // A settlement longer than 2^16 ticks is refused before any hashing.
    let big = Settle {
        from: ticks(0),
        to: ticks(MAX_SETTLE_TICKS + 1),
        ..s4
    };
    assert_eq!(big.claimed_head(n0), None);
    let mut wide = PayerStreams::default();
    wide.put(Stream {
        max_ticks: ticks(MAX_SETTLE_TICKS + 5),
        ..stream(1, 0, 2, 1, 10)
    });
    assert_eq!(
        judge(&big, 2, &wide, now).unwrap_err().code(),
        "SETTLE_TOO_LONG"
    );
}

#[test]
fn settlements_by_path_pay_once_keep_the_root_and_refuse_forgeries_and_the_other_mode() {
    let now = ts(100);
    let n0 = Nonce::ZERO;
    let sid = id(1, 0, 0);
    // 2^17 ticks: past what one walk may settle (2^16), not past what one path may.
    let max = 1 << 17;
    let mut tree = TickTree::new(sid, ticks(max), seed(8));
    let root = tree.root();
    let mut book = PayerStreams::default();
    let opened = rules::open(&open_terms(1, 2, 0, 3, max, 200, root), n0, &book, now).unwrap();
    book.put(opened.stream);
    let settle = |from: u32, to: u32, value: Digest| Settle {
        payer: AccountIndex(1),
        slot: StreamSlot(0),
        from: ticks(from),
        to: ticks(to),
        value,
    };
    let by_path = |s: &Settle, path: &TickPath, book: &PayerStreams| {
        rules::settle_by_path(s, AccountIndex(2), s.claimed_root(n0, path), book, now)
    };
    let secret_of = |k| tick_tree::secret(seed(8), k);

    // A forged secret, a bent path, the path of another tick, another stream's tree: refused.
    let to = max - 5;
    let path = tree.path(to).unwrap();
    let honest = settle(0, to, secret_of(to));
    let mismatch = |s: &Settle, p: &TickPath| by_path(s, p, &book).unwrap_err().code();
    assert_eq!(mismatch(&settle(0, to, seed(1)), &path), "TICK_MISMATCH");
    let mut bent = path;
    bent[23] = seed(2);
    assert_eq!(mismatch(&honest, &bent), "TICK_MISMATCH");
    assert_eq!(
        mismatch(&honest, &tree.path(to - 1).unwrap()),
        "TICK_MISMATCH"
    );
    let mut other = TickTree::new(id(1, 0, 1), ticks(max), seed(8));
    assert_eq!(
        mismatch(&settle(0, to, secret_of(to)), &other.path(to).unwrap()),
        "TICK_MISMATCH"
    );
    // The tree's tick settled as a walk: its secret walks to no root.
    assert_eq!(
        rules::settle(
            &settle(0, 9, secret_of(9)),
            AccountIndex(2),
            settle(0, 9, secret_of(9)).claimed_head(n0),
            &book,
            now
        )
        .unwrap_err()
        .code(),
        "TICK_MISMATCH"
    );

    // The honest one pays all 2^17 - 5 ticks at once and keeps the root as the head.
    let done = by_path(&honest, &path, &book).unwrap();
    assert_eq!(done.payout, amt(3 * u64::from(to)));
    assert_eq!(done.stream.head, root);
    assert_eq!(done.stream.settled, ticks(to));
    book.put(done.stream);
    // Again: stale. From the new count, an earlier tick is not newer; the next ones settle.
    assert_eq!(
        by_path(&honest, &path, &book).unwrap_err().code(),
        "STALE_SETTLE"
    );
    assert_eq!(
        by_path(&settle(to, to, secret_of(to)), &path, &book)
            .unwrap_err()
            .code(),
        "TICK_NOT_NEWER"
    );
    let last = settle(to, max, secret_of(max));
    let past = settle(to, max + 1, secret_of(max));
    assert_eq!(
        by_path(&past, &tree.path(max).unwrap(), &book)
            .unwrap_err()
            .code(),
        "TICK_BEYOND_MAX"
    );
    let done = by_path(&last, &tree.path(max).unwrap(), &book).unwrap();
    assert_eq!(done.payout, amt(15));
    assert_eq!(done.stream.escrow(), Amount::ZERO);

    // A chain stream settled by a path: its head is no root of any path the payee can build.
    let mut chain = TickChain::new(id(1, 1, 0), ticks(10), seed(4));
    let mut chain_book = PayerStreams::default();
    let opened = rules::open(
        &open_terms(1, 2, 1, 3, 10, 200, chain.anchor()),
        n0,
        &chain_book,
        now,
    )
    .unwrap();
    chain_book.put(opened.stream);
    let t = chain.tick(4).unwrap();
    let s = Settle {
        slot: StreamSlot(1),
        ..settle(0, 4, t.value)
    };
    assert_eq!(
        by_path(&s, &[chain.anchor(); TICK_TREE_DEPTH], &chain_book)
            .unwrap_err()
            .code(),
        "TICK_MISMATCH"
    );
    // Nor by a path's settlement after the window.
    let late = rules::settle_by_path(
        &honest,
        AccountIndex(2),
        honest.claimed_root(n0, &path),
        &PayerStreams::default(),
        ts(200 + SETTLE_WINDOW_SECS + 1),
    );
    assert_eq!(late.unwrap_err().code(), "UNKNOWN_STREAM");
}

/// A tiny ledger around the rules, standing in for the state-transition function: balances,
/// each payer's streams, and each stream's tick chain (kept by its payee).
struct Model {
    balances: Vec<u64>,
    books: Vec<PayerStreams>,
    nonces: Vec<u64>,
    chains: BTreeMap<(u32, u16), TickChain>,
    /// The payee's copy of a tree stream's tick tree (SPEC 18.8), for streams opened with one.
    trees: BTreeMap<(u32, u16), TickTree>,
    now: u64,
}

#[derive(Clone, Debug)]
enum Op {
    Open {
        payer: u32,
        payee: u32,
        slot: u16,
        price: u64,
        max: u32,
        life: u64,
        tree: bool,
    },
    Settle {
        payer: u32,
        slot: u16,
        ahead: u32,
        forge: bool,
    },
    Close {
        payer: u32,
        slot: u16,
        by_payee: bool,
    },
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0u32..4,
            0u32..4,
            0u16..3,
            1u64..1000,
            1u32..40,
            1u64..100,
            any::<bool>()
        )
            .prop_map(|(payer, payee, slot, price, max, life, tree)| Op::Open {
                payer,
                payee,
                slot,
                price,
                max,
                life,
                tree
            }),
        (0u32..4, 0u16..3, 0u32..12, prop::bool::weighted(0.2)).prop_map(
            |(payer, slot, ahead, forge)| Op::Settle {
                payer,
                slot,
                ahead,
                forge
            }
        ),
        (0u32..4, 0u16..3, any::<bool>()).prop_map(|(payer, slot, by_payee)| Op::Close {
            payer,
            slot,
            by_payee
        }),
        (1u64..2000).prop_map(Op::Wait),
    ]
}

impl Model {
    fn total(&self) -> u128 {
        self.balances.iter().map(|&b| b as u128).sum::<u128>()
            + self.books.iter().map(PayerStreams::escrowed).sum::<u128>()
    }

    fn run(&mut self, op: &Op) {
        let now = ts(self.now);
        match *op {
            Op::Open {
                payer,
                payee,
                slot,
                price,
                max,
                life,
                tree,
            } => {
                let opened_at = Nonce::new(self.nonces[payer as usize]).unwrap();
                let sid = StreamId {
                    payer: AccountIndex(payer),
                    slot: StreamSlot(slot),
                    opened_at,
                };
                let chain = TickChain::new(sid, ticks(max), seed(self.now ^ u64::from(payer)));
                let tick_tree = TickTree::new(sid, ticks(max), seed(self.now ^ 7));
                let anchor = if tree {
                    tick_tree.root()
                } else {
                    chain.anchor()
                };
                let terms = open_terms(payer, payee, slot, price, max, self.now + life, anchor);
                let book = &self.books[payer as usize];
                if let Ok(o) = rules::open(&terms, opened_at, book, now) {
                    // The state's own check: the payer's balance covers the escrow.
                    if o.escrow.get() <= self.balances[payer as usize] {
                        self.balances[payer as usize] -= o.escrow.get();
                        self.books[payer as usize].put(o.stream);
                        self.nonces[payer as usize] += 1;
                        if tree {
                            self.trees.insert((payer, slot), tick_tree);
                        } else {
                            self.chains.insert((payer, slot), chain);
                        }
                    }
                }
            }
            Op::Settle {
                payer,
                slot,
                ahead,
                forge,
            } => {
                let Some(s) = self.books[payer as usize].get(StreamSlot(slot)).copied() else {
                    return;
                };
                let to = (s.settled.get() + ahead).min(s.max_ticks.get());
                let forged = seed(u64::from(to) + 1_000_000);
                // A chain stream settles by a walk, a tree stream by a path; each is also tried
                // the other way, which must fail whatever the tick.
                let (value, path) = if let Some(tree) = self.trees.get_mut(&(payer, slot)) {
                    let value = match tree.tick(to, None) {
                        Some(t) if !forge => t.secret,
                        _ => forged,
                    };
                    (
                        value,
                        Some(tree.path(to).unwrap_or([forged; TICK_TREE_DEPTH])),
                    )
                } else {
                    let Some(chain) = self.chains.get_mut(&(payer, slot)) else {
                        return;
                    };
                    let value = match chain.tick(to) {
                        Some(t) if !forge => t.value,
                        _ => forged,
                    };
                    (value, None)
                };
                let terms = Settle {
                    payer: AccountIndex(payer),
                    slot: StreamSlot(slot),
                    from: s.settled,
                    to: ticks(to),
                    value,
                };
                let at = s.id.opened_at;
                let walk = rules::Opening::Walk(terms.claimed_head(at));
                let (claim, cross) = match path {
                    Some(path) => (rules::Opening::Path(terms.claimed_root(at, &path)), walk),
                    None => (
                        walk,
                        rules::Opening::Path(terms.claimed_root(at, &[value; 24])),
                    ),
                };
                let book = &self.books[payer as usize];
                let crossed = rules::judge_settle(&terms, s.payee, cross, book, now);
                assert!(
                    crossed.is_err(),
                    "a settlement in the other mode passed: {op:?}"
                );
                let r = rules::judge_settle(&terms, s.payee, claim, book, now);
                match r {
                    Ok(done) => {
                        assert!(!forge, "a forged tick settled: {op:?}");
                        assert_eq!(
                            done.payout.get(),
                            s.price.get() * u64::from(to - s.settled.get())
                        );
                        self.balances[s.payee.0 as usize] += done.payout.get();
                        self.books[payer as usize].put(done.stream);
                        // The same settlement again is refused: a tick never settles twice.
                        let again = rules::judge_settle(
                            &terms,
                            s.payee,
                            claim,
                            &self.books[payer as usize],
                            now,
                        );
                        assert_eq!(again.unwrap_err().code(), "STALE_SETTLE");
                    }
                    Err(e) => assert!(
                        forge
                            || ahead == 0
                            || to == s.settled.get()
                            || self.now > s.expiry.get() + SETTLE_WINDOW_SECS,
                        "an honest settlement was refused: {e} ({op:?})"
                    ),
                }
            }
            Op::Close {
                payer,
                slot,
                by_payee,
            } => {
                let Some(s) = self.books[payer as usize].get(StreamSlot(slot)).copied() else {
                    return;
                };
                let signer = if by_payee {
                    s.payee
                } else {
                    AccountIndex(payer)
                };
                let terms = Close {
                    payer: AccountIndex(payer),
                    slot: StreamSlot(slot),
                    signer,
                };
                if let Ok(c) = rules::close(&terms, &self.books[payer as usize], now) {
                    assert_eq!(c.refund, s.escrow());
                    self.balances[payer as usize] += c.refund.get();
                    self.books[payer as usize].remove(StreamSlot(slot));
                    self.chains.remove(&(payer, slot));
                    self.trees.remove(&(payer, slot));
                }
            }
            Op::Wait(dt) => self.now += dt,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Money is conserved across opens, settlements and closes; the escrow always equals
    /// `price x (max - settled)`; settled counts only grow; forged ticks never settle; chain
    /// streams settle only by walks and tree streams only by paths (SPEC 18.8).
    #[test]
    fn streams_conserve_money_and_settle_each_tick_at_most_once(ops in prop::collection::vec(op(), 1..60)) {
        let mut m = Model {
            balances: vec![50_000; 4],
            books: vec![PayerStreams::default(); 4],
            nonces: vec![0; 4],
            chains: BTreeMap::new(),
            trees: BTreeMap::new(),
            now: 10,
        };
        let supply = m.total();
        for op in &ops {
            let before: Vec<(StreamId, u32)> = m.books.iter().flat_map(|b| b.iter().map(|s| (s.id, s.settled.get()))).collect();
            m.run(op);
            prop_assert_eq!(m.total(), supply, "after {:?}", op);
            for book in &m.books {
                for s in book.iter() {
                    prop_assert!(s.settled <= s.max_ticks);
                    prop_assert_eq!(s.escrow().get(), s.price.get() * u64::from(s.max_ticks.get() - s.settled.get()));
                    if let Some((_, was)) = before.iter().find(|(id, _)| *id == s.id) {
                        prop_assert!(s.settled.get() >= *was, "settled went back");
                    }
                }
            }
        }
        // Everyone closes in the end (the payees, who may close at any time): all escrow returns.
        for payer in 0..4u32 {
            let slots: Vec<(u16, AccountIndex)> = m.books[payer as usize].iter().map(|s| (s.id.slot.0, s.payee)).collect();
            for (slot, _) in slots {
                m.run(&Op::Close { payer, slot, by_payee: true });
            }
        }
        prop_assert_eq!(m.books.iter().map(PayerStreams::escrowed).sum::<u128>(), 0);
        prop_assert_eq!(m.balances.iter().map(|&b| b as u128).sum::<u128>(), supply);
    }
}
