//! `newsdesk build`.

use super::{Context, Format, exit, print_report};
use crate::config::Config;
use crate::model::Selection;
use crate::ops::build::{self, BuildOptions};
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(config: &Config, selection: Selection, out: PathBuf, ping: bool, format: Format, ctx: &Context) -> ExitCode {
    let options = BuildOptions { selection, out };
    match build::build(config, &options) {
        Ok(mut outcome) => {
            let built = !outcome.report.has_errors();
            // The hub is told only about feeds that were written.
            let pinged = match (ping && built).then(|| crate::ops::websub::ping(config)) {
                None => Vec::new(),
                Some(None) => {
                    outcome.report.push(
                        crate::diag::Diagnostic::error(
                            "no-hub",
                            "--ping needs a WebSub hub, and `[feeds] hub` is not set",
                        )
                        .in_file(&config.path)
                        .help("add `hub = \"https://pubsubhubbub.appspot.com/\"` (or your hub) under [feeds]"),
                    );
                    Vec::new()
                }
                Some(Some(Ok(pinged))) => pinged,
                Some(Some(Err(d))) => {
                    outcome.report.push(d);
                    Vec::new()
                }
            };
            let ok = !outcome.report.has_errors();
            let written: Vec<String> = outcome.written.iter().map(|p| ctx.show(p)).collect();
            let future: Vec<String> = outcome.future.iter().map(|p| ctx.show(p)).collect();
            print_report(
                &outcome.report,
                format,
                ctx,
                serde_json::json!({ "ok": ok, "written": written, "items": outcome.items, "future": future, "pinged": pinged }),
            );
            if format == Format::Human {
                if built {
                    for w in &written {
                        eprintln!("wrote {w} ({} items)", outcome.items);
                    }
                    match future.len() {
                        0 => {}
                        1 => eprintln!("left out 1 post dated in the future (listed above); `--future` includes it"),
                        n => {
                            eprintln!("left out {n} posts dated in the future (listed above); `--future` includes them")
                        }
                    }
                    for p in &pinged {
                        eprintln!("told the WebSub hub about {} (HTTP {})", p.feed, p.status);
                    }
                } else {
                    eprintln!("error: nothing was written: fix the errors above and build again");
                }
            }
            exit(!ok)
        }
        Err(e) => {
            eprintln!("error: cannot write the feeds to `{}`: {e}", options.out.display());
            eprintln!("  = help: check that the folder is writable; the previous feeds were left as they were");
            ExitCode::FAILURE
        }
    }
}
