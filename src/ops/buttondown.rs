//! `newsdesk send` with `[email] transport = "buttondown"`: the issue handed to the
//! editors' Buttondown account instead of mailed: its subject from `subject.txt`, its
//! body the post's markdown (the front matter left out; the web page's header is the
//! site's layout and never in the file), as a **draft** unless `--publish`.
//!
//! The ledger keeps the hand-off as a list send to `buttondown` with Buttondown's email
//! id, so a second run makes no second draft: it says where the first one is, and
//! `--publish` then sends that draft.

use super::issue::{self, Audience};
use crate::config::Config;
use crate::diag::{Diagnostic, Report};
use crate::model::Selection;
use crate::store::ledger::IssueKey;
use crate::store::ledger::list::{self, Claim, Outcome};
use crate::transport::buttondown::{self, Account};
use serde::Serialize;

/// The ledger's destination for hand-offs.
pub const DESTINATION: &str = "buttondown";

#[derive(Debug, Clone)]
pub struct HandOffOptions {
    pub selection: Selection,
    pub post: Option<String>,
    /// Send it (status `about_to_send`) instead of leaving a draft.
    pub publish: bool,
    /// Make a new email even though the ledger has one for this issue.
    pub force: bool,
}

/// What happened at Buttondown.
#[derive(Debug, Clone, Serialize)]
pub struct HandedOff {
    pub id: String,
    /// `draft` or `about_to_send`.
    pub status: String,
    pub subject: String,
    /// The ledger already had this email: nothing new was created.
    pub existing: bool,
}

fn account(config: &Config) -> Result<Account, Diagnostic> {
    let b = config
        .buttondown
        .as_ref()
        .ok_or_else(|| Diagnostic::error("no-buttondown", "there is no [buttondown] section").in_file(&config.path))?;
    let key = match (&b.api_key_env, &b.api_key_file) {
        (Some(var), _) => std::env::var(var).ok().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
            Diagnostic::error(
                "no-buttondown-key",
                format!("the Buttondown API key is read from `{var}`, which is not set"),
            )
            .help(format!("export {var}=... first (the key is on Buttondown's API keys page), or use `api_key_file`"))
        })?,
        (None, Some(file)) => {
            let path = config.resolve(file);
            std::fs::read_to_string(&path).map(|k| k.trim().to_string()).ok().filter(|k| !k.is_empty()).ok_or_else(
                || {
                    Diagnostic::error(
                        "no-buttondown-key",
                        format!("cannot read the Buttondown API key from `{}`", path.display()),
                    )
                    .help("write the key on the file's first line, and keep the file private (chmod 600)")
                },
            )?
        }
        (None, None) => return Err(Diagnostic::error("no-buttondown-key", "[buttondown] names no API key source")),
    };
    Ok(Account { api_url: b.api_url.clone(), api_key: key.trim().to_string() })
}

/// Creates (or, with `publish`, sends) the issue's email at Buttondown, once.
pub fn hand_off(config: &Config, options: &HandOffOptions) -> Result<HandedOff, Report> {
    let mut report = Report::default();
    let fail = |mut report: Report, d: Diagnostic| {
        report.push(d);
        report
    };
    let Some(prepared) =
        issue::prepare(config, options.selection, options.post.as_deref(), Audience::List, &mut report)
    else {
        return Err(report);
    };
    let digest = &prepared.digest;
    let recipient =
        digest.list_recipient().unwrap_or_else(|| digest.test_recipient(digest.settings.from.email.clone()));
    let subject = digest.parts_for(&recipient).subject;
    let post = prepared.archive.posts.iter().find(|p| p.id == digest.issue_id).cloned();
    let Some(post) = post else {
        return Err(fail(report, Diagnostic::error("no-post", "the issue's post is gone")));
    };
    let body = match crate::render::render(&post) {
        Ok(r) => r.markdown,
        Err(d) => return Err(fail(report, d)),
    };
    let account = match account(config) {
        Ok(a) => a,
        Err(d) => return Err(fail(report, d)),
    };
    let database = config.database_path();
    let mut conn = match crate::store::db::open(&database) {
        Ok(c) => c,
        Err(e) => return Err(fail(report, e.diagnostic())),
    };
    let label = post.source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or(post.slug.clone());
    let key = IssueKey { id: post.id.clone(), label };
    let sql = |e: rusqlite::Error| crate::store::db::DbError::at(&database, e).diagnostic();
    let row = match list::claim(&mut conn, &key, DESTINATION, "", &subject, options.force) {
        Ok(Claim::Started(row)) => row,
        Ok(Claim::Blocked(prev)) => {
            let reply = prev.server_reply.clone().unwrap_or_default();
            let id = prev.message_id.clone();
            // A draft made earlier, and now --publish: send that one.
            if options.publish && reply.starts_with("draft") && !id.is_empty() {
                return match buttondown::send_draft(&account, &id) {
                    Ok(email) => {
                        let _ =
                            list::finish(&conn, prev.id, Outcome::Sent, &format!("{} {}", email.status, email.id), 1);
                        Ok(HandedOff { id: email.id, status: email.status, subject, existing: true })
                    }
                    Err(why) => Err(fail(
                        report,
                        Diagnostic::error("buttondown", format!("the draft {id} was not sent: {why}")).help(
                            "look at the draft in Buttondown; run `newsdesk send --publish` again once it is fixed",
                        ),
                    )),
                };
            }
            if reply.is_empty() {
                return Err(fail(
                    report,
                    Diagnostic::error(
                        "buttondown-unknown",
                        format!("a hand-off of this issue to Buttondown started on {} and never finished: it may or may not have made an email", prev.started_at),
                    )
                    .help("look in Buttondown's drafts; if there is none, pass --force to make it"),
                ));
            }
            return Ok(HandedOff {
                status: reply.split_whitespace().next().unwrap_or("draft").to_string(),
                id,
                subject,
                existing: true,
            });
        }
        Err(e) => return Err(fail(report, sql(e))),
    };
    match buttondown::create(&account, &subject, &body, options.publish) {
        Ok(email) => {
            let recorded = list::set_message_id(&conn, row, &email.id)
                .and_then(|_| list::finish(&conn, row, Outcome::Sent, &format!("{} {}", email.status, email.id), 1));
            if let Err(e) = recorded {
                report.push(sql(e));
            }
            Ok(HandedOff { id: email.id, status: email.status, subject, existing: false })
        }
        Err(why) => {
            let _ = list::finish(&conn, row, Outcome::FailedPermanent, &why, 1);
            Err(fail(
                report,
                Diagnostic::error("buttondown", format!("Buttondown did not take the issue: {why}"))
                    .help("check the API key (Buttondown's settings, API) and the issue, then send again"),
            ))
        }
    }
}
