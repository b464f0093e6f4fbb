//! Known answers against the `sha2` crate (FIPS 180-4 vectors and random messages), through a
//! real proof, and the row count of one compression.

use plonky2::field::types::{Field, PrimeField64};
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::CircuitConfig;
use rand::{Rng, SeedableRng};
use sha2::{Digest as _, Sha256};

use super::*;
use crate::{C, D, F};

fn words_to_bytes(words: &[F]) -> Vec<u8> {
    words
        .iter()
        .flat_map(|w| (w.to_canonical_u64() as u32).to_be_bytes())
        .collect()
}

#[test]
fn known_answers_through_a_proof() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut messages: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"abc".to_vec(),
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
        vec![0xff; 55],
        vec![0xff; 56],
        vec![0xff; 64],
    ];
    for len in [1usize, 33, 119, 150] {
        messages.push((0..len).map(|_| rng.gen()).collect());
    }
    let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let mut cases = Vec::new();
    for m in &messages {
        let bytes: Vec<Target> = m
            .iter()
            .map(|_| {
                let t = b.add_virtual_target();
                b.range_check(t, 8);
                t
            })
            .collect();
        let out = sha256_bytes(&mut b, &bytes);
        b.register_public_inputs(&out);
        cases.push(bytes);
    }
    let data = b.build::<C>();
    let mut pw = PartialWitness::new();
    for (m, targets) in messages.iter().zip(&cases) {
        for (&byte, &t) in m.iter().zip(targets) {
            pw.set_target(t, F::from_canonical_u8(byte)).unwrap();
        }
    }
    let proof = data.prove(pw).expect("honest witness");
    data.verify(proof.clone()).expect("verifies");
    for (i, m) in messages.iter().enumerate() {
        let got = words_to_bytes(&proof.public_inputs[8 * i..8 * i + 8]);
        assert_eq!(
            got,
            Sha256::digest(m).to_vec(),
            "message {i} ({} bytes)",
            m.len()
        );
    }
}

#[test]
fn compression_matches_the_reference_on_arbitrary_states() {
    // The compression function alone, from non-IV chaining values (the way a second block
    // sees it), against sha2's `compress256`.
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let state: [Target; 8] = core::array::from_fn(|_| b.add_virtual_target());
    let block: [Target; 16] = core::array::from_fn(|_| b.add_virtual_target());
    for &t in state.iter().chain(&block) {
        b.range_check(t, 32);
    }
    let out = compress(&mut b, &state, &block);
    b.register_public_inputs(&out);
    let data = b.build::<C>();

    let s: [u32; 8] = core::array::from_fn(|_| rng.gen());
    let blk: [u8; 64] = core::array::from_fn(|_| rng.gen());
    let mut pw = PartialWitness::new();
    for (t, v) in state.iter().zip(s) {
        pw.set_target(*t, F::from_canonical_u32(v)).unwrap();
    }
    for (i, t) in block.iter().enumerate() {
        let v = u32::from_be_bytes(blk[4 * i..4 * i + 4].try_into().unwrap());
        pw.set_target(*t, F::from_canonical_u32(v)).unwrap();
    }
    let proof = data.prove(pw).expect("honest witness");
    let mut want = s;
    sha2::compress256(&mut want, &[blk.into()]);
    let got: Vec<u32> = proof
        .public_inputs
        .iter()
        .map(|x| x.to_canonical_u64() as u32)
        .collect();
    assert_eq!(got, want.to_vec());
}

#[test]
fn a_claimed_digest_that_is_not_the_hash_has_no_proof() {
    // The circuit states "sha256(bytes) = expected" with `expected` a witness; the attacker
    // supplies the digest of other bytes. Witness generation computes the true digest and the
    // copy constraint to `expected` cannot hold.
    let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let bytes: Vec<Target> = (0..3)
        .map(|_| {
            let t = b.add_virtual_target();
            b.range_check(t, 8);
            t
        })
        .collect();
    let expected: [Target; 8] = core::array::from_fn(|_| b.add_virtual_target());
    let out = sha256_bytes(&mut b, &bytes);
    for (x, y) in out.iter().zip(&expected) {
        b.connect(*x, *y);
    }
    let data = b.build::<C>();
    let other = Sha256::digest(b"abd");
    let mut pw = PartialWitness::new();
    for (t, v) in bytes.iter().zip(b"abc") {
        pw.set_target(*t, F::from_canonical_u8(*v)).unwrap();
    }
    for (i, t) in expected.iter().enumerate() {
        let v = u32::from_be_bytes(other[4 * i..4 * i + 4].try_into().unwrap());
        pw.set_target(*t, F::from_canonical_u32(v)).unwrap();
    }
    assert!(data.prove(pw).is_err());
}

#[test]
fn rows_per_block() {
    let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let state = iv(&mut b);
    let block: [Target; 16] = core::array::from_fn(|_| b.add_virtual_target());
    // Warm-up: constants and the first arithmetic rows are shared across blocks.
    let mid = compress(&mut b, &state, &block);
    let before = b.num_gates();
    compress(&mut b, &mid, &block);
    let rows = b.num_gates() - before;
    println!("sha256: {rows} rows per compression (64-byte block)");
    // 64 + 64 + 48 custom-gate rows, 8 final-addition splits, and the K_t + W_t additions.
    assert!((176..=200).contains(&rows), "{rows} rows per block");
}
