//! `config.toml`: parsed strictly (an unknown key is an error that suggests the
//! closest known one, as cargo does for manifests), then resolved into the model's
//! [`Site`] and typed settings with paths made relative to the config file.

use crate::diag::{Diagnostic, line_at, line_col};
use crate::model::{Person, Site};
use crate::permalink;
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

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
    web: Option<WebConfig>,
    #[serde(default)]
    bounces: BouncesConfig,
    #[serde(default)]
    new: NewConfig,
    #[serde(default)]
    social: SocialConfig,
    buttondown: Option<ButtondownConfig>,
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
    /// The envelope sender of subscriber mail, where bounces go:
    /// `bounces+{token}@lwkd.example.org` puts each subscriber's VERP token in it (see
    /// `store::bounces::verp_token`), so every bounce names its subscriber. Without it,
    /// the envelope sender is `from`.
    pub return_path: Option<String>,
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
    /// Extra trusted roots for the server's certificate (PEM, one or more): a company
    /// relay's private CA.
    pub ca_file: Option<PathBuf>,
    /// Which roots are trusted besides `ca_file`: `"webpki"` (Mozilla's, built in) or
    /// `"system"` (the machine's store, `/etc/ssl/certs`).
    pub tls_roots: String,
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
            ca_file: None,
            tls_roots: "webpki".into(),
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

/// `[buttondown]`: the account `[email] transport = "buttondown"` hands issues to. The
/// API key is read from `api_key_env` or `api_key_file`, never from the config text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtondownConfig {
    pub api_key_env: Option<String>,
    pub api_key_file: Option<PathBuf>,
    #[serde(default = "default_buttondown_api")]
    pub api_url: String,
}

fn default_buttondown_api() -> String {
    "https://api.buttondown.com/v1".into()
}

/// `[social]`: the text `newsdesk social` prints for Bluesky and Mastodon.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocialConfig {
    /// A minijinja template file; without it, the editors' format.
    pub template: Option<PathBuf>,
    /// Put at the end, e.g. `["#kubernetes", "#containers", "#CloudNative"]`.
    #[serde(default)]
    pub hashtags: Vec<String>,
}

/// `[new]`: how `newsdesk new` names and dates the next issue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConfig {
    /// The post template (minijinja); a missing default `post.md` means the built-in one.
    #[serde(default = "default_new_template")]
    pub template: PathBuf,
    /// The last day of an issue's week: the issue is named for it.
    #[serde(default = "default_week_ends")]
    pub week_ends: String,
    /// The day after the week's end on which the issue goes out, and the time (in
    /// `[site] timezone`).
    #[serde(default = "default_publish_weekday")]
    pub publish_weekday: String,
    #[serde(default = "default_publish_time")]
    pub publish_time: String,
    /// Parsed from the strings above when the config is read.
    #[serde(skip)]
    pub week_end_day: Option<chrono::Weekday>,
    #[serde(skip)]
    pub publish_day: Option<chrono::Weekday>,
    #[serde(skip)]
    pub publish_at: Option<chrono::NaiveTime>,
}

impl Default for NewConfig {
    fn default() -> Self {
        NewConfig {
            template: default_new_template(),
            week_ends: default_week_ends(),
            publish_weekday: default_publish_weekday(),
            publish_time: default_publish_time(),
            week_end_day: Some(chrono::Weekday::Sun),
            publish_day: Some(chrono::Weekday::Thu),
            publish_at: chrono::NaiveTime::from_hms_opt(22, 0, 0),
        }
    }
}

fn default_new_template() -> PathBuf {
    "post.md".into()
}
fn default_week_ends() -> String {
    "sunday".into()
}
fn default_publish_weekday() -> String {
    "thursday".into()
}
fn default_publish_time() -> String {
    "22:00".into()
}

/// `monday` ... `sunday` (or their first three letters), any case.
pub fn parse_weekday(s: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    let days = [Mon, Tue, Wed, Thu, Fri, Sat, Sun];
    let s = s.trim().to_ascii_lowercase();
    days.into_iter().find(|d| {
        let full = match d {
            Mon => "monday",
            Tue => "tuesday",
            Wed => "wednesday",
            Thu => "thursday",
            Fri => "friday",
            Sat => "saturday",
            Sun => "sunday",
        };
        s == full || (s.len() == 3 && full.starts_with(&s))
    })
}

/// `[bounces]`: what a bounce does, and where `bounces ingest` files what it read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BouncesConfig {
    /// Issues in a row with a soft bounce (a full mailbox, ...) before the subscriber
    /// counts as bounced.
    #[serde(default = "default_soft_limit")]
    pub soft_limit: u32,
    /// Where each message read is kept: `processed/` when it was applied or explained,
    /// `unmatched/` when nobody on the list matched it.
    #[serde(default = "default_bounce_archive")]
    pub archive: PathBuf,
    /// The bounce mailbox on an IMAP server, for `bounces ingest --imap`.
    pub imap: Option<ImapConfig>,
}

impl Default for BouncesConfig {
    fn default() -> Self {
        BouncesConfig { soft_limit: default_soft_limit(), archive: default_bounce_archive(), imap: None }
    }
}

/// `[bounces.imap]`: the bounce mailbox over IMAP with TLS (port 993). The password is
/// read from `password_env` or `password_file`, never from the config text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    pub host: String,
    #[serde(default = "default_imap_port")]
    pub port: u16,
    pub username: String,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_imap_mailbox")]
    pub mailbox: String,
    /// What happens to a message once applied: `"seen"` (flag it), `"move"` (to
    /// `move_to`) or `"delete"`. Nothing is marked that was not applied.
    #[serde(default = "default_imap_after")]
    pub after: String,
    pub move_to: Option<String>,
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_tls_roots")]
    pub tls_roots: String,
    #[serde(default = "default_imap_timeout")]
    pub timeout_secs: u64,
}

fn default_imap_port() -> u16 {
    993
}
fn default_imap_mailbox() -> String {
    "INBOX".into()
}
fn default_imap_after() -> String {
    "seen".into()
}
fn default_imap_timeout() -> u64 {
    30
}
fn default_tls_roots() -> String {
    "webpki".into()
}

fn default_soft_limit() -> u32 {
    3
}
fn default_bounce_archive() -> PathBuf {
    ".newsdesk/bounces".into()
}

/// `[email] return_path`: an address, with `{token}` at most once and in the local
/// part. The error is the message.
pub fn check_return_path(value: &str) -> Result<(), String> {
    let count = value.matches("{token}").count();
    if count > 1 {
        return Err(format!("`return_path = \"{value}\"` has `{{token}}` more than once"));
    }
    let sample = value.replace("{token}", "0123456789abcdef");
    let Some((local, _)) = sample.rsplit_once('@') else {
        return Err(format!("`return_path = \"{value}\"` is not a mail address"));
    };
    if count == 1 && !value.rsplit_once('@').is_some_and(|(l, _)| l.contains("{token}")) {
        return Err(format!("`return_path = \"{value}\"` has `{{token}}` in the domain; it belongs before the `@`"));
    }
    if local.is_empty() || sample.parse::<lettre::Address>().is_err() || sample.contains(['<', '>', ' ']) {
        return Err(format!("`return_path = \"{value}\"` is not a mail address"));
    }
    // List and test sends use the address without the token: it must be one too.
    let plain = plain_return_path(value);
    if plain.parse::<lettre::Address>().is_err() {
        return Err(format!(
            "`return_path = \"{value}\"` without its token is `{plain}`, not a mail address (list and test sends use it)"
        ));
    }
    Ok(())
}

/// `bounces+{token}@x` → `bounces@x`: the return path without the token and the
/// separator before it.
pub fn plain_return_path(return_path: &str) -> String {
    match return_path.split_once("{token}") {
        None => return_path.to_string(),
        Some((before, after)) => {
            let before = before.trim_end_matches(['+', '-', '.', '_', '=']);
            format!("{before}{after}")
        }
    }
}

/// `[web]`: `newsdesk serve`, the subscribers' web endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Where `serve` listens (`--listen` overrides it).
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// Where readers reach it (`https://lwkd.example.org`): subscriber mail links to
    /// `{public_url}/unsubscribe/{token}` unless `[subscribers] unsubscribe_url` says
    /// otherwise.
    pub public_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (addresses or networks such
    /// as `"10.0.0.0/8"`): the subscribe form's limits per client count the address
    /// the proxy saw, not the proxy's. Nobody else's header counts.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The pages' templates (`web-templates/` by default, which may be missing: the
    /// built-in pages are used). A folder named here must exist.
    pub templates: Option<PathBuf>,
    /// How long a confirmation link works, and how long an address waits before it can
    /// get another confirmation mail.
    #[serde(default = "default_confirm_hours")]
    pub confirm_hours: u32,
    /// `trusted_proxies`, parsed (checked when the config is read).
    #[serde(skip)]
    pub trusted: Vec<ipnet::IpNet>,
}

fn default_confirm_hours() -> u32 {
    168
}

/// One `trusted_proxies` entry: an address (`127.0.0.1`, `::1`) or a network
/// (`10.0.0.0/8`).
pub fn parse_proxy(entry: &str) -> Option<ipnet::IpNet> {
    let entry = entry.trim();
    entry.parse::<ipnet::IpNet>().ok().or_else(|| entry.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
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
    pub web: Option<WebConfig>,
    pub bounces: BouncesConfig,
    pub new: NewConfig,
    pub social: SocialConfig,
    pub buttondown: Option<ButtondownConfig>,
}

impl Config {
    /// The per-subscriber unsubscribe link with `{token}`: `[subscribers]
    /// unsubscribe_url`, else `[web] public_url` + `/unsubscribe/{token}` (what `serve`
    /// answers).
    pub fn unsubscribe_url_template(&self) -> Option<String> {
        let explicit = self.subscribers.as_ref().and_then(|s| s.unsubscribe_url.clone());
        explicit.or_else(|| {
            let public = self.web.as_ref()?.public_url.as_deref()?;
            Some(format!("{}/unsubscribe/{{token}}", public.trim_end_matches('/')))
        })
    }

    /// Resolves a path written in the config relative to the config's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        self.dir.join(p)
    }

    /// The ledger/subscriber database path.
    pub fn database_path(&self) -> PathBuf {
        let rel = self.subscribers.as_ref().map(|s| s.database.clone()).unwrap_or_else(default_database);
        self.resolve(&rel)
    }

    /// A secret (the SMTP or IMAP password, the Buttondown API key) from the
    /// environment variable `env` or the file `file` (relative to the config), the
    /// variable first. `what` names it in errors ("the SMTP password"); an error names
    /// the variable or the file, never the value. A file's trailing line break is not
    /// part of the secret.
    pub fn secret(&self, what: &str, env: Option<&str>, file: Option<&Path>) -> Result<String, SecretError> {
        if let Some(var) = env {
            return match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(v),
                _ => Err(SecretError {
                    message: format!("{what} is read from the environment variable `{var}`, which is not set"),
                    help: format!("export {var}=... before running newsdesk (or name a file instead)"),
                }),
            };
        }
        let Some(file) = file else {
            return Err(SecretError {
                message: format!("no source is set for {what}"),
                help: "name an environment variable or a file (`..._env` or `..._file`) for it".into(),
            });
        };
        let path = self.resolve(file);
        match std::fs::read_to_string(&path) {
            Ok(v) if !v.trim_end_matches(['\r', '\n']).trim().is_empty() => {
                Ok(v.trim_end_matches(['\r', '\n']).to_string())
            }
            Ok(_) => Err(SecretError {
                message: format!("the file `{}` for {what} is empty", path.display()),
                help: "write it on the file's first line".into(),
            }),
            Err(e) => Err(SecretError {
                message: format!("cannot read {what} from `{}`: {e}", path.display()),
                help: "check the path and the file's permissions (readable by you alone: chmod 600)".into(),
            }),
        }
    }

    /// The files the config names that hold secrets: the section and key that name
    /// each, and its path. For `check`'s warning when others can read them.
    pub fn secret_files(&self) -> Vec<(&'static str, &'static str, PathBuf)> {
        let mut out = Vec::new();
        if let Some(f) = &self.smtp.password_file {
            out.push(("smtp", "password_file", self.resolve(f)));
        }
        if let Some(dkim) = self.email.as_ref().and_then(|e| e.dkim.as_ref()) {
            out.push(("email.dkim", "key_file", self.resolve(&dkim.key_file)));
        }
        if let Some(f) = self.bounces.imap.as_ref().and_then(|i| i.password_file.as_ref()) {
            out.push(("bounces.imap", "password_file", self.resolve(f)));
        }
        if let Some(f) = self.buttondown.as_ref().and_then(|b| b.api_key_file.as_ref()) {
            out.push(("buttondown", "api_key_file", self.resolve(f)));
        }
        out
    }
}

/// Why a secret could not be read ([`Config::secret`]): what, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretError {
    pub message: String,
    pub help: String,
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
    let mut raw: RawConfig = toml::from_str(text).map_err(|e| vec![toml_error(&e, text, path)])?;
    let mut problems = Vec::new();
    let spans = Spans::new(text);
    let mut err = |code: &'static str, section: &str, key: &str, msg: String, help: String| {
        problems.push(spans.point(Diagnostic::error(code, msg).in_file(path).help(help), section, key));
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
    // Numbers: the same wording as for a value of the wrong type.
    let whole = |v: u64, lo: u64, hi: u64| (lo..=hi).contains(&v);
    let number = |v: f64, lo: f64, hi: f64| v.is_finite() && v >= lo && v <= hi;
    let smtp = &raw.smtp;
    for (section, key, ok, help) in [
        (
            "feeds",
            "limit",
            whole(raw.feeds.limit as u64, 1, 10_000),
            "how many of the newest posts each feed holds, e.g. `limit = 20`",
        ),
        ("smtp", "port", whole(smtp.port.into(), 1, 65_535), "587 for STARTTLS, 465 for TLS, 25 for a relay"),
        ("smtp", "timeout_secs", whole(smtp.timeout_secs, 1, 3600), "e.g. `timeout_secs = 30`"),
        ("smtp", "connections", whole(smtp.connections as u64, 1, 256), "e.g. `connections = 4`"),
        ("smtp", "max_attempts", whole(smtp.max_attempts.into(), 1, 100), "e.g. `max_attempts = 5`"),
        ("smtp", "max_per_second", number(smtp.max_per_second, 0.0, f64::MAX), "`0` means no limit"),
        ("smtp", "retry_delay_secs", number(smtp.retry_delay_secs, 0.0, 3600.0), "e.g. `retry_delay_secs = 2.0`"),
    ] {
        if !ok {
            let what = expectation(section, key).unwrap_or("a number");
            err("bad-config-value", section, key, format!("`{key}` must be {what}"), help.to_string());
        }
    }
    smtp_checks(smtp, &mut err);
    if let Some(subs) = &raw.subscribers
        && let Some(url) = &subs.unsubscribe_url
        && let Err(why) = check_unsubscribe_template(url)
    {
        err("no-unsubscribe-url", "subscribers", "unsubscribe_url", why, UNSUBSCRIBE_URL_HELP.into());
    }
    if let Some(web) = &raw.web
        && let Some(url) = &web.public_url
        && let Err(why) = check_public_url(url)
    {
        err(
            "bad-public-url",
            "web",
            "public_url",
            why,
            "write the address readers use, e.g. `public_url = \"https://lwkd.example.org\"`".into(),
        );
    }
    if let Some(web) = &mut raw.web {
        for entry in &web.trusted_proxies {
            match parse_proxy(entry) {
                Some(net) => web.trusted.push(net),
                None => err(
                    "bad-trusted-proxy",
                    "web",
                    "trusted_proxies",
                    format!("`{entry}` in `trusted_proxies` is not an IP address or network"),
                    "write addresses or networks, e.g. `trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]`".into(),
                ),
            }
        }
        if !(1..=8760).contains(&web.confirm_hours) {
            let what = expectation("web", "confirm_hours").unwrap_or("a number of hours");
            err(
                "bad-config-value",
                "web",
                "confirm_hours",
                format!("`confirm_hours` must be {what}"),
                "e.g. `confirm_hours = 168` (a week)".into(),
            );
        }
    }
    if let Some(email) = &raw.email
        && let Some(rp) = &email.return_path
        && let Err(why) = check_return_path(rp)
    {
        err(
            "bad-return-path",
            "email",
            "return_path",
            why,
            "write the bounce address, with `{token}` where each subscriber's token goes, e.g. `return_path = \"bounces+{token}@lwkd.example.org\"`".into(),
        );
    }
    if let Some(imap) = &raw.bounces.imap {
        if !matches!(imap.after.as_str(), "seen" | "move" | "delete") {
            err(
                "bad-config-value",
                "bounces.imap",
                "after",
                format!("`after = \"{}\"` is not one of \"seen\", \"move\", \"delete\"", imap.after),
                "`\"seen\"` flags each message once applied (the default); `\"move\"` moves it to `move_to`; `\"delete\"` deletes it".into(),
            );
        } else if imap.after == "move" && imap.move_to.as_deref().is_none_or(|m| m.trim().is_empty()) {
            err(
                "bad-config-value",
                "bounces.imap",
                "after",
                "`after = \"move\"` needs `move_to`, the folder applied messages go to".into(),
                "add e.g. `move_to = \"newsdesk-processed\"` under [bounces.imap]".into(),
            );
        }
        if !matches!(imap.tls_roots.as_str(), "webpki" | "system") {
            err(
                "bad-config-value",
                "bounces.imap",
                "tls_roots",
                format!("`tls_roots = \"{}\"` is not \"webpki\" or \"system\"", imap.tls_roots),
                "`\"webpki\"`: Mozilla's roots (built in); `\"system\"`: the machine's; add a private CA with `ca_file`".into(),
            );
        }
        if imap.password_env.is_none() && imap.password_file.is_none() {
            err(
                "no-imap-password",
                "bounces.imap",
                "username",
                "[bounces.imap] has a `username` but no password source".into(),
                "add `password_env = \"NEWSDESK_IMAP_PASSWORD\"` (or `password_file = \"secrets/imap-password\"`) under [bounces.imap]".into(),
            );
        }
    }
    {
        let n = &mut raw.new;
        n.week_end_day = parse_weekday(&n.week_ends);
        n.publish_day = parse_weekday(&n.publish_weekday);
        n.publish_at = chrono::NaiveTime::parse_from_str(n.publish_time.trim(), "%H:%M")
            .or_else(|_| chrono::NaiveTime::parse_from_str(n.publish_time.trim(), "%H:%M:%S"))
            .ok();
        for (key, ok, value) in [
            ("week_ends", n.week_end_day.is_some(), &n.week_ends),
            ("publish_weekday", n.publish_day.is_some(), &n.publish_weekday),
        ] {
            if !ok {
                err(
                    "bad-config-value",
                    "new",
                    key,
                    format!("`{key} = \"{value}\"` is not a day of the week"),
                    format!("write a day's name, e.g. `{key} = \"sunday\"`"),
                );
            }
        }
        if n.publish_at.is_none() {
            err(
                "bad-config-value",
                "new",
                "publish_time",
                format!("`publish_time = \"{}\"` is not a time of day", n.publish_time),
                "write hours and minutes on the 24-hour clock, e.g. `publish_time = \"22:00\"`".into(),
            );
        }
    }
    if raw.email.as_ref().is_some_and(|e| e.transport == "buttondown") {
        match &raw.buttondown {
            None => err(
                "no-buttondown",
                "email",
                "transport",
                "`transport = \"buttondown\"` needs a [buttondown] section with the API key's source".into(),
                "add `[buttondown]` with `api_key_env = \"BUTTONDOWN_API_KEY\"` (or `api_key_file = \"secrets/buttondown\"`)".into(),
            ),
            Some(b) if b.api_key_env.is_none() && b.api_key_file.is_none() => err(
                "no-buttondown",
                "buttondown",
                "api_url",
                "[buttondown] names no `api_key_env` or `api_key_file`".into(),
                "add `api_key_env = \"BUTTONDOWN_API_KEY\"` (or `api_key_file`) under [buttondown]".into(),
            ),
            // The key travels with every request: plain http only to this machine.
            Some(b) if !url::Url::parse(&b.api_url).is_ok_and(|u| match u.scheme() {
                "https" => u.host_str().is_some(),
                "http" => u.host_str().is_some_and(is_loopback),
                _ => false,
            }) => err(
                "bad-config-value",
                "buttondown",
                "api_url",
                format!("`api_url = \"{}\"` is not an https URL (plain http only to a loopback address)", b.api_url),
                "leave it out for Buttondown's own, `https://api.buttondown.com/v1`".into(),
            ),
            Some(_) => {}
        }
    }
    if !(1..=100).contains(&raw.bounces.soft_limit) {
        let what = expectation("bounces", "soft_limit").unwrap_or("a whole number");
        err(
            "bad-config-value",
            "bounces",
            "soft_limit",
            format!("`soft_limit` must be {what}"),
            "e.g. `soft_limit = 3`: three issues in a row with a soft bounce make a subscriber bounced".into(),
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
        web: raw.web,
        bounces: raw.bounces,
        new: raw.new,
        social: raw.social,
        buttondown: raw.buttondown,
    })
}

/// `[web] public_url`: an absolute http(s) URL of the site `serve` answers for, with no
/// query or fragment (paths are appended to it). The error is the message.
pub fn check_public_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.query().is_none()
                && u.fragment().is_none() =>
        {
            Ok(())
        }
        _ => Err(format!("`public_url = \"{url}\"` is not an http(s) URL without a query or fragment")),
    }
}

/// `help:` for a `[subscribers] unsubscribe_url` that cannot work.
pub const UNSUBSCRIBE_URL_HELP: &str = "set `unsubscribe_url = \"https://example.org/unsubscribe/{token}\"` under [subscribers]: each subscriber's link carries their token";

/// `[subscribers] unsubscribe_url` as subscriber sends use it: an absolute http(s) URL
/// with `{token}` where each subscriber's secret goes. The error is the message.
pub fn check_unsubscribe_template(url: &str) -> Result<(), String> {
    if !url.contains("{token}") {
        return Err(format!(
            "`unsubscribe_url = \"{url}\"` has no `{{token}}`, so no link could unsubscribe its reader"
        ));
    }
    match url::Url::parse(&url.replace("{token}", "0")) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(format!("`unsubscribe_url = \"{url}\"` is not an http(s) URL")),
    }
}

/// Whether `host` is this machine (`localhost`, 127.0.0.0/8, `::1`): the only place
/// `[smtp] security = "none"` may send to.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim();
    host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `[smtp]` as `send` would refuse it, checked without reading the password and
/// without connecting: at load time, and again by `transport::smtp_server`, so there is
/// one set of rules. `err` gets (code, section, key, message, help).
pub fn smtp_checks(smtp: &SmtpConfig, err: &mut impl FnMut(&'static str, &str, &str, String, String)) {
    let host = smtp.host.trim();
    if host.is_empty() {
        err(
            "bad-smtp-host",
            "smtp",
            "host",
            "`host` is empty".into(),
            "write the mail server's name, e.g. `host = \"smtp.example.org\"`".into(),
        );
    }
    match smtp.security.as_str() {
        "starttls" | "tls" => {}
        "none" if host.is_empty() || is_loopback(host) => {}
        "none" => err(
            "insecure-smtp",
            "smtp",
            "security",
            format!("`security = \"none\"` would send the message and password unencrypted to `{host}`"),
            "use \"starttls\" (port 587) or \"tls\" (port 465); \"none\" is only allowed for a server on this machine (localhost, 127.0.0.1, ::1)".into(),
        ),
        other => err(
            "bad-security",
            "smtp",
            "security",
            format!("unknown SMTP security `{other}`: `security` must be one of \"starttls\", \"tls\", \"none\""),
            "use \"starttls\" (port 587), \"tls\" (port 465, sometimes called SSL) or \"none\" (localhost only)".into(),
        ),
    }
    if !matches!(smtp.tls_roots.as_str(), "webpki" | "system") {
        err(
            "bad-tls-roots",
            "smtp",
            "tls_roots",
            format!("unknown `tls_roots = \"{}\"`: it must be \"webpki\" or \"system\"", smtp.tls_roots),
            "\"webpki\" trusts Mozilla's roots (built in), \"system\" the machine's store; add a private CA with `ca_file`".into(),
        );
    }
    if let Some(var) = &smtp.password_env
        && !is_env_name(var)
    {
        // Never shown: this may well be the password itself.
        err(
            "bad-password-env",
            "smtp",
            "password_env",
            "`password_env` must be the name of an environment variable (letters, digits and `_`), and its value is not one (the value is not shown: if it is the password itself, delete it from config.toml)".into(),
            PASSWORD_HELP.into(),
        );
    }
    if smtp.username.is_some() && smtp.password_env.is_none() && smtp.password_file.is_none() {
        err(
            "no-smtp-password",
            "smtp",
            "username",
            "`username` is set under [smtp] but no password source is".into(),
            "add `password_env = \"NEWSDESK_SMTP_PASSWORD\"` (or `password_file`) under [smtp]".into(),
        );
    }
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where the SMTP password goes instead of the config text.
const PASSWORD_HELP: &str = "put the password in an environment variable and write `password_env = \"NEWSDESK_SMTP_PASSWORD\"` under [smtp], or in a file only you can read and write `password_file = \"secrets/smtp-password\"`";

/// What each key of config.toml holds, in the editor's words: the message for a value
/// of the wrong type (instead of serde's `expected usize`) and for one out of range.
const KEYS: &[(&str, &str, &str)] = &[
    ("", "site", "a section: `[site]` with `title` and `base_url` below it"),
    ("", "feeds", "a section: `[feeds]` with `key = value` lines below it"),
    ("", "email", "a section: `[email]` with `key = value` lines below it"),
    ("", "smtp", "a section: `[smtp]` with `key = value` lines below it"),
    ("", "subscribers", "a section: `[subscribers]` with `key = value` lines below it"),
    ("site", "title", "text in quotes, e.g. `title = \"Last Week in Kubernetes Development\"`"),
    ("site", "description", "text in quotes"),
    ("site", "base_url", "an absolute http(s) URL in quotes, e.g. `base_url = \"https://lwkd.info\"`"),
    ("site", "language", "a language tag in quotes, e.g. `language = \"en\"`"),
    ("site", "timezone", "a timezone name in quotes, e.g. `\"UTC\"` or `\"Europe/Berlin\"`"),
    ("site", "posts", "a folder path in quotes, e.g. `posts = \"posts\"`"),
    (
        "site",
        "permalink",
        "a preset (`\"date\"`, `\"pretty\"`, ...) or a pattern such as `\"/:year/:slug\"`, in quotes",
    ),
    ("site", "author", "`\"Name <address>\"` or `{ name = \"...\", email = \"...\", url = \"...\" }`"),
    ("feeds", "limit", "a whole number between 1 and 10000"),
    ("feeds", "rss", "a file name in quotes, `true` or `false`"),
    ("feeds", "atom", "a file name in quotes, `true` or `false`"),
    ("feeds", "json", "a file name in quotes, `true` or `false`"),
    ("feeds", "id", "`\"permalink\"`, `\"jekyll\"` or a pattern such as `\"/:year/:slug\"`, in quotes"),
    ("feeds", "hub", "an http(s) URL in quotes"),
    ("email", "from", "a mail address in quotes, e.g. `from = \"LWKD <lwkd@example.org>\"`"),
    ("email", "to", "a mail address in quotes, e.g. `to = \"list@example.org\"`"),
    ("email", "reply_to", "a mail address in quotes"),
    ("email", "templates", "a folder path in quotes"),
    ("email", "transport", "one of \"smtp\", \"sendmail\", \"file\", \"buttondown\""),
    ("email", "file_dir", "a folder path in quotes"),
    ("email", "sendmail", "a program name or path in quotes"),
    ("email", "list_id", "a list identifier in quotes, e.g. `list_id = \"LWKD <lwkd.example.org>\"`"),
    ("email", "unsubscribe_url", "an http(s) URL in quotes"),
    ("email", "unsubscribe_mailto", "a mail address in quotes"),
    (
        "email",
        "return_path",
        "a mail address in quotes, `{token}` in it for VERP, e.g. `\"bounces+{token}@lwkd.example.org\"`",
    ),
    ("email", "dkim", "a section: `[email.dkim]` with `domain`, `selector` and `key_file`"),
    ("email.dkim", "domain", "a domain name in quotes"),
    ("email.dkim", "selector", "a DKIM selector in quotes, e.g. `selector = \"s1\"`"),
    ("email.dkim", "key_file", "a file path in quotes"),
    ("smtp", "host", "a host name in quotes, e.g. `host = \"smtp.example.org\"`"),
    ("smtp", "port", "a whole number between 1 and 65535"),
    ("smtp", "security", "one of \"starttls\", \"tls\", \"none\""),
    ("smtp", "username", "text in quotes"),
    (
        "smtp",
        "password_env",
        "the name of an environment variable in quotes, e.g. `password_env = \"NEWSDESK_SMTP_PASSWORD\"`",
    ),
    ("smtp", "password_file", "a file path in quotes"),
    ("smtp", "timeout_secs", "a whole number of seconds between 1 and 3600"),
    ("smtp", "connections", "a whole number between 1 and 256"),
    ("smtp", "max_per_second", "a number of messages per second, 0 or more (0: no limit)"),
    ("smtp", "max_per_hour", "a whole number, 0 or more (0: no limit)"),
    ("smtp", "max_attempts", "a whole number between 1 and 100"),
    ("smtp", "retry_delay_secs", "a number of seconds between 0 and 3600"),
    ("smtp", "ca_file", "a file path in quotes, e.g. `\"relay-ca.pem\"`"),
    ("smtp", "tls_roots", "`\"webpki\"` or `\"system\"` in quotes"),
    ("subscribers", "database", "a file path in quotes"),
    (
        "subscribers",
        "unsubscribe_url",
        "an http(s) URL with `{token}` in quotes, e.g. `\"https://example.org/unsubscribe/{token}\"`",
    ),
    ("", "web", "a section: `[web]` with `key = value` lines below it"),
    ("web", "listen", "an address and port in quotes, e.g. `\"127.0.0.1:8080\"`"),
    ("web", "public_url", "an http(s) URL in quotes, e.g. `\"https://lwkd.example.org\"`"),
    ("web", "trusted_proxies", "a list of IP addresses or networks in quotes, e.g. `[\"127.0.0.1\"]`"),
    ("web", "templates", "a folder path in quotes, e.g. `\"web-templates\"`"),
    ("web", "confirm_hours", "a whole number of hours between 1 and 8760"),
    ("", "bounces", "a section: `[bounces]` with `key = value` lines below it"),
    ("bounces", "soft_limit", "a whole number of issues between 1 and 100"),
    ("bounces", "archive", "a folder path in quotes, e.g. `\".newsdesk/bounces\"`"),
    ("bounces", "imap", "a section: `[bounces.imap]` with `host`, `username` and `password_env`"),
    ("", "new", "a section: `[new]` with `key = value` lines below it"),
    ("", "social", "a section: `[social]` with `key = value` lines below it"),
    ("", "buttondown", "a section: `[buttondown]` with `api_key_env` below it"),
    (
        "buttondown",
        "api_key_env",
        "the name of an environment variable in quotes, e.g. `api_key_env = \"BUTTONDOWN_API_KEY\"`",
    ),
    ("buttondown", "api_key_file", "a file path in quotes"),
    ("buttondown", "api_url", "an https URL in quotes"),
    ("social", "template", "a file path in quotes, e.g. `template = \"social.txt\"`"),
    ("social", "hashtags", "a list of hashtags in quotes, e.g. `[\"#kubernetes\", \"#CloudNative\"]`"),
    ("new", "template", "a file path in quotes, e.g. `template = \"post.md\"`"),
    ("new", "week_ends", "a day of the week in quotes, e.g. `week_ends = \"sunday\"`"),
    ("new", "publish_weekday", "a day of the week in quotes, e.g. `publish_weekday = \"thursday\"`"),
    ("new", "publish_time", "a time of day in quotes, e.g. `publish_time = \"22:00\"`"),
    ("bounces.imap", "host", "a host name in quotes, e.g. `host = \"imap.example.org\"`"),
    ("bounces.imap", "port", "a whole number between 1 and 65535 (993 for IMAP over TLS)"),
    ("bounces.imap", "username", "text in quotes"),
    (
        "bounces.imap",
        "password_env",
        "the name of an environment variable in quotes, e.g. `password_env = \"NEWSDESK_IMAP_PASSWORD\"`",
    ),
    ("bounces.imap", "password_file", "a file path in quotes"),
    ("bounces.imap", "mailbox", "a mailbox name in quotes, e.g. `mailbox = \"INBOX\"`"),
    ("bounces.imap", "after", "one of \"seen\", \"move\", \"delete\""),
    ("bounces.imap", "move_to", "a mailbox name in quotes"),
    ("bounces.imap", "ca_file", "a file path in quotes"),
    ("bounces.imap", "tls_roots", "`\"webpki\"` or `\"system\"` in quotes"),
    ("bounces.imap", "timeout_secs", "a whole number of seconds between 1 and 3600"),
];

/// What `key` in `[section]` must be, in the editor's words.
pub(crate) fn expectation(section: &str, key: &str) -> Option<&'static str> {
    KEYS.iter().find(|(s, k, _)| *s == section && *k == key).map(|(_, _, what)| *what)
}

/// Whether a key names a secret: the value of such a line is never shown.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "api_key", "apikey"].iter().any(|w| k.contains(w))
}

/// The keys written on a config line (`key = ...`, and those of an inline table).
fn keys_on_line(line: &str) -> Vec<(usize, &str)> {
    let mut keys = Vec::new();
    let mut quote: Option<char> = None;
    let mut key_start = 0;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => break,
            (None, '{' | ',') => key_start = i + 1,
            (None, '=') => {
                let key = line[key_start..i].trim();
                let offset = key_start + (line[key_start..i].len() - line[key_start..i].trim_start().len());
                keys.push((offset, key));
                key_start = i + 1;
            }
            _ => {}
        }
    }
    keys
}

/// When `line` sets a secret, the line as it may be shown (`password = <hidden>`) and
/// the 1-based column and length of its first key.
pub(crate) fn redacted(line: &str) -> Option<(String, usize, usize)> {
    let keys = keys_on_line(line);
    keys.iter().any(|(_, k)| is_secret_key(k.trim_matches(['"', '\'']))).then(|| {
        let (offset, key) = keys[0];
        let eq = line[offset..].find('=').map_or(line.len(), |i| offset + i);
        let shown = format!("{}= <hidden>", &line[..eq]);
        (shown, line[..offset].chars().count() + 1, key.chars().count().max(1))
    })
}

/// Where keys are written in config.toml, from the TOML parser's spans, so a key is
/// found however it is spelled: under its `[section]` header, as a dotted key
/// (`smtp.host = ...` at the top, `dkim.selector = ...` under `[email]`), in an inline
/// table (`smtp = { host = ... }`, on one line or several) or quoted (`"host" = ...`).
pub(crate) struct Spans<'a> {
    text: &'a str,
    /// The document as far as it parses (the parser recovers from errors).
    doc: toml::Spanned<DeTable<'a>>,
}

/// Byte spans of a key as written and of its value.
struct Written {
    key: Range<usize>,
    value: Range<usize>,
}

impl<'a> Spans<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Spans { text, doc: DeTable::parse_recoverable(text).0 }
    }

    /// `key` of `section` (`""` for the top level, `"email.dkim"` for a nested table).
    fn find(&self, section: &str, key: &str) -> Option<Written> {
        let mut table = self.doc.get_ref();
        for part in section.split('.').filter(|p| !p.is_empty()) {
            table = entry(table, part)?.1.get_ref().as_table()?;
        }
        let (k, v) = entry(table, key)?;
        Some(Written { key: k.span(), value: v.span() })
    }

    /// The section and key written at byte `offset` (`("smtp", "port")` for an offset in
    /// the key or the value of `port` in any of its spellings), the innermost one for a
    /// value that is a table.
    fn key_at(&self, offset: usize) -> Option<(String, String)> {
        let mut path = Vec::new();
        if !holding(self.doc.get_ref(), offset, &mut path) {
            return None;
        }
        let key = path.pop()?;
        Some((path.join("."), key))
    }

    /// Points `d` at the value of `key` in `[section]`, or only at the key when its line
    /// sets a secret (the line is then shown without its value). `d` is returned as it
    /// is when the key is not written.
    pub(crate) fn point(&self, d: Diagnostic, section: &str, key: &str) -> Diagnostic {
        let Some(written) = self.find(section, key) else { return d };
        let src = line_at(self.text, written.key.start);
        if let Some((shown, col, len)) = redacted(src) {
            return d.at(line_col(self.text, written.key.start).0, col).with_source(shown, len);
        }
        let value = self.text.get(written.value.clone()).unwrap_or_default();
        let (line, col) = line_col(self.text, written.value.start);
        // A value over several lines (an inline table, an array) is marked to its line's end.
        let len = value.split('\n').next().unwrap_or_default().trim_end().chars().count();
        d.at(line, col).with_source(line_at(self.text, written.value.start), len.max(1))
    }
}

/// The entry of `table` named `name` (the name as TOML reads it, without quotes).
fn entry<'t, 'a>(
    table: &'t DeTable<'a>,
    name: &str,
) -> Option<(&'t toml::Spanned<std::borrow::Cow<'a, str>>, &'t toml::Spanned<DeValue<'a>>)> {
    table.iter().find(|(k, _)| k.get_ref() == name)
}

/// Pushes onto `path` the keys down to the innermost entry of `table` whose key or
/// value holds byte `offset`; whether there is one. Each entry is visited once.
fn holding(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    for (k, v) in table.iter() {
        path.push(k.get_ref().to_string());
        // A `[section]`'s span is its header only: its keys are searched in any case.
        if let DeValue::Table(inner) = v.get_ref()
            && holding(inner, offset, path)
        {
            return true;
        }
        if k.span().contains(&offset) || v.span().contains(&offset) {
            return true;
        }
        path.pop();
    }
    false
}

/// Points `d` at `key` of `[section]` in the config `text` (see [`Spans`]).
pub(crate) fn point_at_key(d: Diagnostic, text: &str, section: &str, key: &str) -> Diagnostic {
    Spans::new(text).point(d, section, key)
}

/// The section and key whose line holds byte `offset`, guessed from the line's text:
/// for what the parser could not place (a repeated key).
fn key_on_line(text: &str, offset: usize) -> Option<(String, String)> {
    let offset = offset.min(text.len());
    let line = line_at(text, offset);
    let mut section = String::new();
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    for l in text[..line_start].lines().rev() {
        let t = l.trim();
        if t.starts_with('[') {
            section = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            break;
        }
    }
    if line.trim_start().starts_with('[') {
        return None;
    }
    let (_, key) = *keys_on_line(line).first()?;
    let key = key.trim_matches(['"', '\'']);
    Some(match key.rsplit_once('.') {
        Some((prefix, last)) => {
            let prefix = prefix.replace(['"', '\''], "");
            let full = if section.is_empty() { prefix } else { format!("{section}.{prefix}") };
            (full, last.trim_matches(['"', '\'']).to_string())
        }
        None => (section, key.to_string()),
    })
}

/// Turns a TOML error into a diagnostic in the editor's words: unknown keys get the
/// closest known one, values of the wrong type say what the key holds, and the value
/// of a secret is never shown.
fn toml_error(e: &toml::de::Error, text: &str, path: &Path) -> Diagnostic {
    let message = e.message().trim().to_string();
    let span = e.span();
    let spans = Spans::new(text);
    let place = span.as_ref().and_then(|s| spans.key_at(s.start).or_else(|| key_on_line(text, s.start)));
    let source = span.as_ref().map(|s| line_at(text, s.start));
    let secret = source.and_then(redacted);
    let unknown = message.strip_prefix("unknown field `").and_then(|r| r.split_once('`')).map(|(k, _)| k);
    let section = place.as_ref().map_or("", |(s, _)| s.as_str());

    let mut d = match (unknown, &place) {
        (Some(key), _) if is_secret_key(key) => {
            let what = if section == "smtp" && key.to_ascii_lowercase().contains("pass") {
                format!(
                    "`{key}` cannot be set in config.toml: the SMTP password is read from the environment or a file"
                )
            } else {
                format!("`{key}` is not a newsdesk setting, and secrets do not belong in config.toml")
            };
            Diagnostic::error("secret-in-config", format!("{what} (the value is not shown)")).help(secret_help(section))
        }
        (Some(_), _) => {
            let d = Diagnostic::error("bad-config", message.clone());
            match unknown_key_help(&message) {
                Some(help) => d.help(help),
                None => d,
            }
        }
        (None, Some((section, key))) if is_value_error(&message) => {
            let what = expectation(section, key);
            let found = span
                .as_ref()
                .map(|s| text[s.clone()].trim())
                .filter(|f| secret.is_none() && !f.is_empty() && f.chars().count() <= 40 && !f.contains('\n'));
            let message = match (what, found) {
                (Some(what), Some(found)) => format!("`{key}` must be {what}, not `{found}`"),
                (Some(what), None) => format!("`{key}` must be {what}"),
                (None, _) => plain_types(&message),
            };
            let inner = found.map(|f| f.trim_matches(['"', '\'']));
            let help = match (found, inner, what) {
                (Some(f), Some(n), _) if f.starts_with(['"', '\'']) && n.parse::<f64>().is_ok() => {
                    format!("numbers take no quotes: `{key} = {n}`")
                }
                (Some(f), _, Some(w)) if w.contains("in quotes") && !f.starts_with(['"', '\'', '{', '[']) => {
                    format!("text takes quotes: `{key} = \"{f}\"`")
                }
                _ if section.is_empty() => "see the README's config reference".to_string(),
                _ => format!("see `[{section}]` in the README's config reference"),
            };
            Diagnostic::error("bad-config-value", message).help(help)
        }
        _ => {
            let d = Diagnostic::error("bad-config", plain_types(&message));
            if message.contains("missing field") {
                d.help("see the README's config reference for the required keys")
            } else {
                d
            }
        }
    }
    .in_file(path);
    if let Some(span) = span {
        let src = line_at(text, span.start);
        if let Some((shown, col, len)) = &secret {
            // The message must not carry the value either (a parse error may quote it).
            let value = src.split_once('=').map_or("", |(_, v)| v.trim().trim_matches(['"', '\'']));
            if value.len() >= 2 && d.message.contains(value) {
                d.message = "this line cannot be read (its value is not shown: the key names a secret)".into();
            }
            d = d.at(line_col(text, span.start).0, *col).with_source(shown.clone(), *len);
            // A secret written on a line of its own: say where it goes instead.
            let key = place.as_ref().map_or("", |(_, k)| k.as_str());
            if !matches!(key, "password_env" | "password_file") {
                d.help = Some(secret_help(section));
            }
        } else {
            let (line, col) = line_col(text, span.start);
            let len = text[span.clone()].chars().count();
            d = d.at(line, col).with_source(src, len);
        }
    }
    d
}

/// Where a secret goes instead of the config text.
fn secret_help(section: &str) -> String {
    if section == "smtp" {
        PASSWORD_HELP.to_string()
    } else {
        "delete this line: newsdesk reads secrets only from the environment or from files (`[smtp] password_env` or `password_file` for the SMTP password, `[email.dkim] key_file` for the DKIM key)".to_string()
    }
}

/// Whether serde said a value has the wrong type or is out of the type's range.
fn is_value_error(message: &str) -> bool {
    message.starts_with("invalid type")
        || message.starts_with("invalid value")
        || message.starts_with("data did not match any variant")
        || message.contains("number overflowed")
}

/// serde's Rust type names in words, for a type error on a key newsdesk does not know.
fn plain_types(message: &str) -> String {
    let mut m = message.to_string();
    for (rust, plain) in [
        (" as i128", ""),
        ("expected usize", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a whole number between 1 and 65535"),
        ("expected f64", "expected a number"),
        ("expected a string", "expected text in quotes"),
        ("floating point", "decimal number"),
    ] {
        m = m.replace(rust, plain);
    }
    m
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

/// Builds a diagnostic pointing at `key` in `[section]` of the config file.
pub fn config_diagnostic(config: &Config, section: &str, key: &str, d: Diagnostic) -> Diagnostic {
    let d = d.in_file(&config.path);
    match std::fs::read_to_string(&config.path) {
        Ok(text) => point_at_key(d, &text, section, key),
        Err(_) => d,
    }
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

    /// The minimal config with `extra` appended.
    fn with(extra: &str) -> String {
        format!("[site]\ntitle = \"LWKD\"\nbase_url = \"https://lwkd.info\"\n{extra}\n")
    }

    fn errors(text: &str) -> Vec<Diagnostic> {
        parse(text, Path::new("/site/config.toml")).expect_err(text)
    }

    /// Everything a person or a script would see of these diagnostics.
    fn everything(ds: &[Diagnostic]) -> String {
        ds.iter().map(|d| format!("{}\n{}", d.render(None), serde_json::to_string(d).unwrap())).collect()
    }

    #[test]
    fn the_buttondown_key_goes_over_https_or_to_this_machine_only() {
        for (url, ok) in [
            ("https://api.buttondown.com/v1", true),
            ("http://127.0.0.1:8080/v1", true),
            ("http://[::1]:8080/v1", true),
            ("http://localhost:8080/v1", true),
            ("http://127.0.0.1.evil.example/v1", false),
            ("http://api.buttondown.com/v1", false),
            ("ftp://api.buttondown.com/v1", false),
            ("api.buttondown.com/v1", false),
        ] {
            let text = format!(
                "[site]\ntitle = \"LWKD\"\nbase_url = \"https://lwkd.info\"\n[email]\nfrom = \"a@example.org\"\ntransport = \"buttondown\"\n[buttondown]\napi_key_env = \"K\"\napi_url = \"{url}\"\n"
            );
            match parse(&text, Path::new("/site/config.toml")) {
                Ok(_) => assert!(ok, "{url} was accepted"),
                Err(ds) => {
                    assert!(!ok, "{url}: {ds:?}");
                    assert!(ds[0].message.contains("is not an https URL"), "{ds:?}");
                    assert_eq!(ds[0].line, 9, "the api_url line");
                }
            }
        }
    }

    #[test]
    fn a_secret_in_the_config_text_is_never_echoed() {
        for (extra, line) in [
            ("[smtp]\npassword = \"hunter2\"", 5),
            ("[smtp]\nhost = \"smtp.example.org\"\npassword = hunter2", 6),
            ("[smtp]\nPassword='hunter2'", 5),
            ("[smtp]\npassword = \"hunter2\"\npassword = \"hunter2\"", 6),
            ("[email]\nfrom = \"a@example.org\"\napi_key = \"hunter2\"", 6),
            ("[email]\nfrom = \"a@example.org\"\nsmtp_token = \"hunter2\"", 6),
            ("[subscribers]\nsecret = \"hunter2\"", 5),
            ("[smtp]\npassword_env = \"hunter2 and more\"", 5),
            ("[smtp]\npassword_env = 12345", 5),
            ("smtp = { host = \"x\", password = \"hunter2\" }", 4),
        ] {
            let ds = errors(&with(extra));
            let all = everything(&ds);
            assert!(!all.contains("hunter2") && !all.contains("12345"), "{extra:?} echoed the secret:\n{all}");
            assert!(ds.iter().any(|d| d.line == line), "{extra:?}: no error on line {line}:\n{all}");
        }
        let ds = errors(&with("[smtp]\npassword = \"hunter2\""));
        let d = &ds[0];
        assert_eq!((d.line, d.column), (5, 1), "{}", d.render(None));
        assert!(d.message.contains("`password`"), "{}", d.message);
        let help = d.help.as_deref().unwrap();
        assert!(help.contains("password_env") && help.contains("password_file"), "{help}");
        assert!(d.render(None).contains("5 | password = <hidden>"), "{}", d.render(None));
    }

    /// Every typed key, a value of the wrong type, and what the editor is told instead of
    /// serde's Rust types.
    const WORDING: &[(&str, &str, &str, &str)] = &[
        ("site", "title", "1", "`title` must be text in quotes"),
        ("site", "description", "1", "`description` must be text in quotes"),
        ("site", "base_url", "1", "`base_url` must be an absolute http(s) URL in quotes"),
        ("site", "language", "1", "`language` must be a language tag in quotes"),
        ("site", "timezone", "1", "`timezone` must be a timezone name in quotes"),
        ("site", "posts", "1", "`posts` must be a folder path in quotes"),
        ("site", "permalink", "1", "`permalink` must be a preset"),
        ("site", "author", "1", "`author` must be `\"Name <address>\"` or"),
        ("feeds", "limit", "\"x\"", "`limit` must be a whole number between 1 and 10000"),
        ("feeds", "limit", "1.5", "`limit` must be a whole number between 1 and 10000"),
        ("feeds", "limit", "-3", "`limit` must be a whole number between 1 and 10000"),
        ("feeds", "limit", "99999999999999999999", "`limit` must be a whole number between 1 and 10000"),
        ("feeds", "rss", "3", "`rss` must be a file name in quotes, `true` or `false`"),
        ("feeds", "atom", "3", "`atom` must be a file name in quotes, `true` or `false`"),
        ("feeds", "json", "3", "`json` must be a file name in quotes, `true` or `false`"),
        ("feeds", "id", "3", "`id` must be"),
        ("feeds", "hub", "3", "`hub` must be an http(s) URL in quotes"),
        ("email", "from", "1", "`from` must be a mail address in quotes"),
        ("email", "to", "1", "`to` must be a mail address in quotes"),
        ("email", "reply_to", "1", "`reply_to` must be a mail address in quotes"),
        ("email", "templates", "1", "`templates` must be a folder path in quotes"),
        ("email", "transport", "1", "`transport` must be one of \"smtp\", \"sendmail\", \"file\""),
        ("email", "file_dir", "1", "`file_dir` must be a folder path in quotes"),
        ("email", "sendmail", "1", "`sendmail` must be a program"),
        ("email", "list_id", "1", "`list_id` must be a list identifier in quotes"),
        ("email", "unsubscribe_url", "1", "`unsubscribe_url` must be an http(s) URL in quotes"),
        ("email", "unsubscribe_mailto", "1", "`unsubscribe_mailto` must be a mail address in quotes"),
        ("email", "dkim", "1", "`dkim` must be a section"),
        ("email.dkim", "domain", "1", "`domain` must be a domain name in quotes"),
        ("email.dkim", "selector", "1", "`selector` must be a DKIM selector in quotes"),
        ("email.dkim", "key_file", "1", "`key_file` must be a file path in quotes"),
        ("smtp", "host", "1", "`host` must be a host name in quotes"),
        ("smtp", "port", "\"x\"", "`port` must be a whole number between 1 and 65535"),
        ("smtp", "port", "70000", "`port` must be a whole number between 1 and 65535"),
        ("smtp", "security", "1", "`security` must be one of \"starttls\", \"tls\", \"none\""),
        ("smtp", "username", "1", "`username` must be text in quotes"),
        ("smtp", "password_env", "1", "`password_env` must be the name of an environment variable"),
        ("smtp", "password_file", "1", "`password_file` must be a file path in quotes"),
        ("smtp", "timeout_secs", "-1", "`timeout_secs` must be a whole number of seconds between 1 and 3600"),
        ("smtp", "connections", "\"4\"", "`connections` must be a whole number between 1 and 256"),
        ("smtp", "max_per_second", "\"x\"", "`max_per_second` must be a number of messages per second"),
        ("smtp", "max_per_hour", "-1", "`max_per_hour` must be a whole number, 0 or more"),
        ("smtp", "max_attempts", "5000000000", "`max_attempts` must be a whole number between 1 and 100"),
        ("smtp", "retry_delay_secs", "\"2s\"", "`retry_delay_secs` must be a number of seconds between 0 and 3600"),
        ("smtp", "ca_file", "1", "`ca_file` must be a file path in quotes"),
        ("smtp", "tls_roots", "1", "`tls_roots` must be `\"webpki\"` or `\"system\"`"),
        ("subscribers", "database", "1", "`database` must be a file path in quotes"),
        ("subscribers", "unsubscribe_url", "1", "`unsubscribe_url` must be an http(s) URL"),
        ("", "feeds", "1", "`feeds` must be a section"),
        ("", "email", "1", "`email` must be a section"),
        ("", "smtp", "1", "`smtp` must be a section"),
        ("", "subscribers", "1", "`subscribers` must be a section"),
        ("web", "listen", "1", "`listen` must be an address and port in quotes"),
        ("web", "public_url", "1", "`public_url` must be an http(s) URL in quotes"),
        ("web", "trusted_proxies", "1", "`trusted_proxies` must be a list of IP addresses or networks"),
        ("web", "templates", "1", "`templates` must be a folder path in quotes"),
        ("web", "confirm_hours", "\"x\"", "`confirm_hours` must be a whole number of hours between 1 and 8760"),
        ("", "web", "1", "`web` must be a section"),
        ("email", "return_path", "1", "`return_path` must be a mail address in quotes, `{token}` in it"),
        ("bounces", "soft_limit", "\"x\"", "`soft_limit` must be a whole number of issues between 1 and 100"),
        ("bounces", "archive", "1", "`archive` must be a folder path in quotes"),
        ("", "bounces", "1", "`bounces` must be a section"),
        ("bounces", "imap", "1", "`imap` must be a section"),
        ("", "new", "1", "`new` must be a section"),
        ("", "social", "1", "`social` must be a section"),
        ("", "buttondown", "1", "`buttondown` must be a section"),
        ("buttondown", "api_key_env", "1", "`api_key_env` must be the name of an environment variable in quotes"),
        ("buttondown", "api_key_file", "1", "`api_key_file` must be a file path in quotes"),
        ("buttondown", "api_url", "1", "`api_url` must be an https URL in quotes"),
        ("social", "template", "1", "`template` must be a file path in quotes"),
        ("social", "hashtags", "1", "`hashtags` must be a list of hashtags in quotes"),
        ("new", "template", "1", "`template` must be a file path in quotes"),
        ("new", "week_ends", "1", "`week_ends` must be a day of the week in quotes"),
        ("new", "publish_weekday", "1", "`publish_weekday` must be a day of the week in quotes"),
        ("new", "publish_time", "1", "`publish_time` must be a time of day in quotes"),
    ];

    #[test]
    fn the_imap_mailbox_is_checked_where_it_is_written() {
        let base = "[site]\ntitle = \"LWKD\"\nbase_url = \"https://lwkd.info\"\n[bounces.imap]\nhost = \"imap.example.org\"\nusername = \"b\"\n";
        let ds = errors(base);
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert_eq!(ds[0].code, "no-imap-password");
        let ok = format!("{base}password_env = \"NEWSDESK_IMAP_PASSWORD\"\n");
        let imap = parse(&ok, Path::new("config.toml")).unwrap().bounces.imap.unwrap();
        assert_eq!((imap.port, imap.mailbox.as_str(), imap.after.as_str()), (993, "INBOX", "seen"));
        let ds = errors(&format!("{ok}after = \"move\"\n"));
        assert!(ds[0].message.contains("needs `move_to`"), "{ds:?}");
        let ds = errors(&format!("{ok}after = \"archive\"\n"));
        assert!(ds[0].message.contains("is not one of"), "{ds:?}");
        assert_eq!(ds[0].line, 8, "the `after` line");
    }

    #[test]
    fn return_path_and_soft_limit_are_checked_at_their_line() {
        for (value, wanted) in [
            ("\"bounces+{token}@{token}.org\"", "has `{token}` more than once"),
            ("\"bounces@{token}.org\"", "has `{token}` in the domain"),
            ("\"not an address\"", "is not a mail address"),
            ("\"{token}@lwkd.example.org\"", "without its token is `@lwkd.example.org`"),
        ] {
            let (text, line) = config_with("email", "return_path", value);
            let ds = errors(&text);
            assert_eq!(ds.len(), 1, "{ds:?}");
            assert!(ds[0].message.contains(wanted), "{value}: {}", ds[0].message);
            assert_eq!((ds[0].code, ds[0].line), ("bad-return-path", line));
        }
        let (text, _) = config_with("email", "return_path", "\"bounces+{token}@lwkd.example.org\"");
        assert!(parse(&text, Path::new("config.toml")).is_ok());
        let (text, line) = config_with("bounces", "soft_limit", "0");
        let ds = errors(&text);
        assert!(ds[0].message.contains("`soft_limit` must be a whole number of issues between 1 and 100"));
        assert_eq!(ds[0].line, line);
        let config = parse(&config_with("bounces", "archive", "\"b\"").0, Path::new("config.toml")).unwrap();
        assert_eq!((config.bounces.soft_limit, config.bounces.archive.as_path()), (3, Path::new("b")));
    }

    #[test]
    fn web_proxies_and_confirm_hours_are_checked_at_their_line() {
        let (text, line) = config_with("web", "trusted_proxies", "[\"127.0.0.1\", \"10.0.0.0/8\", \"proxy.local\"]");
        let ds = errors(&text);
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert!(ds[0].message.contains("`proxy.local` in `trusted_proxies` is not an IP address"), "{}", ds[0].message);
        assert_eq!(ds[0].line, line);
        let (text, line) = config_with("web", "confirm_hours", "0");
        let ds = errors(&text);
        assert!(ds[0].message.contains("`confirm_hours` must be a whole number of hours between 1 and 8760"));
        assert_eq!(ds[0].line, line);
        let (text, _) = config_with("web", "trusted_proxies", "[\"127.0.0.1\", \"::1\", \"10.0.0.0/8\"]");
        let web = parse(&text, Path::new("config.toml")).unwrap().web.unwrap();
        assert_eq!(web.trusted.len(), 3);
        assert_eq!(web.confirm_hours, 168);
    }

    /// `key = value` placed in `section` of a config that is otherwise fine, and its line.
    fn config_with(section: &str, key: &str, value: &str) -> (String, usize) {
        let mut text = String::new();
        if section.is_empty() {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text.push_str("[site]\n");
        for (k, v) in [("title", "\"LWKD\""), ("base_url", "\"https://lwkd.info\"")] {
            if !(section == "site" && key == k) {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        match section {
            "" | "site" => {}
            "email.dkim" => text.push_str("[email]\nfrom = \"a@example.org\"\n[email.dkim]\n"),
            "email" if key != "from" => text.push_str("[email]\nfrom = \"a@example.org\"\n"),
            s => text.push_str(&format!("[{s}]\n")),
        }
        if section.is_empty() {
            return (text, 1);
        }
        text.push_str(&format!("{key} = {value}\n"));
        let line = text.lines().count();
        (text, line)
    }

    #[test]
    fn type_errors_say_what_is_expected_in_the_editors_words() {
        for (section, key, value, wording) in WORDING {
            let (text, line) = config_with(section, key, value);
            let ds = errors(&text);
            let d = &ds[0];
            let shown = d.render(None);
            assert!(d.message.contains(wording), "[{section}] {key} = {value}: {shown}");
            for rust in ["usize", "u16", "u32", "u64", "f64", "i128", "untagged", "struct", "expected a string"] {
                assert!(!d.message.contains(rust), "[{section}] {key} = {value} speaks Rust: {shown}");
            }
            assert_eq!(d.line, line, "[{section}] {key} = {value}: {shown}");
            assert_eq!(d.code, "bad-config-value", "{shown}");
        }
    }

    #[test]
    fn every_known_key_has_editor_wording() {
        // serde lists the known keys of a section in its unknown-field error.
        for section in
            ["site", "feeds", "email", "email.dkim", "smtp", "subscribers", "web", "bounces", "new", "social", ""]
        {
            let (text, _) = config_with(section, "zzz_unknown", "1");
            let ds = errors(&text);
            let message = ds.iter().map(|d| d.help.clone().unwrap_or_default()).collect::<String>();
            let known: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
            assert!(!known.is_empty(), "[{section}]: {message}");
            for k in known {
                assert!(
                    WORDING.iter().any(|(s, key, _, _)| *s == section && *key == k)
                        || (section.is_empty() && k == "site"),
                    "[{section}] {k} has no wording in the test table"
                );
                assert!(expectation(section, k).is_some(), "[{section}] {k} has no wording in KEYS");
            }
        }
    }

    #[test]
    fn values_out_of_range_are_errors_at_their_line() {
        for (section, key, value, wording) in [
            ("feeds", "limit", "0", "`limit` must be a whole number between 1 and 10000"),
            ("feeds", "limit", "10001", "`limit` must be a whole number between 1 and 10000"),
            ("smtp", "port", "0", "`port` must be a whole number between 1 and 65535"),
            ("smtp", "timeout_secs", "0", "between 1 and 3600"),
            ("smtp", "connections", "0", "between 1 and 256"),
            ("smtp", "max_attempts", "0", "between 1 and 100"),
            ("smtp", "max_per_second", "-1.5", "0 or more"),
            ("smtp", "max_per_second", "nan", "0 or more"),
            ("smtp", "retry_delay_secs", "-1", "between 0 and 3600"),
        ] {
            let (text, line) = config_with(section, key, value);
            let ds = errors(&text);
            assert_eq!(ds.len(), 1, "{text}");
            assert!(ds[0].message.contains(wording), "{key} = {value}: {}", ds[0].render(None));
            assert_eq!(ds[0].line, line, "{key} = {value}: {}", ds[0].render(None));
        }
        for (section, key, value) in
            [("feeds", "limit", "10000"), ("smtp", "port", "65535"), ("smtp", "max_per_hour", "0")]
        {
            let (text, _) = config_with(section, key, value);
            parse(&text, Path::new("config.toml")).unwrap_or_else(|d| panic!("{key} = {value}: {d:?}"));
        }
    }

    #[test]
    fn smtp_and_subscriber_settings_are_checked_as_the_send_paths_check_them() {
        let cases = [
            ("[smtp]\nsecurity = \"ssl\"", 5, "bad-security", "unknown SMTP security `ssl`"),
            (
                "[smtp]\nhost = \"smtp.example.org\"\nsecurity = \"none\"",
                6,
                "insecure-smtp",
                "`security = \"none\"` would send the message and password unencrypted to `smtp.example.org`",
            ),
            ("[smtp]\nhost = \"  \"", 5, "bad-smtp-host", "`host` is empty"),
            (
                "[smtp]\nusername = \"lwkd\"",
                5,
                "no-smtp-password",
                "`username` is set under [smtp] but no password source is",
            ),
            (
                "[subscribers]\nunsubscribe_url = \"https://lwkd.example.org/unsubscribe\"",
                5,
                "no-unsubscribe-url",
                "has no `{token}`",
            ),
            (
                "[subscribers]\nunsubscribe_url = \"lwkd.example.org/u/{token}\"",
                5,
                "no-unsubscribe-url",
                "is not an http(s) URL",
            ),
        ];
        for (extra, line, code, message) in cases {
            let ds = errors(&with(extra));
            assert_eq!(ds.len(), 1, "{extra}: {ds:?}");
            let shown = ds[0].render(None);
            assert_eq!((ds[0].code, ds[0].line), (code, line), "{extra}: {shown}");
            assert!(ds[0].message.contains(message), "{extra}: {shown}");
            assert!(ds[0].help.is_some(), "{shown}");
        }
        for ok in [
            "[smtp]\nhost = \"localhost\"\nsecurity = \"none\"",
            "[smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"",
            "[smtp]\nhost = \"[::1]\"\nsecurity = \"none\"",
            "[smtp]\nhost = \"smtp.example.org\"\nsecurity = \"tls\"\nport = 465",
            "[smtp]\nusername = \"lwkd\"\npassword_env = \"NEWSDESK_SMTP_PASSWORD\"",
            "[smtp]\nusername = \"lwkd\"\npassword_file = \"secrets/pw\"",
            "[subscribers]\nunsubscribe_url = \"https://lwkd.example.org/u/{token}\"",
        ] {
            parse(&with(ok), Path::new("config.toml")).unwrap_or_else(|d| panic!("{ok}: {d:?}"));
        }
    }

    const SITE: &str = "[site]\ntitle = \"LWKD\"\nbase_url = \"https://lwkd.info\"\n";

    /// Every way TOML lets one write `security` of `[smtp]`: under the header, as a
    /// dotted key at the top, in an inline table (on one line or several), quoted.
    fn security_spellings(value: &str) -> Vec<String> {
        let v = value;
        vec![
            format!("{SITE}[smtp]\nsecurity = {v}\n"),
            format!("smtp.security = {v}\n{SITE}"),
            format!("smtp . \"security\" = {v}\n{SITE}"),
            format!("smtp = {{ host = \"h\", security = {v} }}\n{SITE}"),
            format!("smtp = {{\n  host = \"h\",\n  security = {v},\n}}\n{SITE}"),
            format!("{SITE}[smtp]\n\"security\" = {v}  # not a mode\n"),
            format!("{SITE}[smtp]\n'security'={v}\n"),
            format!("{SITE}[smtp]\nhost = 'security = {v}'\n  security   =   {v}\n"),
            format!("{SITE}[ smtp ]\nsecurity = {v}\n"),
        ]
    }

    /// Line, column and length of the last `value` in `text`, as a diagnostic counts them.
    fn last(text: &str, value: &str) -> (usize, usize, usize) {
        let (line, column) = line_col(text, text.rfind(value).unwrap());
        (line, column, value.chars().count())
    }

    #[test]
    fn checks_point_at_the_value_however_the_key_is_spelled() {
        for text in security_spellings("\"bogus\"") {
            let ds = errors(&text);
            assert_eq!(ds.len(), 1, "{text}\n{}", everything(&ds));
            let d = &ds[0];
            assert_eq!(d.code, "bad-security", "{text}");
            assert_eq!((d.line, d.column, d.span_len), last(&text, "\"bogus\""), "{text}\n{}", d.render(None));
            assert_eq!(d.source_line.as_deref(), text.lines().nth(d.line - 1), "{text}");
        }
    }

    #[test]
    fn type_errors_point_at_the_value_however_the_key_is_spelled() {
        for text in security_spellings("1") {
            let ds = errors(&text);
            assert_eq!(ds.len(), 1, "{text}\n{}", everything(&ds));
            let d = &ds[0];
            assert!(d.message.starts_with("`security` must be one of"), "{text}\n{}", d.render(None));
            assert_eq!((d.line, d.column, d.span_len), last(&text, "1"), "{text}\n{}", d.render(None));
        }
        for text in [
            format!(
                "{SITE}[email]\nfrom = \"a@x.org\"\ndkim.domain = \"d\"\ndkim.selector = 1\ndkim.key_file = \"k\"\n"
            ),
            format!("{SITE}[email]\nfrom = \"a@x.org\"\ndkim = {{ domain = \"d\", selector = 1, key_file = \"k\" }}\n"),
            format!(
                "email = {{ from = \"a@x.org\", dkim = {{ domain = \"d\", selector = 1, key_file = \"k\" }} }}\n{SITE}"
            ),
        ] {
            let ds = errors(&text);
            let d = &ds[0];
            assert!(d.message.starts_with("`selector` must be a DKIM selector"), "{text}\n{}", d.render(None));
            assert_eq!((d.line, d.column, d.span_len), last(&text, "1"), "{text}\n{}", d.render(None));
        }
    }

    #[test]
    fn keys_are_found_in_nested_tables_however_they_are_spelled() {
        let d = || Diagnostic::error("x", "m");
        for text in [
            "[email]\nfrom = \"a@x.org\"\n[email.dkim]\nselector = \"s 1\"\n",
            "[email]\nfrom = \"a@x.org\"\ndkim.selector = \"s 1\"\n",
            "[email]\ndkim = { domain = \"x.org\", selector = \"s 1\" }\n",
            "email.dkim.selector = \"s 1\"\n",
            "email = { dkim = { \"selector\" = \"s 1\" } }\n",
            "[email.'dkim']\n\"selector\" = \"s 1\"\n",
        ] {
            let p = point_at_key(d(), text, "email.dkim", "selector");
            assert_eq!((p.line, p.column, p.span_len), last(text, "\"s 1\""), "{text}\n{}", p.render(None));
            assert_eq!(p.source_line.as_deref(), text.lines().nth(p.line - 1));
        }
        // Not written, or written elsewhere: no place rather than a wrong one.
        for text in ["[email]\nselector = \"s\"\n", "[dkim]\nselector = \"s\"\n", "selector = \"s\"\n", "not toml ="] {
            let p = point_at_key(d(), text, "email.dkim", "selector");
            assert_eq!((p.line, p.source_line), (0, None), "{text}");
        }
    }

    #[test]
    fn deeply_nested_keys_are_an_error_not_a_crash() {
        for text in [
            format!("{}x = 1\n", "a.".repeat(50_000)),
            format!("a = {}1{}\n", "{ b = ".repeat(50_000), " }".repeat(50_000)),
            format!("{SITE}[smtp]\nsecurity = {}1{}\n", "[".repeat(50_000), "]".repeat(50_000)),
        ] {
            let ds = errors(&text);
            assert!(ds.iter().all(|d| d.line <= 5 && d.render(None).len() < 2000), "{}", everything(&ds));
        }
    }

    #[test]
    fn a_secret_is_hidden_however_the_key_is_spelled() {
        for text in [
            format!("smtp = {{ username = \"u\", password_env = \"hunter2 pw\" }}\n{SITE}"),
            format!("smtp.password_env = \"hunter2 pw\"\n{SITE}"),
            format!("{SITE}[smtp]\n\"password_env\" = \"hunter2 pw\"\n"),
        ] {
            let ds = errors(&text);
            let all = everything(&ds);
            assert_eq!(ds[0].code, "bad-password-env", "{text}\n{all}");
            assert!(!all.contains("hunter2"), "{text} echoed the secret:\n{all}");
            assert_eq!(ds[0].line, last(&text, "hunter2").0, "{all}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]", " localhost "] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["smtp.example.org", "10.0.0.1", "0.0.0.0", "localhost.example.org", "[::2]", ""] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
