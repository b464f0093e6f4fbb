//! A SHA-256 message built from pieces whose lengths are fixed when the circuit is built but
//! which are appended or skipped at proving time (one flag per piece): the state diff of a
//! batch (SPEC 10.4) is a header then a variable number of 20- and 60-byte records.
//!
//! The state is the chaining value, the pending bytes of the current block (`buf`, zero from
//! the first free position on) and that position as a one-hot vector (`pos`). Appending `m`
//! bytes writes byte `i` into a 128-byte window at `len + i` (one multiply-add per byte and
//! candidate position: `64 m` arithmetic operations), compresses the first 64 bytes when the
//! block is full, keeps the rest, and rotates `pos` by `m`. Nothing here is a free witness:
//! every target is computed from the appended bytes and flags, so the invariants (one-hot
//! `pos`, zero tail of `buf`) hold by construction and need no constraint.
//!
//! Cost of one append: one compression (computed whether or not the block fills, 188 rows),
//! about `64 m / 20` arithmetic rows for the placement, 16 for the word packing and about 13
//! for the selections. [`ByteStream::finish`] pads (FIPS 180-4 5.1.1) with three compressions
//! (one final block when fewer than 56 bytes are pending, two otherwise, both computed).

use plonky2::field::types::Field;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::plonk::circuit_builder::CircuitBuilder;

use super::{bytes_to_words, compress, iv, Sha256Words};
use crate::{D, F};

pub struct ByteStream {
    chain: Sha256Words,
    /// The pending bytes of the current block; zero at and after the first free position.
    buf: Vec<Target>,
    /// `pos[k]` iff `k` bytes are pending.
    pos: Vec<BoolTarget>,
    /// Bytes absorbed so far (for the length in the padding).
    total: Target,
}

fn block(b: &mut CircuitBuilder<F, D>, bytes: &[Target]) -> [Target; 16] {
    bytes_to_words(b, bytes)
        .try_into()
        .expect("64 bytes make 16 words")
}

impl ByteStream {
    /// A message starting with `prefix` (range-checked bytes, fewer than 64).
    pub fn new(b: &mut CircuitBuilder<F, D>, prefix: &[Target]) -> ByteStream {
        assert!(prefix.len() < 64, "a prefix shorter than a block");
        let zero = b.zero();
        let mut buf = prefix.to_vec();
        buf.resize(64, zero);
        let pos = (0..64)
            .map(|k| b.constant_bool(k == prefix.len()))
            .collect();
        ByteStream {
            chain: iv(b),
            buf,
            pos,
            total: b.constant(F::from_canonical_usize(prefix.len())),
        }
    }

    /// Appends `bytes` (range-checked, at most 64) if `enabled`.
    pub fn append(&mut self, b: &mut CircuitBuilder<F, D>, bytes: &[Target], enabled: BoolTarget) {
        let m = bytes.len();
        assert!(m <= 64, "at most one block per append");
        let zero = b.zero();
        let mut window = self.buf.clone();
        window.resize(128, zero);
        for (i, &byte) in bytes.iter().enumerate() {
            for (k, p) in self.pos.iter().enumerate() {
                window[k + i] = b.mul_add(byte, p.target, window[k + i]);
            }
        }
        // The block fills iff at least 64 - m bytes were pending.
        let full = self.pos[64 - m..]
            .iter()
            .fold(zero, |acc, p| b.add(acc, p.target));
        let full = BoolTarget::new_unsafe(full);
        let words = block(b, &window[..64]);
        let compressed = compress(b, &self.chain, &words);
        let fill = b.and(enabled, full);
        self.chain = core::array::from_fn(|i| b.select(fill, compressed[i], self.chain[i]));
        self.buf = (0..64)
            .map(|p| {
                let kept = b.select(full, window[64 + p], window[p]);
                b.select(enabled, kept, self.buf[p])
            })
            .collect();
        self.pos = (0..64)
            .map(|j| {
                let moved = self.pos[(j + 64 - m % 64) % 64];
                BoolTarget::new_unsafe(b.select(enabled, moved.target, self.pos[j].target))
            })
            .collect();
        let added = b.mul_const(F::from_canonical_usize(m), enabled.target);
        self.total = b.add(self.total, added);
    }

    /// The number of bytes absorbed.
    pub fn total(&self) -> Target {
        self.total
    }

    /// The digest of the message (padding as FIPS 180-4 5.1.1). The message must be shorter than
    /// 2^32 bytes (its bit length is taken from a 35-bit split).
    pub fn finish(self, b: &mut CircuitBuilder<F, D>) -> Sha256Words {
        let zero = b.zero();
        let mut last = self.buf.clone();
        for (k, p) in self.pos.iter().enumerate() {
            last[k] = b.mul_const_add(F::from_canonical_u32(0x80), p.target, last[k]);
        }
        // The bit length, big-endian in 8 bytes (below 2^35: the top three are zero).
        let bits = b.mul_const(F::from_canonical_u32(8), self.total);
        let bit_le = b.split_le(bits, 40);
        let mut length = vec![zero; 3];
        for k in (0..5).rev() {
            length.push(b.le_sum(bit_le[8 * k..8 * k + 8].iter()));
        }
        // At most 55 pending bytes: the length ends this block (its last 8 bytes are zero).
        let mut one = last.clone();
        one[56..].copy_from_slice(&length);
        let words = block(b, &one);
        let short = compress(b, &self.chain, &words);
        // 56 or more: this block as it is, then one of zeros ending with the length.
        let words = block(b, &last);
        let first = compress(b, &self.chain, &words);
        let mut extra = vec![zero; 56];
        extra.extend_from_slice(&length);
        let words = block(b, &extra);
        let long = compress(b, &first, &words);
        let late = self.pos[56..]
            .iter()
            .fold(zero, |acc, p| b.add(acc, p.target));
        let late = BoolTarget::new_unsafe(late);
        core::array::from_fn(|i| b.select(late, long[i], short[i]))
    }
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::PrimeField64;
    use plonky2::iop::witness::{PartialWitness, WitnessWrite};
    use plonky2::plonk::circuit_data::CircuitConfig;
    use rand::{Rng, SeedableRng};
    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::C;

    #[test]
    fn pieces_appended_or_skipped_hash_like_their_concatenation() {
        // A 13-byte prefix, then pieces of 20 and 60 bytes, each on or off: every length
        // class of the padding (short and long last block, a block filled exactly) occurs.
        let sizes = [20usize, 20, 60, 20, 60, 20, 20, 60];
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let byte = |b: &mut CircuitBuilder<F, D>| {
            let t = b.add_virtual_target();
            b.range_check(t, 8);
            t
        };
        let prefix: Vec<Target> = (0..13).map(|_| byte(&mut b)).collect();
        let mut stream = ByteStream::new(&mut b, &prefix);
        let mut pieces = Vec::new();
        for &m in &sizes {
            let bytes: Vec<Target> = (0..m).map(|_| byte(&mut b)).collect();
            let on = b.add_virtual_bool_target_safe();
            stream.append(&mut b, &bytes, on);
            pieces.push((bytes, on));
        }
        let out = stream.finish(&mut b);
        b.register_public_inputs(&out);
        let data = b.build::<C>();

        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for mask in [
            0u32,
            0xff,
            0b1010_0101,
            0b0000_0111,
            0b1111_0000,
            0b0100_0000,
        ] {
            let mut pw = PartialWitness::new();
            let mut message = Vec::new();
            for &t in &prefix {
                let v: u8 = rng.gen();
                pw.set_target(t, F::from_canonical_u8(v)).unwrap();
                message.push(v);
            }
            for (j, (bytes, on)) in pieces.iter().enumerate() {
                let enabled = mask >> j & 1 == 1;
                pw.set_bool_target(*on, enabled).unwrap();
                for &t in bytes {
                    let v: u8 = rng.gen();
                    pw.set_target(t, F::from_canonical_u8(v)).unwrap();
                    if enabled {
                        message.push(v);
                    }
                }
            }
            let proof = data.prove(pw).unwrap();
            let got: Vec<u8> = proof
                .public_inputs
                .iter()
                .flat_map(|w| (w.to_canonical_u64() as u32).to_be_bytes())
                .collect();
            assert_eq!(got, Sha256::digest(&message).to_vec(), "mask {mask:08b}");
        }
    }
}
