//! The facts read from Jira, minimised: exactly what `docs/metrics.md` needs
//! and nothing else (no summaries, no people, no text).
//!
//! These types are the hand-over point between the Jira client (which builds
//! them from wire JSON) and everything downstream. They live in memory only;
//! snapshots never contain them.

use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A UTC instant as Unix milliseconds.
pub type Millis = i64;

/// The category of a Jira status, by its key (names are localised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StatusCategory {
    /// `new`: to do.
    New,
    /// `indeterminate`: in progress.
    Indeterminate,
    /// `done`.
    Done,
    /// `undefined` ("No Category"), or a status the site no longer knows.
    Undefined,
}

impl StatusCategory {
    /// From Jira's category key; anything unknown is `Undefined`.
    pub fn from_key(key: &str) -> Self {
        match key {
            "new" => Self::New,
            "indeterminate" => Self::Indeterminate,
            "done" => Self::Done,
            _ => Self::Undefined,
        }
    }

    /// Jira's category key.
    pub fn key(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Indeterminate => "indeterminate",
            Self::Done => "done",
            Self::Undefined => "undefined",
        }
    }
}

/// A Jira status with its category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusFacts {
    pub id: String,
    pub name: String,
    pub category: StatusCategory,
}

/// One side of a status change: the status id with the name Jira recorded
/// (the name is a fallback for statuses deleted since).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRef {
    pub id: String,
    pub name: String,
}

/// One status change from an issue's changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub at: Millis,
    pub from: StatusRef,
    pub to: StatusRef,
    /// The change's author is an app account that counts as an AI/automation
    /// actor (`accountType == "app"`, minus ignored account ids). The author
    /// itself is never kept.
    pub by_app: bool,
}

/// An issue, minimised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueFacts {
    /// Jira's issue id: identity for incremental updates, in memory only.
    pub id: String,
    /// Jira's issue key (`PAY-123`): names the issue in the lists behind a
    /// figure, in memory only (never in a snapshot, a log or an error).
    /// Read it through [`IssueFacts::key`], so its representation may change.
    pub key: String,
    pub project: String,
    pub issue_type: String,
    pub is_subtask: bool,
    pub labels: Vec<String>,
    pub created: Millis,
    pub updated: Millis,
    pub resolved: Option<Millis>,
    /// Current status.
    pub status: StatusRef,
    /// Current status category, as the issue itself reports it.
    pub status_category: StatusCategory,
    /// Fix version ids.
    pub fix_versions: Vec<String>,
    /// Affected version ids.
    pub affected_versions: Vec<String>,
    /// Component names.
    pub components: Vec<String>,
    /// Priority name.
    pub priority: Option<String>,
    /// Every allow-listed custom field (`jira.extra_fields`), by the name
    /// the configuration gives it, in configuration order; `None` when the
    /// issue has no value.
    pub fields: Vec<(Arc<str>, Option<FieldValue>)>,
    /// Status changes, oldest first.
    pub changes: Vec<StatusChange>,
}

impl IssueFacts {
    /// The issue's key (`PAY-123`).
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The value of an allow-listed custom field: never text a person wrote.
#[derive(Debug, Clone)]
pub enum FieldValue {
    /// A single-choice option's value.
    Option(String),
    /// The values of a multi-choice field.
    Options(Vec<String>),
    Number(f64),
    Date(NaiveDate),
}

/// Numbers compare by bits, so a value always equals itself.
impl PartialEq for FieldValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Option(a), Self::Option(b)) => a == b,
            (Self::Options(a), Self::Options(b)) => a == b,
            (Self::Number(a), Self::Number(b)) => a.to_bits() == b.to_bits(),
            (Self::Date(a), Self::Date(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for FieldValue {}

/// A project version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFacts {
    pub id: String,
    pub name: String,
    pub released: bool,
    /// Calendar date, no time zone.
    pub release_date: Option<NaiveDate>,
    pub archived: bool,
}

/// Everything harvested for one project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectFacts {
    pub key: String,
    /// Shared, so that merging a refresh into the facts in memory, a
    /// recompute or a preview never copies every issue.
    pub issues: Vec<Arc<IssueFacts>>,
    pub versions: Vec<VersionFacts>,
    pub statuses: Vec<StatusFacts>,
}
