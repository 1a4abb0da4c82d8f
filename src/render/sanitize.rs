//! Active content out of feeds and mail: `<script>`, `on*=` handlers, `javascript:` and
//! `data:` URLs and every other tag or attribute a reader's HTML may not carry are
//! removed with [ammonia], configured with a generous allow-list (everything
//! pulldown-cmark writes and the usual prose HTML).
//!
//! A clean body keeps its bytes: the sanitised fragment is compared with the same
//! fragment only parsed and re-serialised by html5ever (the parser ammonia uses, with
//! nothing filtered). When they are equal the sanitiser removed nothing and the
//! original HTML is kept, so feeds of clean posts are byte-identical to before; when
//! they differ the sanitised HTML is used. `check` reports each removal with its line
//! (`lint::active_*`), reading the policy from the same builder.

use ammonia::{Builder, UrlRelative};
use html5ever::serialize::{SerializeOpts, serialize};
use html5ever::tendril::TendrilSink;
use html5ever::{QualName, local_name, ns};
use markup5ever_rcdom::{RcDom, SerializableHandle};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

/// URL schemes links and images may use; relative URLs are kept as they are.
pub const URL_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// The sanitiser, built once.
static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut b = Builder::default();
    b.add_tags(["input"])
        .add_generic_attributes(["id", "class", "dir"])
        // `data-*` only carries data for scripts, which readers never run.
        .add_generic_attribute_prefixes(["data-"])
        // pulldown-cmark aligns table columns with `style`; task lists are checkboxes.
        .add_tag_attributes("th", ["style"])
        .add_tag_attributes("td", ["style"])
        .add_tag_attributes("input", ["checked", "disabled"])
        .add_tag_attribute_values("input", "type", ["checkbox"])
        .attribute_filter(|_, attr, value| match attr {
            "style" if !style_allowed(value) => None,
            _ => Some(Cow::Borrowed(value)),
        })
        .url_schemes(HashSet::from(URL_SCHEMES))
        .url_relative(UrlRelative::PassThrough)
        .link_rel(None)
        // Comments are inert in every reader (and `<!--more-->` marks summaries).
        .strip_comments(false);
    b
});

/// `html` with active content removed: borrowed (the original bytes) when nothing was.
pub fn sanitize(html: &str) -> Cow<'_, str> {
    if html.is_empty() {
        return Cow::Borrowed(html);
    }
    let clean = SANITIZER.clean(html).to_string();
    if clean == reserialize(html) { Cow::Borrowed(html) } else { Cow::Owned(clean) }
}

/// `html` parsed as ammonia parses it (a fragment in a `<div>`) and serialised again,
/// nothing removed.
fn reserialize(html: &str) -> String {
    let dom = html5ever::parse_fragment(
        RcDom::default(),
        html5ever::ParseOpts::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        vec![],
        false,
    )
    .one(html);
    let root: SerializableHandle = dom.document.children.borrow()[0].clone().into();
    let mut out = Vec::with_capacity(html.len());
    // Writing into a Vec cannot fail.
    let _ = serialize(&mut out, &root, SerializeOpts::default());
    String::from_utf8(out).unwrap_or_default()
}

/// Tags the sanitiser keeps.
pub fn tag_allowed(tag: &str) -> bool {
    SANITIZER.clone_tags().contains(tag)
}

/// Tags removed together with their content (`<script>`, `<style>`).
pub fn content_removed(tag: &str) -> bool {
    SANITIZER.clone_clean_content_tags().contains(tag)
}

/// Whether `attr` survives on an allowed `tag` (its value aside).
pub fn attribute_allowed(tag: &str, attr: &str, value: &str) -> bool {
    if SANITIZER.clone_generic_attributes().contains(attr) || attr.starts_with("data-") {
        return true;
    }
    if SANITIZER.clone_tag_attributes().get(tag).is_some_and(|a| a.contains(attr)) {
        return attr != "style" || style_allowed(value);
    }
    SANITIZER.clone_tag_attribute_values().get(tag).and_then(|a| a.get(attr)).is_some_and(|v| v.contains(value))
}

/// `style` values kept (verbatim): only `text-align`, which pulldown-cmark writes for
/// aligned table columns. Anything else could overlay or hide text in a reader.
pub fn style_allowed(value: &str) -> bool {
    value.split(';').map(str::trim).filter(|d| !d.is_empty()).all(|d| {
        d.split_once(':').is_some_and(|(p, v)| {
            p.trim().eq_ignore_ascii_case("text-align")
                && ["left", "right", "center", "justify"].iter().any(|a| v.trim().eq_ignore_ascii_case(a))
        })
    })
}

/// Whether a link or image target survives: relative, or one of [`URL_SCHEMES`].
pub fn url_allowed(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(u) => URL_SCHEMES.contains(&u.scheme()),
        Err(_) => true,
    }
}

/// Attributes that hold a URL (as ammonia checks them).
pub fn is_url_attribute(attr: &str) -> bool {
    matches!(attr, "href" | "src" | "xlink:href" | "action" | "data" | "formaction" | "ping" | "poster")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_pulldown_cmark_writes_is_kept_byte_for_byte() {
        let md = "# T {#top}\n\n| a | b |\n|:-:|--:|\n| 1 | 2 |\n\n- [x] done\n- [ ] todo\n\nA[^1] `c` ~~d~~ **e** \
                  <https://x.org/?a=1&b=2> ![alt \"q\"](https://x.org/i.png \"t\")\n\n[^1]: Note.\n\n```rust\nlet a = b < c;\n```\n\n<!--more-->\n";
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new_ext(md, crate::render::options()));
        assert!(matches!(sanitize(&html), Cow::Borrowed(_)), "{html}\n---\n{}", sanitize(&html));
    }

    #[test]
    fn active_content_is_removed() {
        let html = "<p onclick=\"x()\">a<script>alert(1)</script><a href=\"javascript:alert(1)\">b</a>\
                    <img src=\"data:image/png;base64,AA\" alt=\"c\"><iframe src=\"https://x.org\"></iframe></p>";
        let clean = sanitize(html);
        assert_eq!(clean, "<p>a<a>b</a><img alt=\"c\"></p>");
    }
}
