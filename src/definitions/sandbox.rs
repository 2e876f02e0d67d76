//! The rhai engine the definitions run in, and its limits.
//!
//! The engine starts from `Engine::new_raw()` (no packages, no module
//! resolver, no printing) and gets only pure packages: arithmetic, logic,
//! strings, arrays, maps, iterators, math. Not the core language package,
//! whose `sleep` blocks the thread where the operation counter cannot see
//! it (and whose `exit` would end a hook without an answer). `eval` is
//! disabled, variables must be declared, and a missing map property is an
//! error. Every limit is set explicitly (in rhai `0` means unlimited, and
//! the defaults differ between debug and release builds).
//!
//! Each call gets a wall-clock budget: [`CallGuard`] puts a deadline in a
//! thread-local before the call and the engine's progress callback checks it
//! every few hundred operations, so one shared engine serves concurrent
//! calls on many threads, each with its own deadline. `print` and `debug`
//! are counted, never shown: their text may hold issue data (a label, a
//! version name), so only the fact of the output — file, hook, line — goes
//! to `tracing` at debug level, capped per call and per second.
//!
//! Nothing here knows the hooks or the domain; `definitions` decides what to
//! call.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicIteratorPackage, BasicMapPackage, BasicMathPackage, BasicStringPackage,
    LogicPackage, MoreStringPackage, Package,
};
use rhai::{Dynamic, Engine, EvalAltResult, OptimizationLevel, Position};

/// Longest accepted source of one definitions file, in bytes.
pub const MAX_FILE_SOURCE: usize = 64 * 1024;
/// Longest accepted total source of all definitions files, in bytes.
pub const MAX_TOTAL_SOURCE: usize = 256 * 1024;
/// Most definitions files in one set.
pub const MAX_FILES: usize = 64;

/// Operations one hook call may run.
pub const MAX_OPERATIONS: u64 = 100_000;
/// Wall-clock budget of one hook call.
pub const CALL_BUDGET: Duration = Duration::from_millis(50);
/// Nested function calls.
pub const MAX_CALL_LEVELS: usize = 32;
/// Expression nesting at the top level and inside functions.
pub const MAX_EXPR_DEPTH: usize = 64;
/// Expression nesting inside functions.
pub const MAX_FUNCTION_EXPR_DEPTH: usize = 32;
/// Longest string a script may build, in bytes.
pub const MAX_STRING_SIZE: usize = 4_096;
/// Most elements in an array.
pub const MAX_ARRAY_SIZE: usize = 1_024;
/// Most properties in a map.
pub const MAX_MAP_SIZE: usize = 256;
/// Most variables alive at once in a call.
pub const MAX_VARIABLES: usize = 256;
/// Most functions a file may define.
pub const MAX_FUNCTIONS: usize = 256;

/// How often (in operations) the progress callback reads the clock.
const CLOCK_EVERY: u64 = 256;
/// Lines of `print`/`debug` output logged per call.
const OUTPUT_LINES_PER_CALL: u32 = 8;
/// Lines of `print`/`debug` output logged per second, all calls together.
const OUTPUT_LINES_PER_SECOND: u32 = 100;

/// The token the progress callback terminates a call with when its
/// deadline has passed.
const DEADLINE_TOKEN: &str = "time budget exhausted";

/// The engine definitions run in: pure packages, every limit set.
pub fn engine() -> Engine {
    let mut engine = Engine::new_raw();
    for package in [
        ArithmeticPackage::new().as_shared_module(),
        LogicPackage::new().as_shared_module(),
        BasicStringPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
        BasicIteratorPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
    ] {
        engine.register_global_module(package);
    }

    engine
        .disable_symbol("eval")
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        .set_optimization_level(OptimizationLevel::Simple)
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FUNCTION_EXPR_DEPTH)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_max_variables(MAX_VARIABLES)
        .set_max_functions(MAX_FUNCTIONS);

    engine.on_progress(|operations| {
        if operations % CLOCK_EVERY != 0 {
            return None;
        }
        let expired = CALL.with(|call| call.borrow().as_ref().is_some_and(|c| Instant::now() >= c.deadline));
        expired.then(|| Dynamic::from(DEADLINE_TOKEN))
    });
    engine.on_print(|_text| log_output("print", Position::NONE));
    engine.on_debug(|_text, _source, position| log_output("debug", position));
    engine
}

/// An engine that stops at the first operation: run on a statements-only
/// AST it tells whether a file has top-level statements, and where.
pub fn statement_probe() -> Engine {
    let mut engine = Engine::new_raw();
    engine.set_max_operations(1).on_progress(|_| Some(Dynamic::UNIT));
    engine
}

/// What the thread is running right now, for the deadline and the output.
struct Call {
    deadline: Instant,
    file: Arc<str>,
    hook: &'static str,
    lines: u32,
}

thread_local! {
    static CALL: RefCell<Option<Call>> = const { RefCell::new(None) };
}

/// Marks the current thread as running `hook` from `file` until dropped,
/// with a fresh deadline.
pub struct CallGuard {
    previous: Option<Call>,
}

impl CallGuard {
    pub fn enter(file: Arc<str>, hook: &'static str) -> Self {
        let call = Call { deadline: Instant::now() + CALL_BUDGET, file, hook, lines: 0 };
        let previous = CALL.with(|c| c.borrow_mut().replace(call));
        Self { previous }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CALL.with(|c| *c.borrow_mut() = previous);
    }
}

/// The output window shared by all threads: (start of the second, lines).
static OUTPUT_WINDOW: Mutex<Option<(Instant, u32)>> = Mutex::new(None);

fn output_allowed_globally() -> bool {
    let mut window = OUTPUT_WINDOW.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let now = Instant::now();
    match window.as_mut() {
        Some((start, lines)) if now.duration_since(*start) < Duration::from_secs(1) => {
            *lines += 1;
            *lines <= OUTPUT_LINES_PER_SECOND
        }
        _ => {
            *window = Some((now, 1));
            true
        }
    }
}

/// Notes that a script printed something; the text itself is dropped.
fn log_output(kind: &'static str, position: Position) {
    let (file, hook, nth) = CALL.with(|call| {
        let mut call = call.borrow_mut();
        match call.as_mut() {
            Some(c) => {
                c.lines = c.lines.saturating_add(1);
                (Arc::clone(&c.file), c.hook, c.lines)
            }
            None => (Arc::from(""), "", 1),
        }
    });
    if nth > OUTPUT_LINES_PER_CALL + 1 || !output_allowed_globally() {
        return;
    }
    let line = position.line().unwrap_or(0);
    if nth == OUTPUT_LINES_PER_CALL + 1 {
        tracing::debug!(file = &*file, hook, "further definition output of this call suppressed");
        return;
    }
    tracing::debug!(file = &*file, hook, line, kind, "definition output (its text is not logged)");
}

/// Whether an error is the engine stopping a script at one of its limits;
/// if so, what was exceeded.
pub fn limit_exceeded(err: &EvalAltResult) -> Option<String> {
    match err {
        EvalAltResult::ErrorTooManyOperations(_) => Some(format!("too many operations (at most {MAX_OPERATIONS})")),
        EvalAltResult::ErrorTerminated(..) => {
            Some(format!("time budget of {} ms per call exhausted", CALL_BUDGET.as_millis()))
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            let what = what.to_lowercase();
            Some(if what.contains("string") {
                format!("string too large (at most {MAX_STRING_SIZE} bytes)")
            } else if what.contains("array") {
                format!("array too large (at most {MAX_ARRAY_SIZE} elements)")
            } else if what.contains("map") {
                format!("map too large (at most {MAX_MAP_SIZE} properties)")
            } else {
                format!("{what} too large")
            })
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            Some(format!("calls nested too deeply (at most {MAX_CALL_LEVELS} levels)"))
        }
        EvalAltResult::ErrorTooManyVariables(_) => Some(format!("too many variables (at most {MAX_VARIABLES})")),
        _ => None,
    }
}

/// What kind of error stopped a call on real facts, in words that hold no
/// value the script was working with: a thrown value, an index, the
/// operands of a division may all come from an issue. A name (of a
/// function or property) is shown only when `in_source` says the
/// definitions' own text holds it; a name built at run time is not.
pub fn failure_kind(err: &EvalAltResult, in_source: &dyn Fn(&str) -> bool) -> String {
    if let Some(what) = limit_exceeded(err) {
        return format!("limit exceeded: {what}");
    }
    // rhai's own words, without the position (given separately).
    let own_words = || {
        let text = err.to_string();
        let suffix = format!(" ({})", err.position());
        text.strip_suffix(&suffix).map_or_else(|| text.clone(), str::to_owned)
    };
    let named = |name: &str, kind: &str| {
        let name = name.split(['(', ' ']).next().unwrap_or("");
        if !name.is_empty() && in_source(name) {
            own_words()
        } else {
            format!("{kind} (the name is not shown: it is not in the definitions)")
        }
    };
    match err {
        // Nothing from the data in these: names written in the script, type
        // names, or no payload at all.
        EvalAltResult::ErrorVariableNotFound(..)
        | EvalAltResult::ErrorForbiddenVariable(..)
        | EvalAltResult::ErrorVariableExists(..)
        | EvalAltResult::ErrorAssignmentToConstant(..)
        | EvalAltResult::ErrorNonPureMethodCallOnConstant(..)
        | EvalAltResult::ErrorMismatchDataType(..)
        | EvalAltResult::ErrorMismatchOutputType(..)
        | EvalAltResult::ErrorIndexingType(..)
        | EvalAltResult::ErrorUnboundThis(_)
        | EvalAltResult::ErrorFor(_) => own_words(),
        EvalAltResult::ErrorFunctionNotFound(name, _) => named(name, "function not found"),
        EvalAltResult::ErrorPropertyNotFound(name, _) => named(name, "property not found"),
        // `Fn("eval")`: a function pointer to a name that is not allowed.
        EvalAltResult::ErrorParsing(rhai::ParseErrorType::Reserved(name), _) => named(name, "a reserved name"),
        EvalAltResult::ErrorRuntime(..) => "a value was thrown (`throw`); the value is not shown".to_owned(),
        EvalAltResult::ErrorIndexNotFound(..) => "index not found (the index is not shown)".to_owned(),
        EvalAltResult::ErrorArrayBounds(..) => "array index out of bounds".to_owned(),
        EvalAltResult::ErrorStringBounds(..) => "string index out of bounds".to_owned(),
        EvalAltResult::ErrorBitFieldBounds(..) => "bit-field index out of bounds".to_owned(),
        EvalAltResult::ErrorDotExpr(..) => "invalid property access".to_owned(),
        EvalAltResult::ErrorArithmetic(..) => "arithmetic error (such as a division by zero or an overflow)".to_owned(),
        _ => "runtime error (details are not shown: they may hold issue data)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use rhai::{CallFnOptions, Scope};
    use std::io::Write;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn print_and_debug_are_counted_in_the_log_without_their_text_and_capped_per_call() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let engine = engine();
        let ast = engine
            .compile(
                "fn flood() { let long = \"x\"; long.pad(1000, \"y\"); print(long); \
                 for n in 0..50 { print(`marker-${n}`); debug(`marker-${n}`); } true }",
            )
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let _call = CallGuard::enter(Arc::from("noisy.rhai"), "is_excluded");
            let options = CallFnOptions::new().eval_ast(false);
            let answer = engine.call_fn_with_options::<bool>(options, &mut Scope::new(), &ast, "flood", ());
            assert!(answer.unwrap());
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u32, OUTPUT_LINES_PER_CALL + 1, "{text}");
        assert!(lines.iter().all(|l| l.contains("DEBUG") && l.contains("file=\"noisy.rhai\"")), "{text}");
        assert!(!text.contains("yyy") && !text.contains("marker"), "{text}");
        assert!(lines[1].contains("kind=\"print\"") && lines[2].contains("kind=\"debug\""), "{text}");
        assert!(lines.last().unwrap().contains("suppressed"), "{text}");
    }

    #[test]
    fn every_limit_is_set() {
        let engine = engine();
        assert_eq!(engine.max_operations(), MAX_OPERATIONS);
        assert_eq!(engine.max_call_levels(), MAX_CALL_LEVELS);
        assert_eq!(engine.max_expr_depth(), MAX_EXPR_DEPTH);
        assert_eq!(engine.max_function_expr_depth(), MAX_FUNCTION_EXPR_DEPTH);
        assert_eq!(engine.max_string_size(), MAX_STRING_SIZE);
        assert_eq!(engine.max_array_size(), MAX_ARRAY_SIZE);
        assert_eq!(engine.max_map_size(), MAX_MAP_SIZE);
        assert_eq!(engine.max_variables(), MAX_VARIABLES);
        assert_eq!(engine.max_functions(), MAX_FUNCTIONS);
        assert!(engine.strict_variables());
        assert!(engine.fail_on_invalid_map_property());
    }

    #[test]
    fn no_clock_randomness_or_sleep_is_reachable() {
        let engine = engine();
        for call in ["timestamp()", "sleep(1)", "rand()", "exit()", "eval(\"1\")", "import \"m\" as m;"] {
            let source = format!("fn probe() {{ {call} }}");
            let outcome = engine.compile(&source).map_err(|e| e.to_string()).and_then(|ast| {
                let options = CallFnOptions::new().eval_ast(false);
                engine
                    .call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &ast, "probe", ())
                    .map_err(|e| e.to_string())
            });
            assert!(outcome.is_err(), "{call} must not be available");
        }
    }
}
