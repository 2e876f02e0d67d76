//! A forwarded viewer sees nothing of projects it may not browse, on the
//! paths beside the figures: the previews of `ValidateDefinitions`, the
//! refresh jobs of `GetRefreshStatus` and `WatchRefresh`, the per-project
//! series of `/metrics` (kept for the admin role), and the teams of
//! `ListTeams` and `GetMetrics.team`. The real
//! server with authentication on, a fake Jira whose permission table the
//! test sets, tonic clients and HTTP over real sockets.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::Server;
use fake_jira::FakeJira;
use jira_dora::config::{self, Config};
use jira_dora::definitions::DefinitionSet;
use jira_dora::proto::dora_metrics_client::DoraMetricsClient;
use jira_dora::proto::*;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Code, Request};

const ADMIN_KEY: &str = "admin-key-0123456789abcdef0123456789abcdef";
const GATEWAY_KEY: &str = "gateway-key-0123456789abcdef0123456789abcdef";
const SERVICE_KEY: &str = "service-key-0123456789abcdef0123456789abcdef";
/// A viewer who may browse P0 only.
const VIEWER: &str = "Bearer viewer-oauth-token-5f1e2d3c4b5a";

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// With `defs`: the definitions of that folder.
fn config_with(fake: &FakeJira, defs: Option<&std::path::Path>) -> Config {
    let keys: &'static str =
        format!("admin {}, viewer-gateway {}, service {}", hash(ADMIN_KEY), hash(GATEWAY_KEY), hash(SERVICE_KEY))
            .leak();
    let url: &'static str = fake.base_url().leak();
    let env = HashMap::from([
        ("JIRA_BASE_URL", url),
        ("DORA_AUTH_ENABLED", "true"),
        ("DORA_API_KEYS", keys),
        ("DORA_PROJECTS", "P0,P1,P2"),
        ("DORA_METRICS", "true"),
    ]);
    let mut env = env;
    let defs_dir: Option<&'static str> = defs.map(|d| &*d.to_string_lossy().into_owned().leak());
    if let Some(dir) = defs_dir {
        env.insert("DORA_DEFS_DIR", dir);
    }
    config::load(Some("[harvest]\ninterval_minutes = 0\n[definitions]\nwatch_interval_ms = 0\n"), &env).unwrap()
}

fn with<T>(message: T, metadata: &[(&'static str, &str)]) -> Request<T> {
    let mut r = Request::new(message);
    for (k, v) in metadata {
        r.metadata_mut().insert(*k, v.parse().unwrap());
    }
    r
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

async fn start() -> (FakeJira, Server, DoraMetricsClient<Channel>) {
    start_with(None).await
}

async fn start_with(defs: Option<&std::path::Path>) -> (FakeJira, Server, DoraMetricsClient<Channel>) {
    let fake = FakeJira::start(fake_jira::demo::large_site(3, 30, 7)).await;
    fake.grant_viewer(VIEWER, &["P0"]);
    let server = Server::start(config_with(&fake, defs)).await;
    let mut client = server.client().await;
    let service = bearer(SERVICE_KEY);
    for _ in 0..600 {
        let r = client.list_projects(with(ListProjectsRequest {}, &[("authorization", &service)])).await.unwrap();
        if r.into_inner().projects.len() == 3 {
            return (fake, server, client);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("harvest did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definitions_preview_covers_only_the_forwarded_viewers_projects() {
    let (_fake, server, mut client) = start().await;
    let admin = bearer(ADMIN_KEY);
    let request = || ValidateDefinitionsRequest {
        files: DefinitionSet::shipped_files()
            .into_iter()
            .map(|f| DefinitionFile { name: f.name, source: f.source })
            .collect(),
    };

    let all = client.validate_definitions(with(request(), &[("authorization", &admin)])).await.unwrap().into_inner();
    let keys = |r: &ValidateDefinitionsResponse| r.previews.iter().map(|p| p.project_key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&all), ["P0", "P1", "P2"], "the admin itself sees every project");

    let forwarded = [("authorization", admin.as_str()), ("x-jira-authorization", VIEWER)];
    let seen = client.validate_definitions(with(request(), &forwarded)).await.unwrap().into_inner();
    assert!(seen.valid);
    assert_eq!(keys(&seen), ["P0"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_job_over_a_project_the_viewer_may_not_see_is_not_found() {
    let (_fake, server, mut client) = start().await;
    let admin = bearer(ADMIN_KEY);
    let gateway = bearer(GATEWAY_KEY);
    let viewer = [("authorization", gateway.as_str()), ("x-jira-authorization", VIEWER)];
    let refresh =
        |keys: &[&str]| RefreshRequest { project_keys: keys.iter().map(|k| k.to_string()).collect(), full: true };

    let hidden =
        client.refresh(with(refresh(&["P0", "P1"]), &[("authorization", &admin)])).await.unwrap().into_inner().job_id;
    let s =
        client.get_refresh_status(with(GetRefreshStatusRequest { job_id: hidden.clone() }, &viewer)).await.unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    let unknown = client
        .get_refresh_status(with(GetRefreshStatusRequest { job_id: "job-99-0000abcd".into() }, &viewer))
        .await
        .unwrap_err();
    assert_eq!(
        s.message().replace(&hidden, "ID"),
        unknown.message().replace("job-99-0000abcd", "ID"),
        "the same answer as an unknown job"
    );
    let s = client
        .watch_refresh(with(WatchRefreshRequest { job_id: hidden.clone() }, &viewer))
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    // Over the JSON mapping too.
    let http = reqwest::Client::new();
    for path in [format!("/v1/refresh/{hidden}"), format!("/v1/refresh/{hidden}:watch")] {
        let r = http
            .get(server.url(&path))
            .header("authorization", &gateway)
            .header("x-jira-authorization", VIEWER)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    // The admin itself, and a viewer who may see every project of a job,
    // see it.
    assert!(
        client
            .get_refresh_status(with(GetRefreshStatusRequest { job_id: hidden }, &[("authorization", &admin)]))
            .await
            .is_ok()
    );
    let mine = client.refresh(with(refresh(&["P0"]), &[("authorization", &admin)])).await.unwrap().into_inner().job_id;
    let job = client
        .get_refresh_status(with(GetRefreshStatusRequest { job_id: mine.clone() }, &viewer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.job.unwrap().projects.len(), 1);
    assert!(client.watch_refresh(with(WatchRefreshRequest { job_id: mine }, &viewer)).await.is_ok());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_project_series_of_the_metrics_page_need_the_admin_role() {
    let (_fake, server, _client) = start().await;
    let http = reqwest::Client::new();
    let scrape = |key: &str| http.get(server.url("/metrics")).header("authorization", bearer(key)).send();

    let admin = scrape(ADMIN_KEY).await.unwrap();
    assert_eq!(admin.status(), 200);
    let text = admin.text().await.unwrap();
    assert!(text.contains("project=\"P1\""), "the admin sees per-project series:\n{text}");

    for key in [SERVICE_KEY, GATEWAY_KEY] {
        let r = http
            .get(server.url("/metrics"))
            .header("authorization", bearer(key))
            .header("x-jira-authorization", VIEWER)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        let harvests: Vec<&str> = text.lines().filter(|l| l.starts_with("dora_harvests_total{")).collect();
        assert!(!harvests.is_empty(), "the figures are there, summed over projects:\n{text}");
        for project in ["P0", "P1", "P2"] {
            assert!(!text.contains(project), "{project} named to a non-admin key:\n{text}");
        }
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .expect("still the Prometheus text format");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_cannot_learn_a_team_that_exists_only_in_a_project_it_may_not_browse() {
    // Every issue is in team "shared" and in its project's own team.
    let defs = tempfile::tempdir().unwrap();
    for file in DefinitionSet::shipped_files() {
        std::fs::write(defs.path().join(&file.name), &file.source).unwrap();
    }
    std::fs::write(
        defs.path().join("teams.rhai"),
        "fn teams(issue) {\n    [\"shared\", \"only-\" + issue.project]\n}\n",
    )
    .unwrap();
    let (_fake, server, mut client) = start_with(Some(defs.path())).await;
    let admin = bearer(ADMIN_KEY);
    let gateway = bearer(GATEWAY_KEY);
    let viewer = [("authorization", gateway.as_str()), ("x-jira-authorization", VIEWER)];
    let list = |keys: &[&str]| ListTeamsRequest { project_keys: keys.iter().map(|k| k.to_string()).collect() };
    let names = |r: ListTeamsResponse| r.teams.into_iter().map(|t| (t.name, t.project_keys)).collect::<Vec<_>>();

    let all = client.list_teams(with(list(&[]), &[("authorization", &admin)])).await.unwrap().into_inner();
    assert_eq!(all.teams.len(), 4, "the admin sees every team: {all:?}");
    assert!(all.teams.iter().all(|t| t.weeks_with_data > 0));

    let seen = client.list_teams(with(list(&[]), &viewer)).await.unwrap().into_inner();
    let p0 = |name: &str| (name.to_owned(), vec!["P0".to_owned()]);
    assert_eq!(names(seen), [p0("only-P0"), p0("shared")], "only teams of P0, and only P0 named");
    let named = client.list_teams(with(list(&["P0", "P1"]), &viewer)).await.unwrap_err();
    let mine = client.list_teams(with(list(&["P0"]), &viewer)).await.unwrap().into_inner();
    assert_eq!(names(mine).len(), 2);

    // Figures: a team of another project is as unknown as no team at all.
    let metrics = |keys: &[&str], team: &str| GetMetricsRequest {
        project_keys: keys.iter().map(|k| k.to_string()).collect(),
        team: Some(team.to_owned()),
        ..Default::default()
    };
    assert!(client.get_metrics(with(metrics(&["P0"], "shared"), &viewer)).await.is_ok());
    let hidden = client.get_metrics(with(metrics(&["P0"], "only-P1"), &viewer)).await.unwrap_err();
    let unknown = client.get_metrics(with(metrics(&["P0"], "only-P7"), &viewer)).await.unwrap_err();
    assert_eq!((hidden.code(), hidden.message()), (unknown.code(), unknown.message()));
    assert_eq!(hidden.code(), Code::NotFound);
    assert!(!hidden.message().contains("only-"), "{hidden:?}");
    // Naming the project it may not browse: refused before any team is
    // looked up, whether the team exists there or not.
    let there = client.get_metrics(with(metrics(&["P1"], "only-P1"), &viewer)).await.unwrap_err();
    let nowhere = client.get_metrics(with(metrics(&["P1"], "only-P7"), &viewer)).await.unwrap_err();
    assert_eq!((there.code(), there.message()), (nowhere.code(), nowhere.message()));
    assert_eq!((named.code(), named.message()), (there.code(), there.message()));
    // The admin gets the team's figures.
    assert!(client.get_metrics(with(metrics(&["P1"], "only-P1"), &[("authorization", &admin)])).await.is_ok());

    // The same over the JSON mapping.
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(server.url(path)).header("authorization", &gateway).header("x-jira-authorization", VIEWER).send()
    };
    let text = get("/v1/teams").await.unwrap().text().await.unwrap();
    assert!(text.contains("only-P0") && !text.contains("P1") && !text.contains("P2"), "{text}");
    let r = get("/v1/metrics?project_keys=P0&team=only-P1").await.unwrap();
    assert_eq!(r.status(), 404);
    let r = get("/v1/metrics?project_keys=P0&team=shared").await.unwrap();
    assert_eq!(r.status(), 200);
    server.stop().await;
}
