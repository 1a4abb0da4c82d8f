//! Double opt-in: subscribe requests from the web form, pending until the link in their
//! confirmation mail is pressed.
//!
//! A pending address is a `confirmations` row, not a subscriber, so no send can reach
//! it. The row keeps the SHA-256 of the secret in the confirm link, never the secret:
//! the link exists only in the mail, so a copy of the database confirms nobody. Links
//! expire (`[web] confirm_hours`) and work once.
//!
//! The mails themselves are a small ledger of their own (`confirmation_mails`): a
//! request that needs a mail is committed as `queued` before the web answer, so one
//! accepted survives a crash; the mailer marks it `sending` (with the hash of the
//! token it is about to mail) before handing it over and `sent` or `failed` after. A
//! mail left `sending` by a crash may have gone out: it is not sent again (the one
//! in-flight window, as in the issue ledger). At most one mail per address goes out
//! per `confirm_hours`, so the form cannot be used to flood someone's inbox.

use super::clock;
use super::subscribers::{self, SubscriberError, SubscriberStatus};
use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

/// What a subscribe request led to. The web answer is the same for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// A confirmation mail is queued.
    Queued,
    /// Already an active subscriber: no mail.
    AlreadySubscribed,
    /// A confirmation mail went to this address less than `confirm_hours` ago: no mail.
    RecentlyMailed,
    /// The address is suppressed (it bounced, or its reader reported spam): no mail,
    /// ever, from the web form.
    Suppressed,
}

/// A queued confirmation mail, for the mailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
}

/// The stored form of a confirm token: its SHA-256, hexadecimal.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.trim().to_ascii_lowercase().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn later(now: DateTime<Utc>, hours: u32) -> String {
    clock::format(now + Duration::hours(i64::from(hours)))
}

/// Records a subscribe request for `email` (already normalised) at `now`. Someone who
/// unsubscribed is treated like a new address: they come back only by confirming.
/// Expired requests are forgotten on the way.
pub fn request(
    conn: &mut Connection,
    email: &str,
    name: Option<&str>,
    now: DateTime<Utc>,
    hours: u32,
) -> Result<Requested, SubscriberError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let stamp = clock::format(now);
    tx.execute("DELETE FROM confirmations WHERE expires_at <= ?1", [&stamp])?;
    match subscribers::find(&tx, email)? {
        Some(s) if s.status == SubscriberStatus::Active => return Ok(Requested::AlreadySubscribed),
        Some(s) if s.suppressed.is_some() => return Ok(Requested::Suppressed),
        _ => {}
    }
    let cutoff = clock::format(now - Duration::hours(i64::from(hours)));
    let recent: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM confirmation_mails WHERE email = ?1 AND state != 'failed' AND queued_at > ?2)",
        params![email, cutoff],
        |r| r.get(0),
    )?;
    if recent {
        return Ok(Requested::RecentlyMailed);
    }
    tx.execute(
        "INSERT INTO confirmation_mails (email, state, queued_at) VALUES (?1, 'queued', ?2)",
        params![email, stamp],
    )?;
    let mail_id = tx.last_insert_rowid();
    let name = name.and_then(subscribers::clean_name);
    tx.execute(
        "INSERT INTO confirmations (email, name, token_hash, requested_at, expires_at, mail_id)
         VALUES (?1, ?2, NULL, ?3, ?4, ?5)
         ON CONFLICT (email) DO UPDATE SET name = excluded.name, token_hash = NULL,
             requested_at = excluded.requested_at, expires_at = excluded.expires_at, mail_id = excluded.mail_id",
        params![email, name, stamp, later(now, hours), mail_id],
    )?;
    tx.commit()?;
    Ok(Requested::Queued)
}

/// The oldest queued mail, if any.
pub fn next_queued(conn: &Connection) -> Result<Option<QueuedMail>, SubscriberError> {
    Ok(conn
        .query_row(
            "SELECT m.id, m.email, c.name FROM confirmation_mails m LEFT JOIN confirmations c ON c.mail_id = m.id
             WHERE m.state = 'queued' ORDER BY m.id LIMIT 1",
            [],
            |r| Ok(QueuedMail { id: r.get(0)?, email: r.get(1)?, name: r.get(2)? }),
        )
        .optional()?)
}

/// Marks `mail` as going out with the token whose hash is `token_hash`, committed
/// before the mail is handed over; the link is valid `hours` from `now`. `false` when
/// the request is gone (confirmed otherwise, or expired while queued): the mail is
/// then marked failed and must not be sent.
pub fn claim(
    conn: &mut Connection,
    mail: &QueuedMail,
    token_hash: &str,
    message_id: &str,
    now: DateTime<Utc>,
    hours: u32,
) -> Result<bool, SubscriberError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let updated = tx.execute(
        "UPDATE confirmations SET token_hash = ?2, expires_at = ?3 WHERE mail_id = ?1",
        params![mail.id, token_hash, later(now, hours)],
    )?;
    if updated == 0 {
        tx.execute(
            "UPDATE confirmation_mails SET state = 'failed', reply = 'the request was gone before the mail went out' WHERE id = ?1",
            [mail.id],
        )?;
    } else {
        tx.execute(
            "UPDATE confirmation_mails SET state = 'sending', message_id = ?2 WHERE id = ?1",
            params![mail.id, message_id],
        )?;
    }
    tx.commit()?;
    Ok(updated > 0)
}

/// Records how handing `mail_id` over ended: the server's reply, or why it failed.
/// A failed mail does not count against the address, so its owner can ask again.
pub fn finish(
    conn: &Connection,
    mail_id: i64,
    outcome: Result<&str, &str>,
    now: DateTime<Utc>,
) -> Result<(), SubscriberError> {
    let (state, reply) = match outcome {
        Ok(reply) => ("sent", reply),
        Err(reply) => ("failed", reply),
    };
    conn.execute(
        "UPDATE confirmation_mails SET state = ?2, reply = ?3, sent_at = ?4 WHERE id = ?1",
        params![mail_id, state, reply, clock::format(now)],
    )?;
    if state == "failed" {
        conn.execute("DELETE FROM confirmations WHERE mail_id = ?1", [mail_id])?;
    }
    Ok(())
}

/// Whether `token` is a confirm link that would work at `now` (for the page that
/// shows the button; changes nothing).
pub fn is_valid(conn: &Connection, token: &str, now: DateTime<Utc>) -> Result<bool, SubscriberError> {
    if !subscribers::is_token(token.trim()) {
        return Ok(false);
    }
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM confirmations WHERE token_hash = ?1 AND expires_at > ?2)",
        params![hash(token), clock::format(now)],
        |r| r.get(0),
    )?)
}

/// Confirms the request whose link holds `token`: the address becomes an active
/// subscriber (a new one with a fresh unsubscribe token, or one who had unsubscribed,
/// back again), and the link stops working. `None` for a link that is unknown,
/// expired or already used.
pub fn confirm(conn: &mut Connection, token: &str, now: DateTime<Utc>) -> Result<Option<String>, SubscriberError> {
    if !subscribers::is_token(token.trim()) {
        return Ok(None);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let stamp = clock::format(now);
    let request: Option<(String, Option<String>)> = tx
        .query_row(
            "SELECT email, name FROM confirmations WHERE token_hash = ?1 AND expires_at > ?2",
            params![hash(token), stamp],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((email, name)) = request else {
        return Ok(None);
    };
    match subscribers::find(&tx, &email)? {
        Some(s) => {
            // Confirming is consent given anew from the mailbox itself, as the
            // resubscribe button is: a suppression recorded since the request ends.
            tx.execute(
                "UPDATE subscribers SET status = 'active', unsubscribed_at = NULL, subscribed_at = ?2,
                     name = COALESCE(?3, name),
                     suppressed_reason = NULL, suppressed_at = NULL, suppressed_detail = NULL
                 WHERE id = ?1 AND (status != 'active' OR suppressed_reason IS NOT NULL)",
                params![s.id, stamp, name],
            )?;
        }
        None => {
            tx.execute(
                "INSERT INTO subscribers (email, name, token, status, subscribed_at) VALUES (?1, ?2, ?3, 'active', ?4)",
                params![email, name, subscribers::new_token(), stamp],
            )?;
        }
    }
    tx.execute("DELETE FROM confirmations WHERE email = ?1", [&email])?;
    tx.commit()?;
    Ok(Some(email))
}

/// Addresses waiting for their confirmation at `now`.
pub fn pending(conn: &Connection, now: DateTime<Utc>) -> Result<i64, SubscriberError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM confirmations WHERE expires_at > ?1", [clock::format(now)], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db;

    const HOURS: u32 = 168;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::hours(hours)
    }

    /// Requests, claims and sends the mail for `email` at `now`; returns the token mailed.
    fn mailed(conn: &mut Connection, email: &str, now: DateTime<Utc>) -> String {
        assert_eq!(request(conn, email, Some("Ada"), now, HOURS).unwrap(), Requested::Queued);
        let mail = next_queued(conn).unwrap().unwrap();
        assert_eq!((mail.email.as_str(), mail.name.as_deref()), (email, Some("Ada")));
        let token = subscribers::new_token();
        assert!(claim(conn, &mail, &hash(&token), "<m@x>", now, HOURS).unwrap());
        finish(conn, mail.id, Ok("250 ok"), now).unwrap();
        token
    }

    fn status(conn: &Connection, email: &str) -> Option<SubscriberStatus> {
        subscribers::find(conn, email).unwrap().map(|s| s.status)
    }

    #[test]
    fn a_request_is_pending_until_confirmed_and_the_link_works_once() {
        let mut conn = db::open_in_memory().unwrap();
        let token = mailed(&mut conn, "ada@example.org", at(0));
        assert_eq!(status(&conn, "ada@example.org"), None, "pending is not a subscriber");
        assert_eq!(pending(&conn, at(0)).unwrap(), 1);
        let stored: String = conn.query_row("SELECT token_hash FROM confirmations", [], |r| r.get(0)).unwrap();
        assert_eq!(stored, hash(&token));
        assert_ne!(stored, token, "only the hash is stored");

        assert!(is_valid(&conn, &token, at(1)).unwrap());
        assert_eq!(confirm(&mut conn, &token, at(1)).unwrap().as_deref(), Some("ada@example.org"));
        let s = subscribers::find(&conn, "ada@example.org").unwrap().unwrap();
        assert_eq!((s.status, s.name.as_deref()), (SubscriberStatus::Active, Some("Ada")));
        assert!(subscribers::is_token(&s.token) && s.token != token, "a fresh unsubscribe token");
        assert_eq!(confirm(&mut conn, &token, at(1)).unwrap(), None, "single use");
        assert!(!is_valid(&conn, &token, at(1)).unwrap());
        assert_eq!(pending(&conn, at(1)).unwrap(), 0);
        let sent: String = conn.query_row("SELECT state FROM confirmation_mails", [], |r| r.get(0)).unwrap();
        assert_eq!(sent, "sent", "the ledger keeps the mail");
    }

    #[test]
    fn a_suppressed_address_gets_no_confirmation_mail() {
        let mut conn = db::open_in_memory().unwrap();
        for (email, status, reason) in
            [("gone@example.org", "bounced", "hard-bounce"), ("spam@example.org", "unsubscribed", "complaint")]
        {
            subscribers::add(&conn, email, None, false).unwrap();
            conn.execute(
                "UPDATE subscribers SET status = ?2, suppressed_reason = ?3, suppressed_at = '2026-07-27T00:00:00.000Z' WHERE email = ?1",
                [email, status, reason],
            )
            .unwrap();
            assert_eq!(request(&mut conn, email, None, at(0), HOURS).unwrap(), Requested::Suppressed, "{email}");
        }
        assert_eq!(next_queued(&conn).unwrap(), None, "nothing queued");
        // A plain unsubscribe is no suppression: they may come back by confirming.
        subscribers::add(&conn, "left@example.org", None, false).unwrap();
        subscribers::unsubscribe(&conn, "left@example.org").unwrap();
        assert_eq!(request(&mut conn, "left@example.org", None, at(0), HOURS).unwrap(), Requested::Queued);
    }

    #[test]
    fn a_confirmation_after_a_suppression_is_consent_anew_and_the_list_agrees() {
        let mut conn = db::open_in_memory().unwrap();
        subscribers::add(&conn, "ada@example.org", None, false).unwrap();
        subscribers::unsubscribe(&conn, "ada@example.org").unwrap();
        let token = mailed(&mut conn, "ada@example.org", at(0));
        // A complaint about an old issue arrives before she presses the link.
        conn.execute(
            "UPDATE subscribers SET suppressed_reason = 'complaint', suppressed_at = '2026-07-27T00:00:00.000Z'
             WHERE email = 'ada@example.org'",
            [],
        )
        .unwrap();
        assert_eq!(confirm(&mut conn, &token, at(1)).unwrap().as_deref(), Some("ada@example.org"));
        let s = subscribers::find(&conn, "ada@example.org").unwrap().unwrap();
        assert_eq!((s.status, s.suppressed), (SubscriberStatus::Active, None), "active and not suppressed: never both");
        // Whatever the states, a suppressed address is never queued for an issue.
        conn.execute("UPDATE subscribers SET suppressed_reason = 'hard-bounce' WHERE email = 'ada@example.org'", [])
            .unwrap();
        let key = crate::store::ledger::IssueKey { id: "w1".into(), label: "w1".into() };
        assert_eq!(crate::store::ledger::active_not_in_send(&conn, &key.id).unwrap(), 0);
    }

    #[test]
    fn links_expire_after_confirm_hours() {
        let mut conn = db::open_in_memory().unwrap();
        let token = mailed(&mut conn, "ada@example.org", at(0));
        assert!(is_valid(&conn, &token, at(167)).unwrap());
        assert!(!is_valid(&conn, &token, at(168)).unwrap());
        assert_eq!(confirm(&mut conn, &token, at(168)).unwrap(), None);
        assert_eq!(status(&conn, "ada@example.org"), None);
        assert!(!is_valid(&conn, "not a token", at(0)).unwrap());
        assert_eq!(confirm(&mut conn, "zz", at(0)).unwrap(), None);
    }

    #[test]
    fn one_mail_per_address_per_confirm_hours_and_none_for_subscribers() {
        let mut conn = db::open_in_memory().unwrap();
        mailed(&mut conn, "ada@example.org", at(0));
        for h in [0, 1, 167] {
            assert_eq!(request(&mut conn, "ADA@example.org", None, at(h), HOURS).unwrap(), Requested::RecentlyMailed);
        }
        assert_eq!(next_queued(&conn).unwrap(), None);
        // After the window the old link has expired and a new mail may go.
        let token = mailed(&mut conn, "ada@example.org", at(169));
        confirm(&mut conn, &token, at(170)).unwrap().unwrap();
        assert_eq!(request(&mut conn, "ada@example.org", None, at(400), HOURS).unwrap(), Requested::AlreadySubscribed);
        subscribers::add(&conn, "bob@example.org", None, false).unwrap();
        assert_eq!(request(&mut conn, "bob@example.org", None, at(0), HOURS).unwrap(), Requested::AlreadySubscribed);
        assert_eq!(next_queued(&conn).unwrap(), None);
    }

    #[test]
    fn a_failed_mail_does_not_count_and_a_crash_while_sending_is_not_resent() {
        let mut conn = db::open_in_memory().unwrap();
        request(&mut conn, "ada@example.org", None, at(0), HOURS).unwrap();
        let mail = next_queued(&conn).unwrap().unwrap();
        assert!(claim(&mut conn, &mail, &hash(&subscribers::new_token()), "<m@x>", at(0), HOURS).unwrap());
        finish(&conn, mail.id, Err("550 no such user"), at(0)).unwrap();
        assert_eq!(pending(&conn, at(0)).unwrap(), 0, "a failed mail's request is dropped");
        assert_eq!(request(&mut conn, "ada@example.org", None, at(0), HOURS).unwrap(), Requested::Queued);
        // Claimed and never finished (a crash): not queued again, and it counts.
        let mail = next_queued(&conn).unwrap().unwrap();
        assert!(claim(&mut conn, &mail, &hash(&subscribers::new_token()), "<m@x>", at(0), HOURS).unwrap());
        assert_eq!(next_queued(&conn).unwrap(), None);
        assert_eq!(request(&mut conn, "ada@example.org", None, at(1), HOURS).unwrap(), Requested::RecentlyMailed);
    }

    #[test]
    fn someone_who_unsubscribed_comes_back_only_by_confirming() {
        let mut conn = db::open_in_memory().unwrap();
        subscribers::add(&conn, "ada@example.org", Some("Ada"), false).unwrap();
        subscribers::unsubscribe(&conn, "ada@example.org").unwrap();
        let token = mailed(&mut conn, "ada@example.org", at(0));
        assert_eq!(status(&conn, "ada@example.org"), Some(SubscriberStatus::Unsubscribed), "still unsubscribed");
        confirm(&mut conn, &token, at(1)).unwrap().unwrap();
        assert_eq!(status(&conn, "ada@example.org"), Some(SubscriberStatus::Active));
    }
}
