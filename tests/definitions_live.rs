//! Changing the definitions of a running service: validation with
//! line-accurate errors and a side-by-side preview over gRPC, updates and
//! file edits that take effect without a restart, an instant recompute
//! that makes no Jira request, and in-flight safety of the swap.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::Server;
use fake_jira::{FakeJira, SiteFlavor};
use jira_dora::config;
use jira_dora::definitions::DefinitionSet;
use jira_dora::proto::dora_metrics_client::DoraMetricsClient;
use jira_dora::proto::*;
use tonic::Code;
use tonic::transport::Channel;

const STATUS_DEPLOYS: &str = "fn is_deployment(version) { version.released && version.release_date != () }\n\
    fn is_deployment_transition(issue, t) {\n    t.to.to_lower() == \"done\"\n}\n";

struct Service {
    fake: FakeJira,
    server: Server,
    client: DoraMetricsClient<Channel>,
    defs: tempfile::TempDir,
}

impl Service {
    async fn start(allow_updates: bool) -> Service {
        let today = chrono::Utc::now().date_naive();
        let fake = FakeJira::try_start(fake_jira::demo::demo_site(today), SiteFlavor::Cloud).await.unwrap();
        let defs = tempfile::tempdir().unwrap();
        for f in DefinitionSet::shipped_files() {
            std::fs::write(defs.path().join(&f.name), &f.source).unwrap();
        }
        let toml = format!(
            "[harvest]\ninterval_minutes = 0\n[definitions]\nallow_updates = {allow_updates}\nwatch_interval_ms = 150\n"
        );
        let base_url = fake.base_url();
        let dir = defs.path().to_string_lossy().into_owned();
        let env: HashMap<&str, &str> = [("JIRA_BASE_URL", base_url.as_str()), ("DORA_DEFS_DIR", dir.as_str())].into();
        let server = Server::start(config::load(Some(&toml), &env).unwrap()).await;
        let client = server.client().await;
        let mut service = Service { fake, server, client, defs };
        service.harvested().await;
        service
    }

    async fn harvested(&mut self) {
        for _ in 0..600 {
            let projects = self.client.list_projects(ListProjectsRequest {}).await.unwrap().into_inner().projects;
            if projects.len() >= 3 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("harvest did not finish");
    }

    async fn version(&mut self) -> String {
        self.client.get_definitions(GetDefinitionsRequest {}).await.unwrap().into_inner().version
    }

    async fn deployments(&mut self, key: &str) -> (u64, String) {
        let req = GetMetricsRequest { project_keys: vec![key.into()], ..Default::default() };
        let r = self.client.get_metrics(req).await.unwrap().into_inner();
        let fresh = r.freshness.unwrap();
        (r.combined.unwrap().deployments, fresh.projects[0].definitions_version.clone())
    }

    /// Waits until the version in force differs from `from`.
    async fn version_change(&mut self, from: &str) -> String {
        for _ in 0..100 {
            let v = self.version().await;
            if v != from {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the version stayed {from}");
    }

    async fn stop(self) {
        self.server.stop().await;
        self.fake.shutdown().await;
    }
}

fn files_with(name: &str, source: &str) -> Vec<DefinitionFile> {
    DefinitionSet::shipped_files()
        .into_iter()
        .map(|f| DefinitionFile { source: if f.name == name { source.to_owned() } else { f.source }, name: f.name })
        .collect()
}

fn write(dir: &Path, name: &str, source: &str) {
    let tmp = dir.join(format!(".{name}.edit"));
    std::fs::write(&tmp, source).unwrap();
    std::fs::rename(tmp, dir.join(name)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_returns_located_errors_and_a_side_by_side_preview() {
    let mut s = Service::start(false).await;

    let broken = files_with(
        "work.rhai",
        "fn is_work_start(issue, t) {\n    t.to_category ==\n}\nfn is_ai_involved(issue) { false }\n",
    );
    let r = s.client.validate_definitions(ValidateDefinitionsRequest { files: broken }).await.unwrap().into_inner();
    assert!(!r.valid);
    assert!(r.previews.is_empty());
    let e = &r.errors[0];
    assert_eq!((e.file.as_str(), e.line), ("work.rhai", 3), "{r:?}");
    assert!(e.column > 0);

    let arity = files_with("work.rhai", "fn is_work_start(issue) { true }\nfn is_ai_involved(issue) { false }\n");
    let r = s.client.validate_definitions(ValidateDefinitionsRequest { files: arity }).await.unwrap().into_inner();
    assert!(
        r.errors.iter().any(|e| e.hook == "is_work_start" && e.line == 1 && e.message.contains("parameter")),
        "{r:?}"
    );

    let bad_name = vec![DefinitionFile { name: "../evil.rhai".into(), source: "fn x() { 1 }".into() }];
    let r = s.client.validate_definitions(ValidateDefinitionsRequest { files: bad_name }).await.unwrap().into_inner();
    assert!(!r.valid && r.errors[0].message.contains("file name"), "{r:?}");

    s.fake.clear_requests();
    let proposed = files_with("deployment.rhai", STATUS_DEPLOYS);
    let r = s.client.validate_definitions(ValidateDefinitionsRequest { files: proposed }).await.unwrap().into_inner();
    assert!(r.valid, "{:?}", r.errors);
    assert_eq!(r.previews.len(), 3);
    for p in &r.previews {
        let (current, proposed) = (p.current.as_ref().unwrap(), p.proposed.as_ref().unwrap());
        assert!(proposed.deployments > current.deployments, "{p:?}");
        assert_eq!(proposed.completed, current.completed);
        assert!(p.changed_statuses.contains(&"Done".to_string()), "{p:?}");
        assert!(p.changed_issue_types.is_empty(), "{p:?}");
        assert_eq!(p.period.as_ref().unwrap().weeks, 13);
    }
    // Nothing changed, and nothing was asked of Jira.
    assert!(s.version().await.starts_with("1-"));
    assert_eq!(s.fake.request_count(), 0);

    // Updates are off by default; validation is not.
    let err = s
        .client
        .update_definitions(UpdateDefinitionsRequest { files: files_with("deployment.rhai", STATUS_DEPLOYS) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("definitions.allow_updates"), "{}", err.message());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_file_edits_take_effect_at_once_without_jira() {
    let mut s = Service::start(true).await;
    let v1 = s.version().await;
    assert!(v1.starts_with("1-"), "{v1}");
    let (before, computed_with) = s.deployments("SHOP").await;
    assert_eq!(computed_with, v1);

    // A rejected update changes nothing.
    let err = s
        .client
        .update_definitions(UpdateDefinitionsRequest { files: files_with("deployment.rhai", "fn is_deployment(v) {") })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("deployment.rhai:1"), "{}", err.message());
    assert_eq!(s.version().await, v1);

    s.fake.clear_requests();
    let update = UpdateDefinitionsRequest { files: files_with("deployment.rhai", STATUS_DEPLOYS) };
    let v2 = s.client.update_definitions(update).await.unwrap().into_inner().version;
    assert!(v2.starts_with("2-"), "{v2}");
    let (after, computed_with) = s.deployments("SHOP").await;
    assert_eq!(computed_with, v2, "figures are recomputed before the update answers");
    assert!(after > before);
    assert_eq!(std::fs::read_to_string(s.defs.path().join("deployment.rhai")).unwrap(), STATUS_DEPLOYS);

    // The watcher sees its own write as no change.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(s.version().await, v2);

    // A file edit on disk is picked up, and recomputed.
    let shipped = DefinitionSet::shipped_files().into_iter().find(|f| f.name == "deployment.rhai").unwrap();
    write(s.defs.path(), "deployment.rhai", &shipped.source);
    let v3 = s.version_change(&v2).await;
    assert!(v3.starts_with("3-"), "{v3}");
    assert_eq!(v3[2..], v1[2..], "same content, same hash");
    // The swap comes first; freshness tells when the figures follow.
    let mut again = s.deployments("SHOP").await;
    for _ in 0..100 {
        if again.1 == v3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        again = s.deployments("SHOP").await;
    }
    assert_eq!((again.0, again.1.as_str()), (before, v3.as_str()));

    // A broken edit is rejected; the definitions in force stay.
    write(
        s.defs.path(),
        "deployment.rhai",
        "fn is_deployment(version) {\n    version.nope\n}\nfn is_deployment_transition(issue, t) { false }\n",
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(s.version().await, v3);

    let defs = s.client.get_definitions(GetDefinitionsRequest {}).await.unwrap().into_inner();
    let origins: Vec<(&str, &str)> = defs.audit.iter().map(|a| (a.version.as_str(), a.origin.as_str())).collect();
    assert_eq!(origins, [(v1.as_str(), "startup"), (v2.as_str(), "api"), (v3.as_str(), "file")]);
    assert!(defs.audit.iter().all(|a| a.at.is_some() && a.version.ends_with(&a.hash)));
    assert_eq!(defs.files.iter().find(|f| f.name == "deployment.rhai").unwrap().source, shipped.source);

    // None of it asked Jira anything.
    assert_eq!(s.fake.request_count(), 0, "{:?}", s.fake.requests());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_of_the_previous_definitions_finishes_on_them() {
    use jira_dora::domain::aggregate::build_project;
    use jira_dora::harvest::Harvester;
    use jira_dora::harvest::Origin;
    use jira_dora::jira::{JiraClient, JiraConfig};

    let today = chrono::Utc::now().date_naive();
    let fake = FakeJira::try_start(fake_jira::demo::demo_site(today), SiteFlavor::Cloud).await.unwrap();
    let client = JiraClient::new(JiraConfig::new(fake.base_url())).unwrap();
    let store = Arc::new(jira_dora::store::Store::new());
    let first = Arc::new(DefinitionSet::shipped().numbered(1));
    let harvester = Arc::new(Harvester::new(client, Arc::clone(&store), first, chrono_tz::UTC, vec!["SHOP".into()]));
    let job = harvester.start(Vec::new(), true).await.unwrap();
    for _ in 0..600 {
        if harvester.job(&job).unwrap().finished.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let facts = harvester.project_facts("SHOP").expect("facts in memory");
    let held = harvester.definitions();
    let expected = build_project(&facts, &*held, chrono_tz::UTC).unwrap();

    // A long request on the old set runs while the set is replaced.
    let (facts_in_flight, held_in_flight) = (facts.clone(), Arc::clone(&held));
    let in_flight = tokio::task::spawn_blocking(move || {
        (0..20).map(|_| build_project(&facts_in_flight, &*held_in_flight, chrono_tz::UTC).unwrap()).collect::<Vec<_>>()
    });
    let proposed = DefinitionSet::compile(
        DefinitionSet::shipped_files()
            .into_iter()
            .map(|mut f| {
                if f.name == "deployment.rhai" {
                    f.source = STATUS_DEPLOYS.to_owned();
                }
                f
            })
            .collect(),
    )
    .unwrap();
    let active = harvester.activate(proposed, Origin::Api, None).await.unwrap();
    assert_eq!(active.number(), 2);
    assert_eq!(harvester.definitions().version(), active.version());
    for result in in_flight.await.unwrap() {
        assert_eq!(result, expected, "the request in flight finished on the definitions it started with");
    }
    assert_eq!(held.version(), format!("1-{}", held.content_hash()));
    let now = store.get("SHOP").unwrap();
    assert_eq!(now.definitions_version, active.version());
    assert_ne!(now.aggregates, expected);
    fake.shutdown().await;
}
