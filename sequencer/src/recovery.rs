//! Start-up: rebuild the state from the durable log and check it against the sealed blocks.
//!
//! The transaction log is replayed in order with the rules of `state` (signatures were checked
//! before the rows were written, so they are not checked again). The root after the last sealed
//! block must equal the root stored with it; a mismatch stops the node. Transactions that became
//! durable after the last sealed block (a crash between a commit and the next seal) are sealed
//! into their blocks now, so every acknowledged transaction keeps its block number and position.
//! No index of transaction ids is rebuilt: everything replayed is durable, and a resubmission
//! of it is answered from Postgres (service.rs, `Inner::outcome`).

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use state::account::Timestamp;
use state::apply::{BlockContext, State, VerifiedTx};
use state::crypto::schnorr::PublicKey;
use state::tx::{Domain, Transaction};

use crate::writer::{Head, Recovered};
use rollup_storage::log::{BlockRow, WriteItem};
use rollup_storage::Store;

pub async fn recover(
    store: &Store,
    domain: Domain,
    operator: PublicKey,
) -> anyhow::Result<Recovered> {
    let started = std::time::Instant::now();
    let mut state = State::genesis(domain, operator);
    let genesis_root = state.root();
    let blocks: BTreeMap<u64, BlockRow> = store
        .log()
        .all_blocks()
        .await?
        .into_iter()
        .map(|b| (b.number, b))
        .collect();
    let last_sealed = blocks.keys().next_back().copied();
    let last_batch = store.batches().last().await?;
    let batch_last_block = last_batch.as_ref().map(|b| b.last_block);

    let mut next_seq = 1u64;
    let mut current: Option<(u64, u64, u64, u32)> = None; // (block, time, first_seq, txs)
    let mut to_seal: Vec<BlockRow> = Vec::new();
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

    let n = store
        .log()
        .for_each_tx(|row| {
            if error.is_some() {
                return Ok(());
            }
            let res = (|| -> anyhow::Result<()> {
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
                let tx = Transaction::decode(&row.raw).context("undecodable row in the log")?;
                let ctx = BlockContext {
                    timestamp: Timestamp::new(row.block_time).unwrap_or(Timestamp::MAX),
                };
                let verified =
                    VerifiedTx::from_durable_log(tx, state.domain(), |i| state.key_of(i))
                        .map_err(|r| anyhow::anyhow!("seq {}: {r}", row.seq))?;
                let fx = state
                    .apply_verified(verified, &ctx)
                    .map_err(|r| anyhow::anyhow!("replay of seq {} rejected: {r}", row.seq))?;
                if fx.id.0.to_bytes() != row.tx_id {
                    bail!("seq {}: stored id does not match the transaction", row.seq);
                }
                if batch_last_block.is_none_or(|l| row.block_number > l) {
                    if open_times.last().map(|t| t.0) != Some(row.block_number) {
                        open_times.push((row.block_number, row.block_time));
                    }
                    open_effects.push((row.seq, fx));
                }
                next_seq += 1;
                Ok(())
            })();
            if let Err(e) = res {
                error = Some(e);
            }
            Ok(())
        })
        .await?;
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
        .map_or(1, |b| b + 1);
    if !to_seal.is_empty() {
        tracing::warn!(
            blocks = to_seal.len(),
            "sealing blocks whose transactions were durable before a crash"
        );
        let items: Vec<WriteItem> = to_seal.iter().cloned().map(WriteItem::Block).collect();
        store.log().write(&items).await?;
    }
    // Block times never go back, also across restarts: a clock stepped back must not give a
    // block a time before its predecessor's (the batch would be unprovable).
    let last_block_time = blocks
        .values()
        .chain(to_seal.iter())
        .map(|b| b.block_time)
        .max()
        .unwrap_or(0);
    let head_block = next_block - 1;
    let head_root = if head_block == 0 {
        genesis_root
    } else {
        state.root()
    };
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
            None => (1, 1, 1, genesis_root, 0),
        };
    tracing::info!(
        txs = n,
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
        head,
    })
}
