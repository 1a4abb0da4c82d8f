//! `newsdesk check`.

use super::{Context, Format, exit, print_report};
use crate::config::Config;
use crate::model::Selection;
use crate::ops::check::{self, CheckOptions};
use std::process::ExitCode;

pub fn run(config: &Config, selection: Selection, strict: bool, format: Format, ctx: &Context) -> ExitCode {
    let report = check::check(config, &CheckOptions { selection });
    let failed = report.has_errors() || (strict && report.warnings() > 0);
    print_report(&report, format, ctx, serde_json::json!({ "ok": !failed }));
    if format == Format::Human && !failed {
        eprintln!("checked {}: no errors", ctx.show(&config.posts_dir));
    }
    exit(failed)
}
