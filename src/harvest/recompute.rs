//! Changing the definitions without a restart: validation with a preview,
//! activation through the owner of the definitions in force (`in_force`),
//! and the instant recompute of every project's figures from the facts in
//! memory.
//!
//! Recomputing takes each project's lock (`memory`), so a harvest and a
//! recompute of the same project never interleave, and reads the
//! definitions in force when it starts on a project; every project's
//! figures name the version they were computed with
//! (`freshness.definitions_version`).
//!
//! Classification runs on blocking threads, never on the async runtime.
//! *Invariant:* never calls Jira; must not depend on `watch`, `schedule`
//! or `persistence`.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tracing::{info, warn};

use super::in_force::{ActivateError, Origin};
use super::refresh::Harvester;
use crate::definitions::{DefinitionError, DefinitionFile, DefinitionSet};
use crate::domain::aggregate::{ClassifyError, build_project, build_project_teams, with_issue_views};
use crate::domain::classify::{IssueClass, classify_issue};
use crate::domain::facts::ProjectFacts;
use crate::domain::period::{Period, PeriodFigures, Totals, resolve_period};

/// Weeks a preview covers: the last complete ones.
pub const PREVIEW_WEEKS: u32 = 13;
/// Longest accepted definitions file name.
pub const MAX_FILE_NAME: usize = 64;

/// The effect of proposed definitions on one project's last weeks.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectPreview {
    pub key: String,
    pub period: Period,
    pub current: PeriodFigures,
    pub proposed: PeriodFigures,
    /// Status names whose status changes now classify differently, sorted.
    pub changed_statuses: Vec<String>,
    /// Issue types whose issues now classify differently, sorted.
    pub changed_issue_types: Vec<String>,
}

/// The outcome of validating proposed definitions.
#[derive(Debug)]
pub struct Validation {
    /// Every problem found; empty when the definitions are valid.
    pub errors: Vec<DefinitionError>,
    /// One preview per project in memory (when valid).
    pub previews: Vec<ProjectPreview>,
    /// The compiled set (when valid), ready to activate.
    pub set: Option<DefinitionSet>,
}

/// Problems with the names of proposed files: each must be a plain
/// `name.rhai` (letters, digits, `_`, `-`, `.`; no folders), unique, and
/// there must be at least one file.
pub fn check_file_names(files: &[DefinitionFile]) -> Vec<DefinitionError> {
    let mut errors = Vec::new();
    let error = |file: &str, message: String| DefinitionError {
        file: file.to_owned(),
        line: 0,
        column: 0,
        hook: None,
        message,
    };
    if files.is_empty() {
        errors.push(error("", "no files: send the complete set of definitions files".to_owned()));
    }
    for (i, f) in files.iter().enumerate() {
        let stem = f.name.strip_suffix(".rhai").unwrap_or("");
        let plain = !stem.is_empty()
            && f.name.len() <= MAX_FILE_NAME
            && stem.starts_with(|c: char| c.is_ascii_alphanumeric())
            && stem.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !stem.contains("..");
        if !plain {
            errors.push(error(
                &f.name.escape_debug().to_string(),
                format!("a file name must look like `deployment.rhai` (letters, digits, `_`, `-`; at most {MAX_FILE_NAME} characters)"),
            ));
        } else if files[..i].iter().any(|g| g.name == f.name) {
            errors.push(error(&f.name, "sent twice".to_owned()));
        }
    }
    errors
}

/// A hook failure on real facts as a located problem.
fn located(err: &ClassifyError) -> DefinitionError {
    let hook = &err.source;
    let (file, line, column) =
        hook.location.as_ref().map_or((String::new(), 0, 0), |l| (l.file.clone(), l.line, l.column));
    DefinitionError {
        file,
        line,
        column,
        hook: Some(hook.hook.to_owned()),
        message: format!("{} (on the facts of project {})", hook.message, err.project),
    }
}

/// Which classification answers an issue's status change got.
fn transition_marks(class: &IssueClass, i: usize) -> [bool; 4] {
    [
        class.deployment_transitions.contains(&i),
        class.failure_transitions.contains(&i),
        class.work_start == Some(i),
        class.restore == Some(i),
    ]
}

/// Compares the current and the proposed definitions on one project's
/// facts: figures over `period` under each, and the status names and issue
/// types that classify differently. Pure; blocking.
pub fn preview_project(
    facts: &ProjectFacts,
    current: &DefinitionSet,
    proposed: &DefinitionSet,
    tz: Tz,
    period: Period,
) -> Result<ProjectPreview, ClassifyError> {
    let figures = |set: &DefinitionSet| -> Result<PeriodFigures, ClassifyError> {
        let aggregates = build_project(facts, set, tz)?;
        Ok(Totals::over(&[&aggregates], period.iter()).figures())
    };
    let proposed_figures = figures(proposed)?;
    let current_figures = figures(current)?;
    let fail = |source| ClassifyError { project: facts.key.clone(), source };
    let (mut statuses, mut types) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
    with_issue_views(facts, |views| -> Result<(), ClassifyError> {
        for view in views {
            let before = classify_issue(current, view).map_err(fail)?;
            let after = classify_issue(proposed, view).map_err(fail)?;
            if before == after {
                continue;
            }
            let issue_level = (before.excluded, before.incident, before.failure, before.ai_involved)
                != (after.excluded, after.incident, after.failure, after.ai_involved);
            if issue_level {
                types.insert(view.issue_type.to_owned());
            }
            if before.excluded || after.excluded || before.incident != after.incident {
                continue;
            }
            for (i, t) in view.transitions.iter().enumerate() {
                if transition_marks(&before, i) != transition_marks(&after, i) {
                    statuses.insert(t.to.to_owned());
                }
            }
        }
        Ok(())
    })?;
    Ok(ProjectPreview {
        key: facts.key.clone(),
        period,
        current: current_figures,
        proposed: proposed_figures,
        changed_statuses: statuses.into_iter().collect(),
        changed_issue_types: types.into_iter().collect(),
    })
}

/// Previews `proposed` against the built-in defaults on `facts` as of
/// `now` (for `check-defs`, which has no harvested facts of its own: it
/// passes the demo site's).
pub fn preview_against_shipped(
    facts: &[ProjectFacts],
    proposed: &DefinitionSet,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<Vec<ProjectPreview>, DefinitionError> {
    let period = resolve_period(None, None, PREVIEW_WEEKS, now, tz).expect("the default period resolves");
    let current = DefinitionSet::shipped();
    facts.iter().map(|f| preview_project(f, &current, proposed, tz, period).map_err(|e| located(&e))).collect()
}

impl Harvester {
    /// Compiles and checks proposed definitions, runs them on every
    /// project's facts in memory, and previews their effect on the last
    /// [`PREVIEW_WEEKS`] complete weeks. Changes nothing.
    pub async fn validate(&self, files: Vec<DefinitionFile>, now: DateTime<Utc>) -> Validation {
        let mut errors = check_file_names(&files);
        if !errors.is_empty() {
            return Validation { errors, previews: Vec::new(), set: None };
        }
        let field_names = self.definitions().field_names().to_vec();
        let compiled = tokio::task::spawn_blocking(move || DefinitionSet::compile_for(files, &field_names)).await;
        let proposed = match compiled {
            Ok(Ok(set)) => Arc::new(set),
            Ok(Err(found)) => return Validation { errors: found, previews: Vec::new(), set: None },
            Err(_) => {
                errors.push(DefinitionError {
                    file: String::new(),
                    line: 0,
                    column: 0,
                    hook: None,
                    message: "compiling stopped unexpectedly".to_owned(),
                });
                return Validation { errors, previews: Vec::new(), set: None };
            }
        };
        let tz = self.tz();
        let period = resolve_period(None, None, PREVIEW_WEEKS, now, tz).expect("the default period resolves");
        let mut previews = Vec::new();
        for key in self.memory().keys() {
            let Some(facts) = self.memory().facts(&key) else { continue };
            let (current, proposed) = (self.definitions(), Arc::clone(&proposed));
            let outcome =
                tokio::task::spawn_blocking(move || preview_project(&facts, &current, &proposed, tz, period)).await;
            match outcome {
                Ok(Ok(preview)) => previews.push(preview),
                Ok(Err(e)) => errors.push(located(&e)),
                Err(_) => errors.push(DefinitionError {
                    file: String::new(),
                    line: 0,
                    column: 0,
                    hook: None,
                    message: format!("previewing project {key} stopped unexpectedly"),
                }),
            }
        }
        if !errors.is_empty() {
            return Validation { errors, previews: Vec::new(), set: None };
        }
        let set = Arc::try_unwrap(proposed).ok();
        Validation { errors, previews, set }
    }

    /// Puts a compiled set in force (see `DefinitionsInForce::activate`)
    /// and recomputes every project's figures.
    pub async fn activate(
        &self,
        set: DefinitionSet,
        origin: Origin,
        write_to: Option<&Path>,
    ) -> Result<Arc<DefinitionSet>, ActivateError> {
        let guard = self.in_force().lock().await;
        let active = self.in_force().activate(&guard, set, origin, write_to).await?;
        drop(guard);
        self.recompute_all().await;
        Ok(active)
    }

    /// Recomputes every project's figures from the facts in memory with the
    /// definitions in force; no Jira call. A project whose facts the
    /// definitions fail on keeps its figures (marked stale by their
    /// version). Returns how many projects were recomputed.
    pub async fn recompute_all(&self) -> usize {
        let mut done = 0;
        for key in self.memory().keys() {
            let lock = self.memory().lock(&key);
            let _guard = lock.lock().await;
            let Some(facts) = self.memory().facts(&key) else { continue };
            let definitions = self.definitions();
            let (defs, tz) = (Arc::clone(&definitions), self.tz());
            let started = std::time::Instant::now();
            match tokio::task::spawn_blocking(move || build_project_teams(&facts, &*defs, tz)).await {
                Ok(Ok(build)) => {
                    let last_harvest = self.store().get(&key).and_then(|d| d.last_harvest);
                    self.store_build(&key, build, last_harvest, definitions.version());
                    done += 1;
                    info!(project = %key, version = definitions.version(), took_ms = started.elapsed().as_millis() as u64, "figures recomputed");
                }
                Ok(Err(e)) => warn!(project = %key, error = %e, "recompute failed; previous figures kept"),
                Err(_) => warn!(project = %key, "recompute stopped unexpectedly; previous figures kept"),
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> DefinitionFile {
        DefinitionFile { name: name.to_owned(), source: String::new() }
    }

    #[test]
    fn file_names_must_be_plain_rhai_names() {
        for ok in ["deployment.rhai", "my-rules_2.rhai", "a.b.rhai"] {
            assert!(check_file_names(&[file(ok)]).is_empty(), "{ok}");
        }
        for bad in ["../x.rhai", "a/b.rhai", ".hidden.rhai", "x.txt", ".rhai", "a..b.rhai", "x.rhai\0", "C:\\x.rhai"] {
            assert_eq!(check_file_names(&[file(bad)]).len(), 1, "{bad}");
        }
        assert_eq!(check_file_names(&[file("a.rhai"), file("a.rhai")])[0].message, "sent twice");
        assert_eq!(check_file_names(&[]).len(), 1);
    }

    #[test]
    fn hook_failures_on_facts_keep_their_place() {
        let err = ClassifyError {
            project: "OPS".into(),
            source: crate::domain::classify::HookError {
                hook: "is_excluded",
                location: Some(crate::domain::classify::SourceLocation {
                    file: "exclusion.rhai".into(),
                    line: 3,
                    column: 9,
                }),
                message: "Property not found: nope".into(),
            },
        };
        let e = located(&err);
        assert_eq!((e.file.as_str(), e.line, e.column), ("exclusion.rhai", 3, 9));
        assert_eq!(e.message, "Property not found: nope (on the facts of project OPS)");
        assert_eq!(e.hook.as_deref(), Some("is_excluded"));
    }
}
