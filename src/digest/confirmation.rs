//! The confirmation mail of a subscribe request (double opt-in): a short message with
//! the link that confirms, rendered from `confirm-subject.txt`, `confirm.txt` and
//! `confirm.html` (in `[email] templates`, or the built-in ones) and sent From the
//! digest's address, so it looks like what the reader asked for.

use super::settings::MailSettings;
use super::templates::{self, Templates};
use crate::config::Config;
use crate::diag::Diagnostic;
use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use minijinja::Value;

/// The loaded templates and addresses, ready to render one mail per request.
#[derive(Debug)]
pub struct ConfirmationMail {
    templates: Templates,
    settings: MailSettings,
    site: Value,
    confirm_hours: u32,
}

/// One rendered confirmation mail, before signing.
#[derive(Debug)]
pub struct Rendered {
    pub message: Message,
    pub message_id: String,
}

impl ConfirmationMail {
    /// Loads what the mails need from `config` (`[email]` for the sender, the templates).
    pub fn load(
        config: &Config,
        settings: MailSettings,
        confirm_hours: u32,
    ) -> Result<ConfirmationMail, Vec<Diagnostic>> {
        let templates = templates::load_set(
            &templates::CONFIRMATION,
            &settings.templates_dir,
            settings.templates_default,
            &config.path,
        )?;
        Ok(ConfirmationMail {
            templates,
            settings,
            site: Value::from(minijinja::value::Serde(&config.site)),
            confirm_hours,
        })
    }

    /// The mail to `to` (with the name they gave) holding `confirm_url`, dated `now`;
    /// `unique` makes its Message-ID (`<confirm.UNIQUE@domain-of-from>`).
    pub fn render(
        &self,
        to: Mailbox,
        confirm_url: &str,
        subscribe_url: &str,
        now: DateTime<Utc>,
        unique: &str,
    ) -> Result<Rendered, Diagnostic> {
        let ctx = minijinja::context! {
            site => self.site.clone(),
            email => to.email.to_string(),
            name => to.name.clone(),
            confirm_url => confirm_url,
            subscribe_url => subscribe_url,
            confirm_hours => self.confirm_hours,
            confirm_period => period(self.confirm_hours),
        };
        let subject = self.templates.render("confirm-subject.txt", &ctx)?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = self.templates.render("confirm.txt", &ctx)?;
        let html = self.templates.render("confirm.html", &ctx)?;
        let message_id = format!("<confirm.{}@{}>", unique, self.settings.id_domain());
        let mut b = Message::builder()
            .from(self.settings.from.clone())
            .to(to)
            .subject(subject)
            .date(now.into())
            .message_id(Some(message_id.clone()));
        if let Some(reply_to) = &self.settings.reply_to {
            b = b.reply_to(reply_to.clone());
        }
        let message = b
            .multipart(MultiPart::alternative_plain_html(text.trim_start().to_string(), html))
            .map_err(|e| Diagnostic::error("confirmation-mail", format!("cannot build the confirmation mail: {e}")))?;
        Ok(Rendered { message, message_id })
    }
}

/// `confirm_hours` in words: `7 days`, `1 day`, `36 hours`.
pub fn period(hours: u32) -> String {
    match (hours % 24, hours / 24) {
        (0, 1) => "1 day".into(),
        (0, days) => format!("{days} days"),
        _ if hours == 1 => "1 hour".into(),
        _ => format!("{hours} hours"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn periods_read_as_people_say_them() {
        assert_eq!(super::period(168), "7 days");
        assert_eq!(super::period(24), "1 day");
        assert_eq!(super::period(36), "36 hours");
        assert_eq!(super::period(1), "1 hour");
    }
}
