//! The HTTP side of the Jira client: URLs, retries, pagination, changelog
//! fetching. Conversion to facts is delegated to `convert`.
//!
//! Must not depend on anything of the service but `domain::facts`, the
//! sibling modules of `jira`, and `telemetry` (request and retry counts,
//! labelled by path template, never by issue).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::DateTime;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::{OnceCell, Semaphore};
use tracing::{debug, warn};

use super::convert::ExtraField;
use super::convert::{self, AppRule};
use super::report::{Attempts, FetchCounters, JiraError, RequestName};
use super::settings::{CloudChangelogs, Flavor, JiraAuth, JiraConfig, SecretString};
use super::wire::{
    BulkChangelogPage, PagedValues, SearchPage, StrOrNum, WireChangelog, WireField, WireHistory, WireIssue,
    WireIssueId, WireMyself, WireProject, WireStatusEntry, WireVersion,
};
use crate::domain::facts::{
    Interner, IssueBatch, IssueDraft, IssueId, Millis, StatusChange, StatusFacts, VersionFacts,
};

/// The only fields a search asks for (metrics-spec §2), besides the
/// allow-listed custom fields.
pub const SEARCH_FIELDS: &str =
    "issuetype,labels,created,updated,resolutiondate,status,fixVersions,versions,project,components,priority";

/// Jira's limit on ids per bulk changelog request.
const BULK_IDS: usize = 1000;

/// `maxResults` of an id-only search. Cloud's `search/jql` documents "The
/// greatest number of items returned per page is achieved when requesting
/// `id` or `key` only. It returns max 5000 issues" (OpenAPI, `maxResults`);
/// Data Center grants at most `jira.search.views.default.max` (1 000 by
/// default) and says so in the answer's `maxResults`. Either way the page
/// size used is the one the answer shows, never this request.
const ID_PAGE_ASK: u32 = 5000;

/// What a search split into windows of creation time reads of an issue.
trait Created {
    fn created(&self) -> Option<&StrOrNum>;
}

impl Created for WireIssue {
    fn created(&self) -> Option<&StrOrNum> {
        self.fields.created.as_ref()
    }
}

impl Created for WireIssueId {
    fn created(&self) -> Option<&StrOrNum> {
        self.fields.as_ref().and_then(|f| f.created.as_ref())
    }
}

/// A client for one Jira site. Cheap to clone; clones share the
/// concurrency cap and caches.
#[derive(Clone)]
pub struct JiraClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    flavor: Flavor,
    auth: JiraAuth,
    limit: Semaphore,
    timeout: Duration,
    max_retries: u32,
    retry_base: Duration,
    retry_cap: Duration,
    page_size: u32,
    dc_result_window: u64,
    overlap: Duration,
    apps: AppRule,
    /// Whether Cloud searches expand changelogs (measurement only).
    cloud_changelogs: CloudChangelogs,
    /// The account's zone; `None` when the site does not say.
    time_zone: OnceCell<Option<chrono_tz::Tz>>,
    /// `jira.extra_fields`, by name as configured.
    extra_field_names: Vec<String>,
    /// Those fields resolved against the site's field list.
    extra_fields: OnceCell<Vec<ExtraField>>,
    /// `fields=` of an issue search.
    search_fields: OnceCell<String>,
    /// The site's names and statuses, held once for all its facts.
    names: Interner,
}

/// Whose credential a request carries.
#[derive(Clone, Copy)]
pub(super) enum Credential<'a> {
    /// The service's own (configured) credential.
    App,
    /// A viewer's `Authorization` value, forwarded as it came.
    Viewer(&'a SecretString),
}

/// Why one attempt failed, before deciding whether to retry.
enum Failure {
    Status { status: u16, retry_after: Option<Duration>, retryable: bool },
    Redirect(u16),
    Timeout,
    Connection(String),
    BodyCut(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Status { retryable, .. } => *retryable,
            Failure::Redirect(_) => false,
            Failure::Timeout | Failure::Connection(_) | Failure::BodyCut(_) => true,
        }
    }

    /// The HTTP status Jira answered with; 0 when it did not answer.
    fn http_status(&self) -> u16 {
        match self {
            Failure::Status { status, .. } | Failure::Redirect(status) => *status,
            Failure::Timeout | Failure::Connection(_) | Failure::BodyCut(_) => 0,
        }
    }

    /// Why a request is retried, for metrics.
    fn reason(&self) -> &'static str {
        match self {
            Failure::Status { status: 429, .. } => "429",
            Failure::Status { .. } | Failure::Redirect(_) => "5xx",
            Failure::Timeout => "timeout",
            Failure::Connection(_) | Failure::BodyCut(_) => "connection",
        }
    }
}

/// The innermost cause of an error: "Connection refused (os error 111)"
/// rather than a message carrying the URL.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl std::fmt::Debug for JiraClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraClient")
            .field("base", &self.inner.base.as_str())
            .field("flavor", &self.inner.flavor)
            .finish_non_exhaustive()
    }
}

/// Parses and checks a Jira base URL: http(s), a host, no credentials, no
/// query or fragment. The reason never repeats the URL (it could hold a
/// password).
pub fn base_url(text: &str) -> Result<Url, &'static str> {
    let base = Url::parse(text.trim()).map_err(|_| "is not a URL")?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err("must be http or https");
    }
    if base.host_str().is_none() {
        return Err("has no host");
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(
            "must not carry credentials (`user:password@`); use JIRA_EMAIL with JIRA_API_TOKEN, or JIRA_BEARER_TOKEN",
        );
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err("must not have a query or fragment");
    }
    Ok(base)
}

impl JiraClient {
    /// The site's address, without a trailing slash: where its pages are
    /// (`{base_url}/browse/KEY`).
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str().trim_end_matches('/')
    }

    /// Builds a client. Fails on an unusable base URL or limits.
    pub fn new(cfg: JiraConfig) -> Result<Self, JiraError> {
        let mut base = base_url(&cfg.base_url).map_err(|why| JiraError::Config(format!("base_url {why}")))?;
        if cfg.max_concurrency == 0 || cfg.page_size == 0 || cfg.dc_result_window == 0 {
            return Err(JiraError::Config("max_concurrency, page_size and dc_result_window must be at least 1".into()));
        }
        if cfg.request_timeout.is_zero() {
            return Err(JiraError::Config("request_timeout must be positive".into()));
        }
        base.path_segments_mut().map_err(|_| JiraError::Config("base_url cannot carry a path".into()))?.pop_if_empty();

        // reqwest is built without a default crypto provider: pick ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("jira-dora/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| JiraError::Config(format!("HTTP client: {}", root_cause(&e))))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                flavor: cfg.flavor,
                auth: cfg.auth,
                limit: Semaphore::new(cfg.max_concurrency),
                timeout: cfg.request_timeout,
                max_retries: cfg.max_retries,
                retry_base: cfg.retry_base,
                retry_cap: cfg.retry_cap,
                page_size: cfg.page_size,
                dc_result_window: cfg.dc_result_window,
                overlap: cfg.overlap,
                apps: AppRule {
                    ai_account_ids: cfg.ai_account_ids,
                    ignored_app_account_ids: cfg.ignored_app_account_ids,
                },
                cloud_changelogs: cfg.cloud_changelogs,
                time_zone: OnceCell::new(),
                extra_field_names: cfg.extra_fields,
                extra_fields: OnceCell::new(),
                search_fields: OnceCell::new(),
                names: Interner::default(),
            }),
        })
    }

    /// The names and statuses the facts of this site share. Call
    /// [`Interner::forget_unused`] on it after facts were dropped.
    pub fn names(&self) -> &Interner {
        &self.inner.names
    }

    /// The configured flavor.
    pub fn flavor(&self) -> Flavor {
        self.inner.flavor
    }

    fn api_version(&self) -> &'static str {
        match self.inner.flavor {
            Flavor::Cloud => "3",
            Flavor::DataCenter => "2",
        }
    }

    /// `{base}/rest/api/{v}/{segments...}`, segments percent-encoded, and
    /// checked to stay on the configured site.
    fn url(&self, method: &Method, segments: &[&str]) -> Result<Url, JiraError> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|_| JiraError::Config("base_url cannot carry a path".into()))?
            .extend(["rest", "api", self.api_version()])
            .extend(segments);
        self.check_on_site(method, &url)?;
        Ok(url)
    }

    /// The egress allow-list: same scheme, host and port as the base URL,
    /// under its path.
    fn check_on_site(&self, method: &Method, url: &Url) -> Result<(), JiraError> {
        let b = &self.inner.base;
        let same = url.scheme() == b.scheme()
            && url.host_str() == b.host_str()
            && url.port_or_known_default() == b.port_or_known_default()
            && url.path().starts_with(b.path().trim_end_matches('/'));
        if same {
            Ok(())
        } else {
            Err(JiraError::OffSite { req: RequestName { method: method.to_string(), path: url.path().to_string() } })
        }
    }

    /// One request with retries; the body parsed as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        counters: Option<&FetchCounters>,
    ) -> Result<T, JiraError> {
        self.call_as(method, segments, query, body, counters, Credential::App, self.inner.max_retries).await
    }

    /// [`Self::call`] with a chosen credential and retry budget.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn call_as<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        counters: Option<&FetchCounters>,
        credential: Credential<'_>,
        max_retries: u32,
    ) -> Result<T, JiraError> {
        let url = self.url(&method, segments)?;
        let req = RequestName { method: method.to_string(), path: url.path().to_string() };
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.inner.retry_base)
            .with_max_delay(self.inner.retry_cap)
            .with_jitter()
            .with_max_times(max_retries as usize)
            .build();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let result = {
                let _permit = self.inner.limit.acquire().await.map_err(|_| JiraError::Task("client closed".into()))?;
                self.attempt(&method, &url, query, body, credential).await
            };
            FetchCounters::requests_sent(counters, 1);
            crate::telemetry::jira_request(&req.path, result.as_ref().map_or_else(Failure::http_status, |_| 200));
            let failure = match result {
                Ok(bytes) => {
                    if let Some(c) = counters {
                        FetchCounters::add(&c.pages, 1);
                    }
                    return parse_json(&req, &bytes);
                }
                Err(f) => f,
            };
            if failure.retryable() && attempt <= max_retries {
                let retry_after = match &failure {
                    Failure::Status { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let delay = retry_after
                    .map(|d| d.min(self.inner.retry_cap))
                    .or_else(|| backoff.next())
                    .unwrap_or(self.inner.retry_base);
                if let Some(c) = counters {
                    FetchCounters::add(&c.retries, 1);
                }
                crate::telemetry::jira_retry(failure.reason());
                warn!(method = %req.method, path = %req.path, attempt, delay_ms = delay.as_millis() as u64,
                    "jira request failed, retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
            let attempts = Attempts(attempt);
            return Err(match failure {
                Failure::Status { status, .. } => JiraError::Status { req, status, attempts },
                Failure::Redirect(status) => JiraError::RedirectRefused { req, status },
                Failure::Timeout => JiraError::Timeout { req, timeout: self.inner.timeout, attempts },
                Failure::Connection(reason) => JiraError::Connection { req, reason, attempts },
                Failure::BodyCut(reason) => JiraError::BodyCut { req, reason, attempts },
            });
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        credential: Credential<'_>,
    ) -> Result<bytes::Bytes, Failure> {
        let mut rb =
            self.inner.http.request(method.clone(), url.clone()).header(reqwest::header::ACCEPT, "application/json");
        if !query.is_empty() {
            rb = rb.query(query);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        rb = match (credential, &self.inner.auth) {
            (Credential::Viewer(authorization), _) => {
                let mut value = reqwest::header::HeaderValue::from_str(authorization.expose())
                    .map_err(|_| Failure::Status { status: 401, retry_after: None, retryable: false })?;
                value.set_sensitive(true);
                rb.header(reqwest::header::AUTHORIZATION, value)
            }
            (Credential::App, JiraAuth::None) => rb,
            (Credential::App, JiraAuth::Basic { email, token }) => rb.basic_auth(email, Some(token.expose())),
            (Credential::App, JiraAuth::Bearer(token)) => rb.bearer_auth(token.expose()),
        };
        let resp = rb
            .send()
            .await
            .map_err(|e| if e.is_timeout() { Failure::Timeout } else { Failure::Connection(root_cause(&e)) })?;
        let status = resp.status();
        debug!(method = %method, path = url.path(), status = status.as_u16(), "jira response");
        if status.is_redirection() {
            return Err(Failure::Redirect(status.as_u16()));
        }
        if !status.is_success() {
            let retry_after = if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
                resp.headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
            } else {
                None
            };
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED);
            return Err(Failure::Status { status: status.as_u16(), retry_after, retryable });
        }
        resp.bytes().await.map_err(|e| if e.is_timeout() { Failure::Timeout } else { Failure::BodyCut(root_cause(&e)) })
    }

    // ---------------------------------------------------------- endpoints --

    /// Every status of the site with its category.
    pub async fn statuses(&self) -> Result<Vec<StatusFacts>, JiraError> {
        let list: Vec<WireStatusEntry> = self.call(Method::GET, &["status"], &[], None, None).await?;
        Ok(list.into_iter().map(convert::status_facts).collect())
    }

    /// The keys of every project the credential can browse.
    pub async fn projects(&self) -> Result<Vec<String>, JiraError> {
        match self.inner.flavor {
            Flavor::DataCenter => {
                let list: Vec<WireProject> = self.call(Method::GET, &["project"], &[], None, None).await?;
                Ok(list.into_iter().map(|p| p.key).collect())
            }
            Flavor::Cloud => self
                .paged_values::<WireProject>(&["project", "search"], None)
                .await
                .map(|v| v.into_iter().map(|p| p.key).collect()),
        }
    }

    /// The versions of a project: the unpaged list (one request however
    /// many versions; an incremental refresh asks for them every time),
    /// falling back to the paged endpoint where the list is missing.
    pub async fn versions(&self, project: &str) -> Result<Vec<VersionFacts>, JiraError> {
        let (wire, segment) = match self.call(Method::GET, &["project", project, "versions"], &[], None, None).await {
            Ok(v) => (v, "versions"),
            Err(e) if e.http_status() == Some(404) => {
                (self.paged_values::<WireVersion>(&["project", project, "version"], None).await?, "version")
            }
            Err(e) => return Err(e),
        };
        let path = self.url(&Method::GET, &["project", project, segment])?.path().to_string();
        wire.into_iter()
            .map(|v| {
                convert::version_facts(v).map_err(|source| JiraError::Invalid {
                    req: RequestName { method: "GET".into(), path: path.clone() },
                    source,
                })
            })
            .collect()
    }

    /// A `startAt`-paged list of `values`.
    async fn paged_values<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        counters: Option<&FetchCounters>,
    ) -> Result<Vec<T>, JiraError> {
        let mut out = Vec::new();
        let mut start: u64 = 0;
        loop {
            let q = [("startAt", start.to_string()), ("maxResults", self.inner.page_size.to_string())];
            let page: PagedValues<T> = self.call(Method::GET, segments, &q, None, counters).await?;
            let n = page.values.len() as u64;
            out.extend(page.values);
            start += n;
            let done = page.is_last.unwrap_or(false)
                || n == 0
                || page.total.is_some_and(|t| start >= t)
                || (page.is_last.is_none() && page.total.is_none());
            if done {
                return Ok(out);
            }
        }
    }

    /// The calling account's time zone (for JQL dates), fetched once;
    /// `None` when the account has no usable zone or the site will not say
    /// (a 4xx from `myself`).
    pub async fn time_zone(&self) -> Result<Option<chrono_tz::Tz>, JiraError> {
        self.inner
            .time_zone
            .get_or_try_init(|| async {
                let me: WireMyself = match self.call(Method::GET, &["myself"], &[], None, None).await {
                    Ok(me) => me,
                    Err(e) if e.http_status().is_some_and(|s| (400..500).contains(&s)) => {
                        warn!(status = e.http_status(), "jira does not tell the account's time zone");
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                };
                let tz = me.time_zone.as_deref().and_then(|s| s.parse::<chrono_tz::Tz>().ok());
                if tz.is_none() {
                    warn!("jira account has no usable time zone");
                }
                Ok(tz)
            })
            .await
            .copied()
    }

    /// The allow-listed custom fields (`jira.extra_fields`), resolved by
    /// name through the site's field list on first use. A name no field
    /// has, or a field of a type that can hold text, is a configuration
    /// error naming the field and its type.
    pub async fn extra_fields(&self) -> Result<&[ExtraField], JiraError> {
        self.inner
            .extra_fields
            .get_or_try_init(|| async {
                let names = &self.inner.extra_field_names;
                if names.is_empty() {
                    return Ok(Vec::new());
                }
                let site: Vec<WireField> = self.call(Method::GET, &["field"], &[], None, None).await?;
                convert::resolve_extra_fields(names, &site).map_err(JiraError::ExtraFields)
            })
            .await
            .map(Vec::as_slice)
    }

    /// `fields=` of an issue search: the facts of metrics-spec §2 and the
    /// allow-listed custom fields by id, nothing else.
    async fn search_fields(&self) -> Result<&str, JiraError> {
        let extra = self.extra_fields().await?;
        Ok(self
            .inner
            .search_fields
            .get_or_init(|| async {
                extra.iter().fold(SEARCH_FIELDS.to_owned(), |mut fields, f| {
                    fields.push(',');
                    fields.push_str(&f.id);
                    fields
                })
            })
            .await)
    }

    /// The JQL for a project, optionally bounded by an `updated` watermark,
    /// in the order of a Cloud search.
    pub async fn jql(&self, project: &str, since: Option<Millis>) -> Result<String, JiraError> {
        Ok(format!("{} ORDER BY updated ASC", self.jql_filter(project, since).await?))
    }

    /// The condition of [`Self::jql`], without an order.
    async fn jql_filter(&self, project: &str, since: Option<Millis>) -> Result<String, JiraError> {
        let key = project.replace('\\', "\\\\").replace('"', "\\\"");
        Ok(match since {
            None => format!("project = \"{key}\""),
            Some(since) => {
                let from = since.saturating_sub(self.inner.overlap.as_millis() as i64);
                format!("project = \"{key}\" AND updated >= \"{}\"", self.jql_minute(from).await?)
            }
        })
    }

    /// A JQL date literal at or before `at`: JQL dates are read in the
    /// account's zone, to the minute. When the zone is unknown, UTC reaching
    /// back a further 14 hours, the largest UTC offset.
    async fn jql_minute(&self, at: Millis) -> Result<String, JiraError> {
        let (tz, unknown_zone_margin) = match self.time_zone().await? {
            Some(tz) => (tz, 0),
            None => (chrono_tz::UTC, 14 * 3_600_000),
        };
        let at = DateTime::from_timestamp_millis(at.saturating_sub(unknown_zone_margin))
            .ok_or_else(|| JiraError::Config("since is out of range".into()))?
            .with_timezone(&tz);
        // Formatting without seconds rounds down to the minute.
        Ok(at.format("%Y-%m-%d %H:%M").to_string())
    }

    /// The issues of a project updated since `since` (all when `None`),
    /// each with its complete status changelog.
    ///
    /// Cloud searches ask for the metric fields only and the status
    /// histories come from `changelog/bulkfetch`; Data Center searches
    /// expand changelogs (it has no bulk endpoint), and an issue whose
    /// changelog came back cut is fetched again on its own.
    ///
    /// Each issue goes into an [`IssueBatch`] as it arrives, and the
    /// missing changelogs are completed [`BULK_IDS`] issues at a time: the
    /// wire form of a page or of a chunk of changelogs is all that is held
    /// besides the batch's few arrays.
    pub async fn search_issues(
        &self,
        project: &str,
        since: Option<Millis>,
        counters: &FetchCounters,
    ) -> Result<Vec<IssueDraft>, JiraError> {
        Ok(self.search_changed_issues(project, since, &HashMap::new(), counters).await?.into_drafts())
    }

    /// [`Self::search_issues`] without the issues already `known` (id →
    /// `updated`) with the same `updated`: any change to an issue moves its
    /// `updated`, so those are unchanged, and their changelogs are not
    /// fetched again (the watermark's overlap finds some on every
    /// incremental refresh). An issue updated while paging can show up
    /// twice: the batch keeps the last.
    pub async fn search_changed_issues(
        &self,
        project: &str,
        since: Option<Millis>,
        known: &HashMap<IssueId, Millis>,
        counters: &FetchCounters,
    ) -> Result<IssueBatch, JiraError> {
        let mut issues = IssueBatch::default();
        let mut incomplete: Vec<IssueId> = Vec::new();
        let (segments, cloud): (&[&str], bool) = match self.inner.flavor {
            Flavor::Cloud => (&["search", "jql"], true),
            Flavor::DataCenter => (&["search"], false),
        };
        let search = RequestName { method: "GET".into(), path: self.url(&Method::GET, segments)?.path().to_string() };
        let expand = !cloud || self.inner.cloud_changelogs == CloudChangelogs::ExpandedSearch;
        let fields = self.search_fields().await?;
        let extra = self.extra_fields().await?;
        let page_size = self.inner.page_size;
        self.search_pages(project, since, fields, expand, page_size, counters, |page: Vec<WireIssue>| {
            for mut wire in page {
                let changelog = wire.changelog.take();
                let (changes, complete) = match changelog {
                    Some(WireChangelog { total, histories }) => {
                        let complete = match total {
                            Some(t) => histories.len() as u64 >= t,
                            None => !cloud,
                        };
                        if complete { (self.changes(&search, histories)?, true) } else { (Vec::new(), false) }
                    }
                    None => (Vec::new(), false),
                };
                let facts = convert::issue_facts(wire, project, changes, extra, &self.inner.names)
                    .map_err(|source| JiraError::Invalid { req: search.clone(), source })?;
                if known.get(&facts.id) == Some(&facts.updated) {
                    continue;
                }
                if !complete {
                    incomplete.push(facts.id);
                }
                issues.push(facts);
            }
            Ok(())
        })
        .await?;
        incomplete.sort();
        incomplete.dedup();
        for chunk in incomplete.chunks(BULK_IDS) {
            let mut full = self.complete_changelogs(chunk, counters).await?;
            for id in chunk {
                if let Some(changes) = full.remove(id) {
                    issues.set_changes(*id, changes);
                }
            }
        }
        Ok(issues)
    }

    /// The ids of every issue now in a project (an id-only search, in the
    /// largest pages Jira gives), to reconcile deletions and moves between
    /// incremental harvests.
    pub async fn issue_ids(&self, project: &str, counters: &FetchCounters) -> Result<Vec<String>, JiraError> {
        // Cloud pages the most ids when asked for `id` alone; a Data Center
        // search split into windows needs each issue's creation time.
        let fields = match self.inner.flavor {
            Flavor::Cloud => "id",
            Flavor::DataCenter => "created",
        };
        let mut ids = Vec::new();
        self.search_pages(project, None, fields, false, ID_PAGE_ASK, counters, |page: Vec<WireIssueId>| {
            ids.extend(page.into_iter().map(|i| i.id.into_id()));
            Ok(())
        })
        .await?;
        // Windows overlap by a minute: an id can come twice.
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Runs a search of a project's issues (updated since `since`, all when
    /// `None`) page by page in the flavor's pagination, asking `ask` issues
    /// a page, and hands each page's issues to `on_page`.
    #[allow(clippy::too_many_arguments)]
    async fn search_pages<I: DeserializeOwned + Created>(
        &self,
        project: &str,
        since: Option<Millis>,
        fields: &str,
        expand_changelog: bool,
        ask: u32,
        counters: &FetchCounters,
        on_page: impl FnMut(Vec<I>) -> Result<(), JiraError>,
    ) -> Result<(), JiraError> {
        let filter = self.jql_filter(project, since).await?;
        let mut q = vec![("fields", fields.to_string())];
        if expand_changelog {
            q.push(("expand", "changelog".to_string()));
        }
        match self.inner.flavor {
            Flavor::Cloud => self.cloud_pages(&filter, q, ask, counters, on_page).await,
            Flavor::DataCenter => self.dc_pages(&filter, q, ask, counters, on_page).await,
        }
    }

    /// Cloud: `search/jql` followed by `nextPageToken` until `isLast`. The
    /// answer does not say its page size; the tokens carry the position, so
    /// none is assumed.
    async fn cloud_pages<I: DeserializeOwned>(
        &self,
        filter: &str,
        query: Vec<(&str, String)>,
        ask: u32,
        counters: &FetchCounters,
        mut on_page: impl FnMut(Vec<I>) -> Result<(), JiraError>,
    ) -> Result<(), JiraError> {
        let segments = ["search", "jql"];
        let jql = format!("{filter} ORDER BY updated ASC");
        let mut token: Option<String> = None;
        loop {
            let mut q = query.clone();
            q.push(("jql", jql.clone()));
            q.push(("maxResults", ask.to_string()));
            if let Some(t) = &token {
                q.push(("nextPageToken", t.clone()));
            }
            let page: SearchPage<I> = self.call(Method::GET, &segments, &q, None, Some(counters)).await?;
            let n = page.issues.len() as u64;
            on_page(page.issues)?;
            FetchCounters::add(&counters.issues, n);
            match page.next_page_token {
                Some(next) if page.is_last != Some(true) => {
                    if token.as_deref() == Some(next.as_str()) {
                        return Err(self.pagination_error(&segments)?);
                    }
                    token = Some(next);
                }
                _ => return Ok(()),
            }
        }
    }

    /// Data Center: `search` paged by `startAt`, within the search
    /// platform's result window (`startAt + maxResults` at most
    /// [`JiraConfig::dc_result_window`]; past it Jira answers 500). A larger
    /// search is split into windows of creation time: issues in creation
    /// order, and when a window is used up the next one starts at the
    /// creation minute of the newest issue seen (JQL dates have minute
    /// precision, so windows overlap by that minute; callers drop the
    /// duplicates).
    ///
    /// Why `created` rather than `updated`, keys or ids: `created` never
    /// changes, so an issue edited during the harvest keeps its place and
    /// one created during it lands in the last window, still to be read;
    /// ordering by `updated` (as Cloud does) moves every issue edited
    /// meanwhile to the end and shifts the pages behind it. A range on
    /// issue keys would need the boundary issue to exist (JQL rejects a
    /// key that does not, and the boundary issue may be deleted or moved
    /// meanwhile), and a moved issue changes its key. Any date literal is
    /// valid. The limit: more issues than a window created within one
    /// minute (a bulk import) cannot be split this way, and that is an
    /// error rather than a silent gap.
    ///
    /// The page size is the one the answer grants (its `maxResults`), and
    /// the search ends at its `total`: neither is assumed from the request.
    async fn dc_pages<I: DeserializeOwned + Created>(
        &self,
        filter: &str,
        query: Vec<(&str, String)>,
        ask: u32,
        counters: &FetchCounters,
        mut on_page: impl FnMut(Vec<I>) -> Result<(), JiraError>,
    ) -> Result<(), JiraError> {
        let segments = ["search"];
        let window = self.inner.dc_result_window;
        let mut ask = u64::from(ask);
        // The window's lower bound (a JQL date literal); `None`: the first.
        let mut from: Option<String> = None;
        let mut newest: Option<Millis> = None;
        let mut start: u64 = 0;
        loop {
            let jql = match &from {
                None => format!("{filter} ORDER BY created ASC, key ASC"),
                Some(from) => format!("{filter} AND created >= \"{from}\" ORDER BY created ASC, key ASC"),
            };
            let max = ask.min(window - start);
            let mut q = query.clone();
            q.push(("jql", jql));
            q.push(("startAt", start.to_string()));
            q.push(("maxResults", max.to_string()));
            let page: SearchPage<I> = self.call(Method::GET, &segments, &q, None, Some(counters)).await?;
            let n = page.issues.len() as u64;
            if let Some(granted) = page.max_results.filter(|&g| g > 0) {
                ask = ask.min(granted);
            }
            let page_newest = page.issues.iter().filter_map(|i| i.created().and_then(convert::parse_time)).max();
            newest = newest.max(page_newest);
            on_page(page.issues)?;
            FetchCounters::add(&counters.issues, n);
            start += n;
            let done = n == 0 || page.total.map_or(n < max.min(ask), |t| start >= t);
            if done {
                return Ok(());
            }
            if let Some(s) = page.start_at
                && s + n != start
            {
                // The server ignored startAt: stop rather than loop.
                return Err(self.pagination_error(&segments)?);
            }
            if start >= window {
                let next = match newest {
                    Some(t) => Some(self.jql_minute(t).await?),
                    None => None,
                };
                if next.is_none() || next == from {
                    let req = RequestName {
                        method: "GET".into(),
                        path: self.url(&Method::GET, &segments)?.path().to_string(),
                    };
                    return Err(JiraError::ResultWindow { req, window });
                }
                debug!(window, "search window used up: the next starts at the newest creation minute seen");
                from = next;
                newest = None;
                start = 0;
            }
        }
    }

    fn pagination_error(&self, segments: &[&str]) -> Result<JiraError, JiraError> {
        Ok(JiraError::Pagination {
            req: RequestName { method: "GET".into(), path: self.url(&Method::GET, segments)?.path().to_string() },
        })
    }

    fn changes(&self, req: &RequestName, histories: Vec<WireHistory>) -> Result<Vec<StatusChange>, JiraError> {
        convert::status_changes(histories, &self.inner.apps, &self.inner.names)
            .map_err(|source| JiraError::Invalid { req: req.clone(), source })
    }

    /// Complete status changelogs for the given issue ids: in bulk on
    /// Cloud, one issue at a time on Data Center.
    async fn complete_changelogs(
        &self,
        ids: &[IssueId],
        counters: &FetchCounters,
    ) -> Result<HashMap<IssueId, Vec<StatusChange>>, JiraError> {
        if self.inner.flavor == Flavor::Cloud {
            // No fallback to `issue/{id}/changelog`: it would carry every
            // field's changes. A site without bulkfetch is an error.
            return self.bulk_changelogs(ids, counters).await;
        }
        let counters_ptr: Arc<FetchCounters> = Arc::new(FetchCounters::default());
        let mut set = tokio::task::JoinSet::new();
        for id in ids {
            let client = self.clone();
            let id = *id;
            let c = counters_ptr.clone();
            set.spawn(async move {
                let changes = client.dc_issue_changelog(&id.to_string(), &c).await?;
                Ok::<_, JiraError>((id, changes))
            });
        }
        let mut out = HashMap::new();
        let mut first_err = None;
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(Ok((id, changes))) => {
                    out.insert(id, changes);
                }
                Ok(Err(e)) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                        set.abort_all();
                    }
                }
                Err(e) if e.is_cancelled() => {}
                Err(_) => {
                    if first_err.is_none() {
                        first_err = Some(JiraError::Task("a changelog task panicked".into()));
                        set.abort_all();
                    }
                }
            }
        }
        FetchCounters::add(&counters.pages, counters_ptr.pages.load(Ordering::Relaxed));
        FetchCounters::add(&counters.retries, counters_ptr.retries.load(Ordering::Relaxed));
        FetchCounters::requests_sent(Some(counters), counters_ptr.requests.load(Ordering::Relaxed));
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// `POST /rest/api/3/changelog/bulkfetch`, status field only: Jira
    /// leaves out every other field's changes and every history without a
    /// status change. Up to [`BULK_IDS`] issues per request, each set paged
    /// by its own token.
    async fn bulk_changelogs(
        &self,
        ids: &[IssueId],
        counters: &FetchCounters,
    ) -> Result<HashMap<IssueId, Vec<StatusChange>>, JiraError> {
        let req = RequestName {
            method: "POST".into(),
            path: self.url(&Method::POST, &["changelog", "bulkfetch"])?.path().to_string(),
        };
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(BULK_IDS) {
            let chunk_text: Vec<String> = chunk.iter().map(IssueId::to_string).collect();
            let mut histories: HashMap<String, Vec<WireHistory>> = HashMap::new();
            let mut token: Option<String> = None;
            loop {
                let mut body = serde_json::json!({
                    "issueIdsOrKeys": chunk_text,
                    "fieldIds": ["status"],
                    "maxResults": BULK_IDS,
                });
                if let Some(t) = &token {
                    body["nextPageToken"] = serde_json::Value::String(t.clone());
                }
                let page: BulkChangelogPage =
                    self.call(Method::POST, &["changelog", "bulkfetch"], &[], Some(&body), Some(counters)).await?;
                for log in page.issue_change_logs {
                    histories.entry(log.issue_id.into_id()).or_default().extend(log.change_histories);
                }
                match page.next_page_token {
                    Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                    Some(_) => return Err(JiraError::Pagination { req }),
                    None => break,
                }
            }
            for (id, text) in chunk.iter().zip(&chunk_text) {
                let hs = histories.remove(text).unwrap_or_default();
                out.insert(*id, self.changes(&req, hs)?);
            }
        }
        Ok(out)
    }

    /// Data Center: the complete status changelog of one issue, from the
    /// issue itself with its changelog expanded.
    async fn dc_issue_changelog(&self, id: &str, counters: &FetchCounters) -> Result<Vec<StatusChange>, JiraError> {
        #[derive(serde::Deserialize)]
        struct OneIssue {
            #[serde(default)]
            changelog: Option<WireChangelog>,
        }
        let segments = ["issue", id];
        let req = RequestName { method: "GET".into(), path: self.url(&Method::GET, &segments)?.path().to_string() };
        let q = [("fields", "status".to_string()), ("expand", "changelog".to_string())];
        let issue: OneIssue = self.call(Method::GET, &segments, &q, None, Some(counters)).await?;
        self.changes(&req, issue.changelog.map(|c| c.histories).unwrap_or_default())
    }

    // Permission checks (`my_permission`, `check_account`) live in
    // `permissions.rs`.
}

/// Parses a body, turning serde errors into messages that carry a position
/// and a category, never the offending text.
fn parse_json<T: DeserializeOwned>(req: &RequestName, bytes: &[u8]) -> Result<T, JiraError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let msg = e.to_string();
        if let Some(rest) = msg.strip_prefix("missing field `")
            && let Some(field) = rest.split('`').next()
        {
            return JiraError::MissingField { req: req.clone(), field: field.to_string(), line, column };
        }
        let problem = match e.classify() {
            serde_json::error::Category::Eof => "the body ends early",
            serde_json::error::Category::Syntax => "invalid syntax",
            serde_json::error::Category::Data => "a value has an unexpected type",
            serde_json::error::Category::Io => "read error",
        };
        JiraError::MalformedJson { req: req.clone(), line, column, problem }
    })
}
