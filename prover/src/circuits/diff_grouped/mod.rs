//! The grouped diff circuit: a version 4 state diff (SPEC 10.4, "Version 4") leads from the old
//! state root to the new one, stream and agent records included, and hashes to `diff_hash`.
//! First step of docs/PROVER.md "Proving the agent kinds": it proves account records with their
//! stream records, passport records that do not carry a policy body (every record after the
//! one that set the policy: an agent's spends move `window_id` and `spent`) and lanes records;
//! a passport record with its policy and shares records are the next step (the witness builder
//! refuses them). The settlement circuit of a version 4 diff verifies its tree (SPEC 13.11,
//! "Diff kinds").
//!
//! A chunk has `cap` slots; a slot is one account's group or the continuation of the previous
//! slot's, and holds up to `subs` stream records. What a used slot proves:
//!
//! - **Which account.** A group of an existing account: no new account's group before it and
//!   `lower <= index < count_before` (then `lower = index + 1`); of a new account: index
//!   `count_before + new`. A continuation (exactly when the previous slot's last stream record
//!   announced another): the previous slot's index, balance and nonce unchanged, no record
//!   bytes.
//! - **Its `ext` before.** Witnessed stream root and profile whose `ext` (SPEC 18.3, `ZERO`
//!   when both are empty) is in the old leaf, which is under the running root; a new account's
//!   old leaf is empty and its book and profile start empty.
//! - **Its stream records**, in order, each in the running book: the old slot leaf is under
//!   the book's root, the new one (the stream's leaf, or `ZERO` for an emptied slot) replaces
//!   it. Slots strictly increase within a group. The first sub-slot is used iff the `parts`
//!   byte says streams follow (or the slot continues); the next iff the previous record's tag
//!   says "more"; the last one's "more" carries to the next slot.
//! - **Its profile parts** (a group's first slot only): the old parts (shares, passport, lanes
//!   digests) are witnessed, their profile is the one in the old `ext`; a passport record
//!   (`owner`, `revoked`, `window_id`, `spent`, the policy digest, no policy body) replaces the
//!   passport part by `passport_digest` of its fields, a lanes record (seven sequence numbers
//!   below `2^60`) the lanes part by its digest (`ZERO` when all are 0).
//! - **Its leaf after**: the record's balance and nonce (below `2^63`), the same key, the
//!   profile of the parts after, and the `ext` of the book after.
//! - **The bytes**: the record (21 bytes, or 61 with the key of a new account) with its
//!   `parts` byte, the passport (58 bytes) and lanes (60) records when present, then per stream
//!   record `slot ‖ tag [‖ fields]`, appended to the SHA-256 stream in the order of
//!   `StateDiff::encode_grouped`.
//!
//! Public inputs: those of the version 1 diff circuit ([`DiffStatement`], 73) and
//! `more_in/out`, `last_slot_in/out` (77), chained the same way.
//!
//! Cost: `tests::rows_per_slot` (an account part and `subs` stream parts).

use plonky2::field::types::{Field, PrimeField64};
use serde::{Deserialize, Serialize};
use state::hash::Digest;
use state::smt::empty_hashes;
use state::stream::SLOT_DEPTH;

use crate::circuits::diff::{diff_header_of, DiffStatement, DIFF_PUBLIC_INPUTS};
use crate::gadgets::sha256::stream::StreamState;
use crate::F;

/// Number of public inputs.
pub const GROUPED_PUBLIC_INPUTS: usize = DIFF_PUBLIC_INPUTS + 4;

/// Version of the circuit's definition (part of a cache key).
pub const GROUPED_VERSION: &str = "diff-grouped-v1";

/// The version byte of the diffs this circuit proves.
pub const VERSION: u8 = state::diff::DIFF_VERSION_GROUPED;

/// Positions of the public inputs after the [`DiffStatement`]'s (which keep theirs,
/// `crate::circuits::diff::at`).
pub mod at {
    use crate::circuits::diff::DIFF_PUBLIC_INPUTS;
    pub const MORE_IN: usize = DIFF_PUBLIC_INPUTS;
    pub const MORE_OUT: usize = DIFF_PUBLIC_INPUTS + 1;
    pub const LAST_SLOT_IN: usize = DIFF_PUBLIC_INPUTS + 2;
    pub const LAST_SLOT_OUT: usize = DIFF_PUBLIC_INPUTS + 3;
}

/// How grouped diff proofs of consecutive chunks chain (SPEC 13.12): the version 1 diff's
/// links, and the stream record pending at the boundary (`more`, `last_slot`).
pub fn grouped_layout() -> crate::circuits::chain::ChainLayout {
    use crate::circuits::chain::Link;
    let mut layout = crate::circuits::diff::diff_layout();
    layout.len = GROUPED_PUBLIC_INPUTS;
    layout.links.push(Link::new(at::MORE_IN, at::MORE_OUT, 1));
    layout
        .links
        .push(Link::new(at::LAST_SLOT_IN, at::LAST_SLOT_OUT, 1));
    layout
}

/// What a grouped diff proof states: [`DiffStatement`] and the stream records' running values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupedStatement {
    pub base: DiffStatement,
    /// Whether the last stream record before (after) the chunk announced another.
    pub more_in: bool,
    pub more_out: bool,
    /// The slot of the last stream record before (after) the chunk.
    pub last_slot_in: u16,
    pub last_slot_out: u16,
}

impl GroupedStatement {
    pub fn to_fields(&self) -> Vec<F> {
        let mut v = self.base.to_fields();
        v.push(F::from_bool(self.more_in));
        v.push(F::from_bool(self.more_out));
        v.push(F::from_canonical_u16(self.last_slot_in));
        v.push(F::from_canonical_u16(self.last_slot_out));
        v
    }

    /// The inverse of [`GroupedStatement::to_fields`] (`None` for a value no chunk states).
    pub fn from_fields(v: &[F]) -> Option<GroupedStatement> {
        if v.len() != GROUPED_PUBLIC_INPUTS {
            return None;
        }
        let bit = |o: usize| crate::circuits::public::bool_of_field(v[o]);
        let slot = |o: usize| u16::try_from(v[o].to_canonical_u64()).ok();
        Some(GroupedStatement {
            base: DiffStatement::from_fields(&v[..DIFF_PUBLIC_INPUTS])?,
            more_in: bit(at::MORE_IN)?,
            more_out: bit(at::MORE_OUT)?,
            last_slot_in: slot(at::LAST_SLOT_IN)?,
            last_slot_out: slot(at::LAST_SLOT_OUT)?,
        })
    }

    /// Whether this states a whole batch's version 4 diff: from the old root, the stream
    /// holding exactly the header, nothing counted, no stream record pending at either end.
    pub fn whole_batch(&self) -> bool {
        let b = &self.base;
        let Ok(n) = u32::try_from(b.records_out) else {
            return false;
        };
        let mut header = StreamState::default();
        header.absorb(&diff_header_of(VERSION, b.count_before, n));
        b.root_in == b.batch_old_root
            && b.stream_in == header
            && b.records_in == 0
            && b.lower_in == 0
            && b.new_in == 0
            && !b.started_in
            && !self.more_in
            && !self.more_out
    }
}

/// The empty book's root, natively (for witnesses built by hand).
pub fn empty_book_root() -> Digest {
    empty_hashes()[SLOT_DEPTH]
}

mod circuit;
mod witness;

pub use circuit::GroupedDiffCircuit;
pub use witness::{grouped_chunks, GroupSlot, GroupedWitness, PassportPart, StreamSub};

#[cfg(test)]
mod tests;
