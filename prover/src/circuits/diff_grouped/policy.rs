//! A passport record's policy body in the grouped diff circuit (the full shape; SPEC
//! 13.7.1, SPEC 10.4 "Version 3"): the body a batch publishes with the delegate or policy
//! change that set it, `cap(8) window(4) max_payment(8) max_fee(8) expiry(8) card_hash(32)
//! uri_len(1) uri(uri_len) n(2) [payee(4)] x n`, proven to hash to the record's policy digest.
//!
//! - **The header** (a chunk's first slot only: the witness builder starts a chunk at a group
//!   whose passport record carries its body, so the 4,464 rows it takes are paid once per
//!   chunk, not per slot). The passport record's `has_policy` byte is this slot's witness (a
//!   constant 0 in the other slots). The fixed 69 bytes are one 64-byte append and the first
//!   five bytes of a **tail** `fixed[64..69] ‖ uri ‖ n` of `7 + uri_len` bytes (7 to 262),
//!   appended in five windows whose lengths follow from the one-hot `uri_len`. URI bytes past
//!   `uri_len` are masked to 0 (so neither the stream nor the card reads them) and `n` is
//!   placed right after the last one. The card is [`card_digest`] of the hash and the masked
//!   URI's 7-byte chunks; the record's policy digest must be `H(TAG_POLICY, cap, window,
//!   max_payment, max_fee, expiry, allow, card)` with `allow` a witness of the slot, which is
//!   `ZERO` for `n = 0` and otherwise the root the list's runs must rebuild: the header starts
//!   a [`PolicyCarryTargets`] of `n` payees to read.
//! - **The runs**: while payees are left, a group's sub-slots (before its shares runs and its
//!   stream records) read them sixteen at a time, each at least the previous plus one (a list
//!   strictly increasing, SPEC 20.2), each run's subtree folded into the frontier
//!   ([`crate::gadgets::allow`]); the run that reads the last payee closes the tree and
//!   requires the header's `allow`. The carry crosses slots (a group continues while payees
//!   are left) and chunks (public inputs, [`super::PolicyCarry`]).
//!
//! Not proven here, as for the shares record (the decoder's rules, 20.5): that the URI is
//! UTF-8 and that `n <= 1,024` (a 65th run has no proof, so a longer list has none either).
//!
//! Cost: 4,464 rows for the header (its appends, mostly); 190 per sub-slot for a
//! run (sixteen 32-bit splits and range checks, 21 permutations, the frontier's selects and
//! the run's candidate lengths in the sub-slot's append), `tests::rows_per_slot`.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::passport::{MAX_URI_BYTES, TAG_POLICY};

use super::circuit::connect_if;
use super::witness::PolicyBody;
use super::PolicyCarry;
use crate::circuits::diff::le_bytes;
use crate::gadgets::allow::{run_root, Frontier, FRONTIER_LEVELS, RUN_PAYEES};
use crate::gadgets::card::{card_digest, MAX_URI_CHUNKS};
use crate::gadgets::range::range_check_u63;
use crate::gadgets::sha256::stream::ByteStream;
use crate::gadgets::smt::{select_hash, zero_digest};
use crate::{D, F};

/// Bytes of the body before the URI: `cap .. card_hash` and `uri_len`.
const FIXED_BYTES: usize = 8 + 4 + 8 + 8 + 8 + 32 + 1;
/// The tail's longest length: the fixed bytes past the first append, the URI and `n`.
const TAIL_BYTES: usize = FIXED_BYTES - 64 + MAX_URI_BYTES + 2;

/// A [`PolicyCarry`] in the circuit.
#[derive(Clone, Copy)]
pub(super) struct PolicyCarryTargets {
    pub left: Target,
    pub next_min: Target,
    pub frontier: Frontier,
    pub allow: HashOutTarget,
}

impl PolicyCarryTargets {
    /// Fresh targets for a chunk's carry in, range-checked as a [`PolicyCarry`]'s values.
    pub fn new(b: &mut CircuitBuilder<F, D>) -> PolicyCarryTargets {
        let c = PolicyCarryTargets {
            left: b.add_virtual_target(),
            next_min: b.add_virtual_target(),
            frontier: Frontier {
                runs: b.add_virtual_target(),
                left: core::array::from_fn(|_| b.add_virtual_hash()),
                full: b.add_virtual_hash(),
            },
            allow: b.add_virtual_hash(),
        };
        b.range_check(c.left, 16);
        b.range_check(c.next_min, 33);
        b.range_check(c.frontier.runs, FRONTIER_LEVELS + 1);
        c
    }

    /// In [`PolicyCarry::to_fields`]'s order.
    pub fn to_vec(self) -> Vec<Target> {
        let mut v = vec![self.left, self.next_min, self.frontier.runs];
        for h in self
            .frontier
            .left
            .iter()
            .chain([&self.frontier.full, &self.allow])
        {
            v.extend(h.elements);
        }
        v
    }

    pub fn set(&self, pw: &mut PartialWitness<F>, c: &PolicyCarry) -> anyhow::Result<()> {
        pw.set_target(self.left, F::from_canonical_u16(c.left))?;
        pw.set_target(self.next_min, F::from_canonical_u64(c.next_min))?;
        pw.set_target(self.frontier.runs, F::from_canonical_u8(c.runs))?;
        for (t, d) in self.frontier.left.iter().zip(&c.pending) {
            pw.set_hash_target(*t, (*d).into())?;
        }
        pw.set_hash_target(self.frontier.full, c.full.into())?;
        pw.set_hash_target(self.allow, c.allow.into())?;
        Ok(())
    }

    /// Payees are left to read.
    pub fn pending(&self, b: &mut CircuitBuilder<F, D>) -> BoolTarget {
        let zero = b.zero();
        let done = b.is_equal(self.left, zero);
        b.not(done)
    }
}

/// The header's witness targets (a chunk's first slot).
pub(super) struct HeaderTargets {
    /// The passport record's `has_policy` byte.
    pub has: BoolTarget,
    cap: Target,
    window: Target,
    max_payment: Target,
    max_fee: Target,
    expiry: Target,
    card_hash: [Target; 32],
    uri_len: Target,
    uri: [Target; MAX_URI_BYTES],
    n: Target,
    allow: HashOutTarget,
}

impl HeaderTargets {
    pub fn new(b: &mut CircuitBuilder<F, D>) -> HeaderTargets {
        HeaderTargets {
            has: b.add_virtual_bool_target_safe(),
            cap: b.add_virtual_target(),
            window: b.add_virtual_target(),
            max_payment: b.add_virtual_target(),
            max_fee: b.add_virtual_target(),
            expiry: b.add_virtual_target(),
            card_hash: core::array::from_fn(|_| b.add_virtual_target()),
            uri_len: b.add_virtual_target(),
            uri: core::array::from_fn(|_| b.add_virtual_target()),
            n: b.add_virtual_target(),
            allow: b.add_virtual_hash(),
        }
    }

    /// Sets the body, or zeros and `has = 0` without one.
    pub fn set(&self, pw: &mut PartialWitness<F>, body: Option<&PolicyBody>) -> anyhow::Result<()> {
        let u = F::from_canonical_u64;
        let empty = PolicyBody::default();
        let p = body.unwrap_or(&empty);
        anyhow::ensure!(p.uri.len() <= MAX_URI_BYTES, "a URI of at most 255 bytes");
        pw.set_bool_target(self.has, body.is_some())?;
        pw.set_target(self.cap, u(p.cap))?;
        pw.set_target(self.window, u(u64::from(p.window)))?;
        pw.set_target(self.max_payment, u(p.max_payment))?;
        pw.set_target(self.max_fee, u(p.max_fee))?;
        pw.set_target(self.expiry, u(p.expiry))?;
        for (t, &x) in self.card_hash.iter().zip(&p.card_hash) {
            pw.set_target(*t, u(u64::from(x)))?;
        }
        pw.set_target(self.uri_len, u(p.uri.len() as u64))?;
        for (i, t) in self.uri.iter().enumerate() {
            pw.set_target(*t, u(u64::from(p.uri.get(i).copied().unwrap_or(0))))?;
        }
        pw.set_target(self.n, u(u64::from(p.n)))?;
        pw.set_hash_target(self.allow, p.allow.into())?;
        Ok(())
    }
}

/// The header's constraints: where `with_passport` and `has` (a passport record with its body
/// in this slot), appends the body's bytes up to `n` to `stream`, requires its digest to be
/// `policy_digest` and starts `carry` on the list (module docs).
pub(super) fn header(
    b: &mut CircuitBuilder<F, D>,
    t: &HeaderTargets,
    with_passport: BoolTarget,
    policy_digest: HashOutTarget,
    stream: &mut ByteStream,
    carry: &mut PolicyCarryTargets,
) {
    let zero = b.zero();
    let one = b.one();
    let with = b.and(with_passport, t.has);

    // cap(8) window(4) max_payment(8) max_fee(8) expiry(8) card_hash(32) uri_len(1).
    let mut fixed = Vec::with_capacity(FIXED_BYTES);
    let u63 = |b: &mut CircuitBuilder<F, D>, x: Target| {
        let bits = range_check_u63(b, x).bits64(b);
        le_bytes(b, &bits)
    };
    fixed.extend(u63(b, t.cap));
    let window_bits = b.split_le(t.window, 32);
    fixed.extend(le_bytes(b, &window_bits));
    for x in [t.max_payment, t.max_fee, t.expiry] {
        fixed.extend(u63(b, x));
    }
    for &x in &t.card_hash {
        b.range_check(x, 8);
        fixed.push(x);
    }
    b.range_check(t.uri_len, 8);
    fixed.push(t.uri_len);
    debug_assert_eq!(fixed.len(), FIXED_BYTES);
    stream.append(b, &fixed[..64], with);

    // The one-hot URI length, and `lt[i] = [i < uri_len]`.
    let flags: Vec<BoolTarget> = (0..=MAX_URI_BYTES)
        .map(|l| {
            let c = b.constant(F::from_canonical_usize(l));
            b.is_equal(t.uri_len, c)
        })
        .collect();
    let mut at_or_below = zero;
    let mut uri = Vec::with_capacity(MAX_URI_BYTES);
    for (i, &x) in t.uri.iter().enumerate() {
        b.range_check(x, 8);
        at_or_below = b.add(at_or_below, flags[i].target);
        let lt = b.sub(one, at_or_below);
        uri.push(b.mul(x, lt));
    }

    // The tail: fixed[64..69] ‖ uri[..uri_len] ‖ n, 7 + uri_len bytes.
    let n_bits = b.split_le(t.n, 16);
    let n_bytes = le_bytes(b, &n_bits);
    let mut tail: Vec<Target> = fixed[64..].to_vec();
    for i in 0..=MAX_URI_BYTES + 1 {
        let mut x = uri.get(i).copied().unwrap_or(zero);
        if let Some(f) = flags.get(i) {
            x = b.mul_add(n_bytes[0], f.target, x);
        }
        if let Some(f) = i.checked_sub(1).and_then(|k| flags.get(k)) {
            x = b.mul_add(n_bytes[1], f.target, x);
        }
        tail.push(x);
    }
    debug_assert_eq!(tail.len(), TAIL_BYTES);
    let gated: Vec<Target> = flags.iter().map(|f| b.mul(f.target, with.target)).collect();
    for (w, window) in tail.chunks(64).enumerate() {
        // Window `w` takes `clamp(7 + uri_len - 64 w, 0, 64)` bytes.
        let mut lengths = Vec::with_capacity(64);
        for c in 1..=window.len() {
            let first = (64 * w + c).checked_sub(TAIL_BYTES - MAX_URI_BYTES);
            let flag = match (c, first) {
                (64, Some(l)) => gated[l.min(gated.len())..]
                    .iter()
                    .fold(zero, |acc, &g| b.add(acc, g)),
                (64, None) => gated.iter().fold(zero, |acc, &g| b.add(acc, g)),
                (_, Some(l)) if l < gated.len() => gated[l],
                _ => continue,
            };
            lengths.push((c, BoolTarget::new_unsafe(flag)));
        }
        stream.append_var(b, window, &lengths);
    }

    // The card, the policy digest, and the list to read.
    // Bytes as one little-endian number (the hash's words, the URI's 7-byte chunks).
    let mut le = |bytes: &[Target]| {
        bytes.iter().rev().fold(zero, |acc, &x| {
            b.mul_const_add(F::from_canonical_u64(256), acc, x)
        })
    };
    let card_hash: [Target; 8] = core::array::from_fn(|i| le(&fixed[36 + 4 * i..40 + 4 * i]));
    let chunks: [Target; MAX_URI_CHUNKS] =
        core::array::from_fn(|c| le(&uri[7 * c..(7 * c + 7).min(MAX_URI_BYTES)]));
    let k = flags.iter().enumerate().fold(zero, |acc, (l, f)| {
        b.mul_const_add(F::from_canonical_usize(l.div_ceil(7)), f.target, acc)
    });
    let card = card_digest(b, &card_hash, t.uri_len, &chunks, k);
    let mut inputs = vec![
        b.constant(F::from_canonical_u64(TAG_POLICY)),
        t.cap,
        t.window,
        t.max_payment,
        t.max_fee,
        t.expiry,
    ];
    inputs.extend(t.allow.elements);
    inputs.extend(card.elements);
    let digest = b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs);
    connect_if(b, with.target, &digest.elements, &policy_digest.elements);
    let empty = zero_digest(b);
    let no_payee = b.is_equal(t.n, zero);
    let empty_list = b.and(with, no_payee);
    connect_if(b, empty_list.target, &t.allow.elements, &empty.elements);

    carry.left = b.select(with, t.n, carry.left);
    carry.next_min = b.select(with, zero, carry.next_min);
    let fresh = Frontier::empty(b);
    carry.frontier = Frontier {
        runs: b.select(with, fresh.runs, carry.frontier.runs),
        left: core::array::from_fn(|l| select_hash(b, with, fresh.left[l], carry.frontier.left[l])),
        full: select_hash(b, with, fresh.full, carry.frontier.full),
    };
    carry.allow = select_hash(b, with, t.allow, carry.allow);
}

/// A sub-slot's run of payees: their targets, whether it is one, its bytes and its lengths.
pub(super) struct PayeeRun {
    pub payees: [Target; RUN_PAYEES],
    pub is_run: BoolTarget,
    /// The payees' bytes, four each (64).
    pub bytes: Vec<Target>,
    /// `(4 m, flag)` for the runs of `m < 16` payees.
    pub short: Vec<(usize, BoolTarget)>,
    /// A run of sixteen payees (64 bytes).
    pub full: BoolTarget,
}

impl PayeeRun {
    /// Reads up to [`RUN_PAYEES`] payees from `carry` (updated): while any are left, each at
    /// least `next_min`; folds the run into the frontier; the run that reads the last payee
    /// requires the tree's root to be the header's `allow`.
    pub fn define(b: &mut CircuitBuilder<F, D>, carry: &mut PolicyCarryTargets) -> PayeeRun {
        let one = b.one();
        let is_run = carry.pending(b);
        let payees: [Target; RUN_PAYEES] = core::array::from_fn(|_| b.add_virtual_target());
        let mut bytes = Vec::with_capacity(4 * RUN_PAYEES);
        let mut active = Vec::with_capacity(RUN_PAYEES);
        for (e, &p) in payees.iter().enumerate() {
            let bits = b.split_le(p, 32);
            bytes.extend(le_bytes(b, &bits));
            let on = if e == 0 { is_run } else { carry.pending(b) };
            let gap = b.sub(p, carry.next_min);
            let gap = b.mul(on.target, gap);
            b.range_check(gap, 32);
            let next = b.add(p, one);
            carry.next_min = b.select(on, next, carry.next_min);
            carry.left = b.sub(carry.left, on.target);
            active.push(on);
        }
        let active: [BoolTarget; RUN_PAYEES] = core::array::from_fn(|e| active[e]);
        let subtree = run_root(b, &payees, &active);
        carry.frontier = carry.frontier.fold(b, subtree, is_run);
        let zero = b.zero();
        let done = b.is_equal(carry.left, zero);
        let finish = b.and(is_run, done);
        let nonempty = b._false();
        let root = carry.frontier.root(b, nonempty);
        connect_if(b, finish.target, &carry.allow.elements, &root.elements);
        let short = (1..RUN_PAYEES)
            .map(|m| {
                let f = b.sub(active[m - 1].target, active[m].target);
                (4 * m, BoolTarget::new_unsafe(f))
            })
            .collect();
        PayeeRun {
            payees,
            is_run,
            bytes,
            short,
            full: active[RUN_PAYEES - 1],
        }
    }
}
