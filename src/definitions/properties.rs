//! The properties the hooks receive, in one table per kind of input: each
//! property's name, its type, and how to read it from the domain's views.
//! The maps handed to scripts (`maps`), the scan of what a hook reads and
//! its cache keys (`memo`), and the owned copies of the fast path
//! (`prepared`) are all built from these tables, so the contract
//! (`docs/metrics.md`) is spelled once.
//!
//! A hook never sees an id, a person or any text beyond names and labels.
//! Pure: no rhai `Engine` here, only values.
//!
//! Must not depend on anything but `memo`'s key encoding and the domain's
//! views.

use std::sync::Arc;

use chrono::NaiveDate;
use rhai::{Array, Dynamic, Map};

use super::memo;
use crate::domain::classify::{IssueView, TransitionView, VersionView};
use crate::domain::facts::{FieldValue, Name, StatusCategory};

/// The type of a property as scripts see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// An array of strings.
    Texts,
    Bool,
    /// An integer (Unix milliseconds or a count).
    Int,
    /// An integer or `()`.
    OptionalInt,
    /// A status category key: `new`, `indeterminate`, `done`, `undefined`.
    Category,
    /// `"YYYY-MM-DD"` or `()`.
    OptionalDate,
    /// A string or `()`.
    OptionalText,
    /// A map of the allow-listed custom fields by name.
    Fields,
}

impl Kind {
    /// How many values the property can take when that is small (a bool or
    /// a status category), so that answers fit in slots.
    pub fn small_domain(self) -> Option<usize> {
        match self {
            Kind::Bool => Some(2),
            Kind::Category => Some(4),
            _ => None,
        }
    }
}

/// One property of a hook's input, read by `R`.
pub struct Property<R> {
    pub name: &'static str,
    pub kind: Kind,
    pub read: R,
}

/// Reads a property of an issue.
pub type ReadIssue = for<'a, 'b> fn(&'a IssueView<'b>) -> Value<'a>;
/// Reads a property of a status change.
pub type ReadTransition = for<'a, 'b> fn(&'a TransitionView<'b>) -> Value<'a>;
/// Reads a property of a version.
pub type ReadVersion = for<'a, 'b> fn(&'a VersionView<'b>) -> Value<'a>;

/// A property's value, borrowed from a view.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Text(&'a str),
    Labels(&'a [Name]),
    Names(&'a [&'a str]),
    Bool(bool),
    Int(i64),
    OptionalInt(Option<i64>),
    Category(StatusCategory),
    OptionalDate(Option<NaiveDate>),
    OptionalText(Option<&'a str>),
    Fields(&'a [(Arc<str>, Option<FieldValue>)]),
}

fn string(s: &str) -> Dynamic {
    Dynamic::from(s.to_owned())
}

fn strings<'s>(items: impl IntoIterator<Item = &'s str>) -> Dynamic {
    Dynamic::from_array(items.into_iter().map(string).collect::<Array>())
}

impl Value<'_> {
    /// The value as scripts receive it.
    pub fn dynamic(self) -> Dynamic {
        match self {
            Value::Text(s) => string(s),
            Value::Labels(items) => strings(items.iter().map(Name::as_str)),
            Value::Names(items) => strings(items.iter().copied()),
            Value::Bool(b) => Dynamic::from_bool(b),
            Value::Int(n) => Dynamic::from_int(n),
            Value::OptionalInt(n) => n.map_or(Dynamic::UNIT, Dynamic::from_int),
            Value::Category(c) => string(c.key()),
            Value::OptionalDate(d) => d.map_or(Dynamic::UNIT, |d| string(&d.format("%Y-%m-%d").to_string())),
            Value::OptionalText(s) => s.map_or(Dynamic::UNIT, string),
            Value::Fields(fields) => Dynamic::from_map(
                fields
                    .iter()
                    .map(|(name, value)| (name.as_ref().into(), value.as_ref().map_or(Dynamic::UNIT, field)))
                    .collect::<Map>(),
            ),
        }
    }

    /// What `.len()` answers in a script, for a string or an array; `None`
    /// for other values (a date or `()` is keyed by value instead).
    pub fn script_len(self) -> Option<usize> {
        match self {
            Value::Text(s) => Some(s.chars().count()),
            Value::Labels(items) => Some(items.len()),
            Value::Names(items) => Some(items.len()),
            Value::Category(c) => Some(c.key().len()),
            _ => None,
        }
    }

    /// Appends the value to a cache key, unambiguously.
    pub fn push_key(self, key: &mut String) {
        match self {
            Value::Text(s) => memo::push_str(key, s),
            Value::Labels(items) => memo::push_strs(key, items.iter().map(Name::as_str)),
            Value::Names(items) => memo::push_strs(key, items.iter().copied()),
            Value::Bool(b) => memo::push_bool(key, b),
            Value::Int(n) => memo::push_int(key, n),
            Value::OptionalInt(Some(n)) => memo::push_int(key, n),
            Value::OptionalInt(None) | Value::OptionalDate(None) => memo::push_unit(key),
            Value::Category(c) => memo::push_str(key, c.key()),
            Value::OptionalDate(Some(d)) => memo::push_str(key, &d.format("%Y-%m-%d").to_string()),
            Value::OptionalText(Some(s)) => memo::push_str(key, s),
            Value::OptionalText(None) => memo::push_unit(key),
            Value::Fields(fields) => {
                for (_, value) in fields {
                    match value {
                        None => memo::push_unit(key),
                        Some(FieldValue::Option(s)) => memo::push_str(key, s),
                        Some(FieldValue::Options(items)) => memo::push_strs(key, items.iter().map(Name::as_str)),
                        Some(FieldValue::Number(n)) => memo::push_int(key, n.to_bits() as i64),
                        Some(FieldValue::Date(d)) => memo::push_str(key, &d.format("%Y-%m-%d").to_string()),
                    }
                }
            }
        }
    }

    /// The slot index of a value of a small domain (see
    /// [`Kind::small_domain`]); 0 for others.
    pub fn slot(self) -> usize {
        match self {
            Value::Bool(b) => usize::from(b),
            Value::Category(c) => match c {
                StatusCategory::New => 0,
                StatusCategory::Indeterminate => 1,
                StatusCategory::Done => 2,
                StatusCategory::Undefined => 3,
            },
            _ => 0,
        }
    }
}

/// A custom field's value as scripts receive it.
fn field(value: &FieldValue) -> Dynamic {
    match value {
        FieldValue::Option(s) => string(s),
        FieldValue::Options(items) => strings(items.iter().map(Name::as_str)),
        FieldValue::Number(n) => Dynamic::from_float(*n),
        FieldValue::Date(d) => string(&d.format("%Y-%m-%d").to_string()),
    }
}

/// The properties of an issue.
pub const ISSUE: [Property<ReadIssue>; 14] = [
    Property { name: "project", kind: Kind::Text, read: |v| Value::Text(v.project) },
    Property { name: "type", kind: Kind::Text, read: |v| Value::Text(v.issue_type) },
    Property { name: "is_subtask", kind: Kind::Bool, read: |v| Value::Bool(v.is_subtask) },
    Property { name: "labels", kind: Kind::Texts, read: |v| Value::Labels(v.labels) },
    Property { name: "status", kind: Kind::Text, read: |v| Value::Text(v.status) },
    Property { name: "status_category", kind: Kind::Category, read: |v| Value::Category(v.status_category) },
    Property { name: "created", kind: Kind::Int, read: |v| Value::Int(v.created) },
    Property { name: "resolved", kind: Kind::OptionalInt, read: |v| Value::OptionalInt(v.resolved) },
    Property { name: "fix_versions", kind: Kind::Texts, read: |v| Value::Names(&v.fix_versions) },
    Property { name: "affected_versions", kind: Kind::Texts, read: |v| Value::Names(&v.affected_versions) },
    Property { name: "app_changes", kind: Kind::Int, read: |v| Value::Int(i64::from(v.app_changes)) },
    Property { name: "components", kind: Kind::Texts, read: |v| Value::Labels(v.components) },
    Property { name: "priority", kind: Kind::OptionalText, read: |v| Value::OptionalText(v.priority) },
    Property { name: "fields", kind: Kind::Fields, read: |v| Value::Fields(v.fields) },
];

/// The properties of a status change.
pub const TRANSITION: [Property<ReadTransition>; 6] = [
    Property { name: "from", kind: Kind::Text, read: |v| Value::Text(v.from) },
    Property { name: "to", kind: Kind::Text, read: |v| Value::Text(v.to) },
    Property { name: "from_category", kind: Kind::Category, read: |v| Value::Category(v.from_category) },
    Property { name: "to_category", kind: Kind::Category, read: |v| Value::Category(v.to_category) },
    Property { name: "by_app", kind: Kind::Bool, read: |v| Value::Bool(v.by_app) },
    Property { name: "at", kind: Kind::Int, read: |v| Value::Int(v.at) },
];

/// The properties of a version.
pub const VERSION: [Property<ReadVersion>; 4] = [
    Property { name: "name", kind: Kind::Text, read: |v| Value::Text(v.name) },
    Property { name: "released", kind: Kind::Bool, read: |v| Value::Bool(v.released) },
    Property { name: "release_date", kind: Kind::OptionalDate, read: |v| Value::OptionalDate(v.release_date) },
    Property { name: "archived", kind: Kind::Bool, read: |v| Value::Bool(v.archived) },
];

/// The names of a table, in order.
const fn names<R, const N: usize>(table: &[Property<R>; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = table[i].name;
        i += 1;
    }
    out
}

pub const ISSUE_NAMES: [&str; 14] = names(&ISSUE);
pub const TRANSITION_NAMES: [&str; 6] = names(&TRANSITION);
pub const VERSION_NAMES: [&str; 4] = names(&VERSION);

/// Reads property `p` of an issue view.
pub fn issue<'a>(v: &'a IssueView<'_>, p: usize) -> Value<'a> {
    (ISSUE[p].read)(v)
}

/// Reads property `p` of a status change view.
pub fn transition<'a>(v: &'a TransitionView<'_>, p: usize) -> Value<'a> {
    (TRANSITION[p].read)(v)
}

/// Reads property `p` of a version view.
pub fn version<'a>(v: &'a VersionView<'_>, p: usize) -> Value<'a> {
    (VERSION[p].read)(v)
}
