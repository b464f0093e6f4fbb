//! Known-answer vectors of the agent primitives (SPEC sections 18 and 19):
//! `docs/vectors/agents-v1.json`. Every hash is recomputed here from its listed input elements
//! with plain `hash_no_pad`/`two_to_one`, independently of the functions that produce them.

use std::path::PathBuf;

use plonky2::field::types::Field;
use serde_json::{json, Value};
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::hash::{hash_no_pad, two_to_one, Digest, F};
use state::smt::empty_hashes;
use state::split::{Shares, BPS_WHOLE, TAG_SHARES};
use state::stream::chain::{step, TAG_TICK};
use state::stream::tree::{ext_digest, root_from_path};
use state::stream::{PayerStreams, Stream, StreamId, StreamSlot, TickChain, TickCount, SLOT_DEPTH};

use state::pubdata::PubdataOp;
use state::stream::rules::{Close, Open, Settle};
use state::tx::{SettleBody, Transaction, TxKind, Unsigned};

use super::{
    canonical, compare_with_committed, digest, domain, elements, f, secret_key, tx_entry, Step,
};

mod passports;
mod tick_tree;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/agents-v1.json")
}

fn stream_id() -> StreamId {
    StreamId {
        payer: AccountIndex(7),
        slot: StreamSlot(3),
        opened_at: Nonce::new(12).unwrap(),
    }
}

fn tick_section() -> Value {
    let id = stream_id();
    let n = 5u32;
    let seed = hash_no_pad(&[f(1), f(2), f(3), f(4)]);
    let mut chain = TickChain::new(id, TickCount::new(n).unwrap(), seed);
    let mut steps = Vec::new();
    // t_k for k = 5..1, each with the eight elements hashed into t_{k-1}.
    let mut prev = seed;
    for k in (1..=n).rev() {
        assert_eq!(chain.tick(k).unwrap().value, prev, "tick {k}");
        let x = prev.elements();
        let inputs = [
            F::from_canonical_u64((7u64 << 16) | 3),
            f(12),
            f(u64::from(k)),
            f(u64::from(TAG_TICK)),
            x[0],
            x[1],
            x[2],
            x[3],
        ];
        let out = hash_no_pad(&inputs);
        assert_eq!(out, step(&id, k, prev), "step {k}: the spec's element list");
        steps.push(json!({"k": k, "t_k": digest(prev), "inputs": elements(&inputs), "t_k_minus_1": digest(out)}));
        prev = out;
    }
    assert_eq!(prev, chain.anchor());
    json!({
        "stream": {"payer": 7, "slot": 3, "opened_at": 12},
        "max_ticks": n,
        "seed": digest(seed),
        "anchor": digest(chain.anchor()),
        "steps": steps,
    })
}

fn stream(slot: u16, settled: u32, head: Digest) -> Stream {
    Stream {
        id: StreamId {
            slot: StreamSlot(slot),
            ..stream_id()
        },
        payee: AccountIndex(9),
        price: Amount::new(250).unwrap(),
        max_ticks: TickCount::new(1000).unwrap(),
        expiry: Timestamp::new(1_700_003_600).unwrap(),
        settled: TickCount::new(settled).unwrap(),
        head,
    }
}

fn tree_section() -> Value {
    let a = stream(3, 0, hash_no_pad(&[f(5)]));
    let b = stream(8, 40, hash_no_pad(&[f(6)]));
    let leaf_inputs = |s: &Stream| {
        let h = s.head.elements();
        vec![
            f(u64::from(s.payee.0)),
            f(s.price.get()),
            f(u64::from(s.max_ticks.get())),
            f(s.expiry.get()),
            f(s.id.opened_at.get()),
            f(u64::from(s.settled.get())),
            h[0],
            h[1],
            h[2],
            h[3],
        ]
    };
    let mut book = PayerStreams::default();
    book.put(a);
    book.put(b);
    // The root by hand: slots 3 and 8 are siblings at level 3 (3 >> 3 = 0, 8 >> 3 = 1).
    let e = empty_hashes();
    let mut left = hash_no_pad(&leaf_inputs(&a));
    let mut right = hash_no_pad(&leaf_inputs(&b));
    let (mut pa, mut pb) = (3u32, 8u32);
    for &sib in &e[..3] {
        left = if pa & 1 == 0 {
            two_to_one(left, sib)
        } else {
            two_to_one(sib, left)
        };
        right = if pb & 1 == 0 {
            two_to_one(right, sib)
        } else {
            two_to_one(sib, right)
        };
        pa >>= 1;
        pb >>= 1;
    }
    let mut root = two_to_one(left, right);
    for level in &e[4..SLOT_DEPTH] {
        root = two_to_one(root, *level);
    }
    assert_eq!(book.root(), root, "the stream root by hand");
    let path8 = book.path(StreamSlot(8));
    assert_eq!(root_from_path(StreamSlot(8), b.leaf_hash(), &path8), root);
    let r = root.elements();
    let ext = hash_no_pad(&[r[0], r[1], r[2], r[3], F::ZERO, F::ZERO, F::ZERO, F::ZERO]);
    assert_eq!(book.ext(), ext);
    assert_eq!(ext_digest(e[SLOT_DEPTH], Digest::ZERO), Digest::ZERO);
    json!({
        "streams": [
            {"slot": 3, "leaf_inputs": elements(&leaf_inputs(&a)), "leaf": digest(a.leaf_hash()), "escrow": a.escrow().get()},
            {"slot": 8, "leaf_inputs": elements(&leaf_inputs(&b)), "leaf": digest(b.leaf_hash()), "escrow": b.escrow().get()},
        ],
        "empty_root": digest(e[SLOT_DEPTH]),
        "root": digest(root),
        "path_of_slot_8": path8.iter().map(|d| digest(*d)).collect::<Vec<_>>(),
        "ext": digest(ext),
    })
}

fn shares_section() -> Value {
    let parts = vec![
        (AccountIndex(4), 5000u16),
        (AccountIndex(11), 3333),
        (AccountIndex(12), 1667),
    ];
    let shares = Shares::new(AccountIndex(2), parts.clone()).unwrap();
    let (chain, steps) = shares_chain_by_hand(&parts);
    let mut inputs = vec![f(TAG_SHARES), f(3)];
    inputs.extend(chain.elements());
    assert_eq!(shares.digest(), hash_no_pad(&inputs));
    let splits: Vec<Value> = [1u64, 7, 100, 1_000_003]
        .iter()
        .map(|&total| {
            let out = shares.split(Amount::new(total).unwrap());
            // By the rule: payees after the first floor, the first the rest.
            let tail: Vec<u64> = parts[1..]
                .iter()
                .map(|&(_, bps)| total * u64::from(bps) / u64::from(BPS_WHOLE))
                .collect();
            let first = total - tail.iter().sum::<u64>();
            let want: Vec<u64> = std::iter::once(first).chain(tail).collect();
            let got: Vec<u64> = out.iter().map(|p| p.amount.get()).collect();
            assert_eq!(got, want, "split of {total}");
            json!({"total": total, "amounts": got})
        })
        .collect();
    json!({
        "owner": 2,
        "parts": parts.iter().map(|&(to, bps)| json!({"to": to.0, "bps": bps})).collect::<Vec<_>>(),
        "chain_steps": steps.iter().map(|d| digest(*d)).collect::<Vec<_>>(),
        "profile_inputs": elements(&inputs),
        "profile": digest(shares.digest()),
        "splits": splits,
    })
}

/// The shares' chained digest of SPEC 19.2 written out (`s_i = hash_no_pad(s_{i-1} ‖ payee_i ‖
/// bps_i)` from `ZERO`), and every step's value.
fn shares_chain_by_hand(parts: &[(AccountIndex, u16)]) -> (Digest, Vec<Digest>) {
    let mut s = Digest::ZERO;
    let mut steps = Vec::new();
    for &(to, bps) in parts {
        let e = s.elements();
        s = hash_no_pad(&[
            e[0],
            e[1],
            e[2],
            e[3],
            f(u64::from(to.0)),
            f(u64::from(bps)),
        ]);
        steps.push(s);
    }
    (s, steps)
}

/// One signed transaction of each stream kind (SPEC 18.5): alice (account 1) opens slot 0 to
/// bob (account 2), bob settles ticks 1 to 3 and then closes. Each entry lists the hashed
/// elements, which are checked here against the SPEC's field order written out by hand.
fn transactions_section() -> Value {
    let d = domain();
    let (alice, bob) = (AccountIndex(1), AccountIndex(2));
    let amount = |v| Amount::new(v).unwrap();
    let id = StreamId {
        payer: alice,
        slot: StreamSlot(0),
        opened_at: Nonce::new(4).unwrap(),
    };
    let max = TickCount::new(1000).unwrap();
    let mut chain = TickChain::new(id, max, Digest([f(11), f(22), f(33), f(44)]));
    let open = Unsigned {
        body: Open {
            payer: alice,
            payee: bob,
            slot: id.slot,
            price: amount(250),
            max_ticks: max,
            expiry: Timestamp::new(1_700_003_600).unwrap(),
            anchor: chain.anchor(),
        },
        fee: amount(1),
        nonce: id.opened_at,
        valid_until: Timestamp::new(1_700_000_600).unwrap(),
    };
    let t3 = chain.tick(3).unwrap().value;
    let settle = Unsigned {
        body: SettleBody {
            payee: bob,
            terms: Settle {
                payer: alice,
                slot: id.slot,
                from: TickCount::ZERO,
                to: TickCount::new(3).unwrap(),
                value: t3,
            },
        },
        fee: amount(1),
        nonce: Nonce::new(0).unwrap(),
        valid_until: Timestamp::new(1_700_000_600).unwrap(),
    };
    let close = Unsigned {
        body: Close {
            payer: alice,
            slot: id.slot,
            signer: bob,
        },
        fee: amount(0),
        nonce: Nonce::new(1).unwrap(),
        valid_until: Timestamp::new(1_700_000_600).unwrap(),
    };
    let a = open.body.anchor.elements();
    let by_hand_open = [
        f(7),
        f(1),
        f(2),
        f(0),
        f(250),
        f(1000),
        f(1_700_003_600),
        a[0],
        a[1],
        a[2],
        a[3],
        f(1),
        f(4),
        f(1_700_000_600),
    ];
    let v = t3.elements();
    let by_hand_settle = [
        f(8),
        f(2),
        f(1),
        f(0),
        f(0),
        f(3),
        v[0],
        v[1],
        v[2],
        v[3],
        f(1),
        f(0),
        f(1_700_000_600),
    ];
    let by_hand_close = [f(9), f(2), f(1), f(0), f(0), f(1), f(1_700_000_600)];
    let txs: [(Transaction, &'static str, &[F]); 3] = [
        (
            open.sign(&d, &secret_key("alice")).into(),
            "alice",
            &by_hand_open,
        ),
        (
            settle.sign(&d, &secret_key("bob")).into(),
            "bob",
            &by_hand_settle,
        ),
        (
            close.sign(&d, &secret_key("bob")).into(),
            "bob",
            &by_hand_close,
        ),
    ];
    let mut entries = Vec::new();
    for (tx, signer, by_hand) in txs {
        assert_eq!(tx.to_field_elements(&d), by_hand, "{} elements", tx.kind());
        assert_eq!(tx.encode().len(), tx.kind().encoded_len());
        assert!(
            !tx.kind().is_enabled(),
            "defined, not yet accepted by a node"
        );
        let key = secret_key(signer).public_key();
        assert!(
            tx.verify_signature(&d, &key).is_ok(),
            "{} signature",
            tx.kind()
        );
        let mut entry = tx_entry(
            &Step {
                label: tx.kind().name(),
                tx: tx.clone(),
                signer: Some(signer),
            },
            None,
        );
        // The op an accepted one publishes (SPEC 18.6): the tag, the body and the fee.
        let op = match tx {
            Transaction::StreamOpen(t) => PubdataOp::StreamOpen {
                body: t.body,
                fee: t.fee,
            },
            Transaction::StreamSettle(t) => PubdataOp::StreamSettle {
                body: t.body,
                fee: t.fee,
            },
            Transaction::StreamClose(t) => PubdataOp::StreamClose {
                body: t.body,
                fee: t.fee,
            },
            _ => unreachable!("stream kinds only"),
        };
        let wire = tx.encode();
        let op_bytes = op.to_bytes();
        let body_end = op_bytes.len() - 8;
        assert_eq!(
            op_bytes[..body_end],
            wire[..body_end],
            "op = tag and body of the wire"
        );
        assert_eq!(
            PubdataOp::decode_prefix(&op_bytes),
            Ok((op.clone(), op_bytes.len()))
        );
        entry["pubdata"] = super::op_entry(&op);
        entries.push(entry);
    }
    let lengths = [
        TxKind::StreamOpen,
        TxKind::StreamSettle,
        TxKind::StreamClose,
    ]
    .map(|k| json!({"kind": k.name(), "tag": k.tag(), "length": k.encoded_len()}));
    json!({
        "transactions": entries,
        "lengths": lengths,
        "decode_rejections": decode_rejections(&txs_wire(&entries)),
    })
}

fn txs_wire(entries: &[Value]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .map(|e| hex::decode(e["wire"].as_str().unwrap().trim_start_matches("0x")).unwrap())
        .collect()
}

/// The stream kinds' own decode refusals, each on a mutation of a listed encoding.
fn decode_rejections(wire: &[Vec<u8>]) -> Value {
    let (open, settle) = (&wire[0], &wire[1]);
    let with = |base: &[u8], at: usize, bytes: &[u8]| -> Vec<u8> {
        let mut v = base.to_vec();
        v[at..at + bytes.len()].copy_from_slice(bytes);
        v
    };
    // Offsets after the tag: open = payer 1, payee 5, slot 9, price 11, max_ticks 19, expiry 23,
    // anchor 31; settle = payee 1, payer 5, slot 9, from 11, to 15, t_to 19.
    let p = state::hash::P.to_le_bytes();
    let cases = [
        (
            "anchor element 0 equal to p",
            with(open, 31, &p),
            "NON_CANONICAL_DIGEST",
        ),
        (
            "t_to element 3 equal to p",
            with(settle, 19 + 24, &p),
            "NON_CANONICAL_DIGEST",
        ),
        (
            "max_ticks = 2^24 + 1",
            with(open, 19, &((1u32 << 24) + 1).to_le_bytes()),
            "OUT_OF_RANGE",
        ),
        (
            "to = 2^24 + 1",
            with(settle, 15, &((1u32 << 24) + 1).to_le_bytes()),
            "OUT_OF_RANGE",
        ),
        (
            "price = 2^63",
            with(open, 11, &(1u64 << 63).to_le_bytes()),
            "OUT_OF_RANGE",
        ),
        (
            "open truncated by one byte",
            open[..open.len() - 1].to_vec(),
            "WRONG_LENGTH",
        ),
    ];
    let out: Vec<Value> = cases
        .into_iter()
        .map(|(what, bytes, code)| {
            let got = Transaction::decode(&bytes)
                .map(|_| ())
                .map_err(|e| e.code());
            assert_eq!(got, Err(code), "{what}");
            json!({"what": what, "bytes": super::hx(&bytes), "error": code})
        })
        .collect();
    Value::Array(out)
}

/// A version 2 state diff (SPEC 10.4): ten accounts before, payer 7's record, and its slots
/// 3 (open), 5 (closed) and 8 (open). The bytes are written out field by field here.
fn diff_section() -> Value {
    use state::diff::{AccountRecord, StateDiff, StreamRecord};
    let a = stream(3, 0, hash_no_pad(&[f(5)]));
    let b = stream(8, 40, hash_no_pad(&[f(6)]));
    let account = AccountRecord {
        index: AccountIndex(7),
        balance: Amount::new(1_234).unwrap(),
        nonce: Nonce::new(13).unwrap(),
        pubkey: None,
    };
    let record = |slot: u16, s: Option<Stream>| StreamRecord {
        payer: AccountIndex(7),
        slot: StreamSlot(slot),
        stream: s,
    };
    let diff = StateDiff::with_streams(
        10,
        vec![account],
        vec![record(3, Some(a)), record(5, None), record(8, Some(b))],
    )
    .unwrap();
    let open = |slot: u16, s: &Stream| {
        [
            &7u32.to_le_bytes()[..],
            &slot.to_le_bytes(),
            &[1],
            &9u32.to_le_bytes(),
            &250u64.to_le_bytes(),
            &1000u32.to_le_bytes(),
            &1_700_003_600u64.to_le_bytes(),
            &12u64.to_le_bytes(),
            &s.settled.get().to_le_bytes(),
            &s.head.to_bytes(),
        ]
        .concat()
    };
    let by_hand = [
        &[2u8][..],
        &10u64.to_le_bytes(),
        &1u32.to_le_bytes(),
        &7u32.to_le_bytes(),
        &1_234u64.to_le_bytes(),
        &13u64.to_le_bytes(),
        &3u32.to_le_bytes(),
        &open(3, &a),
        &[&7u32.to_le_bytes()[..], &5u16.to_le_bytes(), &[0]].concat(),
        &open(8, &b),
    ]
    .concat();
    let bytes = diff.encode();
    assert_eq!(bytes, by_hand, "the encoding, field by field");
    assert_eq!(StateDiff::decode(&bytes), Ok(diff));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    json!({
        "count_before": 10,
        "accounts": [{"index": 7, "balance": 1234, "nonce": 13}],
        "streams": [
            {"payer": 7, "slot": 3, "open": true, "settled": 0, "head": digest(a.head)},
            {"payer": 7, "slot": 5, "open": false},
            {"payer": 7, "slot": 8, "open": true, "settled": 40, "head": digest(b.head)},
        ],
        "bytes": hex,
        "length": bytes.len(),
    })
}

/// A version 3 diff (SPEC 10.4): accounts 7 and 8 changed; 7 is an agent of 2 whose passport
/// moved (its policy set earlier, so only the digest travels) and that used lanes 1 and 3; 8
/// registered revenue shares. The stream section is empty. Written out field by field.
/// The account and agent records of the version 3 and 4 vectors: accounts 7 and 8 changed; 7
/// is an agent of 2 whose passport moved and that used lanes 1 and 3; 8 registered shares.
struct AgentRecords {
    accounts: Vec<state::diff::AccountRecord>,
    passport: state::diff::PassportRecord,
    lanes: state::diff::LanesRecord,
    shares: state::diff::SharesRecord,
}

fn agent_records() -> AgentRecords {
    use state::diff::{AccountRecord, LanesRecord, PassportRecord, SharesRecord};
    use state::lanes::LaneNonces;
    let record = |index: u32, balance: u64, nonce: u64| AccountRecord {
        index: AccountIndex(index),
        balance: Amount::new(balance).unwrap(),
        nonce: Nonce::new(nonce).unwrap(),
        pubkey: None,
    };
    let parts = vec![(AccountIndex(2), 2_500), (AccountIndex(9), 7_500)];
    AgentRecords {
        accounts: vec![record(7, 60, 2), record(8, 0, 1)],
        passport: PassportRecord {
            agent: AccountIndex(7),
            owner: AccountIndex(2),
            revoked: false,
            window_id: 3,
            spent: Amount::new(40).unwrap(),
            policy_digest: hash_no_pad(&[f(20), f(5)]),
            policy: None,
        },
        lanes: LanesRecord {
            account: AccountIndex(7),
            lanes: LaneNonces::from_seqs([4, 0, 1, 0, 0, 0, 0]).unwrap(),
        },
        shares: SharesRecord(Shares::new(AccountIndex(8), parts).unwrap()),
    }
}

/// The passport, lanes and shares records of [`agent_records`], written out field by field.
fn agent_record_bytes(policy_digest: Digest) -> [Vec<u8>; 3] {
    [
        // Passport: agent, owner, revoked, window, spent, policy digest, no policy.
        [
            &7u32.to_le_bytes()[..],
            &2u32.to_le_bytes(),
            &[0],
            &3u64.to_le_bytes(),
            &40u64.to_le_bytes(),
            &policy_digest.to_bytes(),
            &[0],
        ]
        .concat(),
        // Lanes: account, s_1 .. s_7.
        [
            &7u32.to_le_bytes()[..],
            &[4u64, 0, 1, 0, 0, 0, 0].map(u64::to_le_bytes).concat(),
        ]
        .concat(),
        // Shares: account, n, (payee, bps) x n.
        [
            &8u32.to_le_bytes()[..],
            &2u16.to_le_bytes(),
            &2u32.to_le_bytes(),
            &2_500u16.to_le_bytes(),
            &9u32.to_le_bytes(),
            &7_500u16.to_le_bytes(),
        ]
        .concat(),
    ]
}

fn diff_v3_section() -> Value {
    use state::diff::StateDiff;
    let AgentRecords {
        accounts,
        passport,
        lanes,
        shares,
    } = agent_records();
    let policy_digest = passport.policy_digest;
    let diff = StateDiff::with_streams(10, accounts, vec![])
        .unwrap()
        .with_agents(vec![passport.clone()], vec![lanes], vec![shares])
        .unwrap();
    let [passport_bytes, lanes_bytes, shares_bytes] = agent_record_bytes(policy_digest);
    let by_hand = [
        &[3u8][..],
        &10u64.to_le_bytes(),
        &2u32.to_le_bytes(),
        &[
            &7u32.to_le_bytes()[..],
            &60u64.to_le_bytes(),
            &2u64.to_le_bytes(),
        ]
        .concat(),
        &[
            &8u32.to_le_bytes()[..],
            &0u64.to_le_bytes(),
            &1u64.to_le_bytes(),
        ]
        .concat(),
        &0u32.to_le_bytes(),
        &1u32.to_le_bytes(),
        &passport_bytes,
        &1u32.to_le_bytes(),
        &lanes_bytes,
        &1u32.to_le_bytes(),
        &shares_bytes,
    ]
    .concat();
    let bytes = diff.encode();
    assert_eq!(bytes, by_hand, "the encoding, field by field");
    assert_eq!(StateDiff::decode(&bytes), Ok(diff));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    json!({
        "count_before": 10,
        "accounts": [
            {"index": 7, "balance": 60, "nonce": 2},
            {"index": 8, "balance": 0, "nonce": 1},
        ],
        "passports": [{
            "agent": 7, "owner": 2, "revoked": false, "window_id": 3, "spent": 40,
            "policy_digest": digest(policy_digest), "passport_digest": digest(passport.digest()),
        }],
        "lanes": [{"account": 7, "seqs": [4, 0, 1, 0, 0, 0, 0]}],
        "shares": [{"account": 8, "parts": [[2, 2500], [9, 7500]]}],
        "bytes": hex,
        "length": bytes.len(),
    })
}

/// A version 4 diff (SPEC 10.4, "Version 4"): the content of the version 3 vector plus the
/// stream records of the version 2 vector (payer 7: slot 3 open, slot 5 emptied), grouped by
/// account. Written out field by field.
fn diff_v4_section() -> Value {
    use state::diff::{StateDiff, StreamRecord};
    let AgentRecords {
        accounts,
        passport,
        lanes,
        shares,
    } = agent_records();
    let policy_digest = passport.policy_digest;
    let a = stream(3, 0, hash_no_pad(&[f(5)]));
    let streams = vec![
        StreamRecord {
            payer: AccountIndex(7),
            slot: StreamSlot(3),
            stream: Some(a),
        },
        StreamRecord {
            payer: AccountIndex(7),
            slot: StreamSlot(5),
            stream: None,
        },
    ];
    let diff = StateDiff::with_streams(10, accounts, streams)
        .unwrap()
        .with_agents(vec![passport], vec![lanes], vec![shares])
        .unwrap();
    let [passport_bytes, lanes_bytes, shares_bytes] = agent_record_bytes(policy_digest);
    let mut fields = Vec::new();
    a.write_fields(&mut fields);
    let by_hand = [
        &[4u8][..],
        &10u64.to_le_bytes(),
        &2u32.to_le_bytes(),
        // Account 7, then its parts: lanes, passport, then streams (bits 2, 1, 0).
        &7u32.to_le_bytes(),
        &60u64.to_le_bytes(),
        &2u64.to_le_bytes(),
        &[0b0111],
        &lanes_bytes,
        &passport_bytes,
        // Slot 3: open (bit 0), another record follows (bit 1); then its 68 bytes of fields
        // as in version 2.
        &3u16.to_le_bytes(),
        &[0b11],
        &[
            &9u32.to_le_bytes()[..],
            &250u64.to_le_bytes(),
            &1000u32.to_le_bytes(),
            &1_700_003_600u64.to_le_bytes(),
            &12u64.to_le_bytes(),
            &0u32.to_le_bytes(),
            &a.head.to_bytes(),
        ]
        .concat(),
        // Slot 5: emptied, the last.
        &5u16.to_le_bytes(),
        &[0],
        // Account 8 and its shares (bit 3).
        &8u32.to_le_bytes(),
        &0u64.to_le_bytes(),
        &1u64.to_le_bytes(),
        &[0b1000],
        &shares_bytes,
    ]
    .concat();
    assert_eq!(fields.len(), 68);
    let bytes = diff.encode_grouped();
    assert_eq!(bytes, by_hand, "the encoding, field by field");
    assert_eq!(StateDiff::decode(&bytes), Ok(diff));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    json!({
        "count_before": 10,
        "groups": [
            {"index": 7, "balance": 60, "nonce": 2, "parts": 7,
             "streams": [
                {"slot": 3, "open": true, "settled": 0, "head": digest(a.head)},
                {"slot": 5, "open": false},
             ],
             "passport": {"owner": 2, "window_id": 3, "spent": 40},
             "lanes": [4, 0, 1, 0, 0, 0, 0]},
            {"index": 8, "balance": 0, "nonce": 1, "parts": 8,
             "shares": [[2, 2500], [9, 7500]]},
        ],
        "bytes": hex,
        "length": bytes.len(),
    })
}

/// A signed split (SPEC 19.4): bob (account 2) pays accounts 1, 3 and 4 at once. The entry
/// lists the hashed elements (checked against the SPEC's order written out by hand), the wire
/// bytes, the op and the decoder's own refusals.
fn split_section() -> Value {
    use state::split::Payout;
    use state::tx::UnsignedSplit;
    let d = domain();
    let n = |v| Amount::new(v).unwrap();
    let parts = [(1u32, 250u64), (3, 1_000), (4, 7)].map(|(to, a)| Payout {
        to: AccountIndex(to),
        amount: n(a),
    });
    let unsigned = UnsignedSplit {
        from: AccountIndex(2),
        parts: parts.to_vec(),
        fee: n(2),
        nonce: Nonce::new(5).unwrap(),
        valid_until: Timestamp::new(1_700_000_600).unwrap(),
    };
    // The parts' chained digest, step by step (SPEC 19.4).
    let mut chain = Vec::new();
    let mut acc = Digest::ZERO;
    for (to, amount) in [(1u64, 250u64), (3, 1_000), (4, 7)] {
        let e = acc.elements();
        let inputs = [e[0], e[1], e[2], e[3], f(to), f(amount)];
        acc = hash_no_pad(&inputs);
        chain.push(json!({"inputs": elements(&inputs), "digest": digest(acc)}));
    }
    assert_eq!(acc, state::split::parts_digest(&parts));
    let e = acc.elements();
    let by_hand = [
        F::from_canonical_u8(TxKind::Split.tag()),
        f(2),
        f(3),
        e[0],
        e[1],
        e[2],
        e[3],
        f(2),
        f(5),
        f(1_700_000_600),
    ];
    let tx: Transaction = unsigned.sign(&d, &secret_key("bob")).into();
    assert_eq!(tx.to_field_elements(&d), by_hand);
    assert!(
        tx.kind().is_enabled(),
        "proven by the split-credit chain, accepted by a node"
    );
    assert!(tx
        .verify_signature(&d, &secret_key("bob").public_key())
        .is_ok());
    let mut entry = tx_entry(
        &Step {
            label: tx.kind().name(),
            tx: tx.clone(),
            signer: Some("bob"),
        },
        None,
    );
    let wire = tx.encode();
    assert_eq!(wire.len(), 103 + 12 * 3);
    let op = PubdataOp::Split {
        from: AccountIndex(2),
        parts: parts.to_vec(),
        fee: n(2),
    };
    let op_bytes = op.to_bytes();
    assert_eq!(op_bytes.len(), 15 + 12 * 3);
    assert_eq!(
        op_bytes[..op_bytes.len() - 8],
        wire[..op_bytes.len() - 8],
        "op = tag, from, n and parts of the wire"
    );
    assert_eq!(
        PubdataOp::decode_prefix(&op_bytes),
        Ok((op.clone(), op_bytes.len()))
    );
    entry["pubdata"] = super::op_entry(&op);
    // Offsets: from 1, n 5, parts from 7 (to, amount) x n.
    let with = |at: usize, bytes: &[u8]| -> Vec<u8> {
        let mut v = wire.clone();
        v[at..at + bytes.len()].copy_from_slice(bytes);
        v
    };
    let cases = [
        (
            "n = 1025",
            with(5, &1025u16.to_le_bytes()),
            "TOO_MANY_PAYEES",
        ),
        (
            "n = 4 with three parts",
            with(5, &4u16.to_le_bytes()),
            "WRONG_LENGTH",
        ),
        (
            "the second amount = 2^63",
            with(7 + 12 + 4, &(1u64 << 63).to_le_bytes()),
            "OUT_OF_RANGE",
        ),
    ];
    let rejections: Vec<Value> = cases
        .into_iter()
        .map(|(what, bytes, code)| {
            let got = Transaction::decode(&bytes)
                .map(|_| ())
                .map_err(|e| e.code());
            assert_eq!(got, Err(code), "{what}");
            json!({"what": what, "bytes": super::hx(&bytes), "error": code})
        })
        .collect();
    json!({
        "parts_digest_chain": chain,
        "transaction": entry,
        "length": "103 + 12 n",
        "decode_rejections": rejections,
    })
}

/// One share registration (alice, account 1: 60% to bob 2, 40% to carol 3) and one distribute
/// of it signed by bob (SPEC 19.6), with their hashed elements written out by hand.
fn shares_transactions_section() -> Value {
    use state::tx::{DistributeBody, UnsignedRegisterShares};
    let d = domain();
    let n = |v| Amount::new(v).unwrap();
    let parts = vec![(AccountIndex(2), 6_000u16), (AccountIndex(3), 4_000)];
    let register: Transaction = UnsignedRegisterShares {
        account: AccountIndex(1),
        parts: parts.clone(),
        fee: n(1),
        nonce: Nonce::new(4).unwrap(),
        valid_until: Timestamp::new(1_700_000_600).unwrap(),
    }
    .sign(&d, &secret_key("alice"))
    .into();
    let (chain, _) = shares_chain_by_hand(&parts);
    let c = chain.elements();
    let digest_inputs = [f(TAG_SHARES), f(2), c[0], c[1], c[2], c[3]];
    let s = hash_no_pad(&digest_inputs).elements();
    let by_hand = [
        F::from_canonical_u8(TxKind::RegisterShares.tag()),
        f(1),
        f(2),
        s[0],
        s[1],
        s[2],
        s[3],
        f(1),
        f(4),
        f(1_700_000_600),
    ];
    assert_eq!(register.to_field_elements(&d), by_hand);
    assert_eq!(register.encode().len(), 103 + 6 * 2);
    let distribute: Transaction = Unsigned {
        body: DistributeBody {
            signer: AccountIndex(2),
            account: AccountIndex(1),
        },
        fee: n(2),
        nonce: Nonce::new(9).unwrap(),
        valid_until: Timestamp::new(1_700_000_600).unwrap(),
    }
    .sign(&d, &secret_key("bob"))
    .into();
    let by_hand = [
        F::from_canonical_u8(TxKind::Distribute.tag()),
        f(2),
        f(1),
        f(2),
        f(9),
        f(1_700_000_600),
    ];
    assert_eq!(distribute.to_field_elements(&d), by_hand);
    let entries: Vec<Value> = [(register, "alice"), (distribute, "bob")]
        .into_iter()
        .map(|(tx, signer)| {
            assert!(
                !tx.kind().is_enabled(),
                "defined, not yet accepted by a node"
            );
            let op = match &tx {
                Transaction::RegisterShares(t) => PubdataOp::RegisterShares {
                    account: t.account,
                    parts: t.parts.clone(),
                    fee: t.fee,
                },
                Transaction::Distribute(t) => PubdataOp::Distribute {
                    body: t.body,
                    fee: t.fee,
                },
                _ => unreachable!("two kinds above"),
            };
            assert_eq!(
                PubdataOp::decode_prefix(&op.to_bytes()),
                Ok((op.clone(), op.byte_len()))
            );
            let mut entry = tx_entry(
                &Step {
                    label: tx.kind().name(),
                    tx,
                    signer: Some(signer),
                },
                None,
            );
            entry["pubdata"] = super::op_entry(&op);
            // SPEC 10.2: a registration enters by its fixed bytes and the shares chain.
            entry["pubdata"]["commitment_of_this_op_alone"] =
                digest(state::pubdata::pubdata_commitment([&op]));
            entry
        })
        .collect();
    json!({
        "shares_digest_inputs": elements(&digest_inputs),
        "transactions": entries,
    })
}

#[test]
fn agent_vectors_match_the_committed_file() {
    let doc = canonical(json!({
        "version": 1,
        "about": "Known answers of SPEC sections 18 (payment streams, their transactions), 19 (splits, revenue shares) and 20 (passports, nonce lanes)",
        "tick_chain": tick_section(),
        "tick_tree": tick_tree::section(),
        "stream_tree": tree_section(),
        "shares": shares_section(),
        "stream_transactions": transactions_section(),
        "split_payment": split_section(),
        "state_diff_v2": diff_section(),
        "state_diff_v3": diff_v3_section(),
        "state_diff_v4": diff_v4_section(),
        "passports": passports::section(),
        "revenue_share_transactions": shares_transactions_section(),
    }));
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    compare_with_committed(&path(), &text);
}
