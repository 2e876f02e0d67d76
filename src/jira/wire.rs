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

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

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
    /// Data Center: the page size the server granted, which may be less
    /// than asked (Cloud does not say).
    #[serde(default)]
    pub max_results: Option<u64>,
    #[serde(default)]
    pub total: Option<u64>,
}

/// An issue of an id-only search; on Data Center with its creation time,
/// which a search split into windows needs.
#[derive(Debug, Deserialize)]
pub struct WireIssueId {
    pub id: StrOrNum,
    #[serde(default)]
    pub fields: Option<WireCreated>,
}

/// The `fields` of an id-only search: `created` at most.
#[derive(Debug, Deserialize)]
pub struct WireCreated {
    #[serde(default)]
    pub created: Option<StrOrNum>,
}

#[derive(Debug, Deserialize)]
pub struct WireIssue {
    pub id: StrOrNum,
    /// The issue key, which every search result carries at the top level.
    #[serde(default)]
    pub key: Option<String>,
    pub fields: WireFields,
    /// Absent when the server did not expand the changelog.
    #[serde(default)]
    pub changelog: Option<WireChangelog>,
}

/// The `fields` of an issue. Deserialised key by key: the fields below are
/// read, a `customfield_*` value is kept only in one of the shapes an
/// allow-listed field can have (an option, an array of options, a number, a
/// `YYYY-MM-DD` date), and every other key — text or not — is skipped
/// without being materialised.
#[derive(Debug, Default)]
pub struct WireFields {
    pub issuetype: Option<WireIssueType>,
    pub labels: Option<Vec<String>>,
    pub created: Option<StrOrNum>,
    pub updated: Option<StrOrNum>,
    pub resolutiondate: Option<StrOrNum>,
    pub status: Option<WireStatus>,
    pub fix_versions: Option<Vec<WireIdRef>>,
    pub versions: Option<Vec<WireIdRef>>,
    pub project: Option<WireProjectRef>,
    pub components: Option<Vec<WireNamed>>,
    pub priority: Option<WireNamed>,
    /// `customfield_*` id → value, in the shapes above only (null and
    /// anything else left out).
    pub custom: Vec<(String, WireCustomValue)>,
}

impl<'de> Deserialize<'de> for WireFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = WireFields;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the fields of an issue")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireFields, A::Error> {
                let mut out = WireFields::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "issuetype" => out.issuetype = map.next_value()?,
                        "labels" => out.labels = map.next_value()?,
                        "created" => out.created = map.next_value()?,
                        "updated" => out.updated = map.next_value()?,
                        "resolutiondate" => out.resolutiondate = map.next_value()?,
                        "status" => out.status = map.next_value()?,
                        "fixVersions" => out.fix_versions = map.next_value()?,
                        "versions" => out.versions = map.next_value()?,
                        "project" => out.project = map.next_value()?,
                        "components" => out.components = map.next_value()?,
                        "priority" => out.priority = map.next_value()?,
                        id if id.starts_with("customfield_") => {
                            let id = id.to_owned();
                            match map.next_value::<Option<WireCustomValue>>()? {
                                None | Some(WireCustomValue::Other) => {}
                                Some(value) => out.custom.push((id, value)),
                            }
                        }
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                if out.issuetype.is_none() {
                    return Err(de::Error::missing_field("issuetype"));
                }
                if out.created.is_none() {
                    return Err(de::Error::missing_field("created"));
                }
                if out.status.is_none() {
                    return Err(de::Error::missing_field("status"));
                }
                Ok(out)
            }
        }
        d.deserialize_map(Fields)
    }
}

/// A component or a priority: its name only.
#[derive(Debug, Deserialize)]
pub struct WireNamed {
    #[serde(default)]
    pub name: Option<String>,
}

/// The value of a custom field in a shape an allow-listed field may have.
#[derive(Debug, Clone, PartialEq)]
pub enum WireCustomValue {
    /// A single-choice option: its `value`.
    Option(String),
    /// A multi-choice field: the options' values.
    Options(Vec<String>),
    Number(f64),
    /// `YYYY-MM-DD`.
    Date(String),
    /// A value of any other shape (text, a person, a document): skipped,
    /// never read.
    Other,
}

impl<'de> Deserialize<'de> for WireCustomValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Value;
        impl<'de> Visitor<'de> for Value {
            type Value = WireCustomValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a custom field value")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(WireCustomValue::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(WireCustomValue::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(WireCustomValue::Number(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(WireCustomValue::Other)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let is_date = v.len() == 10
                    && v.bytes()
                        .enumerate()
                        .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
                Ok(if is_date { WireCustomValue::Date(v.to_owned()) } else { WireCustomValue::Other })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Ok(option_value(map)?.map_or(WireCustomValue::Other, WireCustomValue::Option))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut values = Vec::new();
                let mut all_options = true;
                while let Some(item) = seq.next_element::<OptionItem>()? {
                    match item.0 {
                        Some(v) if all_options => values.push(v),
                        _ => all_options = false,
                    }
                }
                Ok(if all_options { WireCustomValue::Options(values) } else { WireCustomValue::Other })
            }
        }
        d.deserialize_any(Value)
    }
}

/// The `value` of an option object (`{"id": "10001", "value": "Payments"}`);
/// `None` for a map without one. Other keys are skipped unread.
fn option_value<'de, A: MapAccess<'de>>(mut map: A) -> Result<Option<String>, A::Error> {
    let mut value = None;
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        if key == "value" && value.is_none() {
            value = map.next_value::<Option<String>>()?;
        } else {
            map.next_value::<de::IgnoredAny>()?;
        }
    }
    Ok(value)
}

/// One element of an array field: an option's value, or `None` for an
/// element of any other shape.
struct OptionItem(Option<String>);

impl<'de> Deserialize<'de> for OptionItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Item;
        impl<'de> Visitor<'de> for Item {
            type Value = OptionItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an option")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OptionItem, A::Error> {
                option_value(map).map(OptionItem)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OptionItem, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(OptionItem(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<OptionItem, E> {
                Ok(OptionItem(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<OptionItem, E> {
                Ok(OptionItem(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<OptionItem, E> {
                Ok(OptionItem(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<OptionItem, E> {
                Ok(OptionItem(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<OptionItem, E> {
                Ok(OptionItem(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<OptionItem, E> {
                Ok(OptionItem(None))
            }
        }
        d.deserialize_any(Item)
    }
}

// ---------------------------------------------------------------- fields --

/// One entry of `GET /rest/api/{2,3}/field`.
#[derive(Debug, Deserialize)]
pub struct WireField {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub schema: Option<WireFieldSchema>,
}

/// A field's data type: `type` (`option`, `array`, `number`, `date`,
/// `string`, …) and, for arrays, the type of the `items`.
#[derive(Debug, Deserialize)]
pub struct WireFieldSchema {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub items: Option<String>,
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
