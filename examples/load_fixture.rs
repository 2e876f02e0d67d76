//! Prepares the serving load benchmark (`benches/load.sh`):
//! `cargo run --release --example load_fixture -- DIR [PROJECTS] [ISSUES]`.
//!
//! Realistic data: the demo site's shape scaled to PROJECTS projects of
//! ISSUES issues each (`fake_jira::demo::large_site`, the site the
//! `fake_jira` example serves), harvested from a loopback fake Jira with the
//! real client, harvester and the shipped definitions plus teams by
//! component. Writes into DIR:
//! - `data/state.snapshot`: the aggregates (the teams' too), served at once
//!   on start;
//! - `defs/`: those definitions, for the service;
//! - `health.bin`, `metrics-13x1.bin`, `metrics-52x10.bin`,
//!   `metrics-52x10-series.bin`, and `metrics-13x1-team.bin`,
//!   `metrics-52x10-team.bin` (the same for one team): gRPC request bodies
//!   (the 5-byte frame prefix and the encoded message) for h2load;
//! - `projects.txt`: the comma-separated project keys;
//! - `rollout.txt`: the site's AI rollout date, for the configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use fake_jira::FakeJira;
use fake_jira::demo::{demo_ai_rollout, large_site};
use jira_dora::definitions::{DefinitionFile, DefinitionSet};
use jira_dora::harvest::{Harvester, JobState};
use jira_dora::jira::{JiraClient, JiraConfig};
use jira_dora::proto::GetMetricsRequest;
use jira_dora::store::Store;
use jira_dora::store::snapshot::{self, ProjectRecord, Snapshot};
use jira_dora::store::snapshot_dir::SnapshotDir;
use prost::Message;

/// A gRPC frame: uncompressed flag, big-endian length, message.
fn frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!("usage: load_fixture DIR [PROJECTS] [ISSUES]"))?);
    let projects: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let issues: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    std::fs::create_dir_all(&dir)?;

    // `large_site` ends on 2026-01-05 (2026-W02).
    let today = NaiveDate::from_ymd_opt(2026, 1, 5).expect("a date");
    let site = large_site(projects, issues, 1);
    let keys: Vec<String> = site.projects.iter().map(|p| p.key.clone()).collect();
    let fake = FakeJira::start(site).await;
    fake.set_now(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
    // Teams by component: every issue of the site has one (`Billing` is
    // one of five).
    let mut files = DefinitionSet::shipped_files();
    files.push(DefinitionFile {
        name: "teams.rhai".into(),
        source: "fn teams(issue) {\n    issue.components\n}\n".into(),
    });
    std::fs::create_dir_all(dir.join("defs"))?;
    for file in &files {
        std::fs::write(dir.join("defs").join(&file.name), &file.source)?;
    }
    let definitions = Arc::new(DefinitionSet::compile(files).map_err(|e| anyhow::anyhow!("{e:?}"))?);
    let store = Arc::new(Store::new());
    let harvester = Arc::new(Harvester::new(
        JiraClient::new(JiraConfig::new(fake.base_url()))?,
        Arc::clone(&store),
        Arc::clone(&definitions),
        chrono_tz::Europe::Berlin,
        keys.clone(),
    ));
    let id = harvester.start(Vec::new(), true).await?;
    let view = loop {
        let view = harvester.job(&id).expect("the job just started");
        if view.finished.is_some() {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    anyhow::ensure!(view.state == JobState::Succeeded, "the harvest failed: {view:?}");
    fake.shutdown().await;

    let state = Snapshot {
        seq: 1,
        taken_at: Utc::now().timestamp_millis(),
        projects: store.entries().iter().map(|(k, d)| ProjectRecord::of(k, d)).collect(),
        ..Default::default()
    };
    SnapshotDir::open(&dir.join("data"))?.write(&snapshot::encode(&state))?;
    std::fs::write(dir.join("projects.txt"), keys.join(","))?;
    std::fs::write(dir.join("rollout.txt"), demo_ai_rollout(today).to_string())?;

    // Whole weeks inside the site's year; the AI rollout (configured for
    // every project) falls inside both periods.
    let request = |n: usize, from: &str, include_series: bool| GetMetricsRequest {
        project_keys: keys.iter().take(n).cloned().collect(),
        from_week: Some(from.into()),
        to_week: Some("2026-W01".into()),
        include_series,
        ..Default::default()
    };
    let team = |request: GetMetricsRequest| GetMetricsRequest { team: Some("Billing".into()), ..request };
    std::fs::write(dir.join("metrics-13x1.bin"), frame(&request(1, "2025-W41", false)))?;
    std::fs::write(dir.join("metrics-52x10.bin"), frame(&request(10, "2025-W02", false)))?;
    std::fs::write(dir.join("metrics-52x10-series.bin"), frame(&request(10, "2025-W02", true)))?;
    std::fs::write(dir.join("metrics-13x1-team.bin"), frame(&team(request(1, "2025-W41", false))))?;
    std::fs::write(dir.join("metrics-52x10-team.bin"), frame(&team(request(10, "2025-W02", false))))?;
    std::fs::write(
        dir.join("health.bin"),
        frame(&tonic_health::pb::HealthCheckRequest { service: "dora.v1.DoraMetrics".into() }),
    )?;
    println!("{} projects × {issues} issues harvested into {}", keys.len(), dir.display());
    Ok(())
}
