//! The calling rules of the definition hooks, independent of how a hook is
//! implemented (rhai scripts in `definitions`, or the Rust reference rules
//! below).
//!
//! `classify_issue` decides which hook runs on what, exactly as
//! `docs/metrics.md` describes; a `Hooks` implementation only answers single
//! questions. The inputs are views that resolve status ids to names and
//! categories and version ids to names, so a hook never sees an id.

use chrono::NaiveDate;
use thiserror::Error;

use std::sync::Arc;

use super::facts::{FieldValue, Millis, Name, StatusCategory, VersionFacts};

/// The longest window `failure_window_days` may return.
pub const MAX_FAILURE_WINDOW_DAYS: u32 = 90;

/// The longest team name `teams` may return, in characters after trimming.
pub const MAX_TEAM_NAME_CHARS: usize = 64;

/// The most teams one issue may belong to.
pub const MAX_TEAMS_PER_ISSUE: usize = 20;

/// The teams an issue belongs to: checked names (trimmed, 1 to
/// [`MAX_TEAM_NAME_CHARS`] characters, no duplicates), in the order the
/// hook gave them.
pub type Teams = Arc<[Arc<str>]>;

/// Checks and normalises what a `teams` hook returned: each name trimmed,
/// 1 to [`MAX_TEAM_NAME_CHARS`] characters, duplicates dropped, at most
/// [`MAX_TEAMS_PER_ISSUE`] distinct names. The message of a refusal says
/// what rule was broken, never a name (it may come from an issue).
pub fn checked_teams<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<Teams, String> {
    let mut out: Vec<Arc<str>> = Vec::new();
    for name in names {
        let trimmed = name.as_ref().trim();
        if trimmed.is_empty() {
            return Err(format!(
                "returned an empty team name; names are 1 to {MAX_TEAM_NAME_CHARS} characters after trimming"
            ));
        }
        if trimmed.chars().count() > MAX_TEAM_NAME_CHARS {
            return Err(format!("returned a team name longer than {MAX_TEAM_NAME_CHARS} characters after trimming"));
        }
        if out.iter().any(|n| &**n == trimmed) {
            continue;
        }
        if out.len() == MAX_TEAMS_PER_ISSUE {
            return Err(format!("returned more than {MAX_TEAMS_PER_ISSUE} team names for one issue"));
        }
        out.push(Arc::from(trimmed));
    }
    Ok(out.into())
}

/// A hook failed: it raised an error, returned a value of the wrong type or
/// out of range, or hit a limit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("definition hook `{hook}` failed: {}{message}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default())]
pub struct HookError {
    pub hook: &'static str,
    /// Where in the definitions it failed, when known.
    pub location: Option<SourceLocation>,
    pub message: String,
}

/// A place in a definitions file: `line` and `column` are 1-based, 0 when
/// not known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        Ok(())
    }
}

/// An issue as the hooks see it.
#[derive(Debug, Clone)]
pub struct IssueView<'a> {
    pub project: &'a str,
    pub issue_type: &'a str,
    pub is_subtask: bool,
    pub labels: &'a [Name],
    pub status: &'a str,
    pub status_category: StatusCategory,
    pub created: Millis,
    pub resolved: Option<Millis>,
    pub fix_versions: Vec<&'a str>,
    pub affected_versions: Vec<&'a str>,
    /// Number of status changes made by app accounts.
    pub app_changes: u32,
    /// Component names.
    pub components: &'a [Name],
    /// Priority name.
    pub priority: Option<&'a str>,
    /// The allow-listed custom fields by configured name.
    pub fields: &'a [(Arc<str>, Option<FieldValue>)],
    /// The status changes, oldest first.
    pub transitions: Vec<TransitionView<'a>>,
}

/// A status change as the hooks see it.
#[derive(Debug, Clone)]
pub struct TransitionView<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub from_category: StatusCategory,
    pub to_category: StatusCategory,
    pub by_app: bool,
    pub at: Millis,
}

/// A version as the hooks see it.
#[derive(Debug, Clone)]
pub struct VersionView<'a> {
    pub name: &'a str,
    pub released: bool,
    pub release_date: Option<NaiveDate>,
    pub archived: bool,
}

impl<'a> VersionView<'a> {
    pub fn of(v: &'a VersionFacts) -> Self {
        Self { name: &v.name, released: v.released, release_date: v.release_date, archived: v.archived }
    }
}

/// The definition hooks. `Issue` and `Transition` are whatever the
/// implementation prepares once per issue and per status change (rhai maps,
/// or the views themselves).
pub trait Hooks {
    type Issue;
    type Transition;
    fn prepare_issue(&self, issue: &IssueView<'_>) -> Self::Issue;
    fn prepare_transition(&self, t: &TransitionView<'_>) -> Self::Transition;

    fn is_excluded(&self, issue: &Self::Issue) -> Result<bool, HookError>;
    fn is_deployment(&self, version: &VersionView<'_>) -> Result<bool, HookError>;
    fn is_deployment_transition(&self, issue: &Self::Issue, t: &Self::Transition) -> Result<bool, HookError>;
    fn is_failure(&self, issue: &Self::Issue) -> Result<bool, HookError>;
    fn is_failure_transition(&self, issue: &Self::Issue, t: &Self::Transition) -> Result<bool, HookError>;
    fn is_incident(&self, issue: &Self::Issue) -> Result<bool, HookError>;
    fn is_restore(&self, issue: &Self::Issue, t: &Self::Transition) -> Result<bool, HookError>;
    fn is_work_start(&self, issue: &Self::Issue, t: &Self::Transition) -> Result<bool, HookError>;
    fn is_ai_involved(&self, issue: &Self::Issue) -> Result<bool, HookError>;
    /// Days before its creation within which a failure naming no affected
    /// version is attributed to the latest deployment (0: not by time).
    /// Answers above [`MAX_FAILURE_WINDOW_DAYS`] are refused by
    /// [`classify_issue`].
    fn failure_window_days(&self, issue: &Self::Issue) -> Result<u32, HookError>;
    /// The teams the issue belongs to, checked by [`checked_teams`]
    /// (default: none). Asked of every issue, excluded ones too.
    fn teams(&self, issue: &IssueView<'_>) -> Result<Teams, HookError> {
        let _ = issue;
        Ok(Teams::default())
    }
}

/// What the hooks said about one issue. Indices point into the issue's
/// status changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueClass {
    /// The teams the issue belongs to (asked of every issue).
    pub teams: Teams,
    pub excluded: bool,
    pub incident: bool,
    pub failure: bool,
    /// For a failure that names no affected version: the window in days
    /// within which it is attributed by time (0: not by time).
    pub failure_window_days: u32,
    /// Completed work items only.
    pub ai_involved: bool,
    /// First change for which `is_work_start` holds (work items only).
    pub work_start: Option<usize>,
    /// First change strictly after creation for which `is_restore` holds
    /// (incidents only).
    pub restore: Option<usize>,
    pub deployment_transitions: Vec<usize>,
    /// Only evaluated when the issue has deployment transitions.
    pub failure_transitions: Vec<usize>,
}

/// Runs the hooks on one issue following the calling rules: `teams` is
/// asked of every issue; an excluded issue is asked nothing more; `failure_window_days` runs on failures that
/// name no affected version only, `is_restore` on incidents only,
/// `is_work_start` on work items only, `is_ai_involved` on completed work
/// items only; searches stop at the first match.
pub fn classify_issue<H: Hooks>(hooks: &H, view: &IssueView<'_>) -> Result<IssueClass, HookError> {
    let teams = hooks.teams(view)?;
    let issue = hooks.prepare_issue(view);
    if hooks.is_excluded(&issue)? {
        return Ok(IssueClass { teams, excluded: true, ..IssueClass::default() });
    }
    let transitions: Vec<H::Transition> = view.transitions.iter().map(|t| hooks.prepare_transition(t)).collect();
    let mut class = IssueClass {
        teams,
        incident: hooks.is_incident(&issue)?,
        failure: hooks.is_failure(&issue)?,
        ..IssueClass::default()
    };
    if class.failure && view.affected_versions.is_empty() {
        let days = hooks.failure_window_days(&issue)?;
        if days > MAX_FAILURE_WINDOW_DAYS {
            return Err(HookError {
                hook: "failure_window_days",
                location: None,
                message: format!("returned {days}, expected an integer from 0 to {MAX_FAILURE_WINDOW_DAYS}"),
            });
        }
        class.failure_window_days = days;
    }
    for (i, t) in transitions.iter().enumerate() {
        if hooks.is_deployment_transition(&issue, t)? {
            class.deployment_transitions.push(i);
        }
    }
    if !class.deployment_transitions.is_empty() {
        for (i, t) in transitions.iter().enumerate() {
            if hooks.is_failure_transition(&issue, t)? {
                class.failure_transitions.push(i);
            }
        }
    }
    if class.incident {
        for (i, t) in transitions.iter().enumerate() {
            if view.transitions[i].at > view.created && hooks.is_restore(&issue, t)? {
                class.restore = Some(i);
                break;
            }
        }
    } else {
        for (i, t) in transitions.iter().enumerate() {
            if hooks.is_work_start(&issue, t)? {
                class.work_start = Some(i);
                break;
            }
        }
        if view.status_category == StatusCategory::Done {
            class.ai_involved = hooks.is_ai_involved(&issue)?;
        }
    }
    Ok(class)
}

/// The default definitions, hard-coded in Rust. The shipped rhai scripts in
/// `metrics-defs/` must agree with these exactly (a test checks it); they
/// also serve as the baseline of the classification benchmark.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRules;

impl Hooks for DefaultRules {
    type Issue = OwnedIssue;
    type Transition = OwnedTransition;

    fn prepare_issue(&self, issue: &IssueView<'_>) -> OwnedIssue {
        OwnedIssue {
            issue_type: issue.issue_type.to_owned(),
            is_subtask: issue.is_subtask,
            labels: issue.labels.to_vec(),
            app_changes: issue.app_changes,
        }
    }
    fn prepare_transition(&self, t: &TransitionView<'_>) -> OwnedTransition {
        OwnedTransition { to: t.to.to_owned(), to_category: t.to_category }
    }
    fn is_excluded(&self, i: &OwnedIssue) -> Result<bool, HookError> {
        Ok(i.is_type("epic") || i.is_subtask || i.has_label("dora-exclude"))
    }
    fn is_deployment(&self, v: &VersionView<'_>) -> Result<bool, HookError> {
        Ok(v.released && v.release_date.is_some())
    }
    fn is_deployment_transition(&self, _: &OwnedIssue, _: &OwnedTransition) -> Result<bool, HookError> {
        Ok(false)
    }
    fn is_failure(&self, i: &OwnedIssue) -> Result<bool, HookError> {
        Ok(i.is_type("bug") || i.is_type("incident"))
    }
    fn is_failure_transition(&self, _: &OwnedIssue, t: &OwnedTransition) -> Result<bool, HookError> {
        let to = t.to.to_lowercase();
        Ok(to == "rolled back" || to == "deployment failed")
    }
    fn is_incident(&self, i: &OwnedIssue) -> Result<bool, HookError> {
        Ok(i.is_type("incident") || i.has_label("incident"))
    }
    fn is_restore(&self, _: &OwnedIssue, t: &OwnedTransition) -> Result<bool, HookError> {
        Ok(t.to_category == StatusCategory::Done)
    }
    fn is_work_start(&self, _: &OwnedIssue, t: &OwnedTransition) -> Result<bool, HookError> {
        Ok(t.to_category == StatusCategory::Indeterminate)
    }
    fn is_ai_involved(&self, i: &OwnedIssue) -> Result<bool, HookError> {
        Ok(i.app_changes > 0 || i.has_label("ai-assisted") || i.is_type("ai task"))
    }
    fn failure_window_days(&self, i: &OwnedIssue) -> Result<u32, HookError> {
        Ok(if self.is_incident(i)? { 14 } else { 0 })
    }
}

/// What the reference rules need of an issue.
#[derive(Debug, Clone)]
pub struct OwnedIssue {
    issue_type: String,
    is_subtask: bool,
    labels: Vec<Name>,
    app_changes: u32,
}

impl OwnedIssue {
    /// Names compare case-insensitively, Unicode-aware like rhai's
    /// `to_lower()`.
    fn is_type(&self, name: &str) -> bool {
        self.issue_type.to_lowercase() == name
    }
    fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l.to_lowercase() == label)
    }
}

/// What the reference rules need of a status change.
#[derive(Debug, Clone)]
pub struct OwnedTransition {
    to: String,
    to_category: StatusCategory,
}
