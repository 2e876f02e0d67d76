//! Classification speed: the default definitions in rhai against the same
//! rules hard-coded in Rust (`DefaultRules`), on a generated site of at
//! least 200 000 issues and 1 000 000 status changes (34 projects of
//! 10 000 issues by default), and the time to recompute every project's
//! aggregates from the facts.
//!
//! Run with `cargo bench --bench classify`. Sizes can be changed with
//! `CLASSIFY_PROJECTS` and `CLASSIFY_ISSUES_PER_PROJECT`.
//!
//! Last figure (default size, 2-core AMD EPYC VM with nothing else running):
//! Rust 77.7 ms, rhai memoised 97.6 ms cold, 98.4 ms warm, ratio 1.26
//! (target ≤ 1.5); see `docs/performance.md`.

use std::time::{Duration, Instant};

use jira_dora::definitions::DefinitionSet;
use jira_dora::domain::aggregate::{build_project, with_issue_views};
use jira_dora::domain::classify::{DefaultRules, Hooks, classify_issue};
use jira_dora::domain::facts::ProjectFacts;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Classifies every issue of every project; returns the time taken and the
/// number of classified issues with answers (a checksum against dead code).
fn classify_all<H: Hooks>(facts: &[ProjectFacts], hooks: &H, limit: usize) -> (Duration, usize) {
    let mut took = Duration::ZERO;
    let mut checksum = 0usize;
    let mut left = limit;
    for project in facts {
        if left == 0 {
            break;
        }
        with_issue_views(project, |views| {
            let views = &views[..views.len().min(left)];
            left -= views.len();
            let started = Instant::now();
            for view in views {
                let class = classify_issue(hooks, view).expect("the hooks answer");
                checksum +=
                    usize::from(class.excluded) + class.work_start.unwrap_or(0) + usize::from(class.ai_involved);
            }
            took += started.elapsed();
        });
    }
    (took, checksum)
}

fn recompute_all<H: Hooks>(facts: &[ProjectFacts], hooks: &H) -> Duration {
    let started = Instant::now();
    for project in facts {
        build_project(project, hooks, chrono_tz::UTC).expect("the hooks answer");
    }
    started.elapsed()
}

/// The facts of every project of `site`, harvested through the real client
/// from the fake Jira serving it.
fn harvested(site: fake_jira::Site) -> Vec<ProjectFacts> {
    use jira_dora::jira::{JiraClient, JiraConfig};
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let fake = fake_jira::FakeJira::start(site).await;
        let client = JiraClient::new(JiraConfig::new(fake.base_url())).expect("a client");
        let mut all = Vec::new();
        for key in client.projects().await.expect("the projects") {
            all.push(jira_dora::harvest::fetch_project(&client, &key).await.expect("a harvest"));
        }
        all
    })
}

fn main() {
    let projects = env("CLASSIFY_PROJECTS", 34);
    let per_project = env("CLASSIFY_ISSUES_PER_PROJECT", 10_000);
    let started = Instant::now();
    let facts = harvested(fake_jira::demo::large_site(projects, per_project, 7));
    let issues: usize = facts.iter().map(|p| p.issues.len()).sum();
    let changes: usize = facts.iter().flat_map(|p| &p.issues).map(|i| i.changes().len()).sum();
    println!(
        "site: {projects} projects, {issues} issues, {changes} status changes (generated in {:.1} s)",
        started.elapsed().as_secs_f64()
    );

    // Each figure is the best of three runs; the cold rhai figure is the
    // first pass of a fresh set (empty cache) each time.
    let best = |f: &dyn Fn() -> (Duration, usize)| (0..3).map(|_| f()).min().expect("three runs");
    let (rust, rust_sum) = best(&|| classify_all(&facts, &DefaultRules, usize::MAX));
    let rhai_set = DefinitionSet::shipped();
    println!("memoised hooks: {:?}", rhai_set.memoised_hooks());
    let (rhai, rhai_sum) = best(&|| classify_all(&facts, &DefinitionSet::shipped(), usize::MAX));
    assert_eq!(rust_sum, rhai_sum, "the rhai defaults and the Rust rules disagree");
    classify_all(&facts, &rhai_set, usize::MAX);
    let (rhai_warm, _) = best(&|| classify_all(&facts, &rhai_set, usize::MAX));
    println!("classify, Rust rules:            {:>8.1} ms", rust.as_secs_f64() * 1e3);
    println!("classify, rhai (memoised, cold): {:>8.1} ms", rhai.as_secs_f64() * 1e3);
    println!("classify, rhai (memoised, warm): {:>8.1} ms", rhai_warm.as_secs_f64() * 1e3);
    println!("ratio rhai/Rust: {:.2} (target <= 1.5)", rhai.as_secs_f64() / rust.as_secs_f64());

    // Without memoisation, on a sample (every call goes to the engine).
    let sample = 20_000.min(issues);
    let (plain, _) = classify_all(&facts, &DefinitionSet::shipped().memoised(false), sample);
    let (rust_sample, _) = classify_all(&facts, &DefaultRules, sample);
    println!(
        "without memoisation ({sample} issues): rhai {:.1} ms, Rust {:.1} ms, ratio {:.1}",
        plain.as_secs_f64() * 1e3,
        rust_sample.as_secs_f64() * 1e3,
        plain.as_secs_f64() / rust_sample.as_secs_f64()
    );

    let recompute_rust = (0..3).map(|_| recompute_all(&facts, &DefaultRules)).min().expect("runs");
    let recompute_rhai = (0..3).map(|_| recompute_all(&facts, &DefinitionSet::shipped())).min().expect("runs");
    println!(
        "recompute every project's aggregates: rhai {:.1} ms, Rust {:.1} ms (ratio {:.2})",
        recompute_rhai.as_secs_f64() * 1e3,
        recompute_rust.as_secs_f64() * 1e3,
        recompute_rhai.as_secs_f64() / recompute_rust.as_secs_f64()
    );
}
