//! `newsdesk serve`: the one-click unsubscribe endpoint (RFC 8058) and its page, in
//! process through the router (`tower::ServiceExt::oneshot`) and over a real socket
//! against the binary, with the URL taken from a message a real SMTP server received.

mod delivery_common;
mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use delivery_common::{ListSite, Serving, address, header, start_serve, wait_until, web_config, web_site};
use std::io::{Read, Write};
use std::net::TcpStream;
use support::smtp::SmtpServer;
use support::text;
use tower::ServiceExt;

/// The router over `list`'s config.
fn app(list: &ListSite) -> axum::Router {
    let config = newsdesk::config::load(&list.site.path("config.toml")).unwrap();
    newsdesk::web::router(newsdesk::web::AppState::new(config).unwrap())
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn get_shows_a_button_and_changes_nothing_post_unsubscribes_at_once() {
    let list = ListSite::new(1, 2, "");
    let app = app(&list);
    let token = list.token(&address(0));
    let url = format!("/unsubscribe/{token}");

    // A scanner or link preview fetching the link, twice: nothing changes.
    for _ in 0..2 {
        let (status, headers, page) = call(&app, "GET", &url, "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("<form method=\"post\">"), "{page}");
        assert!(page.contains("name=\"List-Unsubscribe\" value=\"One-Click\""), "{page}");
        assert!(!page.contains(&token), "the page never repeats the token");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
        assert_eq!(headers["cache-control"], "no-store");
    }
    assert_eq!(list.status_of(&address(0)), "active");

    // What a mailbox provider posts (RFC 8058).
    let (status, _, page) = call(&app, "POST", &url, "List-Unsubscribe=One-Click").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("You are unsubscribed"), "{page}");
    assert_eq!(list.status_of(&address(0)), "unsubscribed", "committed before the answer");
    assert_eq!(list.status_of(&address(1)), "active", "only the holder of the link");

    // Repeating it is harmless and answers the same.
    let (again, _, page_again) = call(&app, "POST", &url, "List-Unsubscribe=One-Click").await;
    assert_eq!((again, page_again), (StatusCode::OK, page));
}

#[tokio::test]
async fn unknown_and_malformed_tokens_get_the_same_answer_as_a_real_one() {
    let list = ListSite::new(1, 1, "");
    let app = app(&list);
    let real =
        call(&app, "POST", &format!("/unsubscribe/{}", list.token(&address(0))), "List-Unsubscribe=One-Click").await;
    let unknown = call(&app, "POST", &format!("/unsubscribe/{}", "0".repeat(32)), "List-Unsubscribe=One-Click").await;
    let malformed = call(&app, "POST", "/unsubscribe/someone@example.org", "List-Unsubscribe=One-Click").await;
    assert_eq!(real.0, StatusCode::OK);
    assert_eq!((unknown.0, &unknown.2), (real.0, &real.2), "no oracle for unknown tokens");
    assert_eq!((malformed.0, &malformed.2), (real.0, &real.2), "nor for an address in the URL");
}

#[tokio::test]
async fn a_body_over_16_kib_is_refused_and_health_answers() {
    let list = ListSite::new(1, 1, "");
    let app = app(&list);
    let url = format!("/unsubscribe/{}", list.token(&address(0)));
    let (status, _, _) = call(&app, "POST", &url, &"x".repeat(newsdesk::web::BODY_LIMIT + 1)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(list.status_of(&address(0)), "active");
    let (status, _, body) = call(&app, "GET", "/healthz", "").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
}

/// One HTTP/1.1 request over a fresh connection; the status code and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

#[test]
fn one_click_from_a_sent_message_header_over_a_socket_then_sigterm_stops_it() {
    let server = SmtpServer::start();
    let list = ListSite::new(server.port(), 3, "connections = 1");
    let out = list.send(&[]);
    assert!(out.status.success(), "{}", text(&out));

    let Serving { child: mut serve, addr, mut stderr } = start_serve(&list.site, &["--listen", "127.0.0.1:0"]);

    // The URL a mailbox provider would post to, from the message the server received.
    let message = server.messages().into_iter().find(|m| m.to.contains(&address(1))).expect("s0001's message");
    let unsubscribe = header(&message.data, "List-Unsubscribe").unwrap();
    let url = unsubscribe.split(['<', '>']).find(|u| u.starts_with("https://")).unwrap().to_string();
    let path = &url[url.find("/unsubscribe/").unwrap()..];
    assert_eq!(http(&addr, "POST", path, "List-Unsubscribe=One-Click").0, 200);
    assert_eq!(list.status_of(&address(1)), "unsubscribed");
    assert_eq!(list.status_of(&address(0)), "active");
    assert_eq!(http(&addr, "GET", "/healthz", ""), (200, "ok\n".to_string()));

    // SIGTERM: a clean stop.
    let pid = serve.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = serve.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("stopped"), "{rest}");
}

#[test]
fn serve_refuses_an_address_that_is_not_loopback() {
    let list = ListSite::new(1, 1, "");
    let out = list.site.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("is not a loopback address"), "{}", text(&out));
}

#[test]
fn public_url_makes_the_unsubscribe_link_and_listen_the_address() {
    let server = SmtpServer::start();
    let site = web_site(server.port(), "listen = \"127.0.0.1:0\"\npublic_url = \"https://lwkd.example.org/news/\"");
    let out = site.run(&["send", "--subscribers", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let message = &server.messages()[0];
    let link = header(&message.data, "List-Unsubscribe").unwrap();
    let url = link.split(['<', '>']).find(|u| u.starts_with("https://")).unwrap().to_string();
    let token = url.strip_prefix("https://lwkd.example.org/news/unsubscribe/").unwrap_or_else(|| panic!("{url}"));
    assert_eq!(token.len(), 32, "{url}");

    // `serve` with no --listen takes `[web] listen` and answers that link's path.
    let Serving { child: mut serve, addr, stderr: _stderr } = start_serve(&site, &[]);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert_eq!(http(&addr, "POST", &format!("/unsubscribe/{token}"), "List-Unsubscribe=One-Click").0, 200);
    serve.kill().unwrap();
    let _ = serve.wait();
    let out = site.run(&["subscribers", "list", "--all"]);
    assert!(text(&out).contains("reader@example.org\t\tunsubscribed"), "{}", text(&out));
}

#[test]
fn a_public_url_that_is_not_a_plain_http_url_is_a_config_error_at_its_line() {
    for bad in ["lwkd.example.org", "https://lwkd.example.org/?a=1", "ftp://lwkd.example.org"] {
        let site = web_config(1, &format!("public_url = \"{bad}\""));
        let out = site.run(&["check"]);
        assert!(!out.status.success());
        let t = text(&out);
        assert!(t.contains("config.toml:") && t.contains("public_url"), "{t}");
        assert!(t.contains("is not an http(s) URL without a query or fragment"), "{t}");
    }
}

#[test]
fn a_reader_who_clicks_one_click_while_a_send_runs_is_not_mailed_by_it() {
    let server = SmtpServer::start();
    server.faults(|f| f.reply_delay = std::time::Duration::from_millis(50));
    let list = ListSite::new(server.port(), 60, "connections = 2");
    let Serving { child: mut serve, addr, stderr: _stderr } = start_serve(&list.site, &["--listen", "127.0.0.1:0"]);
    let mut send = list.spawn_send();
    wait_until("the send to be under way", || server.count() >= 4);
    // The last subscribers on the list are still to come.
    let leaving = [address(58), address(59)];
    for a in &leaving {
        assert_eq!(server.per_recipient().get(a), None);
        let (code, _) = http(&addr, "POST", &format!("/unsubscribe/{}", list.token(a)), "List-Unsubscribe=One-Click");
        assert_eq!(code, 200);
    }
    assert!(send.wait().unwrap().success());
    let per = server.per_recipient();
    let ledger = list.ledger();
    for a in &leaving {
        assert_eq!(per.get(a), None, "{a} clicked one-click mid-send and was mailed anyway");
        assert_eq!(ledger[a].state, "cancelled", "{a}: {:?}", ledger[a]);
    }
    assert_eq!(server.count(), 58);
    serve.kill().unwrap();
    let _ = serve.wait();
}

#[test]
fn every_one_click_answered_200_is_committed_when_serve_is_killed() {
    let list = ListSite::new(1, 400, "");
    let tokens = list.tokens();
    let Serving { child: mut serve, addr, stderr: _stderr } = start_serve(&list.site, &["--listen", "127.0.0.1:0"]);
    // Four clients post one-clicks as fast as they can; serve is SIGKILLed mid-way.
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    for (email, token) in &tokens {
        tx.send((email.clone(), token.clone())).unwrap();
    }
    drop(tx);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (rx, answered, addr) = (rx.clone(), answered.clone(), addr.clone());
            std::thread::spawn(move || {
                loop {
                    let Ok((email, token)) = rx.lock().unwrap().recv() else { return };
                    let Ok(mut stream) = TcpStream::connect(&addr) else { return };
                    let body = "List-Unsubscribe=One-Click";
                    let request = format!(
                        "POST /unsubscribe/{token} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(request.as_bytes()).is_err() {
                        return;
                    }
                    let mut response = String::new();
                    let _ = stream.read_to_string(&mut response);
                    if response.starts_with("HTTP/1.1 200") {
                        answered.lock().unwrap().push(email);
                    }
                }
            })
        })
        .collect();
    wait_until("some one-clicks to be answered", || answered.lock().unwrap().len() >= 50);
    serve.kill().unwrap();
    let _ = serve.wait();
    for c in clients {
        c.join().unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() < tokens.len(), "the kill came before the end ({} answered)", answered.len());
    for email in &answered {
        assert_eq!(list.status_of(email), "unsubscribed", "{email} got a 200 but is not unsubscribed");
    }
}
