//! A tower layer (and axum middleware) that makes routes paid (the x402 resource-server side).
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use rollup_x402::paywall::{require_payment, Paywall};
//! use rollup_x402::PaymentRequirements;
//!
//! # fn demo(requirements: PaymentRequirements) {
//! let paywall = Paywall::new("http://127.0.0.1:8080/x402", vec![requirements])
//!     .with_description("Weather data");
//! // The paywall is a tower layer ...
//! let app: Router = Router::new()
//!     .route("/weather", get(|| async { "sunny" }))
//!     .layer(paywall.clone());
//! // ... or, the same, a middleware function.
//! let same: Router = Router::new()
//!     .route("/weather", get(|| async { "sunny" }))
//!     .layer(axum::middleware::from_fn_with_state(paywall, require_payment));
//! # }
//! ```
//!
//! A request without a `PAYMENT-SIGNATURE` (or with one that does not decode, or that accepted
//! other requirements) is answered 402 with `PAYMENT-REQUIRED`. A payment the facilitator
//! verifies runs the handler; a handler answer below 400 is then settled, and only a settled
//! payment releases it, with `PAYMENT-RESPONSE`. A settlement that fails answers 402 (the
//! handler's answer is dropped); a facilitator that cannot be reached answers 502. This is the
//! order the reference middleware follows ("authorization" flow: verify, serve, settle).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::wire::{
    decode_header, encode_header, FacilitatorRequest, PaymentPayload, PaymentRequired,
    PaymentRequirements, ResourceInfo, SettleResponse, SupportedResponse, VerifyResponse,
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X402_VERSION,
};

/// Why the facilitator could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FacilitatorError {
    #[error("facilitator {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("facilitator {url} answered {status} without an x402 document")]
    Status { url: String, status: u16 },
    #[error("facilitator {url} does not settle {scheme} on {network} (x402 v2)")]
    Unsupported {
        url: String,
        scheme: String,
        network: String,
    },
}

/// The paid routes' terms and the facilitator that verifies and settles their payments.
/// Cheap to clone (shared strings and one HTTP connection pool).
#[derive(Clone)]
pub struct Paywall {
    facilitator: Arc<str>,
    http: reqwest::Client,
    accepts: Arc<[PaymentRequirements]>,
    description: Option<Arc<str>>,
    mime_type: Option<Arc<str>>,
}

impl Paywall {
    /// Routes that accept any of `accepts`, verified and settled by the facilitator at
    /// `facilitator_url` (its `/supported`, `/verify` and `/settle` are below it).
    pub fn new(facilitator_url: impl Into<String>, accepts: Vec<PaymentRequirements>) -> Paywall {
        let facilitator = facilitator_url.into();
        // Settlement waits for durability; a node answers in milliseconds, so 30 s is a
        // facilitator that is gone, not a slow one.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Paywall {
            facilitator: facilitator.trim_end_matches('/').into(),
            http,
            accepts: accepts.into(),
            description: None,
            mime_type: None,
        }
    }

    /// The resource's description in the 402 answer.
    pub fn with_description(mut self, description: impl Into<String>) -> Paywall {
        self.description = Some(description.into().into());
        self
    }

    /// The resource's MIME type in the 402 answer.
    pub fn with_mime_type(mut self, mime_type: impl Into<String>) -> Paywall {
        self.mime_type = Some(mime_type.into().into());
        self
    }

    /// The terms this paywall asks for.
    pub fn accepts(&self) -> &[PaymentRequirements] {
        &self.accepts
    }

    /// Asks the facilitator's `/supported` whether it settles every (scheme, network) this
    /// paywall accepts: call it at start-up to fail early rather than at the first payment.
    pub async fn check_facilitator(&self) -> Result<SupportedResponse, FacilitatorError> {
        let url = format!("{}/supported", self.facilitator);
        let http = |source| FacilitatorError::Http {
            url: url.clone(),
            source,
        };
        let answer = self.http.get(&url).send().await.map_err(http)?;
        if !answer.status().is_success() {
            return Err(FacilitatorError::Status {
                url: url.clone(),
                status: answer.status().as_u16(),
            });
        }
        let supported: SupportedResponse = answer.json().await.map_err(http)?;
        for r in self.accepts.iter() {
            let found = supported.kinds.iter().any(|k| {
                k.x402_version == X402_VERSION && k.scheme == r.scheme && k.network == r.network
            });
            if !found {
                return Err(FacilitatorError::Unsupported {
                    url: url.clone(),
                    scheme: r.scheme.clone(),
                    network: r.network.clone(),
                });
            }
        }
        Ok(supported)
    }

    fn payment_required(&self, resource: ResourceInfo, error: impl Into<String>) -> Response {
        let body = PaymentRequired {
            x402_version: X402_VERSION,
            error: Some(error.into()),
            resource: Some(resource),
            accepts: self.accepts.to_vec(),
            extensions: None,
        };
        let mut r = (
            StatusCode::PAYMENT_REQUIRED,
            axum::Json(serde_json::json!({})),
        )
            .into_response();
        set_header(&mut r, PAYMENT_REQUIRED, &encode_header(&body));
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    /// POSTs `body` to the facilitator's `path`; an x402 document in a non-2xx answer is still
    /// the facilitator's verdict.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &FacilitatorRequest,
    ) -> Result<T, FacilitatorError> {
        let url = format!("{}/{path}", self.facilitator);
        let http = |source| FacilitatorError::Http {
            url: url.clone(),
            source,
        };
        let answer = self.http.post(&url).json(body).send().await.map_err(http)?;
        let status = answer.status().as_u16();
        let bytes = answer.bytes().await.map_err(http)?;
        serde_json::from_slice(&bytes).map_err(|_| FacilitatorError::Status { url, status })
    }
}

fn set_header(r: &mut Response, name: &'static str, value: &str) {
    // Base64 is always a valid header value.
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn bad_gateway(e: &FacilitatorError) -> Response {
    tracing::warn!(error = %e, "x402 facilitator unavailable");
    let body = serde_json::json!({
        "type": "https://rollup.invalid/problems/facilitator_unavailable",
        "title": "FACILITATOR_UNAVAILABLE",
        "status": 502,
        "detail": e.to_string(),
    });
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// The middleware as a function (use with
/// `axum::middleware::from_fn_with_state(paywall, require_payment)`); the [`Paywall`] itself is
/// also a tower `Layer` (`route.layer(paywall)`).
pub async fn require_payment(State(paywall): State<Paywall>, req: Request, next: Next) -> Response {
    paywall.handle(req, |req| next.run(req)).await
}

impl<S> tower::Layer<S> for Paywall {
    type Service = PaywallService<S>;

    fn layer(&self, inner: S) -> PaywallService<S> {
        PaywallService {
            paywall: self.clone(),
            inner,
        }
    }
}

/// The service a [`Paywall`] layer wraps around a route's service.
#[derive(Clone)]
pub struct PaywallService<S> {
    paywall: Paywall,
    inner: S,
}

impl<S> tower::Service<Request> for PaywallService<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The ready inner service answers this request; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let paywall = self.paywall.clone();
        Box::pin(async move {
            let run = |req| async move {
                match inner.call(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            };
            Ok(paywall.handle(req, run).await)
        })
    }
}

impl Paywall {
    /// 402 unless paid; verify, `run` the route, settle (see the module docs).
    async fn handle<F, Fut>(&self, req: Request, run: F) -> Response
    where
        F: FnOnce(Request) -> Fut,
        Fut: std::future::Future<Output = Response>,
    {
        let paywall = self;
        let resource = ResourceInfo {
            url: resource_url(&req),
            description: paywall.description.as_deref().map(str::to_owned),
            mime_type: paywall.mime_type.as_deref().map(str::to_owned),
        };
        let Some(header) = req.headers().get(PAYMENT_SIGNATURE) else {
            return paywall.payment_required(resource, "Payment required");
        };
        let payment: PaymentPayload = match decode_header(header.as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                return paywall.payment_required(resource, format!("invalid_payload: {e}"));
            }
        };
        if payment.x402_version != X402_VERSION {
            return paywall.payment_required(resource, "invalid_x402_version");
        }
        let Some(requirements) = paywall
            .accepts
            .iter()
            .find(|r| r.is_accepted_by(&payment.accepted))
            .cloned()
        else {
            return paywall.payment_required(resource, "No matching payment requirements");
        };
        let call = FacilitatorRequest {
            x402_version: Some(X402_VERSION),
            payment_payload: payment,
            payment_requirements: requirements,
        };
        let verdict: VerifyResponse = match paywall.call("verify", &call).await {
            Ok(v) => v,
            Err(e) => return bad_gateway(&e),
        };
        if !verdict.is_valid {
            let reason = verdict
                .invalid_reason
                .unwrap_or_else(|| "invalid_payload".into());
            return paywall.payment_required(resource, reason);
        }
        let response = run(req).await;
        if response.status().as_u16() >= 400 {
            // Nothing served, nothing charged: the signed payment is never submitted.
            return response;
        }
        let settled: SettleResponse = match paywall.call("settle", &call).await {
            Ok(s) => s,
            Err(e) => return bad_gateway(&e),
        };
        if !settled.success {
            let mut r = paywall.payment_required(
                resource,
                settled
                    .error_reason
                    .clone()
                    .unwrap_or_else(|| "unexpected_settle_error".into()),
            );
            set_header(&mut r, PAYMENT_RESPONSE, &encode_header(&settled));
            return r;
        }
        let (mut parts, body) = response.into_parts();
        if let Ok(v) = HeaderValue::from_str(&encode_header(&settled)) {
            parts.headers.insert(PAYMENT_RESPONSE, v);
        }
        Response::from_parts(parts, Body::new(body))
    }
}

/// The requested URL as the client addressed it (scheme-less hosts are assumed `http`).
fn resource_url(req: &Request) -> String {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    format!("http://{host}{path}")
}
