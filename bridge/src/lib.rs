//! The L1 side of the rollup, in Rust: bindings generated from the committed contract artifacts
//! (`bridge/artifacts`, built by `bridge/scripts/build.sh`), a small JSON-RPC client, deployment
//! and deposits, and the hashes the node must compute like the contract does (docs/SPEC.md
//! section 15: priority-queue rolling hash, batch statement, payout tree).
//!
//! The event feed, the batch submitter and the watcher come later (issue 5, part 2).

pub mod contracts;
pub mod deploy;
pub mod hashes;
pub mod rpc;

pub use alloy_primitives::{Address, Bytes, B256, U256};
