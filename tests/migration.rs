//! The schema-5 migration (one ledger) on a database written by the release before it
//! (`tests/fixtures/newsdesk-schema4.db`, see tests/fixtures/README.md): every row is
//! kept, in the one state vocabulary and clock format, and the commands read it.

mod support;

use support::{Site, mail_config, smtp::SmtpServer, text};

const NEWEST: &str = "https://lwkd.info/2020/2020-05-10-update";
const OLDER: &str = "https://lwkd.info/2020/2020-05-03-update";
const UNFINISHED: &str = "https://lwkd.info/2020/2020-04-19-update";

fn migrated_site(port: u16) -> Site {
    let site = Site::new(&mail_config(port));
    std::fs::create_dir_all(site.path(".newsdesk")).unwrap();
    std::fs::copy(support::repo().join("tests/fixtures/newsdesk-schema4.db"), site.path(".newsdesk/newsdesk.db"))
        .unwrap();
    site
}

fn rows(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Option<String>>(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_one_ledger_keeps_every_row_of_both_old_ledgers() {
    let site = migrated_site(9);
    let conn = newsdesk::store::db::open(&site.path(".newsdesk/newsdesk.db")).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 7);
    let tables = rows(&conn, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    assert!(!tables.iter().any(|t| t[0].as_deref() == Some("list_sends")), "{tables:?}");
    for new in ["confirmations", "confirmation_mails", "bounces"] {
        assert!(tables.iter().any(|t| t[0].as_deref() == Some(new)), "steps 6 and 7 add {new}: {tables:?}");
    }

    // The subscribers, untouched by step 7's rebuild of their table (ids included, which
    // the deliveries below point to), and nobody suppressed.
    let subs = rows(&conn, "SELECT email, status, suppressed_reason FROM subscribers ORDER BY id");
    assert_eq!(subs.len(), 5);
    assert_eq!(subs[4], [Some("bob@example.org".into()), Some("unsubscribed".into()), None]);
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 1, "foreign keys are back on after the rebuild");
    let dangling: i64 = conn
        .query_row("SELECT COUNT(*) FROM deliveries WHERE subscriber_id NOT IN (SELECT id FROM subscribers)", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(dangling, 0);

    // Subscriber deliveries: as they were.
    let subscriber =
        rows(&conn, "SELECT issue, email, state, reply FROM deliveries WHERE kind = 'subscriber' ORDER BY id");
    assert_eq!(subscriber.len(), 8);
    let state_of = |issue: &str, email: &str| {
        subscriber
            .iter()
            .find(|r| r[0].as_deref() == Some(issue) && r[1].as_deref() == Some(email))
            .and_then(|r| r[2].clone())
    };
    assert_eq!(state_of(NEWEST, "ada@example.org").as_deref(), Some("sent"));
    assert_eq!(state_of(NEWEST, "gone@example.org").as_deref(), Some("failed_permanent"));
    assert_eq!(state_of(OLDER, "lin@example.org").as_deref(), Some("pending"));

    // List sends: one row and one run each, the forced resend kept as history.
    let newest = newsdesk::store::ledger::list::history(&conn, NEWEST).unwrap();
    assert_eq!(newest.len(), 2);
    assert!(
        newest.iter().all(|s| s.status == newsdesk::store::ledger::list::ListStatus::Sent
            && s.server_reply.as_deref() == Some("250 OK"))
    );
    assert_eq!(newest[0].destination, "kubernetes-dev@example.org");
    assert_eq!(newest[0].subject, "LWKD: Week Ending May 10, 2020");
    assert_eq!(newest[0].message_id, "<2020-05-10-update.67573e090458@example.org>");
    // The one clock format: milliseconds and `Z`.
    for t in [&newest[0].started_at, newest[0].sent_at.as_ref().unwrap()] {
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok() && t.ends_with(".000Z"), "{t}");
    }
    let older = newsdesk::store::ledger::list::history(&conn, OLDER).unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].state, newsdesk::store::ledger::State::FailedTemporary, "a refused connection");
    assert_eq!(newsdesk::store::ledger::list::blocking_send(&conn, OLDER, "kubernetes-dev@example.org").unwrap(), None);
    let unfinished =
        newsdesk::store::ledger::list::blocking_send(&conn, UNFINISHED, "kubernetes-dev@example.org").unwrap();
    assert_eq!(unfinished.map(|s| s.status), Some(newsdesk::store::ledger::list::ListStatus::Sending));
    let runs: i64 = conn.query_row("SELECT COUNT(*) FROM delivery_runs WHERE kind = 'list'", [], |r| r.get(0)).unwrap();
    assert_eq!(runs, 4);
}

#[test]
fn status_and_send_read_the_migrated_ledger() {
    let server = SmtpServer::start();
    let site = migrated_site(server.port());
    let status = site.run(&["status"]);
    let shown = text(&status);
    assert!(status.status.success(), "{shown}");
    assert!(shown.contains("list sends:"), "{shown}");
    assert!(shown.contains("2020-04-19-update  to kubernetes-dev@example.org  unknown"), "{shown}");
    assert!(shown.contains("550 5.1.1 <gone@example.org>: no such user"), "{shown}");
    let json = site.run(&["status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["list_sends"].as_array().unwrap().len(), 4);
    assert_eq!(v["issues"].as_array().unwrap().len(), 2);
    // The newest issue went to the list: a second send is refused, nothing connects.
    let again = site.run(&["send", "--yes"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("already sent to kubernetes-dev@example.org"), "{}", text(&again));
    assert_eq!(server.connections(), 0);
    // The unfinished one blocks until forced.
    let unfinished = site.run(&["send", "--yes", "--post", "2020-04-19-update"]);
    assert_eq!(unfinished.status.code(), Some(1), "{}", text(&unfinished));
    assert_eq!(server.connections(), 0);
    // The older one failed: it may be sent.
    let older = site.run(&["send", "--yes", "--post", "2020-05-03-update"]);
    assert!(older.status.success(), "{}", text(&older));
    assert_eq!(server.count(), 1);
}
