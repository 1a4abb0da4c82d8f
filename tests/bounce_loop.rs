//! The whole bounce loop with real parts: newsdesk sends to a Debian Postfix on
//! 127.0.0.1 (the relay, with the bounce mailbox), which relays to a second Postfix
//! (the subscribers' mail server) that knows one working mailbox, refuses a full one
//! (`552 5.2.2`) and does not know the third address (`550 5.1.1`). The relay writes
//! real delivery status notifications to the VERP bounce addresses; `bounces ingest`
//! reads its maildir; the states change; the next issue is held for its hard-bounce
//! rate, goes with --force, and skips the bounced subscriber. Then a complaint.
//!
//! Needs root and Postfix (`.ci/run` installs it and sets NEWSDESK_REQUIRE_POSTFIX=1).

mod support;

use support::postfix::{self, Instance};
use support::{Site, text};

const GOOD: &str = "good@example.net";
const FULL: &str = "full@example.net";
const UNKNOWN: &str = "nobody@example.net";

fn state(site: &Site, email: &str) -> (String, Option<String>) {
    let db = rusqlite::Connection::open(site.path(".newsdesk/newsdesk.db")).unwrap();
    db.query_row("SELECT status, suppressed_reason FROM subscribers WHERE email = ?1", [email], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
}

fn ingest_maildir(site: &Site, relay: &Instance) -> serde_json::Value {
    let maildir = relay.root().join("mail/bounces");
    let out = site.run(&["bounces", "ingest", "--maildir", maildir.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (email, effect, matched_by, status) of each applied bounce.
fn applied(json: &serde_json::Value) -> Vec<(String, String, String, String)> {
    let mut all = Vec::new();
    for m in json["messages"].as_array().unwrap() {
        assert_eq!(m["kind"], "bounce", "{m:#}");
        assert_eq!(m["filed"], "processed", "{m:#}");
        for a in m["applied"].as_array().unwrap() {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            all.push((s("email"), s("effect"), s("matched_by"), s("status")));
        }
    }
    all.sort();
    all
}

#[test]
fn real_postfix_bounces_change_the_list_and_the_next_send() {
    if !postfix::available() {
        return;
    }
    // The subscribers' server: only good@ has a mailbox; full@ is over quota.
    let mx = Instance::start(
        "myhostname = mx.example.net
virtual_mailbox_domains = example.net
virtual_mailbox_maps = texthash:ROOT/etc/vmailbox
smtpd_recipient_restrictions = check_recipient_access texthash:ROOT/etc/access, permit_mynetworks, reject_unauth_destination
",
        &[("vmailbox", &format!("{GOOD} good/\n{FULL} full/\n")), ("access", &format!("{FULL} 552 5.2.2 Mailbox full\n"))],
    );
    // The list's relay: relays example.net to the server above and keeps every address
    // of lwkd.example.org in one maildir, the bounce mailbox (bounces+TOKEN@ included).
    let relay = Instance::start(
        "myhostname = mail.lwkd.example.org
virtual_mailbox_domains = lwkd.example.org
virtual_mailbox_maps = static:bounces/
recipient_delimiter = +
transport_maps = texthash:ROOT/etc/transport
smtp_tls_security_level = none
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
",
        &[("transport", &format!("example.net smtp:[127.0.0.1]:{}\n", mx.port))],
    );
    let site = Site::new(&format!(
        r#"
[email]
from = "LWKD <lwkd@lwkd.example.org>"
return_path = "bounces+{{token}}@lwkd.example.org"
list_id = "LWKD <lwkd.lwkd.example.org>"

[smtp]
host = "127.0.0.1"
port = {}
security = "none"
timeout_secs = 10

[subscribers]
unsubscribe_url = "https://lwkd.example.org/unsubscribe/{{token}}"
"#,
        relay.port
    ));
    std::fs::write(site.path("list.csv"), format!("email\n{GOOD}\n{FULL}\n{UNKNOWN}\n")).unwrap();
    let out = site.run(&["subscribers", "import", "list.csv"]);
    assert!(out.status.success(), "{}", text(&out));

    // The first issue: the relay takes all three, delivers one, bounces two.
    let out = site.run(&["send", "--subscribers", "--yes", "--post", "2020-05-03-update"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sent 3 in"), "{}", text(&out));
    mx.wait_for("good", 1);
    let dsns = relay.wait_for("bounces", 2);
    for dsn in &dsns {
        let t = String::from_utf8_lossy(dsn);
        assert!(t.contains("Content-Type: message/delivery-status"), "a real DSN: {t}");
        assert!(t.contains("Delivered-To: bounces+"), "to the VERP address: {t}");
    }
    let json = ingest_maildir(&site, &relay);
    assert_eq!(
        applied(&json),
        [
            (FULL.into(), "soft-counted".into(), "verp".into(), "5.2.2".into()),
            (UNKNOWN.into(), "bounced".into(), "verp".into(), "5.1.1".into()),
        ],
        "{json:#}"
    );
    assert_eq!(state(&site, UNKNOWN), ("bounced".into(), Some("hard-bounce".into())));
    assert_eq!(state(&site, FULL), ("active".into(), None));
    assert_eq!(state(&site, GOOD), ("active".into(), None));
    assert!(relay.maildir("bounces").is_empty(), "the maildir's messages moved into the archive");

    // The next issue is held: 1 hard bounce of 3 is over 5 %.
    let out = site.run(&["send", "--subscribers", "--yes", "--post", "2020-05-10-update"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("hard bounce(s) is 33.3 % of the issue's mail, over 5 %"), "{}", text(&out));
    // With --force it goes to the two still on the list; full@ bounces again.
    let out = site.run(&["send", "--subscribers", "--yes", "--post", "2020-05-10-update", "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sent 2 in"), "the bounced subscriber is skipped: {}", text(&out));
    mx.wait_for("good", 2);
    relay.wait_for("bounces", 1);
    let json = ingest_maildir(&site, &relay);
    assert_eq!(applied(&json), [(FULL.into(), "soft-counted".into(), "verp".into(), "5.2.2".into())], "{json:#}");
    let m = &json["messages"][0]["applied"][0];
    assert_eq!((m["in_a_row"].as_i64(), m["limit"].as_i64()), (Some(2), Some(3)), "two issues in a row: {m:#}");

    // A complaint about good@: an ARF report through the MTA pipe.
    let arf = format!(
        "From: fbl@feedback.example.net\r\nTo: abuse@lwkd.example.org\r\nSubject: abuse report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n--F\r\n\
         Content-Type: text/plain\r\n\r\nThis is an abuse report.\r\n--F\r\nContent-Type: message/feedback-report\r\n\r\n\
         Feedback-Type: abuse\r\nVersion: 1\r\nOriginal-Rcpt-To: <{GOOD}>\r\n\r\n--F--\r\n"
    );
    let out = site.run_stdin(&["bounces", "ingest"], arf.as_bytes());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(state(&site, GOOD), ("unsubscribed".into(), Some("complaint".into())));
}
