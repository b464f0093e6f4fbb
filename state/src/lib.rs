//! The rollup's rules, with no I/O.
//!
//! Everything that two parties (sequencer and prover, node and wallet, this implementation and
//! a second one) must agree on bit for bit lives here: the field and hash helpers, ECgFp5 and
//! Schnorr, account leaves, transaction encodings and message hashes, the sparse Merkle tree,
//! pubdata, net state diffs and the state-transition function. `docs/SPEC.md` is the prose version of this crate.

pub mod account;
pub mod apply;
pub mod crypto;
pub mod diff;
pub mod exodus;
pub mod ext;
pub mod hash;
pub mod lanes;
pub mod owner;
pub mod passport;
pub mod pubdata;
pub mod settlement;
pub mod smt;
pub mod snapshot;
pub mod split;
pub mod stream;
pub mod tx;

pub use hash::{Digest, F};
