//! The `dora.v1.DoraMetrics` handlers: validate the request, read the
//! store, compute with `domain`, convert. Errors are typed and become
//! `Status` through `status`, nowhere else; messages name the bad field and
//! carry no internals.
//!
//! Must not call Jira for figures (only `auth` asks it about permissions) and
//! must not build a `Status` itself.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use prost::Message;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::auth::{Access, Caller, Right};
use super::status::{ExplainError, InvalidDefinitions, InvalidField, Missing, UpdatesOff};
use super::{answers, convert, explain};
use crate::cluster::Cluster;
use crate::config::{Config, is_project_key};
use crate::domain::aggregate::ProjectAggregates;
use crate::domain::period::{LEVELS_SOURCE, Period, PeriodRequest, ROLLING_POINTS, RollingDurations, Totals};
use crate::domain::time::IsoWeek;
use crate::harvest::{Harvester, JobState};
use crate::proto::dora_metrics_server::DoraMetrics;
use crate::proto::*;
use crate::store::{ProjectData, Store};

/// The period fields of a request: GetMetrics and ExplainMetrics name
/// them alike.
macro_rules! period_of {
    ($req:expr) => {
        PeriodRequest {
            from_week: $req.from_week.as_deref(),
            to_week: $req.to_week.as_deref(),
            weeks: $req.weeks,
            from_month: $req.from_month.as_deref(),
            to_month: $req.to_month.as_deref(),
            months: $req.months,
        }
    };
}

/// Largest request message accepted.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// At most this many projects in one request.
pub const MAX_PROJECTS_PER_REQUEST: usize = 100;

/// What the handlers need.
pub struct Service {
    pub store: Arc<Store>,
    pub harvester: Arc<Harvester>,
    pub config: Arc<Config>,
    /// The clock (replaceable in tests).
    pub now: fn() -> DateTime<Utc>,
    /// Who may call what, and which projects their viewer may see.
    pub access: Arc<Access>,
    /// With PostgreSQL: refreshes, their progress and definitions go
    /// through the database, so any replica takes any request.
    pub cluster: Option<Arc<Cluster>>,
}

/// Longest accepted week or date field.
pub const MAX_FIELD_LEN: usize = 32;

/// Longest accepted team name (as `teams(issue)` may return).
pub const MAX_TEAM_CHARS: usize = crate::domain::classify::MAX_TEAM_NAME_CHARS;

/// Longest accepted refresh job id.
pub const MAX_JOB_ID_LEN: usize = 64;

/// Validates a job id: short, letters, digits and dashes.
fn job_id(id: &str) -> Result<&str, InvalidField> {
    if id.is_empty() || id.len() > MAX_JOB_ID_LEN || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(InvalidField::new("job_id", "not a refresh job id"));
    }
    Ok(id)
}

impl Service {
    /// Validates and normalises the project keys: at least one, each a key,
    /// duplicates dropped, order kept.
    fn project_keys(keys: &[String]) -> Result<Vec<String>, InvalidField> {
        if keys.is_empty() {
            return Err(InvalidField::new("project_keys", "name at least one project"));
        }
        if keys.len() > MAX_PROJECTS_PER_REQUEST {
            return Err(InvalidField::new(
                "project_keys",
                format!("at most {MAX_PROJECTS_PER_REQUEST} projects per request"),
            ));
        }
        let mut out: Vec<String> = Vec::with_capacity(keys.len());
        for k in keys {
            let k = k.trim().to_ascii_uppercase();
            if !is_project_key(&k) {
                let shown: String = k.chars().take(64).collect();
                return Err(InvalidField::new(
                    "project_keys",
                    format!("`{}` is not a Jira project key", shown.escape_debug()),
                ));
            }
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Ok(out)
    }

    /// The checks `GetMetrics` and `ExplainMetrics` share, before the
    /// permission check: the project keys, the length of the text fields,
    /// and the period.
    pub(super) fn scope(
        &self,
        project_keys: &[String],
        period: PeriodRequest<'_>,
        other_text_fields: &[(&str, Option<&str>)],
    ) -> Result<(Vec<String>, Period), Status> {
        let keys = Self::project_keys(project_keys)?;
        let period_fields = [
            ("from_week", period.from_week),
            ("to_week", period.to_week),
            ("from_month", period.from_month),
            ("to_month", period.to_month),
        ];
        for (field, value) in period_fields.iter().chain(other_text_fields) {
            if value.is_some_and(|v| v.len() > MAX_FIELD_LEN) {
                return Err(InvalidField::new(*field, format!("at most {MAX_FIELD_LEN} characters")).into());
            }
        }
        let period = period.resolve((self.now)(), self.config.report_tz).map_err(|e| InvalidField::new("period", e))?;
        Ok((keys, period))
    }

    /// The permission check, then each project's data: a viewer sees
    /// nothing of a request that names a project it may not browse (or that
    /// does not exist). Returns the store's version read before the data
    /// (see `Store::version`).
    pub(super) async fn projects_data(
        &self,
        caller: &Caller,
        keys: &[String],
    ) -> Result<(u64, Vec<Arc<ProjectData>>), Status> {
        self.access.require_browse(caller, keys).await?;
        let version = self.store.version();
        let mut data = Vec::with_capacity(keys.len());
        for k in keys {
            match self.store.get(k) {
                Some(d) => data.push(d),
                // Configured but not harvested yet: worth a retry.
                None if self.config.harvest.projects.contains(k) => {
                    return Err(Missing::NotYetHarvested(k.clone()).into());
                }
                None => return Err(Missing::Project(k.clone()).into()),
            }
        }
        Ok((version, data))
    }

    /// Validates and normalises a requested team name: trimmed, 1 to
    /// [`MAX_TEAM_CHARS`] characters.
    pub(super) fn team(team: Option<&str>) -> Result<Option<&str>, InvalidField> {
        let Some(name) = team.map(str::trim) else { return Ok(None) };
        if name.is_empty() || name.chars().count() > MAX_TEAM_CHARS {
            return Err(InvalidField::new("team", format!("a team name has 1 to {MAX_TEAM_CHARS} characters")));
        }
        Ok(Some(name))
    }

    /// `GetMetrics`, answered as the encoded response: remembered by the
    /// store's answer cache or computed (and remembered), with the
    /// freshness of this moment (`answers::Answer`); a remembered answer is
    /// also deflated when `gzip` (the client accepts it). The gRPC route
    /// sends these bytes as they are.
    pub(super) async fn get_metrics_encoded(
        &self,
        request: Request<GetMetricsRequest>,
        gzip: bool,
    ) -> Result<answers::Answer, Status> {
        let caller = self.access.authorize(request.metadata(), Right::Read)?;
        let req = request.into_inner();
        let other_text = [("ai_rollout_date", req.ai_rollout_date.as_deref())];
        let (keys, period) = self.scope(&req.project_keys, period_of!(req), &other_text)?;
        let team = Self::team(req.team.as_deref())?;
        let tz = self.config.report_tz;
        let now = (self.now)();
        let (weekly, monthly) = match (req.include_series, req.granularity()) {
            (false, _) => (false, false),
            (true, Granularity::Week) => (true, false),
            (true, Granularity::Month) => (false, true),
        };
        let rollout = match req.ai_rollout_date.as_deref() {
            Some(text) => Some(NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                InvalidField::new("ai_rollout_date", format!("`{}` is not a date like 2026-03-01", text.escape_debug()))
            })?),
            None => None,
        };
        // Before any figure is looked up.
        let (version, data) = self.projects_data(&caller, &keys).await?;
        let definitions = self.harvester.definitions();
        let freshness = Freshness {
            projects: keys.iter().zip(&data).map(|(k, d)| Self::freshness(k, d, definitions.version(), now)).collect(),
            definitions_version: definitions.version().to_owned(),
        };
        let question = answers::question(&req, now.with_timezone(&tz).date_naive());
        if let Some(answer) = answers::recall(&self.store, version, &question) {
            let deflated = if gzip { answers::deflated(&self.store, version, &question, &answer) } else { None };
            return Ok(answers::Answer::new(answer, &freshness).with_deflated(deflated));
        }
        let aggs: Vec<&ProjectAggregates> = match team {
            None => data.iter().map(|d| &d.aggregates).collect(),
            // After the permission check: a team is looked up only in
            // projects the caller may browse.
            Some(team) => {
                let found: Vec<Option<&ProjectAggregates>> = data.iter().map(|d| d.teams.get(team)).collect();
                if found.iter().all(Option::is_none) {
                    return Err(Missing::Team.into());
                }
                found.into_iter().map(|a| a.unwrap_or(&NO_WEEKS)).collect()
            }
        };
        let previous = period.previous();
        let (each, combined) = Totals::each_and_combined(&aggs, period.iter());
        let (each_previous, combined_previous) = Totals::each_and_combined(&aggs, previous.iter());
        let projects = keys
            .iter()
            .zip(&aggs)
            .zip(each.into_iter().zip(each_previous))
            .map(|((k, a), (current, before))| ProjectMetrics {
                project_key: k.clone(),
                figures: Some(convert::figures(&current.into_figures())),
                previous: Some(convert::figures(&before.into_figures())),
                series: if weekly { series(&[a], &period) } else { Vec::new() },
                monthly_series: if monthly { monthly_series(&[a], &period) } else { Vec::new() },
            })
            .collect();
        let markers = markers(&self.config, &keys, rollout, &period);
        let rollout = rollout.or_else(|| {
            let mut dates = keys.iter().filter_map(|k| self.config.rollout_date(k));
            let first = dates.next()?;
            dates.all(|d| d == first).then_some(first)
        });
        let response = GetMetricsResponse {
            period: Some(convert::period(&period, tz)),
            combined: Some(convert::figures(&combined.into_figures())),
            projects,
            previous: Some(convert::figures(&combined_previous.into_figures())),
            previous_period: Some(convert::period(&previous, tz)),
            series: if weekly { series(&aggs, &period) } else { Vec::new() },
            monthly_series: if monthly { monthly_series(&aggs, &period) } else { Vec::new() },
            freshness: None,
            ai_impact: Some(answers::ai_impact(&self.store, version, &keys, team, &aggs, &period, rollout)),
            levels_source: LEVELS_SOURCE.to_owned(),
            markers,
        };
        let answer: Bytes = response.encode_to_vec().into();
        answers::remember(&self.store, version, question, answer.clone());
        Ok(answers::Answer::new(answer, &freshness))
    }

    /// Whether the caller may see a job: a forwarded viewer only a job all
    /// of whose projects it may browse (its state, counts and errors are
    /// about all of them). A hidden job is `NOT_FOUND`, as an unknown one.
    async fn check_job_visible(&self, caller: &Caller, job: &crate::harvest::JobView) -> Result<(), Status> {
        if caller.has_viewer() {
            let keys: Vec<String> = job.projects.iter().map(|p| p.key.clone()).collect();
            if !self.access.browsable(caller, &keys).await?.into_iter().all(|allowed| allowed) {
                return Err(Missing::Job(job.id.clone()).into());
            }
        }
        Ok(())
    }

    /// A project's freshness against the definitions version in force
    /// (read once per request by the caller).
    fn freshness(key: &str, data: &ProjectData, current_version: &str, now: DateTime<Utc>) -> ProjectFreshness {
        ProjectFreshness {
            project_key: key.to_owned(),
            last_harvest: data.last_harvest.map(convert::timestamp),
            definitions_version: data.definitions_version.clone(),
            definitions_stale: data.definitions_version != current_version,
            age_seconds: data.last_harvest.map(|t| (now - t).num_seconds().max(0) as u64),
        }
    }
}

/// The weeks of a team in a project where it has no issue.
static NO_WEEKS: ProjectAggregates = ProjectAggregates::new();

/// The weekly series of a period; each point with the rolling durations of
/// the [`ROLLING_POINTS`] weeks ending with it (read from the store, also
/// where they lie before the period).
fn series(projects: &[&ProjectAggregates], period: &Period) -> Vec<WeekFigures> {
    period
        .iter()
        .map(|w| {
            let window = (0..ROLLING_POINTS as i32).rev().map(|back| w.plus(-back));
            let rolling = RollingDurations::over(projects, window);
            WeekFigures {
                week: w.to_string(),
                figures: Some(convert::figures(&Totals::over(projects, std::iter::once(w)).figures())),
                rolling_lead_time: Some(convert::durations(&rolling.lead_time)),
                rolling_time_to_restore: Some(convert::durations(&rolling.time_to_restore)),
            }
        })
        .collect()
}

/// The monthly series of a period: one point per month its weeks belong
/// to, with the figures of those weeks and the rolling durations of the
/// [`ROLLING_POINTS`] months ending with it (merged the same way).
fn monthly_series(projects: &[&ProjectAggregates], period: &Period) -> Vec<MonthFigures> {
    period
        .months()
        .into_iter()
        .map(|m| {
            let rolling = RollingDurations::over(projects, m.rolling_window());
            MonthFigures {
                month: m.month.to_string(),
                weeks: m.weeks,
                figures: Some(convert::figures(&Totals::over(projects, m.iter()).figures())),
                rolling_lead_time: Some(convert::durations(&rolling.lead_time)),
                rolling_time_to_restore: Some(convert::durations(&rolling.time_to_restore)),
            }
        })
        .collect()
}

/// The markers of a view of `keys` over `period`: the configured ones that
/// concern those projects, and the AI rollout date (the request's, or each
/// project's from the configuration), those inside the period, by date.
fn markers(config: &Config, keys: &[String], requested_rollout: Option<NaiveDate>, period: &Period) -> Vec<Marker> {
    let (first, last) = (period.first.monday(), period.last().monday() + chrono::Days::new(6));
    let mut rollouts: Vec<(NaiveDate, Vec<&str>)> = Vec::new();
    for key in keys {
        if let Some(date) = requested_rollout.or_else(|| config.rollout_date(key)) {
            match rollouts.iter_mut().find(|(d, _)| *d == date) {
                Some((_, projects)) => projects.push(key),
                None => rollouts.push((date, vec![key])),
            }
        }
    }
    let rollout_markers = rollouts.into_iter().map(|(date, projects)| {
        let named = format!("AI rollout in {}", projects.join(", "));
        let label = if projects.len() == keys.len() {
            "AI rollout".to_owned()
        } else if named.chars().count() <= crate::config::MAX_MARKER_LABEL_CHARS {
            named
        } else {
            format!("AI rollout in {} projects", projects.len())
        };
        (date, label)
    });
    let configured = config.markers.iter().filter(|m| m.concerns(keys)).map(|m| (m.date, m.label.clone()));
    let mut out: Vec<(NaiveDate, String)> =
        configured.chain(rollout_markers).filter(|(d, _)| (first..=last).contains(d)).collect();
    out.sort();
    out.dedup();
    out.into_iter().map(|(date, label)| Marker { date: date.to_string(), label }).collect()
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchRefreshResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DoraMetrics for Service {
    async fn get_metrics(&self, request: Request<GetMetricsRequest>) -> Result<Response<GetMetricsResponse>, Status> {
        let answer = self.get_metrics_encoded(request, false).await?;
        // Encoded by this service a moment ago: it decodes.
        let response = GetMetricsResponse::decode(answer.as_buf()).expect("an answer this service encoded");
        Ok(Response::new(response))
    }

    async fn list_projects(
        &self,
        request: Request<ListProjectsRequest>,
    ) -> Result<Response<ListProjectsResponse>, Status> {
        let caller = self.access.authorize(request.metadata(), Right::Read)?;
        let now = (self.now)();
        let definitions = self.harvester.definitions();
        let keys = self.store.keys();
        let allowed = self.access.browsable(&caller, &keys).await?;
        let projects = keys
            .into_iter()
            .zip(allowed)
            .filter_map(|(k, allowed)| allowed.then_some(k))
            .filter_map(|k| {
                let d = self.store.get(&k)?;
                Some(ProjectInfo {
                    freshness: Some(Self::freshness(&k, &d, definitions.version(), now)),
                    weeks_with_data: d.aggregates.len() as u32,
                    project_key: k,
                })
            })
            .collect();
        Ok(Response::new(ListProjectsResponse { projects }))
    }

    async fn list_teams(&self, request: Request<ListTeamsRequest>) -> Result<Response<ListTeamsResponse>, Status> {
        let caller = self.access.authorize(request.metadata(), Right::Read)?;
        let req = request.into_inner();
        let keys = if req.project_keys.is_empty() {
            // Every project the caller may browse.
            let keys = self.store.keys();
            let allowed = self.access.browsable(&caller, &keys).await?;
            keys.into_iter().zip(allowed).filter_map(|(k, allowed)| allowed.then_some(k)).collect()
        } else {
            // Named projects: as for figures, all must be browsable.
            let keys = Self::project_keys(&req.project_keys)?;
            self.access.require_browse(&caller, &keys).await?;
            keys
        };
        // By name: the projects holding the team's issues, and its weeks.
        let mut teams: BTreeMap<&str, (Vec<&str>, BTreeSet<IsoWeek>)> = BTreeMap::new();
        let data: Vec<(&String, Arc<ProjectData>)> =
            keys.iter().filter_map(|k| Some((k, self.store.get(k)?))).collect();
        for (key, d) in &data {
            for (name, weeks) in &d.teams {
                let (projects, with_data) = teams.entry(name).or_default();
                projects.push(key);
                with_data.extend(weeks.keys().copied());
            }
        }
        let teams = teams
            .into_iter()
            .map(|(name, (mut projects, weeks))| {
                projects.sort_unstable();
                TeamInfo {
                    name: name.to_owned(),
                    project_keys: projects.into_iter().map(str::to_owned).collect(),
                    weeks_with_data: weeks.len() as u32,
                }
            })
            .collect();
        Ok(Response::new(ListTeamsResponse { teams }))
    }

    async fn refresh(&self, request: Request<RefreshRequest>) -> Result<Response<RefreshResponse>, Status> {
        self.access.authorize(request.metadata(), Right::Admin)?;
        let req = request.into_inner();
        let keys = if req.project_keys.is_empty() { Vec::new() } else { Self::project_keys(&req.project_keys)? };
        if let Some(cluster) = &self.cluster {
            let job_id = cluster.refresh(keys, req.full).await?;
            return Ok(Response::new(RefreshResponse { job_id }));
        }
        let job_id = self.harvester.start(keys, req.full).await?;
        Ok(Response::new(RefreshResponse { job_id }))
    }

    async fn get_refresh_status(
        &self,
        request: Request<GetRefreshStatusRequest>,
    ) -> Result<Response<GetRefreshStatusResponse>, Status> {
        let caller = self.access.authorize(request.metadata(), Right::Read)?;
        let id = request.into_inner().job_id;
        let job = self.find_job(job_id(&id)?).await?.ok_or_else(|| Missing::Job(id.clone()))?;
        self.check_job_visible(&caller, &job).await?;
        Ok(Response::new(GetRefreshStatusResponse { job: Some(convert::job(&job)) }))
    }

    type WatchRefreshStream = WatchStream;

    async fn watch_refresh(&self, request: Request<WatchRefreshRequest>) -> Result<Response<WatchStream>, Status> {
        let caller = self.access.authorize(request.metadata(), Right::Read)?;
        let id = request.into_inner().job_id;
        if let Some(cluster) = &self.cluster {
            return self.watch_recorded_job(&caller, Arc::clone(cluster), id).await;
        }
        let (view, mut changed) = self.harvester.watch(job_id(&id)?).ok_or_else(|| Missing::Job(id.clone()))?;
        // A job's projects do not change: decide once.
        self.check_job_visible(&caller, &view).await?;
        let harvester = Arc::clone(&self.harvester);
        let stream = async_stream(move |tx| async move {
            loop {
                let Some(view) = harvester.job(&id) else { return };
                let ended = matches!(view.state, JobState::Succeeded | JobState::Failed) && view.finished.is_some();
                if tx.send(Ok(WatchRefreshResponse { job: Some(convert::job(&view)) })).await.is_err() || ended {
                    return;
                }
                // Progress counters move without notifications: tick too.
                let _ = tokio::time::timeout(Duration::from_millis(500), changed.changed()).await;
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_definitions(
        &self,
        request: Request<GetDefinitionsRequest>,
    ) -> Result<Response<GetDefinitionsResponse>, Status> {
        self.access.authorize(request.metadata(), Right::Read)?;
        let defs = self.harvester.definitions();
        Ok(Response::new(GetDefinitionsResponse {
            version: defs.version().to_owned(),
            files: defs
                .files()
                .iter()
                .map(|f| DefinitionFile { name: f.name.clone(), source: f.source.clone() })
                .collect(),
            audit: self.harvester.audit().iter().map(super::definitions::audit).collect(),
        }))
    }

    async fn validate_definitions(
        &self,
        request: Request<ValidateDefinitionsRequest>,
    ) -> Result<Response<ValidateDefinitionsResponse>, Status> {
        let caller = self.access.authorize(request.metadata(), Right::Admin)?;
        let files = super::definitions::files(request.into_inner().files);
        let mut validation = self.harvester.validate(files, (self.now)()).await;
        // A forwarded viewer sees the previews of its projects only.
        let keys: Vec<String> = validation.previews.iter().map(|p| p.key.clone()).collect();
        let mut allowed = self.access.browsable(&caller, &keys).await?.into_iter();
        validation.previews.retain(|_| allowed.next().unwrap_or(false));
        Ok(Response::new(super::definitions::validation(&validation, self.config.report_tz)))
    }

    async fn explain_metrics(
        &self,
        request: Request<ExplainMetricsRequest>,
    ) -> Result<Response<ExplainMetricsResponse>, Status> {
        let caller = self.access.authorize(request.metadata(), Right::Read)?;
        let req = request.into_inner();
        let (keys, period) = self.scope(&req.project_keys, period_of!(req), &[])?;
        let team = Self::team(req.team.as_deref())?;
        let figure = explain::figure(req.figure)?;
        let page_size = explain::page_size(req.page_size)?;
        let start = explain::PageStart::new(&keys, &period, figure, team, &req.page_token)?;
        let (version, data) = self.projects_data(&caller, &keys).await?;
        // After the permission check, as for the figures.
        if let Some(team) = team
            && data.iter().all(|d| !d.teams.contains_key(team))
        {
            return Err(Missing::Team.into());
        }
        start.check_data(version)?;
        let mut facts = Vec::with_capacity(keys.len());
        for k in &keys {
            facts.push(self.harvester.project_facts(k).ok_or_else(|| ExplainError::DetailsAfterRefresh(k.clone()))?);
        }
        let team = team.map(str::to_owned);
        let listed =
            explain::list(facts, self.harvester.definitions(), self.config.report_tz, period, figure, team).await?;
        Ok(Response::new(explain::page(&listed, start, page_size, version, self.harvester.jira_base_url())?))
    }

    async fn update_definitions(
        &self,
        request: Request<UpdateDefinitionsRequest>,
    ) -> Result<Response<UpdateDefinitionsResponse>, Status> {
        self.access.authorize(request.metadata(), Right::Admin)?;
        if !self.config.definitions.allow_updates {
            return Err(UpdatesOff.into());
        }
        let files = super::definitions::files(request.into_inner().files);
        let validation = self.harvester.validate(files, (self.now)()).await;
        let Some(set) = validation.set else {
            return Err(InvalidDefinitions(validation.errors).into());
        };
        if let Some(cluster) = &self.cluster {
            let active = cluster.publish_definitions(set).await?;
            return Ok(Response::new(UpdateDefinitionsResponse { version: active.version().to_owned() }));
        }
        let active = self.harvester.activate(set, crate::harvest::Origin::Api, Some(&self.config.defs_dir)).await?;
        Ok(Response::new(UpdateDefinitionsResponse { version: active.version().to_owned() }))
    }
}

impl Service {
    /// A job's view: from the database with PostgreSQL, else from the
    /// harvester.
    async fn find_job(&self, id: &str) -> Result<Option<crate::harvest::JobView>, Status> {
        match &self.cluster {
            Some(cluster) => Ok(cluster.job(id).await?),
            None => Ok(self.harvester.job(id)),
        }
    }

    /// [`DoraMetrics::watch_refresh`] for a job recorded in the database:
    /// each change notified by the leader, and every 500 ms.
    async fn watch_recorded_job(
        &self,
        caller: &Caller,
        cluster: Arc<Cluster>,
        id: String,
    ) -> Result<Response<WatchStream>, Status> {
        let view = cluster.job(job_id(&id)?).await?;
        let view = view.ok_or_else(|| Missing::Job(id.clone()))?;
        self.check_job_visible(caller, &view).await?;
        let mut changed = cluster.job_changes();
        let stream = async_stream(move |tx| async move {
            loop {
                let view = match cluster.job(&id).await {
                    Ok(Some(view)) => view,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
                let ended = matches!(view.state, JobState::Succeeded | JobState::Failed) && view.finished.is_some();
                if tx.send(Ok(WatchRefreshResponse { job: Some(convert::job(&view)) })).await.is_err() || ended {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_millis(500), changed.changed()).await;
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// A stream fed by a task through a bounded channel.
fn async_stream<T, F, Fut>(f: F) -> impl Stream<Item = T> + Send
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
