//! What crosses the network: a full and an incremental harvest of a fake
//! Jira whose every private field carries a marker, with the markers counted
//! in the answer bodies the client received (the fake logs each answer as it
//! sends it), per endpoint, and in what the harvest keeps.
//!
//! On Cloud no search answer carries issue text or people, and changelog
//! answers carry only the authors of status changes; on Data Center, whose
//! searches expand whole changelogs, the search answers carry changelog text
//! and authors but no issue field beyond the metric ones. Version
//! descriptions come with every version object Jira sends, the account's own
//! profile with `myself`. On both flavors, nothing survives parsing. A client
//! that asks for more is shown to receive the markers, so a regression shows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fake_jira::{
    FakeJira, Site, SiteFlavor, SiteHistory, SiteIssue, SiteItem, SiteProject, SiteStatus, SiteUser, SiteVersion,
};
use jira_dora::definitions::DefinitionSet;
use jira_dora::harvest::{Harvester, JobState};
use jira_dora::jira::{CloudChangelogs, Flavor, JiraClient, JiraConfig};
use jira_dora::store::Store;

/// Issue text: fields and the text of non-status changelog items.
const SUMMARY: &str = "MARKER-SUMMARY";
const DESCRIPTION: &str = "MARKER-DESCRIPTION";
const COMMENT: &str = "MARKER-COMMENT";
const ITEM_TEXT: &str = "MARKER-ITEM-TEXT";
/// People on the issue, and the author of edits that change no status.
const ASSIGNEE: &str = "Marker Assignee";
const REPORTER: &str = "Marker Reporter";
const EDITOR: &str = "Marker Editor";
/// Authors of status changes (a person and an automation).
const STATUS_AUTHOR: &str = "Marker Status Author";
const AUTOMATION: &str = "Marker Automation";
/// Sent with every version: in the version list and in each issue's
/// `fixVersions` and `versions`.
const VERSION_NOTES: &str = "MARKER-VERSION-NOTES";
/// The harvesting account's own profile (`myself`), as the fake names it.
const OWN_PROFILE: &str = "DORA Harvester";

const ALL: &[&str] = &[
    SUMMARY,
    DESCRIPTION,
    COMMENT,
    ITEM_TEXT,
    ASSIGNEE,
    REPORTER,
    EDITOR,
    STATUS_AUTHOR,
    AUTOMATION,
    VERSION_NOTES,
    OWN_PROFILE,
];

/// A user whose display name is `name` and whose e-mail and account id are
/// derived from it, so each marker stands for all three.
fn user(name: &str, account_type: &str) -> SiteUser {
    SiteUser {
        account_id: format!("{name}-account"),
        account_type: account_type.into(),
        display_name: name.into(),
        email: format!("{name}@example.com"),
    }
}

fn statuses() -> Vec<SiteStatus> {
    let s = |id: &str, name: &str, cat: &str| SiteStatus { id: id.into(), name: name.into(), category_key: cat.into() };
    vec![s("1", "To Do", "new"), s("3", "In Progress", "indeterminate"), s("10002", "Done", "done")]
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 1, 9, 0, 0).unwrap()
}

fn text_item(field: &str, text: &str) -> SiteItem {
    SiteItem {
        field: field.into(),
        field_id: Some(field.into()),
        from: None,
        from_string: Some(format!("{text} before")),
        to: None,
        to_string: Some(format!("{text} after")),
    }
}

/// Issue `n`: started by a person in the same history as a summary edit,
/// its description edited by someone else, finished by an automation.
fn issue(n: usize) -> SiteIssue {
    let st = statuses();
    let created = t0() + chrono::Duration::hours(n as i64);
    let at = |m: i64| created + chrono::Duration::minutes(m);
    let history = |id: usize, m: i64, author: &str, kind: &str, items: Vec<SiteItem>| SiteHistory {
        id: format!("{}", 700_000 + n * 10 + id),
        created: at(m),
        author: Some(user(author, kind)),
        items,
    };
    SiteIssue {
        id: format!("{}", 30_000 + n),
        key: format!("OPS-{}", n + 1),
        issue_type: if n.is_multiple_of(4) { "Bug".into() } else { "Story".into() },
        labels: vec!["ai-assisted".into()],
        created,
        updated: at(30),
        resolved: Some(at(30)),
        status_id: "10002".into(),
        fix_versions: vec!["900".into()],
        affected_versions: if n.is_multiple_of(4) { vec!["900".into()] } else { vec![] },
        summary: format!("{SUMMARY} checkout fails"),
        description: format!("{DESCRIPTION} steps to reproduce"),
        comments: vec![format!("{COMMENT} looks good")],
        assignee: Some(user(ASSIGNEE, "atlassian")),
        reporter: Some(user(REPORTER, "atlassian")),
        creator: Some(user(REPORTER, "atlassian")),
        histories: vec![
            history(
                0,
                1,
                STATUS_AUTHOR,
                "atlassian",
                vec![text_item("summary", ITEM_TEXT), SiteItem::status(&st[0], &st[1])],
            ),
            history(1, 10, EDITOR, "atlassian", vec![text_item("description", ITEM_TEXT)]),
            history(2, 30, AUTOMATION, "app", vec![SiteItem::status(&st[1], &st[2])]),
        ],
        ..SiteIssue::default()
    }
}

fn site() -> Site {
    Site {
        projects: vec![SiteProject {
            key: "OPS".into(),
            id: "10000".into(),
            name: "Operations".into(),
            versions: vec![SiteVersion {
                id: "900".into(),
                name: "1.0.0".into(),
                released: true,
                release_date: chrono::NaiveDate::from_ymd_opt(2025, 9, 5),
                archived: false,
                description: format!("{VERSION_NOTES} what changed"),
            }],
            issues: (0..30).map(issue).collect(),
        }],
        statuses: statuses(),
        time_zone: "Europe/Berlin".into(),
        fields: Vec::new(),
    }
}

fn config(fake: &FakeJira, flavor: Flavor) -> JiraConfig {
    JiraConfig { flavor, page_size: 7, retry_base: Duration::from_millis(1), ..JiraConfig::new(fake.base_url()) }
}

async fn start(flavor: SiteFlavor) -> FakeJira {
    let fake = FakeJira::try_start(site(), flavor).await.expect("fake Jira");
    fake.set_now(t0() + chrono::Duration::days(2));
    fake.keep_response_bodies(true);
    fake
}

/// A full harvest, edits (a status change, a text edit), an incremental
/// harvest; returns the harvester and its store.
async fn harvest_with_edits(fake: &FakeJira, cfg: JiraConfig) -> (Arc<Harvester>, Arc<Store>) {
    let store = Arc::new(Store::new());
    let client = JiraClient::new(cfg).expect("client");
    let defs = Arc::new(DefinitionSet::shipped());
    let h = Arc::new(Harvester::new(client, Arc::clone(&store), defs, chrono_tz::Europe::Berlin, vec!["OPS".into()]));
    run(&h, true).await;
    fake.set_now(fake.now() + chrono::Duration::hours(1));
    assert!(fake.transition("OPS-2", "3", Some(user(STATUS_AUTHOR, "atlassian"))));
    let hid = fake.next_id();
    let edited_at = fake.now();
    assert!(fake.edit_issue("OPS-3", |i| i.histories.push(SiteHistory {
        id: hid,
        created: edited_at,
        author: Some(user(EDITOR, "atlassian")),
        items: vec![text_item("summary", ITEM_TEXT)],
    })));
    run(&h, false).await;
    (h, store)
}

async fn run(h: &Arc<Harvester>, full: bool) {
    let id = h.start(Vec::new(), full).await.expect("refresh starts");
    for _ in 0..2000 {
        let view = h.job(&id).expect("job");
        if view.finished.is_some() {
            assert_eq!(view.state, JobState::Succeeded, "{view:#?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the harvest did not finish");
}

/// Markers per endpoint (`METHOD path`) in the answers the fake sent, with
/// their counts; every endpoint that answered is listed.
fn markers_received(fake: &FakeJira) -> BTreeMap<String, BTreeMap<&'static str, usize>> {
    let mut out: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    for r in fake.responses() {
        let body = r.body.expect("bodies are kept");
        let seen = out.entry(format!("{} {}", r.method, r.path)).or_default();
        for m in ALL {
            let n = body.matches(m).count();
            if n > 0 {
                *seen.entry(m).or_default() += n;
            }
        }
    }
    out
}

/// Checks which markers each endpoint's answers carried.
fn check(fake: &FakeJira, expected: &[(&str, &[&str])]) {
    let received = markers_received(fake);
    let got: BTreeMap<&str, BTreeSet<&str>> =
        received.iter().map(|(e, seen)| (e.as_str(), seen.keys().copied().collect())).collect();
    let want: BTreeMap<&str, BTreeSet<&str>> =
        expected.iter().map(|(e, m)| (*e, m.iter().copied().collect())).collect();
    assert_eq!(got, want, "markers received per endpoint, with counts: {received:#?}");
}

/// Nothing the harvest keeps carries any marker; returns how many status
/// changes it holds as made by an app (authors reduced to a bool).
fn assert_nothing_kept(h: &Harvester, store: &Store) -> usize {
    let facts = h.project_facts("OPS").expect("facts of OPS");
    assert_eq!(facts.issues.len(), 30);
    assert_eq!(facts.issues.iter().map(|i| i.changes().len()).sum::<usize>(), 61, "every status change arrived");
    let kept = format!("{facts:?} {:?}", store.get("OPS"));
    for m in ALL {
        assert!(!kept.contains(m), "{m} survived parsing");
    }
    facts.issues.iter().flat_map(|i| i.changes()).filter(|c| c.by_app).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_answers_carry_no_private_text_but_status_change_authors() {
    let fake = start(SiteFlavor::Cloud).await;
    let (h, store) = harvest_with_edits(&fake, config(&fake, Flavor::Cloud)).await;
    check(
        &fake,
        &[
            ("GET /rest/api/3/myself", &[OWN_PROFILE]),
            ("GET /rest/api/3/status", &[]),
            ("GET /rest/api/3/project/OPS/versions", &[VERSION_NOTES]),
            ("GET /rest/api/3/search/jql", &[VERSION_NOTES]),
            ("POST /rest/api/3/changelog/bulkfetch", &[STATUS_AUTHOR, AUTOMATION]),
        ],
    );
    assert_eq!(assert_nothing_kept(&h, &store), 30, "the automation's changes count as made by an app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_center_searches_carry_changelog_text_that_parsing_drops() {
    let fake = start(SiteFlavor::DataCenter).await;
    let (h, store) = harvest_with_edits(&fake, config(&fake, Flavor::DataCenter)).await;
    check(
        &fake,
        &[
            ("GET /rest/api/2/myself", &[OWN_PROFILE]),
            ("GET /rest/api/2/status", &[]),
            ("GET /rest/api/2/project/OPS/versions", &[VERSION_NOTES]),
            // Whole changelogs, but no summary, description, comment or
            // people fields.
            ("GET /rest/api/2/search", &[VERSION_NOTES, ITEM_TEXT, EDITOR, STATUS_AUTHOR, AUTOMATION]),
        ],
    );
    assert_eq!(assert_nothing_kept(&h, &store), 0, "Data Center users have no account type");
}

/// The counts above can fail: a client that expands changelogs in Cloud
/// searches, asks for more fields, or leaves out the bulk field filter
/// receives the markers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_asking_for_more_receives_the_markers() {
    let fake = start(SiteFlavor::Cloud).await;
    let cfg = JiraConfig { cloud_changelogs: CloudChangelogs::ExpandedSearch, ..config(&fake, Flavor::Cloud) };
    let (h, store) = harvest_with_edits(&fake, cfg).await;
    let received = markers_received(&fake);
    let search: BTreeSet<&str> = received["GET /rest/api/3/search/jql"].keys().copied().collect();
    assert_eq!(search, BTreeSet::from([VERSION_NOTES, ITEM_TEXT, EDITOR, STATUS_AUTHOR, AUTOMATION]), "{received:#?}");
    assert_eq!(assert_nothing_kept(&h, &store), 30);

    let http = reqwest::Client::new();
    let base = fake.base_url();
    let fields = "summary,description,comment,assignee,reporter";
    let answer = http
        .get(format!("{base}/rest/api/3/search/jql"))
        .query(&[("jql", "project = OPS"), ("fields", fields)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for m in [SUMMARY, DESCRIPTION, COMMENT, ASSIGNEE, REPORTER] {
        assert!(answer.contains(m), "a search for {fields} carries {m}");
    }
    let answer = http
        .post(format!("{base}/rest/api/3/changelog/bulkfetch"))
        .json(&serde_json::json!({"issueIdsOrKeys": ["OPS-1"]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for m in [ITEM_TEXT, EDITOR] {
        assert!(answer.contains(m), "a bulkfetch without fieldIds carries {m}");
    }
}
