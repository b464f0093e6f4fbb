//! Property tests of net state diffs (`state::diff`, SPEC 10.4).
//!
//! * Random sequences of transactions (registrations, deposits, transfers and withdrawals,
//!   valid or not) are applied with `State::apply` and cut into batches at random points; at
//!   every cut the batch's diff, built and checked by `BatchTouches::seal`, applied to a copy
//!   of the state before the batch (and to a replica that only ever saw diffs since genesis)
//!   gives exactly the new root and the same accounts. Payment streams open, settle and close
//!   among them, so version 2 diffs (stream records) rebuild the payers' books and `ext` too.
//! * `decode(encode(d)) == d` for arbitrary well-formed diffs.
//! * Decoding is canonical and total: any byte string either is rejected or is the encoding of
//!   the diff it decodes to (so a mutated blob can never pass as another encoding of the same
//!   diff), and nothing panics.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use state::account::{AccountIndex, Amount, Nonce, Timestamp, MAX_U63};
use state::apply::{BlockContext, State};
use state::crypto::schnorr::{PublicKey, SecretKey};
use state::diff::{AccountRecord, AccountTree, BatchTouches, StateDiff};
use state::hash::hash_no_pad;
use state::stream::rules::{Close, Open, Settle};
use state::stream::{StreamId, StreamSlot, TickChain, TickCount};
use state::tx::{
    Deposit, Domain, L1Address, SettleBody, Transaction, Unsigned, UnsignedRegister,
    UnsignedTransfer, UnsignedWithdraw,
};

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [0x22; 20],
};
const NOW: u64 = 1_700_000_000;
const NUM_KEYS: usize = 8;

fn keys() -> &'static [SecretKey] {
    static KEYS: OnceLock<Vec<SecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(0xd1ff);
        (0..NUM_KEYS).map(|_| SecretKey::random(&mut rng)).collect()
    })
}

#[derive(Clone, Debug)]
enum Op {
    Register(usize),
    Deposit {
        to: u32,
        amount: u64,
    },
    Transfer {
        from: u32,
        to: u32,
        amount: u64,
        fee: u64,
    },
    Withdraw {
        from: u32,
        amount: u64,
        fee: u64,
    },
    StreamOpen {
        payer: u32,
        payee: u32,
        slot: u16,
        price: u64,
        max_ticks: u32,
    },
    StreamSettle {
        payer: u32,
        slot: u16,
        ticks: u32,
    },
    StreamClose {
        payer: u32,
        slot: u16,
        by_payee: bool,
    },
    Seal,
}

/// An account: below [`RAW`], an existing one (taken modulo the number of accounts when the
/// transaction is built); from [`RAW`] on, index `pick - RAW`, which may not exist.
fn pick() -> impl Strategy<Value = u32> {
    prop_oneof![6 => 0..RAW, 1 => RAW..RAW + 10]
}
const RAW: u32 = 1_000;

fn resolve(s: &State, pick: u32) -> u32 {
    match pick.checked_sub(RAW) {
        Some(raw) => raw,
        None => pick % s.num_accounts() as u32,
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1..NUM_KEYS).prop_map(Op::Register),
        3 => (pick(), prop_oneof![9 => 0u64..5_000, 1 => Just(MAX_U63)])
            .prop_map(|(to, amount)| Op::Deposit { to, amount }),
        8 => (pick(), pick(), 0u64..1_500, 0u64..20)
            .prop_map(|(from, to, amount, fee)| Op::Transfer { from, to, amount, fee }),
        2 => (pick(), 0u64..1_000, 0u64..20)
            .prop_map(|(from, amount, fee)| Op::Withdraw { from, amount, fee }),
        3 => (pick(), pick(), 0u16..3, 0u64..30, 1u32..40).prop_map(
            |(payer, payee, slot, price, max_ticks)| Op::StreamOpen { payer, payee, slot, price, max_ticks }
        ),
        3 => (pick(), 0u16..3, 0u32..45)
            .prop_map(|(payer, slot, ticks)| Op::StreamSettle { payer, slot, ticks }),
        1 => (pick(), 0u16..3, any::<bool>())
            .prop_map(|(payer, slot, by_payee)| Op::StreamClose { payer, slot, by_payee }),
        2 => Just(Op::Seal),
    ]
}

/// The tick chain of stream `id`: its seed is a function of the id, so a test rebuilds it.
fn chain(id: StreamId, max_ticks: TickCount) -> TickChain {
    let [a, b] = id.to_field_elements();
    TickChain::new(id, max_ticks, hash_no_pad(&[a, b]))
}

/// The secret key of account `index`, if it exists.
fn signer(s: &State, index: u32) -> Option<&'static SecretKey> {
    let k = s.key_of(AccountIndex(index))?;
    keys().iter().find(|sk| sk.public_key() == k)
}

/// The transaction `op` stands for against `s` (`None` for a seal, or when it cannot even be
/// signed: a sender that does not exist).
fn tx(s: &State, op: &Op) -> Option<Transaction> {
    let until = Timestamp::new(NOW + 60)?;
    Some(match *op {
        Op::Register(k) => UnsignedRegister {
            pubkey: keys()[k].public_key(),
            valid_until: until,
        }
        .sign(&DOMAIN, &keys()[k])
        .into(),
        Op::Deposit { to, amount } => Transaction::Deposit(Deposit {
            seq: s.next_deposit_seq(),
            to: AccountIndex(resolve(s, to)),
            amount: Amount::new(amount)?,
        }),
        Op::Transfer {
            from,
            to,
            amount,
            fee,
        } => {
            let (from, to) = (resolve(s, from), resolve(s, to));
            UnsignedTransfer {
                from: AccountIndex(from),
                to: AccountIndex(to),
                amount: Amount::new(amount)?,
                fee: Amount::new(fee)?,
                nonce: s.account(AccountIndex(from))?.nonce,
                valid_until: until,
            }
            .sign(&DOMAIN, signer(s, from)?)
            .into()
        }
        Op::Withdraw { from, amount, fee } => {
            let from = resolve(s, from);
            UnsignedWithdraw {
                from: AccountIndex(from),
                to_l1: L1Address([0xee; 20]),
                amount: Amount::new(amount)?,
                fee: Amount::new(fee)?,
                nonce: s.account(AccountIndex(from))?.nonce,
                valid_until: until,
            }
            .sign(&DOMAIN, signer(s, from)?)
            .into()
        }
        Op::StreamOpen {
            payer,
            payee,
            slot,
            price,
            max_ticks,
        } => {
            let (payer, payee) = (resolve(s, payer), resolve(s, payee));
            let nonce = s.account(AccountIndex(payer))?.nonce;
            let max_ticks = TickCount::new(max_ticks)?;
            let id = StreamId {
                payer: AccountIndex(payer),
                slot: StreamSlot(slot),
                opened_at: nonce,
            };
            Unsigned {
                body: Open {
                    payer: AccountIndex(payer),
                    payee: AccountIndex(payee),
                    slot: StreamSlot(slot),
                    price: Amount::new(price)?,
                    max_ticks,
                    expiry: Timestamp::new(NOW + 600)?,
                    anchor: chain(id, max_ticks).anchor(),
                },
                fee: Amount::new(1)?,
                nonce,
                valid_until: until,
            }
            .sign(&DOMAIN, signer(s, payer)?)
            .into()
        }
        Op::StreamSettle { payer, slot, ticks } => {
            let payer = resolve(s, payer);
            let st = *s.streams_of(AccountIndex(payer)).get(StreamSlot(slot))?;
            // Past the maximum by a few ticks sometimes: refused, like a replay of `from`.
            let to = st.settled.get() + ticks.max(1);
            let value = chain(st.id, st.max_ticks)
                .tick(to.min(st.max_ticks.get()))?
                .value;
            Unsigned {
                body: SettleBody {
                    payee: st.payee,
                    terms: Settle {
                        payer: AccountIndex(payer),
                        slot: StreamSlot(slot),
                        from: st.settled,
                        to: TickCount::new(to)?,
                        value,
                    },
                },
                fee: Amount::ZERO,
                nonce: s.account(st.payee)?.nonce,
                valid_until: until,
            }
            .sign(&DOMAIN, signer(s, st.payee.0)?)
            .into()
        }
        Op::StreamClose {
            payer,
            slot,
            by_payee,
        } => {
            let payer = resolve(s, payer);
            let st = *s.streams_of(AccountIndex(payer)).get(StreamSlot(slot))?;
            // The payer's close is early (expiry + 1 h is in the future): refused.
            let signer_index = if by_payee {
                st.payee
            } else {
                AccountIndex(payer)
            };
            Unsigned {
                body: Close {
                    payer: AccountIndex(payer),
                    slot: StreamSlot(slot),
                    signer: signer_index,
                },
                fee: Amount::ZERO,
                nonce: s.account(signer_index)?.nonce,
                valid_until: until,
            }
            .sign(&DOMAIN, signer(s, signer_index.0)?)
            .into()
        }
        Op::Seal => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_batch_diff_rebuilds_the_new_state(ops in prop::collection::vec(op(), 1..60)) {
        let ctx = BlockContext::at(Timestamp::new(NOW).unwrap());
        let mut s = State::genesis(DOMAIN, keys()[0].public_key());
        let mut replica = AccountTree::genesis(keys()[0].public_key());
        let mut old_root = s.root();
        let mut old_accounts = s.accounts().to_vec();
        let mut old_tree = AccountTree::from_state(&s);
        let mut touches = BatchTouches::new(s.num_accounts());
        let mut accepted_in_batch = 0;
        let ops = ops.into_iter().chain([Op::Seal]);
        for op in ops {
            if let Some(t) = tx(&s, &op) {
                if let Ok(fx) = s.apply(&t, &ctx) {
                    touches.absorb(&fx);
                    accepted_in_batch += 1;
                }
                continue;
            }
            let blob = touches.seal(&mut s, old_root);
            prop_assert!(blob.is_ok(), "seal: {:?}", blob);
            let blob = blob.unwrap();
            let diff = StateDiff::decode(&blob).unwrap();
            // The grouped encoding (version 4) carries the same diff.
            prop_assert_eq!(StateDiff::decode(&diff.encode_grouped()), Ok(diff.clone()));
            let new_root = s.root();
            // A copy of the state before the batch, brought forward by the diff alone.
            let mut copy = old_tree.clone();
            prop_assert_eq!(copy.root(), old_root);
            prop_assert_eq!(copy.apply(&diff), Ok(new_root));
            prop_assert_eq!(copy.accounts(), s.accounts());
            // A replica that only ever saw genesis and diffs.
            prop_assert_eq!(replica.apply(&diff), Ok(new_root));
            prop_assert_eq!(replica.total_balance(), s.total_balance());
            for (i, a) in s.accounts().iter().enumerate() {
                let book = replica.streams_of(i as u32).cloned().unwrap_or_default();
                prop_assert_eq!(&book, s.streams_of(AccountIndex(i as u32)), "book of {}", i);
                prop_assert_eq!(book.ext(), a.ext, "ext of {}", i);
            }
            if accepted_in_batch == 0 {
                prop_assert!(diff.records().is_empty());
                prop_assert_eq!(new_root, old_root);
            }
            // Only changed accounts are published (SPEC 10.4: a touched account always ends
            // the batch changed under the v1 rules).
            for r in diff.records() {
                let i = r.index.0 as usize;
                let changed = old_accounts.get(i).is_none_or(|a| *a != s.accounts()[i]);
                prop_assert!(changed, "record of unchanged account {}", i);
            }
            old_root = new_root;
            old_accounts = s.accounts().to_vec();
            old_tree = AccountTree::from_state(&s);
            touches = BatchTouches::new(s.num_accounts());
            accepted_in_batch = 0;
        }
    }
}

fn pubkeys() -> &'static [PublicKey] {
    static PKS: OnceLock<Vec<PublicKey>> = OnceLock::new();
    PKS.get_or_init(|| keys().iter().map(|k| k.public_key()).collect())
}

/// Arbitrary well-formed diffs, including at the index and value bounds.
fn any_diff() -> impl Strategy<Value = StateDiff> {
    let count = prop_oneof![
        4 => 0u64..40,
        1 => Just(1u64 << 32),
        1 => Just((1u64 << 32) - 2),
    ];
    let value = prop_oneof![3 => 0u64..1_000, 1 => Just(MAX_U63), 1 => 0..=MAX_U63];
    (
        count,
        prop::collection::vec((any::<u32>(), value.clone(), value.clone()), 0..12),
        prop::collection::vec((0..NUM_KEYS, value.clone(), value), 0..3),
    )
        .prop_map(|(count, existing, new)| {
            let mut seen = BTreeSet::new();
            let mut records: Vec<AccountRecord> = existing
                .into_iter()
                .filter(|(i, _, _)| count > 0 && seen.insert(u64::from(*i) % count))
                .map(|(i, b, n)| AccountRecord {
                    index: AccountIndex((u64::from(i) % count) as u32),
                    balance: Amount::new(b).unwrap(),
                    nonce: Nonce::new(n).unwrap(),
                    pubkey: None,
                })
                .collect();
            records.sort_by_key(|r| r.index);
            let room = (1u64 << 32) - count;
            for (j, (k, b, n)) in new.into_iter().enumerate().take(room as usize) {
                records.push(AccountRecord {
                    index: AccountIndex((count + j as u64) as u32),
                    balance: Amount::new(b).unwrap(),
                    nonce: Nonce::new(n).unwrap(),
                    pubkey: Some(pubkeys()[k].into()),
                });
            }
            StateDiff::new(count, records).unwrap()
        })
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, xor: u8 },
    Truncate(usize),
    Insert { at: usize, byte: u8 },
    Remove(usize),
}

impl Mutation {
    fn apply(self, b: &mut Vec<u8>) {
        let len = b.len().max(1);
        match self {
            Mutation::Flip { at, xor } => {
                if !b.is_empty() {
                    b[at % len] ^= xor;
                }
            }
            Mutation::Truncate(n) => b.truncate(n % len),
            Mutation::Insert { at, byte } => b.insert(at % (b.len() + 1), byte),
            Mutation::Remove(at) => {
                if !b.is_empty() {
                    b.remove(at % len);
                }
            }
        }
    }
}

/// The encoding of `d` in the layout of `version`: every diff has one per layout, so a blob
/// that decodes is exactly this.
fn reencode(d: &StateDiff, version: u8) -> Vec<u8> {
    if version == state::diff::DIFF_VERSION_GROUPED {
        d.encode_grouped()
    } else {
        d.encode()
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        1 => any::<usize>().prop_map(Mutation::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_inverts_encode(d in any_diff()) {
        let bytes = d.encode();
        prop_assert_eq!(bytes.len(), d.encoded_len());
        prop_assert_eq!(StateDiff::decode(&bytes), Ok(d));
    }

    #[test]
    fn a_mutated_blob_is_rejected_or_is_the_encoding_of_what_it_decodes_to(
        d in any_diff(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut b = d.encode();
        for m in muts {
            m.apply(&mut b);
        }
        if let Ok(decoded) = StateDiff::decode(&b) {
            prop_assert_eq!(reencode(&decoded, b[0]), b);
        }
    }

    #[test]
    fn a_mutated_grouped_blob_is_rejected_or_is_the_encoding_of_what_it_decodes_to(
        d in any_diff(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut b = d.encode_grouped();
        prop_assert_eq!(StateDiff::decode(&b), Ok(d));
        for m in muts {
            m.apply(&mut b);
        }
        if let Ok(decoded) = StateDiff::decode(&b) {
            prop_assert_eq!(reencode(&decoded, b[0]), b);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(decoded) = StateDiff::decode(&b) {
            prop_assert_eq!(reencode(&decoded, b[0]), b);
        }
    }
}
