//! The revenue-share kinds of a payment slot (SPEC 19.6, "In-circuit"): register shares,
//! distribute, and the lock, built only into a payment circuit with them
//! ([`super::PaymentKinds::shares`]).
//!
//! An account's shares are a part of its profile, which its `ext` commits (SPEC 18.3). The
//! branch opens one account's `ext` per slot, the *owner*: B for a distribute, A otherwise,
//! to its stream root and its profile's three parts (`shares`, `passport`, `lanes`), when the
//! slot's kind needs it (a spend from A, a forced withdrawal, a registration, a distribute).
//!
//! * **register** (signed by A): A's shares part is `ZERO` (`SHARES_ALREADY_SET`); the message
//!   signs `shares = H(TAG_SHARES, n, s)`, computed here from the slot's `n` and the shares
//!   chain `s` (the slot's list digest); A's new `ext` commits the profile with that part; the
//!   slot hands over the record `(root, root, A, n + 2^16, 10000, s)`, which the split-credit
//!   chain's registration run folds after checking the list (SPEC 19.5, "Kinds").
//! * **distribute** (signed by A, for the account B; `A = B` allowed): B's shares part is
//!   `H(TAG_SHARES, n, s)` (`NO_SHARES`: an account without shares has `ZERO` there, which no
//!   list hashes to); B exists; the slot's `amount` is B's whole balance as the access reads it
//!   (after A's fee; `WHOLE_BALANCE`), positive (`NOTHING_TO_DISTRIBUTE`); B's new balance is
//!   0 (the slot's);
//!   the record `(root, split_root, B, n + 2 x 2^16, amount, s)`: the chain's distribution
//!   run pays `amount` out by the shares from the root after B to `split_root`.
//! * **the lock**: a spend from A (transfer, withdraw, split, stream open, an applied forced
//!   withdrawal; a delegate, in a circuit with policy checks) finds A's shares part `ZERO`
//!   (`SHARES_LOCKED`); [`SharesEffects::locked`]
//!   is the forced withdrawal's ninth reason (status 15, judged after the nonce's).
//!
//! A circuit that proves registrations must carry the lock in every slot, and a registry
//! that pins it must pin no leaf without it: a leaf without the lock would let an account
//! with shares spend. So the lock is part of this branch, not of the plain slot.
//!
//! **Cost**: 26 rows per slot (501 against 475; `tests/payment.rs` prints it): the opening
//! (the profile and `ext` hashes, two permutations, and their emptiness tests), the shares
//! digest (one), the registration's new profile and `ext` (two), the lock's test, the
//! record's selects and the two messages and ops (sharing the slot's sponges). A leaf of 8
//! slots still fits 2^12 rows.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::tx::TxKind;

use super::slot::{select4, SlotView};
use crate::gadgets::agent::{ext_digest, ext_of_parts, profile_digest, shares_digest};
use crate::gadgets::pubdata::{list_entry_chunks, OpChunks};
use crate::gadgets::smt::is_zero_digest;
use crate::witness::{OwnerOpening, SlotKind};
use crate::{D, F};

/// The revenue-share rules the circuit names when a witness breaks one
/// ([`super::PaymentCircuit::refused_by_shares`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharesRule {
    /// The owner's `ext` does not open to the witnessed stream root and profile parts.
    OwnerExt,
    SharesAlreadySet,
    SharesLocked,
    /// The distributed account's shares part is not the digest of the slot's list.
    NoShares,
    /// The distributed account does not exist.
    UnknownAccount,
    /// The distributed amount is not the account's whole balance, or its balance after is not 0.
    WholeBalance,
    NothingToDistribute,
}

impl SharesRule {
    /// A stable name: the native reason code where there is one (SPEC 19.6).
    pub fn code(self) -> &'static str {
        match self {
            SharesRule::OwnerExt => "OWNER_EXT",
            SharesRule::SharesAlreadySet => "SHARES_ALREADY_SET",
            SharesRule::SharesLocked => "SHARES_LOCKED",
            SharesRule::NoShares => "NO_SHARES",
            SharesRule::UnknownAccount => "UNKNOWN_ACCOUNT",
            SharesRule::WholeBalance => "WHOLE_BALANCE",
            SharesRule::NothingToDistribute => "NOTHING_TO_DISTRIBUTE",
        }
    }
}

type Rules = super::rules::Rules<SharesRule>;

/// The witness targets of a slot's revenue-share branch.
#[derive(Clone, Debug)]
pub(super) struct SharesTargets {
    pub(super) register: BoolTarget,
    pub(super) distribute: BoolTarget,
    /// The owner's `ext` parts before the slot.
    streams_root: HashOutTarget,
    shares: HashOutTarget,
    passport: HashOutTarget,
    lanes: HashOutTarget,
}

/// What the branch hands back to the slot.
pub(super) struct SharesEffects {
    /// Register or distribute.
    pub any: BoolTarget,
    pub register: BoolTarget,
    pub distribute: BoolTarget,
    /// The owner's shares part is set (a forced withdrawal's reason 15 when the owner is A).
    pub locked: BoolTarget,
    /// A registration's new `ext` for A (the slot selects it for a registration).
    pub new_ext: [Target; 4],
    /// The shares part a registration sets (the slot's list digest).
    pub shares_after: HashOutTarget,
    /// The split-credit record's `from`, `n` element and `sum` (the slot folds them with its
    /// roots and list digest when it hands a record over).
    pub record_from: Target,
    pub record_n: Target,
    pub record_sum: Target,
    /// The two messages (domain, tag, fields), for the slot's message sponge.
    pub messages: Vec<(BoolTarget, Vec<Target>)>,
    /// The two ops, for the slot's pubdata sponge.
    pub ops: Vec<OpChunks>,
    /// The rules' targets (their wires name a broken one).
    pub rules: Vec<(Target, SharesRule)>,
}

/// Adds the branch's constraints; see the module docs.
/// `spends`: the slot's kinds that spend from A (they must find it unlocked); `forced`: a
/// forced withdrawal, applied or not (its opening feeds the ninth reason).
pub(super) fn build(
    b: &mut CircuitBuilder<F, D>,
    i: &SlotView,
    spends: BoolTarget,
    forced: BoolTarget,
) -> (SharesTargets, SharesEffects) {
    let t = SharesTargets {
        register: b.add_virtual_bool_target_safe(),
        distribute: b.add_virtual_bool_target_safe(),
        streams_root: b.add_virtual_hash(),
        shares: b.add_virtual_hash(),
        passport: b.add_virtual_hash(),
        lanes: b.add_virtual_hash(),
    };
    let (register, distribute) = (t.register, t.distribute);
    let mut rules = Rules::default();
    let any = BoolTarget::new_unsafe(b.add(register.target, distribute.target));

    // The owner's opening, where the kind reads its shares part.
    let reads = b.or(spends, forced);
    let opened = b.or(reads, any);
    let owner_ext = select4(b, distribute, i.b_ext, i.a_ext);
    let profile = profile_digest(b, &[t.shares, t.passport, t.lanes]);
    let ext = ext_digest(b, t.streams_root, profile);
    for (x, y) in ext.elements.iter().zip(owner_ext) {
        rules.eq(b, opened, *x, y, SharesRule::OwnerExt);
    }
    let unset = is_zero_digest(b, t.shares);
    let locked = b.not(unset);
    rules.zero(b, spends.target, locked.target, SharesRule::SharesLocked);
    rules.zero(
        b,
        register.target,
        locked.target,
        SharesRule::SharesAlreadySet,
    );

    // The list's digest: what a registration signs and sets, what a distribute finds set.
    let digest = shares_digest(b, i.n, i.list);
    for (x, y) in t.shares.elements.iter().zip(digest.elements) {
        rules.eq(b, distribute, *x, y, SharesRule::NoShares);
    }

    // A registration's new profile and `ext`: its shares part is a digest, never `ZERO`, so
    // neither is empty and both are plain hashes.
    let new_ext = ext_of_parts(b, t.streams_root, &[digest, t.passport, t.lanes]);

    // A distribute pays out B's whole balance, which is not zero.
    rules.holds(b, distribute, i.b_exists, SharesRule::UnknownAccount);
    rules.eq(
        b,
        distribute,
        i.amount,
        i.b_balance,
        SharesRule::WholeBalance,
    );
    rules.zero(
        b,
        distribute.target,
        i.amount_zero.target,
        SharesRule::NothingToDistribute,
    );

    // The record (SPEC 19.5, "Kinds"): a registration's sum is the points' 10,000.
    let record_from = b.select(distribute, i.b_index, i.a_index);
    let kind = b.mul_const_add(F::TWO, distribute.target, register.target);
    let record_n = b.mul_const_add(F::from_canonical_u64(1 << 16), kind, i.n);
    let points = b.constant(F::from_canonical_u16(state::split::BPS_WHOLE));
    let record_sum = b.select(register, points, i.amount);

    // Messages (`tx::shares`): the body's fields.
    let mut reg_body = vec![i.a_index, i.n];
    reg_body.extend(digest.elements);
    let reg = i.message(b, TxKind::RegisterShares, &reg_body);
    let dist = i.message(b, TxKind::Distribute, &[i.a_index, i.b_index]);

    // Ops (SPEC 10.2): a registration enters as a list (its fixed bytes, then the chain),
    // a distribute as its 17 bytes.
    let ops = vec![
        OpChunks {
            flag: register,
            len: state::pubdata::SPLIT_FIXED_BYTES,
            chunks: list_entry_chunks(
                b,
                TxKind::RegisterShares,
                i.a_bits,
                i.n_bits,
                i.fee_bits,
                i.list,
            ),
        },
        i.op(b, TxKind::Distribute, distribute, &[i.a_bits, i.b_bits]),
    ];

    let effects = SharesEffects {
        any,
        register,
        distribute,
        locked,
        new_ext: new_ext.elements,
        shares_after: digest,
        record_from,
        record_n,
        record_sum,
        messages: vec![(register, reg), (distribute, dist)],
        ops,
        rules: rules.into_inner(),
    };
    (t, effects)
}

/// Sets the branch's targets: the kind flags and the owner's opening (`None`: a slot that
/// reads no shares part; the targets get the empty account's parts).
pub(super) fn set(
    pw: &mut PartialWitness<F>,
    t: &SharesTargets,
    kind: SlotKind,
    owner: Option<&OwnerOpening>,
) -> anyhow::Result<()> {
    pw.set_bool_target(t.register, kind == SlotKind::RegisterShares)?;
    pw.set_bool_target(t.distribute, kind == SlotKind::Distribute)?;
    let empty = OwnerOpening::empty();
    let o = owner.unwrap_or(&empty);
    pw.set_hash_target(t.streams_root, o.streams_root.into())?;
    pw.set_hash_target(t.shares, o.profile.shares.into())?;
    pw.set_hash_target(t.passport, o.profile.passport.into())?;
    pw.set_hash_target(t.lanes, o.profile.lanes.into())?;
    Ok(())
}
