//! Bounces and complaints, with the binary: `bounces parse` on real-format messages
//! (tests/fixtures/bounces/, each checked by hand against its text), and the loop of a
//! subscriber send to the socket test server with VERP envelope senders, a send-time
//! refusal, bounces and a complaint fed to `bounces ingest`, and the next send that
//! leaves the suppressed addresses out.

mod delivery_common;
mod support;

use delivery_common::{ListSite, address, config};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use support::smtp::SmtpServer;
use support::text;

const FIXTURES: &str = "tests/fixtures/bounces";

#[test]
fn parse_explains_each_fixture_without_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "postfix-user-unknown",
        "gmail-mailbox-full",
        "exim-user-unknown",
        "qmail-user-unknown",
        "sendmail-user-unknown",
        "outlook-spam-blocked",
        "arf-complaint",
        "success-dsn",
        "vacation",
    ];
    let files: Vec<String> =
        names.iter().map(|n| support::repo().join(FIXTURES).join(format!("{n}.eml")).display().to_string()).collect();
    // No config.toml in the folder: parsing needs none.
    let out = Command::new(env!("CARGO_BIN_EXE_newsdesk"))
        .args(["bounces", "parse", "--format", "json"])
        .args(&files)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages = json["messages"].as_array().unwrap();
    assert_eq!(messages.len(), names.len());
    let expect = [
        ("bounce", "nobody.here@example.net", "5.1.1", true, "user-unknown"),
        ("bounce", "full.inbox@gmail.example.com", "4.2.2", false, "mailbox-full"),
        ("bounce", "gone.away@example.co.uk", "5.1.1", true, "user-unknown"),
        ("bounce", "no.mailbox@qmail.example.com", "5.1.1", true, "user-unknown"),
        ("bounce", "left.the.school@sendmail.example.edu", "5.1.1", true, "user-unknown"),
        ("bounce", "Reader@outlook.example.com", "5.7.1", false, "spam-blocked"),
    ];
    for (i, (kind, address, status, permanent, reason)) in expect.iter().enumerate() {
        let m = &messages[i];
        assert_eq!(m["file"], files[i].as_str());
        assert_eq!(m["kind"], *kind, "{}: {m:#}", names[i]);
        let r = &m["recipients"].as_array().unwrap()[..];
        assert_eq!(r.len(), 1, "{}: {m:#}", names[i]);
        let keys: Vec<&str> = r[0].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["action", "address", "diagnostic", "permanent", "reason", "status"], "{}", names[i]);
        assert_eq!(r[0]["address"], *address);
        assert_eq!(r[0]["status"], *status);
        assert_eq!(r[0]["action"], "failed");
        assert_eq!(r[0]["permanent"], *permanent);
        assert_eq!(r[0]["reason"], *reason);
        assert!(r[0]["diagnostic"].as_str().is_some_and(|d| d.contains(status)), "{}: {:#}", names[i], r[0]);
    }
    let complaint = &messages[6];
    assert_eq!(complaint["kind"], "complaint");
    assert_eq!(complaint["recipients"][0]["address"], "annoyed.reader@hotmail.example.com");
    assert_eq!(complaint["recipients"][0]["status"], serde_json::Value::Null);
    assert_eq!(messages[7]["kind"], "not-bounce");
    assert_eq!(messages[7]["recipients"].as_array().unwrap().len(), 0);
    assert_eq!(messages[8]["kind"], "auto-reply");
    // The VERP address the bounce was sent to carries a token: never printed.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("bounces+"), "{}", text(&out));
}

/// A Postfix-style delivery status notification for `recipient`, sent to `to` (the
/// envelope sender of the bounced message), returning the headers of `message_id`.
fn dsn(to: &str, recipient: &str, status: &str, diagnostic: &str, message_id: &str) -> String {
    format!(
        "Return-Path: <>\r\nDelivered-To: {to}\r\nFrom: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n\
         To: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered.\r\n\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n\
         Diagnostic-Code: smtp; {diagnostic}\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: LWKD <lwkd@example.org>\r\nTo: {recipient}\r\n\
         Message-ID: {message_id}\r\n\r\n--B--\r\n"
    )
}

/// An RFC 5965 abuse report about a message to `recipient`, with no VERP address.
fn arf(recipient: &str) -> String {
    format!(
        "From: staff@feedback.example.net\r\nTo: abuse-reports@example.org\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n\
         --F\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
         --F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\n\
         Original-Rcpt-To: <{recipient}>\r\n\r\n--F--\r\n"
    )
}

/// Runs `bounces ingest` with `message` on stdin.
fn ingest(list: &ListSite, message: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["bounces", "ingest"];
    args.extend_from_slice(extra);
    list.site.run_stdin(&args, message.as_bytes())
}

fn state(list: &ListSite, email: &str) -> (String, Option<String>) {
    list.db()
        .query_row("SELECT status, suppressed_reason FROM subscribers WHERE email = ?1", [email], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
}

#[test]
fn bounced_and_complaining_subscribers_are_never_mailed_again() {
    let server = SmtpServer::start();
    server.faults(|f| {
        f.reject
            .insert(address(3), (550, "5.1.1 <s0003@example.org>: Recipient address rejected: User unknown".into()));
    });
    let list = ListSite::new(server.port(), 6, "");
    list.site.write_config(
        &config(server.port(), "")
            .replace("[email]\n", "[email]\nreturn_path = \"bounces+{token}@lwkd.example.org\"\n"),
    );

    // 1. The first issue: every envelope sender is the subscriber's own VERP address.
    let out = list.send(&["--post", "2020-05-03-update"]);
    assert!(text(&out).contains("failed: 0 temporarily (retried 0 times in all), 1 permanently"), "{}", text(&out));
    assert!(text(&out).contains("1 address(es) refused for good are now bounced"), "{}", text(&out));
    let messages = server.messages();
    assert_eq!(messages.len(), 5);
    let tokens = list.tokens();
    let mut senders = std::collections::HashMap::new();
    let mut message_ids = std::collections::HashMap::new();
    for m in &messages {
        let to = m.to[0].clone();
        let verp = m.from.strip_prefix("bounces+").and_then(|s| s.strip_suffix("@lwkd.example.org")).unwrap();
        assert_eq!(verp.len(), 16, "{}", m.from);
        assert!(verp.bytes().all(|b| b.is_ascii_hexdigit()), "{}", m.from);
        assert!(!tokens[&to].contains(verp), "the VERP token is not the unsubscribe secret");
        let parsed = mail_parser::MessageParser::default().parse(&m.data).unwrap();
        message_ids.insert(to.clone(), format!("<{}>", parsed.message_id().unwrap()));
        senders.insert(to, m.from.clone());
    }
    assert_eq!(senders.values().collect::<std::collections::HashSet<_>>().len(), 5, "one VERP address each");
    // A test send goes out from the plain bounce address, without a token.
    let out = list.site.run(&["send", "--to", "editor@example.org", "--yes", "--post", "2020-05-03-update"]);
    assert!(out.status.success(), "{}", text(&out));
    let test_send = server.messages().pop().unwrap();
    assert_eq!((test_send.from.as_str(), test_send.to[0].as_str()), ("bounces@lwkd.example.org", "editor@example.org"));
    // The send-time 550 5.1.1 is a hard bounce at once.
    assert_eq!(state(&list, &address(3)), ("bounced".into(), Some("hard-bounce".into())));

    // 2. Bounces and a complaint come back.
    // s0000: a hard bounce matched by VERP, for the address it was forwarded to.
    let hard =
        dsn(&senders[&address(0)], "s0000@forwarded.example.net", "5.1.1", "550 5.1.1 user unknown", "<unrelated@x>");
    let out = ingest(&list, &hard, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("s0000@example.org bounced (5.1.1, user-unknown): never mailed again"),
        "{}",
        text(&out)
    );
    // The same message again changes nothing.
    let out = ingest(&list, &hard, &[]);
    assert!(text(&out).contains("read before; nothing changed"), "{}", text(&out));
    // s0001: a soft bounce to a plain address, matched by the returned Message-ID.
    let soft = dsn(
        "bounces@lwkd.example.org",
        "s0001@example.org",
        "4.2.2",
        "452 4.2.2 over quota",
        &message_ids[&address(1)],
    );
    let out = ingest(&list, &soft, &[]);
    assert!(
        text(&out).contains("s0001@example.org soft bounce (4.2.2, mailbox-full): 1 of 3 issues in a row"),
        "{}",
        text(&out)
    );
    // s0002: a complaint naming only the address.
    let out = ingest(&list, &arf(&address(2)), &[]);
    assert!(text(&out).contains("s0002@example.org reported the mail as spam"), "{}", text(&out));
    // s0004: a bounce whose text names nobody, with the VERP address only in the
    // envelope the MTA hands over.
    let garbled = "From: MAILER-DAEMON@mx.example.net\r\nTo: undisclosed-recipients:;\r\nSubject: Undeliverable\r\n\r\nsomething went wrong\r\n";
    let out = ingest(&list, garbled, &["--recipient", &senders[&address(4)]]);
    assert!(text(&out).contains("s0004@example.org soft bounce (other, other): 1 of 3"), "{}", text(&out));
    // A stranger's bounce and a vacation reply.
    let out = ingest(&list, &dsn("bounces@lwkd.example.org", "nobody@else.example", "5.1.1", "550", "<x@y>"), &[]);
    assert!(text(&out).contains("nobody on the list matched it"), "{}", text(&out));
    let vacation = std::fs::read_to_string(support::repo().join(FIXTURES).join("vacation.eml")).unwrap();
    let out = ingest(&list, &vacation, &[]);
    assert!(text(&out).contains("an automatic reply, nothing to do"), "{}", text(&out));

    assert_eq!(state(&list, &address(0)), ("bounced".into(), Some("hard-bounce".into())));
    assert_eq!(state(&list, &address(1)), ("active".into(), None));
    assert_eq!(state(&list, &address(2)), ("unsubscribed".into(), Some("complaint".into())));
    assert_eq!(state(&list, &address(4)), ("active".into(), None));

    // Every message read is kept, private: 4 explained, 1 unmatched.
    let archive = list.site.path(".newsdesk/bounces");
    let files = |sub: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(archive.join(sub)).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
    };
    assert_eq!(files("processed").len(), 5, "{:?}", files("processed"));
    assert_eq!(files("unmatched").len(), 1);
    for f in files("processed").iter().chain(&files("unmatched")) {
        assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
    }

    // 3. The list says who is suppressed and why; an import does not bring them back.
    let out = list.site.run(&["subscribers", "list", "--suppressed"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    for (i, reason) in [(0, "hard-bounce"), (2, "complaint"), (3, "hard-bounce")] {
        assert!(listed.lines().any(|l| l.starts_with(&address(i)) && l.contains(reason)), "{listed}");
    }
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let out = list.site.run(&["subscribers", "import", "list.csv"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("3 kept suppressed"), "{}", text(&out));
    assert!(
        text(&out).contains("s0000@example.org was not added back: it is suppressed (hard-bounce"),
        "{}",
        text(&out)
    );
    assert_eq!(state(&list, &address(0)).0, "bounced");
    let out = list.site.run(&["subscribers", "export", "--all"]);
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        csv.starts_with("email,name,status,subscribed_at,unsubscribed_at,suppressed_reason,suppressed_at\n"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("s0002@example.org,") && l.contains(",unsubscribed,") && l.contains(",complaint,"))
    );
    // A test send to a suppressed address is refused.
    let out = list.site.run(&["send", "--to", &address(0), "--yes"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("mail to this address bounced for good on"), "{}", text(&out));

    // `status` has the figures: 5 delivered of 6 handed over; s0000 and s0003
    // hard, s0001 and s0004 soft, s0002 complained.
    let out = list.site.run(&["status", "--post", "2020-05-03-update", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = &json["bounces"][0];
    assert_eq!((b["delivered"].as_i64(), b["sent"].as_i64()), (Some(5), Some(6)), "{json:#}");
    assert_eq!((b["hard"].as_i64(), b["soft"].as_i64(), b["complaints"].as_i64()), (Some(2), Some(2), Some(1)));
    assert!((b["complaint_rate"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    let out = list.site.run(&["status", "--post", "2020-05-03-update"]);
    assert!(
        text(&out).contains("2 hard, 2 soft, 1 complaint(s) (complaint rate 20.00 %, hard-bounce rate 33.3 %)"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("the next issue's send needs --force"), "{}", text(&out));

    // 4. The next issue: held, because 1 complaint in 5 delivered is over 0.3 %.
    let before = server.count();
    let out = list.send(&["--post", "2020-05-10-update"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(
            "not sending: the previous issue (https://lwkd.info/2020/2020-05-03-update) had too many complaints"
        ),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("over the 0.3 %"), "{}", text(&out));
    assert_eq!(server.count(), before, "nothing was sent");
    // With --force it goes, to the three who are still on the list.
    let out = list.send(&["--post", "2020-05-10-update", "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    let to: std::collections::BTreeSet<String> = server.messages()[before..].iter().map(|m| m.to[0].clone()).collect();
    let want: std::collections::BTreeSet<String> = [1, 4, 5].map(address).into_iter().collect();
    assert_eq!(to, want);
}

#[test]
fn a_maildir_is_emptied_into_the_archive_and_an_mbox_is_left_alone() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 2, "");
    let out = list.send(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let maildir = list.site.path("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let hard = dsn("lwkd@example.org", &address(0), "5.1.1", "550 5.1.1 no such user", "<x@y>");
    std::fs::write(maildir.join("new/1785160931.M1P1.host"), &hard).unwrap();
    std::fs::write(maildir.join("cur/1785160932.M2P1.host:2,S"), "Subject: hello\r\n\r\na human's reply\r\n").unwrap();
    let out = list.site.run(&["bounces", "ingest", "--maildir", "Maildir", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages = json["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{json:#}");
    assert_eq!(messages[0]["filed"], "processed");
    assert_eq!(messages[0]["applied"][0]["email"], address(0).as_str());
    assert_eq!(messages[0]["applied"][0]["effect"], "bounced");
    assert_eq!(messages[0]["applied"][0]["matched_by"], "address");
    assert_eq!(messages[1]["filed"], "unmatched", "a human's reply is kept for the editor");
    assert_eq!(std::fs::read_dir(maildir.join("new")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(maildir.join("cur")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(list.site.path(".newsdesk/bounces/unmatched")).unwrap().count(), 1);

    // An mbox holding the same bounce and a complaint: read, copied, left in place.
    let mbox = format!(
        "From MAILER-DAEMON Mon Jul 27 14:02:11 2026\n{}\nFrom staff Mon Jul 27 14:03:00 2026\n{}\n",
        hard.replace("\r\n", "\n"),
        arf(&address(1)).replace("\r\n", "\n")
    );
    std::fs::write(list.site.path("bounces.mbox"), &mbox).unwrap();
    let out = list.site.run(&["bounces", "ingest", "--mbox", "bounces.mbox"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("read 2 message(s)"), "{}", text(&out));
    assert!(text(&out).contains("s0001@example.org reported the mail as spam"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(list.site.path("bounces.mbox")).unwrap(), mbox);
    assert_eq!(state(&list, &address(1)), ("unsubscribed".into(), Some("complaint".into())));
}

#[test]
fn odd_and_hostile_mail_is_filed_whole_and_never_lost() {
    let server = SmtpServer::start();
    server.faults(|f| {
        f.reject.insert(address(2), (550, "5.1.1 <s0002@example.org>: User unknown".into()));
    });
    let list = ListSite::new(server.port(), 3, "");
    list.site.write_config(
        &config(server.port(), "")
            .replace("[email]\n", "[email]\nreturn_path = \"bounces+{token}@lwkd.example.org\"\n"),
    );
    let out = list.send(&[]);
    assert!(text(&out).contains("1 permanently"), "{}", text(&out));
    let senders: std::collections::HashMap<String, String> =
        server.messages().iter().map(|m| (m.to[0].clone(), m.from.clone())).collect();

    // With VERP on, a hard bounce that names its subscriber only by address (anyone can
    // write one to the bounce address) counts as a soft bounce.
    let forged = dsn("bounces@lwkd.example.org", &address(0), "5.1.1", "550 5.1.1 user unknown", "<forged@x>");
    let out = ingest(&list, &forged, &[]);
    assert!(
        text(&out).contains("s0000@example.org soft bounce (5.1.1, user-unknown): 1 of 3 issues in a row"),
        "{}",
        text(&out)
    );
    assert_eq!(state(&list, &address(0)), ("active".into(), None));

    // Postfix's local delivery names the envelope recipient in the environment: a bounce
    // that names nobody is matched by the VERP token there.
    let garbled = "From: MAILER-DAEMON@mx.example.net\r\nSubject: Undeliverable\r\n\r\nsomething went wrong\r\n";
    let out = list.site.run_stdin_env(
        &["bounces", "ingest"],
        garbled.as_bytes(),
        &[("ORIGINAL_RECIPIENT", senders[&address(1)].as_str())],
    );
    assert!(text(&out).contains("s0001@example.org soft bounce (other, other): 1 of 3"), "{}", text(&out));
    // --recipient names one message's recipient: not a mailbox's.
    let out = list.site.run(&["bounces", "ingest", "--maildir", "Maildir", "--recipient", "x@example.org"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A send killed before it recorded its refusals: the next ingest records them.
    {
        let db = list.db();
        db.execute("DELETE FROM bounces WHERE kind = 'send-time'", []).unwrap();
        db.execute(
            "UPDATE subscribers SET status = 'active', suppressed_reason = NULL, suppressed_at = NULL WHERE email = ?1",
            [address(2)],
        )
        .unwrap();
    }
    let vacation = std::fs::read_to_string(support::repo().join(FIXTURES).join("vacation.eml")).unwrap();
    let out = ingest(&list, &vacation, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(state(&list, &address(2)), ("bounced".into(), Some("hard-bounce".into())));

    // A message over the 10 MiB newsdesk reads is filed whole; only its start is read.
    let maildir = list.site.path("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let mut big = b"Subject: a large reply\r\n\r\n".to_vec();
    big.resize(11 * 1024 * 1024, b'x');
    std::fs::write(maildir.join("new/1785160931.M1P1.host"), &big).unwrap();
    let out = list.site.run(&["bounces", "ingest", "--maildir", "Maildir", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let archived = json["messages"][0]["archived"].as_str().unwrap();
    assert_eq!(std::fs::read(archived).unwrap(), big, "the whole message is kept");
    assert_eq!(std::fs::read_dir(maildir.join("new")).unwrap().count(), 0);

    // From a pipe, a message that cannot be filed goes back to the MTA (75: try again).
    std::fs::write(list.site.path("blocker"), "a file, not a folder").unwrap();
    let cfg = std::fs::read_to_string(list.site.path("config.toml")).unwrap();
    std::fs::write(list.site.path("config.toml"), format!("{cfg}\n[bounces]\narchive = \"blocker/bounces\"\n"))
        .unwrap();
    let out = ingest(&list, "Subject: hello\r\n\r\nsomeone's reply\r\n", &[]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert!(text(&out).contains("read, but cannot be filed"), "{}", text(&out));
}
