//! Verifying a batch proof against the statement the caller expects.
//!
//! A batch proof is `"RBPF" | version (1) | top level (1) | plonky2 proof bytes` where the proof
//! is one of the final circuit of that top level (see [`crate::circuits::aggregate`]). Its only
//! public inputs are `BatchStatement::digest()`; [`verify_batch_proof`] checks that they equal
//! the digest of the statement the caller expects (from its own records: the node's batch row,
//! the bridge's L1 view) and that the proof verifies against the final circuit. Untrusted bytes
//! never panic: every failure is a [`VerifyError`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use plonky2::plonk::circuit_data::VerifierCircuitData;
use plonky2::plonk::proof::ProofWithPublicInputs;

use crate::circuits::aggregate::{FINAL_PUBLIC_INPUTS, MAX_LEVEL};
use crate::circuits::public::BatchStatement;
use crate::{C, D, F};

const MAGIC: &[u8; 4] = b"RBPF";
const VERSION: u8 = 1;

/// Where the verifier data of the final circuits comes from (the [`crate::circuits::aggregate::Circuits`]
/// registry, or a set of verifier data loaded elsewhere).
pub trait FinalVerifiers: Send + Sync {
    fn final_verifier(&self, top_level: u32) -> anyhow::Result<Arc<VerifierCircuitData<F, C, D>>>;
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a batch proof (bad header)")]
    Header,
    #[error("unsupported batch proof version {0}")]
    Version(u8),
    #[error("aggregation level {0} is out of range")]
    Level(u8),
    #[error("no verifier for level {level}: {reason}")]
    NoVerifier { level: u32, reason: String },
    #[error("the proof bytes do not deserialize")]
    Malformed,
    #[error("the proof is for another statement (public inputs differ)")]
    StatementMismatch,
    #[error("the proof does not verify: {0}")]
    Invalid(String),
}

/// Serializes a final proof of `top_level`.
pub fn encode_batch_proof(top_level: u32, proof: &ProofWithPublicInputs<F, C, D>) -> Vec<u8> {
    let body = proof.to_bytes();
    let mut out = Vec::with_capacity(body.len() + 6);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(top_level as u8);
    out.extend_from_slice(&body);
    out
}

/// The top level a batch proof claims (from its header).
pub fn batch_proof_level(bytes: &[u8]) -> Result<u32, VerifyError> {
    if bytes.len() < 6 || &bytes[..4] != MAGIC {
        return Err(VerifyError::Header);
    }
    if bytes[4] != VERSION {
        return Err(VerifyError::Version(bytes[4]));
    }
    if u32::from(bytes[5]) > MAX_LEVEL {
        return Err(VerifyError::Level(bytes[5]));
    }
    Ok(u32::from(bytes[5]))
}

/// Verifies that `bytes` is a valid batch proof of exactly `expected`.
pub fn verify_batch_proof(
    verifiers: &dyn FinalVerifiers,
    bytes: &[u8],
    expected: &BatchStatement,
) -> Result<(), VerifyError> {
    let level = batch_proof_level(bytes)?;
    let vd = verifiers
        .final_verifier(level)
        .map_err(|e| VerifyError::NoVerifier {
            level,
            reason: format!("{e:#}"),
        })?;
    let body = bytes[6..].to_vec();
    let proof = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ProofWithPublicInputs::<F, C, D>::from_bytes(body, &vd.common)
    }))
    .map_err(|_| VerifyError::Malformed)?
    .map_err(|_| VerifyError::Malformed)?;
    let want = expected.digest().elements();
    if proof.public_inputs.len() != FINAL_PUBLIC_INPUTS || proof.public_inputs[..] != want[..] {
        return Err(VerifyError::StatementMismatch);
    }
    let vd2 = vd.clone();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || vd2.verify(proof))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(VerifyError::Invalid(e.to_string())),
        Err(_) => Err(VerifyError::Invalid("verifier panicked".into())),
    }
}

/// Verifier data of final circuits, without the circuits below them: what the node and the
/// bridge load to verify batch proofs (`rollup-prover circuits --export-verifiers DIR` writes
/// it, one `final-<level>.verifier` file per top level).
#[derive(Default)]
pub struct VerifierSet {
    levels: BTreeMap<u32, Arc<VerifierCircuitData<F, C, D>>>,
}

impl VerifierSet {
    /// The final verifiers of `levels`, taken from `source` (e.g. the circuit registry).
    pub fn from_source(
        source: &dyn FinalVerifiers,
        levels: impl IntoIterator<Item = u32>,
    ) -> anyhow::Result<VerifierSet> {
        let mut set = VerifierSet::default();
        for l in levels {
            set.levels.insert(l, source.final_verifier(l)?);
        }
        Ok(set)
    }

    pub fn levels(&self) -> impl Iterator<Item = u32> + '_ {
        self.levels.keys().copied()
    }

    pub fn write_dir(
        &self,
        dir: &Path,
        serializers: &crate::cache::Serializers,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (l, vd) in &self.levels {
            let bytes = vd
                .to_bytes(serializers.gates.as_ref())
                .map_err(|e| anyhow::anyhow!("serializing final-{l} verifier: {e:?}"))?;
            std::fs::write(dir.join(format!("final-{l}.verifier")), bytes)?;
        }
        Ok(())
    }

    /// Loads every `final-<level>.verifier` in `dir`; each must be self-consistent (its
    /// circuit digest recomputed from its constants cap) and have the final layout.
    pub fn load_dir(
        dir: &Path,
        serializers: &crate::cache::Serializers,
    ) -> anyhow::Result<VerifierSet> {
        let mut set = VerifierSet::default();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(level) = path.file_name().and_then(|n| n.to_str()).and_then(|n| {
                n.strip_prefix("final-")?
                    .strip_suffix(".verifier")?
                    .parse::<u32>()
                    .ok()
            }) else {
                continue;
            };
            let bytes = std::fs::read(&path)?;
            let vd = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                VerifierCircuitData::<F, C, D>::from_bytes(bytes, serializers.gates.as_ref())
            }))
            .map_err(|_| anyhow::anyhow!("{} does not deserialize", path.display()))?
            .map_err(|e| anyhow::anyhow!("{} does not deserialize: {e:?}", path.display()))?;
            anyhow::ensure!(
                crate::cache::recompute_digest(&vd.verifier_only, &vd.common)
                    == vd.verifier_only.circuit_digest
                    && vd.common.num_public_inputs == FINAL_PUBLIC_INPUTS,
                "{} is not a consistent final verifier",
                path.display()
            );
            set.levels.insert(level, Arc::new(vd));
        }
        Ok(set)
    }
}

impl FinalVerifiers for VerifierSet {
    fn final_verifier(&self, top_level: u32) -> anyhow::Result<Arc<VerifierCircuitData<F, C, D>>> {
        self.levels
            .get(&top_level)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no final verifier for top level {top_level}"))
    }
}
