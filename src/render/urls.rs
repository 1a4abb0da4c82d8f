//! Absolute URLs in raw HTML: the `href`, `src` and `srcset` attributes of the tags in a
//! fragment, found by an HTML parser ([lol_html]), so words in the text, comments,
//! script and style content and the values of other attributes are never taken for
//! URLs.
//!
//! lol_html only reads the fragment: each value is replaced in the original bytes at the
//! position the parser reports, so the rest of a tag (quotes, spacing, case, attribute
//! order) is kept exactly as written. Linear in the fragment's length.

use super::absolutize_str;
use lol_html::html_content::Element;
use lol_html::{HtmlRewriter, Settings, element};
use std::ops::Range;
use url::Url;

/// `html` with its relative `href`, `src` and `srcset` URLs resolved against `base`;
/// `None` when none needed it (or the fragment could not be read).
pub fn rewrite(html: &str, base: &Url) -> Option<String> {
    if !mentions_url_attribute(html) {
        return None;
    }
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let handler = |el: &mut Element| {
        for attr in el.attributes() {
            let Some(at) = attr.value_source_location().map(|l| l.bytes()) else { continue };
            let Some(value) = html.get(at.clone()) else { continue };
            let new = match attr.name().as_str() {
                "href" | "src" => absolutize_str(value, Some(base)),
                "srcset" => rewrite_srcset(value, base),
                _ => None,
            };
            if let Some(new) = new {
                edits.push((at, new));
            }
        }
        Ok(())
    };
    let settings = Settings::new()
        // Markup a streaming parser cannot place for certain is still read, as a
        // browser would most likely read it, instead of failing the fragment.
        .with_strict(false)
        .append_element_content_handler(element!("[href], [src], [srcset]", handler));
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    if rewriter.write(html.as_bytes()).is_err() || rewriter.end().is_err() {
        return None;
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|(at, _)| at.start);
    let mut out = String::with_capacity(html.len() + edits.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut from = 0;
    for (at, value) in edits {
        // Positions come from one pass over the input: increasing, never overlapping.
        if at.start < from {
            continue;
        }
        out.push_str(&html[from..at.start]);
        out.push_str(&value);
        from = at.end;
    }
    out.push_str(&html[from..]);
    Some(out)
}

/// Whether `html` contains `href` or `src` (so `srcset` too) in any case: fragments
/// without them are not parsed at all.
pub fn mentions_url_attribute(html: &str) -> bool {
    let b = html.as_bytes();
    b.windows(4).any(|w| w.eq_ignore_ascii_case(b"href")) || b.windows(3).any(|w| w.eq_ignore_ascii_case(b"src"))
}

/// A `srcset` value with each candidate's URL resolved against `base`, the rest
/// (descriptors such as `1x` or `480w`, commas, spacing) kept; `None` when no URL
/// changed. Candidates are split as the HTML standard's srcset parser splits them: a
/// URL is a run of non-whitespace characters (trailing commas end the candidate), its
/// descriptors go on to the next comma outside parentheses.
pub fn rewrite_srcset(value: &str, base: &Url) -> Option<String> {
    let mut out = String::with_capacity(value.len() + 64);
    let mut changed = false;
    let mut rest = value;
    loop {
        // Whitespace and commas between candidates.
        let skip = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',').len();
        out.push_str(&rest[..skip]);
        rest = &rest[skip..];
        if rest.is_empty() {
            break;
        }
        let end = rest.find(|c: char| c.is_ascii_whitespace()).unwrap_or(rest.len());
        let url = rest[..end].trim_end_matches(',');
        match absolutize_str(url, Some(base)) {
            Some(abs) => {
                changed = true;
                out.push_str(&abs);
            }
            None => out.push_str(url),
        }
        let ended_by_comma = url.len() < end;
        rest = &rest[url.len()..];
        if ended_by_comma {
            continue;
        }
        // Descriptors: up to the next comma that is not inside parentheses.
        let mut depth = 0usize;
        let end = rest
            .char_indices()
            .find(|&(_, c)| match c {
                '(' => {
                    depth += 1;
                    false
                }
                ')' => {
                    depth = depth.saturating_sub(1);
                    false
                }
                ',' => depth == 0,
                _ => false,
            })
            .map_or(rest.len(), |(i, _)| i);
        out.push_str(&rest[..end]);
        rest = &rest[end..];
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://lwkd.info/2020/20200512").unwrap()
    }

    #[test]
    fn only_attributes_of_tags_are_urls() {
        let b = base();
        let html = concat!(
            "<p>href=\"a\" <b data-src=\"/b\" title=\"src='/c'\" src=/d>x</b></p>",
            "<script>var u = '<img src=\"/e\">';</script><style>a { x: url(src=/f) }</style>",
            "<textarea><a href=\"/g\"></textarea><a HREF = '/h' href=\"/i\">"
        );
        assert_eq!(
            rewrite(html, &b).as_deref(),
            Some(concat!(
                "<p>href=\"a\" <b data-src=\"/b\" title=\"src='/c'\" src=https://lwkd.info/d>x</b></p>",
                "<script>var u = '<img src=\"/e\">';</script><style>a { x: url(src=/f) }</style>",
                "<textarea><a href=\"/g\"></textarea><a HREF = 'https://lwkd.info/h' href=\"https://lwkd.info/i\">"
            ))
        );
    }

    #[test]
    fn srcset_descriptors_and_parentheses_are_kept() {
        let b = base();
        assert_eq!(
            rewrite_srcset(" a.png  1x (x, y),b.png,, c.png 2x ,", &b).as_deref(),
            Some(
                " https://lwkd.info/2020/a.png  1x (x, y),https://lwkd.info/2020/b.png,, https://lwkd.info/2020/c.png 2x ,"
            )
        );
        assert_eq!(rewrite_srcset("https://k8s.io/a.png 1x, data:image/png;base64,AA 2x", &b), None);
        assert_eq!(rewrite_srcset(" , ,", &b), None);
    }

    #[test]
    fn hostile_fragments_end_in_linear_time() {
        // Half a megabyte each: anything quadratic in the length would take minutes.
        let b = base();
        let n = 50_000;
        let srcset = format!("<img srcset=\"{}\">", "a.png 1x , ".repeat(n));
        let out = rewrite(&srcset, &b).unwrap();
        assert_eq!(out.matches("https://lwkd.info/2020/a.png 1x , ").count(), n);
        // One tag with 200,000 attributes (`href` again and again, `<a`).
        let long_tag = format!("{}>", "<a href=x ".repeat(n));
        assert!(rewrite(&long_tag, &b).is_some());
        let many = "<a href=/x>".repeat(n);
        assert_eq!(rewrite(&many, &b).unwrap().matches("https://lwkd.info/x").count(), n);
        for hostile in [
            "href src ".repeat(n),
            // A tag that never ends is no tag (as in a browser).
            "<a href=x ".repeat(n),
            format!("<!--{}", "<a href=/x>".repeat(n)),
            format!("<a title=\"{}", "href=/x ".repeat(n)),
            format!("<img srcset=\"{}\">", "(".repeat(10 * n)),
            format!("<img srcset=\"{}\">", ",".repeat(10 * n)),
            "<svg><a href=/x><math><![CDATA[".repeat(n / 4),
        ] {
            assert!(rewrite(&hostile, &b).is_none_or(|h| h.len() >= hostile.len()));
        }
    }
}
