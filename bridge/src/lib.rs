//! The bridge service of the rollup (docs/SPEC.md section 16), on Postgres: the L1 watcher, the
//! batch submitter and the event feed for exchanges.
//!
//! The database-free L1 client (contract bindings from the committed artifacts, JSON-RPC, the
//! secp256k1 signer, deployment and deposits, the SPEC 15 hashes, the rebuild of the L2 state
//! from L1) is the `rollup-l1-client` crate (`bridge/l1-client`); its modules are re-exported
//! here, so `rollup_bridge::rpc::Rpc` and the like keep working.

pub mod feed;
pub mod settle;
pub mod submitter;
pub mod watcher;

pub use rollup_l1_client::{
    claims, contracts, deploy, exodus, hashes, rebuild, revert, rpc, signer,
};
pub use rollup_l1_client::{Address, Bytes, B256, U256};
