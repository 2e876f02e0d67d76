//! When snapshots are written, over the real server on real files: a
//! periodic snapshot is not rewritten when nothing changed.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::Server;
use jira_dora::config;
use jira_dora::definitions::DefinitionSet;
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

fn seq(data: &Path) -> Option<u64> {
    let bytes = std::fs::read(data.join(CURRENT)).ok()?;
    Some(snapshot::decode(&bytes).unwrap().seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_snapshot_is_not_rewritten_when_nothing_changed() {
    let (data, defs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    shipped_into(defs.path());
    let server = Server::start_in(config_in(data.path(), defs.path(), "[snapshot]\ninterval_ms = 100\n")).await;
    let _ = server.client().await;
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
    server.stop().await;
}
