//! Reusable circuit pieces.
//!
//! - [`gfp5`], [`curve`], [`schnorr`]: GF(p^5) arithmetic and ECgFp5 curve operations as custom
//!   plonky2 gates, and Schnorr verification built from them.
//! - `smt`, `range`, `pubdata` (payment circuit work): state-tree membership/update, 64-bit range
//!   checks and the pubdata/withdrawals commitment chains.

pub mod curve;
pub mod gfp5;
pub mod pubdata;
pub mod range;
pub mod schnorr;
pub mod smt;
