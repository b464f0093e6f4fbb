//! plonky2 validity proofs for the rollup: gadgets (in-circuit ECgFp5 Schnorr with custom gates,
//! the state tree, range checks, pubdata), the payment (leaf) circuit, recursive aggregation,
//! witness generation, the proving worker and the verifier.
//!
//! Module ownership follows the domain: `gadgets` are reusable circuit pieces with no knowledge
//! of transactions; `circuits` assemble them into the leaf, merge and final circuits whose public
//! inputs are defined once in [`circuits::public`].

pub mod cache;
pub mod capacity;
pub mod circuits;
pub mod gadgets;
pub mod jobs;
pub mod memo;
pub mod pins;
pub mod planner;
pub mod verify;
pub mod witness;
pub mod worker;

/// The leaf circuit the worker proves with.
pub type ActiveLeaf = circuits::payment::PaymentCircuit;

/// The base field (Goldilocks), the same as `state::hash::F`.
pub type F = plonky2::field::goldilocks_field::GoldilocksField;
/// Extension degree used by every circuit.
pub const D: usize = 2;
/// Hash configuration of every circuit (Poseidon over Goldilocks).
pub type C = plonky2::plonk::config::PoseidonGoldilocksConfig;
