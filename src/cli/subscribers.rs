//! `newsdesk subscribers ...` and `newsdesk unsubscribe`: arguments and output.
//! Tables and CSV go to stdout; messages go to stderr, so both can be piped.

use super::{Context, Format, print_report};
use crate::config::Config;
use crate::diag::Report;
use crate::ops::subscribers::{self, AddOptions, ExportTo, Unsubscribe, UnsubscribeError};
use crate::store::db::DbError;
use crate::store::subscribers::{AddOutcome, ImportOutcome, SubscriberError, SubscriberStatus, Which};
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `newsdesk subscribers <action>`.
#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Import a CSV list (`email,name`, with or without a header). Re-importing is safe:
    /// nobody is added twice and nobody who unsubscribed is added back.
    #[command(after_help = "Exit status: 0 when every row was imported, 1 when some rows were rejected \
                            (the valid rows are imported all the same).")]
    Import {
        /// The CSV file. A header row may name the columns `email`, `name` and `status`.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Write the list as CSV (re-importable). Tokens are not exported.
    Export {
        /// Include people who unsubscribed or bounced (with their status, and for
        /// suppressed addresses `suppressed_reason` and `suppressed_at`).
        #[arg(long)]
        all: bool,
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Add one subscriber.
    Add {
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Add back someone who unsubscribed (only with their consent).
        #[arg(long)]
        resubscribe: bool,
    },
    /// Erase a subscriber and their delivery history (use `newsdesk unsubscribe` to stop
    /// mail while keeping them from being re-imported).
    Remove { email: String },
    /// List subscribers.
    List {
        /// Include people who unsubscribed or bounced.
        #[arg(long, conflicts_with = "suppressed")]
        all: bool,
        /// Only suppressed addresses (bounced, or reported as spam), with why and since when.
        #[arg(long)]
        suppressed: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

impl SubscribersCommand {
    /// The output format asked for, for reporting config errors.
    pub fn format(&self) -> Format {
        match self {
            SubscribersCommand::Import { format, .. } | SubscribersCommand::List { format, .. } => *format,
            _ => Format::Human,
        }
    }
}

/// Runs `newsdesk subscribers <action>`.
pub fn run(config: &Config, action: SubscribersCommand, ctx: &Context) -> ExitCode {
    match run_inner(config, action, ctx) {
        Ok(code) => code,
        Err(e) => fail(e, &config.database_path(), ctx),
    }
}

/// Prints `e`; a database error names the database and says what to do.
fn fail(e: SubscriberError, db_path: &Path, ctx: &Context) -> ExitCode {
    let d = match e {
        SubscriberError::Db(e) => e.diagnostic(),
        SubscriberError::Sql(e) => DbError::at(db_path, e).diagnostic(),
        other => {
            eprintln!("error: {other}");
            return ExitCode::FAILURE;
        }
    };
    eprint!("{}", d.render(ctx.cwd()));
    ExitCode::FAILURE
}

fn run_inner(config: &Config, action: SubscribersCommand, ctx: &Context) -> Result<ExitCode, SubscriberError> {
    match action {
        SubscribersCommand::Import { file, format } => {
            let out = subscribers::import(config, &file)?;
            report_import(&out, &file, format, ctx);
            Ok(if out.rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        SubscribersCommand::Export { all, output } => {
            match output {
                Some(path) => {
                    let n = subscribers::export(config, which(all, false), ExportTo::File(path.clone()))?;
                    eprintln!("exported {n} subscribers to {}", ctx.show(&path));
                }
                None => {
                    subscribers::export(config, which(all, false), ExportTo::Writer(&mut std::io::stdout().lock()))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Add { email, name, resubscribe } => {
            let (email, outcome) = subscribers::add(config, &AddOptions { email, name, resubscribe })?;
            match outcome {
                AddOutcome::Added => eprintln!("added {email}"),
                AddOutcome::AlreadySubscribed => eprintln!("{email} is already subscribed"),
                AddOutcome::Resubscribed => eprintln!("resubscribed {email}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Remove { email } => {
            let email = subscribers::remove(config, &email)?;
            eprintln!("removed {email} and their delivery history");
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::List { all, suppressed, format } => {
            let mut out = std::io::stdout().lock();
            let which = which(all, suppressed);
            match format {
                Format::Human => {
                    let c = subscribers::list(config, which, |s| {
                        let name = s.name.as_deref().unwrap_or("");
                        if let (true, Some(sup)) = (suppressed, &s.suppressed) {
                            let detail = sup.detail.as_deref().unwrap_or("");
                            writeln!(out, "{}\t{}\t{}\t{}\t{detail}", s.email, name, sup.reason, sup.since)?;
                        } else if all {
                            writeln!(out, "{}\t{}\t{}", s.email, name, s.status.as_str())?;
                        } else {
                            writeln!(out, "{}\t{}", s.email, name)?;
                        }
                        Ok(())
                    })?;
                    let mut line = format!("{} active, {} unsubscribed", c.active, c.unsubscribed);
                    if c.bounced > 0 {
                        line.push_str(&format!(", {} bounced", c.bounced));
                    }
                    if c.suppressed > 0 {
                        line.push_str(&format!(" ({} suppressed: `--suppressed` lists them)", c.suppressed));
                    }
                    if c.pending > 0 {
                        line.push_str(&format!(", {} waiting for their confirmation (not on the list yet)", c.pending));
                    }
                    eprintln!("{line}");
                }
                Format::Json => {
                    // One array, written row by row: the list is never held in memory.
                    write!(out, "[")?;
                    let mut first = true;
                    subscribers::list(config, which, |s| {
                        let sep = if first { "\n  " } else { ",\n  " };
                        first = false;
                        let row = serde_json::to_string(s).map_err(std::io::Error::other)?;
                        write!(out, "{sep}{row}")?;
                        Ok(())
                    })?;
                    writeln!(out, "{}]", if first { "" } else { "\n" })?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn report_import(out: &ImportOutcome, file: &Path, format: Format, ctx: &Context) {
    let mut report = Report { diagnostics: out.rejected.iter().chain(&out.warnings).cloned().collect() };
    report.sort();
    let shown = ctx.show(file);
    match format {
        Format::Json => {
            let extra = serde_json::to_value(out).unwrap_or_default();
            print_report(&report, format, ctx, extra);
        }
        Format::Human => {
            print_report(&report, format, ctx, serde_json::json!({}));
            let mut parts = vec![format!("{} added", out.added)];
            if out.renamed > 0 {
                parts.push(format!("{} renamed", out.renamed));
            }
            parts.push(format!("{} already subscribed", out.unchanged));
            if out.kept_unsubscribed > 0 {
                parts.push(format!("{} kept unsubscribed", out.kept_unsubscribed));
            }
            if out.unsubscribed > 0 {
                parts.push(format!("{} marked unsubscribed", out.unsubscribed));
            }
            if out.suppressed > 0 {
                parts.push(format!("{} marked suppressed", out.suppressed));
            }
            if out.kept_suppressed > 0 {
                parts.push(format!("{} kept suppressed (listed below)", out.kept_suppressed));
            }
            if out.duplicates > 0 {
                parts.push(format!(
                    "{} repeated row{} skipped",
                    out.duplicates,
                    if out.duplicates == 1 { "" } else { "s" }
                ));
            }
            let separator = match out.delimiter.as_str() {
                "," => String::new(),
                "\t" => " (separated by tabs)".into(),
                d => format!(" (separated by `{d}`)"),
            };
            eprintln!("imported {shown}{separator}: {}", parts.join(", "));
            for row in &out.suppressed_rows {
                eprintln!(
                    "  {shown}:{}: {} was not added back: it is suppressed ({}, since {})",
                    row.line, row.email, row.reason, row.since
                );
            }
            let n = out.rejected.len();
            if n > 0 {
                let rows = if n == 1 { "1 row was".to_string() } else { format!("{n} rows were") };
                if out.imported() == 0 {
                    eprintln!(
                        "{rows} rejected (listed above) and nothing was imported: fix them and import the file again"
                    );
                } else {
                    eprintln!(
                        "{rows} rejected (listed above): the other rows were imported; fix those rows and import the file again"
                    );
                }
            }
        }
    }
}

/// The rows a listing covers.
fn which(all: bool, suppressed: bool) -> Which {
    match (all, suppressed) {
        (_, true) => Which::Suppressed,
        (true, false) => Which::All,
        (false, false) => Which::Active,
    }
}

/// Runs `newsdesk unsubscribe TOKEN` (a reader's link) or `newsdesk unsubscribe --email
/// ADDR` (the editor).
pub fn run_unsubscribe(config: &Config, token: Option<String>, email: Option<String>, ctx: &Context) -> ExitCode {
    let who = match (token, email) {
        (_, Some(email)) => Unsubscribe::Email(email),
        (Some(token), None) => Unsubscribe::Token(token),
        (None, None) => return fail(SubscriberError::NotAToken, &config.database_path(), ctx),
    };
    match subscribers::unsubscribe(config, &who) {
        Ok(before) if before.status == SubscriberStatus::Unsubscribed => {
            eprintln!(
                "{} had already unsubscribed (on {})",
                before.email,
                before.unsubscribed_at.as_deref().unwrap_or("an unknown date")
            );
            ExitCode::SUCCESS
        }
        Ok(before) => {
            eprintln!("unsubscribed {}: they will get no further issues", before.email);
            ExitCode::SUCCESS
        }
        Err(UnsubscribeError::NotAToken(d)) => {
            eprint!("{}", d.render(ctx.cwd()));
            ExitCode::FAILURE
        }
        Err(UnsubscribeError::Store(e)) => fail(e, &config.database_path(), ctx),
    }
}
