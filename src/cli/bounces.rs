//! `newsdesk bounces parse|ingest`: arguments and output.

use super::{Context, Format};
use crate::bounces::{Kind, Report};
use crate::config::Config;
use crate::ops::bounces::{self, IngestError, IngestOptions, IngestOutcome, IngestSource};
use crate::store::bounces::Effect;
use clap::Subcommand;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// EX_TEMPFAIL: an MTA keeps a piped message and tries again.
const EX_TEMPFAIL: u8 = 75;

/// `newsdesk bounces <action>`.
#[derive(Debug, Subcommand)]
pub enum BouncesCommand {
    /// Explain bounce messages (files holding one raw message each); changes nothing.
    #[command(
        after_help = "For each file: its kind (bounce, complaint, auto-reply, not-bounce) and each failed recipient's\naddress, RFC 3463 status, action, whether it is permanent, a reason word and the remote server's words.\nNeeds no config and no database."
    )]
    Parse {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Read bounces and complaints and apply them to the list (one message on stdin, a maildir, or an mbox).
    #[command(
        after_help = "Point the bounce address (`[email] return_path`) here, e.g. in /etc/aliases:\n  bounces: \"|newsdesk -c /srv/lwkd/config.toml bounces ingest\"\nor read a mailbox now and then with --maildir DIR, --mbox FILE or --imap ([bounces.imap]). Every message read is kept in\n`[bounces] archive` (processed/ or unmatched/); a maildir's messages move there, an mbox is left as it is.\nReading a message twice changes nothing. Exit status: 0 when every message was read and filed, 1 when\nsome could not be, 75 (try again) when the database cannot be used or a piped message cannot be filed."
    )]
    Ingest {
        /// Read the maildir DIR (its new/ and cur/).
        #[arg(long, value_name = "DIR", conflicts_with = "mbox")]
        maildir: Option<PathBuf>,
        /// Read the mbox FILE.
        #[arg(long, value_name = "FILE", conflicts_with = "imap")]
        mbox: Option<PathBuf>,
        /// Read the `[bounces.imap]` mailbox (TLS); each message is marked as `after` says once applied.
        #[arg(long, conflicts_with = "maildir")]
        imap: bool,
        /// The envelope recipient of the one message on stdin, as the MTA gives it (Postfix's pipe:
        /// `${original_recipient}`; from an alias, Postfix's ORIGINAL_RECIPIENT or RECIPIENT is read
        /// without it): its VERP token identifies the subscriber even when the headers do not.
        #[arg(long, value_name = "ADDR", conflicts_with_all = ["maildir", "mbox", "imap"])]
        recipient: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

impl BouncesCommand {
    pub fn format(&self) -> Format {
        match self {
            BouncesCommand::Parse { format, .. } | BouncesCommand::Ingest { format, .. } => *format,
        }
    }
}

/// `bounces parse`: needs no config.
pub fn run_parse(files: &[PathBuf], format: Format, ctx: &Context) -> ExitCode {
    let parsed = match bounces::parse_files(files) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match format {
        Format::Json => {
            let value = serde_json::json!({ "messages": parsed });
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        Format::Human => {
            for p in &parsed {
                println!("{}: {}", ctx.show(std::path::Path::new(&p.file)), describe(&p.report));
                for r in &p.report.recipients {
                    let status = r.status.as_deref().unwrap_or("no status");
                    let how = if r.permanent { "permanent" } else { "not permanent" };
                    println!("  {}  {status}  {}  {how}", r.address, r.reason.as_str());
                    if let Some(d) = &r.diagnostic {
                        println!("    {d}");
                    }
                }
            }
        }
    }
    ExitCode::SUCCESS
}

fn describe(r: &Report) -> String {
    match r.kind {
        Kind::Bounce if r.recipients.is_empty() => "a bounce that names no recipient newsdesk can read".into(),
        Kind::Bounce => format!("a bounce for {} recipient(s)", r.recipients.len()),
        Kind::Complaint => {
            format!(
                "a complaint ({}) about {} recipient(s)",
                r.feedback_type.as_deref().unwrap_or("abuse"),
                r.recipients.len()
            )
        }
        Kind::AutoReply => "an automatic reply (vacation, out of office): not a bounce".into(),
        Kind::NotBounce => "not a bounce".into(),
    }
}

pub fn run(config: &Config, action: BouncesCommand, ctx: &Context) -> ExitCode {
    match action {
        BouncesCommand::Parse { files, format } => run_parse(&files, format, ctx),
        BouncesCommand::Ingest { maildir, mbox, imap, recipient, format } => {
            let source = match (maildir, mbox) {
                _ if imap => IngestSource::Imap,
                (Some(dir), _) => IngestSource::Maildir(dir),
                (None, Some(file)) => IngestSource::Mbox(file),
                (None, None) => {
                    // The whole message: it is filed whole, and only its start is read.
                    let mut raw = Vec::new();
                    if let Err(e) = std::io::stdin().lock().read_to_end(&mut raw) {
                        eprintln!("error: cannot read the message from stdin: {e}");
                        return ExitCode::from(EX_TEMPFAIL);
                    }
                    IngestSource::Message(raw)
                }
            };
            let piped = matches!(source, IngestSource::Message(_));
            // Postfix's local delivery to an alias's pipe names the envelope recipient in
            // the environment.
            let recipient = recipient.or_else(|| {
                piped
                    .then(|| {
                        ["ORIGINAL_RECIPIENT", "RECIPIENT"]
                            .iter()
                            .find_map(|v| std::env::var(v).ok().filter(|r| r.contains('@')))
                    })
                    .flatten()
            });
            match bounces::ingest(config, &IngestOptions { source, recipient }) {
                // From a pipe, a message that could not be filed goes back to the MTA to
                // try again (reading it twice changes nothing), rather than being lost.
                Ok(out) if piped && !out.errors.is_empty() => {
                    print_ingest(&out, format, ctx);
                    ExitCode::from(EX_TEMPFAIL)
                }
                Ok(out) => print_ingest(&out, format, ctx),
                Err(IngestError::Db(e)) => {
                    eprint!("{}", e.diagnostic().render(ctx.cwd.as_deref()));
                    ExitCode::from(EX_TEMPFAIL)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_ingest(out: &IngestOutcome, format: Format, ctx: &Context) -> ExitCode {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(out).unwrap_or_default()),
        Format::Human => {
            for m in &out.messages {
                let archived = ctx.show(std::path::Path::new(&m.archived));
                if m.applied.is_empty() {
                    let why = match m.kind {
                        Kind::AutoReply => "an automatic reply, nothing to do",
                        Kind::NotBounce if m.filed == "processed" => "a delivery report without a failure",
                        Kind::NotBounce => "not a bounce",
                        _ => "nobody on the list matched it",
                    };
                    eprintln!("{}: {why} (kept in {archived})", m.source);
                }
                for a in &m.applied {
                    let status = a.status.as_deref().unwrap_or(&a.reason);
                    let what = match &a.effect {
                        Effect::Bounced => format!("bounced ({status}, {}): never mailed again", a.reason),
                        Effect::SoftCounted { in_a_row, limit } => {
                            format!("soft bounce ({status}, {}): {in_a_row} of {limit} issues in a row", a.reason)
                        }
                        Effect::BouncedAfterSoft { in_a_row } => {
                            format!("bounced: soft bounces on {in_a_row} issues in a row ({status}, {})", a.reason)
                        }
                        Effect::Unsubscribed => "reported the mail as spam: unsubscribed and suppressed".into(),
                        Effect::AlreadySuppressed => "already suppressed; recorded".into(),
                        Effect::AlreadyRecorded => "read before; nothing changed".into(),
                    };
                    eprintln!("{}: {} {what}", m.source, a.email);
                }
            }
            for e in &out.errors {
                eprintln!("error: {e}");
            }
            let applied: usize = out.messages.iter().map(|m| m.applied.len()).sum();
            let unmatched = out.messages.iter().filter(|m| m.filed == "unmatched").count();
            eprintln!("read {} message(s): {applied} applied, {unmatched} unmatched", out.messages.len());
        }
    }
    if out.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
