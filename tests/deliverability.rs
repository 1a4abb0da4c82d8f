//! The deliverability report of `preview` and `check`, through the real binary on the
//! bundled site: a well-configured list is all ok, and each way to get it wrong is
//! reported by name. With `--dns` the records come from a real DNS server on
//! 127.0.0.1 (dnsmasq) serving the test's zone.

mod support;

use serde_json::Value;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Site, text};

/// `[email]` (file transport: nothing leaves the machine) with `return_path`, and
/// `[email.dkim]` signing as `dkim_domain` with the key in `keys/dkim.pem`.
fn config(return_path: Option<&str>, dkim_domain: Option<&str>) -> String {
    let mut c = String::from(
        r#"
[email]
from = "LWKD <lwkd@example.org>"
to = "kubernetes-dev@example.org"
templates = "email-templates"
transport = "file"
file_dir = "outbox"
list_id = "LWKD <lwkd.example.org>"
unsubscribe_url = "https://lwkd.example.org/unsubscribe"
unsubscribe_mailto = "lwkd+unsubscribe@example.org"
"#,
    );
    if let Some(rp) = return_path {
        c.push_str(&format!("return_path = \"{rp}\"\n"));
    }
    if let Some(d) = dkim_domain {
        c.push_str(&format!("\n[email.dkim]\ndomain = \"{d}\"\nselector = \"s1\"\nkey_file = \"keys/dkim.pem\"\n"));
    }
    c
}

/// A fresh Ed25519 key, as the bare base64 seed the signer reads; and its public key.
fn ed25519_key() -> (String, [u8; 32]) {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    (b64(&seed), public)
}

fn b64(bytes: &[u8]) -> String {
    use base64ct::{Base64, Encoding};
    Base64::encode_string(bytes)
}

/// The bundled site with `mail` and, when given, `key` as the DKIM key file.
fn site(mail: &str, key: Option<&str>) -> Site {
    let site = Site::new(mail);
    if let Some(key) = key {
        std::fs::create_dir_all(site.path("keys")).unwrap();
        std::fs::write(site.path("keys/dkim.pem"), key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(site.path("keys/dkim.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    site
}

/// Runs `args` with `--format json`; the exit code and the JSON.
fn json(site: &Site, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = site.run_env(&all, env);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code().unwrap(), v)
}

/// name → (status, detail) of the report's checks.
fn checks(v: &Value) -> Vec<(String, String, String)> {
    v["deliverability"]
        .as_array()
        .unwrap_or_else(|| panic!("no deliverability in {v:#}"))
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["status"].as_str().unwrap().into(),
                c["detail"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn check_named<'a>(all: &'a [(String, String, String)], name: &str) -> (&'a str, &'a str) {
    all.iter()
        .find(|c| c.0 == name)
        .map(|c| (c.1.as_str(), c.2.as_str()))
        .unwrap_or_else(|| panic!("no `{name}` check in {all:#?}"))
}

/// Only the `name`d checks are not ok, each with `status`.
fn only_these_fail(all: &[(String, String, String)], failing: &[(&str, &str)]) {
    for (name, status, detail) in all {
        let wanted = failing.iter().find(|(n, _)| n == name).map_or("ok", |(_, s)| *s);
        assert_eq!(status, wanted, "{name}: {detail}\nall: {all:#?}");
    }
    for (name, _) in failing {
        check_named(all, name);
    }
}

const GOOD_RP: &str = "bounces+{token}@lwkd.example.org";

#[test]
fn a_well_configured_list_is_all_ok() {
    let (key, _) = ed25519_key();
    let site = site(&config(Some(GOOD_RP), Some("example.org")), Some(&key));
    let (code, v) = json(&site, &["preview"], &[]);
    assert_eq!(code, 0, "{v:#}");
    let all = checks(&v);
    only_these_fail(&all, &[]);
    let names: Vec<&str> = all.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "dkim",
            "dkim-alignment",
            "dkim-headers",
            "return-path",
            "list-id",
            "list-unsubscribe",
            "unsubscribe-html",
            "unsubscribe-text",
            "html-size"
        ]
    );
    assert!(check_named(&all, "dkim").1.contains("ed25519-sha256, d=example.org s=s1"), "{all:#?}");
    let (_, rp) = check_named(&all, "return-path");
    assert!(rp.contains("bounces+{token}@lwkd.example.org") && rp.contains("aligns"), "{rp}");
    // `check` reports the same on the newest issue.
    let (code, v) = json(&site, &["check"], &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(checks(&v), all);
    // For people: a line per check.
    let out = site.run(&["preview"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("Deliverability"), "{t}");
    assert!(t.lines().any(|l| l.trim_start().starts_with("ok") && l.contains("dkim-alignment")), "{t}");
    assert!(t.contains("9 ok, 0 warnings, 0 errors"), "{t}");
}

#[test]
fn without_dkim_the_report_says_it_is_off_and_stays_offline() {
    // A name server that would see any query: without --dns none may come.
    let dns = UdpSocket::bind("127.0.0.1:0").unwrap();
    dns.set_nonblocking(true).unwrap();
    let server = dns.local_addr().unwrap().to_string();
    let site = site(&config(None, None), None);
    let (code, v) = json(&site, &["preview"], &[("NEWSDESK_DNS_SERVER", &server)]);
    assert_eq!(code, 0, "warnings only: the editor gets the files\n{v:#}");
    assert!(site.path("_preview/message.eml").exists());
    let all = checks(&v);
    only_these_fail(&all, &[("dkim", "warning")]);
    assert!(check_named(&all, "dkim").1.contains("DKIM is off"), "{all:#?}");
    assert!(check_named(&all, "return-path").1.contains("is the From address"), "{all:#?}");
    let (code, _) = json(&site, &["check"], &[("NEWSDESK_DNS_SERVER", &server)]);
    assert_eq!(code, 0);
    let mut buf = [0u8; 512];
    assert!(dns.recv_from(&mut buf).is_err(), "a DNS query went out without --dns");
}

#[test]
fn a_signature_of_another_organization_is_reported() {
    let (key, _) = ed25519_key();
    let site = site(&config(Some(GOOD_RP), Some("mailer.example.net")), Some(&key));
    let (code, v) = json(&site, &["preview"], &[]);
    assert_eq!(code, 0, "{v:#}");
    let all = checks(&v);
    only_these_fail(&all, &[("dkim-alignment", "warning")]);
    let (_, detail) = check_named(&all, "dkim-alignment");
    assert!(detail.contains("d=mailer.example.net") && detail.contains("example.org"), "{detail}");
    // A subdomain of From's organization aligns (relaxed).
    site.write_config(&config(Some(GOOD_RP), Some("mail.example.org")));
    let (_, v) = json(&site, &["preview"], &[]);
    only_these_fail(&checks(&v), &[]);
}

#[test]
fn a_return_path_on_another_domain_is_reported() {
    let (key, _) = ed25519_key();
    let site = site(&config(Some("bounces+{token}@bounces.example.net"), Some("example.org")), Some(&key));
    let (code, v) = json(&site, &["preview"], &[]);
    assert_eq!(code, 0, "{v:#}");
    let all = checks(&v);
    only_these_fail(&all, &[("return-path", "warning")]);
    let (_, detail) = check_named(&all, "return-path");
    assert!(detail.contains("bounces.example.net") && detail.contains("DMARC"), "{detail}");
    // `co.uk` is a public suffix: `a.co.uk` and `b.co.uk` are two organizations.
    site.write_config(
        &config(Some("bounces@b.co.uk"), Some("example.org")).replace("lwkd@example.org", "lwkd@a.co.uk"),
    );
    let (_, v) = json(&site, &["preview"], &[]);
    let all = checks(&v);
    assert_eq!(check_named(&all, "return-path").0, "warning", "{all:#?}");
}

#[test]
fn a_text_part_without_the_unsubscribe_link_is_reported() {
    let (key, _) = ed25519_key();
    let site = site(&config(Some(GOOD_RP), Some("example.org")), Some(&key));
    std::fs::write(
        site.path("email-templates/digest.txt"),
        "{{ post.title }}\n\n{{ text }}\n-- \nWeb version: {{ post.url }}\n",
    )
    .unwrap();
    let (code, v) = json(&site, &["preview"], &[]);
    assert_eq!(code, 0, "{v:#}");
    let all = checks(&v);
    only_these_fail(&all, &[("unsubscribe-text", "warning")]);
    let (_, detail) = check_named(&all, "unsubscribe-text");
    assert!(detail.contains("https://lwkd.example.org/unsubscribe"), "{detail}");
    let out = site.run(&["preview"]);
    let t = text(&out);
    assert!(t.contains("help: keep the footer's `Unsubscribe: {{ unsubscribe_page }}`"), "{t}");
}

#[test]
fn an_html_part_over_gmails_clip_is_reported() {
    let (key, _) = ed25519_key();
    let site = site(&config(Some(GOOD_RP), Some("example.org")), Some(&key));
    let newest = site.path("posts/2020-05-10-update.md");
    let mut post = std::fs::read_to_string(&newest).unwrap();
    for i in 0..1500 {
        post.push_str(&format!("\nParagraph {i} of a very long issue, written to push the HTML part past the clip.\n"));
    }
    std::fs::write(&newest, post).unwrap();
    let (code, v) = json(&site, &["preview"], &[]);
    assert_eq!(code, 0, "{v:#}");
    let all = checks(&v);
    only_these_fail(&all, &[("html-size", "warning")]);
    let (_, detail) = check_named(&all, "html-size");
    assert!(detail.contains("over Gmail's clip at 102 KB (102,400 bytes)"), "{detail}");
    let bytes: usize =
        detail.split(" bytes").next().unwrap().rsplit(' ').next().unwrap().replace(',', "").parse().unwrap();
    assert!(bytes > 102_400, "{detail}");
    // The decoded part of message.eml: message.html's bytes (with CRLF line ends, if any).
    let file = std::fs::read_to_string(site.path("_preview/message.html")).unwrap();
    assert!(bytes >= file.len() && bytes <= file.len() + file.matches('\n').count(), "{bytes} vs {}", file.len());
}

#[test]
fn check_strict_fails_on_a_deliverability_warning_alone() {
    let (key, _) = ed25519_key();
    let site = site(&config(Some(GOOD_RP), Some("example.org")), Some(&key));
    // The two bundled posts with link warnings go, so the rest checks clean.
    for p in ["posts/2020-05-03-update.md", "posts/2020-05-10-update.md"] {
        std::fs::remove_file(site.path(p)).unwrap();
    }
    let (code, v) = json(&site, &["check", "--strict"], &[]);
    assert_eq!((code, v["warnings"].as_u64()), (0, Some(0)), "{v:#}");
    site.write_config(&config(Some(GOOD_RP), Some("example.net")));
    let (code, v) = json(&site, &["check", "--strict"], &[]);
    assert_eq!(v["warnings"].as_u64(), Some(0), "no diagnostic: only the report warns\n{v:#}");
    assert_eq!((code, v["ok"].as_bool()), (1, Some(false)), "{v:#}");
    assert_eq!(check_named(&checks(&v), "dkim-alignment").0, "warning");
    let (code, _) = json(&site, &["check"], &[]);
    assert_eq!(code, 0, "without --strict a warning does not fail");
}

// ----- --dns, against dnsmasq on 127.0.0.1 -----

/// A dnsmasq on 127.0.0.1 answering for example.org and example.net from `records`
/// only (anything else there is NXDOMAIN; other domains are REFUSED). Stopped on drop.
struct Dns {
    child: Child,
    addr: String,
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dnsmasq() -> Option<&'static str> {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"].into_iter().find(|p| Path::new(p).exists())
}

impl Dns {
    /// `None` (with a note) when dnsmasq is not installed, unless `NEWSDESK_REQUIRE_DNS=1`
    /// (CI), where that fails the test.
    fn start(records: &[(&str, &str)]) -> Option<Dns> {
        let Some(bin) = dnsmasq() else {
            if std::env::var("NEWSDESK_REQUIRE_DNS").as_deref() == Ok("1") {
                panic!("dnsmasq is not installed and NEWSDESK_REQUIRE_DNS=1: apt-get install dnsmasq-base");
            }
            eprintln!("note: dnsmasq is not installed (apt-get install dnsmasq-base): skipping the --dns test");
            return None;
        };
        for _ in 0..5 {
            let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut cmd = Command::new(bin);
            cmd.args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--no-resolv",
                "--no-hosts",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--local=/example.org/",
                "--local=/example.net/",
            ])
            .arg(format!("--port={port}"));
            for (name, value) in records {
                // A TXT record's strings are at most 255 bytes: a long key is split
                // (dnsmasq takes each comma-separated part as one string).
                let strings: Vec<String> =
                    value.as_bytes().chunks(200).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
                cmd.arg(format!("--txt-record={name},{}", strings.join(",")));
            }
            let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("dnsmasq starts");
            let dns = Dns { child, addr: format!("127.0.0.1:{port}") };
            if dns.answers() {
                return Some(dns);
            }
        }
        panic!("dnsmasq did not answer on 127.0.0.1");
    }

    /// Whether the server answers a query (it may take a moment to start).
    fn answers(&self) -> bool {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut query = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["probe", "example", "org"] {
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 16, 0, 1]);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            let _ = socket.send_to(&query, &self.addr);
            let mut buf = [0u8; 512];
            if socket.recv_from(&mut buf).is_ok() {
                return true;
            }
        }
        false
    }
}

fn rsa_key() -> (String, String) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePublicKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let pem = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap().to_string();
    let spki = key.to_public_key().to_public_key_der().unwrap();
    (pem, b64(spki.as_bytes()))
}

#[test]
fn dns_records_that_match_are_ok() {
    let (pem, public) = rsa_key();
    let record = format!("v=DKIM1; k=rsa; p={public}");
    let records = [
        ("s1._domainkey.example.org", record.as_str()),
        ("lwkd.example.org", "v=spf1 ip4:192.0.2.10 -all"),
        ("_dmarc.example.org", "v=DMARC1; p=reject; rua=mailto:dmarc@example.org"),
    ];
    let Some(dns) = Dns::start(&records) else { return };
    let site = site(&config(Some(GOOD_RP), Some("example.org")), Some(&pem));
    let env = [("NEWSDESK_DNS_SERVER", dns.addr.as_str())];
    let (code, v) = json(&site, &["preview", "--dns"], &env);
    assert_eq!(code, 0, "{v:#}");
    let all = checks(&v);
    only_these_fail(&all, &[]);
    assert!(check_named(&all, "dkim-dns").1.contains("rsa key at s1._domainkey.example.org matches"), "{all:#?}");
    assert!(check_named(&all, "spf").1.contains("SPF at lwkd.example.org"), "{all:#?}");
    assert_eq!(check_named(&all, "dmarc").1, "DMARC at _dmarc.example.org: p=reject");
    let (code, v) = json(&site, &["check", "--dns"], &env);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(checks(&v), all);
}

#[test]
fn a_different_published_key_and_a_missing_dmarc_are_reported() {
    let (key, _) = ed25519_key();
    let (_, other_public) = ed25519_key();
    let record = format!("v=DKIM1; k=ed25519; p={}", b64(&other_public));
    let records = [("s1._domainkey.example.org", record.as_str()), ("example.org", "v=spf1 mx -all")];
    let Some(dns) = Dns::start(&records) else { return };
    // No return_path: SPF is looked up on the From domain.
    let site = site(&config(None, Some("example.org")), Some(&key));
    let env = [("NEWSDESK_DNS_SERVER", dns.addr.as_str())];
    let (code, v) = json(&site, &["preview", "--dns"], &env);
    assert_eq!(code, 1, "a key DNS does not publish fails the preview\n{v:#}");
    assert!(site.path("_preview/message.eml").exists(), "the files are written all the same");
    let all = checks(&v);
    only_these_fail(&all, &[("dkim-dns", "error"), ("dmarc", "warning")]);
    let (_, dkim) = check_named(&all, "dkim-dns");
    assert!(dkim.contains("s1._domainkey.example.org") && dkim.contains("different public key"), "{dkim}");
    let (_, dmarc) = check_named(&all, "dmarc");
    assert!(dmarc.contains("_dmarc.example.org") && dmarc.contains("NXDOMAIN"), "{dmarc}");
    assert!(check_named(&all, "spf").1.contains("`v=spf1 mx -all`"), "{all:#?}");
    // The hint gives the record to publish: the configured key's public half.
    let out = site.run_env(&["preview", "--dns"], &env);
    let t = text(&out);
    assert!(t.contains("publish `v=DKIM1; k=ed25519; p="), "{t}");
    let (code, _) = json(&site, &["check", "--dns"], &env);
    assert_eq!(code, 1, "a DNS error fails check too");
}

#[test]
fn dns_failures_are_errors_naming_the_record() {
    // DKIM signed for a domain the server is not local for: it answers REFUSED.
    let (key, _) = ed25519_key();
    let Some(dns) = Dns::start(&[("example.org", "v=spf1 -all")]) else { return };
    let site = site(&config(None, Some("example.com")), Some(&key));
    let (code, v) = json(&site, &["preview", "--dns"], &[("NEWSDESK_DNS_SERVER", dns.addr.as_str())]);
    assert_eq!(code, 1, "{v:#}");
    let all = checks(&v);
    let (status, detail) = check_named(&all, "dkim-dns");
    assert_eq!(status, "error");
    assert!(detail.contains("cannot look up the TXT record s1._domainkey.example.com"), "{detail}");
    assert!(detail.to_lowercase().contains("refused"), "{detail}");
    // A server that never answers: every lookup fails, each naming its record.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let (code, v) = json(&site, &["preview", "--dns"], &[("NEWSDESK_DNS_SERVER", addr.as_str())]);
    assert_eq!(code, 1, "{v:#}");
    let all = checks(&v);
    for (name, record) in
        [("dkim-dns", "s1._domainkey.example.com"), ("spf", "example.org"), ("dmarc", "_dmarc.example.org")]
    {
        let (status, detail) = check_named(&all, name);
        assert_eq!(status, "error", "{name}: {detail}");
        assert!(detail.contains(&format!("cannot look up the TXT record {record}:")), "{name}: {detail}");
    }
    // A bad NEWSDESK_DNS_SERVER is refused before anything runs.
    let out = site.run_env(&["preview", "--dns"], &[("NEWSDESK_DNS_SERVER", "localhost")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("NEWSDESK_DNS_SERVER=`localhost` is not an IP:PORT address"), "{}", text(&out));
}

#[test]
fn dmarc_falls_back_to_the_organizational_domain_and_its_strict_modes_are_judged() {
    // From a subdomain whose own `_dmarc` name holds only another TXT record: the search
    // goes on to the organizational domain, whose `sp=` governs subdomains, and whose
    // strict modes fail a signature and a Return-Path on example.org.
    let (key, public) = ed25519_key();
    let record = format!("v=DKIM1; k=ed25519; p={}", b64(&public));
    let records = [
        ("s1._domainkey.example.org", record.as_str()),
        ("example.org", "v=spf1 ip4:192.0.2.10 -all"),
        ("_dmarc.lwkd.example.org", "google-site-verification=abc"),
        ("_dmarc.example.org", "v=DMARC1; p=none; sp=reject; adkim=s; aspf=s"),
    ];
    let Some(dns) = Dns::start(&records) else { return };
    let mail = config(Some("bounces+{token}@example.org"), Some("example.org"))
        .replace("lwkd@example.org", "lwkd@lwkd.example.org");
    let site = site(&mail, Some(&key));
    let env = [("NEWSDESK_DNS_SERVER", dns.addr.as_str())];
    let (code, v) = json(&site, &["preview", "--dns"], &env);
    assert_eq!(code, 1, "mail that fails DMARC under sp=reject fails the preview\n{v:#}");
    let all = checks(&v);
    only_these_fail(&all, &[("dmarc", "error")]);
    let (_, detail) = check_named(&all, "dmarc");
    for part in [
        "_dmarc.example.org (the organizational domain's, for lwkd.example.org)",
        "sp=reject, adkim=s, aspf=s",
        "d=example.org",
        "fails DMARC",
    ] {
        assert!(detail.contains(part), "{part:?} in {detail}");
    }
    // Relaxed, the same mail passes: the check is the record's modes, not a guess.
    drop(dns);
    let records = [
        ("s1._domainkey.example.org", record.as_str()),
        ("example.org", "v=spf1 ip4:192.0.2.10 -all"),
        ("_dmarc.example.org", "v=DMARC1; p=none; sp=reject"),
    ];
    let Some(dns) = Dns::start(&records) else { return };
    let env = [("NEWSDESK_DNS_SERVER", dns.addr.as_str())];
    let (code, v) = json(&site, &["preview", "--dns"], &env);
    assert_eq!(code, 0, "{v:#}");
    let all = checks(&v);
    only_these_fail(&all, &[]);
    assert_eq!(
        check_named(&all, "dmarc").1,
        "DMARC at _dmarc.example.org (the organizational domain's, for lwkd.example.org): sp=reject"
    );
}
