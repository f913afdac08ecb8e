//! The map is true (issue 11): no module of `host/src` imports a module that imports it back,
//! directly or around a loop, and `lib.rs`'s `# Layout` lists every module in an order where
//! each uses only modules above it. Read from the `crate::` paths of the source itself (doc
//! comments and `#[cfg(test)]` code left out, since tests may reach anywhere).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Top-level module → the top-level modules its non-test code names through `crate::`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name == "lib.rs" || name == "bin" {
            continue;
        }
        let module = name.trim_end_matches(".rs").to_owned();
        let mut found = Vec::new();
        if path.is_dir() {
            rust_files(&path, &mut found);
        } else {
            found.push(path);
        }
        files.entry(module).or_default().extend(found);
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, paths) in &files {
        let mut uses = BTreeSet::new();
        for path in paths {
            if path.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap();
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => &text[..at],
                None => &text,
            };
            for line in code.lines() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for (at, _) in line.match_indices("crate::") {
                    let rest = &line[at + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if modules.contains(&name) && name != *module {
                        uses.insert(name);
                    }
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = graph();
    assert!(graph.len() > 15, "the scan found the modules: {graph:?}");
    assert!(
        graph["exec"].contains("runner"),
        "the scan sees real imports"
    );
    // Depth-first search; a grey node seen again closes a loop.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, bool>,
        path: &mut Vec<&'a str>,
    ) {
        state.insert(module, false);
        path.push(module);
        for next in &graph[module] {
            match state.get(next.as_str()) {
                Some(false) => {
                    let from = path.iter().position(|m| m == next).unwrap();
                    panic!("import cycle: {} -> {next}", path[from..].join(" -> "));
                }
                Some(true) => {}
                None => visit(next, graph, state, path),
            }
        }
        path.pop();
        state.insert(module, true);
    }
    let mut state = BTreeMap::new();
    for module in graph.keys() {
        if !state.contains_key(module.as_str()) {
            visit(module, &graph, &mut state, &mut Vec::new());
        }
    }
}

#[test]
fn the_layout_in_lib_rs_lists_every_module_below_what_it_uses() {
    let graph = graph();
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let layout = lib
        .split("//! # Layout")
        .nth(1)
        .and_then(|rest| rest.split("//! # ").next())
        .expect("lib.rs has a # Layout section");
    let mut order: Vec<String> = Vec::new();
    for line in layout.lines() {
        let Some(item) = line.strip_prefix("//! - [`") else {
            continue;
        };
        let name: String = item.chars().take_while(|c| *c != '`').collect();
        order.push(name);
    }
    let listed: BTreeSet<&String> = order.iter().collect();
    let modules: BTreeSet<&String> = graph.keys().collect();
    assert_eq!(listed, modules, "the layout lists exactly the modules");
    for (index, module) in order.iter().enumerate() {
        for used in &graph[module] {
            let at = order.iter().position(|m| m == used).unwrap();
            assert!(
                at < index,
                "`{module}` uses `{used}`, which the layout lists below it"
            );
        }
    }
}
