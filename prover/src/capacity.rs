//! What one batch proof can hold: the capacity a node seals its batches by.
//!
//! A batch is proven as `2^L` chunks per proof tree (SPEC 13.11): leaves of `k` transactions,
//! diff chunks of `2k + 1` existing and `k` new accounts (or `2k + 1` grouped slots), priority
//! chunks of `k` ops, payout chunks of `2^ceil(log2 k)` payouts, split chunks of `k` lanes and
//! tick-walk chunks of `16 k` lanes of 32 ticks ([`ChunkShape::for_leaf`]). The planner pads every tree to the largest count, so a batch
//! needing more than `2^L` chunks in any tree, where `L` is the highest final level the
//! deployment pinned, plans a final circuit nobody can verify and is never proven: everything
//! after it waits. The node therefore seals a batch before a transaction that could push it past
//! [`BatchCapacity`], and refuses at the door a transaction that no batch could hold.
//!
//! **Invariant**: [`BatchCapacity::chunks_for`] is never below the count the planner builds for
//! the same batch (each term is an upper bound of its tree's count; the diff term takes the
//! larger of the two layouts, since which one a batch publishes depends on its agent records).
//! [`BatchLoad::bound_of`] is an upper bound of what one transaction adds, computed from the
//! transaction alone (and, for a distribute, its account's share count), so the check can run
//! before the transaction is applied. Both are conservative: a batch may seal a little early.
//!
//! **Cost**: a handful of integer divisions per accepted transaction.

use state::account::AccountIndex;
use state::tx::Transaction;

use crate::circuits::diff_grouped::RUN_ITEMS;
use crate::circuits::split::{lanes_for, LANE_PAYEES};
use crate::circuits::ticks::LANE_STEPS;
use crate::circuits::trees::ChunkShape;
use crate::gadgets::allow::RUN_PAYEES;

/// What a batch (or one transaction) puts into the proof trees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchLoad {
    /// Transactions: leaf slots.
    pub txs: u64,
    /// Diff records of accounts that existed before the batch.
    pub old_accounts: u64,
    /// Diff records of accounts the batch created.
    pub new_accounts: u64,
    /// Grouped diff sub-slots beyond the accounts': stream records, and the runs of a shares
    /// record's items and of an allow-list's payees.
    pub stream_records: u64,
    /// Passport records that carry their policy body: each starts a grouped diff chunk (the
    /// circuit reads a body in a chunk's first slot), leaving at most a chunk unused before it.
    pub policy_bodies: u64,
    /// Deposits and forced withdrawals consumed from the L1 queue.
    pub priority_ops: u64,
    /// Withdrawals and refunded deposits paid out on L1.
    pub payouts: u64,
    /// Lanes of the split-credit chain.
    pub split_lanes: u64,
    /// Lanes of the tick-walk tree (one per [`LANE_STEPS`] ticks a settlement walks).
    pub walk_lanes: u64,
}

impl BatchLoad {
    /// The sum of two loads.
    pub fn plus(&self, o: &BatchLoad) -> BatchLoad {
        BatchLoad {
            txs: self.txs + o.txs,
            old_accounts: self.old_accounts + o.old_accounts,
            new_accounts: self.new_accounts + o.new_accounts,
            stream_records: self.stream_records + o.stream_records,
            policy_bodies: self.policy_bodies + o.policy_bodies,
            priority_ops: self.priority_ops + o.priority_ops,
            payouts: self.payouts + o.payouts,
            split_lanes: self.split_lanes + o.split_lanes,
            walk_lanes: self.walk_lanes + o.walk_lanes,
        }
    }

    /// An upper bound of what `tx` adds to a batch, whatever the state: every account it may
    /// touch counted as a record of its own (the operator, which takes the fee, included).
    /// `shares_of` gives the number of shares a distributing account registered (a distribute
    /// pays each of them).
    pub fn bound_of(tx: &Transaction, shares_of: impl Fn(AccountIndex) -> usize) -> BatchLoad {
        let one = BatchLoad {
            txs: 1,
            ..BatchLoad::default()
        };
        match tx {
            Transaction::Register(_) => BatchLoad {
                new_accounts: 1,
                ..one
            },
            Transaction::Transfer(_) => BatchLoad {
                old_accounts: 3,
                ..one
            },
            Transaction::Withdraw(_) => BatchLoad {
                old_accounts: 2,
                payouts: 1,
                ..one
            },
            // Credited, or consumed and refunded on L1 (SPEC 15.5).
            Transaction::Deposit(_) => BatchLoad {
                old_accounts: 1,
                priority_ops: 1,
                payouts: 1,
                ..one
            },
            Transaction::ForcedWithdraw(_) => BatchLoad {
                old_accounts: 2,
                priority_ops: 1,
                payouts: 1,
                ..one
            },
            Transaction::StreamSettle(t) => BatchLoad {
                old_accounts: 3,
                stream_records: 1,
                walk_lanes: settle_lanes(t.body.terms.from.get(), t.body.terms.to.get()),
                ..one
            },
            // One path whatever it settles (SPEC 18.8): no walk.
            Transaction::StreamOpen(_)
            | Transaction::StreamClose(_)
            | Transaction::StreamSettlePath(_) => BatchLoad {
                old_accounts: 3,
                stream_records: 1,
                ..one
            },
            Transaction::Split(s) => BatchLoad {
                old_accounts: s.parts.len() as u64 + 2,
                split_lanes: lanes_for(s.parts.len(), LANE_PAYEES) as u64,
                ..one
            },
            // A delegation creates the agent's account; a sweep moves the agent's balance to
            // its owner; a delegation or a policy change publishes the policy's body.
            Transaction::Passport(t) => {
                let body = t.action.policy().map_or(BatchLoad::default(), policy_body);
                BatchLoad {
                    old_accounts: 3,
                    new_accounts: 1,
                    ..body.plus(&one)
                }
            }
            Transaction::RegisterShares(t) => BatchLoad {
                old_accounts: 2,
                stream_records: shares_runs(t.parts.len()),
                ..one
            },
            Transaction::Distribute(d) => BatchLoad {
                old_accounts: shares_of(d.body.account) as u64 + 3,
                ..one
            },
        }
    }
}

/// What a policy body adds to the grouped diff: a chunk of its own at most, and its
/// allow-list's runs.
pub fn policy_body(policy: &state::passport::Policy) -> BatchLoad {
    BatchLoad {
        policy_bodies: 1,
        stream_records: policy.allow.payees().len().div_ceil(RUN_PAYEES) as u64,
        ..BatchLoad::default()
    }
}

/// The runs a shares record of `n` entries takes in the grouped diff (its header counts as an
/// item).
pub fn shares_runs(n: usize) -> u64 {
    (n + 1).div_ceil(RUN_ITEMS) as u64
}

/// The tick-walk lanes of a settlement from tick `from` to tick `to` (as the planner cuts it).
pub fn settle_lanes(from: u32, to: u32) -> u64 {
    u64::from(to.saturating_sub(from)).div_ceil(LANE_STEPS as u64)
}

/// What the deployment's pinned circuits can prove in one batch: leaves of `leaf_size`
/// transactions, tick-walk chunks of `walk_lanes` lanes, up to `2^top_level` chunks per tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchCapacity {
    pub leaf_size: usize,
    pub walk_lanes: usize,
    pub top_level: u32,
}

impl BatchCapacity {
    /// Leaves of `leaf_size` with the chunk shape they default to
    /// ([`ChunkShape::for_leaf`]), up to `2^top_level` chunks per tree.
    pub fn new(leaf_size: usize, top_level: u32) -> BatchCapacity {
        let leaf_size = leaf_size.max(1);
        BatchCapacity {
            leaf_size,
            walk_lanes: ChunkShape::for_leaf(leaf_size).walk_lanes,
            top_level,
        }
    }

    /// The same capacity with tick-walk chunks of `lanes` lanes
    /// ([`ChunkShape::with_walk_lanes`]).
    pub fn with_walk_lanes(self, lanes: usize) -> BatchCapacity {
        BatchCapacity {
            walk_lanes: self.shape().with_walk_lanes(lanes).walk_lanes,
            ..self
        }
    }

    /// The chunk shape of the deployment's circuits.
    pub fn shape(&self) -> ChunkShape {
        ChunkShape::for_leaf(self.leaf_size).with_walk_lanes(self.walk_lanes)
    }

    /// The chunks per tree a final circuit of `top_level` verifies.
    pub fn max_chunks(&self) -> u64 {
        1u64 << self.top_level.min(62)
    }

    /// An upper bound of the chunks per tree the planner builds for a batch of `load` (before
    /// padding to a power of two): the largest of the trees' counts.
    pub fn chunks_for(&self, load: &BatchLoad) -> u64 {
        let shape = self.shape();
        let per = |n: u64, cap: usize| n.div_ceil(cap.max(1) as u64);
        let accounts = load.old_accounts + load.new_accounts;
        // Version 1 fills the new-account slots only once the existing ones are placed (at
        // most one chunk shared); the grouped layout gives every account and every stream
        // record past an account's first its own slot.
        let diff_v1 =
            per(load.old_accounts, shape.diff_old) + per(load.new_accounts, shape.diff_new);
        let grouped = per(
            accounts + load.stream_records,
            shape.grouped_cap * shape.grouped_subs,
        ) + load.policy_bodies;
        [
            per(load.txs, self.leaf_size),
            diff_v1,
            grouped,
            per(load.priority_ops, shape.priority),
            per(load.payouts, 1 << shape.payout_depth),
            per(load.split_lanes, shape.split_lanes),
            per(load.walk_lanes, shape.walk_lanes),
            1,
        ]
        .into_iter()
        .max()
        .unwrap_or(1)
    }

    /// Whether a batch of `load` can be proven by the pinned circuits.
    pub fn fits(&self, load: &BatchLoad) -> bool {
        self.chunks_for(load) <= self.max_chunks()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::account::Amount;
    use state::crypto::schnorr::SecretKey;

    fn split(payees: u32) -> Transaction {
        crate::planner::chunks::tests::split(payees).0
    }

    fn devnet() -> BatchCapacity {
        BatchCapacity::new(8, 4)
    }

    #[test]
    fn transfers_fill_the_leaves_first() {
        // 128 transfers are 16 leaves of 8; their accounts (3 each, counted apart) need
        // 384 / 17 = 23 diff chunks, so the bound stops them earlier: at 90 transfers (270
        // records, 16 chunks of 17).
        let t = BatchLoad {
            txs: 1,
            old_accounts: 3,
            ..BatchLoad::default()
        };
        let mut load = BatchLoad::default();
        let mut n = 0;
        while devnet().fits(&load.plus(&t)) {
            load = load.plus(&t);
            n += 1;
        }
        assert_eq!(n, 90);
        assert_eq!(devnet().chunks_for(&load), 16);
    }

    #[test]
    fn a_split_counts_its_payees_and_its_lanes() {
        let s = BatchLoad::bound_of(&split(1_024), |_| 0);
        assert_eq!(s.split_lanes, 64);
        assert_eq!(s.old_accounts, 1_026);
        // 1,026 diff records need 61 chunks of 17: a level-6 final at least.
        assert!(!devnet().fits(&s));
        let l6 = BatchCapacity {
            top_level: 6,
            ..devnet()
        };
        assert!(l6.fits(&s));
        assert_eq!(l6.chunks_for(&s), 61);
        // The largest split the devnet's pins can prove: 16 chunks of 17 records.
        let fits = (1..=1_024)
            .take_while(|&n| devnet().fits(&BatchLoad::bound_of(&split(n), |_| 0)))
            .last();
        assert_eq!(fits, Some(270));
    }

    /// A policy change to a list of `n` payees, signed by account 2.
    fn set_policy(n: u32) -> Transaction {
        use state::account::{Nonce, Timestamp};
        use state::passport::{AllowList, Card, Policy};
        use state::tx::passport::{PassportAction, UnsignedPassportTx};
        let amount = |v| Amount::new(v).unwrap();
        let policy = Policy {
            cap: amount(100),
            window: 60,
            max_payment: amount(10),
            max_fee: amount(1),
            expiry: Timestamp::new(1_900_000_000).unwrap(),
            allow: AllowList::new((0..n).map(|i| AccountIndex(10 + i)).collect()).unwrap(),
            card: Card::new([1; 32], String::new()).unwrap(),
        };
        let key = SecretKey::random(&mut rand::rngs::OsRng);
        Transaction::Passport(
            UnsignedPassportTx {
                owner: AccountIndex(2),
                action: PassportAction::SetPolicy {
                    agent: AccountIndex(3),
                    policy,
                },
                fee: amount(1),
                nonce: Nonce::new(0).unwrap(),
                valid_until: Timestamp::MAX,
            }
            .sign(
                &state::tx::Domain {
                    chain_id: 1,
                    rollup: [0; 20],
                },
                &key,
            ),
        )
    }

    #[test]
    fn a_policy_body_counts_a_chunk_of_its_own_and_its_lists_runs() {
        let cap = BatchCapacity::new(4, 3);
        let none = BatchLoad::bound_of(&set_policy(0), |_| 0);
        assert_eq!((none.policy_bodies, none.stream_records), (1, 0));
        // 1,024 payees: 64 runs of 16, beside the 4 accounts: 8 chunks of 9 slots, and the
        // one the body may leave unused before it.
        let full = BatchLoad::bound_of(&set_policy(1_024), |_| 0);
        assert_eq!((full.policy_bodies, full.stream_records), (1, 64));
        assert_eq!(cap.chunks_for(&full), 9);
        assert!(!cap.fits(&full.plus(&none)), "9 + 1 chunks: past 2^3");
        // A shares registration's runs of eleven items count too (its header is one).
        assert_eq!(
            (shares_runs(10), shares_runs(11), shares_runs(1_024)),
            (1, 2, 94)
        );
    }

    #[test]
    fn every_tree_is_counted() {
        let cap = BatchCapacity::new(4, 1);
        let at = |load: BatchLoad| cap.chunks_for(&load);
        let zero = BatchLoad::default();
        assert_eq!(at(zero), 1);
        assert_eq!(at(BatchLoad { txs: 9, ..zero }), 3);
        assert_eq!(
            at(BatchLoad {
                priority_ops: 5,
                ..zero
            }),
            2
        );
        assert_eq!(at(BatchLoad { payouts: 9, ..zero }), 3);
        // 64 walk lanes per chunk (16 per slot), of 32 ticks each.
        assert_eq!(
            at(BatchLoad {
                walk_lanes: 65,
                ..zero
            }),
            2
        );
        assert_eq!((settle_lanes(0, 2_048), settle_lanes(10, 43)), (64, 2));
        assert_eq!(
            at(BatchLoad {
                split_lanes: 5,
                ..zero
            }),
            2
        );
        assert_eq!(
            at(BatchLoad {
                new_accounts: 5,
                ..zero
            }),
            2
        );
        assert_eq!(
            at(BatchLoad {
                old_accounts: 10,
                ..zero
            }),
            2
        );
        assert_eq!(
            at(BatchLoad {
                stream_records: 10,
                ..zero
            }),
            2
        );
        assert!(!cap.fits(&BatchLoad { payouts: 9, ..zero }));
    }

    #[test]
    fn larger_walk_chunks_settle_more_ticks_per_batch() {
        // A deployment of leaves of 8 at top level 4: 128 lanes per walk chunk by default
        // (4,096 ticks), so 16 chunks settle 65,536 ticks; with chunks of 1,600 lanes a
        // settlement of a million ticks fits.
        let million = BatchLoad {
            txs: 1,
            walk_lanes: settle_lanes(0, 1_000_000),
            ..BatchLoad::default()
        };
        assert_eq!(million.walk_lanes, 31_250);
        assert_eq!(devnet().walk_lanes, 128);
        assert_eq!(devnet().chunks_for(&million), 245);
        assert!(!devnet().fits(&million));
        let dense = devnet().with_walk_lanes(1_600);
        assert_eq!(dense.shape().walk_lanes, 1_600);
        assert_eq!(dense.chunks_for(&million), 20);
        assert!(!dense.fits(&million), "20 chunks are more than 16");
        assert!(BatchCapacity {
            top_level: 5,
            ..dense
        }
        .fits(&million));
        // The other trees keep the leaf size's shape; the lanes stay within the maximum.
        assert_eq!(
            dense.shape(),
            ChunkShape {
                walk_lanes: 1_600,
                ..ChunkShape::for_leaf(8)
            }
        );
        assert_eq!(devnet().with_walk_lanes(1 << 20).walk_lanes, 4_096);
    }

    #[test]
    fn the_diff_term_bounds_the_planner_s_diff_chunks() {
        use rand::SeedableRng;
        use state::account::Account;
        use state::diff::StateDiff;
        // The real chunker (witnesses only, nothing proven) over batches of `old` changed and
        // `new` created accounts: its padded count never exceeds the bound's.
        let cap = BatchCapacity::new(2, 8);
        let shape = cap.shape();
        let key = |seed: u64| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            SecretKey::random(&mut rng).public_key()
        };
        let before: Vec<Account> = (0..24).map(|i| Account::new(key(i))).collect();
        for (old, new) in [
            (0, 1),
            (1, 0),
            (5, 0),
            (5, 2),
            (6, 3),
            (11, 7),
            (24, 9),
            (3, 13),
        ] {
            let mut after = before.clone();
            for a in after.iter_mut().take(old) {
                a.balance = Amount::new(7).unwrap();
            }
            after.extend((0..new).map(|i| Account::new(key(100 + i as u64))));
            let touched = (0..old as u32).map(AccountIndex);
            let diff = StateDiff::from_accounts(&after, touched, before.len() as u64).unwrap();
            let built = crate::circuits::diff::diff_chunks(
                &before,
                &diff,
                shape.diff_old,
                shape.diff_new,
                1,
            )
            .unwrap()
            .len() as u64;
            let load = BatchLoad {
                old_accounts: old as u64,
                new_accounts: new as u64,
                ..BatchLoad::default()
            };
            let bound = cap.chunks_for(&load).next_power_of_two();
            assert!(
                built <= bound,
                "{old} + {new}: {built} chunks built, bound {bound}"
            );
        }
    }
}
