//! Publication day end to end, with real parts: `new` → edit → `publish --yes` on the
//! bundled site, sending to the socket SMTP test server and pinging a WebSub hub on
//! 127.0.0.1; a hub that refuses stops the run after the send, and the next run goes on
//! from the ping without sending again. The clock is `NEWSDESK_NOW`: Thursday
//! 2026-12-03 at 15:00, seven hours before the issue `new` dates for that night.

mod support;

use std::sync::{Arc, Mutex};
use support::smtp::SmtpServer;
use support::{Site, mail_config, text};

/// A hub answering the n-th request with `statuses[n]` (the last one repeated); the
/// bodies it got.
fn hub(statuses: Vec<u16>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (record, statuses) = (seen.clone(), Arc::new(statuses));
    let app = axum::Router::new().fallback(move |body: String| {
        let (record, statuses) = (record.clone(), statuses.clone());
        async move {
            let mut seen = record.lock().unwrap();
            seen.push(body);
            let status = statuses.get(seen.len() - 1).or(statuses.last()).copied().unwrap_or(204);
            axum::http::StatusCode::from_u16(status).unwrap()
        }
    });
    (support::http::serve(app), seen)
}

/// Publication day's afternoon, before the issue's own time (22:00).
const THURSDAY: &str = "2026-12-03T15:00:00+00:00";

fn run_at(site: &Site, now: &str, args: &[&str]) -> std::process::Output {
    site.run_env(args, &[("NEWSDESK_NOW", now)])
}

#[test]
fn new_edit_publish_and_an_interrupted_publish_goes_on_without_sending_twice() {
    let server = SmtpServer::start();
    // The first ping is refused: the run stops after the send.
    let (hub_port, pings) = hub(vec![400, 204]);
    let site = Site::new(&mail_config(server.port()));
    let config = std::fs::read_to_string(site.path("config.toml")).unwrap();
    let config = config.replacen("[feeds]\n", &format!("[feeds]\nhub = \"http://127.0.0.1:{hub_port}/\"\n"), 1);
    std::fs::write(site.path("config.toml"), format!("{config}\n[social]\nhashtags = [\"#kubernetes\"]\n")).unwrap();

    // `new` on Tuesday: the week that ended on Sunday 2026-11-29, out on Thursday the 3rd.
    let out = run_at(&site, "2026-12-01T09:00:00+00:00", &["new"]);
    assert!(out.status.success(), "{}", text(&out));
    let path = site.path("posts/2026-11-29-update.md");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "posts/2026-11-29-update.md");
    // The editor's week: the Featured PRs.
    let post = std::fs::read_to_string(&path).unwrap().replace(
        "## Featured PRs\n",
        "## Featured PRs\n\n### [134567: Steering candidates selected](https://github.com/kubernetes/kubernetes/pull/134567)\n\nText.\n\n### [134568: CPU manager](https://github.com/kubernetes/kubernetes/pull/134568)\n\nText.\n",
    );
    std::fs::write(&path, post).unwrap();
    // Next week's scaffold exists already: it is not today's issue.
    let out = run_at(&site, THURSDAY, &["new", "--date", "2026-12-06"]);
    assert!(out.status.success(), "{}", text(&out));

    // Thursday afternoon: the issue dated 22:00 tonight is the one published, early.
    let out = run_at(&site, THURSDAY, &["publish", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("goes out early: it is dated 2026-12-03 22:00 +0000, 7 hours from now"), "{t}");
    assert!(t.contains("stopped at `ping`"), "{t}");
    let messages = server.messages();
    assert_eq!(messages.len(), 1, "the list got the issue once");
    assert_eq!(messages[0].to, ["kubernetes-dev@example.org"]);
    let body = String::from_utf8_lossy(&messages[0].data).to_string();
    assert!(body.contains("Subject: LWKD: Week Ending November 29, 2026"), "{body:.600}");
    assert!(site.path("_preview/message.eml").exists());
    // The feeds have the issue (as of its own date) and not next week's.
    let feed = std::fs::read_to_string(site.path("_site/feed.json")).unwrap();
    assert!(feed.contains("Week Ending November 29, 2026"), "{feed:.400}");
    assert!(!feed.contains("December 6, 2026"), "next week's issue is not published");

    // Again: check, build and send are done; the ping goes through; the texts come out.
    let out = run_at(&site, THURSDAY, &["publish", "--yes", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps: Vec<(String, bool)> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap().to_string(), s["earlier"].as_bool().unwrap()))
        .collect();
    let expect: Vec<(String, bool)> =
        [("check", true), ("build", true), ("preview", true), ("send", true), ("ping", false), ("social", false)]
            .into_iter()
            .map(|(s, e)| (s.to_string(), e))
            .collect();
    assert_eq!(steps, expect, "{json:#}");
    assert_eq!(server.messages().len(), 1, "never sent twice");
    assert_eq!(pings.lock().unwrap().len(), 1 + 3, "the refused ping, then one per feed");
    let bluesky = json["social"]["bluesky"]["text"].as_str().unwrap();
    assert_eq!(
        bluesky,
        "Week ending November 29: Steering candidates selected, CPU manager\n\nhttps://lwkd.info/2026/20261203\n\n#kubernetes"
    );
    // A third run, the next day, has nothing left to do but print the texts.
    let out = run_at(&site, "2026-12-04T09:00:00+00:00", &["publish", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Week ending November 29:"), "{}", text(&out));
    assert_eq!(server.messages().len(), 1);
    assert_eq!(pings.lock().unwrap().len(), 4);

    // The timestamp updated after the send (publishing.md, step 3): the issue's id is its
    // slug here (`[feeds] id = "jekyll"`), so it is the same issue, already done.
    let post =
        std::fs::read_to_string(&path).unwrap().replace("date: 2026-12-03 22:00:00", "date: 2026-12-03 21:00:00");
    std::fs::write(&path, post).unwrap();
    let out = run_at(&site, "2026-12-04T09:00:00+00:00", &["publish", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.messages().len(), 1);
    // A slug changed after the send gives the issue another id: publish refuses instead
    // of sending it again as a new issue.
    let post = std::fs::read_to_string(&path).unwrap().replace("slug: 2026-11-29-update", "slug: 2026-11-30-update");
    std::fs::write(&path, post).unwrap();
    let out = run_at(&site, "2026-12-04T09:00:00+00:00", &["publish", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("this file was published as"), "{}", text(&out));
    assert!(text(&out).contains("its date or slug changed since"), "{}", text(&out));
    assert_eq!(server.messages().len(), 1, "not sent again");
}

#[test]
fn without_yes_and_a_terminal_nothing_is_sent_and_an_edit_before_the_send_reaches_the_feeds() {
    let server = SmtpServer::start();
    let site = Site::new(&mail_config(server.port()));
    let out = run_at(&site, "2026-12-01T09:00:00+00:00", &["new"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run_at(&site, THURSDAY, &["publish"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("not confirmed: nothing was sent"), "{}", text(&out));
    assert_eq!(server.count(), 0);
    let feed = std::fs::read_to_string(site.path("_site/feed.xml")).unwrap();
    assert!(feed.contains("Week Ending November 29, 2026"), "the steps before the send are done");
    // The editor fixes the issue, then confirms: the feeds and the mail both have the fix.
    let path = site.path("posts/2026-11-29-update.md");
    let post =
        std::fs::read_to_string(&path).unwrap().replace("## Developer News\n", "## Developer News\n\nA late fix.\n");
    std::fs::write(&path, post).unwrap();
    let out = run_at(&site, THURSDAY, &["publish", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let feed = std::fs::read_to_string(site.path("_site/feed.xml")).unwrap();
    assert!(feed.contains("A late fix."), "the feed was built again");
    assert_eq!(server.count(), 1);
    assert!(String::from_utf8_lossy(&server.messages()[0].data).contains("A late fix."));
}

#[test]
fn an_issue_that_check_fails_is_not_sent() {
    let server = SmtpServer::start();
    let site = Site::new(&mail_config(server.port()));
    // A key file that is no key: the message cannot be signed.
    let config = std::fs::read_to_string(site.path("config.toml")).unwrap();
    std::fs::write(
        site.path("config.toml"),
        format!("{config}\n[email.dkim]\ndomain = \"example.org\"\nselector = \"s1\"\nkey_file = \"dkim.pem\"\n"),
    )
    .unwrap();
    std::fs::write(site.path("dkim.pem"), "not a key").unwrap();
    let out = run_at(&site, THURSDAY, &["publish", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("stopped at `check`"), "{}", text(&out));
    assert_eq!(server.count(), 0);
}
