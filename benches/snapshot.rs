//! Save and load of a large state (1 000 projects × 260 weeks) against
//! writing and reading the same number of raw bytes.
//!
//! `cargo bench --bench snapshot` (set `SNAPSHOT_BENCH_PROJECTS` for another
//! size). Each figure is the median of several runs; "raw" writes the bytes
//! to a file and fsyncs it, and reads a file of that size back, so the
//! ratios show what encoding, checksum and the atomic replace cost on top of
//! the I/O itself. Saves are measured three times: with every project
//! encoded, after a refresh changed one project (the encoder reuses the
//! others' bytes), and with nothing to encode (the files alone). A refresh
//! replaces the data of every project it refreshes (their last harvest
//! time at least), so the save after a scheduled refresh, which refreshes
//! every project, encodes every project, as does the first one after a
//! start; a refresh of a few projects encodes those few. The raw write is
//! measured over the same file, as before, and into a new file each time as a save
//! writes one: the two differ when the kernel has to find fresh pages for
//! the new file (on a virtual machine that hands free memory back to its
//! host, several times slower), so both are printed.
//!
//! The load is also set against a deep copy of the loaded state in memory:
//! the allocation and filling of the same maps and sketches, which any
//! load that builds them pays whatever the file's format.
//!
//! `SNAPSHOT_BENCH_PROFILE=save` (or `load`) repeats only that, 20 times,
//! for a profiler (`perf record --call-graph dwarf`).

use std::fs;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_jira::demo::large_aggregates;
use jira_dora::store::ProjectData;
use jira_dora::store::snapshot::{self, Encoder, ProjectRecord, Snapshot};
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
            .map(|(key, weeks)| ProjectRecord {
                key,
                last_harvest: Some(1_767_571_000_000),
                definitions_version: "0123456789abcdef".into(),
                weeks,
                teams: Default::default(),
            })
            .collect(),
        ..Default::default()
    };
    let aggregates: usize = state.projects.iter().map(|p| p.weeks.len()).sum();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = SnapshotDir::open(tmp.path()).expect("a writable directory");

    // The service's path: the store's data shared (no copy), encoded by an
    // `Encoder`: from scratch (as after a start or a scheduled refresh),
    // with nothing to encode, then with one project changed between two
    // saves, as after a refresh of one project.
    let mut shared: Vec<(String, Arc<ProjectData>)> =
        state.projects.iter().cloned().map(|r| r.into_data()).map(|(k, d)| (k, Arc::new(d))).collect();
    if let Ok(what) = std::env::var("SNAPSHOT_BENCH_PROFILE") {
        dir.write(&snapshot::encode(&state)).expect("write");
        for _ in 0..20 {
            match what.as_str() {
                "save" => dir.write_pieces(&Encoder::new().encode(&state.parts(&shared)).0.pieces()).expect("write"),
                "load" => assert!(dir.load().snapshot.is_some()),
                other => panic!("SNAPSHOT_BENCH_PROFILE is save or load, not {other}"),
            }
        }
        return;
    }

    let (encode, bytes) = time(|| snapshot::encode(&state));
    let (encode_all, encoder) = time(|| {
        let mut encoder = Encoder::new();
        encoder.encode(&state.parts(&shared));
        encoder
    });
    drop(encoder);
    assert_eq!(Encoder::new().encode(&state.parts(&shared)).0.to_vec(), bytes, "the encoder writes the same bytes");
    let (save, mut encoder) = time(|| {
        let mut encoder = Encoder::new();
        dir.write_pieces(&encoder.encode(&state.parts(&shared)).0.pieces()).expect("write");
        encoder
    });
    // The same save with nothing to encode: what the files cost.
    let (save_files, ()) = time(|| {
        let (encoded, fresh) = encoder.encode(&state.parts(&shared));
        assert_eq!(fresh, 0);
        dir.write_pieces(&encoded.pieces()).expect("write");
    });
    let mut changed = 0;
    let (save_changed, fresh) = time(|| {
        changed = (changed + 1) % shared.len();
        shared[changed].1 = Arc::new((*shared[changed].1).clone());
        let (encoded, fresh) = encoder.encode(&state.parts(&shared));
        dir.write_pieces(&encoded.pieces()).expect("write");
        fresh
    });
    assert_eq!(fresh, 1, "only the changed project is encoded anew");
    let raw_path = tmp.path().join("raw.bin");
    let (raw_write, ()) = time(|| {
        let mut f = fs::File::create(&raw_path).expect("create");
        f.write_all(&bytes).expect("write");
        f.sync_all().expect("fsync");
    });
    // The same into a new file each time, as a save writes one (the
    // truncation above frees pages of the cache that the write then
    // reuses; a new file needs pages the kernel may have to fetch).
    let mut n = 0;
    let (raw_write_new, ()) = time(|| {
        n += 1;
        let mut f = fs::File::create_new(tmp.path().join(format!("raw-{n}.bin"))).expect("create");
        f.write_all(&bytes).expect("write");
        f.sync_all().expect("fsync");
    });
    for n in 1..=n {
        fs::remove_file(tmp.path().join(format!("raw-{n}.bin"))).expect("remove");
    }
    let (decode, decoded) = time(|| snapshot::decode(&bytes).expect("decode"));
    assert_eq!(decoded, state, "the state survives the round trip");
    // The same structures built without any bytes: a deep copy of the
    // decoded state (maps, sketches and strings allocated and filled), on
    // one thread. What a load costs beyond this is reading and decoding.
    let (copy, copied) = time(|| decoded.clone());
    assert_eq!(copied, decoded);
    drop(copied);
    let (load, loaded) = time(|| dir.load());
    assert!(loaded.snapshot.is_some_and(|(s, slot, _)| slot == Slot::Current && s.projects.len() == projects));
    let (raw_read, raw) = time(|| fs::read(&raw_path).expect("read"));
    assert_eq!(raw.len(), bytes.len());

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_average = fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    println!(
        "snapshot benchmark: {projects} projects × {WEEKS} weeks = {aggregates} weekly aggregates, median of {RUNS} runs"
    );
    println!(
        "  {threads} hardware threads (large snapshots are encoded and decoded on up to 8); load average {load_average}"
    );
    println!(
        "  size:  {} bytes ({:.1} MiB), {:.1} bytes per (project, week) aggregate",
        bytes.len(),
        bytes.len() as f64 / 1048576.0,
        bytes.len() as f64 / aggregates as f64
    );
    println!(
        "  save:  {:8.1} ms  (every project encoded: {:.1} ms, `snapshot::encode` of a copied state {:.1} ms; write, fsync, rename, dir fsync)",
        ms(save),
        ms(encode_all),
        ms(encode)
    );
    println!(
        "  save after one project changed: {:8.1} ms  (the encoder reuses the other {} projects' bytes)",
        ms(save_changed),
        projects - 1
    );
    println!(
        "  save with nothing encoded:      {:8.1} ms  (the files alone: write, fsync, rename, dir fsync)",
        ms(save_files)
    );
    println!(
        "  raw write + fsync of the same bytes: {:8.1} ms  → save/raw = {:.2}× (all encoded), {:.2}× (one changed)",
        ms(raw_write),
        ms(save) / ms(raw_write),
        ms(save_changed) / ms(raw_write)
    );
    println!(
        "  raw write + fsync into a new file:   {:8.1} ms  → save/raw = {:.2}× (all encoded), {:.2}× (one changed)",
        ms(raw_write_new),
        ms(save) / ms(raw_write_new),
        ms(save_changed) / ms(raw_write_new)
    );
    println!(
        "  load:  {:8.1} ms  (read the current file and decode it: decode alone {:.1} ms; the previous file's header checked)",
        ms(load),
        ms(decode)
    );
    println!(
        "  raw read of the same bytes:          {:8.1} ms  → load/raw = {:.2}×",
        ms(raw_read),
        ms(load) / ms(raw_read)
    );
    println!(
        "  the same state copied in memory:     {:8.1} ms  → load/copy = {:.2}× (a deep copy on one thread: the structures alone, nothing read or decoded)",
        ms(copy),
        ms(load) / ms(copy)
    );
    println!(
        "  throughput: save {:.0} MiB/s, load {:.0} MiB/s",
        bytes.len() as f64 / 1048576.0 / save.as_secs_f64(),
        bytes.len() as f64 / 1048576.0 / load.as_secs_f64()
    );
}
