//! The dashboard in a real browser: headless Chromium, driven through
//! chromedriver, against the real service on the demo site. It picks a
//! project and a period, checks the four cards against a gRPC `GetMetrics`,
//! opens the AI impact tab, and saves screenshots (those shown in the
//! README, `docs/screenshots/`, with `DORA_UPDATE_SCREENSHOTS=1`). Any
//! console error — a script error, a blocked resource, a
//! Content-Security-Policy violation — fails it.
//!
//! Needs Debian's `chromium` and `chromium-driver`; it fails, saying so,
//! when they are missing.

mod common;
mod webdriver;

use std::path::PathBuf;

use common::Server as DemoServer;
use jira_dora::proto::{GetMetricsRequest, Level, PeriodFigures};
use serde_json::{json, Value};
use webdriver::{Driver, Session};

const PROJECT: &str = "PAY";
const WEEKS: u32 = 26;

/// Where a screenshot goes: `docs/screenshots/` (shown in the README) with
/// `DORA_UPDATE_SCREENSHOTS=1`; otherwise the target folder, so that a test
/// run leaves the work tree as it was (the demo's dates move every day).
fn screenshot(name: &str) -> PathBuf {
    let dir = if std::env::var_os("DORA_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
    };
    dir.join(name)
}

/// Fails on any console message of level SEVERE (errors).
async fn no_console_errors(session: &Session, when: &str) {
    let errors: Vec<_> = session.console().await.into_iter().filter(|(level, _)| level == "SEVERE").collect();
    assert!(errors.is_empty(), "console errors {when}: {errors:#?}");
}

/// The number a card shows, in the unit it shows, and the same figure from
/// gRPC in that unit.
fn shown_and_expected(text: &str, expected: Option<f64>) -> (f64, f64) {
    let (number, unit) = text.trim().split_once(' ').unwrap_or_else(|| panic!("`{text}` has no unit"));
    let shown: f64 = number.parse().unwrap_or_else(|_| panic!("`{text}` is not a number and a unit"));
    let value = expected.unwrap_or_else(|| panic!("the card shows `{text}` where gRPC has no value"));
    let converted = match unit {
        "per week" => value,
        "%" => value * 100.0,
        "min" => value * 60.0,
        "h" => value,
        "days" => value / 24.0,
        other => panic!("unknown unit `{other}` in `{text}`"),
    };
    (shown, converted)
}

fn level_name(level: i32) -> &'static str {
    match Level::try_from(level).unwrap_or(Level::Unknown) {
        Level::Elite => "Elite",
        Level::High => "High",
        Level::Medium => "Medium",
        Level::Low => "Low",
        Level::Unknown | Level::Unspecified => "Unknown",
    }
}

/// Each card: its key, the gRPC figure, the gRPC level.
fn cards(f: &PeriodFigures) -> [(&'static str, Option<f64>, i32); 4] {
    let levels = f.levels.unwrap();
    [
        ("deployment_frequency", Some(f.deployments_per_week), levels.deployment_frequency),
        ("lead_time", f.lead_time.unwrap().median_hours, levels.lead_time),
        ("change_failure_rate", f.change_failure.unwrap().rate, levels.change_failure_rate),
        ("time_to_restore", f.time_to_restore.unwrap().median_hours, levels.time_to_restore),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_what_the_grpc_api_returns() {
    let driver = Driver::start().await;
    let server = DemoServer::demo().await;
    let profile = tempfile::tempdir().unwrap();
    let session = driver.session(profile.path(), 1280, 900).await;

    // The console capture works: a probe message comes back.
    session.goto(&server.url("/")).await;
    session.script("console.error('probe')").await;
    let probe = session.console().await;
    assert!(probe.iter().any(|(level, m)| level == "SEVERE" && m.contains("probe")), "console log not captured: {probe:?}");

    // The page loads the browsable projects and shows the first one.
    session.wait_for("return document.body.dataset.state", json!("ready")).await;
    let options = session.script("return Array.from(document.querySelectorAll('#project option')).map(o => o.value)").await;
    assert_eq!(options, json!(["OPS", "PAY", "SHOP"]));

    // Pick a project and a period, as a person would.
    session.click(&session.find("#project").await).await;
    session.click(&session.find(&format!("#project option[value='{PROJECT}']")).await).await;
    session.click(&session.find("#weeks").await).await;
    session.click(&session.find(&format!("#weeks option[value='{WEEKS}']")).await).await;
    session.wait_for("return document.body.dataset.loaded", json!(format!("{PROJECT}|{WEEKS}"))).await;

    let mut grpc = server.client().await;
    let request = GetMetricsRequest { project_keys: vec![PROJECT.into()], weeks: WEEKS, include_series: true, ..Default::default() };
    let answer = grpc.get_metrics(request).await.unwrap().into_inner();
    let combined = answer.combined.unwrap();

    for (key, expected, level) in cards(&combined) {
        let value = session.find(&format!("[data-key='{key}'] .value")).await;
        let raw = session.attribute(&value, "data-raw").await.unwrap();
        assert_eq!(raw.parse::<f64>().ok(), expected, "{key}: the card's figure");
        let (shown, converted) = shown_and_expected(&session.text(&value).await, expected);
        assert!((shown - converted).abs() <= 0.051, "{key}: shows {shown}, gRPC says {converted}");
        let badge = session.text(&session.find(&format!("[data-key='{key}'] .level")).await).await;
        assert_eq!(badge, format!("DORA level: {}", level_name(level)), "{key}");
    }
    let completed = session.text(&session.find("[data-count='completed'] dd").await).await;
    assert_eq!(completed, combined.completed.to_string());
    let version = session.text(&session.find("#definitions-version").await).await;
    assert!(version.contains(&answer.freshness.unwrap().definitions_version), "{version}");
    // Every chart has a text alternative.
    let charts = session.script("return Array.from(document.querySelectorAll('#charts svg')).map(s => s.getAttribute('role') === 'img' && s.querySelector('desc').textContent.length > 20)").await;
    assert_eq!(charts, json!([true, true, true, true]));
    no_console_errors(&session, "on the overview").await;
    session.script("document.activeElement.blur()").await;
    session.full_page_screenshot(1280, &screenshot("dashboard.png")).await;

    // The AI impact tab, with the verdict sentences of the API.
    let tab = session.find("#tab-ai").await;
    session.click(&tab).await;
    session.wait_for("return document.getElementById('panel-ai').hidden", json!(false)).await;
    assert_eq!(session.attribute(&tab, "aria-selected").await.as_deref(), Some("true"));
    let ai = answer.ai_impact.unwrap();
    let overall = session.text(&session.find("#ai-overall-sentence").await).await;
    assert_eq!(overall, ai.overall.unwrap().sentence);
    let sentences = session.script("return Array.from(document.querySelectorAll('#ai-comparisons .sentence')).map(p => p.textContent)").await;
    let expected: Vec<Value> = ai.comparisons.iter().map(|c| Value::from(c.sentence.clone())).collect();
    assert_eq!(sentences, Value::from(expected));
    session.full_page_screenshot(1280, &screenshot("ai-impact.png")).await;
    session.full_page_screenshot(390, &screenshot("ai-impact-phone.png")).await;

    // Keyboard: the left arrow on the selected tab goes back to the overview.
    session.keys(&tab, "\u{E012}").await;
    session.wait_for("return document.getElementById('panel-overview').hidden", json!(false)).await;
    assert_eq!(session.script("return document.activeElement.id").await, json!("tab-overview"));
    session.full_page_screenshot(390, &screenshot("dashboard-phone.png")).await;
    no_console_errors(&session, "after the AI impact tab and the phone width").await;

    session.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_says_what_to_do_without_data_or_service() {
    let driver = Driver::start().await;
    let server = DemoServer::demo_empty().await;
    let _ = server.client().await;
    let profile = tempfile::tempdir().unwrap();
    let session = driver.session(profile.path(), 1280, 900).await;

    // No project harvested yet: say so, and offer to try again.
    session.goto(&server.url("/")).await;
    session.wait_for("return document.body.dataset.state", json!("no-projects")).await;
    let text = session.text(&session.find("#notice").await).await;
    assert!(text.contains("No data yet") && text.contains("try again shortly"), "{text}");
    assert_eq!(session.script("return document.getElementById('notice-retry').hidden").await, json!(false));
    no_console_errors(&session, "with no data").await;

    // The service goes away: trying again says it is unreachable.
    server.stop().await;
    session.click(&session.find("#notice-retry").await).await;
    session.wait_for("return document.body.dataset.state", json!("unavailable")).await;
    let text = session.text(&session.find("#notice").await).await;
    assert!(text.contains("The service is unreachable") && text.contains("network connection"), "{text}");
    // The only console errors are the refused connection itself.
    let unexpected: Vec<_> = session
        .console()
        .await
        .into_iter()
        .filter(|(level, m)| level == "SEVERE" && !m.contains("ERR_CONNECTION_REFUSED"))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    session.close().await;
}

/// Stands in for a service that demands an API key, or denies access, or
/// cannot reach Jira: `?fault=…` in the page address makes `fetch` answer as
/// such a service would (the JSON error body and HTTP status of the mapping).
const FAULTS: &str = r#"(() => {
  const fault = new URLSearchParams(location.search).get('fault');
  if (!fault) return;
  const real = window.fetch.bind(window);
  const answer = (status, code, message) => Promise.resolve(new Response(JSON.stringify({ code, message }),
    { status, headers: { 'content-type': 'application/json' } }));
  window.fetch = (url, options) => {
    const path = String(url);
    const auth = options && options.headers && options.headers.authorization;
    if (fault === 'unauthenticated' && auth !== 'Bearer let-me-in') return answer(401, 16, 'missing or unknown API key');
    if (fault === 'permission-denied' && path.startsWith('/v1/metrics')) return answer(403, 7, 'project PAY: not browsable');
    if (fault === 'jira-unreachable' && path.startsWith('/v1/metrics')) return answer(503, 14, 'Jira did not answer');
    return real(url, options);
  };
})();"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_explains_denied_and_unreachable_answers() {
    let driver = Driver::start().await;
    let server = DemoServer::demo().await;
    let profile = tempfile::tempdir().unwrap();
    let session = driver.session(profile.path(), 1280, 900).await;
    session.before_every_page(FAULTS).await;

    // (fault, state shown, words that say what to do)
    let cases = [
        ("permission-denied", "permission-denied", "Pick another project, or ask a Jira administrator for the Browse Projects permission"),
        ("jira-unreachable", "unavailable", "try again in a few minutes"),
        ("unauthenticated", "unauthenticated", "Paste the key you were given"),
    ];
    for (fault, state, words) in cases {
        session.goto(&server.url(&format!("/?fault={fault}#project={PROJECT}&weeks={WEEKS}"))).await;
        session.wait_for("return document.body.dataset.state", json!(state)).await;
        let text = session.text(&session.find("#notice").await).await;
        assert!(text.contains(words), "{fault}: {text}");
        assert_eq!(session.script("return document.getElementById('content').hidden").await, json!(true), "{fault}: no stale figures");
        let asks_key = session.script("return getComputedStyle(document.getElementById('notice-key')).display !== 'none'").await;
        assert_eq!(asks_key, json!(fault == "unauthenticated"), "{fault}: the API key field");
        session.full_page_screenshot(390, &screenshot(&format!("{fault}-phone.png"))).await;
    }

    // With the key asked for, the page loads and sends it.
    session.keys(&session.find("#api-key").await, "let-me-in").await;
    session.click(&session.find("#use-key").await).await;
    session.wait_for("return document.body.dataset.state", json!("ready")).await;
    no_console_errors(&session, "in the error states").await;
    session.close().await;
    server.stop().await;
}
