//! This instance as a member of the cluster: the shared state its tasks
//! work on, and what the API asks of it (queue a refresh, read a job,
//! publish definitions), plus catching up with the newest snapshot and
//! definitions in the database.
//!
//! Must not depend on the tasks that drive it (`sync`, `leader`) nor on
//! `api`; the database is reached only through `db`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::db::{Database, DbError};
use super::lease::{Permit, Role};
use crate::config::{ClusterSettings, Config};
use crate::definitions::{DefinitionFile, DefinitionSet};
use crate::harvest::{Harvester, JobView, Origin, persistence};
use crate::store::Store;
use crate::store::snapshot::{self, Encoder, JobProjectRecord, JobRecord, RecordedState};

/// Why a request could not be served through the database.
#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("the shared database is unreachable; retry shortly ({0})")]
    Unavailable(#[from] DbError),
    #[error("project {0} is not in harvest.projects")]
    NotConfigured(String),
}

/// The snapshot this instance last loaded or wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedSnapshot {
    pub seq: u64,
    pub taken_at: DateTime<Utc>,
}

/// What the leader does and when (from the configuration).
#[derive(Debug, Clone)]
pub struct Duties {
    pub harvest_on_start: bool,
    pub interval: Option<Duration>,
    pub full_refresh_hour: Option<u32>,
    pub debounce: Duration,
    pub periodic: Option<Duration>,
}

/// This instance's membership of the cluster.
pub struct Cluster {
    pub(super) db: Database,
    pub(super) settings: ClusterSettings,
    /// This instance's name in the lease row.
    pub(super) holder: String,
    pub(super) store: Arc<Store>,
    pub(super) harvester: Arc<Harvester>,
    configured_projects: Vec<String>,
    pub(super) duties: Duties,
    pub(super) role: watch::Sender<Role>,
    pub(super) permit: Arc<Permit>,
    loaded: Mutex<Option<LoadedSnapshot>>,
    /// The leader's snapshot encoder: a write encodes only the projects
    /// whose data changed since the last one.
    pub(super) encoder: Mutex<Encoder>,
    /// Bumped when a job's record changed in the database.
    pub(super) jobs_changed: watch::Sender<u64>,
    /// Bumped when a refresh was queued.
    pub(super) refresh_queued: watch::Sender<u64>,
    /// True once a snapshot is loaded or the first harvest finished.
    pub(super) ready: watch::Sender<bool>,
    /// Asks the leader's writer for a snapshot now.
    pub(super) write_now: Notify,
    pub(super) tasks: Mutex<Vec<(&'static str, JoinHandle<()>)>>,
    pub(super) stop_duties: watch::Sender<bool>,
    pub(super) stop_lease: watch::Sender<bool>,
}

/// A definitions set as stored: `(file name, source)` pairs.
pub(super) fn file_pairs(set: &DefinitionSet) -> Vec<(String, String)> {
    set.files().iter().map(|f| (f.name.clone(), f.source.clone())).collect()
}

/// Stored `(file name, source)` pairs as definitions files.
pub(super) fn files_of(pairs: Vec<(String, String)>) -> Vec<DefinitionFile> {
    pairs.into_iter().map(|(name, source)| DefinitionFile { name, source }).collect()
}

pub(super) fn record_json(record: &JobRecord) -> serde_json::Value {
    serde_json::to_value(record).expect("a job record serialises")
}

fn origin(text: &str) -> Origin {
    match text {
        "api" => Origin::Api,
        "file" => Origin::File,
        _ => Origin::Startup,
    }
}

impl Cluster {
    /// A member not yet following anything; its harvester harvests only
    /// within the leader's lease from now on.
    pub(super) fn new(db: Database, config: &Config, store: Arc<Store>, harvester: Arc<Harvester>) -> Arc<Cluster> {
        let settings = config.cluster.clone().expect("started with cluster settings");
        let cluster = Arc::new(Cluster {
            holder: db.holder().to_owned(),
            db,
            settings,
            store,
            harvester: Arc::clone(&harvester),
            configured_projects: config.harvest.projects.clone(),
            duties: Duties {
                harvest_on_start: config.harvest.on_start,
                interval: config.harvest.interval,
                full_refresh_hour: config.harvest.full_refresh_hour,
                debounce: config.snapshot.debounce,
                periodic: config.snapshot.interval,
            },
            role: watch::channel(Role::Follower).0,
            permit: Arc::default(),
            loaded: Mutex::default(),
            encoder: Mutex::default(),
            jobs_changed: watch::channel(0).0,
            refresh_queued: watch::channel(0).0,
            ready: watch::channel(false).0,
            write_now: Notify::new(),
            tasks: Mutex::default(),
            stop_duties: watch::channel(false).0,
            stop_lease: watch::channel(false).0,
        });
        let permit = Arc::clone(&cluster.permit);
        harvester.set_permit(Arc::new(move || permit.valid()));
        cluster
    }

    /// Stops following, writes the leader's last snapshot, then gives the
    /// lease up.
    pub async fn stop(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        self.stop_duties.send_replace(true);
        for (name, task) in tasks {
            if name == "lease" {
                self.stop_lease.send_replace(true);
            }
            if tokio::time::timeout(Duration::from_secs(30), task).await.is_err() {
                warn!(task = name, "cluster task did not stop within 30 s");
            }
        }
    }

    /// This instance's role.
    pub fn role(&self) -> Role {
        *self.role.borrow()
    }

    /// Turns true once a snapshot is loaded or the first harvest finished.
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// The snapshot last loaded or written.
    pub fn loaded(&self) -> Option<LoadedSnapshot> {
        *self.loaded.lock().expect("loaded lock")
    }

    pub(super) fn set_loaded(&self, seq: u64, taken_at: DateTime<Utc>, bytes: usize) {
        *self.loaded.lock().expect("loaded lock") = Some(LoadedSnapshot { seq, taken_at });
        crate::telemetry::snapshot(taken_at.timestamp_millis(), bytes);
        crate::telemetry::snapshot_seq(seq);
        crate::telemetry::snapshot_age((Utc::now() - taken_at).to_std().unwrap_or_default());
    }

    /// Queues a refresh for the leader; returns the job's id at once.
    pub async fn refresh(&self, projects: Vec<String>, full: bool) -> Result<String, ClusterError> {
        let mut projects = projects;
        if let Some(k) =
            projects.iter().find(|k| !self.configured_projects.is_empty() && !self.configured_projects.contains(k))
        {
            return Err(ClusterError::NotConfigured(k.clone()));
        }
        projects.sort();
        projects.dedup();
        let id = format!("job-{}-{:08x}", Utc::now().timestamp_millis(), fastrand::u32(..));
        // The projects a refresh without names covers are known here only
        // when configured; otherwise the leader lists them.
        let shown = if projects.is_empty() { self.configured_projects.clone() } else { projects.clone() };
        let record = JobRecord {
            id: id.clone(),
            full,
            created: Utc::now().timestamp_millis(),
            started: None,
            finished: None,
            projects: shown
                .into_iter()
                .map(|key| JobProjectRecord {
                    key,
                    state: RecordedState::Queued,
                    issues_fetched: 0,
                    pages: 0,
                    retries: 0,
                    error: None,
                })
                .collect(),
        };
        self.db.queue_refresh(&id, &projects, full, &record_json(&record)).await?;
        info!(job = %id, "refresh queued for the leader");
        Ok(id)
    }

    /// A job's progress as recorded in the database.
    pub async fn job(&self, id: &str) -> Result<Option<JobView>, ClusterError> {
        let record = self.db.job(id).await?;
        Ok(record.and_then(|r| serde_json::from_value::<JobRecord>(r).ok()).map(JobView::of_record))
    }

    /// Changes whenever some job's record changed.
    pub fn job_changes(&self) -> watch::Receiver<u64> {
        self.jobs_changed.subscribe()
    }

    /// Records a validated set as the newest definitions version (every
    /// instance activates it) and puts it in force here.
    pub async fn publish_definitions(&self, set: DefinitionSet) -> Result<Arc<DefinitionSet>, ClusterError> {
        let number = self.db.add_definitions(set.content_hash(), &file_pairs(&set), Origin::Api.as_str()).await?;
        self.put_in_force(set, number, Origin::Api).await;
        Ok(self.harvester.definitions())
    }

    /// Puts definitions version `number` in force unless a version as new
    /// is already, and recomputes from the facts in memory; the leader then
    /// writes a snapshot so the others get the recomputed figures.
    async fn put_in_force(&self, set: DefinitionSet, number: u64, origin: Origin) {
        let in_force = self.harvester.in_force();
        let guard = in_force.lock().await;
        let Some(set) = in_force.activate_numbered(&guard, set, number, origin) else { return };
        drop(guard);
        let projects = self.harvester.recompute_all().await;
        info!(version = set.version(), projects, "figures recomputed from the facts here");
        if self.role().epoch().is_some() {
            self.write_now.notify_one();
        }
    }

    /// Activates the newest definitions version when it is newer than the
    /// one in force.
    pub(super) async fn catch_up_definitions(&self) -> Result<(), DbError> {
        let Some(newest) = self.db.newest_definitions().await? else { return Ok(()) };
        if newest.number <= self.harvester.definitions().number() {
            return Ok(());
        }
        let files = files_of(newest.files);
        match tokio::task::spawn_blocking(move || DefinitionSet::compile(files)).await {
            Ok(Ok(set)) => self.put_in_force(set, newest.number, origin(&newest.origin)).await,
            _ => {
                warn!(number = newest.number, "definitions in the database do not compile here; the ones in force stay")
            }
        }
        Ok(())
    }

    /// Loads the newest valid snapshot when it is newer than the one in
    /// memory. The leader's memory is the source: it loads only when
    /// `even_when_leading` (on taking the lead). The first snapshot loaded
    /// also gives the harvester its operational records back.
    pub(super) async fn catch_up_snapshot(&self, even_when_leading: bool) -> Result<bool, DbError> {
        let loaded = self.loaded().map(|l| l.seq);
        let Some(newest) = self.db.newest_snapshot_seq().await? else { return Ok(false) };
        if loaded.is_some_and(|l| l >= newest) || (!even_when_leading && self.role().epoch().is_some()) {
            return Ok(false);
        }
        let started = Instant::now();
        for stored in self.db.snapshots().await? {
            let (seq, epoch, bytes) = (stored.seq, stored.epoch, stored.bytes);
            let size = bytes.len();
            let snapshot = match tokio::task::spawn_blocking(move || snapshot::decode(&bytes)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    warn!(seq, reason = %e, "snapshot in the database rejected; trying the previous one");
                    continue;
                }
                Err(_) => continue,
            };
            let harvester = loaded.is_none().then_some(&*self.harvester);
            let applied = persistence::apply(&self.store, harvester, snapshot);
            self.set_loaded(seq, applied.taken_at, size);
            self.ready.send_replace(true);
            info!(
                seq,
                epoch,
                projects = applied.projects,
                bytes = size,
                age_seconds = (Utc::now() - applied.taken_at).num_seconds().max(0),
                took_ms = started.elapsed().as_millis() as u64,
                "snapshot loaded"
            );
            return Ok(true);
        }
        Ok(false)
    }
}
