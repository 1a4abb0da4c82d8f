//! `config.toml`: parsed strictly (an unknown key is an error that suggests the
//! closest known one, as cargo does for manifests), then resolved into the model's
//! [`Site`] and typed settings with paths made relative to the config file.

use crate::diag::{Diagnostic, line_at, line_col};
use crate::model::{Person, Site};
use crate::permalink;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The raw file, exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    site: RawSite,
    #[serde(default)]
    feeds: FeedsConfig,
    email: Option<EmailConfig>,
    #[serde(default)]
    smtp: SmtpConfig,
    subscribers: Option<SubscribersConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    title: String,
    #[serde(default)]
    description: String,
    base_url: String,
    #[serde(default = "default_language")]
    language: String,
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default = "default_posts")]
    posts: PathBuf,
    #[serde(default = "default_permalink")]
    permalink: String,
    author: Option<RawPerson>,
}

fn default_language() -> String {
    "en".into()
}
fn default_timezone() -> String {
    "UTC".into()
}
fn default_posts() -> PathBuf {
    "posts".into()
}
fn default_permalink() -> String {
    "date".into()
}

/// `author = "Name <email>"` or `author = { name = "...", email = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawPerson {
    Text(String),
    Table { name: String, email: Option<String>, url: Option<String> },
}

impl RawPerson {
    fn into_person(self) -> Person {
        match self {
            RawPerson::Text(s) => Person::parse(&s),
            RawPerson::Table { name, email, url } => Person { name, email, url },
        }
    }
}

/// A feed file name, or `false` to skip that format (`true` keeps the default name).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum FeedName {
    Name(String),
    Enabled(bool),
}

/// `[feeds]`: which files to write and how many items they hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedsConfig {
    pub limit: usize,
    rss: FeedName,
    atom: FeedName,
    json: FeedName,
    /// `permalink` (the item URL), `jekyll` (jekyll-feed's rule) or a pattern.
    pub id: String,
    pub hub: Option<String>,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        FeedsConfig {
            limit: 20,
            rss: FeedName::Enabled(true),
            atom: FeedName::Enabled(true),
            json: FeedName::Enabled(true),
            id: "permalink".into(),
            hub: None,
        }
    }
}

impl FeedsConfig {
    fn name(n: &FeedName, default: &str) -> Option<String> {
        match n {
            FeedName::Name(s) => Some(s.clone()),
            FeedName::Enabled(true) => Some(default.to_string()),
            FeedName::Enabled(false) => None,
        }
    }
    /// File name of the RSS 2.0 feed, `None` when disabled.
    pub fn rss(&self) -> Option<String> {
        Self::name(&self.rss, "rss.xml")
    }
    /// File name of the Atom 1.0 feed, `None` when disabled.
    pub fn atom(&self) -> Option<String> {
        Self::name(&self.atom, "atom.xml")
    }
    /// File name of the JSON Feed 1.1 feed, `None` when disabled.
    pub fn json(&self) -> Option<String> {
        Self::name(&self.json, "feed.json")
    }
}

/// `[email]`: the digest's addresses, templates and transport.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub from: String,
    pub to: Option<String>,
    pub reply_to: Option<String>,
    #[serde(default = "default_templates")]
    pub templates: PathBuf,
    #[serde(default = "default_transport")]
    pub transport: String,
    /// Folder for the `file` transport.
    pub file_dir: Option<PathBuf>,
    /// Program for the `sendmail` transport.
    pub sendmail: Option<PathBuf>,
    pub list_id: Option<String>,
    pub unsubscribe_url: Option<String>,
    pub unsubscribe_mailto: Option<String>,
    pub dkim: Option<DkimConfig>,
}

fn default_templates() -> PathBuf {
    "email-templates".into()
}
fn default_transport() -> String {
    "smtp".into()
}

/// `[email.dkim]`: the key is read from `key_file`, never from the config text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    pub domain: String,
    pub selector: String,
    pub key_file: PathBuf,
}

/// `[smtp]`: the password is read from the environment variable `password_env`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: String,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub timeout_secs: u64,
    pub connections: usize,
    pub max_per_second: f64,
    pub max_per_hour: u64,
    pub max_attempts: u32,
    /// Wait before the first retry of a temporary failure; doubled for each further one.
    pub retry_delay_secs: f64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: 587,
            security: "starttls".into(),
            username: None,
            password_env: None,
            password_file: None,
            timeout_secs: 30,
            connections: 4,
            max_per_second: 0.0,
            max_per_hour: 0,
            max_attempts: 5,
            retry_delay_secs: 2.0,
        }
    }
}

/// `[subscribers]`: the embedded database and the per-subscriber unsubscribe link.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribersConfig {
    #[serde(default = "default_database")]
    pub database: PathBuf,
    pub unsubscribe_url: Option<String>,
}

fn default_database() -> PathBuf {
    ".newsdesk/newsdesk.db".into()
}

/// The resolved configuration: the site model plus typed settings, paths absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself.
    pub path: PathBuf,
    /// Its folder: relative paths in the config are relative to it.
    pub dir: PathBuf,
    pub site: Site,
    pub posts_dir: PathBuf,
    pub feeds: FeedsConfig,
    pub email: Option<EmailConfig>,
    pub smtp: SmtpConfig,
    pub subscribers: Option<SubscribersConfig>,
}

impl Config {
    /// Resolves a path written in the config relative to the config's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        self.dir.join(p)
    }

    /// The ledger/subscriber database path.
    pub fn database_path(&self) -> PathBuf {
        let rel = self.subscribers.as_ref().map(|s| s.database.clone()).unwrap_or_else(default_database);
        self.resolve(&rel)
    }
}

/// Reads and validates `path`. All problems come back as diagnostics pointing into the file.
pub fn load(path: &Path) -> Result<Config, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![
            Diagnostic::error("config-unreadable", format!("cannot read the config: {e}"))
                .in_file(path)
                .help("pass the config file with `-c PATH` (default: `config.toml` in the current folder)"),
        ]
    })?;
    parse(&text, path)
}

/// Parses config text; `path` is used for messages and to resolve relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, Vec<Diagnostic>> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| vec![toml_error(&e, text, path)])?;
    let mut problems = Vec::new();
    let at_key =
        |section: &str, key: &str| -> (usize, String) { locate_key(text, section, key).unwrap_or((0, String::new())) };
    let mut err = |code: &'static str, section: &str, key: &str, msg: String, help: String| {
        let (line, src) = at_key(section, key);
        let mut d = Diagnostic::error(code, msg).in_file(path).help(help);
        if line > 0 {
            let col = src.find('=').map_or(1, |i| i + 2 + src[i + 1..].len() - src[i + 1..].trim_start().len());
            let len = src.len().saturating_sub(col - 1).max(1);
            d = d.at(line, col).with_source(src, len);
        }
        problems.push(d);
    };

    let base_url = raw.site.base_url.trim_end_matches('/').to_string();
    match url::Url::parse(&base_url) {
        // Every link is the base URL followed by a path: a query or fragment in it would
        // end up in the middle of each (`https://x.org/?q=1#f/2020/...`).
        Ok(u) if u.query().is_some() || u.fragment().is_some() => err(
            "bad-base-url",
            "site",
            "base_url",
            format!("`base_url` must not have a query (`?...`) or a fragment (`#...`), as `{}` has", raw.site.base_url),
            format!(
                "write the site's address only, e.g. `base_url = \"{}\"`: every post's URL is made by appending its path to it",
                base_url.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/')
            ),
        ),
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {}
        _ => err(
            "bad-base-url",
            "site",
            "base_url",
            format!("`base_url` must be an absolute http(s) URL, not `{}`", raw.site.base_url),
            "write the address readers visit, e.g. `base_url = \"https://lwkd.info\"`".into(),
        ),
    }
    let tz: chrono_tz::Tz = match raw.site.timezone.parse() {
        Ok(tz) => tz,
        Err(_) => {
            err(
                "bad-timezone",
                "site",
                "timezone",
                format!("unknown timezone `{}`", raw.site.timezone),
                "use an IANA name such as `UTC`, `Europe/Berlin` or `America/Los_Angeles`".into(),
            );
            chrono_tz::UTC
        }
    };
    let permalink = permalink::preset(&raw.site.permalink).to_string();
    if permalink::climbs(&permalink) {
        err(
            "bad-permalink",
            "site",
            "permalink",
            format!("`permalink = \"{permalink}\"` has a `..` segment: post URLs would climb out of the site"),
            "remove the `..`: every post's URL must lie below `base_url`".into(),
        );
    } else if let Err(bad) = permalink::validate(&permalink) {
        err(
            "bad-permalink",
            "site",
            "permalink",
            format!("unknown placeholder `:{bad}` in `permalink`"),
            format!("known placeholders: {}", permalink::PLACEHOLDERS.map(|p| format!(":{p}")).join(" ")),
        );
    }
    let id = raw.feeds.id.as_str();
    if id != "permalink" && id != "jekyll" {
        if !id.contains(':') || !id.starts_with('/') {
            err(
                "bad-feed-id",
                "feeds",
                "id",
                format!("`id = \"{id}\"` is neither a preset nor a permalink pattern"),
                "use `\"permalink\"` (the item URL), `\"jekyll\"` (jekyll-feed's ids) or a pattern such as `\"/:year/:slug\"`".into(),
            );
        } else if permalink::climbs(id) {
            err(
                "bad-feed-id",
                "feeds",
                "id",
                format!("the feed `id` pattern `{id}` has a `..` segment"),
                "remove the `..`: ids are URLs below `base_url`".into(),
            );
        } else if let Err(bad) = permalink::validate(id) {
            err(
                "bad-feed-id",
                "feeds",
                "id",
                format!("unknown placeholder `:{bad}` in the feed `id` pattern"),
                format!("known placeholders: {}", permalink::PLACEHOLDERS.map(|p| format!(":{p}")).join(" ")),
            );
        }
    }
    if let Some(hub) = &raw.feeds.hub
        && !hub.starts_with("https://")
        && !hub.starts_with("http://")
    {
        err(
            "bad-hub",
            "feeds",
            "hub",
            format!("the WebSub hub `{hub}` is not an absolute http(s) URL"),
            "write the hub's full address, e.g. `hub = \"https://pubsubhubbub.appspot.com/\"`".into(),
        );
    }
    if raw.feeds.limit == 0 {
        err(
            "bad-limit",
            "feeds",
            "limit",
            "`limit = 0` would write empty feeds".into(),
            "set how many of the newest posts each feed holds, e.g. `limit = 20`".into(),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // Absolute, so messages can show paths relative to wherever newsdesk runs.
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let site = Site {
        title: raw.site.title,
        description: raw.site.description,
        base_url,
        language: raw.site.language,
        timezone: raw.site.timezone,
        tz,
        permalink,
        author: raw.site.author.map(RawPerson::into_person),
    };
    Ok(Config {
        path: path.clone(),
        posts_dir: dir.join(&raw.site.posts),
        dir,
        site,
        feeds: raw.feeds,
        email: raw.email,
        smtp: raw.smtp,
        subscribers: raw.subscribers,
    })
}

/// Turns a TOML error into a diagnostic; unknown keys get the closest known one.
fn toml_error(e: &toml::de::Error, text: &str, path: &Path) -> Diagnostic {
    let message = e.message().trim().to_string();
    let mut d = Diagnostic::error("bad-config", message.clone()).in_file(path);
    if let Some(span) = e.span() {
        let (line, col) = line_col(text, span.start);
        let len = text[span.clone()].chars().count();
        d = d.at(line, col).with_source(line_at(text, span.start), len);
    }
    if let Some(help) = unknown_key_help(&message) {
        d = d.help(help);
    } else if message.contains("missing field") {
        d = d.help("see the README's config reference for the required keys");
    }
    d
}

/// From serde's "unknown field `x`, expected one of `a`, `b`" builds "did you mean `a`?".
fn unknown_key_help(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let best = known.iter().map(|k| (strsim::damerau_levenshtein(unknown, k), *k)).min()?;
    if best.0 <= 3 && best.0 < unknown.len().max(2) {
        Some(format!("did you mean `{}`?", best.1))
    } else {
        Some(format!("known keys here: {}", known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")))
    }
}

/// Finds `key = ...` inside `[section]` for pointing at a value; returns its line.
pub(crate) fn locate_key(text: &str, section: &str, key: &str) -> Option<(usize, String)> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        if current == section
            && let Some((k, _)) = t.split_once('=')
            && k.trim() == key
        {
            return Some((i + 1, line.to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[site]
title = "LWKD"
base_url = "https://lwkd.info/"
permalink = "/:year/:year:month:day"
author = { name = "LWKD editors", email = "lwkd@example.org" }

[feeds]
atom = "feed.xml"
json = false
id = "jekyll"
"#;

    #[test]
    fn reads_a_good_config() {
        let c = parse(GOOD, Path::new("/site/config.toml")).unwrap();
        assert_eq!(c.site.base_url, "https://lwkd.info");
        assert_eq!(c.posts_dir, Path::new("/site/posts"));
        assert_eq!(c.feeds.rss().as_deref(), Some("rss.xml"));
        assert_eq!(c.feeds.atom().as_deref(), Some("feed.xml"));
        assert_eq!(c.feeds.json(), None);
        assert_eq!(c.feeds.limit, 20);
        assert_eq!(c.site.author.unwrap().email.as_deref(), Some("lwkd@example.org"));
    }

    #[test]
    fn unknown_key_suggests_the_closest() {
        let text = GOOD.replace("title = ", "tittle = ");
        let errs = parse(&text, Path::new("config.toml")).unwrap_err();
        assert_eq!(errs.len(), 1);
        let d = &errs[0];
        assert!(d.message.contains("unknown field `tittle`"), "{}", d.message);
        assert_eq!(d.help.as_deref(), Some("did you mean `title`?"));
        assert_eq!(d.line, 3);
    }

    #[test]
    fn relative_base_url_is_an_error() {
        let text = GOOD.replace("https://lwkd.info/", "lwkd.info");
        let errs = parse(&text, Path::new("config.toml")).unwrap_err();
        assert_eq!(errs[0].code, "bad-base-url");
        assert_eq!(errs[0].line, 4);
    }

    #[test]
    fn base_url_with_query_or_fragment_is_an_error() {
        for bad in ["https://lwkd.info/?q=1#frag", "https://lwkd.info/?", "https://lwkd.info#top"] {
            let text = GOOD.replace("https://lwkd.info/", bad);
            let errs = parse(&text, Path::new("config.toml")).unwrap_err();
            assert_eq!((errs[0].code, errs[0].line), ("bad-base-url", 4), "{bad}");
            assert!(errs[0].message.contains("query"), "{}", errs[0].message);
            assert!(
                errs[0].help.as_deref().unwrap().contains("`base_url = \"https://lwkd.info\"`"),
                "{:?}",
                errs[0].help
            );
        }
        // A site in a folder is fine.
        assert!(parse(&GOOD.replace("https://lwkd.info/", "https://example.org/lwkd/"), Path::new("c.toml")).is_ok());
    }

    #[test]
    fn permalink_climbing_out_is_an_error() {
        let text = GOOD.replace("/:year/:year:month:day", "/../:title/");
        let errs = parse(&text, Path::new("config.toml")).unwrap_err();
        assert_eq!((errs[0].code, errs[0].line), ("bad-permalink", 5));
    }

    #[test]
    fn bad_timezone_and_placeholder_are_both_reported() {
        let text = GOOD.replace(
            "permalink = \"/:year/:year:month:day\"",
            "permalink = \"/:yaer/:slug\"\ntimezone = \"Mars/Base\"",
        );
        let errs = parse(&text, Path::new("config.toml")).unwrap_err();
        let codes: Vec<_> = errs.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["bad-timezone", "bad-permalink"]);
    }
}
