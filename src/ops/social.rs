//! `newsdesk social`: the issue's announcement for Bluesky and Mastodon (see
//! [`crate::social`]); posting it is left to the editor.

use super::issue;
use crate::config::Config;
use crate::diag::{Diagnostic, Report};
use crate::model::Selection;
use crate::social::{self, Settings, Texts};

#[derive(Debug, Clone)]
pub struct SocialOptions {
    pub selection: Selection,
    /// `--post`: this post instead of the newest.
    pub post: Option<String>,
}

/// The texts, or the report of why there are none.
pub fn social(config: &Config, options: &SocialOptions) -> Result<(Texts, Report), Report> {
    let mut report = Report::default();
    let loaded = crate::load::load(config);
    report.extend(loaded.report.diagnostics);
    if report.has_errors() {
        return Err(report);
    }
    let post = match issue::pick(config, &loaded.archive, options.selection, options.post.as_deref()) {
        Ok(p) => p,
        Err(d) => {
            report.push(d);
            return Err(report);
        }
    };
    let rendered = match crate::render::render(post) {
        Ok(r) => r,
        Err(d) => {
            report.push(d);
            return Err(report);
        }
    };
    let template = match &config.social.template {
        Some(path) => {
            let path = config.resolve(path);
            match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    report.push(crate::config::config_diagnostic(
                        config,
                        "social",
                        "template",
                        Diagnostic::error("social-template", format!("cannot read `{}`: {e}", path.display()))
                            .help("point `[social] template` at a text file, or remove it for the editors' format"),
                    ));
                    return Err(report);
                }
            }
        }
        None => social::DEFAULT_TEMPLATE.to_string(),
    };
    // The week's end: the date the file name (which Jekyll requires) or the slug starts
    // with, else the post's day.
    let week_ending = [&post.file_stem, &post.slug]
        .iter()
        .find_map(|s| s.get(..10).and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()))
        .unwrap_or_else(|| post.date.date_naive())
        .to_string();
    let highlights = social::highlights(&rendered);
    if highlights.is_empty() {
        report.push(
            Diagnostic::warning("no-highlights", "the issue has no highlights: no `highlights:` list and no headings under Featured PRs or KEP of the Week")
                .in_file(&post.source)
                .help("add `highlights: [\"Steering candidates selected\", \"CPU manager\"]` to the front matter"),
        );
    }
    let settings = Settings { template: &template, hashtags: &config.social.hashtags };
    match social::texts(&rendered, &week_ending, &highlights, &settings) {
        Ok(texts) => {
            for (name, t) in [("Bluesky", &texts.bluesky), ("Mastodon", &texts.mastodon)] {
                if t.length > t.limit {
                    report.push(
                        Diagnostic::error(
                            "social-too-long",
                            format!(
                                "the {name} text is {} long even without highlights, over its {}",
                                t.length, t.limit
                            ),
                        )
                        .help("shorten the template or the hashtags"),
                    );
                }
            }
            Ok((texts, report))
        }
        Err(e) => {
            report.push(
                Diagnostic::error("social-template", format!("the social template does not render: {e}"))
                    .help("it can use week_ending, title, url, highlights and hashtags"),
            );
            Err(report)
        }
    }
}
