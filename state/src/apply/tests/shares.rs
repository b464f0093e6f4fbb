//! Revenue-share accounts (SPEC 19.6) against the state: registered once, locked, paid out by
//! anyone's distribute, every refusal with its reason and no effect.

use super::*;
use crate::split::Shares;
use crate::stream::rules::Open;
use crate::stream::{StreamSlot, TickCount};
use crate::tx::{DistributeBody, Unsigned, UnsignedRegisterShares, UnsignedSplit};

/// Registers two more accounts (carol 3, dave 4) and returns them.
fn carol_and_dave(w: &mut World) -> (AccountIndex, AccountIndex) {
    let mut idx = [AccountIndex(0); 2];
    for (i, seed) in [60u64, 61].into_iter().enumerate() {
        let k = key(seed);
        idx[i] = w
            .state
            .apply(&register_tx(&k, &k, NOW + 10), &ctx())
            .unwrap()
            .registered
            .unwrap();
    }
    (idx[0], idx[1])
}

pub(super) fn register_shares(
    account: AccountIndex,
    parts: Vec<(AccountIndex, u16)>,
    n: u64,
    k: &SecretKey,
) -> Transaction {
    UnsignedRegisterShares {
        account,
        parts,
        fee: amt(1),
        nonce: nonce(n),
        valid_until: ts(NOW + 60),
    }
    .sign(&DOMAIN, k)
    .into()
}

fn distribute(signer: AccountIndex, account: AccountIndex, n: u64, k: &SecretKey) -> Transaction {
    Unsigned {
        body: DistributeBody { signer, account },
        fee: amt(2),
        nonce: nonce(n),
        valid_until: ts(NOW + 60),
    }
    .sign(&DOMAIN, k)
    .into()
}

#[test]
fn shares_lock_the_account_and_a_distribute_pays_the_whole_balance_by_them() {
    let mut w = world();
    let (carol, dave) = carol_and_dave(&mut w);
    let parts = vec![(BOB, 5_000), (carol, 3_333), (dave, 1_667)];
    let fx = w
        .state
        .apply(&register_shares(ALICE, parts.clone(), 0, &w.alice), &ctx())
        .unwrap();
    let shares = Shares::new(ALICE, parts.clone()).unwrap();
    assert_eq!(w.state.shares_of(ALICE), Some(&shares));
    assert_eq!(fx.ext.len(), 1, "the shares enter the profile");
    assert_eq!(w.state.root(), root_from_scratch(&w.state));

    // Locked: every spend alice signs is refused, and changes nothing.
    let locked = Rejection::Split(SplitRejection::SharesLocked(ALICE));
    assert_rejected(
        &mut w.state,
        &signed(transfer(ALICE, BOB, 5, 0, 1), &w.alice),
        locked,
    );
    let out: Transaction = withdraw(ALICE, 5, 0, 1).sign(&DOMAIN, &w.alice).into();
    assert_rejected(&mut w.state, &out, locked);
    let split: Transaction = UnsignedSplit {
        from: ALICE,
        parts: vec![crate::split::Payout {
            to: BOB,
            amount: amt(1),
        }],
        fee: amt(0),
        nonce: nonce(1),
        valid_until: ts(NOW + 60),
    }
    .sign(&DOMAIN, &w.alice)
    .into();
    assert_rejected(&mut w.state, &split, locked);
    let open: Transaction = Unsigned {
        body: Open {
            payer: ALICE,
            payee: BOB,
            slot: StreamSlot(0),
            price: amt(1),
            max_ticks: TickCount::new(5).unwrap(),
            expiry: ts(NOW + 100),
            anchor: Digest::ZERO,
        },
        fee: amt(0),
        nonce: nonce(1),
        valid_until: ts(NOW + 60),
    }
    .sign(&DOMAIN, &w.alice)
    .into();
    assert_rejected(&mut w.state, &open, locked);
    // A delegate would hand the balance to an agent alice answers for: refused, whatever its
    // fund (one rule, the same in the circuit's lock).
    for fund in [5, 0] {
        use super::passports::{delegate, owner_tx, policy};
        let delegate = owner_tx(ALICE, delegate(&key(77), fund, policy(vec![])), 1, &w.alice);
        assert_rejected(&mut w.state, &delegate, locked);
    }
    // Shares never change.
    assert_rejected(
        &mut w.state,
        &register_shares(ALICE, vec![(BOB, 10_000)], 1, &w.alice),
        Rejection::Split(SplitRejection::SharesAlreadySet(ALICE)),
    );

    // Bob triggers the distribute: alice's 999 leave by the shares (rounding: 19.3).
    let (bob0, carol0, dave0) = (balance(&w.state, BOB), 0, 0);
    w.state
        .apply(&distribute(BOB, ALICE, 0, &w.bob), &ctx())
        .unwrap();
    let paid = shares.split(amt(999));
    assert_eq!(balance(&w.state, ALICE), 0);
    assert_eq!(balance(&w.state, BOB), bob0 - 2 + paid[0].amount.get());
    assert_eq!(balance(&w.state, carol), carol0 + paid[1].amount.get());
    assert_eq!(balance(&w.state, dave), dave0 + paid[2].amount.get());
    assert_eq!(paid.iter().map(|p| p.amount.get()).sum::<u64>(), 999);
    assert!(conserved(&w.state));
    assert_eq!(w.state.root(), root_from_scratch(&w.state));
    // Nothing left: refused, nothing changes (bob's fee included).
    assert_rejected(
        &mut w.state,
        &distribute(BOB, ALICE, 1, &w.bob),
        Rejection::Split(SplitRejection::NothingToDistribute),
    );
    // Alice may distribute herself: her fee comes out first.
    w.deposit(ALICE, 10).unwrap();
    w.state
        .apply(&distribute(ALICE, ALICE, 1, &w.alice), &ctx())
        .unwrap();
    assert_eq!(balance(&w.state, ALICE), 0);
    assert!(conserved(&w.state));
}

#[test]
fn bad_registrations_and_distributes_are_refused_with_their_reason() {
    let mut w = world();
    let (carol, _) = carol_and_dave(&mut w);
    for (parts, reason) in [
        (vec![], SplitRejection::NoPayees),
        (
            vec![(carol, 5_000), (BOB, 5_000)],
            SplitRejection::PayeesNotSorted(BOB),
        ),
        (vec![(ALICE, 10_000)], SplitRejection::SelfPayee(ALICE)),
        (
            vec![(BOB, 0), (carol, 10_000)],
            SplitRejection::ZeroPart(BOB),
        ),
        (
            vec![(BOB, 5_000), (carol, 4_999)],
            SplitRejection::SharesNotWhole(9_999),
        ),
    ] {
        let tx = register_shares(ALICE, parts, 0, &w.alice);
        assert_rejected(&mut w.state, &tx, Rejection::Split(reason));
    }
    let tx = register_shares(ALICE, vec![(BOB, 5_000), (NOWHERE, 5_000)], 0, &w.alice);
    assert_rejected(&mut w.state, &tx, Rejection::UnknownAccount(NOWHERE));
    assert_rejected(
        &mut w.state,
        &distribute(BOB, ALICE, 0, &w.bob),
        Rejection::Split(SplitRejection::NoShares(ALICE)),
    );
    // A registration signed by another key than the account's.
    let forged = register_shares(ALICE, vec![(BOB, 10_000)], 0, &w.mallory);
    assert_rejected(&mut w.state, &forged, Rejection::BadSignature);
}

#[test]
fn a_forced_withdrawal_from_a_shares_account_publishes_shares_locked() {
    let mut w = world();
    w.state
        .apply(
            &register_shares(ALICE, vec![(BOB, 10_000)], 0, &w.alice),
            &ctx(),
        )
        .unwrap();
    let alice = w.alice.clone();
    let tx = super::forced(&w, withdraw(ALICE, 5, 0, 1), &alice, NOW);
    let fx = w.state.apply(&tx, &ctx()).unwrap();
    let PubdataOp::ForcedWithdraw { status, .. } = fx.pubdata else {
        panic!("{:?}", fx.pubdata)
    };
    assert_eq!(status.code(), "SHARES_LOCKED");
    assert_eq!(balance(&w.state, ALICE), 999);
}
