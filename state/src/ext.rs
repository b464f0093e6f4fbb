//! The account leaf's `ext`: one digest for every agent field (SPEC 18.3, 20.3).
//!
//! ```text
//! ext     = ZERO                                   if streams_root = E[16] and profile = ZERO
//! ext     = hash_no_pad(streams_root ‖ profile)    otherwise (8 elements)
//! profile = ZERO                                   if shares = passport = lanes = ZERO
//! profile = hash_no_pad(shares ‖ passport ‖ lanes) otherwise (12 elements)
//! ```
//!
//! * `streams_root`: the account's stream tree as a payer ([`crate::stream::tree`]);
//! * `shares`: its registered revenue shares ([`crate::split::Shares::digest`], SPEC 19.2);
//! * `passport`: its passport if it is an agent ([`crate::passport::Passport::digest`]);
//! * `lanes`: the sequence numbers of its nonce lanes 1 to 7 ([`crate::lanes::LaneNonces`]).
//!
//! # Why two levels
//!
//! The streams root is the part an exit on L1 opens (`ExodusVerifier.streamExt` hashes
//! `root ‖ profile` in Solidity), so it stays in the outer hash, and every other field hides
//! behind the one `profile` digest the contract takes as given. Each layer is `ZERO` when
//! empty, so an account that uses none of this keeps `ext = ZERO` and its version-1 leaf.
//!
//! # Costs
//!
//! Natively a handful of permutations per change. In-circuit, a slot that changes a passport or
//! a lane opens and recloses both levels: four permutations (`ext` is one, `profile` two, the
//! part itself one or two).

use crate::hash::{hash_no_pad, Digest, F};
use crate::smt::empty_hashes;
use crate::stream::tree::SLOT_DEPTH;

/// The parts of `profile` (module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub shares: Digest,
    pub passport: Digest,
    pub lanes: Digest,
}

impl Profile {
    /// `profile` (module docs): `ZERO` when every part is.
    pub fn digest(&self) -> Digest {
        if *self == Profile::default() {
            return Digest::ZERO;
        }
        let mut e = [F::default(); 12];
        for (chunk, d) in e
            .chunks_mut(4)
            .zip([self.shares, self.passport, self.lanes])
        {
            chunk.copy_from_slice(&d.elements());
        }
        hash_no_pad(&e)
    }
}

/// `ext` from a stream root and a profile digest (module docs).
pub fn ext_digest(streams_root: Digest, profile: Digest) -> Digest {
    if streams_root == empty_hashes()[SLOT_DEPTH] && profile == Digest::ZERO {
        return Digest::ZERO;
    }
    let s = streams_root.elements();
    let p = profile.elements();
    hash_no_pad(&[s[0], s[1], s[2], s[3], p[0], p[1], p[2], p[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_parts_keep_the_version_1_leaf() {
        assert_eq!(Profile::default().digest(), Digest::ZERO);
        assert_eq!(
            ext_digest(empty_hashes()[SLOT_DEPTH], Digest::ZERO),
            Digest::ZERO
        );
        let d = hash_no_pad(&[F::default()]);
        let parts = [
            Profile {
                shares: d,
                ..Profile::default()
            },
            Profile {
                passport: d,
                ..Profile::default()
            },
            Profile {
                lanes: d,
                ..Profile::default()
            },
        ];
        let digests: Vec<_> = parts.iter().map(Profile::digest).collect();
        assert!(digests.iter().all(|p| *p != Digest::ZERO));
        assert_ne!(digests[0], digests[1], "each part has its place");
        assert_ne!(digests[1], digests[2]);
    }
}
