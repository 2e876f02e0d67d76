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
//! The operational records (watermarks, the job history with redacted
//! errors) go into snapshots through [`Harvester::records`] and come back
//! through [`Harvester::restore`]. A restored watermark is a record only:
//! without the facts it covered, the first refresh of a project after a
//! restart is a full one.

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
use crate::store::snapshot::{self, JobProjectRecord, JobRecord, RecordedState};
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

impl HarvestError {
    /// The error as it may be kept in a snapshot: no issue ids (path
    /// segments with digits become `{id}`) and no hook message (a script's
    /// error may quote issue data).
    pub fn record(&self) -> String {
        let text = match self {
            HarvestError::Classify(e) => format!("classifying project {}: definition hook `{}` failed", e.project, e.source.hook),
            other => other.to_string(),
        };
        snapshot::bounded_error(&redact_ids(&text))
    }
}

/// Replaces every `/`-separated segment of a `/rest/api/N/...` path that
/// contains a digit with `{id}`, and drops query strings.
fn redact_ids(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.find("/rest/api/") {
            Some(at) => {
                let (head, path) = word.split_at(at);
                let path = path.split(['?', '#']).next().unwrap_or_default();
                let segments: Vec<&str> = path
                    .split('/')
                    .enumerate()
                    .map(|(i, seg)| if i > 3 && seg.contains(|c: char| c.is_ascii_digit()) { "{id}" } else { seg })
                    .collect();
                format!("{head}{}", segments.join("/"))
            }
            None => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a job could not be started.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("listing the Jira projects failed: {0}")]
    Projects(JiraError),
    #[error("no projects to refresh: configure harvest.projects (DORA_PROJECTS)")]
    NoProjects,
    #[error("project {0} is not in harvest.projects")]
    NotConfigured(String),
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
    /// The error as a snapshot may keep it ([`HarvestError::record`]).
    recorded_error: Mutex<Option<String>>,
}

/// A moment of a job's life.
type JobTime = DateTime<Utc>;

struct Job {
    id: String,
    full: bool,
    created: DateTime<Utc>,
    /// Started and finished.
    times: Mutex<(Option<JobTime>, Option<JobTime>)>,
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
    /// Watermarks restored from a snapshot (records only, see the module
    /// documentation).
    restored_watermarks: Mutex<BTreeMap<String, Millis>>,
    /// Counts changes worth a snapshot: a project's figures replaced, a job
    /// ended.
    changes: watch::Sender<u64>,
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
            restored_watermarks: Mutex::default(),
            changes: watch::channel(0).0,
            audit: Mutex::new(std::iter::once(DefinitionAudit::startup(&definitions)).collect()),
            activation: tokio::sync::Mutex::new(()),
        }
    }

    /// A receiver that changes whenever a project's figures are replaced or
    /// a job ends.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The operational records for a snapshot: each project's watermark and
    /// the job history, oldest first.
    pub fn records(&self) -> (BTreeMap<String, Millis>, Vec<JobRecord>) {
        let mut watermarks = self.restored_watermarks.lock().expect("watermarks lock").clone();
        for (key, m) in self.memory.lock().expect("memory lock").iter() {
            if let Some(w) = m.watermark {
                watermarks.insert(key.clone(), w);
            }
        }
        let jobs = self.jobs.lock().expect("jobs lock").clone();
        let records = jobs
            .iter()
            .map(|job| {
                let view = job.view();
                let state = |s: JobState| match s {
                    JobState::Queued => RecordedState::Queued,
                    JobState::Running => RecordedState::Running,
                    JobState::Succeeded => RecordedState::Succeeded,
                    JobState::Failed => RecordedState::Failed,
                };
                JobRecord {
                    id: view.id,
                    full: view.full,
                    created: view.created.timestamp_millis(),
                    started: view.started.map(|t| t.timestamp_millis()),
                    finished: view.finished.map(|t| t.timestamp_millis()),
                    projects: view
                        .projects
                        .into_iter()
                        .zip(&job.projects)
                        .map(|(p, slot)| JobProjectRecord {
                            key: p.key,
                            state: state(p.state),
                            issues_fetched: p.issues_fetched,
                            pages: p.pages,
                            retries: p.retries,
                            error: slot.recorded_error.lock().expect("job lock").clone(),
                        })
                        .collect(),
                }
            })
            .collect();
        (watermarks, records)
    }

    /// Takes back the records of a snapshot taken at `taken_at`, before any
    /// job runs. Jobs that were queued or running then were cut short by the
    /// stop: they are restored as failed.
    pub fn restore(&self, watermarks: BTreeMap<String, Millis>, jobs: Vec<JobRecord>, taken_at: DateTime<Utc>) {
        *self.restored_watermarks.lock().expect("watermarks lock") = watermarks;
        let time = |ms: Millis| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(taken_at);
        let mut restored: Vec<Arc<Job>> = Vec::with_capacity(jobs.len());
        let mut highest = 0;
        for r in jobs.into_iter().rev().take(JOB_HISTORY).rev() {
            highest = highest.max(r.id.split('-').nth(1).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0));
            let interrupted = "interrupted: the service stopped before this project's refresh ended";
            let projects = r
                .projects
                .into_iter()
                .map(|p| {
                    let (state, error) = match p.state {
                        RecordedState::Succeeded => (JobState::Succeeded, p.error),
                        RecordedState::Failed => (JobState::Failed, p.error),
                        RecordedState::Queued | RecordedState::Running => (JobState::Failed, Some(interrupted.to_owned())),
                    };
                    let counters = FetchCounters::default();
                    counters.issues.store(p.issues_fetched, Ordering::Relaxed);
                    counters.pages.store(p.pages, Ordering::Relaxed);
                    counters.retries.store(p.retries, Ordering::Relaxed);
                    ProjectSlot {
                        key: p.key,
                        counters: Arc::new(counters),
                        state: Mutex::new((state, error.clone())),
                        recorded_error: Mutex::new(error),
                    }
                })
                .collect();
            restored.push(Arc::new(Job {
                id: r.id,
                full: r.full,
                created: time(r.created),
                times: Mutex::new((r.started.map(time), Some(r.finished.map_or(taken_at, time)))),
                projects,
                changed: watch::channel(0).0,
            }));
        }
        let mut jobs = self.jobs.lock().expect("jobs lock");
        restored.append(&mut jobs);
        let excess = restored.len().saturating_sub(JOB_HISTORY);
        restored.drain(..excess);
        *jobs = restored;
        self.next_job.fetch_max(highest, Ordering::Relaxed);
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
        if let Some(k) = projects.iter().find(|k| !self.configured_projects.is_empty() && !self.configured_projects.contains(k)) {
            return Err(StartError::NotConfigured(k.clone()));
        }
        self.forget_unconfigured();
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
                .map(|k| ProjectSlot {
                    key: k.clone(),
                    counters: Arc::default(),
                    state: Mutex::new((JobState::Queued, None)),
                    recorded_error: Mutex::default(),
                })
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

    /// Drops the figures and facts of projects no longer configured (when a
    /// list is configured).
    pub fn forget_unconfigured(&self) {
        if self.configured_projects.is_empty() {
            return;
        }
        for key in self.store.retain_projects(&self.configured_projects) {
            info!(project = %key, "project no longer configured: its figures are dropped");
        }
        self.memory.lock().expect("memory lock").retain(|k, _| self.configured_projects.contains(k));
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
                    let started = std::time::Instant::now();
                    let result = this.refresh_project(&job.projects[i].key, job.full, &counters).await;
                    if let Err(HarvestError::Classify(e)) = &result {
                        crate::telemetry::classification_error(e.source.hook);
                    }
                    let held = *result.as_ref().unwrap_or(&0);
                    crate::telemetry::harvest(&job.projects[i].key, started.elapsed(), held, result.is_ok());
                    match result {
                        Ok(_) => job.set(i, JobState::Succeeded, None),
                        Err(e) => {
                            warn!(error = %e, "project refresh failed; previous figures kept");
                            *job.projects[i].recorded_error.lock().expect("job lock") = Some(e.record());
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
        self.changes.send_modify(|v| *v += 1);
        info!(state = ?job.view().state, "refresh finished");
    }

    pub(crate) fn project_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(self.project_locks.lock().expect("locks").entry(key.to_owned()).or_default())
    }

    /// Harvests one project and swaps its figures in; returns how many
    /// issues are held for it.
    async fn refresh_project(&self, key: &str, full: bool, counters: &FetchCounters) -> Result<usize, HarvestError> {
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
        self.changes.send_modify(|v| *v += 1);
        info!(issues = held, took_ms = (Utc::now() - started).num_milliseconds(), "project refreshed");
        Ok(held)
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

/// A project's facts, harvested in full through `client`, held nowhere:
/// for previews on a site the service does not serve (the demo site).
pub async fn fetch_project(client: &JiraClient, key: &str) -> Result<ProjectFacts, JiraError> {
    let statuses = client.statuses().await?;
    let versions = client.versions(key).await?;
    let mut issues = client.search_issues(key, None, &FetchCounters::default()).await?;
    issues.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(ProjectFacts { key: key.to_owned(), issues, versions, statuses })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::classify::HookError;

    #[test]
    fn recorded_errors_carry_no_issue_ids_and_no_hook_messages() {
        let check = |e: HarvestError, expected: &str| assert_eq!(e.record(), expected);
        let req = |path: &str| crate::jira::RequestName { method: "GET".into(), path: path.into() };
        check(
            HarvestError::Jira(JiraError::Status { req: req("/rest/api/3/issue/777001/changelog"), status: 503, attempts: crate::jira::Attempts(1) }),
            "GET /rest/api/3/issue/{id}/changelog: HTTP 503",
        );
        check(
            HarvestError::Jira(JiraError::Pagination { req: req("/rest/api/2/project/OPS/versions") }),
            "GET /rest/api/2/project/OPS/versions: pagination did not advance",
        );
        check(
            HarvestError::Classify(ClassifyError {
                project: "OPS".into(),
                source: HookError { hook: "is_incident", message: "thrown: label secret-customer-name".into() },
            }),
            "classifying project OPS: definition hook `is_incident` failed",
        );
    }

    #[test]
    fn urls_inside_errors_lose_their_ids_and_queries() {
        assert_eq!(
            redact_ids("connection failed: error sending request for url (http://127.0.0.1:8080/rest/api/3/issue/OPS-12?expand=x)"),
            "connection failed: error sending request for url (http://127.0.0.1:8080/rest/api/3/issue/{id}"
        );
    }
}
