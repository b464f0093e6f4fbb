//! The in-circuit ECgFp5 Schnorr verifier against the native one, from the attacker's side:
//! a forged, re-targeted or tampered signature must leave no proof, and a proof with a
//! flipped byte must not verify. Curve gates are checked against the shared known-answer
//! vectors.

use std::path::PathBuf;
use std::sync::OnceLock;

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use rand::SeedableRng;
use rollup_prover::gadgets::curve::{EcAddGate, KeyDecodeGate};
use rollup_prover::gadgets::gfp5::{inverse_gfp5, wires5};
use rollup_prover::gadgets::schnorr::{verify_schnorr, SchnorrTargets, DUMMY_KEY_W};
use rollup_prover::{C, D, F};
use state::crypto::gfp5::GFp5;
use state::crypto::schnorr::{MessageHash, PublicKey, SecretKey, Signature};
use state::hash::hash_no_pad;

struct SigCircuit {
    data: CircuitData<F, C, D>,
    pk: [Target; 5],
    msg: HashOutTarget,
    enabled: BoolTarget,
    sig: SchnorrTargets,
    rows: usize,
}

/// One signature check, public inputs = key and message (built once per test binary).
fn circuit() -> &'static SigCircuit {
    static C1: OnceLock<SigCircuit> = OnceLock::new();
    C1.get_or_init(|| {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let pk: [Target; 5] = core::array::from_fn(|_| b.add_virtual_public_input());
        let msg = b.add_virtual_hash_public_input();
        let enabled = b.add_virtual_bool_target_safe();
        let before = b.num_gates();
        let sig = verify_schnorr(&mut b, pk, msg, enabled);
        let rows = b.num_gates() - before;
        let data = b.build::<C>();
        SigCircuit {
            data,
            pk,
            msg,
            enabled,
            sig,
            rows,
        }
    })
}

fn key(seed: u64) -> SecretKey {
    SecretKey::random(&mut rand::rngs::StdRng::seed_from_u64(seed))
}

fn msg(i: u64) -> MessageHash {
    MessageHash(hash_no_pad(&[F::from_canonical_u64(i)]))
}

fn prove(
    pk_w: [F; 5],
    m: &MessageHash,
    sig: Option<&Signature>,
    enabled: bool,
) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
    let c = circuit();
    let mut pw = PartialWitness::new();
    for (t, v) in c.pk.iter().zip(pk_w) {
        pw.set_target(*t, v)?;
    }
    pw.set_hash_target(
        c.msg,
        plonky2::hash::hash_types::HashOut {
            elements: m.0.elements(),
        },
    )?;
    pw.set_bool_target(c.enabled, enabled)?;
    c.sig.set(&mut pw, sig)?;
    // plonky2 panics on some inconsistent witnesses instead of returning an error: both count
    // as "no proof".
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.data.prove(pw)))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("prover panicked")))
}

fn pk_fields(pk: &PublicKey) -> [F; 5] {
    pk.to_field_elements()
}

#[test]
fn rows_per_signature() {
    let c = circuit();
    println!(
        "schnorr verification: {} rows (circuit degree 2^{})",
        c.rows,
        c.data.common.degree_bits()
    );
    // The stretch target; the design needs ~120 (see gadgets::schnorr).
    assert!(c.rows <= 250, "signature gadget grew to {} rows", c.rows);
}

#[test]
fn valid_signature_proves_and_verifies() {
    let sk = key(1);
    let m = msg(7);
    let sig = sk.sign(&m);
    sk.public_key().verify(&m, &sig).expect("native accepts");
    let proof = prove(pk_fields(&sk.public_key()), &m, Some(&sig), true).expect("proves");
    circuit().data.verify(proof.clone()).expect("verifies");

    // One flipped byte anywhere in the serialized proof must not verify.
    let bytes = proof.to_bytes();
    for pos in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 9] {
        let mut bad = bytes.clone();
        bad[pos] ^= 1;
        let ok = ProofWithPublicInputs::<F, C, D>::from_bytes(bad, &circuit().data.common)
            .map(|p| circuit().data.verify(p).is_ok())
            .unwrap_or(false);
        assert!(!ok, "flipped byte at {pos} still verifies");
    }
}

#[test]
fn several_keys_and_messages() {
    for i in 2..5 {
        let sk = key(i);
        let m = msg(100 + i);
        let sig = sk.sign(&m);
        let proof = prove(pk_fields(&sk.public_key()), &m, Some(&sig), true).expect("proves");
        circuit().data.verify(proof).expect("verifies");
    }
}

#[test]
fn forged_signatures_have_no_proof() {
    let sk = key(11);
    let other = key(12);
    let m = msg(1);
    let sig = sk.sign(&m);
    let pk = pk_fields(&sk.public_key());

    // Signed by someone else.
    let forged = other.sign(&m);
    assert!(prove(pk, &m, Some(&forged), true).is_err(), "wrong signer");
    // A valid signature replayed on another message.
    assert!(
        prove(pk, &msg(2), Some(&sig), true).is_err(),
        "other message"
    );
    // Tampered s.
    let mut bytes = sig.to_bytes();
    bytes[40] ^= 1;
    let tampered = Signature::from_bytes(&bytes).expect("still canonical");
    assert!(prove(pk, &m, Some(&tampered), true).is_err(), "tampered s");
    // Tampered e.
    let mut bytes = sig.to_bytes();
    bytes[0] ^= 1;
    let tampered = Signature::from_bytes(&bytes).expect("still canonical");
    assert!(prove(pk, &m, Some(&tampered), true).is_err(), "tampered e");
    // The dummy signature with the check enabled.
    assert!(prove(pk, &m, None, true).is_err(), "dummy when enabled");
}

#[test]
fn disabled_check_accepts_the_dummy_but_needs_a_valid_key() {
    let dummy: [F; 5] = DUMMY_KEY_W.map(F::from_canonical_u64);
    let proof = prove(dummy, &msg(3), None, false).expect("disabled check proves");
    circuit().data.verify(proof).expect("verifies");
    // w = 1 is not the encoding of a group element: no proof, enabled or not.
    let mut bad = [F::ZERO; 5];
    bad[0] = F::ONE;
    assert!(prove(bad, &msg(3), None, false).is_err());
}

// ---------------------------------------------------------------------------------------------
// Known-answer vectors through the curve gates.

fn vectors() -> serde_json::Value {
    let path = std::env::var_os("ROLLUP_SHARED_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/test-vectors/ecgfp5.json")
        });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} ({e})", path.display()));
    serde_json::from_str(&text).expect("vectors parse")
}

fn vector_w(v: &serde_json::Value, name: &str) -> [F; 5] {
    let limbs: Vec<u64> = v["points"][name]
        .as_array()
        .unwrap_or_else(|| panic!("missing {name}"))
        .iter()
        .map(|x| x.as_u64().expect("u64"))
        .collect();
    let g = GFp5::from_u64s(limbs.try_into().expect("5 limbs")).expect("canonical");
    g.to_field_elements()
}

/// decode(a) + decode(b) encodes to `expect`, all through gates.
fn add_vector_holds(a: [F; 5], b_: [F; 5], expect: [F; 5]) -> bool {
    let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let decode = |b: &mut CircuitBuilder<F, D>, w: [F; 5]| {
        let row = b.add_gate(KeyDecodeGate, vec![]);
        for (i, t) in wires5(row, KeyDecodeGate::W).into_iter().enumerate() {
            let c = b.constant(w[i]);
            b.connect(c, t);
        }
        (wires5(row, KeyDecodeGate::X), wires5(row, KeyDecodeGate::U))
    };
    let p = decode(&mut b, a);
    let q = decode(&mut b, b_);
    let row = b.add_gate(EcAddGate, vec![]);
    let conn = |b: &mut CircuitBuilder<F, D>, x: [Target; 5], y: [Target; 5]| {
        for i in 0..5 {
            b.connect(x[i], y[i]);
        }
    };
    conn(&mut b, p.0, wires5(row, EcAddGate::P1_X));
    conn(&mut b, p.1, wires5(row, EcAddGate::P1_U));
    conn(&mut b, q.0, wires5(row, EcAddGate::P2_X));
    conn(&mut b, q.1, wires5(row, EcAddGate::P2_U));
    let w = inverse_gfp5(&mut b, wires5(row, EcAddGate::OUT_U));
    for i in 0..5 {
        let c = b.constant(expect[i]);
        b.connect(c, w[i]);
    }
    let data = b.build::<C>();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        data.prove(PartialWitness::new())
            .and_then(|p| data.verify(p))
            .is_ok()
    }))
    .unwrap_or(false)
}

#[test]
fn curve_gates_reproduce_the_shared_vectors() {
    let v = vectors();
    let p1 = vector_w(&v, "P1");
    let p2 = vector_w(&v, "P2_eP1");
    let p3 = vector_w(&v, "P3_P1_plus_P2");
    let p4 = vector_w(&v, "P4_2P1");
    assert!(add_vector_holds(p1, p2, p3), "P1 + P2 = P3");
    assert!(
        add_vector_holds(p1, p1, p4),
        "P1 + P1 = 2 P1 (complete formula)"
    );
    assert!(!add_vector_holds(p1, p2, p4), "P1 + P2 != 2 P1");
}

#[test]
fn circuit_with_custom_gates_roundtrips_through_the_serializers() {
    use rollup_prover::gadgets::serializer::{RollupGateSerializer, RollupGeneratorSerializer};
    let c = circuit();
    let bytes = c
        .data
        .to_bytes(&RollupGateSerializer, &RollupGeneratorSerializer)
        .expect("serializes");
    let back = CircuitData::<F, C, D>::from_bytes(
        &bytes,
        &RollupGateSerializer,
        &RollupGeneratorSerializer,
    )
    .expect("deserializes");
    assert_eq!(
        back.verifier_only.circuit_digest,
        c.data.verifier_only.circuit_digest
    );
    // The reloaded prover data still proves (generators survived).
    let sk = key(31);
    let m = msg(31);
    let sig = sk.sign(&m);
    let mut pw = PartialWitness::new();
    for (t, v) in c.pk.iter().zip(pk_fields(&sk.public_key())) {
        pw.set_target(*t, v).unwrap();
    }
    pw.set_hash_target(
        c.msg,
        plonky2::hash::hash_types::HashOut {
            elements: m.0.elements(),
        },
    )
    .unwrap();
    pw.set_bool_target(c.enabled, true).unwrap();
    c.sig.set(&mut pw, Some(&sig)).unwrap();
    let proof = back.prove(pw).expect("reloaded circuit proves");
    c.data.verify(proof).expect("and the original verifies it");
}
