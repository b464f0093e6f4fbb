//! The chain's witnesses: the lanes of each split, built from the state its credits start from,
//! and the chunks they are cut into, with the statements they prove computed natively.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use state::account::{AccountIndex, Amount, OPERATOR};
use state::apply::State;
use state::hash::Digest;
use state::split::{parts_digest_step, Payout};
use state::tx::split::Split;

use super::{OpenSplit, PayeeSlot, SplitRecord, SplitStatement};
use crate::witness::{AccountFields, LeafAccess, Overlay};

/// One lane's witness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitLane {
    /// A lane that starts a split names its payer; one that does not continues the open
    /// split, or idles if none is.
    pub start: Option<AccountIndex>,
    /// Whether the lane ends the split (folds its record).
    pub end: bool,
    /// The root the lane's writes start from unless it continues an open split (then unused):
    /// a starting split's `root_before`, an idle lane's [`PayeeSlot::idle_root`].
    pub root: Digest,
    pub slots: Vec<PayeeSlot>,
}

impl SplitLane {
    /// A lane of `m` slots that does nothing.
    pub fn idle(m: usize) -> SplitLane {
        SplitLane {
            start: None,
            end: false,
            root: PayeeSlot::idle_root(),
            slots: vec![PayeeSlot::idle(); m],
        }
    }
}

/// One chunk job's input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitChunkWitness {
    pub statement: SplitStatement,
    pub lanes: Vec<SplitLane>,
}

/// A lane with what the chain holds after it.
#[derive(Clone, Debug)]
struct BuiltLane {
    lane: SplitLane,
    carry_after: Option<OpenSplit>,
    record: Option<SplitRecord>,
}

/// The lanes of `lane_payees` slots a split of `payees` payees takes: whole lanes, at least one
/// (a split starts at a lane; one with no payee still ends in one, and is refused there).
pub fn lanes_for(payees: usize, lane_payees: usize) -> usize {
    payees.div_ceil(lane_payees.max(1)).max(1)
}

/// Builds the chain split by split (in the batch's order), then cuts it into chunks.
#[derive(Clone, Debug)]
pub struct SplitChainBuilder {
    lane_payees: usize,
    lanes: Vec<BuiltLane>,
}

impl SplitChainBuilder {
    /// A chain of lanes of `lane_payees` slots (the circuit's).
    pub fn new(lane_payees: usize) -> SplitChainBuilder {
        SplitChainBuilder {
            lane_payees: lane_payees.max(1),
            lanes: Vec::new(),
        }
    }

    /// Appends the lanes that credit `parts` (a split of `from`) to `state` as it stands when
    /// the split's credits start; `state` is not changed (the credits are written to an
    /// overlay of its tree; `&mut` only because the state hashes its tree lazily). Returns the
    /// split's record. Applies no rule of 19.1 (attack tests build refused splits with it);
    /// fails on a payee that does not exist.
    pub fn push(
        &mut self,
        state: &mut State,
        from: AccountIndex,
        parts: &[Payout],
    ) -> anyhow::Result<SplitRecord> {
        self.push_over(state, Overlay::default(), from, parts)
    }

    /// Appends the lanes of `split`, a transaction the rules accept on `state` (the state
    /// before it, which is not changed): the credits start from the root the sender's debit
    /// leaves, as in the payment circuit's split slot (SPEC 13.3), so the record is the one
    /// that slot folds ([`crate::witness::SlotWitness::split_record`]).
    pub fn push_split(&mut self, state: &mut State, split: &Split) -> anyhow::Result<SplitRecord> {
        let sender = state
            .account(split.from)
            .with_context(|| format!("sender {} does not exist", split.from))?;
        let mut debited = AccountFields::from_account(sender);
        let sum = split.parts.iter().map(|p| p.amount.get()).sum::<u64>();
        debited.balance = debited
            .balance
            .checked_sub(sum + split.fee.get())
            .context("the sender cannot pay the split")?;
        debited.nonce += 1;
        let mut overlay = Overlay::default();
        let siblings = state.proof(split.from).siblings;
        overlay.write(split.from.0, debited.leaf(), &siblings);
        self.push_over(state, overlay, split.from, &split.parts)
    }

    fn push_over(
        &mut self,
        state: &mut State,
        mut overlay: Overlay,
        from: AccountIndex,
        parts: &[Payout],
    ) -> anyhow::Result<SplitRecord> {
        let m = self.lane_payees;
        let n_lanes = lanes_for(parts.len(), m);
        let padding = Payout {
            to: OPERATOR,
            amount: Amount::ZERO,
        };
        // The running root: the one the overlay's writes left, or the state's.
        let root_before = match overlay.root() {
            Some(root) => root,
            None => state.root(),
        };
        let mut open = OpenSplit {
            root_before,
            root: root_before,
            from,
            count: 0,
            sum_lo: 0,
            sum_hi: 0,
            digest: Digest::ZERO,
            prev: AccountIndex(0),
        };
        let mut credited: Vec<(AccountIndex, u64)> = Vec::new();
        for l in 0..n_lanes {
            let mut slots = Vec::with_capacity(m);
            for j in 0..m {
                let i = l * m + j;
                let live = i < parts.len();
                let p = parts.get(i).unwrap_or(&padding);
                let (slot, root) = credit(state, &mut overlay, p, live, &credited)?;
                if live {
                    credited.push((p.to, p.amount.get()));
                    open.count += 1;
                    open.sum_lo += p.amount.get() & 0xffff_ffff;
                    open.sum_hi += p.amount.get() >> 32;
                    open.prev = p.to;
                    open.digest = parts_digest_step(open.digest, p);
                }
                open.root = root;
                slots.push(slot);
            }
            let last = l + 1 == n_lanes;
            let record = last.then(|| SplitRecord {
                root_before,
                root_after: open.root,
                from,
                n: open.count,
                // (Wrapping: the builder also makes the overflowing splits of attack tests.)
                sum: open.sum_lo.wrapping_add(open.sum_hi.wrapping_shl(32)),
                parts_digest: open.digest,
            });
            self.lanes.push(BuiltLane {
                lane: SplitLane {
                    start: (l == 0).then_some(from),
                    end: last,
                    root: root_before,
                    slots,
                },
                carry_after: (!last).then_some(open),
                record,
            });
        }
        self.lanes
            .last()
            .and_then(|l| l.record)
            .context("a split with no lane")
    }

    /// The records of the splits pushed so far, in order.
    pub fn records(&self) -> Vec<SplitRecord> {
        self.lanes.iter().filter_map(|l| l.record).collect()
    }

    /// Lanes used so far.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// The chain cut into chunks of `per_chunk` lanes, at least `min_chunks` of them (idle
    /// lanes pad the last), each with the statement its lanes prove.
    pub fn chunks(self, per_chunk: usize, min_chunks: usize) -> Vec<SplitChunkWitness> {
        let per_chunk = per_chunk.max(1);
        let n_chunks = self.lanes.len().div_ceil(per_chunk).max(min_chunks).max(1);
        let mut lanes = self.lanes.into_iter();
        let mut acc = Digest::ZERO;
        let mut carry = None;
        let mut out = Vec::with_capacity(n_chunks);
        for _ in 0..n_chunks {
            let (acc_in, carry_in) = (acc, carry);
            let mut chunk = Vec::with_capacity(per_chunk);
            for _ in 0..per_chunk {
                match lanes.next() {
                    Some(built) => {
                        if let Some(r) = built.record {
                            acc = r.absorb(acc);
                        }
                        carry = built.carry_after;
                        chunk.push(built.lane);
                    }
                    None => chunk.push(SplitLane::idle(self.lane_payees)),
                }
            }
            out.push(SplitChunkWitness {
                statement: SplitStatement {
                    acc_in,
                    carry_in,
                    acc_out: acc,
                    carry_out: carry,
                },
                lanes: chunk,
            });
        }
        out
    }
}

/// The slot crediting `p` (or writing it back, for padding) under the overlay's root, the
/// write recorded in it, and the root after. `credited`: the parts of this split credited
/// before.
fn credit(
    state: &mut State,
    overlay: &mut Overlay,
    p: &Payout,
    live: bool,
    credited: &[(AccountIndex, u64)],
) -> anyhow::Result<(PayeeSlot, Digest)> {
    let account = state
        .account(p.to)
        .with_context(|| format!("payee {} does not exist", p.to))?;
    let mut fields = AccountFields::from_account(account);
    // A payee credited earlier in this split is impossible (sorted, distinct); the operator as
    // padding after being a payee is: read its balance as credited.
    fields.balance += credited
        .iter()
        .filter(|(to, _)| *to == p.to)
        .map(|(_, a)| a)
        .sum::<u64>();
    let siblings = overlay.siblings(p.to.0, &state.proof(p.to).siblings);
    let mut after = fields;
    after.balance += p.amount.get();
    let root = overlay.write(p.to.0, after.leaf(), &siblings);
    let slot = PayeeSlot {
        live,
        amount: p.amount.get(),
        access: LeafAccess {
            index: p.to.0,
            account: Some(fields),
            siblings,
        },
    };
    Ok((slot, root))
}
