//! Recursive aggregation: 2-to-1 merge circuits and the final (wrap-ready) circuit.
//!
//! A batch has `2^L` leaves (the witness generator pads). Level 0 is the leaf circuit; a level
//! `l >= 1` merge circuit verifies two proofs of level `l - 1` (their verifier data is a constant
//! of the circuit, so a merge only accepts proofs of exactly the circuit below it) and checks the
//! continuity rules of [`crate::circuits::public`]; it registers the merged [`RangeStatement`]
//! (31 public inputs), so every level has the same public-input layout. The final circuit for top
//! level `L` verifies one level-`L` proof (the root of the tree), requires
//! `pubdata_in == withdrawals_in == ZERO` (a whole batch), and exposes only the four elements of
//! [`BatchStatement::digest`], computed in-circuit with Poseidon. Merge and final circuits use
//! plonky2's standard recursion configuration and standard gates only; the final circuit is the
//! wrap-ready stage-1 proof of DESIGN.md.
//!
//! [`Circuits`] is the registry: the leaf circuit plus merge and final circuits built (or loaded
//! from the [`CircuitCache`]) lazily per level. A circuit's cache key names everything it is
//! built from: [`AGGREGATION_VERSION`], its level, and the circuit digest of the circuit it
//! verifies (which, by induction, pins the leaf circuit too).
//!
//! A registry may be given the deployment's pins ([`Circuits::with_pins`], a
//! [`CircuitPins`] manifest): every final circuit it serves must then be pinned and have exactly
//! the pinned [`CircuitFingerprint`] (merge circuits are checked when the manifest names them),
//! whether it comes from the cache or from a build; otherwise it is refused (see
//! [`crate::cache`]), so a prover built from other code never proves for that deployment.

use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context};
use plonky2::field::types::PrimeField64;
use plonky2::hash::hash_types::HashOut;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{
    CircuitConfig, CircuitData, CommonCircuitData, VerifierCircuitData, VerifierOnlyCircuitData,
};
use plonky2::plonk::proof::{ProofWithPublicInputs, ProofWithPublicInputsTarget};

use crate::cache::{CircuitCache, CircuitSpec};
use crate::circuits::leaf::LeafCircuit;
use crate::circuits::public::{
    BatchStatement, RangeStatement, RangeStatementTargets, RANGE_PUBLIC_INPUTS,
};
use crate::pins::{CircuitFingerprint, CircuitPins};
use crate::{C, D, F};

/// Version of the merge/final circuit definitions; bump it whenever their constraints change
/// (it is part of every cache key).
pub const AGGREGATION_VERSION: &str = "aggregate-v2";

/// Most aggregation levels (2^24 leaves).
pub const MAX_LEVEL: u32 = 24;

/// Number of public inputs of the final circuit: `BatchStatement::digest()`.
pub const FINAL_PUBLIC_INPUTS: usize = 4;

fn hex_digest(h: &HashOut<F>) -> String {
    h.elements
        .iter()
        .map(|e| format!("{:016x}", e.to_canonical_u64()))
        .collect()
}

/// Checks natively what a merge circuit checks, for a clear error before proving.
pub fn check_continuity(l: &RangeStatement, r: &RangeStatement) -> anyhow::Result<()> {
    let mut broken = Vec::new();
    if l.new_root != r.old_root {
        broken.push("state root");
    }
    if l.pubdata_out != r.pubdata_in {
        broken.push("pubdata chain");
    }
    if l.withdrawals_out != r.withdrawals_in {
        broken.push("withdrawals chain");
    }
    if l.deposits_next != r.deposits_first {
        broken.push("deposits counter");
    }
    if l.entries_out != r.entries_in {
        broken.push("priority entries chain");
    }
    if l.timestamp != r.timestamp {
        broken.push("timestamp");
    }
    if l.domain != r.domain {
        broken.push("domain");
    }
    if broken.is_empty() {
        Ok(())
    } else {
        bail!("ranges are not continuous: {}", broken.join(", "))
    }
}

/// The statement of a merge of `l` then `r` (what the merge circuit registers).
pub fn merged_statement(l: &RangeStatement, r: &RangeStatement) -> RangeStatement {
    RangeStatement {
        old_root: l.old_root,
        new_root: r.new_root,
        pubdata_in: l.pubdata_in,
        pubdata_out: r.pubdata_out,
        withdrawals_in: l.withdrawals_in,
        withdrawals_out: r.withdrawals_out,
        deposits_first: l.deposits_first,
        deposits_next: r.deposits_next,
        timestamp: l.timestamp,
        domain: l.domain,
        entries_in: l.entries_in,
        entries_out: r.entries_out,
    }
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
        let l = RangeStatementTargets::from_targets(&left.public_inputs);
        let r = RangeStatementTargets::from_targets(&right.public_inputs);
        b.connect_hashes(l.new_root, r.old_root);
        b.connect_hashes(l.pubdata_out, r.pubdata_in);
        b.connect_hashes(l.withdrawals_out, r.withdrawals_in);
        b.connect(l.deposits_next, r.deposits_first);
        b.connect(l.timestamp, r.timestamp);
        b.connect_hashes(l.domain, r.domain);
        b.connect_hashes(l.entries_out, r.entries_in);
        RangeStatementTargets {
            old_root: l.old_root,
            new_root: r.new_root,
            pubdata_in: l.pubdata_in,
            pubdata_out: r.pubdata_out,
            withdrawals_in: l.withdrawals_in,
            withdrawals_out: r.withdrawals_out,
            deposits_first: l.deposits_first,
            deposits_next: r.deposits_next,
            timestamp: l.timestamp,
            domain: l.domain,
            entries_in: l.entries_in,
            entries_out: r.entries_out,
        }
        .register(&mut b);
        (b, left, right)
    }

    /// The cache key of the level-`level` merge over `inner`.
    pub fn key(level: u32, inner: &CircuitData<F, C, D>) -> String {
        format!(
            "{AGGREGATION_VERSION}/merge/level={level}/inner={}/config=standard_recursion",
            hex_digest(&inner.verifier_only.circuit_digest)
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

/// The final circuit over a top level: one public input hash ([`BatchStatement::digest`]).
pub struct FinalCircuit {
    pub top_level: u32,
    pub data: CircuitData<F, C, D>,
    pub verifier: Arc<VerifierCircuitData<F, C, D>>,
    /// SHA-256 of its complete verifier data ([`crate::pins`]): what deployments pin.
    pub fingerprint: CircuitFingerprint,
    root: ProofWithPublicInputsTarget<D>,
}

impl FinalCircuit {
    fn construct(
        inner_common: &CommonCircuitData<F, D>,
        inner_vd: &VerifierOnlyCircuitData<C, D>,
    ) -> (CircuitBuilder<F, D>, ProofWithPublicInputsTarget<D>) {
        assert_eq!(inner_common.num_public_inputs, RANGE_PUBLIC_INPUTS);
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let vd = b.constant_verifier_data(inner_vd);
        let root = b.add_virtual_proof_with_pis(inner_common);
        b.verify_proof::<C>(&root, &vd, inner_common);
        let s = RangeStatementTargets::from_targets(&root.public_inputs);
        s.assert_starts_batch(&mut b);
        // The same 27 elements, in the same order, as `BatchStatement::digest`.
        let mut v = Vec::with_capacity(27);
        for h in [s.old_root, s.new_root, s.pubdata_out, s.withdrawals_out] {
            v.extend_from_slice(&h.elements);
        }
        v.push(s.deposits_first);
        v.push(s.deposits_next);
        v.push(s.timestamp);
        v.extend_from_slice(&s.domain.elements);
        v.extend_from_slice(&s.entries_out.elements);
        let digest = b.hash_n_to_hash_no_pad::<PoseidonHash>(v);
        b.register_public_inputs(&digest.elements);
        (b, root)
    }

    pub fn key(top_level: u32, inner: &CircuitData<F, C, D>) -> String {
        format!(
            "{AGGREGATION_VERSION}/final/top={top_level}/inner={}/config=standard_recursion",
            hex_digest(&inner.verifier_only.circuit_digest)
        )
    }

    /// Loads the circuit from `cache` or builds it; `pinned` = the fingerprint it must have.
    pub fn build_or_load(
        top_level: u32,
        inner: &CircuitData<F, C, D>,
        cache: &CircuitCache,
        pinned: Option<CircuitFingerprint>,
    ) -> anyhow::Result<FinalCircuit> {
        let (b, root) = Self::construct(&inner.common, &inner.verifier_only);
        let key = Self::key(top_level, inner);
        let name = format!("final-{top_level}");
        let spec = CircuitSpec {
            name: &name,
            key: &key,
            num_public_inputs: FINAL_PUBLIC_INPUTS,
            pinned,
        };
        let (data, fingerprint) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        let verifier = Arc::new(data.verifier_data());
        Ok(FinalCircuit {
            top_level,
            data,
            verifier,
            fingerprint,
            root,
        })
    }

    /// Proves the final statement from the root proof of a whole batch.
    pub fn prove(
        &self,
        root: &ProofWithPublicInputs<F, C, D>,
    ) -> anyhow::Result<(ProofWithPublicInputs<F, C, D>, BatchStatement)> {
        let rs = RangeStatement::from_fields(&root.public_inputs)
            .context("root proof has the wrong public inputs")?;
        let statement = BatchStatement::from_range(&rs)
            .context("the root proof does not cover a whole batch (pubdata/withdrawals chains do not start at zero)")?;
        let mut pw = PartialWitness::new();
        pw.set_proof_with_pis_target(&self.root, root)?;
        let proof = self.data.prove(pw)?;
        Ok((proof, statement))
    }
}

/// Every circuit of the proof system, built or loaded lazily per level.
pub struct Circuits<L: LeafCircuit> {
    leaf: L,
    cache: CircuitCache,
    merges: Vec<OnceLock<Arc<MergeCircuit>>>,
    finals: Vec<OnceLock<Arc<FinalCircuit>>>,
    build_lock: Mutex<()>,
    pins: Option<CircuitPins>,
}

impl<L: LeafCircuit> Circuits<L> {
    pub fn new(leaf: L, cache: CircuitCache) -> Circuits<L> {
        let n = MAX_LEVEL as usize + 1;
        Circuits {
            leaf,
            cache,
            merges: (0..n).map(|_| OnceLock::new()).collect(),
            finals: (0..n).map(|_| OnceLock::new()).collect(),
            build_lock: Mutex::new(()),
            pins: None,
        }
    }

    /// Serves only the circuits `pins` names (final circuits must be pinned; merge circuits are
    /// checked when named), each with exactly its pinned fingerprint.
    pub fn with_pins(mut self, pins: CircuitPins) -> anyhow::Result<Circuits<L>> {
        pins.check_serializers(self.cache.serializers())?;
        self.pins = Some(pins);
        Ok(self)
    }

    /// The pins this registry serves, if any.
    pub fn pins(&self) -> Option<&CircuitPins> {
        self.pins.as_ref()
    }

    pub fn leaf(&self) -> &L {
        &self.leaf
    }

    pub fn cache(&self) -> &CircuitCache {
        &self.cache
    }

    fn check_level(level: u32) -> anyhow::Result<()> {
        if level > MAX_LEVEL {
            bail!("aggregation level {level} is above the maximum {MAX_LEVEL}");
        }
        Ok(())
    }

    /// The merge circuit of `level` (>= 1).
    pub fn merge(&self, level: u32) -> anyhow::Result<Arc<MergeCircuit>> {
        Self::check_level(level)?;
        if level == 0 {
            bail!("level 0 is the leaf circuit, not a merge");
        }
        if let Some(c) = self.merges[level as usize].get() {
            return Ok(c.clone());
        }
        // Build the levels below first (without holding the lock: they take it themselves).
        let below = if level > 1 {
            Some(self.merge(level - 1)?)
        } else {
            None
        };
        let _guard = self.build_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = self.merges[level as usize].get() {
            return Ok(c.clone());
        }
        let inner = below.as_ref().map_or(self.leaf.data(), |m| &m.data);
        let pinned = self
            .pins
            .as_ref()
            .and_then(|p| p.get(&format!("merge-{level}")));
        let c = Arc::new(MergeCircuit::build_or_load(
            level,
            inner,
            &self.cache,
            pinned,
        )?);
        let _ = self.merges[level as usize].set(c.clone());
        Ok(c)
    }

    /// The final circuit over a root proof of `top_level` (0 = a single-leaf batch).
    pub fn final_circuit(&self, top_level: u32) -> anyhow::Result<Arc<FinalCircuit>> {
        Self::check_level(top_level)?;
        if let Some(c) = self.finals[top_level as usize].get() {
            return Ok(c.clone());
        }
        let name = CircuitPins::final_name(top_level);
        let pinned = match &self.pins {
            None => None,
            Some(p) => match p.get(&name) {
                Some(fp) => Some(fp),
                None => bail!(
                    "{name} is not in the circuit pins (they pin {}): refusing to serve it",
                    p.circuits.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            },
        };
        let below = if top_level > 0 {
            Some(self.merge(top_level)?)
        } else {
            None
        };
        let _guard = self.build_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = self.finals[top_level as usize].get() {
            return Ok(c.clone());
        }
        let inner = below.as_ref().map_or(self.leaf.data(), |m| &m.data);
        let c = Arc::new(FinalCircuit::build_or_load(
            top_level,
            inner,
            &self.cache,
            pinned,
        )?);
        let _ = self.finals[top_level as usize].set(c.clone());
        Ok(c)
    }

    /// Builds (or loads) every circuit up to the final one of `top_level`.
    pub fn warm_up(&self, top_level: u32) -> anyhow::Result<()> {
        self.final_circuit(top_level).map(|_| ())
    }

    /// Common data of the proofs of `level` (0 = leaf), to deserialize them.
    pub fn common(&self, level: u32) -> anyhow::Result<CommonCircuitData<F, D>> {
        Ok(if level == 0 {
            self.leaf.data().common.clone()
        } else {
            self.merge(level)?.data.common.clone()
        })
    }

    fn read_proof(
        &self,
        level: u32,
        bytes: &[u8],
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let common = self.common(level)?;
        ProofWithPublicInputs::from_bytes(bytes.to_vec(), &common)
            .map_err(|e| anyhow::anyhow!("level-{level} proof does not deserialize: {e:?}"))
    }

    /// Proves one leaf; returns the serialized proof and its statement.
    pub fn prove_leaf(&self, witness: &L::Witness) -> anyhow::Result<(Vec<u8>, RangeStatement)> {
        let proof = self.leaf.prove(witness)?;
        let s = RangeStatement::from_fields(&proof.public_inputs)
            .context("the leaf circuit does not expose a range statement")?;
        Ok((proof.to_bytes(), s))
    }

    /// Proves the merge at `level` of two serialized level `level - 1` proofs.
    pub fn prove_merge(
        &self,
        level: u32,
        left: &[u8],
        right: &[u8],
    ) -> anyhow::Result<(Vec<u8>, RangeStatement)> {
        let circuit = self.merge(level)?;
        let l = self.read_proof(level - 1, left)?;
        let r = self.read_proof(level - 1, right)?;
        let proof = circuit.prove(&l, &r)?;
        let s = RangeStatement::from_fields(&proof.public_inputs)
            .context("merge proof without a range statement")?;
        Ok((proof.to_bytes(), s))
    }

    /// Proves the final proof from a serialized root proof of `top_level`; returns the batch
    /// proof in the format [`crate::verify::verify_batch_proof`] reads.
    pub fn prove_final(
        &self,
        top_level: u32,
        root: &[u8],
    ) -> anyhow::Result<(Vec<u8>, BatchStatement)> {
        let circuit = self.final_circuit(top_level)?;
        let r = self.read_proof(top_level, root)?;
        let (proof, statement) = circuit.prove(&r)?;
        Ok((
            crate::verify::encode_batch_proof(top_level, &proof),
            statement,
        ))
    }
}

impl<L: LeafCircuit> crate::verify::FinalVerifiers for Circuits<L> {
    fn final_verifier(&self, top_level: u32) -> anyhow::Result<Arc<VerifierCircuitData<F, C, D>>> {
        Ok(self.final_circuit(top_level)?.verifier.clone())
    }
}
