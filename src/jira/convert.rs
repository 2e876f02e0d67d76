//! Wire types → minimised facts. Pure: no I/O, no clock.
//!
//! This is where a changelog author is reduced to one bool (`by_app`) and
//! where timestamps in Jira's several formats become Unix milliseconds.
//! Must not depend on HTTP or tokio.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate};
use thiserror::Error;

use super::wire::{StrOrNum, WireCustomValue, WireField, WireHistory, WireIssue, WireStatusEntry, WireVersion};
use crate::domain::facts::{
    FieldValue, Interner, IssueDraft, IssueId, IssueKey, Millis, Name, StatusCategory, StatusChange, StatusFacts,
    VersionFacts,
};

/// A value in a well-formed response that does not mean what it must.
/// Never carries the offending value (it could be issue text).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("field `{field}` {problem}")]
pub struct ConvertError {
    pub field: &'static str,
    pub problem: &'static str,
}

/// Who counts as an app (automation, AI agent) when reducing authors.
#[derive(Debug, Clone, Default)]
pub struct AppRule {
    /// Account ids that count as app/AI even if Jira calls them human.
    pub ai_account_ids: Vec<String>,
    /// App accounts that do *not* count (e.g. a sync bot).
    pub ignored_app_account_ids: Vec<String>,
}

impl AppRule {
    /// Reduces an author to "made by an app". Missing author: `false`.
    pub fn by_app(&self, account_id: Option<&str>, account_type: Option<&str>) -> bool {
        let listed = |ids: &[String]| account_id.is_some_and(|a| ids.iter().any(|i| i == a));
        if listed(&self.ai_account_ids) {
            return true;
        }
        account_type == Some("app") && !listed(&self.ignored_app_account_ids)
    }
}

/// Parses a Jira timestamp: `2025-05-02T10:15:30.000+0000`, RFC 3339
/// (`+00:00`, `Z`, with or without fraction), or epoch milliseconds.
pub fn parse_time(v: &StrOrNum) -> Option<Millis> {
    match v {
        StrOrNum::Int(n) => Some(*n),
        StrOrNum::Float(f) if f.is_finite() && f.abs() < 1e16 => Some(*f as i64),
        StrOrNum::Float(_) => None,
        StrOrNum::Str(s) => parse_time_str(s.trim()),
    }
}

fn parse_time_str(s: &str) -> Option<Millis> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.timestamp_millis());
        }
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

fn required_time(v: &StrOrNum, field: &'static str) -> Result<Millis, ConvertError> {
    parse_time(v).ok_or(ConvertError { field, problem: "is not a Jira timestamp" })
}

/// Converts changelog histories to status changes, oldest first (stable on
/// history id for equal instants), their statuses shared through `names`.
pub fn status_changes(
    histories: Vec<WireHistory>,
    rule: &AppRule,
    names: &Interner,
) -> Result<Vec<StatusChange>, ConvertError> {
    let mut out: Vec<(Millis, String, usize, StatusChange)> = Vec::new();
    for h in histories {
        if h.items.is_empty() {
            continue;
        }
        let at = required_time(&h.created, "changelog.histories[].created")?;
        let by_app = match &h.author {
            Some(a) => rule.by_app(a.account_id.as_deref(), a.account_type.as_deref()),
            None => false,
        };
        let hid = h.id.map(StrOrNum::into_id).unwrap_or_default();
        for (n, item) in h.items.into_iter().enumerate() {
            let side = |id: Option<String>, name: Option<String>| {
                names.status(id.as_deref().unwrap_or_default(), name.as_deref().unwrap_or_default())
            };
            out.push((
                at,
                hid.clone(),
                n,
                StatusChange { at, from: side(item.from, item.from_string), to: side(item.to, item.to_string), by_app },
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| id_order(&a.1, &b.1)).then_with(|| a.2.cmp(&b.2)));
    Ok(out.into_iter().map(|(_, _, _, c)| c).collect())
}

/// Numeric ids compare as numbers, others as strings.
fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// Converts a search result to facts. `changes` is the complete list of
/// status changes (from the search itself or fetched separately); the
/// issue's own `changelog` is ignored here. `project` is used when the
/// issue does not name its project. `extra` are the allow-listed custom
/// fields: each gets the issue's value if it has the field's kind, else
/// none; other custom fields are dropped. Every string is shared through
/// `names`.
pub fn issue_facts(
    issue: WireIssue,
    project: &str,
    changes: Vec<StatusChange>,
    extra: &[ExtraField],
    names: &Interner,
) -> Result<IssueDraft, ConvertError> {
    let f = issue.fields;
    let missing = |field| ConvertError { field, problem: "is missing" };
    let created = required_time(f.created.as_ref().ok_or(missing("fields.created"))?, "fields.created")?;
    let issuetype = f.issuetype.ok_or(missing("fields.issuetype"))?;
    let status = f.status.ok_or(missing("fields.status"))?;
    let updated = match &f.updated {
        Some(v) => required_time(v, "fields.updated")?,
        None => created,
    };
    let resolved = match &f.resolutiondate {
        Some(v) => Some(required_time(v, "fields.resolutiondate")?),
        None => None,
    };
    let id = issue_id(issue.id)?;
    let ids = |v: Option<Vec<super::wire::WireIdRef>>| {
        v.unwrap_or_default().into_iter().map(|r| names.name(&r.id.into_id())).collect::<Box<[Name]>>()
    };
    let all = |v: Option<Vec<String>>| v.unwrap_or_default().iter().map(|s| names.name(s)).collect::<Box<[Name]>>();
    let key = issue.key.filter(|k| !k.is_empty()).ok_or(missing("key"))?;
    let key = IssueKey::parse(&key, names).ok_or(ConvertError { field: "key", problem: "is not a Jira issue key" })?;
    Ok(IssueDraft {
        id,
        key,
        project: names.name(f.project.and_then(|p| p.key).as_deref().unwrap_or(project)),
        issue_type: names.name(&issuetype.name),
        is_subtask: issuetype.subtask,
        labels: all(f.labels),
        created,
        updated,
        resolved,
        status_category: status
            .status_category
            .and_then(|c| c.key)
            .map_or(StatusCategory::Undefined, |k| StatusCategory::from_key(&k)),
        status: names.status(&status.id.into_id(), &status.name),
        fix_versions: ids(f.fix_versions),
        affected_versions: ids(f.versions),
        components: all(f.components.map(|c| c.into_iter().filter_map(|c| c.name).collect())),
        priority: f.priority.and_then(|p| p.name).map(|p| names.name(&p)),
        fields: extra
            .iter()
            .map(|field| {
                let value = f
                    .custom
                    .iter()
                    .find(|(id, _)| *id == field.id)
                    .and_then(|(_, v)| field_value(field.kind, v, names));
                (Arc::clone(&field.name), value)
            })
            .collect(),
        changes: changes.into_boxed_slice(),
    })
}

/// An issue id: Jira's are numbers, sent as strings or numbers.
pub fn issue_id(id: StrOrNum) -> Result<IssueId, ConvertError> {
    let problem = ConvertError { field: "id", problem: "is not a Jira issue id (a number)" };
    match id {
        StrOrNum::Int(n) => u64::try_from(n).map(IssueId).map_err(|_| problem),
        StrOrNum::Str(s) => IssueId::parse(&s).ok_or(problem),
        StrOrNum::Float(_) => Err(problem),
    }
}

/// A custom field's value, when it has the shape of the field's kind.
fn field_value(kind: FieldKind, value: &WireCustomValue, names: &Interner) -> Option<FieldValue> {
    match (kind, value) {
        (FieldKind::Option, WireCustomValue::Option(v)) => Some(FieldValue::Option(names.name(v))),
        (FieldKind::Options, WireCustomValue::Options(v)) => {
            Some(FieldValue::Options(v.iter().map(|s| names.name(s)).collect()))
        }
        (FieldKind::Number, WireCustomValue::Number(n)) if n.is_finite() => Some(FieldValue::Number(*n)),
        (FieldKind::Date, WireCustomValue::Date(d)) => {
            NaiveDate::parse_from_str(d, "%Y-%m-%d").ok().map(FieldValue::Date)
        }
        _ => None,
    }
}

/// Converts a version. `description` and `userReleaseDate` are never read.
pub fn version_facts(v: WireVersion) -> Result<VersionFacts, ConvertError> {
    let release_date = match v.release_date.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| ConvertError { field: "releaseDate", problem: "is not a YYYY-MM-DD date" })?,
        ),
    };
    Ok(VersionFacts {
        id: v.id.into_id(),
        name: v.name,
        released: v.released.unwrap_or(false),
        release_date,
        archived: v.archived.unwrap_or(false),
    })
}

/// The kinds of custom field the service may read: none of them can hold
/// text a person wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A single choice (`option`).
    Option,
    /// Several choices (`array` of `option`).
    Options,
    Number,
    /// A calendar date (`date`, not `datetime`).
    Date,
}

/// An allow-listed field, resolved: its Jira id, the name the configuration
/// gives it (which the definitions see) and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraField {
    pub id: String,
    pub name: Arc<str>,
    pub kind: FieldKind,
}

/// Resolves the allow-listed field names against the site's field list
/// (names compare case-insensitively). Refuses, naming the field and its
/// type, a name no field has, a name several fields share, and any type
/// other than an option, an array of options, a number or a date; every
/// problem is reported at once.
pub fn resolve_extra_fields(names: &[String], site: &[WireField]) -> Result<Vec<ExtraField>, Vec<String>> {
    let mut resolved = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        let matching: Vec<&WireField> = site.iter().filter(|f| f.name.to_lowercase() == name.to_lowercase()).collect();
        let field = match matching.as_slice() {
            [] => {
                problems.push(format!("jira.extra_fields: no field of the Jira site is named `{name}`"));
                continue;
            }
            [one] => *one,
            several => {
                let ids: Vec<&str> = several.iter().map(|f| f.id.as_str()).collect();
                problems.push(format!("jira.extra_fields: several fields are named `{name}` ({})", ids.join(", ")));
                continue;
            }
        };
        let (kind, items) = field.schema.as_ref().map_or(("none", None), |s| (s.kind.as_str(), s.items.as_deref()));
        let kind = match (kind, items) {
            ("option", _) => FieldKind::Option,
            ("array", Some("option")) => FieldKind::Options,
            ("number", _) => FieldKind::Number,
            ("date", _) => FieldKind::Date,
            (kind, items) => {
                let shown = items.map_or_else(|| kind.to_owned(), |items| format!("{kind} of {items}"));
                problems.push(format!(
                    "jira.extra_fields: `{name}` ({}) is of type `{shown}`; only option, array of option, number and date fields can be read",
                    field.id
                ));
                continue;
            }
        };
        resolved.push(ExtraField { id: field.id.clone(), name: Arc::from(name.as_str()), kind });
    }
    if problems.is_empty() { Ok(resolved) } else { Err(problems) }
}

/// Converts a status.
pub fn status_facts(s: WireStatusEntry) -> StatusFacts {
    StatusFacts {
        id: s.id.into_id(),
        name: s.name,
        category: s
            .status_category
            .and_then(|c| c.key)
            .map_or(StatusCategory::Undefined, |k| StatusCategory::from_key(&k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::facts::StatusRef;
    use crate::jira::wire::{SearchPage, WireCustomValue, WireFields, WireHistory};

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/jira/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).expect("fixture present")
    }

    #[test]
    fn timestamps_in_every_jira_shape_parse_to_the_same_instant() {
        let expect = 1_746_180_930_000; // 2025-05-02T10:15:30Z
        let check = |v: StrOrNum| assert_eq!(parse_time(&v), Some(expect), "{v:?}");
        check(StrOrNum::Str("2025-05-02T10:15:30.000+0000".into()));
        check(StrOrNum::Str("2025-05-02T12:15:30.000+0200".into()));
        check(StrOrNum::Str("2025-05-02T03:15:30.000-0700".into()));
        check(StrOrNum::Str("2025-05-02T10:15:30+00:00".into()));
        check(StrOrNum::Str("2025-05-02T10:15:30Z".into()));
        check(StrOrNum::Str("2025-05-02T12:15:30.000+02:00".into()));
        check(StrOrNum::Int(expect));
        assert_eq!(parse_time(&StrOrNum::Str("yesterday".into())), None);
        assert_eq!(parse_time(&StrOrNum::Float(f64::NAN)), None);
    }

    #[test]
    fn go_jira_changelog_keeps_no_text_items_and_tolerates_missing_author() {
        let page: SearchPage = serde_json::from_str(&fixture("go-jira_issues_with_changelog.json")).unwrap();
        assert_eq!(page.issues.len(), 1);
        let mut issue = page.issues.into_iter().next().unwrap();
        let cl = issue.changelog.take().expect("changelog expanded");
        // Both histories carry only non-status items (a summary change with
        // issue text, a priority change): nothing survives.
        assert_eq!(cl.histories.len(), 2);
        assert!(cl.histories.iter().all(|h| h.items.is_empty()));
        assert!(cl.histories[1].author.is_none());
        let changes = status_changes(cl.histories, &AppRule::default(), &Interner::default()).unwrap();
        assert!(changes.is_empty());
        let facts = issue_facts(issue, "XX", changes, &[], &Interner::default()).unwrap();
        assert_eq!(facts.id, IssueId(12338));
        assert_eq!(facts.key.to_string(), "AR-86");
        assert_eq!(facts.project, "AR");
        assert_eq!(facts.issue_type, "Task");
        assert_eq!(facts.status, StatusRef::new("10000", "Ready"));
        assert_eq!(facts.status_category, StatusCategory::New);
        assert_eq!(facts.resolved, parse_time(&StrOrNum::Str("2015-12-07T14:19:13.000-0800".into())));
        let text = format!("{facts:?}");
        for marker in ["doesn't need", "Morris", "uservoice", "Moderation"] {
            assert!(!text.contains(marker), "{marker} leaked into facts");
        }
    }

    #[test]
    fn jira_ruby_dc_search_page_converts_without_categories() {
        let page: SearchPage = serde_json::from_str(&fixture("jira-ruby_search_v2.json")).unwrap();
        assert_eq!(page.total, Some(11));
        assert_eq!(page.issues.len(), 11);
        for issue in page.issues {
            assert!(issue.changelog.is_none());
            let f = issue_facts(issue, "SAMPLEPROJECT", Vec::new(), &[], &Interner::default()).unwrap();
            assert_eq!(f.project, "SAMPLEPROJECT");
            assert_eq!(f.status_category, StatusCategory::Undefined);
            assert!(f.created > 1_300_000_000_000);
        }
    }

    #[test]
    fn statuses_fixture_maps_category_keys() {
        let list: Vec<WireStatusEntry> = serde_json::from_str(&fixture("go-jira_all_statuses.json")).unwrap();
        let facts: Vec<_> = list.into_iter().map(status_facts).collect();
        assert!(facts.len() > 5);
        let idea = facts.iter().find(|s| s.id == "1").unwrap();
        assert_eq!((idea.name.as_str(), idea.category), ("Idea", StatusCategory::New));
        assert!(facts.iter().any(|s| s.category == StatusCategory::Undefined));
        assert!(facts.iter().any(|s| s.category == StatusCategory::Done));
    }

    #[test]
    fn version_fixture_drops_description_and_user_date() {
        let v: WireVersion = serde_json::from_str(&fixture("jira-ruby_version.json")).unwrap();
        let f = version_facts(v).unwrap();
        assert_eq!(
            f,
            VersionFacts {
                id: "10000".into(),
                name: "1.0".into(),
                released: false,
                release_date: NaiveDate::from_ymd_opt(2012, 1, 12),
                archived: false,
            }
        );
    }

    #[test]
    fn extra_fields_resolve_by_name_and_only_non_text_types_are_accepted() {
        let site: Vec<WireField> = serde_json::from_value(serde_json::json!([
            {"id": "summary", "name": "Summary", "schema": {"type": "string", "system": "summary"}},
            {"id": "customfield_10010", "name": "Team", "schema": {"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select"}},
            {"id": "customfield_10011", "name": "Areas", "schema": {"type": "array", "items": "option"}},
            {"id": "customfield_10012", "name": "Story points", "schema": {"type": "number"}},
            {"id": "customfield_10013", "name": "Go-live", "schema": {"type": "date"}},
            {"id": "customfield_10014", "name": "Notes", "schema": {"type": "string"}},
            {"id": "customfield_10015", "name": "Reviewers", "schema": {"type": "array", "items": "user"}},
            {"id": "customfield_10016", "name": "Seen at", "schema": {"type": "datetime"}},
            {"id": "customfield_10017", "name": "Dup"}, {"id": "customfield_10018", "name": "dup"},
            {"id": "customfield_10019", "name": "No schema"}
        ]))
        .unwrap();
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let ok = resolve_extra_fields(&names(&["team", "Areas", "Story points", "Go-live"]), &site).unwrap();
        let kinds: Vec<(&str, &str, FieldKind)> = ok.iter().map(|f| (f.id.as_str(), &*f.name, f.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("customfield_10010", "team", FieldKind::Option),
                ("customfield_10011", "Areas", FieldKind::Options),
                ("customfield_10012", "Story points", FieldKind::Number),
                ("customfield_10013", "Go-live", FieldKind::Date),
            ]
        );
        let problems = resolve_extra_fields(
            &names(&["Summary", "Notes", "Reviewers", "Seen at", "Dup", "Nowhere", "No schema", "Team"]),
            &site,
        )
        .unwrap_err();
        let expect = [
            "`Summary` (summary) is of type `string`",
            "`Notes` (customfield_10014) is of type `string`",
            "`Reviewers` (customfield_10015) is of type `array of user`",
            "`Seen at` (customfield_10016) is of type `datetime`",
            "several fields are named `Dup` (customfield_10017, customfield_10018)",
            "no field of the Jira site is named `Nowhere`",
            "`No schema` (customfield_10019) is of type `none`",
        ];
        assert_eq!(problems.len(), expect.len(), "{problems:?}");
        for (problem, expected) in problems.iter().zip(expect) {
            assert!(
                problem.starts_with("jira.extra_fields: ") && problem.contains(expected),
                "{problem} lacks {expected}"
            );
        }
    }

    #[test]
    fn custom_fields_are_kept_only_in_non_text_shapes() {
        let fields: WireFields = serde_json::from_value(serde_json::json!({
            "issuetype": {"name": "Bug"}, "created": "2026-01-05T10:00:00.000+0000",
            "status": {"id": "1", "name": "To Do"},
            "summary": "SECRET summary", "description": {"type": "doc", "content": [{"text": "SECRET"}]},
            "components": [{"id": "1", "name": "Payments"}, {"id": "2", "name": "Search"}],
            "priority": {"id": "2", "name": "High", "iconUrl": "x"},
            "customfield_1": {"self": "x", "id": "10001", "value": "Payments"},
            "customfield_2": [{"id": "1", "value": "a"}, {"id": "2", "value": "b"}],
            "customfield_3": 5.5, "customfield_4": "2026-02-01", "customfield_5": "SECRET text",
            "customfield_6": {"accountId": "x", "displayName": "SECRET person"},
            "customfield_7": [{"accountId": "x"}], "customfield_8": null, "customfield_9": [],
            "customfield_10": {"type": "doc", "content": []}
        }))
        .unwrap();
        let names: Vec<Option<&str>> = fields.components.iter().flatten().map(|c| c.name.as_deref()).collect();
        assert_eq!(names, [Some("Payments"), Some("Search")]);
        assert_eq!(fields.priority.and_then(|p| p.name).as_deref(), Some("High"));
        use WireCustomValue as V;
        let custom: Vec<(&str, &WireCustomValue)> = fields.custom.iter().map(|(id, v)| (id.as_str(), v)).collect();
        assert_eq!(
            custom,
            [
                ("customfield_1", &V::Option("Payments".into())),
                ("customfield_2", &V::Options(vec!["a".into(), "b".into()])),
                ("customfield_3", &V::Number(5.5)),
                ("customfield_4", &V::Date("2026-02-01".into())),
                ("customfield_9", &V::Options(vec![])),
            ]
        );
        assert!(!format!("{custom:?}").contains("SECRET"));
    }

    fn history(json: serde_json::Value) -> WireHistory {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn only_status_items_survive_and_author_becomes_a_bool() {
        let rule =
            AppRule { ai_account_ids: vec!["human-ai".into()], ignored_app_account_ids: vec!["sync-bot".into()] };
        let item = |f: &str, to: &str| serde_json::json!({"field": f, "fieldId": f, "from": "1", "fromString": "To Do", "to": to, "toString": "SECRET TEXT"});
        let hs = vec![
            history(serde_json::json!({"id": "3", "created": "2025-05-02T10:00:00.000+0000",
                "author": {"accountId": "a1", "accountType": "app", "displayName": "Bot"},
                "items": [item("summary", "x"), item("status", "3")]})),
            history(serde_json::json!({"id": "2", "created": 1_746_100_000_000i64,
                "author": {"accountId": "sync-bot", "accountType": "app"},
                "items": [{"field": "status", "from": "3", "fromString": "In Progress", "to": "5", "toString": "Done"}]})),
            history(serde_json::json!({"id": "1", "created": 1_746_100_000_000i64,
                "author": {"accountId": "human-ai", "accountType": "atlassian"},
                "items": [item("status", "3")]})),
            history(serde_json::json!({"id": "4", "created": "2025-05-03T10:00:00Z",
                "items": [{"field": "status", "fieldId": "resolution", "toString": "Fixed"}]})),
        ];
        let changes = status_changes(hs, &rule, &Interner::default()).unwrap();
        assert_eq!(changes.len(), 3, "resolution item with field=status but fieldId=resolution dropped");
        // Equal instants: history id 1 before 2.
        assert_eq!((changes[0].to.id.as_str(), changes[0].by_app), ("3", true));
        assert_eq!((changes[1].to.id.as_str(), changes[1].by_app), ("5", false));
        assert_eq!((changes[2].to.id.as_str(), changes[2].by_app), ("3", true));
        assert_eq!(changes[1].from, StatusRef::new("3", "In Progress"));
    }

    #[test]
    fn a_search_result_without_its_key_is_refused_by_name() {
        let check = |issue: serde_json::Value| {
            let issue: super::super::wire::WireIssue = serde_json::from_value(issue).unwrap();
            issue_facts(issue, "P", Vec::new(), &[], &Interner::default()).unwrap_err()
        };
        let fields = serde_json::json!({
            "created": "2026-01-05T10:00:00.000+0000",
            "issuetype": {"name": "Story", "subtask": false},
            "status": {"id": "1", "name": "To Do"},
        });
        let expected = ConvertError { field: "key", problem: "is missing" };
        assert_eq!(check(serde_json::json!({"id": "1", "fields": fields})), expected);
        assert_eq!(check(serde_json::json!({"id": "1", "key": "", "fields": fields})), expected);
        assert_eq!(expected.to_string(), "field `key` is missing");
        let malformed = ConvertError { field: "key", problem: "is not a Jira issue key" };
        for key in ["P", "P-", "-1", "P-01", "P-1a", "P-99999999999"] {
            assert_eq!(check(serde_json::json!({"id": "1", "key": key, "fields": fields})), malformed, "{key}");
        }
        let id = ConvertError { field: "id", problem: "is not a Jira issue id (a number)" };
        for bad in [serde_json::json!("x1"), serde_json::json!("01"), serde_json::json!(-1), serde_json::json!(1.5)] {
            assert_eq!(check(serde_json::json!({"id": bad, "key": "P-1", "fields": fields})), id, "{bad}");
        }
        let names = Interner::default();
        let ok: super::super::wire::WireIssue =
            serde_json::from_value(serde_json::json!({"id": 10_200, "key": "MY_P2-1234", "fields": fields})).unwrap();
        let facts = issue_facts(ok, "P", Vec::new(), &[], &names).unwrap();
        assert_eq!((facts.id.to_string(), facts.key.to_string()), ("10200".to_owned(), "MY_P2-1234".to_owned()));
    }

    #[test]
    fn bad_timestamp_names_the_field() {
        let h = history(serde_json::json!({"id": "1", "created": "soon", "items": [{"field": "status", "to": "1"}]}));
        let err = status_changes(vec![h], &AppRule::default(), &Interner::default()).unwrap_err();
        assert_eq!(err.field, "changelog.histories[].created");
    }
}
