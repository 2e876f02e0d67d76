//! Several replicas on a real PostgreSQL: a private server started from
//! the installed server binaries ([`postgres`]), three `jira-dora`
//! processes against it ([`replica`]), each harvesting its own fake Jira
//! serving the same site, so each fake's request log is one replica's.
//!
//! These tests need PostgreSQL's server binaries (Debian's `postgresql`
//! package); `.ci/run` installs it and runs them with `--ignored`. By hand:
//! `apt-get install postgresql && cargo test --test cluster -- --ignored --test-threads=1`.

mod postgres;
#[path = "../common/process.rs"]
mod process;
mod replica;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_jira::demo::large_site;
use fake_jira::{FakeJira, Site};
use jira_dora::cluster::{Database, DbError};
use jira_dora::config::Secret;
use jira_dora::proto::*;
use postgres::Postgres;
use replica::Replica;
use tonic_health::pb::health_check_response::ServingStatus;

/// A password in the replicas' database URL (the test server trusts
/// loopback, so it is never checked): it must never show in a log.
const PASSWORD: &str = "marker-password-4f1c";

/// The lease the replicas run with here (production default: 15 s).
const LEASE: Duration = Duration::from_secs(3);

/// Three replicas, their fakes and their database.
struct TestCluster {
    lease: Duration,
    replicas: Vec<Replica>,
    fakes: Arc<Vec<FakeJira>>,
    pg: Postgres,
    site: Site,
    _dir: tempfile::TempDir,
}

/// The figures of every project, for comparing replicas.
#[derive(Debug, Clone, PartialEq)]
struct Figures {
    combined: Option<PeriodFigures>,
    projects: Vec<ProjectMetrics>,
    definitions_version: String,
}

fn metrics_request(site: &Site) -> GetMetricsRequest {
    GetMetricsRequest {
        project_keys: site.projects.iter().map(|p| p.key.clone()).collect(),
        from_week: Some("2025-W28".into()),
        to_week: Some("2026-W02".into()),
        include_series: true,
        ..Default::default()
    }
}

impl TestCluster {
    /// PostgreSQL, three fakes and three replicas; replica 0 is started
    /// first and leads; returns once every replica serves the same figures.
    async fn start() -> TestCluster {
        Self::start_with(LEASE).await
    }

    async fn start_with(lease: Duration) -> TestCluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pg = Postgres::start().await;
        let site = large_site(2, 120, 7);
        let mut fakes = Vec::new();
        for _ in 0..3 {
            fakes.push(FakeJira::start(site.clone()).await);
        }
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = TestCluster { lease, replicas: Vec::new(), fakes: Arc::new(fakes), pg, site, _dir: dir };
        cluster.spawn(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while cluster.replicas[0].leading().await.is_none() {
            assert!(Instant::now() < deadline, "replica 0 did not lead; log:\n{}", cluster.replicas[0].log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster.spawn(1);
        cluster.spawn(2);
        cluster.same_figures(Duration::from_secs(60)).await;
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let dir = self._dir.path().join(format!("r{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.toml");
        std::fs::write(&config, "[definitions]\nallow_updates = true\n[harvest]\ninterval_minutes = 0\n").unwrap();
        let keys: Vec<String> = self.site.projects.iter().map(|p| p.key.clone()).collect();
        let env = [
            ("DORA_DATABASE_URL", self.pg.url().replace("dora@", &format!("dora:{PASSWORD}@"))),
            ("DORA_CONFIG", config.display().to_string()),
            ("JIRA_BASE_URL", self.fakes[i].base_url()),
            ("DORA_PROJECTS", keys.join(",")),
            ("DORA_CLUSTER_LEASE_MS", self.lease.as_millis().to_string()),
            ("DORA_CLUSTER_HEARTBEAT_MS", "1000".to_owned()),
            ("DORA_CLUSTER_POLL_MS", "500".to_owned()),
            ("DORA_SNAPSHOT_DEBOUNCE_MS", "200".to_owned()),
        ];
        let replica = Replica::spawn(&format!("r{i}"), &dir, &env);
        if i < self.replicas.len() {
            self.replicas[i] = replica;
        } else {
            self.replicas.push(replica);
        }
    }

    async fn figures(&self, i: usize) -> Result<Figures, tonic::Status> {
        let r = self.replicas[i].client().await.get_metrics(metrics_request(&self.site)).await?.into_inner();
        Ok(Figures {
            combined: r.combined,
            projects: r.projects,
            definitions_version: r.freshness.map(|f| f.definitions_version).unwrap_or_default(),
        })
    }

    /// Waits until the replicas `among` serve the same figures.
    async fn same_figures_among(&self, among: &[usize], timeout: Duration) -> Figures {
        let deadline = Instant::now() + timeout;
        loop {
            let mut all = Vec::new();
            for &i in among {
                all.push(self.figures(i).await);
            }
            if let Ok(first) = &all[0]
                && all.iter().all(|f| f.as_ref().ok() == Some(first))
            {
                return first.clone();
            }
            assert!(
                Instant::now() < deadline,
                "replicas {among:?} do not agree within {timeout:?}: {:?}",
                all.iter().map(|f| f.as_ref().map(|f| f.combined)).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn same_figures(&self, timeout: Duration) -> Figures {
        self.same_figures_among(&[0, 1, 2], timeout).await
    }

    /// The replica that leads among `among`, and its epoch.
    async fn leader_among(&self, among: &[usize]) -> Option<(usize, u64)> {
        for &i in among {
            if let Some(epoch) = self.replicas[i].leading().await {
                return Some((i, epoch));
            }
        }
        None
    }

    /// Waits for a job to end, asking replica `i`.
    async fn job_done(&self, i: usize, job_id: &str, timeout: Duration) -> RefreshJob {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.replicas[i]
                .client()
                .await
                .get_refresh_status(GetRefreshStatusRequest { job_id: job_id.to_owned() })
                .await;
            if let Ok(job) = status.map(|s| s.into_inner().job.unwrap())
                && job.finished.is_some()
                && job.state != JobState::Queued as i32
                && job.state != JobState::Running as i32
            {
                return job;
            }
            assert!(Instant::now() < deadline, "job {job_id} did not end within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn serving(&self, i: usize) -> bool {
        let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{}", self.replicas[i].addr))
            .unwrap()
            .connect()
            .await
        else {
            return false;
        };
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let request = tonic_health::pb::HealthCheckRequest { service: "dora.v1.DoraMetrics".into() };
        matches!(health.check(request).await, Ok(r) if r.get_ref().status == ServingStatus::Serving as i32)
    }
}

/// Samples every fake's request count every 20 ms, to tell when each
/// replica talked to Jira.
/// Each fake's request count at a moment.
type Sample = (Instant, Vec<usize>);

struct JiraActivity {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl JiraActivity {
    fn record(fakes: Arc<Vec<FakeJira>>) -> JiraActivity {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, st) = (Arc::clone(&samples), Arc::clone(&stop));
        let task = tokio::spawn(async move {
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                s.lock().unwrap().push((Instant::now(), fakes.iter().map(|f| f.request_count()).collect()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        JiraActivity { samples, stop, task }
    }

    /// Stops sampling; returns per replica the time spans in which it sent
    /// requests (increases less than 1 s apart form one span).
    async fn spans(self) -> Vec<Vec<(Instant, Instant)>> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap();
        let samples = self.samples.lock().unwrap().clone();
        let n = samples.first().map_or(0, |s| s.1.len());
        (0..n)
            .map(|r| {
                let mut spans: Vec<(Instant, Instant)> = Vec::new();
                for w in samples.windows(2) {
                    if w[1].1[r] > w[0].1[r] {
                        let (from, to) = (w[0].0, w[1].0);
                        match spans.last_mut() {
                            Some(last) if from.duration_since(last.1) < Duration::from_secs(1) => last.1 = to,
                            _ => spans.push((from, to)),
                        }
                    }
                }
                spans
            })
            .collect()
    }
}

/// No two replicas' request spans overlap.
fn assert_one_harvester_at_a_time(spans: &[Vec<(Instant, Instant)>]) {
    for a in 0..spans.len() {
        for b in a + 1..spans.len() {
            for x in &spans[a] {
                for y in &spans[b] {
                    assert!(
                        x.1 <= y.0 || y.1 <= x.0,
                        "replicas r{a} and r{b} called Jira at the same time: {x:?} and {y:?}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL's server binaries: .ci/run installs them; by hand: apt-get install postgresql, then cargo test --test cluster -- --ignored --test-threads=1"]
async fn a_killed_leader_is_replaced_within_the_lease_and_no_figure_changes() {
    let mut cluster = TestCluster::start().await;
    let before = cluster.same_figures(Duration::from_secs(30)).await;
    let (leader, epoch) = cluster.leader_among(&[0, 1, 2]).await.expect("a leader");
    let activity = JiraActivity::record(Arc::clone(&cluster.fakes));

    cluster.replicas[leader].kill9();
    let killed = Instant::now();
    let others = [1, 2];
    let (new_leader, new_epoch, failover) = loop {
        for &i in &others {
            assert_eq!(
                cluster.figures(i).await.expect("figures while the leader is gone"),
                before,
                "r{i} changed a figure"
            );
        }
        if let Some((i, e)) = cluster.leader_among(&others).await {
            break (i, e, killed.elapsed());
        }
        assert!(killed.elapsed() < LEASE + Duration::from_secs(5), "no new leader within the lease + 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("failover after SIGKILL: {:.2} s (lease {} s)", failover.as_secs_f64(), LEASE.as_secs());
    assert!(new_epoch > epoch, "the epoch grows: {epoch} -> {new_epoch}");

    // The new leader's first refresh is a full one, from its own fake.
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.replicas[new_leader].events("first refresh of this term started (full)").is_empty()
        || cluster.replicas[new_leader].events("refresh finished").is_empty()
    {
        assert!(Instant::now() < deadline, "the new leader did not harvest:\n{}", cluster.replicas[new_leader].log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cluster.fakes[new_leader].request_count() > 0);
    let follower = others.into_iter().find(|&i| i != new_leader).unwrap();
    let job = cluster.replicas[follower]
        .client()
        .await
        .refresh(RefreshRequest { project_keys: vec![], full: false })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    let done = cluster.job_done(follower, &job, Duration::from_secs(60)).await;
    assert_eq!(done.state, JobState::Succeeded as i32, "{done:?}");
    assert_eq!(cluster.same_figures_among(&others, Duration::from_secs(10)).await, before);
    assert_one_harvester_at_a_time(&activity.spans().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL's server binaries: .ci/run installs them; by hand: apt-get install postgresql, then cargo test --test cluster -- --ignored --test-threads=1"]
async fn a_leader_stopped_cleanly_hands_over_before_its_lease_would_expire() {
    // A long lease: a standby that waited for it would be seen waiting.
    let lease = Duration::from_secs(20);
    let mut cluster = TestCluster::start_with(lease).await;
    let before = cluster.same_figures(Duration::from_secs(30)).await;
    let (leader, epoch) = cluster.leader_among(&[0, 1, 2]).await.expect("a leader");
    cluster.replicas[leader].signal("TERM");
    let stopped = Instant::now();
    while cluster.replicas[leader].alive() {
        assert!(stopped.elapsed() < Duration::from_secs(30), "the leader did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let exited = Instant::now();
    assert!(!cluster.replicas[leader].events("lease given up").is_empty(), "{}", cluster.replicas[leader].log());
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (_, new_epoch) = loop {
        if let Some(found) = cluster.leader_among(&others).await {
            break found;
        }
        assert!(stopped.elapsed() < lease + Duration::from_secs(5), "no new leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "handover after SIGTERM: {:.2} s, {:.2} s after the exit (lease {} s, heartbeat 1 s)",
        stopped.elapsed().as_secs_f64(),
        exited.elapsed().as_secs_f64(),
        lease.as_secs()
    );
    assert!(exited.elapsed() < Duration::from_secs(5), "the standby waited for the lease to expire");
    assert!(new_epoch > epoch);
    assert_eq!(cluster.same_figures_among(&others, Duration::from_secs(10)).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL's server binaries: .ci/run installs them; by hand: apt-get install postgresql, then cargo test --test cluster -- --ignored --test-threads=1"]
async fn a_frozen_leader_never_writes_again_and_jira_sees_one_harvester_at_a_time() {
    let cluster = TestCluster::start().await;
    let before = cluster.same_figures(Duration::from_secs(30)).await;
    let (leader, epoch) = cluster.leader_among(&[0, 1, 2]).await.expect("a leader");
    let activity = JiraActivity::record(Arc::clone(&cluster.fakes));
    let frozen_at_line = cluster.replicas[leader].log_len();
    let requests_before = cluster.fakes[leader].request_count();
    // A refresh is running when the leader freezes.
    let job = cluster.replicas[leader]
        .client()
        .await
        .refresh(RefreshRequest { project_keys: vec![], full: true })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.fakes[leader].request_count() == requests_before
        || cluster.replicas[leader].events_since(frozen_at_line, "queued refresh started").is_empty()
    {
        assert!(Instant::now() < deadline, "the refresh did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.replicas[leader].signal("STOP");
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let deadline = Instant::now() + LEASE + Duration::from_secs(5);
    let (new_leader, new_epoch) = loop {
        if let Some(found) = cluster.leader_among(&others).await {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader while the old one is frozen:\n{}",
            others.iter().map(|&i| cluster.replicas[i].log()).collect::<Vec<_>>().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(new_epoch > epoch);
    // The new leader harvests (full) while the old one is still frozen.
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.replicas[new_leader].events("refresh finished").is_empty() {
        assert!(Instant::now() < deadline, "the new leader did not harvest:\n{}", cluster.replicas[new_leader].log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resumed_at_line = cluster.replicas[leader].log_len();
    cluster.replicas[leader].signal("CONT");
    // It finds out it lost the lease, and writes nothing.
    tokio::time::sleep(LEASE + Duration::from_secs(2)).await;
    assert_eq!(cluster.replicas[leader].leading().await, None, "the resumed replica still says it leads");
    assert!(
        cluster.replicas[leader].events_since(resumed_at_line, "snapshot written").is_empty(),
        "the resumed replica wrote a snapshot:\n{}",
        cluster.replicas[leader].log()
    );
    let pg = cluster.pg.client().await;
    let rows = pg.query("SELECT seq, epoch FROM dora_snapshots ORDER BY seq", &[]).await.unwrap();
    let newest_epoch: i64 = rows.last().unwrap().get(1);
    assert_eq!(newest_epoch as u64, new_epoch, "the newest snapshot is the new leader's");
    // The job queued before the freeze ended (stopped by the lost lease or
    // finished) and another refresh through the resumed replica runs.
    let done = cluster.job_done(others[0], &job, Duration::from_secs(30)).await;
    println!("job cut by the freeze ended as {:?}", JobState::try_from(done.state));
    let again = cluster.replicas[leader]
        .client()
        .await
        .refresh(RefreshRequest { project_keys: vec![], full: false })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    let done = cluster.job_done(leader, &again, Duration::from_secs(60)).await;
    assert_eq!(done.state, JobState::Succeeded as i32, "{done:?}");
    assert_eq!(cluster.same_figures(Duration::from_secs(10)).await, before);
    let spans = activity.spans().await;
    println!("Jira request spans per replica: {:?}", spans.iter().map(|s| s.len()).collect::<Vec<_>>());
    assert_one_harvester_at_a_time(&spans);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL's server binaries: .ci/run installs them; by hand: apt-get install postgresql, then cargo test --test cluster -- --ignored --test-threads=1"]
async fn every_replica_serves_its_figures_while_postgres_is_down_and_recovers() {
    let mut cluster = TestCluster::start().await;
    let before = cluster.same_figures(Duration::from_secs(30)).await;
    cluster.pg.stop();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(30) {
        for i in 0..3 {
            assert!(cluster.replicas[i].alive(), "r{i} exited:\n{}", cluster.replicas[i].log());
            assert_eq!(cluster.figures(i).await.expect("figures without the database"), before);
            assert!(cluster.serving(i).await, "r{i} stopped serving");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for i in 0..3 {
        assert!(cluster.replicas[i].leading().await.is_none(), "r{i} still leads without the database");
    }
    cluster.pg.start_again().await;
    let back = Instant::now();
    let (leader, _) = loop {
        if let Some(found) = cluster.leader_among(&[0, 1, 2]).await {
            break found;
        }
        assert!(back.elapsed() < LEASE + Duration::from_secs(10), "no leader after the database returned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("leader again {:.2} s after the database returned", back.elapsed().as_secs_f64());
    // A refresh sent through a follower succeeds. Right after the database
    // returns, leadership may still move once (every session was cut, and a
    // renewal that fails or comes late ends a leadership at once, see
    // `cluster::lease`); a job caught by that ends as interrupted, by
    // design, and the client asks again.
    let mut attempts = 0;
    let done = loop {
        attempts += 1;
        let follower = (leader + 1) % 3;
        let job = cluster.replicas[follower]
            .client()
            .await
            .refresh(RefreshRequest { project_keys: vec![], full: false })
            .await
            .unwrap()
            .into_inner()
            .job_id;
        let done = cluster.job_done((leader + 2) % 3, &job, Duration::from_secs(60)).await;
        let interrupted =
            done.projects.iter().any(|p| p.error.starts_with("interrupted: the harvesting leader changed"));
        if done.state == JobState::Succeeded as i32 || !interrupted || attempts == 3 {
            break done;
        }
        println!("refresh {attempts} interrupted by a change of leader; asking again");
    };
    assert_eq!(done.state, JobState::Succeeded as i32, "{done:?}");
    assert_eq!(cluster.same_figures(Duration::from_secs(10)).await, before);
    for i in 0..3 {
        assert!(cluster.replicas[i].alive());
        let log = cluster.replicas[i].log();
        assert!(log.contains("database unreachable"), "r{i} said nothing about the database:\n{log}");
        assert!(!log.contains(PASSWORD), "r{i} logged the database password");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL's server binaries: .ci/run installs them; by hand: apt-get install postgresql, then cargo test --test cluster -- --ignored --test-threads=1"]
async fn a_refresh_and_new_definitions_sent_to_a_follower_reach_every_replica() {
    let cluster = TestCluster::start().await;
    let before = cluster.same_figures(Duration::from_secs(30)).await;
    let follower = 2;
    assert_eq!(cluster.replicas[follower].leading().await, None);

    // Work finishes in Jira after the last harvest.
    let done_status = cluster.site.statuses.iter().find(|s| s.category_key == "done").unwrap().id.clone();
    let open: Vec<String> = cluster.site.projects[0]
        .issues
        .iter()
        .filter(|i| cluster.site.statuses.iter().any(|s| s.id == i.status_id && s.category_key == "indeterminate"))
        .map(|i| i.key.clone())
        .take(5)
        .collect();
    assert!(!open.is_empty());
    let at = chrono::DateTime::parse_from_rfc3339("2026-01-06T12:00:00Z").unwrap().to_utc();
    for fake in cluster.fakes.iter() {
        fake.set_now(at);
        for key in &open {
            assert!(fake.transition(key, &done_status, None));
        }
    }
    let job = cluster.replicas[follower]
        .client()
        .await
        .refresh(RefreshRequest { project_keys: vec![], full: false })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    // Followed from another replica: the stream ends with the job.
    let mut stream = cluster.replicas[1]
        .client()
        .await
        .watch_refresh(WatchRefreshRequest { job_id: job.clone() })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(update) =
        tokio::time::timeout(Duration::from_secs(60), stream.message()).await.expect("progress within 60 s").unwrap()
    {
        last = update.job;
    }
    let done = last.expect("at least one update");
    assert_eq!(done.state, JobState::Succeeded as i32, "{done:?}");
    assert_eq!(cluster.job_done(0, &job, Duration::from_secs(5)).await, done);
    let after = cluster.same_figures(Duration::from_secs(5)).await;
    assert_ne!(after.combined, before.combined, "the refresh changed the figures");

    // New definitions (the shipped ones with a comment: a new version).
    let mut files: Vec<DefinitionFile> =
        cluster.replicas[1].client().await.get_definitions(GetDefinitionsRequest {}).await.unwrap().into_inner().files;
    files[0].source.push_str("\n// reviewed\n");
    let sent = Instant::now();
    let version = cluster.replicas[follower]
        .client()
        .await
        .update_definitions(UpdateDefinitionsRequest { files })
        .await
        .expect("update through a follower")
        .into_inner()
        .version;
    assert!(version.starts_with("2-"), "{version}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut in_force = Vec::new();
    loop {
        in_force.clear();
        for r in &cluster.replicas {
            in_force
                .push(r.client().await.get_definitions(GetDefinitionsRequest {}).await.unwrap().into_inner().version);
        }
        if in_force.iter().all(|v| *v == version) {
            break;
        }
        assert!(Instant::now() < deadline, "not every replica activated {version}: {in_force:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("definitions in force on every replica {:.2} s after the update", sent.elapsed().as_secs_f64());
    let recomputed = cluster.same_figures(Duration::from_secs(10)).await;
    println!("figures computed with them on every replica {:.2} s after the update", sent.elapsed().as_secs_f64());
    assert_eq!(recomputed.definitions_version, version);
    assert_eq!(recomputed.combined, after.combined, "a comment changes no figure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL's server binaries: .ci/run installs them; by hand: apt-get install postgresql, then cargo test --test cluster -- --ignored --test-threads=1"]
async fn a_snapshot_write_with_an_old_epoch_is_refused() {
    let pg = Postgres::start().await;
    let db = Database::new(&Secret::new(pg.url()), "test").unwrap();
    // Several instances migrating at once agree on one schema.
    let versions = migrate_at_once(&db).await;
    assert!(versions.iter().all(|v| *v == versions[0]), "{versions:?}");
    let lease = Duration::from_millis(300);
    let mut a = db.dedicated().await.unwrap();
    let mut b = db.dedicated().await.unwrap();
    let first = Database::claim_lease(&mut a.client, "a", lease).await.unwrap().expect("a free lease");
    db.write_snapshot(first, 1, chrono::Utc::now(), b"one").await.unwrap();
    assert_eq!(Database::claim_lease(&mut b.client, "b", lease).await.unwrap(), None, "a running lease is not taken");
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let second = Database::claim_lease(&mut b.client, "b", lease).await.unwrap().expect("an expired lease");
    assert_eq!(second, first + 1);
    assert!(
        matches!(db.write_snapshot(first, 2, chrono::Utc::now(), b"stale").await, Err(DbError::Fenced(e)) if e == first)
    );
    assert!(!Database::renew_lease(&a.client, "a", first, lease).await.unwrap(), "the old leader cannot renew");
    db.write_snapshot(second, 2, chrono::Utc::now(), b"two").await.unwrap();
    db.write_snapshot(second, 3, chrono::Utc::now(), b"three").await.unwrap();
    let kept: Vec<u64> = db.snapshots().await.unwrap().iter().map(|s| s.seq).collect();
    assert_eq!(kept, [3, 2], "the last two are kept");

    // A frozen holder's sessions are found by name and ended, which frees
    // the leader lock.
    let frozen = Database::new(&Secret::new(pg.url()), "frozen-holder").unwrap();
    let frozen_session = frozen.dedicated().await.unwrap();
    assert!(Database::try_leader_lock(&frozen_session.client).await.unwrap());
    let standby = db.dedicated().await.unwrap();
    assert!(!Database::try_leader_lock(&standby.client).await.unwrap());
    assert!(Database::end_stale_leader_sessions(&standby.client, "frozen-holder").await.unwrap() >= 1);
    assert!(
        Database::try_leader_lock(&standby.client).await.unwrap(),
        "the lock is free once the holder's sessions ended"
    );
}

async fn migrate_at_once(db: &Database) -> Vec<i32> {
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.migrate().await.unwrap() })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
