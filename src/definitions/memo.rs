//! Memoising hook results, so classifying through rhai costs about what
//! the same rules cost in Rust.
//!
//! Hooks are pure: the sandbox gives them no clock, no randomness, no state
//! and no I/O, so a hook's answer is a function of its arguments. Most hooks
//! read only a few properties of them (`is_work_start` reads
//! `t.to_category`, which has four values). When a set is compiled, the
//! source of each hook is scanned for the properties it reads from its
//! parameters (`issue.type`, `t?.to`); when every use of a parameter is
//! such a property read, the hook's answers are cached, keyed by the values
//! of exactly those properties. A hook that uses a parameter any other way
//! (passes it on whole, indexes it, calls a method on it, reads a property
//! the contract does not have, builds a template string) is never cached:
//! the scan must be sure, not clever.
//!
//! Each `DefinitionSet` has its own cache, bounded per hook, so new
//! definitions start from an empty one. Errors are never cached.
//!
//! Pure bookkeeping: no rhai `Engine` here, only the source text.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::RwLock;

use crate::domain::classify::Teams;

/// Most cached answers per hook; beyond that, calls go to the engine.
pub const MAX_ENTRIES_PER_HOOK: usize = 65_536;

/// Which properties a cached hook reads, per parameter, as indices into the
/// property tables (`properties`) (sorted, without duplicates).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub reads: Vec<Vec<usize>>,
    /// Per parameter: the read properties of which only the length is used
    /// (`issue.labels.len()`, `.is_empty()`); their keys hold the length.
    pub lengths_only: Vec<Vec<usize>>,
}

/// Cache keys hashed by `ahash` (already in the tree through rhai): keys
/// are short and not attacker-chosen in bulk (they are bounded per hook),
/// so a fast hash that reads a word at a time beats SipHash here.
type KeyMap<V> = HashMap<Box<str>, V, ahash::RandomState>;

/// A hook's answer, checked: a bool as 0 or 1, a window in days as itself.
pub type Answer = u8;

/// The cache of one hook.
#[derive(Debug, Default)]
pub struct HookCache {
    answers: RwLock<KeyMap<Answer>>,
}

impl HookCache {
    pub fn get(&self, key: &str) -> Option<Answer> {
        self.answers.read().unwrap_or_else(|p| p.into_inner()).get(key).copied()
    }

    pub fn put(&self, key: &str, answer: Answer) {
        let mut answers = self.answers.write().unwrap_or_else(|p| p.into_inner());
        if answers.len() < MAX_ENTRIES_PER_HOOK {
            answers.insert(key.into(), answer);
        }
    }

    pub fn len(&self) -> usize {
        self.answers.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// All answers known for issues with the same values of the properties
/// the issue hooks read together: one look-up per issue instead of one per
/// hook.
#[derive(Debug, Default)]
pub struct RecordCache {
    records: RwLock<KeyMap<Record>>,
}

/// Each hook's answer for one record, in `HOOKS` order, when known.
pub type Record = [Option<Answer>; super::hooks::HOOK_COUNT];

impl RecordCache {
    pub fn get(&self, key: &str) -> Option<Record> {
        self.records.read().unwrap_or_else(|p| p.into_inner()).get(key).copied()
    }

    /// Notes that hook `index` answered `answer` for the record `key`.
    pub fn note(&self, key: &str, index: usize, answer: Answer) {
        let mut records = self.records.write().unwrap_or_else(|p| p.into_inner());
        if let Some(record) = records.get_mut(key) {
            record[index] = Some(answer);
        } else if records.len() < MAX_ENTRIES_PER_HOOK {
            let mut record = [None; super::hooks::HOOK_COUNT];
            record[index] = Some(answer);
            records.insert(key.into(), record);
        }
    }
}

/// The cached answers of the `teams` hook: checked names, shared.
#[derive(Debug, Default)]
pub struct TeamsCache {
    answers: RwLock<KeyMap<Teams>>,
}

impl TeamsCache {
    pub fn get(&self, key: &str) -> Option<Teams> {
        self.answers.read().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    pub fn put(&self, key: &str, teams: &Teams) {
        let mut answers = self.answers.write().unwrap_or_else(|p| p.into_inner());
        if answers.len() < MAX_ENTRIES_PER_HOOK {
            answers.insert(key.into(), Teams::clone(teams));
        }
    }
}

thread_local! {
    /// The key being built, reused between calls on this thread.
    static KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f` with this thread's key buffer, emptied.
pub fn with_key<R>(f: impl FnOnce(&mut String) -> R) -> R {
    KEY.with(|key| match key.try_borrow_mut() {
        Ok(mut key) => {
            key.clear();
            f(&mut key)
        }
        // Re-entered (cannot happen from scripts; be safe anyway).
        Err(_) => f(&mut String::new()),
    })
}

/// Appends one value to a key, unambiguously: a tag, then the value
/// (strings length-prefixed).
pub fn push_str(key: &mut String, s: &str) {
    push_len(key, 's', s.len());
    key.push_str(s);
}

/// A tag and a length, in one character when the length is small.
fn push_len(key: &mut String, tag: char, len: usize) {
    key.push(tag);
    match u32::try_from(len).ok().filter(|&n| n < 0xD000).and_then(char::from_u32) {
        Some(c) => key.push(c),
        None => {
            use std::fmt::Write;
            key.push('\u{FFFF}');
            let _ = write!(key, "{len};");
        }
    }
}

pub fn push_int(key: &mut String, n: i64) {
    key.push('i');
    // Four 16-bit digits, each one character (skipping the surrogates).
    for shift in [48, 32, 16, 0] {
        let digit = ((n as u64 >> shift) & 0xFFFF) as u32;
        key.push(char::from_u32(if digit < 0xD800 { digit } else { digit + 0x1_0000 }).unwrap_or('?'));
    }
}

pub fn push_bool(key: &mut String, b: bool) {
    key.push(if b { 'T' } else { 'F' });
}

pub fn push_unit(key: &mut String) {
    key.push('u');
}

pub fn push_strs<'s>(key: &mut String, items: impl ExactSizeIterator<Item = &'s str>) {
    push_len(key, 'a', items.len());
    for s in items {
        push_str(key, s);
    }
}

/// The plan of a function whose body is `body` and whose parameters are
/// `params`, each with the property names it may have; `None` when the
/// function must not be cached.
pub fn plan(body: &str, params: &[(&str, &[&str])]) -> Option<Plan> {
    let mut reads: Vec<Vec<usize>> = vec![Vec::new(); params.len()];
    let mut other_use: Vec<Vec<usize>> = vec![Vec::new(); params.len()];
    let bytes = body.as_bytes();
    let is_ident_start = |b: u8| b.is_ascii_alphabetic() || b == b'_';
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let skip_ws = |mut j: usize| {
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    };
    let mut i = 0;
    // The last significant byte before the current position (for `x.issue`).
    let mut previous: u8 = b' ';
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                // rhai block comments nest.
                let mut depth = 0usize;
                while i < bytes.len() {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            // Template strings hold code: do not try.
            b'`' => return None,
            b'"' | b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                previous = b'"';
            }
            _ if is_ident_start(b) && (i == 0 || !is_ident(bytes[i - 1])) => {
                let start = i;
                while i < bytes.len() && is_ident(bytes[i]) {
                    i += 1;
                }
                let word = &body[start..i];
                let param = params.iter().position(|(name, _)| *name == word);
                let after_dot = previous == b'.';
                previous = b'a';
                let Some(p) = param else { continue };
                if after_dot {
                    continue; // a property named like a parameter, of something else
                }
                // Must be followed by `.name` or `?.name`, not by a call.
                let mut j = skip_ws(i);
                if bytes.get(j) == Some(&b'?') && bytes.get(j + 1) == Some(&b'.') {
                    j += 1;
                }
                if bytes.get(j) != Some(&b'.') {
                    return None;
                }
                let name_start = skip_ws(j + 1);
                let mut k = name_start;
                while k < bytes.len() && is_ident(bytes[k]) {
                    k += 1;
                }
                let property = &body[name_start..k];
                if property.is_empty() || bytes.get(skip_ws(k)) == Some(&b'(') {
                    return None;
                }
                let index = params[p].1.iter().position(|known| *known == property)?;
                if !reads[p].contains(&index) {
                    reads[p].push(index);
                }
                if !length_only(&body[k..]) && !other_use[p].contains(&index) {
                    other_use[p].push(index);
                }
                i = k;
            }
            _ => {
                if !b.is_ascii_whitespace() {
                    previous = b;
                }
                i += 1;
            }
        }
    }
    for r in &mut reads {
        r.sort_unstable();
    }
    let lengths_only = reads
        .iter()
        .zip(&other_use)
        .map(|(r, other)| r.iter().copied().filter(|i| !other.contains(i)).collect())
        .collect();
    Some(Plan { reads, lengths_only })
}

/// Whether `rest` (what follows a property read) starts with `.len()` or
/// `.is_empty()`.
fn length_only(rest: &str) -> bool {
    let compact: String = rest.chars().filter(|c| !c.is_whitespace()).take(12).collect();
    compact.starts_with(".len()") || compact.starts_with(".is_empty()")
}

/// The body (from `{` to its matching `}`) of the function defined by the
/// `fn` at byte `at` of `source`, skipping strings and comments.
pub fn body_at(source: &str, at: usize) -> Option<&str> {
    let bytes = source.as_bytes();
    let open = at + source.get(at..)?.find('{')?;
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut nested = 0usize;
                while i < bytes.len() {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        nested += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        nested -= 1;
                        i += 2;
                        if nested == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            quote @ (b'"' | b'`' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return source.get(open..=i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The byte offset of a 1-based line and column (in characters).
pub fn offset(source: &str, line: u32, column: u32) -> Option<usize> {
    if line == 0 || column == 0 {
        return None;
    }
    let mut start = 0usize;
    for _ in 1..line {
        start += source.get(start..)?.find('\n')? + 1;
    }
    let rest = source.get(start..)?;
    rest.char_indices().nth(column as usize - 1).map(|(i, _)| start + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE: (&str, &[&str]) = ("issue", &crate::definitions::properties::ISSUE_NAMES);
    const T: (&str, &[&str]) = ("t", &crate::definitions::properties::TRANSITION_NAMES);

    fn check(body: &str, expected: Option<&[&[&str]]>) {
        let params = [ISSUE, T];
        let actual = plan(body, &params).map(|p| {
            p.reads
                .iter()
                .zip(&params)
                .map(|(r, (_, props))| r.iter().map(|&i| props[i]).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        });
        let expected = expected.map(|e| e.iter().map(|r| r.to_vec()).collect::<Vec<_>>());
        assert_eq!(actual, expected, "{body}");
    }

    #[test]
    fn property_reads_are_found_and_other_uses_refuse_caching() {
        check("{ t.to_category == \"indeterminate\" }", Some(&[&[], &["to_category"]]));
        check("{ false }", Some(&[&[], &[]]));
        check(
            "{ issue.type.to_lower() == \"epic\" || issue.is_subtask || issue.labels.some(|l| l == issue.type) }",
            Some(&[&["type", "is_subtask", "labels"], &[]]),
        );
        check("{ let to = t?.to.to_lower(); to == \"x\" && issue . status == \"y\" }", Some(&[&["status"], &["to"]]));
        // Mentions in strings and comments, and properties of other values.
        check("{ // issue.project\n /* t.at /* nested */ issue */ \"issue\" == x.issue }", Some(&[&[], &[]]));
        check("{ helper(issue) }", None);
        check("{ issue[\"type\"] == \"Bug\" }", None);
        check("{ issue.keys().len() > 3 }", None);
        check("{ issue.labels() }", None);
        check("{ issue.labes.len() > 0 }", None);
        check("{ `${issue.type}` == \"Bug\" }", None);
        check("{ \"type\" in issue }", None);
        check("{ let x = issue; x.type == \"Bug\" }", None);
        check("{ t.to.to_lower() == \"deployed\" && issue.project == \"OPS\" }", Some(&[&["project"], &["to"]]));
    }

    #[test]
    fn properties_used_only_for_their_length_are_keyed_by_it() {
        let params = [ISSUE, T];
        let p = plan("{ issue.affected_versions.len() > 0 && issue.labels . is_empty() }", &params).unwrap();
        assert_eq!(p.lengths_only[0], p.reads[0]);
        let p = plan("{ issue.labels.len() > 0 && issue.labels[0] == \"x\" }", &params).unwrap();
        assert!(p.lengths_only[0].is_empty());
    }

    #[test]
    fn bodies_are_cut_at_the_matching_brace() {
        let source = "// a\nfn is_x(issue) {\n  if issue.a { \"}\" } else { '{' }\n}\nfn other() { 1 }\n";
        let at = offset(source, 2, 1).unwrap();
        assert_eq!(body_at(source, at), Some("{\n  if issue.a { \"}\" } else { '{' }\n}"));
        assert_eq!(offset("ab\ncd", 2, 2), Some(4));
        assert_eq!(offset("ab", 3, 1), None);
    }

    #[test]
    fn keys_are_unambiguous() {
        let mut a = String::new();
        push_strs(&mut a, ["ab", "c"].into_iter());
        let mut b = String::new();
        push_strs(&mut b, ["a", "bc"].into_iter());
        assert_ne!(a, b);
        let cache = HookCache::default();
        cache.put(&a, 14);
        assert_eq!(cache.get(&a), Some(14));
        assert_eq!(cache.get(&b), None);
        assert_eq!(cache.len(), 1);
    }
}
