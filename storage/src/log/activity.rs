//! Which accounts a block's transactions name as sender or recipient: the block's rows of
//! `account_blocks` (migration 0018), written with the block's row.
//!
//! Invariant: each account's seqs are ascending and distinct (a transfer to oneself is listed
//! once). Cost: one hash-map probe and one push per side of a transaction, on whoever builds
//! the block (the writer thread, or recovery for a block it seals); memory: one entry per
//! account the block names plus 8 bytes per side.

use std::collections::HashMap;

use super::TxRow;

/// The account-to-seqs map of one block (see the module's invariant).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockActivity {
    accounts: HashMap<u32, Vec<u64>, foldhash::fast::RandomState>,
}

impl BlockActivity {
    /// The activity of `rows` (one block's, in any order).
    pub fn of_rows<'a>(rows: impl IntoIterator<Item = &'a TxRow>) -> Self {
        let mut a = BlockActivity::default();
        for r in rows {
            a.record(r);
        }
        a
    }

    /// Adds a transaction of the block under its sender and its recipient.
    pub fn record(&mut self, row: &TxRow) {
        for account in [row.sender, row.recipient].into_iter().flatten() {
            let seqs = self.accounts.entry(account).or_default();
            match seqs.last() {
                // The usual case: the block's transactions arrive in seq order.
                None => seqs.push(row.seq),
                Some(&last) if last < row.seq => seqs.push(row.seq),
                Some(&last) if last == row.seq => {}
                // Out of order (kept total rather than assumed away): insert in place.
                Some(_) => {
                    if let Err(at) = seqs.binary_search(&row.seq) {
                        seqs.insert(at, row.seq);
                    }
                }
            }
        }
    }

    /// Accounts named (the block's rows of `account_blocks`).
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The seqs of `account`'s transactions in the block, ascending (empty if none).
    pub fn seqs(&self, account: u32) -> &[u64] {
        self.accounts.get(&account).map_or(&[], Vec::as_slice)
    }

    /// Every account with its seqs, by account (a deterministic order for the insert).
    pub fn sorted(&self) -> Vec<(u32, &[u64])> {
        let mut v: Vec<(u32, &[u64])> = self
            .accounts
            .iter()
            .map(|(&a, s)| (a, s.as_slice()))
            .collect();
        v.sort_unstable_by_key(|&(a, _)| a);
        v
    }

    /// Seqs over all accounts (the approximate size of the block's rows).
    pub fn entries(&self) -> usize {
        self.accounts.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(seq: u64, sender: Option<u32>, recipient: Option<u32>) -> TxRow {
        super::super::tests::row(seq, sender, recipient, None)
    }

    #[test]
    fn each_side_once_ascending_whatever_the_order() {
        let rows = [
            tx(5, Some(1), Some(2)),
            tx(6, Some(3), Some(3)), // to oneself: once
            tx(9, None, Some(1)),    // a deposit
            tx(7, Some(1), None),    // a withdrawal, late
            tx(8, None, None),       // a registration names neither side
            tx(7, Some(1), None),    // repeated: once
        ];
        let a = BlockActivity::of_rows(&rows);
        assert_eq!(a.seqs(1), [5, 7, 9]);
        assert_eq!(a.seqs(2), [5]);
        assert_eq!(a.seqs(3), [6]);
        assert_eq!(a.seqs(4), [] as [u64; 0]);
        assert_eq!(a.len(), 3);
        assert_eq!(a.entries(), 5);
        let sorted: Vec<u32> = a.sorted().iter().map(|&(acc, _)| acc).collect();
        assert_eq!(sorted, [1, 2, 3]);
        assert!(BlockActivity::default().is_empty());
    }
}
