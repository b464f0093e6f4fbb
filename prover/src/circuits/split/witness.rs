//! The chain's witnesses: the lanes of each split, built from the state its credits start from,
//! and the chunks they are cut into, with the statements they prove computed natively.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use state::account::{AccountIndex, Amount, Nonce, Timestamp, OPERATOR};
use state::apply::State;
use state::ext::{ext_digest, Profile};
use state::hash::Digest;
use state::lanes::Lane;
use state::passport::{charge, Payees, Spend};
use state::split::{list_digest_step, shares_digest, Payout, Shares};
use state::tx::split::Split;
use state::tx::{Distribute, RegisterShares};

use super::{OpenSplit, PayeeSlot, SplitKind, SplitRecord, SplitStatement};
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
    /// The kind of the run the lane is in (what a starting lane opens).
    #[serde(default)]
    pub kind: SplitKind,
    /// A distribution's total (0 for the other kinds).
    #[serde(default)]
    pub total: u64,
    pub slots: Vec<PayeeSlot>,
}

impl SplitLane {
    /// A lane of `m` slots that does nothing.
    pub fn idle(m: usize) -> SplitLane {
        SplitLane {
            start: None,
            end: false,
            root: PayeeSlot::idle_root(),
            kind: SplitKind::Pay,
            total: 0,
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

/// `who`'s account as a signed transaction's slot leaves it before anything is credited:
/// `debit` (its amount and fee) paid, its nonce used.
fn signer_debited(
    state: &State,
    who: AccountIndex,
    debit: u64,
    spend: &Spend<'_>,
    clock: Timestamp,
    nonce: Nonce,
) -> anyhow::Result<(AccountFields, Profile)> {
    let account = state
        .account(who)
        .with_context(|| format!("account {who} does not exist"))?;
    let mut fields = AccountFields::from_account(account);
    fields.balance = fields
        .balance
        .checked_sub(debit)
        .with_context(|| format!("account {who} cannot pay {debit}"))?;
    // A spend raises its lane: lane 0's number is the leaf's, the others' are the profile's
    // `lanes` part (SPEC 20.1); an agent's charges its passport (20.4), another part.
    let mut profile = state.profile_of(who);
    let mut changed = false;
    match nonce.lane() {
        Lane::ZERO => fields.nonce += 1,
        _ => {
            let mut lanes = state.lanes_of(who);
            lanes.set(nonce.next_in_lane().context("an exhausted lane")?);
            profile.lanes = lanes.digest();
            changed = true;
        }
    }
    if let Some(p) = state.passport(who) {
        let charge = charge(p, spend, clock).map_err(|r| anyhow::anyhow!("{r}"))?;
        let mut after = p.clone();
        after.record(charge);
        profile.passport = after.digest();
        changed = true;
    }
    if changed {
        fields.ext = ext_digest(state.streams_of(who).root(), profile.digest());
    }
    Ok((fields, profile))
}

/// A registration's slot values: the points in the amount's place (nothing is credited).
fn registration_values(parts: &[(AccountIndex, u16)]) -> Vec<Value> {
    parts
        .iter()
        .map(|&(to, bps)| Value {
            to,
            amount: u64::from(bps),
            bps: 0,
        })
        .collect()
}

/// A distribution's slot values: each payee's payout (SPEC 19.3) and points.
fn distribution_values(shares: &Shares, total: Amount) -> Vec<Value> {
    shares
        .parts()
        .iter()
        .zip(shares.split(total))
        .map(|(&(to, bps), p)| Value {
            to,
            amount: p.amount.get(),
            bps,
        })
        .collect()
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
    pub fn push_split(
        &mut self,
        state: &mut State,
        split: &Split,
        clock: Timestamp,
    ) -> anyhow::Result<SplitRecord> {
        let sum = split.parts.iter().map(|p| p.amount.get()).sum::<u64>();
        let spend = Spend {
            value: Amount::new(sum).context("a sum above 2^63 - 1")?,
            fee: split.fee,
            payees: Payees::Parts(&split.parts),
        };
        let (debited, _) = signer_debited(
            state,
            split.from,
            sum + split.fee.get(),
            &spend,
            clock,
            split.nonce,
        )?;
        let mut overlay = Overlay::default();
        overlay.write_account(split.from.0, debited, &state.proof(split.from).siblings);
        self.push_over(state, overlay, split.from, &split.parts)
    }

    /// Appends the lanes of `t`, a share registration the rules accept on `state` (the state
    /// before it, which is not changed): the list is checked under the root the owner's
    /// write leaves (its fee, nonce and new `ext`), as in the payment circuit's register slot
    /// (SPEC 19.6), so the record is the one that slot folds.
    pub fn push_register_tx(
        &mut self,
        state: &mut State,
        t: &RegisterShares,
        clock: Timestamp,
    ) -> anyhow::Result<SplitRecord> {
        let spend = Spend::fee_only(t.fee);
        let (mut written, charged) =
            signer_debited(state, t.account, t.fee.get(), &spend, clock, t.nonce)?;
        let profile = Profile {
            shares: shares_digest(&t.parts),
            ..charged
        };
        written.ext = ext_digest(state.streams_of(t.account).root(), profile.digest());
        let mut overlay = Overlay::default();
        overlay.write_account(t.account.0, written, &state.proof(t.account).siblings);
        let values = registration_values(&t.parts);
        let run = Run {
            from: t.account,
            kind: SplitKind::Register,
            total: 0,
        };
        self.push_run(state, overlay, run, &values)
    }

    /// Appends the lanes of `t`, a distribute the rules accept on `state` (the state before
    /// it, which is not changed): the payouts start from the root the slot's accesses leave,
    /// the signer's fee paid and the account's balance at 0 (SPEC 19.6).
    pub fn push_distribute_tx(
        &mut self,
        state: &mut State,
        t: &Distribute,
        clock: Timestamp,
    ) -> anyhow::Result<SplitRecord> {
        let (signer, account) = (t.body.signer, t.body.account);
        let spend = Spend::fee_only(t.fee);
        let (paid, _) = signer_debited(state, signer, t.fee.get(), &spend, clock, t.nonce)?;
        let mut emptied = match signer == account {
            true => paid,
            false => AccountFields::from_account(
                state
                    .account(account)
                    .with_context(|| format!("account {account} does not exist"))?,
            ),
        };
        let total = Amount::new(emptied.balance).context("a balance above 2^63 - 1")?;
        emptied.balance = 0;
        let shares = state
            .shares_of(account)
            .with_context(|| format!("account {account} has no shares"))?;
        let values = distribution_values(shares, total);
        let mut overlay = Overlay::default();
        overlay.write_account(signer.0, paid, &state.proof(signer).siblings);
        overlay.write_account(account.0, emptied, &state.proof(account).siblings);
        let run = Run {
            from: account,
            kind: SplitKind::Distribute,
            total: total.get(),
        };
        self.push_run(state, overlay, run, &values)
    }

    /// Appends the lanes that check a registration of `shares` by their owner against
    /// `state` (unchanged: nothing is credited). Applies no rule of 19.2 beyond what
    /// [`Shares`] holds; fails on a payee that does not exist.
    pub fn push_register(
        &mut self,
        state: &mut State,
        shares: &Shares,
    ) -> anyhow::Result<SplitRecord> {
        let values = registration_values(shares.parts());
        self.push_registration(state, shares.owner(), &values)
    }

    /// Appends a registration's lanes with the given slot values (the points as amounts; an
    /// attack test's own), checked against the state's root.
    pub fn push_registration(
        &mut self,
        state: &mut State,
        from: AccountIndex,
        values: &[Value],
    ) -> anyhow::Result<SplitRecord> {
        let run = Run {
            from,
            kind: SplitKind::Register,
            total: 0,
        };
        self.push_run(state, Overlay::default(), run, values)
    }

    /// Appends the lanes that pay out `total` from the owner of `shares` by them, from the
    /// root `state` has after the owner's debit of `total` (as the leaf leaves it); `state`
    /// is not changed.
    pub fn push_distribute(
        &mut self,
        state: &mut State,
        shares: &Shares,
        total: Amount,
    ) -> anyhow::Result<SplitRecord> {
        let values = distribution_values(shares, total);
        self.push_distribution(state, shares.owner(), total.get(), &values)
    }

    /// Appends a distribution's lanes with the given slot values (an attack test's own
    /// amounts), from the root the state has.
    pub fn push_distribution(
        &mut self,
        state: &mut State,
        from: AccountIndex,
        total: u64,
        values: &[Value],
    ) -> anyhow::Result<SplitRecord> {
        let run = Run {
            from,
            kind: SplitKind::Distribute,
            total,
        };
        self.push_run(state, Overlay::default(), run, values)
    }

    fn push_over(
        &mut self,
        state: &mut State,
        overlay: Overlay,
        from: AccountIndex,
        parts: &[Payout],
    ) -> anyhow::Result<SplitRecord> {
        let values: Vec<Value> = parts
            .iter()
            .map(|p| Value {
                to: p.to,
                amount: p.amount.get(),
                bps: 0,
            })
            .collect();
        let run = Run {
            from,
            kind: SplitKind::Pay,
            total: 0,
        };
        self.push_run(state, overlay, run, &values)
    }

    fn push_run(
        &mut self,
        state: &mut State,
        mut overlay: Overlay,
        run: Run,
        parts: &[Value],
    ) -> anyhow::Result<SplitRecord> {
        let Run { from, kind, total } = run;
        let m = self.lane_payees;
        let n_lanes = lanes_for(parts.len(), m);
        let padding = Value {
            to: OPERATOR,
            amount: 0,
            bps: 0,
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
            kind,
            total,
        };
        for l in 0..n_lanes {
            let mut slots = Vec::with_capacity(m);
            for j in 0..m {
                let i = l * m + j;
                let live = i < parts.len();
                let p = parts.get(i).unwrap_or(&padding);
                // A registration's amounts are points: nothing is credited.
                let credits = kind != SplitKind::Register;
                let (slot, root) = credit(state, &mut overlay, p, live, credits)?;
                if live {
                    open.count += 1;
                    open.sum_lo += p.amount & 0xffff_ffff;
                    open.sum_hi += p.amount >> 32;
                    open.prev = p.to;
                    let folded = match kind {
                        SplitKind::Distribute => u64::from(p.bps),
                        SplitKind::Pay | SplitKind::Register => p.amount,
                    };
                    // (Any value: the builder also makes attack tests' out-of-range ones.)
                    open.digest = list_digest_step(open.digest, p.to, folded);
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
                kind,
            });
            self.lanes.push(BuiltLane {
                lane: SplitLane {
                    start: (l == 0).then_some(from),
                    end: last,
                    root: root_before,
                    kind,
                    total,
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

/// A run of slots: whose, of which kind, a distribution's total.
#[derive(Clone, Copy, Debug)]
struct Run {
    from: AccountIndex,
    kind: SplitKind,
    total: u64,
}

/// One payee slot's values: the amount (a registration's points) and a distribution's points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    pub to: AccountIndex,
    pub amount: u64,
    pub bps: u16,
}

/// The slot crediting `p` (or writing it back, for padding or when `credits` is false) under
/// the overlay's root, the write recorded in it, and the root after. The payee is read as the
/// overlay last wrote it, if it did: a distribute's signer debited of its fee, the operator as
/// padding after being a payee.
fn credit(
    state: &mut State,
    overlay: &mut Overlay,
    p: &Value,
    live: bool,
    credits: bool,
) -> anyhow::Result<(PayeeSlot, Digest)> {
    let fields = match overlay.account(p.to.0) {
        Some(fields) => fields,
        None => AccountFields::from_account(
            state
                .account(p.to)
                .with_context(|| format!("payee {} does not exist", p.to))?,
        ),
    };
    let mut after = fields;
    if credits {
        after.balance = after.balance.wrapping_add(p.amount);
    }
    let (siblings, root) = overlay.write_account(p.to.0, after, &state.proof(p.to).siblings);
    let slot = PayeeSlot {
        live,
        amount: p.amount,
        bps: p.bps,
        access: LeafAccess {
            index: p.to.0,
            account: Some(fields),
            siblings,
        },
    };
    Ok((slot, root))
}
