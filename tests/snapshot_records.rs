//! What the snapshot keeps besides figures, over restarts of the real server
//! on real files: the definitions version counter and the audit of
//! activations survive a restart, and a periodic snapshot is rewritten only
//! when something changed.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::Server;
use jira_dora::config;
use jira_dora::definitions::DefinitionSet;
use jira_dora::proto::*;
use jira_dora::store::snapshot;
use jira_dora::store::snapshot_dir::CURRENT;

fn config_in(data: &Path, defs: &Path, toml: &str) -> config::Config {
    let base = "[harvest]\non_start = false\ninterval_minutes = 0\n";
    let mut config = config::load(Some(&format!("{base}{toml}")), &HashMap::new()).unwrap();
    config.data_dir = data.to_owned();
    config.defs_dir = defs.to_owned();
    config
}

fn shipped_into(dir: &Path) {
    for f in DefinitionSet::shipped_files() {
        std::fs::write(dir.join(&f.name), f.source).unwrap();
    }
}

/// The shipped files with a comment added: another content hash.
fn edited(n: usize) -> Vec<DefinitionFile> {
    DefinitionSet::shipped_files()
        .into_iter()
        .map(|f| DefinitionFile { source: format!("// edit {n}\n{}", f.source), name: f.name })
        .collect()
}

fn seq(data: &Path) -> Option<u64> {
    let bytes = std::fs::read(data.join(CURRENT)).ok()?;
    Some(snapshot::decode(&bytes).unwrap().seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_definitions_version_counter_and_audit_survive_a_restart() {
    let (data, defs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    shipped_into(defs.path());
    let toml = "[definitions]\nallow_updates = true\nwatch_interval_ms = 0\n";

    let server = Server::start_in(config_in(data.path(), defs.path(), toml)).await;
    let mut client = server.client().await;
    let first = client.get_definitions(GetDefinitionsRequest {}).await.unwrap().into_inner().version;
    assert!(first.starts_with("1-"), "{first}");
    let second =
        client.update_definitions(UpdateDefinitionsRequest { files: edited(1) }).await.unwrap().into_inner().version;
    assert!(second.starts_with("2-"), "{second}");
    server.stop().await;

    // The files on disk are those of version 2: the same version again.
    let server = Server::start_in(config_in(data.path(), defs.path(), toml)).await;
    let mut client = server.client().await;
    let after = client.get_definitions(GetDefinitionsRequest {}).await.unwrap().into_inner();
    assert_eq!(after.version, second, "the counter did not restart");
    let audited: Vec<(&str, &str)> = after.audit.iter().map(|a| (a.version.as_str(), a.origin.as_str())).collect();
    assert!(audited.contains(&(second.as_str(), "api")), "the update before the restart is audited: {audited:?}");
    assert!(audited.contains(&(first.as_str(), "startup")), "{audited:?}");
    let third =
        client.update_definitions(UpdateDefinitionsRequest { files: edited(2) }).await.unwrap().into_inner().version;
    assert!(third.starts_with("3-"), "{third}");
    server.stop().await;

    // Files edited while the service was down: a new number, audited.
    for f in edited(3) {
        std::fs::write(defs.path().join(&f.name), f.source).unwrap();
    }
    let server = Server::start_in(config_in(data.path(), defs.path(), toml)).await;
    let mut client = server.client().await;
    let after = client.get_definitions(GetDefinitionsRequest {}).await.unwrap().into_inner();
    assert!(after.version.starts_with("4-"), "{}", after.version);
    assert_eq!(
        after.audit.last().map(|a| (a.version.as_str(), a.origin.as_str())),
        Some((after.version.as_str(), "startup"))
    );
    assert!(after.audit.iter().any(|a| a.version == third), "{:?}", after.audit);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_snapshot_is_rewritten_only_when_something_changed() {
    let (data, defs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    shipped_into(defs.path());
    let toml = "[snapshot]\ninterval_ms = 100\n[definitions]\nallow_updates = true\nwatch_interval_ms = 0\n";
    let server = Server::start_in(config_in(data.path(), defs.path(), toml)).await;
    let mut client = server.client().await;
    let mut first = None;
    for _ in 0..100 {
        first = seq(data.path());
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = first.expect("a first periodic snapshot");
    let modified = std::fs::metadata(data.path().join(CURRENT)).unwrap().modified().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(seq(data.path()), Some(first), "rewritten though nothing changed");
    assert_eq!(std::fs::metadata(data.path().join(CURRENT)).unwrap().modified().unwrap(), modified);

    // New definitions change what the snapshot holds: it is written again.
    client.update_definitions(UpdateDefinitionsRequest { files: edited(1) }).await.unwrap();
    let mut after = None;
    for _ in 0..100 {
        after = seq(data.path()).filter(|s| *s > first);
        if after.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = after.expect("a snapshot after the change");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(seq(data.path()), Some(after), "rewritten though nothing changed since");
    server.stop().await;
}
