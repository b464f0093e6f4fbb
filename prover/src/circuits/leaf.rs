//! The leaf stage behind a trait, so aggregation, the planner and the worker do not depend on
//! which leaf circuit proves a chunk of transactions.
//!
//! [`LeafCircuit`] bundles the three things the rest of the prover needs from the leaf stage:
//! the circuit (its verifier data is a constant of the level-1 merge circuit), proving one leaf
//! from a serialized witness, and turning a batch's transactions into leaf witnesses.
//!
//! [`DummyLeaf`] is a development stand-in with the same 55 public inputs
//! ([`RangeStatementTargets::register`]): it re-applies the native rules to compute each chunk's
//! statement, but its circuit checks **nothing** about the transactions. It exists so the
//! aggregation and the worker fleet can be built and tested before the payment circuit lands.
//! Swapping in the real circuit is implementing this trait for `PaymentCircuit` (see
//! [`crate::ActiveLeaf`]).

use plonky2::field::types::Field;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use state::account::Timestamp;
use state::apply::{BlockContext, State, VerifiedTx};
use state::pubdata::{PubdataCommitment, WithdrawalsCommitment};
use state::tx::Transaction;

use crate::circuits::public::{RangeStatement, RangeStatementTargets, RANGE_PUBLIC_INPUTS};
use crate::circuits::split::SplitChainBuilder;
use crate::witness::Depositors;
use crate::{C, D, F};

/// Why a batch got no leaf witnesses.
#[derive(Debug, thiserror::Error)]
pub enum LeafPlanError {
    /// The native rules reject the batch: it must not (and cannot) be proven.
    #[error("rejected by the rules: {0}")]
    Rejected(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The leaf stage of the proof system.
pub trait LeafCircuit: Send + Sync + 'static {
    /// What one leaf job carries (stored serialized as JSON in `prover_jobs.input`).
    type Witness: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Identity of the leaf circuit in cache keys of the circuits above it (e.g.
    /// `payment-v1/k=8`). The leaf's circuit digest is part of those keys too.
    fn id(&self) -> String;

    /// Transactions per leaf.
    fn leaf_size(&self) -> usize;

    fn data(&self) -> &CircuitData<F, C, D>;

    fn prove(&self, witness: &Self::Witness) -> anyhow::Result<ProofWithPublicInputs<F, C, D>>;

    /// The leaf witnesses of one batch, in order, padded to a power of two (at least
    /// `min_leaves`); advances `state` past the batch, and appends the lanes of the batch's
    /// splits to `splits` (the split-credit chain, SPEC 19.5, whose records the leaves fold).
    /// `depositors` gives the L1 sender of each deposit serial (the priority entries the
    /// leaves commit to include it, SPEC 13.8).
    fn witnesses(
        &self,
        state: &mut State,
        txs: &[(Transaction, BlockContext)],
        batch_timestamp: Timestamp,
        depositors: Depositors<'_>,
        min_leaves: usize,
        splits: &mut SplitChainBuilder,
    ) -> Result<Vec<Self::Witness>, LeafPlanError>;

    /// The tick walks the settlements of `leaves` hand over (SPEC 18.7), in batch order: the
    /// records of the batch's tick-walk tree. None for a leaf without the stream kinds.
    fn walk_records(&self, _leaves: &[Self::Witness]) -> Vec<crate::circuits::ticks::WalkRecord> {
        Vec::new()
    }

    /// Whether the leaf proves the revenue-share kinds (SPEC 19.6: registrations,
    /// distributes and the lock): the split-credit chain above it must then prove their
    /// records, and only then may the registry build the finals of `v4-shares` diffs.
    fn proves_shares(&self) -> bool {
        false
    }

    /// Whether the leaf proves agents' spends and nonce lanes (SPEC 20.8: a payment circuit
    /// with policy checks): only then may the registry build the finals of `v4-agents` diffs,
    /// whose passport and lanes records such spends publish.
    fn proves_agents(&self) -> bool {
        self.policy_checks() != crate::circuits::payment::PolicyChecks::None
    }

    /// The shape of the leaf's policy checks (SPEC 20.8): none, plain, or with the allow-lists'
    /// membership paths (what a node needs to know to accept lists, through the pins).
    fn policy_checks(&self) -> crate::circuits::payment::PolicyChecks {
        crate::circuits::payment::PolicyChecks::None
    }
}

/// The development leaf circuit (see the module docs: not sound, proves nothing).
pub struct DummyLeaf {
    data: CircuitData<F, C, D>,
    inputs: Vec<Target>,
    k: usize,
}

/// A dummy leaf's witness: just the statement it claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DummyLeafWitness {
    pub statement: RangeStatement,
}

impl DummyLeaf {
    /// `k` transactions per leaf.
    pub fn build(k: usize) -> DummyLeaf {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let inputs = b.add_virtual_targets(RANGE_PUBLIC_INPUTS);
        RangeStatementTargets::from_targets(&inputs).register(&mut b);
        // Some work, so the circuit's shape resembles a real one a little (hash of the inputs).
        let h = b.hash_n_to_hash_no_pad::<PoseidonHash>(inputs.clone());
        let sq = b.mul(h.elements[0], h.elements[1]);
        let _ = b.add(sq, h.elements[2]);
        DummyLeaf {
            data: b.build::<C>(),
            inputs,
            k: k.max(1),
        }
    }
}

impl LeafCircuit for DummyLeaf {
    type Witness = DummyLeafWitness;

    fn id(&self) -> String {
        format!("dummy-leaf-v1/k={}", self.k)
    }

    fn leaf_size(&self) -> usize {
        self.k
    }

    fn data(&self) -> &CircuitData<F, C, D> {
        &self.data
    }

    fn prove(&self, w: &DummyLeafWitness) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let mut pw = PartialWitness::new();
        for (t, v) in self.inputs.iter().zip(w.statement.to_fields()) {
            pw.set_target(*t, v)?;
        }
        self.data.prove(pw)
    }

    fn witnesses(
        &self,
        state: &mut State,
        txs: &[(Transaction, BlockContext)],
        batch_timestamp: Timestamp,
        depositors: Depositors<'_>,
        min_leaves: usize,
        _splits: &mut SplitChainBuilder,
    ) -> Result<Vec<DummyLeafWitness>, LeafPlanError> {
        // (`native_statements` refuses splits: the dummy leaf hands no record over.)
        native_statements(state, txs, batch_timestamp, self.k, depositors, min_leaves).map(|v| {
            v.into_iter()
                .map(|statement| DummyLeafWitness { statement })
                .collect()
        })
    }
}

/// The statements of the leaves of a batch, computed with the native rules: chunks of `k`
/// transactions, padded with empty leaves to a power of two (at least one leaf, at least
/// `min_leaves`).
pub fn native_statements(
    state: &mut State,
    txs: &[(Transaction, BlockContext)],
    batch_timestamp: Timestamp,
    k: usize,
    depositors: Depositors<'_>,
    min_leaves: usize,
) -> Result<Vec<RangeStatement>, LeafPlanError> {
    let mut entries = state::Digest::ZERO;
    let k = k.max(1);
    let domain = *state.domain();
    let domain_digest = domain.digest();
    let timestamp = batch_timestamp.get();
    let mut pubdata = PubdataCommitment::new();
    let mut withdrawals = WithdrawalsCommitment::new();
    let mut out = Vec::new();
    let chunks: Vec<&[(Transaction, BlockContext)]> = if txs.is_empty() {
        vec![&[]]
    } else {
        txs.chunks(k).collect()
    };
    for chunk in chunks {
        let old_root = state.root();
        let pubdata_in = pubdata.digest();
        let withdrawals_in = withdrawals.digest();
        let deposits_first = state.next_deposit_seq();
        let entries_in = entries;
        for (tx, ctx) in chunk {
            // A split's statement folds the record of its credits (SPEC 13.1), which only the
            // payment circuit's witnesses compute (`SlotWitness::split_record`).
            if matches!(tx, Transaction::Split(_)) {
                return Err(LeafPlanError::Other(anyhow::anyhow!(
                    "the dummy leaf does not prove splits"
                )));
            }
            let verified = VerifiedTx::from_durable_log(tx.clone(), &domain, |i| state.key_of(i))
                .map_err(|r| LeafPlanError::Rejected(r.to_string()))?;
            let fx = state
                .apply_verified(verified, ctx)
                .map_err(|r| LeafPlanError::Rejected(r.to_string()))?;
            pubdata.absorb(&fx.pubdata);
            if let Some(w) = &fx.withdrawal {
                withdrawals.absorb(w);
            }
            entries = crate::witness::absorb_entry(entries, &fx.pubdata, depositors)
                .map_err(|e| LeafPlanError::Other(anyhow::anyhow!(e)))?;
        }
        out.push(RangeStatement {
            old_root,
            new_root: state.root(),
            pubdata_in,
            pubdata_out: pubdata.digest(),
            withdrawals_in,
            withdrawals_out: withdrawals.digest(),
            deposits_first,
            deposits_next: state.next_deposit_seq(),
            timestamp,
            domain: domain_digest,
            entries_in,
            entries_out: entries,
            // Splits are refused above; no other kind hands a record over to a side proof.
            splits_in: state::Digest::ZERO,
            splits_out: state::Digest::ZERO,
            walks_in: state::Digest::ZERO,
            walks_out: state::Digest::ZERO,
        });
    }
    let last = *out.last().expect("at least one leaf");
    let target = crate::witness::leaf_count(txs.len(), k, min_leaves.max(1));
    while out.len() < target {
        out.push(last.empty_after());
    }
    Ok(out)
}

/// The `i`-th of a chain of made-up, continuous statements (tests and benchmarks).
pub fn chain_statement(i: u64, prev: Option<&RangeStatement>) -> RangeStatement {
    let d = |x: u64| state::Digest([F::from_canonical_u64(x), F::ONE, F::TWO, F::ZERO]);
    let zero = state::Digest::ZERO;
    match prev {
        None => RangeStatement {
            old_root: d(1000),
            new_root: d(1001),
            pubdata_in: zero,
            pubdata_out: d(2001),
            withdrawals_in: zero,
            withdrawals_out: d(3001),
            deposits_first: 5,
            deposits_next: 6,
            timestamp: 1_700_000_000,
            domain: d(42),
            entries_in: zero,
            entries_out: d(4001),
            splits_in: zero,
            splits_out: d(5001),
            walks_in: zero,
            walks_out: d(6001),
        },
        Some(p) => RangeStatement {
            old_root: p.new_root,
            new_root: d(1001 + i),
            pubdata_in: p.pubdata_out,
            pubdata_out: d(2001 + i),
            withdrawals_in: p.withdrawals_out,
            withdrawals_out: d(3001 + i),
            deposits_first: p.deposits_next,
            deposits_next: p.deposits_next + i % 2,
            entries_in: p.entries_out,
            entries_out: d(4001 + i),
            splits_in: p.splits_out,
            splits_out: d(5001 + i),
            walks_in: p.walks_out,
            walks_out: d(6001 + i),
            ..*p
        },
    }
}
