//! The priority circuit (SPEC 13.8): the L1 priority-queue chain (SPEC 15.2) recomputed over the
//! entries a batch consumed, bound to the Poseidon commitment of the same entries that the leaf
//! circuits produce from the ops they apply.
//!
//! Public inputs (34): the queue hash before and after (eight big-endian u32 words each), the
//! first serial and the next one, the `entries_commitment` chain before and after (4 + 4) and
//! the `refunds_commitment` chain before and after (4 + 4) (`state::settlement`). Every value
//! has a before and an after, so proofs of consecutive chunks of a batch's entries chain like
//! the leaves (`crate::circuits::chain`): a batch's chains start at `ZERO` and the queue hash
//! the contract stored.
//!
//! A circuit has `cap` slots, used ones first. A used slot holds one entry as 37 big-endian
//! u32 words (its bytes, zero-padded to 148), each range-checked by its bit split, and a kind
//! flag. It proves:
//!
//! - the entry's first byte is its kind (4 for a deposit, 3 for a forced withdrawal), and bytes
//!   1..9 are the big-endian serial, equal to the running counter (from `first`, +1 per used
//!   slot; the last value is `next`);
//! - `H' = sha256(H ‖ entry)` over exactly the entry's 41 or 146 bytes: the message words are
//!   the chaining value then the entry's words (the entry starts on a word boundary), the last
//!   partial word is rebuilt from its proven bytes with the padding, so bytes past the entry
//!   cannot enter the hash; both the two-block (deposit) and the three-block (forced) digests
//!   are computed and the kind selects;
//! - `p' = hash_no_pad(p ‖ len ‖ chunks ‖ depositor)` over the pubdata op the entry became
//!   (SPEC 10: the serial, recipient, amount and request time re-ordered little-endian from the
//!   same entry bytes, the withdraw's bytes as queued, and a witnessed status byte), plus a
//!   deposit's depositor limbs taken from the entry: the leaves compute the same commitment
//!   from the ops they apply, so the ops are the queued entries and the statuses are theirs;
//! - `r' = hash_no_pad(r ‖ 2^32 + seq ‖ depositor ‖ amount)` for each deposit with status 1:
//!   the refunds, for the payout circuit (SPEC 13.9).
//!
//! So a deposit that is not on L1, or one whose recipient, amount or depositor differ, gives
//! another `H` than the contract's (a SHA-256 second preimage), and another `p` than the ops
//! the leaves applied. Cost: five compressions (940 rows) plus about 80 rows per slot
//! (`tests::rows_per_slot`).

use anyhow::ensure;
use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use serde::{Deserialize, Serialize};
use state::hash::Digest;
use state::settlement::{
    entries_commitment_from, priority_chain, refunds_commitment_from, words_of, Consumed, Hash32,
    PriorityEntry, REFUND_FROM_BASE,
};

use crate::gadgets::pubdata::hash_no_pad_select;
use crate::gadgets::sha256::{compress, iv, Sha256Words};
use crate::{C, D, F};

/// Number of public inputs.
pub const PRIORITY_PUBLIC_INPUTS: usize = 34;

/// Version of the priority circuit's definition (part of its cache key).
pub const PRIORITY_VERSION: &str = "priority-v1";

/// How priority proofs of consecutive chunks chain (the public-input layout above).
pub fn priority_layout() -> crate::circuits::chain::ChainLayout {
    use crate::circuits::chain::{ChainLayout, Link};
    ChainLayout {
        len: PRIORITY_PUBLIC_INPUTS,
        links: vec![
            Link::new(0, 8, 8),   // queue hash
            Link::new(16, 17, 1), // serial
            Link::new(18, 22, 4), // entries commitment
            Link::new(26, 30, 4), // refunds commitment
        ],
        shared: vec![],
        derived: 0..0,
        empty_right: None,
    }
}
/// Entry words per slot: the 146 bytes of a forced withdrawal's entry, zero-padded.
const ENTRY_WORDS: usize = 37;
const DEPOSIT_LEN: usize = 41;
const FORCED_LEN: usize = 146;

/// What a priority proof states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityStatement {
    pub hash_before: Hash32,
    pub hash_after: Hash32,
    pub first: u64,
    pub next: u64,
    pub entries_in: Digest,
    pub entries_out: Digest,
    pub refunds_in: Digest,
    pub refunds_out: Digest,
}

impl PriorityStatement {
    pub fn to_fields(&self) -> Vec<F> {
        let words = |h: &Hash32| words_of(h).map(F::from_canonical_u32);
        let mut v = words(&self.hash_before).to_vec();
        v.extend(words(&self.hash_after));
        v.push(F::from_canonical_u64(self.first));
        v.push(F::from_canonical_u64(self.next));
        v.extend(self.entries_in.elements());
        v.extend(self.entries_out.elements());
        v.extend(self.refunds_in.elements());
        v.extend(self.refunds_out.elements());
        v
    }

    /// The inverse of [`PriorityStatement::to_fields`].
    pub fn from_fields(v: &[F]) -> Option<PriorityStatement> {
        if v.len() != PRIORITY_PUBLIC_INPUTS {
            return None;
        }
        let d = |o: usize| Digest([v[o], v[o + 1], v[o + 2], v[o + 3]]);
        Some(PriorityStatement {
            hash_before: crate::circuits::public::hash32_of_fields(&v[0..8])?,
            hash_after: crate::circuits::public::hash32_of_fields(&v[8..16])?,
            first: v[16].to_canonical_u64(),
            next: v[17].to_canonical_u64(),
            entries_in: d(18),
            entries_out: d(22),
            refunds_in: d(26),
            refunds_out: d(30),
        })
    }
}

/// One slot: the entry's words and kind (plain data, editable by a test or an attacker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrioritySlot {
    pub used: bool,
    pub forced: bool,
    pub words: Vec<u32>,
    /// The status byte of the op the entry became.
    pub status: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityWitness {
    pub hash_before: Hash32,
    pub first: u64,
    /// The commitments after the entries of the chunks before this one (`ZERO` for the first).
    pub entries_in: Digest,
    pub refunds_in: Digest,
    pub slots: Vec<PrioritySlot>,
}

/// Where a chunk of entries starts: the values after the chunks before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkStart {
    pub hash: Hash32,
    pub first: u64,
    pub entries: Digest,
    pub refunds: Digest,
}

impl ChunkStart {
    /// The start of a batch: queue hash `hash` (the contract's before the batch), serial
    /// `first`, empty commitments.
    pub fn batch(hash: Hash32, first: u64) -> ChunkStart {
        ChunkStart {
            hash,
            first,
            entries: Digest::ZERO,
            refunds: Digest::ZERO,
        }
    }

    /// Where the chunk after one with statement `s` starts.
    pub fn after(s: &PriorityStatement) -> ChunkStart {
        ChunkStart {
            hash: s.hash_after,
            first: s.next,
            entries: s.entries_out,
            refunds: s.refunds_out,
        }
    }
}

/// The witness and statement of the entries `consumed` after queue hash `before`, as one
/// chunk from the start of a batch.
pub fn priority_witness(
    before: Hash32,
    first: u64,
    consumed: &[Consumed],
    cap: usize,
) -> anyhow::Result<(PriorityWitness, PriorityStatement)> {
    priority_chunk(ChunkStart::batch(before, first), consumed, cap)
}

/// A batch's entries in chunks of `cap`, padded with empty chunks to a power of two (at least
/// `min_chunks`): the leaves of a priority merge tree.
pub fn priority_chunks(
    before: Hash32,
    first: u64,
    consumed: &[Consumed],
    cap: usize,
    min_chunks: usize,
) -> anyhow::Result<Vec<(PriorityWitness, PriorityStatement)>> {
    ensure!(cap > 0, "a chunk has at least one slot");
    let n = consumed
        .len()
        .div_ceil(cap)
        .max(min_chunks)
        .max(1)
        .next_power_of_two();
    let mut start = ChunkStart::batch(before, first);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let part = consumed.get(i * cap..).unwrap_or_default();
        let part = &part[..part.len().min(cap)];
        let (w, s) = priority_chunk(start, part, cap)?;
        start = ChunkStart::after(&s);
        out.push((w, s));
    }
    Ok(out)
}

/// The witness and statement of one chunk of entries from `start`.
pub fn priority_chunk(
    start: ChunkStart,
    consumed: &[Consumed],
    cap: usize,
) -> anyhow::Result<(PriorityWitness, PriorityStatement)> {
    ensure!(
        consumed.len() <= cap,
        "{} entries for {cap} slots",
        consumed.len()
    );
    let mut slots: Vec<PrioritySlot> = consumed
        .iter()
        .map(|c| {
            let e = &c.entry;
            let mut bytes = e.encode();
            let forced = matches!(e, PriorityEntry::ForcedWithdrawal { .. });
            ensure!(
                bytes.len() == if forced { FORCED_LEN } else { DEPOSIT_LEN },
                "an entry of {} bytes",
                bytes.len()
            );
            bytes.resize(4 * ENTRY_WORDS, 0);
            let words = bytes
                .chunks(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok(PrioritySlot {
                used: true,
                forced,
                words,
                status: c.status,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    slots.resize(
        cap,
        PrioritySlot {
            used: false,
            forced: false,
            words: vec![0; ENTRY_WORDS],
            status: 0,
        },
    );
    let entries: Vec<PriorityEntry> = consumed.iter().map(|c| c.entry.clone()).collect();
    let statement = PriorityStatement {
        hash_before: start.hash,
        hash_after: priority_chain(start.hash, &entries),
        first: start.first,
        next: start.first + entries.len() as u64,
        entries_in: start.entries,
        entries_out: entries_commitment_from(start.entries, consumed),
        refunds_in: start.refunds,
        refunds_out: refunds_commitment_from(start.refunds, consumed),
    };
    Ok((
        PriorityWitness {
            hash_before: start.hash,
            first: start.first,
            entries_in: start.entries,
            refunds_in: start.refunds,
            slots,
        },
        statement,
    ))
}

struct SlotTargets {
    used: BoolTarget,
    forced: BoolTarget,
    words: Vec<Target>,
    status: Target,
}

/// The byte `k` (0 = most significant) of a word with little-endian bits `bits`.
fn byte_of(b: &mut CircuitBuilder<F, D>, bits: &[BoolTarget], k: usize) -> Target {
    let lo = 8 * (3 - k);
    b.le_sum(bits[lo..lo + 8].iter())
}

/// `sha256(prefix ‖ body)` for a message of `len` bytes whose first `len / 4` words after the
/// 8 prefix words are `words` and whose remaining `len % 4` bytes are `tail`.
fn hash_message(
    b: &mut CircuitBuilder<F, D>,
    prefix: &Sha256Words,
    words: &[Target],
    tail: &[Target],
    len: usize,
) -> Sha256Words {
    let total = 32 + len;
    let blocks = (total + 9).div_ceil(64);
    let zero = b.zero();
    let mut msg: Vec<Target> = prefix.to_vec();
    msg.extend_from_slice(words);
    // The last partial word: its bytes, then 0x80, then zeros.
    let mut last = zero;
    for (k, &byte) in tail.iter().enumerate() {
        last = b.mul_const_add(F::from_canonical_u64(1 << (8 * (3 - k))), byte, last);
    }
    last = b.add_const(last, F::from_canonical_u64(0x80 << (8 * (3 - tail.len()))));
    msg.push(last);
    while msg.len() < 16 * blocks - 2 {
        msg.push(zero);
    }
    let bits = (total as u64) * 8;
    msg.push(b.constant(F::from_canonical_u64(bits >> 32)));
    msg.push(b.constant(F::from_canonical_u64(bits & 0xffff_ffff)));
    let mut state = iv(b);
    for block in msg.chunks(16) {
        let block: [Target; 16] = block.try_into().expect("whole blocks");
        state = compress(b, &state, &block);
    }
    state
}

/// The big-endian u32 of four range-checked bytes.
fn be_word(b: &mut CircuitBuilder<F, D>, bytes: &[Target]) -> Target {
    let mut acc = b.zero();
    for &byte in bytes {
        acc = b.mul_const_add(F::from_canonical_u32(256), acc, byte);
    }
    acc
}

/// 7-byte little-endian chunks of `bytes` (range-checked), as SPEC 10.1.
fn chunks(b: &mut CircuitBuilder<F, D>, bytes: &[Target]) -> Vec<Target> {
    bytes
        .chunks(7)
        .map(|c| {
            let mut acc = b.zero();
            for &byte in c.iter().rev() {
                acc = b.mul_const_add(F::from_canonical_u32(256), acc, byte);
            }
            acc
        })
        .collect()
}

/// The witness targets of the circuit.
struct Targets {
    hash_before: Sha256Words,
    first: Target,
    entries_in: HashOutTarget,
    refunds_in: HashOutTarget,
    slots: Vec<SlotTargets>,
}

pub struct PriorityCircuit {
    pub data: CircuitData<F, C, D>,
    targets: Targets,
    pub cap: usize,
}

impl PriorityCircuit {
    pub fn build(cap: usize) -> PriorityCircuit {
        Self::build_or_load(cap, &crate::cache::CircuitCache::disabled())
            .expect("an uncached, unpinned build cannot be refused")
    }

    /// [`PriorityCircuit::build`] through `cache` (key: [`PRIORITY_VERSION`] and the capacity).
    pub fn build_or_load(
        cap: usize,
        cache: &crate::cache::CircuitCache,
    ) -> anyhow::Result<PriorityCircuit> {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let (targets, _) = Self::define(&mut b, cap);
        let key = format!("{PRIORITY_VERSION}/cap={cap}/config=standard_recursion");
        let spec = crate::cache::CircuitSpec {
            name: "priority-chunk",
            key: &key,
            num_public_inputs: PRIORITY_PUBLIC_INPUTS,
            pinned: None,
        };
        let (data, _) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        Ok(PriorityCircuit { data, targets, cap })
    }

    /// Adds the constraints to `b`; returns the targets and the rows before and after the
    /// slots (for the cost report).
    fn define(b: &mut CircuitBuilder<F, D>, cap: usize) -> (Targets, [usize; 2]) {
        let zero = b.zero();
        let hash_before: Sha256Words = core::array::from_fn(|_| b.add_virtual_target());
        for &w in &hash_before {
            b.range_check(w, 32);
        }
        let first = b.add_virtual_target();
        b.range_check(first, 63);
        let start = b.num_gates();

        // The commitments before this chunk: any value (the merges and the settlement circuit
        // tie them to the chunk before, or to ZERO at the start of a batch).
        let entries_in = b.add_virtual_hash();
        let refunds_in = b.add_virtual_hash();
        let mut h = hash_before;
        let mut p = entries_in;
        let mut r = refunds_in;
        let mut counter = first;
        let mut prev_used = b._true();
        let mut slots = Vec::with_capacity(cap);
        for _ in 0..cap {
            let used = b.add_virtual_bool_target_safe();
            let both = b.and(used, prev_used);
            b.connect(both.target, used.target);
            prev_used = used;
            let forced = b.add_virtual_bool_target_safe();
            let deposit = b.not(forced);
            let words: Vec<Target> = (0..ENTRY_WORDS).map(|_| b.add_virtual_target()).collect();
            let bits: Vec<Vec<BoolTarget>> = words.iter().map(|&w| b.split_le(w, 32)).collect();
            let bytes: Vec<Target> = (0..FORCED_LEN)
                .map(|i| byte_of(b, &bits[i / 4], i % 4))
                .collect();

            // Kind byte and serial.
            let kind = b.constant(F::from_canonical_u64(4));
            let kind = b.sub(kind, forced.target);
            let d = b.sub(bytes[0], kind);
            let d = b.mul(used.target, d);
            b.assert_zero(d);
            let mut serial = zero;
            for &byte in &bytes[1..9] {
                serial = b.mul_const_add(F::from_canonical_u32(256), serial, byte);
            }
            let d = b.sub(serial, counter);
            let d = b.mul(used.target, d);
            b.assert_zero(d);
            counter = b.add(counter, used.target);

            // The queue chain: both message shapes, the kind selects.
            let dep = hash_message(
                b,
                &h,
                &words[..DEPOSIT_LEN / 4],
                &bytes[40..41],
                DEPOSIT_LEN,
            );
            let frc = hash_message(
                b,
                &h,
                &words[..FORCED_LEN / 4],
                &bytes[144..146],
                FORCED_LEN,
            );
            let next: Sha256Words = core::array::from_fn(|i| b.select(forced, frc[i], dep[i]));
            h = core::array::from_fn(|i| b.select(used, next[i], h[i]));

            // The op the entry became (SPEC 10), from the same bytes: integers re-ordered
            // little-endian, the withdraw as queued without its tag, and the status byte.
            let status = b.add_virtual_target();
            b.range_check(status, 8);
            let rev = |r: std::ops::Range<usize>| -> Vec<Target> {
                bytes[r].iter().rev().copied().collect()
            };
            let mut dep_op = vec![b.constant(F::from_canonical_u64(4))];
            dep_op.extend(rev(1..9));
            dep_op.extend(rev(29..33));
            dep_op.extend(rev(33..41));
            dep_op.push(status);
            let mut frc_op = vec![b.constant(F::from_canonical_u64(5))];
            frc_op.extend(rev(1..9));
            frc_op.extend(rev(9..17));
            frc_op.extend_from_slice(&bytes[18..FORCED_LEN]);
            frc_op.push(status);
            let depositor: Vec<Target> = (0..5)
                .map(|k| be_word(b, &bytes[9 + 4 * k..13 + 4 * k]))
                .collect();

            let mut dep_list = p.elements.to_vec();
            dep_list.push(b.constant(F::from_canonical_usize(dep_op.len())));
            dep_list.extend(chunks(b, &dep_op));
            dep_list.extend_from_slice(&depositor);
            let mut frc_list = p.elements.to_vec();
            frc_list.push(b.constant(F::from_canonical_usize(frc_op.len())));
            frc_list.extend(chunks(b, &frc_op));
            let q = hash_no_pad_select(b, &[(deposit, dep_list), (forced, frc_list)]);
            p = HashOutTarget::from_vec(
                (0..4)
                    .map(|i| b.select(used, q.elements[i], p.elements[i]))
                    .collect(),
            );

            // A refunded deposit is a payout to its depositor.
            let one = b.one();
            let refunded = b.is_equal(status, one);
            let refund = b.and(deposit, refunded);
            let refund = b.and(used, refund);
            let from = b.add_const(serial, F::from_canonical_u64(REFUND_FROM_BASE));
            let mut amount = zero;
            for &byte in &bytes[33..41] {
                amount = b.mul_const_add(F::from_canonical_u32(256), amount, byte);
            }
            let mut record = r.elements.to_vec();
            record.push(from);
            record.extend_from_slice(&depositor);
            record.push(amount);
            let h = b.hash_n_to_hash_no_pad::<plonky2::hash::poseidon::PoseidonHash>(record);
            r = HashOutTarget::from_vec(
                (0..4)
                    .map(|i| b.select(refund, h.elements[i], r.elements[i]))
                    .collect(),
            );
            slots.push(SlotTargets {
                used,
                forced,
                words,
                status,
            });
        }
        let end = b.num_gates();
        b.register_public_inputs(&hash_before);
        b.register_public_inputs(&h);
        b.register_public_input(first);
        b.register_public_input(counter);
        b.register_public_inputs(&entries_in.elements);
        b.register_public_inputs(&p.elements);
        b.register_public_inputs(&refunds_in.elements);
        b.register_public_inputs(&r.elements);
        (
            Targets {
                hash_before,
                first,
                entries_in,
                refunds_in,
                slots,
            },
            [start, end],
        )
    }

    /// Proves `w` for `statement` (the public inputs are checked against it).
    pub fn prove(
        &self,
        w: &PriorityWitness,
        statement: &PriorityStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        ensure!(
            w.slots.len() == self.cap,
            "{} slots for {}",
            w.slots.len(),
            self.cap
        );
        let t = &self.targets;
        let mut pw = PartialWitness::new();
        for (tw, v) in t.hash_before.iter().zip(words_of(&w.hash_before)) {
            pw.set_target(*tw, F::from_canonical_u32(v))?;
        }
        pw.set_target(t.first, F::from_canonical_u64(w.first))?;
        pw.set_hash_target(t.entries_in, w.entries_in.into())?;
        pw.set_hash_target(t.refunds_in, w.refunds_in.into())?;
        for (ts, s) in t.slots.iter().zip(&w.slots) {
            ensure!(
                s.words.len() == ENTRY_WORDS,
                "a slot has {ENTRY_WORDS} words"
            );
            pw.set_bool_target(ts.used, s.used)?;
            pw.set_bool_target(ts.forced, s.forced)?;
            for (tw, v) in ts.words.iter().zip(&s.words) {
                pw.set_target(*tw, F::from_canonical_u32(*v))?;
            }
            pw.set_target(ts.status, F::from_canonical_u8(s.status))?;
        }
        let proof = self.data.prove(pw)?;
        ensure!(
            proof.public_inputs == statement.to_fields(),
            "the proof states another chain than the one expected (after = {:?})",
            proof.public_inputs[8..16]
                .iter()
                .map(|x| x.to_canonical_u64())
                .collect::<Vec<_>>()
        );
        Ok(proof)
    }

    pub fn verify(&self, proof: ProofWithPublicInputs<F, C, D>) -> anyhow::Result<()> {
        self.data.verify(proof)
    }
}

#[cfg(test)]
mod tests;
