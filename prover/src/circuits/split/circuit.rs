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
use state::split::MAX_PAYEES;

use super::{
    OpenSplit, PayeeSlot, SplitStatement, CARRY_LEN, SPLIT_CHAIN_VERSION, SPLIT_PUBLIC_INPUTS,
};
use crate::cache::{CircuitCache, CircuitSpec};
use crate::circuits::refusal::rule_broken;
use crate::gadgets::range::{add_u63_overflow, range_check_u63, split_at};
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
        }
    }

    fn to_vec(self) -> Vec<Target> {
        let mut v = vec![self.open];
        v.extend(self.root_before.elements);
        v.extend(self.root.elements);
        v.extend([self.from, self.count, self.sum_lo, self.sum_hi]);
        v.extend(self.digest.elements);
        v.push(self.prev);
        v
    }
}

struct SlotTargets {
    live: BoolTarget,
    to: Target,
    amount: Target,
    pubkey: [Target; 5],
    balance: Target,
    nonce: Target,
    ext: [Target; 4],
    path: MerklePathTarget,
}

impl SlotTargets {
    fn new(b: &mut CircuitBuilder<F, D>) -> SlotTargets {
        SlotTargets {
            live: b.add_virtual_bool_target_safe(),
            to: b.add_virtual_target(),
            amount: b.add_virtual_target(),
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

    fn set(&self, pw: &mut PartialWitness<F>, s: &PayeeSlot) -> anyhow::Result<()> {
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
        self.path.set(pw, &s.access.siblings)
    }
}

struct LaneTargets {
    start: BoolTarget,
    end: BoolTarget,
    start_root: HashOutTarget,
    start_from: Target,
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
        for (i, (t, s)) in self.slots.iter().zip(&lane.slots).enumerate() {
            t.set(pw, s).with_context(|| format!("slot {i}"))?;
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

/// The chunk circuit of `lanes` lanes of `m` payee slots.
pub struct SplitChainCircuit {
    pub data: CircuitData<F, C, D>,
    /// Gates before padding to a power of two (the circuit's real size).
    pub gates: usize,
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
    /// Builds the circuit of `lanes >= 1` lanes of `m >= 1` slots (no cache).
    pub fn build(lanes: usize, m: usize) -> SplitChainCircuit {
        Self::build_or_load(lanes, m, &CircuitCache::disabled())
            .expect("an uncached build cannot be refused")
    }

    /// Loads the circuit of `lanes` lanes of `m` slots from `cache`, or builds it.
    pub fn build_or_load(
        lanes: usize,
        m: usize,
        cache: &CircuitCache,
    ) -> anyhow::Result<SplitChainCircuit> {
        let (n_lanes, m) = (lanes.max(1), m.max(1));
        let (b, parts) = Self::define(n_lanes, m);
        let key = format!("{SPLIT_CHAIN_VERSION}/lanes={n_lanes}/m={m}/config=standard_recursion");
        let spec = CircuitSpec {
            name: "split-chunk",
            key: &key,
            num_public_inputs: SPLIT_PUBLIC_INPUTS,
            pinned: None,
        };
        let (data, _) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        Ok(SplitChainCircuit {
            data,
            gates: parts.gates,
            acc_in: parts.acc_in,
            carry_in: parts.carry_in,
            lanes: parts.lanes,
            rules: parts.rules,
        })
    }

    /// The constraints of `n_lanes` lanes of `m` slots, and their targets.
    fn define(n_lanes: usize, m: usize) -> (CircuitBuilder<F, D>, Parts) {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let acc_in = b.add_virtual_hash();
        let carry_in = b.add_virtual_targets(CARRY_LEN);
        b.register_public_inputs(&acc_in.elements);
        b.register_public_inputs(&carry_in);
        b.assert_bool(BoolTarget::new_unsafe(carry_in[0]));

        let zero = b.zero();
        let one = b.one();
        let neg_one = b.neg_one();
        let two32_minus_1 = b.constant(F::from_canonical_u64((1 << 32) - 1));
        let two32 = b.constant(F::from_canonical_u64(1 << 32));
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

            let mut slots = Vec::with_capacity(m);
            let mut prev_live: Option<BoolTarget> = None;
            for j in 0..m {
                let s = SlotTargets::new(&mut b);
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
                let is_zero = b.is_equal(s.amount, zero);
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
                // The payee's balance stays within 2^63 - 1 (gated on `live` so that a broken
                // rule conflicts on a gate's own output, which names it; padding credits zero).
                let balance = range_check_u63(&mut b, s.balance);
                let (new_balance, bal_over) = add_u63_overflow(&mut b, &balance, &amount);
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
                let mut inputs = c.digest.elements.to_vec();
                inputs.extend([s.to, s.amount]);
                let step = b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs);
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
            // The record, folded when the lane ends the split.
            let mut record = acc.elements.to_vec();
            record.extend(c.root_before.elements);
            record.extend(c.root.elements);
            record.extend([c.from, c.count, total]);
            record.extend(c.digest.elements);
            let folded = b.hash_n_to_hash_no_pad::<PoseidonHash>(record);
            acc = select_hash(&mut b, end, folded, acc);
            c.open = b.sub(active, end.target);
            lane_targets.push(LaneTargets {
                start,
                end,
                start_root,
                start_from,
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
