//! The dependency rules of `docs/architecture.md`, checked on the source itself: the import graph
//! between the crate's top-level modules has no cycle, the engine (`rbac`, `route`, `authn`) imports
//! no async runtime or network crate and nothing above itself, the edges import nothing of the
//! request path, the front ends import neither each other nor the account sources, only `cli` and
//! `control_plane` reach the process lifecycle, and no source file is over 500 lines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The pure engine.
const ENGINE: &[&str] = &["rbac", "route", "authn"];
/// Edges: used from anywhere, import nothing of the request path.
const EDGES: &[&str] = &["telemetry", "audit", "config", "tls", "clock", "proto"];
/// The request path and the process around it, which no edge may import.
const UPPER: &[&str] = &[
    "authz",
    "accounts",
    "jwks",
    "envoy",
    "http",
    "server",
    "control_plane",
    "cli",
];
/// Front ends: wire to `authz` and back.
const FRONTS: &[&str] = &["envoy", "http"];
/// Crates the engine must not name: it is synchronous and does no I/O over the network.
const RUNTIME_CRATES: &[&str] = &["tokio", "tonic", "moka", "reqwest", "hyper", "axum", "arc_swap"];
/// The longest source file allowed.
const MAX_LINES: usize = 500;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file holding unit tests only, whose imports are not the module's.
fn is_test_file(path: &Path) -> bool {
    let name = path.file_stem().unwrap().to_str().unwrap();
    name == "tests" || name.ends_with("_tests") || name.starts_with("tests_") || name == "test_fixture"
}

/// The code of a file without comments and without a trailing `#[cfg(test)]` module.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod ") && next.contains('{'))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line.split(" // ").next().unwrap_or(line));
        code.push('\n');
    }
    code
}

/// The crate's top-level modules a piece of code names through `crate::`.
fn crate_modules_named(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the first segment of each item at depth one
            let mut depth = 1;
            let mut item_start = true;
            let mut ident = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if depth == 1 && item_start && (c.is_alphanumeric() || c == '_') => ident.push(c),
                    _ if depth == 1 && item_start && !ident.is_empty() => {
                        found.insert(std::mem::take(&mut ident));
                        item_start = false;
                    }
                    _ => {}
                }
            }
            if !ident.is_empty() {
                found.insert(ident);
            }
        } else {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                found.insert(ident);
            }
        }
    }
    found
}

/// Each top-level module of `src/` and the top-level modules its code imports.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" || is_test_file(&file) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        let imports = graph.entry(module.clone()).or_default();
        for named in crate_modules_named(&code) {
            if named != module {
                imports.insert(named);
            }
        }
    }
    graph
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = import_graph();
    // depth-first search with colours; a grey node met again closes a cycle
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) {
        match state.get(node).copied() {
            Some(2) => return,
            Some(1) => {
                let start = path.iter().position(|n| n == node).unwrap();
                panic!("import cycle: {} -> {node}", path[start..].join(" -> "));
            }
            _ => {}
        }
        state.insert(node.to_owned(), 1);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, state, path);
        }
        path.pop();
        state.insert(node.to_owned(), 2);
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        visit(node, &graph, &mut state, &mut Vec::new());
    }
}

#[test]
fn the_engine_imports_only_the_engine_and_no_runtime() {
    let graph = import_graph();
    for module in ENGINE {
        let imports = &graph[*module];
        let outside: Vec<_> = imports.iter().filter(|m| !ENGINE.contains(&m.as_str())).collect();
        assert!(outside.is_empty(), "`{module}` imports {outside:?}");
    }
    let mut files = Vec::new();
    for module in ENGINE {
        rust_files(&root().join("src").join(module), &mut files);
    }
    for file in files.iter().filter(|f| !is_test_file(f)) {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for name in RUNTIME_CRATES {
            assert!(
                !code.contains(&format!("{name}::")),
                "{} names `{name}`",
                file.display()
            );
        }
    }
}

#[test]
fn edges_import_nothing_of_the_request_path() {
    let graph = import_graph();
    for module in EDGES {
        let Some(imports) = graph.get(*module) else {
            continue;
        };
        let upward: Vec<_> = imports.iter().filter(|m| UPPER.contains(&m.as_str())).collect();
        assert!(upward.is_empty(), "edge `{module}` imports {upward:?}");
    }
}

#[test]
fn front_ends_reach_only_the_policy() {
    let graph = import_graph();
    for module in FRONTS {
        let imports = &graph[*module];
        for forbidden in FRONTS
            .iter()
            .chain(&["accounts", "server", "cli", "control_plane"])
        {
            assert!(
                forbidden == module || !imports.contains(*forbidden),
                "front end `{module}` imports `{forbidden}`"
            );
        }
    }
}

#[test]
fn only_the_cli_and_the_control_plane_reach_the_lifecycle() {
    let graph = import_graph();
    for (module, imports) in &graph {
        if module != "cli" && module != "control_plane" {
            assert!(!imports.contains("server"), "`{module}` imports `server`");
        }
    }
}

#[test]
fn no_source_file_is_over_the_limit() {
    let mut files = Vec::new();
    for dir in [
        "src",
        "tests",
        "benches",
        "examples",
        "fuzz/harness",
        "fuzz/fuzz_targets",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines})", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn the_import_reader_sees_groups_and_paths() {
    let code =
        "use crate::{authz::Verdict, rbac::{self, Check}, clock};\nlet x = crate::route::normalize(p);";
    let named: Vec<_> = crate_modules_named(code).into_iter().collect();
    assert_eq!(named, ["authz", "clock", "rbac", "route"]);
}
