//! Checks on a body's links and raw HTML, run while rendering it.

use super::{Lint, has_scheme, html, sanitize};
use crate::diag::Diagnostic;
use std::ops::Range;
use url::Url;

/// File extensions that make `name.ext` a file, not a domain.
const FILE_EXTENSIONS: &[&str] = &[
    "md", "markdown", "html", "htm", "png", "jpg", "jpeg", "gif", "svg", "webp", "pdf", "txt", "xml", "json", "yaml",
    "yml", "css", "js", "php", "asp", "aspx", "zip", "gz", "tgz", "mp4", "mp3", "ico", "csv", "toml", "sh", "py", "rs",
    "go",
];

/// Checks a link or image destination as written.
pub(super) fn link(markdown: &str, range: &Range<usize>, dest: &str, base: Option<&Url>, lint: &mut Lint<'_>) {
    let source = &markdown[range.clone()];
    // Point at the destination inside `[text](dest)` when it is written there.
    let at = source.rfind(dest).filter(|_| !dest.is_empty()).map_or(range.start, |i| range.start + i);
    let len = dest.chars().count().max(1);
    if !sanitize::url_allowed(dest) {
        lint(at, len, removed_url("link", dest));
    }
    if schemeless_domain(dest).is_some() {
        let resolved = base.and_then(|b| b.join(dest).ok()).map_or_else(|| dest.to_string(), String::from);
        lint(
            at,
            len,
            Diagnostic::warning("schemeless-link", format!("link `{dest}` looks like a web address but has no scheme"))
                .help(format!(
                    "write `https://{dest}` (without a scheme it resolves relative to the post, as {})",
                    resolved
                )),
        );
    } else if let Some(rest) = dest.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#', ':']).next().unwrap_or("");
        let local = host == "localhost" || host.ends_with(".local") || host.parse::<std::net::IpAddr>().is_ok();
        if !local {
            lint(
                at,
                len,
                Diagnostic::warning("http-link", format!("link `{dest}` uses plain `http://`")).help(format!(
                    "use `https://{rest}` if the site serves it (most do, and mail clients flag plain http)"
                )),
            );
        }
    }
}

/// The warning for a link or image target (or URL attribute) the sanitiser removes.
fn removed_url(what: &str, url: &str) -> Diagnostic {
    let scheme = url::Url::parse(url).map(|u| u.scheme().to_string()).unwrap_or_default();
    let shown: String = url.chars().take(60).collect();
    let shown = if shown.len() < url.len() { format!("{shown}…") } else { shown };
    match scheme.as_str() {
        "javascript" | "vbscript" => Diagnostic::warning(
            "active-content",
            format!("{what} `{shown}` runs a script: it is removed from feeds and mail"),
        )
        .help("link to an `https://` page instead"),
        "data" => Diagnostic::warning(
            "active-content",
            format!("{what} `{shown}` is a `data:` URL, which can carry scripts: it is removed from feeds and mail"),
        )
        .help("put the file on the web and use its `https://` address"),
        _ => Diagnostic::warning(
            "removed-link",
            format!("{what} `{shown}` is removed from feeds and mail: only http, https and mailto links are kept"),
        )
        .help("use an `https://` address"),
    }
}

/// Tags that run or embed active content.
const ACTIVE_TAGS: &[&str] = &["script", "iframe", "object", "embed", "applet", "frame", "frameset", "noscript"];

/// Warns about what the sanitiser removes from raw HTML: tags and attributes it does
/// not keep (scripts, `on*` handlers, embeds, forms...) and URLs with other schemes.
/// `fragment` is the raw HTML the `tags` were read from; `source_of` maps its offsets
/// to the markdown's.
pub(super) fn active_html(fragment: &str, tags: &[html::Tag], source_of: &dyn Fn(usize) -> usize, lint: &mut Lint<'_>) {
    let lower = fragment.to_ascii_lowercase();
    for t in tags.iter().filter(|t| !t.end) {
        let len = t.name.chars().count() + 1;
        if !sanitize::tag_allowed(&t.name) {
            if !is_html_element(&t.name) {
                continue; // `unknown-html-tag` says it
            }
            let tag = format!("<{}>", t.name);
            let with_content =
                if sanitize::content_removed(&t.name) { ", with its content" } else { " (its text stays)" };
            let d = if ACTIVE_TAGS.contains(&t.name.as_str()) {
                Diagnostic::warning(
                    "active-content",
                    format!("`{tag}` is active content: it is removed from feeds and mail{with_content}"),
                )
                .help("feed readers and mail clients block it anyway: link to a web page that has it instead")
            } else {
                Diagnostic::warning("removed-html", format!("`{tag}` is removed from feeds and mail{with_content}"))
                    .help("feed readers and mail clients do not show it: use markdown, or link to a web page")
            };
            lint(source_of(t.offset), len, d);
            continue;
        }
        // Where the tag's text ends, to find its attributes in.
        let tag_end = lower[t.offset..].find('>').map_or(lower.len(), |i| t.offset + i);
        for (name, value) in &t.attrs {
            let at = lower[t.offset..tag_end].find(name.as_str()).map_or(t.offset, |i| t.offset + i);
            let d = if name.starts_with("on") {
                Diagnostic::warning(
                    "active-content",
                    format!("the `{name}` attribute runs a script: it is removed from feeds and mail"),
                )
                .help("delete it: readers never run scripts")
            } else if !sanitize::attribute_allowed(&t.name, name, value) {
                Diagnostic::warning(
                    "removed-html",
                    format!("the `{name}` attribute of `<{}>` is removed from feeds and mail", t.name),
                )
                .help("delete it, or use markdown for the formatting")
            } else if sanitize::is_url_attribute(name) && !sanitize::url_allowed(value) {
                removed_url(&format!("`{name}`"), value)
            } else {
                continue;
            };
            lint(source_of(at), name.chars().count(), d);
        }
    }
}

/// Warns about heading attributes (`# T {onclick=x}`) the sanitiser removes.
pub(super) fn heading_attributes(attrs: &[(String, String)], at: usize, lint: &mut Lint<'_>) {
    for (name, value) in attrs {
        let name = name.to_ascii_lowercase();
        let d = if name.starts_with("on") {
            Diagnostic::warning(
                "active-content",
                format!("the `{name}` attribute runs a script: it is removed from feeds and mail"),
            )
            .help("delete it: readers never run scripts")
        } else if !sanitize::attribute_allowed("h1", &name, value) {
            Diagnostic::warning(
                "removed-html",
                format!("the heading attribute `{name}` is removed from feeds and mail"),
            )
            .help("keep `{#id}` and `{.class}`; other attributes do not survive")
        } else {
            continue;
        };
        lint(at, 1, d);
    }
}

/// `cloud.google.com/network-tier` → `Some("cloud.google.com")`: a first path segment
/// that is a dotted name ending in an alphabetic top-level label that is no file type.
fn schemeless_domain(dest: &str) -> Option<&str> {
    if dest.is_empty() || has_scheme(dest) || dest.starts_with(['/', '#', '.', '?']) {
        return None;
    }
    let host = dest.split(['/', '?', '#']).next()?;
    let host_only = host.split(':').next()?;
    let labels: Vec<&str> = host_only.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return None;
    }
    let tld = labels[labels.len() - 1];
    let alphabetic = tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic());
    let hostlike = labels.iter().all(|l| l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    (alphabetic && hostlike && !FILE_EXTENSIONS.contains(&tld.to_ascii_lowercase().as_str())).then_some(host)
}

/// Warns about tags in raw HTML that are no HTML element (`<string>` typed as text
/// vanishes in every browser, feed reader and mail client).
pub(super) fn raw_html(html: &str, offset: usize, lint: &mut Lint<'_>) {
    let bytes = html.as_bytes();
    let mut i = 0;
    while let Some(rel) = html[i..].find('<') {
        let start = i + rel;
        let name: String = html[start + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        i = start + 1;
        if name.is_empty() || !bytes[start + 1].is_ascii_alphabetic() {
            continue;
        }
        if !is_html_element(&name) {
            let tag_len = html[start..].find('>').map_or(name.len() + 1, |e| e + 1);
            let tag = &html[start..start + tag_len];
            lint(
                offset + start,
                tag.chars().count(),
                Diagnostic::warning(
                    "unknown-html-tag",
                    format!("`{tag}` is not an HTML element: it will vanish from feeds and mail"),
                )
                .help(format!("put it in backticks (`` `{tag}` ``) or escape it as `\\<{}`", &tag[1..])),
            );
        }
    }
}

/// HTML, SVG and MathML element names, and custom elements (they contain a `-`).
pub fn is_html_element(name: &str) -> bool {
    const ELEMENTS: &[&str] = &[
        "a",
        "abbr",
        "address",
        "area",
        "article",
        "aside",
        "audio",
        "b",
        "base",
        "bdi",
        "bdo",
        "blockquote",
        "body",
        "br",
        "button",
        "canvas",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "data",
        "datalist",
        "dd",
        "del",
        "details",
        "dfn",
        "dialog",
        "div",
        "dl",
        "dt",
        "em",
        "embed",
        "fieldset",
        "figcaption",
        "figure",
        "font",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hgroup",
        "hr",
        "html",
        "i",
        "iframe",
        "img",
        "input",
        "ins",
        "kbd",
        "label",
        "legend",
        "li",
        "link",
        "main",
        "map",
        "mark",
        "math",
        "menu",
        "meta",
        "meter",
        "nav",
        "noscript",
        "object",
        "ol",
        "optgroup",
        "option",
        "output",
        "p",
        "param",
        "picture",
        "pre",
        "progress",
        "q",
        "rp",
        "rt",
        "ruby",
        "s",
        "samp",
        "script",
        "search",
        "section",
        "select",
        "slot",
        "small",
        "source",
        "span",
        "strike",
        "strong",
        "style",
        "sub",
        "summary",
        "sup",
        "svg",
        "table",
        "tbody",
        "td",
        "template",
        "textarea",
        "tfoot",
        "th",
        "thead",
        "time",
        "title",
        "tr",
        "track",
        "tt",
        "u",
        "ul",
        "var",
        "video",
        "wbr",
        "circle",
        "clippath",
        "defs",
        "ellipse",
        "g",
        "line",
        "lineargradient",
        "path",
        "polygon",
        "polyline",
        "radialgradient",
        "rect",
        "stop",
        "text",
        "tspan",
        "use",
        "mi",
        "mn",
        "mo",
        "mrow",
        "msup",
        "msub",
        "mfrac",
        "msqrt",
    ];
    name.contains('-') || ELEMENTS.contains(&name.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_without_scheme() {
        assert_eq!(schemeless_domain("cloud.google.com/network-tier"), Some("cloud.google.com"));
        assert_eq!(schemeless_domain("kubernetes.io"), Some("kubernetes.io"));
        assert_eq!(schemeless_domain("www.example.org/a?b=c"), Some("www.example.org"));
        for fine in [
            "README.md",
            "images/a.png",
            "/2018/x",
            "#a",
            "https://k8s.io",
            "mailto:a@b.org",
            "v1.19",
            "a.b.c.png",
            "../x.html",
        ] {
            assert_eq!(schemeless_domain(fine), None, "{fine}");
        }
    }

    #[test]
    fn element_names() {
        assert!(is_html_element("div"));
        assert!(is_html_element("IMG"));
        assert!(is_html_element("my-widget"));
        assert!(!is_html_element("string"));
        assert!(!is_html_element("policy"));
    }

    #[test]
    fn unknown_tags_in_raw_html() {
        let mut found = Vec::new();
        raw_html("a <string> b <br/> </string> <!-- c -->", 10, &mut |off, len, d| found.push((off, len, d.code)));
        assert_eq!(found, [(12, 8, "unknown-html-tag")]);
    }
}
