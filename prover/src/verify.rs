//! Verifying a batch proof against the statement the caller expects.
//!
//! A batch proof is `"RBPF" | version (1) | top level (1) | plonky2 proof bytes` where the proof
//! is one of the final circuit of that top level (see [`crate::circuits::aggregate`]). Its only
//! public inputs are `BatchStatement::digest()`; [`verify_batch_proof`] checks that they equal
//! the digest of the statement the caller expects (from its own records: the node's batch row,
//! the bridge's L1 view) and that the proof verifies against the final circuit. Untrusted bytes
//! never panic: every failure is a [`VerifyError`].

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
