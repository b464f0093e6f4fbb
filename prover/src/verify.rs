//! Verifying a batch proof against the statement the caller expects.
//!
//! A batch proof is `"RBPF" | version (2) | top level (1) | plonky2 proof bytes` where the proof
//! is one of the final (settlement) circuit of that top level (see
//! [`crate::circuits::settlement`]). Its only public inputs are the SHA-256 of the 252-byte L1
//! statement (`state::settlement::BatchStatement`, SPEC 15.3) as eight words;
//! [`verify_batch_proof`] checks that they are those of the statement the caller expects (from
//! its own records: the node's batch row and L1 watcher, what the contract computes at commit)
//! and that the proof verifies against the final circuit. Untrusted bytes never panic: every
//! failure is a [`VerifyError`].
//!
//! Which final circuit: a [`VerifierSet`] is loaded from a directory of exported verifier files
//! only against the deployment's pins ([`CircuitPins`], see [`crate::pins`]): each file's
//! fingerprint (SHA-256 of its complete verifier data, so also the gates, the config and the FRI
//! parameters that plonky2's circuit digest leaves out) must be the pinned one.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use plonky2::plonk::circuit_data::VerifierCircuitData;
use plonky2::plonk::proof::ProofWithPublicInputs;

use crate::circuits::aggregate::MAX_LEVEL;
use crate::circuits::settlement::{public_inputs, SETTLEMENT_PUBLIC_INPUTS};
use crate::pins::{CircuitFingerprint, CircuitPins, PinError, PINS_FILE};
use crate::{C, D, F};
use state::settlement::BatchStatement;

const MAGIC: &[u8; 4] = b"RBPF";
/// Version 1 proved a Poseidon digest of the range statement; version 2 the L1 statement.
const VERSION: u8 = 2;

/// Where the verifier data of the final circuits comes from (the [`crate::circuits::registry::Circuits`]
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
    if proof.public_inputs != public_inputs(expected) {
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
/// it, one `final-<level>.verifier` file per top level, plus the manifest `circuits.json` with
/// their fingerprints).
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

    /// The fingerprints of the set's verifiers, as a pins manifest.
    pub fn pins(&self, serializers: &crate::cache::Serializers) -> anyhow::Result<CircuitPins> {
        let mut pins = CircuitPins::new(serializers);
        for (l, vd) in &self.levels {
            pins.insert(
                CircuitPins::final_name(*l),
                CircuitFingerprint::of_verifier(vd, serializers.gates.as_ref())?,
            );
        }
        Ok(pins)
    }

    /// Writes one `final-<level>.verifier` per level and the manifest `circuits.json` with
    /// their fingerprints (what a deployment pins: `--circuit-pins`); returns the manifest.
    /// Refuses a directory holding verifier files of other levels (they would be unpinned).
    pub fn write_dir(
        &self,
        dir: &Path,
        serializers: &crate::cache::Serializers,
    ) -> anyhow::Result<CircuitPins> {
        std::fs::create_dir_all(dir)?;
        for (level, path) in verifier_files(dir)? {
            anyhow::ensure!(
                self.levels.contains_key(&level),
                "{} is not in the exported set: remove it or export to an empty directory",
                path.display()
            );
        }
        let mut pins = CircuitPins::new(serializers);
        for (l, vd) in &self.levels {
            let bytes = vd
                .to_bytes(serializers.gates.as_ref())
                .map_err(|e| anyhow::anyhow!("serializing final-{l} verifier: {e:?}"))?;
            pins.insert(
                CircuitPins::final_name(*l),
                CircuitFingerprint::of_verifier_bytes(&bytes),
            );
            std::fs::write(dir.join(format!("final-{l}.verifier")), bytes)?;
        }
        pins.write(&dir.join(PINS_FILE))?;
        Ok(pins)
    }

    /// Loads the final verifiers of `dir` against `pins` (the deployment's manifest): every
    /// `final-<level>.verifier` file must be pinned ([`PinError::Unpinned`]) with exactly its
    /// fingerprint ([`PinError::Mismatch`], checked on the file's bytes before they are parsed),
    /// every pinned final level must have its file ([`PinError::Missing`]), and each verifier must
    /// be self-consistent (circuit digest recomputed from its constants cap) with the final
    /// layout. Errors name the file and both fingerprints; nothing is accepted partially.
    pub fn load_dir(
        dir: &Path,
        serializers: &crate::cache::Serializers,
        pins: &CircuitPins,
    ) -> anyhow::Result<VerifierSet> {
        pins.check_serializers(serializers)?;
        let mut set = VerifierSet::default();
        for (level, path) in verifier_files(dir)? {
            let bytes = std::fs::read(&path)?;
            let found = CircuitFingerprint::of_verifier_bytes(&bytes);
            pins.check(
                &CircuitPins::final_name(level),
                &path.display().to_string(),
                found,
            )?;
            let vd = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                VerifierCircuitData::<F, C, D>::from_bytes(bytes, serializers.gates.as_ref())
            }))
            .map_err(|_| anyhow::anyhow!("{} does not deserialize", path.display()))?
            .map_err(|e| anyhow::anyhow!("{} does not deserialize: {e:?}", path.display()))?;
            anyhow::ensure!(
                crate::cache::recompute_digest(&vd.verifier_only, &vd.common)
                    == vd.verifier_only.circuit_digest
                    && vd.common.num_public_inputs == SETTLEMENT_PUBLIC_INPUTS,
                "{} is not a consistent final verifier",
                path.display()
            );
            tracing::info!(path = %path.display(), fingerprint = %found, "pinned final verifier loaded");
            set.levels.insert(level, Arc::new(vd));
        }
        for (name, pinned) in &pins.circuits {
            let Some(level) = name
                .strip_prefix("final-")
                .and_then(|l| l.parse::<u32>().ok())
            else {
                continue;
            };
            if !set.levels.contains_key(&level) {
                return Err(PinError::Missing {
                    what: dir.join(format!("{name}.verifier")).display().to_string(),
                    pinned: *pinned,
                }
                .into());
            }
        }
        anyhow::ensure!(
            !set.levels.is_empty(),
            "no final verifier in {} (the pins name none)",
            dir.display()
        );
        Ok(set)
    }

    /// [`VerifierSet::load_dir`] against the directory's own manifest (`circuits.json`): only a
    /// consistency check of files with their manifest, for development (devnet, local
    /// verification); a deployment pins its circuits with a manifest it keeps elsewhere.
    pub fn load_dir_self_pinned(
        dir: &Path,
        serializers: &crate::cache::Serializers,
    ) -> anyhow::Result<VerifierSet> {
        let pins = CircuitPins::load(&dir.join(PINS_FILE))?;
        VerifierSet::load_dir(dir, serializers, &pins)
    }
}

/// The `final-<level>.verifier` files of `dir`, by level.
fn verifier_files(dir: &Path) -> anyhow::Result<BTreeMap<u32, std::path::PathBuf>> {
    let mut files = BTreeMap::new();
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
        // One file per level: `final-02.verifier` is not level 2's file.
        if path.file_name().and_then(|n| n.to_str()) != Some(&format!("final-{level}.verifier")) {
            continue;
        }
        files.insert(level, path);
    }
    Ok(files)
}

impl FinalVerifiers for VerifierSet {
    fn final_verifier(&self, top_level: u32) -> anyhow::Result<Arc<VerifierCircuitData<F, C, D>>> {
        self.levels
            .get(&top_level)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no final verifier for top level {top_level}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Serializers;
    use crate::pins::tests::tiny;
    use plonky2::field::types::Field;
    use plonky2::iop::witness::{PartialWitness, WitnessWrite};
    use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};

    fn set_of(levels: Vec<(u32, &CircuitData<F, C, D>)>) -> VerifierSet {
        VerifierSet {
            levels: levels
                .into_iter()
                .map(|(l, d)| (l, Arc::new(d.verifier_data())))
                .collect(),
        }
    }

    fn pin_error(r: anyhow::Result<VerifierSet>) -> PinError {
        match r {
            Ok(_) => panic!("loaded"),
            Err(e) => e
                .downcast::<PinError>()
                .unwrap_or_else(|e| panic!("not a pin error: {e:#}")),
        }
    }

    #[test]
    fn verifier_files_are_checked_against_their_pins() {
        let ser = Serializers::rollup();
        let a = tiny(2, CircuitConfig::standard_recursion_config());
        let b = tiny(5, CircuitConfig::standard_recursion_config());
        let dir = tempfile::tempdir().unwrap();
        let pins = set_of(vec![(0, &a), (2, &b)])
            .write_dir(dir.path(), &ser)
            .unwrap();
        assert_eq!(pins.final_levels().collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(
            pins.get("final-2"),
            Some(CircuitFingerprint::of_circuit(&b, ser.gates.as_ref()).unwrap())
        );
        // The honest set loads, with the manifest written next to it or a copy of it.
        let loaded = VerifierSet::load_dir(dir.path(), &ser, &pins).unwrap();
        assert_eq!(loaded.levels().collect::<Vec<_>>(), vec![0, 2]);
        VerifierSet::load_dir_self_pinned(dir.path(), &ser).unwrap();
        let f2 = dir.path().join("final-2.verifier");
        let honest = std::fs::read(&f2).unwrap();

        // final-2 with FRI query rounds lowered to 1: the same circuit digest (plonky2's digest
        // covers only the constants/sigmas cap and the degree), so the old self-consistency
        // check passes, and it verifies proofs made with a single query round.
        // (The builder refuses parameters below its security target, so lower that too: it is
        // not used by the verifier.)
        let mut cfg = CircuitConfig::standard_recursion_config();
        cfg.fri_config.num_query_rounds = 1;
        cfg.security_bits = 1;
        let b_weak = tiny(5, cfg);
        let weak = b_weak.verifier_data();
        assert_eq!(
            weak.verifier_only.circuit_digest,
            b.verifier_only.circuit_digest
        );
        assert_eq!(
            weak.verifier_only.constants_sigmas_cap,
            b.verifier_only.constants_sigmas_cap
        );
        assert_eq!(
            crate::cache::recompute_digest(&weak.verifier_only, &weak.common),
            weak.verifier_only.circuit_digest
        );
        let mut pw = PartialWitness::new();
        pw.set_target(
            b_weak.prover_only.public_inputs[0],
            F::from_canonical_u64(3),
        )
        .unwrap();
        let weak_proof = b_weak.prove(pw).unwrap();
        assert!(b.verifier_data().verify(weak_proof.clone()).is_err());
        weak.verify(weak_proof).unwrap();
        let weak_bytes = weak.to_bytes(ser.gates.as_ref()).unwrap();
        std::fs::write(&f2, &weak_bytes).unwrap();
        let e = pin_error(VerifierSet::load_dir(dir.path(), &ser, &pins));
        assert_eq!(
            e,
            PinError::Mismatch {
                what: f2.display().to_string(),
                pinned: pins.get("final-2").unwrap(),
                found: CircuitFingerprint::of_verifier_bytes(&weak_bytes),
            }
        );
        let msg = e.to_string();
        assert!(
            msg.contains("final-2.verifier")
                && msg.contains(&pins.get("final-2").unwrap().to_string())
        );

        // final-2 swapped for another (self-consistent, same layout) circuit's verifier.
        std::fs::write(
            &f2,
            std::fs::read(dir.path().join("final-0.verifier")).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            pin_error(VerifierSet::load_dir(dir.path(), &ser, &pins)),
            PinError::Mismatch { .. }
        ));
        std::fs::write(&f2, &honest).unwrap();

        // A file the pins do not name.
        let f3 = dir.path().join("final-3.verifier");
        std::fs::write(&f3, &honest).unwrap();
        assert!(matches!(
            pin_error(VerifierSet::load_dir(dir.path(), &ser, &pins)),
            PinError::Unpinned { .. }
        ));
        // ... which also makes a new export into the directory refuse.
        assert!(set_of(vec![(2, &b)]).write_dir(dir.path(), &ser).is_err());
        std::fs::remove_file(&f3).unwrap();

        // A pinned level whose file is missing.
        std::fs::remove_file(&f2).unwrap();
        assert!(matches!(
            pin_error(VerifierSet::load_dir(dir.path(), &ser, &pins)),
            PinError::Missing { .. }
        ));
        std::fs::write(&f2, &honest).unwrap();

        // Pins of other serializers never match.
        let mut other = pins.clone();
        other.serializers = "plonky2-default".into();
        assert!(matches!(
            pin_error(VerifierSet::load_dir(dir.path(), &ser, &other)),
            PinError::Serializers { .. }
        ));
        VerifierSet::load_dir(dir.path(), &ser, &pins).unwrap();
    }
}
