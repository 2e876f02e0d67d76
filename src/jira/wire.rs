//! Serde types for the Jira REST responses we read, and nothing more.
//!
//! Unknown fields are ignored by serde, so summaries, descriptions, people and
//! other text that a server sends anyway are never materialised. Changelog
//! items are filtered *while* they are deserialised: only status items
//! survive, so the text other items carry (`fromString` of a `summary`
//! change, say) is dropped before any other code sees it.
//!
//! Must not depend on HTTP, tokio or the domain types; `convert` maps these
//! to facts.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON value that is either a string or a number (Jira ids and
/// timestamps come as both).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum StrOrNum {
    Str(String),
    Int(i64),
    Float(f64),
}

impl StrOrNum {
    /// The value as an id string.
    pub fn into_id(self) -> String {
        match self {
            StrOrNum::Str(s) => s,
            StrOrNum::Int(n) => n.to_string(),
            StrOrNum::Float(f) => format!("{f}"),
        }
    }
}

// ---------------------------------------------------------------- search --

/// A page of `GET /rest/api/3/search/jql` (Cloud) or `/rest/api/2/search`
/// (Data Center). Both shapes fit: Cloud has `isLast`/`nextPageToken`, DC
/// has `startAt`/`total`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage<I = WireIssue> {
    pub issues: Vec<I>,
    #[serde(default)]
    pub is_last: Option<bool>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub start_at: Option<u64>,
    #[serde(default)]
    pub total: Option<u64>,
}

/// An issue of an id-only search.
#[derive(Debug, Deserialize)]
pub struct WireIssueId {
    pub id: StrOrNum,
}

#[derive(Debug, Deserialize)]
pub struct WireIssue {
    pub id: StrOrNum,
    pub fields: WireFields,
    /// Absent when the server did not expand the changelog.
    #[serde(default)]
    pub changelog: Option<WireChangelog>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireFields {
    pub issuetype: WireIssueType,
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    pub created: StrOrNum,
    #[serde(default)]
    pub updated: Option<StrOrNum>,
    #[serde(default)]
    pub resolutiondate: Option<StrOrNum>,
    pub status: WireStatus,
    #[serde(default)]
    pub fix_versions: Option<Vec<WireIdRef>>,
    #[serde(default)]
    pub versions: Option<Vec<WireIdRef>>,
    #[serde(default)]
    pub project: Option<WireProjectRef>,
}

#[derive(Debug, Deserialize)]
pub struct WireIssueType {
    pub name: String,
    #[serde(default)]
    pub subtask: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireStatus {
    pub id: StrOrNum,
    pub name: String,
    #[serde(default)]
    pub status_category: Option<WireStatusCategory>,
}

#[derive(Debug, Deserialize)]
pub struct WireStatusCategory {
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WireIdRef {
    pub id: StrOrNum,
}

#[derive(Debug, Deserialize)]
pub struct WireProjectRef {
    #[serde(default)]
    pub key: Option<String>,
}

// ------------------------------------------------------------- changelog --

/// The expanded `changelog` of an issue (Data Center searches, and Cloud
/// searches in the measurement mode).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireChangelog {
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub histories: Vec<WireHistory>,
}

/// One changelog entry, already reduced to its status items.
#[derive(Debug, Deserialize)]
pub struct WireHistory {
    /// Missing in some recorded responses.
    #[serde(default)]
    pub id: Option<StrOrNum>,
    pub created: StrOrNum,
    #[serde(default)]
    pub author: Option<WireAuthor>,
    #[serde(default, deserialize_with = "status_items_only")]
    pub items: Vec<WireStatusItem>,
}

/// The two author fields the app test needs; everything else (names,
/// e-mails, avatars) is skipped by serde.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireAuthor {
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub account_type: Option<String>,
}

/// A changelog item as sent; only ever held for the duration of one element
/// of the `items` array.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawItem {
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    field_id: Option<String>,
    #[serde(default)]
    from: Option<StrOrNum>,
    #[serde(default)]
    from_string: Option<String>,
    #[serde(default)]
    to: Option<StrOrNum>,
    #[serde(default)]
    to_string: Option<String>,
}

impl RawItem {
    fn is_status(&self) -> bool {
        match &self.field_id {
            Some(id) => id == "status",
            None => self.field.as_deref() == Some("status"),
        }
    }
}

/// A status item: ids and the names Jira recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireStatusItem {
    pub from: Option<String>,
    pub from_string: Option<String>,
    pub to: Option<String>,
    pub to_string: Option<String>,
}

/// Deserialises the `items` array element by element, keeping only status
/// items.
fn status_items_only<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<WireStatusItem>, D::Error> {
    struct Items;
    impl<'de> Visitor<'de> for Items {
        type Value = Vec<WireStatusItem>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of changelog items")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<RawItem>()? {
                if item.is_status() {
                    out.push(WireStatusItem {
                        from: item.from.map(StrOrNum::into_id),
                        from_string: item.from_string,
                        to: item.to.map(StrOrNum::into_id),
                        to_string: item.to_string,
                    });
                }
                // Any other item (and its text) is dropped here.
            }
            Ok(out)
        }
    }
    d.deserialize_any(Items)
}

/// `POST /rest/api/3/changelog/bulkfetch`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkChangelogPage {
    #[serde(default)]
    pub issue_change_logs: Vec<BulkIssueChangelog>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkIssueChangelog {
    pub issue_id: StrOrNum,
    #[serde(default)]
    pub change_histories: Vec<WireHistory>,
}

// ----------------------------------------------- versions, statuses, etc --

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireVersion {
    pub id: StrOrNum,
    pub name: String,
    #[serde(default)]
    pub released: Option<bool>,
    #[serde(default)]
    pub release_date: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
}

/// A `startAt`-paged list (`/project/{key}/version`, `/project/search`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PagedValues<T> {
    #[serde(default = "Vec::new")]
    pub values: Vec<T>,
    #[serde(default)]
    pub is_last: Option<bool>,
    #[serde(default)]
    pub total: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireStatusEntry {
    pub id: StrOrNum,
    pub name: String,
    #[serde(default)]
    pub status_category: Option<WireStatusCategory>,
}

#[derive(Debug, Deserialize)]
pub struct WireProject {
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireMyself {
    #[serde(default)]
    pub time_zone: Option<String>,
}
