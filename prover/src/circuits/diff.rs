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
//!   the old leaf (the account's key, its balance and nonce before, its `ext`) is under the
//!   running root; the new leaf has the record's balance and nonce and the same key and `ext`:
//!   a version 1 record leaves an account's agent fields as they are, as the rebuild from L1
//!   does (`AccountTree::apply`), so a batch of plain payments that touches a stream payer, a
//!   revenue-share account or an agent's owner is provable. The record bytes (`index`,
//!   `balance`, `nonce`, little-endian) are appended to the message.
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
use state::diff::{AccountRecord, StateDiff};
use state::hash::Digest;
use state::smt::{SparseMerkleTree, DEPTH};

use crate::gadgets::range::{range_check_u63, range_check_u64, U63Target};
use crate::gadgets::sha256::stream::{ByteStream, StreamState, StreamTargets, STREAM_STATE_LEN};
use crate::gadgets::smt::{compute_root, leaf_hash, select_hash, zero_digest, MerklePathTarget};
use crate::{C, D, F};

/// Number of public inputs.
pub const DIFF_PUBLIC_INPUTS: usize = 73;

/// Version of the diff circuit's definition (part of its cache key): bump it when its
/// constraints change.
pub const DIFF_VERSION: &str = "diff-v3";

/// Where each value is in a diff proof's public inputs.
pub mod at {
    pub const BATCH_OLD_ROOT: usize = 0;
    pub const COUNT_BEFORE: usize = 4;
    pub const ROOT_IN: usize = 5;
    pub const ROOT_OUT: usize = 9;
    pub const STREAM_IN: usize = 13;
    pub const STREAM_OUT: usize = 39;
    pub const RECORDS_IN: usize = 65;
    pub const RECORDS_OUT: usize = 66;
    pub const LOWER_IN: usize = 67;
    pub const LOWER_OUT: usize = 68;
    pub const NEW_IN: usize = 69;
    pub const NEW_OUT: usize = 70;
    pub const STARTED_IN: usize = 71;
    pub const STARTED_OUT: usize = 72;
}

/// How diff proofs of consecutive chunks chain (SPEC 13.12).
pub fn diff_layout() -> crate::circuits::chain::ChainLayout {
    use crate::circuits::chain::{ChainLayout, Link};
    ChainLayout {
        len: DIFF_PUBLIC_INPUTS,
        links: vec![
            Link::new(at::ROOT_IN, at::ROOT_OUT, 4),
            Link::new(at::STREAM_IN, at::STREAM_OUT, STREAM_STATE_LEN),
            Link::new(at::RECORDS_IN, at::RECORDS_OUT, 1),
            Link::new(at::LOWER_IN, at::LOWER_OUT, 1),
            Link::new(at::NEW_IN, at::NEW_OUT, 1),
            Link::new(at::STARTED_IN, at::STARTED_OUT, 1),
        ],
        shared: vec![std::ops::Range {
            start: at::BATCH_OLD_ROOT,
            end: at::ROOT_IN,
        }],
        derived: 0..0,
    }
}

/// The 13 header bytes of an encoded diff (SPEC 10.4): version 1, `count_before` as a
/// little-endian u64, the record count as a little-endian u32.
pub fn diff_header(count_before: u32, records: u32) -> Vec<u8> {
    diff_header_of(1, count_before, records)
}

/// The 13 header bytes of an encoded diff of `version` (1 or 4: the same shape).
pub fn diff_header_of(version: u8, count_before: u32, records: u32) -> Vec<u8> {
    let mut h = vec![version];
    h.extend_from_slice(&u64::from(count_before).to_le_bytes());
    h.extend_from_slice(&records.to_le_bytes());
    h
}

/// What a diff proof states: one chunk of a batch's records, with every running value before
/// (`_in`) and after (`_out`) it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStatement {
    /// The state root before the batch (the one `count_before` is checked against).
    pub batch_old_root: Digest,
    pub count_before: u32,
    pub root_in: Digest,
    pub root_out: Digest,
    /// The SHA-256 stream of the encoded diff before and after the chunk's records.
    pub stream_in: StreamState,
    pub stream_out: StreamState,
    pub records_in: u64,
    pub records_out: u64,
    /// The least index the next record of an existing account may have.
    pub lower_in: u64,
    pub lower_out: u64,
    /// New accounts so far.
    pub new_in: u64,
    pub new_out: u64,
    /// Whether a new account's record was written (existing accounts come first).
    pub started_in: bool,
    pub started_out: bool,
}

impl DiffStatement {
    pub fn to_fields(&self) -> Vec<F> {
        let mut v = self.batch_old_root.elements().to_vec();
        v.push(F::from_canonical_u32(self.count_before));
        v.extend_from_slice(&self.root_in.elements());
        v.extend_from_slice(&self.root_out.elements());
        v.extend(self.stream_in.to_fields());
        v.extend(self.stream_out.to_fields());
        for x in [
            self.records_in,
            self.records_out,
            self.lower_in,
            self.lower_out,
            self.new_in,
            self.new_out,
        ] {
            v.push(F::from_canonical_u64(x));
        }
        v.push(F::from_bool(self.started_in));
        v.push(F::from_bool(self.started_out));
        v
    }

    /// The inverse of [`DiffStatement::to_fields`] (`None` for a value no chunk states).
    pub fn from_fields(v: &[F]) -> Option<DiffStatement> {
        if v.len() != DIFF_PUBLIC_INPUTS {
            return None;
        }
        let d = |o: usize| Digest([v[o], v[o + 1], v[o + 2], v[o + 3]]);
        let u = |o: usize| v[o].to_canonical_u64();
        let bit = |o: usize| crate::circuits::public::bool_of_field(v[o]);
        Some(DiffStatement {
            batch_old_root: d(at::BATCH_OLD_ROOT),
            count_before: u32::try_from(u(at::COUNT_BEFORE)).ok()?,
            root_in: d(at::ROOT_IN),
            root_out: d(at::ROOT_OUT),
            stream_in: StreamState::from_fields(&v[at::STREAM_IN..at::STREAM_OUT])?,
            stream_out: StreamState::from_fields(&v[at::STREAM_OUT..at::RECORDS_IN])?,
            records_in: u(at::RECORDS_IN),
            records_out: u(at::RECORDS_OUT),
            lower_in: u(at::LOWER_IN),
            lower_out: u(at::LOWER_OUT),
            new_in: u(at::NEW_IN),
            new_out: u(at::NEW_OUT),
            started_in: bit(at::STARTED_IN)?,
            started_out: bit(at::STARTED_OUT)?,
        })
    }

    /// The SHA-256 of the bytes streamed so far (for a whole batch: `diff_hash`).
    pub fn diff_hash(&self) -> [u8; 32] {
        self.stream_out.finish()
    }

    /// Whether this states a whole batch's diff: it starts from the batch's old root with only
    /// the header streamed (for the final record count) and nothing counted.
    pub fn whole_batch(&self) -> bool {
        let mut header = StreamState::default();
        let Ok(n) = u32::try_from(self.records_out) else {
            return false;
        };
        header.absorb(&diff_header(self.count_before, n));
        self.root_in == self.batch_old_root
            && self.stream_in == header
            && self.records_in == 0
            && self.lower_in == 0
            && self.new_in == 0
            && !self.started_in
    }
}

/// An account's key as the five leaf elements (canonical u64 values).
pub(crate) type Key = [u64; 5];

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
    /// The account's `ext`, the same in the old and the new leaf.
    pub ext: Digest,
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
    pub batch_old_root: Digest,
    #[serde(flatten)]
    pub count: CountWitness,
    /// Where the chunk starts.
    pub root_in: Digest,
    pub stream_in: StreamState,
    pub records_in: u64,
    pub lower_in: u64,
    pub new_in: u64,
    pub started_in: bool,
    pub old: Vec<OldSlot>,
    pub new: Vec<NewSlot>,
}

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

/// A diff chunk's running values at its two ends (`[in, out]`), registered as public inputs
/// in the order of [`DiffStatement::to_fields`] (`at`): the one place a diff circuit writes
/// that layout (the grouped circuit appends its own four after it).
pub(crate) struct DiffEnds<'a> {
    pub batch_old_root: HashOutTarget,
    pub count_before: Target,
    pub root: [HashOutTarget; 2],
    pub stream: [&'a StreamTargets; 2],
    pub records: [Target; 2],
    pub lower: [Target; 2],
    pub new: [Target; 2],
    pub started: [BoolTarget; 2],
}

impl DiffEnds<'_> {
    pub(crate) fn register(&self, b: &mut CircuitBuilder<F, D>) {
        b.register_public_inputs(&self.batch_old_root.elements);
        b.register_public_input(self.count_before);
        for root in self.root {
            b.register_public_inputs(&root.elements);
        }
        for stream in self.stream {
            b.register_public_inputs(&stream.to_vec());
        }
        for pair in [self.records, self.lower, self.new] {
            b.register_public_inputs(&pair);
        }
        for started in self.started {
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

/// The witness and statement of `diff` applied to the accounts `before` (the state before the
/// batch), as one chunk of `cap_old` and `cap_new` record slots.
pub fn diff_witness(
    before: &[Account],
    diff: &StateDiff,
    cap_old: usize,
    cap_new: usize,
) -> anyhow::Result<(DiffWitness, DiffStatement)> {
    let mut chunks = diff_chunks(before, diff, cap_old, cap_new, 1)?;
    ensure!(
        chunks.len() == 1,
        "the diff does not fit one circuit for {cap_old} + {cap_new} records"
    );
    chunks.pop().context("one chunk")
}

/// A batch's diff in chunks of `cap_old` records of existing accounts and `cap_new` of new
/// ones, padded with empty chunks to a power of two (at least `min_chunks`): the leaves of a
/// diff merge tree. Records keep their order: a chunk holds new accounts' records only once every
/// existing account's record is placed (in it or before it).
pub fn diff_chunks(
    before: &[Account],
    diff: &StateDiff,
    cap_old: usize,
    cap_new: usize,
    min_chunks: usize,
) -> anyhow::Result<Vec<(DiffWitness, DiffStatement)>> {
    ensure!(
        cap_old > 0 && cap_new > 0,
        "a chunk has slots of both kinds"
    );
    // Versions 2 and 3 (stream and agent records, SPEC 10.4) are not proven by this circuit
    // yet; only a devnet node with experimental flags accepts the transactions that need them.
    ensure!(
        diff.version() == state::diff::DIFF_VERSION,
        "the diff is of version {} ({} stream, {} passport, {} lanes and {} shares records), \
         which the diff circuit does not prove yet",
        diff.version(),
        diff.streams().len(),
        diff.passports().len(),
        diff.lanes().len(),
        diff.shares().len()
    );
    let (mut tree, count) = batch_start(before, diff.count_before())?;
    let count_before = count.count_before;
    let batch_old_root = tree.root();

    let records = diff.records();
    let n = u32::try_from(records.len()).context("more than 2^32 records")?;
    let (old_records, new_records): (Vec<&AccountRecord>, Vec<&AccountRecord>) =
        records.iter().partition(|r| r.pubkey.is_none());
    let mut stream = StreamState::default();
    stream.absorb(&diff_header(count_before, n));
    let (mut records_so_far, mut lower, mut new_so_far, mut started) = (0u64, 0u64, 0u64, false);
    let (mut next_old, mut next_new) = (0usize, 0usize);
    let unused_path = vec![Digest::ZERO; DEPTH];
    let mut out = Vec::new();
    loop {
        let mut w = DiffWitness {
            batch_old_root,
            count: count.clone(),
            root_in: tree.root(),
            stream_in: stream.clone(),
            records_in: records_so_far,
            lower_in: lower,
            new_in: new_so_far,
            started_in: started,
            old: Vec::with_capacity(cap_old),
            new: Vec::with_capacity(cap_new),
        };
        while w.old.len() < cap_old && next_old < old_records.len() {
            let r = old_records[next_old];
            next_old += 1;
            let i = r.index.0;
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
                ext: a.ext,
                siblings: tree.proof(i).siblings.to_vec(),
            });
            tree.set(i, leaf_of(&key, r.balance.get(), r.nonce.get(), a.ext));
            stream.absorb(&record_prefix(i, r.balance.get(), r.nonce.get()));
            lower = u64::from(i) + 1;
        }
        if next_old == old_records.len() {
            while w.new.len() < cap_new && next_new < new_records.len() {
                let r = new_records[next_new];
                next_new += 1;
                let i = r.index.0;
                let k = r.pubkey.context("a new account's record has a key")?;
                let key = k.to_field_elements().map(|e| e.to_canonical_u64());
                w.new.push(NewSlot {
                    used: true,
                    key,
                    balance: r.balance.get(),
                    nonce: r.nonce.get(),
                    siblings: tree.proof(i).siblings.to_vec(),
                });
                tree.set(
                    i,
                    leaf_of(&key, r.balance.get(), r.nonce.get(), Digest::ZERO),
                );
                stream.absorb(&record_prefix(i, r.balance.get(), r.nonce.get()));
                stream.absorb(&k.to_bytes());
                new_so_far += 1;
                started = true;
            }
        }
        records_so_far += (w.old.len() + w.new.len()) as u64;
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
                ext: Digest::ZERO,
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
                siblings: unused_path.clone(),
            },
        );
        let statement = DiffStatement {
            batch_old_root,
            count_before,
            root_in: w.root_in,
            root_out: tree.root(),
            stream_in: w.stream_in.clone(),
            stream_out: stream.clone(),
            records_in: w.records_in,
            records_out: records_so_far,
            lower_in: w.lower_in,
            lower_out: lower,
            new_in: w.new_in,
            new_out: new_so_far,
            started_in: w.started_in,
            started_out: started,
        };
        out.push((w, statement));
        let done = next_old == old_records.len() && next_new == new_records.len();
        if done && out.len().is_power_of_two() && out.len() >= min_chunks {
            return Ok(out);
        }
    }
}

/// The 20 bytes every record starts with (`index`, `balance`, `nonce`, little-endian).
pub(crate) fn record_prefix(index: u32, balance: u64, nonce: u64) -> Vec<u8> {
    let mut v = index.to_le_bytes().to_vec();
    v.extend_from_slice(&balance.to_le_bytes());
    v.extend_from_slice(&nonce.to_le_bytes());
    v
}

struct OldTargets {
    used: BoolTarget,
    index: Target,
    key: [Target; 5],
    balance_before: Target,
    nonce_before: Target,
    balance: Target,
    nonce: Target,
    ext: HashOutTarget,
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
    batch_old_root: HashOutTarget,
    count: CountTargets,
    root_in: HashOutTarget,
    stream_in: StreamTargets,
    records_in: Target,
    lower_in: Target,
    new_in: Target,
    started_in: BoolTarget,
    old: Vec<OldTargets>,
    new: Vec<NewTargets>,
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

/// The diff circuit for `cap_old` + `cap_new` record slots.
pub struct DiffCircuit {
    pub data: CircuitData<F, C, D>,
    targets: Targets,
    pub cap_old: usize,
    pub cap_new: usize,
}

impl DiffCircuit {
    pub fn build(cap_old: usize, cap_new: usize) -> DiffCircuit {
        Self::build_or_load(cap_old, cap_new, &crate::cache::CircuitCache::disabled())
            .expect("an uncached, unpinned build cannot be refused")
    }

    /// [`DiffCircuit::build`] through `cache` (key: [`DIFF_VERSION`] and the capacities).
    pub fn build_or_load(
        cap_old: usize,
        cap_new: usize,
        cache: &crate::cache::CircuitCache,
    ) -> anyhow::Result<DiffCircuit> {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let (targets, _) = Self::define(&mut b, cap_old, cap_new);
        let key = format!("{DIFF_VERSION}/old={cap_old}/new={cap_new}/config=standard_recursion");
        let spec = crate::cache::CircuitSpec {
            name: "diff-chunk",
            key: &key,
            num_public_inputs: DIFF_PUBLIC_INPUTS,
            pinned: None,
        };
        let (data, _) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        Ok(DiffCircuit {
            data,
            targets,
            cap_old,
            cap_new,
        })
    }

    /// Adds the constraints to `b`; returns the targets and the number of rows before the
    /// record slots, after the old slots and after the new slots (for the cost report).
    fn define(
        b: &mut CircuitBuilder<F, D>,
        cap_old: usize,
        cap_new: usize,
    ) -> (Targets, [usize; 3]) {
        let one = b.one();
        let batch_old_root = b.add_virtual_hash();

        // count_before: the last account below it exists, the leaf at it is empty, under the
        // batch's old root (every chunk checks it against the same shared root).
        let count = CountTargets::define(b, batch_old_root);
        let (count_before, last_index) = (count.count_before, count.last_index);

        // Where the chunk starts: free values, tied by the merges to the chunk before and by
        // the settlement circuit to the start of a batch.
        let root_in = b.add_virtual_hash();
        let stream_in = StreamTargets::virtual_state(b);
        let mut stream = ByteStream::resume(b, &stream_in);
        let records_in = b.add_virtual_target();
        let lower_in = b.add_virtual_target();
        let new_in = b.add_virtual_target();
        let started_in = b.add_virtual_bool_target_safe();
        let start_rows = b.num_gates();

        let mut root = root_in;
        let mut records = records_in;
        let mut lower = lower_in;
        let mut prev_used = b._true();
        let mut old = Vec::with_capacity(cap_old);
        for _ in 0..cap_old {
            let used = b.add_virtual_bool_target_safe();
            // Used slots first; none once new accounts' records started.
            let p = b.mul(used.target, prev_used.target);
            b.connect(p, used.target);
            prev_used = used;
            let late = b.mul(used.target, started_in.target);
            b.assert_zero(late);
            records = b.add(records, used.target);

            let index = b.add_virtual_target();
            let index_bits = b.split_le(index, 32);
            in_order(b, used, index, lower, last_index);
            let next = b.add(index, one);
            lower = b.select(used, next, lower);

            let key: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
            let balance_before = b.add_virtual_target();
            let nonce_before = b.add_virtual_target();
            let balance = b.add_virtual_target();
            let balance_u = range_check_u63(b, balance);
            let nonce = b.add_virtual_target();
            let nonce_u = range_check_u63(b, nonce);
            // One witnessed ext in both leaves: a record cannot change it.
            let ext = b.add_virtual_hash();
            let path = MerklePathTarget::new(b);
            let old_leaf = account_leaf(b, &key, balance_before, nonce_before, &ext);
            let new_leaf = account_leaf(b, &key, balance, nonce, &ext);
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
                ext,
                path,
            });
        }
        let old_rows = b.num_gates();

        let mut prev_used = b._true();
        let mut new_count = new_in;
        let mut started = started_in;
        let mut new = Vec::with_capacity(cap_new);
        for _ in 0..cap_new {
            let used = b.add_virtual_bool_target_safe();
            let p = b.mul(used.target, prev_used.target);
            b.connect(p, used.target);
            prev_used = used;
            records = b.add(records, used.target);

            // New accounts are consecutive from count_before (below 2^32: the split checks it).
            let index = b.add(count_before, new_count);
            let index_bits = b.split_le(index, 32);
            new_count = b.add(new_count, used.target);
            started = b.or(started, used);
            let key: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
            let balance = b.add_virtual_target();
            let balance_u = range_check_u63(b, balance);
            let nonce = b.add_virtual_target();
            let nonce_u = range_check_u63(b, nonce);
            let path = MerklePathTarget::new(b);
            // A new account starts without agent fields (a version 1 diff cannot give any).
            let no_ext = zero_digest(b);
            let new_leaf = account_leaf(b, &key, balance, nonce, &no_ext);
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

        let stream_out = stream.export(b);
        DiffEnds {
            batch_old_root,
            count_before,
            root: [root_in, root],
            stream: [&stream_in, &stream_out],
            records: [records_in, records],
            lower: [lower_in, lower],
            new: [new_in, new_count],
            started: [started_in, started],
        }
        .register(b);
        let targets = Targets {
            batch_old_root,
            count,
            root_in,
            stream_in,
            records_in,
            lower_in,
            new_in,
            started_in,
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
        pw.set_hash_target(t.batch_old_root, w.batch_old_root.into())?;
        pw.set_hash_target(t.root_in, w.root_in.into())?;
        for (t, v) in t.stream_in.to_vec().iter().zip(w.stream_in.to_fields()) {
            pw.set_target(*t, v)?;
        }
        pw.set_target(t.records_in, f(w.records_in))?;
        pw.set_target(t.lower_in, f(w.lower_in))?;
        pw.set_target(t.new_in, f(w.new_in))?;
        pw.set_bool_target(t.started_in, w.started_in)?;
        t.count.set(&mut pw, &w.count)?;
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
            pw.set_hash_target(ts.ext, s.ext.into())?;
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
