//! Prepares the serving load benchmark (`benches/load.sh`):
//! `cargo run --release --example load_fixture -- DIR [PROJECTS] [WEEKS]`.
//!
//! Writes into DIR:
//! - `data/state.snapshot`: PROJECTS × WEEKS weekly aggregates (keys `P0`…),
//!   the state the service serves at once on start;
//! - `health.bin`, `metrics-13x1.bin`, `metrics-52x10.bin`: gRPC request
//!   bodies (the 5-byte frame prefix and the encoded message) for h2load;
//! - `projects.txt`: the comma-separated project keys.

use std::path::PathBuf;

use chrono::Utc;
use fake_jira::demo::large_aggregates;
use jira_dora::proto::GetMetricsRequest;
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

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!("usage: load_fixture DIR [PROJECTS] [WEEKS]"))?);
    let projects: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let weeks: usize = args.next().map_or(Ok(260), |a| a.parse())?;
    std::fs::create_dir_all(&dir)?;

    let now = Utc::now().timestamp_millis();
    let state = Snapshot {
        seq: 1,
        taken_at: now,
        projects: large_aggregates(projects, weeks, 7)
            .into_iter()
            .map(|(key, weeks)| ProjectRecord { key, last_harvest: Some(now), definitions_version: "load".into(), weeks })
            .collect(),
        ..Default::default()
    };
    let keys: Vec<String> = state.projects.iter().map(|p| p.key.clone()).collect();
    SnapshotDir::open(&dir.join("data"))?.write(&snapshot::encode(&state))?;
    std::fs::write(dir.join("projects.txt"), keys.join(","))?;

    // The generated weeks end in 2026-W02; ask for whole weeks inside them.
    let request = |n: usize, from: &str| GetMetricsRequest {
        project_keys: keys.iter().take(n).cloned().collect(),
        from_week: Some(from.into()),
        to_week: Some("2026-W01".into()),
        ..Default::default()
    };
    std::fs::write(dir.join("metrics-13x1.bin"), frame(&request(1, "2025-W41")))?;
    std::fs::write(dir.join("metrics-52x10.bin"), frame(&request(10, "2025-W02")))?;
    std::fs::write(
        dir.join("health.bin"),
        frame(&tonic_health::pb::HealthCheckRequest { service: "dora.v1.DoraMetrics".into() }),
    )?;
    println!("{} projects × {weeks} weeks written to {}", keys.len(), dir.display());
    Ok(())
}
