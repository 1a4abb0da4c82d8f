//! Warnings about a rendered digest that mail clients would punish: an HTML part Gmail
//! clips, a subject that is empty or cut off, links that go nowhere without a base URL.
//! `check` and `preview` both run these.

use super::{Digest, Parts};
use crate::diag::{Diagnostic, line_at, line_col};
use crate::render::has_scheme;

/// Gmail shows "[Message clipped]" past this many bytes of HTML; the deliverability
/// report measures against the same number.
pub use crate::deliverability::GMAIL_CLIP_BYTES;
/// Subjects longer than this are cut off in every client's list view.
pub const MAX_SUBJECT_CHARS: usize = 150;

/// Every `href` value of an HTML document, then every `src` value, unescaped.
///
/// Reads the HTML that css-inline wrote (html5ever's serializer always double-quotes
/// attribute values), so a scan is exact.
pub fn html_links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in [" href=\"", " src=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            let value_start = i + attr.len();
            let Some(end) = rest[value_start..].find('"') else { break };
            out.push(unescape(&rest[value_start..value_start + end]));
            rest = &rest[value_start + end..];
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'").replace("&amp;", "&")
}

/// Number of links (`href`s) a reader can click in the HTML part.
pub fn link_count(html: &str) -> usize {
    html.matches(" href=\"").count()
}

/// The warnings for one recipient's parts of `digest`.
pub fn lint(digest: &Digest, parts: &Parts) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let subject_file = digest.templates.file("subject.txt").and_then(|f| f.path.clone());
    let at_subject = |d: Diagnostic| match &subject_file {
        Some(p) => d.in_file(p),
        None => d,
    };
    let chars = parts.subject.chars().count();
    if parts.subject.trim().is_empty() {
        out.push(at_subject(
            Diagnostic::warning("empty-subject", "the digest's subject is empty")
                .help("subject.txt should print something, e.g. `{{ post.title }}`"),
        ));
    } else if chars > MAX_SUBJECT_CHARS {
        out.push(at_subject(
            Diagnostic::warning(
                "long-subject",
                format!(
                    "the subject is {chars} characters long; mail clients cut it off after about {MAX_SUBJECT_CHARS}"
                ),
            )
            .help("shorten the post's title or subject.txt"),
        ));
    }
    let html_bytes = parts.html.len();
    if html_bytes > GMAIL_CLIP_BYTES {
        out.push(
            Diagnostic::warning(
                "clipped-html",
                format!(
                    "the HTML part is {html_bytes} bytes; Gmail clips messages over 102 KB ({GMAIL_CLIP_BYTES} bytes) and hides the rest (the footer with the unsubscribe link included)"
                ),
            )
            .in_file(&digest.post_source)
            .help("shorten the issue, or trim the template's CSS and markup"),
        );
    }
    let mut seen = std::collections::HashSet::new();
    let links = html_links(&parts.html).into_iter().chain(digest.text_links.iter().cloned());
    for link in links {
        if is_absolute(&link) || in_document(&link, &parts.html) || !seen.insert(link.clone()) {
            continue;
        }
        out.push(locate(
            digest,
            &link,
            Diagnostic::warning("relative-link-in-email", format!("the link `{link}` in the digest is not absolute"))
                .help("mail has no base URL, so the link goes nowhere: write the full `https://...` address"),
        ));
    }
    out
}

/// Absolute: carries a scheme (`https:`, `mailto:`, `cid:`); `//host` is not enough in mail.
fn is_absolute(link: &str) -> bool {
    has_scheme(link)
}

/// A link to an element of the message itself (`#1`, a footnote): mail clients that
/// follow anchors scroll to it, the others ignore it; no base URL is involved.
fn in_document(link: &str, html: &str) -> bool {
    match link.strip_prefix('#') {
        Some("") => true,
        Some(id) => [format!(" id=\"{id}\""), format!(" name=\"{id}\"")].iter().any(|a| html.contains(a.as_str())),
        None => false,
    }
}

/// Where `needle` is written as a link in `text`: the byte offset of the link itself.
/// Only link syntax counts (`](x)`, `href="x"`, `src='x'`), so `#1` is not found in
/// a stylesheet's `color: #1f2933`.
fn find_link(text: &str, needle: &str) -> Option<usize> {
    let forms =
        [("](", ")"), ("](", " "), ("href=\"", "\""), ("href='", "'"), ("src=\"", "\""), ("src='", "'"), ("<", ">")];
    forms.iter().filter_map(|(open, close)| text.find(&format!("{open}{needle}{close}")).map(|i| i + open.len())).min()
}

/// Points a warning at the post line or template line that writes the link `needle`:
/// the post first, since a link from the body is written there.
fn locate(digest: &Digest, needle: &str, d: Diagnostic) -> Diagnostic {
    let len = needle.chars().count().max(1);
    let post = std::fs::read_to_string(&digest.post_source).unwrap_or_default();
    if let Some(offset) = find_link(&post, needle) {
        let (line, col) = line_col(&post, offset);
        return d.in_file(&digest.post_source).at(line, col).with_source(line_at(&post, offset), len);
    }
    for f in &digest.templates.files {
        if let (Some(path), Some(offset)) = (&f.path, find_link(&f.source, needle)) {
            let (line, col) = line_col(&f.source, offset);
            return d.in_file(path).at(line, col).with_source(line_at(&f.source, offset), len);
        }
    }
    d.in_file(&digest.post_source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_read_from_serialized_html() {
        let html =
            r#"<p><a href="https://a.org/?x=1&amp;y=2">a</a> <img src="/img.png"> <a href="mailto:x@y.org">m</a></p>"#;
        assert_eq!(html_links(html), ["https://a.org/?x=1&y=2", "mailto:x@y.org", "/img.png"]);
        assert_eq!(link_count(html), 2);
        assert!(!is_absolute("/img.png"));
        assert!(!is_absolute("#top"));
        assert!(is_absolute("mailto:x@y.org"));
    }

    #[test]
    fn links_are_found_only_as_links() {
        let css = "  .content { color: #1f2933; }\n<a href=\"#1\">x</a>";
        assert_eq!(find_link(css, "#1"), Some(css.find("#1\"").unwrap()));
        assert_eq!(find_link("color: #1f2933;", "#1"), None);
        assert_eq!(find_link("see [the KEP]() here", ""), Some(14));
        let html = r##"<sup><a href="#1">1</a></sup><div class="footnote-definition" id="1">"##;
        assert!(in_document("#1", html) && in_document("#", html));
        assert!(!in_document("#2", html) && !in_document("/x", html));
    }
}
