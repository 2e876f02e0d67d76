//! From one project's facts to its weekly aggregates.
//!
//! `build_project` resolves ids to names and categories, asks the hooks
//! about each issue and version (`classify`), derives the per-issue events
//! of `docs/metrics.md` (completion, lead time, re-open, incident, restore,
//! deployments and their failure and rework) and adds each to the week it
//! belongs to. The result holds counts and duration sketches only: no issue
//! ids, keys, labels or names.

use std::collections::{BTreeMap, HashMap, HashSet};

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

    let mut failed_versions: HashSet<&str> = HashSet::new();
    let mut rework_versions: HashSet<&str> = HashSet::new();

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
            failed_versions.extend(issue.affected_versions.iter().map(String::as_str));
        }
        if class.failure || class.incident {
            rework_versions.extend(issue.fix_versions.iter().map(String::as_str));
        }
        add_transition_deployments(&resolved, &class, tz, &mut weeks);
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
        let Some(date) = version.release_date else { continue };
        let agg = at_week(&mut weeks, IsoWeek::of_date(date));
        agg.deployments += 1;
        agg.deployment_days |= 1 << weekday_index(date);
        agg.failed_deployments += u32::from(failed_versions.contains(version.id.as_str()));
        agg.rework_deployments += u32::from(rework_versions.contains(version.id.as_str()));
    }
    Ok(weeks)
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
fn add_transition_deployments(
    issue: &ResolvedIssue<'_>,
    class: &IssueClass,
    tz: Tz,
    weeks: &mut ProjectAggregates,
) {
    let deploys = &class.deployment_transitions;
    for (n, &i) in deploys.iter().enumerate() {
        let next = deploys.get(n + 1).copied().unwrap_or(usize::MAX);
        let failed = class.failure_transitions.iter().any(|&f| f > i && f < next);
        let at = issue.view.transitions[i].at;
        let agg = at_week(weeks, IsoWeek::of_instant(at, tz));
        agg.deployments += 1;
        agg.deployment_days |= 1 << weekday_index(local_date(at, tz));
        agg.failed_deployments += u32::from(failed);
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
