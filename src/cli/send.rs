//! `newsdesk send`: to the list, to test addresses (`--to`), or to every subscriber
//! (`--subscribers`, with a progress bar and Ctrl-C to stop after the messages in
//! flight).

use super::preview::{self, PreviewArgs, human_summary};
use super::{Context, Format, SelectArgs, confirm, print_report};
use crate::config::Config;
use crate::delivery::engine::{Progress, RunSummary};
use crate::diag::Report;
use crate::ops::send::{self, Refused, SendEvent, SendOptions};
use crate::ops::send_subscribers::{self, SubscriberSendOptions};
use crate::store::ledger::{Mode, Started};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Arguments of `newsdesk send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Send this post (slug or file name) instead of the newest.
    #[arg(long, value_name = "SLUG")]
    pub post: Option<String>,
    /// Test send to ADDR instead of the list (repeatable); not recorded as sent.
    #[arg(long = "to", value_name = "ADDR")]
    pub to: Vec<String>,
    /// Send even if the ledger says this issue already went to the list; with
    /// --subscribers, even when the previous issue had too many complaints or bounces.
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation (for scripts).
    #[arg(short, long)]
    pub yes: bool,
    /// With `[email] transport = "buttondown"`: send the issue at Buttondown instead of leaving a draft.
    #[arg(long)]
    pub publish: bool,
    /// Do what `preview` does instead: write the message, send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output folder for `--dry-run` [default: `_preview` beside the config file].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// `--subscribers` and its flags: per-subscriber sends.
    #[command(flatten)]
    pub subscriber_send: SubscriberArgs,
}

/// The subscriber-send flags of `newsdesk send`.
#[derive(Debug, Clone, Default, Args)]
pub struct SubscriberArgs {
    /// Send to every active subscriber (one personalised message each) instead of the list address.
    #[arg(long, conflicts_with = "to")]
    pub subscribers: bool,
    /// Continue an interrupted subscriber send (running `send --subscribers` again does the same).
    #[arg(long, requires = "subscribers")]
    pub resume: bool,
    /// Retry only the rows that failed (temporarily or permanently); nothing else is sent.
    #[arg(long, requires = "subscribers", conflicts_with_all = ["include_new", "skip_unknown"])]
    pub retry_failed: bool,
    /// Leave rows whose earlier attempt was interrupted mid-send ("unknown") alone instead of resending them.
    #[arg(long, requires = "subscribers")]
    pub skip_unknown: bool,
    /// Also send to subscribers who joined after this send started.
    #[arg(long, requires = "subscribers")]
    pub include_new: bool,
}

pub fn run(config: &Config, args: &SendArgs, ctx: &Context) -> ExitCode {
    if args.subscriber_send.subscribers {
        return run_subscribers(config, args, ctx);
    }
    let buttondown = config.email.as_ref().is_some_and(|e| e.transport == "buttondown");
    if buttondown && args.to.is_empty() && !args.dry_run {
        return run_buttondown(config, args, ctx);
    }
    if args.dry_run {
        let p = PreviewArgs {
            select: args.select,
            post: args.post.clone(),
            out: args.out.clone(),
            open: false,
            dns: false,
            format: args.format,
        };
        return preview::run(config, &p, ctx);
    }
    let human = args.format == Format::Human;
    let refused = |r: Refused| {
        let mut report = r.report;
        report.sort();
        let extra = match r.already_sent {
            Some(prev) => serde_json::json!({ "ok": false, "already_sent": prev }),
            None => serde_json::json!({ "ok": false }),
        };
        print_report(&report, args.format, ctx, extra);
        ExitCode::FAILURE
    };
    let options = SendOptions {
        selection: args.select.selection_for(config, args.post.as_deref(), args.format),
        post: args.post.clone(),
        to: args.to.clone(),
        force: args.force,
    };
    let send = match send::prepare(config, &options) {
        Ok(s) => s,
        Err(r) => return refused(r),
    };
    if human {
        eprint!("{}", send.report.render(ctx.cwd()));
    }
    let destinations = send.destinations();
    let summary = &send.prepared[0].summary;
    if human {
        print!("{}", human_summary(summary, ctx));
        println!(
            "Send to:    {}{}",
            destinations.join(", "),
            if send.is_test { " (test send; not recorded)" } else { "" }
        );
        println!("Transport:  {}", send.transport());
    }
    if !args.yes
        && std::io::stdin().is_terminal()
        && !confirm(&format!("Send \"{}\" to {}?", summary.subject, destinations.join(", ")))
    {
        eprintln!("nothing was sent");
        return ExitCode::FAILURE;
    }
    let outcome = send.send(&mut |event| match event {
        SendEvent::Retrying { address, failure, attempt, max_attempts, wait } if human => eprintln!(
            "temporary failure sending to {address}: {failure}; retrying in {:.1}s (attempt {attempt} of {max_attempts})",
            wait.as_secs_f64(),
        ),
        SendEvent::Sent { address, reply } if human => println!("sent to {address}: {reply}"),
        _ => {}
    });
    let outcome = match outcome {
        Ok(o) => o,
        Err(r) => return refused(r),
    };
    match args.format {
        Format::Human => {
            let errors =
                Report { diagnostics: outcome.report.diagnostics.iter().filter(|d| d.is_error()).cloned().collect() };
            eprint!("{}", errors.render(ctx.cwd()));
        }
        Format::Json => print_report(
            &outcome.report,
            Format::Json,
            ctx,
            serde_json::json!({ "ok": outcome.ok, "message": outcome.message, "deliveries": outcome.deliveries }),
        ),
    }
    if outcome.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `send --subscribers`: the plan, a prompt, then the engine with a progress bar.
fn run_subscribers(config: &Config, args: &SendArgs, ctx: &Context) -> ExitCode {
    let flags = &args.subscriber_send;
    let options = SubscriberSendOptions {
        selection: args.select.selection_for(config, args.post.as_deref(), args.format),
        post: args.post.clone(),
        retry_failed: flags.retry_failed,
        skip_unknown: flags.skip_unknown,
        include_new: flags.include_new,
        dry_run: args.dry_run,
        force: args.force,
    };
    let fail = |mut report: Report| {
        report.sort();
        print_report(&report, args.format, ctx, serde_json::json!({ "ok": false }));
        ExitCode::FAILURE
    };
    let send = match send_subscribers::prepare(config, &options) {
        Ok(s) => s,
        Err(report) => return fail(report),
    };
    let human = args.format == Format::Human;
    let plan = &send.plan;
    if human {
        eprint!("{}", send.report.render(ctx.cwd()));
        eprintln!("Issue:      {} ({})", send.title, send.label);
        eprintln!("Subject:    {}", send.subject);
        eprintln!("Send to:    {}", plan.describe());
        eprintln!("Transport:  {}", send.transport);
    }
    if args.dry_run {
        if human {
            eprintln!("dry run: nothing was sent");
        } else {
            print_report(
                &send.report,
                args.format,
                ctx,
                serde_json::json!({ "ok": true, "dry_run": true, "plan": plan.json() }),
            );
        }
        return ExitCode::SUCCESS;
    }
    if plan.to_send == 0 {
        if human {
            eprintln!("nothing to send: {}", plan.nothing_reason());
        } else {
            print_report(&send.report, args.format, ctx, serde_json::json!({ "ok": true, "plan": plan.json() }));
        }
        return ExitCode::SUCCESS;
    }
    let n = plan.to_send;
    if !args.yes
        && std::io::stdin().is_terminal()
        && !confirm(&format!("Send \"{}\" to {n} subscriber{}?", send.title, if n == 1 { "" } else { "s" }))
    {
        eprintln!("nothing was sent");
        return ExitCode::FAILURE;
    }

    let stop = Arc::new(AtomicBool::new(false));
    install_ctrl_c(stop.clone());
    let bar = progress_bar(human);
    let mode = send.mode;
    let on_start = |s: &Started| {
        if let Some(b) = &bar {
            b.set_length(s.to_send.max(0) as u64);
        }
        if human && s.unknown > 0 && matches!(mode, Mode::Resume { .. }) {
            let what =
                if flags.skip_unknown { "left alone (--skip-unknown)" } else { "sent again with the same Message-ID" };
            eprintln!(
                "{} message{} of an interrupted send may or may not have reached the server: {what}",
                s.unknown,
                if s.unknown == 1 { "" } else { "s" }
            );
        }
    };
    let on_progress = |p: &Progress| {
        if let Some(b) = &bar {
            b.set_position(p.done());
            let tf = p.failed_temporary.load(Ordering::Relaxed) + p.failed_permanent.load(Ordering::Relaxed);
            if tf > 0 {
                b.set_message(format!("{tf} failed"));
            }
        }
    };
    let report = send.report.clone();
    let result = send.run(stop, &on_start, &on_progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    match result {
        Ok(run) => {
            let summary = &run.summary;
            let ok = summary.stopped.is_none() && summary.ledger.open() == 0;
            match args.format {
                Format::Human => {
                    print_summary(summary);
                    print_refusals(&run.refused);
                }
                Format::Json => print_report(
                    &report,
                    Format::Json,
                    ctx,
                    serde_json::json!({ "ok": ok, "summary": summary, "refused": run.refused }),
                ),
            }
            if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(report) => fail(report),
    }
}

/// `send` to Buttondown: a draft there (or, with `--publish`, the issue sent), once.
fn run_buttondown(config: &Config, args: &SendArgs, ctx: &Context) -> ExitCode {
    use crate::ops::buttondown::{self, HandOffOptions};
    let what = if args.publish { "Send" } else { "Make a Buttondown draft of" };
    if !args.yes && std::io::stdin().is_terminal() && !confirm(&format!("{what} the issue at Buttondown?")) {
        eprintln!("nothing was sent");
        return ExitCode::FAILURE;
    }
    let options = HandOffOptions {
        selection: args.select.selection_for(config, args.post.as_deref(), args.format),
        post: args.post.clone(),
        publish: args.publish,
        force: args.force,
    };
    match buttondown::hand_off(config, &options) {
        Ok(done) => {
            match args.format {
                Format::Json => print_report(
                    &Report::default(),
                    Format::Json,
                    ctx,
                    serde_json::json!({ "ok": true, "buttondown": done }),
                ),
                Format::Human => match (done.status.as_str(), done.existing) {
                    ("draft", false) => eprintln!(
                        "made a draft at Buttondown: {} (\"{}\"); look it over there, then publish it there or with `newsdesk send --publish`",
                        done.id, done.subject
                    ),
                    ("draft", true) => eprintln!(
                        "this issue is a Buttondown draft already ({}): nothing new was made; `newsdesk send --publish` sends it, --force makes another",
                        done.id
                    ),
                    (status, _) => {
                        eprintln!("Buttondown has the issue as {} ({status}): it sends it to the list", done.id)
                    }
                },
            }
            ExitCode::SUCCESS
        }
        Err(mut report) => {
            report.sort();
            print_report(&report, args.format, ctx, serde_json::json!({ "ok": false }));
            ExitCode::FAILURE
        }
    }
}

/// First Ctrl-C: finish the messages in flight and stop (the rest stays pending).
/// Second: exit at once (rows in flight are then reported as unknown by the next run).
fn install_ctrl_c(stop: Arc<AtomicBool>) {
    let presses = AtomicUsize::new(0);
    let _ = ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            stop.store(true, Ordering::SeqCst);
            eprintln!("\nstopping after the messages in flight (Ctrl-C again to quit at once)");
        } else {
            std::process::exit(130);
        }
    });
}

fn progress_bar(human: bool) -> Option<ProgressBar> {
    if !human || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {rate} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} msg/s", s.per_sec());
            });
    bar.set_style(style);
    Some(bar)
}

/// The recipients the relay refused, as the bounces they now count as.
fn print_refusals(refused: &[crate::ops::bounces::Applied]) {
    use crate::store::bounces::Effect;
    let bounced: Vec<&str> = refused
        .iter()
        .filter(|a| matches!(a.effect, Effect::Bounced | Effect::BouncedAfterSoft { .. }))
        .map(|a| a.email.as_str())
        .collect();
    if !bounced.is_empty() {
        eprintln!(
            "{} address(es) refused for good are now bounced and will not be mailed again: {}",
            bounced.len(),
            bounced.join(", ")
        );
    }
    let soft = refused.iter().filter(|a| matches!(a.effect, Effect::SoftCounted { .. })).count();
    if soft > 0 {
        eprintln!("{soft} refusal(s) counted as soft bounces (`newsdesk status` shows them)");
    }
}

fn print_summary(s: &RunSummary) {
    let mut out = std::io::stderr().lock();
    for w in &s.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(
        out,
        "sent {} in {:.1}s ({:.1} messages/s); {} skipped as already sent",
        s.sent, s.elapsed_secs, s.per_second, s.already_sent
    );
    if s.failed_temporary > 0 || s.failed_permanent > 0 {
        let _ = writeln!(
            out,
            "failed: {} temporarily (retried {} times in all), {} permanently",
            s.failed_temporary, s.retries, s.failed_permanent
        );
    } else if s.retries > 0 {
        let _ = writeln!(out, "{} temporary failures were retried successfully", s.retries);
    }
    let slow = &s.slow_downs;
    if slow.count > 0 {
        let why: Vec<String> = slow.replies.iter().map(|(reply, n)| format!("{n}× \"{reply}\"")).collect();
        let mut down = format!("down to {} connection(s)", slow.fewest_connections);
        if let Some(rate) = slow.lowest_per_second {
            down.push_str(&format!(" and {rate:.1} messages/s"));
        }
        let _ = writeln!(
            out,
            "the server asked newsdesk to slow down {} time(s) ({down}; not counted as attempts): {}",
            slow.count,
            why.join(", ")
        );
    }
    if s.unknown > 0 {
        let _ = writeln!(
            out,
            "{} message(s) went out whole but no reply came: the server may have them; left unknown, not retried \
             in this run (`newsdesk status` lists them; the next `send --subscribers` sends them again with the \
             same Message-ID, or leave them with --skip-unknown)",
            s.unknown
        );
    }
    if s.unknown_resent > 0 {
        let _ = writeln!(out, "{} interrupted message(s) sent again with the same Message-ID", s.unknown_resent);
    }
    if s.unknown_skipped > 0 {
        let _ = writeln!(out, "{} unknown message(s) left alone (--skip-unknown)", s.unknown_skipped);
    }
    if s.cancelled > 0 {
        let _ = writeln!(out, "{} not sent: unsubscribed after the send started", s.cancelled);
    }
    if s.joined_since > 0 {
        let _ = writeln!(
            out,
            "{} subscriber(s) joined after this send started: add them with --include-new",
            s.joined_since
        );
    }
    if let Some(why) = &s.stopped {
        let _ = writeln!(out, "stopped early: {why}");
    }
    let c = &s.ledger;
    let _ = writeln!(
        out,
        "ledger for {}: {} sent, {} pending, {} unknown, {} failed temporarily, {} failed permanently, {} cancelled",
        s.label, c.sent, c.pending, c.sending, c.failed_temporary, c.failed_permanent, c.cancelled
    );
    if c.open() > 0 {
        let _ = writeln!(
            out,
            "run `newsdesk send --subscribers --resume` to continue; `newsdesk status` shows the details"
        );
    }
}
