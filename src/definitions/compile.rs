//! Compiling a set of definitions files: size caps, one compilation per file
//! (so every diagnostic carries its own file's line and column), no
//! top-level statements, the ten hooks each defined once with the right
//! parameters (and the optional `teams` hook at most once), every function name defined in one file only, and finally
//! one AST holding the functions of all files.
//!
//! Every problem is collected; the caller fails only after seeing them all.
//!
//! Must not depend on anything outside `definitions`, nor run a hook.

use std::collections::HashMap;

use rhai::{AST, Dynamic, Engine, EvalAltResult};

use super::hooks::{HOOKS, HookSpec, TEAMS};
use super::problems::{DefinitionError, DefinitionFile};
use super::sandbox::{self, MAX_FILE_SOURCE, MAX_FILES, MAX_TOTAL_SOURCE};

/// Where things are defined, for diagnostics.
#[derive(Debug, Default)]
pub(super) struct Layout {
    /// The file (index into the sorted files) of each correctly defined hook.
    pub hook_files: HashMap<&'static str, usize>,
    /// The file of each named script function (hooks and helpers).
    pub fn_files: HashMap<String, usize>,
    /// Line and column of each `fn` definition, by file and name.
    pub fn_positions: HashMap<(usize, String), (u32, u32)>,
}

/// What compiling produced: the combined functions and where they came
/// from, plus every problem found. `ast` is `None` when some file did not
/// compile (the set is then incomplete and cannot be run).
pub(super) struct Compiled {
    pub ast: Option<AST>,
    pub layout: Layout,
    pub errors: Vec<DefinitionError>,
}

fn error(file: &str, line: u32, column: u32, hook: Option<&str>, message: impl Into<String>) -> DefinitionError {
    DefinitionError { file: file.to_owned(), line, column, hook: hook.map(str::to_owned), message: message.into() }
}

fn hook_spec(name: &str) -> Option<&'static HookSpec> {
    HOOKS.iter().chain([&TEAMS]).find(|h| h.name == name)
}

/// Compiles `files`, which must be sorted by name.
pub(super) fn compile(engine: &Engine, files: &[DefinitionFile]) -> Compiled {
    let mut errors = Vec::new();
    let mut layout = Layout::default();

    if files.len() > MAX_FILES {
        errors.push(error(
            "",
            0,
            0,
            None,
            format!("{} definitions files; at most {MAX_FILES} are allowed", files.len()),
        ));
    }
    let total: usize = files.iter().map(|f| f.source.len()).sum();
    if total > MAX_TOTAL_SOURCE {
        errors.push(error(
            "",
            0,
            0,
            None,
            format!("the definitions total {total} bytes of source; at most {MAX_TOTAL_SOURCE} are allowed"),
        ));
    }
    for pair in files.windows(2) {
        if pair[0].name == pair[1].name {
            errors.push(error(&pair[1].name, 0, 0, None, "two definitions files have this name"));
        }
    }

    let probe = sandbox::statement_probe();
    let mut combined = AST::empty();
    let mut all_compiled = errors.is_empty();
    // (name, parameter count) → file index, for duplicates across files.
    let mut defined: HashMap<(String, usize), usize> = HashMap::new();

    for (index, file) in files.iter().enumerate() {
        if file.source.len() > MAX_FILE_SOURCE {
            errors.push(error(
                &file.name,
                0,
                0,
                None,
                format!("source is {} bytes; at most {MAX_FILE_SOURCE} are allowed", file.source.len()),
            ));
            all_compiled = false;
            continue;
        }
        let ast = match engine.compile(&file.source) {
            Ok(ast) => ast,
            Err(err) => {
                let (line, column) = position(err.1);
                errors.push(error(&file.name, line, column, None, err.0.to_string()));
                all_compiled = false;
                continue;
            }
        };
        if let Err(err) = probe.eval_ast::<Dynamic>(&ast.clone_statements_only()) {
            let (line, column) = position(err.position());
            errors.push(error(
                &file.name,
                line,
                column,
                None,
                "top-level statements are not allowed: they would never run; a definitions file holds only functions",
            ));
        }

        let positions = fn_positions(&file.source);
        for f in ast.iter_functions() {
            if f.name.starts_with("anon$") {
                continue; // closures: named by a hash of their body
            }
            let (line, column) = positions.get(f.name).copied().unwrap_or((0, 0));
            layout.fn_files.entry(f.name.to_owned()).or_insert(index);
            layout.fn_positions.insert((index, f.name.to_owned()), (line, column));
            let hook = hook_spec(f.name);
            if let Some(spec) = hook
                && f.params.len() != spec.arity()
            {
                errors.push(error(
                    &file.name,
                    line,
                    column,
                    Some(spec.name),
                    format!(
                        "takes {} ({}), but this definition has {}",
                        plural(spec.arity(), "parameter"),
                        spec.signature(),
                        plural(f.params.len(), "parameter"),
                    ),
                ));
                continue;
            }
            match defined.get(&(f.name.to_owned(), f.params.len())) {
                Some(&first) => {
                    let what = match hook {
                        Some(_) => "defined".to_owned(),
                        None => format!("function `{}` with {} defined", f.name, plural(f.params.len(), "parameter")),
                    };
                    errors.push(error(
                        &file.name,
                        line,
                        column,
                        hook.map(|h| h.name),
                        format!("{what} in both {} and {}", files[first].name, file.name),
                    ));
                }
                None => {
                    defined.insert((f.name.to_owned(), f.params.len()), index);
                    if let Some(spec) = hook {
                        layout.hook_files.insert(spec.name, index);
                    }
                }
            }
        }
        combined.combine(ast.clone_functions_only());
    }

    if !all_compiled {
        return Compiled { ast: None, layout, errors };
    }
    for spec in HOOKS {
        if !layout.hook_files.contains_key(spec.name) && !errors.iter().any(|e| e.hook.as_deref() == Some(spec.name)) {
            errors.push(error(
                "",
                0,
                0,
                Some(spec.name),
                format!("is not defined; one file must define `{}`", spec.signature()),
            ));
        }
    }
    Compiled { ast: Some(combined), layout, errors }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// A rhai position as (line, column), 0 when unknown.
pub(super) fn position(pos: rhai::Position) -> (u32, u32) {
    let clamp = |n: Option<usize>| n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    (clamp(pos.line()), clamp(pos.position()))
}

/// The line and column of the `fn` keyword of each function definition in
/// `source` (the first one of each name), skipping comments and strings.
/// rhai's public API does not expose where a function is defined.
pub(super) fn fn_positions(source: &str) -> HashMap<&str, (u32, u32)> {
    let mut found = HashMap::new();
    let bytes = source.as_bytes();
    let (mut i, mut line, mut line_start) = (0usize, 1u32, 0usize);
    let column = |at: usize, line_start: usize| u32::try_from(source[line_start..at].chars().count() + 1).unwrap_or(0);
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line += 1;
                line_start = i + 1;
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    if bytes[i] == b'\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
                i += 2;
            }
            quote @ (b'"' | b'`' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' {
                        i += 1;
                    } else if bytes[i] == b'\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'f' if bytes.get(i + 1) == Some(&b'n')
                && (i == 0 || !is_ident(bytes[i - 1]))
                && bytes.get(i + 2).is_some_and(|b| b.is_ascii_whitespace()) =>
            {
                let at = i;
                let mut j = i + 2;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() && bytes[j] != b'\n' {
                    j += 1;
                }
                let start = j;
                while j < bytes.len() && is_ident(bytes[j]) {
                    j += 1;
                }
                if j > start {
                    found.entry(&source[start..j]).or_insert((line, column(at, line_start)));
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    found
}

/// The limit or error a failed call ran into, without rhai's position
/// suffix, and the innermost position and function it happened in.
pub(super) struct Failure<'e> {
    pub inner: &'e EvalAltResult,
    /// Names of the script functions the error passed through, outermost
    /// first.
    pub functions: Vec<&'e str>,
}

pub(super) fn unwind(err: &EvalAltResult) -> Failure<'_> {
    let mut functions = Vec::new();
    let mut e = err;
    while let EvalAltResult::ErrorInFunctionCall(name, _, inner, _) = e {
        functions.push(name.as_str());
        e = inner;
    }
    Failure { inner: e, functions }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fn_positions_skip_comments_and_strings() {
        let source = "// fn is_excluded(x)\n/* fn a() */ let s = \"fn b()\";\n  fn is_failure(issue) {\n    true }\nprivate fn helper (x) {}\n";
        let found = fn_positions(source);
        assert_eq!(found.get("is_failure"), Some(&(3, 3)));
        assert_eq!(found.get("helper"), Some(&(5, 9)));
        assert!(!found.contains_key("is_excluded"));
        assert!(!found.contains_key("a"));
        assert!(!found.contains_key("b"));
    }
}
