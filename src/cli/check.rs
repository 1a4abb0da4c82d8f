//! `newsdesk check`.

use super::{Context, Format, dns_options, exit, human_deliverability, print_report};
use crate::config::Config;
use crate::deliverability::{Status, count};
use crate::model::Selection;
use crate::ops::check::{self, CheckOptions};
use std::process::ExitCode;

/// Errors fail, the deliverability report's included; with `strict`, so do warnings:
/// `--strict` is the gate before a release, and a misaligned or unsigned message is
/// worth stopping for there.
pub fn run(config: &Config, selection: Selection, strict: bool, dns: bool, format: Format, ctx: &Context) -> ExitCode {
    let dns = match dns_options(dns) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = check::check(config, &CheckOptions { selection, dns });
    let (report, checks) = (&outcome.report, &outcome.deliverability);
    let failed = report.has_errors()
        || count(checks, Status::Error) > 0
        || (strict && (report.warnings() > 0 || count(checks, Status::Warning) > 0));
    print_report(report, format, ctx, serde_json::json!({ "ok": !failed, "deliverability": checks }));
    if format == Format::Human {
        if !checks.is_empty() {
            print!("{}", human_deliverability(checks));
        }
        if !failed {
            eprintln!("checked {}: no errors", ctx.show(&config.posts_dir));
        }
    }
    exit(failed)
}
