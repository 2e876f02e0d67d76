//! What a refresh costs Jira, against the fake Jira over real HTTP: the
//! id-only reconciliation pages as large as Jira answers (the page size is
//! read from the answer), it runs only when due and still catches
//! deletions and moves, every request is counted in the job's status and
//! in `/metrics`, and a Data Center project larger than the search result
//! window harvests completely, with the figures of an unwindowed harvest.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{Server, harvested};
use fake_jira::demo::large_site;
use fake_jira::{FakeJira, LoggedRequest, SiteFlavor};
use jira_dora::config;
use jira_dora::definitions::DefinitionSet;
use jira_dora::harvest::{Harvester, JobState, JobView};
use jira_dora::jira::{Flavor, JiraClient, JiraConfig};
use jira_dora::proto::{GetRefreshStatusRequest, JobState as ProtoJobState, RefreshRequest};
use jira_dora::store::Store;

fn config(fake: &FakeJira, flavor: Flavor) -> JiraConfig {
    JiraConfig {
        flavor,
        max_retries: 2,
        retry_base: Duration::from_millis(1),
        retry_cap: Duration::from_millis(5),
        request_timeout: Duration::from_secs(30),
        ..JiraConfig::new(fake.base_url())
    }
}

fn harvester(cfg: JiraConfig, projects: &[&str]) -> (Arc<Harvester>, Arc<Store>) {
    let store = Arc::new(Store::new());
    let h = Harvester::new(
        JiraClient::new(cfg).expect("client config"),
        Arc::clone(&store),
        Arc::new(DefinitionSet::shipped()),
        chrono_tz::Europe::Berlin,
        projects.iter().map(|p| p.to_string()).collect(),
    );
    (Arc::new(h), store)
}

async fn refresh(h: &Arc<Harvester>, full: bool) -> JobView {
    let id = h.start(Vec::new(), full).await.expect("refresh starts");
    let (_, mut rx) = h.watch(&id).expect("job exists");
    let wait = async {
        loop {
            let view = h.job(&id).expect("job exists");
            if view.finished.is_some() {
                return view;
            }
            if rx.changed().await.is_err() {
                return h.job(&id).expect("job exists");
            }
        }
    };
    let view = tokio::time::timeout(Duration::from_secs(300), wait).await.expect("job ends");
    assert_eq!(view.state, JobState::Succeeded, "{view:#?}");
    view
}

/// The id-only searches among the requests: the reconciliation.
fn id_searches(requests: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    requests
        .iter()
        .filter(|r| {
            r.path.contains("/search")
                && (r.query_decoded.contains("fields=id&") || r.query_decoded.contains("fields=created&"))
        })
        .collect()
}

fn query_param<'a>(r: &'a LoggedRequest, name: &str) -> Option<&'a str> {
    r.query_decoded.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn total_requests(view: &JobView) -> u64 {
    view.projects.iter().map(|p| p.jira_requests.expect("a live job counts its requests")).sum()
}

fn assert_same_figures(a: &Store, b: &Store, what: &str) {
    assert_eq!(a.keys(), b.keys(), "{what}: projects");
    for key in b.keys() {
        assert!(
            a.get(&key).unwrap().aggregates == b.get(&key).unwrap().aggregates,
            "{what}: the figures of {key} differ"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_only_pages_are_as_large_as_jira_answers_and_read_from_the_answer() {
    let fake = FakeJira::start(large_site(1, 3_000, 7)).await;
    fake.set_now(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
    let (h, _) = harvester(config(&fake, Flavor::Cloud), &["P0"]);
    h.set_reconcile_interval(Duration::ZERO);
    refresh(&h, true).await;

    // Cloud: 5 000 ids asked for; a site that answers 700 a page is paged
    // through to the end by its tokens, never cut at the first short page.
    fake.set_id_page_cap(700);
    fake.clear_requests();
    let view = refresh(&h, false).await;
    assert_eq!(view.projects[0].reconciled, Some(true));
    let requests = fake.requests();
    let pages = id_searches(&requests);
    assert_eq!(pages.len(), 3_000_usize.div_ceil(700), "{pages:#?}");
    assert!(pages.iter().all(|r| query_param(r, "maxResults") == Some("5000")), "{pages:#?}");
    assert_eq!(total_requests(&view), requests.len() as u64, "the job counts every request Jira saw");

    // At Cloud's documented cap, 3 000 ids are one page.
    fake.set_id_page_cap(fake_jira::CLOUD_ID_PAGE_CAP);
    fake.clear_requests();
    let view = refresh(&h, false).await;
    assert_eq!(id_searches(&fake.requests()).len(), 1);
    assert_eq!(total_requests(&view), fake.request_count() as u64);
    fake.shutdown().await;

    // Data Center grants at most 1 000 and says so in `maxResults`: the
    // next pages ask for what was granted.
    let dc = FakeJira::try_start(large_site(1, 2_500, 8), SiteFlavor::DataCenter).await.unwrap();
    dc.set_now(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
    let (h, _) = harvester(config(&dc, Flavor::DataCenter), &["P0"]);
    h.set_reconcile_interval(Duration::ZERO);
    refresh(&h, true).await;
    dc.clear_requests();
    let view = refresh(&h, false).await;
    let requests = dc.requests();
    let asked: Vec<(&str, &str)> = id_searches(&requests)
        .iter()
        .map(|r| (query_param(r, "startAt").unwrap(), query_param(r, "maxResults").unwrap()))
        .collect();
    assert_eq!(asked, [("0", "5000"), ("1000", "1000"), ("2000", "1000")]);
    assert_eq!(total_requests(&view), requests.len() as u64);
    dc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_runs_only_when_due_and_still_catches_deletions_and_moves() {
    let fake = FakeJira::start(large_site(2, 400, 11)).await;
    fake.set_now(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
    let cfg = config(&fake, Flavor::Cloud);
    let (h, store) = harvester(cfg.clone(), &["P0", "P1"]);
    fake.clear_requests();
    let view = refresh(&h, true).await;
    assert!(view.projects.iter().all(|p| p.reconciled == Some(true)), "a full refresh reconciles: {view:#?}");
    assert_eq!(
        total_requests(&view),
        fake.request_count() as u64,
        "the first refresh's look-ups (time zone...) count too"
    );

    // Within the hour: incremental refreshes search by watermark only.
    let held = |key: &str| h.project_facts(key).unwrap().issues.len();
    assert_eq!((held("P0"), held("P1")), (400, 400));
    let (deleted, moved) = {
        let keys = fake.with_state(|st| st.site.projects[0].issues.iter().map(|i| i.key.clone()).collect::<Vec<_>>());
        (keys[3].clone(), keys[10].clone())
    };
    fake.set_now(fake.now() + chrono::Duration::minutes(20));
    assert!(fake.delete_issue(&deleted));
    fake.move_issue(&moved, "P1").expect("moved");
    fake.clear_requests();
    let view = refresh(&h, false).await;
    assert!(view.projects.iter().all(|p| p.reconciled == Some(false)), "{view:#?}");
    let requests = fake.requests();
    assert!(id_searches(&requests).is_empty(), "no reconciliation before it is due: {requests:#?}");
    assert_eq!(total_requests(&view), requests.len() as u64);
    // The account's time zone on first use (for the watermark), then per
    // project its versions, one search page and at most one bulk changelog
    // request; the statuses are asked again only with a reconciliation.
    assert!(requests.iter().all(|r| r.path != "/rest/api/3/status"), "{requests:#?}");
    assert!(total_requests(&view) <= 7, "an incremental refresh of two quiet projects: {requests:#?}");
    assert_eq!(
        (held("P0"), held("P1")),
        (400, 401),
        "the deleted and the moved issue still count in P0 until reconciled"
    );

    // Once due, the next incremental refresh reconciles: the figures are
    // those of a full harvest again.
    const INTERVAL: Duration = Duration::from_secs(3);
    h.set_reconcile_interval(INTERVAL);
    tokio::time::sleep(INTERVAL).await;
    fake.clear_requests();
    let view = refresh(&h, false).await;
    assert!(view.projects.iter().all(|p| p.reconciled == Some(true)), "{view:#?}");
    assert_eq!(id_searches(&fake.requests()).len(), 2, "one id page per project");
    assert_eq!((held("P0"), held("P1")), (398, 401), "the deletion and the move are caught");

    // Not due again right after it: the interval counts from the last one.
    fake.clear_requests();
    let view = refresh(&h, false).await;
    assert!(view.projects.iter().all(|p| p.reconciled == Some(false)), "{view:#?}");
    assert!(id_searches(&fake.requests()).is_empty());
    let (fresh, fresh_store) = harvester(cfg.clone(), &["P0", "P1"]);
    refresh(&fresh, true).await;
    assert_same_figures(&store, &fresh_store, "after the due reconciliation");

    // A full refresh reconciles and restarts the interval.
    tokio::time::sleep(INTERVAL).await;
    refresh(&h, true).await;
    fake.clear_requests();
    let view = refresh(&h, false).await;
    assert!(view.projects.iter().all(|p| p.reconciled == Some(false)), "{view:#?}");
    assert!(id_searches(&fake.requests()).is_empty());

    // A retried request counts as the two requests it was.
    fake.inject("/rest/api/3/search/jql", 1, fake_jira::Fault::Status(503));
    fake.clear_requests();
    let view = refresh(&h, false).await;
    assert_eq!(view.projects.iter().map(|p| p.retries).sum::<u64>(), 1);
    let requests = fake.requests();
    assert_eq!(requests.iter().filter(|r| r.path == "/rest/api/3/search/jql").count(), 3, "{requests:#?}");
    assert_eq!(total_requests(&view), requests.len() as u64);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_status_and_metrics_tell_the_jira_requests_of_a_refresh() {
    let config = config::load(Some("[metrics]\nenabled = true\n"), &HashMap::new()).unwrap();
    let server = Server::start(config).await;
    let mut client = server.client().await;
    let keys = harvested(&mut client).await;
    let job_id = client
        .refresh(RefreshRequest { project_keys: vec![keys[0].clone()], full: false })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    let job = loop {
        let job = client
            .get_refresh_status(GetRefreshStatusRequest { job_id: job_id.clone() })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        if job.finished.is_some() {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job.state, ProtoJobState::Succeeded as i32, "{job:#?}");
    let p = &job.projects[0];
    let requests = p.jira_requests.expect("the status counts the requests");
    assert!(requests > 0 && requests <= 30, "{p:#?}");
    assert_eq!(p.reconciled, Some(false), "the full harvest at start reconciled less than an hour ago");

    let text = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    let line = format!("dora_harvest_last_jira_requests{{project=\"{}\",kind=\"incremental\"}} {requests}", keys[0]);
    let line_other_order =
        format!("dora_harvest_last_jira_requests{{kind=\"incremental\",project=\"{}\"}} {requests}", keys[0]);
    assert!(text.lines().any(|l| l == line || l == line_other_order), "{line} missing from:\n{text}");
    assert!(text.contains("dora_harvest_jira_requests_count{"), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_center_project_past_the_result_window_harvests_completely() {
    const ISSUES: usize = 50_000;
    let fake = FakeJira::try_start(large_site(1, ISSUES, 5), SiteFlavor::DataCenter).await.unwrap();
    fake.set_now(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());

    // The fake enforces the window as Data Center does: a page that reaches
    // past it is an HTTP 500 with Jira's message.
    let past = reqwest::Client::new()
        .get(format!("{}/rest/api/2/search", fake.base_url()))
        .query(&[("jql", "project = P0"), ("startAt", "10000"), ("maxResults", "100"), ("fields", "created")])
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 500);
    let body = past.text().await.unwrap();
    assert!(
        body.contains("Search limit exceeded")
            && body.contains("requests 10,100 results")
            && body.contains("limit of 10,000"),
        "{body}"
    );

    // Windowed: the client splits the search by creation time.
    let cfg = JiraConfig { page_size: 1000, ..config(&fake, Flavor::DataCenter) };
    let (h, store) = harvester(cfg.clone(), &["P0"]);
    fake.clear_requests();
    let view = refresh(&h, true).await;
    assert!(fake.responses().iter().all(|r| r.status == 200), "no request past the window");
    let requests = fake.requests();
    let windows =
        requests.iter().filter(|r| r.path.ends_with("/search") && query_param(r, "startAt") == Some("0")).count();
    assert!(windows >= ISSUES / 10_000, "{windows} windows");
    for r in requests.iter().filter(|r| r.path.ends_with("/search")) {
        let (start, max): (usize, usize) = (
            query_param(r, "startAt").unwrap().parse().unwrap(),
            query_param(r, "maxResults").unwrap().parse().unwrap(),
        );
        assert!(start + max <= 10_000, "{r:?}");
    }
    assert_eq!(h.project_facts("P0").unwrap().issues.len(), ISSUES);
    assert!(view.projects[0].issues_fetched >= ISSUES as u64);

    // Unwindowed (a site without the window, a client that never splits):
    // the same figures.
    fake.set_result_window(None);
    let (plain, plain_store) = harvester(JiraConfig { dc_result_window: u64::MAX, ..cfg }, &["P0"]);
    fake.clear_requests();
    refresh(&plain, true).await;
    assert!(fake.requests().iter().all(|r| !r.query_decoded.contains("created >=")), "one window only");
    assert_same_figures(&store, &plain_store, "windowed and unwindowed harvests");

    // The reconciliation lists every id through the windows too: a deleted
    // issue is caught.
    fake.set_result_window(Some(10_000));
    let (key, id) = fake.with_state(|st| {
        let issue = &st.site.projects[0].issues[ISSUES / 2];
        (issue.key.clone(), issue.id.clone())
    });
    fake.set_now(fake.now() + chrono::Duration::minutes(10));
    assert!(fake.delete_issue(&key));
    h.set_reconcile_interval(Duration::ZERO);
    fake.clear_requests();
    let view = refresh(&h, false).await;
    assert_eq!(view.projects[0].reconciled, Some(true));
    assert!(fake.responses().iter().all(|r| r.status == 200));
    let facts = h.project_facts("P0").unwrap();
    assert_eq!(facts.issues.len(), ISSUES - 1);
    assert!(facts.issues.iter().all(|i| i.id.to_string() != id), "the deleted issue is gone");
    fake.shutdown().await;
}
