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
use crate::store::ledger::State;
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
    let key = config
        .secret("the Buttondown API key", b.api_key_env.as_deref(), b.api_key_file.as_deref())
        .map_err(|e| Diagnostic::error("no-buttondown-key", e.message).help(e.help))?;
    Ok(Account { api_url: b.api_url.clone(), api_key: key.trim().to_string() })
}

/// What a hand-off asked Buttondown for, noted on its ledger row before the request
/// (`requested draft, key newsdesk-...`): a run that finds the row unfinished repeats
/// exactly that request, and Buttondown's idempotency key makes the repeat return the
/// first request's email if it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requested {
    send: bool,
    key: String,
}

impl Requested {
    fn new(send: bool) -> Requested {
        Requested { send, key: format!("newsdesk-{}", crate::store::subscribers::new_token()) }
    }

    fn note(&self) -> String {
        format!("requested {}, key {}", if self.send { "about_to_send" } else { "draft" }, self.key)
    }

    fn parse(reply: &str) -> Option<Requested> {
        let rest = reply.strip_prefix("requested ")?;
        let (status, rest) = rest.split_once(", key ")?;
        let key = rest.split(';').next()?.trim();
        let send = match status {
            "draft" => false,
            "about_to_send" => true,
            _ => return None,
        };
        (!key.is_empty()).then(|| Requested { send, key: key.to_string() })
    }
}

/// The email's body: the post's markdown (its front matter is not part of it) under
/// the edition's title, which the editors keep when they cut the web page's header
/// (publishing.md: "leaving only the edition date").
pub fn edition_body(title: &str, markdown: &str) -> String {
    format!("# {title}\n\n{}", markdown.trim_start_matches(['\r', '\n']))
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
        Ok(r) => edition_body(&post.title, &r.markdown),
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
    let (row, requested) = match list::claim(&mut conn, &key, DESTINATION, "", &subject, options.force) {
        Ok(Claim::Started(row)) => {
            let requested = Requested::new(options.publish);
            if let Err(e) = list::set_reply(&conn, row, &requested.note()) {
                return Err(fail(report, sql(e)));
            }
            (row, requested)
        }
        Ok(Claim::Blocked(prev)) if prev.state == State::Sent => {
            let reply = prev.server_reply.clone().unwrap_or_default();
            let id = prev.message_id.clone();
            // A draft made earlier, and now --publish: send that one, as the post is now.
            if options.publish && reply.starts_with("draft") && !id.is_empty() {
                return match buttondown::send_draft(&account, &id, &subject, &body) {
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
            return Ok(HandedOff {
                status: reply.split_whitespace().next().unwrap_or("draft").to_string(),
                id,
                subject,
                existing: true,
            });
        }
        Ok(Claim::Blocked(prev)) => match prev.server_reply.as_deref().and_then(Requested::parse) {
            // An earlier run asked and never heard back: ask again, the same request
            // under the same key, so Buttondown answers with the email it may have made.
            Some(requested) => (prev.id, requested),
            None => {
                return Err(fail(
                    report,
                    Diagnostic::error(
                        "buttondown-unknown",
                        format!("a hand-off of this issue to Buttondown started on {} and never finished: it may or may not have made an email", prev.started_at),
                    )
                    .help("look in Buttondown's drafts; if there is none, pass --force to make it"),
                ));
            }
        },
        Err(e) => return Err(fail(report, sql(e))),
    };
    match buttondown::create(&account, &subject, &body, requested.send, &requested.key) {
        Ok(email) => {
            let recorded = list::set_message_id(&conn, row, &email.id)
                .and_then(|_| list::finish(&conn, row, Outcome::Sent, &format!("{} {}", email.status, email.id), 1));
            if let Err(e) = recorded {
                report.push(sql(e));
            }
            // A repeated draft request, and now --publish: send it.
            if options.publish && !requested.send {
                return match buttondown::send_draft(&account, &email.id, &subject, &body) {
                    Ok(sent) => {
                        let _ = list::finish(&conn, row, Outcome::Sent, &format!("{} {}", sent.status, sent.id), 1);
                        Ok(HandedOff { id: sent.id, status: sent.status, subject, existing: true })
                    }
                    Err(why) => Err(fail(
                        report,
                        Diagnostic::error("buttondown", format!("the draft {} was not sent: {why}", email.id))
                            .help("look at the draft in Buttondown; run `newsdesk send --publish` again"),
                    )),
                };
            }
            Ok(HandedOff { id: email.id, status: email.status, subject, existing: false })
        }
        Err(why) if why.uncertain => {
            // Buttondown may have made it: the row stays unfinished, with the request,
            // and the next run repeats it under the same key.
            let _ = list::finish(&conn, row, Outcome::Unknown, &format!("{}; {why}", requested.note()), 1);
            Err(fail(
                report,
                Diagnostic::error("buttondown", format!("no clear answer from Buttondown: {why}")).help(
                    "run the same command again: it repeats the request with the same idempotency key, so Buttondown makes at most one email",
                ),
            ))
        }
        Err(why) => {
            let _ = list::finish(&conn, row, Outcome::FailedPermanent, &why.message, 1);
            Err(fail(
                report,
                Diagnostic::error("buttondown", format!("Buttondown did not take the issue: {why}"))
                    .help("check the API key (Buttondown's settings, API) and the issue, then send again"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_noted_on_the_row_reads_back() {
        for send in [false, true] {
            let r = Requested::new(send);
            assert!(r.key.starts_with("newsdesk-") && r.key.len() == 41, "{}", r.key);
            assert_eq!(Requested::parse(&r.note()), Some(r.clone()));
            assert_eq!(Requested::parse(&format!("{}; no answer from Buttondown: timed out", r.note())), Some(r));
        }
        assert_eq!(Requested::parse("draft em_1"), None);
        assert_eq!(Requested::parse(""), None);
        assert_eq!(Requested::parse("requested maybe, key k"), None);
    }

    #[test]
    fn the_body_keeps_the_edition_s_title_and_not_the_front_matter() {
        assert_eq!(
            edition_body("Week Ending May 10, 2020", "\n\n## News\n"),
            "# Week Ending May 10, 2020\n\n## News\n"
        );
    }
}
