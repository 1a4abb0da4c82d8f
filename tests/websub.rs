//! `build --ping` against a real HTTP server on 127.0.0.1 standing in for a WebSub hub:
//! one form-encoded `hub.mode=publish` POST per feed after the feeds are written,
//! retried when the hub is unavailable, and a clear error when it refuses.

mod support;

use std::sync::{Arc, Mutex};
use support::{Site, text};

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    content_type: String,
    body: String,
}

/// A hub on a free port: answers each request with the next of `statuses` (the last one
/// repeated) and records what it got.
fn hub(statuses: Vec<u16>) -> (u16, Arc<Mutex<Vec<Request>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (record, statuses) = (seen.clone(), Arc::new(statuses));
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (record, statuses) = (record.clone(), statuses.clone());
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
            let mut seen = record.lock().unwrap();
            seen.push(Request {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                content_type: parts
                    .headers
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
            let status = statuses.get(seen.len() - 1).or(statuses.last()).copied().unwrap_or(204);
            axum::http::StatusCode::from_u16(status).unwrap()
        }
    });
    (support::http::serve(app), seen)
}

fn site_with_hub(port: u16) -> Site {
    let site = Site::new("");
    let config = std::fs::read_to_string(site.path("config.toml")).unwrap();
    let config = config.replacen("[feeds]\n", &format!("[feeds]\nhub = \"http://127.0.0.1:{port}/publish\"\n"), 1);
    std::fs::write(site.path("config.toml"), config).unwrap();
    site
}

#[test]
fn each_feed_is_announced_after_it_is_written_and_a_busy_hub_is_tried_again() {
    // The first answer is 503 (busy): that feed is tried again.
    let (port, seen) = hub(vec![503, 204]);
    let site = site_with_hub(port);
    let out = site.run(&["build", "--ping", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pinged = json["pinged"].as_array().unwrap();
    let feeds: Vec<&str> = pinged.iter().map(|p| p["feed"].as_str().unwrap()).collect();
    assert_eq!(feeds, ["https://lwkd.info/feed.xml", "https://lwkd.info/rss.xml", "https://lwkd.info/feed.json"]);
    assert_eq!(pinged[0]["attempts"], 2, "{json:#}");
    assert_eq!(pinged[1]["attempts"], 1);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:#?}");
    for r in &seen {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/publish"));
        assert_eq!(r.content_type, "application/x-www-form-urlencoded");
    }
    assert_eq!(seen[0].body, "hub.mode=publish&hub.url=https%3A%2F%2Flwkd.info%2Ffeed.xml");
    assert_eq!(seen[3].body, "hub.mode=publish&hub.url=https%3A%2F%2Flwkd.info%2Ffeed.json");
    // The feeds were on disk before the hub heard of them, and link the hub.
    let atom = std::fs::read_to_string(site.path("_site/feed.xml")).unwrap();
    assert!(atom.contains(&format!("href=\"http://127.0.0.1:{port}/publish\"")), "{atom:.400}");
}

#[test]
fn a_hub_that_refuses_is_a_clear_error_and_the_feeds_stay_written() {
    let (port, seen) = hub(vec![400]);
    let site = site_with_hub(port);
    let out = site.run(&["build", "--ping"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!(
            "the WebSub hub http://127.0.0.1:{port}/publish was not told about https://lwkd.info/feed.xml (1 attempt): the hub refused it with HTTP 400"
        )),
        "{t}"
    );
    assert!(t.contains("wrote "), "{t}");
    assert!(site.path("_site/feed.xml").exists());
    assert_eq!(seen.lock().unwrap().len(), 1, "a 400 is not retried, and the other feeds wait");
    // Without a hub, --ping says what to set.
    let plain = Site::new("");
    let out = plain.run(&["build", "--ping"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--ping needs a WebSub hub, and `[feeds] hub` is not set"), "{}", text(&out));
}

#[test]
fn a_hub_busy_at_every_try_is_given_up_after_three() {
    let (port, seen) = hub(vec![503]);
    let site = site_with_hub(port);
    let out = site.run(&["build", "--ping"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!(
            "the WebSub hub http://127.0.0.1:{port}/publish was not told about https://lwkd.info/feed.xml (3 attempts): "
        )),
        "{t}"
    );
    assert!(t.contains("503"), "{t}");
    assert_eq!(seen.lock().unwrap().len(), 3, "three tries of the first feed, then it stops");
}
