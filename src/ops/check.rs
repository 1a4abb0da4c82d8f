//! `newsdesk check`: every problem in the config and every post, in one run.
//!
//! Loading already reports what makes a post unusable (errors); here every body is
//! rendered too, for the link and HTML warnings, plus checks that need the whole
//! archive (future dates, missing authors).

use crate::config::Config;
use crate::diag::{Diagnostic, Report};
use crate::load;
use crate::model::{Archive, Post, Selection};
use crate::render;
use rayon::prelude::*;
use std::path::Path;

/// Checks the config's posts; the report is sorted.
pub fn check(config: &Config, posts_dir: Option<&Path>, selection: Selection) -> Report {
    let loaded = load::load(config, posts_dir);
    let mut report = loaded.report;
    report.extend(archive_checks(config, &loaded.archive, selection));
    report.extend(super::issue::check(config, &loaded.archive, selection));
    report.extend(private_files(config));
    report.sort();
    report
}

/// The warning for a post dated in the future, at its `date:` line.
pub fn future_warning(p: &Post) -> Diagnostic {
    let mut d = Diagnostic::warning(
        "future-date",
        format!(
            "this post is dated {} (in the future): it is left out of feeds and mail until then",
            p.date.format("%Y-%m-%d %H:%M %z")
        ),
    )
    .in_file(&p.source)
    .help("fix the date, or pass `--future` to publish it now");
    if p.date_line > 0 {
        d = d.at(p.date_line, 1);
    }
    d
}

/// A warning for each existing file of the subscriber database that others can read:
/// it holds every subscriber's address and secret unsubscribe token.
pub fn private_files(config: &Config) -> Vec<Diagnostic> {
    let cwd = std::env::current_dir().ok();
    let mut out = Vec::new();
    for path in crate::store::db::private_files(&config.database_path()) {
        let Some(mode) = group_or_other_bits(&path) else { continue };
        let shown = crate::diag::display_path(&path, cwd.as_deref());
        let what = if path == config.database_path() { "the database" } else { "this file of the database" };
        out.push(
            Diagnostic::warning(
                "readable-database",
                format!(
                    "{what} can be read by other users (mode {mode:o}), and it holds every subscriber's address and unsubscribe token"
                ),
            )
            .in_file(&path)
            .help(format!("run `chmod 600 {shown}` (newsdesk creates its files that way)")),
        );
    }
    out
}

/// The permission bits of `path` when group or others have any access to it.
#[cfg(unix)]
fn group_or_other_bits(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok().filter(|m| m.is_file())?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn group_or_other_bits(_: &Path) -> Option<u32> {
    None
}

/// Body lints for every post plus archive-wide warnings.
pub fn archive_checks(config: &Config, archive: &Archive, selection: Selection) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = archive
        .posts
        .par_iter()
        .flat_map_iter(|p| match render::render(p) {
            Ok(r) => r.diagnostics,
            Err(e) => {
                vec![Diagnostic::error("unreadable", format!("cannot read this post's body: {e}")).in_file(&p.source)]
            }
        })
        .collect();
    for p in &archive.posts {
        if !selection.future && p.date > selection.now {
            out.push(future_warning(p));
        }
    }
    if config.site.author.is_none() {
        let anonymous = archive.published(selection).filter(|p| p.authors.is_empty()).count();
        if anonymous > 0 {
            out.push(
                Diagnostic::warning(
                    "no-author",
                    format!("{anonymous} published post(s) name no author and `[site] author` is not set: Atom requires an author for every entry"),
                )
                .in_file(&config.path)
                .help("add `author = { name = \"...\", email = \"...\" }` under `[site]`, or `author:` to each post"),
            );
        }
    }
    out
}
