//! Wake-ups for `WatchReceipts` streams, keyed by account.
//!
//! A watcher must cost nothing while its account is quiet: it sleeps on a per-account
//! notification and queries Postgres only when a commit touched its account (one indexed
//! query per wake). The committer calls [`AccountWakeups::notify`] after each durable commit
//! with the accounts the commit touched; the cost is one map lookup per touched account, never
//! one per watcher, so 10,000 idle watchers add nothing to a commit.
//!
//! Invariant: a watcher subscribes before its first query. A commit that lands after the
//! subscription wakes it; one that landed before is seen by that first query. Nothing is missed.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// Per-account notification channels; the value is the durable seq of the last commit that
/// touched the account.
#[derive(Default)]
pub struct AccountWakeups {
    senders: Mutex<HashMap<u32, watch::Sender<u64>>>,
}

impl AccountWakeups {
    /// A receiver that changes whenever a commit touching `account` becomes durable.
    pub fn subscribe(&self, account: u32) -> watch::Receiver<u64> {
        let mut senders = self.lock();
        // Channels whose watchers all left are swept here rather than on every commit: the
        // map stays bounded by the accounts watched right now (plus those since the last sweep).
        if senders.len() >= 1024 && senders.len().is_power_of_two() {
            senders.retain(|_, s| s.receiver_count() > 0);
        }
        senders
            .entry(account)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes the watchers of every account in `accounts` (duplicates are harmless).
    pub fn notify(&self, accounts: impl IntoIterator<Item = u32>, durable_seq: u64) {
        let mut senders = self.lock();
        if senders.is_empty() {
            return;
        }
        for a in accounts {
            if let Some(s) = senders.get(&a) {
                if s.receiver_count() == 0 {
                    senders.remove(&a);
                } else {
                    s.send_replace(durable_seq);
                }
            }
        }
    }

    /// Accounts with a live channel (for tests and the metric).
    pub fn watched_accounts(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, watch::Sender<u64>>> {
        // A panic while holding this lock cannot leave the map inconsistent (every operation
        // is a single insert/remove/send), so a poisoned lock is still usable.
        self.senders.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_touched_accounts_wake() {
        let w = AccountWakeups::default();
        let mut a = w.subscribe(7);
        let b = w.subscribe(8);
        w.notify([9, 10], 5);
        assert!(!a.has_changed().unwrap_or(true));
        assert!(!b.has_changed().unwrap_or(true));
        w.notify([7], 6);
        assert!(a.has_changed().unwrap_or(false));
        assert_eq!(*a.borrow_and_update(), 6);
        assert!(!b.has_changed().unwrap_or(true));
    }

    #[tokio::test]
    async fn departed_watchers_are_swept() {
        let w = AccountWakeups::default();
        let a = w.subscribe(1);
        drop(a);
        assert_eq!(w.watched_accounts(), 1);
        w.notify([1], 2);
        assert_eq!(w.watched_accounts(), 0);
    }
}
