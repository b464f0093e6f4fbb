//! The policy rules in-circuit (SPEC 20.4, 20.8): an agent's spend judged by its passport at a
//! fixed cost.
//!
//! The rules are one gadget ([`judge`], in `gadget.rs`) with two users: the payment slot of a
//! circuit with policy checks (`circuits::payment`'s agent branch, which opens the signer's
//! `ext`, requires the rules of a signed spend, publishes a forced withdrawal's first broken
//! rule and writes the charged passport), and the standalone [`PolicyCircuit`] here, which
//! states an agent's `ext` before and after one spend and requires every rule: the gadget's
//! cost in isolation, measured against the budget (60 rows without an allow-list, one
//! Merkle path more with one), and its attack tests. The witness types are in `witness.rs`.
//!
//! Two shapes: without a list (a policy whose `allow` is `ZERO`, or a spend that pays nobody
//! new) and with one (a ten-hash membership path of the payee, [`state::passport::AllowList`]).
//!
//! **Rules** (each broken one is named by [`PolicyCircuit::refused_by`]):
//!
//! | rule | constraint |
//! |---|---|
//! | `REVOKED` | `revoked = 0` (a boolean bound by the passport digest) |
//! | `POLICY_EXPIRED` | `T <= expiry` (two-limb comparison) |
//! | `POLICY_FEE` | `fee <= max_fee` |
//! | `POLICY_PAYMENT` | `value <= max_payment` |
//! | `POLICY_PAYEE` | with a list: the payee's leaf `(payee, 1, 0, 0)` is under `allow`, and no withdrawal to L1 nor split; without: `allow = ZERO` or the spend pays nobody |
//! | `WINDOW` | `T = q x window + r` with `r < window` (or `q = 0` when `window = 0`), `q < 2^32` |
//! | `POLICY_CAP` | `spent' + value + fee <= cap`, `spent' = spent` if `q = window_id` else 0, no sum past `2^63 - 1` |
//! | `STATEMENT` | `ext_before` opens to the witnessed parts and `ext_after` is the one they leave |
//!
//! `q < 2^32` bounds `q x window + r` below `p`, so `q` is the integer quotient: windows are
//! sound until `T >= 2^32 x window` (the year 2106 for one-second windows).

mod gadget;
#[cfg(test)]
mod tests;
mod witness;

pub(crate) use gadget::{judge, passport_digest, PassportTargets, SpendInputs};
pub use witness::{PassportOpening, PolicyFields, PolicyStatement, PolicyWitness, SpendStatement};

use plonky2::field::types::Field;
use plonky2::hash::hash_types::{HashOut, HashOutTarget};
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;

use crate::circuits::refusal::rule_broken;
use crate::gadgets::agent::ext_of_parts;
use crate::gadgets::range::range_check_u63;
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

struct Targets {
    public: Vec<Target>,
    streams_root: HashOutTarget,
    shares: HashOutTarget,
    lanes: HashOutTarget,
    passport: PassportTargets,
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

/// Asserts `t = 0`, naming `rule` when it is not.
fn require_zero(
    b: &mut CircuitBuilder<F, D>,
    rules: &mut Vec<(Target, PolicyRule)>,
    t: Target,
    rule: PolicyRule,
) {
    b.assert_zero(t);
    rules.push((t, rule));
}

impl PolicyCircuit {
    /// Builds the shape with (`with_list`) or without an allow-list membership path.
    pub fn build(with_list: bool) -> PolicyCircuit {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let ext_before = b.add_virtual_hash();
        let ext_after = b.add_virtual_hash();
        let [time, value, fee, payee] = std::array::from_fn(|_| b.add_virtual_target());
        let pays_account = b.add_virtual_bool_target_safe();
        let pays_many = b.add_virtual_bool_target_safe();
        let to_l1 = b.add_virtual_bool_target_safe();
        let mut public = Vec::new();
        public.extend(ext_before.elements);
        public.extend(ext_after.elements);
        public.extend([
            time,
            value,
            fee,
            payee,
            pays_account.target,
            pays_many.target,
            to_l1.target,
        ]);
        b.register_public_inputs(&public);
        let start = b.num_gates();

        let streams_root = b.add_virtual_hash();
        let shares = b.add_virtual_hash();
        let lanes = b.add_virtual_hash();
        let passport = PassportTargets::new(&mut b, with_list);
        let mut rules = Vec::new();
        let time_u = range_check_u63(&mut b, time);
        let value_u = range_check_u63(&mut b, value);
        let fee_u = range_check_u63(&mut b, fee);
        let j = judge(
            &mut b,
            &passport,
            &SpendInputs {
                time: &time_u,
                value: &value_u,
                fee: &fee_u,
                payee,
                pays_account,
                pays_many,
                to_l1,
            },
        );
        let gates_of_list = j.gates_of_list;

        // An agent's profile is never ZERO (its passport is a hash), so both `ext` are hashes:
        // ext = H(streams_root, H(shares, passport, lanes)).
        let ext_of = |b: &mut CircuitBuilder<F, D>, passport: HashOutTarget| {
            ext_of_parts(b, streams_root, &[shares, passport, lanes])
        };
        let before = ext_of(&mut b, j.passport_before);
        for k in 0..4 {
            let t = b.sub(before.elements[k], ext_before.elements[k]);
            require_zero(&mut b, &mut rules, t, PolicyRule::Statement);
        }
        for t in j.window {
            require_zero(&mut b, &mut rules, t, PolicyRule::Window);
        }
        for (broken, rule) in j.broken {
            // `broken^2` (= broken) is a gate's own output, which names the rule when it is
            // set (the revocation flag itself is a witness).
            let t = b.mul(broken.target, broken.target);
            require_zero(&mut b, &mut rules, t, rule);
        }
        let after = ext_of(&mut b, j.passport_after);
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
                passport,
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
            F::from_bool(s.spend.pays_many),
            F::from_bool(s.spend.to_l1),
        ]);
        for (target, v) in t.public.iter().zip(public) {
            pw.set_target(*target, v)?;
        }
        pw.set_hash_target(t.streams_root, HashOut::from(w.streams_root))?;
        pw.set_hash_target(t.shares, HashOut::from(w.shares))?;
        pw.set_hash_target(t.lanes, HashOut::from(w.lanes))?;
        t.passport.set(&mut pw, Some(&w.passport))?;
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
