//! The chained proof trees a batch has beside its transactions (SPEC 13.11): the state diff
//! (13.7), the priority ops consumed (13.8) and the payout tree (13.9), and for a batch with a
//! split the split-credit chain (19.5), each a chunk circuit of a fixed size and a 2-to-1
//! merge per level ([`crate::circuits::chain`]).
//!
//! **Sizes.** The chunk circuits are sized from the leaf size `k` (transactions per payment
//! leaf, [`ChunkShape::for_leaf`]) so that `2^L` chunks of each kind hold what `2^L` leaves can
//! produce in the common case; the planner pads all the trees of a batch to the same number of
//! leaves (the largest any of them needs), so one settlement circuit per top level verifies
//! their roots.
//!
//! **Jobs.** A chunk job's input is a [`ChunkInput`]: the chunk's witness and the statement it
//! must prove (the proof is refused if its public inputs differ). Merge circuits are built
//! lazily per level, like the range merges, and kept for the life of the registry.

use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context};
use plonky2::field::types::PrimeField64;
use plonky2::plonk::circuit_data::{CircuitData, CommonCircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cache::CircuitCache;
use crate::circuits::aggregate::MAX_LEVEL;
use crate::circuits::chain::{no_derived, ChainLayout, ChainMerge, Derive};
use crate::circuits::diff::{diff_layout, DiffCircuit, DiffStatement, DiffWitness};
use crate::circuits::diff_grouped::{
    grouped_layout, GroupedDiffCircuit, GroupedParts, GroupedStatement, GroupedWitness,
};
use crate::circuits::payout::{
    derive_merge, payout_layout, PayoutCircuit, PayoutStatement, PayoutWitness,
};
use crate::circuits::priority::{
    priority_layout, PriorityCircuit, PriorityStatement, PriorityWitness,
};
use crate::circuits::split::{
    split_layout, SplitChainCircuit, SplitLane, SplitStatement, LANE_PAYEES,
};
use crate::circuits::ticks::{walk_layout, Lane, TickWalkCircuit, WalkChunkWitness, WalkStatement};
use crate::{C, D, F};

/// The input of a chunk job: the witness and the statement its proof must have.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChunkInput<W, S> {
    pub witness: W,
    pub statement: S,
}

/// A chunk circuit of one of the chained trees.
pub trait ChunkCircuit: Send + Sync + 'static {
    type Witness: Serialize + DeserializeOwned + Send + Sync;
    type Statement: Serialize + DeserializeOwned + Send + Sync;
    fn data(&self) -> &CircuitData<F, C, D>;
    /// Proves `witness`; fails unless the proof states exactly `statement`.
    fn prove(
        &self,
        witness: &Self::Witness,
        statement: &Self::Statement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>>;
}

impl ChunkCircuit for DiffCircuit {
    type Witness = DiffWitness;
    type Statement = DiffStatement;
    fn data(&self) -> &CircuitData<F, C, D> {
        &self.data
    }
    fn prove(
        &self,
        w: &DiffWitness,
        s: &DiffStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        DiffCircuit::prove(self, w, s)
    }
}

impl ChunkCircuit for GroupedDiffCircuit {
    type Witness = GroupedWitness;
    type Statement = GroupedStatement;
    fn data(&self) -> &CircuitData<F, C, D> {
        &self.data
    }
    fn prove(
        &self,
        w: &GroupedWitness,
        s: &GroupedStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        GroupedDiffCircuit::prove(self, w, s)
    }
}

impl ChunkCircuit for PriorityCircuit {
    type Witness = PriorityWitness;
    type Statement = PriorityStatement;
    fn data(&self) -> &CircuitData<F, C, D> {
        &self.data
    }
    fn prove(
        &self,
        w: &PriorityWitness,
        s: &PriorityStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        PriorityCircuit::prove(self, w, s)
    }
}

impl ChunkCircuit for PayoutCircuit {
    type Witness = PayoutWitness;
    type Statement = PayoutStatement;
    fn data(&self) -> &CircuitData<F, C, D> {
        &self.data
    }
    fn prove(
        &self,
        w: &PayoutWitness,
        s: &PayoutStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        PayoutCircuit::prove(self, w, s)
    }
}

impl ChunkCircuit for TickWalkCircuit {
    type Witness = Vec<Lane>;
    type Statement = WalkStatement;
    fn data(&self) -> &CircuitData<F, C, D> {
        &self.data
    }
    fn prove(
        &self,
        lanes: &Vec<Lane>,
        s: &WalkStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        TickWalkCircuit::prove(
            self,
            &WalkChunkWitness {
                statement: *s,
                lanes: lanes.clone(),
            },
        )
    }
}

impl ChunkCircuit for SplitChainCircuit {
    type Witness = Vec<SplitLane>;
    type Statement = SplitStatement;
    fn data(&self) -> &CircuitData<F, C, D> {
        &self.data
    }
    fn prove(
        &self,
        lanes: &Vec<SplitLane>,
        s: &SplitStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        self.prove_lanes(lanes, s)
    }
}

/// Capacities of the chunk circuits for payment leaves of `k` transactions.
///
/// A transaction changes at most two accounts besides the operator's (every fee goes to
/// account 0), creates at most one, consumes at most one priority op and makes at most one
/// payout; so a diff chunk has `2k + 1` slots for existing accounts and `k` for new ones, a
/// priority chunk `k` slots and a payout chunk `2^ceil(log2 k)`. A grouped (version 4) diff
/// chunk has `2k + 1` slots of one stream record each (a slot holds an existing or a new
/// account; an account with more stream records continues in the next slot). A split-credit
/// chunk has `k` lanes of [`LANE_PAYEES`] payees: a leaf of splits to at most 16 payees each
/// (a larger split takes one lane per 16 payees, and more chunks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkShape {
    pub diff_old: usize,
    pub diff_new: usize,
    pub grouped_cap: usize,
    pub grouped_subs: usize,
    pub priority: usize,
    pub payout_depth: usize,
    pub split_lanes: usize,
    /// Lanes of [`crate::circuits::ticks::LANE_STEPS`] ticks per tick-walk chunk.
    pub walk_lanes: usize,
    /// The split-credit chunk also proves registrations and distributions (SPEC 19.5,
    /// "Kinds"): the registry of a leaf that proves the revenue-share kinds.
    pub split_shares: bool,
}

impl ChunkShape {
    pub fn for_leaf(k: usize) -> ChunkShape {
        let k = k.max(1);
        ChunkShape {
            diff_old: 2 * k + 1,
            diff_new: k,
            grouped_cap: 2 * k + 1,
            grouped_subs: 1,
            priority: k,
            payout_depth: k.next_power_of_two().trailing_zeros() as usize,
            split_lanes: k,
            walk_lanes: WALK_LANES_PER_SLOT * k,
            split_shares: false,
        }
    }

    /// The same shape with tick-walk chunks of `lanes` lanes instead of `16 k`: a deployment
    /// that settles many ticks per batch takes larger chunks, which prove more ticks per
    /// second with aggregation (1,400 at 100 lanes, 3,680 at 1,600: docs/BENCHMARKS.md)
    /// and let a batch of `2^L` chunks settle `2^L x 32 x lanes` ticks. Part of the final
    /// circuits (and so of the pins, which record it: `CircuitPins::walk_lanes`).
    pub fn with_walk_lanes(self, lanes: usize) -> ChunkShape {
        ChunkShape {
            walk_lanes: lanes.clamp(1, MAX_WALK_LANES),
            ..self
        }
    }
}

/// The largest tick-walk chunk a deployment may choose (131,072 ticks, about 2^18 rows).
pub const MAX_WALK_LANES: usize = 4096;

/// Tick-walk lanes per transaction slot of a leaf: a chunk of `16 k` lanes walks `512 k` ticks
/// (4,096 for `k = 8`, about 5,100 rows, 2^13), so a batch of `2^L` chunks settles up to
/// `2^(L + 9) k` ticks (SPEC 18.7; denser batches want larger chunks: docs/BENCHMARKS.md).
pub const WALK_LANES_PER_SLOT: usize = 16;

/// Version of the chained merge definitions (part of their cache keys): bump it when
/// [`ChainMerge`] or a layout changes.
pub const CHAINS_VERSION: &str = "chains-v1";

/// One chained tree: its chunk circuit and its merges, built (or loaded from the cache) lazily
/// per level.
pub struct ChainSet<Ch: ChunkCircuit> {
    pub name: &'static str,
    pub chunk: Ch,
    layout: ChainLayout,
    derive: &'static Derive,
    cache: CircuitCache,
    merges: Vec<OnceLock<Arc<ChainMerge>>>,
    build_lock: Mutex<()>,
}

impl<Ch: ChunkCircuit> ChainSet<Ch> {
    fn new(
        name: &'static str,
        chunk: Ch,
        layout: ChainLayout,
        derive: &'static Derive,
        cache: &CircuitCache,
    ) -> Self {
        ChainSet {
            name,
            chunk,
            layout,
            derive,
            cache: cache.clone(),
            merges: (0..=MAX_LEVEL).map(|_| OnceLock::new()).collect(),
            build_lock: Mutex::new(()),
        }
    }

    /// The merge circuit of `level` (>= 1).
    pub fn merge(&self, level: u32) -> anyhow::Result<Arc<ChainMerge>> {
        if level == 0 || level > MAX_LEVEL {
            bail!("{} merge level {level} is out of range", self.name);
        }
        if let Some(m) = self.merges[level as usize].get() {
            return Ok(m.clone());
        }
        let below = if level > 1 {
            Some(self.merge(level - 1)?)
        } else {
            None
        };
        let _guard = self.build_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = self.merges[level as usize].get() {
            return Ok(m.clone());
        }
        let inner = below.as_ref().map_or(self.chunk.data(), |m| &m.data);
        let m = Arc::new(ChainMerge::build_or_load(
            inner,
            self.layout.clone(),
            self.derive,
            &self.cache,
            &format!("{}-merge-{level}", self.name),
            &format!("{CHAINS_VERSION}/{}/level={level}", self.name),
        )?);
        let _ = self.merges[level as usize].set(m.clone());
        Ok(m)
    }

    /// Runs `f` on the circuit of the proofs of `level` (the chunk circuit at 0).
    pub fn with_level<R>(
        &self,
        level: u32,
        f: impl FnOnce(&CircuitData<F, C, D>) -> R,
    ) -> anyhow::Result<R> {
        Ok(if level == 0 {
            f(self.chunk.data())
        } else {
            f(&self.merge(level)?.data)
        })
    }

    fn common(&self, level: u32) -> anyhow::Result<CommonCircuitData<F, D>> {
        self.with_level(level, |d| d.common.clone())
    }

    /// Reads a serialized proof of `level`.
    pub fn read_proof(
        &self,
        level: u32,
        bytes: &[u8],
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let common = self.common(level)?;
        ProofWithPublicInputs::from_bytes(bytes.to_vec(), &common).map_err(|e| {
            anyhow::anyhow!(
                "{} level-{level} proof does not deserialize: {e:?}",
                self.name
            )
        })
    }

    /// Proves a chunk job from its serialized [`ChunkInput`]; returns the proof and its public
    /// inputs.
    pub fn prove_chunk(&self, input: &[u8]) -> anyhow::Result<(Vec<u8>, Vec<u64>)> {
        let input: ChunkInput<Ch::Witness, Ch::Statement> =
            serde_json::from_slice(input).with_context(|| format!("{} chunk input", self.name))?;
        let proof = self.chunk.prove(&input.witness, &input.statement)?;
        Ok(Self::output(&proof))
    }

    /// Proves the merge at `level` of two serialized proofs of `level - 1`.
    pub fn prove_merge(
        &self,
        level: u32,
        left: &[u8],
        right: &[u8],
    ) -> anyhow::Result<(Vec<u8>, Vec<u64>)> {
        let merge = self.merge(level)?;
        let l = self.read_proof(level - 1, left)?;
        let r = self.read_proof(level - 1, right)?;
        let proof = merge.prove(&l, &r)?;
        Ok(Self::output(&proof))
    }

    fn output(proof: &ProofWithPublicInputs<F, C, D>) -> (Vec<u8>, Vec<u64>) {
        let pis = proof
            .public_inputs
            .iter()
            .map(|x| x.to_canonical_u64())
            .collect();
        (proof.to_bytes(), pis)
    }
}

/// The diff, priority and payout trees of one leaf size. The grouped diff trees (version 4
/// diffs, without and with agent parts) and the split-credit chain are built on first use:
/// most deployments never need them.
pub struct ChainCircuits {
    pub shape: ChunkShape,
    pub diff: ChainSet<DiffCircuit>,
    pub priority: ChainSet<PriorityCircuit>,
    pub payout: ChainSet<PayoutCircuit>,
    grouped: [OnceLock<Arc<ChainSet<GroupedDiffCircuit>>>; 3],
    splits: OnceLock<Arc<ChainSet<SplitChainCircuit>>>,
    walks: OnceLock<Arc<ChainSet<TickWalkCircuit>>>,
    cache: CircuitCache,
    build_lock: Mutex<()>,
}

impl ChainCircuits {
    /// Builds (or loads from `cache`) the three chunk circuits of `shape` (merges, and the
    /// other trees' circuits, come lazily).
    pub fn build_or_load(shape: ChunkShape, cache: &CircuitCache) -> anyhow::Result<ChainCircuits> {
        let started = std::time::Instant::now();
        let diff = DiffCircuit::build_or_load(shape.diff_old, shape.diff_new, cache)?;
        let priority = PriorityCircuit::build_or_load(shape.priority, cache)?;
        let payout = PayoutCircuit::build_or_load(shape.payout_depth, cache)?;
        tracing::info!(
            ?shape,
            diff_bits = diff.data.common.degree_bits(),
            priority_bits = priority.data.common.degree_bits(),
            payout_bits = payout.data.common.degree_bits(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "chunk circuits ready"
        );
        Ok(ChainCircuits {
            shape,
            diff: ChainSet::new("diff", diff, diff_layout(), &no_derived, cache),
            priority: ChainSet::new("priority", priority, priority_layout(), &no_derived, cache),
            payout: ChainSet::new("payout", payout, payout_layout(), &derive_merge, cache),
            grouped: [OnceLock::new(), OnceLock::new(), OnceLock::new()],
            splits: OnceLock::new(),
            walks: OnceLock::new(),
            cache: cache.clone(),
            build_lock: Mutex::new(()),
        })
    }

    /// The set in `cell`, made by `make` (under the build lock) on first use.
    fn once<Ch: ChunkCircuit>(
        &self,
        cell: &OnceLock<Arc<ChainSet<Ch>>>,
        make: impl FnOnce() -> anyhow::Result<ChainSet<Ch>>,
    ) -> anyhow::Result<Arc<ChainSet<Ch>>> {
        if let Some(set) = cell.get() {
            return Ok(set.clone());
        }
        let _guard = self.build_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = cell.get() {
            return Ok(set.clone());
        }
        let set = Arc::new(make()?);
        let _ = cell.set(set.clone());
        Ok(set)
    }

    /// The grouped diff tree of shape `parts` (built or loaded on first use).
    pub fn grouped(
        &self,
        parts: GroupedParts,
    ) -> anyhow::Result<Arc<ChainSet<GroupedDiffCircuit>>> {
        let at = match parts {
            GroupedParts::Streams => 0,
            GroupedParts::Agents => 1,
            GroupedParts::Shares => 2,
        };
        self.once(&self.grouped[at], || {
            let started = std::time::Instant::now();
            let (cap, subs) = (self.shape.grouped_cap, self.shape.grouped_subs);
            let chunk = GroupedDiffCircuit::build_or_load(cap, subs, parts, &self.cache)?;
            tracing::info!(
                cap,
                subs,
                ?parts,
                bits = chunk.data.common.degree_bits(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "grouped diff chunk circuit ready"
            );
            let name = match parts {
                GroupedParts::Streams => "diff-v4",
                GroupedParts::Agents => "diff-v4-agents",
                GroupedParts::Shares => "diff-v4-shares",
            };
            Ok(ChainSet::new(
                name,
                chunk,
                grouped_layout(parts),
                &no_derived,
                &self.cache,
            ))
        })
    }

    /// The split-credit chain (built or loaded on first use).
    pub fn splits(&self) -> anyhow::Result<Arc<ChainSet<SplitChainCircuit>>> {
        self.once(&self.splits, || {
            let started = std::time::Instant::now();
            let (lanes, shares) = (self.shape.split_lanes, self.shape.split_shares);
            let chunk =
                SplitChainCircuit::load_or_build_kind(lanes, LANE_PAYEES, shares, &self.cache)?;
            tracing::info!(
                lanes,
                shares,
                bits = chunk.data.common.degree_bits(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "split-credit chunk circuit ready"
            );
            Ok(ChainSet::new(
                "splits",
                chunk,
                split_layout(),
                &no_derived,
                &self.cache,
            ))
        })
    }

    /// The tick-walk tree (SPEC 18.7; built or loaded on first use).
    pub fn walks(&self) -> anyhow::Result<Arc<ChainSet<TickWalkCircuit>>> {
        self.once(&self.walks, || {
            let started = std::time::Instant::now();
            let lanes = self.shape.walk_lanes;
            let chunk = TickWalkCircuit::build_or_load(lanes, &self.cache)?;
            tracing::info!(
                lanes,
                bits = chunk.data.common.degree_bits(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "tick-walk chunk circuit ready"
            );
            Ok(ChainSet::new(
                "walks",
                chunk,
                walk_layout(),
                &no_derived,
                &self.cache,
            ))
        })
    }
}
