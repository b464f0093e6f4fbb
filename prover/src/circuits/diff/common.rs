//! What the version 1 and grouped diff circuits share: account leaves and keys, the record
//! bytes, the gated tree update, where a chunk starts ([`ChunkStart`], with the count opening
//! at the start of a batch), the order of existing records and the chunk's public inputs
//! ([`DiffEnds`]).

use anyhow::ensure;
use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use serde::{Deserialize, Serialize};
use state::account::Account;
use state::hash::Digest;
use state::smt::SparseMerkleTree;

use crate::gadgets::range::U63Target;
use crate::gadgets::sha256::stream::{ByteStream, StreamState, StreamTargets};
use crate::gadgets::smt::{compute_root, leaf_hash, select_hash, zero_digest, MerklePathTarget};
use crate::{D, F};

/// An account's key as the five leaf elements (canonical u64 values).
pub(crate) type Key = [u64; 5];

/// What proves `count_before` against the batch's old root (SPEC 13.7), in every chunk of both
/// diff circuits (this one and the grouped one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountWitness {
    pub count_before: u32,
    /// The account at `count_before - 1` and its path under the batch's old root.
    pub last_key: Key,
    pub last_balance: u64,
    pub last_nonce: u64,
    pub last_ext: Digest,
    pub last_siblings: Vec<Digest>,
    /// The path of the empty leaf at `count_before` under the batch's old root.
    pub free_siblings: Vec<Digest>,
}

/// Where a chunk of either diff circuit starts: the batch's old root with `count_before`
/// proven under it, and the running values the chunk before left (free in the chunk, tied by
/// the merges to the chunk before and by the settlement circuit to the start of a batch).
/// Flattened into both witnesses, so a stored witness keeps its JSON shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkStart {
    pub batch_old_root: Digest,
    #[serde(flatten)]
    pub count: CountWitness,
    pub root_in: Digest,
    pub stream_in: StreamState,
    pub records_in: u64,
    pub lower_in: u64,
    pub new_in: u64,
    pub started_in: bool,
}

/// The targets of a [`ChunkStart`], and the SHA-256 stream resumed from `stream_in`.
pub(crate) struct StartTargets {
    pub batch_old_root: HashOutTarget,
    pub count: CountTargets,
    pub root_in: HashOutTarget,
    pub stream_in: StreamTargets,
    pub records_in: Target,
    pub lower_in: Target,
    pub new_in: Target,
    pub started_in: BoolTarget,
}

impl StartTargets {
    /// Allocates the start (the order of allocation is part of both circuits' definitions:
    /// changing it changes their cache keys' circuits) and resumes the byte stream from it.
    pub(crate) fn define(b: &mut CircuitBuilder<F, D>) -> (StartTargets, ByteStream) {
        let batch_old_root = b.add_virtual_hash();
        // count_before: the last account below it exists, the leaf at it is empty, under the
        // batch's old root (every chunk checks it against the same shared root).
        let count = CountTargets::define(b, batch_old_root);
        let root_in = b.add_virtual_hash();
        let stream_in = StreamTargets::virtual_state(b);
        let stream = ByteStream::resume(b, &stream_in);
        let start = StartTargets {
            batch_old_root,
            count,
            root_in,
            stream_in,
            records_in: b.add_virtual_target(),
            lower_in: b.add_virtual_target(),
            new_in: b.add_virtual_target(),
            started_in: b.add_virtual_bool_target_safe(),
        };
        (start, stream)
    }

    pub(crate) fn set(&self, pw: &mut PartialWitness<F>, w: &ChunkStart) -> anyhow::Result<()> {
        let f = F::from_noncanonical_u64;
        pw.set_hash_target(self.batch_old_root, w.batch_old_root.into())?;
        self.count.set(pw, &w.count)?;
        pw.set_hash_target(self.root_in, w.root_in.into())?;
        for (t, v) in self.stream_in.to_vec().iter().zip(w.stream_in.to_fields()) {
            pw.set_target(*t, v)?;
        }
        pw.set_target(self.records_in, f(w.records_in))?;
        pw.set_target(self.lower_in, f(w.lower_in))?;
        pw.set_target(self.new_in, f(w.new_in))?;
        pw.set_bool_target(self.started_in, w.started_in)?;
        Ok(())
    }
}

/// The tree of the accounts before a batch whose diff says `count` accounts, and the
/// [`CountWitness`] of that count; refuses a count the state does not have or the circuits
/// cannot state (`1 <= count < 2^32`).
pub(crate) fn batch_start(
    accounts: &[Account],
    count: u64,
) -> anyhow::Result<(SparseMerkleTree, CountWitness)> {
    ensure!(
        count == accounts.len() as u64,
        "the diff starts from {count} accounts, the state has {}",
        accounts.len()
    );
    ensure!(
        (1..1 << 32).contains(&count),
        "count_before {count} is out of the circuit's range"
    );
    let count_before = count as u32;
    let mut tree = SparseMerkleTree::new();
    let leaves: Vec<(u32, Digest)> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (i as u32, a.leaf_hash()))
        .collect();
    tree.update_batch(&leaves);
    let last = &accounts[count as usize - 1];
    let witness = CountWitness {
        count_before,
        last_key: key_of(last),
        last_balance: last.balance.get(),
        last_nonce: last.nonce.get(),
        last_ext: last.ext,
        last_siblings: tree.proof(count_before - 1).siblings.to_vec(),
        free_siblings: tree.proof(count_before).siblings.to_vec(),
    };
    Ok((tree, witness))
}

/// `lower <= index <= last_index` when `on` (both differences below `2^32`): records of
/// existing accounts come in increasing order and below `count_before` (`last_index` is
/// `count_before - 1`, `lower` one past the previous record's index).
pub(crate) fn in_order(
    b: &mut CircuitBuilder<F, D>,
    on: BoolTarget,
    index: Target,
    lower: Target,
    last_index: Target,
) {
    let below = b.sub(last_index, index);
    let below = b.mul(on.target, below);
    b.range_check(below, 32);
    let above = b.sub(index, lower);
    let above = b.mul(on.target, above);
    b.range_check(above, 32);
}

/// A diff chunk's running values at its two ends: where it started ([`StartTargets`]) and
/// where it ends, registered as public inputs in the order of [`DiffStatement::to_fields`]
/// (`at`): the one place a diff circuit writes that layout (the grouped circuit appends its own
/// four after it).
pub(crate) struct DiffEnds<'a> {
    pub start: &'a StartTargets,
    pub root_out: HashOutTarget,
    pub stream_out: &'a StreamTargets,
    pub records_out: Target,
    pub lower_out: Target,
    pub new_out: Target,
    pub started_out: BoolTarget,
}

impl DiffEnds<'_> {
    pub(crate) fn register(&self, b: &mut CircuitBuilder<F, D>) {
        let s = self.start;
        b.register_public_inputs(&s.batch_old_root.elements);
        b.register_public_input(s.count.count_before);
        for root in [s.root_in, self.root_out] {
            b.register_public_inputs(&root.elements);
        }
        for stream in [&s.stream_in, self.stream_out] {
            b.register_public_inputs(&stream.to_vec());
        }
        for pair in [
            [s.records_in, self.records_out],
            [s.lower_in, self.lower_out],
            [s.new_in, self.new_out],
        ] {
            b.register_public_inputs(&pair);
        }
        for started in [s.started_in, self.started_out] {
            b.register_public_input(started.target);
        }
    }
}

/// The targets of a [`CountWitness`], constrained against `batch_old_root`: the leaf at
/// `count_before - 1` is an account (a leaf hash of witnessed fields) and the leaf at
/// `count_before` is empty.
pub(crate) struct CountTargets {
    pub count_before: Target,
    /// `count_before - 1`, the highest index an existing account's record may have.
    pub last_index: Target,
    last_key: [Target; 5],
    last_balance: Target,
    last_nonce: Target,
    last_ext: HashOutTarget,
    last_path: MerklePathTarget,
    free_path: MerklePathTarget,
}

impl CountTargets {
    pub fn define(b: &mut CircuitBuilder<F, D>, batch_old_root: HashOutTarget) -> CountTargets {
        let one = b.one();
        let count_before = b.add_virtual_target();
        let count_bits = b.split_le(count_before, 32);
        let last_index = b.sub(count_before, one);
        let last_bits = b.split_le(last_index, 32);
        let last_key: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
        let last_balance = b.add_virtual_target();
        let last_nonce = b.add_virtual_target();
        let last_ext = b.add_virtual_hash();
        let last_leaf = account_leaf(b, &last_key, last_balance, last_nonce, &last_ext);
        let last_path = MerklePathTarget::new(b);
        let r = compute_root(b, last_leaf, &last_bits, &last_path);
        b.connect_hashes(r, batch_old_root);
        let free_path = MerklePathTarget::new(b);
        let empty = zero_digest(b);
        let r = compute_root(b, empty, &count_bits, &free_path);
        b.connect_hashes(r, batch_old_root);
        CountTargets {
            count_before,
            last_index,
            last_key,
            last_balance,
            last_nonce,
            last_ext,
            last_path,
            free_path,
        }
    }

    pub fn set(&self, pw: &mut PartialWitness<F>, w: &CountWitness) -> anyhow::Result<()> {
        let f = F::from_noncanonical_u64;
        pw.set_target(self.count_before, f(u64::from(w.count_before)))?;
        for (t, v) in self.last_key.iter().zip(&w.last_key) {
            pw.set_target(*t, f(*v))?;
        }
        pw.set_target(self.last_balance, f(w.last_balance))?;
        pw.set_target(self.last_nonce, f(w.last_nonce))?;
        pw.set_hash_target(self.last_ext, w.last_ext.into())?;
        self.last_path.set(pw, &w.last_siblings)?;
        self.free_path.set(pw, &w.free_siblings)
    }
}

pub(crate) fn key_of(a: &Account) -> Key {
    a.pubkey.to_field_elements().map(|e| e.to_canonical_u64())
}

pub(crate) fn leaf_of(key: &Key, balance: u64, nonce: u64, ext: Digest) -> Digest {
    let mut e: Vec<F> = key.iter().map(|&k| F::from_canonical_u64(k)).collect();
    e.extend([
        F::from_canonical_u64(balance),
        F::from_canonical_u64(nonce),
        F::ZERO,
    ]);
    e.extend(ext.elements());
    state::hash::hash_no_pad(&e)
}

/// The 20 bytes every record starts with (`index`, `balance`, `nonce`, little-endian).
pub(crate) fn record_prefix(index: u32, balance: u64, nonce: u64) -> Vec<u8> {
    let mut v = index.to_le_bytes().to_vec();
    v.extend_from_slice(&balance.to_le_bytes());
    v.extend_from_slice(&nonce.to_le_bytes());
    v
}

/// The little-endian bytes of the value with little-endian `bits` (8 per byte).
pub(crate) fn le_bytes(b: &mut CircuitBuilder<F, D>, bits: &[BoolTarget]) -> Vec<Target> {
    bits.chunks(8).map(|c| b.le_sum(c.iter())).collect()
}

/// The 20 bytes every record starts with: `index`, `balance`, `nonce`, little-endian.
pub(crate) fn record_bytes(
    b: &mut CircuitBuilder<F, D>,
    index_bits: &[BoolTarget],
    balance: &U63Target,
    nonce: &U63Target,
) -> Vec<Target> {
    let mut bytes = le_bytes(b, index_bits);
    let bits = balance.bits64(b);
    bytes.extend(le_bytes(b, &bits));
    let bits = nonce.bits64(b);
    bytes.extend(le_bytes(b, &bits));
    bytes
}

/// `H(key, balance, nonce, 0, ext)`: an account's leaf (SPEC 6).
pub(crate) fn account_leaf(
    b: &mut CircuitBuilder<F, D>,
    key: &[Target; 5],
    balance: Target,
    nonce: Target,
    ext: &HashOutTarget,
) -> HashOutTarget {
    let zero = b.zero();
    let e = ext.elements;
    leaf_hash(
        b,
        &[
            key[0], key[1], key[2], key[3], key[4], balance, nonce, zero, e[0], e[1], e[2], e[3],
        ],
    )
}

/// Replaces `old_leaf` by `new_leaf` at `bits` if `used` (the old leaf must then be under
/// `root`); returns the root after.
pub(crate) fn gated_update(
    b: &mut CircuitBuilder<F, D>,
    used: BoolTarget,
    root: HashOutTarget,
    old_leaf: HashOutTarget,
    new_leaf: HashOutTarget,
    bits: &[BoolTarget],
    path: &MerklePathTarget,
) -> HashOutTarget {
    let before = compute_root(b, old_leaf, bits, path);
    let after = compute_root(b, new_leaf, bits, path);
    for (x, y) in before.elements.iter().zip(root.elements) {
        let d = b.sub(*x, y);
        let p = b.mul(used.target, d);
        b.assert_zero(p);
    }
    select_hash(b, used, after, root)
}
