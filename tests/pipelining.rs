//! Pipelining (RFC 2920) against the test SMTP server, which offers PIPELINING unless
//! told not to and counts the MAIL commands that arrived with the rest of their
//! envelope already behind them. Each message's MAIL, RCPT and DATA go out in one
//! write; every reply is still checked: a refused RCPT inside the group fails that
//! subscriber only and the connection goes on, a `421` half-way is temporary and the
//! message is sent on a new connection, and a server without PIPELINING gets the
//! lock-step exchange. Across messages, each body's final `.` goes out with the next
//! message's envelope (one round trip per message); a connection dropped inside such a
//! write leaves only the message whose body it carried unknown.

mod delivery_common;
mod support;

use delivery_common::{ListSite, address};
use support::smtp::SmtpServer;
use support::text;

fn send(list: &ListSite) {
    let out = list.send(&[]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn each_envelope_goes_out_in_one_write_when_the_server_pipelines() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 20, "connections = 2");
    send(&list);
    assert_eq!(server.count(), 20);
    let applied = server.applied();
    assert_eq!((applied.pipelined, applied.lockstep), (20, 0), "{applied:?}");
    assert!(server.per_recipient().values().all(|n| *n == 1));
}

#[test]
fn each_body_goes_out_with_the_next_envelope() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 60, "connections = 2");
    send(&list);
    assert_eq!(server.count(), 60);
    assert!(server.per_recipient().values().all(|n| *n == 1));
    let applied = server.applied();
    // Every message but each connection's first can ride behind the previous body; a
    // few go alone when a worker's claimed rows run out (the body is not held back
    // waiting for rows). Without cross-message pipelining this is 0.
    assert!(applied.after_body >= 40, "{applied:?}");
    assert_eq!(applied.pipelined, 60, "{applied:?}");
}

#[test]
fn a_connection_cut_inside_a_body_leaves_that_message_unknown_and_the_next_one_goes_again() {
    let server = SmtpServer::start();
    server.faults(|f| {
        f.cut.insert(address(4), 1);
    });
    let list = ListSite::new(server.port(), 12, "connections = 1\nretry_delay_secs = 0.01");
    let out = list.send(&[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "the unknown row is left open: {t}");
    let per = server.per_recipient();
    let ledger = list.ledger();
    // The cut message: whole on the wire, no reply, so unknown (never resent in the run).
    assert_eq!(ledger[&address(4)].state, "sending", "{t}");
    assert_eq!(per.get(&address(4)), None);
    // The envelope written behind it was never answered: sent later, once, and not
    // counted as an attempt.
    for i in (0..12).filter(|i| *i != 4) {
        let row = &ledger[&address(i)];
        assert_eq!((row.state.as_str(), per.get(&address(i))), ("sent", Some(&1)), "{}: {row:?}", address(i));
        assert_eq!(row.attempts, 1, "{}: {row:?}", address(i));
    }
    assert!(server.applied().after_body > 0, "{:?}", server.applied());
    assert!(t.contains("1 message(s) went out whole but no reply came"), "{t}");
}

#[test]
fn a_server_without_pipelining_gets_one_command_at_a_time() {
    let server = SmtpServer::start();
    server.faults(|f| f.no_pipelining = true);
    let list = ListSite::new(server.port(), 12, "connections = 2");
    send(&list);
    assert_eq!(server.count(), 12);
    let applied = server.applied();
    assert_eq!((applied.pipelined, applied.lockstep, applied.after_body), (0, 12, 0), "{applied:?}");
}

#[test]
fn a_recipient_refused_inside_the_group_fails_alone_and_the_connection_goes_on() {
    let server = SmtpServer::start();
    server.faults(|f| {
        f.reject.insert(address(3), (550, "5.1.1 <s0003@example.org>: Recipient address rejected".into()));
    });
    let list = ListSite::new(server.port(), 10, "connections = 1");
    let out = list.send(&[]);
    let t = text(&out);
    let ledger = list.ledger();
    assert_eq!(ledger[&address(3)].state, "failed_permanent", "{t}");
    assert!(ledger[&address(3)].reply.as_deref().unwrap_or("").contains("550"), "{:?}", ledger[&address(3)]);
    for i in (0..10).filter(|i| *i != 3) {
        assert_eq!(ledger[&address(i)].state, "sent", "{}: {t}", address(i));
    }
    assert_eq!(server.count(), 9);
    assert_eq!(server.connections(), 1, "the refusal did not cost the connection");
    assert_eq!(server.applied().pipelined, 10);
}

#[test]
fn a_421_half_way_is_temporary_and_the_message_goes_on_a_new_connection() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 8, "connections = 1\nretry_delay_secs = 0.01");
    server.faults(|f| f.busy = 2);
    send(&list);
    assert_eq!(server.applied().busy, 2);
    let per = server.per_recipient();
    assert_eq!(per.len(), 8);
    assert!(per.values().all(|n| *n == 1), "nobody twice: {per:?}");
    assert!(list.ledger().values().all(|r| r.state == "sent"));
    assert!(server.connections() >= 3, "each 421 closed its connection");
}

#[test]
fn a_refused_sender_stops_the_send_and_fails_nobody() {
    for pipelining in [true, false] {
        let server = SmtpServer::start();
        server.faults(|f| {
            f.refuse_sender =
                Some((553, "5.7.1 <lwkd@example.org>: Sender address rejected: not owned by user".into()));
            f.no_pipelining = !pipelining;
        });
        let list = ListSite::new(server.port(), 30, "connections = 2");
        let out = list.send(&[]);
        let t = text(&out);
        assert!(!out.status.success(), "{t}");
        assert!(t.contains("refused the sender: 553 5.7.1"), "{t}");
        assert_eq!(server.count(), 0);
        let ledger = list.ledger();
        assert!(
            ledger.values().all(|r| r.state == "pending" || r.state == "failed_temporary"),
            "pipelining {pipelining}: nobody is failed for good: {:?}",
            ledger.values().map(|r| r.state.as_str()).collect::<std::collections::BTreeSet<_>>()
        );
        // Fixed on the server: the same send goes through.
        server.faults(|f| f.refuse_sender = None);
        let out = list.send(&[]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(server.count(), 30);
    }
}
