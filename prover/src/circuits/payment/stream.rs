//! The stream kinds of a payment slot (SPEC 13.3.1, 18.4, 18.5): open, settle and close, built
//! only into the payment circuit of a leaf that holds them ([`super::PaymentCircuit::build_with`]),
//! so that a leaf of plain payments pays nothing for them.
//!
//! A stream lives in its payer's book, a depth-16 tree whose root is committed, with the
//! account's profile, in the payer's `ext` (SPEC 18.3). The book's owner is access A for an
//! open (the payer signs) and access B for a settlement or a close (the payer, whoever signs).
//! The branch opens the owner's old `ext` (witnessed book root and profile, `ext_digest`),
//! proves the slot's old leaf in the book (16 siblings), writes the new leaf (the opened
//! stream, the settled one, or `ZERO` for a close) on the same path, and hands the slot the
//! owner's new `ext`; the slot writes it into the owner's new leaf. So:
//!
//! * **open**: the slot was empty (its old leaf is `ZERO` under the owner's book root); the new
//!   leaf is `(payee = B, price, max_ticks, expiry, opened_at = the nonce, settled = 0, head =
//!   anchor)`; `price > 0`, `1 <= max_ticks <= 2^24`, the slot's `amount` is the escrow `price
//!   x max_ticks < 2^63` (debited with the fee like a transfer's amount), `expiry > T`, the
//!   payee B exists and is not A.
//! * **settle** (signed by the payee A): the old leaf is the stream whose fields are witnessed,
//!   its payee is A, `T <= expiry + SETTLE_WINDOW_SECS`, `settled < to <= max_ticks`, `to -
//!   settled <= 2^16`; the new leaf has `settled = to`, `head = t_to`; A is credited `price x
//!   (to - settled)`; the record `(id, to, settled, t_to, head)` is folded into `walks` for the
//!   tick-walk tree, which proves `t_to` walks down to `head` (SPEC 18.7). `from` in the
//!   message and the op is the stream's `settled`: a stale settlement has no witness.
//! * **settle by path** (tag 18, SPEC 18.8; signed by the payee A): the rules of a settlement
//!   but the length (`to - settled` is unbounded below `max_ticks`); tick `to`'s leaf
//!   `hash_no_pad(id0, opened_at, to, TAG_TICK_LEAF, s_to)` with the witnessed 24 siblings,
//!   at index `to - 1`, hashes up to the stream's head (the tick tree's root), which the new
//!   leaf keeps; no walk record.
//! * **close** (signed by A, the payee, or the payer B itself after `expiry + window`): the new
//!   leaf is `ZERO`; B is credited the rest of the escrow, `price x (max_ticks - settled)`.
//!
//! Products `x * m` of an amount (below 2^63, limbs `lo < 2^32`, `hi < 2^31`) by a count `m`
//! below 2^25 are computed as `lo * m + 2^32 * (hi * m)` with `hi * m` range-checked to 31
//! bits: no step wraps the field, and the result is then range-checked to 63 bits, so it is the
//! integer product (the `ESCROW_OVERFLOW` rule) or there is no witness.
//!
//! **Cost** (`circuits::payment` tests print it): two book paths (32 Poseidon rows), two
//! stream leaves and two `ext` digests (four), the three products and comparisons, the three
//! messages and ops sharing the slot's sponges (one more permutation each for the longest);
//! the tick path of a settlement by path, 25 more (its leaf and 24 levels), paid by every slot
//! of a leaf with the stream kinds.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::pubdata::op_len;
use state::stream::tick_tree::TAG_TICK_LEAF;
use state::stream::{MAX_SETTLE_TICKS, SETTLE_WINDOW_SECS, SLOT_DEPTH, TICK_TREE_DEPTH};
use state::tx::TxKind;

use super::slot::{select4, SlotView};
use crate::gadgets::agent::{book_root, ext_digest, StreamFieldsTarget};
use crate::gadgets::pubdata::OpChunks;
use crate::gadgets::range::{
    add_u63_overflow, constant_u63, is_le_u63, range_check_u63, range_check_u64, scale_u63,
    split_at, U63Target,
};
use crate::gadgets::smt::{hash_level, select_hash, zero_digest};
use crate::witness::StreamWitness;
use crate::{D, F};

/// The stream rules the circuit names when a witness breaks one ([`super::PaymentCircuit::refused_by`]):
/// each is a product `flag x bad` asserted zero, so that plonky2's conflict names its wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamRule {
    /// The book owner's `ext` does not open to the witnessed book root and profile.
    OwnerExt,
    /// The slot's old leaf is not under the owner's book root (for an open: the slot is taken).
    BookPath,
    /// The owner of the changed book (B) of a settlement or a close does not exist.
    UnknownOwner,
    ZeroPrice,
    /// `max_ticks` is 0 or above 2^24.
    BadTickCount,
    /// The open's `amount` is not `price x max_ticks`.
    EscrowMismatch,
    /// A product of an amount by a count reaches 2^63.
    AmountOverflow,
    ExpiryPassed,
    /// The payee of an open does not exist.
    UnknownPayee,
    SelfStream,
    NotPayee,
    SettleWindowOver,
    TickNotNewer,
    SettleTooLong,
    TickBeyondMax,
    /// A close by someone other than the payee, or by the payer within the payee's window.
    CloseNotAllowed,
    /// A settlement by path whose tick does not open the stream's tick tree (SPEC 18.8).
    TickPath,
}

impl StreamRule {
    /// A stable name: the native reason code where the rule is one of SPEC 18.4.
    pub fn code(self) -> &'static str {
        match self {
            StreamRule::OwnerExt => "OWNER_EXT",
            StreamRule::BookPath => "BOOK_PATH",
            StreamRule::UnknownOwner => "UNKNOWN_ACCOUNT",
            StreamRule::ZeroPrice => "ZERO_PRICE",
            StreamRule::BadTickCount => "BAD_TICK_COUNT",
            StreamRule::EscrowMismatch => "ESCROW_MISMATCH",
            StreamRule::AmountOverflow => "ESCROW_OVERFLOW",
            StreamRule::ExpiryPassed => "STREAM_EXPIRY_PASSED",
            StreamRule::UnknownPayee => "UNKNOWN_ACCOUNT",
            StreamRule::SelfStream => "SELF_STREAM",
            StreamRule::NotPayee => "NOT_PAYEE",
            StreamRule::SettleWindowOver => "SETTLE_WINDOW_OVER",
            StreamRule::TickNotNewer => "TICK_NOT_NEWER",
            StreamRule::SettleTooLong => "SETTLE_TOO_LONG",
            StreamRule::TickBeyondMax => "TICK_BEYOND_MAX",
            StreamRule::CloseNotAllowed => "CLOSE_NOT_ALLOWED",
            StreamRule::TickPath => "TICK_MISMATCH",
        }
    }
}

/// The witness targets of a slot's stream branch.
#[derive(Clone, Debug)]
pub(super) struct StreamTargets {
    pub(super) open: BoolTarget,
    pub(super) settle: BoolTarget,
    pub(super) close: BoolTarget,
    pub(super) settle_path: BoolTarget,
    slot: Target,
    path: [HashOutTarget; SLOT_DEPTH],
    /// The book owner's book root and profile before the slot.
    streams_root: HashOutTarget,
    profile: HashOutTarget,
    /// The stream in the slot before (settle, close).
    old: StreamFieldsTarget,
    /// Open: the terms.
    price: Target,
    max_ticks: Target,
    expiry: Target,
    anchor: HashOutTarget,
    /// Settle: the tick settled to and its value (by path: its secret).
    to: Target,
    t_to: HashOutTarget,
    /// Settle by path: the tick's siblings in the tick tree.
    tick_path: [HashOutTarget; TICK_TREE_DEPTH],
}

/// What the branch hands back to the slot.
pub(super) struct StreamEffects {
    /// Open, settle or close.
    pub any: BoolTarget,
    /// The new `ext` of A and B (their old one unless they own the changed book).
    pub a_ext: [Target; 4],
    pub b_ext: [Target; 4],
    /// The book's root after the slot (A's after an open).
    pub a_streams_after: HashOutTarget,
    /// Settle: the payout to A; close: the refund to B (zero otherwise).
    pub a_credit: U63Target,
    pub b_credit: U63Target,
    /// The three messages (domain, tag, fields), for the slot's message sponge.
    pub messages: Vec<(BoolTarget, Vec<Target>)>,
    /// The three ops, for the slot's pubdata sponge.
    pub ops: Vec<OpChunks>,
    /// `walks` after the slot.
    pub walks: HashOutTarget,
    /// The rules' targets (their wires name a broken one).
    pub rules: Vec<(Target, StreamRule)>,
}

type Rules = super::rules::Rules<StreamRule>;

/// Whether `x < y` for values below 2^32 (one 33-bit split).
fn less_u32(b: &mut CircuitBuilder<F, D>, x: Target, y: Target) -> BoolTarget {
    // y - x - 1 + 2^32 is in [0, 2^33): its bit 32 is set iff x < y.
    let d = b.sub(y, x);
    let bias = b.constant(F::from_canonical_u64((1 << 32) - 1));
    let d = b.add(d, bias);
    let (low, high) = split_at(b, d, 32);
    b.range_check(low, 32);
    let high = BoolTarget::new_unsafe(high);
    b.assert_bool(high);
    high
}

/// `x * m` for an amount `x` and a count `m < 2^25`, required below `2^63` when `flag`
/// (module docs; the rule `AmountOverflow`). Without `flag` the result is meaningless.
fn mul_amount(
    b: &mut CircuitBuilder<F, D>,
    rules: &mut Rules,
    flag: BoolTarget,
    x: &U63Target,
    m: Target,
) -> U63Target {
    let lo = b.mul(x.lo, m);
    let hi = b.mul(x.hi, m);
    let hi = rules.below(b, flag, hi, 31, StreamRule::AmountOverflow);
    let two32 = b.constant(F::from_canonical_u64(1 << 32));
    // lo * m < 2^57 and 2^32 hi < 2^63: no wrap; the sum is below 2^63 iff its bit 63 is 0.
    let v = b.mul_add(hi, two32, lo);
    let v = rules.below(b, flag, v, 63, StreamRule::AmountOverflow);
    range_check_u63(b, v)
}

/// The 64 canonical bits of each element of a digest.
fn digest_bits(b: &mut CircuitBuilder<F, D>, d: HashOutTarget) -> Vec<BoolTarget> {
    d.elements
        .iter()
        .flat_map(|&e| range_check_u64(b, e))
        .collect()
}

/// Adds the branch's constraints; see the module docs.
pub(super) fn build(b: &mut CircuitBuilder<F, D>, i: &SlotView) -> (StreamTargets, StreamEffects) {
    let zero = b.zero();
    let one = b.one();
    let t = StreamTargets {
        open: b.add_virtual_bool_target_safe(),
        settle: b.add_virtual_bool_target_safe(),
        close: b.add_virtual_bool_target_safe(),
        settle_path: b.add_virtual_bool_target_safe(),
        slot: b.add_virtual_target(),
        path: std::array::from_fn(|_| b.add_virtual_hash()),
        streams_root: b.add_virtual_hash(),
        profile: b.add_virtual_hash(),
        old: StreamFieldsTarget::new(b),
        price: b.add_virtual_target(),
        max_ticks: b.add_virtual_target(),
        expiry: b.add_virtual_target(),
        anchor: b.add_virtual_hash(),
        to: b.add_virtual_target(),
        t_to: b.add_virtual_hash(),
        tick_path: std::array::from_fn(|_| b.add_virtual_hash()),
    };
    let (open, settle, close, settle_path) = (t.open, t.settle, t.close, t.settle_path);
    let mut rules = Rules::default();
    // Either settlement (the slot's kinds are one-hot: `any` is asserted a bit by the slot).
    let settling = BoolTarget::new_unsafe(b.add(settle.target, settle_path.target));
    let any = b.add(open.target, settling.target);
    let any = BoolTarget::new_unsafe(b.add(any, close.target));
    let on_b = BoolTarget::new_unsafe(b.add(settling.target, close.target));
    let slot_bits = b.split_le(t.slot, SLOT_DEPTH);
    let ts = i.timestamp;
    // The book's owner B of a settlement or a close exists (its leaf holds the `ext` opened
    // below; an empty leaf's witnessed fields are not in the tree).
    rules.holds(b, on_b, i.b_exists, StreamRule::UnknownOwner);

    // The owner's book before: its `ext` opens to (root, profile), the root holds the slot's
    // old leaf (ZERO for an open: the slot was free).
    let owner_ext = select4(b, open, i.a_ext, i.b_ext);
    let ext_old = ext_digest(b, t.streams_root, t.profile);
    for (x, y) in ext_old.elements.iter().zip(owner_ext) {
        rules.eq(b, any, *x, y, StreamRule::OwnerExt);
    }
    let zero_leaf = zero_digest(b);
    let old_hash = t.old.leaf(b);
    let old_leaf = select_hash(b, open, zero_leaf, old_hash);
    let root_before = book_root(b, old_leaf, &slot_bits, &t.path);
    for (x, y) in root_before.elements.iter().zip(t.streams_root.elements) {
        rules.eq(b, any, *x, y, StreamRule::BookPath);
    }

    // The old stream's fields (committed by the open that wrote them; range-checked again
    // here, since the comparisons need their limbs).
    let old_price = range_check_u63(b, t.old.price);
    let old_expiry = range_check_u63(b, t.old.expiry);
    b.range_check(t.old.max_ticks, 32);
    let from_bits = b.split_le(t.old.settled, 32);
    let window = constant_u63(b, SETTLE_WINDOW_SECS);
    let (window_end, window_overflow) = add_u63_overflow(b, &old_expiry, &window);
    let before_end = is_le_u63(b, ts, &window_end);
    let in_window = b.or(window_overflow, before_end);
    let by_payee = b.is_equal(t.old.payee, i.a_index);

    // Open: the terms.
    let price = range_check_u63(b, t.price);
    let price_zero = b.is_equal(t.price, zero);
    rules.zero(b, open.target, price_zero.target, StreamRule::ZeroPrice);
    // 1 <= max_ticks <= 2^24: max_ticks - 1 is below 2^24 (a zero wraps to p - 1).
    let mt = b.select(open, t.max_ticks, one);
    let mt_less = b.sub(mt, one);
    rules.below(b, open, mt_less, 24, StreamRule::BadTickCount);
    let escrow = mul_amount(b, &mut rules, open, &price, mt);
    rules.eq(b, open, escrow.value, i.amount, StreamRule::EscrowMismatch);
    let expiry = range_check_u63(b, t.expiry);
    let expired = is_le_u63(b, &expiry, ts);
    rules.zero(b, open.target, expired.target, StreamRule::ExpiryPassed);
    rules.holds(b, open, i.b_exists, StreamRule::UnknownPayee);
    let same = b.is_equal(i.a_index, i.b_index);
    rules.zero(b, open.target, same.target, StreamRule::SelfStream);

    // Settle: the payee signs, in the window, settled < to <= max_ticks, and for a walk
    // to - settled <= 2^16.
    rules.holds(b, settling, by_payee, StreamRule::NotPayee);
    rules.holds(b, settling, in_window, StreamRule::SettleWindowOver);
    let to_bits = b.split_le(t.to, 32);
    let newer = less_u32(b, t.old.settled, t.to);
    rules.holds(b, settling, newer, StreamRule::TickNotNewer);
    // Counted only past `settled` (else TickNotNewer is the rule broken, and the only one).
    let counted = b.and(settling, newer);
    let steps = b.sub(t.to, t.old.settled);
    let steps = b.mul(counted.target, steps);
    let walked = b.and(settle, newer);
    let walk_steps = b.mul(settle.target, steps);
    let walk_less = b.sub(walk_steps, walked.target);
    rules.below(
        b,
        walked,
        walk_less,
        MAX_SETTLE_TICKS.trailing_zeros() as usize,
        StreamRule::SettleTooLong,
    );
    let beyond = less_u32(b, t.old.max_ticks, t.to);
    rules.zero(b, settling.target, beyond.target, StreamRule::TickBeyondMax);
    let payout = mul_amount(b, &mut rules, settling, &old_price, steps);

    // Close: the payee, or the payer (A = B) once the window is over; the rest is refunded
    // (`settled <= max_ticks` holds for every stream a proven open or settlement wrote).
    let by_payer = same;
    let not_in_window = b.not(in_window);
    let late_payer = b.and(by_payer, not_in_window);
    let allowed = b.or(by_payee, late_payer);
    rules.holds(b, close, allowed, StreamRule::CloseNotAllowed);
    let left = b.sub(t.old.max_ticks, t.old.settled);
    let left = b.mul(close.target, left);
    let left = rules.below(b, close, left, 25, StreamRule::AmountOverflow);
    let refund = mul_amount(b, &mut rules, close, &old_price, left);

    // The new leaf: the opened stream, the settled one, or ZERO.
    let opened = StreamFieldsTarget {
        payee: i.b_index,
        price: t.price,
        max_ticks: t.max_ticks,
        expiry: t.expiry,
        opened_at: i.nonce,
        settled: zero,
        head: t.anchor,
    };
    // A walk's tick becomes the head; a path's head (the tick tree's root) stays.
    let settled = StreamFieldsTarget {
        settled: t.to,
        head: select_hash(b, settle_path, t.old.head, t.t_to),
        ..t.old
    };
    let new = StreamFieldsTarget {
        payee: b.select(open, opened.payee, settled.payee),
        price: b.select(open, opened.price, settled.price),
        max_ticks: b.select(open, opened.max_ticks, settled.max_ticks),
        expiry: b.select(open, opened.expiry, settled.expiry),
        opened_at: b.select(open, opened.opened_at, settled.opened_at),
        settled: b.select(open, opened.settled, settled.settled),
        head: select_hash(b, open, opened.head, settled.head),
    };
    let new_hash = new.leaf(b);
    let new_leaf = select_hash(b, close, zero_leaf, new_hash);
    let root_after = book_root(b, new_leaf, &slot_bits, &t.path);
    let ext_new = ext_digest(b, root_after, t.profile);
    let a_ext = select4(b, open, ext_new.elements, i.a_ext);
    let b_ext = select4(b, on_b, ext_new.elements, i.b_ext);

    // The walk record (SPEC 18.7): (payer * 2^16 + slot, opened_at, to, settled, t_to, head).
    let two16 = b.constant(F::from_canonical_u64(1 << 16));
    let id0 = b.mul_add(i.b_index, two16, t.slot);
    let mut record = i.walks.elements.to_vec();
    record.extend([id0, t.old.opened_at, t.to, t.old.settled]);
    record.extend(t.t_to.elements);
    record.extend(t.old.head.elements);
    let folded = b.hash_n_to_hash_no_pad::<PoseidonHash>(record);
    let walks = select_hash(b, settle, folded, i.walks);

    // A settlement by path (SPEC 18.8): tick `to`'s leaf at index `to - 1` opens to the head.
    // Judged only past `settled` and within `max_ticks` (else TickNotNewer or TickBeyondMax
    // is the rule broken): then `1 <= to <= max_ticks <= 2^24`, so the index has 24 bits.
    let within = b.not(beyond);
    let path_on = b.and(settle_path, newer);
    let path_on = b.and(path_on, within);
    let tag_leaf = b.constant(F::from_canonical_u32(TAG_TICK_LEAF));
    let mut leaf_in = vec![id0, t.old.opened_at, t.to, tag_leaf];
    leaf_in.extend(t.t_to.elements);
    let mut node = b.hash_n_to_hash_no_pad::<PoseidonHash>(leaf_in);
    let index = b.sub(t.to, one);
    let index = b.mul(path_on.target, index);
    let index_bits = b.split_le(index, TICK_TREE_DEPTH);
    for (bit, sibling) in index_bits.into_iter().zip(t.tick_path) {
        node = hash_level(b, node, sibling, bit);
    }
    for (x, y) in node.elements.iter().zip(t.old.head.elements) {
        rules.eq(b, path_on, *x, y, StreamRule::TickPath);
    }

    // Messages (`tx::stream`): the body's fields; ops (SPEC 10.2): the body's bytes.
    let mut open_body = vec![i.a_index, i.b_index, t.slot, t.price, t.max_ticks, t.expiry];
    open_body.extend(t.anchor.elements);
    let mut settle_body = vec![i.a_index, i.b_index, t.slot, t.old.settled, t.to];
    settle_body.extend(t.t_to.elements);
    let close_body = [i.a_index, i.b_index, t.slot];
    // The two settlements' messages and ops differ only by the tag (8 or 18): one candidate
    // each, its tag `8 + 10 x settle_path`, its tag byte's bits 1 and 4 set by a path and bit 3
    // by a walk (0b0000_1000 or 0b0001_0010).
    let walk_tag = b.constant(F::from_canonical_u8(TxKind::StreamSettle.tag()));
    let ten = b.constant(F::from_canonical_u8(
        TxKind::StreamSettlePath.tag() - TxKind::StreamSettle.tag(),
    ));
    let settle_tag = b.mul_add(settle_path.target, ten, walk_tag);
    let by_walk = b.not(settle_path);
    let f = b._false();
    let settle_tag_bits = vec![f, settle_path, f, by_walk, settle_path, f, f, f];
    const {
        assert!(TxKind::StreamSettle.tag() == 0b0000_1000);
        assert!(TxKind::StreamSettlePath.tag() == 0b0001_0010);
        assert!(op_len(TxKind::StreamSettle) == op_len(TxKind::StreamSettlePath));
    }
    let messages = vec![
        (open, i.message(b, TxKind::StreamOpen, &open_body)),
        (settling, i.message_tagged(settle_tag, &settle_body)),
        (close, i.message(b, TxKind::StreamClose, &close_body)),
    ];
    let price_bits = price.bits64(b);
    let mt_bits = b.split_le(t.max_ticks, 32);
    let expiry_bits = expiry.bits64(b);
    let anchor_bits = digest_bits(b, t.anchor);
    let t_to_bits = digest_bits(b, t.t_to);
    let ops = vec![
        i.op(
            b,
            TxKind::StreamOpen,
            open,
            &[
                i.a_bits,
                i.b_bits,
                &slot_bits,
                &price_bits,
                &mt_bits,
                &expiry_bits,
                &anchor_bits,
            ],
        ),
        i.op_tagged(
            b,
            settle_tag_bits,
            op_len(TxKind::StreamSettle),
            settling,
            &[
                i.a_bits, i.b_bits, &slot_bits, &from_bits, &to_bits, &t_to_bits,
            ],
        ),
        i.op(
            b,
            TxKind::StreamClose,
            close,
            &[i.a_bits, i.b_bits, &slot_bits],
        ),
    ];

    let effects = StreamEffects {
        any,
        a_ext,
        b_ext,
        a_streams_after: root_after,
        a_credit: scale_u63(b, settling, &payout),
        b_credit: scale_u63(b, close, &refund),
        messages,
        ops,
        walks,
        rules: rules.into_inner(),
    };
    (t, effects)
}

/// Sets the branch's targets from a slot's stream witness (`None`: not a stream kind; the
/// unused targets get values every unconditional check accepts).
pub(super) fn set(
    pw: &mut PartialWitness<F>,
    t: &StreamTargets,
    kind: crate::witness::SlotKind,
    w: Option<&StreamWitness>,
) -> anyhow::Result<()> {
    use crate::witness::SlotKind;
    pw.set_bool_target(t.open, kind == SlotKind::StreamOpen)?;
    pw.set_bool_target(t.settle, kind == SlotKind::StreamSettle)?;
    pw.set_bool_target(t.close, kind == SlotKind::StreamClose)?;
    pw.set_bool_target(t.settle_path, kind == SlotKind::StreamSettlePath)?;
    let idle = StreamWitness::idle();
    let w = w.unwrap_or(&idle);
    pw.set_target(t.slot, F::from_canonical_u16(w.slot))?;
    for (p, d) in t.path.iter().zip(&w.path) {
        pw.set_hash_target(*p, (*d).into())?;
    }
    pw.set_hash_target(t.streams_root, w.streams_root.into())?;
    pw.set_hash_target(t.profile, w.profile.into())?;
    t.old
        .set_elements(pw, &w.old.map(F::from_noncanonical_u64))?;
    for (tt, v) in [
        (t.price, w.price),
        (t.max_ticks, u64::from(w.max_ticks)),
        (t.expiry, w.expiry),
        (t.to, u64::from(w.to)),
    ] {
        pw.set_target(tt, F::from_noncanonical_u64(v))?;
    }
    pw.set_hash_target(t.anchor, w.anchor.into())?;
    pw.set_hash_target(t.t_to, w.t_to.into())?;
    for (l, p) in t.tick_path.iter().enumerate() {
        let d = w
            .tick_path
            .get(l)
            .copied()
            .unwrap_or(state::hash::Digest::ZERO);
        pw.set_hash_target(*p, d.into())?;
    }
    Ok(())
}
