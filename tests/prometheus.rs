//! `/metrics` scraped from the real server and parsed with a Prometheus
//! text-format parser.

mod common;

use std::collections::HashMap;

use common::{Server, harvested};
use jira_dora::config;
use jira_dora::proto::GetMetricsRequest;

fn scrape_config(extra: &str) -> config::Config {
    config::load(Some(&format!("[metrics]\nenabled = true\n{extra}")), &HashMap::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_and_parse_with_their_labels() {
    let server = Server::start(scrape_config("")).await;
    let mut client = server.client().await;
    let keys = harvested(&mut client).await;
    client.get_metrics(GetMetricsRequest { project_keys: vec![keys[0].clone()], ..Default::default() }).await.unwrap();
    client.get_metrics(GetMetricsRequest::default()).await.unwrap_err();
    let http = reqwest::Client::new();
    http.get(server.url("/v1/projects")).send().await.unwrap();

    let response = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format");
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert!(value("dora_rpc_requests_total", &[("method", "GetMetrics"), ("code", "Ok")]) >= 1.0, "{text}");
    assert!(value("dora_rpc_requests_total", &[("method", "GetMetrics"), ("code", "InvalidArgument")]) >= 1.0);
    assert!(
        value("dora_rpc_requests_total", &[("method", "ListProjects"), ("code", "Ok")]) >= 2.0,
        "gRPC and JSON both count"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "dora_rpc_duration_seconds_bucket" || s.metric == "dora_rpc_duration_seconds")
    );
    assert!(value("dora_harvests_total", &[("project", keys[0].as_str()), ("outcome", "succeeded")]) >= 1.0);
    assert!(value("dora_jira_requests_total", &[("endpoint", "/rest/api/3/search/jql"), ("status", "200")]) >= 1.0);
    assert!(value("dora_definitions_info", &[]) >= 1.0);
    // Labels are templates: no issue id or key, no project key in a path.
    for s in &scrape.samples {
        if let Some(endpoint) = s.labels.get("endpoint") {
            assert!(!endpoint.chars().any(|c| c.is_ascii_digit()) || endpoint.contains("/api/"), "{endpoint}");
            assert!(!keys.iter().any(|k| endpoint.contains(&format!("/{k}/"))), "{endpoint}");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_off_by_default() {
    let server = Server::start(config::load(Some("[harvest]\non_start = false\n"), &HashMap::new()).unwrap()).await;
    let _ = server.client().await;
    let response = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_an_api_key_when_authentication_is_on() {
    use sha2::{Digest, Sha256};
    const KEY: &str = "metrics-scraper-key-0123456789abcdef0123456789";
    let keys = format!("service {}", hex::encode(Sha256::digest(KEY.as_bytes())));
    let env: HashMap<&str, &str> = HashMap::from([("DORA_AUTH_ENABLED", "true"), ("DORA_API_KEYS", keys.as_str())]);
    let config = config::load(Some("[metrics]\nenabled = true\n[harvest]\non_start = false\n"), &env).unwrap();
    let server = Server::start(config).await;
    let _ = server.client().await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(server.url("/metrics")).send().await.unwrap().status(), 401);
    let ok = http.get(server.url("/metrics")).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(!ok.text().await.unwrap().contains(KEY));
    server.stop().await;
}
