//! The diff circuit's witness: a version 1 diff cut into chunks ([`diff_chunks`]), each slot
//! with its path and old values, and the statement each chunk must prove.

use anyhow::{ensure, Context};
use plonky2::field::types::PrimeField64;
use serde::{Deserialize, Serialize};
use state::account::Account;
use state::diff::{AccountRecord, StateDiff};
use state::hash::Digest;
use state::smt::DEPTH;

use crate::gadgets::sha256::stream::StreamState;

use super::common::{batch_start, key_of, leaf_of, record_prefix, ChunkStart, Key};
use super::{diff_header, DiffStatement};

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
    /// Where the chunk starts.
    #[serde(flatten)]
    pub start: ChunkStart,
    pub old: Vec<OldSlot>,
    pub new: Vec<NewSlot>,
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
            start: ChunkStart {
                batch_old_root,
                count: count.clone(),
                root_in: tree.root(),
                stream_in: stream.clone(),
                records_in: records_so_far,
                lower_in: lower,
                new_in: new_so_far,
                started_in: started,
            },
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
            root_in: w.start.root_in,
            root_out: tree.root(),
            stream_in: w.start.stream_in.clone(),
            stream_out: stream.clone(),
            records_in: w.start.records_in,
            records_out: records_so_far,
            lower_in: w.start.lower_in,
            lower_out: lower,
            new_in: w.start.new_in,
            new_out: new_so_far,
            started_in: w.start.started_in,
            started_out: started,
        };
        out.push((w, statement));
        let done = next_old == old_records.len() && next_new == new_records.len();
        if done && out.len().is_power_of_two() && out.len() >= min_chunks {
            return Ok(out);
        }
    }
}
