//! The diff circuit (SPEC 13.7): the state diff a batch publishes on L1 (SPEC 10.4) leads from
//! the old state root to the new one, and its bytes hash (SHA-256, as the contract hashes the
//! calldata) to the public `diff_hash`.
//!
//! Public inputs (16): `old_root` (4), `new_root` (4), `diff_hash` as eight big-endian u32
//! words.
//!
//! A circuit has room for `cap_old` records of accounts that existed before the batch and
//! `cap_new` records of accounts the batch created; a slot is used or not (a flag; used slots
//! come first in each group). What it proves:
//!
//! - **Header**: version 1, `count_before`, and `n` = the number of used slots, as the first
//!   13 bytes of the hashed message. `count_before` is the number of accounts before: the leaf
//!   at `count_before - 1` is an account and the leaf at `count_before` is empty under
//!   `old_root` (accounts are dense, SPEC 11.5), so a diff cannot misstate it, which the
//!   rebuild from L1 would reject (`COUNT_MISMATCH`). `1 <= count_before < 2^32`.
//! - **Records of existing accounts**, in order: `index < count_before`, strictly increasing;
//!   the old leaf (the account's key, its balance and nonce before, its `ext`) is under the
//!   running root; the new leaf has the record's balance and nonce and the same key and `ext`:
//!   a version 1 record leaves an account's agent fields as they are, as the rebuild from L1
//!   does (`AccountTree::apply`), so a batch of plain payments that touches a stream payer, a
//!   revenue-share account or an agent's owner is provable. The record bytes (`index`,
//!   `balance`, `nonce`, little-endian) are appended to the message.
//! - **Records of new accounts**: the `j`-th has index `count_before + j` (so new accounts are
//!   consecutive, from the first free index), its old leaf is empty, its new leaf holds the
//!   record's key (canonical 64-bit coefficients), balance and nonce. Bytes: `index`,
//!   `balance`, `nonce`, `pubkey`.
//! - The root after the last record is `new_root`. Every account not listed is unchanged (the
//!   updates share siblings with the running tree), so applying the diff to the old state gives
//!   exactly the new one; balances and nonces are below `2^63` by their range checks.
//!
//! Not checked: that a new key is not already registered (`DUPLICATE_KEY`, as in the payment
//! circuit, SPEC 13.6).
//!
//! Cost (`tests::rows_per_record`): one SHA-256 compression per record slot plus the byte
//! placement of [`ByteStream`], two Merkle paths (64 Poseidon rows) and two leaf hashes.
//!
//! [`ByteStream`]: crate::gadgets::sha256::stream::ByteStream

use plonky2::field::types::{Field, PrimeField64};
use serde::{Deserialize, Serialize};
use state::hash::Digest;

use crate::gadgets::sha256::stream::{StreamState, STREAM_STATE_LEN};
use crate::F;

/// Number of public inputs.
pub const DIFF_PUBLIC_INPUTS: usize = 73;

/// Version of the diff circuit's definition (part of its cache key): bump it when its
/// constraints change.
pub const DIFF_VERSION: &str = "diff-v3";

/// Where each value is in a diff proof's public inputs.
pub mod at {
    pub const BATCH_OLD_ROOT: usize = 0;
    pub const COUNT_BEFORE: usize = 4;
    pub const ROOT_IN: usize = 5;
    pub const ROOT_OUT: usize = 9;
    pub const STREAM_IN: usize = 13;
    pub const STREAM_OUT: usize = 39;
    pub const RECORDS_IN: usize = 65;
    pub const RECORDS_OUT: usize = 66;
    pub const LOWER_IN: usize = 67;
    pub const LOWER_OUT: usize = 68;
    pub const NEW_IN: usize = 69;
    pub const NEW_OUT: usize = 70;
    pub const STARTED_IN: usize = 71;
    pub const STARTED_OUT: usize = 72;
}

/// How diff proofs of consecutive chunks chain (SPEC 13.12).
pub fn diff_layout() -> crate::circuits::chain::ChainLayout {
    use crate::circuits::chain::{ChainLayout, Link};
    ChainLayout {
        len: DIFF_PUBLIC_INPUTS,
        links: vec![
            Link::new(at::ROOT_IN, at::ROOT_OUT, 4),
            Link::new(at::STREAM_IN, at::STREAM_OUT, STREAM_STATE_LEN),
            Link::new(at::RECORDS_IN, at::RECORDS_OUT, 1),
            Link::new(at::LOWER_IN, at::LOWER_OUT, 1),
            Link::new(at::NEW_IN, at::NEW_OUT, 1),
            Link::new(at::STARTED_IN, at::STARTED_OUT, 1),
        ],
        shared: vec![std::ops::Range {
            start: at::BATCH_OLD_ROOT,
            end: at::ROOT_IN,
        }],
        derived: 0..0,
        empty_right: None,
    }
}

/// The 13 header bytes of an encoded diff (SPEC 10.4): version 1, `count_before` as a
/// little-endian u64, the record count as a little-endian u32.
pub fn diff_header(count_before: u32, records: u32) -> Vec<u8> {
    diff_header_of(1, count_before, records)
}

/// The 13 header bytes of an encoded diff of `version` (1 or 4: the same shape).
pub fn diff_header_of(version: u8, count_before: u32, records: u32) -> Vec<u8> {
    let mut h = vec![version];
    h.extend_from_slice(&u64::from(count_before).to_le_bytes());
    h.extend_from_slice(&records.to_le_bytes());
    h
}

/// What a diff proof states: one chunk of a batch's records, with every running value before
/// (`_in`) and after (`_out`) it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStatement {
    /// The state root before the batch (the one `count_before` is checked against).
    pub batch_old_root: Digest,
    pub count_before: u32,
    pub root_in: Digest,
    pub root_out: Digest,
    /// The SHA-256 stream of the encoded diff before and after the chunk's records.
    pub stream_in: StreamState,
    pub stream_out: StreamState,
    pub records_in: u64,
    pub records_out: u64,
    /// The least index the next record of an existing account may have.
    pub lower_in: u64,
    pub lower_out: u64,
    /// New accounts so far.
    pub new_in: u64,
    pub new_out: u64,
    /// Whether a new account's record was written (existing accounts come first).
    pub started_in: bool,
    pub started_out: bool,
}

impl DiffStatement {
    pub fn to_fields(&self) -> Vec<F> {
        let mut v = self.batch_old_root.elements().to_vec();
        v.push(F::from_canonical_u32(self.count_before));
        v.extend_from_slice(&self.root_in.elements());
        v.extend_from_slice(&self.root_out.elements());
        v.extend(self.stream_in.to_fields());
        v.extend(self.stream_out.to_fields());
        for x in [
            self.records_in,
            self.records_out,
            self.lower_in,
            self.lower_out,
            self.new_in,
            self.new_out,
        ] {
            v.push(F::from_canonical_u64(x));
        }
        v.push(F::from_bool(self.started_in));
        v.push(F::from_bool(self.started_out));
        v
    }

    /// The inverse of [`DiffStatement::to_fields`] (`None` for a value no chunk states).
    pub fn from_fields(v: &[F]) -> Option<DiffStatement> {
        if v.len() != DIFF_PUBLIC_INPUTS {
            return None;
        }
        let d = |o: usize| Digest([v[o], v[o + 1], v[o + 2], v[o + 3]]);
        let u = |o: usize| v[o].to_canonical_u64();
        let bit = |o: usize| crate::circuits::public::bool_of_field(v[o]);
        Some(DiffStatement {
            batch_old_root: d(at::BATCH_OLD_ROOT),
            count_before: u32::try_from(u(at::COUNT_BEFORE)).ok()?,
            root_in: d(at::ROOT_IN),
            root_out: d(at::ROOT_OUT),
            stream_in: StreamState::from_fields(&v[at::STREAM_IN..at::STREAM_OUT])?,
            stream_out: StreamState::from_fields(&v[at::STREAM_OUT..at::RECORDS_IN])?,
            records_in: u(at::RECORDS_IN),
            records_out: u(at::RECORDS_OUT),
            lower_in: u(at::LOWER_IN),
            lower_out: u(at::LOWER_OUT),
            new_in: u(at::NEW_IN),
            new_out: u(at::NEW_OUT),
            started_in: bit(at::STARTED_IN)?,
            started_out: bit(at::STARTED_OUT)?,
        })
    }

    /// The SHA-256 of the bytes streamed so far (for a whole batch: `diff_hash`).
    pub fn diff_hash(&self) -> [u8; 32] {
        self.stream_out.finish()
    }

    /// Whether this states a whole batch's diff: it starts from the batch's old root with only
    /// the header streamed (for the final record count) and nothing counted.
    pub fn whole_batch(&self) -> bool {
        let mut header = StreamState::default();
        let Ok(n) = u32::try_from(self.records_out) else {
            return false;
        };
        header.absorb(&diff_header(self.count_before, n));
        self.root_in == self.batch_old_root
            && self.stream_in == header
            && self.records_in == 0
            && self.lower_in == 0
            && self.new_in == 0
            && !self.started_in
    }
}

mod circuit;
mod common;
mod witness;

pub use circuit::DiffCircuit;
pub(crate) use common::{
    account_leaf, batch_start, gated_update, in_order, key_of, le_bytes, leaf_of, record_bytes,
    record_prefix, DiffEnds, Key, StartTargets,
};
pub use common::{ChunkStart, CountWitness};
pub use witness::{diff_chunks, diff_witness, DiffWitness, NewSlot, OldSlot};

#[cfg(test)]
mod tests;
