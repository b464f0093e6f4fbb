//! A policy's allow-list of payees and its Merkle root (SPEC 20.2).
//!
//! The list holds up to [`MAX_ALLOWED`] = 1,024 account indices in strictly increasing order. Its
//! root is the root of a complete binary tree of depth [`ALLOW_DEPTH`] = 10 whose leaf `i` is
//!
//! ```text
//! leaf_i = (payee_i, 1, 0, 0)      for i < n      (a digest written out, not hashed)
//! leaf_i = ZERO                    for n <= i < 1024
//! node   = two_to_one(left, right)
//! ```
//!
//! and the empty list has the root `ZERO`, which a policy reads as "any payee". A leaf's second
//! element 1 tells it from padding, so no index (not even 0) can be proven by a padding leaf;
//! `ZERO` is not the root of any non-empty list (that would take a preimage of `ZERO`).
//!
//! # Why a fixed depth and a sorted list
//!
//! A fixed depth gives every membership proof the same ten hashes, one circuit shape for any
//! list (at most one Merkle path more per payment, the issue's budget), and a sorted list
//! makes the native check a binary search and "no payee twice" a comparison per entry.
//!
//! # Costs
//!
//! The root: 1,023 permutations (~1.5 ms) whatever `n`, paid once when the list is built or
//! decoded and kept with it. A path: ten sibling hashes, built from the list.

use plonky2::field::types::Field;

use super::PassportRejection;
use crate::account::AccountIndex;
use crate::hash::{two_to_one, Digest, F};

/// Depth of the allow-list tree.
pub const ALLOW_DEPTH: usize = 10;

/// The most payees one allow-list may name.
pub const MAX_ALLOWED: usize = 1 << ALLOW_DEPTH;

/// The payees an agent may pay; empty means any. Keeps its root, computed once when built
/// (1,023 hashes for a non-empty list): the policy digest, the message hash of every
/// transaction that carries the policy, the passport and the diff all need it.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<AccountIndex>", into = "Vec<AccountIndex>")]
pub struct AllowList {
    payees: Vec<AccountIndex>,
    /// `root_of(&payees)`.
    root: Digest,
}

impl Default for AllowList {
    fn default() -> Self {
        AllowList::anyone()
    }
}

impl AllowList {
    /// Checks the shape: at most 1,024 payees (`TOO_MANY_ALLOWED`), strictly increasing
    /// (`ALLOW_LIST_NOT_SORTED`, naming the first out of order).
    pub fn new(payees: Vec<AccountIndex>) -> Result<AllowList, PassportRejection> {
        if payees.len() > MAX_ALLOWED {
            return Err(PassportRejection::TooManyAllowed(payees.len()));
        }
        if let Some(w) = payees.windows(2).find(|w| w[1] <= w[0]) {
            return Err(PassportRejection::AllowListNotSorted(w[1]));
        }
        let root = if payees.is_empty() {
            Digest::ZERO
        } else {
            levels(&payees)[ALLOW_DEPTH][0]
        };
        Ok(AllowList { payees, root })
    }

    /// Any payee.
    pub fn anyone() -> AllowList {
        AllowList {
            payees: Vec::new(),
            root: Digest::ZERO,
        }
    }

    pub fn payees(&self) -> &[AccountIndex] {
        &self.payees
    }

    pub fn is_anyone(&self) -> bool {
        self.payees.is_empty()
    }

    /// Whether `payee` may be paid under this list.
    pub fn allows(&self, payee: AccountIndex) -> bool {
        self.payees.is_empty() || self.payees.binary_search(&payee).is_ok()
    }

    /// The leaf that proves `payee` (module docs).
    pub fn leaf(payee: AccountIndex) -> Digest {
        Digest([payee.to_field(), F::ONE, F::ZERO, F::ZERO])
    }

    /// The root (module docs): `ZERO` for the empty list.
    pub fn root(&self) -> Digest {
        self.root
    }

    /// The position of `payee` and its ten siblings, leaf first; `None` if it is not listed.
    pub fn path(&self, payee: AccountIndex) -> Option<(usize, [Digest; ALLOW_DEPTH])> {
        let pos = self.payees.binary_search(&payee).ok()?;
        let levels = levels(&self.payees);
        let mut siblings = [Digest::ZERO; ALLOW_DEPTH];
        for (l, s) in siblings.iter_mut().enumerate() {
            *s = levels[l][(pos >> l) ^ 1];
        }
        Some((pos, siblings))
    }
}

/// The tree's levels over `payees`, leaves first; the last level is the root alone.
fn levels(payees: &[AccountIndex]) -> Vec<Vec<Digest>> {
    let mut level: Vec<Digest> = (0..MAX_ALLOWED)
        .map(|i| payees.get(i).map_or(Digest::ZERO, |&p| AllowList::leaf(p)))
        .collect();
    let mut levels = Vec::with_capacity(ALLOW_DEPTH + 1);
    while level.len() > 1 {
        let next = level.chunks(2).map(|c| two_to_one(c[0], c[1])).collect();
        levels.push(std::mem::replace(&mut level, next));
    }
    levels.push(level);
    levels
}

impl TryFrom<Vec<AccountIndex>> for AllowList {
    type Error = PassportRejection;
    fn try_from(v: Vec<AccountIndex>) -> Result<Self, PassportRejection> {
        AllowList::new(v)
    }
}

impl From<AllowList> for Vec<AccountIndex> {
    fn from(l: AllowList) -> Self {
        l.payees
    }
}

/// The root that `payee` at `pos` with `siblings` leads to (what the circuit recomputes).
pub fn root_from_path(payee: AccountIndex, pos: usize, siblings: &[Digest; ALLOW_DEPTH]) -> Digest {
    siblings
        .iter()
        .enumerate()
        .fold(AllowList::leaf(payee), |node, (l, s)| {
            if (pos >> l) & 1 == 0 {
                two_to_one(node, *s)
            } else {
                two_to_one(*s, node)
            }
        })
}
