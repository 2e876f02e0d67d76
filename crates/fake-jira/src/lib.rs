//! A Jira look-alike over real HTTP, for jira-dora's demo, tests and
//! benchmarks, with the generated demo site ([`demo`]).
//!
//! [`FakeJira::start`] serves a [`Site`] on `127.0.0.1:0` with the endpoints
//! and JSON shapes of Jira Cloud (`/rest/api/3`) or Data Center
//! (`/rest/api/2`) that the harvester uses, including their quirks: token
//! pagination without totals, search changelogs cut to the most recent
//! entries, 410 for the retired search, JQL dates in the site's time zone,
//! the products' page caps (Cloud: 5000 ids, 100 issues with fields; Data
//! Center: 1 000) and Data Center's search result window (paging past
//! 10 000 results answers HTTP 500).
//! Through the handle, tests inject faults (429 with `Retry-After`, 5xx,
//! delays, cut-off or malformed bodies, off-site redirects), read a log of
//! the requests and of the answers as sent (sizes, and bodies on request),
//! and change the site between harvests.
//!
//! A query's ordered hits and a bulk changelog request's entries are
//! computed once and served page by page (until the site changes), so a
//! harvest of a million-issue site costs the fake time in proportion to
//! the pages it serves, not to pages × issues.
//!
//! Issues carry realistic text and people (summaries, descriptions,
//! comments, assignees) so privacy tests can plant markers and prove the
//! client never asks for them.
//!
//! Must not depend on `jira-dora` (it must not share the client's mistakes,
//! and the service depends on this crate for its demo); only on the pure
//! `dora-domain`, for the aggregates of [`demo::large_aggregates`].

pub mod demo;
mod jql;
mod server;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use jql::{Jql, parse as parse_jql};

/// Which Jira product the fake imitates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SiteFlavor {
    #[default]
    Cloud,
    DataCenter,
}

/// A whole Jira site.
#[derive(Debug, Clone, Default)]
pub struct Site {
    pub projects: Vec<SiteProject>,
    pub statuses: Vec<SiteStatus>,
    /// IANA zone of the calling account (`myself.timeZone`); JQL dates and
    /// rendered timestamps use it.
    pub time_zone: String,
    /// The custom fields of `GET /field` (the system fields are always
    /// listed too).
    pub fields: Vec<SiteField>,
}

/// A custom field of the site's field list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteField {
    /// `customfield_10010`.
    pub id: String,
    pub name: String,
    /// The schema `type`: `option`, `array`, `number`, `date`, `string`, …
    pub kind: String,
    /// For arrays: the type of the items.
    pub items: Option<String>,
}

impl SiteField {
    pub fn new(id: &str, name: &str, kind: &str, items: Option<&str>) -> Self {
        Self { id: id.into(), name: name.into(), kind: kind.into(), items: items.map(Into::into) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteStatus {
    pub id: String,
    pub name: String,
    /// `new`, `indeterminate`, `done` or `undefined`.
    pub category_key: String,
}

#[derive(Debug, Clone, Default)]
pub struct SiteProject {
    pub key: String,
    pub id: String,
    pub name: String,
    pub versions: Vec<SiteVersion>,
    pub issues: Vec<SiteIssue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteVersion {
    pub id: String,
    pub name: String,
    pub released: bool,
    pub release_date: Option<NaiveDate>,
    pub archived: bool,
    pub description: String,
}

/// A person or an app account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteUser {
    pub account_id: String,
    /// `atlassian`, `app` or `customer`.
    pub account_type: String,
    pub display_name: String,
    pub email: String,
}

/// The author of a changelog entry.
pub type SiteAuthor = SiteUser;

#[derive(Debug, Clone, Default)]
pub struct SiteIssue {
    pub id: String,
    pub key: String,
    pub issue_type: String,
    pub is_subtask: bool,
    pub labels: Vec<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
    pub status_id: String,
    /// Version ids.
    pub fix_versions: Vec<String>,
    /// Version ids.
    pub affected_versions: Vec<String>,
    /// Component names.
    pub components: Vec<String>,
    /// Priority name.
    pub priority: Option<String>,
    /// Custom field values by field id, as Jira sends them.
    pub custom: Vec<(String, serde_json::Value)>,
    pub summary: String,
    pub description: String,
    pub comments: Vec<String>,
    pub assignee: Option<SiteUser>,
    pub reporter: Option<SiteUser>,
    pub creator: Option<SiteUser>,
    /// Oldest first.
    pub histories: Vec<SiteHistory>,
}

#[derive(Debug, Clone)]
pub struct SiteHistory {
    pub id: String,
    pub created: DateTime<Utc>,
    pub author: Option<SiteAuthor>,
    pub items: Vec<SiteItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteItem {
    pub field: String,
    /// Missing on some old entries.
    pub field_id: Option<String>,
    pub from: Option<String>,
    pub from_string: Option<String>,
    pub to: Option<String>,
    pub to_string: Option<String>,
}

impl SiteItem {
    /// A status change item.
    pub fn status(from: &SiteStatus, to: &SiteStatus) -> Self {
        Self {
            field: "status".into(),
            field_id: Some("status".into()),
            from: Some(from.id.clone()),
            from_string: Some(from.name.clone()),
            to: Some(to.id.clone()),
            to_string: Some(to.name.clone()),
        }
    }
}

/// A failure the fake produces instead of (or on top of) its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After` and `X-RateLimit-*` headers.
    RateLimited { retry_after_secs: u64 },
    /// This HTTP status with a Jira error body (500, 503, 404...).
    Status(u16),
    /// Answer normally after this delay.
    Delay(Duration),
    /// Send half of the real body, then drop the connection.
    Truncated,
    /// A 200 with a body that is not JSON.
    Malformed,
    /// A 302 to this location.
    Redirect(String),
    /// A 200 with this JSON body instead of the real answer.
    Body(String),
}

#[derive(Debug, Clone)]
struct FaultRule {
    path_prefix: String,
    remaining: usize,
    fault: Fault,
}

/// One request as the fake saw it (headers are not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// The raw (percent-encoded) query string.
    pub query: String,
    /// The query string decoded (`+` and `%xx`), for searching.
    pub query_decoded: String,
    pub body: String,
}

/// One answer as the fake sent it: status and body bytes (what the client
/// received), the body itself only while [`FakeJira::keep_response_bodies`]
/// is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedResponse {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Body bytes sent (half the body for a cut-off answer).
    pub bytes: usize,
    pub body: Option<String>,
}

/// Data Center's default search result window
/// (`jira.search.platform.max.result.window`).
pub const DC_RESULT_WINDOW: usize = 10_000;

/// Cloud's largest id-only search page (`search/jql`, OpenAPI: "It returns
/// max 5000 issues").
pub const CLOUD_ID_PAGE_CAP: usize = 5000;

/// The fake's mutable state.
#[derive(Debug)]
pub struct SiteState {
    pub site: Site,
    pub flavor: SiteFlavor,
    /// The fake's clock, used for `updated` on mutations.
    pub now: DateTime<Utc>,
    /// Serve `POST /rest/api/3/changelog/bulkfetch` (else 404).
    pub bulk_changelog: bool,
    /// How many recent histories a Cloud search returns per issue.
    pub search_changelog_cap: usize,
    /// `mypermissions` answers per credential: an `Authorization` value
    /// (`Bearer ...`, `Basic ...`) and the projects it may browse. A
    /// credential not in the table gets 401.
    pub viewer_permissions: std::collections::HashMap<String, Vec<String>>,
    /// `permissions/check` answers per account id: the projects it may
    /// browse (none when the account is not in the table).
    pub account_permissions: std::collections::HashMap<String, Vec<String>>,
    /// Keep the body of every answer in the response log.
    pub keep_response_bodies: bool,
    /// Data Center: how far a search can page (`startAt + maxResults`),
    /// the search platform's result window; past it the answer is Jira's
    /// HTTP 500. `None`: no window. Cloud pages by token and has none.
    pub result_window: Option<usize>,
    /// Cloud: the most issues an id-only search page holds (Jira: 5000).
    pub id_page_cap: usize,
    faults: Vec<FaultRule>,
    log: Vec<LoggedRequest>,
    responses: Vec<LoggedResponse>,
    next_id: u64,
    /// Moves with every change made through the handle: what `cache`
    /// computed at another version is never served.
    version: u64,
    /// Search orders and changelog entries computed once and served page by
    /// page (large sites page through 100 000 issues per project).
    cache: std::sync::Mutex<server::Cache>,
}

impl SiteState {
    fn new(site: Site, flavor: SiteFlavor) -> Self {
        let next_id = site
            .projects
            .iter()
            .flat_map(|p| p.issues.iter().map(|i| &i.id).chain(p.versions.iter().map(|v| &v.id)))
            .filter_map(|id| id.parse::<u64>().ok())
            .max()
            .unwrap_or(10_000)
            + 1;
        Self {
            site,
            flavor,
            now: Utc::now(),
            bulk_changelog: true,
            search_changelog_cap: 20,
            viewer_permissions: Default::default(),
            account_permissions: Default::default(),
            keep_response_bodies: false,
            result_window: Some(DC_RESULT_WINDOW),
            id_page_cap: CLOUD_ID_PAGE_CAP,
            faults: Vec::new(),
            log: Vec::new(),
            responses: Vec::new(),
            next_id,
            version: 0,
            cache: Default::default(),
        }
    }

    fn take_fault(&mut self, path: &str) -> Option<Fault> {
        let rule = self.faults.iter_mut().find(|r| r.remaining > 0 && path.starts_with(&r.path_prefix))?;
        rule.remaining -= 1;
        let f = rule.fault.clone();
        self.faults.retain(|r| r.remaining > 0);
        Some(f)
    }

    fn find_issue_mut(&mut self, key: &str) -> Option<(usize, usize)> {
        self.site
            .projects
            .iter()
            .enumerate()
            .find_map(|(p, proj)| proj.issues.iter().position(|i| i.key == key || i.id == key).map(|i| (p, i)))
    }
}

/// A running fake. Dropping it stops the server.
pub struct FakeJira {
    base_url: String,
    state: Arc<Mutex<SiteState>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeJira {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeJira").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl FakeJira {
    /// Serves `site` as Jira Cloud on a free loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound; use [`FakeJira::try_start`] to
    /// handle that.
    pub async fn start(site: Site) -> FakeJira {
        Self::try_start(site, SiteFlavor::Cloud).await.expect("bind a loopback port for the fake Jira")
    }

    /// Serves `site` as the given flavor on a free loopback port.
    pub async fn try_start(site: Site, flavor: SiteFlavor) -> std::io::Result<FakeJira> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(SiteState::new(site, flavor)));
        let app = server::router(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(FakeJira { base_url: format!("http://{addr}"), state, shutdown: Some(tx), task: Some(task) })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, SiteState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, for a change to the site: cached search orders and
    /// changelog entries are computed anew afterwards.
    fn lock_to_change(&self) -> MutexGuard<'_, SiteState> {
        let mut st = self.lock();
        st.version += 1;
        st
    }

    /// Runs `f` on the state (read or change anything).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut SiteState) -> R) -> R {
        f(&mut self.lock_to_change())
    }

    /// The next `times` requests whose path starts with `path_prefix`
    /// suffer `fault`.
    pub fn inject(&self, path_prefix: &str, times: usize, fault: Fault) {
        self.lock().faults.push(FaultRule { path_prefix: path_prefix.into(), remaining: times, fault });
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// Number of requests so far.
    pub fn request_count(&self) -> usize {
        self.lock().log.len()
    }

    /// Every answer sent so far, in the order they went out.
    pub fn responses(&self) -> Vec<LoggedResponse> {
        self.lock().responses.clone()
    }

    /// Clears the request and the response logs, and frees what the fake
    /// cached to answer them (search orders, changelog entries), so a
    /// process that measures its memory finds none of it left.
    pub fn clear_requests(&self) {
        let mut st = self.lock();
        st.log.clear();
        st.responses.clear();
        *st.cache.get_mut().unwrap_or_else(|e| e.into_inner()) = Default::default();
    }

    /// Keeps (or stops keeping) the body of every answer in the response
    /// log, for tests that read what crossed the network.
    pub fn keep_response_bodies(&self, keep: bool) {
        self.lock().keep_response_bodies = keep;
    }

    /// Switches the bulk changelog endpoint on or off (off: 404).
    pub fn set_bulk_changelog(&self, enabled: bool) {
        self.lock().bulk_changelog = enabled;
    }

    /// Data Center: the search result window (`None`: none).
    pub fn set_result_window(&self, window: Option<usize>) {
        self.lock().result_window = window;
    }

    /// Cloud: the most issues an id-only search page holds.
    pub fn set_id_page_cap(&self, cap: usize) {
        self.lock().id_page_cap = cap.max(1);
    }

    /// How many recent histories a Cloud search returns per issue.
    pub fn set_search_changelog_cap(&self, n: usize) {
        self.lock().search_changelog_cap = n;
    }

    /// The holder of `authorization` (an `Authorization` header value) may
    /// browse exactly `projects` (replacing what it had).
    pub fn grant_viewer(&self, authorization: &str, projects: &[&str]) {
        self.lock().viewer_permissions.insert(authorization.into(), projects.iter().map(|p| p.to_string()).collect());
    }

    /// Account `account_id` may browse exactly `projects`.
    pub fn grant_account(&self, account_id: &str, projects: &[&str]) {
        self.lock().account_permissions.insert(account_id.into(), projects.iter().map(|p| p.to_string()).collect());
    }

    /// Sets the fake's clock (used for `updated` by the mutations).
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.lock().now = now;
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    /// A fresh numeric id, unique on this site.
    pub fn next_id(&self) -> String {
        let mut st = self.lock();
        st.next_id += 1;
        st.next_id.to_string()
    }

    /// Changes an issue (by key or id) and sets its `updated` to the
    /// fake's clock. False when there is no such issue.
    pub fn edit_issue(&self, key: &str, f: impl FnOnce(&mut SiteIssue)) -> bool {
        let mut st = self.lock_to_change();
        let now = st.now;
        let Some((p, i)) = st.find_issue_mut(key) else { return false };
        let issue = &mut st.site.projects[p].issues[i];
        f(issue);
        issue.updated = now;
        true
    }

    /// Moves an issue to `to_status_id` with a changelog entry at the
    /// fake's clock; sets or clears `resolved` by the new category.
    pub fn transition(&self, key: &str, to_status_id: &str, author: Option<SiteAuthor>) -> bool {
        let mut st = self.lock_to_change();
        let now = st.now;
        let statuses = st.site.statuses.clone();
        st.next_id += 1;
        let hid = st.next_id.to_string();
        let Some((p, i)) = st.find_issue_mut(key) else { return false };
        let Some(to) = statuses.iter().find(|s| s.id == to_status_id) else { return false };
        let issue = &mut st.site.projects[p].issues[i];
        let from = statuses.iter().find(|s| s.id == issue.status_id).cloned().unwrap_or(SiteStatus {
            id: issue.status_id.clone(),
            name: "Unknown".into(),
            category_key: "undefined".into(),
        });
        issue.histories.push(SiteHistory { id: hid, created: now, author, items: vec![SiteItem::status(&from, to)] });
        issue.status_id = to.id.clone();
        issue.resolved = if to.category_key == "done" { Some(now) } else { None };
        issue.updated = now;
        true
    }

    /// Adds an issue to a project (its `updated` is kept as given).
    pub fn add_issue(&self, project: &str, issue: SiteIssue) -> bool {
        let mut st = self.lock_to_change();
        match st.site.projects.iter_mut().find(|p| p.key == project) {
            Some(p) => {
                p.issues.push(issue);
                true
            }
            None => false,
        }
    }

    /// Deletes an issue (by key or id).
    pub fn delete_issue(&self, key: &str) -> bool {
        let mut st = self.lock_to_change();
        let Some((p, i)) = st.find_issue_mut(key) else { return false };
        st.site.projects[p].issues.remove(i);
        true
    }

    /// Moves an issue to another project, as Jira does: same id, a new key,
    /// `updated` set to the fake's clock. Returns the new key.
    pub fn move_issue(&self, key: &str, to_project: &str) -> Option<String> {
        let mut st = self.lock_to_change();
        let now = st.now;
        let to = st.site.projects.iter().position(|p| p.key == to_project)?;
        let (p, i) = st.find_issue_mut(key)?;
        let mut issue = st.site.projects[p].issues.remove(i);
        let n = st.site.projects[to]
            .issues
            .iter()
            .filter_map(|i| i.key.rsplit('-').next()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        issue.key = format!("{to_project}-{n}");
        issue.updated = now;
        let new_key = issue.key.clone();
        st.site.projects[to].issues.push(issue);
        Some(new_key)
    }

    /// Adds or replaces (by id) a version of a project.
    pub fn set_version(&self, project: &str, version: SiteVersion) -> bool {
        let mut st = self.lock_to_change();
        let Some(p) = st.site.projects.iter_mut().find(|p| p.key == project) else { return false };
        match p.versions.iter_mut().find(|v| v.id == version.id) {
            Some(v) => *v = version,
            None => p.versions.push(version),
        }
        true
    }
}

impl Drop for FakeJira {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
