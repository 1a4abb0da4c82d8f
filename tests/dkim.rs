//! DKIM: subscriber mail sent by the real binary to a real SMTP server is verified by
//! an independent verifier (the `mail-auth` crate), with the DNS key record the test
//! publishes to it. RSA (PKCS#1 and PKCS#8 PEM) and Ed25519 keys, generated per test.

mod delivery_common;
mod support;

use delivery_common::config;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use support::smtp::SmtpServer;
use support::{Site, text};

/// The test's DNS: the `_domainkey` TXT record the verifier would otherwise fetch.
/// (mail-auth's `test` feature makes every real lookup fail, so nothing leaves the
/// machine; the cache answers first.)
#[derive(Default)]
struct Records(Mutex<HashMap<String, Txt>>);

impl ResolverCache<String, Txt> for Records {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().get(name).cloned()
    }
    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().remove(name)
    }
    fn insert(&self, key: String, value: Txt, _: std::time::Instant) {
        self.0.lock().unwrap().insert(key, value);
    }
}

/// Verifies every DKIM signature of `raw` against the record `txt` published at
/// `s1._domainkey.example.org`.
async fn verify(raw: &[u8], txt: &str) -> Vec<DkimResult> {
    let records = Records::default();
    let key = DomainKey::parse(txt.as_bytes()).expect("the test's DNS record parses");
    records.insert("s1._domainkey.example.org.".into(), Txt::DomainKey(key.into()), std::time::Instant::now());
    let authenticator = MessageAuthenticator::new_cloudflare().unwrap();
    let message = AuthenticatedMessage::parse(raw).expect("the message parses");
    authenticator
        .verify_dkim(Parameters::new(&message).with_txt_cache(&records))
        .await
        .into_iter()
        .map(|o| o.result().clone())
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    use base64ct::{Base64, Encoding};
    Base64::encode_string(bytes)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = b64(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// Sends the newest issue to 3 subscribers with `key_pem` as the DKIM key; returns
/// the messages as the server received them.
fn send_signed(key_pem: &str) -> (Vec<Vec<u8>>, String) {
    let server = SmtpServer::start();
    let dkim = "\n[email.dkim]\ndomain = \"example.org\"\nselector = \"s1\"\nkey_file = \"keys/dkim.pem\"\n";
    let cfg = config(server.port(), "connections = 2");
    // `[email.dkim]` is a subtable of `[email]`: it goes after all of `[email]`'s keys.
    let site = Site::new(&format!("{cfg}{dkim}"));
    std::fs::create_dir_all(site.path("keys")).unwrap();
    std::fs::write(site.path("keys/dkim.pem"), key_pem).unwrap();
    std::fs::write(site.path("list.csv"), "ada@example.net,Ada\nbob@example.com,Bob\ncarol@example.org,Carol\n")
        .unwrap();
    let out = site.run(&["subscribers", "import", "list.csv"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = site.run(&["send", "--subscribers", "--yes"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    // The key never shows in the output; the algorithm and selector do.
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!t.contains(line), "the private key leaked into the output");
    }
    let messages: Vec<Vec<u8>> = server.messages().into_iter().map(|m| m.data).collect();
    assert_eq!(messages.len(), 3);
    (messages, t)
}

/// With `NEWSDESK_DKIM_EXPORT=DIR`, keeps each signed message and its DNS record for
/// the second, independent verifier in CI (Python's dkimpy: tests/dkim_dkimpy.py).
fn export(name: &str, messages: &[Vec<u8>], txt: &str) {
    let Ok(dir) = std::env::var("NEWSDESK_DKIM_EXPORT") else { return };
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    for (i, m) in messages.iter().enumerate() {
        std::fs::write(dir.join(format!("{name}-{i}.eml")), m).unwrap();
        std::fs::write(dir.join(format!("{name}-{i}.txt")), txt).unwrap();
    }
}

fn assert_verifies(messages: &[Vec<u8>], txt: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for m in messages {
        let results = rt.block_on(verify(m, txt));
        assert_eq!(results, [DkimResult::Pass], "{}", String::from_utf8_lossy(&m[..600.min(m.len())]));
        let headers = String::from_utf8_lossy(m);
        let sig = headers.split("DKIM-Signature:").nth(1).unwrap();
        let sig: String = sig.split("\r\n").take_while(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
        let h = sig.split("h=").nth(1).unwrap().split(';').next().unwrap().to_ascii_lowercase();
        for covered in
            ["from", "to", "subject", "message-id", "content-type", "list-unsubscribe", "list-unsubscribe-post"]
        {
            assert!(h.split(':').any(|x| x.trim() == covered), "{covered} is not signed: h={h}");
        }
        // Over-signed: named once more than they occur.
        let named = |n: &str| h.split(':').filter(|x| x.trim() == n).count();
        assert_eq!(named("from"), 2, "h={h}");
        assert_eq!(named("subject"), 2, "h={h}");
    }
    // A header added in transit breaks the signature: a second From or Subject, a
    // List-Unsubscribe pointing elsewhere, a changed Content-Type.
    for (what, find, insert) in [
        ("a second From", "\r\nFrom:", "\r\nFrom: Mallory <m@example.net>"),
        ("a second Subject", "\r\nSubject:", "\r\nSubject: Act now"),
        ("another List-Unsubscribe", "\r\nFrom:", "\r\nList-Unsubscribe: <https://evil.example/u>"),
    ] {
        let text = String::from_utf8_lossy(&messages[0]).into_owned();
        let at = text.find(find).unwrap_or_else(|| panic!("{find:?} in the message"));
        let tampered = format!("{}{insert}{}", &text[..at], &text[at..]);
        let results = rt.block_on(verify(tampered.as_bytes(), txt));
        assert!(!results.contains(&DkimResult::Pass), "{what} kept the signature valid: {results:?}");
    }
    let text = String::from_utf8_lossy(&messages[0]).into_owned();
    let changed = text.replacen("Content-Type: multipart/alternative;", "Content-Type: multipart/mixed;", 1);
    assert_ne!(changed, text);
    assert!(!rt.block_on(verify(changed.as_bytes(), txt)).contains(&DkimResult::Pass), "Content-Type is not covered");
    // A changed body no longer verifies: the verifier really checks.
    let mut tampered = messages[0].clone();
    let at = tampered.windows(4).rposition(|w| w == b"LWKD").expect("the body mentions LWKD");
    tampered[at] = b'X';
    let results = rt.block_on(verify(&tampered, txt));
    assert!(!results.contains(&DkimResult::Pass), "{results:?}");
}

fn rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap()
}

fn rsa_record(key: &rsa::RsaPrivateKey) -> String {
    use rsa::pkcs8::EncodePublicKey;
    let spki = key.to_public_key().to_public_key_der().unwrap();
    format!("v=DKIM1; k=rsa; p={}", b64(spki.as_bytes()))
}

#[test]
fn rsa_pkcs1_signatures_verify() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let key = rsa_key();
    let pem = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let (messages, out) = send_signed(&pem);
    assert!(out.contains("DKIM rsa-sha256 s=s1 d=example.org"), "{out}");
    export("rsa-pkcs1", &messages, &rsa_record(&key));
    assert_verifies(&messages, &rsa_record(&key));
}

#[test]
fn rsa_pkcs8_signatures_verify() {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa_key();
    let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let (messages, _) = send_signed(&pem);
    export("rsa-pkcs8", &messages, &rsa_record(&key));
    assert_verifies(&messages, &rsa_record(&key));
}

#[test]
fn ed25519_signatures_verify() {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    // PKCS#8 for Ed25519 (RFC 8410), as `openssl genpkey -algorithm ed25519` writes it.
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(&seed);
    let (messages, out) = send_signed(&pem("PRIVATE KEY", &der));
    assert!(out.contains("DKIM ed25519-sha256"), "{out}");
    let record = format!("v=DKIM1; k=ed25519; p={}", b64(key.verifying_key().as_bytes()));
    export("ed25519", &messages, &record);
    assert_verifies(&messages, &record);
}

#[test]
fn a_bad_key_file_stops_the_send_before_anything_goes_out() {
    let server = SmtpServer::start();
    let cfg = config(server.port(), "");
    let site = Site::new(&format!(
        "{cfg}\n[email.dkim]\ndomain = \"example.org\"\nselector = \"s1\"\nkey_file = \"dkim.pem\"\n"
    ));
    std::fs::write(site.path("list.csv"), "ada@example.net\n").unwrap();
    assert!(site.run(&["subscribers", "import", "list.csv"]).status.success());
    let out = site.run(&["send", "--subscribers", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("cannot read the DKIM key file"), "{}", text(&out));
    std::fs::write(site.path("dkim.pem"), "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n")
        .unwrap();
    let out = site.run(&["send", "--subscribers", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("is not a usable private key"), "{t}");
    assert!(!t.contains("c2VjcmV0"), "the key's contents must not be printed: {t}");
    assert_eq!(server.count(), 0);
}

#[test]
fn list_sends_and_previews_are_signed_too() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let key = rsa_key();
    let pem = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let server = SmtpServer::start();
    let cfg = config(server.port(), "");
    let site = Site::new(&format!(
        "{cfg}\n[email.dkim]\ndomain = \"example.org\"\nselector = \"s1\"\nkey_file = \"dkim.pem\"\n"
    ));
    std::fs::write(site.path("dkim.pem"), pem.as_bytes()).unwrap();

    let out = site.run(&["preview"]);
    assert!(out.status.success(), "{}", text(&out));
    let eml = std::fs::read(site.path("_preview/message.eml")).unwrap();
    let previewed = String::from_utf8_lossy(&eml).to_string();
    assert!(previewed.contains("DKIM-Signature:"), "the preview shows the signed message");
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!previewed.contains(line) && !text(&out).contains(line), "the private key leaked");
    }
    assert_verifies(&[eml], &rsa_record(&key));

    // A list send goes through the same path as this test send (the test config has
    // no list address).
    let out = site.run(&["send", "--to", "editor@example.org", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let messages: Vec<Vec<u8>> = server.messages().into_iter().map(|m| m.data).collect();
    assert_eq!(messages.len(), 1);
    assert_verifies(&messages, &rsa_record(&key));
}
