//! The settlement proof (SPEC 13.11) over real proofs of one batch: two payment leaves and
//! their merge, the diff, priority and payout proofs, and the split-credit chain (an idle
//! chunk for the batch without splits; one that credits the split of
//! `a_batch_with_a_split_settles_with_the_chain_of_its_credits`). Its public input is the hash of exactly
//! the statement the contract computes natively (`state::settlement::BatchStatement`), and a
//! proof made for other data does not verify against that statement.
//!
//! Each attack below brings an inner proof that verifies on its own but states other data
//! (another diff, other L1 entries, other payouts, another domain), proves with
//! `prove_unchecked` (no native pre-check), and requires the circuit to refuse; the native
//! [`tie`] check names the rule each attack breaks.

use std::sync::OnceLock;

use plonky2::plonk::proof::ProofWithPublicInputs;
use rollup_prover::circuits::diff::{diff_witness, DiffCircuit};
use rollup_prover::circuits::payout::{payout_witness, PayoutCircuit};
use rollup_prover::circuits::priority::{priority_witness, PriorityCircuit};
use rollup_prover::circuits::settlement::{
    public_inputs, tie, SettlementCircuit, SettlementInner, SettlementProofs, TieError,
};
use rollup_prover::circuits::split::{SplitChainBuilder, SplitChainCircuit, LANE_PAYEES};
use rollup_prover::{C, D};
use rollup_storage::DiffCircuitKind;
use state::account::Account;
use state::diff::{BatchTouches, StateDiff};
use state::settlement::{
    priority_chain, settle_ops, BatchStatement, Consumed, Hash32, OpsSettlement, Payout,
    PriorityEntry,
};

use super::*;

const BATCH: u64 = 7;
const DIFF_CAP: (usize, usize) = (4, 2);
const PRIORITY_CAP: usize = 6;
const PAYOUT_DEPTH: usize = 2;

type Proof = ProofWithPublicInputs<F, C, D>;

struct Fixture {
    diff: DiffCircuit,
    priority: PriorityCircuit,
    payout: PayoutCircuit,
    split_chain: SplitChainCircuit,
    /// Verifies a split-credit chain of one chunk of `split_chain`.
    settlement: SettlementCircuit,
    /// The batch's data, as the node and the contract see it.
    before: Vec<Account>,
    state_diff: StateDiff,
    queue_before: Hash32,
    settled: OpsSettlement,
    /// The honest inner proofs.
    range: Proof,
    diff_proof: Proof,
    priority_proof: Proof,
    payout_proof: Proof,
    /// The batch has no split: one idle chunk.
    splits_proof: Proof,
    /// What the contract computes for this batch.
    statement: BatchStatement,
}

impl Fixture {
    fn proofs(&self) -> SettlementProofs<'_> {
        SettlementProofs {
            range: &self.range,
            diff: &self.diff_proof,
            priority: &self.priority_proof,
            payout: &self.payout_proof,
            splits: Some(&self.splits_proof),
            walks: None,
        }
    }
}

/// The L1 entries of the two deposits `setup` applied (serials 0 and 1).
fn setup_entries() -> Vec<PriorityEntry> {
    [(0, ALICE, 1000), (1, BOB, 50)]
        .into_iter()
        .map(|(serial, to, amount)| PriorityEntry::Deposit {
            serial,
            depositor: depositor(serial).unwrap(),
            recipient: to.0,
            amount,
        })
        .collect()
}

/// Register, credited and refunded deposits, a transfer, a withdraw, an applied and a
/// rejected forced withdrawal, and a last deposit: two leaves of four.
fn batch_txs(k: &Keys) -> Vec<Transaction> {
    vec![
        register(&k.carol),                                   // 3, a new account
        deposit(2, AccountIndex(3), 70),                      // credited
        deposit(3, AccountIndex(99), 5),                      // refunded: no account
        transfer(ALICE, BOB, 100, 2, 0, &k.alice),            // fee to the operator
        withdraw(BOB, 30, 1, 0, &k.bob),                      // paid out on L1
        forced(4, NOW, withdraw(ALICE, 300, 2, 1, &k.alice)), // applied: paid out
        forced(5, NOW, withdraw(ALICE, 1, 0, 2, &k.bob)),     // rejected: forged
        deposit(6, BOB, 5),                                   // credited
    ]
}

fn fixture() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| {
        let k = keys();
        let txs = batch_txs(&k);
        // The node's view: apply natively, collect the ops and the accounts touched.
        let mut native = setup(&k);
        let before = native.accounts().to_vec();
        let count_before = before.len() as u64;
        let mut touches = BatchTouches::new(count_before);
        let mut ops = Vec::new();
        for tx in &txs {
            let fx = native.apply(tx, &ctx()).unwrap();
            touches.absorb(&fx);
            ops.push(fx.pubdata);
        }
        assert_eq!(touches.count_before(), count_before);
        let state_diff = touches.diff(&native).unwrap();
        let settled = settle_ops(&ops, 2, depositor).unwrap();
        assert_eq!(settled.consumed.len(), 5);
        assert_eq!(settled.payouts.len(), 3, "two withdrawals and a refund");
        let queue_before = priority_chain([0; 32], &setup_entries());

        // The range proof: two leaves and their merge.
        let reg = registry();
        let mut state = setup(&k);
        let with_ctx: Vec<_> = txs.iter().map(|t| (t.clone(), ctx())).collect();
        let leaves = leaf_witnesses(&mut state, &with_ctx, ts(), K, 1, &depositor).unwrap();
        assert_eq!(leaves.len(), 2);
        let l = reg.leaf().prove(&leaves[0]).unwrap();
        let r = reg.leaf().prove(&leaves[1]).unwrap();
        let merge = reg.merge(1).unwrap();
        let range = merge.prove(&l, &r).unwrap();

        let t = Instant::now();
        let diff = DiffCircuit::build(DIFF_CAP.0, DIFF_CAP.1);
        let priority = PriorityCircuit::build(PRIORITY_CAP);
        let payout = PayoutCircuit::build(PAYOUT_DEPTH);
        println!("diff, priority, payout circuits built in {:?}", t.elapsed());
        let (dw, ds) = diff_witness(&before, &state_diff, DIFF_CAP.0, DIFF_CAP.1).unwrap();
        let diff_proof = diff.prove(&dw, &ds).unwrap();
        let (pw, ps) = priority_witness(queue_before, 2, &settled.consumed, PRIORITY_CAP).unwrap();
        let priority_proof = priority.prove(&pw, &ps).unwrap();
        let (qw, qs) = payout_witness(BATCH, &settled.payouts, PAYOUT_DEPTH).unwrap();
        let payout_proof = payout.prove(&qw, &qs).unwrap();
        let split_chain = SplitChainCircuit::build(1, LANE_PAYEES);
        let idle = SplitChainBuilder::new(LANE_PAYEES).chunks(1, 1).remove(0);
        let splits_proof = split_chain.prove(&idle).unwrap();

        let t = Instant::now();
        let settlement = SettlementCircuit::build(
            1,
            DiffCircuitKind::V1,
            SettlementInner {
                range: &merge.data,
                diff: &diff.data,
                priority: &priority.data,
                payout: &payout.data,
                splits: Some(&split_chain.data),
                walks: None,
            },
        );
        println!(
            "settlement circuit: 2^{} rows, built in {:?}",
            settlement.data.common.degree_bits(),
            t.elapsed()
        );

        let statement = contract_statement(
            &mut setup(&k),
            &mut native,
            &state_diff,
            &settled,
            queue_before,
        );
        assert_eq!(statement.next_priority_op, 7);
        Fixture {
            diff,
            priority,
            payout,
            split_chain,
            settlement,
            before,
            state_diff,
            queue_before,
            settled,
            range,
            diff_proof,
            priority_proof,
            payout_proof,
            splits_proof,
            statement,
        }
    })
}

/// What the contract computes for a batch of this file (SPEC 15.3) from what it stores and
/// receives, without any proof: the states before and after it, its diff, its settled ops (the
/// batch consumes the priority queue from serial 2) and the queue hash before it.
fn contract_statement(
    before: &mut State,
    after: &mut State,
    state_diff: &StateDiff,
    settled: &OpsSettlement,
    queue_before: Hash32,
) -> BatchStatement {
    BatchStatement {
        chain_id: DOMAIN.chain_id,
        rollup: L1Address(DOMAIN.rollup),
        batch_number: BATCH,
        old_root: before.root().to_bytes(),
        new_root: after.root().to_bytes(),
        diff_hash: state::settlement::diff_hash(&state_diff.encode()),
        payout_root: state::settlement::PayoutTree::new(BATCH, &settled.payouts).root(),
        first_priority_op: 2,
        next_priority_op: 2 + settled.consumed.len() as u64,
        priority_hash_before: queue_before,
        priority_hash_after: priority_chain(queue_before, &settled.entries()),
        timestamp: NOW,
    }
}

/// Proves with the circuit alone deciding; `Ok` if a proof came out and verifies.
fn settles(proofs: &SettlementProofs<'_>, domain: &Domain) -> bool {
    let c = &fixture().settlement;
    match c.prove_unchecked(proofs, domain) {
        Ok(p) => c.data.verify(p).is_ok(),
        Err(_) => false,
    }
}

#[test]
fn settlement_proof_states_exactly_the_contracts_statement() {
    let fx = fixture();
    assert_eq!(
        tie(&fx.proofs(), &DOMAIN, DiffCircuitKind::V1),
        Ok(fx.statement)
    );
    let t = Instant::now();
    let (proof, statement) = fx.settlement.prove(&fx.proofs(), &DOMAIN).unwrap();
    println!("settlement proof in {:?}", t.elapsed());
    assert_eq!(statement, fx.statement);
    assert_eq!(proof.public_inputs, public_inputs(&fx.statement));
    fx.settlement.verify(&proof, &fx.statement).unwrap();

    // Every field of the statement is bound: the same proof does not verify against a
    // statement that differs in any one field, whether the public inputs are checked natively
    // or handed to the plonky2 verifier as they are.
    let s = fx.statement;
    let other: Vec<(&str, BatchStatement)> = vec![
        (
            "chain_id",
            BatchStatement {
                chain_id: s.chain_id + 1,
                ..s
            },
        ),
        (
            "rollup",
            BatchStatement {
                rollup: L1Address([0x43; 20]),
                ..s
            },
        ),
        (
            "batch_number",
            BatchStatement {
                batch_number: s.batch_number + 1,
                ..s
            },
        ),
        (
            "old_root",
            BatchStatement {
                old_root: s.new_root,
                ..s
            },
        ),
        (
            "new_root",
            BatchStatement {
                new_root: s.old_root,
                ..s
            },
        ),
        (
            "diff_hash",
            BatchStatement {
                diff_hash: [1; 32],
                ..s
            },
        ),
        (
            "payout_root",
            BatchStatement {
                payout_root: [2; 32],
                ..s
            },
        ),
        (
            "first_priority_op",
            BatchStatement {
                first_priority_op: 3,
                ..s
            },
        ),
        (
            "next_priority_op",
            BatchStatement {
                next_priority_op: 6,
                ..s
            },
        ),
        (
            "priority_hash_before",
            BatchStatement {
                priority_hash_before: [3; 32],
                ..s
            },
        ),
        (
            "priority_hash_after",
            BatchStatement {
                priority_hash_after: s.priority_hash_before,
                ..s
            },
        ),
        (
            "timestamp",
            BatchStatement {
                timestamp: NOW + 1,
                ..s
            },
        ),
    ];
    for (field, wrong) in other {
        assert!(
            fx.settlement.verify(&proof, &wrong).is_err(),
            "{field}: verified against another statement"
        );
        let mut forged = proof.clone();
        forged.public_inputs = public_inputs(&wrong);
        assert!(
            fx.settlement.data.verify(forged).is_err(),
            "{field}: the proof verifies with the other statement's public inputs"
        );
    }
}

#[test]
fn a_diff_proof_of_other_data_is_refused() {
    let fx = fixture();
    // A valid diff proof of a diff that credits Bob 1 more than the batch did.
    let records: Vec<_> = fx
        .state_diff
        .records()
        .iter()
        .map(|r| {
            let mut r = *r;
            if r.index == BOB {
                r.balance = Amount::new(r.balance.get() + 1).unwrap();
            }
            r
        })
        .collect();
    let inflated = StateDiff::new(fx.state_diff.count_before(), records).unwrap();
    let (w, s) = diff_witness(&fx.before, &inflated, DIFF_CAP.0, DIFF_CAP.1).unwrap();
    let other = fx.diff.prove(&w, &s).unwrap();
    let proofs = SettlementProofs {
        diff: &other,
        ..fx.proofs()
    };
    assert_eq!(
        tie(&proofs, &DOMAIN, DiffCircuitKind::V1),
        Err(TieError::DiffRoot("new root"))
    );
    assert!(!settles(&proofs, &DOMAIN), "an inflated diff settled");
}

/// A valid priority proof over `consumed` from the same queue hash.
fn priority_proof_of(consumed: &[Consumed]) -> Proof {
    let fx = fixture();
    let (w, s) = priority_witness(fx.queue_before, 2, consumed, PRIORITY_CAP).unwrap();
    fx.priority.prove(&w, &s).unwrap()
}

#[test]
fn priority_proofs_of_other_l1_entries_are_refused() {
    let fx = fixture();
    // The L1 queued 60 where the leaves credited 70 (a deposit that is not on L1 as credited).
    let mut changed_amount = fx.settled.consumed.clone();
    if let PriorityEntry::Deposit { amount, .. } = &mut changed_amount[0].entry {
        *amount = 60;
    }
    // Another recipient.
    let mut changed_recipient = fx.settled.consumed.clone();
    if let PriorityEntry::Deposit { recipient, .. } = &mut changed_recipient[0].entry {
        *recipient = 1;
    }
    // The forced withdrawal judged on a request made after its valid_until: the L1 queued
    // NOW + 1, the leaves applied it as requested at NOW.
    let mut changed_request = fx.settled.consumed.clone();
    if let PriorityEntry::ForcedWithdrawal { requested_at, .. } = &mut changed_request[2].entry {
        *requested_at = NOW + 1;
    }
    // The rejected forced withdrawal published as applied.
    let mut changed_status = fx.settled.consumed.clone();
    changed_status[3].status = 0;
    for (name, consumed) in [
        ("amount", changed_amount),
        ("recipient", changed_recipient),
        ("requested_at", changed_request),
        ("forced status", changed_status),
    ] {
        let other = priority_proof_of(&consumed);
        let proofs = SettlementProofs {
            priority: &other,
            ..fx.proofs()
        };
        assert_eq!(
            tie(&proofs, &DOMAIN, DiffCircuitKind::V1),
            Err(TieError::Entries),
            "{name}"
        );
        assert!(!settles(&proofs, &DOMAIN), "{name}: settled");
    }
    // The L1 entries with a refund dropped (the deposit published as credited): the entries
    // no longer match either, and neither do the refunds.
    let mut no_refund = fx.settled.consumed.clone();
    no_refund[1].status = 0;
    let other = priority_proof_of(&no_refund);
    let proofs = SettlementProofs {
        priority: &other,
        ..fx.proofs()
    };
    assert_eq!(
        tie(&proofs, &DOMAIN, DiffCircuitKind::V1),
        Err(TieError::Entries)
    );
    assert!(!settles(&proofs, &DOMAIN), "a dropped refund settled");
}

#[test]
fn payout_proofs_of_other_payouts_are_refused() {
    let fx = fixture();
    let prove = |payouts: &[Payout]| {
        let (w, s) = payout_witness(BATCH, payouts, PAYOUT_DEPTH).unwrap();
        fx.payout.prove(&w, &s).unwrap()
    };
    // A withdrawal redirected to another L1 address.
    let mut redirected = fx.settled.payouts.clone();
    redirected[0].to = L1Address([0xee; 20]);
    let other = prove(&redirected);
    let proofs = SettlementProofs {
        payout: &other,
        ..fx.proofs()
    };
    assert_eq!(
        tie(&proofs, &DOMAIN, DiffCircuitKind::V1),
        Err(TieError::Withdrawals)
    );
    assert!(
        !settles(&proofs, &DOMAIN),
        "a redirected withdrawal settled"
    );

    // A refund of more than the deposit.
    let mut inflated = fx.settled.payouts.clone();
    inflated[2].amount += 1;
    let other = prove(&inflated);
    let proofs = SettlementProofs {
        payout: &other,
        ..fx.proofs()
    };
    assert_eq!(
        tie(&proofs, &DOMAIN, DiffCircuitKind::V1),
        Err(TieError::Refunds)
    );
    assert!(!settles(&proofs, &DOMAIN), "an inflated refund settled");
}

#[test]
fn another_domain_is_refused() {
    let fx = fixture();
    let other = Domain {
        chain_id: DOMAIN.chain_id + 1,
        ..DOMAIN
    };
    assert_eq!(
        tie(&fx.proofs(), &other, DiffCircuitKind::V1),
        Err(TieError::Domain)
    );
    assert!(!settles(&fx.proofs(), &other), "settled for another chain");
}

#[test]
fn another_batchs_range_proof_is_refused() {
    let fx = fixture();
    // Another batch's root proof: the same transactions proven from another old state (one
    // more deposit to Bob before them, so every serial is one later). The diff does not start
    // from its old root.
    let k = keys();
    let mut state = setup(&k);
    state.apply(&deposit(2, BOB, 1), &ctx()).unwrap();
    let txs: Vec<Transaction> = batch_txs(&k)
        .into_iter()
        .map(|tx| match tx {
            Transaction::Deposit(d) => deposit(d.seq + 1, d.to, d.amount.get()),
            Transaction::ForcedWithdraw(f) => Transaction::ForcedWithdraw(ForcedWithdraw {
                seq: f.seq + 1,
                ..f
            }),
            other => other,
        })
        .collect();
    let with_ctx: Vec<_> = txs.iter().map(|t| (t.clone(), ctx())).collect();
    let leaves = leaf_witnesses(&mut state, &with_ctx, ts(), K, 1, &depositor).unwrap();
    let reg = registry();
    let l = reg.leaf().prove(&leaves[0]).unwrap();
    let r = reg.leaf().prove(&leaves[1]).unwrap();
    let range = reg.merge(1).unwrap().prove(&l, &r).unwrap();
    let proofs = SettlementProofs {
        range: &range,
        ..fx.proofs()
    };
    assert_eq!(
        tie(&proofs, &DOMAIN, DiffCircuitKind::V1),
        Err(TieError::DiffRoot("old root"))
    );
    assert!(!settles(&proofs, &DOMAIN), "another batch's range settled");
}

/// A range statement whose side accumulators end other than the side proofs say: `tie` names
/// it (the statement is tampered, so no proof backs it; the circuit's own refusals are in
/// `a_batch_with_a_split_settles_with_the_chain_of_its_credits`).
#[test]
fn a_range_that_hands_records_to_a_side_proof_is_refused() {
    let fx = fixture();
    for (offset, expected) in [
        (43, TieError::Splits("folds other records than the leaves")),
        (51, TieError::SideRecords("walk records")),
    ] {
        let mut range = fx.range.clone();
        range.public_inputs[offset] += F::ONE;
        let proofs = SettlementProofs {
            range: &range,
            ..fx.proofs()
        };
        assert_eq!(tie(&proofs, &DOMAIN, DiffCircuitKind::V1), Err(expected));
        let proofs = SettlementProofs {
            splits: None,
            walks: None,
            ..proofs
        };
        if offset == 43 {
            assert_eq!(
                tie(&proofs, &DOMAIN, DiffCircuitKind::V1),
                Err(TieError::SideRecords("split records"))
            );
        }
    }
}

/// A batch with a split settles (SPEC 13.11, 19.5): the leaves debit Alice and fold the
/// split's record, the split-credit chain credits the payees and folds the same record, and
/// the settlement proof states exactly the contract's statement. A chain of other credits (Bob
/// paid one more) verifies on its own and is refused, natively by `tie` and by the circuit
/// alone; so is the batch without its chain proof.
#[test]
fn a_batch_with_a_split_settles_with_the_chain_of_its_credits() {
    let fx = fixture();
    let k = keys();
    let (txs, split) = super::split::batch(&k);
    // The node's view, and the chain built from the state before the split.
    let mut native = setup(&k);
    let before = native.accounts().to_vec();
    let mut touches = BatchTouches::new(before.len() as u64);
    let mut ops = Vec::new();
    let mut chain = SplitChainBuilder::new(LANE_PAYEES);
    for (tx, ctx) in &txs {
        if let Transaction::Split(s) = tx {
            chain.push_split(&mut native, s, ts()).unwrap();
        }
        let fx = native.apply(tx, ctx).unwrap();
        touches.absorb(&fx);
        ops.push(fx.pubdata);
    }
    let state_diff = touches.diff(&native).unwrap();
    let settled = settle_ops(&ops, 2, depositor).unwrap();
    assert!(settled.consumed.is_empty());
    assert_eq!(settled.payouts.len(), 1, "Bob's withdrawal");

    // Its proofs: two leaves (the fixture's settlement verifies a merge of level 1), the
    // diff, priority and payout proofs, and the chain of one chunk.
    let reg = registry();
    let mut state = setup(&k);
    let leaves = leaf_witnesses(&mut state, &txs, ts(), K, 2, &depositor).unwrap();
    assert_eq!(leaves.len(), 2);
    let l = reg.leaf().prove(&leaves[0]).unwrap();
    let r = reg.leaf().prove(&leaves[1]).unwrap();
    let range = reg.merge(1).unwrap().prove(&l, &r).unwrap();
    let (dw, ds) = diff_witness(&before, &state_diff, DIFF_CAP.0, DIFF_CAP.1).unwrap();
    let diff_proof = fx.diff.prove(&dw, &ds).unwrap();
    let (pw, ps) = priority_witness(fx.queue_before, 2, &settled.consumed, PRIORITY_CAP).unwrap();
    let priority_proof = fx.priority.prove(&pw, &ps).unwrap();
    let (qw, qs) = payout_witness(BATCH, &settled.payouts, PAYOUT_DEPTH).unwrap();
    let payout_proof = fx.payout.prove(&qw, &qs).unwrap();
    let splits_proof = fx.split_chain.prove(&chain.chunks(1, 1).remove(0)).unwrap();
    let proofs = SettlementProofs {
        range: &range,
        diff: &diff_proof,
        priority: &priority_proof,
        payout: &payout_proof,
        splits: Some(&splits_proof),
        walks: None,
    };
    let statement = contract_statement(
        &mut setup(&k),
        &mut native,
        &state_diff,
        &settled,
        fx.queue_before,
    );
    assert_eq!(statement.next_priority_op, 2, "no priority op");
    assert_eq!(tie(&proofs, &DOMAIN, DiffCircuitKind::V1), Ok(statement));
    let (proof, got) = fx.settlement.prove(&proofs, &DOMAIN).unwrap();
    assert_eq!(got, statement);
    fx.settlement.verify(&proof, &statement).unwrap();

    // The chain of another split's credits: Bob paid 41 instead of the signed 40.
    let mut other = split.clone();
    other.parts[1].amount = amt(41);
    let mut before_split = setup(&k);
    for (tx, ctx) in &txs[..3] {
        before_split.apply(tx, ctx).unwrap();
    }
    let mut other_chain = SplitChainBuilder::new(LANE_PAYEES);
    other_chain
        .push_split(&mut before_split, &other, ts())
        .unwrap();
    let other_proof = fx
        .split_chain
        .prove(&other_chain.chunks(1, 1).remove(0))
        .unwrap();
    let forged = SettlementProofs {
        splits: Some(&other_proof),
        walks: None,
        ..proofs
    };
    assert_eq!(
        tie(&forged, &DOMAIN, DiffCircuitKind::V1),
        Err(TieError::Splits("folds other records than the leaves"))
    );
    assert!(
        !settles(&forged, &DOMAIN),
        "credits other than the signed ones settled"
    );
    // The batch without its chain: refused natively, and this circuit needs the proof.
    let without = SettlementProofs {
        splits: None,
        walks: None,
        ..proofs
    };
    assert_eq!(
        tie(&without, &DOMAIN, DiffCircuitKind::V1),
        Err(TieError::SideRecords("split records"))
    );
    assert!(fx.settlement.prove_unchecked(&without, &DOMAIN).is_err());
}

/// The tie of a tick-walk tree (SPEC 18.7): the settlement circuit that verifies one accepts
/// it only from `ZERO`, with no walk open at either end, walking exactly the records the leaves
/// handed over (`walks_out`). Natively, on real chunk proofs (the fixture's batch hands no walk
/// over; a range claiming one is tampered, so only the tie is asked).
#[test]
fn a_tick_walk_tree_walks_exactly_what_the_leaves_handed_over() {
    use rollup_prover::circuits::ticks::{absorb, plan_walks, TickWalkCircuit, WalkRecord};
    use state::stream::chain::TickChain;
    use state::stream::{StreamId, StreamSlot, TickCount};

    let fx = fixture();
    let walk = TickWalkCircuit::build(2);
    let id = StreamId {
        payer: ALICE,
        slot: StreamSlot(3),
        opened_at: Nonce::new(5).unwrap(),
    };
    let mut chain = TickChain::new(id, TickCount::new(200).unwrap(), Digest::ZERO);
    let mut record = |to: u32| WalkRecord {
        id,
        to,
        from: 0,
        t_to: chain.tick(to).unwrap().value,
        head: chain.anchor(),
    };
    let (short, long) = (record(20), record(100));
    let prove = |records: &[WalkRecord], chunk: usize| {
        let chunks = plan_walks(records, 2, 1).unwrap();
        walk.prove(&chunks[chunk]).unwrap()
    };
    let idle = prove(&[], 0);
    let walked = prove(&[short], 0);
    fn with<'a>(fx: &'a Fixture, walks: &'a Proof) -> SettlementProofs<'a> {
        SettlementProofs {
            walks: Some(walks),
            ..fx.proofs()
        }
    }
    assert!(tie(&with(fx, &idle), &DOMAIN, DiffCircuitKind::V1).is_ok());
    assert_eq!(
        tie(&with(fx, &walked), &DOMAIN, DiffCircuitKind::V1),
        Err(TieError::Walks("walks other records than the leaves"))
    );
    // A range that hands the short walk over ties with the tree that walks it, not without.
    let mut range = fx.range.clone();
    let fold = absorb(Digest::ZERO, &short).elements();
    range.public_inputs[51..55].copy_from_slice(&fold);
    let handing = SettlementProofs {
        range: &range,
        ..with(fx, &walked)
    };
    assert!(tie(&handing, &DOMAIN, DiffCircuitKind::V1).is_ok());
    assert_eq!(
        tie(
            &SettlementProofs {
                walks: None,
                ..handing
            },
            &DOMAIN,
            DiffCircuitKind::V1
        ),
        Err(TieError::SideRecords("walk records"))
    );
    // The long walk (100 ticks, four lanes) spans two chunks: neither alone is a whole tree.
    assert_eq!(
        tie(&with(fx, &prove(&[long], 0)), &DOMAIN, DiffCircuitKind::V1),
        Err(TieError::Walks("leaves a walk open"))
    );
    assert_eq!(
        tie(&with(fx, &prove(&[long], 1)), &DOMAIN, DiffCircuitKind::V1),
        Err(TieError::Walks("does not start a tree"))
    );
}
