//! Known answers of SPEC 18.8: a tick tree's secrets, leaves and root, a tick's path, and the
//! settlement by path (tag 18) with its op and decode refusals. Every hash is recomputed here
//! from its listed elements with plain `hash_no_pad`/`two_to_one`.

use plonky2::field::types::Field;
use serde_json::{json, Value};
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::hash::{hash_no_pad, two_to_one, Digest, F};
use state::pubdata::PubdataOp;
use state::smt::empty_hashes;
use state::stream::rules::Settle;
use state::stream::tick_tree::{self, TAG_TICK_LEAF, TAG_TICK_SECRET, TICK_TREE_DEPTH};
use state::stream::{StreamId, StreamSlot, TickCount, TickTree};
use state::tx::{SettlePathBody, Transaction, TxKind, Unsigned};

use crate::{digest, domain, elements, f, hx, op_entry, secret_key, tx_entry, Step};

pub(super) fn section() -> Value {
    let id = StreamId {
        payer: AccountIndex(1),
        slot: StreamSlot(0),
        opened_at: Nonce::new(4).unwrap(),
    };
    let n = 5u32;
    let seed = Digest([f(5), f(6), f(7), f(8)]);
    let mut tree = TickTree::new(id, TickCount::new(n).unwrap(), seed);
    // payer x 2^16 + slot, slot 0.
    let id0 = F::from_canonical_u64(1u64 << 16);

    // Secrets and leaves by hand.
    let mut leaves = Vec::new();
    let mut ticks = Vec::new();
    for k in 1..=n {
        let sd = seed.elements();
        let secret_inputs = [
            sd[0],
            sd[1],
            sd[2],
            sd[3],
            f(k.into()),
            f(TAG_TICK_SECRET.into()),
        ];
        let secret = hash_no_pad(&secret_inputs);
        assert_eq!(secret, tick_tree::secret(seed, k));
        let s = secret.elements();
        let leaf_inputs = [
            id0,
            f(4),
            f(k.into()),
            f(TAG_TICK_LEAF.into()),
            s[0],
            s[1],
            s[2],
            s[3],
        ];
        let leaf = hash_no_pad(&leaf_inputs);
        assert_eq!(leaf, tick_tree::leaf(&id, k, secret));
        leaves.push(leaf);
        ticks.push(json!({
            "k": k,
            "index": k - 1,
            "secret_inputs": elements(&secret_inputs),
            "secret": digest(secret),
            "leaf_inputs": elements(&leaf_inputs),
            "leaf": digest(leaf),
        }));
    }
    // The root by levels: 8 leaf positions (5 ticks, 3 ZERO), then up to 24 beside E[l].
    let mut level = leaves.clone();
    level.resize(8, Digest::ZERO);
    let mut levels = vec![level.clone()];
    while level.len() > 1 {
        level = level.chunks(2).map(|p| two_to_one(p[0], p[1])).collect();
        levels.push(level.clone());
    }
    let e = empty_hashes();
    let root = (3..TICK_TREE_DEPTH).fold(level[0], |node, l| two_to_one(node, e[l]));
    assert_eq!(root, tree.root(), "the root by the SPEC's definition");

    // Tick 3's path (index 2 = 0b010): its level-0 sibling is leaf 4, level 1 the node over
    // leaves 1 and 2, level 2 the node over leaves 5..8, then E[l].
    let path = tree.path(3).unwrap();
    assert_eq!(path[0], leaves[3]);
    assert_eq!(path[1], levels[1][0]);
    assert_eq!(path[2], levels[2][1]);
    for (l, sibling) in path.iter().enumerate().skip(3) {
        assert_eq!(*sibling, e[l]);
    }

    // The settlement by path of ticks 1..=3, signed by the payee (account 2).
    let amount = |v| Amount::new(v).unwrap();
    let secret3 = tick_tree::secret(seed, 3);
    let settle = Unsigned {
        body: SettlePathBody {
            payee: AccountIndex(2),
            terms: Settle {
                payer: id.payer,
                slot: id.slot,
                from: TickCount::ZERO,
                to: TickCount::new(3).unwrap(),
                value: secret3,
            },
            path,
        },
        fee: amount(1),
        nonce: Nonce::new(0).unwrap(),
        valid_until: Timestamp::new(1_700_000_600).unwrap(),
    };
    assert_eq!(
        settle.body.terms.claimed_root(id.opened_at, &path),
        Some(root)
    );
    let d = domain();
    let v = secret3.elements();
    let by_hand = [
        f(18),
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
    let tx: Transaction = settle.sign(&d, &secret_key("bob")).into();
    assert_eq!(tx.to_field_elements(&d), by_hand, "the path is not hashed");
    assert_eq!(tx.encode().len(), TxKind::StreamSettlePath.encoded_len());
    assert_eq!(tx.encode().len(), 915);
    assert!(!tx.kind().is_enabled(), "no circuit proves it yet");
    let mut entry = tx_entry(
        &Step {
            label: tx.kind().name(),
            tx: tx.clone(),
            signer: Some("bob"),
        },
        None,
    );
    let Transaction::StreamSettlePath(t) = &tx else {
        unreachable!("built above")
    };
    let op = PubdataOp::StreamSettlePath {
        body: t.body.settle_body(),
        fee: t.fee,
    };
    let wire = tx.encode();
    let op_bytes = op.to_bytes();
    assert_eq!(op_bytes.len(), 59);
    assert_eq!(
        op_bytes[..51],
        wire[..51],
        "op = the tag and the settlement's body"
    );
    assert_eq!(
        op_bytes[51..],
        wire[819..827],
        "then the fee, after the path"
    );
    assert_eq!(PubdataOp::decode_prefix(&op_bytes), Ok((op.clone(), 59)));
    entry["pubdata"] = op_entry(&op);

    // Decode refusals: a path element equal to p, one byte short.
    let p = state::hash::P.to_le_bytes();
    let mut bad_path = wire.clone();
    bad_path[51 + 32 * 7..51 + 32 * 7 + 8].copy_from_slice(&p);
    let cases = [
        (
            "path[7] element 0 equal to p",
            bad_path,
            "NON_CANONICAL_DIGEST",
        ),
        (
            "truncated by one byte",
            wire[..wire.len() - 1].to_vec(),
            "WRONG_LENGTH",
        ),
    ];
    let rejections: Vec<Value> = cases
        .into_iter()
        .map(|(what, bytes, code)| {
            let got = Transaction::decode(&bytes)
                .map(|_| ())
                .map_err(|e| e.code());
            assert_eq!(got, Err(code), "{what}");
            json!({"what": what, "bytes": hx(&bytes), "error": code})
        })
        .collect();

    json!({
        "stream": {"payer": 1, "slot": 0, "opened_at": 4},
        "max_ticks": n,
        "seed": digest(seed),
        "depth": TICK_TREE_DEPTH,
        "ticks": ticks,
        "levels_0_to_3": levels.iter().map(|l| l.iter().map(|d| digest(*d)).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "empty_subtrees": (0..=TICK_TREE_DEPTH).map(|l| digest(e[l])).collect::<Vec<_>>(),
        "root": digest(root),
        "path_of_tick_3": path.iter().map(|d| digest(*d)).collect::<Vec<_>>(),
        "settle_by_path": entry,
        "decode_rejections": rejections,
    })
}
