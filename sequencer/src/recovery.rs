//! Start-up: rebuild the state from the newest state snapshot and the durable log after it,
//! and check it against the sealed blocks.
//!
//! The newest snapshot (`snapshotter`, taken at a batch boundary) whose checksum, format and
//! root check out is decoded; its root must equal both the root stored with its block and its
//! batch's new root. A snapshot that fails any check is skipped for the next older one, and
//! without any the log is replayed from genesis, so a damaged snapshot costs time, never
//! correctness. The transactions after the snapshot are then replayed in order with the rules
//! of `state` (signatures were checked before the rows were written, so they are not checked
//! again). The root after the last sealed block must equal the root stored with it; a
//! mismatch stops the node. Restart time therefore grows with the snapshot's age (the tail),
//! not with the history. Transactions that became
//! durable after the last sealed block (a crash between a commit and the next seal) are sealed
//! into their blocks now, so every acknowledged transaction keeps its block number and position.
//! No index of transaction ids is rebuilt: everything replayed is durable, and a resubmission
//! of it is answered from Postgres (service.rs, `Inner::outcome`).

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use state::apply::{State, VerifiedTx};
use state::crypto::schnorr::MessageHash;
use state::crypto::schnorr::PublicKey;
use state::tx::{Domain, Transaction};

use crate::writer::{Head, Recovered};
use rayon::prelude::*;
use rollup_storage::log::{BlockActivity, BlockRow, SealedBlock, TxRow, WriteItem};
use rollup_storage::snapshots::SnapshotMeta;
use rollup_storage::Store;

/// Log rows decoded and hashed together on the rayon pool during replay.
const REPLAY_CHUNK: usize = 8192;

/// The newest usable snapshot, decoded and checked; `None` if there is none (or none usable:
/// each failure is logged and counted, and the next older one is tried).
async fn load_snapshot(store: &Store, domain: &Domain) -> Option<(State, SnapshotMeta)> {
    let list = match store.snapshots().list().await {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!("cannot list state snapshots, replaying the whole log: {e}");
            return None;
        }
    };
    for meta in list {
        match check_snapshot(store, domain, &meta).await {
            Ok(state) => return Some((state, meta)),
            Err(e) => {
                metrics::counter!("rollup_snapshot_rejected_total").increment(1);
                tracing::warn!(batch = meta.batch_number, "state snapshot not used: {e:#}");
            }
        }
    }
    None
}

async fn check_snapshot(
    store: &Store,
    domain: &Domain,
    meta: &SnapshotMeta,
) -> anyhow::Result<State> {
    let bytes = store.snapshots().read(meta).await?;
    let mut state = State::decode_snapshot(&bytes, domain)?;
    drop(bytes);
    let root = state.root();
    if root != meta.state_root {
        bail!(
            "decoded root {root} differs from the recorded {}",
            meta.state_root
        );
    }
    let block = store
        .log()
        .get_block(meta.block_number)
        .await?
        .with_context(|| format!("its block {} is not in the log", meta.block_number))?;
    if block.state_root != root {
        bail!("block {} was sealed with another root", meta.block_number);
    }
    let batch = store
        .batches()
        .get(meta.batch_number)
        .await?
        .with_context(|| format!("its batch {} is not in the log", meta.batch_number))?;
    if batch.new_root != root || batch.last_seq != meta.last_seq {
        bail!("batch {} ends with another root or seq", meta.batch_number);
    }
    Ok(state)
}

/// `lanes`: the node accepts nonces of lanes 1 to 7 (its log may hold some, so they are
/// accepted again while replaying it).
pub async fn recover(
    store: &Store,
    domain: Domain,
    operator: PublicKey,
    lanes: bool,
) -> anyhow::Result<Recovered> {
    let started = std::time::Instant::now();
    let (mut state, base) = match load_snapshot(store, &domain).await {
        Some((state, meta)) => (state, Some(meta)),
        None => (State::genesis(domain, operator), None),
    };
    if lanes {
        state.enable_lanes();
    }
    let base_seq = base.as_ref().map_or(0, |m| m.last_seq);
    let base_block = base.as_ref().map_or(0, |m| m.block_number);
    let snapshot_loaded_ms = started.elapsed().as_millis() as u64;
    let blocks: BTreeMap<u64, BlockRow> = store
        .log()
        .blocks_after(base_block)
        .await?
        .into_iter()
        .map(|b| (b.number, b))
        .collect();
    let last_sealed = blocks.keys().next_back().copied();
    let last_batch = store.batches().last().await?;
    let batch_last_block = last_batch.as_ref().map(|b| b.last_block);

    let mut next_seq = base_seq + 1;
    let mut current: Option<(u64, u64, u64, u32)> = None; // (block, time, first_seq, txs)
    let mut to_seal: Vec<BlockRow> = Vec::new();
    // The accounts named by blocks recovery will seal (those after the last sealed one): their
    // `account_blocks` rows are written with them.
    let mut to_seal_activity: BTreeMap<u64, BlockActivity> = BTreeMap::new();
    let mut open_effects = Vec::new();
    let mut open_times: Vec<(u64, u64)> = Vec::new();
    let mut checked_last = false;
    let mut error: Option<anyhow::Error> = None;

    // Finishes a block during replay: check its root if sealed, or queue it for sealing.
    let finish_block = |state: &mut State,
                        b: (u64, u64, u64, u32),
                        to_seal: &mut Vec<BlockRow>,
                        checked_last: &mut bool|
     -> anyhow::Result<()> {
        let (number, time, first_seq, txs) = b;
        match blocks.get(&number) {
            Some(sealed) => {
                if Some(number) == last_sealed {
                    let root = state.root();
                    if root != sealed.state_root {
                        bail!(
                            "state root mismatch at block {number}: replay gives {root}, stored {}",
                            sealed.state_root
                        );
                    }
                    *checked_last = true;
                }
            }
            None => to_seal.push(BlockRow {
                number,
                state_root: state.root(),
                first_seq,
                tx_count: txs,
                block_time: time,
            }),
        }
        Ok(())
    };

    // Rows are decoded and hashed a chunk at a time on all cores (the id check), then applied
    // in order on this thread: hashing is about half of the replay's cost.
    let mut replay_row = |row: TxRow, tx: Transaction, id: MessageHash| -> anyhow::Result<()> {
        if row.seq != next_seq {
            bail!(
                "transaction log has a gap: expected seq {next_seq}, found {}",
                row.seq
            );
        }
        if let Some(cur) = current {
            if cur.0 != row.block_number {
                finish_block(&mut state, cur, &mut to_seal, &mut checked_last)?;
                current = None;
            }
        }
        let cur = current.get_or_insert((row.block_number, row.block_time, row.seq, 0));
        cur.3 += 1;
        if last_sealed.is_none_or(|l| row.block_number > l) {
            to_seal_activity
                .entry(row.block_number)
                .or_default()
                .record(&row);
        }
        let ctx = row.context();
        let verified =
            VerifiedTx::from_durable_log_with_id(tx, id, state.domain(), |i| state.key_of(i))
                .map_err(|r| anyhow::anyhow!("seq {}: {r}", row.seq))?;
        let fx = state
            .apply_verified(verified, &ctx)
            .map_err(|r| anyhow::anyhow!("replay of seq {} rejected: {r}", row.seq))?;
        if batch_last_block.is_none_or(|l| row.block_number > l) {
            if open_times.last().map(|t| t.0) != Some(row.block_number) {
                open_times.push((row.block_number, row.block_time));
            }
            open_effects.push((row.seq, fx));
        }
        next_seq += 1;
        Ok(())
    };
    let mut replay_chunk = |chunk: &mut Vec<TxRow>| -> anyhow::Result<()> {
        let decoded: Vec<anyhow::Result<(Transaction, MessageHash)>> = chunk
            .par_iter()
            .map(|row| {
                let tx = Transaction::decode(&row.raw)
                    .with_context(|| format!("seq {}: undecodable row in the log", row.seq))?;
                let id = tx.message_hash(&domain);
                if id.0.to_bytes() != row.tx_id {
                    bail!("seq {}: stored id does not match the transaction", row.seq);
                }
                Ok((tx, id))
            })
            .collect();
        for (row, d) in chunk.drain(..).zip(decoded) {
            let (tx, id) = d?;
            replay_row(row, tx, id)?;
        }
        Ok(())
    };
    let mut chunk: Vec<TxRow> = Vec::with_capacity(REPLAY_CHUNK);
    let n = store
        .log()
        .for_each_tx_after(base_seq, |row| {
            if error.is_none() {
                chunk.push(row);
                if chunk.len() >= REPLAY_CHUNK {
                    if let Err(e) = replay_chunk(&mut chunk) {
                        error = Some(e);
                    }
                }
            }
            Ok(())
        })
        .await?;
    if error.is_none() {
        if let Err(e) = replay_chunk(&mut chunk) {
            error = Some(e);
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    if let Some(cur) = current {
        finish_block(&mut state, cur, &mut to_seal, &mut checked_last)?;
    }
    if let Some(last) = last_sealed {
        if !checked_last {
            bail!("block {last} is sealed but no transaction of it is in the log");
        }
    }
    let next_block = to_seal
        .last()
        .map(|b| b.number)
        .or(last_sealed)
        .or(base.as_ref().map(|m| m.block_number))
        .map_or(1, |b| b + 1);
    if !to_seal.is_empty() {
        tracing::warn!(
            blocks = to_seal.len(),
            "sealing blocks whose transactions were durable before a crash"
        );
        let items: Vec<WriteItem> = to_seal
            .iter()
            .map(|row| {
                WriteItem::Block(Box::new(SealedBlock {
                    row: row.clone(),
                    activity: to_seal_activity.remove(&row.number).unwrap_or_default(),
                }))
            })
            .collect();
        store.log().write(&items).await?;
    }
    // Block times never go back, also across restarts: a clock stepped back must not give a
    // block a time before its predecessor's (the batch would be unprovable).
    let last_block_time = blocks
        .values()
        .chain(to_seal.iter())
        .map(|b| b.block_time)
        .chain(base.as_ref().map(|m| m.block_time))
        .max()
        .unwrap_or(0);
    let head_block = next_block - 1;
    // Block 0 is genesis: with no block sealed yet the state is still the genesis state.
    let head_root = state.root();
    // Blocks after the last batch, including ones sealed just now, belong to the open batch;
    // their times were collected during replay.
    let (batch_number, batch_first_block, batch_first_seq, batch_old_root, batch_first_deposit) =
        match &last_batch {
            Some(b) => (
                b.number + 1,
                b.last_block + 1,
                b.last_seq + 1,
                b.new_root,
                b.next_deposit_seq,
            ),
            None => (1, 1, 1, State::genesis(domain, operator).root(), 0),
        };
    tracing::info!(
        snapshot_batch = base.as_ref().map(|m| m.batch_number),
        snapshot_ms = snapshot_loaded_ms,
        replayed_txs = n,
        head_block,
        accounts = state.num_accounts(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "state recovered from the durable log"
    );
    let head = Head {
        block: head_block,
        root: head_root,
        accepted: next_seq - 1,
        num_accounts: state.num_accounts(),
        next_deposit_seq: state.next_deposit_seq(),
        batch: batch_number - 1,
    };
    Ok(Recovered {
        state,
        next_seq,
        next_block,
        batch_number,
        batch_first_block,
        batch_first_seq,
        batch_old_root,
        batch_first_deposit_seq: batch_first_deposit,
        open_batch_effects: open_effects,
        open_batch_block_times: open_times,
        last_block_time,
        snapshot_seq: base_seq,
        head,
    })
}
