//! Version 2: stream records. Layout, every decoder refusal, and batches of stream
//! transactions whose diffs rebuild the state (books and `ext` included) on a replica.

use plonky2::field::types::Field;

use super::*;
use crate::hash::F;
use crate::stream::rules::{Close, Open, Settle};
use crate::stream::{Stream, StreamId, StreamSlot, TickChain, TickCount};
use crate::tx::{SettleBody, Unsigned};

const ALICE: AccountIndex = AccountIndex(1);
const BOB: AccountIndex = AccountIndex(2);

fn stream(payer: u32, slot: u16, settled: u32) -> Stream {
    Stream {
        id: StreamId {
            payer: AccountIndex(payer),
            slot: StreamSlot(slot),
            opened_at: nonce(4),
        },
        payee: AccountIndex(2),
        price: amt(3),
        max_ticks: TickCount::new(50).unwrap(),
        expiry: Timestamp::new(NOW + 600).unwrap(),
        settled: TickCount::new(settled).unwrap(),
        head: Digest([F::from_canonical_u64(9); 4]),
    }
}

/// Accounts 0..3 exist; payer 1 has slot 7 open and slot 9 closed by the batch.
fn sample_v2() -> StateDiff {
    StateDiff::with_streams(
        3,
        vec![rec(1, 500, 2, None), rec(2, 40, 0, None)],
        vec![
            StreamRecord {
                payer: ALICE,
                slot: StreamSlot(7),
                stream: Some(stream(1, 7, 10)),
            },
            StreamRecord {
                payer: ALICE,
                slot: StreamSlot(9),
                stream: None,
            },
        ],
    )
    .unwrap()
}

#[test]
fn version_2_is_version_1_then_the_stream_section() {
    let d = sample_v2();
    let b = d.encode();
    assert_eq!(d.version(), 2);
    assert_eq!(b[0], 2, "version");
    let streams = HEADER_BYTES + 2 * RECORD_BYTES;
    assert_eq!(
        &b[streams..streams + 4],
        &2u32.to_le_bytes(),
        "stream records"
    );
    let open = &b[streams + 4..];
    assert_eq!(&open[..4], &1u32.to_le_bytes(), "payer");
    assert_eq!(&open[4..6], &7u16.to_le_bytes(), "slot");
    assert_eq!(open[6], 1, "open");
    assert_eq!(&open[7..11], &2u32.to_le_bytes(), "payee");
    assert_eq!(&open[11..19], &3u64.to_le_bytes(), "price");
    assert_eq!(&open[19..23], &50u32.to_le_bytes(), "max_ticks");
    assert_eq!(&open[23..31], &(NOW + 600).to_le_bytes(), "expiry");
    assert_eq!(&open[31..39], &4u64.to_le_bytes(), "opened_at");
    assert_eq!(&open[39..43], &10u32.to_le_bytes(), "settled");
    assert_eq!(&open[43..75], &stream(1, 7, 10).head.to_bytes(), "head");
    let closed = &open[STREAM_KEY_BYTES + STREAM_FIELDS_BYTES..];
    assert_eq!(
        closed,
        [&1u32.to_le_bytes()[..], &9u16.to_le_bytes(), &[0]].concat()
    );
    assert_eq!(b.len(), d.encoded_len());
    assert_eq!(StateDiff::decode(&b), Ok(d));
    // Without stream records the same accounts are written as version 1.
    let v1 = StateDiff::new(3, vec![rec(1, 500, 2, None), rec(2, 40, 0, None)]).unwrap();
    assert_eq!(v1.encode()[0], 1);
    assert_eq!(v1.encode()[1..], b[1..streams]);
}

/// The encoding of `sample_v2` with the first stream record's bytes from `at` replaced.
fn patched(at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut b = sample_v2().encode();
    let first = HEADER_BYTES + 2 * RECORD_BYTES + 4;
    b[first + at..first + at + bytes.len()].copy_from_slice(bytes);
    b
}

fn bad(field: &'static str, slot: u16) -> Result<StateDiff, DiffError> {
    Err(DiffError::BadStream {
        payer: 1,
        slot,
        field,
    })
}

#[test]
fn version_2_decoding_refuses_every_malformed_stream_record() {
    let base = HEADER_BYTES + 2 * RECORD_BYTES;
    let b = sample_v2().encode();
    // A stream section with no record would be a second encoding of a version 1 diff.
    let mut empty = b[..base].to_vec();
    empty[0] = 2;
    empty.extend(0u32.to_le_bytes());
    assert_eq!(
        StateDiff::decode(&empty),
        Err(DiffError::EmptyStreamSection)
    );
    // Cut anywhere in the section.
    for cut in base..b.len() {
        assert_eq!(
            StateDiff::decode(&b[..cut]),
            Err(DiffError::Truncated),
            "cut at {cut}"
        );
    }
    let mut trailing = b.clone();
    trailing.push(0);
    assert_eq!(
        StateDiff::decode(&trailing),
        Err(DiffError::TrailingBytes(1))
    );

    let payer = |p: u32| {
        Err(DiffError::BadStream {
            payer: p,
            slot: 7,
            field: "payer",
        })
    };
    assert_eq!(
        StateDiff::decode(&patched(0, &3u32.to_le_bytes())),
        payer(3)
    );
    assert_eq!(StateDiff::decode(&patched(6, &[2])), bad("tag", 7));
    assert_eq!(
        StateDiff::decode(&patched(7, &1u32.to_le_bytes())),
        bad("payee", 7)
    );
    assert_eq!(
        StateDiff::decode(&patched(7, &3u32.to_le_bytes())),
        bad("payee", 7)
    );
    assert_eq!(
        StateDiff::decode(&patched(11, &0u64.to_le_bytes())),
        bad("price", 7)
    );
    assert_eq!(
        StateDiff::decode(&patched(11, &(1u64 << 62).to_le_bytes())),
        bad("price", 7),
        "price x max_ticks above 2^63 - 1"
    );
    assert_eq!(
        StateDiff::decode(&patched(19, &0u32.to_le_bytes())),
        bad("max_ticks", 7)
    );
    assert_eq!(
        StateDiff::decode(&patched(19, &((1u32 << 24) + 1).to_le_bytes())),
        bad("max_ticks", 7)
    );
    assert_eq!(
        StateDiff::decode(&patched(23, &(1u64 << 63).to_le_bytes())),
        bad("expiry", 7)
    );
    assert_eq!(
        StateDiff::decode(&patched(31, &(1u64 << 63).to_le_bytes())),
        bad("opened_at", 7)
    );
    assert_eq!(
        StateDiff::decode(&patched(39, &51u32.to_le_bytes())),
        bad("settled", 7)
    );
    assert_eq!(
        StateDiff::decode(&patched(43, &u64::MAX.to_le_bytes())),
        bad("head", 7)
    );
    // Order: the second record (slot 9) moved to slot 7 repeats, to slot 6 goes backwards.
    let second = base + 4 + STREAM_KEY_BYTES + STREAM_FIELDS_BYTES;
    for (slot, what) in [(7u16, "repeat"), (6, "backwards")] {
        let mut b2 = b.clone();
        b2[second + 4..second + 6].copy_from_slice(&slot.to_le_bytes());
        assert_eq!(
            StateDiff::decode(&b2),
            Err(DiffError::StreamsUnsorted {
                previous: (1, 7),
                index: (1, slot)
            }),
            "{what}"
        );
    }
    // A payer without an account record: account 2 has one but no stream of its own here.
    let orphan = StateDiff::with_streams(
        3,
        vec![rec(2, 40, 0, None)],
        vec![StreamRecord {
            payer: ALICE,
            slot: StreamSlot(9),
            stream: None,
        }],
    );
    assert_eq!(orphan, Err(DiffError::StreamWithoutAccount(1)));
    // A stream whose own id names another slot than its record.
    let misplaced = StateDiff::with_streams(
        3,
        vec![rec(1, 500, 2, None)],
        vec![StreamRecord {
            payer: ALICE,
            slot: StreamSlot(8),
            stream: Some(stream(1, 7, 0)),
        }],
    );
    assert_eq!(misplaced, bad("id", 8));
    for (e, code) in [
        (DiffError::EmptyStreamSection, "EMPTY_STREAM_SECTION"),
        (DiffError::StreamWithoutAccount(1), "STREAM_WITHOUT_ACCOUNT"),
        (
            DiffError::StreamMismatch { payer: 1, slot: 2 },
            "STREAM_MISMATCH",
        ),
    ] {
        assert_eq!(e.code(), code);
    }
    assert_eq!(bad("tag", 1).unwrap_err().code(), "BAD_STREAM");
}

fn chain(s: &State, slot: u16) -> TickChain {
    let id = StreamId {
        payer: ALICE,
        slot: StreamSlot(slot),
        opened_at: s.account(ALICE).unwrap().nonce,
    };
    TickChain::new(
        id,
        TickCount::new(50).unwrap(),
        Digest([F::from_canonical_u64(slot as u64 + 1); 4]),
    )
}

fn open(s: &State, keys: &[SecretKey], slot: u16, anchor: Digest) -> Transaction {
    Unsigned {
        body: Open {
            payer: ALICE,
            payee: BOB,
            slot: StreamSlot(slot),
            price: amt(3),
            max_ticks: TickCount::new(50).unwrap(),
            expiry: Timestamp::new(NOW + 600).unwrap(),
            anchor,
        },
        fee: amt(1),
        nonce: s.account(ALICE).unwrap().nonce,
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &keys[1])
    .into()
}

fn settle(
    s: &State,
    keys: &[SecretKey],
    slot: u16,
    from: u32,
    to: u32,
    value: Digest,
) -> Transaction {
    Unsigned {
        body: SettleBody {
            payee: BOB,
            terms: Settle {
                payer: ALICE,
                slot: StreamSlot(slot),
                from: TickCount::new(from).unwrap(),
                to: TickCount::new(to).unwrap(),
                value,
            },
        },
        fee: amt(0),
        nonce: s.account(BOB).unwrap().nonce,
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &keys[2])
    .into()
}

fn close(s: &State, keys: &[SecretKey], slot: u16) -> Transaction {
    Unsigned {
        body: Close {
            payer: ALICE,
            slot: StreamSlot(slot),
            signer: BOB,
        },
        fee: amt(0),
        nonce: s.account(BOB).unwrap().nonce,
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &keys[2])
    .into()
}

/// Applies `txs` as one batch and seals it; returns the touches and the published bytes.
fn seal(s: &mut State, txs: impl FnOnce(&mut State) -> Vec<Effects>) -> (BatchTouches, Vec<u8>) {
    let old_root = s.root();
    let mut touches = BatchTouches::new(s.num_accounts());
    for fx in txs(s) {
        touches.absorb(&fx);
    }
    let blob = touches.seal(s, old_root).expect("the batch's diff checks");
    (touches, blob)
}

#[test]
fn stream_batches_publish_net_records_that_rebuild_books_and_roots() {
    let (mut s, keys) = world();
    let mut replica = AccountTree::from_accounts(s.accounts());
    let mut chains = Vec::new();
    // Batch 1: two streams open; the first settles twice (one net record).
    let (_, blob) = seal(&mut s, |s| {
        let mut fx = Vec::new();
        for slot in [3u16, 4] {
            let c = chain(s, slot);
            let tx = open(s, &keys, slot, c.anchor());
            fx.push(s.apply(&tx, &ctx()).unwrap());
            chains.push(c);
        }
        let t5 = chains[0].tick(5).unwrap().value;
        let tx = settle(s, &keys, 3, 0, 5, t5);
        fx.push(s.apply(&tx, &ctx()).unwrap());
        let t12 = chains[0].tick(12).unwrap().value;
        let tx = settle(s, &keys, 3, 5, 12, t12);
        fx.push(s.apply(&tx, &ctx()).unwrap());
        fx
    });
    let d1 = StateDiff::decode(&blob).unwrap();
    assert_eq!(d1.version(), 2);
    let settled: Vec<(u16, Option<u32>)> = d1
        .streams()
        .iter()
        .map(|r| (r.slot.0, r.stream.map(|x| x.settled.get())))
        .collect();
    assert_eq!(
        settled,
        vec![(3, Some(12)), (4, Some(0))],
        "one net record per slot"
    );
    assert_eq!(replica.apply(&d1), Ok(s.root()));
    assert_ne!(replica.accounts()[1].ext, Digest::ZERO);
    assert_eq!(replica.streams_of(1), Some(s.streams_of(ALICE)));

    // Batch 2: Bob closes slot 3, then a plain payment: one empty-slot record.
    let (_, blob) = seal(&mut s, |s| {
        let tx = close(s, &keys, 3);
        vec![s.apply(&tx, &ctx()).unwrap(), pay(s, &keys, 2, 1, 5, 0)]
    });
    let d2 = StateDiff::decode(&blob).unwrap();
    assert_eq!(d2.streams().len(), 1);
    assert_eq!(d2.streams()[0].stream, None);
    assert_eq!(replica.apply(&d2), Ok(s.root()));

    // Batch 3: the last stream closes; Alice's ext is ZERO again. Batch 4 has no stream: v1.
    let (_, blob) = seal(&mut s, |s| {
        let tx = close(s, &keys, 4);
        vec![s.apply(&tx, &ctx()).unwrap()]
    });
    assert_eq!(
        replica.apply(&StateDiff::decode(&blob).unwrap()),
        Ok(s.root())
    );
    assert_eq!(replica.accounts()[1].ext, Digest::ZERO);
    assert_eq!(replica.streams_of(1), None);
    let (_, blob) = seal(&mut s, |s| vec![pay(s, &keys, 1, 2, 5, 0)]);
    assert_eq!(blob[0], 1);
    assert_eq!(
        replica.apply(&StateDiff::decode(&blob).unwrap()),
        Ok(s.root())
    );
}

#[test]
fn seal_refuses_stream_records_that_differ_from_the_state_or_are_missing() {
    let (mut s, keys) = world();
    let old_root = s.root();
    let mut touches = BatchTouches::new(s.num_accounts());
    let c = chain(&s, 3);
    let tx = open(&s, &keys, 3, c.anchor());
    touches.absorb(&s.apply(&tx, &ctx()).unwrap());
    let blob = touches.seal(&mut s, old_root).unwrap();
    let honest = StateDiff::decode(&blob).unwrap();
    // Another settled count than the state's.
    let mut other = honest.streams().to_vec();
    let mut st = other[0].stream.unwrap();
    st.settled = TickCount::new(1).unwrap();
    other[0].stream = Some(st);
    let forged =
        StateDiff::with_streams(honest.count_before(), honest.records().to_vec(), other).unwrap();
    assert_eq!(
        touches.verify(&forged.encode(), &mut s, old_root),
        Err(DiffError::StreamMismatch { payer: 1, slot: 3 })
    );
    // The stream record left out (a version 1 diff of the same accounts).
    let dropped = StateDiff::new(honest.count_before(), honest.records().to_vec()).unwrap();
    assert_eq!(
        touches.verify(&dropped.encode(), &mut s, old_root),
        Err(DiffError::StreamMismatch { payer: 1, slot: 3 })
    );
    assert!(touches.verify(&blob, &mut s, old_root).is_ok());
}
