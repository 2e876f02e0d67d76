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
//! go to `tracing` at debug level with the file and hook, truncated and
//! capped per call and per second.
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
/// Longest logged output line, in characters.
const OUTPUT_LINE_CHARS: usize = 200;

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
    engine.on_print(|text| log_output("print", text, Position::NONE));
    engine.on_debug(|text, _source, position| log_output("debug", text, position));
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

fn log_output(kind: &'static str, text: &str, position: Position) {
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
    let truncated = text.chars().count() > OUTPUT_LINE_CHARS;
    let text: String = text.chars().take(OUTPUT_LINE_CHARS).collect();
    tracing::debug!(file = &*file, hook, line, kind, text, truncated, "definition output");
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
    fn print_and_debug_go_to_the_log_truncated_and_capped_per_call() {
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
                 for n in 0..50 { print(`line ${n}`); debug(n); } true }",
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
        assert!(lines[0].contains("truncated=true") && !lines[0].contains(&"y".repeat(OUTPUT_LINE_CHARS)), "{text}");
        assert!(lines[1].contains("line 0"), "{text}");
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
