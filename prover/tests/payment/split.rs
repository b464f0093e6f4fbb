//! A split payment in the payment circuit (SPEC 13.3): the leaf debits the sender under its
//! signature over the split's count and parts digest and hands the credits to the split-credit
//! chain (SPEC 19.5) as a record; the chain proves the same record, so the leaf's `splits`
//! accumulator is the chain's. Attacks go around the native checks by tampering the honest
//! slot.

use rollup_prover::circuits::split::{
    SplitChainBuilder, SplitChainCircuit, SplitStatement, LANE_PAYEES,
};
use state::account::OPERATOR;
use state::split::{parts_digest, Payout};
use state::tx::split::UnsignedSplit;

use super::*;

fn part(to: AccountIndex, amount: u64) -> Payout {
    Payout {
        to,
        amount: amt(amount),
    }
}

/// Alice pays the operator 7 and Bob 40 with a fee of 3, after three other transactions: four
/// slots, one leaf, the split in the last slot (so that a forged root after its credits
/// changes no later access).
pub(super) fn batch(k: &Keys) -> (Vec<(Transaction, BlockContext)>, state::tx::split::Split) {
    let split = UnsignedSplit {
        from: ALICE,
        parts: vec![part(OPERATOR, 7), part(BOB, 40)],
        fee: amt(3),
        nonce: Nonce::new(1).unwrap(),
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, &k.alice);
    let txs = vec![
        (transfer(ALICE, BOB, 5, 1, 0, &k.alice), ctx()),
        (withdraw(BOB, 3, 0, 0, &k.bob), ctx()),
        (transfer(BOB, ALICE, 1, 0, 1, &k.bob), ctx()),
        (Transaction::Split(split.clone()), ctx()),
    ];
    (txs, split)
}

fn split_slot(w: &LeafWitness) -> usize {
    w.slots
        .iter()
        .position(|s| s.kind == SlotKind::Split)
        .expect("a split slot")
}

#[test]
fn a_split_is_debited_in_the_leaf_and_its_credits_handed_to_the_chain() {
    let k = keys();
    let (txs, split) = batch(&k);
    // The chain's side, from the state before the split.
    let mut before = setup(&k);
    for (tx, ctx) in &txs[..3] {
        before.apply(tx, ctx).unwrap();
    }
    let mut chain = SplitChainBuilder::new(LANE_PAYEES);
    let record = chain.push_split(&mut before, &split, ts()).unwrap();
    assert_eq!((record.from, record.n, record.sum), (ALICE, 2, 47));

    // The leaf's side.
    let mut state = setup(&k);
    let honest = leaf_witnesses(&mut state, &txs, ts(), K, 0, &depositor)
        .unwrap()
        .remove(0);
    let i = split_slot(&honest);
    assert_eq!(honest.slots[i].split_record(), Some(record));
    assert_eq!(
        honest.statement.splits_out,
        record.absorb(Digest::ZERO),
        "the leaf folds the record"
    );
    assert_eq!(
        honest.statement.new_root,
        state.root(),
        "the split applied natively"
    );
    let alice = state.account(ALICE).unwrap();
    assert_eq!(
        (alice.balance.get(), alice.nonce.get()),
        (1000 - 6 + 1 - 50, 2)
    );
    try_prove(&honest).expect("an honest split proves in the leaf");

    // The chain proves the same record, from the root the debit left to the one the leaf
    // continues from: the two accumulators are equal (what the settlement circuit will check).
    let circuit = SplitChainCircuit::build(1, LANE_PAYEES);
    let chunk = chain.chunks(1, 1).remove(0);
    let proof = circuit.prove(&chunk).unwrap();
    let s = SplitStatement::from_public_inputs(&proof.public_inputs).unwrap();
    circuit.data.verify(proof).unwrap();
    assert_eq!(s.acc_out, honest.statement.splits_out);
    assert_eq!(
        (s.acc_in, s.carry_in, s.carry_out),
        (Digest::ZERO, None, None)
    );

    // The signature covers the count and the parts digest.
    let mut w = honest.clone();
    w.slots[i].parts_digest = parts_digest(&[part(OPERATOR, 7), part(BOB, 41)]);
    assert!(!proves(&w), "parts other than the signed ones");
    let mut w = honest.clone();
    w.slots[i].n = 3;
    assert!(!proves(&w), "a count other than the signed one");
    // The debit: more than Alice holds has no proof.
    let mut w = honest.clone();
    w.slots[i].amount = 10_000;
    assert!(!proves(&w), "a split Alice cannot pay");

    // The leaf does not see the credits: a forger who claims a root after them where Bob got
    // 1,040 instead of 40 (the operator's fee written under that root) gets a leaf proof, but
    // its accumulator names another record than any chain of the real parts can fold, so the
    // settlement's equality of the two refuses the batch.
    let mut forged_tree = setup(&k);
    for (tx, ctx) in &txs {
        forged_tree.apply(tx, ctx).unwrap();
    }
    forged_tree.apply(&deposit(2, BOB, 1000), &ctx()).unwrap();
    let op = AccountFields::from_account(forged_tree.account(OPERATOR).unwrap());
    let before_fee = AccountFields {
        balance: op.balance - 3,
        ..op
    };
    let siblings = forged_tree.proof(OPERATOR).siblings.to_vec();
    let mut w = honest.clone();
    w.slots[i].split_root = root_by_hand(OPERATOR.0, before_fee.leaf(), &siblings);
    w.slots[i].c = LeafAccess {
        index: OPERATOR.0,
        account: Some(before_fee),
        siblings,
    };
    let forged_record = w.slots[i].split_record().unwrap();
    w.statement.new_root = forged_tree.root();
    w.statement.splits_out = forged_record.absorb(Digest::ZERO);
    try_prove(&w).expect("the leaf alone cannot tell");
    assert_ne!(
        w.statement.splits_out, s.acc_out,
        "the chain's fold differs"
    );
}

/// The root of a tree where `leaf` sits at `index` with these `siblings`.
fn root_by_hand(index: u32, leaf: Digest, siblings: &[Digest]) -> Digest {
    siblings.iter().enumerate().fold(leaf, |cur, (l, sib)| {
        if (index >> l) & 1 == 0 {
            state::hash::two_to_one(cur, *sib)
        } else {
            state::hash::two_to_one(*sib, cur)
        }
    })
}
