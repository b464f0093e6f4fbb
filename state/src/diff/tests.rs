use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::account::Timestamp;
use crate::apply::BlockContext;
use crate::apply::Effects;
use crate::crypto::schnorr::SecretKey;
use crate::tx::{Deposit, Domain, Transaction, UnsignedRegister, UnsignedTransfer};

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [7; 20],
};
const NOW: u64 = 1_700_000_000;

fn key(seed: u64) -> SecretKey {
    SecretKey::random(&mut StdRng::seed_from_u64(seed))
}
fn amt(v: u64) -> Amount {
    Amount::new(v).unwrap()
}
fn nonce(v: u64) -> Nonce {
    Nonce::new(v).unwrap()
}
fn ctx() -> BlockContext {
    BlockContext::at(Timestamp::new(NOW).unwrap())
}
fn rec(index: u32, balance: u64, n: u64, pubkey: Option<PublicKey>) -> AccountRecord {
    AccountRecord {
        index: AccountIndex(index),
        balance: amt(balance),
        nonce: nonce(n),
        pubkey: pubkey.map(EncodedKey::from),
    }
}

/// Accounts 0..3 exist; the batch touches 1 and 2 and creates 3.
fn sample() -> StateDiff {
    StateDiff::new(
        3,
        vec![
            rec(1, 500, 2, None),
            rec(2, 0x0102_0304_0506, 0, None),
            rec(3, 7, 1, Some(key(9).public_key())),
        ],
    )
    .unwrap()
}

#[test]
fn layout_is_header_then_fixed_records() {
    let d = sample();
    let b = d.encode();
    assert_eq!(b.len(), HEADER_BYTES + 2 * RECORD_BYTES + NEW_RECORD_BYTES);
    assert_eq!(b.len(), d.encoded_len());
    assert_eq!(b[0], 1, "version");
    assert_eq!(&b[1..9], &3u64.to_le_bytes(), "count before");
    assert_eq!(&b[9..13], &3u32.to_le_bytes(), "records");
    assert_eq!(&b[13..17], &1u32.to_le_bytes());
    assert_eq!(&b[17..25], &500u64.to_le_bytes());
    assert_eq!(&b[25..33], &2u64.to_le_bytes());
    assert_eq!(&b[33..37], &2u32.to_le_bytes());
    let new = &b[HEADER_BYTES + 2 * RECORD_BYTES..];
    assert_eq!(&new[..4], &3u32.to_le_bytes());
    assert_eq!(&new[20..], &key(9).public_key().to_bytes());
    assert_eq!(d.count_after(), 4);
    assert_eq!(StateDiff::decode(&b), Ok(d));
}

#[test]
fn an_empty_diff_is_just_the_header() {
    let d = StateDiff::new(5, vec![]).unwrap();
    assert_eq!(
        d.encode(),
        [&[1u8][..], &5u64.to_le_bytes(), &[0; 4]].concat()
    );
    assert_eq!(StateDiff::decode(&d.encode()), Ok(d));
}

#[test]
fn decode_rejects_every_malformed_input() {
    let good = sample().encode();
    let with = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        StateDiff::decode(&b)
    };
    use DiffError::*;
    assert_eq!(StateDiff::decode(&[]), Err(Truncated));
    assert_eq!(
        StateDiff::decode(&good[..12]),
        Err(Truncated),
        "short header"
    );
    for cut in [13, 20, 33, 34, good.len() - 1] {
        assert_eq!(
            StateDiff::decode(&good[..cut]),
            Err(Truncated),
            "cut at {cut}"
        );
    }
    let mut long = good.clone();
    long.push(0);
    assert_eq!(StateDiff::decode(&long), Err(TrailingBytes(1)));
    assert_eq!(
        with(9, &2u32.to_le_bytes()),
        Err(TrailingBytes(NEW_RECORD_BYTES))
    );
    assert_eq!(
        with(9, &4u32.to_le_bytes()),
        Err(Truncated),
        "a record missing"
    );
    assert_eq!(
        with(0, &[2]),
        Err(Truncated),
        "version 2 needs its stream section"
    );
    assert_eq!(
        with(0, &[3]),
        Err(Truncated),
        "version 3 needs its stream and agent sections"
    );
    assert!(
        with(0, &[4]).is_err(),
        "version 1 records read as version 4 groups: the parts bytes misread them"
    );
    assert_eq!(with(0, &[5]), Err(UnsupportedVersion(5)));
    assert_eq!(with(0, &[0]), Err(UnsupportedVersion(0)));
    assert_eq!(
        with(1, &(MAX_ACCOUNTS + 1).to_le_bytes()),
        Err(CountOutOfRange(MAX_ACCOUNTS + 1))
    );
    // Second record's index: equal to, then below, the first.
    assert_eq!(with(33, &1u32.to_le_bytes()), Err(DuplicateIndex(1)));
    assert_eq!(
        with(33, &0u32.to_le_bytes()),
        Err(Unsorted {
            previous: 1,
            index: 0
        })
    );
    // The new account must be 3, the first index after the count before.
    let new_at = HEADER_BYTES + 2 * RECORD_BYTES;
    assert_eq!(
        with(new_at, &4u32.to_le_bytes()),
        Err(NewAccountGap {
            expected: 3,
            index: 4
        })
    );
    assert_eq!(
        with(17, &(1u64 << 63).to_le_bytes()),
        Err(OutOfRange {
            index: 1,
            value: 1 << 63
        }),
        "balance"
    );
    assert_eq!(
        with(25, &u64::MAX.to_le_bytes()),
        Err(OutOfRange {
            index: 1,
            value: u64::MAX
        }),
        "nonce"
    );
    assert_eq!(
        with(new_at + RECORD_BYTES, &[0xff; 40]),
        Err(PublicKey {
            index: 3,
            source: KeyError::NonCanonical
        })
    );
    // A count that makes the third record an existing account: it is read as 20 bytes and
    // the key's bytes are left over.
    assert_eq!(
        with(1, &4u64.to_le_bytes()),
        Err(TrailingBytes(NEW_RECORD_BYTES - RECORD_BYTES))
    );
    // A count that makes account 2 new: its record is read as 60 bytes, misaligning the
    // rest (here the next "index" is read from key bytes and is out of sequence).
    assert_eq!(
        with(1, &2u64.to_le_bytes()),
        Err(NewAccountGap {
            expected: 3,
            index: 1_941_425_040
        })
    );
}

#[test]
fn error_codes_are_the_spec_names() {
    let good = sample().encode();
    let code = |b: &[u8]| StateDiff::decode(b).unwrap_err().code();
    assert_eq!(code(&good[..5]), "TRUNCATED");
    assert_eq!(code(&[&good[..], &[0]].concat()), "TRAILING_BYTES");
    assert_eq!(
        code(&[&[9u8][..], &good[1..]].concat()),
        "UNSUPPORTED_VERSION"
    );
    let mut bad_key = good.clone();
    let at = HEADER_BYTES + 2 * RECORD_BYTES + RECORD_BYTES;
    bad_key[at..].fill(0xff);
    assert_eq!(code(&bad_key), "PUBLIC_KEY_NON_CANONICAL");
}

#[test]
fn new_checks_what_decode_checks() {
    let k = key(1).public_key();
    use DiffError::*;
    assert_eq!(
        StateDiff::new(2, vec![rec(2, 0, 0, None)]),
        Err(MissingKey(2))
    );
    assert_eq!(
        StateDiff::new(2, vec![rec(1, 0, 0, Some(k))]),
        Err(UnexpectedKey(1))
    );
    assert_eq!(
        StateDiff::new(2, vec![rec(1, 0, 0, None), rec(1, 0, 0, None)]),
        Err(DuplicateIndex(1))
    );
    assert_eq!(
        StateDiff::new(2, vec![rec(3, 0, 0, Some(k))]),
        Err(NewAccountGap {
            expected: 2,
            index: 3
        })
    );
    assert_eq!(
        StateDiff::new(MAX_ACCOUNTS + 1, vec![]),
        Err(CountOutOfRange(MAX_ACCOUNTS + 1))
    );
    // The full state: no new account is possible, every u32 index is an existing one.
    let full = StateDiff::new(MAX_ACCOUNTS, vec![rec(u32::MAX, 1, 1, None)]).unwrap();
    assert_eq!(StateDiff::decode(&full.encode()), Ok(full));
}

#[test]
fn genesis_tree_has_the_genesis_state_root() {
    let op = key(1).public_key();
    let mut s = State::genesis(DOMAIN, op);
    assert_eq!(AccountTree::genesis(op).root(), s.root());
}

/// Operator, Alice and Bob with deposits, as a batch boundary.
fn world() -> (State, Vec<SecretKey>) {
    let keys: Vec<SecretKey> = (0..4).map(key).collect();
    let mut s = State::genesis(DOMAIN, keys[0].public_key());
    for k in &keys[1..3] {
        let r: Transaction = UnsignedRegister {
            pubkey: k.public_key(),
            valid_until: Timestamp::new(NOW + 60).unwrap(),
        }
        .sign(&DOMAIN, k)
        .into();
        s.apply(&r, &ctx()).unwrap();
    }
    for to in [1, 2] {
        let d = Transaction::Deposit(Deposit {
            seq: s.next_deposit_seq(),
            to: AccountIndex(to),
            amount: amt(1_000),
        });
        s.apply(&d, &ctx()).unwrap();
    }
    (s, keys)
}

fn pay(s: &mut State, keys: &[SecretKey], from: u32, to: u32, amount: u64, fee: u64) -> Effects {
    let n = s.account(AccountIndex(from)).unwrap().nonce;
    let t: Transaction = UnsignedTransfer {
        from: AccountIndex(from),
        to: AccountIndex(to),
        amount: amt(amount),
        fee: amt(fee),
        nonce: n,
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &keys[from as usize])
    .into();
    s.apply(&t, &ctx()).unwrap()
}

/// One batch: Alice pays Bob twice, Carol registers and is paid by Bob.
fn batch(s: &mut State, keys: &[SecretKey]) -> (BatchTouches, Vec<Effects>) {
    let mut touches = BatchTouches::new(s.num_accounts());
    let mut fxs = vec![pay(s, keys, 1, 2, 100, 1), pay(s, keys, 1, 2, 50, 0)];
    let r: Transaction = UnsignedRegister {
        pubkey: keys[3].public_key(),
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &keys[3])
    .into();
    fxs.push(s.apply(&r, &ctx()).unwrap());
    fxs.push(pay(s, keys, 2, 3, 25, 2));
    for fx in &fxs {
        touches.absorb(fx);
    }
    (touches, fxs)
}

#[test]
fn a_sealed_batch_diff_rebuilds_the_new_root_from_the_old_accounts() {
    let (mut s, keys) = world();
    let old_root = s.root();
    let mut replica = AccountTree::from_accounts(s.accounts());
    assert_eq!(replica.root(), old_root);
    let (touches, _) = batch(&mut s, &keys);
    assert_eq!(
        touches.indices().map(|i| i.0).collect::<Vec<_>>(),
        vec![0, 1, 2, 3],
        "operator (fees), Alice, Bob, Carol"
    );
    let blob = touches.seal(&mut s, old_root).unwrap();
    let diff = StateDiff::decode(&blob).unwrap();
    assert_eq!(diff.count_before(), 3);
    assert_eq!(diff.records()[3].pubkey, Some(keys[3].public_key().into()));
    assert_eq!(replica.apply(&diff), Ok(s.root()));
    assert_eq!(replica.accounts(), s.accounts());
    assert_eq!(replica.total_balance(), s.total_balance());
    // The same diff again no longer fits: the replica has 4 accounts now.
    assert_eq!(
        replica.apply(&diff),
        Err(DiffError::CountMismatch { diff: 3, state: 4 })
    );
}

#[test]
fn seal_refuses_a_diff_that_does_not_lead_from_the_previous_root() {
    let (mut s, keys) = world();
    let old_root = s.root();
    let (touches, fxs) = batch(&mut s, &keys);
    let blob = touches.seal(&mut s, old_root).unwrap();

    // A wrong previous root.
    let other = AccountTree::genesis(keys[0].public_key()).root();
    assert!(matches!(
        touches.seal(&mut s, other),
        Err(DiffError::OldRootMismatch { .. })
    ));
    // Touches that missed a transaction (as if a new kind reported no effects): Bob's last
    // payment is not folded in, so Bob's pre-batch nonce is taken as his current one.
    let mut partial = BatchTouches::new(3);
    for fx in &fxs[..3] {
        partial.absorb(fx);
    }
    assert!(matches!(
        partial.seal(&mut s, old_root),
        Err(DiffError::OldRootMismatch { .. })
    ));
    // A tampered record (Bob's balance) is not what the state holds.
    let mut bad = blob.clone();
    let bob_balance = HEADER_BYTES + 2 * RECORD_BYTES + 4;
    bad[bob_balance] ^= 1;
    assert_eq!(
        touches.verify(&bad, &mut s, old_root),
        Err(DiffError::RecordMismatch(2))
    );
    // A record left out (Alice's, with the count of records lowered).
    let diff = StateDiff::decode(&blob).unwrap();
    let mut fewer = diff.records().to_vec();
    fewer.remove(1);
    let fewer = StateDiff::new(3, fewer).unwrap().encode();
    assert!(matches!(
        touches.verify(&fewer, &mut s, old_root),
        Err(DiffError::OldRootMismatch { .. })
    ));
    // A count before that is not the batch's.
    let shifted = StateDiff::new(
        2,
        diff.records()
            .iter()
            .map(|r| AccountRecord {
                pubkey: (r.index.0 >= 2).then(|| s.account(r.index).unwrap().pubkey),
                ..*r
            })
            .collect(),
    )
    .unwrap()
    .encode();
    assert_eq!(
        touches.verify(&shifted, &mut s, old_root),
        Err(DiffError::CountMismatch { diff: 2, state: 3 })
    );
}

#[test]
fn from_accounts_includes_new_accounts_and_refuses_ext() {
    let (mut s, keys) = world();
    let n = s.num_accounts();
    let r: Transaction = UnsignedRegister {
        pubkey: keys[3].public_key(),
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &keys[3])
    .into();
    s.apply(&r, &ctx()).unwrap();
    // Not listed as touched, still in the diff.
    let d =
        StateDiff::from_state(&s, [], [], [], &Default::default(), &Default::default(), n).unwrap();
    assert_eq!(d.records().len(), 1);
    assert_eq!(d.records()[0].index, AccountIndex(3));
    let mut accounts = s.accounts().to_vec();
    accounts[1].ext = AccountTree::genesis(keys[0].public_key()).root();
    assert_eq!(
        StateDiff::from_accounts(&accounts, [AccountIndex(1)], n),
        Err(DiffError::NonZeroExt(1))
    );
    assert_eq!(
        StateDiff::from_accounts(&accounts, [AccountIndex(9)], n),
        Err(DiffError::UnknownAccount(9))
    );
    assert_eq!(
        StateDiff::from_accounts(&accounts, [], n + 5),
        Err(DiffError::CountMismatch {
            diff: n + 5,
            state: n + 1
        })
    );
}

#[test]
fn a_replayed_key_is_its_own_account_and_its_signatures_stay_its_own() {
    // The written argument of SPEC 13.6, checked: a registration replayed at another index
    // (which the circuit cannot refuse) gives a second account with the same key, balance 0,
    // nonce 0. The rebuild from L1 applies it (data availability does not depend on key
    // uniqueness), and a transfer the key signed for one account is not a valid signature
    // for the other: the sender index is in the signed message (SPEC 8.3).
    let (s, keys) = world();
    let mut replica = AccountTree::from_accounts(s.accounts());
    let reuse = StateDiff::new(
        3,
        vec![rec(1, 1, 1, None), rec(3, 0, 0, Some(keys[1].public_key()))],
    )
    .unwrap();
    let root = replica.apply(&reuse).unwrap();
    let mut expected = s.accounts().to_vec();
    expected[1].balance = amt(1);
    expected[1].nonce = nonce(1);
    expected.push(Account::new(keys[1].public_key()));
    assert_eq!(root, AccountTree::from_accounts(&expected).root());
    assert_eq!(replica.accounts(), &expected[..]);
    // Twice in one diff, too.
    let twice = StateDiff::new(
        4,
        vec![
            rec(4, 0, 0, Some(keys[3].public_key())),
            rec(5, 0, 0, Some(keys[3].public_key())),
        ],
    )
    .unwrap();
    replica.apply(&twice).unwrap();
    assert_eq!(replica.num_accounts(), 6);

    let pay = |from: u32| UnsignedTransfer {
        from: AccountIndex(from),
        to: AccountIndex(2),
        amount: amt(5),
        fee: amt(0),
        nonce: nonce(0),
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    };
    let signed_for_1 = pay(1).sign(&DOMAIN, &keys[1]);
    let pk = keys[1].public_key();
    assert!(pk
        .verify(&pay(1).message_hash(&DOMAIN), &signed_for_1.signature)
        .is_ok());
    assert!(pk
        .verify(&pay(3).message_hash(&DOMAIN), &signed_for_1.signature)
        .is_err());
}

mod agents;
mod grouped;
mod shares;
mod streams;
