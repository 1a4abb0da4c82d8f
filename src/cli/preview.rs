//! `newsdesk preview` (and `send --dry-run`).

use super::{Context, Format, SelectArgs, dns_options, human_deliverability, print_report};
use crate::config::Config;
use crate::deliverability::{Status, count};
use crate::ops::preview::{self, MessageSummary, PreviewOptions};
use clap::Args;
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
    /// Also look up the DKIM key, SPF and DMARC records in DNS.
    #[arg(long)]
    pub dns: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(config: &Config, args: &PreviewArgs, ctx: &Context) -> ExitCode {
    let out = args.out.clone().unwrap_or_else(|| preview::default_out(config));
    let dns = match dns_options(args.dns) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::FAILURE;
        }
    };
    let options = PreviewOptions {
        selection: args.select.selection_for(config, args.post.as_deref(), args.format),
        post: args.post.clone(),
        out: out.clone(),
        dns,
    };
    let outcome = preview::preview(config, &options);
    let report = &outcome.report;
    let Some(previewed) = &outcome.previewed else {
        print_report(report, args.format, ctx, serde_json::json!({ "ok": false }));
        return ExitCode::FAILURE;
    };
    let written: Vec<String> = previewed.written.iter().map(|p| ctx.show(p)).collect();
    // Deliverability warnings leave the exit status alone (the editor still gets the
    // files); its errors (a DKIM key DNS does not publish, a failed lookup) do not.
    let checks = &previewed.deliverability;
    let ok = !report.has_errors() && count(checks, Status::Error) == 0;
    print_report(
        report,
        args.format,
        ctx,
        serde_json::json!({ "ok": ok, "message": previewed.summary, "written": written, "deliverability": checks }),
    );
    if args.format == Format::Human {
        print!("{}", human_summary(&previewed.summary, ctx));
        print!("{}", human_deliverability(checks));
        println!("Wrote:");
        for w in &written {
            println!("  {w}");
        }
    }
    if args.open {
        let html = out.join("message.html");
        if let Err(why) = open_in_browser(&html) {
            eprintln!("note: cannot open a browser ({why}); open {} yourself", ctx.show(&html));
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The report a person reads before sending.
pub fn human_summary(s: &MessageSummary, ctx: &Context) -> String {
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
    out.push_str(&format!("Issue:      {} ({})\n", s.issue.title, ctx.show(&s.issue.source)));
    out.push_str(&format!(
        "Size:       {} message; text part {}, HTML part {} (Gmail clips over 102 KB)\n",
        kb(s.sizes.message),
        kb(s.sizes.text),
        kb(s.sizes.html)
    ));
    out.push_str(&format!("Links:      {} in the HTML part, {} numbered in the text part\n", s.links, s.text_links));
    out.push_str(&format!(
        "Templates:  {}\n",
        s.templates.iter().map(|t| ctx.show(Path::new(t))).collect::<Vec<_>>().join(", ")
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
