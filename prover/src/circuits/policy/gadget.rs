//! The policy rules as a gadget (SPEC 20.4, 20.8): a passport's opened fields judged against a
//! spend, each rule an explicit boolean, and the passport digests before and after.
//!
//! Two users: the standalone [`super::PolicyCircuit`] (every rule required) and the payment
//! slot of a leaf with agents ([`crate::circuits::payment`]), which requires the rules of a
//! signed spend and publishes the first broken one as a forced withdrawal's status (9 to 14).
//! That second use is why a rule is a value here and not an assertion: every `broken` flag is
//! computed soundly in both directions from values the passport digest binds (the comparisons
//! are two-limb, the window's quotient is constrained), so a forced withdrawal's status is a
//! function of the request and the state. One exception, harmless: a payee's membership path
//! is a witness, so "not a member" can be claimed for a listed payee; that only refuses a
//! spend (an operator may always leave a transaction out), and a withdrawal to L1, the only
//! kind whose status is published, never takes the path.
//!
//! Cost: the passport and policy hashes (three permutations), the passport after (one), four
//! two-limb comparisons, the window's decomposition and the cap's two sums; with a list, a
//! ten-hash path and the comparison of its root.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::{HashOut, HashOutTarget};
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::hash::Digest;
use state::passport::{ALLOW_DEPTH, TAG_POLICY};

use super::{PassportOpening, PolicyRule};
use crate::gadgets::range::{add_u63_overflow, is_le_u63, range_check_u63, split_at, U63Target};
use crate::gadgets::smt::hash_level;
use crate::{D, F};

/// A passport's fields as witnessed (SPEC 20.2), the list and the card as their digests, with
/// the block time's window decomposition and the payee's membership path.
#[derive(Clone, Debug)]
pub(crate) struct PassportTargets {
    owner: Target,
    cap: Target,
    window: Target,
    max_payment: Target,
    max_fee: Target,
    expiry: Target,
    allow: HashOutTarget,
    card: HashOutTarget,
    revoked: BoolTarget,
    window_id: Target,
    spent: Target,
    /// `T = q x window + r`.
    q: Target,
    r: Target,
    /// The payee's position bits and siblings in the allow-list (the list shape only).
    membership: Option<(Vec<BoolTarget>, Vec<HashOutTarget>)>,
}

impl PassportTargets {
    /// Fresh targets, with a membership path if `with_list`.
    pub(crate) fn new(b: &mut CircuitBuilder<F, D>, with_list: bool) -> Self {
        let mut t = || b.add_virtual_target();
        let [owner, cap, window, max_payment, max_fee, expiry, window_id, spent, q, r] =
            std::array::from_fn(|_| t());
        let membership = with_list.then(|| {
            let bits = (0..ALLOW_DEPTH)
                .map(|_| b.add_virtual_bool_target_safe())
                .collect();
            let siblings = (0..ALLOW_DEPTH).map(|_| b.add_virtual_hash()).collect();
            (bits, siblings)
        });
        PassportTargets {
            owner,
            cap,
            window,
            max_payment,
            max_fee,
            expiry,
            allow: b.add_virtual_hash(),
            card: b.add_virtual_hash(),
            revoked: b.add_virtual_bool_target_safe(),
            window_id,
            spent,
            q,
            r,
            membership,
        }
    }

    /// Sets the fields of `p`, or zeros for a signer that is no agent (`None`).
    pub(crate) fn set(
        &self,
        pw: &mut PartialWitness<F>,
        p: Option<&PassportOpening>,
    ) -> anyhow::Result<()> {
        let f = F::from_noncanonical_u64;
        let zero = PassportOpening::default();
        let p = p.unwrap_or(&zero);
        let pol = &p.policy;
        for (t, v) in [
            (self.owner, u64::from(p.owner)),
            (self.cap, pol.cap),
            (self.window, pol.window),
            (self.max_payment, pol.max_payment),
            (self.max_fee, pol.max_fee),
            (self.expiry, pol.expiry),
            (self.revoked.target, p.revoked),
            (self.window_id, p.window_id),
            (self.spent, p.spent),
            (self.q, p.q),
            (self.r, p.r),
        ] {
            pw.set_target(t, f(v))?;
        }
        pw.set_hash_target(self.allow, HashOut::from(pol.allow))?;
        pw.set_hash_target(self.card, HashOut::from(pol.card))?;
        if let Some((bits, siblings)) = &self.membership {
            // A spend that needs no path still fills the shape (it is not checked then).
            let (pos, path) = p
                .membership
                .clone()
                .unwrap_or((0, vec![Digest::ZERO; ALLOW_DEPTH]));
            anyhow::ensure!(
                path.len() == ALLOW_DEPTH,
                "a path has {ALLOW_DEPTH} siblings"
            );
            for (l, (bit, sib)) in bits.iter().zip(siblings).enumerate() {
                pw.set_bool_target(*bit, (pos >> l) & 1 == 1)?;
                pw.set_hash_target(*sib, HashOut::from(path[l]))?;
            }
        }
        Ok(())
    }
}

/// The spend as the rules read it.
pub(crate) struct SpendInputs<'a> {
    /// `T`: the block time, or a forced withdrawal's request time.
    pub time: &'a U63Target,
    /// What the spend moves besides its fee (SPEC 20.4).
    pub value: &'a U63Target,
    pub fee: &'a U63Target,
    /// The one account it pays, if `pays_account`.
    pub payee: Target,
    pub pays_account: BoolTarget,
    /// It pays several accounts (a split), whose membership a slot cannot prove.
    pub pays_many: BoolTarget,
    /// It leaves to L1 (a withdrawal).
    pub to_l1: BoolTarget,
}

/// What the rules find.
pub(crate) struct Judgement {
    /// The passport digest the fields open to: `H(owner, policy, revoked, window_id, spent)`.
    pub passport_before: HashOutTarget,
    /// The passport the spend leaves: not revoked, window `q`, `spent' + value + fee` spent.
    pub passport_after: HashOutTarget,
    /// SPEC 20.4's six rules in their order, each flag set iff the rule is broken.
    pub broken: [(BoolTarget, PolicyRule); 6],
    /// Values that are zero when the window decomposition `T = q x window + r` is the integer
    /// division (rule `WINDOW`): the caller requires them zero wherever the judgement counts.
    pub window: Vec<Target>,
    /// Gates of the membership path and its comparison (0 without a list).
    pub gates_of_list: usize,
}

fn hash(b: &mut CircuitBuilder<F, D>, inputs: Vec<Target>) -> HashOutTarget {
    b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs)
}

/// `H(owner, policy0..3, revoked, window_id, spent)` (SPEC 20.2).
pub(crate) fn passport_digest(
    b: &mut CircuitBuilder<F, D>,
    owner: Target,
    policy: HashOutTarget,
    revoked: Target,
    window_id: Target,
    spent: Target,
) -> HashOutTarget {
    let mut p = vec![owner];
    p.extend(policy.elements);
    p.extend([revoked, window_id, spent]);
    hash(b, p)
}

/// Judges `s` by the passport `p` (module docs).
pub(crate) fn judge(
    b: &mut CircuitBuilder<F, D>,
    p: &PassportTargets,
    s: &SpendInputs<'_>,
) -> Judgement {
    let zero = b.zero();
    let one = b.one();
    let tag = b.constant(F::from_canonical_u64(TAG_POLICY));
    let mut policy_inputs = vec![tag, p.cap, p.window, p.max_payment, p.max_fee, p.expiry];
    policy_inputs.extend(p.allow.elements);
    policy_inputs.extend(p.card.elements);
    let policy = hash(b, policy_inputs);
    let passport_before =
        passport_digest(b, p.owner, policy, p.revoked.target, p.window_id, p.spent);

    // 2-4: time, fee and value against their bounds.
    let expiry = range_check_u63(b, p.expiry);
    let in_time = is_le_u63(b, s.time, &expiry);
    let max_fee = range_check_u63(b, p.max_fee);
    let fee_ok = is_le_u63(b, s.fee, &max_fee);
    let max_payment = range_check_u63(b, p.max_payment);
    let value_ok = is_le_u63(b, s.value, &max_payment);

    // 5: the payee. A list is `allow != ZERO`; under one, a withdrawal to L1 and a split are
    // refused, and the one account paid must be a leaf `(payee, 1, 0, 0)` of the list.
    let allow_sq: Vec<Target> = p.allow.elements.iter().map(|&e| b.mul(e, e)).collect();
    let allow_norm = b.add_many(allow_sq);
    let no_list = b.is_equal(allow_norm, zero);
    let has_list = b.not(no_list);
    let list_start = b.num_gates();
    let off_list = match &p.membership {
        Some((bits, siblings)) => {
            let mut cur = HashOutTarget::from_vec(vec![s.payee, one, zero, zero]);
            for (bit, sib) in bits.iter().zip(siblings) {
                cur = hash_level(b, cur, *sib, *bit);
            }
            let mut member = b._true();
            for (x, y) in cur.elements.iter().zip(p.allow.elements) {
                let e = b.is_equal(*x, y);
                member = b.and(member, e);
            }
            b.not(member)
        }
        // Without a path, no account paid can be shown listed.
        None => b._true(),
    };
    let gates_of_list = b.num_gates() - list_start;
    let unlisted_payee = b.and(s.pays_account, off_list);
    let payee_bad = b.or(s.to_l1, s.pays_many);
    let payee_bad = b.or(payee_bad, unlisted_payee);
    let payee_broken = b.and(has_list, payee_bad);

    // The window: T = q x window + r, q < 2^32, and r < window unless window = 0 (then q = 0).
    // e = window - r - 1 + 2^32 is in [2^32, 2^33) iff r < window (r < 2^63, window < 2^32).
    b.range_check(p.window, 32);
    b.range_check(p.q, 32);
    range_check_u63(b, p.r);
    let qw = b.mul(p.q, p.window);
    let t_again = b.add(qw, p.r);
    let off_division = b.sub(t_again, s.time.value);
    let lifetime = b.is_equal(p.window, zero);
    let lifetime_q = b.mul(lifetime.target, p.q);
    let bias = b.constant(F::from_canonical_u64((1 << 32) - 1));
    let e = b.sub(p.window, p.r);
    let e = b.add(e, bias);
    let (low, ge) = split_at(b, e, 32);
    b.range_check(low, 32);
    // `ge` is a bit exactly when r < window + 2^32 (always, for a true decomposition).
    let ge_bit = b.mul_sub(ge, ge, ge);
    let not_lifetime = b.not(lifetime);
    let short = b.sub(one, ge);
    let r_too_big = b.mul(not_lifetime.target, short);

    // 6: the cap. spent' = spent if q is the stored window, else 0; spent' + value + fee <=
    // cap, neither sum past 2^63 - 1.
    let same = b.is_equal(p.q, p.window_id);
    let spent_now = b.mul(same.target, p.spent);
    let spent_now = range_check_u63(b, spent_now);
    let (s1, o1) = add_u63_overflow(b, &spent_now, s.value);
    let (s2, o2) = add_u63_overflow(b, &s1, s.fee);
    let cap = range_check_u63(b, p.cap);
    let le = is_le_u63(b, &s2, &cap);
    let no1 = b.not(o1);
    let no2 = b.not(o2);
    let cap_ok = b.and(le, no1);
    let cap_ok = b.and(cap_ok, no2);

    let passport_after = passport_digest(b, p.owner, policy, zero, p.q, s2.value);
    let broken = [
        (p.revoked, PolicyRule::Revoked),
        (b.not(in_time), PolicyRule::PolicyExpired),
        (b.not(fee_ok), PolicyRule::PolicyFee),
        (b.not(value_ok), PolicyRule::PolicyPayment),
        (payee_broken, PolicyRule::PolicyPayee),
        (b.not(cap_ok), PolicyRule::PolicyCap),
    ];
    Judgement {
        passport_before,
        passport_after,
        broken,
        window: vec![off_division, lifetime_q, ge_bit, r_too_big],
        gates_of_list,
    }
}
