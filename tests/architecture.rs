//! Architecture checks for the meshtrust workspace (docs/architecture.md).
//!
//! Each check reads the workspace as it is — `cargo metadata --no-deps`, the source text,
//! the docs — and reports every finding at once. Nothing is compiled but this file, so the
//! suite runs in well under a second:
//!
//! ```sh
//! cargo test -p meshtrust-testkit --test architecture
//! ```
//!
//! The parsers here are deliberately small (a lexer that blanks comments and literals, a
//! `use`-tree reader, a mermaid edge reader); the tests at the bottom of this file check them
//! on small inputs, so that a failure above is a finding about the workspace, not about them.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

// ---------------------------------------------------------------------------------------
// The intended architecture.
// ---------------------------------------------------------------------------------------

/// The product crates: package name, short name (the node in docs/architecture.md), layer.
/// A normal dependency between them points to a strictly lower layer; crates on the same
/// layer (peering, controller) never depend on each other.
const CRATES: &[(&str, &str, u8)] = &[
    ("meshtrust-ca", "ca", 0),
    ("meshtrust-issuer", "issuer", 1),
    ("meshtrust-kube", "kube", 2),
    ("meshtrust-peering", "peering", 3),
    ("meshtrust-controller", "controller", 3),
    ("meshtrust-service", "service", 3),
    ("meshtrust-agent", "agent", 3),
    ("meshtrust-cli", "cli", 4),
];

/// The library crates, by short name: everything but the binary.
const LIBRARIES: &[&str] = &[
    "ca",
    "issuer",
    "kube",
    "peering",
    "controller",
    "service",
    "agent",
];

/// The test harness: a dev-dependency of others, never a normal one.
const TESTKIT: &str = "meshtrust-testkit";

/// Crates only the binary uses: argument parsing, error reporting at the edge, terminal
/// output, log setup.
const BINARY_ONLY: &[&str] = &[
    "clap",
    "anyhow",
    "comfy-table",
    "indicatif",
    "tracing-subscriber",
];

/// Longest production part of a source file (STYLE.md rule 7: split before ~400 lines).
const MAX_PRODUCTION_LINES: usize = 400;

/// Longest production function, from the line of its `fn` to the line of its closing brace.
const MAX_FUNCTION_LINES: usize = 60;

/// Whether `ca`, which is pure X.509 (no I/O, no async, no clock), may not depend on `dep`.
fn ca_may_not_use(dep: &str) -> bool {
    let families = [
        "tokio",
        "kube",
        "k8s-openapi",
        "aws",
        "axum",
        "hyper",
        "reqwest",
    ];
    families
        .iter()
        .any(|f| dep == *f || dep.starts_with(&format!("{f}-")))
}

fn crate_info(package: &str) -> Option<(&'static str, u8)> {
    CRATES
        .iter()
        .find(|(name, ..)| *name == package)
        .map(|&(_, short, layer)| (short, layer))
}

// ---------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------

#[test]
fn the_crate_graph_points_one_way_from_the_binary_down_to_ca() {
    let violations = dependency_violations(&workspace().packages);
    assert!(
        violations.is_empty(),
        "dependencies against the intended direction (cli → {{controller, peering}} → kube → issuer → ca; \
         docs/architecture.md):\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn the_diagram_in_docs_architecture_md_matches_the_crate_graph() {
    let ws = workspace();
    let doc_path = ws.root.join("docs/architecture.md");
    let doc = std::fs::read_to_string(&doc_path)
        .unwrap_or_else(|e| panic!("{}: {e}", doc_path.display()));
    let diagram = diagram_edges(&doc).unwrap_or_else(|e| panic!("docs/architecture.md: {e}"));

    let known: BTreeSet<&str> = CRATES.iter().map(|(_, short, _)| *short).collect();
    let unknown: BTreeSet<&str> = diagram
        .iter()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .filter(|n| !known.contains(n))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/architecture.md: the diagram names {unknown:?}, which are not crates (known: {known:?})"
    );

    let actual = internal_edges(&ws.packages);
    let undrawn: Vec<String> = actual.difference(&diagram).map(edge).collect();
    let undeclared: Vec<String> = diagram.difference(&actual).map(edge).collect();
    assert!(
        undrawn.is_empty() && undeclared.is_empty(),
        "the crate diagram in docs/architecture.md and the Cargo.toml files disagree\n  \
         in Cargo.toml, missing from the diagram: {undrawn:?}\n  \
         in the diagram, missing from Cargo.toml: {undeclared:?}\n\
         (either is fine to fix: change the dependency or redraw the arrow, in the same commit)"
    );
}

#[test]
fn no_production_source_file_is_longer_than_400_lines() {
    let ws = workspace();
    let mut offenders: Vec<(usize, String)> = Vec::new();
    for package in product_packages(ws) {
        for file in crate_sources(ws, package) {
            if !file.test_only && file.analysis.production_end > MAX_PRODUCTION_LINES {
                offenders.push((file.analysis.production_end, file.rel.clone()));
            }
        }
    }
    offenders.sort_by(|a, b| b.cmp(a));
    let list: Vec<String> = offenders
        .iter()
        .map(|(n, rel)| format!("{rel}: {n} production lines"))
        .collect();
    assert!(
        list.is_empty(),
        "{} source file(s) longer than {MAX_PRODUCTION_LINES} lines before their test module; \
         split each into files that hold one concept:\n  {}",
        list.len(),
        list.join("\n  ")
    );
}

#[test]
fn no_production_function_is_longer_than_60_lines() {
    let ws = workspace();
    let mut offenders: Vec<(usize, String)> = Vec::new();
    for package in product_packages(ws) {
        for file in crate_sources(ws, package).iter().filter(|f| !f.test_only) {
            for f in functions(&file.analysis) {
                if f.lines() > MAX_FUNCTION_LINES {
                    let at = format!("{}:{} {} ({} lines)", file.rel, f.line, f.name, f.lines());
                    offenders.push((f.lines(), at));
                }
            }
        }
    }
    offenders.sort_by(|a, b| b.cmp(a));
    let list: Vec<String> = offenders.into_iter().map(|(_, at)| at).collect();
    assert!(
        list.is_empty(),
        "{} production function(s) longer than {MAX_FUNCTION_LINES} lines from `fn` to the \
         closing brace; split each into well-named steps:\n  {}",
        list.len(),
        list.join("\n  ")
    );
}

#[test]
fn no_crate_has_a_cycle_between_its_top_level_modules() {
    let ws = workspace();
    let mut reports = Vec::new();
    for package in product_packages(ws) {
        let graph = module_graph(&crate_sources(ws, package));
        for scc in cycles(&graph) {
            reports.push(describe_cycle(&package.name, &scc, &graph));
        }
    }
    assert!(
        reports.is_empty(),
        "top-level modules that depend on each other (move the shared part below both, or \
         merge them):\n{}",
        reports.join("\n")
    );
}

#[test]
fn every_library_crate_denies_missing_docs_and_forbids_unsafe_code() {
    let ws = workspace();
    let mut missing = Vec::new();
    for package in library_packages(ws) {
        let lib = package.dir.join("src/lib.rs");
        let rel = relative(&ws.root, &lib);
        let Ok(text) = std::fs::read_to_string(&lib) else {
            missing.push(format!("{rel}: no lib.rs"));
            continue;
        };
        let code = blank_comments_and_literals(&text);
        for (lint, level) in [("missing_docs", "deny"), ("unsafe_code", "forbid")] {
            if !has_inner_lint_attribute(&code, level, lint) {
                missing.push(format!("{rel}: no #![{level}({lint})]"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "library crate roots without the house attributes:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_library_crate_has_its_own_non_exhaustive_error_enum() {
    let ws = workspace();
    let mut missing = Vec::new();
    for package in library_packages(ws) {
        let short = crate_info(&package.name).map_or("?", |(s, _)| s);
        let found = crate_sources(ws, package)
            .iter()
            .filter(|f| !f.test_only)
            .any(|f| declares_error_enum(&f.analysis));
        if !found {
            missing.push(format!(
                "{short}: no `#[non_exhaustive]` `pub enum Error` deriving thiserror's Error in {}/src",
                relative(&ws.root, &package.dir)
            ));
        }
        if !package.deps.iter().any(|d| !d.dev && d.name == "thiserror") {
            missing.push(format!("{short}: thiserror is not a dependency"));
        }
    }
    assert!(
        missing.is_empty(),
        "library crates without their own error type:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn library_crates_never_print() {
    let ws = workspace();
    let mut prints = Vec::new();
    for package in library_packages(ws) {
        for file in crate_sources(ws, package).iter().filter(|f| !f.test_only) {
            for (line, what) in printing(&file.analysis) {
                prints.push(format!("{}:{line}: {what}", file.rel));
            }
        }
    }
    assert!(
        prints.is_empty(),
        "library crates return values and errors; the binary prints them:\n  {}",
        prints.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// The workspace, from `cargo metadata`.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Package {
    name: String,
    dir: PathBuf,
    deps: Vec<Dependency>,
}

#[derive(Debug, Clone)]
struct Dependency {
    name: String,
    /// A dev-dependency (tests, examples, benches only). Build dependencies count as normal.
    dev: bool,
}

struct Workspace {
    root: PathBuf,
    packages: Vec<Package>,
}

fn workspace() -> &'static Workspace {
    static WORKSPACE: OnceLock<Workspace> = OnceLock::new();
    WORKSPACE.get_or_init(|| load_workspace().unwrap_or_else(|e| panic!("{e}")))
}

fn load_workspace() -> Result<Workspace, String> {
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(OsString::from))
        .unwrap_or_else(|| OsString::from("cargo"));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let out = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .map_err(|e| format!("running {cargo:?} metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed (is a Cargo.toml mid-edit?):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    parse_metadata(&meta)
}

fn parse_metadata(meta: &Value) -> Result<Workspace, String> {
    let text = |v: &Value, key: &str| {
        v[key]
            .as_str()
            .map(str::to_owned)
            .ok_or(format!("cargo metadata: no `{key}`"))
    };
    let root = PathBuf::from(text(meta, "workspace_root")?);
    let mut packages = Vec::new();
    for p in meta["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?
    {
        let manifest = PathBuf::from(text(p, "manifest_path")?);
        let deps = p["dependencies"]
            .as_array()
            .ok_or("cargo metadata: no dependencies")?
            .iter()
            .map(|d| {
                Ok(Dependency {
                    // The package name, also when the dependency is renamed (`rename`).
                    name: text(d, "name")?,
                    dev: d["kind"].as_str() == Some("dev"),
                })
            })
            .collect::<Result<_, String>>()?;
        packages.push(Package {
            name: text(p, "name")?,
            dir: manifest
                .parent()
                .ok_or("manifest without a directory")?
                .to_path_buf(),
            deps,
        });
    }
    Ok(Workspace { root, packages })
}

fn product_packages(ws: &Workspace) -> impl Iterator<Item = &Package> {
    ws.packages.iter().filter(|p| crate_info(&p.name).is_some())
}

fn library_packages(ws: &Workspace) -> impl Iterator<Item = &Package> {
    product_packages(ws)
        .filter(|p| crate_info(&p.name).is_some_and(|(s, _)| LIBRARIES.contains(&s)))
}

/// Every normal dependency against the intended direction, one line each.
fn dependency_violations(packages: &[Package]) -> Vec<String> {
    let members: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut found = BTreeSet::new();
    for p in packages {
        let from = crate_info(&p.name);
        if from.is_none() && p.name != TESTKIT {
            found.insert(format!(
                "{}: a workspace package without a layer; add it to CRATES in tests/architecture.rs \
                 and to the diagram in docs/architecture.md",
                p.name
            ));
            continue;
        }
        for d in p.deps.iter().filter(|d| !d.dev) {
            if d.name == TESTKIT {
                found.insert(format!(
                    "{} → {TESTKIT}: the test harness may only be a dev-dependency",
                    p.name
                ));
                continue;
            }
            // The harness sits beside the graph: it may use any product crate.
            let Some((from, from_layer)) = from else {
                continue;
            };
            if let Some((to, to_layer)) = crate_info(&d.name) {
                if to_layer == from_layer {
                    found.insert(format!(
                        "{from} → {to}: sideways; {from} and {to} never depend on each other, \
                         share through a crate below both"
                    ));
                } else if to_layer > from_layer {
                    found.insert(format!("{from} → {to}: upward; {to} sits above {from}"));
                }
            } else if members.contains(d.name.as_str()) {
                // An unknown member: reported once, as a package, above.
            } else {
                if LIBRARIES.contains(&from) && BINARY_ONLY.contains(&d.name.as_str()) {
                    found.insert(format!(
                        "{from} → {}: library crates never parse arguments, print or set up logging; \
                         only cli uses {}",
                        d.name, d.name
                    ));
                }
                if from == "ca" && ca_may_not_use(&d.name) {
                    found.insert(format!(
                        "ca → {}: ca is pure X.509 (no I/O, no async, no clock)",
                        d.name
                    ));
                }
            }
        }
    }
    found.into_iter().collect()
}

/// Normal dependencies between product crates, by short name.
fn internal_edges(packages: &[Package]) -> BTreeSet<(String, String)> {
    let mut edges = BTreeSet::new();
    for p in packages {
        let Some((from, _)) = crate_info(&p.name) else {
            continue;
        };
        for d in p.deps.iter().filter(|d| !d.dev) {
            if let Some((to, _)) = crate_info(&d.name) {
                edges.insert((from.to_owned(), to.to_owned()));
            }
        }
    }
    edges
}

fn edge((a, b): &(String, String)) -> String {
    format!("{a} --> {b}")
}

// ---------------------------------------------------------------------------------------
// The diagram: the first ```mermaid block of docs/architecture.md.
// ---------------------------------------------------------------------------------------

/// The edges of the first mermaid block: one `a --> b` per line; a `graph`/`flowchart`
/// header, `%%` comments, blank lines and node declarations (`ca["ca: pure X.509"]`) are
/// allowed, anything else is refused so that no arrow goes unread.
fn diagram_edges(markdown: &str) -> Result<BTreeSet<(String, String)>, String> {
    let mut lines = markdown.lines().enumerate();
    lines
        .by_ref()
        .find(|(_, l)| l.trim() == "```mermaid")
        .ok_or("no ```mermaid block with the crate diagram")?;
    let mut edges = BTreeSet::new();
    for (n, line) in lines {
        let t = line.trim();
        if t.starts_with("```") {
            return Ok(edges);
        }
        if t.is_empty()
            || t.starts_with("%%")
            || t.starts_with("graph")
            || t.starts_with("flowchart")
        {
            continue;
        }
        let unreadable = || {
            format!(
                "line {}: cannot read `{t}`; write one `a --> b` per line",
                n + 1
            )
        };
        match t.split("-->").collect::<Vec<_>>()[..] {
            [node] => {
                node_id(node).ok_or_else(unreadable)?;
            }
            [a, b] => {
                let (a, b) = (
                    node_id(a).ok_or_else(unreadable)?,
                    node_id(b).ok_or_else(unreadable)?,
                );
                edges.insert((a.to_owned(), b.to_owned()));
            }
            _ => return Err(unreadable()),
        }
    }
    Err("the ```mermaid block is not closed".into())
}

/// `cli`, or `cli["label"]` / `cli(label)` → `cli`.
fn node_id(s: &str) -> Option<&str> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let (id, label) = s.split_at(end);
    let labelled = label.is_empty()
        || [('[', ']'), ('(', ')'), ('{', '}')]
            .iter()
            .any(|&(o, c)| label.starts_with(o) && label.ends_with(c));
    (!id.is_empty() && labelled).then_some(id)
}

// ---------------------------------------------------------------------------------------
// Source files.
// ---------------------------------------------------------------------------------------

struct SourceFile {
    /// Path relative to the workspace root, for messages.
    rel: String,
    /// Module path below the crate root (`src/a/b.rs`, `src/a/b/mod.rs` → `a::b`).
    module: Vec<String>,
    /// Test code only: by name, by `#![cfg(test)]`, or declared `#[cfg(test)] mod x;`.
    test_only: bool,
    analysis: Analysis,
}

/// Every `.rs` file under the package's `src/`, in path order.
fn crate_sources(ws: &Workspace, package: &Package) -> Vec<SourceFile> {
    let src = package.dir.join("src");
    let mut paths = Vec::new();
    collect_rs(&src, &mut paths);
    paths.sort();
    let mut files: Vec<(PathBuf, SourceFile)> = paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let rel_src = path.strip_prefix(&src).expect("under src");
            let analysis = analyze(&text);
            let file = SourceFile {
                rel: relative(&ws.root, &path),
                module: module_path(rel_src),
                test_only: is_test_file_name(rel_src) || analysis.inner_test_cfg,
                analysis,
            };
            (path, file)
        })
        .collect();
    // Modules and files declared test-only by their parent (`#[cfg(test)] mod fixtures;`).
    let mut test_modules = BTreeSet::new();
    let mut test_paths = BTreeSet::new();
    for (path, file) in &files {
        for (name, path_attr) in &file.analysis.test_mods {
            let mut m = file.module.clone();
            m.push(name.clone());
            test_modules.insert(m);
            if let (Some(p), Some(dir)) = (path_attr, path.parent()) {
                test_paths.insert(dir.join(p));
            }
        }
    }
    for (path, file) in &mut files {
        let under_test_module =
            (1..=file.module.len()).any(|n| test_modules.contains(&file.module[..n]));
        file.test_only |= under_test_module || test_paths.contains(path.as_path());
    }
    files.into_iter().map(|(_, f)| f).collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_path(rel_src: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel_src
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().unwrap_or_default();
    let stem = file.trim_end_matches(".rs");
    if !(parts.is_empty() && (stem == "lib" || stem == "main")) && stem != "mod" {
        parts.push(stem.to_owned());
    }
    parts
}

fn is_test_file_name(rel_src: &Path) -> bool {
    let name = rel_src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name == "tests.rs"
        || name == "fixtures.rs"
        || name.ends_with("_tests.rs")
        || rel_src.iter().any(|p| p == "tests")
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// What a source file holds, read from its text with comments and literals blanked.
#[derive(Debug, Default)]
struct Analysis {
    /// The lines, comments and the contents of string and char literals blanked.
    code: Vec<String>,
    /// Index of the `#[cfg(test)]` line that opens the first inline test module, or the
    /// number of lines: everything before it is production code.
    production_end: usize,
    /// Lines (0-based) of other `#[cfg(test)]` items before `production_end`.
    test_lines: BTreeSet<usize>,
    /// `#[cfg(test)] mod name;` declarations, with their `#[path]` if any.
    test_mods: Vec<(String, Option<String>)>,
    /// The file starts with `#![cfg(test)]`.
    inner_test_cfg: bool,
}

impl Analysis {
    /// The production lines, as (1-based line number, code).
    fn production(&self) -> impl Iterator<Item = (usize, &str)> {
        (0..self.production_end)
            .filter(|i| !self.test_lines.contains(i))
            .map(|i| (i + 1, self.code[i].as_str()))
    }
}

fn analyze(text: &str) -> Analysis {
    let raw: Vec<&str> = text.lines().collect();
    let code: Vec<String> = blank_comments_and_literals(text)
        .lines()
        .map(str::to_owned)
        .collect();
    let mut a = Analysis {
        production_end: code.len(),
        ..Analysis::default()
    };

    for line in &code {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if !t.starts_with("#![") {
            break;
        }
        a.inner_test_cfg |= t
            .strip_prefix("#!")
            .is_some_and(|attr| is_test_cfg(&format!("#{attr}")).is_some());
    }

    let mut i = 0;
    while i < code.len() {
        let Some(rest) = is_test_cfg(code[i].trim()) else {
            i += 1;
            continue;
        };
        // The item the attribute applies to: on the same line, or after further attributes.
        let mut path_attr = None;
        let (mut j, mut item) = (i, rest.trim().to_owned());
        while item.is_empty() || item.starts_with("#[") {
            if item.starts_with("#[path") {
                path_attr = raw.get(j).and_then(|r| quoted(r));
            }
            j += 1;
            match code.get(j) {
                Some(l) => item = l.trim().to_owned(),
                None => break,
            }
        }
        let item = strip_visibility(&item);
        if let Some(decl) = item.strip_prefix("mod ") {
            let name: String = decl
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let inline = match (decl.find('{'), decl.find(';')) {
                (Some(b), Some(s)) => b < s,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => code
                    .get(j + 1)
                    .is_some_and(|l| l.trim_start().starts_with('{')),
            };
            if inline {
                a.production_end = i;
                break;
            }
            a.test_mods.push((name, path_attr));
            a.test_lines.extend(i..=j);
            i = j + 1;
            continue;
        }
        let end = item_end(&code, j);
        a.test_lines.extend(i..=end);
        i = end + 1;
    }
    a.code = code;
    a
}

/// For a `#[cfg(test)]`-like attribute at the start of `line` (`test`, or `all(…, test, …)`),
/// what follows it on the line.
fn is_test_cfg(line: &str) -> Option<&str> {
    let body = line.strip_prefix("#[cfg(")?;
    let mut depth = 1;
    let close = body.char_indices().find_map(|(k, c)| {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        (depth == 0).then_some(k)
    })?;
    let (predicate, rest) = (body[..close].trim(), body[close + 1..].strip_prefix(']')?);
    let test = predicate == "test"
        || predicate
            .strip_prefix("all(")
            .and_then(|p| p.strip_suffix(')'))
            .is_some_and(|p| p.split(',').any(|x| x.trim() == "test"));
    test.then_some(rest)
}

fn strip_visibility(item: &str) -> &str {
    let Some(rest) = item.strip_prefix("pub") else {
        return item;
    };
    let rest = match rest.strip_prefix('(') {
        Some(r) => r.split_once(')').map_or(r, |(_, after)| after),
        None => rest,
    };
    rest.trim_start()
}

/// The last line of the item starting on line `start`: its braces balanced, or its `;`.
fn item_end(code: &[String], start: usize) -> usize {
    let (mut depth, mut opened) = (0i32, false);
    for (k, line) in code.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '{' => (depth, opened) = (depth + 1, true),
                '}' => depth -= 1,
                ';' if depth == 0 => return k,
                _ => {}
            }
            if opened && depth == 0 {
                return k;
            }
        }
    }
    code.len().saturating_sub(1)
}

fn quoted(line: &str) -> Option<String> {
    let (_, rest) = line.split_once('"')?;
    rest.split_once('"').map(|(inside, _)| inside.to_owned())
}

/// `src` with comments and the contents of string and char literals replaced by spaces;
/// line breaks are kept, so line numbers stay true.
fn blank_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, chars: &[char]| {
        out.extend(chars.iter().map(|&ch| if ch == '\n' { '\n' } else { ' ' }));
    };
    let ident = |k: usize| k > 0 && (c[k - 1].is_alphanumeric() || c[k - 1] == '_');
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied();
        match (c[i], at(i + 1)) {
            ('/', Some('/')) => {
                let end = c[i..]
                    .iter()
                    .position(|&ch| ch == '\n')
                    .map_or(c.len(), |p| i + p);
                blank(&mut out, &c[i..end]);
                i = end;
            }
            ('/', Some('*')) => {
                let (start, mut depth) = (i, 0);
                while i < c.len() {
                    if c[i] == '/' && at(i + 1) == Some('*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && at(i + 1) == Some('/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                i = i.min(c.len());
                blank(&mut out, &c[start..i]);
            }
            ('"', _) => {
                out.push('"');
                let start = i + 1;
                i = start;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i = i.min(c.len());
                blank(&mut out, &c[start..i]);
                if i < c.len() {
                    out.push('"');
                    i += 1;
                }
            }
            ('r' | 'b' | 'c', _) if !ident(i) && raw_string_start(&c, i).is_some() => {
                let (open, hashes) = raw_string_start(&c, i).expect("checked");
                out.extend(&c[i..=open]);
                let start = open + 1;
                let closing: Vec<char> = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let end = (start..c.len())
                    .find(|&k| c[k..].starts_with(&closing))
                    .unwrap_or(c.len());
                blank(&mut out, &c[start..end]);
                out.extend(&c[end..(end + closing.len()).min(c.len())]);
                i = end + closing.len();
            }
            ('\'', Some('\\')) => {
                // An escaped char literal: '\n', '\'', '\u{1F600}'.
                let start = i + 1;
                i += 3;
                while i < c.len() && c[i] != '\'' && c[i] != '\n' {
                    i += 1;
                }
                out.push('\'');
                blank(&mut out, &c[start..i.min(c.len())]);
                if at(i) == Some('\'') {
                    out.push('\'');
                    i += 1;
                }
            }
            ('\'', Some(_)) if at(i + 2) == Some('\'') => {
                out.push_str("' '");
                i += 3;
            }
            (ch, _) => {
                // Code, and lifetimes (`'a`).
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// For `r"`, `r#"`, `br"`, `cr#"` at `i`: the index of the opening quote and the `#` count.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    let mut k = i;
    if c[k] == 'b' || c[k] == 'c' {
        k += 1;
    }
    if c.get(k) != Some(&'r') {
        return None;
    }
    k += 1;
    let hashes = c[k..].iter().take_while(|&&ch| ch == '#').count();
    (c.get(k + hashes) == Some(&'"')).then_some((k + hashes, hashes))
}

fn has_inner_lint_attribute(code: &str, level: &str, lint: &str) -> bool {
    code.lines().map(str::trim).any(|t| {
        t.strip_prefix(&format!("#![{level}("))
            .and_then(|r| r.strip_suffix(")]"))
            .is_some_and(|lints| lints.split(',').any(|l| l.trim() == lint))
    })
}

/// Whether the production part declares `pub enum Error` marked `#[non_exhaustive]` and
/// deriving an `Error` (thiserror's).
fn declares_error_enum(a: &Analysis) -> bool {
    let lines: Vec<(usize, &str)> = a.production().collect();
    lines.iter().enumerate().any(|(k, (_, line))| {
        let t = line.trim();
        if !(t.starts_with("pub enum Error ")
            || t.starts_with("pub enum Error{")
            || t == "pub enum Error")
        {
            return false;
        }
        let attrs: Vec<&str> = lines[..k]
            .iter()
            .rev()
            .map(|(_, l)| l.trim())
            .take_while(|l| l.is_empty() || l.starts_with("#["))
            .collect();
        attrs.contains(&"#[non_exhaustive]")
            && attrs.iter().any(|a| {
                a.starts_with("#[derive(")
                    && a.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|w| w == "Error")
            })
    })
}

/// Printing in the production part: `println!` and kin, `dbg!`, `io::stdout()`/`stderr()`.
fn printing(a: &Analysis) -> Vec<(usize, String)> {
    let toks = tokens(a.production());
    let mut found = Vec::new();
    for (k, t) in toks.iter().enumerate() {
        let next = toks.get(k + 1).map(|n| n.text.as_str());
        let prev = k.checked_sub(1).map(|p| toks[p].text.as_str());
        let macro_call = matches!(
            t.text.as_str(),
            "println" | "eprintln" | "print" | "eprint" | "dbg"
        ) && next == Some("!");
        let stream = matches!(t.text.as_str(), "stdout" | "stderr")
            && next == Some("(")
            && prev == Some("::");
        if macro_call || stream {
            found.push((
                t.line,
                format!("{}{}", t.text, if macro_call { "!" } else { "()" }),
            ));
        }
    }
    found
}

/// A function item with a body: free, method, `async`, `const`, with any visibility.
#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    /// The line of its `fn` (1-based).
    line: usize,
    /// The line of its closing brace (1-based).
    end: usize,
}

impl Function {
    /// From the line of `fn` to the line of the closing brace, both included.
    fn lines(&self) -> usize {
        self.end - self.line + 1
    }
}

/// Every function with a body in the production part, nested ones included, by matching
/// braces on the blanked text. `fn(…)` pointer types and declarations ending in `;` (trait
/// methods without a body, foreign functions) are not functions here.
fn functions(a: &Analysis) -> Vec<Function> {
    let toks = tokens(a.production());
    let mut found = Vec::new();
    for (k, t) in toks.iter().enumerate() {
        let Some(name) = toks.get(k + 1) else {
            continue;
        };
        if t.text != "fn" || !is_ident(&name.text) || name.text.starts_with('$') {
            continue;
        }
        if let Some(end) = body_end(&toks, k + 2) {
            found.push(Function {
                name: name.text.clone(),
                line: t.line,
                end,
            });
        }
    }
    found
}

/// The line of the brace closing the body of the function whose signature continues at
/// `from`; `None` for a declaration without a body. The body is the first `{` outside
/// parentheses and brackets (`[u8; 4]` and `impl Fn(&str)` stay in the signature).
fn body_end(toks: &[Token], from: usize) -> Option<usize> {
    let mut nesting = 0i32;
    for (k, t) in toks.iter().enumerate().skip(from) {
        match t.text.as_str() {
            "(" | "[" => nesting += 1,
            ")" | "]" => nesting -= 1,
            ";" if nesting == 0 => return None,
            "{" if nesting == 0 => return closing_brace(toks, k),
            _ => {}
        }
    }
    None
}

/// The line of the `}` matching the `{` at `open`.
fn closing_brace(toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for t in &toks[open..] {
        match t.text.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if depth == 0 {
                    return Some(t.line);
                }
            }
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Module references and the top-level module graph.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
}

fn tokens<'a>(lines: impl Iterator<Item = (usize, &'a str)>) -> Vec<Token> {
    let mut out = Vec::new();
    for (line, code) in lines {
        let c: Vec<char> = code.chars().collect();
        let mut i = 0;
        while i < c.len() {
            let ch = c[i];
            let word = |k: usize| c.get(k).is_some_and(|x| x.is_alphanumeric() || *x == '_');
            if ch.is_whitespace() {
                i += 1;
            } else if word(i) || (ch == '$' && word(i + 1)) {
                let start = i;
                i += 1;
                while word(i) {
                    i += 1;
                }
                out.push(Token {
                    text: c[start..i].iter().collect(),
                    line,
                });
            } else if ch == ':' && c.get(i + 1) == Some(&':') {
                out.push(Token {
                    text: "::".into(),
                    line,
                });
                i += 2;
            } else {
                out.push(Token {
                    text: ch.to_string(),
                    line,
                });
                i += 1;
            }
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
}

/// A path the code names: `crate::a::B`, `super::x`, or one leaf of a `use` tree.
#[derive(Debug, Clone, PartialEq)]
struct Reference {
    path: Vec<String>,
    /// The name it is imported as (`use a::B as C` → `C`), for `use` leaves.
    alias: Option<String>,
    line: usize,
}

/// Every `use` leaf, and every `crate::…`/`$crate::…`/`super::…` path outside `use`.
fn references(toks: &[Token]) -> Vec<Reference> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i].text.as_str();
        let next = toks.get(i + 1).map(|n| n.text.as_str());
        let prev = i.checked_sub(1).map(|p| toks[p].text.as_str());
        if t == "use"
            && next.is_some_and(|n| is_ident(n) || n == "::" || n == "{")
            && prev != Some("#")
        {
            let end = (i + 1..toks.len())
                .find(|&k| toks[k].text == ";")
                .unwrap_or(toks.len());
            let mut pos = 0;
            parse_use_tree(&toks[i + 1..end], &mut pos, &[], &mut out);
            i = end + 1;
        } else if matches!(t, "crate" | "$crate" | "super")
            && next == Some("::")
            && prev != Some("::")
        {
            let mut path = vec![t.to_owned()];
            let mut k = i + 1;
            while toks.get(k).is_some_and(|x| x.text == "::")
                && toks.get(k + 1).is_some_and(|x| is_ident(&x.text))
            {
                path.push(toks[k + 1].text.clone());
                k += 2;
            }
            out.push(Reference {
                path,
                alias: None,
                line: toks[i].line,
            });
            i = k;
        } else {
            i += 1;
        }
    }
    out
}

/// Reads one use tree at `pos` (`a::b::{c, d::*, e as f, self}`), pushing each leaf.
fn parse_use_tree(toks: &[Token], pos: &mut usize, prefix: &[String], out: &mut Vec<Reference>) {
    let mut path = prefix.to_vec();
    if toks.get(*pos).is_some_and(|t| t.text == "::") {
        *pos += 1;
    }
    while let Some(t) = toks.get(*pos) {
        match t.text.as_str() {
            "{" => {
                *pos += 1;
                while let Some(inner) = toks.get(*pos) {
                    match inner.text.as_str() {
                        "}" => {
                            *pos += 1;
                            break;
                        }
                        "," => *pos += 1,
                        _ => {
                            let before = *pos;
                            parse_use_tree(toks, pos, &path, out);
                            if *pos == before {
                                *pos += 1;
                            }
                        }
                    }
                }
                return;
            }
            "*" => {
                path.push("*".into());
                *pos += 1;
                out.push(Reference {
                    path,
                    alias: None,
                    line: t.line,
                });
                return;
            }
            word if is_ident(word) => {
                path.push(word.to_owned());
                *pos += 1;
                if toks.get(*pos).is_some_and(|x| x.text == "::") {
                    *pos += 1;
                    continue;
                }
                let mut alias = None;
                if toks.get(*pos).is_some_and(|x| x.text == "as") {
                    alias = toks.get(*pos + 1).map(|x| x.text.clone());
                    *pos += 2;
                }
                if path.len() > 1 && path.last().is_some_and(|l| l == "self") {
                    path.pop();
                }
                out.push(Reference {
                    path,
                    alias,
                    line: t.line,
                });
                return;
            }
            _ => return,
        }
    }
}

/// The absolute path (below the crate root) of `path`, named in module `module`; `None`
/// for paths that do not start at the crate (`std::…`, a local name).
fn resolve(path: &[String], module: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    match first.as_str() {
        "crate" | "$crate" => Some(rest.to_vec()),
        "self" => Some(module.iter().chain(rest).cloned().collect()),
        "super" => {
            let ups = 1 + rest.iter().take_while(|s| *s == "super").count();
            let base = module.len().checked_sub(ups)?;
            Some(
                module[..base]
                    .iter()
                    .chain(&rest[ups - 1..])
                    .cloned()
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Top-level module → top-level module it refers to → where (`file:line (path)`).
type ModuleGraph = BTreeMap<String, BTreeMap<String, String>>;

fn module_graph(files: &[SourceFile]) -> ModuleGraph {
    let files: Vec<&SourceFile> = files.iter().filter(|f| !f.test_only).collect();
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.module.first().cloned())
        .collect();

    // Names the crate root re-exports (`pub use error::{Error, Result};` → Error → error),
    // so that `use crate::Error` counts as a use of `error`.
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for root in files.iter().filter(|f| f.module.is_empty()) {
        for r in references(&tokens(root.analysis.production())) {
            let path: &[String] = match r.path.first().map(String::as_str) {
                Some("crate" | "self") => &r.path[1..],
                _ => &r.path,
            };
            if let [module, .., leaf] = path
                && tops.contains(module)
                && leaf != "*"
            {
                let name = r.alias.clone().unwrap_or_else(|| leaf.clone());
                reexports.insert(name, module.clone());
            }
        }
    }

    let mut graph = ModuleGraph::new();
    for file in &files {
        let Some(from) = file.module.first() else {
            continue;
        };
        graph.entry(from.clone()).or_default();
        for r in references(&tokens(file.analysis.production())) {
            let Some(abs) = resolve(&r.path, &file.module) else {
                continue;
            };
            let Some(first) = abs.first() else { continue };
            let to = if tops.contains(first) {
                Some(first)
            } else {
                reexports.get(first)
            };
            if let Some(to) = to.filter(|to| *to != from) {
                graph
                    .entry(from.clone())
                    .or_default()
                    .entry(to.clone())
                    .or_insert_with(|| format!("{}:{} ({})", file.rel, r.line, r.path.join("::")));
            }
        }
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(graph: &ModuleGraph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g ModuleGraph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found.sort();
    t.found
}

/// One cycle through the component, then every edge inside it with where it comes from.
fn describe_cycle(package: &str, scc: &[String], graph: &ModuleGraph) -> String {
    let inside: BTreeSet<&str> = scc.iter().map(String::as_str).collect();
    let start = scc[0].as_str();
    // Shortest way from `start` back to itself, inside the component.
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    'search: while let Some(v) = queue.pop_front() {
        for w in graph[v]
            .keys()
            .map(String::as_str)
            .filter(|w| inside.contains(w))
        {
            if w == start {
                came_from.insert(start, v);
                break 'search;
            }
            if !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    let mut cycle = vec![start];
    let mut v = came_from[start];
    while v != start {
        cycle.push(v);
        v = came_from[v];
    }
    cycle.push(start);
    cycle.reverse();
    let mut s = format!("  {package}: {}", cycle.join(" → "));
    for from in scc {
        for (to, at) in graph[from]
            .iter()
            .filter(|(to, _)| inside.contains(to.as_str()))
        {
            s.push_str(&format!("\n      {from} → {to}: {at}"));
        }
    }
    s
}

// ---------------------------------------------------------------------------------------
// The checkers, checked: each must be able to fail.
// ---------------------------------------------------------------------------------------

fn package(name: &str, deps: &[&str], dev: &[&str]) -> Package {
    let dep = |n: &&str, dev| Dependency {
        name: (*n).to_owned(),
        dev,
    };
    Package {
        name: name.to_owned(),
        dir: PathBuf::new(),
        deps: deps
            .iter()
            .map(|n| dep(n, false))
            .chain(dev.iter().map(|n| dep(n, true)))
            .collect(),
    }
}

fn intended_packages() -> Vec<Package> {
    vec![
        package(
            "meshtrust-ca",
            &["rcgen", "time", "thiserror"],
            &["serde_json"],
        ),
        package(
            "meshtrust-issuer",
            &["meshtrust-ca", "tokio", "aws-sdk-acmpca"],
            &[],
        ),
        package(
            "meshtrust-kube",
            &["meshtrust-ca", "meshtrust-issuer", "kube"],
            &[],
        ),
        package(
            "meshtrust-peering",
            &["meshtrust-kube", "meshtrust-issuer", "meshtrust-ca"],
            &[],
        ),
        package(
            "meshtrust-controller",
            &["meshtrust-kube", "tracing"],
            &["meshtrust-testkit"],
        ),
        package(
            "meshtrust-cli",
            &[
                "meshtrust-controller",
                "meshtrust-peering",
                "meshtrust-kube",
                "clap",
                "anyhow",
            ],
            &["meshtrust-testkit"],
        ),
        package("meshtrust-testkit", &["kube", "meshtrust-ca"], &[]),
    ]
}

#[test]
fn the_layer_rule_accepts_the_intended_graph() {
    assert_eq!(
        dependency_violations(&intended_packages()),
        Vec::<String>::new()
    );
}

#[test]
fn the_layer_rule_rejects_upward_sideways_binary_only_impure_and_harness_dependencies() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "meshtrust-kube",
            "meshtrust-peering",
            "kube → peering: upward",
        ),
        ("meshtrust-ca", "meshtrust-issuer", "ca → issuer: upward"),
        (
            "meshtrust-peering",
            "meshtrust-controller",
            "peering → controller: sideways",
        ),
        (
            "meshtrust-controller",
            "meshtrust-peering",
            "controller → peering: sideways",
        ),
        (
            "meshtrust-issuer",
            "anyhow",
            "issuer → anyhow: library crates never",
        ),
        (
            "meshtrust-peering",
            "clap",
            "peering → clap: library crates never",
        ),
        ("meshtrust-ca", "tokio", "ca → tokio: ca is pure"),
        ("meshtrust-ca", "aws-config", "ca → aws-config: ca is pure"),
        (
            "meshtrust-ca",
            "kube-runtime",
            "ca → kube-runtime: ca is pure",
        ),
        (
            "meshtrust-kube",
            "meshtrust-testkit",
            "meshtrust-kube → meshtrust-testkit: the test harness",
        ),
    ];
    for &(from, to, expected) in cases {
        let mut packages = intended_packages();
        let p = packages
            .iter_mut()
            .find(|p| p.name == from)
            .expect("a package");
        p.deps.push(Dependency {
            name: to.to_owned(),
            dev: false,
        });
        let found = dependency_violations(&packages);
        assert!(
            found.len() == 1 && found[0].starts_with(expected),
            "{from} → {to}: expected one finding starting {expected:?}, got {found:?}"
        );
        // The same edge as a dev-dependency is not a finding.
        let p = packages
            .iter_mut()
            .find(|p| p.name == from)
            .expect("a package");
        p.deps.last_mut().expect("pushed").dev = true;
        assert_eq!(
            dependency_violations(&packages),
            Vec::<String>::new(),
            "{from} → {to} as dev"
        );
    }
    let mut packages = intended_packages();
    packages.push(package("meshtrust-webhook", &[], &[]));
    assert!(
        dependency_violations(&packages)[0]
            .starts_with("meshtrust-webhook: a workspace package without a layer")
    );
}

#[test]
fn the_diagram_parser_reads_one_edge_per_line_and_refuses_what_it_cannot_read() {
    let doc = "# x\n\n```text\na --> z\n```\n\n```mermaid\ngraph TD\n  %% the crates\n  cli[\"cli: the binary\"]\n  cli --> kube\n  kube-->ca\n\n```\n```mermaid\nb --> c\n```\n";
    let edges = diagram_edges(doc).expect("readable");
    let expected: BTreeSet<(String, String)> = [("cli", "kube"), ("kube", "ca")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(edges, expected);
    for bad in ["a --> b --> c", "a -->|uses| b", "a & b --> c", "a --- b"] {
        let doc = format!("```mermaid\ngraph TD\n{bad}\n```\n");
        assert!(diagram_edges(&doc).is_err(), "{bad:?} should be refused");
    }
    assert!(diagram_edges("no diagram here").is_err());
    assert!(
        diagram_edges("```mermaid\na --> b\n").is_err(),
        "an unclosed block"
    );
}

#[test]
fn comments_and_string_literals_are_not_read_as_code() {
    let src = "let a = \"crate::x // not a comment\"; // crate::y\n/* crate::z\n /* nested */ crate::w */ let b = 'c';\nlet r = r#\"crate::\"v\"#; fn f<'a>(x: &'a str) -> char { '\\'' }\nlet q = b'\"'; crate::real::f();\n";
    let code = blank_comments_and_literals(src);
    assert_eq!(
        code.lines().count(),
        src.lines().count(),
        "line breaks are kept"
    );
    let toks = tokens(code.lines().enumerate().map(|(n, l)| (n + 1, l)));
    let refs = references(&toks);
    assert_eq!(refs.len(), 1, "{refs:?}\n{code}");
    assert_eq!(refs[0].path, ["crate", "real", "f"]);
    assert_eq!(refs[0].line, 5);
    assert!(
        code.contains("fn f<'a>(x: &'a str)"),
        "lifetimes are code: {code}"
    );
}

#[test]
fn test_code_starts_at_the_first_inline_test_module_not_at_a_test_module_declaration() {
    let src = "\
#![forbid(unsafe_code)]
#[cfg(test)]
#[path = \"round_tests.rs\"]
mod tests;
#[cfg(test)]
use crate::fixtures::{a,
    b};
use crate::error::Error;
#[cfg(all(test, feature = \"test-clock\"))]
fn helper() {
    crate::clock::x();
}
pub fn f() {}
// #[cfg(test)] in a comment
#[cfg(test)]
mod tests {
    use crate::other::Thing;
}
";
    let a = analyze(src);
    assert_eq!(
        a.production_end, 14,
        "the line of the inline module's #[cfg(test)]"
    );
    assert_eq!(
        a.test_mods,
        vec![("tests".to_owned(), Some("round_tests.rs".to_owned()))]
    );
    let production: Vec<usize> = a.production().map(|(n, _)| n).collect();
    assert_eq!(production, vec![1, 8, 13, 14]);
    let refs = references(&tokens(a.production()));
    assert_eq!(
        refs.iter().map(|r| r.path.join("::")).collect::<Vec<_>>(),
        ["crate::error::Error"]
    );
    assert!(!a.inner_test_cfg);
    assert!(analyze("//! docs\n#![cfg(test)]\nuse super::*;\n").inner_test_cfg);
    assert!(is_test_file_name(Path::new("round_tests.rs")));
    assert!(is_test_file_name(Path::new("crd/tests.rs")));
    assert!(!is_test_file_name(Path::new("testing.rs")));
}

#[test]
fn references_resolve_crate_super_grouped_and_reexported_paths() {
    let src = "use crate::{a::{self, B}, c::D as E};\nuse super::super::f::G;\nlet x = super::h::i();\nuse std::fmt;\n$crate::m::n!();\npub(crate) fn z() {}\nimpl Trait for X where Self: use<'a> {}\n";
    let a = analyze(src);
    let refs = references(&tokens(a.production()));
    let paths: Vec<String> = refs.iter().map(|r| r.path.join("::")).collect();
    assert_eq!(
        paths,
        [
            "crate::a",
            "crate::a::B",
            "crate::c::D",
            "super::super::f::G",
            "super::h::i",
            "std::fmt",
            "$crate::m::n"
        ]
    );
    assert_eq!(refs[2].alias.as_deref(), Some("E"));
    let module = ["p".to_owned(), "q".to_owned(), "r".to_owned()];
    let resolved = |k: usize| resolve(&refs[k].path, &module);
    assert_eq!(
        resolved(3),
        Some(vec!["p".to_owned(), "f".to_owned(), "G".to_owned()])
    );
    assert_eq!(
        resolved(4),
        Some(vec![
            "p".to_owned(),
            "q".to_owned(),
            "h".to_owned(),
            "i".to_owned()
        ])
    );
    assert_eq!(resolved(5), None);
    assert_eq!(
        resolve(&["super".to_owned(), "x".to_owned()], &[]),
        None,
        "no parent of the root"
    );
}

#[test]
fn a_cycle_between_two_top_level_modules_is_reported() {
    let file = |rel: &str, module: &[&str], src: &str| SourceFile {
        rel: rel.to_owned(),
        module: module.iter().map(|s| s.to_string()).collect(),
        test_only: false,
        analysis: analyze(src),
    };
    let files = vec![
        file(
            "src/lib.rs",
            &[],
            "mod reconcile;\nmod rotate;\nmod error;\npub use rotate::Rotation;\npub use error::Error;\n",
        ),
        file(
            "src/reconcile.rs",
            &["reconcile"],
            "use crate::{Rotation, Error};\n",
        ),
        file("src/rotate/mod.rs", &["rotate"], "mod step;\n"),
        file(
            "src/rotate/step.rs",
            &["rotate", "step"],
            "use super::super::reconcile::Context;\nuse super::Other;\n",
        ),
        file(
            "src/error.rs",
            &["error"],
            "#[cfg(test)]\nmod tests {\n use crate::reconcile::x;\n}\n",
        ),
    ];
    let graph = module_graph(&files);
    assert_eq!(
        cycles(&graph),
        vec![vec!["reconcile".to_owned(), "rotate".to_owned()]]
    );
    let report = describe_cycle("demo", &cycles(&graph)[0], &graph);
    assert!(
        report.contains("demo: reconcile → rotate → reconcile"),
        "{report}"
    );
    assert!(
        report.contains(
            "rotate → reconcile: src/rotate/step.rs:1 (super::super::reconcile::Context)"
        ),
        "{report}"
    );
    assert!(
        report.contains("reconcile → rotate: src/reconcile.rs:1 (crate::Rotation)"),
        "{report}"
    );
    assert!(
        !graph["error"].contains_key("reconcile"),
        "test modules are not dependencies"
    );

    let acyclic = vec![
        file("src/a.rs", &["a"], "use crate::b::X;\n"),
        file("src/b.rs", &["b"], "use super::c::Y;\n"),
    ];
    assert!(cycles(&module_graph(&acyclic)).is_empty());
}

#[test]
fn an_error_enum_needs_non_exhaustive_and_a_derive() {
    let good = "/// Errors.\n#[derive(Debug, thiserror::Error)]\n/// more docs\n#[non_exhaustive]\npub enum Error {\n}\n";
    assert!(declares_error_enum(&analyze(good)));
    assert!(!declares_error_enum(&analyze(
        "#[derive(Debug, thiserror::Error)]\npub enum Error {}\n"
    )));
    assert!(!declares_error_enum(&analyze(
        "#[non_exhaustive]\npub enum Error {}\n"
    )));
    assert!(!declares_error_enum(&analyze(
        "#[derive(thiserror::Error)]\n#[non_exhaustive]\npub enum ErrorKind {}\n"
    )));
}

#[test]
fn printing_is_found_outside_strings_comments_and_tests() {
    let src = "fn f() {\n    println!(\"x\");\n    let _ = std::io::stderr();\n    // eprintln!(\"no\")\n    let s = \"dbg!(x)\";\n    write!(f, \"{}\", 1);\n}\n#[cfg(test)]\nmod tests {\n    fn g() { println!(\"fine in tests\"); }\n}\n";
    let found = printing(&analyze(src));
    assert_eq!(
        found,
        vec![(2, "println!".to_owned()), (3, "stderr()".to_owned())]
    );
}

#[test]
fn functions_are_measured_from_fn_to_their_closing_brace() {
    let src = "\
pub(crate) async fn first(x: [u8; 4], f: impl Fn(&str) -> u8) -> u8
where
    u8: Copy,
{
    let s = \"}\"; // }
    let c = '{';
    fn inner() {}
    x[0]
}
trait T {
    fn declared(&self) -> String;
    fn defaulted(&self) {
    }
}
type P = fn(u8) -> u8;
impl S { pub fn method(&self) { if true { } } }
#[cfg(test)]
fn helper() {
}
#[cfg(test)]
mod tests {
    fn in_tests() {}
}
";
    let found: Vec<(String, usize, usize)> = functions(&analyze(src))
        .into_iter()
        .map(|f| (f.name.clone(), f.line, f.lines()))
        .collect();
    assert_eq!(
        found,
        [
            ("first".to_owned(), 1, 9),
            ("inner".to_owned(), 7, 1),
            ("defaulted".to_owned(), 12, 2),
            ("method".to_owned(), 16, 1),
        ]
    );
}
