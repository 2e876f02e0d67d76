//! The job registry: refresh jobs, their progress as clients see it, the
//! bounded history, and its mapping to and from the records a snapshot
//! keeps (errors there are already redacted).
//!
//! Must not depend on Jira calls, the facts memory or the definitions: a
//! job here is bookkeeping; `refresh` runs it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::domain::facts::Millis;
use crate::jira::FetchCounters;
use crate::store::snapshot::{JobProjectRecord, JobRecord, RecordedState};

/// How many finished jobs are remembered.
const JOB_HISTORY: usize = 100;

/// State of a job or of one project in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    /// A job's state from its projects' states.
    pub fn of_job(projects: &[JobState]) -> JobState {
        let any = |s: JobState| projects.contains(&s);
        if any(JobState::Running) {
            JobState::Running
        } else if projects.iter().all(|p| *p == JobState::Queued) {
            JobState::Queued
        } else if any(JobState::Queued) {
            JobState::Running
        } else if any(JobState::Failed) {
            JobState::Failed
        } else {
            JobState::Succeeded
        }
    }

    fn recorded(self) -> RecordedState {
        match self {
            JobState::Queued => RecordedState::Queued,
            JobState::Running => RecordedState::Running,
            JobState::Succeeded => RecordedState::Succeeded,
            JobState::Failed => RecordedState::Failed,
        }
    }

    fn of_recorded(state: RecordedState) -> JobState {
        match state {
            RecordedState::Queued => JobState::Queued,
            RecordedState::Running => JobState::Running,
            RecordedState::Succeeded => JobState::Succeeded,
            RecordedState::Failed => JobState::Failed,
        }
    }
}

/// A project's progress in a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectProgress {
    pub key: String,
    pub state: JobState,
    pub issues_fetched: u64,
    pub pages: u64,
    pub retries: u64,
    /// Requests sent to Jira for this project (every attempt); `None` for
    /// a job known only from its record (restored from a snapshot, or run
    /// by another replica), which does not keep it.
    pub jira_requests: Option<u64>,
    /// Whether this refresh reconciled the project's issues with Jira's
    /// (deletions and moves caught): always on a full refresh, on an
    /// incremental one when due. `None` as for `jira_requests`.
    pub reconciled: Option<bool>,
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

impl JobView {
    /// A job as recorded (by another instance, through a shared database):
    /// its errors are the redacted ones. A job without projects that ended
    /// could not start: failed.
    pub fn of_record(record: JobRecord) -> JobView {
        let time = |ms: Millis| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        let projects: Vec<ProjectProgress> = record
            .projects
            .into_iter()
            .map(|p| ProjectProgress {
                key: p.key,
                state: JobState::of_recorded(p.state),
                issues_fetched: p.issues_fetched,
                pages: p.pages,
                retries: p.retries,
                jira_requests: None,
                reconciled: None,
                error: p.error,
            })
            .collect();
        let state = match JobState::of_job(&projects.iter().map(|p| p.state).collect::<Vec<_>>()) {
            JobState::Queued if projects.is_empty() && record.finished.is_some() => JobState::Failed,
            state => state,
        };
        JobView {
            id: record.id,
            state,
            full: record.full,
            projects,
            created: time(record.created),
            started: record.started.map(time),
            finished: record.finished.map(time),
        }
    }
}

/// One project of a job.
pub struct ProjectSlot {
    pub key: String,
    pub counters: Arc<FetchCounters>,
    /// Whether the refresh reconciled the project's issues (see
    /// [`ProjectProgress::reconciled`]).
    pub reconciled: AtomicBool,
    /// Restored from a record: the request count and reconciliation are
    /// unknown.
    restored: bool,
    state: Mutex<(JobState, Option<String>)>,
    /// The error as a snapshot may keep it (`HarvestError::record`).
    pub recorded_error: Mutex<Option<String>>,
}

/// A moment of a job's life.
type JobTime = DateTime<Utc>;

/// One refresh job.
pub struct Job {
    pub id: String,
    pub full: bool,
    created: DateTime<Utc>,
    /// Started and finished.
    pub times: Mutex<(Option<JobTime>, Option<JobTime>)>,
    pub projects: Vec<ProjectSlot>,
    /// Changes whenever the job progresses.
    pub changed: watch::Sender<u64>,
}

impl Job {
    pub fn view(&self) -> JobView {
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
                    jira_requests: (!p.restored).then(|| p.counters.requests.load(Ordering::Relaxed)),
                    reconciled: (!p.restored).then(|| p.reconciled.load(Ordering::Relaxed)),
                    error,
                }
            })
            .collect();
        let state = JobState::of_job(&projects.iter().map(|p| p.state).collect::<Vec<_>>());
        let (started, finished) = *self.times.lock().expect("job lock");
        JobView { id: self.id.clone(), state, full: self.full, projects, created: self.created, started, finished }
    }

    /// Sets project `i`'s state and tells the watchers.
    pub fn set(&self, i: usize, state: JobState, error: Option<String>) {
        *self.projects[i].state.lock().expect("job lock") = (state, error);
        self.changed.send_modify(|v| *v += 1);
    }
}

/// The jobs, oldest first, at most [`JOB_HISTORY`].
#[derive(Default)]
pub struct Jobs {
    list: Mutex<Vec<Arc<Job>>>,
    next: AtomicU64,
}

impl Jobs {
    /// A new job for `projects` (sorted, without duplicates), or the id of
    /// one already queued or running for exactly these projects.
    pub fn open(&self, projects: &[String], full: bool) -> Result<Arc<Job>, String> {
        let mut jobs = self.list.lock().expect("jobs lock");
        if let Some(running) = jobs.iter().find(|j| {
            let v = j.view();
            j.full == full
                && matches!(v.state, JobState::Queued | JobState::Running)
                && v.projects.iter().map(|p| &p.key).eq(projects.iter())
        }) {
            return Err(running.id.clone());
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Job {
            id: format!("job-{n}-{:08x}", fastrand::u32(..)),
            full,
            created: Utc::now(),
            times: Mutex::default(),
            projects: projects
                .iter()
                .map(|k| ProjectSlot {
                    key: k.clone(),
                    counters: Arc::default(),
                    reconciled: AtomicBool::new(false),
                    restored: false,
                    state: Mutex::new((JobState::Queued, None)),
                    recorded_error: Mutex::default(),
                })
                .collect(),
            changed: watch::channel(0).0,
        });
        jobs.push(Arc::clone(&job));
        let excess = jobs.len().saturating_sub(JOB_HISTORY);
        jobs.drain(..excess);
        Ok(job)
    }

    pub fn find(&self, id: &str) -> Option<Arc<Job>> {
        self.list.lock().expect("jobs lock").iter().find(|j| j.id == id).cloned()
    }

    /// The job history as a snapshot keeps it, oldest first.
    pub fn records(&self) -> Vec<JobRecord> {
        let jobs = self.list.lock().expect("jobs lock").clone();
        jobs.iter()
            .map(|job| {
                let view = job.view();
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
                            state: p.state.recorded(),
                            issues_fetched: p.issues_fetched,
                            pages: p.pages,
                            retries: p.retries,
                            error: slot.recorded_error.lock().expect("job lock").clone(),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Takes back the job history of a snapshot taken at `taken_at`, before
    /// any job runs. Jobs that were queued or running then were cut short by
    /// the stop: they are restored as failed.
    pub fn restore(&self, jobs: Vec<JobRecord>, taken_at: DateTime<Utc>) {
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
                        RecordedState::Queued | RecordedState::Running => {
                            (JobState::Failed, Some(interrupted.to_owned()))
                        }
                    };
                    let counters = FetchCounters::default();
                    counters.issues.store(p.issues_fetched, Ordering::Relaxed);
                    counters.pages.store(p.pages, Ordering::Relaxed);
                    counters.retries.store(p.retries, Ordering::Relaxed);
                    ProjectSlot {
                        key: p.key,
                        counters: Arc::new(counters),
                        reconciled: AtomicBool::new(false),
                        restored: true,
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
        let mut jobs = self.list.lock().expect("jobs lock");
        restored.append(&mut jobs);
        let excess = restored.len().saturating_sub(JOB_HISTORY);
        restored.drain(..excess);
        *jobs = restored;
        self.next.fetch_max(highest, Ordering::Relaxed);
    }
}
