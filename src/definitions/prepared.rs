//! What a definition set prepares once per issue and per status change: the
//! values the hooks' maps are made of, with the rhai map itself built only
//! when a hook actually runs (a cached answer needs no map), and the cache
//! keys made of exactly the properties a hook reads.
//!
//! When every hook that receives an issue is cached, only the properties
//! those hooks read are copied (and put in the map on a cache miss): the
//! scan proved that nothing else is ever looked at. Otherwise everything is.
//!
//! Must not build a rhai `Engine` or run a hook; it depends on the property
//! tables, `memo` and the domain's views only.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::OnceLock;

use chrono::NaiveDate;
use rhai::{AST, Map};

use super::compile::Layout;
use super::hooks::{HOOK_COUNT, HOOKS, HookSpec, Input};
use super::memo::{self, Plan};
use super::problems::DefinitionFile;
use super::properties::{self, ISSUE, ISSUE_NAMES, Kind, TRANSITION, TRANSITION_NAMES, VERSION, VERSION_NAMES, Value};
use crate::domain::classify::{IssueView, TransitionView, VersionView};
use crate::domain::facts::{FieldValue, Millis, Name, StatusCategory};

/// A set of property indices, as bits.
pub(super) type Needed = u16;
const ALL: Needed = Needed::MAX;

fn has(needed: Needed, property: usize) -> bool {
    needed & (1 << property) != 0
}

/// A copied string: inline when short (status, type and priority names
/// are), so that preparing a status change allocates nothing.
type Text = smartstring::alias::String;

/// A property's value, owned. Only the properties some hook reads are
/// copied; the others are `Absent`, so that preparing an issue whose
/// answers are all known copies nothing.
#[derive(Debug)]
enum Owned {
    Absent,
    Text(Text),
    Texts(Vec<Name>),
    Bool(bool),
    Int(i64),
    OptionalInt(Option<i64>),
    Category(StatusCategory),
    OptionalDate(Option<NaiveDate>),
    OptionalText(Option<Text>),
    Fields(Vec<(Arc<str>, Option<FieldValue>)>),
}

impl Owned {
    fn of(value: Value<'_>) -> Self {
        match value {
            Value::Text(s) => Owned::Text(s.into()),
            Value::Labels(items) => Owned::Texts(items.to_vec()),
            Value::Names(items) => Owned::Texts(items.iter().map(|s| Name::from(*s)).collect()),
            Value::Bool(b) => Owned::Bool(b),
            Value::Int(n) => Owned::Int(n),
            Value::OptionalInt(n) => Owned::OptionalInt(n),
            Value::Category(c) => Owned::Category(c),
            Value::OptionalDate(d) => Owned::OptionalDate(d),
            Value::OptionalText(s) => Owned::OptionalText(s.map(Text::from)),
            Value::Fields(fields) => Owned::Fields(fields.to_vec()),
        }
    }

    fn value(&self) -> Option<Value<'_>> {
        Some(match self {
            Owned::Absent => return None,
            Owned::Text(s) => Value::Text(s),
            Owned::Texts(items) => Value::Labels(items),
            Owned::Bool(b) => Value::Bool(*b),
            Owned::Int(n) => Value::Int(*n),
            Owned::OptionalInt(n) => Value::OptionalInt(*n),
            Owned::Category(c) => Value::Category(*c),
            Owned::OptionalDate(d) => Value::OptionalDate(*d),
            Owned::OptionalText(s) => Value::OptionalText(s.as_deref()),
            Owned::Fields(fields) => Value::Fields(fields),
        })
    }
}

/// Property `p`, read by `read` and copied when `needed` holds it.
fn copied<'v>(needed: Needed, p: usize, read: impl FnOnce() -> Value<'v>) -> Owned {
    if has(needed, p) { Owned::of(read()) } else { Owned::Absent }
}

/// The map of the copied properties of `values`.
fn map_of(values: &[Owned], names: &[&'static str]) -> Map {
    values.iter().zip(names).filter_map(|(value, &name)| Some((name.into(), value.value()?.dynamic()))).collect()
}

/// An issue, owned, for the hooks: the needed properties only, and none
/// at all (no allocation) when every answer is already known.
#[derive(Debug)]
pub struct PreparedIssue {
    values: Option<Box<[Owned; ISSUE.len()]>>,
    map: OnceLock<Map>,
    /// Answers of the issue hooks already known for this issue's record.
    pub(super) answers: Cell<memo::Record>,
}

impl PreparedIssue {
    pub(super) fn new(v: &IssueView<'_>, needed: Needed) -> Self {
        Self {
            values: (needed != 0)
                .then(|| Box::new(std::array::from_fn(|p| copied(needed, p, || properties::issue(v, p))))),
            map: OnceLock::new(),
            answers: Cell::new([None; HOOK_COUNT]),
        }
    }

    fn value(&self, property: usize) -> Option<Value<'_>> {
        self.values.as_ref()?[property].value()
    }

    /// The map the hooks receive (built on first use).
    pub fn map(&self) -> Map {
        self.map.get_or_init(|| self.values.as_ref().map(|v| map_of(&v[..], &ISSUE_NAMES)).unwrap_or_default()).clone()
    }
}

/// A status change, owned, for the hooks: its names copied only when a
/// hook reads them (inline when short), the rest always (copying them costs
/// nothing), so that preparing one allocates nothing.
#[derive(Debug)]
pub struct PreparedTransition {
    needed: Needed,
    from: Text,
    to: Text,
    from_category: StatusCategory,
    to_category: StatusCategory,
    by_app: bool,
    at: Millis,
}

impl PreparedTransition {
    pub(super) fn new(t: &TransitionView<'_>, needed: Needed) -> Self {
        let text = |p: usize, s: &str| if has(needed, p) { Text::from(s) } else { Text::new() };
        Self {
            needed,
            from: text(0, t.from),
            to: text(1, t.to),
            from_category: t.from_category,
            to_category: t.to_category,
            by_app: t.by_app,
            at: t.at,
        }
    }

    /// Property `property` in the order of `properties::TRANSITION` (a
    /// test compares the map with the table's), when copied.
    fn value(&self, property: usize) -> Option<Value<'_>> {
        has(self.needed, property).then(|| match property {
            0 => Value::Text(&self.from),
            1 => Value::Text(&self.to),
            2 => Value::Category(self.from_category),
            3 => Value::Category(self.to_category),
            4 => Value::Bool(self.by_app),
            _ => Value::Int(self.at),
        })
    }

    /// The map the hooks receive: the copied properties.
    pub fn map(&self) -> Map {
        (0..TRANSITION.len()).filter_map(|p| Some((TRANSITION_NAMES[p].into(), self.value(p)?.dynamic()))).collect()
    }
}

/// Appends a read property to a key: its length when only its length is
/// used (and it has one), else its value.
fn push(key: &mut String, value: Value<'_>, length_only: bool) {
    match value.script_len() {
        Some(len) if length_only => memo::push_int(key, len as i64),
        _ => value.push_key(key),
    }
}

/// The value of property `property` of parameter `param` of a call.
fn read<'a>(
    spec: &HookSpec,
    param: usize,
    property: usize,
    issue: Option<&'a PreparedIssue>,
    t: Option<&'a PreparedTransition>,
    version: Option<&'a VersionView<'_>>,
) -> Option<Value<'a>> {
    match (spec.input, param) {
        (Input::Version, _) => version.map(|v| properties::version(v, property)),
        (_, 0) => issue.and_then(|i| i.value(property)),
        _ => t.and_then(|t| t.value(property)),
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
            if let Some(value) = read(spec, param, property, issue, t, version) {
                push(key, value, plan.lengths_only[param].contains(&property));
            }
        }
    }
}

fn properties(spec: &HookSpec) -> Vec<&'static [&'static str]> {
    match spec.input {
        Input::Issue => vec![&ISSUE_NAMES],
        Input::IssueAndTransition => vec![&ISSUE_NAMES, &TRANSITION_NAMES],
        Input::Version => vec![&VERSION_NAMES],
    }
}

/// The plan of each hook, in `HOOKS` order: `None` for a hook that must
/// not be cached (or that is not defined correctly).
pub(super) fn plans(ast: &AST, files: &[DefinitionFile], layout: &Layout) -> [Option<Plan>; HOOK_COUNT] {
    std::array::from_fn(|i| plan(ast, files, layout, &HOOKS[i]))
}

/// The plan of one hook: `None` when it must not be cached (or is not
/// defined correctly).
pub(super) fn plan(ast: &AST, files: &[DefinitionFile], layout: &Layout, spec: &HookSpec) -> Option<Plan> {
    let mut defined = ast.iter_functions().filter(|f| f.name == spec.name);
    let (Some(function), None) = (defined.next(), defined.next()) else { return None };
    if function.params.len() != spec.arity() {
        return None;
    }
    let &file = layout.hook_files.get(spec.name)?;
    let &(line, column) = layout.fn_positions.get(&(file, spec.name.to_owned()))?;
    let source = &files[file].source;
    let body = memo::offset(source, line, column).and_then(|at| memo::body_at(source, at))?;
    let params: Vec<(&str, &[&str])> = function.params.iter().copied().zip(properties(spec)).collect();
    memo::plan(body, &params)
}

/// The issue and transition properties the hooks can read: everything
/// unless every hook receiving that kind of map is cached, else the union
/// of what they read.
pub(super) fn needed(plans: &[Option<Plan>; HOOK_COUNT]) -> (Needed, Needed) {
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
pub(super) fn record_plan(plans: &[Option<Plan>; HOOK_COUNT]) -> Option<Plan> {
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
        push(key, properties::issue(v, property), plan.lengths_only[0].contains(&property));
    }
}

/// Whether a hook receiving a status change may read the issue's
/// properties (then an issue's values are always copied).
pub(super) fn transition_hooks_read_issue(plans: &[Option<Plan>; HOOK_COUNT]) -> bool {
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

/// The type of property `property` of parameter `param` of a hook.
fn kind(spec: &HookSpec, param: usize, property: usize) -> Kind {
    match (spec.input, param) {
        (Input::Version, _) => VERSION[property].kind,
        (_, 0) => ISSUE[property].kind,
        _ => TRANSITION[property].kind,
    }
}

/// How many slots a hook's answers need when every property it reads has
/// a small domain (1 for a hook that reads nothing); `None` otherwise.
pub(super) fn slot_count(spec: &HookSpec, plan: &Plan) -> Option<usize> {
    let mut count = 1usize;
    for (param, reads) in plan.reads.iter().enumerate() {
        for &property in reads {
            count = count.checked_mul(kind(spec, param, property).small_domain()?)?;
        }
    }
    (count <= 64).then_some(count)
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
            let size = kind(spec, param, property).small_domain().unwrap_or(1);
            let value = read(spec, param, property, issue, t, version).map_or(0, Value::slot);
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
        let labels: Vec<Name> = vec!["ai-assisted".into(), "x".into()];
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
            components: &labels,
            priority: Some("High"),
            fields: &[],
            transitions: vec![],
        };
        let all: Vec<usize> = (0..ISSUE.len()).collect();
        for lengths_only in [vec![], vec![0, 3, 9]] {
            let plan = Plan { reads: vec![all.clone()], lengths_only: vec![lengths_only] };
            let (mut a, mut b) = (String::new(), String::new());
            write_record_key_of_view(&mut a, &plan, &view);
            write_record_key(&mut b, &plan, &PreparedIssue::new(&view, ALL));
            assert_eq!(a, b);
        }
        // The fast path hands hooks the very maps built from the views.
        assert_eq!(
            format!("{:?}", PreparedIssue::new(&view, ALL).map()),
            format!("{:?}", super::super::maps::issue(&view))
        );
        let t = TransitionView {
            from: "To Do",
            to: "Done",
            from_category: StatusCategory::New,
            to_category: StatusCategory::Done,
            by_app: true,
            at: 7,
        };
        assert_eq!(
            format!("{:?}", PreparedTransition::new(&t, ALL).map()),
            format!("{:?}", super::super::maps::transition(&t))
        );
    }
}
