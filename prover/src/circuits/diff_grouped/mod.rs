//! The grouped diff circuit: a version 4 state diff (SPEC 10.4, "Version 4") leads from the old
//! state root to the new one, stream and agent records included, and hashes to `diff_hash`.
//! It proves account records with their stream records, passport records and lanes records
//! and, in the full shape ([`GroupedParts::Shares`]), shares records (SPEC 19.6 "Diff") and a
//! passport record's policy body (in the batch that set it; `policy.rs`). The settlement
//! circuit of a version 4 diff verifies its tree (SPEC 13.11, "Diff kinds").
//!
//! A chunk has `cap` slots; a slot is one account's group or the continuation of the previous
//! slot's, and holds up to `subs` sub-slots, each a stream record or (full shape) a run of up
//! to [`RUN_PAYEES`] payees of an allow-list or of up to [`RUN_ITEMS`] six-byte items of a
//! shares record. What a used slot proves:
//!
//! - **Which account.** A group of an existing account: no new account's group before it and
//!   `lower <= index < count_before` (then `lower = index + 1`); of a new account: index
//!   `count_before + new`. A continuation (exactly when the previous slot's last stream record
//!   announced another, or its allow-list or shares record has items left): the previous
//!   slot's index, balance and nonce unchanged, no record bytes.
//! - **Its `ext` before.** Witnessed stream root and profile whose `ext` (SPEC 18.3, `ZERO`
//!   when both are empty) is in the old leaf, which is under the running root; a new account's
//!   old leaf is empty and its book and profile start empty.
//! - **Its stream records**, in order, each in the running book: the old slot leaf is under
//!   the book's root, the new one (the stream's leaf, or `ZERO` for an emptied slot) replaces
//!   it. Slots strictly increase within a group (each at least `next_slot`, the previous one's
//!   plus one, 0 at a group's start). A stream record is pending from the group's first slot
//!   iff the `parts` byte says streams follow, and after a record iff its tag says "more"; a
//!   sub-slot reads the pending record unless it reads a run (runs come first).
//! - **Its profile parts** (a group's first slot only): the old parts (shares, passport, lanes
//!   digests) are witnessed, their profile is the one in the old `ext`; a passport record
//!   (`owner`, `revoked`, `window_id`, `spent`, the policy digest) replaces the passport part
//!   by `passport_digest` of its fields, a lanes record (seven sequence numbers below `2^60`)
//!   the lanes part by its digest (`ZERO` when all are 0).
//! - **Its policy body** (full shape, a chunk's first slot only: `policy.rs`): the fields and
//!   card hash to the record's policy digest with a stated allow root, which the list's runs
//!   rebuild, payees strictly increasing.
//! - **Its shares record** (shape with shares): the group's first slot declares `n >= 1` and
//!   a digest `d`, which replaces the shares part (the leaf is written once, in that slot); the
//!   record's items are the header `(index, n)` then the `n` entries `(payee, bps)`, six bytes
//!   each (32- and 16-bit), read in runs before the group's stream records, as many sub-slots
//!   and slots as they take; each entry folds `s = H(s ‖ payee ‖ bps)` (SPEC 19.2) and the
//!   run that reads the last one requires `H(TAG_SHARES, n, s) = d`. The rules of 19.2 are
//!   not repeated: the registration's record in the split-credit chain checked the list.
//! - **Its leaf after**: the record's balance and nonce (below `2^63`), the same key, the
//!   profile of the parts after, and the `ext` of the book after.
//! - **The bytes**: the record (21 bytes, or 61 with the key of a new account) with its
//!   `parts` byte, the lanes (60) and passport (58 bytes) records when present, a policy's
//!   body up to its payees, then the payee runs' and the shares runs' items, then per stream
//!   record `slot ‖ tag [‖ fields]`, appended to the SHA-256 stream in the order of
//!   `StateDiff::encode_grouped`.
//!
//! Public inputs: those of the version 1 diff circuit ([`DiffStatement`], 73) and
//! `more_in/out`, `next_slot_in/out` (77), chained the same way; in the full shape, the
//! [`PolicyCarry`] and the [`SharesCarry`] before and after the chunk (167).
//!
//! Cost: `tests::rows_per_slot` (an account part and `subs` stream parts).

use plonky2::field::types::{Field, PrimeField64};
use serde::{Deserialize, Serialize};
use state::hash::Digest;
use state::smt::empty_hashes;
use state::stream::SLOT_DEPTH;

use crate::circuits::diff::{diff_header_of, DiffStatement, DIFF_PUBLIC_INPUTS};
use crate::gadgets::allow::{FRONTIER_LEVELS, RUN_PAYEES};
use crate::gadgets::sha256::stream::StreamState;
use crate::F;

/// Number of public inputs (a shape without shares runs).
pub const GROUPED_PUBLIC_INPUTS: usize = DIFF_PUBLIC_INPUTS + 4;

/// Number of elements of a [`SharesCarry`].
pub const SHARES_CARRY_LEN: usize = 10;

/// Number of elements of a [`PolicyCarry`].
pub const POLICY_CARRY_LEN: usize = 3 + 4 * (FRONTIER_LEVELS + 2);

/// Number of public inputs of the full shape: the policy and shares carries in and out
/// besides.
pub const GROUPED_SHARES_PUBLIC_INPUTS: usize =
    GROUPED_PUBLIC_INPUTS + 2 * POLICY_CARRY_LEN + 2 * SHARES_CARRY_LEN;

/// Items (the shares header, then entries; six bytes each) a sub-slot's run reads: 66 bytes,
/// the most a stream record's two appends take (64 and 7).
pub const RUN_ITEMS: usize = 11;

/// Which records a shape of the circuit has room for besides account and stream records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GroupedParts {
    /// Stream records only.
    Streams,
    /// Passport records without a policy body, and lanes records too (a batch's agents
    /// spending, its accounts using lanes: the frequent agent records).
    Agents,
    /// Everything: passport records with their policy body (its fixed fields and card in a
    /// chunk's first slot, its allow-list in runs of [`RUN_PAYEES`] payees, SPEC 13.7.1),
    /// lanes and shares records (every sub-slot can also be a run of a shares record, SPEC 19.6
    /// "Diff"); the chunk carries the list and the record in progress. The rare batches that
    /// register shares or set a policy pay for it (about 4,500 rows per chunk and 300 per
    /// sub-slot more than [`GroupedParts::Agents`]).
    Shares,
}

impl GroupedParts {
    pub fn agent_parts(self) -> bool {
        !matches!(self, GroupedParts::Streams)
    }

    pub fn shares(self) -> bool {
        matches!(self, GroupedParts::Shares)
    }

    /// Whether the shape proves a passport record's policy body (the full shape).
    pub fn policy_bodies(self) -> bool {
        self.shares()
    }

    /// The shape of a diff kind proven by this circuit (`None` for version 1).
    pub fn of(kind: rollup_storage::DiffCircuitKind) -> Option<GroupedParts> {
        use rollup_storage::DiffCircuitKind as K;
        match kind {
            K::V1 => None,
            K::V4 => Some(GroupedParts::Streams),
            K::V4Agents => Some(GroupedParts::Agents),
            K::V4Shares => Some(GroupedParts::Shares),
        }
    }

    /// The number of public inputs of the shape.
    pub fn public_inputs(self) -> usize {
        match self {
            GroupedParts::Streams | GroupedParts::Agents => GROUPED_PUBLIC_INPUTS,
            GroupedParts::Shares => GROUPED_SHARES_PUBLIC_INPUTS,
        }
    }
}

/// Version of the circuit's definition (part of a cache key).
pub const GROUPED_VERSION: &str = "diff-grouped-v4";

/// The version byte of the diffs this circuit proves.
pub const VERSION: u8 = state::diff::DIFF_VERSION_GROUPED;

/// Positions of the public inputs after the [`DiffStatement`]'s (which keep theirs,
/// `crate::circuits::diff::at`).
pub mod at {
    use crate::circuits::diff::DIFF_PUBLIC_INPUTS;
    pub const MORE_IN: usize = DIFF_PUBLIC_INPUTS;
    pub const MORE_OUT: usize = DIFF_PUBLIC_INPUTS + 1;
    pub const NEXT_SLOT_IN: usize = DIFF_PUBLIC_INPUTS + 2;
    pub const NEXT_SLOT_OUT: usize = DIFF_PUBLIC_INPUTS + 3;
    /// The [`super::PolicyCarry`] before the chunk (the full shape).
    pub const POLICY_IN: usize = DIFF_PUBLIC_INPUTS + 4;
    pub const POLICY_OUT: usize = POLICY_IN + super::POLICY_CARRY_LEN;
    /// The [`super::SharesCarry`] before the chunk (shape with shares runs).
    pub const SHARES_IN: usize = POLICY_OUT + super::POLICY_CARRY_LEN;
    pub const SHARES_OUT: usize = SHARES_IN + super::SHARES_CARRY_LEN;
}

/// How grouped diff proofs of consecutive chunks of shape `parts` chain (SPEC 13.12): the
/// version 1 diff's links, the stream record pending at the boundary (`more`, `next_slot`)
/// and, in the full shape, the allow-list and the shares record in progress.
pub fn grouped_layout(parts: GroupedParts) -> crate::circuits::chain::ChainLayout {
    use crate::circuits::chain::Link;
    let mut layout = crate::circuits::diff::diff_layout();
    layout.len = parts.public_inputs();
    layout.links.push(Link::new(at::MORE_IN, at::MORE_OUT, 1));
    layout
        .links
        .push(Link::new(at::NEXT_SLOT_IN, at::NEXT_SLOT_OUT, 1));
    if parts.policy_bodies() {
        layout
            .links
            .push(Link::new(at::POLICY_IN, at::POLICY_OUT, POLICY_CARRY_LEN));
    }
    if parts.shares() {
        layout
            .links
            .push(Link::new(at::SHARES_IN, at::SHARES_OUT, SHARES_CARRY_LEN));
    }
    layout
}

/// A group's shares record as it stands at a slot boundary (shape with shares runs): what the
/// next slot, or chunk, goes on from. Between groups (and at a batch's start) `left` is 0; the
/// other values are those the last group left (its `n` and `d`, 0 and `ZERO` without a
/// shares record), which the next group's first slot resets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharesCarry {
    /// Items of the record not read yet (the header counts as one: `n + 1` at the start).
    pub left: u16,
    /// The record's number of entries.
    pub n: u16,
    /// The entries' chain so far (SPEC 19.2, `s`).
    pub chain: Digest,
    /// The digest the group's first slot declared and wrote into the profile.
    pub digest: Digest,
}

impl SharesCarry {
    pub fn to_fields(&self) -> Vec<F> {
        let mut v = vec![
            F::from_canonical_u16(self.left),
            F::from_canonical_u16(self.n),
        ];
        v.extend(self.chain.0);
        v.extend(self.digest.0);
        v
    }

    /// The inverse of [`SharesCarry::to_fields`] (`None` for a value no chunk states).
    pub fn from_fields(v: &[F]) -> Option<SharesCarry> {
        if v.len() != SHARES_CARRY_LEN {
            return None;
        }
        let u16_at = |o: usize| u16::try_from(v[o].to_canonical_u64()).ok();
        Some(SharesCarry {
            left: u16_at(0)?,
            n: u16_at(1)?,
            chain: digest_at(v, 2),
            digest: digest_at(v, 6),
        })
    }
}

fn digest_at(v: &[F], o: usize) -> Digest {
    Digest([v[o], v[o + 1], v[o + 2], v[o + 3]])
}

/// A policy's allow-list as it stands at a slot boundary (the full shape): what the
/// next slot, or chunk, goes on reading. A passport record with its policy body (in a chunk's
/// first slot) checks the policy digest with the `allow` root it states, then its `n` payees
/// come in runs of [`RUN_PAYEES`] that rebuild that root ([`crate::gadgets::allow`]). Between
/// lists `left` is 0 and the rest is what the last list left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyCarry {
    /// Payees not read yet.
    pub left: u16,
    /// The least index the next payee may have: the last one read plus one (0 at the start),
    /// so that the list strictly increases.
    pub next_min: u64,
    /// The allow tree in progress: runs folded, the pending left node of each level above a
    /// run, and the root once 64 runs are in ([`crate::gadgets::allow::Frontier`]).
    pub runs: u8,
    pub pending: [Digest; FRONTIER_LEVELS],
    pub full: Digest,
    /// The root the policy digest was checked with, which the list must rebuild.
    pub allow: Digest,
}

impl PolicyCarry {
    /// The carry of a list of `n` payees about to be read, which must rebuild `allow`.
    pub fn start(n: u16, allow: Digest) -> PolicyCarry {
        PolicyCarry {
            left: n,
            allow,
            ..PolicyCarry::default()
        }
    }

    /// Reads one run of payees (at most [`RUN_PAYEES`], increasing from `next_min`): folds its
    /// subtree into the frontier, as the circuit does.
    pub fn read_run(&mut self, payees: &[u32]) -> anyhow::Result<()> {
        use state::hash::two_to_one;
        anyhow::ensure!(
            !payees.is_empty()
                && payees.len() <= RUN_PAYEES
                && payees.len() <= usize::from(self.left),
            "a run reads 1 to {RUN_PAYEES} of the payees left"
        );
        let mut level: Vec<Digest> = (0..RUN_PAYEES)
            .map(|i| match payees.get(i) {
                Some(&p) => state::passport::AllowList::leaf(state::account::AccountIndex(p)),
                None => Digest::ZERO,
            })
            .collect();
        while level.len() > 1 {
            level = level.chunks(2).map(|c| two_to_one(c[0], c[1])).collect();
        }
        let mut node = level[0];
        let mut carrying = true;
        for (l, pending) in self.pending.iter_mut().enumerate() {
            if !carrying {
                break;
            }
            if self.runs >> l & 1 == 1 {
                node = two_to_one(*pending, node);
            } else {
                *pending = node;
                carrying = false;
            }
        }
        if carrying {
            self.full = node;
        }
        for &p in payees {
            anyhow::ensure!(u64::from(p) >= self.next_min, "payees strictly increase");
            self.next_min = u64::from(p) + 1;
        }
        self.runs += 1;
        self.left -= payees.len() as u16;
        Ok(())
    }

    pub fn to_fields(&self) -> Vec<F> {
        let mut v = vec![
            F::from_canonical_u16(self.left),
            F::from_canonical_u64(self.next_min),
            F::from_canonical_u8(self.runs),
        ];
        for d in self.pending.iter().chain([&self.full, &self.allow]) {
            v.extend(d.0);
        }
        v
    }

    /// The inverse of [`PolicyCarry::to_fields`] (`None` for a value no chunk states).
    pub fn from_fields(v: &[F]) -> Option<PolicyCarry> {
        if v.len() != POLICY_CARRY_LEN {
            return None;
        }
        let next_min = v[1].to_canonical_u64();
        if next_min > 1 << 32 {
            return None;
        }
        Some(PolicyCarry {
            left: u16::try_from(v[0].to_canonical_u64()).ok()?,
            next_min,
            runs: u8::try_from(v[2].to_canonical_u64()).ok()?,
            pending: core::array::from_fn(|l| digest_at(v, 3 + 4 * l)),
            full: digest_at(v, 3 + 4 * FRONTIER_LEVELS),
            allow: digest_at(v, 7 + 4 * FRONTIER_LEVELS),
        })
    }
}

/// What a grouped diff proof states: [`DiffStatement`] and the running values of the records
/// that cross slots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupedStatement {
    pub base: DiffStatement,
    /// Whether the last stream record before (after) the chunk announced another.
    pub more_in: bool,
    pub more_out: bool,
    /// The least slot the group's next stream record may take before (after) the chunk: the
    /// last record's slot plus one, 0 at a group's start (slots strictly increase in a group).
    pub next_slot_in: u32,
    pub next_slot_out: u32,
    /// The allow-list in progress before and after the chunk, in the full shape.
    pub policy: Option<[PolicyCarry; 2]>,
    /// The shares record in progress before and after the chunk, in the shape with shares
    /// runs (`None` in the others, whose statements do not have it).
    pub shares: Option<[SharesCarry; 2]>,
}

impl GroupedStatement {
    pub fn to_fields(&self) -> Vec<F> {
        let mut v = self.base.to_fields();
        v.push(F::from_bool(self.more_in));
        v.push(F::from_bool(self.more_out));
        v.push(F::from_canonical_u32(self.next_slot_in));
        v.push(F::from_canonical_u32(self.next_slot_out));
        for carry in self.policy.iter().flatten() {
            v.extend(carry.to_fields());
        }
        for carry in self.shares.iter().flatten() {
            v.extend(carry.to_fields());
        }
        v
    }

    /// The inverse of [`GroupedStatement::to_fields`] (`None` for a value no chunk states).
    pub fn from_fields(v: &[F]) -> Option<GroupedStatement> {
        let (policy, shares) = match v.len() {
            GROUPED_PUBLIC_INPUTS => (None, None),
            GROUPED_SHARES_PUBLIC_INPUTS => (
                Some([
                    PolicyCarry::from_fields(&v[at::POLICY_IN..at::POLICY_OUT])?,
                    PolicyCarry::from_fields(&v[at::POLICY_OUT..at::SHARES_IN])?,
                ]),
                Some([
                    SharesCarry::from_fields(&v[at::SHARES_IN..at::SHARES_OUT])?,
                    SharesCarry::from_fields(&v[at::SHARES_OUT..])?,
                ]),
            ),
            _ => return None,
        };
        let bit = |o: usize| crate::circuits::public::bool_of_field(v[o]);
        let slot = |o: usize| {
            u32::try_from(v[o].to_canonical_u64())
                .ok()
                .filter(|&s| s <= 1 << SLOT_DEPTH)
        };
        Some(GroupedStatement {
            base: DiffStatement::from_fields(&v[..DIFF_PUBLIC_INPUTS])?,
            more_in: bit(at::MORE_IN)?,
            more_out: bit(at::MORE_OUT)?,
            next_slot_in: slot(at::NEXT_SLOT_IN)?,
            next_slot_out: slot(at::NEXT_SLOT_OUT)?,
            policy,
            shares,
        })
    }

    /// Whether this states a whole batch's version 4 diff: from the old root, the stream
    /// holding exactly the header, nothing counted, no stream record pending at either end,
    /// and no allow-list or shares record begun before it or left unfinished.
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
            && self
                .policy
                .is_none_or(|[i, o]| i == PolicyCarry::default() && o.left == 0)
            && self
                .shares
                .is_none_or(|[i, o]| i == SharesCarry::default() && o.left == 0)
    }
}

/// The empty book's root, natively (for witnesses built by hand).
pub fn empty_book_root() -> Digest {
    empty_hashes()[SLOT_DEPTH]
}

mod circuit;
mod policy;
mod shares;
mod witness;

pub use circuit::GroupedDiffCircuit;
pub use witness::{
    grouped_chunks, GroupSlot, GroupedWitness, PassportPart, PolicyBody, SharesPart, StreamSub,
};

#[cfg(test)]
mod tests;
