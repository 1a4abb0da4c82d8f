//! DKIM signing of outgoing mail (`[email.dkim]`), with lettre's signer.
//!
//! The private key is read from `key_file` once: RSA as PEM (PKCS#1 `RSA PRIVATE KEY`
//! or PKCS#8 `PRIVATE KEY`), or Ed25519 as PKCS#8 PEM or the bare base64 seed. Errors
//! name the file and what is wrong with it, never any of its contents.
//!
//! Signatures use relaxed/relaxed canonicalization (they survive the header refolding
//! and whitespace changes relays do) and cover the headers a reader trusts or a mailbox
//! provider acts on, including both `List-Unsubscribe` headers as RFC 8058 requires
//! for one-click unsubscribe.

use crate::config::{Config, DkimConfig as DkimSettings};
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use std::path::PathBuf;

/// Headers covered by the signature (absent ones are signed as absent, so they
/// cannot be added later either). Not `Content-Type`: lettre writes a multipart
/// message's `Content-Type` with the body, after signing, so it cannot be covered
/// (the body hash still covers every part, boundaries included).
pub const SIGNED_HEADERS: [&str; 10] = [
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A loaded key and where it is published; signs messages.
pub struct Signer {
    config: DkimConfig,
    pub domain: String,
    pub selector: String,
    pub algorithm: &'static str,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({}, s={}, d={}, key hidden)", self.algorithm, self.selector, self.domain)
    }
}

/// Why the key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("cannot read the DKIM key file `{}` (`[email.dkim] key_file`): {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the DKIM key file `{}` is not a usable private key: {why}", path.display())]
    BadKey { path: PathBuf, why: String },
    #[error("`[email.dkim] {key}` is empty")]
    Empty { key: &'static str },
}

impl Signer {
    /// The signer for `[email.dkim]`, or `None` when the config has none.
    pub fn from_config(config: &Config) -> Result<Option<Signer>, DkimError> {
        match config.email.as_ref().and_then(|e| e.dkim.as_ref()) {
            Some(d) => Signer::load(d, config.resolve(&d.key_file)).map(Some),
            None => Ok(None),
        }
    }

    /// Reads the key at `path` for `settings`' domain and selector.
    pub fn load(settings: &DkimSettings, path: PathBuf) -> Result<Signer, DkimError> {
        if settings.domain.trim().is_empty() {
            return Err(DkimError::Empty { key: "domain" });
        }
        if settings.selector.trim().is_empty() {
            return Err(DkimError::Empty { key: "selector" });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| DkimError::Read { path: path.clone(), source })?;
        let bad = |why: &str| DkimError::BadKey { path: path.clone(), why: why.to_string() };
        let (key, algorithm) = parse_key(&text).map_err(|why| bad(&why))?;
        let headers = SIGNED_HEADERS.iter().map(|h| HeaderName::new_from_ascii_str(h)).collect();
        let canon =
            DkimCanonicalization { header: DkimCanonicalizationType::Relaxed, body: DkimCanonicalizationType::Relaxed };
        let config =
            DkimConfig::new(settings.selector.trim().into(), settings.domain.trim().into(), key, headers, canon);
        Ok(Signer {
            config,
            domain: settings.domain.trim().into(),
            selector: settings.selector.trim().into(),
            algorithm,
        })
    }

    /// The configured signer for a command; a key that cannot be used is an error
    /// diagnostic pointing at the config, so nothing goes out unsigned by mistake.
    pub fn for_command(config: &Config) -> Result<Option<Signer>, crate::diag::Diagnostic> {
        Signer::from_config(config).map_err(|e| {
            crate::diag::Diagnostic::error("dkim", e.to_string())
                .in_file(&config.path)
                .help("point `[email.dkim] key_file` at an unencrypted RSA or Ed25519 private key in PEM")
        })
    }

    /// Adds the `DKIM-Signature` header. Sign last: any later change breaks it.
    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

/// Reads a private key in any of the accepted forms.
fn parse_key(text: &str) -> Result<(DkimSigningKey, &'static str), String> {
    let text = text.trim();
    if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        let key = DkimSigningKey::new(text, DkimSigningAlgorithm::Rsa)
            .map_err(|_| "the RSA key (PKCS#1 PEM) cannot be decoded".to_string())?;
        return Ok((key, "rsa-sha256"));
    }
    if text.contains("-----BEGIN PRIVATE KEY-----") {
        let der = pem_body(text, "PRIVATE KEY").ok_or("the PEM block is damaged")?;
        // PKCS#8 for Ed25519 is a fixed 16-byte prefix (with OID 1.3.101.112) and the seed.
        const ED25519_PREFIX: [u8; 16] =
            [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
        if der.len() == 48 && der[..16] == ED25519_PREFIX {
            let seed = base64_encode(&der[16..]);
            let key = DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519)
                .map_err(|_| "the Ed25519 key cannot be decoded".to_string())?;
            return Ok((key, "ed25519-sha256"));
        }
        let rsa = rsa::RsaPrivateKey::from_pkcs8_der(&der)
            .map_err(|_| "a PKCS#8 key that is neither RSA nor Ed25519 (or is damaged)".to_string())?;
        let pkcs1 = rsa.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).map_err(|_| "the RSA key cannot be re-encoded")?;
        let key = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
            .map_err(|_| "the RSA key cannot be decoded".to_string())?;
        return Ok((key, "rsa-sha256"));
    }
    if text.contains("-----BEGIN") {
        return Err("use an unencrypted RSA or Ed25519 key in PEM (`RSA PRIVATE KEY` or `PRIVATE KEY`)".into());
    }
    // A bare base64 Ed25519 seed (32 bytes), as some DKIM tools write it.
    if text.len() == 44 && !text.contains(char::is_whitespace) {
        let key = DkimSigningKey::new(text, DkimSigningAlgorithm::Ed25519)
            .map_err(|_| "not a base64 Ed25519 seed".to_string())?;
        return Ok((key, "ed25519-sha256"));
    }
    Err("expected a PEM private key (RSA or Ed25519)".into())
}

/// The DER bytes of the first `label` PEM block.
fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    base64_decode(&b64)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().take_while(|&c| c != b'=') {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            assert_eq!(base64_decode(&base64_encode(data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }

    #[test]
    fn bad_keys_are_named_without_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let secret = "-----BEGIN RSA PRIVATE KEY-----\nU0VDUkVULUtFWS1NQVRFUklBTA==\n-----END RSA PRIVATE KEY-----\n";
        std::fs::write(&path, secret).unwrap();
        let settings = DkimSettings { domain: "example.org".into(), selector: "s1".into(), key_file: path.clone() };
        let err = Signer::load(&settings, path.clone()).unwrap_err().to_string();
        assert!(err.contains("k.pem"), "{err}");
        assert!(!err.contains("U0VDUkVU"), "the key must never be printed: {err}");
        let err = Signer::load(&settings, dir.path().join("missing.pem")).unwrap_err().to_string();
        assert!(err.contains("cannot read the DKIM key file"), "{err}");
    }
}
