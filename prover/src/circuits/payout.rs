//! The payout circuit (SPEC 13.9): the SHA-256 payout tree of a batch (SPEC 15.5), the root the
//! L1 contract pays claims against, built from the same payout list as the Poseidon chain the
//! leaf circuits extend (SPEC 10.3), so that the settlement circuit can tie the two together.
//!
//! A proof covers one chunk of the batch's payout list: `2^depth` consecutive slots from
//! `offset`. Chunks chain (`crate::circuits::chain`, [`payout_layout`]): every running value
//! has a before and an after, and a merge of two adjacent chunks computes the node over both.
//! Public inputs (41):
//!
//! | at | value |
//! |---|---|
//! | 0 | `batch` (shared by every chunk) |
//! | 1, 2 | `offset` of the first slot, `offset + 2^depth` |
//! | 3..7, 7..11 | the withdrawals chain `w` before and after |
//! | 11..15, 15..19 | the refunds chain `r` before and after |
//! | 19, 20 | payouts before, payouts after |
//! | 21, 22 | `open` before and after: every slot so far was used (used slots come first) |
//! | 23, 24 | `refund` before and after: the slot before the chunk, the chunk's last slot, holds a refund (refunds come last) |
//! | 25..33 | `node`: the root of the chunk's full subtree (eight big-endian u32 words) |
//! | 33..41 | `root`: the leftmost node of level `ceil(log2 n)` of the chunk (`n` its payouts) |
//!
//! For a whole batch (one chunk from offset 0, or the root of a merge tree) the chains and the
//! count start at zero, `open` at 1, `refund` at 0, and `root` is the payout root of SPEC 15.5.
//!
//! A circuit has room for `N = 2^depth` payouts (`depth` fixed when it is built); a slot is used
//! or not (a flag; used slots come first, across chunks too through `open`), `n` is the number
//! of used slots. Slot `i` (payout `offset + i` of the batch) holds
//! `from` (below `2^33`: an account index, or `2^32 + seq` for the refund of deposit `seq`), the
//! destination address as five big-endian u32 limbs `t0..t4` and `amount` (below `2^63`). What
//! it proves:
//!
//! - **Leaves**: the leaf of a used slot `i` is the SHA-256 of the 52 bytes `uint64 batch ‖
//!   uint64 (offset + i) ‖ uint64 from ‖ to ‖ uint64 amount` (big-endian, one block after padding). The
//!   sixteen words of that block are the range-checked limbs themselves (`batch` and `amount`
//!   split into 32-bit halves, `from` into a bit and 32 bits, `i` and the padding constants), so
//!   no byte decomposition is needed. The leaf of an unused slot is `0x00..00`.
//! - **Tree**: every inner node is `sha256(left ‖ right)` (two blocks: the children's sixteen
//!   words, then the constant padding block of a 64-byte message), over the full tree of `N`
//!   leaves. With `d` the least integer with `2^d >= n` (`d = 0` for `n <= 1`), the root is the
//!   leftmost node of level `d`: it covers leaves `0 .. 2^d - 1`, which are the native tree's
//!   (leaves `n .. 2^d - 1` zero, inner nodes hashed even over zeros). For `n = 0` that is the
//!   zero leaf, `0x00..00`. The level is selected without comparisons: used flags are monotone,
//!   so `d = l` exactly when slot `2^(l-1)` is used and slot `2^l` is not.
//! - **Chains**: the used slots with `from < 2^32` (withdrawals) come first, then those with
//!   `from >= 2^32` (refunds), as SPEC 15.5 orders them; `w_{i+1} = H(w_i ‖ from, t0, ..., t4,
//!   amount)` over the withdrawals is the withdrawals commitment the leaves produce (SPEC 10.3),
//!   and the same record over the refunds is `refunds_commitment`, which the priority circuit
//!   derives from the deposits consumed with status 1 (SPEC 13.8). The final circuit ties `w`
//!   to the leaves and `r` to the priority proof.
//!
//! The chains do not hash `batch` (the leaf circuits do not know it); the tree does.
//!
//! Cost (`tests::rows_per_payout`): one SHA-256 compression per leaf, three per inner node (one
//! with a constant block, whose message schedule is computed when the circuit is built), and
//! about `N - 1` inner nodes for `N` leaves; two Poseidon rows and eight range checks per slot.

use anyhow::ensure;
use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use serde::{Deserialize, Serialize};
use state::account::MAX_U63;
use state::hash::{hash_no_pad, Digest};
use state::settlement::{Payout, REFUND_FROM_BASE};
use state::tx::L1Address;

use crate::gadgets::pubdata::absorb_withdrawal;
use crate::gadgets::range::{range_check_u63, split_at};
use crate::gadgets::sha256::{compress, compress_constant_block, iv, Sha256Words};
use crate::{C, D, F};

/// Number of public inputs.
pub const PAYOUT_PUBLIC_INPUTS: usize = 41;

/// Version of the payout circuit's definition (part of its cache key).
pub const PAYOUT_VERSION: &str = "payout-v1";

/// How payout proofs of consecutive chunks chain; a merge derives `node` and `root`
/// ([`derive_merge`]). A chunk with no payout (or a merge of two) stands anywhere as the right
/// half of a merge: it adds its width to the offset and nothing to the count, the chains and
/// the batch are the left half's, `open` and `refund` its own (both 0: its first slot and its
/// last are unused). So every idle chunk is the same proof, [`idle_payout_chunk`] (SPEC 13.9).
pub fn payout_layout() -> crate::circuits::chain::ChainLayout {
    use crate::circuits::chain::{ChainLayout, EmptyRight, Link};
    ChainLayout {
        len: PAYOUT_PUBLIC_INPUTS,
        links: vec![
            Link::new(1, 2, 1),   // offset
            Link::new(3, 7, 4),   // withdrawals chain
            Link::new(11, 15, 4), // refunds chain
            Link::new(19, 20, 1), // payouts
            Link::new(21, 22, 1), // open
            Link::new(23, 24, 1), // refund seen
        ],
        shared: vec![std::ops::Range { start: 0, end: 1 }],
        derived: 25..41,
        empty_right: Some(EmptyRight {
            count: 3,
            added: vec![0, 3],
            from_right: vec![4, 5],
        }),
    }
}

/// The node and root of a merge of `l` then `r` (adjacent chunks of equal size): the node is
/// `sha256(l.node ‖ r.node)`; the root is `l.root` when `r` has no payout (then every payout is
/// in `l`, whose root is at the right level) and the node otherwise (`r` has payouts only if
/// `l` is full, so `n` is above half the merged width).
pub fn derive_merge(b: &mut CircuitBuilder<F, D>, l: &[Target], r: &[Target]) -> Vec<Target> {
    let words = |v: &[Target], at: usize| -> Sha256Words { core::array::from_fn(|i| v[at + i]) };
    let node = inner_node(b, &words(l, 25), &words(r, 25));
    let empty = b.is_equal(r[19], r[20]);
    let root: Vec<Target> = (0..8)
        .map(|i| b.select(empty, l[33 + i], node[i]))
        .collect();
    let mut out = node.to_vec();
    out.extend(root);
    out
}

/// The merge natively ([`payout_layout`], [`derive_merge`]): the statement of the merge of `l`
/// then `r`.
pub fn merged_statement(l: &PayoutStatement, r: &PayoutStatement) -> PayoutStatement {
    let node = state::settlement::payout_node(&l.node, &r.node);
    let empty = r.n == r.n_in;
    PayoutStatement {
        batch: l.batch,
        offset: l.offset,
        next_offset: l.next_offset + (r.next_offset - r.offset),
        withdrawals_in: l.withdrawals_in,
        withdrawals: if empty { l.withdrawals } else { r.withdrawals },
        refunds_in: l.refunds_in,
        refunds: if empty { l.refunds } else { r.refunds },
        n_in: l.n_in,
        n: l.n + (r.n - r.n_in),
        open_in: l.open_in,
        open: r.open,
        refund_in: l.refund_in,
        refund: r.refund,
        node,
        root: if empty { l.root } else { node },
    }
}

/// `from` is below this bound: account indices and refunds `2^32 + seq` with `seq < 2^32`.
pub const FROM_BOUND: u64 = 1 << 33;

/// The second block of an inner node: FIPS 180-4 padding of a 64-byte message.
const PAD_64: [u32; 16] = [0x8000_0000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 512];

/// What a payout proof states (the `_in` values are those before the chunk; the others after
/// it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutStatement {
    pub batch: u64,
    pub offset: u64,
    pub next_offset: u64,
    pub withdrawals_in: Digest,
    /// The chain of the withdrawals (SPEC 10.3's withdrawals commitment).
    pub withdrawals: Digest,
    pub refunds_in: Digest,
    /// The chain of the refunds (`state::settlement::refunds_commitment`).
    pub refunds: Digest,
    pub n_in: u64,
    /// The number of payouts so far.
    pub n: u64,
    pub open_in: bool,
    pub open: bool,
    pub refund_in: bool,
    pub refund: bool,
    /// The root of the chunk's full subtree.
    pub node: [u8; 32],
    /// The SHA-256 payout root (SPEC 15.5) of the payouts so far.
    pub root: [u8; 32],
}

impl PayoutStatement {
    pub fn to_fields(&self) -> Vec<F> {
        let words = |h: &[u8; 32]| state::settlement::words_of(h).map(F::from_canonical_u32);
        let mut v = vec![
            F::from_canonical_u64(self.batch),
            F::from_canonical_u64(self.offset),
            F::from_canonical_u64(self.next_offset),
        ];
        for d in [
            self.withdrawals_in,
            self.withdrawals,
            self.refunds_in,
            self.refunds,
        ] {
            v.extend_from_slice(&d.elements());
        }
        v.extend([
            F::from_canonical_u64(self.n_in),
            F::from_canonical_u64(self.n),
            F::from_bool(self.open_in),
            F::from_bool(self.open),
            F::from_bool(self.refund_in),
            F::from_bool(self.refund),
        ]);
        v.extend(words(&self.node));
        v.extend(words(&self.root));
        v
    }

    /// The inverse of [`PayoutStatement::to_fields`].
    pub fn from_fields(v: &[F]) -> Option<PayoutStatement> {
        if v.len() != PAYOUT_PUBLIC_INPUTS {
            return None;
        }
        let d = |o: usize| Digest([v[o], v[o + 1], v[o + 2], v[o + 3]]);
        let bit = |o: usize| crate::circuits::public::bool_of_field(v[o]);
        Some(PayoutStatement {
            batch: v[0].to_canonical_u64(),
            offset: v[1].to_canonical_u64(),
            next_offset: v[2].to_canonical_u64(),
            withdrawals_in: d(3),
            withdrawals: d(7),
            refunds_in: d(11),
            refunds: d(15),
            n_in: v[19].to_canonical_u64(),
            n: v[20].to_canonical_u64(),
            open_in: bit(21)?,
            open: bit(22)?,
            refund_in: bit(23)?,
            refund: bit(24)?,
            node: crate::circuits::public::hash32_of_fields(&v[25..33])?,
            root: crate::circuits::public::hash32_of_fields(&v[33..41])?,
        })
    }

    /// Whether this states a whole batch's payouts (the values a batch starts from).
    pub fn starts_batch(&self) -> bool {
        self.offset == 0
            && self.withdrawals_in == Digest::ZERO
            && self.refunds_in == Digest::ZERO
            && self.n_in == 0
            && self.open_in
            && !self.refund_in
    }
}

/// One payout slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutSlot {
    pub used: bool,
    pub from: u64,
    pub to: L1Address,
    pub amount: u64,
}

/// Everything the circuit needs: plain data, so that a test (or an attacker) can build or edit
/// one by hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutWitness {
    pub batch: u64,
    pub start: PayoutStart,
    pub slots: Vec<PayoutSlot>,
}

/// Where a chunk starts: the values after the chunks before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutStart {
    pub offset: u64,
    pub withdrawals: Digest,
    pub refunds: Digest,
    pub n: u64,
    pub open: bool,
    pub refund: bool,
}

impl PayoutStart {
    /// The start of a batch.
    pub const BATCH: PayoutStart = PayoutStart {
        offset: 0,
        withdrawals: Digest::ZERO,
        refunds: Digest::ZERO,
        n: 0,
        open: true,
        refund: false,
    };

    /// Where an idle chunk "starts" ([`idle_payout_chunk`]): nothing before it, no position.
    pub const IDLE: PayoutStart = PayoutStart {
        offset: 0,
        withdrawals: Digest::ZERO,
        refunds: Digest::ZERO,
        n: 0,
        open: false,
        refund: false,
    };

    /// Where the chunk after one with statement `s` starts.
    pub fn after(s: &PayoutStatement) -> PayoutStart {
        PayoutStart {
            offset: s.next_offset,
            withdrawals: s.withdrawals,
            refunds: s.refunds,
            n: s.n,
            open: s.open,
            refund: s.refund,
        }
    }
}

/// The seven elements a payout adds to the chain: `from, t0..t4, amount` (for a withdrawal,
/// `WithdrawalRecord::to_field_elements`).
pub fn payout_record(p: &Payout) -> [F; 7] {
    let a = p.to.to_field_elements();
    [
        F::from_canonical_u64(p.from),
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
        F::from_canonical_u64(p.amount),
    ]
}

/// The chain over `payouts` in order (`ZERO` for none).
pub fn payout_chain<'a>(payouts: impl IntoIterator<Item = &'a Payout>) -> Digest {
    payout_chain_from(Digest::ZERO, payouts)
}

/// [`payout_chain`] continued from `start`.
pub fn payout_chain_from<'a>(
    start: Digest,
    payouts: impl IntoIterator<Item = &'a Payout>,
) -> Digest {
    payouts.into_iter().fold(start, |w, p| {
        let mut buf = w.elements().to_vec();
        buf.extend_from_slice(&payout_record(p));
        hash_no_pad(&buf)
    })
}

/// The witness and statement of batch `batch`'s `payouts` for one circuit of `2^depth` slots.
pub fn payout_witness(
    batch: u64,
    payouts: &[Payout],
    depth: usize,
) -> anyhow::Result<(PayoutWitness, PayoutStatement)> {
    payout_chunk(batch, PayoutStart::BATCH, payouts, depth)
}

/// The chunk of `2^depth` slots with no payout that stands for every chunk after a batch's
/// payouts (batch 0, offset 0, nothing before it: [`payout_layout`] lets it stand anywhere),
/// so that all of them, in every batch, are one proof.
pub fn idle_payout_chunk(depth: usize) -> anyhow::Result<(PayoutWitness, PayoutStatement)> {
    payout_chunk(0, PayoutStart::IDLE, &[], depth)
}

/// A batch's payouts in chunks of `2^depth`, padded to a power of two (at least `min_chunks`)
/// with [`idle_payout_chunk`]s: the leaves of a payout merge tree. The first chunk is always
/// the batch's own (it states where the batch starts), even with no payout.
pub fn payout_chunks(
    batch: u64,
    payouts: &[Payout],
    depth: usize,
    min_chunks: usize,
) -> anyhow::Result<Vec<(PayoutWitness, PayoutStatement)>> {
    let cap = 1usize << depth;
    let n = payouts
        .len()
        .div_ceil(cap)
        .max(min_chunks)
        .max(1)
        .next_power_of_two();
    let mut start = PayoutStart::BATCH;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let part = payouts.get(i * cap..).unwrap_or_default();
        if i > 0 && part.is_empty() {
            out.push(idle_payout_chunk(depth)?);
            continue;
        }
        let (w, s) = payout_chunk(batch, start, &part[..part.len().min(cap)], depth)?;
        start = PayoutStart::after(&s);
        out.push((w, s));
    }
    Ok(out)
}

/// The witness and statement of one chunk of `payouts` from `start`.
pub fn payout_chunk(
    batch: u64,
    start: PayoutStart,
    payouts: &[Payout],
    depth: usize,
) -> anyhow::Result<(PayoutWitness, PayoutStatement)> {
    let cap = 1usize << depth;
    ensure!(batch <= MAX_U63, "batch {batch} is above 2^63 - 1");
    ensure!(
        payouts.len() <= cap,
        "{} payouts do not fit a circuit for {cap}",
        payouts.len()
    );
    ensure!(
        start.offset + cap as u64 <= 1 << 32,
        "chunk offset {} is out of range",
        start.offset
    );
    ensure!(
        payouts.is_empty() || start.open,
        "payouts after a chunk that was not full"
    );
    let is_refund = |p: &Payout| p.from >= REFUND_FROM_BASE;
    ensure!(
        payouts
            .windows(2)
            .all(|w| !is_refund(&w[0]) || is_refund(&w[1]))
            && (!start.refund || payouts.iter().all(is_refund)),
        "refunds come after every withdrawal (SPEC 15.5)"
    );
    for (i, p) in payouts.iter().enumerate() {
        ensure!(p.from < FROM_BOUND, "payout {i}: from {} >= 2^33", p.from);
        ensure!(
            p.amount <= MAX_U63,
            "payout {i}: amount {} >= 2^63",
            p.amount
        );
    }
    let mut slots: Vec<PayoutSlot> = payouts
        .iter()
        .map(|p| PayoutSlot {
            used: true,
            from: p.from,
            to: p.to,
            amount: p.amount,
        })
        .collect();
    slots.resize(
        cap,
        PayoutSlot {
            used: false,
            from: 0,
            to: L1Address::default(),
            amount: 0,
        },
    );
    // The chunk's subtree: its leaves (zero when unused) and the leftmost node per level.
    let mut level: Vec<[u8; 32]> = (0..cap)
        .map(|i| {
            payouts.get(i).map_or([0; 32], |p| {
                state::settlement::payout_leaf(batch, start.offset + i as u64, p)
            })
        })
        .collect();
    let mut leftmost = vec![level[0]];
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| state::settlement::payout_node(&pair[0], &pair[1]))
            .collect();
        leftmost.push(level[0]);
    }
    let d = payouts.len().next_power_of_two().trailing_zeros() as usize;
    let statement = PayoutStatement {
        batch,
        offset: start.offset,
        next_offset: start.offset + cap as u64,
        withdrawals_in: start.withdrawals,
        withdrawals: payout_chain_from(start.withdrawals, payouts.iter().filter(|p| !is_refund(p))),
        refunds_in: start.refunds,
        refunds: payout_chain_from(start.refunds, payouts.iter().filter(|p| is_refund(p))),
        n_in: start.n,
        n: start.n + payouts.len() as u64,
        open_in: start.open,
        open: start.open && payouts.len() == cap,
        refund_in: start.refund,
        refund: payouts.len() == cap && payouts.last().is_some_and(is_refund),
        node: level[0],
        root: leftmost[d],
    };
    Ok((
        PayoutWitness {
            batch,
            start,
            slots,
        },
        statement,
    ))
}

struct SlotTargets {
    used: BoolTarget,
    from: Target,
    to: [Target; 5],
    amount: Target,
}

struct Targets {
    batch: Target,
    offset: Target,
    withdrawals_in: HashOutTarget,
    refunds_in: HashOutTarget,
    n_in: Target,
    open_in: BoolTarget,
    refund_in: BoolTarget,
    slots: Vec<SlotTargets>,
}

/// `sha256(left ‖ right)` of two digests (range-checked words): two compressions.
fn inner_node(
    b: &mut CircuitBuilder<F, D>,
    left: &Sha256Words,
    right: &Sha256Words,
) -> Sha256Words {
    let block: [Target; 16] = core::array::from_fn(|k| if k < 8 { left[k] } else { right[k - 8] });
    let start = iv(b);
    let mid = compress(b, &start, &block);
    compress_constant_block(b, &mid, &PAD_64)
}

/// The payout circuit for `2^depth` slots.
pub struct PayoutCircuit {
    pub data: CircuitData<F, C, D>,
    targets: Targets,
    pub depth: usize,
}

impl PayoutCircuit {
    pub fn build(depth: usize) -> PayoutCircuit {
        Self::build_or_load(depth, &crate::cache::CircuitCache::disabled())
            .expect("an uncached, unpinned build cannot be refused")
    }

    /// [`PayoutCircuit::build`] through `cache` (key: [`PAYOUT_VERSION`] and the depth).
    pub fn build_or_load(
        depth: usize,
        cache: &crate::cache::CircuitCache,
    ) -> anyhow::Result<PayoutCircuit> {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let targets = Self::define(&mut b, depth);
        let key = format!("{PAYOUT_VERSION}/depth={depth}/config=standard_recursion");
        let spec = crate::cache::CircuitSpec {
            name: "payout-chunk",
            key: &key,
            num_public_inputs: PAYOUT_PUBLIC_INPUTS,
            pinned: None,
        };
        let (data, _) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        Ok(PayoutCircuit {
            data,
            targets,
            depth,
        })
    }

    /// Adds the constraints to `b`.
    fn define(b: &mut CircuitBuilder<F, D>, depth: usize) -> Targets {
        let cap = 1usize << depth;
        let zero = b.zero();
        let batch = b.add_virtual_target();
        let batch_u = range_check_u63(b, batch);
        let start = iv(b);
        let pad = [
            b.constant(F::from_canonical_u32(0x8000_0000)),
            b.constant(F::from_canonical_u32(52 * 8)),
        ];

        // Where the chunk starts: free values, tied by the merges to the chunk before and by
        // the settlement circuit to the start of a batch.
        let offset = b.add_virtual_target();
        b.range_check(offset, 32);
        let last_index = b.add_const(offset, F::from_canonical_usize(cap - 1));
        b.range_check(last_index, 32);
        let withdrawals_in = b.add_virtual_hash();
        let refunds_in = b.add_virtual_hash();
        let n_in = b.add_virtual_target();
        b.range_check(n_in, 32);
        let open_in = b.add_virtual_bool_target_safe();
        let refund_in = b.add_virtual_bool_target_safe();
        let mut withdrawals = withdrawals_in;
        let mut refunds = refunds_in;
        let mut prev_refund = refund_in;
        let mut n = n_in;
        let mut prev_used = open_in;
        let mut slots = Vec::with_capacity(cap);
        let mut used_flags = Vec::with_capacity(cap);
        let mut level: Vec<Sha256Words> = Vec::with_capacity(cap);
        for i in 0..cap {
            let used = b.add_virtual_bool_target_safe();
            // Used slots first.
            let p = b.mul(used.target, prev_used.target);
            b.connect(p, used.target);
            prev_used = used;
            used_flags.push(used);
            n = b.add(n, used.target);

            // from = from_lo + 2^32 from_hi, from_lo < 2^32, from_hi a bit: from < 2^33.
            let from = b.add_virtual_target();
            let (from_lo, from_hi) = split_at(b, from, 32);
            b.range_check(from_lo, 32);
            let refund = BoolTarget::new_unsafe(from_hi);
            b.assert_bool(refund);
            // Refunds last: a used slot after a refund is a refund.
            let after_refund = b.and(used, prev_refund);
            let p = b.mul(after_refund.target, refund.target);
            b.connect(p, after_refund.target);
            prev_refund = b.and(used, refund);
            let to: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
            for &t in &to {
                b.range_check(t, 32);
            }
            let amount = b.add_virtual_target();
            let amount_u = range_check_u63(b, amount);

            // The 52 bytes and their padding as sixteen big-endian words.
            let index = b.add_const(offset, F::from_canonical_usize(i));
            let block = [
                batch_u.hi,
                batch_u.lo,
                zero,
                index,
                from_hi,
                from_lo,
                to[0],
                to[1],
                to[2],
                to[3],
                to[4],
                amount_u.hi,
                amount_u.lo,
                pad[0],
                zero,
                pad[1],
            ];
            let digest = compress(b, &start, &block);
            level.push(digest.map(|w| b.mul(used.target, w)));

            let is_withdrawal = b.not(refund);
            let w_on = b.and(used, is_withdrawal);
            withdrawals = absorb_withdrawal(b, withdrawals, w_on, from, &to, amount);
            let r_on = b.and(used, refund);
            refunds = absorb_withdrawal(b, refunds, r_on, from, &to, amount);
            slots.push(SlotTargets {
                used,
                from,
                to,
                amount,
            });
        }

        // The full tree; leftmost[l] is the leftmost node of level l.
        let mut leftmost = vec![level[0]];
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|pair| inner_node(b, &pair[0], &pair[1]))
                .collect();
            leftmost.push(level[0]);
        }

        // The root is leftmost[d], d = ceil(log2 n): s_l = [n > 2^(l-1)] - [n > 2^l], where
        // [n > k] is slot k's used flag (monotone flags), [n > 1/2] = 1 and [n > N] = 0.
        let above = |k: usize| -> Target {
            if k < cap {
                used_flags[k].target
            } else {
                zero
            }
        };
        let one = b.one();
        let mut root = [zero; 8];
        for (l, node) in leftmost.iter().enumerate() {
            let lower = if l == 0 { one } else { above(1 << (l - 1)) };
            let s = b.sub(lower, above(1 << l));
            for (r, &w) in root.iter_mut().zip(node) {
                *r = b.mul_add(s, w, *r);
            }
        }

        let next_offset = b.add_const(offset, F::from_canonical_usize(cap));
        b.register_public_input(batch);
        b.register_public_input(offset);
        b.register_public_input(next_offset);
        b.register_public_inputs(&withdrawals_in.elements);
        b.register_public_inputs(&withdrawals.elements);
        b.register_public_inputs(&refunds_in.elements);
        b.register_public_inputs(&refunds.elements);
        b.register_public_input(n_in);
        b.register_public_input(n);
        b.register_public_input(open_in.target);
        b.register_public_input(prev_used.target);
        b.register_public_input(refund_in.target);
        b.register_public_input(prev_refund.target);
        b.register_public_inputs(leftmost.last().expect("at least one level"));
        b.register_public_inputs(&root);
        Targets {
            batch,
            offset,
            withdrawals_in,
            refunds_in,
            n_in,
            open_in,
            refund_in,
            slots,
        }
    }

    /// Proves `w` whatever it states (the public inputs are those of the witness).
    pub fn prove_any(&self, w: &PayoutWitness) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let cap = 1usize << self.depth;
        ensure!(
            w.slots.len() == cap,
            "the witness has {} slots, the circuit {cap}",
            w.slots.len()
        );
        let t = &self.targets;
        let mut pw = PartialWitness::new();
        pw.set_target(t.batch, F::from_noncanonical_u64(w.batch))?;
        pw.set_target(t.offset, F::from_noncanonical_u64(w.start.offset))?;
        pw.set_hash_target(t.withdrawals_in, w.start.withdrawals.into())?;
        pw.set_hash_target(t.refunds_in, w.start.refunds.into())?;
        pw.set_target(t.n_in, F::from_noncanonical_u64(w.start.n))?;
        pw.set_bool_target(t.open_in, w.start.open)?;
        pw.set_bool_target(t.refund_in, w.start.refund)?;
        for (ts, s) in t.slots.iter().zip(&w.slots) {
            pw.set_bool_target(ts.used, s.used)?;
            pw.set_target(ts.from, F::from_noncanonical_u64(s.from))?;
            for (t, v) in ts.to.iter().zip(s.to.to_field_elements()) {
                pw.set_target(*t, v)?;
            }
            pw.set_target(ts.amount, F::from_noncanonical_u64(s.amount))?;
        }
        self.data.prove(pw)
    }

    /// Proves `w` for `statement` (the public inputs are checked against it).
    pub fn prove(
        &self,
        w: &PayoutWitness,
        statement: &PayoutStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let proof = self.prove_any(w)?;
        ensure!(
            proof.public_inputs == statement.to_fields(),
            "the proof states other payouts than the ones expected"
        );
        Ok(proof)
    }

    pub fn verify(&self, proof: ProofWithPublicInputs<F, C, D>) -> anyhow::Result<()> {
        self.data.verify(proof)
    }
}

#[cfg(test)]
mod tests;
