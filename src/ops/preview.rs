//! `newsdesk preview`: the editor's dry run. Renders the issue with the real templates
//! and config and writes exactly what `send` would hand to the mail server
//! (`message.eml`), its two parts (`message.html`, `message.txt`) and the feeds as
//! `build` writes them, and reports on the message's deliverability. Opens no network
//! connection, unless `--dns` asks for the DNS records.

use super::build;
use super::deliverability::{self, DnsOptions};
use super::issue::{self, Audience};
use crate::config::Config;
use crate::deliverability::Check;
use crate::diag::{Diagnostic, Report};
use crate::digest::{Digest, Parts, Recipient, lint};
use crate::model::{Archive, Selection};
use crate::output::Staged;
use crate::render::RenderedPost;
use crate::transport::dkim::Signer;
use lettre::address::Envelope;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What `newsdesk preview` (and `send --dry-run`) renders, and where.
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    pub selection: Selection,
    /// `--post`: this post (slug, file name or path) instead of the newest.
    pub post: Option<String>,
    /// The output folder ([`default_out`] unless `--out`).
    pub out: PathBuf,
    /// `--dns`: also look up the DKIM key, SPF and DMARC records. Without it nothing
    /// here opens a network connection.
    pub dns: Option<DnsOptions>,
}

/// What a preview produced: the report, and the message's summary with the files
/// written when it got that far.
#[derive(Debug)]
pub struct PreviewOutcome {
    pub report: Report,
    pub previewed: Option<Previewed>,
}

#[derive(Debug)]
pub struct Previewed {
    pub summary: MessageSummary,
    pub written: Vec<PathBuf>,
    /// The deliverability report of `message.eml`.
    pub deliverability: Vec<Check>,
}

/// What a reviewer wants to know about a rendered message.
#[derive(Debug, Clone, Serialize)]
pub struct MessageSummary {
    pub issue: IssueSummary,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub reply_to: Option<String>,
    pub message_id: String,
    pub date: String,
    pub sizes: Sizes,
    /// Links (`href`s) in the HTML part.
    pub links: usize,
    /// Numbered references in the text part.
    pub text_links: usize,
    pub templates: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssueSummary {
    pub title: String,
    pub slug: String,
    pub url: String,
    pub source: PathBuf,
}

/// Bytes of the whole message as sent and of each decoded part.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    pub message: usize,
    pub text: usize,
    pub html: usize,
}

/// An issue rendered for one recipient, with everything a preview or a send needs.
#[derive(Debug)]
pub struct Prepared {
    pub recipient: Recipient,
    pub parts: Parts,
    /// The formatted message: the exact bytes handed to the transport.
    pub eml: Vec<u8>,
    pub envelope: Envelope,
    pub summary: MessageSummary,
}

/// Renders `post`'s digest for the list (or, without `[email] to`, for the sender) and
/// adds the mail warnings to `report`.
pub fn for_list(config: &Config, digest: &Digest, signer: Option<&Signer>, report: &mut Report) -> Option<Prepared> {
    let recipient = match digest.list_recipient() {
        Some(r) => r,
        None => {
            report.push(
                crate::config::config_diagnostic(
                    config,
                    "email",
                    "from",
                    Diagnostic::warning("no-list-address", "`[email] to` is not set: the preview is addressed to the sender")
                        .help("set `to = \"list@example.org\"` under [email] to send to a list; `send --to ADDR` works without it"),
                ),
            );
            digest.test_recipient(digest.settings.from.email.clone())
        }
    };
    for_recipient(digest, recipient, signer, report)
}

/// Builds the message for `recipient` (DKIM-signed when configured) and lints it.
pub fn for_recipient(
    digest: &Digest,
    recipient: Recipient,
    signer: Option<&Signer>,
    report: &mut Report,
) -> Option<Prepared> {
    let parts = digest.parts_for(&recipient);
    report.extend(lint::lint(digest, &parts));
    let message = match digest.message_for(&recipient) {
        Ok(m) => m,
        Err(e) => {
            report.push(Diagnostic::error("bad-message", format!("cannot build the message: {e}")));
            return None;
        }
    };
    let eml = match signer {
        Some(s) => s.sign(&message.formatted()),
        None => message.formatted(),
    };
    let envelope = message.envelope().clone();
    let s = &digest.settings;
    let summary = MessageSummary {
        issue: IssueSummary {
            title: digest.title.clone(),
            slug: digest.slug.clone(),
            url: digest.post_url.clone(),
            source: digest.post_source.clone(),
        },
        subject: parts.subject.clone(),
        from: s.from.to_string(),
        to: recipient.to.to_string(),
        reply_to: s.reply_to.as_ref().map(ToString::to_string),
        message_id: digest.message_id_for(&recipient),
        date: digest.date.to_rfc2822(),
        sizes: Sizes { message: eml.len(), text: parts.text.len(), html: parts.html.len() },
        links: lint::link_count(&parts.html),
        text_links: digest.text_links.len(),
        templates: digest.templates.files.iter().map(|f| f.describe()).collect(),
    };
    Some(Prepared { recipient, parts, eml, envelope, summary })
}

/// Writes message.eml/.html/.txt and the feeds into `out` (staged: all or nothing).
pub fn write(
    config: &Config,
    archive: &Archive,
    selection: Selection,
    prepared: &Prepared,
    out: &Path,
    report: &mut Report,
) -> std::io::Result<Vec<PathBuf>> {
    let mut staged = Staged::new();
    staged.write(&out.join("message.eml"), |w| w.write_all(&prepared.eml))?;
    staged.write(&out.join("message.html"), |w| w.write_all(prepared.parts.html.as_bytes()))?;
    staged.write(&out.join("message.txt"), |w| w.write_all(prepared.parts.text.as_bytes()))?;
    let mut feed_report = Report::default();
    let items: Vec<RenderedPost> = build::render_newest(archive, selection, config.feeds.limit, &mut feed_report);
    // Body lints of the issue itself were reported already.
    report.extend(feed_report.diagnostics.into_iter().filter(|d| d.is_error()));
    build::write_feeds(config, &items, out, &mut staged)?;
    staged.commit()
}

/// The default output folder: `_preview` beside the config file.
pub fn default_out(config: &Config) -> PathBuf {
    config.resolve(Path::new("_preview"))
}

/// Renders the issue as `send` would mail it to the list and writes the message, its
/// parts and the feeds into `options.out`. Opens no network connection, unless
/// `options.dns` asks for the DNS records.
pub fn preview(config: &Config, options: &PreviewOptions) -> PreviewOutcome {
    let mut report = Report::default();
    let previewed = run(config, options, &mut report);
    report.sort();
    PreviewOutcome { report, previewed }
}

fn run(config: &Config, options: &PreviewOptions, report: &mut Report) -> Option<Previewed> {
    let signer = Signer::for_command(config).map_err(|d| report.push(d)).ok()?;
    let issue = issue::prepare(config, options.selection, options.post.as_deref(), Audience::List, report)?;
    let prepared = for_list(config, &issue.digest, signer.as_ref(), report)?;
    let out = &options.out;
    match write(config, &issue.archive, options.selection, &prepared, out, report) {
        Ok(written) => {
            let deliverability = deliverability::report(config, &prepared.eml, signer.as_ref(), options.dns.as_ref());
            Some(Previewed { summary: prepared.summary, written, deliverability })
        }
        Err(e) => {
            report.push(
                Diagnostic::error("unwritable", format!("cannot write the preview to `{}`: {e}", out.display()))
                    .help("pass a writable folder with `--out DIR`"),
            );
            None
        }
    }
}
