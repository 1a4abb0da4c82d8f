//! Raw HTML written in markdown, read with html5ever's tokenizer (the HTML standard's
//! tokenizer, as browsers and mail clients run it): its tags with their attributes and
//! byte offsets, for the nesting limit and the active-content lints. One pass, linear in
//! the fragment's length.

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts};
use std::cell::RefCell;

/// One tag of a raw HTML fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Lowercase, as HTML compares names.
    pub name: String,
    pub end: bool,
    pub self_closing: bool,
    /// (name, value): names lowercase, values with character references decoded.
    pub attrs: Vec<(String, String)>,
    /// Byte offset of the tag's `<` in the fragment (found by searching, so best effort
    /// for tags that also occur inside an earlier attribute value).
    pub offset: usize,
}

#[derive(Default)]
struct Sink {
    tags: RefCell<Vec<Tag>>,
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let Token::TagToken(tag) = token else { return TokenSinkResult::Continue };
        let name = tag.name.to_string();
        let end = tag.kind == TagKind::EndTag;
        // Without a tree builder the tokenizer does not switch to the raw text states
        // by itself: what follows `<script>` is script, not tags.
        let next = match (end, name.as_str()) {
            (false, "script") => TokenSinkResult::RawData(RawKind::ScriptData),
            (false, "style" | "xmp" | "iframe" | "noembed" | "noframes") => TokenSinkResult::RawData(RawKind::Rawtext),
            (false, "textarea" | "title") => TokenSinkResult::RawData(RawKind::Rcdata),
            (false, "plaintext") => TokenSinkResult::Plaintext,
            _ => TokenSinkResult::Continue,
        };
        let attrs = tag.attrs.iter().map(|a| (a.name.local.to_string(), a.value.to_string())).collect();
        self.tags.borrow_mut().push(Tag { name, end, self_closing: tag.self_closing, attrs, offset: 0 });
        next
    }
}

/// The tags of `fragment`, in order.
pub fn tags(fragment: &str) -> Vec<Tag> {
    if !fragment.contains('<') {
        return Vec::new();
    }
    let tokenizer = Tokenizer::new(Sink::default(), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(fragment));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let mut tags = tokenizer.sink.tags.take();
    // Offsets: each tag's `<name` searched from where the previous one was found.
    let lower = fragment.to_ascii_lowercase();
    let mut from = 0;
    for t in &mut tags {
        let needle = if t.end { format!("</{}", t.name) } else { format!("<{}", t.name) };
        if let Some(i) = lower.get(from..).and_then(|rest| rest.find(&needle)) {
            t.offset = from + i;
            from = t.offset + needle.len();
        } else {
            t.offset = from.min(fragment.len());
        }
    }
    tags
}

/// Elements that never have content (`<br>`, `<img>`): they nest nothing.
pub fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
            | "keygen"
            | "frame"
            | "basefont"
            | "bgsound"
            | "image"
    )
}

/// Elements whose start tag closes an open one of their kind (`<p><p>`, `<li><li>`),
/// so a run of them does not nest; tables nest through `<table>`, lists through
/// `<ul>`/`<ol>`, which are counted.
fn closes_its_kind(name: &str) -> bool {
    matches!(
        name,
        "p" | "li"
            | "dt"
            | "dd"
            | "option"
            | "optgroup"
            | "rb"
            | "rp"
            | "rt"
            | "rtc"
            | "tr"
            | "td"
            | "th"
            | "thead"
            | "tbody"
            | "tfoot"
            | "caption"
            | "colgroup"
    )
}

/// Tracks how deep the elements that raw HTML leaves open are nested: an upper bound of
/// what an HTML parser builds from them (each start tag that can hold others opens one
/// level, each end tag closes one).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OpenElements {
    pub depth: usize,
}

impl OpenElements {
    /// Applies `tags`: the elements open after them, or the index of the first tag that
    /// opens more than `limit`.
    pub fn after(self, tags: &[Tag], limit: usize) -> Result<OpenElements, usize> {
        let mut depth = self.depth;
        for (i, t) in tags.iter().enumerate() {
            if t.end {
                depth = depth.saturating_sub(1);
            } else if !t.self_closing && !is_void(&t.name) && !closes_its_kind(&t.name) {
                depth += 1;
                if depth > limit {
                    return Err(i);
                }
            }
        }
        Ok(OpenElements { depth })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_with_decoded_attributes_and_offsets() {
        let t = tags(r#"x <A HREF="java&#115;cript:1" onClick=go()>y</a> <br/>"#);
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].name.as_str(), t[0].end, t[0].offset), ("a", false, 2));
        assert_eq!(t[0].attrs, [("href".to_string(), "javascript:1".to_string()), ("onclick".into(), "go()".into())]);
        assert_eq!((t[1].name.as_str(), t[1].end), ("a", true));
        assert!(t[2].self_closing && t[2].name == "br");
    }

    #[test]
    fn script_content_is_not_tags() {
        let t = tags("<script>if (a<b) document.write('<div>')</script><p>");
        let names: Vec<_> = t.iter().map(|t| (t.name.as_str(), t.end)).collect();
        assert_eq!(names, [("script", false), ("script", true), ("p", false)]);
    }

    #[test]
    fn depth_counts_elements_left_open() {
        let after = OpenElements::default().after(&tags("<div><div><br><p><p></div><span>"), 2).unwrap();
        assert_eq!(after.depth, 2);
        assert_eq!(after.after(&tags("</span></div></div></div>"), 2).unwrap().depth, 0);
        assert_eq!(after.after(&tags("<br><b>"), 2), Err(1));
    }
}
