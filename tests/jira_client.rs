//! The Jira client against the fake Jira over real HTTP, both flavors:
//! pagination, changelog completion, faults, the egress rule and the
//! minimal-fields promise.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use fake_jira::{
    FakeJira, Fault, Site, SiteField, SiteFlavor, SiteHistory, SiteIssue, SiteItem, SiteProject, SiteStatus, SiteUser,
    SiteVersion,
};
use jira_dora::domain::facts::{FieldValue, IssueDraft, IssueId, StatusCategory, StatusChange};
use jira_dora::jira::{
    CloudChangelogs, FetchCounters, Flavor, JiraAuth, JiraClient, JiraConfig, JiraError, SecretString,
};

const MARKERS: &[&str] = &[
    "MARKER-SUMMARY",
    "MARKER-DESCRIPTION",
    "MARKER-COMMENT",
    "Marker Assignee",
    "marker.person@example.com",
    "MARKER-ITEM-TEXT",
    "marker-app-account",
    "MARKER-CUSTOM-TEXT",
    "MARKER-PERSON-FIELD",
];

fn statuses() -> Vec<SiteStatus> {
    let s = |id: &str, name: &str, cat: &str| SiteStatus { id: id.into(), name: name.into(), category_key: cat.into() };
    vec![
        s("1", "To Do", "new"),
        s("3", "In Progress", "indeterminate"),
        s("10001", "In Review", "indeterminate"),
        s("10002", "Done", "done"),
    ]
}

fn person() -> SiteUser {
    SiteUser {
        account_id: "marker-human-account".into(),
        account_type: "atlassian".into(),
        display_name: "Marker Assignee".into(),
        email: "marker.person@example.com".into(),
    }
}

fn app() -> SiteUser {
    SiteUser {
        account_id: "marker-app-account".into(),
        account_type: "app".into(),
        display_name: "Automation for Jira".into(),
        email: String::new(),
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap()
}

/// An issue `n` of `project` with `histories` status changes cycling
/// through the workflow (plus a summary edit carrying text), updated at
/// `t0 + n hours + histories minutes`.
fn issue(project: &str, n: usize, histories: usize) -> SiteIssue {
    let st = statuses();
    let created = t0() + chrono::Duration::hours(n as i64);
    let mut hs = Vec::new();
    let mut cur = 0usize;
    for h in 0..histories {
        let next = (cur + 1) % st.len();
        let mut items = vec![SiteItem::status(&st[cur], &st[next])];
        if h == 0 {
            items.insert(
                0,
                SiteItem {
                    field: "summary".into(),
                    field_id: Some("summary".into()),
                    from: None,
                    from_string: Some("MARKER-ITEM-TEXT old".into()),
                    to: None,
                    to_string: Some("MARKER-ITEM-TEXT new".into()),
                },
            );
        }
        hs.push(SiteHistory {
            id: format!("{}", 500_000 + n * 1000 + h),
            created: created + chrono::Duration::minutes(h as i64 + 1),
            author: match h % 3 {
                0 => Some(app()),
                1 => Some(person()),
                _ => None,
            },
            items,
        });
        cur = next;
    }
    SiteIssue {
        id: format!("{}", 20_000 + n),
        key: format!("{project}-{}", n + 1),
        issue_type: if n.is_multiple_of(7) { "Bug".into() } else { "Story".into() },
        is_subtask: false,
        labels: if n.is_multiple_of(5) { vec!["ai-assisted".into()] } else { vec![] },
        created,
        updated: created + chrono::Duration::minutes(histories as i64 + 1),
        resolved: (st[cur].category_key == "done").then(|| created + chrono::Duration::minutes(histories as i64)),
        status_id: st[cur].id.clone(),
        fix_versions: vec!["900".into()],
        affected_versions: if n.is_multiple_of(7) { vec!["901".into()] } else { vec![] },
        components: vec!["Billing".into()],
        priority: Some("High".into()),
        custom: vec![
            ("customfield_10010".into(), serde_json::json!({"id": "1", "value": "Payments"})),
            ("customfield_10012".into(), serde_json::json!(n)),
            ("customfield_10014".into(), serde_json::json!("MARKER-CUSTOM-TEXT the customer said")),
            ("customfield_10015".into(), serde_json::json!({"accountId": "x", "displayName": "MARKER-PERSON-FIELD"})),
        ],
        summary: "MARKER-SUMMARY checkout button".into(),
        description: "MARKER-DESCRIPTION steps to reproduce".into(),
        comments: vec!["MARKER-COMMENT looks good".into()],
        assignee: Some(person()),
        reporter: Some(person()),
        creator: Some(person()),
        histories: hs,
    }
}

fn site(issues: usize, long_every: usize) -> Site {
    let versions = (0..120)
        .map(|v| SiteVersion {
            id: format!("{}", 900 + v),
            name: format!("1.{v}.0"),
            released: v % 4 != 3,
            release_date: chrono::NaiveDate::from_ymd_opt(2025, 1, 1).map(|d| d + chrono::Duration::days(v as i64)),
            archived: v % 10 == 0,
            description: "MARKER-DESCRIPTION release notes".into(),
        })
        .collect();
    Site {
        projects: vec![
            SiteProject {
                key: "OPS".into(),
                id: "10000".into(),
                name: "Operations".into(),
                versions,
                issues: (0..issues)
                    .map(|n| issue("OPS", n, if long_every > 0 && n % long_every == 0 { 45 } else { 4 }))
                    .collect(),
            },
            SiteProject { key: "PAY".into(), id: "10001".into(), name: "Payments".into(), ..Default::default() },
        ],
        statuses: statuses(),
        time_zone: "America/Los_Angeles".into(),
        fields: vec![
            SiteField::new("customfield_10010", "Team", "option", None),
            SiteField::new("customfield_10012", "Story points", "number", None),
            SiteField::new("customfield_10014", "Customer notes", "string", None),
            SiteField::new("customfield_10015", "Reviewer", "user", None),
        ],
    }
}

fn config(fake: &FakeJira, flavor: Flavor) -> JiraConfig {
    JiraConfig {
        flavor,
        retry_base: Duration::from_millis(5),
        retry_cap: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        ..JiraConfig::new(fake.base_url())
    }
}

fn client(cfg: JiraConfig) -> JiraClient {
    JiraClient::new(cfg).expect("client")
}

fn paths(fake: &FakeJira, prefix: &str) -> usize {
    fake.requests().iter().filter(|r| r.path.starts_with(prefix)).count()
}

fn dc_or_cloud_apps(f: &IssueDraft) -> [bool; 3] {
    [f.changes[0].by_app, f.changes[1].by_app, f.changes[2].by_app]
}

fn assert_complete(issues: &[IssueDraft], expected: usize, long_every: usize) {
    assert_eq!(issues.len(), expected);
    for f in issues {
        let n = f.id.0 as usize - 20_000;
        let want = if long_every > 0 && n.is_multiple_of(long_every) { 45 } else { 4 };
        assert_eq!(f.changes.len(), want, "issue {n} has its complete status changelog");
        assert!(f.changes.windows(2).all(|w| w[0].at <= w[1].at), "oldest first");
        // Authors cycle app, person, none (DC users have no accountType).
        let apps = dc_or_cloud_apps(f);
        assert!(apps == [true, false, false] || apps == [false, false, false], "{apps:?}");
        assert_eq!(f.changes[0].from.name, "To Do");
        assert_eq!(f.changes[0].to.id, "3");
    }
}

#[tokio::test]
async fn cloud_search_pages_by_token_and_takes_every_changelog_from_bulkfetch() {
    let fake = FakeJira::start(site(230, 20)).await;
    let c = client(config(&fake, Flavor::Cloud));
    let counters = FetchCounters::default();
    let issues = c.search_issues("OPS", None, &counters).await.unwrap();
    assert_complete(&issues, 230, 20);
    assert_eq!(paths(&fake, "/rest/api/3/search/jql"), 3, "100 + 100 + 30");
    for search in fake.requests().iter().filter(|r| r.path.ends_with("/search/jql")) {
        assert!(!search.query_decoded.contains("expand"), "{}", search.query_decoded);
    }
    // 12 × 45 + 218 × 4 = 1412 status histories, 1000 per bulk page.
    assert_eq!(paths(&fake, "/rest/api/3/changelog/bulkfetch"), 2);
    assert_eq!(paths(&fake, "/rest/api/3/issue/"), 0);
    assert_eq!(counters.issues.load(Ordering::Relaxed), 230);
    assert_eq!(counters.pages.load(Ordering::Relaxed), 5);
    let first = issues.iter().find(|f| f.id == IssueId(20000)).unwrap();
    assert_eq!(first.project, "OPS");
    assert_eq!(first.issue_type, "Bug");
    assert_eq!(first.labels[..], ["ai-assisted"]);
    assert_eq!(first.affected_versions[..], ["901"]);
    assert_eq!(first.created, t0().timestamp_millis());
    let bulk = fake.requests().into_iter().find(|r| r.path.ends_with("bulkfetch")).unwrap();
    let body: serde_json::Value = serde_json::from_str(&bulk.body).unwrap();
    assert_eq!(body["fieldIds"], serde_json::json!(["status"]));
    assert_eq!(body["issueIdsOrKeys"].as_array().unwrap().len(), 230);
}

#[tokio::test]
async fn bulk_changelog_requests_name_at_most_1000_issues() {
    let fake = FakeJira::start(site(1001, 0)).await;
    let c = client(config(&fake, Flavor::Cloud));
    let issues = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap();
    assert_complete(&issues, 1001, 0);
    let sizes: Vec<usize> = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/bulkfetch"))
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["issueIdsOrKeys"].as_array().unwrap().len()
        })
        .collect();
    // 1000 issues × 4 histories in pages of 1000, then the last issue.
    assert_eq!(sizes, vec![1000, 1000, 1000, 1000, 1]);
}

#[tokio::test]
async fn expanded_cloud_searches_complete_cut_changelogs_in_bulk() {
    let fake = FakeJira::start(site(230, 20)).await;
    let c = client(JiraConfig { cloud_changelogs: CloudChangelogs::ExpandedSearch, ..config(&fake, Flavor::Cloud) });
    let issues = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap();
    assert_complete(&issues, 230, 20);
    assert_eq!(paths(&fake, "/rest/api/3/changelog/bulkfetch"), 1, "12 long changelogs fit one bulk page");
    let bulk = fake.requests().into_iter().find(|r| r.path.ends_with("bulkfetch")).unwrap();
    let body: serde_json::Value = serde_json::from_str(&bulk.body).unwrap();
    assert_eq!(body["issueIdsOrKeys"].as_array().unwrap().len(), 12);
}

#[tokio::test]
async fn bulk_changelog_pages_follow_next_page_token() {
    // 30 issues of 45 histories = 1350 > 1000 per bulk page.
    let fake = FakeJira::start(site(30, 1)).await;
    let c = client(config(&fake, Flavor::Cloud));
    let issues = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap();
    assert_complete(&issues, 30, 1);
    assert_eq!(paths(&fake, "/rest/api/3/changelog/bulkfetch"), 2);
}

#[tokio::test]
async fn a_cloud_site_without_bulkfetch_is_an_error_never_a_fetch_of_whole_changelogs() {
    let fake = FakeJira::start(site(25, 5)).await;
    fake.set_bulk_changelog(false);
    let c = client(config(&fake, Flavor::Cloud));
    let err = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap_err();
    assert_eq!(err.http_status(), Some(404));
    assert_eq!(err.to_string(), "POST /rest/api/3/changelog/bulkfetch: HTTP 404");
    assert_eq!(paths(&fake, "/rest/api/3/issue/"), 0, "no per-issue changelog");
}

#[tokio::test]
async fn data_center_search_pages_by_start_at_with_full_changelogs() {
    let fake = FakeJira::try_start(site(130, 10), SiteFlavor::DataCenter).await.unwrap();
    let c = client(JiraConfig { page_size: 50, ..config(&fake, Flavor::DataCenter) });
    let issues = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap();
    assert_complete(&issues, 130, 10);
    assert!(issues.iter().flat_map(|f| &f.changes).all(|c| !c.by_app), "DC authors have no accountType");
    assert_eq!(paths(&fake, "/rest/api/2/search"), 3);
    assert_eq!(fake.request_count(), 3, "no changelog requests on DC");
    let statuses = c.statuses().await.unwrap();
    assert_eq!(statuses.len(), 4);
    assert_eq!(statuses[3].category, StatusCategory::Done);
    assert_eq!(c.projects().await.unwrap(), vec!["OPS".to_string(), "PAY".to_string()]);
    assert_eq!(c.versions("OPS").await.unwrap().len(), 120);
}

#[tokio::test]
async fn cloud_rejects_the_retired_search_and_client_never_uses_it() {
    let fake = FakeJira::start(site(1, 0)).await;
    let c = client(config(&fake, Flavor::DataCenter));
    let err = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap_err();
    assert_eq!(err.http_status(), Some(410), "{err}"); // the retired search is gone on Cloud
    let cloud = client(config(&fake, Flavor::Cloud));
    cloud.search_issues("OPS", None, &FetchCounters::default()).await.unwrap();
    assert!(fake.requests().iter().all(|r| r.path != "/rest/api/3/search"));
}

#[tokio::test]
async fn versions_come_in_one_request_and_fall_back_to_the_paged_list() {
    let fake = FakeJira::start(site(1, 0)).await;
    let c = client(config(&fake, Flavor::Cloud));
    let vs = c.versions("OPS").await.unwrap();
    assert_eq!(vs.len(), 120);
    assert_eq!(fake.request_count(), 1, "the unpaged list, whatever the number of versions");
    assert!(!vs[3].released);
    assert_eq!(vs[0].release_date, chrono::NaiveDate::from_ymd_opt(2025, 1, 1));
    assert!(vs[10].archived);
    fake.clear_requests();
    fake.inject("/rest/api/3/project/OPS/versions", 1, Fault::Status(404));
    let paged = c.versions("OPS").await.unwrap();
    assert_eq!(paged, vs);
    let paged_requests = fake.requests().iter().filter(|r| r.path == "/rest/api/3/project/OPS/version").count();
    assert_eq!(paged_requests, 3, "50 + 50 + 20");
    let err = c.versions("NOPE").await.unwrap_err();
    assert!(err.to_string().contains("GET /rest/api/3/project/NOPE/version: HTTP 404"), "{err}");
    assert_eq!(c.projects().await.unwrap(), vec!["OPS".to_string(), "PAY".to_string()]);
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured_and_counted() {
    let fake = FakeJira::start(site(3, 0)).await;
    fake.inject("/rest/api/3/search/jql", 1, Fault::RateLimited { retry_after_secs: 1 });
    let c = client(config(&fake, Flavor::Cloud));
    let counters = FetchCounters::default();
    let started = Instant::now();
    let issues = c.search_issues("OPS", None, &counters).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
    assert_eq!(issues.len(), 3);
    assert_eq!(counters.retries.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_with_the_request() {
    let fake = FakeJira::start(site(3, 0)).await;
    fake.inject("/rest/api/3/search/jql", 2, Fault::Status(500));
    let c = client(config(&fake, Flavor::Cloud));
    let counters = FetchCounters::default();
    assert_eq!(c.search_issues("OPS", None, &counters).await.unwrap().len(), 3);
    assert_eq!(counters.retries.load(Ordering::Relaxed), 2);

    let c = client(JiraConfig { max_retries: 2, ..config(&fake, Flavor::Cloud) });
    fake.inject("/rest/api/3/status", 10, Fault::Status(503));
    let err = c.statuses().await.unwrap_err();
    assert_eq!(err.to_string(), "GET /rest/api/3/status: HTTP 503 (after 3 attempts)");
    // 4xx other than 429 are not retried.
    fake.clear_faults();
    fake.clear_requests();
    fake.inject("/rest/api/3/status", 10, Fault::Status(403));
    assert_eq!(c.statuses().await.unwrap_err().http_status(), Some(403));
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let fake = FakeJira::start(site(2, 0)).await;
    let c = client(JiraConfig {
        request_timeout: Duration::from_millis(300),
        max_retries: 1,
        ..config(&fake, Flavor::Cloud)
    });
    fake.inject("/rest/api/3/status", 1, Fault::Delay(Duration::from_secs(2)));
    assert_eq!(c.statuses().await.unwrap().len(), 4);
    fake.inject("/rest/api/3/status", 2, Fault::Delay(Duration::from_secs(2)));
    let err = c.statuses().await.unwrap_err();
    assert!(matches!(err, JiraError::Timeout { .. }), "{err}");
    assert!(err.to_string().starts_with("GET /rest/api/3/status: no complete answer within"), "{err}");
}

#[tokio::test]
async fn cut_off_and_malformed_bodies_are_clear_errors() {
    let fake = FakeJira::start(site(2, 0)).await;
    let c = client(JiraConfig { max_retries: 1, ..config(&fake, Flavor::Cloud) });
    fake.inject("/rest/api/3/search/jql", 1, Fault::Truncated);
    assert_eq!(c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap().len(), 2);
    fake.inject("/rest/api/3/search/jql", 2, Fault::Truncated);
    let err = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap_err();
    assert!(matches!(err, JiraError::BodyCut { .. }), "{err}");
    assert!(err.to_string().starts_with("GET /rest/api/3/search/jql: response body cut off"), "{err}");

    fake.clear_requests();
    fake.inject("/rest/api/3/search/jql", 1, Fault::Malformed);
    let err = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("GET /rest/api/3/search/jql: malformed JSON at line 1, column"), "{msg}");
    assert_eq!(paths(&fake, "/rest/api/3/search/jql"), 1, "malformed bodies are not retried");
}

#[tokio::test]
async fn redirects_are_refused_and_never_followed() {
    let fake = FakeJira::start(site(2, 0)).await;
    let c = client(config(&fake, Flavor::Cloud));
    fake.inject("/rest/api/3/status", 1, Fault::Redirect("http://collector.example.net/steal".into()));
    let err = c.statuses().await.unwrap_err();
    assert!(matches!(err, JiraError::RedirectRefused { status: 302, .. }), "{err}");
    assert!(err.to_string().contains("GET /rest/api/3/status: redirect refused"), "{err}");
    assert_eq!(fake.request_count(), 1);
    // An on-site redirect is refused as well: the client follows none.
    fake.inject("/rest/api/3/status", 1, Fault::Redirect(format!("{}/rest/api/3/status", fake.base_url())));
    assert!(matches!(c.statuses().await, Err(JiraError::RedirectRefused { .. })));
}

#[tokio::test]
async fn bad_configuration_is_rejected() {
    for bad in
        ["", "ftp://jira.example.com", "https://user:pw@jira.example.com", "https://jira.example.com/?a=b", "not a url"]
    {
        let err = JiraClient::new(JiraConfig::new(bad)).unwrap_err();
        assert!(matches!(err, JiraError::Config(_)), "{bad}: {err}");
        assert!(!err.to_string().contains("pw"), "{err}");
    }
}

#[tokio::test]
async fn credentials_never_show_in_debug_or_errors() {
    let fake = FakeJira::start(site(1, 0)).await;
    let mut cfg = config(&fake, Flavor::Cloud);
    cfg.auth = JiraAuth::Basic { email: "bot@example.com".into(), token: SecretString::new("TOPSECRET-TOKEN") };
    assert!(!format!("{cfg:?}").contains("TOPSECRET"));
    let c = client(cfg);
    assert!(!format!("{c:?}").contains("TOPSECRET"));
    fake.inject("/rest/api/3/status", 10, Fault::Status(401));
    let err = c.statuses().await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("TOPSECRET"));
    let bearer = JiraAuth::Bearer(SecretString::new("TOPSECRET-PAT"));
    assert_eq!(format!("{bearer:?}"), "Bearer(***)");
}

/// Every field of the facts, named: adding author data to a fact type
/// breaks this test at compile time.
fn assert_no_author_fields(f: &IssueDraft) {
    let IssueDraft {
        id: _,
        key: _,
        project: _,
        issue_type: _,
        is_subtask: _,
        labels: _,
        created: _,
        updated: _,
        resolved: _,
        status: _,
        status_category: _,
        fix_versions: _,
        affected_versions: _,
        components: _,
        priority: _,
        fields: _,
        changes,
    } = f;
    for c in changes {
        let StatusChange { at: _, from: _, to: _, by_app: _ } = c;
    }
}

async fn full_fetch(fake: &FakeJira, flavor: Flavor) -> Vec<IssueDraft> {
    let c = client(JiraConfig { extra_fields: vec!["team".into(), "Story points".into()], ..config(fake, flavor) });
    c.projects().await.unwrap();
    c.statuses().await.unwrap();
    c.versions("OPS").await.unwrap();
    let all = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap();
    c.search_issues("OPS", Some(t0().timestamp_millis()), &FetchCounters::default()).await.unwrap();
    all
}

#[tokio::test]
async fn extra_fields_that_do_not_exist_or_could_hold_text_are_refused_by_name_and_type() {
    let fake = FakeJira::start(site(3, 0)).await;
    let names = ["Customer notes", "Reviewer", "Nowhere", "Team"].map(String::from).to_vec();
    let c = client(JiraConfig { extra_fields: names, ..config(&fake, Flavor::Cloud) });
    let e = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap_err();
    assert!(matches!(e, JiraError::ExtraFields(ref problems) if problems.len() == 3), "{e}");
    let text = e.to_string();
    for expected in [
        "`Customer notes` (customfield_10014) is of type `string`",
        "`Reviewer` (customfield_10015) is of type `user`",
        "no field of the Jira site is named `Nowhere`",
    ] {
        assert!(text.contains(expected), "{text} lacks {expected}");
    }
    // Nothing was searched.
    assert_eq!(paths(&fake, "/rest/api/3/search"), 0);
}

#[tokio::test]
async fn a_full_fetch_never_asks_for_text_or_people_and_keeps_none() {
    let cloud = FakeJira::start(site(40, 4)).await;
    let mut issues = full_fetch(&cloud, Flavor::Cloud).await;
    let dc = FakeJira::try_start(site(40, 4), SiteFlavor::DataCenter).await.unwrap();
    issues.extend(full_fetch(&dc, Flavor::DataCenter).await);
    assert_eq!(issues.len(), 80);
    let log: Vec<_> = cloud.requests().into_iter().chain(dc.requests()).collect();
    assert!(log.iter().any(|r| r.path.ends_with("/bulkfetch")), "bulk changelogs were exercised");
    for r in &log {
        let seen = format!("{} {} {}", r.query_decoded, r.query, r.body).to_lowercase();
        for word in [
            "summary",
            "description",
            "comment",
            "assignee",
            "reporter",
            "creator",
            "watchers",
            "*all",
            "*navigable",
            "customfield_10014",
            "customfield_10015",
        ] {
            assert!(!seen.contains(word), "{} {} asked for {word}: {seen}", r.method, r.path);
        }
    }
    // The allow-listed fields were asked for by id, and the field list once
    // per client.
    let searches: Vec<_> =
        log.iter().filter(|r| format!("{} {}", r.query_decoded, r.body).contains("issuetype")).collect();
    assert!(!searches.is_empty());
    for r in searches {
        let seen = format!("{} {}", r.query_decoded, r.body);
        assert!(seen.contains("components,priority,customfield_10010,customfield_10012"), "{seen}");
    }
    assert_eq!(log.iter().filter(|r| r.path.ends_with("/field")).count(), 2);
    for f in &issues {
        assert_no_author_fields(f);
        assert_eq!((&f.components[..], f.priority.as_deref()), (&["Billing".into()][..], Some("High")));
        assert_eq!(f.fields[0], ("team".into(), Some(FieldValue::Option("Payments".into()))));
        assert!(matches!(f.fields[1], (ref name, Some(FieldValue::Number(_))) if &**name == "Story points"));
        let text = format!("{f:?}");
        for m in MARKERS {
            assert!(!text.contains(m), "{m} leaked into {text}");
        }
    }
}

#[tokio::test]
async fn since_watermark_is_local_minute_minus_overlap() {
    // Auckland is UTC+13 in March: the JQL date must be local.
    let mut s = site(48, 0);
    s.time_zone = "Pacific/Auckland".into();
    let fake = FakeJira::start(s).await;
    let c = client(config(&fake, Flavor::Cloud));
    // Issue n is updated at t0 + n h + 5 min. Watermark at t0 + 10 h + 7 min 30 s:
    // minus 5 min overlap = 10 h 2 min 30 s, rounded down to 10 h 2 min.
    let since = t0() + chrono::Duration::seconds(10 * 3600 + 7 * 60 + 30);
    let issues = c.search_issues("OPS", Some(since.timestamp_millis()), &FetchCounters::default()).await.unwrap();
    let got: BTreeSet<usize> = issues.iter().map(|f| f.id.0 as usize - 20_000).collect();
    assert_eq!(got, (10..48).collect::<BTreeSet<_>>());
    let search = fake.requests().into_iter().find(|r| r.path == "/rest/api/3/search/jql").unwrap();
    // 2025-03-01 19:02 UTC is 2025-03-02 08:02 in Auckland.
    assert!(
        search.query_decoded.contains("project = \"OPS\" AND updated >= \"2025-03-02 08:02\" ORDER BY updated ASC"),
        "{}",
        search.query_decoded
    );
    assert_eq!(paths(&fake, "/rest/api/3/myself"), 1);
    c.search_issues("OPS", Some(since.timestamp_millis()), &FetchCounters::default()).await.unwrap();
    assert_eq!(paths(&fake, "/rest/api/3/myself"), 1, "time zone cached");
}

#[tokio::test]
async fn an_unknown_account_zone_reaches_back_by_the_largest_utc_offset() {
    let fake = FakeJira::start(site(4, 0)).await;
    fake.inject("/rest/api/3/myself", 1, Fault::Status(404));
    let c = client(config(&fake, Flavor::Cloud));
    // Watermark 2025-03-01 19:07:30 UTC, minus 5 min overlap and 14 h.
    let since = t0() + chrono::Duration::seconds(10 * 3600 + 7 * 60 + 30);
    c.search_issues("OPS", Some(since.timestamp_millis()), &FetchCounters::default()).await.unwrap();
    let search = fake.requests().into_iter().find(|r| r.path == "/rest/api/3/search/jql").unwrap();
    assert!(search.query_decoded.contains("updated >= \"2025-03-01 05:02\""), "{}", search.query_decoded);
}

#[tokio::test]
async fn edits_between_harvests_show_up_in_the_next_incremental_search() {
    let fake = FakeJira::start(site(10, 0)).await;
    let c = client(config(&fake, Flavor::Cloud));
    let later = t0() + chrono::Duration::days(3);
    fake.set_now(later);
    assert!(fake.transition("OPS-2", "10002", Some(app())));
    assert!(fake.edit_issue("OPS-3", |i| i.labels.push("dora-exclude".into())));
    assert!(fake.delete_issue("OPS-4"));
    let moved = fake.move_issue("OPS-5", "PAY").unwrap();
    assert_eq!(moved, "PAY-1");
    let since = (later - chrono::Duration::minutes(1)).timestamp_millis();
    let ops = c.search_issues("OPS", Some(since), &FetchCounters::default()).await.unwrap();
    let ids: Vec<String> = ops.iter().map(|f| f.id.to_string()).collect();
    assert_eq!(ids, vec!["20001", "20002"]);
    let done = &ops[0];
    assert_eq!(done.status_category, StatusCategory::Done);
    assert!(done.changes.last().unwrap().by_app);
    assert_eq!(ops[1].labels[..], ["dora-exclude"]);
    let pay = c.search_issues("PAY", Some(since), &FetchCounters::default()).await.unwrap();
    assert_eq!((pay.len(), pay[0].id.to_string().as_str(), pay[0].project.as_str()), (1, "20004", "PAY"));
}

#[tokio::test]
async fn app_accounts_can_be_ignored_or_added() {
    let fake = FakeJira::start(site(1, 0)).await;
    let c = client(JiraConfig {
        ignored_app_account_ids: vec!["marker-app-account".into()],
        ai_account_ids: vec!["marker-human-account".into()],
        ..config(&fake, Flavor::Cloud)
    });
    let issues = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap();
    let by_app: Vec<bool> = issues[0].changes.iter().map(|c| c.by_app).collect();
    assert_eq!(by_app, vec![false, true, false, false]);
}

#[tokio::test]
async fn fake_answers_bad_jql_like_jira() {
    let fake = FakeJira::start(site(1, 0)).await;
    let http = reqwest_like_get(&fake, "/rest/api/3/search/jql?jql=").await;
    assert_eq!(http.0, 400);
    assert!(http.1.contains("errorMessages"));
    let http = reqwest_like_get(&fake, "/rest/api/3/search/jql?jql=summary%20~%20x").await;
    assert_eq!(http.0, 400);
    let http = reqwest_like_get(&fake, "/rest/api/3/search?jql=project%3DOPS").await;
    assert_eq!(http.0, 410);
}

/// A bare HTTP/1.1 GET over a TCP socket (no client library involved).
async fn reqwest_like_get(fake: &FakeJira, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = fake.base_url().trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let code = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, buf)
}

#[tokio::test]
async fn the_demo_site_harvests_completely_and_shows_the_ai_shift() {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
    let site = fake_jira::demo::demo_site(today);
    let expected: Vec<(String, usize, usize)> = site
        .projects
        .iter()
        .map(|p| {
            let changes = p
                .issues
                .iter()
                .flat_map(|i| &i.histories)
                .flat_map(|h| &h.items)
                .filter(|i| i.field == "status")
                .count();
            (p.key.clone(), p.issues.len(), changes)
        })
        .collect();
    let fake = FakeJira::start(site).await;
    let c = client(config(&fake, Flavor::Cloud));
    assert_eq!(c.projects().await.unwrap(), vec!["SHOP", "PAY", "OPS"]);
    assert_eq!(c.statuses().await.unwrap().len(), 8);
    let rollout = fake_jira::demo::demo_ai_rollout(today).and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for (key, issues, changes) in expected {
        let got = c.search_issues(&key, None, &FetchCounters::default()).await.unwrap();
        assert_eq!(got.len(), issues, "{key}");
        assert_eq!(got.iter().map(|f| f.changes.len()).sum::<usize>(), changes, "{key}");
        assert!(!c.versions(&key).await.unwrap().is_empty());
        for f in got.iter().filter(|f| f.issue_type == "Story" && f.status_category == StatusCategory::Done) {
            let start = f.changes.iter().find(|c| c.to.name == "In Progress").map_or(f.created, |c| c.at);
            let lead = f.resolved.unwrap() - start;
            if f.created >= rollout { after.push(lead) } else { before.push(lead) }
        }
    }
    let median = |v: &mut Vec<i64>| {
        v.sort();
        v[v.len() / 2]
    };
    let (b, a) = (median(&mut before), median(&mut after));
    assert!(a < b, "median lead time before {b} ms, after {a} ms");
}

#[tokio::test]
async fn off_site_redirects_and_next_links_never_reach_another_host() {
    let fake = FakeJira::start(site(2, 0)).await;
    let elsewhere = FakeJira::start(site(2, 0)).await;
    let c = client(config(&fake, Flavor::Cloud));
    let there = elsewhere.base_url();

    fake.inject("/rest/api/3/status", 1, Fault::Redirect(format!("{there}/rest/api/3/status")));
    assert!(matches!(c.statuses().await, Err(JiraError::RedirectRefused { .. })));

    // A page whose `nextPage` link points elsewhere: the client builds the
    // next request itself, on the configured site.
    let page = format!(
        r#"{{"self":"{there}/rest/api/3/project/search","nextPage":"{there}/rest/api/3/project/search?startAt=1","maxResults":1,"startAt":0,"total":2,"isLast":false,"values":[{{"id":"1","key":"OPS"}}]}}"#
    );
    fake.inject("/rest/api/3/project/search", 1, Fault::Body(page));
    c.projects().await.unwrap();
    let pages: Vec<_> = fake.requests().into_iter().filter(|r| r.path == "/rest/api/3/project/search").collect();
    assert_eq!(pages.len(), 2);
    assert!(pages[1].query.contains("startAt=1"), "{:?}", pages[1]);

    // A page token that is a URL elsewhere is only ever a query parameter.
    let search = format!(r#"{{"issues":[],"isLast":false,"nextPageToken":"{there}/rest/api/3/search/jql?steal=1"}}"#);
    fake.inject("/rest/api/3/search/jql", 1, Fault::Body(search));
    let err = c.search_issues("OPS", None, &FetchCounters::default()).await.unwrap_err();
    assert_eq!(err.http_status(), Some(400), "the site refuses the odd token: {err}");

    // A viewer's credential is not sent after a redirect either.
    fake.inject("/rest/api/3/mypermissions", 1, Fault::Redirect(format!("{there}/rest/api/3/mypermissions")));
    assert!(c.my_permission(&SecretString::new("Bearer viewer"), "OPS").await.is_err(), "a redirect is no yes");
    assert_eq!(elsewhere.request_count(), 0, "{:?}", elsewhere.requests());
}

#[tokio::test]
async fn permission_checks_ask_as_the_viewer_or_about_the_account() {
    let fake = FakeJira::start(site(2, 0)).await;
    let c = client(config(&fake, Flavor::Cloud));
    let viewer = SecretString::new("Bearer viewer-token");
    fake.grant_viewer("Bearer viewer-token", &["OPS"]);
    assert!(c.my_permission(&viewer, "OPS").await.unwrap());
    assert!(!c.my_permission(&viewer, "NOPE").await.unwrap(), "a missing project is a no");
    let err = c.my_permission(&SecretString::new("Bearer stranger"), "OPS").await.unwrap_err();
    assert_eq!(err.http_status(), Some(401));
    assert!(!err.to_string().contains("stranger"), "{err}");
    let asked = fake.requests().into_iter().find(|r| r.path == "/rest/api/3/mypermissions").unwrap();
    assert!(
        asked.query_decoded.contains("projectKey=OPS") && asked.query_decoded.contains("permissions=BROWSE_PROJECTS"),
        "{asked:?}"
    );

    fake.grant_account("557058:viewer", &["OPS"]);
    let keys = vec!["OPS".to_string(), "NOPE".to_string()];
    assert_eq!(c.check_account("557058:viewer", &keys).await.unwrap(), [true, false]);
    assert_eq!(c.check_account("557058:nobody", &keys).await.unwrap(), [false, false]);

    // Jira down: an error after one retry, never a yes.
    fake.inject("/rest/api/3/mypermissions", 10, Fault::Status(503));
    let err = c.my_permission(&viewer, "OPS").await.unwrap_err();
    assert_eq!(err.http_status(), Some(503));
    assert_eq!(paths(&fake, "/rest/api/3/mypermissions"), 3 + 2, "one retry at most");
}
