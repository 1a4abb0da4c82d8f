//! Reading a mailbox over IMAP (RFC 3501) with TLS from the first byte (port 993):
//! `bounces ingest` takes the bounce mailbox's messages from here. Bytes in only:
//! what a message means and what is done with it is the caller's.
//!
//! The IMAP protocol is the `imap` crate's; the stream under it is rustls with the
//! roots `[bounces.imap] tls_roots` and `ca_file` name, for the name in `host`, as
//! SMTP's is. Messages are fetched with `BODY.PEEK[]`, so reading one changes nothing:
//! it is marked (seen, moved or deleted) only when the caller says it was applied.

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// Where and how to read.
#[derive(Clone)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// Never shown (see the `Debug` impl).
    pub password: String,
    pub mailbox: String,
    /// Extra trusted CAs (PEM), from `ca_file`.
    pub ca_pem: Option<Vec<u8>>,
    /// The machine's roots instead of Mozilla's.
    pub system_roots: bool,
    pub timeout: Duration,
}

impl std::fmt::Debug for ImapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"(hidden)")
            .field("mailbox", &self.mailbox)
            .finish()
    }
}

/// What went wrong, in words for the editor; never holds the password.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to the IMAP server {0}")]
    Connect(String),
    #[error("TLS with the IMAP server {endpoint} failed: {detail}")]
    Tls { endpoint: String, detail: String },
    #[error("the IMAP server {endpoint} refused the login of `{username}`: {detail}")]
    Login { endpoint: String, username: String, detail: String },
    #[error("the IMAP server {endpoint} has no mailbox `{mailbox}` (or refused it): {detail}")]
    Mailbox { endpoint: String, mailbox: String, detail: String },
    #[error("the IMAP connection to {endpoint} failed: {detail}")]
    Protocol { endpoint: String, detail: String },
}

type Stream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// An open, selected mailbox.
pub struct Mailbox {
    session: imap::Session<Stream>,
    endpoint: String,
}

/// `[bounces.imap]` read: the password from `password_env` or `password_file`, the CA
/// file's text. Errors name the variable or file, never the value.
pub fn settings(config: &crate::config::Config) -> Result<(ImapSettings, After), String> {
    let Some(c) = &config.bounces.imap else {
        return Err("there is no [bounces.imap] section: add one with `host`, `username` and `password_env` (see README, \"Bounces and complaints\")".into());
    };
    if c.password_env.is_none() && c.password_file.is_none() {
        return Err("[bounces.imap] has no `password_env` or `password_file`".into());
    }
    let password = config
        .secret("the IMAP password", c.password_env.as_deref(), c.password_file.as_deref())
        .map_err(|e| format!("{}: {}", e.message, e.help))?;
    let ca_pem = match &c.ca_file {
        Some(f) => {
            let path = config.resolve(f);
            Some(
                std::fs::read(&path)
                    .map_err(|e| format!("cannot read [bounces.imap] ca_file `{}`: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let after = match c.after.as_str() {
        "move" => After::Move(c.move_to.clone().unwrap_or_default()),
        "delete" => After::Delete,
        _ => After::Seen,
    };
    Ok((
        ImapSettings {
            host: c.host.clone(),
            port: c.port,
            username: c.username.clone(),
            password,
            mailbox: c.mailbox.clone(),
            ca_pem,
            system_roots: c.tls_roots == "system",
            timeout: Duration::from_secs(c.timeout_secs.clamp(1, 3600)),
        },
        after,
    ))
}

/// What to do with a message once it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// Set `\Seen`: the next run reads only unseen messages.
    Seen,
    /// Move it to this mailbox (created when missing).
    Move(String),
    /// Delete it (expunge).
    Delete,
}

impl Mailbox {
    /// Connects, logs in and selects `settings.mailbox`.
    pub fn open(settings: &ImapSettings) -> Result<Mailbox, ImapError> {
        let endpoint = format!("{}:{}", settings.host, settings.port);
        let tls = |detail: String| ImapError::Tls { endpoint: endpoint.clone(), detail };
        let addr = (settings.host.as_str(), settings.port)
            .to_socket_addrs()
            .map_err(|e| ImapError::Connect(format!("{endpoint}: {e}")))?
            .next()
            .ok_or_else(|| ImapError::Connect(format!("{endpoint}: the name has no address")))?;
        let tcp = TcpStream::connect_timeout(&addr, settings.timeout)
            .map_err(|e| ImapError::Connect(format!("{endpoint}: {e}")))?;
        tcp.set_read_timeout(Some(settings.timeout)).map_err(|e| ImapError::Connect(e.to_string()))?;
        tcp.set_write_timeout(Some(settings.timeout)).map_err(|e| ImapError::Connect(e.to_string()))?;
        let config = client_config(settings).map_err(tls)?;
        let name = ServerName::try_from(settings.host.clone()).map_err(|e| tls(format!("`{}`: {e}", settings.host)))?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| tls(e.to_string()))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        // The handshake happens on first use; do it now so a certificate problem is
        // reported as one, not as a lost greeting.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(|e| tls(certificate_words(&e)))?;
        }
        let mut client = imap::Client::new(stream);
        let protocol = |e: imap::Error| ImapError::Protocol { endpoint: endpoint.clone(), detail: e.to_string() };
        client.read_greeting().map_err(protocol)?;
        let mut session = client.login(&settings.username, &settings.password).map_err(|(e, _)| ImapError::Login {
            endpoint: endpoint.clone(),
            username: settings.username.clone(),
            detail: e.to_string(),
        })?;
        session.select(&settings.mailbox).map_err(|e| ImapError::Mailbox {
            endpoint: endpoint.clone(),
            mailbox: settings.mailbox.clone(),
            detail: e.to_string(),
        })?;
        Ok(Mailbox { session, endpoint })
    }

    fn protocol(&self, e: imap::Error) -> ImapError {
        ImapError::Protocol { endpoint: self.endpoint.clone(), detail: e.to_string() }
    }

    /// The UIDs to read, oldest first: the unseen ones when messages are marked seen,
    /// else all (moved and deleted ones are gone).
    pub fn uids(&mut self, after: &After) -> Result<Vec<u32>, ImapError> {
        let query = if *after == After::Seen { "UNSEEN" } else { "ALL" };
        let mut uids: Vec<u32> = self.session.uid_search(query).map_err(|e| self.protocol(e))?.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The raw message with this UID (`None` when it is gone), without marking it.
    pub fn fetch(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let fetches = self.session.uid_fetch(uid.to_string(), "BODY.PEEK[]").map_err(|e| self.protocol(e))?;
        Ok(fetches
            .iter()
            .find(|f| f.uid == Some(uid))
            .or_else(|| fetches.iter().next())
            .and_then(|f| f.body().map(<[u8]>::to_vec)))
    }

    /// Marks the message applied, as `after` says.
    pub fn done(&mut self, uid: u32, after: &After) -> Result<(), ImapError> {
        let set = uid.to_string();
        match after {
            After::Seen => self.session.uid_store(&set, "+FLAGS (\\Seen)").map(|_| ()),
            After::Move(folder) => {
                // A missing folder is made once; "already exists" is not an error here.
                let _ = self.session.create(folder);
                self.session.uid_mv(&set, folder)
            }
            After::Delete => self
                .session
                .uid_store(&set, "+FLAGS (\\Deleted)")
                .and_then(|_| self.session.uid_expunge(&set))
                .map(|_| ()),
        }
        .map_err(|e| self.protocol(e))
    }

    pub fn close(mut self) {
        let _ = self.session.logout();
    }
}

/// rustls with `tls_roots` and `ca_file`.
fn client_config(settings: &ImapSettings) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if settings.system_roots {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    } else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(pem) = &settings.ca_pem {
        let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("`ca_file` is not a PEM certificate file: {e}"))?;
        if certs.is_empty() {
            return Err("`ca_file` holds no certificate (`-----BEGIN CERTIFICATE-----`)".into());
        }
        for cert in certs {
            roots.add(cert).map_err(|e| format!("a certificate in `ca_file` cannot be used: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A handshake error in the words of SMTP's: what is wrong with the certificate.
fn certificate_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    if text.contains("UnknownIssuer") {
        format!(
            "the certificate is signed by an unknown authority ({text}); set [bounces.imap] ca_file to the CA's PEM file"
        )
    } else if text.contains("NotValidForName") {
        format!("the certificate is not valid for that name ({text}); set [bounces.imap] host to a name it holds")
    } else if text.contains("Expired") {
        format!("the certificate has expired ({text})")
    } else {
        text
    }
}
