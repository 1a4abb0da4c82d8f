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

/// PKCS#8 algorithm identifiers (RFC 8410 for Ed25519, RFC 8017 for RSA).
const ED25519: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");
const RSA_ENCRYPTION: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Reads a private key in any of the accepted forms: PEM and DER through the RustCrypto
/// `pkcs8` crate, the key's kind from its algorithm identifier.
fn parse_key(text: &str) -> Result<(DkimSigningKey, &'static str), String> {
    use base64ct::{Base64, Encoding};
    use pkcs8::der::Decode;
    let text = text.trim();
    if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        let key = DkimSigningKey::new(text, DkimSigningAlgorithm::Rsa)
            .map_err(|_| "the RSA key (PKCS#1 PEM) cannot be decoded".to_string())?;
        return Ok((key, "rsa-sha256"));
    }
    if text.contains("-----BEGIN PRIVATE KEY-----") {
        let (_, doc) = pkcs8::SecretDocument::from_pem(text).map_err(|_| "the PEM block is damaged".to_string())?;
        let info = pkcs8::PrivateKeyInfo::try_from(doc.as_bytes())
            .map_err(|_| "the PKCS#8 key cannot be decoded".to_string())?;
        return match info.algorithm.oid {
            ED25519 => {
                // The key is an OCTET STRING holding the 32-byte seed (RFC 8410 section 7).
                let seed = pkcs8::der::asn1::OctetStringRef::from_der(info.private_key)
                    .ok()
                    .filter(|s| s.as_bytes().len() == 32)
                    .ok_or("the Ed25519 key is damaged")?;
                let key = DkimSigningKey::new(&Base64::encode_string(seed.as_bytes()), DkimSigningAlgorithm::Ed25519)
                    .map_err(|_| "the Ed25519 key cannot be decoded".to_string())?;
                Ok((key, "ed25519-sha256"))
            }
            RSA_ENCRYPTION => {
                let rsa = rsa::RsaPrivateKey::from_pkcs8_der(doc.as_bytes())
                    .map_err(|_| "the RSA key (PKCS#8) is damaged".to_string())?;
                let pkcs1 =
                    rsa.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).map_err(|_| "the RSA key cannot be re-encoded")?;
                let key = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
                    .map_err(|_| "the RSA key cannot be decoded".to_string())?;
                Ok((key, "rsa-sha256"))
            }
            _ => Err("a PKCS#8 key that is neither RSA nor Ed25519".into()),
        };
    }
    if text.contains("-----BEGIN") {
        return Err("use an unencrypted RSA or Ed25519 key in PEM (`RSA PRIVATE KEY` or `PRIVATE KEY`)".into());
    }
    // A bare base64 Ed25519 seed (32 bytes), as some DKIM tools write it.
    if Base64::decode_vec(text).is_ok_and(|seed| seed.len() == 32) {
        let key = DkimSigningKey::new(text, DkimSigningAlgorithm::Ed25519)
            .map_err(|_| "not a base64 Ed25519 seed".to_string())?;
        return Ok((key, "ed25519-sha256"));
    }
    Err("expected a PEM private key (RSA or Ed25519)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_kinds_come_from_the_algorithm_identifier() {
        // An Ed25519 PKCS#8 key written with optional attributes/public key (RFC 8410's
        // v2 form, 0x81 public key): the old fixed-prefix match did not know it.
        use pkcs8::der::Encode;
        let seed = pkcs8::der::asn1::OctetString::new([7u8; 32]).unwrap().to_der().unwrap();
        let public = [9u8; 32];
        let mut info =
            pkcs8::PrivateKeyInfo::new(pkcs8::spki::AlgorithmIdentifierRef { oid: ED25519, parameters: None }, &seed);
        info.public_key = Some(&public);
        let pem = pkcs8::SecretDocument::try_from(info).unwrap().to_pem("PRIVATE KEY", pkcs8::LineEnding::LF).unwrap();
        let (_, alg) = parse_key(&pem).unwrap();
        assert_eq!(alg, "ed25519-sha256");
        // A PKCS#8 key of another kind (X25519, OID 1.3.101.110) is refused by name.
        let x25519 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEIHcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH\n-----END PRIVATE KEY-----\n";
        let err = parse_key(x25519).err().unwrap();
        assert!(err.contains("neither RSA nor Ed25519"), "{err}");
        // A bare seed.
        use base64ct::{Base64, Encoding};
        assert_eq!(parse_key(&Base64::encode_string(&[7u8; 32])).unwrap().1, "ed25519-sha256");
        assert!(parse_key("not a key").is_err());
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
