//! Circuits cached on disk.
//!
//! Building a recursive circuit costs seconds (FFTs of the constant and permutation polynomials);
//! loading it costs a fraction of that. A cached circuit is one file in the cache directory:
//!
//! ```text
//! magic "RPCIRC02" | key length u32 | key (UTF-8) | circuit digest (4 x u64) |
//! circuit fingerprint (32 bytes) | payload length u64 | payload checksum u64 |
//! payload (CircuitData::to_bytes)
//! ```
//!
//! The *key* is the full definition of the circuit: a version string, the parameters and the
//! digests of the circuits it verifies (see [`crate::circuits::aggregate`]). The file name is a
//! short hash of the key, and the key itself is stored and compared exactly, so a file written for
//! another definition is never used. A loaded circuit is not trusted blindly: its checksum must
//! match, it must deserialize, its circuit digest recomputed from its constants/sigmas cap must equal
//! the digest recorded in the header, its [`CircuitFingerprint`] (SHA-256 of the complete verifier
//! data, see [`crate::pins`]) recomputed from the payload must equal the recorded one, and its
//! public input count must be the expected one. Anything else is logged and the circuit is rebuilt
//! and rewritten (atomically: write to a temporary file, then rename, so concurrent workers never
//! read a half-written file).
//!
//! **Pinned circuits.** When the caller pins a circuit ([`CircuitSpec::pinned`], from the
//! deployment's `circuits.json`), a cached file whose recomputed fingerprint differs from the pin
//! is refused with [`CacheError::Pinned`] (it was swapped: the checksum and header checks only
//! catch accidents, an attacker rewrites them), and so is a freshly built circuit whose
//! fingerprint differs (this code builds another circuit than the deployment runs). Neither is
//! rebuilt or rewritten: the operator must look at it.
//!
//! Gate and generator serializers are a parameter ([`Serializers`]): plonky2's defaults for
//! now; the ones of the custom ECgFp5 gates (`gadgets::serializer`) plug in with
//! [`Serializers::new`].

use std::hash::Hasher as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use plonky2::hash::hash_types::HashOut;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::plonk::circuit_data::CircuitData;
use plonky2::plonk::config::Hasher;
use plonky2::util::serialization::{
    DefaultGateSerializer, DefaultGeneratorSerializer, GateSerializer, WitnessGeneratorSerializer,
};

use crate::pins::{CircuitFingerprint, PinError};
use crate::{C, D, F};

const MAGIC: &[u8; 8] = b"RPCIRC02";

/// Gate and witness-generator serializers used to write and read circuits, with an id that is
/// part of every cache key (a circuit written with one set is never read with another).
pub struct Serializers {
    pub id: String,
    pub gates: Box<dyn GateSerializer<F, D> + Send + Sync>,
    pub generators: Box<dyn WitnessGeneratorSerializer<F, D> + Send + Sync>,
}

impl Serializers {
    pub fn new(
        id: impl Into<String>,
        gates: impl GateSerializer<F, D> + Send + Sync + 'static,
        generators: impl WitnessGeneratorSerializer<F, D> + Send + Sync + 'static,
    ) -> Serializers {
        Serializers {
            id: id.into(),
            gates: Box::new(gates),
            generators: Box::new(generators),
        }
    }

    /// plonky2's standard gates and generators plus this crate's custom ones (the ECgFp5
    /// gates): what every rollup circuit needs.
    pub fn rollup() -> Serializers {
        Serializers::new(
            "rollup-v2",
            crate::gadgets::serializer::RollupGateSerializer,
            crate::gadgets::serializer::RollupGeneratorSerializer,
        )
    }

    /// plonky2's default serializers (standard gates and generators only).
    pub fn plonky2_default() -> Serializers {
        Serializers::new(
            "plonky2-default",
            DefaultGateSerializer,
            DefaultGeneratorSerializer::<C, D>::default(),
        )
    }
}

impl std::fmt::Debug for Serializers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serializers").field("id", &self.id).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache file {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot serialize circuit {key}")]
    Serialize { key: String },
    #[error("building circuit {key}: {error}")]
    Build { key: String, error: String },
    /// The cached or built circuit is not the pinned one: refused, never rebuilt.
    #[error("{0}")]
    Pinned(PinError),
}

/// Why a cache file was not used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejected {
    #[error("not a circuit cache file")]
    Magic,
    #[error("truncated")]
    Truncated,
    #[error("written for another definition")]
    Key,
    #[error("checksum mismatch")]
    Checksum,
    #[error("does not deserialize")]
    Deserialize,
    #[error("circuit digest does not match its constants (or the recorded digest)")]
    Digest,
    #[error("circuit fingerprint does not match the one recorded in the header")]
    Fingerprint,
    #[error("circuit fingerprint {found} is not the pinned {pinned}")]
    Pinned {
        pinned: CircuitFingerprint,
        found: CircuitFingerprint,
    },
    #[error("wrong number of public inputs")]
    PublicInputs,
}

/// Where circuits are cached; `None` directory = build every time, keep nothing.
#[derive(Clone, Debug)]
pub struct CircuitCache {
    dir: Option<PathBuf>,
    serializers: Arc<Serializers>,
}

/// What the caller knows about the circuit it asks for.
#[derive(Clone, Debug)]
pub struct CircuitSpec<'a> {
    /// Short name, used in the file name and logs (`merge-3`, `final-2`).
    pub name: &'a str,
    /// The full definition; stored in the file and compared exactly.
    pub key: &'a str,
    pub num_public_inputs: usize,
    /// The fingerprint the circuit must have, when pinned by the deployment
    /// ([`crate::pins::CircuitPins`]): a cached or built circuit with another one is refused.
    pub pinned: Option<CircuitFingerprint>,
}

fn checksum(bytes: &[u8]) -> u64 {
    // SipHash with fixed keys: detects corruption only; a swap by someone who rewrites the
    // header is caught by a pinned fingerprint (CircuitSpec::pinned).
    let mut h = std::hash::DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// The circuit digest plonky2 derives from a circuit's constants/sigmas cap and degree (the
/// builder's default, empty domain separator).
pub fn recompute_circuit_digest(data: &CircuitData<F, C, D>) -> HashOut<F> {
    recompute_digest(&data.verifier_only, &data.common)
}

/// [`recompute_circuit_digest`] from the verifier's parts.
pub fn recompute_digest(
    verifier_only: &plonky2::plonk::circuit_data::VerifierOnlyCircuitData<C, D>,
    common: &plonky2::plonk::circuit_data::CommonCircuitData<F, D>,
) -> HashOut<F> {
    let mut parts = verifier_only.constants_sigmas_cap.flatten();
    let sep: HashOut<F> = PoseidonHash::hash_pad(&[]);
    parts.extend_from_slice(&sep.elements);
    parts.push(<F as plonky2::field::types::Field>::from_canonical_usize(
        common.degree_bits(),
    ));
    PoseidonHash::hash_no_pad(&parts)
}

/// A circuit's digest as 64 hex digits (its four elements, 16 each): how cache keys name the
/// circuit another one is built over.
pub fn circuit_digest_hex(data: &CircuitData<F, C, D>) -> String {
    digest_u64s(&data.verifier_only.circuit_digest)
        .iter()
        .map(|e| format!("{e:016x}"))
        .collect()
}

fn digest_u64s(h: &HashOut<F>) -> [u64; 4] {
    use plonky2::field::types::PrimeField64;
    h.elements.map(|e| e.to_canonical_u64())
}

impl CircuitCache {
    pub fn new(dir: Option<PathBuf>, serializers: Serializers) -> CircuitCache {
        CircuitCache {
            dir,
            serializers: Arc::new(serializers),
        }
    }

    /// A cache in `dir` with the rollup serializers ([`Serializers::rollup`]).
    pub fn in_dir(dir: impl Into<PathBuf>) -> CircuitCache {
        CircuitCache::new(Some(dir.into()), Serializers::rollup())
    }

    /// No disk cache: every circuit is built.
    pub fn disabled() -> CircuitCache {
        CircuitCache::new(None, Serializers::rollup())
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn serializers(&self) -> &Serializers {
        &self.serializers
    }

    /// The file a circuit with `spec` is cached in.
    pub fn path_of(&self, spec: &CircuitSpec<'_>) -> Option<PathBuf> {
        let full_key = format!("{}|ser={}", spec.key, self.serializers.id);
        self.dir.as_ref().map(|d| {
            d.join(format!(
                "{}-{:016x}.circuit",
                spec.name,
                checksum(full_key.as_bytes())
            ))
        })
    }

    fn full_key(&self, spec: &CircuitSpec<'_>) -> String {
        format!("{}|ser={}", spec.key, self.serializers.id)
    }

    /// The fingerprint of `data`'s verifier with this cache's gate serializer.
    pub fn fingerprint(&self, data: &CircuitData<F, C, D>) -> anyhow::Result<CircuitFingerprint> {
        CircuitFingerprint::of_circuit(data, self.serializers.gates.as_ref())
    }

    /// The cached circuit for `spec`, or `build()`'s result (then written to the cache), with
    /// its fingerprint. A pinned circuit ([`CircuitSpec::pinned`]) whose cached file or build
    /// has another fingerprint is an error ([`CacheError::Pinned`]), not rebuilt.
    pub fn load_or_build(
        &self,
        spec: &CircuitSpec<'_>,
        build: impl FnOnce() -> anyhow::Result<CircuitData<F, C, D>>,
    ) -> Result<(CircuitData<F, C, D>, CircuitFingerprint), CacheError> {
        if let Some(path) = self.path_of(spec) {
            match std::fs::read(&path) {
                Ok(bytes) => match self.decode_fingerprinted(spec, &bytes) {
                    Ok(loaded) => {
                        tracing::debug!(circuit = spec.name, path = %path.display(), fingerprint = %loaded.1, "circuit loaded from the cache");
                        return Ok(loaded);
                    }
                    Err(Rejected::Pinned { pinned, found }) => {
                        tracing::error!(
                            circuit = spec.name,
                            path = %path.display(),
                            %pinned,
                            %found,
                            "cached circuit is not the pinned one; refusing it"
                        );
                        return Err(CacheError::Pinned(PinError::Mismatch {
                            what: format!("cached circuit {} ({})", spec.name, path.display()),
                            pinned,
                            found,
                        }));
                    }
                    Err(why) => tracing::warn!(
                        circuit = spec.name,
                        path = %path.display(),
                        %why,
                        "ignoring cached circuit; rebuilding"
                    ),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(circuit = spec.name, error = %e, "cannot read cached circuit; rebuilding")
                }
            }
        }
        let started = std::time::Instant::now();
        let data = build().map_err(|e| CacheError::Build {
            key: spec.key.to_string(),
            error: format!("{e:#}"),
        })?;
        tracing::info!(
            circuit = spec.name,
            degree_bits = data.common.degree_bits(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "circuit built"
        );
        let fingerprint = self.fingerprint(&data).map_err(|_| CacheError::Serialize {
            key: spec.key.to_string(),
        })?;
        if let Some(pinned) = spec.pinned {
            if fingerprint != pinned {
                return Err(CacheError::Pinned(PinError::Mismatch {
                    what: format!("built circuit {} (key {})", spec.name, spec.key),
                    pinned,
                    found: fingerprint,
                }));
            }
        }
        if let Some(path) = self.path_of(spec) {
            self.store(spec, &path, &data)?;
        }
        Ok((data, fingerprint))
    }

    /// The bytes of the cache file of `data` under `spec` (what [`CircuitCache::load_or_build`]
    /// writes).
    pub fn encode(
        &self,
        spec: &CircuitSpec<'_>,
        data: &CircuitData<F, C, D>,
    ) -> Result<Vec<u8>, CacheError> {
        let ser = || CacheError::Serialize {
            key: spec.key.to_string(),
        };
        let fingerprint = self.fingerprint(data).map_err(|_| ser())?;
        let payload = data
            .to_bytes(
                self.serializers.gates.as_ref(),
                self.serializers.generators.as_ref(),
            )
            .map_err(|_| ser())?;
        let key = self.full_key(spec);
        let mut out = Vec::with_capacity(payload.len() + key.len() + 96);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        for x in digest_u64s(&data.verifier_only.circuit_digest) {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&fingerprint.0);
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&checksum(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    fn store(
        &self,
        spec: &CircuitSpec<'_>,
        path: &Path,
        data: &CircuitData<F, C, D>,
    ) -> Result<(), CacheError> {
        let io = |error| CacheError::Io {
            path: path.to_path_buf(),
            error,
        };
        let out = self.encode(spec, data)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let tmp = path.with_extension(format!(
            "tmp-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&out).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        tracing::info!(circuit = spec.name, path = %path.display(), bytes = out.len(), "circuit cached");
        Ok(())
    }

    /// Parses and checks a cache file's bytes.
    pub fn decode(
        &self,
        spec: &CircuitSpec<'_>,
        bytes: &[u8],
    ) -> Result<CircuitData<F, C, D>, Rejected> {
        self.decode_fingerprinted(spec, bytes).map(|(data, _)| data)
    }

    /// [`CircuitCache::decode`], with the circuit's fingerprint (recomputed, and equal to the
    /// recorded one).
    pub fn decode_fingerprinted(
        &self,
        spec: &CircuitSpec<'_>,
        bytes: &[u8],
    ) -> Result<(CircuitData<F, C, D>, CircuitFingerprint), Rejected> {
        let mut rest = bytes;
        let mut take = |n: usize| -> Result<&[u8], Rejected> {
            if rest.len() < n {
                return Err(Rejected::Truncated);
            }
            let (a, b) = rest.split_at(n);
            rest = b;
            Ok(a)
        };
        if take(8)? != MAGIC {
            return Err(Rejected::Magic);
        }
        let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or([0; 4]));
        let u64_at = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let key_len = u32_at(take(4)?) as usize;
        if take(key_len)? != self.full_key(spec).as_bytes() {
            return Err(Rejected::Key);
        }
        let mut recorded = [0u64; 4];
        for r in recorded.iter_mut() {
            *r = u64_at(take(8)?);
        }
        let recorded_fp =
            CircuitFingerprint(take(32)?.try_into().map_err(|_| Rejected::Truncated)?);
        let len = u64_at(take(8)?) as usize;
        let sum = u64_at(take(8)?);
        let payload = take(len)?;
        if checksum(payload) != sum {
            return Err(Rejected::Checksum);
        }
        let gates = self.serializers.gates.as_ref();
        let generators = self.serializers.generators.as_ref();
        // Deserializing arbitrary bytes may panic inside plonky2; a panic is a rejection.
        let data = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            CircuitData::<F, C, D>::from_bytes(payload, gates, generators)
        }))
        .map_err(|_| Rejected::Deserialize)?
        .map_err(|_| Rejected::Deserialize)?;
        let digest = data.verifier_only.circuit_digest;
        // The pin first: a file swapped by someone who also rewrote the header (checksum,
        // digest, fingerprint) is refused, not merely rebuilt over.
        let found = self.fingerprint(&data).map_err(|_| Rejected::Deserialize)?;
        if let Some(pinned) = spec.pinned {
            if pinned != found {
                return Err(Rejected::Pinned { pinned, found });
            }
        }
        if digest_u64s(&digest) != recorded || recompute_circuit_digest(&data) != digest {
            return Err(Rejected::Digest);
        }
        if found != recorded_fp {
            return Err(Rejected::Fingerprint);
        }
        if data.common.num_public_inputs != spec.num_public_inputs {
            return Err(Rejected::PublicInputs);
        }
        Ok((data, found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pins::tests::tiny;
    use plonky2::plonk::circuit_data::CircuitConfig;

    fn spec<'a>(key: &'a str, pinned: Option<CircuitFingerprint>) -> CircuitSpec<'a> {
        CircuitSpec {
            name: "tiny",
            key,
            num_public_inputs: 8,
            pinned,
        }
    }

    fn never() -> anyhow::Result<CircuitData<F, C, D>> {
        panic!("a pinned circuit must not be rebuilt")
    }

    /// Where the recorded fingerprint starts in a cache file of `key`.
    fn fingerprint_offset(cache: &CircuitCache, key: &str) -> usize {
        8 + 4 + cache.full_key(&spec(key, None)).len() + 32
    }

    #[test]
    fn the_header_records_the_fingerprint_and_pins_refuse_swaps() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CircuitCache::in_dir(dir.path());
        let key = "tiny/test";
        let honest = tiny(2, CircuitConfig::standard_recursion_config());
        let other = tiny(3, CircuitConfig::standard_recursion_config());
        // The same circuit with one FRI query round: same digest, another fingerprint.
        let mut cfg = CircuitConfig::standard_recursion_config();
        cfg.fri_config.num_query_rounds = 1;
        cfg.security_bits = 1;
        let weak = tiny(2, cfg);
        assert_eq!(
            weak.verifier_only.circuit_digest,
            honest.verifier_only.circuit_digest
        );
        let fp = cache.fingerprint(&honest).unwrap();
        assert_ne!(cache.fingerprint(&weak).unwrap(), fp);
        let path = cache.path_of(&spec(key, None)).unwrap();

        // Honest: built once, recorded, loaded pinned.
        let (_, built_fp) = cache
            .load_or_build(&spec(key, Some(fp)), || {
                Ok(tiny(2, CircuitConfig::standard_recursion_config()))
            })
            .unwrap();
        assert_eq!(built_fp, fp);
        let file = std::fs::read(&path).unwrap();
        let at = fingerprint_offset(&cache, key);
        assert_eq!(&file[at..at + 32], &fp.0);
        let (_, loaded_fp) = cache.load_or_build(&spec(key, Some(fp)), never).unwrap();
        assert_eq!(loaded_fp, fp);

        // Payload swapped for the weak circuit's, checksum recomputed, header (digest,
        // fingerprint) left as it was: the digest still matches, the fingerprint does not.
        let mut spliced = cache.encode(&spec(key, None), &weak).unwrap();
        spliced[..at + 32].copy_from_slice(&file[..at + 32]);
        assert_eq!(
            cache.decode(&spec(key, None), &spliced).err(),
            Some(Rejected::Fingerprint)
        );
        assert_eq!(
            cache.decode(&spec(key, Some(fp)), &spliced).err(),
            Some(Rejected::Pinned {
                pinned: fp,
                found: cache.fingerprint(&weak).unwrap()
            })
        );

        // A whole consistent file of another circuit under this key (an attacker rewrites the
        // header too): only the pin tells; pinned, it is refused and not rebuilt over.
        let swapped = cache.encode(&spec(key, None), &other).unwrap();
        assert!(cache.decode(&spec(key, None), &swapped).is_ok());
        std::fs::write(&path, &swapped).unwrap();
        let err = cache
            .load_or_build(&spec(key, Some(fp)), never)
            .err()
            .unwrap();
        assert!(matches!(
            &err,
            CacheError::Pinned(PinError::Mismatch { pinned, .. }) if *pinned == fp
        ));
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            swapped,
            "the file is left for inspection"
        );

        // Unpinned, a corrupted file is rebuilt as before.
        std::fs::write(&path, &spliced).unwrap();
        let (_, rebuilt) = cache
            .load_or_build(&spec(key, None), || {
                Ok(tiny(2, CircuitConfig::standard_recursion_config()))
            })
            .unwrap();
        assert_eq!(rebuilt, fp);
        assert_eq!(std::fs::read(&path).unwrap(), file);

        // A freshly built circuit that is not the pinned one is refused and not cached.
        let dir2 = tempfile::tempdir().unwrap();
        let cache2 = CircuitCache::in_dir(dir2.path());
        let err = cache2
            .load_or_build(&spec(key, Some(fp)), || {
                Ok(tiny(3, CircuitConfig::standard_recursion_config()))
            })
            .err()
            .unwrap();
        assert!(matches!(err, CacheError::Pinned(PinError::Mismatch { .. })));
        assert!(!cache2.path_of(&spec(key, None)).unwrap().exists());
    }
}
