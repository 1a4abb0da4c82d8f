//! DKIM signing of outgoing mail (`[email.dkim]`) over the final bytes of a message,
//! with `ring` (constant-time RSA with blinding, and Ed25519; the same crypto rustls
//! uses) and relaxed/relaxed canonicalization written here (RFC 6376 section 3.4).
//!
//! The private key is read from `key_file` once: RSA as PEM (PKCS#1 `RSA PRIVATE KEY`
//! or PKCS#8 `PRIVATE KEY`, 2048 to 4096 bits), or Ed25519 as PKCS#8 PEM or the bare
//! base64 seed. Errors name the file and what is wrong with it, never any of its
//! contents.
//!
//! Relaxed canonicalization survives the header refolding and whitespace changes relays
//! do. The signature covers the headers a reader trusts or a mailbox provider acts on,
//! `Content-Type` included (signing the bytes as they go out, after lettre wrote the
//! multipart header), both `List-Unsubscribe` headers as RFC 8058 requires for one-click
//! unsubscribe, and names `From`, `Subject` and both `List-Unsubscribe` headers once
//! more than they occur (over-signing), so none can be added in transit.

use crate::config::{Config, DkimConfig as DkimSettings};
use base64ct::{Base64, Encoding};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use std::path::PathBuf;

/// Headers covered by the signature, each as often as it occurs; absent ones are
/// signed as absent, so they cannot be added later either.
pub const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// Headers named once more than they occur: a second `From` or `Subject` added on the
/// way, or a `List-Unsubscribe` slipped into a message without one, breaks the signature.
pub const OVERSIGNED_HEADERS: [&str; 4] = ["From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"];

enum Key {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A loaded key and where it is published; signs messages.
pub struct Signer {
    key: Key,
    rng: SystemRandom,
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
        let key = parse_key(&text).map_err(|why| DkimError::BadKey { path: path.clone(), why })?;
        let algorithm = match key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        };
        Ok(Signer {
            key,
            rng: SystemRandom::new(),
            domain: settings.domain.trim().into(),
            selector: settings.selector.trim().into(),
            algorithm,
        })
    }

    /// The configured signer for a command; a key that cannot be used is an error
    /// diagnostic pointing at the config, so nothing goes out unsigned by mistake.
    pub fn for_command(config: &Config) -> Result<Option<Signer>, crate::diag::Diagnostic> {
        Signer::from_config(config).map_err(|e| {
            crate::diag::Diagnostic::error("dkim", e.to_string()).in_file(&config.path).help(
                "point `[email.dkim] key_file` at an unencrypted RSA (2048 to 4096 bits) or Ed25519 private key in PEM",
            )
        })
    }

    /// The `k=` of the key record: `rsa` or `ed25519`.
    pub fn key_type(&self) -> &'static str {
        match self.key {
            Key::Rsa(_) => "rsa",
            Key::Ed25519(_) => "ed25519",
        }
    }

    /// The public key as the DNS record's `p=` carries it (base64-decoded), so
    /// `preview --dns` can tell whether the published key is this key's: for RSA the
    /// DER SubjectPublicKeyInfo (RFC 6376 section 3.6.1), for Ed25519 the raw 32 bytes
    /// (RFC 8463 section 4). Public, so it may be printed.
    pub fn public_key(&self) -> Vec<u8> {
        match &self.key {
            Key::Rsa(key) => {
                use pkcs8::der::Encode;
                // ring gives the PKCS#1 RSAPublicKey; DKIM wraps it with its algorithm.
                let info = pkcs8::spki::SubjectPublicKeyInfoRef {
                    algorithm: pkcs8::spki::AlgorithmIdentifierRef {
                        oid: RSA_ENCRYPTION,
                        parameters: Some(pkcs8::der::AnyRef::NULL),
                    },
                    subject_public_key: pkcs8::der::asn1::BitStringRef::from_bytes(key.public().as_ref())
                        .expect("a DER RSAPublicKey fits a BIT STRING"),
                };
                info.to_der().expect("a SubjectPublicKeyInfo of a loaded key encodes")
            }
            Key::Ed25519(key) => key.public_key().as_ref().to_vec(),
        }
    }

    /// `message` (the bytes as they go out, CRLF line ends) with a `DKIM-Signature`
    /// header in front. Sign last: any later change breaks it. The signature's time is
    /// `SOURCE_DATE_EPOCH` when set, as the message's `Date` is: RSA (PKCS#1 v1.5) and
    /// Ed25519 signatures are deterministic, so a preview and the send then carry the
    /// same bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let now =
            std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or_else(|| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
            });
        let header = self.signature_header(message, now);
        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        out
    }

    /// The `DKIM-Signature: ...\r\n` header for `message`, timestamped `now`.
    pub fn signature_header(&self, message: &[u8], now: u64) -> String {
        let (head, body) = split_message(message);
        let fields = header_fields(head);
        // h=: each signed header as often as it occurs (once when absent), over-signed
        // ones once more; instances are taken from the bottom up (RFC 6376 5.4.2).
        let mut names = Vec::new();
        for name in SIGNED_HEADERS {
            let present = fields.iter().filter(|f| f.name.eq_ignore_ascii_case(name)).count();
            let extra = usize::from(OVERSIGNED_HEADERS.contains(&name));
            names.extend(std::iter::repeat_n(name.to_ascii_lowercase(), present.max(1 - extra) + extra));
        }
        let mut used = vec![false; fields.len()];
        let mut signed = Vec::new();
        for name in &names {
            if let Some(i) = (0..fields.len()).rev().find(|&i| !used[i] && fields[i].name.eq_ignore_ascii_case(name)) {
                used[i] = true;
                relaxed_header(fields[i].raw, &mut signed);
                signed.extend_from_slice(b"\r\n");
            }
        }
        let body_hash =
            Base64::encode_string(ring::digest::digest(&ring::digest::SHA256, &relaxed_body(body)).as_ref());
        // Folded as it is sent; the verifier canonicalizes these very bytes.
        let mut unsigned = format!(
            "DKIM-Signature: v=1; a={}; c=relaxed/relaxed; d={}; s={}; t={now};\r\n\th={};\r\n\tbh={body_hash};\r\n\tb=",
            self.algorithm,
            self.domain,
            self.selector,
            fold_list(&names),
        );
        relaxed_header(&unsigned, &mut signed);
        let signature = match &self.key {
            Key::Rsa(key) => {
                let mut out = vec![0u8; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &self.rng, &signed, &mut out)
                    .expect("an RSA key of a size ring signs with");
                out
            }
            // RFC 8463: Ed25519 signs the SHA-256 hash of the data.
            Key::Ed25519(key) => {
                key.sign(ring::digest::digest(&ring::digest::SHA256, &signed).as_ref()).as_ref().to_vec()
            }
        };
        let b = Base64::encode_string(&signature);
        for (i, chunk) in b.as_bytes().chunks(64).enumerate() {
            if i > 0 {
                unsigned.push_str("\r\n\t ");
            }
            unsigned.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        }
        unsigned.push_str("\r\n");
        unsigned
    }
}

/// `h=`'s names, a few to a line.
fn fold_list(names: &[String]) -> String {
    names.chunks(5).map(|c| c.join(":")).collect::<Vec<_>>().join(":\r\n\t ")
}

/// The header block (without the blank line) and the body.
fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memmem::find(message, b"\r\n\r\n") {
        Some(at) => (&message[..at + 2], &message[at + 4..]),
        None => (message, b""),
    }
}

/// One header field: its name and its whole text (name, colon, value with its folding),
/// without the final CRLF.
struct Field<'a> {
    name: &'a str,
    raw: &'a str,
}

fn header_fields(head: &[u8]) -> Vec<Field<'_>> {
    let head = std::str::from_utf8(head).unwrap_or("");
    let mut fields: Vec<Field> = Vec::new();
    let mut start = 0;
    let bytes = head.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            let continued = bytes.get(i + 1).is_some_and(|b| *b == b' ' || *b == b'\t');
            if !continued {
                let raw = head[start..i].trim_end_matches('\r');
                if let Some((name, _)) = raw.split_once(':') {
                    fields.push(Field { name: name.trim_end(), raw });
                }
                start = i + 1;
            }
        }
        i += 1;
    }
    fields
}

/// Relaxed header canonicalization (RFC 6376 3.4.2): the name lowercased, the value
/// unfolded, runs of spaces and tabs made one space, none at either end or around the
/// colon. Appended to `out` without the CRLF.
fn relaxed_header(raw: &str, out: &mut Vec<u8>) {
    let (name, value) = raw.split_once(':').unwrap_or((raw, ""));
    out.extend(name.trim_end_matches([' ', '\t']).bytes().map(|b| b.to_ascii_lowercase()));
    out.push(b':');
    let mut space = false;
    let mut any = false;
    for b in value.bytes() {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = true,
            _ => {
                if space && any {
                    out.push(b' ');
                }
                space = false;
                any = true;
                out.push(b);
            }
        }
    }
}

/// Relaxed body canonicalization (RFC 6376 3.4.4): no spaces or tabs at line ends, runs
/// of them made one space, no empty lines at the end, and a final CRLF unless empty.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut blank_lines = 0usize;
    let mut rest = body;
    while !rest.is_empty() {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Blank lines are written when a line with text follows, and taken back if
        // this one turns out blank too.
        let mark = out.len();
        for _ in 0..blank_lines {
            out.extend_from_slice(b"\r\n");
        }
        let text_start = out.len();
        let mut space = false;
        for &b in line {
            if b == b' ' || b == b'\t' {
                space = true;
            } else {
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(b);
            }
        }
        if out.len() == text_start {
            out.truncate(mark);
            blank_lines += 1;
        } else {
            blank_lines = 0;
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// PKCS#8 algorithm identifiers (RFC 8410 for Ed25519, RFC 8017 for RSA).
const ED25519: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");
const RSA_ENCRYPTION: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Reads a private key in any of the accepted forms: PEM and DER through the RustCrypto
/// `pkcs8` crate, the key's kind from its algorithm identifier, the key itself by ring.
fn parse_key(text: &str) -> Result<Key, String> {
    use pkcs8::der::Decode;
    let text = text.trim();
    let rsa = |key: Result<RsaKeyPair, ring::error::KeyRejected>| {
        key.map(Key::Rsa).map_err(|e| match e.to_string().as_str() {
            "TooSmall" | "TooLarge" | "PrivateModulusLenNotMultipleOf512Bits" => {
                "RSA keys must have 2048 to 4096 bits (a multiple of 512)".to_string()
            }
            _ => "the RSA key cannot be decoded".to_string(),
        })
    };
    if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        let (_, der) = pkcs8::der::pem::decode_vec(text.as_bytes())
            .map_err(|_| "the RSA key (PKCS#1 PEM) cannot be decoded".to_string())?;
        return rsa(RsaKeyPair::from_der(&der));
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
                ed25519(seed.as_bytes())
            }
            RSA_ENCRYPTION => rsa(RsaKeyPair::from_pkcs8(doc.as_bytes())),
            _ => Err("a PKCS#8 key that is neither RSA nor Ed25519".into()),
        };
    }
    if text.contains("-----BEGIN") {
        return Err("use an unencrypted RSA or Ed25519 key in PEM (`RSA PRIVATE KEY` or `PRIVATE KEY`)".into());
    }
    // A bare base64 Ed25519 seed (32 bytes), as some DKIM tools write it.
    match Base64::decode_vec(text) {
        Ok(seed) if seed.len() == 32 => ed25519(&seed),
        _ => Err("expected a PEM private key (RSA or Ed25519)".into()),
    }
}

fn ed25519(seed: &[u8]) -> Result<Key, String> {
    Ed25519KeyPair::from_seed_unchecked(seed).map(Key::Ed25519).map_err(|_| "the Ed25519 key cannot be decoded".into())
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
        assert!(matches!(parse_key(&pem), Ok(Key::Ed25519(_))));
        // A PKCS#8 key of another kind (X25519, OID 1.3.101.110) is refused by name.
        let x25519 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEIHcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH\n-----END PRIVATE KEY-----\n";
        let Err(err) = parse_key(x25519) else { panic!("X25519 accepted") };
        assert!(err.contains("neither RSA nor Ed25519"), "{err}");
        // A bare seed.
        use base64ct::{Base64, Encoding};
        assert!(matches!(parse_key(&Base64::encode_string(&[7u8; 32])), Ok(Key::Ed25519(_))));
        assert!(parse_key("not a key").is_err());
    }

    #[test]
    fn canonicalization_is_rfc_6376s_example() {
        // RFC 6376 section 3.4.5.
        let mut out = Vec::new();
        for raw in ["A: X", "B : Y\t\r\n\tZ  "] {
            relaxed_header(raw, &mut out);
            out.extend_from_slice(b"\r\n");
        }
        assert_eq!(String::from_utf8(out).unwrap(), "a:X\r\nb:Y Z\r\n");
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed_body(b"a\r\n\r\nb"), b"a\r\n\r\nb\r\n", "inner blank lines stay; a last CRLF is added");
        assert_eq!(relaxed_body(b"\r\n \r\n"), b"", "an empty body");
        let fields = header_fields(b"Subject: a\r\n b\r\nFrom: x\r\n");
        assert_eq!(
            fields.iter().map(|f| (f.name, f.raw)).collect::<Vec<_>>(),
            [("Subject", "Subject: a\r\n b"), ("From", "From: x")]
        );
    }

    #[test]
    fn public_keys_are_what_dkim_records_publish() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::EncodePublicKey;
        let dir = tempfile::tempdir().unwrap();
        let settings =
            DkimSettings { domain: "example.org".into(), selector: "s1".into(), key_file: dir.path().join("k.pem") };
        let rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        std::fs::write(&settings.key_file, rsa.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap().as_bytes()).unwrap();
        let signer = Signer::load(&settings, settings.key_file.clone()).unwrap();
        assert_eq!(signer.key_type(), "rsa");
        assert_eq!(signer.public_key(), rsa.to_public_key().to_public_key_der().unwrap().as_bytes());
        let seed = [7u8; 32];
        std::fs::write(&settings.key_file, Base64::encode_string(&seed)).unwrap();
        let signer = Signer::load(&settings, settings.key_file.clone()).unwrap();
        assert_eq!(signer.key_type(), "ed25519");
        let expected = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        assert_eq!(signer.public_key(), expected);
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
