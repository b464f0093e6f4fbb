//! ECgFp5 curve gates, in the affine (x, u) coordinates of Pornin's paper (u = x/y; the
//! neutral is (0, 0)).
//!
//! The paper's addition formula is complete for the prime-order group: in fractional
//! coordinates it never produces Z = 0 or T = 0 for group elements, doubling and the neutral
//! included. A gate therefore states `x3 * Z3 = X3` and `u3 * T3 = U3` with (X3 : Z3 : U3 : T3)
//! computed from affine inputs: since Z3 and T3 are non-zero, the affine output is uniquely
//! determined, so a prover has no freedom at all as long as the inputs are group elements.
//! Every point entering these gates is one: the generator (a constant), a public key decoded
//! by [`KeyDecodeGate`] (which proves the decoding picked the group element), or an output of
//! these gates.
//!
//! With Z = T = 1 and t1 = x1 x2, t3 = u1 u2, t5 = x1 + x2, t6 = u1 + u2, t7 = t1 + b,
//! t8 = t1 - b (a = 2, b = 263 z):
//!
//! ```text
//! X3 = b (t5 + 2 t3 t5 + 2 t3 t7)      Z3 = t7 - 2 t3 t7 - 2b t3 t5
//! U3 = -t6 t8                           T3 = t7 + 2 t3 t7 + 2b t3 t5
//! ```
//!
//! (the native `state::crypto::ecgfp5` formulas with Z = T = 1; doubling is the same formula
//! with both inputs equal).
//!
//! Gates:
//! - [`EcAddGate`]: one affine addition (degree 3, 40 wires).
//! - [`ScalarMulStepGate`]: three steps of a joint double-and-add for `s G + e Q` per row
//!   (degree 5, 126 wires): `acc <- 2 acc + [s_i] G + [e_i] Q`, the addend chosen among the
//!   neutral, G (a constant of the gate), Q and G + Q (wires) by two bits.
//! - [`KeyDecodeGate`]: decodes a public key `w` to its affine point, proving the decoding
//!   chose the root that is a group element (degree 3, 20 wires).

use anyhow::Result;
use plonky2::field::types::Field;
use plonky2::gates::gate::Gate;
use plonky2::iop::generator::{GeneratedValues, SimpleGenerator, WitnessGeneratorRef};
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartitionWitness, Witness};
use plonky2::plonk::circuit_data::CommonCircuitData;
use plonky2::util::serialization::{Buffer, IoResult, Read, Write};
use state::crypto::ecgfp5::Point;
use state::crypto::gfp5::GFp5;

use super::gfp5::{
    add5, coeffs, const5, gate_evals, get5, mul5, mul_b5, read5, scale5, set5, sub5, Alg, Native,
    G5,
};
use crate::{D, F};

/// An affine point over the evaluation ring.
type Pt<V> = (G5<V>, G5<V>);

/// The curve constant b = 263 z.
fn b_const() -> [F; 5] {
    [
        F::ZERO,
        F::from_canonical_u64(263),
        F::ZERO,
        F::ZERO,
        F::ZERO,
    ]
}

/// The generator's affine coordinates.
pub fn generator_affine() -> ([F; 5], [F; 5]) {
    let (x, u) = Point::GENERATOR.to_affine();
    (coeffs(x), coeffs(u))
}

/// (X3, Z3, U3, T3) from t1, t3, t5, t6 (see the module docs).
fn finish<A: Alg>(
    a: &mut A,
    t1: G5<A::V>,
    t3: G5<A::V>,
    t5: G5<A::V>,
    t6: G5<A::V>,
) -> [G5<A::V>; 4] {
    let b = const5(a, b_const());
    let t7 = add5(a, t1, b);
    let t8 = sub5(a, t1, b);
    let b_ = mul5(a, t7, t3); // t3 t7
    let c_ = mul5(a, t3, t5); // t3 t5
    let two = F::TWO;
    let ab = scale5(a, two, b_);
    let bc = mul_b5(a, c_);
    let bc2 = scale5(a, two, bc);
    let c2 = scale5(a, two, c_);
    let s = add5(a, t5, c2);
    let s = add5(a, s, ab);
    let x3 = mul_b5(a, s);
    let z3 = sub5(a, t7, ab);
    let z3 = sub5(a, z3, bc2);
    let p = mul5(a, t6, t8);
    let zero = const5(a, [F::ZERO; 5]);
    let u3 = sub5(a, zero, p);
    let t3_ = add5(a, t7, ab);
    let t3_ = add5(a, t3_, bc2);
    [x3, z3, u3, t3_]
}

/// Constraints `out.x * Z3 - X3` and `out.u * T3 - U3` (10 values).
fn output_constraints<A: Alg>(a: &mut A, proj: [G5<A::V>; 4], out: Pt<A::V>, dst: &mut Vec<A::V>) {
    let [x3, z3, u3, t3] = proj;
    let l = mul5(a, out.0, z3);
    dst.extend(sub5(a, l, x3));
    let l = mul5(a, out.1, t3);
    dst.extend(sub5(a, l, u3));
}

/// Native affine addition through the same formula (used by witness generators).
pub fn add_native(p: (GFp5, GFp5), q: (GFp5, GFp5)) -> ((GFp5, GFp5), GFp5, GFp5) {
    let t1 = p.0 * q.0;
    let t3 = p.1 * q.1;
    let out = affine_from_products(t1, t3, p.0 + q.0, p.1 + q.1);
    (out, t1, t3)
}

fn affine_from_products(t1: GFp5, t3: GFp5, t5: GFp5, t6: GFp5) -> (GFp5, GFp5) {
    let [x3, z3, u3, t3_] = finish(
        &mut Native::base(),
        coeffs(t1),
        coeffs(t3),
        coeffs(t5),
        coeffs(t6),
    );
    let (x3, z3, u3, t3_) = (
        GFp5::from_fields(x3),
        GFp5::from_fields(z3),
        GFp5::from_fields(u3),
        GFp5::from_fields(t3_),
    );
    (x3 * z3.inverse_or_zero(), u3 * t3_.inverse_or_zero())
}

/// Native doubling of an affine point; returns the result.
pub fn double_native(p: (GFp5, GFp5)) -> (GFp5, GFp5) {
    affine_from_products(p.0 * p.0, p.1 * p.1, p.0.double(), p.1.double())
}

// ---------------------------------------------------------------------------------------------
// EcAddGate

/// One complete affine addition `out = p1 + p2`.
#[derive(Clone, Debug, Default)]
pub struct EcAddGate;

impl EcAddGate {
    pub const P1_X: usize = 0;
    pub const P1_U: usize = 5;
    pub const P2_X: usize = 10;
    pub const P2_U: usize = 15;
    pub const OUT_X: usize = 20;
    pub const OUT_U: usize = 25;
    const T1: usize = 30;
    const T3: usize = 35;

    fn eval<A: Alg>(&self, a: &mut A, w: &[A::V], out: &mut Vec<A::V>) {
        let (x1, u1) = (read5(w, Self::P1_X), read5(w, Self::P1_U));
        let (x2, u2) = (read5(w, Self::P2_X), read5(w, Self::P2_U));
        let (t1, t3) = (read5(w, Self::T1), read5(w, Self::T3));
        let p = mul5(a, x1, x2);
        out.extend(sub5(a, t1, p));
        let p = mul5(a, u1, u2);
        out.extend(sub5(a, t3, p));
        let t5 = add5(a, x1, x2);
        let t6 = add5(a, u1, u2);
        let proj = finish(a, t1, t3, t5, t6);
        let o = (read5(w, Self::OUT_X), read5(w, Self::OUT_U));
        output_constraints(a, proj, o, out);
    }
}

impl Gate<F, D> for EcAddGate {
    fn id(&self) -> String {
        "EcAddGate".into()
    }
    fn serialize(&self, _: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        Ok(())
    }
    fn deserialize(_: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(EcAddGate)
    }

    gate_evals!();

    fn generators(&self, row: usize, _: &[F]) -> Vec<WitnessGeneratorRef<F, D>> {
        vec![WitnessGeneratorRef::new(EcAddGenerator { row }.adapter())]
    }
    fn num_wires(&self) -> usize {
        40
    }
    fn num_constants(&self) -> usize {
        0
    }
    fn degree(&self) -> usize {
        3
    }
    fn num_constraints(&self) -> usize {
        20
    }
}

#[derive(Clone, Debug, Default)]
pub struct EcAddGenerator {
    row: usize,
}

impl SimpleGenerator<F, D> for EcAddGenerator {
    fn id(&self) -> String {
        "EcAddGenerator".into()
    }
    fn dependencies(&self) -> Vec<Target> {
        (0..20).map(|i| Target::wire(self.row, i)).collect()
    }
    fn run_once(&self, w: &PartitionWitness<F>, out: &mut GeneratedValues<F>) -> Result<()> {
        let p1 = (
            get5(w, self.row, EcAddGate::P1_X),
            get5(w, self.row, EcAddGate::P1_U),
        );
        let p2 = (
            get5(w, self.row, EcAddGate::P2_X),
            get5(w, self.row, EcAddGate::P2_U),
        );
        let (o, t1, t3) = add_native(p1, p2);
        set5(out, self.row, EcAddGate::T1, t1)?;
        set5(out, self.row, EcAddGate::T3, t3)?;
        set5(out, self.row, EcAddGate::OUT_X, o.0)?;
        set5(out, self.row, EcAddGate::OUT_U, o.1)
    }
    fn serialize(&self, dst: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        dst.write_usize(self.row)
    }
    fn deserialize(src: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(EcAddGenerator {
            row: src.read_usize()?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// ScalarMulStepGate

/// Three steps of `acc <- 2 acc + [s] G + [e] Q`, most significant bit first.
///
/// Wire layout (routed first): `acc_in` 0..10, `q` 10..20, `gq` 20..30, e bits 30..33,
/// `acc_out` 33..43; then s bits 43..46 (set directly by the prover: they are the signature's
/// secret-free response, never copied elsewhere) and, per step, the doubled point D (10), the
/// products t1 = D.x T.x and t3 = D.u T.u (10) and, for the first two steps, the step's output
/// (10). 126 wires.
#[derive(Clone, Debug, Default)]
pub struct ScalarMulStepGate;

impl ScalarMulStepGate {
    pub const STEPS: usize = 3;
    pub const ACC_IN: usize = 0;
    pub const Q: usize = 10;
    pub const GQ: usize = 20;
    pub const E_BITS: usize = 30;
    pub const ACC_OUT: usize = 33;
    pub const S_BITS: usize = 43;
    const INTERNAL: usize = 46;

    /// Start of step j's doubled point D (x then u).
    fn d(j: usize) -> usize {
        Self::INTERNAL + 30 * j
    }
    fn t1(j: usize) -> usize {
        Self::d(j) + 10
    }
    fn t3(j: usize) -> usize {
        Self::d(j) + 15
    }
    /// Start of step j's output point.
    fn out(j: usize) -> usize {
        if j + 1 == Self::STEPS {
            Self::ACC_OUT
        } else {
            Self::d(j) + 20
        }
    }

    fn eval<A: Alg>(&self, a: &mut A, w: &[A::V], out: &mut Vec<A::V>) {
        let (gx, gu) = generator_affine();
        let g = (const5(a, gx), const5(a, gu));
        let q = (read5(w, Self::Q), read5(w, Self::Q + 5));
        let gq = (read5(w, Self::GQ), read5(w, Self::GQ + 5));
        let mut acc = (read5(w, Self::ACC_IN), read5(w, Self::ACC_IN + 5));
        for j in 0..Self::STEPS {
            let s = w[Self::S_BITS + j];
            let e = w[Self::E_BITS + j];
            // Booleanity of both bits.
            for bit in [s, e] {
                let one = a.constant(F::ONE);
                let nb = a.sub(one, bit);
                out.push(a.mul(bit, nb));
            }
            // D = 2 acc.
            let dbl = (read5(w, Self::d(j)), read5(w, Self::d(j) + 5));
            let t1 = mul5(a, acc.0, acc.0);
            let t3 = mul5(a, acc.1, acc.1);
            let t5 = add5(a, acc.0, acc.0);
            let t6 = add5(a, acc.1, acc.1);
            let proj = finish(a, t1, t3, t5, t6);
            output_constraints(a, proj, dbl, out);
            // T = s(1-e) G + (1-s) e Q + s e GQ.
            let se = a.mul(s, e);
            let wg = a.sub(s, se);
            let wq = a.sub(e, se);
            let sel = |a: &mut A, gc: G5<A::V>, qc: G5<A::V>, gqc: G5<A::V>| -> G5<A::V> {
                core::array::from_fn(|i| {
                    let x = a.mul(wg, gc[i]);
                    let y = a.mul(wq, qc[i]);
                    let z = a.mul(se, gqc[i]);
                    let xy = a.add(x, y);
                    a.add(xy, z)
                })
            };
            let tx = sel(a, g.0, q.0, gq.0);
            let tu = sel(a, g.1, q.1, gq.1);
            // out = D + T.
            let (p1, p3) = (read5(w, Self::t1(j)), read5(w, Self::t3(j)));
            let p = mul5(a, dbl.0, tx);
            out.extend(sub5(a, p1, p));
            let p = mul5(a, dbl.1, tu);
            out.extend(sub5(a, p3, p));
            let t5 = add5(a, dbl.0, tx);
            let t6 = add5(a, dbl.1, tu);
            let proj = finish(a, p1, p3, t5, t6);
            let o = (read5(w, Self::out(j)), read5(w, Self::out(j) + 5));
            output_constraints(a, proj, o, out);
            acc = o;
        }
    }
}

impl Gate<F, D> for ScalarMulStepGate {
    fn id(&self) -> String {
        "ScalarMulStepGate".into()
    }
    fn serialize(&self, _: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        Ok(())
    }
    fn deserialize(_: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(ScalarMulStepGate)
    }

    gate_evals!();

    fn generators(&self, row: usize, _: &[F]) -> Vec<WitnessGeneratorRef<F, D>> {
        vec![WitnessGeneratorRef::new(
            ScalarMulStepGenerator { row }.adapter(),
        )]
    }
    fn num_wires(&self) -> usize {
        Self::INTERNAL + 30 * Self::STEPS - 10
    }
    fn num_constants(&self) -> usize {
        0
    }
    fn degree(&self) -> usize {
        5
    }
    fn num_constraints(&self) -> usize {
        Self::STEPS * 32
    }
}

#[derive(Clone, Debug, Default)]
pub struct ScalarMulStepGenerator {
    row: usize,
}

impl SimpleGenerator<F, D> for ScalarMulStepGenerator {
    fn id(&self) -> String {
        "ScalarMulStepGenerator".into()
    }
    fn dependencies(&self) -> Vec<Target> {
        (0..ScalarMulStepGate::ACC_OUT)
            .chain(ScalarMulStepGate::S_BITS..ScalarMulStepGate::INTERNAL)
            .map(|i| Target::wire(self.row, i))
            .collect()
    }
    fn run_once(&self, w: &PartitionWitness<F>, out: &mut GeneratedValues<F>) -> Result<()> {
        type G = ScalarMulStepGate;
        let r = self.row;
        let bit = |i: usize| -> Result<bool> {
            let v = w.get_target(Target::wire(r, i));
            match v {
                v if v == F::ZERO => Ok(false),
                v if v == F::ONE => Ok(true),
                _ => anyhow::bail!("scalar bit is not boolean"),
            }
        };
        let (gx, gu) = Point::GENERATOR.to_affine();
        let q = (get5(w, r, G::Q), get5(w, r, G::Q + 5));
        let gq = (get5(w, r, G::GQ), get5(w, r, G::GQ + 5));
        let mut acc = (get5(w, r, G::ACC_IN), get5(w, r, G::ACC_IN + 5));
        for j in 0..G::STEPS {
            let (s, e) = (bit(G::S_BITS + j)?, bit(G::E_BITS + j)?);
            let dbl = double_native(acc);
            let t = match (s, e) {
                (false, false) => (GFp5::ZERO, GFp5::ZERO),
                (true, false) => (gx, gu),
                (false, true) => q,
                (true, true) => gq,
            };
            let (o, t1, t3) = add_native(dbl, t);
            set5(out, r, G::d(j), dbl.0)?;
            set5(out, r, G::d(j) + 5, dbl.1)?;
            set5(out, r, G::t1(j), t1)?;
            set5(out, r, G::t3(j), t3)?;
            set5(out, r, G::out(j), o.0)?;
            set5(out, r, G::out(j) + 5, o.1)?;
            acc = o;
        }
        Ok(())
    }
    fn serialize(&self, dst: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        dst.write_usize(self.row)
    }
    fn deserialize(src: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(ScalarMulStepGenerator {
            row: src.read_usize()?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// KeyDecodeGate

/// Decodes a key encoding `w` (w = y/x, non-zero) to the affine group element (x, u = 1/w).
///
/// The curve points with y = w x satisfy `x^2 - (w^2 - a) x + b = 0`; its two roots multiply to
/// b, a non-square, so exactly one is a non-square, and that one is the group element (the
/// native `Point::decode` picks it). The gate proves it by exhibiting a square root r of the
/// *other* root b/x: `r^2 x = b`. Wires: w 0..5, x 5..10, u 10..15, r 15..20.
#[derive(Clone, Debug, Default)]
pub struct KeyDecodeGate;

impl KeyDecodeGate {
    pub const W: usize = 0;
    pub const X: usize = 5;
    pub const U: usize = 10;
    const R: usize = 15;

    fn eval<A: Alg>(&self, a: &mut A, wires: &[A::V], out: &mut Vec<A::V>) {
        let w = read5(wires, Self::W);
        let x = read5(wires, Self::X);
        let u = read5(wires, Self::U);
        let r = read5(wires, Self::R);
        let b = const5(a, b_const());
        // x^2 - (w^2 - 2) x + b
        let w2 = mul5(a, w, w);
        let two = const5(a, [F::TWO, F::ZERO, F::ZERO, F::ZERO, F::ZERO]);
        let e = sub5(a, w2, two);
        let ex = mul5(a, e, x);
        let x2 = mul5(a, x, x);
        let c = sub5(a, x2, ex);
        out.extend(add5(a, c, b));
        // r^2 x - b
        let r2 = mul5(a, r, r);
        let r2x = mul5(a, r2, x);
        out.extend(sub5(a, r2x, b));
        // u w - 1
        let uw = mul5(a, u, w);
        let one = const5(a, [F::ONE, F::ZERO, F::ZERO, F::ZERO, F::ZERO]);
        out.extend(sub5(a, uw, one));
    }
}

impl Gate<F, D> for KeyDecodeGate {
    fn id(&self) -> String {
        "KeyDecodeGate".into()
    }
    fn serialize(&self, _: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        Ok(())
    }
    fn deserialize(_: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(KeyDecodeGate)
    }

    gate_evals!();

    fn generators(&self, row: usize, _: &[F]) -> Vec<WitnessGeneratorRef<F, D>> {
        vec![WitnessGeneratorRef::new(
            KeyDecodeGenerator { row }.adapter(),
        )]
    }
    fn num_wires(&self) -> usize {
        20
    }
    fn num_constants(&self) -> usize {
        0
    }
    fn degree(&self) -> usize {
        3
    }
    fn num_constraints(&self) -> usize {
        15
    }
}

#[derive(Clone, Debug, Default)]
pub struct KeyDecodeGenerator {
    row: usize,
}

impl SimpleGenerator<F, D> for KeyDecodeGenerator {
    fn id(&self) -> String {
        "KeyDecodeGenerator".into()
    }
    fn dependencies(&self) -> Vec<Target> {
        (0..5).map(|i| Target::wire(self.row, i)).collect()
    }
    fn run_once(&self, w: &PartitionWitness<F>, out: &mut GeneratedValues<F>) -> Result<()> {
        let r = self.row;
        let enc = get5(w, r, KeyDecodeGate::W);
        let p = Point::decode(enc)
            .filter(|p| !p.is_neutral())
            .ok_or_else(|| anyhow::anyhow!("public key is not the encoding of a group element"))?;
        let (x, u) = p.to_affine();
        let b = GFp5::from_fields(b_const());
        let root = (b * x.inverse_or_zero())
            .sqrt()
            .ok_or_else(|| anyhow::anyhow!("decoded point is not in the group"))?;
        set5(out, r, KeyDecodeGate::X, x)?;
        set5(out, r, KeyDecodeGate::U, u)?;
        set5(out, r, KeyDecodeGate::R, root)
    }
    fn serialize(&self, dst: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        dst.write_usize(self.row)
    }
    fn deserialize(src: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(KeyDecodeGenerator {
            row: src.read_usize()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use plonky2::gates::gate_testing::{test_eval_fns, test_low_degree};
    use plonky2::plonk::vars::EvaluationVars;

    use crate::gadgets::gfp5::FE;
    use rand::SeedableRng;
    use state::crypto::ecgfp5::Scalar;

    use super::*;
    use crate::C;

    fn rnd_point(rng: &mut rand::rngs::StdRng) -> Point {
        use rand::RngCore;
        let mut bytes = [0u8; 64];
        rng.fill_bytes(&mut bytes);
        Point::mulgen(&Scalar::from_le_bytes_wide(&bytes))
    }

    #[test]
    fn affine_formulas_match_native_group_law() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let n = Point::NEUTRAL.to_affine();
        for _ in 0..20 {
            let p = rnd_point(&mut rng);
            let q = rnd_point(&mut rng);
            let (sum, _, _) = add_native(p.to_affine(), q.to_affine());
            assert_eq!(sum, (p + q).to_affine());
            assert_eq!(double_native(p.to_affine()), p.double().to_affine());
            // Completeness: doubling through the addition formula, the neutral, inverses.
            assert_eq!(
                add_native(p.to_affine(), p.to_affine()).0,
                p.double().to_affine()
            );
            assert_eq!(add_native(p.to_affine(), n).0, p.to_affine());
            assert_eq!(add_native(p.to_affine(), (-p).to_affine()).0, n);
        }
        assert_eq!(double_native(n), n);
    }

    #[test]
    fn gates_have_their_declared_degree() {
        test_low_degree::<F, _, D>(EcAddGate);
        test_low_degree::<F, _, D>(KeyDecodeGate);
        test_low_degree::<F, _, D>(ScalarMulStepGate);
    }

    #[test]
    fn native_and_recursive_evaluations_agree() -> Result<()> {
        test_eval_fns::<F, C, _, D>(EcAddGate)?;
        test_eval_fns::<F, C, _, D>(KeyDecodeGate)?;
        test_eval_fns::<F, C, _, D>(ScalarMulStepGate)
    }

    /// Evaluates a gate's constraints on explicit wire values (no generator involved), as a
    /// verifier would: all zero iff the row is valid.
    fn constraints<G: Gate<F, D>>(gate: &G, wires: &[F]) -> Vec<FE> {
        let wires: Vec<FE> = wires
            .iter()
            .map(|w| <FE as FieldExtension<D>>::from_basefield(*w))
            .collect();
        let hash = plonky2::hash::hash_types::HashOut::<F>::ZERO;
        gate.eval_unfiltered(EvaluationVars {
            local_constants: &[],
            local_wires: &wires,
            public_inputs_hash: &hash,
        })
    }

    fn put(w: &mut [F], start: usize, v: GFp5) {
        w[start..start + 5].copy_from_slice(&coeffs(v));
    }

    use plonky2::field::extension::FieldExtension;

    fn valid_add_row(p: (GFp5, GFp5), q: (GFp5, GFp5)) -> Vec<F> {
        let mut w = vec![F::ZERO; 40];
        let (o, t1, t3) = add_native(p, q);
        put(&mut w, EcAddGate::P1_X, p.0);
        put(&mut w, EcAddGate::P1_U, p.1);
        put(&mut w, EcAddGate::P2_X, q.0);
        put(&mut w, EcAddGate::P2_U, q.1);
        put(&mut w, EcAddGate::OUT_X, o.0);
        put(&mut w, EcAddGate::OUT_U, o.1);
        put(&mut w, EcAddGate::T1, t1);
        put(&mut w, EcAddGate::T3, t3);
        w
    }

    #[test]
    fn add_gate_rejects_a_wrong_sum() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (p, q) = (rnd_point(&mut rng), rnd_point(&mut rng));
        let w = valid_add_row(p.to_affine(), q.to_affine());
        assert!(constraints(&EcAddGate, &w).iter().all(|c| *c == FE::ZERO));
        // Claim P + Q = P - Q instead.
        let mut bad = w.clone();
        put(&mut bad, EcAddGate::OUT_X, (p - q).to_affine().0);
        put(&mut bad, EcAddGate::OUT_U, (p - q).to_affine().1);
        assert!(constraints(&EcAddGate, &bad).iter().any(|c| *c != FE::ZERO));
        // A wrong intermediate product.
        let mut bad = w;
        bad[EcAddGate::T1] += F::ONE;
        assert!(constraints(&EcAddGate, &bad).iter().any(|c| *c != FE::ZERO));
    }

    #[test]
    fn decode_gate_rejects_the_root_outside_the_group() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let p = rnd_point(&mut rng);
        let enc = p.encode();
        let (x, u) = p.to_affine();
        let b = GFp5::from_fields(b_const());
        let r = (b * x.inverse_or_zero()).sqrt().expect("b/x is a square");
        let mut w = vec![F::ZERO; 20];
        put(&mut w, KeyDecodeGate::W, enc);
        put(&mut w, KeyDecodeGate::X, x);
        put(&mut w, KeyDecodeGate::U, u);
        put(&mut w, KeyDecodeGate::R, r);
        assert!(constraints(&KeyDecodeGate, &w)
            .iter()
            .all(|c| *c == FE::ZERO));
        // The other root x' = b/x satisfies the quadratic, but b/x' = x is a non-square: no r.
        let x_other = b * x.inverse_or_zero();
        assert!(x.sqrt().is_none());
        let mut bad = w.clone();
        put(&mut bad, KeyDecodeGate::X, x_other);
        for guess in [r, x_other.sqrt().unwrap_or(GFp5::ONE), GFp5::ONE] {
            put(&mut bad, KeyDecodeGate::R, guess);
            let c = constraints(&KeyDecodeGate, &bad);
            assert!(
                c[..5].iter().all(|c| *c == FE::ZERO),
                "x' solves the quadratic"
            );
            assert!(
                c[5..10].iter().any(|c| *c != FE::ZERO),
                "but has no witness r"
            );
        }
        // A wrong u.
        let mut bad = w;
        put(&mut bad, KeyDecodeGate::U, u.double());
        assert!(constraints(&KeyDecodeGate, &bad)
            .iter()
            .any(|c| *c != FE::ZERO));
    }

    #[test]
    fn step_gate_rejects_non_boolean_bits_and_wrong_points() {
        type G = ScalarMulStepGate;
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let (acc, q) = (rnd_point(&mut rng), rnd_point(&mut rng));
        let gq = Point::GENERATOR + q;
        let bits = [(true, false), (false, true), (true, true)];
        let mut w = vec![F::ZERO; <G as Gate<F, D>>::num_wires(&ScalarMulStepGate)];
        put(&mut w, G::ACC_IN, acc.to_affine().0);
        put(&mut w, G::ACC_IN + 5, acc.to_affine().1);
        put(&mut w, G::Q, q.to_affine().0);
        put(&mut w, G::Q + 5, q.to_affine().1);
        put(&mut w, G::GQ, gq.to_affine().0);
        put(&mut w, G::GQ + 5, gq.to_affine().1);
        let mut a = acc;
        for (j, (s, e)) in bits.iter().enumerate() {
            w[G::S_BITS + j] = F::from_bool(*s);
            w[G::E_BITS + j] = F::from_bool(*e);
            let d = a.double();
            let t = match (s, e) {
                (true, false) => Point::GENERATOR,
                (false, true) => q,
                _ => gq,
            };
            let (o, t1, t3) = add_native(d.to_affine(), t.to_affine());
            put(&mut w, G::d(j), d.to_affine().0);
            put(&mut w, G::d(j) + 5, d.to_affine().1);
            put(&mut w, G::t1(j), t1);
            put(&mut w, G::t3(j), t3);
            put(&mut w, G::out(j), o.0);
            put(&mut w, G::out(j) + 5, o.1);
            a = d + t;
        }
        assert!(constraints(&ScalarMulStepGate, &w)
            .iter()
            .all(|c| *c == FE::ZERO));
        // The row computes 8 acc + 4G + 2Q + (G+Q) = 8 acc + 5G + 3Q.
        let expect = acc.double().double().double()
            + Point::GENERATOR * state::crypto::ecgfp5::Scalar::from_u64x4([5, 0, 0, 0])
            + q * state::crypto::ecgfp5::Scalar::from_u64x4([3, 0, 0, 0]);
        assert_eq!(a.to_affine(), expect.to_affine());
        // A bit of 2 instead of 1.
        let mut bad = w.clone();
        bad[G::S_BITS] = F::TWO;
        assert!(constraints(&ScalarMulStepGate, &bad)
            .iter()
            .any(|c| *c != FE::ZERO));
        // An output that skips the last addition.
        let mut bad = w;
        put(&mut bad, G::ACC_OUT, a.to_affine().0 + GFp5::ONE);
        assert!(constraints(&ScalarMulStepGate, &bad)
            .iter()
            .any(|c| *c != FE::ZERO));
    }
}
