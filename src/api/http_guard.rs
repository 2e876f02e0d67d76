//! What the port refuses before any handler runs, on every transport:
//!
//! - a header block larger than [`MAX_METADATA_BYTES`] (HTTP/2
//!   enforces it in the protocol; this holds it for HTTP/1.1 too): 431;
//! - with authentication off (only ever on a loopback address), a `Host`
//!   that is not a loopback name or address: a page on another site that
//!   rebinds its own name to 127.0.0.1 gets 403 instead of the figures;
//! - an `Origin` other than the service's own (`http(s)://` + its `Host`)
//!   or one of `http.allowed_origins`: 403, so no other site's page can
//!   make a browser call the API, even one that needs no preflight;
//! - a JSON request body (`POST /v1/…`) not sent as `application/json`:
//!   415, so a `text/plain` form or `fetch` without a preflight cannot
//!   start a refresh or change definitions.
//!
//! gRPC and gRPC-Web callers get a gRPC status, others the JSON error body
//! (`status::Refused`).
//! Must not depend on: the handlers, `store`, `harvest` (it looks only at
//! the request's head).

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use axum::http::{HeaderMap, Method, StatusCode, header};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Service;

use super::layered::{Decide, PassOrHere};
use super::status::Refused;
use crate::config::normalise_origin;

/// Largest header block (metadata) accepted, on HTTP/2 and HTTP/1.1.
pub const MAX_METADATA_BYTES: u32 = 16 * 1024;

/// The checks of one service.
#[derive(Debug, Clone)]
pub struct HttpGuard {
    /// Accept only loopback `Host` values (authentication is off).
    pub loopback_hosts_only: bool,
    /// The port speaks TLS: the own origin is `https://`.
    pub tls: bool,
    /// Origins of other pages allowed to call, e.g. a gateway's, as
    /// `scheme://host[:port]`, lower case.
    pub allowed_origins: Vec<String>,
}

/// The size of a header block as HTTP/2 counts it: names, values and 32
/// octets per field.
fn header_block_size(headers: &HeaderMap) -> usize {
    headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 32).sum()
}

/// Is `host` (a `Host` value: name or address, maybe with a port) a
/// loopback name or address?
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.strip_prefix(':').is_some_and(is_port) => {
                return v6.parse::<Ipv6Addr>().is_ok_and(|a| a.is_loopback());
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The `Host` a request was sent to: the header (HTTP/1.1), else the
/// URI's authority (HTTP/2's `:authority`).
fn host_of<B>(request: &http::Request<B>) -> Option<&str> {
    match request.headers().get(header::HOST) {
        Some(v) => v.to_str().ok(),
        None => request.uri().authority().map(|a| a.as_str()),
    }
}

impl HttpGuard {
    /// Why `request` is refused, if it is.
    fn refusal<B>(&self, request: &http::Request<B>) -> Option<(StatusCode, Refused)> {
        if header_block_size(request.headers()) > MAX_METADATA_BYTES as usize {
            return Some((StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, Refused::HeadersTooLarge(MAX_METADATA_BYTES)));
        }
        let host = host_of(request);
        if self.loopback_hosts_only && !host.is_some_and(is_loopback_host) {
            return Some((StatusCode::FORBIDDEN, Refused::NotLoopbackHost));
        }
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let origin = normalise_origin(origin.to_str().unwrap_or(""));
            let scheme = if self.tls { "https" } else { "http" };
            let own = host.is_some_and(|h| origin == format!("{scheme}://{}", h.to_ascii_lowercase()));
            if !own && !self.allowed_origins.contains(&origin) {
                return Some((StatusCode::FORBIDDEN, Refused::ForeignOrigin));
            }
        }
        if request.method() == Method::POST && request.uri().path().starts_with("/v1/") {
            let json = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Some((StatusCode::UNSUPPORTED_MEDIA_TYPE, Refused::NotJson));
            }
        }
        None
    }
}

/// The port's first layer (`layered`): refuses as [`HttpGuard`] says, else
/// passes on.
#[derive(Clone)]
pub struct Guarded(pub Arc<HttpGuard>);

impl Decide for Guarded {
    fn decide<S>(&self, inner: &mut S, request: http::Request<Body>) -> PassOrHere<S::Future>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
        S::Future: Send + 'static,
    {
        match self.0.refusal(&request) {
            None => PassOrHere::Pass { future: inner.call(request) },
            Some((http, refused)) => {
                let response = refusal_response(request.headers(), http, refused);
                PassOrHere::here(async move { response })
            }
        }
    }
}

/// A refusal as the caller's transport expects it: a gRPC status for gRPC
/// and gRPC-Web, else the JSON error body with the HTTP status `http`.
fn refusal_response(headers: &HeaderMap, http: StatusCode, refused: Refused) -> http::Response<Body> {
    let status = Status::from(refused);
    let grpc = headers.get(header::CONTENT_TYPE).filter(|v| v.as_bytes().starts_with(b"application/grpc"));
    if let Some(content_type) = grpc {
        let mut response = status.into_http::<Body>();
        response.headers_mut().insert(header::CONTENT_TYPE, content_type.clone());
        return response;
    }
    let mut response = super::json::error_response(&status).map(Body::new);
    *response.status_mut() = http;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_names_and_addresses_of_this_machine_only() {
        for host in [
            "localhost",
            "LOCALHOST:50051",
            "localhost.",
            "app.localhost:8",
            "127.0.0.1",
            "127.8.9.1:50051",
            "[::1]",
            "[::1]:50051",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "example.com",
            "127.0.0.1.example.com",
            "localhost.example.com:50051",
            "10.0.0.1:50051",
            "[::2]:1",
            "[::1]x",
            "localhost:port",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
