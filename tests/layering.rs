//! The module graph of `src/` has no cycle: no module imports another that
//! imports it back, directly or through others. Read from the source text:
//! every `crate::…`, `super::…` and `self::…` path outside `#[cfg(test)]`
//! code is an edge to the deepest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module paths (`harvest::refresh`) with their non-test source.
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let mut inner = prefix.to_vec();
            inner.push(name.clone());
            modules(&path, &inner, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut module = prefix.to_vec();
            if !matches!(name.as_str(), "mod" | "lib" | "main") {
                module.push(name.clone());
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            if name != "main" {
                out.insert(module, code);
            }
        }
    }
}

/// The paths a source refers to, as segments after `crate`, `super` or
/// `self` resolved against `module` (its file's own module).
fn references(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut at = 0;
        while let Some(i) = code[at..].find(start) {
            let begin = at + i;
            at = begin + start.len();
            if begin > 0
                && (bytes[begin - 1].is_ascii_alphanumeric() || bytes[begin - 1] == b'_' || bytes[begin - 1] == b':')
            {
                continue;
            }
            let base: Vec<String> = match start {
                "crate::" => Vec::new(),
                "super::" => module[..module.len().saturating_sub(1)].to_vec(),
                _ => module.to_vec(),
            };
            let rest = &code[at..];
            let path: String =
                rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':' || *c == '{').collect();
            let mut segments: Vec<String> = base;
            let mut group = None;
            for seg in path.split("::") {
                if seg.starts_with('{') {
                    let end = rest.find('}').unwrap_or(rest.len());
                    let inner = &rest[rest.find('{').unwrap_or(0) + 1..end];
                    group = Some(
                        inner
                            .split(',')
                            .map(|s| s.trim().split("::").next().unwrap_or("").to_owned())
                            .collect::<Vec<_>>(),
                    );
                    break;
                }
                if seg.is_empty() {
                    break;
                }
                segments.push(seg.to_owned());
            }
            match group {
                Some(items) => {
                    for item in items.into_iter().filter(|s| !s.is_empty()) {
                        let mut p = segments.clone();
                        p.push(item);
                        found.push(p);
                    }
                }
                None => found.push(segments),
            }
        }
    }
    found
}

#[test]
fn the_modules_of_src_import_each_other_without_cycles() {
    let mut sources = BTreeMap::new();
    modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &[], &mut sources);
    let known: BTreeSet<Vec<String>> = sources.keys().cloned().chain([vec!["proto".to_owned()]]).collect();
    let deepest = |path: &[String]| -> Option<Vec<String>> {
        (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| known.contains(p))
    };
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, code) in &sources {
        // A folder module also names its children without a prefix.
        let children = known.iter().filter(|k| k.len() == module.len() + 1 && k.starts_with(module));
        let bare = children.filter(|child| {
            let name = format!("{}::", child.last().unwrap());
            code.match_indices(&name).any(|(i, _)| {
                i == 0
                    || !code.as_bytes()[i - 1].is_ascii_alphanumeric() && !matches!(code.as_bytes()[i - 1], b'_' | b':')
            })
        });
        for path in bare.cloned().collect::<Vec<_>>().into_iter().chain(references(module, code)) {
            if let Some(target) = deepest(&path).filter(|t| t != module && !t.is_empty()) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                0 => visit(next, edges, state, stack, cycles),
                1 => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    let names: Vec<String> = stack[from..].iter().chain([next]).map(|m| m.join("::")).collect();
                    cycles.push(names.join(" → "));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
    }
    let (mut state, mut cycles) = (BTreeMap::new(), Vec::new());
    for node in sources.keys() {
        if state.get(node).copied().unwrap_or(0) == 0 {
            visit(node, &edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(cycles.is_empty(), "import cycles among the modules of src/:\n{}", cycles.join("\n"));
    // The check sees the imports it must see.
    assert!(
        edges[&vec!["harvest".to_owned(), "recompute".to_owned()]]
            .contains(&vec!["harvest".to_owned(), "refresh".to_owned()])
    );
}
