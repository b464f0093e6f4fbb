//! The chunk witnesses of a batch's diff, priority and payout trees (SPEC 13.11), from what the
//! batch settles on L1 ([`SettlementInputs`]) and the accounts before it, and the cut of its
//! split-credit chain (19.5) and its tick walks (18.7) into chunks.
//!
//! Cost: the diff chunks rebuild the state tree of the accounts before the batch (O(accounts)
//! hashes, once per planned batch); the priority and payout chunks are linear in the batch.

use anyhow::Context;
use rollup_storage::DiffCircuitKind;
use serde::Serialize;
use state::account::Account;
use state::apply::BlockContext;
use state::apply::State;
use state::diff::{AccountTree, StateDiff};
use state::tx::Transaction;

use crate::circuits::diff::diff_chunks;
use crate::circuits::diff_grouped::{grouped_chunks, GroupedParts};
use crate::circuits::payout::payout_chunks;
use crate::circuits::priority::priority_chunks;
use crate::circuits::split::{lanes_for, SplitChainBuilder, LANE_PAYEES};
use crate::circuits::ticks::{plan_walks, WalkRecord};
use crate::circuits::trees::{ChunkInput, ChunkShape};
use crate::jobs::SettlementInputs;
use crate::witness::LeafWitness;

/// The circuit that proves `diff` as the batch published it (`StateDiff::encode_published`):
/// version 1 for account records only, else the grouped circuit of version 4: the full shape
/// when a shares record or a policy's body is present, else with agent parts when a passport
/// or lanes record is, else the plain shape.
pub fn diff_kind(diff: &StateDiff) -> DiffCircuitKind {
    if diff.version() == state::diff::DIFF_VERSION {
        DiffCircuitKind::V1
    } else if !diff.shares().is_empty() || diff.passports().iter().any(|p| p.policy.is_some()) {
        DiffCircuitKind::V4Shares
    } else if diff.passports().is_empty() && diff.lanes().is_empty() {
        DiffCircuitKind::V4
    } else {
        DiffCircuitKind::V4Agents
    }
}

/// The state before a batch, as its diff chunks need it: the accounts for a version 1 diff;
/// the accounts with their stream books and profiles for a version 4 one (built only then: it
/// copies the books).
pub enum Before {
    Accounts(Vec<Account>),
    Tree(Box<AccountTree>),
}

impl Before {
    pub fn of(state: &State, kind: DiffCircuitKind) -> Before {
        match kind {
            DiffCircuitKind::V1 => Before::Accounts(state.accounts().to_vec()),
            DiffCircuitKind::V4 | DiffCircuitKind::V4Agents | DiffCircuitKind::V4Shares => {
                Before::Tree(Box::new(AccountTree::from_state(state)))
            }
        }
    }
}

/// The serialized chunk inputs of the three chained trees of one batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainChunks {
    /// Chunks of the circuit of `diff_kind`.
    pub diff: Vec<Vec<u8>>,
    pub diff_kind: DiffCircuitKind,
    pub priority: Vec<Vec<u8>>,
    pub payout: Vec<Vec<u8>>,
}

impl ChainChunks {
    /// The most chunks any of the three trees has.
    pub fn len(&self) -> usize {
        self.diff
            .len()
            .max(self.priority.len())
            .max(self.payout.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn serialize<W: Serialize, S: Serialize>(chunks: Vec<(W, S)>) -> anyhow::Result<Vec<Vec<u8>>> {
    chunks
        .into_iter()
        .map(|(witness, statement)| {
            serde_json::to_vec(&ChunkInput { witness, statement }).context("serializing a chunk")
        })
        .collect()
}

/// The chunks of batch `batch`, each tree padded with empty chunks to a power of two of at
/// least `min_chunks` and of the diff's count (so that all three have the same).
pub fn chain_chunks(
    shape: ChunkShape,
    batch: u64,
    before: &Before,
    first_priority_op: u64,
    inputs: &SettlementInputs,
    min_chunks: usize,
) -> anyhow::Result<ChainChunks> {
    let diff_kind = diff_kind(&inputs.state_diff);
    let diff = match (diff_kind, before) {
        (DiffCircuitKind::V1, Before::Accounts(accounts)) => serialize(
            diff_chunks(
                accounts,
                &inputs.state_diff,
                shape.diff_old,
                shape.diff_new,
                min_chunks,
            )
            .context("diff chunks")?,
        )?,
        (kind, Before::Tree(tree)) if kind != DiffCircuitKind::V1 => serialize(
            grouped_chunks(
                tree,
                &inputs.state_diff,
                shape.grouped_cap,
                shape.grouped_subs,
                GroupedParts::of(kind).context("a grouped diff kind")?,
                min_chunks,
            )
            .context("grouped diff chunks")?,
        )?,
        _ => anyhow::bail!("the state before batch {batch} was copied for another diff kind"),
    };
    // The diff may take more chunks than the leaves (a policy's body starts a chunk of its
    // own): every tree of the batch has the same power of two.
    let min_chunks = min_chunks.max(diff.len());
    let priority = priority_chunks(
        inputs.queue_before,
        first_priority_op,
        &inputs.settled.consumed,
        shape.priority,
        min_chunks,
    )
    .context("priority chunks")?;
    let payout = payout_chunks(
        batch,
        &inputs.settled.payouts,
        shape.payout_depth,
        min_chunks,
    )
    .context("payout chunks")?;
    Ok(ChainChunks {
        diff,
        diff_kind,
        priority: serialize(priority)?,
        payout: serialize(payout)?,
    })
}

/// The lanes of the split-credit chain of `txs`, applied to `state` (the state before them):
/// [`lanes_for`] each split, share registration and distribute, as the builder cuts them (0 for
/// a batch with none, which has no such tree). A distribute pays by the shares its account
/// has, registered before the batch or earlier in it.
pub fn split_lanes(state: &State, txs: &[(Transaction, BlockContext)]) -> usize {
    let mut registered = std::collections::HashMap::new();
    txs.iter()
        .map(|(tx, _)| match tx {
            Transaction::Split(s) => lanes_for(s.parts.len(), LANE_PAYEES),
            Transaction::RegisterShares(t) => {
                registered.insert(t.account, t.parts.len());
                lanes_for(t.parts.len(), LANE_PAYEES)
            }
            Transaction::Distribute(t) => {
                let account = t.body.account;
                let payees = registered
                    .get(&account)
                    .copied()
                    .or_else(|| state.shares_of(account).map(|s| s.parts().len()));
                lanes_for(payees.unwrap_or(0), LANE_PAYEES)
            }
            _ => 0,
        })
        .sum()
}

/// The serialized chunks of a batch's split-credit chain, cut into `shape.split_lanes` lanes
/// each and padded with idle chunks to exactly `count` (the batch's other trees' count).
pub fn split_chunks(
    chain: SplitChainBuilder,
    shape: ChunkShape,
    count: usize,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let chunks = chain.chunks(shape.split_lanes, count);
    anyhow::ensure!(
        chunks.len() == count,
        "the split-credit chain needs {} chunks of {} lanes, the batch's trees have {count}",
        chunks.len(),
        shape.split_lanes
    );
    serialize(chunks.into_iter().map(|c| (c.lanes, c.statement)).collect())
}

/// The lanes of the tick-walk tree of `txs`: one per 32 ticks of each settlement,
/// as the planner cuts it (0 for a batch without settlements, which has no such tree).
pub fn walk_lanes(txs: &[(Transaction, BlockContext)]) -> usize {
    txs.iter()
        .map(|(tx, _)| match tx {
            Transaction::StreamSettle(s) => {
                let t = &s.body.terms;
                crate::capacity::settle_lanes(t.from.get(), t.to.get()) as usize
            }
            _ => 0,
        })
        .sum()
}

/// The tick walks the settlements of `leaves` hand over (SPEC 18.7), in batch order.
pub fn walk_records(leaves: &[LeafWitness]) -> Vec<WalkRecord> {
    leaves
        .iter()
        .flat_map(|l| l.slots.iter().filter_map(|s| s.walk_record()))
        .collect()
}

/// The serialized chunks of a batch's tick-walk tree: the walks of `records` cut into chunks of
/// `shape.walk_lanes` lanes and padded with idle chunks to exactly `count` (the batch's other
/// trees' count). Each walk is checked natively on the way (a record whose tick is not on its
/// stream's chain is refused here, before anything is proven).
pub fn walk_chunks(
    records: &[WalkRecord],
    shape: ChunkShape,
    count: usize,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let chunks = plan_walks(records, shape.walk_lanes, count)?;
    anyhow::ensure!(
        chunks.len() == count,
        "the tick-walk tree needs {} chunks of {} lanes, the batch's trees have {count}",
        chunks.len(),
        shape.walk_lanes
    );
    serialize(chunks.into_iter().map(|c| (c.lanes, c.statement)).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use state::account::{AccountIndex, Amount, Nonce, Timestamp};
    use state::crypto::schnorr::SecretKey;
    use state::split::Payout;
    use state::tx::{Deposit, Domain, UnsignedSplit};

    /// A signed split from account 1 to `payees` payees (2, 3, ...), 1 each.
    pub(crate) fn split(payees: u32) -> (Transaction, BlockContext) {
        let t = UnsignedSplit {
            from: AccountIndex(1),
            parts: (0..payees)
                .map(|i| Payout {
                    to: AccountIndex(2 + i),
                    amount: Amount::new(1).unwrap(),
                })
                .collect(),
            fee: Amount::ZERO,
            nonce: Nonce::ZERO,
            valid_until: Timestamp::new(1).unwrap(),
        }
        .sign(
            &Domain {
                chain_id: 1,
                rollup: [0; 20],
            },
            &SecretKey::from_bytes(&[7; 40]).unwrap(),
        );
        (Transaction::Split(t), BlockContext::at(Timestamp::ZERO))
    }

    #[test]
    fn a_split_takes_one_lane_per_sixteen_payees() {
        let deposit = (
            Transaction::Deposit(Deposit {
                seq: 0,
                to: AccountIndex(1),
                amount: Amount::new(5).unwrap(),
            }),
            BlockContext::at(Timestamp::ZERO),
        );
        let state = State::genesis(
            Domain {
                chain_id: 1,
                rollup: [0; 20],
            },
            SecretKey::from_bytes(&[7; 40]).unwrap().public_key(),
        );
        assert_eq!(
            split_lanes(&state, std::slice::from_ref(&deposit)),
            0,
            "no split tree"
        );
        assert_eq!(split_lanes(&state, &[split(1)]), 1);
        assert_eq!(
            split_lanes(&state, &[split(16), deposit.clone(), split(17)]),
            3
        );
        assert_eq!(split_lanes(&state, &[split(1024)]), 64);
    }

    #[test]
    fn share_registrations_and_distributes_take_the_lanes_of_their_list() {
        use state::tx::{DistributeBody, Unsigned, UnsignedRegisterShares};
        let domain = Domain {
            chain_id: 1,
            rollup: [0; 20],
        };
        let key = SecretKey::from_bytes(&[7; 40]).unwrap();
        let state = State::genesis(domain, key.public_key());
        let ctx = BlockContext::at(Timestamp::ZERO);
        let owner = AccountIndex(1);
        let register = UnsignedRegisterShares {
            account: owner,
            parts: (0..17).map(|i| (AccountIndex(2 + i), 1)).collect(),
            fee: Amount::ZERO,
            nonce: Nonce::ZERO,
            valid_until: Timestamp::new(1).unwrap(),
        }
        .sign(&domain, &key);
        let distribute = |account| {
            let t = Unsigned {
                body: DistributeBody {
                    signer: AccountIndex(2),
                    account,
                },
                fee: Amount::ZERO,
                nonce: Nonce::ZERO,
                valid_until: Timestamp::new(1).unwrap(),
            }
            .sign(&domain, &key);
            (Transaction::Distribute(t), ctx)
        };
        // 17 payees: two lanes for the registration, two for a distribute after it in the
        // batch; a distribute of an account with no shares (refused by the rules) one.
        let txs = [(register.into(), ctx), distribute(owner)];
        assert_eq!(split_lanes(&state, &txs), 4);
        assert_eq!(split_lanes(&state, &[distribute(AccountIndex(5))]), 1);
    }
}
