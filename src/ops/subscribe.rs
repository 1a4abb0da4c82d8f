//! Double opt-in's mail: rendering and sending the confirmation mails that subscribe
//! requests queued (see [`crate::store::confirmations`]), through the configured
//! transport, DKIM-signed like every mail newsdesk sends.
//!
//! Each mail gets a fresh token, made just before it goes out: its hash is committed
//! first, so the token only ever exists in memory and in the mail.

use crate::config::Config;
use crate::diag::Diagnostic;
use crate::digest::confirmation::ConfirmationMail;
use crate::digest::settings;
use crate::store::confirmations::{self, QueuedMail};
use crate::store::subscribers::{self, SubscriberError};
use crate::transport::dkim::Signer;
use crate::transport::{self, Mailer, RetryPolicy};
use chrono::Utc;
use lettre::message::Mailbox;
use rusqlite::Connection;

/// Everything a confirmation mail needs, loaded once when `serve` starts.
pub struct ConfirmationSender {
    mail: ConfirmationMail,
    mailer: Mailer,
    signer: Option<Signer>,
    policy: RetryPolicy,
    /// `{public_url}` without a trailing slash.
    public_url: String,
    confirm_hours: u32,
}

/// How handing one mail over ended, for the service's log (no token in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mailed {
    Sent {
        email: String,
        reply: String,
    },
    Failed {
        email: String,
        reason: String,
    },
    /// The request was gone (confirmed otherwise, or expired) before its mail went out.
    Dropped {
        email: String,
    },
}

impl ConfirmationSender {
    /// Reads `[email]`, `[web]` and the transport from `config`. Double opt-in needs a
    /// sender (`[email] from`) and the address readers reach `serve` at (`[web]
    /// public_url`): without them the diagnostics say which key to add.
    pub fn from_config(config: &Config) -> Result<ConfirmationSender, Vec<Diagnostic>> {
        let Some(public_url) = config.web.as_ref().and_then(|w| w.public_url.clone()) else {
            return Err(vec![
                Diagnostic::error("no-public-url", "subscribing needs `public_url` under `[web]`: the confirmation mail links to it")
                    .in_file(&config.path)
                    .help("add `[web]` with `public_url = \"https://lwkd.example.org\"`, the address readers reach `serve` at"),
            ]);
        };
        let confirm_hours = config.web.as_ref().map_or(168, |w| w.confirm_hours);
        let settings = settings::settings(config)?;
        let mail = ConfirmationMail::load(config, settings, confirm_hours)?;
        let mailer = transport::mailer(config).map_err(|d| vec![d])?;
        let signer = Signer::for_command(config).map_err(|d| vec![d])?;
        Ok(ConfirmationSender {
            mail,
            mailer,
            signer,
            policy: RetryPolicy::from_config(config),
            public_url: public_url.trim_end_matches('/').to_string(),
            confirm_hours,
        })
    }

    /// Where the subscribe form is.
    pub fn subscribe_url(&self) -> String {
        format!("{}/subscribe", self.public_url)
    }

    /// Sends every queued mail, oldest first, until none is left; `on_mail` hears how
    /// each ended. A database error stops it (the mails stay queued for the next call).
    pub fn send_queued(
        &self,
        conn: &mut Connection,
        on_mail: &mut dyn FnMut(Mailed),
    ) -> Result<usize, SubscriberError> {
        let mut n = 0;
        while let Some(mail) = confirmations::next_queued(conn)? {
            on_mail(self.send_one(conn, &mail)?);
            n += 1;
        }
        Ok(n)
    }

    fn send_one(&self, conn: &mut Connection, mail: &QueuedMail) -> Result<Mailed, SubscriberError> {
        let email = mail.email.clone();
        let now = Utc::now();
        let token = subscribers::new_token();
        let to = match mail.email.parse::<lettre::Address>() {
            Ok(address) => Mailbox::new(mail.name.clone(), address),
            Err(e) => {
                confirmations::finish(conn, mail.id, Err(&format!("not an address: {e}")), now)?;
                return Ok(Mailed::Failed { email, reason: format!("not an address: {e}") });
            }
        };
        let confirm_url = format!("{}/confirm/{token}", self.public_url);
        let unique = format!("{}.{}", mail.id, &subscribers::new_token()[..12]);
        let rendered = match self.mail.render(to, &confirm_url, &self.subscribe_url(), now, &unique) {
            Ok(r) => r,
            Err(d) => {
                confirmations::finish(conn, mail.id, Err(&d.message), now)?;
                return Ok(Mailed::Failed { email, reason: d.message });
            }
        };
        if !confirmations::claim(
            conn,
            mail,
            &confirmations::hash(&token),
            &rendered.message_id,
            now,
            self.confirm_hours,
        )? {
            return Ok(Mailed::Dropped { email });
        }
        let message = rendered.message;
        let bytes = match &self.signer {
            Some(s) => s.sign(&message.formatted()),
            None => message.formatted(),
        };
        match transport::send_with_retry(&self.mailer, message.envelope(), &bytes, self.policy, |_, _, _| {}) {
            Ok(accepted) => {
                confirmations::finish(conn, mail.id, Ok(&accepted.reply), Utc::now())?;
                Ok(Mailed::Sent { email, reply: accepted.reply })
            }
            Err((failure, _)) => {
                let reason = failure.reply();
                confirmations::finish(conn, mail.id, Err(&reason), Utc::now())?;
                Ok(Mailed::Failed { email, reason })
            }
        }
    }
}
