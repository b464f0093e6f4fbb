//! The verification ceiling: how many transfers per second this machine can authenticate at
//! all, measured right before the load so that the run's throughput can be read as a fraction
//! of it.
//!
//! The sequencer's bound is Schnorr verification: every transfer is checked by
//! [`VerifiedTx::verify`] on a dedicated rayon pool with one thread per core
//! (`sequencer/src/service.rs`, `prepare`). This does the same work on the same kind of
//! transactions (the run's own pre-signed transfers, message hash included) with a pool of the
//! same size, for a fixed time, and counts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rollup_client::{AccountIndex, Domain, PublicKey, Transaction};
use serde::Serialize;
use state::apply::VerifiedTx;
use state::tx::Transfer;

/// Verifications between two looks at the clock (~2 ms at ~120 us each).
const CLOCK_EVERY: u64 = 16;

/// What the ceiling measurement found.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Ceiling {
    /// Verifications per second over all threads.
    pub tps: f64,
    /// Threads of the pool (one per core, as the node's verifier pool).
    pub threads: usize,
    /// Verifications done.
    pub verified: u64,
    /// Wall time of the measurement (the slowest thread's).
    pub seconds: f64,
}

/// Verifies `sample` over and over (cycling) on `threads` threads for `duration`, each
/// transfer under the key `keys` holds for its sender, exactly as the node's verifier pool
/// does. Fails if a transfer does not verify (the sample would not be what the load sends).
pub fn measure(
    sample: &[Transfer],
    keys: &HashMap<AccountIndex, PublicKey>,
    domain: &Domain,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<Ceiling> {
    if sample.is_empty() {
        bail!("no transfers to measure the verification ceiling with");
    }
    let threads = threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ceiling-{i}"))
        .build()
        .context("building the ceiling's thread pool")?;
    // Each thread starts at its own offset and strides over the sample, so the threads do not
    // verify the same transfer at the same time.
    let per_thread = pool.broadcast(|ctx| {
        let start = Instant::now();
        let mut verified = 0u64;
        let mut i = ctx.index() % sample.len();
        loop {
            let tx = Transaction::Transfer(sample[i]);
            if let Err(e) = VerifiedTx::verify(tx, domain, |a| keys.get(&a).copied()) {
                return Err(format!(
                    "a pre-signed transfer from account {} does not verify: {e}",
                    sample[i].from
                ));
            }
            verified += 1;
            i = (i + ctx.num_threads()) % sample.len();
            if verified.is_multiple_of(CLOCK_EVERY) && start.elapsed() >= duration {
                return Ok((verified, start.elapsed()));
            }
        }
    });
    let mut verified = 0;
    let mut slowest = Duration::ZERO;
    for result in per_thread {
        let (n, elapsed) = result.map_err(anyhow::Error::msg)?;
        verified += n;
        slowest = slowest.max(elapsed);
    }
    let seconds = slowest.as_secs_f64();
    Ok(Ceiling {
        tps: verified as f64 / seconds,
        threads,
        verified,
        seconds,
    })
}

/// The node's verifier pool size: one thread per core (`available_parallelism`, 2 if unknown).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rollup_client::{Amount, Nonce, SecretKey, Timestamp};
    use state::tx::UnsignedTransfer;

    const DOMAIN: Domain = Domain {
        chain_id: 31337,
        rollup: [3; 20],
    };

    fn signed(key: &SecretKey, from: u32, nonce: u64) -> Transfer {
        UnsignedTransfer {
            from: AccountIndex(from),
            to: AccountIndex(from + 1),
            amount: Amount::new(5).unwrap(),
            fee: Amount::ZERO,
            nonce: Nonce::new(nonce).unwrap(),
            valid_until: Timestamp::new(2_000_000_000).unwrap(),
        }
        .sign(&DOMAIN, key)
    }

    #[test]
    fn counts_verifications_on_every_thread_for_the_duration() {
        let key = SecretKey::random(&mut StdRng::seed_from_u64(7));
        let sample: Vec<Transfer> = (0..5).map(|n| signed(&key, 4, n)).collect();
        let keys = HashMap::from([(AccountIndex(4), key.public_key())]);
        let c = measure(&sample, &keys, &DOMAIN, 2, Duration::from_millis(200)).unwrap();
        assert_eq!(c.threads, 2);
        // At least one clock check per thread, so at least CLOCK_EVERY each.
        assert!(c.verified >= 2 * CLOCK_EVERY, "{c:?}");
        assert!(c.seconds >= 0.2, "{c:?}");
        assert!((c.tps - c.verified as f64 / c.seconds).abs() < 1e-6);
    }

    #[test]
    fn a_transfer_that_does_not_verify_fails_the_measurement() {
        let key = SecretKey::random(&mut StdRng::seed_from_u64(8));
        let other = SecretKey::random(&mut StdRng::seed_from_u64(9));
        let sample = vec![signed(&key, 4, 0)];
        // The registered key is not the signer's.
        let keys = HashMap::from([(AccountIndex(4), other.public_key())]);
        let err = measure(&sample, &keys, &DOMAIN, 1, Duration::from_millis(10)).unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
        // An unknown sender fails too.
        let err = measure(
            &sample,
            &HashMap::new(),
            &DOMAIN,
            1,
            Duration::from_millis(10),
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
        assert!(measure(&[], &keys, &DOMAIN, 1, Duration::from_millis(10)).is_err());
    }
}
