//! The lists behind the figures (`docs/metrics.md`, "What is behind a
//! number") agree with the figures exactly, over generated sites, rules
//! and periods (a property test), and name the issues that failed a
//! deployment and how (hand-computed cases).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use jira_dora::domain::aggregate::{Attribution, ProjectAggregates, build_project_teams};
use jira_dora::domain::classify::{DefaultRules, HookError, Hooks, IssueView, Teams, TransitionView, VersionView};
use jira_dora::domain::explain::{Explained, Figure, explain_project};
use jira_dora::domain::facts::*;
use jira_dora::domain::period::{Period, PeriodFigures, Totals};
use jira_dora::domain::time::IsoWeek;
use proptest::prelude::*;

fn statuses() -> Vec<StatusFacts> {
    let s = |id: &str, name: &str, c| StatusFacts { id: id.into(), name: name.into(), category: c };
    vec![
        s("1", "To Do", StatusCategory::New),
        s("3", "In Progress", StatusCategory::Indeterminate),
        s("10", "Done", StatusCategory::Done),
        s("11", "Closed", StatusCategory::Done),
        s("20", "Rolled Back", StatusCategory::Indeterminate),
        s("21", "Deployed", StatusCategory::Done),
    ]
}

fn status_ref(id: &str) -> Status {
    let name = statuses().into_iter().find(|s| s.id == id).unwrap().name;
    StatusRef { id: id.into(), name: name.into() }.into()
}

fn issue_key(key: &str) -> IssueKey {
    let (project, number) = key.rsplit_once('-').unwrap();
    IssueKey { project: project.into(), number: number.parse().unwrap() }
}

fn category(id: &str) -> StatusCategory {
    statuses().into_iter().find(|s| s.id == id).unwrap().category
}

/// Monday 2026-01-05, 00:00 UTC.
const BASE: Millis = 1_767_571_200_000;
const HOUR: Millis = 3_600_000;
/// The generated sites span this many weeks from `BASE`.
const SPAN_WEEKS: i64 = 20;

/// The default rules, or with deployments by status too, every failure
/// attributed by time within a window, and teams.
#[derive(Debug, Clone, Copy)]
struct Rules {
    deploy_status: bool,
    window: Option<u32>,
    /// Issues belong to `alpha`, `beta` or both, by their creation hour.
    teams: bool,
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
        DefaultRules.is_deployment(v)
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
    fn teams(&self, i: &IssueView<'_>) -> Result<Teams, HookError> {
        let names: &[&str] = match (self.teams, i.created / HOUR % 3) {
            (false, _) => &[],
            (true, 0) => &["alpha"],
            (true, 1) => &["beta"],
            (true, _) => &["alpha", "beta"],
        };
        Ok(names.iter().map(|&n| Arc::from(n)).collect())
    }
}

/// A generated project: `issues` issues and `versions` versions placed at
/// random over the span, with every shape the rules care about.
fn site(key: &str, seed: u64, issues: usize, versions: usize) -> ProjectFacts {
    let mut rng = fastrand::Rng::with_seed(seed);
    let start = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let versions: Vec<VersionFacts> = (0..versions)
        .map(|n| VersionFacts {
            id: format!("{}", 100 + n),
            name: format!("{key} 1.{n}"),
            released: rng.u8(..10) < 8,
            release_date: (rng.u8(..10) < 9).then(|| start + chrono::Days::new(rng.u64(..(SPAN_WEEKS as u64 * 7)))),
            archived: false,
        })
        .collect();
    let pick_versions = |rng: &mut fastrand::Rng| -> Vec<String> {
        let n = if versions.is_empty() || rng.u8(..3) > 0 { 0 } else { rng.usize(1..3) };
        let mut out: Vec<String> = (0..n).map(|_| versions[rng.usize(..versions.len())].id.clone()).collect();
        if rng.u8(..20) == 0 {
            out.push("999".into()); // a version the project no longer has
        }
        out.dedup();
        out
    };
    let types = ["Story", "Story", "Task", "Bug", "Bug", "Incident", "Epic", "AI Task", "Sub-task"];
    let labels = ["incident", "ai-assisted", "dora-exclude"];
    let walk = ["1", "3", "10", "11", "20", "21"];
    let issues = (0..issues)
        .map(|n| {
            let kind = types[rng.usize(..types.len())];
            let created = BASE + rng.i64(0..SPAN_WEEKS * 7 * 24) * HOUR;
            let mut at = created;
            let mut status = status_ref("1");
            let mut changes = Vec::new();
            for _ in 0..rng.usize(0..7) {
                // Some changes land before creation (clock skew): negative spans.
                at += rng.i64(-5..120) * HOUR;
                let to = status_ref(walk[rng.usize(..walk.len())]);
                changes.push(StatusChange { at, from: status.clone(), to: to.clone(), by_app: rng.u8(..8) == 0 });
                status = to;
            }
            if rng.u8(..10) == 0 {
                status = status_ref("10"); // done without a change into done
            }
            let status_category = category(&status.id);
            IssueDraft {
                id: IssueId(1000 + n as u64),
                key: IssueKey { project: key.into(), number: n as u32 + 1 },
                project: key.into(),
                issue_type: kind.into(),
                is_subtask: kind == "Sub-task",
                labels: labels.iter().filter(|_| rng.u8(..12) == 0).map(|l| Name::from(*l)).collect(),
                created,
                updated: at,
                resolved: (status_category == StatusCategory::Done && rng.bool()).then(|| at + HOUR),
                status,
                status_category,
                fix_versions: pick_versions(&mut rng).into_iter().map(Name::from).collect(),
                affected_versions: pick_versions(&mut rng).into_iter().map(Name::from).collect(),
                components: [].into(),
                priority: None,
                fields: [].into(),
                changes: changes.into(),
            }
        })
        .collect::<Vec<_>>();
    ProjectFacts::new(key, issues, versions, statuses())
}

fn count(explained: &Explained) -> u64 {
    explained.items.len() as u64
}

/// The median of the listed hours, interpolated as the sketch does.
fn median_hours(explained: &Explained) -> Option<f64> {
    let mut hours: Vec<f64> = explained.items.iter().map(|i| i.hours().expect("a duration item has hours")).collect();
    hours.sort_by(f64::total_cmp);
    let n = hours.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(hours[n / 2]),
        _ => Some((hours[n / 2 - 1] + hours[n / 2]) / 2.0),
    }
}

fn same_median(listed: Option<f64>, figure: Option<f64>) -> bool {
    match (listed, figure) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        _ => false,
    }
}

/// Every figure of `projects` (or of one team of theirs) over `period`, and
/// each list, side by side.
fn check_lists_agree(
    projects: &[ProjectFacts],
    rules: Rules,
    tz: Tz,
    period: &Period,
    team: Option<&str>,
) -> Result<(), TestCaseError> {
    let aggs: Vec<ProjectAggregates> = projects
        .iter()
        .map(|p| {
            let build = build_project_teams(p, &rules, tz).unwrap();
            match team {
                None => build.weeks,
                Some(t) => build.teams.get(t).cloned().unwrap_or_default(),
            }
        })
        .collect();
    let refs: Vec<&ProjectAggregates> = aggs.iter().collect();
    let totals = Totals::over(&refs, period.iter());
    let exact = totals.sum.lead_time.is_exact() && totals.sum.time_to_restore.is_exact();
    let f: PeriodFigures = totals.figures();
    let list = |figure| {
        let mut all = Explained::default();
        for p in projects {
            all.merge(explain_project(p, &rules, tz, period, figure, team).unwrap());
        }
        all
    };
    let deployments = list(Figure::Deployments);
    prop_assert_eq!(count(&deployments), f.deployments);
    prop_assert_eq!(deployments.items.iter().filter(|i| i.failed).count() as u64, f.change_failure.part);
    prop_assert_eq!(deployments.items.iter().filter(|i| i.rework).count() as u64, f.rework.part);
    let by = |how| deployments.items.iter().filter(|i| i.attributions.iter().any(|a| a.1 == how)).count() as u64;
    prop_assert_eq!(by(Attribution::ByVersion), f.failed_by.version);
    prop_assert_eq!(by(Attribution::ByTime), f.failed_by.time);
    prop_assert_eq!(by(Attribution::ByTransition), f.failed_by.transition);
    prop_assert_eq!(by(Attribution::ReworkFix), f.rework.part);
    for item in &deployments.items {
        prop_assert_eq!(item.failed, item.attributions.iter().any(|a| a.1 != Attribution::ReworkFix));
        prop_assert!(item.issue_key.is_empty() != item.version_name.is_empty());
    }
    let lead = list(Figure::LeadTime);
    prop_assert_eq!(count(&lead), f.lead_time.count);
    let restore = list(Figure::TimeToRestore);
    prop_assert_eq!(count(&restore), f.time_to_restore.count);
    if exact {
        prop_assert!(
            same_median(median_hours(&lead), f.lead_time.median_hours),
            "lead time {:?} {:?}",
            median_hours(&lead),
            f.lead_time.median_hours
        );
        prop_assert!(same_median(median_hours(&restore), f.time_to_restore.median_hours));
    }
    prop_assert_eq!(count(&list(Figure::Incidents)), f.incidents);
    prop_assert_eq!(count(&list(Figure::OpenIncidents)), f.open_incidents);
    prop_assert_eq!(count(&list(Figure::Completed)), f.completed);
    let excluded = list(Figure::Excluded);
    prop_assert_eq!(count(&excluded), f.excluded);
    prop_assert_eq!(excluded.quality.excluded, f.excluded);
    prop_assert_eq!(count(&list(Figure::Reopened)), f.reopened);
    prop_assert_eq!(count(&list(Figure::AiInvolved)), f.ai_involved);
    // Every item counts inside the period, and the list is in order.
    for figure in [Figure::Deployments, Figure::LeadTime, Figure::Incidents, Figure::Excluded] {
        let items = list(figure).items;
        prop_assert!(items.iter().all(|i| (period.first..=period.last()).contains(&i.week)));
        prop_assert!(items.windows(2).all(|w| jira_dora::domain::explain::Item::order(&w[0], &w[1]).is_le()));
    }
    Ok(())
}

fn rules() -> impl Strategy<Value = Rules> {
    prop_oneof![
        Just(Rules { deploy_status: false, window: None, teams: false }),
        Just(Rules { deploy_status: true, window: None, teams: true }),
        (1u32..30, any::<bool>()).prop_map(|(d, teams)| Rules { deploy_status: true, window: Some(d), teams }),
    ]
}

fn zone() -> impl Strategy<Value = Tz> {
    prop_oneof![Just(chrono_tz::UTC), Just(chrono_tz::Europe::Berlin), Just(chrono_tz::Pacific::Auckland)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn lists_agree_with_the_figures_over_generated_sites_periods_and_teams(
        seed in any::<u64>(),
        sizes in prop::collection::vec((0usize..80, 0usize..12), 1..3),
        rules in rules(),
        tz in zone(),
        first in -2i32..(SPAN_WEEKS as i32),
        weeks in 1u32..16,
    ) {
        let projects: Vec<ProjectFacts> = sizes
            .iter()
            .enumerate()
            .map(|(n, &(issues, versions))| site(["PAY", "OPS"][n], seed.wrapping_add(n as u64), issues, versions))
            .collect();
        let period = Period::of_weeks(IsoWeek::of_instant(BASE, chrono_tz::UTC).plus(first), weeks);
        for team in [None, Some("alpha"), Some("beta")] {
            check_lists_agree(&projects, rules, tz, &period, team)?;
        }
    }
}

#[test]
fn the_generated_sites_hold_every_kind_of_item() {
    // Else the property above could hold over empty lists.
    let rules = Rules { deploy_status: true, window: Some(14), teams: false };
    let period = Period::of_weeks(IsoWeek::of_instant(BASE, chrono_tz::UTC), SPAN_WEEKS as u32);
    let mut all = Explained::default();
    let mut counts = Vec::new();
    for figure in [
        Figure::Deployments,
        Figure::LeadTime,
        Figure::TimeToRestore,
        Figure::Incidents,
        Figure::OpenIncidents,
        Figure::Completed,
        Figure::Excluded,
        Figure::Reopened,
        Figure::AiInvolved,
    ] {
        let mut listed = Explained::default();
        for seed in 0..10 {
            listed.merge(
                explain_project(&site("PAY", seed, 60, 8), &rules, chrono_tz::UTC, &period, figure, None).unwrap(),
            );
        }
        counts.push((figure, listed.items.len()));
        if figure == Figure::Deployments {
            all = listed;
        }
    }
    assert!(counts.iter().all(|&(_, n)| n > 0), "{counts:?}");
    for how in [Attribution::ByVersion, Attribution::ByTime, Attribution::ByTransition, Attribution::ReworkFix] {
        assert!(all.items.iter().any(|d| d.attributions.iter().any(|a| a.1 == how)), "no deployment with {how:?}");
    }
    let q = all.quality;
    assert!(
        q.failures_by_version > 0 && q.failures_by_time > 0 && q.failures_unattributed > 0 && q.undated_versions > 0,
        "{q:?}"
    );
}

// ------------------------------------------------------ hand-computed cases

fn t(s: &str) -> Millis {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn issue(key: &str, kind: &str, created: &str) -> IssueDraft {
    IssueDraft {
        id: IssueId(u64::from(issue_key(key).number)),
        key: issue_key(key),
        project: "PAY".into(),
        issue_type: kind.into(),
        is_subtask: false,
        labels: [].into(),
        created: t(created),
        updated: t(created),
        resolved: None,
        status: status_ref("1"),
        status_category: StatusCategory::New,
        fix_versions: [].into(),
        affected_versions: [].into(),
        components: [].into(),
        priority: None,
        fields: [].into(),
        changes: [].into(),
    }
}

fn version(id: &str, name: &str, date: &str) -> VersionFacts {
    VersionFacts {
        id: id.into(),
        name: name.into(),
        released: true,
        release_date: Some(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap()),
        archived: false,
    }
}

#[test]
fn a_failed_deployment_names_the_failures_that_failed_it_and_how() {
    let mut bug = issue("PAY-7", "Bug", "2026-01-14T09:00:00Z");
    bug.affected_versions = ["1".into()].into();
    let incident = issue("PAY-12", "Incident", "2026-01-15T09:00:00Z");
    let mut fix = issue("PAY-9", "Incident", "2026-01-13T09:00:00Z");
    fix.fix_versions = ["2".into()].into();
    let versions =
        vec![version("1", "2.0", "2026-01-12"), version("2", "2.1", "2026-01-14"), version("3", "2.2", "2026-01-16")];
    let facts = ProjectFacts::new("PAY", [bug, incident, fix], versions, statuses());
    let period = Period::of_weeks(IsoWeek::parse("2026-W03").unwrap(), 1);
    let explained = explain_project(&facts, &DefaultRules, chrono_tz::UTC, &period, Figure::Deployments, None).unwrap();
    type Row<'a> = (&'a str, bool, bool, Vec<(&'a str, Attribution)>);
    let rows: Vec<Row<'_>> = explained
        .items
        .iter()
        .map(|i| {
            (
                i.version_name.as_str(),
                i.failed,
                i.rework,
                i.attributions.iter().map(|(k, a)| (k.as_str(), *a)).collect(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            // PAY-9 (an incident naming no affected version) falls on the
            // latest deployment before it but the one that fixes it.
            ("2.0", true, false, vec![("PAY-7", Attribution::ByVersion), ("PAY-9", Attribution::ByTime)]),
            // 2.1 ships the fix of an incident; PAY-12 falls on it.
            ("2.1", true, true, vec![("PAY-9", Attribution::ReworkFix), ("PAY-12", Attribution::ByTime)]),
            ("2.2", false, false, vec![]),
        ]
    );
    let q = explained.quality;
    assert_eq!((q.failures_by_version, q.failures_by_time, q.failures_unattributed), (1, 2, 0));
}
