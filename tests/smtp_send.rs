//! `newsdesk send` against a real SMTP server on 127.0.0.1 (tests/support/smtp.rs, on
//! the `mailin` library): exact bytes, AUTH, retries, refusals, the ledger.

mod support;

use mail_parser::MessageParser;
use std::net::TcpListener;
use support::{Site, mail_config, smtp::SmtpServer, text};

const LIST: &str = "kubernetes-dev@example.org";
/// The newest issue's id: the feed id (`id = "jekyll"` in the bundled config).
const ISSUE: &str = "https://lwkd.info/2020/2020-05-10-update";

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn preview_eml(site: &Site) -> Vec<u8> {
    let out = site.run(&["preview"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::read(site.path("_preview/message.eml")).unwrap()
}

/// Asserts equal bytes, reporting the first difference instead of both messages.
#[track_caller]
fn assert_same(got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        let show = |b: &[u8]| String::from_utf8_lossy(&b[at.saturating_sub(40)..(at + 40).min(b.len())]).to_string();
        panic!(
            "bytes differ at {at} (lengths {} and {}):\n got: {:?}\nwant: {:?}",
            got.len(),
            want.len(),
            show(got),
            show(want)
        );
    }
}

fn ledger(site: &Site) -> Vec<newsdesk::store::ledger::list::ListSend> {
    let conn = newsdesk::store::db::open(&site.path(".newsdesk/newsdesk.db")).unwrap();
    newsdesk::store::ledger::list::history(&conn, ISSUE).unwrap()
}

#[test]
fn send_delivers_the_preview_bytes_once_and_refuses_a_second_time() {
    let server = SmtpServer::start();
    let site = Site::new(&mail_config(server.port()));
    let eml = preview_eml(&site);

    let out = site.run(&["send"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("sent to kubernetes-dev@example.org: 250 2.0.0 Ok: queued as T1"), "{shown}");
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, [LIST]);
    assert!(got[0].from.contains("lwkd@example.org"), "{}", got[0].from);
    // The server adds no headers of its own: the message is byte for byte the preview.
    assert_same(&got[0].data, &eml);

    let sends = ledger(&site);
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].status, newsdesk::store::ledger::list::ListStatus::Sent);
    assert_eq!(sends[0].destination, LIST);
    assert_eq!(sends[0].server_reply.as_deref(), Some("250 2.0.0 Ok: queued as T1"));
    let id = MessageParser::default().parse(&eml).unwrap().message_id().unwrap().to_string();
    assert_eq!(sends[0].message_id, format!("<{id}>"));

    // Again: refused before connecting.
    let connections = server.connections();
    let out = site.run(&["send"]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert!(shown.contains("error: this issue was already sent to kubernetes-dev@example.org"), "{shown}");
    assert!(shown.contains("--force"), "{shown}");
    assert_eq!(server.count(), 1);
    assert_eq!(server.connections(), connections);

    // --force sends it again, the same message.
    let out = site.run(&["send", "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.count(), 2);
    assert_same(&server.messages()[1].data, &eml);
    assert_eq!(ledger(&site).len(), 2);
}

#[test]
fn auth_with_the_password_from_the_environment() {
    let password = "s3cret-Pa55-do-not-print";
    let server = SmtpServer::with_login("lwkd", password);
    let config = mail_config(server.port()).replace(
        "security = \"none\"",
        "security = \"none\"\nusername = \"lwkd\"\npassword_env = \"NEWSDESK_SMTP_PASSWORD\"",
    );
    let site = Site::new(&config);

    // No password in the environment: a clear error, no connection.
    let out = site.run(&["send"]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert!(
        shown.contains(
            "the SMTP password is read from the environment variable `NEWSDESK_SMTP_PASSWORD`, which is not set"
        ),
        "{shown}"
    );
    assert_eq!(server.connections(), 0);

    // A wrong password: the server's 535 is shown, nothing is recorded as sent.
    let out = site.run_env(&["send"], &[("NEWSDESK_SMTP_PASSWORD", "wrong-password")]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert!(shown.contains("535"), "{shown}");
    assert!(shown.contains("Invalid credentials"), "{shown}");
    assert!(shown.contains("check `username` under [smtp]"), "{shown}");
    assert!(!shown.contains("wrong-password"), "{shown}");
    assert_eq!(server.count(), 0);
    assert_eq!(server.logins().len(), 1, "a refused login is not retried");
    assert!(ledger(&site).iter().all(|s| s.status != newsdesk::store::ledger::list::ListStatus::Sent));

    // The right one.
    let out = site.run_env(&["send", "--format", "json"], &[("NEWSDESK_SMTP_PASSWORD", password)]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert_eq!(server.count(), 1);
    let logins = server.logins();
    assert_eq!(
        logins.last().unwrap(),
        &support::smtp::Login { mechanism: "PLAIN", username: "lwkd".into(), accepted: true }
    );

    // The secret appears in no output, preview file or database.
    let preview = site.run_env(&["preview"], &[("NEWSDESK_SMTP_PASSWORD", password)]);
    let mut everything = format!("{shown}{}", text(&preview));
    for f in ["message.eml", "message.html", "message.txt"] {
        everything.push_str(&std::fs::read_to_string(site.path(&format!("_preview/{f}"))).unwrap());
    }
    assert!(!everything.contains(password));
    for entry in std::fs::read_dir(site.path(".newsdesk")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(password.len()).any(|w| w == password.as_bytes()));
    }
}

#[test]
fn a_temporary_failure_is_retried_and_delivered_once() {
    let server = SmtpServer::start();
    server.faults(|f| {
        f.defer.insert(LIST.into(), 1);
    });
    let site = Site::new(&mail_config(server.port()));
    let eml = preview_eml(&site);
    let out = site.run(&["send", "--format", "json"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert_eq!(server.applied().deferred, 1, "the server answered 451 once");
    assert_eq!(server.count(), 1, "and accepted the message once");
    assert_same(&server.messages()[0].data, &eml);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["deliveries"][0]["attempts"], 2);
    assert_eq!(v["deliveries"][0]["reply"], "250 2.0.0 Ok: queued as T1");

    // Human output says what happened.
    let server = SmtpServer::start();
    server.faults(|f| {
        f.defer.insert(LIST.into(), 1);
    });
    let site = Site::new(&mail_config(server.port()));
    let out = site.run(&["send"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("temporary failure sending to kubernetes-dev@example.org: the server answered 451"),
        "{shown}"
    );
    assert!(shown.contains("retrying in 0.1s (attempt 2 of 3)"), "{shown}");
}

#[test]
fn a_connection_cut_after_the_whole_message_is_unknown_and_not_retried() {
    // The server cuts the connection once the message is on its way: newsdesk has
    // written every byte, final `.` included, and hears nothing back. From where
    // newsdesk stands the server may have kept it, so it is not sent again.
    let server = SmtpServer::start();
    server.faults(|f| {
        f.cut.insert(LIST.into(), 1);
    });
    let site = Site::new(&mail_config(server.port()));
    let out = site.run(&["send"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert_eq!(server.applied().cut, 1, "the server cut the first attempt mid-DATA");
    assert_eq!(server.connections(), 1, "not retried: {shown}");
    assert!(shown.contains("may have been delivered"), "{shown}");
    assert!(!shown.contains("nothing was recorded as sent"), "{shown}");
    let sends = ledger(&site);
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].status, newsdesk::store::ledger::list::ListStatus::Sending, "unknown blocks: {sends:?}");
    // The next send refuses until the editor has checked.
    let again = site.run(&["send"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("--force"), "{}", text(&again));
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_reply_lost_after_the_body_is_unknown_never_retried_and_blocks_until_forced() {
    // The server stores the message and answers only after 3 s; newsdesk waits 1 s.
    let server = SmtpServer::start();
    server.faults(|f| f.reply_delay = std::time::Duration::from_secs(3));
    let config = mail_config(server.port()).replace("timeout_secs = 5", "timeout_secs = 1");
    let site = Site::new(&config);
    let out = site.run(&["send", "--yes"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert_eq!(server.count(), 1, "the server has it");
    assert_eq!(server.connections(), 1, "never retried within the run: {shown}");
    assert!(shown.contains("may have been delivered"), "{shown}");
    assert!(shown.contains("127.0.0.1:") && shown.contains("did not answer within 1 s"), "{shown}");
    assert!(!shown.contains("nothing was recorded as sent"), "{shown}");
    assert!(!shown.contains("os error"), "no library wording: {shown}");
    let sends = ledger(&site);
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].status, newsdesk::store::ledger::list::ListStatus::Sending, "{sends:?}");
    assert!(sends[0].server_reply.as_deref().unwrap_or("").contains("no reply"), "{sends:?}");

    // Like a crash's unfinished send: refused without --force, no connection made.
    server.faults(|f| f.reply_delay = std::time::Duration::ZERO);
    let again = site.run(&["send", "--yes"]);
    let again_shown = text(&again);
    assert_eq!(again.status.code(), Some(1), "{again_shown}");
    assert!(again_shown.contains("may have been delivered"), "{again_shown}");
    assert_eq!(server.connections(), 1);
    assert_eq!(server.count(), 1);
    let forced = site.run(&["send", "--yes", "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert_eq!(server.count(), 2);
    let sends = ledger(&site);
    assert_eq!(sends.len(), 2, "the forced send is a row of its own: {sends:?}");
    assert_eq!(sends[1].status, newsdesk::store::ledger::list::ListStatus::Sent);
}

#[test]
fn concurrent_list_sends_mail_the_list_once() {
    // Four `send --yes` at once, on a database none of them has created yet, several
    // times over: exactly one message each round, never a schema race.
    for round in 0..6 {
        let server = SmtpServer::start();
        let site = Site::new(&mail_config(server.port()));
        let children: Vec<_> = (0..4).map(|_| site.spawn(&["send", "--yes"])).collect();
        let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let shown: Vec<String> = outputs.iter().map(text).collect();
        let ok = outputs.iter().filter(|o| o.status.success()).count();
        assert_eq!(server.count(), 1, "round {round}: the list got {} copies: {shown:#?}", server.count());
        assert_eq!(ok, 1, "round {round}: {shown:#?}");
        for s in &shown {
            assert!(!s.contains("already exists"), "round {round}: schema race: {s}");
        }
        for (o, s) in outputs.iter().zip(&shown) {
            if !o.status.success() {
                assert!(
                    s.contains("another send is already running") || s.contains("already sent"),
                    "round {round}: a refused send says why: {s}"
                );
            }
        }
        let sends = ledger(&site);
        assert_eq!(
            sends.iter().filter(|s| s.status == newsdesk::store::ledger::list::ListStatus::Sent).count(),
            1,
            "round {round}: {sends:?}"
        );
    }
}

#[test]
fn a_temporary_failure_that_persists_gives_up_after_max_attempts() {
    let server = SmtpServer::start();
    server.faults(|f| {
        f.defer.insert(LIST.into(), 10);
    });
    let site = Site::new(&mail_config(server.port()));
    let out = site.run(&["send"]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert_eq!(server.applied().deferred, 3, "max_attempts = 3");
    assert!(
        shown.contains("sending to kubernetes-dev@example.org failed after 3 attempts: the server answered 451"),
        "{shown}"
    );
    assert!(shown.contains("nothing was recorded as sent"), "{shown}");
    let sends = ledger(&site);
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].status, newsdesk::store::ledger::list::ListStatus::Failed);
}

#[test]
fn a_permanent_failure_is_not_retried_and_not_recorded() {
    let server = SmtpServer::start();
    server.faults(|f| {
        f.reject.insert(LIST.into(), (550, "5.1.1 No such list here".into()));
    });
    let site = Site::new(&mail_config(server.port()));
    let out = site.run(&["send"]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert!(
        shown.contains(
            "error: sending to kubernetes-dev@example.org failed: the server answered 550 5.1.1 No such list here"
        ),
        "{shown}"
    );
    assert_eq!(server.applied().rejected, 1, "5xx is not retried");
    assert_eq!(server.count(), 0);

    // Nothing was recorded as sent: once the server accepts, send works without --force.
    server.faults(|f| f.reject.clear());
    let out = site.run(&["send"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.count(), 1);
}

#[test]
fn a_refused_connection_is_a_clear_error_and_nothing_is_marked_sent() {
    let port = closed_port();
    let site = Site::new(&mail_config(port));
    let out = site.run(&["send"]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert!(shown.contains("failed after 3 attempts"), "connection errors are temporary: {shown}");
    assert!(shown.contains(&format!("127.0.0.1:{port} refused the connection")), "{shown}");
    assert!(!shown.contains("os error"), "no library wording: {shown}");
    assert!(shown.contains("check `host` and `port` under [smtp]"), "{shown}");
    let sends = ledger(&site);
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].status, newsdesk::store::ledger::list::ListStatus::Failed, "{sends:?}");
}

#[test]
fn an_unfinished_send_blocks_until_forced() {
    let server = SmtpServer::start();
    let site = Site::new(&mail_config(server.port()));
    let conn = newsdesk::store::db::open(&site.path(".newsdesk/newsdesk.db")).unwrap();
    let issue = newsdesk::store::ledger::IssueKey { id: ISSUE.into(), label: "2020-05-10-update".into() };
    newsdesk::store::ledger::list::begin(&conn, &issue, LIST, "<x@example.org>", "LWKD").unwrap();
    drop(conn);
    let out = site.run(&["send"]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert!(shown.contains("never finished: the server may or may not have accepted it"), "{shown}");
    assert_eq!(server.connections(), 0);
    let out = site.run(&["send", "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.count(), 1);
}

#[test]
fn a_test_send_carries_the_real_message_and_is_not_recorded() {
    let server = SmtpServer::start();
    let site = Site::new(&mail_config(server.port()));
    let eml = preview_eml(&site);

    let out = site.run(&["send", "--to", "editor@example.net", "--to", "Second@Example.com"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("test send; not recorded"), "{shown}");
    let got = server.messages();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].to, ["editor@example.net"]);
    assert_eq!(got[1].to, ["Second@Example.com"]);

    let real = MessageParser::default().parse(&eml).unwrap();
    let real_id = real.message_id().unwrap().to_string();
    for g in &got {
        let test = MessageParser::default().parse(&g.data).unwrap();
        // Its own Message-ID (a mail client must not drop the real one as a duplicate) ...
        let test_id = test.message_id().unwrap().to_string();
        assert_ne!(test_id, real_id);
        assert!(
            test_id.starts_with(real_id.trim_end_matches(|c| c != '@').trim_end_matches('@')),
            "{test_id} vs {real_id}"
        );
        // ... and otherwise exactly the list's message: headers, subject, body.
        let expected = String::from_utf8_lossy(&eml).replace(&real_id, &test_id);
        assert_same(&g.data, expected.as_bytes());
    }
    assert_ne!(
        MessageParser::default().parse(&got[0].data).unwrap().message_id(),
        MessageParser::default().parse(&got[1].data).unwrap().message_id()
    );
    assert!(ledger(&site).is_empty(), "test sends are not recorded");

    // The list send still goes out.
    let out = site.run(&["send"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.messages()[2].to, [LIST]);

    // A malformed test address is refused before anything happens.
    let out = site.run(&["send", "--to", "not an address"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("`--to not an address` is not a mail address"), "{}", text(&out));
    assert_eq!(server.count(), 3);
}

#[test]
fn file_and_sendmail_transports_get_the_same_bytes() {
    let site =
        Site::new(&mail_config(1).replace("transport = \"smtp\"", "transport = \"file\"\nfile_dir = \"outbox\""));
    let eml = preview_eml(&site);
    let out = site.run(&["send"]);
    assert!(out.status.success(), "{}", text(&out));
    let files: Vec<_> = std::fs::read_dir(site.path("outbox")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1);
    assert!(text(&out).contains("written to"), "{}", text(&out));
    assert_same(&std::fs::read(&files[0]).unwrap(), &eml);
    assert_eq!(ledger(&site)[0].status, newsdesk::store::ledger::list::ListStatus::Sent);

    // sendmail: a stand-in program that keeps its arguments and standard input.
    let site = Site::new(
        &mail_config(1).replace("transport = \"smtp\"", "transport = \"sendmail\"\nsendmail = \"./fake-sendmail.sh\""),
    );
    let script = site.path("fake-sendmail.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" > '{0}/args'\ncat > '{0}/stdin.eml'\n", site.dir.path().display()),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    let eml = preview_eml(&site);
    let out = site.run(&["send"]);
    assert!(out.status.success(), "{}", text(&out));
    let args = std::fs::read_to_string(site.path("args")).unwrap();
    assert!(args.contains("lwkd@example.org") && args.contains(LIST), "{args}");
    assert_same(&std::fs::read(site.path("stdin.eml")).unwrap(), &eml);

    // A sendmail that is not there: a clear error naming it.
    std::fs::remove_file(&script).unwrap();
    let out = site.run(&["send", "--force"]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert!(shown.contains("fake-sendmail.sh: internal client error: No such file or directory"), "{shown}");
    assert!(shown.contains("check `sendmail` under [email]"), "{shown}");
}

#[test]
fn plain_smtp_is_refused_for_a_remote_host() {
    let config = mail_config(25).replace("host = \"127.0.0.1\"", "host = \"smtp.example.org\"");
    let site = Site::new(&config);
    let out = site.run(&["send"]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert!(
        shown.contains("`security = \"none\"` would send the message and password unencrypted to `smtp.example.org`"),
        "{shown}"
    );
    let line = std::fs::read_to_string(site.path("config.toml"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("security"))
        .unwrap()
        + 1;
    assert!(shown.contains(&format!("config.toml:{line}:")), "{shown}");
}

#[test]
fn a_server_that_never_answers_times_out_and_is_retried() {
    // Connections complete (the kernel accepts them into the backlog) but no greeting
    // ever comes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let config = mail_config(port).replace("timeout_secs = 5\nmax_attempts = 3", "timeout_secs = 1\nmax_attempts = 2");
    let site = Site::new(&config);
    let started = std::time::Instant::now();
    let out = site.run(&["send"]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert!(shown.contains("failed after 2 attempts"), "a timeout is temporary: {shown}");
    // Which server, and how long newsdesk waited; not the socket's EAGAIN text.
    assert!(shown.contains(&format!("127.0.0.1:{port} did not answer within 1 s")), "{shown}");
    assert!(!shown.contains("Resource temporarily unavailable"), "{shown}");
    assert!(!shown.contains("os error"), "{shown}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(ledger(&site)[0].status, newsdesk::store::ledger::list::ListStatus::Failed);
    drop(silent);
}

/// Runs `newsdesk send` on a pseudo-terminal (util-linux `script`), typing `answer`.
fn send_on_a_terminal(site: &Site, answer: &str) -> Option<(bool, String)> {
    let script = ["/usr/bin/script", "/bin/script"].into_iter().find(|p| std::path::Path::new(p).exists())?;
    let command = format!("'{}' -c '{}' send", env!("CARGO_BIN_EXE_newsdesk"), site.path("config.toml").display());
    let mut child = std::process::Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .env("SOURCE_DATE_EPOCH", support::EPOCH)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write;
    child.stdin.take().unwrap().write_all(answer.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Some((out.status.success(), text(&out)))
}

#[test]
fn on_a_terminal_send_asks_first() {
    let server = SmtpServer::start();
    let site = Site::new(&mail_config(server.port()));
    let Some((ok, shown)) = send_on_a_terminal(&site, "n\n") else {
        eprintln!("no `script` program: skipping the terminal test");
        return;
    };
    assert!(!ok, "{shown}");
    assert!(shown.contains("Subject:    LWKD: Week Ending May 10, 2020"), "the report comes first: {shown}");
    assert!(shown.contains("Send \"LWKD: Week Ending May 10, 2020\" to kubernetes-dev@example.org? [y/N]"), "{shown}");
    assert!(shown.contains("nothing was sent"), "{shown}");
    assert_eq!(server.connections(), 0);
    assert!(ledger(&site).is_empty());

    let (ok, shown) = send_on_a_terminal(&site, "y\n").unwrap();
    assert!(ok, "{shown}");
    assert_eq!(server.count(), 1);
}

#[test]
fn a_server_that_is_not_smtp_is_named_in_plain_words() {
    // Something on the port answers with bytes that are not text (say, a TLS or binary
    // service): the editor is told it is not an SMTP server, not "stream did not
    // contain valid UTF-8".
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        use std::io::Write;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.write_all(&[0x16, 0x03, 0x01, 0xff, 0xfe, 0x80, 0x0d, 0x0a]);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    });
    let config = mail_config(port).replace("max_attempts = 3", "max_attempts = 1");
    let site = Site::new(&config);
    let out = site.run(&["send"]);
    let shown = text(&out);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    handle.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains(&format!("127.0.0.1:{port} did not answer like an SMTP server")), "{shown}");
    assert!(!shown.contains("UTF-8"), "{shown}");
}
