//! Verifying a batch proof against the statement the caller expects.
//!
//! A batch proof is `"RBPF" | version (2) | top level (1) | plonky2 proof bytes` where the proof
//! is one of the final (settlement) circuit of that top level for version 1 diffs (see
//! [`crate::circuits::settlement`]), or `"RBPF" | 3 | top level | kind (1) | proof` for the
//! other final circuits ([`FinalId`]): the kind byte's low bits name the diff circuit (0: `v1`,
//! 1: `v4`, 2: `v4-agents`, 3: `v4-shares`) and its high bit ([`SPLITS_BIT`]) a final circuit that verifies a
//! split-credit chain; `v1` without splits always has a version 2 header. Its only public
//! inputs are the SHA-256 of the 252-byte L1
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
use crate::pins::{CircuitFingerprint, CircuitPins, FinalId, PinError, PINS_FILE};
use crate::{C, D, F};
use rollup_storage::DiffCircuitKind;
use state::settlement::BatchStatement;

const MAGIC: &[u8; 4] = b"RBPF";
/// Version 1 proved a Poseidon digest of the range statement; version 2 the L1 statement
/// (final circuits of version 1 diffs); version 3 adds the diff kind byte.
const VERSION: u8 = 2;
const VERSION_KIND: u8 = 3;

/// The bit of a version 3 header's kind byte that names a final circuit verifying a
/// split-credit chain.
pub const SPLITS_BIT: u8 = 0x80;
/// The kind byte's bit of a final circuit that verifies a tick-walk tree (SPEC 18.7).
pub const WALKS_BIT: u8 = 0x40;

/// The diff kind's code in a version 3 header's kind byte (its low bits); also the kind's
/// place among the registry's final circuits.
pub(crate) fn kind_code(kind: DiffCircuitKind) -> u8 {
    match kind {
        DiffCircuitKind::V1 => 0,
        DiffCircuitKind::V4 => 1,
        DiffCircuitKind::V4Agents => 2,
        DiffCircuitKind::V4Shares => 3,
    }
}

/// Where the verifier data of the final circuits comes from (the [`crate::circuits::registry::Circuits`]
/// registry, or a set of verifier data loaded elsewhere).
pub trait FinalVerifiers: Send + Sync {
    fn final_verifier(&self, id: FinalId) -> anyhow::Result<Arc<VerifierCircuitData<F, C, D>>>;

    /// Transactions per leaf of the circuits below the finals, when known: with the finals'
    /// levels, what one batch can hold ([`crate::capacity::BatchCapacity`]).
    fn leaf_size(&self) -> Option<usize> {
        None
    }

    /// Lanes per tick-walk chunk of the circuits below the finals, when known (`None`: the
    /// leaf size's default, [`crate::circuits::trees::ChunkShape::for_leaf`]).
    fn walk_lanes(&self) -> Option<usize> {
        None
    }

    /// The shape of the leaf's policy checks below the finals, when known.
    fn leaf_policies(&self) -> Option<crate::circuits::payment::PolicyChecks> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a batch proof (bad header)")]
    Header,
    #[error("unsupported batch proof version {0}")]
    Version(u8),
    #[error("aggregation level {0} is out of range")]
    Level(u8),
    #[error("unknown final circuit kind byte {0:#04x}")]
    Kind(u8),
    #[error("no verifier for {id}: {reason}")]
    NoVerifier { id: FinalId, reason: String },
    #[error("the proof bytes do not deserialize")]
    Malformed,
    #[error("the proof is for another statement (public inputs differ)")]
    StatementMismatch,
    #[error("the proof does not verify: {0}")]
    Invalid(String),
}

/// Serializes a proof of the final circuit `id` (version 2 for version 1 diffs without side
/// trees, so that their proofs are the bytes they always were; version 3 otherwise).
pub fn encode_batch_proof(id: FinalId, proof: &ProofWithPublicInputs<F, C, D>) -> Vec<u8> {
    let mut out = header(id);
    out.extend_from_slice(&proof.to_bytes());
    out
}

/// The header naming the final circuit `id` ([`batch_proof_id`] reads it back).
fn header(id: FinalId) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    if id == FinalId::v1(id.level) {
        out.extend([VERSION, id.level as u8]);
    } else {
        let splits = if id.splits { SPLITS_BIT } else { 0 };
        let walks = if id.walks { WALKS_BIT } else { 0 };
        out.extend([
            VERSION_KIND,
            id.level as u8,
            kind_code(id.kind) | splits | walks,
        ]);
    }
    out
}

/// The final circuit a batch proof claims (from its header) and the header's length.
pub fn batch_proof_id(bytes: &[u8]) -> Result<(FinalId, usize), VerifyError> {
    if bytes.len() < 6 || &bytes[..4] != MAGIC {
        return Err(VerifyError::Header);
    }
    let (kind, splits, walks, header) = match bytes[4] {
        VERSION => (DiffCircuitKind::V1, false, false, 6),
        VERSION_KIND => {
            let byte = *bytes.get(6).ok_or(VerifyError::Header)?;
            let splits = byte & SPLITS_BIT != 0;
            let walks = byte & WALKS_BIT != 0;
            let code = byte & !(SPLITS_BIT | WALKS_BIT);
            let kind = DiffCircuitKind::ALL
                .iter()
                .copied()
                // `v1` without side trees has a version 2 header only: one name per circuit.
                .find(|&k| (splits || walks || k != DiffCircuitKind::V1) && kind_code(k) == code)
                .ok_or(VerifyError::Kind(byte))?;
            (kind, splits, walks, 7)
        }
        v => return Err(VerifyError::Version(v)),
    };
    if u32::from(bytes[5]) > MAX_LEVEL {
        return Err(VerifyError::Level(bytes[5]));
    }
    let id = FinalId {
        level: u32::from(bytes[5]),
        kind,
        splits,
        walks,
    };
    Ok((id, header))
}

/// Verifies that `bytes` is a valid batch proof of exactly `expected`.
pub fn verify_batch_proof(
    verifiers: &dyn FinalVerifiers,
    bytes: &[u8],
    expected: &BatchStatement,
) -> Result<(), VerifyError> {
    let (id, header) = batch_proof_id(bytes)?;
    let vd = verifiers
        .final_verifier(id)
        .map_err(|e| VerifyError::NoVerifier {
            id,
            reason: format!("{e:#}"),
        })?;
    let body = bytes[header..].to_vec();
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
/// it, one `<name>.verifier` file per final circuit ([`FinalId::name`]: `final-<level>`,
/// `final-<level>-<diff kind>`), plus the manifest `circuits.json` with their fingerprints).
#[derive(Default)]
pub struct VerifierSet {
    finals: BTreeMap<FinalId, Arc<VerifierCircuitData<F, C, D>>>,
    /// Transactions per leaf, from the source or the manifest (`None`: an older manifest).
    leaf_size: Option<usize>,
    /// Lanes per tick-walk chunk, likewise (`None`: the leaf size's default).
    walk_lanes: Option<usize>,
    /// The leaf's policy checks, likewise (`None`: an older manifest, which allows no list).
    leaf_policies: Option<crate::circuits::payment::PolicyChecks>,
}

impl VerifierSet {
    /// The final verifiers `ids`, taken from `source` (e.g. the circuit registry).
    pub fn from_source(
        source: &dyn FinalVerifiers,
        ids: impl IntoIterator<Item = FinalId>,
    ) -> anyhow::Result<VerifierSet> {
        let mut set = VerifierSet {
            leaf_size: source.leaf_size(),
            walk_lanes: source.walk_lanes(),
            leaf_policies: source.leaf_policies(),
            ..VerifierSet::default()
        };
        for id in ids {
            set.finals.insert(id, source.final_verifier(id)?);
        }
        Ok(set)
    }

    /// What one batch can hold for these finals to verify it: leaves of the set's leaf size,
    /// its tick-walk chunks and, per tree, `2^L` chunks where `L` is the highest level pinned
    /// for every flavour of final present (a batch may need any of them). `None` when the leaf
    /// size is unknown (a manifest written before it was recorded) or the set is empty.
    pub fn capacity(&self) -> Option<crate::capacity::BatchCapacity> {
        let leaf_size = self.leaf_size?;
        let mut top: BTreeMap<(DiffCircuitKind, bool, bool), u32> = BTreeMap::new();
        for id in self.finals.keys() {
            let t = top.entry((id.kind, id.splits, id.walks)).or_default();
            *t = (*t).max(id.level);
        }
        let top_level = top.values().copied().min()?;
        let cap = crate::capacity::BatchCapacity::new(leaf_size, top_level);
        Some(match self.walk_lanes {
            Some(lanes) => cap.with_walk_lanes(lanes),
            None => cap,
        })
    }

    /// The shape of the policy checks of the leaf below the finals (`None`: the manifest does
    /// not say). A node accepts allow-lists only when it is
    /// [`PolicyChecks::WithLists`](crate::circuits::payment::PolicyChecks::WithLists).
    pub fn leaf_policies(&self) -> Option<crate::circuits::payment::PolicyChecks> {
        self.leaf_policies
    }

    /// The final circuits of the set.
    pub fn ids(&self) -> impl Iterator<Item = FinalId> + '_ {
        self.finals.keys().copied()
    }

    /// The fingerprints of the set's verifiers, as a pins manifest.
    pub fn pins(&self, serializers: &crate::cache::Serializers) -> anyhow::Result<CircuitPins> {
        let mut pins = CircuitPins::new(serializers);
        for (id, vd) in &self.finals {
            pins.insert(
                id.name(),
                CircuitFingerprint::of_verifier(vd, serializers.gates.as_ref())?,
            );
        }
        Ok(pins)
    }

    /// Writes one `<name>.verifier` per final circuit and the manifest `circuits.json` with
    /// their fingerprints (what a deployment pins: `--circuit-pins`); returns the manifest.
    /// Refuses a directory holding verifier files of other final circuits (they would be
    /// unpinned).
    pub fn write_dir(
        &self,
        dir: &Path,
        serializers: &crate::cache::Serializers,
    ) -> anyhow::Result<CircuitPins> {
        std::fs::create_dir_all(dir)?;
        for (id, path) in verifier_files(dir)? {
            anyhow::ensure!(
                self.finals.contains_key(&id),
                "{} is not in the exported set: remove it or export to an empty directory",
                path.display()
            );
        }
        let mut pins = CircuitPins::new(serializers);
        pins.leaf_size = self.leaf_size;
        pins.walk_lanes = self.walk_lanes;
        pins.leaf_policies = self.leaf_policies;
        for (id, vd) in &self.finals {
            let bytes = vd
                .to_bytes(serializers.gates.as_ref())
                .map_err(|e| anyhow::anyhow!("serializing the {id} verifier: {e:?}"))?;
            pins.insert(id.name(), CircuitFingerprint::of_verifier_bytes(&bytes));
            std::fs::write(dir.join(format!("{id}.verifier")), bytes)?;
        }
        pins.write(&dir.join(PINS_FILE))?;
        Ok(pins)
    }

    /// Loads the final verifiers of `dir` against `pins` (the deployment's manifest): every
    /// `<final name>.verifier` file must be pinned ([`PinError::Unpinned`]) with exactly its
    /// fingerprint ([`PinError::Mismatch`], checked on the file's bytes before they are parsed),
    /// every pinned final circuit must have its file ([`PinError::Missing`]), and each verifier must
    /// be self-consistent (circuit digest recomputed from its constants cap) with the final
    /// layout. Errors name the file and both fingerprints; nothing is accepted partially.
    pub fn load_dir(
        dir: &Path,
        serializers: &crate::cache::Serializers,
        pins: &CircuitPins,
    ) -> anyhow::Result<VerifierSet> {
        pins.check_serializers(serializers)?;
        let mut set = VerifierSet {
            leaf_size: pins.leaf_size,
            walk_lanes: pins.walk_lanes,
            leaf_policies: pins.leaf_policies,
            ..VerifierSet::default()
        };
        for (id, path) in verifier_files(dir)? {
            let bytes = std::fs::read(&path)?;
            let found = CircuitFingerprint::of_verifier_bytes(&bytes);
            pins.check(&id.name(), &path.display().to_string(), found)?;
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
            set.finals.insert(id, Arc::new(vd));
        }
        for (name, pinned) in &pins.circuits {
            let Some(id) = FinalId::parse(name) else {
                continue;
            };
            if !set.finals.contains_key(&id) {
                return Err(PinError::Missing {
                    what: dir.join(format!("{name}.verifier")).display().to_string(),
                    pinned: *pinned,
                }
                .into());
            }
        }
        anyhow::ensure!(
            !set.finals.is_empty(),
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
fn verifier_files(dir: &Path) -> anyhow::Result<BTreeMap<FinalId, std::path::PathBuf>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| FinalId::parse(n.strip_suffix(".verifier")?))
        else {
            continue;
        };
        // One file per circuit: `final-02.verifier` is not level 2's file.
        if path.file_name().and_then(|n| n.to_str()) != Some(&format!("{id}.verifier")) {
            continue;
        }
        files.insert(id, path);
    }
    Ok(files)
}

impl FinalVerifiers for VerifierSet {
    fn final_verifier(&self, id: FinalId) -> anyhow::Result<Arc<VerifierCircuitData<F, C, D>>> {
        self.finals
            .get(&id)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no final verifier {id}"))
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

    fn set_of(finals: Vec<(FinalId, &CircuitData<F, C, D>)>) -> VerifierSet {
        VerifierSet {
            finals: finals
                .into_iter()
                .map(|(id, d)| (id, Arc::new(d.verifier_data())))
                .collect(),
            leaf_size: Some(8),
            walk_lanes: None,
            leaf_policies: None,
        }
    }

    #[test]
    fn the_capacity_is_the_highest_level_every_flavour_pins() {
        let a = tiny(2, CircuitConfig::standard_recursion_config());
        let v4 = |l| FinalId::of(l, DiffCircuitKind::V4);
        let set = set_of(vec![
            (FinalId::v1(0), &a),
            (FinalId::v1(4), &a),
            (FinalId::v1(4).with_splits(), &a),
            (v4(3), &a),
            (v4(4).with_walks(), &a),
        ]);
        // A batch may need the v4 final, pinned up to level 3 only.
        let cap = set.capacity().unwrap();
        assert_eq!((cap.leaf_size, cap.top_level), (8, 3));
        // ... or the one with walks: a flavour of its own.
        let walks = set_of(vec![
            (FinalId::v1(4), &a),
            (v4(4), &a),
            (v4(2).with_walks(), &a),
        ]);
        assert_eq!(walks.capacity().unwrap().top_level, 2);
        assert_eq!(
            walks.capacity().unwrap().walk_lanes,
            128,
            "16 per slot by default"
        );
        let set = set_of(vec![(FinalId::v1(2), &a), (FinalId::v1(4), &a)]);
        assert_eq!(set.capacity().unwrap().top_level, 4);
        // The leaf size travels through the manifest; a manifest without it caps nothing.
        let ser = Serializers::rollup();
        let dir = tempfile::tempdir().unwrap();
        let pins = set.write_dir(dir.path(), &ser).unwrap();
        assert_eq!(pins.leaf_size, Some(8));
        let loaded = VerifierSet::load_dir(dir.path(), &ser, &pins).unwrap();
        assert_eq!(loaded.capacity(), set.capacity());
        // So do the tick-walk chunks' lanes, when the source states them.
        let dense = VerifierSet {
            walk_lanes: Some(1_600),
            ..set_of(vec![(v4(1).with_walks(), &a)])
        };
        let dense_dir = tempfile::tempdir().unwrap();
        let dense_pins = dense.write_dir(dense_dir.path(), &ser).unwrap();
        assert_eq!(dense_pins.walk_lanes, Some(1_600));
        let loaded = VerifierSet::load_dir(dense_dir.path(), &ser, &dense_pins).unwrap();
        assert_eq!(
            loaded.capacity(),
            Some(crate::capacity::BatchCapacity::new(8, 1).with_walk_lanes(1_600))
        );
        // And the leaf's policy checks, by the names of `--leaf-policies`.
        let lists = VerifierSet {
            leaf_policies: Some(crate::circuits::payment::PolicyChecks::WithLists),
            ..set_of(vec![(v4(1), &a)])
        };
        let lists_dir = tempfile::tempdir().unwrap();
        let lists_pins = lists.write_dir(lists_dir.path(), &ser).unwrap();
        let json = std::fs::read_to_string(lists_dir.path().join(PINS_FILE)).unwrap();
        assert!(json.contains(r#""leaf_policies": "lists""#), "{json}");
        let loaded = VerifierSet::load_dir(lists_dir.path(), &ser, &lists_pins).unwrap();
        assert_eq!(loaded.leaf_policies(), lists.leaf_policies);
        assert_eq!(set.leaf_policies(), None, "not stated by the source");
        assert!(
            !pins.to_json().contains("leaf_policies"),
            "absent when unknown"
        );
        let old = CircuitPins {
            leaf_size: None,
            ..pins
        };
        let loaded = VerifierSet::load_dir(dir.path(), &ser, &old).unwrap();
        assert_eq!(loaded.capacity(), None);
        assert_eq!(VerifierSet::default().capacity(), None);
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
    fn the_header_names_the_final_circuit() {
        let id = |b: &[u8]| batch_proof_id(b).map_err(|e| e.to_string());
        assert_eq!(id(b"RBPF\x02\x03body"), Ok((FinalId::v1(3), 6)));
        let v4a = FinalId::of(3, DiffCircuitKind::V4Agents);
        assert_eq!(id(b"RBPF\x03\x03\x02body"), Ok((v4a, 7)));
        assert_eq!(id(b"RBPF\x03\x03\x82body"), Ok((v4a.with_splits(), 7)));
        assert_eq!(
            id(b"RBPF\x03\x03\x80body"),
            Ok((FinalId::v1(3).with_splits(), 7))
        );
        let v4 = FinalId::of(3, DiffCircuitKind::V4);
        assert_eq!(id(b"RBPF\x03\x03\x41body"), Ok((v4.with_walks(), 7)));
        assert_eq!(
            id(b"RBPF\x03\x03\xc1body"),
            Ok((v4.with_splits().with_walks(), 7))
        );
        // Every header names one circuit, and every circuit has one header.
        for splits in [false, true] {
            for walks in [false, true] {
                for &kind in DiffCircuitKind::ALL {
                    let f = FinalId {
                        level: 3,
                        kind,
                        splits,
                        walks,
                    };
                    let mut bytes = header(f);
                    bytes.extend_from_slice(b"body");
                    assert_eq!(batch_proof_id(&bytes).map(|(i, _)| i).ok(), Some(f), "{f}");
                }
            }
        }
        // Version 1 diffs keep version 2 headers: a version 3 header never names them.
        assert!(matches!(
            batch_proof_id(b"RBPF\x03\x03\x00body"),
            Err(VerifyError::Kind(0))
        ));
        assert!(matches!(
            batch_proof_id(b"RBPF\x03\x03\x09body"),
            Err(VerifyError::Kind(9))
        ));
        assert!(matches!(
            batch_proof_id(b"RBPF\x03\x03\x84body"),
            Err(VerifyError::Kind(0x84))
        ));
        // Kind 3 is `v4-shares`, always with the chain.
        let v4s = FinalId::of(3, DiffCircuitKind::V4Shares);
        assert_eq!(id(b"RBPF\x03\x03\x83body"), Ok((v4s.with_splits(), 7)));
        assert!(matches!(
            batch_proof_id(b"RBPF\x03\x03"),
            Err(VerifyError::Header)
        ));
        assert!(matches!(
            batch_proof_id(b"RBPF\x04\x03\x01body"),
            Err(VerifyError::Version(4))
        ));
        assert!(matches!(
            batch_proof_id(b"RBPF\x03\x63\x01body"),
            Err(VerifyError::Level(0x63))
        ));
    }

    #[test]
    fn verifier_files_are_checked_against_their_pins() {
        let ser = Serializers::rollup();
        let a = tiny(2, CircuitConfig::standard_recursion_config());
        let b = tiny(5, CircuitConfig::standard_recursion_config());
        let dir = tempfile::tempdir().unwrap();
        let v4 = FinalId::of(2, DiffCircuitKind::V4);
        let pins = set_of(vec![(FinalId::v1(0), &a), (FinalId::v1(2), &b), (v4, &a)])
            .write_dir(dir.path(), &ser)
            .unwrap();
        assert_eq!(
            pins.finals().collect::<Vec<_>>(),
            vec![FinalId::v1(0), FinalId::v1(2), v4]
        );
        assert!(dir.path().join("final-2-v4.verifier").exists());
        assert_eq!(
            pins.get("final-2"),
            Some(CircuitFingerprint::of_circuit(&b, ser.gates.as_ref()).unwrap())
        );
        // The honest set loads, with the manifest written next to it or a copy of it.
        let loaded = VerifierSet::load_dir(dir.path(), &ser, &pins).unwrap();
        assert_eq!(
            loaded.ids().collect::<Vec<_>>(),
            vec![FinalId::v1(0), FinalId::v1(2), v4]
        );
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
        assert!(set_of(vec![(FinalId::v1(2), &b), (v4, &a)])
            .write_dir(dir.path(), &ser)
            .is_err());
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
