//! The definitions module from the outside: the shipped defaults agree with
//! the reference rules, diagnostics are precise and complete, hostile
//! scripts are stopped, and hooks are pure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use jira_dora::definitions::{DefinitionError, DefinitionFile, DefinitionSet, DefinitionsLoadError};
use jira_dora::domain::classify::{
    DefaultRules, Hooks, IssueView, SourceLocation, TransitionView, VersionView, classify_issue,
};
use jira_dora::domain::facts::{Name, StatusCategory};

// ---------------------------------------------------------------------------
// Helpers

/// An issue with owned data, to build `IssueView`s from.
#[derive(Debug, Clone)]
struct Issue {
    project: String,
    issue_type: String,
    is_subtask: bool,
    labels: Vec<Name>,
    status_category: StatusCategory,
    created: i64,
    resolved: Option<i64>,
    fix_versions: Vec<String>,
    affected_versions: Vec<String>,
    transitions: Vec<Change>,
}

#[derive(Debug, Clone)]
struct Change {
    from: String,
    to: String,
    from_category: StatusCategory,
    to_category: StatusCategory,
    by_app: bool,
    at: i64,
}

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const HOUR: i64 = 3_600_000;

fn change(from: &str, to: &str, from_category: StatusCategory, to_category: StatusCategory, at: i64) -> Change {
    Change { from: from.into(), to: to.into(), from_category, to_category, by_app: false, at }
}

fn issue(issue_type: &str) -> Issue {
    Issue {
        project: "DEMO".into(),
        issue_type: issue_type.into(),
        is_subtask: false,
        labels: vec![],
        status_category: StatusCategory::Done,
        created: T0,
        resolved: Some(T0 + 10 * HOUR),
        fix_versions: vec![],
        affected_versions: vec![],
        transitions: vec![
            change("To Do", "In Progress", StatusCategory::New, StatusCategory::Indeterminate, T0 + HOUR),
            change("In Progress", "Done", StatusCategory::Indeterminate, StatusCategory::Done, T0 + 10 * HOUR),
        ],
    }
}

impl Issue {
    fn labels(mut self, labels: &[&str]) -> Self {
        self.labels = labels.iter().map(|l| Name::from(*l)).collect();
        self
    }
    fn view(&self) -> IssueView<'_> {
        IssueView {
            project: &self.project,
            issue_type: &self.issue_type,
            is_subtask: self.is_subtask,
            labels: &self.labels,
            status: match self.status_category {
                StatusCategory::Done => "Done",
                StatusCategory::Indeterminate => "In Progress",
                _ => "To Do",
            },
            status_category: self.status_category,
            created: self.created,
            resolved: self.resolved,
            fix_versions: self.fix_versions.iter().map(String::as_str).collect(),
            affected_versions: self.affected_versions.iter().map(String::as_str).collect(),
            app_changes: self.transitions.iter().filter(|t| t.by_app).count() as u32,
            components: &[],
            priority: None,
            fields: &[],
            transitions: self.transitions.iter().map(Change::view).collect(),
        }
    }
}

impl Change {
    fn view(&self) -> TransitionView<'_> {
        TransitionView {
            from: &self.from,
            to: &self.to,
            from_category: self.from_category,
            to_category: self.to_category,
            by_app: self.by_app,
            at: self.at,
        }
    }
}

/// The shipped files with some files replaced or added.
fn shipped_with(replaced: &[(&str, &str)]) -> Vec<DefinitionFile> {
    let mut files = DefinitionSet::shipped_files();
    for (name, source) in replaced {
        files.retain(|f| f.name != *name);
        files.push(DefinitionFile { name: (*name).to_owned(), source: (*source).to_owned() });
    }
    files
}

fn compile_errors(files: Vec<DefinitionFile>) -> Vec<DefinitionError> {
    match DefinitionSet::compile(files) {
        Ok(set) => panic!("expected the definitions to be rejected, got {set:?}"),
        Err(errors) => errors,
    }
}

fn shipped() -> &'static DefinitionSet {
    static SET: std::sync::OnceLock<DefinitionSet> = std::sync::OnceLock::new();
    SET.get_or_init(DefinitionSet::shipped)
}

// ---------------------------------------------------------------------------
// The shipped defaults agree with the reference rules

/// Runs one issue through `classify_issue` with both implementations, and
/// every hook on every transition directly (the calling rules skip some).
fn check_agrees(issue: &Issue) {
    let set = shipped();
    let view = issue.view();
    let expected = classify_issue(&DefaultRules, &view);
    let actual = classify_issue(set, &view);
    assert_eq!(actual, expected, "classification of {issue:?}");

    let (rules_issue, set_issue) = (DefaultRules.prepare_issue(&view), set.prepare_issue(&view));
    let same = |what: &str, a: Result<bool, _>, b: Result<bool, _>| {
        assert_eq!(a.unwrap(), b.unwrap(), "{what} of {issue:?}");
    };
    same("is_excluded", set.is_excluded(&set_issue), DefaultRules.is_excluded(&rules_issue));
    same("is_incident", set.is_incident(&set_issue), DefaultRules.is_incident(&rules_issue));
    same("is_failure", set.is_failure(&set_issue), DefaultRules.is_failure(&rules_issue));
    same("is_ai_involved", set.is_ai_involved(&set_issue), DefaultRules.is_ai_involved(&rules_issue));
    // Asked, as the calling rules do, of failures naming no affected version.
    if set.is_failure(&set_issue).unwrap() && issue.affected_versions.is_empty() {
        assert_eq!(
            set.failure_window_days(&set_issue).unwrap(),
            DefaultRules.failure_window_days(&rules_issue).unwrap(),
            "failure_window_days of {issue:?}"
        );
    }
    for t in &view.transitions {
        let (rt, st) = (DefaultRules.prepare_transition(t), set.prepare_transition(t));
        same(
            "is_deployment_transition",
            set.is_deployment_transition(&set_issue, &st),
            DefaultRules.is_deployment_transition(&rules_issue, &rt),
        );
        same(
            "is_failure_transition",
            set.is_failure_transition(&set_issue, &st),
            DefaultRules.is_failure_transition(&rules_issue, &rt),
        );
        same("is_restore", set.is_restore(&set_issue, &st), DefaultRules.is_restore(&rules_issue, &rt));
        same("is_work_start", set.is_work_start(&set_issue, &st), DefaultRules.is_work_start(&rules_issue, &rt));
    }
}

#[test]
fn shipped_defaults_agree_with_reference_rules_on_edge_cases() {
    use StatusCategory::*;
    let mut cases = vec![
        issue("Story"),
        issue("Epic"),
        issue("epic"),
        issue("EPIC"),
        issue("Epics"),
        issue("Bug"),
        issue("BUG"),
        issue("bug").labels(&["AI-Assisted"]),
        issue("Incident"),
        issue("incident"),
        issue("Story").labels(&["Incident"]),
        issue("Story").labels(&["incident-review"]),
        issue("Story").labels(&["DORA-Exclude"]),
        issue("Story").labels(&["dora-exclude", "incident"]),
        issue("Story").labels(&["dora-excluded"]),
        issue("Task").labels(&["AI-ASSISTED"]),
        issue("Task").labels(&["ai"]),
        issue("Task").labels(&["backend", "ai-assisted"]),
        issue("AI Task"),
        issue("ai task"),
        issue("AI Tasks"),
        issue("Bug").labels(&["Incident"]),
        issue("Sub-task"),
    ];
    // Sub-task flag, whatever the type.
    let mut sub = issue("Story");
    sub.is_subtask = true;
    cases.push(sub);
    // Failures with and without affected versions.
    for t in ["Bug", "bug", "INCIDENT", "Story"] {
        let mut i = issue(t);
        i.affected_versions = vec!["1.0".into()];
        cases.push(i.clone());
        i.affected_versions.push("1.1".into());
        i.fix_versions = vec!["1.2".into()];
        cases.push(i);
    }
    // Rollbacks and failed deployments, any case; unknown categories.
    for to in [
        "Rolled Back",
        "rolled back",
        "ROLLED BACK",
        "Rolled Back ",
        "Deployment Failed",
        "deployment failed",
        "Deployed",
    ] {
        let mut i = issue("Story");
        i.transitions.push(change("Done", to, Done, Undefined, T0 + 20 * HOUR));
        cases.push(i);
    }
    // Open issues, app changes, incidents restored before/after creation.
    let mut open = issue("Story");
    open.status_category = Indeterminate;
    open.resolved = None;
    open.transitions.truncate(1);
    cases.push(open);
    let mut by_app = issue("Story");
    by_app.transitions[1].by_app = true;
    cases.push(by_app);
    let mut early = issue("Incident");
    early.transitions.insert(0, change("Open", "Closed", New, Done, T0 - HOUR));
    cases.push(early);
    let mut never = issue("Incident");
    never.transitions.clear();
    cases.push(never);
    let mut undefined = issue("Story");
    undefined.transitions = vec![change("Backlog", "Triage", Undefined, Undefined, T0 + HOUR)];
    cases.push(undefined);

    for case in &cases {
        check_agrees(case);
    }
}

#[test]
fn shipped_defaults_agree_with_reference_rules_on_generated_issues() {
    use StatusCategory::*;
    let types = ["Story", "Task", "Bug", "BUG", "Incident", "incident", "Epic", "epic", "Spike"];
    let label_sets: [&[&str]; 8] = [
        &[],
        &["dora-exclude"],
        &["Dora-Exclude", "x"],
        &["incident"],
        &["INCIDENT"],
        &["ai-assisted"],
        &["Ai-Assisted", "incident"],
        &["frontend", "backend"],
    ];
    let statuses = [
        ("To Do", New),
        ("In Progress", Indeterminate),
        ("In Review", Indeterminate),
        ("Done", Done),
        ("Closed", Done),
        ("Rolled Back", Undefined),
        ("deployment failed", Done),
        ("Limbo", Undefined),
    ];
    // A small deterministic generator (no randomness in tests).
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for _ in 0..400 {
        let mut i = issue(types[next(types.len())]);
        i.is_subtask = next(6) == 0;
        i.labels = label_sets[next(label_sets.len())].iter().map(|l| Name::from(*l)).collect();
        i.affected_versions = (0..next(3)).map(|v| format!("1.{v}")).collect();
        i.fix_versions = (0..next(2)).map(|v| format!("2.{v}")).collect();
        i.transitions.clear();
        let mut at = T0 - HOUR;
        let mut from = statuses[0];
        for _ in 0..next(5) {
            let to = statuses[next(statuses.len())];
            let mut c = change(from.0, to.0, from.1, to.1, at);
            c.by_app = next(4) == 0;
            i.transitions.push(c);
            from = to;
            at += HOUR * (1 + next(48) as i64);
        }
        i.status_category = from.1;
        i.resolved = (from.1 == Done && next(3) > 0).then_some(at);
        check_agrees(&i);
    }
}

#[test]
fn shipped_is_deployment_agrees_with_reference_rules() {
    let date = NaiveDate::from_ymd_opt(2026, 3, 2);
    for released in [false, true] {
        for release_date in [None, date] {
            for archived in [false, true] {
                for name in ["1.0", "", "Release 2026-03"] {
                    let v = VersionView { name, released, release_date, archived };
                    assert_eq!(
                        shipped().is_deployment(&v).unwrap(),
                        DefaultRules.is_deployment(&v).unwrap(),
                        "is_deployment of {v:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn shipped_files_match_the_metrics_defs_directory() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/metrics-defs");
    let loaded = DefinitionSet::load_dir(dir, &[]).expect("the shipped directory loads");
    assert_eq!(loaded.version(), shipped().version());
    assert_eq!(loaded.files(), shipped().files());
}

// ---------------------------------------------------------------------------
// Diagnostics

#[test]
fn syntax_error_carries_file_line_and_column() {
    let errors = compile_errors(shipped_with(&[(
        "exclusion.rhai",
        "// excluded issues\nfn is_excluded(issue) {\n    let x = ;\n}\n",
    )]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!((e.file.as_str(), e.line, e.column), ("exclusion.rhai", 3, 13), "{e}");
    assert!(e.to_string().starts_with("exclusion.rhai:3:13: "), "{e}");
}

#[test]
fn missing_hook_is_named() {
    let files = DefinitionSet::shipped_files().into_iter().filter(|f| f.name != "work.rhai").collect();
    let errors = compile_errors(files);
    let mut hooks: Vec<_> = errors.iter().map(|e| e.hook.clone().unwrap_or_default()).collect();
    hooks.sort();
    assert_eq!(hooks, ["is_ai_involved", "is_work_start"], "{errors:?}");
    assert!(errors.iter().all(|e| e.message.contains("not defined")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.to_string()
            == "hook is_work_start: is not defined; one file must define `fn is_work_start(issue, t)`"),
        "{errors:?}"
    );
}

#[test]
fn hook_with_wrong_arity_is_rejected() {
    let source = "fn is_excluded(issue, t) {\n    false\n}\n";
    let errors = compile_errors(shipped_with(&[("exclusion.rhai", source)]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].to_string(),
        "exclusion.rhai:1:1: hook is_excluded: takes 1 parameter (fn is_excluded(issue)), but this definition has 2 parameters"
    );
}

#[test]
fn hook_defined_in_two_files_names_both() {
    let errors = compile_errors(shipped_with(&[("extra.rhai", "\n\nfn is_incident(issue) { false }\n")]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e.hook.as_deref(), Some("is_incident"));
    // Reported at the later file in name order.
    assert_eq!((e.file.as_str(), e.line, e.column), ("incident.rhai", 8, 1), "{e}");
    assert!(e.message.contains("extra.rhai") && e.message.contains("incident.rhai"), "{e}");
}

#[test]
fn helper_defined_in_two_files_is_rejected_but_sharing_one_is_fine() {
    let helper = "fn has_label(issue, label) { issue.labels.some(|l| l.to_lower() == label) }\n";
    let a = format!("{helper}fn is_excluded(issue) {{ has_label(issue, \"dora-exclude\") }}\n");
    let b = format!(
        "{helper}fn is_incident(issue) {{ has_label(issue, \"incident\") }}\nfn is_restore(issue, t) {{ true }}\n"
    );
    let errors = compile_errors(shipped_with(&[("exclusion.rhai", &a), ("incident.rhai", &b)]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.contains("function `has_label` with 2 parameters defined in both"), "{}", errors[0]);

    // One definition, used from another file.
    let b = "fn is_incident(issue) { has_label(issue, \"incident\") }\nfn is_restore(issue, t) { true }\n";
    let set = DefinitionSet::compile(shipped_with(&[("exclusion.rhai", &a), ("incident.rhai", b)])).unwrap();
    let labelled = issue("Story").labels(&["Incident"]);
    assert!(set.is_incident(&set.prepare_issue(&labelled.view())).unwrap());
}

#[test]
fn hook_returning_a_string_is_rejected_at_load_time() {
    let source = "// exclusion\n\nfn is_excluded(issue) {\n    \"yes\"\n}\n";
    let errors = compile_errors(shipped_with(&[("exclusion.rhai", source)]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!((e.file.as_str(), e.line, e.hook.as_deref()), ("exclusion.rhai", 3, Some("is_excluded")));
    assert!(e.message.starts_with("returned a string, expected a bool"), "{e}");
}

#[test]
fn hook_failing_on_ordinary_input_is_rejected_with_its_position() {
    // The first label of an issue without labels.
    let source = "fn is_excluded(issue) {\n    issue.labels[0] == \"x\"\n}\n";
    let errors = compile_errors(shipped_with(&[("exclusion.rhai", source)]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!((e.file.as_str(), e.line, e.hook.as_deref()), ("exclusion.rhai", 2, Some("is_excluded")), "{e}");
    assert!(e.message.contains("sample open story"), "{e}");

    // A property that does not exist (a typo).
    let source = "fn is_excluded(issue) {\n    issue.labes.len() > 0\n}\n";
    let errors = compile_errors(shipped_with(&[("exclusion.rhai", source)]));
    assert!(errors[0].message.contains("labes"), "{}", errors[0]);
}

#[test]
fn top_level_statements_are_rejected() {
    let source = "fn is_excluded(issue) { false }\n\nlet counter = 0;\n";
    let errors = compile_errors(shipped_with(&[("exclusion.rhai", source)]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].file.as_str(), errors[0].line), ("exclusion.rhai", 3), "{}", errors[0]);
    assert!(errors[0].message.contains("top-level statements"), "{}", errors[0]);
}

#[test]
fn every_problem_is_reported_at_once() {
    // Compile-time problems in several files.
    let errors = compile_errors(shipped_with(&[
        ("exclusion.rhai", "fn is_excluded(issue) {\n  let = 1;\n}\n"),
        ("extra.rhai", "fn is_incident(issue) { false }\nfn is_work_start(issue) { false }\n"),
        ("zzz.rhai", "fn broken( {\n"),
    ]));
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 4, "{shown:#?}");
    assert!(shown.iter().any(|e| e.starts_with("exclusion.rhai:2:")), "{shown:#?}");
    assert!(shown.iter().any(|e| e.starts_with("zzz.rhai:1:")), "{shown:#?}");
    assert!(shown.iter().any(|e| e.contains("hook is_incident") && e.contains("in both")), "{shown:#?}");
    assert!(shown.iter().any(|e| e.contains("hook is_work_start: takes 2 parameters")), "{shown:#?}");

    // Missing hooks and load-time failures together.
    let errors = compile_errors(shipped_with(&[
        ("exclusion.rhai", "fn is_excluded(issue) { 1 }\n"),
        ("work.rhai", "fn is_work_start(issue, t) { t.nope }\n"),
    ]));
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{shown:#?}");
    assert!(shown.iter().any(|e| e.contains("hook is_excluded: returned an integer, expected a bool")), "{shown:#?}");
    assert!(shown.iter().any(|e| e.starts_with("work.rhai:1:") && e.contains("hook is_work_start")), "{shown:#?}");
    assert!(
        shown
            .iter()
            .any(|e| e == "hook is_ai_involved: is not defined; one file must define `fn is_ai_involved(issue)`"),
        "{shown:#?}"
    );
}

#[test]
fn oversized_sources_are_rejected_before_compiling() {
    let big = format!("fn is_excluded(issue) {{ false }}\n{}", "// padding\n".repeat(7_000));
    let errors = compile_errors(shipped_with(&[("exclusion.rhai", &big)]));
    assert!(errors.iter().any(|e| e.file == "exclusion.rhai" && e.message.contains("at most 65536")), "{errors:?}");

    let files: Vec<_> = (0..6)
        .map(|n| DefinitionFile { name: format!("pad{n}.rhai"), source: "//\n".repeat(20_000) })
        .chain(DefinitionSet::shipped_files())
        .collect();
    let errors = compile_errors(files);
    assert!(errors.iter().any(|e| e.file.is_empty() && e.message.contains("at most 262144")), "{errors:?}");
}

#[test]
fn version_is_a_short_content_hash() {
    let v = shipped().version();
    assert_eq!(v.len(), 12);
    assert!(v.chars().all(|c| c.is_ascii_hexdigit()), "{v}");
    // Order of the input does not matter; content does.
    let mut reversed = DefinitionSet::shipped_files();
    reversed.reverse();
    assert_eq!(DefinitionSet::compile(reversed).unwrap().version(), v);
    let changed = shipped_with(&[("exclusion.rhai", "fn is_excluded(issue) { false }\n")]);
    assert_ne!(DefinitionSet::compile(changed).unwrap().version(), v);
    let names: Vec<_> = shipped().files().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["deployment.rhai", "exclusion.rhai", "failure.rhai", "incident.rhai", "work.rhai"]);
}

#[test]
fn load_dir_reads_rhai_files_only_and_reports_problems() {
    let dir = tempfile::tempdir().unwrap();
    for file in DefinitionSet::shipped_files() {
        std::fs::write(dir.path().join(&file.name), &file.source).unwrap();
    }
    std::fs::write(dir.path().join("README.md"), "not rhai {{{").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "fn is_excluded(issue) { true }").unwrap();
    let set = DefinitionSet::load_dir(dir.path(), &[]).unwrap();
    assert_eq!(set.version(), shipped().version());

    std::fs::write(dir.path().join("work.rhai"), "fn is_work_start(issue, t) {\n  ???\n}\n").unwrap();
    match DefinitionSet::load_dir(dir.path(), &[]) {
        Err(DefinitionsLoadError::Invalid(errors)) => {
            assert!(errors.iter().any(|e| e.file == "work.rhai" && e.line == 2), "{errors:?}");
        }
        other => panic!("expected invalid definitions, got {other:?}"),
    }

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(DefinitionSet::load_dir(empty.path(), &[]), Err(DefinitionsLoadError::NoFiles { .. })));

    let missing = dir.path().join("no-such-dir");
    let err = DefinitionSet::load_dir(&missing, &[]).unwrap_err();
    assert!(matches!(err, DefinitionsLoadError::ReadDir { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot read the definitions directory"), "{err}");
}

// ---------------------------------------------------------------------------
// Hostile scripts

/// Bodies that must be stopped, each with a word the error must contain.
fn hostile_bodies() -> Vec<(&'static str, String, &'static str)> {
    let huge_map = (0..300).map(|i| format!("k{i}: {i}")).collect::<Vec<_>>().join(", ");
    vec![
        ("endless loop", "loop { }".into(), "limit exceeded"),
        ("endless while", "let n = 0; while true { n += 1; }".into(), "limit exceeded"),
        ("deep recursion", "deeper(0)".into(), "nested too deeply"),
        ("doubling string", "let s = \"ab\"; loop { s += s; }".into(), "string too large"),
        ("doubling array", "let a = [1, 2]; loop { a += a; }".into(), "array too large"),
        // rhai checks a map's size when it is built or returned, not when a
        // new key is assigned: this one is stopped by the operation or time
        // budget instead.
        ("growing map", "let m = #{}; let n = 0; loop { m[`k${n}`] = n; n += 1; }".into(), "limit exceeded"),
        (
            "map used after growing",
            "let m = #{}; for n in 0..300 { m[`k${n}`] = n; } m.values().len() > 0".into(),
            "map too large",
        ),
        ("huge map literal", format!("let m = #{{{huge_map}}}; m.len() > 0"), "maximum limit"),
        (
            "slow string work",
            "let s = \"x\"; s.pad(4000, \"y\"); loop { let u = s.to_upper(); }".into(),
            "limit exceeded",
        ),
        ("print flood", "loop { print(\"flood\"); debug(\"flood\"); }".into(), "limit exceeded"),
        ("eval", "eval(\"true\")".into(), "eval"),
        ("eval through a pointer", "call(Fn(\"eval\"), \"true\")".into(), "eval"),
        ("file access", "open(\"/etc/passwd\").len() > 0".into(), "Function not found: open"),
        ("network access", "http_get(\"http://example.com\") == \"\"".into(), "Function not found: http_get"),
        ("sleep", "sleep(5); false".into(), "Function not found: sleep"),
        ("exit", "exit(true)".into(), "Function not found: exit"),
        ("state in this", "this.count += 1; this.count > 1".into(), "'this' not bound"),
    ]
}

const HELPER: &str = "fn deeper(n) { deeper(n + 1) }\n";

#[test]
fn hostile_scripts_are_rejected_at_load_time() {
    for (what, body, expected) in hostile_bodies() {
        let source = format!("{HELPER}fn is_excluded(issue) {{\n    {body}\n}}\n");
        let started = Instant::now();
        let errors = compile_errors(shipped_with(&[("exclusion.rhai", &source)]));
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(5), "{what}: took {elapsed:?}");
        assert!(
            errors.iter().any(|e| e.file == "exclusion.rhai" && e.message.contains(expected)),
            "{what}: expected an error about {expected:?}, got {errors:#?}"
        );
    }
    // An import is a syntax error (there are no modules).
    let errors =
        compile_errors(shipped_with(&[("exclusion.rhai", "import \"x\" as x;\nfn is_excluded(issue) { false }\n")]));
    assert!(errors[0].message.contains("import"), "{errors:?}");
}

#[test]
fn scripts_too_complex_to_compile_are_rejected() {
    let nested = format!("fn is_excluded(issue) {{ {}true{} }}\n", "(".repeat(500), ")".repeat(500));
    let errors = compile_errors(shipped_with(&[("exclusion.rhai", &nested)]));
    assert_eq!(errors[0].file, "exclusion.rhai", "{errors:?}");
    assert!(errors[0].message.contains("maximum complexity"), "{}", errors[0]);

    let many: String = (0..300).map(|n| format!("fn f{n}() {{ {n} }}\n")).collect();
    let errors = compile_errors(shipped_with(&[("many.rhai", &many)]));
    assert_eq!(errors[0].file, "many.rhai", "{errors:?}");
    assert!(errors[0].message.contains("Number of functions"), "{}", errors[0]);
}

#[test]
fn hostile_scripts_are_stopped_at_call_time_and_the_set_keeps_working() {
    let normal = issue("Story");
    for (what, body, expected) in hostile_bodies() {
        // Harmless on the load-time samples; hostile on one project.
        let source = format!(
            "{HELPER}fn is_excluded(issue) {{\n    if issue.project == \"HOSTILE\" {{\n        {body}\n    }}\n    false\n}}\n"
        );
        let set = match DefinitionSet::compile(shipped_with(&[("exclusion.rhai", &source)])) {
            Ok(set) => set,
            Err(errors) => {
                // Some bodies cannot even compile (eval): rejected at load time.
                assert!(errors.iter().any(|e| e.message.contains(expected)), "{what}: {errors:#?}");
                continue;
            }
        };
        let mut hostile = issue("Story");
        hostile.project = "HOSTILE".into();
        let started = Instant::now();
        let err = set.is_excluded(&set.prepare_issue(&hostile.view())).unwrap_err();
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(5), "{what}: took {elapsed:?}");
        assert_eq!(err.hook, "is_excluded");
        assert!(err.message.contains(expected), "{what}: expected {expected:?} in {err}");
        assert_eq!(err.location.as_ref().map(|l| l.file.as_str()), Some("exclusion.rhai"), "{what}: {err}");
        // The same set goes on answering.
        assert!(!set.is_excluded(&set.prepare_issue(&normal.view())).unwrap(), "{what}");
        assert_eq!(classify_issue(&set, &normal.view()), classify_issue(&DefaultRules, &normal.view()), "{what}");
    }
}

#[test]
fn a_hook_returning_a_non_bool_at_call_time_is_an_error_naming_the_hook() {
    let source = "fn is_excluded(issue) {\n    if issue.project == \"ODD\" { return \"maybe\"; }\n    false\n}\n";
    let set = DefinitionSet::compile(shipped_with(&[("exclusion.rhai", source)])).unwrap();
    let mut odd = issue("Story");
    odd.project = "ODD".into();
    let err = classify_issue(&set, &odd.view()).unwrap_err();
    assert_eq!(err.hook, "is_excluded");
    assert_eq!(err.message, "returned a string, expected a bool");
    assert_eq!(err.location, Some(SourceLocation { file: "exclusion.rhai".into(), line: 1, column: 1 }));
    assert_eq!(
        err.to_string(),
        "definition hook `is_excluded` failed: exclusion.rhai:1:1: returned a string, expected a bool"
    );
}

/// `failure.rhai` with another `failure_window_days`.
fn with_window(body: &str) -> Vec<DefinitionFile> {
    let shipped = DefinitionSet::shipped_files().into_iter().find(|f| f.name == "failure.rhai").unwrap().source;
    let start = shipped.find("fn failure_window_days(issue)").unwrap();
    let end = start + shipped[start..].find("\n}\n").unwrap() + 3;
    let source = format!("{}fn failure_window_days(issue) {{\n{body}\n}}\n{}", &shipped[..start], &shipped[end..]);
    shipped_with(&[("failure.rhai", &source)])
}

#[test]
fn a_failure_window_that_is_no_integer_from_0_to_90_is_rejected_with_file_line_and_hook() {
    for (body, says) in [
        ("    91", "returned an integer, expected an integer from 0 to 90, not 91"),
        ("    -1", "returned an integer, expected an integer from 0 to 90, not -1"),
        ("    14.0", "returned a float, expected an integer from 0 to 90"),
        ("    \"14\"", "returned a string, expected an integer from 0 to 90"),
        ("    true", "returned a value of type bool, expected an integer from 0 to 90"),
    ] {
        let errors = compile_errors(with_window(body));
        assert_eq!(errors.len(), 1, "{errors:?}");
        let e = &errors[0];
        assert_eq!((e.file.as_str(), e.hook.as_deref()), ("failure.rhai", Some("failure_window_days")), "{e}");
        assert!(e.line > 1, "{e}");
        assert!(e.message.starts_with(says), "{e} does not say {says}");
    }
    // Failing on the service's data only: an error at classification,
    // located, naming the hook.
    let set = DefinitionSet::compile(with_window("    if issue.project == \"ODD\" { 200 } else { 14 }")).unwrap();
    let mut odd = issue("Incident");
    odd.project = "ODD".into();
    let err = classify_issue(&set, &odd.view()).unwrap_err();
    assert_eq!(err.hook, "failure_window_days");
    // On real facts the returned value is not shown: it may come from an issue.
    assert!(err.message.contains("expected an integer from 0 to 90"), "{err}");
    assert!(!err.to_string().contains("200"), "{err}");
    assert_eq!(err.location.as_ref().map(|l| l.file.as_str()), Some("failure.rhai"));
    // Bounds are accepted.
    for days in [0, 90] {
        assert!(DefinitionSet::compile(with_window(&format!("    {days}"))).is_ok());
    }
}

#[test]
fn hostile_failure_windows_on_the_new_properties_are_stopped_at_call_time() {
    use jira_dora::domain::facts::FieldValue;
    let components: Vec<Name> = vec!["HOSTILE".into()];
    let fields = vec![(Arc::<str>::from("Team"), Some(FieldValue::Option("HOSTILE".into())))];
    for (what, body, expected) in hostile_bodies() {
        let mut files = with_window(&format!(
            "    if issue.components.contains(\"HOSTILE\") || issue.priority == \"HOSTILE\" || issue.fields.get(\"Team\") == \"HOSTILE\" {{\n        {body}\n    }}\n    14"
        ));
        files.push(DefinitionFile { name: "helper.rhai".into(), source: HELPER.into() });
        let set = match DefinitionSet::compile(files) {
            Ok(set) => set,
            Err(errors) => {
                assert!(errors.iter().any(|e| e.message.contains(expected)), "{what}: {errors:#?}");
                continue;
            }
        };
        let incident = issue("Incident");
        let normal = incident.view();
        for hostile in [
            IssueView { components: &components, ..normal.clone() },
            IssueView { priority: Some("HOSTILE"), ..normal.clone() },
            IssueView { fields: &fields, ..normal.clone() },
        ] {
            let started = Instant::now();
            let err = classify_issue(&set, &hostile).unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(5), "{what}");
            assert_eq!(err.hook, "failure_window_days", "{what}");
            // On a busy machine the time budget may stop a body first.
            assert!(
                err.message.contains(expected) || err.message.contains("limit exceeded"),
                "{what}: expected {expected:?} in {err}"
            );
            assert!(!err.message.contains("HOSTILE"), "{what}: the error quotes the issue: {err}");
        }
        assert_eq!(classify_issue(&set, &normal).unwrap().failure_window_days, 14, "{what}");
    }
}

#[test]
fn hooks_read_components_priority_and_allow_listed_fields() {
    use jira_dora::domain::facts::FieldValue;
    let set = DefinitionSet::compile(with_window(
        "    let team = issue.fields.get(\"Team\");\n    \
         if issue.components.contains(\"Payments\") && issue.priority == \"High\" && team == \"Checkout\" { 30 } else { 0 }",
    ))
    .unwrap();
    let components: Vec<Name> = vec!["Payments".into()];
    let fields = vec![(Arc::<str>::from("Team"), Some(FieldValue::Option("Checkout".into())))];
    let incident = issue("Incident");
    let mut view = incident.view();
    let ask = |view: &IssueView<'_>| classify_issue(&set, view).unwrap().failure_window_days;
    assert_eq!(ask(&view), 0);
    view.components = &components;
    view.priority = Some("High");
    assert_eq!(ask(&view), 0);
    view.fields = &fields;
    assert_eq!(ask(&view), 30);
    // A field without a value is `()`.
    let none: Vec<(Arc<str>, Option<FieldValue>)> = vec![(Arc::from("Team"), None)];
    view.fields = &none;
    assert_eq!(ask(&view), 0);

    // Indexing a field: loads when the field is configured, is refused at
    // load time (a typo, say) when it is not.
    let indexed = with_window("    if issue.fields[\"Team\"] == \"Checkout\" { 30 } else { 0 }");
    let set = DefinitionSet::compile_for(indexed.clone(), &["Team".to_owned()]).unwrap();
    assert_eq!(set.field_names(), ["Team"]);
    let view = IssueView { fields: &fields, ..incident.view() };
    assert_eq!(classify_issue(&set, &view).unwrap().failure_window_days, 30);
    let errors = compile_errors(indexed);
    assert!(
        errors.iter().any(|e| e.hook.as_deref() == Some("failure_window_days") && e.message.contains("Team")),
        "{errors:?}"
    );
}

#[test]
fn a_hostile_call_on_one_thread_does_not_disturb_others() {
    let source =
        format!("{HELPER}fn is_excluded(issue) {{ if issue.project == \"HOSTILE\" {{ loop {{ }} }} false }}\n");
    let set = Arc::new(DefinitionSet::compile(shipped_with(&[("exclusion.rhai", &source)])).unwrap());
    let mut handles = Vec::new();
    for n in 0..4 {
        let set = Arc::clone(&set);
        handles.push(std::thread::spawn(move || {
            let mut i = issue("Story");
            if n == 0 {
                i.project = "HOSTILE".into();
            }
            (0..20).map(|_| set.is_excluded(&set.prepare_issue(&i.view())).is_ok()).all(|ok| ok == (n != 0))
        }));
    }
    for h in handles {
        assert!(h.join().unwrap());
    }
}

// ---------------------------------------------------------------------------
// Purity

#[test]
fn same_input_gives_the_same_answer() {
    let set = shipped();
    let mut i = issue("Bug").labels(&["incident", "ai-assisted"]);
    i.affected_versions = vec!["1.0".into()];
    let first = classify_issue(set, &i.view()).unwrap();
    for _ in 0..3 {
        assert_eq!(classify_issue(set, &i.view()).unwrap(), first);
    }
}

#[test]
fn scripts_cannot_carry_state_across_calls() {
    // Mutating the argument changes only this call's copy.
    let source = "fn is_incident(issue) {\n    let seen = \"seen\" in issue.labels;\n    issue.labels.push(\"seen\");\n    issue.type = \"Incident\";\n    seen\n}\nfn is_restore(issue, t) { t.to_category == \"done\" }\n";
    let set = DefinitionSet::compile(shipped_with(&[("incident.rhai", source)])).unwrap();
    let i = issue("Story");
    let prepared = set.prepare_issue(&i.view());
    for _ in 0..3 {
        assert!(!set.is_incident(&prepared).unwrap());
        assert!(!set.is_excluded(&prepared).unwrap());
        assert!(!set.is_failure(&prepared).unwrap());
    }

    // A global variable is not visible inside functions at all.
    let source = "fn is_excluded(issue) {\n    calls += 1;\n    calls > 1\n}\n";
    let errors = compile_errors(shipped_with(&[("exclusion.rhai", source)]));
    assert!(errors[0].message.contains("calls"), "{errors:?}");

    // Nor is a top-level constant.
    let source = "const LIMIT = 3;\nfn is_excluded(issue) { LIMIT > 2 }\n";
    compile_errors(shipped_with(&[("exclusion.rhai", source)]));
}

#[test]
fn definition_set_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<DefinitionSet>();
}

// ---------------------------------------------------------------------------
// Memoisation

/// Definitions that read more properties, in more ways, than the defaults.
fn busier_definitions() -> Vec<DefinitionFile> {
    shipped_with(&[
        (
            "deployment.rhai",
            "fn is_deployment(version) { version.released && version.release_date != () && !version.archived }\n\
             fn is_deployment_transition(issue, t) {\n    issue.project == \"P1\" && t.to.to_lower() == \"done\" && !t.by_app\n}\n",
        ),
        (
            "failure.rhai",
            "fn is_failure(issue) { issue.affected_versions.len() > 0 && issue.status_category == \"done\" }\n\
             fn is_failure_transition(issue, t) { t.from_category == \"done\" && t.to_category != \"done\" }\n\
             fn failure_window_days(issue) {\n    if issue.priority == \"Highest\" || issue.components.len() > 1 { 30 } else { 7 }\n}\n",
        ),
        // Passes the map on whole: never cached.
        (
            "work.rhai",
            "fn started(t) { t.to_category == \"indeterminate\" }\n\
             fn is_work_start(issue, t) { started(t) }\n\
             fn is_ai_involved(issue) { issue.app_changes > 0 || issue.labels.some(|l| l == \"ai-assisted\") }\n",
        ),
    ])
}

/// The facts of every project of `site`, harvested through the real client
/// from the fake Jira serving it.
fn harvested(site: fake_jira::Site) -> Vec<jira_dora::domain::facts::ProjectFacts> {
    use jira_dora::jira::{JiraClient, JiraConfig};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let fake = fake_jira::FakeJira::start(site).await;
        let client = JiraClient::new(JiraConfig::new(fake.base_url())).unwrap();
        let mut all = Vec::new();
        for key in client.projects().await.unwrap() {
            all.push(jira_dora::harvest::fetch_project(&client, &key).await.unwrap());
        }
        all
    })
}

#[test]
fn memoised_answers_equal_unmemoised_ones_on_a_generated_site() {
    use jira_dora::domain::aggregate::{build_project, with_issue_views};
    let facts = harvested(fake_jira::demo::large_site(3, 1_500, 11));
    for files in [DefinitionSet::shipped_files(), busier_definitions()] {
        let memoised = DefinitionSet::compile(files.clone()).unwrap();
        let plain = DefinitionSet::compile(files).unwrap().memoised(false);
        for project in &facts {
            with_issue_views(project, |views| {
                for view in views {
                    assert_eq!(classify_issue(&memoised, view), classify_issue(&plain, view), "{view:?}");
                }
            });
            assert_eq!(
                build_project(project, &memoised, chrono_tz::UTC).unwrap(),
                build_project(project, &plain, chrono_tz::UTC).unwrap()
            );
        }
    }
}

#[test]
fn memoisation_reads_only_what_each_hook_reads() {
    let set = DefinitionSet::compile(busier_definitions()).unwrap();
    let hooks: std::collections::HashMap<_, _> = set.memoised_hooks().into_iter().collect();
    assert_eq!(hooks["is_deployment_transition"], ["issue.project", "t.to", "t.by_app"]);
    assert_eq!(hooks["is_failure"], ["issue.status_category", "issue.affected_versions"]);
    assert_eq!(hooks["failure_window_days"], ["issue.components", "issue.priority"]);
    assert!(!set.memoised_hooks().iter().any(|(h, _)| *h == "is_work_start"));
    // The shipped defaults: every hook is cached.
    assert_eq!(shipped().memoised_hooks().len(), 10);
}

#[test]
fn hostile_scripts_are_stopped_with_memoisation_too_and_errors_are_not_cached() {
    let source = format!(
        "{HELPER}fn is_excluded(issue) {{\n    if issue.project == \"HOSTILE\" {{ loop {{ }} }}\n    false\n}}\n"
    );
    let set = DefinitionSet::compile(shipped_with(&[("exclusion.rhai", &source)])).unwrap();
    assert!(set.memoised_hooks().iter().any(|(h, _)| *h == "is_excluded"));
    let mut hostile = issue("Story");
    hostile.project = "HOSTILE".into();
    for _ in 0..2 {
        let err = set.is_excluded(&set.prepare_issue(&hostile.view())).unwrap_err();
        assert!(err.message.contains("limit exceeded"), "{err}");
    }
    assert!(!set.is_excluded(&set.prepare_issue(&issue("Story").view())).unwrap());
}

// ---------------------------------------------------------------------------
// The worked examples of the admin guide

/// The `<!-- example: NAME/FILE -->` code blocks of `metrics-defs/README.md`,
/// grouped by example.
fn readme_examples() -> std::collections::BTreeMap<String, Vec<(String, String)>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/metrics-defs/README.md")).unwrap();
    let mut examples: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(tag) = line.strip_prefix("<!-- example: ").and_then(|l| l.strip_suffix(" -->")) else { continue };
        let (example, file) = tag.split_once('/').unwrap();
        assert_eq!(lines.next(), Some("```rhai"), "{tag}");
        let source: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        examples.entry(example.to_owned()).or_default().push((file.to_owned(), source.join("\n") + "\n"));
    }
    examples
}

#[test]
fn the_worked_examples_of_the_admin_guide_compile_and_are_cached() {
    let examples = readme_examples();
    assert_eq!(
        examples.keys().collect::<Vec<_>>(),
        ["service-desk", "statuses", "teams-components", "teams-field", "teams-labels", "versions"]
    );
    let team_field = ["Team".to_owned()];
    let compiled = |name: &str| {
        let replaced: Vec<(&str, &str)> = examples[name].iter().map(|(f, s)| (f.as_str(), s.as_str())).collect();
        DefinitionSet::compile_for(shipped_with(&replaced), &team_field).unwrap_or_else(|e| panic!("{name}: {e:#?}"))
    };
    for name in examples.keys() {
        let set = compiled(name);
        let hooks = 10 + usize::from(set.defines_teams());
        assert_eq!(set.memoised_hooks().len(), hooks, "{name}: every hook of the examples is cached");
    }
    // The teams examples name the teams they promise.
    let components: Vec<Name> = vec!["Payments".into(), "Search".into()];
    let team = vec![(Arc::<str>::from("Team"), Some(jira_dora::domain::facts::FieldValue::Option("Checkout".into())))];
    let no_team = vec![(Arc::<str>::from("Team"), None)];
    let story = issue("Story").labels(&["team-payments", "team-", "backend"]);
    let teams_of = |name: &str, view: IssueView<'_>| -> Vec<String> {
        compiled(name).teams(&view).unwrap().iter().map(|t| t.to_string()).collect()
    };
    assert_eq!(
        teams_of("teams-components", IssueView { components: &components, ..story.view() }),
        ["Payments", "Search"]
    );
    assert_eq!(teams_of("teams-labels", story.view()), ["payments"]);
    assert_eq!(teams_of("teams-field", IssueView { fields: &team, ..story.view() }), ["Checkout"]);
    assert!(teams_of("teams-field", IssueView { fields: &no_team, ..story.view() }).is_empty());
    // Example 2 counts a move to "Deployed" and fails it on "Rolled Back".
    let statuses: Vec<(&str, &str)> = examples["statuses"].iter().map(|(f, s)| (f.as_str(), s.as_str())).collect();
    let set = DefinitionSet::compile(shipped_with(&statuses)).unwrap();
    let mut i = issue("Story");
    i.transitions.push(change("Done", "Deployed", StatusCategory::Done, StatusCategory::Done, T0 + 11 * HOUR));
    i.transitions.push(change(
        "Deployed",
        "Rolled Back",
        StatusCategory::Done,
        StatusCategory::Indeterminate,
        T0 + 12 * HOUR,
    ));
    let class = classify_issue(&set, &i.view()).unwrap();
    assert_eq!((class.deployment_transitions, class.failure_transitions), (vec![2], vec![3]));
}
