//! The announcement for Bluesky and Mastodon, in the editors' format:
//! `Week ending August 2: Steering candidates selected, CPU manager, ...`, the issue's
//! URL, the hashtags. A stage: it reads the rendered post only.
//!
//! The highlights come from the front matter (`highlights:`, a list) or, without one,
//! from the entries under the "Featured PRs" and "KEP of the Week" sections
//! (their headings, or the links that open their paragraphs), each shortened. Each service counts as it does itself: Bluesky 300 graphemes,
//! Mastodon 500 characters with every link counted as 23. Highlights are dropped from
//! the end until the text fits, and the ones dropped are named.

use crate::render::RenderedPost;
use serde::Serialize;
use unicode_segmentation::UnicodeSegmentation;

/// The built-in template (minijinja): `week_ending`, `title`, `url`, `highlights` (a
/// list) and `hashtags` (a list) are set; `date(fmt)` formats `week_ending`.
pub const DEFAULT_TEMPLATE: &str = "Week ending {{ week_ending | date(\"%B %-d\") }}{% if highlights %}: {{ highlights | join(\", \") }}{% endif %}\n\n{{ url }}{% if hashtags %}\n\n{{ hashtags | join(\" \") }}{% endif %}\n";

/// A highlight taken from a heading is cut to this many characters (at a word).
pub const HIGHLIGHT_CHARS: usize = 60;

/// One service's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Post {
    pub text: String,
    /// As the service counts it.
    pub length: usize,
    pub limit: usize,
    /// Highlights left out to fit, in the order they were dropped (the last first).
    pub dropped: Vec<String>,
}

/// Both services' texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Texts {
    pub bluesky: Post,
    pub mastodon: Post,
}

/// What the template gets besides the highlights.
#[derive(Debug, Clone)]
pub struct Settings<'a> {
    pub template: &'a str,
    pub hashtags: &'a [String],
}

/// Bluesky's count: user-perceived characters (extended grapheme clusters).
pub fn bluesky_length(text: &str) -> usize {
    text.graphemes(true).count()
}

/// Mastodon's count: characters, with each http(s) link counted as 23 whatever its length.
pub fn mastodon_length(text: &str) -> usize {
    let mut n = 0;
    for word in text.split_inclusive(char::is_whitespace) {
        let trimmed = word.trim_end();
        if trimmed.starts_with("https://") || trimmed.starts_with("http://") {
            n += 23 + (word.chars().count() - trimmed.chars().count());
        } else {
            n += word.chars().count();
        }
    }
    n
}

/// The highlights: `highlights:` from the front matter, else what each entry
/// under "Featured PRs" and "KEP of the Week" is called: a heading below the section's
/// (`### [141041: Fix CPU Manager ...](...)`), or a paragraph or list item that is one
/// link (`[130349: Declarative Validation: ...](...)`, `* [136086: ...](...)`), as the
/// archive writes them all; without its number, shortened.
pub fn highlights(rendered: &RenderedPost) -> Vec<String> {
    if let Some(serde_json::Value::Array(items)) = rendered.post.extra.get("highlights") {
        return items
            .iter()
            .filter_map(|v| match v {
                serde_json::Value::String(s) => Some(s.trim().to_string()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .collect();
    }
    use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
    /// Where the walk is: the text of the heading or opening link being read.
    enum Reading {
        Nothing,
        SectionHeading(String),
        EntryHeading(String),
        /// A paragraph's first element was a link: its text.
        OpeningLink(String),
    }
    let mut out = Vec::new();
    // The level of the heading of the section being read, when it is one of the two.
    let mut section: Option<HeadingLevel> = None;
    let mut reading = Reading::Nothing;
    let mut paragraph_start = false;
    // A paragraph's opening link, taken when nothing but space follows it.
    let mut candidate: Option<String> = None;
    for event in Parser::new_ext(&rendered.markdown, crate::render::options()) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                // A heading at the section's level or above ends it.
                if section.is_some_and(|l| level <= l) {
                    section = None;
                }
                reading = match section {
                    Some(_) => Reading::EntryHeading(String::new()),
                    None => Reading::SectionHeading(String::new()),
                };
            }
            Event::End(TagEnd::Heading(level)) => match std::mem::replace(&mut reading, Reading::Nothing) {
                Reading::SectionHeading(text) => {
                    let lower = text.to_ascii_lowercase();
                    if lower.contains("featured pr") || lower.contains("kep of the week") {
                        section = Some(level);
                    }
                }
                Reading::EntryHeading(text) => out.push(text),
                _ => {}
            },
            Event::Start(Tag::Paragraph | Tag::Item) => paragraph_start = section.is_some(),
            Event::Start(Tag::Link { .. }) if paragraph_start && matches!(reading, Reading::Nothing) => {
                reading = Reading::OpeningLink(String::new());
                paragraph_start = false;
            }
            Event::End(TagEnd::Link) if matches!(reading, Reading::OpeningLink(_)) => {
                if let Reading::OpeningLink(text) = std::mem::replace(&mut reading, Reading::Nothing) {
                    candidate = Some(text);
                }
            }
            // An entry's link stands alone in its paragraph or item; one followed by
            // words (`[someone](...) fixed ...`) is prose.
            Event::End(TagEnd::Paragraph | TagEnd::Item) => out.extend(candidate.take()),
            Event::Text(t) | Event::Code(t) => {
                paragraph_start = false;
                if matches!(reading, Reading::Nothing) && !t.trim().is_empty() {
                    candidate = None;
                }
                match &mut reading {
                    Reading::SectionHeading(s) | Reading::EntryHeading(s) | Reading::OpeningLink(s) => s.push_str(&t),
                    Reading::Nothing => {}
                }
            }
            Event::SoftBreak | Event::HardBreak => match &mut reading {
                Reading::SectionHeading(s) | Reading::EntryHeading(s) | Reading::OpeningLink(s) => s.push(' '),
                Reading::Nothing => {}
            },
            _ => {}
        }
    }
    let mut out: Vec<String> = out.iter().map(|h| shorten(&strip_number(h), HIGHLIGHT_CHARS)).collect();
    out.retain(|s| !s.is_empty());
    out
}

/// `141375: fix: count ...` → `fix: count ...`; `KEP-5729: DRA: ...` → `DRA: ...`.
fn strip_number(heading: &str) -> String {
    let t = heading.trim().trim_start_matches('#').trim_start();
    let t = t.strip_prefix("KEP-").or_else(|| t.strip_prefix("KEP ")).unwrap_or(t);
    match t.split_once(':') {
        Some((n, rest)) if !n.is_empty() && n.trim().bytes().all(|b| b.is_ascii_digit()) => rest.trim().to_string(),
        _ => heading.trim().to_string(),
    }
}

/// At most `max` characters, cut at a word and marked with `…`.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 1).collect();
    let at_word = match cut.rfind(' ') {
        Some(i) if i > max / 2 => &cut[..i],
        _ => &cut,
    };
    format!("{}…", at_word.trim_end_matches([' ', ',', ':', ';', '-']))
}

/// Both services' texts from `highlights`, each fitted to its limit.
pub fn texts(
    rendered: &RenderedPost,
    week_ending: &str,
    highlights: &[String],
    settings: &Settings,
) -> Result<Texts, minijinja::Error> {
    let render = |shown: &[String]| -> Result<String, minijinja::Error> {
        let mut env = minijinja::Environment::new();
        env.add_filter("date", |value: String, format: String| -> Result<String, minijinja::Error> {
            use std::fmt::Write;
            let d = chrono::NaiveDate::parse_from_str(&value, "%Y-%m-%d").map_err(|_| {
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("`{value}` is not a date"))
            })?;
            let mut out = String::new();
            write!(out, "{}", d.format(&format)).map_err(|_| {
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("bad date format `{format}`"))
            })?;
            Ok(out)
        });
        env.add_template("social", settings.template)?;
        let text = env.get_template("social")?.render(minijinja::context! {
            week_ending => week_ending,
            title => &rendered.post.title,
            url => &rendered.post.url,
            highlights => shown.to_vec(),
            hashtags => settings.hashtags.to_vec(),
        })?;
        Ok(text.trim_end().to_string())
    };
    let fit = |limit: usize, count: fn(&str) -> usize| -> Result<Post, minijinja::Error> {
        let mut shown = highlights.to_vec();
        let mut dropped = Vec::new();
        loop {
            let text = render(&shown)?;
            let length = count(&text);
            if length <= limit || shown.is_empty() {
                return Ok(Post { text, length, limit, dropped });
            }
            dropped.extend(shown.pop());
        }
    };
    Ok(Texts { bluesky: fit(300, bluesky_length)?, mastodon: fit(500, mastodon_length)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_counts_as_it_does() {
        // A family emoji is one grapheme of 7 characters.
        let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
        assert_eq!(bluesky_length(family), 1);
        assert_eq!(mastodon_length(family), 7);
        assert_eq!(mastodon_length("see https://lwkd.info/2026/20260806 now"), 4 + 23 + 4);
        assert_eq!(bluesky_length("see https://lwkd.info/2026/20260806 now"), 39);
        assert_eq!(mastodon_length("x\n\nhttp://a.example/b"), 3 + 23);
    }

    #[test]
    fn headings_lose_their_numbers_and_are_cut_at_a_word() {
        assert_eq!(strip_number("141375: fix: count init container overhead"), "fix: count init container overhead");
        assert_eq!(
            strip_number("KEP-5729: DRA: ResourceClaim Support for Workloads"),
            "DRA: ResourceClaim Support for Workloads"
        );
        assert_eq!(strip_number("#87746: Fix"), "Fix");
        assert_eq!(strip_number("Steering: results"), "Steering: results");
        let long = "kubelet: invalidate name-keyed ClusterTrustBundle cache entries when the bundle changes";
        let short = shorten(long, 60);
        assert!(short.chars().count() <= 60 && short.ends_with('…'), "{short}");
        assert_eq!(short, "kubelet: invalidate name-keyed ClusterTrustBundle cache…");
    }
}
