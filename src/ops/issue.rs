//! The one "prepare this issue" path every command that mails shares: pick the post
//! (`--post` or the newest), read and render its body, build its digest.

use crate::config::Config;
use crate::diag::{Diagnostic, Report};
use crate::digest::{self, Digest, settings};
use crate::load;
use crate::model::{Archive, Post, Selection};
use crate::render::{self, RenderedPost};
use chrono::{DateTime, FixedOffset};

/// The issue a command is about: `--post SLUG`, or the newest published post.
///
/// A post named with `--post` that the selection would not publish (dated in the
/// future, or a draft) is refused unless `--future` / `--drafts` is passed: mail that
/// has gone out cannot be taken back.
pub fn pick<'a>(
    config: &Config,
    archive: &'a Archive,
    selection: Selection,
    slug: Option<&str>,
) -> Result<&'a Post, Diagnostic> {
    match slug {
        Some(slug) => {
            let post = find_post(archive, slug).ok_or_else(|| {
                let wanted = std::path::Path::new(slug).file_stem().and_then(|s| s.to_str()).unwrap_or(slug);
                let closest = archive
                    .posts
                    .iter()
                    .flat_map(|p| [&p.slug, &p.file_stem])
                    .map(|s| (strsim::damerau_levenshtein(wanted, s), s))
                    .min()
                    .filter(|(d, _)| *d <= 3);
                let help = match closest {
                    Some((_, s)) => format!("did you mean `{s}`?"),
                    None => {
                        let newest: Vec<String> =
                            archive.published(selection).take(3).map(|p| format!("`{}`", p.slug)).collect();
                        format!("newest posts: {}", newest.join(", "))
                    }
                };
                Diagnostic::error("no-such-post", format!("no post has the slug or file name `{slug}`")).help(help)
            })?;
            if !selection.future && post.date > selection.now {
                let when = post.date.format("%Y-%m-%d %H:%M %z");
                let mut d = Diagnostic::error(
                    "future-post",
                    format!("this post is dated {when}, in the future: it is not in the feeds until then"),
                )
                .in_file(&post.source)
                .help(format!(
                    "it goes out on {when}; to use it before then, pass `--future` (e.g. `newsdesk send --post {} --future`)",
                    post.slug
                ));
                if post.date_line > 0 {
                    d = d.at(post.date_line, 1);
                }
                return Err(d);
            }
            if !selection.drafts && !post.published {
                return Err(Diagnostic::error(
                    "draft-post",
                    "this post is a draft (`published: false`): it is not in the feeds",
                )
                .in_file(&post.source)
                .help("publish it (remove `published: false`), or pass `--drafts` to use it anyway"));
            }
            Ok(post)
        }
        None => archive.newest(selection).ok_or_else(|| {
            Diagnostic::error("no-posts", "there is no published post to send")
                .in_file(&config.posts_dir)
                .help("add a post, or pass `--drafts`/`--future` to include drafts and future posts")
        }),
    }
}

/// A post `--post` names that is dated later than `now`: its title, and how it is
/// dated and how far ahead, for the question `preview` and `send` ask before using it.
pub fn dated_ahead(config: &Config, wanted: &str, now: DateTime<FixedOffset>) -> Option<(String, String)> {
    let loaded = crate::load::load(config);
    let post = find_post(&loaded.archive, wanted)?;
    (post.date > now).then(|| {
        (
            post.title.clone(),
            format!(
                "dated {}, {} from now",
                post.date.format("%Y-%m-%d %H:%M %z"),
                super::check::due_in(post.date - now)
            ),
        )
    })
}

/// The post `--post` names: its slug, its file name (`2020-05-10-update.md`), a path to
/// its file, or the file name without `.md`.
pub fn find_post<'a>(archive: &'a Archive, wanted: &str) -> Option<&'a Post> {
    if let Some(p) = archive.by_slug(wanted) {
        return Some(p);
    }
    let path = std::path::Path::new(wanted);
    // A path to the file, however it is spelt.
    if let Ok(real) = std::fs::canonicalize(path)
        && let Some(p) = archive.posts.iter().rev().find(|p| std::fs::canonicalize(&p.source).is_ok_and(|s| s == real))
    {
        return Some(p);
    }
    // A file name (or a path below the posts folder that does not exist from here).
    let name = path.file_name()?;
    let mut same_name = archive.posts.iter().rev().filter(|p| p.source.file_name() == Some(name));
    let first = same_name.next()?;
    Some(std::iter::once(first).chain(same_name).find(|p| p.source.ends_with(path)).unwrap_or(first))
}

/// Who the digest is rendered for.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// The list address (`[email] to`), or test addresses: the list's own unsubscribe
    /// link, if any.
    List,
    /// Each subscriber of newsdesk's own list: every message carries that subscriber's
    /// link, made from this template's `{token}`.
    Subscribers { unsubscribe_url: &'a str },
}

/// An issue ready to be mailed: the archive it was picked from (for the feeds a preview
/// writes beside the message) and its digest.
pub struct Issue {
    pub archive: Archive,
    pub digest: Digest,
}

/// Loads the posts, picks the issue (`--post` or the newest), renders its body and its
/// digest. `None` when any step has errors; every diagnostic (the body's warnings
/// included) is in `report`.
pub fn prepare(
    config: &Config,
    selection: Selection,
    post: Option<&str>,
    audience: Audience,
    report: &mut Report,
) -> Option<Issue> {
    let loaded = load::load(config);
    report.extend(loaded.report.diagnostics);
    if report.has_errors() {
        return None;
    }
    let archive = loaded.archive;
    let post = pick(config, &archive, selection, post).map_err(|d| report.push(d)).ok()?;
    let rendered = render::render(post).map_err(|d| report.push(d)).ok()?;
    let has_errors = rendered.diagnostics.iter().any(Diagnostic::is_error);
    report.extend(rendered.diagnostics.iter().cloned());
    if has_errors {
        return None;
    }
    let digest = render_digest(config, &rendered, audience, report)?;
    drop(rendered);
    Some(Issue { archive, digest })
}

/// The digest of a rendered issue whose body has no errors; `None` (with errors in
/// `report`) when the settings or templates fail.
pub fn render_digest(
    config: &Config,
    rendered: &RenderedPost,
    audience: Audience,
    report: &mut Report,
) -> Option<Digest> {
    let mut settings = settings::settings(config).map_err(|ds| report.extend(ds)).ok()?;
    if let Audience::Subscribers { unsubscribe_url } = audience {
        // Templates test `unsubscribe_page` to decide whether to print a link: every
        // subscriber has one.
        settings.unsubscribe_url = Some(unsubscribe_url.to_string());
        settings.subscriber_send = true;
    }
    Digest::render(config, settings, rendered, digest::render_time()).map_err(|ds| report.extend(ds)).ok()
}
