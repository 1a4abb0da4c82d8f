//! `newsdesk inbox`: one message on stdin (an MTA pipe), the subscriber it names
//! unsubscribed.
//!
//! Exit status for the MTA: 0 when the message was handled (including "nobody
//! matched", which must not bounce back to a stranger), 75 (EX_TEMPFAIL: the MTA
//! keeps the message and tries again) when the database could not be used.

use super::Context;
use crate::config::Config;
use crate::ops::inbox::{self, InboxOutcome, MatchedBy};
use crate::store::subscribers::SubscriberError;
use std::io::Read;
use std::process::ExitCode;

/// The largest message read; an unsubscribe request is a few kilobytes.
const MAX_MESSAGE: u64 = 10 * 1024 * 1024;

const EX_TEMPFAIL: u8 = 75;

pub fn run(config: &Config, ctx: &Context) -> ExitCode {
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin().lock().take(MAX_MESSAGE).read_to_end(&mut raw) {
        eprintln!("error: cannot read the message from stdin: {e}");
        return ExitCode::from(EX_TEMPFAIL);
    }
    let how = |by: MatchedBy| match by {
        MatchedBy::Token => "by the token in the message",
        MatchedBy::Sender => "by the sender's address",
    };
    match inbox::unsubscribe_from_message(config, &raw) {
        Ok(InboxOutcome::Unsubscribed { email, by }) => {
            eprintln!("unsubscribed {email} ({}): they will get no further issues", how(by));
            ExitCode::SUCCESS
        }
        Ok(InboxOutcome::AlreadyUnsubscribed { email, by }) => {
            eprintln!("{email} had already unsubscribed ({})", how(by));
            ExitCode::SUCCESS
        }
        Ok(InboxOutcome::NoMatch { found }) => {
            let sender = found.sender.as_deref().unwrap_or("no sender");
            eprintln!(
                "nobody unsubscribed: the message ({sender}) names no subscriber (no known token, and the sender is not on the list)"
            );
            ExitCode::SUCCESS
        }
        Err(SubscriberError::Db(e)) => {
            eprint!("{}", e.diagnostic().render(ctx.cwd.as_deref()));
            ExitCode::from(EX_TEMPFAIL)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EX_TEMPFAIL)
        }
    }
}
