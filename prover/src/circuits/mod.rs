//! The circuits: the payment (leaf) circuit and its 2-to-1 merges, the diff, priority and
//! payout trees, and the settlement (final) circuit over the four roots; [`registry`] builds
//! them lazily.

pub mod aggregate;
pub mod chain;
pub mod diff;
pub mod diff_grouped;
pub mod leaf;
pub mod leaf_set;
pub mod payment;
pub mod payout;
pub mod policy;
pub mod priority;
pub mod public;
mod refusal;
pub mod registry;
pub mod settlement;
pub mod split;
pub mod ticks;
pub mod trees;
