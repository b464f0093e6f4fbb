//! One transaction's slot: the transaction applied natively, then its accesses A, B and C
//! replayed in the circuit's order over the tree before it.

use std::collections::HashMap;

use plonky2::field::types::PrimeField64;
use state::account::AccountIndex;
use state::account::OPERATOR;
use state::apply::{BlockContext, DepositOutcome, Effects, ForcedOutcome, State};
use state::hash::Digest;
use state::split::{parts_digest, shares_chain};
use state::tx::{PassportAction, Transaction};

use super::{
    root_of, AccountFields, AgentOpening, LeafAccess, Overlay, OwnerOpening, SignerOpening,
    SlotKind, SlotWitness, StreamWitness, WitnessError,
};

/// A no-op slot against the current state (all three accesses read the operator's leaf).
pub(super) fn noop_slot(state: &mut State) -> SlotWitness {
    let access = LeafAccess {
        index: OPERATOR.0,
        account: state.account(OPERATOR).map(AccountFields::from_account),
        siblings: state.proof(OPERATOR).siblings.to_vec(),
    };
    SlotWitness::new(SlotKind::Noop, access)
}

/// Sets the signer's envelope of a slot.
fn envelope(slot: &mut SlotWitness, fee: u64, nonce: u64, valid_until: u64) {
    slot.fee = fee;
    slot.nonce = nonce;
    slot.valid_until = valid_until;
}

fn no_book() -> WitnessError {
    WitnessError::Internal("a stream slot without its book".into())
}

/// Applies `tx` natively and returns its slot (accesses A, B, C in circuit order).
pub(super) fn tx_slot(
    state: &mut State,
    tx: &Transaction,
    ctx: &BlockContext,
    position: usize,
) -> Result<(SlotWitness, Effects), WitnessError> {
    let n = state.num_accounts();
    let (kind, a_idx, b_idx) = match tx {
        // If n = 2^32 the native rules reject it (StateFull) below.
        Transaction::Register(_) => (
            SlotKind::Register,
            n.min(u32::MAX as u64) as u32,
            (n - 1) as u32,
        ),
        Transaction::Transfer(t) => (SlotKind::Transfer, t.from.0, t.to.0),
        Transaction::Withdraw(w) => (SlotKind::Withdraw, w.from.0, OPERATOR.0),
        Transaction::Deposit(d) => (SlotKind::Deposit, d.to.0, OPERATOR.0),
        Transaction::ForcedWithdraw(f) => (SlotKind::ForcedWithdraw, f.withdraw.from.0, OPERATOR.0),
        Transaction::Split(t) => (SlotKind::Split, t.from.0, OPERATOR.0),
        Transaction::StreamOpen(t) => (SlotKind::StreamOpen, t.body.payer.0, t.body.payee.0),
        Transaction::StreamSettle(t) => {
            (SlotKind::StreamSettle, t.body.payee.0, t.body.terms.payer.0)
        }
        Transaction::StreamClose(t) => (SlotKind::StreamClose, t.body.signer.0, t.body.payer.0),
        Transaction::StreamSettlePath(t) => (
            SlotKind::StreamSettlePath,
            t.body.payee.0,
            t.body.terms.payer.0,
        ),
        Transaction::RegisterShares(t) => (SlotKind::RegisterShares, t.account.0, OPERATOR.0),
        Transaction::Distribute(t) => (SlotKind::Distribute, t.body.signer.0, t.body.account.0),
        Transaction::Passport(t) => match &t.action {
            // The agent at the next index (if n = 2^32 the native rules reject it below).
            PassportAction::Delegate { .. } => {
                (SlotKind::Delegate, t.owner.0, n.min(u32::MAX as u64) as u32)
            }
            PassportAction::SetPolicy { agent, .. } => (SlotKind::SetPolicy, t.owner.0, agent.0),
            PassportAction::Revoke { agent } => (SlotKind::Revoke, t.owner.0, agent.0),
            PassportAction::Sweep { agent, .. } => (SlotKind::Sweep, t.owner.0, agent.0),
        },
    };
    // A delegate's first free index: the account below it (the last one), read after A.
    let below_idx = (kind == SlotKind::Delegate).then(|| b_idx.wrapping_sub(1));
    let r0 = state.root();
    // The owner's `ext` opened, as the slot reads it (SPEC 19.6; only a circuit with the
    // revenue-share kinds reads it): B for a distribute, A for the kinds that read A's shares.
    let owner = match kind {
        SlotKind::Distribute => Some(b_idx),
        SlotKind::Transfer
        | SlotKind::Withdraw
        | SlotKind::ForcedWithdraw
        | SlotKind::Split
        | SlotKind::StreamOpen
        | SlotKind::RegisterShares
        | SlotKind::Delegate => Some(a_idx),
        _ => None,
    }
    .map(|i| OwnerOpening::of(state, AccountIndex(i)));
    // The signer's `ext` opened for the policy checks (SPEC 20.8; only a circuit with them
    // reads it): every kind whose signer pays a fee, and a forced withdrawal, judged at the
    // agent clock (a forced withdrawal's: its request time) for the account it pays.
    let signer = match tx {
        Transaction::ForcedWithdraw(f) => Some((f.requested_at, None)),
        Transaction::Transfer(t) => Some((ctx.batch_timestamp, Some(t.to))),
        Transaction::StreamOpen(t) => Some((ctx.batch_timestamp, Some(t.body.payee))),
        _ if kind.signer_pays_fee() => Some((ctx.batch_timestamp, None)),
        _ => None,
    }
    .map(|(now, payee)| SignerOpening::of(state, AccountIndex(a_idx), now, payee));
    // An owner's policy change, revoke or sweep opens the agent's passport (SPEC 20.6).
    let agent = match kind {
        SlotKind::SetPolicy | SlotKind::Revoke | SlotKind::Sweep => {
            AgentOpening::of(state, AccountIndex(b_idx))
        }
        _ => None,
    };
    // The book that a stream kind changes, as it is before (its owner: A for an open, B else).
    let book_before = match tx {
        Transaction::StreamOpen(t) => Some((t.body.payer, t.body.slot)),
        Transaction::StreamSettle(t) => Some((t.body.terms.payer, t.body.terms.slot)),
        Transaction::StreamSettlePath(t) => Some((t.body.terms.payer, t.body.terms.slot)),
        Transaction::StreamClose(t) => Some((t.body.payer, t.body.slot)),
        _ => None,
    }
    .map(|(owner, slot)| {
        let book = state.streams_of(owner);
        let old = book.get(slot).map_or([0; 10], |s| {
            s.to_field_elements().map(|e| e.to_canonical_u64())
        });
        (
            owner,
            StreamWitness {
                slot: slot.0,
                path: book.path(slot).to_vec(),
                streams_root: book.root(),
                profile: state.profile_of(owner).digest(),
                old,
                ..StreamWitness::idle()
            },
        )
    });
    // The book root before of a signer whose spend changes its profile, an agent (its
    // passport is charged) or a spend in a lane other than 0 (its lanes part moves): its
    // `ext` after its access keeps that book, unless it opens a stream.
    let lane_spend = tx
        .nonce()
        .is_some_and(|n| n.lane() != state::lanes::Lane::ZERO);
    let agent_book = (state.passport(AccountIndex(a_idx)).is_some() || lane_spend)
        .then(|| state.streams_of(AccountIndex(a_idx)).root());
    let mut base = HashMap::new();
    let mut view: HashMap<u32, Option<AccountFields>> = HashMap::new();
    for i in [a_idx, b_idx, OPERATOR.0].into_iter().chain(below_idx) {
        base.insert(i, state.proof(i.into()).siblings);
        view.insert(i, state.account(i.into()).map(AccountFields::from_account));
    }
    let effects = state.apply(tx, ctx).map_err(|r| WitnessError::Rejected {
        position,
        code: r.code(),
    })?;

    let mut slot = SlotWitness::new(
        kind,
        LeafAccess {
            index: 0,
            account: None,
            siblings: vec![],
        },
    );
    slot.owner = owner;
    slot.signer = signer;
    slot.agent = agent;
    slot.signature = tx.signature().copied();
    let (debit, credit_b, credit_c, credit_a) = match tx {
        Transaction::Register(r) => {
            slot.pubkey = r.pubkey.to_field_elements().map(|e| e.to_canonical_u64());
            slot.valid_until = r.valid_until.get();
            (0, 0, 0, 0)
        }
        Transaction::Transfer(t) => {
            slot.amount = t.amount.get();
            slot.fee = t.fee.get();
            slot.nonce = t.nonce.get();
            slot.valid_until = t.valid_until.get();
            (t.amount.get() + t.fee.get(), t.amount.get(), t.fee.get(), 0)
        }
        Transaction::Withdraw(w) => {
            slot.amount = w.amount.get();
            slot.fee = w.fee.get();
            slot.nonce = w.nonce.get();
            slot.valid_until = w.valid_until.get();
            slot.to_l1 = w.to_l1.0;
            (w.amount.get() + w.fee.get(), 0, w.fee.get(), 0)
        }
        Transaction::Deposit(d) => {
            slot.amount = d.amount.get();
            slot.seq = d.seq;
            let credited = effects.deposit == Some(DepositOutcome::Credited);
            (0, 0, 0, if credited { d.amount.get() } else { 0 })
        }
        Transaction::ForcedWithdraw(f) => {
            let w = &f.withdraw;
            slot.amount = w.amount.get();
            slot.fee = w.fee.get();
            slot.nonce = w.nonce.get();
            slot.valid_until = w.valid_until.get();
            slot.to_l1 = w.to_l1.0;
            slot.seq = f.seq;
            slot.requested_at = f.requested_at.get();
            slot.signature = Some(w.signature);
            let outcome = effects.forced.ok_or_else(|| {
                WitnessError::Internal(format!(
                    "slot {position}: forced withdrawal without outcome"
                ))
            })?;
            slot.forced_status = outcome.status() as u8;
            if outcome == ForcedOutcome::Applied {
                (w.amount.get() + w.fee.get(), 0, w.fee.get(), 0)
            } else {
                (0, 0, 0, 0)
            }
        }
        Transaction::Split(t) => {
            let sum = t.parts.iter().map(|p| p.amount.get()).sum::<u64>();
            slot.amount = sum;
            slot.fee = t.fee.get();
            slot.nonce = t.nonce.get();
            slot.valid_until = t.valid_until.get();
            slot.n = t.parts.len() as u32;
            slot.parts_digest = parts_digest(&t.parts);
            (sum + t.fee.get(), 0, t.fee.get(), 0)
        }
        Transaction::StreamOpen(t) => {
            let (_, mut w) = book_before.clone().ok_or_else(no_book)?;
            let o = &t.body;
            w.price = o.price.get();
            w.max_ticks = o.max_ticks.get();
            w.expiry = o.expiry.get();
            w.anchor = o.anchor;
            let escrow = o.price.get() * u64::from(o.max_ticks.get());
            slot.amount = escrow;
            envelope(&mut slot, t.fee.get(), t.nonce.get(), t.valid_until.get());
            slot.stream = Some(w);
            (escrow + t.fee.get(), 0, t.fee.get(), 0)
        }
        Transaction::StreamSettle(t) => {
            let (_, mut w) = book_before.clone().ok_or_else(no_book)?;
            let terms = &t.body.terms;
            w.to = terms.to.get();
            w.t_to = terms.value;
            let price = w.old[1];
            let payout = price * u64::from(terms.to.get().saturating_sub(w.old[5] as u32));
            envelope(&mut slot, t.fee.get(), t.nonce.get(), t.valid_until.get());
            slot.stream = Some(w);
            (t.fee.get(), 0, t.fee.get(), payout)
        }
        Transaction::StreamClose(t) => {
            let (_, w) = book_before.clone().ok_or_else(no_book)?;
            let refund = w.old[1] * w.old[2].saturating_sub(w.old[5]);
            envelope(&mut slot, t.fee.get(), t.nonce.get(), t.valid_until.get());
            slot.stream = Some(w);
            (t.fee.get(), refund, t.fee.get(), 0)
        }
        Transaction::StreamSettlePath(t) => {
            let (_, mut w) = book_before.clone().ok_or_else(no_book)?;
            let terms = &t.body.terms;
            w.to = terms.to.get();
            w.t_to = terms.value;
            w.tick_path = t.body.path.to_vec();
            let price = w.old[1];
            let payout = price * u64::from(terms.to.get().saturating_sub(w.old[5] as u32));
            envelope(&mut slot, t.fee.get(), t.nonce.get(), t.valid_until.get());
            slot.stream = Some(w);
            (t.fee.get(), 0, t.fee.get(), payout)
        }
        Transaction::RegisterShares(t) => {
            envelope(&mut slot, t.fee.get(), t.nonce.get(), t.valid_until.get());
            slot.n = t.parts.len() as u32;
            slot.parts_digest = shares_chain(&t.parts);
            (t.fee.get(), 0, t.fee.get(), 0)
        }
        Transaction::Distribute(t) => {
            // The list as the rules found it (a distribute does not change it).
            let shares = state.shares_of(t.body.account).ok_or_else(|| {
                WitnessError::Internal(format!("slot {position}: a distribute without shares"))
            })?;
            envelope(&mut slot, t.fee.get(), t.nonce.get(), t.valid_until.get());
            slot.n = shares.parts().len() as u32;
            slot.parts_digest = shares_chain(shares.parts());
            // B's whole balance as its access reads it: after A's fee (A = B allowed).
            let balance = view[&b_idx].map_or(0, |b| b.balance);
            slot.amount = match a_idx == b_idx {
                true => balance - t.fee.get(),
                false => balance,
            };
            (t.fee.get(), 0, t.fee.get(), 0)
        }
        Transaction::Passport(t) => {
            envelope(&mut slot, t.fee.get(), t.nonce.get(), t.valid_until.get());
            match &t.action {
                // The owner pays the fee and the fund; the policy enters as its digest.
                PassportAction::Delegate {
                    agent_key,
                    fund,
                    policy,
                } => {
                    slot.pubkey = agent_key.to_field_elements().map(|e| e.to_canonical_u64());
                    slot.amount = fund.get();
                    slot.parts_digest = policy.digest();
                    (fund.get() + t.fee.get(), 0, t.fee.get(), 0)
                }
                PassportAction::SetPolicy { policy, .. } => {
                    slot.parts_digest = policy.digest();
                    (t.fee.get(), 0, t.fee.get(), 0)
                }
                // The owner pays the fee, then receives what the agent pays out.
                PassportAction::Sweep { amount, .. } => {
                    slot.amount = amount.get();
                    (t.fee.get(), 0, t.fee.get(), amount.get())
                }
                _ => (t.fee.get(), 0, t.fee.get(), 0),
            }
        }
    };
    // What B pays out: a sweep's amount.
    let debit_b = match kind {
        SlotKind::Sweep => slot.amount,
        _ => 0,
    };

    let mut overlay = Overlay::default();
    let mut root = r0;
    let mut access = |index: u32,
                      new: &dyn Fn(Option<AccountFields>) -> Option<AccountFields>|
     -> Result<LeafAccess, WitnessError> {
        let old = view[&index];
        let siblings = overlay.siblings(index, &base[&index]);
        let la = LeafAccess {
            index,
            account: old,
            siblings,
        };
        if root_of(index, la.leaf(), &la.siblings) != root {
            return Err(WitnessError::Internal(format!(
                "access to {index} does not open the running root"
            )));
        }
        let updated = new(old);
        root = overlay.write(
            index,
            updated.map(|a| a.leaf()).unwrap_or(Digest::ZERO),
            &la.siblings,
        );
        view.insert(index, updated);
        Ok(la)
    };
    let is_spend =
        kind.signer_pays_fee() || (kind == SlotKind::ForcedWithdraw && slot.forced_status == 0);
    // The book owner's `ext` after the slot: the state's, now that the transaction applied.
    let new_ext = match &book_before {
        Some((owner, _)) => state.account(*owner).map(|a| a.ext),
        None => None,
    };
    // A registration's new `ext` (its profile's shares part): the state's after it.
    let a_ext = match kind {
        SlotKind::RegisterShares => state.account(AccountIndex(a_idx)).map(|a| a.ext),
        _ => new_ext.filter(|_| kind == SlotKind::StreamOpen),
    };
    // An agent's spend charges its passport (SPEC 20.4), a lane's raises its lanes part
    // (20.1): A's `ext` after its access has the profile the state has now and the book A's
    // access leaves (B's access may change the book after it, when A pays itself: a payer
    // closing its own stream).
    let a_ext = match agent_book.filter(|_| is_spend) {
        Some(before) => {
            let a = AccountIndex(a_idx);
            let book = match kind {
                SlotKind::StreamOpen => state.streams_of(a).root(),
                _ => before,
            };
            Some(state::ext::ext_digest(book, state.profile_of(a).digest()))
        }
        None => a_ext,
    };
    let b_ext = match kind {
        // A revocation and a policy change change the agent's passport.
        SlotKind::Revoke | SlotKind::SetPolicy => state.account(AccountIndex(b_idx)).map(|a| a.ext),
        _ => new_ext.filter(|_| {
            matches!(
                kind,
                SlotKind::StreamSettle | SlotKind::StreamSettlePath | SlotKind::StreamClose
            )
        }),
    };
    let pubkey = slot.pubkey;
    slot.a = access(a_idx, &|old| match kind {
        SlotKind::Register => Some(AccountFields {
            pubkey,
            balance: 0,
            nonce: 0,
            ext: Digest::ZERO,
        }),
        _ => old.map(|mut a| {
            a.balance = a.balance - debit + credit_a;
            a.nonce += u64::from(is_spend && !lane_spend);
            a.ext = a_ext.unwrap_or(a.ext);
            a
        }),
    })?;
    if let Some(i) = below_idx {
        // Read, not changed: written back as it is, under the root A's access left.
        slot.below = Some(access(i, &|old| old)?);
    }
    // A delegate's agent as the transaction left it (its key, `fund`, nonce 0, its passport).
    let created = match kind {
        SlotKind::Delegate => state
            .account(AccountIndex(b_idx))
            .map(AccountFields::from_account),
        _ => None,
    };
    slot.b = access(b_idx, &|old| {
        old.map(|mut a| {
            a.balance = a.balance + credit_b - debit_b;
            a.ext = b_ext.unwrap_or(a.ext);
            if kind == SlotKind::Distribute {
                a.balance = 0;
            }
            a
        })
        // A delegate's B is empty before.
        .or(created)
    })?;
    if matches!(kind, SlotKind::Split | SlotKind::Distribute) {
        // The credits happened between B and C (the chain proves them): C reads the operator
        // as the split (or the distribute) left it before its fee, under the root the
        // credits left.
        let op = state
            .account(OPERATOR)
            .map(AccountFields::from_account)
            .ok_or_else(|| WitnessError::Internal("no operator account".into()))?;
        let siblings = state.proof(OPERATOR).siblings.to_vec();
        let before_fee = AccountFields {
            balance: op.balance - credit_c,
            ..op
        };
        slot.split_root = root_of(OPERATOR.0, before_fee.leaf(), &siblings);
        root = root_of(OPERATOR.0, op.leaf(), &siblings);
        slot.c = LeafAccess {
            index: OPERATOR.0,
            account: Some(before_fee),
            siblings,
        };
    } else {
        slot.c = access(OPERATOR.0, &|old| {
            old.map(|mut a| {
                a.balance += credit_c;
                a
            })
        })?;
    }
    if root != state.root() {
        return Err(WitnessError::Internal(format!(
            "slot {position}: sequential accesses do not reach the native root"
        )));
    }
    Ok((slot, effects))
}
