//! One test per rule of `docs/metrics.md`, on small hand-computed cases,
//! through the pure engine: facts → `build_project` (default rules) →
//! `Totals` → figures.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use jira_dora::domain::aggregate::{ProjectAggregates, build_project};
use jira_dora::domain::classify::{DefaultRules, HookError, Hooks, IssueView, TransitionView, VersionView};
use jira_dora::domain::facts::*;
use jira_dora::domain::period::*;
use jira_dora::domain::time::IsoWeek;

const UTC: Tz = chrono_tz::UTC;

fn t(s: &str) -> Millis {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn statuses() -> Vec<StatusFacts> {
    let s = |id: &str, name: &str, c| StatusFacts { id: id.into(), name: name.into(), category: c };
    vec![
        s("1", "To Do", StatusCategory::New),
        s("3", "In Progress", StatusCategory::Indeterminate),
        s("4", "In Review", StatusCategory::Indeterminate),
        s("10", "Done", StatusCategory::Done),
        s("11", "Closed", StatusCategory::Done),
        s("20", "Rolled Back", StatusCategory::Indeterminate),
        s("21", "Deployed", StatusCategory::Done),
    ]
}

fn status(id: &str) -> Status {
    let name = statuses().into_iter().find(|s| s.id == id).map(|s| s.name).unwrap_or_else(|| format!("gone-{id}"));
    StatusRef { id: id.into(), name: name.into() }.into()
}

/// Appends to a boxed list of facts.
fn push<T: Clone>(list: &mut Box<[T]>, item: T) {
    let mut v = list.to_vec();
    v.push(item);
    *list = v.into();
}

/// A small issue builder: `issue("Story", "2026-01-05T10:00:00Z")` then
/// `.go("3", at)` for each status change.
#[derive(Clone)]
struct I(IssueDraft);

fn issue(kind: &str, created: &str) -> I {
    let id = fastrand::u64(..);
    I(IssueDraft {
        id: IssueId(id),
        key: IssueKey { project: "P".into(), number: id as u32 },
        project: "P".into(),
        issue_type: kind.into(),
        is_subtask: false,
        labels: [].into(),
        created: t(created),
        updated: t(created),
        resolved: None,
        status: status("1"),
        status_category: StatusCategory::New,
        fix_versions: [].into(),
        affected_versions: [].into(),
        components: [].into(),
        priority: None,
        fields: [].into(),
        changes: [].into(),
    })
}

impl I {
    fn go(self, to: &str, at: &str) -> Self {
        self.go_by(to, at, false)
    }
    fn go_by(mut self, to: &str, at: &str, by_app: bool) -> Self {
        let from = self.0.status.clone();
        let to_ref = status(to);
        push(&mut self.0.changes, StatusChange { at: t(at), from, to: to_ref.clone(), by_app });
        let cat = statuses().into_iter().find(|s| s.id == to).map_or(StatusCategory::Undefined, |s| s.category);
        self.0.status = to_ref;
        self.0.status_category = cat;
        self
    }
    /// Sets the current status without a changelog entry.
    fn now_in(mut self, to: &str) -> Self {
        self.0.status = status(to);
        self.0.status_category = statuses().into_iter().find(|s| s.id == to).unwrap().category;
        self
    }
    fn resolved(mut self, at: &str) -> Self {
        self.0.resolved = Some(t(at));
        self
    }
    fn label(mut self, l: &str) -> Self {
        push(&mut self.0.labels, l.into());
        self
    }
    fn subtask(mut self) -> Self {
        self.0.is_subtask = true;
        self
    }
    fn affects(mut self, v: &str) -> Self {
        push(&mut self.0.affected_versions, v.into());
        self
    }
    fn fixes(mut self, v: &str) -> Self {
        push(&mut self.0.fix_versions, v.into());
        self
    }
}

fn version(id: &str, released: bool, date: Option<&str>) -> VersionFacts {
    VersionFacts {
        id: id.into(),
        name: format!("v{id}"),
        released,
        release_date: date.map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()),
        archived: false,
    }
}

fn project(issues: Vec<I>, versions: Vec<VersionFacts>) -> ProjectFacts {
    ProjectFacts::new("P", issues.into_iter().map(|i| i.0), versions, statuses())
}

fn aggregates(issues: Vec<I>, versions: Vec<VersionFacts>, tz: Tz) -> ProjectAggregates {
    build_project(&project(issues, versions), &DefaultRules, tz).unwrap()
}

fn week(name: &str) -> IsoWeek {
    IsoWeek::parse(name).unwrap()
}

/// Figures of one project over weeks `from..=to`.
fn figures(aggs: &ProjectAggregates, from: &str, to: &str) -> PeriodFigures {
    let (a, b) = (week(from), week(to));
    Totals::over(&[aggs], (0..=a.weeks_until(b)).map(|i| a.plus(i))).figures()
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

// ------------------------------------------------------------ completion

#[test]
fn completion_is_the_start_of_the_final_stay_in_done() {
    // Done in W02, re-opened, done again in W03, then Done → Closed in W04:
    // completed in W03 (the Closed move stays inside `done`).
    let i = issue("Story", "2026-01-05T09:00:00Z")
        .go("3", "2026-01-06T09:00:00Z")
        .go("10", "2026-01-07T09:00:00Z")
        .go("3", "2026-01-12T09:00:00Z")
        .go("10", "2026-01-13T09:00:00Z")
        .go("11", "2026-01-20T09:00:00Z");
    let a = aggregates(vec![i], vec![], UTC);
    assert_eq!(figures(&a, "2026-W03", "2026-W03").completed, 1);
    assert_eq!(figures(&a, "2026-W02", "2026-W02").completed, 0);
    assert_eq!(figures(&a, "2026-W04", "2026-W04").completed, 0);
    // Lead time from the first work start (Jan 6) to the completion (Jan 13).
    assert!(close(figures(&a, "2026-W03", "2026-W03").lead_time.median_hours, 7.0 * 24.0));
}

#[test]
fn completion_without_a_done_change_uses_resolutiondate_then_created() {
    let by_resolution = issue("Task", "2026-01-05T09:00:00Z").now_in("10").resolved("2026-01-14T09:00:00Z");
    let by_created = issue("Task", "2026-01-19T09:00:00Z").now_in("10");
    let a = aggregates(vec![by_resolution, by_created], vec![], UTC);
    let w3 = figures(&a, "2026-W03", "2026-W03");
    assert_eq!(w3.completed, 1);
    // No work start: lead time from creation.
    assert!(close(w3.lead_time.median_hours, 9.0 * 24.0));
    let w4 = figures(&a, "2026-W04", "2026-W04");
    assert_eq!(w4.completed, 1);
    assert!(close(w4.lead_time.median_hours, 0.0));
}

#[test]
fn an_issue_not_in_done_now_is_not_completed() {
    let i = issue("Story", "2026-01-05T09:00:00Z").go("10", "2026-01-06T09:00:00Z").go("3", "2026-01-07T09:00:00Z");
    let a = aggregates(vec![i], vec![], UTC);
    assert_eq!(figures(&a, "2026-W01", "2026-W10").completed, 0);
}

// ------------------------------------------------------------- exclusion

#[test]
fn excluded_issues_count_only_as_excluded_in_their_completion_week() {
    let epic = issue("Epic", "2026-01-05T09:00:00Z").go("10", "2026-01-06T09:00:00Z");
    let sub = issue("Sub-task", "2026-01-05T09:00:00Z").subtask().go("10", "2026-01-07T09:00:00Z");
    let labelled =
        issue("Bug", "2026-01-05T09:00:00Z").label("DORA-Exclude").affects("v1").go("10", "2026-01-07T09:00:00Z");
    let open_epic = issue("epic", "2026-01-05T09:00:00Z");
    let excluded_incident = issue("Incident", "2026-01-05T09:00:00Z").label("dora-exclude");
    let a = aggregates(
        vec![epic, sub, labelled, open_epic, excluded_incident],
        vec![version("v1", true, Some("2026-01-06"))],
        UTC,
    );
    let f = figures(&a, "2026-W02", "2026-W02");
    assert_eq!(f.excluded, 3);
    assert_eq!(f.completed, 0);
    assert_eq!(f.incidents, 0);
    assert_eq!(f.lead_time.count, 0);
    // The excluded bug does not fail the release it affects.
    assert_eq!((f.deployments, f.change_failure.part), (1, 0));
}

// ------------------------------------------------------------- lead time

#[test]
fn lead_time_runs_from_the_first_work_start_to_completion() {
    let i = issue("Story", "2026-01-05T00:00:00Z")
        .go("3", "2026-01-05T10:00:00Z")
        .go("4", "2026-01-05T12:00:00Z")
        .go("3", "2026-01-05T14:00:00Z")
        .go("10", "2026-01-05T20:00:00Z");
    let a = aggregates(vec![i], vec![], UTC);
    let f = figures(&a, "2026-W02", "2026-W02");
    assert!(close(f.lead_time.median_hours, 10.0));
    assert_eq!(f.levels.lead_time, Level::Elite);
}

#[test]
fn a_negative_lead_time_falls_back_to_created_and_clamps_at_zero() {
    // Work started (In Progress) after it was done: start > completion.
    let i = issue("Story", "2026-01-05T00:00:00Z")
        .go("10", "2026-01-05T06:00:00Z")
        .go("3", "2026-01-05T08:00:00Z")
        .go("21", "2026-01-05T09:00:00Z");
    // Completion is the last move into done (09:00); the first work start is
    // 08:00, so the lead time is 1 h: positive, no fallback.
    let a = aggregates(vec![i], vec![], UTC);
    assert!(close(figures(&a, "2026-W02", "2026-W02").lead_time.median_hours, 1.0));

    // A work start after completion: the only indeterminate move happened
    // via a change recorded later than the resolution date used.
    let j = issue("Story", "2026-01-05T00:00:00Z")
        .go("3", "2026-01-06T00:00:00Z")
        .now_in("10")
        .resolved("2026-01-05T12:00:00Z");
    let a = aggregates(vec![j], vec![], UTC);
    assert!(close(figures(&a, "2026-W02", "2026-W02").lead_time.median_hours, 12.0));

    // Resolution before creation (clock skew): clamped at 0.
    let k = issue("Story", "2026-01-05T12:00:00Z").now_in("10").resolved("2026-01-05T11:00:00Z");
    let a = aggregates(vec![k], vec![], UTC);
    assert!(close(figures(&a, "2026-W02", "2026-W02").lead_time.median_hours, 0.0));
}

#[test]
fn lead_time_median_of_an_even_count_is_the_mean_of_the_middle_two() {
    let mk = |h: u32| {
        issue("Story", "2026-01-05T00:00:00Z")
            .go("3", "2026-01-05T00:00:00Z")
            .go("10", &format!("2026-01-0{}T{:02}:00:00Z", 5 + h / 24, h % 24))
    };
    let a = aggregates(vec![mk(2), mk(4), mk(10), mk(30)], vec![], UTC);
    let f = figures(&a, "2026-W02", "2026-W02");
    assert_eq!(f.lead_time.count, 4);
    assert!(close(f.lead_time.median_hours, 7.0));
    assert!(close(f.lead_time.p75_hours, 15.0));
    assert!(close(f.lead_time.p90_hours, 24.0));
}

// ---------------------------------------------------------- re-open, AI

#[test]
fn reopened_means_a_change_out_of_done_and_counts_in_the_completion_week() {
    let reopened = issue("Story", "2026-01-05T00:00:00Z")
        .go("10", "2026-01-06T00:00:00Z")
        .go("1", "2026-01-07T00:00:00Z")
        .go("10", "2026-01-13T00:00:00Z");
    let closed_only =
        issue("Story", "2026-01-05T00:00:00Z").go("10", "2026-01-13T00:00:00Z").go("11", "2026-01-14T00:00:00Z");
    let a = aggregates(vec![reopened, closed_only], vec![], UTC);
    let f = figures(&a, "2026-W03", "2026-W03");
    assert_eq!((f.completed, f.reopened), (2, 1));
    assert_eq!(f.reopen_rate, Some(0.5));
    assert_eq!(figures(&a, "2026-W02", "2026-W02").reopened, 0);
}

#[test]
fn ai_involved_means_an_app_status_change_the_ai_assisted_label_or_an_ai_task() {
    let by_app = issue("Story", "2026-01-05T00:00:00Z")
        .go_by("3", "2026-01-05T01:00:00Z", true)
        .go("10", "2026-01-06T00:00:00Z");
    let labelled = issue("Task", "2026-01-05T00:00:00Z").label("AI-Assisted").go("10", "2026-01-06T00:00:00Z");
    let ai_task = issue("AI task", "2026-01-05T00:00:00Z").go("10", "2026-01-06T00:00:00Z");
    let human = issue("Task", "2026-01-05T00:00:00Z").go("10", "2026-01-06T00:00:00Z");
    let open_by_app = issue("Task", "2026-01-05T00:00:00Z").go_by("3", "2026-01-05T01:00:00Z", true);
    let a = aggregates(vec![by_app, labelled, ai_task, human, open_by_app], vec![], UTC);
    let f = figures(&a, "2026-W02", "2026-W02");
    assert_eq!((f.completed, f.ai_involved), (4, 3));
    assert!(close(f.ai_share, 3.0 / 4.0));
}

#[test]
fn rates_over_nothing_are_undefined_not_zero() {
    let a = aggregates(vec![], vec![], UTC);
    let f = figures(&a, "2026-W02", "2026-W05");
    assert_eq!((f.reopen_rate, f.ai_share, f.change_failure.rate(), f.rework.rate()), (None, None, None, None));
    assert_eq!(f.lead_time.median_hours, None);
    assert_eq!(f.time_to_restore.median_hours, None);
    assert_eq!(f.deployments_per_week, 0.0);
    let l = f.levels;
    assert_eq!([l.deployment_frequency, l.lead_time, l.change_failure_rate, l.time_to_restore], [Level::Unknown; 4]);
}

// ------------------------------------------------------------- incidents

#[test]
fn incidents_are_not_work_items() {
    let inc =
        issue("Incident", "2026-01-05T00:00:00Z").go("3", "2026-01-05T01:00:00Z").go("10", "2026-01-05T03:00:00Z");
    let labelled = issue("Task", "2026-01-05T00:00:00Z").label("Incident").go("10", "2026-01-05T05:00:00Z");
    let a = aggregates(vec![inc, labelled], vec![], UTC);
    let f = figures(&a, "2026-W02", "2026-W02");
    assert_eq!((f.incidents, f.completed, f.lead_time.count, f.ai_involved), (2, 0, 0, 0));
    // Restored at the first move into done: 3 h and 5 h.
    assert_eq!(f.time_to_restore.count, 2);
    assert!(close(f.time_to_restore.median_hours, 4.0));
    assert_eq!(f.levels.time_to_restore, Level::High);
}

#[test]
fn restore_is_the_first_restoring_change_strictly_after_creation_in_its_own_week() {
    // Created Sunday of W02; a done move at the very creation instant does
    // not count; restored Monday (W03).
    let inc = issue("Incident", "2026-01-11T22:00:00Z")
        .go("10", "2026-01-11T22:00:00Z")
        .go("3", "2026-01-11T23:00:00Z")
        .go("10", "2026-01-12T02:00:00Z")
        .go("3", "2026-01-12T05:00:00Z")
        .go("10", "2026-01-12T09:00:00Z");
    let a = aggregates(vec![inc], vec![], UTC);
    let w2 = figures(&a, "2026-W02", "2026-W02");
    let w3 = figures(&a, "2026-W03", "2026-W03");
    assert_eq!((w2.incidents, w2.time_to_restore.count, w2.open_incidents), (1, 0, 0));
    assert_eq!((w3.incidents, w3.time_to_restore.count), (0, 1));
    assert!(close(w3.time_to_restore.median_hours, 4.0));
}

#[test]
fn an_incident_without_status_changes_ends_at_its_resolution_date_when_done() {
    let resolved = issue("Incident", "2026-01-05T00:00:00Z").now_in("10").resolved("2026-01-05T00:30:00Z");
    let done_no_date = issue("Incident", "2026-01-05T00:00:00Z").now_in("10");
    let open = issue("Incident", "2026-01-05T00:00:00Z").go("3", "2026-01-05T01:00:00Z");
    let open_untouched = issue("Incident", "2026-01-06T00:00:00Z").resolved("2026-01-06T01:00:00Z");
    let a = aggregates(vec![resolved, done_no_date, open, open_untouched], vec![], UTC);
    let f = figures(&a, "2026-W02", "2026-W02");
    assert_eq!((f.incidents, f.time_to_restore.count, f.open_incidents), (4, 1, 3));
    assert!(close(f.time_to_restore.median_hours, 0.5));
    assert_eq!(f.levels.time_to_restore, Level::Elite);
}

// ----------------------------------------------------------- deployments

#[test]
fn deployments_are_released_versions_with_a_date_in_the_date_s_own_week() {
    let versions = vec![
        version("v1", true, Some("2026-01-05")),  // Monday W02
        version("v2", true, Some("2026-01-11")),  // Sunday W02
        version("v3", true, None),                // released, no date: not a deployment
        version("v4", false, Some("2026-01-06")), // unreleased
        version("v5", true, Some("2026-01-05")),  // same day as v1
    ];
    // A far-west reporting zone does not move a release date.
    let a = aggregates(vec![], versions, chrono_tz::Pacific::Honolulu);
    let f = figures(&a, "2026-W02", "2026-W02");
    assert_eq!((f.deployments, f.deployment_days), (3, 2));
    assert_eq!(f.deployments_per_week, 3.0);
    assert_eq!(f.levels.deployment_frequency, Level::High);
}

#[test]
fn a_version_fails_when_a_failure_issue_affects_it_whenever_created() {
    let versions = vec![
        version("v1", true, Some("2026-01-05")),
        version("v2", true, Some("2026-01-06")),
        version("v3", true, Some("2026-01-07")),
    ];
    let issues = vec![
        // A bug filed a year later still fails v1.
        issue("Bug", "2027-01-05T00:00:00Z").affects("v1"),
        // A Story affecting v2 is not a failure.
        issue("Story", "2026-01-06T00:00:00Z").affects("v2"),
        // A bug with no affected version is a failure attributed to no
        // deployment (bugs have no failure window): its fix of v3 is not
        // rework.
        issue("bug", "2026-01-06T00:00:00Z").fixes("v3"),
        // A failure fixed in v2 makes v2 rework.
        issue("BUG", "2026-01-06T00:00:00Z").affects("v1").fixes("v2"),
    ];
    let a = aggregates(issues, versions, UTC);
    let f = figures(&a, "2026-W02", "2026-W02");
    assert_eq!((f.change_failure.part, f.change_failure.whole), (1, 3));
    assert!(close(f.change_failure.rate(), 1.0 / 3.0));
    assert_eq!((f.rework.part, f.rework.whole), (1, 3));
    assert_eq!(f.levels.change_failure_rate, Level::Low);
}

#[test]
fn an_incident_fixed_in_a_version_makes_it_rework() {
    let versions = vec![version("v1", true, Some("2026-01-05"))];
    let a = aggregates(vec![issue("Incident", "2026-01-05T00:00:00Z").fixes("v1")], versions, UTC);
    assert_eq!(figures(&a, "2026-W02", "2026-W02").rework.part, 1);
}

/// The default rules with two knobs: status-based deployments (a move to
/// "Deployed" is a deployment; a later "Rolled Back" before the next
/// deployment fails it) and one failure window for every failure.
struct Rules {
    versions: bool,
    deploy_status: bool,
    window: Option<u32>,
}

const STATUS_DEPLOYS: Rules = Rules { versions: false, deploy_status: true, window: None };
const BOTH_DEPLOYS: Rules = Rules { versions: true, deploy_status: true, window: None };

fn every_failure_within(days: u32) -> Rules {
    Rules { versions: true, deploy_status: false, window: Some(days) }
}

impl Hooks for Rules {
    type Issue = <DefaultRules as Hooks>::Issue;
    type Transition = (String, <DefaultRules as Hooks>::Transition);
    fn prepare_issue(&self, i: &IssueView<'_>) -> Self::Issue {
        DefaultRules.prepare_issue(i)
    }
    fn prepare_transition(&self, t: &TransitionView<'_>) -> Self::Transition {
        (t.to.to_owned(), DefaultRules.prepare_transition(t))
    }
    fn is_excluded(&self, i: &Self::Issue) -> Result<bool, HookError> {
        DefaultRules.is_excluded(i)
    }
    fn is_deployment(&self, v: &VersionView<'_>) -> Result<bool, HookError> {
        Ok(self.versions && DefaultRules.is_deployment(v)?)
    }
    fn is_deployment_transition(&self, _: &Self::Issue, t: &Self::Transition) -> Result<bool, HookError> {
        Ok(self.deploy_status && t.0 == "Deployed")
    }
    fn is_failure(&self, i: &Self::Issue) -> Result<bool, HookError> {
        DefaultRules.is_failure(i)
    }
    fn is_failure_transition(&self, i: &Self::Issue, t: &Self::Transition) -> Result<bool, HookError> {
        DefaultRules.is_failure_transition(i, &t.1)
    }
    fn is_incident(&self, i: &Self::Issue) -> Result<bool, HookError> {
        DefaultRules.is_incident(i)
    }
    fn is_restore(&self, i: &Self::Issue, t: &Self::Transition) -> Result<bool, HookError> {
        DefaultRules.is_restore(i, &t.1)
    }
    fn is_work_start(&self, i: &Self::Issue, t: &Self::Transition) -> Result<bool, HookError> {
        DefaultRules.is_work_start(i, &t.1)
    }
    fn is_ai_involved(&self, i: &Self::Issue) -> Result<bool, HookError> {
        DefaultRules.is_ai_involved(i)
    }
    fn failure_window_days(&self, i: &Self::Issue) -> Result<u32, HookError> {
        self.window.map_or_else(|| DefaultRules.failure_window_days(i), Ok)
    }
}

#[test]
fn a_deployment_transition_fails_when_rolled_back_before_the_next_one() {
    let i = issue("Story", "2026-01-05T00:00:00Z")
        .go("21", "2026-01-05T10:00:00Z") // deploy 1 (Mon)
        .go("20", "2026-01-05T11:00:00Z") // rolled back: deploy 1 failed
        .go("21", "2026-01-06T10:00:00Z") // deploy 2 (Tue), never rolled back
        .go("10", "2026-01-07T10:00:00Z");
    let excluded = issue("Epic", "2026-01-05T00:00:00Z").go("21", "2026-01-08T10:00:00Z");
    let facts = project(vec![i, excluded], vec![version("v1", true, Some("2026-01-05"))]);
    let a = build_project(&facts, &STATUS_DEPLOYS, UTC).unwrap();
    let f = figures(&a, "2026-W02", "2026-W02");
    assert_eq!((f.deployments, f.deployment_days, f.change_failure.part), (2, 2, 1));
    assert_eq!(f.failed_by, FailedBy { version: 0, time: 0, transition: 1 });
    assert_eq!(f.rework.part, 0);
}

// ------------------------------------------------ attribution of failures

/// Per week of `from..=to`: (deployments, failed, failed by time).
fn failed_by_week(a: &ProjectAggregates, from: &str, to: &str) -> Vec<(u64, u64, u64)> {
    let (a0, b) = (week(from), week(to));
    (0..=a0.weeks_until(b))
        .map(|i| {
            let w = a0.plus(i).to_string();
            let f = figures(a, &w, &w);
            (f.deployments, f.change_failure.part, f.failed_by.time)
        })
        .collect()
}

#[test]
fn an_incident_without_affected_version_fails_the_latest_deployment_in_its_window() {
    // Releases on Fri Jan 2 (W01) and Tue Jan 6 (W02); the incident of
    // Wed Jan 14 (W03) looks back 14 days, to Jan 1: Jan 6 is the culprit.
    let versions = || vec![version("v1", true, Some("2026-01-02")), version("v2", true, Some("2026-01-06"))];
    let a = aggregates(vec![issue("Incident", "2026-01-14T10:00:00Z")], versions(), UTC);
    assert_eq!(failed_by_week(&a, "2026-W01", "2026-W03"), vec![(1, 0, 0), (1, 1, 1), (0, 0, 0)]);
    // A bug labelled `incident` too; a task so labelled is an incident but
    // no failure.
    let a = aggregates(vec![issue("Bug", "2026-01-14T10:00:00Z").label("incident")], versions(), UTC);
    assert_eq!(failed_by_week(&a, "2026-W01", "2026-W03"), vec![(1, 0, 0), (1, 1, 1), (0, 0, 0)]);
    let a = aggregates(vec![issue("Task", "2026-01-14T10:00:00Z").label("incident")], versions(), UTC);
    assert_eq!(failed_by_week(&a, "2026-W01", "2026-W03"), vec![(1, 0, 0), (1, 0, 0), (0, 0, 0)]);
    // Outside the window: an incident of Wed Jan 21 looks back to Jan 8.
    let a = aggregates(vec![issue("Incident", "2026-01-21T10:00:00Z")], versions(), UTC);
    let f = figures(&a, "2026-W01", "2026-W04");
    assert_eq!((f.deployments, f.change_failure.part, f.incidents), (2, 0, 1));
}

#[test]
fn the_window_is_whole_days_of_the_reporting_zone_ending_on_the_creation_day() {
    // 14 days ending Mon Jan 19 start on Tue Jan 6: the release of that
    // day is in, one of Jan 5 is out.
    let versions = || vec![version("v0", true, Some("2026-01-05")), version("v1", true, Some("2026-01-06"))];
    let a = aggregates(vec![issue("Incident", "2026-01-19T00:30:00Z")], versions(), UTC);
    assert_eq!(figures(&a, "2026-W02", "2026-W02").change_failure.part, 1);
    // Created on Jan 20: the window starts on Jan 7, nothing in it.
    let a = aggregates(vec![issue("Incident", "2026-01-20T00:30:00Z")], versions(), UTC);
    assert_eq!(figures(&a, "2026-W02", "2026-W02").change_failure.part, 0);
    // 23:30 UTC on Jan 19 is already Jan 20 in Berlin.
    let late = || vec![issue("Incident", "2026-01-19T23:30:00Z")];
    assert_eq!(figures(&aggregates(late(), versions(), UTC), "2026-W02", "2026-W02").change_failure.part, 1);
    let berlin = aggregates(late(), versions(), chrono_tz::Europe::Berlin);
    assert_eq!(figures(&berlin, "2026-W02", "2026-W02").change_failure.part, 0);
    // A release on the creation day itself is in (a date has no time).
    let a =
        aggregates(vec![issue("Incident", "2026-01-06T00:01:00Z")], vec![version("v1", true, Some("2026-01-06"))], UTC);
    assert_eq!(figures(&a, "2026-W02", "2026-W02").change_failure.part, 1);
    // A release after the creation day is not.
    let a =
        aggregates(vec![issue("Incident", "2026-01-05T23:59:00Z")], vec![version("v1", true, Some("2026-01-06"))], UTC);
    assert_eq!(figures(&a, "2026-W02", "2026-W02").change_failure.part, 0);
}

#[test]
fn every_deployment_of_the_culprit_day_is_attributed() {
    let versions = vec![
        version("v1", true, Some("2026-01-04")), // Sun, W01
        version("v2", true, Some("2026-01-06")), // Tue, W02
        version("v3", true, Some("2026-01-06")),
    ];
    let a = aggregates(vec![issue("Incident", "2026-01-08T10:00:00Z")], versions, UTC);
    assert_eq!(failed_by_week(&a, "2026-W01", "2026-W02"), vec![(1, 0, 0), (2, 2, 2)]);
}

#[test]
fn a_hotfix_released_for_the_failure_is_not_its_culprit_but_rework() {
    // The incident of Wed Jan 14 is fixed by v3, released the same day:
    // the culprit is the release before it (Fri Jan 9, W02).
    let versions = vec![version("v2", true, Some("2026-01-09")), version("v3", true, Some("2026-01-14"))];
    let a = aggregates(vec![issue("Incident", "2026-01-14T10:00:00Z").fixes("v3")], versions, UTC);
    assert_eq!(failed_by_week(&a, "2026-W02", "2026-W03"), vec![(1, 1, 1), (1, 0, 0)]);
    let w3 = figures(&a, "2026-W03", "2026-W03");
    assert_eq!((w3.rework.part, w3.rework.whole), (1, 1));
}

#[test]
fn transition_deployments_after_the_failure_was_created_are_not_candidates() {
    let deploy = |at: &str| issue("Story", "2026-01-02T00:00:00Z").go("21", at);
    let incident = || issue("Incident", "2026-01-14T10:00:00Z");
    let versions = || vec![version("v1", true, Some("2026-01-08"))];
    // Deployed at 12:00 on the incident's day, two hours after it was
    // raised: the culprit is the release of Jan 8 (W02).
    let facts = project(vec![deploy("2026-01-14T12:00:00Z"), incident()], versions());
    let a = build_project(&facts, &BOTH_DEPLOYS, UTC).unwrap();
    assert_eq!(failed_by_week(&a, "2026-W02", "2026-W03"), vec![(1, 1, 1), (1, 0, 0)]);
    // Deployed at 09:00, or at the very instant: the transition is the
    // culprit.
    for at in ["2026-01-14T09:00:00Z", "2026-01-14T10:00:00Z"] {
        let facts = project(vec![deploy(at), incident()], versions());
        let a = build_project(&facts, &BOTH_DEPLOYS, UTC).unwrap();
        assert_eq!(failed_by_week(&a, "2026-W02", "2026-W03"), vec![(1, 0, 0), (1, 1, 1)], "{at}");
    }
}

#[test]
fn a_failure_naming_an_affected_version_is_attributed_by_version_only() {
    let versions = || vec![version("v1", true, Some("2026-01-12")), version("v9", false, None)];
    // The incident names v9, which is not a deployment: it fails nothing,
    // not even the release two days before it.
    let a = aggregates(vec![issue("Incident", "2026-01-14T10:00:00Z").affects("v9")], versions(), UTC);
    let f = figures(&a, "2026-W03", "2026-W03");
    assert_eq!((f.deployments, f.change_failure.part, f.incidents), (1, 0, 1));
    // Naming v1 fails v1 by version, not by time.
    let a = aggregates(vec![issue("Incident", "2026-01-14T10:00:00Z").affects("v1")], versions(), UTC);
    let f = figures(&a, "2026-W03", "2026-W03");
    assert_eq!((f.change_failure.part, f.failed_by), (1, FailedBy { version: 1, time: 0, transition: 0 }));
    // Same with every failure given a window.
    let facts = project(vec![issue("Bug", "2026-01-14T10:00:00Z").affects("v9")], versions());
    let a = build_project(&facts, &every_failure_within(14), UTC).unwrap();
    assert_eq!(figures(&a, "2026-W03", "2026-W03").change_failure.part, 0);
}

#[test]
fn bugs_have_no_window_by_default_and_an_admin_may_give_them_one() {
    let versions = || vec![version("v1", true, Some("2026-01-12")), version("v2", true, Some("2026-01-15"))];
    let bug = || issue("Bug", "2026-01-14T10:00:00Z").fixes("v2");
    // Default: window 0, unattributed; its fix is then not rework.
    let a = aggregates(vec![bug()], versions(), UTC);
    let f = figures(&a, "2026-W03", "2026-W03");
    assert_eq!((f.deployments, f.change_failure.part, f.rework.part), (2, 0, 0));
    // With a window of 14 days the bug fails v1, and v2 that fixes it is
    // rework.
    let a = build_project(&project(vec![bug()], versions()), &every_failure_within(14), UTC).unwrap();
    let f = figures(&a, "2026-W03", "2026-W03");
    assert_eq!((f.change_failure.part, f.failed_by.time, f.rework.part), (1, 1, 1));
    // A window of 1 day is the creation day alone.
    let a = build_project(&project(vec![bug()], versions()), &every_failure_within(1), UTC).unwrap();
    assert_eq!(figures(&a, "2026-W03", "2026-W03").change_failure.part, 0);
    let on_the_day = issue("Bug", "2026-01-12T23:00:00Z");
    let a = build_project(&project(vec![on_the_day], versions()), &every_failure_within(1), UTC).unwrap();
    assert_eq!(figures(&a, "2026-W03", "2026-W03").change_failure.part, 1);
}

#[test]
fn a_deployment_failed_in_several_ways_counts_once_as_failed_and_in_each_way() {
    // v1 is named by a bug and is the culprit of an incident.
    let issues = vec![issue("Bug", "2026-01-13T10:00:00Z").affects("v1"), issue("Incident", "2026-01-14T10:00:00Z")];
    let a = aggregates(issues, vec![version("v1", true, Some("2026-01-12"))], UTC);
    let f = figures(&a, "2026-W03", "2026-W03");
    assert_eq!((f.deployments, f.change_failure.part), (1, 1));
    assert_eq!(f.failed_by, FailedBy { version: 1, time: 1, transition: 0 });
}

#[test]
fn excluded_failures_are_attributed_nowhere() {
    let a = aggregates(
        vec![issue("Incident", "2026-01-14T10:00:00Z").label("dora-exclude")],
        vec![version("v1", true, Some("2026-01-12"))],
        UTC,
    );
    assert_eq!(figures(&a, "2026-W03", "2026-W03").change_failure.part, 0);
}

#[test]
fn a_failure_window_out_of_range_is_a_classification_error() {
    let facts = project(vec![issue("Incident", "2026-01-14T10:00:00Z")], vec![version("v1", true, Some("2026-01-12"))]);
    assert!(build_project(&facts, &every_failure_within(90), UTC).is_ok());
    let e = build_project(&facts, &every_failure_within(91), UTC).unwrap_err().to_string();
    assert!(e.contains("failure_window_days") && e.contains("91") && e.contains("0 to 90"), "{e}");
    // Not asked of failures naming an affected version, nor of non-failures.
    let facts = project(
        vec![issue("Incident", "2026-01-14T10:00:00Z").affects("v1"), issue("Story", "2026-01-14T10:00:00Z")],
        vec![version("v1", true, Some("2026-01-12"))],
    );
    assert!(build_project(&facts, &every_failure_within(91), UTC).is_ok());
}

#[test]
fn transition_deployment_days_follow_the_reporting_zone() {
    // 23:30 UTC on Monday is Tuesday in Berlin: two deploys, one Berlin day.
    let i = issue("Story", "2026-01-05T00:00:00Z")
        .go("21", "2026-01-05T23:30:00Z")
        .go("3", "2026-01-06T01:00:00Z")
        .go("21", "2026-01-06T10:00:00Z");
    let facts = project(vec![i], vec![]);
    let utc = build_project(&facts, &STATUS_DEPLOYS, UTC).unwrap();
    let berlin = build_project(&facts, &STATUS_DEPLOYS, chrono_tz::Europe::Berlin).unwrap();
    assert_eq!(figures(&utc, "2026-W02", "2026-W02").deployment_days, 2);
    assert_eq!(figures(&berlin, "2026-W02", "2026-W02").deployment_days, 1);
}

#[test]
fn weeks_are_bucketed_in_the_reporting_zone() {
    // Completed Sunday 23:30 UTC = Monday in Berlin: a different ISO week.
    let i = issue("Story", "2026-01-05T00:00:00Z").go("10", "2026-01-11T23:30:00Z");
    let utc = aggregates(vec![i.clone()], vec![], UTC);
    let berlin = aggregates(vec![i], vec![], chrono_tz::Europe::Berlin);
    assert_eq!(figures(&utc, "2026-W02", "2026-W02").completed, 1);
    assert_eq!(figures(&berlin, "2026-W03", "2026-W03").completed, 1);
}

#[test]
fn changelog_statuses_resolve_by_id_then_by_name() {
    // Status ids 99 (deleted) and 98 (renamed): 99's recorded name "Done"
    // finds the done category by name; an unknown name is undefined.
    let mut i = issue("Story", "2026-01-05T00:00:00Z");
    push(
        &mut i.0.changes,
        StatusChange {
            at: t("2026-01-06T00:00:00Z"),
            from: status("1"),
            to: StatusRef::new("99", "done").into(),
            by_app: false,
        },
    );
    i.0.status = StatusRef::new("99", "Done").into();
    i.0.status_category = StatusCategory::Done;
    let a = aggregates(vec![i], vec![], UTC);
    let f = figures(&a, "2026-W02", "2026-W02");
    assert_eq!(f.completed, 1);
    assert!(close(f.lead_time.median_hours, 24.0));
}

// ------------------------------------------------------- periods, combining

#[test]
fn the_default_period_is_the_last_13_complete_weeks() {
    let now: DateTime<Utc> = "2026-03-04T12:00:00Z".parse().unwrap(); // Wednesday of W10
    let p = resolve_period(None, None, 0, now, UTC).unwrap();
    assert_eq!(
        (p.first.to_string(), p.last().to_string(), p.weeks, p.partial),
        ("2025-W49".into(), "2026-W09".into(), 13, false)
    );
    assert_eq!(p.previous().last().to_string(), "2025-W48");
    let p = resolve_period(None, None, 4, now, UTC).unwrap();
    assert_eq!(p.first.to_string(), "2026-W06");
    // Naming the current week explicitly makes the period partial.
    let p = resolve_period(Some("2026-W09"), Some("2026-W10"), 0, now, UTC).unwrap();
    assert!(p.partial);
    assert_eq!(p.weeks, 2);
}

#[test]
fn bad_periods_are_refused_with_the_reason() {
    let now: DateTime<Utc> = "2026-03-04T12:00:00Z".parse().unwrap();
    let check = |from: Option<&str>, to: Option<&str>, weeks, expect: &str| {
        let e = resolve_period(from, to, weeks, now, UTC).unwrap_err().to_string();
        assert!(e.contains(expect), "{e} does not say {expect}");
    };
    check(Some("2026-W05"), None, 0, "together");
    check(Some("2026-W5x"), Some("2026-W06"), 0, "not an ISO week");
    check(Some("2026-W06"), Some("2026-W05"), 0, "reversed");
    check(Some("2010-W01"), Some("2026-W05"), 0, "at most 520");
    check(None, None, 521, "at most 520");
}

fn months(from_month: Option<&'static str>, to_month: Option<&'static str>, months: u32) -> PeriodRequest<'static> {
    PeriodRequest { from_month, to_month, months, ..PeriodRequest::default() }
}

#[test]
fn the_last_complete_months_end_before_the_current_week_s_month() {
    let now: DateTime<Utc> = "2026-03-04T12:00:00Z".parse().unwrap(); // W10, whose Thursday is in March
    let p = months(None, None, 3).resolve(now, UTC).unwrap();
    // December 2025 (4 weeks), January 2026 (5: Thursdays 1 to 29), February (4).
    assert_eq!(
        (p.first.to_string(), p.last().to_string(), p.weeks, p.partial),
        ("2025-W49".into(), "2026-W09".into(), 13, false)
    );
    let names: Vec<(String, u32)> = p.months().iter().map(|m| (m.month.to_string(), m.weeks)).collect();
    assert_eq!(names, [("2025-12".into(), 4), ("2026-01".into(), 5), ("2026-02".into(), 4)]);
    // The previous period is the three months before: September to November.
    let prev = p.previous();
    assert_eq!(
        (prev.first.to_string(), prev.last().to_string(), prev.weeks),
        ("2025-W36".into(), "2025-W48".into(), 13)
    );
    // On Monday 2026-03-30 (W14, whose Thursday is in April) March is complete.
    let now: DateTime<Utc> = "2026-03-30T08:00:00Z".parse().unwrap();
    let p = months(None, None, 1).resolve(now, UTC).unwrap();
    assert_eq!((p.months().first().map(|m| m.month.to_string()), p.weeks), (Some("2026-03".into()), 4));
}

#[test]
fn a_month_range_is_the_union_of_its_months_weeks_and_its_previous_has_as_many_months() {
    let now: DateTime<Utc> = "2026-03-04T12:00:00Z".parse().unwrap();
    let p = months(Some("2026-01"), Some("2026-01"), 0).resolve(now, UTC).unwrap();
    assert_eq!((p.first.to_string(), p.weeks, p.partial), ("2026-W01".into(), 5, false));
    // One month before January is December: 4 weeks, not 5.
    let prev = p.previous();
    assert_eq!((prev.first.to_string(), prev.weeks), ("2025-W49".into(), 4));
    // Over a year boundary with a 53-week year: December 2020 has 5 weeks.
    let p = months(Some("2020-11"), Some("2021-01"), 0).resolve(now, UTC).unwrap();
    assert_eq!((p.first.to_string(), p.last().to_string(), p.weeks), ("2020-W45".into(), "2021-W04".into(), 4 + 5 + 4));
    // Reaching into the current month makes the period partial.
    assert!(months(Some("2026-02"), Some("2026-03"), 0).resolve(now, UTC).unwrap().partial);
    // A period of weeks splits into the months its weeks belong to.
    let p = resolve_period(Some("2026-W04"), Some("2026-W07"), 0, now, UTC).unwrap();
    let slices: Vec<(String, String, u32)> =
        p.months().iter().map(|m| (m.month.to_string(), m.first.to_string(), m.weeks)).collect();
    assert_eq!(slices, [("2026-01".into(), "2026-W04".into(), 2), ("2026-02".into(), "2026-W06".into(), 2)]);
}

#[test]
fn bad_month_periods_are_refused_with_the_reason() {
    let now: DateTime<Utc> = "2026-03-04T12:00:00Z".parse().unwrap();
    let check = |req: PeriodRequest<'_>, expect: &[&str]| {
        let e = req.resolve(now, UTC).unwrap_err().to_string();
        assert!(expect.iter().all(|x| e.contains(x)), "{e} does not say {expect:?}");
    };
    check(months(Some("2026-01"), None, 0), &["from_month and to_month", "together"]);
    check(months(Some("2026-1"), Some("2026-02"), 0), &["2026-1", "not a month"]);
    check(months(Some("2026-13"), Some("2026-02"), 0), &["not a month"]);
    check(months(Some("2026-02"), Some("2026-01"), 0), &["reversed", "2026-02", "2026-01"]);
    check(months(Some("2016-01"), Some("2026-01"), 0), &["121 months", "at most 120"]);
    check(months(None, None, 121), &["121 months", "at most 120"]);
    assert!(months(Some("2016-02"), Some("2026-01"), 0).resolve(now, UTC).is_ok());
    assert!(months(None, None, 120).resolve(now, UTC).is_ok());
    // Weeks and months exclude each other, whichever fields are used.
    check(PeriodRequest { weeks: 4, months: 3, ..PeriodRequest::default() }, &["weeks", "months", "not both"]);
    check(
        PeriodRequest { from_week: Some("2026-W01"), to_week: Some("2026-W02"), months: 3, ..PeriodRequest::default() },
        &["from_week", "months"],
    );
    check(
        PeriodRequest { weeks: 4, from_month: Some("2026-01"), to_month: Some("2026-02"), ..PeriodRequest::default() },
        &["weeks", "from_month"],
    );
}

#[test]
fn deployments_per_week_divides_by_every_week_of_the_period() {
    let a =
        aggregates(vec![], vec![version("v1", true, Some("2026-01-05")), version("v2", true, Some("2026-01-06"))], UTC);
    let f = figures(&a, "2026-W01", "2026-W04");
    assert_eq!((f.deployments, f.weeks), (2, 4));
    assert_eq!(f.deployments_per_week, 0.5);
    // 2 days in 4 weeks: 0.5 days/week ≥ 12/52: medium.
    assert_eq!(f.levels.deployment_frequency, Level::Medium);
}

#[test]
fn projects_combine_by_summing_counts_merging_durations_and_uniting_days() {
    let mk = |h: u32| issue("Story", "2026-01-05T00:00:00Z").go("10", &format!("2026-01-05T{h:02}:00:00Z"));
    let a = aggregates(vec![mk(1)], vec![version("a1", true, Some("2026-01-05"))], UTC);
    let b = aggregates(
        vec![mk(3), mk(5), mk(7)],
        vec![version("b1", true, Some("2026-01-05")), version("b2", true, Some("2026-01-06"))],
        UTC,
    );
    let w = week("2026-W02");
    let f = Totals::over(&[&a, &b], std::iter::once(w)).figures();
    assert_eq!((f.completed, f.deployments, f.deployment_days), (4, 3, 2));
    // The merged median of {1,3,5,7} is 4, not the mean of medians (1 and 5).
    assert!(close(f.lead_time.median_hours, 4.0));
}

#[test]
fn rolling_medians_merge_the_durations_of_four_weeks_never_their_medians() {
    // Lead times (hours) completed in W01: 1, 2, 3 (median 2); W02: 100
    // (median 100); W03: none; W04: 4, 5, 6 (median 5); W05: 7.
    let done = |day: &str, hours: u32| {
        let start = format!("{day}T00:00:00Z");
        let end = chrono::DateTime::parse_from_rfc3339(&start).unwrap() + chrono::Duration::hours(i64::from(hours));
        issue("Story", &start).go("10", &end.to_rfc3339())
    };
    let items = vec![
        done("2026-01-01", 1),
        done("2026-01-01", 2),
        done("2026-01-01", 3),
        done("2026-01-05", 100),
        done("2026-01-19", 4),
        done("2026-01-19", 5),
        done("2026-01-19", 6),
        done("2026-01-26", 7),
    ];
    let a = aggregates(items, vec![], UTC);
    let check = |last: &str, count: u64, median: Option<f64>| {
        let end = week(last);
        let r = RollingDurations::over(&[&a], (0..ROLLING_POINTS as i32).rev().map(|i| end.plus(-i)));
        assert_eq!(r.lead_time.count, count, "{last}");
        assert_eq!(r.lead_time.median_hours, median, "{last}");
        assert_eq!(r.time_to_restore.count, 0);
    };
    // W04: {1,2,3,100,4,5,6} → 4 (the median of weekly medians 2, 100, 5 would be 5).
    check("2026-W04", 7, Some(4.0));
    // W05: W02..W05 = {100,4,5,6,7} → 6.
    check("2026-W05", 5, Some(6.0));
    // W01 reaches back to weeks with no data: W01 alone.
    check("2026-W01", 3, Some(2.0));
    check("2025-W40", 0, None);
}

#[test]
fn level_cut_offs_are_exact() {
    use Level::*;
    assert_eq!(deployment_frequency_level(1, 65, 13), Elite); // exactly 5/week
    assert_eq!(deployment_frequency_level(1, 64, 13), High);
    assert_eq!(deployment_frequency_level(1, 13, 13), High); // exactly 1/week
    assert_eq!(deployment_frequency_level(1, 3, 13), Medium); // 3/13 = 12/52
    assert_eq!(deployment_frequency_level(1, 2, 13), Low);
    assert_eq!(deployment_frequency_level(0, 0, 13), Unknown);
    assert_eq!(lead_time_level(Some(23.99)), Elite);
    assert_eq!(lead_time_level(Some(24.0)), High);
    assert_eq!(lead_time_level(Some(168.0)), Medium);
    assert_eq!(lead_time_level(Some(720.0)), Low);
    assert_eq!(lead_time_level(None), Unknown);
    let r = |part, whole| Ratio { part, whole };
    assert_eq!(change_failure_level(r(1, 20)), Elite); // exactly 5 %
    assert_eq!(change_failure_level(r(2, 20)), High); // exactly 10 %
    assert_eq!(change_failure_level(r(3, 20)), Medium); // exactly 15 %
    assert_eq!(change_failure_level(r(4, 20)), Low);
    assert_eq!(change_failure_level(r(0, 0)), Unknown);
    assert_eq!(restore_level(Some(1.0)), High);
    assert_eq!(restore_level(Some(0.99)), Elite);
    assert_eq!(restore_level(Some(24.0)), Medium);
    assert_eq!(restore_level(Some(168.0)), Low);
    assert_eq!(restore_level(None), Unknown);
}
