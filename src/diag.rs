//! Diagnostics: what is wrong with a post or the config, where, and how to fix it.
//!
//! Every stage collects these instead of stopping at the first problem, so an editor
//! sees every broken post in one run. They print like compiler messages: a
//! `path:line:col: error: message` line, which editors and `grep` both understand, then
//! the source line with carets under the problem and `= help:`, drawn by
//! `annotate-snippets` (what rustc and cargo use), so the carets stand under the right
//! characters after tabs and wide (CJK, emoji) characters. They serialise to JSON for
//! scripts.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How bad a problem is: errors stop a build, warnings do not (unless `--strict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem, tied to a place in a file when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A short stable name for scripts (`bad-date`, `schemeless-link`, ...).
    pub code: &'static str,
    pub file: Option<PathBuf>,
    /// 1-based; 0 when the problem concerns the whole file.
    pub line: usize,
    /// 1-based column in characters; 0 when unknown.
    pub column: usize,
    /// Length of the offending text in characters, for the underline.
    #[serde(skip)]
    pub span_len: usize,
    pub message: String,
    /// What to change.
    pub help: Option<String>,
    /// The source line, for context in human output.
    #[serde(skip)]
    pub source_line: Option<String>,
    /// Other places that take part in the problem (the post that first used a
    /// duplicated slug), shown as notes after it. Human output only: the message names
    /// them too, and the JSON keeps its keys.
    #[serde(skip)]
    pub also: Vec<Location>,
}

/// A second place in a file that a [`Diagnostic`] points at, with what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based; 0 for the whole file.
    pub line: usize,
    /// 1-based column in characters; 0 when unknown.
    pub column: usize,
    /// Length of the text to mark, in characters.
    pub span_len: usize,
    pub source_line: Option<String>,
    /// What is there (`the slug is first used here`).
    pub label: String,
}

/// `path:line:col` as the first line of a diagnostic shows it (`line` and `column` 0
/// when unknown), the path relative to `cwd` when below it.
fn place(file: &Path, line: usize, column: usize, cwd: Option<&Path>) -> String {
    let mut place = display_path(file, cwd);
    if line > 0 {
        let _ = write!(place, ":{line}");
        if column > 0 {
            let _ = write!(place, ":{column}");
        }
    }
    place
}

impl Location {
    pub fn new(file: impl Into<PathBuf>, label: impl Into<String>) -> Self {
        Location { file: file.into(), line: 0, column: 0, span_len: 0, source_line: None, label: label.into() }
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    /// Points at `len` characters of `source_line`, starting at `column`.
    pub fn with_source(mut self, source_line: impl Into<String>, len: usize) -> Self {
        self.source_line = Some(source_line.into());
        self.span_len = len;
        self
    }

    /// Where the place is, as on a diagnostic's first line (`posts/a.md:3:7`).
    fn place(&self, cwd: Option<&Path>) -> String {
        place(&self.file, self.line, self.column, cwd)
    }

    /// The line to show, when there is one short enough to show whole: annotate-snippets
    /// then computes the same `path:line:col` as [`Location::place`] (a window cut from
    /// a long line would shift the column it computes).
    fn shown_line(&self) -> Option<&str> {
        let src = first_line(self.source_line.as_deref()?);
        (self.line > 0 && src.chars().count() <= SHOWN_CHARS).then_some(src)
    }

    /// The place as a `note:` of its own with its line, or `None` when it has no line to show.
    fn group<'a>(&'a self, cwd: Option<&Path>) -> Option<Group<'a>> {
        let src = self.shown_line()?;
        Some(
            Group::with_title(Level::NOTE.secondary_title(self.label.as_str())).element(
                snippet(src.to_string(), self.line, self.column, self.span_len, AnnotationKind::Context)
                    .path(display_path(&self.file, cwd)),
            ),
        )
    }
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }

    fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            code,
            file: None,
            line: 0,
            column: 0,
            span_len: 0,
            message: message.into(),
            help: None,
            source_line: None,
            also: Vec::new(),
        }
    }

    pub fn in_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    /// Points at `len` characters of `source_line`, starting at `column`.
    pub fn with_source(mut self, source_line: impl Into<String>, len: usize) -> Self {
        self.source_line = Some(source_line.into());
        self.span_len = len;
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds another place that takes part in the problem.
    pub fn also(mut self, location: Location) -> Self {
        self.also.push(location);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic for a person, with paths shown relative to `cwd` when below it.
    ///
    /// Tabs show as four spaces and each character takes its Unicode width, as
    /// annotate-snippets (and rustc) count them; an emoji sequence (a skin tone, a ZWJ
    /// family) counts as the sum of its parts, which a terminal may draw narrower.
    pub fn render(&self, cwd: Option<&Path>) -> String {
        let mut out = String::new();
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if let Some(file) = &self.file {
            out.push_str(&place(file, self.line, self.column, cwd));
            out.push_str(": ");
        }
        let _ = writeln!(out, "{kind}: {}", self.message);
        // The location is on the first line already: the snippet carries no path.
        let mut main = Group::with_level(match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        });
        if let Some(src) = &self.source_line {
            let (shown, column) = clip(first_line(src), self.column);
            main = main.element(snippet(shown, self.line, column, self.span_len, AnnotationKind::Primary));
        }
        if let Some(help) = &self.help {
            main = main.element(Level::HELP.message(help.as_str()));
        }
        // Other places: with their line as a note of their own, else named in a `= note:`.
        for l in self.also.iter().filter(|l| l.shown_line().is_none()) {
            main = main.element(Level::NOTE.message(format!("{}: {}", l.label, l.place(cwd))));
        }
        let mut groups = Vec::new();
        if !main.is_empty() {
            groups.push(main);
        }
        groups.extend(self.also.iter().filter_map(|l| l.group(cwd)));
        if !groups.is_empty() {
            out.push_str(&renderer().render(&groups));
            out.push('\n');
        }
        out
    }
}

/// Plain text (no colours: the output goes to logs and CI as often as to a terminal),
/// and wide enough that annotate-snippets never trims a line [`clip`] already cut.
fn renderer() -> Renderer {
    Renderer::plain().term_width(4 * SHOWN_CHARS + 100)
}

/// The first line of `text` without its line ending: a snippet shows one line.
fn first_line(text: &str) -> &str {
    let line = text.split('\n').next().unwrap_or_default();
    line.trim_end()
}

/// `line` as line `number`, with `len` characters from 1-based character `column`
/// marked (nothing marked when the column is unknown). Columns past the end mark the
/// end of the line; the span always lies on character boundaries.
fn snippet<'a>(
    line: String,
    number: usize,
    column: usize,
    len: usize,
    kind: AnnotationKind,
) -> Snippet<'a, annotate_snippets::Annotation<'a>> {
    let span = (column > 0).then(|| {
        let mut chars = line.char_indices().map(|(i, _)| i).chain([line.len()]).skip(column - 1);
        let start = chars.next().unwrap_or(line.len());
        let mut rest = line[start..].char_indices().map(|(i, c)| start + i + c.len_utf8());
        start..rest.nth(len.clamp(1, SHOWN_CHARS) - 1).unwrap_or(line.len())
    });
    let snippet = Snippet::source(line).line_start(number.max(1)).fold(false);
    match span {
        Some(span) => snippet.annotation(kind.span(span)),
        None => snippet,
    }
}

/// Source lines longer than this are shown as a window around the column.
const SHOWN_CHARS: usize = 160;

/// `line` cut to [`SHOWN_CHARS`] characters around `column` (with `…` where cut), and
/// the column within what is shown.
fn clip(line: &str, column: usize) -> (String, usize) {
    let len = line.chars().count();
    if len <= SHOWN_CHARS {
        return (line.to_string(), column);
    }
    let start = column.saturating_sub(SHOWN_CHARS / 3).min(len - SHOWN_CHARS);
    let mut shown: String = line.chars().skip(start).take(SHOWN_CHARS).collect();
    let mut column = column.saturating_sub(start);
    if start > 0 {
        shown.insert(0, '…');
        column += usize::from(column > 0);
    }
    if start + SHOWN_CHARS < len {
        shown.push('…');
    }
    (shown, column)
}

/// Shows `path` relative to `cwd` when it lies below it, as compilers do.
pub fn display_path(path: &Path, cwd: Option<&Path>) -> String {
    cwd.and_then(|cwd| path.strip_prefix(cwd).ok()).unwrap_or(path).display().to_string()
}

/// The problems found by one run, in a stable order (file, line, column).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    pub fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        self.diagnostics.extend(ds);
    }

    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Orders by file, then position, so output is the same on every run whatever
    /// order the threads finished in.
    pub fn sort(&mut self) {
        self.diagnostics.sort_by(|a, b| {
            (&a.file, a.line, a.column, b.severity, a.code, &a.message)
                .cmp(&(&b.file, b.line, b.column, a.severity, b.code, &b.message))
        });
    }

    /// Human output: every diagnostic, then a one-line tally.
    pub fn render(&self, cwd: Option<&Path>) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&d.render(cwd));
            out.push('\n');
        }
        out
    }

    /// `"2 errors, 1 warning"`, or `None` when clean.
    pub fn tally(&self) -> Option<String> {
        let (e, w) = (self.errors(), self.warnings());
        if e == 0 && w == 0 {
            return None;
        }
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        Some(match (e, w) {
            (0, w) => plural(w, "warning"),
            (e, 0) => plural(e, "error"),
            (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
        })
    }
}

/// Line and 1-based character column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The full line of `text` that holds byte `offset`, without its line ending.
pub fn line_at(text: &str, offset: usize) -> &str {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    text[start..end].trim_end_matches('\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_compiler() {
        let d = Diagnostic::error("bad-date", "`2022-02-29` is not a day")
            .in_file("/site/posts/a.md")
            .at(4, 7)
            .with_source("date: 2022-02-29", 10)
            .help("write `2022-03-01`");
        let text = d.render(Some(Path::new("/site")));
        assert_eq!(
            text,
            "posts/a.md:4:7: error: `2022-02-29` is not a day\n  |\n4 | date: 2022-02-29\n  |       ^^^^^^^^^^\n  |\n  = help: write `2022-03-01`\n"
        );
    }

    #[test]
    fn long_source_lines_are_shown_around_the_column() {
        let line = format!("{}^{}", ">".repeat(1000), "x".repeat(1000));
        let d = Diagnostic::error("too-deep", "deep").in_file("a.md").at(8, 1001).with_source(line, 1);
        let text = d.render(None);
        let lines: Vec<&str> = text.lines().collect();
        let (shown, marks) = (lines[2].strip_prefix("8 | ").unwrap(), lines[3].strip_prefix("  | ").unwrap());
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert_eq!(shown.chars().count(), SHOWN_CHARS + 2);
        // The mark is still under the `^` of the source.
        assert_eq!(shown.chars().nth(marks.chars().count() - 1), Some('^'), "{text}");
        assert_eq!(clip("short", 3), ("short".to_string(), 3));
    }

    /// The source line and the caret line under it, without their gutters.
    fn shown_and_marks(text: &str) -> (&str, &str) {
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| l.contains('^')).unwrap_or_else(|| panic!("no caret in:\n{text}"));
        let gutter = lines[at].find('|').unwrap() + 2;
        (&lines[at - 1][gutter..], &lines[at][gutter..])
    }

    /// Renders an error at the first `bad` of `line` and checks that the carets stand
    /// under it on screen: the shown line has no tab (a terminal would expand it to
    /// wherever its tab stops are) and the caret's indent is the display width of what
    /// precedes `bad`.
    fn assert_caret_under_bad(line: &str) {
        let byte = line.find("bad").unwrap();
        let column = line[..byte].chars().count() + 1;
        let d = Diagnostic::error("x", "m").in_file("a.md").at(3, column).with_source(line, 3);
        let text = d.render(None);
        let (shown, marks) = shown_and_marks(&text);
        assert!(!shown.contains('\t'), "{text}");
        let at = shown.find("bad").unwrap_or_else(|| panic!("{text}"));
        let lead = marks.len() - marks.trim_start().len();
        assert_eq!(lead, unicode_width::UnicodeWidthStr::width(&shown[..at]), "{line:?}:\n{text}");
        assert_eq!(marks.trim(), "^^^", "{text}");
        assert!(text.starts_with(&format!("a.md:3:{column}: error: m\n")), "{text}");
    }

    #[test]
    fn the_caret_stands_under_the_column_after_tabs() {
        assert_caret_under_bad("\tkey:\tbad");
        assert_caret_under_bad("\t\t  \tbad");
    }

    #[test]
    fn the_caret_stands_under_the_column_after_wide_characters() {
        assert_caret_under_bad("名前: 日本語 bad");
        assert_caret_under_bad("emoji 😀🎉 then bad");
        assert_caret_under_bad("ｆｕｌｌｗｉｄｔｈ\tand 한국어 bad");
        // Long lines keep being windowed, and the caret still lines up.
        assert_caret_under_bad(&format!("{}\t名 bad{}", "字".repeat(400), "x".repeat(500)));
    }

    #[test]
    fn any_column_and_length_render_without_panicking_and_stay_short() {
        let huge = format!("{}é\t{}", "名".repeat(200_000), "x".repeat(300_000));
        let lines = ["", "a", "e\u{301}\u{301}x", "x\u{1b}[31m\u{202e}y", "two\nlines\r\n", "\t\t", &huge];
        for line in lines {
            let n = line.chars().count();
            for column in [0, 1, 2, 3, n, n + 1, n + 2, 400_001, usize::MAX] {
                for len in [0, 1, 2, n, usize::MAX] {
                    let d = Diagnostic::warning("w", "m").at(9, column).with_source(line, len).help("h");
                    let text = d.render(None);
                    for l in text.lines() {
                        assert!(
                            unicode_width::UnicodeWidthStr::width(l) <= 2 * SHOWN_CHARS + 20,
                            "{column} {len}: {l}"
                        );
                    }
                    assert!(text.contains("\n9 |") && text.ends_with("= help: h\n"), "{text}");
                }
            }
        }
    }

    #[test]
    fn a_diagnostic_without_source_has_only_its_help() {
        let d = Diagnostic::error("x", "locked").in_file("/s/db").help("wait");
        assert_eq!(d.render(Some(Path::new("/s"))), "db: error: locked\n = help: wait\n");
        assert_eq!(Diagnostic::warning("x", "m").render(None), "warning: m\n");
    }

    #[test]
    fn other_places_are_notes_with_their_own_location() {
        let d = Diagnostic::error("duplicate", "slug `same` is also used by `posts/a.md`")
            .in_file("/s/posts/b.md")
            .at(4, 7)
            .with_source("slug: same", 4)
            .help("give each post its own `slug:`")
            .also(Location::new("/s/posts/a.md", "the slug is first used here").at(3, 7).with_source("slug: same", 4))
            .also(Location::new("/s/posts/c.md", "and in this whole file"));
        let text = d.render(Some(Path::new("/s")));
        assert_eq!(
            text,
            "posts/b.md:4:7: error: slug `same` is also used by `posts/a.md`
  |
4 | slug: same
  |       ^^^^
  |
  = help: give each post its own `slug:`
  = note: and in this whole file: posts/c.md
note: the slug is first used here
 --> posts/a.md:3:7
  |
3 | slug: same
  |       ----
"
        );
        // A long line elsewhere is named, not shown (the window would shift its column).
        let long = format!("{}slug: same", " ".repeat(500));
        let d = Diagnostic::error("d", "m").also(Location::new("a.md", "here").at(2, 507).with_source(long, 4));
        assert_eq!(d.render(None), "error: m\n = note: here: a.md:2:507\n");
        // JSON keeps its keys.
        let json = serde_json::to_string(&Diagnostic::error("d", "m").in_file("b.md").also(Location::new("a.md", "x")));
        assert_eq!(
            json.unwrap(),
            r#"{"severity":"error","code":"d","file":"b.md","line":0,"column":0,"message":"m","help":null}"#
        );
    }

    #[test]
    fn line_and_column_count_characters() {
        let text = "ab\ncé\nxyz";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        // 'é' is two bytes: the byte after it is the third character column.
        assert_eq!(line_col(text, 6), (2, 3));
        assert_eq!(line_at(text, 4), "cé");
    }

    #[test]
    fn tally_counts_each_kind() {
        let mut r = Report::default();
        assert_eq!(r.tally(), None);
        r.push(Diagnostic::error("x", "a"));
        r.push(Diagnostic::warning("y", "b"));
        r.push(Diagnostic::warning("y", "c"));
        assert_eq!(r.tally().unwrap(), "1 error, 2 warnings");
    }
}
