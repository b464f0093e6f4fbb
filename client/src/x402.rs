//! Paying for HTTP resources with x402 v2: a request answered `402 Payment Required` is paid
//! with one signed transfer and retried, within a budget.
//!
//! ```no_run
//! use rollup_client::x402::{Budget, X402Payer};
//! use rollup_client::{Amount, Client, KeyFile};
//!
//! # async fn demo(key: KeyFile) -> Result<(), Box<dyn std::error::Error>> {
//! let node = Client::connect("http://127.0.0.1:50051").await?;
//! let budget = Budget::new(Amount::new(5_000).unwrap(), 100_000);
//! let payer = X402Payer::new(node, key.secret_key().clone(), 7.into(), budget);
//! let answer = payer.get("http://127.0.0.1:4021/weather").await?;
//! println!("{} {}", answer.status, String::from_utf8_lossy(&answer.body));
//! # Ok(())
//! # }
//! ```
//!
//! Only requirements in the `exact` scheme on the connected rollup's network are paid (the
//! network id is derived from the node's signing domain, so a server for another rollup or
//! chain is never paid). The amount must fit both the per-payment cap and what is left of the
//! total budget; it is reserved before signing and given back only when the server shows that
//! nothing was settled (a 402 without a successful `PAYMENT-RESPONSE`). Payments of one payer
//! are made one at a time (each takes the account's next nonce); use one payer per account.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;
use rollup_x402::exact::{network_id, ExactPayload, SCHEME};
use rollup_x402::wire::{
    decode_header, encode_header, PaymentPayload, PaymentRequired, PaymentRequirements,
    SettleResponse, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X402_VERSION,
};
use state::account::{AccountIndex, Amount};
use state::crypto::schnorr::SecretKey;
use state::tx::UnsignedTransfer;
use tokio::sync::Mutex;

use crate::client::Client;

/// How much a payer may spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The most one resource may cost.
    pub per_payment: Amount,
    /// The most all payments together may cost (fees included).
    pub total: u64,
}

impl Budget {
    pub fn new(per_payment: Amount, total: u64) -> Budget {
        Budget { per_payment, total }
    }
}

/// What can go wrong paying for a resource.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    #[error("HTTP request to {url} failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// Talking to the rollup node (nonce, status) failed.
    #[error(transparent)]
    Rollup(#[from] crate::Error),
    /// The 402 answer offered nothing this payer can pay (another scheme, network or rollup).
    #[error("{url} asks for a payment this wallet cannot make (offered: {offered})")]
    NoAcceptableRequirements { url: String, offered: String },
    /// The price is above the per-payment cap or what is left of the budget.
    #[error("{url} costs {amount}, over the {which} ({available} available)")]
    OverBudget {
        url: String,
        amount: u64,
        which: &'static str,
        available: u64,
    },
    /// The server's x402 header does not decode.
    #[error("{url} sent an invalid {header} header: {detail}")]
    BadHeader {
        url: String,
        header: &'static str,
        detail: String,
    },
    /// The server refused the payment (402 again): `reason` is the x402 reason it gave,
    /// `settlement` its `PAYMENT-RESPONSE` when settlement was attempted.
    #[error("{url} refused the payment: {reason}")]
    Refused {
        url: String,
        reason: String,
        settlement: Option<Box<SettleResponse>>,
    },
}

/// A payment that was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// The terms paid.
    pub requirements: PaymentRequirements,
    /// The server's `PAYMENT-RESPONSE`: the settled transaction id and its finality.
    pub settlement: SettleResponse,
}

/// The resource's answer.
#[derive(Debug)]
pub struct PaidResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// `None` when the resource was free (no 402).
    pub payment: Option<Payment>,
}

struct Ledger {
    /// Reserved or spent, fees included.
    spent: u64,
}

/// An HTTP client that pays x402 `exact` requirements on the connected rollup.
pub struct X402Payer {
    node: Client,
    key: SecretKey,
    account: AccountIndex,
    http: reqwest::Client,
    network: String,
    fee: Amount,
    budget: Budget,
    /// Held for a whole payment: one nonce at a time, and the budget checked and reserved
    /// atomically.
    ledger: Mutex<Ledger>,
}

impl X402Payer {
    /// A payer spending from `account` (whose key is `key`) on the node `node` is connected to.
    pub fn new(node: Client, key: SecretKey, account: AccountIndex, budget: Budget) -> X402Payer {
        let network = network_id(&node.domain());
        X402Payer {
            node,
            key,
            account,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
            network,
            fee: Amount::ZERO,
            budget,
            ledger: Mutex::new(Ledger { spent: 0 }),
        }
    }

    /// The operator fee added to each payment (default zero).
    pub fn with_fee(mut self, fee: Amount) -> X402Payer {
        self.fee = fee;
        self
    }

    /// The CAIP-2 network id this payer pays on.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// What has been spent or reserved so far, fees included.
    pub async fn spent(&self) -> u64 {
        self.ledger.lock().await.spent
    }

    /// `GET url`, paying if the server asks.
    pub async fn get(&self, url: &str) -> Result<PaidResponse, PayError> {
        self.fetch(Method::GET, url, None).await
    }

    /// `method url` with an optional body, paying if the server asks.
    pub async fn fetch(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<PaidResponse, PayError> {
        let first = self.send(&method, url, body.clone(), None).await?;
        if first.status().as_u16() != 402 {
            return answer(url, first, None).await;
        }
        let offer = required(url, first.headers())?;
        let requirements = self.choose(url, &offer)?;
        let amount = requirements.amount.parse::<u64>().unwrap_or(u64::MAX);
        let mut ledger = self.ledger.lock().await;
        let cost = amount.saturating_add(self.fee.get());
        if amount > self.budget.per_payment.get() {
            return Err(PayError::OverBudget {
                url: url.into(),
                amount,
                which: "per-payment cap",
                available: self.budget.per_payment.get(),
            });
        }
        let available = self.budget.total.saturating_sub(ledger.spent);
        if cost > available {
            return Err(PayError::OverBudget {
                url: url.into(),
                amount: cost,
                which: "budget",
                available,
            });
        }
        let payment = self
            .sign(&requirements, amount, offer.resource.clone())
            .await?;
        // Reserved before the payment leaves: if the answer is lost it may have settled.
        ledger.spent += cost;
        let second = self
            .send(&method, url, body, Some(encode_header(&payment)))
            .await?;
        let settlement = match second.headers().get(PAYMENT_RESPONSE) {
            Some(h) => Some(decode_header::<SettleResponse>(h.as_bytes()).map_err(|e| {
                PayError::BadHeader {
                    url: url.into(),
                    header: "PAYMENT-RESPONSE",
                    detail: e.to_string(),
                }
            })?),
            None => None,
        };
        match settlement {
            Some(s) if s.success => {
                let paid = Payment {
                    requirements,
                    settlement: s,
                };
                answer(url, second, Some(paid)).await
            }
            settlement => {
                // The server says it did not settle (or never tried): nothing was paid.
                ledger.spent -= cost;
                let reason = match (&settlement, second.status().as_u16()) {
                    (Some(s), _) => s.error_reason.clone().unwrap_or_default(),
                    (None, 402) => required(url, second.headers())
                        .ok()
                        .and_then(|p| p.error)
                        .unwrap_or_else(|| "payment refused".into()),
                    (None, status) => format!("answered {status} without a settlement"),
                };
                Err(PayError::Refused {
                    url: url.into(),
                    reason,
                    settlement: settlement.map(Box::new),
                })
            }
        }
    }

    /// The first offered requirement this payer can pay.
    fn choose(&self, url: &str, offer: &PaymentRequired) -> Result<PaymentRequirements, PayError> {
        offer
            .accepts
            .iter()
            .find(|r| {
                r.scheme == SCHEME
                    && r.network == self.network
                    && r.pay_to.parse::<u32>().is_ok()
                    && r.amount.parse::<u64>().is_ok_and(|a| a > 0)
            })
            .cloned()
            .ok_or_else(|| PayError::NoAcceptableRequirements {
                url: url.into(),
                offered: offer
                    .accepts
                    .iter()
                    .map(|r| format!("{} on {}", r.scheme, r.network))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    async fn sign(
        &self,
        requirements: &PaymentRequirements,
        amount: u64,
        resource: Option<rollup_x402::ResourceInfo>,
    ) -> Result<PaymentPayload, PayError> {
        let to = requirements.pay_to.parse::<u32>().map(AccountIndex).ok();
        let amount = Amount::new(amount);
        let (Some(to), Some(amount)) = (to, amount) else {
            return Err(crate::Error::protocol("x402 requirements", "payTo or amount").into());
        };
        let nonce = self.node.next_nonce(self.account).await?;
        let valid_for = Duration::from_secs(requirements.max_timeout_seconds.clamp(1, 3600));
        let transfer = UnsignedTransfer {
            from: self.account,
            to,
            amount,
            fee: self.fee,
            nonce,
            valid_until: self.node.deadline_in(valid_for),
        }
        .sign(&self.node.domain(), &self.key);
        let payload = serde_json::to_value(ExactPayload::new(&transfer))
            .map_err(|e| crate::Error::protocol("x402 payload", e.to_string()))?;
        Ok(PaymentPayload {
            x402_version: X402_VERSION,
            resource,
            accepted: requirements.clone(),
            payload,
            extensions: None,
        })
    }

    async fn send(
        &self,
        method: &Method,
        url: &str,
        body: Option<Vec<u8>>,
        payment: Option<String>,
    ) -> Result<reqwest::Response, PayError> {
        let mut request = self.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request.body(body);
        }
        if let Some(p) = payment {
            request = request.header(PAYMENT_SIGNATURE, p);
        }
        request.send().await.map_err(|source| PayError::Http {
            url: url.into(),
            source,
        })
    }
}

fn required(url: &str, headers: &HeaderMap) -> Result<PaymentRequired, PayError> {
    let bad = |detail: String| PayError::BadHeader {
        url: url.into(),
        header: "PAYMENT-REQUIRED",
        detail,
    };
    let h = headers
        .get(PAYMENT_REQUIRED)
        .ok_or_else(|| bad("missing on a 402 answer".into()))?;
    decode_header(h.as_bytes()).map_err(|e| bad(e.to_string()))
}

async fn answer(
    url: &str,
    r: reqwest::Response,
    payment: Option<Payment>,
) -> Result<PaidResponse, PayError> {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.map_err(|source| PayError::Http {
        url: url.into(),
        source,
    })?;
    Ok(PaidResponse {
        status,
        headers,
        body: body.to_vec(),
        payment,
    })
}
