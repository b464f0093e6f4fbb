//! The policy circuit (SPEC 20.4, 20.8): an agent's spend judged by its passport, in-circuit, at
//! a fixed cost, and the agent's `ext` before and after it.
//!
//! This is the part a payment slot gains when its signer is an agent: from the agent's `ext` it
//! opens the profile, the passport and the policy, checks the six rules of 20.4 against the
//! spend (`value`, `fee`, the payee, the block time), and states the `ext` the spend leaves
//! (the passport's new `window_id` and `spent`). The slot that binds it (the leaf's `ext` and
//! the transaction's fields to this statement) is not built yet, so no batch carries an agent;
//! this circuit is what makes the checks cost a fixed number of rows, measured against the
//! issue's budget (60 rows without an allow-list, one Merkle path more with one).
//!
//! Two shapes: without a list (a policy whose `allow` is `ZERO`, or a spend that pays nobody
//! new) and with one (a ten-hash membership path of the payee, [`state::passport::AllowList`]).
//!
//! **Rules** (each broken one is named by [`PolicyCircuit::refused_by`]):
//!
//! | rule | constraint |
//! |---|---|
//! | `REVOKED` | `revoked^2 = 0` |
//! | `POLICY_EXPIRED` | `T <= expiry` (two-limb comparison) |
//! | `POLICY_FEE` | `fee <= max_fee` |
//! | `POLICY_PAYMENT` | `value <= max_payment` |
//! | `POLICY_PAYEE` | with a list: the payee's leaf `(payee, 1, 0, 0)` is under `allow`, and no withdrawal to L1; without: `allow = ZERO` or the spend pays nobody |
//! | `WINDOW` | `T = q x window + r` with `r < window` (or `q = 0` when `window = 0`), `q < 2^32` |
//! | `POLICY_CAP` | `spent' + value + fee <= cap`, `spent' = spent` if `q = window_id` else 0, no sum past `2^63 - 1` |
//! | `STATEMENT` | `ext_before` opens to the witnessed parts and `ext_after` is the one they leave |
//!
//! `q < 2^32` bounds `q x window + r` below `p`, so `q` is the integer quotient: windows are
//! sound until `T >= 2^32 x window` (the year 2106 for one-second windows).

#[cfg(test)]
mod tests;

use anyhow::{ensure, Context};
use plonky2::field::types::Field;
use plonky2::hash::hash_types::{HashOut, HashOutTarget};
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use serde::{Deserialize, Serialize};
use state::account::{AccountIndex, Timestamp};
use state::apply::State;
use state::ext::{ext_digest, Profile};
use state::hash::Digest;
use state::passport::{charge, Payees, Spend, ALLOW_DEPTH, TAG_POLICY};

use crate::circuits::refusal::rule_broken;
use crate::gadgets::range::{add_u63_overflow, is_le_u63, range_check_u63, split_at};
use crate::gadgets::smt::hash_level;
use crate::{C, D, F};

/// The rules of the circuit (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyRule {
    Revoked,
    PolicyExpired,
    PolicyFee,
    PolicyPayment,
    PolicyPayee,
    Window,
    PolicyCap,
    Statement,
}

impl PolicyRule {
    /// A stable name (the native reason code where the rule is one of SPEC 20.4).
    pub const fn code(&self) -> &'static str {
        match self {
            PolicyRule::Revoked => "REVOKED",
            PolicyRule::PolicyExpired => "POLICY_EXPIRED",
            PolicyRule::PolicyFee => "POLICY_FEE",
            PolicyRule::PolicyPayment => "POLICY_PAYMENT",
            PolicyRule::PolicyPayee => "POLICY_PAYEE",
            PolicyRule::Window => "WINDOW",
            PolicyRule::PolicyCap => "POLICY_CAP",
            PolicyRule::Statement => "STATEMENT",
        }
    }
}

/// The spend as the circuit states it (public inputs after the two `ext`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendStatement {
    pub time: u64,
    pub value: u64,
    pub fee: u64,
    pub payee: u32,
    /// The spend pays `payee` (a transfer, an open; a split's payees one by one).
    pub pays_account: bool,
    /// The spend leaves to L1 (a withdrawal).
    pub to_l1: bool,
}

/// What the circuit states: `ext_before (4), ext_after (4), time, value, fee, payee,
/// pays_account, to_l1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatement {
    pub ext_before: Digest,
    pub ext_after: Digest,
    pub spend: SpendStatement,
}

/// The policy's fields as committed (SPEC 20.2), the list and card as their digests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFields {
    pub cap: u64,
    pub window: u64,
    pub max_payment: u64,
    pub max_fee: u64,
    pub expiry: u64,
    pub allow: Digest,
    pub card: Digest,
}

/// Everything the circuit takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyWitness {
    pub statement: PolicyStatement,
    /// The agent's other `ext` parts, kept as they are.
    pub streams_root: Digest,
    pub shares: Digest,
    pub lanes: Digest,
    pub owner: u32,
    pub policy: PolicyFields,
    pub revoked: u64,
    pub window_id: u64,
    pub spent: u64,
    /// `T = q x window + r` (`q = 0, r = T` for `window = 0`).
    pub q: u64,
    pub r: u64,
    /// The payee's position in the allow-list and its ten siblings (the list shape only).
    pub membership: Option<(usize, Vec<Digest>)>,
}

impl PolicyWitness {
    /// The witness of `agent`'s `spend` at block time `now`, which the rules must accept, with
    /// a membership path when the policy has a list and the spend pays an account.
    pub fn build(
        state: &State,
        agent: AccountIndex,
        spend: &Spend<'_>,
        now: Timestamp,
    ) -> anyhow::Result<PolicyWitness> {
        let passport = state
            .passport(agent)
            .with_context(|| format!("account {agent} is not an agent"))?;
        let charged = charge(passport, spend, now).map_err(|r| anyhow::anyhow!("{r}"))?;
        let policy = passport.policy();
        let (window_id, spent) = passport.spent();
        let (payee, pays_account, to_l1) = match spend.payees {
            Payees::None => (0, false, false),
            Payees::One(to) => (to.0, true, false),
            Payees::Parts(_) => anyhow::bail!("a split's payees are checked one slot each"),
            Payees::L1 => (0, false, true),
        };
        let membership = if pays_account && !policy.allow.is_anyone() {
            let (pos, path) = policy
                .allow
                .path(AccountIndex(payee))
                .context("the payee is not listed")?;
            Some((pos, path.to_vec()))
        } else {
            None
        };
        let streams_root = state.streams_of(agent).root();
        let lanes = state.lanes_of(agent).digest();
        let ext_before = state.account(agent).context("no account")?.ext;
        let mut after = passport.clone();
        after.record(charged);
        let profile = Profile {
            shares: Digest::ZERO,
            passport: after.digest(),
            lanes,
        };
        let ext_after = ext_digest(streams_root, profile.digest());
        let t = now.get();
        let window = u64::from(policy.window);
        // A lifetime cap (window 0) has the one window 0.
        let (q, r) = t
            .checked_div(window)
            .map_or((0, t), |q| (q, t - q * window));
        Ok(PolicyWitness {
            statement: PolicyStatement {
                ext_before,
                ext_after,
                spend: SpendStatement {
                    time: t,
                    value: spend.value.get(),
                    fee: spend.fee.get(),
                    payee,
                    pays_account,
                    to_l1,
                },
            },
            streams_root,
            shares: Digest::ZERO,
            lanes,
            owner: passport.owner().0,
            policy: PolicyFields {
                cap: policy.cap.get(),
                window,
                max_payment: policy.max_payment.get(),
                max_fee: policy.max_fee.get(),
                expiry: policy.expiry.get(),
                allow: policy.allow.root(),
                card: policy.card.digest(),
            },
            revoked: u64::from(passport.is_revoked()),
            window_id,
            spent: spent.get(),
            q,
            r,
            membership,
        })
    }
}

struct Targets {
    public: Vec<Target>,
    streams_root: HashOutTarget,
    shares: HashOutTarget,
    lanes: HashOutTarget,
    owner: Target,
    policy: [Target; 5],
    allow: HashOutTarget,
    card: HashOutTarget,
    revoked: Target,
    window_id: Target,
    spent: Target,
    q: Target,
    r: Target,
    membership: Option<(Vec<BoolTarget>, Vec<HashOutTarget>)>,
}

/// The policy circuit of one shape.
pub struct PolicyCircuit {
    pub data: CircuitData<F, C, D>,
    /// Gates before padding to a power of two.
    pub gates: usize,
    /// Gates of the membership path (0 without a list).
    pub gates_of_list: usize,
    with_list: bool,
    targets: Targets,
    rules: Vec<(Target, PolicyRule)>,
}

/// Asserts `t = 0`, naming `rule` when it is not (`t` is a gate's own output).
fn require_zero(
    b: &mut CircuitBuilder<F, D>,
    rules: &mut Vec<(Target, PolicyRule)>,
    t: Target,
    rule: PolicyRule,
) {
    b.assert_zero(t);
    rules.push((t, rule));
}

/// Asserts `ok`, naming `rule` when it does not hold.
fn require(
    b: &mut CircuitBuilder<F, D>,
    rules: &mut Vec<(Target, PolicyRule)>,
    ok: BoolTarget,
    rule: PolicyRule,
) {
    let one = b.one();
    let t = b.sub(one, ok.target);
    require_zero(b, rules, t, rule);
}

fn hash(b: &mut CircuitBuilder<F, D>, inputs: Vec<Target>) -> HashOutTarget {
    b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs)
}

impl PolicyCircuit {
    /// Builds the shape with (`with_list`) or without an allow-list membership path.
    pub fn build(with_list: bool) -> PolicyCircuit {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let ext_before = b.add_virtual_hash();
        let ext_after = b.add_virtual_hash();
        let [time, value, fee, payee] = std::array::from_fn(|_| b.add_virtual_target());
        let pays_account = b.add_virtual_bool_target_safe();
        let to_l1 = b.add_virtual_bool_target_safe();
        let mut public = Vec::new();
        public.extend(ext_before.elements);
        public.extend(ext_after.elements);
        public.extend([time, value, fee, payee, pays_account.target, to_l1.target]);
        b.register_public_inputs(&public);
        let start = b.num_gates();

        let streams_root = b.add_virtual_hash();
        let shares = b.add_virtual_hash();
        let lanes = b.add_virtual_hash();
        let owner = b.add_virtual_target();
        let policy: [Target; 5] = std::array::from_fn(|_| b.add_virtual_target());
        let [cap, window, max_payment, max_fee, expiry] = policy;
        let allow = b.add_virtual_hash();
        let card = b.add_virtual_hash();
        let revoked = b.add_virtual_target();
        let window_id = b.add_virtual_target();
        let spent = b.add_virtual_target();
        let q = b.add_virtual_target();
        let r = b.add_virtual_target();
        let mut rules = Vec::new();
        let one = b.one();
        let zero = b.zero();

        // Open ext: ext = H(streams_root, H(shares, H(owner, policy, revoked, window_id, spent),
        // lanes)), with policy = H(TAG_POLICY, cap, window, max_payment, max_fee, expiry, allow,
        // card). An agent's profile is never ZERO (its passport is a hash), so ext is the hash.
        let tag = b.constant(F::from_canonical_u64(TAG_POLICY));
        let mut policy_inputs = vec![tag, cap, window, max_payment, max_fee, expiry];
        policy_inputs.extend(allow.elements);
        policy_inputs.extend(card.elements);
        let policy_digest = hash(&mut b, policy_inputs);
        let ext_of = |b: &mut CircuitBuilder<F, D>, revoked: Target, wid: Target, spent: Target| {
            let mut p = vec![owner];
            p.extend(policy_digest.elements);
            p.extend([revoked, wid, spent]);
            let passport = hash(b, p);
            let mut pr = shares.elements.to_vec();
            pr.extend(passport.elements);
            pr.extend(lanes.elements);
            let profile = hash(b, pr);
            let mut e = streams_root.elements.to_vec();
            e.extend(profile.elements);
            hash(b, e)
        };
        let before = ext_of(&mut b, revoked, window_id, spent);
        for k in 0..4 {
            let t = b.sub(before.elements[k], ext_before.elements[k]);
            require_zero(&mut b, &mut rules, t, PolicyRule::Statement);
        }

        // 1. Not revoked.
        let t = b.mul(revoked, revoked);
        require_zero(&mut b, &mut rules, t, PolicyRule::Revoked);
        // 2-4. Time, fee and value against their bounds (two-limb comparisons).
        let time_u = range_check_u63(&mut b, time);
        let expiry_u = range_check_u63(&mut b, expiry);
        let ok = is_le_u63(&mut b, &time_u, &expiry_u);
        require(&mut b, &mut rules, ok, PolicyRule::PolicyExpired);
        let fee_u = range_check_u63(&mut b, fee);
        let max_fee_u = range_check_u63(&mut b, max_fee);
        let ok = is_le_u63(&mut b, &fee_u, &max_fee_u);
        require(&mut b, &mut rules, ok, PolicyRule::PolicyFee);
        let value_u = range_check_u63(&mut b, value);
        let max_payment_u = range_check_u63(&mut b, max_payment);
        let ok = is_le_u63(&mut b, &value_u, &max_payment_u);
        require(&mut b, &mut rules, ok, PolicyRule::PolicyPayment);

        // 5. The payee. has_list = allow != ZERO.
        let allow_sq: Vec<Target> = allow.elements.iter().map(|&e| b.mul(e, e)).collect();
        let allow_norm = b.add_many(allow_sq);
        let no_list = b.is_equal(allow_norm, zero);
        let has_list = b.not(no_list);
        let t = b.mul(has_list.target, to_l1.target);
        require_zero(&mut b, &mut rules, t, PolicyRule::PolicyPayee);
        let list_start = b.num_gates();
        let membership = if with_list {
            let bits: Vec<BoolTarget> = (0..ALLOW_DEPTH)
                .map(|_| b.add_virtual_bool_target_safe())
                .collect();
            let siblings: Vec<HashOutTarget> =
                (0..ALLOW_DEPTH).map(|_| b.add_virtual_hash()).collect();
            let mut cur = HashOutTarget::from_vec(vec![payee, one, zero, zero]);
            for (bit, sib) in bits.iter().zip(&siblings) {
                cur = hash_level(&mut b, cur, *sib, *bit);
            }
            let gate = b.mul(has_list.target, pays_account.target);
            for k in 0..4 {
                let d = b.sub(cur.elements[k], allow.elements[k]);
                let t = b.mul(gate, d);
                require_zero(&mut b, &mut rules, t, PolicyRule::PolicyPayee);
            }
            Some((bits, siblings))
        } else {
            // Without a path, a spend that pays an account needs a policy without a list.
            let t = b.mul(has_list.target, pays_account.target);
            require_zero(&mut b, &mut rules, t, PolicyRule::PolicyPayee);
            None
        };
        let gates_of_list = if with_list {
            b.num_gates() - list_start
        } else {
            0
        };

        // The window: T = q x window + r, q < 2^32, and r < window unless window = 0 (then
        // q = 0). e = window - r - 1 + 2^32 is in [2^32, 2^33) iff r < window (r < 2^63).
        b.range_check(window, 32);
        b.range_check(q, 32);
        range_check_u63(&mut b, r);
        let qw = b.mul(q, window);
        let t_again = b.add(qw, r);
        let t = b.sub(t_again, time);
        require_zero(&mut b, &mut rules, t, PolicyRule::Window);
        let lifetime = b.is_equal(window, zero);
        let t = b.mul(lifetime.target, q);
        require_zero(&mut b, &mut rules, t, PolicyRule::Window);
        let off = b.constant(F::from_canonical_u64((1 << 32) - 1));
        let e = b.sub(window, r);
        let e = b.add(e, off);
        let (low, ge) = split_at(&mut b, e, 32);
        b.range_check(low, 32);
        let ge = BoolTarget::new_unsafe(ge);
        b.assert_bool(ge);
        let short = b.not(ge);
        let not_lifetime = b.not(lifetime);
        let t = b.mul(not_lifetime.target, short.target);
        require_zero(&mut b, &mut rules, t, PolicyRule::Window);

        // 6. The cap: spent' + value + fee <= cap, none of the sums past 2^63 - 1.
        let same = b.is_equal(q, window_id);
        let spent_now = b.mul(same.target, spent);
        let spent_u = range_check_u63(&mut b, spent_now);
        let (s1, o1) = add_u63_overflow(&mut b, &spent_u, &value_u);
        let (s2, o2) = add_u63_overflow(&mut b, &s1, &fee_u);
        let cap_u = range_check_u63(&mut b, cap);
        let le = is_le_u63(&mut b, &s2, &cap_u);
        let no1 = b.not(o1);
        let no2 = b.not(o2);
        let ok = b.and(le, no1);
        let ok = b.and(ok, no2);
        require(&mut b, &mut rules, ok, PolicyRule::PolicyCap);

        // The ext the spend leaves: window q, spent s2, not revoked.
        let after = ext_of(&mut b, zero, q, s2.value);
        for k in 0..4 {
            let t = b.sub(after.elements[k], ext_after.elements[k]);
            require_zero(&mut b, &mut rules, t, PolicyRule::Statement);
        }
        let gates = b.num_gates() - start;
        let data = b.build::<C>();
        PolicyCircuit {
            data,
            gates,
            gates_of_list,
            with_list,
            targets: Targets {
                public,
                streams_root,
                shares,
                lanes,
                owner,
                policy,
                allow,
                card,
                revoked,
                window_id,
                spent,
                q,
                r,
                membership,
            },
            rules,
        }
    }

    /// Whether this shape has the membership path.
    pub fn with_list(&self) -> bool {
        self.with_list
    }

    fn witness(&self, w: &PolicyWitness) -> anyhow::Result<PartialWitness<F>> {
        let t = &self.targets;
        let mut pw = PartialWitness::new();
        let s = &w.statement;
        let f = F::from_noncanonical_u64;
        let mut public = s.ext_before.0.to_vec();
        public.extend(s.ext_after.0);
        public.extend([
            f(s.spend.time),
            f(s.spend.value),
            f(s.spend.fee),
            F::from_canonical_u32(s.spend.payee),
            F::from_bool(s.spend.pays_account),
            F::from_bool(s.spend.to_l1),
        ]);
        for (target, v) in t.public.iter().zip(public) {
            pw.set_target(*target, v)?;
        }
        pw.set_hash_target(t.streams_root, HashOut::from(w.streams_root))?;
        pw.set_hash_target(t.shares, HashOut::from(w.shares))?;
        pw.set_hash_target(t.lanes, HashOut::from(w.lanes))?;
        pw.set_target(t.owner, F::from_canonical_u32(w.owner))?;
        let p = &w.policy;
        for (target, v) in
            t.policy
                .iter()
                .zip([p.cap, p.window, p.max_payment, p.max_fee, p.expiry])
        {
            pw.set_target(*target, f(v))?;
        }
        pw.set_hash_target(t.allow, HashOut::from(p.allow))?;
        pw.set_hash_target(t.card, HashOut::from(p.card))?;
        pw.set_target(t.revoked, f(w.revoked))?;
        pw.set_target(t.window_id, f(w.window_id))?;
        pw.set_target(t.spent, f(w.spent))?;
        pw.set_target(t.q, f(w.q))?;
        pw.set_target(t.r, f(w.r))?;
        if let Some((bits, siblings)) = &t.membership {
            // A spend that needs no path still fills the shape (it is not checked then).
            let (pos, path) = w
                .membership
                .clone()
                .unwrap_or((0, vec![Digest::ZERO; ALLOW_DEPTH]));
            ensure!(
                path.len() == ALLOW_DEPTH,
                "a path has {ALLOW_DEPTH} siblings"
            );
            for (l, (bit, sib)) in bits.iter().zip(siblings).enumerate() {
                pw.set_bool_target(*bit, (pos >> l) & 1 == 1)?;
                pw.set_hash_target(*sib, HashOut::from(path[l]))?;
            }
        }
        Ok(pw)
    }

    pub fn prove(&self, w: &PolicyWitness) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let pw = self.witness(w)?;
        self.data.prove(pw)
    }

    /// The rule a refused witness broke, from the prover's error message.
    pub fn refused_by(&self, error: &str) -> Option<PolicyRule> {
        rule_broken(&self.rules, error)
    }
}
