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

/// A stream's state between circuits, in the order [`StreamTargets::to_vec`] and
/// [`StreamState::to_fields`] use (26 elements).
#[derive(Clone, Copy, Debug)]
pub struct StreamTargets {
    pub chain: Sha256Words,
    pub buf: [Target; 16],
    pub pos: Target,
    pub total: Target,
}

/// Number of elements of a stream state.
pub const STREAM_STATE_LEN: usize = 26;

impl StreamTargets {
    pub fn to_vec(&self) -> Vec<Target> {
        let mut v = self.chain.to_vec();
        v.extend_from_slice(&self.buf);
        v.push(self.pos);
        v.push(self.total);
        v
    }

    /// Views 26 targets (e.g. public inputs of an inner proof) as a stream state.
    pub fn from_slice(t: &[Target]) -> StreamTargets {
        assert_eq!(t.len(), STREAM_STATE_LEN);
        StreamTargets {
            chain: core::array::from_fn(|i| t[i]),
            buf: core::array::from_fn(|i| t[8 + i]),
            pos: t[24],
            total: t[25],
        }
    }

    /// Fresh targets (to be tied by the caller).
    pub fn virtual_state(b: &mut CircuitBuilder<F, D>) -> StreamTargets {
        StreamTargets::from_slice(&b.add_virtual_targets(STREAM_STATE_LEN))
    }
}

/// A SHA-256 message in progress, natively: what a [`ByteStream`] carries from one chunk proof
/// to the next.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamState {
    pub chain: [u32; 8],
    /// The bytes of the current block (fewer than 64).
    pub pending: Vec<u8>,
    pub total: u64,
}

impl Default for StreamState {
    fn default() -> Self {
        StreamState {
            chain: super::IV,
            pending: Vec::new(),
            total: 0,
        }
    }
}

impl StreamState {
    /// Absorbs `bytes`, compressing every block that fills.
    pub fn absorb(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.pending.push(byte);
            if self.pending.len() == 64 {
                let block: [u8; 64] = self.pending[..].try_into().expect("64 bytes");
                sha2::compress256(&mut self.chain, &[block.into()]);
                self.pending.clear();
            }
        }
        self.total += bytes.len() as u64;
    }

    /// The digest of the message absorbed so far.
    pub fn finish(&self) -> [u8; 32] {
        let mut s = self.clone();
        let bits = s.total * 8;
        s.absorb(&[0x80]);
        while s.pending.len() != 56 {
            s.absorb(&[0]);
        }
        s.absorb(&bits.to_be_bytes());
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_mut(4).zip(s.chain) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// The 26 field elements of [`StreamTargets`].
    pub fn to_fields(&self) -> Vec<F> {
        let mut v: Vec<F> = self
            .chain
            .iter()
            .map(|&w| F::from_canonical_u32(w))
            .collect();
        let mut buf = self.pending.clone();
        buf.resize(64, 0);
        v.extend(
            buf.chunks(4)
                .map(|c| F::from_canonical_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))),
        );
        v.push(F::from_canonical_usize(self.pending.len()));
        v.push(F::from_canonical_u64(self.total));
        v
    }

    /// The inverse of [`StreamState::to_fields`] (`None` for a state no stream reaches).
    pub fn from_fields(v: &[F]) -> Option<StreamState> {
        use plonky2::field::types::PrimeField64;
        if v.len() != STREAM_STATE_LEN {
            return None;
        }
        let word = |x: &F| u32::try_from(x.to_canonical_u64()).ok();
        let chain: Vec<u32> = v[..8].iter().map(word).collect::<Option<_>>()?;
        let buf: Vec<u8> = v[8..24]
            .iter()
            .map(word)
            .collect::<Option<Vec<u32>>>()?
            .into_iter()
            .flat_map(u32::to_be_bytes)
            .collect();
        let pos = usize::try_from(v[24].to_canonical_u64()).ok()?;
        if pos >= 64 || buf[pos..].iter().any(|&b| b != 0) {
            return None;
        }
        Some(StreamState {
            chain: chain.try_into().ok()?,
            pending: buf[..pos].to_vec(),
            total: v[25].to_canonical_u64(),
        })
    }
}

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

    /// Appends the first `len` of `bytes` for the one candidate `(len, flag)` whose flag is
    /// set, or nothing if none is: a piece whose length is one of a few known when the circuit
    /// is built but chosen at proving time (a diff record with or without its key and its
    /// `parts` byte). The flags must be booleans; that at most one is set is a constraint (their
    /// sum is boolean). Every length is at most `bytes.len()` and at most 64.
    ///
    /// Cost: what [`ByteStream::append`] costs for `bytes.len()` bytes (one compression and
    /// the placement), plus one multiplication per byte for the length mask and 64
    /// multiply-adds per candidate for the position's rotation.
    pub fn append_var(
        &mut self,
        b: &mut CircuitBuilder<F, D>,
        bytes: &[Target],
        lengths: &[(usize, BoolTarget)],
    ) {
        let m = bytes.len();
        assert!(m <= 64, "at most one block per append");
        assert!(
            lengths.iter().all(|&(len, _)| len <= m),
            "a candidate length within the bytes"
        );
        let zero = b.zero();
        let one = b.one();
        let any = lengths
            .iter()
            .fold(zero, |acc, (_, f)| b.add(acc, f.target));
        b.assert_bool(BoolTarget::new_unsafe(any));
        // Byte i is appended iff the chosen length exceeds i.
        let masked: Vec<Target> = bytes
            .iter()
            .enumerate()
            .map(|(i, &byte)| {
                let active = lengths
                    .iter()
                    .filter(|&&(len, _)| len > i)
                    .fold(zero, |acc, (_, f)| b.add(acc, f.target));
                b.mul(byte, active)
            })
            .collect();
        let mut window = self.buf.clone();
        window.resize(128, zero);
        for (i, &byte) in masked.iter().enumerate() {
            for (k, p) in self.pos.iter().enumerate() {
                window[k + i] = b.mul_add(byte, p.target, window[k + i]);
            }
        }
        // The block fills iff at least 64 - len bytes were pending, for the chosen len.
        let mut full = zero;
        for &(len, flag) in lengths.iter().filter(|&&(len, _)| len > 0) {
            let fills = self.pos[64 - len..]
                .iter()
                .fold(zero, |acc, p| b.add(acc, p.target));
            full = b.mul_add(flag.target, fills, full);
        }
        let full = BoolTarget::new_unsafe(full);
        let words = block(b, &window[..64]);
        let compressed = compress(b, &self.chain, &words);
        self.chain = core::array::from_fn(|i| b.select(full, compressed[i], self.chain[i]));
        // Nothing appended leaves the window's first half equal to the buffer and `full` 0.
        self.buf = (0..64)
            .map(|p| b.select(full, window[64 + p], window[p]))
            .collect();
        let stay = b.sub(one, any);
        self.pos = (0..64)
            .map(|j| {
                let mut v = b.mul(stay, self.pos[j].target);
                for &(len, flag) in lengths {
                    let moved = self.pos[(j + 64 - len % 64) % 64];
                    v = b.mul_add(flag.target, moved.target, v);
                }
                BoolTarget::new_unsafe(v)
            })
            .collect();
        for &(len, flag) in lengths {
            let added = b.mul_const(F::from_canonical_usize(len), flag.target);
            self.total = b.add(self.total, added);
        }
    }

    /// The number of bytes absorbed.
    pub fn total(&self) -> Target {
        self.total
    }

    /// A stream that continues from `state`, the [`ByteStream::export`] of another circuit's
    /// stream (or the constants of a known prefix). Nothing here re-checks `state`: the caller
    /// ties it to a value whose invariants hold (range-checked chaining words and bytes, a zero
    /// tail after `pos`), as a merge or the settlement circuit does. Costs about 40 rows (the
    /// byte splits of the pending words, `pos` as one-hot).
    pub fn resume(b: &mut CircuitBuilder<F, D>, state: &StreamTargets) -> ByteStream {
        let buf: Vec<Target> = state
            .buf
            .iter()
            .flat_map(|&w| super::word_to_bytes(b, w))
            .collect();
        b.range_check(state.pos, 6);
        let pos = (0..64)
            .map(|k| {
                let k = b.constant(F::from_canonical_usize(k));
                b.is_equal(state.pos, k)
            })
            .collect();
        ByteStream {
            chain: state.chain,
            buf,
            pos,
            total: state.total,
        }
    }

    /// The stream's state, for another circuit to [`ByteStream::resume`]: the chaining value,
    /// the pending bytes as sixteen big-endian words, their number and the total length.
    pub fn export(&self, b: &mut CircuitBuilder<F, D>) -> StreamTargets {
        let words = bytes_to_words(b, &self.buf);
        let mut pos = b.zero();
        for (k, p) in self.pos.iter().enumerate().skip(1) {
            pos = b.mul_const_add(F::from_canonical_usize(k), p.target, pos);
        }
        StreamTargets {
            chain: self.chain,
            buf: core::array::from_fn(|i| words[i]),
            pos,
            total: self.total,
        }
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
    #[test]
    fn pieces_of_chosen_lengths_hash_like_their_concatenation() {
        // Pieces of up to 61 bytes whose length is one of 0, 20, 21, 60 and 61 (a diff
        // record with or without its key and its parts byte), or skipped, after a 13-byte
        // prefix: every padding class occurs over the masks.
        let candidates = [20usize, 21, 60, 61];
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let byte = |b: &mut CircuitBuilder<F, D>| {
            let t = b.add_virtual_target();
            b.range_check(t, 8);
            t
        };
        let prefix: Vec<Target> = (0..13).map(|_| byte(&mut b)).collect();
        let mut stream = ByteStream::new(&mut b, &prefix);
        let mut pieces = Vec::new();
        for _ in 0..6 {
            let bytes: Vec<Target> = (0..61).map(|_| byte(&mut b)).collect();
            let flags: Vec<BoolTarget> = candidates
                .iter()
                .map(|_| b.add_virtual_bool_target_safe())
                .collect();
            let lengths: Vec<(usize, BoolTarget)> = candidates
                .iter()
                .copied()
                .zip(flags.iter().copied())
                .collect();
            stream.append_var(&mut b, &bytes, &lengths);
            pieces.push((bytes, flags));
        }
        let out = stream.finish(&mut b);
        b.register_public_inputs(&out);
        let data = b.build::<C>();

        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        // choice[j]: None skips piece j, Some(c) appends candidates[c] bytes of it.
        let runs: [[Option<usize>; 6]; 5] = [
            [None; 6],
            [Some(0), Some(1), Some(2), Some(3), Some(0), Some(1)],
            [Some(3), None, Some(3), Some(2), None, Some(0)],
            [Some(1), Some(1), Some(1), None, Some(3), Some(3)],
            [None, Some(2), Some(0), Some(3), Some(1), None],
        ];
        for choice in runs {
            let mut pw = PartialWitness::new();
            let mut message = Vec::new();
            for &t in &prefix {
                let v: u8 = rng.gen();
                pw.set_target(t, F::from_canonical_u8(v)).unwrap();
                message.push(v);
            }
            for ((bytes, flags), pick) in pieces.iter().zip(choice) {
                for (c, f) in flags.iter().enumerate() {
                    pw.set_bool_target(*f, pick == Some(c)).unwrap();
                }
                let len = pick.map_or(0, |c| candidates[c]);
                for (i, &t) in bytes.iter().enumerate() {
                    let v: u8 = rng.gen();
                    pw.set_target(t, F::from_canonical_u8(v)).unwrap();
                    if i < len {
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
            assert_eq!(got, Sha256::digest(&message).to_vec(), "{choice:?}");
        }

        // Two lengths at once is refused (the flags' sum is not boolean).
        let mut pw = PartialWitness::new();
        for &t in &prefix {
            pw.set_target(t, F::ZERO).unwrap();
        }
        for (j, (bytes, flags)) in pieces.iter().enumerate() {
            for (c, f) in flags.iter().enumerate() {
                pw.set_bool_target(*f, j == 0 && c < 2).unwrap();
            }
            for &t in bytes {
                pw.set_target(t, F::ZERO).unwrap();
            }
        }
        assert!(data.prove(pw).is_err(), "two lengths chosen");
    }
}
