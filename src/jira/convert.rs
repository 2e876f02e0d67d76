//! Wire types → minimised facts. Pure: no I/O, no clock.
//!
//! This is where a changelog author is reduced to one bool (`by_app`) and
//! where timestamps in Jira's several formats become Unix milliseconds.
//! Must not depend on HTTP or tokio.

use chrono::{DateTime, NaiveDate};
use thiserror::Error;

use super::wire::{StrOrNum, WireHistory, WireIssue, WireStatusEntry, WireVersion};
use crate::domain::facts::{
    IssueFacts, Millis, StatusCategory, StatusChange, StatusFacts, StatusRef, VersionFacts,
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
/// history id for equal instants).
pub fn status_changes(
    histories: Vec<WireHistory>,
    rule: &AppRule,
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
            let side = |id: Option<String>, name: Option<String>| StatusRef {
                id: id.unwrap_or_default(),
                name: name.unwrap_or_default(),
            };
            out.push((
                at,
                hid.clone(),
                n,
                StatusChange {
                    at,
                    from: side(item.from, item.from_string),
                    to: side(item.to, item.to_string),
                    by_app,
                },
            ));
        }
    }
    out.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| id_order(&a.1, &b.1))
            .then_with(|| a.2.cmp(&b.2))
    });
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
/// issue does not name its project.
pub fn issue_facts(
    issue: WireIssue,
    project: &str,
    changes: Vec<StatusChange>,
) -> Result<IssueFacts, ConvertError> {
    let f = issue.fields;
    let created = required_time(&f.created, "fields.created")?;
    let updated = match &f.updated {
        Some(v) => required_time(v, "fields.updated")?,
        None => created,
    };
    let resolved = match &f.resolutiondate {
        Some(v) => Some(required_time(v, "fields.resolutiondate")?),
        None => None,
    };
    let ids = |v: Option<Vec<super::wire::WireIdRef>>| {
        v.unwrap_or_default().into_iter().map(|r| r.id.into_id()).collect::<Vec<_>>()
    };
    Ok(IssueFacts {
        id: issue.id.into_id(),
        project: f
            .project
            .and_then(|p| p.key)
            .unwrap_or_else(|| project.to_string()),
        issue_type: f.issuetype.name,
        is_subtask: f.issuetype.subtask,
        labels: f.labels.unwrap_or_default(),
        created,
        updated,
        resolved,
        status_category: f
            .status
            .status_category
            .and_then(|c| c.key)
            .map_or(StatusCategory::Undefined, |k| StatusCategory::from_key(&k)),
        status: StatusRef { id: f.status.id.into_id(), name: f.status.name },
        fix_versions: ids(f.fix_versions),
        affected_versions: ids(f.versions),
        changes,
    })
}

/// Converts a version. `description` and `userReleaseDate` are never read.
pub fn version_facts(v: WireVersion) -> Result<VersionFacts, ConvertError> {
    let release_date = match v.release_date.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| ConvertError {
            field: "releaseDate",
            problem: "is not a YYYY-MM-DD date",
        })?),
    };
    Ok(VersionFacts {
        id: v.id.into_id(),
        name: v.name,
        released: v.released.unwrap_or(false),
        release_date,
        archived: v.archived.unwrap_or(false),
    })
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
    use crate::jira::wire::{SearchPage, WireHistory};

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
        let changes = status_changes(cl.histories, &AppRule::default()).unwrap();
        assert!(changes.is_empty());
        let facts = issue_facts(issue, "XX", changes).unwrap();
        assert_eq!(facts.id, "12338");
        assert_eq!(facts.project, "AR");
        assert_eq!(facts.issue_type, "Task");
        assert_eq!(facts.status, StatusRef { id: "10000".into(), name: "Ready".into() });
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
            let f = issue_facts(issue, "SAMPLEPROJECT", Vec::new()).unwrap();
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

    fn history(json: serde_json::Value) -> WireHistory {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn only_status_items_survive_and_author_becomes_a_bool() {
        let rule = AppRule {
            ai_account_ids: vec!["human-ai".into()],
            ignored_app_account_ids: vec!["sync-bot".into()],
        };
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
        let changes = status_changes(hs, &rule).unwrap();
        assert_eq!(changes.len(), 3, "resolution item with field=status but fieldId=resolution dropped");
        // Equal instants: history id 1 before 2.
        assert_eq!((changes[0].to.id.as_str(), changes[0].by_app), ("3", true));
        assert_eq!((changes[1].to.id.as_str(), changes[1].by_app), ("5", false));
        assert_eq!((changes[2].to.id.as_str(), changes[2].by_app), ("3", true));
        assert_eq!(changes[1].from, StatusRef { id: "3".into(), name: "In Progress".into() });
    }

    #[test]
    fn bad_timestamp_names_the_field() {
        let h = history(serde_json::json!({"id": "1", "created": "soon", "items": [{"field": "status", "to": "1"}]}));
        let err = status_changes(vec![h], &AppRule::default()).unwrap_err();
        assert_eq!(err.field, "changelog.histories[].created");
    }
}
