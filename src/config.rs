//! Typed configuration: a TOML file plus environment overrides, validated
//! completely at start.
//!
//! Unknown keys are rejected, and validation reports every problem at once,
//! each naming its key. The environment is read through [`Env`] so tests can
//! pass a map. Credentials come only from the environment or secret files,
//! never from the TOML file, and are wrapped in [`Secret`] so no `Debug` or
//! log line can show them.
//!
//! Must not depend on `harvest`, `store` or `api`; it uses `jira` only for
//! the client's own settings type.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Deserialize;
use thiserror::Error;

pub use crate::jira::SecretString as Secret;
use crate::jira::{Flavor, JiraAuth, JiraConfig};

mod auth;
mod cluster;
mod env;

pub use auth::{ApiKey, AuthSettings, PermissionMode, Role, TlsSettings};
pub use cluster::{ClusterSettings, DEFAULT_HEARTBEAT, DEFAULT_LEASE, DEFAULT_POLL};
pub use env::{Env, ProcessEnv};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The configuration file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    report_tz: Option<String>,
    data_dir: Option<PathBuf>,
    defs_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    jira: FileJira,
    #[serde(default)]
    harvest: FileHarvest,
    #[serde(default)]
    ai: FileAi,
    #[serde(default)]
    snapshot: FileSnapshot,
    #[serde(default)]
    metrics: FileMetrics,
    #[serde(default)]
    cache: FileCache,
    #[serde(default)]
    projects: BTreeMap<String, FileProject>,
    #[serde(default)]
    auth: auth::FileAuth,
    #[serde(default)]
    tls: auth::FileTls,
    #[serde(default)]
    definitions: FileDefinitions,
    #[serde(default)]
    markers: Vec<FileMarker>,
    #[serde(default)]
    cluster: cluster::FileCluster,
    /// Refused: the database URL comes from the environment only.
    database_url: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    http: FileHttp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    allowed_origins: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMarker {
    date: String,
    label: String,
    projects: Option<Vec<String>>,
}

/// At most this many `[[markers]]`.
pub const MAX_MARKERS: usize = 50;
/// Longest marker label, in characters.
pub const MAX_MARKER_LABEL_CHARS: usize = 60;

/// An event drawn on the dashboard's charts (a process change, a
/// reorganisation, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// A calendar date, no time zone.
    pub date: NaiveDate,
    /// At most [`MAX_MARKER_LABEL_CHARS`] characters, no control characters.
    pub label: String,
    /// The projects it concerns; empty: every project.
    pub projects: Vec<String>,
}

impl Marker {
    /// Whether the marker belongs on a view of these projects: it names
    /// none, or at least one of them.
    pub fn concerns(&self, keys: &[String]) -> bool {
        self.projects.is_empty() || self.projects.iter().any(|p| keys.contains(p))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDefinitions {
    allow_updates: Option<bool>,
    watch_interval_ms: Option<u64>,
}

/// How the definitions may change while the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionsSettings {
    /// Whether `UpdateDefinitions` may replace the definitions (default
    /// off, until admin authentication guards it).
    pub allow_updates: bool,
    /// How often the definitions folder is checked for edits; `None`
    /// disables watching.
    pub watch_interval: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJira {
    base_url: Option<String>,
    flavor: Option<String>,
    max_concurrency: Option<usize>,
    request_timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    page_size: Option<u32>,
    dc_result_window: Option<u64>,
    overlap_minutes: Option<u64>,
    #[serde(default)]
    ai_account_ids: Vec<String>,
    #[serde(default)]
    ignored_app_account_ids: Vec<String>,
    #[serde(default)]
    extra_fields: Vec<String>,
}

/// The most custom fields `jira.extra_fields` may name.
pub const MAX_EXTRA_FIELDS: usize = 20;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHarvest {
    projects: Option<Vec<String>>,
    interval_minutes: Option<u64>,
    full_refresh_hour: Option<u32>,
    reconcile_interval_minutes: Option<u64>,
    on_start: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSnapshot {
    interval_ms: Option<u64>,
    debounce_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMetrics {
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCache {
    answers_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAi {
    rollout_date: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProject {
    ai_rollout_date: Option<String>,
}

/// Harvest schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarvestSettings {
    /// Projects to harvest; empty means every project the account can see.
    pub projects: Vec<String>,
    /// Incremental refresh interval; `None` disables the schedule.
    pub interval: Option<Duration>,
    /// Hour of the day (reporting zone) of the nightly full refresh.
    pub full_refresh_hour: Option<u32>,
    /// How old a project's last check for deleted and moved issues (or its
    /// last full refresh) must be for an incremental refresh to check
    /// again; zero: every incremental refresh.
    pub reconcile_interval: Duration,
    /// Harvest once at start.
    pub on_start: bool,
}

/// When snapshots of the state are written to the data directory (besides
/// at shutdown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSettings {
    /// Periodic snapshots; `None` disables them.
    pub interval: Option<Duration>,
    /// Quiet time after a refresh changed the state before the snapshot is
    /// written (changes during it are written together).
    pub debounce: Duration,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub report_tz: Tz,
    pub data_dir: PathBuf,
    pub defs_dir: PathBuf,
    pub log_format: LogFormat,
    /// `None`: no Jira configured, serve the embedded demo site.
    pub jira: Option<JiraConfig>,
    pub harvest: HarvestSettings,
    /// AI rollout date for every project, unless a project has its own.
    pub ai_rollout_date: Option<NaiveDate>,
    /// Per-project AI rollout dates.
    pub project_rollout_dates: BTreeMap<String, NaiveDate>,
    /// Client authentication and viewer permission checks.
    pub auth: AuthSettings,
    /// `None`: plain HTTP/2.
    pub tls: Option<TlsSettings>,
    pub snapshot: SnapshotSettings,
    /// Serve Prometheus metrics at `/metrics`.
    pub metrics_enabled: bool,
    /// Updates and file watching of the definitions.
    pub definitions: DefinitionsSettings,
    /// Events to mark on the charts, in date order.
    pub markers: Vec<Marker>,
    /// Memory for remembered `GetMetrics` answers (0: none remembered).
    pub answer_cache_bytes: usize,
    /// `None`: a single instance with snapshot files; else several
    /// replicas sharing PostgreSQL.
    pub cluster: Option<ClusterSettings>,
    /// Origins of web pages on other sites allowed to call the port (e.g. a
    /// gateway's), as `scheme://host[:port]` in lower case.
    pub allowed_origins: Vec<String>,
}

impl Config {
    /// The AI rollout date that applies to a project.
    pub fn rollout_date(&self, project: &str) -> Option<NaiveDate> {
        self.project_rollout_dates.get(project).copied().or(self.ai_rollout_date)
    }

    /// True when the service serves the embedded demo site.
    pub fn is_demo(&self) -> bool {
        self.jira.is_none()
    }
}

/// Every problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Default folder of the metric definitions.
pub const DEFAULT_DEFS_DIR: &str = "metrics-defs";

/// How often an incremental refresh checks for deleted and moved issues,
/// unless configured.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(3600);

/// Longest `harvest.reconcile_interval_minutes`: a week.
pub const MAX_RECONCILE_MINUTES: u64 = 7 * 24 * 60;

/// Largest memory for remembered answers, MiB.
pub const MAX_ANSWER_CACHE_MIB: u64 = 4096;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// An `Origin` as compared: lower case, no trailing slash.
pub fn normalise_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Is `key` a plausible Jira project key?
pub fn is_project_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads and validates the configuration: the TOML text (if any) with the
/// environment on top.
pub fn load(toml_text: Option<&str>, env: &dyn Env) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let file: FileConfig = match toml_text.map(|text| (text, toml::from_str::<FileConfig>(text))) {
        None => FileConfig::default(),
        Some((_, Ok(f))) => f,
        Some((text, Err(e))) => return Err(ConfigError { problems: vec![file_error(text, &e)] }),
    };

    let listen_text = env.var("DORA_LISTEN").or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen_text.parse().unwrap_or_else(|_| {
        problems.push(format!("listen (DORA_LISTEN): `{listen_text}` is not an address like 127.0.0.1:50051"));
        DEFAULT_LISTEN.parse().expect("default address parses")
    });

    let tz_text = env.var("DORA_REPORT_TZ").or(file.report_tz).unwrap_or_else(|| "UTC".to_owned());
    let report_tz = tz_text.parse::<Tz>().unwrap_or_else(|_| {
        problems.push(format!("report_tz (DORA_REPORT_TZ): `{tz_text}` is not an IANA time zone like Europe/Berlin"));
        chrono_tz::UTC
    });

    let data_dir = env.var("DORA_DATA_DIR").map(PathBuf::from).or(file.data_dir).unwrap_or_else(|| "data".into());
    let defs_dir =
        env.var("DORA_DEFS_DIR").map(PathBuf::from).or(file.defs_dir).unwrap_or_else(|| DEFAULT_DEFS_DIR.into());
    let log_format = match env.var("DORA_LOG_FORMAT").as_deref() {
        Some("json") => LogFormat::Json,
        Some("human") => LogFormat::Human,
        Some(other) => {
            problems.push(format!("log_format (DORA_LOG_FORMAT): `{other}` is neither `human` nor `json`"));
            LogFormat::Human
        }
        None => file.log_format.unwrap_or_default(),
    };

    let jira = jira_settings(file.jira, env, &mut problems);
    let datacenter = jira.as_ref().is_some_and(|j| j.flavor == Flavor::DataCenter);
    let (auth, tls) = auth::settings(file.auth, file.tls, listen, datacenter, env, &mut problems);

    let projects: Vec<String> = match env.var("DORA_PROJECTS") {
        Some(list) => list.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect(),
        None => file.harvest.projects.unwrap_or_default(),
    };
    for p in &projects {
        if !is_project_key(p) {
            problems.push(format!("harvest.projects (DORA_PROJECTS): `{p}` is not a Jira project key"));
        }
    }
    let interval = match file.harvest.interval_minutes {
        Some(0) => None,
        Some(m) => Some(Duration::from_secs(m * 60)),
        None => Some(Duration::from_secs(15 * 60)),
    };
    let reconcile_interval = match file.harvest.reconcile_interval_minutes {
        Some(m) if m > MAX_RECONCILE_MINUTES => {
            problems.push(format!(
                "harvest.reconcile_interval_minutes: {m} is more than a week ({MAX_RECONCILE_MINUTES}); deleted and moved issues would count that long"
            ));
            DEFAULT_RECONCILE_INTERVAL
        }
        Some(m) => Duration::from_secs(m * 60),
        None => DEFAULT_RECONCILE_INTERVAL,
    };
    let full_refresh_hour = match file.harvest.full_refresh_hour {
        Some(h) if h > 23 => {
            problems.push(format!("harvest.full_refresh_hour: {h} is not an hour from 0 to 23"));
            None
        }
        other => Some(other.unwrap_or(3)),
    };

    let mut date = |key: String, text: &str| match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            problems.push(format!("{key}: `{text}` is not a date like 2026-03-01"));
            None
        }
    };
    let ai_rollout_date = file.ai.rollout_date.as_deref().and_then(|t| date("ai.rollout_date".into(), t));
    let mut project_rollout_dates = BTreeMap::new();
    for (key, p) in &file.projects {
        if let Some(d) = p.ai_rollout_date.as_deref().and_then(|t| date(format!("projects.{key}.ai_rollout_date"), t)) {
            project_rollout_dates.insert(key.clone(), d);
        }
    }
    for key in file.projects.keys() {
        if !is_project_key(key) {
            problems.push(format!("projects.{key}: `{key}` is not a Jira project key"));
        }
    }
    let markers = markers(file.markers, &mut problems);

    let mut millis = |key: &str, var: &str, file: Option<u64>, default: u64| match env.var(var) {
        Some(text) => text.trim().parse::<u64>().unwrap_or_else(|_| {
            problems.push(format!("{key} ({var}): `{text}` is not a number of milliseconds"));
            default
        }),
        None => file.unwrap_or(default),
    };
    let snapshot_interval =
        millis("snapshot.interval_ms", "DORA_SNAPSHOT_INTERVAL_MS", file.snapshot.interval_ms, 300_000);
    let snapshot_debounce =
        millis("snapshot.debounce_ms", "DORA_SNAPSHOT_DEBOUNCE_MS", file.snapshot.debounce_ms, 2_000);
    let snapshot = SnapshotSettings {
        interval: (snapshot_interval > 0).then(|| Duration::from_millis(snapshot_interval)),
        debounce: Duration::from_millis(snapshot_debounce),
    };

    let metrics_enabled = match env.var("DORA_METRICS").as_deref() {
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => {
            problems.push(format!("metrics.enabled (DORA_METRICS): `{other}` is neither `true` nor `false`"));
            false
        }
        None => file.metrics.enabled.unwrap_or(false),
    };
    let watch_interval = match file.definitions.watch_interval_ms {
        Some(0) => None,
        Some(ms) if ms < 100 => {
            problems.push(format!(
                "definitions.watch_interval_ms: {ms} is too short; at least 100 (or 0 to turn watching off)"
            ));
            None
        }
        Some(ms) => Some(Duration::from_millis(ms)),
        None => Some(Duration::from_secs(2)),
    };
    let definitions =
        DefinitionsSettings { allow_updates: file.definitions.allow_updates.unwrap_or(false), watch_interval };
    let answer_cache_bytes = match file.cache.answers_mib {
        Some(mib) if mib > MAX_ANSWER_CACHE_MIB => {
            problems.push(format!("cache.answers_mib: {mib} is more than {MAX_ANSWER_CACHE_MIB}"));
            0
        }
        Some(mib) => mib as usize * (1 << 20),
        None => crate::store::DEFAULT_ANSWER_BYTES,
    };
    let cluster = cluster::settings(file.cluster, file.database_url.is_some(), env, &mut problems);

    let allowed_origins = match env.var("DORA_ALLOWED_ORIGINS") {
        Some(list) => list.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect(),
        None => file.http.allowed_origins.unwrap_or_default(),
    };
    let allowed_origins: Vec<String> = allowed_origins.iter().map(|o| normalise_origin(o)).collect();
    for origin in &allowed_origins {
        let plain = origin.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(['/', '?', '#', '@', ' '])
        });
        if !plain {
            problems.push(format!(
                "http.allowed_origins (DORA_ALLOWED_ORIGINS): `{}` is not an origin like https://gateway.example.com",
                origin.escape_debug()
            ));
        }
    }

    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    Ok(Config {
        listen,
        report_tz,
        data_dir,
        defs_dir,
        log_format,
        jira,
        harvest: HarvestSettings {
            projects,
            interval,
            full_refresh_hour,
            reconcile_interval,
            on_start: file.harvest.on_start.unwrap_or(true),
        },
        ai_rollout_date,
        project_rollout_dates,
        auth,
        tls,
        snapshot,
        metrics_enabled,
        definitions,
        markers,
        answer_cache_bytes,
        cluster,
        allowed_origins,
    })
}

/// The `[[markers]]`, validated (every problem reported), in date order.
/// Problems name the marker by its position and never quote its label.
fn markers(file: Vec<FileMarker>, problems: &mut Vec<String>) -> Vec<Marker> {
    if file.len() > MAX_MARKERS {
        problems.push(format!("markers: {} markers; at most {MAX_MARKERS}", file.len()));
    }
    let mut out = Vec::with_capacity(file.len());
    for (i, m) in file.into_iter().enumerate() {
        let at = format!("markers[{i}]");
        let before = problems.len();
        let date = NaiveDate::parse_from_str(&m.date, "%Y-%m-%d");
        if date.is_err() {
            problems.push(format!("{at}.date: `{}` is not a date like 2026-03-01", m.date.escape_debug()));
        }
        let label = m.label.trim().to_owned();
        let chars = label.chars().count();
        if chars == 0 {
            problems
                .push(format!("{at}.label: empty; say what happened in at most {MAX_MARKER_LABEL_CHARS} characters"));
        } else if chars > MAX_MARKER_LABEL_CHARS {
            problems.push(format!("{at}.label: {chars} characters; at most {MAX_MARKER_LABEL_CHARS}"));
        }
        if label.chars().any(char::is_control) {
            problems.push(format!("{at}.label: holds a control character (a line break?); one line of text only"));
        }
        let projects = m.projects.unwrap_or_default();
        if let Some(bad) = projects.iter().find(|p| !is_project_key(p)) {
            problems.push(format!("{at}.projects: `{}` is not a Jira project key", bad.escape_debug()));
        }
        if let (Ok(date), true) = (date, problems.len() == before) {
            out.push(Marker { date, label, projects });
        }
    }
    out.sort_by_key(|m| m.date);
    out
}

/// A TOML error as a problem: where, and what, without the offending line
/// or any quoted value (a credential pasted into the file must not be
/// printed back).
fn file_error(text: &str, e: &toml::de::Error) -> String {
    let mut message = String::new();
    let mut quoted = false;
    for c in e.message().trim().chars() {
        if c == '"' {
            if !quoted {
                message.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            message.push(c);
        }
    }
    if message.contains("unknown field") && ["token", "password", "secret", "email"].iter().any(|w| message.contains(w))
    {
        message.push_str("; credentials are read only from the environment or secret files (JIRA_EMAIL, JIRA_API_TOKEN, JIRA_BEARER_TOKEN, *_FILE)");
    }
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("config file, line {line}, column {column}: {message}")
        }
        None => format!("config file: {message}"),
    }
}

/// The Jira part: present when a base URL is configured. Unset keys keep
/// the client's defaults.
fn jira_settings(file: FileJira, env: &dyn Env, problems: &mut Vec<String>) -> Option<JiraConfig> {
    let defaults = JiraConfig::default();
    let base_url = env.var("JIRA_BASE_URL").or(file.base_url)?;
    let base_url = base_url.trim_end_matches('/').to_owned();
    // The check the client makes when the service starts, so that
    // `check-config` refuses what `serve` would.
    let checked = match crate::jira::base_url(&base_url) {
        Ok(_) if base_url.contains(' ') => Err("contains a space"),
        other => other.map(drop),
    };
    if let Err(why) = checked {
        problems.push(format!(
            "jira.base_url (JIRA_BASE_URL): {why}; expected an http(s) URL like https://example.atlassian.net"
        ));
    }
    let flavor = match env.var("JIRA_FLAVOR").or(file.flavor).as_deref() {
        None | Some("cloud") => Flavor::Cloud,
        Some("datacenter") => Flavor::DataCenter,
        Some(other) => {
            problems.push(format!("jira.flavor (JIRA_FLAVOR): `{other}` is neither `cloud` nor `datacenter`"));
            Flavor::Cloud
        }
    };
    let secret = |name: &str, problems: &mut Vec<String>| -> Option<Secret> {
        if let Some(v) = env.var(name) {
            return Some(Secret::new(v));
        }
        let path = env.var(&format!("{name}_FILE"))?;
        match std::fs::read_to_string(&path) {
            Ok(v) => Some(Secret::new(v.trim())),
            Err(e) => {
                problems.push(format!("{name}_FILE: cannot read the secret file: {}", e.kind()));
                None
            }
        }
    };
    let bearer = secret("JIRA_BEARER_TOKEN", problems);
    let token = secret("JIRA_API_TOKEN", problems);
    let auth = match (env.var("JIRA_EMAIL"), token, bearer) {
        (_, Some(_), Some(_)) => {
            problems.push("JIRA_API_TOKEN and JIRA_BEARER_TOKEN: set one of them, not both".into());
            JiraAuth::None
        }
        (Some(email), Some(token), None) => JiraAuth::Basic { email, token },
        (None, Some(_), None) => {
            problems.push("JIRA_EMAIL: required with JIRA_API_TOKEN (Basic authentication)".into());
            JiraAuth::None
        }
        (_, None, Some(b)) => JiraAuth::Bearer(b),
        (_, None, None) => JiraAuth::None,
    };
    let positive = |key: &str, v: Option<u64>, default: u64, problems: &mut Vec<String>| match v {
        Some(0) => {
            problems.push(format!("jira.{key}: must be at least 1"));
            default
        }
        Some(v) => v,
        None => default,
    };
    let max_concurrency =
        positive("max_concurrency", file.max_concurrency.map(|v| v as u64), defaults.max_concurrency as u64, problems);
    let timeout =
        positive("request_timeout_secs", file.request_timeout_secs, defaults.request_timeout.as_secs(), problems);
    let page_size =
        positive("page_size", file.page_size.map(u64::from), u64::from(defaults.page_size), problems).min(1000);
    let dc_result_window = positive("dc_result_window", file.dc_result_window, defaults.dc_result_window, problems);
    let extra_fields: Vec<String> = match env.var("JIRA_EXTRA_FIELDS") {
        Some(names) => names.split(',').map(|name| name.trim().to_owned()).filter(|name| !name.is_empty()).collect(),
        None => file.extra_fields.iter().map(|name| name.trim().to_owned()).collect(),
    };
    if extra_fields.len() > MAX_EXTRA_FIELDS {
        problems.push(format!(
            "jira.extra_fields: {} fields named; at most {MAX_EXTRA_FIELDS} are allowed",
            extra_fields.len()
        ));
    }
    for (i, name) in extra_fields.iter().enumerate() {
        if name.is_empty() {
            problems.push("jira.extra_fields: a field name is empty".into());
        } else if extra_fields[..i].iter().any(|other| other.to_lowercase() == name.to_lowercase()) {
            problems.push(format!("jira.extra_fields: `{name}` is named twice"));
        }
    }
    Some(JiraConfig {
        base_url,
        flavor,
        auth,
        max_concurrency: max_concurrency as usize,
        request_timeout: Duration::from_secs(timeout),
        max_retries: file.max_retries.unwrap_or(defaults.max_retries),
        page_size: page_size as u32,
        dc_result_window,
        overlap: file.overlap_minutes.map_or(defaults.overlap, |m| Duration::from_secs(60 * m)),
        ai_account_ids: file.ai_account_ids,
        ignored_app_account_ids: file.ignored_app_account_ids,
        extra_fields,
        ..defaults
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn no_configuration_means_the_demo_on_loopback() {
        let c = load(None, &env(&[])).unwrap();
        assert!(c.is_demo());
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.report_tz, chrono_tz::UTC);
    }

    #[test]
    fn the_environment_alone_configures_a_jira() {
        let c = load(
            None,
            &env(&[
                ("JIRA_BASE_URL", "https://acme.atlassian.net/"),
                ("JIRA_EMAIL", "bot@acme.test"),
                ("JIRA_API_TOKEN", "tok-123"),
                ("DORA_PROJECTS", "OPS, PAY"),
                ("DORA_REPORT_TZ", "Europe/Berlin"),
                ("DORA_LISTEN", "0.0.0.0:9000"),
                ("DORA_API_KEYS", "admin 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
            ]),
        )
        .unwrap();
        let j = c.jira.as_ref().unwrap();
        assert_eq!(j.base_url, "https://acme.atlassian.net");
        assert!(matches!(&j.auth, JiraAuth::Basic { email, .. } if email == "bot@acme.test"));
        assert_eq!(c.harvest.projects, ["OPS", "PAY"]);
        assert_eq!(c.report_tz, chrono_tz::Europe::Berlin);
        assert!(!format!("{c:?}").contains("tok-123"), "a secret shows in Debug output");
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_its_key() {
        let toml = "report_tz = \"Mars/Olympus\"\n[harvest]\nfull_refresh_hour = 25\n[ai]\nrollout_date = \"May 1\"\n";
        let e = load(
            Some(toml),
            &env(&[("DORA_LISTEN", "nowhere"), ("JIRA_BASE_URL", "ftp://x"), ("JIRA_FLAVOR", "server")]),
        )
        .unwrap_err();
        let text = e.to_string();
        for key in ["report_tz", "full_refresh_hour", "ai.rollout_date", "DORA_LISTEN", "JIRA_BASE_URL", "JIRA_FLAVOR"]
        {
            assert!(text.contains(key), "{key} missing from:\n{text}");
        }
        assert_eq!(e.problems.len(), 6);
    }

    #[test]
    fn extra_fields_are_names_listed_once() {
        let c =
            load(Some("[jira]\nbase_url = \"https://x.test\"\nextra_fields = [\"Team\", \" Severity \"]\n"), &env(&[]))
                .unwrap();
        assert_eq!(c.jira.unwrap().extra_fields, ["Team", "Severity"]);
        let e =
            load(Some("[jira]\nbase_url = \"https://x.test\"\nextra_fields = [\"Team\", \"\", \"team\"]\n"), &env(&[]))
                .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("a field name is empty") && text.contains("`team` is named twice"), "{text}");
        let many: Vec<String> = (0..=MAX_EXTRA_FIELDS).map(|i| format!("\"F{i}\"")).collect();
        let e = load(
            Some(&format!("[jira]\nbase_url = \"https://x.test\"\nextra_fields = [{}]\n", many.join(","))),
            &env(&[]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("at most 20"), "{e}");
        let c =
            load(None, &env(&[("JIRA_BASE_URL", "https://x.test"), ("JIRA_EXTRA_FIELDS", "Team, Severity")])).unwrap();
        assert_eq!(c.jira.unwrap().extra_fields, ["Team", "Severity"]);
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let e = load(Some("[jira]\nbase_ulr = \"https://x\"\n"), &env(&[])).unwrap_err();
        assert!(e.to_string().contains("base_ulr"), "{e}");
    }

    #[test]
    fn snapshot_timing_comes_from_the_file_or_the_environment() {
        let c = load(None, &env(&[])).unwrap();
        assert_eq!(
            c.snapshot,
            SnapshotSettings { interval: Some(Duration::from_secs(300)), debounce: Duration::from_secs(2) }
        );
        let c = load(Some("[snapshot]\ninterval_ms = 0\ndebounce_ms = 50\n"), &env(&[])).unwrap();
        assert_eq!(c.snapshot, SnapshotSettings { interval: None, debounce: Duration::from_millis(50) });
        let c = load(Some("[snapshot]\ninterval_ms = 0\n"), &env(&[("DORA_SNAPSHOT_INTERVAL_MS", "250")])).unwrap();
        assert_eq!(c.snapshot.interval, Some(Duration::from_millis(250)));
        let e = load(None, &env(&[("DORA_SNAPSHOT_DEBOUNCE_MS", "2s")])).unwrap_err();
        assert!(e.to_string().contains("DORA_SNAPSHOT_DEBOUNCE_MS"), "{e}");
    }

    #[test]
    fn the_data_center_result_window_can_be_lowered_with_the_site() {
        let jira = |toml: &str| load(Some(&format!("[jira]\nbase_url = \"https://x.test\"\n{toml}")), &env(&[]));
        assert_eq!(jira("").unwrap().jira.unwrap().dc_result_window, 10_000);
        assert_eq!(jira("dc_result_window = 5000\n").unwrap().jira.unwrap().dc_result_window, 5_000);
        assert!(
            jira("dc_result_window = 0\n")
                .unwrap_err()
                .to_string()
                .contains("jira.dc_result_window: must be at least 1")
        );
    }

    #[test]
    fn reconciliation_is_hourly_unless_configured() {
        assert_eq!(load(None, &env(&[])).unwrap().harvest.reconcile_interval, Duration::from_secs(3600));
        let c = load(Some("[harvest]\nreconcile_interval_minutes = 0\n"), &env(&[])).unwrap();
        assert_eq!(c.harvest.reconcile_interval, Duration::ZERO);
        let c = load(Some("[harvest]\nreconcile_interval_minutes = 240\n"), &env(&[])).unwrap();
        assert_eq!(c.harvest.reconcile_interval, Duration::from_secs(4 * 3600));
        let e = load(Some("[harvest]\nreconcile_interval_minutes = 20000\n"), &env(&[])).unwrap_err();
        assert!(e.to_string().contains("harvest.reconcile_interval_minutes: 20000 is more than a week"), "{e}");
    }

    #[test]
    fn definitions_updates_are_off_by_default_and_watching_on() {
        let c = load(None, &env(&[])).unwrap();
        assert!(!c.definitions.allow_updates);
        assert_eq!(c.definitions.watch_interval, Some(Duration::from_secs(2)));
        let c = load(Some("[definitions]\nallow_updates = true\nwatch_interval_ms = 0\n"), &env(&[])).unwrap();
        assert!(c.definitions.allow_updates);
        assert_eq!(c.definitions.watch_interval, None);
        let e = load(Some("[definitions]\nwatch_interval_ms = 5\n"), &env(&[])).unwrap_err();
        assert!(e.to_string().contains("definitions.watch_interval_ms"), "{e}");
    }

    #[test]
    fn the_database_url_comes_only_from_the_environment_and_never_shows() {
        assert_eq!(load(None, &env(&[])).unwrap().cluster, None);
        let url = "postgres://dora:pw-secret-77@db.internal:5432/dora";
        let c = load(
            None,
            &env(&[
                ("DORA_DATABASE_URL", url),
                ("DORA_CLUSTER_LEASE_MS", "3000"),
                ("DORA_CLUSTER_HEARTBEAT_MS", "1000"),
            ]),
        )
        .unwrap();
        let cluster = c.cluster.as_ref().unwrap();
        assert_eq!(cluster.database_url.expose(), url);
        assert_eq!(
            (cluster.lease, cluster.heartbeat, cluster.poll),
            (Duration::from_secs(3), Duration::from_secs(1), DEFAULT_POLL)
        );
        assert!(!format!("{c:?}").contains("pw-secret-77"), "the password shows in Debug output");
        for toml in [format!("database_url = \"{url}\"\n"), format!("[cluster]\ndatabase_url = \"{url}\"\n")] {
            let e = load(Some(&toml), &env(&[])).unwrap_err().to_string();
            assert!(e.contains("database_url") && e.contains("DORA_DATABASE_URL"), "{e}");
            assert!(!e.contains("pw-secret-77"), "the refused value is echoed: {e}");
        }
        let e = load(None, &env(&[("DORA_DATABASE_URL", "mysql://u:pw-secret-77@h/d")])).unwrap_err().to_string();
        assert!(e.contains("DORA_DATABASE_URL") && !e.contains("pw-secret-77"), "{e}");
        let e = load(Some("[cluster]\nlease_ms = 1000\nheartbeat_ms = 900\n"), &env(&[("DORA_DATABASE_URL", url)]))
            .unwrap_err();
        assert!(e.to_string().contains("cluster.heartbeat_ms"), "{e}");
    }

    #[test]
    fn per_project_rollout_dates_override_the_default() {
        let toml = "[ai]\nrollout_date = \"2026-01-01\"\n[projects.OPS]\nai_rollout_date = \"2026-02-01\"\n";
        let c = load(Some(toml), &env(&[])).unwrap();
        assert_eq!(c.rollout_date("OPS").unwrap().to_string(), "2026-02-01");
        assert_eq!(c.rollout_date("PAY").unwrap().to_string(), "2026-01-01");
    }

    #[test]
    fn markers_are_read_in_date_order_with_their_projects() {
        let toml = "[[markers]]\ndate = \"2026-03-02\"\nlabel = \"Trunk-based development\"\nprojects = [\"PAY\"]\n\
                    [[markers]]\ndate = \"2026-01-12\"\nlabel = \" New on-call rota \"\n";
        let c = load(Some(toml), &env(&[])).unwrap();
        let m: Vec<_> = c.markers.iter().map(|m| (m.date.to_string(), m.label.as_str(), m.projects.clone())).collect();
        assert_eq!(
            m,
            [
                ("2026-01-12".to_owned(), "New on-call rota", vec![]),
                ("2026-03-02".to_owned(), "Trunk-based development", vec!["PAY".to_owned()])
            ]
        );
        assert!(c.markers[0].concerns(&["OPS".into()]));
        assert!(c.markers[1].concerns(&["OPS".into(), "PAY".into()]));
        assert!(!c.markers[1].concerns(&["OPS".into()]));
    }

    #[test]
    fn every_bad_marker_is_a_configuration_error_without_its_label() {
        let long = "x".repeat(61);
        let mut toml = format!(
            "[[markers]]\ndate = \"March 2\"\nlabel = \"ok\"\n\
             [[markers]]\ndate = \"2026-03-02\"\nlabel = \"{long}\"\n\
             [[markers]]\ndate = \"2026-03-02\"\nlabel = \"  \"\n\
             [[markers]]\ndate = \"2026-03-02\"\nlabel = \"two\\nlines\"\n\
             [[markers]]\ndate = \"2026-03-02\"\nlabel = \"ok\"\nprojects = [\"no such\"]\n"
        );
        for _ in 0..46 {
            toml.push_str("[[markers]]\ndate = \"2026-03-02\"\nlabel = \"fine\"\n");
        }
        let e = load(Some(&toml), &env(&[])).unwrap_err();
        let expected = [
            "markers: 51 markers; at most 50",
            "markers[0].date: `March 2` is not a date",
            "markers[1].label: 61 characters; at most 60",
            "markers[2].label: empty",
            "markers[3].label: holds a control character",
            "markers[4].projects: `no such` is not a Jira project key",
        ];
        for words in expected {
            assert!(e.problems.iter().any(|p| p.starts_with(words)), "`{words}` missing from {e}");
        }
        assert_eq!(e.problems.len(), expected.len(), "{e}");
        assert!(!e.to_string().contains(&long), "{e}");
        // Exactly 50 markers of 60 characters are fine.
        let ok: String =
            (0..50).map(|_| format!("[[markers]]\ndate = \"2026-03-02\"\nlabel = \"{}\"\n", "é".repeat(60))).collect();
        assert_eq!(load(Some(&ok), &env(&[])).unwrap().markers.len(), 50);
    }
}
