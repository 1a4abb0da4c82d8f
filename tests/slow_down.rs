//! The sender slows down when the relay asks (src/delivery/pace.rs): throttling
//! replies and "too many connections" cost no attempt, the send goes on with fewer
//! connections and a lower rate, everyone is mailed exactly once, and the summary says
//! how often and why.

mod delivery_common;
mod support;

use delivery_common::{ListSite, address};
use support::smtp::SmtpServer;
use support::text;

#[test]
fn throttling_replies_slow_the_send_down_without_costing_attempts() {
    let server = SmtpServer::start();
    // Six 454s with one try per row: were they counted, six rows would fail.
    server.faults(|f| f.throttle = 6);
    let list = ListSite::new(server.port(), 20, "connections = 2\nmax_attempts = 1\nretry_delay_secs = 0.01");
    let out = list.send(&[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(server.applied().throttled, 6);
    assert_eq!(server.count(), 20);
    assert!(server.per_recipient().values().all(|n| *n == 1), "nobody twice");
    assert!(list.ledger().values().all(|r| r.state == "sent"), "{t}");
    assert!(
        t.contains("the server asked newsdesk to slow down 6 time(s)")
            && t.contains("6× \"454 4.7.0 Throttling failure: Maximum sending rate exceeded.\"")
            && t.contains("down to 1 connection(s)"),
        "{t}"
    );
    assert!(!t.contains("failed:"), "no failure reported: {t}");
}

#[test]
fn too_many_connections_means_fewer_connections_not_failures() {
    let server = SmtpServer::start();
    server.faults(|f| f.max_connections = Some(2));
    let list = ListSite::new(server.port(), 40, "connections = 6\nmax_attempts = 2\nretry_delay_secs = 0.01");
    let out = list.send(&["--format", "json"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(server.applied().turned_away > 0, "the limit was met: {:?}", server.applied());
    let per = server.per_recipient();
    for i in 0..40 {
        assert_eq!(per.get(&address(i)), Some(&1), "{}: {t}", address(i));
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary on stdout");
    let slow = &json["summary"]["slow_downs"];
    assert!(slow["count"].as_u64().unwrap_or(0) > 0, "{json}");
    assert!(slow["replies"]["421 4.7.0 Too many connections from your host"].as_u64().unwrap_or(0) > 0, "{json}");
    assert!(slow["fewest_connections"].as_u64().unwrap() <= 3, "{json}");
}

#[test]
fn other_temporary_replies_still_count_as_attempts() {
    // A 451 is this message's problem, not the relay's load: retried up to
    // max_attempts and then left failed_temporary, with no slow-down.
    let server = SmtpServer::start();
    server.faults(|f| {
        f.defer.insert(address(2), 100);
    });
    let list = ListSite::new(server.port(), 5, "connections = 1\nmax_attempts = 2\nretry_delay_secs = 0.01");
    let out = list.send(&[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let row = &list.ledger()[&address(2)];
    assert_eq!((row.state.as_str(), row.attempts), ("failed_temporary", 2), "{row:?}");
    assert!(!t.contains("slow down"), "{t}");
}
