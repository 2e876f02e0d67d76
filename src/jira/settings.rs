//! What the client is configured with: the site, its flavor and the
//! credential, which never shows itself in `Debug` or `Display`.
//!
//! Must not depend on anything else of the service.

use std::fmt;
use std::time::Duration;

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

/// Where a Cloud harvest takes issues' status histories from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CloudChangelogs {
    /// Searches expand no changelog; every issue's status changes come from
    /// `POST changelog/bulkfetch` with `fieldIds: ["status"]`, so only status
    /// changes and their authors cross the network.
    #[default]
    StatusOnly,
    /// Searches expand whole changelogs (every field's changes, text
    /// included, dropped while parsing), completed in bulk where Jira cut
    /// them. Kept to measure what [`CloudChangelogs::StatusOnly`] saves; not
    /// reachable from the service's configuration.
    ExpandedSearch,
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

/// Data Center's default result window: paging past it answers HTTP 500
/// "Search limit exceeded ... exceeded the search platform limit of
/// 10,000" (Atlassian KB "Handling JQL REST API searching exceeding
/// max_result_window in Jira", Data Center).
pub const DC_RESULT_WINDOW: u64 = 10_000;

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
    /// `maxResults` asked for on paged endpoints (id-only searches ask for
    /// the most Jira returns instead).
    pub page_size: u32,
    /// Data Center: how many results of one search can be paged through
    /// (`startAt + maxResults`), the search platform's result window
    /// (`jira.search.platform.max.result.window`, 10 000 by default).
    /// Larger searches are split into windows of creation time.
    pub dc_result_window: u64,
    /// Subtracted from a `since` watermark (eventual consistency, minute
    /// precision of JQL).
    pub overlap: Duration,
    /// Accounts whose changes count as made by an app/AI agent.
    pub ai_account_ids: Vec<String>,
    /// App accounts whose changes do not count as made by an app.
    pub ignored_app_account_ids: Vec<String>,
    /// Cloud only; Data Center always expands changelogs in its searches.
    pub cloud_changelogs: CloudChangelogs,
    /// Custom fields to read, by name (`jira.extra_fields`): resolved to
    /// ids through the site's field list, and only if their type is an
    /// option, an array of options, a number or a date.
    pub extra_fields: Vec<String>,
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
            dc_result_window: DC_RESULT_WINDOW,
            overlap: Duration::from_secs(5 * 60),
            ai_account_ids: Vec::new(),
            ignored_app_account_ids: Vec::new(),
            cloud_changelogs: CloudChangelogs::StatusOnly,
            extra_fields: Vec::new(),
        }
    }
}
