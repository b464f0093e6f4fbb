//! Operator-grade failure modes (issue 10): each test here failed on the node before the fix.
//! They live in the `node` test binary (one binary for the node's end-to-end tests: CI time
//! is spent linking binaries).

pub mod chaos;
pub mod hardening;
pub mod limits;
pub mod snapshots;

use std::time::{Duration, Instant};

/// The value of an unlabelled counter or gauge on `/metrics` (0 when absent).
pub async fn metric(http: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{http}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse::<f64>().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Waits until `cond` holds, polling every 50 ms; panics with `what` after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /readyz` status code (0 when the node does not answer).
pub async fn readyz(http: &str) -> u16 {
    match reqwest::get(format!("{http}/readyz")).await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}
