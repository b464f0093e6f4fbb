//! Pinned circuits: naming the exact circuits a deployment runs by a hash of their complete
//! verifier data.
//!
//! plonky2 1.1.0's `circuit_digest` hashes only the constants/sigmas Merkle cap and the degree.
//! It does **not** cover the gates, the selectors, the circuit config or the FRI parameters, so
//! two verifiers with the same digest can accept different proofs: the same circuit with
//! `fri_config.num_query_rounds` lowered to 1 has the same digest and accepts forgeable proofs.
//! A [`CircuitFingerprint`] closes that gap: it is the SHA-256 of the circuit's **complete**
//! serialized verifier data (`VerifierCircuitData::to_bytes` with the rollup gate serializer,
//! [`crate::cache::Serializers::rollup`]), that is the verifier-only data (constants/sigmas cap
//! and circuit digest) and the whole common data: config (wires, constants, security bits,
//! challenges, quotient degree, zero knowledge, FRI config), FRI parameters (reduction arities,
//! degree, hiding), selectors, gates with their parameters, quotient degree factor, constraint
//! and constant counts, public-input count, `k_is`, partial products and lookup data. Two
//! verifiers with the same fingerprint verify exactly the same proofs. The fingerprint of a
//! final circuit also pins every circuit below it: the inner verifier data is a constant of the
//! merge and final circuits and the in-circuit verifier is laid out from the inner common data,
//! so a different inner circuit changes the outer one's constants, wiring or gates.
//!
//! A [`CircuitPins`] manifest (`circuits.json`, written next to the exported verifiers by
//! [`crate::verify::VerifierSet::write_dir`]) maps circuit names (`final-<level>`, optionally
//! `merge-<level>`) to fingerprints:
//!
//! ```json
//! { "version": 1, "serializers": "rollup-v2",
//!   "circuits": { "final-0": "<64 hex>", "final-2": "<64 hex>" } }
//! ```
//!
//! The node (`--circuit-pins`), `VerifierSet::load_dir`, the circuit cache and the prover CLI
//! (`--circuit-pins`) check every circuit they use against it and refuse ([`PinError`]) any that
//! differs; nothing is rebuilt or accepted silently.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use plonky2::plonk::circuit_data::{CircuitData, CommonCircuitData, VerifierOnlyCircuitData};
use plonky2::util::serialization::{GateSerializer, Write as _};
use sha2::{Digest as _, Sha256};

use crate::{C, D, F};
use rollup_storage::DiffCircuitKind;

/// Version of the [`CircuitPins`] manifest format.
pub const PINS_VERSION: u32 = 1;

/// File name of the manifest in a verifier directory.
pub const PINS_FILE: &str = "circuits.json";

/// SHA-256 of a circuit's complete serialized verifier data (see the module docs). Displayed
/// and parsed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CircuitFingerprint(pub [u8; 32]);

impl CircuitFingerprint {
    /// The fingerprint of serialized verifier data (`VerifierCircuitData::to_bytes`).
    pub fn of_verifier_bytes(bytes: &[u8]) -> CircuitFingerprint {
        CircuitFingerprint(Sha256::digest(bytes).into())
    }

    /// The fingerprint of a verifier, from its parts (serialized exactly as
    /// `VerifierCircuitData::to_bytes` does, with `gates`).
    pub fn of_parts(
        verifier_only: &VerifierOnlyCircuitData<C, D>,
        common: &CommonCircuitData<F, D>,
        gates: &dyn GateSerializer<F, D>,
    ) -> anyhow::Result<CircuitFingerprint> {
        let mut bytes = Vec::new();
        bytes
            .write_verifier_only_circuit_data(verifier_only)
            .and_then(|()| bytes.write_common_circuit_data(common, gates))
            .map_err(|e| anyhow::anyhow!("serializing the verifier data: {e:?}"))?;
        Ok(CircuitFingerprint::of_verifier_bytes(&bytes))
    }

    /// The fingerprint of a verifier.
    pub fn of_verifier(
        vd: &plonky2::plonk::circuit_data::VerifierCircuitData<F, C, D>,
        gates: &dyn GateSerializer<F, D>,
    ) -> anyhow::Result<CircuitFingerprint> {
        Self::of_parts(&vd.verifier_only, &vd.common, gates)
    }

    /// The fingerprint of a circuit's verifier.
    pub fn of_circuit(
        data: &CircuitData<F, C, D>,
        gates: &dyn GateSerializer<F, D>,
    ) -> anyhow::Result<CircuitFingerprint> {
        Self::of_parts(&data.verifier_only, &data.common, gates)
    }
}

impl fmt::Display for CircuitFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CircuitFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CircuitFingerprint({self})")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a circuit fingerprint is 64 hex digits")]
pub struct BadFingerprint;

impl FromStr for CircuitFingerprint {
    type Err = BadFingerprint;
    fn from_str(s: &str) -> Result<Self, BadFingerprint> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(s).map_err(|_| BadFingerprint)?;
        Ok(CircuitFingerprint(
            bytes.try_into().map_err(|_| BadFingerprint)?,
        ))
    }
}

impl serde::Serialize for CircuitFingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for CircuitFingerprint {
    fn deserialize<De: serde::Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a circuit was refused against the pins.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PinError {
    #[error(
        "{what}: circuit fingerprint {found} is not the pinned {pinned}; refusing it (the file \
         was swapped or built from other code)"
    )]
    Mismatch {
        what: String,
        pinned: CircuitFingerprint,
        found: CircuitFingerprint,
    },
    #[error("{what} is missing, but the pins require it (pinned fingerprint {pinned})")]
    Missing {
        what: String,
        pinned: CircuitFingerprint,
    },
    #[error("{what} (circuit fingerprint {found}) is not pinned (pinned: none); refusing it")]
    Unpinned {
        what: String,
        found: CircuitFingerprint,
    },
    #[error(
        "the pins are fingerprints of bytes written by serializers {pinned}, these circuits \
         are serialized with {used}"
    )]
    Serializers { pinned: String, used: String },
}

/// Which final (settlement) circuit: the top level of the batch's trees, the diff circuit
/// whose proofs it verifies, and whether it verifies a split-credit chain too (a batch with a
/// split, SPEC 19.5) and a tick-walk tree (a batch with a stream settlement, SPEC 18.7). Named
/// `final-<level>` for version 1 diffs without either (the name every deployment pinned
/// before version 4 diffs existed), `final-<level>-<kind>` for the other diff kinds, each with
/// `-splits` appended when it verifies the chain, then `-walks` when it verifies the walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FinalId {
    pub level: u32,
    pub kind: DiffCircuitKind,
    pub splits: bool,
    pub walks: bool,
}

impl FinalId {
    pub fn v1(level: u32) -> FinalId {
        FinalId::of(level, DiffCircuitKind::V1)
    }

    /// The final circuit of `level` for diffs of `kind`, without splits.
    pub fn of(level: u32, kind: DiffCircuitKind) -> FinalId {
        FinalId {
            level,
            kind,
            splits: false,
            walks: false,
        }
    }

    /// The same circuit, verifying a split-credit chain too.
    pub fn with_splits(self) -> FinalId {
        FinalId {
            splits: true,
            ..self
        }
    }

    /// The same circuit, verifying a tick-walk tree too.
    pub fn with_walks(self) -> FinalId {
        FinalId {
            walks: true,
            ..self
        }
    }

    /// The name in the pins and of its verifier file (`<name>.verifier`).
    pub fn name(&self) -> String {
        let base = match self.kind {
            DiffCircuitKind::V1 => format!("final-{}", self.level),
            kind => format!("final-{}-{kind}", self.level),
        };
        let base = if self.splits {
            format!("{base}-{SPLITS_SUFFIX}")
        } else {
            base
        };
        if self.walks {
            format!("{base}-{WALKS_SUFFIX}")
        } else {
            base
        }
    }

    /// The inverse of [`FinalId::name`]; `None` for any other name.
    pub fn parse(name: &str) -> Option<FinalId> {
        let rest = name.strip_prefix("final-")?;
        let (rest, walks) = match rest.strip_suffix(WALKS_SUFFIX) {
            Some(r) => (r.strip_suffix('-')?, true),
            None => (rest, false),
        };
        let (rest, splits) = match rest.strip_suffix(SPLITS_SUFFIX) {
            Some(r) => (r.strip_suffix('-')?, true),
            None => (rest, false),
        };
        let (level, kind) = match rest.split_once('-') {
            None => (rest, DiffCircuitKind::V1),
            Some((level, kind)) => match kind.parse().ok()? {
                DiffCircuitKind::V1 => return None,
                kind => (level, kind),
            },
        };
        // Digits only: `u32::from_str` would also take "+1".
        if level.is_empty() || !level.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(FinalId {
            level: level.parse().ok()?,
            kind,
            splits,
            walks,
        })
    }
}

/// The suffix of the names of final circuits that verify a split-credit chain.
const SPLITS_SUFFIX: &str = "splits";
/// The suffix of the names of final circuits that verify a tick-walk tree.
const WALKS_SUFFIX: &str = "walks";

impl fmt::Display for FinalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// The circuits a deployment runs, by name (`final-<level>`, `merge-<level>`): the manifest
/// `circuits.json` (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitPins {
    pub version: u32,
    /// Id of the serializers the fingerprints were computed with ([`crate::cache::Serializers::id`]).
    pub serializers: String,
    pub circuits: BTreeMap<String, CircuitFingerprint>,
    /// Transactions per leaf of the pinned circuits: with the finals' levels, the most one
    /// batch can hold (`crate::capacity`), which the node seals its batches by. Absent from
    /// manifests written before it was recorded (the node then caps nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_size: Option<usize>,
    /// Lanes per tick-walk chunk of the pinned circuits (`rollup-prover --walk-lanes`), which
    /// the batch capacity counts settlements' ticks by. Absent: the leaf size's default
    /// (`16 x leaf_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk_lanes: Option<usize>,
    /// The shape of the leaf's policy checks (`none`, `plain`, `lists`: `rollup-prover
    /// --leaf-policies`): a node accepts policies with an allow-list only under `lists`, whose
    /// slots take the payee's membership path (SPEC 20.8). Absent from manifests written
    /// before it was recorded (the node then refuses lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_policies: Option<crate::circuits::payment::PolicyChecks>,
}

impl CircuitPins {
    /// No circuit pinned yet, for fingerprints computed with `serializers`.
    pub fn new(serializers: &crate::cache::Serializers) -> CircuitPins {
        CircuitPins {
            version: PINS_VERSION,
            serializers: serializers.id.clone(),
            circuits: BTreeMap::new(),
            leaf_size: None,
            walk_lanes: None,
            leaf_policies: None,
        }
    }

    /// The pin name of the final circuit of `level` for version 1 diffs.
    pub fn final_name(level: u32) -> String {
        FinalId::v1(level).name()
    }

    pub fn get(&self, name: &str) -> Option<CircuitFingerprint> {
        self.circuits.get(name).copied()
    }

    pub fn insert(&mut self, name: impl Into<String>, fp: CircuitFingerprint) {
        self.circuits.insert(name.into(), fp);
    }

    /// The pinned final circuits.
    pub fn finals(&self) -> impl Iterator<Item = FinalId> + '_ {
        self.circuits.keys().filter_map(|n| FinalId::parse(n))
    }

    /// Refuses pins computed with other serializers than `serializers` (the fingerprints would
    /// never match).
    pub fn check_serializers(
        &self,
        serializers: &crate::cache::Serializers,
    ) -> Result<(), PinError> {
        if self.serializers != serializers.id {
            return Err(PinError::Serializers {
                pinned: self.serializers.clone(),
                used: serializers.id.clone(),
            });
        }
        Ok(())
    }

    /// Checks `found`, the fingerprint of the circuit `name` (described as `what` in errors),
    /// against its pin; an unpinned circuit is refused.
    pub fn check(&self, name: &str, what: &str, found: CircuitFingerprint) -> Result<(), PinError> {
        match self.get(name) {
            Some(pinned) if pinned == found => Ok(()),
            Some(pinned) => Err(PinError::Mismatch {
                what: what.to_string(),
                pinned,
                found,
            }),
            None => Err(PinError::Unpinned {
                what: what.to_string(),
                found,
            }),
        }
    }

    pub fn from_json(text: &str) -> anyhow::Result<CircuitPins> {
        let pins: CircuitPins =
            serde_json::from_str(text).context("not a circuit pins manifest")?;
        anyhow::ensure!(
            pins.version == PINS_VERSION,
            "circuit pins manifest version {} (this build reads version {PINS_VERSION})",
            pins.version
        );
        Ok(pins)
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Reads a manifest file.
    pub fn load(path: &Path) -> anyhow::Result<CircuitPins> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the circuit pins {}", path.display()))?;
        CircuitPins::from_json(&text)
            .with_context(|| format!("reading the circuit pins {}", path.display()))
    }

    /// Writes a manifest file (atomically: temporary file, then rename).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let tmp: PathBuf = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, self.to_json())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use plonky2::plonk::circuit_builder::CircuitBuilder;
    use plonky2::plonk::circuit_data::CircuitConfig;

    /// A tiny circuit with the final layout (8 public inputs): `pi = x, x^power, ...`.
    pub(crate) fn tiny(power: usize, config: CircuitConfig) -> CircuitData<F, C, D> {
        let mut b = CircuitBuilder::<F, D>::new(config);
        let x = b.add_virtual_target();
        let mut y = x;
        for _ in 1..power {
            y = b.mul(y, x);
        }
        // As many public inputs as a final (settlement) circuit: the statement hash's words.
        for t in [x, y, x, y, x, y, x, y] {
            b.register_public_input(t);
        }
        b.build::<C>()
    }

    #[test]
    fn fingerprint_hex_round_trip() {
        let fp = CircuitFingerprint([0xab; 32]);
        let s = fp.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<CircuitFingerprint>(), Ok(fp));
        assert_eq!(format!("0x{s}").parse::<CircuitFingerprint>(), Ok(fp));
        assert!("ab".parse::<CircuitFingerprint>().is_err());
        assert!("zz".repeat(32).parse::<CircuitFingerprint>().is_err());
    }

    #[test]
    fn final_names_round_trip_and_nothing_else_parses() {
        for level in [0, 3, 12] {
            for &kind in DiffCircuitKind::ALL {
                for id in [
                    FinalId::of(level, kind),
                    FinalId::of(level, kind).with_splits(),
                    FinalId::of(level, kind).with_walks(),
                    FinalId::of(level, kind).with_splits().with_walks(),
                ] {
                    assert_eq!(FinalId::parse(&id.name()), Some(id), "{id}");
                }
            }
        }
        assert_eq!(FinalId::v1(2).name(), "final-2");
        assert_eq!(FinalId::v1(2).with_splits().name(), "final-2-splits");
        assert_eq!(
            FinalId::parse("final-2-v4-agents"),
            Some(FinalId::of(2, DiffCircuitKind::V4Agents))
        );
        assert_eq!(
            FinalId::parse("final-2-v4-agents-splits"),
            Some(FinalId::of(2, DiffCircuitKind::V4Agents).with_splits())
        );
        assert_eq!(
            FinalId::parse("final-2-v4-splits-walks"),
            Some(
                FinalId::of(2, DiffCircuitKind::V4)
                    .with_splits()
                    .with_walks()
            )
        );
        for bad in [
            "final-",
            "final-x",
            "final-+1",
            "final-2-v1",
            "final-2-v5",
            "final--v4",
            "merge-2",
            "final-2-",
            "Final-2",
            "final-splits",
            "final-2splits",
            "final-2-splits-splits",
            "final-2-v1-splits",
            "final-2-splits-v4",
            "final-2-walks-splits",
            "final-2-walks-walks",
            "final-2walks",
            "final-walks",
        ] {
            assert_eq!(FinalId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn manifest_round_trip_and_checks() {
        let ser = crate::cache::Serializers::rollup();
        let mut pins = CircuitPins::new(&ser);
        let a = CircuitFingerprint([1; 32]);
        let b = CircuitFingerprint([2; 32]);
        pins.insert("final-2", a);
        let back = CircuitPins::from_json(&pins.to_json()).unwrap();
        assert_eq!(back, pins);
        assert_eq!(back.finals().collect::<Vec<_>>(), vec![FinalId::v1(2)]);
        assert!(pins.check("final-2", "x", a).is_ok());
        assert!(matches!(
            pins.check("final-2", "x", b),
            Err(PinError::Mismatch { pinned, found, .. }) if pinned == a && found == b
        ));
        assert!(matches!(
            pins.check("final-1", "x", a),
            Err(PinError::Unpinned { .. })
        ));
        assert!(pins.check_serializers(&ser).is_ok());
        assert!(pins
            .check_serializers(&crate::cache::Serializers::plonky2_default())
            .is_err());
        let mut v2: serde_json::Value = serde_json::from_str(&pins.to_json()).unwrap();
        v2["version"] = 2.into();
        assert!(CircuitPins::from_json(&v2.to_string()).is_err());
    }
}
