//! The HTTP side of the Prometheus metrics: `GET /metrics` (off unless
//! configured; behind an API key of any role when authentication is on,
//! with per-project series for the admin role only and sums over projects
//! for the others), and the layer that times every RPC on every
//! transport ([`Observed`]).
//!
//! Must not depend on the handlers, the store or the harvester; it only
//! renders `telemetry`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::metadata::MetadataMap;

use super::auth::Access;
use super::layered::{Decide, PassOrHere, infallible};
use crate::config::Role;
use crate::telemetry;

/// Records figures that are read when `/metrics` is scraped rather than
/// recorded as they change (the answer caches' counts move with every
/// request, too often to record each).
pub type Sample = Arc<dyn Fn() + Send + Sync>;

/// `GET /metrics` in the Prometheus text format; `sample` runs before each
/// rendering.
pub fn router(access: Arc<Access>, sample: Sample) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state((access, sample))
}

async fn scrape(State((access, sample)): State<(Arc<Access>, Sample)>, headers: HeaderMap) -> Response {
    let role = match access.authenticate(&MetadataMap::from_headers(headers)) {
        Ok(role) => role,
        Err(refused) => return super::json::error_response(&refused.into()),
    };
    sample();
    let text = telemetry::handle().render();
    // Project keys are as confidential as the projects: per-project series
    // for the admin role (or anyone when authentication is off), sums over
    // projects for the others.
    let text = if matches!(role, None | Some(Role::Admin)) { text } else { summed_over_projects(&text) };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// A sample line: its name, its labels (`key`, quoted value as written) and
/// its value.
type SampleLine<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

/// A sample line split into its parts; `None` for comments and blank lines.
fn sample(line: &str) -> Option<SampleLine<'_>> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let Some(open) = line.find('{') else {
        let (name, value) = line.split_once(' ')?;
        return Some((name, Vec::new(), value.trim()));
    };
    let (name, mut rest) = (&line[..open], &line[open + 1..]);
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            return Some((name, labels, after.trim()));
        }
        let (key, after) = rest.split_once("=\"")?;
        // The value ends at the first quote not escaped by a backslash.
        let bytes = after.as_bytes();
        let mut i = 0;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        let value = after.get(..i)?;
        labels.push((key, value));
        rest = after.get(i + 1..)?;
    }
}

/// The Prometheus text with every series that has a `project` label
/// replaced by its sum over projects (counters, histogram buckets and the
/// issues gauge all add up), in the order the series first appear.
fn summed_over_projects(text: &str) -> String {
    let mut out: Vec<(String, Option<f64>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for line in text.lines() {
        let parsed = sample(line).and_then(|(name, labels, value)| Some((name, labels, value.parse::<f64>().ok()?)));
        match parsed {
            Some((name, labels, value)) if labels.iter().any(|(k, _)| *k == "project") => {
                let rest: Vec<String> =
                    labels.iter().filter(|(k, _)| *k != "project").map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                let series = if rest.is_empty() { name.to_owned() } else { format!("{name}{{{}}}", rest.join(",")) };
                match index.get(&series) {
                    Some(&i) => *out[i].1.get_or_insert(0.0) += value,
                    None => {
                        index.insert(series.clone(), out.len());
                        out.push((series, Some(value)));
                    }
                }
            }
            _ => out.push((line.to_owned(), None)),
        }
    }
    let mut text = String::new();
    for (line, sum) in out {
        text.push_str(&line);
        if let Some(sum) = sum {
            text.push(' ');
            text.push_str(&sum.to_string());
        }
        text.push('\n');
    }
    text
}

/// The RPC a path names, on gRPC, gRPC-Web or the JSON mapping.
fn rpc_name(path: &str) -> Option<&'static str> {
    if let Some(method) = path.strip_prefix("/dora.v1.DoraMetrics/") {
        return telemetry::RPC_METHODS.iter().find(|m| **m == method).copied();
    }
    Some(match path {
        "/v1/metrics" | "/v1/metrics:get" => "GetMetrics",
        "/v1/metrics:explain" => "ExplainMetrics",
        "/v1/projects" => "ListProjects",
        "/v1/teams" => "ListTeams",
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
fn code_of<B>(response: &http::Response<B>) -> Code {
    if let Some(code) =
        response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok())
    {
        return Code::from_i32(code);
    }
    // The inverse of `json::http_status`, and what the HTTP layers answer
    // themselves: a caller's mistake is never counted as the service's.
    match response.status() {
        s if s.is_success() => Code::Ok,
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::CONFLICT => Code::Aborted,
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => Code::Unimplemented,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => {
            Code::ResourceExhausted
        }
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        StatusCode::GATEWAY_TIMEOUT => Code::DeadlineExceeded,
        s if s.as_u16() == 499 => Code::Cancelled,
        s if s.is_client_error() => Code::InvalidArgument,
        s if s.is_server_error() => Code::Internal,
        _ => Code::Unknown,
    }
}

/// The port's layer (`layered`) that counts and times each RPC by method
/// and code, on every transport; passes everything on as it is when
/// metrics are off.
#[derive(Clone)]
pub struct Observed {
    pub enabled: bool,
}

impl Decide for Observed {
    fn decide<S>(&self, inner: &mut S, request: http::Request<Body>) -> PassOrHere<S::Future>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
        S::Future: Send + 'static,
    {
        let method = if self.enabled { rpc_name(request.uri().path()) } else { None };
        let future = inner.call(request);
        match method {
            None => PassOrHere::Pass { future },
            Some(method) => PassOrHere::here(async move {
                let started = Instant::now();
                let response = infallible(future).await;
                telemetry::rpc(method, code_of(&response), started.elapsed());
                response
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{code_of, rpc_name, summed_over_projects};
    use http::StatusCode;
    use tonic::Code;

    #[test]
    fn http_statuses_count_as_the_grpc_code_they_stand_for() {
        let code = |status: StatusCode| code_of(&http::Response::builder().status(status).body(()).unwrap());
        for c in [
            Code::Ok,
            Code::Cancelled,
            Code::InvalidArgument,
            Code::DeadlineExceeded,
            Code::NotFound,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::ResourceExhausted,
            Code::Unimplemented,
            Code::Unavailable,
            Code::Internal,
        ] {
            assert_eq!(code(crate::api::json::http_status(c)), c, "{c:?}");
        }
        // Refusals of the HTTP layers are the caller's, not the service's.
        assert_eq!(code(StatusCode::METHOD_NOT_ALLOWED), Code::Unimplemented);
        assert_eq!(code(StatusCode::UNSUPPORTED_MEDIA_TYPE), Code::InvalidArgument);
        assert_eq!(code(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE), Code::ResourceExhausted);
        assert_eq!(code(StatusCode::IM_A_TEAPOT), Code::InvalidArgument);
        assert_eq!(code(StatusCode::BAD_GATEWAY), Code::Internal);
        // A gRPC error's own status wins.
        let grpc = http::Response::builder().status(StatusCode::OK).header("grpc-status", "5").body(()).unwrap();
        assert_eq!(code_of(&grpc), Code::NotFound);
    }

    #[test]
    fn series_per_project_are_summed_over_projects() {
        let text = "# HELP dora_harvests_total Project harvests\n# TYPE dora_harvests_total counter\n\
                    dora_harvests_total{project=\"P0\",outcome=\"ok\"} 2\n\
                    dora_harvests_total{project=\"P1\",outcome=\"ok\"} 3\n\
                    dora_harvests_total{outcome=\"failed\",project=\"P1\"} 1\n\
                    dora_harvest_issues{project=\"P0\"} 30\n\
                    dora_harvest_issues{project=\"P1\"} 12\n\
                    dora_jira_requests_total{endpoint=\"/rest/api/3/project/{project}\",status=\"200\"} 7\n\
                    dora_odd{a=\"x\\\"y,project=\\\"no\",project=\"P2\"} 1\n";
        let summed = summed_over_projects(text);
        assert_eq!(
            summed,
            "# HELP dora_harvests_total Project harvests\n# TYPE dora_harvests_total counter\n\
             dora_harvests_total{outcome=\"ok\"} 5\n\
             dora_harvests_total{outcome=\"failed\"} 1\n\
             dora_harvest_issues 42\n\
             dora_jira_requests_total{endpoint=\"/rest/api/3/project/{project}\",status=\"200\"} 7\n\
             dora_odd{a=\"x\\\"y,project=\\\"no\"} 1\n"
        );
    }

    #[test]
    fn every_transport_names_the_same_rpc() {
        assert_eq!(rpc_name("/dora.v1.DoraMetrics/GetMetrics"), Some("GetMetrics"));
        assert_eq!(rpc_name("/v1/metrics"), Some("GetMetrics"));
        assert_eq!(rpc_name("/dora.v1.DoraMetrics/ExplainMetrics"), Some("ExplainMetrics"));
        assert_eq!(rpc_name("/v1/metrics:explain"), Some("ExplainMetrics"));
        assert_eq!(rpc_name("/v1/refresh/job-1:watch"), Some("WatchRefresh"));
        assert_eq!(rpc_name("/v1/refresh/job-1"), Some("GetRefreshStatus"));
        assert_eq!(rpc_name("/dora.v1.DoraMetrics/Nope"), None);
        assert_eq!(rpc_name("/grpc.health.v1.Health/Check"), None);
        assert_eq!(rpc_name("/app.js"), None);
    }
}
