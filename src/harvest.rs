//! Refresh jobs and their schedule: Jira → definitions → domain → store.
//!
//! A job harvests one or more projects. Per project it fetches statuses,
//! versions, the ids of all current issues and the issues updated since the
//! project's watermark (everything on a full refresh), merges them into the
//! minimised facts it keeps in memory, classifies and aggregates them on a
//! blocking thread, and swaps the project's figures in the store in one
//! step. A project that fails keeps its previous figures untouched.
//!
//! The facts kept here never leave memory: snapshots hold aggregates only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use thiserror::Error;
use tokio::sync::watch;
use tracing::{info, warn, Instrument};

use crate::definitions::DefinitionSet;
use crate::domain::aggregate::{build_project, ClassifyError};
use crate::domain::facts::{IssueFacts, Millis, ProjectFacts, StatusFacts, VersionFacts};
use crate::recompute::DefinitionAudit;
use crate::jira::{FetchCounters, JiraClient, JiraError};
use crate::store::{ProjectData, Store};

/// How many finished jobs are remembered.
const JOB_HISTORY: usize = 100;

/// Why a project's harvest failed.
#[derive(Debug, Error)]
pub enum HarvestError {
    #[error(transparent)]
    Jira(#[from] JiraError),
    #[error(transparent)]
    Classify(#[from] ClassifyError),
    #[error("classification stopped unexpectedly")]
    Aborted,
}

/// Why a job could not be started.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("listing the Jira projects failed: {0}")]
    Projects(JiraError),
    #[error("no projects to refresh: configure harvest.projects (DORA_PROJECTS)")]
    NoProjects,
}

/// State of a job or of one project in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// A project's progress in a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectProgress {
    pub key: String,
    pub state: JobState,
    pub issues_fetched: u64,
    pub pages: u64,
    pub retries: u64,
    pub error: Option<String>,
}

/// A job as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    pub id: String,
    pub state: JobState,
    pub full: bool,
    pub projects: Vec<ProjectProgress>,
    pub created: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
}

struct ProjectSlot {
    key: String,
    counters: Arc<FetchCounters>,
    state: Mutex<(JobState, Option<String>)>,
}

struct Job {
    id: String,
    full: bool,
    created: DateTime<Utc>,
    times: Mutex<(Option<DateTime<Utc>>, Option<DateTime<Utc>>)>,
    projects: Vec<ProjectSlot>,
    changed: watch::Sender<u64>,
}

impl Job {
    fn view(&self) -> JobView {
        let projects: Vec<ProjectProgress> = self
            .projects
            .iter()
            .map(|p| {
                let (state, error) = p.state.lock().expect("job lock").clone();
                ProjectProgress {
                    key: p.key.clone(),
                    state,
                    issues_fetched: p.counters.issues.load(Ordering::Relaxed),
                    pages: p.counters.pages.load(Ordering::Relaxed),
                    retries: p.counters.retries.load(Ordering::Relaxed),
                    error,
                }
            })
            .collect();
        let state = if projects.iter().any(|p| p.state == JobState::Running) {
            JobState::Running
        } else if projects.iter().all(|p| p.state == JobState::Queued) {
            JobState::Queued
        } else if projects.iter().any(|p| matches!(p.state, JobState::Queued | JobState::Running)) {
            JobState::Running
        } else if projects.iter().any(|p| p.state == JobState::Failed) {
            JobState::Failed
        } else {
            JobState::Succeeded
        };
        let (started, finished) = *self.times.lock().expect("job lock");
        JobView { id: self.id.clone(), state, full: self.full, projects, created: self.created, started, finished }
    }

    fn set(&self, i: usize, state: JobState, error: Option<String>) {
        *self.projects[i].state.lock().expect("job lock") = (state, error);
        self.changed.send_modify(|v| *v += 1);
    }
}

/// What the harvester keeps per project between refreshes (memory only).
#[derive(Default)]
struct ProjectMemory {
    issues: BTreeMap<String, IssueFacts>,
    watermark: Option<Millis>,
    /// Kept so figures can be recomputed without Jira.
    versions: Vec<VersionFacts>,
    statuses: Vec<StatusFacts>,
}

/// Runs refresh jobs.
pub struct Harvester {
    client: JiraClient,
    store: Arc<Store>,
    definitions: RwLock<Arc<DefinitionSet>>,
    tz: Tz,
    configured_projects: Vec<String>,
    memory: Mutex<HashMap<String, ProjectMemory>>,
    /// One harvest per project at a time.
    project_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    jobs: Mutex<Vec<Arc<Job>>>,
    next_job: std::sync::atomic::AtomicU64,
    /// Definitions activations, oldest first (bounded; see `recompute`).
    pub(crate) audit: Mutex<std::collections::VecDeque<DefinitionAudit>>,
    /// One definitions activation at a time (updates and file edits).
    pub(crate) activation: tokio::sync::Mutex<()>,
}

impl Harvester {
    pub fn new(client: JiraClient, store: Arc<Store>, definitions: Arc<DefinitionSet>, tz: Tz, projects: Vec<String>) -> Self {
        Self {
            client,
            store,
            definitions: RwLock::new(Arc::clone(&definitions)),
            tz,
            configured_projects: projects,
            memory: Mutex::default(),
            project_locks: Mutex::default(),
            jobs: Mutex::default(),
            next_job: Default::default(),
            audit: Mutex::new(std::iter::once(DefinitionAudit::startup(&definitions)).collect()),
            activation: tokio::sync::Mutex::new(()),
        }
    }

    /// The definitions in force.
    pub fn definitions(&self) -> Arc<DefinitionSet> {
        Arc::clone(&self.definitions.read().expect("definitions lock"))
    }

    /// Puts `definitions` in force. Requests holding the previous set finish
    /// on it; figures are recomputed separately (`recompute`).
    pub(crate) fn set_definitions(&self, definitions: Arc<DefinitionSet>) {
        *self.definitions.write().expect("definitions lock") = definitions;
    }

    /// The reporting time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The projects whose facts are in memory, sorted.
    pub fn remembered_projects(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.memory.lock().expect("memory lock").keys().cloned().collect();
        keys.sort();
        keys
    }

    /// A project's facts as last harvested, from memory (no Jira call).
    pub fn project_facts(&self, key: &str) -> Option<ProjectFacts> {
        let memory = self.memory.lock().expect("memory lock");
        let m = memory.get(key)?;
        Some(ProjectFacts {
            key: key.to_owned(),
            issues: m.issues.values().cloned().collect(),
            versions: m.versions.clone(),
            statuses: m.statuses.clone(),
        })
    }

    /// The projects a refresh without names covers.
    async fn default_projects(&self) -> Result<Vec<String>, StartError> {
        if !self.configured_projects.is_empty() {
            return Ok(self.configured_projects.clone());
        }
        let projects = self.client.projects().await.map_err(StartError::Projects)?;
        if projects.is_empty() {
            return Err(StartError::NoProjects);
        }
        Ok(projects)
    }

    /// Starts a job and returns its id at once. A job already running for
    /// exactly these projects is joined instead.
    pub async fn start(self: &Arc<Self>, projects: Vec<String>, full: bool) -> Result<String, StartError> {
        let mut projects = if projects.is_empty() { self.default_projects().await? } else { projects };
        projects.sort();
        projects.dedup();
        let mut jobs = self.jobs.lock().expect("jobs lock");
        if let Some(running) = jobs.iter().find(|j| {
            let v = j.view();
            j.full == full
                && matches!(v.state, JobState::Queued | JobState::Running)
                && v.projects.iter().map(|p| &p.key).eq(projects.iter())
        }) {
            return Ok(running.id.clone());
        }
        let n = self.next_job.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("job-{n}-{:08x}", fastrand::u32(..));
        let job = Arc::new(Job {
            id: id.clone(),
            full,
            created: Utc::now(),
            times: Mutex::default(),
            projects: projects
                .iter()
                .map(|k| ProjectSlot { key: k.clone(), counters: Arc::default(), state: Mutex::new((JobState::Queued, None)) })
                .collect(),
            changed: watch::channel(0).0,
        });
        jobs.push(Arc::clone(&job));
        let excess = jobs.len().saturating_sub(JOB_HISTORY);
        jobs.drain(..excess);
        drop(jobs);
        let this = Arc::clone(self);
        tokio::spawn(async move { this.run(job).await }.instrument(tracing::info_span!("refresh", job = %id)));
        Ok(id)
    }

    /// A job's current view.
    pub fn job(&self, id: &str) -> Option<JobView> {
        self.find(id).map(|j| j.view())
    }

    /// A job's view and a receiver that changes whenever it progresses.
    pub fn watch(&self, id: &str) -> Option<(JobView, watch::Receiver<u64>)> {
        self.find(id).map(|j| (j.view(), j.changed.subscribe()))
    }

    fn find(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().expect("jobs lock").iter().find(|j| j.id == id).cloned()
    }

    /// Runs a job to its end, projects concurrently (the client caps the
    /// requests in flight).
    async fn run(self: Arc<Self>, job: Arc<Job>) {
        job.times.lock().expect("job lock").0 = Some(Utc::now());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..job.projects.len() {
            let (this, job) = (Arc::clone(&self), Arc::clone(&job));
            let key = job.projects[i].key.clone();
            tasks.spawn(
                async move {
                    let lock = this.project_lock(&job.projects[i].key);
                    let _guard = lock.lock().await;
                    job.set(i, JobState::Running, None);
                    let counters = Arc::clone(&job.projects[i].counters);
                    match this.refresh_project(&job.projects[i].key, job.full, &counters).await {
                        Ok(()) => job.set(i, JobState::Succeeded, None),
                        Err(e) => {
                            warn!(error = %e, "project refresh failed; previous figures kept");
                            job.set(i, JobState::Failed, Some(e.to_string()));
                        }
                    }
                }
                .instrument(tracing::info_span!("harvest", project = %key)),
            );
        }
        while tasks.join_next().await.is_some() {}
        job.times.lock().expect("job lock").1 = Some(Utc::now());
        job.changed.send_modify(|v| *v += 1);
        info!(state = ?job.view().state, "refresh finished");
    }

    pub(crate) fn project_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(self.project_locks.lock().expect("locks").entry(key.to_owned()).or_default())
    }

    /// Harvests one project and swaps its figures in.
    async fn refresh_project(&self, key: &str, full: bool, counters: &FetchCounters) -> Result<(), HarvestError> {
        let started = Utc::now();
        let (issues, watermark) = {
            let memory = self.memory.lock().expect("memory lock");
            match memory.get(key) {
                Some(m) if !full => (Some(m.issues.clone()), m.watermark),
                _ => (None, None),
            }
        };
        let statuses = self.client.statuses().await?;
        let versions = self.client.versions(key).await?;
        let mut issues = issues.unwrap_or_default();
        if watermark.is_some() {
            // Reconcile deletions and moves: keep only issues still in the
            // project.
            let current: HashSet<String> = self.client.issue_ids(key, counters).await?.into_iter().collect();
            issues.retain(|id, _| current.contains(id));
        }
        let fetched = self.client.search_issues(key, watermark, counters).await?;
        let mut new_watermark = watermark;
        for issue in fetched {
            new_watermark = Some(new_watermark.map_or(issue.updated, |w: Millis| w.max(issue.updated)));
            issues.insert(issue.id.clone(), issue);
        }
        let facts = Arc::new(ProjectFacts {
            key: key.to_owned(),
            issues: issues.values().cloned().collect(),
            versions,
            statuses,
        });
        let definitions = self.definitions();
        let (tz, defs, all) = (self.tz, Arc::clone(&definitions), Arc::clone(&facts));
        let aggregates = tokio::task::spawn_blocking(move || build_project(&all, &*defs, tz))
            .await
            .map_err(|_| HarvestError::Aborted)??;
        self.store.put(
            key,
            ProjectData { aggregates, last_harvest: Some(Utc::now()), definitions_version: definitions.version().to_owned() },
        );
        let held = issues.len();
        self.memory
            .lock()
            .expect("memory lock")
            .insert(
                key.to_owned(),
                ProjectMemory {
                    issues,
                    watermark: new_watermark,
                    versions: facts.versions.clone(),
                    statuses: facts.statuses.clone(),
                },
            );
        info!(issues = held, took_ms = (Utc::now() - started).num_milliseconds(), "project refreshed");
        Ok(())
    }

    /// Runs the schedule until `shutdown` fires: an incremental refresh every
    /// `interval`, a full one each night at `full_hour` (reporting zone).
    pub async fn schedule(self: Arc<Self>, interval: Option<Duration>, full_hour: Option<u32>, mut shutdown: watch::Receiver<bool>) {
        let mut next_full = full_hour.map(|h| next_hour(Utc::now(), h, self.tz));
        loop {
            let wait_incremental = interval.unwrap_or(Duration::from_secs(3600 * 24 * 365));
            let wait_full = next_full
                .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::MAX);
            let (wait, full) = if wait_full <= wait_incremental { (wait_full, true) } else { (wait_incremental, false) };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            if full {
                next_full = full_hour.map(|h| next_hour(Utc::now() + chrono::Duration::minutes(1), h, self.tz));
            } else if interval.is_none() {
                continue;
            }
            if let Err(e) = self.start(Vec::new(), full).await {
                warn!(error = %e, full, "scheduled refresh not started");
            }
        }
    }
}

/// The next time after `now` when the clock in `tz` shows `hour`:00.
fn next_hour(now: DateTime<Utc>, hour: u32, tz: Tz) -> DateTime<Utc> {
    let local = now.with_timezone(&tz);
    let mut day = local.date_naive();
    if local.hour() >= hour {
        day = day.succ_opt().unwrap_or(day);
    }
    for d in 0..3 {
        let date = day + chrono::Duration::days(d);
        if let Some(t) = date.and_hms_opt(hour, 0, 0).and_then(|n| n.and_local_timezone(tz).earliest()) {
            return t.with_timezone(&Utc);
        }
    }
    now + chrono::Duration::days(1)
}
