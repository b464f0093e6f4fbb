//! The L1 data of real batches of payments, for `scripts/gas-report.sh` (which commits each
//! blob on a fresh anvil and reports the gas): for 100, 1,000 and 10,000 payments among 100 and
//! among 1,000 agents, the batch's state diff as the node publishes it (`state::diff`, SPEC 10.4)
//! and, for comparison, its per-transaction ops (SPEC 10).
//!
//! Every payment is a signed transfer applied with the real state-transition function: random
//! payer and payee among the agents (deterministic seed), amounts of up to 1 USD (1..10^6 base
//! units), fees 1..100. Agents are registered and funded with 1,000 USD each in a first batch
//! that is not measured; the measured batches follow each other on the same state.
//!
//! Streams (SPEC 18, issue 14): 1,000 payers each stream to one of 100 payees, ticking 10 times
//! a second for a minute (600,000 ticks); the payees settle every stream once per batch, with
//! batches every 10, 30 or 60 seconds. Ticks never reach L1: only the settlements' net effect
//! does (the payees' balances and nonces, each settled stream's record).
//!
//!   cargo run -q -p rollup-bridge --example gas-blobs > blobs.json

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use state::account::{AccountIndex, Amount, Timestamp};
use state::apply::{BlockContext, State};
use state::crypto::schnorr::SecretKey;
use state::diff::{BatchTouches, StateDiff};
use state::hash::Digest;
use state::pubdata::encode_ops;
use state::stream::rules::{Open, Settle};
use state::stream::{StreamId, StreamSlot, TickChain, TickCount};
use state::tx::{
    Deposit, Domain, SettleBody, Transaction, Unsigned, UnsignedRegister, UnsignedTransfer,
};

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    rollup: [0x42; 20],
};
const NOW: u64 = 1_700_000_000;

struct Batch {
    diff: Vec<u8>,
    ops: Vec<u8>,
    records: usize,
}

/// Applies `txs` as one batch; its state diff (sealed and checked as the writer does) and ops.
fn batch(state: &mut State, txs: &[Transaction]) -> Result<Batch, Box<dyn std::error::Error>> {
    let ctx = BlockContext::at(Timestamp::new(NOW).ok_or("time")?);
    let old = state.root();
    let mut touches = BatchTouches::new(state.num_accounts());
    let mut ops = Vec::with_capacity(txs.len());
    for tx in txs {
        let fx = state
            .apply(tx, &ctx)
            .map_err(|r| format!("a generated transaction was rejected: {r}"))?;
        touches.absorb(&fx);
        ops.push(fx.pubdata);
    }
    let diff = touches.seal(state, old)?;
    Ok(Batch {
        records: StateDiff::decode(&diff)?.records().len(),
        diff,
        ops: encode_ops(&ops),
    })
}

/// A setup batch: key `i - 1` registers at index `i`, and accounts `1..=funded` get `amount`
/// each by deposit.
fn registered_and_funded(
    keys: &[SecretKey],
    funded: u32,
    amount: u64,
    valid_until: Timestamp,
) -> Result<Vec<Transaction>, Box<dyn std::error::Error>> {
    let mut setup: Vec<Transaction> = keys
        .iter()
        .map(|k| {
            UnsignedRegister {
                pubkey: k.public_key(),
                valid_until,
            }
            .sign(&DOMAIN, k)
            .into()
        })
        .collect();
    for i in 1..=funded {
        setup.push(Transaction::Deposit(Deposit {
            seq: u64::from(i - 1),
            to: AccountIndex(i),
            amount: Amount::new(amount).ok_or("amount")?,
        }));
    }
    Ok(setup)
}

/// The stream scenario (module docs): one case per settlement cadence.
fn stream_cases() -> Result<Vec<serde_json::Value>, Box<dyn std::error::Error>> {
    const PAYERS: u32 = 1_000;
    const PAYEES: u32 = 100;
    const TICKS_PER_SECOND: u32 = 10;
    const SECONDS: u32 = 60;
    let total_ticks = TICKS_PER_SECOND * SECONDS;
    let valid_until = Timestamp::new(NOW + 3600).ok_or("time")?;
    let mut out = Vec::new();
    for batch_secs in [10u32, 30, 60] {
        let mut rng = StdRng::seed_from_u64(0x71c5);
        let operator = SecretKey::random(&mut rng);
        let keys: Vec<SecretKey> = (0..PAYERS + PAYEES)
            .map(|_| SecretKey::random(&mut rng))
            .collect();
        let mut state = State::genesis(DOMAIN, operator.public_key());
        // Setup (not measured): payers at 1..=1000, payees at 1001..=1100, payers funded, and
        // each payer opens slot 0 to payee 1001 + (payer mod 100) at 1 base unit per tick.
        let mut setup = registered_and_funded(&keys, PAYERS, 1_000_000, valid_until)?;
        let max = TickCount::new(total_ticks).ok_or("ticks")?;
        let mut chains = Vec::new();
        for payer in 1..=PAYERS {
            let id = StreamId {
                payer: AccountIndex(payer),
                slot: StreamSlot(0),
                opened_at: state::account::Nonce::new(0).ok_or("nonce")?,
            };
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&payer.to_le_bytes());
            let seed = Digest::from_bytes(&seed).ok_or("seed")?;
            let chain = TickChain::new(id, max, seed);
            setup.push(
                Unsigned {
                    body: Open {
                        payer: AccountIndex(payer),
                        payee: AccountIndex(PAYERS + 1 + payer % PAYEES),
                        slot: id.slot,
                        price: Amount::new(1).ok_or("price")?,
                        max_ticks: max,
                        expiry: Timestamp::new(NOW + 3600).ok_or("time")?,
                        anchor: chain.anchor(),
                    },
                    fee: Amount::ZERO,
                    nonce: id.opened_at,
                    valid_until,
                }
                .sign(&DOMAIN, &keys[payer as usize - 1])
                .into(),
            );
            chains.push(chain);
        }
        batch(&mut state, &setup)?;
        // The minute: every batch, each payee settles each of its streams up to the tick
        // reached by the batch's end.
        let mut payee_nonce = vec![0u64; PAYEES as usize];
        let mut settled = 0u32;
        let (mut bytes, mut records, mut batches) = (Vec::new(), 0usize, 0u32);
        for end in (1..=SECONDS / batch_secs).map(|b| b * batch_secs * TICKS_PER_SECOND) {
            let mut txs = Vec::with_capacity(PAYERS as usize);
            for (i, chain) in chains.iter_mut().enumerate() {
                let payer = i as u32 + 1;
                let p = (payer % PAYEES) as usize;
                let tick = chain.tick(end).ok_or("tick")?;
                let nonce = state::account::Nonce::new(payee_nonce[p]).ok_or("nonce")?;
                payee_nonce[p] += 1;
                txs.push(
                    Unsigned {
                        body: SettleBody {
                            payee: AccountIndex(PAYERS + 1 + payer % PAYEES),
                            terms: Settle {
                                payer: AccountIndex(payer),
                                slot: StreamSlot(0),
                                from: TickCount::new(settled).ok_or("from")?,
                                to: tick.k,
                                value: tick.value,
                            },
                        },
                        fee: Amount::ZERO,
                        nonce,
                        valid_until,
                    }
                    .sign(&DOMAIN, &keys[(PAYERS + payer % PAYEES) as usize])
                    .into(),
                );
            }
            let b = batch(&mut state, &txs)?;
            records += b.records;
            bytes.push(format!("0x{}", hex::encode(&b.diff)));
            batches += 1;
            settled = end;
        }
        out.push(serde_json::json!({
            "streams": PAYERS,
            "payees": PAYEES,
            "ticks": u64::from(PAYERS) * u64::from(total_ticks),
            "seconds": SECONDS,
            "batch_secs": batch_secs,
            "batches": batches,
            "records": records,
            "diffs": bytes,
        }));
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let valid_until = Timestamp::new(NOW + 3600).ok_or("time")?;
    let mut cases = Vec::new();
    for agents in [100u32, 1_000] {
        let mut rng = StdRng::seed_from_u64(0x6a5 + u64::from(agents));
        let operator = SecretKey::random(&mut rng);
        let keys: Vec<SecretKey> = (0..agents).map(|_| SecretKey::random(&mut rng)).collect();
        let mut state = State::genesis(DOMAIN, operator.public_key());
        // Setup batch: agent i (key i - 1) registers at index i and gets 1,000 USD.
        let setup = registered_and_funded(&keys, agents, 1_000_000_000, valid_until)?;
        batch(&mut state, &setup)?;
        for payments in [100usize, 1_000, 10_000] {
            let mut nonces: Vec<u64> = (0..=agents)
                .map(|i| state.account(AccountIndex(i)).map_or(0, |a| a.nonce.get()))
                .collect();
            let txs: Vec<Transaction> = (0..payments)
                .map(|_| {
                    let from = rng.gen_range(1..=agents);
                    let mut to = rng.gen_range(1..agents);
                    if to >= from {
                        to += 1;
                    }
                    let nonce = nonces[from as usize];
                    nonces[from as usize] += 1;
                    let t = UnsignedTransfer {
                        from: AccountIndex(from),
                        to: AccountIndex(to),
                        amount: Amount::new(rng.gen_range(1..=1_000_000)).ok_or("amount")?,
                        fee: Amount::new(rng.gen_range(1..=100)).ok_or("fee")?,
                        nonce: state::account::Nonce::new(nonce).ok_or("nonce")?,
                        valid_until,
                    };
                    Ok(t.sign(&DOMAIN, &keys[from as usize - 1]).into())
                })
                .collect::<Result<_, Box<dyn std::error::Error>>>()?;
            let b = batch(&mut state, &txs)?;
            cases.push(serde_json::json!({
                "payments": payments,
                "agents": agents,
                "records": b.records,
                "diff": format!("0x{}", hex::encode(&b.diff)),
                "ops": format!("0x{}", hex::encode(&b.ops)),
            }));
        }
    }
    let streams = stream_cases()?;
    println!(
        "{}",
        serde_json::json!({ "version": 1, "cases": cases, "streams": streams })
    );
    Ok(())
}
