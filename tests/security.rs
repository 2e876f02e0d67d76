//! Access control end to end: the real server on 127.0.0.1:0 with
//! authentication on, harvesting a fake Jira over real HTTP, whose
//! permission table the tests set; called by tonic clients with metadata.

use std::collections::HashMap;
use std::time::Duration;

mod common;

use common::Server;
use fake_jira::{FakeJira, Fault};
use jira_dora::config::{self, Config};
use jira_dora::proto::dora_metrics_client::DoraMetricsClient;
use jira_dora::proto::*;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Code, Request};

pub const ADMIN_KEY: &str = "admin-key-0123456789abcdef0123456789abcdef";
pub const GATEWAY_KEY: &str = "gateway-key-0123456789abcdef0123456789abcdef";
pub const SERVICE_KEY: &str = "service-key-0123456789abcdef0123456789abcdef";
/// A viewer's own Jira credential, as the gateway forwards it.
pub const VIEWER: &str = "Bearer viewer-oauth-token-5f1e2d3c4b5a";
pub const OTHER_VIEWER: &str = "Basic b3RoZXJAZXhhbXBsZS5jb206b3RoZXItdG9rZW4=";

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn leak(s: String) -> &'static str {
    s.leak()
}

/// Authentication on, three keys, Jira at `fake`.
fn secure_config(fake: &FakeJira, toml: &str, extra: &[(&'static str, &'static str)]) -> Config {
    let keys =
        leak(format!("admin {}, viewer-gateway {}, service {}", hash(ADMIN_KEY), hash(GATEWAY_KEY), hash(SERVICE_KEY)));
    let mut env: HashMap<&str, &str> = HashMap::from([
        ("JIRA_BASE_URL", leak(fake.base_url())),
        ("DORA_AUTH_ENABLED", "true"),
        ("DORA_API_KEYS", keys),
        ("DORA_PROJECTS", "P0,P1,P2"),
    ]);
    env.extend(extra.iter().copied());
    config::load(Some(toml), &env).unwrap()
}

/// A request with metadata.
fn with<T>(message: T, metadata: &[(&'static str, &str)]) -> Request<T> {
    let mut r = Request::new(message);
    for (k, v) in metadata {
        r.metadata_mut().insert(*k, v.parse().unwrap());
    }
    r
}

fn key(k: &str) -> String {
    format!("Bearer {k}")
}

fn metrics(keys: &[&str]) -> GetMetricsRequest {
    GetMetricsRequest { project_keys: keys.iter().map(|k| k.to_string()).collect(), ..Default::default() }
}

/// A small site of three projects, P0..P2.
async fn fake() -> FakeJira {
    FakeJira::start(fake_jira::demo::large_site(3, 30, 7)).await
}

/// Waits until the first harvest filled the store (seen by a service key).
async fn harvested(client: &mut DoraMetricsClient<Channel>) {
    for _ in 0..600 {
        let r =
            client.list_projects(with(ListProjectsRequest {}, &[("authorization", &key(SERVICE_KEY))])).await.unwrap();
        if r.into_inner().projects.len() >= 3 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("harvest did not finish");
}

fn mypermissions_calls(fake: &FakeJira) -> usize {
    fake.requests().iter().filter(|r| r.path.ends_with("/mypermissions")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_or_wrong_ones_are_unauthenticated_and_health_stays_open() {
    let fake = fake().await;
    let server = Server::start(secure_config(&fake, "", &[])).await;
    let mut client = server.client().await;
    harvested(&mut client).await;

    let code = |r: Result<tonic::Response<GetMetricsResponse>, tonic::Status>| r.unwrap_err().code();
    assert_eq!(code(client.get_metrics(metrics(&["P0"])).await), Code::Unauthenticated);
    assert_eq!(
        code(client.get_metrics(with(metrics(&["P0"]), &[("authorization", "Bearer wrong")])).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(client.get_metrics(with(metrics(&["P0"]), &[("authorization", ADMIN_KEY)])).await),
        Code::Unauthenticated
    );
    let s = client.list_projects(ListProjectsRequest {}).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("authorization: Bearer"), "{}", s.message());
    assert_eq!(client.refresh(RefreshRequest::default()).await.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(client.get_definitions(GetDefinitionsRequest {}).await.unwrap_err().code(), Code::Unauthenticated);
    let s = client.get_refresh_status(GetRefreshStatusRequest { job_id: "job-1".into() }).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);

    // Health answers anyone; reflection wants a key.
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let channel = Channel::from_shared(format!("http://{}", server.addr)).unwrap().connect().await.unwrap();
    let health = HealthClient::new(channel.clone()).check(HealthCheckRequest { service: String::new() }).await;
    assert!(health.is_ok(), "{health:?}");
    let list = || ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let refused =
        ServerReflectionClient::new(channel.clone()).server_reflection_info(tokio_stream::iter(vec![list()])).await;
    assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);
    let allowed = ServerReflectionClient::new(channel)
        .server_reflection_info(with(tokio_stream::iter(vec![list()]), &[("authorization", &key(SERVICE_KEY))]))
        .await;
    assert!(allowed.is_ok());

    // A service key without a viewer sees every project.
    let r = client.get_metrics(with(metrics(&["P0", "P1"]), &[("authorization", &key(SERVICE_KEY))])).await.unwrap();
    assert_eq!(r.into_inner().projects.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_without_browse_on_one_of_two_projects_gets_permission_denied_and_no_figures() {
    let fake = fake().await;
    fake.grant_viewer(VIEWER, &["P0", "P2"]);
    fake.grant_viewer(OTHER_VIEWER, &["P1"]);
    let server = Server::start(secure_config(&fake, "", &[])).await;
    let mut client = server.client().await;
    harvested(&mut client).await;
    let gateway = |viewer: &'static str| [("authorization", leak(key(GATEWAY_KEY))), ("x-jira-authorization", viewer)];

    let s = client.get_metrics(with(metrics(&["P0", "P1"]), &gateway(VIEWER))).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    assert!(!s.message().contains("P1"), "the status does not name the project: {}", s.message());
    // A project that does not exist is refused the same way.
    let missing = client.get_metrics(with(metrics(&["P0", "NOPE"]), &gateway(VIEWER))).await.unwrap_err();
    assert_eq!((missing.code(), missing.message()), (s.code(), s.message()));

    let ok = client.get_metrics(with(metrics(&["P0", "P2"]), &gateway(VIEWER))).await.unwrap().into_inner();
    assert_eq!(ok.projects.iter().map(|p| p.project_key.as_str()).collect::<Vec<_>>(), ["P0", "P2"]);
    assert!(ok.combined.is_some());

    let listed = |r: ListProjectsResponse| r.projects.into_iter().map(|p| p.project_key).collect::<Vec<_>>();
    let mine = client.list_projects(with(ListProjectsRequest {}, &gateway(VIEWER))).await.unwrap().into_inner();
    assert_eq!(listed(mine), ["P0", "P2"]);
    let theirs = client.list_projects(with(ListProjectsRequest {}, &gateway(OTHER_VIEWER))).await.unwrap().into_inner();
    assert_eq!(listed(theirs), ["P1"]);

    // A gateway must say who the viewer is; a credential Jira refuses is
    // unauthenticated.
    let s =
        client.list_projects(with(ListProjectsRequest {}, &[("authorization", &key(GATEWAY_KEY))])).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    let s = client.get_metrics(with(metrics(&["P0"]), &gateway("Bearer revoked-token"))).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);

    // A service key that forwards a viewer is held to that viewer's rights.
    let s = client
        .get_metrics(with(metrics(&["P1"]), &[("authorization", &key(SERVICE_KEY)), ("x-jira-authorization", VIEWER)]))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_permission_is_reused_then_expires_on_time() {
    let fake = fake().await;
    fake.grant_viewer(VIEWER, &["P0"]);
    let server = Server::start(secure_config(&fake, "[auth]\npermission_cache_secs = 2\n", &[])).await;
    let mut client = server.client().await;
    harvested(&mut client).await;
    let gateway = [("authorization", leak(key(GATEWAY_KEY))), ("x-jira-authorization", VIEWER)];

    fake.clear_requests();
    let start = tokio::time::Instant::now();
    client.get_metrics(with(metrics(&["P0"]), &gateway)).await.unwrap();
    client.get_metrics(with(metrics(&["P0"]), &gateway)).await.unwrap();
    assert_eq!(mypermissions_calls(&fake), 1, "the second answer comes from the cache");

    // Revoked in Jira: the cached yes holds until it expires, then no.
    fake.grant_viewer(VIEWER, &[]);
    client.get_metrics(with(metrics(&["P0"]), &gateway)).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(2), "the test ran too slowly to check the cache");
    tokio::time::sleep(Duration::from_secs(2) - start.elapsed() + Duration::from_millis(100)).await;
    let s = client.get_metrics(with(metrics(&["P0"]), &gateway)).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    assert_eq!(mypermissions_calls(&fake), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jira_down_during_the_check_fails_closed() {
    let fake = fake().await;
    fake.grant_viewer(VIEWER, &["P0", "P1", "P2"]);
    let server = Server::start(secure_config(&fake, "", &[])).await;
    let mut client = server.client().await;
    harvested(&mut client).await;
    let gateway = [("authorization", leak(key(GATEWAY_KEY))), ("x-jira-authorization", VIEWER)];

    fake.inject("/rest/api/3/mypermissions", 100, Fault::Status(503));
    let s = client.get_metrics(with(metrics(&["P0"]), &gateway)).await.unwrap_err();
    assert_eq!(s.code(), Code::Unavailable);
    assert!(!s.message().contains("mypermissions") && !s.message().contains("503"), "{}", s.message());
    let s = client.list_projects(with(ListProjectsRequest {}, &gateway)).await.unwrap_err();
    assert_eq!(s.code(), Code::Unavailable);

    // An answer that cannot be read is no yes either.
    fake.clear_faults();
    fake.inject("/rest/api/3/mypermissions", 100, Fault::Malformed);
    let s = client.get_metrics(with(metrics(&["P1"]), &gateway)).await.unwrap_err();
    assert_eq!(s.code(), Code::Unavailable);

    fake.clear_faults();
    assert!(client.get_metrics(with(metrics(&["P0"]), &gateway)).await.is_ok(), "errors are not cached");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_and_definition_changes_are_admin_only() {
    let fake = fake().await;
    fake.grant_viewer(VIEWER, &["P0"]);
    let server = Server::start(secure_config(&fake, "", &[])).await;
    let mut client = server.client().await;
    harvested(&mut client).await;
    let refresh = || RefreshRequest { project_keys: vec!["P0".into()], full: false };

    for md in [
        vec![("authorization", key(SERVICE_KEY))],
        vec![("authorization", key(GATEWAY_KEY)), ("x-jira-authorization", VIEWER.into())],
    ] {
        let md: Vec<(&'static str, &str)> = md.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let s = client.refresh(with(refresh(), &md)).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{md:?}");
        assert!(s.message().contains("admin"), "{}", s.message());
        let s = client.update_definitions(with(UpdateDefinitionsRequest::default(), &md)).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied);
        let s = client.validate_definitions(with(ValidateDefinitionsRequest::default(), &md)).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied);
    }
    let admin = [("authorization", leak(key(ADMIN_KEY)))];
    let job_id = client.refresh(with(refresh(), &admin)).await.unwrap().into_inner().job_id;
    let s = client
        .refresh(with(RefreshRequest { project_keys: vec!["P9".into()], full: false }, &admin))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::FailedPrecondition, "only configured projects are refreshed");

    // A viewer sees a job's progress only for projects it may browse.
    let gateway = [("authorization", leak(key(GATEWAY_KEY))), ("x-jira-authorization", VIEWER)];
    let job =
        client.get_refresh_status(with(GetRefreshStatusRequest { job_id: job_id.clone() }, &gateway)).await.unwrap();
    assert_eq!(job.into_inner().job.unwrap().projects.len(), 1);
    let bad = client
        .get_refresh_status(with(GetRefreshStatusRequest { job_id: "../etc".into() }, &gateway))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_id_mode_asks_jira_with_the_service_credential() {
    let fake = fake().await;
    fake.grant_account("557058:viewer-1", &["P1"]);
    let server = Server::start(secure_config(&fake, "[auth]\npermission_mode = \"account-id\"\n", &[])).await;
    let mut client = server.client().await;
    harvested(&mut client).await;
    let gateway = |id: &'static str| [("authorization", leak(key(GATEWAY_KEY))), ("x-jira-account-id", id)];

    let ok = client.get_metrics(with(metrics(&["P1"]), &gateway("557058:viewer-1"))).await.unwrap().into_inner();
    assert_eq!(ok.projects.len(), 1);
    let s = client.get_metrics(with(metrics(&["P0", "P1"]), &gateway("557058:viewer-1"))).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    let listed =
        client.list_projects(with(ListProjectsRequest {}, &gateway("557058:viewer-1"))).await.unwrap().into_inner();
    assert_eq!(listed.projects.iter().map(|p| p.project_key.as_str()).collect::<Vec<_>>(), ["P1"]);
    let none =
        client.list_projects(with(ListProjectsRequest {}, &gateway("557058:stranger"))).await.unwrap().into_inner();
    assert!(none.projects.is_empty());
    assert!(
        fake.requests().iter().any(|r| r.path == "/rest/api/3/permissions/check" && r.body.contains("557058:viewer-1"))
    );

    fake.inject("/rest/api/3/permissions/check", 100, Fault::Status(500));
    // (An account not asked about before: nothing cached.)
    let s = client.get_metrics(with(metrics(&["P2"]), &gateway("557058:viewer-2"))).await.unwrap_err();
    assert_eq!(s.code(), Code::Unavailable, "fails closed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_removed_from_the_configuration_is_dropped_from_memory() {
    use jira_dora::harvest::Harvester;
    use jira_dora::jira::{JiraClient, JiraConfig};
    use jira_dora::store::{ProjectData, Store};
    use std::sync::Arc;

    let fake = fake().await;
    let store = Arc::new(Store::new());
    // Figures of a project that was configured before (say, from a snapshot).
    store.put("P2", ProjectData::default());
    let client = JiraClient::new(JiraConfig::new(fake.base_url())).unwrap();
    let harvester = Arc::new(Harvester::new(
        client,
        Arc::clone(&store),
        Arc::new(jira_dora::definitions::DefinitionSet::shipped()),
        chrono_tz::UTC,
        vec!["P0".into()],
    ));
    let id = harvester.start(Vec::new(), true).await.unwrap();
    assert!(!store.keys().contains(&"P2".to_string()), "P2 is dropped as the refresh starts");
    for _ in 0..600 {
        if harvester.job(&id).unwrap().finished.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.keys(), ["P0"]);
}
