//! The stream kinds in the payment circuit (SPEC 13.3.1): a leaf built with them opens,
//! settles and closes streams exactly as the native rules do, hands each settlement's tick walk
//! over through `walks` (the tick-walk tree's records), and refuses every stream rule broken by
//! a witness built past the native checks, naming the rule.
//!
//! The attacks use a forger: the circuit's transition for the stream kinds (the book write, the
//! owner's `ext`, the debits and credits, the op bytes, the walk record) with no rule checked,
//! on top of the accounts forger of `payment.rs`.

use std::collections::BTreeMap;

use rollup_prover::circuits::payment::{PaymentKinds, StreamRule};
use rollup_prover::circuits::ticks::{
    absorb as absorb_walk, Lane, TickWalkCircuit, WalkRecord, WalkStatement,
};
use rollup_prover::circuits::trees::{ChunkCircuit, ChunkInput, ChunkShape};
use rollup_prover::planner::chunks::{walk_chunks, walk_records};
use rollup_prover::witness::StreamWitness;
use state::ext::ext_digest;
use state::hash::two_to_one;
use state::smt::empty_hashes;
use state::stream::chain::TickChain;
use state::stream::rules::{Close, Open, Settle};
use state::stream::{StreamId, StreamSlot, TickCount, SLOT_DEPTH};
use state::tx::stream::{SettleBody, Unsigned};

use super::*;

#[path = "stream/tick_tree.rs"]
mod tick_tree;

const CAROL: AccountIndex = AccountIndex(3);
const PRICE: u64 = 3;
const TICKS: u32 = 10;

/// The payment circuit with the stream kinds (`K` slots), built once per test binary (the
/// settlement test proves with [`super::kinds_registry`]).
fn stream_circuit() -> &'static PaymentCircuit {
    static C: OnceLock<PaymentCircuit> = OnceLock::new();
    C.get_or_init(|| {
        let t = Instant::now();
        let c = PaymentCircuit::build_with(K, true);
        println!(
            "payment circuit with the stream kinds, k={K}: {} rows (degree), {} gates per slot \
             (without them: {}), built in {:?}",
            c.data.common.degree(),
            c.gates_per_slot,
            PaymentCircuit::gates_per_slot_of(PaymentKinds::default()),
            t.elapsed()
        );
        c
    })
}

fn prove_streams(w: &LeafWitness) -> Result<RangeStatement, String> {
    try_prove_with(stream_circuit(), w)
}

fn chain() -> TickChain {
    let id = StreamId {
        payer: ALICE,
        slot: StreamSlot(0),
        opened_at: Nonce::ZERO,
    };
    TickChain::new(id, TickCount::new(TICKS).unwrap(), hash_no_pad(&[felt(99)]))
}

/// The walk of the test stream's chain from tick 0 to tick `to`, as a settlement hands it over.
fn walk_to(to: u32) -> WalkRecord {
    let mut ch = chain();
    WalkRecord {
        id: ch.id(),
        to,
        from: 0,
        t_to: ch.tick(to).unwrap().value,
        head: ch.anchor(),
    }
}

fn open_terms(anchor: Digest) -> Open {
    Open {
        payer: ALICE,
        payee: BOB,
        slot: StreamSlot(0),
        price: amt(PRICE),
        max_ticks: TickCount::new(TICKS).unwrap(),
        expiry: Timestamp::new(NOW + 100).unwrap(),
        anchor,
    }
}

pub(super) fn signed<B: state::tx::stream::Body>(
    body: B,
    fee: u64,
    nonce: u64,
    k: &SecretKey,
) -> state::tx::stream::Signed<B> {
    Unsigned {
        body,
        fee: amt(fee),
        nonce: Nonce::new(nonce).unwrap(),
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, k)
}

fn settle_body(payee: AccountIndex, from: u32, to: u32, value: Digest) -> SettleBody {
    SettleBody {
        payee,
        terms: Settle {
            payer: ALICE,
            slot: StreamSlot(0),
            from: TickCount::new(from).unwrap(),
            to: TickCount::new(to).unwrap(),
            value,
        },
    }
}

/// Alice opens a stream to Bob (3 per tick, 10 ticks, escrow 30, fee 1), Bob settles ticks 1
/// to 4 (fee 1), Alice pays Bob 5, Bob closes (the 18 left go back to Alice).
fn batch(k: &Keys) -> Vec<(Transaction, BlockContext)> {
    let mut ch = chain();
    let t4 = ch.tick(4).unwrap();
    vec![
        (
            Transaction::StreamOpen(signed(open_terms(ch.anchor()), 1, 0, &k.alice)),
            ctx(),
        ),
        (
            Transaction::StreamSettle(signed(settle_body(BOB, 0, 4, t4.value), 1, 0, &k.bob)),
            ctx(),
        ),
        (transfer(ALICE, BOB, 5, 0, 1, &k.alice), ctx()),
        (close_tx(BOB, 0, 1, &k.bob), ctx()),
    ]
}

#[test]
fn streams_open_settle_and_close_in_a_leaf_with_the_native_statement() {
    let k = keys();
    let mut state = setup(&k);
    let txs = batch(&k);
    let leaves = leaf_witnesses(&mut state, &txs, ts(), K, 0, &depositor).unwrap();
    assert_eq!(leaves.len(), 1);
    let w = &leaves[0];
    let s = prove_streams(w).unwrap_or_else(|e| panic!("the honest stream leaf: {e}"));
    assert_eq!(s, w.statement);
    assert_eq!(s.new_root, state.root());
    // 1000 - 30 - 1 - 5 + 18 and 50 + 12 - 1 + 5: the escrow, the payout and the refund.
    assert_eq!(state.account(ALICE).unwrap().balance.get(), 982);
    assert_eq!(state.account(BOB).unwrap().balance.get(), 66);
    assert!(state.streams_of(ALICE).is_empty());

    // The settlement's walk is handed over: the record the tick-walk tree proves (natively
    // walked by its planner), folded once.
    let record = walk_to(4);
    assert_eq!(s.walks_in, Digest::ZERO);
    assert_eq!(s.walks_out, absorb_walk(Digest::ZERO, &record));
    // The planner's tick-walk chunks (two, as for a batch of two chunks per tree): the first
    // walks the four ticks, proven by the chunk circuit of the batch's shape, whose fold is the
    // leaf's `walks_out`.
    let records = walk_records(&leaves);
    assert_eq!(records, vec![record]);
    let shape = ChunkShape::for_leaf(K);
    let chunks: Vec<ChunkInput<Vec<Lane>, WalkStatement>> = walk_chunks(&records, shape, 2)
        .unwrap()
        .iter()
        .map(|c| serde_json::from_slice(c).unwrap())
        .collect();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1].statement.acc_out, s.walks_out);
    let walk = TickWalkCircuit::build(shape.walk_lanes);
    let proof = ChunkCircuit::prove(&walk, &chunks[0].witness, &chunks[0].statement).unwrap();
    assert_eq!(proof.public_inputs, chunks[0].statement.public_inputs());
    assert_eq!(chunks[0].statement.acc_out, s.walks_out);
    walk.data.verify(proof).unwrap();

    // The circuit without the stream kinds has no witness for them.
    assert!(circuit().prove(w).is_err());
}

// --- The forger ---------------------------------------------------------------------------

/// A depth-16 book as its leaves' fields (canonical `Stream::to_field_elements`).
type Book = BTreeMap<u16, [u64; 10]>;

fn leaf_of(fields: &[u64; 10]) -> Digest {
    hash_no_pad(&fields.map(felt))
}

fn node(book: &Book, level: usize, pos: u32) -> Digest {
    let (lo, hi) = (pos << level, (pos + 1) << level);
    if book
        .range(lo as u16..=(hi - 1).min(u16::MAX as u32) as u16)
        .next()
        .is_none()
    {
        return empty_hashes()[level];
    }
    if level == 0 {
        return leaf_of(&book[&(pos as u16)]);
    }
    two_to_one(
        node(book, level - 1, 2 * pos),
        node(book, level - 1, 2 * pos + 1),
    )
}

fn book_path(book: &Book, slot: u16) -> Vec<Digest> {
    (0..SLOT_DEPTH)
        .map(|l| node(book, l, (u32::from(slot) >> l) ^ 1))
        .collect()
}

/// How a forged stream slot departs from the circuit's transition.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StreamCheat {
    None,
    /// The slot's old stream is claimed with this price (the book holds another).
    Price(u64),
    /// The owner's book and profile claimed to be this account's (B's `ext` is another).
    BookOf(u32),
}

struct StreamForger {
    f: Forger,
    books: BTreeMap<u32, Book>,
    profiles: BTreeMap<u32, Digest>,
    walks: Digest,
}

impl StreamForger {
    fn new(state: &mut State) -> Self {
        let mut books = BTreeMap::new();
        let mut profiles = BTreeMap::new();
        for i in 0..state.num_accounts() as u32 {
            let book: Book = state
                .streams_of(AccountIndex(i))
                .iter()
                .map(|s| {
                    (
                        s.id.slot.0,
                        s.to_field_elements().map(|e| e.to_canonical_u64()),
                    )
                })
                .collect();
            books.insert(i, book);
            profiles.insert(i, state.profile_of(AccountIndex(i)).digest());
        }
        StreamForger {
            f: Forger::new(state),
            books,
            profiles,
            walks: Digest::ZERO,
        }
    }

    /// Applies a stream intent with the circuit's arithmetic and no rule.
    fn stream_slot(&mut self, mut s: SlotWitness, cheat: StreamCheat) -> SlotWitness {
        let add = |x: u64, y: u64| (felt(x) + felt(y)).to_canonical_u64();
        let sub = |x: u64, y: u64| (felt(x) - felt(y)).to_canonical_u64();
        let mul = |x: u64, y: u64| (felt(x) * felt(y)).to_canonical_u64();
        let (ai, bi) = (s.a.index, s.b.index);
        let mut w = s.stream.take().expect("a stream intent");
        let owner = if s.kind == SlotKind::StreamOpen {
            ai
        } else {
            bi
        };
        let mut book = self.books.get(&owner).cloned().unwrap_or_default();
        let mut profile = self.profiles.get(&owner).copied().unwrap_or(Digest::ZERO);
        if let StreamCheat::BookOf(other) = cheat {
            book = self.books[&other].clone();
            profile = self.profiles[&other];
        }
        let mut old = book.get(&w.slot).copied().unwrap_or([0; 10]);
        if let StreamCheat::Price(p) = cheat {
            old[1] = p;
        }
        w.path = book_path(&book, w.slot);
        w.streams_root = node(&book, SLOT_DEPTH, 0);
        w.profile = profile;
        w.old = if s.kind == SlotKind::StreamOpen {
            [0; 10]
        } else {
            old
        };
        let (price, max, settled) = (old[1], old[2], old[5]);
        let (mut a_debit, mut a_credit, mut b_credit) = (s.fee, 0, 0);
        match s.kind {
            SlotKind::StreamOpen => {
                a_debit = add(s.amount, s.fee);
                let h = w.anchor.elements().map(|e| e.to_canonical_u64());
                book.insert(
                    w.slot,
                    [
                        bi.into(),
                        w.price,
                        w.max_ticks.into(),
                        w.expiry,
                        s.nonce,
                        0,
                        h[0],
                        h[1],
                        h[2],
                        h[3],
                    ],
                );
            }
            SlotKind::StreamSettle => {
                a_credit = mul(price, sub(w.to.into(), settled));
                let mut new = old;
                new[5] = w.to.into();
                let t = w.t_to.elements().map(|e| e.to_canonical_u64());
                new[6..].copy_from_slice(&t);
                book.insert(w.slot, new);
                let record = WalkRecord {
                    id: StreamId {
                        payer: AccountIndex(bi),
                        slot: StreamSlot(w.slot),
                        opened_at: Nonce::new(old[4]).unwrap(),
                    },
                    to: w.to,
                    from: settled as u32,
                    t_to: w.t_to,
                    head: Digest(std::array::from_fn(|i| felt(old[6 + i]))),
                };
                self.walks = absorb_walk(self.walks, &record);
            }
            SlotKind::StreamSettlePath => {
                // The head (the tick tree's root) stays; no walk is handed over.
                a_credit = mul(price, sub(w.to.into(), settled));
                let mut new = old;
                new[5] = w.to.into();
                book.insert(w.slot, new);
            }
            SlotKind::StreamClose => {
                b_credit = mul(price, sub(max, settled));
                book.remove(&w.slot);
            }
            other => unreachable!("{other:?} is not a stream kind"),
        }
        let new_ext = ext_digest(node(&book, SLOT_DEPTH, 0), profile);
        self.books.insert(owner, book);
        let open = s.kind == SlotKind::StreamOpen;
        s.a = self.f.access(ai, |old| {
            old.map(|mut a| {
                a.balance = add(sub(a.balance, a_debit), a_credit);
                a.nonce = add(a.nonce, 1);
                if open {
                    a.ext = new_ext;
                }
                a
            })
        });
        s.b = self.f.access(bi, |old| {
            old.map(|mut a| {
                a.balance = add(a.balance, b_credit);
                if !open {
                    a.ext = new_ext;
                }
                a
            })
        });
        let fee = s.fee;
        s.c = self.f.access(0, |old| {
            old.map(|mut a| {
                a.balance = add(a.balance, fee);
                a
            })
        });
        // The op's bytes (SPEC 10.2), from the slot's fields as the circuit reads them.
        let mut bytes = vec![s.kind_tag()];
        bytes.extend(ai.to_le_bytes());
        bytes.extend(bi.to_le_bytes());
        bytes.extend(w.slot.to_le_bytes());
        match s.kind {
            SlotKind::StreamOpen => {
                bytes.extend(w.price.to_le_bytes());
                bytes.extend(w.max_ticks.to_le_bytes());
                bytes.extend(w.expiry.to_le_bytes());
                bytes.extend(w.anchor.to_bytes());
            }
            SlotKind::StreamSettle | SlotKind::StreamSettlePath => {
                bytes.extend((settled as u32).to_le_bytes());
                bytes.extend(w.to.to_le_bytes());
                bytes.extend(w.t_to.to_bytes());
            }
            _ => {}
        }
        bytes.extend(s.fee.to_le_bytes());
        self.f.pubdata = absorb_bytes(self.f.pubdata, &bytes);
        s.stream = Some(w);
        s
    }

    /// A leaf of stream intents (others through the accounts forger), padded with no-ops.
    fn leaf(&mut self, intents: Vec<(SlotWitness, StreamCheat)>) -> LeafWitness {
        let old_root = self.f.tree.root();
        let (pubdata_in, deposits) = (self.f.pubdata, self.f.deposits);
        let walks_in = self.walks;
        let mut slots: Vec<SlotWitness> = intents
            .into_iter()
            .map(|(s, cheat)| match s.kind {
                SlotKind::StreamOpen
                | SlotKind::StreamSettle
                | SlotKind::StreamClose
                | SlotKind::StreamSettlePath => self.stream_slot(s, cheat),
                _ => self.f.slot(s, Cheat::None),
            })
            .collect();
        while slots.len() < K {
            slots.push(self.f.slot(intent(SlotKind::Noop), Cheat::None));
        }
        LeafWitness {
            statement: RangeStatement {
                old_root,
                new_root: self.f.tree.root(),
                pubdata_in,
                pubdata_out: self.f.pubdata,
                withdrawals_in: self.f.withdrawals,
                withdrawals_out: self.f.withdrawals,
                deposits_first: deposits,
                deposits_next: self.f.deposits,
                timestamp: NOW,
                domain: DOMAIN.digest(),
                entries_in: self.f.entries,
                entries_out: self.f.entries,
                splits_in: Digest::ZERO,
                splits_out: Digest::ZERO,
                walks_in,
                walks_out: self.walks,
            },
            slots,
        }
    }
}

trait KindTag {
    fn kind_tag(&self) -> u8;
}

impl KindTag for SlotWitness {
    fn kind_tag(&self) -> u8 {
        match self.kind {
            SlotKind::StreamOpen => 7,
            SlotKind::StreamSettle => 8,
            SlotKind::StreamClose => 9,
            SlotKind::StreamSettlePath => 18,
            _ => 0,
        }
    }
}

/// A stream intent: kind, A, B, the envelope (fee 1) and the terms, with its signature.
fn s_intent(
    kind: SlotKind,
    a: AccountIndex,
    b: AccountIndex,
    amount: u64,
    nonce: u64,
    terms: StreamWitness,
    signature: Option<Signature>,
) -> SlotWitness {
    let mut s = intent(kind);
    s.a.index = a.0;
    s.b.index = b.0;
    (s.amount, s.fee, s.nonce, s.valid_until) = (amount, 1, nonce, NOW + 60);
    s.stream = Some(terms);
    s.signature = signature;
    s
}

/// A signature by `k` over the message of kind `tag` with these fields (then fee 1, `nonce`,
/// `NOW + 60`): what a signer of values no typed transaction holds would send.
fn sign_fields(k: &SecretKey, tag: u64, fields: &[F], nonce: u64) -> Signature {
    let mut m = DOMAIN.digest().elements().to_vec();
    m.push(felt(tag));
    m.extend_from_slice(fields);
    m.extend([felt(1), felt(nonce), felt(NOW + 60)]);
    k.sign(&state::crypto::schnorr::MessageHash(hash_no_pad(&m)))
}

/// An open of `terms` by its payer at `nonce`, `max_ticks` as given (any value), signed by `k`.
fn open_intent_at(
    terms: &Open,
    max_ticks: u32,
    escrow: u64,
    nonce: u64,
    k: &SecretKey,
) -> SlotWitness {
    let mut fields = vec![
        felt(terms.payer.0.into()),
        felt(terms.payee.0.into()),
        felt(terms.slot.0.into()),
        felt(terms.price.get()),
        felt(max_ticks.into()),
        felt(terms.expiry.get()),
    ];
    fields.extend(terms.anchor.elements());
    let sig = sign_fields(k, 7, &fields, nonce);
    s_intent(
        SlotKind::StreamOpen,
        terms.payer,
        terms.payee,
        escrow,
        nonce,
        StreamWitness {
            slot: terms.slot.0,
            price: terms.price.get(),
            max_ticks,
            expiry: terms.expiry.get(),
            anchor: terms.anchor,
            ..StreamWitness::idle()
        },
        Some(sig),
    )
}

fn open_intent(terms: &Open, escrow: u64, k: &SecretKey) -> SlotWitness {
    open_intent_at(terms, terms.max_ticks.get(), escrow, 0, k)
}

fn settle_intent(
    payee: AccountIndex,
    from: u32,
    to: u32,
    t_to: Digest,
    nonce: u64,
    k: &SecretKey,
) -> SlotWitness {
    settle_intent_of(ALICE, payee, from, to, t_to, nonce, k)
}

/// A settlement of slot 0 of `payer`'s book by `payee`, signed by `k` over `from` (the circuit
/// hashes the stream's `settled` in its place).
fn settle_intent_of(
    payer: AccountIndex,
    payee: AccountIndex,
    from: u32,
    to: u32,
    t_to: Digest,
    nonce: u64,
    k: &SecretKey,
) -> SlotWitness {
    let mut fields = vec![
        felt(payee.0.into()),
        felt(payer.0.into()),
        felt(0),
        felt(from.into()),
        felt(to.into()),
    ];
    fields.extend(t_to.elements());
    let sig = sign_fields(k, 8, &fields, nonce);
    s_intent(
        SlotKind::StreamSettle,
        payee,
        payer,
        0,
        nonce,
        StreamWitness {
            slot: 0,
            to,
            t_to,
            ..StreamWitness::idle()
        },
        Some(sig),
    )
}

/// A close of Alice's slot 0 by `signer`.
fn close_tx(signer: AccountIndex, fee: u64, nonce: u64, k: &SecretKey) -> Transaction {
    let close = Close {
        payer: ALICE,
        slot: StreamSlot(0),
        signer,
    };
    Transaction::StreamClose(signed(close, fee, nonce, k))
}

fn close_intent(signer: AccountIndex, nonce: u64, k: &SecretKey) -> SlotWitness {
    let Transaction::StreamClose(close) = close_tx(signer, 1, nonce, k) else {
        unreachable!("a close")
    };
    let sig = close.signature;
    s_intent(
        SlotKind::StreamClose,
        signer,
        ALICE,
        0,
        nonce,
        StreamWitness::idle(),
        Some(sig),
    )
}

/// Alice's stream to Bob open natively (opened at nonce 0 with expiry `expiry`, at batch
/// time `opened`), Carol registered and funded: the world of the settlement and close attacks.
fn world_with_stream(k: &Keys, opened: u64, expiry: u64) -> State {
    let mut state = setup(k);
    let at = BlockContext::at(Timestamp::new(opened).unwrap());
    for tx in [register(&k.carol), deposit(2, CAROL, 100)] {
        state.apply(&tx, &at).unwrap();
    }
    let terms = Open {
        expiry: Timestamp::new(expiry).unwrap(),
        ..open_terms(chain().anchor())
    };
    state
        .apply(&Transaction::StreamOpen(signed(terms, 1, 0, &k.alice)), &at)
        .unwrap();
    state
}

/// Proves a forged leaf and returns the stream rule the circuit names, asserting that the
/// leaf has no proof.
fn refused(name: &str, w: &LeafWitness) -> Option<(usize, StreamRule)> {
    refused_with(stream_circuit(), name, w, PaymentCircuit::refused_by)
}

#[test]
fn the_forger_reproduces_honest_stream_witnesses() {
    let k = keys();
    let mut state = world_with_stream(&k, NOW, NOW + 100);
    let mut forger = StreamForger::new(&mut state);
    let t4 = chain().tick(4).unwrap().value;
    let txs = vec![
        (
            Transaction::StreamSettle(signed(settle_body(BOB, 0, 4, t4), 1, 0, &k.bob)),
            ctx(),
        ),
        (close_tx(BOB, 1, 1, &k.bob), ctx()),
    ];
    let mut honest = leaf_witnesses(&mut state, &txs, ts(), K, 0, &depositor).unwrap();
    // The signer's opening is read by circuits with policy checks only (`agents.rs`).
    for s in &mut honest[0].slots {
        s.signer = None;
    }
    let forged = forger.leaf(vec![
        (settle_intent(BOB, 0, 4, t4, 0, &k.bob), StreamCheat::None),
        (close_intent(BOB, 1, &k.bob), StreamCheat::None),
    ]);
    assert_eq!(forged, honest[0]);
}

#[test]
fn every_stream_rule_is_enforced_by_the_circuit() {
    let k = keys();
    let anchor = chain().anchor();
    let t4 = chain().tick(4).unwrap().value;
    // Each attack: a fresh world, one forged slot (the first), the rule the circuit names.
    let attack = |name: &str,
                  world: &dyn Fn() -> State,
                  intents: Vec<(SlotWitness, StreamCheat)>,
                  rule: StreamRule| {
        let mut state = world();
        let w = StreamForger::new(&mut state).leaf(intents);
        assert_eq!(refused(name, &w), Some((0, rule)), "{name}");
    };
    // Alice rich enough for any escrow below, so that only the attacked rule breaks.
    let fresh = || {
        let mut s = setup(&keys());
        s.apply(&register(&keys().carol), &ctx()).unwrap();
        s.apply(&deposit(2, ALICE, 1 << 40), &ctx()).unwrap();
        s
    };
    let streaming = || world_with_stream(&keys(), NOW, NOW + 100);
    let expired = || world_with_stream(&keys(), NOW - 10_000, NOW - 5_000);

    // Opens.
    let terms = open_terms(anchor);
    attack(
        "escrow below price x max_ticks",
        &fresh,
        vec![(open_intent(&terms, 29, &k.alice), StreamCheat::None)],
        StreamRule::EscrowMismatch,
    );
    let zero_price = Open {
        price: Amount::ZERO,
        ..terms
    };
    attack(
        "zero price",
        &fresh,
        vec![(open_intent(&zero_price, 0, &k.alice), StreamCheat::None)],
        StreamRule::ZeroPrice,
    );
    // No ticks: the escrow is 0, which no open may debit either (an amount of 0 is refused
    // as for any spend), so the zero is tried with the escrow of one tick.
    let no_ticks = open_intent_at(&terms, 0, PRICE, 0, &k.alice);
    let mut state = fresh();
    let w = StreamForger::new(&mut state).leaf(vec![(no_ticks, StreamCheat::None)]);
    let rule = refused("no ticks", &w);
    assert!(
        matches!(
            rule,
            Some((0, StreamRule::BadTickCount | StreamRule::EscrowMismatch))
        ),
        "{rule:?}"
    );
    let too_many = open_intent_at(&terms, (1 << 24) + 1, PRICE * ((1 << 24) + 1), 0, &k.alice);
    attack(
        "2^24 + 1 ticks",
        &fresh,
        vec![(too_many, StreamCheat::None)],
        StreamRule::BadTickCount,
    );
    // price x max_ticks = 2^62 x 4 = 2^64: the field product would be 2^32 - 1.
    let huge = Open {
        price: amt(1 << 62),
        max_ticks: TickCount::new(4).unwrap(),
        ..terms
    };
    attack(
        "escrow overflow",
        &fresh,
        vec![(
            open_intent(&huge, (1 << 32) - 1, &k.alice),
            StreamCheat::None,
        )],
        StreamRule::AmountOverflow,
    );
    let past = Open {
        expiry: Timestamp::new(NOW).unwrap(),
        ..terms
    };
    attack(
        "expiry not after the batch time",
        &fresh,
        vec![(open_intent(&past, 30, &k.alice), StreamCheat::None)],
        StreamRule::ExpiryPassed,
    );
    let to_self = Open {
        payee: ALICE,
        ..terms
    };
    attack(
        "stream to itself",
        &fresh,
        vec![(open_intent(&to_self, 30, &k.alice), StreamCheat::None)],
        StreamRule::SelfStream,
    );
    let to_nobody = Open {
        payee: AccountIndex(9),
        ..terms
    };
    attack(
        "payee unknown",
        &fresh,
        vec![(open_intent(&to_nobody, 30, &k.alice), StreamCheat::None)],
        StreamRule::UnknownPayee,
    );
    attack(
        "open into a taken slot",
        &streaming,
        vec![(
            open_intent_at(&terms, TICKS, 30, 1, &k.alice),
            StreamCheat::None,
        )],
        StreamRule::BookPath,
    );

    // Settlements.
    attack(
        "settle past max_ticks",
        &streaming,
        vec![(
            settle_intent(BOB, 0, TICKS + 1, t4, 0, &k.bob),
            StreamCheat::None,
        )],
        StreamRule::TickBeyondMax,
    );
    attack(
        "settle to the settled tick (a replay)",
        &streaming,
        vec![(
            settle_intent(BOB, 0, 0, anchor, 0, &k.bob),
            StreamCheat::None,
        )],
        StreamRule::TickNotNewer,
    );
    attack(
        "settle by someone else than the payee",
        &streaming,
        vec![(
            settle_intent(CAROL, 0, 4, t4, 0, &k.carol),
            StreamCheat::None,
        )],
        StreamRule::NotPayee,
    );
    attack(
        "settle after the window",
        &expired,
        vec![(settle_intent(BOB, 0, 4, t4, 0, &k.bob), StreamCheat::None)],
        StreamRule::SettleWindowOver,
    );
    attack(
        "settle a stream of another price",
        &streaming,
        vec![(
            settle_intent(BOB, 0, 4, t4, 0, &k.bob),
            StreamCheat::Price(1_000),
        )],
        StreamRule::BookPath,
    );
    attack(
        "settle Alice's stream as if Carol's book held it",
        &streaming,
        vec![(
            settle_intent_of(CAROL, BOB, 0, 4, t4, 0, &k.bob),
            StreamCheat::BookOf(ALICE.0),
        )],
        StreamRule::OwnerExt,
    );

    // Closes.
    attack(
        "the payer closes within the payee's window",
        &streaming,
        vec![(close_intent(ALICE, 1, &k.alice), StreamCheat::None)],
        StreamRule::CloseNotAllowed,
    );
    attack(
        "a third party closes",
        &expired,
        vec![(close_intent(CAROL, 0, &k.carol), StreamCheat::None)],
        StreamRule::CloseNotAllowed,
    );
}

#[test]
fn stream_balances_and_signatures_are_enforced() {
    // Rules the slot shares with the other kinds: no stream rule is named, nothing proves.
    let k = keys();
    let terms = open_terms(chain().anchor());
    let fresh = || setup(&keys());
    for (name, intent) in [
        (
            "an escrow above the balance",
            open_intent(
                &Open {
                    price: amt(200),
                    ..terms
                },
                2_000,
                &k.alice,
            ),
        ),
        (
            "an open signed by the payee",
            open_intent(&terms, 30, &k.bob),
        ),
    ] {
        let mut state = fresh();
        let w = StreamForger::new(&mut state).leaf(vec![(intent, StreamCheat::None)]);
        assert_eq!(refused(name, &w), None, "{name}");
    }
    // The close by the payer after the window proves: the rule's other side.
    let mut state = world_with_stream(&k, NOW - 10_000, NOW - 5_000);
    let w = StreamForger::new(&mut state)
        .leaf(vec![(close_intent(ALICE, 1, &k.alice), StreamCheat::None)]);
    prove_streams(&w).unwrap_or_else(|e| panic!("the payer's late close: {e}"));
}

/// A batch with a stream settlement settles (SPEC 13.11, 18.7) through the registry of a
/// deployment whose leaf has the stream kinds, as the worker runs it: the leaf (open, settle,
/// transfer, close), the grouped diff (version 4: the batch has a stream record), the empty
/// priority and payout chunks and the tick-walk chunk are proven from the planner's inputs,
/// and `final-0-v4-walks` states exactly the contract's statement; its header names that
/// circuit and no other (relabelled as the version 1 final or as the one without walks, the
/// body finds no verifier). Without the walk tree, or with a walk tree of another settlement,
/// the batch has no settlement proof; nor with the grouped records streamed after a version 1
/// header, which the diff chunk circuit proves and only the settlement circuit refuses.
#[test]
fn a_batch_with_a_settlement_settles_with_its_tick_walk_tree() {
    use plonky2::plonk::proof::ProofWithPublicInputs;
    use rollup_prover::circuits::diff::diff_header_of;
    use rollup_prover::circuits::diff_grouped::{grouped_chunks, GroupedParts, GroupedStatement};
    use rollup_prover::circuits::settlement::{tie, SettlementProofs, TieError};
    use rollup_prover::gadgets::sha256::stream::StreamState;
    use rollup_prover::pins::FinalId;
    use rollup_prover::verify::{batch_proof_id, verify_batch_proof, VerifierSet, VerifyError};
    use rollup_storage::{DiffCircuitKind, ProofTree};
    use state::diff::{AccountTree, BatchTouches};
    use state::settlement::BatchStatement;

    const BATCH: u64 = 9;
    let k = keys();
    let txs = batch(&k);
    let mut before = setup(&k);
    // The node's view: the diff it publishes (version 4) and the state after.
    let mut after = setup(&k);
    let mut touches = BatchTouches::new(after.num_accounts());
    for (tx, ctx) in &txs {
        touches.absorb(&after.apply(tx, ctx).unwrap());
    }
    let diff = touches.diff(&after).unwrap();
    let published = diff.encode_published();
    assert_eq!(published[0], 4, "a stream record makes a version 4 diff");

    let reg = super::kinds_registry();
    let kind = DiffCircuitKind::V4;
    let shape = reg.shape();
    let tree = AccountTree::from_state(&before);
    let mut replay = setup(&k);
    let leaves = leaf_witnesses(&mut replay, &txs, ts(), K, 1, &depositor).unwrap();
    assert_eq!(leaves.len(), 1);
    let prove =
        |tree: ProofTree, input: &[u8]| reg.prove_tree_leaf(tree, kind, input).unwrap().bytes;
    let range = prove(ProofTree::Range, &serde_json::to_vec(&leaves[0]).unwrap());
    let grouped = |tree: &AccountTree| {
        grouped_chunks(
            tree,
            &diff,
            shape.grouped_cap,
            shape.grouped_subs,
            GroupedParts::Streams,
            1,
        )
        .unwrap()
        .remove(0)
    };
    let (gw, gs) = grouped(&tree);
    let diff_root = prove(ProofTree::Diff, &chunk_input(gw, gs));
    let QuietBatch {
        priority,
        payout,
        expected,
    } = quiet_batch(reg, kind, BATCH, (&mut before, &mut after), &published);
    let walks_in = walk_chunks(&walk_records(&leaves), shape, 1).unwrap();
    let walks = prove(ProofTree::Walks, &walks_in[0]);
    let walks_bytes = walks.clone();

    let id = FinalId::of(0, kind).with_walks();
    let roots = [
        range.clone(),
        diff_root.clone(),
        priority.clone(),
        payout.clone(),
        walks,
    ];
    let (bytes, statement) = reg.prove_final(id, &roots, &DOMAIN).unwrap();
    assert_eq!(statement, expected);
    assert_eq!(batch_proof_id(&bytes).unwrap(), (id, 7));
    let set = VerifierSet::from_source(reg, [id]).unwrap();
    verify_batch_proof(&set, &bytes, &expected).unwrap();
    let next = BatchStatement {
        batch_number: BATCH + 1,
        ..expected
    };
    assert!(matches!(
        verify_batch_proof(&set, &bytes, &next),
        Err(VerifyError::StatementMismatch)
    ));
    // The same body under a header naming another circuit (the version 1 final of the level,
    // or the version 4 one without the walk tree) finds no verifier in the set.
    let mut as_v1 = b"RBPF\x02\x00".to_vec();
    as_v1.extend_from_slice(&bytes[7..]);
    let mut without_walks = bytes.clone();
    without_walks[6] &= !0x40;
    for relabelled in [as_v1, without_walks] {
        assert!(matches!(
            verify_batch_proof(&set, &relabelled, &expected),
            Err(VerifyError::NoVerifier { .. })
        ));
    }

    // Without the walk tree: the final circuit that verifies none refuses the leaves' walks.
    let four = [
        range.clone(),
        diff_root.clone(),
        priority.clone(),
        payout.clone(),
    ];
    let err = reg
        .prove_final(FinalId::of(0, kind), &four, &DOMAIN)
        .expect_err("a settlement without its walk tree");
    assert!(format!("{err:#}").contains("walk records"), "{err:#}");
    // A walk tree of another settlement (of ticks 0 to 3 instead of 4) is refused too.
    let other = walk_to(3);
    let other_in = walk_chunks(&[other], shape, 1).unwrap();
    let other_walks = prove(ProofTree::Walks, &other_in[0]);
    let err = reg
        .prove_final(
            id,
            &[
                range.clone(),
                diff_root.clone(),
                priority.clone(),
                payout.clone(),
                other_walks.clone(),
            ],
            &DOMAIN,
        )
        .expect_err("a walk tree of another settlement");
    assert!(format!("{err:#}").contains("tick-walk"), "{err:#}");
    // ... natively, and by the circuit alone (what a dishonest prover would run).
    let chains = reg.chains().unwrap();
    let range_proof = ProofWithPublicInputs::from_bytes(range, &reg.common(0).unwrap()).unwrap();
    let diff_proof = chains
        .grouped(GroupedParts::Streams)
        .unwrap()
        .read_proof(0, &diff_root)
        .unwrap();
    let priority_proof = chains.priority.read_proof(0, &priority).unwrap();
    let payout_proof = chains.payout.read_proof(0, &payout).unwrap();
    let walks_proof = chains.walks().unwrap().read_proof(0, &walks_bytes).unwrap();
    let other_proof = chains.walks().unwrap().read_proof(0, &other_walks).unwrap();
    let honest = SettlementProofs {
        range: &range_proof,
        diff: &diff_proof,
        priority: &priority_proof,
        payout: &payout_proof,
        splits: None,
        walks: Some(&walks_proof),
    };
    assert_eq!(tie(&honest, &DOMAIN, kind), Ok(expected));
    // A grouped diff proof is not a version 1 one.
    assert_eq!(
        tie(&honest, &DOMAIN, DiffCircuitKind::V1),
        Err(TieError::Malformed("diff"))
    );
    let forged = SettlementProofs {
        walks: Some(&other_proof),
        ..honest
    };
    assert!(
        reg.final_circuit(id)
            .unwrap()
            .prove_unchecked(&forged, &DOMAIN)
            .is_err(),
        "a walk tree of another settlement settled"
    );

    // The grouped records streamed after a version 1 header (bytes an L1 reader would decode
    // as version 1): the chunk circuit proves them (its stream start is a value like any
    // other), and only the settlement circuit's constant version byte refuses them.
    let (mut gw, _) = grouped(&tree);
    let n = u32::try_from(diff.records().len()).unwrap();
    let mut header = StreamState::default();
    header.absorb(&diff_header_of(1, gw.start.count.count_before, n));
    gw.start.stream_in = header.clone();
    let g = &chains.grouped(GroupedParts::Streams).unwrap().chunk;
    let v1_headed = g.data.prove(g.partial_witness(&gw).unwrap()).unwrap();
    let v1_statement = GroupedStatement::from_fields(&v1_headed.public_inputs).unwrap();
    assert_eq!(v1_statement.base.stream_in, header);
    assert!(!v1_statement.whole_batch());
    let forged = SettlementProofs {
        diff: &v1_headed,
        ..honest
    };
    assert_eq!(
        tie(&forged, &DOMAIN, kind),
        Err(TieError::NotWholeBatch("diff"))
    );
    assert!(
        reg.final_circuit(id)
            .unwrap()
            .prove_unchecked(&forged, &DOMAIN)
            .is_err(),
        "a version 4 body under a version 1 header settled"
    );
}
