//! The circuits: the payment (leaf) circuit, 2-to-1 merges and the final wrapper.

pub mod aggregate;
pub mod chain;
pub mod diff;
pub mod leaf;
pub mod payment;
pub mod payout;
pub mod priority;
pub mod public;
pub mod settlement;
