//! Passport rules from the attacker's side, and property tests of the cap.

use proptest::prelude::*;

use super::*;
use crate::split::Payout;

fn amt(v: u64) -> Amount {
    Amount::new(v).unwrap()
}
fn ts(v: u64) -> Timestamp {
    Timestamp::new(v).unwrap()
}
fn idx(v: u32) -> AccountIndex {
    AccountIndex(v)
}

fn policy(cap: u64, window: u32) -> Policy {
    Policy {
        cap: amt(cap),
        window,
        max_payment: amt(100),
        max_fee: amt(5),
        expiry: ts(10_000),
        allow: AllowList::anyone(),
        card: Card::default(),
    }
}

fn pay(value: u64, fee: u64, to: u32) -> Spend<'static> {
    Spend {
        value: amt(value),
        fee: amt(fee),
        payees: Payees::One(idx(to)),
    }
}

#[test]
fn each_policy_rule_refuses_with_its_own_reason() {
    let mut p = Passport::new(idx(1), policy(250, 3600));
    let now = ts(100);
    assert_eq!(
        charge(&p, &pay(101, 0, 7), now).unwrap_err().code(),
        "POLICY_PAYMENT"
    );
    assert_eq!(
        charge(&p, &pay(10, 6, 7), now).unwrap_err().code(),
        "POLICY_FEE"
    );
    assert_eq!(
        charge(&p, &pay(10, 1, 7), ts(10_001)).unwrap_err().code(),
        "POLICY_EXPIRED"
    );
    assert_eq!(
        charge(&p, &pay(10, 1, 7), ts(10_000)).map(|c| c.spent),
        Ok(amt(11)),
        "the expiry itself is still valid"
    );
    // Several payments, each under the maximum, do not add up past the cap.
    for _ in 0..2 {
        let c = charge(&p, &pay(100, 5, 7), now).unwrap();
        p.record(c);
    }
    assert_eq!(p.spent(), (0, amt(210)));
    assert_eq!(p.remaining(now), amt(40));
    let over = charge(&p, &pay(36, 5, 7), now).unwrap_err();
    assert_eq!(over.code(), "POLICY_CAP");
    assert_eq!(
        charge(&p, &pay(35, 5, 7), now).map(|c| c.spent),
        Ok(amt(250)),
        "exactly the cap is allowed"
    );
    // The next window starts from nothing.
    assert_eq!(
        charge(&p, &pay(100, 5, 7), ts(3600)).map(|c| (c.window_id, c.spent)),
        Ok((1, amt(105)))
    );
    p.revoke();
    assert_eq!(
        charge(&p, &pay(1, 0, 7), now).unwrap_err().code(),
        "REVOKED"
    );
}

#[test]
fn the_revocation_comes_before_every_other_rule() {
    let mut p = Passport::new(idx(1), policy(10, 0));
    p.revoke();
    assert_eq!(
        charge(&p, &pay(1_000, 1_000, 7), ts(99_999)).unwrap_err(),
        PassportRejection::Revoked
    );
}

#[test]
fn the_allow_list_binds_every_payee_and_refuses_l1_and_splits() {
    let mut pol = policy(1_000, 0);
    pol.allow = AllowList::new(vec![idx(3), idx(8), idx(9)]).unwrap();
    let p = Passport::new(idx(1), pol);
    let now = ts(1);
    assert!(charge(&p, &pay(5, 0, 8), now).is_ok());
    assert_eq!(
        charge(&p, &pay(5, 0, 4), now).unwrap_err(),
        PassportRejection::PolicyPayee(idx(4))
    );
    let parts = [
        Payout {
            to: idx(3),
            amount: amt(1),
        },
        Payout {
            to: idx(5),
            amount: amt(1),
        },
    ];
    let split = Spend {
        value: amt(2),
        fee: amt(0),
        payees: Payees::Parts(&parts),
    };
    assert_eq!(
        charge(&p, &split, now).unwrap_err(),
        PassportRejection::PolicySplit
    );
    // Even a split to listed payees only (the chain proves no membership, SPEC 20.4).
    let listed = [
        parts[0],
        Payout {
            to: idx(9),
            amount: amt(1),
        },
    ];
    let split = Spend {
        payees: Payees::Parts(&listed),
        ..split
    };
    assert_eq!(charge(&p, &split, now).unwrap_err().code(), "POLICY_PAYEE");
    // Without a list, any split.
    let anyone = Passport::new(idx(1), policy(1_000, 0));
    assert!(charge(&anyone, &split, now).is_ok());
    let withdraw = Spend {
        value: amt(2),
        fee: amt(0),
        payees: Payees::L1,
    };
    assert_eq!(
        charge(&p, &withdraw, now).unwrap_err().code(),
        "POLICY_PAYEE"
    );
    let settle = Spend {
        value: amt(0),
        fee: amt(1),
        payees: Payees::None,
    };
    assert_eq!(
        charge(&p, &settle, now).map(|c| c.spent),
        Ok(amt(1)),
        "a fee counts"
    );
}

#[test]
fn only_the_owner_acts_on_an_agent() {
    let p = Passport::new(idx(1), policy(10, 0));
    assert!(owned_by(Some(&p), idx(2), idx(1)).is_ok());
    assert_eq!(
        owned_by(Some(&p), idx(2), idx(2)).unwrap_err(),
        PassportRejection::NotOwner { owner: idx(1) },
        "the agent cannot act as its owner"
    );
    assert_eq!(
        owned_by(None, idx(2), idx(1)).unwrap_err().code(),
        "NOT_AN_AGENT"
    );
}

#[test]
fn allow_list_shape_is_checked() {
    assert_eq!(
        AllowList::new(vec![idx(3), idx(3)]).unwrap_err(),
        PassportRejection::AllowListNotSorted(idx(3))
    );
    assert_eq!(
        AllowList::new(vec![idx(4), idx(3)]).unwrap_err().code(),
        "ALLOW_LIST_NOT_SORTED"
    );
    let long: Vec<_> = (0..=MAX_ALLOWED as u32).map(idx).collect();
    assert_eq!(AllowList::new(long).unwrap_err().code(), "TOO_MANY_ALLOWED");
    assert_eq!(
        Card::new([0; 32], "x".repeat(256)).unwrap_err().code(),
        "URI_TOO_LONG"
    );
    assert!(Card::new([0; 32], "x".repeat(255)).is_ok());
}

#[test]
fn every_listed_payee_has_a_path_to_the_root_and_no_other_index_does() {
    let list = AllowList::new(vec![idx(0), idx(2), idx(1_000_000)]).unwrap();
    let root = list.root();
    assert_ne!(root, Digest::ZERO);
    assert_eq!(AllowList::anyone().root(), Digest::ZERO);
    for &p in list.payees() {
        let (pos, path) = list.path(p).unwrap();
        assert_eq!(root_from_path(p, pos, &path), root);
        // The same path does not prove a neighbour, nor the payee at another position.
        assert_ne!(root_from_path(idx(p.0 + 1), pos, &path), root);
        assert_ne!(root_from_path(p, pos ^ 1, &path), root);
    }
    assert!(list.path(idx(1)).is_none());
    let full = AllowList::new((0..MAX_ALLOWED as u32).map(idx).collect()).unwrap();
    let (pos, path) = full.path(idx(1023)).unwrap();
    assert_eq!(root_from_path(idx(1023), pos, &path), full.root());
}

#[test]
fn each_policy_field_and_passport_field_changes_its_digest() {
    let base = policy(10, 60);
    let d = base.digest();
    let mut variants = vec![];
    let mut v = base.clone();
    v.cap = amt(11);
    variants.push(v);
    let mut v = base.clone();
    v.window = 61;
    variants.push(v);
    let mut v = base.clone();
    v.max_payment = amt(99);
    variants.push(v);
    let mut v = base.clone();
    v.max_fee = amt(4);
    variants.push(v);
    let mut v = base.clone();
    v.expiry = ts(9_999);
    variants.push(v);
    let mut v = base.clone();
    v.allow = AllowList::new(vec![idx(5)]).unwrap();
    variants.push(v);
    let mut v = base.clone();
    v.card = Card::new([1; 32], String::new()).unwrap();
    variants.push(v);
    let mut v = base.clone();
    v.card = Card::new([0; 32], "https://a.example/card.json".into()).unwrap();
    variants.push(v);
    for v in &variants {
        assert_ne!(v.digest(), d, "{v:?}");
    }
    let p = Passport::new(idx(1), base.clone());
    let mut q = p.clone();
    q.revoke();
    assert_ne!(q.digest(), p.digest());
    let mut q = p.clone();
    q.record(Charge {
        window_id: 0,
        spent: amt(1),
    });
    assert_ne!(q.digest(), p.digest());
    assert_ne!(Passport::new(idx(2), base).digest(), p.digest());
}

proptest! {
    /// Whatever spends an agent attempts, at whatever times, what it was allowed to spend in
    /// any one window never passes the cap, and each refusal leaves the passport as it was.
    #[test]
    fn accepted_spends_never_pass_the_cap_in_any_window(
        cap in 0u64..500,
        window in prop_oneof![Just(0u32), 1u32..50],
        spends in proptest::collection::vec((0u64..120, 0u64..8, 0u64..20), 1..60),
    ) {
        let mut p = Passport::new(idx(1), policy(cap, window));
        let mut now = 0u64;
        let mut per_window = std::collections::BTreeMap::<u64, u64>::new();
        for (value, fee, dt) in spends {
            now += dt;
            let before = p.clone();
            match charge(&p, &pay(value, fee, 3), ts(now)) {
                Ok(c) => {
                    p.record(c);
                    *per_window.entry(c.window_id).or_default() += value + fee;
                    prop_assert_eq!(c.window_id, p.policy().window_id(ts(now)));
                }
                Err(_) => prop_assert_eq!(&p, &before),
            }
        }
        for (w, total) in per_window {
            prop_assert!(total <= cap, "window {} spent {} > cap {}", w, total, cap);
        }
    }
}
