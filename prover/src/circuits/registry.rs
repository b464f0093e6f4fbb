//! [`Circuits`]: the registry of every circuit the prover fleet uses, built (or loaded from
//! the [`CircuitCache`]) lazily: the leaf circuit, the range merges per level, the diff,
//! priority and payout trees and the split-credit chain ([`ChainCircuits`], sized from the
//! leaf size) and the final circuit per top level, diff kind and splits ([`FinalId`]), which is
//! the settlement circuit over the roots of that level ([`SettlementCircuit`], SPEC 13.11).
//!
//! A registry may be given the deployment's pins ([`Circuits::with_pins`], a [`CircuitPins`]
//! manifest): every final circuit it serves must then be pinned ([`FinalId::name`]) and have
//! exactly the pinned [`CircuitFingerprint`] (range merges are checked when the manifest names
//! them), whether it comes from the cache or from a build; otherwise it is refused (see
//! [`crate::cache`]), so a prover built from other code never proves for that deployment. The
//! final circuit's verifier data embeds the verifier data of the four roots, which embed the
//! levels below, so pinning it pins every circuit of the proof system.

use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context};
use plonky2::plonk::circuit_data::{CommonCircuitData, VerifierCircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use rollup_storage::{DiffCircuitKind, ProofTree};
use state::tx::Domain;

use crate::cache::CircuitCache;
use crate::circuits::aggregate::{MergeCircuit, MAX_LEVEL};
use crate::circuits::chain::ChainMerge;
use crate::circuits::diff_grouped::GroupedParts;
use crate::circuits::leaf::LeafCircuit;
use crate::circuits::public::RangeStatement;
use crate::circuits::settlement::{SettlementCircuit, SettlementInner, SettlementProofs};
use crate::circuits::trees::{ChainCircuits, ChainSet, ChunkShape, MAX_WALK_LANES};
use crate::pins::{CircuitPins, FinalId};
use crate::{C, D, F};

/// Every circuit of the proof system, built or loaded lazily per level.
pub struct Circuits<L: LeafCircuit> {
    leaf: L,
    cache: CircuitCache,
    merges: Vec<OnceLock<Arc<MergeCircuit>>>,
    /// The chunk circuits' shape: the leaf size's, with the tick-walk chunk chosen by
    /// [`Circuits::with_walk_lanes`].
    shape: ChunkShape,
    chains: OnceLock<Arc<ChainCircuits>>,
    /// Per diff kind and splits ([`final_index`]), per top level.
    finals: Vec<Vec<OnceLock<Arc<SettlementCircuit>>>>,
    build_lock: Mutex<()>,
    pins: Option<CircuitPins>,
}

/// A proof a job produced: its bytes and what it states (serialized into the job's row).
#[derive(Clone, Debug)]
pub struct JobProof {
    pub bytes: Vec<u8>,
    pub statement: serde_json::Value,
}

impl<L: LeafCircuit> Circuits<L> {
    pub fn new(leaf: L, cache: CircuitCache) -> Circuits<L> {
        let n = MAX_LEVEL as usize + 1;
        let shape = ChunkShape {
            split_shares: leaf.proves_shares(),
            ..ChunkShape::for_leaf(leaf.leaf_size())
        };
        Circuits {
            leaf,
            cache,
            shape,
            merges: (0..n).map(|_| OnceLock::new()).collect(),
            chains: OnceLock::new(),
            finals: (0..4 * DiffCircuitKind::ALL.len())
                .map(|_| (0..n).map(|_| OnceLock::new()).collect())
                .collect(),
            build_lock: Mutex::new(()),
            pins: None,
        }
    }

    /// Tick-walk chunks of `lanes` lanes instead of the leaf size's default
    /// ([`ChunkShape::with_walk_lanes`]); before any circuit is built.
    pub fn with_walk_lanes(mut self, lanes: usize) -> anyhow::Result<Circuits<L>> {
        anyhow::ensure!(
            (1..=MAX_WALK_LANES).contains(&lanes),
            "tick-walk chunks of {lanes} lanes: from 1 to {MAX_WALK_LANES}"
        );
        anyhow::ensure!(
            self.chains.get().is_none(),
            "the chunk circuits are built already"
        );
        self.shape = self.shape.with_walk_lanes(lanes);
        Ok(self)
    }

    /// The shape of this registry's chunk circuits (what the planner cuts batches by).
    pub fn shape(&self) -> ChunkShape {
        self.shape
    }

    /// Serves only the circuits `pins` names (final circuits must be pinned; merge circuits are
    /// checked when named), each with exactly its pinned fingerprint. Pins that record another
    /// leaf size, tick-walk chunk or shape of policy checks than this registry's are refused by
    /// name (their final circuits could not match).
    pub fn with_pins(mut self, pins: CircuitPins) -> anyhow::Result<Circuits<L>> {
        pins.check_serializers(self.cache.serializers())?;
        if let Some(k) = pins.leaf_size {
            anyhow::ensure!(
                k == self.leaf.leaf_size(),
                "the pins are for leaves of {k} transactions, not {} (--leaf-size)",
                self.leaf.leaf_size()
            );
        }
        if let Some(lanes) = pins.walk_lanes {
            anyhow::ensure!(
                lanes == self.shape.walk_lanes,
                "the pins are for tick-walk chunks of {lanes} lanes, not {} (--walk-lanes)",
                self.shape.walk_lanes
            );
        }
        if let Some(policies) = pins.leaf_policies {
            anyhow::ensure!(
                policies == self.leaf.policy_checks(),
                "the pins are for a leaf with policy checks {policies:?}, not {:?} \
                 (--leaf-policies)",
                self.leaf.policy_checks()
            );
        }
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

    /// The diff, priority and payout trees for this registry's leaf size.
    pub fn chains(&self) -> anyhow::Result<Arc<ChainCircuits>> {
        if let Some(c) = self.chains.get() {
            return Ok(c.clone());
        }
        let _guard = self.build_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = self.chains.get() {
            return Ok(c.clone());
        }
        let c = Arc::new(ChainCircuits::build_or_load(self.shape, &self.cache)?);
        let _ = self.chains.set(c.clone());
        Ok(c)
    }

    /// The range merge circuit of `level` (>= 1).
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

    /// The final (settlement) circuit over the roots of `id.level` (0 = one leaf per tree)
    /// with a diff tree of `id.kind`, and a split-credit chain if `id.splits`.
    pub fn final_circuit(&self, id: FinalId) -> anyhow::Result<Arc<SettlementCircuit>> {
        let FinalId {
            level: top_level,
            kind,
            splits,
            walks,
        } = id;
        Self::check_level(top_level)?;
        if kind == DiffCircuitKind::V4Agents {
            anyhow::ensure!(
                self.leaf.proves_agents(),
                "{id}: a passport or lanes record comes from an agent's spend or a lane's, which \
                 only a leaf with policy checks proves (rollup-prover --leaf-policies)"
            );
        }
        if kind == DiffCircuitKind::V4Shares {
            anyhow::ensure!(
                splits && self.leaf.proves_shares(),
                "{id}: a shares record comes with its registration's split-credit record, \
                 so the finals of `v4-shares` diffs verify that chain (`-splits`) over a leaf \
                 with the revenue-share kinds (rollup-prover --leaf-shares)"
            );
        }
        let cell = &self.finals[final_index(id)][top_level as usize];
        if let Some(c) = cell.get() {
            return Ok(c.clone());
        }
        let name = id.name();
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
        let range = if top_level > 0 {
            Some(self.merge(top_level)?)
        } else {
            None
        };
        let chains = self.chains()?;
        let grouped = match GroupedParts::of(kind) {
            None => None,
            Some(parts) => Some(chains.grouped(parts)?),
        };
        let diff_chunk = match &grouped {
            None => &chains.diff.chunk.data,
            Some(g) => &g.chunk.data,
        };
        let split_chain = if splits { Some(chains.splits()?) } else { None };
        let split_merge = match &split_chain {
            Some(s) if top_level > 0 => Some(s.merge(top_level)?),
            _ => None,
        };
        let walk_tree = if walks { Some(chains.walks()?) } else { None };
        let walk_merge = match &walk_tree {
            Some(w) if top_level > 0 => Some(w.merge(top_level)?),
            _ => None,
        };
        let (diff, priority, payout) = if top_level > 0 {
            let diff = match &grouped {
                None => chains.diff.merge(top_level)?,
                Some(g) => g.merge(top_level)?,
            };
            (
                Some(diff),
                Some(chains.priority.merge(top_level)?),
                Some(chains.payout.merge(top_level)?),
            )
        } else {
            (None, None, None)
        };
        let _guard = self.build_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cell.get() {
            return Ok(c.clone());
        }
        let inner = SettlementInner {
            range: range.as_ref().map_or(self.leaf.data(), |m| &m.data),
            diff: diff
                .as_ref()
                .map_or(diff_chunk, |m: &Arc<ChainMerge>| &m.data),
            priority: priority
                .as_ref()
                .map_or(&chains.priority.chunk.data, |m| &m.data),
            payout: payout
                .as_ref()
                .map_or(&chains.payout.chunk.data, |m| &m.data),
            splits: match (&split_merge, &split_chain) {
                (Some(m), _) => Some(&m.data),
                (None, Some(s)) => Some(&s.chunk.data),
                (None, None) => None,
            },
            walks: match (&walk_merge, &walk_tree) {
                (Some(m), _) => Some(&m.data),
                (None, Some(w)) => Some(&w.chunk.data),
                (None, None) => None,
            },
        };
        let c = Arc::new(SettlementCircuit::build_or_load(
            top_level,
            kind,
            inner,
            &self.cache,
            pinned,
        )?);
        let _ = cell.set(c.clone());
        Ok(c)
    }

    /// Builds (or loads) every circuit up to the final one of `top_level` for version 1 diffs.
    pub fn warm_up(&self, top_level: u32) -> anyhow::Result<()> {
        self.final_circuit(FinalId::v1(top_level)).map(|_| ())
    }

    /// Common data of the range proofs of `level` (0 = leaf), to deserialize them.
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

    /// Proves the range merge at `level` of two serialized level `level - 1` proofs.
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

    /// Proves a leaf job of `tree` (for the diff tree: of `kind`'s circuit) from its serialized
    /// input (the chain circuits are loaded only for a chained tree's job).
    pub fn prove_tree_leaf(
        &self,
        tree: ProofTree,
        kind: DiffCircuitKind,
        input: &[u8],
    ) -> anyhow::Result<JobProof> {
        let (bytes, pis) = match tree {
            ProofTree::Range => {
                let w: L::Witness = serde_json::from_slice(input).context("leaf witness")?;
                let (bytes, s) = self.prove_leaf(&w)?;
                return Ok(JobProof {
                    bytes,
                    statement: serde_json::to_value(s)?,
                });
            }
            ProofTree::Diff => match self.grouped(kind)? {
                None => self.chains()?.diff.prove_chunk(input)?,
                Some(g) => g.prove_chunk(input)?,
            },
            ProofTree::Priority => self.chains()?.priority.prove_chunk(input)?,
            ProofTree::Payout => self.chains()?.payout.prove_chunk(input)?,
            ProofTree::Splits => self.chains()?.splits()?.prove_chunk(input)?,
            ProofTree::Walks => self.chains()?.walks()?.prove_chunk(input)?,
        };
        Ok(JobProof {
            bytes,
            statement: serde_json::to_value(pis)?,
        })
    }

    /// Proves a merge job of `tree` (for the diff tree: of `kind`'s circuits) at `level` from
    /// its two children's proofs.
    pub fn prove_tree_merge(
        &self,
        tree: ProofTree,
        kind: DiffCircuitKind,
        level: u32,
        left: &[u8],
        right: &[u8],
    ) -> anyhow::Result<JobProof> {
        let (bytes, pis) = match tree {
            ProofTree::Range => {
                let (bytes, s) = self.prove_merge(level, left, right)?;
                return Ok(JobProof {
                    bytes,
                    statement: serde_json::to_value(s)?,
                });
            }
            ProofTree::Diff => match self.grouped(kind)? {
                None => self.chains()?.diff.prove_merge(level, left, right)?,
                Some(g) => g.prove_merge(level, left, right)?,
            },
            ProofTree::Priority => self.chains()?.priority.prove_merge(level, left, right)?,
            ProofTree::Payout => self.chains()?.payout.prove_merge(level, left, right)?,
            ProofTree::Splits => self.chains()?.splits()?.prove_merge(level, left, right)?,
            ProofTree::Walks => self.chains()?.walks()?.prove_merge(level, left, right)?,
        };
        Ok(JobProof {
            bytes,
            statement: serde_json::to_value(pis)?,
        })
    }

    /// The grouped diff tree of `kind` (`None` for version 1 diffs).
    fn grouped(
        &self,
        kind: DiffCircuitKind,
    ) -> anyhow::Result<Option<Arc<ChainSet<crate::circuits::diff_grouped::GroupedDiffCircuit>>>>
    {
        Ok(match GroupedParts::of(kind) {
            None => None,
            Some(parts) => Some(self.chains()?.grouped(parts)?),
        })
    }

    /// Proves the final (settlement) proof `id` of a batch from the serialized roots of
    /// `id.level` of its trees (in [`ProofTree::of_batch`] order) and the chain's domain;
    /// returns the batch proof in the format [`crate::verify::verify_batch_proof`] reads and
    /// the L1 statement it proves.
    pub fn prove_final(
        &self,
        id: FinalId,
        roots: &[Vec<u8>],
        domain: &Domain,
    ) -> anyhow::Result<(Vec<u8>, state::settlement::BatchStatement)> {
        // The four trees, then the split-credit chain's and the tick-walk tree's roots.
        let side = rollup_storage::SideTrees {
            splits: id.splits,
            walks: id.walks,
        };
        let trees = ProofTree::of_batch(side).len();
        anyhow::ensure!(
            roots.len() == trees,
            "{} root proofs for {trees} trees",
            roots.len(),
        );
        let top_level = id.level;
        let circuit = self.final_circuit(id)?;
        let chains = self.chains()?;
        let range = self.read_proof(top_level, &roots[0])?;
        let diff = match self.grouped(id.kind)? {
            None => chains.diff.read_proof(top_level, &roots[1])?,
            Some(g) => g.read_proof(top_level, &roots[1])?,
        };
        let priority = chains.priority.read_proof(top_level, &roots[2])?;
        let payout = chains.payout.read_proof(top_level, &roots[3])?;
        let splits = match id.splits {
            true => Some(chains.splits()?.read_proof(top_level, &roots[4])?),
            false => None,
        };
        let walks = match id.walks {
            true => Some(chains.walks()?.read_proof(top_level, &roots[trees - 1])?),
            false => None,
        };
        let (proof, statement) = circuit.prove(
            &SettlementProofs {
                range: &range,
                diff: &diff,
                priority: &priority,
                payout: &payout,
                splits: splits.as_ref(),
                walks: walks.as_ref(),
            },
            domain,
        )?;
        Ok((crate::verify::encode_batch_proof(id, &proof), statement))
    }
}

impl<L: LeafCircuit> crate::verify::FinalVerifiers for Circuits<L> {
    fn final_verifier(&self, id: FinalId) -> anyhow::Result<Arc<VerifierCircuitData<F, C, D>>> {
        Ok(self.final_circuit(id)?.verifier.clone())
    }

    fn leaf_size(&self) -> Option<usize> {
        Some(self.leaf.leaf_size())
    }

    fn walk_lanes(&self) -> Option<usize> {
        Some(self.shape.walk_lanes)
    }

    fn leaf_policies(&self) -> Option<crate::circuits::payment::PolicyChecks> {
        Some(self.leaf.policy_checks())
    }
}

/// The index of the final circuits of `id`'s diff kind and side trees in `Circuits::finals`.
fn final_index(id: FinalId) -> usize {
    let kind = usize::from(crate::verify::kind_code(id.kind));
    4 * kind + 2 * usize::from(id.walks) + usize::from(id.splits)
}
