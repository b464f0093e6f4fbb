//! GF(p^5) = GF(p)\[z\] / (z^5 - 3) arithmetic for gate constraints, plus a small gate that
//! multiplies two GF(p^5) elements.
//!
//! A custom gate states its constraints three times: on extension-field values (the
//! verifier's check at the challenge point), on base-field values (the prover's quotient
//! computation) and on extension targets (inside a recursive verifier). Writing each formula
//! once, generically over [`Alg`], keeps the three in lockstep: a divergence between them is
//! exactly the bug plonky2's `test_eval_fns` exists to catch, and here it cannot be written.

use core::ops::Range;

use anyhow::Result;
use plonky2::field::extension::{Extendable, FieldExtension};
use plonky2::field::types::Field;
use plonky2::gates::gate::Gate;
use plonky2::iop::ext_target::ExtensionTarget;
use plonky2::iop::generator::{GeneratedValues, SimpleGenerator, WitnessGeneratorRef};
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartitionWitness, Witness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CommonCircuitData};
use plonky2::util::serialization::{Buffer, IoResult, Read, Write};
use state::crypto::gfp5::GFp5;

use crate::{D, F};

/// The extension field constraints are evaluated in by the verifier.
pub type FE = <F as Extendable<D>>::Extension;

/// Ring operations on the values a constraint is evaluated over.
pub trait Alg {
    type V: Copy;
    fn add(&mut self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(&mut self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(&mut self, a: Self::V, b: Self::V) -> Self::V;
    /// `c * a` for a base-field constant `c`.
    fn scale(&mut self, c: F, a: Self::V) -> Self::V;
    fn constant(&mut self, c: F) -> Self::V;
}

/// Evaluation on field values (`F` itself or its extension).
pub struct Native<T> {
    lift: fn(F) -> T,
}

impl Native<F> {
    pub fn base() -> Self {
        Native { lift: |c| c }
    }
}

impl Native<FE> {
    pub fn ext() -> Self {
        Native {
            lift: <FE as FieldExtension<D>>::from_basefield,
        }
    }
}

impl<T: Field> Alg for Native<T> {
    type V = T;
    fn add(&mut self, a: T, b: T) -> T {
        a + b
    }
    fn sub(&mut self, a: T, b: T) -> T {
        a - b
    }
    fn mul(&mut self, a: T, b: T) -> T {
        a * b
    }
    fn scale(&mut self, c: F, a: T) -> T {
        (self.lift)(c) * a
    }
    fn constant(&mut self, c: F) -> T {
        (self.lift)(c)
    }
}

/// Evaluation inside a circuit (a recursive verifier of a proof that used the gate).
pub struct InCircuit<'a> {
    pub b: &'a mut CircuitBuilder<F, D>,
}

impl Alg for InCircuit<'_> {
    type V = ExtensionTarget<D>;
    fn add(&mut self, a: Self::V, b: Self::V) -> Self::V {
        self.b.add_extension(a, b)
    }
    fn sub(&mut self, a: Self::V, b: Self::V) -> Self::V {
        self.b.sub_extension(a, b)
    }
    fn mul(&mut self, a: Self::V, b: Self::V) -> Self::V {
        self.b.mul_extension(a, b)
    }
    fn scale(&mut self, c: F, a: Self::V) -> Self::V {
        self.b.mul_const_extension(c, a)
    }
    fn constant(&mut self, c: F) -> Self::V {
        self.b
            .constant_extension(<FE as FieldExtension<D>>::from_basefield(c))
    }
}

/// Implements the three evaluation entry points of [`Gate`] from a generic
/// `fn eval<A: Alg>(&self, a: &mut A, wires: &[A::V], out: &mut Vec<A::V>)` of the gate.
macro_rules! gate_evals {
    () => {
        fn eval_unfiltered(
            &self,
            vars: plonky2::plonk::vars::EvaluationVars<$crate::F, { $crate::D }>,
        ) -> Vec<$crate::gadgets::gfp5::FE> {
            let mut out = Vec::with_capacity(self.num_constraints());
            self.eval(
                &mut $crate::gadgets::gfp5::Native::ext(),
                vars.local_wires,
                &mut out,
            );
            out
        }

        fn eval_unfiltered_base_one(
            &self,
            vars: plonky2::plonk::vars::EvaluationVarsBase<$crate::F>,
            mut yield_constr: plonky2::gates::util::StridedConstraintConsumer<$crate::F>,
        ) {
            let wires: Vec<$crate::F> =
                (0..self.num_wires()).map(|i| vars.local_wires[i]).collect();
            let mut out = Vec::with_capacity(self.num_constraints());
            self.eval(&mut $crate::gadgets::gfp5::Native::base(), &wires, &mut out);
            yield_constr.many(out);
        }

        fn eval_unfiltered_circuit(
            &self,
            builder: &mut plonky2::plonk::circuit_builder::CircuitBuilder<$crate::F, { $crate::D }>,
            vars: plonky2::plonk::vars::EvaluationTargets<{ $crate::D }>,
        ) -> Vec<plonky2::iop::ext_target::ExtensionTarget<{ $crate::D }>> {
            let mut out = Vec::with_capacity(self.num_constraints());
            self.eval(
                &mut $crate::gadgets::gfp5::InCircuit { b: builder },
                vars.local_wires,
                &mut out,
            );
            out
        }
    };
}
pub(crate) use gate_evals;

/// A GF(p^5) element as five coefficients over the evaluation ring.
pub type G5<V> = [V; 5];

pub fn add5<A: Alg>(a: &mut A, x: G5<A::V>, y: G5<A::V>) -> G5<A::V> {
    core::array::from_fn(|i| a.add(x[i], y[i]))
}

pub fn sub5<A: Alg>(a: &mut A, x: G5<A::V>, y: G5<A::V>) -> G5<A::V> {
    core::array::from_fn(|i| a.sub(x[i], y[i]))
}

pub fn scale5<A: Alg>(a: &mut A, c: F, x: G5<A::V>) -> G5<A::V> {
    core::array::from_fn(|i| a.scale(c, x[i]))
}

pub fn const5<A: Alg>(a: &mut A, c: [F; 5]) -> G5<A::V> {
    core::array::from_fn(|i| a.constant(c[i]))
}

/// Schoolbook product reduced with z^5 = 3 (25 ring multiplications).
pub fn mul5<A: Alg>(a: &mut A, x: G5<A::V>, y: G5<A::V>) -> G5<A::V> {
    let mut acc: [Option<A::V>; 9] = [None; 9];
    for i in 0..5 {
        for j in 0..5 {
            let p = a.mul(x[i], y[j]);
            acc[i + j] = Some(match acc[i + j] {
                Some(s) => a.add(s, p),
                None => p,
            });
        }
    }
    let three = F::from_canonical_u64(3);
    core::array::from_fn(|k| {
        let lo = acc[k].expect("every degree below 9 has a term");
        if k < 4 {
            let hi = acc[k + 5].expect("every degree below 9 has a term");
            let hi3 = a.scale(three, hi);
            a.add(lo, hi3)
        } else {
            lo
        }
    })
}

/// Multiplication by the curve constant b = 263 z: (c0..c4) -> 263 (3 c4, c0, c1, c2, c3).
pub fn mul_b5<A: Alg>(a: &mut A, x: G5<A::V>) -> G5<A::V> {
    let k = F::from_canonical_u64(263);
    let k3 = F::from_canonical_u64(3 * 263);
    [
        a.scale(k3, x[4]),
        a.scale(k, x[0]),
        a.scale(k, x[1]),
        a.scale(k, x[2]),
        a.scale(k, x[3]),
    ]
}

/// The five coefficients of a native element.
pub fn coeffs(x: GFp5) -> [F; 5] {
    x.to_field_elements()
}

/// Reads five consecutive wires of a row as a GF(p^5) element.
pub fn read5<T: Copy>(wires: &[T], start: usize) -> G5<T> {
    core::array::from_fn(|i| wires[start + i])
}

/// Reads a native element from the witness.
pub fn get5(w: &PartitionWitness<F>, row: usize, start: usize) -> GFp5 {
    GFp5::from_fields(core::array::from_fn(|i| {
        w.get_target(Target::wire(row, start + i))
    }))
}

/// Writes a native element into the witness.
pub fn set5(out: &mut GeneratedValues<F>, row: usize, start: usize, v: GFp5) -> Result<()> {
    for (i, c) in coeffs(v).into_iter().enumerate() {
        out.set_target(Target::wire(row, start + i), c)?;
    }
    Ok(())
}

/// The five wire targets of a GF(p^5) element at `start` in `row`.
pub fn wires5(row: usize, start: usize) -> [Target; 5] {
    core::array::from_fn(|i| Target::wire(row, start + i))
}

// ---------------------------------------------------------------------------------------------
// The multiplication gate.

/// `c = a * b` in GF(p^5), several independent operations per row.
#[derive(Clone, Debug)]
pub struct Gfp5MulGate {
    pub num_ops: usize,
}

impl Gfp5MulGate {
    const WIRES_PER_OP: usize = 15;

    pub fn new_from_config(config: &CircuitConfig) -> Self {
        Gfp5MulGate {
            num_ops: config.num_routed_wires / Self::WIRES_PER_OP,
        }
    }

    pub fn wires_a(i: usize) -> Range<usize> {
        15 * i..15 * i + 5
    }
    pub fn wires_b(i: usize) -> Range<usize> {
        15 * i + 5..15 * i + 10
    }
    pub fn wires_c(i: usize) -> Range<usize> {
        15 * i + 10..15 * i + 15
    }

    fn eval<A: Alg>(&self, a: &mut A, w: &[A::V], out: &mut Vec<A::V>) {
        for i in 0..self.num_ops {
            let x = read5(w, Self::wires_a(i).start);
            let y = read5(w, Self::wires_b(i).start);
            let z = read5(w, Self::wires_c(i).start);
            let p = mul5(a, x, y);
            out.extend(sub5(a, z, p));
        }
    }
}

impl Gate<F, D> for Gfp5MulGate {
    fn id(&self) -> String {
        format!("{self:?}")
    }

    fn serialize(&self, dst: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        dst.write_usize(self.num_ops)
    }

    fn deserialize(src: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(Gfp5MulGate {
            num_ops: src.read_usize()?,
        })
    }

    gate_evals!();

    fn generators(&self, row: usize, _: &[F]) -> Vec<WitnessGeneratorRef<F, D>> {
        (0..self.num_ops)
            .map(|i| WitnessGeneratorRef::new(Gfp5MulGenerator { row, i }.adapter()))
            .collect()
    }

    fn num_wires(&self) -> usize {
        self.num_ops * Self::WIRES_PER_OP
    }
    fn num_constants(&self) -> usize {
        0
    }
    fn degree(&self) -> usize {
        2
    }
    fn num_constraints(&self) -> usize {
        self.num_ops * 5
    }
}

/// Computes `c` from `a` and `b`.
#[derive(Clone, Debug, Default)]
pub struct Gfp5MulGenerator {
    row: usize,
    i: usize,
}

impl SimpleGenerator<F, D> for Gfp5MulGenerator {
    fn id(&self) -> String {
        "Gfp5MulGenerator".into()
    }

    fn dependencies(&self) -> Vec<Target> {
        Gfp5MulGate::wires_a(self.i)
            .chain(Gfp5MulGate::wires_b(self.i))
            .map(|w| Target::wire(self.row, w))
            .collect()
    }

    fn run_once(&self, w: &PartitionWitness<F>, out: &mut GeneratedValues<F>) -> Result<()> {
        let a = get5(w, self.row, Gfp5MulGate::wires_a(self.i).start);
        let b = get5(w, self.row, Gfp5MulGate::wires_b(self.i).start);
        set5(out, self.row, Gfp5MulGate::wires_c(self.i).start, a * b)
    }

    fn serialize(&self, dst: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        dst.write_usize(self.row)?;
        dst.write_usize(self.i)
    }

    fn deserialize(src: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(Gfp5MulGenerator {
            row: src.read_usize()?,
            i: src.read_usize()?,
        })
    }
}

/// Sets `inv = x^-1` (fails on zero: the constraint `x * inv = 1` that uses it could not hold).
#[derive(Clone, Debug, Default)]
pub struct Gfp5InverseGenerator {
    pub x: [Target; 5],
    pub inv: [Target; 5],
}

impl SimpleGenerator<F, D> for Gfp5InverseGenerator {
    fn id(&self) -> String {
        "Gfp5InverseGenerator".into()
    }

    fn dependencies(&self) -> Vec<Target> {
        self.x.to_vec()
    }

    fn run_once(&self, w: &PartitionWitness<F>, out: &mut GeneratedValues<F>) -> Result<()> {
        // Zero maps to zero: `inverse_gfp5`'s constraint then fails (no proof), while
        // `inverse_or_zero_gfp5` accepts it.
        let x = GFp5::from_fields(core::array::from_fn(|i| w.get_target(self.x[i])));
        let inv = coeffs(x.inverse_or_zero());
        for (t, v) in self.inv.iter().zip(inv) {
            out.set_target(*t, v)?;
        }
        Ok(())
    }

    fn serialize(&self, dst: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        dst.write_target_array(&self.x)?;
        dst.write_target_array(&self.inv)
    }

    fn deserialize(src: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(Gfp5InverseGenerator {
            x: src.read_target_array()?,
            inv: src.read_target_array()?,
        })
    }
}

/// `a * b` in a circuit, packed into shared [`Gfp5MulGate`] rows.
pub fn mul_gfp5(b: &mut CircuitBuilder<F, D>, x: [Target; 5], y: [Target; 5]) -> [Target; 5] {
    let gate = Gfp5MulGate::new_from_config(&b.config);
    let (row, i) = b.find_slot(gate, &[], &[]);
    for k in 0..5 {
        b.connect(x[k], Target::wire(row, Gfp5MulGate::wires_a(i).start + k));
        b.connect(y[k], Target::wire(row, Gfp5MulGate::wires_b(i).start + k));
    }
    wires5(row, Gfp5MulGate::wires_c(i).start)
}

/// The inverse of `x` (no proof exists if `x` is zero): one multiplication slot.
pub fn inverse_gfp5(b: &mut CircuitBuilder<F, D>, x: [Target; 5]) -> [Target; 5] {
    let inv: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
    b.add_simple_generator(Gfp5InverseGenerator { x, inv });
    let one = b.one();
    let zero = b.zero();
    let p = mul_gfp5(b, x, inv);
    b.connect(p[0], one);
    for t in &p[1..] {
        b.connect(*t, zero);
    }
    inv
}

/// `1/x`, or 0 when `x = 0`: the ECgFp5 encoding `w = 1/u` of a point, which is 0 for the
/// neutral. With `t = x * inv`, the constraints `x (t - 1) = 0` and `inv (t - 1) = 0` force
/// `inv = 1/x` when `x != 0` and `inv = 0` when `x = 0` (GF(p^5) has no zero divisors).
pub fn inverse_or_zero_gfp5(b: &mut CircuitBuilder<F, D>, x: [Target; 5]) -> [Target; 5] {
    let inv: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
    b.add_simple_generator(Gfp5InverseGenerator { x, inv });
    let one = b.one();
    let zero = b.zero();
    let mut t = mul_gfp5(b, x, inv);
    t[0] = b.sub(t[0], one);
    for y in [x, inv] {
        let p = mul_gfp5(b, y, t);
        for c in p {
            b.connect(c, zero);
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use plonky2::gates::gate_testing::{test_eval_fns, test_low_degree};
    use plonky2::iop::witness::PartialWitness;
    use plonky2::plonk::circuit_data::CircuitConfig;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::C;

    fn rnd(rng: &mut impl Rng) -> GFp5 {
        GFp5::from_fields(core::array::from_fn(|_| {
            F::from_canonical_u64(rng.gen::<u64>() % state::hash::P)
        }))
    }

    #[test]
    fn generic_mul_matches_native() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..50 {
            let (x, y) = (rnd(&mut rng), rnd(&mut rng));
            let p = mul5(&mut Native::base(), coeffs(x), coeffs(y));
            assert_eq!(GFp5::from_fields(p), x * y);
            let q = mul_b5(&mut Native::base(), coeffs(x));
            let b = GFp5::from_fields(core::array::from_fn(|i| {
                F::from_canonical_u64(if i == 1 { 263 } else { 0 })
            }));
            assert_eq!(GFp5::from_fields(q), x * b);
        }
    }

    #[test]
    fn mul_gate_low_degree() {
        test_low_degree::<F, _, D>(Gfp5MulGate::new_from_config(
            &CircuitConfig::standard_recursion_config(),
        ));
    }

    #[test]
    fn mul_gate_eval_fns() -> Result<()> {
        test_eval_fns::<F, C, _, D>(Gfp5MulGate::new_from_config(
            &CircuitConfig::standard_recursion_config(),
        ))
    }

    #[test]
    fn inverse_of_zero_has_no_witness() {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let x: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
        inverse_gfp5(&mut b, x);
        let data = b.build::<C>();
        let mut pw = PartialWitness::new();
        for t in x {
            pw.set_target(t, F::ZERO).unwrap();
        }
        assert!(data.prove(pw).is_err());
    }
}
