//! `--x402 settle|verify`: load on the node's x402 facilitator (docs/API.md "x402
//! facilitator") over HTTP, as resource servers would call it.
//!
//! - `settle`: every payer but the first pays the first (the resource server's account) at an
//!   even share of `--rate`, open loop: each settlement is scheduled at a fixed time and its
//!   latency is measured from that time (so a slow node cannot hide queueing by slowing the
//!   load down). A payer has one settlement in flight at a time (its nonces are sequential).
//! - `verify`: `--x402-concurrency` workers verify the payers' first payments in a closed loop
//!   as fast as the node answers (verification applies nothing, so a payment can be verified
//!   again and again; each costs a signature check and a state lookup).
//!
//! Payloads are signed before the clock starts, on all cores; HTTP bodies are serialized then
//! too, so the measured loop only sends bytes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
/// A pre-serialized request body (cheap to clone).
use bytes::Bytes;
use rayon::prelude::*;
use rollup_client::{Amount, Client, Nonce};
use rollup_x402::exact::{ExactPayload, SCHEME};
use rollup_x402::wire::{
    FacilitatorRequest, PaymentPayload, PaymentRequirements, SettleResponse, SupportedResponse,
    VerifyResponse, X402_VERSION,
};
use state::tx::UnsignedTransfer;
use tokio::sync::{Mutex, Semaphore};

use crate::agents::{self, Agent};

/// Which facilitator endpoint the load goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Settle,
    Verify,
}

/// The price of one call in the load (base units).
const PRICE: u64 = 10;

pub struct X402Args {
    pub endpoint: String,
    pub url: String,
    pub mode: Mode,
    pub agents: u32,
    pub tps: u64,
    pub seconds: u64,
    pub concurrency: usize,
}

/// Latency percentiles in milliseconds.
#[derive(serde::Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

#[derive(serde::Serialize)]
pub struct X402Report {
    pub mode: Mode,
    pub seconds: f64,
    /// `settle`: the scheduled rate; `verify`: none (closed loop).
    pub target_tps: Option<u64>,
    pub sent: u64,
    pub ok: u64,
    /// Refusals by x402 reason (or HTTP status when the answer was not a document).
    pub failures: BTreeMap<String, u64>,
    /// Successful answers per second over the measured window.
    pub ok_per_second: f64,
    pub latency_ms: Latency,
    /// The seconds (since the start, by scheduled time) with the slowest answers, worst first:
    /// when the tail happens says more about its cause than its size does.
    pub worst_seconds: Vec<SecondStats>,
    #[serde(skip)]
    pub errors: Vec<String>,
}

/// Answers of one second of the run (by the time they were scheduled or sent).
#[derive(Clone, Copy, Default, serde::Serialize)]
pub struct SecondStats {
    pub second: u64,
    pub answers: u64,
    /// Answers slower than [`SLOW_MS`].
    pub slow: u64,
    pub max_ms: f64,
}

/// What counts as a slow answer in [`SecondStats`]: the facilitator's p99 goal.
pub const SLOW_MS: u64 = 20;

/// How many of the worst seconds a report lists.
const WORST_SECONDS: usize = 5;

impl std::fmt::Display for X402Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.latency_ms;
        writeln!(
            f,
            "x402 {:?}: {} sent, {} ok, {:.0}/s over {:.1} s (target {})",
            self.mode,
            self.sent,
            self.ok,
            self.ok_per_second,
            self.seconds,
            self.target_tps
                .map_or("as fast as answered".to_string(), |t| format!("{t}/s"))
        )?;
        writeln!(
            f,
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            l.p50, l.p90, l.p99, l.p999, l.max
        )?;
        let worst: Vec<String> = self
            .worst_seconds
            .iter()
            .filter(|w| w.slow > 0)
            .map(|w| {
                format!(
                    "s{} ({} of {} over {SLOW_MS} ms, max {:.1})",
                    w.second, w.slow, w.answers, w.max_ms
                )
            })
            .collect();
        if !worst.is_empty() {
            writeln!(f, "slowest seconds: {}", worst.join(", "))?;
        }
        if !self.failures.is_empty() {
            write!(f, "failures: {:?}", self.failures)?;
        }
        Ok(())
    }
}

struct Tally {
    histogram: hdrhistogram::Histogram<u64>,
    sent: u64,
    ok: u64,
    failures: BTreeMap<String, u64>,
    /// Per second of the run, by the request's scheduled (settle) or send (verify) time.
    seconds: Vec<SecondStats>,
}

impl Tally {
    fn record(&mut self, second: u64, micros: u64, outcome: Result<(), String>) {
        let _ = self.histogram.record(micros.max(1));
        let i = second as usize;
        if self.seconds.len() <= i {
            self.seconds.resize(i + 1, SecondStats::default());
        }
        let s = &mut self.seconds[i];
        s.second = second;
        s.answers += 1;
        s.slow += u64::from(micros > SLOW_MS * 1000);
        s.max_ms = s.max_ms.max(micros as f64 / 1000.0);
        self.sent += 1;
        match outcome {
            Ok(()) => self.ok += 1,
            Err(reason) => *self.failures.entry(reason).or_default() += 1,
        }
    }
}

pub async fn run(a: X402Args) -> anyhow::Result<X402Report> {
    if a.agents < 2 {
        bail!("--agents must be at least 2 (a payee and a payer)");
    }
    let client = Client::connect(&a.endpoint).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let supported: SupportedResponse = http
        .get(format!("{}/supported", a.url))
        .send()
        .await
        .with_context(|| format!("GET {}/supported", a.url))?
        .json()
        .await
        .context("the facilitator's /supported")?;
    let kind = supported
        .kind(SCHEME)
        .context("the facilitator does not settle `exact` in x402 v2")?
        .clone();
    let asset = kind.asset().unwrap_or("token").to_owned();

    let agents = agents::register(&client, a.agents).await?;
    let (payee, payers) = agents.split_first().context("no agents")?;
    let payers_count = payers.len() as u64;
    // Settle: each payer's share of the rate; verify: one payment per payer is enough.
    let per_payer = match a.mode {
        Mode::Settle => (a.tps * a.seconds).div_ceil(payers_count) + 1,
        Mode::Verify => 1,
    };
    let funds = Amount::new(per_payer * PRICE + 1).context("funds per payer")?;
    agents::fund(&client, payers, funds).await?;

    let requirements =
        PaymentRequirements::exact(kind.network.clone(), asset, payee.index, PRICE, 600);
    tracing::info!(payers = payers.len(), per_payer, "signing x402 payments");
    let bodies = sign_all(&client, payers, &requirements, per_payer)?;

    let url = format!(
        "{}/{}",
        a.url,
        match a.mode {
            Mode::Settle => "settle",
            Mode::Verify => "verify",
        }
    );
    let tally = Arc::new(Mutex::new(Tally {
        histogram: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)?,
        sent: 0,
        ok: 0,
        failures: BTreeMap::new(),
        seconds: Vec::new(),
    }));
    let permits = Arc::new(Semaphore::new(a.concurrency));
    let started = Instant::now();
    let end = started + Duration::from_secs(a.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    match a.mode {
        Mode::Settle => {
            let interval = Duration::from_secs_f64(payers_count as f64 / a.tps as f64);
            let stagger = Duration::from_secs_f64(1.0 / a.tps as f64);
            for (i, payer_bodies) in bodies.into_iter().enumerate() {
                let (http, url, tally, permits) =
                    (http.clone(), url.clone(), tally.clone(), permits.clone());
                tasks.spawn(async move {
                    let first = started + stagger * i as u32;
                    for (k, body) in payer_bodies.into_iter().enumerate() {
                        let at = first + interval * k as u32;
                        if at >= end {
                            break;
                        }
                        tokio::time::sleep_until(at.into()).await;
                        let _permit = permits.acquire().await;
                        let outcome = post(&http, &url, body, Mode::Settle).await;
                        let micros = at.elapsed().as_micros() as u64;
                        let second = (at - started).as_secs();
                        tally.lock().await.record(second, micros, outcome);
                    }
                });
            }
        }
        Mode::Verify => {
            let bodies: Arc<Vec<Bytes>> = Arc::new(bodies.into_iter().flatten().collect());
            for w in 0..a.concurrency {
                let (http, url, tally, bodies) =
                    (http.clone(), url.clone(), tally.clone(), bodies.clone());
                tasks.spawn(async move {
                    let mut i = w;
                    while Instant::now() < end {
                        let body = bodies[i % bodies.len()].clone();
                        i += a.concurrency;
                        let sent = Instant::now();
                        let outcome = post(&http, &url, body, Mode::Verify).await;
                        let micros = sent.elapsed().as_micros() as u64;
                        let second = (sent - started).as_secs();
                        tally.lock().await.record(second, micros, outcome);
                    }
                });
            }
        }
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a load task panicked")?;
    }
    let seconds = started
        .elapsed()
        .as_secs_f64()
        .min(a.seconds as f64)
        .max(1e-9);
    let t = tally.lock().await;
    let h = &t.histogram;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let mut worst_seconds = t.seconds.clone();
    worst_seconds.sort_by(|a, b| b.max_ms.total_cmp(&a.max_ms));
    worst_seconds.truncate(WORST_SECONDS);
    let mut errors = Vec::new();
    if t.ok == 0 {
        errors.push("no request succeeded".to_string());
    }
    Ok(X402Report {
        mode: a.mode,
        seconds,
        target_tps: (a.mode == Mode::Settle).then_some(a.tps),
        sent: t.sent,
        ok: t.ok,
        failures: t.failures.clone(),
        ok_per_second: t.ok as f64 / seconds,
        latency_ms: Latency {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: h.max() as f64 / 1000.0,
        },
        worst_seconds,
        errors,
    })
}

/// `per_payer` payments per payer (nonces 0, 1, ...), as facilitator request bodies.
fn sign_all(
    client: &Client,
    payers: &[Agent],
    requirements: &PaymentRequirements,
    per_payer: u64,
) -> anyhow::Result<Vec<Vec<Bytes>>> {
    let domain = client.domain();
    let valid_until = client.deadline_in(Duration::from_secs(3600));
    let payee = rollup_client::AccountIndex(requirements.pay_to.parse()?);
    let amount = Amount::new(PRICE).context("price")?;
    payers
        .par_iter()
        .map(|payer| {
            (0..per_payer)
                .map(|n| {
                    let transfer = UnsignedTransfer {
                        from: payer.index,
                        to: payee,
                        amount,
                        fee: Amount::ZERO,
                        nonce: Nonce::new(n).context("nonce")?,
                        valid_until,
                    }
                    .sign(&domain, &payer.key);
                    let request = FacilitatorRequest {
                        x402_version: Some(X402_VERSION),
                        payment_payload: PaymentPayload {
                            x402_version: X402_VERSION,
                            resource: None,
                            accepted: requirements.clone(),
                            payload: serde_json::to_value(ExactPayload::new(&transfer))?,
                            extensions: None,
                        },
                        payment_requirements: requirements.clone(),
                    };
                    Ok(Bytes::from(serde_json::to_vec(&request)?))
                })
                .collect()
        })
        .collect()
}

/// One facilitator call: `Ok` when it verified (or settled), else the reason.
async fn post(http: &reqwest::Client, url: &str, body: Bytes, mode: Mode) -> Result<(), String> {
    let answer = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("http: {e}"))?;
    let status = answer.status().as_u16();
    let bytes = answer.bytes().await.map_err(|e| format!("http: {e}"))?;
    match mode {
        Mode::Settle => match serde_json::from_slice::<SettleResponse>(&bytes) {
            Ok(s) if s.success => Ok(()),
            Ok(s) => Err(s.error_reason.unwrap_or_else(|| format!("status {status}"))),
            Err(_) => Err(format!("status {status}")),
        },
        Mode::Verify => match serde_json::from_slice::<VerifyResponse>(&bytes) {
            Ok(v) if v.is_valid => Ok(()),
            Ok(v) => Err(v
                .invalid_reason
                .unwrap_or_else(|| format!("status {status}"))),
            Err(_) => Err(format!("status {status}")),
        },
    }
}
