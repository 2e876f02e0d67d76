//! The harvester against the fake Jira over real HTTP: incremental refreshes
//! after random edits give exactly the figures of a full harvest, a failed
//! request keeps the previous figures, and refreshes join running jobs.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fake_jira::demo::large_site;
use fake_jira::{FakeJira, Fault, SiteFlavor, SiteIssue, SiteUser, SiteVersion};
use jira_dora::definitions::DefinitionSet;
use jira_dora::harvest::{Harvester, JobState, JobView};
use jira_dora::jira::{CloudChangelogs, Flavor, JiraClient, JiraConfig};
use jira_dora::store::Store;

const PROJECTS: [&str; 2] = ["P0", "P1"];

/// One property case: the seed drives the site, the edits and the clock;
/// the rest varies how the client pages and where it takes changelogs from.
#[derive(Debug, Clone, Copy)]
struct Case {
    seed: u64,
    flavor: SiteFlavor,
    page_size: u32,
    /// Cloud: `None` takes every changelog from bulkfetch; `Some(n)` expands
    /// changelogs in searches, cut to the `n` most recent histories (small:
    /// more bulk completions).
    expanded_cap: Option<usize>,
    overlap: Duration,
}

fn config(fake: &FakeJira, flavor: SiteFlavor, page_size: u32, overlap: Duration) -> JiraConfig {
    JiraConfig {
        flavor: match flavor {
            SiteFlavor::Cloud => Flavor::Cloud,
            SiteFlavor::DataCenter => Flavor::DataCenter,
        },
        max_retries: 3,
        retry_base: Duration::from_millis(1),
        retry_cap: Duration::from_millis(5),
        request_timeout: Duration::from_secs(20),
        page_size,
        overlap,
        ..JiraConfig::new(fake.base_url())
    }
}

/// A harvester of `P0` and `P1` with the shipped definitions, and its
/// store; every incremental refresh checks for deleted and moved issues
/// (the edits here delete and move issues between refreshes seconds apart).
fn harvester(cfg: JiraConfig) -> (Arc<Harvester>, Arc<Store>) {
    let (h, store) = hourly_harvester(cfg);
    h.set_reconcile_interval(Duration::ZERO);
    (h, store)
}

/// [`harvester`] with the default reconciliation interval (hourly).
fn hourly_harvester(cfg: JiraConfig) -> (Arc<Harvester>, Arc<Store>) {
    let store = Arc::new(Store::new());
    let client = JiraClient::new(cfg).expect("client config");
    let h = Harvester::new(
        client,
        Arc::clone(&store),
        Arc::new(DefinitionSet::shipped()),
        chrono_tz::Europe::Berlin,
        PROJECTS.iter().map(|p| p.to_string()).collect(),
    );
    (Arc::new(h), store)
}

/// Waits for a job's end and returns its final view.
async fn finished(h: &Harvester, id: &str) -> JobView {
    let (_, mut rx) = h.watch(id).expect("job exists");
    let wait = async {
        loop {
            let view = h.job(id).expect("job exists");
            if view.finished.is_some() {
                return view;
            }
            if rx.changed().await.is_err() {
                return h.job(id).expect("job exists");
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait).await.expect("job ends within a minute")
}

/// Runs a refresh of every configured project to its end.
async fn refresh(h: &Arc<Harvester>, full: bool) -> JobView {
    let id = h.start(Vec::new(), full).await.expect("refresh starts");
    finished(h, &id).await
}

fn assert_succeeded(view: &JobView, what: &str) {
    assert_eq!(view.state, JobState::Succeeded, "{what}: {view:#?}");
}

/// Asserts that two stores hold the same figures for every project.
fn assert_same_figures(a: &Store, b: &Store, what: &str) {
    assert_eq!(a.keys(), b.keys(), "{what}: projects");
    for key in b.keys() {
        let (x, y) = (a.get(&key).unwrap(), b.get(&key).unwrap());
        assert_eq!(x.definitions_version, y.definitions_version, "{what}: definitions of {key}");
        if x.aggregates != y.aggregates {
            let weeks: Vec<_> = y
                .aggregates
                .iter()
                .filter(|(w, agg)| x.aggregates.get(*w) != Some(*agg))
                .map(|(w, _)| *w)
                .chain(x.aggregates.keys().filter(|w| !y.aggregates.contains_key(*w)).copied())
                .collect();
            panic!("{what}: incremental figures of {key} differ from a full harvest in weeks {weeks:?}");
        }
    }
}

fn app_account() -> SiteUser {
    SiteUser {
        account_id: "712020:demo-coding-agent".into(),
        account_type: "app".into(),
        display_name: "Coding Agent".into(),
        email: String::new(),
    }
}

/// Random edits through the fake's mutation API, on the fake's clock.
struct Editor<'a> {
    fake: &'a FakeJira,
    rng: fastrand::Rng,
    /// The latest time the fake's clock has shown.
    clock: DateTime<Utc>,
    overlap: Duration,
}

impl Editor<'_> {
    /// Moves the clock forward: within the same minute, just across a minute
    /// boundary, or by hours or days.
    fn tick(&mut self) {
        let step = match self.rng.u8(..10) {
            0..=3 => chrono::Duration::milliseconds(self.rng.i64(0..15_000)),
            4..=6 => {
                let into_minute = self.clock.timestamp_millis().rem_euclid(60_000);
                chrono::Duration::milliseconds(60_000 - into_minute + self.rng.i64(0..3_000))
            }
            7..=8 => chrono::Duration::minutes(self.rng.i64(1..180)),
            _ => chrono::Duration::hours(self.rng.i64(6..72)),
        };
        self.clock += step;
        self.fake.set_now(self.clock);
    }

    fn issues(&self, project: &str) -> Vec<(String, DateTime<Utc>)> {
        self.fake.with_state(|st| {
            st.site
                .projects
                .iter()
                .find(|p| p.key == project)
                .map(|p| p.issues.iter().map(|i| (i.key.clone(), i.updated)).collect())
                .unwrap_or_default()
        })
    }

    fn pick_issue(&mut self, project: &str) -> Option<String> {
        let issues = self.issues(project);
        (!issues.is_empty()).then(|| issues[self.rng.usize(..issues.len())].0.clone())
    }

    fn statuses(&self) -> Vec<String> {
        self.fake.with_state(|st| st.site.statuses.iter().map(|s| s.id.clone()).collect())
    }

    fn versions(&self, project: &str) -> Vec<SiteVersion> {
        self.fake.with_state(|st| {
            st.site.projects.iter().find(|p| p.key == project).map(|p| p.versions.clone()).unwrap_or_default()
        })
    }

    /// One random edit; returns what it did, for failure messages.
    fn edit(&mut self) -> String {
        self.tick();
        let project = PROJECTS[self.rng.usize(..PROJECTS.len())];
        let other = PROJECTS.iter().find(|p| **p != project).copied().unwrap_or(project);
        match self.rng.u8(..100) {
            // Transitions, to any status: into done, out of it, and back.
            0..=34 => {
                let Some(key) = self.pick_issue(project) else { return "nothing".into() };
                let statuses = self.statuses();
                let to = statuses[self.rng.usize(..statuses.len())].clone();
                let author = self.rng.bool().then(app_account);
                self.fake.transition(&key, &to, author);
                format!("transition {key} to {to}")
            }
            35..=44 => {
                let id = self.fake.next_id();
                let kind = ["Story", "Task", "Bug", "Incident"][self.rng.usize(..4)];
                let now = self.clock;
                let issue = SiteIssue {
                    id: id.clone(),
                    key: format!("{project}-{id}"),
                    issue_type: kind.into(),
                    labels: if self.rng.bool() { vec!["ai-assisted".into()] } else { Vec::new() },
                    created: now,
                    updated: now,
                    status_id: "10000".into(),
                    ..SiteIssue::default()
                };
                self.fake.add_issue(project, issue);
                // Often worked on at once, so new issues also complete.
                if self.rng.bool() {
                    self.tick();
                    self.fake.transition(&format!("{project}-{id}"), "3", None);
                    self.tick();
                    self.fake.transition(&format!("{project}-{id}"), "10002", None);
                }
                format!("add {project}-{id} ({kind})")
            }
            45..=51 => {
                let Some(key) = self.pick_issue(project) else { return "nothing".into() };
                self.fake.delete_issue(&key);
                format!("delete {key}")
            }
            52..=58 => {
                let Some(key) = self.pick_issue(project) else { return "nothing".into() };
                let new = self.fake.move_issue(&key, other);
                format!("move {key} to {new:?}")
            }
            59..=78 => {
                let Some(key) = self.pick_issue(project) else { return "nothing".into() };
                let versions = self.versions(project);
                let r = self.rng.u8(..4);
                let pick = self.rng.usize(..versions.len().max(1));
                let label = ["ai-assisted", "dora-exclude", "incident"][self.rng.usize(..3)];
                let kind = ["Story", "Task", "Bug", "Incident", "Epic"][self.rng.usize(..5)];
                self.fake.edit_issue(&key, |i| match r {
                    0 => {
                        if let Some(at) = i.labels.iter().position(|l| l == label) {
                            i.labels.remove(at);
                        } else {
                            i.labels.push(label.into());
                        }
                    }
                    1 => i.issue_type = kind.into(),
                    2 => i.fix_versions = versions.get(pick).map(|v| vec![v.id.clone()]).unwrap_or_default(),
                    _ => i.affected_versions = versions.get(pick).map(|v| vec![v.id.clone()]).unwrap_or_default(),
                });
                format!("edit {key} ({r})")
            }
            79..=88 => {
                // Versions change without touching any issue's `updated`.
                let mut versions = self.versions(project);
                let today = self.clock.date_naive();
                let version = match self.rng.u8(..3) {
                    0 => versions.iter_mut().find(|v| !v.released).map(|v| {
                        v.released = true;
                        v.release_date = Some(today);
                        v.clone()
                    }),
                    1 if !versions.is_empty() => {
                        let n = self.rng.usize(..versions.len());
                        let v = &mut versions[n];
                        v.release_date = Some(today - chrono::Duration::days(self.rng.i64(0..30)));
                        Some(v.clone())
                    }
                    _ => Some(SiteVersion {
                        id: self.fake.next_id(),
                        name: format!("9.{}", self.rng.u32(..1000)),
                        released: self.rng.bool(),
                        release_date: Some(today),
                        archived: false,
                        description: String::new(),
                    }),
                };
                match version {
                    Some(v) => {
                        let what = format!("version {} released={} on {:?}", v.id, v.released, v.release_date);
                        self.fake.set_version(project, v);
                        what
                    }
                    None => "nothing".into(),
                }
            }
            // A late edit: Jira indexes it after the harvest, stamped a
            // little earlier than the newest change seen so far (within the
            // overlap, so a correct watermark still catches it).
            _ => {
                let overlap = chrono::Duration::from_std(self.overlap).unwrap_or_default();
                if overlap < chrono::Duration::minutes(2) {
                    return "nothing".into();
                }
                let back = self.rng.i64(0..(overlap - chrono::Duration::minutes(1)).num_milliseconds());
                let at = self.clock - chrono::Duration::milliseconds(back);
                let candidates: Vec<String> =
                    self.issues(project).into_iter().filter(|(_, u)| *u < at).map(|(k, _)| k).collect();
                if candidates.is_empty() {
                    return "nothing".into();
                }
                let key = candidates[self.rng.usize(..candidates.len())].clone();
                self.fake.set_now(at);
                self.fake.edit_issue(&key, |i| match i.labels.iter().position(|l| l == "dora-exclude") {
                    Some(at) => drop(i.labels.remove(at)),
                    None => i.labels.push("dora-exclude".into()),
                });
                self.fake.set_now(self.clock);
                format!("late edit of {key} at {at}")
            }
        }
    }
}

async fn incremental_equals_full(case: Case) {
    let mut site = large_site(2, 60, case.seed);
    site.time_zone = "Europe/Berlin".into();
    let fake = FakeJira::try_start(site, case.flavor).await.expect("fake Jira");
    if let Some(cap) = case.expanded_cap {
        fake.set_search_changelog_cap(cap);
    }
    let config = |fake: &FakeJira| JiraConfig {
        cloud_changelogs: match case.expanded_cap {
            Some(_) => CloudChangelogs::ExpandedSearch,
            None => CloudChangelogs::StatusOnly,
        },
        ..config(fake, case.flavor, case.page_size, case.overlap)
    };
    let start = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap()
        + chrono::Duration::milliseconds((case.seed % 60_000) as i64);
    fake.set_now(start);
    let cfg = config(&fake);
    let (a, store_a) = harvester(cfg.clone());
    let (b, store_b) = harvester(cfg);
    assert_succeeded(&refresh(&a, true).await, &format!("{case:?}: first harvest"));

    let mut editor =
        Editor { fake: &fake, rng: fastrand::Rng::with_seed(case.seed), clock: start, overlap: case.overlap };
    let mut log: Vec<String> = Vec::new();
    for batch in 0..5 {
        for _ in 0..editor.rng.usize(1..8) {
            log.push(editor.edit());
        }
        log.push(format!("-- incremental refresh {batch}"));
        let what = format!("{case:?}, batch {batch}; edits:\n{}\n", log.join("\n"));
        assert_succeeded(&refresh(&a, false).await, &what);
        assert_succeeded(&refresh(&b, true).await, &what);
        assert_same_figures(&store_a, &store_b, &what);
    }
    // A harvester that never saw the old site agrees too.
    let (c, store_c) = harvester(config(&fake));
    assert_succeeded(&refresh(&c, true).await, &format!("{case:?}: fresh harvester"));
    assert_same_figures(&store_a, &store_c, &format!("{case:?}: fresh harvester; edits:\n{}", log.join("\n")));
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_refreshes_give_the_figures_of_a_full_harvest() {
    let minutes = |m: u64| Duration::from_secs(60 * m);
    let cases = [
        Case { seed: 1, flavor: SiteFlavor::Cloud, page_size: 25, expanded_cap: None, overlap: minutes(5) },
        Case { seed: 2, flavor: SiteFlavor::Cloud, page_size: 7, expanded_cap: Some(2), overlap: minutes(5) },
        Case { seed: 3, flavor: SiteFlavor::DataCenter, page_size: 13, expanded_cap: None, overlap: minutes(5) },
        Case { seed: 4, flavor: SiteFlavor::Cloud, page_size: 100, expanded_cap: Some(1), overlap: minutes(3) },
        Case { seed: 5, flavor: SiteFlavor::Cloud, page_size: 10, expanded_cap: None, overlap: Duration::ZERO },
        Case { seed: 6, flavor: SiteFlavor::DataCenter, page_size: 50, expanded_cap: None, overlap: Duration::ZERO },
        Case { seed: 7, flavor: SiteFlavor::Cloud, page_size: 31, expanded_cap: Some(3), overlap: minutes(10) },
        Case { seed: 8, flavor: SiteFlavor::Cloud, page_size: 9, expanded_cap: None, overlap: minutes(5) },
        Case { seed: 9, flavor: SiteFlavor::DataCenter, page_size: 20, expanded_cap: None, overlap: minutes(2) },
        Case { seed: 10, flavor: SiteFlavor::Cloud, page_size: 60, expanded_cap: None, overlap: minutes(5) },
    ];
    for case in cases {
        incremental_equals_full(case).await;
    }
}

/// A site harvested once, with its harvester, for the job tests.
async fn harvested_site() -> (FakeJira, Arc<Harvester>, Arc<Store>, JiraConfig) {
    let fake = FakeJira::start(large_site(2, 60, 42)).await;
    fake.set_now(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
    let cfg = config(&fake, SiteFlavor::Cloud, 25, Duration::from_secs(300));
    let (h, store) = harvester(cfg.clone());
    assert_succeeded(&refresh(&h, true).await, "first harvest");
    (fake, h, store, cfg)
}

/// Adds and completes some P0 work, so a successful refresh would change
/// P0's figures.
fn complete_some_work(fake: &FakeJira) {
    let start = fake.now() + chrono::Duration::minutes(3);
    for n in 0..3 {
        fake.set_now(start + chrono::Duration::minutes(n));
        let id = fake.next_id();
        let key = format!("P0-{id}");
        let now = fake.now();
        let issue = SiteIssue {
            id,
            key: key.clone(),
            issue_type: "Story".into(),
            created: now,
            updated: now,
            status_id: "10000".into(),
            ..SiteIssue::default()
        };
        assert!(fake.add_issue("P0", issue));
        assert!(fake.transition(&key, "3", None));
        fake.set_now(now + chrono::Duration::seconds(20));
        assert!(fake.transition(&key, "10002", None));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_search_page_keeps_the_previous_figures() {
    let (fake, h, store, cfg) = harvested_site().await;
    let before: Vec<_> = PROJECTS.iter().map(|p| store.get(p).unwrap()).collect();
    complete_some_work(&fake);
    // More failures than the client retries: the refresh must give up.
    fake.inject("/rest/api/3/search/jql", 2 * (cfg.max_retries as usize + 1), Fault::Status(500));
    let view = refresh(&h, false).await;
    assert_eq!(view.state, JobState::Failed, "{view:#?}");
    for (p, old) in view.projects.iter().zip(&before) {
        assert_eq!(p.state, JobState::Failed);
        let error = p.error.as_deref().unwrap_or_default();
        assert!(error.contains("GET /rest/api/3/search/jql") && error.contains("HTTP 500"), "{error}");
        assert!(error.contains("after 4 attempts"), "{error}");
        assert_eq!(p.retries, 3, "{p:?}");
        let now = store.get(&p.key).unwrap();
        assert!(Arc::ptr_eq(&now, old), "{}: the store entry was replaced", p.key);
    }

    // Once Jira answers again, the refresh catches up with the edits.
    fake.clear_faults();
    assert_succeeded(&refresh(&h, false).await, "refresh after the outage");
    assert_ne!(store.get("P0").unwrap().aggregates, before[0].aggregates, "the edits show");
    let (fresh, fresh_store) = harvester(cfg);
    assert_succeeded(&refresh(&fresh, true).await, "fresh harvest");
    assert_same_figures(&store, &fresh_store, "after the outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_changelog_page_after_good_search_pages_keeps_the_previous_figures() {
    let (fake, h, store, _) = harvested_site().await;
    let before: Vec<_> = PROJECTS.iter().map(|p| store.get(p).unwrap()).collect();
    complete_some_work(&fake);
    // The changelogs come from the bulk endpoint, which now fails.
    fake.inject("/rest/api/3/changelog/bulkfetch", 100, Fault::Status(503));
    let view = refresh(&h, true).await;
    assert_eq!(view.state, JobState::Failed, "{view:#?}");
    for (p, old) in view.projects.iter().zip(&before) {
        let error = p.error.as_deref().unwrap_or_default();
        assert!(error.contains("POST /rest/api/3/changelog/bulkfetch") && error.contains("HTTP 503"), "{error}");
        assert!(p.pages >= 3, "the search pages were read: {p:?}");
        assert!(Arc::ptr_eq(&store.get(&p.key).unwrap(), old), "{}: the store entry was replaced", p.key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_joins_the_running_job_for_the_same_projects() {
    let fake = FakeJira::start(large_site(2, 60, 7)).await;
    fake.set_now(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
    let (h, _store) = harvester(config(&fake, SiteFlavor::Cloud, 25, Duration::from_secs(300)));
    // Slow searches keep the first job running while the others start.
    fake.inject("/rest/api/3/search/jql", 4, Fault::Delay(Duration::from_millis(300)));
    let first = h.start(Vec::new(), false).await.unwrap();
    // Once the job holds both projects, nothing can overtake it.
    tokio::time::timeout(Duration::from_secs(10), async {
        while !h.job(&first).unwrap().projects.iter().all(|p| p.state == JobState::Running) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the first job runs");
    assert_eq!(h.start(Vec::new(), false).await.unwrap(), first, "same projects, same job");
    assert_eq!(h.start(vec!["P1".into(), "P0".into(), "P1".into()], false).await.unwrap(), first, "names are a set");
    let full = h.start(Vec::new(), true).await.unwrap();
    assert_ne!(full, first, "a full refresh is another job");
    let only_p0 = h.start(vec!["P0".into()], false).await.unwrap();
    assert_ne!(only_p0, first, "other projects, another job");

    let view = finished(&h, &first).await;
    assert_succeeded(&view, "joined job");
    let sizes: Vec<usize> = fake.with_state(|st| st.site.projects.iter().map(|p| p.issues.len()).collect());
    for (p, n) in view.projects.iter().zip(sizes) {
        assert_eq!(p.issues_fetched, n as u64, "the first harvest reads every issue once: {p:?}");
        assert!(p.pages >= n.div_ceil(25) as u64, "{p:?}");
    }
    assert_succeeded(&finished(&h, &full).await, "full job");
    assert_succeeded(&finished(&h, &only_p0).await, "P0 job");
    assert_ne!(h.start(Vec::new(), false).await.unwrap(), first, "a finished job is not joined");
}
