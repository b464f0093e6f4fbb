//! An agent card's digest (SPEC 20.2) in-circuit, over a URI of any length up to 255 bytes:
//! the other variable-length piece of a policy's body that the grouped diff needs (SPEC 20.9,
//! "Diff circuit"; not wired into it yet), beside [`super::allow`].
//!
//! ```text
//! card = hash_no_pad(TAG_CARD, h_0..h_7, len, u_0..u_{k-1})     k = ceil(len / 7)
//! ```
//!
//! `hash_no_pad` absorbs eight elements per permutation, overwriting the state's rate, the last
//! block only as far as the input goes. Here the input has `m = 10 + k` elements, 10 to 47: the
//! gadget runs the sponge over six blocks where each position overwrites the state only while
//! it is below `m` (a suffix sum of the one-hot `k`), and takes the output after block
//! `ceil(m / 8) - 1`. `k` is bound to `len` (`7k - 6 <= len <= 7k`, `len` a byte), so the
//! caller only supplies the URI's 7-byte chunks as it read them.
//!
//! Cost: six permutations, 38 equality tests for the one-hot `k`, 48 selects and the length
//! checks: about 25 rows.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::hashing::PlonkyPermutation;
use plonky2::hash::poseidon::{PoseidonHash, PoseidonPermutation};
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::plonk::circuit_builder::CircuitBuilder;

use crate::{D, F};

/// The most 7-byte chunks a URI of 255 bytes takes.
pub const MAX_URI_CHUNKS: usize = 255usize.div_ceil(7);
/// Elements before the URI's chunks: the tag, the hash's eight words, the length.
const HEAD: usize = 10;
/// Blocks of eight the longest input takes.
const BLOCKS: usize = (HEAD + MAX_URI_CHUNKS).div_ceil(8);

/// The card digest of `hash` (eight little-endian u32 words), a URI of `len` bytes and its
/// chunks (the first `ceil(len / 7)` read; the others are not). Refuses a `len` above 255.
pub fn card_digest(
    b: &mut CircuitBuilder<F, D>,
    hash: &[Target; 8],
    len: Target,
    chunks: &[Target; MAX_URI_CHUNKS],
    k: Target,
) -> HashOutTarget {
    // `len` a byte, and `k = ceil(len / 7)`: `7k - len` in 0..=6.
    b.range_check(len, 8);
    let seven = b.constant(F::from_canonical_u64(7));
    let slack = b.mul_sub(seven, k, len);
    let mut p = b.one();
    for d in 0..7u64 {
        let c = b.constant(F::from_canonical_u64(d));
        let t = b.sub(slack, c);
        p = b.mul(p, t);
    }
    b.assert_zero(p);

    // The one-hot `k` (0..=37: exactly one flag).
    let flags: Vec<BoolTarget> = (0..=MAX_URI_CHUNKS)
        .map(|v| {
            let c = b.constant(F::from_canonical_usize(v));
            b.is_equal(k, c)
        })
        .collect();
    let sum = flags.iter().fold(b.zero(), |acc, f| b.add(acc, f.target));
    let one = b.one();
    b.connect(sum, one);
    // below[t] = [k >= t]: the suffix sums.
    let mut below = vec![b.zero(); MAX_URI_CHUNKS + 2];
    for t in (0..=MAX_URI_CHUNKS).rev() {
        below[t] = b.add(below[t + 1], flags[t].target);
    }

    let mut input = vec![b.constant(F::from_canonical_u64(state::passport::TAG_CARD))];
    input.extend_from_slice(hash);
    input.push(len);
    input.extend_from_slice(chunks);
    let zero = b.zero();
    input.resize(8 * BLOCKS, zero);

    let mut state = PoseidonPermutation::new(core::iter::repeat(zero));
    let mut outputs = Vec::with_capacity(BLOCKS);
    for block in 0..BLOCKS {
        let mut absorbed = [zero; 8];
        for (j, slot) in absorbed.iter_mut().enumerate() {
            let pos = 8 * block + j;
            let current = state.as_ref()[j];
            *slot = if pos < HEAD {
                input[pos]
            } else {
                // Position `pos` is input while `pos < 10 + k`, i.e. `k >= pos - 9`.
                let t = pos - (HEAD - 1);
                match below.get(t) {
                    Some(&is_input) => {
                        b.select(BoolTarget::new_unsafe(is_input), input[pos], current)
                    }
                    None => current,
                }
            };
        }
        state.set_from_slice(&absorbed, 0);
        state = b.permute::<PoseidonHash>(state);
        outputs.push(state.squeeze()[..4].to_vec());
    }
    // The output after block `ceil((10 + k) / 8) - 1`.
    let mut digest = [zero; 4];
    for (v, flag) in flags.iter().enumerate() {
        let last = (HEAD + v).div_ceil(8) - 1;
        for (d, &o) in digest.iter_mut().zip(&outputs[last]) {
            *d = b.mul_add(flag.target, o, *d);
        }
    }
    HashOutTarget { elements: digest }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use plonky2::iop::witness::{PartialWitness, WitnessWrite};
    use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
    use state::hash::Digest;
    use state::passport::Card;

    use super::*;
    use crate::C;

    struct Circuit {
        data: CircuitData<F, C, D>,
        hash: [Target; 8],
        len: Target,
        chunks: [Target; MAX_URI_CHUNKS],
        k: Target,
        digest: HashOutTarget,
    }

    fn circuit() -> &'static Circuit {
        static C: OnceLock<Circuit> = OnceLock::new();
        C.get_or_init(|| {
            let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
            let hash = std::array::from_fn(|_| b.add_virtual_target());
            let len = b.add_virtual_target();
            let chunks = std::array::from_fn(|_| b.add_virtual_target());
            let k = b.add_virtual_target();
            let digest = card_digest(&mut b, &hash, len, &chunks, k);
            b.register_public_inputs(&digest.elements);
            let data = b.build::<C>();
            Circuit {
                data,
                hash,
                len,
                chunks,
                k,
                digest,
            }
        })
    }

    /// Proves the card of `hash` and `uri` with `k` chunks and `claimed` as its digest.
    fn prove(hash: [u8; 32], uri: &[u8], k: usize, claimed: Digest) -> anyhow::Result<()> {
        let c = circuit();
        let mut pw = PartialWitness::new();
        for (t, w) in c.hash.iter().zip(hash.chunks(4)) {
            pw.set_target(*t, F::from_canonical_u32(u32::from_le_bytes(w.try_into()?)))?;
        }
        pw.set_target(c.len, F::from_canonical_usize(uri.len()))?;
        let mut words = uri.chunks(7).map(|ch| {
            let mut le = [0u8; 8];
            le[..ch.len()].copy_from_slice(ch);
            u64::from_le_bytes(le)
        });
        for t in &c.chunks {
            pw.set_target(*t, F::from_canonical_u64(words.next().unwrap_or(0)))?;
        }
        pw.set_target(c.k, F::from_canonical_usize(k))?;
        pw.set_hash_target(c.digest, claimed.into())?;
        let proof = c.data.prove(pw)?;
        c.data.verify(proof)
    }

    fn native(hash: [u8; 32], uri: &[u8]) -> Digest {
        Card::new(hash, String::from_utf8(uri.to_vec()).unwrap())
            .unwrap()
            .digest()
    }

    #[test]
    fn the_sponge_gives_the_native_card_digest_for_every_uri_length() {
        // No URI, one byte, a chunk, a chunk and one, the input ending on a block (k = 6: 16
        // elements) and one past it, the longest.
        let hash = [9u8; 32];
        for n in [0usize, 1, 7, 8, 42, 43, 255] {
            let uri: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            prove(hash, &uri, n.div_ceil(7), native(hash, &uri))
                .unwrap_or_else(|e| panic!("{n} bytes: {e}"));
        }
    }

    #[test]
    fn a_wrong_chunk_count_or_digest_has_no_proof() {
        let hash = [3u8; 32];
        let uri = b"https://agents.example/card.json";
        let honest = native(hash, uri);
        // A chunk count that is not ceil(len / 7): the last chunk left out, one too many.
        assert!(prove(hash, uri, uri.len().div_ceil(7) - 1, honest).is_err());
        assert!(prove(hash, uri, uri.len().div_ceil(7) + 1, honest).is_err());
        // Another URI's digest, another hash's.
        assert!(prove(
            hash,
            uri,
            5,
            native(hash, b"https://agents.example/card.jsoN")
        )
        .is_err());
        assert!(prove(hash, uri, 5, native([4; 32], uri)).is_err());
    }
}
