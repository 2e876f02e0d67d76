//! From one project's facts to its weekly aggregates.
//!
//! `build_project` resolves ids to names and categories, asks the hooks
//! about each issue and version (`classify`), derives the per-issue events
//! of `docs/metrics.md` (completion, lead time, re-open, incident, restore),
//! lists the project's deployments, attributes each failure to deployments
//! (by affected version, else by time) and marks rework, and adds each to
//! the week it belongs to. The result holds counts and duration sketches
//! only: no issue ids, keys, labels or names.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::classify::{classify_issue, HookError, Hooks, IssueClass, IssueView, TransitionView, VersionView};
use super::facts::{IssueFacts, Millis, ProjectFacts, StatusCategory, StatusRef};
use super::sketch::DurationSketch;
use super::time::{local_date, weekday_index, IsoWeek};

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
    let status_category = if statuses.by_id.contains_key(issue.status.id.as_str()) {
        by_id_category
    } else {
        issue.status_category
    };
    let names = |ids: &'a [String]| ids.iter().filter_map(|id| version_names.get(id.as_str()).copied()).collect();
    let transitions = issue
        .changes
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
            labels: &issue.labels,
            status,
            status_category,
            created: issue.created,
            resolved: issue.resolved,
            fix_versions: names(&issue.fix_versions),
            affected_versions: names(&issue.affected_versions),
            app_changes: issue.changes.iter().filter(|c| c.by_app).count() as u32,
            components: &issue.components,
            priority: issue.priority.as_deref(),
            fields: &issue.fields,
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
    let fail = |source| ClassifyError { project: facts.key.clone(), source };
    let statuses = StatusTable::new(facts);
    let version_names: HashMap<&str, &str> = facts.versions.iter().map(|v| (v.id.as_str(), v.name.as_str())).collect();
    let mut weeks = ProjectAggregates::new();
    let mut deployments = Vec::new();
    let mut failures = Vec::new();
    // Their fix versions are rework, as are those of the failures
    // attributed to some deployment.
    let mut incidents: Vec<&IssueFacts> = Vec::new();

    for issue in &facts.issues {
        let resolved = resolve_issue(issue, &statuses, &version_names);
        let class = classify_issue(hooks, &resolved.view).map_err(fail)?;
        let completed_at = completion(&resolved);
        if class.excluded {
            if let Some(at) = completed_at {
                at_week(&mut weeks, IsoWeek::of_instant(at, tz)).excluded += 1;
            }
            continue;
        }
        if class.failure {
            failures.push(Failure { issue, window_days: class.failure_window_days });
        }
        if class.incident {
            incidents.push(issue);
        }
        add_transition_deployments(&resolved, &class, tz, &mut deployments);
        if class.incident {
            add_incident(&resolved, &class, tz, &mut weeks);
        } else if let Some(done_at) = completed_at {
            add_completed_work(&resolved, &class, done_at, tz, &mut weeks);
        }
    }

    for version in &facts.versions {
        if !hooks.is_deployment(&VersionView::of(version)).map_err(fail)? {
            continue;
        }
        // A deployment needs a day to be placed on; a custom rule that
        // accepts undated versions cannot count them.
        let Some(day) = version.release_date else { continue };
        deployments.push(Deployment::new(day, Source::Version(&version.id)));
    }

    let attributed = attribute_failures(&mut deployments, &failures, tz);
    let rework_fixes = incidents
        .into_iter()
        .chain(failures.iter().zip(&attributed).filter(|&(_, &a)| a).map(|(f, _)| f.issue));
    mark_rework(&mut deployments, rework_fixes);

    for d in &deployments {
        let agg = at_week(&mut weeks, IsoWeek::of_date(d.day));
        agg.deployments += 1;
        agg.deployment_days |= 1 << weekday_index(d.day);
        agg.failed_deployments += u32::from(d.failed_by_version || d.failed_by_time || d.failed_by_transition);
        agg.failed_by_version += u32::from(d.failed_by_version);
        agg.failed_by_time += u32::from(d.failed_by_time);
        agg.failed_by_transition += u32::from(d.failed_by_transition);
        agg.rework_deployments += u32::from(d.rework);
    }
    Ok(weeks)
}

/// Where a deployment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source<'a> {
    /// A version (by id), released on the deployment's day.
    Version(&'a str),
    /// A deployment transition at this instant.
    Transition(Millis),
}

/// One deployment of a project and what happened to it.
#[derive(Debug, Clone)]
struct Deployment<'a> {
    /// The release date of a version; the reporting-zone date of a
    /// transition.
    day: NaiveDate,
    source: Source<'a>,
    failed_by_version: bool,
    failed_by_time: bool,
    failed_by_transition: bool,
    rework: bool,
}

impl<'a> Deployment<'a> {
    fn new(day: NaiveDate, source: Source<'a>) -> Self {
        Self { day, source, failed_by_version: false, failed_by_time: false, failed_by_transition: false, rework: false }
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
/// per failure, whether it was attributed to at least one deployment.
fn attribute_failures(deployments: &mut [Deployment<'_>], failures: &[Failure<'_>], tz: Tz) -> Vec<bool> {
    let version_deployments: HashMap<&str, usize> = deployments
        .iter()
        .enumerate()
        .filter_map(|(i, d)| match d.source {
            Source::Version(id) => Some((id, i)),
            Source::Transition(_) => None,
        })
        .collect();
    // Deployment indices by day, for the windows.
    let mut by_day: Vec<usize> = (0..deployments.len()).collect();
    by_day.sort_by_key(|&i| deployments[i].day);

    failures
        .iter()
        .map(|failure| {
            let issue = failure.issue;
            if !issue.affected_versions.is_empty() {
                let mut attributed = false;
                for id in &issue.affected_versions {
                    if let Some(&i) = version_deployments.get(id.as_str()) {
                        deployments[i].failed_by_version = true;
                        attributed = true;
                    }
                }
                return attributed;
            }
            if failure.window_days == 0 {
                return false;
            }
            let created_day = local_date(issue.created, tz);
            let first_day = created_day - Duration::days(i64::from(failure.window_days) - 1);
            let is_candidate = |d: &Deployment<'_>| match d.source {
                // A hotfix for the failure is not its cause.
                Source::Version(id) => !issue.fix_versions.iter().any(|fix| fix == id),
                Source::Transition(at) => at <= issue.created,
            };
            let start = by_day.partition_point(|&i| deployments[i].day < first_day);
            let end = by_day.partition_point(|&i| deployments[i].day <= created_day);
            let window = &by_day[start..end];
            let Some(culprit_day) =
                window.iter().rev().map(|&i| &deployments[i]).find(|d| is_candidate(d)).map(|d| d.day)
            else {
                return false;
            };
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
            }
            true
        })
        .collect()
}

/// Marks as rework every version deployment listed among the fix versions
/// of the given issues.
fn mark_rework<'a>(deployments: &mut [Deployment<'_>], fixing: impl Iterator<Item = &'a IssueFacts>) {
    let fixed: HashSet<&str> = fixing.flat_map(|issue| issue.fix_versions.iter().map(String::as_str)).collect();
    for d in deployments {
        if let Source::Version(id) = d.source {
            d.rework |= fixed.contains(id);
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
    issue: &ResolvedIssue<'_>,
    class: &IssueClass,
    tz: Tz,
    deployments: &mut Vec<Deployment<'a>>,
) {
    let deploys = &class.deployment_transitions;
    for (n, &i) in deploys.iter().enumerate() {
        let next = deploys.get(n + 1).copied().unwrap_or(usize::MAX);
        let at = issue.view.transitions[i].at;
        let mut deployment = Deployment::new(local_date(at, tz), Source::Transition(at));
        deployment.failed_by_transition = class.failure_transitions.iter().any(|&f| f > i && f < next);
        deployments.push(deployment);
    }
}

/// An incident counts in its creation week; its restore (or, without any
/// status change, its resolution date when done) in the restore week;
/// otherwise it is open.
fn add_incident(
    issue: &ResolvedIssue<'_>,
    class: &IssueClass,
    tz: Tz,
    weeks: &mut ProjectAggregates,
) {
    let created = issue.facts.created;
    let restored_at = match class.restore {
        Some(i) => Some(issue.view.transitions[i].at),
        None if issue.view.transitions.is_empty() && issue.view.status_category == StatusCategory::Done => {
            issue.facts.resolved
        }
        None => None,
    };
    let created_week = IsoWeek::of_instant(created, tz);
    at_week(weeks, created_week).incidents += 1;
    match restored_at {
        Some(at) => at_week(weeks, IsoWeek::of_instant(at, tz)).time_to_restore.add(at - created),
        None => at_week(weeks, created_week).open_incidents += 1,
    }
}

/// A completed work item: lead time from work start (or creation) to
/// completion, re-open and AI involvement, all in the completion week.
fn add_completed_work(
    issue: &ResolvedIssue<'_>,
    class: &IssueClass,
    done_at: Millis,
    tz: Tz,
    weeks: &mut ProjectAggregates,
) {
    let created = issue.facts.created;
    let start = class.work_start.map_or(created, |i| issue.view.transitions[i].at);
    let mut lead = done_at - start;
    if lead < 0 {
        lead = (done_at - created).max(0);
    }
    let reopened = issue
        .view
        .transitions
        .iter()
        .any(|t| t.from_category == StatusCategory::Done && t.to_category != StatusCategory::Done);
    let agg = at_week(weeks, IsoWeek::of_instant(done_at, tz));
    agg.completed += 1;
    agg.lead_time.add(lead);
    agg.reopened += u32::from(reopened);
    if class.ai_involved {
        agg.ai_involved += 1;
        agg.lead_time_ai.add(lead);
        agg.reopened_ai += u32::from(reopened);
    }
}
