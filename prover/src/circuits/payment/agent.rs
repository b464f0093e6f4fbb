//! The agent branch of a payment slot (SPEC 20.8, "Binding"): a spend signed by an agent is
//! judged by its passport in the circuit, and a forced withdrawal from one publishes the policy
//! rule it breaks (statuses 9 to 14). Built only into a payment circuit with policy checks
//! ([`super::PaymentKinds::policies`]).
//!
//! The branch opens A's `ext` in every slot whose signer spends or whose forced withdrawal is
//! judged: a stream root, the profile's `shares` and `lanes` parts, and the passport, either
//! `ZERO` (the signer is no agent, `is_agent = 0`) or the digest of the witnessed fields
//! (`is_agent = 1`). The opening is required (`STATEMENT`), so `is_agent` is not a choice: an
//! agent's `ext` does not open with a `ZERO` passport, and an account's without one does not
//! open with a digest. Then, for an agent:
//!
//! * the six rules of SPEC 20.4 ([`crate::circuits::policy::judge`]) at the slot's clock (the
//!   batch time, a forced withdrawal's request time) with `value` the amount a transfer,
//!   withdrawal, split or stream open moves (0 for a settlement, a close and the revenue-share
//!   kinds, whose fee still counts), the payee B of a transfer or an open, every payee of a
//!   split (refused under a list: its payees are the split-credit chain's, which has no
//!   membership path; see SPEC 20.8), and L1 for a withdrawal;
//! * a signed spend (and an applied forced withdrawal) requires every rule and the window's
//!   decomposition, and leaves A the `ext` of the passport after it: window `q`, `spent' +
//!   value + fee`, with A's stream root after an open and its shares after a registration;
//! * a forced withdrawal's rejected status may be one of these rules, judged after the
//!   signature, expiry, amount, nonce and lock rules and before the balance's (the slot's
//!   `broken` list): the flags are sound in both directions (the gadget's docs).
//!
//! The same opening gives the signer's nonce lanes ([`super::lanes`]): the branch decides the
//! slot's nonce rule (`BAD_NONCE`, `NONCE_EXHAUSTED`) for every account, agent or not, and a
//! spend in lane 1 to 7 changes the signer's `lanes` part, so its `ext`.
//!
//! Cost (`tests/payment/agents.rs` prints it): the opening (profile and `ext`, three
//! permutations, with their emptiness tests), the lanes (two), the gadget (four permutations,
//! the comparisons, the window and the cap), the `ext` after (three permutations) and the
//! selects; with lists, a ten-hash path.

use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;

use super::lanes::LaneTargets;
use crate::circuits::policy::{judge, PassportTargets, PolicyRule, SpendInputs};
use crate::gadgets::agent::{ext_digest, ext_of_parts, profile_digest};
use crate::gadgets::smt::{select_hash, zero_digest};
use crate::witness::SignerOpening;
use crate::{D, F};

type Rules = super::rules::Rules<PolicyRule>;

/// The witness targets of a slot's agent branch.
#[derive(Clone, Debug)]
pub(super) struct AgentTargets {
    is_agent: BoolTarget,
    streams_root: HashOutTarget,
    shares: HashOutTarget,
    lanes: LaneTargets,
    passport: PassportTargets,
}

/// What the branch reads of the slot.
pub(super) struct AgentInputs<'a> {
    /// A's `ext` before the slot.
    pub a_ext: [Target; 4],
    /// The slot judges A's spend: a kind whose signer pays a fee, or a forced withdrawal.
    pub judged: BoolTarget,
    /// The slot raises A's nonce in its lane: a kind whose signer pays a fee (an applied
    /// forced withdrawal included).
    pub raises_nonce: BoolTarget,
    /// The slot charges A's passport: those kinds but the owner's own four.
    pub charges: BoolTarget,
    pub spend: SpendInputs<'a>,
    /// The slot's nonce as 64 bits, and A's leaf `nonce` (lane 0's).
    pub nonce_bits: &'a [BoolTarget],
    pub leaf_nonce: Target,
    /// A's stream root after the slot where the stream branch changes it (an open).
    pub streams_after: Option<(BoolTarget, HashOutTarget)>,
    /// A's shares part after the slot where the revenue-share branch sets it.
    pub shares_after: Option<(BoolTarget, HashOutTarget)>,
}

/// What the branch hands back to the slot.
pub(super) struct AgentEffects {
    /// A is an agent, in a slot that judges its spend (a delegate's signer must not be).
    pub agent: BoolTarget,
    /// A's `ext` changes: an agent's passport is charged, or a lane other than 0 moved.
    pub changed: BoolTarget,
    /// A's `ext` after a changed slot.
    pub ext_after: [Target; 4],
    /// The nonce rules ([`super::lanes`]) and A's leaf `nonce` after the slot.
    pub nonce_ok: BoolTarget,
    pub exhausted: BoolTarget,
    pub leaf_nonce: Target,
    /// The six rules of SPEC 20.4 in order, each set iff A is an agent whose judged spend
    /// breaks it (a forced withdrawal's statuses 9 to 14).
    pub broken: Vec<BoolTarget>,
    pub rules: Vec<(Target, PolicyRule)>,
}

/// Adds the branch's constraints; see the module docs.
pub(super) fn build(
    b: &mut CircuitBuilder<F, D>,
    i: &AgentInputs<'_>,
    with_lists: bool,
) -> (AgentTargets, AgentEffects) {
    let (lanes, lx) = super::lanes::build(b, i.nonce_bits, i.leaf_nonce, i.raises_nonce);
    let t = AgentTargets {
        is_agent: b.add_virtual_bool_target_safe(),
        streams_root: b.add_virtual_hash(),
        shares: b.add_virtual_hash(),
        lanes,
        passport: PassportTargets::new(b, with_lists),
    };
    let mut rules = Rules::default();
    let j = judge(b, &t.passport, &i.spend);

    // The opening: `is_agent` selects the passport part, and the `ext` must be A's.
    let zero = zero_digest(b);
    let passport = select_hash(b, t.is_agent, j.passport_before, zero);
    let profile = profile_digest(b, &[t.shares, passport, lx.digest]);
    let ext = ext_digest(b, t.streams_root, profile);
    for (x, y) in ext.elements.iter().zip(i.a_ext) {
        rules.eq(b, i.judged, *x, y, PolicyRule::Statement);
    }
    let agent = b.and(t.is_agent, i.judged);
    for w in j.window {
        rules.zero(b, agent.target, w, PolicyRule::Window);
    }
    let charged = b.and(agent, i.charges);
    let broken = j
        .broken
        .iter()
        .map(|&(flag, rule)| {
            rules.zero(b, charged.target, flag.target, rule);
            b.and(agent, flag)
        })
        .collect();

    // The `ext` after a charge or a lane's move: the passport or the lanes part is a digest,
    // so the profile and `ext` are plain hashes of their parts.
    let after = |b: &mut CircuitBuilder<F, D>, x: Option<(BoolTarget, HashOutTarget)>, old| {
        x.map_or(old, |(flag, new)| select_hash(b, flag, new, old))
    };
    let streams_root = after(b, i.streams_after, t.streams_root);
    let shares = after(b, i.shares_after, t.shares);
    let passport_after = select_hash(b, charged, j.passport_after, passport);
    let ext_after = ext_of_parts(b, streams_root, &[shares, passport_after, lx.digest_after]);

    let effects = AgentEffects {
        agent,
        changed: b.or(charged, lx.moved),
        ext_after: ext_after.elements,
        nonce_ok: lx.nonce_ok,
        exhausted: lx.exhausted,
        leaf_nonce: lx.leaf_nonce,
        broken,
        rules: rules.into_inner(),
    };
    (t, effects)
}

/// Sets the branch's witness: A's `ext` opened (`None`: a slot that judges no spend, whose
/// values are not read).
pub(super) fn set(
    pw: &mut PartialWitness<F>,
    t: &AgentTargets,
    o: Option<&SignerOpening>,
) -> anyhow::Result<()> {
    let empty = SignerOpening::empty();
    let o = o.unwrap_or(&empty);
    pw.set_bool_target(t.is_agent, o.passport.is_some())?;
    pw.set_hash_target(t.streams_root, o.streams_root.into())?;
    pw.set_hash_target(t.shares, o.shares.into())?;
    super::lanes::set(pw, &t.lanes, &o.lane_seqs)?;
    t.passport.set(pw, o.passport.as_ref())
}
