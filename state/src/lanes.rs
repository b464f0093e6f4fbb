//! Nonce lanes: eight independent nonce sequences per account (SPEC 20.1).
//!
//! An account's agents, or one agent's workers, must be able to send without agreeing on a
//! nonce. A nonce's top three bits (bits 60 to 62 of a value below 2^63) name its **lane**, the
//! other sixty its **sequence number** in that lane:
//!
//! ```text
//! nonce = lane x 2^60 + seq          lane in 0..8, seq in 0 .. 2^60
//! ```
//!
//! Each lane is strictly +1 on its own: a transaction must carry its lane's next nonce. Lane 0
//! is the nonce of version 1 (every existing wallet keeps working unchanged), kept in the leaf's
//! `nonce` element; the sequence numbers of lanes 1 to 7 are committed in the leaf's `ext` (via
//! the profile, [`crate::ext`]) as
//!
//! ```text
//! lanes = ZERO                                   if s_1 = ... = s_7 = 0
//! lanes = hash_no_pad(s_1, ..., s_7, TAG_LANES)  otherwise (8 elements, one permutation)
//! ```
//!
//! # Why the lane lives in the nonce
//!
//! No wire encoding, message hash or pubdata op changes: a lane is a range of nonce values, so
//! every signed kind (and every decoder) gains lanes at once, and a payment that names its lane
//! cannot be replayed in another one (the lane is part of the signed nonce). A separate lane
//! field would have changed eleven encodings.
//!
//! # Costs
//!
//! Natively: one extra array read for a lane other than 0. In-circuit (planned): a lane-0
//! payment is unchanged; any other lane opens `ext` and `lanes` (three permutations before, three
//! after) and selects one of seven elements with one random-access gate.

use plonky2::field::types::Field;
use serde::{Deserialize, Serialize};

use crate::account::Nonce;
use crate::hash::{hash_no_pad, Digest, F};

/// Lanes per account.
pub const LANES: usize = 8;

/// Bits of a nonce below its lane: the sequence number.
pub const SEQ_BITS: u32 = 60;

/// The largest sequence number a lane can *carry*; a lane whose next sequence number is this
/// one can sign nothing more (`NONCE_EXHAUSTED`), so no lane ever runs into the next.
pub const MAX_SEQ: u64 = (1 << SEQ_BITS) - 1;

/// Domain element of the lanes digest: the ASCII bytes `"lanes"` as a big-endian u64.
pub const TAG_LANES: u64 = 0x0000_006c_616e_6573;

/// One of the eight lanes of an account's nonces.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct Lane(u8);

impl Lane {
    /// Lane 0: the nonce of version 1, kept in the leaf's `nonce` element.
    pub const ZERO: Lane = Lane(0);

    /// `Some` for `0..8`.
    pub const fn new(v: u8) -> Option<Lane> {
        if (v as usize) < LANES {
            Some(Lane(v))
        } else {
            None
        }
    }

    pub const fn get(self) -> u8 {
        self.0
    }

    /// Every lane, in order.
    pub fn all() -> impl Iterator<Item = Lane> {
        (0..LANES as u8).map(Lane)
    }
}

impl TryFrom<u8> for Lane {
    type Error = u8;
    fn try_from(v: u8) -> Result<Lane, u8> {
        Lane::new(v).ok_or(v)
    }
}

impl From<Lane> for u8 {
    fn from(l: Lane) -> u8 {
        l.0
    }
}

impl Nonce {
    /// The lane this nonce belongs to (its bits 60 to 62).
    #[inline]
    pub fn lane(self) -> Lane {
        // A Nonce is below 2^63, so the shift leaves at most three bits.
        Lane((self.get() >> SEQ_BITS) as u8)
    }

    /// The sequence number within its lane (its low sixty bits).
    #[inline]
    pub fn seq(self) -> u64 {
        self.get() & MAX_SEQ
    }

    /// The nonce with sequence number `seq` in `lane`; `None` if `seq > MAX_SEQ`.
    pub fn in_lane(lane: Lane, seq: u64) -> Option<Nonce> {
        if seq > MAX_SEQ {
            return None;
        }
        Nonce::new((u64::from(lane.0) << SEQ_BITS) | seq)
    }

    /// The next nonce of the same lane, or `None` once the lane is exhausted (its sequence
    /// number is [`MAX_SEQ`]).
    #[inline]
    pub fn next_in_lane(self) -> Option<Nonce> {
        if self.seq() >= MAX_SEQ {
            return None;
        }
        Nonce::new(self.get() + 1)
    }
}

/// The next sequence numbers of lanes 1 to 7 of one account (lane 0 is the account's `nonce`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct LaneNonces {
    seqs: [u64; LANES - 1],
}

impl LaneNonces {
    /// Whether every lane 1 to 7 is unused (its digest is then `ZERO`).
    pub fn is_unused(&self) -> bool {
        self.seqs.iter().all(|&s| s == 0)
    }

    /// The next nonce of `lane`, given the account's lane-0 nonce.
    pub fn next(&self, lane: Lane, lane0: Nonce) -> Nonce {
        match lane.0 {
            0 => lane0,
            l => {
                let seq = self.seqs[usize::from(l) - 1];
                // Sequence numbers only ever come from next_in_lane, so they stay <= MAX_SEQ.
                Nonce::in_lane(lane, seq).unwrap_or(Nonce::MAX)
            }
        }
    }

    /// Records `next` as the next nonce of its lane (not lane 0, which lives in the leaf).
    pub fn set(&mut self, next: Nonce) {
        if let Some(i) = usize::from(next.lane().0).checked_sub(1) {
            self.seqs[i] = next.seq();
        }
    }

    /// The next sequence numbers of lanes 1 to 7.
    pub fn seqs(&self) -> [u64; LANES - 1] {
        self.seqs
    }

    /// Lanes from their next sequence numbers; `None` if one is above [`MAX_SEQ`].
    pub fn from_seqs(seqs: [u64; LANES - 1]) -> Option<LaneNonces> {
        seqs.iter()
            .all(|&s| s <= MAX_SEQ)
            .then_some(LaneNonces { seqs })
    }

    /// The lanes digest (module docs).
    pub fn digest(&self) -> Digest {
        if self.is_unused() {
            return Digest::ZERO;
        }
        let mut e = [F::ZERO; LANES];
        for (x, s) in e.iter_mut().zip(self.seqs) {
            *x = F::from_canonical_u64(s);
        }
        e[LANES - 1] = F::from_canonical_u64(TAG_LANES);
        hash_no_pad(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_and_sequence_split_the_nonce() {
        let n = Nonce::new(3 << 60 | 41).unwrap();
        assert_eq!((n.lane(), n.seq()), (Lane::new(3).unwrap(), 41));
        assert_eq!(Nonce::in_lane(Lane::new(3).unwrap(), 41), Some(n));
        assert_eq!(
            Nonce::MAX.lane(),
            Lane::new(7).unwrap(),
            "2^63 - 1 is lane 7"
        );
        assert_eq!(
            Nonce::new(5).unwrap().lane(),
            Lane::ZERO,
            "v1 nonces are lane 0"
        );
        assert_eq!(Nonce::in_lane(Lane::ZERO, MAX_SEQ + 1), None);
        assert_eq!(Lane::new(8), None);
    }

    #[test]
    fn a_lane_never_runs_into_the_next() {
        let last = Nonce::in_lane(Lane::new(2).unwrap(), MAX_SEQ).unwrap();
        assert_eq!(last.next_in_lane(), None);
        let before = Nonce::in_lane(Lane::new(2).unwrap(), MAX_SEQ - 1).unwrap();
        assert_eq!(before.next_in_lane(), Some(last));
        assert_eq!(Nonce::MAX.next_in_lane(), None);
    }

    #[test]
    fn the_digest_is_zero_until_a_lane_is_used_and_binds_each_lane() {
        let mut l = LaneNonces::default();
        assert_eq!(l.digest(), Digest::ZERO);
        let lane0 = Nonce::new(9).unwrap();
        assert_eq!(l.next(Lane::ZERO, lane0), lane0);
        let four = Lane::new(4).unwrap();
        assert_eq!(l.next(four, lane0), Nonce::in_lane(four, 0).unwrap());
        l.set(Nonce::in_lane(four, 1).unwrap());
        let d4 = l.digest();
        assert_ne!(d4, Digest::ZERO);
        let mut other = LaneNonces::default();
        other.set(Nonce::in_lane(Lane::new(5).unwrap(), 1).unwrap());
        assert_ne!(
            other.digest(),
            d4,
            "the same count in another lane is another digest"
        );
        l.set(Nonce::new(10).unwrap());
        assert_eq!(l.digest(), d4, "lane 0 is not in the lanes digest");
    }
}
