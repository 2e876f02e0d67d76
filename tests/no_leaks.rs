//! No secret leaves the process by the side doors: a full run with every
//! kind of credential in play, its logs captured at TRACE for every crate,
//! and the logs, the statuses clients saw, the `Debug` output and every
//! file the service wrote are searched for each secret.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Server;
use fake_jira::{FakeJira, Fault};
use jira_dora::config;
use jira_dora::proto::*;
use sha2::{Digest, Sha256};
use tonic::Request;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const ADMIN_KEY: &str = "adm1n-K3y-a8f0c1d2e3f4a5b6c7d8e9f0a1b2c3d4";
const GATEWAY_KEY: &str = "g4teway-K3y-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const WRONG_KEY: &str = "wr0ng-K3y-that-someone-guessed-77aa88bb99cc";
const VIEWER_TOKEN: &str = "v1ewer-oauth-Tok3n-9a8b7c6d5e4f";
const OTHER_VIEWER_TOKEN: &str = "unkn0wn-viewer-Tok3n-1a2b3c4d";
const JIRA_EMAIL: &str = "harvester@example.com";
const JIRA_TOKEN: &str = "j1ra-api-Tok3n-ATATT3xFfGF0aabbccddeeff";

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn with<T>(message: T, metadata: &[(&'static str, String)]) -> Request<T> {
    let mut r = Request::new(message);
    for (k, v) in metadata {
        r.metadata_mut().insert(*k, v.parse().unwrap());
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_statuses_debug_output_and_stored_files_hold_no_secret() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let viewer_basic = format!("Basic {}", base64(format!("viewer@example.com:{VIEWER_TOKEN}").as_bytes()));
    let secrets: Vec<String> = vec![
        ADMIN_KEY.into(),
        GATEWAY_KEY.into(),
        WRONG_KEY.into(),
        VIEWER_TOKEN.into(),
        OTHER_VIEWER_TOKEN.into(),
        JIRA_TOKEN.into(),
        base64(format!("{JIRA_EMAIL}:{JIRA_TOKEN}").as_bytes()),
        viewer_basic.clone(),
        base64(format!("viewer@example.com:{VIEWER_TOKEN}").as_bytes()),
    ];

    let fake = FakeJira::start(fake_jira::demo::large_site(2, 20, 3)).await;
    fake.grant_viewer(&format!("Bearer {VIEWER_TOKEN}"), &["P0"]);
    fake.grant_viewer(&viewer_basic, &["P1"]);
    let data = tempfile::tempdir().unwrap();
    let keys = format!("admin {}, viewer-gateway {}", hash(ADMIN_KEY), hash(GATEWAY_KEY));
    let env: HashMap<&str, &str> = HashMap::from([
        ("JIRA_BASE_URL", fake.base_url().leak() as &str),
        ("JIRA_EMAIL", JIRA_EMAIL),
        ("JIRA_API_TOKEN", JIRA_TOKEN),
        ("JIRA_EXTRA_FIELDS", "Team, Severity"),
        ("DORA_AUTH_ENABLED", "true"),
        ("DORA_API_KEYS", keys.leak() as &str),
        ("DORA_DATA_DIR", data.path().to_str().unwrap().to_owned().leak() as &str),
    ]);
    let config = config::load(None, &env).unwrap();
    let shown_config = format!("{config:?}");

    let server = Server::start_in(config).await;
    let mut client = server.client().await;

    let admin = vec![("authorization", format!("Bearer {ADMIN_KEY}"))];
    let viewer = |credential: String| {
        vec![("authorization", format!("Bearer {GATEWAY_KEY}")), ("x-jira-authorization", credential)]
    };
    for _ in 0..600 {
        let r = client.list_projects(with(ListProjectsRequest {}, &admin)).await.unwrap();
        if r.into_inner().projects.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut statuses = Vec::new();
    let metrics = |k: &str| GetMetricsRequest { project_keys: vec![k.into()], ..Default::default() };
    let mut record = |r: Result<String, tonic::Status>| {
        if let Err(s) = r {
            statuses.push(format!("{s:?}"));
        }
    };
    record(
        client
            .get_metrics(with(metrics("P0"), &viewer(format!("Bearer {VIEWER_TOKEN}"))))
            .await
            .map(|r| format!("{r:?}")),
    );
    record(
        client
            .get_metrics(with(metrics("P1"), &viewer(format!("Bearer {VIEWER_TOKEN}"))))
            .await
            .map(|r| format!("{r:?}")),
    );
    record(client.get_metrics(with(metrics("P1"), &viewer(viewer_basic.clone()))).await.map(|r| format!("{r:?}")));
    record(
        client
            .get_metrics(with(metrics("P0"), &viewer(format!("Bearer {OTHER_VIEWER_TOKEN}"))))
            .await
            .map(|r| format!("{r:?}")),
    );
    // The items behind the figures: issue keys and version names in the
    // answers, nowhere else.
    let explain = |k: &str, figure: Figure| ExplainMetricsRequest {
        project_keys: vec![k.into()],
        from_week: Some("2025-W01".into()),
        to_week: Some("2026-W01".into()),
        figure: figure as i32,
        ..Default::default()
    };
    let mut listed: Vec<String> = Vec::new();
    for (k, figure) in [("P0", Figure::Deployments), ("P0", Figure::LeadTime), ("P0", Figure::Incidents)] {
        let r =
            client.explain_metrics(with(explain(k, figure), &viewer(format!("Bearer {VIEWER_TOKEN}")))).await.unwrap();
        listed.extend(
            r.into_inner().items.into_iter().flat_map(|i| [i.issue_key, i.version_name]).filter(|n| !n.is_empty()),
        );
    }
    assert!(listed.iter().any(|n| n.starts_with("P0-")) && listed.iter().any(|n| !n.starts_with("P0-")), "{listed:?}");
    record(
        client
            .explain_metrics(with(explain("P1", Figure::Deployments), &viewer(format!("Bearer {VIEWER_TOKEN}"))))
            .await
            .map(|r| format!("{r:?}")),
    );
    record(
        client
            .list_projects(with(ListProjectsRequest {}, &[("authorization", format!("Bearer {WRONG_KEY}"))]))
            .await
            .map(|r| format!("{r:?}")),
    );
    record(
        client
            .refresh(with(RefreshRequest::default(), &viewer(format!("Bearer {VIEWER_TOKEN}"))))
            .await
            .map(|r| format!("{r:?}")),
    );
    fake.inject("/rest/api/3/mypermissions", 10, Fault::Status(503));
    record(
        client
            .list_projects(with(ListProjectsRequest {}, &viewer(format!("Bearer {OTHER_VIEWER_TOKEN}"))))
            .await
            .map(|r| format!("{r:?}")),
    );
    fake.clear_faults();
    // A refresh that fails half way, so errors get logged.
    fake.inject("/rest/api/3/search", 20, Fault::Status(500));
    let job = client
        .refresh(with(RefreshRequest { project_keys: vec!["P0".into()], full: true }, &admin))
        .await
        .unwrap()
        .into_inner()
        .job_id;
    for _ in 0..600 {
        let r = client.get_refresh_status(with(GetRefreshStatusRequest { job_id: job.clone() }, &admin)).await.unwrap();
        let job = r.into_inner().job.unwrap();
        statuses.push(format!("{job:?}"));
        if job.finished.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(statuses.len() >= 5, "{statuses:?}");

    server.stop().await;

    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logs.contains("mypermissions") || logs.contains("permission"), "the capture saw the run");
    let mut stored = String::new();
    for entry in walk(data.path()) {
        stored.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
    }
    let fake_log = format!("{:?}", fake.requests());
    // Components, priorities and allow-listed field values of the demo site
    // live in memory only; its free-text field is never even requested.
    for value in ["Storefront", "Discovery", "Sev 1", "Sev 2", "Highest", "Customer reported"] {
        assert!(!logs.contains(value), "an issue's value is in the logs: {value}");
        assert!(!statuses.iter().any(|s| s.contains(value)), "an issue's value is in a status: {value}");
        assert!(!stored.contains(value), "an issue's value is in a stored file: {value}");
    }
    // Keys and version names that the lists named: whole words only
    // (`P0-1` is a part of `P0-12`).
    let words = |text: &str| -> std::collections::HashSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
            .map(|w| w.trim_matches('.').to_owned())
            .collect()
    };
    let (log_words, stored_words, status_words) = (words(&logs), words(&stored), words(&statuses.join(" ")));
    for name in &listed {
        assert!(!log_words.contains(name), "an issue key or version name is in the logs: {name}");
        assert!(!stored_words.contains(name), "an issue key or version name is in a stored file: {name}");
        assert!(!status_words.contains(name), "an issue key or version name is in a status: {name}");
    }
    assert!(
        fake_log.contains("customfield_10010") && !fake_log.contains("customfield_10014"),
        "only allow-listed fields were asked for"
    );
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret is in the logs: {}…", &secret[..6]);
        assert!(!statuses.iter().any(|s| s.contains(secret.as_str())), "a secret is in a status");
        assert!(!shown_config.contains(secret.as_str()), "a secret is in the config's Debug output");
        assert!(!stored.contains(secret.as_str()), "a secret is in a stored file");
        assert!(!fake_log.contains(secret.as_str()), "a secret reached a request line or body");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() { todo.push(p) } else { out.push(p) }
        }
    }
    out
}
