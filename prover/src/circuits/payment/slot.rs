//! One slot of the payment circuit: its witness targets and constraints (module docs of
//! [`super`]).

use anyhow::ensure;
use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::pubdata::{op_len, SPLIT_FIXED_BYTES};
use state::smt::DEPTH;
use state::tx::{L1Address, TxKind};

use super::agent::{AgentInputs, AgentTargets};
use super::owner::{OwnerRule, OwnerTargets};
use super::shares::{SharesRule, SharesTargets};
use super::stream::{StreamRule, StreamTargets};
use super::{PaymentKinds, PolicyChecks};
use crate::circuits::policy::{PolicyRule, SpendInputs};
use crate::gadgets::pubdata::{
    absorb_op, absorb_withdrawal, chunks_from_bits, const_byte_bits, deposit_op_chunks,
    forced_op_chunks, hash_no_pad_select, list_entry_chunks, register_op_chunks,
    transfer_op_chunks, withdraw_op_chunks, ForcedOpBits, OpChunks,
};
use crate::gadgets::range::{
    add_u63, add_u63_overflow, is_le_u63, range_check_u63, range_check_u64, scale_u63, sub_u63,
    U63Target,
};
use crate::gadgets::schnorr::{verify_schnorr, SchnorrTargets, DUMMY_KEY_W};
use crate::gadgets::smt::{hash_or_zero, leaf_hash, select_hash, update, MerklePathTarget};
use crate::witness::{AccountFields, LeafAccess, SlotKind, SlotWitness};
use crate::{D, F};

/// The witness targets of one leaf access.
#[derive(Clone, Debug)]
struct AccessTargets {
    pubkey: [Target; 5],
    balance: Target,
    nonce: Target,
    ext: [Target; 4],
    exists: BoolTarget,
    path: MerklePathTarget,
}

impl AccessTargets {
    fn new(b: &mut CircuitBuilder<F, D>) -> Self {
        AccessTargets {
            pubkey: std::array::from_fn(|_| b.add_virtual_target()),
            balance: b.add_virtual_target(),
            nonce: b.add_virtual_target(),
            ext: std::array::from_fn(|_| b.add_virtual_target()),
            exists: b.add_virtual_bool_target_safe(),
            path: MerklePathTarget::new(b),
        }
    }

    /// The 12 leaf elements with the given balance and nonce.
    fn fields(&self, b: &mut CircuitBuilder<F, D>, balance: Target, nonce: Target) -> [Target; 12] {
        self.fields_with_ext(b, balance, nonce, self.ext)
    }

    /// The 12 leaf elements with the given balance, nonce and `ext`.
    fn fields_with_ext(
        &self,
        b: &mut CircuitBuilder<F, D>,
        balance: Target,
        nonce: Target,
        e: [Target; 4],
    ) -> [Target; 12] {
        let zero = b.zero();
        let p = self.pubkey;
        [
            p[0], p[1], p[2], p[3], p[4], balance, nonce, zero, e[0], e[1], e[2], e[3],
        ]
    }

    /// Sets the old account (or the given stand-in for an empty leaf) and the siblings.
    fn set(
        &self,
        pw: &mut PartialWitness<F>,
        access: &LeafAccess,
        empty_fields: AccountFields,
    ) -> anyhow::Result<()> {
        let a = access.account.unwrap_or(empty_fields);
        for (t, v) in self.pubkey.iter().zip(a.pubkey) {
            pw.set_target(*t, F::from_noncanonical_u64(v))?;
        }
        pw.set_target(self.balance, F::from_noncanonical_u64(a.balance))?;
        pw.set_target(self.nonce, F::from_noncanonical_u64(a.nonce))?;
        for (t, v) in self.ext.iter().zip(a.ext.0) {
            pw.set_target(*t, v)?;
        }
        pw.set_bool_target(self.exists, access.account.is_some())?;
        self.path.set(pw, &access.siblings)
    }
}

/// The witness targets of one slot.
#[derive(Clone, Debug)]
pub(super) struct SlotTargets {
    is_register: BoolTarget,
    is_transfer: BoolTarget,
    is_withdraw: BoolTarget,
    is_deposit: BoolTarget,
    is_forced: BoolTarget,
    /// A split payment (SPEC 19.4): A is debited the split's sum and fee, its credits are
    /// proven by the split-credit chain, handed over as a record (SPEC 19.5).
    is_split: BoolTarget,
    /// Split: the payee count (16 bits), the parts digest and the root after the credits.
    n: Target,
    parts_digest: HashOutTarget,
    split_root: HashOutTarget,
    /// Forced withdrawal: applied (else one of `reasons` is set).
    applied: BoolTarget,
    /// Forced withdrawal rejected: one flag per reason it may publish, with its status, in
    /// the order the rules judge them (1 to 6, 15 with the revenue-share kinds, 9 to 14 with
    /// policy checks, 7, 8).
    reasons: Vec<(BoolTarget, u8)>,
    a_index: Target,
    b_index: Target,
    amount: Target,
    fee: Target,
    nonce: Target,
    valid_until: Target,
    seq: Target,
    requested_at: Target,
    to_l1: [Target; 5],
    /// Deposit: the depositor's five big-endian u32 limbs (bound through the entries chain
    /// to the L1 entry, SPEC 13.8; no range check needed here).
    depositor: [Target; 5],
    /// The stream kinds, in a circuit built with them ([`super::stream`]).
    stream: Option<StreamTargets>,
    /// The stream rules' targets, for naming a broken one.
    pub(super) stream_rules: Vec<(Target, StreamRule)>,
    /// The revenue-share kinds and the lock, in a circuit built with them
    /// ([`super::shares`]).
    shares: Option<SharesTargets>,
    pub(super) shares_rules: Vec<(Target, SharesRule)>,
    /// The agent branch, in a circuit built with policy checks ([`super::agent`]).
    agent: Option<AgentTargets>,
    pub(super) policy_rules: Vec<(Target, PolicyRule)>,
    /// The owner kinds, in a circuit built with policy checks ([`super::owner`]).
    owner: Option<OwnerTargets>,
    pub(super) owner_rules: Vec<(Target, OwnerRule)>,
    signature: SchnorrTargets,
    a: AccessTargets,
    b: AccessTargets,
    c: AccessTargets,
}

/// The values threaded from slot to slot.
#[derive(Clone, Copy)]
pub(super) struct Running {
    pub(super) root: HashOutTarget,
    pub(super) pubdata: HashOutTarget,
    pub(super) withdrawals: HashOutTarget,
    pub(super) deposits: Target,
    /// `entries_commitment` of the priority ops so far (SPEC 13.8).
    pub(super) entries: HashOutTarget,
    /// The split records handed over so far (SPEC 13.1, 19.5).
    pub(super) splits: HashOutTarget,
    /// The settlements' tick walks handed over so far (SPEC 13.1, 18.7).
    pub(super) walks: HashOutTarget,
}

/// What a slot's optional branches (the stream kinds, the revenue-share kinds) read of it.
pub(super) struct SlotView<'a> {
    pub a_index: Target,
    pub b_index: Target,
    pub a_bits: &'a [BoolTarget],
    pub b_bits: &'a [BoolTarget],
    /// A's and B's `ext` before the slot.
    pub a_ext: [Target; 4],
    pub b_ext: [Target; 4],
    pub b_exists: BoolTarget,
    /// B's key as its access reads it (a delegate's agent key, B being empty).
    pub b_pubkey: [Target; 5],
    /// B's balance as its access reads it (after A's write).
    pub b_balance: Target,
    pub nonce: Target,
    pub fee: Target,
    pub fee_bits: &'a [BoolTarget],
    pub valid_until: Target,
    /// The slot's `amount` (an open's escrow, a distribute's balance) and whether it is 0.
    pub amount: Target,
    pub amount_zero: BoolTarget,
    /// A list's length and chained digest (a split's parts, the shares), or a delegate's or
    /// a policy change's policy digest.
    pub n: Target,
    pub n_bits: &'a [BoolTarget],
    pub list: HashOutTarget,
    pub timestamp: &'a U63Target,
    pub domain: HashOutTarget,
    pub walks: HashOutTarget,
}

impl SlotView<'_> {
    /// A signed kind's message (8.3): `domain ‖ tag ‖ body ‖ fee ‖ nonce ‖ valid_until`, for
    /// the slot's message sponge.
    pub fn message(
        &self,
        b: &mut CircuitBuilder<F, D>,
        kind: TxKind,
        body: &[Target],
    ) -> Vec<Target> {
        let tag = b.constant(F::from_canonical_u8(kind.tag()));
        self.message_tagged(tag, body)
    }

    /// [`Self::message`] with the tag as a target: one candidate for two kinds whose messages
    /// differ only by it (the two settlements, SPEC 18.8).
    pub fn message_tagged(&self, tag: Target, body: &[Target]) -> Vec<Target> {
        let mut m = self.domain.elements.to_vec();
        m.push(tag);
        m.extend_from_slice(body);
        m.extend([self.fee, self.nonce, self.valid_until]);
        m
    }

    /// A signed kind's op (10.2) of fixed length: `tag ‖ parts ‖ fee`, from checked bits.
    pub fn op(
        &self,
        b: &mut CircuitBuilder<F, D>,
        kind: TxKind,
        flag: BoolTarget,
        parts: &[&[BoolTarget]],
    ) -> OpChunks {
        let tag = const_byte_bits(b, kind.tag());
        self.op_tagged(b, tag, op_len(kind), flag, parts)
    }

    /// [`Self::op`] with the tag byte's bits as targets, for kinds whose ops differ only by it.
    pub fn op_tagged(
        &self,
        b: &mut CircuitBuilder<F, D>,
        tag_bits: Vec<BoolTarget>,
        len: usize,
        flag: BoolTarget,
        parts: &[&[BoolTarget]],
    ) -> OpChunks {
        let mut s = tag_bits;
        for p in parts {
            s.extend_from_slice(p);
        }
        s.extend_from_slice(self.fee_bits);
        OpChunks {
            flag,
            len,
            chunks: chunks_from_bits(b, &s),
        }
    }
}

/// `flag ? x : y`, element by element.
pub(super) fn select4(
    b: &mut CircuitBuilder<F, D>,
    flag: BoolTarget,
    x: [Target; 4],
    y: [Target; 4],
) -> [Target; 4] {
    std::array::from_fn(|i| b.select(flag, x[i], y[i]))
}

/// `x + y` for two amounts of exclusive kinds (at most one is not zero): their limbs add
/// without a carry, so the sum is one of them, range-checked already.
fn add_exclusive(b: &mut CircuitBuilder<F, D>, x: &U63Target, y: &U63Target) -> U63Target {
    U63Target {
        value: b.add(x.value, y.value),
        lo: b.add(x.lo, y.lo),
        hi: b.add(x.hi, y.hi),
        bits: vec![],
    }
}

/// `flag -> x == y`.
fn assert_eq_if(b: &mut CircuitBuilder<F, D>, flag: BoolTarget, x: Target, y: Target) {
    let d = b.sub(x, y);
    let p = b.mul(flag.target, d);
    b.assert_zero(p);
}

fn or(b: &mut CircuitBuilder<F, D>, x: BoolTarget, y: BoolTarget) -> BoolTarget {
    // Only used on exclusive flags: the sum is boolean.
    BoolTarget::new_unsafe(b.add(x.target, y.target))
}

/// Adds one slot's constraints; returns its targets and the running values after it.
pub(super) fn build_slot(
    b: &mut CircuitBuilder<F, D>,
    domain: HashOutTarget,
    timestamp: &U63Target,
    io: Running,
    kinds: PaymentKinds,
) -> (SlotTargets, Running) {
    let zero = b.zero();
    let one = b.one();

    // Kind flags: at most one is set (none: a no-op). A forced withdrawal is either applied
    // (`fa`, bound by every withdraw rule) or rejected (`fr`) with exactly one proven reason.
    let is_register = b.add_virtual_bool_target_safe();
    let is_transfer = b.add_virtual_bool_target_safe();
    let is_withdraw = b.add_virtual_bool_target_safe();
    let is_deposit = b.add_virtual_bool_target_safe();
    let is_forced = b.add_virtual_bool_target_safe();
    let is_split = b.add_virtual_bool_target_safe();
    let applied = b.add_virtual_bool_target_safe();
    let fa = b.and(is_forced, applied);
    let fr = BoolTarget::new_unsafe(b.sub(is_forced.target, fa.target));
    // The statuses a rejected forced withdrawal may publish, in the order of the rules.
    let mut statuses: Vec<u8> = vec![1, 2, 3, 4, 5, 6];
    if kinds.shares {
        statuses.push(15);
    }
    if kinds.policies != PolicyChecks::None {
        statuses.extend(9..=14);
    }
    statuses.extend([7, 8]);
    let reasons: Vec<(BoolTarget, u8)> = statuses
        .iter()
        .map(|&s| (b.add_virtual_bool_target_safe(), s))
        .collect();
    let reason_sum = reasons
        .iter()
        .fold(zero, |acc, (r, _)| b.add(acc, r.target));
    b.connect(reason_sum, fr.target);
    let pays_out = or(b, is_withdraw, fa);
    let spend = or(b, is_transfer, pays_out);
    let spend = or(b, spend, is_split);
    let signed = or(b, spend, is_register);
    let priority = or(b, is_deposit, is_forced);
    let any = or(b, signed, is_deposit);
    let any = or(b, any, fr);

    // Fields (range checks double as the bit decompositions of the pubdata).
    let a_index = b.add_virtual_target();
    let a_bits = b.split_le(a_index, DEPTH);
    let b_index = b.add_virtual_target();
    let b_bits = b.split_le(b_index, DEPTH);
    let c_bits = vec![b._false(); DEPTH];
    let amount = b.add_virtual_target();
    let amount_u = range_check_u63(b, amount);
    let fee = b.add_virtual_target();
    let fee_u = range_check_u63(b, fee);
    let nonce = b.add_virtual_target();
    let nonce_u = range_check_u63(b, nonce);
    let valid_until = b.add_virtual_target();
    let vu_u = range_check_u63(b, valid_until);
    let seq = b.add_virtual_target();
    let seq_u = range_check_u63(b, seq);
    let requested_at = b.add_virtual_target();
    let req_u = range_check_u63(b, requested_at);
    let to_l1: [Target; 5] = std::array::from_fn(|_| b.add_virtual_target());
    let to_l1_bits: Vec<_> = to_l1.iter().map(|&l| b.split_le(l, 32)).collect();
    let n = b.add_virtual_target();
    let n_bits = b.split_le(n, 16);
    let parts_digest = b.add_virtual_hash();
    let split_root = b.add_virtual_hash();

    let a = AccessTargets::new(b);
    let bb = AccessTargets::new(b);
    let c = AccessTargets::new(b);
    let fee_bits = fee_u.bits64(b);
    let amount_bits = amount_u.bits64(b);

    let amount_zero = b.is_equal(amount, zero);
    let view = SlotView {
        a_index,
        b_index,
        a_bits: &a_bits,
        b_bits: &b_bits,
        a_ext: a.ext,
        b_ext: bb.ext,
        b_exists: bb.exists,
        b_pubkey: bb.pubkey,
        b_balance: bb.balance,
        nonce,
        fee,
        fee_bits: &fee_bits,
        valid_until,
        amount,
        amount_zero,
        n,
        n_bits: &n_bits,
        list: parts_digest,
        timestamp,
        domain,
        walks: io.walks,
    };

    // The stream kinds (open, settle, close), in a circuit built with them.
    let (stream, mut fx) = match kinds.streams {
        true => {
            let (t, fx) = super::stream::build(b, &view);
            (Some(t), Some(fx))
        }
        false => (None, None),
    };
    let (is_stream, is_open) = match (&stream, &fx) {
        (Some(t), Some(f)) => (f.any, t.open),
        _ => (b._false(), b._false()),
    };
    // The signer of every stream kind is A: like a spend, it exists, its nonce is used and it
    // pays the fee; an open also debits its `amount` (the escrow).
    let debits = or(b, spend, is_open);

    // An owner's kinds (SPEC 20.6), in a circuit with policy checks: A signs and pays the fee;
    // B is the agent.
    let (owner, mut ox) = match kinds.policies {
        PolicyChecks::None => (None, None),
        _ => {
            let (t, ox) = super::owner::build(b, &view, &amount_bits);
            (Some(t), Some(ox))
        }
    };
    let (is_owner_kind, is_sweep, is_delegate) = match &ox {
        Some(o) => (o.any, o.sweep, o.delegate),
        None => (b._false(), b._false(), b._false()),
    };
    // The revenue-share kinds (register shares, distribute) and the lock, in a circuit built
    // with them: their signer A pays the fee; neither debits an amount from A. The lock
    // refuses a delegate too (SPEC 20.6: an agent funded by a locked account).
    let (shares, mut sx) = match kinds.shares {
        true => {
            let spends = or(b, debits, is_delegate);
            let (t, sx) = super::shares::build(b, &view, spends, is_forced);
            (Some(t), Some(sx))
        }
        false => (None, None),
    };
    let (is_shares, is_register_shares, is_distribute) = match &sx {
        Some(s) => (s.any, s.register, s.distribute),
        None => (b._false(), b._false(), b._false()),
    };
    let any = or(b, any, is_stream);
    let any = or(b, any, is_shares);
    let any = or(b, any, is_owner_kind);
    b.assert_bool(any);
    let signer_kinds = or(b, is_stream, is_shares);
    let signer_kinds = or(b, signer_kinds, is_owner_kind);
    let pays_fee = or(b, spend, signer_kinds);
    let signed = or(b, signed, signer_kinds);

    // Expiry: valid_until >= now for signed kinds, where now is the batch timestamp, or the L1
    // request time of a forced withdrawal (a waiting sequencer cannot make it expire).
    let now = U63Target {
        value: b.select(is_forced, req_u.value, timestamp.value),
        lo: b.select(is_forced, req_u.lo, timestamp.lo),
        hi: b.select(is_forced, req_u.hi, timestamp.hi),
        bits: vec![],
    };
    let in_time = is_le_u63(b, &now, &vu_u);
    assert_eq_if(b, signed, in_time.target, one);

    // The agent branch: A's spend judged by its passport at `now`, in a circuit built with it.
    let (agent, ax) = match kinds.policies {
        PolicyChecks::None => (None, None),
        shape => {
            let moves = or(b, spend, fr);
            let moves = or(b, moves, is_open);
            let value = scale_u63(b, moves, &amount_u);
            let pays_account = or(b, is_transfer, is_open);
            let to_l1 = or(b, is_withdraw, is_forced);
            // Not `or`: an applied forced withdrawal pays a fee and is forced.
            let judged = b.or(pays_fee, is_forced);
            // An owner's own kinds are charged to no policy (an owner is never an agent).
            let charges = BoolTarget::new_unsafe(b.sub(pays_fee.target, is_owner_kind.target));
            let inputs = AgentInputs {
                a_ext: a.ext,
                judged,
                raises_nonce: pays_fee,
                charges,
                spend: SpendInputs {
                    time: &now,
                    value: &value,
                    fee: &fee_u,
                    payee: b_index,
                    pays_account,
                    pays_many: is_split,
                    to_l1,
                },
                nonce_bits: &nonce_u.bits64(b),
                leaf_nonce: a.nonce,
                streams_after: fx.as_ref().map(|f| (is_open, f.a_streams_after)),
                shares_after: sx.as_ref().map(|s| (s.register, s.shares_after)),
            };
            let (t, ax) = super::agent::build(b, &inputs, shape == PolicyChecks::WithLists);
            (Some(t), Some(ax))
        }
    };

    // Register: A is empty and becomes (key, 0, 0, ext 0); the index is the first free one:
    // the account just below it (B, read without change) exists.
    let p = b.mul(is_register.target, a.exists.target);
    b.assert_zero(p);
    for x in [a.balance, a.nonce, a.ext[0], a.ext[1], a.ext[2], a.ext[3]] {
        assert_eq_if(b, is_register, x, zero);
    }
    let below = b.sub(a_index, one);
    assert_eq_if(b, is_register, b_index, below);
    assert_eq_if(b, is_register, bb.exists.target, one);

    // Transfer / withdraw: the sender exists, nonce matches, amount > 0, operator exists.
    assert_eq_if(b, pays_fee, a.exists.target, one);
    // The nonce: lane 0's is the leaf's (a circuit with policy checks also has lanes 1 to 7,
    // [`super::lanes`]); the lane's last sequence number, 2^60 - 1, is never taken.
    let max_seq = b.constant(F::from_canonical_u64(state::lanes::MAX_SEQ));
    let (nonce_ok, at_max) = match &ax {
        Some(x) => (x.nonce_ok, x.exhausted),
        None => (b.is_equal(nonce, a.nonce), b.is_equal(a.nonce, max_seq)),
    };
    assert_eq_if(b, pays_fee, nonce_ok.target, one);
    let p = b.mul(pays_fee.target, at_max.target);
    b.assert_zero(p);
    let p = b.mul(debits.target, amount_zero.target);
    b.assert_zero(p);
    assert_eq_if(b, pays_fee, c.exists.target, one);
    // Transfer: the recipient exists and differs from the sender.
    assert_eq_if(b, is_transfer, bb.exists.target, one);
    let same = b.is_equal(a_index, b_index);
    let p = b.mul(is_transfer.target, same.target);
    b.assert_zero(p);

    // Deposits and forced withdrawals: in L1 queue order.
    assert_eq_if(b, priority, seq, io.deposits);
    let deposits = b.add(io.deposits, priority.target);

    // Access A.
    let a_bal = range_check_u63(b, a.balance);
    // A delegate's `fund` may be 0 (not `debits`, which requires an amount).
    let debits_amount = or(b, debits, is_delegate);
    let amount_spent = scale_u63(b, debits_amount, &amount_u);
    let fee_spent = scale_u63(b, pays_fee, &fee_u);
    let after_amount = sub_u63(b, &a_bal, &amount_spent);
    let after_debit = sub_u63(b, &after_amount, &fee_spent);
    let amount_deposited = scale_u63(b, is_deposit, &amount_u);
    let (credited_sum, overflow) = add_u63_overflow(b, &after_debit, &amount_deposited);
    let not_overflow = b.not(overflow);
    let exists_ok = b.and(a.exists, not_overflow);
    let credited = b.and(is_deposit, exists_ok);
    let refunded = BoolTarget::new_unsafe(b.sub(is_deposit.target, credited.target));
    // A settlement's payout (SPEC 18.4: after the fee is paid).
    let mut after_credit = match &fx {
        Some(f) => add_u63(b, &after_debit, &f.a_credit),
        None => after_debit,
    };
    // A sweep's amount (SPEC 20.6: after the owner's fee).
    let swept = scale_u63(b, is_sweep, &amount_u);
    if ox.is_some() {
        after_credit = add_u63(b, &after_credit, &swept);
    }
    let after_credit = after_credit.value;
    let a_new_balance = b.select(credited, credited_sum.value, after_credit);
    let (mut a_new_ext, mut b_new_ext) = match &fx {
        Some(f) => (f.a_ext, f.b_ext),
        None => (a.ext, bb.ext),
    };
    if let Some(s) = &sx {
        a_new_ext = select4(b, s.register, s.new_ext, a_new_ext);
    }
    if let Some(x) = &ax {
        a_new_ext = select4(b, x.changed, x.ext_after, a_new_ext);
    }
    if let Some(o) = &ox {
        b_new_ext = select4(b, o.changes_b_ext, o.b_ext, b_new_ext);
    }
    let a_new_nonce = match &ax {
        Some(x) => x.leaf_nonce,
        None => b.add(a.nonce, pays_fee.target),
    };
    // Lane 0's numbers stay below 2^60 (with the rule above, the last is never taken).
    b.range_check(a_new_nonce, state::lanes::SEQ_BITS as usize);
    let a_new_exists = BoolTarget::new_unsafe(b.add(a.exists.target, is_register.target));
    let old_fields = a.fields(b, a.balance, a.nonce);
    let h = leaf_hash(b, &old_fields);
    let a_old_leaf = hash_or_zero(b, a.exists, h);
    let new_fields = a.fields_with_ext(b, a_new_balance, a_new_nonce, a_new_ext);
    let h = leaf_hash(b, &new_fields);
    let a_new_leaf = hash_or_zero(b, a_new_exists, h);
    let root = update(b, io.root, a_old_leaf, a_new_leaf, &a_bits, &a.path);
    // A delegate's new index is the first free one: the account below it exists under the
    // root after A's access, and its signer is no agent.
    let mut owner_rules = Vec::new();
    if let (Some(t), Some(x)) = (&owner, &ax) {
        owner_rules = super::owner::predecessor(b, t, root, b_index);
        let p = b.mul(is_delegate.target, x.agent.target);
        b.assert_zero(p);
        owner_rules.push((p, OwnerRule::AgentCannotDelegate));
    }

    // Access B: the transfer recipient gains `amount`, the payer of a closed stream its
    // refund (exclusive kinds: at most one of the two is not zero).
    let b_bal = range_check_u63(b, bb.balance);
    let mut amount_received = scale_u63(b, is_transfer, &amount_u);
    if let Some(f) = &fx {
        amount_received = add_exclusive(b, &amount_received, &f.b_credit);
    }
    // A sweep's agent pays it out first (its balance covers it: `INSUFFICIENT_BALANCE`).
    let b_bal = match &ox {
        Some(_) => sub_u63(b, &b_bal, &swept),
        None => b_bal,
    };
    // A delegate's agent: an empty leaf (the owner branch's rule) that holds nothing but the
    // key, created with the balance `fund` and nonce 0.
    for x in [bb.balance, bb.nonce] {
        assert_eq_if(b, is_delegate, x, zero);
    }
    let funded = scale_u63(b, is_delegate, &amount_u);
    if ox.is_some() {
        amount_received = add_exclusive(b, &amount_received, &funded);
    }
    let b_new = add_u63(b, &b_bal, &amount_received);
    // A distribute pays B's whole balance out (the chain credits it to the payees).
    let b_new_balance = match &sx {
        Some(s) => b.select(s.distribute, zero, b_new.value),
        None => b_new.value,
    };
    let old_fields = bb.fields(b, bb.balance, bb.nonce);
    let h = leaf_hash(b, &old_fields);
    let b_old_leaf = hash_or_zero(b, bb.exists, h);
    let new_fields = bb.fields_with_ext(b, b_new_balance, bb.nonce, b_new_ext);
    let h = leaf_hash(b, &new_fields);
    let b_new_exists = BoolTarget::new_unsafe(b.add(bb.exists.target, is_delegate.target));
    let b_new_leaf = hash_or_zero(b, b_new_exists, h);
    let root = update(b, root, b_old_leaf, b_new_leaf, &b_bits, &bb.path);

    // A split's credits (SPEC 19.5): the chain proves them from the root after the debit to
    // `split_root`; the slot hands that over as a record, `(root, split_root, from, n, sum,
    // d)` folded into `splits` (the settlement circuit requires the chain's fold to be the
    // same), and goes on from `split_root`. The sum is the debited `amount`. A distribute
    // hands its payouts over the same way; a registration hands over its list, which the
    // chain checks and leaves the root as it found it.
    let (from, n_element, sum, after) = match &sx {
        Some(s) => (
            s.record_from,
            s.record_n,
            s.record_sum,
            select_hash(b, s.register, root, split_root),
        ),
        None => (a_index, n, amount, split_root),
    };
    let mut record = io.splits.elements.to_vec();
    record.extend(root.elements);
    record.extend(after.elements);
    record.extend([from, n_element, sum]);
    record.extend(parts_digest.elements);
    let folded = b.hash_n_to_hash_no_pad::<PoseidonHash>(record);
    let credits = or(b, is_split, is_distribute);
    let hands_over = or(b, credits, is_register_shares);
    let splits = select_hash(b, hands_over, folded, io.splits);
    let root = select_hash(b, credits, split_root, root);

    // Access C: the operator gains the fee.
    let c_bal = range_check_u63(b, c.balance);
    let c_new = add_u63(b, &c_bal, &fee_spent);
    let old_fields = c.fields(b, c.balance, c.nonce);
    let h = leaf_hash(b, &old_fields);
    let c_old_leaf = hash_or_zero(b, c.exists, h);
    let new_fields = c.fields(b, c_new.value, c.nonce);
    let h = leaf_hash(b, &new_fields);
    let c_new_leaf = hash_or_zero(b, c.exists, h);
    let root = update(b, root, c_old_leaf, c_new_leaf, &c_bits, &c.path);

    // Message hash and signature (register: by the key it registers, which is A's key; a
    // forced withdrawal signs the plain withdraw message).
    let tag = |b: &mut CircuitBuilder<F, D>, k: TxKind| b.constant(F::from_canonical_u8(k.tag()));
    let mut reg = domain.elements.to_vec();
    reg.push(tag(b, TxKind::Register));
    reg.extend_from_slice(&a.pubkey);
    reg.push(valid_until);
    let mut tr = domain.elements.to_vec();
    tr.push(tag(b, TxKind::Transfer));
    tr.extend_from_slice(&[a_index, b_index, amount, fee, nonce, valid_until]);
    let mut wd = domain.elements.to_vec();
    wd.push(tag(b, TxKind::Withdraw));
    wd.push(a_index);
    wd.extend_from_slice(&to_l1);
    wd.extend_from_slice(&[amount, fee, nonce, valid_until]);
    let mut sp = domain.elements.to_vec();
    sp.push(tag(b, TxKind::Split));
    sp.extend_from_slice(&[a_index, n]);
    sp.extend_from_slice(&parts_digest.elements);
    sp.extend_from_slice(&[fee, nonce, valid_until]);
    let withdraw_msg = or(b, is_withdraw, is_forced);
    let mut messages = vec![
        (is_register, reg),
        (is_transfer, tr),
        (withdraw_msg, wd),
        (is_split, sp),
    ];
    if let Some(f) = &mut fx {
        messages.append(&mut f.messages);
    }
    if let Some(s) = &mut sx {
        messages.append(&mut s.messages);
    }
    if let Some(o) = &mut ox {
        messages.append(&mut o.messages);
    }
    let msg = hash_no_pad_select(b, &messages);
    // A forced withdrawal of an existing sender is always judged under the sender's key (its
    // signature rule is one of the rules it may break); other unsigned slots, and a forced
    // withdrawal whose sender does not exist (rule 1 comes first), use a fixed valid key.
    // (Not `or`: an applied forced withdrawal is both signed and forced_known.)
    let forced_known = b.and(is_forced, a.exists);
    let both = b.and(signed, forced_known);
    let either = b.add(signed.target, forced_known.target);
    let use_key = BoolTarget::new_unsafe(b.sub(either, both.target));
    let pk: [Target; 5] = std::array::from_fn(|i| {
        let dummy = b.constant(F::from_canonical_u64(DUMMY_KEY_W[i]));
        b.select(use_key, a.pubkey[i], dummy)
    });
    let signature = verify_schnorr(b, pk, msg, signed);

    // A forced withdrawal's status is the FIRST Withdraw rule it breaks, in the order of the
    // native rules (SPEC 11.2, `State::judge_forced`), or 0 (applied) when it breaks none.
    // Each `broken` flag is computed soundly in both directions (equalities and comparisons,
    // never a bare witness), so the status is a function of the queued request and the state:
    // the operator can neither refuse a valid request nor pick which of several broken rules
    // to publish.
    let exists = a.exists;
    let missing = b.not(exists);
    // 2: under the sender's key, the recomputed challenge equals e in every limb.
    let mut sig_ok = b._true();
    for (calc, claimed) in signature.e_calc.iter().zip(signature.e) {
        let eq = b.is_equal(*calc, claimed);
        sig_ok = b.and(sig_ok, eq);
    }
    let sig_bad = b.not(sig_ok);
    let sig_broken = b.and(exists, sig_bad);
    // 3: valid_until < requested_at.
    let expired = b.not(in_time);
    // 5, 6: the nonce differs; its lane's number is the last, 2^60 - 1 (never taken).
    let nonce_bad = b.not(nonce_ok);
    let nonce_broken = b.and(exists, nonce_bad);
    let exhausted = b.and(exists, at_max);
    // 7: amount + fee > balance (overflowing 2^63 - 1 counts).
    let (cost, cost_overflow) = add_u63_overflow(b, &amount_u, &fee_u);
    let covered = is_le_u63(b, &cost, &a_bal);
    let no_cost_overflow = b.not(cost_overflow);
    let affordable = b.and(no_cost_overflow, covered);
    let unaffordable = b.not(affordable);
    let poor = b.and(exists, unaffordable);
    // 8: the operator cannot take the fee; never for the operator's own withdraw (its debit
    // comes first).
    let (_, fee_overflow) = add_u63_overflow(b, &c_bal, &fee_u);
    let a_is_operator = b.is_equal(a_index, zero);
    let not_operator = b.not(a_is_operator);
    let fee_broken = b.and(not_operator, fee_overflow);
    let mut broken = vec![
        missing,
        sig_broken,
        expired,
        amount_zero,
        nonce_broken,
        exhausted,
        poor,
        fee_broken,
    ];
    // 15: the sender's shares are set; 9 to 14: an agent's policy (judged after the nonce,
    // before the balance).
    let mut after_nonce = Vec::new();
    if let Some(s) = &sx {
        after_nonce.push(b.and(exists, s.locked));
    }
    if let Some(x) = &ax {
        after_nonce.extend(x.broken.iter().copied());
    }
    broken.splice(6..6, after_nonce);
    debug_assert_eq!(broken.len(), reasons.len());
    let mut clean = b._true();
    for ((reason, _), rule_broken) in reasons.iter().zip(broken) {
        let first = b.and(clean, rule_broken);
        assert_eq_if(b, is_forced, reason.target, first.target);
        let holds = b.not(rule_broken);
        clean = b.and(clean, holds);
    }
    assert_eq_if(b, is_forced, applied.target, clean.target);
    // The status byte: 0 when applied, else the reason's number (bit k set by the reasons
    // whose number has bit k).
    let status: [BoolTarget; 4] = std::array::from_fn(|k| {
        let mut acc = zero;
        for (r, number) in &reasons {
            if (number >> k) & 1 == 1 {
                acc = b.add(acc, r.target);
            }
        }
        BoolTarget::new_unsafe(acc)
    });

    // Pubdata and withdrawals.
    // The registered key's bits, or a delegate's agent key's: one decomposition for both ops.
    let op_key: [Target; 5] = match &ox {
        Some(o) => std::array::from_fn(|k| b.select(is_delegate, o.agent_key[k], a.pubkey[k])),
        None => a.pubkey,
    };
    let pk_bits: Vec<_> = op_key.iter().map(|&w| range_check_u64(b, w)).collect();
    let seq_bits = seq_u.bits64(b);
    let req_bits = req_u.bits64(b);
    let nonce_bits = nonce_u.bits64(b);
    let vu_bits = vu_u.bits64(b);
    let s_bits = signature.s_stream_bits();
    let forced_chunks = forced_op_chunks(
        b,
        &ForcedOpBits {
            seq: &seq_bits,
            requested_at: &req_bits,
            from: &a_bits,
            addr_limbs: &to_l1_bits,
            amount: &amount_bits,
            fee: &fee_bits,
            nonce: &nonce_bits,
            valid_until: &vu_bits,
            e: &signature.e_bits,
            s: &s_bits,
            status,
        },
    );
    let deposit_chunks = deposit_op_chunks(b, &seq_bits, &a_bits, &amount_bits, refunded);
    let mut ops = vec![
        OpChunks {
            flag: is_register,
            len: op_len(TxKind::Register),
            chunks: register_op_chunks(b, &a_bits, &pk_bits),
        },
        OpChunks {
            flag: is_transfer,
            len: op_len(TxKind::Transfer),
            chunks: transfer_op_chunks(b, &a_bits, &b_bits, &amount_bits, &fee_bits),
        },
        OpChunks {
            flag: is_withdraw,
            len: op_len(TxKind::Withdraw),
            chunks: withdraw_op_chunks(b, &a_bits, &to_l1_bits, &amount_bits, &fee_bits),
        },
        OpChunks {
            flag: is_deposit,
            len: op_len(TxKind::Deposit),
            chunks: deposit_chunks.clone(),
        },
        OpChunks {
            flag: is_forced,
            len: op_len(TxKind::ForcedWithdraw),
            chunks: forced_chunks.clone(),
        },
        OpChunks {
            flag: is_split,
            len: SPLIT_FIXED_BYTES,
            chunks: list_entry_chunks(b, TxKind::Split, &a_bits, &n_bits, &fee_bits, parts_digest),
        },
    ];
    if let Some(f) = &mut fx {
        ops.append(&mut f.ops);
    }
    if let Some(s) = &mut sx {
        ops.append(&mut s.ops);
    }
    if let Some(o) = &mut ox {
        ops.append(&mut o.ops);
        ops.push(super::owner::delegate_op(
            b,
            &view,
            is_delegate,
            &pk_bits,
            &amount_bits,
        ));
    }
    let pubdata = absorb_op(b, io.pubdata, &ops);
    // The priority entries (SPEC 13.8): the same op chunks, a deposit's depositor after them.
    let depositor: [Target; 5] = std::array::from_fn(|_| b.add_virtual_target());
    let mut deposit_entry = deposit_chunks;
    deposit_entry.extend_from_slice(&depositor);
    let entries = absorb_op(
        b,
        io.entries,
        &[
            OpChunks {
                flag: is_deposit,
                len: op_len(TxKind::Deposit),
                chunks: deposit_entry,
            },
            OpChunks {
                flag: is_forced,
                len: op_len(TxKind::ForcedWithdraw),
                chunks: forced_chunks,
            },
        ],
    );
    let withdrawals = absorb_withdrawal(b, io.withdrawals, pays_out, a_index, &to_l1, amount);

    let targets = SlotTargets {
        is_register,
        is_transfer,
        is_withdraw,
        is_deposit,
        is_forced,
        is_split,
        n,
        parts_digest,
        split_root,
        applied,
        reasons,
        a_index,
        b_index,
        amount,
        fee,
        nonce,
        valid_until,
        seq,
        requested_at,
        to_l1,
        depositor,
        signature,
        stream,
        stream_rules: fx
            .as_mut()
            .map(|f| std::mem::take(&mut f.rules))
            .unwrap_or_default(),
        shares,
        shares_rules: sx
            .as_mut()
            .map(|s| std::mem::take(&mut s.rules))
            .unwrap_or_default(),
        agent,
        policy_rules: ax.map(|x| x.rules).unwrap_or_default(),
        owner,
        owner_rules: {
            owner_rules.extend(ox.map(|o| o.rules).unwrap_or_default());
            owner_rules
        },
        a,
        b: bb,
        c,
    };
    (
        targets,
        Running {
            root,
            pubdata,
            withdrawals,
            deposits,
            entries,
            splits,
            walks: fx.map_or(io.walks, |f| f.walks),
        },
    )
}

pub(super) fn set_slot(
    pw: &mut PartialWitness<F>,
    t: &SlotTargets,
    s: &SlotWitness,
) -> anyhow::Result<()> {
    let kind = s.kind;
    pw.set_bool_target(t.is_register, kind == SlotKind::Register)?;
    pw.set_bool_target(t.is_transfer, kind == SlotKind::Transfer)?;
    pw.set_bool_target(t.is_withdraw, kind == SlotKind::Withdraw)?;
    pw.set_bool_target(t.is_deposit, kind == SlotKind::Deposit)?;
    let forced = kind == SlotKind::ForcedWithdraw;
    pw.set_bool_target(t.is_forced, forced)?;
    pw.set_bool_target(t.is_split, kind == SlotKind::Split)?;
    match &t.stream {
        Some(st) => super::stream::set(pw, st, kind, s.stream.as_ref())?,
        None => ensure!(
            s.stream.is_none(),
            "a {kind:?} slot in a payment circuit built without the stream kinds"
        ),
    }
    match &t.shares {
        Some(sh) => super::shares::set(pw, sh, kind, s.owner.as_ref())?,
        None => ensure!(
            !matches!(kind, SlotKind::RegisterShares | SlotKind::Distribute),
            "a {kind:?} slot in a payment circuit built without the revenue-share kinds"
        ),
    }
    match &t.owner {
        Some(o) => super::owner::set(pw, o, kind, s.agent.as_ref(), s.below.as_ref())?,
        None => ensure!(
            !matches!(
                kind,
                SlotKind::Delegate | SlotKind::SetPolicy | SlotKind::Revoke | SlotKind::Sweep
            ),
            "a {kind:?} slot in a payment circuit built without policy checks"
        ),
    }
    match &t.agent {
        Some(ag) => super::agent::set(pw, ag, s.signer.as_ref())?,
        None => ensure!(
            s.signer.as_ref().is_none_or(|o| o.passport.is_none()),
            "an agent's {kind:?} slot in a payment circuit built without policy checks"
        ),
    }
    pw.set_target(t.n, F::from_canonical_u32(s.n))?;
    pw.set_hash_target(t.parts_digest, s.parts_digest.into())?;
    pw.set_hash_target(t.split_root, s.split_root.into())?;
    let status = if forced { s.forced_status } else { 0 };
    ensure!(
        status == 0 || t.reasons.iter().any(|&(_, n)| n == status),
        "forced status {status} is not one this circuit publishes"
    );
    pw.set_bool_target(t.applied, forced && status == 0)?;
    for &(r, number) in &t.reasons {
        pw.set_bool_target(r, status == number)?;
    }
    ensure!(s.c.index == 0, "access C is the operator's");
    pw.set_target(t.a_index, F::from_canonical_u32(s.a.index))?;
    pw.set_target(t.b_index, F::from_canonical_u32(s.b.index))?;
    for (tt, v) in [
        (t.amount, s.amount),
        (t.fee, s.fee),
        (t.nonce, s.nonce),
        (t.valid_until, s.valid_until),
        (t.seq, s.seq),
        (t.requested_at, s.requested_at),
    ] {
        pw.set_target(tt, F::from_noncanonical_u64(v))?;
    }
    for (tt, v) in t.to_l1.iter().zip(L1Address(s.to_l1).to_field_elements()) {
        pw.set_target(*tt, v)?;
    }
    for (tt, v) in t
        .depositor
        .iter()
        .zip(L1Address(s.depositor).to_field_elements())
    {
        pw.set_target(*tt, v)?;
    }
    let empty = AccountFields {
        pubkey: [0; 5],
        balance: 0,
        nonce: 0,
        ext: state::hash::Digest::ZERO,
    };
    // The empty leaf a kind creates holds the key it creates it with (the circuit reads it
    // there): A of a register, B of a delegate.
    let holding_key = |creates: bool| match creates {
        true => AccountFields {
            pubkey: s.pubkey,
            ..empty
        },
        false => empty,
    };
    t.a.set(pw, &s.a, holding_key(kind == SlotKind::Register))?;
    t.b.set(pw, &s.b, holding_key(kind == SlotKind::Delegate))?;
    t.c.set(pw, &s.c, empty)?;
    // A forced withdrawal's signature is published, so it is always set (and checked unless
    // the rejection reason is another rule).
    let signed =
        kind.signer_pays_fee() || matches!(kind, SlotKind::Register | SlotKind::ForcedWithdraw);
    t.signature
        .set(pw, if signed { s.signature.as_ref() } else { None })?;
    Ok(())
}
