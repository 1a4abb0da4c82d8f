//! Subscribing with double opt-in through `newsdesk serve`, in process through the
//! router (`tower::ServiceExt::oneshot`) with confirmation mails going to a real SMTP
//! test server over a socket: the form, the same answer whatever the address's state,
//! the confirm link (GET shows a button, POST confirms, once, before it expires), the
//! limits, the trap field, the resubscribe button, the pages' templates, and the
//! access log without tokens.

mod delivery_common;
mod support;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use delivery_common::{Serving, start_serve, wait_until, web_config, web_site};
use std::net::SocketAddr;
use support::smtp::{Received, SmtpServer};
use support::text;
use tower::ServiceExt;

const WEB: &str = "public_url = \"https://lwkd.example.org\"\ntrusted_proxies = [\"10.0.0.1\"]";

fn app(site: &support::Site) -> axum::Router {
    let config = newsdesk::config::load(&site.path("config.toml")).unwrap();
    newsdesk::web::router(newsdesk::web::AppState::new(config).unwrap_or_else(|d| panic!("{d:?}")))
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    page: String,
}

/// One request from `peer` (with extra headers), as the socket server would pass it.
async fn call_from(
    app: &axum::Router,
    peer: &str,
    method: &str,
    uri: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Answer {
    let mut request =
        Request::builder().method(method).uri(uri).header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    let mut request = request.body(Body::from(body.to_string())).unwrap();
    request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    Answer { status: parts.status, headers: parts.headers, page: String::from_utf8_lossy(&bytes).into_owned() }
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: &str) -> Answer {
    call_from(app, "127.0.0.1:40000", method, uri, body, &[]).await
}

fn db(site: &support::Site) -> rusqlite::Connection {
    rusqlite::Connection::open(site.path("state/newsdesk.db")).unwrap()
}

fn status_of(site: &support::Site, email: &str) -> Option<String> {
    use rusqlite::OptionalExtension;
    db(site).query_row("SELECT status FROM subscribers WHERE email = ?1", [email], |r| r.get(0)).optional().unwrap()
}

/// The confirmation mails the server got for `email`.
fn mails_to(server: &SmtpServer, email: &str) -> Vec<Received> {
    server.messages().into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(email))).collect()
}

/// The confirm link in a confirmation mail's text part.
fn confirm_link(m: &Received) -> String {
    let parsed = mail_parser::MessageParser::default().parse(&m.data).unwrap();
    let text = parsed.body_text(0).unwrap().into_owned();
    let link = text.split_whitespace().find(|w| w.starts_with("https://lwkd.example.org/confirm/")).unwrap();
    link.to_string()
}

fn path_of(link: &str) -> String {
    link.strip_prefix("https://lwkd.example.org").unwrap().to_string()
}

#[tokio::test]
async fn a_new_address_confirms_by_mail_then_gets_the_next_issue() {
    let server = SmtpServer::start();
    let site = web_site(server.port(), WEB);
    let app = app(&site);

    let form = call(&app, "GET", "/subscribe", "").await;
    assert_eq!(form.status, StatusCode::OK);
    for field in ["name=\"email\"", "name=\"name\"", "name=\"website\"", "<form method=\"post\">"] {
        assert!(form.page.contains(field), "{field} in {}", form.page);
    }
    assert!(form.headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));

    let asked = call(&app, "POST", "/subscribe", "email=Ada%40Example.ORG&name=Ada+Lovelace&website=").await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asked.page.contains("Check your inbox"), "{}", asked.page);
    assert_eq!(status_of(&site, "Ada@example.org"), None, "pending is not on the list");
    let (state, hash): (String, Option<String>) = db(&site)
        .query_row(
            "SELECT m.state, c.token_hash FROM confirmation_mails m JOIN confirmations c ON c.mail_id = m.id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(["queued", "sending", "sent"].contains(&state.as_str()), "{state}");

    wait_until("the confirmation mail", || mails_to(&server, "Ada@example.org").len() == 1);
    let mail = &mails_to(&server, "Ada@example.org")[0];
    let raw = String::from_utf8_lossy(&mail.data).into_owned();
    assert!(raw.contains("From: LWKD <lwkd@example.org>"), "{raw}");
    assert!(
        raw.contains("To: \"Ada Lovelace\" <Ada@example.org>") || raw.contains("To: Ada Lovelace <Ada@example.org>"),
        "{raw}"
    );
    assert!(raw.contains("Subject: Confirm your subscription to"), "{raw}");
    let link = confirm_link(mail);
    let token = link.rsplit('/').next().unwrap().to_string();
    assert_eq!(token.len(), 32, "{link}");
    let hash_now: String = db(&site).query_row("SELECT token_hash FROM confirmations", [], |r| r.get(0)).unwrap();
    assert_ne!(hash_now, token, "the database holds a hash, not the token");
    assert!(hash.is_none() || hash.as_deref() == Some(hash_now.as_str()));
    let ledger: String = db(&site).query_row("SELECT state FROM confirmation_mails", [], |r| r.get(0)).unwrap();
    assert_eq!(ledger, "sent", "the mail is in the ledger");

    // Scanners open the link: nothing happens.
    for _ in 0..2 {
        let page = call(&app, "GET", &path_of(&link), "").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.page.contains("Confirm my subscription") && page.page.contains("<form method=\"post\">"));
        assert!(!page.page.contains(&token));
    }
    assert_eq!(status_of(&site, "Ada@example.org"), None);

    let confirmed = call(&app, "POST", &path_of(&link), "").await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert!(confirmed.page.contains("You are subscribed"), "{}", confirmed.page);
    assert_eq!(status_of(&site, "Ada@example.org").as_deref(), Some("active"));
    let again = call(&app, "POST", &path_of(&link), "").await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "single use");
    assert!(again.page.contains("expired or was used"), "{}", again.page);

    // The next issue reaches them, with their own unsubscribe link.
    let out = site.run(&["send", "--subscribers", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let issues: Vec<_> = mails_to(&server, "Ada@example.org").into_iter().skip(1).collect();
    assert_eq!(issues.len(), 1);
    let issue = String::from_utf8_lossy(&issues[0].data).into_owned();
    assert!(issue.contains("List-Unsubscribe: <https://lwkd.example.org/unsubscribe/"), "{issue}");
}

#[tokio::test]
async fn every_address_gets_the_same_answer_and_only_those_who_may_get_mail() {
    let server = SmtpServer::start();
    let site = web_site(server.port(), WEB);
    std::fs::write(site.path("more.csv"), "email,status\nleft@example.org,unsubscribed\n").unwrap();
    assert!(site.run(&["subscribers", "import", "more.csv"]).status.success());
    let app = app(&site);

    let new = call(&app, "POST", "/subscribe", "email=new%40example.org").await;
    let active = call(&app, "POST", "/subscribe", "email=reader%40example.org").await;
    let left = call(&app, "POST", "/subscribe", "email=left%40example.org").await;
    let pending_again = call(&app, "POST", "/subscribe", "email=new%40example.org").await;
    let robot = call(&app, "POST", "/subscribe", "email=victim%40example.org&website=http%3A%2F%2Fspam").await;
    for (what, answer) in [("active", &active), ("unsubscribed", &left), ("pending", &pending_again), ("trap", &robot)]
    {
        assert_eq!((answer.status, &answer.page), (new.status, &new.page), "{what} answered differently");
    }

    // Mail for the new address and for the one who had left (to come back they must
    // confirm); none for the subscriber, none twice, none for the robot.
    wait_until("two confirmation mails", || server.count() == 2);
    let ledger: Vec<String> = {
        let conn = db(&site);
        let mut stmt = conn.prepare("SELECT email FROM confirmation_mails ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(ledger, ["new@example.org", "left@example.org"]);
    assert_eq!(status_of(&site, "left@example.org").as_deref(), Some("unsubscribed"), "still out until they confirm");
    let out = site.run(&["subscribers", "list"]);
    assert!(text(&out).contains("1 active, 1 unsubscribed, 2 waiting for their confirmation"), "{}", text(&out));

    let link = confirm_link(&mails_to(&server, "left@example.org")[0]);
    assert_eq!(call(&app, "POST", &path_of(&link), "").await.status, StatusCode::OK);
    assert_eq!(status_of(&site, "left@example.org").as_deref(), Some("active"));
}

#[tokio::test]
async fn a_bad_address_gets_the_form_back_escaped_and_nothing_is_stored() {
    let server = SmtpServer::start();
    let site = web_site(server.port(), WEB);
    let app = app(&site);
    let bad = call(&app, "POST", "/subscribe", "email=%3Cscript%3Ealert(1)%3C%2Fscript%3E&name=%3Cb%3E").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.page.contains("is not an email address"), "{}", bad.page);
    assert!(!bad.page.contains("<script>") && !bad.page.contains("<b>"), "escaped: {}", bad.page);
    assert!(bad.page.contains("&lt;script&gt;"), "{}", bad.page);
    let empty = call(&app, "POST", "/subscribe", "email=").await;
    assert!(empty.page.contains("Please enter your email address"), "{}", empty.page);
    let n: i64 = db(&site).query_row("SELECT COUNT(*) FROM confirmation_mails", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
    let big = call(&app, "POST", "/subscribe", &format!("email={}", "a".repeat(17 * 1024))).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn requests_from_one_client_are_limited_and_only_trusted_proxies_say_who_the_client_is() {
    let server = SmtpServer::start();
    let site = web_site(server.port(), WEB);
    let app = app(&site);
    let stranger = "198.51.100.7:5000";
    for i in 0..10 {
        let a = call_from(&app, stranger, "POST", "/subscribe", &format!("email=r{i}%40example.org"), &[]).await;
        assert_eq!(a.status, StatusCode::OK, "request {i}");
    }
    let limited = call_from(&app, stranger, "POST", "/subscribe", "email=r10%40example.org", &[]).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert!(limited.page.contains("Too many requests"), "{}", limited.page);
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let forged = call_from(
        &app,
        stranger,
        "POST",
        "/subscribe",
        "email=r11%40example.org",
        &[("x-forwarded-for", "203.0.113.1")],
    )
    .await;
    assert_eq!(forged.status, StatusCode::TOO_MANY_REQUESTS);
    // Through the trusted proxy, the client it names has its own allowance.
    let proxied = call_from(
        &app,
        "10.0.0.1:443",
        "POST",
        "/subscribe",
        "email=r12%40example.org",
        &[("x-forwarded-for", "198.51.100.8")],
    )
    .await;
    assert_eq!(proxied.status, StatusCode::OK);
    let n: i64 = db(&site).query_row("SELECT COUNT(*) FROM confirmation_mails", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 11, "nothing queued for the refused requests");
}

#[tokio::test]
async fn an_expired_link_confirms_nobody_and_a_new_request_sends_a_new_one() {
    let server = SmtpServer::start();
    let site = web_site(server.port(), "public_url = \"https://lwkd.example.org\"\nconfirm_hours = 1");
    let app = app(&site);
    call(&app, "POST", "/subscribe", "email=late%40example.org").await;
    wait_until("the confirmation mail", || server.count() == 1);
    let link = confirm_link(&mails_to(&server, "late@example.org")[0]);
    // An hour and more later (the clock moved by rewriting the stored times).
    let conn = db(&site);
    conn.execute("UPDATE confirmations SET expires_at = '2000-01-01T00:00:00.000Z'", []).unwrap();
    conn.execute("UPDATE confirmation_mails SET queued_at = '2000-01-01T00:00:00.000Z'", []).unwrap();
    for method in ["GET", "POST"] {
        let a = call(&app, method, &path_of(&link), "").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method}");
        assert!(a.page.contains("expired or was used"), "{}", a.page);
    }
    assert_eq!(status_of(&site, "late@example.org"), None);
    call(&app, "POST", "/subscribe", "email=late%40example.org").await;
    wait_until("a second confirmation mail", || server.count() == 2);
    let fresh = confirm_link(&mails_to(&server, "late@example.org")[1]);
    assert_ne!(fresh, link);
    assert_eq!(call(&app, "POST", &path_of(&fresh), "").await.status, StatusCode::OK);
    assert_eq!(status_of(&site, "late@example.org").as_deref(), Some("active"));
    // Garbage in the URL is just a link that does not work.
    assert_eq!(call(&app, "GET", "/confirm/..%2F..%2Fetc", "").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_resubscribe_button_after_an_unsubscribe_brings_the_reader_back() {
    let server = SmtpServer::start();
    let site = web_site(server.port(), WEB);
    let app = app(&site);
    let token: String = db(&site)
        .query_row("SELECT token FROM subscribers WHERE email = 'reader@example.org'", [], |r| r.get(0))
        .unwrap();
    let url = format!("/unsubscribe/{token}");
    let left = call(&app, "POST", &url, "List-Unsubscribe=One-Click").await;
    assert!(left.page.contains("Resubscribe") && left.page.contains("name=\"resubscribe\""), "{}", left.page);
    assert!(!left.page.contains(&token));
    assert_eq!(status_of(&site, "reader@example.org").as_deref(), Some("unsubscribed"));
    let back = call(&app, "POST", &url, "resubscribe=yes").await;
    assert_eq!(back.status, StatusCode::OK);
    assert!(back.page.contains("You are subscribed again"), "{}", back.page);
    assert_eq!(status_of(&site, "reader@example.org").as_deref(), Some("active"));
    let unknown = call(&app, "POST", &format!("/unsubscribe/{}", "0".repeat(32)), "resubscribe=yes").await;
    assert_eq!((unknown.status, &unknown.page), (back.status, &back.page), "no oracle");
}

#[tokio::test]
async fn a_mail_queued_before_a_crash_goes_out_when_serve_starts_again() {
    let server = SmtpServer::start();
    let site = web_site(server.port(), WEB);
    // A request committed by a serve that died before its mailer ran.
    let mut conn = db(&site);
    let queued =
        newsdesk::store::confirmations::request(&mut conn, "early@example.org", None, chrono::Utc::now(), 168).unwrap();
    assert_eq!(queued, newsdesk::store::confirmations::Requested::Queued);
    let _app = app(&site);
    wait_until("the queued mail", || mails_to(&server, "early@example.org").len() == 1);
}

#[tokio::test]
async fn without_public_url_there_is_no_subscribe_form() {
    let site = web_config(1, "listen = \"127.0.0.1:0\"");
    std::fs::write(site.path("list.csv"), "email\nreader@example.org\n").unwrap();
    assert!(site.run(&["subscribers", "import", "list.csv"]).status.success());
    let app = app(&site);
    for method in ["GET", "POST"] {
        let a = call(&app, method, "/subscribe", "email=x%40example.org").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method}");
        assert!(a.page.contains("does not take subscriptions here"), "{}", a.page);
    }
}

#[test]
fn editors_pages_replace_the_defaults_and_a_broken_one_stops_serve_at_its_line() {
    let site = web_site(1, &format!("{WEB}\ntemplates = \"pages\""));
    std::fs::create_dir(site.path("pages")).unwrap();
    std::fs::write(
        site.path("pages/subscribe.html"),
        "{% extends \"layout.html\" %}{% block title %}Join us{% endblock %}{% block body %}<p>Our own words.</p>{% endblock %}",
    )
    .unwrap();
    let config = newsdesk::config::load(&site.path("config.toml")).unwrap();
    let app = newsdesk::web::router(newsdesk::web::AppState::new(config).unwrap());
    let page = tokio::runtime::Runtime::new().unwrap().block_on(call(&app, "GET", "/subscribe", ""));
    assert!(page.page.contains("Our own words.") && page.page.contains("<title>Join us · "), "{}", page.page);
    assert!(page.page.contains("#326ce5"), "the default layout stays: {}", page.page);

    std::fs::write(site.path("pages/confirmed.html"), "line one\n{{ no_such_thing.field }}\n").unwrap();
    let out = site.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("pages/confirmed.html:2"), "{t}");
    assert!(t.contains("undefined"), "{t}");

    std::fs::remove_dir_all(site.path("pages")).unwrap();
    let out = site.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("the templates folder") && text(&out).contains("`templates` under `[web]`"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_access_log_shows_each_request_without_its_token() {
    let server = SmtpServer::start();
    let site = web_site(server.port(), &format!("{WEB}\nlisten = \"127.0.0.1:0\""));
    let token: String = rusqlite::Connection::open(site.path("state/newsdesk.db"))
        .unwrap()
        .query_row("SELECT token FROM subscribers", [], |r| r.get(0))
        .unwrap();
    let Serving { mut child, addr, stderr } = start_serve(&site, &[]);
    let post = |path: &str, body: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(post(&format!("/unsubscribe/{token}"), "List-Unsubscribe=One-Click").starts_with("HTTP/1.1 200"));
    assert!(post("/subscribe", "email=log%40example.org").starts_with("HTTP/1.1 200"));
    wait_until("the confirmation mail", || server.count() == 1);
    let link = confirm_link(&server.messages()[0]);
    assert!(post(&path_of(&link), "").starts_with("HTTP/1.1 200"));
    // SIGTERM: stops after the requests in flight.
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    let mut log = String::new();
    std::io::Read::read_to_string(&mut stderr.into_inner(), &mut log).unwrap();
    assert!(log.contains("POST /unsubscribe/… 200"), "{log}");
    assert!(log.contains("POST /subscribe 200"), "{log}");
    assert!(log.contains("POST /confirm/… 200"), "{log}");
    assert!(log.contains("confirmation mail to log@example.org"), "{log}");
    let confirm_token = link.rsplit('/').next().unwrap();
    assert!(!log.contains(&token) && !log.contains(confirm_token), "a token in the log:\n{log}");
}
