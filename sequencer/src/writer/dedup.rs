//! The window of accepted transaction ids the writer answers resubmissions from.

use std::collections::{HashMap, VecDeque};

use foldhash::fast::RandomState;

use super::AcceptedMeta;

/// Accepted transaction ids the writer answers resubmissions of by itself: every id not yet
/// durable (a resubmission must wait for the original's durability) and the last `window`
/// durable ones. A resubmission of an older transaction is refused by the rules (its nonce is
/// used, its key registered, or it expired) and the service finds its receipt in Postgres.
pub struct Dedup {
    /// Keyed per process (foldhash's random seed): a transaction id is a hash of a message the
    /// sender chooses, cheap to grind, so an unkeyed hash would let one aim ids at a bucket.
    map: HashMap<[u8; 32], AcceptedMeta, RandomState>,
    /// Ids in seq order, with their seq.
    order: VecDeque<([u8; 32], u64)>,
    window: usize,
}

impl Dedup {
    pub fn new(window: usize) -> Self {
        Dedup {
            map: HashMap::default(),
            order: VecDeque::new(),
            window,
        }
    }

    pub fn get(&self, id: &[u8; 32]) -> Option<&AcceptedMeta> {
        self.map.get(id)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records a newly accepted transaction (seqs arrive in increasing order).
    pub fn insert(&mut self, meta: AcceptedMeta) {
        if self.map.insert(meta.tx_id, meta).is_none() {
            self.order.push_back((meta.tx_id, meta.seq));
        }
    }

    /// Forgets the oldest ids beyond the window, only those durable (seq <= `durable`).
    pub fn prune(&mut self, durable: u64) {
        while self.order.len() > self.window {
            match self.order.front() {
                Some(&(id, seq)) if seq <= durable => {
                    self.order.pop_front();
                    self.map.remove(&id);
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::tx::TxKind;

    fn meta(seq: u64) -> AcceptedMeta {
        let mut tx_id = [0u8; 32];
        tx_id[..8].copy_from_slice(&seq.to_le_bytes());
        AcceptedMeta {
            tx_id,
            kind: TxKind::Transfer,
            seq,
            block_number: 1,
            position: 0,
            account_index: None,
            forced: None,
            deposit: None,
        }
    }

    #[test]
    fn the_dedup_set_keeps_the_window_and_everything_not_durable() {
        let mut d = Dedup::new(16);
        // Nothing durable yet: every id stays (a resubmission must wait for durability).
        for seq in 1..=100 {
            d.insert(meta(seq));
            d.prune(0);
        }
        assert_eq!(d.len(), 100);
        // Durable up to 90: the 10 in flight and the window's last durable ids remain.
        d.prune(90);
        assert_eq!(d.len(), 16);
        assert!(d.get(&meta(84).tx_id).is_none());
        assert!(d.get(&meta(85).tx_id).is_some());
        assert!(d.get(&meta(100).tx_id).is_some());
        // Many more, durable as they go: bounded by the window.
        for seq in 101..=100_000 {
            d.insert(meta(seq));
            d.prune(seq);
            assert!(d.len() <= 16);
        }
        assert_eq!(d.get(&meta(100_000).tx_id).map(|m| m.seq), Some(100_000));
        // A window of zero keeps only what is in flight.
        let mut z = Dedup::new(0);
        z.insert(meta(1));
        z.insert(meta(2));
        z.prune(1);
        assert_eq!(z.len(), 1);
        assert!(z.get(&meta(2).tx_id).is_some());
    }
}
