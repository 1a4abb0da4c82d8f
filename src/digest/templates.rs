//! The templates newsdesk renders with minijinja: the digest's (`subject.txt`,
//! `digest.txt`, `digest.html`), the confirmation mail's, and the web pages of `serve`.
//! Editors change them freely; a mistake is reported with the template file, line and
//! minijinja's message, like any other diagnostic.
//!
//! The defaults ship in `email-templates/` and `web-templates/` and are also built into
//! the binary, so a site without those folders still works. A folder may hold only the
//! files an editor changed: the others fall back to the defaults.

use crate::diag::{Diagnostic, line_at};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};
use std::path::{Path, PathBuf};
use unicode_width::UnicodeWidthStr;

/// A set of templates that are loaded together: their names and built-in defaults,
/// the config key that names their folder, and what they may use (for error hints).
pub struct TemplateSet {
    pub files: &'static [(&'static str, &'static str)],
    /// `[email] templates`
    pub key: &'static str,
    pub available: &'static str,
}

/// The digest's templates, in the order they are rendered.
pub const DIGEST: TemplateSet = TemplateSet {
    files: &[
        ("subject.txt", include_str!("../../email-templates/subject.txt")),
        ("digest.html", include_str!("../../email-templates/digest.html")),
        ("digest.txt", include_str!("../../email-templates/digest.txt")),
    ],
    key: "`templates` under `[email]`",
    available: "site, post, html, text, toc, subject, sender, list, feed_url, unsubscribe_url, unsubscribe_page, unsubscribe_mailto, unsubscribe_address, subscriber",
};

/// The confirmation mail of a subscribe request (double opt-in), beside the digest's.
pub const CONFIRMATION: TemplateSet = TemplateSet {
    files: &[
        ("confirm-subject.txt", include_str!("../../email-templates/confirm-subject.txt")),
        ("confirm.html", include_str!("../../email-templates/confirm.html")),
        ("confirm.txt", include_str!("../../email-templates/confirm.txt")),
    ],
    key: "`templates` under `[email]`",
    available: "site, email, name, confirm_url, confirm_hours, confirm_period, subscribe_url",
};

/// The pages of `newsdesk serve`.
pub const WEB: TemplateSet = TemplateSet {
    files: &[
        ("layout.html", include_str!("../../web-templates/layout.html")),
        ("subscribe.html", include_str!("../../web-templates/subscribe.html")),
        ("check-your-inbox.html", include_str!("../../web-templates/check-your-inbox.html")),
        ("confirm.html", include_str!("../../web-templates/confirm.html")),
        ("confirmed.html", include_str!("../../web-templates/confirmed.html")),
        ("unsubscribe.html", include_str!("../../web-templates/unsubscribe.html")),
        ("unsubscribed.html", include_str!("../../web-templates/unsubscribed.html")),
        ("error.html", include_str!("../../web-templates/error.html")),
    ],
    key: "`templates` under `[web]`",
    available: "site (title, base_url, language), and per page: email, name, error, confirm_hours, confirm_period, resubscribed, heading, status, message",
};

/// One template's text and where it came from.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    pub name: &'static str,
    /// `None` for the built-in default.
    pub path: Option<PathBuf>,
    pub source: String,
}

impl TemplateFile {
    /// The path for messages, or `built-in NAME`.
    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => format!("built-in {}", self.name),
        }
    }
}

/// The loaded templates and the environment that renders them.
pub struct Templates {
    env: Environment<'static>,
    pub files: Vec<TemplateFile>,
    available: &'static str,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("files", &self.files).finish()
    }
}

/// Reads the digest's templates from `dir` (see [`load_set`]).
pub fn load(dir: &Path, allow_built_in: bool, config_path: &Path) -> Result<Templates, Vec<Diagnostic>> {
    load_set(&DIGEST, dir, allow_built_in, config_path)
}

/// Reads `set` from `dir`. A file missing from the folder falls back to the built-in
/// default; when `dir` itself is missing, that is an error unless `allow_built_in`
/// (the folder was not named in the config).
pub fn load_set(
    set: &TemplateSet,
    dir: &Path,
    allow_built_in: bool,
    config_path: &Path,
) -> Result<Templates, Vec<Diagnostic>> {
    if !dir.is_dir() && !allow_built_in {
        return Err(vec![
            Diagnostic::error("no-templates", format!("the templates folder `{}` does not exist", dir.display()))
                .in_file(config_path)
                .help(format!("fix {}, or remove it to use the built-in templates", set.key)),
        ]);
    }
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for &(name, default) in set.files {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(source) => files.push(TemplateFile { name, path: Some(path), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                files.push(TemplateFile { name, path: None, source: default.to_string() })
            }
            Err(e) => problems.push(
                Diagnostic::error("unreadable-template", format!("cannot read the template: {e}"))
                    .in_file(&path)
                    .help("check the file's permissions and that it is UTF-8 text"),
            ),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut env = environment();
    for f in &files {
        if let Err(e) = env.add_template_owned(f.name, f.source.clone()) {
            problems.push(diagnostic(&e, &files, set.available));
        }
    }
    if problems.is_empty() { Ok(Templates { env, files, available: set.available }) } else { Err(problems) }
}

impl Templates {
    /// Renders one template; an error names the template file and line.
    pub fn render(&self, name: &str, context: &Value) -> Result<String, Diagnostic> {
        let t = self.env.get_template(name).map_err(|e| diagnostic(&e, &self.files, self.available))?;
        t.render(context).map_err(|e| diagnostic(&e, &self.files, self.available))
    }

    /// The file a template was read from.
    pub fn file(&self, name: &str) -> Option<&TemplateFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Printing an unknown variable (a typo such as `post.titel`) is an error, while
    // `{% if unsubscribe_url %}` may test for a key that is not set.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.add_filter("date", date);
    env.add_filter("underline", underline);
    env.add_filter("wrap", wrap);
    env
}

/// `{{ post.date | date("%B %-d, %Y") }}`: formats an RFC 3339 date with strftime codes.
fn date(value: String, format: Option<String>) -> Result<String, Error> {
    let format = format.unwrap_or_else(|| "%Y-%m-%d".to_string());
    let parsed = chrono::DateTime::parse_from_rfc3339(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("`{value}` is not an RFC 3339 date: {e}")))?;
    let items: Vec<_> = chrono::format::StrftimeItems::new(&format)
        .parse()
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("`{format}` is not a valid strftime format")))?;
    Ok(parsed.format_with_items(items.into_iter()).to_string())
}

/// `{{ title | underline("=") }}`: a line of the character as wide as the text.
fn underline(value: String, ch: Option<String>) -> String {
    let ch = ch.unwrap_or_else(|| "=".to_string());
    let widest = value.lines().map(UnicodeWidthStr::width).max().unwrap_or(0);
    ch.repeat(widest)
}

/// `{% filter wrap %}...{% endfilter %}`: rewraps each paragraph (blank-line separated)
/// at `width` columns (72 by default) without breaking words or URLs.
fn wrap(value: String, width: Option<usize>) -> String {
    let width = width.unwrap_or(crate::render::text::WIDTH);
    value
        .split("\n\n")
        .map(|para| crate::render::text::wrap(para, width, "", "").join("\n"))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A minijinja error as a diagnostic pointing at the template's file and line.
fn diagnostic(e: &Error, files: &[TemplateFile], available: &str) -> Diagnostic {
    let name = e.name().unwrap_or("template");
    let file = files.iter().find(|f| f.name == name);
    let message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut d = Diagnostic::error("template-error", format!("in template `{name}`: {message}")).help(format!(
        "fix the template (syntax: https://docs.rs/minijinja/latest/minijinja/syntax/); available: {available}"
    ));
    match file {
        Some(TemplateFile { path: Some(path), source, .. }) => {
            d = d.in_file(path);
            if let Some(line) = e.line() {
                let offset = source.split_inclusive('\n').take(line - 1).map(str::len).sum();
                d = d.at(line, 0).with_source(line_at(source, offset), 0);
            }
        }
        Some(TemplateFile { path: None, .. }) => {
            d.message = format!("in the built-in template `{name}` (line {}): {message}", e.line().unwrap_or(0));
        }
        None => {}
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_format_dates_and_underline() {
        assert_eq!(date("2020-05-12T20:00:00+00:00".into(), Some("%B %-d, %Y".into())).unwrap(), "May 12, 2020");
        assert!(date("yesterday".into(), None).is_err());
        assert!(date("2020-05-12T20:00:00+00:00".into(), Some("%Q".into())).is_err());
        assert_eq!(underline("Week 1".into(), Some("-".into())), "------");
        let long = format!("{} https://example.org/{}", "word ".repeat(20), "x".repeat(80));
        let wrapped = wrap(long.clone(), None);
        assert!(wrapped.lines().all(|l| l.chars().count() <= 72 || l.starts_with("https://")), "{wrapped}");
        assert_eq!(wrapped.split_whitespace().collect::<Vec<_>>(), long.split_whitespace().collect::<Vec<_>>());
    }

    #[test]
    fn a_template_error_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("subject.txt"), "{{ post.title }}\n").unwrap();
        std::fs::write(dir.path().join("digest.txt"), "line one\n{% if %}\n").unwrap();
        let errs = load(dir.path(), true, Path::new("config.toml")).unwrap_err();
        assert_eq!(errs.len(), 1);
        let d = &errs[0];
        assert_eq!(d.file.as_deref(), Some(dir.path().join("digest.txt").as_path()));
        assert_eq!(d.line, 2);
        assert!(d.message.contains("syntax error"), "{}", d.message);
        assert_eq!(d.source_line.as_deref(), Some("{% if %}"));
    }

    #[test]
    fn printing_an_unknown_variable_is_an_error_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("subject.txt"), "{# comment #}\n{{ post.titel }}\n").unwrap();
        let t = load(dir.path(), true, Path::new("config.toml")).unwrap();
        let ctx = minijinja::context! { post => minijinja::context! { title => "T" } };
        let d = t.render("subject.txt", &ctx).unwrap_err();
        assert_eq!(d.line, 2);
        assert!(d.message.contains("undefined"), "{}", d.message);
        // The other two fell back to the built-in defaults.
        assert!(t.file("digest.html").unwrap().path.is_none());
    }

    #[test]
    fn a_missing_folder_named_in_the_config_is_an_error() {
        let errs = load(Path::new("/nonexistent/templates"), false, Path::new("config.toml")).unwrap_err();
        assert_eq!(errs[0].code, "no-templates");
    }
}
