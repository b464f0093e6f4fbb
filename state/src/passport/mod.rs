//! Agent passports: an agent account bound to its owner by a spending policy (SPEC 20), with no
//! I/O.
//!
//! An owner creates an agent with one signed `delegate`: a new account for the agent's key,
//! funded by the owner, whose [`Passport`] names the owner and a [`Policy`]. From then on every
//! spend the agent signs (transfer, withdraw, split, stream open, settle or close) is judged by
//! [`charge`] before the balances, and the owner alone may change the policy, sweep the balance
//! back or revoke the agent (a revocation is final and effective from the next transaction).
//!
//! # The policy
//!
//! * `cap`: the most the agent may debit (amount plus fee; an open's escrow; a split's sum) in
//!   one window;
//! * `window`: the window's length in seconds, fixed windows `floor(T / window)`; `0` makes the
//!   cap a lifetime cap;
//! * `max_payment`, `max_fee`: the most one transaction may move, and pay as a fee;
//! * `expiry`: after it, the agent can spend nothing (`T > expiry`);
//! * `allow`: the payees the agent may pay ([`AllowList`]; empty = any; a withdrawal to L1 has
//!   no payee account and is refused under a non-empty list);
//! * `card`: public metadata, the hash and URI of an agent card in the spirit of ERC-8004
//!   ([`Card`]).
//!
//! # Commitments
//!
//! ```text
//! card     = hash_no_pad(TAG_CARD, h_0..h_7, len, u_0..u_k)    (h: the card hash as eight
//!            little-endian u32, u: the URI in 7-byte little-endian chunks, k = ceil(len / 7))
//! policy   = hash_no_pad(TAG_POLICY, cap, window, max_payment, max_fee, expiry,
//!                        allow_root (4), card (4))                 (14 elements)
//! passport = hash_no_pad(owner, policy (4), revoked, window_id, spent)   (8 elements)
//! ```
//!
//! `passport` is a part of the agent's `profile` ([`crate::ext`]). `window_id` and `spent` are
//! the window the last spend fell in and what it had spent in it.
//!
//! # Invariants
//!
//! * `spent <= cap` whenever the stored window is the current one: a spend that would pass the
//!   cap is refused, so several payments each under `max_payment` cannot add up past it.
//! * A revoked passport stays revoked; only a sweep (by the owner) moves the agent's money after.
//! * The owner is never an agent itself (`AGENT_CANNOT_DELEGATE`): one level, so a leaked agent
//!   key can never mint agents that escape its cap.

mod allow;
pub mod rules;
#[cfg(test)]
mod tests;

use plonky2::field::types::Field;
use serde::{Deserialize, Serialize};

use crate::account::{AccountIndex, Amount, Timestamp};
use crate::hash::{hash_no_pad, Digest, F};

pub use allow::{root_from_path, AllowList, ALLOW_DEPTH, MAX_ALLOWED};
pub use rules::{charge, owned_by, Charge, Payees, Spend};

/// Domain element of [`Policy::digest`]: the ASCII bytes `"policy"` as a big-endian u64.
pub const TAG_POLICY: u64 = 0x0000_706f_6c69_6379;

/// Domain element of [`Card::digest`]: the ASCII bytes `"card"` as a big-endian u64.
pub const TAG_CARD: u64 = 0x0000_0000_6361_7264;

/// The longest card URI, in bytes (its length is one byte on the wire).
pub const MAX_URI_BYTES: usize = 255;

/// Why a passport rule refused a transaction. A refused transaction changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PassportRejection {
    #[error("the agent's passport is revoked")]
    Revoked,
    #[error("the agent's policy expired at {expiry} (block time {now})")]
    PolicyExpired { expiry: Timestamp, now: Timestamp },
    #[error("fee {fee} is above the policy's maximum fee {max}")]
    PolicyFee { fee: Amount, max: Amount },
    #[error("{value} is above the policy's maximum payment {max}")]
    PolicyPayment { value: Amount, max: Amount },
    #[error("the policy's allow-list does not name payee {0}")]
    PolicyPayee(AccountIndex),
    #[error("the policy's allow-list leaves no room for a withdrawal to L1")]
    PolicyWithdrawal,
    #[error(
        "the policy's allow-list leaves no room for a split: an agent under a list pays one \
         listed payee at a time"
    )]
    PolicySplit,
    #[error("{required} more would pass the cap {cap} ({spent} spent in this window)")]
    PolicyCap {
        cap: Amount,
        spent: Amount,
        required: u64,
    },
    #[error("account {0} is not an agent")]
    NotAnAgent(AccountIndex),
    #[error("only the agent's owner {owner} may do this")]
    NotOwner { owner: AccountIndex },
    #[error("an agent cannot own agents")]
    AgentCannotDelegate,
    #[error("payee {0} is out of order: an allow-list is sorted by strictly increasing index")]
    AllowListNotSorted(AccountIndex),
    #[error("an allow-list of {0} payees: at most 1,024")]
    TooManyAllowed(usize),
    #[error("a card URI of {0} bytes: at most 255")]
    UriTooLong(usize),
}

impl PassportRejection {
    /// A stable SCREAMING_SNAKE_CASE reason code (part of the API: never change one).
    pub const fn code(&self) -> &'static str {
        match self {
            PassportRejection::Revoked => "REVOKED",
            PassportRejection::PolicyExpired { .. } => "POLICY_EXPIRED",
            PassportRejection::PolicyFee { .. } => "POLICY_FEE",
            PassportRejection::PolicyPayment { .. } => "POLICY_PAYMENT",
            PassportRejection::PolicyPayee(_)
            | PassportRejection::PolicyWithdrawal
            | PassportRejection::PolicySplit => "POLICY_PAYEE",
            PassportRejection::PolicyCap { .. } => "POLICY_CAP",
            PassportRejection::NotAnAgent(_) => "NOT_AN_AGENT",
            PassportRejection::NotOwner { .. } => "NOT_OWNER",
            PassportRejection::AgentCannotDelegate => "AGENT_CANNOT_DELEGATE",
            PassportRejection::AllowListNotSorted(_) => "ALLOW_LIST_NOT_SORTED",
            PassportRejection::TooManyAllowed(_) => "TOO_MANY_ALLOWED",
            PassportRejection::UriTooLong(_) => "URI_TOO_LONG",
        }
    }
}

/// An agent card: the hash of its document and where to find it (module docs).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Card {
    /// A hash of the card document, as its owner computed it (e.g. SHA-256); opaque here.
    pub hash: [u8; 32],
    uri: String,
}

impl Card {
    /// `URI_TOO_LONG` past 255 bytes.
    pub fn new(hash: [u8; 32], uri: String) -> Result<Card, PassportRejection> {
        if uri.len() > MAX_URI_BYTES {
            return Err(PassportRejection::UriTooLong(uri.len()));
        }
        Ok(Card { hash, uri })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The card digest (module docs).
    pub fn digest(&self) -> Digest {
        let bytes = self.uri.as_bytes();
        let mut e = Vec::with_capacity(10 + bytes.len().div_ceil(7));
        e.push(F::from_canonical_u64(TAG_CARD));
        e.extend(
            self.hash
                .chunks(4)
                .map(|c| F::from_canonical_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        );
        e.push(F::from_canonical_usize(bytes.len()));
        e.extend(bytes.chunks(7).map(|c| {
            let mut le = [0u8; 8];
            le[..c.len()].copy_from_slice(c);
            F::from_canonical_u64(u64::from_le_bytes(le))
        }));
        hash_no_pad(&e)
    }
}

/// What an owner allows its agent (module docs).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Policy {
    pub cap: Amount,
    /// Window length in seconds; 0 = one window for the passport's whole life.
    pub window: u32,
    pub max_payment: Amount,
    pub max_fee: Amount,
    pub expiry: Timestamp,
    pub allow: AllowList,
    pub card: Card,
}

impl Policy {
    /// The policy digest (module docs): three permutations (the allow-list keeps its root).
    pub fn digest(&self) -> Digest {
        self.digest_with_allow(self.allow.root())
    }

    /// The policy digest with `allow` as the allow-list's root: what a circuit that states
    /// the root apart from the list checks (and a test forges).
    pub fn digest_with_allow(&self, allow: Digest) -> Digest {
        let a = allow.elements();
        let c = self.card.digest().elements();
        hash_no_pad(&[
            F::from_canonical_u64(TAG_POLICY),
            self.cap.to_field(),
            F::from_canonical_u32(self.window),
            self.max_payment.to_field(),
            self.max_fee.to_field(),
            self.expiry.to_field(),
            a[0],
            a[1],
            a[2],
            a[3],
            c[0],
            c[1],
            c[2],
            c[3],
        ])
    }

    /// The window `now` falls in: `floor(now / window)`, or 0 for a lifetime cap.
    pub fn window_id(&self, now: Timestamp) -> u64 {
        match self.window {
            0 => 0,
            w => now.get() / u64::from(w),
        }
    }
}

/// `H(owner, policy (4), revoked, window_id, spent)` (module docs): what a passport commits,
/// from its parts (a replica that knows the policy by its digest only computes it this way).
pub fn passport_digest(
    owner: AccountIndex,
    policy: Digest,
    revoked: bool,
    window_id: u64,
    spent: Amount,
) -> Digest {
    let p = policy.elements();
    hash_no_pad(&[
        owner.to_field(),
        p[0],
        p[1],
        p[2],
        p[3],
        F::from_bool(revoked),
        F::from_canonical_u64(window_id),
        spent.to_field(),
    ])
}

/// An agent's passport: its owner, its policy and what it spent (module docs).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Passport {
    owner: AccountIndex,
    policy: Policy,
    /// `policy.digest()`, computed once per policy.
    policy_digest: Digest,
    revoked: bool,
    window_id: u64,
    spent: Amount,
}

impl Passport {
    /// A fresh passport: not revoked, nothing spent.
    pub fn new(owner: AccountIndex, policy: Policy) -> Passport {
        Passport {
            owner,
            policy_digest: policy.digest(),
            policy,
            revoked: false,
            window_id: 0,
            spent: Amount::ZERO,
        }
    }

    pub fn owner(&self) -> AccountIndex {
        self.owner
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn policy_digest(&self) -> Digest {
        self.policy_digest
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked
    }

    /// The window of the last spend and what was spent in it.
    pub fn spent(&self) -> (u64, Amount) {
        (self.window_id, self.spent)
    }

    /// What the agent may still spend at `now` under its cap.
    pub fn remaining(&self, now: Timestamp) -> Amount {
        let spent = if self.policy.window_id(now) == self.window_id {
            self.spent
        } else {
            Amount::ZERO
        };
        self.policy.cap.checked_sub(spent).unwrap_or(Amount::ZERO)
    }

    /// The passport digest (module docs).
    pub fn digest(&self) -> Digest {
        passport_digest(
            self.owner,
            self.policy_digest,
            self.revoked,
            self.window_id,
            self.spent,
        )
    }

    /// A passport from all its parts (a replica's, from a snapshot or a diff).
    pub fn from_parts(
        owner: AccountIndex,
        policy: Policy,
        revoked: bool,
        window_id: u64,
        spent: Amount,
    ) -> Passport {
        Passport {
            owner,
            policy_digest: policy.digest(),
            policy,
            revoked,
            window_id,
            spent,
        }
    }

    /// Replaces the policy; the window and its spending are kept (a new window length gives
    /// new window ids, so the next spend starts a new window).
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy_digest = policy.digest();
        self.policy = policy;
    }

    pub fn revoke(&mut self) {
        self.revoked = true;
    }

    /// Records a spend that [`charge`] accepted.
    pub fn record(&mut self, c: Charge) {
        self.window_id = c.window_id;
        self.spent = c.spent;
    }
}
