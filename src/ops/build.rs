//! `newsdesk build`: load, check, render the newest posts, write the feeds atomically.

use crate::config::Config;
use crate::diag::Report;
use crate::feeds::{self, FeedInput};
use crate::load;
use crate::model::{Archive, Post, Selection};
use crate::output::Staged;
use crate::render::{self, RenderedPost};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// What `newsdesk build` builds, and where.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub selection: Selection,
    /// The output folder.
    pub out: PathBuf,
}

/// What a build did.
#[derive(Debug, Default)]
pub struct BuildOutcome {
    pub report: Report,
    /// Files written (empty when the build was refused).
    pub written: Vec<PathBuf>,
    /// Items in each feed.
    pub items: usize,
    /// Posts left out because they are dated in the future, oldest first.
    pub future: Vec<PathBuf>,
}

/// How many future posts a build looks out for in the same pass as the newest posts.
const FUTURE_LOOKAHEAD: usize = 64;

/// Renders the newest `limit` published posts in parallel; a body that cannot be read
/// becomes an error in `report`.
pub fn render_newest<'a>(
    archive: &'a Archive,
    selection: Selection,
    limit: usize,
    report: &mut Report,
) -> Vec<RenderedPost<'a>> {
    let newest: Vec<&Post> = archive.published(selection).take(limit).collect();
    let results: Vec<_> = newest.par_iter().map(|p| render::render(p)).collect();
    let mut rendered = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(mut r) => {
                report.extend(std::mem::take(&mut r.diagnostics));
                rendered.push(r);
            }
            Err(d) => report.push(d),
        }
    }
    rendered
}

/// Writes the enabled feeds for `items` into `out_dir` (staged: nothing is visible
/// until every file is complete).
pub fn write_feeds(
    config: &Config,
    items: &[RenderedPost],
    out_dir: &Path,
    staged: &mut Staged,
) -> std::io::Result<()> {
    type Writer = fn(&FeedInput, &mut dyn std::io::Write) -> std::io::Result<()>;
    let formats: [(Option<String>, Writer); 3] = [
        (config.feeds.rss(), feeds::rss::write),
        (config.feeds.atom(), feeds::atom::write),
        (config.feeds.json(), feeds::json::write),
    ];
    for (name, write) in formats {
        if let Some(name) = name {
            let input = FeedInput::new(&config.site, &config.feeds, items, &name);
            staged.write(&out_dir.join(&name), |w| write(&input, w))?;
        }
    }
    Ok(())
}

/// Loads every post, refuses to write anything when there are errors, else writes the feeds.
pub fn build(config: &Config, options: &BuildOptions) -> std::io::Result<BuildOutcome> {
    let (selection, out_dir) = (options.selection, options.out.as_path());
    let limit = config.feeds.limit;
    // Future posts are newer than every other post, so keeping `limit` + a few more of
    // the newest (future ones included) finds them in the same pass over the folder;
    // with more of them than that, every post is kept instead.
    let with_future = Selection { future: true, ..selection };
    let is_future = |p: &Post| !selection.future && with_future.includes(p) && p.date > selection.now;
    let mut loaded = if selection.future {
        load::load_newest(config, selection, limit)
    } else {
        load::load_newest(config, with_future, limit + FUTURE_LOOKAHEAD)
    };
    if loaded.archive.posts.iter().filter(|p| is_future(p)).count() >= FUTURE_LOOKAHEAD {
        loaded = load::load(config);
    }
    let future: Vec<&Post> = loaded.archive.posts.iter().filter(|p| is_future(p)).collect();
    let mut report = Report::default();
    report.extend(future.iter().map(|p| crate::ops::check::future_warning(p, selection.now)));
    let future: Vec<PathBuf> = future.iter().map(|p| p.source.clone()).collect();
    report.extend(loaded.report.diagnostics);
    if report.has_errors() {
        report.sort();
        return Ok(BuildOutcome { report, future, ..BuildOutcome::default() });
    }
    let items = render_newest(&loaded.archive, selection, config.feeds.limit, &mut report);
    if report.has_errors() {
        report.sort();
        return Ok(BuildOutcome { report, future, ..BuildOutcome::default() });
    }
    let mut staged = Staged::new();
    write_feeds(config, &items, out_dir, &mut staged)?;
    let written = staged.commit()?;
    report.sort();
    Ok(BuildOutcome { report, written, items: items.len(), future })
}
