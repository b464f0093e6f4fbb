//! The diff circuit (SPEC 13.7): the state diff a batch publishes on L1 (SPEC 10.4) leads from
//! the old state root to the new one, and its bytes hash (SHA-256, as the contract hashes the
//! calldata) to the public `diff_hash`.
//!
//! Public inputs (16): `old_root` (4), `new_root` (4), `diff_hash` as eight big-endian u32
//! words.
//!
//! A circuit has room for `cap_old` records of accounts that existed before the batch and
//! `cap_new` records of accounts the batch created; a slot is used or not (a flag; used slots
//! come first in each group). What it proves:
//!
//! - **Header**: version 1, `count_before`, and `n` = the number of used slots, as the first
//!   13 bytes of the hashed message. `count_before` is the number of accounts before: the leaf
//!   at `count_before - 1` is an account and the leaf at `count_before` is empty under
//!   `old_root` (accounts are dense, SPEC 11.5), so a diff cannot misstate it, which the
//!   rebuild from L1 would reject (`COUNT_MISMATCH`). `1 <= count_before < 2^32`.
//! - **Records of existing accounts**, in order: `index < count_before`, strictly increasing;
//!   the old leaf (the account's key, its balance and nonce before, `ext = ZERO`) is under the
//!   running root; the new leaf has the record's balance and nonce and the same key. The record
//!   bytes (`index`, `balance`, `nonce`, little-endian) are appended to the message.
//! - **Records of new accounts**: the `j`-th has index `count_before + j` (so new accounts are
//!   consecutive, from the first free index), its old leaf is empty, its new leaf holds the
//!   record's key (canonical 64-bit coefficients), balance and nonce. Bytes: `index`,
//!   `balance`, `nonce`, `pubkey`.
//! - The root after the last record is `new_root`. Every account not listed is unchanged (the
//!   updates share siblings with the running tree), so applying the diff to the old state gives
//!   exactly the new one; balances and nonces are below `2^63` by their range checks.
//!
//! Not checked: that a new key is not already registered (`DUPLICATE_KEY`, as in the payment
//! circuit, SPEC 13.6).
//!
//! Cost (`tests::rows_per_record`): one SHA-256 compression per record slot plus the byte
//! placement of [`ByteStream`], two Merkle paths (64 Poseidon rows) and two leaf hashes.

use anyhow::{ensure, Context};
use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;
use serde::{Deserialize, Serialize};
use state::account::Account;
use state::diff::StateDiff;
use state::hash::Digest;
use state::smt::{SparseMerkleTree, DEPTH};

use crate::gadgets::range::{range_check_u63, range_check_u64, U63Target};
use crate::gadgets::sha256::stream::ByteStream;
use crate::gadgets::smt::{compute_root, leaf_hash, select_hash, zero_digest, MerklePathTarget};
use crate::{C, D, F};

/// Number of public inputs.
pub const DIFF_PUBLIC_INPUTS: usize = 16;

/// What a diff proof states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStatement {
    pub old_root: Digest,
    pub new_root: Digest,
    /// `sha256` of the encoded diff.
    pub diff_hash: [u8; 32],
}

impl DiffStatement {
    pub fn to_fields(&self) -> Vec<F> {
        let mut v = self.old_root.elements().to_vec();
        v.extend_from_slice(&self.new_root.elements());
        v.extend(
            state::settlement::words_of(&self.diff_hash)
                .iter()
                .map(|&w| F::from_canonical_u32(w)),
        );
        v
    }

    /// The inverse of [`DiffStatement::to_fields`] (`None` for another length or a word that
    /// is not below `2^32`).
    pub fn from_fields(v: &[F]) -> Option<DiffStatement> {
        if v.len() != DIFF_PUBLIC_INPUTS {
            return None;
        }
        let d = |o: usize| Digest([v[o], v[o + 1], v[o + 2], v[o + 3]]);
        Some(DiffStatement {
            old_root: d(0),
            new_root: d(4),
            diff_hash: crate::circuits::public::hash32_of_fields(&v[8..16])?,
        })
    }
}

/// An account's key as the five leaf elements (canonical u64 values).
type Key = [u64; 5];

/// One record slot of an existing account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OldSlot {
    pub used: bool,
    pub index: u32,
    pub key: Key,
    pub balance_before: u64,
    pub nonce_before: u64,
    pub balance: u64,
    pub nonce: u64,
    /// Against the running tree (after the previous records).
    pub siblings: Vec<Digest>,
}

/// One record slot of a new account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSlot {
    pub used: bool,
    pub key: Key,
    pub balance: u64,
    pub nonce: u64,
    pub siblings: Vec<Digest>,
}

/// Everything the circuit needs besides the public inputs: plain data, so that a test (or an
/// attacker) can build or edit one by hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffWitness {
    pub count_before: u32,
    /// The account at `count_before - 1` and its path under the old root.
    pub last_key: Key,
    pub last_balance: u64,
    pub last_nonce: u64,
    pub last_ext: Digest,
    pub last_siblings: Vec<Digest>,
    /// The path of the empty leaf at `count_before` under the old root.
    pub free_siblings: Vec<Digest>,
    pub old: Vec<OldSlot>,
    pub new: Vec<NewSlot>,
}

fn key_of(a: &Account) -> Key {
    a.pubkey.to_field_elements().map(|e| e.to_canonical_u64())
}

fn leaf_of(key: &Key, balance: u64, nonce: u64) -> Digest {
    let mut e: Vec<F> = key.iter().map(|&k| F::from_canonical_u64(k)).collect();
    e.extend([
        F::from_canonical_u64(balance),
        F::from_canonical_u64(nonce),
        F::ZERO,
    ]);
    e.extend([F::ZERO; 4]);
    state::hash::hash_no_pad(&e)
}

/// The witness and statement of `diff` applied to the accounts `before` (the state before the
/// batch), for a circuit with room for `cap_old` and `cap_new` records.
pub fn diff_witness(
    before: &[Account],
    diff: &StateDiff,
    cap_old: usize,
    cap_new: usize,
) -> anyhow::Result<(DiffWitness, DiffStatement)> {
    let count = diff.count_before();
    ensure!(
        count == before.len() as u64,
        "the diff starts from {count} accounts, the state has {}",
        before.len()
    );
    ensure!(
        (1..1 << 32).contains(&count),
        "count_before {count} is out of the circuit's range"
    );
    let mut tree = SparseMerkleTree::new();
    let leaves: Vec<(u32, Digest)> = before
        .iter()
        .enumerate()
        .map(|(i, a)| (i as u32, a.leaf_hash()))
        .collect();
    tree.update_batch(&leaves);
    let old_root = tree.root();
    let last = &before[count as usize - 1];
    let mut w = DiffWitness {
        count_before: count as u32,
        last_key: key_of(last),
        last_balance: last.balance.get(),
        last_nonce: last.nonce.get(),
        last_ext: last.ext,
        last_siblings: tree.proof(count as u32 - 1).siblings.to_vec(),
        free_siblings: tree.proof(count as u32).siblings.to_vec(),
        old: Vec::new(),
        new: Vec::new(),
    };
    for r in diff.records() {
        let i = r.index.0;
        let siblings = tree.proof(i).siblings.to_vec();
        match r.pubkey {
            None => {
                let a = before
                    .get(i as usize)
                    .with_context(|| format!("account {i} is not in the state"))?;
                let key = key_of(a);
                w.old.push(OldSlot {
                    used: true,
                    index: i,
                    key,
                    balance_before: a.balance.get(),
                    nonce_before: a.nonce.get(),
                    balance: r.balance.get(),
                    nonce: r.nonce.get(),
                    siblings,
                });
                tree.set(i, leaf_of(&key, r.balance.get(), r.nonce.get()));
            }
            Some(k) => {
                let key = k.to_field_elements().map(|e| e.to_canonical_u64());
                w.new.push(NewSlot {
                    used: true,
                    key,
                    balance: r.balance.get(),
                    nonce: r.nonce.get(),
                    siblings,
                });
                tree.set(i, leaf_of(&key, r.balance.get(), r.nonce.get()));
            }
        }
    }
    ensure!(
        w.old.len() <= cap_old && w.new.len() <= cap_new,
        "{} + {} records do not fit a circuit for {cap_old} + {cap_new}",
        w.old.len(),
        w.new.len()
    );
    let unused_path = vec![Digest::ZERO; DEPTH];
    w.old.resize(
        cap_old,
        OldSlot {
            used: false,
            index: 0,
            key: [0; 5],
            balance_before: 0,
            nonce_before: 0,
            balance: 0,
            nonce: 0,
            siblings: unused_path.clone(),
        },
    );
    w.new.resize(
        cap_new,
        NewSlot {
            used: false,
            key: [0; 5],
            balance: 0,
            nonce: 0,
            siblings: unused_path,
        },
    );
    let statement = DiffStatement {
        old_root,
        new_root: tree.root(),
        diff_hash: state::settlement::diff_hash(&diff.encode()),
    };
    Ok((w, statement))
}

struct OldTargets {
    used: BoolTarget,
    index: Target,
    key: [Target; 5],
    balance_before: Target,
    nonce_before: Target,
    balance: Target,
    nonce: Target,
    path: MerklePathTarget,
}

struct NewTargets {
    used: BoolTarget,
    key: [Target; 5],
    balance: Target,
    nonce: Target,
    path: MerklePathTarget,
}

struct Targets {
    count_before: Target,
    last_key: [Target; 5],
    last_balance: Target,
    last_nonce: Target,
    last_ext: HashOutTarget,
    last_path: MerklePathTarget,
    free_path: MerklePathTarget,
    old: Vec<OldTargets>,
    new: Vec<NewTargets>,
}

/// The little-endian bytes of the value with little-endian `bits` (8 per byte).
fn le_bytes(b: &mut CircuitBuilder<F, D>, bits: &[BoolTarget]) -> Vec<Target> {
    bits.chunks(8).map(|c| b.le_sum(c.iter())).collect()
}

/// The 20 bytes every record starts with: `index`, `balance`, `nonce`, little-endian.
fn record_bytes(
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

/// `H(key, balance, nonce, 0, ZERO ext)`: the leaf of an account diff version 1 describes.
fn account_leaf(
    b: &mut CircuitBuilder<F, D>,
    key: &[Target; 5],
    balance: Target,
    nonce: Target,
) -> HashOutTarget {
    let zero = b.zero();
    leaf_hash(
        b,
        &[
            key[0], key[1], key[2], key[3], key[4], balance, nonce, zero, zero, zero, zero, zero,
        ],
    )
}

/// Replaces `old_leaf` by `new_leaf` at `bits` if `used` (the old leaf must then be under
/// `root`); returns the root after.
fn gated_update(
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

/// The diff circuit for `cap_old` + `cap_new` record slots.
pub struct DiffCircuit {
    pub data: CircuitData<F, C, D>,
    targets: Targets,
    pub cap_old: usize,
    pub cap_new: usize,
}

impl DiffCircuit {
    pub fn build(cap_old: usize, cap_new: usize) -> DiffCircuit {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let (targets, _) = Self::define(&mut b, cap_old, cap_new);
        DiffCircuit {
            data: b.build::<C>(),
            targets,
            cap_old,
            cap_new,
        }
    }

    /// Adds the constraints to `b`; returns the targets and the number of rows before the
    /// record slots, after the old slots and after the new slots (for the cost report).
    fn define(
        b: &mut CircuitBuilder<F, D>,
        cap_old: usize,
        cap_new: usize,
    ) -> (Targets, [usize; 3]) {
        let zero = b.zero();
        let one = b.one();
        let old_root = b.add_virtual_hash();
        let new_root = b.add_virtual_hash();

        // count_before: the last account below it exists, the leaf at it is empty.
        let count_before = b.add_virtual_target();
        let count_bits = b.split_le(count_before, 32);
        let last_index = b.sub(count_before, one);
        let last_bits = b.split_le(last_index, 32);
        let last_key: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
        let last_balance = b.add_virtual_target();
        let last_nonce = b.add_virtual_target();
        let last_ext = b.add_virtual_hash();
        let last_leaf = leaf_hash(
            b,
            &[
                last_key[0],
                last_key[1],
                last_key[2],
                last_key[3],
                last_key[4],
                last_balance,
                last_nonce,
                zero,
                last_ext.elements[0],
                last_ext.elements[1],
                last_ext.elements[2],
                last_ext.elements[3],
            ],
        );
        let last_path = MerklePathTarget::new(b);
        let r = compute_root(b, last_leaf, &last_bits, &last_path);
        b.connect_hashes(r, old_root);
        let free_path = MerklePathTarget::new(b);
        let empty = zero_digest(b);
        let r = compute_root(b, empty, &count_bits, &free_path);
        b.connect_hashes(r, old_root);

        // The header; `n` is filled in once the used flags are known.
        let n = b.add_virtual_target();
        let n_bits = b.split_le(n, 32);
        let mut header = vec![b.one()];
        header.extend(le_bytes(b, &count_bits));
        header.extend(vec![zero; 4]);
        header.extend(le_bytes(b, &n_bits));
        let mut stream = ByteStream::new(b, &header);
        let start_rows = b.num_gates();

        let mut root = old_root;
        let mut used_count = zero;
        let mut prev_used = b._true();
        let mut prev_index: Option<Target> = None;
        let mut old = Vec::with_capacity(cap_old);
        for _ in 0..cap_old {
            let used = b.add_virtual_bool_target_safe();
            // Used slots first.
            let p = b.mul(used.target, prev_used.target);
            b.connect(p, used.target);
            prev_used = used;
            used_count = b.add(used_count, used.target);

            let index = b.add_virtual_target();
            let index_bits = b.split_le(index, 32);
            // index < count_before, and strictly above the previous record's index.
            let below = b.sub(last_index, index);
            let below = b.mul(used.target, below);
            b.range_check(below, 32);
            if let Some(prev) = prev_index {
                let gap = b.sub(index, prev);
                let gap = b.sub(gap, one);
                let gap = b.mul(used.target, gap);
                b.range_check(gap, 32);
            }
            prev_index = Some(index);

            let key: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
            let balance_before = b.add_virtual_target();
            let nonce_before = b.add_virtual_target();
            let balance = b.add_virtual_target();
            let balance_u = range_check_u63(b, balance);
            let nonce = b.add_virtual_target();
            let nonce_u = range_check_u63(b, nonce);
            let path = MerklePathTarget::new(b);
            let old_leaf = account_leaf(b, &key, balance_before, nonce_before);
            let new_leaf = account_leaf(b, &key, balance, nonce);
            root = gated_update(b, used, root, old_leaf, new_leaf, &index_bits, &path);

            let bytes = record_bytes(b, &index_bits, &balance_u, &nonce_u);
            stream.append(b, &bytes, used);
            old.push(OldTargets {
                used,
                index,
                key,
                balance_before,
                nonce_before,
                balance,
                nonce,
                path,
            });
        }
        let old_rows = b.num_gates();

        let mut prev_used = b._true();
        let mut new = Vec::with_capacity(cap_new);
        for j in 0..cap_new {
            let used = b.add_virtual_bool_target_safe();
            let p = b.mul(used.target, prev_used.target);
            b.connect(p, used.target);
            prev_used = used;
            used_count = b.add(used_count, used.target);

            // The j-th new account is at count_before + j (below 2^32: the split checks it).
            let index = b.add_const(count_before, F::from_canonical_usize(j));
            let index_bits = b.split_le(index, 32);
            let key: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
            let balance = b.add_virtual_target();
            let balance_u = range_check_u63(b, balance);
            let nonce = b.add_virtual_target();
            let nonce_u = range_check_u63(b, nonce);
            let path = MerklePathTarget::new(b);
            let new_leaf = account_leaf(b, &key, balance, nonce);
            let empty = zero_digest(b);
            root = gated_update(b, used, root, empty, new_leaf, &index_bits, &path);

            let mut bytes = record_bytes(b, &index_bits, &balance_u, &nonce_u);
            for &k in &key {
                let bits = range_check_u64(b, k);
                bytes.extend(le_bytes(b, &bits));
            }
            stream.append(b, &bytes, used);
            new.push(NewTargets {
                used,
                key,
                balance,
                nonce,
                path,
            });
        }
        let new_rows = b.num_gates();

        b.connect(n, used_count);
        b.connect_hashes(root, new_root);
        let digest = stream.finish(b);
        b.register_public_inputs(&old_root.elements);
        b.register_public_inputs(&new_root.elements);
        b.register_public_inputs(&digest);
        let targets = Targets {
            count_before,
            last_key,
            last_balance,
            last_nonce,
            last_ext,
            last_path,
            free_path,
            old,
            new,
        };
        (targets, [start_rows, old_rows, new_rows])
    }

    /// Proves `w` for `statement` (the public inputs are checked against it).
    pub fn prove(
        &self,
        w: &DiffWitness,
        statement: &DiffStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        ensure!(
            w.old.len() == self.cap_old && w.new.len() == self.cap_new,
            "the witness has {} + {} slots, the circuit {} + {}",
            w.old.len(),
            w.new.len(),
            self.cap_old,
            self.cap_new
        );
        let t = &self.targets;
        let mut pw = PartialWitness::new();
        let f = F::from_canonical_u64;
        let set_key = |pw: &mut PartialWitness<F>, ts: &[Target; 5], k: &Key| {
            for (t, v) in ts.iter().zip(k) {
                pw.set_target(*t, F::from_noncanonical_u64(*v))?;
            }
            anyhow::Ok(())
        };
        pw.set_target(t.count_before, f(u64::from(w.count_before)))?;
        set_key(&mut pw, &t.last_key, &w.last_key)?;
        pw.set_target(t.last_balance, f(w.last_balance))?;
        pw.set_target(t.last_nonce, f(w.last_nonce))?;
        pw.set_hash_target(t.last_ext, w.last_ext.into())?;
        t.last_path.set(&mut pw, &w.last_siblings)?;
        t.free_path.set(&mut pw, &w.free_siblings)?;
        for (ts, s) in t.old.iter().zip(&w.old) {
            pw.set_bool_target(ts.used, s.used)?;
            pw.set_target(ts.index, f(u64::from(s.index)))?;
            set_key(&mut pw, &ts.key, &s.key)?;
            pw.set_target(
                ts.balance_before,
                F::from_noncanonical_u64(s.balance_before),
            )?;
            pw.set_target(ts.nonce_before, F::from_noncanonical_u64(s.nonce_before))?;
            pw.set_target(ts.balance, F::from_noncanonical_u64(s.balance))?;
            pw.set_target(ts.nonce, F::from_noncanonical_u64(s.nonce))?;
            ts.path.set(&mut pw, &s.siblings)?;
        }
        for (ts, s) in t.new.iter().zip(&w.new) {
            pw.set_bool_target(ts.used, s.used)?;
            set_key(&mut pw, &ts.key, &s.key)?;
            pw.set_target(ts.balance, F::from_noncanonical_u64(s.balance))?;
            pw.set_target(ts.nonce, F::from_noncanonical_u64(s.nonce))?;
            ts.path.set(&mut pw, &s.siblings)?;
        }
        let proof = self.data.prove(pw)?;
        ensure!(
            proof.public_inputs == statement.to_fields(),
            "the proof states another diff than the one expected"
        );
        Ok(proof)
    }

    pub fn verify(&self, proof: ProofWithPublicInputs<F, C, D>) -> anyhow::Result<()> {
        self.data.verify(proof)
    }
}

#[cfg(test)]
mod tests;
