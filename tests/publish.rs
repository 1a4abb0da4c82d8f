//! Publication day end to end, with real parts: `new` → edit → `publish --yes` on the
//! bundled site, sending to the socket SMTP test server and pinging a WebSub hub on
//! 127.0.0.1; a hub that refuses stops the run after the send, and the next run goes on
//! from the ping without sending again.

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

#[test]
fn new_edit_publish_and_an_interrupted_publish_goes_on_without_sending_twice() {
    let server = SmtpServer::start();
    // The first ping is refused: the run stops after the send.
    let (hub_port, pings) = hub(vec![400, 204]);
    let site = Site::new(&mail_config(server.port()));
    let config = std::fs::read_to_string(site.path("config.toml")).unwrap();
    let config = config.replacen("[feeds]\n", &format!("[feeds]\nhub = \"http://127.0.0.1:{hub_port}/\"\n"), 1);
    std::fs::write(site.path("config.toml"), format!("{config}\n[social]\nhashtags = [\"#kubernetes\"]\n")).unwrap();

    // `new` for the week that ended on Sunday 2026-11-29 (it went out on Thursday the 3rd).
    let out = site.run(&["new", "--date", "2026-11-25"]);
    assert!(out.status.success(), "{}", text(&out));
    let path = site.path("posts/2026-11-29-update.md");
    // The editor's week: the Featured PRs.
    let post = std::fs::read_to_string(&path).unwrap().replace(
        "## Featured PRs\n",
        "## Featured PRs\n\n### [134567: Steering candidates selected](https://github.com/kubernetes/kubernetes/pull/134567)\n\nText.\n\n### [134568: CPU manager](https://github.com/kubernetes/kubernetes/pull/134568)\n\nText.\n",
    );
    std::fs::write(&path, post).unwrap();

    let out = site.run(&["publish", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("stopped at `ping`"), "{t}");
    let messages = server.messages();
    assert_eq!(messages.len(), 1, "the list got the issue once");
    assert_eq!(messages[0].to, ["kubernetes-dev@example.org"]);
    let body = String::from_utf8_lossy(&messages[0].data).to_string();
    assert!(body.contains("Subject: LWKD: Week Ending November 29, 2026"), "{body:.600}");
    assert!(site.path("_site/feed.xml").exists() && site.path("_preview/message.eml").exists());

    // Again: check, build and send are done; the ping goes through; the texts come out.
    let out = site.run(&["publish", "--yes", "--format", "json"]);
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
    // A third run has nothing left to do but print the texts.
    let out = site.run(&["publish", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Week ending November 29:"), "{}", text(&out));
    assert_eq!(server.messages().len(), 1);
    assert_eq!(pings.lock().unwrap().len(), 4);
}

#[test]
fn without_yes_and_a_terminal_nothing_is_sent() {
    let server = SmtpServer::start();
    let site = Site::new(&mail_config(server.port()));
    let out = site.run(&["publish"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("not confirmed: nothing was sent"), "{}", text(&out));
    assert_eq!(server.count(), 0);
    assert!(site.path("_site/feed.xml").exists(), "the steps before the send are done");
}
