//! `loadtest --lane L --key FILE --to N`: one worker of an account that pays from one nonce lane
//! (SPEC 20.1), sharing nothing with the account's other workers but the key.
//!
//! Eight such processes, one per lane, pay from one account at once without coordinating
//! nonces; `loadtest/lanes-bench.sh` runs them and adds their reports up (the goal:
//! 8 x 500 payments per second from one account for a minute, with zero `BAD_NONCE`). The node
//! must accept lanes (`--devnet --experimental-agents`).
//!
//! The worker asks the node for its lane's next nonce, pre-signs its transfers (1 unit each to
//! the payee) before the clock starts, and sends them over one payment stream at its rate with
//! the main driver, whose report lists every rejection by reason.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rayon::prelude::*;
use rollup_client::{AccountIndex, Amount, Client, KeyFile, Nonce};
use state::lanes::Lane;
use state::tx::{Transfer, UnsignedTransfer};
use tokio_util::sync::CancellationToken;

use crate::driver::{self, Live, Settings, Timeline};
use crate::plan::Planned;
use crate::report::{Report, RunInfo};

/// What one lane worker is told.
pub struct LaneArgs {
    pub endpoint: String,
    pub key: std::path::PathBuf,
    pub lane: u8,
    pub to: u32,
    pub rate: u64,
    pub seconds: u64,
    pub warmup: u64,
    pub window: usize,
}

pub async fn run(args: LaneArgs) -> anyhow::Result<Report> {
    let lane = Lane::new(args.lane).context("--lane must be 0 to 7")?;
    let file = KeyFile::load(&args.key)?;
    let from = file
        .account_index
        .with_context(|| format!("{} has no account index", args.key.display()))?;
    let client = Client::connect(&args.endpoint).await?;
    let first = client.next_nonce_in_lane(from, lane).await?;
    let count = args.rate.saturating_mul(args.warmup + args.seconds) * 11 / 10;
    let domain = client.domain();
    let secret = file.secret_key().clone();
    let valid_until = client.deadline_in(Duration::from_secs(args.warmup + args.seconds + 3600));
    let to = AccountIndex(args.to);
    if to == from {
        bail!("--to is the paying account itself");
    }
    let began = Instant::now();
    let txs: Vec<Planned> = tokio::task::spawn_blocking(move || {
        (0..count)
            .into_par_iter()
            .map(|i| {
                let nonce = Nonce::in_lane(lane, first.seq() + i).unwrap_or(Nonce::MAX);
                let unsigned = UnsignedTransfer {
                    from,
                    to,
                    amount: Amount::new(1).unwrap_or(Amount::ZERO),
                    fee: Amount::ZERO,
                    nonce,
                    valid_until,
                };
                let hash = unsigned.message_hash(&domain);
                Planned {
                    tx: Transfer {
                        from,
                        to,
                        amount: unsigned.amount,
                        fee: unsigned.fee,
                        nonce,
                        valid_until,
                        signature: secret.sign(&hash),
                    },
                    id: hash.into(),
                }
            })
            .collect()
    })
    .await
    .context("the signing task failed")?;
    tracing::info!(
        lane = args.lane,
        "pre-signed {count} transfers from nonce {:#x} in {:.1} s",
        first.get(),
        began.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let timeline = Timeline {
        start,
        measure_from,
        stop_at: measure_from + Duration::from_secs(args.seconds),
    };
    let settings = Settings {
        window: args.window,
        rate: Some(args.rate as f64),
        drain_timeout: Duration::from_secs(30),
    };
    let live = Arc::new(Live::default());
    let stop = CancellationToken::new();
    let stats = driver::drive(0, client, txs, settings, timeline, &live, stop).await;
    let run = RunInfo {
        endpoint: args.endpoint,
        agents: 1,
        streams: 1,
        window: args.window,
        target_rate: Some(args.rate),
        warmup_s: args.warmup as f64,
        presigned: count,
    };
    Ok(Report::new(
        run,
        vec![stats],
        measure_from,
        timeline.stop_at,
    ))
}
