//! An owner's kinds in a payment slot (SPEC 20.5, 20.6), built into a payment circuit with
//! policy checks ([`super::PaymentKinds::policies`]): the owner A signs, pays the fee and uses
//! its nonce like any signer; B is the agent.
//!
//! For a **policy change**, a **revoke** and a **sweep** the branch opens B's `ext` to a
//! stream root, the profile's `shares` and `lanes` parts and a passport `H(owner, policy,
//! revoked, window_id, spent)` (the policy as its digest: no kind reads its fields), which is
//! never `ZERO`, so an account without a passport has no opening (`NOT_AN_AGENT`). Then:
//!
//! * all three: the passport's owner is A (`NOT_OWNER`);
//! * **set policy**: the passport is not revoked (`REVOKED`); B's new `ext` has the passport
//!   with the signed policy digest, its window and spending kept (SPEC 20.6);
//! * **revoke**: the passport is not revoked (`REVOKED`: a revocation is for good, and a second
//!   one is refused natively); B's new `ext` has the same passport with `revoked = 1`;
//! * **sweep**: `amount > 0` (`ZERO_AMOUNT`), B has no revenue shares (`SHARES_LOCKED`); B pays
//!   `amount` (its access's balance covers it, `INSUFFICIENT_BALANCE`) and A receives it after
//!   its fee (the slot's), allowed after a revocation.
//!
//! A **delegate** creates B: its leaf is empty before and holds, after, the signed agent key
//! (a valid key: one key-decoding row), the balance `fund` (A pays it with the fee) and nonce
//! 0, with the `ext` of a fresh passport `(A, policy, 0, 0, 0)` and an empty book. B's index is
//! the first free one: the account just below it exists ([`predecessor`]: a read of its leaf
//! under the root after A's access; accounts are dense, SPEC 11.5). A is no agent
//! (`AGENT_CANNOT_DELEGATE`, checked by the slot against the agent branch's opening of A). The
//! key's uniqueness (`DUPLICATE_KEY`) is not proven, as for a registration (SPEC 13.6).
//!
//! The policy of a delegate and a policy change is the slot's digest (`SlotView::list`): the
//! signed message holds it, and the op enters the pubdata chain by its fixed bytes and that
//! digest (SPEC 10.2), so the policy's body (allow-list, URI) never enters the circuit.
//!
//! Neither kind is charged to a policy (an owner is never an agent).
//!
//! Cost: B's opening (passport, profile and `ext`: four permutations), the revoked passport, the
//! changed policy's and the fresh one with their `ext`s (twelve), the predecessor's path (32),
//! the four messages and ops (sharing the slot's sponges) and the checks.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::tx::TxKind;

use state::pubdata::{DELEGATE_FIXED_BYTES, SET_POLICY_FIXED_BYTES};

use super::slot::SlotView;
use crate::circuits::policy::passport_digest;
use crate::gadgets::agent::{ext_digest, ext_of_parts, profile_digest};
use crate::gadgets::pubdata::OpChunks;
use crate::gadgets::schnorr::{assert_valid_key, DUMMY_KEY_W};
use crate::gadgets::smt::{
    compute_root, constant_digest, is_zero_digest, zero_digest, MerklePathTarget,
};
use crate::witness::{AgentOpening, LeafAccess, SlotKind};
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
    /// A delegate's signer is an agent.
    AgentCannotDelegate,
    /// A delegate's B is not the first free index: B's leaf is not empty, or the one below it
    /// is (a rule of the tree, not a native reason: the native rules pick the index).
    NotNextIndex,
    /// A sweep from an agent with revenue shares (its balance moves by a distribute only).
    SharesLocked,
}

impl OwnerRule {
    /// The native reason code (SPEC 20.7, 11.3).
    pub fn code(self) -> &'static str {
        match self {
            OwnerRule::NotAnAgent => "NOT_AN_AGENT",
            OwnerRule::NotOwner => "NOT_OWNER",
            OwnerRule::Revoked => "REVOKED",
            OwnerRule::ZeroAmount => "ZERO_AMOUNT",
            OwnerRule::AgentCannotDelegate => "AGENT_CANNOT_DELEGATE",
            OwnerRule::NotNextIndex => "NOT_NEXT_INDEX",
            OwnerRule::SharesLocked => "SHARES_LOCKED",
        }
    }
}

type Rules = super::rules::Rules<OwnerRule>;

/// The witness targets of a slot's owner branch.
#[derive(Clone, Debug)]
pub(super) struct OwnerTargets {
    pub(super) delegate: BoolTarget,
    pub(super) set_policy: BoolTarget,
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
    /// A delegate's first-free-index witness: the account below B ([`predecessor`]).
    below_index: Target,
    below_leaf: HashOutTarget,
    below_path: MerklePathTarget,
}

/// What the branch hands back to the slot.
pub(super) struct OwnerEffects {
    /// Any of the four kinds.
    pub any: BoolTarget,
    pub delegate: BoolTarget,
    pub sweep: BoolTarget,
    /// B's `ext` after the slot where the branch changes it (a delegate, a policy change, a
    /// revocation), and whether it does.
    pub b_ext: [Target; 4],
    pub changes_b_ext: BoolTarget,
    /// A delegate's agent key: B's witnessed key, else a fixed valid one.
    pub agent_key: [Target; 5],
    /// The four messages and three ops (the delegate's is the slot's, [`delegate_op`]), for
    /// the slot's sponges.
    pub messages: Vec<(BoolTarget, Vec<Target>)>,
    pub ops: Vec<OpChunks>,
    pub rules: Vec<(Target, OwnerRule)>,
}

/// Adds the branch's constraints (module docs); `amount_bits` are the slot's amount's 64.
/// A delegate's op is built by the slot ([`delegate_op`]), which shares the key's bits with a
/// registration's op.
pub(super) fn build(
    b: &mut CircuitBuilder<F, D>,
    i: &SlotView,
    amount_bits: &[BoolTarget],
) -> (OwnerTargets, OwnerEffects) {
    let t = OwnerTargets {
        delegate: b.add_virtual_bool_target_safe(),
        set_policy: b.add_virtual_bool_target_safe(),
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
        below_index: b.add_virtual_target(),
        below_leaf: b.add_virtual_hash(),
        below_path: MerklePathTarget::new(b),
    };
    let (delegate, set_policy, revoke, sweep) = (t.delegate, t.set_policy, t.revoke, t.sweep);
    let mut rules = Rules::default();
    // Exclusive flags (the slot's `any` is boolean): their sums are.
    let sum = |b: &mut CircuitBuilder<F, D>, flags: &[BoolTarget]| {
        let s = flags.iter().fold(b.zero(), |acc, f| b.add(acc, f.target));
        BoolTarget::new_unsafe(s)
    };
    let opens = sum(b, &[set_policy, revoke, sweep]);
    let unrevoked = sum(b, &[set_policy, revoke]);
    let any = sum(b, &[opens, delegate]);

    // B's opening: a passport (a hash, never ZERO) in its profile.
    let passport = |b: &mut CircuitBuilder<F, D>, policy, revoked: Target| {
        passport_digest(b, t.owner, policy, revoked, t.window_id, t.spent)
    };
    let before = passport(b, t.policy, t.revoked.target);
    let profile = profile_digest(b, &[t.shares, before, t.lanes]);
    let ext = ext_digest(b, t.streams_root, profile);
    for (x, y) in ext.elements.iter().zip(i.b_ext) {
        rules.eq(b, opens, *x, y, OwnerRule::NotAnAgent);
    }
    rules.eq(b, opens, t.owner, i.a_index, OwnerRule::NotOwner);
    rules.zero(b, unrevoked.target, t.revoked.target, OwnerRule::Revoked);
    rules.zero(b, sweep.target, i.amount_zero.target, OwnerRule::ZeroAmount);
    // B's shares part is ZERO (SPEC 19.6: an account with shares pays out by a distribute).
    let unset = is_zero_digest(b, t.shares);
    let locked = b.not(unset);
    rules.zero(b, sweep.target, locked.target, OwnerRule::SharesLocked);

    // B's `ext` after: the passport revoked, or under the signed policy (window and spending
    // kept, SPEC 20.6), or a delegate's fresh one (A's, nothing spent) with an empty book and
    // no other part. Each a hash of hashes: no part is ZERO but the fresh one's shares and
    // lanes.
    let one = b.one();
    let zero = b.zero();
    let revoked = passport(b, t.policy, one);
    let revoked_ext = ext_of_parts(b, t.streams_root, &[t.shares, revoked, t.lanes]);
    let changed = passport(b, i.list, zero);
    let changed_ext = ext_of_parts(b, t.streams_root, &[t.shares, changed, t.lanes]);
    let fresh = passport_digest(b, i.a_index, i.list, zero, zero, zero);
    let empty_book = constant_digest(b, state::smt::empty_hashes()[state::stream::SLOT_DEPTH]);
    let none = zero_digest(b);
    let fresh_ext = ext_of_parts(b, empty_book, &[none, fresh, none]);
    let mut b_ext = fresh_ext.elements;
    for (flag, e) in [(set_policy, changed_ext), (revoke, revoked_ext)] {
        b_ext = super::slot::select4(b, flag, e.elements, b_ext);
    }
    let changes_b_ext = sum(b, &[delegate, set_policy, revoke]);

    // A delegate: B is empty before, holds nothing but the key (a valid one), and the account
    // below it exists (the slot calls [`predecessor`] with the root it reads it under).
    rules.zero(
        b,
        delegate.target,
        i.b_exists.target,
        OwnerRule::NotNextIndex,
    );
    let agent_key: [Target; 5] = std::array::from_fn(|k| {
        let dummy = b.constant(F::from_canonical_u64(DUMMY_KEY_W[k]));
        b.select(delegate, i.b_pubkey[k], dummy)
    });
    assert_valid_key(b, agent_key);

    // Messages (`tx::passport`): owner, then the agent (its key and fund for a delegate), the
    // policy digest, the amount; ops (SPEC 20.5) the same fields, a delegate's and a policy
    // change's by their fixed bytes and the policy digest (SPEC 10.2).
    let mut delegate_msg = vec![i.a_index];
    delegate_msg.extend(agent_key);
    delegate_msg.push(i.amount);
    delegate_msg.extend(i.list.elements);
    let mut policy_msg = vec![i.a_index, i.b_index];
    policy_msg.extend(i.list.elements);
    let messages = vec![
        (delegate, i.message(b, TxKind::Delegate, &delegate_msg)),
        (set_policy, i.message(b, TxKind::SetPolicy, &policy_msg)),
        (
            revoke,
            i.message(b, TxKind::Revoke, &[i.a_index, i.b_index]),
        ),
        (
            sweep,
            i.message(b, TxKind::Sweep, &[i.a_index, i.b_index, i.amount]),
        ),
    ];
    let mut policy_op = i.op(b, TxKind::SetPolicy, set_policy, &[i.a_bits, i.b_bits]);
    policy_op.len = SET_POLICY_FIXED_BYTES;
    policy_op.chunks.extend(i.list.elements);
    let ops = vec![
        policy_op,
        i.op(b, TxKind::Revoke, revoke, &[i.a_bits, i.b_bits]),
        i.op(b, TxKind::Sweep, sweep, &[i.a_bits, i.b_bits, amount_bits]),
    ];
    let effects = OwnerEffects {
        any,
        delegate,
        sweep,
        b_ext,
        changes_b_ext,
        agent_key,
        messages,
        ops,
        rules: rules.into_inner(),
    };
    (t, effects)
}

/// A delegate's op (SPEC 10.2): `tag ‖ owner ‖ agent ‖ agent_key ‖ fund ‖ fee` as chunks, then
/// the policy digest; `key_bits` the agent key's five canonical 64-bit decompositions.
pub(super) fn delegate_op(
    b: &mut CircuitBuilder<F, D>,
    i: &SlotView,
    flag: BoolTarget,
    key_bits: &[Vec<BoolTarget>],
    amount_bits: &[BoolTarget],
) -> OpChunks {
    let mut parts: Vec<&[BoolTarget]> = vec![i.a_bits, i.b_bits];
    parts.extend(key_bits.iter().map(|k| k.as_slice()));
    parts.push(amount_bits);
    let mut op = i.op(b, TxKind::Delegate, flag, &parts);
    op.len = DELEGATE_FIXED_BYTES;
    op.chunks.extend(i.list.elements);
    op
}

/// A delegate's first free index: the account at `b_index - 1` exists, its leaf (not `ZERO`)
/// under `root` (the root after A's access: the owner may be that account). With B's empty
/// leaf and the tree's density (SPEC 11.5), B is the next index. Returns the rules it adds.
pub(super) fn predecessor(
    b: &mut CircuitBuilder<F, D>,
    t: &OwnerTargets,
    root: HashOutTarget,
    b_index: Target,
) -> Vec<(Target, OwnerRule)> {
    let mut rules = Rules::default();
    let one = b.one();
    let above = b.add(t.below_index, one);
    rules.eq(b, t.delegate, above, b_index, OwnerRule::NotNextIndex);
    // Not ZERO: some element is not 0 (the product of the "is zero" flags is 0).
    let all_zero = is_zero_digest(b, t.below_leaf);
    rules.zero(
        b,
        t.delegate.target,
        all_zero.target,
        OwnerRule::NotNextIndex,
    );
    // The read: under `root` when delegating, else against itself (any witness passes).
    let bits = b.split_le(t.below_index, state::smt::DEPTH);
    let computed = compute_root(b, t.below_leaf, &bits, &t.below_path);
    for (x, y) in computed.elements.iter().zip(root.elements) {
        rules.eq(b, t.delegate, *x, y, OwnerRule::NotNextIndex);
    }
    rules.into_inner()
}

/// Sets the branch's witness for a slot of `kind` (`o`: B's opening, for the kinds that open
/// it; `below`: the account under a delegate's new index, under the root after A's access).
pub(super) fn set(
    pw: &mut PartialWitness<F>,
    t: &OwnerTargets,
    kind: SlotKind,
    o: Option<&AgentOpening>,
    below: Option<&LeafAccess>,
) -> anyhow::Result<()> {
    pw.set_bool_target(t.delegate, kind == SlotKind::Delegate)?;
    pw.set_bool_target(t.set_policy, kind == SlotKind::SetPolicy)?;
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
    let zeros = vec![state::hash::Digest::ZERO; state::smt::DEPTH];
    let (index, leaf, siblings) = match below {
        Some(a) => (a.index, a.leaf(), a.siblings.as_slice()),
        None => (0, state::hash::Digest::ZERO, zeros.as_slice()),
    };
    pw.set_target(t.below_index, F::from_canonical_u32(index))?;
    pw.set_hash_target(t.below_leaf, leaf.into())?;
    t.below_path.set(pw, siblings)
}
