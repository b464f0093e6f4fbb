//! Known answers of SPEC section 20: nonce lanes, the agent card, the allow-list tree, the
//! policy, passport and profile digests, and one signed transaction of each passport kind.
//! Every digest is recomputed from its listed inputs with plain `hash_no_pad`/`two_to_one`.

use plonky2::field::types::Field;
use serde_json::{json, Value};
use state::account::{AccountIndex, Amount, Nonce, Timestamp};
use state::ext::Profile;
use state::hash::{hash_no_pad, two_to_one, Digest, F};
use state::lanes::{Lane, LaneNonces, TAG_LANES};
use state::passport::{
    root_from_path, AllowList, Card, Passport, Policy, ALLOW_DEPTH, TAG_CARD, TAG_POLICY,
};
use state::pubdata::PubdataOp;
use state::tx::{PassportAction, PassportOp, Transaction, TxKind, UnsignedPassportTx};

use super::super::{digest, domain, elements, f, hx, op_entry, secret_key, tx_entry, Step};

fn lanes() -> Value {
    let mut l = LaneNonces::default();
    let seven = |n: u64| Nonce::in_lane(Lane::new(7).unwrap(), n).unwrap();
    l.set(Nonce::in_lane(Lane::new(1).unwrap(), 5).unwrap());
    l.set(seven(2));
    let inputs = [f(5), f(0), f(0), f(0), f(0), f(0), f(2), f(TAG_LANES)];
    assert_eq!(l.digest(), hash_no_pad(&inputs));
    assert_eq!(seven(2).get(), (7 << 60) | 2);
    json!({
        "nonce_split": [
            {"nonce": 41, "lane": 0, "seq": 41},
            {"nonce": (3u64 << 60) | 41, "lane": 3, "seq": 41},
            {"nonce": Nonce::MAX.get(), "lane": 7, "seq": (1u64 << 60) - 1, "note": "the last nonce: lane 7 exhausted"},
        ],
        "next_seqs_lanes_1_to_7": l.seqs(),
        "digest_inputs": elements(&inputs),
        "digest": digest(l.digest()),
    })
}

fn card() -> (Card, Value) {
    let uri = "https://agents.example/card.json";
    let card = Card::new([0xab; 32], uri.into()).unwrap();
    let mut inputs = vec![f(TAG_CARD)];
    inputs.extend([0xabab_abab_u64; 8].map(f));
    inputs.push(f(uri.len() as u64));
    for chunk in uri.as_bytes().chunks(7) {
        let mut le = [0u8; 8];
        le[..chunk.len()].copy_from_slice(chunk);
        inputs.push(f(u64::from_le_bytes(le)));
    }
    assert_eq!(card.digest(), hash_no_pad(&inputs));
    let v = json!({
        "hash": hx(&card.hash), "uri": uri,
        "digest_inputs": elements(&inputs), "digest": digest(card.digest()),
    });
    (card, v)
}

fn allow_list() -> (AllowList, Value) {
    let payees = [2u32, 4, 900];
    let list = AllowList::new(payees.map(AccountIndex).to_vec()).unwrap();
    // The complete tree of depth 10 by hand: leaves (payee, 1, 0, 0), then ZERO.
    let mut level: Vec<Digest> = (0..1usize << ALLOW_DEPTH)
        .map(|i| match payees.get(i) {
            Some(&p) => Digest([f(p.into()), F::ONE, F::ZERO, F::ZERO]),
            None => Digest::ZERO,
        })
        .collect();
    let mut levels = vec![level.clone()];
    while level.len() > 1 {
        level = level.chunks(2).map(|c| two_to_one(c[0], c[1])).collect();
        levels.push(level.clone());
    }
    assert_eq!(list.root(), level[0]);
    let (pos, path) = list.path(AccountIndex(4)).unwrap();
    assert_eq!(pos, 1);
    for (l, s) in path.iter().enumerate() {
        assert_eq!(*s, levels[l][(pos >> l) ^ 1]);
    }
    assert_eq!(root_from_path(AccountIndex(4), pos, &path), list.root());
    let v = json!({
        "payees": payees,
        "root": digest(list.root()),
        "proof_of_4": {"position": pos, "siblings": path.iter().map(|d| digest(*d)).collect::<Vec<_>>()},
        "empty_list_root": digest(AllowList::anyone().root()),
    });
    (list, v)
}

pub(super) fn section() -> Value {
    let d = domain();
    let n = |v| Amount::new(v).unwrap();
    let (card, card_v) = card();
    let (list, list_v) = allow_list();
    let policy = Policy {
        cap: n(5_000),
        window: 86_400,
        max_payment: n(250),
        max_fee: n(3),
        expiry: Timestamp::new(1_800_000_000).unwrap(),
        allow: list.clone(),
        card: card.clone(),
    };
    let (a, c) = (list.root().elements(), card.digest().elements());
    let policy_inputs = [
        f(TAG_POLICY),
        f(5_000),
        f(86_400),
        f(250),
        f(3),
        f(1_800_000_000),
        a[0],
        a[1],
        a[2],
        a[3],
        c[0],
        c[1],
        c[2],
        c[3],
    ];
    assert_eq!(policy.digest(), hash_no_pad(&policy_inputs));
    let owner = AccountIndex(1);
    let passport = Passport::new(owner, policy.clone());
    let p = policy.digest().elements();
    let passport_inputs = [f(1), p[0], p[1], p[2], p[3], F::ZERO, F::ZERO, F::ZERO];
    assert_eq!(passport.digest(), hash_no_pad(&passport_inputs));
    let profile = Profile {
        passport: passport.digest(),
        ..Profile::default()
    };
    let mut profile_inputs = vec![F::ZERO; 4];
    profile_inputs.extend(passport.digest().elements());
    profile_inputs.extend([F::ZERO; 4]);
    assert_eq!(profile.digest(), hash_no_pad(&profile_inputs));

    // One transaction of each kind, alice (account 1) owning agent 3 (bob's key as its key).
    let alice = secret_key("alice");
    let agent_key = secret_key("bob").public_key().into();
    let agent = AccountIndex(3);
    let actions = [
        PassportAction::Delegate {
            agent_key,
            fund: n(1_000),
            policy: policy.clone(),
        },
        PassportAction::SetPolicy {
            agent,
            policy: Policy {
                allow: AllowList::anyone(),
                card: Card::default(),
                ..policy.clone()
            },
        },
        PassportAction::Revoke { agent },
        PassportAction::Sweep {
            agent,
            amount: n(400),
        },
    ];
    let mut txs = Vec::new();
    let mut wires = Vec::new();
    for (i, action) in actions.into_iter().enumerate() {
        let unsigned = UnsignedPassportTx {
            owner,
            action: action.clone(),
            fee: n(1),
            nonce: Nonce::new(10 + i as u64).unwrap(),
            valid_until: Timestamp::new(1_700_000_600).unwrap(),
        };
        // The hashed fields by hand (SPEC 20.5).
        let mut by_hand = vec![F::from_canonical_u8(action.kind().tag()), f(1)];
        match &action {
            PassportAction::Delegate {
                agent_key,
                fund,
                policy,
            } => {
                by_hand.extend(agent_key.to_field_elements());
                by_hand.push(f(fund.get()));
                by_hand.extend(policy.digest().elements());
            }
            PassportAction::SetPolicy { agent, policy } => {
                by_hand.push(f(agent.0.into()));
                by_hand.extend(policy.digest().elements());
            }
            PassportAction::Revoke { agent } => by_hand.push(f(agent.0.into())),
            PassportAction::Sweep { agent, amount } => {
                by_hand.extend([f(agent.0.into()), f(amount.get())]);
            }
        }
        by_hand.extend([f(1), f(10 + i as u64), f(1_700_000_600)]);
        let tx: Transaction = unsigned.sign(&d, &alice).into();
        assert_eq!(tx.to_field_elements(&d), by_hand);
        assert!(
            !tx.kind().is_enabled(),
            "defined, not yet accepted by a node"
        );
        let mut entry = tx_entry(
            &Step {
                label: tx.kind().name(),
                tx: tx.clone(),
                signer: Some("alice"),
            },
            None,
        );
        let op = PubdataOp::Passport(PassportOp {
            owner,
            agent,
            action,
            fee: n(1),
        });
        assert_eq!(
            PubdataOp::decode_prefix(&op.to_bytes()),
            Ok((op.clone(), op.byte_len()))
        );
        entry["pubdata"] = op_entry(&op);
        // SPEC 10.2: a delegate and a policy change enter the chain by their bytes without the
        // policy (the policy sits between the body's head and the fee) and the policy's
        // digest; a revoke and a sweep by their whole bytes.
        let bytes = op.to_bytes();
        let alone = state::pubdata::pubdata_commitment([&op]);
        let mut by_hand = vec![f(0); 4];
        match &op {
            PubdataOp::Passport(PassportOp {
                action:
                    PassportAction::Delegate { policy, .. } | PassportAction::SetPolicy { policy, .. },
                ..
            }) => {
                let head = if i == 0 { 57 } else { 9 };
                let mut fixed = bytes[..head].to_vec();
                fixed.extend_from_slice(&bytes[bytes.len() - 8..]);
                by_hand.push(f(fixed.len() as u64));
                by_hand.extend(state::pubdata::bytes_to_chunks(&fixed));
                by_hand.extend(policy.digest().elements());
            }
            _ => {
                by_hand.push(f(bytes.len() as u64));
                by_hand.extend(state::pubdata::bytes_to_chunks(&bytes));
            }
        }
        assert_eq!(
            alone,
            state::hash::hash_no_pad(&by_hand),
            "{}",
            tx.kind().name()
        );
        entry["pubdata"]["commitment_of_this_op_alone"] = digest(alone);
        wires.push(tx.encode());
        txs.push(entry);
    }
    // Decode refusals, from the delegate (policy at 53: cap 53, window 61, max_payment 65,
    // max_fee 73, expiry 81, card hash 89, uri length 121, uri 122, then n and the list).
    let delegate = &wires[0];
    let uri_len = usize::from(delegate[121]);
    let n_at = 122 + uri_len;
    let with = |at: usize, bytes: &[u8]| -> Vec<u8> {
        let mut v = delegate.clone();
        v[at..at + bytes.len()].copy_from_slice(bytes);
        v
    };
    let cases = [
        (
            "n = 1025",
            with(n_at, &1025u16.to_le_bytes()),
            "TOO_MANY_ALLOWED",
        ),
        (
            "the list 2, 900, 900",
            with(n_at + 6, &900u32.to_le_bytes()),
            "ALLOW_LIST_NOT_SORTED",
        ),
        ("a URI byte 0xff", with(122, &[0xff]), "URI_NOT_UTF8"),
        (
            "n = 4 with three payees",
            with(n_at, &4u16.to_le_bytes()),
            "WRONG_LENGTH",
        ),
        (
            "cap = 2^63",
            with(53, &(1u64 << 63).to_le_bytes()),
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
            json!({"what": what, "bytes": hx(&bytes), "error": code})
        })
        .collect();
    assert_eq!(delegate[0], TxKind::Delegate.tag());
    json!({
        "lanes": lanes(),
        "card": card_v,
        "allow_list": list_v,
        "policy": {"digest_inputs": elements(&policy_inputs), "digest": digest(policy.digest())},
        "passport": {
            "owner": 1, "revoked": 0, "window_id": 0, "spent": 0,
            "digest_inputs": elements(&passport_inputs), "digest": digest(passport.digest()),
        },
        "profile": {
            "note": "shares ZERO, this passport, lanes ZERO",
            "digest_inputs": elements(&profile_inputs), "digest": digest(profile.digest()),
        },
        "transactions": txs,
        "decode_rejections": rejections,
    })
}
