//! `newsdesk send --subscribers` against a real SMTP server on 127.0.0.1: every
//! subscriber gets exactly one personal message, resumes and retries send nothing
//! twice, and what the server saw matches the ledger, fault by fault.

mod delivery_common;
mod support;

use delivery_common::{ListSite, address, header, wait_until};
use std::collections::{HashMap, HashSet};
use support::smtp::SmtpServer;
use support::text;

#[test]
fn a_thousand_subscribers_each_get_exactly_one_personal_message() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 1000, "connections = 4");
    let out = list.send(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sent 1000 in"), "{}", text(&out));
    eprintln!("{}", text(&out));

    let messages = server.messages();
    assert_eq!(messages.len(), 1000);
    let per = server.per_recipient();
    let tokens = list.tokens();
    let mut ids = HashSet::new();
    for i in 0..1000 {
        assert_eq!(per.get(&address(i)), Some(&1), "{} got {:?} messages", address(i), per.get(&address(i)));
    }
    for m in &messages {
        assert_eq!(m.to.len(), 1, "one envelope recipient per message");
        let to = &m.to[0];
        let i: usize = to[1..5].parse().unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&m.data).expect("the message parses");
        let to_header = parsed.to().and_then(|a| a.first()).expect("a To header");
        assert_eq!(to_header.address(), Some(to.as_str()));
        assert_eq!(to_header.name(), Some(format!("Subscriber {i}").as_str()));
        let id = parsed.message_id().expect("a Message-ID").to_string();
        assert!(ids.insert(id.clone()), "Message-ID {id} used twice");
        let url = format!("https://lwkd.example.org/unsubscribe/{}", tokens[to]);
        let unsub = header(&m.data, "List-Unsubscribe").expect("List-Unsubscribe");
        assert!(unsub.contains(&format!("<{url}>")), "{to}: {unsub}");
        assert_eq!(header(&m.data, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
        let body = parsed.body_text(0).expect("a text part");
        assert!(body.contains(&format!("Hello Subscriber {i},")), "{to}: not greeted by name");
        assert!(body.contains(&url), "{to}: the body has no personal unsubscribe link");
        // Every unsubscribe link in the message, in both parts, is this subscriber's.
        let html = parsed.body_html(0).expect("an HTML part");
        for part in [&unsub, &body.to_string(), &html.to_string()] {
            let links: Vec<&str> = part.split("/unsubscribe/").skip(1).map(|rest| &rest[..32]).collect();
            assert!(!links.is_empty(), "{to}: no unsubscribe link in {part:.80}");
            assert!(links.iter().all(|t| *t == tokens[to]), "{to}: {links:?}");
        }
    }
    // Every row is sent, with the server's reply and the Message-ID that went out.
    let ledger = list.ledger();
    assert_eq!(ledger.len(), 1000);
    for m in &messages {
        let row = &ledger[&m.to[0]];
        assert_eq!(row.state, "sent");
        assert_eq!(row.attempts, 1);
        assert!(row.reply.as_deref().unwrap().starts_with("250 2.0.0 Ok: queued as T"), "{:?}", row.reply);
        let id = mail_parser::MessageParser::default().parse(&m.data).unwrap().message_id().unwrap().to_string();
        assert_eq!(row.message_id.as_deref(), Some(format!("<{id}>").as_str()));
    }
    // Connections were kept and reused, never more than configured.
    assert!(server.connections() <= 4, "{} connections", server.connections());

    // Sending again sends nothing: the ledger says every subscriber has it.
    let again = list.send(&[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("nothing to send"), "{}", text(&again));
    assert_eq!(server.count(), 1000);

    // `status` agrees, in JSON too.
    let status = list.site.run(&["status", "--format", "json"]);
    assert!(status.status.success(), "{}", text(&status));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["issues"][0]["counts"]["sent"], 1000);
    assert_eq!(v["issues"][0]["counts"]["pending"], 0);
    assert_eq!(v["issues"][0]["label"], "2020-05-10-update");
}

#[test]
fn the_message_id_is_stable_per_issue_and_subscriber() {
    // Two separate sites with the same list: the same (issue, subscriber) gets the
    // same Message-ID, which is what lets a provider collapse a crash-window duplicate.
    let a = SmtpServer::start();
    let b = SmtpServer::start();
    for (server, n) in [(&a, 3), (&b, 3)] {
        let list = ListSite::new(server.port(), n, "");
        assert!(list.send(&[]).status.success());
    }
    let ids = |s: &SmtpServer| -> HashMap<String, String> {
        s.messages().iter().map(|m| (m.to[0].clone(), header(&m.data, "Message-ID").unwrap())).collect()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(ids(&a).values().collect::<HashSet<_>>().len(), 3);
}

#[test]
fn subscribers_who_join_later_wait_for_include_new_and_unsubscribes_are_honoured() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 5, "");
    assert!(list.send(&[]).status.success());
    assert_eq!(server.count(), 5);

    let add = list.site.run(&["subscribers", "add", "late@example.org", "--name", "Late"]);
    assert!(add.status.success(), "{}", text(&add));
    let again = list.send(&[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("1 joined since (add them with --include-new)"), "{}", text(&again));
    assert_eq!(server.count(), 5);

    let with_new = list.send(&["--include-new"]);
    assert!(with_new.status.success(), "{}", text(&with_new));
    assert_eq!(server.count(), 6);
    assert_eq!(server.messages()[5].to, ["late@example.org"]);
    assert_eq!(list.ledger()["late@example.org"].state, "sent");

    // A second issue: someone who unsubscribed is not mailed.
    let un = list.site.run(&["unsubscribe", "--email", &address(2)]);
    assert!(un.status.success(), "{}", text(&un));
    let older = list.send(&["--post", "2020-05-03-update"]);
    assert!(older.status.success(), "{}", text(&older));
    assert_eq!(server.count(), 11);
    assert!(!server.messages()[6..].iter().any(|m| m.to[0] == address(2)));
}

#[test]
fn faults_at_the_server_end_up_in_the_ledger_exactly_as_they_happened() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 60, "connections = 3\nmax_attempts = 3\nretry_delay_secs = 0.02");
    // s0041-s0044: 550 5.1.1, refused for good (hard bounces: those subscribers become
    // bounced); s0040: 554 5.7.1, refused by policy (a soft bounce: still subscribed).
    // s0010-s0014: 451 twice, then accepted.
    // s0020-s0022: 451 always (more than max_attempts). s0030-s0034: the connection
    // is cut once the whole message is on its way (newsdesk hears nothing back, so the
    // server may have it: unknown, never retried in the run). And the first 3
    // transactions get 421.
    server.faults(|f| {
        for i in 0..5 {
            f.reject.insert(address(40 + i), (550, "5.1.1 <mailbox> unknown".into()));
            f.defer.insert(address(10 + i), 2);
            f.cut.insert(address(30 + i), 1);
        }
        for i in 20..23 {
            f.defer.insert(address(i), 100);
        }
        f.reject.insert(address(40), (554, "5.7.1 <mailbox> rejected by policy".into()));
        f.busy = 3;
    });
    let out = list.send(&[]);
    assert_eq!(out.status.code(), Some(1), "temporary failures are left: {}", text(&out));
    let applied = server.applied();
    assert_eq!(applied.busy, 3);
    assert_eq!(applied.cut, 5);

    let per = server.per_recipient();
    let ledger = list.ledger();
    assert_eq!(ledger.len(), 60);
    for i in 0..60 {
        let a = address(i);
        let row = &ledger[&a];
        let got = per.get(&a).copied().unwrap_or(0);
        match i {
            40..=44 => {
                assert_eq!((row.state.as_str(), got), ("failed_permanent", 0), "{a}: {row:?}");
                let code = if i == 40 { "554 5.7.1" } else { "550 5.1.1" };
                assert!(row.reply.as_deref().unwrap().starts_with(code), "{row:?}");
                // A 550 is not retried (one more attempt if a 421 fell on this row first).
                assert!((1..=2).contains(&row.attempts), "a 550 is not retried: {row:?}");
            }
            30..=34 => {
                assert_eq!((row.state.as_str(), got), ("sending", 0), "{a}: unknown, not retried: {row:?}");
                assert!(row.reply.as_deref().unwrap().starts_with("no reply after the whole message"), "{row:?}");
                assert!((1..=2).contains(&row.attempts), "{a}: {row:?}");
            }
            20..=22 => {
                assert_eq!((row.state.as_str(), got), ("failed_temporary", 0), "{a}: {row:?}");
                assert!(row.reply.as_deref().unwrap().starts_with("451 4.3.0"), "{row:?}");
                assert_eq!(row.attempts, 3, "retried up to max_attempts");
                assert!(row.next_retry_at.is_some());
            }
            _ => {
                assert_eq!((row.state.as_str(), got), ("sent", 1), "{a}: {row:?}");
                // Plus one if a 421 fell on the row (the first transaction of a connection).
                match i {
                    10..=14 => assert!((3..=4).contains(&row.attempts), "{a}: {row:?}"),
                    _ => assert!((1..=2).contains(&row.attempts), "{a}: {row:?}"),
                }
            }
        }
    }
    // The 421s fell on the first transactions of the connections, whichever rows
    // they were (a worker claims several rows at a time, so not always the first rows).
    let busy_retried: i64 = (0..60)
        .filter(|i| !matches!(i, 20..=22))
        .map(|i| {
            let base = match i {
                10..=14 => 3,
                _ => 1,
            };
            ledger[&address(i)].attempts - base
        })
        .sum();
    assert_eq!(busy_retried, 3, "one retry per 421");

    // `status` lists the permanent failures with the server's reply.
    let status = list.site.run(&["status"]);
    let st = text(&status);
    assert!(st.contains("failed permanently"), "{st}");
    assert!(st.contains("s0043@example.org  550 5.1.1 <mailbox> unknown"), "{st}");

    // A plain resume leaves the temporary failures until their retry time; once it is
    // reached (here: the server works again and --retry-failed asks for every failed
    // row) only failed rows go out, each once.
    server.faults(|f| {
        f.defer.clear();
        f.reject.remove(&address(40));
    });
    let before = server.count();
    let retry = list.send(&["--retry-failed"]);
    let rt = text(&retry);
    // The unknown rows are not failures: --retry-failed leaves them, so the run still
    // has open rows.
    assert_eq!(retry.status.code(), Some(1), "{rt}");
    assert!(!rt.contains("sent again with the same Message-ID"), "{rt}");
    let newly: Vec<String> = server.messages()[before..].iter().map(|m| m.to[0].clone()).collect();
    let mut newly_sorted = newly.clone();
    newly_sorted.sort();
    assert_eq!(newly_sorted, [address(20), address(21), address(22), address(40)]);
    let ledger = list.ledger();
    assert_eq!(ledger[&address(40)].state, "sent");
    for i in 41..45 {
        assert_eq!(ledger[&address(i)].state, "failed_permanent");
        let status: String =
            list.db().query_row("SELECT status FROM subscribers WHERE email = ?1", [address(i)], |r| r.get(0)).unwrap();
        assert_eq!(status, "bounced", "a send-time 550 5.1.1 is a hard bounce: never retried");
    }
    // The unknown rows are for the editor to decide: `status` says so, a resume sends
    // them again with the same Message-ID (they never reached this server).
    let status = list.site.run(&["status"]);
    assert!(text(&status).contains("5 unknown"), "{}", text(&status));
    let resume = list.send(&["--resume"]);
    assert!(resume.status.success(), "{}", text(&resume));
    assert!(text(&resume).contains("5 interrupted message(s) sent again"), "{}", text(&resume));
    let per = server.per_recipient();
    for i in 30..35 {
        assert_eq!(per.get(&address(i)), Some(&1), "{}", address(i));
    }
    assert_eq!(list.states().get("sent"), Some(&56));
}

#[test]
fn a_server_restart_mid_send_loses_and_doubles_nobody() {
    let mut server = SmtpServer::start();
    let list = ListSite::new(
        server.port(),
        200,
        "connections = 4\nmax_per_second = 100\nmax_attempts = 8\nretry_delay_secs = 0.05",
    );
    let child = list.spawn_send();
    // Bounded wait for the send to be well under way, then restart the server.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.count() < 60 {
        assert!(std::time::Instant::now() < deadline, "the send did not start");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.stop();
    std::thread::sleep(std::time::Duration::from_millis(400));
    server.restart();
    let out = child.wait_with_output().unwrap();
    // Messages in flight when the server went away may be unknown (written whole, no
    // reply): that run leaves them, the next one sends them with the same Message-ID.
    if !out.status.success() {
        let shown = text(&out);
        assert!(shown.contains("no reply came"), "{shown}");
        let again = list.send(&[]);
        assert!(again.status.success(), "{}", text(&again));
    }
    let per = server.per_recipient();
    let ledger = list.ledger();
    for i in 0..200 {
        let a = address(i);
        assert_eq!(ledger[&a].state, "sent", "{a}");
        // A message whose 250 was lost in the cut may arrive twice (the server kept it,
        // the client never heard): same Message-ID, at most one per cut connection.
        assert!((1..=2).contains(&per[&a]), "{a}: {}", per[&a]);
    }
    let doubled: Vec<&String> = per.iter().filter(|(_, n)| **n > 1).map(|(a, _)| a).collect();
    assert!(doubled.len() <= 4, "{doubled:?}");
    for a in &doubled {
        let ids: HashSet<String> = server
            .messages()
            .iter()
            .filter(|m| &&m.to[0] == a)
            .map(|m| header(&m.data, "Message-ID").unwrap())
            .collect();
        assert_eq!(ids.len(), 1, "a resend carries the same Message-ID");
    }
    eprintln!("server restart: {} of 200 subscribers got a duplicate (lost 250s)", doubled.len());
}

#[test]
fn the_per_second_limit_holds_for_the_whole_send() {
    // 4 connections share one limit of 25 messages/s. Only lower bounds on time are
    // checked (a slow machine only spaces messages further): the k-th message cannot
    // have gone out before the run's start plus k/25 s.
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 40, "connections = 4\nmax_per_second = 25");
    let out = list.send(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.count(), 40);
    let db = list.db();
    let parse = |t: String| chrono::DateTime::parse_from_rfc3339(&t).unwrap();
    let started = parse(db.query_row("SELECT started_at FROM delivery_runs", [], |r| r.get(0)).unwrap());
    let sent: Vec<_> = db
        .prepare("SELECT sent_at FROM deliveries ORDER BY sent_at")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|t| parse(t.unwrap()))
        .collect();
    for (k, t) in sent.iter().enumerate() {
        // Stored times are cut to the millisecond: allow that one.
        let earliest = started + chrono::Duration::milliseconds(k as i64 * 40 - 1);
        assert!(*t >= earliest, "message {k} went out at {t}, before {earliest}: the limit was exceeded");
    }
}

#[test]
fn the_hourly_limit_counts_earlier_runs_and_ctrl_c_stops_cleanly() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 12, "connections = 2\nmax_per_hour = 5");
    for run in 0..2 {
        let child = list.spawn_send();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while server.count() < 5 {
            assert!(std::time::Instant::now() < deadline, "run {run}: the first 5 were not sent");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // The next slot is an hour away: nothing more goes out (on the second run,
        // because the ledger says 5 went out in the last hour).
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_eq!(server.count(), 5, "run {run}: the hourly limit was exceeded");
        let int = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        assert!(int.success());
        let out = child.wait_with_output().unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "run {run}: {t}");
        assert!(t.contains("stopped early: interrupted (Ctrl-C)"), "run {run}: {t}");
        assert!(t.contains("5 sent, 7 pending, 0 unknown"), "run {run}: {t}");
    }
    assert_eq!(list.states().get("sent"), Some(&5));
    assert_eq!(list.states().get("pending"), Some(&7));
}

#[test]
fn bad_databases_and_configs_are_clear_errors_and_send_nothing() {
    let server = SmtpServer::start();
    // No database yet.
    let site = support::Site::new(&delivery_common::config(server.port(), ""));
    let out = site.run(&["send", "--subscribers", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("there is no subscriber database at"), "{}", text(&out));
    assert!(!site.path("state/newsdesk.db").exists(), "a send must not create an empty list");

    // A damaged database: named, left as it was.
    std::fs::create_dir_all(site.path("state")).unwrap();
    let junk = b"SQLite format 3\0 but then garbage, not pages".repeat(100);
    std::fs::write(site.path("state/newsdesk.db"), &junk).unwrap();
    let out = site.run(&["send", "--subscribers", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("is not a newsdesk database"), "{}", text(&out));
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
    assert_eq!(std::fs::read(site.path("state/newsdesk.db")).unwrap(), junk);
    let status = site.run(&["status"]);
    assert_eq!(status.status.code(), Some(1));
    assert!(text(&status).contains("is not a newsdesk database"), "{}", text(&status));

    // No unsubscribe link: refused before anything is rendered or sent.
    let list = ListSite::new(server.port(), 2, "");
    let cfg = std::fs::read_to_string(list.site.path("config.toml")).unwrap();
    let without: String = cfg.lines().filter(|l| !l.starts_with("unsubscribe_url")).map(|l| format!("{l}\n")).collect();
    std::fs::write(list.site.path("config.toml"), without).unwrap();
    let out = list.send(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("`[subscribers] unsubscribe_url` is not set"), "{}", text(&out));
    assert_eq!(server.count(), 0);
}

#[test]
fn a_row_edited_by_hand_into_a_bad_address_fails_alone() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 4, "");
    list.db().execute("UPDATE subscribers SET email = 'not an address' WHERE email = ?1", [address(1)]).unwrap();
    let out = list.send(&[]);
    // Only a permanent failure is left: nothing to retry, so the send succeeds.
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.count(), 3);
    let row = &list.ledger()["not an address"];
    assert_eq!(row.state, "failed_permanent");
    assert!(row.reply.as_deref().unwrap().starts_with("not sent: `not an address` is not a valid address"), "{row:?}");
}

#[test]
fn subscribers_who_leave_mid_send_are_not_mailed_even_when_already_claimed() {
    // 300 subscribers, a server that takes 0.1 s per message: workers claim rows in
    // batches well before they send them. Two people whose rows are claimed (state
    // `sending`, not yet at the server) and one still pending unsubscribe mid-send.
    let server = SmtpServer::start();
    server.faults(|f| f.reply_delay = std::time::Duration::from_millis(100));
    let list = ListSite::new(server.port(), 300, "connections = 4");
    let mut child = list.spawn_send();
    wait_until("the send to be under way", || server.count() >= 8);
    let db = list.db();
    let claimed: Vec<String> = db
        .prepare("SELECT email FROM deliveries WHERE state = 'sending' ORDER BY id DESC LIMIT 2")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let pending: String = db
        .query_row("SELECT email FROM deliveries WHERE state = 'pending' ORDER BY id DESC LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(claimed.len(), 2, "rows are claimed ahead of sending");
    let leaving: Vec<String> = claimed.iter().cloned().chain([pending]).collect();
    for a in &leaving {
        assert_eq!(server.per_recipient().get(a), None, "{a} was picked before being mailed");
        let out = list.site.run(&["unsubscribe", &list.token(a)]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let per = server.per_recipient();
    let ledger = list.ledger();
    for a in &leaving {
        assert_eq!(per.get(a), None, "{a} unsubscribed mid-send and was mailed anyway");
        assert_eq!(ledger[a].state, "cancelled", "{a}: {:?}", ledger[a]);
    }
    assert_eq!(server.count(), 297);
    assert!(stderr.contains("3 not sent: unsubscribed after the send started"), "{stderr}");
}

#[test]
fn a_reply_lost_after_the_body_is_unknown_and_never_sent_twice_in_a_run() {
    // The server stores each message and answers 2 s later; newsdesk waits 1 s.
    let server = SmtpServer::start();
    server.faults(|f| f.reply_delay = std::time::Duration::from_secs(2));
    let list = ListSite::new(server.port(), 4, "connections = 4\nmax_attempts = 5\nretry_delay_secs = 0.01");
    let config = list.site.path("config.toml");
    let text_now = std::fs::read_to_string(&config).unwrap().replace("timeout_secs = 5", "timeout_secs = 1");
    std::fs::write(&config, text_now).unwrap();
    let out = list.send(&[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "unknown rows are left open: {shown}");
    let per = server.per_recipient();
    for i in 0..4 {
        assert_eq!(per.get(&address(i)), Some(&1), "{}: one copy, not retried: {shown}", address(i));
    }
    let ledger = list.ledger();
    for i in 0..4 {
        let row = &ledger[&address(i)];
        assert_eq!(row.state, "sending", "unknown, as after a crash: {row:?}");
        assert_eq!(row.attempts, 1, "{row:?}");
        assert!(row.reply.as_deref().unwrap().contains("did not answer within 1 s"), "{row:?}");
    }
    assert!(shown.contains("4 message(s) went out whole but no reply came"), "{shown}");
    // The documented unknown handling: `--skip-unknown` leaves them alone...
    server.faults(|f| f.reply_delay = std::time::Duration::ZERO);
    let skip = list.send(&["--skip-unknown"]);
    assert_eq!(server.count(), 4, "{}", text(&skip));
    let status = list.site.run(&["status"]);
    assert!(text(&status).contains("4 unknown"), "{}", text(&status));
    // ...and a plain resume sends them again with the same Message-ID.
    let first_ids: HashSet<String> = server.messages().iter().map(|m| header(&m.data, "Message-ID").unwrap()).collect();
    let resume = list.send(&[]);
    assert!(resume.status.success(), "{}", text(&resume));
    let again: HashSet<String> =
        server.messages()[4..].iter().map(|m| header(&m.data, "Message-ID").unwrap()).collect();
    assert_eq!(first_ids, again);
}

#[test]
fn status_says_in_flight_while_a_send_runs() {
    let server = SmtpServer::start();
    server.faults(|f| f.reply_delay = std::time::Duration::from_millis(100));
    let list = ListSite::new(server.port(), 60, "connections = 2");
    let mut child = list.spawn_send();
    wait_until("the send to be under way", || server.count() >= 2);
    let during = list.site.run(&["status"]);
    let during_text = text(&during);
    let _ = child.wait();
    assert!(during_text.contains("in flight"), "{during_text}");
    assert!(during_text.contains("a send is running (pid"), "{during_text}");
    assert!(!during_text.contains("unknown (interrupted"), "{during_text}");
    let after = list.site.run(&["status"]);
    assert!(!text(&after).contains("in flight"), "{}", text(&after));
}

#[test]
fn a_dry_run_needs_no_smtp_password() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 3, "username = \"lwkd\"\npassword_env = \"NEWSDESK_TEST_UNSET_PASSWORD\"");
    let out = list.send(&["--dry-run"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("dry run: nothing was sent"), "{shown}");
    assert_eq!(server.connections(), 0);
    // A real send still needs it.
    let real = list.send(&[]);
    assert_eq!(real.status.code(), Some(1));
    assert!(text(&real).contains("NEWSDESK_TEST_UNSET_PASSWORD"), "{}", text(&real));
    // An empty password is refused the same way by list and subscriber sends.
    let env = [("NEWSDESK_TEST_UNSET_PASSWORD", "")];
    let empty = list.site.run_env(&["send", "--subscribers", "--yes"], &env);
    assert_eq!(empty.status.code(), Some(1));
    assert!(text(&empty).contains("which is not set"), "{}", text(&empty));
    assert_eq!(server.connections(), 0);
}

#[test]
fn status_settles_the_sent_journal_first() {
    // A killed run can leave a row `sending` whose 250 is in the sent journal: status
    // applies the journal before it counts, so that row is sent, not unknown.
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 3, "");
    let out = list.send(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let db = list.db();
    let id: i64 = db.query_row("SELECT id FROM deliveries ORDER BY id LIMIT 1", [], |r| r.get(0)).unwrap();
    db.execute("UPDATE deliveries SET state = 'sending' WHERE id = ?1", [id]).unwrap();
    drop(db);
    let journal = list.site.path("state/newsdesk.db.sent-journal");
    std::fs::write(&journal, format!("{id}\t2026-01-01T00:00:00.000Z\t250 2.0.0 Ok\n")).unwrap();
    let status = list.site.run(&["status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["issues"][0]["counts"]["sent"], 3, "{v}");
    assert_eq!(v["issues"][0]["counts"]["sending"], 0, "{v}");
    assert_eq!(std::fs::read(&journal).unwrap().len(), 0, "the journal is emptied once applied");
}

/// The permission bits of `p`.
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

#[test]
fn the_database_its_journal_and_lock_are_private_and_check_warns_when_they_are_not() {
    let server = SmtpServer::start();
    // The import creates the folder and the database.
    let list = ListSite::new(server.port(), 3, "");
    let db = list.db_path();
    assert_eq!(mode(db.parent().unwrap()), 0o700, "the database's folder");
    assert_eq!(mode(&db), 0o600, "the database holds every unsubscribe token");
    let out = list.send(&[]);
    assert!(out.status.success(), "{}", text(&out));
    for suffix in [".sent-journal", ".send-lock"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    let check = list.site.run(&["check"]);
    assert!(!text(&check).contains("can be read by other users"), "{}", text(&check));

    // A database made readable by others (an old newsdesk, a copy): check says so.
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", ".sent-journal"] {
        let p = format!("{}{suffix}", db.display());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let check = list.site.run(&["check"]);
    let shown = text(&check);
    assert!(check.status.success(), "a warning, not an error: {shown}");
    assert!(
        shown.contains("state/newsdesk.db: warning: the database can be read by other users (mode 644)"),
        "{shown}"
    );
    assert!(shown.contains("= help: run `chmod 600 state/newsdesk.db`"), "{shown}");
    assert!(shown.contains("state/newsdesk.db.sent-journal: warning:"), "{shown}");
    assert!(shown.contains("= help: run `chmod 600 state/newsdesk.db.sent-journal`"), "{shown}");
    let strict = list.site.run(&["check", "--strict"]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
}

#[test]
fn a_subscriber_is_told_they_subscribed_to_the_newsletter_not_the_list_address() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 2, "");
    let out = list.send(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    for m in &messages {
        let parsed = mail_parser::MessageParser::default().parse(&m.data).unwrap();
        let txt = parsed.body_text(0).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
        let html = parsed.body_html(0).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
        for part in [&txt, &html] {
            assert!(
                part.contains("You receive this email because you subscribed to Last Week in Kubernetes Development."),
                "{part}"
            );
            assert!(!part.contains("because you subscribed to lwkd@example.org"), "{part}");
        }
    }
}

#[test]
fn a_send_where_every_row_failed_says_so_instead_of_all_0_sent() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 3, "");
    server.faults(|f| {
        for i in 0..3 {
            f.reject.insert(address(i), (550, "5.1.1 <mailbox> unknown".into()));
        }
    });
    let first = list.send(&[]);
    assert!(first.status.success(), "only permanent failures: nothing to retry: {}", text(&first));
    assert_eq!(list.states()["failed_permanent"], 3);
    let again = list.send(&[]);
    assert!(again.status.success(), "{}", text(&again));
    let shown = text(&again);
    assert!(!shown.contains("already went to all"), "{shown}");
    assert!(
        shown.contains(
            "nothing to send: every subscriber of this issue's send has been tried: 0 sent, 3 failed (see `newsdesk status`, retry with --retry-failed)"
        ),
        "{shown}"
    );
}
