//! The block explorer: a web page served by the node itself (README "Explorer").
//!
//! Plain HTML, CSS and JavaScript with no build step and no framework, compiled into the
//! binary (`include_str!`) and served under `/explorer`; routes inside the page are hash-based
//! (`#/tx/0x..`, `#/account/7`, `#/block/12`, `#/batch/3`). The page reads the node's JSON API
//! ([`api`], plus `/v1/txs`, `/v1/accounts`) and the bridge feed (`/v1/bridge/events`, SSE).
//! Nothing is fetched from elsewhere: every response carries a Content-Security-Policy that
//! allows only the node's own origin.

pub mod api;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::http::HttpState;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

/// Only the node's own origin: no CDN, no inline script or style, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The explorer's routes: the page and its assets, and the JSON endpoints of [`api`].
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route(
            "/explorer",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/explorer/",
            get(|| async { Redirect::permanent("/explorer") }),
        )
        .route(
            "/explorer/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/explorer/style.css",
            get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/explorer/favicon.svg",
            get(|| async { asset(FAVICON_SVG, "image/svg+xml") }),
        )
        .merge(api::routes())
}

/// A static asset with the security headers. The assets change only with the binary; a short
/// cache lifetime keeps reloads fast without serving a stale page after an upgrade.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
        ],
        body,
    )
        .into_response()
}
