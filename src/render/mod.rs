//! Markdown → HTML, run after loading and only for the posts an output needs.
//!
//! One pass over pulldown-cmark's events does everything a body needs: heading ids
//! (Jekyll's kramdown GFM rule, so anchors published by Jekyll keep working), the table of
//! contents, absolute links and images (feeds and mail have no base URL), the summary,
//! and the link checks that `check` reports with file and line.

pub mod html;
mod lint;
pub mod sanitize;
pub mod text;
mod urls;

use crate::diag::{Diagnostic, line_at, line_col};
use crate::model::Post;
use pulldown_cmark::{CowStr, Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd};
use serde::Serialize;
use std::collections::HashMap;
use std::ops::Range;
use url::Url;

pub use lint::is_html_element;

/// One heading of an issue: the digest's table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TocEntry {
    pub level: u8,
    pub text: String,
    pub id: String,
    /// The heading on the web version (`post URL#id`).
    pub url: String,
}

/// A post with its body rendered: what feeds and the email read.
#[derive(Debug, Clone)]
pub struct RenderedPost<'a> {
    pub post: &'a Post,
    pub markdown: String,
    /// The full body as HTML, every link and image absolute.
    pub html: String,
    pub summary_html: String,
    pub summary_text: String,
    pub toc: Vec<TocEntry>,
    /// Problems found in the body (links, raw HTML), with file lines.
    pub diagnostics: Vec<Diagnostic>,
    /// Whether the sanitiser removed anything from `html` or `summary_html` (else they
    /// are exactly what the markdown renders to).
    pub sanitized: bool,
}

/// The markdown dialect: CommonMark plus the GitHub extensions editors expect.
pub fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// Reads the post's body from disk and renders it.
pub fn render(post: &Post) -> Result<RenderedPost<'_>, Diagnostic> {
    let markdown = crate::load::read_body(post)?;
    Ok(render_markdown(post, markdown))
}

/// Renders `markdown` as the body of `post`.
pub fn render_markdown(post: &Post, markdown: String) -> RenderedPost<'_> {
    let base = Url::parse(&post.url).ok();
    let mut diagnostics = Vec::new();
    let mut toc = Vec::new();
    // Characters XML forbids are dropped before parsing; `removed` maps offsets in the
    // cleaned text back to the file.
    let source = markdown;
    let (markdown, removed) = strip_forbidden(&source);
    let at_source = |offset: usize, len: usize, d: Diagnostic| {
        let (line, column) = line_col(&source, offset);
        let file_line = line + post.body_start.line - 1;
        d.in_file(&post.source).at(file_line, column).with_source(line_at(&source, offset), len)
    };
    const SHOWN: usize = 10;
    for (i, &(at, _)) in removed.iter().enumerate().take(SHOWN) {
        let earlier = i.checked_sub(1).map_or(0, |j| removed[j].1);
        let c = source[at + earlier..].chars().next().unwrap_or_default();
        let more = removed.len().saturating_sub(SHOWN);
        let mut d = crate::load::front_matter::control_character("the body", c);
        if i + 1 == SHOWN && more > 0 {
            d.message.push_str(&format!(" ({more} more in this post are not shown)"));
        }
        diagnostics.push(at_source(at + earlier, 1, d));
    }
    let mut lint = |offset: usize, len: usize, d: Diagnostic| {
        let before = removed.partition_point(|&(at, _)| at <= offset);
        let offset = offset + before.checked_sub(1).map_or(0, |i| removed[i].1);
        diagnostics.push(at_source(offset, len, d));
    };
    let events = transform(&markdown, base.as_ref(), &post.url, &mut toc, &mut lint);

    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.iter().map(|(e, _)| e.clone()));

    let (mut summary_html, summary_text) = match &post.summary {
        Some(s) => render_inline(s, base.as_ref(), &post.url),
        None => summary_from_body(&markdown, &events, base.as_ref(), &post.url),
    };
    drop(events);
    // Active content never reaches a feed or the mail; clean HTML keeps its bytes.
    let mut sanitized = false;
    for h in [&mut html, &mut summary_html] {
        if let std::borrow::Cow::Owned(clean) = sanitize::sanitize(h) {
            *h = clean;
            sanitized = true;
        }
    }
    RenderedPost { post, markdown, html, summary_html, summary_text, toc, diagnostics, sanitized }
}

/// `text` without the characters XML forbids, and for each one removed (its offset in
/// the result, bytes removed up to and including it): a result offset `o` was at
/// `o + bytes removed by the last entry at or before o`.
fn strip_forbidden(text: &str) -> (String, Vec<(usize, usize)>) {
    if !text.chars().any(crate::chars::is_forbidden) {
        return (text.to_string(), Vec::new());
    }
    let mut out = String::with_capacity(text.len());
    let mut removed = Vec::new();
    for c in text.chars() {
        if crate::chars::is_forbidden(c) {
            let total = removed.last().map_or(0, |&(_, n)| n) + c.len_utf8();
            removed.push((out.len(), total));
        } else {
            out.push(c);
        }
    }
    (out, removed)
}

type Lint<'l> = dyn FnMut(usize, usize, Diagnostic) + 'l;

/// How many elements a body may nest inside each other (quotes, lists and their items,
/// emphasis, links, raw HTML elements). LWKD's 386 issues nest at most 5. Deeper
/// structure is cut off at this depth and reported as an error: HTML parsers and CSS
/// inliners walk the tree recursively and take time growing with the depth for each
/// element, so 20,000 `>` would overflow the stack.
pub const MAX_NESTING: usize = 64;

/// The error for a body nested deeper than [`MAX_NESTING`].
fn too_deep() -> Diagnostic {
    Diagnostic::error(
        "too-deep",
        format!("nesting deeper than {MAX_NESTING} levels (quotes, lists, emphasis or HTML elements inside each other)"),
    )
    .help(format!(
        "each `>` or indented `-` opens one more level: flatten the structure (no reader can show {MAX_NESTING} levels of indentation); feeds and mail are not written until then"
    ))
}

/// Keeps a body's element nesting within [`MAX_NESTING`]: markdown elements past the
/// limit are dropped (their text stays), raw HTML that would open elements past it is
/// dropped whole. Reports the first place once.
#[derive(Default)]
struct Nesting {
    /// For each open markdown element: whether it was dropped.
    open: Vec<bool>,
    /// Elements that raw HTML left open.
    raw: html::OpenElements,
    reported: bool,
}

impl Nesting {
    /// A markdown element starts at `at`: false when it must be dropped.
    fn start(&mut self, at: usize, lint: &mut Lint<'_>) -> bool {
        let keep = self.open.len() + 1 + self.raw.depth <= MAX_NESTING;
        self.open.push(!keep);
        if !keep {
            self.report(at, lint);
        }
        keep
    }

    /// A markdown element ends: false when its start was dropped.
    fn end(&mut self) -> bool {
        !self.open.pop().unwrap_or(false)
    }

    /// Raw HTML with `tags` starts at `at`: false when it must be dropped. Offsets of the
    /// tags are mapped to the source by `source_of`.
    fn raw_html(&mut self, tags: &[html::Tag], source_of: impl Fn(usize) -> usize, lint: &mut Lint<'_>) -> bool {
        match self.raw.after(tags, MAX_NESTING.saturating_sub(self.open.len())) {
            Ok(after) => {
                self.raw = after;
                true
            }
            Err(i) => {
                self.report(source_of(tags[i].offset), lint);
                false
            }
        }
    }

    fn report(&mut self, at: usize, lint: &mut Lint<'_>) {
        if !self.reported {
            self.reported = true;
            lint(at, 1, too_deep());
        }
    }
}

/// Rewrites the event stream: heading ids, absolute URLs; reports lints by byte offset.
fn transform<'m>(
    markdown: &'m str,
    base: Option<&Url>,
    page_url: &str,
    toc: &mut Vec<TocEntry>,
    lint: &mut Lint<'_>,
) -> Vec<(Event<'m>, Range<usize>)> {
    let mut out: Vec<(Event<'m>, Range<usize>)> = Vec::with_capacity(markdown.len() / 16);
    let mut used_ids: HashMap<String, usize> = HashMap::new();
    let mut heading_start: Option<usize> = None;
    let mut link_start: Option<(usize, Range<usize>, String)> = None;
    let mut nesting = Nesting::default();
    // The open HTML block: where its start event is in `out`.
    let mut html_block: Option<usize> = None;

    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        match &event {
            Event::Start(_) if !nesting.start(range.start, lint) => continue,
            Event::End(_) if !nesting.end() => continue,
            _ => {}
        }
        let event = match event {
            Event::Start(Tag::Heading { ref attrs, .. }) => {
                let attrs: Vec<(String, String)> =
                    attrs.iter().map(|(k, v)| (k.to_string(), v.as_deref().unwrap_or("").to_string())).collect();
                lint::heading_attributes(&attrs, range.start, lint);
                heading_start = Some(out.len());
                event
            }
            Event::End(TagEnd::Heading(level)) => {
                if let Some(start) = heading_start.take() {
                    let text = plain_text(out[start + 1..].iter().map(|(e, _)| e));
                    let id_source = id_text(out[start + 1..].iter().map(|(e, _)| e));
                    if let Event::Start(Tag::Heading { id, .. }) = &mut out[start].0 {
                        let chosen = match id {
                            Some(given) => given.to_string(),
                            None => {
                                let generated = unique_id(&kramdown_id(&id_source), &mut used_ids);
                                *id = Some(CowStr::from(generated.clone()));
                                generated
                            }
                        };
                        toc.push(TocEntry {
                            level: heading_number(level),
                            url: format!("{page_url}#{chosen}"),
                            id: chosen,
                            text,
                        });
                    }
                }
                event
            }
            Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
                lint::link(markdown, &range, &dest_url, base, lint);
                link_start = Some((out.len(), range.clone(), dest_url.to_string()));
                // `<a@b.org>` is written without `mailto:`, which the HTML writer adds.
                let dest_url = if link_type == LinkType::Email { dest_url } else { absolutize(dest_url, base) };
                Event::Start(Tag::Link { link_type, dest_url, title, id })
            }
            Event::End(TagEnd::Link) => {
                if let Some((start, link_range, dest)) = link_start.take() {
                    let text = plain_text(out[start + 1..].iter().map(|(e, _)| e));
                    let has_image = out[start + 1..].iter().any(|(e, _)| matches!(e, Event::Start(Tag::Image { .. })));
                    if text.trim().is_empty() && !has_image {
                        lint(
                            link_range.start,
                            markdown[link_range.clone()].chars().count(),
                            Diagnostic::warning("empty-link-text", format!("link to `{dest}` has no text")).help(
                                "write the words readers should click between the brackets: `[the KEP](https://...)`",
                            ),
                        );
                    }
                }
                event
            }
            Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
                lint::link(markdown, &range, &dest_url, base, lint);
                Event::Start(Tag::Image { link_type, dest_url: absolutize(dest_url, base), title, id })
            }
            Event::Start(Tag::HtmlBlock) => {
                html_block = Some(out.len());
                event
            }
            Event::End(TagEnd::HtmlBlock) => {
                // A block's lines are separate events, and a tag may span lines: the
                // block is read as one fragment.
                if let Some(start) = html_block.take() {
                    let lines: Vec<&Range<usize>> =
                        out[start + 1..].iter().filter(|(e, _)| matches!(e, Event::Html(_))).map(|(_, r)| r).collect();
                    let mut fragment = String::new();
                    let mut segments = Vec::with_capacity(lines.len());
                    for r in lines {
                        segments.push((fragment.len(), r.start));
                        fragment.push_str(&markdown[r.clone()]);
                    }
                    let source_of = |offset: usize| {
                        let i = segments.partition_point(|(s, _)| *s <= offset).saturating_sub(1);
                        segments.get(i).map_or(range.start, |(s, src)| src + (offset - s))
                    };
                    let tags = html::tags(&fragment);
                    lint::active_html(&fragment, &tags, &source_of, lint);
                    if !nesting.raw_html(&tags, source_of, lint) {
                        out.truncate(start + 1);
                    } else {
                        absolute_block_urls(&mut out, start + 1, base);
                    }
                }
                event
            }
            // Inside an HTML block that was dropped for its depth.
            Event::Html(_) if html_block.is_none() => continue,
            Event::Html(html) => {
                lint::raw_html(&html, range.start, lint);
                Event::Html(html)
            }
            Event::InlineHtml(html) => {
                lint::raw_html(&html, range.start, lint);
                let tags = html::tags(&html);
                lint::active_html(&html, &tags, &|offset| range.start + offset, lint);
                if !nesting.raw_html(&tags, |offset| range.start + offset, lint) {
                    continue;
                }
                Event::InlineHtml(rewrite_html_urls(html, base))
            }
            other => other,
        };
        out.push((event, range));
    }
    out
}

/// Makes the URLs of the HTML block whose lines are `out[from..]` absolute. The lines
/// are read as one fragment (a tag may go on over several lines); when a URL changed they
/// become one event with the rewritten fragment, which the HTML writer writes as the
/// lines' concatenation, else they stay as they are.
fn absolute_block_urls<'m>(out: &mut Vec<(Event<'m>, Range<usize>)>, from: usize, base: Option<&Url>) {
    let lines = &out[from..];
    let Some(base) = base else { return };
    // A line without `href` or `src` needs nothing (and an attribute name never goes on
    // over a line break): most blocks are not copied.
    let html_lines = || lines.iter().map(|(e, _)| if let Event::Html(h) = e { Some(h.as_ref()) } else { None });
    if lines.is_empty()
        || !html_lines().all(|h| h.is_some())
        || !html_lines().flatten().any(urls::mentions_url_attribute)
    {
        return;
    }
    let fragment: String = html_lines().flatten().collect();
    let Some(rewritten) = urls::rewrite(&fragment, base) else { return };
    let range = lines[0].1.start..lines[lines.len() - 1].1.end;
    out.truncate(from);
    out.push((Event::Html(CowStr::from(rewritten)), range));
}

fn heading_number(level: HeadingLevel) -> u8 {
    level as u8
}

/// The text a reader sees in a run of events (no markup).
pub fn plain_text<'e>(events: impl Iterator<Item = &'e Event<'e>>) -> String {
    let mut s = String::new();
    for e in events {
        match e {
            Event::Text(t) | Event::Code(t) => s.push_str(t),
            Event::SoftBreak | Event::HardBreak => s.push(' '),
            _ => {}
        }
    }
    s.trim().to_string()
}

/// A heading's text as kramdown sees it when making the id: not trimmed (`[ #1: x ]`
/// keeps its spaces), and `--`/`---` outside code are typographic dashes, which the id
/// rule drops.
fn id_text<'e>(events: impl Iterator<Item = &'e Event<'e>>) -> String {
    let dashes = |t: &str| t.replace("---", "\u{2014}").replace("--", "\u{2013}");
    let (mut s, mut run) = (String::new(), String::new());
    for e in events {
        match e {
            Event::Text(t) => run.push_str(t),
            Event::Code(t) => {
                s.push_str(&dashes(&std::mem::take(&mut run)));
                s.push_str(t);
            }
            Event::SoftBreak | Event::HardBreak => run.push(' '),
            _ => {}
        }
    }
    s.push_str(&dashes(&run));
    s
}

/// The auto id Jekyll published: Jekyll runs kramdown with `input: GFM` by default (and
/// GitHub Pages always), whose rule (kramdown-parser-gfm's `generate_gfm_header_id`) is:
/// lowercase, drop everything but word characters, `-`, spaces and tabs, then spaces and
/// tabs to dashes. Leading digits stay (`### #87746: Fix` gets `87746-fix`).
pub fn kramdown_id(text: &str) -> String {
    let id: String = text
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' ' | '\t'))
        .flat_map(char::to_lowercase)
        .map(|c| if c == ' ' || c == '\t' { '-' } else { c })
        .collect();
    if id.is_empty() { "section".to_string() } else { id }
}

fn unique_id(id: &str, used: &mut HashMap<String, usize>) -> String {
    match used.get_mut(id) {
        Some(n) => {
            *n += 1;
            format!("{id}-{n}")
        }
        None => {
            used.insert(id.to_string(), 0);
            id.to_string()
        }
    }
}

/// True when `url` names its own scheme (`https:`, `mailto:`), per RFC 3986.
pub fn has_scheme(url: &str) -> bool {
    match url.find(':') {
        Some(i) if i > 0 => {
            let scheme = &url[..i];
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        _ => false,
    }
}

/// Resolves a link against the post's URL; links that carry a scheme are left as written.
pub fn absolutize<'a>(dest: CowStr<'a>, base: Option<&Url>) -> CowStr<'a> {
    match absolutize_str(&dest, base) {
        Some(abs) => CowStr::from(abs),
        None => dest,
    }
}

fn absolutize_str(dest: &str, base: Option<&Url>) -> Option<String> {
    let base = base?;
    if dest.is_empty() || has_scheme(dest) {
        return None;
    }
    if let Some(rest) = dest.strip_prefix("//") {
        return Some(format!("{}://{rest}", base.scheme()));
    }
    base.join(dest).ok().map(String::from)
}

/// Makes the `href`, `src` and `srcset` URLs of the tags in raw HTML absolute; the
/// same `html` when none changed.
fn rewrite_html_urls<'a>(html: CowStr<'a>, base: Option<&Url>) -> CowStr<'a> {
    match base.and_then(|base| urls::rewrite(&html, base)) {
        Some(rewritten) => CowStr::from(rewritten),
        None => html,
    }
}

/// A front-matter summary: markdown rendered inline, without the wrapping paragraph.
fn render_inline(summary: &str, base: Option<&Url>, page_url: &str) -> (String, String) {
    let mut toc = Vec::new();
    let events = transform(summary, base, page_url, &mut toc, &mut |_, _, _| {});
    let text = plain_text(events.iter().map(|(e, _)| e));
    let inner = events
        .into_iter()
        .map(|(e, _)| e)
        .filter(|e| !matches!(e, Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph)));
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, inner);
    (html.trim().to_string(), text)
}

/// Text before `<!--more-->`, else the first top-level paragraph.
fn summary_from_body(
    markdown: &str,
    events: &[(Event, Range<usize>)],
    base: Option<&Url>,
    page_url: &str,
) -> (String, String) {
    if let Some(i) = markdown.find("<!--more-->") {
        let before = &markdown[..i];
        let mut toc = Vec::new();
        let events = transform(before, base, page_url, &mut toc, &mut |_, _, _| {});
        let text = plain_text(events.iter().map(|(e, _)| e));
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, events.into_iter().map(|(e, _)| e));
        return (html.trim().to_string(), text);
    }
    let mut depth = 0usize;
    let mut start = None;
    for (i, (e, _)) in events.iter().enumerate() {
        match e {
            Event::Start(Tag::Paragraph) if depth == 0 => start = Some(i),
            Event::End(TagEnd::Paragraph) if depth == 1 => {
                if let Some(s) = start {
                    let slice = &events[s..=i];
                    let text = plain_text(slice.iter().map(|(e, _)| e));
                    if !text.is_empty() {
                        let mut html = String::new();
                        pulldown_cmark::html::push_html(&mut html, slice.iter().map(|(e, _)| e.clone()));
                        return (html.trim().to_string(), text);
                    }
                }
            }
            _ => {}
        }
        match e {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    (String::new(), String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BodyStart;

    fn post(url: &str) -> Post {
        Post {
            source: "posts/2020-05-10-update.md".into(),
            file_stem: "2020-05-10-update".into(),
            title: "T".into(),
            date: chrono::DateTime::parse_from_rfc3339("2020-05-12T20:00:00Z").unwrap(),
            updated: None,
            slug: "2020-05-10-update".into(),
            slug_from_front_matter: true,
            path: "/2020/20200512".into(),
            url: url.into(),
            id: url.into(),
            authors: vec![],
            tags: vec![],
            categories: vec![],
            summary: None,
            layout: None,
            published: true,
            extra: Default::default(),
            body_start: BodyStart { byte: 0, line: 7 },
            date_line: 4,
        }
    }

    fn render_str(md: &str) -> RenderedPost<'static> {
        let p = Box::leak(Box::new(post("https://lwkd.info/2020/20200512")));
        render_markdown(p, md.to_string())
    }

    /// Depth of the deepest element in well-formed `html` (pulldown-cmark's output).
    fn element_depth(html: &str) -> usize {
        let (mut depth, mut deepest) = (0usize, 0);
        for t in html::tags(html) {
            if t.end {
                depth -= 1;
            } else if !html::is_void(&t.name) {
                depth += 1;
                deepest = deepest.max(depth);
            }
        }
        deepest
    }

    #[test]
    fn forbidden_characters_are_dropped_and_other_lints_keep_their_columns() {
        let r = render_str("a\u{FFFF}\u{1B}b [x](cloud.google.com/y)\n\u{0}\n");
        assert_eq!(r.markdown, "ab [x](cloud.google.com/y)\n\n");
        assert!(!r.html.chars().any(crate::chars::is_forbidden), "{}", r.html);
        let found: Vec<_> = r.diagnostics.iter().map(|d| (d.code, d.line, d.column)).collect();
        assert_eq!(
            found,
            [
                ("control-character", 7, 2),
                ("control-character", 7, 3),
                ("control-character", 8, 1),
                ("schemeless-link", 7, 10)
            ]
        );
    }

    #[test]
    fn nesting_past_the_limit_is_cut_off_and_reported_once() {
        for md in [
            format!("{} x\n", ">".repeat(1000)),
            format!("{}x\n", "- ".repeat(1000)),
            format!("> {}x\n\n> {}y\n", "- ".repeat(500), "> ".repeat(500)),
            format!("{0}x{0}\n", "*".repeat(1000)),
            format!("{}x\n", "<span>".repeat(1000)),
            format!("{}\n\nafter\n", "<div>".repeat(1000)),
        ] {
            let r = render_str(&md);
            let errors: Vec<_> = r.diagnostics.iter().filter(|d| d.is_error()).collect();
            assert_eq!(errors.len(), 1, "{md:.40}: {:?}", r.diagnostics);
            assert_eq!((errors[0].code, errors[0].line), ("too-deep", 7));
            assert!(r.html.contains('x') || r.html.contains("after"), "the text stays: {}", r.html);
            // What is left nests at most MAX_NESTING elements (raw HTML past it is dropped).
            assert!(element_depth(&r.html) <= MAX_NESTING, "{md:.40}: {}", r.html);
            let text = text::render_text(&md, None);
            assert!(text.body.lines().all(|l| l.len() < 3 * MAX_NESTING + 10), "{md:.40}: {}", text.body);
        }
        assert!(render_str(&format!("{} x\n", ">".repeat(MAX_NESTING - 1))).diagnostics.is_empty());
    }

    #[test]
    fn relative_links_and_images_become_absolute() {
        let r = render_str(
            "[a](/2018/20180205) [b](img/x.png) ![c](../up.png) [d](#developer-news) [e](//cdn.example.org/x) [f](mailto:a@b.org) [g](https://x.org/?a=1&b=2)\n",
        );
        let h = &r.html;
        assert!(h.contains(r#"href="https://lwkd.info/2018/20180205""#), "{h}");
        assert!(h.contains(r#"href="https://lwkd.info/2020/img/x.png""#), "{h}");
        assert!(h.contains(r#"src="https://lwkd.info/up.png""#), "{h}");
        assert!(h.contains(r#"href="https://lwkd.info/2020/20200512#developer-news""#), "{h}");
        assert!(h.contains(r#"href="https://cdn.example.org/x""#), "{h}");
        assert!(h.contains(r#"href="mailto:a@b.org""#), "{h}");
        assert!(h.contains(r#"href="https://x.org/?a=1&amp;b=2""#), "{h}");
    }

    #[test]
    fn email_autolinks_stay_mail_addresses() {
        let r = render_str("Write to <lwkd@example.org>.\n");
        assert!(r.html.contains(r#"<a href="mailto:lwkd@example.org">lwkd@example.org</a>"#), "{}", r.html);
    }

    #[test]
    fn raw_html_urls_become_absolute() {
        let r = render_str(
            "<img src=\"/2018/images/a.png\" alt=x>\n\nSee <a href='b.html'>this</a> and <a href=\"https://k8s.io\">k8s</a>.\n",
        );
        assert!(r.html.contains(r#"<img src="https://lwkd.info/2018/images/a.png" alt=x>"#), "{}", r.html);
        assert!(r.html.contains(r#"<a href='https://lwkd.info/2020/b.html'>this</a>"#), "{}", r.html);
        assert!(r.html.contains(r#"<a href="https://k8s.io">"#), "{}", r.html);
    }

    #[test]
    fn href_and_src_in_raw_html_text_are_not_rewritten() {
        // Only attributes are URLs: words in an HTML block's text and another
        // attribute's value stay as written.
        let r = render_str(
            "<p>write href=\"x\" like this\nor src='y'</p>\n\nSee <a title='a src=\"y\"' href=\"z.html\">z</a>.\n",
        );
        assert_eq!(
            r.html,
            "<p>write href=\"x\" like this\nor src='y'</p>\n<p>See <a title='a src=\"y\"' href=\"https://lwkd.info/2020/z.html\">z</a>.</p>\n"
        );
    }

    #[test]
    fn raw_html_tags_spanning_lines_and_uppercase_attributes_are_rewritten() {
        let r = render_str("<div><a\n  href=\"/a\">a</a>\n<IMG SRC=\"b.png\"></div>\n");
        assert_eq!(
            r.html,
            "<div><a\n  href=\"https://lwkd.info/a\">a</a>\n<IMG SRC=\"https://lwkd.info/2020/b.png\"></div>\n"
        );
    }

    #[test]
    fn urls_in_raw_html_comments_and_scripts_are_not_rewritten() {
        let md = "<!-- <a href=\"/draft\">x</a> -->\n\nA <!-- <img src=\"/c.png\"> --> b\n\n<pre>\n<code>&lt;a href=\"/x\"&gt;</code> <a href=\"/y\">y</a>\n</pre>\n";
        let r = render_str(md);
        assert_eq!(
            r.html,
            "<!-- <a href=\"/draft\">x</a> -->\n<p>A <!-- <img src=\"/c.png\"> --> b</p>\n<pre>\n<code>&lt;a href=\"/x\"&gt;</code> <a href=\"https://lwkd.info/y\">y</a>\n</pre>\n"
        );
        // Scripts are removed by the sanitiser afterwards; what the rewrite does to them
        // is seen in the events.
        let base = Url::parse("https://lwkd.info/2020/20200512").unwrap();
        let script = "<script>\nvar u = '<a href=\"/x\">';\n</script>\n";
        assert!(matches!(rewrite_html_urls(CowStr::Borrowed(script), Some(&base)), CowStr::Borrowed(_)));
    }

    #[test]
    fn srcset_candidates_become_absolute_with_their_descriptors() {
        let base = Url::parse("https://lwkd.info/2020/20200512").unwrap();
        let html =
            "<img src=\"a.png\" srcset=\"a.png 1x, /b.png 2x,//cdn.example.org/c.png   480w ,https://k8s.io/d.png\">";
        assert_eq!(
            rewrite_html_urls(CowStr::from(html), Some(&base)).as_ref(),
            "<img src=\"https://lwkd.info/2020/a.png\" srcset=\"https://lwkd.info/2020/a.png 1x, https://lwkd.info/b.png 2x,https://cdn.example.org/c.png   480w ,https://k8s.io/d.png\">"
        );
        // A single candidate without descriptors, a `data:` URL with a comma, and (as
        // the HTML standard parses it) one URL with a comma inside.
        let html =
            "<source srcset='x.webp'><img srcset=\"data:image/png;base64,AA 1x,y.png 2x\"><img srcset=\"p.png,q.png\">";
        assert_eq!(
            rewrite_html_urls(CowStr::from(html), Some(&base)).as_ref(),
            "<source srcset='https://lwkd.info/2020/x.webp'><img srcset=\"data:image/png;base64,AA 1x,https://lwkd.info/2020/y.png 2x\"><img srcset=\"https://lwkd.info/2020/p.png,q.png\">"
        );
    }

    #[test]
    fn raw_html_without_relative_urls_keeps_its_bytes() {
        let base = Url::parse("https://lwkd.info/2020/20200512").unwrap();
        for html in ["<p>no links</p>\n", "<a href=\"https://k8s.io\">", "<p>src and href</p>", "<img src=''>"] {
            assert!(
                matches!(rewrite_html_urls(CowStr::Borrowed(html), Some(&base)), CowStr::Borrowed(h) if h == html),
                "{html}"
            );
        }
    }

    #[test]
    fn heading_ids_follow_kramdown_and_fill_the_toc() {
        let r = render_str(
            "## Developer News\n\n### [#87746: Support compiling Kubelet w/o docker/docker](https://x.org)\n\n## Developer News\n\n## Custom {#mine}\n",
        );
        assert!(r.html.contains(r#"<h2 id="developer-news">"#), "{}", r.html);
        assert!(r.html.contains(r#"<h3 id="87746-support-compiling-kubelet-wo-dockerdocker">"#), "{}", r.html);
        assert!(r.html.contains(r#"<h2 id="developer-news-1">"#), "{}", r.html);
        let ids: Vec<_> = r.toc.iter().map(|t| (t.level, t.id.as_str())).collect();
        assert_eq!(
            ids,
            [
                (2, "developer-news"),
                (3, "87746-support-compiling-kubelet-wo-dockerdocker"),
                (2, "developer-news-1"),
                (2, "mine")
            ]
        );
        assert_eq!(r.toc[0].text, "Developer News");
        assert_eq!(r.toc[0].url, "https://lwkd.info/2020/20200512#developer-news");
    }

    #[test]
    fn heading_ids_match_what_jekyll_published() {
        // Each expected id is what Jekyll 4.3 (kramdown, `input: GFM`) gave the heading;
        // the first three are headings of LWKD issues.
        let cases = [
            (
                "### [ #122589: promote contextual logging to beta, enabled by default](https://x.org)",
                "-122589-promote-contextual-logging-to-beta-enabled-by-default",
            ),
            (
                "### [#99556: kubectl: support --subresource flag](https://x.org)",
                "99556-kubectl-support-subresource-flag",
            ),
            ("## Subprojects_and_Dependency_Updates", "subprojects_and_dependency_updates"),
            ("### `--dry-run` and -- x --- y", "--dry-run-and--x--y"),
            ("## Über Straße 日本", "über-straße-日本"),
        ];
        for (markdown, id) in cases {
            let r = render_str(markdown);
            assert_eq!(r.toc[0].id, id, "{markdown}");
        }
    }

    #[test]
    fn summary_is_the_first_paragraph_not_a_heading() {
        let r = render_str("## Developer News\n\nThe [summit](https://x.org) is *cancelled*.\n\nMore.\n");
        assert_eq!(r.summary_text, "The summit is cancelled.");
        assert_eq!(r.summary_html, r#"<p>The <a href="https://x.org">summit</a> is <em>cancelled</em>.</p>"#);
    }

    #[test]
    fn summary_stops_at_the_more_marker() {
        let r = render_str("First part.\n\nSecond part.\n\n<!--more-->\n\nRest.\n");
        assert_eq!(r.summary_text, "First part.Second part.");
        assert!(r.summary_html.contains("<p>Second part.</p>"));
        assert!(!r.summary_html.contains("Rest"));
    }

    #[test]
    fn front_matter_summary_wins() {
        let mut p = post("https://lwkd.info/2020/20200512");
        p.summary = Some("Distroless & *TLS 1.3*".into());
        let p = Box::leak(Box::new(p));
        let r = render_markdown(p, "Body paragraph.\n".into());
        assert_eq!(r.summary_html, "Distroless &amp; <em>TLS 1.3</em>");
        assert_eq!(r.summary_text, "Distroless & TLS 1.3");
    }

    #[test]
    fn extensions_are_on() {
        let r =
            render_str("| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~\n\n- [x] done\n\nNote[^1].\n\n[^1]: Footnote.\n");
        assert!(r.html.contains("<table>"));
        assert!(r.html.contains("<del>old</del>"));
        assert!(r.html.contains("checkbox"));
        assert!(r.html.contains("footnote"));
    }

    #[test]
    fn lints_point_at_the_file_line() {
        let r = render_str("Intro.\n\n* `x` is [available](cloud.google.com/network-tier)\n");
        assert_eq!(r.diagnostics.len(), 1);
        let d = &r.diagnostics[0];
        assert_eq!(d.code, "schemeless-link");
        // Body starts on file line 7; the link is on the body's third line.
        assert_eq!((d.line, d.column), (9, 22));
        assert_eq!(
            d.help.as_deref(),
            Some(
                "write `https://cloud.google.com/network-tier` (without a scheme it resolves relative to the post, as https://lwkd.info/2020/cloud.google.com/network-tier)"
            )
        );
    }
}
