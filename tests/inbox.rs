//! `newsdesk inbox`: the mailto unsubscribe, as an MTA pipe feeds it: a reply to a real
//! subscriber message (its `List-Unsubscribe` mailto carries the token), a mail client's
//! bare "unsubscribe" from the subscriber's address, and a stranger's message.

mod delivery_common;
mod support;

use delivery_common::{ListSite, address, header};
use support::smtp::SmtpServer;
use support::text;

/// `newsdesk inbox` with `message` on stdin.
fn inbox(list: &ListSite, message: &str) -> std::process::Output {
    list.site.run_stdin(&["inbox"], message.as_bytes())
}

/// A list whose mail names `lwkd+unsubscribe@example.org` as the mailto unsubscribe.
fn list_with_mailto(port: u16, n: usize) -> ListSite {
    let list = ListSite::new(port, n, "connections = 1");
    let path = list.site.path("config.toml");
    let config = std::fs::read_to_string(&path).unwrap().replace(
        "list_id = \"LWKD <lwkd.example.org>\"",
        "list_id = \"LWKD <lwkd.example.org>\"\nunsubscribe_mailto = \"lwkd+unsubscribe@example.org\"",
    );
    std::fs::write(&path, config).unwrap();
    list
}

#[test]
fn a_reply_to_the_mailto_carries_the_token_and_a_bare_request_counts_by_sender() {
    let server = SmtpServer::start();
    let list = list_with_mailto(server.port(), 3);
    let out = list.send(&[]);
    assert!(out.status.success(), "{}", text(&out));

    // s0001's message names a mailto with their token.
    let message = server.messages().into_iter().find(|m| m.to.contains(&address(1))).unwrap();
    let unsubscribe = header(&message.data, "List-Unsubscribe").unwrap();
    let mailto = unsubscribe.split(['<', '>']).find(|u| u.starts_with("mailto:")).unwrap().to_string();
    let to = mailto.trim_start_matches("mailto:").split('?').next().unwrap().to_string();
    assert_eq!(to, format!("lwkd+unsubscribe+{}@example.org", list.token(&address(1))));

    // Sent from another address (a forwarding alias): the token decides.
    let reply =
        format!("From: Someone <alias@elsewhere.example>\r\nTo: {to}\r\nSubject: unsubscribe\r\n\r\nunsubscribe\r\n");
    let out = inbox(&list, &reply);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("unsubscribed {} (by the token in the message)", address(1))),
        "{}",
        text(&out)
    );
    assert_eq!(list.status_of(&address(1)), "unsubscribed");
    assert_eq!(list.status_of(&address(0)), "active");

    // A mail client's button: to the plain address, from the subscriber.
    let bare = format!(
        "From: {}\r\nTo: lwkd+unsubscribe@example.org\r\nSubject: unsubscribe\r\n\r\n",
        address(2).to_uppercase()
    );
    let out = inbox(&list, &bare);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("(by the sender's address)"), "{}", text(&out));
    assert_eq!(list.status_of(&address(2)), "unsubscribed");

    // Again: harmless.
    let out = inbox(&list, &reply);
    assert!(out.status.success());
    assert!(text(&out).contains("had already unsubscribed"), "{}", text(&out));

    // A stranger: nothing changes, and the MTA is told all is well (no bounce to them).
    let stranger = "From: stranger@example.net\r\nTo: lwkd+unsubscribe@example.org\r\n\r\nhi\r\n";
    let out = inbox(&list, stranger);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nobody unsubscribed"), "{}", text(&out));
    assert_eq!(list.status_of(&address(0)), "active");
}

#[test]
fn without_a_database_the_mta_is_told_to_try_again() {
    let list = ListSite::new(1, 1, "");
    std::fs::remove_file(list.db_path()).unwrap();
    let out = inbox(&list, "From: s0000@example.org\r\n\r\n");
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
}
