//! `ExplainMetrics` on the real server: the lists agree with `GetMetrics`
//! page after page, over gRPC and JSON; a viewer lists only projects it may
//! browse; page tokens are bound to their request and to the data; the
//! figure, page size and token are checked like every field. Authentication
//! on, a fake Jira whose permission table the test sets, tonic clients and
//! HTTP over real sockets.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::Server;
use fake_jira::FakeJira;
use jira_dora::config::{self, Config};
use jira_dora::proto::dora_metrics_client::DoraMetricsClient;
use jira_dora::proto::*;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Code, Request};

const SERVICE_KEY: &str = "service-key-0123456789abcdef0123456789abcdef";
const GATEWAY_KEY: &str = "gateway-key-0123456789abcdef0123456789abcdef";
/// A viewer who may browse P0 only.
const VIEWER: &str = "Bearer viewer-oauth-token-5f1e2d3c4b5a";

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn config(fake: &FakeJira) -> Config {
    let keys: &'static str = format!("admin {}, viewer-gateway {}", hash(SERVICE_KEY), hash(GATEWAY_KEY)).leak();
    let url: &'static str = fake.base_url().leak();
    let env = HashMap::from([
        ("JIRA_BASE_URL", url),
        ("DORA_AUTH_ENABLED", "true"),
        ("DORA_API_KEYS", keys),
        ("DORA_PROJECTS", "P0,P1"),
    ]);
    config::load(Some("[harvest]\ninterval_minutes = 0\n[definitions]\nwatch_interval_ms = 0\n"), &env).unwrap()
}

fn with<T>(message: T, metadata: &[(&'static str, &str)]) -> Request<T> {
    let mut r = Request::new(message);
    for (k, v) in metadata {
        r.metadata_mut().insert(*k, v.parse().unwrap());
    }
    r
}

fn service() -> [(&'static str, &'static str); 1] {
    [("authorization", "Bearer service-key-0123456789abcdef0123456789abcdef")]
}

async fn start() -> (FakeJira, Server, DoraMetricsClient<Channel>) {
    // The site's year up to 2026-01-05.
    let fake = FakeJira::start(fake_jira::demo::large_site(2, 400, 11)).await;
    fake.grant_viewer(VIEWER, &["P0"]);
    let server = Server::start(config(&fake)).await;
    let mut client = server.client().await;
    for _ in 0..600 {
        let r = client.list_projects(with(ListProjectsRequest {}, &service())).await.unwrap();
        if r.into_inner().projects.len() == 2 {
            return (fake, server, client);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("harvest did not finish");
}

const FROM: &str = "2025-W01";
const TO: &str = "2026-W01";

fn explain(keys: &[&str], figure: Figure) -> ExplainMetricsRequest {
    ExplainMetricsRequest {
        project_keys: keys.iter().map(|k| k.to_string()).collect(),
        from_week: Some(FROM.into()),
        to_week: Some(TO.into()),
        figure: figure as i32,
        ..Default::default()
    }
}

/// Every page of a list, `page_size` items at a time.
async fn all_pages(
    client: &mut DoraMetricsClient<Channel>,
    mut request: ExplainMetricsRequest,
    page_size: u32,
) -> (Vec<ExplainItem>, ExplainMetricsResponse) {
    request.page_size = page_size;
    let mut items = Vec::new();
    loop {
        let page = client.explain_metrics(with(request.clone(), &service())).await.unwrap().into_inner();
        assert!(page.items.len() <= page_size as usize);
        items.extend(page.items.iter().cloned());
        if page.next_page_token.is_empty() {
            assert_eq!(items.len() as u64, page.total, "the pages hold the whole list");
            return (items, page);
        }
        request.page_token = page.next_page_token.clone();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_agrees_with_its_figure_page_after_page() {
    let (fake, server, mut client) = start().await;
    let keys = ["P0", "P1"];
    let metrics = GetMetricsRequest {
        project_keys: keys.iter().map(|k| k.to_string()).collect(),
        from_week: Some(FROM.into()),
        to_week: Some(TO.into()),
        ..Default::default()
    };
    let f = client.get_metrics(with(metrics, &service())).await.unwrap().into_inner().combined.unwrap();
    assert!(f.deployments > 10 && f.completed > 100 && f.incidents > 0, "the site has something to list: {f:?}");

    let (deployments, page) = all_pages(&mut client, explain(&keys, Figure::Deployments), 7).await;
    let cf = f.change_failure.unwrap();
    assert_eq!(deployments.len() as u64, f.deployments);
    assert_eq!(deployments.iter().filter(|d| d.failed).count() as u64, cf.failed);
    assert_eq!(deployments.iter().filter(|d| d.rework).count() as u64, f.rework.unwrap().rework);
    let by = |kind: AttributionKind| {
        deployments.iter().filter(|d| d.attributions.iter().any(|a| a.kind == kind as i32)).count() as u64
    };
    assert_eq!(by(AttributionKind::ByVersion), cf.failed_by_version);
    assert_eq!(by(AttributionKind::ByTime), cf.failed_by_time);
    assert!(deployments.iter().all(|d| !d.version_name.is_empty() && d.url.is_empty() && d.end.is_some()));
    let q = page.data_quality.unwrap();
    assert!(q.failures_by_version + q.failures_by_time > 0, "{q:?}");
    assert_eq!(q.excluded, f.excluded);
    // Ordered by week, then name.
    assert!(deployments.windows(2).all(|w| w[0].week <= w[1].week));

    let (lead, _) = all_pages(&mut client, explain(&keys, Figure::LeadTime), 1000).await;
    let lt = f.lead_time.unwrap();
    assert_eq!(lead.len() as u64, lt.count);
    let mut hours: Vec<f64> = lead.iter().map(|i| i.hours.unwrap()).collect();
    hours.sort_by(f64::total_cmp);
    let n = hours.len();
    let median = if n % 2 == 1 { hours[n / 2] } else { (hours[n / 2 - 1] + hours[n / 2]) / 2.0 };
    assert!((median - lt.median_hours.unwrap()).abs() < 1e-6, "{median} vs {:?}", lt.median_hours);
    let base = fake.base_url();
    for item in &lead {
        assert_eq!(item.url, format!("{base}/browse/{}", item.issue_key));
        assert!(
            item.issue_key.starts_with(&format!("{}-", item.project_key)) && item.start.is_some() && item.end.is_some()
        );
    }

    let counts = [
        (Figure::TimeToRestore, f.time_to_restore.unwrap().count),
        (Figure::Incidents, f.incidents),
        (Figure::OpenIncidents, f.open_incidents),
        (Figure::Completed, f.completed),
        (Figure::Excluded, f.excluded),
        (Figure::Reopened, f.reopened),
        (Figure::AiInvolved, f.ai_involved),
    ];
    for (figure, count) in counts {
        let page = client.explain_metrics(with(explain(&keys, figure), &service())).await.unwrap().into_inner();
        assert_eq!(page.total, count, "{figure:?}");
    }

    // The JSON mapping answers the same list.
    let url = server.url(&format!(
        "/v1/metrics:explain?project_keys=P0&project_keys=P1&from_week={FROM}&to_week={TO}&figure=FIGURE_DEPLOYMENTS&page_size=1000"
    ));
    let json: serde_json::Value =
        reqwest::Client::new().get(url).bearer_auth(SERVICE_KEY).send().await.unwrap().json().await.unwrap();
    assert_eq!(json["total"], serde_json::json!(f.deployments.to_string()));
    let names: Vec<&str> =
        json["items"].as_array().unwrap().iter().map(|i| i["versionName"].as_str().unwrap()).collect();
    assert_eq!(names, deployments.iter().map(|d| d.version_name.as_str()).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_lists_only_projects_it_may_browse() {
    let (_fake, _server, mut client) = start().await;
    let viewer =
        [("authorization", "Bearer gateway-key-0123456789abcdef0123456789abcdef"), ("x-jira-authorization", VIEWER)];
    let ok = client.explain_metrics(with(explain(&["P0"], Figure::Completed), &viewer)).await.unwrap().into_inner();
    assert!(ok.total > 0 && ok.items.iter().all(|i| i.project_key == "P0"));
    for keys in [&["P1"][..], &["P0", "P1"], &["NOPE"]] {
        let e = client.explain_metrics(with(explain(keys, Figure::Completed), &viewer)).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{keys:?}: {e:?}");
        assert!(!e.message().contains("P1-"), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_tokens_are_bound_to_their_request_and_data_and_bad_fields_are_named() {
    let (_fake, _server, mut client) = start().await;
    let mut request = explain(&["P0"], Figure::Completed);
    request.page_size = 5;
    let first = client.explain_metrics(with(request.clone(), &service())).await.unwrap().into_inner();
    assert!(first.total > 5 && !first.next_page_token.is_empty());

    // Another request with this token.
    let other = ExplainMetricsRequest {
        figure: Figure::LeadTime as i32,
        page_token: first.next_page_token.clone(),
        ..request.clone()
    };
    let e = client.explain_metrics(with(other, &service())).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("page_token:"), "{e:?}");

    let bad = |r: ExplainMetricsRequest, field: &'static str| (r, field);
    let checks = [
        bad(ExplainMetricsRequest { figure: 0, ..request.clone() }, "figure:"),
        bad(ExplainMetricsRequest { page_size: 1001, ..request.clone() }, "page_size:"),
        bad(ExplainMetricsRequest { page_token: "made-up".into(), ..request.clone() }, "page_token:"),
        bad(ExplainMetricsRequest { from_week: Some("2025-W99".into()), ..request.clone() }, "period:"),
        bad(ExplainMetricsRequest { project_keys: vec![], ..request.clone() }, "project_keys:"),
    ];
    for (r, field) in checks {
        let e = client.explain_metrics(with(r, &service())).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field} {e:?}");
        assert!(e.message().starts_with(field), "{field}: {e:?}");
    }

    // After a refresh, the token of the first page is refused.
    let job = client
        .refresh(with(RefreshRequest { project_keys: vec!["P0".into()], full: false }, &service()))
        .await
        .unwrap()
        .into_inner()
        .job_id;
    for _ in 0..600 {
        let r =
            client.get_refresh_status(with(GetRefreshStatusRequest { job_id: job.clone() }, &service())).await.unwrap();
        if r.into_inner().job.unwrap().finished.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let next = ExplainMetricsRequest { page_token: first.next_page_token.clone(), ..request.clone() };
    let e = client.explain_metrics(with(next, &service())).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("list changed, start again"), "{e:?}");
    // Starting again works.
    assert!(client.explain_metrics(with(request, &service())).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teams_lists_agree_with_its_figures_and_an_unknown_team_is_not_found() {
    // The demo's teams are its components.
    let server = Server::start(common::demo_config()).await;
    let mut client = server.client().await;
    common::harvested(&mut client).await;
    let teams =
        client.list_teams(ListTeamsRequest { project_keys: vec!["SHOP".into()] }).await.unwrap().into_inner().teams;
    let team = teams.first().expect("the demo has teams").name.clone();
    let metrics = GetMetricsRequest {
        project_keys: vec!["SHOP".into()],
        weeks: 26,
        team: Some(team.clone()),
        ..Default::default()
    };
    let f = client.get_metrics(metrics).await.unwrap().into_inner().combined.unwrap();
    let request = |figure: Figure| ExplainMetricsRequest {
        project_keys: vec!["SHOP".into()],
        weeks: 26,
        team: Some(team.clone()),
        figure: figure as i32,
        page_size: 1000,
        ..Default::default()
    };
    let whole = client
        .explain_metrics(ExplainMetricsRequest { team: None, ..request(Figure::Completed) })
        .await
        .unwrap()
        .into_inner();
    let counts = [
        (Figure::Deployments, f.deployments),
        (Figure::LeadTime, f.lead_time.unwrap().count),
        (Figure::Completed, f.completed),
        (Figure::Incidents, f.incidents),
        (Figure::Excluded, f.excluded),
    ];
    for (figure, count) in counts {
        let r = client.explain_metrics(request(figure)).await.unwrap().into_inner();
        assert_eq!(r.total, count, "{team} {figure:?}");
    }
    assert!(
        f.completed > 0 && f.completed < whole.total,
        "a team is a part of the project: {} of {}",
        f.completed,
        whole.total
    );
    let failed = client.explain_metrics(request(Figure::Deployments)).await.unwrap().into_inner();
    assert_eq!(failed.items.iter().filter(|d| d.failed).count() as u64, f.change_failure.unwrap().failed);

    let e = client
        .explain_metrics(ExplainMetricsRequest { team: Some("No Such Team".into()), ..request(Figure::Completed) })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // A token is bound to its team too.
    let first = client
        .explain_metrics(ExplainMetricsRequest { page_size: 2, ..request(Figure::Completed) })
        .await
        .unwrap()
        .into_inner();
    let other = ExplainMetricsRequest {
        page_size: 2,
        team: None,
        page_token: first.next_page_token,
        ..request(Figure::Completed)
    };
    assert_eq!(client.explain_metrics(other).await.unwrap_err().code(), Code::InvalidArgument);
    server.stop().await;
}
