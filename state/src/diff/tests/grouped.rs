//! Version 4: the same content as versions 2 and 3, grouped by account. Layout, the round trip
//! through both encodings, and every refusal the grouping adds.

use plonky2::field::types::Field;

use super::*;
use crate::diff::grouped::{PART_LANES, PART_PASSPORT, PART_SHARES, PART_STREAMS, STREAM_MORE};
use crate::hash::F;
use crate::lanes::LaneNonces;
use crate::split::Shares;
use crate::stream::{Stream, StreamId, StreamSlot, TickCount, STREAM_FIELDS_BYTES};

fn stream(payer: u32, slot: u16, payee: u32) -> Stream {
    Stream {
        id: StreamId {
            payer: AccountIndex(payer),
            slot: StreamSlot(slot),
            opened_at: nonce(1),
        },
        payee: AccountIndex(payee),
        price: amt(3),
        max_ticks: TickCount::new(50).unwrap(),
        expiry: Timestamp::new(NOW + 600).unwrap(),
        settled: TickCount::new(4).unwrap(),
        head: Digest([F::from_canonical_u64(9); 4]),
    }
}

/// Ten accounts before. Account 1 opened a stream in slot 3 to account 10, which the batch
/// created, and emptied slot 5; agent 7 (of owner 2) spent and used lanes 1 and 3; account 8
/// registered shares paying 2 and 10; account 4 only paid.
fn sample_v4() -> StateDiff {
    let policy_digest = crate::hash::hash_no_pad(&[F::from_canonical_u64(20)]);
    let passport = PassportRecord {
        agent: AccountIndex(7),
        owner: AccountIndex(2),
        revoked: false,
        window_id: 3,
        spent: amt(40),
        policy_digest,
        policy: None,
    };
    let lanes = LanesRecord {
        account: AccountIndex(7),
        lanes: LaneNonces::from_seqs([4, 0, 1, 0, 0, 0, 0]).unwrap(),
    };
    let shares = SharesRecord(
        Shares::new(
            AccountIndex(8),
            vec![(AccountIndex(2), 2_500), (AccountIndex(10), 7_500)],
        )
        .unwrap(),
    );
    StateDiff::with_streams(
        10,
        vec![
            rec(1, 500, 2, None),
            rec(4, 9, 1, None),
            rec(7, 60, 2, None),
            rec(8, 0, 1, None),
            rec(10, 5, 0, Some(key(3).public_key())),
        ],
        vec![
            StreamRecord {
                payer: AccountIndex(1),
                slot: StreamSlot(3),
                stream: Some(stream(1, 3, 10)),
            },
            StreamRecord {
                payer: AccountIndex(1),
                slot: StreamSlot(5),
                stream: None,
            },
        ],
    )
    .unwrap()
    .with_agents(vec![passport], vec![lanes], vec![shares])
    .unwrap()
}

/// Where each group of [`sample_v4`]'s version 4 encoding starts.
const G1: usize = HEADER_BYTES;
const G1_STREAMS: usize = G1 + RECORD_BYTES + 1;
const G4: usize = G1_STREAMS + 3 + STREAM_FIELDS_BYTES + 3;
const G7: usize = G4 + RECORD_BYTES + 1;
/// Group 7's parts: its lanes record, then its passport record.
const G7_LANES: usize = G7 + RECORD_BYTES + 1;
const G7_PASSPORT: usize = G7_LANES + LANES_RECORD_BYTES;

#[test]
fn version_4_puts_each_accounts_parts_after_its_record() {
    let d = sample_v4();
    let b = d.encode_grouped();
    assert_eq!(b[0], DIFF_VERSION_GROUPED);
    assert_eq!(&b[1..9], &10u64.to_le_bytes(), "count_before");
    assert_eq!(
        &b[9..13],
        &5u32.to_le_bytes(),
        "one group per account record"
    );
    assert_eq!(&b[G1..G1 + 4], &1u32.to_le_bytes());
    assert_eq!(
        b[G1 + RECORD_BYTES],
        PART_STREAMS,
        "account 1: streams only"
    );
    assert_eq!(
        &b[G1_STREAMS..G1_STREAMS + 2],
        &3u16.to_le_bytes(),
        "slot 3"
    );
    assert_eq!(
        b[G1_STREAMS + 2],
        1 | STREAM_MORE,
        "open, and another follows"
    );
    let second = G1_STREAMS + 3 + STREAM_FIELDS_BYTES;
    assert_eq!(
        &b[second..second + 3],
        &[5, 0, 0],
        "slot 5 emptied, the last"
    );
    assert_eq!(&b[G4..G4 + 4], &4u32.to_le_bytes());
    assert_eq!(b[G4 + RECORD_BYTES], 0, "account 4: no parts");
    assert_eq!(b[G7 + RECORD_BYTES], PART_PASSPORT | PART_LANES);
    assert_eq!(
        &b[G7_PASSPORT..G7_PASSPORT + 4],
        &7u32.to_le_bytes(),
        "agent"
    );
    let g8 = G7_PASSPORT + PASSPORT_RECORD_BYTES;
    assert_eq!(&b[g8..g8 + 4], &8u32.to_le_bytes());
    assert_eq!(b[g8 + RECORD_BYTES], PART_SHARES);
    let g10 = g8 + RECORD_BYTES + 1 + SHARES_RECORD_BYTES + 2 * 6;
    assert_eq!(&b[g10..g10 + 4], &10u32.to_le_bytes());
    assert_eq!(
        b.len(),
        g10 + NEW_RECORD_BYTES + 1,
        "the new account's group ends it"
    );
    // Same content as version 3 (four payer bytes fewer per stream record, a parts byte more
    // per account).
    assert_eq!(d.version(), DIFF_VERSION_AGENTS);
    assert_eq!(b.len(), d.encode().len() - 2 * 4 + 5 - 4 * 4);
    assert_eq!(StateDiff::decode(&b), Ok(d.clone()));
    assert_eq!(StateDiff::decode(&d.encode()), Ok(d));
    // A diff without parts is valid in version 4 too.
    let plain = sample();
    assert_eq!(StateDiff::decode(&plain.encode_grouped()), Ok(plain));
}

/// The profile parts come before the stream records in a group (an agent that also streams).
#[test]
fn version_4_puts_profile_parts_before_stream_records() {
    let d = sample_v4();
    let mut streams = d.streams().to_vec();
    streams.push(StreamRecord {
        payer: AccountIndex(7),
        slot: StreamSlot(2),
        stream: Some(stream(7, 2, 10)),
    });
    let with = StateDiff::with_streams(d.count_before(), d.records().to_vec(), streams)
        .unwrap()
        .with_agents(
            d.passports().to_vec(),
            d.lanes().to_vec(),
            d.shares().to_vec(),
        )
        .unwrap();
    let b = with.encode_grouped();
    assert_eq!(
        b[G7 + RECORD_BYTES],
        PART_STREAMS | PART_PASSPORT | PART_LANES
    );
    assert_eq!(
        &b[G7_LANES..G7_LANES + 4],
        &7u32.to_le_bytes(),
        "lanes first"
    );
    let stream_at = G7_PASSPORT + PASSPORT_RECORD_BYTES;
    assert_eq!(
        &b[stream_at..stream_at + 3],
        &[2, 0, 1],
        "then slot 2, open, the last"
    );
    assert_eq!(StateDiff::decode(&b), Ok(with));
}

#[test]
fn version_4_decoding_refuses_what_grouping_adds() {
    let blob = sample_v4().encode_grouped();
    let patched = |offset: usize, bytes: &[u8]| {
        let mut b = blob.clone();
        b[offset..offset + bytes.len()].copy_from_slice(bytes);
        StateDiff::decode(&b).map(|_| ()).map_err(|e| e.code())
    };
    assert_eq!(patched(G1 + RECORD_BYTES, &[16 | 1]), Err("BAD_PARTS"));
    assert_eq!(patched(G4 + RECORD_BYTES, &[0x80]), Err("BAD_PARTS"));
    assert_eq!(
        patched(G1_STREAMS + 2, &[4 | 1 | 2]),
        Err("BAD_STREAM"),
        "tag bit 2"
    );
    // Slot 3 then slot 3 again, or then slot 2: not strictly increasing.
    let second = G1_STREAMS + 3 + STREAM_FIELDS_BYTES;
    assert_eq!(
        patched(second, &3u16.to_le_bytes()),
        Err("STREAMS_UNSORTED")
    );
    assert_eq!(
        patched(second, &2u16.to_le_bytes()),
        Err("STREAMS_UNSORTED")
    );
    // The stream is to account 10, created in this batch; 11 does not exist after it either.
    assert_eq!(
        patched(G1_STREAMS + 3, &11u32.to_le_bytes()),
        Err("BAD_STREAM"),
        "payee beyond the accounts after the batch"
    );
    assert_eq!(
        patched(G1_STREAMS + 3, &1u32.to_le_bytes()),
        Err("BAD_STREAM"),
        "payee = payer"
    );
    // Parts of another account inside a group.
    assert_eq!(patched(G7_PASSPORT, &8u32.to_le_bytes()), Err("BAD_AGENT"));
    assert_eq!(patched(G7_LANES, &8u32.to_le_bytes()), Err("BAD_LANES"));
    let shares = G7_PASSPORT + PASSPORT_RECORD_BYTES + RECORD_BYTES + 1;
    assert_eq!(patched(shares, &7u32.to_le_bytes()), Err("BAD_SHARES"));
    // An owner or a share's payee that does not exist after the batch.
    assert_eq!(
        patched(G7_PASSPORT + 4, &11u32.to_le_bytes()),
        Err("BAD_AGENT")
    );
    assert_eq!(
        patched(shares + 6 + 6, &11u32.to_le_bytes()),
        Err("BAD_SHARES")
    );
    // A "more" bit on the last stream record reads the next group's record as a stream.
    assert!(patched(second + 2, &[STREAM_MORE]).is_err());
    // A parts bit without its record: the next group is misread, or the bytes end.
    assert!(patched(G4 + RECORD_BYTES, &[PART_LANES]).is_err());
    for cut in [G1_STREAMS + 1, G7_PASSPORT + 10, blob.len() - 1] {
        assert_eq!(
            StateDiff::decode(&blob[..cut]).map_err(|e| e.code()),
            Err("TRUNCATED"),
            "cut at {cut}"
        );
    }
}
