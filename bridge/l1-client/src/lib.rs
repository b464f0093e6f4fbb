//! The L1 client of the rollup, with no database: bindings generated from the committed contract
//! artifacts (`bridge/artifacts`, built by `bridge/scripts/build.sh`), a small JSON-RPC client, a
//! local secp256k1 signer, deployment and deposits, the hashes the node must compute like the
//! contract does (docs/SPEC.md section 15), and the rebuild of the L2 state from L1 data alone
//! (SPEC 16.7).
//!
//! The agent SDK and the `rollup` wallet use this crate; the bridge service (watcher, submitter,
//! event feed: the parts on Postgres) is `rollup-bridge`, which re-exports these modules.

pub mod claims;
pub mod contracts;
pub mod deploy;
pub mod exodus;
pub mod hashes;
pub mod owner;
pub mod rebuild;
pub mod revert;
pub mod rpc;
pub mod signer;

pub use alloy_primitives::{Address, Bytes, B256, U256};
