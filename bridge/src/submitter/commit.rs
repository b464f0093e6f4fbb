//! Building a commit: everything `commitBatch` needs for a proven batch, derived from what its
//! proof binds and checked against L1 (SPEC 16.3).

use alloy_primitives::{B256, U256};
use state::diff::StateDiff;

use crate::contracts::Rollup::{self, BatchHeader};
use crate::hashes::{NativeStatement, Payout};
use crate::settle::settle;

use super::{PreparedCommit, SubmitError, Submitter};

impl Submitter {
    /// Everything a commit of proven batch `batch` needs, derived from what its proof binds and
    /// checked against L1 (SPEC 16.3): the header, the statement the contract will compute, the
    /// state diff and the payouts. Refuses (with the reason) anything that does not match.
    pub async fn prepare_commit(&self, batch: u64) -> Result<PreparedCommit, SubmitError> {
        let err = |m: String| SubmitError::Batch(batch, m);
        let store = self.store();
        let witness = store
            .batches()
            .witness(batch)
            .await?
            .ok_or_else(|| err("no witness for the batch".into()))?;
        let proof = store
            .l1()
            .final_proof(batch)
            .await?
            .ok_or_else(|| err("proven but no final proof in batch_proofs".into()))?;
        let proven = self
            .verifier
            .verify(batch, &proof)
            .map_err(|e| err(format!("proof does not verify: {e}")))?;

        // The statement must be this deployment's and this batch's.
        if proven.chain_id != self.cfg.chain_id
            || proven.rollup.0 != self.cfg.rollup.into_array()
            || proven.batch_number != batch
        {
            return Err(err(format!(
                "the proof is for chain {} rollup {} batch {}, not this deployment's batch",
                proven.chain_id, proven.rollup, proven.batch_number
            )));
        }

        // The state diff, not the per-transaction ops: those stay off L1 (SPEC 15.7). The
        // settlement proof binds its hash to the old and new roots (SPEC 13.7).
        let pubdata: Vec<u8> = witness.l1_pubdata.ok_or_else(|| {
            err(
                "no state diff (sealed before migration 0005_state_diff): cannot be committed"
                    .into(),
            )
        })?;
        StateDiff::decode(&pubdata)
            .map_err(|e| err(format!("the stored state diff does not decode: {e}")))?;

        // Payouts and consumed priority ops from the stored ops, checked against the proven
        // payout root and queue hashes (settle.rs); the depositors from the watcher.
        let mut depositors = std::collections::BTreeMap::new();
        for seq in proven.first_priority_op..proven.next_priority_op {
            if let Some(op) = store.l1().live_op(seq).await? {
                depositors.insert(seq, op.op.depositor);
            }
        }
        let settlement = settle(&proven, &witness.pubdata, &pubdata, |seq| {
            depositors.get(&seq).copied()
        })
        .map_err(|e| err(format!("refusing to commit: {e}")))?;

        // What the contract takes from its own storage must be what the proof started from:
        // otherwise the commit would succeed and the batch could never be finalized.
        let committed_root = self.view(Rollup::committedRootCall {}).await?;
        if committed_root.0 != proven.old_root {
            return Err(err(format!(
                "the proof starts from root 0x{}, L1's committed root is {committed_root}",
                hex::encode(proven.old_root)
            )));
        }
        let first = self.view(Rollup::nextPriorityOpCommittedCall {}).await?;
        if first != proven.first_priority_op {
            return Err(err(format!(
                "the proof consumes priority ops from {}, L1 expects {first}",
                proven.first_priority_op
            )));
        }
        let before = self
            .view(Rollup::priorityHashAfterCall(U256::from(first)))
            .await?;
        let after = self
            .view(Rollup::priorityHashAfterCall(U256::from(
                proven.next_priority_op,
            )))
            .await?;
        if before.0 != proven.priority_hash_before || after.0 != proven.priority_hash_after {
            return Err(err(format!(
                "the proof chains the queue from 0x{} to 0x{}, L1's queue hashes are {before} \
                 and {after}: the watcher's records of serials {first}..{} differ from L1",
                hex::encode(proven.priority_hash_before),
                hex::encode(proven.priority_hash_after),
                proven.next_priority_op
            )));
        }
        let lower = self.view(Rollup::lastCommittedTimestampCall {}).await?;
        if proven.timestamp < lower {
            return Err(err(format!(
                "batch timestamp {} is before the previous batch's ({lower})",
                proven.timestamp
            )));
        }

        // `settle` checked that these payouts build the proven payout root.
        let payouts: Vec<Payout> = settlement.payouts.into_iter().map(Payout::from).collect();
        let statement: NativeStatement = proven;
        let header = BatchHeader {
            batchNumber: batch,
            newRoot: B256::from(proven.new_root),
            payoutRoot: B256::from(proven.payout_root),
            nextPriorityOp: proven.next_priority_op,
            timestamp: proven.timestamp,
        };
        Ok(PreparedCommit {
            header,
            statement,
            pubdata,
            payouts,
        })
    }
}
