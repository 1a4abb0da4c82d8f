//! `newsdesk social`: prints the Bluesky and Mastodon texts of the issue.

use super::{Context, Format, SelectArgs, print_report};
use crate::config::Config;
use crate::ops::social::{self, SocialOptions};
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct SocialArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// This post (slug or file name) instead of the newest.
    #[arg(long, value_name = "SLUG")]
    pub post: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(config: &Config, args: &SocialArgs, ctx: &Context) -> ExitCode {
    let options = SocialOptions { selection: args.select.selection(), post: args.post.clone() };
    match social::social(config, &options) {
        Ok((texts, report)) => {
            let failed = report.has_errors();
            match args.format {
                Format::Json => {
                    let v = serde_json::json!({ "bluesky": texts.bluesky, "mastodon": texts.mastodon });
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    if !report.diagnostics.is_empty() {
                        eprint!("{}", report.render(ctx.cwd.as_deref()));
                    }
                }
                Format::Human => {
                    eprint!("{}", report.render(ctx.cwd.as_deref()));
                    for (name, t) in [("Bluesky", &texts.bluesky), ("Mastodon", &texts.mastodon)] {
                        let counted = if name == "Bluesky" { "graphemes" } else { "characters, links as 23" };
                        println!("── {name} ({} of {} {counted}) ──", t.length, t.limit);
                        println!("{}", t.text);
                        if !t.dropped.is_empty() {
                            println!("(left out to fit: {})", t.dropped.join("; "));
                        }
                        println!();
                    }
                }
            }
            if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Err(mut report) => {
            report.sort();
            print_report(&report, args.format, ctx, serde_json::json!({}));
            ExitCode::FAILURE
        }
    }
}
