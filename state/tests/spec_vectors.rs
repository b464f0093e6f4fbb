//! The protocol test vectors of `docs/SPEC.md` section 12.
//!
//! [`build`] derives the vectors document deterministically from the reference implementation
//! (fixed secret keys, deterministic signatures, a fixed scripted sequence of transactions),
//! checks it against independent recomputations where that is cheap (the signing nonce, the
//! message hashes from their element lists, Merkle proofs, the commitment chains), and the
//! test compares it byte for byte with the committed `docs/vectors/state-v1.json`.
//!
//! After an intentional protocol change, regenerate the file and commit it:
//!
//! ```text
//! UPDATE_VECTORS=1 cargo test -p state --test spec_vectors
//! ```

mod agent_vectors;

use std::path::PathBuf;

use plonky2::field::types::{Field, PrimeField64};
use serde_json::{json, Map, Value};
use state::account::{AccountIndex, Amount, Nonce, Timestamp, MAX_U63, OPERATOR};
use state::apply::{BlockContext, Effects, State};
use state::crypto::ecgfp5::{Point, Scalar};
use state::crypto::schnorr::{
    KeyError, MessageHash, PublicKey, SecretKey, Signature, SignatureError,
};
use state::hash::{hash_no_pad, two_to_one, Digest, F, P};
use state::pubdata::{
    decode_ops, encode_ops, PubdataCommitment, PubdataError, PubdataOp, WithdrawalRecord,
    WithdrawalsCommitment,
};
use state::smt::{empty_hashes, DEPTH};
use state::tx::{
    DecodeError, Deposit, Domain, ForcedWithdraw, L1Address, Transaction, UnsignedRegister,
    UnsignedTransfer, UnsignedWithdraw, TAG_DOMAIN,
};

const UPDATE_COMMAND: &str = "UPDATE_VECTORS=1 cargo test -p state --test spec_vectors";

/// The block timestamp of every step of the scripted sequence.
const NOW: u64 = 1_700_000_000;

/// Fixed secret keys (40 bytes little-endian, each below n).
const SECRETS: [(&str, &str); 3] = [
    (
        "operator",
        "9f04351e32829874b5b5946b92c2c879a429f4c8dbaa42422d53889595797aeb1cfb60daacde791e",
    ),
    (
        "alice",
        "38c5886c23615c51f540be3346b6b1f4f7883d6f968c7188b70ec46050191bda07bfa5136156842d",
    ),
    (
        "bob",
        "8f63a3f90a675d6ab9128fe4b74d894ac6177bd3ca22beda5772ba91bcbfb9821b872556facb7806",
    ),
];

/// The deployment of the vectors: anvil's chain id and its first contract address.
const ROLLUP: &str = "5fbdb2315678afecb367f032d93f642f64180aa3";
/// The L1 destination of the withdrawal (anvil's second default account).
const WITHDRAW_TO: &str = "70997970c51812dc3a010c7d01b50e0d17dc79c8";
/// The L1 address the vector keys bind as their owner (SPEC 20.9): anvil's dev account 2.
const OWNER_L1: &str = "3c44cdddb6a900fa2b585dd299e03d12fa4293bc";

// ---------------------------------------------------------------------------------------------
// Small helpers.

fn hx(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).expect("valid hex")
}

fn elements(v: &[F]) -> Value {
    Value::Array(v.iter().map(|x| json!(x.to_canonical_u64())).collect())
}

fn digest(d: Digest) -> Value {
    json!(d.to_string())
}

fn f(v: u64) -> F {
    F::from_canonical_u64(v)
}

fn amt(v: u64) -> Amount {
    Amount::new(v).unwrap()
}

fn ts(v: u64) -> Timestamp {
    Timestamp::new(v).unwrap()
}

fn nonce(v: u64) -> Nonce {
    Nonce::new(v).unwrap()
}

fn addr(s: &str) -> [u8; 20] {
    unhex(s).try_into().unwrap()
}

fn domain() -> Domain {
    Domain {
        chain_id: 31337,
        rollup: addr(ROLLUP),
    }
}

/// The agent alice delegates to in the exodus world (not one of the keys section's).
const EXODUS_AGENT: (&str, &str) = (
    "agent",
    "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
);

fn secret_key(name: &str) -> SecretKey {
    let (_, h) = SECRETS
        .iter()
        .chain(std::iter::once(&EXODUS_AGENT))
        .find(|(n, _)| *n == name)
        .unwrap();
    SecretKey::from_bytes(&unhex(h).try_into().unwrap()).unwrap()
}

/// Rebuilds every object with its keys inserted in sorted order, so that the output is the
/// same whether serde_json's map keeps insertion order (`preserve_order`) or sorts (default).
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Error names used by the vectors (SPEC sections 4 and 9).

fn signature_error(e: &SignatureError) -> &'static str {
    e.code()
}

fn decode_error(e: &DecodeError) -> Value {
    match e {
        DecodeError::OutOfRange { field, .. } => json!({ "error": e.code(), "field": field }),
        _ => json!({ "error": e.code() }),
    }
}

// ---------------------------------------------------------------------------------------------
// Sections.

fn hex_u64s(v: &[u64]) -> Vec<String> {
    v.iter().map(|c| format!("0x{c:016x}")).collect()
}

fn poseidon_section() -> Value {
    let short: Vec<F> = (1..=3).map(f).collect();
    let long: Vec<F> = (0..12).map(f).collect();
    let a = hash_no_pad(&[f(1)]);
    let b = hash_no_pad(&[f(2)]);
    let ab: Vec<F> = a.elements().into_iter().chain(b.elements()).collect();
    assert_eq!(two_to_one(a, b), hash_no_pad(&ab), "H2(l, r) = H(l || r)");
    use plonky2::hash::poseidon::{
        Poseidon, ALL_ROUND_CONSTANTS, HALF_N_FULL_ROUNDS, N_PARTIAL_ROUNDS,
    };
    // The permutation's parameters, for implementations elsewhere (the L1 contract's Poseidon,
    // bridge/contracts/src/Poseidon.sol, is generated from them): round `r` adds
    // `round_constants[12 r .. 12 r + 12]`, applies `x^7` to every element (full rounds) or to
    // element 0 (partial rounds), then the MDS layer `y[r] = sum_i x[(i + r) % 12] circ[i] +
    // x[r] diag[r]`.
    let params = json!({
        "width": 12,
        "rate": 8,
        "half_full_rounds": HALF_N_FULL_ROUNDS,
        "partial_rounds": N_PARTIAL_ROUNDS,
        "round_constants": ALL_ROUND_CONSTANTS[..12 * (2 * HALF_N_FULL_ROUNDS + N_PARTIAL_ROUNDS)]
            .iter()
            .map(|c| format!("0x{c:016x}"))
            .collect::<Vec<_>>(),
        "mds_circ": <F as Poseidon>::MDS_MATRIX_CIRC,
        "mds_diag": <F as Poseidon>::MDS_MATRIX_DIAG,
        // The same partial rounds in plonky2's sparse form (its precomputed constants): add
        // `first_round_constant` to every element, multiply elements 1..12 by
        // `initial_matrix` (row r - 1 is element r's contribution to elements 1..12); then per
        // partial round i: `x0 = x0^7 + round_constants[i]`, `y0 = 25 x0 + sum_j w_hats[i][j - 1]
        // x_j`, `y_j = x_j + vs[i][j - 1] x0` (j >= 1).
        "fast_partial": {
            "first_round_constant": hex_u64s(&<F as Poseidon>::FAST_PARTIAL_FIRST_ROUND_CONSTANT),
            "round_constants": hex_u64s(&<F as Poseidon>::FAST_PARTIAL_ROUND_CONSTANTS),
            "vs": <F as Poseidon>::FAST_PARTIAL_ROUND_VS.iter().map(|r| hex_u64s(r)).collect::<Vec<_>>(),
            "w_hats": <F as Poseidon>::FAST_PARTIAL_ROUND_W_HATS.iter().map(|r| hex_u64s(r)).collect::<Vec<_>>(),
            "initial_matrix": <F as Poseidon>::FAST_PARTIAL_ROUND_INITIAL_MATRIX
                .iter()
                .map(|r| hex_u64s(r))
                .collect::<Vec<_>>(),
        },
    });
    json!({
        "params": params,
        "hash_no_pad": [
            { "inputs": elements(&short), "output": digest(hash_no_pad(&short)) },
            { "inputs": elements(&long), "output": digest(hash_no_pad(&long)) },
        ],
        "two_to_one": [
            { "left": digest(a), "right": digest(b), "output": digest(two_to_one(a, b)) },
        ],
    })
}

fn domain_entry(d: &Domain) -> Value {
    let el = d.to_field_elements();
    json!({
        "chain_id": d.chain_id,
        "rollup": hx(&d.rollup),
        "elements": elements(&el),
        "digest": digest(d.digest()),
    })
}

fn domain_section() -> Value {
    let main = domain();
    assert_eq!(TAG_DOMAIN, u64::from_be_bytes(*b"rollupv1"));
    // A chain id above 2^32 exercises the high limb.
    let wide = Domain {
        chain_id: 0x0123_4567_89ab_cdef,
        rollup: addr("00112233445566778899aabbccddeeff01020304"),
    };
    let mut entry = domain_entry(&main);
    entry["tag_domain"] = json!(format!("0x{TAG_DOMAIN:016x}"));
    json!({ "main": entry, "other": [domain_entry(&wide)] })
}

fn key_entry(name: &str, sk: &SecretKey) -> Value {
    let pk = sk.public_key();
    json!({
        "name": name,
        "secret": hx(&sk.to_bytes()),
        "public": hx(&pk.to_bytes()),
        "w": elements(&pk.to_field_elements()),
    })
}

fn keys_section() -> Value {
    let mut out: Vec<Value> = SECRETS
        .iter()
        .map(|(name, _)| key_entry(name, &secret_key(name)))
        .collect();
    // d = 1 gives the generator, whose encoding is w = 4.
    let mut one = [0u8; 40];
    one[0] = 1;
    let unit = SecretKey::from_bytes(&one).unwrap();
    assert_eq!(
        unit.public_key().encoding().to_u64s(),
        [4, 0, 0, 0, 0],
        "the generator encodes to w = 4"
    );
    out.push(key_entry("unit", &unit));
    Value::Array(out)
}

/// Recomputes the deterministic nonce of SPEC section 4 independently of the library.
fn nonce_parts(sk: &SecretKey, m: &MessageHash) -> (Digest, Digest, Scalar) {
    let d = sk.to_bytes();
    let mut input = vec![f(u64::from_le_bytes(*b"ecgfp5nk"))];
    for limb in d.chunks(4) {
        input.push(F::from_canonical_u32(u32::from_le_bytes(
            limb.try_into().unwrap(),
        )));
    }
    input.extend(m.0.elements());
    let h = |c: u64| {
        let mut i = input.clone();
        i.push(f(c));
        assert_eq!(i.len(), 16);
        hash_no_pad(&i)
    };
    let (h0, h1) = (h(0), h(1));
    let mut wide = [0u8; 64];
    wide[..32].copy_from_slice(&h0.to_bytes());
    wide[32..].copy_from_slice(&h1.to_bytes());
    let k = Scalar::from_le_bytes_wide(&wide);
    assert!(!k.is_zero());
    (h0, h1, k)
}

fn signature_entry(name: &str, m: MessageHash) -> (Value, Signature) {
    let sk = secret_key(name);
    let sig = sk.sign(&m);
    let (h0, h1, k) = nonce_parts(&sk, &m);
    let r = Point::mulgen(&k).encode().to_field_elements();
    let challenge_input: Vec<F> = r.iter().copied().chain(m.0.elements()).collect();
    let e = hash_no_pad(&challenge_input);
    assert_eq!(e, sig.challenge(), "independently derived nonce gives e");
    let d = Scalar::from_le_bytes(&sk.to_bytes()).unwrap();
    let s = k - Scalar::from_u64x4(e.to_u64s()) * d;
    assert_eq!(s.to_le_bytes(), sig.response_bytes(), "s = k - e d mod n");
    assert_eq!(sk.public_key().verify(&m, &sig), Ok(()));
    let entry = json!({
        "key": name,
        "public": hx(&sk.public_key().to_bytes()),
        "message": digest(m.0),
        "nonce": {
            "h0": digest(h0),
            "h1": digest(h1),
            "k": hx(&k.to_le_bytes()),
        },
        "r_w": elements(&r),
        "e": digest(e),
        "s": hx(&s.to_le_bytes()),
        "signature": hx(&sig.to_bytes()),
    });
    (entry, sig)
}

/// Outcome of checking `sig_bytes` over `m` under `pk`: parse first, then verify.
fn check_signature(pk: &PublicKey, m: &MessageHash, sig_bytes: &[u8]) -> (&'static str, String) {
    match Signature::from_slice(sig_bytes) {
        Err(e) => ("decode", signature_error(&e).to_string()),
        Ok(sig) => match pk.verify(m, &sig) {
            Ok(()) => ("verify", "OK".to_string()),
            Err(e) => ("verify", signature_error(&e).to_string()),
        },
    }
}

fn signatures_section() -> Value {
    let m0 = MessageHash(Digest::ZERO);
    let m1 = MessageHash(hash_no_pad(&[f(1), f(2), f(3)]));
    let m2 = MessageHash(hash_no_pad(&[f(42)]));
    let (v0, base) = signature_entry("alice", m0);
    let (v1, _) = signature_entry("bob", m1);
    let (v2, _) = signature_entry("operator", m2);

    let alice = secret_key("alice").public_key();
    let bob = secret_key("bob").public_key();
    let good = base.to_bytes();

    let mut flip_s = good;
    flip_s[32] ^= 1;
    let mut flip_e = good;
    flip_e[0] ^= 1;
    // s + n: the same residue, but not the canonical encoding.
    let mut s_plus_n = good;
    {
        let mut carry = 0u128;
        for (i, n) in state::crypto::scalar::N.iter().enumerate() {
            let at = 32 + 8 * i;
            let limb = u64::from_le_bytes(s_plus_n[at..at + 8].try_into().unwrap());
            let v = u128::from(limb) + u128::from(*n) + carry;
            s_plus_n[at..at + 8].copy_from_slice(&(v as u64).to_le_bytes());
            carry = v >> 64;
        }
        assert_eq!(carry, 0, "s + n fits in 320 bits");
    }
    // Limb 0 of e replaced by p, the non-canonical form of 0.
    let mut e_limb_p = good;
    e_limb_p[..8].copy_from_slice(&P.to_le_bytes());

    let cases: [(&str, &str, &PublicKey, MessageHash, [u8; 72]); 6] = [
        ("bit_flip_s", "alice", &alice, m0, flip_s),
        ("bit_flip_e", "alice", &alice, m0, flip_e),
        ("other_message", "alice", &alice, m1, good),
        ("other_key", "bob", &bob, m0, good),
        ("non_canonical_s", "alice", &alice, m0, s_plus_n),
        ("non_canonical_e_limb", "alice", &alice, m0, e_limb_p),
    ];
    let expected = [
        ("verify", "INVALID"),
        ("verify", "INVALID"),
        ("verify", "INVALID"),
        ("verify", "INVALID"),
        ("decode", "NON_CANONICAL_SCALAR"),
        ("decode", "NON_CANONICAL_CHALLENGE"),
    ];
    let invalid: Vec<Value> = cases
        .iter()
        .zip(expected)
        .map(|((case, key, pk, m, bytes), (stage, error))| {
            let got = check_signature(pk, m, bytes);
            assert_eq!((got.0, got.1.as_str()), (stage, error), "{case}");
            json!({
                "case": case,
                "key": key,
                "public": hx(&pk.to_bytes()),
                "message": digest(m.0),
                "signature": hx(bytes),
                "stage": stage,
                "error": error,
            })
        })
        .collect();
    json!({ "valid": [v0, v1, v2], "invalid": invalid })
}

/// Exit authorisations (SPEC 15.9) with the hints of the L1 verifier, for forge's known answers
/// (`contracts/test/Schnorr.t.sol`, `Exodus.t.sol`): each key authorises the withdrawal
/// destination; every account of the final state with its exit proof (SPEC 15.9).
/// The exodus world: the vectors' final state plus one stream Alice (index 1) opens to Bob
/// (index 2), whose escrow an exit pays back (SPEC 15.9, "Streams").
fn exodus_section(st: &mut State) -> Value {
    use state::exodus::{exit_authorisation_message, TAG_EXIT_AUTHORISATION};
    use state::owner::{owner_binding_message, TAG_OWNER_BINDING};
    use state::stream::rules::Open;
    use state::stream::{StreamId, StreamSlot, TickChain, TickCount};
    use state::tx::Unsigned;
    let d = domain();
    let alice = AccountIndex(1);
    let slot = StreamSlot(5);
    let opened_at = st.account(alice).expect("alice").nonce;
    let max_ticks = TickCount::new(40).expect("ticks");
    let chain = TickChain::new(
        StreamId {
            payer: alice,
            slot,
            opened_at,
        },
        max_ticks,
        hash_no_pad(&[F::from_canonical_u64(0x5eed)]),
    );
    let open: Transaction = Unsigned {
        body: Open {
            payer: alice,
            payee: AccountIndex(2),
            slot,
            price: Amount::new(3).expect("u63"),
            max_ticks,
            expiry: ts(NOW + 3600),
            anchor: chain.anchor(),
        },
        fee: Amount::ZERO,
        nonce: opened_at,
        valid_until: ts(NOW + 60),
    }
    .sign(&d, &secret_key("alice"))
    .into();
    st.apply(&open, &BlockContext::at(ts(NOW)))
        .expect("alice can open a stream");
    // Alice delegates to an agent (SPEC 20.5): its balance must exit to alice's address, not to
    // one the agent key names (SPEC 20.9, "Exodus").
    let delegate: Transaction = state::tx::UnsignedPassportTx {
        owner: alice,
        action: state::tx::PassportAction::Delegate {
            agent_key: secret_key("agent").public_key().into(),
            fund: Amount::new(40).expect("u63"),
            policy: state::passport::Policy {
                cap: Amount::new(1_000).expect("u63"),
                window: 3_600,
                max_payment: Amount::new(100).expect("u63"),
                max_fee: Amount::new(1).expect("u63"),
                expiry: ts(NOW + 86_400),
                allow: state::passport::AllowList::new(vec![]).expect("empty list"),
                card: state::passport::Card::new([0; 32], String::new()).expect("empty card"),
            },
        },
        fee: Amount::ZERO,
        nonce: st.account(alice).expect("alice").nonce,
        valid_until: ts(NOW + 60),
    }
    .sign(&d, &secret_key("alice"))
    .into();
    st.apply(&delegate, &BlockContext::at(ts(NOW)))
        .expect("alice can delegate");
    let book = st.streams_of(alice);
    let stream = *book.get(slot).expect("open");
    let streams = vec![json!({
        "payer": alice.0,
        "slot": slot.0,
        "payee": stream.payee.0,
        "price": stream.price.get(),
        "max_ticks": stream.max_ticks.get(),
        "expiry": stream.expiry.get(),
        "opened_at": stream.id.opened_at.get(),
        "settled": stream.settled.get(),
        "head": digest(stream.head),
        "leaf": digest(stream.leaf_hash()),
        "path": book.path(slot).iter().map(|d| digest(*d)).collect::<Vec<_>>(),
        "streams_root": digest(book.root()),
        "profile": digest(Digest::ZERO),
        "escrow": stream.escrow().get(),
    })];
    let to = L1Address(addr(WITHDRAW_TO));
    let m = exit_authorisation_message(&d, &to);
    let keys = ["operator", "alice", "bob", "agent"];
    let entries: Vec<Value> = keys.iter().map(|name| l1_signed(name, &m)).collect();
    // Owner bindings (SPEC 20.9): each key names the L1 address that answers for it.
    let owner = L1Address(addr(OWNER_L1));
    let mo = owner_binding_message(&d, &owner);
    let bindings: Vec<Value> = keys.iter().map(|name| l1_signed(name, &mo)).collect();
    let root = st.root();
    let mut accounts = Vec::new();
    let mut index = 0u32;
    while let Some(a) = st.account(AccountIndex(index)).cloned() {
        let proof = st.proof(AccountIndex(index));
        assert!(proof.verify(root, index, a.leaf_hash()));
        // The opening of a non-zero ext (SPEC 18.3): what `exitOpened` takes.
        let i = AccountIndex(index);
        let profile = st.profile_of(i);
        // Every field present (zero for a non-agent), so that forge reads one shape.
        let passport = st.passport(i).map_or_else(
            || {
                json!({"agent": false, "owner": 0, "policy_digest": digest(Digest::ZERO),
                      "revoked": false, "window_id": 0, "spent": 0})
            },
            |p| {
                let (window_id, spent) = p.spent();
                json!({
                    "agent": true, "owner": p.owner().0, "policy_digest": digest(p.policy_digest()),
                    "revoked": p.is_revoked(), "window_id": window_id, "spent": spent.get(),
                })
            },
        );
        accounts.push(json!({
            "index": index,
            "w": elements(&a.pubkey.to_field_elements()),
            "balance": a.balance.get(),
            "nonce": a.nonce.get(),
            "ext": digest(a.ext),
            "siblings": proof.siblings.iter().map(|d| digest(*d)).collect::<Vec<_>>(),
            "streams_root": digest(st.streams_of(i).root()),
            "shares": digest(profile.shares),
            "lanes": digest(profile.lanes),
            "passport": passport,
            "profile": digest(profile.digest()),
        }));
        index += 1;
    }
    json!({
        "tag": TAG_EXIT_AUTHORISATION,
        "root": digest(root),
        "accounts": accounts,
        "to": hx(&to.0),
        "message": digest(m.0),
        "message_elements": elements(&m.0.elements()),
        "authorisations": entries,
        "streams": streams,
        "owner_binding": {
            "tag": TAG_OWNER_BINDING,
            "owner": hx(&owner.0),
            "message": digest(mo.0),
            "message_elements": elements(&mo.0.elements()),
            "signatures": bindings,
        },
    })
}

/// `name`'s signature of `m` with the hints of the L1 verifier (`contracts/src/Schnorr.sol`).
fn l1_signed(name: &str, m: &state::crypto::schnorr::MessageHash) -> Value {
    use state::crypto::ecgfp5::GFp5;
    let b = GFp5::from_u64s([0, 263, 0, 0, 0]).expect("canonical");
    let sk = secret_key(name);
    let pk = sk.public_key();
    let sig = sk.sign(m);
    let h = pk.l1_verify_hints(m, &sig).expect("own signature verifies");
    let bytes = sig.to_bytes();
    // s as two big-endian words for Solidity: the low 256 bits and the high 64.
    let mut lo = bytes[32..64].to_vec();
    lo.reverse();
    let mut hi = bytes[64..72].to_vec();
    hi.reverse();
    // The other root of the decoding equation (product of the roots: b): on the curve with the
    // same w, but n-torsion, not a group element.
    let other_root = b * h.qx.inverse_or_zero();
    json!({
        "key": name,
        "w": elements(&pk.to_field_elements()),
        "signature": hx(&bytes),
        "e": elements(&sig.challenge().elements()),
        "s_lo": hx(&lo),
        "s_hi": hx(&hi),
        "qx": elements(&h.qx.to_field_elements()),
        "qy": elements(&h.qy.to_field_elements()),
        "w_r": elements(&h.w_r.to_field_elements()),
        "other_root_qx": elements(&other_root.to_field_elements()),
    })
}

// ---------------------------------------------------------------------------------------------
// The scripted sequence.

struct Step {
    label: &'static str,
    tx: Transaction,
    /// The key that signed it, for the transactions section.
    signer: Option<&'static str>,
}

fn script() -> Vec<Step> {
    let d = domain();
    let alice = secret_key("alice");
    let bob = secret_key("bob");
    let register = |sk: &SecretKey, valid_until: u64| -> Transaction {
        UnsignedRegister {
            pubkey: sk.public_key(),
            valid_until: ts(valid_until),
        }
        .sign(&d, sk)
        .into()
    };
    let deposit = |seq: u64, to: u32, amount: u64| -> Transaction {
        Deposit {
            seq,
            to: AccountIndex(to),
            amount: amt(amount),
        }
        .into()
    };
    let transfer = |sk: &SecretKey, from: u32, to: u32, a: u64, fee: u64, n: u64, until: u64| {
        Transaction::from(
            UnsignedTransfer {
                from: AccountIndex(from),
                to: AccountIndex(to),
                amount: amt(a),
                fee: amt(fee),
                nonce: nonce(n),
                valid_until: ts(until),
            }
            .sign(&d, sk),
        )
    };
    let withdraw: Transaction = UnsignedWithdraw {
        from: AccountIndex(1),
        to_l1: L1Address(addr(WITHDRAW_TO)),
        amount: amt(300_000),
        fee: amt(50),
        nonce: nonce(1),
        valid_until: ts(NOW + 600),
    }
    .sign(&d, &alice)
    .into();
    let alice_pays_bob = transfer(&alice, 1, 2, 125_000, 25, 0, NOW + 60);
    // Forced withdrawals: signed withdraws queued on L1 (serials 3 and 4), judged at their L1
    // request time. The first is applied (alice's nonce 2), the second is bob's signature for
    // alice's account and is rejected with status 2, consuming its serial all the same.
    let forced = |seq: u64, requested_at: u64, sk: &SecretKey, n: u64| -> Transaction {
        ForcedWithdraw {
            seq,
            requested_at: ts(requested_at),
            withdraw: UnsignedWithdraw {
                from: AccountIndex(1),
                to_l1: L1Address(addr(WITHDRAW_TO)),
                amount: amt(1_000),
                fee: amt(0),
                nonce: nonce(n),
                valid_until: ts(NOW - 5),
            }
            .sign(&d, sk),
        }
        .into()
    };
    vec![
        Step {
            label: "register alice (index 1)",
            tx: register(&alice, NOW + 3600),
            signer: Some("alice"),
        },
        Step {
            label: "register bob (index 2), valid_until equal to the block timestamp",
            tx: register(&bob, NOW),
            signer: Some("bob"),
        },
        Step {
            label: "deposit 0: 1000000 to alice, credited",
            tx: deposit(0, 1, 1_000_000),
            signer: None,
        },
        Step {
            label: "deposit 1: 250000 to bob, credited",
            tx: deposit(1, 2, 250_000),
            signer: None,
        },
        Step {
            label: "deposit 2: 777 to account 9 (does not exist), refunded",
            tx: deposit(2, 9, 777),
            signer: None,
        },
        Step {
            label: "transfer alice -> bob 125000, fee 25, nonce 0",
            tx: alice_pays_bob.clone(),
            signer: Some("alice"),
        },
        Step {
            label: "transfer bob -> operator 1000, fee 0, nonce 0",
            tx: transfer(&bob, 2, 0, 1_000, 0, 0, NOW),
            signer: Some("bob"),
        },
        Step {
            label: "withdraw alice 300000 to L1, fee 50, nonce 1",
            tx: withdraw,
            signer: Some("alice"),
        },
        Step {
            label: "forced withdrawal 3: alice 1000 to L1, nonce 2, requested at valid_until (before the block): applied",
            tx: forced(3, NOW - 5, &alice, 2),
            signer: Some("alice"),
        },
        Step {
            label: "forced withdrawal 4: signed by bob for alice's account: consumed, rejected (status 2)",
            tx: forced(4, NOW - 5, &bob, 3),
            signer: Some("bob"),
        },
        Step {
            label: "replay of the first transfer: rejected",
            tx: alice_pays_bob,
            signer: Some("alice"),
        },
        Step {
            label: "transfer bob -> alice, valid_until one second before the block: rejected",
            tx: transfer(&bob, 2, 1, 10, 0, 1, NOW - 1),
            signer: Some("bob"),
        },
        Step {
            label: "alice registers her key again: rejected",
            tx: register(&alice, NOW + 7200),
            signer: Some("alice"),
        },
        Step {
            label: "deposit 7 while deposit 5 is next: rejected",
            tx: deposit(7, 1, 1),
            signer: None,
        },
    ]
}

fn tx_fields(tx: &Transaction) -> Value {
    match tx {
        Transaction::Register(t) => json!({
            "pubkey": hx(&t.pubkey.to_bytes()),
            "valid_until": t.valid_until.get(),
            "signature": hx(&t.signature.to_bytes()),
        }),
        Transaction::Transfer(t) => json!({
            "from": t.from.0,
            "to": t.to.0,
            "amount": t.amount.get(),
            "fee": t.fee.get(),
            "nonce": t.nonce.get(),
            "valid_until": t.valid_until.get(),
            "signature": hx(&t.signature.to_bytes()),
        }),
        Transaction::Withdraw(t) => json!({
            "from": t.from.0,
            "to_l1": hx(&t.to_l1.0),
            "amount": t.amount.get(),
            "fee": t.fee.get(),
            "nonce": t.nonce.get(),
            "valid_until": t.valid_until.get(),
            "signature": hx(&t.signature.to_bytes()),
        }),
        Transaction::Deposit(t) => json!({
            "seq": t.seq,
            "to": t.to.0,
            "amount": t.amount.get(),
        }),
        Transaction::ForcedWithdraw(t) => json!({
            "seq": t.seq,
            "requested_at": t.requested_at.get(),
            "withdraw": tx_fields(&Transaction::Withdraw(t.withdraw)),
        }),
        Transaction::StreamOpen(t) => json!({
            "payer": t.body.payer.0,
            "payee": t.body.payee.0,
            "slot": t.body.slot.0,
            "price": t.body.price.get(),
            "max_ticks": t.body.max_ticks.get(),
            "expiry": t.body.expiry.get(),
            "anchor": hx(&t.body.anchor.to_bytes()),
            "fee": t.fee.get(),
            "nonce": t.nonce.get(),
            "valid_until": t.valid_until.get(),
            "signature": hx(&t.signature.to_bytes()),
        }),
        Transaction::StreamSettlePath(t) => json!({
            "payee": t.body.payee.0,
            "payer": t.body.terms.payer.0,
            "slot": t.body.terms.slot.0,
            "from": t.body.terms.from.get(),
            "to": t.body.terms.to.get(),
            "s_to": hx(&t.body.terms.value.to_bytes()),
            "path": t.body.path.iter().map(|d| hx(&d.to_bytes())).collect::<Vec<_>>(),
            "fee": t.fee.get(),
            "nonce": t.nonce.get(),
            "valid_until": t.valid_until.get(),
            "signature": hx(&t.signature.to_bytes()),
        }),
        Transaction::StreamSettle(t) => json!({
            "payee": t.body.payee.0,
            "payer": t.body.terms.payer.0,
            "slot": t.body.terms.slot.0,
            "from": t.body.terms.from.get(),
            "to": t.body.terms.to.get(),
            "t_to": hx(&t.body.terms.value.to_bytes()),
            "fee": t.fee.get(),
            "nonce": t.nonce.get(),
            "valid_until": t.valid_until.get(),
            "signature": hx(&t.signature.to_bytes()),
        }),
        Transaction::Passport(t) => {
            use state::tx::PassportAction;
            let policy = |p: &state::passport::Policy| {
                json!({
                    "cap": p.cap.get(),
                    "window": p.window,
                    "max_payment": p.max_payment.get(),
                    "max_fee": p.max_fee.get(),
                    "expiry": p.expiry.get(),
                    "card_hash": hx(&p.card.hash),
                    "card_uri": p.card.uri(),
                    "allow": p.allow.payees().iter().map(|a| a.0).collect::<Vec<_>>(),
                })
            };
            let action = match &t.action {
                PassportAction::Delegate {
                    agent_key,
                    fund,
                    policy: p,
                } => {
                    json!({"agent_key": hx(&agent_key.to_bytes()), "fund": fund.get(), "policy": policy(p)})
                }
                PassportAction::SetPolicy { agent, policy: p } => {
                    json!({"agent": agent.0, "policy": policy(p)})
                }
                PassportAction::Revoke { agent } => json!({"agent": agent.0}),
                PassportAction::Sweep { agent, amount } => {
                    json!({"agent": agent.0, "amount": amount.get()})
                }
            };
            json!({
                "owner": t.owner.0,
                "action": action,
                "fee": t.fee.get(),
                "nonce": t.nonce.get(),
                "valid_until": t.valid_until.get(),
                "signature": hx(&t.signature.to_bytes()),
            })
        }
        Transaction::RegisterShares(t) => json!({
            "account": t.account.0,
            "shares": t.parts.iter().map(|(to, bps)| json!({"to": to.0, "bps": bps})).collect::<Vec<_>>(),
            "fee": t.fee.get(),
            "nonce": t.nonce.get(),
            "valid_until": t.valid_until.get(),
            "signature": hx(&t.signature.to_bytes()),
        }),
        Transaction::Distribute(t) => json!({
            "signer": t.body.signer.0,
            "account": t.body.account.0,
            "fee": t.fee.get(),
            "nonce": t.nonce.get(),
            "valid_until": t.valid_until.get(),
            "signature": hx(&t.signature.to_bytes()),
        }),
        Transaction::Split(t) => json!({
            "from": t.from.0,
            "parts": t.parts.iter().map(|p| json!({"to": p.to.0, "amount": p.amount.get()})).collect::<Vec<_>>(),
            "fee": t.fee.get(),
            "nonce": t.nonce.get(),
            "valid_until": t.valid_until.get(),
            "signature": hx(&t.signature.to_bytes()),
        }),
        Transaction::StreamClose(t) => json!({
            "signer": t.body.signer.0,
            "payer": t.body.payer.0,
            "slot": t.body.slot.0,
            "fee": t.fee.get(),
            "nonce": t.nonce.get(),
            "valid_until": t.valid_until.get(),
            "signature": hx(&t.signature.to_bytes()),
        }),
    }
}

fn op_entry(op: &PubdataOp) -> Value {
    let bytes = op.to_bytes();
    json!({
        "bytes": hx(&bytes),
        "length": bytes.len(),
        "chunks": elements(&op.chunks()),
    })
}

fn tx_entry(step: &Step, effects: Option<&Effects>) -> Value {
    let d = domain();
    let tx = &step.tx;
    let wire = tx.encode();
    assert_eq!(Transaction::decode(&wire).as_ref(), Ok(tx));
    let mut msg: Vec<F> = d.digest().elements().to_vec();
    msg.extend(tx.to_field_elements(&d));
    let id = tx.id(&d);
    assert_eq!(hash_no_pad(&msg), id.0);
    json!({
        "kind": tx.kind().name(),
        "tag": tx.kind().tag(),
        "signer": step.signer,
        "fields": tx_fields(tx),
        "wire": hx(&wire),
        "wire_length": wire.len(),
        "message_elements": elements(&msg),
        "message_hash": digest(id.0),
        "pubdata": effects.map(|e| op_entry(&e.pubdata)),
    })
}

/// Every decode rejection of SPEC section 9, on mutations of the sequence's transactions.
fn decode_rejections(register: &[u8], transfer: &[u8], withdraw: &[u8], deposit: &[u8]) -> Value {
    let with = |base: &[u8], at: usize, bytes: &[u8]| -> Vec<u8> {
        let mut v = base.to_vec();
        v[at..at + bytes.len()].copy_from_slice(bytes);
        v
    };
    // The smallest w = (v, 0, 0, 0, 0) that is canonical but not a group element.
    let off_curve = (1u64..)
        .map(|v| {
            let mut b = [0u8; 40];
            b[..8].copy_from_slice(&v.to_le_bytes());
            b
        })
        .find(|b| PublicKey::from_bytes(b) == Err(KeyError::NotOnCurve))
        .unwrap();
    let mut n_bytes = [0u8; 40];
    for (i, l) in state::crypto::scalar::N.iter().enumerate() {
        n_bytes[8 * i..8 * i + 8].copy_from_slice(&l.to_le_bytes());
    }
    let mut long = transfer.to_vec();
    long.push(0);
    let too_big = (MAX_U63 + 1).to_le_bytes();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty input", vec![]),
        ("tag 0", vec![0]),
        ("tag 6", with(deposit, 0, &[6])),
        (
            "transfer truncated by one byte",
            transfer[..transfer.len() - 1].to_vec(),
        ),
        ("transfer with one trailing byte", long),
        (
            "register: public key limb 0 = 2^64 - 1",
            with(register, 1, &[0xff; 8]),
        ),
        (
            "register: public key w = 0 (neutral)",
            with(register, 1, &[0; 40]),
        ),
        (
            "register: public key not a group element",
            with(register, 1, &off_curve),
        ),
        ("register: valid_until = 2^63", with(register, 41, &too_big)),
        ("transfer: amount = 2^63", with(transfer, 9, &too_big)),
        ("transfer: fee = 2^64 - 1", with(transfer, 17, &[0xff; 8])),
        ("transfer: nonce = 2^63", with(transfer, 25, &too_big)),
        ("withdraw: valid_until = 2^63", with(withdraw, 49, &too_big)),
        (
            "transfer: signature e limb 0 = p",
            with(transfer, 41, &P.to_le_bytes()),
        ),
        (
            "withdraw: signature s = n",
            with(withdraw, 57 + 32, &n_bytes),
        ),
        ("deposit: seq = 2^63", with(deposit, 1, &too_big)),
        ("deposit: amount = 2^64 - 1", with(deposit, 13, &[0xff; 8])),
    ];
    Value::Array(
        cases
            .into_iter()
            .map(|(case, bytes)| {
                let err = Transaction::decode(&bytes).expect_err(case);
                let mut v = decode_error(&err);
                v["case"] = json!(case);
                v["wire"] = json!(hx(&bytes));
                v
            })
            .collect(),
    )
}

fn pubdata_error(e: &PubdataError) -> Value {
    match e {
        PubdataError::Truncated => json!({ "error": "TRUNCATED" }),
        PubdataError::UnknownTag(_) => json!({ "error": "UNKNOWN_TAG" }),
        PubdataError::PublicKey(k) => json!({ "error": format!("PUBLIC_KEY_{}", k.code()) }),
        PubdataError::OutOfRange(_) => json!({ "error": "OUT_OF_RANGE" }),
        PubdataError::BadStatus(_) => json!({ "error": "BAD_STATUS" }),
        PubdataError::ForcedWithdraw(d) | PubdataError::Stream(d) => json!({ "error": d.code() }),
    }
}

/// Every blob rejection of SPEC section 10, on mutations of the sequence's ops.
fn pubdata_rejections(blob: &[u8], register: &[u8], transfer: &[u8], deposit: &[u8]) -> Value {
    let with = |base: &[u8], at: usize, bytes: &[u8]| -> Vec<u8> {
        let mut v = base.to_vec();
        v[at..at + bytes.len()].copy_from_slice(bytes);
        v
    };
    let too_big = (MAX_U63 + 1).to_le_bytes();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "blob without its last byte",
            blob[..blob.len() - 1].to_vec(),
        ),
        ("tag 0", vec![0]),
        ("tag 6 after a valid op", [transfer, &[6]].concat()),
        ("register op: public key w = 0", with(register, 5, &[0; 40])),
        (
            "register op: public key limb 0 = 2^64 - 1",
            with(register, 5, &[0xff; 8]),
        ),
        ("transfer op: fee = 2^63", with(transfer, 17, &too_big)),
        ("deposit op: seq = 2^63", with(deposit, 1, &too_big)),
        ("deposit op: status 2", with(deposit, 21, &[2])),
    ];
    Value::Array(
        cases
            .into_iter()
            .map(|(case, bytes)| {
                let err = decode_ops(&bytes).expect_err(case);
                let mut v = pubdata_error(&err);
                v["case"] = json!(case);
                v["blob"] = json!(hx(&bytes));
                v
            })
            .collect(),
    )
}

fn accounts_snapshot(s: &State) -> Value {
    Value::Array(
        s.accounts()
            .iter()
            .enumerate()
            .map(|(i, a)| json!({ "index": i, "balance": a.balance.get(), "nonce": a.nonce.get() }))
            .collect(),
    )
}

fn proof_entry(s: &mut State, index: u32) -> Value {
    let root = s.root();
    let leaf = s
        .account(AccountIndex(index))
        .map_or(Digest::ZERO, |a| a.leaf_hash());
    let proof = s.proof(AccountIndex(index));
    assert!(proof.verify(root, index, leaf));
    json!({
        "index": index,
        "leaf": digest(leaf),
        "root": digest(root),
        "siblings": proof.siblings.iter().map(|d| digest(*d)).collect::<Vec<_>>(),
    })
}

fn build() -> Value {
    let d = domain();
    let ctx = BlockContext::at(ts(NOW));
    let operator = secret_key("operator");
    let mut st = State::genesis(d, operator.public_key());

    let empty = empty_hashes();
    let genesis_root = st.root();
    let mut steps = vec![json!({
        "step": 0,
        "label": "genesis: operator account 0",
        "outcome": "genesis",
        "root": digest(genesis_root),
        "accounts": accounts_snapshot(&st),
        "next_deposit_seq": 0,
    })];

    let script = script();
    let mut effects: Vec<Option<Effects>> = Vec::new();
    let mut ops = Vec::new();
    let mut op_entries = Vec::new();
    let mut pc = PubdataCommitment::new();
    let mut withdrawals = Vec::new();
    let mut wc = WithdrawalsCommitment::new();
    for (i, step) in script.iter().enumerate() {
        let before = st.root();
        let before_accounts = st.accounts().to_vec();
        let result = st.apply(&step.tx, &ctx);
        let root = st.root();
        let mut entry = json!({
            "step": i + 1,
            "label": step.label,
            "kind": step.tx.kind().name(),
            "wire": hx(&step.tx.encode()),
            "id": digest(step.tx.id(&d).0),
            "root": digest(root),
            "accounts": accounts_snapshot(&st),
            "next_deposit_seq": st.next_deposit_seq(),
        });
        match &result {
            Ok(e) => {
                entry["outcome"] = json!("accepted");
                entry["pubdata"] = json!(hx(&e.pubdata.to_bytes()));
                if let Some(dep) = e.deposit {
                    let credited = dep == state::apply::DepositOutcome::Credited;
                    entry["deposit_status"] = json!(if credited { "credited" } else { "refunded" });
                }
                if let Some(f) = e.forced {
                    entry["forced_status"] = json!(f.status() as u8);
                    entry["forced_code"] = json!(f.status().code());
                }
                pc.absorb(&e.pubdata);
                ops.push(e.pubdata.clone());
                let mut op = op_entry(&e.pubdata);
                op["step"] = json!(i + 1);
                op["commitment"] = digest(pc.digest());
                op_entries.push(op);
                if let Some(w) = e.withdrawal {
                    wc.absorb(&w);
                    withdrawals.push(json!({
                        "step": i + 1,
                        "from": w.from.0,
                        "to_l1": hx(&w.to_l1.0),
                        "amount": w.amount.get(),
                        "elements": elements(&w.to_field_elements()),
                        "commitment": digest(wc.digest()),
                    }));
                }
            }
            Err(r) => {
                assert_eq!(root, before, "a rejection leaves the root unchanged");
                assert_eq!(st.accounts(), &before_accounts[..]);
                entry["outcome"] = json!("rejected");
                entry["code"] = json!(r.code());
            }
        }
        assert_eq!(
            st.deposited(),
            st.total_balance() + st.withdrawn(),
            "supply is conserved"
        );
        steps.push(entry);
        effects.push(result.ok());
    }
    let outcomes: Vec<&str> = steps.iter().filter_map(|s| s["outcome"].as_str()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "rejected").count(), 4);

    // One transaction of each kind, taken from the sequence.
    let pick = |i: usize| tx_entry(&script[i], effects[i].as_ref());
    let wires: Vec<Vec<u8>> = [0, 5, 7, 2]
        .iter()
        .map(|&i| script[i].tx.encode())
        .collect();
    let transactions = json!({
        "register": pick(0),
        "transfer": pick(5),
        "withdraw": pick(7),
        "deposit": pick(2),
        "deposit_refunded": pick(4),
        "forced_withdraw": pick(8),
        "forced_withdraw_rejected": pick(9),
        "decode_rejections": decode_rejections(&wires[0], &wires[1], &wires[2], &wires[3]),
    });

    let leaves: Vec<Value> = st
        .accounts()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let el = a.to_field_elements();
            assert_eq!(hash_no_pad(&el), a.leaf_hash());
            json!({
                "index": i,
                "pubkey": hx(&a.pubkey.to_bytes()),
                "balance": a.balance.get(),
                "nonce": a.nonce.get(),
                "ext": digest(a.ext),
                "elements": elements(&el),
                "leaf": digest(a.leaf_hash()),
            })
        })
        .collect();
    assert_eq!(st.account(OPERATOR).unwrap().pubkey, operator.public_key());

    let tree = json!({
        "depth": DEPTH,
        "empty_subtree": empty.iter().map(|e| digest(*e)).collect::<Vec<_>>(),
        "empty_root": digest(empty[DEPTH]),
        "block_timestamp": NOW,
        "steps": steps,
        "proofs": [proof_entry(&mut st, 2), proof_entry(&mut st, 9)],
    });

    let blob = encode_ops(&ops);
    assert_eq!(decode_ops(&blob).unwrap(), ops);
    let records: Vec<WithdrawalRecord> = effects
        .iter()
        .flatten()
        .filter_map(|e| e.withdrawal)
        .collect();
    assert_eq!(
        state::pubdata::withdrawals_commitment(&records),
        wc.digest()
    );
    let op_bytes = |i: usize| ops[i].to_bytes();
    let pubdata = json!({
        "decode_rejections": pubdata_rejections(&blob, &op_bytes(0), &op_bytes(5), &op_bytes(2)),
        "ops": op_entries,
        "blob": hx(&blob),
        "commitment": digest(pc.digest()),
        "withdrawals": withdrawals,
        "withdrawals_commitment": digest(wc.digest()),
    });

    let supply = json!({
        "deposited": st.deposited() as u64,
        "withdrawn": st.withdrawn() as u64,
        "total_balance": st.total_balance() as u64,
    });
    // Last: the exodus world adds a stream to the final state.
    let exodus = exodus_section(&mut st);
    json!({
        "version": "state-v1",
        "about": "Protocol test vectors for docs/SPEC.md (section 12). Generated by state/tests/spec_vectors.rs; do not edit by hand.",
        "poseidon": poseidon_section(),
        "domain": domain_section(),
        "keys": keys_section(),
        "signatures": signatures_section(),
        "exodus": exodus,
        "transactions": transactions,
        "leaves": leaves,
        "tree": tree,
        "pubdata": pubdata,
        "supply": supply,
    })
}

// ---------------------------------------------------------------------------------------------
// Reading the document back as a second implementation would.

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string"))
}

fn dg(v: &Value, key: &str) -> Digest {
    Digest::from_hex(s(v, key)).unwrap_or_else(|| panic!("{key} is not a digest"))
}

fn els(v: &Value) -> Vec<F> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| state::hash::canonical_from_u64(x.as_u64().unwrap()).unwrap())
        .collect()
}

/// Checks that the document's outputs follow from its inputs, using only the document.
fn check_document(doc: &Value) {
    let dom = &doc["domain"]["main"];
    let d = Domain {
        chain_id: dom["chain_id"].as_u64().unwrap(),
        rollup: unhex(s(dom, "rollup")).try_into().unwrap(),
    };
    assert_eq!(hash_no_pad(&els(&dom["elements"])), dg(dom, "digest"));
    assert_eq!(d.digest(), dg(dom, "digest"));

    for k in doc["keys"].as_array().unwrap() {
        let sk = SecretKey::from_bytes(&unhex(s(k, "secret")).try_into().unwrap()).unwrap();
        assert_eq!(hx(&sk.public_key().to_bytes()), s(k, "public"));
    }
    for v in doc["signatures"]["valid"].as_array().unwrap() {
        let pk = PublicKey::from_hex(s(v, "public")).unwrap();
        let m = MessageHash(dg(v, "message"));
        let sig = unhex(s(v, "signature"));
        assert_eq!(check_signature(&pk, &m, &sig), ("verify", "OK".to_string()));
    }
    for v in doc["signatures"]["invalid"].as_array().unwrap() {
        let pk = PublicKey::from_hex(s(v, "public")).unwrap();
        let m = MessageHash(dg(v, "message"));
        let got = check_signature(&pk, &m, &unhex(s(v, "signature")));
        assert_eq!(got.0, s(v, "stage"));
        assert_eq!(got.1, s(v, "error"));
    }
    for kind in [
        "register",
        "transfer",
        "withdraw",
        "deposit",
        "deposit_refunded",
    ] {
        let t = &doc["transactions"][kind];
        let tx = Transaction::decode(&unhex(s(t, "wire"))).unwrap();
        let msg = els(&t["message_elements"]);
        assert_eq!(hash_no_pad(&msg), dg(t, "message_hash"));
        assert_eq!(tx.id(&d).0, dg(t, "message_hash"));
        let ops = decode_ops(&unhex(s(&t["pubdata"], "bytes"))).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(elements(&ops[0].chunks()), t["pubdata"]["chunks"]);
    }
    for r in doc["transactions"]["decode_rejections"].as_array().unwrap() {
        let err = Transaction::decode(&unhex(s(r, "wire"))).unwrap_err();
        assert_eq!(decode_error(&err)["error"], r["error"]);
    }
    let mut tree = state::smt::SparseMerkleTree::new();
    for l in doc["leaves"].as_array().unwrap() {
        assert_eq!(hash_no_pad(&els(&l["elements"])), dg(l, "leaf"));
        tree.set(l["index"].as_u64().unwrap() as u32, dg(l, "leaf"));
    }
    let steps = doc["tree"]["steps"].as_array().unwrap();
    assert_eq!(tree.root(), dg(steps.last().unwrap(), "root"));
    for p in doc["tree"]["proofs"].as_array().unwrap() {
        let mut cur = dg(p, "leaf");
        let index = p["index"].as_u64().unwrap();
        for (level, sib) in p["siblings"].as_array().unwrap().iter().enumerate() {
            let sib = Digest::from_hex(sib.as_str().unwrap()).unwrap();
            cur = if (index >> level) & 1 == 0 {
                two_to_one(cur, sib)
            } else {
                two_to_one(sib, cur)
            };
        }
        assert_eq!(cur, dg(p, "root"));
    }
    let pd = &doc["pubdata"];
    for r in pd["decode_rejections"].as_array().unwrap() {
        let err = decode_ops(&unhex(s(r, "blob"))).unwrap_err();
        assert_eq!(pubdata_error(&err)["error"], r["error"]);
    }
    let ops = decode_ops(&unhex(s(pd, "blob"))).unwrap();
    let mut c = Digest::ZERO;
    for op in &ops {
        let bytes = op.to_bytes();
        let mut input = c.elements().to_vec();
        input.push(F::from_canonical_usize(bytes.len()));
        input.extend(op.chunks());
        c = hash_no_pad(&input);
    }
    assert_eq!(c, dg(pd, "commitment"));
    let mut w = Digest::ZERO;
    for r in pd["withdrawals"].as_array().unwrap() {
        let mut input = w.elements().to_vec();
        input.extend(els(&r["elements"]));
        w = hash_no_pad(&input);
        assert_eq!(w, dg(r, "commitment"));
    }
    assert_eq!(w, dg(pd, "withdrawals_commitment"));
}

// ---------------------------------------------------------------------------------------------

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/state-v1.json")
}

#[test]
fn spec_vectors_match_the_committed_file() {
    let doc = canonical(build());
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    check_document(&serde_json::from_str(&text).unwrap());
    compare_with_committed(&vectors_path(), &text);
}

/// Writes `text` to `path` under `UPDATE_VECTORS=1`; otherwise requires the committed file to
/// equal it byte for byte.
fn compare_with_committed(path: &std::path::Path, text: &str) {
    if std::env::var("UPDATE_VECTORS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}).\nIf the protocol changed intentionally, regenerate it with\n  {UPDATE_COMMAND}\nand commit the result.",
            path.display()
        )
    });
    if committed != text {
        let first = text
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b);
        let detail = match first {
            Some(i) => format!(
                "first difference at line {}:\n  generated: {}\n  committed: {}",
                i + 1,
                text.lines().nth(i).unwrap(),
                committed.lines().nth(i).unwrap()
            ),
            None => format!(
                "the generated file has {} lines, the committed one {} (or line endings differ)",
                text.lines().count(),
                committed.lines().count()
            ),
        };
        panic!(
            "{} differs from the vectors the implementation generates.\n\
             {detail}\n\
             If this change to the protocol is intentional, regenerate the file with\n  \
             {UPDATE_COMMAND}\nand commit it; otherwise the implementation broke compatibility.",
            path.display()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Settlement vectors (SPEC 15.2, 15.3, 15.5): docs/vectors/settlement-v1.json, read by the
// Solidity tests (bridge/contracts/test) so that the contract and the reference agree.

fn settlement_document() -> Value {
    use state::settlement::{
        payout_leaf, BatchStatement, Payout, PayoutTree, PriorityEntry, REFUND_FROM_BASE,
    };
    let depositor = L1Address(addr("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"));
    // A real signed withdraw (alice's account 1), as `requestForcedWithdrawal` would queue it.
    let withdraw = UnsignedWithdraw {
        from: AccountIndex(1),
        to_l1: L1Address(addr(WITHDRAW_TO)),
        amount: Amount::new(1_000).unwrap(),
        fee: Amount::new(0).unwrap(),
        nonce: Nonce::new(2).unwrap(),
        valid_until: Timestamp::new(NOW + 3_600).unwrap(),
    }
    .sign(&domain(), &secret_key("alice"));
    let withdraw_tx = Transaction::Withdraw(withdraw).encode();
    let entries = vec![
        PriorityEntry::Deposit {
            serial: 0,
            depositor,
            recipient: 1,
            amount: 5_000_000,
        },
        PriorityEntry::Deposit {
            serial: 1,
            depositor: L1Address(addr(WITHDRAW_TO)),
            recipient: 0xffff_ffff,
            amount: MAX_U63,
        },
        PriorityEntry::ForcedWithdrawal {
            serial: 2,
            requested_at: NOW + 12,
            withdraw_tx,
        },
    ];
    let mut h = [0u8; 32];
    let mut hashes = vec![h];
    let mut priority = Vec::new();
    for e in &entries {
        let prev = h;
        h = e.chain(&prev);
        hashes.push(h);
        let mut v = match e {
            PriorityEntry::Deposit {
                serial,
                depositor,
                recipient,
                amount,
            } => json!({"kind": "deposit", "serial": serial, "depositor": hx(&depositor.0),
                        "recipient": recipient, "amount": amount.to_string()}),
            PriorityEntry::ForcedWithdrawal {
                serial,
                requested_at,
                withdraw_tx,
            } => json!({"kind": "forced", "serial": serial, "requestedAt": requested_at,
                        "withdrawTx": hx(withdraw_tx)}),
        };
        v["prev"] = json!(hx(&prev));
        v["entry"] = json!(hx(&e.encode()));
        v["next"] = json!(hx(&h));
        // Independent of `chain`: the message is the previous hash then the entry.
        let mut msg = prev.to_vec();
        msg.extend(e.encode());
        assert_eq!(sha2_digest(&msg), h);
        priority.push(v);
    }

    let payouts = vec![
        Payout {
            from: 1,
            to: L1Address(addr(WITHDRAW_TO)),
            amount: 1_000,
        },
        Payout {
            from: 7,
            to: depositor,
            amount: 300_000,
        },
        Payout {
            from: REFUND_FROM_BASE + 1,
            to: L1Address(addr(WITHDRAW_TO)),
            amount: MAX_U63,
        },
    ];
    let batch = 3;
    let tree = PayoutTree::new(batch, &payouts);
    let payout_doc = json!([{
        "batch": batch,
        "payouts": payouts.iter().map(|p| json!({"from": p.from, "to": hx(&p.to.0),
                                                 "amount": p.amount.to_string()})).collect::<Vec<_>>(),
        "leaves": payouts.iter().enumerate()
            .map(|(i, p)| hx(&payout_leaf(batch, i as u64, p))).collect::<Vec<_>>(),
        "root": hx(&tree.root()),
        "proofs": (0..payouts.len())
            .map(|i| tree.proof(i).iter().map(|h| hx(h)).collect::<Vec<_>>()).collect::<Vec<_>>(),
    }]);
    // Independent of `payout_leaf`: the 52 packed bytes.
    let mut leaf0 = Vec::new();
    leaf0.extend(batch.to_be_bytes());
    leaf0.extend(0u64.to_be_bytes());
    leaf0.extend(1u64.to_be_bytes());
    leaf0.extend(addr(WITHDRAW_TO));
    leaf0.extend(1_000u64.to_be_bytes());
    assert_eq!(sha2_digest(&leaf0), payout_leaf(batch, 0, &payouts[0]));

    let st = BatchStatement {
        chain_id: 31337,
        rollup: L1Address(addr(ROLLUP)),
        batch_number: batch,
        old_root: empty_hashes()[DEPTH].to_bytes(),
        new_root: hash_no_pad(&[F::ONE]).to_bytes(),
        diff_hash: state::settlement::diff_hash(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        payout_root: tree.root(),
        first_priority_op: 0,
        next_priority_op: 3,
        priority_hash_before: hashes[0],
        priority_hash_after: hashes[3],
        timestamp: NOW + 30,
    };
    assert_eq!(sha2_digest(&st.encode()), st.hash());
    let statement = json!([{
        "chainId": st.chain_id, "rollup": hx(&st.rollup.0), "batchNumber": st.batch_number,
        "oldRoot": hx(&st.old_root), "newRoot": hx(&st.new_root), "diffHash": hx(&st.diff_hash),
        "payoutRoot": hx(&st.payout_root), "firstPriorityOp": st.first_priority_op,
        "nextPriorityOp": st.next_priority_op, "priorityHashBefore": hx(&st.priority_hash_before),
        "priorityHashAfter": hx(&st.priority_hash_after), "timestamp": st.timestamp,
        "encoded": hx(&st.encode()), "hash": hx(&st.hash()),
        "publicWords": st.public_words().to_vec(),
    }]);
    json!({
        "comment": "SPEC 15.2 (priority chain), 15.3 (statement), 15.5 (payout tree); generated by state/tests/spec_vectors.rs. Amounts are decimal strings (they can exceed 2^53).",
        "priority": priority,
        "statement": statement,
        "payouts": payout_doc,
    })
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

#[test]
fn settlement_vectors_match_the_committed_file() {
    let text = serde_json::to_string_pretty(&settlement_document()).unwrap() + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/settlement-v1.json");
    compare_with_committed(&path, &text);
}
