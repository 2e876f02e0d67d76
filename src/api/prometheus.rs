//! The HTTP side of the Prometheus metrics: `GET /metrics` (off unless
//! configured; behind an API key of any role when authentication is on),
//! and the middleware that times every RPC on every transport.
//!
//! Must not depend on the handlers, the store or the harvester; it only
//! renders `telemetry`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tonic::metadata::MetadataMap;
use tonic::Code;

use super::auth::Access;
use crate::telemetry;

/// `GET /metrics` in the Prometheus text format.
pub fn router(access: Arc<Access>) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(access)
}

async fn scrape(State(access): State<Arc<Access>>, headers: HeaderMap) -> Response {
    if let Err(refused) = access.authenticate(&MetadataMap::from_headers(headers)) {
        return super::json::error_response(&refused.into());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], telemetry::handle().render()).into_response()
}

/// The RPC a path names, on gRPC, gRPC-Web or the JSON mapping.
fn rpc_name(path: &str) -> Option<&'static str> {
    const METHODS: [&str; 8] = [
        "GetMetrics",
        "ListProjects",
        "Refresh",
        "GetRefreshStatus",
        "WatchRefresh",
        "GetDefinitions",
        "ValidateDefinitions",
        "UpdateDefinitions",
    ];
    if let Some(method) = path.strip_prefix("/dora.v1.DoraMetrics/") {
        return METHODS.iter().find(|m| **m == method).copied();
    }
    Some(match path {
        "/v1/metrics" | "/v1/metrics:get" => "GetMetrics",
        "/v1/projects" => "ListProjects",
        "/v1/refresh" => "Refresh",
        "/v1/definitions" => "GetDefinitions",
        "/v1/definitions:validate" => "ValidateDefinitions",
        "/v1/definitions:update" => "UpdateDefinitions",
        p if p.starts_with("/v1/refresh/") && p.ends_with(":watch") => "WatchRefresh",
        p if p.starts_with("/v1/refresh/") => "GetRefreshStatus",
        _ => return None,
    })
}

/// The gRPC code of a response: `grpc-status` in the headers (an error
/// answers trailers-only), else the HTTP status of the JSON mapping, else OK
/// (a successful gRPC answer sends its status in the trailers).
fn code_of(response: &Response) -> Code {
    if let Some(code) = response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok()) {
        return Code::from_i32(code);
    }
    match response.status() {
        s if s.is_success() => Code::Ok,
        StatusCode::BAD_REQUEST => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::NOT_IMPLEMENTED => Code::Unimplemented,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// Counts and times each RPC by method and code.
pub async fn observe(request: Request, next: Next) -> Response {
    let Some(method) = rpc_name(request.uri().path()) else {
        return next.run(request).await;
    };
    let started = Instant::now();
    let response = next.run(request).await;
    telemetry::rpc(method, code_of(&response), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::rpc_name;

    #[test]
    fn every_transport_names_the_same_rpc() {
        assert_eq!(rpc_name("/dora.v1.DoraMetrics/GetMetrics"), Some("GetMetrics"));
        assert_eq!(rpc_name("/v1/metrics"), Some("GetMetrics"));
        assert_eq!(rpc_name("/v1/refresh/job-1:watch"), Some("WatchRefresh"));
        assert_eq!(rpc_name("/v1/refresh/job-1"), Some("GetRefreshStatus"));
        assert_eq!(rpc_name("/dora.v1.DoraMetrics/Nope"), None);
        assert_eq!(rpc_name("/grpc.health.v1.Health/Check"), None);
        assert_eq!(rpc_name("/app.js"), None);
    }
}
