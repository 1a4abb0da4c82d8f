//! TLS against a real MTA: Debian's Postfix on 127.0.0.1 (tests/support/postfix.rs),
//! with a CA and server certificates made by the test. STARTTLS and TLS from the first
//! byte deliver with `[smtp] ca_file`; without it, for a certificate of another name,
//! for an expired one, and for a server that offers no STARTTLS, the send stops with an
//! error that says what is wrong and what to set, and nothing is delivered. The
//! message Postfix stores is byte for byte the preview's, DKIM signature included.

mod support;

use support::postfix::Postfix;
use support::{Site, mail_config, text};

/// The bundled site sending its newest issue to the list address through Postfix.
fn site(port: u16, smtp: &str, dkim_key: Option<&str>) -> Site {
    let mail = mail_config(port).replace("security = \"none\"\n", &format!("{smtp}\n"));
    let dkim = if dkim_key.is_some() {
        "\n[email.dkim]\ndomain = \"example.org\"\nselector = \"s1\"\nkey_file = \"dkim.pem\"\n"
    } else {
        ""
    };
    // `[email.dkim]` goes after all of `[email]`'s keys, before `[smtp]`.
    let mail = match mail.find("\n[smtp]") {
        Some(at) => format!("{}{dkim}{}", &mail[..at], &mail[at..]),
        None => mail,
    };
    let site = Site::new(&mail);
    if let Some(key) = dkim_key {
        std::fs::write(site.path("dkim.pem"), key).unwrap();
    }
    site
}

fn lf(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n").into_bytes()
}

#[test]
fn tls_against_postfix() {
    let Some(postfix) = Postfix::start() else { return };
    let ca = postfix.ca_file.display().to_string();
    let p = postfix.ports;

    // 1. STARTTLS with the CA in ca_file, DKIM on: delivered, byte for byte the preview.
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let pem = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let good = site(p.starttls, &format!("security = \"starttls\"\nca_file = \"{ca}\""), Some(&pem));
    let out = good.run(&["preview"]);
    assert!(out.status.success(), "{}", text(&out));
    let preview = std::fs::read(good.path("_preview/message.eml")).unwrap();
    assert!(String::from_utf8_lossy(&preview).starts_with("DKIM-Signature:"));
    let out = good.run(&["send", "--yes"]);
    assert!(out.status.success(), "{}\n{}", text(&out), postfix.log());
    let delivered = postfix.wait_for(1);
    assert!(
        delivered[0].ends_with(&lf(&preview)),
        "Postfix stored other bytes than the preview's:\n{}",
        String::from_utf8_lossy(&delivered[0])
    );
    // Postfix's own Received header says the session was encrypted (ESMTPS).
    let stored = String::from_utf8_lossy(&delivered[0]).into_owned();
    let received = &stored[..stored.find("DKIM-Signature:").unwrap()];
    assert!(received.contains("with ESMTPS"), "{received}");

    // 2. TLS from the first byte, the same CA.
    let tls = site(p.tls, &format!("security = \"tls\"\nca_file = \"{ca}\""), None);
    let out = tls.run(&["send", "--yes"]);
    assert!(out.status.success(), "{}\n{}", text(&out), postfix.log());
    let delivered = postfix.wait_for(2);
    assert!(String::from_utf8_lossy(&delivered[1]).contains("with ESMTPS"));

    // 3. Failures: each says what is wrong and what to set; nothing is delivered.
    for (what, port, smtp, expected) in [
        (
            "no ca_file",
            p.starttls,
            "security = \"starttls\"".to_string(),
            format!(
                "the certificate of 127.0.0.1:{} is signed by an unknown authority; set [smtp] ca_file",
                p.starttls
            ),
        ),
        (
            "the system roots only",
            p.starttls,
            "security = \"starttls\"\ntls_roots = \"system\"".to_string(),
            "is signed by an unknown authority; set [smtp] ca_file".to_string(),
        ),
        (
            "a certificate for another name",
            p.wrong_name,
            format!("security = \"starttls\"\nca_file = \"{ca}\""),
            format!("the certificate of 127.0.0.1:{} is not valid for that name", p.wrong_name),
        ),
        (
            "an expired certificate",
            p.expired,
            format!("security = \"starttls\"\nca_file = \"{ca}\""),
            format!("the certificate of 127.0.0.1:{} has expired", p.expired),
        ),
        (
            "no STARTTLS offered",
            p.plain,
            format!("security = \"starttls\"\nca_file = \"{ca}\""),
            format!("127.0.0.1:{} does not offer STARTTLS", p.plain),
        ),
    ] {
        let s = site(port, &smtp, None);
        let out = s.run(&["send", "--yes"]);
        let t = text(&out);
        assert!(!out.status.success(), "{what}: the send succeeded:\n{t}");
        assert!(t.contains(&expected), "{what}: expected {expected:?} in:\n{t}");
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(postfix.messages().len(), 2, "nothing more was delivered");
}

#[test]
fn ca_file_and_tls_roots_are_checked_without_connecting() {
    let s = site(1, "security = \"starttls\"\nca_file = \"missing-ca.pem\"", None);
    let out = s.run(&["check"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("cannot read the CA file") && t.contains("missing-ca.pem") && t.contains("config.toml:"), "{t}");
    std::fs::write(s.path("missing-ca.pem"), "not a certificate\n").unwrap();
    let t = text(&s.run(&["check"]));
    assert!(t.contains("holds no PEM certificate"), "{t}");
    let s = site(1, "security = \"starttls\"\ntls_roots = \"mozilla\"", None);
    let t = text(&s.run(&["check"]));
    assert!(t.contains("unknown `tls_roots = \"mozilla\"`: it must be \"webpki\" or \"system\""), "{t}");
}
