//! The digest: one issue rendered as mail, once, then turned into a message for each
//! recipient.
//!
//! Rendering the templates and inlining the CSS is the expensive part, so
//! [`Digest::render`] does it once, with marker strings where per-recipient values go
//! (`subscriber.name`, `unsubscribe_url`, `unsubscribe_mailto`). [`Digest::message_for`]
//! only substitutes those (HTML-escaped in the HTML part) and builds the headers, so a
//! send to many subscribers costs one render plus cheap string work per message.
//! Values that are the same for every recipient can be tested in templates
//! (`{% if unsubscribe_url %}`); the per-recipient ones can only be printed.

use super::settings::Settings;
use super::templates::{self, Templates};
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::render::RenderedPost;
use crate::render::text::render_text;
use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Address, address::Envelope};
use minijinja::Value;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;

const OPEN: char = '\u{E001}';
const CLOSE: char = '\u{E002}';

/// The per-recipient values, as the markers the templates print.
const SLOTS: [&str; 5] =
    ["subscriber.name", "unsubscribe_url", "unsubscribe_page", "unsubscribe_mailto", "unsubscribe_address"];

fn marker(slot: &str) -> String {
    format!("{OPEN}{slot}{CLOSE}")
}

/// Who one message is for: its `To`, its envelope recipients and the values that differ
/// per recipient. For issue-level sends it is the list address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The `To` header.
    pub to: Mailbox,
    /// `RCPT TO` addresses (usually just `to`).
    pub envelope_to: Vec<Address>,
    /// `None`: the message gets the issue's own Message-ID. `Some(key)`: a Message-ID
    /// stable per (issue, key), so each recipient's copy is distinct.
    pub id_key: Option<String>,
    /// `subscriber.name` in the templates; empty for a list.
    pub name: String,
    /// http(s) unsubscribe link (RFC 8058 one-click when https).
    pub unsubscribe_url: Option<String>,
    /// `mailto:` unsubscribe address.
    pub unsubscribe_mailto: Option<String>,
}

/// The texts of one recipient's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parts {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// One issue, rendered with the templates and CSS inlined, ready for [`Digest::message_for`].
#[derive(Debug)]
pub struct Digest {
    /// The post's stable id (its feed id): the Message-ID and the ledger derive from it.
    pub issue_id: String,
    pub slug: String,
    pub title: String,
    pub post_url: String,
    pub post_source: PathBuf,
    pub settings: Settings,
    /// The `Date` header.
    pub date: DateTime<Utc>,
    pub templates: Templates,
    /// Links of the text part, numbered as in the text.
    pub text_links: Vec<String>,
    subject: String,
    html: String,
    text: String,
}

/// The `Date` of a digest rendered now: `SOURCE_DATE_EPOCH` when set (reproducible
/// output, as for builds), else the clock.
pub fn render_time() -> DateTime<Utc> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .unwrap_or_else(Utc::now)
}

impl Digest {
    /// Renders `rendered` (the issue's body) with the config's templates. Errors (config,
    /// templates, CSS) come back as diagnostics naming the file and line.
    pub fn render(
        config: &Config,
        settings: Settings,
        rendered: &RenderedPost,
        date: DateTime<Utc>,
    ) -> Result<Digest, Vec<Diagnostic>> {
        let templates = templates::load(&settings.templates_dir, settings.templates_default, &config.path)?;
        let post = rendered.post;
        let base = url::Url::parse(&post.url).ok();
        let plain = render_text(&rendered.markdown, base.as_ref());

        let mut ctx: BTreeMap<&str, Value> = BTreeMap::new();
        ctx.insert("site", ser(&config.site));
        let mut post_value = serde_json::to_value(post).unwrap_or_default();
        if let Some(obj) = post_value.as_object_mut() {
            obj.insert("summary".into(), rendered.summary_text.clone().into());
            obj.insert("summary_html".into(), rendered.summary_html.clone().into());
        }
        ctx.insert("post", ser(&post_value));
        ctx.insert("html", Value::from_safe_string(rendered.html.clone()));
        ctx.insert("text", Value::from(plain.with_references()));
        ctx.insert("toc", ser(&rendered.toc));
        ctx.insert(
            "sender",
            ser(BTreeMap::from([
                ("name", settings.from.name.clone().unwrap_or_default()),
                ("email", settings.from.email.to_string()),
            ])),
        );
        ctx.insert(
            "list",
            ser(BTreeMap::from([
                ("address", settings.to.as_ref().map(|m| m.email.to_string())),
                ("id", Some(settings.list_id.clone())),
            ])),
        );
        ctx.insert("feed_url", Value::from(feed_url(config)));
        // Whether a kind of unsubscribe target exists is the same for every recipient
        // (templates may test it); the values are per recipient (templates print them).
        if settings.unsubscribe_url.is_some() || settings.unsubscribe_mailto.is_some() {
            ctx.insert("unsubscribe_url", Value::from(marker("unsubscribe_url")));
        }
        if settings.unsubscribe_url.is_some() {
            ctx.insert("unsubscribe_page", Value::from(marker("unsubscribe_page")));
        }
        if settings.unsubscribe_mailto.is_some() {
            ctx.insert("unsubscribe_mailto", Value::from(marker("unsubscribe_mailto")));
            ctx.insert("unsubscribe_address", Value::from(marker("unsubscribe_address")));
        }
        ctx.insert("subscriber", ser(BTreeMap::from([("name", marker("subscriber.name"))])));

        let mut problems = Vec::new();
        let subject = match templates.render("subject.txt", &ser(&ctx)) {
            Ok(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Err(d) => {
                problems.push(d);
                String::new()
            }
        };
        ctx.insert("subject", Value::from(subject.clone()));
        let context = ser(&ctx);
        let html = templates.render("digest.html", &context).map_err(|d| problems.push(d)).unwrap_or_default();
        let text = templates.render("digest.txt", &context).map_err(|d| problems.push(d)).unwrap_or_default();
        if !problems.is_empty() {
            return Err(problems);
        }
        let html = inline_css(&html).map_err(|e| {
            let file = templates.file("digest.html").and_then(|f| f.path.clone());
            let mut d = Diagnostic::error("css-error", format!("cannot inline the CSS of the HTML part: {e}"))
                .help("check the `<style>` block of digest.html");
            if let Some(f) = file {
                d = d.in_file(f);
            }
            vec![d]
        })?;
        Ok(Digest {
            issue_id: post.id.clone(),
            slug: post.slug.clone(),
            title: post.title.clone(),
            post_url: post.url.clone(),
            post_source: post.source.clone(),
            settings,
            date,
            templates,
            text_links: plain.links,
            subject,
            html,
            text: normalize_text(&text),
        })
    }

    /// The list address as a recipient, with the configured unsubscribe targets.
    pub fn list_recipient(&self) -> Option<Recipient> {
        let to = self.settings.to.clone()?;
        Some(Recipient {
            envelope_to: vec![to.email.clone()],
            to,
            id_key: None,
            name: String::new(),
            unsubscribe_url: self.settings.unsubscribe_url.clone(),
            unsubscribe_mailto: self.settings.unsubscribe_mailto.clone(),
        })
    }

    /// A test send to `address`: the list's message (same `To`, headers and body) with
    /// `address` as the only envelope recipient. Its Message-ID is its own, so the
    /// editor's test copy never makes a mail client drop the real one as a duplicate.
    pub fn test_recipient(&self, address: Address) -> Recipient {
        let mut r = self.list_recipient().unwrap_or_else(|| Recipient {
            to: Mailbox::new(None, address.clone()),
            envelope_to: Vec::new(),
            id_key: None,
            name: String::new(),
            unsubscribe_url: self.settings.unsubscribe_url.clone(),
            unsubscribe_mailto: self.settings.unsubscribe_mailto.clone(),
        });
        r.id_key = Some(format!("test:{}", address.to_string().to_ascii_lowercase()));
        r.envelope_to = vec![address];
        r
    }

    /// `<slug.hash@domain>`: the same on every render of this issue (and per recipient
    /// key), so a re-sent or re-rendered issue threads and deduplicates in mail clients.
    pub fn message_id_for(&self, r: &Recipient) -> String {
        let slug: String = self
            .slug
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
            .collect();
        let issue = short_hash(&self.issue_id, 12);
        let domain = self.settings.id_domain();
        match &r.id_key {
            None => format!("<{slug}.{issue}@{domain}>"),
            Some(key) => format!("<{slug}.{issue}.{}@{domain}>", short_hash(key, 12)),
        }
    }

    /// Subject, text and HTML with the recipient's values filled in.
    pub fn parts_for(&self, r: &Recipient) -> Parts {
        Parts {
            subject: fill(&self.subject, r, false),
            text: fill(&self.text, r, false),
            html: fill(&self.html, r, true),
        }
    }

    /// The complete message for `r`: headers, `multipart/alternative` (text, then HTML).
    pub fn message_for(&self, r: &Recipient) -> Result<Message, lettre::error::Error> {
        let parts = self.parts_for(r);
        self.build_message(r, &parts)
    }

    /// The message as it goes over the wire.
    pub fn formatted(&self, r: &Recipient) -> Result<Vec<u8>, lettre::error::Error> {
        self.message_for(r).map(|m| m.formatted())
    }

    /// The `List-Unsubscribe` value for `r`, if it has an unsubscribe target.
    pub fn list_unsubscribe(r: &Recipient) -> Option<String> {
        let targets: Vec<String> =
            [&r.unsubscribe_mailto, &r.unsubscribe_url].into_iter().flatten().map(|t| format!("<{t}>")).collect();
        (!targets.is_empty()).then(|| targets.join(", "))
    }

    fn build_message(&self, r: &Recipient, parts: &Parts) -> Result<Message, lettre::error::Error> {
        let s = &self.settings;
        let message_id = self.message_id_for(r);
        let mut b = Message::builder()
            .from(s.from.clone())
            .to(r.to.clone())
            .subject(parts.subject.clone())
            .date(self.date.into())
            .message_id(Some(message_id))
            .raw_header(header("List-Id", &s.list_id))
            .raw_header(header("List-Archive", &format!("<{}>", self.post_url)))
            .envelope(Envelope::new(Some(s.from.email.clone()), r.envelope_to.clone())?);
        if let Some(reply_to) = &s.reply_to {
            b = b.reply_to(reply_to.clone());
        }
        if let Some(value) = Self::list_unsubscribe(r) {
            b = b.raw_header(header("List-Unsubscribe", &value));
            if r.unsubscribe_url.as_deref().is_some_and(|u| u.starts_with("https://")) {
                b = b.raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"));
            }
        }
        // A boundary made from the content keeps the bytes the same on every render (and
        // the same for every recipient whose parts are the same).
        let boundary = format!("=_{}", short_hash(&format!("{}\n{}", parts.text, parts.html), 32));
        let body = MultiPart::alternative()
            .boundary(boundary)
            .singlepart(SinglePart::plain(parts.text.clone()))
            .singlepart(SinglePart::html(parts.html.clone()));
        Ok(b.multipart(body).expect("From is set, so the message is complete"))
    }
}

fn ser<T: Serialize>(value: T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

fn header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

/// The first `len` hex digits of SHA-256: stable across versions and platforms.
fn short_hash(s: &str, len: usize) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect::<String>()[..len].to_string()
}

/// The site's feed (Atom preferred, as jekyll-feed serves), absolute.
pub fn feed_url(config: &Config) -> String {
    let name = config.feeds.atom().or_else(|| config.feeds.rss()).or_else(|| config.feeds.json());
    config.site.absolute(&name.unwrap_or_else(|| "feed.xml".to_string()))
}

/// Substitutes the per-recipient markers; `html` escapes the values.
fn fill(s: &str, r: &Recipient, html: bool) -> String {
    if !s.contains(OPEN) {
        return s.to_string();
    }
    let mut out = s.to_string();
    for slot in SLOTS {
        let mailto = r.unsubscribe_mailto.clone().unwrap_or_default();
        let value = match slot {
            "subscriber.name" => r.name.clone(),
            "unsubscribe_url" => r.unsubscribe_url.clone().unwrap_or_else(|| mailto.clone()),
            "unsubscribe_page" => r.unsubscribe_url.clone().unwrap_or_default(),
            "unsubscribe_mailto" => mailto,
            _ => {
                let bare = mailto.strip_prefix("mailto:").unwrap_or(&mailto);
                bare.split('?').next().unwrap_or_default().to_string()
            }
        };
        let value = if html { escape_html(&value) } else { value };
        out = out.replace(&marker(slot), &value);
    }
    out
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Inlines the first `<style>` rules into `style=""` attributes; `@media` rules stay in
/// one `<style>` block (clients that support them read it, the others ignore it).
pub fn inline_css(html: &str) -> Result<String, css_inline::InlineError> {
    let inliner = css_inline::CSSInliner::options()
        .keep_at_rules(true)
        .load_remote_stylesheets(false)
        .apply_width_attributes(true)
        .build();
    inliner.inline(html)
}

/// Text part: LF line ends (lettre makes them CRLF), no trailing blank lines.
fn normalize_text(s: &str) -> String {
    let mut out = s.replace("\r\n", "\n");
    while out.ends_with("\n\n") {
        out.pop();
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_filled_and_escaped_for_html() {
        let r = Recipient {
            to: "list@example.org".parse().unwrap(),
            envelope_to: vec![],
            id_key: None,
            name: "Ann & Bob".into(),
            unsubscribe_url: Some("https://x.org/u?a=1&b=2".into()),
            unsubscribe_mailto: None,
        };
        let html = format!("<a href=\"{}\">{}</a>", marker("unsubscribe_url"), marker("subscriber.name"));
        assert_eq!(fill(&html, &r, true), "<a href=\"https://x.org/u?a=1&amp;b=2\">Ann &amp; Bob</a>");
        assert_eq!(fill(&marker("unsubscribe_url"), &r, false), "https://x.org/u?a=1&b=2");
    }

    #[test]
    fn css_is_inlined_and_media_queries_kept() {
        let html = "<html><head><style>p { color: red; } @media (max-width: 600px) { p { color: blue !important; } }</style></head><body><p>x</p></body></html>";
        let out = inline_css(html).unwrap();
        assert!(out.contains(r#"<p style="color: red;">x</p>"#), "{out}");
        assert!(out.contains("@media (max-width: 600px)"), "{out}");
        assert_eq!(out.matches("<style").count(), 1, "{out}");
    }
}
