//! `newsdesk new`: scaffold the next issue; prints its path.

use super::{Context, Format};
use crate::config::Config;
use crate::ops::new::{self, NewOptions};
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct NewArgs {
    /// Any day of the week (YYYY-MM-DD), its last day included [default: the
    /// next issue to go out that has no post yet].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub date: Option<chrono::NaiveDate>,
    /// Open the new post in $VISUAL or $EDITOR.
    #[arg(long)]
    pub open: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date: write YYYY-MM-DD, e.g. --date 2026-08-16"))
}

pub fn run(config: &Config, args: &NewArgs, ctx: &Context) -> ExitCode {
    match new::create(config, &NewOptions { date: args.date, now: super::now() }) {
        Ok(created) => {
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&created).unwrap_or_default()),
                Format::Human => {
                    println!("{}", ctx.show(&created.path));
                    eprintln!(
                        "{}: goes out {} (`newsdesk check` says when it is due; `preview --post {} --future` renders it now)",
                        created.planned.title, created.planned.publish, created.planned.slug
                    );
                }
            }
            if args.open {
                let set = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
                let editor = set("VISUAL").or_else(|| set("EDITOR")).unwrap_or_default();
                if editor.trim().is_empty() {
                    eprintln!("error: --open needs $VISUAL or $EDITOR (the post was written)");
                    return ExitCode::FAILURE;
                }
                // `$EDITOR` may hold arguments (`code --wait`).
                let mut parts = editor.split_whitespace();
                let program = parts.next().unwrap_or_default();
                match std::process::Command::new(program).args(parts).arg(&created.path).status() {
                    Ok(s) if s.success() => {}
                    Ok(s) => {
                        eprintln!("error: `{editor}` exited with {s} (the post was written)");
                        return ExitCode::FAILURE;
                    }
                    Err(e) => {
                        eprintln!("error: cannot start `{editor}`: {e} (the post was written)");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(d) => {
            eprint!("{}", d.render(ctx.cwd.as_deref()));
            ExitCode::FAILURE
        }
    }
}
