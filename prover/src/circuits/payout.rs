//! The payout circuit (SPEC 13.9): the SHA-256 payout tree of a batch (SPEC 15.5), the root the
//! L1 contract pays claims against, built from the same payout list as the Poseidon chain the
//! leaf circuits extend (SPEC 10.3), so that the final circuit can tie the two together.
//!
//! Public inputs (18): `batch` (1), the withdrawals chain `w` (4), the refunds chain `r` (4),
//! `n` (1), the payout root as eight big-endian u32 words (8).
//!
//! A circuit has room for `N = 2^depth` payouts (`depth` fixed when it is built); a slot is used
//! or not (a flag; used slots come first), `n` is the number of used slots. Slot `i` holds
//! `from` (below `2^33`: an account index, or `2^32 + seq` for the refund of deposit `seq`), the
//! destination address as five big-endian u32 limbs `t0..t4` and `amount` (below `2^63`). What
//! it proves:
//!
//! - **Leaves**: the leaf of a used slot `i` is the SHA-256 of the 52 bytes `uint64 batch ‖
//!   uint64 i ‖ uint64 from ‖ to ‖ uint64 amount` (big-endian, one block after padding). The
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
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use serde::{Deserialize, Serialize};
use state::account::MAX_U63;
use state::hash::{hash_no_pad, Digest};
use state::settlement::{Payout, PayoutTree, REFUND_FROM_BASE};
use state::tx::L1Address;

use crate::gadgets::pubdata::absorb_withdrawal;
use crate::gadgets::range::{range_check_u63, split_at};
use crate::gadgets::sha256::{compress, compress_constant_block, iv, Sha256Words};
use crate::gadgets::smt::zero_digest;
use crate::{C, D, F};

/// Number of public inputs.
pub const PAYOUT_PUBLIC_INPUTS: usize = 18;

/// `from` is below this bound: account indices and refunds `2^32 + seq` with `seq < 2^32`.
pub const FROM_BOUND: u64 = 1 << 33;

/// The second block of an inner node: FIPS 180-4 padding of a 64-byte message.
const PAD_64: [u32; 16] = [0x8000_0000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 512];

/// What a payout proof states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutStatement {
    pub batch: u64,
    /// The chain of the withdrawals (SPEC 10.3's withdrawals commitment).
    pub withdrawals: Digest,
    /// The chain of the refunds (`state::settlement::refunds_commitment`).
    pub refunds: Digest,
    /// The number of payouts.
    pub n: u64,
    /// The SHA-256 payout root (SPEC 15.5).
    pub root: [u8; 32],
}

impl PayoutStatement {
    pub fn to_fields(&self) -> Vec<F> {
        let mut v = vec![F::from_canonical_u64(self.batch)];
        v.extend_from_slice(&self.withdrawals.elements());
        v.extend_from_slice(&self.refunds.elements());
        v.push(F::from_canonical_u64(self.n));
        v.extend(
            state::settlement::words_of(&self.root)
                .iter()
                .map(|&w| F::from_canonical_u32(w)),
        );
        v
    }

    /// The inverse of [`PayoutStatement::to_fields`].
    pub fn from_fields(v: &[F]) -> Option<PayoutStatement> {
        if v.len() != PAYOUT_PUBLIC_INPUTS {
            return None;
        }
        let d = |o: usize| Digest([v[o], v[o + 1], v[o + 2], v[o + 3]]);
        Some(PayoutStatement {
            batch: v[0].to_canonical_u64(),
            withdrawals: d(1),
            refunds: d(5),
            n: v[9].to_canonical_u64(),
            root: crate::circuits::public::hash32_of_fields(&v[10..18])?,
        })
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
    pub slots: Vec<PayoutSlot>,
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
    payouts.into_iter().fold(Digest::ZERO, |w, p| {
        let mut buf = w.elements().to_vec();
        buf.extend_from_slice(&payout_record(p));
        hash_no_pad(&buf)
    })
}

/// The witness and statement of batch `batch`'s `payouts` for a circuit of `2^depth` slots.
pub fn payout_witness(
    batch: u64,
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
    let is_refund = |p: &Payout| p.from >= REFUND_FROM_BASE;
    ensure!(
        payouts
            .windows(2)
            .all(|w| !is_refund(&w[0]) || is_refund(&w[1])),
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
    let statement = PayoutStatement {
        batch,
        withdrawals: payout_chain(payouts.iter().filter(|p| !is_refund(p))),
        refunds: payout_chain(payouts.iter().filter(|p| is_refund(p))),
        n: payouts.len() as u64,
        root: PayoutTree::new(batch, payouts).root(),
    };
    Ok((PayoutWitness { batch, slots }, statement))
}

struct SlotTargets {
    used: BoolTarget,
    from: Target,
    to: [Target; 5],
    amount: Target,
}

struct Targets {
    batch: Target,
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
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let targets = Self::define(&mut b, depth);
        PayoutCircuit {
            data: b.build::<C>(),
            targets,
            depth,
        }
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

        let mut withdrawals = zero_digest(b);
        let mut refunds = zero_digest(b);
        let mut prev_refund = b._false();
        let mut n = zero;
        let mut prev_used = b._true();
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
            let index = b.constant(F::from_canonical_usize(i));
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

        b.register_public_input(batch);
        b.register_public_inputs(&withdrawals.elements);
        b.register_public_inputs(&refunds.elements);
        b.register_public_input(n);
        b.register_public_inputs(&root);
        Targets { batch, slots }
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
