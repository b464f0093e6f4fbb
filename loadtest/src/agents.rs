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
