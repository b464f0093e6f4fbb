//! The split-credit circuit (SPEC 19.4): the per-payee part of a split payment, proven at a
//! fixed cost per payee whatever the split's size, up to the circuit's capacity.
//!
//! A split is one signed transaction whose cost grows with its payees; everything else about
//! it (the signature, the sender's debit and nonce, the fee) has the fixed shape of a transfer.
//! This circuit proves the part that grows: starting from `root_in`, it credits each payee in
//! order and ends at `root_out`, and states what the rest of the proof needs to bind it to the
//! signed transaction: the sender `from`, the payee count `n`, the sum of the parts and the
//! parts' chained digest `d` ([`state::split::parts_digest`], which the split's message hash
//! carries). The sender's slot (debit of `sum + fee`, nonce, signature over `d`) is not built
//! yet, so no batch carries a split; this circuit is what makes one cost a fixed number of rows
//! per payee.
//!
//! **Slots.** The circuit has `capacity` payee slots; the first `n` are live, the rest are
//! padding (amount zero, a write-back of an existing leaf). Per slot: the payee's index (its 32
//! bits are the Merkle path's bits), its amount, its account (the 12 leaf elements) and its
//! 32 siblings.
//!
//! **Rules** (each broken one is named by [`SplitCreditCircuit::refused_by`]):
//!
//! | rule | constraint |
//! |---|---|
//! | `LIVE_PREFIX` | a live slot follows a live slot (the live slots are the first `n`) |
//! | `PADDING` | a padding slot credits nothing |
//! | `ZERO_PART` | a live slot's amount is not zero (19.1 rule 5) |
//! | `PAYEES_NOT_SORTED` | a live slot's payee index is above the previous slot's (19.1 rule 3: none twice) |
//! | `SELF_PAYEE` | no live payee is `from` (19.1 rule 4) |
//! | `SPLIT_OVERFLOW` | the sum of the parts is at most `2^63 - 1` (19.1 rule 6; checked once, on the limbs' sums) |
//! | `BALANCE_OVERFLOW` | each payee's new balance stays at most `2^63 - 1` |
//! | `PATH` | the payee's leaf, as witnessed, is under the running root (so it exists: the empty leaf is `ZERO`, never a leaf hash) |
//! | `STATEMENT` | `root_out`, `n`, the sum and `d` are the ones computed |
//!
//! **Cost** (docs/BENCHMARKS.md, "Split credits in-circuit"): per payee the two Merkle paths
//! (64 Poseidon rows), the old and new leaf hashes (4), the digest step (1), and about ten rows
//! of range checks (index, amount, balance), the balance's addition and the order comparison;
//! the sum costs two additions per payee and a few rows once.

use anyhow::{ensure, Context};
use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::hash_types::{HashOut, HashOutTarget};
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use serde::{Deserialize, Serialize};
use state::account::{AccountIndex, OPERATOR};
use state::apply::State;
use state::hash::Digest;
use state::smt::DEPTH;
use state::split::{parts_digest, Payout};

use crate::circuits::refusal::rule_broken;
use crate::gadgets::range::{add_u63_overflow, range_check_u63, split_at};
use crate::gadgets::smt::{leaf_hash, update_roots, MerklePathTarget};
use crate::witness::{AccountFields, LeafAccess};
use crate::{C, D, F};

/// The rules of the circuit (module docs), for naming the one a refused witness broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitRule {
    LivePrefix,
    Padding,
    ZeroPart,
    PayeesNotSorted,
    SelfPayee,
    SplitOverflow,
    BalanceOverflow,
    Path,
    Statement,
}

impl SplitRule {
    /// A stable name (the native reason code where the rule is one of SPEC 19.1).
    pub const fn code(&self) -> &'static str {
        match self {
            SplitRule::LivePrefix => "LIVE_PREFIX",
            SplitRule::Padding => "PADDING",
            SplitRule::ZeroPart => "ZERO_PART",
            SplitRule::PayeesNotSorted => "PAYEES_NOT_SORTED",
            SplitRule::SelfPayee => "SELF_PAYEE",
            SplitRule::SplitOverflow => "SPLIT_OVERFLOW",
            SplitRule::BalanceOverflow => "BALANCE_OVERFLOW",
            SplitRule::Path => "PATH",
            SplitRule::Statement => "STATEMENT",
        }
    }
}

/// Where a rule was broken: a payee slot, or the statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitRefusal {
    pub slot: Option<usize>,
    pub rule: SplitRule,
}

/// What the circuit states (its public inputs, in order: `root_in (4), root_out (4), from, n,
/// sum, d (4)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCreditStatement {
    pub root_in: Digest,
    pub root_out: Digest,
    pub from: AccountIndex,
    pub n: u32,
    pub sum: u64,
    pub parts_digest: Digest,
}

/// One payee slot's witness: the credit and the payee's leaf before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayeeSlot {
    pub live: bool,
    pub amount: u64,
    /// The payee's index and account (never empty for an honest witness) and siblings.
    pub access: LeafAccess,
}

/// A split's credits, as the circuit takes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCreditWitness {
    pub statement: SplitCreditStatement,
    pub slots: Vec<PayeeSlot>,
}

impl SplitCreditWitness {
    /// The witness of crediting `parts` (a split of `from` that the rules accept) to `state`,
    /// padded to `capacity` slots; `state` is not changed (the credits are written to a local
    /// overlay of its tree). Fails on more parts than slots or a payee that does not exist.
    pub fn build(
        state: &mut State,
        from: AccountIndex,
        parts: &[Payout],
        capacity: usize,
    ) -> anyhow::Result<SplitCreditWitness> {
        ensure!(
            parts.len() <= capacity,
            "{} payees for {capacity} slots",
            parts.len()
        );
        let root_in = state.root();
        let mut overlay = std::collections::HashMap::<(usize, u64), Digest>::new();
        let mut slots = Vec::with_capacity(capacity);
        let mut sum = 0u64;
        let padding = Payout {
            to: OPERATOR,
            amount: state::account::Amount::ZERO,
        };
        for (i, p) in parts
            .iter()
            .chain(std::iter::repeat(&padding))
            .take(capacity)
            .enumerate()
        {
            let live = i < parts.len();
            let account = state
                .account(p.to)
                .with_context(|| format!("payee {} does not exist", p.to))?;
            let mut fields = AccountFields::from_account(account);
            let base = state.proof(p.to).siblings;
            let siblings: Vec<Digest> = (0..DEPTH)
                .map(|l| {
                    let pos = (u64::from(p.to.0) >> l) ^ 1;
                    overlay.get(&(l, pos)).copied().unwrap_or(base[l])
                })
                .collect();
            // A payee credited earlier in this split is impossible (sorted, distinct); the
            // operator as padding after being a payee is: read its balance from the overlay.
            if let Some(prev) = slots
                .iter()
                .rev()
                .find(|s: &&PayeeSlot| s.access.index == p.to.0 && s.live)
            {
                fields.balance = prev.access.account.map_or(0, |a| a.balance) + prev.amount;
            }
            slots.push(PayeeSlot {
                live,
                amount: p.amount.get(),
                access: LeafAccess {
                    index: p.to.0,
                    account: Some(fields),
                    siblings: siblings.clone(),
                },
            });
            let mut after = fields;
            after.balance += p.amount.get();
            let mut cur = after.leaf();
            overlay.insert((0, u64::from(p.to.0)), cur);
            for (l, sib) in siblings.iter().enumerate() {
                let pos = u64::from(p.to.0) >> l;
                cur = if pos & 1 == 0 {
                    state::hash::two_to_one(cur, *sib)
                } else {
                    state::hash::two_to_one(*sib, cur)
                };
                overlay.insert((l + 1, pos >> 1), cur);
            }
            sum += p.amount.get();
        }
        let root_out = overlay
            .get(&(DEPTH, 0))
            .copied()
            .context("a split with no slot")?;
        Ok(SplitCreditWitness {
            statement: SplitCreditStatement {
                root_in,
                root_out,
                from,
                n: parts.len() as u32,
                sum,
                parts_digest: parts_digest(parts),
            },
            slots,
        })
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
        let a = s
            .access
            .account
            .context("a payee slot needs the payee's account")?;
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

/// The split-credit circuit of a given capacity.
pub struct SplitCreditCircuit {
    pub data: CircuitData<F, C, D>,
    /// Gates before padding to a power of two (the circuit's real size).
    pub gates: usize,
    /// Gates of one payee slot (measured on the second, which has the order check).
    pub gates_per_payee: usize,
    public: Vec<Target>,
    slots: Vec<SlotTargets>,
    rules: Vec<(Target, SplitRefusal)>,
}

impl SplitCreditCircuit {
    /// Builds the circuit of `capacity >= 1` payee slots.
    pub fn build(capacity: usize) -> SplitCreditCircuit {
        let capacity = capacity.max(1);
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let root_in = b.add_virtual_hash();
        let root_out = b.add_virtual_hash();
        let from = b.add_virtual_target();
        let n = b.add_virtual_target();
        let sum_claimed = b.add_virtual_target();
        let digest_claimed = b.add_virtual_hash();
        let mut public = Vec::new();
        public.extend(root_in.elements);
        public.extend(root_out.elements);
        public.extend([from, n, sum_claimed]);
        public.extend(digest_claimed.elements);
        b.register_public_inputs(&public);

        let zero = b.zero();
        let one = b.one();
        let two32_minus_1 = b.constant(F::from_canonical_u64((1 << 32) - 1));
        let mut rules = Vec::new();
        let mut root = root_in;
        // The parts' limbs, summed without a check per payee (each sum stays far below p: at
        // most 2^20 slots of limbs below 2^32); the total is checked once after the slots.
        let (mut sum_lo, mut sum_hi) = (zero, zero);
        let mut count = zero;
        let mut digest = b.constant_hash(HashOut::from(Digest::ZERO));
        let mut prev: Option<(BoolTarget, Target)> = None;
        let mut slots = Vec::with_capacity(capacity);
        let mut gates_per_payee = 0;
        for i in 0..capacity {
            let before = b.num_gates();
            let mut rule = |t: Target, rule: SplitRule| {
                rules.push((
                    t,
                    SplitRefusal {
                        slot: Some(i),
                        rule,
                    },
                ))
            };
            let s = SlotTargets::new(&mut b);
            let not_live = b.not(s.live);
            // The live slots come first.
            if let Some((prev_live, _)) = prev {
                let not_prev = b.not(prev_live);
                let t = b.mul(not_prev.target, s.live.target);
                b.assert_zero(t);
                rule(t, SplitRule::LivePrefix);
            }
            let to_bits = b.split_le(s.to, DEPTH);
            let amount = range_check_u63(&mut b, s.amount);
            // Padding credits nothing; a live part is positive.
            let t = b.mul(not_live.target, s.amount);
            b.assert_zero(t);
            rule(t, SplitRule::Padding);
            let is_zero = b.is_equal(s.amount, zero);
            let t = b.mul(s.live.target, is_zero.target);
            b.assert_zero(t);
            rule(t, SplitRule::ZeroPart);
            // Strictly increasing payees: to - prev + 2^32 - 1 = low + 2^32 x gt with gt = 1
            // iff to > prev (both below 2^32).
            if let Some((_, prev_to)) = prev {
                let d = b.sub(s.to, prev_to);
                let d = b.add(d, two32_minus_1);
                let (low, gt) = split_at(&mut b, d, 32);
                b.range_check(low, 32);
                b.assert_bool(BoolTarget::new_unsafe(gt));
                let not_gt = b.sub(one, gt);
                let t = b.mul(s.live.target, not_gt);
                b.assert_zero(t);
                rule(t, SplitRule::PayeesNotSorted);
            }
            let is_from = b.is_equal(s.to, from);
            let t = b.mul(s.live.target, is_from.target);
            b.assert_zero(t);
            rule(t, SplitRule::SelfPayee);
            // The running sum and the payee's balance stay within 2^63 - 1.
            sum_lo = b.add(sum_lo, amount.lo);
            sum_hi = b.add(sum_hi, amount.hi);
            // (Gated on `live` only so that a broken rule conflicts on a gate's own output, which
            // names it; padding credits zero and cannot overflow.)
            let balance = range_check_u63(&mut b, s.balance);
            let (new_balance, bal_over) = add_u63_overflow(&mut b, &balance, &amount);
            let t = b.mul(s.live.target, bal_over.target);
            b.assert_zero(t);
            rule(t, SplitRule::BalanceOverflow);
            // The write: the old leaf is under the running root.
            let old_fields = s.fields(&mut b, s.balance);
            let old_leaf = leaf_hash(&mut b, &old_fields);
            let new_fields = s.fields(&mut b, new_balance.value);
            let new_leaf = leaf_hash(&mut b, &new_fields);
            let (computed, next_root) = update_roots(&mut b, old_leaf, new_leaf, &to_bits, &s.path);
            for k in 0..4 {
                let t = b.sub(computed.elements[k], root.elements[k]);
                b.assert_zero(t);
                rule(t, SplitRule::Path);
            }
            root = next_root;
            // The digest and the count advance on live slots only.
            let mut inputs = digest.elements.to_vec();
            inputs.extend([s.to, s.amount]);
            let step = b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs);
            digest = HashOutTarget::from_vec(
                (0..4)
                    .map(|k| b.select(s.live, step.elements[k], digest.elements[k]))
                    .collect(),
            );
            count = b.add(count, s.live.target);
            prev = Some((s.live, s.to));
            slots.push(s);
            if i == 1 || capacity == 1 {
                gates_per_payee = b.num_gates() - before;
            }
        }
        let statement = |rule| SplitRefusal { slot: None, rule };
        // The total: sum_lo = low + 2^32 carry with low < 2^32 and carry below the number of
        // slots (so both are the integer division's), then hi = sum_hi + carry < 2^31, i.e.
        // total = low + 2^32 hi <= 2^63 - 1. Without the carry's bound a total of p or more
        // could pass as its remainder mod p.
        let carry_bits = (usize::BITS - capacity.leading_zeros()) as usize + 1;
        let (low, carry) = split_at(&mut b, sum_lo, 32);
        b.range_check(low, 32);
        b.range_check(carry, carry_bits);
        let hi = b.add(sum_hi, carry);
        let (hi_low, over) = split_at(&mut b, hi, 31);
        b.range_check(hi_low, 31);
        let t = b.mul(over, over);
        b.assert_zero(t);
        rules.push((t, statement(SplitRule::SplitOverflow)));
        let two32 = b.constant(F::from_canonical_u64(1 << 32));
        let total = b.mul_add(hi_low, two32, low);
        let mut claim = |b: &mut CircuitBuilder<F, D>, x: Target, y: Target| {
            let t = b.sub(x, y);
            b.assert_zero(t);
            rules.push((t, statement(SplitRule::Statement)));
        };
        for k in 0..4 {
            claim(&mut b, root.elements[k], root_out.elements[k]);
            claim(&mut b, digest.elements[k], digest_claimed.elements[k]);
        }
        claim(&mut b, count, n);
        claim(&mut b, total, sum_claimed);
        let gates = b.num_gates();
        SplitCreditCircuit {
            data: b.build::<C>(),
            gates,
            gates_per_payee,
            public,
            slots,
            rules,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Which rule a refused witness broke, from the error of [`SplitCreditCircuit::prove`].
    pub fn refused_by(&self, error: &str) -> Option<SplitRefusal> {
        rule_broken(&self.rules, error)
    }

    /// Proves `w`, whose statement is set as claimed: a witness that does not give it fails.
    pub fn prove(&self, w: &SplitCreditWitness) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        ensure!(
            w.slots.len() == self.capacity(),
            "the witness has {} slots, the circuit {}",
            w.slots.len(),
            self.capacity()
        );
        let mut pw = PartialWitness::new();
        for (t, v) in self.public.iter().zip(statement_elements(&w.statement)) {
            pw.set_target(*t, v)?;
        }
        for (i, (t, s)) in self.slots.iter().zip(&w.slots).enumerate() {
            t.set(&mut pw, s).with_context(|| format!("slot {i}"))?;
        }
        self.data
            .prove(pw)
            .context("the split-credit circuit refused")
    }
}

/// The public inputs of a statement, in the circuit's order.
pub fn statement_elements(s: &SplitCreditStatement) -> Vec<F> {
    let mut out = Vec::with_capacity(15);
    out.extend(s.root_in.elements());
    out.extend(s.root_out.elements());
    out.extend([
        F::from_canonical_u32(s.from.0),
        F::from_canonical_u32(s.n),
        F::from_noncanonical_u64(s.sum),
    ]);
    out.extend(s.parts_digest.elements());
    out
}

/// The statement a proof states.
pub fn statement_of(p: &ProofWithPublicInputs<F, C, D>) -> Option<SplitCreditStatement> {
    let v = &p.public_inputs;
    if v.len() != 15 {
        return None;
    }
    let digest = |i: usize| Digest([v[i], v[i + 1], v[i + 2], v[i + 3]]);
    Some(SplitCreditStatement {
        root_in: digest(0),
        root_out: digest(4),
        from: AccountIndex(u32::try_from(v[8].to_canonical_u64()).ok()?),
        n: u32::try_from(v[9].to_canonical_u64()).ok()?,
        sum: v[10].to_canonical_u64(),
        parts_digest: digest(11),
    })
}

#[cfg(test)]
mod tests;
