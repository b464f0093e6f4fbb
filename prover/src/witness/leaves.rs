//! A batch cut into leaves: every transaction's slot in order, the running commitments
//! between them, no-op padding.

use state::account::Timestamp;
use state::apply::{BlockContext, State};
use state::hash::Digest;
use state::pubdata::{PubdataCommitment, WithdrawalsCommitment};
use state::tx::Transaction;

use super::slot::{noop_slot, tx_slot};
use super::{absorb_entry, Depositors, LeafWitness, SlotWitness, WitnessError};
use crate::circuits::public::RangeStatement;
use crate::circuits::split::SplitChainBuilder;

/// Running values between slots.
#[derive(Clone, Copy)]
struct Io {
    root: Digest,
    pubdata: Digest,
    withdrawals: Digest,
    deposits: u64,
    entries: Digest,
    /// The split records handed over so far (SPEC 13.1).
    splits: Digest,
    /// The settlements' tick walks handed over so far (SPEC 13.1, 18.7).
    walks: Digest,
}

/// How many leaves [`leaf_witnesses`] makes of `txs` transactions in leaves of `k`: one per
/// `k` (the last partly filled), then with `min_leaves > 0` padded to a power of two of at
/// least `min_leaves` (0: no padding). The planner sizes the batch's other trees with it.
pub fn leaf_count(txs: usize, k: usize, min_leaves: usize) -> usize {
    let n = txs.div_ceil(k.max(1));
    if min_leaves > 0 {
        n.max(min_leaves).next_power_of_two()
    } else {
        n
    }
}

/// Witnesses of the leaf proofs of a batch: `txs` in order, each with its block's context,
/// applied to `state` with the native rules, cut into chunks of `k` slots (the last padded
/// with no-op slots); with `min_leaves > 0`, whole no-op leaves are added so that the number
/// of leaves is a power of two, at least `min_leaves` (0: no padding). Leaf `i` starts where leaf `i - 1` ends;
/// the first starts from the state's root, `ZERO` commitments and `state.next_deposit_seq()`.
///
/// A transaction the native rules reject yields [`WitnessError::Rejected`]; `state` then holds
/// the transactions before it.
pub fn leaf_witnesses(
    state: &mut State,
    txs: &[(Transaction, BlockContext)],
    batch_timestamp: Timestamp,
    k: usize,
    min_leaves: usize,
    depositors: Depositors<'_>,
) -> Result<Vec<LeafWitness>, WitnessError> {
    leaf_witnesses_and_chain(state, txs, batch_timestamp, k, min_leaves, depositors, None)
}

/// [`leaf_witnesses`], appending to `chain` (if given) the lanes of every split of the batch,
/// each built from the state just before it: the split-credit chain whose records are the
/// ones the leaves fold (checked).
pub fn leaf_witnesses_and_chain(
    state: &mut State,
    txs: &[(Transaction, BlockContext)],
    batch_timestamp: Timestamp,
    k: usize,
    min_leaves: usize,
    depositors: Depositors<'_>,
    mut chain: Option<&mut SplitChainBuilder>,
) -> Result<Vec<LeafWitness>, WitnessError> {
    if k == 0 {
        return Err(WitnessError::ZeroK);
    }
    let domain = state.domain().digest();
    let mut pubdata = PubdataCommitment::new();
    let mut withdrawals = WithdrawalsCommitment::new();
    let mut entries = Digest::ZERO;
    let start = Io {
        root: state.root(),
        pubdata: pubdata.digest(),
        withdrawals: withdrawals.digest(),
        deposits: state.next_deposit_seq(),
        entries,
        splits: Digest::ZERO,
        walks: Digest::ZERO,
    };
    let mut splits = Digest::ZERO;
    let mut walks = Digest::ZERO;
    let mut slots = Vec::with_capacity(txs.len());
    let mut after = Vec::with_capacity(txs.len());
    for (position, (tx, ctx)) in txs.iter().enumerate() {
        let valid_until = match tx {
            Transaction::Register(r) => Some(r.valid_until),
            Transaction::Transfer(t) => Some(t.valid_until),
            Transaction::Withdraw(w) => Some(w.valid_until),
            Transaction::StreamOpen(t) => Some(t.valid_until),
            Transaction::StreamSettle(t) => Some(t.valid_until),
            Transaction::StreamClose(t) => Some(t.valid_until),
            Transaction::StreamSettlePath(t) => Some(t.valid_until),
            Transaction::Split(t) => Some(t.valid_until),
            Transaction::Passport(t) => Some(t.valid_until),
            Transaction::RegisterShares(t) => Some(t.valid_until),
            Transaction::Distribute(t) => Some(t.valid_until),
            // Judged at its L1 request time (in the rules and in the circuit).
            Transaction::Deposit(_) | Transaction::ForcedWithdraw(_) => None,
        };
        // Before the slot applies the split: its credits start from the state before it. A
        // split the rules refuse fails here or in the slot; only the slot's verdict counts.
        let chained = match (tx, chain.as_deref_mut()) {
            (Transaction::Split(split), Some(chain)) => {
                Some(chain.push_split(state, split, ctx.batch_timestamp))
            }
            (Transaction::RegisterShares(t), Some(chain)) => {
                Some(chain.push_register_tx(state, t, ctx.batch_timestamp))
            }
            (Transaction::Distribute(t), Some(chain)) => {
                Some(chain.push_distribute_tx(state, t, ctx.batch_timestamp))
            }
            _ => None,
        }
        .map(|r| r.map_err(|e| format!("{e:#}")));
        let (mut slot, effects) = tx_slot(state, tx, ctx, position)?;
        if let Some(record) = chained {
            let record = record.map_err(|e| {
                WitnessError::Internal(format!("slot {position}: the split-credit chain: {e}"))
            })?;
            if slot.split_record() != Some(record) {
                return Err(WitnessError::Internal(format!(
                    "slot {position}: the split-credit chain folds another record than the \
                     leaf: {record:?}, the leaf's {:?}",
                    slot.split_record()
                )));
            }
        }
        if let Transaction::Deposit(d) = tx {
            slot.depositor = depositors(d.seq)
                .ok_or(WitnessError::UnknownDepositor { seq: d.seq })?
                .0;
        }
        entries = absorb_entry(entries, &effects.pubdata, depositors)?;
        if valid_until.is_some_and(|v| v < batch_timestamp) {
            return Err(WitnessError::ExpiredAtBatchTimestamp { position });
        }
        pubdata.absorb(&effects.pubdata);
        if let Some(w) = &effects.withdrawal {
            withdrawals.absorb(w);
        }
        if let Some(r) = slot.split_record() {
            splits = r.absorb(splits);
        }
        if let Some(r) = slot.walk_record() {
            walks = crate::circuits::ticks::absorb(walks, &r);
        }
        slots.push(slot);
        after.push(Io {
            root: state.root(),
            pubdata: pubdata.digest(),
            withdrawals: withdrawals.digest(),
            deposits: state.next_deposit_seq(),
            entries,
            splits,
            walks,
        });
    }
    let n_leaves = leaf_count(slots.len(), k, min_leaves);
    let end = after.last().copied().unwrap_or(start);
    let mut leaves = Vec::with_capacity(n_leaves);
    let mut slots = slots.into_iter();
    for i in 0..n_leaves {
        let first = i * k;
        let io_in = if first == 0 {
            start
        } else {
            after.get(first - 1).copied().unwrap_or(end)
        };
        let mut leaf_slots: Vec<SlotWitness> = slots.by_ref().take(k).collect();
        let used = leaf_slots.len();
        let io_out = if used == 0 {
            io_in
        } else {
            after[first + used - 1]
        };
        while leaf_slots.len() < k {
            leaf_slots.push(noop_slot(state));
        }
        leaves.push(LeafWitness {
            statement: RangeStatement {
                old_root: io_in.root,
                new_root: io_out.root,
                pubdata_in: io_in.pubdata,
                pubdata_out: io_out.pubdata,
                withdrawals_in: io_in.withdrawals,
                withdrawals_out: io_out.withdrawals,
                deposits_first: io_in.deposits,
                deposits_next: io_out.deposits,
                timestamp: batch_timestamp.get(),
                domain,
                entries_in: io_in.entries,
                entries_out: io_out.entries,
                splits_in: io_in.splits,
                splits_out: io_out.splits,
                walks_in: io_in.walks,
                walks_out: io_out.walks,
            },
            slots: leaf_slots,
        });
    }
    Ok(leaves)
}
