//! Proofs a worker made recently, by what they prove: a job whose inputs are byte-identical to
//! an earlier job's takes that job's proof instead of proving again.
//!
//! **Why it pays.** Every tree of a batch is padded to `2^L` leaves with idle leaves or chunks
//! (`planner`), and the idle ones at the end of a tree are the same witness: a no-op leaf from
//! the batch's final state, a diff or priority chunk that carries the tree's final running
//! values through, an idle split-credit chunk with the final accumulator. Their proofs state
//! the same thing, and so do the merges of two such proofs, level after level. A batch of five
//! leaves padded to eight proves its three idle range leaves once, their merge once, and so on
//! in each tree. The payout tree's idle chunk is the same in every batch (SPEC 13.12, "An
//! empty right half"), so after the first batch its proofs and their merges' are not proven
//! again at all (the memo keeps what is used again).
//!
//! **Why it is sound.** A job's key is the SHA-256 of everything its proof depends on: the
//! circuit (tree, job kind, level, and the diff kind for the diff tree, the only one whose
//! circuits depend on it; one registry, so one leaf circuit and one chunk shape) and its inputs (a leaf's serialized witness, which holds the statement it must prove;
//! a merge's two child proofs). Equal keys mean the same circuit proving the same witness: the
//! earlier proof is a proof of this job's statement, which the parent job verifies anyway.
//! Final jobs are never memoized (each batch's is its own, checked against the batch's rows).
//!
//! Cost: one hash of the inputs per job (a leaf witness is kilobytes, a merge's children a few
//! hundred kilobytes: microseconds against seconds of proving) and the proofs held (a worker's
//! `--proof-memo`, [`CAPACITY`] by default, about 200 KB each; a lookup scans them).

use std::collections::VecDeque;
use std::sync::Mutex;

use rollup_storage::{DiffCircuitKind, JobKind, ProofTree};
use sha2::{Digest as _, Sha256};

use crate::circuits::registry::JobProof;

/// Proofs kept by default: enough for the idle tail of every tree of a batch at every level,
/// and more.
pub const CAPACITY: usize = 64;

/// What a proof depends on, hashed.
pub type MemoKey = [u8; 32];

/// The key of a leaf job (`inputs` = its serialized witness) or a merge job (`inputs` = its
/// two child proofs, in order); `None` for a final job.
pub fn key(
    tree: ProofTree,
    diff_kind: DiffCircuitKind,
    kind: JobKind,
    level: u32,
    inputs: &[&[u8]],
) -> Option<MemoKey> {
    if kind == JobKind::Final {
        return None;
    }
    // Only the diff tree's circuits depend on the batch's diff kind: a payout, priority, range,
    // split or walk job is the same circuit in a batch of any kind (one registry), so its idle
    // padding is reused across batches of different kinds too.
    let diff = match tree {
        ProofTree::Diff => diff_kind.as_str(),
        _ => "",
    };
    let mut h = Sha256::new();
    h.update(b"rollup-proof-memo-v1");
    for part in [tree.as_str(), diff, kind.as_str()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(level.to_le_bytes());
    h.update((inputs.len() as u64).to_le_bytes());
    for input in inputs {
        // Each input length-prefixed: `(ab, c)` and `(a, bc)` differ.
        h.update((input.len() as u64).to_le_bytes());
        h.update(input);
    }
    Some(h.finalize().into())
}

/// The most recently used proofs, by key (the least recently used evicted first: a proof every
/// batch asks for again, the canonical idle payout chunk and its merges, stays held however
/// many proofs each batch adds).
pub struct ProofMemo {
    capacity: usize,
    entries: Mutex<VecDeque<(MemoKey, JobProof)>>,
}

impl Default for ProofMemo {
    fn default() -> Self {
        ProofMemo::new()
    }
}

impl ProofMemo {
    /// A memo of [`CAPACITY`] proofs.
    pub fn new() -> ProofMemo {
        ProofMemo::with_capacity(CAPACITY)
    }

    /// A memo of `capacity` proofs (0 keeps none: every job is proven).
    pub fn with_capacity(capacity: usize) -> ProofMemo {
        ProofMemo {
            capacity,
            entries: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// The proof made for `key`, if still held (it becomes the most recently used).
    pub fn get(&self, key: &MemoKey) -> Option<JobProof> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let at = entries.iter().position(|(k, _)| k == key)?;
        let entry = entries.remove(at)?;
        let proof = entry.1.clone();
        entries.push_back(entry);
        Some(proof)
    }

    /// Keeps `proof` as the one for `key`.
    pub fn insert(&self, key: MemoKey, proof: &JobProof) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.iter().any(|(k, _)| *k == key) {
            return;
        }
        if entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((key, proof.clone()));
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// For jobs with keys `keys` (in order), the index of the first job with the same key, for
/// each job: jobs that would prove the same thing are proven once, by the first of them.
pub fn first_of_each(keys: &[Option<MemoKey>]) -> Vec<usize> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| match k {
            None => i,
            Some(k) => keys[..i]
                .iter()
                .position(|other| other.as_ref() == Some(k))
                .unwrap_or(i),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof(tag: u8) -> JobProof {
        JobProof {
            bytes: vec![tag; 3],
            statement: serde_json::json!({ "tag": tag }),
        }
    }

    #[test]
    fn a_key_names_the_circuit_and_every_input() {
        let k = |tree, kind, level, inputs: &[&[u8]]| {
            key(tree, DiffCircuitKind::V1, kind, level, inputs).unwrap()
        };
        let base = k(ProofTree::Diff, JobKind::Leaf, 0, &[b"w"]);
        assert_eq!(base, k(ProofTree::Diff, JobKind::Leaf, 0, &[b"w"]));
        assert_ne!(base, k(ProofTree::Priority, JobKind::Leaf, 0, &[b"w"]));
        assert_ne!(base, k(ProofTree::Diff, JobKind::Leaf, 0, &[b"v"]));
        assert_ne!(
            base,
            key(
                ProofTree::Diff,
                DiffCircuitKind::V4,
                JobKind::Leaf,
                0,
                &[b"w"]
            )
            .unwrap()
        );
        let payout = |d| key(ProofTree::Payout, d, JobKind::Leaf, 0, &[b"w"]).unwrap();
        assert_eq!(
            payout(DiffCircuitKind::V1),
            payout(DiffCircuitKind::V4),
            "only the diff tree's circuits depend on the diff kind"
        );
        let merge = k(ProofTree::Range, JobKind::Merge, 1, &[b"ab", b"c"]);
        assert_ne!(
            merge,
            k(ProofTree::Range, JobKind::Merge, 1, &[b"a", b"bc"])
        );
        assert_ne!(
            merge,
            k(ProofTree::Range, JobKind::Merge, 2, &[b"ab", b"c"])
        );
        assert_ne!(
            merge,
            k(ProofTree::Range, JobKind::Merge, 1, &[b"c", b"ab"])
        );
        assert_eq!(
            key(
                ProofTree::Range,
                DiffCircuitKind::V1,
                JobKind::Final,
                1,
                &[]
            ),
            None,
            "a final proof is never reused"
        );
    }

    #[test]
    fn the_memo_keeps_the_latest_proofs() {
        let memo = ProofMemo::new();
        let key_of = |i: usize| {
            key(
                ProofTree::Range,
                DiffCircuitKind::V1,
                JobKind::Leaf,
                0,
                &[&i.to_le_bytes()],
            )
            .unwrap()
        };
        memo.insert(key_of(0), &proof(0));
        assert_eq!(memo.get(&key_of(0)).map(|p| p.bytes), Some(vec![0; 3]));
        assert!(memo.get(&key_of(1)).is_none());
        // A second proof for a held key does not replace the first.
        memo.insert(key_of(0), &proof(9));
        assert_eq!(memo.get(&key_of(0)).map(|p| p.bytes), Some(vec![0; 3]));
        for i in 1..=CAPACITY {
            memo.insert(key_of(i), &proof(i as u8));
        }
        assert_eq!(memo.len(), CAPACITY);
        assert!(memo.get(&key_of(0)).is_none(), "the oldest is evicted");
        assert!(memo.get(&key_of(CAPACITY)).is_some());
        // A proof asked for again stays: key 1 is now the oldest inserted but the latest used.
        assert!(memo.get(&key_of(1)).is_some());
        memo.insert(key_of(CAPACITY + 1), &proof(0));
        assert!(memo.get(&key_of(1)).is_some(), "used again: kept");
        assert!(
            memo.get(&key_of(2)).is_none(),
            "the least recently used is evicted"
        );
        let off = ProofMemo::with_capacity(0);
        off.insert(key_of(0), &proof(0));
        assert!(
            off.get(&key_of(0)).is_none() && off.is_empty(),
            "0 keeps none"
        );
    }

    #[test]
    fn identical_jobs_in_one_claim_are_proven_once() {
        let a = Some([1u8; 32]);
        let b = Some([2u8; 32]);
        assert_eq!(
            first_of_each(&[a, b, a, None, None, b, a]),
            vec![0, 1, 0, 3, 4, 1, 0]
        );
        assert_eq!(first_of_each(&[]), Vec::<usize>::new());
    }
}
