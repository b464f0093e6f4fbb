//! The durable transactions of blocks not sealed yet, by account: what `account_blocks` does
//! not hold yet (its rows are written with their block's row, storage migration 0018).
//!
//! An account's reads (a receipt watch, a history page) take the seqs from here and the rest
//! from Postgres (`LogDal::txs_for_account`, `account_history`). The committer updates this
//! after each durable commit, before it wakes any watcher: it adds the commit's transactions,
//! then forgets the blocks the commit sealed, whose rows are now in `account_blocks`.
//!
//! Why a read sees every transaction once and leaves no gap behind its cursor: a reader takes
//! its seqs from here *before* querying, with `through`, the last seq durable at that moment,
//! and the query returns nothing after `through` from any of its sources (`UnsealedSeqs`).
//! A transaction up to `through` is here, unless its block was sealed, and then that block's
//! rows were durable before the query began; from the other sources (a registration, a
//! split's payees) it is durable, so visible. The read is therefore exactly the account's
//! transactions in `(cursor, through]` (up to the page), a consistent cut; one that became
//! durable after `through` comes with a wake-up, sent after this was updated.
//!
//! Memory: a `BlockActivity` per open block (usually one: ~250 ms of transactions), dropped
//! when the block is sealed.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use rollup_storage::log::{BlockActivity, UnsealedSeqs, WriteItem};

pub struct UnsealedActivity {
    inner: Mutex<Inner>,
}

struct Inner {
    /// The last durable seq (the committer's, after its last commit).
    through: u64,
    /// Per open block, its durable transactions by account (the rows its seal will write).
    blocks: BTreeMap<u64, BlockActivity>,
}

impl UnsealedActivity {
    /// Nothing unsealed, every seq up to `durable` durable (after recovery, which seals every
    /// block it replays).
    pub fn new(durable: u64) -> Self {
        UnsealedActivity {
            inner: Mutex::new(Inner {
                through: durable,
                blocks: BTreeMap::new(),
            }),
        }
    }

    /// A commit of `items` is durable: its transactions are readable, and the blocks it
    /// sealed are in `account_blocks` (so theirs are forgotten).
    pub fn committed(&self, items: &[WriteItem]) {
        let mut inner = self.lock();
        for item in items {
            if let WriteItem::Txs(rows) = item {
                for r in rows {
                    inner.through = inner.through.max(r.seq);
                    inner.blocks.entry(r.block_number).or_default().record(r);
                }
            }
        }
        let sealed = items
            .iter()
            .filter_map(|i| match i {
                WriteItem::Block(b) => Some(b.row.number),
                _ => None,
            })
            .max();
        if let Some(sealed) = sealed {
            // Blocks are sealed in order: the highest sealed here covers every earlier one.
            inner.blocks = inner.blocks.split_off(&(sealed + 1));
        }
    }

    /// `account`'s seqs above `after`, ascending, at most `limit`, and the durable seq.
    pub fn after(&self, account: u32, after: u64, limit: usize) -> UnsealedSeqs {
        let inner = self.lock();
        let seqs = inner
            .blocks
            .values()
            .flat_map(|b| b.seqs(account))
            .copied()
            .filter(|&s| s > after)
            .take(limit)
            .collect();
        UnsealedSeqs {
            seqs,
            through: inner.through,
        }
    }

    /// `account`'s seqs below `before` (`None`: all), descending, at most `limit`, and the
    /// durable seq.
    pub fn before(&self, account: u32, before: Option<u64>, limit: usize) -> UnsealedSeqs {
        let inner = self.lock();
        let before = before.unwrap_or(u64::MAX);
        let seqs = inner
            .blocks
            .values()
            .rev()
            .flat_map(|b| b.seqs(account).iter().rev())
            .copied()
            .filter(|&s| s < before)
            .take(limit)
            .collect();
        UnsealedSeqs {
            seqs,
            through: inner.through,
        }
    }

    /// Accounts with transactions in open blocks (tests).
    #[cfg(test)]
    fn accounts(&self) -> usize {
        let inner = self.lock();
        let mut all: Vec<u32> = inner
            .blocks
            .values()
            .flat_map(|b| b.sorted().into_iter().map(|(a, _)| a))
            .collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the maps consistent between statements that cannot panic
        // (allocation aside), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollup_storage::log::{BlockRow, SealedBlock, TxRow};
    use state::Digest;

    fn tx(seq: u64, block: u64, sender: Option<u32>, recipient: Option<u32>) -> TxRow {
        TxRow {
            seq,
            tx_id: [0; 32],
            kind: 2,
            sender,
            recipient,
            account_index: None,
            raw: Vec::new(),
            block_number: block,
            position: 0,
            block_time: 0,
            batch_time: 0,
            batch_status: None,
            parties: Vec::new(),
        }
    }

    fn sealed(number: u64) -> WriteItem {
        WriteItem::Block(Box::new(SealedBlock {
            row: BlockRow {
                number,
                state_root: Digest::ZERO,
                first_seq: 0,
                tx_count: 0,
                block_time: 0,
            },
            activity: BlockActivity::default(),
        }))
    }

    #[test]
    fn open_blocks_are_readable_and_sealed_ones_forgotten() {
        let u = UnsealedActivity::new(0);
        u.committed(&[WriteItem::Txs(vec![
            tx(1, 1, Some(1), Some(2)),
            tx(2, 1, Some(3), Some(3)), // to oneself: once
        ])]);
        assert_eq!(u.after(1, 0, 10).seqs, [1]);
        assert_eq!(u.after(3, 0, 10).seqs, [2]);
        assert_eq!(
            u.after(9, 0, 10).through,
            2,
            "the durable seq, whoever asks"
        );
        // One commit: the rest of block 1, its seal, and the start of block 2.
        u.committed(&[
            WriteItem::Txs(vec![tx(3, 1, Some(1), None)]),
            sealed(1),
            WriteItem::Txs(vec![tx(4, 2, None, Some(1)), tx(5, 2, Some(2), Some(1))]),
        ]);
        assert_eq!(
            u.after(1, 0, 10).seqs,
            [4, 5],
            "block 1 is in account_blocks now"
        );
        assert_eq!(u.after(3, 0, 10).seqs, Vec::<u64>::new());
        assert_eq!(u.accounts(), 2, "account 3 forgotten");
        assert_eq!(u.after(1, 4, 10).seqs, [5]);
        assert_eq!(u.after(1, 0, 1).seqs, [4]);
        assert_eq!(u.before(1, None, 10).seqs, [5, 4]);
        assert_eq!(u.before(1, Some(5), 10).seqs, [4]);
        assert_eq!(u.before(2, None, 1).seqs, [5]);
        assert_eq!(u.before(2, None, 1).through, 5);
        u.committed(&[sealed(2)]);
        assert_eq!(u.accounts(), 0);
        assert_eq!(u.before(1, None, 10).seqs, Vec::<u64>::new());
        assert_eq!(u.before(1, None, 10).through, 5, "a seal moves no seq");
        assert_eq!(UnsealedActivity::new(7).after(1, 0, 10).through, 7);
    }
}
