//! `bounces ingest --imap` against a real Dovecot on 127.0.0.1, over TLS with a test
//! CA: bounces are applied and then marked seen, an unmatched message is left as it
//! was, and a connection cut half-way through the mailbox marks only what was applied;
//! the next run reads the rest and counts nothing twice.

mod delivery_common;
mod support;

use delivery_common::{ListSite, address, config};
use support::dovecot::{CuttingProxy, Dovecot, PASSWORD, USER};
use support::text;

fn imap_config(dovecot: &Dovecot, port: u16) -> String {
    format!(
        "{}
[bounces.imap]
host = \"127.0.0.1\"
port = {port}
username = \"{USER}\"
password_env = \"NEWSDESK_IMAP_PASSWORD\"
ca_file = \"{}\"
timeout_secs = 10
",
        config(9, ""),
        dovecot.ca_file.display()
    )
}

/// A delivery status notification saying `recipient` does not exist, padded with
/// `padding` bytes of returned text.
fn hard_bounce(recipient: &str, padding: usize) -> Vec<u8> {
    let filler: String = "Developer news this week, returned with the bounce.\r\n".repeat(padding / 53 + 1);
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\nTo: lwkd@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: user unknown\r\n\r\n\
         --B\r\nContent-Type: message/rfc822\r\n\r\nFrom: LWKD <lwkd@example.org>\r\nTo: {recipient}\r\nSubject: LWKD\r\n\r\n{filler}\r\n--B--\r\n"
    )
    .into_bytes()
}

fn ingest(list: &ListSite) -> (bool, serde_json::Value, String) {
    let out = list
        .site
        .run_env(&["bounces", "ingest", "--imap", "--format", "json"], &[("NEWSDESK_IMAP_PASSWORD", PASSWORD)]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.success(), json, text(&out))
}

fn bounced(list: &ListSite) -> i64 {
    list.db().query_row("SELECT COUNT(*) FROM subscribers WHERE status = 'bounced'", [], |r| r.get(0)).unwrap()
}

#[test]
fn bounces_are_applied_then_marked_seen_and_strangers_left_unread() {
    let Some(mut dovecot) = Dovecot::start() else { return };
    let list = ListSite::new(9, 3, "");
    list.site.write_config(&imap_config(&dovecot, dovecot.port));
    dovecot.deliver(&hard_bounce(&address(0), 0));
    dovecot.deliver(&std::fs::read(support::repo().join("tests/fixtures/bounces/vacation.eml")).unwrap());
    dovecot.deliver(
        b"From: reader@example.net\r\nTo: bounces@lwkd.example.org\r\nSubject: hello?\r\n\r\nIs this the editor?\r\n",
    );

    let (ok, json, all) = ingest(&list);
    assert!(ok, "{all}\n{}", dovecot.log());
    let messages = json["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{json:#}");
    assert_eq!(messages[0]["applied"][0]["email"], address(0).as_str());
    assert_eq!(messages[0]["applied"][0]["effect"], "bounced");
    assert_eq!(messages[1]["kind"], "auto-reply");
    assert_eq!(messages[2]["filed"], "unmatched");
    assert_eq!(bounced(&list), 1);
    assert_eq!(dovecot.seen_and_total(), (2, 3), "the bounce and the auto-reply are seen, the stranger's mail is not");

    // Again: only the unread stranger's message is read, and changes nothing.
    let (ok, json, all) = ingest(&list);
    assert!(ok, "{all}");
    assert_eq!(json["messages"].as_array().unwrap().len(), 1, "{json:#}");
    assert_eq!(json["messages"][0]["filed"], "unmatched");

    // A wrong password is a clear error naming the server and the user, never the password.
    let out = list.site.run_env(&["bounces", "ingest", "--imap"], &[("NEWSDESK_IMAP_PASSWORD", "wrong-password")]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains(&format!("refused the login of `{USER}`")), "{t}");
    assert!(!t.contains("wrong-password"), "{t}");
    // Without the test CA the certificate is refused, with the fix named.
    let mut no_ca = imap_config(&dovecot, dovecot.port);
    no_ca = no_ca.lines().filter(|l| !l.starts_with("ca_file")).collect::<Vec<_>>().join("\n");
    list.site.write_config(&no_ca);
    let (ok, _, all) = ingest(&list);
    assert!(!ok);
    assert!(all.contains("signed by an unknown authority") && all.contains("ca_file"), "{all}");
}

#[test]
fn a_connection_lost_half_way_marks_only_what_was_applied() {
    let Some(mut dovecot) = Dovecot::start() else { return };
    let n = 12;
    let list = ListSite::new(9, n, "");
    for i in 0..n {
        dovecot.deliver(&hard_bounce(&address(i), 20_000));
    }
    // The server's bytes are cut after about half of the mailbox.
    let proxy = CuttingProxy::start(dovecot.port, 130_000);
    list.site.write_config(&imap_config(&dovecot, proxy.port));
    let (ok, json, all) = ingest(&list);
    assert!(!ok, "the cut is an error: {all}");
    let applied = json["messages"].as_array().map_or(0, |m| m.len());
    eprintln!("{applied} of {n} messages applied before the cut");
    assert!(0 < applied && applied < n, "{applied} of {n} read before the cut: {all}");
    assert!(!json["errors"].as_array().unwrap().is_empty(), "{json:#}");
    assert_eq!(bounced(&list) as usize, applied, "{all}");
    let (seen, total) = dovecot.seen_and_total();
    assert_eq!((seen, total), (applied, n), "exactly the applied messages are marked");

    // The next run, straight to the server, reads the rest; nothing counts twice.
    list.site.write_config(&imap_config(&dovecot, dovecot.port));
    let (ok, json, all) = ingest(&list);
    assert!(ok, "{all}");
    assert_eq!(json["messages"].as_array().unwrap().len(), n - applied, "{json:#}");
    assert_eq!(bounced(&list) as usize, n);
    let rows: i64 = list.db().query_row("SELECT COUNT(*) FROM bounces", [], |r| r.get(0)).unwrap();
    assert_eq!(rows as usize, n, "one bounce row per message");
    assert_eq!(dovecot.seen_and_total(), (n, n));
}
