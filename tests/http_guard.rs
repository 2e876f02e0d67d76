//! What the port refuses before any handler runs, over real sockets: web
//! pages of other sites (a `text/plain` POST needs no preflight, a foreign
//! `Origin`, a rebinding `Host` on the open loopback service), header blocks
//! over the documented limit on HTTP/1.1 too, bodies that are not protobuf,
//! and — with authentication on — any body before the API key is checked.

mod common;

use std::collections::HashMap;

use common::Server;
use jira_dora::config;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The demo, not harvested: nothing runs unless a request starts it.
async fn open_server(toml: &str) -> Server {
    let config =
        config::load(Some(&format!("[harvest]\non_start = false\ninterval_minutes = 0\n{toml}")), &HashMap::new())
            .unwrap();
    Server::start(config).await
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Whether any refresh job was started before: a full refresh started now
/// is the first job (`job-1-…`) only if none was (a refused `{}` body would
/// have started an incremental one).
async fn any_refresh_started(server: &Server) -> bool {
    let mut client = server.client().await;
    let request = jira_dora::proto::RefreshRequest { full: true, ..Default::default() };
    !client.refresh(request).await.unwrap().into_inner().job_id.starts_with("job-1-")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_changing_json_request_must_be_application_json() {
    let server = open_server("[definitions]\nallow_updates = true\n").await;
    let http = http();
    // The simple requests a web page may send to any site without asking.
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        for path in ["/v1/refresh", "/v1/definitions:update", "/v1/definitions:validate", "/v1/metrics:get"] {
            let r = http.post(server.url(path)).header("content-type", content_type).body("{}").send().await.unwrap();
            assert_eq!(r.status(), 415, "{path} as {content_type}");
            let body: Value = r.json().await.unwrap();
            assert!(body["message"].as_str().unwrap().contains("application/json"), "{body}");
        }
    }
    let r = http.post(server.url("/v1/refresh")).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 415, "no content type at all");
    assert!(!any_refresh_started(&server).await, "a refused request started a refresh");

    let r = http
        .post(server.url("/v1/refresh"))
        .header("content-type", "application/json; charset=utf-8")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused_and_the_own_or_allowed_ones_pass() {
    let server = open_server("[http]\nallowed_origins = [\"https://gateway.example.com\"]\n").await;
    let http = http();
    let own = format!("http://{}", server.addr);
    for (origin, allowed) in [
        ("https://evil.example", false),
        ("null", false),
        ("http://127.0.0.1:1", false),
        (own.as_str(), true),
        ("https://gateway.example.com", true),
    ] {
        let post = http
            .post(server.url("/v1/refresh"))
            .header("origin", origin)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        let get = http.get(server.url("/v1/projects")).header("origin", origin).send().await.unwrap();
        if allowed {
            assert_eq!((post.status().as_u16(), get.status().as_u16()), (200, 200), "{origin}");
        } else {
            assert_eq!((post.status().as_u16(), get.status().as_u16()), (403, 403), "{origin}");
            let body: Value = get.json().await.unwrap();
            assert!(body["message"].as_str().unwrap().contains("origin"), "{body}");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_on_loopback_only_loopback_host_names_are_served() {
    let server = open_server("").await;
    let http = http();
    let port = server.addr.port();
    for (host, allowed) in [
        (format!("127.0.0.1:{port}"), true),
        (format!("localhost:{port}"), true),
        (format!("[::1]:{port}"), true),
        ("localhost".to_owned(), true),
        (format!("attacker.example:{port}"), false),
        (format!("127.0.0.1.attacker.example:{port}"), false),
        (format!("localhost.attacker.example:{port}"), false),
    ] {
        for path in ["/v1/projects", "/", "/app.js"] {
            let r = http.get(server.url(path)).header("host", &host).send().await.unwrap();
            assert_eq!(r.status().is_success(), allowed, "{host} {path}: {}", r.status());
            if !allowed {
                assert_eq!(r.status(), 403, "{host} {path}");
            }
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_block_over_16_kib_is_refused_over_http1_too() {
    let server = open_server("").await;
    let http = http();
    let r = http.get(server.url("/v1/projects")).header("x-padding", "a".repeat(100 * 1024)).send().await.unwrap();
    assert_eq!(r.status(), 431);
    let r = http.get(server.url("/v1/projects")).header("x-padding", "a".repeat(17 * 1024)).send().await.unwrap();
    assert_eq!(r.status(), 431);
    let r = http.get(server.url("/v1/projects")).header("x-padding", "a".repeat(8 * 1024)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    server.stop().await;
}

/// `message` sent as a GetMetrics request over plain gRPC (raw HTTP/2, one
/// length-prefixed frame) with `headers`: the HTTP status and the
/// `grpc-status` of the answer (in its headers when refused at once, else
/// in its trailers; `None` for an answer whose trailers carry OK).
async fn grpc_get_metrics(server: &Server, message: &[u8], headers: &[(&str, &str)]) -> (u16, Option<String>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(message);
    let mut request = h2
        .post(server.url("/dora.v1.DoraMetrics/GetMetrics"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let r = request.body(body).send().await.unwrap();
    (r.status().as_u16(), r.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_protobuf_is_invalid_argument() {
    let server = open_server("").await;
    // Bytes that are no GetMetricsRequest (a field number 0, then a
    // truncated varint).
    let garbage = [0x00u8, 0xff, 0xff, 0xff];
    assert_eq!(grpc_get_metrics(&server, &garbage, &[]).await, (200, Some("3".into())));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_metrics_over_plain_grpc_passes_the_same_checks() {
    use prost::Message;
    let server = open_server("").await;
    let request =
        jira_dora::proto::GetMetricsRequest { project_keys: vec!["PAY".into()], weeks: 4, ..Default::default() }
            .encode_to_vec();
    let own = format!("http://{}", server.addr);
    let foreign_host = format!("attacker.example:{}", server.addr.port());
    assert_eq!(
        grpc_get_metrics(&server, &request, &[("origin", "https://evil.example")]).await,
        (200, Some("7".into())),
        "a foreign origin"
    );
    assert_eq!(
        grpc_get_metrics(&server, &request, &[("host", &foreign_host)]).await,
        (200, Some("7".into())),
        "a rebinding host"
    );
    // The own origin passes: nothing harvested yet, the handler answers
    // that it holds no such project (NOT_FOUND).
    assert_eq!(grpc_get_metrics(&server, &request, &[("origin", &own)]).await, (200, Some("5".into())));
    server.stop().await;
}

const ADMIN_KEY: &str = "admin-key-0123456789abcdef0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_is_checked_before_the_body() {
    let keys: &'static str = format!("admin {}", hex::encode(Sha256::digest(ADMIN_KEY))).leak();
    let env = HashMap::from([("DORA_AUTH_ENABLED", "true"), ("DORA_API_KEYS", keys)]);
    let config = config::load(
        Some("[harvest]\non_start = false\ninterval_minutes = 0\n[definitions]\nallow_updates = true\n"),
        &env,
    )
    .unwrap();
    let server = Server::start(config).await;
    let http = http();
    for path in ["/v1/definitions:update", "/v1/definitions:validate", "/v1/refresh", "/v1/metrics:get"] {
        for body in ["{\"files\": 7}", "not json", "{\"nope\": true}"] {
            let r =
                http.post(server.url(path)).header("content-type", "application/json").body(body).send().await.unwrap();
            assert_eq!(r.status(), 401, "{path} {body}");
            let text = r.text().await.unwrap();
            assert!(!text.contains("request body"), "{path}: {text}");
        }
    }
    // With the key, the body is looked at.
    let r = http
        .post(server.url("/v1/definitions:update"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .body("{\"files\": 7}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    server.stop().await;
}
