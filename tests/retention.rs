//! A project removed from the configuration is dropped from memory at once
//! and from the next snapshot.

mod common;

use std::collections::HashMap;

use chrono::Utc;
use common::Server;
use fake_jira::demo::large_aggregates;
use jira_dora::config;
use jira_dora::proto::ListProjectsRequest;
use jira_dora::store::snapshot::{self, ProjectRecord, Snapshot};
use jira_dora::store::snapshot_dir::{CURRENT, SnapshotDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_no_longer_configured_is_gone_from_memory_and_the_next_snapshot() {
    let data = tempfile::tempdir().unwrap();
    let now = Utc::now().timestamp_millis();
    let state = Snapshot {
        seq: 1,
        taken_at: now,
        projects: large_aggregates(2, 10, 1)
            .into_iter()
            .map(|(key, weeks)| ProjectRecord {
                key,
                last_harvest: Some(now),
                definitions_version: "old".into(),
                weeks,
                teams: Default::default(),
            })
            .collect(),
        ..Default::default()
    };
    SnapshotDir::open(data.path()).unwrap().write(&snapshot::encode(&state)).unwrap();

    // P1 was removed from the configuration.
    let env = HashMap::from([("DORA_PROJECTS", "P0"), ("JIRA_BASE_URL", "http://127.0.0.1:9")]);
    let mut config = config::load(Some("[harvest]\non_start = false\ninterval_minutes = 0\n"), &env).unwrap();
    config.data_dir = data.path().to_owned();
    let server = Server::start_in(config).await;
    let mut client = server.client().await;
    let listed: Vec<String> = client
        .list_projects(ListProjectsRequest {})
        .await
        .unwrap()
        .into_inner()
        .projects
        .into_iter()
        .map(|p| p.project_key)
        .collect();
    assert_eq!(listed, ["P0"]);

    // A graceful stop writes the next snapshot: P1 is not in it.
    server.stop().await;
    let written = snapshot::decode(&std::fs::read(data.path().join(CURRENT)).unwrap()).unwrap();
    assert!(written.seq > 1, "a new snapshot was written");
    let keys: Vec<&str> = written.projects.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["P0"]);
}
