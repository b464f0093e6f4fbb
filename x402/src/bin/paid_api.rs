//! `rollup-paid-api`: a demo HTTP API whose `/weather` costs a fixed price, paid with x402 v2
//! through a facilitator (the rollup node's `/x402`). The devnet runs it and one agent buys
//! from it with `rollup fetch`.
//!
//! ```sh
//! rollup-paid-api --facilitator http://127.0.0.1:8080/x402 --pay-to 2 --price 1000
//! ```

use std::net::SocketAddr;

use anyhow::Context;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use rollup_x402::paywall::{require_payment, Paywall};
use rollup_x402::wire::{PaymentRequirements, SupportedResponse};
use rollup_x402::SCHEME;

#[derive(Parser)]
#[command(
    name = "rollup-paid-api",
    about = "A demo API paid with x402 v2 in rollup transfers: /weather costs --price, /free is free."
)]
struct Args {
    /// Address to serve on.
    #[arg(long, env = "PAID_API_ADDR", default_value = "127.0.0.1:4021")]
    addr: SocketAddr,
    /// The facilitator's base URL (the node's HTTP address + /x402).
    #[arg(
        long,
        env = "PAID_API_FACILITATOR",
        default_value = "http://127.0.0.1:8080/x402"
    )]
    facilitator: String,
    /// The account index paid for each call.
    #[arg(long, env = "PAID_API_PAY_TO")]
    pay_to: u32,
    /// The price of one call, in base units of the settlement token.
    #[arg(long, env = "PAID_API_PRICE", default_value_t = 1000)]
    price: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    // The network and asset are the facilitator's: ask it, so the terms are always ones it
    // settles.
    let supported: SupportedResponse = reqwest::get(format!("{}/supported", args.facilitator))
        .await
        .context("asking the facilitator's /supported")?
        .json()
        .await
        .context("the facilitator's /supported")?;
    let kind = supported
        .kind(SCHEME)
        .context("the facilitator does not settle `exact` in x402 v2")?;
    let asset = kind.asset().unwrap_or("token");
    let terms = PaymentRequirements::exact(
        kind.network.clone(),
        asset,
        state::account::AccountIndex(args.pay_to),
        args.price,
        60,
    );
    let paywall = Paywall::new(&args.facilitator, vec![terms.clone()])
        .with_description("Today's weather, per call")
        .with_mime_type("application/json");
    paywall.check_facilitator().await?;
    let app = Router::new()
        .route(
            "/weather",
            get(|| async { Json(serde_json::json!({"weather": "sunny", "temperature": 21})) }),
        )
        .layer(axum::middleware::from_fn_with_state(
            paywall,
            require_payment,
        ))
        .route("/free", get(|| async { "free" }));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    tracing::info!(addr = %args.addr, network = %terms.network, pay_to = args.pay_to,
        price = args.price, "paid API listening: /weather is paid, /free is not");
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await?;
    Ok(())
}
