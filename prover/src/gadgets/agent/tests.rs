//! The agent gadgets against the native definitions: bytes and leaf of real streams (extreme
//! values included), book roots of real books, `ext` in each of its cases; and the values no
//! decoder accepts, which must have no proof.

use plonky2::field::types::{Field, PrimeField64};
use plonky2::iop::witness::PartialWitness;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use state::account::{AccountIndex, Amount, Nonce, Timestamp, MAX_U63};
use state::hash::Digest;
use state::stream::{PayerStreams, StreamId, StreamSlot, TickCount};

use super::*;
use crate::C;

fn stream(slot: u16, price: u64, max_ticks: u32, settled: u32, head: Digest) -> Stream {
    Stream {
        id: StreamId {
            payer: AccountIndex(4),
            slot: StreamSlot(slot),
            opened_at: Nonce::new(MAX_U63 - u64::from(slot)).unwrap(),
        },
        payee: AccountIndex(u32::MAX - 1),
        price: Amount::new(price).unwrap(),
        max_ticks: TickCount::new(max_ticks).unwrap(),
        expiry: Timestamp::new(MAX_U63).unwrap(),
        settled: TickCount::new(settled).unwrap(),
        head,
    }
}

fn streams() -> Vec<Stream> {
    let top = F::NEG_ONE;
    vec![
        stream(0, 1, 1, 0, Digest::ZERO),
        stream(7, MAX_U63 / (1 << 24), 1 << 24, 1 << 24, Digest([top; 4])),
        stream(
            u16::MAX,
            250,
            1_000,
            40,
            state::hash::hash_no_pad(&[F::from_canonical_u64(6)]),
        ),
    ]
}

/// A circuit stating a stream's 68 bytes and its leaf.
fn fields_circuit() -> (CircuitData<F, C, D>, StreamFieldsTarget) {
    let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let t = StreamFieldsTarget::new(&mut b);
    let bytes = t.bytes(&mut b);
    b.register_public_inputs(&bytes);
    let leaf = t.leaf(&mut b);
    b.register_public_inputs(&leaf.elements);
    (b.build::<C>(), t)
}

#[test]
fn a_streams_bytes_and_leaf_are_the_native_ones() {
    let (data, t) = fields_circuit();
    for s in streams() {
        let mut pw = PartialWitness::new();
        t.set(&mut pw, &s).unwrap();
        let proof = data.prove(pw).unwrap();
        let bytes: Vec<u8> = proof.public_inputs[..68]
            .iter()
            .map(|x| u8::try_from(x.to_canonical_u64()).unwrap())
            .collect();
        let mut native = Vec::new();
        s.write_fields(&mut native);
        assert_eq!(bytes, native, "slot {}", s.id.slot.0);
        assert_eq!(
            proof.public_inputs[68..],
            s.leaf_hash().elements(),
            "the leaf"
        );
        data.verify(proof).unwrap();
    }
}

#[test]
fn values_no_decoder_accepts_have_no_proof() {
    let (data, t) = fields_circuit();
    let honest = streams()[2].to_field_elements();
    let mut pw = PartialWitness::new();
    t.set_elements(&mut pw, &honest).unwrap();
    assert!(data.prove(pw).is_ok(), "the control proves");
    // Positions in `Stream::to_field_elements`: payee, price, max_ticks, expiry, opened_at,
    // settled. 63-bit fields at 2^63 and 32-bit ones at 2^32.
    let cases = [
        ("price", 1, F::from_canonical_u64(1 << 63)),
        ("expiry", 3, F::from_canonical_u64(1 << 63)),
        (
            "opened_at",
            4,
            F::from_canonical_u64(u64::MAX - (1 << 32) + 1 - 1),
        ),
        ("payee", 0, F::from_canonical_u64(1 << 32)),
        ("max_ticks", 2, F::from_canonical_u64(1 << 32)),
        ("settled", 5, F::from_canonical_u64(1 << 32)),
    ];
    for (name, at, value) in cases {
        let mut e = honest;
        e[at] = value;
        let mut pw = PartialWitness::new();
        t.set_elements(&mut pw, &e).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| data.prove(pw)));
        assert!(!matches!(r, Ok(Ok(_))), "{name} = {value}: a proof exists");
    }
}

#[test]
fn book_roots_and_ext_are_the_native_ones() {
    let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let fields = StreamFieldsTarget::new(&mut b);
    let leaf = fields.leaf(&mut b);
    let slot = b.add_virtual_target();
    let bits = b.split_le(slot, SLOT_DEPTH);
    let path: Vec<HashOutTarget> = (0..SLOT_DEPTH).map(|_| b.add_virtual_hash()).collect();
    let root = book_root(&mut b, leaf, &bits, &path);
    let profile = b.add_virtual_hash();
    let ext = ext_digest(&mut b, root, profile);
    b.register_public_inputs(&root.elements);
    b.register_public_inputs(&ext.elements);
    // The ext of an empty book, for the empty case (no leaf to open there).
    let empty = empty_book(&mut b);
    let empty_ext = ext_digest(&mut b, empty, profile);
    b.register_public_inputs(&empty_ext.elements);
    let data = b.build::<C>();

    let mut book = PayerStreams::default();
    for s in streams() {
        book.put(s);
    }
    let shares = state::hash::hash_no_pad(&[F::from_canonical_u64(19)]);
    for s in streams() {
        for profile_digest in [Digest::ZERO, shares] {
            let mut pw = PartialWitness::new();
            fields.set(&mut pw, &s).unwrap();
            pw.set_target(slot, F::from_canonical_u16(s.id.slot.0))
                .unwrap();
            for (t, d) in path.iter().zip(book.path(s.id.slot)) {
                pw.set_hash_target(*t, d.into()).unwrap();
            }
            pw.set_hash_target(profile, profile_digest.into()).unwrap();
            let proof = data.prove(pw).unwrap();
            let got = |at: usize| Digest(proof.public_inputs[at..at + 4].try_into().unwrap());
            assert_eq!(got(0), book.root(), "root, slot {}", s.id.slot.0);
            assert_eq!(got(4), state::ext::ext_digest(book.root(), profile_digest));
            let empty_native = state::ext::ext_digest(empty_hashes()[SLOT_DEPTH], profile_digest);
            assert_eq!(got(8), empty_native);
            assert_eq!(
                got(8) == Digest::ZERO,
                profile_digest == Digest::ZERO,
                "ZERO exactly for an empty book and profile"
            );
            data.verify(proof).unwrap();
        }
    }
}
