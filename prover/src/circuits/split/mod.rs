//! The split-credit chain (SPEC 19.5): the per-payee part of split payments, proven at a fixed
//! cost per payee, for any number of splits of any size, as a chain of chunk proofs.
//!
//! A split is one signed transaction whose cost grows with its payees; everything else about
//! it (the signature, the sender's debit and nonce, the fee) has the fixed shape of a transfer
//! and belongs to the leaf. This chain proves the part that grows: for each split, starting
//! from the root the leaf reached after the debit, it credits each payee in order, and it folds
//! the split's [`SplitRecord`] `(root_before, root_after, from, n, sum, d)` into an accumulator
//! (`d` the parts' chained digest, [`state::split::parts_digest`], which the split's message
//! hash carries). The leaf folds the same records into the range statement's `splits`
//! accumulator (SPEC 13.1) and jumps from `root_before` to `root_after`; the settlement circuit
//! requires both accumulators equal. (The leaf's split slot and that check are not built yet:
//! no batch carries a split.)
//!
//! **Lanes.** A chunk is `lanes` lanes of `m` payee slots ([`LANE_PAYEES`] by default). A split
//! starts at the first slot of a lane (`start`: the lane takes `root_before` and `from` from its
//! witness) and runs through whole lanes; its last lane may end in padding and ends it (`end`:
//! the record is folded). A lane with neither continues the open split, or idles if none is.
//! A split may cross chunk boundaries: the split in progress is the chunk's **carry**
//! ([`OpenSplit`], 18 elements, all zero when none), linked by the chained merges
//! ([`crate::circuits::chain`]) like the other trees' running values. So a 2-payee split takes
//! one lane and a 1,024-payee split 64 of them, in chunks of one shape.
//!
//! **Slots.** A slot takes the payee's index (its 32 bits are the Merkle path's), its amount,
//! its account (the 12 leaf elements) and its 32 siblings. A live slot credits its payee; a
//! padding slot credits nothing and writes its leaf back. Every write is checked against the
//! running root; a lane that is not in an open split (it starts one, or idles) takes that root
//! from its witness, so an idle lane's writes (no credit, no record) are checked against a root
//! of its choice.
//!
//! **Rules** (each broken one is named by [`SplitChainCircuit::refused_by`]):
//!
//! | rule | constraint |
//! |---|---|
//! | `START_WHILE_OPEN` | a lane starts a split only when none is open |
//! | `CREDIT_OUTSIDE_SPLIT` | a live slot is in a lane of an open or starting split |
//! | `LIVE_PREFIX` | in a lane, a live slot follows a live slot |
//! | `LANE_NOT_FULL` | a split that goes on past a lane has its lane's last slot live (so its live slots are one prefix: no payee hides after padding) |
//! | `PADDING` | a padding slot credits nothing |
//! | `ZERO_PART` | a live slot's amount is not zero (19.1 rule 5) |
//! | `PAYEES_NOT_SORTED` | a live slot's payee index is above the split's previous payee (19.1 rule 3: none twice) |
//! | `SELF_PAYEE` | no live payee is `from` (19.1 rule 4) |
//! | `BALANCE_OVERFLOW` | each payee's new balance stays at most `2^63 - 1` |
//! | `PATH` | in a split, the slot's leaf, as witnessed, is under the running root (so a payee exists: the empty leaf is `ZERO`, never a leaf hash) |
//! | `END_WITHOUT_SPLIT` | a lane ends a split only while one is open or starting |
//! | `NO_PAYEES` | an ended split has at least one payee (19.1 rule 1) |
//! | `TOO_MANY_PAYEES` | an ended split has at most 1,024 payees (19.1 rule 2) |
//! | `SPLIT_OVERFLOW` | an ended split's sum is at most `2^63 - 1` (19.1 rule 6; checked once per lane, on the limbs' sums) |
//!
//! The accumulator and the carry out are computed, not claimed: a proof states what its lanes
//! did. What the chain leaves to the circuit above: the first chunk's `acc_in` must be
//! [`Digest::ZERO`] and its `carry_in` closed, the last chunk's `carry_out` closed, and the
//! accumulator equal to the leaves'.
//!
//! **Cost** (`rows_per_payee` test, docs/BENCHMARKS.md "Split credits in-circuit"): per payee
//! the two Merkle paths (64 Poseidon rows), the old and new leaf hashes (4), the digest step
//! (1), and about ten rows of range checks (index, amount, balance), the balance's addition
//! and the order comparison; per lane the start's selects, the end's checks (count and sum)
//! and the record's three permutations.

mod circuit;
mod witness;

pub use circuit::{SplitChainCircuit, SplitRefusal, SplitRule, BPS_BITS};
pub use witness::{lanes_for, SplitChainBuilder, SplitChunkWitness, SplitLane, Value};

use plonky2::field::types::{Field, PrimeField64};
use serde::{Deserialize, Serialize};
use state::account::AccountIndex;
use state::hash::{hash_no_pad, Digest};

use crate::circuits::chain::{ChainLayout, Link};
use crate::witness::LeafAccess;
use crate::F;

/// Payee slots per lane. A split pays for whole lanes (a 2-payee split costs a lane), and every
/// lane pays once for the split's start and end (about ten rows): 16 keeps both small.
pub const LANE_PAYEES: usize = 16;

/// Version of the chunk circuit (part of its cache key): bump it when its constraints change.
pub const SPLIT_CHAIN_VERSION: &str = "split-chain-v2";

/// Elements of a carry: `open, root_before0..3, root0..3, from, count, sum_lo, sum_hi,
/// d0..3, prev, register, distribute, total_lo, total_hi`.
pub const CARRY_LEN: usize = 22;

/// Public inputs of a chunk: `acc_in (4), carry_in (22), acc_out (4), carry_out (22)`.
pub const SPLIT_PUBLIC_INPUTS: usize = 2 * (4 + CARRY_LEN);

/// The chained layout of the split-credit tree: the accumulator and the carry both run through.
pub fn split_layout() -> ChainLayout {
    ChainLayout {
        len: SPLIT_PUBLIC_INPUTS,
        links: vec![
            Link::new(0, 4 + CARRY_LEN, 4),
            Link::new(4, 8 + CARRY_LEN, CARRY_LEN),
        ],
        shared: vec![],
        derived: 0..0,
        empty_right: None,
    }
}

/// What a run of payee slots does (SPEC 19.5, "Kinds"): a split payment's credits, a share
/// registration's checks, or a distribution's payouts by registered shares. Only a chunk
/// circuit built with shares ([`SplitChainCircuit::build_with_shares`]) proves the last two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitKind {
    /// Credits the amounts; the digest is the parts digest (19.4).
    #[default]
    Pay,
    /// Credits nothing: the slots' values are basis points (positive, 10,000 in all), each
    /// payee's path proves it exists; the digest is the shares chain (19.2).
    Register,
    /// Credits `floor(total x bps / 10000)` to every payee but the first, which gets the rest
    /// of `total`; the digest is the shares chain of the basis points.
    Distribute,
}

impl SplitKind {
    /// The kind's number in a record's `n` element (`n + 2^16 kind`).
    pub const fn number(self) -> u64 {
        match self {
            SplitKind::Pay => 0,
            SplitKind::Register => 1,
            SplitKind::Distribute => 2,
        }
    }
}

/// What one split asks of the chain: its credits take the tree from `root_before` to
/// `root_after`, paying `n` payees `sum` in all, with parts digest `parts_digest`. A
/// registration's record has `root_after = root_before`, `sum` 10,000 (the points) and the
/// shares chain as its digest; a distribution's `sum` is the balance it pays out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitRecord {
    pub root_before: Digest,
    pub root_after: Digest,
    pub from: AccountIndex,
    pub n: u32,
    pub sum: u64,
    pub parts_digest: Digest,
    #[serde(default)]
    pub kind: SplitKind,
}

impl SplitRecord {
    /// `root_before0..3, root_after0..3, from, n + 2^16 kind, sum, d0..3` (`n <= 1024`, so the
    /// element names both; a split payment's is its `n`, as the leaf's split slot folds it).
    pub fn elements(&self) -> [F; 15] {
        let mut v = [F::ZERO; 15];
        v[..4].copy_from_slice(&self.root_before.elements());
        v[4..8].copy_from_slice(&self.root_after.elements());
        v[8] = F::from_canonical_u32(self.from.0);
        v[9] = F::from_canonical_u64(u64::from(self.n) + (self.kind.number() << 16));
        v[10] = F::from_noncanonical_u64(self.sum);
        v[11..].copy_from_slice(&self.parts_digest.elements());
        v
    }

    /// The accumulator after this record: `hash_no_pad(acc0..3 ‖ record elements)` (19
    /// elements, three permutations). A batch starts from [`Digest::ZERO`].
    pub fn absorb(&self, acc: Digest) -> Digest {
        let mut e = acc.elements().to_vec();
        e.extend(self.elements());
        hash_no_pad(&e)
    }
}

/// A split in progress at a lane or chunk boundary: where it started, how far it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSplit {
    pub root_before: Digest,
    /// The root after the credits so far.
    pub root: Digest,
    pub from: AccountIndex,
    /// Payees credited so far.
    pub count: u32,
    /// The parts so far, summed per limb: low 32 bits and high 31 bits of each amount.
    pub sum_lo: u64,
    pub sum_hi: u64,
    /// The parts digest so far.
    pub digest: Digest,
    /// The last payee credited (the next one must be above it): the payee of the lane's last
    /// slot, which is live while the split goes on.
    pub prev: AccountIndex,
    #[serde(default)]
    pub kind: SplitKind,
    /// A distribution's balance to pay out (0 for the other kinds).
    #[serde(default)]
    pub total: u64,
}

impl OpenSplit {
    /// The elements of `carry` in the circuit's order (all zero when no split is open).
    pub fn carry_elements(carry: Option<&OpenSplit>) -> [F; CARRY_LEN] {
        let mut v = [F::ZERO; CARRY_LEN];
        let Some(c) = carry else {
            return v;
        };
        v[0] = F::ONE;
        v[1..5].copy_from_slice(&c.root_before.elements());
        v[5..9].copy_from_slice(&c.root.elements());
        v[9] = F::from_canonical_u32(c.from.0);
        v[10] = F::from_canonical_u32(c.count);
        v[11] = F::from_canonical_u64(c.sum_lo);
        v[12] = F::from_canonical_u64(c.sum_hi);
        v[13..17].copy_from_slice(&c.digest.elements());
        v[17] = F::from_canonical_u32(c.prev.0);
        v[18] = F::from_bool(c.kind == SplitKind::Register);
        v[19] = F::from_bool(c.kind == SplitKind::Distribute);
        v[20] = F::from_canonical_u64(c.total & 0xffff_ffff);
        v[21] = F::from_canonical_u64(c.total >> 32);
        v
    }

    /// The inverse of [`Self::carry_elements`]; `None` if the elements are no carry's.
    pub fn from_carry_elements(v: &[F]) -> Option<Option<OpenSplit>> {
        if v.len() != CARRY_LEN {
            return None;
        }
        let u32_at = |i: usize| u32::try_from(v[i].to_canonical_u64()).ok();
        let d = |i: usize| Digest([v[i], v[i + 1], v[i + 2], v[i + 3]]);
        let kind = match (v[18].to_canonical_u64(), v[19].to_canonical_u64()) {
            (0, 0) => SplitKind::Pay,
            (1, 0) => SplitKind::Register,
            (0, 1) => SplitKind::Distribute,
            _ => return None,
        };
        let (lo, hi) = (v[20].to_canonical_u64(), v[21].to_canonical_u64());
        if lo >> 32 != 0 || hi >> 31 != 0 {
            return None;
        }
        match v[0].to_canonical_u64() {
            0 => v.iter().all(|x| *x == F::ZERO).then_some(None),
            1 => Some(Some(OpenSplit {
                root_before: d(1),
                root: d(5),
                from: AccountIndex(u32_at(9)?),
                count: u32_at(10)?,
                sum_lo: v[11].to_canonical_u64(),
                sum_hi: v[12].to_canonical_u64(),
                digest: d(13),
                prev: AccountIndex(u32_at(17)?),
                kind,
                total: lo | (hi << 32),
            })),
            _ => None,
        }
    }
}

/// What a chunk proof states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitStatement {
    pub acc_in: Digest,
    pub carry_in: Option<OpenSplit>,
    pub acc_out: Digest,
    pub carry_out: Option<OpenSplit>,
}

impl SplitStatement {
    /// The proof's public inputs, in the order of [`split_layout`].
    pub fn public_inputs(&self) -> Vec<F> {
        let mut v = self.acc_in.elements().to_vec();
        v.extend(OpenSplit::carry_elements(self.carry_in.as_ref()));
        v.extend(self.acc_out.elements());
        v.extend(OpenSplit::carry_elements(self.carry_out.as_ref()));
        v
    }

    /// The statement of a proof's public inputs; `None` if they are no chunk's.
    pub fn from_public_inputs(v: &[F]) -> Option<SplitStatement> {
        if v.len() != SPLIT_PUBLIC_INPUTS {
            return None;
        }
        let d = |i: usize| Digest([v[i], v[i + 1], v[i + 2], v[i + 3]]);
        let out = 4 + CARRY_LEN;
        Some(SplitStatement {
            acc_in: d(0),
            carry_in: OpenSplit::from_carry_elements(&v[4..out])?,
            acc_out: d(out),
            carry_out: OpenSplit::from_carry_elements(&v[out + 4..])?,
        })
    }
}

/// One payee slot's witness: the credit and the payee's leaf before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayeeSlot {
    pub live: bool,
    /// The credit; in a registration, the payee's basis points (nothing is credited).
    pub amount: u64,
    /// In a distribution, the payee's basis points (0 otherwise).
    #[serde(default)]
    pub bps: u16,
    /// The payee's index and account (never empty for an honest witness) and siblings.
    pub access: LeafAccess,
}

impl PayeeSlot {
    /// A slot of an idle lane: nothing credited, its write checked against
    /// [`PayeeSlot::idle_root`].
    pub fn idle() -> PayeeSlot {
        PayeeSlot {
            live: false,
            amount: 0,
            bps: 0,
            access: LeafAccess {
                index: 0,
                account: None,
                siblings: vec![Digest::ZERO; state::smt::DEPTH],
            },
        }
    }

    /// The root an idle slot's write is under (and leaves): index 0 holding the leaf of
    /// all-zero fields, every sibling `ZERO`.
    pub fn idle_root() -> Digest {
        let fields = crate::witness::AccountFields {
            pubkey: [0; 5],
            balance: 0,
            nonce: 0,
            ext: Digest::ZERO,
        };
        (0..state::smt::DEPTH).fold(fields.leaf(), |cur, _| {
            state::hash::two_to_one(cur, Digest::ZERO)
        })
    }
}

#[cfg(test)]
mod tests;
