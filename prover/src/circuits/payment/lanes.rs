//! Nonce lanes in a payment slot (SPEC 20.1; 20.8, "Binding"), part of the signer branch
//! ([`super::agent`]) of a circuit with policy checks.
//!
//! A nonce is `lane x 2^60 + seq`: its bits 60 to 62 are the lane. Lane 0's next sequence
//! number is the leaf's `nonce`; lanes 1 to 7 are the profile's `lanes` part, `ZERO` while all
//! are 0, else `H(s_1, ..., s_7, TAG_LANES)`, which the signer branch's opening binds (the
//! seven values are its witness). The lane's next sequence number is a random access over
//! `[nonce, s_1, ..., s_7]`; the slot's nonce must carry it (`BAD_NONCE`), and it must be below
//! `2^60 - 1` for the spend to take it (`NONCE_EXHAUSTED`: as natively, the lane's last
//! number is never used). A spend raises its lane: the leaf's `nonce` for lane 0, else `s_l`
//! and with it the `lanes` part.
//!
//! Cost: the seven emptiness tests, two permutations (before and after), the random access, the
//! lane's one-hot flags and the seven raises: about 12 rows.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::lanes::{LANES, MAX_SEQ, SEQ_BITS, TAG_LANES};

use crate::gadgets::smt::{select_hash, zero_digest};
use crate::{D, F};

/// The next sequence numbers of lanes 1 to 7, witnessed.
#[derive(Clone, Debug)]
pub(super) struct LaneTargets {
    seqs: [Target; LANES - 1],
}

/// What the lanes give the slot.
pub(super) struct LaneEffects {
    /// The profile's `lanes` part before the slot.
    pub digest: HashOutTarget,
    /// The nonce carries its lane's next sequence number.
    pub nonce_ok: BoolTarget,
    /// That number is the lane's last (`2^60 - 1`), which no spend takes.
    pub exhausted: BoolTarget,
    /// The leaf's `nonce` after the slot.
    pub leaf_nonce: Target,
    /// The `lanes` part after the slot, and whether a lane other than 0 moved.
    pub digest_after: HashOutTarget,
    pub moved: BoolTarget,
}

/// `ZERO` when every value is 0, else `H(s_1, ..., s_7, TAG_LANES)`.
fn digest(b: &mut CircuitBuilder<F, D>, seqs: &[Target]) -> HashOutTarget {
    let zero = b.zero();
    let mut unused = b._true();
    for &s in seqs {
        let z = b.is_equal(s, zero);
        unused = b.and(unused, z);
    }
    let mut e = seqs.to_vec();
    e.push(b.constant(F::from_canonical_u64(TAG_LANES)));
    let h = b.hash_n_to_hash_no_pad::<PoseidonHash>(e);
    let z = zero_digest(b);
    select_hash(b, unused, z, h)
}

/// The lanes of a slot: `nonce_bits` are the slot's nonce's 64 bits (range-checked),
/// `leaf_nonce` A's leaf `nonce`, `advances` whether the slot raises A's nonce.
pub(super) fn build(
    b: &mut CircuitBuilder<F, D>,
    nonce_bits: &[BoolTarget],
    leaf_nonce: Target,
    advances: BoolTarget,
) -> (LaneTargets, LaneEffects) {
    let t = LaneTargets {
        seqs: std::array::from_fn(|_| b.add_virtual_target()),
    };
    let seq_bits = SEQ_BITS as usize;
    let seq = b.le_sum(nonce_bits[..seq_bits].iter());
    let lane_bits = &nonce_bits[seq_bits..seq_bits + 3];
    let lane = b.le_sum(lane_bits.iter());
    let mut table = vec![leaf_nonce];
    table.extend(t.seqs);
    let next = b.random_access(lane, table);
    let nonce_ok = b.is_equal(seq, next);
    let last = b.constant(F::from_canonical_u64(MAX_SEQ));
    let exhausted = b.is_equal(next, last);

    // One flag per lane (the product of its bits or their complements).
    let not_bits: Vec<BoolTarget> = lane_bits.iter().map(|&x| b.not(x)).collect();
    let flags: Vec<BoolTarget> = (0..LANES)
        .map(|l| {
            let pick = |k: usize| match (l >> k) & 1 {
                1 => lane_bits[k],
                _ => not_bits[k],
            };
            let f = b.and(pick(0), pick(1));
            b.and(f, pick(2))
        })
        .collect();
    let leaf_step = b.and(advances, flags[0]);
    let leaf_nonce_after = b.add(leaf_nonce, leaf_step.target);
    let lane0 = flags[0];
    let not_lane0 = b.not(lane0);
    let moved = b.and(advances, not_lane0);
    let after: Vec<Target> = t
        .seqs
        .iter()
        .zip(&flags[1..])
        .map(|(&s, &f)| {
            let step = b.and(moved, f);
            b.add(s, step.target)
        })
        .collect();
    let before = digest(b, &t.seqs);
    let digest_after = {
        let mut e = after;
        e.push(b.constant(F::from_canonical_u64(TAG_LANES)));
        // A lane moved: at least one value is positive, so the digest is the hash.
        let h = b.hash_n_to_hash_no_pad::<PoseidonHash>(e);
        select_hash(b, moved, h, before)
    };
    let effects = LaneEffects {
        digest: before,
        nonce_ok,
        exhausted,
        leaf_nonce: leaf_nonce_after,
        digest_after,
        moved,
    };
    (t, effects)
}

/// Sets the lanes' values.
pub(super) fn set(
    pw: &mut PartialWitness<F>,
    t: &LaneTargets,
    seqs: &[u64; LANES - 1],
) -> anyhow::Result<()> {
    for (&target, &s) in t.seqs.iter().zip(seqs) {
        pw.set_target(target, F::from_noncanonical_u64(s))?;
    }
    Ok(())
}
