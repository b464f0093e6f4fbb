//! Reusable circuit pieces.
//!
//! - [`gfp5`], [`curve`], [`schnorr`]: GF(p^5) arithmetic and ECgFp5 curve operations as custom
//!   plonky2 gates, and Schnorr verification built from them.
//! - [`smt`], [`range`], [`pubdata`]: state-tree membership/update, 63/64-bit range checks and
//!   the pubdata/withdrawals commitment chains.
//! - [`agent`]: stream fields as diff bytes and book leaves, book paths, `ext` (the agent
//!   kinds' pieces).
//! - [`allow`]: a policy's allow-list root rebuilt from the list in runs of 16 payees (for
//!   the diff's policy bodies); [`card`]: an agent card's digest over a URI of any length.
//! - [`serializer`]: gate and generator serializers for caching circuits on disk.

pub mod agent;
pub mod allow;
pub mod card;
pub mod curve;
pub mod gfp5;
pub mod pubdata;
pub mod range;
pub mod schnorr;
pub mod serializer;
pub mod sha256;
pub mod smt;
