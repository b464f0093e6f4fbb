//! The chunk circuit of the split-credit chain (the rules are in the module docs above).

use anyhow::{ensure, Context};
use plonky2::field::types::Field;
use plonky2::hash::hash_types::{HashOut, HashOutTarget};
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use state::hash::Digest;
use state::smt::DEPTH;

use super::witness::{SplitChunkWitness, SplitLane};
use crate::gadgets::agent::list_digest_step;
use state::split::{BPS_WHOLE, MAX_PAYEES};

use super::{
    OpenSplit, PayeeSlot, SplitKind, SplitStatement, CARRY_LEN, SPLIT_CHAIN_VERSION,
    SPLIT_PUBLIC_INPUTS,
};
use crate::cache::{CircuitCache, CircuitSpec};
use crate::circuits::refusal::rule_broken;
use crate::gadgets::range::{add_u63_overflow, range_check_u63, scale_u63, split_at};
use crate::gadgets::smt::{leaf_hash, select_hash, update_roots, MerklePathTarget};
use crate::{C, D, F};

/// The rules of the circuit (module docs), for naming the one a refused witness broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitRule {
    StartWhileOpen,
    CreditOutsideSplit,
    LivePrefix,
    LaneNotFull,
    Padding,
    ZeroPart,
    PayeesNotSorted,
    SelfPayee,
    BalanceOverflow,
    Path,
    EndWithoutSplit,
    NoPayees,
    TooManyPayees,
    SplitOverflow,
    /// A distribution's payee (after the first) is not paid `floor(total x bps / 10000)`: the
    /// remainder is not in `0 .. 10000`, or the basis points or the quotient's carry are out
    /// of range.
    Rounding,
    /// A registration's points do not add up to 10,000 (19.2).
    SharesNotWhole,
    /// A distribution's payouts do not add up to the balance it pays out.
    WrongTotal,
}

impl SplitRule {
    /// A stable name (the native reason code where the rule is one of SPEC 19.1).
    pub const fn code(&self) -> &'static str {
        match self {
            SplitRule::StartWhileOpen => "START_WHILE_OPEN",
            SplitRule::CreditOutsideSplit => "CREDIT_OUTSIDE_SPLIT",
            SplitRule::LivePrefix => "LIVE_PREFIX",
            SplitRule::LaneNotFull => "LANE_NOT_FULL",
            SplitRule::Padding => "PADDING",
            SplitRule::ZeroPart => "ZERO_PART",
            SplitRule::PayeesNotSorted => "PAYEES_NOT_SORTED",
            SplitRule::SelfPayee => "SELF_PAYEE",
            SplitRule::BalanceOverflow => "BALANCE_OVERFLOW",
            SplitRule::Path => "PATH",
            SplitRule::EndWithoutSplit => "END_WITHOUT_SPLIT",
            SplitRule::NoPayees => "NO_PAYEES",
            SplitRule::TooManyPayees => "TOO_MANY_PAYEES",
            SplitRule::SplitOverflow => "SPLIT_OVERFLOW",
            SplitRule::Rounding => "ROUNDING",
            SplitRule::SharesNotWhole => "SHARES_NOT_WHOLE",
            SplitRule::WrongTotal => "WRONG_TOTAL",
        }
    }
}

/// Where a rule was broken: a lane, and the slot in it for a slot's rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitRefusal {
    pub lane: usize,
    pub slot: Option<usize>,
    pub rule: SplitRule,
}

/// The running values of the chain, as targets (the carry of the module docs).
#[derive(Clone, Copy)]
struct Running {
    open: Target,
    root_before: HashOutTarget,
    root: HashOutTarget,
    from: Target,
    count: Target,
    sum_lo: Target,
    sum_hi: Target,
    digest: HashOutTarget,
    prev: Target,
    /// The run's kind (bits; both zero for a split payment).
    register: Target,
    distribute: Target,
    /// A distribution's total, as limbs below `2^32` and `2^31`.
    total_lo: Target,
    total_hi: Target,
}

impl Running {
    fn from_slice(t: &[Target]) -> Running {
        let h = |i: usize| HashOutTarget::from_vec(t[i..i + 4].to_vec());
        Running {
            open: t[0],
            root_before: h(1),
            root: h(5),
            from: t[9],
            count: t[10],
            sum_lo: t[11],
            sum_hi: t[12],
            digest: h(13),
            prev: t[17],
            register: t[18],
            distribute: t[19],
            total_lo: t[20],
            total_hi: t[21],
        }
    }

    fn to_vec(self) -> Vec<Target> {
        let mut v = vec![self.open];
        v.extend(self.root_before.elements);
        v.extend(self.root.elements);
        v.extend([self.from, self.count, self.sum_lo, self.sum_hi]);
        v.extend(self.digest.elements);
        v.extend([
            self.prev,
            self.register,
            self.distribute,
            self.total_lo,
            self.total_hi,
        ]);
        v
    }
}

/// A slot's targets for the registration and distribution kinds (a circuit built with shares).
struct ShareSlotTargets {
    bps: Target,
    /// `total x bps - 10000 x amount`, and the carry between the limbs' equations (below).
    remainder: Target,
    carry: Target,
}

struct SlotTargets {
    live: BoolTarget,
    to: Target,
    amount: Target,
    shares: Option<ShareSlotTargets>,
    pubkey: [Target; 5],
    balance: Target,
    nonce: Target,
    ext: [Target; 4],
    path: MerklePathTarget,
}

impl SlotTargets {
    fn new(b: &mut CircuitBuilder<F, D>, shares: bool) -> SlotTargets {
        SlotTargets {
            live: b.add_virtual_bool_target_safe(),
            to: b.add_virtual_target(),
            amount: b.add_virtual_target(),
            shares: shares.then(|| ShareSlotTargets {
                bps: b.add_virtual_target(),
                remainder: b.add_virtual_target(),
                carry: b.add_virtual_target(),
            }),
            pubkey: std::array::from_fn(|_| b.add_virtual_target()),
            balance: b.add_virtual_target(),
            nonce: b.add_virtual_target(),
            ext: std::array::from_fn(|_| b.add_virtual_target()),
            path: MerklePathTarget::new(b),
        }
    }

    fn fields(&self, b: &mut CircuitBuilder<F, D>, balance: Target) -> [Target; 12] {
        let zero = b.zero();
        let (p, e) = (self.pubkey, self.ext);
        [
            p[0], p[1], p[2], p[3], p[4], balance, self.nonce, zero, e[0], e[1], e[2], e[3],
        ]
    }

    /// Sets the slot; `rounded`: the distribution's total when this slot is one of its payees
    /// after the first (its rounding is checked), else `None`.
    fn set(
        &self,
        pw: &mut PartialWitness<F>,
        s: &PayeeSlot,
        rounded: Option<u64>,
    ) -> anyhow::Result<()> {
        // An idle slot has no account: its fields are zeros (nothing checks them).
        let a = s.access.account.unwrap_or(crate::witness::AccountFields {
            pubkey: [0; 5],
            balance: 0,
            nonce: 0,
            ext: Digest::ZERO,
        });
        pw.set_bool_target(self.live, s.live)?;
        pw.set_target(self.to, F::from_canonical_u32(s.access.index))?;
        pw.set_target(self.amount, F::from_noncanonical_u64(s.amount))?;
        for (t, v) in self.pubkey.iter().zip(a.pubkey) {
            pw.set_target(*t, F::from_noncanonical_u64(v))?;
        }
        pw.set_target(self.balance, F::from_noncanonical_u64(a.balance))?;
        pw.set_target(self.nonce, F::from_noncanonical_u64(a.nonce))?;
        for (t, v) in self.ext.iter().zip(a.ext.0) {
            pw.set_target(*t, v)?;
        }
        if let Some(t) = &self.shares {
            // r = total x bps - 10000 x amount exactly (negative or 10,000 and more for a
            // wrong amount: the bounds refuse it, not the equations), and the carry that
            // makes the limbs' equations hold: c = total_hi x bps - 10000 x amount_hi.
            let (r, c) = match rounded {
                Some(total) => {
                    let (bps, q) = (i128::from(s.bps), i128::from(s.amount));
                    let r = i128::from(total) * bps - 10_000 * q;
                    let c = i128::from(total >> 32) * bps - 10_000 * (q >> 32);
                    (r, c)
                }
                None => (0, 0),
            };
            pw.set_target(t.bps, F::from_canonical_u16(s.bps))?;
            pw.set_target(t.remainder, signed(r))?;
            pw.set_target(t.carry, signed(c))?;
        }
        self.path.set(pw, &s.access.siblings)
    }
}

/// `v` as a field element (negative values as `p - |v|`; `|v| < 2^64` here).
fn signed(v: i128) -> F {
    let m = F::from_noncanonical_u128(v.unsigned_abs());
    if v < 0 {
        -m
    } else {
        m
    }
}

/// A lane's targets for the registration and distribution kinds: the run a starting lane
/// opens (ignored by a lane that does not start one).
struct ShareLaneTargets {
    register: BoolTarget,
    distribute: BoolTarget,
    total: Target,
}

struct LaneTargets {
    start: BoolTarget,
    end: BoolTarget,
    start_root: HashOutTarget,
    start_from: Target,
    shares: Option<ShareLaneTargets>,
    slots: Vec<SlotTargets>,
}

impl LaneTargets {
    fn set(&self, pw: &mut PartialWitness<F>, lane: &SplitLane) -> anyhow::Result<()> {
        ensure!(
            lane.slots.len() == self.slots.len(),
            "a lane of {} slots for {}",
            lane.slots.len(),
            self.slots.len()
        );
        pw.set_bool_target(self.start, lane.start.is_some())?;
        pw.set_bool_target(self.end, lane.end)?;
        pw.set_hash_target(self.start_root, HashOut::from(lane.root))?;
        let from = lane.start.map_or(0, |f| f.0);
        pw.set_target(self.start_from, F::from_canonical_u32(from))?;
        match &self.shares {
            Some(t) => {
                pw.set_bool_target(t.register, lane.kind == SplitKind::Register)?;
                pw.set_bool_target(t.distribute, lane.kind == SplitKind::Distribute)?;
                pw.set_target(t.total, F::from_noncanonical_u64(lane.total))?;
            }
            None => ensure!(
                lane.kind == SplitKind::Pay,
                "a {:?} lane for a chunk circuit built without shares",
                lane.kind
            ),
        }
        for (i, (t, s)) in self.slots.iter().zip(&lane.slots).enumerate() {
            // A distribution's first payee takes the rest: only the others are rounded.
            let first = i == 0 && lane.start.is_some();
            let rounded =
                (lane.kind == SplitKind::Distribute && s.live && !first).then_some(lane.total);
            t.set(pw, s, rounded).with_context(|| format!("slot {i}"))?;
        }
        Ok(())
    }
}

/// Requires `x * y = 0`; returns the product, the target a broken rule conflicts on (what
/// names it, [`SplitChainCircuit::refused_by`]).
fn zero_product(b: &mut CircuitBuilder<F, D>, x: Target, y: Target) -> Target {
    let t = b.mul(x, y);
    b.assert_zero(t);
    t
}

/// Bits of a distribution's basis points (at most 10,000 < 2^14).
pub const BPS_BITS: usize = 14;

/// The chunk circuit of `lanes` lanes of `m` payee slots.
pub struct SplitChainCircuit {
    pub data: CircuitData<F, C, D>,
    /// Gates before padding to a power of two (the circuit's real size).
    pub gates: usize,
    /// Whether it proves registrations and distributions besides split payments.
    shares: bool,
    acc_in: HashOutTarget,
    carry_in: Vec<Target>,
    lanes: Vec<LaneTargets>,
    rules: Vec<(Target, SplitRefusal)>,
}

/// What [`SplitChainCircuit::define`] makes besides the builder.
struct Parts {
    gates: usize,
    acc_in: HashOutTarget,
    carry_in: Vec<Target>,
    lanes: Vec<LaneTargets>,
    rules: Vec<(Target, SplitRefusal)>,
}

impl SplitChainCircuit {
    /// Builds the circuit of `lanes >= 1` lanes of `m >= 1` slots (no cache), for split
    /// payments only.
    pub fn build(lanes: usize, m: usize) -> SplitChainCircuit {
        Self::build_or_load(lanes, m, &CircuitCache::disabled())
            .expect("an uncached build cannot be refused")
    }

    /// [`Self::build`] of the circuit that also proves registrations and distributions
    /// (SPEC 19.5, "Kinds"; about five rows more per payee).
    pub fn build_with_shares(lanes: usize, m: usize) -> SplitChainCircuit {
        Self::load_or_build_kind(lanes, m, true, &CircuitCache::disabled())
            .expect("an uncached build cannot be refused")
    }

    /// Loads the circuit of `lanes` lanes of `m` slots for split payments from `cache`, or
    /// builds it.
    pub fn build_or_load(
        lanes: usize,
        m: usize,
        cache: &CircuitCache,
    ) -> anyhow::Result<SplitChainCircuit> {
        Self::load_or_build_kind(lanes, m, false, cache)
    }

    /// Loads the circuit of `lanes` lanes of `m` slots (with `shares`, the one that also
    /// proves registrations and distributions) from `cache`, or builds it.
    pub fn load_or_build_kind(
        lanes: usize,
        m: usize,
        shares: bool,
        cache: &CircuitCache,
    ) -> anyhow::Result<SplitChainCircuit> {
        let (n_lanes, m) = (lanes.max(1), m.max(1));
        let (b, parts) = Self::define(n_lanes, m, shares);
        let kinds = if shares { "/shares" } else { "" };
        let key =
            format!("{SPLIT_CHAIN_VERSION}/lanes={n_lanes}/m={m}{kinds}/config=standard_recursion");
        let spec = CircuitSpec {
            name: if shares {
                "split-chunk-shares"
            } else {
                "split-chunk"
            },
            key: &key,
            num_public_inputs: SPLIT_PUBLIC_INPUTS,
            pinned: None,
        };
        let (data, _) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        Ok(SplitChainCircuit {
            data,
            gates: parts.gates,
            shares,
            acc_in: parts.acc_in,
            carry_in: parts.carry_in,
            lanes: parts.lanes,
            rules: parts.rules,
        })
    }

    /// The constraints of `n_lanes` lanes of `m` slots, and their targets; with `shares`,
    /// the registration and distribution kinds too.
    fn define(n_lanes: usize, m: usize, shares: bool) -> (CircuitBuilder<F, D>, Parts) {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let acc_in = b.add_virtual_hash();
        let carry_in = b.add_virtual_targets(CARRY_LEN);
        b.register_public_inputs(&acc_in.elements);
        b.register_public_inputs(&carry_in);
        b.assert_bool(BoolTarget::new_unsafe(carry_in[0]));
        if shares {
            // The kind's bits (the total's limbs are the previous chunk's, checked where its
            // distribution started; the first chunk's carry is closed, all zero).
            b.assert_bool(BoolTarget::new_unsafe(carry_in[18]));
            b.assert_bool(BoolTarget::new_unsafe(carry_in[19]));
        } else {
            // A circuit without the kinds carries none.
            for &t in &carry_in[18..] {
                b.assert_zero(t);
            }
        }

        let zero = b.zero();
        let one = b.one();
        let neg_one = b.neg_one();
        let two32_minus_1 = b.constant(F::from_canonical_u64((1 << 32) - 1));
        let two32 = b.constant(F::from_canonical_u64(1 << 32));
        let two16 = b.constant(F::from_canonical_u64(1 << 16));
        let whole = b.constant(F::from_canonical_u16(BPS_WHOLE));
        // count <= MAX_PAYEES iff count + (2^11 - 1 - MAX_PAYEES) < 2^11.
        const _: () = assert!(
            MAX_PAYEES < 1 << 11,
            "the count and carry checks use 11 bits"
        );
        let count_bias = b.constant(F::from_canonical_usize((1 << 11) - 1 - MAX_PAYEES));
        let zero_hash = b.constant_hash(HashOut::from(Digest::ZERO));
        let mut rules = Vec::new();
        let mut acc = acc_in;
        let mut c = Running::from_slice(&carry_in);
        let mut lane_targets = Vec::with_capacity(n_lanes);
        for lane in 0..n_lanes {
            let mut rule = |t: Target, slot: Option<usize>, rule: SplitRule| {
                rules.push((t, SplitRefusal { lane, slot, rule }));
            };
            let start = b.add_virtual_bool_target_safe();
            let end = b.add_virtual_bool_target_safe();
            let start_root = b.add_virtual_hash();
            let start_from = b.add_virtual_target();
            // The start: only when no split is open; it resets every running value.
            let t = zero_product(&mut b, start.target, c.open);
            rule(t, None, SplitRule::StartWhileOpen);
            let active = b.add(start.target, c.open);
            let not_active = b.sub(one, active);
            // `open` is a bit: the carry in's is asserted one, and each lane's is `active - end`
            // with `start x open = 0` and `end <= active`.
            let open = BoolTarget::new_unsafe(c.open);
            c.root_before = select_hash(&mut b, start, start_root, c.root_before);
            // A lane not in an open split (starting one, or idle) takes its root from its
            // witness: an idle lane's writes are then checked against a root of its choice,
            // which is harmless (it credits nothing and folds nothing) and keeps every slot's
            // path check ungated.
            c.root = select_hash(&mut b, open, c.root, start_root);
            c.from = b.select(start, start_from, c.from);
            c.digest = select_hash(&mut b, start, zero_hash, c.digest);
            for x in [&mut c.count, &mut c.sum_lo, &mut c.sum_hi] {
                *x = b.select(start, zero, *x);
            }
            // No payee yet: any index is above -1.
            c.prev = b.select(start, neg_one, c.prev);
            // The kind and a distribution's total, from the starting lane's witness.
            let share_lane = shares.then(|| {
                let t = ShareLaneTargets {
                    register: b.add_virtual_bool_target_safe(),
                    distribute: b.add_virtual_bool_target_safe(),
                    total: b.add_virtual_target(),
                };
                let total = range_check_u63(&mut b, t.total);
                c.register = b.select(start, t.register.target, c.register);
                c.distribute = b.select(start, t.distribute.target, c.distribute);
                c.total_lo = b.select(start, total.lo, c.total_lo);
                c.total_hi = b.select(start, total.hi, c.total_hi);
                t
            });
            // Bits (a starting lane's are safe bool targets, the carry in's asserted). Both set
            // is a run of kind 3, whose record no leaf folds (SPEC 19.5, "Kinds").
            let register = BoolTarget::new_unsafe(c.register);
            let distribute = BoolTarget::new_unsafe(c.distribute);
            let not_register = b.not(register);

            let mut slots = Vec::with_capacity(m);
            let mut prev_live: Option<BoolTarget> = None;
            for j in 0..m {
                let s = SlotTargets::new(&mut b, shares);
                // (Arithmetic operations are what a slot has most of after its hashes: each
                // rule below is one where it can be, `live - live x prev` rather than
                // `(1 - prev) x live`.)
                match prev_live {
                    // The first slot is live only in a split; the others only after a live
                    // slot, so only in a split too.
                    None => {
                        let t = zero_product(&mut b, s.live.target, not_active);
                        rule(t, Some(j), SplitRule::CreditOutsideSplit);
                    }
                    Some(p) => {
                        let t = b.arithmetic(
                            F::NEG_ONE,
                            F::ONE,
                            p.target,
                            s.live.target,
                            s.live.target,
                        );
                        b.assert_zero(t);
                        rule(t, Some(j), SplitRule::LivePrefix);
                    }
                }
                let to_bits = b.split_le(s.to, DEPTH);
                let amount = range_check_u63(&mut b, s.amount);
                // Padding credits nothing (`amount - live x amount`); a live part is positive.
                let t = b.arithmetic(F::NEG_ONE, F::ONE, s.live.target, s.amount, s.amount);
                b.assert_zero(t);
                rule(t, Some(j), SplitRule::Padding);
                // The value the digest folds: a distribution's points, else the amount (a
                // registration's points).
                let value = match &s.shares {
                    Some(t) => b.select(distribute, t.bps, s.amount),
                    None => s.amount,
                };
                let is_zero = b.is_equal(value, zero);
                let t = zero_product(&mut b, s.live.target, is_zero.target);
                rule(t, Some(j), SplitRule::ZeroPart);
                // Strictly increasing payees: to - prev + 2^32 - 1 = low + 2^32 x gt with gt = 1
                // iff to > prev (to below 2^32; prev the previous slot's payee, or -1 at a
                // split's start; the previous slot is live whenever this one is).
                let d = b.sub(s.to, c.prev);
                let d = b.add(d, two32_minus_1);
                let (low, gt) = split_at(&mut b, d, 32);
                b.range_check(low, 32);
                b.assert_bool(BoolTarget::new_unsafe(gt));
                let t = b.arithmetic(F::NEG_ONE, F::ONE, s.live.target, gt, s.live.target);
                b.assert_zero(t);
                rule(t, Some(j), SplitRule::PayeesNotSorted);
                let is_from = b.is_equal(s.to, c.from);
                let t = zero_product(&mut b, s.live.target, is_from.target);
                rule(t, Some(j), SplitRule::SelfPayee);
                if let Some(st) = &s.shares {
                    // A distribution pays payee j > 0 of its run q = floor(total x bps /
                    // 10000): total x bps = 10000 q + r with 0 <= r < 10000, on limbs (the
                    // product is up to 77 bits): with c the carry between them,
                    //   10000 q_lo + r - total_lo bps = 2^32 c,  10000 q_hi - total_hi bps = -c,
                    // each side below 2^48 in size, so the field equations are the integers'
                    // (|c| < 2^14: checked below 2^15). The run's first payee takes the rest
                    // (the end's sum). Every bound is checked in every slot (an honest slot
                    // that is not rounded has r = c = 0); the equations only where rounded.
                    let rounded = b.mul(s.live.target, distribute.target);
                    let rounded = if j == 0 {
                        b.arithmetic(F::NEG_ONE, F::ONE, rounded, start.target, rounded)
                    } else {
                        rounded
                    };
                    let scaled =
                        b.mul_const_add(F::from_canonical_u16(BPS_WHOLE), amount.lo, st.remainder);
                    let lhs = b.arithmetic(F::NEG_ONE, F::ONE, c.total_lo, st.bps, scaled);
                    let lo_eq =
                        b.arithmetic(-F::from_canonical_u64(1 << 32), F::ONE, st.carry, one, lhs);
                    let t = zero_product(&mut b, rounded, lo_eq);
                    rule(t, Some(j), SplitRule::Rounding);
                    let scaled =
                        b.mul_const_add(F::from_canonical_u16(BPS_WHOLE), amount.hi, st.carry);
                    let hi_eq = b.arithmetic(F::NEG_ONE, F::ONE, c.total_hi, st.bps, scaled);
                    let t = zero_product(&mut b, rounded, hi_eq);
                    rule(t, Some(j), SplitRule::Rounding);
                    // 0 <= r, r + 2^14 - 10000 < 2^14, c + 2^15 < 2^16 and bps < 2^14, each a
                    // split whose high part must be zero (named when it is not).
                    let r_up = b.add_const(
                        st.remainder,
                        F::from_canonical_u64((1 << 14) - u64::from(BPS_WHOLE)),
                    );
                    let c_up = b.add_const(st.carry, F::from_canonical_u64(1 << 15));
                    for (x, bits) in [
                        (st.remainder, 14),
                        (r_up, 14),
                        (c_up, 16),
                        (st.bps, BPS_BITS),
                    ] {
                        let (low, over) = split_at(&mut b, x, bits);
                        b.range_check(low, bits);
                        let t = zero_product(&mut b, s.live.target, over);
                        rule(t, Some(j), SplitRule::Rounding);
                    }
                }
                // The payee's balance stays within 2^63 - 1 (gated on `live` so that a broken
                // rule conflicts on a gate's own output, which names it; padding credits zero).
                // A registration credits nothing: its amounts are points.
                let credit = if shares {
                    scale_u63(&mut b, not_register, &amount)
                } else {
                    amount.clone()
                };
                let balance = range_check_u63(&mut b, s.balance);
                let (new_balance, bal_over) = add_u63_overflow(&mut b, &balance, &credit);
                let t = zero_product(&mut b, s.live.target, bal_over.target);
                rule(t, Some(j), SplitRule::BalanceOverflow);
                // The write: the old leaf is under the running root.
                let old_fields = s.fields(&mut b, s.balance);
                let old_leaf = leaf_hash(&mut b, &old_fields);
                let new_fields = s.fields(&mut b, new_balance.value);
                let new_leaf = leaf_hash(&mut b, &new_fields);
                let (computed, next_root) =
                    update_roots(&mut b, old_leaf, new_leaf, &to_bits, &s.path);
                for k in 0..4 {
                    let t = b.sub(computed.elements[k], c.root.elements[k]);
                    b.assert_zero(t);
                    rule(t, Some(j), SplitRule::Path);
                }
                c.root = next_root;
                // The digest, the count, the sums and the last payee advance on live slots
                // (the sums on padding too: its amount is zero).
                let step = list_digest_step(&mut b, c.digest, s.to, value);
                c.digest = select_hash(&mut b, s.live, step, c.digest);
                c.count = b.add(c.count, s.live.target);
                c.sum_lo = b.add(c.sum_lo, amount.lo);
                c.sum_hi = b.add(c.sum_hi, amount.hi);
                c.prev = s.to;
                prev_live = Some(s.live);
                slots.push(s);
            }
            // A split that goes on past this lane filled it.
            let last_live = prev_live.map_or(zero, |p| p.target);
            let not_end = b.not(end);
            let not_full = b.sub(one, last_live);
            let gap = b.mul(active, not_full);
            let t = zero_product(&mut b, gap, not_end.target);
            rule(t, None, SplitRule::LaneNotFull);
            // The end: of a split, with 1 to MAX_PAYEES payees and a sum below 2^63.
            let t = zero_product(&mut b, end.target, not_active);
            rule(t, None, SplitRule::EndWithoutSplit);
            let none = b.is_equal(c.count, zero);
            let t = zero_product(&mut b, end.target, none.target);
            rule(t, None, SplitRule::NoPayees);
            let biased = b.add(c.count, count_bias);
            let (count_low, count_over) = split_at(&mut b, biased, 11);
            b.range_check(count_low, 11);
            let t = zero_product(&mut b, end.target, count_over);
            rule(t, None, SplitRule::TooManyPayees);
            // The total: sum_lo = low + 2^32 carry with low < 2^32 and carry < 2^11 (at most
            // MAX_PAYEES limbs below 2^32, so both are the integer division's), then hi =
            // sum_hi + carry < 2^31, i.e. total = low + 2^32 hi <= 2^63 - 1. Without the
            // carry's bound a total of p or more could pass as its remainder mod p.
            let (low, carry) = split_at(&mut b, c.sum_lo, 32);
            b.range_check(low, 32);
            b.range_check(carry, 11);
            let hi = b.add(c.sum_hi, carry);
            let (hi_low, over) = split_at(&mut b, hi, 31);
            b.range_check(hi_low, 31);
            let t = zero_product(&mut b, end.target, over);
            rule(t, None, SplitRule::SplitOverflow);
            let total = b.mul_add(hi_low, two32, low);
            let kind = if shares {
                // A registration's points make 10,000; a distribution pays out its total.
                let ends = b.mul(end.target, register.target);
                let off = b.sub(total, whole);
                let t = zero_product(&mut b, ends, off);
                rule(t, None, SplitRule::SharesNotWhole);
                let ends = b.mul(end.target, distribute.target);
                let want = b.mul_add(c.total_hi, two32, c.total_lo);
                let off = b.sub(total, want);
                let t = zero_product(&mut b, ends, off);
                rule(t, None, SplitRule::WrongTotal);
                // register + 2 distribute (SplitKind::number).
                b.mul_const_add(F::TWO, distribute.target, register.target)
            } else {
                zero
            };
            // The record, folded when the lane ends the split; its `n` element names the kind.
            let n_kind = b.mul_add(kind, two16, c.count);
            let mut record = acc.elements.to_vec();
            record.extend(c.root_before.elements);
            record.extend(c.root.elements);
            record.extend([c.from, n_kind, total]);
            record.extend(c.digest.elements);
            let folded = b.hash_n_to_hash_no_pad::<PoseidonHash>(record);
            acc = select_hash(&mut b, end, folded, acc);
            c.open = b.sub(active, end.target);
            lane_targets.push(LaneTargets {
                start,
                end,
                start_root,
                start_from,
                shares: share_lane,
                slots,
            });
        }
        // The carry out: the open split, or all zero.
        let carry_out: Vec<Target> = c
            .to_vec()
            .into_iter()
            .enumerate()
            .map(|(i, t)| if i == 0 { t } else { b.mul(c.open, t) })
            .collect();
        b.register_public_inputs(&acc.elements);
        b.register_public_inputs(&carry_out);
        let gates = b.num_gates();
        let parts = Parts {
            gates,
            acc_in,
            carry_in,
            lanes: lane_targets,
            rules,
        };
        (b, parts)
    }

    /// The gates of the circuit of `lanes` lanes of `m` slots (with `shares`, the kinds), not
    /// built (for the cost per payee).
    pub fn gate_count(lanes: usize, m: usize, shares: bool) -> usize {
        Self::define(lanes.max(1), m.max(1), shares).1.gates
    }

    /// Whether the circuit proves registrations and distributions besides split payments.
    pub fn has_shares(&self) -> bool {
        self.shares
    }

    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Payee slots per lane.
    pub fn lane_payees(&self) -> usize {
        self.lanes.first().map_or(0, |l| l.slots.len())
    }

    /// Which rule a refused witness broke, from the error of [`SplitChainCircuit::prove`].
    pub fn refused_by(&self, error: &str) -> Option<SplitRefusal> {
        rule_broken(&self.rules, error)
    }

    /// Proves one chunk; fails if a rule is broken or the proof states another statement than
    /// the witness's (its outputs are computed, not set).
    pub fn prove(&self, w: &SplitChunkWitness) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        self.prove_lanes(&w.lanes, &w.statement)
    }

    /// [`SplitChainCircuit::prove`] of `lanes` claimed to prove `statement`.
    pub fn prove_lanes(
        &self,
        lanes: &[SplitLane],
        statement: &SplitStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        ensure!(
            lanes.len() == self.lanes(),
            "the witness has {} lanes, the circuit {}",
            lanes.len(),
            self.lanes()
        );
        let mut pw = PartialWitness::new();
        pw.set_hash_target(self.acc_in, HashOut::from(statement.acc_in))?;
        let carry = OpenSplit::carry_elements(statement.carry_in.as_ref());
        for (t, v) in self.carry_in.iter().zip(carry) {
            pw.set_target(*t, v)?;
        }
        for (i, (t, lane)) in self.lanes.iter().zip(lanes).enumerate() {
            t.set(&mut pw, lane).with_context(|| format!("lane {i}"))?;
        }
        let proof = self
            .data
            .prove(pw)
            .context("the split-credit circuit refused")?;
        ensure!(
            SplitStatement::from_public_inputs(&proof.public_inputs) == Some(*statement),
            "the chunk proves another statement than its witness claims"
        );
        Ok(proof)
    }
}
