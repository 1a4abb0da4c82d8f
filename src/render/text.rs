//! Markdown → plain text for the text part of the email digest.
//!
//! Rendered from the markdown events, not by stripping HTML, so the structure an
//! editor wrote survives: headings are underlined, lists keep their markers and
//! indentation, quotes keep `> `, code keeps its line breaks, and prose is wrapped at
//! [`WIDTH`] columns without ever breaking a word or a URL. Links become numbered
//! references (`text [1]`) listed under the text, so a terminal mail client shows
//! every address in full.

use super::{MAX_NESTING, absolutize, options};
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts};
use pulldown_cmark::{CowStr, Event, HeadingLevel, LinkType, Parser, Tag, TagEnd};
use std::cell::{Cell, RefCell};
use unicode_width::UnicodeWidthStr;
use url::Url;

/// Column limit for wrapped prose (RFC 3676 suggests at most 78; 72 leaves room for quoting).
pub const WIDTH: usize = 72;

/// Joins a link's text to its `[n]` marker while wrapping, so the marker never starts
/// a line on its own; replaced by a space afterwards.
pub const GLUE: char = '\u{E000}';

/// The plain-text body and the links it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainText {
    /// The body without the link list.
    pub body: String,
    /// Absolute link targets; `[n]` in the body is `links[n - 1]`.
    pub links: Vec<String>,
}

impl PlainText {
    /// The body followed by the numbered link list: the digest's `text`.
    pub fn with_references(&self) -> String {
        let mut out = self.body.clone();
        if !self.links.is_empty() {
            out.push_str("\nLinks:\n");
            for (i, link) in self.links.iter().enumerate() {
                out.push_str(&format!("[{}] {}\n", i + 1, link));
            }
        }
        out
    }
}

/// Renders `markdown` as wrapped plain text; relative links resolve against `base`.
pub fn render_text(markdown: &str, base: Option<&Url>) -> PlainText {
    // The wrapper's own glue must not come from the text (it would turn into a space
    // and join words into one that is never broken): a private-use character shows as
    // nothing useful in plain text anyway.
    let markdown: std::borrow::Cow<str> =
        if markdown.contains(GLUE) { markdown.replace(GLUE, "\u{FFFD}").into() } else { markdown.into() };
    let mut w = Writer::new(base);
    for event in Parser::new_ext(&markdown, options()) {
        w.event(event);
    }
    w.flush();
    let mut body = w.out.trim_end().to_string();
    body.push('\n');
    PlainText { body, links: w.links }
}

/// A block that prefixes the lines inside it.
#[derive(Debug)]
enum Container {
    Quote,
    /// A list, with the number of its next item when ordered.
    List(Option<u64>),
    /// A list item (or footnote): `marker` starts its first line, spaces the others.
    Item {
        marker: String,
        used: bool,
    },
}

#[derive(Debug, Default)]
struct Table {
    row: Vec<String>,
    rows: Vec<Vec<String>>,
    head_rows: usize,
}

struct Writer<'b> {
    base: Option<&'b Url>,
    out: String,
    /// Inline text of the block being read.
    buf: String,
    containers: Vec<Container>,
    /// Whether the next block is preceded by a blank line.
    blank_before: bool,
    heading: Option<HeadingLevel>,
    code: Option<String>,
    links: Vec<String>,
    /// Open links and images: (absolute target, where their text starts in `buf`).
    open_links: Vec<(String, usize)>,
    table: Option<Table>,
    /// Set when a list item ends: the next item of the list follows without a blank line.
    item_ended: bool,
    /// For each open element: whether it was dropped for being nested deeper than
    /// [`MAX_NESTING`] (its text stays; the HTML renderer reports the error).
    open: Vec<bool>,
    /// The body's raw HTML, read as one stream (made at the first fragment).
    raw_html: Option<RawHtml>,
}

impl<'b> Writer<'b> {
    fn new(base: Option<&'b Url>) -> Self {
        Writer {
            base,
            out: String::new(),
            buf: String::new(),
            containers: Vec::new(),
            blank_before: false,
            heading: None,
            code: None,
            links: Vec::new(),
            open_links: Vec::new(),
            table: None,
            item_ended: false,
            open: Vec::new(),
            raw_html: None,
        }
    }

    fn event(&mut self, event: Event) {
        match &event {
            Event::Start(_) => {
                let drop = self.open.len() >= MAX_NESTING;
                self.open.push(drop);
                if drop {
                    return;
                }
            }
            Event::End(_) if self.open.pop().unwrap_or(false) => return,
            _ => {}
        }
        if let Some(code) = &mut self.code {
            match event {
                Event::Text(t) => code.push_str(&t),
                Event::End(TagEnd::CodeBlock) => {
                    let code = self.code.take().unwrap_or_default();
                    self.code_block(&code);
                }
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            // Inside a raw `<script>` or `<style>`: code, not text.
            Event::Text(_) if self.raw_html.as_ref().is_some_and(RawHtml::skipping) => {}
            Event::Text(t) => self.push_inline(&t),
            Event::Code(t) => self.push_inline(&t),
            Event::SoftBreak => self.buf.push(' '),
            Event::HardBreak => self.buf.push('\n'),
            Event::Rule => {
                self.flush();
                self.line_block("* * *");
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                let text = self.raw_html.get_or_insert_with(RawHtml::new).text(&html);
                if html.trim_start().to_ascii_lowercase().starts_with("<br") {
                    self.buf.push('\n');
                } else {
                    self.push_inline(&text);
                }
            }
            Event::FootnoteReference(label) => self.buf.push_str(&format!("[^{label}]")),
            Event::TaskListMarker(done) => self.buf.push_str(if done { "[x] " } else { "[ ] " }),
            Event::InlineMath(t) | Event::DisplayMath(t) => self.push_inline(&t),
        }
    }

    fn push_inline(&mut self, text: &str) {
        // Table cells and headings are read inline like paragraphs.
        self.buf.push_str(&text.replace(['\n', '\r'], " "));
    }

    fn start(&mut self, tag: Tag) {
        match tag {
            Tag::Paragraph => self.flush(),
            Tag::Heading { level, .. } => {
                self.flush();
                self.heading = Some(level);
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.containers.push(Container::Quote);
            }
            Tag::CodeBlock(_) => {
                self.flush();
                self.code = Some(String::new());
            }
            Tag::HtmlBlock => self.flush(),
            Tag::List(first) => {
                self.flush();
                // A list nested in an item follows the item's text directly.
                if matches!(self.containers.last(), Some(Container::Item { .. })) {
                    self.blank_before = false;
                }
                self.containers.push(Container::List(first));
            }
            Tag::Item => {
                self.flush();
                let marker = match self.containers.last_mut() {
                    Some(Container::List(Some(n))) => {
                        let m = format!("{n}. ");
                        *n += 1;
                        m
                    }
                    _ => "* ".to_string(),
                };
                // Items of one list follow each other without blank lines.
                if matches!(self.containers.last(), Some(Container::List(_))) && self.list_has_started() {
                    self.blank_before = false;
                }
                self.containers.push(Container::Item { marker, used: false });
            }
            Tag::FootnoteDefinition(label) => {
                self.flush();
                self.containers.push(Container::Item { marker: format!("[^{label}]: "), used: false });
            }
            Tag::Table(_) => {
                self.flush();
                self.table = Some(Table::default());
            }
            Tag::TableHead | Tag::TableRow => {}
            Tag::TableCell => self.buf.clear(),
            Tag::Emphasis => self.buf.push('_'),
            Tag::Strong => self.buf.push('*'),
            Tag::Strikethrough => self.buf.push('~'),
            Tag::Link { link_type: LinkType::Email, dest_url, .. } => {
                self.open_links.push((format!("mailto:{dest_url}"), self.buf.len()));
            }
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                let target = absolutize(CowStr::from(dest_url.to_string()), self.base).to_string();
                self.open_links.push((target, self.buf.len()));
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock => self.flush(),
            TagEnd::Heading(_) => self.flush(),
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.containers.pop();
                self.blank_before = true;
            }
            TagEnd::List(_) => {
                self.flush();
                self.containers.pop();
                self.blank_before = true;
                self.item_ended = false;
            }
            TagEnd::Item => {
                self.flush();
                self.containers.pop();
                self.item_ended = true;
            }
            TagEnd::FootnoteDefinition => {
                self.flush();
                self.containers.pop();
                self.blank_before = true;
            }
            TagEnd::TableCell => {
                let cell = collapse(&std::mem::take(&mut self.buf));
                if let Some(t) = &mut self.table {
                    t.row.push(cell);
                }
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                if let Some(t) = &mut self.table {
                    let row = std::mem::take(&mut t.row);
                    t.rows.push(row);
                    if tag == TagEnd::TableHead {
                        t.head_rows = t.rows.len();
                    }
                }
            }
            TagEnd::Table => {
                if let Some(t) = self.table.take() {
                    self.table_block(&t);
                }
            }
            TagEnd::Emphasis => self.buf.push('_'),
            TagEnd::Strong => self.buf.push('*'),
            TagEnd::Strikethrough => self.buf.push('~'),
            TagEnd::Link => self.close_link(false),
            TagEnd::Image => self.close_link(true),
            _ => {}
        }
    }

    /// Whether the innermost list already holds an item (set when one ends).
    fn list_has_started(&self) -> bool {
        self.item_ended
    }

    fn close_link(&mut self, image: bool) {
        let Some((target, start)) = self.open_links.pop() else { return };
        let text = collapse(&self.buf[start.min(self.buf.len())..]);
        if image {
            self.buf.truncate(start.min(self.buf.len()));
            let alt = if text.is_empty() { "image".to_string() } else { format!("image: {text}") };
            self.buf.push_str(&format!("[{alt}]"));
        }
        // Nothing to list for a target the HTML part drops too (`javascript:`, `data:`).
        if target.is_empty() || !super::sanitize::url_allowed(&target) {
            return;
        }
        let shown = target.strip_prefix("mailto:").unwrap_or(&target);
        if !image && (text == target || text == shown) {
            // An autolink: the address is the text already.
            return;
        }
        let n = match self.links.iter().position(|l| *l == target) {
            Some(i) => i + 1,
            None => {
                self.links.push(target);
                self.links.len()
            }
        };
        self.buf.push(GLUE);
        self.buf.push_str(&format!("[{n}]"));
    }

    /// Prefixes for the first and the following lines of a block, marking items used.
    fn prefixes(&mut self) -> (String, String) {
        let mut first = String::new();
        let mut rest = String::new();
        for c in &mut self.containers {
            match c {
                Container::Quote => {
                    first.push_str("> ");
                    rest.push_str("> ");
                }
                Container::List(_) => {}
                Container::Item { marker, used } => {
                    let pad = " ".repeat(marker.width());
                    if *used {
                        first.push_str(&pad);
                    } else {
                        first.push_str(marker);
                        *used = true;
                    }
                    rest.push_str(&pad);
                }
            }
        }
        (first, rest)
    }

    fn separate(&mut self) {
        if self.blank_before && !self.out.is_empty() {
            let quotes: String =
                self.containers.iter().filter(|c| matches!(c, Container::Quote)).map(|_| ">").collect();
            self.out.push_str(&quotes);
            self.out.push('\n');
        }
        self.blank_before = true;
        self.item_ended = false;
    }

    /// Writes the inline text read so far as one wrapped block.
    fn flush(&mut self) {
        let text = std::mem::take(&mut self.buf);
        let level = self.heading.take();
        if text.trim().is_empty() {
            return;
        }
        self.separate();
        let (first, rest) = self.prefixes();
        let lines = wrap(&text, WIDTH, &first, &rest);
        match level {
            Some(level) => {
                let underline = match level {
                    HeadingLevel::H1 | HeadingLevel::H2 => '=',
                    _ => '-',
                };
                let widest = lines.iter().map(|l| l[first.len().min(l.len())..].width()).max().unwrap_or(0);
                for l in &lines {
                    self.out.push_str(l);
                    self.out.push('\n');
                }
                self.out.push_str(&rest);
                self.out.extend(std::iter::repeat_n(underline, widest));
                self.out.push('\n');
            }
            None => {
                for l in &lines {
                    self.out.push_str(l);
                    self.out.push('\n');
                }
            }
        }
    }

    fn line_block(&mut self, line: &str) {
        self.separate();
        let (first, _) = self.prefixes();
        self.out.push_str(&first);
        self.out.push_str(line);
        self.out.push('\n');
    }

    /// Code keeps its lines, indented four spaces, never wrapped.
    fn code_block(&mut self, code: &str) {
        self.separate();
        let (first, rest) = self.prefixes();
        for (i, line) in code.trim_end_matches('\n').lines().enumerate() {
            let prefix = if i == 0 { &first } else { &rest };
            let line = format!("{prefix}    {line}");
            self.out.push_str(line.trim_end());
            self.out.push('\n');
        }
    }

    /// Cells joined by ` | `, the head underlined with dashes; rows are not wrapped.
    fn table_block(&mut self, t: &Table) {
        self.separate();
        let (first, rest) = self.prefixes();
        let columns = t.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &t.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.width());
            }
        }
        for (r, row) in t.rows.iter().enumerate() {
            let cells: Vec<String> =
                row.iter().enumerate().map(|(i, c)| format!("{c}{}", " ".repeat(widths[i] - c.width()))).collect();
            let prefix = if r == 0 { &first } else { &rest };
            let line = format!("{prefix}{}", cells.join(" | ").replace(GLUE, " "));
            self.out.push_str(line.trim_end());
            self.out.push('\n');
            if r + 1 == t.head_rows {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                self.out.push_str(&rest);
                self.out.push_str(&rule.join("-+-"));
                self.out.push('\n');
            }
        }
    }
}

/// Collapses runs of whitespace to one space and trims.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The raw HTML of a body as text, read with html5ever's tokenizer (the HTML
/// standard's, as mail clients and browsers read HTML): character references decoded
/// (`&amp;`, `&#8217;`, `&nbsp;`); tags, comments, doctypes and the content of
/// `<script>` and `<style>` dropped. The fragments pulldown-cmark gives (an HTML block's
/// lines, inline tags) are one stream, as in the HTML part, so a comment, a tag or a
/// script goes on into later fragments. One pass, linear in the HTML's length.
struct RawHtml {
    tokenizer: Tokenizer<TextSink>,
    /// Input the tokenizer has not consumed yet (it waits for more after `<!-`).
    input: BufferQueue,
}

#[derive(Default)]
struct TextSink {
    text: RefCell<String>,
    /// The element whose content is skipped until its end tag (`script`, `style`).
    skipping: Cell<Option<&'static str>>,
}

impl TokenSink for TextSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::CharacterTokens(t) if self.skipping.get().is_none() => self.text.borrow_mut().push_str(&t),
            // The skipped element's end tag ends the skipping; other end tags are dropped.
            Token::TagToken(tag) if tag.kind == TagKind::EndTag => {
                self.skipping.set(self.skipping.get().filter(|name| *name != &*tag.name));
            }
            // Without a tree builder the tokenizer does not switch to the raw text
            // states by itself (as in `html::tags`).
            Token::TagToken(tag) => match tag.name.as_ref() {
                "script" => {
                    self.skipping.set(Some("script"));
                    return TokenSinkResult::RawData(RawKind::ScriptData);
                }
                "style" => {
                    self.skipping.set(Some("style"));
                    return TokenSinkResult::RawData(RawKind::Rawtext);
                }
                "xmp" | "iframe" | "noembed" | "noframes" => return TokenSinkResult::RawData(RawKind::Rawtext),
                "textarea" | "title" => return TokenSinkResult::RawData(RawKind::Rcdata),
                "plaintext" => return TokenSinkResult::Plaintext,
                _ => {}
            },
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

impl RawHtml {
    fn new() -> Self {
        RawHtml {
            tokenizer: Tokenizer::new(TextSink::default(), TokenizerOpts::default()),
            input: BufferQueue::default(),
        }
    }

    /// The text of the next fragment.
    fn text(&self, fragment: &str) -> String {
        self.input.push_back(StrTendril::from_slice(fragment));
        // Only a tree builder's sink stops the tokenizer early (for scripts to run).
        let _ = self.tokenizer.feed(&self.input);
        self.tokenizer.sink.text.take()
    }

    /// Whether the HTML so far left a `<script>` or `<style>` open: the markdown text
    /// that follows is its content.
    fn skipping(&self) -> bool {
        self.tokenizer.sink.skipping.get().is_some()
    }
}

/// Greedy word wrap to `width` columns (prefix included). Words, and so URLs, are
/// never broken: a word longer than a line gets a line of its own. `\n` in `text`
/// (a hard break) starts a new line.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = first.to_string();
    let mut line_has_word = false;
    let mut prefix_width = first.width();
    for (n, hard_line) in text.trim().split('\n').enumerate() {
        if n > 0 {
            lines.push(std::mem::replace(&mut line, rest.to_string()));
            line_has_word = false;
            prefix_width = rest.width();
        }
        let mut used = prefix_width;
        for word in hard_line.split_whitespace() {
            let w = word.width();
            if line_has_word && used + 1 + w > width {
                lines.push(std::mem::replace(&mut line, rest.to_string()));
                used = rest.width();
                line_has_word = false;
            }
            if line_has_word {
                line.push(' ');
                used += 1;
            }
            line.push_str(word);
            used += w;
            line_has_word = true;
        }
    }
    lines.push(line);
    lines.into_iter().map(|l| l.replace(GLUE, " ").trim_end().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(md: &str) -> PlainText {
        let base = Url::parse("https://lwkd.info/2020/20200512").unwrap();
        render_text(md, Some(&base))
    }

    #[test]
    fn headings_are_underlined() {
        let t = text("## Developer News\n\nHello.\n\n### A PR\n\nBody.\n");
        assert_eq!(t.body, "Developer News\n==============\n\nHello.\n\nA PR\n----\n\nBody.\n");
    }

    #[test]
    fn links_become_numbered_references_and_repeat_their_number() {
        let t = text("See [the KEP](https://k8s.io/kep) and [docs](/docs) and [the KEP again](https://k8s.io/kep).\n");
        assert_eq!(t.body, "See the KEP [1] and docs [2] and the KEP again [1].\n");
        assert_eq!(t.links, ["https://k8s.io/kep", "https://lwkd.info/docs"]);
        assert_eq!(
            t.with_references(),
            "See the KEP [1] and docs [2] and the KEP again [1].\n\nLinks:\n[1] https://k8s.io/kep\n[2] https://lwkd.info/docs\n"
        );
    }

    #[test]
    fn autolinks_are_not_repeated_as_references() {
        let t = text("Mail <lwkd@example.org> or see <https://lwkd.info>.\n");
        assert_eq!(t.body, "Mail lwkd@example.org or see https://lwkd.info.\n");
        assert!(t.links.is_empty());
    }

    #[test]
    fn prose_wraps_at_72_without_breaking_urls() {
        let long_url = format!("https://example.org/{}", "x".repeat(90));
        let md = format!("{} {long_url} end of the sentence here.\n", "word ".repeat(20));
        let t = text(&md);
        for line in t.body.lines() {
            assert!(line.chars().count() <= WIDTH || line == long_url, "{line:?}");
        }
        assert!(t.body.lines().any(|l| l == long_url), "{}", t.body);
        assert_eq!(collapse(&t.body), collapse(&md));
    }

    #[test]
    fn reference_marker_never_starts_a_line() {
        let md = format!("{} [link](https://a.org)\n", "abcd ".repeat(13));
        let t = text(&md);
        assert!(t.body.lines().all(|l| !l.starts_with('[')), "{}", t.body);
        assert!(t.body.contains("link [1]"), "{}", t.body);
    }

    #[test]
    fn lists_keep_markers_and_hang_their_continuation_lines() {
        let md =
            format!("Intro.\n\n* first {}\n* second\n  * nested\n\n1. one\n2. two\n\nAfter.\n", "long ".repeat(16));
        let t = text(&md);
        let expected = format!(
            "Intro.\n\n* first {}\n  {}\n* second\n  * nested\n\n1. one\n2. two\n\nAfter.\n",
            "long ".repeat(13).trim_end(),
            "long ".repeat(3).trim_end()
        );
        assert_eq!(t.body, expected);
    }

    #[test]
    fn quotes_code_emphasis_and_rules() {
        let t = text("> quoted *text*\n\n```\nlet x = 1;\n  indented\n```\n\n**Bold** and `code`\n\n---\n");
        assert_eq!(t.body, "> quoted _text_\n\n    let x = 1;\n      indented\n\n*Bold* and code\n\n* * *\n");
    }

    #[test]
    fn headings_with_links_wrap_and_underline_the_widest_line() {
        let t = text(
            "### [#90674: Switch core master base images (kube-apiserver, kube-scheduler) from debian to distroless](https://github.com/kubernetes/kubernetes/pull/90674)\n",
        );
        let lines: Vec<&str> = t.body.lines().collect();
        assert_eq!(lines.len(), 3, "{}", t.body);
        assert!(lines[1].ends_with("distroless [1]"), "{}", t.body);
        assert_eq!(lines[2], "-".repeat(lines[0].chars().count().max(lines[1].chars().count())));
    }

    #[test]
    fn scripts_and_styles_are_not_text() {
        let t = text("<script>alert(1)</script>\n\nA <script>x()</script>b <style>p{}</style>c <b>d</b>\n");
        assert_eq!(t.body, "A b c d\n");
    }

    #[test]
    fn entities_in_raw_html_are_decoded() {
        let t = text(
            "<p>Tom &amp; Jerry &lt;3 it&#8217;s &quot;on&quot;&#x21; &copy 2020&nbsp;LWKD &bogus; AT&T</p>\n\n<div>\n&lt;b&gt; is &#60;b&#62;\n</div>\n",
        );
        assert_eq!(t.body, "Tom & Jerry <3 it\u{2019}s \"on\"! \u{a9} 2020 LWKD &bogus; AT&T\n\n<b> is <b>\n");
    }

    #[test]
    fn html_comments_are_not_text() {
        let t = text(concat!(
            "Before.\n\n",
            "<!-- a note\nfor the editors -->\n\n",
            "<div>\nKeep <!-- a > b --> this\n<!-- spans\nlines --> and this\n</div>\n\n",
            "A <!-- inline > comment --> b <!--\nover lines\n--> c\n"
        ));
        assert_eq!(t.body, "Before.\n\nKeep this and this\n\nA b c\n");
    }

    #[test]
    fn scripts_spanning_fragments_are_not_text() {
        let t = text(
            "<div>\n<script>\nvar a = '</div>';\n\nvar b;\n</script></div>\n\n<style>\np { x: '<b>' }\n</style>\n\nAfter.\n",
        );
        assert_eq!(t.body, "After.\n");
    }

    #[test]
    fn hostile_raw_html_ends_in_linear_time() {
        // A quarter of a megabyte each: anything quadratic in the length would take minutes.
        let n = 25_000;
        let t = text(&format!("<div>\n{}\n</div>\n", "&amp;&#x41;&bogus".repeat(n)));
        assert_eq!(t.body.trim_end(), "&A&bogus".repeat(n));
        for hostile in [
            format!("<div>\n{}\n", "<!--".repeat(n)),
            format!("<div>\n{}\n", "<script>".repeat(n)),
            format!("<div>\n{}\n", "<a title='".repeat(n)),
            format!("<div>\n{}\n", "&#99999999999999;".repeat(n)),
            "<b>x</b> ".repeat(n),
        ] {
            let t = text(&hostile);
            assert!(!t.body.contains('<'), "{:.80}", t.body);
        }
    }

    #[test]
    fn script_and_data_targets_are_not_listed() {
        let t = text("[a](javascript:alert(1)) ![b](data:image/png;base64,AA) [c](https://x.org)\n");
        assert_eq!(t.body, "a [image: b] c [1]\n");
        assert_eq!(t.links, ["https://x.org"]);
    }

    #[test]
    fn the_wrappers_glue_in_the_text_does_not_join_words() {
        let md = format!("Two words: {}\u{E000}{}\n", "x".repeat(50), "y".repeat(50));
        let t = text(&md);
        // A line past the width is one word, never two joined by the glue's space.
        assert!(t.body.lines().all(|l| l.chars().count() <= WIDTH || !l.contains(' ')), "{}", t.body);
        assert!(t.body.contains('\u{FFFD}'), "{}", t.body);
    }

    #[test]
    fn tables_are_aligned() {
        let t = text("| a | bb |\n|---|---|\n| ccc | d |\n");
        assert_eq!(t.body, "a   | bb\n----+---\nccc | d\n");
    }
}
