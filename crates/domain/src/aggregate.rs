//! From one project's facts to its weekly aggregates.
//!
//! `build_project` resolves ids to names and categories, asks the hooks
//! about each issue and version (`classify`), derives the per-issue events
//! of `docs/metrics.md` (completion, lead time, re-open, incident, restore),
//! lists the project's deployments, attributes each failure to deployments
//! (by affected version, else by time) and marks rework, and adds each to
//! the week it belongs to. The result holds counts and duration sketches
//! only: no issue ids, keys, labels or names.
//!
//! The pass itself ([`project_items`]) reports every item it finds to an
//! [`ItemSink`]: `build_project` adds them to weeks, and `explain` lists
//! them, so the figures and the lists behind them come from one
//! implementation of the rules.
//!
//! The same pass gives each item its teams (`teams(issue)`,
//! `docs/metrics.md` "Teams"): an issue's are its own; a version
//! deployment belongs to the teams of the non-excluded issues listing it
//! as fix version, a transition deployment to its issue's teams, and
//! either keeps the project's failed and rework flags. `build_project_teams`
//! adds every item to its project's weeks and to those of each of its
//! teams. Team names are the only names the result holds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::classify::{HookError, Hooks, IssueClass, IssueView, TransitionView, VersionView, classify_issue};
use super::facts::{IssueFacts, Millis, Name, ProjectFacts, StatusCategory, StatusRef, VersionFacts};
use super::sketch::DurationSketch;
use super::time::{IsoWeek, local_date, weekday_index};

/// The figures of one project in one ISO week. Everything is additive
/// (counts, sketches, a day mask), so weeks and projects combine by merging.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeeklyAggregate {
    /// Deployments released in the week.
    pub deployments: u32,
    /// Days of the week (bit 0 = Monday) with at least one deployment.
    pub deployment_days: u8,
    /// Deployments of the week that failed.
    pub failed_deployments: u32,
    /// Of those, the ones a failure names as affected version, …
    pub failed_by_version: u32,
    /// … the ones a failure was attributed to by time, …
    pub failed_by_time: u32,
    /// … and the deployment transitions a failure transition followed (a
    /// deployment failed in several ways counts in each).
    pub failed_by_transition: u32,
    /// Version deployments of the week that shipped a fix (rework).
    pub rework_deployments: u32,
    /// Lead times of work items completed in the week.
    pub lead_time: DurationSketch,
    /// The part of `lead_time` from AI-involved items.
    pub lead_time_ai: DurationSketch,
    /// Times to restore of incidents restored in the week.
    pub time_to_restore: DurationSketch,
    /// Incidents created in the week.
    pub incidents: u32,
    /// Of those, the ones open now.
    pub open_incidents: u32,
    /// Work items completed in the week.
    pub completed: u32,
    /// Excluded issues completed in the week.
    pub excluded: u32,
    /// Completed work items that were re-opened.
    pub reopened: u32,
    /// Completed work items with AI involvement.
    pub ai_involved: u32,
    /// Re-opened AI-involved items.
    pub reopened_ai: u32,
}

impl WeeklyAggregate {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &WeeklyAggregate) {
        self.merge_parts(other, true);
    }

    /// Adds `other` into `self`, with or without the AI split of lead times
    /// (`lead_time_ai`), which only the AI impact comparison reads.
    pub fn merge_parts(&mut self, other: &WeeklyAggregate, ai_split: bool) {
        self.deployments += other.deployments;
        self.deployment_days |= other.deployment_days;
        self.failed_deployments += other.failed_deployments;
        self.failed_by_version += other.failed_by_version;
        self.failed_by_time += other.failed_by_time;
        self.failed_by_transition += other.failed_by_transition;
        self.rework_deployments += other.rework_deployments;
        self.lead_time.merge(&other.lead_time);
        if ai_split {
            self.lead_time_ai.merge(&other.lead_time_ai);
        }
        self.time_to_restore.merge(&other.time_to_restore);
        self.incidents += other.incidents;
        self.open_incidents += other.open_incidents;
        self.completed += other.completed;
        self.excluded += other.excluded;
        self.reopened += other.reopened;
        self.ai_involved += other.ai_involved;
        self.reopened_ai += other.reopened_ai;
    }
}

/// One project's aggregates by week.
pub type ProjectAggregates = BTreeMap<IsoWeek, WeeklyAggregate>;

/// The weekly aggregates of each team within one project, by team name.
pub type TeamAggregates = BTreeMap<String, ProjectAggregates>;

/// The most teams kept per project: the first ones met in the project's
/// issues; the issues' other teams are dropped (and counted).
pub const MAX_TEAMS_PER_PROJECT: usize = 500;

/// A project's weekly aggregates with those of its teams.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectBuild {
    pub weeks: ProjectAggregates,
    pub teams: TeamAggregates,
    /// Distinct team names dropped beyond [`MAX_TEAMS_PER_PROJECT`].
    pub dropped_teams: usize,
}

/// A hook failed on one of the project's issues or versions.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("classifying project {project}: {source}")]
pub struct ClassifyError {
    pub project: String,
    #[source]
    pub source: HookError,
}

/// Status ids resolved to names and categories, with a by-name fallback for
/// statuses deleted since a change was recorded.
struct StatusTable<'a> {
    by_id: HashMap<&'a str, (&'a str, StatusCategory)>,
    by_name: HashMap<String, StatusCategory>,
}

impl<'a> StatusTable<'a> {
    fn new(facts: &'a ProjectFacts) -> Self {
        Self {
            by_id: facts.statuses.iter().map(|s| (s.id.as_str(), (s.name.as_str(), s.category))).collect(),
            by_name: facts.statuses.iter().map(|s| (s.name.to_lowercase(), s.category)).collect(),
        }
    }

    fn resolve<'s>(&'s self, r: &'s StatusRef) -> (&'s str, StatusCategory) {
        if let Some(&(name, cat)) = self.by_id.get(r.id.as_str()) {
            return (name, cat);
        }
        let cat = self.by_name.get(&r.name.to_lowercase()).copied().unwrap_or(StatusCategory::Undefined);
        (&r.name, cat)
    }
}

/// An issue with its statuses resolved, ready for the hooks and the rules.
struct ResolvedIssue<'a> {
    facts: &'a IssueFacts,
    view: IssueView<'a>,
}

fn resolve_issue<'a>(
    issue: &'a IssueFacts,
    statuses: &'a StatusTable<'a>,
    version_names: &HashMap<&str, &'a str>,
) -> ResolvedIssue<'a> {
    let (status, by_id_category) = statuses.resolve(&issue.status);
    let status_category =
        if statuses.by_id.contains_key(issue.status.id.as_str()) { by_id_category } else { issue.status_category };
    let names = |ids: &'a [Name]| ids.iter().filter_map(|id| version_names.get(id.as_str()).copied()).collect();
    let transitions = issue
        .changes()
        .iter()
        .map(|c| {
            let (from, from_category) = statuses.resolve(&c.from);
            let (to, to_category) = statuses.resolve(&c.to);
            TransitionView { from, to, from_category, to_category, by_app: c.by_app, at: c.at }
        })
        .collect();
    ResolvedIssue {
        facts: issue,
        view: IssueView {
            project: &issue.project,
            issue_type: &issue.issue_type,
            is_subtask: issue.is_subtask,
            labels: issue.labels(),
            status,
            status_category,
            created: issue.created,
            resolved: issue.resolved,
            fix_versions: names(issue.fix_versions()),
            affected_versions: names(issue.affected_versions()),
            app_changes: issue.changes().iter().filter(|c| c.by_app).count() as u32,
            components: issue.components(),
            priority: issue.priority.as_deref(),
            fields: issue.fields(),
            transitions,
        },
    }
}

/// The completion instant of an issue in a done-category status: the start
/// of its final stay in `done` (the last change from another category into
/// `done`), else `resolutiondate`, else `created`. `None` when not completed.
fn completion(issue: &ResolvedIssue<'_>) -> Option<Millis> {
    let v = &issue.view;
    if v.status_category != StatusCategory::Done {
        return None;
    }
    let last_into_done = v
        .transitions
        .iter()
        .rev()
        .find(|t| t.to_category == StatusCategory::Done && t.from_category != StatusCategory::Done)
        .map(|t| t.at);
    Some(last_into_done.or(issue.facts.resolved).unwrap_or(issue.facts.created))
}

fn at_week(weeks: &mut ProjectAggregates, w: IsoWeek) -> &mut WeeklyAggregate {
    weeks.entry(w).or_default()
}

/// Builds a project's weekly aggregates from its facts under the given hooks.
pub fn build_project<H: Hooks>(facts: &ProjectFacts, hooks: &H, tz: Tz) -> Result<ProjectAggregates, ClassifyError> {
    build_project_teams(facts, hooks, tz).map(|build| build.weeks)
}

/// Builds a project's weekly aggregates and those of its teams, in one
/// pass over the issues.
pub fn build_project_teams<H: Hooks>(facts: &ProjectFacts, hooks: &H, tz: Tz) -> Result<ProjectBuild, ClassifyError> {
    let mut sink = WeeksSink { weeks: ProjectAggregates::new(), teams: TeamTable::default(), current: Vec::new(), tz };
    project_items(facts, hooks, tz, &mut sink)?;
    Ok(ProjectBuild {
        weeks: sink.weeks,
        teams: sink.teams.weeks.into_iter().map(|(name, weeks)| (name.to_string(), weeks)).collect(),
        dropped_teams: sink.teams.dropped.len(),
    })
}

/// How a failure was attributed to deployments (`docs/metrics.md`,
/// "Deployments and change failure"), or why a deployment is rework.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribution {
    /// The failure lists the deployment's version among its affected versions.
    ByVersion,
    /// The failure names no affected version; the deployment is the latest
    /// before it within its window.
    ByTime,
    /// A failure transition of the issue followed the deployment transition.
    ByTransition,
    /// The issue (an incident, or an attributed failure) lists the version
    /// among its fix versions: the deployment is rework.
    ReworkFix,
}

/// A completed work item: lead time from work start (or creation) to
/// completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedWork {
    pub start: Millis,
    pub done: Millis,
    /// `done - start`, or `done - created` (at least 0) when that is negative.
    pub lead: Millis,
    pub reopened: bool,
}

/// What the pass over a project's facts finds, item by item, each once.
/// `'f` is the lifetime of the facts.
pub trait ItemSink<'f> {
    /// Any issue, classified, before the items it makes (if any).
    fn classified(&mut self, issue: &'f IssueFacts, class: &IssueClass) {
        let _ = (issue, class);
    }
    /// An excluded issue, with its completion instant when completed.
    fn excluded(&mut self, issue: &'f IssueFacts, class: &IssueClass, completed_at: Option<Millis>);
    /// An incident (not excluded) and its restore instant (`None`: open).
    fn incident(&mut self, issue: &'f IssueFacts, class: &IssueClass, restored_at: Option<Millis>);
    /// A completed work item (not excluded, not an incident).
    fn completed(&mut self, issue: &'f IssueFacts, class: &IssueClass, work: &CompletedWork);
    /// A failure (not excluded) and how it was attributed: `None` when to
    /// no deployment at all.
    fn failure(&mut self, issue: &'f IssueFacts, attributed: Option<Attribution>);
    /// A version the pass could not place on a day: released in Jira (or a
    /// deployment by the definitions) without a release date.
    fn undated_version(&mut self, version: &'f VersionFacts);
    /// A deployment with what happened to it.
    fn deployment(&mut self, deployment: &Deployment<'f>);
}

/// The teams met in one project's issues, numbered in order of first
/// appearance, at most [`MAX_TEAMS_PER_PROJECT`].
#[derive(Default)]
struct TeamTable {
    index: HashMap<Arc<str>, usize>,
    weeks: Vec<(Arc<str>, ProjectAggregates)>,
    /// Hashes of the names dropped beyond the limit (names are not kept).
    dropped: HashSet<u64>,
}

impl TeamTable {
    /// The numbers of `teams`, adding new ones while there is room.
    fn numbers(&mut self, teams: &[Arc<str>]) -> Vec<usize> {
        let mut out = Vec::with_capacity(teams.len());
        for name in teams {
            if let Some(&n) = self.index.get(name) {
                out.push(n);
            } else if self.weeks.len() < MAX_TEAMS_PER_PROJECT {
                self.index.insert(Arc::clone(name), self.weeks.len());
                out.push(self.weeks.len());
                self.weeks.push((Arc::clone(name), ProjectAggregates::new()));
            } else {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                name.hash(&mut hasher);
                self.dropped.insert(hasher.finish());
            }
        }
        out
    }
}

/// Adds each item to the week it belongs to, in its project's weeks and in
/// those of each of its teams.
struct WeeksSink {
    weeks: ProjectAggregates,
    teams: TeamTable,
    /// The team numbers of the issue being reported.
    current: Vec<usize>,
    tz: Tz,
}

impl WeeksSink {
    /// Calls `f` with the project's weeks, then with those of each team.
    fn each(&mut self, teams: &[usize], mut f: impl FnMut(&mut ProjectAggregates)) {
        f(&mut self.weeks);
        for &t in teams {
            f(&mut self.teams.weeks[t].1);
        }
    }

    /// [`Self::each`] for the issue being reported.
    fn each_of_issue(&mut self, f: impl FnMut(&mut ProjectAggregates)) {
        let teams = std::mem::take(&mut self.current);
        self.each(&teams, f);
        self.current = teams;
    }
}

impl<'f> ItemSink<'f> for WeeksSink {
    fn classified(&mut self, _: &'f IssueFacts, class: &IssueClass) {
        self.current = self.teams.numbers(&class.teams);
    }

    fn excluded(&mut self, _: &'f IssueFacts, _: &IssueClass, completed_at: Option<Millis>) {
        if let Some(at) = completed_at {
            let week = IsoWeek::of_instant(at, self.tz);
            self.each_of_issue(|weeks| at_week(weeks, week).excluded += 1);
        }
    }

    fn incident(&mut self, issue: &'f IssueFacts, _: &IssueClass, restored_at: Option<Millis>) {
        let created_week = IsoWeek::of_instant(issue.created, self.tz);
        let restored = restored_at.map(|at| (IsoWeek::of_instant(at, self.tz), at - issue.created));
        self.each_of_issue(|weeks| {
            at_week(weeks, created_week).incidents += 1;
            match restored {
                Some((week, took)) => at_week(weeks, week).time_to_restore.add(took),
                None => at_week(weeks, created_week).open_incidents += 1,
            }
        });
    }

    fn completed(&mut self, _: &'f IssueFacts, class: &IssueClass, work: &CompletedWork) {
        let week = IsoWeek::of_instant(work.done, self.tz);
        self.each_of_issue(|weeks| {
            let agg = at_week(weeks, week);
            agg.completed += 1;
            agg.lead_time.add(work.lead);
            agg.reopened += u32::from(work.reopened);
            if class.ai_involved {
                agg.ai_involved += 1;
                agg.lead_time_ai.add(work.lead);
                agg.reopened_ai += u32::from(work.reopened);
            }
        });
    }

    fn failure(&mut self, _: &'f IssueFacts, _: Option<Attribution>) {}

    fn undated_version(&mut self, _: &'f VersionFacts) {}

    fn deployment(&mut self, d: &Deployment<'f>) {
        // Every team of an issue was numbered (or dropped) when the issue
        // was classified.
        let teams: Vec<usize> = d.teams.iter().filter_map(|name| self.teams.index.get(name).copied()).collect();
        self.each(&teams, |weeks| {
            let agg = at_week(weeks, d.week());
            agg.deployments += 1;
            agg.deployment_days |= 1 << weekday_index(d.day);
            agg.failed_deployments += u32::from(d.failed());
            agg.failed_by_version += u32::from(d.failed_by_version);
            agg.failed_by_time += u32::from(d.failed_by_time);
            agg.failed_by_transition += u32::from(d.failed_by_transition);
            agg.rework_deployments += u32::from(d.rework);
        });
    }
}

/// The pass over one project's facts under the given hooks: classifies
/// every issue and version, derives the per-issue events, lists the
/// deployments, attributes the failures and marks rework, reporting each
/// item to `sink`.
pub fn project_items<'f, H: Hooks>(
    facts: &'f ProjectFacts,
    hooks: &H,
    tz: Tz,
    sink: &mut impl ItemSink<'f>,
) -> Result<(), ClassifyError> {
    let fail = |source| ClassifyError { project: facts.key.clone(), source };
    let statuses = StatusTable::new(facts);
    let version_names: HashMap<&str, &str> = facts.versions.iter().map(|v| (v.id.as_str(), v.name.as_str())).collect();
    let mut deployments = Vec::new();
    let mut failures = Vec::new();
    // Their fix versions are rework, as are those of the failures
    // attributed to some deployment.
    let mut incidents: Vec<&IssueFacts> = Vec::new();
    // The teams of each version: those of the non-excluded issues listing
    // it as fix version.
    let mut version_teams: HashMap<&str, Vec<Arc<str>>> = HashMap::new();

    for issue in &facts.issues {
        let resolved = resolve_issue(issue, &statuses, &version_names);
        let class = classify_issue(hooks, &resolved.view).map_err(fail)?;
        sink.classified(issue, &class);
        let completed_at = completion(&resolved);
        if class.excluded {
            sink.excluded(issue, &class, completed_at);
            continue;
        }
        if !class.teams.is_empty() {
            for id in issue.fix_versions() {
                let listed = version_teams.entry(id.as_str()).or_default();
                for team in class.teams.iter() {
                    if !listed.contains(team) {
                        listed.push(Arc::clone(team));
                    }
                }
            }
        }
        if class.failure {
            failures.push(Failure { issue, window_days: class.failure_window_days });
        }
        if class.incident {
            incidents.push(issue);
        }
        add_transition_deployments(issue, &resolved, &class, tz, &mut deployments);
        if class.incident {
            sink.incident(issue, &class, restore(&resolved, &class));
        } else if let Some(done_at) = completed_at {
            sink.completed(issue, &class, &completed_work(&resolved, &class, done_at));
        }
    }

    for version in &facts.versions {
        let deployment = hooks.is_deployment(&VersionView::of(version)).map_err(fail)?;
        // A deployment needs a day to be placed on; a custom rule that
        // accepts undated versions cannot count them.
        let Some(day) = version.release_date else {
            if deployment || version.released {
                sink.undated_version(version);
            }
            continue;
        };
        if deployment {
            let mut deployment = Deployment::new(day, Source::Version(version));
            deployment.teams = version_teams.remove(version.id.as_str()).unwrap_or_default();
            deployments.push(deployment);
        }
    }

    let attributed = attribute_failures(&mut deployments, &failures, tz);
    for (failure, &how) in failures.iter().zip(&attributed) {
        sink.failure(failure.issue, how);
    }
    let rework_fixes = incidents
        .into_iter()
        .chain(failures.iter().zip(&attributed).filter(|&(_, a)| a.is_some()).map(|(f, _)| f.issue));
    mark_rework(&mut deployments, rework_fixes);

    for d in &deployments {
        sink.deployment(d);
    }
    Ok(())
}

/// Where a deployment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// A version, released on the deployment's day.
    Version(&'a VersionFacts),
    /// A deployment transition of an issue at this instant.
    Transition(&'a IssueFacts, Millis),
}

/// One deployment of a project and what happened to it.
#[derive(Debug, Clone)]
pub struct Deployment<'a> {
    /// The release date of a version; the reporting-zone date of a
    /// transition.
    pub day: NaiveDate,
    pub source: Source<'a>,
    pub failed_by_version: bool,
    pub failed_by_time: bool,
    pub failed_by_transition: bool,
    pub rework: bool,
    /// The issues that made it failed or rework, and how, in the order
    /// found; an issue at most once per way.
    pub causes: Vec<(&'a IssueFacts, Attribution)>,
    /// The teams it belongs to (`docs/metrics.md`, "Teams").
    pub teams: Vec<Arc<str>>,
}

impl<'a> Deployment<'a> {
    fn new(day: NaiveDate, source: Source<'a>) -> Self {
        Self {
            day,
            source,
            failed_by_version: false,
            failed_by_time: false,
            failed_by_transition: false,
            rework: false,
            causes: Vec::new(),
            teams: Vec::new(),
        }
    }

    /// The week it counts in.
    pub fn week(&self) -> IsoWeek {
        IsoWeek::of_date(self.day)
    }

    /// Whether at least one failure was attributed to it, in any way.
    pub fn failed(&self) -> bool {
        self.failed_by_version || self.failed_by_time || self.failed_by_transition
    }

    fn caused_by(&mut self, issue: &'a IssueFacts, how: Attribution) {
        if !self.causes.iter().any(|&(i, h)| std::ptr::eq(i, issue) && h == how) {
            self.causes.push((issue, how));
        }
    }
}

/// A failure (not excluded, `is_failure` true) to attribute.
struct Failure<'a> {
    issue: &'a IssueFacts,
    /// `failure_window_days`, asked only when it names no affected version.
    window_days: u32,
}

/// Attributes each failure to deployments, by affected version or else by
/// time (`docs/metrics.md`, "Deployments and change failure"); returns,
/// per failure, how it was attributed (`None`: to no deployment).
fn attribute_failures<'a>(
    deployments: &mut [Deployment<'a>],
    failures: &[Failure<'a>],
    tz: Tz,
) -> Vec<Option<Attribution>> {
    let version_deployments: HashMap<&str, usize> = deployments
        .iter()
        .enumerate()
        .filter_map(|(i, d)| match d.source {
            Source::Version(v) => Some((v.id.as_str(), i)),
            Source::Transition(..) => None,
        })
        .collect();
    // Deployment indices by day, for the windows.
    let mut by_day: Vec<usize> = (0..deployments.len()).collect();
    by_day.sort_by_key(|&i| deployments[i].day);

    failures
        .iter()
        .map(|failure| {
            let issue = failure.issue;
            if !issue.affected_versions().is_empty() {
                let mut attributed = None;
                for id in issue.affected_versions() {
                    if let Some(&i) = version_deployments.get(id.as_str()) {
                        deployments[i].failed_by_version = true;
                        deployments[i].caused_by(issue, Attribution::ByVersion);
                        attributed = Some(Attribution::ByVersion);
                    }
                }
                return attributed;
            }
            if failure.window_days == 0 {
                return None;
            }
            let created_day = local_date(issue.created, tz);
            let first_day = created_day - Duration::days(i64::from(failure.window_days) - 1);
            let is_candidate = |d: &Deployment<'_>| match d.source {
                // A hotfix for the failure is not its cause.
                Source::Version(v) => !issue.fix_versions().iter().any(|fix| fix.as_str() == v.id),
                Source::Transition(_, at) => at <= issue.created,
            };
            let start = by_day.partition_point(|&i| deployments[i].day < first_day);
            let end = by_day.partition_point(|&i| deployments[i].day <= created_day);
            let window = &by_day[start..end];
            let culprit_day = window.iter().rev().map(|&i| &deployments[i]).find(|d| is_candidate(d)).map(|d| d.day)?;
            let on_culprit_day: Vec<usize> = window
                .iter()
                .rev()
                .copied()
                .skip_while(|&i| deployments[i].day > culprit_day)
                .take_while(|&i| deployments[i].day == culprit_day)
                .filter(|&i| is_candidate(&deployments[i]))
                .collect();
            for i in on_culprit_day {
                deployments[i].failed_by_time = true;
                deployments[i].caused_by(issue, Attribution::ByTime);
            }
            Some(Attribution::ByTime)
        })
        .collect()
}

/// Marks as rework every version deployment listed among the fix versions
/// of the given issues.
fn mark_rework<'a>(deployments: &mut [Deployment<'a>], fixing: impl Iterator<Item = &'a IssueFacts>) {
    let mut fixed: HashMap<&str, Vec<&'a IssueFacts>> = HashMap::new();
    for issue in fixing {
        for id in issue.fix_versions() {
            fixed.entry(id.as_str()).or_default().push(issue);
        }
    }
    for d in deployments {
        if let Source::Version(v) = d.source {
            for &issue in fixed.get(v.id.as_str()).into_iter().flatten() {
                d.rework = true;
                d.caused_by(issue, Attribution::ReworkFix);
            }
        }
    }
}

/// Calls `f` with the views of all of a project's issues (statuses and
/// version names resolved, as the hooks see them), in facts order. For
/// comparing classifications and for benchmarks.
pub fn with_issue_views<R>(facts: &ProjectFacts, f: impl FnOnce(&[IssueView<'_>]) -> R) -> R {
    let statuses = StatusTable::new(facts);
    let version_names: HashMap<&str, &str> = facts.versions.iter().map(|v| (v.id.as_str(), v.name.as_str())).collect();
    let views: Vec<IssueView<'_>> =
        facts.issues.iter().map(|issue| resolve_issue(issue, &statuses, &version_names).view).collect();
    f(&views)
}

/// Status-based deployments: each deployment transition, failed when a
/// failure transition follows it before the issue's next deployment
/// transition.
fn add_transition_deployments<'a>(
    facts: &'a IssueFacts,
    issue: &ResolvedIssue<'_>,
    class: &IssueClass,
    tz: Tz,
    deployments: &mut Vec<Deployment<'a>>,
) {
    let deploys = &class.deployment_transitions;
    for (n, &i) in deploys.iter().enumerate() {
        let next = deploys.get(n + 1).copied().unwrap_or(usize::MAX);
        let at = issue.view.transitions[i].at;
        let mut deployment = Deployment::new(local_date(at, tz), Source::Transition(facts, at));
        deployment.failed_by_transition = class.failure_transitions.iter().any(|&f| f > i && f < next);
        if deployment.failed_by_transition {
            deployment.caused_by(facts, Attribution::ByTransition);
        }
        deployment.teams = class.teams.to_vec();
        deployments.push(deployment);
    }
}

/// When an incident was restored: at the first restore change, or, without
/// any status change, at its resolution date when done; `None` while open.
fn restore(issue: &ResolvedIssue<'_>, class: &IssueClass) -> Option<Millis> {
    match class.restore {
        Some(i) => Some(issue.view.transitions[i].at),
        None if issue.view.transitions.is_empty() && issue.view.status_category == StatusCategory::Done => {
            issue.facts.resolved
        }
        None => None,
    }
}

/// A completed work item: lead time from work start (or creation) to
/// completion, and whether it was re-opened.
fn completed_work(issue: &ResolvedIssue<'_>, class: &IssueClass, done_at: Millis) -> CompletedWork {
    let created = issue.facts.created;
    let mut start = class.work_start.map_or(created, |i| issue.view.transitions[i].at);
    let mut lead = done_at - start;
    if lead < 0 {
        start = created;
        lead = (done_at - created).max(0);
    }
    let reopened = issue
        .view
        .transitions
        .iter()
        .any(|t| t.from_category == StatusCategory::Done && t.to_category != StatusCategory::Done);
    CompletedWork { start, done: done_at, lead, reopened }
}
