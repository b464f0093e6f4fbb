//! Property tests of the state-transition function.
//!
//! Random sequences of valid and invalid transactions (deposits in and out of order, to missing
//! accounts and up to overflow; registrations with wrong signers, duplicates, expired ones;
//! transfers and withdrawals with random amounts, wrong nonces, wrong keys, tampered bodies,
//! expired ones) are applied to a [`State`], and after every step:
//!
//! * the outcome (accepted, or the rejection code) and every account equal those of a small
//!   independent reference model written from the rules in `apply.rs`'s docs;
//! * supply is conserved: `deposited == total_balance + withdrawn`;
//! * a nonce only ever moves by +1, and only for the sender of an accepted transfer/withdrawal;
//! * a rejected transaction leaves the root, every account and every counter unchanged;
//! * an accepted transaction's `Effects` describe exactly the balance changes that happened;
//! * a second state fed the same transactions through `VerifiedTx::verify` + `apply_verified`
//!   (the sequencer's parallel path) reaches the same outcomes and the same roots.

use std::sync::OnceLock;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use state::account::{Account, AccountIndex, Amount, Nonce, Timestamp, MAX_AMOUNT, OPERATOR};
use state::apply::{BlockContext, Effects, Rejection, State, VerifiedTx};
use state::crypto::schnorr::SecretKey;
use state::tx::{
    Deposit, Domain, L1Address, Transaction, UnsignedRegister, UnsignedTransfer, UnsignedWithdraw,
};
use state::Digest;

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [0x11; 20],
};
const NOW: u64 = 1_700_000_000;
/// Key 0 is the operator's; keys 1.. may be registered by the sequence.
const NUM_KEYS: usize = 6;

fn keys() -> &'static [SecretKey] {
    static KEYS: OnceLock<Vec<SecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        (0..NUM_KEYS).map(|_| SecretKey::random(&mut rng)).collect()
    })
}

/// An account index: usually one that exists (resolved against the model when the
/// transaction is built), sometimes any small index, which may not exist.
#[derive(Clone, Copy, Debug)]
enum Pick {
    Existing(usize),
    Raw(u32),
}

impl Pick {
    fn resolve(self, m: &Model) -> u32 {
        match self {
            Pick::Existing(i) => (i % m.accounts.len()) as u32,
            Pick::Raw(i) => i,
        }
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![9 => any::<usize>().prop_map(Pick::Existing), 1 => (0u32..10).prop_map(Pick::Raw)]
}

#[derive(Clone, Debug)]
enum Op {
    Deposit {
        to: Pick,
        amount: u64,
        seq_skew: i64,
    },
    Register {
        key: usize,
        signer: usize,
        valid: i64,
    },
    Transfer {
        from: Pick,
        to: Pick,
        amount: u64,
        fee: u64,
        spend: Spend,
    },
    Withdraw {
        from: Pick,
        amount: u64,
        fee: u64,
        spend: Spend,
    },
}

/// The parts shared by transfers and withdrawals, including the ways to get them wrong.
#[derive(Clone, Debug)]
struct Spend {
    nonce_skew: i64,
    /// `None`: the sender account's own key; `Some(k)`: key `k` (maybe the right one anyway).
    signer: Option<usize>,
    /// Offset of `valid_until` from the block time (negative = expired).
    valid: i64,
    /// Change the amount after signing.
    tamper: bool,
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0u64..5,
        6 => 0u64..2_000,
        1 => Just(MAX_AMOUNT),
        1 => MAX_AMOUNT - 3..=MAX_AMOUNT,
    ]
}

fn valid_offset() -> impl Strategy<Value = i64> {
    prop_oneof![6 => 0i64..100, 1 => -3i64..0]
}

fn spend() -> impl Strategy<Value = Spend> {
    (
        prop_oneof![8 => Just(0i64), 2 => -2i64..=2],
        prop_oneof![6 => Just(None), 1 => (0..NUM_KEYS).prop_map(Some)],
        valid_offset(),
        prop::bool::weighted(0.08),
    )
        .prop_map(|(nonce_skew, signer, valid, tamper)| Spend {
            nonce_skew,
            signer,
            valid,
            tamper,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (pick(), amount(), prop_oneof![8 => Just(0i64), 1 => -1i64..=1])
            .prop_map(|(to, amount, seq_skew)| Op::Deposit { to, amount, seq_skew }),
        2 => (1..NUM_KEYS, prop_oneof![5 => Just(None), 1 => (0..NUM_KEYS).prop_map(Some)], valid_offset())
            .prop_map(|(key, signer, valid)| Op::Register { key, signer: signer.unwrap_or(key), valid }),
        6 => (pick(), pick(), amount(), prop_oneof![2 => Just(0u64), 3 => 0u64..10, 1 => amount()], spend())
            .prop_map(|(from, to, amount, fee, spend)| Op::Transfer { from, to, amount, fee, spend }),
        2 => (pick(), amount(), prop_oneof![2 => Just(0u64), 3 => 0u64..10, 1 => amount()], spend())
            .prop_map(|(from, amount, fee, spend)| Op::Withdraw { from, amount, fee, spend }),
    ]
}

// ---------------------------------------------------------------------------------------------
// The reference model: plain integers, rules transcribed from the documentation.

#[derive(Clone, Debug)]
struct ModelAccount {
    key: usize,
    balance: u64,
    nonce: u64,
}

#[derive(Clone, Debug)]
struct Model {
    accounts: Vec<ModelAccount>,
    next_seq: u64,
    deposited: u128,
    withdrawn: u128,
}

/// What the model expects: the rejection code, or the updated model.
type Expected = Result<Model, &'static str>;

impl Model {
    fn genesis() -> Model {
        Model {
            accounts: vec![ModelAccount {
                key: 0,
                balance: 0,
                nonce: 0,
            }],
            next_seq: 0,
            deposited: 0,
            withdrawn: 0,
        }
    }

    fn get(&self, i: u32) -> Option<&ModelAccount> {
        self.accounts.get(i as usize)
    }

    /// Shared checks and balance moves of transfers (`to = Some`) and withdrawals.
    #[allow(clippy::too_many_arguments)]
    fn spend(
        &self,
        from: u32,
        to: Option<u32>,
        amount: u64,
        fee: u64,
        nonce: u64,
        signer: usize,
        valid_until: u64,
        now: u64,
        tampered: bool,
    ) -> Expected {
        let sender = self.get(from).ok_or("UNKNOWN_ACCOUNT")?;
        if sender.key != signer || tampered {
            return Err("BAD_SIGNATURE");
        }
        if valid_until < now {
            return Err("EXPIRED");
        }
        if let Some(to) = to {
            self.get(to).ok_or("UNKNOWN_ACCOUNT")?;
            if to == from {
                return Err("SELF_TRANSFER");
            }
        }
        if amount == 0 {
            return Err("ZERO_AMOUNT");
        }
        if nonce != sender.nonce {
            return Err("BAD_NONCE");
        }
        let required = u128::from(amount) + u128::from(fee);
        if required > u128::from(sender.balance) {
            return Err("INSUFFICIENT_BALANCE");
        }
        let mut next = self.clone();
        next.accounts[from as usize].balance -= amount + fee;
        next.accounts[from as usize].nonce += 1;
        let mut credit = |i: u32, v: u64| -> Result<(), &'static str> {
            let b = &mut next.accounts[i as usize].balance;
            if u128::from(*b) + u128::from(v) > u128::from(MAX_AMOUNT) {
                return Err("BALANCE_OVERFLOW");
            }
            *b += v;
            Ok(())
        };
        match to {
            Some(to) => credit(to, amount)?,
            None => next.withdrawn += u128::from(amount),
        }
        credit(0, fee)?;
        Ok(next)
    }
}

// ---------------------------------------------------------------------------------------------

/// Builds the transaction for `op` against the model (for current nonces and keys) and the
/// model's expected outcome.
fn build(op: &Op, m: &Model, now: u64) -> (Transaction, Expected) {
    let ks = keys();
    let ts = |offset: i64| Timestamp::new(now.saturating_add_signed(offset)).unwrap();
    let amt = |v: u64| Amount::new(v).unwrap();
    let sender_key = |from: u32, spend: &Spend| {
        spend
            .signer
            .unwrap_or_else(|| m.get(from).map_or(0, |a| a.key))
    };
    let nonce_for = |from: u32, spend: &Spend| {
        m.get(from)
            .map_or(0, |a| a.nonce)
            .saturating_add_signed(spend.nonce_skew)
    };
    match op {
        Op::Deposit {
            to,
            amount,
            seq_skew,
        } => {
            let to = &to.resolve(m);
            let seq = m.next_seq.wrapping_add_signed(*seq_skew);
            let tx = Transaction::Deposit(Deposit {
                seq,
                to: AccountIndex(*to),
                amount: amt(*amount),
            });
            let expected = if seq != m.next_seq {
                Err("BAD_DEPOSIT_ORDER")
            } else {
                let mut next = m.clone();
                next.next_seq += 1;
                if let Some(a) = next.accounts.get_mut(*to as usize) {
                    if u128::from(a.balance) + u128::from(*amount) <= u128::from(MAX_AMOUNT) {
                        a.balance += amount;
                        next.deposited += u128::from(*amount);
                    }
                }
                Ok(next)
            };
            (tx, expected)
        }
        Op::Register { key, signer, valid } => {
            let tx = UnsignedRegister {
                pubkey: ks[*key].public_key(),
                valid_until: ts(*valid),
            }
            .sign(&DOMAIN, &ks[*signer])
            .into();
            let expected = if signer != key {
                Err("BAD_SIGNATURE")
            } else if *valid < 0 {
                Err("EXPIRED")
            } else if m.accounts.iter().any(|a| a.key == *key) {
                Err("DUPLICATE_KEY")
            } else {
                let mut next = m.clone();
                next.accounts.push(ModelAccount {
                    key: *key,
                    balance: 0,
                    nonce: 0,
                });
                Ok(next)
            };
            (tx, expected)
        }
        Op::Transfer {
            from,
            to,
            amount,
            fee,
            spend,
        } => {
            let (from, to) = (&from.resolve(m), &to.resolve(m));
            let signer = sender_key(*from, spend);
            let nonce = nonce_for(*from, spend);
            let mut t = UnsignedTransfer {
                from: AccountIndex(*from),
                to: AccountIndex(*to),
                amount: amt(*amount),
                fee: amt(*fee),
                nonce: Nonce::new(nonce).unwrap(),
                valid_until: ts(spend.valid),
            }
            .sign(&DOMAIN, &ks[signer]);
            if spend.tamper {
                t.amount = amt(amount ^ 1);
            }
            let expected = m.spend(
                *from,
                Some(*to),
                t.amount.get(),
                *fee,
                nonce,
                signer,
                t.valid_until.get(),
                now,
                spend.tamper,
            );
            (t.into(), expected)
        }
        Op::Withdraw {
            from,
            amount,
            fee,
            spend,
        } => {
            let from = &from.resolve(m);
            let signer = sender_key(*from, spend);
            let nonce = nonce_for(*from, spend);
            let mut w = UnsignedWithdraw {
                from: AccountIndex(*from),
                to_l1: L1Address([*from as u8; 20]),
                amount: amt(*amount),
                fee: amt(*fee),
                nonce: Nonce::new(nonce).unwrap(),
                valid_until: ts(spend.valid),
            }
            .sign(&DOMAIN, &ks[signer]);
            if spend.tamper {
                w.amount = amt(amount ^ 1);
            }
            let expected = m.spend(
                *from,
                None,
                w.amount.get(),
                *fee,
                nonce,
                signer,
                w.valid_until.get(),
                now,
                spend.tamper,
            );
            (w.into(), expected)
        }
    }
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    root: Digest,
    accounts: Vec<Account>,
    next_deposit_seq: u64,
    deposited: u128,
    withdrawn: u128,
}

fn snapshot(s: &mut State) -> Snapshot {
    Snapshot {
        root: s.root(),
        accounts: s.accounts().to_vec(),
        next_deposit_seq: s.next_deposit_seq(),
        deposited: s.deposited(),
        withdrawn: s.withdrawn(),
    }
}

/// Checks one step's outcome against the invariants and the model.
fn check_step(
    tx: &Transaction,
    result: &Result<Effects, Rejection>,
    before: &Snapshot,
    after: &Snapshot,
    state: &State,
    expected: &Expected,
) -> Result<(), TestCaseError> {
    let code = result.as_ref().map(|_| ()).map_err(|r| r.code());
    prop_assert_eq!(
        code,
        expected.as_ref().map(|_| ()).map_err(|c| *c),
        "tx {:?}",
        tx
    );

    // Supply conservation, fee account included.
    prop_assert_eq!(state.deposited(), state.total_balance() + state.withdrawn());

    match result {
        Err(_) => prop_assert_eq!(after, before, "a rejected transaction changed the state"),
        Ok(effects) => {
            prop_assert_eq!(effects.id, tx.id(&DOMAIN));
            prop_assert_eq!(effects.kind, tx.kind());
            // Nonces: +1 for the sender of an accepted transfer/withdrawal, nobody else.
            let sender = match tx {
                Transaction::Transfer(t) => Some(t.from),
                Transaction::Withdraw(w) => Some(w.from),
                _ => None,
            };
            for (i, a) in after.accounts.iter().enumerate() {
                let old = before.accounts.get(i).map_or(Nonce::ZERO, |b| b.nonce);
                if sender == Some(AccountIndex(i as u32)) {
                    prop_assert_eq!(a.nonce.get(), old.get() + 1);
                } else {
                    prop_assert_eq!(a.nonce, old, "nonce of {} moved", i);
                }
            }
            // The reported balance changes are exactly the balances that changed.
            let mut changed: Vec<(u32, Amount, Amount)> = after
                .accounts
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    let old = before.accounts.get(i).map_or(Amount::ZERO, |b| b.balance);
                    (old != a.balance).then_some((i as u32, old, a.balance))
                })
                .collect();
            let mut reported: Vec<(u32, Amount, Amount)> = effects
                .balances
                .iter()
                .map(|c| (c.account.0, c.before, c.after))
                .collect();
            changed.sort();
            reported.sort();
            prop_assert_eq!(reported, changed);
        }
    }

    // The state equals the model.
    if let Ok(model) = expected {
        prop_assert_eq!(state.num_accounts(), model.accounts.len() as u64);
        for (i, m) in model.accounts.iter().enumerate() {
            let a = state.account(AccountIndex(i as u32)).unwrap();
            prop_assert_eq!(a.pubkey, keys()[m.key].public_key());
            prop_assert_eq!(a.balance.get(), m.balance);
            prop_assert_eq!(a.nonce.get(), m.nonce);
        }
        prop_assert_eq!(state.next_deposit_seq(), model.next_seq);
        prop_assert_eq!(state.deposited(), model.deposited);
        prop_assert_eq!(state.withdrawn(), model.withdrawn);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_respect_the_rules(ops in prop::collection::vec(op(), 1..64)) {
        let operator = keys()[0].public_key();
        let mut state = State::genesis(DOMAIN, operator);
        let mut parallel = State::genesis(DOMAIN, operator);
        let mut model = Model::genesis();

        // A prelude that registers and funds a few accounts, so that the random part mostly
        // exercises transfers and withdrawals between existing accounts.
        let mut prelude: Vec<Op> = (1..4)
            .map(|key| Op::Register { key, signer: key, valid: 0 })
            .collect();
        prelude.extend((0..4).map(|to| Op::Deposit {
            to: Pick::Raw(to),
            amount: 1_000 * u64::from(to),
            seq_skew: 0,
        }));

        for (step, op) in prelude.iter().chain(&ops).enumerate() {
            let now = NOW + step as u64;
            let ctx = BlockContext::at(Timestamp::new(now).unwrap());
            let (tx, expected) = build(op, &model, now);

            let before = snapshot(&mut state);
            let result = state.apply(&tx, &ctx);
            let after = snapshot(&mut state);
            check_step(&tx, &result, &before, &after, &state, &expected)?;

            // The sequencer's path: verify (outside the writer), then apply without re-checking.
            let via_verified = VerifiedTx::verify(tx, &DOMAIN, |i| parallel.public_key_of(i))
                .and_then(|v| parallel.apply_verified(v, &ctx));
            prop_assert_eq!(&via_verified, &result);
            prop_assert_eq!(parallel.root(), after.root);

            if let Ok(next) = expected {
                model = next;
            }
        }
        prop_assert_eq!(state.account(OPERATOR).unwrap().pubkey, operator);
    }
}
