//! Conventions kept by a test rather than by reviewers (after rust-analyzer's `tidy`): every
//! crate says what it owns and what it must not know, no source file grows past 600 lines
//! without a reason written down, no `mod.rs`, and the crates depend on each other only as
//! docs/ARCHITECTURE.md allows.
//!
//! Each check lists every problem it finds, and how to fix it, before it fails.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines a source file may have before it needs an entry in [`LONG_FILES`].
const MAX_LINES: usize = 600;
/// The allow-list of long files, relative to the workspace root.
const LONG_FILES: &str = "docs/long-files.txt";
/// Where the dependency rules live, and the markers around their table.
const ARCHITECTURE: &str = "docs/ARCHITECTURE.md";
const RULES_START: &str = "<!-- tidy:dependency-rules -->";
const RULES_END: &str = "<!-- /tidy:dependency-rules -->";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// Fails with every problem found, one per line.
fn report(check: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "tidy: {check}\n\n{}\n",
        problems.join("\n\n")
    );
}

/// The workspace's crates: (folder name, folder), for `crates/*` and `bench`.
fn crate_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut dirs: Vec<(String, PathBuf)> = std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .map(|p| (name_of(&p), p))
        .collect();
    dirs.push(("bench".into(), root.join("bench")));
    dirs.sort();
    dirs
}

fn name_of(dir: &Path) -> String {
    dir.file_name()
        .expect("a folder name")
        .to_string_lossy()
        .into_owned()
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_crate_says_what_it_owns_and_must_not_know() {
    let root = root();
    let mut problems = Vec::new();
    for (_, dir) in crate_dirs(&root) {
        let roots: Vec<PathBuf> = ["src/lib.rs", "src/main.rs"]
            .iter()
            .map(|f| dir.join(f))
            .filter(|p| p.is_file())
            .collect();
        if roots.is_empty() {
            problems.push(format!(
                "{}: no src/lib.rs or src/main.rs to carry the crate's doc",
                relative(&root, &dir)
            ));
        }
        for file in roots {
            let text = std::fs::read_to_string(&file).expect("readable source");
            // The crate's top doc: the `//!` lines the file starts with.
            let doc: Vec<&str> = text
                .lines()
                .take_while(|l| l.starts_with("//!"))
                .map(|l| l.trim_start_matches("//!").trim())
                .collect();
            for line in ["Owns:", "Must not know:"] {
                if !doc.iter().any(|l| l.starts_with(line)) {
                    problems.push(format!(
                        "{}: the top doc (the `//!` lines the file starts with) has no \
                         `{line}` line. Say in one sentence what this crate {} (as \
                         crates/runner/src/lib.rs does).",
                        relative(&root, &file),
                        if line == "Owns:" {
                            "is responsible for"
                        } else {
                            "must stay ignorant of, so that it stays replaceable"
                        }
                    ));
                }
            }
        }
    }
    report("crate docs", &problems);
}

/// Source files under the folders people edit, skipping what tools make.
fn source_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if !matches!(
                    name.to_str(),
                    Some("target" | "node_modules" | "dist" | "screenshots" | "test-results")
                ) {
                    walk(&path, out);
                }
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "rs" | "ts" | "tsx" | "mjs"))
            {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for dir in ["crates", "bench", "web/src", "web/e2e"] {
        walk(&root.join(dir), &mut files);
    }
    files.sort();
    files
}

/// Whether a tool wrote the file (it says `@generated` near its top).
fn generated(text: &str) -> bool {
    text.lines().take(5).any(|l| l.contains("@generated"))
}

#[test]
fn long_files_are_listed_with_a_reason() {
    let root = root();
    let list_path = root.join(LONG_FILES);
    let list = std::fs::read_to_string(&list_path).expect("docs/long-files.txt");
    let mut problems = Vec::new();
    let mut allowed = BTreeMap::new();
    for (n, line) in list.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((path, reason)) if !reason.trim().is_empty() => {
                allowed.insert(path.trim().to_string(), n + 1);
            }
            _ => problems.push(format!(
                "{LONG_FILES}:{}: `{line}` is not `path: reason`",
                n + 1
            )),
        }
    }
    let mut seen = BTreeSet::new();
    for file in source_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let lines = text.lines().count();
        let path = relative(&root, &file);
        if generated(&text) || lines <= MAX_LINES {
            continue;
        }
        seen.insert(path.clone());
        if !allowed.contains_key(&path) {
            problems.push(format!(
                "{path} has {lines} lines, more than {MAX_LINES}. Split it by capability (a \
                 file per thing it does; in Rust `foo.rs` beside `foo/`), or, if it really \
                 reads best as one file, add `{path}: <why>` to {LONG_FILES}."
            ));
        }
    }
    for (path, line) in &allowed {
        if seen.contains(path) {
            continue;
        }
        let file = root.join(path);
        let why = if file.is_file() {
            let lines = std::fs::read_to_string(&file)
                .unwrap_or_default()
                .lines()
                .count();
            format!("has {lines} lines now, at most {MAX_LINES}")
        } else {
            "does not exist any more".to_string()
        };
        problems.push(format!(
            "{LONG_FILES}:{line}: {path} {why}; remove its entry so the list stays honest"
        ));
    }
    report("long files", &problems);
}

#[test]
fn no_mod_rs() {
    let root = root();
    let problems: Vec<String> = source_files(&root)
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "mod.rs"))
        .map(|f| {
            format!(
                "{}: name the module after its folder (`foo.rs` beside `foo/`), not `mod.rs`",
                relative(&root, &f)
            )
        })
        .collect();
    report("mod.rs", &problems);
}

/// A cell of the rules table: the crates it stands for, and the names in it that are no
/// crate of this workspace.
fn crates_in(cell: &str, all: &BTreeSet<String>) -> (BTreeSet<String>, Vec<String>) {
    let named: BTreeSet<String> = cell
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    let unknown = named
        .iter()
        .filter(|n| !all.contains(*n))
        .cloned()
        .collect();
    let crates = if cell.starts_with("every cove crate") {
        all.difference(&named).cloned().collect()
    } else {
        named.intersection(all).cloned().collect()
    };
    (crates, unknown)
}

/// The workspace's crates by folder name, each with the workspace crates it depends on
/// directly (normal dependencies only: not dev- or build-dependencies).
fn dependency_graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    // Package name (`cove-backend`) to folder name (`backend`), as the rules say it.
    let folder: BTreeMap<&str, String> = packages
        .iter()
        .map(|p| {
            let manifest = Path::new(p["manifest_path"].as_str().expect("manifest_path"));
            (
                p["name"].as_str().expect("name"),
                name_of(manifest.parent().expect("a crate folder")),
            )
        })
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| folder.get(d["name"].as_str()?).cloned())
                .collect();
            (folder[p["name"].as_str().expect("name")].clone(), deps)
        })
        .collect()
}

/// The path from `from` to `to` through direct dependencies, if there is one.
fn path_between(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(at) = queue.pop_front() {
        for next in graph.get(at).into_iter().flatten() {
            if came_from.contains_key(next.as_str()) || next == from {
                continue;
            }
            came_from.insert(next, at);
            if next == to {
                let mut path = vec![to.to_string()];
                let mut step = to;
                while step != from {
                    step = came_from[step];
                    path.push(step.to_string());
                }
                path.reverse();
                return Some(path);
            }
            queue.push_back(next);
        }
    }
    None
}

#[test]
fn crates_depend_only_as_the_architecture_allows() {
    let root = root();
    let graph = dependency_graph(&root);
    let all: BTreeSet<String> = graph.keys().cloned().collect();
    let doc = std::fs::read_to_string(root.join(ARCHITECTURE)).expect("docs/ARCHITECTURE.md");
    let table = doc
        .split_once(RULES_START)
        .and_then(|(_, rest)| rest.split_once(RULES_END))
        .map(|(table, _)| table)
        .unwrap_or_else(|| {
            panic!("{ARCHITECTURE} has no rules table between {RULES_START} and {RULES_END}")
        });
    let mut problems = Vec::new();
    let mut unknown = BTreeSet::new();
    let mut rules = 0;
    for line in table.lines().map(str::trim) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let header = cells[0] == "crate" || cells[0].chars().all(|c| c == '-' || c == ':');
        if !line.starts_with('|') || header {
            continue;
        }
        if cells.len() < 3 {
            problems.push(format!(
                "{ARCHITECTURE}, rule `{line}`: a rule has three cells: | crate | must not \
                 depend on | why |"
            ));
            continue;
        }
        if !cells[0].contains('`') && !cells[0].starts_with("every cove crate")
            || !cells[1].contains('`') && !cells[1].starts_with("every cove crate")
        {
            problems.push(format!(
                "{ARCHITECTURE}, rule `{line}`: each of the first two cells names crates in \
                 backticks (`a`, `b`) or says `every cove crate` (optionally `except `a``)"
            ));
            continue;
        }
        let (crates, unknown_crates) = crates_in(cells[0], &all);
        let (forbidden, unknown_forbidden) = crates_in(cells[1], &all);
        // The rest of the rule still holds: a rule about a crate still to come (or gone)
        // must not hide the others.
        unknown.extend(unknown_crates.into_iter().chain(unknown_forbidden));
        rules += 1;
        let why = cells[2];
        for krate in &crates {
            for banned in forbidden.iter().filter(|b| *b != krate) {
                if let Some(path) = path_between(&graph, krate, banned) {
                    let holders = path[..path.len() - 1]
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(" or ");
                    problems.push(format!(
                        "`{krate}` depends on `{banned}` ({}), which {ARCHITECTURE} forbids: \
                         | {} | {} | {why}\n  Fix: break that chain by dropping a dependency \
                         along it (in the [dependencies] of {holders}), moving what is needed \
                         across the boundary; or, if the architecture really changed, change \
                         the rule in {ARCHITECTURE} and say why in its last column.",
                        path.join(" -> "),
                        cells[0],
                        cells[1],
                    ));
                }
            }
        }
    }
    for name in unknown {
        problems.push(format!(
            "{ARCHITECTURE}: the rules name `{name}`, which is no crate of this workspace \
             (folders under crates/, and bench: {}). Fix the name, or remove the rules about \
             a crate that is gone; a crate still to come makes this fail until it exists.",
            all.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if rules == 0 {
        problems.push(format!("{ARCHITECTURE}: the rules table has no rules"));
    }
    report("dependency rules", &problems);
}
