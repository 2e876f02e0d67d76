//! The only module that speaks HTTP to Jira.
//!
//! [`JiraClient`] reads statuses, versions, projects and issues with their
//! complete status changelogs, through Jira Cloud (`/rest/api/3`) or Data
//! Center (`/rest/api/2`), and turns the wire JSON into minimised
//! [`crate::domain::facts`] at the door: it asks Jira only for the fields the
//! metrics need, keeps only status items of changelogs, and reduces a
//! change's author to one bool. Nothing here persists anything.
//!
//! Every request goes to the configured site only (no redirects), under one
//! concurrency cap per client, with a per-request timeout and retries that
//! honour `Retry-After`. Errors name the request (method and path) and the
//! problem, never a response body or a credential.
//!
//! Must not depend on `harvest`, `store`, `api`, `definitions` or
//! `fake_jira`; only on `domain::facts`.

mod client;
pub mod convert;
mod permissions;
pub mod wire;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;

pub use client::JiraClient;
pub use convert::ConvertError;
pub use permissions::BROWSE_PROJECTS;

/// Which Jira product the site runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flavor {
    /// Jira Cloud: `/rest/api/3`, token-paged `search/jql`.
    #[default]
    Cloud,
    /// Jira Data Center / Server: `/rest/api/2`, `startAt`-paged `search`.
    DataCenter,
}

/// A credential that never shows itself in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the service authenticates to Jira.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum JiraAuth {
    /// Anonymous (public sites, the fake).
    #[default]
    None,
    /// Cloud: e-mail and API token.
    Basic { email: String, token: SecretString },
    /// Data Center personal access token, or an OAuth bearer token.
    Bearer(SecretString),
}

/// Everything the client needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JiraConfig {
    /// `https://example.atlassian.net` (may carry a path prefix).
    pub base_url: String,
    pub flavor: Flavor,
    pub auth: JiraAuth,
    /// Requests in flight at once, over the whole client.
    pub max_concurrency: usize,
    pub request_timeout: Duration,
    /// Retries after the first attempt (429, 5xx, timeouts, connection errors).
    pub max_retries: u32,
    /// First backoff delay; doubles per retry, with jitter.
    pub retry_base: Duration,
    /// Longest backoff delay, and the cap on a server's `Retry-After`.
    pub retry_cap: Duration,
    /// `maxResults` asked for on paged endpoints.
    pub page_size: u32,
    /// Subtracted from a `since` watermark (eventual consistency, minute
    /// precision of JQL).
    pub overlap: Duration,
    /// Accounts whose changes count as made by an app/AI agent.
    pub ai_account_ids: Vec<String>,
    /// App accounts whose changes do not count as made by an app.
    pub ignored_app_account_ids: Vec<String>,
}

impl JiraConfig {
    /// Defaults for a site.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self { base_url: base_url.into(), ..Self::default() }
    }
}

impl Default for JiraConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            flavor: Flavor::Cloud,
            auth: JiraAuth::None,
            max_concurrency: 4,
            request_timeout: Duration::from_secs(30),
            max_retries: 5,
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(60),
            page_size: 100,
            overlap: Duration::from_secs(5 * 60),
            ai_account_ids: Vec::new(),
            ignored_app_account_ids: Vec::new(),
        }
    }
}

/// Progress of a fetch, for job reporting. The client only adds.
#[derive(Debug, Default)]
pub struct FetchCounters {
    /// Successful responses read.
    pub pages: AtomicU64,
    /// Attempts repeated after a retryable failure.
    pub retries: AtomicU64,
    /// Issues converted.
    pub issues: AtomicU64,
}

impl FetchCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The request an error is about: method and path, never the query or
/// headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestName {
    pub method: String,
    pub path: String,
}

impl fmt::Display for RequestName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// " (after N attempts)" when there was more than one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts(pub u32);

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 1 { write!(f, " (after {} attempts)", self.0) } else { Ok(()) }
    }
}

/// Why talking to Jira failed. Messages name the request and the problem;
/// they never contain a response body or a credential.
#[derive(Debug, Error)]
pub enum JiraError {
    #[error("invalid Jira client configuration: {0}")]
    Config(String),
    #[error("{req}: refused, the URL is outside the configured Jira site")]
    OffSite { req: RequestName },
    #[error("{req}: redirect refused (HTTP {status}); the client talks to the configured site only")]
    RedirectRefused { req: RequestName, status: u16 },
    #[error("{req}: HTTP {status}{attempts}")]
    Status { req: RequestName, status: u16, attempts: Attempts },
    #[error("{req}: no complete answer within {timeout:?}{attempts}")]
    Timeout { req: RequestName, timeout: Duration, attempts: Attempts },
    #[error("{req}: connection failed: {reason}{attempts}")]
    Connection { req: RequestName, reason: String, attempts: Attempts },
    #[error("{req}: response body cut off: {reason}{attempts}")]
    BodyCut { req: RequestName, reason: String, attempts: Attempts },
    #[error("{req}: malformed JSON at line {line}, column {column} ({problem})")]
    MalformedJson { req: RequestName, line: usize, column: usize, problem: &'static str },
    #[error("{req}: required field `{field}` missing (JSON line {line}, column {column})")]
    MissingField { req: RequestName, field: String, line: usize, column: usize },
    #[error("{req}: {source}")]
    Invalid {
        req: RequestName,
        #[source]
        source: ConvertError,
    },
    #[error("{req}: pagination did not advance")]
    Pagination { req: RequestName },
    #[error("a changelog fetch task failed: {0}")]
    Task(String),
}

impl JiraError {
    /// The HTTP status, when Jira answered with an error status.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            JiraError::Status { status, .. } | JiraError::RedirectRefused { status, .. } => Some(*status),
            _ => None,
        }
    }
}
