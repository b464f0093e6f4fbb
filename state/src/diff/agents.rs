//! Agent records: the sections version 3 of a diff adds (SPEC 10.4, "Version 3"; SPEC 20).
//!
//! A batch that changed an agent's passport (a delegate, a policy change, a revocation, or a
//! spend that moved its `spent`) or an account's nonce lanes 1 to 7 publishes, per such
//! account, the part after the batch; a batch that registered an account's revenue shares
//! publishes them (once: they never change). With the account and stream records this is what a replica
//! needs to recompute every profile, hence every `ext` (SPEC 18.3).
//!
//! ```text
//! passport   agent LE32 ‖ owner LE32 ‖ revoked (0 or 1) ‖ window_id LE64 ‖ spent LE64
//!            ‖ policy digest (4 x LE64) ‖ has_policy (0 or 1) [‖ policy (SPEC 20.5)]
//!                                                                  62 bytes [+ 71 + uri + 4 n]
//! lanes      account LE32 ‖ s_1 .. s_7 (7 x LE64, each below 2^60)         60 bytes
//! shares     account LE32 ‖ n LE16 ‖ [payee LE32 ‖ bps LE16] x n            6 + 6 n bytes
//! ```
//!
//! The policy itself travels only in the batch that set it (`has_policy = 1`, and then its
//! digest must be the record's); later records of the agent carry its digest, which is all the
//! root needs. A replica keeps the last policy it saw, so that it can still judge the agent.

use super::{DiffError, Reader};
use crate::account::{AccountIndex, Amount};
use crate::hash::Digest;
use crate::lanes::{LaneNonces, LANES};
use crate::passport::{passport_digest, Passport, Policy};
use crate::split::{Shares, SplitRejection, MAX_PAYEES};
use crate::tx::passport::{policy_byte_len, read_policy_prefix, write_policy};
use crate::tx::shares::{write_shares, SHARE_BYTES};

/// Bytes of a passport record without its policy.
pub const PASSPORT_RECORD_BYTES: usize = 4 + 4 + 1 + 8 + 8 + 32 + 1;
/// Bytes of a lanes record.
pub const LANES_RECORD_BYTES: usize = 4 + 8 * (LANES - 1);

/// An agent's passport after the batch.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PassportRecord {
    pub agent: AccountIndex,
    pub owner: AccountIndex,
    pub revoked: bool,
    pub window_id: u64,
    pub spent: Amount,
    pub policy_digest: Digest,
    /// The policy, in the batch that set it.
    pub policy: Option<Policy>,
}

impl PassportRecord {
    /// The record of `p` at `agent`, with its policy if `with_policy`.
    pub fn of(agent: AccountIndex, p: &Passport, with_policy: bool) -> PassportRecord {
        let (window_id, spent) = p.spent();
        PassportRecord {
            agent,
            owner: p.owner(),
            revoked: p.is_revoked(),
            window_id,
            spent,
            policy_digest: p.policy_digest(),
            policy: with_policy.then(|| p.policy().clone()),
        }
    }

    /// The passport digest this record commits to (SPEC 20.2).
    pub fn digest(&self) -> Digest {
        passport_digest(
            self.owner,
            self.policy_digest,
            self.revoked,
            self.window_id,
            self.spent,
        )
    }

    pub fn encoded_len(&self) -> usize {
        PASSPORT_RECORD_BYTES + self.policy.as_ref().map_or(0, policy_byte_len)
    }

    /// Reads one record at the start of `bytes`; returns it and its length (for a snapshot).
    pub(crate) fn read_prefix(bytes: &[u8], count_after: u64) -> Result<(Self, usize), DiffError> {
        let mut r = Reader(bytes);
        let rec = PassportRecord::read(&mut r, count_after)?;
        Ok((rec, bytes.len() - r.0.len()))
    }

    /// The record's bytes, as a diff carries them (for a circuit's witness).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.agent.0.to_le_bytes());
        out.extend_from_slice(&self.owner.0.to_le_bytes());
        out.push(u8::from(self.revoked));
        out.extend_from_slice(&self.window_id.to_le_bytes());
        out.extend_from_slice(&self.spent.get().to_le_bytes());
        out.extend_from_slice(&self.policy_digest.to_bytes());
        match &self.policy {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                write_policy(p, out);
            }
        }
    }

    /// Reads one record; `count_after` bounds the agent and the owner.
    pub(super) fn read(r: &mut Reader<'_>, count_after: u64) -> Result<Self, DiffError> {
        let agent = u32::from_le_bytes(r.take()?);
        let bad = |field| DiffError::BadAgent { agent, field };
        if u64::from(agent) >= count_after {
            return Err(bad("agent"));
        }
        let owner = u32::from_le_bytes(r.take()?);
        if u64::from(owner) >= count_after || owner == agent {
            return Err(bad("owner"));
        }
        let revoked = match r.take::<1>()? {
            [0] => false,
            [1] => true,
            _ => return Err(bad("revoked")),
        };
        let window_id = u64::from_le_bytes(r.take()?);
        if window_id > crate::account::MAX_U63 {
            return Err(bad("window_id"));
        }
        let spent = Amount::new(u64::from_le_bytes(r.take()?)).ok_or(bad("spent"))?;
        let policy_digest = Digest::from_bytes(&r.take()?).ok_or(bad("policy digest"))?;
        let policy = match r.take::<1>()? {
            [0] => None,
            [1] => {
                let (p, len) = read_policy_prefix(r.0).map_err(|_| bad("policy"))?;
                r.0 = &r.0[len..];
                if p.digest() != policy_digest {
                    return Err(bad("policy"));
                }
                Some(p)
            }
            _ => return Err(bad("has_policy")),
        };
        Ok(PassportRecord {
            agent: AccountIndex(agent),
            owner: AccountIndex(owner),
            revoked,
            window_id,
            spent,
            policy_digest,
            policy,
        })
    }
}

/// An account's lanes 1 to 7 after the batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LanesRecord {
    pub account: AccountIndex,
    pub lanes: LaneNonces,
}

impl LanesRecord {
    /// Reads one record at the start of `bytes` (for a snapshot).
    pub(crate) fn read_prefix(bytes: &[u8], count_after: u64) -> Result<Self, DiffError> {
        LanesRecord::read(&mut Reader(bytes), count_after)
    }

    /// The record's bytes, as a diff carries them (for a circuit's witness).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LANES_RECORD_BYTES);
        self.encode_into(&mut out);
        out
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.account.0.to_le_bytes());
        for s in self.lanes.seqs() {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }

    pub(super) fn read(r: &mut Reader<'_>, count_after: u64) -> Result<Self, DiffError> {
        let account = u32::from_le_bytes(r.take()?);
        if u64::from(account) >= count_after {
            return Err(DiffError::BadLanes(account));
        }
        let mut seqs = [0u64; LANES - 1];
        for s in &mut seqs {
            *s = u64::from_le_bytes(r.take()?);
        }
        Ok(LanesRecord {
            account: AccountIndex(account),
            lanes: LaneNonces::from_seqs(seqs).ok_or(DiffError::BadLanes(account))?,
        })
    }
}

/// Bytes of a shares record without its parts.
pub const SHARES_RECORD_BYTES: usize = 4 + 2;

/// The revenue shares an account registered in the batch (SPEC 19.2). Shares never change, so
/// an account has exactly one such record, in the diff of the batch that registered them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SharesRecord(pub Shares);

impl SharesRecord {
    pub fn account(&self) -> AccountIndex {
        self.0.owner()
    }

    pub fn encoded_len(&self) -> usize {
        SHARES_RECORD_BYTES + SHARE_BYTES * self.0.parts().len()
    }

    /// Reads one record at the start of `bytes`; returns it and its length (for a snapshot).
    pub(crate) fn read_prefix(bytes: &[u8], count_after: u64) -> Result<(Self, usize), DiffError> {
        let mut r = Reader(bytes);
        let rec = SharesRecord::read(&mut r, count_after)?;
        Ok((rec, bytes.len() - r.0.len()))
    }

    /// `account(4) n(2) [payee(4) bps(2)] x n`, as the registration's op body (SPEC 19.6).
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        write_shares(self.0.owner(), self.0.parts(), out);
    }

    /// Reads one record; the shares obey the rules of SPEC 19.2 and name accounts below
    /// `count_after`.
    pub(super) fn read(r: &mut Reader<'_>, count_after: u64) -> Result<Self, DiffError> {
        let account = u32::from_le_bytes(r.take()?);
        let bad = |field| DiffError::BadShares { account, field };
        if u64::from(account) >= count_after {
            return Err(bad("account"));
        }
        let n = usize::from(u16::from_le_bytes(r.take()?));
        if n > MAX_PAYEES {
            return Err(bad("n"));
        }
        let mut parts = Vec::with_capacity(n);
        for _ in 0..n {
            let payee = u32::from_le_bytes(r.take()?);
            if u64::from(payee) >= count_after {
                return Err(bad("payee"));
            }
            parts.push((AccountIndex(payee), u16::from_le_bytes(r.take()?)));
        }
        let shares =
            Shares::new(AccountIndex(account), parts).map_err(|e| bad(shares_field(&e)))?;
        Ok(SharesRecord(shares))
    }
}

/// The field a refusal of [`Shares::new`] names in a [`DiffError::BadShares`].
fn shares_field(e: &SplitRejection) -> &'static str {
    match e {
        SplitRejection::NoPayees => "n",
        SplitRejection::ZeroPart(_) | SplitRejection::SharesNotWhole(_) => "bps",
        _ => "payee",
    }
}
