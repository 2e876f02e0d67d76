//! What a definition set prepares once per issue and per status change: the
//! values the hooks' maps are made of, with the rhai map itself built only
//! when a hook actually runs (a cached answer needs no map), and the cache
//! keys made of exactly the properties a hook reads.
//!
//! When every hook that receives an issue is cached, only the properties
//! those hooks read are copied (and put in the map on a cache miss): the
//! scan proved that nothing else is ever looked at. Otherwise everything is.

use std::cell::Cell;
use std::sync::OnceLock;

use rhai::{Array, Dynamic, AST, Map};

use super::compile::Layout;
use super::memo::{self, ISSUE_PROPERTIES, Plan, TRANSITION_PROPERTIES, VERSION_PROPERTIES};
use super::{DefinitionFile, HOOKS, HookSpec, Input};
use crate::domain::classify::{IssueView, TransitionView, VersionView};
use crate::domain::facts::{Millis, StatusCategory};

/// A set of property indices, as bits.
pub(super) type Needed = u16;
const ALL: Needed = Needed::MAX;

fn string(s: &str) -> Dynamic {
    Dynamic::from(s.to_owned())
}

fn strings(items: &[String]) -> Dynamic {
    Dynamic::from_array(items.iter().map(|s| string(s)).collect::<Array>())
}

/// An issue, owned, for the hooks: the needed properties only.
#[derive(Debug)]
pub struct PreparedIssue {
    needed: Needed,
    project: String,
    issue_type: String,
    is_subtask: bool,
    labels: Vec<String>,
    status: String,
    status_category: StatusCategory,
    created: Millis,
    resolved: Option<Millis>,
    fix_versions: Vec<String>,
    affected_versions: Vec<String>,
    app_changes: u32,
    map: OnceLock<Map>,
    /// Answers of the issue hooks already known for this issue's record.
    pub(super) answers: Cell<[Option<bool>; 9]>,
}

fn has(needed: Needed, property: usize) -> bool {
    needed & (1 << property) != 0
}

impl PreparedIssue {
    pub(super) fn new(v: &IssueView<'_>, needed: Needed) -> Self {
        let owned = |property: usize, s: &str| if has(needed, property) { s.to_owned() } else { String::new() };
        let owned_all = |property: usize, items: &[&str]| {
            if has(needed, property) { items.iter().map(|s| (*s).to_owned()).collect() } else { Vec::new() }
        };
        Self {
            needed,
            project: owned(0, v.project),
            issue_type: owned(1, v.issue_type),
            is_subtask: v.is_subtask,
            labels: if has(needed, 3) { v.labels.to_vec() } else { Vec::new() },
            status: owned(4, v.status),
            status_category: v.status_category,
            created: v.created,
            resolved: v.resolved,
            fix_versions: owned_all(8, &v.fix_versions),
            affected_versions: owned_all(9, &v.affected_versions),
            app_changes: v.app_changes,
            map: OnceLock::new(),
            answers: Cell::new([None; 9]),
        }
    }

    fn value(&self, property: usize) -> Dynamic {
        match property {
            0 => string(&self.project),
            1 => string(&self.issue_type),
            2 => Dynamic::from_bool(self.is_subtask),
            3 => strings(&self.labels),
            4 => string(&self.status),
            5 => string(self.status_category.key()),
            6 => Dynamic::from_int(self.created),
            7 => self.resolved.map_or(Dynamic::UNIT, Dynamic::from_int),
            8 => strings(&self.fix_versions),
            9 => strings(&self.affected_versions),
            _ => Dynamic::from_int(i64::from(self.app_changes)),
        }
    }

    /// The map the hooks receive (built on first use).
    pub fn map(&self) -> Map {
        self.map
            .get_or_init(|| {
                (0..ISSUE_PROPERTIES.len())
                    .filter(|&p| has(self.needed, p))
                    .map(|p| (ISSUE_PROPERTIES[p].into(), self.value(p)))
                    .collect()
            })
            .clone()
    }

    /// The length of a string or array property (0 for others).
    fn len(&self, property: usize) -> usize {
        match property {
            0 => self.project.chars().count(),
            1 => self.issue_type.chars().count(),
            3 => self.labels.len(),
            4 => self.status.chars().count(),
            5 => self.status_category.key().len(),
            8 => self.fix_versions.len(),
            9 => self.affected_versions.len(),
            _ => 0,
        }
    }

    fn push(&self, key: &mut String, property: usize) {
        match property {
            0 => memo::push_str(key, &self.project),
            1 => memo::push_str(key, &self.issue_type),
            2 => memo::push_bool(key, self.is_subtask),
            3 => memo::push_strs(key, self.labels.iter().map(String::as_str)),
            4 => memo::push_str(key, &self.status),
            5 => memo::push_str(key, self.status_category.key()),
            6 => memo::push_int(key, self.created),
            7 => match self.resolved {
                Some(at) => memo::push_int(key, at),
                None => memo::push_unit(key),
            },
            8 => memo::push_strs(key, self.fix_versions.iter().map(String::as_str)),
            9 => memo::push_strs(key, self.affected_versions.iter().map(String::as_str)),
            _ => memo::push_int(key, i64::from(self.app_changes)),
        }
    }
}

/// A status change, owned, for the hooks: the needed properties only.
#[derive(Debug)]
pub struct PreparedTransition {
    needed: Needed,
    from: String,
    to: String,
    from_category: StatusCategory,
    to_category: StatusCategory,
    by_app: bool,
    at: Millis,
    map: OnceLock<Map>,
}

impl PreparedTransition {
    pub(super) fn new(t: &TransitionView<'_>, needed: Needed) -> Self {
        let owned = |property: usize, s: &str| if has(needed, property) { s.to_owned() } else { String::new() };
        Self {
            needed,
            from: owned(0, t.from),
            to: owned(1, t.to),
            from_category: t.from_category,
            to_category: t.to_category,
            by_app: t.by_app,
            at: t.at,
            map: OnceLock::new(),
        }
    }

    fn value(&self, property: usize) -> Dynamic {
        match property {
            0 => string(&self.from),
            1 => string(&self.to),
            2 => string(self.from_category.key()),
            3 => string(self.to_category.key()),
            4 => Dynamic::from_bool(self.by_app),
            _ => Dynamic::from_int(self.at),
        }
    }

    /// The map the hooks receive (built on first use).
    pub fn map(&self) -> Map {
        self.map
            .get_or_init(|| {
                (0..TRANSITION_PROPERTIES.len())
                    .filter(|&p| has(self.needed, p))
                    .map(|p| (TRANSITION_PROPERTIES[p].into(), self.value(p)))
                    .collect()
            })
            .clone()
    }

    /// The length of a string property (0 for others).
    fn len(&self, property: usize) -> usize {
        match property {
            0 => self.from.chars().count(),
            1 => self.to.chars().count(),
            2 => self.from_category.key().len(),
            3 => self.to_category.key().len(),
            _ => 0,
        }
    }

    fn push(&self, key: &mut String, property: usize) {
        match property {
            0 => memo::push_str(key, &self.from),
            1 => memo::push_str(key, &self.to),
            2 => memo::push_str(key, self.from_category.key()),
            3 => memo::push_str(key, self.to_category.key()),
            4 => memo::push_bool(key, self.by_app),
            _ => memo::push_int(key, self.at),
        }
    }
}

fn push_version(key: &mut String, v: &VersionView<'_>, property: usize) {
    match property {
        0 => memo::push_str(key, v.name),
        1 => memo::push_bool(key, v.released),
        2 => match v.release_date {
            Some(d) => memo::push_str(key, &d.format("%Y-%m-%d").to_string()),
            None => memo::push_unit(key),
        },
        _ => memo::push_bool(key, v.archived),
    }
}

/// The key of one call of a cached hook: the values of the properties its
/// plan reads, parameter by parameter.
pub(super) fn write_key(
    key: &mut String,
    spec: &HookSpec,
    plan: &Plan,
    issue: Option<&PreparedIssue>,
    t: Option<&PreparedTransition>,
    version: Option<&VersionView<'_>>,
) {
    for (param, reads) in plan.reads.iter().enumerate() {
        key.push('|');
        for &property in reads {
            // `release_date` may be `()`, whose length is an error: keyed by value.
            let maybe_unit = spec.input == Input::Version && property == 2;
            if plan.lengths_only[param].contains(&property) && !maybe_unit {
                let len = match (spec.input, param) {
                    (Input::Version, _) => version.map_or(0, |v| if property == 0 { v.name.chars().count() } else { 0 }),
                    (_, 0) => issue.map_or(0, |i| i.len(property)),
                    _ => t.map_or(0, |t| t.len(property)),
                };
                memo::push_int(key, len as i64);
                continue;
            }
            match (spec.input, param) {
                (Input::Version, _) => {
                    if let Some(v) = version {
                        push_version(key, v, property);
                    }
                }
                (_, 0) => {
                    if let Some(i) = issue {
                        i.push(key, property);
                    }
                }
                _ => {
                    if let Some(t) = t {
                        t.push(key, property);
                    }
                }
            }
        }
    }
}

fn properties(spec: &HookSpec) -> Vec<&'static [&'static str]> {
    match spec.input {
        Input::Issue => vec![&ISSUE_PROPERTIES],
        Input::IssueAndTransition => vec![&ISSUE_PROPERTIES, &TRANSITION_PROPERTIES],
        Input::Version => vec![&VERSION_PROPERTIES],
    }
}

/// The plan of each hook, in `HOOKS` order: `None` for a hook that must
/// not be cached (or that is not defined correctly).
pub(super) fn plans(ast: &AST, files: &[DefinitionFile], layout: &Layout) -> [Option<Plan>; 9] {
    let mut plans: [Option<Plan>; 9] = Default::default();
    for (slot, spec) in plans.iter_mut().zip(&HOOKS) {
        let mut defined = ast.iter_functions().filter(|f| f.name == spec.name);
        let (Some(function), None) = (defined.next(), defined.next()) else { continue };
        if function.params.len() != spec.arity() {
            continue;
        }
        let Some(&file) = layout.hook_files.get(spec.name) else { continue };
        let Some(&(line, column)) = layout.fn_positions.get(&(file, spec.name.to_owned())) else { continue };
        let source = &files[file].source;
        let Some(body) = memo::offset(source, line, column).and_then(|at| memo::body_at(source, at)) else {
            continue;
        };
        let params: Vec<(&str, &[&str])> = function.params.iter().copied().zip(properties(spec)).collect();
        *slot = memo::plan(body, &params);
    }
    plans
}

/// The issue and transition properties the hooks can read: everything
/// unless every hook receiving that kind of map is cached, else the union
/// of what they read.
pub(super) fn needed(plans: &[Option<Plan>; 9]) -> (Needed, Needed) {
    let (mut issue, mut transition): (Needed, Needed) = (0, 0);
    for (spec, plan) in HOOKS.iter().zip(plans) {
        let takes_issue = matches!(spec.input, Input::Issue | Input::IssueAndTransition);
        let takes_transition = spec.input == Input::IssueAndTransition;
        match plan {
            None => {
                if takes_issue {
                    issue = ALL;
                }
                if takes_transition {
                    transition = ALL;
                }
            }
            Some(plan) => {
                if takes_issue {
                    issue |= plan.reads[0].iter().fold(0, |m, &p| m | (1 << p));
                }
                if takes_transition {
                    transition |= plan.reads[1].iter().fold(0, |m, &p| m | (1 << p));
                }
            }
        }
    }
    (issue, transition)
}

/// The plan of the issue records: the union of what the issue hooks read
/// (a property keyed by its length only when every hook reading it uses
/// only its length); `None` unless every issue hook is cached.
pub(super) fn record_plan(plans: &[Option<Plan>; 9]) -> Option<Plan> {
    let (mut reads, mut full) = (Vec::new(), Vec::new());
    for (spec, plan) in HOOKS.iter().zip(plans) {
        if spec.input != Input::Issue {
            continue;
        }
        let plan = plan.as_ref()?;
        for &p in &plan.reads[0] {
            if !reads.contains(&p) {
                reads.push(p);
            }
            if !plan.lengths_only[0].contains(&p) && !full.contains(&p) {
                full.push(p);
            }
        }
    }
    reads.sort_unstable();
    let lengths_only = reads.iter().copied().filter(|p| !full.contains(p)).collect();
    Some(Plan { reads: vec![reads], lengths_only: vec![lengths_only] })
}

/// The record key of an issue, from its view, under [`record_plan`]: the
/// same key [`write_record_key`] writes for the prepared issue.
pub(super) fn write_record_key_of_view(key: &mut String, plan: &Plan, v: &IssueView<'_>) {
    key.push('|');
    for &property in &plan.reads[0] {
        if plan.lengths_only[0].contains(&property) {
            let len = match property {
                0 => v.project.chars().count(),
                1 => v.issue_type.chars().count(),
                3 => v.labels.len(),
                4 => v.status.chars().count(),
                5 => v.status_category.key().len(),
                8 => v.fix_versions.len(),
                9 => v.affected_versions.len(),
                _ => 0,
            };
            memo::push_int(key, len as i64);
            continue;
        }
        match property {
            0 => memo::push_str(key, v.project),
            1 => memo::push_str(key, v.issue_type),
            2 => memo::push_bool(key, v.is_subtask),
            3 => memo::push_strs(key, v.labels.iter().map(String::as_str)),
            4 => memo::push_str(key, v.status),
            5 => memo::push_str(key, v.status_category.key()),
            6 => memo::push_int(key, v.created),
            7 => match v.resolved {
                Some(at) => memo::push_int(key, at),
                None => memo::push_unit(key),
            },
            8 => memo::push_strs(key, v.fix_versions.iter().copied()),
            9 => memo::push_strs(key, v.affected_versions.iter().copied()),
            _ => memo::push_int(key, i64::from(v.app_changes)),
        }
    }
}

/// Whether a hook receiving a status change may read the issue's
/// properties (then an issue's values are always copied).
pub(super) fn transition_hooks_read_issue(plans: &[Option<Plan>; 9]) -> bool {
    HOOKS.iter().zip(plans).any(|(spec, plan)| {
        spec.input == Input::IssueAndTransition && plan.as_ref().is_none_or(|p| !p.reads[0].is_empty())
    })
}

/// The record key of an issue under [`record_plan`].
pub(super) fn write_record_key(key: &mut String, plan: &Plan, issue: &PreparedIssue) {
    write_key(key, &HOOKS[0], plan, Some(issue), None, None);
}

/// What a cached hook reads, as `param.property` names.
pub(super) fn describe(spec: &HookSpec, plan: &Plan) -> Vec<String> {
    let params: &[&str] = match spec.input {
        Input::Issue => &["issue"],
        Input::IssueAndTransition => &["issue", "t"],
        Input::Version => &["version"],
    };
    plan.reads
        .iter()
        .zip(params.iter().zip(properties(spec)))
        .flat_map(|(reads, (param, props))| reads.iter().map(move |&i| format!("{param}.{}", props[i])))
        .collect()
}

/// The number of values a property can take when it is small (a bool or a
/// status category), for answers kept in slots instead of a hash map.
fn domain(spec: &HookSpec, param: usize, property: usize) -> Option<usize> {
    match (spec.input, param, property) {
        (Input::Version, _, 1 | 3) => Some(2),          // released, archived
        (Input::Version, _, _) => None,
        (_, 0, 2) => Some(2),                           // issue.is_subtask
        (_, 0, 5) => Some(4),                           // issue.status_category
        (Input::IssueAndTransition, 1, 2 | 3) => Some(4), // t.from_category, t.to_category
        (Input::IssueAndTransition, 1, 4) => Some(2),   // t.by_app
        _ => None,
    }
}

/// How many slots a hook's answers need when every property it reads has
/// a small domain (1 for a hook that reads nothing); `None` otherwise.
pub(super) fn slot_count(spec: &HookSpec, plan: &Plan) -> Option<usize> {
    let mut count = 1usize;
    for (param, reads) in plan.reads.iter().enumerate() {
        for &property in reads {
            count = count.checked_mul(domain(spec, param, property)?)?;
        }
    }
    (count <= 64).then_some(count)
}

fn category_index(c: StatusCategory) -> usize {
    match c {
        StatusCategory::New => 0,
        StatusCategory::Indeterminate => 1,
        StatusCategory::Done => 2,
        StatusCategory::Undefined => 3,
    }
}

/// The slot of one call of a hook for which [`slot_count`] is `Some`.
pub(super) fn slot(
    spec: &HookSpec,
    plan: &Plan,
    issue: Option<&PreparedIssue>,
    t: Option<&PreparedTransition>,
    version: Option<&VersionView<'_>>,
) -> usize {
    let mut index = 0usize;
    for (param, reads) in plan.reads.iter().enumerate() {
        for &property in reads {
            let (size, value) = match (spec.input, param, property) {
                (Input::Version, _, 1) => (2, version.is_some_and(|v| v.released) as usize),
                (Input::Version, _, _) => (2, version.is_some_and(|v| v.archived) as usize),
                (_, 0, 2) => (2, issue.is_some_and(|i| i.is_subtask) as usize),
                (_, 0, _) => (4, issue.map_or(0, |i| category_index(i.status_category))),
                (_, _, 2) => (4, t.map_or(0, |t| category_index(t.from_category))),
                (_, _, 3) => (4, t.map_or(0, |t| category_index(t.to_category))),
                _ => (2, t.is_some_and(|t| t.by_app) as usize),
            };
            index = index * size + value;
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_from_views_and_prepared_issues_agree() {
        let labels = vec!["ai-assisted".to_owned(), "x".to_owned()];
        let view = IssueView {
            project: "OPS",
            issue_type: "Bug",
            is_subtask: true,
            labels: &labels,
            status: "Done",
            status_category: StatusCategory::Done,
            created: 1_000,
            resolved: Some(-5),
            fix_versions: vec!["1.0"],
            affected_versions: vec!["0.9", "0.8"],
            app_changes: 70_000,
            transitions: vec![],
        };
        let all: Vec<usize> = (0..ISSUE_PROPERTIES.len()).collect();
        for lengths_only in [vec![], vec![0, 3, 9]] {
            let plan = Plan { reads: vec![all.clone()], lengths_only: vec![lengths_only] };
            let (mut a, mut b) = (String::new(), String::new());
            write_record_key_of_view(&mut a, &plan, &view);
            write_record_key(&mut b, &plan, &PreparedIssue::new(&view, ALL));
            assert_eq!(a, b);
        }
    }
}
