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
//!   cargo run -q -p rollup-bridge --example gas-blobs > blobs.json

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use state::account::{AccountIndex, Amount, Timestamp};
use state::apply::{BlockContext, State};
use state::crypto::schnorr::SecretKey;
use state::diff::{BatchTouches, StateDiff};
use state::pubdata::encode_ops;
use state::tx::{Deposit, Domain, Transaction, UnsignedRegister, UnsignedTransfer};

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
    let ctx = BlockContext {
        timestamp: Timestamp::new(NOW).ok_or("time")?,
    };
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let valid_until = Timestamp::new(NOW + 3600).ok_or("time")?;
    let mut cases = Vec::new();
    for agents in [100u32, 1_000] {
        let mut rng = StdRng::seed_from_u64(0x6a5 + u64::from(agents));
        let operator = SecretKey::random(&mut rng);
        let keys: Vec<SecretKey> = (0..agents).map(|_| SecretKey::random(&mut rng)).collect();
        let mut state = State::genesis(DOMAIN, operator.public_key());
        // Setup batch: agent i (key i - 1) registers at index i and gets 1,000 USD.
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
        for i in 1..=agents {
            setup.push(Transaction::Deposit(Deposit {
                seq: u64::from(i - 1),
                to: AccountIndex(i),
                amount: Amount::new(1_000_000_000).ok_or("amount")?,
            }));
        }
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
    println!("{}", serde_json::json!({ "version": 1, "cases": cases }));
    Ok(())
}
