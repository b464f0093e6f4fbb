//! The Poseidon commitments a batch proof binds: the pubdata chain over the ops and the
//! withdrawals chain (module docs of [`super`]).

use plonky2::field::types::Field;

use crate::account::{AccountIndex, Amount};
use crate::hash::{hash_no_pad, Digest, F};
use crate::split::{parts_digest, shares_chain, Payout};
use crate::tx::{L1Address, PassportOp};

use super::{PubdataOp, CHUNK_BYTES, MAX_CHUNKS};

/// 7-byte little-endian chunks of `bytes`, the last one zero-padded (SPEC 10.1).
pub fn bytes_to_chunks(bytes: &[u8]) -> Vec<F> {
    bytes
        .chunks(CHUNK_BYTES)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            // At most 7 bytes: below 2^56 < p, hence canonical.
            F::from_canonical_u64(u64::from_le_bytes(b))
        })
        .collect()
}

/// The running pubdata commitment `c_i` of a batch (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct PubdataCommitment(Digest);

impl PubdataCommitment {
    /// `c_0 = ZERO`: the commitment of an empty batch.
    pub fn new() -> Self {
        PubdataCommitment(Digest::ZERO)
    }

    /// `c_{i+1} = hash_no_pad(c_i ‖ len ‖ chunks)`; a split and a share registration enter by
    /// their fixed part and the digest of their list ([`split_entry`], [`shares_entry`]), a
    /// delegate and a policy change by theirs and the policy's digest ([`policy_entry`]).
    pub fn absorb(&mut self, op: &PubdataOp) {
        match op {
            PubdataOp::Split { from, parts, fee } => {
                self.0 = split_entry(self.0, *from, parts, *fee);
                return;
            }
            PubdataOp::RegisterShares {
                account,
                parts,
                fee,
            } => {
                self.0 = shares_entry(self.0, *account, parts, *fee);
                return;
            }
            PubdataOp::Passport(p) => {
                if let Some(c) = policy_entry(self.0, p) {
                    self.0 = c;
                    return;
                }
            }
            _ => {}
        }
        let bytes = op.to_bytes();
        let chunks = bytes_to_chunks(&bytes);
        let head = |buf: &mut [F]| {
            buf[..4].copy_from_slice(&self.0.elements());
            buf[4] = F::from_canonical_usize(bytes.len());
            buf[5..].copy_from_slice(&chunks);
        };
        // Every op hashed whole is of fixed length and fits a stack buffer (the long ones, a
        // split's and a policy's, enter above); the heap path only guards a future kind.
        self.0 = if chunks.len() <= MAX_CHUNKS {
            let mut buf = [F::ZERO; 5 + MAX_CHUNKS];
            head(&mut buf[..5 + chunks.len()]);
            hash_no_pad(&buf[..5 + chunks.len()])
        } else {
            let mut buf = vec![F::ZERO; 5 + chunks.len()];
            head(&mut buf);
            hash_no_pad(&buf)
        };
    }

    pub fn digest(&self) -> Digest {
        self.0
    }
}

/// A split's step of the chain (SPEC 10.2): `hash_no_pad(c ‖ 15 ‖ chunks(tag ‖ from ‖ n ‖ fee)
/// ‖ d)`, the op's 15 fixed bytes (three chunks) followed by the parts digest `d` of 19.4
/// instead of the parts' bytes. The parts are what varies (up to 12,288 bytes); the payment
/// circuit's slot has a fixed shape and the split's signature already binds them through `d`,
/// so the chain binds them the same way (twelve elements, two permutations).
pub fn split_entry(c: Digest, from: AccountIndex, parts: &[Payout], fee: Amount) -> Digest {
    let d = parts_digest(parts);
    list_entry(c, crate::tx::TxKind::Split, from, parts.len(), fee, d)
}

/// A share registration's step (SPEC 10.2), shaped as a split's: `hash_no_pad(c ‖ 15 ‖
/// chunks(tag ‖ account ‖ n ‖ fee) ‖ s)` with `s` the shares chain of 19.2 (the op's fixed
/// bytes have the same layout: `0x0b account(4) n(2)`, then the list, then `fee(8)`), so that
/// the leaf's registration slot binds the list through the chain's digest as a split slot does.
pub fn shares_entry(
    c: Digest,
    account: AccountIndex,
    parts: &[(AccountIndex, u16)],
    fee: Amount,
) -> Digest {
    let d = shares_chain(parts);
    list_entry(
        c,
        crate::tx::TxKind::RegisterShares,
        account,
        parts.len(),
        fee,
        d,
    )
}

/// `hash_no_pad(c ‖ 15 ‖ chunks(tag ‖ owner ‖ n ‖ fee) ‖ d)`.
fn list_entry(
    c: Digest,
    kind: crate::tx::TxKind,
    owner: AccountIndex,
    n: usize,
    fee: Amount,
    d: Digest,
) -> Digest {
    let mut fixed = Vec::with_capacity(SPLIT_FIXED_BYTES);
    fixed.push(kind.tag());
    fixed.extend_from_slice(&owner.0.to_le_bytes());
    // At most 1,024 payees (a longer list never applies), so `n` fits its two bytes.
    fixed.extend_from_slice(&(n as u16).to_le_bytes());
    fixed.extend_from_slice(&fee.get().to_le_bytes());
    let mut v = c.elements().to_vec();
    v.push(F::from_canonical_usize(SPLIT_FIXED_BYTES));
    v.extend(bytes_to_chunks(&fixed));
    v.extend(d.elements());
    hash_no_pad(&v)
}

/// A delegate's or a policy change's step (SPEC 10.2): `hash_no_pad(c ‖ len ‖ chunks(fixed)
/// ‖ p)`, `fixed` the op's bytes without the policy ([`PassportOp::fixed_part`]: 65 bytes,
/// ten chunks, for a delegate; 17, three chunks, for a policy change), `len` their count and
/// `p` the policy's digest (20.2). The policy's body (an allow-list of up to 1,024 payees, a
/// URI) is what varies; the owner's signature binds it through `p` already, and the payment
/// circuit's slot has a fixed shape. `None` for a revoke or a sweep, hashed whole.
pub fn policy_entry(c: Digest, op: &PassportOp) -> Option<Digest> {
    let (fixed, policy) = op.fixed_part()?;
    let mut v = c.elements().to_vec();
    v.push(F::from_canonical_usize(fixed.len()));
    v.extend(bytes_to_chunks(&fixed));
    v.extend(policy.digest().elements());
    Some(hash_no_pad(&v))
}

/// The fixed bytes of a delegate's op ([`policy_entry`]): `tag ‖ owner(4) ‖ agent(4) ‖
/// agent_key(40) ‖ fund(8) ‖ fee(8)`.
pub const DELEGATE_FIXED_BYTES: usize = 65;

/// The fixed bytes of a policy change's op: `tag ‖ owner(4) ‖ agent(4) ‖ fee(8)`.
pub const SET_POLICY_FIXED_BYTES: usize = 17;

/// The fixed bytes of a split op (and of a share registration's): `tag ‖ from(4) ‖ n(2) ‖
/// fee(8)`.
pub const SPLIT_FIXED_BYTES: usize = 15;

/// The pubdata commitment of a sequence of ops, in order.
pub fn pubdata_commitment<'a>(ops: impl IntoIterator<Item = &'a PubdataOp>) -> Digest {
    let mut c = PubdataCommitment::new();
    ops.into_iter().for_each(|op| c.absorb(op));
    c.digest()
}

/// A withdrawal to be released by the L1 contract once its batch is final.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct WithdrawalRecord {
    pub from: AccountIndex,
    pub to_l1: L1Address,
    pub amount: Amount,
}

impl WithdrawalRecord {
    /// `from, address limbs 0..4, amount`: what the withdrawals commitment hashes.
    pub fn to_field_elements(&self) -> [F; 7] {
        let a = self.to_l1.to_field_elements();
        [
            self.from.to_field(),
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            self.amount.to_field(),
        ]
    }
}

/// The running withdrawals commitment `w_i` of a batch (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct WithdrawalsCommitment(Digest);

impl WithdrawalsCommitment {
    /// `w_0 = ZERO`: a batch without withdrawals.
    pub fn new() -> Self {
        WithdrawalsCommitment(Digest::ZERO)
    }

    /// `w_{i+1} = hash_no_pad(w_i ‖ from ‖ address limbs ‖ amount)`.
    pub fn absorb(&mut self, w: &WithdrawalRecord) {
        let mut buf = [F::ZERO; 11];
        buf[..4].copy_from_slice(&self.0.elements());
        buf[4..].copy_from_slice(&w.to_field_elements());
        self.0 = hash_no_pad(&buf);
    }

    pub fn digest(&self) -> Digest {
        self.0
    }
}

/// The withdrawals commitment of a sequence of withdrawals, in order.
pub fn withdrawals_commitment<'a>(ws: impl IntoIterator<Item = &'a WithdrawalRecord>) -> Digest {
    let mut c = WithdrawalsCommitment::new();
    ws.into_iter().for_each(|w| c.absorb(w));
    c.digest()
}
