//! The simulated agents: fresh keys, registered on the node and funded from the devnet faucet.

use std::future::Future;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt, TryStreamExt};
use rollup_client::{AccountIndex, Amount, Client, SecretKey, Timestamp};

use crate::progress;

/// Concurrent unary calls while registering and funding: enough to fill the node's group
/// commits, few enough not to trip its back-pressure.
const CONCURRENCY: usize = 64;

/// Attempts of one call that meets back-pressure before the whole phase fails.
const ATTEMPTS: u32 = 20;

/// One simulated agent.
pub struct Agent {
    pub key: SecretKey,
    pub index: AccountIndex,
}

/// Registers `count` agents with fresh random keys, `CONCURRENCY` `Submit`s at a time.
pub async fn register(client: &Client, count: u32) -> anyhow::Result<Vec<Agent>> {
    let bar = progress::counter(count.into(), "register");
    let valid_until = client.deadline_in(Duration::from_secs(3600));
    let agents: Vec<Agent> = stream::iter(0..count)
        .map(|_| register_one(client, valid_until))
        .buffer_unordered(CONCURRENCY)
        .inspect_ok(|_| bar.inc(1))
        .try_collect()
        .await?;
    bar.finish_and_clear();
    Ok(agents)
}

async fn register_one(client: &Client, valid_until: Timestamp) -> anyhow::Result<Agent> {
    let key = SecretKey::random(&mut rand_core::OsRng);
    let registered = with_retries(|| client.register(&key, Some(valid_until)))
        .await
        .context("registering an agent")?;
    Ok(Agent {
        key,
        index: registered.index,
    })
}

/// Registers one owner, funds it through the faucet, and delegates `count` agents with fresh
/// keys, each funded with `amount` and bound by a policy that payments of at most
/// `max_payment` with a fee of at most `max_fee` keep to (SPEC 20.2). The delegations are the
/// owner's consecutive nonces, sent one after the other.
pub async fn delegate(
    client: &Client,
    count: u32,
    amount: Amount,
    max_payment: u64,
    max_fee: Amount,
) -> anyhow::Result<Vec<Agent>> {
    let owner = register(client, 1).await?.remove(0);
    let total = u64::from(count)
        .checked_mul(amount.get())
        .context("the agents' funding adds up past 2^64")?;
    // The faucet credits at most its maximum per call (the node's --faucet-max, 10^12 by
    // default): fund the owner in parts of that default.
    let part = 1_000_000_000_000u64;
    let mut left = total;
    while left > 0 {
        let now = left.min(part);
        let credit = Amount::new(now).context("a faucet credit above 2^63 - 1")?;
        with_retries(|| client.faucet(owner.index, credit)).await?;
        left -= now;
    }
    let policy = state::passport::Policy {
        cap: Amount::new(amount.get().saturating_mul(2).min(state::account::MAX_U63))
            .unwrap_or(Amount::MAX),
        window: 3600,
        max_payment: Amount::new(max_payment).context("--max-amount above 2^63 - 1")?,
        max_fee,
        expiry: client.deadline_in(Duration::from_secs(24 * 3600)),
        allow: state::passport::AllowList::anyone(),
        card: state::passport::Card::default(),
    };
    let bar = progress::counter(count.into(), "delegate");
    let mut agents = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let key = SecretKey::random(&mut rand_core::OsRng);
        let delegated = with_retries(|| {
            client.delegate(
                &owner.key,
                owner.index,
                key.public_key(),
                amount,
                policy.clone(),
                Amount::ZERO,
            )
        })
        .await
        .context("delegating an agent")?;
        agents.push(Agent {
            key,
            index: delegated.agent,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(agents)
}

/// Credits every agent with `amount` through the faucet.
pub async fn fund(client: &Client, agents: &[Agent], amount: Amount) -> anyhow::Result<()> {
    let bar = progress::counter(agents.len() as u64, "fund");
    stream::iter(agents)
        .map(|agent| async move {
            with_retries(|| client.faucet(agent.index, amount))
                .await
                .with_context(|| format!("funding agent account {}", agent.index))
        })
        .buffer_unordered(CONCURRENCY)
        .inspect_ok(|_| bar.inc(1))
        .try_collect::<Vec<_>>()
        .await?;
    bar.finish_and_clear();
    Ok(())
}

/// Runs `call` again after a short, growing pause while the node pushes back.
async fn with_retries<T, F, Fut>(mut call: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = rollup_client::Result<T>>,
{
    let mut pause = Duration::from_millis(10);
    for _ in 1..ATTEMPTS {
        match call().await {
            Err(e) if e.is_retryable() => {
                tracing::debug!("back-pressure ({e}), retrying in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return Ok(other?),
        }
    }
    match call().await {
        Ok(v) => Ok(v),
        Err(e) if e.is_retryable() => {
            bail!("the node still pushes back after {ATTEMPTS} attempts: {e}")
        }
        Err(e) => Err(e.into()),
    }
}
