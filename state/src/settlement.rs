//! What the L1 contract and the batch proof both compute (SPEC 15.2, 15.3, 15.5): the priority
//! queue chain, the batch statement and the payout tree, all SHA-256 over packed big-endian
//! bytes (SPEC 15.8 says why SHA-256).
//!
//! Pure functions of plain data: the bridge wraps them in its L1 types, the prover recomputes
//! them in-circuit, and `docs/vectors/settlement-v1.json` pins them for the Solidity tests.

use sha2::{Digest as _, Sha256};

use plonky2::field::types::Field;

use crate::hash::{hash_no_pad, Digest, F};
use crate::pubdata::bytes_to_chunks;
use crate::tx::L1Address;

mod ops;
pub use ops::{settle_ops, OpsError, OpsSettlement};

/// A SHA-256 digest as the contract stores it (`bytes32`).
pub type Hash32 = [u8; 32];

/// Priority op kind of a deposit (the L2 tag of a deposit transaction).
pub const KIND_DEPOSIT: u8 = 4;
/// Priority op kind of a forced withdrawal (the L2 tag of a withdraw).
pub const KIND_FORCED_WITHDRAWAL: u8 = 3;
/// L2 wire length of the signed withdraw a forced withdrawal carries (SPEC 9).
pub const WITHDRAW_TX_LEN: usize = 129;
/// Payout leaves with `from >= REFUND_FROM_BASE` refund deposit `from - REFUND_FROM_BASE`.
pub const REFUND_FROM_BASE: u64 = 1 << 32;
/// Length of the packed statement (SPEC 15.3).
pub const STATEMENT_LEN: usize = 252;

fn sha256(parts: &[&[u8]]) -> Hash32 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// One queued L1 priority operation, with every field its entry hashes (SPEC 15.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PriorityEntry {
    Deposit {
        serial: u64,
        depositor: L1Address,
        recipient: u32,
        amount: u64,
    },
    ForcedWithdrawal {
        serial: u64,
        requested_at: u64,
        /// The signed withdraw exactly as queued (129 bytes when queued by the contract).
        withdraw_tx: Vec<u8>,
    },
}

impl PriorityEntry {
    pub fn serial(&self) -> u64 {
        match self {
            PriorityEntry::Deposit { serial, .. }
            | PriorityEntry::ForcedWithdrawal { serial, .. } => *serial,
        }
    }

    /// The packed entry bytes: 41 for a deposit, `17 + withdraw_tx.len()` for a forced
    /// withdrawal.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            PriorityEntry::Deposit {
                serial,
                depositor,
                recipient,
                amount,
            } => {
                let mut out = Vec::with_capacity(41);
                out.push(KIND_DEPOSIT);
                out.extend_from_slice(&serial.to_be_bytes());
                out.extend_from_slice(&depositor.0);
                out.extend_from_slice(&recipient.to_be_bytes());
                out.extend_from_slice(&amount.to_be_bytes());
                out
            }
            PriorityEntry::ForcedWithdrawal {
                serial,
                requested_at,
                withdraw_tx,
            } => {
                let mut out = Vec::with_capacity(17 + withdraw_tx.len());
                out.push(KIND_FORCED_WITHDRAWAL);
                out.extend_from_slice(&serial.to_be_bytes());
                out.extend_from_slice(&requested_at.to_be_bytes());
                out.extend_from_slice(withdraw_tx);
                out
            }
        }
    }

    /// `H_{s+1} = sha256(H_s ‖ entry_s)`.
    pub fn chain(&self, prev: &Hash32) -> Hash32 {
        sha256(&[prev, &self.encode()])
    }
}

/// The queue hash after `entries` (serials consecutive from the one `start` follows).
pub fn priority_chain<'a>(
    start: Hash32,
    entries: impl IntoIterator<Item = &'a PriorityEntry>,
) -> Hash32 {
    entries.into_iter().fold(start, |h, e| e.chain(&h))
}

/// A priority entry as a batch consumed it: the entry and the status its op published (a
/// deposit: 0 credited, 1 refunded; a forced withdrawal: 0 applied or the rule it broke).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumed {
    pub entry: PriorityEntry,
    pub status: u8,
}

impl Consumed {
    /// The bytes of the pubdata op (SPEC 10) the entry became: a deposit `4 ‖ seq ‖ to ‖ amount
    /// ‖ status` (22 bytes), a forced withdrawal `5 ‖ seq ‖ requested_at ‖ withdraw without its
    /// tag ‖ status` (146 bytes), integers little-endian.
    pub fn op_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(146);
        match &self.entry {
            PriorityEntry::Deposit {
                serial,
                recipient,
                amount,
                ..
            } => {
                out.push(KIND_DEPOSIT);
                out.extend_from_slice(&serial.to_le_bytes());
                out.extend_from_slice(&recipient.to_le_bytes());
                out.extend_from_slice(&amount.to_le_bytes());
            }
            PriorityEntry::ForcedWithdrawal {
                serial,
                requested_at,
                withdraw_tx,
            } => {
                out.push(L2_TAG_FORCED_WITHDRAW);
                out.extend_from_slice(&serial.to_le_bytes());
                out.extend_from_slice(&requested_at.to_le_bytes());
                out.extend_from_slice(withdraw_tx.get(1..).unwrap_or_default());
            }
        }
        out.push(self.status);
        out
    }
}

/// Tag of the L2 forced-withdraw transaction and op (SPEC 9, 10).
pub const L2_TAG_FORCED_WITHDRAW: u8 = 5;

/// The Poseidon commitment to the priority ops a batch consumed (SPEC 13.8), the link between
/// the leaf circuits, which apply the ops, and the priority circuit, which chains the L1 entries
/// with SHA-256: `p_0 = ZERO`, `p_{k+1} = hash_no_pad(p_k ‖ len_k ‖ chunks_k ‖ depositor_k)`
/// with `len_k` and `chunks_k` the byte length and 7-byte chunks (SPEC 10.1) of the op's
/// pubdata bytes ([`Consumed::op_bytes`], exactly what the pubdata chain absorbs) and
/// `depositor_k` the five big-endian u32 limbs of a deposit's depositor (nothing for a forced
/// withdrawal).
pub fn entries_commitment<'a>(consumed: impl IntoIterator<Item = &'a Consumed>) -> Digest {
    entries_commitment_from(Digest::ZERO, consumed)
}

/// [`entries_commitment`] continued from `start` (the value after earlier entries).
pub fn entries_commitment_from<'a>(
    start: Digest,
    consumed: impl IntoIterator<Item = &'a Consumed>,
) -> Digest {
    consumed.into_iter().fold(start, |p, c| {
        let depositor = match &c.entry {
            PriorityEntry::Deposit { depositor, .. } => Some(depositor),
            PriorityEntry::ForcedWithdrawal { .. } => None,
        };
        entries_absorb(p, &c.op_bytes(), depositor)
    })
}

/// One step of [`entries_commitment`]: `op` is the pubdata op's bytes, `depositor` a deposit's.
pub fn entries_absorb(p: Digest, op: &[u8], depositor: Option<&L1Address>) -> Digest {
    let mut input = p.elements().to_vec();
    input.push(F::from_canonical_usize(op.len()));
    input.extend(bytes_to_chunks(op));
    if let Some(d) = depositor {
        input.extend(d.to_field_elements());
    }
    hash_no_pad(&input)
}

/// The refunds of a batch's consumed deposits (status 1), chained as withdrawal records (SPEC
/// 10.3) with `from = 2^32 + seq` and the depositor as destination: what the payout circuit ties
/// its refund payouts to (SPEC 13.9).
pub fn refunds_commitment<'a>(consumed: impl IntoIterator<Item = &'a Consumed>) -> Digest {
    refunds_commitment_from(Digest::ZERO, consumed)
}

/// [`refunds_commitment`] continued from `start` (the value after earlier entries).
pub fn refunds_commitment_from<'a>(
    start: Digest,
    consumed: impl IntoIterator<Item = &'a Consumed>,
) -> Digest {
    consumed.into_iter().fold(start, |r, c| match &c.entry {
        PriorityEntry::Deposit {
            serial,
            depositor,
            amount,
            ..
        } if c.status == 1 => {
            let mut input = r.elements().to_vec();
            input.push(F::from_canonical_u64(REFUND_FROM_BASE + serial));
            input.extend(depositor.to_field_elements());
            input.push(F::from_canonical_u64(*amount));
            hash_no_pad(&input)
        }
        _ => r,
    })
}

/// The statement a batch is committed and proven under (SPEC 15.3): every field, in order.
/// As JSON (the prover's `verify --statement`, `batch_proofs.statement`), the 32-byte fields
/// are `0x`-prefixed hex strings and the address is `0x` + 40 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchStatement {
    pub chain_id: u64,
    pub rollup: L1Address,
    pub batch_number: u64,
    /// `Digest::to_bytes` of the state roots.
    #[serde(with = "hex32")]
    pub old_root: Hash32,
    #[serde(with = "hex32")]
    pub new_root: Hash32,
    /// `sha256` of the state diff published as calldata (SPEC 10.4).
    #[serde(with = "hex32")]
    pub diff_hash: Hash32,
    #[serde(with = "hex32")]
    pub payout_root: Hash32,
    pub first_priority_op: u64,
    pub next_priority_op: u64,
    #[serde(with = "hex32")]
    pub priority_hash_before: Hash32,
    #[serde(with = "hex32")]
    pub priority_hash_after: Hash32,
    pub timestamp: u64,
}

/// A 32-byte value as a `0x`-prefixed hex string.
mod hex32 {
    use super::Hash32;

    pub fn serialize<S: serde::Serializer>(v: &Hash32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v)))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Hash32, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(&text))
            .map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}

impl BatchStatement {
    /// The 252 packed bytes the contract hashes.
    pub fn encode(&self) -> [u8; STATEMENT_LEN] {
        let mut out = [0u8; STATEMENT_LEN];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&self.chain_id.to_be_bytes());
        put(&self.rollup.0);
        put(&self.batch_number.to_be_bytes());
        put(&self.old_root);
        put(&self.new_root);
        put(&self.diff_hash);
        put(&self.payout_root);
        put(&self.first_priority_op.to_be_bytes());
        put(&self.next_priority_op.to_be_bytes());
        put(&self.priority_hash_before);
        put(&self.priority_hash_after);
        put(&self.timestamp.to_be_bytes());
        out
    }

    /// `sha256(encode())`: `batchStatement[batchNumber]` on L1.
    pub fn hash(&self) -> Hash32 {
        sha256(&[&self.encode()])
    }

    /// The final proof's eight public inputs: the statement's big-endian 32-bit words.
    pub fn public_words(&self) -> [u32; 8] {
        words_of(&self.hash())
    }
}

/// A digest as eight big-endian u32 words.
pub fn words_of(h: &Hash32) -> [u32; 8] {
    core::array::from_fn(|i| {
        u32::from_be_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]])
    })
}

/// `sha256(diff)`: the statement's `diff_hash`.
pub fn diff_hash(diff: &[u8]) -> Hash32 {
    sha256(&[diff])
}

/// One L1 payout of a batch (SPEC 15.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payout {
    /// L2 account index, or `REFUND_FROM_BASE + seq` for the refund of deposit `seq`.
    pub from: u64,
    pub to: L1Address,
    pub amount: u64,
}

/// The leaf of payout `index` of batch `batch`: sha256 of 52 packed bytes.
pub fn payout_leaf(batch: u64, index: u64, p: &Payout) -> Hash32 {
    sha256(&[
        &batch.to_be_bytes(),
        &index.to_be_bytes(),
        &p.from.to_be_bytes(),
        &p.to.0,
        &p.amount.to_be_bytes(),
    ])
}

/// An inner node of the payout tree.
pub fn payout_node(left: &Hash32, right: &Hash32) -> Hash32 {
    sha256(&[left, right])
}

/// The payout tree of one batch (SPEC 15.5).
#[derive(Clone, Debug)]
pub struct PayoutTree {
    /// levels[0] = leaves padded with zeros to a power of two; the last level is the root.
    levels: Vec<Vec<Hash32>>,
}

impl PayoutTree {
    pub fn new(batch: u64, payouts: &[Payout]) -> PayoutTree {
        if payouts.is_empty() {
            return PayoutTree { levels: vec![] };
        }
        let width = payouts.len().next_power_of_two();
        let mut level: Vec<Hash32> = payouts
            .iter()
            .enumerate()
            .map(|(i, p)| payout_leaf(batch, i as u64, p))
            .collect();
        level.resize(width, [0; 32]);
        let mut levels = vec![level];
        while let Some(upper) = levels.last().filter(|l| l.len() > 1).map(|l| {
            l.chunks(2)
                .map(|pair| payout_node(&pair[0], &pair[1]))
                .collect::<Vec<_>>()
        }) {
            levels.push(upper);
        }
        PayoutTree { levels }
    }

    /// The root (zero for a batch without payouts).
    pub fn root(&self) -> Hash32 {
        self.levels.last().map_or([0; 32], |l| l[0])
    }

    /// The siblings of payout `index`, leaf level first.
    pub fn proof(&self, index: usize) -> Vec<Hash32> {
        let depth = self.levels.len().saturating_sub(1);
        (0..depth)
            .map(|l| self.levels[l][(index >> l) ^ 1])
            .collect()
    }
}

/// Checks a payout proof as `Rollup.claimWithdrawal` does.
pub fn verify_payout(root: &Hash32, leaf: &Hash32, index: u64, proof: &[Hash32]) -> bool {
    if *root == [0; 32] || proof.len() > 64 || (proof.len() < 64 && index >> proof.len() != 0) {
        return false;
    }
    let node = proof.iter().enumerate().fold(*leaf, |node, (l, sibling)| {
        if (index >> l) & 1 == 0 {
            payout_node(&node, sibling)
        } else {
            payout_node(sibling, &node)
        }
    });
    node == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payouts(n: usize) -> Vec<Payout> {
        (0..n)
            .map(|i| Payout {
                from: i as u64,
                to: L1Address([i as u8 + 1; 20]),
                amount: 1000 + i as u64,
            })
            .collect()
    }

    #[test]
    fn every_payout_proves_and_only_its_own() {
        assert_eq!(PayoutTree::new(1, &[]).root(), [0; 32]);
        for n in 1..=9 {
            let ps = payouts(n);
            let tree = PayoutTree::new(7, &ps);
            for (i, p) in ps.iter().enumerate() {
                let proof = tree.proof(i);
                assert_eq!(proof.len(), n.next_power_of_two().trailing_zeros() as usize);
                let leaf = payout_leaf(7, i as u64, p);
                assert!(verify_payout(&tree.root(), &leaf, i as u64, &proof));
                let mut other = *p;
                other.amount += 1;
                let forged = payout_leaf(7, i as u64, &other);
                assert!(!verify_payout(&tree.root(), &forged, i as u64, &proof));
                let wrong_batch = payout_leaf(8, i as u64, p);
                assert!(!verify_payout(&tree.root(), &wrong_batch, i as u64, &proof));
            }
        }
        let one = PayoutTree::new(3, &payouts(1));
        assert_eq!(one.root(), payout_leaf(3, 0, &payouts(1)[0]));
    }

    #[test]
    fn statement_layout_is_the_packed_fields_in_order() {
        let s = BatchStatement {
            chain_id: 0x0102030405060708,
            rollup: L1Address([0xaa; 20]),
            batch_number: 9,
            old_root: [1; 32],
            new_root: [2; 32],
            diff_hash: [3; 32],
            payout_root: [4; 32],
            first_priority_op: 5,
            next_priority_op: 6,
            priority_hash_before: [7; 32],
            priority_hash_after: [8; 32],
            timestamp: 10,
        };
        let e = s.encode();
        assert_eq!(&e[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&e[8..28], &[0xaa; 20]);
        assert_eq!(e[35], 9);
        assert_eq!(&e[36..68], &[1; 32]);
        assert_eq!(&e[164..172], &5u64.to_be_bytes());
        assert_eq!(&e[244..252], &10u64.to_be_bytes());
        // Every byte of the encoding reaches the hash.
        for i in 0..STATEMENT_LEN {
            let mut f = e;
            f[i] ^= 1;
            assert_ne!(sha256(&[&f]), s.hash(), "byte {i}");
        }
        assert_eq!(words_of(&s.hash())[0].to_be_bytes(), s.hash()[..4]);
    }

    #[test]
    fn consumed_ops_are_the_pubdata_ops() {
        use crate::account::{AccountIndex, Amount, Nonce, Timestamp};
        use crate::pubdata::{DepositStatus, ForcedStatus, PubdataOp};
        use crate::tx::{Domain, Transaction, UnsignedWithdraw};
        let d = Consumed {
            entry: PriorityEntry::Deposit {
                serial: 9,
                depositor: L1Address([1; 20]),
                recipient: 77,
                amount: 500,
            },
            status: 1,
        };
        let op = PubdataOp::Deposit {
            seq: 9,
            to: AccountIndex(77),
            amount: Amount::new(500).unwrap(),
            status: DepositStatus::Refunded,
        };
        assert_eq!(d.op_bytes(), op.to_bytes());
        let sk = crate::crypto::schnorr::SecretKey::from_bytes(&[3; 40]).unwrap();
        let w = UnsignedWithdraw {
            from: AccountIndex(2),
            to_l1: L1Address([4; 20]),
            amount: Amount::new(6).unwrap(),
            fee: Amount::new(1).unwrap(),
            nonce: Nonce::new(0).unwrap(),
            valid_until: Timestamp::new(99).unwrap(),
        }
        .sign(
            &Domain {
                chain_id: 1,
                rollup: [2; 20],
            },
            &sk,
        );
        let f = Consumed {
            entry: PriorityEntry::ForcedWithdrawal {
                serial: 10,
                requested_at: 50,
                withdraw_tx: Transaction::Withdraw(w).encode(),
            },
            status: 5,
        };
        let op = PubdataOp::ForcedWithdraw {
            seq: 10,
            requested_at: Timestamp::new(50).unwrap(),
            withdraw: w,
            status: ForcedStatus::BadNonce,
        };
        assert_eq!(f.op_bytes(), op.to_bytes());
        // Only the refunded deposit is a refund.
        let credited = Consumed {
            status: 0,
            ..d.clone()
        };
        assert_eq!(refunds_commitment([&credited, &f]), Digest::ZERO);
        assert_ne!(refunds_commitment([&d, &f]), Digest::ZERO);
        assert_ne!(entries_commitment([&d]), entries_commitment([&credited]));
    }

    #[test]
    fn entries_have_the_documented_lengths() {
        let d = PriorityEntry::Deposit {
            serial: 1,
            depositor: L1Address([9; 20]),
            recipient: 3,
            amount: 77,
        };
        assert_eq!(d.encode().len(), 41);
        assert_eq!(d.encode()[0], KIND_DEPOSIT);
        let f = PriorityEntry::ForcedWithdrawal {
            serial: 2,
            requested_at: 5,
            withdraw_tx: vec![3; WITHDRAW_TX_LEN],
        };
        assert_eq!(f.encode().len(), 146);
        let h = priority_chain([0; 32], [&d, &f]);
        assert_eq!(h, f.chain(&d.chain(&[0; 32])));
    }
}
