//! The dashboard: static files built into the binary and served at `/` with
//! a strict Content-Security-Policy. The page reads the JSON API of
//! [`super::json`] from the same origin; no CDN, no third-party script, no
//! inline script or style.
//!
//! Must not depend on: anything but axum (the page is only files).

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy of every dashboard file: only our own script, styles and
/// requests; images from us or `data:`; no framing, no forms, no base.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const APP_CSS: &str = include_str!("../../web/app.css");
const EXPLAIN_JS: &str = include_str!("../../web/explain.js");
const EXPLAIN_CSS: &str = include_str!("../../web/explain.css");
const FAVICON_SVG: &str = include_str!("../../web/favicon.svg");

/// The dashboard's routes.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { file("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/app.js", get(|| async { file("text/javascript; charset=utf-8", APP_JS) }))
        .route("/app.css", get(|| async { file("text/css; charset=utf-8", APP_CSS) }))
        .route("/explain.js", get(|| async { file("text/javascript; charset=utf-8", EXPLAIN_JS) }))
        .route("/explain.css", get(|| async { file("text/css; charset=utf-8", EXPLAIN_CSS) }))
        .route("/favicon.svg", get(|| async { file("image/svg+xml", FAVICON_SVG) }))
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}
