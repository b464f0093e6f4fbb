//! The L1 side of the rollup, in Rust: bindings generated from the committed contract artifacts
//! (`bridge/artifacts`, built by `bridge/scripts/build.sh`), a small JSON-RPC client, a local
//! secp256k1 signer, deployment and deposits, the hashes the node must compute like the contract
//! does (docs/SPEC.md section 15), and the bridge service (SPEC section 16): the L1 watcher,
//! the batch submitter and the event feed for exchanges; and the rebuild of the L2 state from L1
//! data alone.

pub mod contracts;
pub mod deploy;
pub mod feed;
pub mod hashes;
pub mod rebuild;
pub mod rpc;
pub mod signer;
pub mod submitter;
pub mod watcher;

pub use alloy_primitives::{Address, Bytes, B256, U256};
