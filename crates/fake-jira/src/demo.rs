//! The embedded demo site: three made-up teams over the 52 weeks up to a
//! given day, generated deterministically (a fixed seed), so the demo's
//! figures mean something whatever the date.
//!
//! The data has the shapes the metrics care about: versions released daily
//! to weekly (a few unreleased, undated or archived), bugs and incidents
//! that name affected and fix versions, re-opened and skipped work, incidents
//! restored in hours to days (and a couple still open), changes by app
//! accounts, and a visible shift after [`demo_ai_rollout`]: more app changes
//! and `ai-assisted` labels, shorter lead times, slightly more releases.
//! Issues have a component, a priority and the custom fields of
//! [`demo_fields`] (a "Team" and a "Severity" option field, story points,
//! and a free-text field the service must never read). Every text and
//! person is invented.
//!
//! Pure data: must not depend on `jira`, HTTP or a clock (`today` is a
//! parameter).

use chrono::{DateTime, Duration, NaiveDate, Utc};

use dora_domain::aggregate::{ProjectAggregates, WeeklyAggregate};
use dora_domain::time::IsoWeek;

use crate::{Site, SiteField, SiteHistory, SiteIssue, SiteItem, SiteProject, SiteStatus, SiteUser, SiteVersion};

/// The seed of the demo site.
const DEMO_SEED: u64 = 0x00D0_4A20;

/// The day the demo teams "adopted AI tooling": 16 weeks before `today`.
pub fn demo_ai_rollout(today: NaiveDate) -> NaiveDate {
    today - Duration::weeks(16)
}

/// The demo's definitions of teams, as (file name, source): one team per
/// component, so the demo shows team figures. Plain text: this crate
/// knows nothing of the definitions themselves.
pub const DEMO_TEAMS_DEFINITION: (&str, &str) = ("teams.rhai", include_str!("../demo-defs/teams.rhai"));

/// The demo site for `today` (always the same site for the same day).
pub fn demo_site(today: NaiveDate) -> Site {
    let profiles = [
        Profile {
            key: "SHOP",
            id: "10000",
            name: "Web Shop",
            issues: 1100,
            lead_days: 4.0,
            release_every_days: 2.0,
            bug_share: 0.16,
            incident_share: 0.03,
        },
        Profile {
            key: "PAY",
            id: "10001",
            name: "Payments",
            issues: 700,
            lead_days: 8.0,
            release_every_days: 7.0,
            bug_share: 0.20,
            incident_share: 0.05,
        },
        Profile {
            key: "OPS",
            id: "10002",
            name: "Platform Operations",
            issues: 500,
            lead_days: 2.5,
            release_every_days: 1.2,
            bug_share: 0.12,
            incident_share: 0.10,
        },
    ];
    generate(&profiles, today, DEMO_SEED)
}

/// A bigger site for benchmarks: `projects` projects like the demo's, each
/// with `issues_per_project` issues, anchored on a fixed day.
pub fn large_site(projects: usize, issues_per_project: usize, seed: u64) -> Site {
    let today = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default();
    let keys: Vec<(String, String, String)> =
        (0..projects).map(|n| (format!("P{n}"), (10_000 + n).to_string(), format!("Team {n}"))).collect();
    let profiles: Vec<Profile<'_>> = keys
        .iter()
        .enumerate()
        .map(|(n, (k, id, name))| Profile {
            key: k,
            id,
            name,
            issues: issues_per_project,
            lead_days: 2.0 + (n % 5) as f64 * 2.0,
            release_every_days: [1.0, 2.0, 7.0][n % 3],
            bug_share: 0.15,
            incident_share: 0.02 + (n % 4) as f64 * 0.02,
        })
        .collect();
    generate(&profiles, today, seed)
}

/// Weekly aggregates as a harvest of a large site would leave them, without
/// the harvest: `projects` projects (`P0`, `P1`...) × `weeks` weeks up to
/// 2026-W01, with typical counts and durations. For snapshot tests and
/// benchmarks.
pub fn large_aggregates(projects: usize, weeks: usize, seed: u64) -> Vec<(String, ProjectAggregates)> {
    let last = IsoWeek::of_date(NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default());
    (0..projects)
        .map(|n| {
            let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(n as u64 * 0x9E37_79B9));
            let lead_mean = 24.0 * (2.0 + (n % 5) as f64 * 2.0);
            let weeks = (0..weeks)
                .map(|back| {
                    let mut a = WeeklyAggregate { deployments: rng.u32(0..8), ..Default::default() };
                    for _ in 0..a.deployments {
                        a.deployment_days |= 1 << rng.u8(0..7);
                    }
                    a.failed_deployments = rng.u32(0..=a.deployments.min(2));
                    a.rework_deployments = rng.u32(0..=a.deployments.min(1));
                    a.completed = rng.u32(3..25);
                    for _ in 0..a.completed {
                        let ms = (exp(&mut rng, lead_mean) * 3_600_000.0) as i64;
                        a.lead_time.add(ms);
                        if rng.f64() < 0.3 {
                            a.ai_involved += 1;
                            a.lead_time_ai.add(ms);
                            a.reopened_ai += u32::from(rng.f64() < 0.05);
                        }
                        a.reopened += u32::from(rng.f64() < 0.08);
                    }
                    a.incidents = rng.u32(0..3);
                    for _ in 0..a.incidents {
                        if rng.f64() < 0.9 {
                            a.time_to_restore.add((exp(&mut rng, 10.0) * 3_600_000.0) as i64);
                        } else {
                            a.open_incidents += 1;
                        }
                    }
                    a.excluded = rng.u32(0..3);
                    (last.plus(-(back as i32)), a)
                })
                .collect();
            (format!("P{n}"), weeks)
        })
        .collect()
}

struct Profile<'a> {
    key: &'a str,
    id: &'a str,
    name: &'a str,
    issues: usize,
    lead_days: f64,
    release_every_days: f64,
    bug_share: f64,
    incident_share: f64,
}

// Status ids, as a Jira site would number them.
const TODO: usize = 0;
const IN_PROGRESS: usize = 1;
const IN_REVIEW: usize = 2;
const DONE: usize = 3;
const CLOSED: usize = 4;
const ROLLED_BACK: usize = 5;
const DEPLOY_FAILED: usize = 6;
const DEPLOYED: usize = 7;

fn statuses() -> Vec<SiteStatus> {
    let s = |id: &str, name: &str, cat: &str| SiteStatus { id: id.into(), name: name.into(), category_key: cat.into() };
    vec![
        s("10000", "To Do", "new"),
        s("3", "In Progress", "indeterminate"),
        s("10001", "In Review", "indeterminate"),
        s("10002", "Done", "done"),
        s("6", "Closed", "done"),
        s("10003", "Rolled Back", "indeterminate"),
        s("10004", "Deployment Failed", "indeterminate"),
        s("10005", "Deployed", "done"),
    ]
}

const FIRST: &[&str] = &[
    "Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kaia", "Luca", "Mina",
    "Nils", "Olga", "Priya",
];
const LAST: &[&str] = &["Arden", "Bellweather", "Castell", "Dunmore", "Eastwood", "Fairbank", "Glenholm", "Hartley"];
const THINGS: &[&str] = &[
    "checkout",
    "cart",
    "invoice export",
    "login form",
    "search filter",
    "refund flow",
    "audit log",
    "rate limiter",
    "health check",
    "backup job",
    "price badge",
    "webhook retry",
    "currency rounding",
    "session timeout",
    "metrics endpoint",
];
/// The components of the demo projects, one per thing an issue is about.
const COMPONENTS: &[&str] = &["Storefront", "Billing", "Accounts", "Platform", "Search"];
/// The demo's "Team" option field, by component.
const TEAMS: &[&str] = &["Checkout", "Payments", "Identity", "Platform", "Discovery"];

/// The demo site's custom fields: two option fields, a number, a date, and
/// a free-text field the service must never read.
pub fn demo_fields() -> Vec<SiteField> {
    vec![
        SiteField::new("customfield_10010", "Team", "option", None),
        SiteField::new("customfield_10011", "Severity", "option", None),
        SiteField::new("customfield_10012", "Story points", "number", None),
        SiteField::new("customfield_10013", "Areas", "array", Some("option")),
        SiteField::new("customfield_10014", "Customer notes", "string", None),
    ]
}

/// The demo's values of those fields for one issue.
fn custom_values(n: usize, issue_type: &str, component: usize, thing: &str) -> Vec<(String, serde_json::Value)> {
    let option = |id: u64, value: &str| serde_json::json!({"self": format!("/rest/api/3/customFieldOption/{id}"), "id": id.to_string(), "value": value});
    let mut values = vec![("customfield_10010".to_owned(), option(10_100 + component as u64, TEAMS[component]))];
    if issue_type == "Incident" {
        let sev = ["Sev 1", "Sev 2", "Sev 3"][n % 3];
        values.push(("customfield_10011".to_owned(), option(10_200 + (n % 3) as u64, sev)));
        values.push((
            "customfield_10014".to_owned(),
            serde_json::json!(format!("Customer reported the {thing} failing (demo text).")),
        ));
    }
    if matches!(issue_type, "Story" | "Task") {
        values.push(("customfield_10012".to_owned(), serde_json::json!([1, 2, 3, 5, 8][n % 5])));
    }
    if n.is_multiple_of(4) {
        values
            .push(("customfield_10013".to_owned(), serde_json::json!([option(10_300, "web"), option(10_301, "api")])));
    }
    values
}

/// The demo's priority for an issue.
fn priority(n: usize, issue_type: &str) -> &'static str {
    match issue_type {
        "Incident" => ["Highest", "High"][n % 2],
        "Bug" => ["High", "Medium", "Medium"][n % 3],
        _ => ["Medium", "Low", "Medium", "High"][n % 4],
    }
}

const VERBS: &[&str] = &["Improve", "Fix", "Add", "Refactor", "Speed up", "Document", "Harden", "Simplify"];

fn person(rng: &mut fastrand::Rng) -> SiteUser {
    let f = FIRST[rng.usize(..FIRST.len())];
    let l = LAST[rng.usize(..LAST.len())];
    SiteUser {
        account_id: format!("712020:demo-{}-{}", f.to_lowercase(), l.to_lowercase()),
        account_type: "atlassian".into(),
        display_name: format!("{f} {l}"),
        email: format!("{}.{}@example.com", f.to_lowercase(), l.to_lowercase()),
    }
}

fn app_account(rng: &mut fastrand::Rng) -> SiteUser {
    let (id, name) = [
        ("557058:demo-automation", "Automation for Jira"),
        ("712020:demo-coding-agent", "Coding Agent (demo)"),
        ("712020:demo-review-bot", "Review Assistant (demo)"),
    ][rng.usize(..3)];
    SiteUser { account_id: id.into(), account_type: "app".into(), display_name: name.into(), email: String::new() }
}

/// An exponential draw with the given mean.
fn exp(rng: &mut fastrand::Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.f64()).ln()
}

fn hours(h: f64) -> Duration {
    Duration::seconds((h * 3600.0) as i64)
}

struct Ids {
    next: u64,
}

impl Ids {
    fn take(&mut self) -> String {
        self.next += 1;
        self.next.to_string()
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

fn generate(profiles: &[Profile<'_>], today: NaiveDate, seed: u64) -> Site {
    let st = statuses();
    let mut ids = Ids { next: 10_100 };
    let mut hist_ids = Ids { next: 100_000 };
    let projects = profiles
        .iter()
        .enumerate()
        .map(|(n, p)| {
            let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(n as u64 * 0x9E37_79B9));
            project(p, today, &st, &mut rng, &mut ids, &mut hist_ids)
        })
        .collect();
    Site { projects, statuses: st, time_zone: "Europe/Berlin".into(), fields: demo_fields() }
}

fn project(
    p: &Profile<'_>,
    today: NaiveDate,
    st: &[SiteStatus],
    rng: &mut fastrand::Rng,
    ids: &mut Ids,
    hist_ids: &mut Ids,
) -> SiteProject {
    let start = today - Duration::weeks(52);
    let rollout = demo_ai_rollout(today);
    let now = midnight(today);

    // Versions: released every few days (a little more often after the
    // rollout), then a couple planned ones.
    let mut versions = Vec::new();
    let mut day = start + Duration::days(rng.i64(0..3));
    let (mut minor, mut patch) = (0u32, 0u32);
    while day < today {
        patch += 1;
        if patch > 9 {
            minor += 1;
            patch = 0;
        }
        let undated = rng.f64() < 0.03;
        versions.push(SiteVersion {
            id: ids.take(),
            name: format!("{}.{minor}.{patch}", 1 + (day - start).num_weeks() / 26),
            released: true,
            release_date: (!undated).then_some(day),
            archived: day < start + Duration::weeks(12) && rng.f64() < 0.4,
            description: format!("Release notes for the {} team", p.name),
        });
        let every = if day >= rollout { p.release_every_days * 0.8 } else { p.release_every_days };
        day += Duration::days(exp(rng, every).round().max(1.0) as i64);
    }
    for k in 0..2 {
        versions.push(SiteVersion {
            id: ids.take(),
            name: format!("next-{}", k + 1),
            released: false,
            release_date: (k == 0).then(|| today + Duration::days(7)),
            archived: false,
            description: "Planned".into(),
        });
    }
    let released: Vec<(NaiveDate, String)> =
        versions.iter().filter(|v| v.released).filter_map(|v| v.release_date.map(|d| (d, v.id.clone()))).collect();

    let span_hours = (now - midnight(start)).num_hours() as f64;
    let mut created_at: Vec<f64> = (0..p.issues).map(|_| rng.f64() * span_hours).collect();
    created_at.sort_by(|a, b| a.total_cmp(b));

    let mut issues: Vec<SiteIssue> = Vec::with_capacity(p.issues);
    for (n, h) in created_at.into_iter().enumerate() {
        let created = midnight(start) + hours(h);
        let after = created.date_naive() >= rollout;
        let roll = rng.f64();
        let (issue_type, is_subtask) = if roll < p.incident_share {
            ("Incident", false)
        } else if roll < p.incident_share + p.bug_share {
            ("Bug", false)
        } else if roll < p.incident_share + p.bug_share + 0.04 {
            ("Epic", false)
        } else if roll < p.incident_share + p.bug_share + 0.10 {
            ("Sub-task", true)
        } else if rng.f64() < 0.35 {
            ("Task", false)
        } else {
            ("Story", false)
        };
        let app_share = if after { 0.35 } else { 0.04 };
        let mut life = Life { st, now, at: created, cur: TODO, histories: Vec::new(), rng, hist_ids, app_share };
        let incident = issue_type == "Incident";
        if incident {
            life.wait(0.5, IN_PROGRESS);
            let restore = exp(life.rng, if after { 6.0 } else { 14.0 }) + 0.5;
            life.step(hours(restore), DONE);
        } else if issue_type == "Epic" {
            life.wait(72.0, IN_PROGRESS);
            life.wait(24.0 * 40.0, DONE);
        } else {
            let lead = p.lead_days * if after { 0.6 } else { 1.0 };
            if life.rng.f64() < 0.08 {
                // Skipped straight to done.
                life.wait(36.0, DONE);
            } else {
                life.wait(36.0, IN_PROGRESS);
                life.wait(lead * 24.0 * 0.7, IN_REVIEW);
                let r = life.rng.f64();
                if r < 0.03 {
                    life.wait(6.0, ROLLED_BACK);
                    life.wait(4.0, IN_PROGRESS);
                    life.wait(12.0, IN_REVIEW);
                } else if r < 0.05 {
                    life.wait(3.0, DEPLOY_FAILED);
                    life.wait(4.0, IN_PROGRESS);
                    life.wait(12.0, IN_REVIEW);
                }
                life.wait(lead * 24.0 * 0.3, DONE);
            }
            if life.rng.f64() < 0.10 {
                life.wait(48.0, IN_PROGRESS);
                life.wait(24.0, DONE);
            }
            let r = life.rng.f64();
            if r < 0.10 {
                life.wait(24.0 * 5.0, CLOSED);
            } else if r < 0.18 && p.key == "OPS" {
                life.wait(8.0, DEPLOYED);
            }
        }
        let Life { cur, histories, at, .. } = life;
        let done = st[cur].category_key == "done";
        let resolved = done.then(|| {
            // The start of the final stay in done.
            let mut t = at;
            for h in histories.iter().rev() {
                let from_done = h.items.iter().any(|i| {
                    i.field == "status" && st.iter().any(|s| Some(&s.id) == i.from.as_ref() && s.category_key == "done")
                });
                t = h.created;
                if !from_done {
                    break;
                }
            }
            t
        });

        let mut labels = Vec::new();
        if rng.f64() < if after { 0.25 } else { 0.01 } && !incident {
            labels.push("ai-assisted".to_string());
        }
        if rng.f64() < 0.02 {
            labels.push("dora-exclude".to_string());
        }
        if issue_type == "Bug" && rng.f64() < 0.05 {
            labels.push("incident".to_string());
        }

        // Some bugs name the version they hit, incidents rarely do (they are
        // attributed to the release before them by time); fixes ship in the
        // next release.
        let mut affected = Vec::new();
        if matches!(issue_type, "Bug" | "Incident") && rng.f64() < if incident { 0.1 } else { 0.12 } {
            let before: Vec<&(NaiveDate, String)> =
                released.iter().filter(|(d, _)| *d <= created.date_naive()).collect();
            if !before.is_empty() {
                let back = rng.usize(..before.len().min(3));
                affected.push(before[before.len() - 1 - back].1.clone());
            }
        }
        let mut fix = Vec::new();
        if let Some(r) = resolved
            && let Some((_, id)) = released.iter().find(|(d, _)| *d >= r.date_naive())
            && rng.f64() < 0.85
        {
            fix.push(id.clone());
        }

        let thing_index = rng.usize(..THINGS.len());
        let thing = THINGS[thing_index];
        let component = thing_index % COMPONENTS.len();
        let verb = VERBS[rng.usize(..VERBS.len())];
        let reporter = person(rng);
        let mut histories = histories;
        if rng.f64() < 0.3 {
            // An edit of another field, carrying text.
            histories.push(SiteHistory {
                id: hist_ids.take(),
                created: created + Duration::minutes(rng.i64(1..120)),
                author: Some(reporter.clone()),
                items: vec![SiteItem {
                    field: "summary".into(),
                    field_id: Some("summary".into()),
                    from: None,
                    from_string: Some(format!("{thing} tweak")),
                    to: None,
                    to_string: Some(format!("{verb} the {thing}")),
                }],
            });
            histories.sort_by_key(|a| a.created);
        }
        let updated = histories.iter().map(|h| h.created).max().unwrap_or(created).max(created);
        issues.push(SiteIssue {
            id: ids.take(),
            key: format!("{}-{}", p.key, n + 1),
            issue_type: issue_type.into(),
            is_subtask,
            labels,
            created,
            updated,
            resolved,
            status_id: st[cur].id.clone(),
            fix_versions: fix,
            affected_versions: affected,
            components: vec![COMPONENTS[component].to_owned()],
            priority: Some(priority(n, issue_type).to_owned()),
            custom: custom_values(n, issue_type, component, thing),
            summary: if incident {
                format!("{thing} unavailable for some customers")
            } else {
                format!("{verb} the {thing}")
            },
            description: format!("As a customer I want the {thing} to behave predictably. (Demo text.)"),
            comments: vec![format!("Looks good to me. ({})", reporter.display_name)],
            assignee: Some(person(rng)),
            creator: Some(reporter.clone()),
            reporter: Some(reporter),
            histories,
        });
    }

    // A couple of incidents still open: the last incident, restored never.
    if (p.key == "PAY" || p.key == "OPS")
        && let Some(i) = issues.iter_mut().rev().find(|i| i.issue_type == "Incident")
    {
        i.histories.retain(|h| !h.items.iter().any(|it| it.to.as_deref() == Some(st[DONE].id.as_str())));
        i.status_id = st[IN_PROGRESS].id.clone();
        i.resolved = None;
        i.fix_versions.clear();
        i.updated = i.histories.iter().map(|h| h.created).max().unwrap_or(i.created);
    }
    SiteProject { key: p.key.into(), id: p.id.into(), name: p.name.into(), versions, issues }
}

/// An issue's walk through the workflow; stops at `now`.
struct Life<'a, 'r> {
    st: &'a [SiteStatus],
    now: DateTime<Utc>,
    at: DateTime<Utc>,
    cur: usize,
    histories: Vec<SiteHistory>,
    rng: &'r mut fastrand::Rng,
    hist_ids: &'r mut Ids,
    app_share: f64,
}

impl Life<'_, '_> {
    /// Waits an exponential time with the given mean (hours), then moves.
    fn wait(&mut self, mean_hours: f64, to: usize) {
        let h = exp(self.rng, mean_hours);
        self.step(hours(h), to);
    }

    fn step(&mut self, after: Duration, to: usize) {
        let at = self.at + after.max(Duration::minutes(1));
        if at >= self.now || self.at >= self.now {
            self.at = self.now;
            return;
        }
        let author = if self.rng.f64() < self.app_share {
            Some(app_account(self.rng))
        } else if self.rng.f64() < 0.03 {
            None
        } else {
            Some(person(self.rng))
        };
        self.histories.push(SiteHistory {
            id: self.hist_ids.take(),
            created: at,
            author,
            items: vec![SiteItem::status(&self.st[self.cur], &self.st[to])],
        });
        self.at = at;
        self.cur = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 4).unwrap()
    }

    #[test]
    fn same_day_same_site() {
        let a = demo_site(today());
        let b = demo_site(today());
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn demo_covers_a_year_before_today_and_nothing_after() {
        let site = demo_site(today());
        let total: usize = site.projects.iter().map(|p| p.issues.len()).sum();
        assert!((1500..=3000).contains(&total), "{total}");
        let end = midnight(today());
        let start = midnight(today() - Duration::weeks(52));
        for p in &site.projects {
            for i in &p.issues {
                assert!(i.created >= start && i.updated <= end && i.created <= i.updated, "{}", i.key);
                assert!(i.histories.windows(2).all(|w| w[0].created <= w[1].created));
                if let Some(r) = i.resolved {
                    assert!(r >= i.created && r <= end);
                }
            }
            let released = p.versions.iter().filter(|v| v.released && v.release_date.is_some()).count();
            assert!(released >= 40, "{}: {released} releases", p.key);
            assert!(p.versions.iter().any(|v| !v.released));
            assert!(p.versions.iter().any(|v| v.archived));
        }
    }

    #[test]
    fn ai_rollout_shifts_app_changes_labels_and_releases() {
        let site = demo_site(today());
        let rollout = midnight(demo_ai_rollout(today()));
        let (mut before, mut after) = ((0usize, 0usize, 0usize), (0usize, 0usize, 0usize));
        for p in &site.projects {
            for i in &p.issues {
                let bucket = if i.created >= rollout { &mut after } else { &mut before };
                bucket.0 += 1;
                bucket.1 += i.labels.iter().filter(|l| *l == "ai-assisted").count();
                bucket.2 +=
                    i.histories.iter().filter(|h| h.author.as_ref().is_some_and(|a| a.account_type == "app")).count();
            }
        }
        let share = |b: (usize, usize, usize)| (b.1 as f64 / b.0 as f64, b.2 as f64 / b.0 as f64);
        let (lb, ab) = share(before);
        let (la, aa) = share(after);
        assert!(la > 5.0 * lb && aa > 3.0 * ab, "labels {lb:.3}->{la:.3}, app changes {ab:.3}->{aa:.3}");
        let open_incidents = site
            .projects
            .iter()
            .flat_map(|p| &p.issues)
            .filter(|i| i.issue_type == "Incident" && i.resolved.is_none())
            .count();
        assert!(open_incidents >= 2, "{open_incidents}");
    }

    #[test]
    fn large_site_scales() {
        let s = large_site(4, 300, 7);
        assert_eq!(s.projects.len(), 4);
        assert!(s.projects.iter().all(|p| p.issues.len() == 300));
    }
}
