//! `[email] transport = "buttondown"`: `send` hands the issue to a local HTTP server that
//! checks each request against Buttondown's API documentation (version 2026-04-01:
//! `POST /v1/emails` with `Authorization: Token KEY`, `X-API-Version`, a JSON body of
//! subject, body and status; `PATCH /v1/emails/{id}` to send a draft). A draft by
//! default, one per issue, `--publish` to send it; the key never printed.

mod support;

use std::sync::{Arc, Mutex};
use support::{Site, text};

const KEY: &str = "bd-test-key-0123456789";

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    json: serde_json::Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn buttondown() -> (u16, Arc<Mutex<Vec<Seen>>>) {
    buttondown_with(Vec::new())
}

/// The stand-in for Buttondown. `faults` are the answers to the first POSTs, in
/// order: a 5xx after the email was made (the worst case: Buttondown did the work, the
/// answer was lost), a 4xx without making it. Buttondown's `X-Idempotency-Key`: a POST
/// with a key seen before answers with the email that key made.
fn buttondown_with(faults: Vec<u16>) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let state = Arc::new(Mutex::new((faults, Vec::<(String, String)>::new())));
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (record, state) = (record.clone(), state.clone());
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            let s = Seen { method: parts.method.to_string(), path: parts.uri.path().to_string(), headers, json };
            let authorized = s.header("authorization") == Some(&format!("Token {KEY}"));
            let mut state = state.lock().unwrap();
            let (faults, made) = &mut *state;
            let (status, reply) = match (s.method.as_str(), s.path.as_str()) {
                _ if !authorized => (401, serde_json::json!({ "detail": "Invalid token." })),
                ("POST", "/v1/emails") => {
                    let key = s.header("x-idempotency-key").unwrap_or_default().to_string();
                    let fault = if faults.is_empty() { None } else { Some(faults.remove(0)) };
                    if let Some((_, id)) = made.iter().find(|(k, _)| !key.is_empty() && *k == key) {
                        (201, serde_json::json!({ "id": id, "status": s.json["status"] }))
                    } else if s.json["status"] == "about_to_send"
                        && s.header("x-buttondown-live-dangerously") != Some("true")
                    {
                        // 2026-04-01: sending at once needs the confirmation header.
                        (400, serde_json::json!({ "code": "sending_requires_confirmation" }))
                    } else if let Some(code) = fault.filter(|c| *c < 500) {
                        (code, serde_json::json!({ "code": "body_invalid" }))
                    } else {
                        let id = if made.is_empty() { "em_0a1b2c".to_string() } else { format!("em_{}", made.len()) };
                        made.push((key, id.clone()));
                        match fault {
                            Some(code) => (code, serde_json::json!({ "detail": "Bad gateway" })),
                            None => (201, serde_json::json!({ "id": id, "status": s.json["status"] })),
                        }
                    }
                }
                ("PATCH", path) if made.iter().any(|(_, id)| path == format!("/v1/emails/{id}")) => {
                    let id = path.rsplit('/').next().unwrap();
                    (200, serde_json::json!({ "id": id, "status": "about_to_send" }))
                }
                _ => (404, serde_json::json!({ "detail": "Not found." })),
            };
            record.lock().unwrap().push(s);
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                reply.to_string(),
            )
        }
    });
    (support::http::serve(app), seen)
}

fn site_for(port: u16) -> Site {
    Site::new(&format!(
        "
[email]
from = \"LWKD <lwkd@example.org>\"
to = \"kubernetes-dev@example.org\"
transport = \"buttondown\"

[buttondown]
api_key_env = \"BUTTONDOWN_API_KEY\"
api_url = \"http://127.0.0.1:{port}/v1\"
"
    ))
}

#[test]
fn the_issue_becomes_one_draft_then_is_sent() {
    let (port, seen) = buttondown();
    let site = site_for(port);
    let env = [("BUTTONDOWN_API_KEY", KEY)];
    let out = site.run_env(&["send", "--yes"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("made a draft at Buttondown: em_0a1b2c (\"LWKD: Week Ending May 10, 2020\")"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(KEY));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let r = &seen[0];
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/emails"));
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{r:?}");
        assert_eq!(r.header("x-api-version"), Some("2026-04-01"));
        assert_eq!(r.header("x-buttondown-live-dangerously"), None, "a draft needs no confirmation");
        let key = r.header("x-idempotency-key").unwrap_or_default();
        assert!(key.starts_with("newsdesk-") && key.len() == 41, "a fresh idempotency key: {key:?}");
        assert_eq!(r.json["status"], "draft");
        assert_eq!(r.json["subject"], "LWKD: Week Ending May 10, 2020");
        let body = r.json["body"].as_str().unwrap();
        let post = std::fs::read_to_string(site.path("posts/2020-05-10-update.md")).unwrap();
        // The edition's title, then the post's markdown as written, without its front
        // matter (publishing.md: the web header cut, "leaving only the edition date").
        let markdown = body.strip_prefix("# Week Ending May 10, 2020\n\n").expect(body);
        assert!(!markdown.contains("layout: post") && !markdown.starts_with("---"), "no front matter: {body:.200}");
        let after_front_matter = post.splitn(3, "---").nth(2).unwrap().trim_start();
        assert_eq!(markdown, after_front_matter, "the post's markdown as written");
        assert_eq!(r.json.as_object().unwrap().len(), 3, "subject, body and status: {}", r.json);
    }
    // Again: the ledger knows the draft; nothing new is made.
    let out = site.run_env(&["send", "--yes"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("this issue is a Buttondown draft already (em_0a1b2c)"), "{}", text(&out));
    assert_eq!(seen.lock().unwrap().len(), 1);
    // --publish sends that draft.
    let out = site.run_env(&["send", "--yes", "--publish"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Buttondown has the issue as em_0a1b2c (about_to_send)"), "{}", text(&out));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[1].method.as_str(), seen[1].path.as_str()), ("PATCH", "/v1/emails/em_0a1b2c"));
    // The draft is sent as the issue is now: subject and body go with the status.
    assert_eq!(seen[1].json["status"], "about_to_send");
    assert_eq!(seen[1].json["subject"], seen[0].json["subject"]);
    assert_eq!(seen[1].json["body"], seen[0].json["body"]);
    assert_eq!(seen[1].header("x-api-version"), Some("2026-04-01"));
    assert_eq!(seen[1].header("x-buttondown-live-dangerously"), Some("true"));
    // `status` shows the hand-off in the ledger.
    let out = site.run(&["status"]);
    assert!(text(&out).contains("to buttondown"), "{}", text(&out));
}

#[test]
fn publishing_at_once_confirms_and_a_bad_key_is_not_printed() {
    let (port, seen) = buttondown();
    let site = site_for(port);
    let out = site.run_env(&["send", "--yes", "--publish", "--format", "json"], &[("BUTTONDOWN_API_KEY", KEY)]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["buttondown"]["status"], "about_to_send");
    assert_eq!(seen.lock().unwrap()[0].header("x-buttondown-live-dangerously"), Some("true"));

    let other = site_for(port);
    let out = other.run_env(&["send", "--yes"], &[("BUTTONDOWN_API_KEY", "wrong-key-secret")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("Buttondown did not take the issue: Buttondown answered HTTP 401"), "{}", text(&out));
    assert!(!text(&out).contains("wrong-key-secret"), "{}", text(&out));
    let out = other.run(&["send", "--yes"]);
    assert!(
        text(&out).contains(
            "the Buttondown API key is read from the environment variable `BUTTONDOWN_API_KEY`, which is not set"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn publish_hands_the_issue_to_buttondown_to_send() {
    let (port, seen) = buttondown();
    let site = site_for(port);
    let env = [("BUTTONDOWN_API_KEY", KEY)];
    let out = site.run_env(&["publish", "--yes", "--format", "json"], &env);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let send = json["steps"].as_array().unwrap().iter().find(|s| s["step"] == "send").unwrap().clone();
    assert_eq!(send["detail"], "Buttondown email em_0a1b2c (about_to_send)", "{json:#}");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].json["status"], "about_to_send");
        assert_eq!(seen[0].header("x-buttondown-live-dangerously"), Some("true"));
    }
    // Publication day again: nothing more goes to Buttondown.
    let out = site.run_env(&["publish", "--yes"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn a_lost_answer_is_asked_again_under_the_same_key_and_makes_one_email() {
    // Buttondown makes the email and the answer is lost (a 502 from its proxy).
    let (port, seen) = buttondown_with(vec![502]);
    let site = site_for(port);
    let env = [("BUTTONDOWN_API_KEY", KEY)];
    let out = site.run_env(&["send", "--yes", "--publish"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no clear answer from Buttondown: Buttondown answered HTTP 502"), "{}", text(&out));
    assert!(text(&out).contains("repeats the request with the same idempotency key"), "{}", text(&out));
    // Run again: the same request under the same key, answered with that one email.
    let out = site.run_env(&["send", "--yes", "--publish"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("em_0a1b2c"), "{}", text(&out));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:#?}");
        let keys: Vec<_> = seen.iter().map(|r| r.header("x-idempotency-key").unwrap().to_string()).collect();
        assert_eq!(keys[0], keys[1], "the repeat carries the first request's key");
        assert_eq!(seen[1].json, seen[0].json, "and the same request");
    }
    // Done: a third run makes nothing.
    let out = site.run_env(&["send", "--yes", "--publish"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn a_refused_request_made_nothing_and_the_next_run_makes_the_draft() {
    let (port, seen) = buttondown_with(vec![400]);
    let site = site_for(port);
    let env = [("BUTTONDOWN_API_KEY", KEY)];
    let out = site.run_env(&["send", "--yes"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("Buttondown did not take the issue: Buttondown answered HTTP 400"), "{}", text(&out));
    let out = site.run_env(&["send", "--yes"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("made a draft at Buttondown: em_0a1b2c"), "{}", text(&out));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_ne!(
        seen[0].header("x-idempotency-key"),
        seen[1].header("x-idempotency-key"),
        "a refused request is a new request next time"
    );
}

#[test]
fn the_key_can_come_from_a_private_file_and_check_warns_when_others_can_read_it() {
    use std::os::unix::fs::PermissionsExt;
    let (port, seen) = buttondown();
    let site = Site::new(&format!(
        "
[email]
from = \"LWKD <lwkd@example.org>\"
to = \"kubernetes-dev@example.org\"
transport = \"buttondown\"

[buttondown]
api_key_file = \"secrets/buttondown\"
api_url = \"http://127.0.0.1:{port}/v1\"
"
    ));
    std::fs::create_dir_all(site.path("secrets")).unwrap();
    let file = site.path("secrets/buttondown");
    std::fs::write(&file, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let check = site.run(&["check"]);
    let shown = text(&check);
    assert!(
        shown.contains("warning: [buttondown] api_key_file `secrets/buttondown` can be read by other users (mode 644)"),
        "{shown}"
    );
    assert!(shown.contains("run `chmod 600 secrets/buttondown`"), "{shown}");
    assert!(!shown.contains(KEY), "{shown}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let check = site.run(&["check"]);
    assert!(!text(&check).contains("can be read by other users"), "{}", text(&check));
    let out = site.run(&["send", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(seen.lock().unwrap()[0].header("authorization"), Some(format!("Token {KEY}").as_str()));
}
