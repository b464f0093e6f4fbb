//! Split payments (SPEC 19.4) against the state: paid all at once, refused all at once, each
//! refusal with its reason and no effect, from the attacker's side.

use proptest::prelude::*;

use super::*;
use crate::split::{Payout, MAX_PAYEES};
use crate::tx::UnsignedSplit;

fn part(to: AccountIndex, amount: u64) -> Payout {
    Payout {
        to,
        amount: amt(amount),
    }
}

fn split(from: AccountIndex, parts: Vec<Payout>, fee: u64, n: u64) -> UnsignedSplit {
    UnsignedSplit {
        from,
        parts,
        fee: amt(fee),
        nonce: nonce(n),
        valid_until: ts(NOW + 60),
    }
}

fn signed_split(u: UnsignedSplit, k: &SecretKey) -> Transaction {
    u.sign(&DOMAIN, k).into()
}

/// Registers `n` more accounts (keys from seed 100 on) and returns their indices.
fn more_accounts(w: &mut World, n: u64) -> Vec<AccountIndex> {
    (0..n)
        .map(|i| {
            let k = key(100 + i);
            let r = register_tx(&k, &k, NOW + 10);
            w.state.apply(&r, &ctx()).unwrap().registered.unwrap()
        })
        .collect()
}

#[test]
fn a_split_pays_every_payee_and_the_fee_at_once() {
    let mut w = world();
    let carol = more_accounts(&mut w, 1)[0];
    let tx = signed_split(
        split(
            ALICE,
            vec![part(OPERATOR, 5), part(BOB, 70), part(carol, 25)],
            3,
            0,
        ),
        &w.alice,
    );
    let fx = w.state.apply(&tx, &ctx()).unwrap();
    assert_eq!(balance(&w.state, ALICE), 1000 - 100 - 3);
    assert_eq!(balance(&w.state, BOB), 50 + 70);
    assert_eq!(balance(&w.state, carol), 25);
    assert_eq!(
        balance(&w.state, OPERATOR),
        5 + 3,
        "a payee that is the operator gets its part and the fee"
    );
    assert_eq!(w.state.account(ALICE).unwrap().nonce, nonce(1));
    assert!(conserved(&w.state));
    assert_eq!(w.state.root(), root_from_scratch(&w.state));
    // The op replays the split: its parts, the fee, no nonce or signature.
    let PubdataOp::Split { from, parts, fee } = &fx.pubdata else {
        panic!("{:?}", fx.pubdata)
    };
    assert_eq!((*from, parts.len(), *fee), (ALICE, 3, amt(3)));
    assert_eq!(fx.balances.len(), 4, "alice, the operator, bob, carol");
    // The same split again is a replay.
    assert_rejected(
        &mut w.state,
        &tx,
        Rejection::BadNonce {
            expected: nonce(1),
            got: nonce(0),
        },
    );
}

#[test]
fn a_split_to_1024_payees_is_one_transaction() {
    let mut w = world();
    let payees = more_accounts(&mut w, MAX_PAYEES as u64);
    w.deposit(ALICE, 1024).unwrap();
    let parts: Vec<Payout> = payees.iter().map(|&p| part(p, 1)).collect();
    let tx = signed_split(split(ALICE, parts.clone(), 0, 0), &w.alice);
    assert_eq!(tx.encoded_len(), 103 + 12 * 1024);
    assert_eq!(Transaction::decode(&tx.encode()), Ok(tx.clone()));
    w.state.apply(&tx, &ctx()).unwrap();
    assert_eq!(balance(&w.state, ALICE), 1000);
    assert!(payees.iter().all(|&p| balance(&w.state, p) == 1));
    assert!(conserved(&w.state));
    assert_eq!(w.state.root(), root_from_scratch(&w.state));
}

#[test]
fn bad_splits_are_refused_with_their_reason_and_change_nothing() {
    let mut w = world();
    let carol = more_accounts(&mut w, 1)[0];
    let alice = w.alice.clone();
    let cases: Vec<(Vec<Payout>, u64, Rejection)> = vec![
        (vec![], 0, SplitRejection::NoPayees.into()),
        (
            vec![part(carol, 1), part(BOB, 1)],
            0,
            SplitRejection::PayeesNotSorted(BOB).into(),
        ),
        (
            vec![part(BOB, 1), part(BOB, 1)],
            0,
            SplitRejection::PayeesNotSorted(BOB).into(),
        ),
        (
            vec![part(ALICE, 1), part(BOB, 1)],
            0,
            SplitRejection::SelfPayee(ALICE).into(),
        ),
        (
            vec![part(BOB, 1), part(carol, 0)],
            0,
            SplitRejection::ZeroPart(carol).into(),
        ),
        (
            vec![part(BOB, Amount::MAX.get()), part(carol, 1)],
            0,
            SplitRejection::SplitOverflow.into(),
        ),
        (
            vec![part(BOB, 1), part(NOWHERE, 1)],
            0,
            Rejection::UnknownAccount(NOWHERE),
        ),
        // Overspending by the fee alone is refused: the sum and the fee leave together.
        (
            vec![part(BOB, 500), part(carol, 500)],
            1,
            Rejection::InsufficientBalance {
                available: amt(1000),
                required: 1001,
            },
        ),
    ];
    for (parts, fee, want) in cases {
        let tx = signed_split(split(ALICE, parts, fee, 0), &alice);
        assert_rejected(&mut w.state, &tx, want);
    }
    // A payee whose balance would overflow refuses the whole split.
    w.deposit(carol, Amount::MAX.get() - 10).unwrap();
    let tx = signed_split(
        split(ALICE, vec![part(BOB, 1), part(carol, 11)], 0, 0),
        &alice,
    );
    assert_rejected(
        &mut w.state,
        &tx,
        Rejection::BalanceOverflow { account: carol },
    );
    // Signed by another key (Mallory's), or by Bob for Alice's account: refused.
    for k in [&w.mallory.clone(), &w.bob.clone()] {
        let tx = signed_split(split(ALICE, vec![part(BOB, 1)], 0, 0), k);
        assert_rejected(&mut w.state, &tx, Rejection::BadSignature);
    }
    // A signed split whose part was changed afterwards no longer verifies.
    let Transaction::Split(mut forged) =
        signed_split(split(ALICE, vec![part(BOB, 1)], 0, 0), &alice)
    else {
        unreachable!()
    };
    forged.parts[0].amount = amt(900);
    assert_rejected(&mut w.state, &forged.into(), Rejection::BadSignature);
    // Expired.
    let mut late = split(ALICE, vec![part(BOB, 1)], 0, 0);
    late.valid_until = ts(NOW - 1);
    assert_rejected(
        &mut w.state,
        &signed_split(late, &alice),
        Rejection::Expired {
            valid_until: ts(NOW - 1),
            now: ts(NOW),
        },
    );
}

#[test]
fn more_than_1024_payees_is_refused_by_the_decoder() {
    let w = world();
    let parts: Vec<Payout> = (0..=MAX_PAYEES as u32)
        .map(|i| part(AccountIndex(10 + i), 1))
        .collect();
    let tx = signed_split(split(ALICE, parts, 0, 0), &w.alice);
    let err = Transaction::decode(&tx.encode()).unwrap_err();
    assert_eq!(err.code(), "TOO_MANY_PAYEES", "{err}");
    // And a split whose length disagrees with its payee count.
    let ok = signed_split(split(ALICE, vec![part(BOB, 1)], 0, 0), &w.alice).encode();
    for bad in [&ok[..ok.len() - 1], &[ok.as_slice(), &[0]].concat()[..]] {
        assert_eq!(Transaction::decode(bad).unwrap_err().code(), "WRONG_LENGTH");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the parts, a split is applied whole or not at all, and money is conserved:
    /// the sender loses exactly what the payees and the operator gain.
    #[test]
    fn splits_conserve_money_and_are_all_or_nothing(
        parts in prop::collection::vec((0u32..6, 0u64..600), 0..8),
        fee in 0u64..50,
    ) {
        let mut w = world();
        let others = more_accounts(&mut w, 3);
        let parts: Vec<Payout> = parts
            .into_iter()
            .map(|(i, a)| {
                let to = match i {
                    0 => OPERATOR,
                    1 => ALICE,
                    2 => BOB,
                    3..=5 => others[i as usize - 3],
                    _ => NOWHERE,
                };
                part(to, a)
            })
            .collect();
        let tx = signed_split(split(ALICE, parts.clone(), fee, 0), &w.alice);
        let before = snapshot(&mut w.state);
        let total_before = w.state.total_balance();
        match w.state.apply(&tx, &ctx()) {
            Ok(_) => {
                let sum: u64 = parts.iter().map(|p| p.amount.get()).sum();
                prop_assert_eq!(balance(&w.state, ALICE), 1000 - sum - fee);
                for p in &parts {
                    let was = before.accounts[p.to.0 as usize].balance.get();
                    let fee_in = if p.to == OPERATOR { fee } else { 0 };
                    prop_assert_eq!(balance(&w.state, p.to), was + p.amount.get() + fee_in);
                }
            }
            Err(_) => prop_assert_eq!(snapshot(&mut w.state), before),
        }
        prop_assert_eq!(w.state.total_balance(), total_before);
        prop_assert!(conserved(&w.state));
    }
}
