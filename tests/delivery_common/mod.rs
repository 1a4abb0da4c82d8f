//! Shared by tests/delivery*.rs and tests/crash*.rs: the bundled site configured for
//! subscriber sends to a test SMTP server, a list of N subscribers, and the ledger read
//! back through SQLite.

#![allow(dead_code)]

use crate::support::{self, Site};
use std::collections::HashMap;
use std::path::PathBuf;

/// `[email]`, `[smtp]` and `[subscribers]` for the test server on `port`; `smtp_extra`
/// lines are added under `[smtp]`.
pub fn config(port: u16, smtp_extra: &str) -> String {
    format!(
        r#"
[email]
from = "LWKD <lwkd@example.org>"
reply_to = "lwkd@example.org"
templates = "email-templates"
list_id = "LWKD <lwkd.example.org>"

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout_secs = 5
{smtp_extra}

[subscribers]
database = "state/newsdesk.db"
unsubscribe_url = "https://lwkd.example.org/unsubscribe/{{token}}"
"#
    )
}

/// A site with `n` subscribers `s0000@example.org` ... named `Subscriber N`.
pub struct ListSite {
    pub site: Site,
    pub n: usize,
}

impl ListSite {
    /// Starts `newsdesk send --subscribers --yes` in the background (output piped), for
    /// tests that act on the server or the process while the send runs.
    pub fn spawn_send(&self) -> std::process::Child {
        self.site.spawn(&["send", "--subscribers", "--yes"])
    }
}

pub fn address(i: usize) -> String {
    format!("s{i:04}@example.org")
}

impl ListSite {
    pub fn new(port: u16, n: usize, smtp_extra: &str) -> ListSite {
        let site = Site::new(&config(port, smtp_extra));
        // A greeting by name: the templates' `subscriber.name` is per recipient.
        let txt = site.path("email-templates/digest.txt");
        let body = std::fs::read_to_string(&txt).unwrap();
        std::fs::write(&txt, format!("Hello {{{{ subscriber.name }}}},\n\n{body}")).unwrap();
        let mut csv = String::from("email,name\n");
        for i in 0..n {
            csv.push_str(&format!("{},Subscriber {i}\n", address(i)));
        }
        std::fs::write(site.path("list.csv"), csv).unwrap();
        let out = site.run(&["subscribers", "import", "list.csv"]);
        assert!(out.status.success(), "{}", support::text(&out));
        ListSite { site, n }
    }

    pub fn db_path(&self) -> PathBuf {
        self.site.path("state/newsdesk.db")
    }

    pub fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.db_path()).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c
    }

    /// `send --subscribers --yes` plus `args`.
    pub fn send(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["send", "--subscribers", "--yes"];
        all.extend_from_slice(args);
        self.site.run(&all)
    }

    /// The ledger: address → (state, attempts, reply, message_id).
    pub fn ledger(&self) -> HashMap<String, Row> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT email, state, attempts, reply, message_id, next_retry_at FROM deliveries ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Row {
                    state: r.get(1)?,
                    attempts: r.get(2)?,
                    reply: r.get(3)?,
                    message_id: r.get(4)?,
                    next_retry_at: r.get(5)?,
                },
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    pub fn token(&self, email: &str) -> String {
        self.db().query_row("SELECT token FROM subscribers WHERE email = ?1", [email], |r| r.get(0)).unwrap()
    }

    pub fn tokens(&self) -> HashMap<String, String> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT email, token FROM subscribers").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    }

    /// Rows per state.
    pub fn states(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for r in self.ledger().values() {
            *m.entry(r.state.clone()).or_insert(0) += 1;
        }
        m
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub state: String,
    pub attempts: i64,
    pub reply: Option<String>,
    pub message_id: Option<String>,
    pub next_retry_at: Option<String>,
}

/// The header `name` of a raw message, parsed with mail-parser.
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let m = mail_parser::MessageParser::default().parse(raw)?;
    m.header_raw(name).map(|v| v.trim().to_string())
}

/// Waits (up to 60 s) until `cond` holds.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

impl ListSite {
    /// `email`'s row in the subscriber list: `active` or `unsubscribed`.
    pub fn status_of(&self, email: &str) -> String {
        self.db().query_row("SELECT status FROM subscribers WHERE email = ?1", [email], |r| r.get(0)).unwrap()
    }
}

/// What [`start_serve`] started: the child, its address, and its stderr past the first
/// line (keep it until the child ends: a closed pipe would fail its last message).
pub struct Serving {
    pub child: std::process::Child,
    pub addr: String,
    pub stderr: std::io::BufReader<std::process::ChildStderr>,
}

/// Starts `newsdesk serve ARGS` for `site` and reads the address from its first line.
pub fn start_serve(site: &Site, args: &[&str]) -> Serving {
    use std::io::BufRead;
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let mut child = site.spawn(&all);
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_else(|| panic!("{line:?}"));
    Serving { child, addr: addr.to_string(), stderr }
}

/// A site whose unsubscribe link comes from `[web] public_url` (no `unsubscribe_url`),
/// with `web` as the `[web]` section.
pub fn web_config(port: u16, web: &str) -> Site {
    let config = config(port, "connections = 1")
        .replace("unsubscribe_url = \"https://lwkd.example.org/unsubscribe/{token}\"\n", "");
    Site::new(&format!("{config}\n[web]\n{web}\n"))
}

/// [`web_config`] with one subscriber, `reader@example.org`.
pub fn web_site(port: u16, web: &str) -> Site {
    let site = web_config(port, web);
    std::fs::write(site.path("list.csv"), "email\nreader@example.org\n").unwrap();
    let out = site.run(&["subscribers", "import", "list.csv"]);
    assert!(out.status.success(), "{}", support::text(&out));
    site
}
