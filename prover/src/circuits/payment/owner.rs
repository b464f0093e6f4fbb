//! An owner's revoke and sweep in a payment slot (SPEC 20.5, 20.6), built into a payment
//! circuit with policy checks ([`super::PaymentKinds::policies`]): the owner A signs, pays the
//! fee and uses its nonce like any signer; B is the agent.
//!
//! The branch opens B's `ext` to a stream root, the profile's `shares` and `lanes` parts and a
//! passport `H(owner, policy, revoked, window_id, spent)` (the policy as its digest: neither
//! kind reads its fields), which is never `ZERO`, so an account without a passport has no
//! opening (`NOT_AN_AGENT`). Then:
//!
//! * both: the passport's owner is A (`NOT_OWNER`);
//! * **revoke**: the passport is not revoked (`REVOKED`: a revocation is for good, and a second
//!   one is refused natively); B's new `ext` has the same passport with `revoked = 1`;
//! * **sweep**: `amount > 0` (`ZERO_AMOUNT`); B pays `amount` (its access's balance covers it,
//!   `INSUFFICIENT_BALANCE`) and A receives it after its fee (the slot's), allowed after a
//!   revocation.
//!
//! Neither is charged to a policy (an owner is never an agent: a delegate from an agent is
//! refused). The delegate and the policy change are not slot kinds yet (SPEC 20.9): their ops
//! carry a policy's whole body.
//!
//! Cost: B's opening (passport, profile and `ext`: four permutations), the revoked passport and
//! its `ext` (four), the two messages and ops (sharing the slot's sponges) and the checks.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::tx::TxKind;

use super::slot::SlotView;
use crate::circuits::policy::passport_digest;
use crate::gadgets::agent::{ext_digest, ext_of_parts, profile_digest};
use crate::gadgets::pubdata::OpChunks;
use crate::witness::{AgentOpening, SlotKind};
use crate::{D, F};

/// The owner-kind rules the circuit names when a witness breaks one
/// ([`super::PaymentCircuit::refused_by_owner`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerRule {
    /// B's `ext` does not open to a passport.
    NotAnAgent,
    NotOwner,
    Revoked,
    ZeroAmount,
}

impl OwnerRule {
    /// The native reason code (SPEC 20.7, 11.3).
    pub fn code(self) -> &'static str {
        match self {
            OwnerRule::NotAnAgent => "NOT_AN_AGENT",
            OwnerRule::NotOwner => "NOT_OWNER",
            OwnerRule::Revoked => "REVOKED",
            OwnerRule::ZeroAmount => "ZERO_AMOUNT",
        }
    }
}

type Rules = super::rules::Rules<OwnerRule>;

/// The witness targets of a slot's owner branch.
#[derive(Clone, Debug)]
pub(super) struct OwnerTargets {
    pub(super) revoke: BoolTarget,
    pub(super) sweep: BoolTarget,
    streams_root: HashOutTarget,
    shares: HashOutTarget,
    lanes: HashOutTarget,
    owner: Target,
    policy: HashOutTarget,
    revoked: BoolTarget,
    window_id: Target,
    spent: Target,
}

/// What the branch hands back to the slot.
pub(super) struct OwnerEffects {
    /// Revoke or sweep.
    pub any: BoolTarget,
    pub revoke: BoolTarget,
    pub sweep: BoolTarget,
    /// B's `ext` after a revocation.
    pub revoked_ext: [Target; 4],
    /// The two messages and ops, for the slot's sponges.
    pub messages: Vec<(BoolTarget, Vec<Target>)>,
    pub ops: Vec<OpChunks>,
    pub rules: Vec<(Target, OwnerRule)>,
}

/// Adds the branch's constraints (module docs); `amount_bits` are the slot's amount's 64.
pub(super) fn build(
    b: &mut CircuitBuilder<F, D>,
    i: &SlotView,
    amount_bits: &[BoolTarget],
) -> (OwnerTargets, OwnerEffects) {
    let t = OwnerTargets {
        revoke: b.add_virtual_bool_target_safe(),
        sweep: b.add_virtual_bool_target_safe(),
        streams_root: b.add_virtual_hash(),
        shares: b.add_virtual_hash(),
        lanes: b.add_virtual_hash(),
        owner: b.add_virtual_target(),
        policy: b.add_virtual_hash(),
        revoked: b.add_virtual_bool_target_safe(),
        window_id: b.add_virtual_target(),
        spent: b.add_virtual_target(),
    };
    let (revoke, sweep) = (t.revoke, t.sweep);
    let mut rules = Rules::default();
    let any = BoolTarget::new_unsafe(b.add(revoke.target, sweep.target));

    // B's opening: a passport (a hash, never ZERO) in its profile.
    let passport = |b: &mut CircuitBuilder<F, D>, revoked: Target| {
        passport_digest(b, t.owner, t.policy, revoked, t.window_id, t.spent)
    };
    let before = passport(b, t.revoked.target);
    let profile = profile_digest(b, &[t.shares, before, t.lanes]);
    let ext = ext_digest(b, t.streams_root, profile);
    for (x, y) in ext.elements.iter().zip(i.b_ext) {
        rules.eq(b, any, *x, y, OwnerRule::NotAnAgent);
    }
    rules.eq(b, any, t.owner, i.a_index, OwnerRule::NotOwner);
    rules.zero(b, revoke.target, t.revoked.target, OwnerRule::Revoked);
    rules.zero(b, sweep.target, i.amount_zero.target, OwnerRule::ZeroAmount);

    // The revoked passport in B's `ext` (a hash of hashes: neither part is ZERO).
    let one = b.one();
    let after = passport(b, one);
    let ext_after = ext_of_parts(b, t.streams_root, &[t.shares, after, t.lanes]);

    // Messages (`tx::passport`): owner, agent, [amount]; ops (SPEC 20.5) the same fields.
    let messages = vec![
        (
            revoke,
            i.message(b, TxKind::Revoke, &[i.a_index, i.b_index]),
        ),
        (
            sweep,
            i.message(b, TxKind::Sweep, &[i.a_index, i.b_index, i.amount]),
        ),
    ];
    let ops = vec![
        i.op(b, TxKind::Revoke, revoke, &[i.a_bits, i.b_bits]),
        i.op(b, TxKind::Sweep, sweep, &[i.a_bits, i.b_bits, amount_bits]),
    ];
    let effects = OwnerEffects {
        any,
        revoke,
        sweep,
        revoked_ext: ext_after.elements,
        messages,
        ops,
        rules: rules.into_inner(),
    };
    (t, effects)
}

/// Sets the branch's witness for a slot of `kind` (`o`: B's opening, for the owner kinds).
pub(super) fn set(
    pw: &mut PartialWitness<F>,
    t: &OwnerTargets,
    kind: SlotKind,
    o: Option<&AgentOpening>,
) -> anyhow::Result<()> {
    pw.set_bool_target(t.revoke, kind == SlotKind::Revoke)?;
    pw.set_bool_target(t.sweep, kind == SlotKind::Sweep)?;
    let empty = AgentOpening::default();
    let o = o.unwrap_or(&empty);
    pw.set_hash_target(t.streams_root, o.streams_root.into())?;
    pw.set_hash_target(t.shares, o.shares.into())?;
    pw.set_hash_target(t.lanes, o.lanes.into())?;
    pw.set_target(t.owner, F::from_canonical_u32(o.owner))?;
    pw.set_hash_target(t.policy, o.policy.into())?;
    pw.set_bool_target(t.revoked, o.revoked)?;
    let f = F::from_noncanonical_u64;
    pw.set_target(t.window_id, f(o.window_id))?;
    pw.set_target(t.spent, f(o.spent))?;
    Ok(())
}
