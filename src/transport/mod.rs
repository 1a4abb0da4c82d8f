//! Handing a message to the mail system: one small interface over SMTP (the same
//! connection code as subscriber sends, [`smtp`]) and lettre's sendmail
//! and file transports, with our own error type.
//!
//! [`Failure`] says whether a failure is temporary (4xx replies, refused or dropped
//! connections, timeouts before the message was sent: worth retrying), permanent (5xx
//! replies, TLS and configuration problems: retrying cannot help) or unknown (the whole
//! message went out and no reply came: it may have been delivered, so it is never
//! retried), and carries the server's reply code and text. [`send_with_retry`] retries the temporary ones with exponential backoff.
//! Secrets (the SMTP password) are read here and never appear in any message.

use crate::config::Config;
pub mod buttondown;
pub mod dkim;
pub mod imap;
pub mod smtp;
pub mod websub;

use crate::diag::Diagnostic;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{FileTransport, SendmailTransport, Transport};
use smtp::{Security, Server};
use std::path::PathBuf;
use std::time::Duration;

/// A configured transport, ready to send (SMTP connects lazily, on the first send).
pub enum Mailer {
    Smtp { server: Box<Server>, endpoint: String },
    Sendmail { transport: SendmailTransport, program: PathBuf },
    File { transport: FileTransport, dir: PathBuf },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// 4xx, connection refused or dropped, timeout, before the message was written out.
    Temporary,
    /// 5xx, TLS, authentication mechanism or local configuration problems, or a message
    /// the server cannot take as it is.
    Permanent,
    /// The whole message was written, final `.` included, and no reply came: the
    /// server may have accepted it. Never retried.
    Unknown,
    /// A 5xx to `MAIL FROM`: the server refuses the sender, so no message of this send
    /// can get through. Permanent, and a subscriber send stops on it rather than
    /// failing every recipient in turn.
    Sender,
}

/// Why a message (or a connection) did not get through: the one failure type of every
/// send, list or subscriber, SMTP or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// The server's reply code, when the server answered.
    pub code: Option<u16>,
    /// The server's reply text (without the code), or what happened.
    pub text: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "the server answered {code} {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

impl std::error::Error for Failure {}

impl Failure {
    pub fn temporary(text: impl Into<String>) -> Failure {
        Failure { kind: FailureKind::Temporary, code: None, text: text.into() }
    }

    pub fn permanent(text: impl Into<String>) -> Failure {
        Failure { kind: FailureKind::Permanent, code: None, text: text.into() }
    }

    pub fn is_temporary(&self) -> bool {
        self.kind == FailureKind::Temporary
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self.kind, FailureKind::Permanent | FailureKind::Sender)
    }

    /// The server refused the sender (see [`FailureKind::Sender`]).
    pub fn is_sender_refused(&self) -> bool {
        self.kind == FailureKind::Sender
    }

    /// The server asks the sender to slow down rather than judging this message:
    /// `421` (closing: often "too many connections"), `454` (SES: "Throttling
    /// failure"), any `4.7.x` status, and `452 4.3.2` (not accepting messages now).
    /// Other 4xx replies are this message's temporary failure.
    pub fn is_slow_down(&self) -> bool {
        let Some(code) = self.code else { return false };
        let status = self.text.split_whitespace().next().unwrap_or("");
        (400..500).contains(&code)
            && (code == 421 || code == 454 || status.starts_with("4.7.") || (code == 452 && status == "4.3.2"))
    }

    /// The server may have accepted the message (see [`FailureKind::Unknown`]).
    pub fn is_unknown(&self) -> bool {
        self.kind == FailureKind::Unknown
    }

    /// As the ledger records it: `550 5.1.1 no such user`, or what happened.
    pub fn reply(&self) -> String {
        match self.code {
            Some(code) => format!("{code} {}", self.text).trim().to_string(),
            None => self.text.clone(),
        }
    }

    /// A hint for the editor about what to do next.
    pub fn help(&self) -> &'static str {
        match (self.code, self.kind) {
            (_, FailureKind::Unknown) => {
                "the message may have been delivered: check the list's archive (or the mailbox) before sending again"
            }
            (_, FailureKind::Sender) => {
                "the server refuses this sender: check `from` under [email] and which addresses the [smtp] account may send as"
            }
            (Some(530 | 534 | 535 | 538), _) => {
                "check `username` under [smtp] and the password in the environment variable or file it names"
            }
            (Some(_), FailureKind::Permanent) => {
                "the server refused the message for good: check the addresses under [email] and the server's policy"
            }
            (Some(_), FailureKind::Temporary) => "the server asked to try later; run `newsdesk send` again in a while",
            (None, FailureKind::Temporary) => "check `host` and `port` under [smtp] and that the server is running",
            (None, FailureKind::Permanent) => "check the [smtp] settings (security, host) and the server's TLS setup",
        }
    }
}

/// What the transport said when it accepted a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    /// `250 2.0.0 Ok: queued as ...` for SMTP; a description for the other transports.
    pub reply: String,
}

/// Builds the transport named by `[email] transport`. Reads the SMTP password from the
/// environment variable or file named in `[smtp]`.
pub fn mailer(config: &Config) -> Result<Mailer, Diagnostic> {
    let email = config.email.as_ref().ok_or_else(|| {
        Diagnostic::error("no-email-config", "the config has no `[email]` section").in_file(&config.path)
    })?;
    match email.transport.as_str() {
        "file" => {
            let dir = config.resolve(email.file_dir.as_deref().unwrap_or(std::path::Path::new(".newsdesk/outbox")));
            std::fs::create_dir_all(&dir).map_err(|e| {
                Diagnostic::error("bad-file-dir", format!("cannot create the outbox folder `{}`: {e}", dir.display()))
                    .in_file(&config.path)
                    .help("set `file_dir` under [email] to a writable folder")
            })?;
            Ok(Mailer::File { transport: FileTransport::new(&dir), dir })
        }
        "sendmail" => {
            // A bare name is looked up in PATH; a path is relative to the config file.
            let program = match &email.sendmail {
                Some(p) if p.components().count() > 1 => config.resolve(p),
                Some(p) => p.clone(),
                None => PathBuf::from("/usr/sbin/sendmail"),
            };
            Ok(Mailer::Sendmail { transport: SendmailTransport::new_with_command(program.as_os_str()), program })
        }
        // With Buttondown holding the list, test sends (`--to`) still go by [smtp].
        "smtp" | "buttondown" => {
            let server = smtp_server(config, true)?;
            Ok(Mailer::Smtp {
                endpoint: format!("{} ({})", server.endpoint(), config.smtp.security),
                server: Box::new(server),
            })
        }
        other => Err(Diagnostic::error("bad-transport", format!("unknown transport `{other}`"))
            .in_file(&config.path)
            .help("use \"smtp\", \"sendmail\" or \"file\"")),
    }
}

fn smtp_error(config: &Config, key: &str, d: Diagnostic) -> Diagnostic {
    crate::config::config_diagnostic(config, "smtp", key, d)
}

/// The one `[smtp]` resolver, for list sends and subscriber sends alike: host, port,
/// security (plain text only to this machine), timeout and, when `with_password`, the
/// credentials (read from `password_env` or `password_file`; a dry run reads none).
/// Every problem points at its key in config.toml.
pub fn smtp_server(config: &Config, with_password: bool) -> Result<Server, Diagnostic> {
    let s = &config.smtp;
    let host = s.host.trim();
    TlsParameters::new(host.to_string()).map_err(|e| {
        smtp_error(
            config,
            "host",
            Diagnostic::error("bad-smtp-host", format!("cannot set up TLS for `{host}`: {e}"))
                .help("write the server's host name as its certificate names it"),
        )
    })?;
    // The rules `config::load` already applied: a Config built any other way gets the
    // same refusal here, so "none" never reaches a remote host.
    let mut refused = None;
    crate::config::smtp_checks(s, &mut |code, _, key, message, help| {
        refused.get_or_insert_with(|| smtp_error(config, key, Diagnostic::error(code, message).help(help)));
    });
    if let Some(d) = refused {
        return Err(d);
    }
    let security = match s.security.as_str() {
        "tls" => Security::Tls,
        "none" => Security::None,
        _ => Security::StartTls,
    };
    let tls = match security {
        Security::None => None,
        _ => Some(tls_parameters(config, host)?),
    };
    let credentials = match &s.username {
        Some(user) if with_password => Some(Credentials::new(user.clone(), password(config)?)),
        _ => None,
    };
    Ok(Server {
        host: host.to_string(),
        port: s.port,
        security,
        tls,
        credentials,
        timeout: Duration::from_secs(s.timeout_secs.max(1)),
        hello: ClientId::default(),
    })
}

/// How the server's certificate is checked: against `tls_roots` (Mozilla's roots, or
/// the machine's store) plus the certificates in `ca_file`, for the name in `host`.
fn tls_parameters(config: &Config, host: &str) -> Result<TlsParameters, Diagnostic> {
    let s = &config.smtp;
    let store = if s.tls_roots == "system" { CertificateStore::Default } else { CertificateStore::WebpkiRoots };
    let mut builder = TlsParameters::builder(host.to_string()).certificate_store(store);
    if let Some(file) = &s.ca_file {
        let path = config.resolve(file);
        let bad = |what: String| {
            smtp_error(
                config,
                "ca_file",
                Diagnostic::error("bad-ca-file", what)
                    .help("point `ca_file` at the PEM file of the CA that signed the server's certificate (`-----BEGIN CERTIFICATE-----`)"),
            )
        };
        let pem =
            std::fs::read(&path).map_err(|e| bad(format!("cannot read the CA file `{}`: {e}", path.display())))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(bad(format!("the CA file `{}` holds no PEM certificate", path.display())));
        }
        let certs = Certificate::from_pem(&pem)
            .map_err(|_| bad(format!("the CA file `{}` holds a damaged certificate", path.display())))?;
        builder = builder.add_root_certificate(certs);
    }
    builder.build().map_err(|e| {
        smtp_error(
            config,
            "host",
            Diagnostic::error("bad-smtp-host", format!("cannot set up TLS for `{host}`: {e}"))
                .help("write the server's host name as its certificate names it"),
        )
    })
}

/// The SMTP password from `password_env` or `password_file`. Errors name the variable
/// or file, never the value.
fn password(config: &Config) -> Result<String, Diagnostic> {
    let s = &config.smtp;
    if s.password_env.is_none() && s.password_file.is_none() {
        return Err(smtp_error(
            config,
            "username",
            Diagnostic::error("no-smtp-password", "`username` is set under [smtp] but no password source is")
                .help("add `password_env = \"NEWSDESK_SMTP_PASSWORD\"` (or `password_file`) under [smtp]"),
        ));
    }
    config.secret("the SMTP password", s.password_env.as_deref(), s.password_file.as_deref()).map_err(|e| {
        let key = if s.password_env.is_some() { "password_env" } else { "password_file" };
        smtp_error(config, key, Diagnostic::error("no-smtp-password", e.message).help(e.help))
    })
}

impl Mailer {
    /// `smtp 127.0.0.1:587 (starttls)`, `sendmail /usr/sbin/sendmail`, `file DIR`.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp { endpoint, .. } => format!("smtp {endpoint}"),
            Mailer::Sendmail { program, .. } => format!("sendmail {}", program.display()),
            Mailer::File { dir, .. } => format!("file {}", dir.display()),
        }
    }

    /// What to check when a send through this transport failed.
    pub fn help(&self, e: &Failure) -> &'static str {
        match self {
            Mailer::Smtp { .. } => e.help(),
            Mailer::Sendmail { .. } => "check `sendmail` under [email] (the program and its mail setup)",
            Mailer::File { .. } => "check that `file_dir` under [email] is a writable folder",
        }
    }

    /// Hands `bytes` (a formatted message) to the transport, once.
    pub fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<Accepted, Failure> {
        match self {
            Mailer::Smtp { server, .. } => {
                let mut conn = server.connect()?;
                let result = smtp::send(server, &mut conn, envelope, bytes);
                if !conn.has_broken() {
                    let _ = conn.quit();
                }
                result.map(|reply| Accepted { reply })
            }
            Mailer::Sendmail { transport, program } => match transport.send_raw(envelope, bytes) {
                Ok(()) => Ok(Accepted { reply: format!("accepted by {}", program.display()) }),
                Err(e) => Err(Failure {
                    kind: FailureKind::Permanent,
                    code: None,
                    text: format!("{}: {}", program.display(), chain(&e)),
                }),
            },
            Mailer::File { transport, dir } => match transport.send_raw(envelope, bytes) {
                Ok(id) => Ok(Accepted { reply: format!("written to {}", dir.join(format!("{id}.eml")).display()) }),
                Err(e) => Err(Failure { kind: FailureKind::Permanent, code: None, text: chain(&e) }),
            },
        }
    }
}

/// An error and its causes on one line (`Connection error: Connection refused (os error 111)`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// How often and how patiently temporary failures are retried: the one backoff of every
/// send. The list send waits [`delay`](Self::delay); the subscriber engine waits
/// [`jittered`](Self::jittered), so workers that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least 1).
    pub max_attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    pub fn from_config(config: &Config) -> RetryPolicy {
        RetryPolicy::from_smtp(&config.smtp)
    }

    /// From `[smtp] max_attempts` and `retry_delay_secs`; no single wait over 5 minutes.
    pub fn from_smtp(smtp: &crate::config::SmtpConfig) -> RetryPolicy {
        RetryPolicy {
            max_attempts: smtp.max_attempts.max(1),
            first_delay: Duration::from_secs_f64(smtp.retry_delay_secs.max(0.0)),
            max_delay: Duration::from_secs(300),
        }
    }

    /// The wait before attempt `n + 1` after `n` failed attempts: doubling from `first_delay`.
    pub fn delay(&self, failed: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed.saturating_sub(1));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// [`delay`](Self::delay), then a random point in its upper half.
    pub fn jittered(&self, failed: u32) -> Duration {
        let unit = getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64);
        self.delay(failed).mul_f64(0.5 + 0.5 * unit)
    }
}

/// Sends, retrying temporary failures with backoff. `on_retry(error, attempt, wait)` is
/// called before each wait. Returns the acceptance, or the last error with the number
/// of attempts made.
pub fn send_with_retry(
    mailer: &Mailer,
    envelope: &Envelope,
    bytes: &[u8],
    policy: RetryPolicy,
    mut on_retry: impl FnMut(&Failure, u32, Duration),
) -> Result<Accepted, (Failure, u32)> {
    let mut attempt = 1;
    loop {
        match mailer.send(envelope, bytes) {
            Ok(a) => return Ok(a),
            Err(e) if e.is_temporary() && attempt < policy.max_attempts => {
                let wait = policy.delay(attempt);
                on_retry(&e, attempt, wait);
                std::thread::sleep(wait);
                attempt += 1;
            }
            Err(e) => return Err((e, attempt)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_replies_are_slow_downs_and_other_4xx_are_not() {
        let f = |code: u16, text: &str| Failure { kind: FailureKind::Temporary, code: Some(code), text: text.into() };
        for (code, text) in [
            (421, "4.7.0 Too many connections from your host"),
            (421, "Service not available, closing transmission channel"),
            (454, "Throttling failure: Maximum sending rate exceeded."),
            (451, "4.7.1 Please try again later (rate limited)"),
            (452, "4.3.2 Too many concurrent SMTP connections"),
        ] {
            assert!(f(code, text).is_slow_down(), "{code} {text}");
        }
        for (code, text) in [
            (451, "4.3.0 Temporary local problem"),
            (452, "4.2.2 Mailbox full"),
            (450, "4.2.1 Mailbox busy"),
            (550, "5.7.1 Relaying denied"),
        ] {
            assert!(!f(code, text).is_slow_down(), "{code} {text}");
        }
        assert!(!Failure::temporary("connection reset").is_slow_down());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p =
            RetryPolicy { max_attempts: 5, first_delay: Duration::from_secs(2), max_delay: Duration::from_secs(10) };
        assert_eq!(p.delay(1), Duration::from_secs(2));
        assert_eq!(p.delay(2), Duration::from_secs(4));
        assert_eq!(p.delay(3), Duration::from_secs(8));
        assert_eq!(p.delay(4), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_in_the_upper_half_of_the_delay() {
        let p =
            RetryPolicy { max_attempts: 5, first_delay: Duration::from_secs(2), max_delay: Duration::from_secs(10) };
        for _ in 0..50 {
            let d1 = p.jittered(1).as_secs_f64();
            assert!((1.0..=2.0).contains(&d1), "{d1}");
            let d3 = p.jittered(3).as_secs_f64();
            assert!((4.0..=8.0).contains(&d3), "{d3}");
            let d9 = p.jittered(9).as_secs_f64();
            assert!((5.0..=10.0).contains(&d9), "{d9}");
        }
    }

    #[test]
    fn loopback_hosts() {
        assert!(crate::config::is_loopback("localhost"));
        assert!(crate::config::is_loopback("127.0.0.1"));
        assert!(crate::config::is_loopback("127.0.0.2"));
        assert!(crate::config::is_loopback("::1"));
        assert!(crate::config::is_loopback("[::1]"));
        assert!(!crate::config::is_loopback("smtp.example.org"));
        assert!(!crate::config::is_loopback("10.0.0.1"));
    }
}
