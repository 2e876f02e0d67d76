//! The fake's HTTP side: one handler that logs, applies faults, routes by
//! path and renders Jira-shaped JSON from the site state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::{
    Fault, LoggedRequest, LoggedResponse, SiteFlavor, SiteHistory, SiteIssue, SiteItem, SiteProject, SiteState,
    SiteUser, jql,
};

type Shared = Arc<Mutex<SiteState>>;

/// One history of one issue: (project, issue, history) positions.
type HistoryAt = (u32, u32, u32);

/// A bulk changelog request: (issue ids or keys, field ids).
type ChangelogQuery = (Vec<String>, Vec<String>);

/// What the fake computes once and serves page by page: each query's hits
/// in order, each bulk changelog request's entries, and the issues by
/// numeric id. Valid for one version of the site only.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    version: u64,
    /// By JQL text: positions in the project's issue list.
    searches: Vec<(String, Arc<[u32]>)>,
    /// By (issue ids or keys, field ids): (project, issue, history).
    changelogs: Vec<(ChangelogQuery, Arc<[HistoryAt]>)>,
    /// (numeric id, project, position) of every issue, by id.
    by_id: Option<Arc<[(u64, u32, u32)]>>,
}

/// Queries (and bulk requests) kept per kind: more than a harvest pages
/// through at once.
const CACHED_PER_KIND: usize = 32;

impl Cache {
    fn at(&mut self, version: u64) -> &mut Self {
        if self.version != version {
            *self = Cache { version, ..Default::default() };
        }
        self
    }
}

impl SiteState {
    /// The value cached under `key` in the list `list` picks, computed by
    /// `make` (outside the cache's lock) when absent.
    fn cached<K: PartialEq + Clone, T>(
        &self,
        list: impl Fn(&mut Cache) -> &mut Vec<(K, Arc<[T]>)>,
        key: &K,
        make: impl FnOnce() -> Vec<T>,
    ) -> Arc<[T]> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let entries = list(cache.at(self.version));
        if let Some((_, v)) = entries.iter().find(|(k, _)| k == key) {
            return Arc::clone(v);
        }
        drop(cache);
        let value: Arc<[T]> = make().into();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let entries = list(cache.at(self.version));
        if entries.len() >= CACHED_PER_KIND {
            entries.remove(0);
        }
        entries.push((key.clone(), Arc::clone(&value)));
        value
    }

    /// (project, position) of the issues whose id or key is one of
    /// `names`, in site order: numeric ids through the id index, anything
    /// else by a pass over the site.
    fn issues_named(&self, names: &[String]) -> Vec<(u32, u32)> {
        let index = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let cache = cache.at(self.version);
            Arc::clone(cache.by_id.get_or_insert_with(|| {
                let mut all: Vec<(u64, u32, u32)> = self
                    .site
                    .projects
                    .iter()
                    .enumerate()
                    .flat_map(|(p, proj)| {
                        proj.issues.iter().enumerate().map(move |(i, issue)| (num(&issue.id), p as u32, i as u32))
                    })
                    .collect();
                all.sort_unstable();
                all.into()
            }))
        };
        let issue = |&(_, p, i): &(u64, u32, u32)| &self.site.projects[p as usize].issues[i as usize];
        let mut found = Vec::new();
        let mut rest = std::collections::HashSet::new();
        for name in names {
            let before = found.len();
            if let Ok(n) = name.parse::<u64>() {
                let from = index.partition_point(|e| e.0 < n);
                let to = index.partition_point(|e| e.0 <= n);
                found.extend(index[from..to].iter().filter(|e| issue(e).id == *name).map(|&(_, p, i)| (p, i)));
            }
            if found.len() == before {
                rest.insert(name.as_str());
            }
        }
        if !rest.is_empty() {
            for (p, proj) in self.site.projects.iter().enumerate() {
                for (i, issue) in proj.issues.iter().enumerate() {
                    if rest.contains(issue.id.as_str()) || rest.contains(issue.key.as_str()) {
                        found.push((p as u32, i as u32));
                    }
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

pub(super) fn router(state: Shared) -> Router {
    Router::new().fallback(handle).with_state(state)
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, SiteState> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn decode(q: &str) -> String {
    let bytes = q.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(State(state): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let raw_query = uri.query().unwrap_or("").to_string();
    let fault = {
        let mut st = lock(&state);
        st.log.push(LoggedRequest {
            method: method.to_string(),
            path: path.clone(),
            query_decoded: decode(&raw_query),
            query: raw_query,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        st.take_fault(&path)
    };
    let mut extra = HeaderMap::new();
    let (status, bytes) = match &fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            let reset = (Utc::now() + chrono::Duration::seconds(*retry_after_secs as i64)).to_rfc3339();
            extra.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            extra.insert("x-ratelimit-limit", HeaderValue::from_static("100"));
            extra.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            if let Ok(v) = HeaderValue::from_str(&reset) {
                extra.insert("x-ratelimit-reset", v);
            }
            extra.insert("ratelimit-reason", HeaderValue::from_static("jira-burst-based"));
            (StatusCode::TOO_MANY_REQUESTS, error_body("Rate limit exceeded."))
        }
        Some(Fault::Status(code)) => {
            let code = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (code, error_body("Internal server error (injected)."))
        }
        Some(Fault::Redirect(to)) => {
            if let Ok(v) = HeaderValue::from_str(to) {
                extra.insert(header::LOCATION, v);
            }
            (StatusCode::FOUND, Vec::new())
        }
        Some(Fault::Body(text)) => (StatusCode::OK, text.clone().into_bytes()),
        Some(Fault::Malformed) => (StatusCode::OK, b"{\"isLast\": true, \"issues\": [{\"id\": \"1\", ]".to_vec()),
        Some(Fault::Delay(_) | Fault::Truncated) | None => {
            if let Some(Fault::Delay(d)) = &fault {
                tokio::time::sleep(*d).await;
            }
            let (status, value) = {
                let st = lock(&state);
                let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                route(&st, &method, &uri, &path, &body, authorization)
            };
            (status, serde_json::to_vec(&value).unwrap_or_default())
        }
    };
    if fault == Some(Fault::Truncated) {
        // Headers and half the body go out; then the connection breaks.
        let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
        record_response(&state, &method, &path, status, &half);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
        tokio::spawn(async move {
            let _ = tx.send(Ok(half)).await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let _ = tx.send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected cut"))).await;
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let mut r = Response::new(Body::from_stream(stream));
        *r.status_mut() = status;
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return r;
    }
    record_response(&state, &method, &path, status, &bytes);
    let mut r = if status == StatusCode::FOUND { status.into_response() } else { json_bytes(status, bytes) };
    r.headers_mut().extend(extra);
    r
}

/// Logs an answer as it goes out: what the fake sends is what the client
/// receives.
fn record_response(state: &Shared, method: &Method, path: &str, status: StatusCode, body: &[u8]) {
    let mut st = lock(state);
    let kept = st.keep_response_bodies.then(|| String::from_utf8_lossy(body).into_owned());
    st.responses.push(LoggedResponse {
        method: method.to_string(),
        path: path.to_string(),
        status: status.as_u16(),
        bytes: body.len(),
        body: kept,
    });
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    r
}

fn error_body(msg: &str) -> Vec<u8> {
    serde_json::to_vec(&jira_error(msg)).unwrap_or_default()
}

fn jira_error(msg: &str) -> Value {
    json!({"errorMessages": [msg], "errors": {}})
}

type Answer = (StatusCode, Value);

fn bad(msg: &str) -> Answer {
    (StatusCode::BAD_REQUEST, jira_error(msg))
}

fn not_found(msg: &str) -> Answer {
    (StatusCode::NOT_FOUND, jira_error(msg))
}

/// Routes a request; the state is read-only here.
fn route(st: &SiteState, method: &Method, uri: &Uri, path: &str, body: &[u8], authorization: Option<&str>) -> Answer {
    let q: HashMap<String, String> =
        Query::<HashMap<String, String>>::try_from_uri(uri).map(|q| q.0).unwrap_or_default();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let cloud = st.flavor == SiteFlavor::Cloud;
    let api = match (segs.first(), segs.get(1), segs.get(2)) {
        (Some(&"rest"), Some(&"api"), Some(v)) => *v,
        _ => return not_found("Not found."),
    };
    let rest = &segs[3..];
    let version_ok = (cloud && api == "3") || (!cloud && api == "2");
    if cloud && (api == "2" || api == "3") && rest == ["search"] {
        return (
            StatusCode::GONE,
            jira_error("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."),
        );
    }
    if !version_ok {
        return not_found("Not found.");
    }
    let get = method == Method::GET;
    let post = method == Method::POST;
    match rest {
        ["search", "jql"] if cloud && (get || post) => search(st, &q, body, post, true),
        ["search"] if !cloud && (get || post) => search(st, &q, body, post, false),
        ["changelog", "bulkfetch"] if cloud && post => {
            if st.bulk_changelog {
                bulkfetch(st, body)
            } else {
                not_found("Not found.")
            }
        }
        ["issue", id, "changelog"] if cloud && get => issue_changelog(st, id, &q),
        ["issue", id] if get => one_issue(st, id, &q, cloud),
        ["project", key, "version"] if get => versions_paged(st, key, &q),
        ["project", key, "versions"] if get => match project(st, key) {
            Some(p) => (StatusCode::OK, Value::Array(p.versions.iter().map(|v| version_json(p, v)).collect())),
            None => no_project(key),
        },
        ["status"] if get => (StatusCode::OK, Value::Array(st.site.statuses.iter().map(status_json).collect())),
        ["field"] if get => (StatusCode::OK, fields_json(&st.site.fields)),
        ["project", "search"] if cloud && get => {
            let all: Vec<Value> = st.site.projects.iter().map(project_json).collect();
            paged(all, &q, 50, "values")
        }
        ["project"] if !cloud && get => {
            (StatusCode::OK, Value::Array(st.site.projects.iter().map(project_json).collect()))
        }
        ["myself"] if get => (StatusCode::OK, myself(st, cloud)),
        ["mypermissions"] if get => my_permissions(st, &q, authorization),
        ["permissions", "check"] if cloud && post => permissions_check(st, body),
        ["project", key] if get => match project(st, key) {
            Some(p) => (StatusCode::OK, project_json(p)),
            None => no_project(key),
        },
        _ => not_found("Not found."),
    }
}

fn project<'a>(st: &'a SiteState, key: &str) -> Option<&'a SiteProject> {
    st.site.projects.iter().find(|p| p.key == key || p.id == key)
}

fn no_project(key: &str) -> Answer {
    not_found(&format!("No project could be found with key '{key}'."))
}

fn find_issue<'a>(st: &'a SiteState, id_or_key: &str) -> Option<(&'a SiteProject, &'a SiteIssue)> {
    st.site
        .projects
        .iter()
        .find_map(|p| p.issues.iter().find(|i| i.id == id_or_key || i.key == id_or_key).map(|i| (p, i)))
}

fn tz(st: &SiteState) -> Tz {
    st.site.time_zone.parse().unwrap_or(chrono_tz::UTC)
}

fn time(st: &SiteState, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz(st)).format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

fn page_bounds(q: &HashMap<String, String>, default: usize, cap: usize) -> Result<(usize, usize), Answer> {
    let start = match q.get("startAt") {
        Some(s) => s.parse::<usize>().map_err(|_| bad("startAt must be a number."))?,
        None => 0,
    };
    let max = match q.get("maxResults") {
        Some(s) => s.parse::<usize>().map_err(|_| bad("maxResults must be a number."))?,
        None => default,
    };
    Ok((start, max.clamp(1, cap)))
}

fn paged(all: Vec<Value>, q: &HashMap<String, String>, cap: usize, key: &str) -> Answer {
    let (start, max) = match page_bounds(q, cap, cap) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let total = all.len();
    let values: Vec<Value> = all.into_iter().skip(start).take(max).collect();
    let is_last = start + values.len() >= total;
    (StatusCode::OK, json!({"startAt": start, "maxResults": max, "total": total, "isLast": is_last, key: values}))
}

// ------------------------------------------------------------------ JSON --

fn status_json(s: &super::SiteStatus) -> Value {
    let (cid, color, cname) = match s.category_key.as_str() {
        "new" => (2, "blue-gray", "To Do"),
        "indeterminate" => (4, "yellow", "In Progress"),
        "done" => (3, "green", "Done"),
        _ => (1, "medium-gray", "No Category"),
    };
    json!({
        "self": format!("/rest/api/3/status/{}", s.id),
        "description": "",
        "iconUrl": "/images/icons/statuses/generic.png",
        "name": s.name,
        "id": s.id,
        "statusCategory": {"self": format!("/rest/api/3/statuscategory/{cid}"), "id": cid,
            "key": s.category_key, "colorName": color, "name": cname}
    })
}

fn project_json(p: &SiteProject) -> Value {
    json!({"self": format!("/rest/api/3/project/{}", p.id), "id": p.id, "key": p.key,
        "name": p.name, "projectTypeKey": "software", "simplified": false, "style": "classic"})
}

fn version_json(p: &SiteProject, v: &super::SiteVersion) -> Value {
    let mut o = json!({"self": format!("/rest/api/3/version/{}", v.id), "id": v.id,
        "description": v.description, "name": v.name, "archived": v.archived,
        "released": v.released, "projectId": p.id.parse::<u64>().unwrap_or(0)});
    if let Some(d) = v.release_date {
        o["releaseDate"] = json!(d.format("%Y-%m-%d").to_string());
        o["userReleaseDate"] = json!(d.format("%-d/%b/%y").to_string());
        o["overdue"] = json!(!v.released);
    }
    o
}

fn user_json(u: &SiteUser, cloud: bool) -> Value {
    if cloud {
        json!({"self": format!("/rest/api/3/user?accountId={}", u.account_id), "accountId": u.account_id,
            "accountType": u.account_type, "emailAddress": u.email, "displayName": u.display_name,
            "active": true, "timeZone": "Etc/UTC"})
    } else {
        json!({"self": format!("/rest/api/2/user?username={}", u.account_id), "name": u.account_id,
            "key": u.account_id, "emailAddress": u.email, "displayName": u.display_name, "active": true})
    }
}

/// Whether a changelog item passes a field filter (`None`: every item).
fn item_wanted(only: Option<&[String]>, i: &SiteItem) -> bool {
    only.is_none_or(|f| f.iter().any(|x| Some(x) == i.field_id.as_ref() || *x == i.field))
}

fn history_json(st: &SiteState, h: &SiteHistory, cloud: bool, epoch: bool, only: Option<&[String]>) -> Option<Value> {
    let items: Vec<Value> = h
        .items
        .iter()
        .filter(|i| item_wanted(only, i))
        .map(|i| {
            let mut o = json!({"field": i.field, "fieldtype": "jira", "from": i.from,
                "fromString": i.from_string, "to": i.to, "toString": i.to_string});
            if let Some(fid) = &i.field_id {
                o["fieldId"] = json!(fid);
            }
            o
        })
        .collect();
    if items.is_empty() && only.is_some() {
        return None;
    }
    let mut o = json!({"id": h.id, "items": items});
    o["created"] = if epoch { json!(h.created.timestamp_millis()) } else { json!(time(st, h.created)) };
    if let Some(a) = &h.author {
        o["author"] = user_json(a, cloud);
    }
    Some(o)
}

fn text_json(s: &str, cloud: bool) -> Value {
    if cloud {
        // Atlassian Document Format, as v3 returns it.
        json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": s}]}]})
    } else {
        json!(s)
    }
}

const ALL_FIELDS: &[&str] = &[
    "summary",
    "description",
    "issuetype",
    "project",
    "labels",
    "created",
    "updated",
    "resolutiondate",
    "status",
    "fixVersions",
    "versions",
    "assignee",
    "reporter",
    "creator",
    "comment",
    "watches",
    "priority",
    "components",
];

/// `GET /field`: the system fields, then the site's custom fields, as the
/// OpenAPI `FieldDetails` shape has them.
fn fields_json(custom: &[crate::SiteField]) -> Value {
    let system = [
        ("summary", "Summary", json!({"type": "string", "system": "summary"})),
        ("description", "Description", json!({"type": "string", "system": "description"})),
        ("priority", "Priority", json!({"type": "priority", "system": "priority"})),
        ("components", "Components", json!({"type": "array", "items": "component", "system": "components"})),
        ("duedate", "Due date", json!({"type": "date", "system": "duedate"})),
        ("assignee", "Assignee", json!({"type": "user", "system": "assignee"})),
    ];
    let system = system.into_iter().map(|(id, name, schema)| {
        json!({"id": id, "key": id, "name": name, "custom": false, "navigable": true, "orderable": true,
            "searchable": true, "clauseNames": [id], "schema": schema})
    });
    let custom = custom.iter().map(|f| {
        let number = f.id.trim_start_matches("customfield_").parse::<i64>().unwrap_or(0);
        let mut schema = json!({"type": f.kind, "custom": format!("com.atlassian.jira.plugin.system.customfieldtypes:{}", f.kind), "customId": number});
        if let Some(items) = &f.items {
            schema["items"] = json!(items);
        }
        json!({"id": f.id, "key": f.id, "name": f.name, "custom": true, "navigable": true, "orderable": true,
            "searchable": true, "clauseNames": [format!("cf[{number}]"), f.name], "schema": schema})
    });
    Value::Array(system.chain(custom).collect())
}

/// Renders an issue with the requested fields (`None`: id and key only).
fn issue_json(
    st: &SiteState,
    p: &SiteProject,
    i: &SiteIssue,
    fields: &[String],
    changelog: Option<usize>,
    cloud: bool,
) -> Value {
    let all = fields.iter().any(|f| f == "*all" || f == "*navigable");
    let want = |f: &str| all || fields.iter().any(|x| x == f);
    let mut fs = serde_json::Map::new();
    let version =
        |id: &String| p.versions.iter().find(|v| &v.id == id).map(|v| version_json(p, v)).unwrap_or(json!({"id": id}));
    for &f in ALL_FIELDS {
        if !want(f) {
            continue;
        }
        let v = match f {
            "summary" => json!(i.summary),
            "description" => text_json(&i.description, cloud),
            "issuetype" => json!({"self": "/rest/api/3/issuetype/1", "id": "1", "description": "",
                "name": i.issue_type, "subtask": i.is_subtask}),
            "project" => project_json(p),
            "labels" => json!(i.labels),
            "created" => json!(time(st, i.created)),
            "updated" => json!(time(st, i.updated)),
            "resolutiondate" => i.resolved.map_or(Value::Null, |t| json!(time(st, t))),
            "status" => match st.site.statuses.iter().find(|s| s.id == i.status_id) {
                Some(s) => status_json(s),
                None => json!({"id": i.status_id, "name": "Unknown"}),
            },
            "fixVersions" => Value::Array(i.fix_versions.iter().map(version).collect()),
            "versions" => Value::Array(i.affected_versions.iter().map(version).collect()),
            "assignee" => i.assignee.as_ref().map_or(Value::Null, |u| user_json(u, cloud)),
            "reporter" => i.reporter.as_ref().map_or(Value::Null, |u| user_json(u, cloud)),
            "creator" => i.creator.as_ref().map_or(Value::Null, |u| user_json(u, cloud)),
            "comment" => json!({"comments": i.comments.iter().enumerate().map(|(n, c)| json!({
                "id": n.to_string(), "body": text_json(c, cloud), "author": i.reporter.as_ref().map(|u| user_json(u, cloud))
            })).collect::<Vec<_>>(), "maxResults": i.comments.len(), "total": i.comments.len(), "startAt": 0}),
            "watches" => json!({"watchCount": 1, "isWatching": false}),
            "priority" => i.priority.as_ref().map_or(Value::Null, |name| {
                json!({"self": "/rest/api/3/priority/3", "iconUrl": "/images/icons/priorities/medium.svg", "id": "3", "name": name})
            }),
            "components" => Value::Array(
                i.components
                    .iter()
                    .enumerate()
                    .map(|(n, name)| json!({"self": format!("/rest/api/3/component/{}", 10_000 + n), "id": (10_000 + n).to_string(), "name": name}))
                    .collect(),
            ),
            _ => continue,
        };
        fs.insert(f.to_string(), v);
    }
    // Custom fields: the requested ones (all of them for `*all`), null when
    // the issue has no value.
    for field in &st.site.fields {
        if want(&field.id) {
            let value = i.custom.iter().find(|(id, _)| *id == field.id).map_or(Value::Null, |(_, v)| v.clone());
            fs.insert(field.id.clone(), value);
        }
    }
    let mut o = json!({"expand": "operations,changelog,renderedFields", "id": i.id,
        "self": format!("/rest/api/3/issue/{}", i.id), "key": i.key});
    if !fs.is_empty() || !fields.is_empty() {
        o["fields"] = Value::Object(fs);
    }
    if let Some(cap) = changelog {
        let total = i.histories.len();
        // The most recent `cap` entries, newest first.
        let hs: Vec<Value> =
            i.histories.iter().rev().take(cap).filter_map(|h| history_json(st, h, cloud, false, None)).collect();
        o["changelog"] = json!({"startAt": 0, "maxResults": hs.len(), "total": total, "histories": hs});
    }
    o
}

fn list_param(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect(),
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn search(st: &SiteState, q: &HashMap<String, String>, body: &[u8], post: bool, cloud: bool) -> Answer {
    let params: Value = if post {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return bad("The request body is not valid JSON."),
        }
    } else {
        Value::Object(q.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
    };
    let s = |k: &str| {
        params.get(k).and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_u64().map(|n| n.to_string())))
    };
    let jql = s("jql").unwrap_or_default();
    let query = match jql::parse(&jql) {
        Ok(q) => q,
        Err(msg) => return bad(&msg),
    };
    let Some(p) = project(st, &query.project) else {
        return bad(&format!("The value '{}' does not exist for the field 'project'.", query.project));
    };
    let mut fields = list_param(params.get("fields"));
    if fields.is_empty() && !cloud {
        fields.push("*navigable".into());
    }
    let expand_changelog = list_param(params.get("expand")).iter().any(|e| e == "changelog");
    // The page caps of the real products: Cloud's `search/jql` returns "max
    // 5000 issues" when only `id` or `key` is asked for (OpenAPI,
    // `maxResults`) and 100 otherwise; Data Center caps every search at
    // `jira.search.views.default.max`, 1 000 by default.
    let ids_only = fields.iter().all(|f| f == "id" || f == "key");
    let cap = match (cloud, ids_only) {
        (true, true) => st.id_page_cap,
        (true, false) => 100,
        (false, _) => DC_PAGE_CAP,
    };
    let max = match s("maxResults") {
        Some(m) => match m.parse::<usize>() {
            Ok(m) => m.clamp(1, cap),
            Err(_) => return bad("maxResults must be a number."),
        },
        None => 50,
    };
    let start = if cloud {
        match s("nextPageToken") {
            None => 0,
            Some(t) => match decode_token(&t) {
                Some(n) => n,
                None => return bad("The provided next page token is invalid or expired."),
            },
        }
    } else {
        match s("startAt").map(|v| v.parse::<usize>()) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => return bad("startAt must be a number."),
        }
    };
    if let Some(window) = st.result_window.filter(|_| !cloud)
        && start + max > window
    {
        // What Data Center answers (Atlassian KB "Handling JQL REST API
        // searching exceeding max_result_window in Jira").
        let msg = format!(
            "Search limit exceeded. We couldn't complete your search because it requests {} results which exceeded the search platform limit of {}. Try refining your query or contact your Jira administrator. Repeating the same search may not work.",
            thousands(start + max),
            thousands(window)
        );
        return (StatusCode::INTERNAL_SERVER_ERROR, jira_error(&msg));
    }
    let hits = st.cached(|c| &mut c.searches, &jql, || search_order(st, p, &query));
    let total = hits.len();
    let changelog = expand_changelog.then_some(if cloud { st.search_changelog_cap } else { usize::MAX });
    let issues: Vec<Value> = hits
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take(max)
        .map(|&i| issue_json(st, p, &p.issues[i as usize], &fields, changelog, cloud))
        .collect();
    let end = start + issues.len();
    if cloud {
        let mut o = json!({"issues": issues, "isLast": end >= total});
        if end < total {
            o["nextPageToken"] = json!(encode_token(end));
        }
        (StatusCode::OK, o)
    } else {
        (
            StatusCode::OK,
            json!({"expand": "schema,names", "startAt": start, "maxResults": max, "total": total, "issues": issues}),
        )
    }
}

/// The positions in `p.issues` of the issues `query` finds, in its order.
fn search_order(st: &SiteState, p: &SiteProject, query: &jql::Jql) -> Vec<u32> {
    let local = |d: &chrono::NaiveDateTime| tz(st).from_local_datetime(d).earliest();
    let since = query.updated_since.as_ref().and_then(local);
    let created_since = query.created_since.as_ref().and_then(local);
    let mut hits: Vec<u32> = p
        .issues
        .iter()
        .enumerate()
        .filter(|(_, i)| since.is_none_or(|t| i.updated.with_timezone(&Utc) >= t))
        .filter(|(_, i)| created_since.is_none_or(|t| i.created.with_timezone(&Utc) >= t))
        .map(|(n, _)| n as u32)
        .collect();
    let issue = |n: &u32| &p.issues[*n as usize];
    // Stable sorts, as Jira's order is total only with the tie-breakers.
    match query.updated_desc {
        Some(desc) => {
            hits.sort_by_cached_key(|n| (issue(n).updated, num(&issue(n).id)));
            if desc {
                hits.reverse();
            }
        }
        None if query.created_asc => hits.sort_by_cached_key(|n| (issue(n).created, key_num(&issue(n).key))),
        None => hits.sort_by_cached_key(|n| std::cmp::Reverse(num(&issue(n).id))),
    }
    hits
}

fn num(id: &str) -> u64 {
    id.parse().unwrap_or(u64::MAX)
}

/// The number of a key (`OPS-12` → 12), as Jira orders keys.
fn key_num(key: &str) -> u64 {
    key.rsplit('-').next().map_or(u64::MAX, num)
}

/// `10100` → `10,100`, as Jira's messages write numbers.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Data Center's cap on a search page (`jira.search.views.default.max`).
const DC_PAGE_CAP: usize = 1000;

/// An opaque-looking token for an offset.
fn encode_token(offset: usize) -> String {
    format!("CiAi{}", hex::encode(format!("off:{offset}")))
}

fn decode_token(t: &str) -> Option<usize> {
    let raw = hex::decode(t.strip_prefix("CiAi")?).ok()?;
    String::from_utf8(raw).ok()?.strip_prefix("off:")?.parse().ok()
}

fn bulkfetch(st: &SiteState, body: &[u8]) -> Answer {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad("The request body is not valid JSON."),
    };
    let ids = list_param(req.get("issueIdsOrKeys"));
    if ids.is_empty() || ids.len() > 1000 {
        return bad("issueIdsOrKeys must hold between 1 and 1000 issues.");
    }
    let field_ids = list_param(req.get("fieldIds"));
    let only = (!field_ids.is_empty()).then_some(field_ids.as_slice());
    let max = req.get("maxResults").and_then(Value::as_u64).unwrap_or(1000).clamp(1, 1000) as usize;
    let start = match req.get("nextPageToken").and_then(Value::as_str) {
        None => 0,
        Some(t) => match decode_token(t) {
            Some(n) => n,
            None => return bad("The provided next page token is invalid or expired."),
        },
    };
    let key = (ids.clone(), field_ids.clone());
    let entries = st.cached(|c| &mut c.changelogs, &key, || changelog_entries(st, &ids, only));
    let total = entries.len();
    let mut logs: Vec<Value> = Vec::new();
    let mut last_id: Option<&str> = None;
    for &(p, i, h) in entries.get(start..).unwrap_or_default().iter().take(max) {
        let issue = &st.site.projects[p as usize].issues[i as usize];
        let id = issue.id.as_str();
        let Some(v) = history_json(st, &issue.histories[h as usize], true, true, only) else { continue };
        if last_id != Some(id) {
            logs.push(json!({"issueId": id, "changeHistories": []}));
            last_id = Some(id);
        }
        if let Some(Value::Array(a)) = logs.last_mut().and_then(|l| l.get_mut("changeHistories")) {
            a.push(v);
        }
    }
    let mut o = json!({"issueChangeLogs": logs});
    if start + max < total {
        o["nextPageToken"] = json!(encode_token(start + max));
    }
    (StatusCode::OK, o)
}

/// (project, issue, history) of each history of the issues `ids` names
/// that has an item `only` asks for, in bulkfetch's order: by time, then
/// issue id.
fn changelog_entries(st: &SiteState, ids: &[String], only: Option<&[String]>) -> Vec<HistoryAt> {
    let mut entries: Vec<(DateTime<Utc>, u64, HistoryAt)> = Vec::new();
    for (p, i) in st.issues_named(ids) {
        let issue = &st.site.projects[p as usize].issues[i as usize];
        for (h, history) in issue.histories.iter().enumerate() {
            if only.is_none() || history.items.iter().any(|item| item_wanted(only, item)) {
                entries.push((history.created, num(&issue.id), (p, i, h as u32)));
            }
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    entries.into_iter().map(|(_, _, at)| at).collect()
}

fn issue_changelog(st: &SiteState, id: &str, q: &HashMap<String, String>) -> Answer {
    let Some((_, issue)) = find_issue(st, id) else {
        return not_found("Issue does not exist or you do not have permission to see it.");
    };
    let all: Vec<Value> = issue.histories.iter().filter_map(|h| history_json(st, h, true, false, None)).collect();
    let (status, mut v) = paged(all, q, 100, "values");
    v["self"] = json!(format!("/rest/api/3/issue/{}/changelog", issue.id));
    (status, v)
}

fn one_issue(st: &SiteState, id: &str, q: &HashMap<String, String>, cloud: bool) -> Answer {
    let Some((p, issue)) = find_issue(st, id) else {
        return not_found("Issue does not exist or you do not have permission to see it.");
    };
    let mut fields = list_param(q.get("fields").map(|s| json!(s)).as_ref());
    if fields.is_empty() {
        fields.push("*all".into());
    }
    let expand = list_param(q.get("expand").map(|s| json!(s)).as_ref());
    // A single issue carries its complete changelog on both flavors.
    let cl = expand.iter().any(|e| e == "changelog").then_some(usize::MAX);
    (StatusCode::OK, issue_json(st, p, issue, &fields, cl, cloud))
}

fn versions_paged(st: &SiteState, key: &str, q: &HashMap<String, String>) -> Answer {
    let Some(p) = project(st, key) else { return no_project(key) };
    let all: Vec<Value> = p.versions.iter().map(|v| version_json(p, v)).collect();
    paged(all, q, 50, "values")
}

fn myself(st: &SiteState, cloud: bool) -> Value {
    let tz = st.site.time_zone.clone();
    if cloud {
        json!({"self": "/rest/api/3/user?accountId=5b10ac8d82e05b22cc7d4ef5", "accountId": "5b10ac8d82e05b22cc7d4ef5",
            "accountType": "atlassian", "emailAddress": "harvester@example.com", "displayName": "DORA Harvester",
            "active": true, "timeZone": tz, "locale": "en_US"})
    } else {
        json!({"self": "/rest/api/2/user?username=harvester", "name": "harvester", "key": "harvester",
            "emailAddress": "harvester@example.com", "displayName": "DORA Harvester", "active": true, "timeZone": tz})
    }
}

/// `mypermissions` for the caller's credential: 401 for an unknown one,
/// 404 for an unknown project, else whether the table grants it.
fn my_permissions(st: &SiteState, q: &HashMap<String, String>, authorization: Option<&str>) -> Answer {
    let Some(granted) = authorization.and_then(|a| st.viewer_permissions.get(a)) else {
        return (StatusCode::UNAUTHORIZED, jira_error("Client must be authenticated to access this resource."));
    };
    let Some(wanted) = q.get("permissions").filter(|p| !p.is_empty()) else {
        return bad("The 'permissions' query parameter is required.");
    };
    let key = q.get("projectKey").map(String::as_str).unwrap_or_default();
    let Some(p) = project(st, key) else { return no_project(key) };
    let mut perms = serde_json::Map::new();
    for w in wanted.split(',') {
        let have = w == "BROWSE_PROJECTS" && granted.contains(&p.key);
        perms
            .insert(w.to_string(), json!({"id": "10", "key": w, "name": w, "type": "PROJECT", "havePermission": have}));
    }
    (StatusCode::OK, json!({"permissions": perms}))
}

/// `permissions/check` about an account: the ids of the asked projects the
/// table grants it.
fn permissions_check(st: &SiteState, body: &[u8]) -> Answer {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad("The request body is not valid JSON."),
    };
    let granted = req.get("accountId").and_then(Value::as_str).and_then(|a| st.account_permissions.get(a));
    let mut out = Vec::new();
    for pp in req.get("projectPermissions").and_then(Value::as_array).into_iter().flatten() {
        let projects: Vec<u64> = pp
            .get("projects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .filter(|id| {
                let id = id.to_string();
                st.site.projects.iter().any(|p| p.id == id && granted.is_some_and(|g| g.contains(&p.key)))
            })
            .collect();
        for perm in list_param(pp.get("permissions")) {
            let projects = if perm == "BROWSE_PROJECTS" { projects.clone() } else { Vec::new() };
            out.push(json!({"permission": perm, "projects": projects, "issues": []}));
        }
    }
    (StatusCode::OK, json!({"projectPermissions": out, "globalPermissions": []}))
}
