//! The settlement circuit (SPEC 13.11): one proof whose only public input is the SHA-256 of
//! the 252-byte statement the L1 contract computes (SPEC 15.3), as eight big-endian u32 words.
//!
//! It verifies four proofs (five for a batch with splits), each against verifier data that is a
//! constant of the circuit (so it accepts proofs of exactly those circuits and no others):
//!
//! - the **range** proof of the whole batch (the root of the aggregation tree, or the single
//!   leaf): its chains start at `ZERO` (`pubdata_in`, `withdrawals_in`, `entries_in`, and the
//!   side accumulators `splits_in`, `walks_in`), so no transaction of the batch is left out at
//!   the front; its `walks_out` is `ZERO` (no leaf handed a tick walk over: this circuit does
//!   not verify the tick-walk tree yet), and its `splits_out` is `ZERO` too unless the circuit
//!   verifies a split-credit chain (below);
//! - the **diff** proof (13.7; one chunk or the root of a merge tree of chunks): it starts from
//!   the range's old root with exactly the diff's 13 header bytes streamed (version,
//!   `count_before`, the record count it ends with) and ends at the range's new root, so the
//!   published diff leads from the old state to the one the transactions produced; the
//!   settlement circuit finishes its SHA-256 stream into `diff_hash`. Which diff circuit is a
//!   parameter of the settlement circuit ([`DiffCircuitKind`]): the version 1 circuit, or the
//!   grouped one of a version 4 diff (13.7.1) in its three shapes, whose proof must also leave
//!   no stream record pending at either end (`more_in = more_out = 0`) and, in the shape with
//!   shares runs, no shares record (its carry in all zero, `left` out zero). The header's version byte
//!   is the kind's, a constant: a proof that hashed another version's header is refused;
//! - the **priority** proof (13.8; one chunk or the root of a merge tree of chunks,
//!   [`crate::circuits::chain`]): its commitments start at `ZERO`, its first and next serials
//!   are the range's deposit counters and its `entries` commitment is the range's
//!   `entries_out`, so every priority op the leaves applied is the L1 entry the SHA-256 queue
//!   chain hashed;
//! - the **payout** proof (13.9; one chunk or the root of a merge tree of chunks): it starts a
//!   batch (offset 0, empty chains), its withdrawals chain is the range's `withdrawals_out` and
//!   its refunds chain is the priority proof's `refunds`, so the payout root pays exactly the
//!   withdrawals the leaves applied and the deposits the batch refunded;
//! - for a batch with splits, the **split-credit** proof (SPEC 19.5; the root of its chain):
//!   it starts at `ZERO` with no split open, ends with none open, and its accumulator is the
//!   range's `splits_out`, so every split the leaves debited was credited exactly as signed.
//!
//! The chain id and rollup address are witnesses whose domain digest (`state::tx::Domain`) must
//! be the range's `domain` (the one every signature was checked under). The statement's fields
//! come from those values only:
//!
//! | field | from |
//! |---|---|
//! | `chain_id`, `rollup` | the domain witnesses (u32 limbs) |
//! | `batch_number` | the payout proof's `batch` (its leaves hash it) |
//! | `old_root`, `new_root` | the range proof (each element's canonical little-endian bytes) |
//! | `diff_hash` | the diff proof |
//! | `payout_root` | the payout proof |
//! | `first_priority_op`, `next_priority_op` | the range proof (= the priority proof's) |
//! | `priority_hash_before`, `priority_hash_after` | the priority proof |
//! | `timestamp` | the range proof (the time every `valid_until` was checked against) |
//!
//! The 63 words and the constant padding (the message length is fixed) are five SHA-256
//! blocks. **Cost:** four recursive verifications dominate (see `docs/BENCHMARKS.md`); the
//! statement is five compressions (about 950 rows) and about 60 rows of limb splits.
//!
//! **Shape.** The four inner circuits are the roots of one top level `L` of the batch's four
//! trees ([`crate::circuits::registry::Circuits::final_circuit`]): one settlement circuit per
//! `L` and diff kind, pinned as `final-<L>` (version 1 diffs) or `final-<L>-<kind>`
//! ([`FinalId::name`]), cached by [`SettlementCircuit::build_or_load`].

use std::sync::Arc;

use anyhow::{ensure, Context};
use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData, VerifierCircuitData};
use plonky2::plonk::proof::{ProofWithPublicInputs, ProofWithPublicInputsTarget};
use rollup_storage::DiffCircuitKind;
use state::settlement::{BatchStatement, STATEMENT_LEN};
use state::tx::{Domain, L1Address, TAG_DOMAIN};
use state::Digest;

use crate::cache::{circuit_digest_hex, CircuitCache, CircuitSpec};
use crate::circuits::diff::{at as diff_at, DiffStatement, DIFF_PUBLIC_INPUTS};
use crate::circuits::diff_grouped::{
    at as grouped_at, GroupedParts, GroupedStatement, POLICY_CARRY_LEN, SHARES_CARRY_LEN,
    VERSION as GROUPED_DIFF_VERSION,
};
use crate::circuits::payout::{PayoutStatement, PAYOUT_PUBLIC_INPUTS};
use crate::circuits::priority::{PriorityStatement, PRIORITY_PUBLIC_INPUTS};
use crate::circuits::public::{RangeStatement, RangeStatementTargets, RANGE_PUBLIC_INPUTS};
use crate::circuits::split::{SplitStatement, CARRY_LEN as SPLIT_CARRY_LEN, SPLIT_PUBLIC_INPUTS};
use crate::circuits::ticks::{WalkStatement, CARRY_LEN as WALK_CARRY_LEN, WALK_PUBLIC_INPUTS};
use crate::gadgets::range::range_check_u63;
use crate::gadgets::sha256;
use crate::gadgets::sha256::stream::{ByteStream, StreamTargets, STREAM_STATE_LEN};
use crate::pins::{CircuitFingerprint, FinalId};
use crate::{C, D, F};

/// Number of public inputs: the statement hash as eight big-endian u32 words.
pub const SETTLEMENT_PUBLIC_INPUTS: usize = 8;

/// The circuits whose proofs a settlement proof verifies.
#[derive(Clone, Copy)]
pub struct SettlementInner<'a> {
    /// The circuit of the batch's root range proof: the top merge, or the leaf for a
    /// single-leaf batch.
    pub range: &'a CircuitData<F, C, D>,
    pub diff: &'a CircuitData<F, C, D>,
    pub priority: &'a CircuitData<F, C, D>,
    pub payout: &'a CircuitData<F, C, D>,
    /// The root circuit of the split-credit chain (SPEC 19.5), for the settlement of batches
    /// with splits; `None`: the batch hands no split record over.
    pub splits: Option<&'a CircuitData<F, C, D>>,
    /// The root circuit of the tick-walk tree (SPEC 18.7), for the settlement of batches with
    /// stream settlements; `None`: the batch hands no walk over.
    pub walks: Option<&'a CircuitData<F, C, D>>,
}

/// The proofs of one batch.
#[derive(Clone, Copy)]
pub struct SettlementProofs<'a> {
    pub range: &'a ProofWithPublicInputs<F, C, D>,
    pub diff: &'a ProofWithPublicInputs<F, C, D>,
    pub priority: &'a ProofWithPublicInputs<F, C, D>,
    pub payout: &'a ProofWithPublicInputs<F, C, D>,
    /// The split-credit chain's root proof, exactly when the circuit verifies one.
    pub splits: Option<&'a ProofWithPublicInputs<F, C, D>>,
    /// The tick-walk tree's root proof, exactly when the circuit verifies one.
    pub walks: Option<&'a ProofWithPublicInputs<F, C, D>>,
}

/// Why four proofs do not make one batch (checked natively before proving; the circuit
/// refuses the same).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TieError {
    #[error("the {0} proof has the wrong public inputs")]
    Malformed(&'static str),
    #[error("the proofs do not cover a whole batch (the {0} chain does not start at zero)")]
    NotWholeBatch(&'static str),
    #[error("the domain digest is not the one the transactions were signed for")]
    Domain,
    #[error("the {0} of the diff proof is not the range proof's")]
    DiffRoot(&'static str),
    #[error("the priority proof consumes serials {got:?}, the leaves {want:?}")]
    PriorityRange { got: (u64, u64), want: (u64, u64) },
    #[error("the priority proof chains other ops than the leaves applied")]
    Entries,
    #[error("the payout proof pays other withdrawals than the leaves applied")]
    Withdrawals,
    #[error("the payout proof pays other refunds than the priority proof derives")]
    Refunds,
    /// The leaves handed records over to a side proof (a split's credits, a tick walk) that
    /// this settlement does not verify (SPEC 13.1, "Side accumulators").
    #[error("the leaves hand {0} over to a side proof, which this settlement does not verify")]
    SideRecords(&'static str),
    /// The split-credit chain's proof is not of a whole chain (its accumulator starts other
    /// than at `ZERO`, or a split is open at either end) or folds other records than the
    /// leaves (SPEC 19.5).
    #[error("the split-credit proof {0}")]
    Splits(&'static str),
    /// The tick-walk tree's proof is not of a whole tree (its accumulator starts other than at
    /// `ZERO`, or a walk is open at either end) or walks other records than the leaves handed
    /// over (SPEC 18.7).
    #[error("the tick-walk proof {0}")]
    Walks(&'static str),
}

/// The version byte of the diffs `kind`'s circuit proves (the first byte of the header).
pub fn diff_version(kind: DiffCircuitKind) -> u8 {
    match GroupedParts::of(kind) {
        None => 1,
        Some(_) => GROUPED_DIFF_VERSION,
    }
}

/// The number of public inputs of `kind`'s diff proofs.
pub fn diff_public_inputs(kind: DiffCircuitKind) -> usize {
    GroupedParts::of(kind).map_or(DIFF_PUBLIC_INPUTS, GroupedParts::public_inputs)
}

/// A diff proof's statement as a whole batch's diff of `kind`: its [`DiffStatement`] part, or
/// why it is not one.
fn whole_diff(kind: DiffCircuitKind, fields: &[F]) -> Result<DiffStatement, TieError> {
    match kind {
        DiffCircuitKind::V1 => {
            let d = DiffStatement::from_fields(fields).ok_or(TieError::Malformed("diff"))?;
            if !d.whole_batch() {
                return Err(TieError::NotWholeBatch("diff"));
            }
            Ok(d)
        }
        DiffCircuitKind::V4 | DiffCircuitKind::V4Agents | DiffCircuitKind::V4Shares => {
            let g = GroupedStatement::from_fields(fields).ok_or(TieError::Malformed("diff"))?;
            if g.shares.is_some() != GroupedParts::of(kind).is_some_and(GroupedParts::shares) {
                return Err(TieError::Malformed("diff"));
            }
            if !g.whole_batch() {
                return Err(TieError::NotWholeBatch("diff"));
            }
            Ok(g.base)
        }
    }
}

/// The statement four proofs of one batch make, after checking that they tie together
/// exactly as the settlement circuit of `kind` requires.
pub fn tie(
    proofs: &SettlementProofs<'_>,
    domain: &Domain,
    kind: DiffCircuitKind,
) -> Result<BatchStatement, TieError> {
    let range = RangeStatement::from_fields(&proofs.range.public_inputs)
        .ok_or(TieError::Malformed("range"))?;
    let diff = whole_diff(kind, &proofs.diff.public_inputs)?;
    let priority = PriorityStatement::from_fields(&proofs.priority.public_inputs)
        .ok_or(TieError::Malformed("priority"))?;
    let payout = PayoutStatement::from_fields(&proofs.payout.public_inputs)
        .ok_or(TieError::Malformed("payout"))?;
    for (name, chain) in range.batch_starts().into_iter().chain([
        ("priority entries", priority.entries_in),
        ("refunds", priority.refunds_in),
    ]) {
        if chain != Digest::ZERO {
            return Err(TieError::NotWholeBatch(name));
        }
    }
    match proofs.splits {
        Some(p) => {
            let chain = SplitStatement::from_public_inputs(&p.public_inputs)
                .ok_or(TieError::Malformed("split-credit"))?;
            if chain.acc_in != Digest::ZERO || chain.carry_in.is_some() {
                return Err(TieError::Splits("does not start a chain"));
            }
            if chain.carry_out.is_some() {
                return Err(TieError::Splits("leaves a split open"));
            }
            if chain.acc_out != range.splits_out {
                return Err(TieError::Splits("folds other records than the leaves"));
            }
        }
        None if range.splits_out != Digest::ZERO => {
            return Err(TieError::SideRecords("split records"))
        }
        None => {}
    }
    match proofs.walks {
        Some(p) => {
            let tree = WalkStatement::from_public_inputs(&p.public_inputs)
                .ok_or(TieError::Malformed("tick-walk"))?;
            if tree.acc_in != Digest::ZERO || tree.carry_in.is_some() {
                return Err(TieError::Walks("does not start a tree"));
            }
            if tree.carry_out.is_some() {
                return Err(TieError::Walks("leaves a walk open"));
            }
            if tree.acc_out != range.walks_out {
                return Err(TieError::Walks("walks other records than the leaves"));
            }
        }
        None if range.walks_out != Digest::ZERO => {
            return Err(TieError::SideRecords("walk records"))
        }
        None => {}
    }
    if !payout.starts_batch() {
        return Err(TieError::NotWholeBatch("payout"));
    }
    if domain.digest() != range.domain {
        return Err(TieError::Domain);
    }
    if diff.batch_old_root != range.old_root {
        return Err(TieError::DiffRoot("old root"));
    }
    if diff.root_out != range.new_root {
        return Err(TieError::DiffRoot("new root"));
    }
    let want = (range.deposits_first, range.deposits_next);
    if (priority.first, priority.next) != want {
        return Err(TieError::PriorityRange {
            got: (priority.first, priority.next),
            want,
        });
    }
    if priority.entries_out != range.entries_out {
        return Err(TieError::Entries);
    }
    if payout.withdrawals != range.withdrawals_out {
        return Err(TieError::Withdrawals);
    }
    if payout.refunds != priority.refunds_out {
        return Err(TieError::Refunds);
    }
    Ok(BatchStatement {
        chain_id: domain.chain_id,
        rollup: L1Address(domain.rollup),
        batch_number: payout.batch,
        old_root: range.old_root.to_bytes(),
        new_root: range.new_root.to_bytes(),
        diff_hash: diff.diff_hash(),
        payout_root: payout.root,
        first_priority_op: priority.first,
        next_priority_op: priority.next,
        priority_hash_before: priority.hash_before,
        priority_hash_after: priority.hash_after,
        timestamp: range.timestamp,
    })
}

struct Targets {
    range: ProofWithPublicInputsTarget<D>,
    diff: ProofWithPublicInputsTarget<D>,
    priority: ProofWithPublicInputsTarget<D>,
    payout: ProofWithPublicInputsTarget<D>,
    splits: Option<ProofWithPublicInputsTarget<D>>,
    walks: Option<ProofWithPublicInputsTarget<D>>,
    /// `chain_id` as its low and high u32 limbs.
    chain_id: [Target; 2],
    /// The rollup address as five big-endian u32 limbs.
    rollup: [Target; 5],
}

/// The settlement circuit over four fixed inner circuits: the final circuit of a batch whose
/// trees have `top_level` levels above their leaves.
pub struct SettlementCircuit {
    pub top_level: u32,
    /// The diff circuit whose proofs it verifies.
    pub kind: DiffCircuitKind,
    pub data: CircuitData<F, C, D>,
    pub verifier: Arc<VerifierCircuitData<F, C, D>>,
    /// SHA-256 of its complete verifier data ([`crate::pins`]): what deployments pin.
    pub fingerprint: CircuitFingerprint,
    targets: Targets,
}

/// Version of the settlement circuit's definition (part of its cache key).
pub const SETTLEMENT_VERSION: &str = "settlement-v3";

/// A public input of an inner proof that is a u32 word (the inner circuit range-checks it).
fn words(t: &[Target]) -> [Target; 8] {
    core::array::from_fn(|i| t[i])
}

/// The two statement words of a digest element: its canonical value's little-endian bytes
/// (`Digest::to_bytes`) read as two big-endian u32 words.
fn element_words(b: &mut CircuitBuilder<F, D>, x: Target) -> [Target; 2] {
    let bits = crate::gadgets::range::range_check_u64(b, x);
    core::array::from_fn(|half| {
        // Word `half` holds little-endian bytes 4 half .. 4 half + 3, the first as its most
        // significant byte.
        let reordered: Vec<BoolTarget> = (0..4)
            .rev()
            .flat_map(|k| {
                let byte = 4 * half + k;
                bits[8 * byte..8 * byte + 8].to_vec()
            })
            .collect();
        b.le_sum(reordered.iter())
    })
}

/// A value below `2^63` as its two big-endian u32 words (high first).
fn u64_words(b: &mut CircuitBuilder<F, D>, x: Target) -> [Target; 2] {
    let u = range_check_u63(b, x);
    [u.hi, u.lo]
}

fn hash_at(t: &[Target], at: usize) -> HashOutTarget {
    HashOutTarget {
        elements: core::array::from_fn(|i| t[at + i]),
    }
}

impl SettlementCircuit {
    /// Builds the circuit (no cache).
    pub fn build(
        top_level: u32,
        kind: DiffCircuitKind,
        inner: SettlementInner<'_>,
    ) -> SettlementCircuit {
        Self::build_or_load(top_level, kind, inner, &CircuitCache::disabled(), None)
            .expect("an uncached, unpinned build cannot be refused")
    }

    /// The cache key: the version, the top level, the diff kind and the circuit digests of the
    /// inner circuits (which pin everything below them).
    pub fn key(top_level: u32, kind: DiffCircuitKind, inner: &SettlementInner<'_>) -> String {
        let d = circuit_digest_hex;
        format!(
            "{SETTLEMENT_VERSION}/top={top_level}/diff_kind={kind}/range={}/diff={}/priority={}/payout={}/splits={}/walks={}/config=standard_recursion",
            d(inner.range),
            d(inner.diff),
            d(inner.priority),
            d(inner.payout),
            inner.splits.map_or_else(|| "none".to_string(), d),
            inner.walks.map_or_else(|| "none".to_string(), d),
        )
    }

    /// Loads the circuit from `cache` or builds it; `pinned` = the fingerprint it must have
    /// (named `final-<top_level>` in the pins).
    pub fn build_or_load(
        top_level: u32,
        kind: DiffCircuitKind,
        inner: SettlementInner<'_>,
        cache: &CircuitCache,
        pinned: Option<CircuitFingerprint>,
    ) -> anyhow::Result<SettlementCircuit> {
        let (b, targets) = Self::construct(inner, kind);
        let key = Self::key(top_level, kind, &inner);
        let id = FinalId {
            level: top_level,
            kind,
            splits: inner.splits.is_some(),
            walks: inner.walks.is_some(),
        };
        let name = id.name();
        let spec = CircuitSpec {
            name: &name,
            key: &key,
            num_public_inputs: SETTLEMENT_PUBLIC_INPUTS,
            pinned,
        };
        let (data, fingerprint) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        let verifier = Arc::new(data.verifier_data());
        Ok(SettlementCircuit {
            top_level,
            kind,
            data,
            verifier,
            fingerprint,
            targets,
        })
    }

    /// The circuit before `build()`: deterministic, so a cached circuit's targets are
    /// recovered by running it again.
    fn construct(
        inner: SettlementInner<'_>,
        kind: DiffCircuitKind,
    ) -> (CircuitBuilder<F, D>, Targets) {
        assert_eq!(inner.range.common.num_public_inputs, RANGE_PUBLIC_INPUTS);
        assert_eq!(
            inner.diff.common.num_public_inputs,
            diff_public_inputs(kind)
        );
        assert_eq!(
            inner.priority.common.num_public_inputs,
            PRIORITY_PUBLIC_INPUTS
        );
        assert_eq!(inner.payout.common.num_public_inputs, PAYOUT_PUBLIC_INPUTS);
        if let Some(splits) = inner.splits {
            assert_eq!(splits.common.num_public_inputs, SPLIT_PUBLIC_INPUTS);
        }
        if let Some(walks) = inner.walks {
            assert_eq!(walks.common.num_public_inputs, WALK_PUBLIC_INPUTS);
        }
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let verified = |b: &mut CircuitBuilder<F, D>, data: &CircuitData<F, C, D>| {
            let vd = b.constant_verifier_data(&data.verifier_only);
            let proof = b.add_virtual_proof_with_pis(&data.common);
            b.verify_proof::<C>(&proof, &vd, &data.common);
            proof
        };
        let range = verified(&mut b, inner.range);
        let diff = verified(&mut b, inner.diff);
        let priority = verified(&mut b, inner.priority);
        let payout = verified(&mut b, inner.payout);

        let splits = inner.splits.map(|data| verified(&mut b, data));
        let walks = inner.walks.map(|data| verified(&mut b, data));

        let s = RangeStatementTargets::from_targets(&range.public_inputs);
        s.assert_starts_batch(&mut b);
        // Side records (SPEC 13.1): the walks the leaves handed over are the ones a whole
        // tick-walk tree walked (`walk_layout`: carries of 13), the splits the ones a whole
        // split-credit chain folded (`split_layout`: carries of 18), or none of either.
        // A side tree's root (`acc_in (4), carry_in, acc_out (4), carry_out`) is a whole
        // tree: it starts at `ZERO`, no record open at either end; and it folds exactly what
        // the leaves handed over. Without the tree, the leaves handed nothing over.
        let tie_side = |b: &mut CircuitBuilder<F, D>,
                        root: &Option<ProofWithPublicInputsTarget<D>>,
                        carry: usize,
                        handed: HashOutTarget| match root {
            Some(proof) => {
                let c = &proof.public_inputs;
                let out = 4 + carry;
                for t in c[..out].iter().chain(&c[out + 4..]) {
                    b.assert_zero(*t);
                }
                b.connect_hashes(hash_at(c, out), handed);
            }
            None => {
                for t in handed.elements {
                    b.assert_zero(t);
                }
            }
        };
        tie_side(&mut b, &walks, WALK_CARRY_LEN, s.walks_out);
        tie_side(&mut b, &splits, SPLIT_CARRY_LEN, s.splits_out);
        // Diff (`DiffStatement::to_fields`, positions in `diff::at`): a whole batch's diff from
        // the old root to the new one, started with exactly the header (of the kind's version),
        // then finished; a grouped diff with no stream record pending at either end.
        let d = &diff.public_inputs;
        if kind != DiffCircuitKind::V1 {
            b.assert_zero(d[grouped_at::MORE_IN]);
            b.assert_zero(d[grouped_at::MORE_OUT]);
        }
        // The full shape: no allow-list or shares record begun before the diff, none left
        // unfinished.
        if kind == DiffCircuitKind::V4Shares {
            for &t in &d[grouped_at::POLICY_IN..grouped_at::POLICY_IN + POLICY_CARRY_LEN] {
                b.assert_zero(t);
            }
            b.assert_zero(d[grouped_at::POLICY_OUT]);
            for &t in &d[grouped_at::SHARES_IN..grouped_at::SHARES_IN + SHARES_CARRY_LEN] {
                b.assert_zero(t);
            }
            b.assert_zero(d[grouped_at::SHARES_OUT]);
        }
        b.connect_hashes(hash_at(d, diff_at::BATCH_OLD_ROOT), s.old_root);
        b.connect_hashes(hash_at(d, diff_at::ROOT_IN), s.old_root);
        b.connect_hashes(hash_at(d, diff_at::ROOT_OUT), s.new_root);
        for i in [
            diff_at::RECORDS_IN,
            diff_at::LOWER_IN,
            diff_at::NEW_IN,
            diff_at::STARTED_IN,
        ] {
            b.assert_zero(d[i]);
        }
        let header = diff_header_state(
            &mut b,
            diff_version(kind),
            d[diff_at::COUNT_BEFORE],
            d[diff_at::RECORDS_OUT],
        );
        let stream_in = StreamTargets::from_slice(
            &d[diff_at::STREAM_IN..diff_at::STREAM_IN + STREAM_STATE_LEN],
        );
        for (x, y) in stream_in.to_vec().iter().zip(header.to_vec()) {
            b.connect(*x, y);
        }
        let stream_out = StreamTargets::from_slice(
            &d[diff_at::STREAM_OUT..diff_at::STREAM_OUT + STREAM_STATE_LEN],
        );
        let diff_hash = ByteStream::resume(&mut b, &stream_out).finish(&mut b);
        // Priority (`PriorityStatement::to_fields`).
        let p = &priority.public_inputs;
        let hash_before = words(&p[0..8]);
        let hash_after = words(&p[8..16]);
        b.connect(p[16], s.deposits_first);
        b.connect(p[17], s.deposits_next);
        for t in p[18..22].iter().chain(&p[26..30]) {
            b.assert_zero(*t);
        }
        b.connect_hashes(hash_at(p, 22), s.entries_out);
        let refunds = hash_at(p, 30);
        // Payout (`PayoutStatement::to_fields`).
        // Payout (`PayoutStatement::to_fields`): a whole batch's payouts, from offset 0 with
        // empty chains, no payout before, open, no refund before.
        let q = &payout.public_inputs;
        let batch = q[0];
        for t in [q[1], q[19], q[23]]
            .iter()
            .chain(&q[3..7])
            .chain(&q[11..15])
        {
            b.assert_zero(*t);
        }
        b.assert_one(q[21]);
        b.connect_hashes(hash_at(q, 7), s.withdrawals_out);
        b.connect_hashes(hash_at(q, 15), refunds);
        let payout_root = words(&q[33..41]);

        // The domain: chain id and address limbs, hashed as `Domain::digest` does.
        let chain_id: [Target; 2] = core::array::from_fn(|_| b.add_virtual_target());
        let rollup: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
        for &t in chain_id.iter().chain(&rollup) {
            b.range_check(t, 32);
        }
        let mut preimage = vec![b.constant(F::from_canonical_u64(TAG_DOMAIN))];
        preimage.extend_from_slice(&chain_id);
        preimage.extend_from_slice(&rollup);
        let domain = b.hash_n_to_hash_no_pad::<PoseidonHash>(preimage);
        b.connect_hashes(domain, s.domain);

        // The statement's 63 words, in the order of `BatchStatement::encode`.
        let mut m: Vec<Target> = Vec::with_capacity(80);
        m.extend([chain_id[1], chain_id[0]]);
        m.extend(rollup);
        m.extend(u64_words(&mut b, batch));
        for root in [s.old_root, s.new_root] {
            for e in root.elements {
                m.extend(element_words(&mut b, e));
            }
        }
        m.extend(diff_hash);
        m.extend(payout_root);
        m.extend(u64_words(&mut b, s.deposits_first));
        m.extend(u64_words(&mut b, s.deposits_next));
        m.extend(hash_before);
        m.extend(hash_after);
        m.extend(u64_words(&mut b, s.timestamp));
        assert_eq!(m.len() * 4, STATEMENT_LEN);
        // Padding of a 252-byte message: 0x80, zeros, the bit length; five blocks.
        let constant = |b: &mut CircuitBuilder<F, D>, w: u32| b.constant(F::from_canonical_u32(w));
        m.push(constant(&mut b, 0x8000_0000));
        while m.len() < 78 {
            m.push(b.zero());
        }
        let bits = (STATEMENT_LEN as u64) * 8;
        m.push(constant(&mut b, (bits >> 32) as u32));
        m.push(constant(&mut b, bits as u32));
        let mut h = sha256::iv(&mut b);
        for block in m.chunks(16) {
            let block: [Target; 16] = block.try_into().expect("80 words are five blocks");
            h = sha256::compress(&mut b, &h, &block);
        }
        b.register_public_inputs(&h);
        (
            b,
            Targets {
                range,
                diff,
                priority,
                payout,
                splits,
                walks,
                chain_id,
                rollup,
            },
        )
    }

    /// Proves the settlement of four proofs of one batch; checks natively first that they tie
    /// together and returns the statement they prove.
    pub fn prove(
        &self,
        proofs: &SettlementProofs<'_>,
        domain: &Domain,
    ) -> anyhow::Result<(ProofWithPublicInputs<F, C, D>, BatchStatement)> {
        let statement = tie(proofs, domain, self.kind)?;
        let proof = self.prove_unchecked(proofs, domain)?;
        ensure!(
            proof.public_inputs == public_inputs(&statement),
            "the settlement proof states another statement than its inner proofs"
        );
        Ok((proof, statement))
    }

    /// Proves without the native checks (what a dishonest prover would run): the circuit
    /// alone decides.
    pub fn prove_unchecked(
        &self,
        proofs: &SettlementProofs<'_>,
        domain: &Domain,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let t = &self.targets;
        let mut pw = PartialWitness::new();
        pw.set_proof_with_pis_target(&t.range, proofs.range)?;
        pw.set_proof_with_pis_target(&t.diff, proofs.diff)?;
        pw.set_proof_with_pis_target(&t.priority, proofs.priority)?;
        pw.set_proof_with_pis_target(&t.payout, proofs.payout)?;
        match (&t.splits, proofs.splits) {
            (Some(target), Some(proof)) => pw.set_proof_with_pis_target(target, proof)?,
            (None, None) => {}
            (Some(_), None) => {
                anyhow::bail!("this settlement circuit verifies a split-credit proof")
            }
            (None, Some(_)) => {
                anyhow::bail!("this settlement circuit verifies no split-credit proof")
            }
        }
        match (&t.walks, proofs.walks) {
            (Some(target), Some(proof)) => pw.set_proof_with_pis_target(target, proof)?,
            (None, None) => {}
            (Some(_), None) => anyhow::bail!("this settlement circuit verifies a tick-walk proof"),
            (None, Some(_)) => {
                anyhow::bail!("this settlement circuit verifies no tick-walk proof")
            }
        }
        pw.set_target(t.chain_id[0], F::from_canonical_u32(domain.chain_id as u32))?;
        pw.set_target(
            t.chain_id[1],
            F::from_canonical_u32((domain.chain_id >> 32) as u32),
        )?;
        for (t, v) in t
            .rollup
            .iter()
            .zip(L1Address(domain.rollup).to_field_elements())
        {
            pw.set_target(*t, v)?;
        }
        self.data
            .prove(pw)
            .context("the settlement circuit refused")
    }

    /// Verifies `proof` against the statement the contract computed.
    pub fn verify(
        &self,
        proof: &ProofWithPublicInputs<F, C, D>,
        statement: &BatchStatement,
    ) -> anyhow::Result<()> {
        ensure!(
            proof.public_inputs == public_inputs(statement),
            "the proof is for another statement"
        );
        self.data.verify(proof.clone())
    }
}

/// The stream state of a diff after its 13 header bytes (`diff::diff_header_of`): the IV, the
/// header pending, 13 bytes in all. `count_before` and `records` are split into bytes here
/// (32 bits each).
fn diff_header_state(
    b: &mut CircuitBuilder<F, D>,
    version: u8,
    count_before: Target,
    records: Target,
) -> StreamTargets {
    let bytes_of = |b: &mut CircuitBuilder<F, D>, x: Target| -> Vec<Target> {
        let bits = b.split_le(x, 32);
        bits.chunks(8).map(|c| b.le_sum(c.iter())).collect()
    };
    let zero = b.zero();
    let mut header = vec![b.constant(F::from_canonical_u8(version))];
    header.extend(bytes_of(b, count_before));
    header.extend([zero; 4]);
    header.extend(bytes_of(b, records));
    header.resize(64, zero);
    let words = sha256::bytes_to_words(b, &header);
    StreamTargets {
        chain: sha256::iv(b),
        buf: core::array::from_fn(|i| words[i]),
        pos: b.constant(F::from_canonical_usize(13)),
        total: b.constant(F::from_canonical_usize(13)),
    }
}

/// A statement's public inputs: its hash's eight big-endian words.
pub fn public_inputs(statement: &BatchStatement) -> Vec<F> {
    statement
        .public_words()
        .iter()
        .map(|&w| F::from_canonical_u32(w))
        .collect()
}
