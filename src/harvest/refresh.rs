//! The harvester and its refresh: Jira → definitions → domain → store.
//!
//! A job harvests one or more projects. Per project it fetches versions
//! and the issues updated since the project's watermark
//! (everything on a full refresh), merges them into the facts in memory,
//! classifies and aggregates them on a blocking thread with the
//! definitions in force, and swaps the project's figures in the store in
//! one step. A project that fails keeps its previous figures and facts
//! untouched.
//!
//! Deleted issues and issues moved to another project do not show in a
//! search by `updated`, nor does a status moved to another category: an
//! incremental refresh finds them by listing the ids of all current issues
//! and asking the site's statuses again (the reconciliation), which costs a
//! search page per few thousand issues. It runs when the last one (or the
//! last full refresh) is older than the reconciliation interval (hourly by
//! default, `harvest.reconcile_interval_minutes`), so between two, such a
//! change may be missed for up to that long. The statuses, when asked, are
//! asked once per job. Every request a project's refresh sends to Jira is
//! counted into its job.
//!
//! The operational records (watermarks, the job history with redacted
//! errors) go into snapshots through [`Harvester::records`] and come back
//! through [`Harvester::restore`].
//!
//! Must not depend on `recompute`, `watch`, `schedule` or `persistence`,
//! which build on the harvester; nor on `api`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use thiserror::Error;
use tokio::sync::{OnceCell, watch};
use tracing::{Instrument, info, warn};

use super::in_force::{DefinitionAudit, DefinitionsInForce};
use super::jobs::{Job, JobState, JobView, Jobs};
use super::memory::{self, FactsMemory};
use crate::config::DEFAULT_RECONCILE_INTERVAL;
use crate::definitions::DefinitionSet;
use crate::domain::aggregate::{ClassifyError, MAX_TEAMS_PER_PROJECT, ProjectBuild, build_project_teams};
use crate::domain::facts::{IssueFacts, IssueId, Millis, ProjectFacts, StatusFacts};
use crate::jira::{FetchCounters, JiraClient, JiraError};
use crate::store::snapshot::{self, JobRecord};
use crate::store::{ProjectData, Store};

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
            HarvestError::Classify(e) => {
                format!("classifying project {}: definition hook `{}` failed", e.project, e.source.hook)
            }
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
    #[error("this instance is not the harvesting leader")]
    NotLeader,
}

/// Whether this instance may call Jira to harvest now: always for a single
/// instance; in a cluster, only the leader within its lease.
pub type HarvestPermit = Arc<dyn Fn() -> bool + Send + Sync>;

/// How a project's refresh fetched its issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    /// Every issue.
    Full,
    /// The issues updated since the watermark, and the ids of all to
    /// reconcile deletions and moves.
    Reconciling,
    /// The issues updated since the watermark only.
    Incremental,
}

impl Fetch {
    fn label(self) -> &'static str {
        match self {
            Fetch::Full => "full",
            Fetch::Reconciling => "reconciling",
            Fetch::Incremental => "incremental",
        }
    }
}

/// The error of a project whose harvest stopped because the permit ended.
const PERMIT_ENDED: &str = "stopped: this instance lost the harvesting lease";

/// Runs refresh jobs, and holds what they leave in memory.
pub struct Harvester {
    client: JiraClient,
    store: Arc<Store>,
    definitions: DefinitionsInForce,
    tz: Tz,
    configured_projects: Vec<String>,
    memory: FactsMemory,
    jobs: Jobs,
    /// Counts changes worth a snapshot: a project's figures replaced, a job
    /// ended.
    changes: watch::Sender<u64>,
    /// `None`: always permitted (a single instance).
    permit: RwLock<Option<HarvestPermit>>,
    /// Projects whose surplus teams were logged (once, until they fit again).
    teams_dropped_logged: std::sync::Mutex<HashSet<String>>,
    /// The least time between two reconciliations of a project.
    reconcile_interval: Mutex<Duration>,
}

impl Harvester {
    pub fn new(
        client: JiraClient,
        store: Arc<Store>,
        definitions: Arc<DefinitionSet>,
        tz: Tz,
        projects: Vec<String>,
    ) -> Self {
        Self {
            client,
            store,
            definitions: DefinitionsInForce::new(definitions),
            tz,
            configured_projects: projects,
            memory: FactsMemory::default(),
            jobs: Jobs::default(),
            changes: watch::channel(0).0,
            permit: RwLock::default(),
            teams_dropped_logged: Default::default(),
            reconcile_interval: Mutex::new(DEFAULT_RECONCILE_INTERVAL),
        }
    }

    /// How old a project's last reconciliation (or full refresh) must be
    /// for an incremental refresh to reconcile again; zero: every time.
    pub fn set_reconcile_interval(&self, interval: Duration) {
        *self.reconcile_interval.lock().expect("interval lock") = interval;
    }

    /// Puts a project's freshly built figures in the store. Teams beyond
    /// the per-project limit were dropped: counted in a metric, and logged
    /// once with the project key (never the names).
    pub(super) fn store_build(
        &self,
        key: &str,
        build: ProjectBuild,
        last_harvest: Option<DateTime<Utc>>,
        definitions_version: &str,
    ) {
        crate::telemetry::teams(key, build.teams.len(), build.dropped_teams);
        let mut logged = self.teams_dropped_logged.lock().unwrap_or_else(|p| p.into_inner());
        if build.dropped_teams == 0 {
            logged.remove(key);
        } else if logged.insert(key.to_owned()) {
            warn!(
                project = %key,
                dropped = build.dropped_teams,
                limit = MAX_TEAMS_PER_PROJECT,
                "more teams than a project may hold; the surplus is dropped"
            );
        }
        drop(logged);
        let data = ProjectData {
            aggregates: build.weeks,
            teams: build.teams,
            last_harvest,
            definitions_version: definitions_version.to_owned(),
        };
        self.store.put(key, data);
    }

    /// Harvests only while `permit` says so: a job refuses to start without
    /// it, and a running project's harvest stops as soon as it ends.
    pub fn set_permit(&self, permit: HarvestPermit) {
        *self.permit.write().expect("permit lock") = Some(permit);
    }

    fn permitted(&self) -> bool {
        self.permit.read().expect("permit lock").as_ref().is_none_or(|p| p())
    }

    /// A receiver that changes whenever a project's figures are replaced or
    /// a job ends.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The operational records for a snapshot: each project's watermark and
    /// the job history, oldest first.
    pub fn records(&self) -> (BTreeMap<String, Millis>, Vec<JobRecord>) {
        (self.memory.watermarks(), self.jobs.records())
    }

    /// Takes back the records of a snapshot taken at `taken_at`, before any
    /// job runs (see [`Jobs::restore`]).
    pub fn restore(&self, watermarks: BTreeMap<String, Millis>, jobs: Vec<JobRecord>, taken_at: DateTime<Utc>) {
        self.memory.restore_watermarks(watermarks);
        self.jobs.restore(jobs, taken_at);
    }

    /// The definitions in force.
    pub fn definitions(&self) -> Arc<DefinitionSet> {
        self.definitions.current()
    }

    /// The owner of the definitions in force.
    pub fn in_force(&self) -> &DefinitionsInForce {
        &self.definitions
    }

    /// The definitions activations, oldest first.
    pub fn audit(&self) -> Vec<DefinitionAudit> {
        self.definitions.audit()
    }

    /// The reporting time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The address of the Jira site harvested (the demo site's when no
    /// Jira is configured).
    pub fn jira_base_url(&self) -> &str {
        self.client.base_url()
    }

    /// The facts of the harvested projects.
    pub fn memory(&self) -> &FactsMemory {
        &self.memory
    }

    /// A project's facts as last harvested, from memory (no Jira call).
    pub fn project_facts(&self, key: &str) -> Option<Arc<ProjectFacts>> {
        self.memory.facts(key)
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
        if !self.permitted() {
            return Err(StartError::NotLeader);
        }
        if let Some(k) =
            projects.iter().find(|k| !self.configured_projects.is_empty() && !self.configured_projects.contains(k))
        {
            return Err(StartError::NotConfigured(k.clone()));
        }
        self.forget_unconfigured();
        let mut projects = if projects.is_empty() { self.default_projects().await? } else { projects };
        projects.sort();
        projects.dedup();
        let job = match self.jobs.open(&projects, full) {
            Ok(job) => job,
            Err(running) => return Ok(running),
        };
        let id = job.id.clone();
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
        self.memory.retain(|k| self.configured_projects.iter().any(|c| c == k));
    }

    /// A job's current view.
    pub fn job(&self, id: &str) -> Option<JobView> {
        self.jobs.find(id).map(|j| j.view())
    }

    /// A job's view and a receiver that changes whenever it progresses.
    pub fn watch(&self, id: &str) -> Option<(JobView, watch::Receiver<u64>)> {
        self.jobs.find(id).map(|j| (j.view(), j.changed.subscribe()))
    }

    /// Runs a job to its end, projects concurrently (the client caps the
    /// requests in flight).
    async fn run(self: Arc<Self>, job: Arc<Job>) {
        job.times.lock().expect("job lock").0 = Some(Utc::now());
        // The site's statuses, asked once per job (by its first project).
        let statuses: Arc<OnceCell<Vec<StatusFacts>>> = Arc::default();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..job.projects.len() {
            let (this, job, statuses) = (Arc::clone(&self), Arc::clone(&job), Arc::clone(&statuses));
            let key = job.projects[i].key.clone();
            tasks.spawn(
                async move {
                    let lock = this.memory.lock(&job.projects[i].key);
                    let _guard = lock.lock().await;
                    job.set(i, JobState::Running, None);
                    let counters = Arc::clone(&job.projects[i].counters);
                    let started = std::time::Instant::now();
                    let refresh = this.refresh_project(&job.projects[i].key, job.full, &statuses, &counters);
                    let refresh = FetchCounters::counting(Arc::clone(&counters), this.while_permitted(refresh));
                    let outcome = refresh.await;
                    let requests = counters.requests.load(Ordering::Relaxed);
                    let fetch = match &outcome {
                        Some(Ok((_, fetch))) => *fetch,
                        _ if job.full => Fetch::Full,
                        _ => Fetch::Incremental,
                    };
                    job.projects[i].reconciled.store(fetch != Fetch::Incremental, Ordering::Relaxed);
                    crate::telemetry::harvest_requests(&job.projects[i].key, fetch.label(), requests);
                    let Some(result) = outcome.map(|r| r.map(|(held, _)| held)) else {
                        warn!("project refresh stopped: the harvesting lease ended");
                        *job.projects[i].recorded_error.lock().expect("job lock") = Some(PERMIT_ENDED.to_owned());
                        job.set(i, JobState::Failed, Some(PERMIT_ENDED.to_owned()));
                        return;
                    };
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
        // Names no fact holds any more, and the pages the refresh let go of.
        self.client.names().forget_unused();
        memory::release_free_pages();
        job.times.lock().expect("job lock").1 = Some(Utc::now());
        job.changed.send_modify(|v| *v += 1);
        self.changes.send_modify(|v| *v += 1);
        info!(state = ?job.view().state, "refresh finished");
    }

    /// Runs `work` while the permit holds; `None` once it ended. The permit
    /// is read on every poll (before `work` can send anything) and at least
    /// every 100 ms.
    async fn while_permitted<F: std::future::Future>(&self, work: F) -> Option<F::Output> {
        let Some(permit) = self.permit.read().expect("permit lock").clone() else {
            return Some(work.await);
        };
        let mut work = std::pin::pin!(work);
        let mut check = tokio::time::interval(std::time::Duration::from_millis(100));
        std::future::poll_fn(|cx| {
            if !permit() {
                return std::task::Poll::Ready(None);
            }
            if let std::task::Poll::Ready(out) = work.as_mut().poll(cx) {
                return std::task::Poll::Ready(Some(out));
            }
            while check.poll_tick(cx).is_ready() {}
            std::task::Poll::Pending
        })
        .await
    }

    /// Harvests one project and swaps its figures in; returns how many
    /// issues are held for it, and how they were fetched.
    async fn refresh_project(
        &self,
        key: &str,
        full: bool,
        statuses: &OnceCell<Vec<StatusFacts>>,
        counters: &FetchCounters,
    ) -> Result<(usize, Fetch), HarvestError> {
        let started = Utc::now();
        let (previous, watermark) = match self.memory.get(key) {
            Some((facts, watermark)) if !full => (Some(facts), watermark),
            _ => (None, None),
        };
        // Without a watermark every issue is fetched: that reconciles too.
        let interval = *self.reconcile_interval.lock().expect("interval lock");
        let last_reconciled = self.memory.reconciled(key);
        let reconcile = watermark.is_none()
            || last_reconciled.is_none_or(|at| (started - at).to_std().unwrap_or(Duration::ZERO) >= interval);
        // The site's statuses (their categories) change without any issue
        // changing: asked again with each reconciliation, kept in between.
        let statuses = match &previous {
            Some(facts) if !reconcile => facts.statuses.clone(),
            _ => statuses.get_or_try_init(|| self.client.statuses()).await?.clone(),
        };
        let versions = self.client.versions(key).await?;
        // The issues in memory that stay, by id.
        let mut kept: BTreeMap<IssueId, &IssueFacts> =
            previous.iter().flat_map(|facts| facts.issues.iter().map(|i| (i.id, i))).collect();
        if watermark.is_some() && reconcile {
            // Reconcile deletions and moves: keep only issues still in the
            // project. (An id that is not a number names no issue kept.)
            let current: HashSet<IssueId> =
                self.client.issue_ids(key, counters).await?.iter().filter_map(|id| IssueId::parse(id)).collect();
            kept.retain(|id, _| current.contains(id));
        }
        let known: HashMap<IssueId, Millis> = kept.iter().map(|(id, issue)| (*id, issue.updated)).collect();
        let fetched = self.client.search_changed_issues(key, watermark, &known, counters).await?;
        let new_watermark = match (watermark, fetched.newest_update()) {
            (Some(w), Some(u)) => Some(w.max(u)),
            (w, u) => w.or(u),
        };
        // The project's arrays are built anew from the kept issues and the
        // fetched ones; the previous ones go when nothing reads them.
        let facts = Arc::new(ProjectFacts::merged(key, kept.into_values(), fetched, versions, statuses));
        drop(previous);
        let definitions = self.definitions();
        let (tz, defs, all) = (self.tz, Arc::clone(&definitions), Arc::clone(&facts));
        let build = tokio::task::spawn_blocking(move || build_project_teams(&all, &*defs, tz))
            .await
            .map_err(|_| HarvestError::Aborted)??;
        self.store_build(key, build, Some(Utc::now()), definitions.version());
        let held = facts.issues.len();
        let reconciled = if reconcile { started } else { last_reconciled.unwrap_or(started) };
        self.memory.put(key, facts, new_watermark, reconciled);
        self.changes.send_modify(|v| *v += 1);
        info!(
            issues = held,
            reconciled = reconcile,
            took_ms = (Utc::now() - started).num_milliseconds(),
            "project refreshed"
        );
        let fetch = match (watermark, reconcile) {
            (None, _) => Fetch::Full,
            (Some(_), true) => Fetch::Reconciling,
            (Some(_), false) => Fetch::Incremental,
        };
        Ok((held, fetch))
    }
}

/// A project's facts, harvested in full through `client`, held nowhere:
/// for previews on a site the service does not serve (the demo site).
pub async fn fetch_project(client: &JiraClient, key: &str) -> Result<ProjectFacts, JiraError> {
    let statuses = client.statuses().await?;
    let versions = client.versions(key).await?;
    let issues = client.search_changed_issues(key, None, &HashMap::new(), &FetchCounters::default()).await?;
    Ok(ProjectFacts::merged(key, [], issues, versions, statuses))
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
            HarvestError::Jira(JiraError::Status {
                req: req("/rest/api/3/issue/777001/changelog"),
                status: 503,
                attempts: crate::jira::Attempts(1),
            }),
            "GET /rest/api/3/issue/{id}/changelog: HTTP 503",
        );
        check(
            HarvestError::Jira(JiraError::Pagination { req: req("/rest/api/2/project/OPS/versions") }),
            "GET /rest/api/2/project/OPS/versions: pagination did not advance",
        );
        check(
            HarvestError::Classify(ClassifyError {
                project: "OPS".into(),
                source: HookError {
                    hook: "is_incident",
                    location: None,
                    message: "thrown: label secret-customer-name".into(),
                },
            }),
            "classifying project OPS: definition hook `is_incident` failed",
        );
    }

    #[test]
    fn urls_inside_errors_lose_their_ids_and_queries() {
        assert_eq!(
            redact_ids(
                "connection failed: error sending request for url (http://127.0.0.1:8080/rest/api/3/issue/OPS-12?expand=x)"
            ),
            "connection failed: error sending request for url (http://127.0.0.1:8080/rest/api/3/issue/{id}"
        );
    }
}
