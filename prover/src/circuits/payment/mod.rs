//! The payment (leaf) circuit: `k` transaction slots applied in order to the state tree, with
//! the rules of `state::apply`, exposing the 55 public inputs of [`RangeStatementTargets`].
//!
//! Every slot has the same constraints whatever its kind (register, transfer, withdraw,
//! deposit, forced withdrawal, split, or a no-op used as padding): six exclusive kind flags
//! select which rules bind. A slot makes three leaf accesses in a fixed order, each a Merkle
//! update against the root left by the previous one: A (sender / registered index / deposit
//! recipient), B (transfer recipient; for a register the account just below the new index),
//! C (the operator, index 0). An access that a kind does not use writes its old leaf back. A
//! split's credits happen between B and C, proven by the split-credit chain
//! ([`crate::circuits::split`]): the slot folds their record into the range statement's
//! `splits` accumulator and continues from the root the chain reaches.
//!
//! Optional branches, each built only into a circuit with its kinds ([`PaymentKinds`]): the
//! stream kinds (`stream`), the revenue-share kinds and the lock (`shares`), and the policy
//! checks: the signer's opening with an agent's rules and nonce lanes (`agent`, `lanes`) and
//! the owner's four kinds (`owner`). The full description (slot layout, per-kind
//! constraints, public inputs, known gaps) is in `docs/SPEC.md`, "Payment circuit" and 20.8.

mod agent;
mod lanes;
mod owner;
mod rules;
mod shares;
mod slot;
mod stream;

pub use owner::OwnerRule;
pub use shares::SharesRule;
pub use stream::StreamRule;

use anyhow::{ensure, Context};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;

use crate::circuits::policy::PolicyRule;
use crate::circuits::public::{RangeStatement, RangeStatementTargets};
use crate::gadgets::range::range_check_u63;
use crate::witness::LeafWitness;
use crate::{C, D, F};
use slot::{build_slot, set_slot, Running, SlotTargets};

/// Which optional kinds a payment circuit's slots have: a leaf pays only for the kinds it
/// may hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PaymentKinds {
    /// Stream open, settle and close ([`stream`], SPEC 13.3.1).
    pub streams: bool,
    /// Register shares and distribute, with the lock in every slot ([`shares`], SPEC 19.6).
    pub shares: bool,
    /// An agent's spends judged by its passport, nonce lanes and the owner kinds (SPEC 20.8).
    pub policies: PolicyChecks,
}

/// Whether a payment circuit's slots judge agents' spends by their passports (SPEC 20.8), and
/// in which shape. Recorded in the pins manifest (`leaf_policies`: `none`, `plain`, `lists`,
/// the names of `rollup-prover --leaf-policies`), which tells a node whether it may accept
/// allow-lists.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PolicyChecks {
    /// No policy check: a leaf for a state without agents.
    #[default]
    None,
    /// The six rules without a membership path: an agent under an allow-list pays no account.
    Plain,
    /// With a ten-hash membership path in every slot, for allow-lists.
    #[serde(rename = "lists")]
    WithLists,
}

/// The payment (leaf) circuit for `k` slots.
pub struct PaymentCircuit {
    pub data: CircuitData<F, C, D>,
    /// Gates added by one slot (measured on the first).
    pub gates_per_slot: usize,
    statement: RangeStatementTargets,
    slots: Vec<SlotTargets>,
    kinds: PaymentKinds,
}

impl PaymentCircuit {
    /// Builds the circuit for `k >= 1` slots of the plain kinds (no stream kind).
    pub fn build(k: usize) -> Self {
        Self::build_with(k, false)
    }

    /// Builds the circuit for `k >= 1` slots, with the stream kinds if `streams`
    /// ([`stream`]): a leaf that holds one pays for them, a leaf of plain payments does not.
    pub fn build_with(k: usize, streams: bool) -> Self {
        Self::build_kinds(
            k,
            PaymentKinds {
                streams,
                ..PaymentKinds::default()
            },
        )
    }

    /// Builds the circuit for `k >= 1` slots with the optional `kinds`.
    pub fn build_kinds(k: usize, kinds: PaymentKinds) -> Self {
        assert!(k >= 1, "a leaf has at least one slot");
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let old_root = b.add_virtual_hash();
        let pubdata_in = b.add_virtual_hash();
        let withdrawals_in = b.add_virtual_hash();
        let deposits_first = b.add_virtual_target();
        let timestamp = b.add_virtual_target();
        let domain = b.add_virtual_hash();
        let entries_in = b.add_virtual_hash();
        let splits_in = b.add_virtual_hash();
        // Without the stream kinds no slot hands a walk over (SPEC 13.1): `walks` passes
        // through, one target for the value before and after.
        let walks_in = b.add_virtual_hash();
        let ts = range_check_u63(&mut b, timestamp);

        let mut io = Running {
            root: old_root,
            pubdata: pubdata_in,
            withdrawals: withdrawals_in,
            deposits: deposits_first,
            entries: entries_in,
            splits: splits_in,
            walks: walks_in,
        };
        let mut slots = Vec::with_capacity(k);
        let mut gates_per_slot = 0;
        for i in 0..k {
            let before = b.num_gates();
            let (t, next) = build_slot(&mut b, domain, &ts, io, kinds);
            if i == 0 {
                gates_per_slot = b.num_gates() - before;
            }
            slots.push(t);
            io = next;
        }
        let statement = RangeStatementTargets {
            old_root,
            new_root: io.root,
            pubdata_in,
            pubdata_out: io.pubdata,
            withdrawals_in,
            withdrawals_out: io.withdrawals,
            deposits_first,
            deposits_next: io.deposits,
            timestamp,
            domain,
            entries_in,
            entries_out: io.entries,
            splits_in,
            splits_out: io.splits,
            walks_in,
            walks_out: io.walks,
        };
        statement.register(&mut b);
        let data = b.build::<C>();
        PaymentCircuit {
            data,
            gates_per_slot,
            statement,
            slots,
            kinds,
        }
    }

    /// The gates one slot with `kinds` adds, without building a circuit (no FFT: for cost
    /// reports).
    pub fn gates_per_slot_of(kinds: PaymentKinds) -> usize {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let io = Running {
            root: b.add_virtual_hash(),
            pubdata: b.add_virtual_hash(),
            withdrawals: b.add_virtual_hash(),
            deposits: b.add_virtual_target(),
            entries: b.add_virtual_hash(),
            splits: b.add_virtual_hash(),
            walks: b.add_virtual_hash(),
        };
        let domain = b.add_virtual_hash();
        let timestamp = b.add_virtual_target();
        let ts = range_check_u63(&mut b, timestamp);
        let before = b.num_gates();
        build_slot(&mut b, domain, &ts, io, kinds);
        b.num_gates() - before
    }

    pub fn k(&self) -> usize {
        self.slots.len()
    }

    /// Whether the circuit has the stream kinds.
    pub fn has_streams(&self) -> bool {
        self.kinds.streams
    }

    /// The optional kinds the circuit has.
    pub fn kinds(&self) -> PaymentKinds {
        self.kinds
    }

    /// Which stream rule of which slot a refused witness broke, from the error of
    /// [`PaymentCircuit::prove`] (`None`: another rule, or not a conflict).
    pub fn refused_by(&self, error: &str) -> Option<(usize, StreamRule)> {
        self.rule_broken(error, |s| &s.stream_rules)
    }

    /// Which revenue-share rule of which slot a refused witness broke, like
    /// [`PaymentCircuit::refused_by`].
    pub fn refused_by_shares(&self, error: &str) -> Option<(usize, SharesRule)> {
        self.rule_broken(error, |s| &s.shares_rules)
    }

    /// Which owner-kind rule of which slot a refused witness broke, like
    /// [`PaymentCircuit::refused_by`].
    pub fn refused_by_owner(&self, error: &str) -> Option<(usize, OwnerRule)> {
        self.rule_broken(error, |s| &s.owner_rules)
    }

    /// Which policy rule of which slot a refused witness broke, like
    /// [`PaymentCircuit::refused_by`].
    pub fn refused_by_policy(&self, error: &str) -> Option<(usize, PolicyRule)> {
        self.rule_broken(error, |s| &s.policy_rules)
    }

    fn rule_broken<R: Copy>(
        &self,
        error: &str,
        rules_of: impl Fn(&SlotTargets) -> &[(plonky2::iop::target::Target, R)],
    ) -> Option<(usize, R)> {
        let rules: Vec<_> = self
            .slots
            .iter()
            .enumerate()
            .flat_map(|(i, s)| rules_of(s).iter().map(move |&(t, r)| (t, (i, r))))
            .collect();
        crate::circuits::refusal::rule_broken(&rules, error)
    }

    /// Proves one leaf. Fails if the witness violates any rule, or if its statement is not the
    /// one the slots imply (every public input is also set from `w.statement`, so a mismatch is
    /// a witness conflict).
    pub fn prove(&self, w: &LeafWitness) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        ensure!(
            w.slots.len() == self.k(),
            "the witness has {} slots, the circuit {}",
            w.slots.len(),
            self.k()
        );
        let mut pw = PartialWitness::new();
        // The accumulators' "before" and "after" are one target each, so a statement that
        // claims a record handed over is a witness conflict like any other wrong value.
        for (t, v) in self
            .statement
            .to_targets()
            .into_iter()
            .zip(w.statement.to_fields())
        {
            pw.set_target(t, v)?;
        }
        for (i, (t, slot)) in self.slots.iter().zip(&w.slots).enumerate() {
            set_slot(&mut pw, t, slot).with_context(|| format!("slot {i}"))?;
        }
        // plonky2's witness generation panics on some violated constraints (a range check that
        // does not fit its limbs); report those as errors like the others.
        let proof = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.data.prove(pw)))
            .map_err(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                anyhow::anyhow!("witness generation failed: {msg}")
            })??;
        ensure!(
            RangeStatement::from_fields(&proof.public_inputs).as_ref() == Some(&w.statement),
            "the proof's public inputs differ from the witness statement"
        );
        Ok(proof)
    }

    /// Verifies a leaf proof and returns its statement.
    pub fn verify(&self, proof: ProofWithPublicInputs<F, C, D>) -> anyhow::Result<RangeStatement> {
        let s = RangeStatement::from_fields(&proof.public_inputs).context("public inputs")?;
        self.data.verify(proof)?;
        Ok(s)
    }
}

impl crate::circuits::leaf::LeafCircuit for PaymentCircuit {
    type Witness = LeafWitness;

    fn id(&self) -> String {
        let streams = if self.kinds.streams { "-streams" } else { "" };
        let shares = if self.kinds.shares { "-shares" } else { "" };
        let policies = match self.kinds.policies {
            PolicyChecks::None => "",
            PolicyChecks::Plain => "-policies",
            PolicyChecks::WithLists => "-policies-lists",
        };
        format!("payment-v5{streams}{shares}{policies}/k={}", self.k())
    }

    fn leaf_size(&self) -> usize {
        self.k()
    }

    fn proves_shares(&self) -> bool {
        self.kinds.shares
    }

    fn policy_checks(&self) -> PolicyChecks {
        self.kinds.policies
    }

    fn data(&self) -> &CircuitData<F, C, D> {
        &self.data
    }

    fn prove(&self, w: &LeafWitness) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        PaymentCircuit::prove(self, w)
    }

    fn walk_records(&self, leaves: &[LeafWitness]) -> Vec<crate::circuits::ticks::WalkRecord> {
        crate::planner::chunks::walk_records(leaves)
    }

    fn witnesses(
        &self,
        state: &mut state::apply::State,
        txs: &[(state::tx::Transaction, state::apply::BlockContext)],
        batch_timestamp: state::account::Timestamp,
        depositors: crate::witness::Depositors<'_>,
        min_leaves: usize,
        splits: &mut crate::circuits::split::SplitChainBuilder,
    ) -> Result<Vec<LeafWitness>, crate::circuits::leaf::LeafPlanError> {
        use crate::circuits::leaf::LeafPlanError;
        // A kind this circuit lacks is reported before anything is planned (the registry
        // serves the leaf with it, or a node never accepts it).
        use state::tx::{Signer, Transaction};
        let lacks = |tx: &Transaction| match tx {
            Transaction::StreamOpen(_)
            | Transaction::StreamSettle(_)
            | Transaction::StreamClose(_)
            | Transaction::StreamSettlePath(_)
                if !self.kinds.streams =>
            {
                Some(tx.kind().name())
            }
            Transaction::RegisterShares(_) | Transaction::Distribute(_) if !self.kinds.shares => {
                Some(tx.kind().name())
            }

            Transaction::Passport(_) if self.kinds.policies == PolicyChecks::None => {
                Some(tx.kind().name())
            }
            // A nonce of lanes 1 to 7 (SPEC 20.1): only the slot with policy checks takes it.
            // (Not a forced withdrawal's: a state without lanes rejects it, `BAD_NONCE`, which
            // every leaf proves, and it must be consumed.)
            Transaction::ForcedWithdraw(_) => None,
            _ if self.kinds.policies == PolicyChecks::None
                && tx
                    .nonce()
                    .is_some_and(|n| n.lane() != state::lanes::Lane::ZERO) =>
            {
                Some("lane-nonce")
            }
            _ => None,
        };
        // An agent's spends need policy checks: an agent of the state before the batch (one
        // that a delegate of the batch creates needs them for the delegate already). (A split
        // of one under an allow-list has no proof in any circuit: the native rules refuse it,
        // SPEC 20.4.)
        let agent_lacks = |tx: &Transaction| {
            let Signer::Account(signer) = tx.signer() else {
                return None;
            };
            state.passport(signer)?;
            (self.kinds.policies == PolicyChecks::None).then_some("policy-checked")
        };
        let refused = txs
            .iter()
            .enumerate()
            .find_map(|(position, (tx, _))| Some((position, lacks(tx).or(agent_lacks(tx))?)));
        if let Some((position, kind)) = refused {
            return Err(LeafPlanError::Other(anyhow::anyhow!(
                crate::witness::WitnessError::KindNotProvable { position, kind }
            )));
        }
        let leaves = crate::witness::leaf_witnesses_and_chain(
            state,
            txs,
            batch_timestamp,
            self.k(),
            min_leaves.max(1),
            depositors,
            Some(splits),
        )
        .map_err(|e| match e {
            crate::witness::WitnessError::Rejected { .. }
            | crate::witness::WitnessError::ExpiredAtBatchTimestamp { .. } => {
                LeafPlanError::Rejected(e.to_string())
            }
            e => LeafPlanError::Other(anyhow::anyhow!(e)),
        })?;
        // An agent under an allow-list paying an account needs the payee's membership path,
        // which only the `WithLists` shape takes (the plain one refuses the payment,
        // `POLICY_PAYEE`): found in the witnesses, so that an agent delegated in this batch
        // counts too.
        if self.kinds.policies == PolicyChecks::Plain {
            let listed = leaves.iter().flat_map(|leaf| &leaf.slots).position(|s| {
                s.signer
                    .as_ref()
                    .and_then(|o| o.passport.as_ref())
                    .is_some_and(|p| p.membership.is_some())
            });
            if let Some(position) = listed {
                return Err(LeafPlanError::Other(anyhow::anyhow!(
                    crate::witness::WitnessError::KindNotProvable {
                        position,
                        kind: "listed-agent payment",
                    }
                )));
            }
        }
        Ok(leaves)
    }
}
