//! Diagnostics: what is wrong with a post or the config, where, and how to fix it.
//!
//! Every stage collects these instead of stopping at the first problem, so an editor
//! sees every broken post in one run. They print like compiler messages
//! (`path:line:col: error: message`, the source line, then `help:`), which editors and
//! `grep` both understand, and serialise to JSON for scripts.

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

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic for a person, with paths shown relative to `cwd` when below it.
    pub fn render(&self, cwd: Option<&Path>) -> String {
        let mut out = String::new();
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if let Some(file) = &self.file {
            let shown = display_path(file, cwd);
            out.push_str(&shown);
            if self.line > 0 {
                let _ = write!(out, ":{}", self.line);
                if self.column > 0 {
                    let _ = write!(out, ":{}", self.column);
                }
            }
            out.push_str(": ");
        }
        let _ = writeln!(out, "{kind}: {}", self.message);
        if let Some(src) = &self.source_line {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            let (shown, column) = clip(src.trim_end(), self.column);
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{number} | {shown}");
            if column > 0 {
                let marks = "^".repeat(self.span_len.clamp(1, SHOWN_CHARS));
                let lead = " ".repeat(column - 1);
                let _ = writeln!(out, "{pad} | {lead}{marks}");
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out
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
            "posts/a.md:4:7: error: `2022-02-29` is not a day\n  |\n4 | date: 2022-02-29\n  |       ^^^^^^^^^^\n  = help: write `2022-03-01`\n"
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
