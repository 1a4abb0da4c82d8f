//! Fixtures for the integration tests: a site in a temporary folder, the real binary
//! run on it, and the feeds it wrote parsed back by independent parsers (feed-rs for
//! RSS/Atom/JSON, serde_json for the JSON Feed's own fields).

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// An LWKD-like config: the permalink pattern and feed ids of lwkd.info (jekyll-feed
/// serves Atom at /feed.xml).
pub const LWKD_CONFIG: &str = r#"[site]
title = "Last Week in Kubernetes Development"
description = "Stay up-to-date on Kubernetes development in 15 minutes a week."
base_url = "https://lwkd.info"
permalink = "/:year/:year:month:day"
author = { name = "LWKD editors", email = "lwkd@example.org" }

[feeds]
atom = "feed.xml"
id = "jekyll"
"#;

/// The newest bundled issue, as committed in the repository.
pub fn seed_post() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("posts/2020-05-10-update.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The real LWKD archive (`../shared/corpus/lwkd/_posts` beside the repository), or
/// `None` with a note on stderr when this checkout has none.
pub fn corpus_posts(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/lwkd/_posts");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("note: {test} skipped: no LWKD corpus at {}", dir.display());
        None
    }
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A site in a temporary folder: `config.toml`, `posts/`, and outputs under it.
pub struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    pub fn new(config: &str) -> Site {
        let site = Site { dir: tempfile::tempdir().expect("temporary folder") };
        site.write("config.toml", config);
        std::fs::create_dir_all(site.path("posts")).unwrap();
        site
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    pub fn post(&self, file_name: &str, text: &str) {
        self.write(&format!("posts/{file_name}"), text);
    }

    pub fn read(&self, rel: &str) -> String {
        let p = self.path(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// Runs `newsdesk ARGS` in the site's folder (so diagnostics name `posts/...`).
    pub fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_newsdesk"))
            .args(args)
            .current_dir(self.root())
            .output()
            .expect("run newsdesk");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }

    /// `newsdesk build --out OUT`, which must succeed.
    pub fn build(&self, out: &str, extra: &[&str]) -> Run {
        let mut args = vec!["build", "--out", out];
        args.extend_from_slice(extra);
        let run = self.run(&args);
        run.expect_code(0);
        run
    }

    /// Parses a feed this site wrote with feed-rs.
    pub fn feed(&self, rel: &str) -> feed_rs::model::Feed {
        parse_feed(&self.path(rel))
    }

    pub fn json(&self, rel: &str) -> serde_json::Value {
        serde_json::from_str(&self.read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
    }
}

pub fn parse_feed(path: &Path) -> feed_rs::model::Feed {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    feed_rs::parser::parse(&bytes[..]).unwrap_or_else(|e| panic!("feed-rs cannot parse {}: {e}", path.display()))
}

/// Copies every file of `from` (one level) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Every entry of `dir` with its bytes, sorted by name; folders end in `/` and have none.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                (format!("{name}/"), Vec::new())
            } else {
                (name, std::fs::read(e.path()).unwrap())
            }
        })
        .collect();
    files.sort();
    files
}

/// Text of a feed-rs text field (title, summary).
pub fn text(t: &Option<feed_rs::model::Text>) -> &str {
    t.as_ref().map(|t| t.content.as_str()).expect("text present")
}

/// The body of an entry's content.
pub fn content(e: &feed_rs::model::Entry) -> &str {
    e.content.as_ref().and_then(|c| c.body.as_deref()).expect("entry has content")
}

/// The entry link readers follow (RSS `link`, Atom `rel="alternate"`).
pub fn alternate(e: &feed_rs::model::Entry) -> &str {
    e.links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .map(|l| l.href.as_str())
        .expect("entry has a link")
}

/// The `href` of the feed-level link with relation `rel`.
pub fn feed_link<'f>(f: &'f feed_rs::model::Feed, rel: &str) -> Option<&'f str> {
    f.links.iter().find(|l| l.rel.as_deref() == Some(rel)).map(|l| l.href.as_str())
}

/// Every `href="..."` / `src="..."` value in an HTML fragment.
pub fn url_attributes(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=", "src="] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            let after = &rest[i + attr.len()..];
            let quote = after.chars().next().unwrap_or(' ');
            let value = if quote == '"' || quote == '\'' {
                after[1..].split(quote).next().unwrap_or("")
            } else {
                after.split([' ', '>']).next().unwrap_or("")
            };
            out.push(value.to_string());
            rest = after;
        }
    }
    out
}
