//! The grouped diff circuit itself: its targets, the constraints of a slot (module docs of
//! [`super`]) and proving a chunk against its statement.

use anyhow::ensure;
use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use state::hash::Digest;
use state::stream::SLOT_DEPTH;

use crate::cache::{CircuitCache, CircuitSpec};
use crate::circuits::diff::{
    account_leaf, gated_update, in_order, le_bytes, record_bytes, DiffEnds, Key, StartTargets,
};
use crate::circuits::policy::passport_digest;
use crate::gadgets::agent::{
    book_root, empty_book, ext_digest, profile_digest, StreamFieldsTarget,
};
use crate::gadgets::range::{range_check_u63, range_check_u64};
use crate::gadgets::smt::{is_zero_digest, select_hash, zero_digest, MerklePathTarget};
use crate::{C, D, F};

use super::policy::{header as policy_header, HeaderTargets, PayeeRun, PolicyCarryTargets};
use super::shares::{CarryTargets, ItemTargets, Run, SharesSlot, SharesSlotTargets};
use super::witness::{GroupedWitness, PassportPart};
use super::{GroupedParts, GroupedStatement, GROUPED_VERSION, RUN_ITEMS};
use crate::gadgets::allow::RUN_PAYEES;

struct SubTargets {
    open: BoolTarget,
    more: BoolTarget,
    slot: Target,
    fields: StreamFieldsTarget,
    old_leaf: HashOutTarget,
    path: Vec<HashOutTarget>,
    /// The run's items, in the shape with shares runs.
    run: Option<Vec<ItemTargets>>,
    /// The run's payees, in the full shape.
    payees: Option<[Target; RUN_PAYEES]>,
}

struct PassportTargets {
    has: BoolTarget,
    owner: Target,
    revoked: BoolTarget,
    window_id: Target,
    spent: Target,
    policy_digest: HashOutTarget,
    /// The passport before the batch, opened to read the policy it had (zeros for an account
    /// without).
    before: OpenedPassport,
}

/// A passport's fields as its digest hashes them, constrained by nothing but that digest
/// (SPEC 20.2): the passport an account had before the batch.
struct OpenedPassport {
    owner: Target,
    policy_digest: HashOutTarget,
    revoked: Target,
    window_id: Target,
    spent: Target,
}

impl OpenedPassport {
    fn new(b: &mut CircuitBuilder<F, D>) -> OpenedPassport {
        OpenedPassport {
            owner: b.add_virtual_target(),
            policy_digest: b.add_virtual_hash(),
            revoked: b.add_virtual_target(),
            window_id: b.add_virtual_target(),
            spent: b.add_virtual_target(),
        }
    }

    /// Sets the fields of `p`, zeros for `None`.
    fn set(&self, pw: &mut PartialWitness<F>, p: Option<PassportPart>) -> anyhow::Result<()> {
        let p = p.unwrap_or_default();
        let u = F::from_canonical_u64;
        pw.set_target(self.owner, u(u64::from(p.owner)))?;
        pw.set_hash_target(self.policy_digest, p.policy_digest.into())?;
        pw.set_target(self.revoked, F::from_bool(p.revoked))?;
        pw.set_target(self.window_id, u(p.window_id))?;
        pw.set_target(self.spent, u(p.spent))?;
        Ok(())
    }
}

struct LanesTargets {
    has: BoolTarget,
    seqs: [Target; 7],
}

struct SlotTargets {
    used: BoolTarget,
    cont: BoolTarget,
    is_new: BoolTarget,
    has_streams: BoolTarget,
    index: Target,
    key: [Target; 5],
    balance_before: Target,
    nonce_before: Target,
    balance: Target,
    nonce: Target,
    streams_root: HashOutTarget,
    parts: [HashOutTarget; 3],
    /// The passport and lanes parts, in a circuit shape that has them.
    agent: Option<(PassportTargets, LanesTargets)>,
    /// The shares record's declaration, in the shape with shares runs.
    shares: Option<SharesSlotTargets>,
    /// A policy body's header, in a chunk's first slot of the full shape.
    policy: Option<HeaderTargets>,
    subs: Vec<SubTargets>,
    path: MerklePathTarget,
}

pub(super) struct Targets {
    start: StartTargets,
    more_in: BoolTarget,
    next_slot_in: Target,
    /// The allow-list in progress before the chunk (the full shape).
    policy_in: Option<PolicyCarryTargets>,
    /// The shares record in progress before the chunk (shape with shares runs).
    shares_in: Option<CarryTargets>,
    slots: Vec<SlotTargets>,
}

/// A slot's passport and lanes parts (a circuit shape with agent parts): their targets, their
/// record bytes, whether each is present, and the part digests after the slot.
struct AgentParts {
    passport: PassportTargets,
    lanes: LanesTargets,
    passport_bytes: Vec<Target>,
    lanes_bytes: Vec<Target>,
    with_passport: BoolTarget,
    with_lanes: BoolTarget,
    passport_after: HashOutTarget,
    lanes_after: HashOutTarget,
}

impl AgentParts {
    fn define(
        b: &mut CircuitBuilder<F, D>,
        noncont: BoolTarget,
        index_bytes: &[Target],
        parts: &[HashOutTarget; 3],
        has_policy: Target,
    ) -> AgentParts {
        let zero = b.zero();
        let empty = zero_digest(b);
        // A passport record up to its policy body: agent (the group's index), owner, revoked,
        // window_id, spent, the policy digest, has_policy (58 bytes; `has_policy` is a
        // constant 0 outside a chunk's first slot).
        let passport = PassportTargets {
            has: b.add_virtual_bool_target_safe(),
            owner: b.add_virtual_target(),
            revoked: b.add_virtual_bool_target_safe(),
            window_id: b.add_virtual_target(),
            spent: b.add_virtual_target(),
            policy_digest: b.add_virtual_hash(),
            before: OpenedPassport::new(b),
        };
        let mut passport_bytes = index_bytes.to_vec();
        let owner_bits = b.split_le(passport.owner, 32);
        passport_bytes.extend(le_bytes(b, &owner_bits));
        passport_bytes.push(passport.revoked.target);
        for x in [passport.window_id, passport.spent] {
            let bits = range_check_u63(b, x).bits64(b);
            passport_bytes.extend(le_bytes(b, &bits));
        }
        for &e in &passport.policy_digest.elements {
            let bits = range_check_u64(b, e);
            passport_bytes.extend(le_bytes(b, &bits));
        }
        passport_bytes.push(has_policy);
        let record_digest = passport_digest(
            b,
            passport.owner,
            passport.policy_digest,
            passport.revoked.target,
            passport.window_id,
            passport.spent,
        );
        let with_passport = b.and(noncont, passport.has);

        // A record whose policy is not the one before (a new agent's, or a changed one) must
        // carry its body (`has_policy`), so that the batch publishes every policy it sets
        // (SPEC 10.4): the old passport part (a hash, or ZERO without a passport) is opened
        // to its policy digest.
        let old = &passport.before;
        let before_digest = passport_digest(
            b,
            old.owner,
            old.policy_digest,
            old.revoked,
            old.window_id,
            old.spent,
        );
        let none_before = is_zero_digest(b, parts[1]);
        let had = b.not(none_before);
        let opened = b.and(with_passport, had);
        connect_if(
            b,
            opened.target,
            &before_digest.elements,
            &parts[1].elements,
        );
        let mut kept = had;
        let new_policy = passport.policy_digest.elements;
        for (&x, &y) in old.policy_digest.elements.iter().zip(&new_policy) {
            let e = b.is_equal(x, y);
            kept = b.and(kept, e);
        }
        // with_passport x (1 - kept) x (1 - has_policy) = 0.
        let set = b.arithmetic(
            F::NEG_ONE,
            F::ONE,
            with_passport.target,
            kept.target,
            with_passport.target,
        );
        let unpublished = b.arithmetic(F::NEG_ONE, F::ONE, set, has_policy, set);
        b.assert_zero(unpublished);

        // A lanes record: account (the group's index), s_1 .. s_7 below 2^60 (60 bytes).
        let lanes = LanesTargets {
            has: b.add_virtual_bool_target_safe(),
            seqs: core::array::from_fn(|_| b.add_virtual_target()),
        };
        let mut lanes_bytes = index_bytes.to_vec();
        let mut lanes_sum = zero;
        for &x in &lanes.seqs {
            let mut bits = b.split_le(x, 60);
            bits.extend([b._false(); 4]);
            lanes_bytes.extend(le_bytes(b, &bits));
            lanes_sum = b.add(lanes_sum, x);
        }
        let mut lanes_inputs = lanes.seqs.to_vec();
        lanes_inputs.push(b.constant(F::from_canonical_u64(state::lanes::TAG_LANES)));
        let lanes_hash =
            b.hash_n_to_hash_no_pad::<plonky2::hash::poseidon::PoseidonHash>(lanes_inputs);
        // Seven values below 2^60 sum to 0 only if all are 0 (no wrap below p).
        let unused_lanes = b.is_equal(lanes_sum, zero);
        let lanes_digest = select_hash(b, unused_lanes, empty, lanes_hash);
        let with_lanes = b.and(noncont, lanes.has);

        let passport_after = select_hash(b, with_passport, record_digest, parts[1]);
        let lanes_after = select_hash(b, with_lanes, lanes_digest, parts[2]);
        AgentParts {
            passport,
            lanes,
            passport_bytes,
            lanes_bytes,
            with_passport,
            with_lanes,
            passport_after,
            lanes_after,
        }
    }
}

/// `x = y` where `on` (per element).
pub(super) fn connect_if(b: &mut CircuitBuilder<F, D>, on: Target, x: &[Target], y: &[Target]) {
    for (&a, &c) in x.iter().zip(y) {
        let d = b.sub(a, c);
        let p = b.mul(on, d);
        b.assert_zero(p);
    }
}

/// The grouped diff circuit for `cap` slots of `subs` sub-slots.
pub struct GroupedDiffCircuit {
    pub data: CircuitData<F, C, D>,
    targets: Targets,
    pub cap: usize,
    pub subs: usize,
    pub parts: GroupedParts,
}

impl GroupedDiffCircuit {
    /// A circuit of `cap` slots of `subs` sub-slots for the records `parts` names (the agent
    /// parts cost about 870 rows per slot, the shares runs about 150 per sub-slot: a batch
    /// without them uses a shape without).
    pub fn build(cap: usize, subs: usize, parts: GroupedParts) -> GroupedDiffCircuit {
        Self::build_or_load(cap, subs, parts, &CircuitCache::disabled())
            .expect("an uncached, unpinned build cannot be refused")
    }

    /// [`GroupedDiffCircuit::build`] through `cache` (key: [`GROUPED_VERSION`] and the shape).
    pub fn build_or_load(
        cap: usize,
        subs: usize,
        parts: GroupedParts,
        cache: &CircuitCache,
    ) -> anyhow::Result<GroupedDiffCircuit> {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let (targets, _) = Self::define(&mut b, cap, subs, parts);
        let agent_parts = parts.agent_parts();
        let shares = if parts.shares() { "/shares" } else { "" };
        let key = format!(
            "{GROUPED_VERSION}/cap={cap}/subs={subs}/agent_parts={agent_parts}{shares}/config=standard_recursion"
        );
        let spec = CircuitSpec {
            name: "diff-grouped-chunk",
            key: &key,
            num_public_inputs: parts.public_inputs(),
            pinned: None,
        };
        let (data, _) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        Ok(GroupedDiffCircuit {
            data,
            targets,
            cap,
            subs,
            parts,
        })
    }

    /// Adds the constraints; returns the targets and the rows before the slots and after them.
    pub(super) fn define(
        b: &mut CircuitBuilder<F, D>,
        cap: usize,
        subs: usize,
        parts: GroupedParts,
    ) -> (Targets, [usize; 2]) {
        let agent_parts = parts.agent_parts();
        let bodies = parts.policy_bodies();
        let zero = b.zero();
        let one = b.one();
        // Where the chunk starts, as in the version 1 circuit.
        let (start, mut stream) = StartTargets::define(b);
        let (count_before, last_index) = (start.count.count_before, start.count.last_index);
        let (root_in, records_in, lower_in, new_in, started_in) = (
            start.root_in,
            start.records_in,
            start.lower_in,
            start.new_in,
            start.started_in,
        );
        let empty = zero_digest(b);
        let more_in = b.add_virtual_bool_target_safe();
        let next_slot_in = b.add_virtual_target();
        b.range_check(next_slot_in, SLOT_DEPTH + 1);
        let policy_in = bodies.then(|| PolicyCarryTargets::new(b));
        let shares_in = parts.shares().then(|| CarryTargets::new(b));
        let start_rows = b.num_gates();

        let e16 = empty_book(b);
        let mut root = root_in;
        let (mut records, mut lower, mut new_count) = (records_in, lower_in, new_in);
        let (mut started, mut more, mut next_slot) = (started_in, more_in, next_slot_in);
        let mut policy = policy_in;
        let mut carry = shares_in;
        let mut prev_used = b._true();
        let mut slots = Vec::with_capacity(cap);
        for slot_no in 0..cap {
            let used = b.add_virtual_bool_target_safe();
            let p = b.mul(used.target, prev_used.target);
            b.connect(p, used.target);
            prev_used = used;
            // A continuation exactly when the last record announced another, or the group's
            // allow-list or shares record has items left; it is used.
            let cont = b.add_virtual_bool_target_safe();
            let mut either = more;
            if let Some(c) = &policy {
                let pending = c.pending(b);
                either = b.or(either, pending);
            }
            if let Some(c) = &carry {
                let pending = c.pending(b);
                either = b.or(either, pending);
            }
            b.connect(cont.target, either.target);
            let c_unused = b.arithmetic(F::NEG_ONE, F::ONE, cont.target, used.target, cont.target);
            b.assert_zero(c_unused);
            let noncont = BoolTarget::new_unsafe(b.sub(used.target, cont.target));
            let is_new_w = b.add_virtual_bool_target_safe();
            let new_nc = b.and(noncont, is_new_w);
            let old_nc = BoolTarget::new_unsafe(b.sub(noncont.target, new_nc.target));
            let late = b.mul(old_nc.target, started.target);
            b.assert_zero(late);

            let index = b.add_virtual_target();
            let index_bits = b.split_le(index, 32);
            // An existing account's group: lower <= index < count_before.
            in_order(b, old_nc, index, lower, last_index);
            // A new account's: the next new index.
            let next_new = b.add(count_before, new_count);
            connect_if(b, new_nc.target, &[index], &[next_new]);
            // A continuation: the previous slot's index.
            let prev_new = b.sub(next_new, one);
            let prev_old = b.sub(lower, one);
            let prev_index = b.select(started, prev_new, prev_old);
            connect_if(b, cont.target, &[index], &[prev_index]);
            let next_lower = b.add(index, one);
            lower = b.select(old_nc, next_lower, lower);
            new_count = b.add(new_count, new_nc.target);
            started = b.or(started, new_nc);
            records = b.add(records, noncont.target);

            let key: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
            let balance_before = b.add_virtual_target();
            let nonce_before = b.add_virtual_target();
            let balance = b.add_virtual_target();
            let balance_u = range_check_u63(b, balance);
            let nonce = b.add_virtual_target();
            let nonce_u = range_check_u63(b, nonce);
            connect_if(
                b,
                cont.target,
                &[balance, nonce],
                &[balance_before, nonce_before],
            );
            let streams_root = b.add_virtual_hash();
            let parts: [HashOutTarget; 3] = core::array::from_fn(|_| b.add_virtual_hash());
            // A new account starts with an empty book and profile.
            connect_if(b, new_nc.target, &streams_root.elements, &e16.elements);
            for part in &parts {
                connect_if(b, new_nc.target, &part.elements, &empty.elements);
            }
            let profile = profile_digest(b, &parts);
            let ext_before = ext_digest(b, streams_root, profile);
            let index_bytes = le_bytes(b, &index_bits);

            // A policy body only in a chunk's first slot (module docs of `policy`).
            let header = (bodies && slot_no == 0).then(|| HeaderTargets::new(b));
            let has_policy = header.as_ref().map_or(zero, |h| h.has.target);
            let agent = agent_parts
                .then(|| AgentParts::define(b, noncont, &index_bytes, &parts, has_policy));
            let shares = carry.map(|c| SharesSlot::define(b, noncont, cont, &c));
            let shares_after = match &shares {
                Some(sh) => select_hash(b, sh.with, sh.targets.digest, parts[0]),
                None => parts[0],
            };
            let profile_after = match &agent {
                Some(a) => profile_digest(b, &[shares_after, a.passport_after, a.lanes_after]),
                None => profile,
            };

            // The record and its parts byte.
            let has_streams = b.add_virtual_bool_target_safe();
            let parts_byte = match &agent {
                Some(a) => {
                    let p = b.mul_const_add(F::TWO, a.passport.has.target, has_streams.target);
                    b.mul_const_add(F::from_canonical_u64(4), a.lanes.has.target, p)
                }
                None => has_streams.target,
            };
            let parts_byte = match &shares {
                Some(sh) => {
                    b.mul_const_add(F::from_canonical_u64(8), sh.targets.has.target, parts_byte)
                }
                None => parts_byte,
            };
            let mut bytes = record_bytes(b, &index_bits, &balance_u, &nonce_u);
            let mut key_bytes = Vec::with_capacity(40);
            for &k in &key {
                let bits = range_check_u64(b, k);
                key_bytes.extend(le_bytes(b, &bits));
            }
            for (j, &kb) in key_bytes.iter().enumerate() {
                let other = if j == 0 { parts_byte } else { zero };
                bytes.push(b.select(is_new_w, kb, other));
            }
            let last_byte = b.mul(is_new_w.target, parts_byte);
            bytes.push(last_byte);
            stream.append_var(b, &bytes, &[(21, old_nc), (61, new_nc)]);
            if let Some(a) = &agent {
                stream.append(b, &a.lanes_bytes, a.with_lanes);
                stream.append(b, &a.passport_bytes, a.with_passport);
            }
            if let (Some(h), Some(a), Some(c)) = (&header, &agent, policy.as_mut()) {
                policy_header(
                    b,
                    h,
                    a.with_passport,
                    a.passport.policy_digest,
                    &mut stream,
                    c,
                );
            }

            // The sub-slots: a group's allow-list first (while payees are left), then its
            // shares items (shape with shares runs), then its stream records. `pending`: a
            // stream record of the group is still to come; a group's slots strictly increase
            // (`next_slot` starts at 0 in its first slot).
            let first_used = b.mul(noncont.target, has_streams.target);
            let mut pending = BoolTarget::new_unsafe(b.add(first_used, more.target));
            next_slot = b.arithmetic(F::NEG_ONE, F::ONE, noncont.target, next_slot, next_slot);
            let mut slot_carry = shares.as_ref().map(|sh| sh.carry);
            let mut book = streams_root;
            let mut sub_targets = Vec::with_capacity(subs);
            for _ in 0..subs {
                let payees = policy.as_mut().map(|c| PayeeRun::define(b, c));
                let free = match &payees {
                    Some(r) => b.not(r.is_run),
                    None => b._true(),
                };
                let run = slot_carry.as_mut().map(|c| Run::define(b, c, index, free));
                let busy = [
                    payees.as_ref().map(|r| r.is_run),
                    run.as_ref().map(|r| r.is_run),
                ]
                .into_iter()
                .flatten()
                .fold(zero, |acc, r| b.add(acc, r.target));
                let record = b.arithmetic(F::NEG_ONE, F::ONE, busy, pending.target, pending.target);
                let record = BoolTarget::new_unsafe(record);
                let open = b.add_virtual_bool_target_safe();
                let more_w = b.add_virtual_bool_target_safe();
                let slot = b.add_virtual_target();
                let slot_bits = b.split_le(slot, SLOT_DEPTH);
                let gap = b.sub(slot, next_slot);
                let gap = b.mul(record.target, gap);
                b.range_check(gap, SLOT_DEPTH);
                let after = b.add(slot, one);
                next_slot = b.select(record, after, next_slot);

                let fields = StreamFieldsTarget::new(b);
                let field_bytes = fields.bytes(b);
                let open_leaf = fields.leaf(b);
                let new_leaf = select_hash(b, open, open_leaf, empty);
                let old_leaf = b.add_virtual_hash();
                let path: Vec<HashOutTarget> =
                    (0..SLOT_DEPTH).map(|_| b.add_virtual_hash()).collect();
                let r_old = book_root(b, old_leaf, &slot_bits, &path);
                let r_new = book_root(b, new_leaf, &slot_bits, &path);
                connect_if(b, record.target, &r_old.elements, &book.elements);
                book = select_hash(b, record, r_new, book);

                // slot ‖ tag [‖ fields]: 3 or 71 bytes, in two appends (at most 64 each); or a
                // run's payees (4 m bytes, at most 64), or a shares run's 6 m bytes (66 for
                // eleven items: 64 and 2).
                let tag = b.mul_const_add(F::TWO, more_w.target, open.target);
                let mut piece = le_bytes(b, &slot_bits);
                piece.push(tag);
                piece.extend_from_slice(&field_bytes[..61]);
                let shut = b.not(open);
                let closed = b.and(record, shut);
                let opened = b.and(record, open);
                let mut head = piece[..64].to_vec();
                let mut lengths = vec![(3, closed)];
                let mut long = opened.target;
                for (is_run, run_bytes, short, full) in [
                    run.as_ref().map(|r| (r.is_run, &r.bytes, &r.short, r.full)),
                    payees
                        .as_ref()
                        .map(|r| (r.is_run, &r.bytes, &r.short, r.full)),
                ]
                .into_iter()
                .flatten()
                {
                    for (h, &x) in head.iter_mut().zip(run_bytes.iter()) {
                        *h = b.select(is_run, x, *h);
                    }
                    lengths.extend(short.iter().copied());
                    long = b.add(long, full.target);
                }
                lengths.push((64, BoolTarget::new_unsafe(long)));
                stream.append_var(b, &head, &lengths);
                match &run {
                    None => stream.append(b, &field_bytes[61..], opened),
                    Some(run) => {
                        let tail: Vec<Target> = (0..7)
                            .map(|i| match run.bytes.get(64 + i) {
                                Some(&x) => b.select(run.is_run, x, field_bytes[61 + i]),
                                None => field_bytes[61 + i],
                            })
                            .collect();
                        stream.append_var(b, &tail, &[(7, opened), (2, run.full)]);
                    }
                }
                // A record read: the next is pending iff it said "more".
                let next = b.mul_sub(record.target, more_w.target, record.target);
                pending = BoolTarget::new_unsafe(b.add(pending.target, next));
                sub_targets.push(SubTargets {
                    open,
                    more: more_w,
                    slot,
                    fields,
                    old_leaf,
                    path,
                    run: run.map(|r| r.items),
                    payees: payees.map(|r| r.payees),
                });
            }
            more = pending;
            if slot_carry.is_some() {
                carry = slot_carry;
            }

            // The leaf: old (empty for a new account's group) to new.
            let ext_after = ext_digest(b, book, profile_after);
            let old_full = account_leaf(b, &key, balance_before, nonce_before, &ext_before);
            let old_leaf = select_hash(b, new_nc, empty, old_full);
            let new_leaf = account_leaf(b, &key, balance, nonce, &ext_after);
            let path = MerklePathTarget::new(b);
            root = gated_update(b, used, root, old_leaf, new_leaf, &index_bits, &path);
            slots.push(SlotTargets {
                used,
                cont,
                is_new: is_new_w,
                has_streams,
                index,
                key,
                balance_before,
                nonce_before,
                balance,
                nonce,
                streams_root,
                parts,
                agent: agent.map(|a| (a.passport, a.lanes)),
                shares: shares.map(|sh| sh.targets),
                policy: header,
                subs: sub_targets,
                path,
            });
        }
        let slot_rows = b.num_gates();

        let stream_out = stream.export(b);
        DiffEnds {
            start: &start,
            root_out: root,
            stream_out: &stream_out,
            records_out: records,
            lower_out: lower,
            new_out: new_count,
            started_out: started,
        }
        .register(b);
        b.register_public_input(more_in.target);
        b.register_public_input(more.target);
        b.register_public_input(next_slot_in);
        b.register_public_input(next_slot);
        if let (Some(c_in), Some(c_out)) = (policy_in, policy) {
            b.register_public_inputs(&c_in.to_vec());
            b.register_public_inputs(&c_out.to_vec());
        }
        if let (Some(c_in), Some(c_out)) = (shares_in, carry) {
            b.register_public_inputs(&c_in.to_vec());
            b.register_public_inputs(&c_out.to_vec());
        }
        (
            Targets {
                start,
                more_in,
                next_slot_in,
                policy_in,
                shares_in,
                slots,
            },
            [start_rows, slot_rows],
        )
    }

    /// Proves `w` for `statement` (the public inputs are checked against it).
    pub fn prove(
        &self,
        w: &GroupedWitness,
        statement: &GroupedStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let proof = self.data.prove(self.partial_witness(w)?)?;
        ensure!(
            proof.public_inputs == statement.to_fields(),
            "the proof states another diff than the one expected"
        );
        Ok(proof)
    }

    /// The circuit's witness for `w`, whatever it states (an attack test proves it directly:
    /// if any proof exists, the circuit accepted the edited witness).
    pub fn partial_witness(&self, w: &GroupedWitness) -> anyhow::Result<PartialWitness<F>> {
        ensure!(
            w.slots.len() == self.cap && w.slots.iter().all(|s| s.subs.len() == self.subs),
            "the witness's shape is not the circuit's ({} slots of {})",
            self.cap,
            self.subs
        );
        let t = &self.targets;
        let mut pw = PartialWitness::new();
        let u = F::from_noncanonical_u64;
        let set_key = |pw: &mut PartialWitness<F>, ts: &[Target; 5], k: &Key| {
            for (t, v) in ts.iter().zip(k) {
                pw.set_target(*t, u(*v))?;
            }
            anyhow::Ok(())
        };
        t.start.set(&mut pw, &w.start)?;
        pw.set_bool_target(t.more_in, w.more_in)?;
        pw.set_target(t.next_slot_in, u(u64::from(w.next_slot_in)))?;
        match &t.policy_in {
            Some(c) => c.set(&mut pw, &w.policy_in)?,
            None => ensure!(
                w.policy_in == Default::default(),
                "an allow-list in progress, and this circuit shape has no policy bodies"
            ),
        }
        match &t.shares_in {
            Some(c) => c.set(&mut pw, &w.shares_in)?,
            None => ensure!(
                w.shares_in == Default::default(),
                "a shares record in progress, and this circuit shape has no shares runs"
            ),
        }
        for (ts, s) in t.slots.iter().zip(&w.slots) {
            pw.set_bool_target(ts.used, s.used)?;
            pw.set_bool_target(ts.cont, s.cont)?;
            pw.set_bool_target(ts.is_new, s.is_new)?;
            pw.set_bool_target(ts.has_streams, s.has_streams)?;
            pw.set_target(ts.index, u(u64::from(s.index)))?;
            set_key(&mut pw, &ts.key, &s.key)?;
            pw.set_target(ts.balance_before, u(s.balance_before))?;
            pw.set_target(ts.nonce_before, u(s.nonce_before))?;
            pw.set_target(ts.balance, u(s.balance))?;
            pw.set_target(ts.nonce, u(s.nonce))?;
            pw.set_hash_target(ts.streams_root, s.streams_root.into())?;
            for (t, d) in ts.parts.iter().zip(&s.parts) {
                pw.set_hash_target(*t, (*d).into())?;
            }
            match &ts.agent {
                Some((passport, lanes)) => {
                    let p = s.passport.unwrap_or_default();
                    pw.set_bool_target(passport.has, s.passport.is_some())?;
                    pw.set_target(passport.owner, u(u64::from(p.owner)))?;
                    pw.set_bool_target(passport.revoked, p.revoked)?;
                    pw.set_target(passport.window_id, u(p.window_id))?;
                    pw.set_target(passport.spent, u(p.spent))?;
                    pw.set_hash_target(passport.policy_digest, p.policy_digest.into())?;
                    passport.before.set(&mut pw, s.passport_before)?;
                    pw.set_bool_target(lanes.has, s.lanes.is_some())?;
                    for (t, v) in lanes.seqs.iter().zip(s.lanes.unwrap_or([0; 7])) {
                        pw.set_target(*t, u(v))?;
                    }
                }
                None => ensure!(
                    s.passport.is_none() && s.lanes.is_none(),
                    "account {}: a passport or lanes record, and this circuit shape has no \
                     agent parts",
                    s.index
                ),
            }
            match &ts.shares {
                Some(sh) => {
                    pw.set_bool_target(sh.has, s.shares.is_some())?;
                    let (n, digest) = s.shares.map_or((0, Digest::ZERO), |x| (x.n, x.digest));
                    pw.set_target(sh.n, u(u64::from(n)))?;
                    pw.set_hash_target(sh.digest, digest.into())?;
                }
                None => ensure!(
                    s.shares.is_none(),
                    "account {}: a shares record, and this circuit shape has no shares runs",
                    s.index
                ),
            }
            match &ts.policy {
                Some(h) => h.set(&mut pw, s.policy.as_ref())?,
                None => ensure!(
                    s.policy.is_none(),
                    "account {}: a policy body outside a chunk's first slot, or in a circuit \
                     shape without policy bodies",
                    s.index
                ),
            }
            ts.path.set(&mut pw, &s.siblings)?;
            for (st, sub) in ts.subs.iter().zip(&s.subs) {
                match &st.payees {
                    Some(payees) => {
                        ensure!(
                            sub.payees.len() <= RUN_PAYEES,
                            "a run reads at most {RUN_PAYEES} payees"
                        );
                        for (e, t) in payees.iter().enumerate() {
                            let p = sub.payees.get(e).copied().unwrap_or(0);
                            pw.set_target(*t, u(u64::from(p)))?;
                        }
                    }
                    None => ensure!(
                        sub.payees.is_empty(),
                        "payees, and this circuit shape has no policy bodies"
                    ),
                }
                match &st.run {
                    Some(items) => {
                        ensure!(
                            sub.run.len() <= RUN_ITEMS,
                            "a run reads at most {RUN_ITEMS} items"
                        );
                        for (e, it) in items.iter().enumerate() {
                            let (x, y) = sub.run.get(e).copied().unwrap_or((0, 0));
                            pw.set_target(it.first, u(u64::from(x)))?;
                            pw.set_target(it.second, u(u64::from(y)))?;
                        }
                    }
                    None => ensure!(sub.run.is_empty(), "a run, and this circuit shape has none"),
                }
                pw.set_bool_target(st.open, sub.open)?;
                pw.set_bool_target(st.more, sub.more)?;
                pw.set_target(st.slot, u(u64::from(sub.slot)))?;
                st.fields.set_elements(&mut pw, &sub.fields.map(u))?;
                pw.set_hash_target(st.old_leaf, sub.old_leaf.into())?;
                ensure!(sub.path.len() == SLOT_DEPTH, "a book path has 16 siblings");
                for (t, d) in st.path.iter().zip(&sub.path) {
                    pw.set_hash_target(*t, (*d).into())?;
                }
            }
        }
        Ok(pw)
    }

    pub fn verify(&self, proof: ProofWithPublicInputs<F, C, D>) -> anyhow::Result<()> {
        self.data.verify(proof)
    }
}
