//! Snapshots over real processes: the `jira-dora` binary harvests a fake
//! Jira started here, writes snapshots, is stopped gracefully or killed with
//! SIGKILL at random moments, and is started again on the same data
//! directory. Logs are read as JSON lines from its stderr.

#[path = "common/process.rs"]
mod process;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use fake_jira::demo::{large_aggregates, large_site};
use fake_jira::{
    FakeJira, Fault, Site, SiteField, SiteHistory, SiteIssue, SiteItem, SiteProject, SiteStatus, SiteUser, SiteVersion,
};
use jira_dora::proto::dora_metrics_client::DoraMetricsClient;
use jira_dora::proto::*;
use jira_dora::store::snapshot::{self, ProjectRecord, Snapshot};
use jira_dora::store::snapshot_dir::{CURRENT, PREVIOUS, SnapshotDir};
use serde_json::Value;
use tonic::transport::Channel;

/// The binary under test, started with a clean environment.
struct Service {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> Service {
    let cwd = data_dir.parent().expect("the data dir has a parent");
    let mut vars =
        vec![("DORA_DATA_DIR", data_dir.display().to_string()), ("DORA_LOG", "jira_dora=debug,info".to_owned())];
    vars.extend(env.iter().map(|&(k, v)| (k, v.to_owned())));
    let process::Process { child, addr, stdout, stderr, readers } =
        process::start("the service", cwd, &vars, Duration::from_secs(30));
    Service { child, addr, stderr, stdout, readers }
}

impl Service {
    /// The log events so far (JSON lines of stderr).
    fn events(&self) -> Vec<Value> {
        self.stderr.lock().unwrap().iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Events whose message is `message`, as their fields.
    fn fields(&self, message: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter_map(|e| (e["fields"]["message"] == message).then(|| e["fields"].clone()))
            .collect()
    }

    /// Waits for an event with `message` whose fields satisfy `pred`.
    async fn wait_for(&mut self, message: &str, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(f) = self.fields(message).into_iter().find(&pred) {
                return f;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited ({status}) before `{message}`; stderr:\n{}", self.all_output());
            }
            assert!(Instant::now() < deadline, "no `{message}` within {timeout:?}; stderr:\n{}", self.all_output());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn client(&self) -> DoraMetricsClient<Channel> {
        DoraMetricsClient::connect(format!("http://{}", self.addr)).await.expect("connect")
    }

    /// SIGTERM, then wait for the exit.
    async fn stop(mut self) -> (ExitStatus, String) {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("kill -TERM");
        let status = self.wait_exit(Duration::from_secs(30)).await;
        for r in std::mem::take(&mut self.readers) {
            r.join().expect("reader thread");
        }
        (status, self.all_output())
    }

    /// SIGKILL: no shutdown code runs.
    async fn kill9(mut self) -> Service {
        self.child.kill().expect("kill -9");
        self.wait_exit(Duration::from_secs(10)).await;
        // Everything it logged before dying is read.
        for r in std::mem::take(&mut self.readers) {
            r.join().expect("reader thread");
        }
        self
    }

    async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "did not exit within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn all_output(&self) -> String {
        let mut s = self.stdout.lock().unwrap().join("\n");
        s.push('\n');
        s.push_str(&self.stderr.lock().unwrap().join("\n"));
        s
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    (tmp, dir)
}

/// A request for weeks the generated sites cover (they end in 2026-W01).
fn explain_request(keys: &[&str], figure: Figure) -> ExplainMetricsRequest {
    ExplainMetricsRequest {
        project_keys: keys.iter().map(|k| k.to_string()).collect(),
        from_week: Some("2025-W27".into()),
        to_week: Some("2026-W01".into()),
        figure: figure as i32,
        ..Default::default()
    }
}

fn metrics_request(keys: &[&str]) -> GetMetricsRequest {
    GetMetricsRequest {
        project_keys: keys.iter().map(|k| k.to_string()).collect(),
        from_week: Some("2025-W27".into()),
        to_week: Some("2026-W01".into()),
        include_series: true,
        ..Default::default()
    }
}

fn u64_field(v: &Value, name: &str) -> u64 {
    v[name].as_u64().unwrap_or_else(|| panic!("no numeric `{name}` in {v}"))
}

// ---------------------------------------------------------------- privacy

const TOKEN: &str = "marker-token-5f3a9c1e";
/// Text and people: must appear neither in snapshots nor in logs.
const TEXT_MARKERS: &[&str] = &[
    "MARKER-SUMMARY",
    "MARKER-DESCRIPTION",
    "MARKER-COMMENT",
    "MARKER-ITEM-TEXT",
    "Marker Person",
    "marker.person@example.com",
    "marker-account-id",
    "Marker Bot",
    "MARKER-PROJECT-NAME",
    TOKEN,
    "MARKER-CUSTOM-TEXT",
];
/// Identifiers and names of the issues and versions: must not be in snapshots.
const ID_MARKERS: &[&str] = &["PRIV-", "7770", "marker-label", "MARKER-VERSION", "88800"];
/// Components, priorities and allow-listed field values: read into memory
/// for the hooks, never written to a snapshot or a log.
const FACT_MARKERS: &[&str] = &["MARKER-COMPONENT", "MARKER-PRIORITY", "MARKER-FIELD-VALUE", "MARKER-MULTI-VALUE"];

fn marker_site() -> Site {
    let status =
        |id: &str, name: &str, cat: &str| SiteStatus { id: id.into(), name: name.into(), category_key: cat.into() };
    let statuses =
        vec![status("1", "To Do", "new"), status("3", "In Progress", "indeterminate"), status("10002", "Done", "done")];
    let person = SiteUser {
        account_id: "marker-account-id".into(),
        account_type: "atlassian".into(),
        display_name: "Marker Person".into(),
        email: "marker.person@example.com".into(),
    };
    let bot = SiteUser {
        account_id: "marker-account-id-bot".into(),
        account_type: "app".into(),
        display_name: "Marker Bot".into(),
        email: String::new(),
    };
    let t0 = Utc.with_ymd_and_hms(2025, 9, 1, 9, 0, 0).unwrap();
    let versions: Vec<SiteVersion> = (0..10)
        .map(|v| SiteVersion {
            id: format!("{}", 88_800 + v),
            name: format!("MARKER-VERSION-{v}"),
            released: true,
            release_date: Some((t0 + chrono::Duration::days(7 * v)).date_naive()),
            archived: false,
            description: "MARKER-DESCRIPTION of a release".into(),
        })
        .collect();
    let issues = (0..40)
        .map(|n| {
            let created: DateTime<Utc> = t0 + chrono::Duration::hours(n * 20);
            let item = |from: &SiteStatus, to: &SiteStatus| SiteItem::status(from, to);
            let text = SiteItem {
                field: "summary".into(),
                field_id: Some("summary".into()),
                from: None,
                from_string: Some("MARKER-ITEM-TEXT before".into()),
                to: None,
                to_string: Some("MARKER-ITEM-TEXT after".into()),
            };
            let done = n % 4 != 0;
            let mut histories = vec![SiteHistory {
                id: format!("{}", 7_770_500 + n * 10),
                created: created + chrono::Duration::hours(2),
                author: Some(if n % 3 == 0 { bot.clone() } else { person.clone() }),
                items: vec![text, item(&statuses[0], &statuses[1])],
            }];
            if done {
                histories.push(SiteHistory {
                    id: format!("{}", 7_770_501 + n * 10),
                    created: created + chrono::Duration::hours(30),
                    author: Some(person.clone()),
                    items: vec![item(&statuses[1], &statuses[2])],
                });
            }
            SiteIssue {
                id: format!("{}", 7_770_000 + n),
                key: format!("PRIV-{}", n + 1),
                issue_type: if n % 5 == 0 { "Bug".into() } else { "Story".into() },
                is_subtask: false,
                labels: vec!["marker-label".into()],
                created,
                updated: created + chrono::Duration::hours(31),
                resolved: done.then(|| created + chrono::Duration::hours(30)),
                status_id: if done { "10002".into() } else { "3".into() },
                fix_versions: vec![format!("{}", 88_800 + (n % 10))],
                affected_versions: if n % 5 == 0 { vec![format!("{}", 88_800 + (n % 10))] } else { vec![] },
                components: vec!["MARKER-COMPONENT".into()],
                priority: Some("MARKER-PRIORITY".into()),
                custom: vec![
                    ("customfield_1".into(), serde_json::json!({"id": "1", "value": "MARKER-FIELD-VALUE"})),
                    ("customfield_2".into(), serde_json::json!([{"id": "2", "value": "MARKER-MULTI-VALUE"}])),
                    ("customfield_3".into(), serde_json::json!("MARKER-CUSTOM-TEXT a customer wrote")),
                ],
                summary: "MARKER-SUMMARY of the issue".into(),
                description: "MARKER-DESCRIPTION of the issue".into(),
                comments: vec!["MARKER-COMMENT on the issue".into()],
                assignee: Some(person.clone()),
                reporter: Some(person.clone()),
                creator: Some(person.clone()),
                histories,
            }
        })
        .collect();
    Site {
        projects: vec![SiteProject {
            key: "PRIV".into(),
            id: "10100".into(),
            name: "MARKER-PROJECT-NAME".into(),
            versions,
            issues,
        }],
        statuses,
        time_zone: "Europe/Berlin".into(),
        fields: vec![
            SiteField::new("customfield_1", "Team", "option", None),
            SiteField::new("customfield_2", "Areas", "array", Some("option")),
            SiteField::new("customfield_3", "Notes", "string", None),
        ],
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_and_logs_hold_no_issue_text_people_ids_or_tokens() {
    let fake = FakeJira::start(marker_site()).await;
    let (_tmp, data) = data_dir();
    let mut svc = spawn(
        &data,
        &[
            ("JIRA_BASE_URL", &fake.base_url()),
            ("JIRA_BEARER_TOKEN", TOKEN),
            ("JIRA_EXTRA_FIELDS", "Team, Areas"),
            ("DORA_LOG", "debug"),
            ("DORA_SNAPSHOT_DEBOUNCE_MS", "50"),
        ],
    );
    svc.wait_for("snapshot written", |f| u64_field(f, "projects") == 1, Duration::from_secs(60)).await;
    let mut client = svc.client().await;
    let r = client.get_metrics(metrics_request(&["PRIV"])).await.expect("figures").into_inner();
    let combined = r.combined.unwrap();
    assert!(combined.completed > 0 && combined.deployments > 0, "the harvest produced figures: {combined:?}");
    // The items behind the figures name issues and versions: in the
    // answers, and nowhere else.
    let mut listed = String::new();
    for figure in [Figure::Deployments, Figure::LeadTime, Figure::Completed] {
        let mut explain = explain_request(&["PRIV"], figure);
        explain.page_size = 3;
        let page = client.explain_metrics(explain.clone()).await.expect("items").into_inner();
        listed.push_str(&format!("{page:?}"));
        explain.page_token = page.next_page_token;
        listed.push_str(&format!("{:?}", client.explain_metrics(explain).await.expect("a second page").into_inner()));
    }
    assert!(listed.contains("PRIV-") && listed.contains("MARKER-VERSION"), "the lists name issues and versions");
    let (status, logs) = svc.stop().await;
    assert!(status.success(), "{status}");
    assert!(fake.request_count() > 0);

    let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    assert!(
        files.iter().any(|(n, _)| n == CURRENT) && files.iter().any(|(n, _)| n == PREVIOUS),
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (name, bytes) in &files {
        // Strings are stored as plain UTF-8: the search would find them.
        assert!(contains(bytes, "PRIV"), "{name}: the project key is expected in the snapshot");
        for marker in TEXT_MARKERS.iter().chain(ID_MARKERS).chain(FACT_MARKERS) {
            assert!(!contains(bytes, marker), "{name} contains `{marker}`");
        }
        let s = snapshot::decode(bytes).expect("a valid snapshot");
        assert_eq!(s.projects.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["PRIV"]);
        assert!(s.watermarks.contains_key("PRIV"));
        assert!(!s.jobs.is_empty() && !s.definitions.is_empty());
    }
    assert!(logs.contains("snapshot written") && logs.contains("jira response"), "debug logs were captured");
    for marker in TEXT_MARKERS.iter().chain(FACT_MARKERS).chain(&["PRIV-", "MARKER-VERSION"]) {
        assert!(!logs.contains(marker), "the logs contain `{marker}`");
    }
    // The allow-listed fields were asked for, the text field never.
    let asked = format!("{:?}", fake.requests());
    assert!(
        asked.contains("customfield_1") && asked.contains("customfield_2") && !asked.contains("customfield_3"),
        "{asked}"
    );
}

// ------------------------------------------------------------- start-up

fn small_site() -> Site {
    large_site(2, 120, 7)
}

/// A copy of the shipped definitions with one comment added: a new version
/// with the same meaning.
fn changed_definitions(into: &Path) -> PathBuf {
    let defs = into.join("defs");
    std::fs::create_dir_all(&defs).unwrap();
    for e in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("metrics-defs")).unwrap() {
        let e = e.unwrap();
        if e.path().extension().is_some_and(|x| x == "rhai") {
            std::fs::copy(e.path(), defs.join(e.file_name())).unwrap();
        }
    }
    let work = defs.join("work.rhai");
    let text = std::fs::read_to_string(&work).unwrap() + "\n// Same rules, new version.\n";
    std::fs::write(work, text).unwrap();
    defs
}

/// The shipped definitions with teams by component.
fn team_definitions(into: &Path) -> PathBuf {
    let defs = into.join("team-defs");
    std::fs::create_dir_all(&defs).unwrap();
    for file in jira_dora::definitions::DefinitionSet::shipped_files() {
        std::fs::write(defs.join(&file.name), &file.source).unwrap();
    }
    std::fs::write(defs.join("teams.rhai"), "fn teams(issue) {\n    issue.components\n}\n").unwrap();
    defs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_answers_from_the_snapshot_before_jira_answers_and_flags_other_definitions() {
    let fake = FakeJira::start(small_site()).await;
    let (tmp, data) = data_dir();
    let base = fake.base_url();
    let team_defs = team_definitions(tmp.path());
    let env = [
        ("JIRA_BASE_URL", base.as_str()),
        ("DORA_SNAPSHOT_DEBOUNCE_MS", "50"),
        ("DORA_DEFS_DIR", team_defs.to_str().unwrap()),
    ];

    // First run: harvest, snapshot, graceful stop.
    let mut first = spawn(&data, &env);
    first.wait_for("refresh finished", |_| true, Duration::from_secs(60)).await;
    first.wait_for("snapshot written", |f| u64_field(f, "projects") == 2, Duration::from_secs(30)).await;
    let keys = ["P0", "P1"];
    let before = first.client().await.get_metrics(metrics_request(&keys)).await.unwrap().into_inner();
    assert!(before.combined.as_ref().unwrap().completed > 0);
    // The teams' figures too.
    let teams_before = first.client().await.list_teams(ListTeamsRequest::default()).await.unwrap().into_inner();
    assert!(teams_before.teams.len() > 1, "{teams_before:?}");
    let team_request =
        || GetMetricsRequest { team: Some(teams_before.teams[0].name.clone()), ..metrics_request(&keys) };
    let team_before = first.client().await.get_metrics(team_request()).await.unwrap().into_inner();
    assert!(team_before.combined.as_ref().unwrap().completed > 0);
    assert!(team_before.combined.as_ref().unwrap().completed < before.combined.as_ref().unwrap().completed);
    let (status, logs) = first.stop().await;
    assert!(status.success() && logs.contains("\"reason\":\"shutdown\""), "{status}\n{logs}");

    // Second run: Jira answers nothing for a minute, the figures are there
    // at once, from the snapshot.
    fake.inject("/rest", 100_000, Fault::Delay(Duration::from_secs(60)));
    let started = Instant::now();
    let second = spawn(&data, &env);
    let after = second.client().await.get_metrics(metrics_request(&keys)).await.unwrap().into_inner();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(after.combined, before.combined);
    assert_eq!(after.projects, before.projects);
    assert_eq!(after.series, before.series);
    // Team aggregates round-trip through the snapshot file.
    assert_eq!(second.client().await.list_teams(ListTeamsRequest::default()).await.unwrap().into_inner(), teams_before);
    let team_after = second.client().await.get_metrics(team_request()).await.unwrap().into_inner();
    assert_eq!(
        (team_after.combined, team_after.projects, team_after.series),
        (team_before.combined, team_before.projects, team_before.series)
    );
    let (fresh_before, fresh_after) = (before.freshness.unwrap(), after.freshness.unwrap());
    for (b, a) in fresh_before.projects.iter().zip(&fresh_after.projects) {
        let ms =
            |t: &Option<pbjson_types::Timestamp>| t.as_ref().map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
        assert_eq!(ms(&a.last_harvest), ms(&b.last_harvest), "the age is the snapshot's (kept to the millisecond)");
        assert!(a.age_seconds.is_some());
        assert!(!a.definitions_stale);
    }
    assert!(second.fields("project refreshed").is_empty(), "no refresh could have finished");
    // The items behind them are not in a snapshot: they return after the
    // next refresh.
    let e = second.client().await.explain_metrics(explain_request(&keys, Figure::Deployments)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains("next refresh"), "{e:?}");
    let loaded = second.fields("snapshot loaded");
    assert_eq!(loaded.len(), 1, "{}", second.all_output());
    assert_eq!(u64_field(&loaded[0], "projects"), 2);
    drop(second.kill9().await);

    // Third run, with other definitions: served flagged stale, then
    // recomputed by the first refresh.
    fake.clear_faults();
    fake.inject("/rest", 40, Fault::Delay(Duration::from_millis(200)));
    let defs = changed_definitions(tmp.path());
    let mut third = spawn(&data, &[env[0], env[1], ("DORA_DEFS_DIR", defs.to_str().unwrap())]);
    let mut client = third.client().await;
    let stale = client.get_metrics(metrics_request(&keys)).await.unwrap().into_inner();
    assert_eq!(stale.combined, before.combined);
    let fresh = stale.freshness.unwrap();
    assert_ne!(fresh.definitions_version, fresh_before.definitions_version);
    for p in &fresh.projects {
        assert!(p.definitions_stale, "{p:?}");
        assert_eq!(p.definitions_version, fresh_before.definitions_version);
    }
    assert_eq!(u64_field(&third.fields("snapshot loaded")[0], "stale_projects"), 2);
    third.wait_for("refresh finished", |_| true, Duration::from_secs(60)).await;
    let recomputed = client.get_metrics(metrics_request(&keys)).await.unwrap().into_inner();
    assert!(recomputed.freshness.unwrap().projects.iter().all(|p| !p.definitions_stale));
    assert_eq!(recomputed.combined, before.combined, "same rules, same figures");
    let (status, _) = third.stop().await;
    assert!(status.success());
}

// ----------------------------------------------------------- corruption

fn big_state(projects: usize, weeks: usize, seq: u64) -> Snapshot {
    Snapshot {
        seq,
        taken_at: Utc::now().timestamp_millis() - 3_600_000,
        projects: large_aggregates(projects, weeks, 11)
            .into_iter()
            .map(|(key, weeks)| ProjectRecord {
                key,
                last_harvest: Some(Utc::now().timestamp_millis() - 3_600_000),
                definitions_version: "older".into(),
                weeks,
                teams: Default::default(),
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_snapshot_files_are_reported_and_skipped_never_fatal() {
    let fake = FakeJira::start(large_site(1, 10, 3)).await;
    let base = fake.base_url();
    let env =
        [("JIRA_BASE_URL", base.as_str()), ("DORA_SNAPSHOT_INTERVAL_MS", "0"), ("DORA_SNAPSHOT_DEBOUNCE_MS", "60000")];

    // A bit flip in the newest file: the previous one is served.
    let (_tmp, data) = data_dir();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join(PREVIOUS), snapshot::encode(&big_state(3, 10, 1))).unwrap();
    let mut flipped = snapshot::encode(&big_state(4, 10, 2));
    let at = flipped.len() / 2;
    flipped[at] ^= 0x10;
    std::fs::write(data.join(CURRENT), flipped).unwrap();
    let mut svc = spawn(&data, &env);
    let loaded = svc.wait_for("snapshot loaded", |_| true, Duration::from_secs(30)).await;
    assert_eq!((u64_field(&loaded, "seq"), loaded["file"].as_str()), (1, Some(PREVIOUS)));
    let rejected = svc.fields("snapshot rejected; set aside as *.rejected");
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0]["reason"].as_str().unwrap().contains("checksum mismatch"), "{rejected:?}");
    assert!(data.join(format!("{CURRENT}.rejected")).exists());
    let r = svc.client().await.get_metrics(metrics_request(&["P2"])).await.expect("P2 from the fallback").into_inner();
    assert!(r.freshness.unwrap().projects[0].age_seconds.unwrap() >= 3600);
    let missing = svc.client().await.get_metrics(metrics_request(&["P3"])).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "P3 was only in the corrupt file");
    drop(svc.kill9().await);

    // A truncated newest file and a previous one from an unknown format
    // version: an empty start that serves and harvests.
    let (_tmp2, data) = data_dir();
    std::fs::create_dir_all(&data).unwrap();
    let good = snapshot::encode(&big_state(2, 10, 5));
    std::fs::write(data.join(CURRENT), &good[..good.len() - 7]).unwrap();
    let mut future = good.clone();
    future[8..12].copy_from_slice(&9u32.to_le_bytes());
    std::fs::write(data.join(PREVIOUS), future).unwrap();
    let mut svc = spawn(&data, &env);
    svc.wait_for("no valid snapshot: starting empty", |_| true, Duration::from_secs(30)).await;
    let reasons: Vec<String> = svc
        .fields("snapshot rejected; set aside as *.rejected")
        .iter()
        .map(|f| f["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(reasons.iter().any(|r| r.starts_with("truncated")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("format version 9 is unknown")), "{reasons:?}");
    svc.wait_for("refresh finished", |_| true, Duration::from_secs(60)).await;
    let projects = svc.client().await.list_projects(ListProjectsRequest {}).await.unwrap().into_inner().projects;
    assert_eq!(projects.iter().map(|p| p.project_key.as_str()).collect::<Vec<_>>(), ["P0"]);
    let (status, _) = svc.stop().await;
    assert!(status.success());
    assert!(snapshot::decode(&std::fs::read(data.join(CURRENT)).unwrap()).is_ok());
}

#[test]
fn a_data_dir_that_cannot_be_written_stops_the_start_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_jira-dora"))
        .env_clear()
        .current_dir(tmp.path())
        .env("DORA_LISTEN", "127.0.0.1:0")
        .env("DORA_DATA_DIR", file.join("data"))
        .env("JIRA_BASE_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("writable data directory") && stderr.contains("cannot create it"), "{stderr}");
}

// ------------------------------------------------------------------ kill -9

/// What one run of the binary did before it was killed.
struct RunLog {
    loaded: Option<(u64, u64)>,
    written: Vec<(u64, u64)>,
    in_flight: Option<(u64, u64)>,
}

fn run_log(svc: &Service) -> RunLog {
    let pair = |f: &Value| (u64_field(f, "seq"), u64_field(f, "crc32"));
    let written: Vec<(u64, u64)> = svc.fields("snapshot written").iter().map(pair).collect();
    let last_written = written.last().map_or(0, |w| w.0);
    let in_flight = svc.fields("snapshot writing").iter().map(pair).rfind(|w| w.0 > last_written);
    RunLog { loaded: svc.fields("snapshot loaded").first().map(pair), written, in_flight }
}

/// The newest valid snapshot in `dir`, as the test itself reads it.
fn newest_on_disk(dir: &Path) -> Option<(u64, u64)> {
    [CURRENT, PREVIOUS]
        .iter()
        .filter_map(|name| std::fs::read(dir.join(name)).ok())
        .filter_map(|bytes| {
            snapshot::decode(&bytes).ok().map(|s| (s.seq, u64::from(snapshot::checksum(&bytes).unwrap())))
        })
        .max()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_always_leaves_a_completely_written_snapshot() {
    const PROJECTS: usize = 120;
    const RUNS: usize = 16;
    let fake = FakeJira::start(large_site(1, 10, 3)).await;
    let base = fake.base_url();
    let (_tmp, data) = data_dir();
    let initial = big_state(PROJECTS, 260, 1);
    let dir = SnapshotDir::open(&data).unwrap();
    let bytes = snapshot::encode(&initial);
    dir.write(&bytes).unwrap();
    // Every project of the state is configured (an unconfigured one would
    // be dropped); only P0 exists in the fake Jira.
    let projects = (0..PROJECTS).map(|n| format!("P{n}")).collect::<Vec<_>>().join(",");
    let env = [
        ("JIRA_BASE_URL", base.as_str()),
        ("DORA_PROJECTS", projects.as_str()),
        ("DORA_SNAPSHOT_INTERVAL_MS", "5"),
        ("DORA_SNAPSHOT_DEBOUNCE_MS", "5"),
    ];
    let mut rng = fastrand::Rng::with_seed(0xD0_4A);
    let mut candidates = vec![(1u64, u64::from(snapshot::checksum(&bytes).unwrap()))];
    let (mut kills_mid_write, mut writes) = (0, 0);
    let started = Instant::now();
    for run in 0..RUNS {
        let mut svc = spawn(&data, &env);
        let loaded = svc.wait_for("snapshot loaded", |_| true, Duration::from_secs(30)).await;
        let loaded = (u64_field(&loaded, "seq"), u64_field(&loaded, "crc32"));
        assert!(
            candidates.contains(&loaded),
            "run {run}: loaded {loaded:?}, but the complete snapshots were {candidates:?}"
        );
        // P0 is harvested from the fake too; every project is there.
        assert_eq!(u64_field(&svc.fields("snapshot loaded")[0], "projects"), PROJECTS as u64);
        if run % 2 == 0 {
            // At a random moment: right away, or after several writes.
            tokio::time::sleep(Duration::from_millis(rng.u64(0..600))).await;
        } else {
            // Aimed at the file write: just after a write begins.
            let deadline = Instant::now() + Duration::from_secs(20);
            while svc.fields("snapshot writing").is_empty() {
                assert!(Instant::now() < deadline, "no snapshot write began");
                std::thread::sleep(Duration::from_micros(200));
            }
            std::thread::sleep(Duration::from_micros(rng.u64(0..4000)));
        }
        let svc = svc.kill9().await;
        let temp_left =
            std::fs::read_dir(&data).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"));
        let log = run_log(&svc);
        assert_eq!(log.loaded, Some(loaded));
        writes += log.written.len();
        kills_mid_write += usize::from(log.in_flight.is_some() || temp_left);
        // Complete: the last one reported written, or the one in flight if
        // its rename happened before the kill.
        candidates = vec![log.written.last().copied().unwrap_or(loaded)];
        candidates.extend(log.in_flight);
        let on_disk = newest_on_disk(&data).expect("a valid snapshot on disk after every kill");
        assert!(candidates.contains(&on_disk), "run {run}: on disk {on_disk:?}, complete snapshots {candidates:?}");
        candidates = vec![on_disk];
    }
    // A last start: the state is whole, nothing lost.
    let svc = spawn(&data, &env);
    let r = svc.client().await.get_metrics(metrics_request(&["P7"])).await.unwrap().into_inner();
    assert!(r.combined.unwrap().completed > 0);
    let (status, _) = svc.stop().await;
    assert!(status.success());
    let last = snapshot::decode(&std::fs::read(data.join(CURRENT)).unwrap()).unwrap();
    let by_key: HashMap<&str, &ProjectRecord> = last.projects.iter().map(|p| (p.key.as_str(), p)).collect();
    for p in &initial.projects {
        if p.key != "P0" {
            assert_eq!(by_key[p.key.as_str()].weeks, p.weeks, "{} kept every week", p.key);
        }
    }
    eprintln!(
        "{RUNS} kills, {writes} snapshots written, {kills_mid_write} kills during a write, {:?}",
        started.elapsed()
    );
    assert!(kills_mid_write > 0, "no kill landed during a write");
}
