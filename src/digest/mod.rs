//! The digest: one issue rendered as mail, once, then turned into a message for each
//! recipient.
//!
//! Rendering the templates and inlining the CSS is the expensive part, so
//! [`Digest::render`] does it once, with marker strings where per-recipient values go
//! (`subscriber.name`, `unsubscribe_url`, `unsubscribe_mailto`), splits the parts at
//! them and quoted-printable-encodes the text between them once (`splice`).
//! [`Digest::message_for`] only encodes the recipient's values (HTML-escaped in the HTML
//! part), splices them in and builds the headers, so a send to many subscribers costs one
//! render plus a few microseconds per message.
//! Values that are the same for every recipient can be tested in templates
//! (`{% if unsubscribe_url %}`); the per-recipient ones can only be printed.

pub mod confirmation;
pub mod lint;
pub mod settings;
mod splice;
pub mod templates;

use crate::config::Config;
use crate::diag::Diagnostic;
use crate::render::RenderedPost;
use crate::render::text::render_text;
use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, address::Envelope};
use minijinja::Value;
use serde::Serialize;
use settings::MailSettings;
use sha2::{Digest as _, Sha256};
use splice::Spliced;
use std::collections::BTreeMap;
use std::path::PathBuf;
use templates::Templates;

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
    /// `MAIL FROM` when it is not the `From` address: a subscriber's VERP bounce
    /// address (`[email] return_path`).
    pub envelope_from: Option<Address>,
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
    pub settings: MailSettings,
    /// The `Date` header.
    pub date: DateTime<Utc>,
    pub templates: Templates,
    /// Links of the text part, numbered as in the text.
    pub text_links: Vec<String>,
    subject: Spliced,
    html: Spliced,
    text: Spliced,
    /// SHA-256 (hex) of the text and HTML with their markers: with the recipient's
    /// values, what the MIME boundary is made from.
    content_hash: String,
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
        settings: MailSettings,
        rendered: &RenderedPost,
        date: DateTime<Utc>,
    ) -> Result<Digest, Vec<Diagnostic>> {
        let post = rendered.post;
        let errors = rendered.diagnostics.iter().filter(|d| d.is_error()).count();
        if errors > 0 {
            return Err(vec![
                Diagnostic::error(
                    "post-has-errors",
                    format!(
                        "the issue has {errors} error{} in its body: it is not rendered as mail",
                        if errors == 1 { "" } else { "s" }
                    ),
                )
                .in_file(&post.source)
                .help("fix the errors reported for this post (`newsdesk check` lists them), then try again"),
            ]);
        }
        let templates = templates::load(&settings.templates_dir, settings.templates_default, &config.path)?;
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
        // Mail to one subscriber of newsdesk's list, not to a list address: templates say
        // why the reader gets it accordingly.
        ctx.insert("subscriber_send", Value::from(settings.subscriber_send));

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
        // The last guard: no character XML forbids in any part (the loader and the
        // renderer drop those of posts; templates and the config may still hold some).
        let (subject, html) = (crate::chars::stripped(&subject), crate::chars::stripped(&html));
        let text = normalize_text(&crate::chars::strip(&text));
        let content_hash = hex(&Sha256::digest(format!("{text}\n{html}").as_bytes()));
        let markers = SLOTS.map(marker);
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
            subject: Spliced::new(&subject, &markers, OPEN, false),
            html: Spliced::new(&html, &markers, OPEN, true),
            text: Spliced::new(&text, &markers, OPEN, true),
            content_hash,
        })
    }

    /// The list address as a recipient, with the configured unsubscribe targets.
    pub fn list_recipient(&self) -> Option<Recipient> {
        let to = self.settings.to.clone()?;
        Some(Recipient {
            envelope_to: vec![to.email.clone()],
            envelope_from: self.settings.bounce_address.clone(),
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
            envelope_from: self.settings.bounce_address.clone(),
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
        let values = slot_values(r);
        Parts {
            subject: self.subject.fill(&values),
            text: self.text.fill(&values),
            html: self.html.fill(&values.map(|v| escape_html(&v))),
        }
    }

    /// The complete message for `r`: headers, `multipart/alternative` (text, then HTML).
    ///
    /// The bodies are spliced from the literal segments quoted-printable-encoded once in
    /// [`Digest::render`] and the recipient's values, encoded here (see `splice`).
    pub fn message_for(&self, r: &Recipient) -> Result<Message, lettre::error::Error> {
        let values = slot_values(r);
        let escaped = values.clone().map(|v| escape_html(&v));
        let subject = self.subject.fill(&values);
        let text = Body::dangerous_pre_encoded(self.text.encoded(&values), ContentTransferEncoding::QuotedPrintable);
        let html = Body::dangerous_pre_encoded(self.html.encoded(&escaped), ContentTransferEncoding::QuotedPrintable);
        // The boundary is made from the content (the issue's, hashed once, and the values
        // filled in), so the bytes are the same on every render and for every recipient
        // whose parts are the same. `=_` never occurs in quoted-printable output (`=` is
        // always followed by two hex digits or a line end), so neither does the boundary.
        let mut key = self.content_hash.clone();
        for (n, value) in values.iter().enumerate() {
            if self.text.uses(n) || self.html.uses(n) {
                key.push('\n');
                key.push_str(value);
            }
        }
        let boundary = format!("=_{}", short_hash(&key, 32));
        self.build_message(r, subject, boundary, text, html)
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

    fn build_message(
        &self,
        r: &Recipient,
        subject: String,
        boundary: String,
        text: Body,
        html: Body,
    ) -> Result<Message, lettre::error::Error> {
        let s = &self.settings;
        let message_id = self.message_id_for(r);
        let mut b = Message::builder()
            .from(s.from.clone())
            .to(r.to.clone())
            .subject(subject)
            .date(self.date.into())
            .message_id(Some(message_id))
            .raw_header(header("List-Id", &s.list_id))
            .raw_header(header("List-Archive", &format!("<{}>", self.post_url)))
            .envelope(Envelope::new(
                Some(r.envelope_from.clone().unwrap_or_else(|| s.from.email.clone())),
                r.envelope_to.clone(),
            )?);
        if let Some(reply_to) = &s.reply_to {
            b = b.reply_to(reply_to.clone());
        }
        if let Some(value) = Self::list_unsubscribe(r) {
            b = b.raw_header(header("List-Unsubscribe", &value));
            if r.unsubscribe_url.as_deref().is_some_and(|u| u.starts_with("https://")) {
                b = b.raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"));
            }
        }
        let body = MultiPart::alternative()
            .boundary(boundary)
            .singlepart(SinglePart::plain(text))
            .singlepart(SinglePart::html(html));
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
    let mut h = hex(&Sha256::digest(s.as_bytes()));
    h.truncate(len);
    h
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// The site's feed (Atom preferred, as jekyll-feed serves), absolute.
pub fn feed_url(config: &Config) -> String {
    let name = config.feeds.atom().or_else(|| config.feeds.rss()).or_else(|| config.feeds.json());
    config.site.absolute(&name.unwrap_or_else(|| "feed.xml".to_string()))
}

/// The values of [`SLOTS`] for `r`, in that order (not escaped).
fn slot_values(r: &Recipient) -> [String; 5] {
    let mailto = r.unsubscribe_mailto.clone().unwrap_or_default();
    let bare = mailto.strip_prefix("mailto:").unwrap_or(&mailto);
    let address = bare.split('?').next().unwrap_or_default().to_string();
    [
        crate::chars::stripped(&r.name),
        r.unsubscribe_url.clone().unwrap_or_else(|| mailto.clone()),
        r.unsubscribe_url.clone().unwrap_or_default(),
        mailto,
        address,
    ]
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
            envelope_from: None,
            id_key: None,
            name: "Ann & Bob".into(),
            unsubscribe_url: Some("https://x.org/u?a=1&b=2".into()),
            unsubscribe_mailto: None,
        };
        let html = format!("<a href=\"{}\">{}</a>", marker("unsubscribe_url"), marker("subscriber.name"));
        assert_eq!(fill(&html, &r, true), "<a href=\"https://x.org/u?a=1&amp;b=2\">Ann &amp; Bob</a>");
        assert_eq!(fill(&marker("unsubscribe_url"), &r, false), "https://x.org/u?a=1&b=2");
    }

    fn fill(s: &str, r: &Recipient, html: bool) -> String {
        let values = slot_values(r);
        let values = if html { values.map(|v| escape_html(&v)) } else { values };
        Spliced::new(s, &SLOTS.map(marker), OPEN, false).fill(&values)
    }

    /// The substitution before splicing (five `replace` passes): the reference.
    fn old_fill(s: &str, r: &Recipient, html: bool) -> String {
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

    /// The message as built before splicing: lettre encodes the filled-in `String`s.
    fn old_message(d: &Digest, text_tpl: &str, html_tpl: &str, r: &Recipient) -> Message {
        let (text, html) = (old_fill(text_tpl, r, false), old_fill(html_tpl, r, true));
        let boundary = format!("=_{}", short_hash(&format!("{text}\n{html}"), 32));
        let subject = old_fill(&d.subject.fill(&SLOTS.map(marker)), r, false);
        d.build_message(r, subject, boundary, Body::new(text), Body::new(html)).unwrap()
    }

    fn recipient(name: &str, url: Option<&str>, mailto: Option<&str>, key: &str) -> Recipient {
        Recipient {
            to: "s@example.org".parse().unwrap(),
            envelope_to: vec!["s@example.org".parse().unwrap()],
            envelope_from: None,
            id_key: Some(key.to_string()),
            name: name.to_string(),
            unsubscribe_url: url.map(str::to_string),
            unsubscribe_mailto: mailto.map(str::to_string),
        }
    }

    fn recipients() -> Vec<Recipient> {
        let long =
            format!("https://lwkd.example.org/unsubscribe/{}?x=={}", "0123456789abcdef".repeat(8), "é".repeat(40));
        vec![
            recipient(
                "Subscriber 7",
                Some("https://lwkd.example.org/unsubscribe/0007"),
                Some("mailto:u@x.org?subject=7"),
                "a",
            ),
            recipient("", Some("https://lwkd.example.org/unsubscribe/tok=en=="), None, "b"),
            recipient("Zoë Ångström — 日本語 🎉 & <Bob> \"q\" 'x'", Some(&long), Some("mailto:ü@x.org?s=a b"), "c"),
            recipient(&"Long=Name ".repeat(20), None, Some("mailto:unsub@example.org"), "d"),
            recipient("trailing space \t ", Some("http://x.org/u?a=1&b=2"), Some("mailto:a@b.c"), "e"),
            recipient("\nline\r\nbreaks\r", Some("https://x.org/\u{E001}subscriber.name"), None, "f"),
            recipient("", None, None, "g"),
        ]
    }

    fn repo_digest() -> Digest {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let config = crate::config::load(&path).unwrap_or_else(|d| panic!("{d:?}"));
        let loaded = crate::load::load(&config);
        let sel = crate::model::Selection { drafts: false, future: false, now: Utc::now().fixed_offset() };
        let post = loaded.archive.newest(sel).unwrap().clone();
        let rendered = crate::render::render(&post).unwrap();
        let mut s = super::settings::settings(&config).unwrap();
        s.unsubscribe_url = Some("https://lwkd.example.org/unsubscribe/{token}".into());
        s.unsubscribe_mailto = Some("mailto:unsubscribe@lwkd.example.org?subject=unsubscribe".into());
        Digest::render(&config, s, &rendered, DateTime::from_timestamp(1_589_313_600, 0).unwrap()).unwrap()
    }

    /// The new message against the old algorithm: same decoded parts, same headers
    /// (but the boundary and the transfer encoding), short ASCII lines.
    fn check(d: &Digest, text_tpl: &str, html_tpl: &str) {
        use mail_parser::{MessageParser, MimeHeaders};
        for r in recipients() {
            let new = d.message_for(&r).unwrap().formatted();
            let old = old_message(d, text_tpl, html_tpl, &r).formatted();
            let (pn, po) =
                (MessageParser::default().parse(&new).unwrap(), MessageParser::default().parse(&old).unwrap());
            assert_eq!(pn.body_text(0), po.body_text(0), "{r:?}");
            assert_eq!(pn.body_html(0), po.body_html(0), "{r:?}");
            assert_eq!(pn.subject(), po.subject());
            assert_eq!(pn.message_id(), po.message_id());
            for &i in pn.root_part().sub_parts().unwrap() {
                let part = pn.part(i).unwrap();
                assert_eq!(part.content_transfer_encoding(), Some("quoted-printable"));
                assert_eq!(part.content_type().unwrap().attribute("charset"), Some("utf-8"));
            }
            // The encoded bodies decode to exactly the filled-in text with CRLF line ends.
            let values = slot_values(&r);
            let escaped = values.clone().map(|v| escape_html(&v));
            for (encoded, filled) in [
                (d.text.encoded(&values), old_fill(text_tpl, &r, false)),
                (d.html.encoded(&escaped), old_fill(html_tpl, &r, true)),
            ] {
                let decoded = quoted_printable::decode(&encoded, quoted_printable::ParseMode::Strict).unwrap();
                let mut expected = filled.clone();
                lettre_crlf(&mut expected);
                assert_eq!(String::from_utf8(decoded).unwrap(), expected, "{r:?}");
            }
            let parts = d.parts_for(&r);
            assert_eq!(parts.text, old_fill(text_tpl, &r, false));
            assert_eq!(parts.html, old_fill(html_tpl, &r, true));
            for (n, line) in new.split(|&b| b == b'\n').enumerate() {
                assert!(
                    line.len() <= 78,
                    "line {} is {} octets: {:?}",
                    n + 1,
                    line.len(),
                    String::from_utf8_lossy(line)
                );
                assert!(line.is_ascii() && (line.is_empty() || line.ends_with(b"\r")), "line {}", n + 1);
            }
            // Stable: the same bytes again.
            assert_eq!(d.message_for(&r).unwrap().formatted(), new);
        }
    }

    /// What lettre's `Body::new` does to a `String`'s line ends.
    fn lettre_crlf(s: &mut String) {
        let body = Body::new_with_encoding(std::mem::take(s), ContentTransferEncoding::Binary).unwrap();
        *s = String::from_utf8(body.into_vec()).unwrap();
    }

    #[test]
    fn spliced_messages_decode_like_the_old_ones_for_the_bundled_issue() {
        let d = repo_digest();
        let markers = SLOTS.map(marker);
        let (text, html) = (d.text.fill(&markers), d.html.fill(&markers));
        assert!(text.contains(&markers[2]) && html.contains(&markers[4]), "the templates print the slots");
        check(&d, &text, &html);
    }

    #[test]
    fn spliced_messages_decode_like_the_old_ones_around_line_limits() {
        let mut d = repo_digest();
        let markers = SLOTS.map(marker);
        let m = |n: usize| markers[n].as_str();
        for fill_len in [0, 1, 2, 3, 70, 72, 73, 74, 75, 76, 77, 78, 150, 151, 152, 153] {
            for filler in ["x", "é", "=", " ", "ab\r"] {
                let pad: String = filler.repeat(fill_len).chars().take(fill_len).collect();
                let text = format!(
                    "{pad}{}{}\nDear {},\r\n{pad}{} \n\r{}\r\n=3D\u{E001}unknown\u{E002}{pad}{}\n{pad}",
                    m(0),
                    m(1),
                    m(0),
                    m(2),
                    m(0),
                    m(4)
                );
                let html = format!("<p>{pad}<a href=\"{}\">{}</a>{pad}</p>\n{}{pad} {}", m(1), m(0), m(3), m(4));
                d.text = Spliced::new(&text, &markers, OPEN, true);
                d.html = Spliced::new(&html, &markers, OPEN, true);
                d.content_hash = hex(&Sha256::digest(format!("{text}\n{html}").as_bytes()));
                check(&d, &text, &html);
            }
        }
    }

    #[test]
    fn boundaries_follow_the_content() {
        let d = repo_digest();
        let rs = recipients();
        let boundary = |r: &Recipient| {
            let m = d.message_for(r).unwrap();
            let ct = String::from_utf8(m.formatted()).unwrap();
            ct.split("boundary=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
        };
        let mut same = rs[0].clone();
        same.id_key = Some("other".into());
        same.to = "other@example.org".parse().unwrap();
        assert_eq!(boundary(&rs[0]), boundary(&same), "same parts, same boundary");
        assert_ne!(boundary(&rs[0]), boundary(&rs[1]));
        assert!(boundary(&rs[0]).starts_with("=_"));
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
