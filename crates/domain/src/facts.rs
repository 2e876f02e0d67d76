//! The facts read from Jira, minimised: exactly what `docs/metrics.md` needs
//! and nothing else (no summaries, no people, no text).
//!
//! These types are the hand-over point between the Jira client (which builds
//! them from wire JSON) and everything downstream. They live in memory only;
//! snapshots never contain them.
//!
//! The client reads each issue as an [`IssueDraft`] and adds it to an
//! [`IssueBatch`]; a project's [`ProjectFacts`] hold fixed-size
//! [`IssueFacts`] records whose lists (status changes; labels, versions and
//! components; custom fields) sit in three arrays the project's issues
//! share, so that a project is a few large allocations: no holes between
//! small ones for the allocator to keep.

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

/// An issue as read from Jira, before it joins its project's facts: what
/// the Jira client builds, and what tests write by hand. Its strings are
/// [`Name`]s shared through the site's [`Interner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueDraft {
    /// Jira's issue id: identity for incremental updates, in memory only.
    pub id: IssueId,
    /// Jira's issue key (`PAY-123`), in memory only (never in a snapshot,
    /// a log or an error).
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
    pub fields: Box<[Field]>,
    /// Status changes, oldest first.
    pub changes: Box<[StatusChange]>,
}

/// An allow-listed custom field of an issue: its configured name and the
/// issue's value, if any.
pub type Field = (Arc<str>, Option<FieldValue>);

/// The lists of many issues, each kind in one array: their status changes;
/// their labels, fix versions, affected versions and components (in that
/// order, issue after issue); their custom fields. An issue holds the
/// arrays (shared) and where its parts are in them.
#[derive(Default)]
struct IssueLists {
    changes: Vec<StatusChange>,
    names: Vec<Name>,
    fields: Vec<Field>,
}

/// Where one issue's lists are in its [`IssueLists`]: `names` bounds its
/// labels, fix versions, affected versions and components, one after the
/// other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Spans {
    changes: [u32; 2],
    names: [u32; 5],
    fields: [u32; 2],
}

fn at(n: usize) -> u32 {
    u32::try_from(n).expect("fewer than 2^32 list entries in one project")
}

impl IssueLists {
    /// Appends one issue's lists; where they are.
    fn push(
        &mut self,
        changes: impl IntoIterator<Item = StatusChange>,
        names: [&mut dyn Iterator<Item = Name>; 4],
        fields: impl IntoIterator<Item = Field>,
    ) -> Spans {
        let first_change = at(self.changes.len());
        self.changes.extend(changes);
        let mut bounds = [at(self.names.len()); 5];
        for (i, list) in names.into_iter().enumerate() {
            self.names.extend(list);
            bounds[i + 1] = at(self.names.len());
        }
        let first_field = at(self.fields.len());
        self.fields.extend(fields);
        Spans {
            changes: [first_change, at(self.changes.len())],
            names: bounds,
            fields: [first_field, at(self.fields.len())],
        }
    }

    /// Appends the lists `spans` marks in `other`; where they are now.
    fn copy(&mut self, other: &IssueLists, spans: &Spans) -> Spans {
        let names = |i: usize| other.names[spans.names[i] as usize..spans.names[i + 1] as usize].iter().cloned();
        self.push(
            other.changes(spans).iter().cloned(),
            [&mut names(0), &mut names(1), &mut names(2), &mut names(3)],
            other.fields(spans).iter().cloned(),
        )
    }

    fn changes(&self, spans: &Spans) -> &[StatusChange] {
        &self.changes[spans.changes[0] as usize..spans.changes[1] as usize]
    }

    fn names(&self, spans: &Spans, list: usize) -> &[Name] {
        &self.names[spans.names[list] as usize..spans.names[list + 1] as usize]
    }

    fn fields(&self, spans: &Spans) -> &[Field] {
        &self.fields[spans.fields[0] as usize..spans.fields[1] as usize]
    }

    fn shrink_to_fit(&mut self) {
        self.changes.shrink_to_fit();
        self.names.shrink_to_fit();
        self.fields.shrink_to_fit();
    }
}

/// An issue of a project's facts, minimised: a fixed-size record whose
/// lists (labels, versions, components, fields, status changes) are in
/// arrays its project's issues share, so that a project's facts are a few
/// large allocations rather than several small ones per issue. Built by
/// [`ProjectFacts::new`], [`ProjectFacts::merged`] or an [`IssueBatch`];
/// its lists are read through its methods.
#[derive(Clone)]
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
    pub created: Millis,
    pub updated: Millis,
    pub resolved: Option<Millis>,
    /// Current status.
    pub status: Status,
    /// Current status category, as the issue itself reports it.
    pub status_category: StatusCategory,
    /// Priority name.
    pub priority: Option<Name>,
    lists: Arc<IssueLists>,
    spans: Spans,
}

impl IssueFacts {
    /// The issue's key (`PAY-123`).
    pub fn key(&self) -> String {
        self.key.to_string()
    }

    pub fn labels(&self) -> &[Name] {
        self.lists.names(&self.spans, 0)
    }

    /// Fix version ids.
    pub fn fix_versions(&self) -> &[Name] {
        self.lists.names(&self.spans, 1)
    }

    /// Affected version ids.
    pub fn affected_versions(&self) -> &[Name] {
        self.lists.names(&self.spans, 2)
    }

    /// Component names.
    pub fn components(&self) -> &[Name] {
        self.lists.names(&self.spans, 3)
    }

    /// Every allow-listed custom field (`jira.extra_fields`), by the name
    /// the configuration gives it, in configuration order; `None` when the
    /// issue has no value.
    pub fn fields(&self) -> &[Field] {
        self.lists.fields(&self.spans)
    }

    /// Status changes, oldest first.
    pub fn changes(&self) -> &[StatusChange] {
        self.lists.changes(&self.spans)
    }

    /// The issue as a draft, its lists copied out.
    pub fn to_draft(&self) -> IssueDraft {
        IssueDraft {
            id: self.id,
            key: self.key.clone(),
            project: self.project.clone(),
            issue_type: self.issue_type.clone(),
            is_subtask: self.is_subtask,
            labels: self.labels().into(),
            created: self.created,
            updated: self.updated,
            resolved: self.resolved,
            status: self.status.clone(),
            status_category: self.status_category,
            fix_versions: self.fix_versions().into(),
            affected_versions: self.affected_versions().into(),
            components: self.components().into(),
            priority: self.priority.clone(),
            fields: self.fields().into(),
            changes: self.changes().into(),
        }
    }

    /// Splits a draft into a record (its lists not yet placed) and the
    /// lists, appended to `lists`.
    fn from_draft(draft: IssueDraft, lists: &mut IssueLists, placeholder: &Arc<IssueLists>) -> Self {
        let spans = lists.push(
            draft.changes.into_vec(),
            [
                &mut draft.labels.into_vec().into_iter(),
                &mut draft.fix_versions.into_vec().into_iter(),
                &mut draft.affected_versions.into_vec().into_iter(),
                &mut draft.components.into_vec().into_iter(),
            ],
            draft.fields.into_vec(),
        );
        Self {
            id: draft.id,
            key: draft.key,
            project: draft.project,
            issue_type: draft.issue_type,
            is_subtask: draft.is_subtask,
            created: draft.created,
            updated: draft.updated,
            resolved: draft.resolved,
            status: draft.status,
            status_category: draft.status_category,
            priority: draft.priority,
            lists: Arc::clone(placeholder),
            spans,
        }
    }
}

/// Compares what an issue says, not where its lists are held.
impl PartialEq for IssueFacts {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.key == other.key
            && self.project == other.project
            && self.issue_type == other.issue_type
            && self.is_subtask == other.is_subtask
            && self.created == other.created
            && self.updated == other.updated
            && self.resolved == other.resolved
            && self.status == other.status
            && self.status_category == other.status_category
            && self.priority == other.priority
            && self.labels() == other.labels()
            && self.fix_versions() == other.fix_versions()
            && self.affected_versions() == other.affected_versions()
            && self.components() == other.components()
            && self.fields() == other.fields()
            && self.changes() == other.changes()
    }
}

impl Eq for IssueFacts {}

impl std::fmt::Debug for IssueFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.to_draft(), f)
    }
}

/// Issues as a search returns them, each turned into a record as it
/// arrives and its lists appended to a few growing arrays (no allocation
/// of its own), until [`ProjectFacts::merged`] places them. A later issue
/// with the same id replaces the earlier one.
#[derive(Default)]
pub struct IssueBatch {
    issues: Vec<IssueFacts>,
    lists: IssueLists,
    index: std::collections::HashMap<IssueId, usize>,
    /// What the records point at until they are placed.
    placeholder: Arc<IssueLists>,
    /// Whether the arrays hold lists no issue points at any more (an
    /// issue or its changes replaced).
    stale: bool,
}

impl IssueBatch {
    /// Adds an issue, replacing the one with the same id if any.
    pub fn push(&mut self, draft: IssueDraft) {
        let issue = IssueFacts::from_draft(draft, &mut self.lists, &self.placeholder);
        match self.index.get(&issue.id) {
            Some(&i) => {
                self.issues[i] = issue;
                self.stale = true;
            }
            None => {
                self.index.insert(issue.id, self.issues.len());
                self.issues.push(issue);
            }
        }
    }

    /// Replaces the status changes of the issue with this id (returns
    /// whether there is one).
    pub fn set_changes(&mut self, id: IssueId, changes: Vec<StatusChange>) -> bool {
        let Some(&i) = self.index.get(&id) else { return false };
        let first = at(self.lists.changes.len());
        self.lists.changes.extend(changes);
        let old = std::mem::replace(&mut self.issues[i].spans.changes, [first, at(self.lists.changes.len())]);
        self.stale |= old[0] != old[1];
        true
    }

    pub fn len(&self) -> usize {
        self.issues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// The latest `updated` of the issues.
    pub fn newest_update(&self) -> Option<Millis> {
        self.issues.iter().map(|i| i.updated).max()
    }

    /// The issues as drafts, in the order they came.
    pub fn into_drafts(self) -> Vec<IssueDraft> {
        let lists = Arc::new(self.lists);
        self.issues.into_iter().map(|i| IssueFacts { lists: Arc::clone(&lists), ..i }.to_draft()).collect()
    }
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
    /// Each issue's lists are in arrays shared by the project's issues;
    /// records from other facts may be mixed in (each knows its arrays).
    pub issues: Vec<IssueFacts>,
    pub versions: Vec<VersionFacts>,
    pub statuses: Vec<StatusFacts>,
}

impl ProjectFacts {
    /// A project's facts from its issues, in the order given.
    pub fn new(
        key: impl Into<String>,
        issues: impl IntoIterator<Item = IssueDraft>,
        versions: Vec<VersionFacts>,
        statuses: Vec<StatusFacts>,
    ) -> Self {
        let mut lists = IssueLists::default();
        let placeholder = Arc::default();
        let issues = issues.into_iter().map(|d| IssueFacts::from_draft(d, &mut lists, &placeholder)).collect();
        Self { key: key.into(), issues: placed(issues, lists), versions, statuses }
    }

    /// A project's facts after a refresh: the issues `kept` from before,
    /// replaced by the `fetched` ones with the same id, ordered by id. The
    /// lists of all are copied into new arrays of exactly the size needed
    /// (one each), so that replaced issues leave nothing behind and the
    /// project's issues are a few allocations however they came; a first
    /// harvest (nothing kept, nothing replaced) keeps the batch's arrays,
    /// trimmed, without a copy.
    pub fn merged<'a>(
        key: impl Into<String>,
        kept: impl IntoIterator<Item = &'a IssueFacts>,
        fetched: IssueBatch,
        versions: Vec<VersionFacts>,
        statuses: Vec<StatusFacts>,
    ) -> Self {
        let mut kept = kept.into_iter().peekable();
        if kept.peek().is_none() && !fetched.stale {
            // A full harvest: the batch's arrays hold exactly its issues'
            // lists already (in another order, which costs nothing).
            let IssueBatch { mut issues, lists, .. } = fetched;
            issues.sort_unstable_by_key(|i| i.id);
            return Self { key: key.into(), issues: placed(issues, lists), versions, statuses };
        }
        let mut order: std::collections::BTreeMap<IssueId, (&IssueFacts, &IssueLists)> =
            kept.map(|i| (i.id, (i, &*i.lists))).collect();
        for issue in &fetched.issues {
            order.insert(issue.id, (issue, &fetched.lists));
        }
        let mut sizes = [0usize; 3];
        for (issue, _) in order.values() {
            let s = &issue.spans;
            sizes[0] += (s.changes[1] - s.changes[0]) as usize;
            sizes[1] += (s.names[4] - s.names[0]) as usize;
            sizes[2] += (s.fields[1] - s.fields[0]) as usize;
        }
        let mut lists = IssueLists {
            changes: Vec::with_capacity(sizes[0]),
            names: Vec::with_capacity(sizes[1]),
            fields: Vec::with_capacity(sizes[2]),
        };
        let placeholder = Arc::default();
        let mut issues: Vec<IssueFacts> = Vec::with_capacity(order.len());
        for (issue, from) in order.into_values() {
            let spans = lists.copy(from, &issue.spans);
            issues.push(IssueFacts { lists: Arc::clone(&placeholder), spans, ..issue.clone() });
        }
        drop(fetched);
        Self { key: key.into(), issues: placed(issues, lists), versions, statuses }
    }
}

/// The records pointed at their arrays, every array no larger than it holds.
fn placed(mut issues: Vec<IssueFacts>, mut lists: IssueLists) -> Vec<IssueFacts> {
    lists.shrink_to_fit();
    issues.shrink_to_fit();
    let lists = Arc::new(lists);
    for issue in &mut issues {
        issue.lists = Arc::clone(&lists);
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_ids_read_and_sort_as_their_text() {
        let mut ids: Vec<IssueId> =
            ["9", "10", "100", "0", "18446744073709551615"].iter().map(|s| IssueId::parse(s).unwrap()).collect();
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

    fn draft(id: u64, labels: &[&str], fixes: &[&str], changes: usize) -> IssueDraft {
        let names = Interner::default();
        let (todo, done) = (names.status("1", "To Do"), names.status("3", "Done"));
        IssueDraft {
            id: IssueId(id),
            key: IssueKey { project: "P".into(), number: id as u32 },
            project: "P".into(),
            issue_type: "Story".into(),
            is_subtask: false,
            labels: labels.iter().map(|&l| Name::from(l)).collect(),
            created: id as Millis,
            updated: id as Millis + 1,
            resolved: None,
            status: done.clone(),
            status_category: StatusCategory::Done,
            fix_versions: fixes.iter().map(|&v| Name::from(v)).collect(),
            affected_versions: [].into(),
            components: ["Billing".into()].into(),
            priority: None,
            fields: [("Team".into(), Some(FieldValue::Options(["a".into(), "b".into()].into())))].into(),
            changes: (0..changes)
                .map(|n| StatusChange { at: n as Millis, from: todo.clone(), to: done.clone(), by_app: n % 2 == 0 })
                .collect(),
        }
    }

    /// The drafts the facts hold, in order.
    fn drafts(facts: &ProjectFacts) -> Vec<IssueDraft> {
        facts.issues.iter().map(IssueFacts::to_draft).collect()
    }

    #[test]
    fn a_projects_issues_share_one_set_of_arrays_and_read_as_their_drafts() {
        let given =
            vec![draft(9, &["x"], &["100", "101"], 3), draft(10, &[], &[], 0), draft(2, &["y", "z"], &["100"], 1)];
        let facts = ProjectFacts::new("P", given.clone(), Vec::new(), Vec::new());
        assert_eq!(drafts(&facts), given, "in the order given, every list intact");
        assert!(facts.issues.iter().all(|i| Arc::ptr_eq(&i.lists, &facts.issues[0].lists)));
        let lists = &facts.issues[0].lists;
        assert_eq!((lists.changes.len(), lists.names.len(), lists.fields.len()), (4, 9, 3));
        assert_eq!(facts.issues[2].labels(), ["y", "z"]);
        assert_eq!(facts.issues[0].fix_versions(), ["100", "101"]);
        assert_eq!(facts.issues[1].components(), ["Billing"]);
        assert!(facts.issues[1].changes().is_empty() && facts.issues[1].affected_versions().is_empty());
    }

    #[test]
    fn a_merge_keeps_what_was_not_fetched_again_replaces_what_was_and_orders_by_id() {
        let before = ProjectFacts::new(
            "P",
            vec![draft(1, &["a"], &[], 2), draft(2, &[], &["100"], 1), draft(3, &[], &[], 4)],
            Vec::new(),
            Vec::new(),
        );
        let mut fetched = IssueBatch::default();
        fetched.push(draft(2, &["changed"], &[], 0));
        fetched.push(draft(10, &[], &["101"], 1));
        fetched.push(draft(2, &["changed again"], &[], 0));
        assert!(fetched.set_changes(IssueId(2), draft(2, &[], &[], 5).changes.into_vec()));
        assert!(!fetched.set_changes(IssueId(77), Vec::new()));
        assert_eq!((fetched.len(), fetched.newest_update()), (2, Some(11)));
        // Issue 3 was deleted: not kept.
        let kept = before.issues.iter().filter(|i| i.id != IssueId(3));
        let after = ProjectFacts::merged("P", kept, fetched, Vec::new(), Vec::new());
        let two = draft(2, &["changed again"], &[], 5);
        assert_eq!(
            drafts(&after),
            vec![draft(1, &["a"], &[], 2), draft(10, &[], &["101"], 1), two],
            "ids order as their text"
        );
        assert!(after.issues.iter().all(|i| Arc::ptr_eq(&i.lists, &after.issues[0].lists)), "one set of arrays");
        let lists = &after.issues[0].lists;
        assert_eq!((lists.changes.len(), lists.changes.capacity()), (8, 8), "exactly what the issues hold");
        assert_eq!(lists.names.len(), 6, "a label or a fix version and a component each");
        assert_eq!(before.issues.len(), 3, "the facts merged from are untouched");
    }

    #[test]
    fn a_first_harvest_keeps_its_batchs_arrays_unless_they_hold_replaced_lists() {
        for replaced in [false, true] {
            let mut batch = IssueBatch::default();
            for id in [30, 4, 200] {
                batch.push(draft(id, &["l"], &[], 2));
            }
            if replaced {
                batch.push(draft(4, &[], &[], 1));
            }
            let facts = ProjectFacts::merged("P", [], batch, Vec::new(), Vec::new());
            let ids: Vec<u64> = facts.issues.iter().map(|i| i.id.0).collect();
            assert_eq!(ids, [200, 30, 4]);
            let four = if replaced { draft(4, &[], &[], 1) } else { draft(4, &["l"], &[], 2) };
            assert_eq!(facts.issues[2].to_draft(), four);
            let lists = &facts.issues[0].lists;
            let changes = if replaced { 5 } else { 6 };
            assert_eq!((lists.changes.len(), lists.changes.capacity()), (changes, changes), "replaced: {replaced}");
        }
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
