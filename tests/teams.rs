//! Teams (`docs/metrics.md`, "Teams"): the `teams(issue)` hook, its checks,
//! and the per-team weekly aggregates built in the classification pass.
//!
//! The central property: a team's figures are the figures of a project made
//! of that team's items (its issues, and the versions its non-excluded
//! issues ship), with the project's failed and rework flags on those
//! deployments; checked over generated sites.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use chrono_tz::Tz;
use jira_dora::definitions::{DefinitionFile, DefinitionSet};
use jira_dora::domain::aggregate::{
    MAX_TEAMS_PER_PROJECT, ProjectAggregates, WeeklyAggregate, build_project, build_project_teams,
};
use jira_dora::domain::classify::{Hooks, checked_teams, classify_issue};
use jira_dora::domain::facts::*;
use jira_dora::domain::time::IsoWeek;
use proptest::prelude::*;

const UTC: Tz = chrono_tz::UTC;
const DAY: Millis = 86_400_000;
/// 2026-01-05T00:00:00Z, a Monday.
const T0: Millis = 1_767_571_200_000;

fn statuses() -> Vec<StatusFacts> {
    let s = |id: &str, name: &str, category| StatusFacts { id: id.into(), name: name.into(), category };
    vec![
        s("1", "To Do", StatusCategory::New),
        s("3", "In Progress", StatusCategory::Indeterminate),
        s("10", "Done", StatusCategory::Done),
    ]
}

fn status_ref(id: &str) -> Status {
    let name = statuses().into_iter().find(|s| s.id == id).unwrap().name;
    StatusRef { id: id.into(), name: name.into() }.into()
}

/// Appends to a boxed list of facts.
fn push<T: Clone>(list: &mut Box<[T]>, item: T) {
    let mut v = list.to_vec();
    v.push(item);
    *list = v.into();
}

fn category(id: &str) -> StatusCategory {
    statuses().into_iter().find(|s| s.id == id).unwrap().category
}

/// An issue of project `P`: created at `created`, moved through `path`
/// (status ids, one day apart).
fn issue(n: usize, kind: &str, created: Millis, path: &[&str]) -> IssueDraft {
    let mut from = status_ref("1");
    let mut changes = Vec::new();
    for (i, to) in path.iter().enumerate() {
        let to = status_ref(to);
        changes.push(StatusChange {
            at: created + (i as i64 + 1) * DAY,
            from: from.clone(),
            to: to.clone(),
            by_app: false,
        });
        from = to;
    }
    IssueDraft {
        id: IssueId(10_000 + n as u64),
        key: IssueKey { project: "P".into(), number: n as u32 },
        project: "P".into(),
        issue_type: kind.into(),
        is_subtask: false,
        labels: [].into(),
        created,
        updated: created,
        resolved: None,
        status_category: category(&from.id),
        status: from,
        fix_versions: [].into(),
        affected_versions: [].into(),
        components: [].into(),
        priority: None,
        fields: [].into(),
        changes: changes.into(),
    }
}

fn version(id: &str, day: Option<NaiveDate>) -> VersionFacts {
    VersionFacts { id: id.into(), name: format!("v{id}"), released: day.is_some(), release_date: day, archived: false }
}

fn project(issues: Vec<IssueDraft>, versions: Vec<VersionFacts>) -> ProjectFacts {
    ProjectFacts::new("P", issues, versions, statuses())
}

fn files(extra: &[(&str, &str)]) -> Vec<DefinitionFile> {
    let mut files = DefinitionSet::shipped_files();
    for (name, source) in extra {
        files.retain(|f| f.name != *name);
        files.push(DefinitionFile { name: (*name).to_owned(), source: (*source).to_owned() });
    }
    files
}

/// The shipped definitions plus teams by component.
fn by_component() -> DefinitionSet {
    DefinitionSet::compile(files(&[("teams.rhai", "fn teams(issue) {\n    issue.components\n}\n")])).unwrap()
}

// ------------------------------------------------------------ the property

/// A generated issue: type, labels, components, fix and affected versions
/// (indices), creation day, how far it went.
#[derive(Debug, Clone)]
struct Gen {
    kind: &'static str,
    exclude: bool,
    incident_label: bool,
    components: Vec<&'static str>,
    fixes: Vec<usize>,
    affects: Vec<usize>,
    day: i64,
    path: &'static [&'static str],
}

const TEAM_NAMES: [&str; 3] = ["Payments", "Search", "Mobile"];
const VERSIONS: usize = 6;

fn generated_issue() -> impl Strategy<Value = Gen> {
    (
        prop::sample::select(vec!["Story", "Story", "Task", "Bug", "Incident", "Epic"]),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::sample::subsequence(TEAM_NAMES.to_vec(), 0..=2),
        prop::sample::subsequence((0..VERSIONS).collect::<Vec<_>>(), 0..=2),
        prop::sample::subsequence((0..VERSIONS).collect::<Vec<_>>(), 1..=2),
        0..70i64,
        prop::sample::select(vec![
            &[][..],
            &["3"][..],
            &["3", "10"][..],
            &["10"][..],
            &["3", "10", "3", "10"][..],
            &["10", "3"][..],
        ]),
    )
        .prop_map(|(kind, exclude, incident_label, components, fixes, affects, day, path)| Gen {
            kind,
            exclude,
            incident_label,
            components,
            fixes,
            affects,
            day,
            path,
        })
}

fn generated_site() -> impl Strategy<Value = (Vec<Gen>, Vec<Option<i64>>)> {
    (
        prop::collection::vec(generated_issue(), 1..60),
        prop::collection::vec(prop::option::weighted(0.8, 0..80i64), VERSIONS),
    )
}

fn site_facts(issues: &[Gen], releases: &[Option<i64>]) -> ProjectFacts {
    let monday = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let versions = releases
        .iter()
        .enumerate()
        .map(|(i, d)| version(&format!("{}", 100 + i), d.map(|d| monday + chrono::Days::new(d as u64))))
        .collect();
    let vid = |i: &usize| Name::from(format!("{}", 100 + i));
    let issues = issues
        .iter()
        .enumerate()
        .map(|(n, g)| {
            let mut i = issue(n, g.kind, T0 + g.day * DAY + 3_600_000, g.path);
            if g.exclude {
                push(&mut i.labels, "dora-exclude".into());
            }
            if g.incident_label {
                push(&mut i.labels, "incident".into());
            }
            i.components = g.components.iter().map(|c| Name::from(*c)).collect();
            i.fix_versions = g.fixes.iter().map(vid).collect();
            // Failures name what they affected, so each is attributed by
            // version (by time is covered by its own test below).
            if matches!(g.kind, "Bug" | "Incident") {
                i.affected_versions = g.affects.iter().map(vid).collect();
            }
            i
        })
        .collect();
    project(issues, versions)
}

/// The figures that do not depend on the project's failure flags.
fn without_flags(weeks: &ProjectAggregates) -> BTreeMap<IsoWeek, WeeklyAggregate> {
    weeks
        .iter()
        .map(|(w, a)| {
            let a = WeeklyAggregate {
                failed_deployments: 0,
                failed_by_version: 0,
                failed_by_time: 0,
                failed_by_transition: 0,
                rework_deployments: 0,
                ..a.clone()
            };
            (*w, a)
        })
        .filter(|(_, a)| *a != WeeklyAggregate::default())
        .collect()
}

/// (failed, rework) deployments per week among `versions`, by the rules of
/// `docs/metrics.md` for failures that all name affected versions: a
/// version failed when a non-excluded failure lists it as affected; it is
/// rework when a non-excluded incident, or a failure attributed to some
/// deployment, lists it as fix version.
fn expected_flags(
    facts: &ProjectFacts,
    set: &DefinitionSet,
    versions: &HashSet<&str>,
) -> BTreeMap<IsoWeek, (u32, u32)> {
    let deployments: HashSet<&str> =
        facts.versions.iter().filter(|v| v.released && v.release_date.is_some()).map(|v| v.id.as_str()).collect();
    let (mut failed, mut rework) = (HashSet::new(), HashSet::new());
    jira_dora::domain::aggregate::with_issue_views(facts, |views| {
        for (view, issue) in views.iter().zip(&facts.issues) {
            let class = classify_issue(set, view).unwrap();
            if class.excluded {
                continue;
            }
            let attributed =
                class.failure && issue.affected_versions().iter().any(|v| deployments.contains(v.as_str()));
            if class.failure {
                failed.extend(issue.affected_versions().iter().map(Name::as_str));
            }
            if class.incident || attributed {
                rework.extend(issue.fix_versions().iter().map(Name::as_str));
            }
        }
    });
    let mut out: BTreeMap<IsoWeek, (u32, u32)> = BTreeMap::new();
    for v in &facts.versions {
        let Some(day) = v.release_date.filter(|_| v.released && versions.contains(v.id.as_str())) else { continue };
        let entry = out.entry(IsoWeek::of_date(day)).or_default();
        entry.0 += u32::from(failed.contains(v.id.as_str()));
        entry.1 += u32::from(rework.contains(v.id.as_str()));
    }
    out
}

fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(n);
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn team_figures_are_those_of_a_project_made_of_the_teams_items((issues, releases) in generated_site()) {
        let set = by_component();
        let facts = site_facts(&issues, &releases);
        let build = build_project_teams(&facts, &set, UTC).unwrap();
        // The project's own figures are those `build_project` gives.
        prop_assert_eq!(&build.weeks, &build_project(&facts, &set, UTC).unwrap());
        prop_assert_eq!(build.dropped_teams, 0);
        for team in TEAM_NAMES {
            let mine: Vec<&IssueFacts> = facts.issues.iter().filter(|i| i.components().iter().any(|c| c == team)).collect();
            let team_weeks = build.teams.get(team);
            prop_assert_eq!(team_weeks.is_some(), !mine.is_empty(), "a team exists exactly when an issue names it");
            let Some(team_weeks) = team_weeks else { continue };
            // Its versions: those its non-excluded issues ship.
            let shipped: HashSet<&str> = mine
                .iter()
                .filter(|i| !i.labels().iter().any(|l| l == "dora-exclude") && i.issue_type != "Epic")
                .flat_map(|i| i.fix_versions().iter().map(Name::as_str))
                .collect();
            let sub = ProjectFacts {
                key: facts.key.clone(),
                issues: mine.iter().map(|&i| i.clone()).collect(),
                versions: facts.versions.iter().filter(|v| shipped.contains(v.id.as_str())).cloned().collect(),
                statuses: facts.statuses.clone(),
            };
            let reference = build_project(&sub, &set, UTC).unwrap();
            prop_assert_eq!(without_flags(team_weeks), without_flags(&reference), "team {}", team);
            // The flags are the project's.
            let flags: BTreeMap<IsoWeek, (u32, u32)> = team_weeks
                .iter()
                .filter(|(_, a)| a.deployments > 0)
                .map(|(w, a)| (*w, (a.failed_deployments, a.rework_deployments)))
                .collect();
            prop_assert_eq!(&flags, &expected_flags(&facts, &set, &shipped), "team {}", team);
            prop_assert!(team_weeks.values().all(|a| a.failed_deployments == a.failed_by_version));
        }
    }
}

// ------------------------------------------------------------- the rules

fn monday(week_offset: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 5).unwrap() + chrono::Days::new(7 * week_offset)
}

fn done_story(n: usize, team: &str, fixes: &str) -> IssueDraft {
    let mut i = issue(n, "Story", T0, &["3", "10"]);
    i.components = [team.into()].into();
    i.fix_versions = [fixes.into()].into();
    i
}

#[test]
fn a_version_shipping_two_teams_work_is_a_deployment_of_both() {
    let issues = vec![done_story(1, "Payments", "100"), done_story(2, "Search", "100"), done_story(3, "Search", "101")];
    let versions =
        vec![version("100", Some(monday(1))), version("101", Some(monday(2))), version("102", Some(monday(2)))];
    let build = build_project_teams(&project(issues, versions), &by_component(), UTC).unwrap();
    let deployments = |weeks: &ProjectAggregates| weeks.values().map(|a| a.deployments).sum::<u32>();
    assert_eq!(deployments(&build.weeks), 3, "the project: every release");
    assert_eq!(deployments(&build.teams["Payments"]), 1, "100 only");
    assert_eq!(deployments(&build.teams["Search"]), 2, "100 and 101");
    assert_eq!(build.teams["Payments"][&IsoWeek::of_date(monday(1))].deployments, 1);
    assert_eq!(build.teams["Search"][&IsoWeek::of_date(monday(1))].deployments, 1);
    // So team figures do not add up to the project's: 1 + 2 > 3 - 1.
    assert_eq!(build.teams.len(), 2);
}

#[test]
fn a_teams_deployment_keeps_the_projects_flags_whichever_team_failed_it() {
    // Search's incident, attributed by time (no affected version) to the
    // release the day before, which shipped only Payments' work.
    let mut incident = issue(9, "Incident", T0 + 8 * DAY + 3_600_000, &["10"]);
    incident.components = ["Search".into()].into();
    let mut fix = done_story(4, "Payments", "101");
    fix.created = T0 + 9 * DAY;
    // The incident's fix ships in 101: rework, of Payments' deployment too.
    let mut incident_fix = incident.clone();
    incident_fix.id = IssueId(99);
    incident_fix.fix_versions = ["101".into()].into();
    let issues = vec![done_story(1, "Payments", "100"), incident, fix];
    let versions = vec![
        version("100", NaiveDate::from_ymd_opt(2026, 1, 12)),
        version("101", NaiveDate::from_ymd_opt(2026, 1, 20)),
    ];
    let build = build_project_teams(&project(issues, versions.clone()), &by_component(), UTC).unwrap();
    let week = IsoWeek::of_date(NaiveDate::from_ymd_opt(2026, 1, 12).unwrap());
    assert_eq!(build.weeks[&week].failed_by_time, 1);
    assert_eq!(build.teams["Payments"][&week].failed_by_time, 1, "Payments' release failed, by Search's incident");
    assert_eq!(build.teams["Search"].get(&week).map_or(0, |a| a.deployments), 0, "not Search's deployment");
    assert_eq!(build.teams["Search"][&IsoWeek::of_instant(T0 + 8 * DAY, UTC)].incidents, 1);

    let issues = vec![done_story(1, "Payments", "100"), done_story(4, "Payments", "101"), incident_fix];
    let build = build_project_teams(&project(issues, versions), &by_component(), UTC).unwrap();
    let week = IsoWeek::of_date(NaiveDate::from_ymd_opt(2026, 1, 20).unwrap());
    assert_eq!(build.teams["Payments"][&week].rework_deployments, 1);
    assert_eq!(build.teams["Search"][&week].rework_deployments, 1, "101 ships Search's fix too");
}

#[test]
fn excluded_issues_count_in_their_teams_excluded_only_and_ship_nothing() {
    let mut epic = issue(1, "Epic", T0, &["3", "10"]);
    epic.components = ["Payments".into()].into();
    epic.fix_versions = ["100".into()].into();
    let build =
        build_project_teams(&project(vec![epic], vec![version("100", Some(monday(1)))]), &by_component(), UTC).unwrap();
    let payments = &build.teams["Payments"];
    assert_eq!(payments.values().map(|a| a.excluded).sum::<u32>(), 1);
    assert_eq!(payments.values().map(|a| a.deployments + a.completed).sum::<u32>(), 0);
}

#[test]
fn without_a_teams_hook_no_issue_has_a_team() {
    let build =
        build_project_teams(&project(vec![done_story(1, "Payments", "100")], vec![]), &DefinitionSet::shipped(), UTC)
            .unwrap();
    assert!(build.teams.is_empty());
    assert!(!DefinitionSet::shipped().defines_teams());
}

#[test]
fn a_project_keeps_at_most_its_limit_of_teams_and_counts_the_rest() {
    let issues: Vec<IssueDraft> =
        (0..MAX_TEAMS_PER_PROJECT + 7).map(|n| done_story(n, &format!("team-{n:04}"), "100")).collect();
    let build = build_project_teams(&project(issues, vec![]), &by_component(), UTC).unwrap();
    assert_eq!((build.teams.len(), build.dropped_teams), (MAX_TEAMS_PER_PROJECT, 7));
    assert!(
        build.teams.contains_key("team-0000") && !build.teams.contains_key(&format!("team-{MAX_TEAMS_PER_PROJECT:04}"))
    );
    assert_eq!(
        build.weeks.values().map(|a| a.completed).sum::<u32>() as usize,
        MAX_TEAMS_PER_PROJECT + 7,
        "the project loses nothing"
    );
}

// ------------------------------------------------------- the hook's checks

/// `check(returned, expected)`: the names a hook returning `returned` gives,
/// or the start of its error.
fn check(returned: &str, expected: Result<&[&str], &str>) {
    let source = format!("fn teams(issue) {{\n    if issue.project == \"REAL\" {{ {returned} }} else {{ [] }}\n}}\n");
    let set = DefinitionSet::compile(files(&[("teams.rhai", &source)])).unwrap();
    let mut i = issue(1, "Story", T0, &[]);
    i.project = "REAL".into();
    let facts = project(vec![i], vec![]);
    let got = jira_dora::domain::aggregate::with_issue_views(&facts, |views| set.teams(&views[0]));
    match (got, expected) {
        (Ok(names), Ok(want)) => assert_eq!(names.iter().map(|n| &**n).collect::<Vec<_>>(), want, "{returned}"),
        (Err(e), Err(want)) => {
            assert_eq!(e.hook, "teams");
            assert!(e.message.starts_with(want), "{returned}: {e}");
            assert!(!e.message.contains("secret"), "{returned}: an error never quotes a name: {e}");
        }
        (got, want) => panic!("{returned}: got {got:?}, expected {want:?}"),
    }
}

#[test]
fn team_names_are_trimmed_unique_and_bounded() {
    check(r#"["payments", " payments ", "Payments"]"#, Ok(&["payments", "Payments"]));
    check("[]", Ok(&[]));
    check(&format!("[\"{}\"]", "x".repeat(64)), Ok(&[&"x".repeat(64)]));
    check(r#"["  "]"#, Err("returned an empty team name"));
    check(&format!("[\"secret{}\"]", "x".repeat(60)), Err("returned a team name longer than 64 characters"));
    check("{ let a = []; for n in 0..21 { a.push(`secret${n}`) } a }", Err("returned more than 20 team names"));
    check(r#""secret""#, Err("returned a string, expected an array of team names"));
    check(r#"["ok", 7]"#, Err("returned an array holding an integer"));
    check(r#"throw "secret""#, Err(""));
}

#[test]
fn the_check_of_names_is_the_domains() {
    assert_eq!(checked_teams(["a", " a", "b "]).unwrap().len(), 2);
    assert!(checked_teams(vec!["x"; 21]).is_ok(), "duplicates count once");
    assert!(checked_teams((0..21).map(|n| n.to_string())).is_err());
}

#[test]
fn a_teams_hook_that_fails_on_the_samples_is_refused_at_load_time() {
    for (source, says) in [
        ("fn teams(issue) { [\"\"] }\n", "empty team name"),
        ("fn teams(issue) { issue.labels[0] }\n", "teams"),
        ("fn teams(issue) { 42 }\n", "expected an array of team names"),
        ("fn teams(a, b) { [] }\n", "takes 1 parameter"),
    ] {
        let errors = DefinitionSet::compile(files(&[("teams.rhai", source)])).unwrap_err();
        let text = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(text.contains(says), "{source}: {text}");
    }
    // Defined twice.
    let errors = DefinitionSet::compile(files(&[
        ("a.rhai", "fn teams(issue) { [] }\n"),
        ("b.rhai", "fn teams(issue) { [] }\n"),
    ]))
    .unwrap_err();
    assert!(errors.iter().any(|e| e.to_string().contains("defined in both a.rhai and b.rhai")), "{errors:?}");
}

#[test]
fn a_hostile_teams_hook_is_stopped_and_its_errors_carry_no_issue_data() {
    let source = "fn teams(issue) {\n    if issue.project == \"HOSTILE\" { loop { } }\n    if issue.project == \"THROW\" { throw issue.components[0] }\n    issue.components\n}\n";
    let set = DefinitionSet::compile(files(&[("teams.rhai", source)])).unwrap();
    for (key, says) in [("HOSTILE", "limit exceeded"), ("THROW", "")] {
        let mut i = issue(1, "Story", T0, &[]);
        i.project = key.into();
        i.components = ["secret-component".into()].into();
        let facts = project(vec![i], vec![]);
        let err = build_project_teams(&facts, &set, UTC).unwrap_err().to_string();
        assert!(err.contains("`teams`") && err.contains(says), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}

#[test]
fn memoised_teams_answers_equal_unmemoised_ones() {
    let source = "fn teams(issue) {\n    let t = [];\n    for l in issue.labels { if l.starts_with(\"team-\") { t.push(l.sub_string(5)) } }\n    t + issue.components\n}\n";
    let memoised = DefinitionSet::compile(files(&[("teams.rhai", source)])).unwrap();
    let plain = DefinitionSet::compile(files(&[("teams.rhai", source)])).unwrap().memoised(false);
    let mut issues = Vec::new();
    for n in 0..40 {
        let mut i = done_story(n, TEAM_NAMES[n % 3], "100");
        if n % 4 == 0 {
            push(&mut i.labels, format!("team-{}", n % 5).into());
        }
        issues.push(i);
    }
    let facts = project(issues, vec![version("100", Some(monday(1)))]);
    assert_eq!(build_project_teams(&facts, &memoised, UTC).unwrap(), build_project_teams(&facts, &plain, UTC).unwrap());
    assert_eq!(build_project_teams(&facts, &memoised, UTC).unwrap().teams.len(), 3 + 5);
}
