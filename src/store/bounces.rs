//! What bounces and complaints do to the list: each one recorded once in `bounces`, and
//! the subscriber's state changed by the rules of the README ("Bounces"):
//!
//! - a hard bounce (permanent: unknown user or domain) makes the subscriber `bounced`
//!   at once;
//! - a soft bounce (a full mailbox, an expired message, a block) is counted per issue:
//!   `soft_limit` issues in a row with one make the subscriber `bounced`; an issue
//!   delivered without one ends the row;
//! - a complaint (a feedback report: the reader pressed "spam") unsubscribes them.
//!
//! Every change records why in `suppressed_reason`, and a suppressed address is never
//! mailed and never imported back. A message read twice (the same bytes: its SHA-256)
//! counts once, so a mailbox can be read again safely.
//!
//! Nothing here reads mail: callers hand in [`Failure`]s (from `crate::bounces` or a
//! send's replies) and what matched them to a subscriber.

use super::clock;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What kind of report a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A bounce message (a DSN or a text bounce).
    Bounce,
    /// A feedback report.
    Complaint,
    /// The relay's 5xx reply during the send.
    SendTime,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Bounce => "bounce",
            Source::Complaint => "complaint",
            Source::SendTime => "send-time",
        }
    }
}

/// One recipient's failure, as read.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    pub source: Source,
    pub address: &'a str,
    pub status: Option<&'a str>,
    /// A hard bounce (see `crate::bounces::Recipient::permanent`).
    pub permanent: bool,
    /// The reason word (`user-unknown`, ...).
    pub reason: &'a str,
    pub diagnostic: Option<&'a str>,
}

/// How a failure was tied to a subscriber, most certain first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchedBy {
    /// The VERP token in the address the bounce was sent to.
    Verp,
    /// The returned message's `Message-ID`, found in the ledger.
    MessageId,
    /// The failed recipient's address.
    Address,
    /// The send's own reply.
    Send,
}

impl MatchedBy {
    fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Verp => "verp",
            MatchedBy::MessageId => "message-id",
            MatchedBy::Address => "address",
            MatchedBy::Send => "send",
        }
    }
}

/// A subscriber a failure was matched to, and the issue it was for when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub subscriber_id: i64,
    pub issue: Option<String>,
    pub by: MatchedBy,
}

/// What applying one failure did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "kebab-case")]
pub enum Effect {
    /// A hard bounce: the subscriber is now `bounced`.
    Bounced,
    /// A soft bounce, counted: `in_a_row` issues in a row now have one.
    SoftCounted { in_a_row: u32, limit: u32 },
    /// The soft bounce that reached the limit: now `bounced`.
    BouncedAfterSoft { in_a_row: u32 },
    /// A complaint: now unsubscribed and suppressed.
    Unsubscribed,
    /// Recorded, but the address was suppressed already.
    AlreadySuppressed,
    /// This message (or this send's reply) was applied before: nothing changed.
    AlreadyRecorded,
}

/// The short token VERP puts in a subscriber's envelope sender: derived from their
/// unsubscribe token, so bounces can be matched to them, while the address the whole
/// path of the mail sees does not carry the unsubscribe secret itself.
pub fn verp_token(unsubscribe_token: &str) -> String {
    let digest = Sha256::digest(format!("newsdesk-verp:{unsubscribe_token}").as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a raw message, hex: its identity in `bounces` and its file name in the
/// archive.
pub fn message_sha256(raw: &[u8]) -> String {
    Sha256::digest(raw).iter().map(|b| format!("{b:02x}")).collect()
}

/// The subscriber whose VERP token this is. The token is a hash of the unsubscribe
/// token, so it cannot be looked up by itself: `subscribers.verp` caches it, and rows
/// without one yet (everyone at first, then whoever joined since) are filled in, in one
/// transaction, when a token is not found. So the hashing is paid once per subscriber,
/// not once per bounce.
pub fn by_verp(conn: &mut Connection, verp: &str) -> rusqlite::Result<Option<i64>> {
    let verp = verp.to_ascii_lowercase();
    let find =
        |c: &Connection| c.query_row("SELECT id FROM subscribers WHERE verp = ?1", [&verp], |r| r.get(0)).optional();
    if let Some(id) = find(conn)? {
        return Ok(Some(id));
    }
    let tx = conn.transaction()?;
    {
        let mut missing = tx.prepare("SELECT id, token FROM subscribers WHERE verp IS NULL")?;
        let rows: Vec<(i64, String)> =
            missing.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        let mut set = tx.prepare("UPDATE subscribers SET verp = ?2 WHERE id = ?1")?;
        for (id, token) in rows {
            set.execute(params![id, verp_token(&token)])?;
        }
    }
    tx.commit()?;
    find(conn)
}

/// The subscriber delivery with this `Message-ID` (with or without angle brackets).
pub fn by_message_id(conn: &Connection, message_id: &str) -> rusqlite::Result<Option<(i64, String)>> {
    let bare = message_id.trim().trim_start_matches('<').trim_end_matches('>');
    conn.query_row(
        "SELECT subscriber_id, issue FROM deliveries
         WHERE message_id IN (?1, '<' || ?1 || '>') AND kind = 'subscriber' AND subscriber_id IS NOT NULL
         ORDER BY id DESC LIMIT 1",
        [bare],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// The subscriber with this address (ignoring ASCII case).
pub fn by_address(conn: &Connection, address: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT id FROM subscribers WHERE email = ?1", [address.trim()], |r| r.get(0)).optional()
}

/// The issue a bounce without a known Message-ID is about: the newest one the
/// subscriber was sent (bounces come back within days, and before the next issue).
fn latest_issue(conn: &Connection, subscriber_id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT issue FROM deliveries WHERE subscriber_id = ?1 AND kind = 'subscriber'
           AND state IN ('sent', 'sending', 'failed_permanent', 'failed_temporary')
         ORDER BY COALESCE(sent_at, updated_at) DESC, id DESC LIMIT 1",
        [subscriber_id],
        |r| r.get(0),
    )
    .optional()
}

/// Records `failure` for `target` and applies it. `source_sha256` is the raw message's
/// hash (`None` for a send-time reply, which is unique per issue and subscriber). One
/// transaction: recorded and applied together, or neither.
pub fn apply(
    conn: &mut Connection,
    source_sha256: Option<&str>,
    failure: &Failure,
    target: &Target,
    soft_limit: u32,
) -> rusqlite::Result<Effect> {
    let tx = conn.transaction()?;
    let issue = match &target.issue {
        Some(i) => Some(i.clone()),
        None => latest_issue(&tx, target.subscriber_id)?,
    };
    let now = clock::now();
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO bounces (received_at, source_sha256, kind, subscriber_id, issue, address, status,
                                        permanent, reason, diagnostic, matched_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            now,
            source_sha256,
            failure.source.as_str(),
            target.subscriber_id,
            issue,
            failure.address,
            failure.status,
            failure.permanent,
            failure.reason,
            failure.diagnostic,
            target.by.as_str()
        ],
    )?;
    if inserted == 0 {
        tx.commit()?;
        return Ok(Effect::AlreadyRecorded);
    }
    let suppressed: Option<String> = tx
        .query_row("SELECT suppressed_reason FROM subscribers WHERE id = ?1", [target.subscriber_id], |r| r.get(0))
        .optional()?
        .flatten();
    if suppressed.is_some() {
        tx.commit()?;
        return Ok(Effect::AlreadySuppressed);
    }
    let detail = match (failure.status, failure.diagnostic) {
        (Some(s), Some(d)) => format!("{s} {d}"),
        (Some(s), None) => s.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => failure.reason.to_string(),
    };
    let suppress = |status: &str, reason: &str| {
        tx.execute(
            "UPDATE subscribers SET status = ?2, suppressed_reason = ?3, suppressed_at = ?4, suppressed_detail = ?5,
                    unsubscribed_at = CASE WHEN ?2 = 'unsubscribed' THEN COALESCE(unsubscribed_at, ?4) ELSE unsubscribed_at END
             WHERE id = ?1",
            params![target.subscriber_id, status, reason, now, detail],
        )
    };
    let effect = match failure.source {
        Source::Complaint => {
            suppress("unsubscribed", "complaint")?;
            Effect::Unsubscribed
        }
        _ if failure.permanent => {
            suppress("bounced", "hard-bounce")?;
            Effect::Bounced
        }
        _ => {
            let in_a_row = soft_in_a_row(&tx, target.subscriber_id, issue.as_deref())?;
            if in_a_row >= soft_limit {
                suppress("bounced", "soft-bounces")?;
                Effect::BouncedAfterSoft { in_a_row }
            } else {
                Effect::SoftCounted { in_a_row, limit: soft_limit }
            }
        }
    };
    tx.commit()?;
    Ok(effect)
}

/// How many issues in a row, around `issue` (the one the bounce is for), each had a
/// soft bounce for the subscriber, in the order they were sent. Counting around the
/// issue, not back from the newest: a bounce can arrive after the next issue went out.
fn soft_in_a_row(conn: &Connection, subscriber_id: i64, issue: Option<&str>) -> rusqlite::Result<u32> {
    let mut stmt = conn.prepare(
        "SELECT d.issue, EXISTS (SELECT 1 FROM bounces b WHERE b.subscriber_id = d.subscriber_id
                                   AND b.issue = d.issue AND b.kind != 'complaint' AND b.permanent = 0)
         FROM deliveries d WHERE d.subscriber_id = ?1 AND d.kind = 'subscriber' AND d.state != 'pending'
           AND d.state != 'cancelled'
         ORDER BY COALESCE(d.sent_at, d.updated_at), d.id",
    )?;
    let issues: Vec<(String, bool)> =
        stmt.query_map([subscriber_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    let Some(at) = issue.and_then(|i| issues.iter().position(|(x, _)| x == i)) else {
        // A bounce for no issue the ledger knows (a list imported with its history
        // elsewhere) counts once.
        return Ok(1);
    };
    let before = issues[..at].iter().rev().take_while(|(_, soft)| *soft).count();
    let after = issues[at..].iter().take_while(|(_, soft)| *soft).count();
    Ok(u32::try_from(before + after).unwrap_or(u32::MAX))
}

/// A subscriber delivery that the relay refused during the send (a 5xx, or 4xx replies
/// until the send gave up), not yet recorded as a bounce.
#[derive(Debug, Clone)]
pub struct Refused {
    pub issue: String,
    pub subscriber_id: i64,
    pub email: String,
    pub reply: String,
}

/// The send-time refusals not yet in `bounces`, of every issue: failed deliveries whose
/// reply is an SMTP reply (a render failure or a refused sender has none). Every issue,
/// so the refusals of a send that was killed before it recorded them count at the
/// next run; the partial index `deliveries_refused` keeps that to the failed rows.
pub fn unrecorded_refusals(conn: &Connection) -> rusqlite::Result<Vec<Refused>> {
    let mut stmt = conn.prepare(
        "SELECT d.issue, d.subscriber_id, d.email, d.reply FROM deliveries d
         WHERE d.kind = 'subscriber' AND d.state IN ('failed_permanent', 'failed_temporary')
           AND d.subscriber_id IS NOT NULL
           AND ((d.state = 'failed_permanent' AND d.reply GLOB '5[0-9][0-9][ -]*')
                OR (d.state = 'failed_temporary' AND d.reply GLOB '4[0-9][0-9][ -]*'))
           AND NOT EXISTS (SELECT 1 FROM bounces b WHERE b.kind = 'send-time' AND b.issue = d.issue
                           AND b.subscriber_id = d.subscriber_id)
         ORDER BY d.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Refused { issue: r.get(0)?, subscriber_id: r.get(1)?, email: r.get(2)?, reply: r.get(3)? })
    })?;
    rows.collect()
}

/// An address suppressed on the list, with why: for refusing a test send or a
/// confirmation mail.
pub fn suppression_of(conn: &Connection, address: &str) -> rusqlite::Result<Option<(String, String)>> {
    conn.query_row(
        "SELECT suppressed_reason, COALESCE(suppressed_at, '') FROM subscribers
         WHERE email = ?1 AND suppressed_reason IS NOT NULL",
        [address.trim()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// One issue's bounce figures, for `status` and the check before the next `send`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IssueBounces {
    pub issue: String,
    /// Subscriber messages the relay accepted.
    pub delivered: i64,
    /// Subscriber messages handed to the relay: accepted, or refused for good.
    pub sent: i64,
    /// Subscribers with a hard bounce (mail or send-time) for this issue.
    pub hard: i64,
    /// Subscribers with only soft bounces for it.
    pub soft: i64,
    pub complaints: i64,
    /// Complaints per delivered message (0 to 1).
    pub complaint_rate: f64,
    /// Hard bounces per message handed to the relay, refused ones included (0 to 1).
    pub hard_bounce_rate: f64,
}

impl IssueBounces {
    fn with_rates(mut self) -> IssueBounces {
        self.complaint_rate = if self.delivered == 0 { 0.0 } else { self.complaints as f64 / self.delivered as f64 };
        self.hard_bounce_rate = if self.sent == 0 { 0.0 } else { self.hard as f64 / self.sent as f64 };
        self
    }
}

/// The figures of `issue`.
pub fn for_issue(conn: &Connection, issue: &str) -> rusqlite::Result<IssueBounces> {
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM deliveries WHERE issue = ?1 AND kind = 'subscriber' AND state = 'sent'),
                (SELECT COUNT(*) FROM deliveries WHERE issue = ?1 AND kind = 'subscriber'
                   AND state IN ('sent', 'failed_permanent')),
                (SELECT COUNT(DISTINCT subscriber_id) FROM bounces WHERE issue = ?1 AND kind != 'complaint' AND permanent = 1),
                (SELECT COUNT(DISTINCT subscriber_id) FROM bounces b WHERE issue = ?1 AND kind != 'complaint' AND permanent = 0
                   AND NOT EXISTS (SELECT 1 FROM bounces h WHERE h.issue = ?1 AND h.subscriber_id = b.subscriber_id
                                   AND h.kind != 'complaint' AND h.permanent = 1)),
                (SELECT COUNT(DISTINCT subscriber_id) FROM bounces WHERE issue = ?1 AND kind = 'complaint')",
        [issue],
        |r| {
            Ok(IssueBounces {
                issue: issue.to_string(),
                delivered: r.get(0)?,
                sent: r.get(1)?,
                hard: r.get(2)?,
                soft: r.get(3)?,
                complaints: r.get(4)?,
                ..IssueBounces::default()
            }
            .with_rates())
        },
    )
}

/// The newest issue sent to subscribers before `issue` (by its first run), if any.
pub fn previous_issue(conn: &Connection, issue: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT issue FROM delivery_runs WHERE kind != 'list' AND issue != ?1
         GROUP BY issue ORDER BY MIN(started_at) DESC LIMIT 1",
        [issue],
        |r| r.get(0),
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db;

    fn site() -> (tempfile::TempDir, Connection, i64) {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open(&dir.path().join("n.db")).unwrap();
        crate::store::subscribers::add(&conn, "ann@example.org", None, false).unwrap();
        let id = by_address(&conn, "ANN@example.org").unwrap().unwrap();
        (dir, conn, id)
    }

    /// A sent delivery of `issue` to subscriber `id`, at `at`.
    fn sent(conn: &Connection, issue: &str, id: i64, at: &str) {
        conn.execute(
            "INSERT INTO delivery_runs (issue, label, kind, started_at) VALUES (?1, ?1, 'subscribers', ?2)",
            params![issue, at],
        )
        .unwrap();
        let run = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO deliveries (issue, label, kind, subscriber_id, email, run_id, state, attempts, message_id, sent_at, updated_at)
             VALUES (?1, ?1, 'subscriber', ?2, 'ann@example.org', ?3, 'sent', 1, ?4, ?5, ?5)",
            params![issue, id, run, format!("<{issue}.x@lwkd.example.org>"), at],
        )
        .unwrap();
    }

    fn soft<'a>() -> Failure<'a> {
        Failure {
            source: Source::Bounce,
            address: "ann@example.org",
            status: Some("4.2.2"),
            permanent: false,
            reason: "mailbox-full",
            diagnostic: Some("452 4.2.2 over quota"),
        }
    }

    fn status(conn: &Connection, id: i64) -> (String, Option<String>) {
        conn.query_row("SELECT status, suppressed_reason FROM subscribers WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    }

    #[test]
    fn soft_bounces_on_consecutive_issues_reach_the_limit() {
        let (_d, mut conn, id) = site();
        let target = |issue: &str| Target { subscriber_id: id, issue: Some(issue.into()), by: MatchedBy::Verp };
        sent(&conn, "w1", id, "2026-07-01T00:00:00.000Z");
        assert_eq!(
            apply(&mut conn, Some("m1"), &soft(), &target("w1"), 3).unwrap(),
            Effect::SoftCounted { in_a_row: 1, limit: 3 }
        );
        // The same message again changes nothing.
        assert_eq!(apply(&mut conn, Some("m1"), &soft(), &target("w1"), 3).unwrap(), Effect::AlreadyRecorded);
        // A second soft bounce for the same issue is the same issue.
        assert_eq!(
            apply(&mut conn, Some("m1b"), &soft(), &target("w1"), 3).unwrap(),
            Effect::SoftCounted { in_a_row: 1, limit: 3 }
        );
        // An issue delivered without a bounce ends the row.
        sent(&conn, "w2", id, "2026-07-08T00:00:00.000Z");
        sent(&conn, "w3", id, "2026-07-15T00:00:00.000Z");
        assert_eq!(
            apply(&mut conn, Some("m3"), &soft(), &target("w3"), 3).unwrap(),
            Effect::SoftCounted { in_a_row: 1, limit: 3 }
        );
        sent(&conn, "w4", id, "2026-07-22T00:00:00.000Z");
        assert_eq!(
            apply(&mut conn, Some("m4"), &soft(), &target("w4"), 3).unwrap(),
            Effect::SoftCounted { in_a_row: 2, limit: 3 }
        );
        assert_eq!(status(&conn, id), ("active".into(), None));
        sent(&conn, "w5", id, "2026-07-29T00:00:00.000Z");
        // No issue given: the newest one sent to them.
        let unplaced = Target { subscriber_id: id, issue: None, by: MatchedBy::Address };
        assert_eq!(
            apply(&mut conn, Some("m5"), &soft(), &unplaced, 3).unwrap(),
            Effect::BouncedAfterSoft { in_a_row: 3 }
        );
        assert_eq!(status(&conn, id), ("bounced".into(), Some("soft-bounces".into())));
        let f = for_issue(&conn, "w5").unwrap();
        assert_eq!((f.delivered, f.hard, f.soft, f.complaints), (1, 0, 1, 0));
    }

    #[test]
    fn a_late_soft_bounce_counts_with_the_issues_around_it() {
        let (_d, mut conn, id) = site();
        let target = |issue: &str| Target { subscriber_id: id, issue: Some(issue.into()), by: MatchedBy::Verp };
        for (i, at) in ["w1", "w2", "w3", "w4"].iter().zip(["07-01", "07-08", "07-15", "07-22"]) {
            sent(&conn, i, id, &format!("2026-{at}T00:00:00.000Z"));
        }
        // w1 and w3 bounced softly; w4 went out since, with no bounce so far.
        apply(&mut conn, Some("a"), &soft(), &target("w1"), 3).unwrap();
        assert_eq!(
            apply(&mut conn, Some("c"), &soft(), &target("w3"), 3).unwrap(),
            Effect::SoftCounted { in_a_row: 1, limit: 3 }
        );
        // w2's bounce arrives last: w1, w2 and w3 are three in a row.
        assert_eq!(
            apply(&mut conn, Some("b"), &soft(), &target("w2"), 3).unwrap(),
            Effect::BouncedAfterSoft { in_a_row: 3 }
        );
        assert_eq!(status(&conn, id), ("bounced".into(), Some("soft-bounces".into())));
    }

    #[test]
    fn a_hard_bounce_suppresses_at_once_and_a_complaint_unsubscribes() {
        let (_d, mut conn, id) = site();
        sent(&conn, "w1", id, "2026-07-01T00:00:00.000Z");
        let hard = Failure { status: Some("5.1.1"), permanent: true, reason: "user-unknown", ..soft() };
        let by_id = by_message_id(&conn, "w1.x@lwkd.example.org").unwrap().unwrap();
        assert_eq!(by_id, (id, "w1".to_string()));
        let target = Target { subscriber_id: id, issue: Some(by_id.1), by: MatchedBy::MessageId };
        assert_eq!(apply(&mut conn, Some("h"), &hard, &target, 3).unwrap(), Effect::Bounced);
        assert_eq!(status(&conn, id), ("bounced".into(), Some("hard-bounce".into())));
        assert_eq!(suppression_of(&conn, "Ann@example.org").unwrap().unwrap().0, "hard-bounce");
        // Later reports are recorded, the state stays.
        let complaint =
            Failure { source: Source::Complaint, status: None, permanent: false, reason: "complaint", ..soft() };
        assert_eq!(apply(&mut conn, Some("c"), &complaint, &target, 3).unwrap(), Effect::AlreadySuppressed);
        let f = for_issue(&conn, "w1").unwrap();
        assert_eq!((f.delivered, f.hard, f.soft, f.complaints), (1, 1, 0, 1));

        crate::store::subscribers::add(&conn, "bob@example.org", None, false).unwrap();
        let bob = by_address(&conn, "bob@example.org").unwrap().unwrap();
        let target = Target { subscriber_id: bob, issue: None, by: MatchedBy::Verp };
        assert_eq!(
            apply(&mut conn, Some("c2"), &Failure { address: "bob@example.org", ..complaint }, &target, 3).unwrap(),
            Effect::Unsubscribed
        );
        assert_eq!(status(&conn, bob), ("unsubscribed".into(), Some("complaint".into())));
    }

    #[test]
    fn verp_tokens_are_found_and_are_not_the_unsubscribe_secret() {
        let (_d, conn, id) = site();
        let token: String = conn.query_row("SELECT token FROM subscribers WHERE id = ?1", [id], |r| r.get(0)).unwrap();
        let verp = verp_token(&token);
        assert_eq!(verp.len(), 16);
        assert!(!token.contains(&verp));
        let mut conn = conn;
        assert_eq!(by_verp(&mut conn, &verp.to_ascii_uppercase()).unwrap(), Some(id));
        assert_eq!(by_verp(&mut conn, "0000000000000000").unwrap(), None);
        // A subscriber who joins later is found too.
        crate::store::subscribers::add(&conn, "later@example.org", None, false).unwrap();
        let later = by_address(&conn, "later@example.org").unwrap().unwrap();
        let token: String =
            conn.query_row("SELECT token FROM subscribers WHERE id = ?1", [later], |r| r.get(0)).unwrap();
        assert_eq!(by_verp(&mut conn, &verp_token(&token)).unwrap(), Some(later));
    }
}
