//! `newsdesk inbox`: the `mailto:` side of unsubscribing. The MTA pipes each message
//! sent to the unsubscribe address (`lwkd+unsubscribe@…`) to this command.
//!
//! A subscriber's message names the address `lwkd+unsubscribe+TOKEN@…`, so a reply to
//! it, or a mail client's "unsubscribe" button, carries the token. The token is looked for
//! in the message's addresses and text: `+unsubscribe+TOKEN@` and a quoted
//! `/unsubscribe/TOKEN` link both count. With no known token, the sender (`From`) is
//! unsubscribed, as RFC 2369 mail clients expect. That is weaker proof than a token:
//! `From` can be forged, but only to stop someone's mail, which is what mailto
//! unsubscribing has always allowed.
//!
//! [`find`] reads the message and touches nothing. It takes time linear in the message
//! (it is outside input; `fuzz/fuzz_targets/inbox.rs` runs it on arbitrary bytes).

use crate::config::Config;
use crate::store::subscribers::{self, Subscriber, SubscriberError, SubscriberStatus};
use serde::Serialize;

/// What a message says about who wants to leave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Found {
    /// Unsubscribe tokens, lowercased, in the order they appear, each once.
    pub tokens: Vec<String>,
    /// The `From` address, if the message has one.
    pub sender: Option<String>,
}

/// How the message was matched to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchedBy {
    Token,
    Sender,
}

/// What `newsdesk inbox` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum InboxOutcome {
    Unsubscribed {
        email: String,
        by: MatchedBy,
    },
    AlreadyUnsubscribed {
        email: String,
        by: MatchedBy,
    },
    /// Neither a token nor the sender is on the list: nothing changed.
    NoMatch {
        found: Found,
    },
}

/// The tokens and the sender of `raw` (a whole message, headers and body).
pub fn find(raw: &[u8]) -> Found {
    let mut found = Found::default();
    // Byte-wise on a lowercased copy, so a message in any charset (or none) is read
    // the same way, in one pass per marker.
    let lower = raw.to_ascii_lowercase();
    let mut seen = std::collections::HashSet::new();
    for marker in ["unsubscribe+", "unsubscribe/"] {
        for i in memchr::memmem::find_iter(&lower, marker) {
            let start = i + marker.len();
            let candidate = &lower[start..lower.len().min(start + subscribers::TOKEN_LEN + 1)];
            let digits = candidate.iter().take_while(|b| b.is_ascii_hexdigit()).count();
            if digits == subscribers::TOKEN_LEN {
                let token = String::from_utf8_lossy(&candidate[..digits]).into_owned();
                if seen.insert(token.clone()) {
                    found.tokens.push(token);
                }
            }
        }
    }
    found.sender = mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.from().and_then(|f| f.first()).and_then(|a| a.address()).map(|a| a.trim().to_string()))
        .filter(|a| a.contains('@'));
    found
}

/// Reads one message and unsubscribes whom it names: a known token first, else the
/// sender.
pub fn unsubscribe_from_message(config: &Config, raw: &[u8]) -> Result<InboxOutcome, SubscriberError> {
    let found = find(raw);
    let conn = subscribers::open_existing(&config.database_path())?;
    let outcome = |before: Subscriber, by| {
        if before.status == SubscriberStatus::Unsubscribed {
            InboxOutcome::AlreadyUnsubscribed { email: before.email, by }
        } else {
            InboxOutcome::Unsubscribed { email: before.email, by }
        }
    };
    for token in &found.tokens {
        match subscribers::unsubscribe_token(&conn, token) {
            Ok(before) => return Ok(outcome(before, MatchedBy::Token)),
            Err(SubscriberError::UnknownToken | SubscriberError::NotAToken) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(sender) = &found.sender {
        match subscribers::unsubscribe(&conn, sender) {
            Ok(before) => return Ok(outcome(before, MatchedBy::Sender)),
            Err(SubscriberError::Db(e)) => return Err(SubscriberError::Db(e)),
            Err(SubscriberError::Sql(e)) => return Err(SubscriberError::Sql(e)),
            Err(_) => {}
        }
    }
    Ok(InboxOutcome::NoMatch { found })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_come_from_plus_addresses_and_quoted_links_and_the_sender_from_from() {
        let raw = format!(
            "From: Jane <Jane@Example.org>\r\nTo: lwkd+unsubscribe+{}@example.org\r\nSubject: unsubscribe\r\n\r\n> https://lwkd.example.org/unsubscribe/{}\r\n> https://x/unsubscribe/{TOKEN}\r\n",
            TOKEN.to_uppercase(),
            "f".repeat(32)
        );
        let found = find(raw.as_bytes());
        assert_eq!(found.tokens, [TOKEN.to_string(), "f".repeat(32)]);
        assert_eq!(found.sender.as_deref(), Some("Jane@Example.org"));
    }

    #[test]
    fn near_misses_are_not_tokens() {
        let short = format!("To: lwkd+unsubscribe+{}@example.org\r\n\r\n", &TOKEN[..31]);
        let long = format!("To: lwkd+unsubscribe+{TOKEN}0@example.org\r\n\r\n");
        let not_hex = format!("To: lwkd+unsubscribe+{}g@example.org\r\n\r\n", &TOKEN[..31]);
        for raw in [short, long, not_hex, "no headers at all".to_string(), String::new()] {
            assert_eq!(find(raw.as_bytes()).tokens, Vec::<String>::new(), "{raw:?}");
        }
    }

    #[test]
    fn a_token_after_megabytes_of_near_misses_is_found() {
        // 4 MB of almost-markers (each `u` starts a comparison that fails), then a token:
        // the scan goes on from each failure, so it stays linear and still finds it.
        let raw = format!("{}unsubscribe/{TOKEN}", "unsubscrib".repeat(400_000));
        assert_eq!(find(raw.as_bytes()).tokens, [TOKEN.to_string()]);
    }
}
