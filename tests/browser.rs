//! The dashboard in a real browser: headless Chromium, driven through
//! chromedriver, against the real service on the demo site. It picks
//! projects and periods as a person would (one project, two combined, a
//! custom range of weeks, month presets and a custom range of months, by
//! week or by month, a team) and checks what the page shows against a gRPC
//! `GetMetrics`: the cards and their levels, the level zones of every
//! chart, the rolling medians, the markers on every chart; the exports
//! (CSV, Markdown, PNG) are downloaded and read back; the wallboard, the
//! no-deployment stand-in and the error states are driven too. It saves
//! screenshots (those shown in the README, `docs/screenshots/`, with
//! `DORA_UPDATE_SCREENSHOTS=1`). Any console error — a script error, a
//! blocked resource, a Content-Security-Policy violation — fails it, and
//! the policy itself is compared with the strict one written out here.
//!
//! Needs Debian's `chromium` and `chromium-driver`, so plain `cargo test`
//! skips these tests (ignored, with the reason); `cargo test --test browser
//! -- --ignored` runs them, as `.ci/run` does, and fails, saying so, when
//! the programs are missing.

mod common;
mod webdriver;

use std::path::PathBuf;

use base64::Engine as _;
use common::Server as DemoServer;
use jira_dora::proto::{
    DurationSummary, GetMetricsRequest, Granularity, Level, ListTeamsRequest, Marker, MonthFigures, PeriodFigures,
    WeekFigures,
};
use serde_json::{Value, json};
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

/// The demo, harvested, without the definitions folder watcher (these
/// tests never edit definitions): the demo's definitions, with its teams,
/// stay in force.
async fn demo() -> DemoServer {
    let server = DemoServer::start(common::demo_config_unwatched()).await;
    common::harvested(&mut server.client().await).await;
    server
}

/// A headless browser window of `width` × `height` with a fresh profile;
/// keep the driver and the profile folder as long as the session.
async fn browser(width: u32, height: u32) -> (Driver, tempfile::TempDir, Session) {
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let session = driver.session(profile.path(), width, height).await;
    (driver, profile, session)
}

/// Opens the dashboard on `PROJECT`'s last 13 weeks and waits for them.
async fn open_project(session: &Session, server: &DemoServer) {
    session.goto(&server.url(&format!("/#projects={PROJECT}&weeks=13"))).await;
    session.wait_for("return document.body.dataset.loaded", json!(format!("{PROJECT}|weeks=13"))).await;
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

/// Ticks the projects in `add` and unticks those in `remove`, in the
/// project picker, as a person would.
async fn pick_projects(session: &Session, add: &[&str], remove: &[&str]) {
    let open = session.script("return document.getElementById('project-picker').open").await;
    if open != json!(true) {
        session.click(&session.find("#project-picker summary").await).await;
    }
    for key in add.iter().chain(remove) {
        session.click(&session.find(&format!("#project-{key}")).await).await;
    }
    session.click(&session.find("#project-picker summary").await).await;
}

/// Picks an entry of the period list.
async fn pick_period(session: &Session, value: &str) {
    session.click(&session.find("#weeks").await).await;
    session.click(&session.find(&format!("#weeks option[value='{value}']")).await).await;
}

/// Every chart shows the DORA level zones behind it, each visible zone
/// named in words (not only by colour), and says the cut-offs in text.
async fn level_zones_are_labelled(session: &Session) {
    let zones = session
        .script(
            "return Array.from(document.querySelectorAll('#charts figure')).map(f => [f.dataset.chart, \
             Array.from(f.querySelectorAll('svg g[data-level]')).map(g => [g.dataset.level, (g.querySelector('text') || {}).textContent || null]), \
             f.querySelector('.zones').textContent])",
        )
        .await;
    let expected_legend = [
        ("deployment_frequency", "DORA levels: Elite ≥ 5 days, High ≥ 1 day, Medium ≥ 0.23 days, Low above 0."),
        ("lead_time", "DORA levels: Elite < 24.0 h, High < 7.0 days, Medium < 30.0 days, Low ≥ 30.0 days."),
        ("change_failure_rate", "DORA levels: Elite ≤ 5.0 %, High ≤ 10.0 %, Medium ≤ 15.0 %, Low > 15.0 %."),
        ("time_to_restore", "DORA levels: Elite < 1.0 h, High < 24.0 h, Medium < 7.0 days, Low ≥ 7.0 days."),
    ];
    let zones = zones.as_array().unwrap();
    assert_eq!(zones.len(), 4);
    for (chart, (key, legend)) in zones.iter().zip(expected_legend) {
        assert_eq!(chart[0], json!(key));
        assert_eq!(chart[2], json!(legend), "{key}");
        let shown = chart[1].as_array().unwrap();
        assert!(!shown.is_empty(), "{key}: no level zone");
        for zone in shown {
            let (level, label) = (zone[0].as_str().unwrap(), zone[1].as_str());
            assert!(["elite", "high", "medium", "low"].contains(&level), "{key}: {zone}");
            // A zone too thin for its name has none; the others say it.
            if let Some(label) = label {
                assert_eq!(label.to_lowercase(), level, "{key}");
            }
        }
        assert!(shown.iter().any(|z| z[1].is_string()), "{key}: no zone is named");
    }
}

/// A point of a series, weekly or monthly, as the API gives it.
struct Point<'a> {
    name: &'a str,
    weeks: u32,
    figures: PeriodFigures,
    rolling_lead_time: DurationSummary,
    rolling_time_to_restore: DurationSummary,
}

fn weekly(series: &[WeekFigures]) -> Vec<Point<'_>> {
    series
        .iter()
        .map(|w| Point {
            name: &w.week,
            weeks: 1,
            figures: w.figures.unwrap(),
            rolling_lead_time: w.rolling_lead_time.unwrap(),
            rolling_time_to_restore: w.rolling_time_to_restore.unwrap(),
        })
        .collect()
}

fn monthly(series: &[MonthFigures]) -> Vec<Point<'_>> {
    series
        .iter()
        .map(|m| Point {
            name: &m.month,
            weeks: m.weeks,
            figures: m.figures.unwrap(),
            rolling_lead_time: m.rolling_lead_time.unwrap(),
            rolling_time_to_restore: m.rolling_time_to_restore.unwrap(),
        })
        .collect()
}

/// The duration charts' tables show the API's rolling medians, point by
/// point.
async fn rolling_medians_are_the_apis(session: &Session, series: &[Point<'_>]) {
    for (chart, read) in [
        ("lead_time", (|p: &Point| p.rolling_lead_time.median_hours) as fn(&Point) -> Option<f64>),
        ("time_to_restore", |p: &Point| p.rolling_time_to_restore.median_hours),
    ] {
        let shown = session
            .script(&format!(
                "return Array.from(document.querySelectorAll(\"[data-chart='{chart}'] tbody tr\")).map(r => [r.cells[0].textContent, r.cells[2].dataset.raw])"
            ))
            .await;
        let expected: Vec<Value> =
            series.iter().map(|p| json!([p.name, read(p).map(|v| v.to_string()).unwrap_or_default()])).collect();
        assert_eq!(shown, Value::from(expected), "{chart}");
        let lines = session
            .script(&format!("return document.querySelectorAll(\"[data-chart='{chart}'] svg .rolling-mark\").length"))
            .await;
        assert!(lines.as_u64().unwrap() >= 1, "{chart}: no rolling median drawn");
    }
}

/// Each marker of the answer is a labelled vertical line on every chart.
async fn markers_are_on_every_chart(session: &Session, markers: &[Marker]) {
    let expected: Vec<Value> = markers.iter().map(|m| json!([m.date, m.label, m.label])).collect();
    let shown = session
        .script(
            "return Array.from(document.querySelectorAll('#charts figure, #wallboard figure')).map(f => \
             Array.from(f.querySelectorAll('g.marker')).map(g => [g.dataset.date, g.dataset.label, g.querySelector('text').textContent]))",
        )
        .await;
    let shown = shown.as_array().unwrap();
    assert!(!shown.is_empty());
    for chart in shown {
        assert_eq!(chart, &Value::from(expected.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and chromedriver (apt-get install chromium chromium-driver); run with `cargo test --test browser -- --ignored`, as .ci/run does"]
async fn the_dashboard_shows_what_the_grpc_api_returns() {
    let server = demo().await;
    let (_driver, _profile, session) = browser(1280, 900).await;

    // The console capture works: a probe message comes back.
    session.goto(&server.url("/")).await;
    session.script("console.error('probe')").await;
    let probe = session.console().await;
    assert!(
        probe.iter().any(|(level, m)| level == "SEVERE" && m.contains("probe")),
        "console log not captured: {probe:?}"
    );

    // The page loads the browsable projects and shows the first one.
    session.wait_for("return document.body.dataset.state", json!("ready")).await;
    let options =
        session.script("return Array.from(document.querySelectorAll('#project-list input')).map(o => o.value)").await;
    assert_eq!(options, json!(["OPS", "PAY", "SHOP"]));
    session.wait_for("return document.body.dataset.loaded", json!("OPS|weeks=13")).await;

    // Pick a project (instead of the first) and a period, as a person would.
    pick_projects(&session, &[PROJECT], &["OPS"]).await;
    pick_period(&session, &WEEKS.to_string()).await;
    session.wait_for("return document.body.dataset.loaded", json!(format!("{PROJECT}|weeks={WEEKS}"))).await;

    let mut grpc = server.client().await;
    let request = GetMetricsRequest {
        project_keys: vec![PROJECT.into()],
        weeks: WEEKS,
        include_series: true,
        ..Default::default()
    };
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
    level_zones_are_labelled(&session).await;
    rolling_medians_are_the_apis(&session, &weekly(&answer.series)).await;
    // The demo's AI rollout, 16 weeks back, is a marker on every chart.
    markers_are_on_every_chart(&session, &answer.markers).await;
    assert_eq!(answer.markers.iter().map(|m| m.label.as_str()).collect::<Vec<_>>(), ["AI rollout"]);
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
    let sentences = session
        .script("return Array.from(document.querySelectorAll('#ai-comparisons .sentence')).map(p => p.textContent)")
        .await;
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
#[ignore = "needs headless Chromium and chromedriver (apt-get install chromium chromium-driver); run with `cargo test --test browser -- --ignored`, as .ci/run does"]
async fn the_dashboard_says_what_to_do_without_data_or_service() {
    let server = DemoServer::demo_empty().await;
    let _ = server.client().await;
    let (_driver, _profile, session) = browser(1280, 900).await;

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
#[ignore = "needs headless Chromium and chromedriver (apt-get install chromium chromium-driver); run with `cargo test --test browser -- --ignored`, as .ci/run does"]
async fn the_dashboard_explains_denied_and_unreachable_answers() {
    let server = demo().await;
    let (_driver, _profile, session) = browser(1280, 900).await;
    session.before_every_page(FAULTS).await;

    // (fault, state shown, words that say what to do)
    let cases = [
        (
            "permission-denied",
            "permission-denied",
            "Pick another project, or ask a Jira administrator for the Browse Projects permission",
        ),
        ("jira-unreachable", "unavailable", "try again in a few minutes"),
        ("unauthenticated", "unauthenticated", "Paste the key you were given"),
    ];
    for (fault, state, words) in cases {
        session.goto(&server.url(&format!("/?fault={fault}#projects={PROJECT}&weeks={WEEKS}"))).await;
        session.wait_for("return document.body.dataset.state", json!(state)).await;
        let text = session.text(&session.find("#notice").await).await;
        assert!(text.contains(words), "{fault}: {text}");
        assert_eq!(
            session.script("return document.getElementById('content').hidden").await,
            json!(true),
            "{fault}: no stale figures"
        );
        let asks_key =
            session.script("return getComputedStyle(document.getElementById('notice-key')).display !== 'none'").await;
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

/// The policy every dashboard file is served with. Written out here, not
/// taken from the service, so that a loosened policy fails this test.
const STRICT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn csp_is_unchanged(server: &DemoServer) {
    let http = reqwest::Client::new();
    for path in ["/", "/app.js", "/app.css", "/explain.js", "/explain.css"] {
        let response = http.get(server.url(path)).send().await.unwrap();
        let csp = response.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(csp.as_deref(), Some(STRICT_CSP), "{path}");
    }
}

/// Figures of `keys` over the last `weeks` weeks, or a range, with the series.
fn metrics_request(keys: &[&str], weeks: u32, range: Option<(&str, &str)>) -> GetMetricsRequest {
    GetMetricsRequest {
        project_keys: keys.iter().map(|k| k.to_string()).collect(),
        weeks,
        from_week: range.map(|r| r.0.to_owned()),
        to_week: range.map(|r| r.1.to_owned()),
        include_series: true,
        ..Default::default()
    }
}

/// Figures of `keys` over the last `months` months, or a range of months,
/// with the series by month.
fn months_request(keys: &[&str], months: u32, range: Option<(&str, &str)>) -> GetMetricsRequest {
    GetMetricsRequest {
        project_keys: keys.iter().map(|k| k.to_string()).collect(),
        months,
        from_month: range.map(|r| r.0.to_owned()),
        to_month: range.map(|r| r.1.to_owned()),
        include_series: true,
        granularity: Granularity::Month as i32,
        ..Default::default()
    }
}

/// Picks "By week" or "By month" in the series list.
async fn pick_granularity(session: &Session, value: &str) {
    session.click(&session.find("#granularity").await).await;
    session.click(&session.find(&format!("#granularity option[value='{value}']")).await).await;
}

/// Every chart has one point per point of the API's series, named as the
/// API names it, and the lead time and change failure charts show its
/// figures.
async fn charts_show_the_points(session: &Session, series: &[Point<'_>]) {
    let names: Vec<&str> = series.iter().map(|p| p.name).collect();
    let shown = session
        .script("return Array.from(document.querySelectorAll('#charts figure')).map(f => Array.from(f.querySelectorAll('tbody tr')).map(r => r.cells[0].textContent))")
        .await;
    assert_eq!(shown, json!([names, names, names, names]));
    for (chart, read) in [
        ("lead_time", (|p: &Point| p.figures.lead_time.unwrap().median_hours) as fn(&Point) -> Option<f64>),
        ("change_failure_rate", |p: &Point| p.figures.change_failure.unwrap().rate),
    ] {
        let shown = session
            .script(&format!("return Array.from(document.querySelectorAll(\"[data-chart='{chart}'] tbody tr\")).map(r => r.cells[1].dataset.raw)"))
            .await;
        let expected: Vec<String> = series.iter().map(|p| read(p).map(|v| v.to_string()).unwrap_or_default()).collect();
        assert_eq!(shown, json!(expected), "{chart}");
    }
}

/// The cards show the API's combined figures and levels.
async fn cards_are_the_apis(session: &Session, combined: &PeriodFigures) {
    for (key, expected, level) in cards(combined) {
        let raw =
            session.attribute(&session.find(&format!("[data-key='{key}'] .value")).await, "data-raw").await.unwrap();
        assert_eq!(raw.parse::<f64>().ok(), expected, "{key}");
        let badge = session.text(&session.find(&format!("[data-key='{key}'] .level")).await).await;
        assert_eq!(badge, format!("DORA level: {}", level_name(level)), "{key}");
    }
}

/// A CSV field as a number: empty is no value.
fn csv_number(field: &str) -> Option<f64> {
    (!field.is_empty()).then(|| field.parse().unwrap_or_else(|_| panic!("`{field}` is not a number")))
}

/// The CSV export holds one row per point of the API's series (`unit`:
/// week or month), with the documented columns; `team` is empty for all
/// work.
fn csv_matches(csv: &str, keys: &str, team: &str, unit: &str, series: &[Point<'_>]) {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header,
        [
            "projects",
            "team",
            unit,
            "weeks",
            "deployments",
            "deployment_days",
            "deployments_per_week",
            "lead_time_median_hours",
            "lead_time_count",
            "lead_time_rolling_median_hours",
            "lead_time_rolling_count",
            "change_failure_failed",
            "change_failure_deployments",
            "change_failure_rate",
            "time_to_restore_median_hours",
            "time_to_restore_count",
            "time_to_restore_rolling_median_hours",
            "time_to_restore_rolling_count",
            "incidents",
            "open_incidents",
            "completed",
            "reopened",
            "reopen_rate",
            "rework_deployments",
            "rework_rate",
            "ai_involved",
            "ai_share",
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), series.len());
    for (row, point) in rows.iter().zip(series) {
        let f = point.figures;
        let (lt, cf, ttr, rw) =
            (f.lead_time.unwrap(), f.change_failure.unwrap(), f.time_to_restore.unwrap(), f.rework.unwrap());
        let (rlt, rttr) = (point.rolling_lead_time, point.rolling_time_to_restore);
        assert_eq!((row[0], row[1], row[2], row[3]), (keys, team, point.name, point.weeks.to_string().as_str()));
        let numbers: Vec<Option<f64>> = row[4..].iter().map(|f| csv_number(f)).collect();
        let expected: Vec<Option<f64>> = vec![
            Some(f.deployments as f64),
            Some(f.deployment_days as f64),
            Some(f.deployments_per_week),
            lt.median_hours,
            Some(lt.count as f64),
            rlt.median_hours,
            Some(rlt.count as f64),
            Some(cf.failed as f64),
            Some(cf.deployments as f64),
            cf.rate,
            ttr.median_hours,
            Some(ttr.count as f64),
            rttr.median_hours,
            Some(rttr.count as f64),
            Some(f.incidents as f64),
            Some(f.open_incidents as f64),
            Some(f.completed as f64),
            Some(f.reopened as f64),
            f.reopen_rate,
            Some(rw.rework as f64),
            rw.rate,
            Some(f.ai_involved as f64),
            f.ai_share,
        ];
        assert_eq!(numbers, expected, "{}", point.name);
    }
}

/// Checks a downloaded PNG: its size is the chart's at twice the scale,
/// and drawn on a canvas it shows the level zones' colours and the marker
/// line's.
async fn png_shows_the_chart(session: &Session, png: &[u8]) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (width, height) =
        (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert_eq!((width, height), (720, 380));
    let data = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png));
    let seen = session
        .script_async(
            "const img = new Image();
             img.onload = () => {
               const c = document.createElement('canvas');
               c.width = img.width; c.height = img.height;
               const ctx = c.getContext('2d');
               ctx.drawImage(img, 0, 0);
               const px = ctx.getImageData(0, 0, c.width, c.height).data;
               const colours = new Set();
               let marker = false;
               for (let i = 0; i < px.length; i += 4) {
                 colours.add(px[i] + ',' + px[i + 1] + ',' + px[i + 2]);
                 if (Math.abs(px[i] - 111) + Math.abs(px[i + 1] - 66) + Math.abs(px[i + 2] - 193) < 40) marker = true;
               }
               const zones = ['216,243,227', '219,233,251', '251,236,203', '250,220,220'].filter(z => colours.has(z)).length;
               done([colours.size, zones, marker]);
             };
             img.onerror = () => done('not an image');
             img.src = arguments[0];",
            vec![json!(data)],
        )
        .await;
    let seen = seen.as_array().unwrap_or_else(|| panic!("{seen}"));
    assert!(seen[0].as_u64().unwrap() > 20, "the PNG is nearly blank: {seen:?}");
    assert!(seen[1].as_u64().unwrap() >= 1, "no level zone in the PNG: {seen:?}");
    assert_eq!(seen[2], json!(true), "no marker line in the PNG: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and chromedriver (apt-get install chromium chromium-driver); run with `cargo test --test browser -- --ignored`, as .ci/run does"]
async fn the_dashboard_combines_projects_over_a_custom_range_with_markers_and_exports_what_it_shows() {
    let today = chrono::Utc::now().date_naive();
    let marker_day = (today - chrono::Duration::weeks(5)).to_string();
    let toml = format!(
        "[harvest]\ninterval_minutes = 0\n[definitions]\nwatch_interval_ms = 0\n[[markers]]\ndate = \"{marker_day}\"\nlabel = \"New on-call rota\"\n"
    );
    let server =
        DemoServer::start(jira_dora::config::load(Some(&toml), &std::collections::HashMap::new()).unwrap()).await;
    let mut grpc = server.client().await;
    common::harvested(&mut grpc).await;
    csp_is_unchanged(&server).await;
    let (_driver, _profile, session) = browser(1280, 900).await;
    session.goto(&server.url("/")).await;
    session.wait_for("return document.body.dataset.loaded", json!("OPS|weeks=13")).await;

    // Two projects in one view: the cards say which, and show their
    // combined figures.
    pick_projects(&session, &["PAY", "SHOP"], &["OPS"]).await;
    session.wait_for("return document.body.dataset.loaded", json!("PAY,SHOP|weeks=13")).await;
    assert_eq!(session.text(&session.find("#project-summary").await).await, "PAY, SHOP");
    let answer = grpc.get_metrics(metrics_request(&["PAY", "SHOP"], 13, None)).await.unwrap().into_inner();
    for (key, expected, level) in cards(&answer.combined.unwrap()) {
        let raw =
            session.attribute(&session.find(&format!("[data-key='{key}'] .value")).await, "data-raw").await.unwrap();
        assert_eq!(raw.parse::<f64>().ok(), expected, "{key}");
        let badge = session.text(&session.find(&format!("[data-key='{key}'] .level")).await).await;
        assert_eq!(badge, format!("DORA level: {}", level_name(level)), "{key}");
        let scope = session.text(&session.find(&format!("[data-key='{key}'] .scope")).await).await;
        assert_eq!(scope, "2 projects combined: PAY, SHOP");
    }

    // A custom range of weeks, picked in the period list and the week fields.
    let this_week = jira_dora::domain::time::IsoWeek::of_date(today);
    let (from, to) = (this_week.plus(-8).to_string(), this_week.plus(-3).to_string());
    pick_period(&session, "custom-weeks").await;
    assert_eq!(session.script("return document.getElementById('range').hidden").await, json!(false));
    session
        .script(&format!(
            "document.getElementById('from').value = '{from}'; document.getElementById('to').value = '{to}';"
        ))
        .await;
    session.click(&session.find("#apply-range").await).await;
    session.wait_for("return document.body.dataset.loaded", json!(format!("PAY,SHOP|from={from}&to={to}"))).await;
    let answer = grpc.get_metrics(metrics_request(&["PAY", "SHOP"], 0, Some((&from, &to)))).await.unwrap().into_inner();
    let period = session.text(&session.find("#period").await).await;
    assert!(period.starts_with(&format!("From {from} to {to} (6 weeks")), "{period}");
    let combined = answer.combined.unwrap();
    for (key, expected, _) in cards(&combined) {
        let raw =
            session.attribute(&session.find(&format!("[data-key='{key}'] .value")).await, "data-raw").await.unwrap();
        assert_eq!(raw.parse::<f64>().ok(), expected, "{key}");
    }
    rolling_medians_are_the_apis(&session, &weekly(&answer.series)).await;
    // The configured marker is on every chart.
    assert_eq!(
        answer.markers.iter().map(|m| (m.date.as_str(), m.label.as_str())).collect::<Vec<_>>(),
        [(marker_day.as_str(), "New on-call rota")]
    );
    markers_are_on_every_chart(&session, &answer.markers).await;
    level_zones_are_labelled(&session).await;
    no_console_errors(&session, "with two projects over a custom range").await;
    session.script("document.activeElement.blur()").await;
    session.full_page_screenshot(1280, &screenshot("projects.png")).await;

    // The exports: what the page shows, as files.
    let stem = format!("dora-PAY-SHOP-{from}-{to}");
    session.click(&session.find("#export-csv").await).await;
    let csv = String::from_utf8(session.download(&format!("{stem}.csv")).await).unwrap();
    csv_matches(&csv, "PAY+SHOP", "", "week", &weekly(&answer.series));

    session.click(&session.find("#export-md").await).await;
    let md = String::from_utf8(session.download(&format!("{stem}.md")).await).unwrap();
    assert!(md.starts_with("# DORA metrics: PAY, SHOP\n"), "{md}");
    for (key, _, level) in cards(&combined) {
        let title = session.text(&session.find(&format!("#card-{key}")).await).await;
        let value = session.text(&session.find(&format!("[data-key='{key}'] .value")).await).await;
        let row = format!("| {title} | {value} | {} |", level_name(level));
        assert!(md.contains(&row), "`{row}` missing from\n{md}");
    }
    let ai = answer.ai_impact.unwrap();
    let mut sentences = vec![ai.overall.unwrap().sentence];
    sentences.extend(ai.comparisons.iter().chain(&ai.ai_vs_other).map(|c| c.sentence.clone()));
    for sentence in sentences {
        assert!(md.contains(&sentence), "`{sentence}` missing from\n{md}");
    }
    assert!(md.contains(&format!("- {marker_day}: New on-call rota")), "{md}");

    session.click(&session.find("[data-chart='lead_time'] button.png").await).await;
    let png = session.download(&format!("{stem}-lead-time.png")).await;
    png_shows_the_chart(&session, &png).await;
    no_console_errors(&session, "after the exports").await;

    session.full_page_screenshot(390, &screenshot("projects-phone.png")).await;
    session.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and chromedriver (apt-get install chromium chromium-driver); run with `cargo test --test browser -- --ignored`, as .ci/run does"]
async fn the_dashboard_shows_months_from_presets_and_a_custom_range_by_month_or_by_week() {
    use jira_dora::domain::time::{IsoWeek, Month};
    let server = demo().await;
    let mut grpc = server.client().await;
    let (_driver, _profile, session) = browser(1280, 900).await;
    open_project(&session, &server).await;
    let loaded = |hash: String| json!(format!("{PROJECT}|{hash}"));

    // The month presets: the last 3, 12 and 6 complete months, by month.
    for months in [3, 12, 6] {
        pick_period(&session, &format!("m{months}")).await;
        session.wait_for("return document.body.dataset.loaded", loaded(format!("months={months}&by=month"))).await;
        let answer = grpc.get_metrics(months_request(&[PROJECT], months, None)).await.unwrap().into_inner();
        let period = answer.period.clone().unwrap();
        let text = session.text(&session.find("#period").await).await;
        let (from, to) = (period.from_month.unwrap(), period.to_month.unwrap());
        let words = format!(
            "From {from} to {to} ({months} months: {} to {}, {} weeks",
            period.from_week, period.to_week, period.weeks
        );
        assert!(text.starts_with(&words), "{text}");
        assert_eq!(session.script("return document.getElementById('granularity').value").await, json!("month"));
        assert_eq!(session.text(&session.find("#trends-title").await).await, "Monthly trends");
        assert_eq!(answer.monthly_series.len(), months as usize);
        cards_are_the_apis(&session, &answer.combined.unwrap()).await;
        charts_show_the_points(&session, &monthly(&answer.monthly_series)).await;
        rolling_medians_are_the_apis(&session, &monthly(&answer.monthly_series)).await;
        let trend = session.text(&session.find("[data-key='lead_time'] .change").await).await;
        assert!(trend.contains(&format!("the previous {months} months")), "{trend}");
        if months == 6 {
            // The demo's AI rollout, 16 weeks back, on every monthly chart.
            assert_eq!(answer.markers.iter().map(|m| m.label.as_str()).collect::<Vec<_>>(), ["AI rollout"]);
            markers_are_on_every_chart(&session, &answer.markers).await;
            level_zones_are_labelled(&session).await;
            let heading =
                session.script("return document.querySelector(\"[data-chart='lead_time'] thead\").textContent").await;
            assert_eq!(heading, json!("MonthLead time (median)4-month rolling median"));
        }
    }
    no_console_errors(&session, "with the month presets").await;
    session.script("document.activeElement.blur()").await;
    session.full_page_screenshot(1280, &screenshot("months.png")).await;

    // A custom range of months, picked in the period list and the month
    // fields (which start from the months shown).
    let this_month = Month::of_week(IsoWeek::of_date(chrono::Utc::now().date_naive()));
    let (from, to) = (this_month.plus(-5).to_string(), this_month.plus(-2).to_string());
    pick_period(&session, "custom-months").await;
    let fields = session
        .script("const f = document.getElementById('from'), t = document.getElementById('to'); return [document.getElementById('range').hidden, f.type, t.type, f.value, t.value]")
        .await;
    let six = grpc.get_metrics(months_request(&[PROJECT], 6, None)).await.unwrap().into_inner().period.unwrap();
    assert_eq!(fields, json!([false, "month", "month", six.from_month, six.to_month]));
    session
        .script(&format!(
            "document.getElementById('from').value = '{from}'; document.getElementById('to').value = '{to}';"
        ))
        .await;
    session.click(&session.find("#apply-range").await).await;
    session
        .wait_for("return document.body.dataset.loaded", loaded(format!("from_month={from}&to_month={to}&by=month")))
        .await;
    let answer = grpc.get_metrics(months_request(&[PROJECT], 0, Some((&from, &to)))).await.unwrap().into_inner();
    let text = session.text(&session.find("#period").await).await;
    assert!(text.starts_with(&format!("From {from} to {to} (4 months: ")), "{text}");
    cards_are_the_apis(&session, &answer.combined.unwrap()).await;
    charts_show_the_points(&session, &monthly(&answer.monthly_series)).await;
    rolling_medians_are_the_apis(&session, &monthly(&answer.monthly_series)).await;
    // The CSV: one row per month, checked against the API.
    session.click(&session.find("#export-csv").await).await;
    let csv = String::from_utf8(session.download(&format!("dora-{PROJECT}-{from}-{to}-monthly.csv")).await).unwrap();
    csv_matches(&csv, PROJECT, "", "month", &monthly(&answer.monthly_series));
    session.full_page_screenshot(390, &screenshot("months-phone.png")).await;

    // The same months by week: the period stays, the series has a point
    // per week.
    pick_granularity(&session, "week").await;
    session.wait_for("return document.body.dataset.loaded", loaded(format!("from_month={from}&to_month={to}"))).await;
    let by_week = GetMetricsRequest {
        granularity: Granularity::Week as i32,
        ..months_request(&[PROJECT], 0, Some((&from, &to)))
    };
    let answer = grpc.get_metrics(by_week).await.unwrap().into_inner();
    assert_eq!(session.text(&session.find("#trends-title").await).await, "Weekly trends");
    charts_show_the_points(&session, &weekly(&answer.series)).await;
    session.click(&session.find("#export-csv").await).await;
    let csv = String::from_utf8(session.download(&format!("dora-{PROJECT}-{from}-{to}.csv")).await).unwrap();
    csv_matches(&csv, PROJECT, "", "week", &weekly(&answer.series));

    // A period of weeks by month: its first and last points hold only the
    // period's weeks of their months.
    pick_period(&session, "26").await;
    session.wait_for("return document.body.dataset.loaded", loaded("weeks=26".into())).await;
    pick_granularity(&session, "month").await;
    session.wait_for("return document.body.dataset.loaded", loaded("weeks=26&by=month".into())).await;
    let req = GetMetricsRequest { granularity: Granularity::Month as i32, ..metrics_request(&[PROJECT], 26, None) };
    let answer = grpc.get_metrics(req).await.unwrap().into_inner();
    charts_show_the_points(&session, &monthly(&answer.monthly_series)).await;
    rolling_medians_are_the_apis(&session, &monthly(&answer.monthly_series)).await;
    session.click(&session.find("#export-csv").await).await;
    let csv = String::from_utf8(session.download(&format!("dora-{PROJECT}-last-26-weeks-monthly.csv")).await).unwrap();
    csv_matches(&csv, PROJECT, "", "month", &monthly(&answer.monthly_series));
    no_console_errors(&session, "with months").await;
    session.close().await;
    server.stop().await;
}

/// The team names ListTeams gives for `keys`.
async fn team_names(
    grpc: &mut jira_dora::proto::dora_metrics_client::DoraMetricsClient<tonic::transport::Channel>,
    keys: &[&str],
) -> Vec<String> {
    let request = ListTeamsRequest { project_keys: keys.iter().map(|k| k.to_string()).collect() };
    grpc.list_teams(request).await.unwrap().into_inner().teams.into_iter().map(|t| t.name).collect()
}

/// The team list shows "All teams" and then exactly `names`.
async fn team_list_is(session: &Session, names: &[String]) {
    let options =
        session.script("return Array.from(document.querySelectorAll('#team option')).map(o => o.value)").await;
    let expected: Vec<&str> = std::iter::once("").chain(names.iter().map(String::as_str)).collect();
    assert_eq!(options, json!(expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and chromedriver (apt-get install chromium chromium-driver); run with `cargo test --test browser -- --ignored`, as .ci/run does"]
async fn the_dashboard_shows_a_team_of_the_projects_picked_and_says_team_figures_need_not_add_up() {
    // The demo names one team per component.
    let server = demo().await;
    let mut grpc = server.client().await;
    let (_driver, _profile, session) = browser(1280, 900).await;
    open_project(&session, &server).await;
    assert_eq!(session.script("return document.getElementById('team-note').hidden").await, json!(true));

    // The team list holds the teams of the project picked, from ListTeams.
    let names = team_names(&mut grpc, &[PROJECT]).await;
    assert!(names.len() >= 2, "the demo has teams: {names:?}");
    team_list_is(&session, &names).await;

    // A team: its own figures, said to be the team's wherever they show.
    let team = names[0].clone();
    session.click(&session.find("#team").await).await;
    session.click(&session.find(&format!("#team option[value='{team}']")).await).await;
    session.wait_for("return document.body.dataset.loaded", json!(format!("{PROJECT}|weeks=13&team={team}"))).await;
    let request = GetMetricsRequest { team: Some(team.clone()), ..metrics_request(&[PROJECT], 13, None) };
    let answer = grpc.get_metrics(request).await.unwrap().into_inner();
    let project = grpc.get_metrics(metrics_request(&[PROJECT], 13, None)).await.unwrap().into_inner();
    let (figures, whole) = (answer.combined.unwrap(), project.combined.unwrap());
    assert!(
        figures.completed < whole.completed,
        "the team is part of the project: {} of {}",
        figures.completed,
        whole.completed
    );
    cards_are_the_apis(&session, &figures).await;
    for (key, _, _) in cards(&figures) {
        let scope = session.text(&session.find(&format!("[data-key='{key}'] .scope")).await).await;
        assert_eq!(scope, format!("Team {team} in project {PROJECT}"));
    }
    let note = session.text(&session.find("#team-note").await).await;
    assert!(note.starts_with(&format!("Team {team}:")) && note.contains("need not add up to the project's"), "{note}");
    charts_show_the_points(&session, &weekly(&answer.series)).await;
    rolling_medians_are_the_apis(&session, &weekly(&answer.series)).await;
    // The items behind the team's lead time are the team's.
    let button = "[data-key='lead_time'] .explain-open";
    open_panel(&session, button, "lead_time").await;
    assert_eq!(panel_rows(&session).await.len() as u64, figures.lead_time.unwrap().count);
    close_panel(&session, button).await;
    no_console_errors(&session, "with a team").await;
    session.script("document.activeElement.blur()").await;
    session.full_page_screenshot(1280, &screenshot("team.png")).await;

    // The exports name the team.
    let stem = format!("dora-{PROJECT}-team-{team}-last-13-weeks");
    session.click(&session.find("#export-csv").await).await;
    let csv = String::from_utf8(session.download(&format!("{stem}.csv")).await).unwrap();
    csv_matches(&csv, PROJECT, &team, "week", &weekly(&answer.series));
    session.click(&session.find("#export-md").await).await;
    let md = String::from_utf8(session.download(&format!("{stem}.md")).await).unwrap();
    assert!(md.starts_with(&format!("# DORA metrics: {PROJECT}, team {team}\n")), "{md}");
    assert!(md.contains(&note), "the note is missing from\n{md}");
    session.full_page_screenshot(390, &screenshot("team-phone.png")).await;

    // A second project: the list holds the teams of both; the team picked
    // stays, with its figures over both.
    pick_projects(&session, &["SHOP"], &[]).await;
    let both = team_names(&mut grpc, &[PROJECT, "SHOP"]).await;
    assert!(both.contains(&team), "{both:?}");
    session
        .wait_for("return document.body.dataset.loaded", json!(format!("{PROJECT},SHOP|weeks=13&team={team}")))
        .await;
    team_list_is(&session, &both).await;
    let request = GetMetricsRequest { team: Some(team.clone()), ..metrics_request(&[PROJECT, "SHOP"], 13, None) };
    cards_are_the_apis(&session, &grpc.get_metrics(request).await.unwrap().into_inner().combined.unwrap()).await;
    let scope = session.text(&session.find("[data-key='lead_time'] .scope").await).await;
    assert_eq!(scope, format!("Team {team} in 2 projects combined: {PROJECT}, SHOP"));

    // All teams again: the projects' figures, no note.
    session.click(&session.find("#team").await).await;
    session.click(&session.find("#team option[value='']").await).await;
    session.wait_for("return document.body.dataset.loaded", json!(format!("{PROJECT},SHOP|weeks=13"))).await;
    assert_eq!(session.script("return document.getElementById('team-note').hidden").await, json!(true));
    let answer = grpc.get_metrics(metrics_request(&[PROJECT, "SHOP"], 13, None)).await.unwrap().into_inner();
    cards_are_the_apis(&session, &answer.combined.unwrap()).await;

    // The wallboard of a team.
    session.goto(&server.url(&format!("/?wallboard=1&project={PROJECT}&metric=lead_time&team={team}"))).await;
    session.wait_for("return document.body.dataset.state", json!("ready")).await;
    assert_eq!(
        session.text(&session.find("#wallboard .wall-title").await).await,
        format!("Lead time for changes — {PROJECT}, team {team}")
    );
    let value = session.find("#wallboard .wall-value").await;
    assert_eq!(
        session.attribute(&value, "data-raw").await.unwrap().parse::<f64>().ok(),
        figures.lead_time.unwrap().median_hours
    );
    assert!(session.text(&session.find("#wallboard .team-note").await).await.contains("need not add up"));
    no_console_errors(&session, "with teams").await;

    // A team without work in the project says so (the only console error
    // is the answer's 404).
    session.goto(&server.url(&format!("/?wallboard=1&project={PROJECT}&metric=lead_time&team=Nobody"))).await;
    session.wait_for("return document.body.dataset.state", json!("no-team-work")).await;
    let text = session.text(&session.find("#notice").await).await;
    assert!(text.contains(&format!("No issue of {PROJECT} belongs to team Nobody")), "{text}");
    let unexpected: Vec<_> =
        session.console().await.into_iter().filter(|(level, m)| level == "SEVERE" && !m.contains("404")).collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    session.close().await;
    server.stop().await;
}

/// Holds the wallboard's 5-minute refresh until the test calls
/// `window.wake()` (so that nothing re-renders while the test reads the
/// page), and records every delay asked for in `window.delays`.
const HELD_REFRESH: &str = r#"(() => {
  const real = window.setTimeout.bind(window);
  window.delays = [];
  window.setTimeout = (f, ms, ...rest) => {
    window.delays.push(ms);
    if (ms === 300000) { window.wake = () => real(f, 0, ...rest); return 0; }
    return real(f, ms, ...rest);
  };
})();"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and chromedriver (apt-get install chromium chromium-driver); run with `cargo test --test browser -- --ignored`, as .ci/run does"]
async fn the_wallboard_shows_one_figure_with_its_level_and_trend_and_refreshes_every_five_minutes() {
    let server = demo().await;
    let mut grpc = server.client().await;
    let (_driver, _profile, session) = browser(1280, 720).await;
    session.before_every_page(HELD_REFRESH).await;
    session.goto(&server.url("/?wallboard=1&project=PAY&metric=lead_time")).await;
    session.wait_for("return document.body.dataset.state", json!("ready")).await;

    let answer = grpc.get_metrics(metrics_request(&["PAY"], 13, None)).await.unwrap().into_inner();
    let (now, before) = (answer.combined.unwrap(), answer.previous.unwrap());
    let (median, previous) = (now.lead_time.unwrap().median_hours, before.lead_time.unwrap().median_hours);
    let value = session.find("#wallboard .wall-value").await;
    assert_eq!(session.attribute(&value, "data-raw").await.unwrap().parse::<f64>().ok(), median);
    let (shown, converted) = shown_and_expected(&session.text(&value).await, median);
    assert!((shown - converted).abs() <= 0.051, "shows {shown}, gRPC says {converted}");
    assert_eq!(session.text(&session.find("#wallboard .wall-title").await).await, "Lead time for changes — PAY");
    let level = session.text(&session.find("#wallboard .level").await).await;
    assert_eq!(level, format!("DORA level: {}", level_name(now.levels.unwrap().lead_time)));
    let trend = session.text(&session.find("#wallboard .change").await).await;
    let (m, p) = (median.unwrap(), previous.unwrap());
    let words = if (m - p).abs() / p < 0.005 {
        "Same as"
    } else if m > p {
        "Up "
    } else {
        "Down "
    };
    assert!(trend.contains(words) && trend.contains("the previous 13 weeks"), "{trend} (now {m}, before {p})");
    // Its chart, with the level zones, and nothing else of the dashboard.
    assert_eq!(session.script("return document.querySelectorAll('#wallboard figure[data-chart=\"lead_time\"] g[data-level]').length > 0").await, json!(true));
    assert_eq!(
        session
            .script("return document.getElementById('content').hidden && document.getElementById('pickers').hidden")
            .await,
        json!(true)
    );
    session.full_page_screenshot(1280, &screenshot("wallboard.png")).await;

    // It asks to be woken in 5 minutes, and then loads again.
    assert_eq!(session.script("return window.delays.includes(300000)").await, json!(true));
    for refreshes in 2..=3 {
        session.script("window.wake()").await;
        session.wait_for(&format!("return Number(document.body.dataset.refreshes) >= {refreshes}"), json!(true)).await;
    }
    session.wait_for("return document.body.dataset.state", json!("ready")).await;
    no_console_errors(&session, "on the wallboard").await;

    // An address without a metric says what to write.
    session.goto(&server.url("/?wallboard=1&project=PAY")).await;
    session.wait_for("return document.body.dataset.state", json!("wallboard-address")).await;
    let text = session.text(&session.find("#notice").await).await;
    assert!(text.contains("metric=lead_time"), "{text}");
    session.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and chromedriver (apt-get install chromium chromium-driver); run with `cargo test --test browser -- --ignored`, as .ci/run does"]
async fn without_deployments_the_change_failure_card_shows_the_reopen_rate_as_a_labelled_stand_in() {
    // Definitions under which no version is a deployment (a team that
    // deploys without releasing versions, before its transitions are set up).
    let defs = tempfile::tempdir().unwrap();
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("metrics-defs");
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rhai") {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replace("version.released && version.release_date != ()", "false");
            std::fs::write(defs.path().join(path.file_name().unwrap()), text).unwrap();
        }
    }
    let mut config = common::demo_config();
    config.defs_dir = defs.path().to_owned();
    let server = DemoServer::start(config).await;
    let mut grpc = server.client().await;
    common::harvested(&mut grpc).await;
    let answer = grpc.get_metrics(metrics_request(&[PROJECT], 13, None)).await.unwrap().into_inner();
    let combined = answer.combined.unwrap();
    assert_eq!(combined.deployments, 0, "the definitions leave no deployment");
    let reopen_rate = combined.reopen_rate.expect("completed work");

    let (_driver, _profile, session) = browser(1280, 900).await;
    open_project(&session, &server).await;
    let card = "[data-key='change_failure_rate']";
    assert_eq!(
        session.text(&session.find(&format!("{card} .no-deployments")).await).await,
        "No deployments in the period"
    );
    assert_eq!(session.text(&session.find(&format!("{card} .stand-in-label")).await).await, "Stand-in: re-open rate");
    let value = session.find(&format!("{card} .stand-in-value")).await;
    assert_eq!(session.attribute(&value, "data-raw").await.unwrap().parse::<f64>().ok(), Some(reopen_rate));
    let (shown, converted) = shown_and_expected(&session.text(&value).await, Some(reopen_rate));
    assert!((shown - converted).abs() <= 0.051);
    // Never presented as a change failure rate: no figure in the card's
    // value slot, an unknown level, and words that say what it is.
    assert_eq!(session.script(&format!("return document.querySelector(\"{card} .value\")")).await, Value::Null);
    assert_eq!(session.text(&session.find(&format!("{card} .level")).await).await, "DORA level: Unknown");
    let detail = session.text(&session.find(&format!("{card} .detail")).await).await;
    assert!(detail.contains("not a change failure rate"), "{detail}");
    no_console_errors(&session, "without deployments").await;
    session.full_page_screenshot(390, &screenshot("no-deployments-phone.png")).await;

    // The summary says the same.
    session.click(&session.find("#export-md").await).await;
    let md = String::from_utf8(session.download(&format!("dora-{PROJECT}-last-13-weeks.md")).await).unwrap();
    let rate = format!("{:.1} %", reopen_rate * 100.0);
    let row = format!("| Change failure rate | no deployments (stand-in: re-open rate {rate}) | Unknown |");
    assert!(md.contains(&row), "`{row}` missing from\n{md}");

    // So does the wallboard.
    session.goto(&server.url(&format!("/?wallboard=1&project={PROJECT}&metric=change_failure_rate"))).await;
    session.wait_for("return document.body.dataset.state", json!("ready")).await;
    let label = session.text(&session.find("#wallboard .stand-in-label").await).await;
    assert_eq!(label, "Stand-in: re-open rate (not a change failure rate)");
    let value = session.find("#wallboard .stand-in-value").await;
    assert_eq!(session.attribute(&value, "data-raw").await.unwrap().parse::<f64>().ok(), Some(reopen_rate));
    no_console_errors(&session, "on the wallboard without deployments").await;
    session.close().await;
    server.stop().await;
}

/// The rows of the open panel: (name, the cell of the last column).
async fn panel_rows(session: &Session) -> Vec<(String, String)> {
    let rows = session
        .script(
            "return Array.from(document.querySelectorAll('#explain tbody tr')).map(r => [r.dataset.item, r.lastElementChild.textContent])",
        )
        .await;
    serde_json::from_value(rows).unwrap()
}

/// Opens a panel with the keyboard (Enter on its button) and waits for it.
async fn open_panel(session: &Session, button: &str, list: &str) {
    let b = session.find(button).await;
    session.script(&format!("document.querySelector(\"{button}\").focus()")).await;
    session.keys(&b, "\u{E007}").await;
    session
        .wait_for(
            "const d = document.getElementById('explain'); return !!d && d.open && d.dataset.state",
            json!("ready"),
        )
        .await;
    assert_eq!(session.script("return document.getElementById('explain').dataset.list").await, json!(list));
}

/// Closes the open panel with Escape; the focus goes back to its button.
async fn close_panel(session: &Session, button: &str) {
    let d = session.find("#explain-close").await;
    session.keys(&d, "\u{E00C}").await;
    session.wait_for("return document.getElementById('explain').open", json!(false)).await;
    let back = session.script(&format!("return document.activeElement === document.querySelector(\"{button}\")")).await;
    assert_eq!(back, json!(true), "the focus is back on {button}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs headless Chromium and chromedriver (apt-get install chromium chromium-driver); run with `cargo test --test browser -- --ignored`, as .ci/run does"]
async fn each_card_opens_a_panel_listing_what_explain_metrics_returns() {
    use jira_dora::proto::{AttributionKind, ExplainItem, ExplainMetricsRequest, Figure};
    let server = demo().await;
    let (_driver, _profile, session) = browser(1280, 900).await;
    session.goto(&server.url("/")).await;
    session.wait_for("return document.body.dataset.loaded", json!("OPS|weeks=13")).await;

    let mut grpc = server.client().await;
    let mut list = async |figure: Figure| -> (Vec<ExplainItem>, jira_dora::proto::DataQuality) {
        let request = ExplainMetricsRequest {
            project_keys: vec!["OPS".into()],
            weeks: 13,
            figure: figure as i32,
            page_size: 1000,
            ..Default::default()
        };
        let r = grpc.explain_metrics(request).await.unwrap().into_inner();
        assert!(r.next_page_token.is_empty());
        (r.items, r.data_quality.unwrap())
    };

    // The data-quality line under the cards says what ExplainMetrics says.
    let (deployments, quality) = list(Figure::Deployments).await;
    session
        .wait_for(
            "return (document.getElementById('data-quality') || {}).textContent.startsWith('Data quality:')",
            json!(true),
        )
        .await;
    let line = session.text(&session.find("#data-quality").await).await;
    let failures = quality.failures_by_version + quality.failures_by_time + quality.failures_unattributed;
    assert!(
        line.contains(&format!("Of {failures} failure"))
            && line.contains(&format!("{} by time", quality.failures_by_time)),
        "{line}"
    );
    assert!(line.contains(&format!("{} issue", quality.excluded)), "{line}");

    // Deployment frequency: every deployment, in the API's order.
    let button = "[data-key='deployment_frequency'] .explain-open";
    open_panel(&session, button, "deployment_frequency").await;
    let rows = panel_rows(&session).await;
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let expected: Vec<&str> = deployments.iter().map(|d| d.version_name.as_str()).collect();
    assert!(!expected.is_empty());
    assert_eq!(names, expected);
    no_console_errors(&session, "with the deployments panel").await;
    close_panel(&session, button).await;

    // Change failure rate: the failed deployments, each with the failures
    // that failed it (links to Jira) and how.
    let button = "[data-key='change_failure_rate'] .explain-open";
    open_panel(&session, button, "change_failure_rate").await;
    let rows = panel_rows(&session).await;
    let failed: Vec<&ExplainItem> = deployments.iter().filter(|d| d.failed).collect();
    assert!(!failed.is_empty(), "the demo has failed deployments");
    assert_eq!(rows.len(), failed.len());
    for ((name, because), d) in rows.iter().zip(&failed) {
        assert_eq!(name, &d.version_name);
        for a in &d.attributions {
            let how = match AttributionKind::try_from(a.kind).unwrap() {
                AttributionKind::ByVersion => "by affected version",
                AttributionKind::ByTime => "by time",
                AttributionKind::ByTransition => "rolled back",
                _ => "fixed here",
            };
            assert!(
                because.contains(&format!("{} ({how})", a.issue_key)),
                "{name}: `{because}` lacks {} {how}",
                a.issue_key
            );
        }
    }
    let links = session.script("return Array.from(document.querySelectorAll('#explain tbody a')).map(a => [a.textContent, a.href, a.target, a.rel])").await;
    let links: Vec<(String, String, String, String)> = serde_json::from_value(links).unwrap();
    assert!(!links.is_empty());
    for (key, href, target, rel) in &links {
        assert!(
            href.ends_with(&format!("/browse/{key}")) && target == "_blank" && rel == "noopener noreferrer",
            "{key} {href}"
        );
    }
    close_panel(&session, button).await;

    // Lead time: the slowest items first, with the API's hours.
    let (lead, _) = list(Figure::LeadTime).await;
    let button = "[data-key='lead_time'] .explain-open";
    open_panel(&session, button, "lead_time").await;
    let shown = session.script("return Array.from(document.querySelectorAll('#explain tbody tr')).map(r => [r.dataset.item, Number(r.querySelector('[data-hours]').dataset.hours)])").await;
    let shown: Vec<(String, f64)> = serde_json::from_value(shown).unwrap();
    let mut expected: Vec<(String, f64)> = lead.iter().map(|i| (i.issue_key.clone(), i.hours.unwrap())).collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(shown.len(), expected.len());
    assert!(shown.windows(2).all(|w| w[0].1 >= w[1].1), "slowest first");
    let (mut a, mut b) = (shown.clone(), expected.clone());
    a.sort_by(|x, y| x.0.cmp(&y.0));
    b.sort_by(|x, y| x.0.cmp(&y.0));
    // The same items, with the same hours (JSON numbers to the last bits).
    assert_eq!(a.iter().map(|x| &x.0).collect::<Vec<_>>(), b.iter().map(|x| &x.0).collect::<Vec<_>>());
    assert!(a.iter().zip(&b).all(|(x, y)| (x.1 - y.1).abs() < 1e-9), "{a:?} vs {b:?}");
    session.script("document.activeElement.blur()").await;
    session.full_page_screenshot(1280, &screenshot("explain.png")).await;
    close_panel(&session, button).await;

    // A count opens its list too; on a phone the panel fills the screen.
    session.resize(390, 844).await;
    let button = "[data-count='completed'] .explain-open";
    open_panel(&session, button, "completed").await;
    let completed = session.script("return document.querySelectorAll('#explain tbody tr').length").await;
    assert_eq!(completed, json!(lead.len()), "completed items are the lead-time items");
    let fits = session.script("const r = document.getElementById('explain').getBoundingClientRect(); return r.width >= window.innerWidth - 1 && r.left <= 0").await;
    assert_eq!(fits, json!(true));
    session.full_page_screenshot(390, &screenshot("explain-phone.png")).await;
    close_panel(&session, button).await;
    no_console_errors(&session, "after the panels").await;

    session.close().await;
    server.stop().await;
}
