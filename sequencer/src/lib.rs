//! The rollup node (sequencer): gRPC payment streams, single-writer ordering, group commit to
//! Postgres, blocks, batches, recovery, and HTTP for health, metrics and queries.
//!
//! Data flow: `service` (decode, verify signatures on rayon) -> `writer` (one thread applies
//! transactions with the `state` rules, in order) -> `committer` (one task writes groups to
//! Postgres through `store`) -> receipts. `recovery` rebuilds the state from the durable log.

// Request paths must answer with a typed error, never panic: no `unwrap()` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod bridge;
pub mod bridge_api;
pub mod committer;
pub mod config;
pub mod convert;
pub mod deadlines;
pub mod explorer;
pub mod http;
pub mod keys;
pub mod l1_ingest;
pub mod limits;
pub mod node;
pub mod receipt_watch;
pub mod recovery;
pub mod service;
pub mod snapshotter;
pub mod supervisor;
pub mod ticks;
pub mod unsealed;
pub mod writer;
pub mod x402;
