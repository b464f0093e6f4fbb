//! The payment circuit against the native rules: an honest mixed batch proves and its public
//! inputs are the native roots and commitments; forged leaves that break one rule each (and are
//! otherwise consistent) do not prove or do not verify. The settlement proof over a real batch
//! and the attacks on it are in `payment/settlement.rs`.

#[path = "payment/agents.rs"]
mod agents;
#[path = "payment/delegates.rs"]
mod delegates;
#[path = "payment/settlement.rs"]
mod settlement;
#[path = "payment/shares.rs"]
mod shares;
#[path = "payment/split.rs"]
mod split;
#[path = "payment/stream.rs"]
mod stream;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::Instant;

use plonky2::field::types::{Field, PrimeField64};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rollup_prover::cache::CircuitCache;
use rollup_prover::circuits::payment::PaymentCircuit;
use rollup_prover::circuits::public::RangeStatement;
use rollup_prover::circuits::registry::Circuits;
use rollup_prover::witness::{
    leaf_witnesses, AccountFields, LeafAccess, LeafWitness, SlotKind, SlotWitness, WitnessError,
};
use rollup_prover::F;
use state::account::{AccountIndex, Amount, Nonce, Timestamp, OPERATOR};
use state::apply::{BlockContext, State};
use state::crypto::scalar::Scalar;
use state::crypto::schnorr::SecretKey;
use state::crypto::schnorr::Signature;
use state::hash::{hash_no_pad, Digest};
use state::pubdata::{pubdata_commitment, withdrawals_commitment, WithdrawalRecord};
use state::smt::SparseMerkleTree;
use state::tx::{
    Deposit, Domain, ForcedWithdraw, L1Address, Transaction, UnsignedRegister, UnsignedTransfer,
    UnsignedWithdraw,
};

const K: usize = 4;
const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [0x42; 20],
};
const NOW: u64 = 1_700_000_000;
const MAX: u64 = (1 << 63) - 1;
const ALICE: AccountIndex = AccountIndex(1);
const BOB: AccountIndex = AccountIndex(2);
const L1: L1Address = L1Address([
    0x5f, 0xbd, 0xb2, 0x31, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
]);

/// The L1 sender of every deposit in these tests.
/// The serialized input of one chunk job, as the planner writes it.
fn chunk_input<W: serde::Serialize, S: serde::Serialize>(witness: W, statement: S) -> Vec<u8> {
    serde_json::to_vec(&rollup_prover::circuits::trees::ChunkInput { witness, statement }).unwrap()
}

/// What a batch without priority operations or withdrawals settles besides its leaves, its
/// diff and its side trees, proven at level 0 by `reg` for diff kind `kind`: its empty priority
/// and payout chunks, and the L1 statement its final proof must state (`before` and `after`
/// the states around the batch, `published` its diff's bytes).
struct QuietBatch {
    priority: Vec<u8>,
    payout: Vec<u8>,
    expected: state::settlement::BatchStatement,
}

fn quiet_batch(
    reg: &Circuits<PaymentCircuit>,
    kind: rollup_storage::DiffCircuitKind,
    batch: u64,
    (before, after): (&mut State, &mut State),
    published: &[u8],
) -> QuietBatch {
    use rollup_prover::circuits::payout::payout_chunks;
    use rollup_prover::circuits::priority::priority_chunks;
    use rollup_storage::ProofTree;
    use state::settlement::{priority_chain, BatchStatement, PayoutTree};

    let shape = reg.shape();
    let prove = |tree: ProofTree, input: &[u8]| reg.prove_tree_leaf(tree, kind, input).unwrap();
    let queue_before = [7u8; 32];
    let first = before.next_deposit_seq();
    let (pw, ps) = priority_chunks(queue_before, first, &[], shape.priority, 1)
        .unwrap()
        .remove(0);
    let (ow, os) = payout_chunks(batch, &[], shape.payout_depth, 1)
        .unwrap()
        .remove(0);
    QuietBatch {
        priority: prove(ProofTree::Priority, &chunk_input(pw, ps)).bytes,
        payout: prove(ProofTree::Payout, &chunk_input(ow, os)).bytes,
        expected: BatchStatement {
            chain_id: DOMAIN.chain_id,
            rollup: L1Address(DOMAIN.rollup),
            batch_number: batch,
            old_root: before.root().to_bytes(),
            new_root: after.root().to_bytes(),
            diff_hash: state::settlement::diff_hash(published),
            payout_root: PayoutTree::new(batch, &[]).root(),
            first_priority_op: first,
            next_priority_op: first,
            priority_hash_before: queue_before,
            priority_hash_after: priority_chain(queue_before, &[]),
            timestamp: NOW,
        },
    }
}

fn depositor(_: u64) -> Option<L1Address> {
    Some(L1Address([0xd0; 20]))
}

/// The circuits of these tests: the payment leaf of `K` slots, and the merges above it for the
/// settlement tests, built once per test binary (no disk cache).
fn registry() -> &'static Circuits<PaymentCircuit> {
    static C: OnceLock<Circuits<PaymentCircuit>> = OnceLock::new();
    C.get_or_init(|| {
        let t = Instant::now();
        let c = PaymentCircuit::build(K);
        println!(
            "payment circuit k={K}: {} rows (degree), {} gates per slot, built in {:?}",
            c.data.common.degree(),
            c.gates_per_slot,
            t.elapsed()
        );
        Circuits::new(c, CircuitCache::disabled())
    })
}

/// The registry of a deployment whose leaf has the stream and revenue-share kinds and policy
/// checks (`K` slots, no disk cache): the settlement tests of streams and of shares (with
/// lanes) prove with it, so that its trees' circuits are built once for both.
fn kinds_registry() -> &'static Circuits<PaymentCircuit> {
    static C: OnceLock<Circuits<PaymentCircuit>> = OnceLock::new();
    C.get_or_init(|| {
        let kinds = rollup_prover::circuits::payment::PaymentKinds {
            streams: true,
            shares: true,
            policies: rollup_prover::circuits::payment::PolicyChecks::Plain,
        };
        Circuits::new(
            PaymentCircuit::build_kinds(K, kinds),
            CircuitCache::disabled(),
        )
    })
}

fn circuit() -> &'static PaymentCircuit {
    registry().leaf()
}

fn key(seed: u64) -> SecretKey {
    SecretKey::random(&mut StdRng::seed_from_u64(seed))
}

fn ctx() -> BlockContext {
    BlockContext::at(Timestamp::new(NOW).unwrap())
}

fn ts() -> Timestamp {
    Timestamp::new(NOW).unwrap()
}

fn amt(v: u64) -> Amount {
    Amount::new(v).unwrap()
}

struct Keys {
    op: SecretKey,
    alice: SecretKey,
    bob: SecretKey,
    carol: SecretKey,
}

fn keys() -> Keys {
    Keys {
        op: key(1),
        alice: key(2),
        bob: key(3),
        carol: key(4),
    }
}

fn register(k: &SecretKey) -> Transaction {
    UnsignedRegister {
        pubkey: k.public_key(),
        valid_until: Timestamp::new(NOW + 10).unwrap(),
    }
    .sign(&DOMAIN, k)
    .into()
}

fn transfer(
    from: AccountIndex,
    to: AccountIndex,
    amount: u64,
    fee: u64,
    nonce: u64,
    k: &SecretKey,
) -> Transaction {
    UnsignedTransfer {
        from,
        to,
        amount: amt(amount),
        fee: amt(fee),
        nonce: Nonce::new(nonce).unwrap(),
        valid_until: Timestamp::new(NOW + 60).unwrap(),
    }
    .sign(&DOMAIN, k)
    .into()
}

fn withdraw(from: AccountIndex, amount: u64, fee: u64, nonce: u64, k: &SecretKey) -> Transaction {
    UnsignedWithdraw {
        from,
        to_l1: L1,
        amount: amt(amount),
        fee: amt(fee),
        nonce: Nonce::new(nonce).unwrap(),
        valid_until: Timestamp::new(NOW).unwrap(),
    }
    .sign(&DOMAIN, k)
    .into()
}

fn deposit(seq: u64, to: AccountIndex, amount: u64) -> Transaction {
    Transaction::Deposit(Deposit {
        seq,
        to,
        amount: amt(amount),
    })
}

/// Genesis, Alice (1) and Bob (2) registered, 1000 and 50 deposited to them (not proven).
fn setup(k: &Keys) -> State {
    let mut s = State::genesis(DOMAIN, k.op.public_key());
    for tx in [
        register(&k.alice),
        register(&k.bob),
        deposit(0, ALICE, 1000),
        deposit(1, BOB, 50),
    ] {
        s.apply(&tx, &ctx()).unwrap();
    }
    s
}

/// The leaves of `txs` applied to `state` at [`NOW`] (`K` slots each, no padding leaf).
fn leaves_of(state: &mut State, txs: &[Transaction]) -> Vec<LeafWitness> {
    let with_ctx: Vec<_> = txs.iter().map(|t| (t.clone(), ctx())).collect();
    leaf_witnesses(state, &with_ctx, ts(), K, 0, &depositor).unwrap()
}

/// The statuses the forced withdrawals of `leaves` publish, in order.
fn forced_statuses(leaves: &[LeafWitness]) -> Vec<u8> {
    leaves
        .iter()
        .flat_map(|l| l.slots.iter())
        .filter(|s| s.kind == SlotKind::ForcedWithdraw)
        .map(|s| s.forced_status)
        .collect()
}

/// Proves the forged leaf `w` with `c`, asserting that it has no proof, and returns the rule
/// (and slot) that `rule_of` names from the refusal.
fn refused_with<R: std::fmt::Debug>(
    c: &PaymentCircuit,
    name: &str,
    w: &LeafWitness,
    rule_of: impl Fn(&PaymentCircuit, &str) -> Option<(usize, R)>,
) -> Option<(usize, R)> {
    let t = Instant::now();
    let err = try_prove_with(c, w).expect_err(&format!("attack {name} produced a valid proof"));
    let rule = rule_of(c, &err);
    println!(
        "attack {name}: refused in {:?} by {rule:?} ({})",
        t.elapsed(),
        err.chars().take(160).collect::<String>()
    );
    rule
}

/// Proves and verifies; the reason if either fails (or panics).
fn try_prove(w: &LeafWitness) -> Result<(), String> {
    try_prove_with(circuit(), w).map(|_| ())
}

/// [`try_prove`] with circuit `c`; the proof's statement when it verifies.
fn try_prove_with(c: &PaymentCircuit, w: &LeafWitness) -> Result<RangeStatement, String> {
    match catch_unwind(AssertUnwindSafe(|| c.prove(w))) {
        Ok(Ok(p)) => c.verify(p).map_err(|e| format!("verify: {e}")),
        Ok(Err(e)) => Err(format!("prove: {e:#}")),
        Err(panic) => Err(format!(
            "prove panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    }
}

fn proves(w: &LeafWitness) -> bool {
    try_prove(w).is_ok()
}

#[test]
fn honest_mixed_batch_proves_with_native_public_inputs() {
    let k = keys();
    let mut state = setup(&k);
    let txs: Vec<Transaction> = vec![
        register(&k.carol),              // 3
        deposit(2, AccountIndex(3), 70), // credited
        deposit(3, AccountIndex(99), 5), // refunded: no account
        transfer(ALICE, BOB, 100, 2, 0, &k.alice),
        withdraw(BOB, 30, 1, 0, &k.bob),
        transfer(ALICE, OPERATOR, 10, 1, 1, &k.alice), // to the operator
        transfer(OPERATOR, BOB, 5, 1, 0, &k.op),       // from the operator
        deposit(4, BOB, MAX),                          // refunded: overflow
        transfer(AccountIndex(3), ALICE, 70, 0, 0, &k.carol),
        withdraw(OPERATOR, 2, 1, 1, &k.op), // the operator withdraws, paying itself
        deposit(5, OPERATOR, 3),            // a deposit to the operator
    ];
    // Native reference on a second copy of the state.
    let mut native = setup(&k);
    let old_root = native.root();
    let mut ops = Vec::new();
    let mut ws: Vec<WithdrawalRecord> = Vec::new();
    for tx in &txs {
        let e = native.apply(tx, &ctx()).unwrap();
        ops.push(e.pubdata);
        ws.extend(e.withdrawal);
    }
    let with_ctx: Vec<_> = txs.iter().map(|t| (t.clone(), ctx())).collect();
    let leaves = leaf_witnesses(&mut state, &with_ctx, ts(), K, 1, &depositor).unwrap();
    assert_eq!(
        leaves.len(),
        4,
        "9 txs in chunks of 4 = 3 leaves, padded to 4"
    );
    assert!(leaves[3].slots.iter().all(|s| s.kind == SlotKind::Noop));

    // The worker stores witnesses as JSON.
    let json = serde_json::to_string(&leaves[0]).unwrap();
    assert_eq!(
        serde_json::from_str::<LeafWitness>(&json).unwrap(),
        leaves[0]
    );

    let c = circuit();
    let mut prev: Option<RangeStatement> = None;
    for (i, leaf) in leaves.iter().enumerate() {
        let t = Instant::now();
        let proof = c.prove(leaf).unwrap();
        println!("leaf {i}: proved in {:?}", t.elapsed());
        let st = c.verify(proof).unwrap();
        assert_eq!(st, leaf.statement);
        match prev {
            None => {
                assert_eq!(st.old_root, old_root);
                assert_eq!(st.pubdata_in, Digest::ZERO);
                assert_eq!(st.withdrawals_in, Digest::ZERO);
                assert_eq!(st.deposits_first, 2);
            }
            Some(p) => {
                assert_eq!(st.old_root, p.new_root);
                assert_eq!(st.pubdata_in, p.pubdata_out);
                assert_eq!(st.withdrawals_in, p.withdrawals_out);
                assert_eq!(st.deposits_first, p.deposits_next);
            }
        }
        assert_eq!(st.timestamp, NOW);
        assert_eq!(st.domain, DOMAIN.digest());
        prev = Some(st);
    }
    let last = prev.unwrap();
    assert_eq!(last.new_root, native.root());
    assert_eq!(last.pubdata_out, pubdata_commitment(&ops));
    assert_eq!(last.withdrawals_out, withdrawals_commitment(&ws));
    assert_eq!(last.deposits_next, native.next_deposit_seq());
    assert_eq!(state.root(), native.root());
}

#[test]
fn rejected_transactions_are_reported_not_proven() {
    let k = keys();
    let mut state = setup(&k);
    let txs = [
        (transfer(ALICE, BOB, 1, 0, 0, &k.alice), ctx()),
        (transfer(ALICE, BOB, 1, 0, 0, &k.alice), ctx()), // replay
    ];
    assert_eq!(
        leaf_witnesses(&mut state, &txs, ts(), K, 0, &depositor).err(),
        Some(WitnessError::Rejected {
            position: 1,
            code: "BAD_NONCE"
        })
    );
    let mut state = setup(&k);
    assert!(matches!(
        leaf_witnesses(&mut state, &[], ts(), 0, 0, &depositor),
        Err(WitnessError::ZeroK)
    ));
    // An empty batch still yields one (no-op) leaf when padded.
    let leaves = leaf_witnesses(&mut state, &[], ts(), K, 1, &depositor).unwrap();
    assert_eq!(leaves.len(), 1);
    assert_eq!(leaves[0].statement.old_root, leaves[0].statement.new_root);
}

// ---------------------------------------------------------------------------------------------
// A forger: builds leaves the way a cheating prover would, i.e. the circuit's transition
// function (sequential A, B, C accesses, field arithmetic, pubdata and withdrawal chains) with
// no rule checked. Each attack below breaks one rule and is consistent everywhere else.

fn felt(v: u64) -> F {
    F::from_noncanonical_u64(v)
}

fn absorb_bytes(c: Digest, bytes: &[u8]) -> Digest {
    let mut v = c.0.to_vec();
    v.push(F::from_canonical_usize(bytes.len()));
    for ch in bytes.chunks(7) {
        let mut b = [0u8; 8];
        b[..ch.len()].copy_from_slice(ch);
        v.push(F::from_canonical_u64(u64::from_le_bytes(b)));
    }
    hash_no_pad(&v)
}

/// How a forged slot departs from the circuit's transition (besides its fields).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cheat {
    None,
    /// Credit a deposit even if it overflows.
    Credit,
    /// Refund a deposit that should be credited.
    Refund,
    /// A registered account starts with this balance.
    Mint(u64),
    /// A spender's `ext` after its spend (an agent's passport charged, as the circuit
    /// computes it).
    AgentExt(Digest),
    /// A spend in a lane other than 0: the leaf's `nonce` stays and its `ext` is this.
    LaneSpend(Digest),
}

struct Forger {
    tree: SparseMerkleTree,
    accounts: BTreeMap<u32, AccountFields>,
    pubdata: Digest,
    withdrawals: Digest,
    deposits: u64,
    /// `entries_commitment` (SPEC 13.8) of the priority ops so far.
    entries: Digest,
}

impl Forger {
    fn new(state: &mut State) -> Self {
        let mut tree = SparseMerkleTree::new();
        let mut accounts = BTreeMap::new();
        for (i, a) in state.accounts().iter().enumerate() {
            let f = AccountFields::from_account(a);
            tree.set(i as u32, f.leaf());
            accounts.insert(i as u32, f);
        }
        assert_eq!(tree.root(), state.root());
        Forger {
            tree,
            accounts,
            pubdata: Digest::ZERO,
            withdrawals: Digest::ZERO,
            deposits: state.next_deposit_seq(),
            entries: Digest::ZERO,
        }
    }

    fn access(
        &mut self,
        index: u32,
        new: impl FnOnce(Option<AccountFields>) -> Option<AccountFields>,
    ) -> LeafAccess {
        let old = self.accounts.get(&index).copied();
        let siblings = self.tree.proof(index).siblings.to_vec();
        let updated = new(old);
        match updated {
            Some(a) => {
                self.tree.set(index, a.leaf());
                self.accounts.insert(index, a);
            }
            None => {
                self.tree.set(index, Digest::ZERO);
                self.accounts.remove(&index);
            }
        }
        LeafAccess {
            index,
            account: old,
            siblings,
        }
    }

    /// Applies the intent `s` (kind, fields, a/b indices, signature) without checks.
    fn slot(&mut self, mut s: SlotWitness, cheat: Cheat) -> SlotWitness {
        let add = |x: u64, y: u64| (felt(x) + felt(y)).to_canonical_u64();
        let sub = |x: u64, y: u64| (felt(x) - felt(y)).to_canonical_u64();
        let (ai, bi) = (s.a.index, s.b.index);
        let forced_applied = s.kind == SlotKind::ForcedWithdraw && s.forced_status == 0;
        let spend = matches!(s.kind, SlotKind::Transfer | SlotKind::Withdraw) || forced_applied;
        let mut credited = false;
        let (amount, fee) = (s.amount, s.fee);
        let pubkey = s.pubkey;
        s.a = self.access(ai, |old| match s.kind {
            SlotKind::Register => Some(AccountFields {
                pubkey,
                balance: if let Cheat::Mint(v) = cheat { v } else { 0 },
                nonce: 0,
                ext: Digest::ZERO,
            }),
            SlotKind::Deposit => old.map(|mut a| {
                let honest = a.balance + amount <= MAX;
                if cheat == Cheat::Credit || (honest && cheat != Cheat::Refund) {
                    credited = true;
                    a.balance = add(a.balance, amount);
                }
                a
            }),
            _ if spend => old.map(|mut a| {
                a.balance = sub(sub(a.balance, amount), fee);
                match cheat {
                    Cheat::AgentExt(e) => {
                        a.nonce = add(a.nonce, 1);
                        a.ext = e;
                    }
                    Cheat::LaneSpend(e) => a.ext = e,
                    _ => a.nonce = add(a.nonce, 1),
                }
                a
            }),
            _ => old,
        });
        let b_credit = if s.kind == SlotKind::Transfer {
            amount
        } else {
            0
        };
        s.b = self.access(bi, |old| {
            old.map(|mut a| {
                a.balance = add(a.balance, b_credit);
                a
            })
        });
        let c_credit = if spend { fee } else { 0 };
        s.c = self.access(0, |old| {
            old.map(|mut a| {
                a.balance = add(a.balance, c_credit);
                a
            })
        });
        let mut bytes = vec![];
        match s.kind {
            SlotKind::Noop => {}
            // Split attacks tamper an honest split's witness (`attack_split`).
            SlotKind::Split => unreachable!("the forger builds no split"),
            // The stream kinds are forged by `stream::StreamForger`.
            SlotKind::StreamOpen
            | SlotKind::StreamSettle
            | SlotKind::StreamClose
            | SlotKind::StreamSettlePath => {
                unreachable!("the accounts forger builds no stream slot")
            }
            // The revenue-share kinds are tampered from honest witnesses (`shares.rs`).
            SlotKind::RegisterShares | SlotKind::Distribute => {
                unreachable!("the accounts forger builds no revenue-share slot")
            }
            // The owner kinds are tampered from honest witnesses (`agents.rs`).
            SlotKind::Delegate | SlotKind::SetPolicy | SlotKind::Revoke | SlotKind::Sweep => {
                unreachable!("the accounts forger builds no owner slot")
            }
            SlotKind::Register => {
                bytes.push(1);
                bytes.extend(ai.to_le_bytes());
                for w in s.pubkey {
                    bytes.extend(w.to_le_bytes());
                }
            }
            SlotKind::Transfer => {
                bytes.push(2);
                bytes.extend(ai.to_le_bytes());
                bytes.extend(bi.to_le_bytes());
                bytes.extend(amount.to_le_bytes());
                bytes.extend(fee.to_le_bytes());
            }
            SlotKind::Withdraw => {
                bytes.push(3);
                bytes.extend(ai.to_le_bytes());
                bytes.extend(s.to_l1);
                bytes.extend(amount.to_le_bytes());
                bytes.extend(fee.to_le_bytes());
                let mut v = self.withdrawals.0.to_vec();
                v.push(F::from_canonical_u32(ai));
                v.extend(L1Address(s.to_l1).to_field_elements());
                v.push(felt(amount));
                self.withdrawals = hash_no_pad(&v);
            }
            SlotKind::Deposit => {
                bytes.push(4);
                bytes.extend(s.seq.to_le_bytes());
                bytes.extend(ai.to_le_bytes());
                bytes.extend(amount.to_le_bytes());
                bytes.push(u8::from(!credited));
                self.deposits += 1;
            }
            SlotKind::ForcedWithdraw => {
                bytes.push(5);
                bytes.extend(s.seq.to_le_bytes());
                bytes.extend(s.requested_at.to_le_bytes());
                bytes.extend(ai.to_le_bytes());
                bytes.extend(s.to_l1);
                bytes.extend(amount.to_le_bytes());
                bytes.extend(fee.to_le_bytes());
                bytes.extend(s.nonce.to_le_bytes());
                bytes.extend(s.valid_until.to_le_bytes());
                bytes.extend(s.signature.map(|g| g.to_bytes()).unwrap_or([0; 72]));
                bytes.push(s.forced_status);
                if forced_applied {
                    let mut v = self.withdrawals.0.to_vec();
                    v.push(F::from_canonical_u32(ai));
                    v.extend(L1Address(s.to_l1).to_field_elements());
                    v.push(felt(amount));
                    self.withdrawals = hash_no_pad(&v);
                }
                self.deposits += 1;
            }
        }
        if !bytes.is_empty() {
            self.pubdata = absorb_bytes(self.pubdata, &bytes);
        }
        match s.kind {
            SlotKind::Deposit => {
                let d = L1Address(s.depositor);
                self.entries = state::settlement::entries_absorb(self.entries, &bytes, Some(&d));
            }
            SlotKind::ForcedWithdraw => {
                self.entries = state::settlement::entries_absorb(self.entries, &bytes, None);
            }
            _ => {}
        }
        s
    }

    /// A whole leaf: the intents, padded with no-ops.
    fn leaf(&mut self, intents: Vec<(SlotWitness, Cheat)>) -> LeafWitness {
        let old_root = self.tree.root();
        let (pubdata_in, withdrawals_in, deposits_first, entries_in) =
            (self.pubdata, self.withdrawals, self.deposits, self.entries);
        let mut slots: Vec<SlotWitness> =
            intents.into_iter().map(|(s, f)| self.slot(s, f)).collect();
        while slots.len() < K {
            slots.push(self.slot(intent(SlotKind::Noop), Cheat::None));
        }
        LeafWitness {
            statement: RangeStatement {
                old_root,
                new_root: self.tree.root(),
                pubdata_in,
                pubdata_out: self.pubdata,
                withdrawals_in,
                withdrawals_out: self.withdrawals,
                deposits_first,
                deposits_next: self.deposits,
                timestamp: NOW,
                domain: DOMAIN.digest(),
                entries_in,
                entries_out: self.entries,
                splits_in: Digest::ZERO,
                splits_out: Digest::ZERO,
                walks_in: Digest::ZERO,
                walks_out: Digest::ZERO,
            },
            slots,
        }
    }
}

fn access(index: u32) -> LeafAccess {
    LeafAccess {
        index,
        account: None,
        siblings: vec![],
    }
}

fn intent(kind: SlotKind) -> SlotWitness {
    SlotWitness::new(kind, access(0))
}

/// A signed transfer intent (signed whenever the values are representable natively).
fn t_intent(
    from: u32,
    to: u32,
    amount: u64,
    fee: u64,
    nonce: u64,
    valid_until: u64,
    k: &SecretKey,
) -> SlotWitness {
    let mut s = intent(SlotKind::Transfer);
    s.a.index = from;
    s.b.index = to;
    (s.amount, s.fee, s.nonce, s.valid_until) = (amount, fee, nonce, valid_until);
    if let (Some(amount), Some(fee), Some(nonce), Some(vu)) = (
        Amount::new(amount),
        Amount::new(fee),
        Nonce::new(nonce),
        Timestamp::new(valid_until),
    ) {
        let t = UnsignedTransfer {
            from: AccountIndex(from),
            to: AccountIndex(to),
            amount,
            fee,
            nonce,
            valid_until: vu,
        }
        .sign(&DOMAIN, k);
        s.signature = Some(t.signature);
    }
    s
}

fn d_intent(seq: u64, to: u32, amount: u64) -> SlotWitness {
    let mut s = intent(SlotKind::Deposit);
    s.a.index = to;
    s.seq = seq;
    s.amount = amount;
    s.depositor = [0xd0; 20];
    s
}

/// Slot intents of an honest leaf (what a forger would start from).
fn intents_of(w: &LeafWitness) -> Vec<(SlotWitness, Cheat)> {
    w.slots
        .iter()
        .map(|s| {
            let mut i = s.clone();
            i.a = access(s.a.index);
            i.b = access(s.b.index);
            i.c = access(0);
            (i, Cheat::None)
        })
        .collect()
}

#[test]
fn forger_reproduces_honest_witnesses() {
    // The attacks are only meaningful if the forger builds exactly what the witness generator
    // builds when no rule is broken.
    let k = keys();
    let mut state = setup(&k);
    let mut forger = Forger::new(&mut state);
    let txs = [
        register(&k.carol),
        deposit(2, AccountIndex(3), 7),
        deposit(3, AccountIndex(50), 7),
        withdraw(ALICE, 3, 1, 0, &k.alice),
        transfer(BOB, OPERATOR, 4, 1, 0, &k.bob),
        deposit(4, BOB, MAX),
    ];
    let leaves = leaves_of(&mut state, &txs);
    for leaf in &leaves {
        let forged = forger.leaf(intents_of(leaf));
        assert_eq!(&forged, leaf);
    }
}

/// Runs one attack leaf, built by `f` from a fresh world, and asserts it does not prove.
fn assert_attack_fails(name: &str, f: impl FnOnce(&Keys, &mut Forger) -> LeafWitness) {
    let k = keys();
    let mut state = setup(&k);
    let mut forger = Forger::new(&mut state);
    let w = f(&k, &mut forger);
    let t = Instant::now();
    let err = try_prove(&w).expect_err(&format!("attack {name} produced a valid proof"));
    println!("attack {name}: refused in {:?}: {err}", t.elapsed());
}

#[test]
fn attack_overspend() {
    assert_attack_fails("overspend", |k, f| {
        f.leaf(vec![(
            t_intent(1, 2, 1000, 1, 0, NOW, &k.alice),
            Cheat::None,
        )])
    });
    assert_attack_fails("overspend by wrap", |k, f| {
        // amount + fee = p: a single-element subtraction would charge nothing (and neither
        // credit overflows: Bob gets 2^63 - 2^32 + 2, the empty operator 2^63 - 1).
        let fee = MAX;
        let amount = 0xffff_ffff_0000_0001u64 - MAX;
        f.leaf(vec![(
            t_intent(1, 2, amount, fee, 0, NOW, &k.alice),
            Cheat::None,
        )])
    });
}

#[test]
fn attack_nonces() {
    assert_attack_fails("skipped nonce", |k, f| {
        f.leaf(vec![(t_intent(1, 2, 5, 0, 1, NOW, &k.alice), Cheat::None)])
    });
    assert_attack_fails("replayed nonce", |k, f| {
        let tx = t_intent(1, 2, 5, 0, 0, NOW, &k.alice);
        f.leaf(vec![(tx.clone(), Cheat::None), (tx, Cheat::None)])
    });
}

#[test]
fn attack_expired() {
    assert_attack_fails("expired", |k, f| {
        f.leaf(vec![(
            t_intent(1, 2, 5, 0, 0, NOW - 1, &k.alice),
            Cheat::None,
        )])
    });
}

#[test]
fn attack_priority_entries() {
    // The leaf commits to every consumed priority op with its L1 depositor (SPEC 13.8): a
    // leaf whose statement claims the entries of the L1 queue cannot carry another depositor
    // (who would be paid a refund), nor another amount or recipient than the statement's
    // entries say.
    let honest = |f: &mut Forger| f.leaf(vec![(d_intent(2, 1, 5), Cheat::None)]);
    assert_attack_fails("another depositor than the entry's", |_, f| {
        let mut w = honest(f);
        w.slots[0].depositor = [0xee; 20];
        w
    });
    assert_attack_fails("entries commitment of other ops", |_, f| {
        let mut w = honest(f);
        w.statement.entries_out = Digest::ZERO;
        w
    });
    // The honest leaf proves (the attacks above fail for their edit, not for the setup).
    let k = keys();
    let mut state = setup(&k);
    let mut forger = Forger::new(&mut state);
    let w = honest(&mut forger);
    try_prove(&w).unwrap();
    let entry = state::settlement::Consumed {
        entry: state::settlement::PriorityEntry::Deposit {
            serial: 2,
            depositor: L1Address([0xd0; 20]),
            recipient: 1,
            amount: 5,
        },
        status: 0,
    };
    assert_eq!(
        w.statement.entries_out,
        state::settlement::entries_commitment([&entry]),
        "the leaf's entries are the priority circuit's (SPEC 13.8)"
    );
}

#[test]
fn attack_deposit_order_and_credit() {
    assert_attack_fails("skipped deposit", |_, f| {
        f.leaf(vec![(d_intent(3, 1, 5), Cheat::None)])
    });
    assert_attack_fails("replayed deposit", |_, f| {
        f.leaf(vec![(d_intent(1, 1, 5), Cheat::None)])
    });
    assert_attack_fails("credited overflowing deposit", |_, f| {
        f.leaf(vec![(d_intent(2, 1, MAX), Cheat::Credit)])
    });
}

#[test]
fn attack_overflow_and_shape() {
    assert_attack_fails("recipient overflow", |k, f| {
        // Bob is filled to 2^63 - 11 by an honest deposit, then receives 100.
        f.leaf(vec![
            (d_intent(2, 2, MAX - 60), Cheat::None),
            (t_intent(1, 2, 100, 0, 0, NOW, &k.alice), Cheat::None),
        ])
    });
    assert_attack_fails("operator fee overflow", |k, f| {
        f.leaf(vec![
            (d_intent(2, 0, MAX - 3), Cheat::None),
            (t_intent(1, 2, 1, 5, 0, NOW, &k.alice), Cheat::None),
        ])
    });
    assert_attack_fails("refunded creditable deposit", |_, f| {
        f.leaf(vec![(d_intent(2, 1, 5), Cheat::Refund)])
    });
    assert_attack_fails("register with a balance", |k, f| {
        let mut s = intent(SlotKind::Register);
        s.pubkey = k
            .carol
            .public_key()
            .to_field_elements()
            .map(|e| e.to_canonical_u64());
        s.valid_until = NOW;
        s.a.index = 3;
        s.b.index = 2;
        f.leaf(vec![(s, Cheat::Mint(1_000_000))])
    });
    // A (forged) pre-state where Alice's nonce is her lane's last number, 2^60 - 1 (which the
    // native rules never take, SPEC 20.1), or 2^63 - 1.
    for last in [state::lanes::MAX_SEQ, MAX] {
        assert_attack_fails("exhausted nonce", |k, f| {
            let mut alice = f.accounts[&1];
            alice.nonce = last;
            f.accounts.insert(1, alice);
            f.tree.set(1, alice.leaf());
            f.leaf(vec![(
                t_intent(1, 2, 5, 0, last, NOW, &k.alice),
                Cheat::None,
            )])
        });
    }
    assert_attack_fails("self transfer", |k, f| {
        f.leaf(vec![(t_intent(1, 1, 5, 0, 0, NOW, &k.alice), Cheat::None)])
    });
    assert_attack_fails("zero amount", |k, f| {
        f.leaf(vec![(t_intent(1, 2, 0, 1, 0, NOW, &k.alice), Cheat::None)])
    });
    assert_attack_fails("unknown recipient", |k, f| {
        f.leaf(vec![(t_intent(1, 9, 5, 0, 0, NOW, &k.alice), Cheat::None)])
    });
    assert_attack_fails("register at a gap", |k, f| {
        let mut s = intent(SlotKind::Register);
        s.pubkey = k
            .carol
            .public_key()
            .to_field_elements()
            .map(|e| e.to_canonical_u64());
        s.valid_until = NOW;
        s.a.index = 5;
        s.b.index = 4;
        f.leaf(vec![(s, Cheat::None)])
    });
}

#[test]
fn attack_statement() {
    let k = keys();
    let mut state = setup(&k);
    let txs = [
        (transfer(ALICE, BOB, 5, 1, 0, &k.alice), ctx()),
        (withdraw(BOB, 3, 0, 0, &k.bob), ctx()),
    ];
    let honest = leaf_witnesses(&mut state, &txs, ts(), K, 0, &depositor)
        .unwrap()
        .remove(0);
    let c = circuit();
    let mut w = honest.clone();
    w.statement.old_root = Digest::ZERO;
    assert!(!proves(&w), "wrong old root");
    let mut w = honest.clone();
    w.statement.pubdata_out.0[0] += F::ONE;
    assert!(!proves(&w), "tampered pubdata commitment");
    let mut w = honest.clone();
    w.statement.withdrawals_out = Digest::ZERO;
    assert!(!proves(&w), "dropped withdrawal");
    let mut w = honest.clone();
    w.statement.timestamp = NOW + 61;
    assert!(
        !proves(&w),
        "later batch timestamp than the transfer's expiry"
    );
    let mut w = honest.clone();
    w.slots[0].amount = 6;
    assert!(!proves(&w), "amount changed after the fact");
    // No slot of the payment circuit hands a record over to a side proof: a leaf claiming
    // one (an accumulator that moves) has no proof.
    let mut w = honest.clone();
    w.statement.splits_out.0[0] += F::ONE;
    assert!(!proves(&w), "a split record from nowhere");
    let mut w = honest.clone();
    w.statement.walks_in.0[1] += F::ONE;
    assert!(!proves(&w), "a walk record from nowhere");
    // A valid proof whose public inputs are altered does not verify.
    let mut proof = c.prove(&honest).unwrap();
    proof.public_inputs[26] += F::ONE;
    assert!(c.data.verify(proof).is_err());
}

#[test]
fn attack_signatures() {
    // Alice's money moved by a signature of Bob's key.
    assert_attack_fails("forged signature", |k, f| {
        f.leaf(vec![(t_intent(1, 2, 5, 0, 0, NOW, &k.bob), Cheat::None)])
    });
    // A genuine signature of Alice reused on a bigger amount.
    assert_attack_fails("reused signature", |k, f| {
        let honest = t_intent(1, 2, 5, 0, 0, NOW, &k.alice);
        let mut bigger = t_intent(1, 2, 50, 0, 0, NOW, &k.alice);
        bigger.signature = honest.signature;
        f.leaf(vec![(bigger, Cheat::None)])
    });
    // A genuine signature reused for another recipient.
    assert_attack_fails("redirected signature", |k, f| {
        let honest = t_intent(1, 2, 5, 0, 0, NOW, &k.alice);
        let mut redirected = t_intent(1, 0, 5, 0, 0, NOW, &k.alice);
        redirected.signature = honest.signature;
        f.leaf(vec![(redirected, Cheat::None)])
    });
    // A signed transfer with its signature dropped.
    assert_attack_fails("missing signature", |k, f| {
        let mut unsigned = t_intent(1, 2, 5, 0, 0, NOW, &k.alice);
        unsigned.signature = None;
        f.leaf(vec![(unsigned, Cheat::None)])
    });
}

// ------------------------------------------------------------------ forced withdrawals

fn forced(seq: u64, requested_at: u64, w: Transaction) -> Transaction {
    let Transaction::Withdraw(withdraw) = w else {
        panic!("a withdraw")
    };
    ForcedWithdraw {
        seq,
        requested_at: Timestamp::new(requested_at).unwrap(),
        withdraw,
    }
    .into()
}

/// A signature by `k` whose `R' = s G + e Q` is the neutral (`s = -e d`): any signer can make
/// one, and it must be rejected with a proof like any bad signature.
fn neutral_signature(k: &SecretKey) -> Signature {
    let e = [7u64, 11, 13, 17];
    let d = Scalar::from_le_bytes(&k.to_bytes()).unwrap();
    let s = -(Scalar::from_u64x4(e) * d);
    let mut bytes = [0u8; 72];
    for (i, l) in e.iter().enumerate() {
        bytes[8 * i..8 * i + 8].copy_from_slice(&l.to_le_bytes());
    }
    bytes[32..].copy_from_slice(&s.to_le_bytes());
    Signature::from_bytes(&bytes).unwrap()
}

#[test]
fn forced_withdrawals_prove_applied_and_rejected_with_their_reason() {
    let k = keys();
    let mut state = setup(&k);
    let withdraw_vu = |from, amount, fee, nonce, vu: u64, key: &SecretKey| {
        Transaction::Withdraw(
            UnsignedWithdraw {
                from,
                to_l1: L1,
                amount: amt(amount),
                fee: amt(fee),
                nonce: Nonce::new(nonce).unwrap(),
                valid_until: Timestamp::new(vu).unwrap(),
            }
            .sign(&DOMAIN, key),
        )
    };
    let mut neutral = withdraw(ALICE, 1, 0, 1, &k.alice);
    if let Transaction::Withdraw(w) = &mut neutral {
        w.signature = neutral_signature(&k.alice);
    }
    let txs = [
        // Applied: requested while valid (valid_until = NOW = requested_at), 300 + 2 fee.
        forced(2, NOW, withdraw(ALICE, 300, 2, 0, &k.alice)),
        // 1 unknown account, 2 forged by Bob, 2 neutral R', 3 expired at request time,
        // 5 replayed nonce, 7 more than the balance.
        forced(3, NOW, withdraw(AccountIndex(9), 1, 0, 0, &k.alice)),
        forced(4, NOW, withdraw(ALICE, 1, 0, 1, &k.bob)),
        forced(5, NOW, neutral),
        forced(6, NOW + 1, withdraw(ALICE, 1, 0, 1, &k.alice)),
        forced(7, NOW, withdraw(ALICE, 1, 0, 0, &k.alice)),
        forced(8, NOW, withdraw_vu(BOB, 50, 1, 0, NOW + 9, &k.bob)),
        // And a deposit after them: the queue moved on.
        deposit(9, BOB, 5),
    ];
    let leaves = leaves_of(&mut state, &txs);
    let statuses = forced_statuses(&leaves);
    assert_eq!(statuses, vec![0, 1, 2, 2, 3, 5, 7]);
    assert_eq!(state.account(ALICE).unwrap().balance, amt(698));
    assert_eq!(state.next_deposit_seq(), 10);
    for leaf in &leaves {
        try_prove(leaf).unwrap();
    }
    // The forger (no rules) builds the same leaves, so the attacks below are meaningful.
    let mut fresh = setup(&k);
    let mut forger = Forger::new(&mut fresh);
    for leaf in &leaves {
        assert_eq!(&forger.leaf(intents_of(leaf)), leaf);
    }
}

/// A forced-withdrawal intent from a signed withdraw.
fn f_intent(seq: u64, requested_at: u64, w: Transaction, status: u8) -> SlotWitness {
    let Transaction::Withdraw(w) = w else {
        panic!("a withdraw")
    };
    let mut s = intent(SlotKind::ForcedWithdraw);
    s.a.index = w.from.0;
    s.seq = seq;
    s.requested_at = requested_at;
    s.amount = w.amount.get();
    s.fee = w.fee.get();
    s.nonce = w.nonce.get();
    s.valid_until = w.valid_until.get();
    s.to_l1 = w.to_l1.0;
    s.signature = Some(w.signature);
    s.forced_status = status;
    s
}

#[test]
fn attack_forced_withdrawal_refused_without_reason() {
    // A valid request (Alice, nonce 0, 5 of her 1000, requested while valid): the operator
    // cannot reject it with any reason, which is what makes forced withdrawals censorship
    // resistant.
    for status in 1..=8u8 {
        assert_attack_fails(
            &format!("valid forced withdrawal rejected as {status}"),
            |k, f| {
                let w = withdraw(ALICE, 5, 1, 0, &k.alice);
                f.leaf(vec![(f_intent(2, NOW, w, status), Cheat::None)])
            },
        );
    }
    // The status byte must name a proven reason: an out-of-range one has no witness.
    assert_attack_fails("status 9", |k, f| {
        let w = withdraw(ALICE, 5, 1, 0, &k.alice);
        f.leaf(vec![(f_intent(2, NOW, w, 9), Cheat::None)])
    });
}

#[test]
fn attack_forced_withdrawal_applied_when_invalid() {
    assert_attack_fails("forged forced withdrawal applied", |k, f| {
        let w = withdraw(ALICE, 5, 0, 0, &k.bob);
        f.leaf(vec![(f_intent(2, NOW, w, 0), Cheat::None)])
    });
    assert_attack_fails("forced withdrawal expired at request applied", |k, f| {
        let w = withdraw(ALICE, 5, 0, 0, &k.alice);
        f.leaf(vec![(f_intent(2, NOW + 1, w, 0), Cheat::None)])
    });
    assert_attack_fails("forced withdrawal out of queue order", |k, f| {
        let w = withdraw(ALICE, 5, 0, 0, &k.alice);
        f.leaf(vec![(f_intent(3, NOW, w, 0), Cheat::None)])
    });
    // A wrong reason for an invalid request: forged by Bob (bad signature) but claimed as
    // insufficient balance.
    assert_attack_fails("forced withdrawal with a false reason", |k, f| {
        let w = withdraw(ALICE, 5, 0, 0, &k.bob);
        f.leaf(vec![(f_intent(2, NOW, w, 7), Cheat::None)])
    });
}

#[test]
fn attack_forced_withdrawal_rejected_for_a_later_rule_than_the_first_broken() {
    // A request breaking two rules has exactly one status, the first in rule order (as the
    // native rules publish it): any later broken rule claimed instead has no proof.
    // Expired at request (rule 3) and a wrong nonce (rule 5): the status is 3.
    assert_attack_fails("expired and bad nonce, rejected as bad nonce", |k, f| {
        let w = withdraw(ALICE, 5, 0, 7, &k.alice);
        f.leaf(vec![(f_intent(2, NOW + 1, w, 5), Cheat::None)])
    });
    // Forged signature (rule 2) and insufficient balance (rule 7): the status is 2.
    assert_attack_fails(
        "bad signature and overdrawn, rejected as overdrawn",
        |k, f| {
            let w = withdraw(ALICE, 5_000_000, 0, 0, &k.bob);
            f.leaf(vec![(f_intent(2, NOW, w, 7), Cheat::None)])
        },
    );
    // Zero amount (rule 4) and a wrong nonce (rule 5): the status is 4.
    assert_attack_fails(
        "zero amount and bad nonce, rejected as bad nonce",
        |k, f| {
            let w = withdraw(ALICE, 0, 0, 3, &k.alice);
            f.leaf(vec![(f_intent(2, NOW, w, 5), Cheat::None)])
        },
    );
}

#[test]
fn a_request_breaking_several_rules_proves_with_the_first() {
    // The honest counterpart of the attack above: the native rules publish the first broken
    // rule, and exactly that status proves.
    let k = keys();
    let mut state = setup(&k);
    let txs = [
        forced(2, NOW + 1, withdraw(ALICE, 5, 0, 7, &k.alice)),
        forced(3, NOW, withdraw(ALICE, 5_000_000, 0, 0, &k.bob)),
        forced(4, NOW, withdraw(ALICE, 0, 0, 3, &k.alice)),
    ];
    let leaves = leaves_of(&mut state, &txs);
    let statuses: Vec<u8> = leaves
        .iter()
        .flat_map(|l| &l.slots)
        .filter(|s| s.kind == SlotKind::ForcedWithdraw)
        .map(|s| s.forced_status)
        .collect();
    assert_eq!(statuses, vec![3, 2, 4]);
    for leaf in &leaves {
        try_prove(leaf).unwrap();
    }
}
