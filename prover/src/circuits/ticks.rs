//! The tick-walk circuit (SPEC 18.7): proves that settlements' tick values lie on their
//! streams' hash chains, walking every settled tick in-circuit at about one row per tick.
//!
//! A settlement of stream `id` from `from` to `to` with tick value `t_to` is sound when walking
//! the chain from `t_to` down `to - from` steps (`t_{k-1} = H_k(t_k)`, SPEC 18.1) gives the
//! stream's `head`. That walk is the only part of a settlement whose cost grows with the ticks
//! it settles, so it is proven here, apart from the leaf (whose slots have a fixed shape), as a
//! [`WalkRecord`] `(id, to, from, t_to, head)`; the records of a batch are folded into an
//! accumulator ([`absorb`]) that the leaves and this tree must agree on.
//!
//! **Lanes.** A chunk is `n` lanes of [`LANE_STEPS`] chained Poseidon permutations each. A walk
//! starts at the first step of a lane (`start`: the lane takes `id, to, t_to` from its witness
//! instead of continuing the previous lane) and runs through whole lanes; it ends in its last
//! lane after `r` steps (`1 <= r <= LANE_STEPS`), where the lane's `r`-th value is compared
//! with the record's `head` (one random access per element) and `from = k - r`. The rest of
//! that lane hashes on below `from` (values anyone can compute, never used). A walk may cross
//! chunk boundaries: the walk in progress is the chunk's `carry` (13 elements, zero when none),
//! linked by the chained merges (`circuits::chain`) like the other trees' running values.
//!
//! **Invariants the constraints hold**, whatever the witness: a lane starts a walk only when
//! none is open; a lane ends a walk only while one is open (an idle lane absorbs nothing);
//! every step hashes the walk's own `id` and its position `k`; an absorbed record's `to` and
//! `t_to` are those its walk started from and its `head` and `from` are where it ended. What
//! they leave to the circuit above: the first chunk's `carry_in` must be closed and its
//! `acc_in` [`Digest::ZERO`], the last chunk's `carry_out` closed, and the accumulator equal to
//! the leaves' (which check `from` against the stream's `settled`, so a position below zero,
//! i.e. a wrapped field element, never matches).
//!
//! **Cost** (`rows_per_tick` test, docs/BENCHMARKS.md): per lane [`LANE_STEPS`] Poseidon rows,
//! the positions (one arithmetic operation per step), 12 selects for the lane's start, four
//! random accesses for the end, two permutations for the record and a few gated equalities.

use anyhow::{ensure, Context};
use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::hash_types::{HashOut, HashOutTarget};
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use serde::{Deserialize, Serialize};
use state::hash::{hash_no_pad, Digest};
use state::stream::chain::{walk, TAG_TICK};
use state::stream::StreamId;

use crate::cache::{CircuitCache, CircuitSpec};
use crate::circuits::chain::{ChainLayout, Link};
use crate::circuits::refusal::rule_broken;
use crate::{C, D, F};

/// Chain steps per lane. A power of two: the end of a walk is found by a random access over
/// the lane's values.
pub const LANE_STEPS: usize = 32;

/// Elements of a carry: `open, id0, id1, k, x0..x3, to, t_to0..t_to3`.
pub const CARRY_LEN: usize = 13;

/// Public inputs of a chunk: `acc_in (4), carry_in (13), acc_out (4), carry_out (13)`.
pub const WALK_PUBLIC_INPUTS: usize = 2 * (4 + CARRY_LEN);

/// The chained layout of the tick-walk tree: the accumulator and the carry both run through.
pub fn walk_layout() -> ChainLayout {
    ChainLayout {
        len: WALK_PUBLIC_INPUTS,
        links: vec![Link::new(0, 17, 4), Link::new(4, 21, CARRY_LEN)],
        shared: vec![],
        derived: 0..0,
        empty_right: None,
    }
}

/// What one settlement asks of the tick-walk tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkRecord {
    pub id: StreamId,
    /// The tick settled up to, whose value is `t_to`.
    pub to: u32,
    /// The stream's `settled` before the settlement, whose value is `head`.
    pub from: u32,
    pub t_to: Digest,
    pub head: Digest,
}

impl WalkRecord {
    /// `id0, id1, to, from, t_to0..3, head0..3`.
    pub fn elements(&self) -> [F; 12] {
        let [i0, i1] = self.id.to_field_elements();
        let t = self.t_to.elements();
        let h = self.head.elements();
        [
            i0,
            i1,
            F::from_canonical_u32(self.to),
            F::from_canonical_u32(self.from),
            t[0],
            t[1],
            t[2],
            t[3],
            h[0],
            h[1],
            h[2],
            h[3],
        ]
    }

    /// Ticks walked.
    pub fn steps(&self) -> u32 {
        self.to.saturating_sub(self.from)
    }
}

/// The accumulator after `record`: `hash_no_pad(acc0..3 ‖ record elements)` (16 elements, two
/// permutations). A batch starts from [`Digest::ZERO`].
pub fn absorb(acc: Digest, record: &WalkRecord) -> Digest {
    let mut e = acc.elements().to_vec();
    e.extend(record.elements());
    hash_no_pad(&e)
}

/// A walk in progress at a chunk boundary: `x = t_k` is the value reached, `k` its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWalk {
    pub id: StreamId,
    pub to: u32,
    pub t_to: Digest,
    pub k: u32,
    pub x: Digest,
}

fn carry_elements(carry: Option<&OpenWalk>) -> [F; CARRY_LEN] {
    let Some(c) = carry else {
        return [F::ZERO; CARRY_LEN];
    };
    let [i0, i1] = c.id.to_field_elements();
    let x = c.x.elements();
    let t = c.t_to.elements();
    [
        F::ONE,
        i0,
        i1,
        F::from_canonical_u32(c.k),
        x[0],
        x[1],
        x[2],
        x[3],
        F::from_canonical_u32(c.to),
        t[0],
        t[1],
        t[2],
        t[3],
    ]
}

/// What a chunk proof states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkStatement {
    pub acc_in: Digest,
    pub carry_in: Option<OpenWalk>,
    pub acc_out: Digest,
    pub carry_out: Option<OpenWalk>,
}

impl WalkStatement {
    /// The statement of a chunk or merge proof's public inputs ([`WALK_PUBLIC_INPUTS`]); `None`
    /// if they are not one (a carry is all zero when closed, its flag 1 when open).
    pub fn from_public_inputs(pi: &[F]) -> Option<WalkStatement> {
        if pi.len() != WALK_PUBLIC_INPUTS {
            return None;
        }
        let digest = |at: usize| Digest(std::array::from_fn(|i| pi[at + i]));
        let carry = |at: usize| -> Option<Option<OpenWalk>> {
            let c = &pi[at..at + CARRY_LEN];
            if c.iter().all(|e| *e == F::ZERO) {
                return Some(None);
            }
            if c[0] != F::ONE {
                return None;
            }
            let id0 = c[1].to_canonical_u64();
            let small = |e: F| u32::try_from(e.to_canonical_u64()).ok();
            Some(Some(OpenWalk {
                id: StreamId {
                    payer: state::account::AccountIndex(u32::try_from(id0 >> 16).ok()?),
                    slot: state::stream::StreamSlot((id0 & 0xffff) as u16),
                    opened_at: state::account::Nonce::new(c[2].to_canonical_u64())?,
                },
                k: small(c[3])?,
                x: digest(at + 4),
                to: small(c[8])?,
                t_to: digest(at + 9),
            }))
        };
        Some(WalkStatement {
            acc_in: digest(0),
            carry_in: carry(4)?,
            acc_out: digest(4 + CARRY_LEN),
            carry_out: carry(8 + CARRY_LEN)?,
        })
    }

    /// The proof's public inputs, in the order of [`walk_layout`].
    pub fn public_inputs(&self) -> Vec<F> {
        let mut v = self.acc_in.elements().to_vec();
        v.extend(carry_elements(self.carry_in.as_ref()));
        v.extend(self.acc_out.elements());
        v.extend(carry_elements(self.carry_out.as_ref()));
        v
    }
}

/// A lane that starts a walk takes these from its witness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneStart {
    pub id: StreamId,
    pub to: u32,
    pub t_to: Digest,
}

/// A lane that ends a walk: after `steps` of its steps (1..=[`LANE_STEPS`]) it reaches `head`
/// at position `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneEnd {
    pub steps: u32,
    pub from: u32,
    pub head: Digest,
}

/// One lane's witness. Neither start nor end: continues the open walk, or idles if none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    pub start: Option<LaneStart>,
    pub end: Option<LaneEnd>,
}

/// One chunk job's input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkChunkWitness {
    pub statement: WalkStatement,
    pub lanes: Vec<Lane>,
}

/// Why records got no chunks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkPlanError {
    #[error("record {index} walks no tick (to {to} <= from {from})")]
    Empty { index: usize, to: u32, from: u32 },
    #[error("record {index}: t_to does not walk down to head (not a tick of this stream)")]
    Mismatch { index: usize },
}

/// Cuts `records` (in batch order) into chunks of `lanes` lanes, at least `min_chunks` of
/// them, with the statement each chunk proves. Natively checks each walk on the way (`to -
/// from` hashes per record, the same work the circuit does).
pub fn plan_walks(
    records: &[WalkRecord],
    lanes: usize,
    min_chunks: usize,
) -> Result<Vec<WalkChunkWitness>, WalkPlanError> {
    assert!(lanes > 0, "a chunk has at least one lane");
    // Lane list and, at every lane boundary, the walk in progress and the accumulator.
    let mut all: Vec<Lane> = Vec::new();
    let mut carries: Vec<Option<OpenWalk>> = vec![None];
    let mut accs: Vec<Digest> = vec![Digest::ZERO];
    let mut acc = Digest::ZERO;
    for (index, r) in records.iter().enumerate() {
        if r.to <= r.from {
            return Err(WalkPlanError::Empty {
                index,
                to: r.to,
                from: r.from,
            });
        }
        let m = r.steps() as usize;
        let n = m.div_ceil(LANE_STEPS);
        let (mut k, mut x) = (r.to, r.t_to);
        for j in 0..n {
            let mut lane = Lane::default();
            if j == 0 {
                lane.start = Some(LaneStart {
                    id: r.id,
                    to: r.to,
                    t_to: r.t_to,
                });
            }
            if j + 1 == n {
                // The rest of the walk: the lanes before carried `x` down to `k`, so the whole
                // walk costs `to - from` hashes, once.
                if walk(&r.id, k, x, r.from) != r.head {
                    return Err(WalkPlanError::Mismatch { index });
                }
                lane.end = Some(LaneEnd {
                    steps: (m - j * LANE_STEPS) as u32,
                    from: r.from,
                    head: r.head,
                });
                acc = absorb(acc, r);
                carries.push(None);
            } else {
                let next = k - LANE_STEPS as u32;
                x = walk(&r.id, k, x, next);
                k = next;
                carries.push(Some(OpenWalk {
                    id: r.id,
                    to: r.to,
                    t_to: r.t_to,
                    k,
                    x,
                }));
            }
            all.push(lane);
            accs.push(acc);
        }
    }
    let chunks = all.len().div_ceil(lanes).max(min_chunks).max(1);
    let total = chunks * lanes;
    while all.len() < total {
        all.push(Lane::default());
        carries.push(None);
        accs.push(acc);
    }
    Ok((0..chunks)
        .map(|c| {
            let (a, z) = (c * lanes, (c + 1) * lanes);
            WalkChunkWitness {
                statement: WalkStatement {
                    acc_in: accs[a],
                    carry_in: carries[a],
                    acc_out: accs[z],
                    carry_out: carries[z],
                },
                lanes: all[a..z].to_vec(),
            }
        })
        .collect())
}

#[derive(Clone, Copy, Debug)]
struct CarryTargets {
    open: Target,
    id: [Target; 2],
    k: Target,
    x: [Target; 4],
    to: Target,
    t_to: [Target; 4],
}

impl CarryTargets {
    fn new(b: &mut CircuitBuilder<F, D>) -> Self {
        CarryTargets {
            open: b.add_virtual_target(),
            id: std::array::from_fn(|_| b.add_virtual_target()),
            k: b.add_virtual_target(),
            x: std::array::from_fn(|_| b.add_virtual_target()),
            to: b.add_virtual_target(),
            t_to: std::array::from_fn(|_| b.add_virtual_target()),
        }
    }

    fn elements(&self) -> Vec<Target> {
        let mut v = vec![self.open, self.id[0], self.id[1], self.k];
        v.extend(self.x);
        v.push(self.to);
        v.extend(self.t_to);
        v
    }
}

#[derive(Clone, Copy, Debug)]
struct LaneTargets {
    start: BoolTarget,
    id: [Target; 2],
    to: Target,
    t_to: [Target; 4],
    ends: BoolTarget,
    /// `steps - 1` of the end, the random-access index.
    index: Target,
    from: Target,
    head: [Target; 4],
}

impl LaneTargets {
    fn new(b: &mut CircuitBuilder<F, D>) -> Self {
        LaneTargets {
            start: b.add_virtual_bool_target_safe(),
            id: std::array::from_fn(|_| b.add_virtual_target()),
            to: b.add_virtual_target(),
            t_to: std::array::from_fn(|_| b.add_virtual_target()),
            ends: b.add_virtual_bool_target_safe(),
            index: b.add_virtual_target(),
            from: b.add_virtual_target(),
            head: std::array::from_fn(|_| b.add_virtual_target()),
        }
    }

    fn set(&self, pw: &mut PartialWitness<F>, lane: &Lane) -> anyhow::Result<()> {
        pw.set_bool_target(self.start, lane.start.is_some())?;
        let (id, to, t_to) = match lane.start {
            Some(s) => (s.id.to_field_elements(), s.to, s.t_to),
            None => ([F::ZERO; 2], 0, Digest::ZERO),
        };
        set_all(pw, &self.id, &id)?;
        pw.set_target(self.to, F::from_canonical_u32(to))?;
        set_all(pw, &self.t_to, &t_to.elements())?;
        pw.set_bool_target(self.ends, lane.end.is_some())?;
        let (index, from, head) = match lane.end {
            Some(e) => {
                ensure!(
                    (1..=LANE_STEPS as u32).contains(&e.steps),
                    "a lane ends after 1 to {LANE_STEPS} steps, not {}",
                    e.steps
                );
                (e.steps - 1, e.from, e.head)
            }
            None => (0, 0, Digest::ZERO),
        };
        pw.set_target(self.index, F::from_canonical_u32(index))?;
        pw.set_target(self.from, F::from_canonical_u32(from))?;
        set_all(pw, &self.head, &head.elements())
    }
}

fn set_all(pw: &mut PartialWitness<F>, t: &[Target], v: &[F]) -> anyhow::Result<()> {
    for (t, v) in t.iter().zip(v) {
        pw.set_target(*t, *v)?;
    }
    Ok(())
}

/// `flag * (a - b) == 0`; returns the product, the target a broken rule conflicts on.
fn assert_eq_if(b: &mut CircuitBuilder<F, D>, flag: BoolTarget, x: Target, y: Target) -> Target {
    let d = b.sub(x, y);
    let gated = b.mul(flag.target, d);
    b.assert_zero(gated);
    gated
}

/// The rules of the circuit, for naming the one a refused witness broke
/// ([`TickWalkCircuit::refused_by`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkRule {
    /// A lane started a walk while one was open.
    StartWhileOpen,
    /// A lane ended a walk while none was open.
    EndWithoutWalk,
    /// The value reached is not the record's head.
    HeadOffChain,
    /// The position reached is not the record's `from`.
    EndPosition,
    /// The accumulator is not the one of the records walked.
    Accumulator,
    /// The walk open at the end of the chunk is not the one stated.
    Carry,
}

impl WalkRule {
    /// A stable name, as in logs.
    pub const fn code(&self) -> &'static str {
        match self {
            WalkRule::StartWhileOpen => "START_WHILE_OPEN",
            WalkRule::EndWithoutWalk => "END_WITHOUT_WALK",
            WalkRule::HeadOffChain => "HEAD_OFF_CHAIN",
            WalkRule::EndPosition => "END_POSITION",
            WalkRule::Accumulator => "ACCUMULATOR",
            WalkRule::Carry => "CARRY",
        }
    }
}

/// Where the rule was broken: a lane, or the chunk's statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub lane: Option<usize>,
    pub rule: WalkRule,
}

/// The chunk circuit of the tick-walk tree.
pub struct TickWalkCircuit {
    pub data: CircuitData<F, C, D>,
    /// Gates before padding to a power of two (the circuit's real size).
    pub gates: usize,
    t: Parts,
}

/// Version of the tick-walk chunk circuit (part of its cache key): bump it when
/// [`TickWalkCircuit`]'s constraints change.
pub const TICK_WALK_VERSION: &str = "tick-walk-v1";

/// The targets [`TickWalkCircuit::define`] leaves in its builder.
struct Parts {
    acc_in: HashOutTarget,
    carry_in: CarryTargets,
    acc_out: HashOutTarget,
    carry_out: CarryTargets,
    lanes: Vec<LaneTargets>,
    /// The target each rule conflicts on when broken (lane `None`: the statement).
    rules: Vec<(Target, Refusal)>,
}

impl TickWalkCircuit {
    /// Builds the circuit of `lanes` lanes (`lanes x LANE_STEPS` ticks).
    pub fn build(lanes: usize) -> TickWalkCircuit {
        let (b, gates, parts) = Self::define(lanes);
        TickWalkCircuit {
            data: b.build::<C>(),
            gates,
            t: parts,
        }
    }

    /// [`TickWalkCircuit::build`], or the circuit of the same definition from `cache`.
    pub fn build_or_load(lanes: usize, cache: &CircuitCache) -> anyhow::Result<TickWalkCircuit> {
        let (b, gates, parts) = Self::define(lanes);
        let key = format!(
            "{TICK_WALK_VERSION}/lanes={}/steps={LANE_STEPS}/config=standard_recursion",
            parts.lanes.len()
        );
        let spec = CircuitSpec {
            name: "walk-chunk",
            key: &key,
            num_public_inputs: WALK_PUBLIC_INPUTS,
            pinned: None,
        };
        let (data, _) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        Ok(TickWalkCircuit {
            data,
            gates,
            t: parts,
        })
    }

    /// The constraints of `lanes` lanes (at least one): the builder, its gate count before
    /// padding, and the targets.
    fn define(lanes: usize) -> (CircuitBuilder<F, D>, usize, Parts) {
        let lanes = lanes.max(1);
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let acc_in = b.add_virtual_hash();
        let carry_in = CarryTargets::new(&mut b);
        let acc_out = b.add_virtual_hash();
        let carry_out = CarryTargets::new(&mut b);
        b.register_public_inputs(&acc_in.elements);
        b.register_public_inputs(&carry_in.elements());
        b.register_public_inputs(&acc_out.elements);
        b.register_public_inputs(&carry_out.elements());

        let tag = b.constant(F::from_canonical_u32(TAG_TICK));
        let one = b.one();
        let open_in = BoolTarget::new_unsafe(carry_in.open);
        b.assert_bool(open_in);
        // The state between lanes: the open walk (meaningless when `open` is 0).
        let mut open = open_in;
        let mut cur = carry_in;
        let mut acc = acc_in;
        let mut targets = Vec::with_capacity(lanes);
        let mut rules = Vec::new();
        for l in 0..lanes {
            let mut rule = |t: Target, rule: WalkRule| {
                rules.push((
                    t,
                    Refusal {
                        lane: Some(l),
                        rule,
                    },
                ))
            };
            let lane = LaneTargets::new(&mut b);
            // A walk starts only when none is open.
            let both = b.mul(lane.start.target, open.target);
            b.assert_zero(both);
            rule(both, WalkRule::StartWhileOpen);
            let busy = BoolTarget::new_unsafe(b.add(lane.start.target, open.target));
            let s = lane.start;
            let id: [Target; 2] = std::array::from_fn(|i| b.select(s, lane.id[i], cur.id[i]));
            let to = b.select(s, lane.to, cur.to);
            let t_to: [Target; 4] = std::array::from_fn(|i| b.select(s, lane.t_to[i], cur.t_to[i]));
            let k_in = b.select(s, lane.to, cur.k);
            let x_in: [Target; 4] = std::array::from_fn(|i| b.select(s, lane.t_to[i], cur.x[i]));

            let mut values = Vec::with_capacity(LANE_STEPS);
            let (mut k, mut x) = (k_in, x_in);
            for _ in 0..LANE_STEPS {
                let h = b.hash_n_to_hash_no_pad::<PoseidonHash>(vec![
                    id[0], id[1], k, tag, x[0], x[1], x[2], x[3],
                ]);
                values.push(h);
                x = h.elements;
                k = b.sub(k, one);
            }

            // A walk ends only on a busy lane, at the head and position it claims.
            let ends = lane.ends;
            let ends_busy = b.mul(ends.target, busy.target);
            b.connect(ends_busy, ends.target);
            rule(ends_busy, WalkRule::EndWithoutWalk);
            let reached = b.random_access_hash(lane.index, values);
            for i in 0..4 {
                let t = assert_eq_if(&mut b, ends, reached.elements[i], lane.head[i]);
                rule(t, WalkRule::HeadOffChain);
            }
            let walked = b.add(lane.index, one);
            let end_k = b.sub(k_in, walked);
            let t = assert_eq_if(&mut b, ends, end_k, lane.from);
            rule(t, WalkRule::EndPosition);

            let mut record = acc.elements.to_vec();
            record.extend([id[0], id[1], to, lane.from]);
            record.extend(t_to);
            record.extend(lane.head);
            let absorbed = b.hash_n_to_hash_no_pad::<PoseidonHash>(record);
            acc = HashOutTarget {
                elements: std::array::from_fn(|i| {
                    b.select(ends, absorbed.elements[i], acc.elements[i])
                }),
            };

            open = BoolTarget::new_unsafe(b.sub(busy.target, ends.target));
            cur = CarryTargets {
                open: open.target,
                id,
                k,
                x,
                to,
                t_to,
            };
            targets.push(lane);
        }
        b.connect_hashes(acc, acc_out);
        let statement = |rule| Refusal { lane: None, rule };
        rules.extend(
            acc.elements
                .iter()
                .map(|t| (*t, statement(WalkRule::Accumulator))),
        );
        // The carry out is zero when no walk is open, so chained chunks agree on every element.
        let out = cur.elements();
        for (i, (t, v)) in carry_out.elements().into_iter().zip(out).enumerate() {
            let v = if i == 0 { v } else { b.mul(open.target, v) };
            b.connect(t, v);
            rules.push((v, statement(WalkRule::Carry)));
        }
        let gates = b.num_gates();
        let parts = Parts {
            acc_in,
            carry_in,
            acc_out,
            carry_out,
            lanes: targets,
            rules,
        };
        (b, gates, parts)
    }

    /// Names the rule a refused witness broke, from the error of [`TickWalkCircuit::prove`]
    /// (diagnostics for logs and tests: plonky2 reports the wire whose computed value
    /// conflicts with the one required).
    pub fn refused_by(&self, error: &str) -> Option<Refusal> {
        rule_broken(&self.t.rules, error)
    }

    pub fn lanes(&self) -> usize {
        self.t.lanes.len()
    }

    /// Proves one chunk. The statement is set as claimed: a witness whose walks do not give
    /// it fails to prove.
    pub fn prove(&self, w: &WalkChunkWitness) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        ensure!(
            w.lanes.len() == self.lanes(),
            "the witness has {} lanes, the circuit {}",
            w.lanes.len(),
            self.lanes()
        );
        let mut pw = PartialWitness::new();
        let s = &w.statement;
        pw.set_hash_target(self.t.acc_in, HashOut::from(s.acc_in))?;
        pw.set_hash_target(self.t.acc_out, HashOut::from(s.acc_out))?;
        set_all(
            &mut pw,
            &self.t.carry_in.elements(),
            &carry_elements(s.carry_in.as_ref()),
        )?;
        set_all(
            &mut pw,
            &self.t.carry_out.elements(),
            &carry_elements(s.carry_out.as_ref()),
        )?;
        for (i, (t, lane)) in self.t.lanes.iter().zip(&w.lanes).enumerate() {
            t.set(&mut pw, lane).with_context(|| format!("lane {i}"))?;
        }
        self.data.prove(pw).context("the tick-walk circuit refused")
    }
}

#[cfg(test)]
mod tests;
