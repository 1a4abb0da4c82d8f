//! `newsdesk publish`: publication day in one command, LWKD's publishing.md as steps:
//! check (errors stop it) → build the feeds → the preview report → the editor's yes →
//! send (to Buttondown, the list address or the subscribers, as configured) → ping the
//! WebSub hub → the social texts.
//!
//! The issue is `--post`, else the newest one dated today or earlier in `[site]
//! timezone`: on publication day the issue `new` dated for tonight is still in the
//! future, and publishing it is the point. It is published as of its own date, so the
//! feeds take it (and nothing dated later), and the question before the send says how
//! early it is.
//!
//! Each finished step is recorded for the issue's file in `.newsdesk/publish/LABEL.json`
//! (beside the database), so a `publish` that stopped (an error, Ctrl-C, a crash) run
//! again goes on from the first unfinished step. Until the send is done, check, build
//! and preview run again each time, so an edit made in between reaches the feeds and
//! the mail alike. The send cannot happen twice anyway: each send path's ledger refuses
//! or resumes a send it has seen (a list send already accepted, a Buttondown email
//! already made, a subscriber send resumed); and a file whose issue id changed after it
//! was sent (a new date, a new slug) is refused rather than sent as a new issue.

use super::{build, buttondown, check, issue, preview, send, send_subscribers, social, websub};
use crate::config::Config;
use crate::deliverability::{Status, count};
use crate::diag::{Diagnostic, Report};
use crate::model::{Post, Selection};
use chrono::{DateTime, FixedOffset, TimeZone};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The steps, in order.
pub const STEPS: [&str; 6] = ["check", "build", "preview", "send", "ping", "social"];

#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub selection: Selection,
    /// `--post`: this post instead of the newest.
    pub post: Option<String>,
    /// Where `build` writes the feeds.
    pub out: PathBuf,
}

/// What the record file holds: each finished step, when, and what it did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    pub issue: String,
    pub steps: BTreeMap<String, Done>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub at: String,
    pub detail: String,
}

/// One step of this run.
#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    pub step: &'static str,
    /// Finished by an earlier run: not done again.
    pub earlier: bool,
    pub detail: String,
}

/// What `publish` did.
#[derive(Debug, Default)]
pub struct PublishOutcome {
    pub title: String,
    pub steps: Vec<StepOutcome>,
    /// Every diagnostic of the steps that ran.
    pub report: Report,
    /// Why it stopped before the end (`None`: every step is done).
    pub stopped: Option<String>,
    pub social: Option<crate::social::Texts>,
    /// Where the record is.
    pub record: PathBuf,
}

fn record_path(config: &Config, label: &str) -> PathBuf {
    let db = config.database_path();
    db.parent().unwrap_or(std::path::Path::new(".")).join("publish").join(format!("{label}.json"))
}

fn save(path: &std::path::Path, record: &Record) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::store::db::create_private_dir(dir)?;
    }
    let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    crate::output::write_atomic(path, &json)
}

/// What the editor is asked before the send.
#[derive(Debug, Clone)]
pub struct ToConfirm<'a> {
    pub summary: &'a preview::MessageSummary,
    /// When the issue is dated later than now: its date and how far ahead it is.
    pub dated_ahead: Option<String>,
}

/// The end of today in the site's timezone: on publication day, an issue dated
/// tonight is today's.
fn end_of_today(config: &Config, now: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
    let tz = config.site.tz;
    let tomorrow = now.with_timezone(&tz).date_naive() + chrono::Duration::days(1);
    let midnight = tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.fixed_offset())
        .unwrap_or_else(|| now + chrono::Duration::days(1))
}

/// The issue to publish: `--post` (any date: the editor named it), else the newest one
/// dated before today ends.
fn pick_issue(config: &Config, options: &PublishOptions) -> (Option<Post>, Report) {
    let loaded = crate::load::load(config);
    let mut report = Report::default();
    let selection = match options.post {
        Some(_) => Selection { future: true, ..options.selection },
        None => Selection { now: end_of_today(config, options.selection.now), ..options.selection },
    };
    match issue::pick(config, &loaded.archive, selection, options.post.as_deref()) {
        Ok(p) => (Some(p.clone()), report),
        Err(d) => {
            report.extend(loaded.report.diagnostics);
            report.push(d);
            (None, report)
        }
    }
}

/// Runs the steps not finished yet. `confirm` is asked before the send, with the
/// message's summary; `false` stops there with nothing sent.
pub fn publish(
    config: &Config,
    options: &PublishOptions,
    confirm: &mut dyn FnMut(&ToConfirm) -> bool,
) -> PublishOutcome {
    let mut out = PublishOutcome::default();
    // The issue first: every step below uses this one post.
    let (post, report) = pick_issue(config, options);
    out.report = report;
    let Some(post) = post else {
        out.stopped = Some("there is no issue to publish".into());
        return out;
    };
    out.title = post.title.clone();
    let label = post.source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or(post.slug.clone());
    let path = record_path(config, &label);
    out.record = path.clone();
    let earlier: Option<Record> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let mut record = match earlier {
        Some(r) if r.issue == post.id => r,
        // Sent under another id: the date or the slug changed since. Every ledger knows
        // issues by id, so going on would mail it again as a new issue.
        Some(r) if r.steps.contains_key("send") => {
            out.report.push(
                Diagnostic::error(
                    "publish-id-changed",
                    format!(
                        "this file was published as `{}` (sent {}); its id is now `{}`: its date or slug changed since",
                        r.issue,
                        r.steps["send"].at,
                        post.id
                    ),
                )
                .in_file(&post.source)
                .help(format!(
                    "put the date and slug back to publish the rest of its steps; to send it again as a new issue, remove `{}` first",
                    path.display()
                )),
            );
            out.stopped = Some("this issue was sent under another id: nothing was sent".into());
            return out;
        }
        _ => Record { issue: post.id.clone(), steps: BTreeMap::new() },
    };
    let slug = Some(post.slug.clone());
    // The issue is published as of its own date when that is later than now: the feeds
    // take it, and nothing dated after it.
    let now = options.selection.now;
    let dated_ahead = (post.date > now).then(|| {
        let ahead = post.date - now;
        format!("it is dated {}, {} from now", post.date.format("%Y-%m-%d %H:%M %z"), super::check::due_in(ahead))
    });
    let selection = Selection { now: now.max(post.date), ..options.selection };
    let mut summary: Option<preview::MessageSummary> = None;

    for step in STEPS {
        // The social texts are printed every run. Until the send is done, check, build
        // and preview run again: the post may have been edited since, and the editor's
        // yes needs the preview.
        let sent = record.steps.contains_key("send");
        let again = step == "social" || (matches!(step, "check" | "build" | "preview") && !sent);
        if let Some(done) = record.steps.get(step)
            && !again
        {
            out.steps.push(StepOutcome { step, earlier: true, detail: done.detail.clone() });
            continue;
        }
        let result: Result<String, String> = match step {
            "check" => {
                let c = check::check(config, &check::CheckOptions { selection, dns: None });
                let errors = c.report.errors() + count(&c.deliverability, Status::Error);
                out.report.extend(c.report.diagnostics);
                if errors > 0 {
                    Err(format!("`check` found {errors} error(s) (`newsdesk check` shows them all)"))
                } else {
                    Ok("no errors".into())
                }
            }
            "build" => match build::build(config, &build::BuildOptions { selection, out: options.out.clone() }) {
                Ok(b) if !b.report.has_errors() => {
                    out.report.extend(b.report.diagnostics);
                    Ok(format!("{} feed file(s), {} items", b.written.len(), b.items))
                }
                Ok(b) => {
                    out.report.extend(b.report.diagnostics);
                    Err("the feeds were not built".into())
                }
                Err(e) => Err(format!("cannot write the feeds to `{}`: {e}", options.out.display())),
            },
            "preview" => {
                let p = preview::preview(
                    config,
                    &preview::PreviewOptions {
                        selection,
                        post: slug.clone(),
                        out: preview::default_out(config),
                        dns: None,
                    },
                );
                let failed = p.report.has_errors()
                    || p.previewed.as_ref().is_some_and(|pv| count(&pv.deliverability, Status::Error) > 0);
                out.report.extend(p.report.diagnostics);
                match p.previewed {
                    Some(pv) if !failed => {
                        let detail = format!("\"{}\" from {}", pv.summary.subject, pv.summary.from);
                        summary = Some(pv.summary);
                        Ok(detail)
                    }
                    _ => Err("the preview has errors (`newsdesk preview` shows the deliverability report)".into()),
                }
            }
            "send" => match &summary {
                // A run that found the preview done earlier renders it again to ask.
                None => Err("there is no preview to confirm".into()),
                Some(s) if !confirm(&ToConfirm { summary: s, dated_ahead: dated_ahead.clone() }) => {
                    out.stopped = Some("not confirmed: nothing was sent".into());
                    return out;
                }
                Some(_) => send_step(config, selection, slug.clone(), &mut out.report),
            },
            "ping" => match websub::ping(config) {
                None => Ok("no [feeds] hub: nothing to ping".into()),
                Some(Ok(p)) => Ok(format!("told the hub about {} feed(s)", p.len())),
                Some(Err(d)) => {
                    out.report.push(d);
                    Err("the WebSub hub was not told".into())
                }
            },
            _ => match social::social(config, &social::SocialOptions { selection, post: slug.clone() }) {
                Ok((texts, report)) => {
                    out.report.extend(report.diagnostics);
                    out.social = Some(texts);
                    Ok("Bluesky and Mastodon texts".into())
                }
                Err(report) => {
                    out.report.extend(report.diagnostics);
                    Err("no social texts".into())
                }
            },
        };
        match result {
            Ok(detail) => {
                record.steps.insert(step.to_string(), Done { at: crate::store::clock::now(), detail: detail.clone() });
                if let Err(e) = save(&path, &record) {
                    out.report.push(Diagnostic::error(
                        "publish-record",
                        format!("cannot record the step `{step}` in `{}`: {e}", path.display()),
                    ));
                    out.stopped = Some(format!("`{step}` is done but could not be recorded"));
                    return out;
                }
                out.steps.push(StepOutcome { step, earlier: false, detail });
            }
            Err(why) => {
                out.stopped = Some(format!(
                    "stopped at `{step}`: {why}; fix it and run `newsdesk publish` again to go on from there"
                ));
                return out;
            }
        }
    }
    out
}

/// The send as configured: Buttondown, else the list address, else the subscribers.
fn send_step(
    config: &Config,
    selection: Selection,
    post: Option<String>,
    report: &mut Report,
) -> Result<String, String> {
    let email = config.email.as_ref().ok_or("there is no [email] section")?;
    if email.transport == "buttondown" {
        let o = buttondown::HandOffOptions { selection, post, publish: true, force: false };
        return match buttondown::hand_off(config, &o) {
            Ok(done) => Ok(format!("Buttondown email {} ({})", done.id, done.status)),
            Err(r) => {
                report.extend(r.diagnostics);
                Err("Buttondown did not take the issue".into())
            }
        };
    }
    if email.to.is_some() {
        let o = send::SendOptions { selection, post, to: Vec::new(), force: false };
        return match send::prepare(config, &o) {
            Ok(list) => match list.send(&mut |_| {}) {
                Ok(sent) if sent.ok => {
                    let to: Vec<String> = sent.deliveries.iter().map(|d| d.address.clone()).collect();
                    report.extend(sent.report.diagnostics);
                    Ok(format!("sent to {}", to.join(", ")))
                }
                Ok(sent) => {
                    report.extend(sent.report.diagnostics);
                    Err("the list send failed".into())
                }
                Err(refused) => {
                    report.extend(refused.report.diagnostics);
                    Err("the list send was refused".into())
                }
            },
            // Sent by an earlier run that stopped before recording it: done.
            Err(refused) if refused.already_sent.as_ref().is_some_and(|s| s.sent_at.is_some()) => {
                Ok("sent to the list by an earlier run".into())
            }
            Err(refused) => {
                report.extend(refused.report.diagnostics);
                Err("the list send was refused".into())
            }
        };
    }
    let o = send_subscribers::SubscriberSendOptions {
        selection,
        post,
        retry_failed: false,
        skip_unknown: false,
        include_new: false,
        dry_run: false,
        force: false,
    };
    let prepared = send_subscribers::prepare(config, &o).map_err(|r| {
        report.extend(r.diagnostics);
        "the subscriber send did not start".to_string()
    })?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let run = prepared.run(stop, &|_| {}, &|_| {}).map_err(|r| {
        report.extend(r.diagnostics);
        "the subscriber send stopped".to_string()
    })?;
    let s = &run.summary;
    if s.ledger.open() > 0 {
        return Err(format!("{} subscriber message(s) are not sent yet (`newsdesk status`)", s.ledger.open()));
    }
    Ok(format!("sent to {} subscriber(s), {} already sent before", s.sent, s.already_sent))
}
