//! The passport transactions (tags 13 to 16), all signed by the owner (docs/SPEC.md 20.5).
//!
//! | tag | kind | body, in order |
//! |---|---|---|
//! | 13 | delegate | `owner(4) agent_key(40) fund(8) policy` |
//! | 14 | set policy | `owner(4) agent(4) policy` |
//! | 15 | revoke | `owner(4) agent(4)` |
//! | 16 | sweep | `owner(4) agent(4) amount(8)` |
//!
//! then `fee(8) nonce(8) valid_until(8) signature(72)`, where a policy is
//!
//! ```text
//! cap(8) window(4) max_payment(8) max_fee(8) expiry(8) card_hash(32) uri_len(1) uri(uri_len)
//! n(2) [payee(4)] x n                                                   (71 + uri_len + 4 n bytes)
//! ```
//!
//! Hashed (one element per field, a digest four, the policy as its digest,
//! [`crate::passport::Policy::digest`]):
//!
//! * delegate: `owner, w0..w4, fund, policy (4), fee, nonce, valid_until` (14)
//! * set policy: `owner, agent, policy (4), fee, nonce, valid_until` (9)
//! * revoke: `owner, agent, fee, nonce, valid_until` (5)
//! * sweep: `owner, agent, amount, fee, nonce, valid_until` (6)
//!
//! The decoder refuses a URI that is not UTF-8 (`URI_NOT_UTF8`), an allow-list over 1,024 payees
//! or out of order (`TOO_MANY_ALLOWED`, `ALLOW_LIST_NOT_SORTED`: a [`Policy`] is valid by
//! construction) and every integer above its bound.
//!
//! Pubdata op: the tag, the body and the fee; a delegate's op adds the agent's new index after
//! the owner (`owner(4) agent(4) agent_key(40) fund(8) policy`), as a register's op carries its.

use super::{DecodeError, Domain, Reader, TxKind};
use crate::account::{AccountIndex, Amount, Nonce, Timestamp};
use crate::crypto::schnorr::{EncodedKey, MessageHash, PublicKey, SecretKey, Signature};
use crate::hash::F;
use crate::passport::{AllowList, Card, Policy, MAX_ALLOWED};

/// Bytes of a policy with an empty URI and an empty allow-list.
pub const POLICY_BASE_BYTES: usize = 8 + 4 + 8 + 8 + 8 + 32 + 1 + 2;

/// Bytes of the envelope after the body: fee, nonce, valid_until, signature.
const ENVELOPE_BYTES: usize = 8 + 8 + 8 + Signature::BYTES;

/// What an owner does to an agent.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PassportAction {
    /// Creates an agent account for `agent_key`, funded with `fund` from the owner (tag 13).
    Delegate {
        /// Kept as its validated encoding (40 bytes, not the 200 of a decoded key): it is
        /// never used to verify anything until the agent signs.
        agent_key: EncodedKey,
        fund: Amount,
        policy: Policy,
    },
    /// Replaces the agent's policy (tag 14).
    SetPolicy { agent: AccountIndex, policy: Policy },
    /// Revokes the agent, for good (tag 15).
    Revoke { agent: AccountIndex },
    /// Moves `amount` of the agent's balance back to the owner (tag 16).
    Sweep { agent: AccountIndex, amount: Amount },
}

impl PassportAction {
    /// The policy a delegate or a policy change sets (the batch publishes its body).
    pub fn policy(&self) -> Option<&Policy> {
        match self {
            PassportAction::Delegate { policy, .. } | PassportAction::SetPolicy { policy, .. } => {
                Some(policy)
            }
            PassportAction::Revoke { .. } | PassportAction::Sweep { .. } => None,
        }
    }

    pub fn kind(&self) -> TxKind {
        match self {
            PassportAction::Delegate { .. } => TxKind::Delegate,
            PassportAction::SetPolicy { .. } => TxKind::SetPolicy,
            PassportAction::Revoke { .. } => TxKind::Revoke,
            PassportAction::Sweep { .. } => TxKind::Sweep,
        }
    }

    /// The agent acted on; `None` for a delegate (its index is assigned by the state).
    pub fn agent(&self) -> Option<AccountIndex> {
        match self {
            PassportAction::Delegate { .. } => None,
            PassportAction::SetPolicy { agent, .. }
            | PassportAction::Revoke { agent }
            | PassportAction::Sweep { agent, .. } => Some(*agent),
        }
    }

    /// The hashed fields after `owner` (module docs).
    fn fields(&self, out: &mut Vec<F>) {
        match self {
            PassportAction::Delegate {
                agent_key,
                fund,
                policy,
            } => {
                out.extend(agent_key.to_field_elements());
                out.push(fund.to_field());
                out.extend(policy.digest().elements());
            }
            PassportAction::SetPolicy { agent, policy } => {
                out.push(agent.to_field());
                out.extend(policy.digest().elements());
            }
            PassportAction::Revoke { agent } => out.push(agent.to_field()),
            PassportAction::Sweep { agent, amount } => {
                out.extend([agent.to_field(), amount.to_field()]);
            }
        }
    }

    /// The body's bytes after `owner`; `assigned` is written first for a delegate's op.
    fn write(&self, assigned: Option<AccountIndex>, out: &mut Vec<u8>) {
        match self {
            PassportAction::Delegate {
                agent_key,
                fund,
                policy,
            } => {
                if let Some(a) = assigned {
                    out.extend_from_slice(&a.0.to_le_bytes());
                }
                out.extend_from_slice(&agent_key.to_bytes());
                out.extend_from_slice(&fund.get().to_le_bytes());
                write_policy(policy, out);
            }
            PassportAction::SetPolicy { agent, policy } => {
                out.extend_from_slice(&agent.0.to_le_bytes());
                write_policy(policy, out);
            }
            PassportAction::Revoke { agent } => out.extend_from_slice(&agent.0.to_le_bytes()),
            PassportAction::Sweep { agent, amount } => {
                out.extend_from_slice(&agent.0.to_le_bytes());
                out.extend_from_slice(&amount.get().to_le_bytes());
            }
        }
    }

    /// The body's length after `owner` (without an assigned index).
    fn byte_len(&self) -> usize {
        match self {
            PassportAction::Delegate { policy, .. } => {
                PublicKey::BYTES + 8 + policy_byte_len(policy)
            }
            PassportAction::SetPolicy { policy, .. } => 4 + policy_byte_len(policy),
            PassportAction::Revoke { .. } => 4,
            PassportAction::Sweep { .. } => 4 + 8,
        }
    }
}

/// A passport transaction before signing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UnsignedPassportTx {
    pub owner: AccountIndex,
    pub action: PassportAction,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
}

/// A passport transaction signed by the owner.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PassportTx {
    pub owner: AccountIndex,
    pub action: PassportAction,
    pub fee: Amount,
    pub nonce: Nonce,
    pub valid_until: Timestamp,
    pub signature: Signature,
}

impl UnsignedPassportTx {
    /// The hashed fields (module docs).
    pub fn fields(&self) -> Vec<F> {
        let mut out = vec![self.owner.to_field()];
        self.action.fields(&mut out);
        out.extend([
            self.fee.to_field(),
            self.nonce.to_field(),
            self.valid_until.to_field(),
        ]);
        out
    }

    pub fn message_hash(&self, domain: &Domain) -> MessageHash {
        super::message_hash(domain, self.action.kind(), &self.fields())
    }

    /// Signs with `key` (the owner's).
    pub fn sign(self, domain: &Domain, key: &SecretKey) -> PassportTx {
        let signature = key.sign(&self.message_hash(domain));
        PassportTx {
            owner: self.owner,
            action: self.action,
            fee: self.fee,
            nonce: self.nonce,
            valid_until: self.valid_until,
            signature,
        }
    }
}

impl PassportTx {
    pub fn unsigned(&self) -> UnsignedPassportTx {
        UnsignedPassportTx {
            owner: self.owner,
            action: self.action.clone(),
            fee: self.fee,
            nonce: self.nonce,
            valid_until: self.valid_until,
        }
    }

    pub fn kind(&self) -> TxKind {
        self.action.kind()
    }

    /// The encoded length, tag byte included.
    pub fn encoded_len(&self) -> usize {
        1 + 4 + self.action.byte_len() + ENVELOPE_BYTES
    }

    /// Appends everything after the tag byte.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.owner.0.to_le_bytes());
        self.action.write(None, out);
        out.extend_from_slice(&self.fee.get().to_le_bytes());
        out.extend_from_slice(&self.nonce.get().to_le_bytes());
        out.extend_from_slice(&self.valid_until.get().to_le_bytes());
        out.extend_from_slice(&self.signature.to_bytes());
    }

    /// Reads everything after the tag byte of a `kind` transaction.
    pub(super) fn read(kind: TxKind, r: &mut Reader<'_>) -> Result<PassportTx, DecodeError> {
        let owner = r.index()?;
        let action = read_action(kind, None, r)?.1;
        Ok(PassportTx {
            owner,
            action,
            fee: r.bounded("fee")?,
            nonce: r.bounded("nonce")?,
            valid_until: r.bounded("valid_until")?,
            signature: r.signature()?,
        })
    }
}

/// The pubdata op of an applied passport transaction (module docs).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PassportOp {
    pub owner: AccountIndex,
    /// The agent: the new index of a delegate, else the action's.
    pub agent: AccountIndex,
    pub action: PassportAction,
    pub fee: Amount,
}

impl PassportOp {
    /// The op's length, tag byte included.
    pub fn byte_len(&self) -> usize {
        let assigned = match self.action {
            PassportAction::Delegate { .. } => 4,
            _ => 0,
        };
        1 + 4 + assigned + self.action.byte_len() + 8
    }

    /// Appends everything after the tag byte.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.owner.0.to_le_bytes());
        self.action.write(Some(self.agent), out);
        out.extend_from_slice(&self.fee.get().to_le_bytes());
    }

    /// The op's bytes without its policy, and the policy, for a delegate and a policy change:
    /// what they enter the pubdata chain by (SPEC 10.2, [`crate::pubdata::policy_entry`]).
    /// `tag ‖ owner ‖ agent ‖ agent_key ‖ fund ‖ fee` (65 bytes) or `tag ‖ owner ‖ agent ‖
    /// fee` (17); `None` for a revoke or a sweep, whose ops are of fixed length.
    pub fn fixed_part(&self) -> Option<(Vec<u8>, &Policy)> {
        let mut out = vec![self.action.kind().tag()];
        out.extend_from_slice(&self.owner.0.to_le_bytes());
        out.extend_from_slice(&self.agent.0.to_le_bytes());
        let policy = match &self.action {
            PassportAction::Delegate {
                agent_key,
                fund,
                policy,
            } => {
                out.extend_from_slice(&agent_key.to_bytes());
                out.extend_from_slice(&fund.get().to_le_bytes());
                policy
            }
            PassportAction::SetPolicy { policy, .. } => policy,
            PassportAction::Revoke { .. } | PassportAction::Sweep { .. } => return None,
        };
        out.extend_from_slice(&self.fee.get().to_le_bytes());
        Some((out, policy))
    }

    /// Reads an op of `kind` from exactly `body` (its bytes between the tag and the end).
    pub(crate) fn read(kind: TxKind, body: &[u8]) -> Result<PassportOp, DecodeError> {
        super::read_exact(body, kind, |r| {
            let owner = r.index()?;
            let assigned = match kind {
                TxKind::Delegate => Some(r.index()?),
                _ => None,
            };
            let (agent, action) = read_action(kind, assigned, r)?;
            Ok(PassportOp {
                owner,
                agent,
                action,
                fee: r.bounded("fee")?,
            })
        })
    }
}

/// Reads an action of `kind`; returns the agent (`assigned` for a delegate) and the action.
fn read_action(
    kind: TxKind,
    assigned: Option<AccountIndex>,
    r: &mut Reader<'_>,
) -> Result<(AccountIndex, PassportAction), DecodeError> {
    Ok(match kind {
        TxKind::Delegate => {
            let agent_key = EncodedKey::from(r.pubkey()?);
            let fund = r.bounded("fund")?;
            let policy = read_policy(r)?;
            (
                assigned.unwrap_or_default(),
                PassportAction::Delegate {
                    agent_key,
                    fund,
                    policy,
                },
            )
        }
        TxKind::SetPolicy => {
            let agent = r.index()?;
            (
                agent,
                PassportAction::SetPolicy {
                    agent,
                    policy: read_policy(r)?,
                },
            )
        }
        TxKind::Revoke => {
            let agent = r.index()?;
            (agent, PassportAction::Revoke { agent })
        }
        TxKind::Sweep => {
            let agent = r.index()?;
            let amount = r.bounded("amount")?;
            (agent, PassportAction::Sweep { agent, amount })
        }
        other => return Err(DecodeError::UnknownTag(other.tag())),
    })
}

/// The length of a policy's encoding (module docs).
pub(crate) fn policy_byte_len(p: &Policy) -> usize {
    POLICY_BASE_BYTES + p.card.uri().len() + 4 * p.allow.payees().len()
}

/// Appends a policy's encoding (module docs).
pub(crate) fn write_policy(p: &Policy, out: &mut Vec<u8>) {
    out.extend_from_slice(&p.cap.get().to_le_bytes());
    out.extend_from_slice(&p.window.to_le_bytes());
    out.extend_from_slice(&p.max_payment.get().to_le_bytes());
    out.extend_from_slice(&p.max_fee.get().to_le_bytes());
    out.extend_from_slice(&p.expiry.get().to_le_bytes());
    out.extend_from_slice(&p.card.hash);
    let uri = p.card.uri().as_bytes();
    // Card::new bounds the URI at 255 bytes.
    out.push(uri.len() as u8);
    out.extend_from_slice(uri);
    let payees = p.allow.payees();
    // AllowList::new bounds the list at 1,024 payees.
    out.extend_from_slice(&(payees.len() as u16).to_le_bytes());
    for a in payees {
        out.extend_from_slice(&a.0.to_le_bytes());
    }
}

fn read_policy(r: &mut Reader<'_>) -> Result<Policy, DecodeError> {
    let cap = r.bounded("cap")?;
    let window = u32::from_le_bytes(r.array()?);
    let max_payment = r.bounded("max_payment")?;
    let max_fee = r.bounded("max_fee")?;
    let expiry = r.bounded("expiry")?;
    let hash: [u8; 32] = r.array()?;
    let uri_len = usize::from(r.array::<1>()?[0]);
    let uri = r.bytes(uri_len)?;
    let uri = String::from_utf8(uri.to_vec()).map_err(|_| DecodeError::UriNotUtf8)?;
    let n = usize::from(u16::from_le_bytes(r.array()?));
    if n > MAX_ALLOWED {
        return Err(DecodeError::Passport(
            crate::passport::PassportRejection::TooManyAllowed(n),
        ));
    }
    let mut payees = Vec::with_capacity(n);
    for _ in 0..n {
        payees.push(r.index()?);
    }
    Ok(Policy {
        cap,
        window,
        max_payment,
        max_fee,
        expiry,
        allow: AllowList::new(payees).map_err(DecodeError::Passport)?,
        card: Card::new(hash, uri).map_err(DecodeError::Passport)?,
    })
}

/// Reads the policy that starts `bytes` with the transaction's checks; returns it and its
/// length.
pub(crate) fn read_policy_prefix(bytes: &[u8]) -> Result<(Policy, usize), DecodeError> {
    let len = policy_len_at(Some(bytes))?;
    let body = bytes.get(..len).ok_or(DecodeError::WrongLength {
        kind: TxKind::SetPolicy,
        expected: len,
        got: bytes.len(),
    })?;
    let mut r = Reader {
        rest: body,
        kind: TxKind::SetPolicy,
        total: body.len(),
    };
    Ok((read_policy(&mut r)?, len))
}

/// The URI length and list count of a policy whose encoding starts `bytes`, if both are there.
fn policy_header(bytes: &[u8]) -> Option<(usize, usize)> {
    let uri_len = usize::from(*bytes.get(POLICY_BASE_BYTES - 3)?);
    let at = POLICY_BASE_BYTES - 2 + uri_len;
    let n = bytes.get(at..at + 2)?;
    Some((uri_len, usize::from(u16::from_le_bytes([n[0], n[1]]))))
}

/// The length of a policy whose encoding starts `bytes`: `TOO_MANY_ALLOWED` past 1,024 payees
/// (before any length check), the length with an empty URI and list if the header is cut.
fn policy_len_at(bytes: Option<&[u8]>) -> Result<usize, DecodeError> {
    match bytes.and_then(policy_header) {
        Some((_, n)) if n > MAX_ALLOWED => Err(DecodeError::Passport(
            crate::passport::PassportRejection::TooManyAllowed(n),
        )),
        Some((uri_len, n)) => Ok(POLICY_BASE_BYTES + uri_len + 4 * n),
        None => Ok(POLICY_BASE_BYTES),
    }
}

/// The length of a `kind` transaction (tag included) from its header (module docs); a cut
/// header gives the length with an empty policy, so that the length check refuses it.
pub(super) fn tx_len(kind: TxKind, bytes: &[u8]) -> Result<usize, DecodeError> {
    let (policy_at, before) = match kind {
        TxKind::Delegate => (1 + 4 + PublicKey::BYTES + 8, 4 + PublicKey::BYTES + 8),
        TxKind::SetPolicy => (1 + 4 + 4, 4 + 4),
        TxKind::Revoke => return Ok(1 + 4 + 4 + ENVELOPE_BYTES),
        TxKind::Sweep => return Ok(1 + 4 + 4 + 8 + ENVELOPE_BYTES),
        other => return Ok(other.encoded_len()),
    };
    let policy = policy_len_at(bytes.get(policy_at..))?;
    Ok(1 + before + policy + ENVELOPE_BYTES)
}

/// The length of a `kind` op (tag included) at the start of `bytes`; `None` for another kind.
pub(crate) fn op_len_at(kind: TxKind, bytes: &[u8]) -> Option<Result<usize, DecodeError>> {
    let (policy_at, before) = match kind {
        TxKind::Delegate => (
            1 + 4 + 4 + PublicKey::BYTES + 8,
            4 + 4 + PublicKey::BYTES + 8,
        ),
        TxKind::SetPolicy => (1 + 4 + 4, 4 + 4),
        TxKind::Revoke => return Some(Ok(1 + 4 + 4 + 8)),
        TxKind::Sweep => return Some(Ok(1 + 4 + 4 + 8 + 8)),
        _ => return None,
    };
    Some(policy_len_at(bytes.get(policy_at..)).map(|policy| 1 + before + policy + 8))
}
