//! Save and load of a large state (1 000 projects × 260 weeks) against
//! writing and reading the same number of raw bytes.
//!
//! `cargo bench --bench snapshot` (set `SNAPSHOT_BENCH_PROJECTS` for another
//! size). Each figure is the median of several runs; "raw" writes the bytes
//! to a file and fsyncs it, and reads a file of that size back, so the
//! ratios show what encoding, checksum and the atomic replace cost on top of
//! the I/O itself.

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use fake_jira::demo::large_aggregates;
use jira_dora::store::snapshot::{self, ProjectRecord, Snapshot};
use jira_dora::store::snapshot_dir::{Slot, SnapshotDir};

const WEEKS: usize = 260;
const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = f();
        times.push(t.elapsed());
        last = Some(out);
    }
    (median(times), last.expect("at least one run"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let projects: usize = std::env::var("SNAPSHOT_BENCH_PROJECTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let state = Snapshot {
        seq: 1,
        taken_at: 1_767_571_200_000,
        projects: large_aggregates(projects, WEEKS, 0x5EED)
            .into_iter()
            .map(|(key, weeks)| ProjectRecord { key, last_harvest: Some(1_767_571_000_000), definitions_version: "0123456789abcdef".into(), weeks })
            .collect(),
        ..Default::default()
    };
    let aggregates: usize = state.projects.iter().map(|p| p.weeks.len()).sum();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = SnapshotDir::open(tmp.path()).expect("a writable directory");

    let (encode, bytes) = time(|| snapshot::encode(&state));
    let (save, ()) = time(|| dir.write(&snapshot::encode(&state)).expect("write"));
    let raw_path = tmp.path().join("raw.bin");
    let (raw_write, ()) = time(|| {
        let mut f = fs::File::create(&raw_path).expect("create");
        f.write_all(&bytes).expect("write");
        f.sync_all().expect("fsync");
    });
    let (decode, decoded) = time(|| snapshot::decode(&bytes).expect("decode"));
    assert_eq!(decoded, state, "the state survives the round trip");
    let (load, loaded) = time(|| dir.load());
    assert!(loaded.snapshot.is_some_and(|(s, slot, _)| slot == Slot::Current && s.projects.len() == projects));
    let (raw_read, raw) = time(|| fs::read(&raw_path).expect("read"));
    assert_eq!(raw.len(), bytes.len());

    println!("snapshot benchmark: {projects} projects × {WEEKS} weeks = {aggregates} weekly aggregates, median of {RUNS} runs");
    println!("  size:  {} bytes ({:.1} MiB), {:.1} bytes per (project, week) aggregate", bytes.len(), bytes.len() as f64 / 1048576.0, bytes.len() as f64 / aggregates as f64);
    println!("  save:  {:8.1} ms  (encode {:.1} ms + write, fsync, rename, dir fsync)", ms(save), ms(encode));
    println!("  raw write + fsync of the same bytes: {:8.1} ms  → save/raw = {:.2}×", ms(raw_write), ms(save) / ms(raw_write));
    println!("  load:  {:8.1} ms  (read and check both files, decode the current one: {:.1} ms)", ms(load), ms(decode));
    println!("  raw read of the same bytes:          {:8.1} ms  → load/raw = {:.2}×", ms(raw_read), ms(load) / ms(raw_read));
    println!("  throughput: save {:.0} MiB/s, load {:.0} MiB/s", bytes.len() as f64 / 1048576.0 / save.as_secs_f64(), bytes.len() as f64 / 1048576.0 / load.as_secs_f64());
}
