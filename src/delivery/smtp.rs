//! One SMTP connection per worker, kept open across messages.
//!
//! lettre's pooled `SmtpTransport` tests every connection it takes from the pool with
//! a NOOP, one extra round trip per message; a worker that owns its connection only
//! reconnects when the last one broke. A failure is sorted into temporary (4xx,
//! network, timeout, a connection dropped mid-message: try again later) or permanent
//! (5xx: this recipient will not be reached by trying again), keeping the server's
//! code and text for the ledger.

use crate::config::{Config, SmtpConfig};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use std::time::Duration;

/// Where and how to connect, resolved from `[smtp]` (password read once, never shown).
#[derive(Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<Credentials>,
    pub timeout: Duration,
    pub hello: ClientId,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("credentials", &self.credentials.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

/// `[smtp] security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text, for a relay on localhost only.
    None,
    /// STARTTLS, required.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl Server {
    /// Reads `[smtp]`; the password comes from `password_env` or `password_file`.
    pub fn from_config(config: &Config) -> Result<Server, String> {
        let smtp: &SmtpConfig = &config.smtp;
        // The same rules as the list send's transport (src/email/transport.rs).
        let security = match smtp.security.as_str() {
            "none" if is_loopback(&smtp.host) => Security::None,
            "none" => {
                return Err(format!(
                    "`[smtp] security = \"none\"` would send mail and password unencrypted to `{}`: use \"starttls\" or \"tls\" (\"none\" is only for a server on this machine)",
                    smtp.host
                ));
            }
            "starttls" => Security::StartTls,
            "tls" => Security::Tls,
            other => {
                return Err(format!(
                    "`[smtp] security = \"{other}\"` is not known; use \"starttls\", \"tls\" or \"none\" (localhost only)"
                ));
            }
        };
        let password = match (&smtp.password_env, &smtp.password_file) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                format!("the SMTP password is read from the environment variable `{var}` (`[smtp] password_env`), which is not set")
            })?),
            (None, Some(file)) => {
                let path = config.resolve(file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    format!("cannot read the SMTP password file `{}` (`[smtp] password_file`): {e}", path.display())
                })?;
                Some(text.trim_end_matches(['\r', '\n']).to_string())
            }
            (None, None) => None,
        };
        let credentials = match (&smtp.username, password) {
            (Some(user), Some(pw)) => Some(Credentials::new(user.clone(), pw)),
            (Some(_), None) => {
                return Err("`[smtp] username` is set but no password: set `password_env` or `password_file`".into());
            }
            (None, _) => None,
        };
        Ok(Server {
            host: smtp.host.clone(),
            port: smtp.port,
            security,
            credentials,
            timeout: Duration::from_secs(smtp.timeout_secs.max(1)),
            hello: ClientId::default(),
        })
    }

    /// Opens a connection: greeting, EHLO, STARTTLS and AUTH as configured.
    pub fn connect(&self) -> Result<SmtpConnection, Failure> {
        let tls = match self.security {
            Security::None => None,
            _ => Some(TlsParameters::new(self.host.clone()).map_err(|e| Failure::from_lettre(&e))?),
        };
        let wrapper = if self.security == Security::Tls { tls.as_ref() } else { None };
        let mut conn =
            SmtpConnection::connect((self.host.as_str(), self.port), Some(self.timeout), &self.hello, wrapper, None)
                .map_err(|e| Failure::from_lettre(&e))?;
        if self.security == Security::StartTls {
            let params = tls.as_ref().expect("built above for starttls");
            conn.starttls(params, &self.hello).map_err(|e| Failure::from_lettre(&e))?;
        }
        if let Some(c) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c).map_err(|e| Failure::from_lettre(&e))?;
        }
        Ok(conn)
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why a message (or a connection) did not get through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// True for a 5xx or a message the client cannot send as it is: retrying will not help.
    pub permanent: bool,
    /// The server's code, when it answered with one.
    pub code: Option<u16>,
    /// The server's reply (`550 5.1.1 no such user`) or what happened (`connection closed`).
    pub text: String,
}

impl Failure {
    /// Sorts a lettre error into temporary or permanent, keeping the server's words.
    pub fn from_lettre(e: &lettre::transport::smtp::Error) -> Failure {
        let detail = std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_default();
        if let Some(code) = e.status() {
            let code_text = code.to_string();
            return Failure {
                permanent: e.is_permanent(),
                code: code_text.parse().ok(),
                text: format!("{code_text} {detail}").trim().to_string(),
            };
        }
        // A client error (say, an address the server cannot take without SMTPUTF8) will
        // fail the same way every time; network, timeout, TLS and a reply cut short
        // (the server went away mid-message) are worth another try.
        let permanent = e.is_client();
        let text = if e.is_timeout() { format!("timed out: {e}") } else { e.to_string() };
        Failure { permanent, code: None, text }
    }
}

/// The server's 250 reply, as the ledger records it.
pub fn reply_text(r: &lettre::transport::smtp::response::Response) -> String {
    let lines: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), lines.join(" ")).trim().to_string()
}

/// Sends one message on `conn`: MAIL FROM, RCPT TO, DATA. `Ok` carries the 250 text.
///
/// Unlike lettre's `SmtpConnection::send`, the message and its final `.` go out in one
/// write (two small writes meet Nagle's algorithm and the server's delayed ACK: about
/// 40 ms lost per message), and a refused sender or recipient leaves the connection
/// open (`RSET`, then the next message) instead of closing it. After any other failure
/// the connection is closed (`has_broken()` is then true) and the next message opens a
/// new one.
pub fn send(conn: &mut SmtpConnection, envelope: &Envelope, bytes: &[u8]) -> Result<String, Failure> {
    let mut params = Vec::new();
    let non_ascii = |a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii();
    if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(client_failure("the address needs SMTPUTF8, which the server does not offer"));
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    if !bytes.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(client_failure("the message has 8-bit text and the server does not offer 8BITMIME"));
        }
        params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let envelope_step = |conn: &mut SmtpConnection, r: Result<_, lettre::transport::smtp::Error>| {
        r.map_err(|e| {
            let f = Failure::from_lettre(&e);
            // A refusal of this sender or recipient: the connection is still good.
            if f.code.is_none_or(|c| c == 421) || conn.command(Rset).is_err() {
                conn.abort();
            }
            f
        })
    };
    let r = conn.command(Mail::new(envelope.from().cloned(), params));
    envelope_step(conn, r)?;
    for to in envelope.to() {
        let r = conn.command(Rcpt::new(to.clone(), Vec::new()));
        envelope_step(conn, r)?;
    }
    let r = conn.command(Data);
    envelope_step(conn, r)?;
    let result = match std::str::from_utf8(bytes) {
        Ok(text) => conn.command(DataBody(text)),
        Err(_) => conn.message(bytes),
    };
    result.map(|r| reply_text(&r)).map_err(|e| {
        // Whatever the server said after the data, start the next message afresh.
        conn.abort();
        Failure::from_lettre(&e)
    })
}

fn client_failure(text: &str) -> Failure {
    Failure { permanent: true, code: None, text: text.to_string() }
}

/// The message, dot-stuffed, and the final `.`: written as one "command".
struct DataBody<'a>(&'a str);

impl std::fmt::Display for DataBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut at_line_start = true;
        for line in self.0.split_inclusive('\n') {
            if at_line_start && line.starts_with('.') {
                f.write_str(".")?;
            }
            f.write_str(line)?;
            at_line_start = line.ends_with('\n');
        }
        f.write_str(if self.0.ends_with("\r\n") { ".\r\n" } else { "\r\n.\r\n" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_dot_stuffed_and_terminated_once() {
        let b = DataBody("Subject: x\r\n\r\n.hidden\r\nok.\r\n..two\r\n").to_string();
        assert_eq!(b, "Subject: x\r\n\r\n..hidden\r\nok.\r\n...two\r\n.\r\n");
        assert_eq!(DataBody("no newline").to_string(), "no newline\r\n.\r\n");
    }
}
