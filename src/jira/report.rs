//! What a fetch reports: its progress, for job reporting, and why it
//! failed. Errors name the request (method and path) and the problem,
//! never a response body or a credential.
//!
//! Must not depend on anything else of the service.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;

use super::convert::ConvertError;

/// Progress of a fetch, for job reporting. The client only adds.
#[derive(Debug, Default)]
pub struct FetchCounters {
    /// Successful responses read.
    pub pages: AtomicU64,
    /// Attempts repeated after a retryable failure.
    pub retries: AtomicU64,
    /// Issues converted.
    pub issues: AtomicU64,
    /// Requests sent to Jira, every attempt counted (failed ones and
    /// retries too): what a refresh cost the site. Counted only inside
    /// [`FetchCounters::counting`], or by the calls given these counters.
    pub requests: AtomicU64,
}

tokio::task_local! {
    /// The counters every request sent on this task is counted into.
    static COUNTING: Arc<FetchCounters>;
}

impl FetchCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Runs `work`, counting into `counters` every request the client
    /// sends while it runs on this task, whichever call sends it (the
    /// statuses, the versions, the account's time zone on first use...).
    pub async fn counting<F: Future>(counters: Arc<FetchCounters>, work: F) -> F::Output {
        COUNTING.scope(counters, work).await
    }

    /// Counts `n` requests sent: into the task's counters when inside
    /// [`FetchCounters::counting`], else into `given` (a task the client
    /// spawned, which passes its counters along).
    pub(crate) fn requests_sent(given: Option<&FetchCounters>, n: u64) {
        if COUNTING.try_with(|c| Self::add(&c.requests, n)).is_err()
            && let Some(c) = given
        {
            Self::add(&c.requests, n);
        }
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
    #[error(
        "{req}: more issues than Data Center's search result window ({window}) were created within one minute; \
         the search cannot be split into windows of creation time (raise jira.search.platform.max.result.window)"
    )]
    ResultWindow { req: RequestName, window: u64 },
    #[error("a changelog fetch task failed: {0}")]
    Task(String),
    #[error("configuration: {}", .0.join("; "))]
    ExtraFields(Vec<String>),
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
