//! The facts read from Jira, minimised: exactly what `docs/metrics.md` needs
//! and nothing else (no summaries, no people, no text).
//!
//! These types are the hand-over point between the Jira client (which builds
//! them from wire JSON) and everything downstream. They live in memory only;
//! snapshots never contain them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

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

/// A string shared by every fact that carries it (an issue type, a label,
/// a version id, a status name...): one word wide, read as a `&str`.
/// Built by an [`Interner`], so that a site's few hundred distinct names
/// are held once however many issues carry them; `From<&str>` makes a
/// name of its own (for tests and one-offs).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<Box<str>>);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Self(Arc::new(s.into()))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Self(Arc::new(s.into_boxed_str()))
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// One side of a status change, or an issue's current status: the status
/// id with the name Jira recorded (the name is a fallback for statuses
/// deleted since).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusRef {
    pub id: Name,
    pub name: Name,
}

impl StatusRef {
    pub fn new(id: &str, name: &str) -> Self {
        Self { id: id.into(), name: name.into() }
    }
}

/// A [`StatusRef`] shared by every change and issue that names it: one
/// word wide. Built by an [`Interner`]; `From<StatusRef>` makes one of its
/// own.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Status(Arc<StatusRef>);

impl std::ops::Deref for Status {
    type Target = StatusRef;
    fn deref(&self) -> &StatusRef {
        &self.0
    }
}

impl std::borrow::Borrow<StatusRef> for Status {
    fn borrow(&self) -> &StatusRef {
        &self.0
    }
}

impl From<StatusRef> for Status {
    fn from(s: StatusRef) -> Self {
        Self(Arc::new(s))
    }
}

impl PartialEq<StatusRef> for Status {
    fn eq(&self, other: &StatusRef) -> bool {
        *self.0 == *other
    }
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

/// The names and statuses of one site, each held once: facts built through
/// the same interner share them. Only grows while facts are built;
/// [`Interner::forget_unused`] drops what no fact holds any more.
#[derive(Default)]
pub struct Interner {
    names: Mutex<HashSet<Name>>,
    statuses: Mutex<HashSet<Status>>,
}

impl Interner {
    /// The shared name for `s`.
    pub fn name(&self, s: &str) -> Name {
        let mut names = self.names.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = names.get(s) {
            return n.clone();
        }
        let n = Name::from(s);
        names.insert(n.clone());
        n
    }

    /// The shared status for an id and a name.
    pub fn status(&self, id: &str, name: &str) -> Status {
        let key = StatusRef { id: self.name(id), name: self.name(name) };
        let mut statuses = self.statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = statuses.get(&key) {
            return s.clone();
        }
        let s = Status::from(key);
        statuses.insert(s.clone());
        s
    }

    /// Drops the names and statuses that no fact holds any more (labels or
    /// versions gone from the site since).
    pub fn forget_unused(&self) {
        self.statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|s| Arc::strong_count(&s.0) > 1);
        self.names.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|n| Arc::strong_count(&n.0) > 1);
    }

    /// How many distinct names are held.
    pub fn len(&self) -> usize {
        self.names.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counts only: the names are issue data.
impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner").field("names", &self.len()).finish_non_exhaustive()
    }
}

/// One status change from an issue's changelog: 32 bytes, the statuses
/// shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub at: Millis,
    pub from: Status,
    pub to: Status,
    /// The change's author is an app account that counts as an AI/automation
    /// actor (`accountType == "app"`, minus ignored account ids). The author
    /// itself is never kept.
    pub by_app: bool,
}

/// An issue, minimised. Its strings are [`Name`]s shared through the
/// site's [`Interner`] and its lists are boxed slices, so that a 100 000
/// issue site fits in a few tens of MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueFacts {
    /// Jira's issue id: identity for incremental updates, in memory only.
    pub id: IssueId,
    /// Jira's issue key (`PAY-123`): names the issue in the lists behind a
    /// figure, in memory only (never in a snapshot, a log or an error).
    /// Read it through [`IssueFacts::key`], so its representation may change.
    pub key: IssueKey,
    pub project: Name,
    pub issue_type: Name,
    pub is_subtask: bool,
    pub labels: Box<[Name]>,
    pub created: Millis,
    pub updated: Millis,
    pub resolved: Option<Millis>,
    /// Current status.
    pub status: Status,
    /// Current status category, as the issue itself reports it.
    pub status_category: StatusCategory,
    /// Fix version ids.
    pub fix_versions: Box<[Name]>,
    /// Affected version ids.
    pub affected_versions: Box<[Name]>,
    /// Component names.
    pub components: Box<[Name]>,
    /// Priority name.
    pub priority: Option<Name>,
    /// Every allow-listed custom field (`jira.extra_fields`), by the name
    /// the configuration gives it, in configuration order; `None` when the
    /// issue has no value.
    pub fields: Box<[(Arc<str>, Option<FieldValue>)]>,
    /// Status changes, oldest first.
    pub changes: Box<[StatusChange]>,
}

/// Jira's id of an issue: a number (Jira sends it as a string of digits),
/// held as one. Reads, and sorts, as its decimal text (`"10" < "9"`), so
/// that issues come in the order they always came in.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IssueId(pub u64);

impl IssueId {
    /// From Jira's text; `None` unless it is a number written as Jira
    /// writes it (so that it reads back as the same text).
    pub fn parse(s: &str) -> Option<Self> {
        let canonical = s == "0" || (!s.starts_with('0') && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
        if canonical { s.parse().ok().map(Self) } else { None }
    }

    /// The decimal digits, in a buffer.
    fn digits(self) -> ([u8; 20], usize) {
        let (mut buf, mut at, mut n) = ([0u8; 20], 20, self.0);
        loop {
            at -= 1;
            buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return (buf, at);
            }
        }
    }
}

impl Ord for IssueId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let ((a, i), (b, j)) = (self.digits(), other.digits());
        a[i..].cmp(&b[j..])
    }
}

impl PartialOrd for IssueId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for IssueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Debug for IssueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0.to_string(), f)
    }
}

impl IssueFacts {
    /// The issue's key (`PAY-123`).
    pub fn key(&self) -> String {
        self.key.to_string()
    }
}

/// An issue's key (`PAY-123`), held as its project part (shared) and its
/// number. Reads as the text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IssueKey {
    pub project: Name,
    pub number: u32,
}

impl IssueKey {
    /// From Jira's text, `PROJECT-123`; `None` in any other shape.
    pub fn parse(key: &str, names: &Interner) -> Option<Self> {
        let (project, number) = key.rsplit_once('-')?;
        let digits = !number.is_empty() && !number.starts_with('0') && number.bytes().all(|b| b.is_ascii_digit());
        if project.is_empty() || !digits {
            return None;
        }
        Some(Self { project: names.name(project), number: number.parse().ok()? })
    }
}

impl std::fmt::Display for IssueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.project, self.number)
    }
}

impl std::fmt::Debug for IssueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.to_string(), f)
    }
}

/// The value of an allow-listed custom field: never text a person wrote.
#[derive(Debug, Clone)]
pub enum FieldValue {
    /// A single-choice option's value.
    Option(Name),
    /// The values of a multi-choice field.
    Options(Box<[Name]>),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_ids_read_and_sort_as_their_text() {
        let mut ids: Vec<IssueId> = ["9", "10", "100", "0", "18446744073709551615"].iter().map(|s| IssueId::parse(s).unwrap()).collect();
        ids.sort();
        let text: Vec<String> = ids.iter().map(IssueId::to_string).collect();
        assert_eq!(text, ["0", "10", "100", "18446744073709551615", "9"]);
        for bad in ["", "01", "-1", "1a", " 1", "18446744073709551616"] {
            assert_eq!(IssueId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_interner_holds_each_name_and_status_once_until_no_fact_does() {
        let names = Interner::default();
        let (a, b) = (names.name("Done"), names.name("Done"));
        assert!(Arc::ptr_eq(&a.0, &b.0));
        let (s, t) = (names.status("10", "Done"), names.status("10", "Done"));
        assert!(Arc::ptr_eq(&s.0, &t.0) && Arc::ptr_eq(&s.name.0, &a.0));
        assert_eq!(names.len(), 2);
        drop((s, t));
        names.forget_unused();
        assert_eq!(names.len(), 1, "the status and its id went; the name is still held");
        drop((a, b));
        names.forget_unused();
        assert!(names.is_empty());
        assert_eq!(format!("{names:?}"), "Interner { names: 0, .. }");
    }

    #[test]
    fn keys_are_a_shared_project_and_a_number() {
        let names = Interner::default();
        let key = IssueKey::parse("PAY-123", &names).unwrap();
        assert_eq!((key.to_string(), key.number, &*key.project), ("PAY-123".to_owned(), 123, "PAY"));
        assert_eq!(IssueKey::parse("A-B-7", &names).map(|k| k.to_string()).as_deref(), Some("A-B-7"));
        for bad in ["PAY", "PAY-", "-1", "PAY-01", "PAY-x", "PAY-4294967296"] {
            assert!(IssueKey::parse(bad, &names).is_none(), "{bad}");
        }
    }
}
