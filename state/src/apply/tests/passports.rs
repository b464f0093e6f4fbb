//! Passports (SPEC 20) against the state, from the attacker's side: every breach of a policy,
//! every action by someone other than the owner, and lanes out of order, each refused with its
//! reason and no effect.

use proptest::prelude::*;

use super::*;
use crate::ext::{ext_digest, Profile};
use crate::lanes::Lane;
use crate::passport::{AllowList, Card, Passport, PassportRejection, Policy};
use crate::split::Payout;
use crate::tx::{PassportAction, UnsignedPassportTx, UnsignedSplit};

const AGENT: AccountIndex = AccountIndex(3);

pub(super) fn policy(allow: Vec<AccountIndex>) -> Policy {
    Policy {
        cap: amt(300),
        window: 3600,
        max_payment: amt(100),
        max_fee: amt(3),
        expiry: ts(NOW + 10_000),
        allow: AllowList::new(allow).unwrap(),
        card: Card::new([5; 32], "https://agents.example/a.json".into()).unwrap(),
    }
}

pub(super) fn owner_tx(
    owner: AccountIndex,
    action: PassportAction,
    n: u64,
    k: &SecretKey,
) -> Transaction {
    UnsignedPassportTx {
        owner,
        action,
        fee: amt(1),
        nonce: nonce(n),
        valid_until: ts(NOW + 60),
    }
    .sign(&DOMAIN, k)
    .into()
}

pub(super) fn delegate(agent: &SecretKey, fund: u64, p: Policy) -> PassportAction {
    PassportAction::Delegate {
        agent_key: agent.public_key().into(),
        fund: amt(fund),
        policy: p,
    }
}

/// The world with alice's agent at index 3 (key 50), funded with 400, under `policy(allow)`.
fn with_agent(allow: Vec<AccountIndex>) -> (World, SecretKey) {
    let mut w = world();
    let agent = key(50);
    let tx = owner_tx(ALICE, delegate(&agent, 400, policy(allow)), 0, &w.alice);
    let fx = w.state.apply(&tx, &ctx()).unwrap();
    assert_eq!(fx.registered, Some(AGENT));
    (w, agent)
}

fn at(t: u64) -> BlockContext {
    BlockContext::at(ts(t))
}

fn assert_rejected_at(state: &mut State, tx: &Transaction, when: u64, code: &str) {
    let before = snapshot(state);
    let got = state.apply(tx, &at(when)).map(|_| ()).map_err(|r| r.code());
    assert_eq!(got, Err(code));
    assert_eq!(
        snapshot(state),
        before,
        "a rejected transaction changed the state"
    );
}

fn pay(agent: &SecretKey, to: AccountIndex, amount: u64, fee: u64, n: u64) -> Transaction {
    signed(transfer(AGENT, to, amount, fee, n), agent)
}

/// The window is taken at the agent clock (SPEC 18.0): in a block after the window turned, of a
/// batch whose first block was before the turn, a spend still counts against the old window;
/// the first block of the next batch sees the new one.
#[test]
fn a_policy_window_turns_with_the_batch_not_the_block() {
    let (mut w, agent) = with_agent(vec![]);
    let s = &mut w.state;
    let turn = (NOW / 3600 + 1) * 3600;
    let pay_by = |amount: u64, fee: u64, n: u64| {
        signed(
            UnsignedTransfer {
                valid_until: ts(turn + 3600),
                ..transfer(AGENT, BOB, amount, fee, n)
            },
            &agent,
        )
    };
    let batch = BlockContext::at(ts(turn - 5));
    s.apply(&pay_by(100, 3, 0), &batch).unwrap();
    s.apply(&pay_by(100, 3, 1), &batch).unwrap();
    s.apply(&pay_by(91, 3, 2), &batch).unwrap();
    let later_block = BlockContext::in_batch(ts(turn + 5), ts(turn - 5));
    let before = snapshot(s);
    let got = s.apply(&pay_by(10, 0, 3), &later_block).map(|_| ());
    assert_eq!(got.map_err(|r| r.code()), Err("POLICY_CAP"));
    assert_eq!(snapshot(s), before, "a rejected spend changed the state");
    s.apply(&pay_by(10, 0, 3), &BlockContext::at(ts(turn + 6)))
        .unwrap();
    assert_eq!(s.passport(AGENT).unwrap().spent(), (turn / 3600, amt(10)));
}

#[test]
fn a_delegate_creates_a_funded_agent_bound_to_its_owner() {
    let (mut w, agent) = with_agent(vec![]);
    assert_eq!(balance(&w.state, ALICE), 1000 - 400 - 1);
    assert_eq!(balance(&w.state, AGENT), 400);
    assert_eq!(w.state.account(ALICE).unwrap().nonce, nonce(1));
    let a = *w.state.account(AGENT).unwrap();
    assert_eq!(a.pubkey, EncodedKey::from(agent.public_key()));
    let p = w.state.passport(AGENT).unwrap();
    assert_eq!((p.owner(), p.is_revoked()), (ALICE, false));
    let profile = Profile {
        passport: p.digest(),
        ..Profile::default()
    };
    assert_eq!(
        a.ext,
        ext_digest(crate::smt::empty_hashes()[16], profile.digest()),
        "the agent's leaf commits to its passport"
    );
    assert_eq!(
        w.state.agents_of(ALICE).map(|(i, _)| i).collect::<Vec<_>>(),
        [AGENT]
    );
    assert!(conserved(&w.state));
    assert_eq!(w.state.root(), root_from_scratch(&w.state));
    // The agent pays within its policy; its passport counts the amount and the fee.
    let fx = w.state.apply(&pay(&agent, BOB, 60, 2, 0), &ctx()).unwrap();
    assert_eq!(balance(&w.state, BOB), 50 + 60);
    assert_eq!(
        w.state.passport(AGENT).unwrap().spent(),
        (NOW / 3600, amt(62))
    );
    assert_eq!(fx.ext.len(), 1, "the agent's ext follows its passport");
    assert_eq!(w.state.root(), root_from_scratch(&w.state));
    // Its key cannot register again, and the owner's top-up is a plain transfer.
    assert_rejected(
        &mut w.state,
        &register_tx(&agent, &agent, NOW + 10),
        Rejection::DuplicateKey { existing: AGENT },
    );
    w.state
        .apply(&signed(transfer(ALICE, AGENT, 10, 0, 1), &w.alice), &ctx())
        .unwrap();
    assert_eq!(balance(&w.state, AGENT), 400 - 62 + 10);
}

#[test]
fn every_policy_breach_is_refused_with_its_reason() {
    let (mut w, agent) = with_agent(vec![]);
    let s = &mut w.state;
    assert_rejected_at(s, &pay(&agent, BOB, 101, 0, 0), NOW, "POLICY_PAYMENT");
    assert_rejected_at(s, &pay(&agent, BOB, 10, 4, 0), NOW, "POLICY_FEE");
    // Still valid itself, but the policy expired.
    let late = signed(
        UnsignedTransfer {
            valid_until: ts(NOW + 20_000),
            ..transfer(AGENT, BOB, 10, 0, 0)
        },
        &agent,
    );
    assert_rejected_at(s, &late, NOW + 10_001, "POLICY_EXPIRED");
    // Three payments each under the maximum: the third would pass the cap of 300.
    s.apply(&pay(&agent, BOB, 100, 3, 0), &ctx()).unwrap();
    s.apply(&pay(&agent, BOB, 100, 3, 1), &ctx()).unwrap();
    assert_rejected_at(s, &pay(&agent, BOB, 92, 3, 2), NOW, "POLICY_CAP");
    // Exactly up to the cap is fine; the next window starts afresh.
    s.apply(&pay(&agent, BOB, 91, 3, 2), &ctx()).unwrap();
    assert_rejected_at(s, &pay(&agent, BOB, 1, 0, 3), NOW, "POLICY_CAP");
    let next_window = (NOW / 3600 + 1) * 3600;
    let fresh = signed(
        UnsignedTransfer {
            valid_until: ts(next_window),
            ..transfer(AGENT, BOB, 10, 0, 3)
        },
        &agent,
    );
    s.apply(&fresh, &at(next_window)).unwrap();
    // A stream open spends its escrow against the same cap and maximum.
    let open: Transaction = crate::tx::Unsigned {
        body: crate::stream::rules::Open {
            payer: AGENT,
            payee: BOB,
            slot: crate::stream::StreamSlot(0),
            price: amt(1),
            max_ticks: crate::stream::TickCount::new(101).unwrap(),
            expiry: ts(next_window + 500),
            anchor: Digest::ZERO,
        },
        fee: amt(0),
        nonce: nonce(4),
        valid_until: ts(next_window + 60),
    }
    .sign(&DOMAIN, &agent)
    .into();
    assert_rejected_at(s, &open, next_window, "POLICY_PAYMENT");
}

#[test]
fn the_allow_list_binds_transfers_splits_and_withdrawals() {
    let mut w = world();
    let carol = register_more(&mut w);
    let agent = key(50);
    let tx = owner_tx(ALICE, delegate(&agent, 400, policy(vec![BOB])), 0, &w.alice);
    w.state.apply(&tx, &ctx()).unwrap();
    let agent_ix = w.state.account_by_key(agent.public_key()).unwrap().0;
    let s = &mut w.state;
    let to = |to, n| signed(transfer(agent_ix, to, 5, 0, n), &agent);
    assert_rejected_at(s, &to(carol, 0), NOW, "POLICY_PAYEE");
    s.apply(&to(BOB, 0), &ctx()).unwrap();
    let split: Transaction = UnsignedSplit {
        from: agent_ix,
        parts: vec![
            Payout {
                to: BOB,
                amount: amt(1),
            },
            Payout {
                to: carol,
                amount: amt(1),
            },
        ],
        fee: amt(0),
        nonce: nonce(1),
        valid_until: ts(NOW + 60),
    }
    .sign(&DOMAIN, &agent)
    .into();
    assert_rejected_at(s, &split, NOW, "POLICY_PAYEE");
    let out: Transaction = withdraw(agent_ix, 5, 0, 1).sign(&DOMAIN, &agent).into();
    assert_rejected_at(s, &out, NOW, "POLICY_PAYEE");
}

fn register_more(w: &mut World) -> AccountIndex {
    let k = key(77);
    w.state
        .apply(&register_tx(&k, &k, NOW + 10), &ctx())
        .unwrap()
        .registered
        .unwrap()
}

#[test]
fn a_revocation_stops_the_agent_from_the_next_transaction_and_the_owner_sweeps() {
    let (mut w, agent) = with_agent(vec![]);
    w.state.apply(&pay(&agent, BOB, 10, 0, 0), &ctx()).unwrap();
    let revoke = owner_tx(ALICE, PassportAction::Revoke { agent: AGENT }, 1, &w.alice);
    w.state.apply(&revoke, &ctx()).unwrap();
    assert!(w.state.passport(AGENT).unwrap().is_revoked());
    assert_eq!(w.state.root(), root_from_scratch(&w.state));
    let s = &mut w.state;
    assert_rejected_at(s, &pay(&agent, BOB, 1, 0, 1), NOW, "REVOKED");
    let settle_fee_only: Transaction = withdraw(AGENT, 1, 0, 1).sign(&DOMAIN, &agent).into();
    assert_rejected_at(s, &settle_fee_only, NOW, "REVOKED");
    // Final: no second revocation, no policy change brings it back.
    let again = owner_tx(ALICE, PassportAction::Revoke { agent: AGENT }, 2, &w.alice);
    assert_rejected_at(s, &again, NOW, "REVOKED");
    let revive = owner_tx(
        ALICE,
        PassportAction::SetPolicy {
            agent: AGENT,
            policy: policy(vec![]),
        },
        2,
        &w.alice,
    );
    assert_rejected_at(s, &revive, NOW, "REVOKED");
    // The owner takes the money back: more than there is, nothing, then all of it.
    let sweep = |amount, n| {
        owner_tx(
            ALICE,
            PassportAction::Sweep {
                agent: AGENT,
                amount: amt(amount),
            },
            n,
            &w.alice,
        )
    };
    assert_rejected_at(s, &sweep(391, 2), NOW, "INSUFFICIENT_BALANCE");
    assert_rejected(s, &sweep(0, 2), Rejection::ZeroAmount);
    let owner_before = balance(s, ALICE);
    s.apply(&sweep(390, 2), &ctx()).unwrap();
    assert_eq!(balance(s, AGENT), 0);
    assert_eq!(balance(s, ALICE), owner_before + 390 - 1);
    assert!(conserved(s));
    assert_eq!(s.root(), root_from_scratch(s));
}

#[test]
fn only_the_owner_acts_on_an_agent() {
    let (mut w, agent) = with_agent(vec![]);
    let s = &mut w.state;
    let raise = PassportAction::SetPolicy {
        agent: AGENT,
        policy: Policy {
            cap: amt(1_000_000),
            ..policy(vec![])
        },
    };
    // The agent signs its own policy change: as owner it is not the owner; naming the owner,
    // its signature does not verify under the owner's key.
    assert_rejected_at(
        s,
        &owner_tx(AGENT, raise.clone(), 0, &agent),
        NOW,
        "NOT_OWNER",
    );
    assert_rejected_at(
        s,
        &owner_tx(ALICE, raise.clone(), 1, &agent),
        NOW,
        "BAD_SIGNATURE",
    );
    // Another account is not the owner either; an ordinary account is no agent.
    assert_rejected_at(s, &owner_tx(BOB, raise, 0, &w.bob), NOW, "NOT_OWNER");
    let on_bob = PassportAction::Revoke { agent: BOB };
    assert_rejected_at(
        s,
        &owner_tx(ALICE, on_bob, 1, &w.alice),
        NOW,
        "NOT_AN_AGENT",
    );
    // An agent cannot mint agents that would escape its cap.
    let sub = delegate(&key(51), 10, policy(vec![]));
    assert_rejected_at(
        s,
        &owner_tx(AGENT, sub, 0, &agent),
        NOW,
        "AGENT_CANNOT_DELEGATE",
    );
    // A delegate to a key that already controls an account, or funded past the balance.
    let dup = delegate(&w.bob, 10, policy(vec![]));
    assert_rejected_at(s, &owner_tx(ALICE, dup, 1, &w.alice), NOW, "DUPLICATE_KEY");
    let rich = delegate(&key(52), 599, policy(vec![]));
    assert_rejected_at(
        s,
        &owner_tx(ALICE, rich, 1, &w.alice),
        NOW,
        "INSUFFICIENT_BALANCE",
    );
    // The owner's change applies, and keeps what was spent in the window.
    s.apply(&pay(&agent, BOB, 100, 0, 0), &ctx()).unwrap();
    let lower = PassportAction::SetPolicy {
        agent: AGENT,
        policy: Policy {
            cap: amt(150),
            ..policy(vec![])
        },
    };
    s.apply(&owner_tx(ALICE, lower, 1, &w.alice), &ctx())
        .unwrap();
    assert_rejected_at(s, &pay(&agent, BOB, 51, 0, 1), NOW, "POLICY_CAP");
    s.apply(&pay(&agent, BOB, 50, 0, 1), &ctx()).unwrap();
    assert_eq!(s.root(), root_from_scratch(s));
}

#[test]
fn lanes_are_refused_until_enabled_then_each_is_strictly_plus_one() {
    let mut w = world();
    let lane = |l: u8, seq: u64| Nonce::in_lane(Lane::new(l).unwrap(), seq).unwrap().get();
    let t = |n: u64| signed(transfer(ALICE, BOB, 1, 0, n), &w.alice);
    let off = t(lane(3, 0));
    assert_rejected(
        &mut w.state,
        &off,
        Rejection::BadNonce {
            expected: nonce(0),
            got: nonce(lane(3, 0)),
        },
    );
    w.state.enable_lanes();
    let fx = w.state.apply(&off, &ctx()).unwrap();
    assert_eq!(
        w.state.account(ALICE).unwrap().nonce,
        nonce(0),
        "lane 0 untouched"
    );
    assert_ne!(w.state.account(ALICE).unwrap().ext, Digest::ZERO);
    assert_eq!(fx.nonce.map(|n| n.after), Some(nonce(lane(3, 1))));
    // Replays and gaps within a lane, and lanes that do not wait for each other.
    assert_rejected(
        &mut w.state,
        &off,
        Rejection::BadNonce {
            expected: nonce(lane(3, 1)),
            got: nonce(lane(3, 0)),
        },
    );
    let gap = t(lane(5, 1));
    assert_rejected(
        &mut w.state,
        &gap,
        Rejection::BadNonce {
            expected: nonce(lane(5, 0)),
            got: nonce(lane(5, 1)),
        },
    );
    for n in [0, lane(5, 0), lane(3, 1), 1, lane(7, 0)] {
        w.state.apply(&t(n), &ctx()).unwrap();
    }
    assert_eq!(w.state.account(ALICE).unwrap().nonce, nonce(2));
    assert_eq!(balance(&w.state, BOB), 50 + 6);
    assert!(conserved(&w.state));
    assert_eq!(w.state.root(), root_from_scratch(&w.state));
}

#[test]
fn a_forced_withdrawal_cannot_use_a_lane_before_lanes_are_enabled() {
    let mut w = world();
    let n = Nonce::in_lane(Lane::new(1).unwrap(), 0).unwrap().get();
    let tx = super::forced(&w, withdraw(ALICE, 5, 0, n), &w.alice.clone(), NOW);
    let fx = w.state.apply(&tx, &ctx()).unwrap();
    assert_eq!(
        fx.forced,
        Some(ForcedOutcome::Rejected(Rejection::BadNonce {
            expected: nonce(0),
            got: nonce(n),
        }))
    );
    assert_eq!(balance(&w.state, ALICE), 1000);
}

#[test]
fn a_forced_withdrawal_from_an_agent_obeys_its_policy_and_publishes_why() {
    let (mut w, agent) = with_agent(vec![]);
    let tx = super::forced(&w, withdraw(AGENT, 101, 0, 0), &agent, NOW);
    let fx = w.state.apply(&tx, &ctx()).unwrap();
    let reason = Rejection::Passport(PassportRejection::PolicyPayment {
        value: amt(101),
        max: amt(100),
    });
    assert_eq!(fx.forced, Some(ForcedOutcome::Rejected(reason)));
    let PubdataOp::ForcedWithdraw { status, .. } = fx.pubdata else {
        panic!("{:?}", fx.pubdata)
    };
    assert_eq!(status.code(), "POLICY_PAYMENT");
    assert_eq!(
        crate::pubdata::ForcedStatus::from_u8(status as u8),
        Some(status)
    );
    assert_eq!(balance(&w.state, AGENT), 400);
}

#[test]
fn a_snapshot_carries_passports_and_lanes_and_refuses_a_tampered_ext() {
    let (mut w, agent) = with_agent(vec![BOB]);
    w.state.enable_lanes();
    w.state.apply(&pay(&agent, BOB, 10, 1, 0), &ctx()).unwrap();
    let lane = Nonce::in_lane(Lane::new(6).unwrap(), 0).unwrap().get();
    w.state
        .apply(&signed(transfer(ALICE, BOB, 3, 0, lane), &w.alice), &ctx())
        .unwrap();
    let bytes = w.state.encode_snapshot();
    let mut back = State::decode_snapshot(&bytes, &DOMAIN).unwrap();
    assert_eq!(back.root(), w.state.root());
    assert_eq!(back.passport(AGENT), w.state.passport(AGENT));
    assert_eq!(back.lanes_of(ALICE), w.state.lanes_of(ALICE));
    assert_eq!(back.encode_snapshot(), bytes);
    // The agent's spending counts, one byte off: its ext no longer opens to its passport.
    let accounts_end = 8 + 4 + 28 + 16 + 32 + w.state.accounts().len() * 88;
    let spent_at = accounts_end + 8 + 8 + 4 + 4 + 1 + 8;
    let mut bad = bytes.clone();
    bad[spent_at] ^= 1;
    assert_eq!(
        State::decode_snapshot(&bad, &DOMAIN).err(),
        Some(crate::snapshot::SnapshotError::ExtMismatch(AGENT.0))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever an agent and its owner send, in whatever order, money is conserved, the root
    /// is the root of the leaves, and the agent never spends past its cap in one window.
    #[test]
    fn agents_conserve_money_and_never_pass_their_cap(
        ops in proptest::collection::vec((0u8..5, 0u64..120, 0u64..5, 0u64..2_000), 1..30),
    ) {
        let (mut w, agent) = with_agent(vec![]);
        let (mut agent_nonce, mut owner_nonce) = (0u64, 1u64);
        let mut per_window = std::collections::BTreeMap::<u64, u64>::new();
        let mut now = NOW;
        for (op, amount, fee, dt) in ops {
            now += dt;
            let c = at(now);
            let tx = match op {
                0 | 1 => pay(&agent, BOB, amount, fee, agent_nonce),
                2 => owner_tx(ALICE, PassportAction::Sweep { agent: AGENT, amount: amt(amount) }, owner_nonce, &w.alice),
                3 => signed(transfer(ALICE, AGENT, amount.max(1), 0, owner_nonce), &w.alice),
                _ => owner_tx(ALICE, PassportAction::Revoke { agent: AGENT }, owner_nonce, &w.alice),
            };
            let before = snapshot(&mut w.state);
            match w.state.apply(&tx, &c) {
                Ok(_) if op <= 1 => {
                    agent_nonce += 1;
                    *per_window.entry(now / 3600).or_default() += amount + fee;
                }
                Ok(_) => owner_nonce += 1,
                Err(r) => {
                    prop_assert_eq!(snapshot(&mut w.state), before, "{} changed the state", r);
                    // Once revoked, the revocation is the policy reason (it is checked first);
                    // a rule of the transfer itself (zero amount, expiry) may still come before.
                    let revoked = w.state.passport(AGENT).is_some_and(Passport::is_revoked);
                    if op <= 1 && revoked && matches!(r, Rejection::Passport(_)) {
                        prop_assert_eq!(r, Rejection::Passport(PassportRejection::Revoked));
                    }
                }
            }
            prop_assert!(conserved(&w.state));
        }
        prop_assert_eq!(w.state.root(), root_from_scratch(&w.state));
        for (window, total) in per_window {
            prop_assert!(total <= 300, "window {} spent {}", window, total);
        }
    }
}

/// An agent that registered revenue shares pays out by a distribute only (SPEC 19.6): its
/// owner's sweep is refused like the agent's own spends, and changes nothing.
#[test]
fn an_owner_cannot_sweep_an_agent_with_revenue_shares() {
    let (mut w, agent) = with_agent(vec![]);
    let shares = super::shares::register_shares(AGENT, vec![(BOB, 10_000)], 0, &agent);
    w.state.apply(&shares, &ctx()).unwrap();
    let sweep = PassportAction::Sweep {
        agent: AGENT,
        amount: amt(10),
    };
    let tx = owner_tx(ALICE, sweep, 1, &w.alice);
    assert_rejected_at(&mut w.state, &tx, NOW, "SHARES_LOCKED");
}
