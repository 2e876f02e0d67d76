//! Harvest throughput against the loopback fake Jira.
//!
//! Harvests a large generated site with the real client, harvester and the
//! shipped definitions in a child process (the service's parts alone, so
//! that its RSS before and after the harvest is the service's: the
//! generated site and the fake Jira stay in this one), and prints what the
//! harvest held and its peak. Then it harvests again in this process and
//! measures side by side: a plain reqwest loop that downloads the same
//! search and changelog pages the client fetched and parses them into `serde_json::Value` (the floor any
//! harvest has to pay), the client alone (download, parse, conversion to
//! facts), and classification plus aggregation alone over those facts.
//!
//! A second harvest of the same site takes Cloud changelogs the old way,
//! expanded in the searches: the requests and bytes received per 1 000
//! issues of both are printed side by side, and their figures must be
//! identical.
//!
//! Last, what refreshes cost Jira: after nine edits, the requests of an
//! incremental refresh without the reconciliation of deletions and moves
//! and of one with it, next to the full harvest's; how long those
//! refreshes took, and how long rebuilding the largest project's arrays
//! from the facts in memory and nine changed issues takes.
//!
//! `cargo bench --bench harvest`; `HARVEST_BENCH_ISSUES` sets the total
//! number of issues (default 100 000, over 10 projects);
//! `HARVEST_BENCH_MEMORY_ONLY=1` stops after the memory figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use fake_jira::demo::large_site;
use fake_jira::{FakeJira, LoggedResponse};
use jira_dora::definitions::DefinitionSet;
use jira_dora::domain::aggregate::build_project;
use jira_dora::domain::facts::{IssueBatch, ProjectFacts};
use jira_dora::harvest::{Harvester, JobState, JobView};
use jira_dora::jira::{CloudChangelogs, FetchCounters, JiraClient, JiraConfig};
use jira_dora::store::Store;
use tokio::sync::Semaphore;

const PROJECTS: usize = 10;

/// The system allocator, counting the bytes live and their high-water
/// mark: the heap the facts take, apart from what the allocator keeps
/// around them (which RSS shows).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size - layout.size();
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes live on the heap now, in KiB.
fn heap_kib() -> u64 {
    (LIVE.load(Ordering::Relaxed) / 1024) as u64
}

/// A field of `/proc/self/status` in KiB (0 where there is no procfs).
fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Requests answered and body bytes received, per kind of endpoint.
#[derive(Default, Clone, Copy)]
struct Traffic {
    search: (usize, usize),
    changelog: (usize, usize),
    other: (usize, usize),
}

impl Traffic {
    fn of(responses: &[LoggedResponse]) -> Self {
        let mut t = Traffic::default();
        for r in responses {
            let slot = if r.path.contains("/search") {
                &mut t.search
            } else if r.path.contains("/changelog") {
                &mut t.changelog
            } else {
                &mut t.other
            };
            slot.0 += 1;
            slot.1 += r.bytes;
        }
        t
    }

    fn all(&self) -> (usize, usize) {
        (self.search.0 + self.changelog.0 + self.other.0, self.search.1 + self.changelog.1 + self.other.1)
    }
}

/// A full harvest of every project with a fresh harvester and store; the
/// harvester (it holds the facts), the final job view, the store and the
/// time it took.
async fn full_harvest(
    cfg: JiraConfig,
    keys: &[String],
    definitions: &Arc<DefinitionSet>,
    tz: chrono_tz::Tz,
) -> (Arc<Harvester>, JobView, Arc<Store>, Duration) {
    let store = Arc::new(Store::new());
    let harvester = Arc::new(Harvester::new(
        JiraClient::new(cfg).expect("client"),
        Arc::clone(&store),
        Arc::clone(definitions),
        tz,
        keys.to_vec(),
    ));
    let t = Instant::now();
    let id = harvester.start(Vec::new(), true).await.expect("harvest starts");
    let view = loop {
        let view = harvester.job(&id).expect("job");
        if view.finished.is_some() {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let took = t.elapsed();
    assert_eq!(view.state, JobState::Succeeded, "{view:#?}");
    (harvester, view, store, took)
}

/// Set (to the fake Jira's address) in the child process that harvests
/// as the service alone; its projects in `HARVEST_BENCH_KEYS`.
const SERVICE_ENV: &str = "HARVEST_BENCH_SERVICE";
const KEYS_ENV: &str = "HARVEST_BENCH_KEYS";
/// Set to stop after the memory figures.
const MEMORY_ONLY_ENV: &str = "HARVEST_BENCH_MEMORY_ONLY";

fn main() {
    let total: usize = std::env::var("HARVEST_BENCH_ISSUES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let per_project = (total / PROJECTS).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match std::env::var(SERVICE_ENV) {
        Ok(base) => runtime.block_on(service_alone(base)),
        Err(_) => runtime.block_on(run(per_project)),
    }
}

/// The memory of a full harvest in a process of its own: KiB of RSS
/// before, at the peak and after, and of heap before, at the peak and
/// after.
#[derive(Debug, Clone, Copy)]
struct HarvestMemory {
    rss: [u64; 3],
    heap: [u64; 3],
}

/// The child process: the service's parts alone (no generated site, no
/// fake Jira) harvest the site of the fake Jira at `base`, then print what
/// the harvest took, on one line.
async fn service_alone(base: String) {
    let keys: Vec<String> = std::env::var(KEYS_ENV).expect("keys").split(',').map(str::to_owned).collect();
    let cfg = JiraConfig { retry_base: Duration::from_millis(1), ..JiraConfig::new(base) };
    let definitions = Arc::new(DefinitionSet::shipped());
    let rss_before = proc_status_kib("VmRSS:");
    let heap_before = heap_kib();
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let (harvester, _, store, _) = full_harvest(cfg, &keys, &definitions, chrono_tz::Europe::Berlin).await;
    let m = HarvestMemory {
        rss: [rss_before, proc_status_kib("VmHWM:"), proc_status_kib("VmRSS:")],
        heap: [heap_before, (PEAK.load(Ordering::Relaxed) / 1024) as u64, heap_kib()],
    };
    println!("{} {} {} {} {} {}", m.rss[0], m.rss[1], m.rss[2], m.heap[0], m.heap[1], m.heap[2]);
    drop((harvester, store));
}

/// Runs [`service_alone`] in a child process against `fake`.
fn harvest_in_child(fake: &FakeJira, keys: &[String]) -> HarvestMemory {
    let out = std::process::Command::new(std::env::current_exe().expect("this benchmark"))
        .env(SERVICE_ENV, fake.base_url())
        .env(KEYS_ENV, keys.join(","))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the child harvest runs");
    assert!(out.status.success(), "the child harvest failed");
    let n: Vec<u64> =
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(|v| v.parse().expect("a number")).collect();
    assert_eq!(n.len(), 6, "six figures");
    HarvestMemory { rss: [n[0], n[1], n[2]], heap: [n[3], n[4], n[5]] }
}

async fn run(per_project: usize) {
    let issues = per_project * PROJECTS;
    let t = Instant::now();
    let site = large_site(PROJECTS, per_project, 1);
    let histories: usize = site.projects.iter().flat_map(|p| &p.issues).map(|i| i.histories.len()).sum();
    let keys: Vec<String> = site.projects.iter().map(|p| p.key.clone()).collect();
    let fake = FakeJira::start(site).await;
    fake.set_now(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
    println!(
        "site: {issues} issues in {PROJECTS} projects, {histories} changelog entries, generated in {:.1} s",
        secs(t.elapsed())
    );
    let cfg = JiraConfig { retry_base: Duration::from_millis(1), ..JiraConfig::new(fake.base_url()) };
    let definitions = Arc::new(DefinitionSet::shipped());
    let tz = chrono_tz::Europe::Berlin;

    // 1. The harvest: client + harvester + shipped definitions, first in a
    // process of its own (the service's parts alone: what it holds is the
    // service's, not the generated site's or the fake Jira's), then in
    // this one for the comparisons below.
    fake.clear_requests();
    let alone = harvest_in_child(&fake, &keys);
    fake.clear_requests();
    // The memory figures first: what follows takes long on a large site.
    let per_100k = |kib: u64| mib(kib) * 100_000.0 / issues as f64;
    let [_, rss_peak, rss_held] = alone.rss.map(|kib| kib.saturating_sub(alone.rss[0]));
    let [_, heap_peak, heap_held] = alone.heap.map(|kib| kib.saturating_sub(alone.heap[0]));
    let ratio = rss_peak as f64 / rss_held.max(1) as f64;
    println!();
    println!("| memory of the harvest (service alone)     | value            |");
    println!("|-------------------------------------------|------------------|");
    println!("| VmRSS before the harvest                  | {:>12.1} MiB |", mib(alone.rss[0]));
    println!("| RSS held after the harvest, per 100k      | {:>12.1} MiB |", per_100k(rss_held));
    println!("| RSS peak during the harvest, per 100k     | {:>12.1} MiB |", per_100k(rss_peak));
    println!("| ratio peak / held                         | {ratio:>16.2} |");
    println!("| heap held after the harvest, per 100k     | {:>12.1} MiB |", per_100k(heap_held));
    println!("| heap peak during the harvest, per 100k    | {:>12.1} MiB |", per_100k(heap_peak));
    println!("(held and peak: above the RSS or heap before the harvest)");
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("target: RSS held <= 40 MiB per 100 000 issues: {}", met(per_100k(rss_held) <= 40.0));
    println!("target: RSS peak / held <= 2: {}", met(ratio <= 2.0));
    println!();
    if std::env::var(MEMORY_ONLY_ENV).is_ok() {
        fake.shutdown().await;
        return;
    }

    let (harvester, view, store, harvest) = full_harvest(cfg.clone(), &keys, &definitions, tz).await;
    let fetched: u64 = view.projects.iter().map(|p| p.issues_fetched).sum();
    let pages: u64 = view.projects.iter().map(|p| p.pages).sum();
    let requests: Vec<_> =
        fake.requests().into_iter().filter(|r| r.path.contains("/search") || r.path.contains("/changelog")).collect();
    let after = Traffic::of(&fake.responses());
    // The same harvest with changelogs expanded in the searches, as before
    // bulkfetch: what it received, and the same figures.
    fake.clear_requests();
    let expanded = JiraConfig { cloud_changelogs: CloudChangelogs::ExpandedSearch, ..cfg.clone() };
    let (_, _, store_expanded, _) = full_harvest(expanded, &keys, &definitions, tz).await;
    let before = Traffic::of(&fake.responses());
    fake.clear_requests();
    assert_eq!(store.keys(), store_expanded.keys());
    for key in store.keys() {
        let (a, b) = (store.get(&key).expect("project"), store_expanded.get(&key).expect("project"));
        assert!(a.aggregates == b.aggregates, "{key}: the figures differ between the two ways of fetching changelogs");
    }
    drop(store_expanded);

    // 2. The floor: the same search and changelog pages, downloaded and
    // parsed into `serde_json::Value`, as many in flight as the client.
    let http = reqwest::Client::new();
    let base = fake.base_url();
    let limit = Arc::new(Semaphore::new(cfg.max_concurrency));
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for r in requests.iter().cloned() {
        let (http, limit) = (http.clone(), Arc::clone(&limit));
        let url =
            if r.query.is_empty() { format!("{base}{}", r.path) } else { format!("{base}{}?{}", r.path, r.query) };
        set.spawn(async move {
            let _permit = limit.acquire().await.expect("semaphore");
            let rb = if r.method == "POST" {
                http.post(&url).header("content-type", "application/json").body(r.body)
            } else {
                http.get(&url)
            };
            let bytes = rb.send().await.expect("request").bytes().await.expect("body");
            let value: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
            (bytes.len(), value.is_object())
        });
    }
    let mut body_bytes = 0usize;
    while let Some(done) = set.join_next().await {
        body_bytes += done.expect("task").0;
    }
    let floor = t.elapsed();

    // 3. The client alone (download, parse, conversion), keeping the facts.
    let client = JiraClient::new(cfg.clone()).expect("client");
    let t = Instant::now();
    let statuses = client.statuses().await.expect("statuses");
    let mut fetches = tokio::task::JoinSet::new();
    for key in keys.clone() {
        let (client, statuses) = (client.clone(), statuses.clone());
        fetches.spawn(async move {
            let counters = FetchCounters::default();
            let versions = client.versions(&key).await.expect("versions");
            let issues =
                client.search_changed_issues(&key, None, &Default::default(), &counters).await.expect("search");
            ProjectFacts::merged(key, [], issues, versions, statuses)
        });
    }
    let mut facts = Vec::new();
    while let Some(done) = fetches.join_next().await {
        facts.push(done.expect("task"));
    }
    let client_only = t.elapsed();

    // 4. Classification and aggregation alone, one project after another.
    let t = Instant::now();
    for f in &facts {
        let weeks = build_project(f, &*definitions, tz).expect("build");
        std::hint::black_box(weeks);
    }
    let build = t.elapsed();
    let t = Instant::now();
    let mut builds = Vec::new();
    for f in facts {
        let defs = Arc::clone(&definitions);
        builds.push(tokio::task::spawn_blocking(move || build_project(&f, &*defs, tz).map(|_| ())));
    }
    for b in builds {
        b.await.expect("task").expect("build");
    }
    let build_parallel = t.elapsed();

    let ratio = secs(harvest) / secs(floor);
    println!();
    println!("| measure                                   | value            |");
    println!("|-------------------------------------------|------------------|");
    println!("| issues harvested                          | {fetched:>16} |");
    println!("| pages read by the client                  | {pages:>16} |");
    println!("| search + changelog requests replayed      | {:>16} |", requests.len());
    println!("| response bytes replayed                   | {:>13.1} MB |", body_bytes as f64 / 1e6);
    println!("| harvest (client + definitions + store)    | {:>14.2} s |", secs(harvest));
    println!("| harvest throughput                        | {:>10.0} iss/s |", fetched as f64 / secs(harvest));
    println!("| download + serde_json::Value parse        | {:>14.2} s |", secs(floor));
    println!("| ratio harvest / (download + parse)        | {ratio:>16.2} |");
    println!("| client alone (download, parse, convert)   | {:>14.2} s |", secs(client_only));
    println!("| build_project alone, sequential           | {:>14.2} s |", secs(build));
    println!("| build_project alone, blocking pool        | {:>14.2} s |", secs(build_parallel));
    println!("| build_project per issue                   | {:>13.1} µs |", secs(build) * 1e6 / issues as f64);
    println!();
    let per_1000 = |n: usize| n as f64 * 1000.0 / issues as f64;
    let rows = [
        ("searches", before.search, after.search),
        ("changelogs", before.changelog, after.changelog),
        ("statuses, versions", before.other, after.other),
        ("all", before.all(), after.all()),
    ];
    println!("| per 1 000 issues                 | before: expanded | after: bulkfetch |");
    println!("|----------------------------------|-----------------:|-----------------:|");
    for (what, b, a) in rows {
        println!("| requests: {what:<22} | {:>16.1} | {:>16.1} |", per_1000(b.0), per_1000(a.0));
    }
    for (what, b, a) in rows {
        println!("| kB received: {what:<19} | {:>16.1} | {:>16.1} |", per_1000(b.1) / 1e3, per_1000(a.1) / 1e3);
    }
    println!("figures of both harvests: identical in every project and week");
    println!();
    println!("target: harvest / (download + parse) <= 1.5: {}", if ratio <= 1.5 { "met" } else { "NOT met" });
    refresh_costs(&fake, &harvester, &view, issues).await;
    fake.shutdown().await;
}

/// Runs a refresh of every project to its end.
async fn refresh(harvester: &Arc<Harvester>, full: bool) -> JobView {
    let id = harvester.start(Vec::new(), full).await.expect("refresh starts");
    loop {
        let view = harvester.job(&id).expect("job");
        if view.finished.is_some() {
            assert_eq!(view.state, JobState::Succeeded, "{view:#?}");
            return view;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The Jira requests of the refreshes of a harvested site after nine edits
/// (status changes spread over the projects): incremental without the
/// reconciliation (it ran less than an hour ago), incremental with it,
/// and the full harvest's. The job's count is checked against the
/// requests the fake Jira saw.
async fn refresh_costs(fake: &FakeJira, harvester: &Arc<Harvester>, full: &JobView, issues: usize) {
    let requests = |v: &JobView| v.projects.iter().map(|p| p.jira_requests.expect("a live job counts")).sum::<u64>();
    let edit = |round: usize| {
        for n in 0..9 {
            let key = fake.with_state(|st| {
                let p = &st.site.projects[n % st.site.projects.len()];
                p.issues[(n * 7919 + round * 104_729) % p.issues.len()].key.clone()
            });
            fake.set_now(fake.now() + chrono::Duration::minutes(1));
            assert!(fake.transition(&key, "3", None), "status 3 exists");
        }
    };
    let mut measured = Vec::new();
    let mut took = Vec::new();
    // Never due, then always: a harvest of a large site can take longer
    // than the default hour, which would make the first refresh reconcile.
    for (round, interval) in [Duration::MAX, Duration::ZERO].into_iter().enumerate() {
        edit(round);
        harvester.set_reconcile_interval(interval);
        fake.clear_requests();
        let t = Instant::now();
        let view = refresh(harvester, false).await;
        took.push(t.elapsed());
        assert_eq!(requests(&view), fake.request_count() as u64, "the job counts what Jira saw");
        let reconciled = view.projects.iter().all(|p| p.reconciled == Some(true));
        assert_eq!(reconciled, interval.is_zero());
        let id_pages = fake
            .requests()
            .iter()
            .filter(|r| r.path.contains("/search") && r.query_decoded.contains("fields=id&"))
            .count();
        measured.push((requests(&view), id_pages));
    }
    let ((quiet, _), (reconciling, id_pages)) = (measured[0], measured[1]);
    println!();
    println!("| Jira requests, {issues} issues in {PROJECTS} projects, 9 edits | requests | target |");
    println!("|------------------------------------------------------|---------:|-------:|");
    println!("| full harvest                                         | {:>8} |      — |", requests(full));
    println!("| incremental refresh, no reconciliation               | {quiet:>8} |  <= 30 |");
    println!("| incremental refresh with reconciliation              | {reconciling:>8} | <= 150 |");
    println!("| of which id-only pages (as large as Jira answers)    | {id_pages:>8} |      — |");
    println!();
    println!("| incremental refresh of every project, no reconciliation | {:>9.0} ms |", took[0].as_secs_f64() * 1e3);
    println!("| incremental refresh with reconciliation                  | {:>9.0} ms |", took[1].as_secs_f64() * 1e3);
    rebuild_cost(harvester);
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("target: incremental without reconciliation <= 30 requests: {}", met(quiet <= 30));
    println!("target: incremental with reconciliation <= 150 requests: {}", met(reconciling <= 150));
}

/// What an incremental refresh pays to keep a project's facts in a few
/// arrays: the arrays built anew from the facts in memory plus nine
/// changed issues (the largest project; the median of 5 runs).
fn rebuild_cost(harvester: &Arc<Harvester>) {
    let facts = harvester
        .memory()
        .keys()
        .iter()
        .filter_map(|k| harvester.project_facts(k))
        .max_by_key(|f| f.issues.len())
        .expect("a project");
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let mut changed = IssueBatch::default();
            for issue in facts.issues.iter().step_by(facts.issues.len() / 9 + 1) {
                changed.push(issue.to_draft());
            }
            let t = Instant::now();
            let rebuilt = ProjectFacts::merged(
                facts.key.clone(),
                &facts.issues,
                changed,
                facts.versions.clone(),
                facts.statuses.clone(),
            );
            let took = t.elapsed();
            assert_eq!(rebuilt.issues.len(), facts.issues.len());
            drop(rebuilt);
            took
        })
        .collect();
    runs.sort();
    println!(
        "| rebuild of one project's arrays ({} issues, 9 changed) | {:>9.1} ms |",
        facts.issues.len(),
        runs[2].as_secs_f64() * 1e3
    );
}
