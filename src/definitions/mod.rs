//! The metric definitions: admin-written rhai functions that decide what is
//! a deployment, a failure, an incident, the start of work and so on,
//! compiled once and run sandboxed as [`Hooks`].
//!
//! *Invariant:* this is the only module that builds a rhai `Engine`
//! ([`sandbox`] holds the engine and its limits). It depends on `domain`
//! for the `Hooks` trait and the views, and on nothing that does I/O except
//! [`DefinitionSet::load_dir`], which reads the files.
//!
//! A [`DefinitionSet`] is built in one go: every file is compiled on its
//! own (diagnostics carry that file's line and column), the ten hooks must
//! each be defined once with the right parameters (the optional `teams`
//! hook at most once; without it no issue has a team), and each hook is run on
//! a few built-in sample inputs so that one that fails on ordinary input or
//! returns something other than a bool (an integer from 0 to 90 for
//! `failure_window_days`, valid team names for `teams`) is rejected at
//! load time. Every
//! problem is reported, not just the first. Once built, a set is immutable,
//! `Send + Sync`, and pure: the same input always gives the same answer.

mod compile;
mod hooks;
mod maps;
pub mod memo;
mod prepared;
mod problems;
pub mod properties;
pub mod sandbox;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, FuncArgs, Map, Scope};
use sha2::{Digest, Sha256};

use crate::domain::classify::{
    HookError, Hooks, IssueView, MAX_FAILURE_WINDOW_DAYS, SourceLocation, Teams, TransitionView, VersionView,
    checked_teams,
};
use crate::domain::facts::{FieldValue, Name, StatusCategory};

use self::compile::Layout;
use self::hooks::{HOOK_COUNT, HOOKS, HookSpec, Input, Returns, TEAMS};
pub use self::prepared::{PreparedIssue, PreparedTransition};
pub use self::problems::{DefinitionError, DefinitionFile, DefinitionsLoadError};

/// How much of a failed call's error may be shown: all of it on the
/// built-in samples, only its kind on real facts (a thrown value, an index
/// or a name built at run time may hold issue data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    Full,
    KindOnly,
}

/// The names of the ten hooks every definition set defines.
pub const HOOK_NAMES: [&str; HOOK_COUNT] = [
    "is_excluded",
    "is_deployment",
    "is_deployment_transition",
    "is_failure",
    "is_failure_transition",
    "is_incident",
    "is_restore",
    "is_work_start",
    "is_ai_involved",
    "failure_window_days",
];

/// The shipped default definitions, as built into the binary.
const SHIPPED: [(&str, &str); 5] = [
    ("deployment.rhai", include_str!("../../metrics-defs/deployment.rhai")),
    ("exclusion.rhai", include_str!("../../metrics-defs/exclusion.rhai")),
    ("failure.rhai", include_str!("../../metrics-defs/failure.rhai")),
    ("incident.rhai", include_str!("../../metrics-defs/incident.rhai")),
    ("work.rhai", include_str!("../../metrics-defs/work.rhai")),
];

/// A compiled, checked set of definitions, ready to classify.
pub struct DefinitionSet {
    /// The allow-listed custom fields the issues carry.
    field_names: Arc<[String]>,
    engine: Engine,
    ast: AST,
    files: Vec<DefinitionFile>,
    /// The file names again, shared with the per-call log context.
    file_names: Vec<Arc<str>>,
    /// The content hash.
    hash: String,
    layout: Layout,
    /// The activation number (0 until activated; see [`Self::numbered`]).
    number: u64,
    /// `<number>-<hash>` once numbered, else the hash.
    version: String,
    /// Per hook (in `HOOKS` order): what a cached hook reads, if cacheable.
    plans: [Option<memo::Plan>; HOOK_COUNT],
    caches: [memo::HookCache; HOOK_COUNT],
    /// Per hook: answers by slot, for hooks that read only bools and
    /// categories (empty otherwise).
    slots: [Vec<std::sync::OnceLock<memo::Answer>>; HOOK_COUNT],
    memoise: bool,
    /// Issue records: all issue hook answers by the union of what they read.
    record_plan: Option<memo::Plan>,
    records: memo::RecordCache,
    /// No hook receiving a status change reads the issue's properties.
    issue_free_transitions: bool,
    /// The issue and transition properties prepared for the hooks.
    needed: (prepared::Needed, prepared::Needed),
    /// Whether the optional `teams` hook is defined.
    has_teams: bool,
    /// What `teams` reads, if cacheable, and its cached answers.
    teams_plan: Option<memo::Plan>,
    teams_cache: memo::TeamsCache,
}

impl fmt::Debug for DefinitionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefinitionSet")
            .field("version", &self.version)
            .field("files", &self.files.iter().map(|file| file.name.as_str()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl DefinitionSet {
    /// Compiles and checks `files` (in any order; they are taken in name
    /// order) for issues without allow-listed custom fields. Fails with every
    /// problem found.
    pub fn compile(files: Vec<DefinitionFile>) -> Result<DefinitionSet, Vec<DefinitionError>> {
        Self::compile_for(files, &[])
    }

    /// [`Self::compile`] for issues whose `fields` map holds the custom
    /// fields `field_names` (`jira.extra_fields`): the load-time samples
    /// carry them too, so a hook reading `issue.fields["Team"]` loads, and
    /// one reading a field that is not configured is refused.
    pub fn compile_for(
        mut files: Vec<DefinitionFile>,
        field_names: &[String],
    ) -> Result<DefinitionSet, Vec<DefinitionError>> {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let engine = sandbox::engine();
        let compiled = compile::compile(&engine, &files);
        let mut errors = compiled.errors;
        let Some(ast) = compiled.ast else {
            return Err(errors);
        };
        let hash = content_version(&files);
        let file_names = files.iter().map(|f| Arc::from(f.name.as_str())).collect();
        let plans = prepared::plans(&ast, &files, &compiled.layout);
        let needed = prepared::needed(&plans);
        let has_teams = compiled.layout.hook_files.contains_key(TEAMS.name);
        let teams_plan = prepared::plan(&ast, &files, &compiled.layout, &TEAMS);
        let version = hash.clone();
        let set = DefinitionSet {
            field_names: field_names.into(),
            engine,
            ast,
            files,
            file_names,
            hash,
            layout: compiled.layout,
            number: 0,
            version,
            plans: plans.clone(),
            caches: Default::default(),
            slots: std::array::from_fn(|i| {
                let count = plans[i].as_ref().and_then(|plan| prepared::slot_count(&HOOKS[i], plan)).unwrap_or(0);
                (0..count).map(|_| std::sync::OnceLock::new()).collect()
            }),
            memoise: true,
            record_plan: prepared::record_plan(&plans),
            records: Default::default(),
            issue_free_transitions: !prepared::transition_hooks_read_issue(&plans),
            needed,
            has_teams,
            teams_plan,
            teams_cache: Default::default(),
        };
        errors.extend(set.smoke_run());
        if errors.is_empty() {
            tracing::debug!(version = %set.version, files = set.files.len(), "definitions compiled");
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// Loads every `*.rhai` file of `dir` (other files are ignored) and
    /// compiles them for issues with the custom fields `field_names`.
    pub fn load_dir(dir: impl AsRef<Path>, field_names: &[String]) -> Result<DefinitionSet, DefinitionsLoadError> {
        Self::compile_for(Self::read_dir(dir)?, field_names).map_err(DefinitionsLoadError::Invalid)
    }

    /// The `.rhai` files of `dir`, by name, without compiling them: what
    /// [`Self::load_dir`] compiles.
    pub fn read_dir(dir: impl AsRef<Path>) -> Result<Vec<DefinitionFile>, DefinitionsLoadError> {
        let dir = dir.as_ref();
        let read_dir_error = |source| DefinitionsLoadError::ReadDir { path: dir.to_owned(), source };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
            let path = entry.map_err(read_dir_error)?.path();
            if path.extension().is_some_and(|e| e == "rhai") && path.is_file() {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            return Err(DefinitionsLoadError::NoFiles { path: dir.to_owned() });
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let source = std::fs::read_to_string(&path)
                .map_err(|source| DefinitionsLoadError::ReadFile { path: path.clone(), source })?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            files.push(DefinitionFile { name, source });
        }
        Ok(files)
    }

    /// The allow-listed custom fields the set was compiled for; new
    /// definitions replacing it are compiled for the same.
    pub fn field_names(&self) -> &[String] {
        &self.field_names
    }

    /// The default definitions shipped with the service (the files of
    /// `metrics-defs/`, built in).
    pub fn shipped_files() -> Vec<DefinitionFile> {
        SHIPPED
            .iter()
            .map(|(name, source)| DefinitionFile { name: (*name).to_owned(), source: (*source).to_owned() })
            .collect()
    }

    /// The shipped default definitions, compiled.
    pub fn shipped() -> DefinitionSet {
        Self::compile(Self::shipped_files()).expect("the shipped definitions compile")
    }

    /// The version: `<number>-<hash>` (e.g. `3-1a2b3c4d5e6f`) once the set
    /// has been activated with a number ([`Self::numbered`]), else the
    /// content hash alone.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A content hash of the definitions: SHA-256 over the file names and
    /// sources in name order, the first 12 hex digits.
    pub fn content_hash(&self) -> &str {
        &self.hash
    }

    /// The content hash `files` would have as a set (in any order).
    pub fn content_hash_of(files: &[DefinitionFile]) -> String {
        let mut sorted: Vec<&DefinitionFile> = files.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        content_version_of(sorted.into_iter())
    }

    /// The activation number, 0 when never activated.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The same set with an activation number: its version becomes
    /// `<number>-<hash>`.
    pub fn numbered(mut self, number: u64) -> Self {
        self.renumber(number);
        self
    }

    /// Gives the set another activation number in place.
    pub fn renumber(&mut self, number: u64) {
        self.number = number;
        self.version = format!("{number}-{}", self.hash);
    }

    /// The same set with memoisation of hook answers on or off (on by
    /// default; off only to compare, in tests and benchmarks).
    pub fn memoised(mut self, on: bool) -> Self {
        self.memoise = on;
        if !on {
            self.needed = (prepared::Needed::MAX, prepared::Needed::MAX);
        }
        self
    }

    /// Whether the optional `teams` hook is defined.
    pub fn defines_teams(&self) -> bool {
        self.has_teams
    }

    /// The hooks whose answers are cached, and what each reads, e.g.
    /// `("is_work_start", ["t.to_category"])`.
    pub fn memoised_hooks(&self) -> Vec<(&'static str, Vec<String>)> {
        HOOKS
            .iter()
            .zip(&self.plans)
            .chain(self.has_teams.then_some((&TEAMS, &self.teams_plan)))
            .filter_map(|(spec, plan)| Some((spec.name, prepared::describe(spec, plan.as_ref()?))))
            .collect()
    }

    /// The files, in name order.
    pub fn files(&self) -> &[DefinitionFile] {
        &self.files
    }

    /// Calls `hook` with `args` — real facts — in the sandbox; the answer
    /// must be of the hook's type. A failure says where and what kind,
    /// never a value.
    fn call(&self, hook: &'static str, returns: Returns, args: impl FuncArgs) -> Result<memo::Answer, HookError> {
        self.run(hook, returns, args, Detail::KindOnly).map_err(|problem| hook_error(hook, problem))
    }

    /// Calls `teams` with `args` — real facts — in the sandbox; the answer
    /// must be valid team names. A failure says where and what kind, never
    /// a value.
    fn call_teams(&self, args: impl FuncArgs) -> Result<Teams, HookError> {
        self.run_teams(args, Detail::KindOnly).map_err(|problem| hook_error(TEAMS.name, problem))
    }

    /// Runs `teams`: an array of strings, checked by `checked_teams`. No
    /// message quotes a name, not even on the samples.
    fn run_teams(&self, args: impl FuncArgs, detail: Detail) -> Result<Teams, DefinitionError> {
        let value = self.invoke(TEAMS.name, args, detail)?;
        let refuse = |message: String| {
            let (line, column) = self.definition_position(TEAMS.name);
            DefinitionError { file: self.hook_file(TEAMS.name).to_owned(), line, column, hook: None, message }
        };
        const EXPECTED: &str = "expected an array of team names (strings)";
        let Some(items) = value.read_lock::<rhai::Array>().map(|a| a.clone()) else {
            return Err(refuse(format!("returned {}, {EXPECTED}", describe_type(&value))));
        };
        let mut names = Vec::with_capacity(items.len());
        for item in items {
            match item.into_immutable_string() {
                Ok(name) => names.push(name),
                Err(other) => {
                    return Err(refuse(format!("returned an array holding {}, {EXPECTED}", describe_type_name(other))));
                }
            }
        }
        checked_teams(names.iter().map(|n| n.as_str())).map_err(refuse)
    }

    /// Calls `hook` and explains a failure.
    fn invoke(&self, hook: &'static str, args: impl FuncArgs, detail: Detail) -> Result<Dynamic, DefinitionError> {
        let name = self.layout.hook_files.get(hook).map_or_else(|| Arc::from(""), |&i| Arc::clone(&self.file_names[i]));
        let _call = sandbox::CallGuard::enter(name, hook);
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        self.engine
            .call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &self.ast, hook, args)
            .map_err(|err| self.explain(hook, &err, detail))
    }

    fn run(
        &self,
        hook: &'static str,
        returns: Returns,
        args: impl FuncArgs,
        detail: Detail,
    ) -> Result<memo::Answer, DefinitionError> {
        let file = self.hook_file(hook);
        let value = self.invoke(hook, args, detail)?;
        let answer = match returns {
            Returns::Bool => value.as_bool().map(memo::Answer::from).map_err(|_| "a bool".to_owned()),
            Returns::Days => {
                let expected = format!("an integer from 0 to {MAX_FAILURE_WINDOW_DAYS}");
                match value.as_int() {
                    Ok(days) if (0..=i64::from(MAX_FAILURE_WINDOW_DAYS)).contains(&days) => Ok(days as memo::Answer),
                    // The value itself only on the samples: on real facts it may
                    // come from an issue.
                    Ok(days) if detail == Detail::Full => Err(format!("{expected}, not {days}")),
                    Ok(_) => Err(expected),
                    Err(_) => Err(expected),
                }
            }
            Returns::Teams => unreachable!("`teams` is run by `run_teams`"),
        };
        answer.map_err(|expected| {
            let (line, column) = self.definition_position(hook);
            let message = format!("returned {}, expected {expected}", describe_type(&value));
            DefinitionError { file: file.to_owned(), line, column, hook: None, message }
        })
    }

    /// The file that defines `hook`.
    fn hook_file(&self, hook: &str) -> &str {
        self.layout.hook_files.get(hook).map_or("", |&i| self.files[i].name.as_str())
    }

    /// Line and column of the definition of `hook`.
    fn definition_position(&self, hook: &str) -> (u32, u32) {
        self.layout
            .hook_files
            .get(hook)
            .and_then(|&i| self.layout.fn_positions.get(&(i, hook.to_owned())))
            .copied()
            .unwrap_or((0, 0))
    }

    /// What went wrong in a call of `hook`, located in the innermost script
    /// function's file.
    fn explain(&self, hook: &str, err: &EvalAltResult, detail: Detail) -> DefinitionError {
        let failure = compile::unwind(err);
        // The innermost named script function the error passed through.
        let mut innermost = self.layout.hook_files.get(hook).map(|&i| (i, hook));
        for function in &failure.functions {
            if let Some(&i) = self.layout.fn_files.get(*function) {
                innermost = Some((i, function));
            }
        }
        let file = innermost.map_or("", |(i, _)| self.files[i].name.as_str());
        let (mut line, mut column) = compile::position(failure.inner.position());
        if line == 0 {
            // Limits carry no position: point at the function's definition.
            (line, column) = innermost
                .and_then(|(i, name)| self.layout.fn_positions.get(&(i, name.to_owned())))
                .copied()
                .unwrap_or((0, 0));
        }
        let message = match (sandbox::limit_exceeded(failure.inner), detail) {
            (Some(what), _) => format!("limit exceeded: {what}"),
            (None, Detail::KindOnly) => {
                sandbox::failure_kind(failure.inner, &|name| self.files.iter().any(|f| f.source.contains(name)))
            }
            (None, Detail::Full) => {
                let text = failure.inner.to_string();
                let suffix = format!(" ({})", failure.inner.position());
                text.strip_suffix(&suffix).map_or_else(|| text.clone(), str::to_owned)
            }
        };
        DefinitionError { file: file.to_owned(), line, column, hook: None, message }
    }

    /// Runs a hook taking an issue on a sample.
    fn run_sample(&self, spec: &HookSpec, args: impl FuncArgs) -> Result<(), DefinitionError> {
        match spec.returns {
            Returns::Teams => self.run_teams(args, Detail::Full).map(drop),
            returns => self.run(spec.name, returns, args, Detail::Full).map(drop),
        }
    }

    /// Runs every defined hook on the built-in samples; returns a problem
    /// for each hook that fails or does not answer with a bool.
    fn smoke_run(&self) -> Vec<DefinitionError> {
        let samples = Samples::new(&self.field_names);
        let mut errors = Vec::new();
        for spec in HOOKS.iter().chain([&TEAMS]) {
            if !self.layout.hook_files.contains_key(spec.name) {
                continue;
            }
            let outcome = match spec.input {
                Input::Issue => samples.issues.iter().try_for_each(|(what, issue)| {
                    self.run_sample(spec, (issue.clone(),)).map_err(|e| (e, what.to_string()))
                }),
                Input::IssueAndTransition => samples.issues.iter().try_for_each(|(what_issue, issue)| {
                    samples.transitions.iter().try_for_each(|(what_t, t)| {
                        self.run(spec.name, spec.returns, (issue.clone(), t.clone()), Detail::Full)
                            .map(drop)
                            .map_err(|e| (e, format!("{what_issue}, change {what_t}")))
                    })
                }),
                Input::Version => samples.versions.iter().try_for_each(|(what, version)| {
                    self.run(spec.name, spec.returns, (version.clone(),), Detail::Full)
                        .map(drop)
                        .map_err(|e| (e, what.to_string()))
                }),
            };
            if let Err((problem, sample)) = outcome {
                errors.push(DefinitionError {
                    hook: Some(spec.name.to_owned()),
                    message: format!("{} (on the sample {sample})", problem.message),
                    ..problem
                });
            }
        }
        errors
    }
}

/// A problem of a call on real facts, as the domain's hook error.
fn hook_error(hook: &'static str, problem: DefinitionError) -> HookError {
    let location = (!problem.file.is_empty()).then_some(SourceLocation {
        file: problem.file,
        line: problem.line,
        column: problem.column,
    });
    HookError { hook, location, message: problem.message }
}

/// "a string", "an integer", … for messages about returned values.
fn describe_type(value: &Dynamic) -> String {
    describe_type_name(value.type_name())
}

fn describe_type_name(name: &str) -> String {
    match name {
        "()" => "nothing (`()`)".to_owned(),
        "string" | "ImmutableString" => "a string".to_owned(),
        "i64" | "i32" => "an integer".to_owned(),
        "f64" | "f32" => "a float".to_owned(),
        "char" => "a character".to_owned(),
        "array" => "an array".to_owned(),
        "map" => "a map".to_owned(),
        "Fn" => "a function pointer".to_owned(),
        other => format!("a value of type {other}"),
    }
}

fn content_version(files: &[DefinitionFile]) -> String {
    content_version_of(files.iter())
}

fn content_version_of<'f>(files: impl Iterator<Item = &'f DefinitionFile>) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update((file.name.len() as u64).to_le_bytes());
        hasher.update(file.name.as_bytes());
        hasher.update((file.source.len() as u64).to_le_bytes());
        hasher.update(file.source.as_bytes());
    }
    let mut hex = hex::encode(hasher.finalize());
    hex.truncate(12);
    hex
}

/// The ordinary inputs every hook must handle at load time.
struct Samples {
    issues: Vec<(&'static str, Map)>,
    transitions: Vec<(&'static str, Map)>,
    versions: Vec<(&'static str, Map)>,
}

impl Samples {
    fn new(field_names: &[String]) -> Self {
        let fields: Vec<(Arc<str>, Option<FieldValue>)> =
            field_names.iter().map(|n| (Arc::from(n.as_str()), None)).collect();
        const CREATED: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        const HOUR: i64 = 3_600_000;
        let no_labels: Vec<Name> = Vec::new();
        let labels: Vec<Name> = vec!["backend".into(), "ai-assisted".into()];
        let components: Vec<Name> = vec!["Payments".into()];
        let open_story = IssueView {
            project: "DEMO",
            issue_type: "Story",
            is_subtask: false,
            labels: &no_labels,
            status: "In Progress",
            status_category: StatusCategory::Indeterminate,
            created: CREATED,
            resolved: None,
            fix_versions: vec![],
            affected_versions: vec![],
            app_changes: 0,
            components: &no_labels,
            priority: None,
            fields: &fields,
            transitions: vec![],
        };
        let done_bug = IssueView {
            issue_type: "Bug",
            labels: &labels,
            status: "Done",
            status_category: StatusCategory::Done,
            resolved: Some(CREATED + 30 * HOUR),
            fix_versions: vec!["2.0"],
            affected_versions: vec!["1.9"],
            app_changes: 1,
            components: &components,
            priority: Some("High"),
            ..open_story.clone()
        };
        let open_incident = IssueView { issue_type: "Incident", ..open_story.clone() };
        let start = TransitionView {
            from: "To Do",
            to: "In Progress",
            from_category: StatusCategory::New,
            to_category: StatusCategory::Indeterminate,
            by_app: false,
            at: CREATED + HOUR,
        };
        let finish_by_app = TransitionView {
            from: "In Progress",
            to: "Done",
            from_category: StatusCategory::Indeterminate,
            to_category: StatusCategory::Done,
            by_app: true,
            at: CREATED + 30 * HOUR,
        };
        let released = VersionView {
            name: "1.9",
            released: true,
            release_date: NaiveDate::from_ymd_opt(2026, 1, 5),
            archived: false,
        };
        let unreleased = VersionView { name: "2.0", released: false, release_date: None, archived: false };
        Samples {
            issues: vec![
                ("open story", maps::issue(&open_story)),
                ("done bug with labels, versions, a component and a priority", maps::issue(&done_bug)),
                ("open incident without versions", maps::issue(&open_incident)),
            ],
            transitions: vec![
                ("To Do → In Progress", maps::transition(&start)),
                ("In Progress → Done by an app", maps::transition(&finish_by_app)),
            ],
            versions: vec![
                ("released version with a date", maps::version(&released)),
                ("unreleased version without a date", maps::version(&unreleased)),
            ],
        }
    }
}

impl Hooks for DefinitionSet {
    type Issue = PreparedIssue;
    type Transition = PreparedTransition;

    fn prepare_issue(&self, issue: &IssueView<'_>) -> PreparedIssue {
        let Some(plan) = self.record_plan.as_ref().filter(|_| self.memoise) else {
            return PreparedIssue::new(issue, self.needed.0);
        };
        let known = memo::with_key(|key| {
            prepared::write_record_key_of_view(key, plan, issue);
            self.records.get(key)
        });
        // Every issue hook already answered for this record, and no other
        // hook looks at the issue: nothing needs copying.
        let complete = known.is_some_and(|answers| record_complete(&answers));
        let prepared =
            PreparedIssue::new(issue, if complete && self.issue_free_transitions { 0 } else { self.needed.0 });
        if let Some(answers) = known {
            prepared.answers.set(answers);
        }
        prepared
    }
    fn prepare_transition(&self, t: &TransitionView<'_>) -> PreparedTransition {
        PreparedTransition::new(t, self.needed.1)
    }
    fn is_excluded(&self, issue: &PreparedIssue) -> Result<bool, HookError> {
        self.ask(0, Some(issue), None, None).map(|a| a != 0)
    }
    fn is_deployment(&self, version: &VersionView<'_>) -> Result<bool, HookError> {
        self.ask(1, None, None, Some(version)).map(|a| a != 0)
    }
    fn is_deployment_transition(&self, issue: &PreparedIssue, t: &PreparedTransition) -> Result<bool, HookError> {
        self.ask(2, Some(issue), Some(t), None).map(|a| a != 0)
    }
    fn is_failure(&self, issue: &PreparedIssue) -> Result<bool, HookError> {
        self.ask(IS_FAILURE, Some(issue), None, None).map(|a| a != 0)
    }
    fn is_failure_transition(&self, issue: &PreparedIssue, t: &PreparedTransition) -> Result<bool, HookError> {
        self.ask(4, Some(issue), Some(t), None).map(|a| a != 0)
    }
    fn is_incident(&self, issue: &PreparedIssue) -> Result<bool, HookError> {
        self.ask(5, Some(issue), None, None).map(|a| a != 0)
    }
    fn is_restore(&self, issue: &PreparedIssue, t: &PreparedTransition) -> Result<bool, HookError> {
        self.ask(6, Some(issue), Some(t), None).map(|a| a != 0)
    }
    fn is_work_start(&self, issue: &PreparedIssue, t: &PreparedTransition) -> Result<bool, HookError> {
        self.ask(7, Some(issue), Some(t), None).map(|a| a != 0)
    }
    fn is_ai_involved(&self, issue: &PreparedIssue) -> Result<bool, HookError> {
        self.ask(8, Some(issue), None, None).map(|a| a != 0)
    }
    fn failure_window_days(&self, issue: &PreparedIssue) -> Result<u32, HookError> {
        self.ask(FAILURE_WINDOW_DAYS, Some(issue), None, None).map(u32::from)
    }
    fn teams(&self, issue: &IssueView<'_>) -> Result<Teams, HookError> {
        if !self.has_teams {
            return Ok(Teams::default());
        }
        let Some(plan) = self.teams_plan.as_ref().filter(|_| self.memoise) else {
            return self.call_teams((maps::issue(issue),));
        };
        memo::with_key(|key| {
            prepared::write_record_key_of_view(key, plan, issue);
            if let Some(teams) = self.teams_cache.get(key) {
                return Ok(teams);
            }
            let teams = self.call_teams((maps::issue(issue),))?;
            self.teams_cache.put(key, &teams);
            Ok(teams)
        })
    }
}

/// Indices into `HOOKS` of the two hooks the record fast path relates.
const IS_FAILURE: usize = 3;
const FAILURE_WINDOW_DAYS: usize = 9;

/// Whether a record holds every issue hook answer an issue with it can be
/// asked for: `failure_window_days` only matters for failures.
fn record_complete(answers: &memo::Record) -> bool {
    HOOKS.iter().zip(answers).enumerate().all(|(i, (spec, answer))| {
        spec.input != Input::Issue || answer.is_some() || (i == FAILURE_WINDOW_DAYS && answers[IS_FAILURE] == Some(0))
    })
}

impl DefinitionSet {
    /// Asks hook `HOOKS[index]`: from the cache when the hook is cached and
    /// has seen these inputs, else in the sandbox.
    fn ask(
        &self,
        index: usize,
        issue: Option<&PreparedIssue>,
        t: Option<&PreparedTransition>,
        version: Option<&VersionView<'_>>,
    ) -> Result<memo::Answer, HookError> {
        let spec = &HOOKS[index];
        let run = || match spec.input {
            Input::Issue => self.call(spec.name, spec.returns, (issue.map(PreparedIssue::map).unwrap_or_default(),)),
            Input::IssueAndTransition => self.call(
                spec.name,
                spec.returns,
                (issue.map(PreparedIssue::map).unwrap_or_default(), t.map(PreparedTransition::map).unwrap_or_default()),
            ),
            Input::Version => self.call(spec.name, spec.returns, (version.map(maps::version).unwrap_or_default(),)),
        };
        let Some(plan) = self.plans[index].as_ref().filter(|_| self.memoise) else {
            return run();
        };
        let record = self.record_plan.as_ref().filter(|_| spec.input == Input::Issue).zip(issue);
        if let Some((record_plan, issue)) = record {
            if let Some(answer) = issue.answers.get()[index] {
                return Ok(answer);
            }
            let answer = self.ask_cached(index, plan, Some(issue), None, None, run)?;
            let mut answers = issue.answers.get();
            answers[index] = Some(answer);
            issue.answers.set(answers);
            memo::with_key(|key| {
                prepared::write_record_key(key, record_plan, issue);
                self.records.note(key, index, answer);
            });
            return Ok(answer);
        }
        self.ask_cached(index, plan, issue, t, version, run)
    }

    /// Asks a cached hook: from its slot or its cache, else `run`.
    fn ask_cached(
        &self,
        index: usize,
        plan: &memo::Plan,
        issue: Option<&PreparedIssue>,
        t: Option<&PreparedTransition>,
        version: Option<&VersionView<'_>>,
        run: impl FnOnce() -> Result<memo::Answer, HookError>,
    ) -> Result<memo::Answer, HookError> {
        let spec = &HOOKS[index];
        if !self.slots[index].is_empty() {
            let slot = &self.slots[index][prepared::slot(spec, plan, issue, t, version)];
            if let Some(&answer) = slot.get() {
                return Ok(answer);
            }
            let answer = run()?;
            let _ = slot.set(answer);
            return Ok(answer);
        }
        memo::with_key(|key| {
            prepared::write_key(key, spec, plan, issue, t, version);
            let cache = &self.caches[index];
            if let Some(answer) = cache.get(key) {
                return Ok(answer);
            }
            let answer = run()?;
            cache.put(key, answer);
            Ok(answer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(file: &str, line: u32, column: u32, hook: Option<&str>) -> DefinitionError {
        DefinitionError {
            file: file.into(),
            line,
            column,
            hook: hook.map(Into::into),
            message: "returned a string, expected a bool".into(),
        }
    }

    #[test]
    fn definition_error_display_shows_what_is_known() {
        assert_eq!(
            error("deployment.rhai", 12, 5, Some("is_deployment")).to_string(),
            "deployment.rhai:12:5: hook is_deployment: returned a string, expected a bool"
        );
        assert_eq!(error("a.rhai", 3, 0, None).to_string(), "a.rhai:3: returned a string, expected a bool");
        assert_eq!(error("a.rhai", 0, 0, None).to_string(), "a.rhai: returned a string, expected a bool");
        assert_eq!(
            error("", 0, 0, Some("is_restore")).to_string(),
            "hook is_restore: returned a string, expected a bool"
        );
    }

    #[test]
    fn load_error_lists_every_problem() {
        let err = DefinitionsLoadError::Invalid(vec![error("a.rhai", 1, 2, None), error("", 0, 0, Some("is_restore"))]);
        assert_eq!(
            err.to_string(),
            "2 problems in the definitions:\n  a.rhai:1:2: returned a string, expected a bool\n  \
             hook is_restore: returned a string, expected a bool"
        );
    }

    #[test]
    fn hook_table_matches_the_public_names() {
        assert_eq!(HOOKS.map(|h| h.name), HOOK_NAMES);
    }

    #[test]
    fn describes_returned_types_in_words() {
        assert_eq!(describe_type(&Dynamic::from("x".to_owned())), "a string");
        assert_eq!(describe_type(&Dynamic::from_int(1)), "an integer");
        assert_eq!(describe_type(&Dynamic::UNIT), "nothing (`()`)");
        assert_eq!(describe_type(&Dynamic::from_map(Map::new())), "a map");
        assert_eq!(describe_type(&Dynamic::from_array(vec![])), "an array");
    }
}
