use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::account::OPERATOR;
use crate::crypto::schnorr::SecretKey;
use crate::pubdata::{DepositStatus, ForcedStatus, PubdataOp, WithdrawalRecord};
use crate::tx::{
    Deposit, ForcedWithdraw, L1Address, Transfer, UnsignedRegister, UnsignedTransfer,
    UnsignedWithdraw, Withdraw,
};

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [0x42; 20],
};
const OTHER_DOMAIN: Domain = Domain {
    chain_id: 1,
    rollup: [0x42; 20],
};
const NOW: u64 = 1_700_000_000;
const ALICE: AccountIndex = AccountIndex(1);
const BOB: AccountIndex = AccountIndex(2);
const NOWHERE: AccountIndex = AccountIndex(99);
const L1: L1Address = L1Address([0xee; 20]);

fn amt(v: u64) -> Amount {
    Amount::new(v).unwrap()
}
fn ts(v: u64) -> Timestamp {
    Timestamp::new(v).unwrap()
}
fn nonce(v: u64) -> Nonce {
    Nonce::new(v).unwrap()
}
fn ctx() -> BlockContext {
    BlockContext::at(ts(NOW))
}
fn key(seed: u64) -> SecretKey {
    SecretKey::random(&mut StdRng::seed_from_u64(seed))
}

/// Operator at 0, Alice at 1 with 1000, Bob at 2 with 50; Mallory is not registered.
struct World {
    state: State,
    op: SecretKey,
    alice: SecretKey,
    bob: SecretKey,
    mallory: SecretKey,
}

fn world() -> World {
    let (op, alice, bob, mallory) = (key(1), key(2), key(3), key(4));
    let mut w = World {
        state: State::genesis(DOMAIN, op.public_key()),
        op,
        alice,
        bob,
        mallory,
    };
    let a = register_tx(&w.alice, &w.alice, NOW + 10);
    let b = register_tx(&w.bob, &w.bob, NOW + 10);
    assert_eq!(w.state.apply(&a, &ctx()).unwrap().registered, Some(ALICE));
    assert_eq!(w.state.apply(&b, &ctx()).unwrap().registered, Some(BOB));
    w.deposit(ALICE, 1000).unwrap();
    w.deposit(BOB, 50).unwrap();
    w
}

impl World {
    fn deposit(&mut self, to: AccountIndex, amount: u64) -> Result<Effects, Rejection> {
        let tx = Transaction::Deposit(Deposit {
            seq: self.state.next_deposit_seq(),
            to,
            amount: amt(amount),
        });
        self.state.apply(&tx, &ctx())
    }
}

fn register_tx(subject: &SecretKey, signer: &SecretKey, valid_until: u64) -> Transaction {
    UnsignedRegister {
        pubkey: subject.public_key(),
        valid_until: ts(valid_until),
    }
    .sign(&DOMAIN, signer)
    .into()
}

fn transfer(
    from: AccountIndex,
    to: AccountIndex,
    amount: u64,
    fee: u64,
    n: u64,
) -> UnsignedTransfer {
    UnsignedTransfer {
        from,
        to,
        amount: amt(amount),
        fee: amt(fee),
        nonce: nonce(n),
        valid_until: ts(NOW + 60),
    }
}

fn withdraw(from: AccountIndex, amount: u64, fee: u64, n: u64) -> UnsignedWithdraw {
    UnsignedWithdraw {
        from,
        to_l1: L1,
        amount: amt(amount),
        fee: amt(fee),
        nonce: nonce(n),
        valid_until: ts(NOW + 60),
    }
}

fn signed(u: UnsignedTransfer, k: &SecretKey) -> Transaction {
    u.sign(&DOMAIN, k).into()
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    root: Digest,
    accounts: Vec<Account>,
    next_deposit_seq: u64,
    deposited: u128,
    withdrawn: u128,
    streams: BTreeMap<u32, PayerStreams>,
    escrowed: u128,
    passports: BTreeMap<u32, crate::passport::Passport>,
    lanes: BTreeMap<u32, crate::lanes::LaneNonces>,
    shares: BTreeMap<u32, crate::split::Shares>,
}

fn snapshot(s: &mut State) -> Snapshot {
    Snapshot {
        root: s.root(),
        accounts: s.accounts().to_vec(),
        next_deposit_seq: s.next_deposit_seq(),
        deposited: s.deposited(),
        withdrawn: s.withdrawn(),
        streams: s.streams.clone(),
        escrowed: s.escrowed(),
        passports: s.passports.clone(),
        lanes: s.lanes.clone(),
        shares: s.shares.clone(),
    }
}

/// Applies `tx`, expects `expected`, and checks that nothing at all changed.
fn assert_rejected(state: &mut State, tx: &Transaction, expected: Rejection) {
    let before = snapshot(state);
    assert_eq!(state.apply(tx, &ctx()), Err(expected));
    assert_eq!(
        snapshot(state),
        before,
        "a rejected transaction changed the state"
    );
}

fn balance(s: &State, i: AccountIndex) -> u64 {
    s.account(i).unwrap().balance.get()
}

fn conserved(s: &State) -> bool {
    s.deposited() == s.total_balance() + s.escrowed() + s.withdrawn()
}

/// The root recomputed from scratch out of every account's leaf.
fn root_from_scratch(s: &State) -> Digest {
    let mut t = SparseMerkleTree::new();
    for (i, a) in s.accounts().iter().enumerate() {
        t.set(i as u32, a.leaf_hash());
    }
    t.root()
}

// ----- genesis and registration -----

#[test]
fn genesis_has_only_the_operator() {
    let op = key(1);
    let mut s = State::genesis(DOMAIN, op.public_key());
    assert_eq!(s.num_accounts(), 1);
    let acc = *s.account(OPERATOR).unwrap();
    assert_eq!(acc, Account::new(op.public_key()));
    assert_eq!(s.account_by_key(op.public_key()), Some((OPERATOR, &acc)));
    assert_eq!(s.next_deposit_seq(), 0);
    assert_eq!((s.deposited(), s.withdrawn(), s.total_balance()), (0, 0, 0));
    let mut t = SparseMerkleTree::new();
    let empty = t.root();
    t.set(0, acc.leaf_hash());
    assert_eq!(s.root(), t.root());
    assert_ne!(s.root(), empty);
}

#[test]
fn register_assigns_the_next_index() {
    let mut w = world();
    let carol = key(5);
    let root = w.state.root();
    let tx = register_tx(&carol, &carol, NOW);
    let eff = w.state.apply(&tx, &ctx()).unwrap();
    let idx = AccountIndex(3);
    assert_eq!(eff.registered, Some(idx));
    assert_eq!(eff.id, tx.id(&DOMAIN));
    assert_eq!(
        eff.pubdata,
        PubdataOp::Register {
            index: idx,
            pubkey: carol.public_key()
        }
    );
    assert!(eff.balances.is_empty() && eff.nonce.is_none());
    assert_eq!(w.state.num_accounts(), 4);
    assert_eq!(
        *w.state.account(idx).unwrap(),
        Account::new(carol.public_key())
    );
    assert_eq!(w.state.account_by_key(carol.public_key()).unwrap().0, idx);
    assert_ne!(w.state.root(), root);
    assert_eq!(w.state.root(), root_from_scratch(&w.state));
}

#[test]
fn register_rejects_a_registered_key() {
    let mut w = world();
    // A fresh registration of Alice's key (a different message)...
    let again = register_tx(&w.alice, &w.alice, NOW + 500);
    assert_rejected(
        &mut w.state,
        &again,
        Rejection::DuplicateKey { existing: ALICE },
    );
    // ...a replay of her original one...
    let replay = register_tx(&w.alice, &w.alice, NOW + 10);
    assert_rejected(
        &mut w.state,
        &replay,
        Rejection::DuplicateKey { existing: ALICE },
    );
    // ...and the operator's key.
    let op = register_tx(&w.op, &w.op, NOW);
    assert_rejected(
        &mut w.state,
        &op,
        Rejection::DuplicateKey { existing: OPERATOR },
    );
}

#[test]
fn register_requires_proof_of_possession() {
    let mut w = world();
    let carol = key(5);
    // Mallory tries to register Carol's key without Carol's secret key.
    let tx = register_tx(&carol, &w.mallory, NOW);
    assert_rejected(&mut w.state, &tx, Rejection::BadSignature);
    // A registration signed for another deployment.
    let other: Transaction = UnsignedRegister {
        pubkey: carol.public_key(),
        valid_until: ts(NOW),
    }
    .sign(&OTHER_DOMAIN, &carol)
    .into();
    assert_rejected(&mut w.state, &other, Rejection::BadSignature);
}

#[test]
fn register_rejects_expired() {
    let mut w = world();
    let carol = key(5);
    let tx = register_tx(&carol, &carol, NOW - 1);
    assert_rejected(
        &mut w.state,
        &tx,
        Rejection::Expired {
            valid_until: ts(NOW - 1),
            now: ts(NOW),
        },
    );
}

#[test]
fn register_rejects_when_full() {
    let mut w = world();
    w.state.max_accounts = 3;
    let carol = key(5);
    assert_rejected(
        &mut w.state,
        &register_tx(&carol, &carol, NOW),
        Rejection::StateFull,
    );
    w.state.max_accounts = 4;
    assert!(w
        .state
        .apply(&register_tx(&carol, &carol, NOW), &ctx())
        .is_ok());
}

// ----- transfers -----

#[test]
fn transfer_moves_amount_and_fee() {
    let mut w = world();
    let root = w.state.root();
    let tx = signed(transfer(ALICE, BOB, 100, 2, 0), &w.alice);
    let eff = w.state.apply(&tx, &ctx()).unwrap();
    assert_eq!(balance(&w.state, ALICE), 898);
    assert_eq!(balance(&w.state, BOB), 150);
    assert_eq!(balance(&w.state, OPERATOR), 2);
    assert_eq!(w.state.account(ALICE).unwrap().nonce, nonce(1));
    assert_eq!(w.state.account(BOB).unwrap().nonce, nonce(0));
    assert_eq!(eff.id, tx.id(&DOMAIN));
    assert_eq!(
        eff.balances,
        vec![
            BalanceChange {
                account: ALICE,
                before: amt(1000),
                after: amt(898)
            },
            BalanceChange {
                account: BOB,
                before: amt(50),
                after: amt(150)
            },
            BalanceChange {
                account: OPERATOR,
                before: amt(0),
                after: amt(2)
            },
        ]
    );
    assert_eq!(
        eff.nonce,
        Some(NonceChange {
            account: ALICE,
            before: nonce(0),
            after: nonce(1)
        })
    );
    assert_eq!(
        eff.pubdata,
        PubdataOp::Transfer {
            from: ALICE,
            to: BOB,
            amount: amt(100),
            fee: amt(2)
        }
    );
    assert!(conserved(&w.state));
    assert_ne!(w.state.root(), root);
    assert_eq!(w.state.root(), root_from_scratch(&w.state));
    // Alice's next payment uses nonce 1; a zero fee leaves the operator untouched.
    let eff = w
        .state
        .apply(&signed(transfer(ALICE, BOB, 8, 0, 1), &w.alice), &ctx())
        .unwrap();
    assert_eq!(eff.balances.len(), 2);
    assert_eq!(balance(&w.state, OPERATOR), 2);
}

#[test]
fn transfer_rejects_unknown_accounts() {
    let mut w = world();
    let tx = signed(transfer(NOWHERE, BOB, 1, 0, 0), &w.alice);
    assert_rejected(&mut w.state, &tx, Rejection::UnknownAccount(NOWHERE));
    let tx = signed(transfer(ALICE, NOWHERE, 1, 0, 0), &w.alice);
    assert_rejected(&mut w.state, &tx, Rejection::UnknownAccount(NOWHERE));
}

#[test]
fn transfer_rejects_self_and_zero_amount() {
    let mut w = world();
    let tx = signed(transfer(ALICE, ALICE, 1, 1, 0), &w.alice);
    assert_rejected(&mut w.state, &tx, Rejection::SelfTransfer);
    let tx = signed(transfer(ALICE, BOB, 0, 1, 0), &w.alice);
    assert_rejected(&mut w.state, &tx, Rejection::ZeroAmount);
}

#[test]
fn transfer_rejects_wrong_nonce_and_replay() {
    let mut w = world();
    let future = signed(transfer(ALICE, BOB, 1, 0, 1), &w.alice);
    assert_rejected(
        &mut w.state,
        &future,
        Rejection::BadNonce {
            expected: nonce(0),
            got: nonce(1),
        },
    );
    let tx = signed(transfer(ALICE, BOB, 1, 0, 0), &w.alice);
    w.state.apply(&tx, &ctx()).unwrap();
    // The very same signed transaction again.
    assert_rejected(
        &mut w.state,
        &tx,
        Rejection::BadNonce {
            expected: nonce(1),
            got: nonce(0),
        },
    );
    // Now nonce 1 is the right one.
    assert!(w.state.apply(&future, &ctx()).is_ok());
}

/// `check_verified` gives the verdict `apply_verified` gives, for accepted and rejected
/// spends alike, and changes nothing (x402 `/verify` relies on both).
#[test]
fn check_agrees_with_apply_and_changes_nothing() {
    let w = world();
    let mallory_signed = signed(transfer(ALICE, BOB, 1, 0, 0), &w.mallory);
    let cases = [
        signed(transfer(ALICE, BOB, 10, 1, 0), &w.alice),
        signed(transfer(ALICE, BOB, 10, 1, 1), &w.alice),
        signed(transfer(ALICE, BOB, 1000, 1, 0), &w.alice),
        signed(transfer(ALICE, NOWHERE, 1, 0, 0), &w.alice),
        signed(transfer(ALICE, ALICE, 1, 0, 0), &w.alice),
        mallory_signed,
        withdraw(BOB, 50, 0, 0).sign(&DOMAIN, &w.bob).into(),
        withdraw(BOB, 51, 0, 0).sign(&DOMAIN, &w.bob).into(),
    ];
    for tx in cases {
        let mut state = world().state;
        let Ok(v) = VerifiedTx::verify(tx.clone(), &DOMAIN, |i| state.public_key_of(i)) else {
            continue;
        };
        let before = snapshot(&mut state);
        let checked = state.check_verified(&v, &ctx());
        assert_eq!(
            snapshot(&mut state),
            before,
            "check changed the state: {tx:?}"
        );
        let applied = state.apply_verified(v, &ctx()).map(|_| ());
        assert_eq!(checked, applied.map_err(CheckError::Rejected), "{tx:?}");
    }
    // A key that is not the sender's: verified under Mallory's key by hand, refused.
    let forged = VerifiedTx::verify(
        signed(transfer(ALICE, BOB, 1, 0, 0), &w.mallory),
        &DOMAIN,
        |_| Some(w.mallory.public_key()),
    )
    .unwrap();
    assert_eq!(
        w.state.check_verified(&forged, &ctx()),
        Err(CheckError::Rejected(Rejection::BadSignature))
    );
    let deposit = Transaction::Deposit(Deposit {
        seq: w.state.next_deposit_seq(),
        to: BOB,
        amount: amt(1),
    });
    let v = VerifiedTx::verify(deposit, &DOMAIN, |_| None).unwrap();
    assert_eq!(
        w.state.check_verified(&v, &ctx()),
        Err(CheckError::NotCheckable)
    );
}

#[test]
fn transfer_rejects_exhausted_nonce() {
    let mut w = world();
    w.state.accounts[ALICE.0 as usize].nonce = Nonce::MAX;
    w.state.dirty.push(ALICE.0);
    let tx = signed(
        UnsignedTransfer {
            nonce: Nonce::MAX,
            ..transfer(ALICE, BOB, 1, 0, 0)
        },
        &w.alice,
    );
    assert_rejected(&mut w.state, &tx, Rejection::NonceExhausted);
}

#[test]
fn transfer_expiry_is_inclusive() {
    let mut w = world();
    let late = UnsignedTransfer {
        valid_until: ts(NOW - 1),
        ..transfer(ALICE, BOB, 1, 0, 0)
    };
    assert_rejected(
        &mut w.state,
        &signed(late, &w.alice),
        Rejection::Expired {
            valid_until: ts(NOW - 1),
            now: ts(NOW),
        },
    );
    let just_in_time = UnsignedTransfer {
        valid_until: ts(NOW),
        ..late
    };
    assert!(w
        .state
        .apply(&signed(just_in_time, &w.alice), &ctx())
        .is_ok());
}

#[test]
fn transfer_rejects_insufficient_balance() {
    let mut w = world();
    // Amount and fee each fit, their sum does not.
    let tx = signed(transfer(ALICE, BOB, 1000, 1, 0), &w.alice);
    assert_rejected(
        &mut w.state,
        &tx,
        Rejection::InsufficientBalance {
            available: amt(1000),
            required: 1001,
        },
    );
    // The largest possible sum does not overflow.
    let tx = signed(
        UnsignedTransfer {
            amount: Amount::MAX,
            fee: Amount::MAX,
            ..transfer(ALICE, BOB, 1, 0, 0)
        },
        &w.alice,
    );
    assert_rejected(
        &mut w.state,
        &tx,
        Rejection::InsufficientBalance {
            available: amt(1000),
            required: u64::MAX - 1,
        },
    );
    // Exactly the balance is fine.
    assert!(w
        .state
        .apply(&signed(transfer(ALICE, BOB, 999, 1, 0), &w.alice), &ctx())
        .is_ok());
    assert_eq!(balance(&w.state, ALICE), 0);
}

#[test]
fn transfer_rejects_recipient_overflow() {
    let mut w = world();
    w.deposit(BOB, Amount::MAX.get() - 50).unwrap();
    assert_eq!(w.state.account(BOB).unwrap().balance, Amount::MAX);
    let tx = signed(transfer(ALICE, BOB, 1, 0, 0), &w.alice);
    assert_rejected(
        &mut w.state,
        &tx,
        Rejection::BalanceOverflow { account: BOB },
    );
}

#[test]
fn transfer_rejects_operator_fee_overflow() {
    let mut w = world();
    w.deposit(OPERATOR, Amount::MAX.get()).unwrap();
    let tx = signed(transfer(ALICE, BOB, 1, 1, 0), &w.alice);
    assert_rejected(
        &mut w.state,
        &tx,
        Rejection::BalanceOverflow { account: OPERATOR },
    );
    // Without a fee the operator is not credited, so it goes through.
    assert!(w
        .state
        .apply(&signed(transfer(ALICE, BOB, 1, 0, 0), &w.alice), &ctx())
        .is_ok());
}

#[test]
fn operator_can_send_and_receive() {
    let mut w = world();
    // Paying the operator: it receives amount and fee.
    w.state
        .apply(
            &signed(transfer(ALICE, OPERATOR, 10, 1, 0), &w.alice),
            &ctx(),
        )
        .unwrap();
    assert_eq!(balance(&w.state, OPERATOR), 11);
    // The operator paying: its own fee comes back to it, but must be covered up front.
    let too_much = signed(transfer(OPERATOR, BOB, 11, 1, 0), &w.op);
    assert_rejected(
        &mut w.state,
        &too_much,
        Rejection::InsufficientBalance {
            available: amt(11),
            required: 12,
        },
    );
    let eff = w
        .state
        .apply(&signed(transfer(OPERATOR, BOB, 10, 1, 0), &w.op), &ctx())
        .unwrap();
    assert_eq!(balance(&w.state, OPERATOR), 1);
    assert_eq!(balance(&w.state, BOB), 60);
    assert_eq!(
        eff.balances[0],
        BalanceChange {
            account: OPERATOR,
            before: amt(11),
            after: amt(1)
        }
    );
    assert!(conserved(&w.state));
}

// ----- signature attacks -----

#[test]
fn signature_attacks_are_rejected() {
    let mut w = world();
    let honest = transfer(ALICE, BOB, 100, 1, 0);
    // Signed by someone else (unregistered, or another account holder).
    assert_rejected(
        &mut w.state,
        &signed(honest, &w.mallory),
        Rejection::BadSignature,
    );
    assert_rejected(
        &mut w.state,
        &signed(honest, &w.bob),
        Rejection::BadSignature,
    );
    // Signed, then altered: amount, fee, recipient, sender, nonce, expiry.
    let good = honest.sign(&DOMAIN, &w.alice);
    let tampered = [
        Transfer {
            amount: amt(999),
            ..good
        },
        Transfer {
            fee: amt(0),
            ..good
        },
        Transfer {
            to: OPERATOR,
            ..good
        },
        Transfer {
            from: BOB,
            to: ALICE,
            ..good
        },
        Transfer {
            valid_until: ts(NOW + 61),
            ..good
        },
    ];
    for t in tampered {
        assert_rejected(&mut w.state, &t.into(), Rejection::BadSignature);
    }
    // A valid signature lifted from another transaction.
    let other = transfer(ALICE, BOB, 1, 0, 0).sign(&DOMAIN, &w.alice);
    let lifted = Transfer {
        signature: other.signature,
        ..good
    };
    assert_rejected(&mut w.state, &lifted.into(), Rejection::BadSignature);
    // Signed for another deployment.
    let foreign: Transaction = honest.sign(&OTHER_DOMAIN, &w.alice).into();
    assert_rejected(&mut w.state, &foreign, Rejection::BadSignature);
    // The honest one still goes through, once.
    assert!(w.state.apply(&good.into(), &ctx()).is_ok());
    assert_rejected(
        &mut w.state,
        &good.into(),
        Rejection::BadNonce {
            expected: nonce(1),
            got: nonce(0),
        },
    );
}

// ----- withdrawals -----

#[test]
fn withdraw_leaves_the_rollup() {
    let mut w = world();
    let tx: Transaction = withdraw(ALICE, 300, 3, 0).sign(&DOMAIN, &w.alice).into();
    let eff = w.state.apply(&tx, &ctx()).unwrap();
    assert_eq!(balance(&w.state, ALICE), 697);
    assert_eq!(balance(&w.state, OPERATOR), 3);
    assert_eq!(w.state.withdrawn(), 300);
    assert_eq!(w.state.deposited(), 1050);
    assert!(conserved(&w.state));
    assert_eq!(
        eff.withdrawal,
        Some(WithdrawalRecord {
            from: ALICE,
            to_l1: L1,
            amount: amt(300)
        })
    );
    assert_eq!(
        eff.pubdata,
        PubdataOp::Withdraw {
            from: ALICE,
            to_l1: L1,
            amount: amt(300),
            fee: amt(3)
        }
    );
    assert_eq!(w.state.account(ALICE).unwrap().nonce, nonce(1));
    assert_eq!(w.state.root(), root_from_scratch(&w.state));
}

#[test]
fn withdraw_rejections() {
    let mut w = world();
    let sign = |u: UnsignedWithdraw, k: &SecretKey| -> Transaction { u.sign(&DOMAIN, k).into() };
    let cases = [
        (
            sign(withdraw(ALICE, 1, 0, 0), &w.bob),
            Rejection::BadSignature,
        ),
        (
            sign(withdraw(NOWHERE, 1, 0, 0), &w.alice),
            Rejection::UnknownAccount(NOWHERE),
        ),
        (
            sign(withdraw(ALICE, 0, 1, 0), &w.alice),
            Rejection::ZeroAmount,
        ),
        (
            sign(withdraw(ALICE, 1, 0, 3), &w.alice),
            Rejection::BadNonce {
                expected: nonce(0),
                got: nonce(3),
            },
        ),
        (
            sign(withdraw(ALICE, 1000, 1, 0), &w.alice),
            Rejection::InsufficientBalance {
                available: amt(1000),
                required: 1001,
            },
        ),
        (
            sign(
                UnsignedWithdraw {
                    valid_until: ts(0),
                    ..withdraw(ALICE, 1, 0, 0)
                },
                &w.alice,
            ),
            Rejection::Expired {
                valid_until: ts(0),
                now: ts(NOW),
            },
        ),
    ];
    for (tx, rejection) in cases {
        assert_rejected(&mut w.state, &tx, rejection);
    }
    // Tampering with the L1 destination breaks the signature.
    let good = withdraw(ALICE, 1, 0, 0).sign(&DOMAIN, &w.alice);
    let redirected = Withdraw {
        to_l1: L1Address([0x66; 20]),
        ..good
    };
    assert_rejected(&mut w.state, &redirected.into(), Rejection::BadSignature);
    // Operator fee overflow.
    w.deposit(OPERATOR, Amount::MAX.get()).unwrap();
    assert_rejected(
        &mut w.state,
        &sign(withdraw(ALICE, 1, 1, 0), &w.alice),
        Rejection::BalanceOverflow { account: OPERATOR },
    );
}

// ----- deposits -----

#[test]
fn deposits_must_come_in_order() {
    let mut w = world();
    assert_eq!(w.state.next_deposit_seq(), 2);
    let to = |seq| {
        Transaction::Deposit(Deposit {
            seq,
            to: ALICE,
            amount: amt(5),
        })
    };
    assert_rejected(
        &mut w.state,
        &to(3),
        Rejection::BadDepositOrder {
            expected: 2,
            got: 3,
        },
    );
    // Replaying an already consumed deposit.
    assert_rejected(
        &mut w.state,
        &to(0),
        Rejection::BadDepositOrder {
            expected: 2,
            got: 0,
        },
    );
    let eff = w.state.apply(&to(2), &ctx()).unwrap();
    assert_eq!(eff.deposit, Some(DepositOutcome::Credited));
    assert_eq!(
        eff.pubdata,
        PubdataOp::Deposit {
            seq: 2,
            to: ALICE,
            amount: amt(5),
            status: DepositStatus::Credited
        }
    );
    assert_eq!(w.state.next_deposit_seq(), 3);
    assert_eq!(balance(&w.state, ALICE), 1005);
    assert_eq!(w.state.deposited(), 1055);
    assert!(conserved(&w.state));
}

#[test]
fn deposits_that_cannot_be_credited_are_consumed_and_refunded() {
    let mut w = world();
    for (to, amount, reason) in [
        (NOWHERE, 7, RefundReason::UnknownAccount),
        // A zero deposit to a missing account is still a refund, not a credit.
        (NOWHERE, 0, RefundReason::UnknownAccount),
        (ALICE, Amount::MAX.get(), RefundReason::BalanceOverflow),
    ] {
        let before = snapshot(&mut w.state);
        let seq = w.state.next_deposit_seq();
        let eff = w.deposit(to, amount).unwrap();
        assert_eq!(eff.deposit, Some(DepositOutcome::Refunded { reason }));
        assert_eq!(
            eff.pubdata,
            PubdataOp::Deposit {
                seq,
                to,
                amount: amt(amount),
                status: DepositStatus::Refunded
            }
        );
        assert!(eff.balances.is_empty());
        let after = snapshot(&mut w.state);
        assert_eq!(after.next_deposit_seq, seq + 1, "the deposit is consumed");
        assert_eq!(
            Snapshot {
                next_deposit_seq: seq,
                ..after
            },
            before,
            "nothing but the queue moved"
        );
    }
    assert!(conserved(&w.state));
}

// ----- the parallel verification path -----

#[test]
fn apply_verified_skips_the_signature_but_not_the_binding() {
    let mut w = world();
    let tx = signed(transfer(ALICE, BOB, 5, 0, 0), &w.alice);
    let v = VerifiedTx::verify(tx.clone(), &DOMAIN, |i| w.state.public_key_of(i)).unwrap();
    assert_eq!(v.id(), tx.id(&DOMAIN));
    assert_eq!(*v.tx(), tx);
    assert_eq!(
        w.state.apply_verified(v, &ctx()).unwrap().id,
        tx.id(&DOMAIN)
    );

    // Verification with an unknown sender, or a bad signature, never yields a VerifiedTx.
    assert_eq!(
        VerifiedTx::verify(tx.clone(), &DOMAIN, |_| None),
        Err(Rejection::UnknownAccount(ALICE))
    );
    let forged = signed(transfer(ALICE, BOB, 5, 0, 1), &w.mallory);
    assert_eq!(
        VerifiedTx::verify(forged.clone(), &DOMAIN, |i| w.state.public_key_of(i)),
        Err(Rejection::BadSignature)
    );

    // A key directory that lies (Mallory's key for Alice's account) is caught by the writer.
    let mallory = w.mallory.public_key();
    let v = VerifiedTx::verify(forged, &DOMAIN, |_| Some(mallory)).unwrap();
    let before = snapshot(&mut w.state);
    assert_eq!(
        w.state.apply_verified(v, &ctx()),
        Err(Rejection::BadSignature)
    );
    assert_eq!(snapshot(&mut w.state), before);

    // Verified for another deployment.
    let foreign: Transaction = transfer(ALICE, BOB, 5, 0, 1)
        .sign(&OTHER_DOMAIN, &w.alice)
        .into();
    let v = VerifiedTx::verify(foreign, &OTHER_DOMAIN, |i| w.state.public_key_of(i)).unwrap();
    assert_eq!(
        w.state.apply_verified(v, &ctx()),
        Err(Rejection::WrongDomain)
    );
    assert_eq!(snapshot(&mut w.state), before);
}

#[test]
fn verify_signature_binds_the_key() {
    let w = world();
    let tx = signed(transfer(ALICE, BOB, 5, 0, 0), &w.alice);
    assert_eq!(tx.verify_signature(&DOMAIN, &w.alice.public_key()), Ok(()));
    assert_eq!(
        tx.verify_signature(&DOMAIN, &w.bob.public_key()),
        Err(Rejection::BadSignature)
    );
    assert_eq!(
        tx.verify_signature(&OTHER_DOMAIN, &w.alice.public_key()),
        Err(Rejection::BadSignature)
    );
    // A registration only verifies under the key it carries, even if the signature is
    // valid for the key given.
    let carol = key(5);
    let reg = register_tx(&carol, &w.mallory, NOW);
    assert_eq!(
        reg.verify_signature(&DOMAIN, &w.mallory.public_key()),
        Err(Rejection::BadSignature)
    );
    let reg = register_tx(&carol, &carol, NOW);
    assert_eq!(reg.verify_signature(&DOMAIN, &carol.public_key()), Ok(()));
}

// ----- roots and codes -----

#[test]
fn root_is_recomputed_lazily_and_proofs_verify() {
    let mut w = world();
    let r0 = w.state.root();
    assert_eq!(r0, root_from_scratch(&w.state));
    for n in 0..5 {
        w.state
            .apply(&signed(transfer(ALICE, BOB, 1, 1, n), &w.alice), &ctx())
            .unwrap();
    }
    assert!(
        !w.state.dirty.is_empty(),
        "roots are not computed per transaction"
    );
    let r1 = w.state.root();
    assert!(w.state.dirty.is_empty());
    assert_ne!(r0, r1);
    assert_eq!(r1, root_from_scratch(&w.state));
    for i in [OPERATOR, ALICE, BOB] {
        let leaf = w.state.account(i).unwrap().leaf_hash();
        assert!(w.state.proof(i).verify(r1, i.0, leaf));
    }
    // An empty index proves the zero leaf.
    assert!(w.state.proof(NOWHERE).verify(r1, NOWHERE.0, Digest::ZERO));
}

#[test]
fn rejection_codes_are_distinct() {
    let all = [
        Rejection::BadSignature,
        Rejection::UnknownAccount(ALICE),
        Rejection::SelfTransfer,
        Rejection::ZeroAmount,
        Rejection::BadNonce {
            expected: nonce(0),
            got: nonce(1),
        },
        Rejection::NonceExhausted,
        Rejection::Expired {
            valid_until: ts(0),
            now: ts(1),
        },
        Rejection::InsufficientBalance {
            available: amt(0),
            required: 1,
        },
        Rejection::BalanceOverflow { account: BOB },
        Rejection::DuplicateKey { existing: ALICE },
        Rejection::StateFull,
        Rejection::BadDepositOrder {
            expected: 0,
            got: 1,
        },
        Rejection::WrongDomain,
        Rejection::KindNotEnabled(TxKind::StreamOpen),
    ];
    let codes: std::collections::BTreeSet<_> = all.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), all.len());
    for c in codes {
        assert!(
            c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'),
            "{c}"
        );
    }
    assert_eq!(
        Rejection::BadNonce {
            expected: nonce(0),
            got: nonce(1)
        }
        .code(),
        "BAD_NONCE"
    );
}

fn forced(w: &World, u: UnsignedWithdraw, signer: &SecretKey, requested_at: u64) -> Transaction {
    ForcedWithdraw {
        seq: w.state.next_deposit_seq(),
        requested_at: ts(requested_at),
        withdraw: u.sign(&DOMAIN, signer),
    }
    .into()
}

/// Applies a forced withdrawal expected to be rejected with `reason`: only the serial
/// counter moves, and the published status names the reason.
fn assert_forced_rejected(w: &mut World, tx: Transaction, reason: Rejection) {
    let before = snapshot(&mut w.state);
    let e = w
        .state
        .apply(&tx, &ctx())
        .expect("a forced withdrawal in order is consumed");
    assert_eq!(e.forced, Some(ForcedOutcome::Rejected(reason)));
    assert_eq!(e.withdrawal, None);
    assert!(e.balances.is_empty() && e.nonce.is_none());
    let status = ForcedStatus::from_rejection(&reason).unwrap();
    assert!(matches!(e.pubdata, PubdataOp::ForcedWithdraw { status: s, .. } if s == status));
    let after = snapshot(&mut w.state);
    assert_eq!(after.next_deposit_seq, before.next_deposit_seq + 1);
    assert_eq!(
        Snapshot {
            next_deposit_seq: before.next_deposit_seq,
            ..after
        },
        before
    );
}

#[test]
fn forced_withdrawal_is_applied_like_a_withdraw() {
    let mut w = world();
    let tx = forced(&w, withdraw(ALICE, 300, 7, 0), &w.alice.clone(), NOW);
    let seq = w.state.next_deposit_seq();
    let e = w.state.apply(&tx, &ctx()).unwrap();
    assert_eq!(e.kind, TxKind::ForcedWithdraw);
    assert_eq!(e.forced, Some(ForcedOutcome::Applied));
    assert_eq!(
        e.withdrawal,
        Some(WithdrawalRecord {
            from: ALICE,
            to_l1: L1,
            amount: amt(300)
        })
    );
    assert_eq!(w.state.account(ALICE).unwrap().balance, amt(693));
    assert_eq!(w.state.account(ALICE).unwrap().nonce, nonce(1));
    assert_eq!(w.state.account(OPERATOR).unwrap().balance, amt(7));
    assert_eq!(w.state.next_deposit_seq(), seq + 1);
    assert_eq!(w.state.withdrawn(), 300);
    assert_eq!(
        w.state.deposited(),
        w.state.total_balance() + w.state.withdrawn()
    );
    // Replaying it (same serial) is out of order; a second request with the same signed
    // withdraw gets a new serial and is rejected by the nonce.
    assert_rejected(
        &mut w.state,
        &tx,
        Rejection::BadDepositOrder {
            expected: seq + 1,
            got: seq,
        },
    );
    let again = forced(&w, withdraw(ALICE, 300, 7, 0), &w.alice.clone(), NOW);
    assert_forced_rejected(
        &mut w,
        again,
        Rejection::BadNonce {
            expected: nonce(1),
            got: nonce(0),
        },
    );
}

#[test]
fn forced_withdrawal_rejections_consume_the_serial_and_change_nothing_else() {
    let mut w = world();
    let (alice, bob, mallory) = (w.alice.clone(), w.bob.clone(), w.mallory.clone());
    let tx = forced(&w, withdraw(NOWHERE, 1, 0, 0), &mallory, NOW);
    assert_forced_rejected(&mut w, tx, Rejection::UnknownAccount(NOWHERE));
    // Signed by Bob for Alice's account: a forged signature.
    let tx = forced(&w, withdraw(ALICE, 1, 0, 0), &bob, NOW);
    assert_forced_rejected(&mut w, tx, Rejection::BadSignature);
    // Signed for another rollup.
    let mut tx = forced(&w, withdraw(ALICE, 1, 0, 0), &alice, NOW);
    if let Transaction::ForcedWithdraw(f) = &mut tx {
        f.withdraw = withdraw(ALICE, 1, 0, 0).sign(&OTHER_DOMAIN, &alice);
    }
    assert_forced_rejected(&mut w, tx, Rejection::BadSignature);
    // Expired when it was requested on L1 (NOW + 60 < NOW + 61).
    let tx = forced(&w, withdraw(ALICE, 1, 0, 0), &alice, NOW + 61);
    assert_forced_rejected(
        &mut w,
        tx,
        Rejection::Expired {
            valid_until: ts(NOW + 60),
            now: ts(NOW + 61),
        },
    );
    let mut zero = withdraw(ALICE, 1, 0, 0);
    zero.amount = Amount::ZERO;
    let tx = forced(&w, zero, &alice, NOW);
    assert_forced_rejected(&mut w, tx, Rejection::ZeroAmount);
    let tx = forced(&w, withdraw(ALICE, 1, 0, 5), &alice, NOW);
    assert_forced_rejected(
        &mut w,
        tx,
        Rejection::BadNonce {
            expected: nonce(0),
            got: nonce(5),
        },
    );
    let tx = forced(&w, withdraw(ALICE, 990, 11, 0), &alice, NOW);
    assert_forced_rejected(
        &mut w,
        tx,
        Rejection::InsufficientBalance {
            available: amt(1000),
            required: 1001,
        },
    );
}

#[test]
fn forced_withdrawal_expiry_is_judged_at_the_l1_request_time() {
    let mut w = world();
    let alice = w.alice.clone();
    // Requested while valid, processed long after valid_until: applied.
    let tx = forced(&w, withdraw(ALICE, 5, 0, 0), &alice, NOW + 60);
    let late = BlockContext::at(ts(NOW + 86_400));
    let e = w.state.apply(&tx, &late).unwrap();
    assert_eq!(e.forced, Some(ForcedOutcome::Applied));
}

#[test]
fn forced_withdrawal_and_deposits_share_the_queue_order() {
    let mut w = world();
    let alice = w.alice.clone();
    let mut tx = forced(&w, withdraw(ALICE, 5, 0, 0), &alice, NOW);
    let next = w.state.next_deposit_seq();
    if let Transaction::ForcedWithdraw(f) = &mut tx {
        f.seq = next + 1;
    }
    assert_rejected(
        &mut w.state,
        &tx,
        Rejection::BadDepositOrder {
            expected: next,
            got: next + 1,
        },
    );
    let tx = forced(&w, withdraw(ALICE, 5, 0, 0), &alice, NOW);
    w.state.apply(&tx, &ctx()).unwrap();
    let e = w.deposit(BOB, 1).unwrap();
    assert_eq!(e.deposit, Some(DepositOutcome::Credited));
    assert_eq!(w.state.next_deposit_seq(), next + 2);
}

mod streams;

mod splits;

mod passports;

mod shares;
