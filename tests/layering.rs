//! The layering rules of the source (README, "Layout"), checked on `src/` itself:
//!
//! - only `cli` (and `main.rs`) prints, prompts, draws progress, handles Ctrl-C, knows
//!   clap or makes an exit code; `ops` returns data;
//! - `model` does no I/O;
//! - the stages (`load`, `render`, `feeds`, `digest`, `social`) never import `transport`, `store`,
//!   `delivery`, `ops` or `cli`;
//! - `transport` never imports `digest` or `store`; `store` never imports `digest`,
//!   `transport` or `load`; `delivery` imports only `store` and `transport`;
//! - nothing but `main.rs` imports `cli`; `web` (the `serve` endpoints) sits beside it,
//!   calling `ops` and `store`, and nothing below imports it;
//! - `bounces` (the bounce parser) is pure: it imports nothing of the crate but `model`
//!   and helpers;
//! - `deliverability` (the report's checks) is pure: it imports nothing of the crate;
//!   its DNS lookups are in `ops`;
//! - no import circle between the modules of `src/`.
//!
//! A module's imports are every `crate::NAME` path in its non-test code (in `use`
//! lines and inline), and `super::NAME` in files directly under `src/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level module a source file belongs to (`src/store/ledger/list.rs` → `store`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file without its `#[cfg(test)] mod tests`, and without comments, so doc text and
/// tests do not count as imports.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t == "#[cfg(test)]" && lines.peek().is_some_and(|l| l.trim_start().starts_with("mod tests")) {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// Every `crate::NAME` in `code` (and `super::NAME` when `top_level`), with a line for
/// the message.
fn imports(code: &str, top_level: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in code.lines() {
        let mut prefixes = vec!["crate::"];
        if top_level {
            prefixes.push("super::");
        }
        for prefix in prefixes {
            let mut rest = line;
            while let Some(at) = rest.find(prefix) {
                let before = rest[..at].chars().last();
                rest = &rest[at + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                // `crate::{a, b}` names several modules at once.
                let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                    let end = group.find('}').unwrap_or(group.len());
                    group[..end].split(',').map(|n| n.trim().split("::").next().unwrap_or("").to_string()).collect()
                } else {
                    vec![rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()]
                };
                for name in names.into_iter().filter(|n| !n.is_empty() && n != "self") {
                    out.push((name, line.trim().to_string()));
                }
            }
        }
    }
    out
}

struct Source {
    file: PathBuf,
    module: String,
    code: String,
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let code = code_of(&std::fs::read_to_string(&file).unwrap());
            Source { module: module_of(&src, &file), file, code }
        })
        .collect()
}

/// module → (imported module → the first line that imports it).
fn graph(sources: &[Source]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let known: BTreeSet<&str> = sources.iter().map(|s| s.module.as_str()).collect();
    for s in sources {
        let top_level = s.file.parent().is_some_and(|p| p.ends_with("src"));
        let entry = g.entry(s.module.clone()).or_default();
        for (name, line) in imports(&s.code, top_level) {
            if name != s.module && known.contains(name.as_str()) {
                entry.entry(name).or_insert_with(|| format!("{}: {line}", s.file.display()));
            }
        }
    }
    g
}

#[test]
fn the_import_reader_sees_use_lines_groups_and_inline_paths() {
    let code = "use crate::store::db;\nuse crate::{config, diag::Report};\nlet x = crate::transport::smtp_server(c);\nfn f() -> notcrate::x {}\n";
    let names: Vec<String> = imports(code, false).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["store", "config", "diag", "transport"]);
    assert!(
        code_of("use crate::a;\n// use crate::b;\n#[cfg(test)]\nmod tests {\n use crate::c;\n}\n").contains("crate::a")
    );
    assert!(
        !code_of("use crate::a;\n// use crate::b;\n#[cfg(test)]\nmod tests {\n use crate::c;\n}\n")
            .contains("crate::b")
    );
    assert!(!code_of("use crate::a;\n#[cfg(test)]\nmod tests {\n use crate::c;\n}\n").contains("crate::c"));
}

#[test]
fn only_cli_prints_prompts_or_exits() {
    const FORBIDDEN: &[&str] = &[
        "println!",
        "print!",
        "eprintln!",
        "eprint!",
        "dbg!",
        "stdout()",
        "stderr()",
        "stdin()",
        "ExitCode",
        "process::exit",
        "clap::",
        "indicatif",
        "ctrlc::",
    ];
    let mut found = Vec::new();
    for s in sources() {
        if s.module == "cli" || s.module == "main" {
            continue;
        }
        for line in s.code.lines() {
            for f in FORBIDDEN {
                if line.contains(f) {
                    found.push(format!("{}: `{f}` in `{}`", s.file.display(), line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "printing, prompting or exiting outside cli/:\n{}", found.join("\n"));
}

#[test]
fn the_model_does_no_io() {
    const IO: &[&str] = &["std::fs", "std::io", "std::net", "std::process", "File::", "rusqlite", "lettre"];
    let mut found = Vec::new();
    for s in sources().iter().filter(|s| s.module == "model") {
        for line in s.code.lines() {
            for f in IO {
                if line.contains(f) {
                    found.push(format!("{}: `{}`", s.file.display(), line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "I/O in the model:\n{}", found.join("\n"));
}

#[test]
fn each_layer_imports_only_what_it_may() {
    let g = graph(&sources());
    let stages = ["load", "render", "feeds", "digest", "social"];
    let mut broken = Vec::new();
    let mut rule = |module: &str, forbidden: &[&str], why: &str| {
        for (imported, line) in g.get(module).into_iter().flatten() {
            if forbidden.contains(&imported.as_str()) {
                broken.push(format!("{module} imports {imported} ({why}):\n    {line}"));
            }
        }
    };
    for stage in stages {
        rule(stage, &["transport", "store", "delivery", "ops", "cli", "web"], "a stage reads the model only");
    }
    rule(
        "model",
        &["load", "render", "feeds", "digest", "transport", "store", "delivery", "ops", "cli", "web"],
        "pure data",
    );
    rule("transport", &["digest", "store", "delivery", "ops", "cli", "web", "load", "render", "feeds"], "bytes out");
    rule(
        "store",
        &["digest", "transport", "load", "render", "feeds", "delivery", "ops", "cli", "web"],
        "the database only",
    );
    rule("ops", &["web"], "the web service calls ops, not the other way");
    rule(
        "bounces",
        &["store", "transport", "delivery", "ops", "cli", "web", "digest", "load", "render", "feeds", "config"],
        "the bounce parser is pure: bytes in, a report out",
    );
    rule(
        "deliverability",
        &[
            "store",
            "transport",
            "delivery",
            "ops",
            "cli",
            "web",
            "digest",
            "load",
            "render",
            "feeds",
            "config",
            "model",
        ],
        "the deliverability checks are pure: message bytes and settings in, checks out (the DNS lookups are in ops)",
    );
    for module in g.keys().filter(|m| !["main", "cli"].contains(&m.as_str())) {
        rule(module, &["cli"], "only main calls cli");
    }
    // delivery: store and transport, nothing else of the crate.
    for (imported, line) in g.get("delivery").into_iter().flatten() {
        if !["store", "transport"].contains(&imported.as_str()) {
            broken.push(format!("delivery imports {imported} (only store and transport):\n    {line}"));
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn there_is_no_import_circle() {
    let g = graph(&sources());
    // Depth-first search; a back edge closes a circle.
    fn visit<'a>(
        m: &'a str,
        g: &'a BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        circles: &mut Vec<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(at) = path.iter().position(|p| *p == m) {
            let mut circle: Vec<&str> = path[at..].to_vec();
            circle.push(m);
            let lines: Vec<String> = circle.windows(2).map(|w| format!("    {}", g[w[0]][w[1]])).collect();
            circles.push(format!("{}\n{}", circle.join(" -> "), lines.join("\n")));
            return;
        }
        path.push(m);
        for next in g.get(m).into_iter().flat_map(|e| e.keys()) {
            visit(next, g, path, done, circles);
        }
        path.pop();
        done.insert(m);
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for m in g.keys().filter(|m| m.as_str() != "lib") {
        visit(m, &g, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(circles.is_empty(), "import circles:\n{}", circles.join("\n"));
}
