//! `newsdesk subscribers ...` and `newsdesk unsubscribe`: arguments and output.
//! Tables and CSV go to stdout; messages go to stderr, so both can be piped.

use crate::cli::{Format, print_report};
use crate::config::Config;
use crate::diag::Report;
use crate::store::db::DbError;
use crate::store::subscribers::{self, AddOutcome, ImportOutcome, SubscriberStatus, SubscriberError};
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
        /// Include people who unsubscribed (with status `unsubscribed`).
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
        /// Include people who unsubscribed.
        #[arg(long)]
        all: bool,
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
pub fn run(config: &Config, action: SubscribersCommand, cwd: Option<&Path>) -> ExitCode {
    match run_inner(config, action, cwd) {
        Ok(code) => code,
        Err(e) => fail(e, &config.database_path(), cwd),
    }
}

/// Prints `e`; a database error names the database and says what to do.
fn fail(e: SubscriberError, db_path: &Path, cwd: Option<&Path>) -> ExitCode {
    let d = match e {
        SubscriberError::Db(e) => e.diagnostic(),
        SubscriberError::Sql(e) => DbError::at(db_path, e).diagnostic(),
        other => {
            eprintln!("error: {other}");
            return ExitCode::FAILURE;
        }
    };
    eprint!("{}", d.render(cwd));
    ExitCode::FAILURE
}

fn run_inner(config: &Config, action: SubscribersCommand, cwd: Option<&Path>) -> Result<ExitCode, SubscriberError> {
    let db_path = config.database_path();
    match action {
        SubscribersCommand::Import { file, format } => {
            let mut conn = crate::store::db::open(&db_path)?;
            let out = subscribers::import_csv(&mut conn, &file)?;
            report_import(&out, &file, format, cwd);
            Ok(if out.rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        SubscribersCommand::Export { all, output } => {
            let conn = subscribers::open_existing(&db_path)?;
            let n = match &output {
                Some(path) => {
                    let mut buf = Vec::new();
                    let n = subscribers::export_csv(&conn, all, &mut buf)?;
                    crate::output::write_atomic(path, &buf)?;
                    n
                }
                None => subscribers::export_csv(&conn, all, std::io::stdout().lock())?,
            };
            if let Some(path) = output {
                eprintln!("exported {n} subscribers to {}", crate::diag::display_path(&path, cwd));
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Add { email, name, resubscribe } => {
            let conn = crate::store::db::open(&db_path)?;
            let (email, outcome) = subscribers::add(&conn, &email, name.as_deref(), resubscribe)?;
            match outcome {
                AddOutcome::Added => eprintln!("added {email}"),
                AddOutcome::AlreadySubscribed => eprintln!("{email} is already subscribed"),
                AddOutcome::Resubscribed => eprintln!("resubscribed {email}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Remove { email } => {
            let conn = subscribers::open_existing(&db_path)?;
            let email = subscribers::remove(&conn, &email)?;
            eprintln!("removed {email} and their delivery history");
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::List { all, format } => {
            let conn = subscribers::open_existing(&db_path)?;
            let mut out = std::io::stdout().lock();
            match format {
                Format::Human => {
                    subscribers::for_each(&conn, all, |s| {
                        let name = s.name.as_deref().unwrap_or("");
                        if all {
                            writeln!(out, "{}\t{}\t{}", s.email, name, s.status.as_str())?;
                        } else {
                            writeln!(out, "{}\t{}", s.email, name)?;
                        }
                        Ok(())
                    })?;
                    let c = subscribers::counts(&conn)?;
                    eprintln!("{} active, {} unsubscribed", c.active, c.unsubscribed);
                }
                Format::Json => {
                    // One array, written row by row: the list is never held in memory.
                    write!(out, "[")?;
                    let mut first = true;
                    subscribers::for_each(&conn, all, |s| {
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

fn report_import(out: &ImportOutcome, file: &Path, format: Format, cwd: Option<&Path>) {
    let mut report = Report { diagnostics: out.rejected.iter().chain(&out.warnings).cloned().collect() };
    report.sort();
    let shown = crate::diag::display_path(file, cwd);
    match format {
        Format::Json => {
            let extra = serde_json::to_value(out).unwrap_or_default();
            print_report(&report, format, cwd, extra);
        }
        Format::Human => {
            print_report(&report, format, cwd, serde_json::json!({}));
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

/// Runs `newsdesk unsubscribe TOKEN` (a reader's link) or `newsdesk unsubscribe --email
/// ADDR` (the editor). A bare argument that looks like an address is refused: whoever
/// can pass an argument (a web page handing on a URL's path) could otherwise
/// unsubscribe anyone.
pub fn run_unsubscribe(config: &Config, token: Option<&str>, email: Option<&str>, cwd: Option<&Path>) -> ExitCode {
    if let Some(token) = token
        && (token.contains('@') || token.contains("%40"))
    {
        let d = crate::diag::Diagnostic::error(
            "not-a-token",
            "this looks like an email address, not an unsubscribe token: `newsdesk unsubscribe` takes the token of a subscriber's unsubscribe link",
        )
        .help("to unsubscribe someone by address, run `newsdesk unsubscribe --email ADDRESS` yourself (never from a web page)");
        eprint!("{}", d.render(cwd));
        return ExitCode::FAILURE;
    }
    let result = subscribers::open_existing(&config.database_path()).and_then(|conn| match (token, email) {
        (_, Some(email)) => subscribers::unsubscribe(&conn, email),
        (Some(token), None) => subscribers::unsubscribe_token(&conn, token),
        (None, None) => Err(SubscriberError::NotAToken),
    });
    match result {
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
        Err(e) => fail(e, &config.database_path(), cwd),
    }
}
