//! Leaf circuits of several kinds under one range statement (docs/PROVER.md, "Proving the agent
//! kinds", step 3).
//!
//! A payment slot that carried every kind's branch (stream settlements, splits, policy checks)
//! would make every plain payment pay for all of them. Instead each kind is its own leaf circuit
//! exposing the same [`RangeStatement`], and the level-1 merge ([`SetMerge`]) accepts a proof of
//! any kind of a fixed set: each child's verifier data is selected from the set's constant
//! verifier data by a witnessed index (`random_access_verifier_data`), so the merge accepts the
//! circuits of the set and no other, and the levels above it are the ordinary range merges.
//!
//! plonky2 verifies a proof in-circuit against one `CommonCircuitData` (the verifier's layout
//! follows the gates, their selectors, the degree and the FRI parameters), so the kinds of a set
//! are built to one [`LeafShape`]: the union of their gate types, registered in every kind's
//! gate set (`add_gate_to_gate_set`: selectors and constants, no rows), and the largest degree
//! (no-op rows pad the smaller kinds). The shape is found by building each kind once as it is;
//! the kinds built to it then differ only in their verifier-only data (constants and wiring).
//!
//! **Invariant.** A [`SetMerge`] proof's children are proofs of circuits of its set, each with
//! the set's common data; an index out of the set selects one of its kinds (the set is padded
//! to a power of two with its last kind), never anything else.
//!
//! **Cost** (`tests::a_set_merge_accepts_each_kind_and_nothing_else` prints it): per child, a
//! random access over the set's verifier data (a Merkle cap and a digest) beside the
//! verification; a padded kind pays the rows of the largest kind.

use anyhow::{ensure, Context};
use plonky2::field::types::Field;
use plonky2::gates::gate::GateRef;
use plonky2::gates::noop::NoopGate;
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{
    CircuitConfig, CircuitData, CommonCircuitData, VerifierCircuitTarget,
};
use plonky2::plonk::proof::{ProofWithPublicInputs, ProofWithPublicInputsTarget};

use crate::circuits::aggregate::{check_continuity, merge_statements};
use crate::circuits::public::{RangeStatement, RANGE_PUBLIC_INPUTS};
use crate::{C, D, F};

/// The one shape the leaf kinds of a set are built to.
#[derive(Clone, Debug)]
pub struct LeafShape {
    /// Every gate type of every kind.
    pub gates: Vec<GateRef<F, D>>,
    /// The largest kind's degree.
    pub degree_bits: usize,
}

impl LeafShape {
    /// The shape that holds every circuit whose common data is in `commons` (each kind built
    /// once as it is).
    pub fn union<'a>(commons: impl IntoIterator<Item = &'a CommonCircuitData<F, D>>) -> LeafShape {
        let mut gates: Vec<GateRef<F, D>> = Vec::new();
        let mut degree_bits = 0;
        for c in commons {
            for g in &c.gates {
                if !gates.contains(g) {
                    gates.push(g.clone());
                }
            }
            degree_bits = degree_bits.max(c.degree_bits());
        }
        LeafShape { gates, degree_bits }
    }

    /// Registers the shape's gates in `b` and pads it with no-op rows to more than half of the
    /// shape's rows, so that it builds at the shape's degree. Call it last, before `build()`
    /// (which adds its constant and public-input rows, fewer than the padding's margin when the
    /// kind fits the shape at all).
    pub fn apply(&self, b: &mut CircuitBuilder<F, D>) {
        for g in &self.gates {
            b.add_gate_to_gate_set(g.clone());
        }
        let floor = (1usize << self.degree_bits) / 2 + 1;
        while b.num_gates() < floor {
            b.add_gate(NoopGate, vec![]);
        }
    }
}

/// A level-1 range merge over proofs of any leaf circuit of a set sharing one
/// `CommonCircuitData` (module docs).
pub struct SetMerge {
    pub data: CircuitData<F, C, D>,
    kinds: usize,
    left: (ProofWithPublicInputsTarget<D>, Target),
    right: (ProofWithPublicInputsTarget<D>, Target),
}

impl SetMerge {
    /// The merge over proofs of the circuits `kinds` (in the order of the indices `prove`
    /// takes). Refuses an empty set, kinds whose common data differ (a kind not built to the
    /// set's [`LeafShape`]: the merge could verify none of its proofs) and kinds that do not
    /// expose a range statement.
    pub fn build(kinds: &[&CircuitData<F, C, D>]) -> anyhow::Result<SetMerge> {
        let first = kinds.first().context("a set of leaf kinds has a kind")?;
        let common = &first.common;
        ensure!(
            common.num_public_inputs == RANGE_PUBLIC_INPUTS,
            "a leaf kind exposes the {RANGE_PUBLIC_INPUTS} inputs of a range statement, not {}",
            common.num_public_inputs
        );
        for (i, k) in kinds.iter().enumerate() {
            ensure!(
                k.common == *common,
                "leaf kind {i} is not of the set's shape (degree 2^{} and {} gate types against \
                 2^{} and {}): build every kind with the same LeafShape",
                k.common.degree_bits(),
                k.common.gates.len(),
                common.degree_bits(),
                common.gates.len()
            );
        }
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let mut set: Vec<VerifierCircuitTarget> = kinds
            .iter()
            .map(|k| b.constant_verifier_data(&k.verifier_only))
            .collect();
        // A random access reads a power-of-two vector: the padding repeats the last kind, so
        // every index the gate admits names a kind of the set.
        while !set.len().is_power_of_two() || set.len() < 2 {
            let last = set.last().cloned().expect("a kind");
            set.push(last);
        }
        let child = |b: &mut CircuitBuilder<F, D>| {
            let index = b.add_virtual_target();
            let vd = b.random_access_verifier_data(index, set.clone());
            let proof = b.add_virtual_proof_with_pis(common);
            b.verify_proof::<C>(&proof, &vd, common);
            (proof, index)
        };
        let left = child(&mut b);
        let right = child(&mut b);
        merge_statements(&mut b, &left.0, &right.0);
        Ok(SetMerge {
            data: b.build::<C>(),
            kinds: kinds.len(),
            left,
            right,
        })
    }

    /// Proves the merge of `left` then `right`, each a proof and the index of its kind; checks
    /// natively first that the kinds exist and the ranges are adjacent.
    pub fn prove(
        &self,
        left: (&ProofWithPublicInputs<F, C, D>, usize),
        right: (&ProofWithPublicInputs<F, C, D>, usize),
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        for (_, kind) in [left, right] {
            ensure!(
                kind < self.kinds,
                "leaf kind {kind} is not in the set ({} kinds)",
                self.kinds
            );
        }
        let l = RangeStatement::from_fields(&left.0.public_inputs)
            .context("left proof has the wrong public inputs")?;
        let r = RangeStatement::from_fields(&right.0.public_inputs)
            .context("right proof has the wrong public inputs")?;
        check_continuity(&l, &r)?;
        self.prove_unchecked(left, right)
    }

    /// Proves without the native checks (what a dishonest prover would run): the circuit alone
    /// decides.
    pub fn prove_unchecked(
        &self,
        left: (&ProofWithPublicInputs<F, C, D>, usize),
        right: (&ProofWithPublicInputs<F, C, D>, usize),
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let mut pw = PartialWitness::new();
        for ((proof, kind), (target, index)) in [(left, &self.left), (right, &self.right)] {
            pw.set_proof_with_pis_target(target, proof)?;
            pw.set_target(*index, F::from_canonical_usize(kind))?;
        }
        self.data.prove(pw)
    }
}

#[cfg(test)]
mod tests;
