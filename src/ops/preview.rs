//! `newsdesk preview`: the editor's dry run. Renders the issue with the real templates
//! and config and writes exactly what `send` would hand to the mail server
//! (`message.eml`), its two parts (`message.html`, `message.txt`) and the feeds as
//! `build` writes them. Never opens a network connection.

use crate::cli::{Format, SelectArgs, print_report};
use crate::config::Config;
use crate::diag::{Diagnostic, Report, display_path};
use crate::digest::{Digest, Parts, Recipient, lint};
use crate::load;
use crate::model::{Archive, Selection};
use crate::ops::build;
use crate::output::Staged;
use crate::render::RenderedPost;
use crate::transport::dkim::Signer;
use clap::Args;
use lettre::address::Envelope;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `newsdesk preview` (and `send --dry-run`).
#[derive(Debug, Clone, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Render this post (slug or file name) instead of the newest.
    #[arg(long, value_name = "SLUG")]
    pub post: Option<String>,
    /// Output folder [default: `_preview` beside the config file].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Open message.html in the desktop's web browser.
    #[arg(long)]
    pub open: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// What a reviewer wants to know about a rendered message.
#[derive(Debug, Clone, Serialize)]
pub struct MessageSummary {
    pub issue: Issue,
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
pub struct Issue {
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
pub fn prepare(config: &Config, digest: &Digest, signer: Option<&Signer>, report: &mut Report) -> Option<Prepared> {
    let recipient = match digest.list_recipient() {
        Some(r) => r,
        None => {
            report.push(
                crate::digest::settings::config_diagnostic(
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
        Ok(mut m) => {
            if let Some(s) = signer {
                s.sign(&mut m);
            }
            m
        }
        Err(e) => {
            report.push(Diagnostic::error("bad-message", format!("cannot build the message: {e}")));
            return None;
        }
    };
    let eml = message.formatted();
    let envelope = message.envelope().clone();
    let s = &digest.settings;
    let summary = MessageSummary {
        issue: Issue {
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

/// Loads the posts and renders the chosen issue's digest; errors land in `report`.
pub fn load_and_render(
    config: &Config,
    posts_dir: Option<&Path>,
    selection: Selection,
    slug: Option<&str>,
    report: &mut Report,
) -> Option<(Archive, Digest)> {
    let loaded = load::load(config, posts_dir);
    report.extend(loaded.report.diagnostics);
    if report.has_errors() {
        return None;
    }
    let archive = loaded.archive;
    let post = match super::issue::pick(config, &archive, selection, slug) {
        Ok(p) => p,
        Err(d) => {
            report.push(d);
            return None;
        }
    };
    let (rendered, digest) = super::issue::render_digest(config, post, report)?;
    report.extend(rendered.diagnostics.clone());
    drop(rendered);
    Some((archive, digest))
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

/// Runs `newsdesk preview`; returns the exit code.
pub fn run(config: &Config, posts_dir: Option<&Path>, args: &PreviewArgs, cwd: Option<&Path>) -> ExitCode {
    let selection = args.select.selection();
    let out = args.out.clone().unwrap_or_else(|| default_out(config));
    let mut report = Report::default();
    let signer = match Signer::for_command(config) {
        Ok(s) => s,
        Err(d) => {
            report.push(d);
            print_report(&report, args.format, cwd, serde_json::json!({ "ok": false }));
            return ExitCode::FAILURE;
        }
    };
    let result = load_and_render(config, posts_dir, selection, args.post.as_deref(), &mut report)
        .and_then(|(archive, digest)| prepare(config, &digest, signer.as_ref(), &mut report).map(|p| (archive, p)));
    let Some((archive, prepared)) = result else {
        report.sort();
        print_report(&report, args.format, cwd, serde_json::json!({ "ok": false }));
        return ExitCode::FAILURE;
    };
    let written = match write(config, &archive, selection, &prepared, &out, &mut report) {
        Ok(w) => w,
        Err(e) => {
            report.push(
                Diagnostic::error("unwritable", format!("cannot write the preview to `{}`: {e}", out.display()))
                    .help("pass a writable folder with `--out DIR`"),
            );
            report.sort();
            print_report(&report, args.format, cwd, serde_json::json!({ "ok": false }));
            return ExitCode::FAILURE;
        }
    };
    report.sort();
    let written: Vec<String> = written.iter().map(|p| display_path(p, cwd)).collect();
    let ok = !report.has_errors();
    print_report(
        &report,
        args.format,
        cwd,
        serde_json::json!({ "ok": ok, "message": prepared.summary, "written": written }),
    );
    if args.format == Format::Human {
        print!("{}", human_summary(&prepared.summary, cwd));
        println!("Wrote:");
        for w in &written {
            println!("  {w}");
        }
    }
    if args.open {
        let html = out.join("message.html");
        if let Err(why) = open_in_browser(&html) {
            eprintln!("note: cannot open a browser ({why}); open {} yourself", display_path(&html, cwd));
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The report a person reads before sending.
pub fn human_summary(s: &MessageSummary, cwd: Option<&Path>) -> String {
    let kb = |n: usize| format!("{:.1} KB", n as f64 / 1024.0);
    let mut out = String::new();
    out.push_str(&format!("Subject:    {}\n", s.subject));
    out.push_str(&format!("From:       {}\n", s.from));
    out.push_str(&format!("To:         {}\n", s.to));
    if let Some(r) = &s.reply_to {
        out.push_str(&format!("Reply-To:   {r}\n"));
    }
    out.push_str(&format!("Message-ID: {}\n", s.message_id));
    out.push_str(&format!("Date:       {}\n", s.date));
    out.push_str(&format!("Issue:      {} ({})\n", s.issue.title, display_path(&s.issue.source, cwd)));
    out.push_str(&format!(
        "Size:       {} message; text part {}, HTML part {} (Gmail clips over 102 KB)\n",
        kb(s.sizes.message),
        kb(s.sizes.text),
        kb(s.sizes.html)
    ));
    out.push_str(&format!("Links:      {} in the HTML part, {} numbered in the text part\n", s.links, s.text_links));
    out.push_str(&format!(
        "Templates:  {}\n",
        s.templates.iter().map(|t| display_path(Path::new(t), cwd)).collect::<Vec<_>>().join(", ")
    ));
    out
}

/// Starts the desktop's browser on `path` without waiting for it.
fn open_in_browser(path: &Path) -> Result<(), String> {
    let (program, args): (&str, Vec<&std::ffi::OsStr>) = if cfg!(target_os = "macos") {
        ("open", vec![path.as_os_str()])
    } else if cfg!(windows) {
        ("explorer", vec![path.as_os_str()])
    } else {
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            return Err("no desktop session (DISPLAY and WAYLAND_DISPLAY are unset)".into());
        }
        ("xdg-open", vec![path.as_os_str()])
    };
    std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("`{program}` failed to start: {e}"))
}
