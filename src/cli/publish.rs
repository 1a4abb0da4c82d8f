//! `newsdesk publish`: publication day's steps, each printed as it ends.

use super::preview::human_summary;
use super::{Context, Format, SelectArgs, confirm, print_report};
use crate::config::Config;
use crate::ops::publish::{self, PublishOptions};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// This post (slug or file name) instead of the newest one dated today or earlier.
    #[arg(long, value_name = "SLUG")]
    pub post: Option<String>,
    /// Where the feeds are written.
    #[arg(long, default_value = "_site", value_name = "DIR")]
    pub out: PathBuf,
    /// Send without asking (for scripts).
    #[arg(short, long)]
    pub yes: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(config: &Config, args: &PublishArgs, ctx: &Context) -> ExitCode {
    let options = PublishOptions { selection: args.select.selection(), post: args.post.clone(), out: args.out.clone() };
    let human = args.format == Format::Human;
    let mut ask = |asked: &publish::ToConfirm| {
        if let Some(ahead) = &asked.dated_ahead {
            eprintln!("note: \"{}\" goes out early: {ahead}", asked.summary.subject);
        }
        if args.yes {
            return true;
        }
        if !std::io::stdin().is_terminal() {
            eprintln!("not sending: stdin is not a terminal to ask on; pass --yes");
            return false;
        }
        eprint!("{}", human_summary(asked.summary, ctx));
        confirm(&format!("Send \"{}\" now?", asked.summary.subject))
    };
    let outcome = publish::publish(config, &options, &mut ask);
    let ok = outcome.stopped.is_none();
    match args.format {
        Format::Json => print_report(
            &outcome.report,
            Format::Json,
            ctx,
            serde_json::json!({
                "ok": ok,
                "title": outcome.title,
                "steps": outcome.steps,
                "stopped": outcome.stopped,
                "social": outcome.social,
            }),
        ),
        Format::Human => {
            let mut report = outcome.report.clone();
            report.sort();
            eprint!("{}", report.render(ctx.cwd.as_deref()));
            eprintln!("publishing \"{}\":", outcome.title);
            for s in &outcome.steps {
                let when = if s.earlier { " (done by an earlier run)" } else { "" };
                eprintln!("  {:<8} {}{when}", s.step, s.detail);
            }
            if let Some(why) = &outcome.stopped {
                eprintln!("{why}");
            }
            if let Some(t) = &outcome.social {
                for (name, p) in [("Bluesky", &t.bluesky), ("Mastodon", &t.mastodon)] {
                    println!("── {name} ({} of {}) ──\n{}\n", p.length, p.limit, p.text);
                }
            }
            if human && ok {
                eprintln!("done: every step of publication day is recorded in {}", ctx.show(&outcome.record));
            }
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
