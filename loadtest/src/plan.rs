//! The pre-signed supply of transfers, built before the clock starts so the timed phase
//! measures the node and not our signing (one signature is ~35 us: at 15k tx/s that would be
//! half of this machine).
//!
//! Agent `a` sends only on stream `a mod K`, so its consecutive nonces reach the node in order.
//! Inside a stream the transfers are ordered nonce-major (every agent's nonce 0, then every
//! agent's nonce 1, ...): one agent's transfers are spread out, and the index of a transfer in
//! its stream's list orders any agent's transfers by nonce, which is what a replay after
//! back-pressure relies on.

use indicatif::ProgressBar;
use rayon::prelude::*;
use rollup_client::{Amount, Domain, Nonce, Timestamp, TxId};
use state::tx::{Transfer, UnsignedTransfer};

use crate::agents::Agent;

/// One pre-signed transfer and its id (to check the receipt answers it).
pub struct Planned {
    pub tx: Transfer,
    pub id: TxId,
}

/// What the transfers look like.
#[derive(Clone, Copy)]
pub struct Shape {
    /// Transfers per agent (nonces 0..per_agent).
    pub per_agent: u64,
    /// Amounts are uniform in 1..=max_amount.
    pub max_amount: u64,
    pub fee: Amount,
    pub valid_until: Timestamp,
    /// Seed of the recipient and amount choices.
    pub seed: u64,
}

/// Signs every agent's transfers on all cores; returns one list per stream, in send order.
///
/// Assumes every agent starts at nonce 0 (they are freshly registered).
pub fn presign(
    agents: &[Agent],
    streams: usize,
    shape: Shape,
    domain: &Domain,
    bar: &ProgressBar,
) -> Vec<Vec<Planned>> {
    (0..streams)
        .into_par_iter()
        .map(|stream| {
            // Positions (in `agents`) of the agents on this stream.
            let members: Vec<usize> = (stream..agents.len()).step_by(streams).collect();
            let len = members.len() as u64 * shape.per_agent;
            (0..len)
                .into_par_iter()
                .map(|t| {
                    let nonce = t / members.len() as u64;
                    let sender = members[(t % members.len() as u64) as usize];
                    let planned = sign_one(agents, sender, nonce, shape, domain);
                    bar.inc(1);
                    planned
                })
                .collect()
        })
        .collect()
}

fn sign_one(agents: &[Agent], sender: usize, nonce: u64, shape: Shape, domain: &Domain) -> Planned {
    let n = agents.len() as u64;
    let r = splitmix64(shape.seed ^ splitmix64((sender as u64) << 32 ^ nonce));
    // Any agent but the sender, uniformly.
    let to = (sender as u64 + 1 + (r % (n - 1))) % n;
    let amount = 1 + (r >> 32) % shape.max_amount;
    let agent = &agents[sender];
    let unsigned = UnsignedTransfer {
        from: agent.index,
        to: agents[to as usize].index,
        amount: Amount::new(amount).unwrap_or(Amount::ZERO),
        fee: shape.fee,
        nonce: Nonce::new(nonce).unwrap_or(Nonce::MAX),
        valid_until: shape.valid_until,
    };
    // Hash once: the message hash is both what is signed and the id.
    let hash = unsigned.message_hash(domain);
    let tx = Transfer {
        from: unsigned.from,
        to: unsigned.to,
        amount: unsigned.amount,
        fee: unsigned.fee,
        nonce: unsigned.nonce,
        valid_until: unsigned.valid_until,
        signature: agent.key.sign(&hash),
    };
    Planned {
        tx,
        id: hash.into(),
    }
}

/// The total each agent needs: every transfer at the largest amount, plus fees.
pub fn funding_per_agent(shape: &Shape) -> Option<Amount> {
    let per_tx = shape.max_amount.checked_add(shape.fee.get())?;
    Amount::new(per_tx.checked_mul(shape.per_agent)?)
}

/// SplitMix64: a fast, well-mixed hash of a counter, so each transfer's random choices depend
/// only on (seed, sender, nonce) and signing can run in any order on any thread.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rollup_client::{AccountIndex, SecretKey, Transaction};
    use std::collections::HashMap;

    const DOMAIN: Domain = Domain {
        chain_id: 31337,
        rollup: [3; 20],
    };

    fn agents(n: u32) -> Vec<Agent> {
        let mut rng = StdRng::seed_from_u64(1);
        (0..n)
            .map(|i| Agent {
                key: SecretKey::random(&mut rng),
                index: AccountIndex(10 + i),
            })
            .collect()
    }

    fn shape() -> Shape {
        Shape {
            per_agent: 4,
            max_amount: 100,
            fee: Amount::new(2).unwrap(),
            valid_until: Timestamp::new(2_000_000_000).unwrap(),
            seed: 99,
        }
    }

    #[test]
    fn each_agent_sends_on_one_stream_with_consecutive_nonces() {
        let agents = agents(7);
        let plan = presign(&agents, 3, shape(), &DOMAIN, &ProgressBar::hidden());
        assert_eq!(plan.len(), 3);
        assert_eq!(plan.iter().map(Vec::len).sum::<usize>(), 7 * 4);
        let mut next_nonce: HashMap<AccountIndex, u64> = HashMap::new();
        for (stream, txs) in plan.iter().enumerate() {
            for p in txs {
                let position = (p.tx.from.0 - 10) as usize;
                assert_eq!(position % 3, stream, "agent a sends on stream a mod K");
                let expected = next_nonce.entry(p.tx.from).or_default();
                assert_eq!(p.tx.nonce.get(), *expected, "nonces in send order");
                *expected += 1;
                assert_ne!(p.tx.to, p.tx.from);
                assert!((10..17).contains(&p.tx.to.0));
                assert!((1..=100).contains(&p.tx.amount.get()));
            }
        }
        assert!(next_nonce.values().all(|&n| n == 4));
    }

    #[test]
    fn transfers_are_signed_by_their_sender_and_ids_match() {
        let agents = agents(3);
        let plan = presign(&agents, 2, shape(), &DOMAIN, &ProgressBar::hidden());
        for p in plan.iter().flatten() {
            let tx = Transaction::Transfer(p.tx);
            assert_eq!(TxId::from(tx.id(&DOMAIN)), p.id);
            let key = agents[(p.tx.from.0 - 10) as usize].key.public_key();
            tx.verify_signature(&DOMAIN, &key).unwrap();
        }
    }

    #[test]
    fn funding_covers_the_worst_case_and_overflow_is_caught() {
        assert_eq!(funding_per_agent(&shape()).unwrap().get(), 4 * 102);
        let huge = Shape {
            per_agent: u64::MAX / 2,
            ..shape()
        };
        assert_eq!(funding_per_agent(&huge), None);
    }
}
