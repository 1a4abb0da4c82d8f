//! `[email]` checked and parsed once: addresses as lettre mailboxes, the `List-Id`, the
//! unsubscribe targets. Every problem points at its line in `config.toml`.

use crate::config::{Config, config_diagnostic};
use crate::diag::Diagnostic;
use lettre::message::Mailbox;
use std::path::PathBuf;

/// The digest's addresses and list headers, validated.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub from: Mailbox,
    /// The list address (`[email] to`); `None` when only test sends are possible.
    pub to: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    /// The `List-Id` value (`Name <label.domain>`, RFC 2919).
    pub list_id: String,
    /// An http(s) unsubscribe page; https also enables one-click unsubscribe (RFC 8058).
    pub unsubscribe_url: Option<String>,
    /// `mailto:` address for unsubscribing by mail.
    pub unsubscribe_mailto: Option<String>,
    /// The envelope sender of list and test sends: `[email] return_path` without its
    /// `{token}` (`bounces+{token}@x` → `bounces@x`), so their bounces reach the bounce
    /// mailbox too; `None`: the `From` address. Subscriber sends put each subscriber's
    /// VERP token in instead.
    pub bounce_address: Option<lettre::Address>,
    /// The templates folder, absolute.
    pub templates_dir: PathBuf,
    /// Whether `templates` was left at its default (a missing default folder falls back
    /// to the built-in templates; a missing folder that was named explicitly is an error).
    pub templates_default: bool,
    /// Whether each message goes to one subscriber of newsdesk's own list (`send
    /// --subscribers`) rather than to the list address: `subscriber_send` in templates.
    pub subscriber_send: bool,
}

impl MailSettings {
    /// The domain of the From address: Message-IDs are made in it.
    pub fn id_domain(&self) -> String {
        self.from.email.domain().to_ascii_lowercase()
    }
}

/// Reads `[email]` from the config.
pub fn settings(config: &Config) -> Result<MailSettings, Vec<Diagnostic>> {
    let Some(email) = &config.email else {
        return Err(vec![
            Diagnostic::error("no-email-config", "the config has no `[email]` section, so there is no digest to render")
                .in_file(&config.path)
                .help("add `[email]` with at least `from = \"Name <address>\"` and `to = \"list@example.org\"` (see README.md)"),
        ]);
    };
    let mut problems = Vec::new();
    let mut mailbox = |key: &str, value: &str| -> Option<Mailbox> {
        match value.trim().parse::<Mailbox>() {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(config_diagnostic(
                    config,
                    "email",
                    key,
                    Diagnostic::error("bad-address", format!("`{key} = \"{value}\"` is not a mail address: {e}"))
                        .help("write `address@example.org` or `Name <address@example.org>`"),
                ));
                None
            }
        }
    };
    let from = mailbox("from", &email.from);
    let to = email.to.as_deref().and_then(|t| mailbox("to", t));
    let reply_to = email.reply_to.as_deref().and_then(|t| mailbox("reply_to", t));

    let unsubscribe_url = match email.unsubscribe_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) => match url::Url::parse(u) {
            Ok(parsed) if matches!(parsed.scheme(), "https" | "http") && parsed.host().is_some() => Some(u.to_string()),
            _ => {
                problems.push(config_diagnostic(
                    config,
                    "email",
                    "unsubscribe_url",
                    Diagnostic::error(
                        "bad-unsubscribe-url",
                        format!("`unsubscribe_url = \"{u}\"` is not an absolute https URL"),
                    )
                    .help("write the page that unsubscribes a reader, e.g. `https://lwkd.example.org/unsubscribe`"),
                ));
                None
            }
        },
    };
    let unsubscribe_mailto = match email.unsubscribe_mailto.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(m) => {
            let bare = m.strip_prefix("mailto:").unwrap_or(m);
            let address = bare.split('?').next().unwrap_or("");
            if address.parse::<lettre::Address>().is_ok() {
                Some(format!("mailto:{bare}"))
            } else {
                problems.push(config_diagnostic(
                    config,
                    "email",
                    "unsubscribe_mailto",
                    Diagnostic::error("bad-address", format!("`unsubscribe_mailto = \"{m}\"` is not a mail address"))
                        .help("write the address that unsubscribes its sender, e.g. `lwkd+unsubscribe@example.org`"),
                ));
                None
            }
        }
    };
    if !matches!(email.transport.as_str(), "smtp" | "sendmail" | "file" | "buttondown") {
        problems.push(config_diagnostic(
            config,
            "email",
            "transport",
            Diagnostic::error("bad-transport", format!("unknown transport `{}`", email.transport))
                .help("use \"smtp\", \"sendmail\", \"file\" or \"buttondown\""),
        ));
    }
    let list_id = match (&email.list_id, &from) {
        (Some(id), _) => match list_id(id) {
            Some(v) => Some(v),
            None => {
                problems.push(config_diagnostic(
                    config,
                    "email",
                    "list_id",
                    Diagnostic::error(
                        "bad-list-id",
                        format!("`list_id = \"{id}\"` is not a list identifier (RFC 2919)"),
                    )
                    .help("write a name and a dotted id in angle brackets, e.g. `LWKD <lwkd.example.org>`"),
                ));
                None
            }
        },
        (None, Some(from)) => {
            // RFC 2919 suggests `list-label.domain`: made from the list address.
            let address = to.as_ref().unwrap_or(from);
            let label = format!("{}.{}", address.email.user(), address.email.domain());
            let phrase = from.name.clone().unwrap_or_else(|| config.site.title.clone());
            list_id(&format!("{phrase} <{label}>"))
        }
        (None, None) => None,
    };
    // The config checked the shape already; this only makes the plain form.
    let bounce_address = email.return_path.as_deref().and_then(|rp| crate::config::plain_return_path(rp).parse().ok());
    match (from, list_id) {
        (Some(from), Some(list_id)) if problems.is_empty() => Ok(MailSettings {
            bounce_address,
            from,
            to,
            reply_to,
            list_id,
            unsubscribe_url,
            unsubscribe_mailto,
            templates_dir: config.resolve(&email.templates),
            templates_default: email.templates == std::path::Path::new("email-templates"),
            subscriber_send: false,
        }),
        _ => Err(problems),
    }
}

/// Normalizes `Name <id>`, `<id>` or `id` to the header value, or `None` when the id is
/// not a dot-atom with at least one dot.
fn list_id(value: &str) -> Option<String> {
    let value = value.trim();
    let (phrase, id) = match (value.rfind('<'), value.ends_with('>')) {
        (Some(open), true) => (value[..open].trim(), &value[open + 1..value.len() - 1]),
        _ => ("", value),
    };
    let atom = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let ok = id.contains('.')
        && id.split('.').all(|part| !part.is_empty() && part.chars().all(atom))
        && !phrase.contains(['<', '>', '\r', '\n']);
    if !ok {
        return None;
    }
    let phrase = phrase.trim_matches('"');
    Some(if phrase.is_empty() { format!("<{id}>") } else { format!("{phrase} <{id}>") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_return_path_drops_the_token_and_its_separator() {
        assert_eq!(crate::config::plain_return_path("bounces+{token}@lwkd.example.org"), "bounces@lwkd.example.org");
        assert_eq!(crate::config::plain_return_path("bounces-{token}@x.org"), "bounces@x.org");
        assert_eq!(crate::config::plain_return_path("bounces@x.org"), "bounces@x.org");
    }

    #[test]
    fn list_ids_are_normalized_or_refused() {
        assert_eq!(list_id("LWKD <lwkd.example.org>").as_deref(), Some("LWKD <lwkd.example.org>"));
        assert_eq!(list_id("lwkd.example.org").as_deref(), Some("<lwkd.example.org>"));
        assert_eq!(list_id("\"My List\" <a.b>").as_deref(), Some("My List <a.b>"));
        assert_eq!(list_id("LWKD <nodots>"), None);
        assert_eq!(list_id("LWKD <a..b>"), None);
        assert_eq!(list_id("LWKD <a b.c>"), None);
    }
}
