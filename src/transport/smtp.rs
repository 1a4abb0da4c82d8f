//! One SMTP connection per worker, kept open across messages. The server is resolved
//! from `[smtp]` by [`super::smtp_server`], the one resolver.
//!
//! lettre's pooled `SmtpTransport` tests every connection it takes from the pool with
//! a NOOP, one extra round trip per message; a worker that owns its connection only
//! reconnects when the last one broke. A failure is sorted into temporary (4xx,
//! network, timeout, a connection dropped mid-message: try again later) or permanent
//! (5xx: this recipient will not be reached by trying again), keeping the server's
//! code and text for the ledger.

use super::{Failure, FailureKind};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use std::time::Duration;

/// Where and how to connect, resolved from `[smtp]` (password read once, never shown).
#[derive(Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// The certificate checks (roots, `ca_file`, the host's name); `None` for "none".
    pub tls: Option<TlsParameters>,
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

/// An open connection and whether the server pipelines (RFC 2920).
pub struct Connection {
    conn: SmtpConnection,
    /// The server's EHLO offered PIPELINING: each message's MAIL, RCPT and DATA go out
    /// in one write and their replies are read in order.
    pub pipelining: bool,
}

impl std::ops::Deref for Connection {
    type Target = SmtpConnection;
    fn deref(&self) -> &SmtpConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut SmtpConnection {
        &mut self.conn
    }
}

impl Server {
    /// Opens a connection: greeting, EHLO, STARTTLS and AUTH as configured, then one
    /// more EHLO to learn whether the server pipelines (lettre keeps only some of the
    /// extensions it reads).
    pub fn connect(&self) -> Result<Connection, Failure> {
        let tls = self.tls.as_ref();
        let wrapper = if self.security == Security::Tls { tls } else { None };
        let mut conn =
            SmtpConnection::connect((self.host.as_str(), self.port), Some(self.timeout), &self.hello, wrapper, None)
                .map_err(|e| self.failure(&e))?;
        if self.security == Security::StartTls {
            // Required, never skipped: a server that does not offer it gets nothing.
            if !conn.can_starttls() {
                let _ = conn.quit();
                return Err(Failure::permanent(format!(
                    "{} does not offer STARTTLS, and `security = \"starttls\"` requires it: newsdesk does not fall back to plain text",
                    self.endpoint()
                )));
            }
            let params = tls.expect("built by smtp_server for starttls");
            conn.starttls(params, &self.hello).map_err(|e| self.failure(&e))?;
        }
        // Before AUTH: an EHLO after it would reset the session on some servers.
        let ehlo = conn.command(Ehlo::new(self.hello.clone())).map_err(|e| self.failure(&e))?;
        let pipelining = ehlo.message().any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"));
        if let Some(c) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c).map_err(|e| self.failure(&e))?;
        }
        Ok(Connection { conn, pipelining })
    }

    /// `127.0.0.1:2525`.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Sorts a lettre error into temporary or permanent and words it for the editor:
    /// the server's own reply when it gave one, else what happened on the connection,
    /// naming this server and how long newsdesk waited, never the library's wording.
    pub fn failure(&self, e: &lettre::transport::smtp::Error) -> Failure {
        let detail = std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_default();
        if let Some(code) = e.status() {
            let code_text = code.to_string();
            let kind = if e.is_permanent() { FailureKind::Permanent } else { FailureKind::Temporary };
            return Failure { kind, code: code_text.parse().ok(), text: detail.trim().to_string() };
        }
        let at = self.endpoint();
        let io = io_error(e);
        let text = if is_timeout(e) {
            format!("{at} did not answer within {} s", self.timeout.as_secs())
        } else if e.is_tls() || chain(e).contains("invalid peer certificate") {
            tls_failure(&at, &chain(e))
        } else if let Some(io) = io {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionRefused => {
                    format!("{at} refused the connection (is the SMTP server running on that port?)")
                }
                K::ConnectionReset | K::ConnectionAborted => format!("{at} closed the connection abruptly (reset)"),
                K::BrokenPipe => format!("{at} closed the connection while newsdesk was writing"),
                K::UnexpectedEof => format!("{at} closed the connection without answering"),
                K::InvalidData => format!("{at} did not answer like an SMTP server (its reply was not text)"),
                K::NotFound | K::AddrNotAvailable => format!("cannot find the SMTP host `{}`", self.host),
                _ => format!("the connection to {at} failed: {}", without_os_code(&io.to_string())),
            }
        } else if detail.contains("incomplete response") {
            format!("{at} closed the connection without answering")
        } else if e.is_response() {
            format!("{at} did not answer like an SMTP server (unreadable reply: {detail})")
        } else {
            chain(e)
        };
        // A client error (say, an address the server cannot take without SMTPUTF8) will
        // fail the same way every time; network, timeout, TLS and a reply cut short
        // (the server went away mid-message) are worth another try.
        Failure { kind: if e.is_client() { FailureKind::Permanent } else { FailureKind::Temporary }, code: None, text }
    }
}

/// The innermost I/O error behind a lettre error, if any.
fn io_error(e: &lettre::transport::smtp::Error) -> Option<&std::io::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}

/// A socket read timeout is reported as `WouldBlock` (EAGAIN) on Linux, which lettre's
/// `is_timeout` does not count.
fn is_timeout(e: &lettre::transport::smtp::Error) -> bool {
    e.is_timeout()
        || io_error(e)
            .is_some_and(|io| matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock))
}

/// `Connection refused (os error 111)` → `Connection refused`.
fn without_os_code(text: &str) -> String {
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// An error and its causes on one line, without repeats.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![without_os_code(&e.to_string())];
    let mut source = e.source();
    while let Some(s) = source {
        let text = without_os_code(&s.to_string());
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The server's 250 reply, as the ledger records it.
pub fn reply_text(r: &lettre::transport::smtp::response::Response) -> String {
    let lines: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), lines.join(" ")).trim().to_string()
}

/// Sends one message on `conn`: MAIL FROM, RCPT TO, DATA, then the body. `Ok` carries
/// the 250 text. The same exchanges as a subscriber send, one message at a time: the
/// list send and test sends use it.
pub fn send(server: &Server, conn: &mut Connection, envelope: &Envelope, bytes: &[u8]) -> Result<String, Failure> {
    let opened = exchange(server, conn, None, Some((envelope, bytes))).envelope.expect("an envelope was given");
    opened?;
    exchange(server, conn, Some(bytes), None).body.expect("a body was given")
}

/// What one [`exchange`] brought back.
#[derive(Debug)]
pub struct Exchange {
    /// The verdict on the body written in this exchange: the 250 text, or why not.
    pub body: Option<Result<String, Failure>>,
    /// The next message's envelope: `Ok` once its DATA got a 354, so that its body is
    /// the next exchange's; else why not (the connection may still be good: see
    /// [`Connection::has_broken`]).
    pub envelope: Option<Result<(), Failure>>,
}

/// One step of a send: the body of the message whose DATA was accepted (if any), then
/// the envelope (MAIL FROM, RCPT TO, DATA) of the next message (if any).
///
/// With PIPELINING, the body, its final `.` and the next envelope go out in one write
/// and the replies are read in order (RFC 2920 section 3.1): one round trip per
/// message. A worker keeps at most one message ahead (this envelope), so unread replies
/// stay bounded and neither side can fill the other's buffers. Without PIPELINING the
/// same steps go lock-step: the body and its reply, then each envelope command and its
/// reply.
///
/// The body's own write is the message, final `.` included, so the rules of
/// [`after_body`] decide what a failure means; the next envelope is temporary whenever
/// its replies cannot be read (the server closed after the body, say with a 421): its
/// body was not written, so it cannot have been delivered. A refused body reply
/// (451, 554) closes the connection after the envelope replies are read.
pub fn exchange(
    server: &Server,
    conn: &mut Connection,
    body: Option<&[u8]>,
    next: Option<(&Envelope, &[u8])>,
) -> Exchange {
    let mut out = Exchange { body: None, envelope: None };
    let mail = match next.map(|(envelope, bytes)| mail_command(conn, envelope, bytes)) {
        Some(Ok(mail)) => Some(mail),
        Some(Err(f)) => {
            out.envelope = Some(Err(f));
            None
        }
        None => None,
    };
    let body_text = body.map(|b| std::str::from_utf8(b).map_err(|_| b));
    match (body_text, mail) {
        // One write for the body and the next envelope.
        (Some(Ok(text)), Some(mail)) if conn.pipelining => {
            let envelope = next.expect("mail built from it").0;
            let mut group = DataBody(text).to_string();
            group.push_str(&envelope_group(&mail, envelope));
            let first = conn.command(group);
            let body_result = first.map(|r| reply_text(&r)).map_err(|e| {
                let mut f = after_body(server.failure(&e), &e);
                // The write held the final `.` and the next envelope: a refused write
                // may have come after the `.` was taken, so it is unknown too.
                if f.kind == FailureKind::Temporary && f.code.is_none() {
                    f.kind = FailureKind::Unknown;
                }
                f
            });
            let lost = body_result.as_ref().err().is_some_and(|f| f.code.is_none_or(|c| c == 421));
            out.body = Some(body_result);
            if lost {
                conn.abort();
                out.envelope = Some(Err(Failure::temporary(format!(
                    "{} closed the connection before it answered the next message's MAIL FROM",
                    server.endpoint()
                ))));
                return out;
            }
            let mail_reply = conn.read_response();
            // A refused body (451, 554) leaves the session in order (RFC 5321 4.1.1.4):
            // the next envelope's replies say whether it goes on.
            out.envelope = Some(envelope_replies(server, conn, mail_reply, envelope));
        }
        (body_text, mail) => {
            if let Some(text) = body_text {
                let result = match text {
                    Ok(text) => conn.command(DataBody(text)),
                    Err(bytes) => conn.message(bytes),
                };
                out.body = Some(result.map(|r| reply_text(&r)).map_err(|e| {
                    // Whatever the server said after the data, start the next message afresh.
                    conn.abort();
                    after_body(server.failure(&e), &e)
                }));
            }
            if let Some(mail) = mail {
                let envelope = next.expect("mail built from it").0;
                out.envelope = Some(if conn.has_broken() {
                    Err(Failure::temporary(format!("{} closed the connection", server.endpoint())))
                } else if conn.pipelining {
                    let first = conn.command(envelope_group(&mail, envelope));
                    envelope_replies(server, conn, first, envelope)
                } else {
                    lockstep_envelope(server, conn, mail, envelope)
                });
            }
        }
    }
    out
}

/// `MAIL FROM` with the parameters the message needs, after checking that the server
/// offers them.
fn mail_command(conn: &Connection, envelope: &Envelope, bytes: &[u8]) -> Result<Mail, Failure> {
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
    Ok(Mail::new(envelope.from().cloned(), params))
}

/// MAIL, every RCPT and DATA, as one string to write.
fn envelope_group(mail: &Mail, envelope: &Envelope) -> String {
    let mut group = mail.to_string();
    for to in envelope.to() {
        group.push_str(&Rcpt::new(to.clone(), Vec::new()).to_string());
    }
    group.push_str(&Data.to_string());
    group
}

/// MAIL, each RCPT, DATA, one at a time, for a server without PIPELINING.
fn lockstep_envelope(server: &Server, conn: &mut Connection, mail: Mail, envelope: &Envelope) -> Result<(), Failure> {
    let envelope_step = |conn: &mut SmtpConnection, r: Result<_, lettre::transport::smtp::Error>| {
        r.map(|_| ()).map_err(|e| {
            let f = server.failure(&e);
            // A refusal of this sender or recipient: the connection is still good.
            if f.code.is_none_or(|c| c == 421) || conn.command(Rset).is_err() {
                conn.abort();
            }
            f
        })
    };
    let r = conn.command(mail);
    envelope_step(conn, r).map_err(sender_refused)?;
    for to in envelope.to() {
        let r = conn.command(Rcpt::new(to.clone(), Vec::new()));
        envelope_step(conn, r)?;
    }
    let r = conn.command(Data);
    envelope_step(conn, r)
}

/// The replies to a pipelined MAIL, RCPTs and DATA, in order, MAIL's being `first`.
/// `Ok` once DATA got its 354.
///
/// Every reply is read, whatever came before (RFC 2920 section 3.1): a refused MAIL or
/// RCPT is this message's failure (the first one is reported); DATA is then refused
/// too, or, if the server answers 354 anyway, a lone `.` ends the empty message; then
/// `RSET` and the connection goes on. A reply that never comes (the server closed, say
/// after a `421`) closes the connection; the body was not written, so the failure is
/// temporary, never unknown.
fn envelope_replies(
    server: &Server,
    conn: &mut Connection,
    first: Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
    envelope: &Envelope,
) -> Result<(), Failure> {
    let mut refused: Option<Failure> = None;
    let mut broken = false;
    let mut note = |r: Result<_, lettre::transport::smtp::Error>, refused: &mut Option<Failure>| match r {
        Ok(_) => true,
        Err(e) => {
            let f = server.failure(&e);
            if f.code.is_none_or(|c| c == 421) {
                broken = true;
            }
            refused.get_or_insert(f);
            !broken
        }
    };
    let mut readable = note(first, &mut refused);
    refused = refused.map(sender_refused);
    let mut accepted = 0;
    for _ in envelope.to() {
        if readable {
            let reply = conn.read_response();
            accepted += usize::from(reply.is_ok());
            readable = note(reply, &mut refused);
        }
    }
    if readable {
        match conn.read_response() {
            // DATA accepted although a recipient was refused. With no recipient left a
            // lone `.` ends the empty message (the server refuses it); with some left it
            // would reach them empty, so the connection is dropped instead.
            Ok(_) if refused.is_some() => {
                if accepted > 0 || conn.command(".\r\n").is_ok() {
                    broken = true;
                }
            }
            Ok(_) => return Ok(()),
            Err(e) => {
                note(Err(e), &mut refused);
            }
        }
    }
    let f = refused.expect("a failure was noted");
    if broken || conn.command(Rset).is_err() {
        conn.abort();
    }
    Err(f)
}

/// A 5xx to `MAIL FROM` refuses the sender, not this recipient.
fn sender_refused(mut f: Failure) -> Failure {
    if f.code.is_some_and(|c| (500..600).contains(&c)) {
        f.kind = FailureKind::Sender;
    }
    f
}

/// A failure once the body has been written: a reply with a code (451, 554) is the
/// server's verdict, but no reply at all means the message, final `.` included, may
/// already be stored: unknown, not temporary. Only a write the kernel refused (the
/// server had closed the connection, so it cannot have read the final `.`) is still
/// temporary. A reset or a timeout could have happened on either side of the final
/// `.`; they count as unknown, so that nobody is mailed twice.
fn after_body(mut f: Failure, e: &lettre::transport::smtp::Error) -> Failure {
    let write_refused = io_error(e).is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
    if f.code.is_none() && f.is_temporary() && !write_refused {
        f.kind = FailureKind::Unknown;
        f.text = format!("no reply after the whole message was sent ({}): the server may have accepted it", f.text);
    }
    f
}

fn client_failure(text: &str) -> Failure {
    Failure::permanent(text)
}

/// The message, dot-stuffed, and the final `.`: written as one "command", in one write
/// (two small writes meet Nagle's algorithm and the server's delayed ACK: about 40 ms
/// lost per message).
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

/// The TLS failure in the editor's words: what is wrong with the certificate and the
/// key that fixes it; the library's text stays at the end for the details.
fn tls_failure(at: &str, detail: &str) -> String {
    let d = detail.to_ascii_lowercase();
    if d.contains("unknownissuer") || d.contains("unknown issuer") {
        format!(
            "the certificate of {at} is signed by an unknown authority; set [smtp] ca_file to the PEM file of its CA (or tls_roots = \"system\" if the machine trusts it) ({detail})"
        )
    } else if d.contains("notvalidforname") || d.contains("not valid for name") {
        format!(
            "the certificate of {at} is not valid for that name; set [smtp] host to a name the certificate holds ({detail})"
        )
    } else if d.contains("expired") {
        format!("the certificate of {at} has expired; the server's administrator must renew it ({detail})")
    } else if d.contains("notvalidyet") {
        format!("the certificate of {at} is not valid yet (check this machine's clock) ({detail})")
    } else {
        format!("the TLS handshake with {at} failed: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_problems_name_the_fix() {
        let at = "relay.example.org:587";
        for (detail, says) in [
            ("invalid peer certificate: UnknownIssuer", "signed by an unknown authority; set [smtp] ca_file"),
            ("invalid peer certificate: NotValidForName", "not valid for that name; set [smtp] host"),
            ("invalid peer certificate: Expired", "has expired"),
            ("received fatal alert: HandshakeFailure", "the TLS handshake with relay.example.org:587 failed"),
        ] {
            let text = tls_failure(at, detail);
            assert!(text.contains(says), "{detail}: {text}");
            assert!(text.contains(detail), "the details stay: {text}");
        }
    }

    #[test]
    fn the_body_is_dot_stuffed_and_terminated_once() {
        let b = DataBody("Subject: x\r\n\r\n.hidden\r\nok.\r\n..two\r\n").to_string();
        assert_eq!(b, "Subject: x\r\n\r\n..hidden\r\nok.\r\n...two\r\n.\r\n");
        assert_eq!(DataBody("no newline").to_string(), "no newline\r\n.\r\n");
    }
}
