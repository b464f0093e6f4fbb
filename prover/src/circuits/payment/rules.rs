//! Named rules of a slot's optional branches (streams, revenue shares): each rule is a product
//! `flag x bad` asserted zero, so that plonky2's copy-constraint conflict names the product's
//! wire, and [`Rules`] keeps which rule each such wire is (`PaymentCircuit::refused_by`).

use plonky2::iop::target::{BoolTarget, Target};
use plonky2::plonk::circuit_builder::CircuitBuilder;

use crate::gadgets::range::split_at;
use crate::{D, F};

/// The rules a branch built, with the target whose non-zero value breaks each.
pub(super) struct Rules<R>(Vec<(Target, R)>);

impl<R> Default for Rules<R> {
    fn default() -> Self {
        Rules(Vec::new())
    }
}

impl<R: Copy> Rules<R> {
    pub(super) fn into_inner(self) -> Vec<(Target, R)> {
        self.0
    }

    /// Requires `flag x bad = 0`, named `rule`.
    pub(super) fn zero(
        &mut self,
        b: &mut CircuitBuilder<F, D>,
        flag: Target,
        bad: Target,
        rule: R,
    ) {
        let t = b.mul(flag, bad);
        b.assert_zero(t);
        self.0.push((t, rule));
    }

    /// Requires `flag -> x == y`, named `rule`.
    pub(super) fn eq(
        &mut self,
        b: &mut CircuitBuilder<F, D>,
        flag: BoolTarget,
        x: Target,
        y: Target,
        rule: R,
    ) {
        let d = b.sub(x, y);
        self.zero(b, flag.target, d, rule);
    }

    /// Requires `flag -> holds`, named `rule`.
    pub(super) fn holds(
        &mut self,
        b: &mut CircuitBuilder<F, D>,
        flag: BoolTarget,
        holds: BoolTarget,
        rule: R,
    ) {
        let bad = b.not(holds);
        self.zero(b, flag.target, bad.target, rule);
    }

    /// Requires `flag -> x < 2^bits`, named `rule` (`x` below `2^bits` plus a multiple of
    /// `2^bits` that must be zero: sound for any `x`, a wrapped negative included). Returns
    /// the low part.
    pub(super) fn below(
        &mut self,
        b: &mut CircuitBuilder<F, D>,
        flag: BoolTarget,
        x: Target,
        bits: usize,
        rule: R,
    ) -> Target {
        let (low, high) = split_at(b, x, bits);
        b.range_check(low, bits);
        self.zero(b, flag.target, high, rule);
        low
    }
}
