//! Recursive aggregation of the transactions' range proofs: 2-to-1 merge circuits.
//!
//! A batch has `2^L` leaves (the planner pads). Level 0 is the leaf circuit; a level `l >= 1`
//! merge circuit verifies two proofs of level `l - 1` (their verifier data is a constant of the
//! circuit, so a merge only accepts proofs of exactly the circuit below it) and checks the
//! continuity rules of [`crate::circuits::public`]; it registers the merged [`RangeStatement`]
//! (55 public inputs), so every level has the same public-input layout. Merge circuits use
//! plonky2's standard recursion configuration and standard gates only. The root of the tree is
//! verified by the settlement circuit ([`crate::circuits::settlement`]) beside the diff,
//! priority and payout roots.
//!
//! A merge circuit's cache key names everything it is built from: [`AGGREGATION_VERSION`], its
//! level, and the circuit digest of the circuit it verifies (which, by induction, pins the leaf
//! circuit too). The registry of every circuit is [`crate::circuits::registry::Circuits`].

use anyhow::{bail, Context};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{
    CircuitConfig, CircuitData, CommonCircuitData, VerifierOnlyCircuitData,
};
use plonky2::plonk::proof::{ProofWithPublicInputs, ProofWithPublicInputsTarget};

use crate::cache::{circuit_digest_hex, CircuitCache, CircuitSpec};
use crate::circuits::public::{RangeStatement, RangeStatementTargets, RANGE_PUBLIC_INPUTS};
use crate::pins::CircuitFingerprint;
use crate::{C, D, F};

/// Version of the merge circuit definition; bump it whenever its constraints change (it is
/// part of every cache key).
pub const AGGREGATION_VERSION: &str = "aggregate-v3";

/// Most aggregation levels (2^24 leaves).
pub const MAX_LEVEL: u32 = 24;

/// Checks natively what a merge circuit checks, for a clear error before proving.
pub fn check_continuity(l: &RangeStatement, r: &RangeStatement) -> anyhow::Result<()> {
    let (digests, numbers) = l.links(r);
    let broken: Vec<&str> = digests
        .iter()
        .filter(|(_, x, y)| x != y)
        .map(|(name, _, _)| *name)
        .chain(
            numbers
                .iter()
                .filter(|(_, x, y)| x != y)
                .map(|(name, _, _)| *name),
        )
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        bail!("ranges are not continuous: {}", broken.join(", "))
    }
}

/// Constrains `left` then `right` to be adjacent ranges (the rules of
/// [`crate::circuits::public`], natively [`check_continuity`]) and registers their merged
/// statement ([`Range::merged`](crate::circuits::public::Range::merged)): what every range merge adds after verifying its children.
pub(crate) fn merge_statements(
    b: &mut CircuitBuilder<F, D>,
    left: &ProofWithPublicInputsTarget<D>,
    right: &ProofWithPublicInputsTarget<D>,
) {
    let l = RangeStatementTargets::from_targets(&left.public_inputs);
    let r = RangeStatementTargets::from_targets(&right.public_inputs);
    l.connect_links(&r, b);
    l.merged(&r).register(b);
}

/// A 2-to-1 merge circuit of one level.
pub struct MergeCircuit {
    pub level: u32,
    pub data: CircuitData<F, C, D>,
    /// SHA-256 of its complete verifier data ([`crate::pins`]).
    pub fingerprint: CircuitFingerprint,
    left: ProofWithPublicInputsTarget<D>,
    right: ProofWithPublicInputsTarget<D>,
}

impl MergeCircuit {
    /// The circuit before `build()`: cheap and deterministic, so a cached circuit's targets are
    /// recovered by running it again.
    fn construct(
        inner_common: &CommonCircuitData<F, D>,
        inner_vd: &VerifierOnlyCircuitData<C, D>,
    ) -> (
        CircuitBuilder<F, D>,
        ProofWithPublicInputsTarget<D>,
        ProofWithPublicInputsTarget<D>,
    ) {
        assert_eq!(inner_common.num_public_inputs, RANGE_PUBLIC_INPUTS);
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let vd = b.constant_verifier_data(inner_vd);
        let left = b.add_virtual_proof_with_pis(inner_common);
        let right = b.add_virtual_proof_with_pis(inner_common);
        b.verify_proof::<C>(&left, &vd, inner_common);
        b.verify_proof::<C>(&right, &vd, inner_common);
        merge_statements(&mut b, &left, &right);
        (b, left, right)
    }

    /// The cache key of the level-`level` merge over `inner`.
    pub fn key(level: u32, inner: &CircuitData<F, C, D>) -> String {
        format!(
            "{AGGREGATION_VERSION}/merge/level={level}/inner={}/config=standard_recursion",
            circuit_digest_hex(inner)
        )
    }

    /// Loads the circuit from `cache` or builds it; `pinned` = the fingerprint it must have.
    pub fn build_or_load(
        level: u32,
        inner: &CircuitData<F, C, D>,
        cache: &CircuitCache,
        pinned: Option<CircuitFingerprint>,
    ) -> anyhow::Result<MergeCircuit> {
        let (b, left, right) = Self::construct(&inner.common, &inner.verifier_only);
        let key = Self::key(level, inner);
        let name = format!("merge-{level}");
        let spec = CircuitSpec {
            name: &name,
            key: &key,
            num_public_inputs: RANGE_PUBLIC_INPUTS,
            pinned,
        };
        let (data, fingerprint) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        Ok(MergeCircuit {
            level,
            data,
            fingerprint,
            left,
            right,
        })
    }

    /// Proves the merge of two adjacent inner proofs (`left` first).
    pub fn prove(
        &self,
        left: &ProofWithPublicInputs<F, C, D>,
        right: &ProofWithPublicInputs<F, C, D>,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let ls = RangeStatement::from_fields(&left.public_inputs)
            .context("left proof has the wrong public inputs")?;
        let rs = RangeStatement::from_fields(&right.public_inputs)
            .context("right proof has the wrong public inputs")?;
        check_continuity(&ls, &rs)?;
        let mut pw = PartialWitness::new();
        pw.set_proof_with_pis_target(&self.left, left)?;
        pw.set_proof_with_pis_target(&self.right, right)?;
        self.data.prove(pw)
    }
}
