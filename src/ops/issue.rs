//! The one "prepare this issue" path every command that mails shares: pick the post
//! (`--post` or the newest), read and render its body, build its digest.

use crate::digest::{self, Digest, lint, settings};

use crate::config::Config;
use crate::diag::{Diagnostic, Report};
use crate::model::{Archive, Post, Selection};
use crate::render::{self, RenderedPost};

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

/// Renders the issue and its digest; `None` (with errors in `report`) when either fails.
/// The body's own diagnostics are in the returned [`RenderedPost`]; when the body has
/// errors they go to `report` and no digest is rendered.
pub fn render_digest<'a>(config: &Config, post: &'a Post, report: &mut Report) -> Option<(RenderedPost<'a>, Digest)> {
    let rendered = match render::render(post) {
        Ok(r) => r,
        Err(e) => {
            report.push(
                Diagnostic::error("unreadable", format!("cannot read this post's body: {e}")).in_file(&post.source),
            );
            return None;
        }
    };
    if rendered.diagnostics.iter().any(Diagnostic::is_error) {
        report.extend(rendered.diagnostics);
        return None;
    }
    let digest = digest_of(config, &rendered, report)?;
    Some((rendered, digest))
}

/// The digest of a rendered issue whose body has no errors; `None` (with errors in
/// `report`) when the settings or templates fail.
fn digest_of(config: &Config, rendered: &RenderedPost, report: &mut Report) -> Option<Digest> {
    let settings = match settings::settings(config) {
        Ok(s) => s,
        Err(ds) => {
            report.extend(ds);
            return None;
        }
    };
    match Digest::render(config, settings, rendered, digest::render_time()) {
        Ok(d) => Some(d),
        Err(ds) => {
            report.extend(ds);
            None
        }
    }
}

/// For `check`: renders the newest issue's digest (when `[email]` is configured) and
/// returns its template errors and mail warnings.
pub fn check(config: &Config, archive: &Archive, selection: Selection) -> Vec<Diagnostic> {
    if config.email.is_none() {
        return Vec::new();
    }
    // `[email]` and its DKIM key are checked even when there is no issue to render, as
    // `preview` and `send` would read them.
    let mut out = crate::transport::dkim::Signer::for_command(config).err().into_iter().collect::<Vec<_>>();
    let Some(post) = archive.newest(selection) else {
        out.extend(settings::settings(config).err().unwrap_or_default());
        return out;
    };
    // A body that cannot be read or has errors was reported with every post's.
    let Ok(rendered) = render::render(post) else { return out };
    if rendered.diagnostics.iter().any(Diagnostic::is_error) {
        return out;
    }
    let mut report = Report::default();
    let Some(digest) = digest_of(config, &rendered, &mut report) else {
        out.extend(report.diagnostics);
        return out;
    };
    // Body lints were reported for every post already; only the mail's own remain.
    let recipient =
        digest.list_recipient().unwrap_or_else(|| digest.test_recipient(digest.settings.from.email.clone()));
    out.extend(lint::lint(&digest, &digest.parts_for(&recipient)));
    out
}
