//! Definitions cannot carry issue data out of the service. Hooks that
//! `throw`, build an error from, index with, or `print`/`debug` a label run
//! on real facts — previewed by `ValidateDefinitions`, refused by
//! `UpdateDefinitions`, and in force during a harvest — and a marker label
//! is searched for in every answer, every refresh job and the logs captured
//! at TRACE. The errors still say where (file, line, hook) and what kind.
//! The `teams` hook too: its names are the one thing from issues that
//! answers may hold (`ListTeams`), never a log, an error or a metric label.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::Server;
use fake_jira::FakeJira;
use jira_dora::config;
use jira_dora::definitions::DefinitionSet;
use jira_dora::proto::*;

/// A label of real issues; the hooks below only know its prefix.
const MARKER: &str = "7f3a9c2e";
const LABEL: &str = "mk-7f3a9c2e";

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

/// Every log line of this test binary, at TRACE.
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    })
}

fn assert_no_marker_in_logs() {
    let text = String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned();
    assert!(text.contains("DEBUG"), "the logs were captured");
    let leaked: Vec<&str> = text.lines().filter(|l| l.contains(MARKER)).collect();
    assert!(leaked.is_empty(), "issue data in the logs:\n{}", leaked.join("\n"));
}

/// Two projects; some issues of P0 carry the marker label.
async fn fake() -> FakeJira {
    let mut site = fake_jira::demo::large_site(2, 30, 7);
    for issue in site.projects[0].issues.iter_mut().take(5) {
        issue.labels.push(LABEL.to_owned());
    }
    FakeJira::start(site).await
}

/// The shipped definitions with `is_excluded` doing `body` on a label that
/// starts with `mk-` (no sample issue has one).
fn leaking(body: &str) -> Vec<DefinitionFile> {
    DefinitionSet::shipped_files()
        .into_iter()
        .map(|f| {
            let source = if f.name == "exclusion.rhai" {
                format!(
                    "// Leaks a label.\nfn is_excluded(issue) {{\n    for label in issue.labels {{\n        if label.starts_with(\"mk-\") {{\n            {body}\n        }}\n    }}\n    issue.is_subtask\n}}\n"
                )
            } else {
                f.source
            };
            DefinitionFile { name: f.name, source }
        })
        .collect()
}

/// (what the hook does, words the error says about the kind)
const LEAKS: &[(&str, &str)] = &[
    ("throw label;", "thrown"),
    ("throw \"bad label \" + label;", "thrown"),
    ("throw #{ labels: issue.labels };", "thrown"),
    ("let m = #{}; return m[label];", "property"),
    ("return 10 / (label.len() - label.len());", "arithmetic"),
];

fn config_for(fake: &FakeJira, toml: &str) -> config::Config {
    let url: &'static str = fake.base_url().leak();
    let env = HashMap::from([("JIRA_BASE_URL", url), ("DORA_PROJECTS", "P0,P1")]);
    config::load(Some(toml), &env).unwrap()
}

async fn harvested(server: &Server) {
    let mut client = server.client().await;
    for _ in 0..600 {
        if client.list_projects(ListProjectsRequest {}).await.unwrap().into_inner().projects.len() == 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("harvest did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_and_update_errors_say_where_and_what_kind_never_the_value() {
    logs();
    let fake = fake().await;
    let server = Server::start(config_for(&fake, "[definitions]\nallow_updates = true\nwatch_interval_ms = 0\n")).await;
    harvested(&server).await;
    let mut client = server.client().await;

    for (body, kind) in LEAKS {
        let answer = client
            .validate_definitions(ValidateDefinitionsRequest { files: leaking(body) })
            .await
            .unwrap()
            .into_inner();
        assert!(!answer.valid, "{body}: the hook fails on P0's facts");
        assert!(!format!("{answer:?}").contains(MARKER), "{body}: {answer:#?}");
        let e = answer
            .errors
            .iter()
            .find(|e| e.hook == "is_excluded")
            .unwrap_or_else(|| panic!("{body}: {:#?}", answer.errors));
        assert_eq!((e.file.as_str(), e.line), ("exclusion.rhai", 5), "{body}: {e:?}");
        assert!(e.message.to_lowercase().contains(kind), "{body}: `{}` does not say {kind}", e.message);

        let refused = client.update_definitions(UpdateDefinitionsRequest { files: leaking(body) }).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(!refused.message().contains(MARKER), "{body}: {}", refused.message());
        assert!(refused.message().contains("exclusion.rhai:5"), "{body}: {}", refused.message());
    }

    // Output goes nowhere the text could be read.
    let noisy = leaking("print(label); debug(issue.labels); print(`seen ${label}`);");
    let answer = client.validate_definitions(ValidateDefinitionsRequest { files: noisy }).await.unwrap().into_inner();
    assert!(answer.valid, "{:#?}", answer.errors);
    assert!(!format!("{answer:?}").contains(MARKER));
    server.stop().await;
    assert_no_marker_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harvest_under_leaking_definitions_reports_no_issue_data() {
    logs();
    let fake = fake().await;
    let defs = tempfile::tempdir().unwrap();
    for f in leaking("throw \"bad label \" + label;") {
        std::fs::write(defs.path().join(&f.name), f.source).unwrap();
    }
    let mut config =
        config_for(&fake, "[harvest]\non_start = false\ninterval_minutes = 0\n[definitions]\nwatch_interval_ms = 0\n");
    config.defs_dir = defs.path().to_owned();
    let server = Server::start(config).await;
    let mut client = server.client().await;

    let job_id = client
        .refresh(RefreshRequest { project_keys: vec!["P0".into()], full: true })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    let mut job = None;
    for _ in 0..600 {
        let j = client
            .get_refresh_status(GetRefreshStatusRequest { job_id: job_id.clone() })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        if j.finished.is_some() {
            job = Some(j);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = job.expect("the refresh finished");
    assert_eq!(job.state(), JobState::Failed, "{job:#?}");
    let text = format!("{job:?}");
    assert!(!text.contains(MARKER), "{job:#?}");
    assert!(text.contains("is_excluded"), "the job names the hook: {job:#?}");
    server.stop().await;
    assert_no_marker_in_logs();
}

/// The shipped definitions with a `teams` hook doing `body` on a label that
/// starts with `mk-`, else naming no team.
fn teams_doing(body: &str) -> Vec<DefinitionFile> {
    let mut files: Vec<DefinitionFile> =
        DefinitionSet::shipped_files().into_iter().map(|f| DefinitionFile { name: f.name, source: f.source }).collect();
    let source = format!(
        "// Teams from a label.\nfn teams(issue) {{\n    for label in issue.labels {{\n        if label.starts_with(\"mk-\") {{\n            {body}\n        }}\n    }}\n    []\n}}\n"
    );
    files.push(DefinitionFile { name: "teams.rhai".into(), source });
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teams_hook_failing_on_real_facts_says_where_and_what_kind_never_the_value() {
    logs();
    let fake = fake().await;
    let server = Server::start(config_for(&fake, "[definitions]\nallow_updates = true\nwatch_interval_ms = 0\n")).await;
    harvested(&server).await;
    let mut client = server.client().await;
    let invalid_names: &[(&str, &str)] = &[
        ("return [label + label + label + label + label + label + label];", "longer than 64"),
        ("return [label, \" \"];", "empty team name"),
        ("return label;", "expected an array of team names"),
    ];
    for (body, kind) in LEAKS.iter().chain(invalid_names) {
        let answer = client
            .validate_definitions(ValidateDefinitionsRequest { files: teams_doing(body) })
            .await
            .unwrap()
            .into_inner();
        assert!(!answer.valid, "{body}: the hook fails on P0's facts");
        assert!(!format!("{answer:?}").contains(MARKER), "{body}: {answer:#?}");
        let e =
            answer.errors.iter().find(|e| e.hook == "teams").unwrap_or_else(|| panic!("{body}: {:#?}", answer.errors));
        assert_eq!(e.file, "teams.rhai", "{body}: {e:?}");
        assert!(e.message.to_lowercase().contains(kind), "{body}: `{}` does not say {kind}", e.message);
        let refused =
            client.update_definitions(UpdateDefinitionsRequest { files: teams_doing(body) }).await.unwrap_err();
        assert!(!refused.message().contains(MARKER), "{body}: {}", refused.message());
    }
    server.stop().await;
    assert_no_marker_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_names_reach_the_answers_but_no_log_error_or_metric_label() {
    logs();
    let fake = fake().await;
    let defs = tempfile::tempdir().unwrap();
    for f in teams_doing("return [label];") {
        std::fs::write(defs.path().join(&f.name), f.source).unwrap();
    }
    let mut config = config_for(&fake, "[definitions]\nwatch_interval_ms = 0\n[metrics]\nenabled = true\n");
    config.defs_dir = defs.path().to_owned();
    let server = Server::start(config).await;
    harvested(&server).await;
    let mut client = server.client().await;

    // The name is the label: that is what these definitions asked for.
    let teams = client.list_teams(ListTeamsRequest::default()).await.unwrap().into_inner();
    assert_eq!(
        teams.teams.iter().map(|t| (t.name.as_str(), t.project_keys.clone())).collect::<Vec<_>>(),
        [(LABEL, vec!["P0".to_owned()])]
    );
    let request = |keys: &[&str], team: &str| GetMetricsRequest {
        project_keys: keys.iter().map(|k| k.to_string()).collect(),
        team: Some(team.to_owned()),
        include_series: true,
        ..Default::default()
    };
    let answer = client.get_metrics(request(&["P0"], LABEL)).await.unwrap().into_inner();
    assert!(!format!("{answer:?}").contains(MARKER), "an answer about a team does not repeat its name");
    for wrong in [request(&["P1"], LABEL), request(&["P0"], &format!("{LABEL}x"))] {
        let s = client.get_metrics(wrong).await.unwrap_err();
        assert_eq!(s.code(), tonic::Code::NotFound);
        assert!(!s.message().contains(MARKER), "{s:?}");
    }
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    // (Tests in this binary run at once: another may have set the gauge.)
    assert!(metrics.contains("dora_teams{project=\"P0\"}"), "{metrics}");
    assert!(!metrics.contains(MARKER), "a team name in the metrics:\n{metrics}");
    server.stop().await;
    assert_no_marker_in_logs();
}
