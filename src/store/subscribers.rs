//! The subscriber list, kept in the embedded database next to the send ledger.
//!
//! Addresses are validated and normalised on the way in (trimmed, the domain in its
//! lowercase ASCII form: see [`normalise`]), so one person is one row whatever the
//! spelling of the import. Unsubscribing keeps
//! the row and only flips its status: a later import of an old list must never
//! resubscribe someone who asked to leave. Every subscriber gets a random secret
//! token for their unsubscribe link; the token, not the address, goes in the URL.

use super::clock;
use crate::diag::Diagnostic;
use crate::store::db::{self, DbError};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Whether a subscriber receives issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberStatus {
    Active,
    Unsubscribed,
    /// Mail to the address bounced for good (see `store::bounces`): never mailed again.
    Bounced,
}

impl SubscriberStatus {
    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberStatus::Active => "active",
            SubscriberStatus::Unsubscribed => "unsubscribed",
            SubscriberStatus::Bounced => "bounced",
        }
    }

    fn from_db(s: &str) -> SubscriberStatus {
        match s {
            "active" => SubscriberStatus::Active,
            "bounced" => SubscriberStatus::Bounced,
            // The schema allows nothing else; anything odd is treated as not to be mailed.
            _ => SubscriberStatus::Unsubscribed,
        }
    }
}

/// One row of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscriber {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    /// The secret in the unsubscribe link. Never printed by `list`.
    #[serde(skip)]
    pub token: String,
    pub status: SubscriberStatus,
    pub subscribed_at: String,
    pub unsubscribed_at: Option<String>,
    /// Why the address is suppressed (bounces, a complaint), when it is: it is never
    /// mailed and an import does not bring it back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppression>,
}

/// Why and since when an address is never mailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    /// `hard-bounce`, `soft-bounces` or `complaint`.
    pub reason: String,
    pub since: String,
    /// The bounce's status and diagnostic, or the feedback report's type.
    pub detail: Option<String>,
}

/// What went wrong, worded for the editor.
#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("there is no subscriber database at `{}` yet: import a list first with `newsdesk subscribers import FILE.csv` (or check `[subscribers] database` in the config)", .0.display())]
    NoDatabase(PathBuf),
    #[error("cannot read `{path}`: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
    #[error("`{address}` is not a valid email address: {reason}")]
    BadAddress { address: String, reason: String },
    #[error("no subscriber has the address `{0}`")]
    NotFound(String),
    #[error("no subscriber has this unsubscribe token (they may have been removed from the list)")]
    UnknownToken,
    #[error(
        "this is not an unsubscribe token: tokens are the 32 hexadecimal digits at the end of a subscriber's unsubscribe link"
    )]
    NotAToken,
    #[error("`{email}` unsubscribed on {when}; pass --resubscribe to add them again (only with their consent)")]
    WasUnsubscribed { email: String, when: String },
    #[error(
        "mail to `{email}` {why} on {when}, so it is suppressed; pass --resubscribe to add it again (only if you know the address works now)"
    )]
    Suppressed { email: String, why: &'static str, when: String },
}

/// The reason stored in `suppressed_reason`, in words: `mail to X {this} on DATE`.
pub fn suppression_words(reason: &str) -> &'static str {
    match reason {
        "hard-bounce" => "bounced for good",
        "soft-bounces" => "bounced on too many issues in a row",
        "complaint" => "was reported as spam by its reader",
        _ => "was suppressed",
    }
}

/// Opens the database for commands that read an existing list: a missing file is an
/// error naming the path rather than a silently created empty list.
pub fn open_existing(path: &Path) -> Result<Connection, SubscriberError> {
    if !path.exists() {
        return Err(SubscriberError::NoDatabase(path.to_path_buf()));
    }
    Ok(db::open(path)?)
}

/// The longest address text read, a name included: the line limit of RFC 5322. Longer
/// text is refused before it is parsed.
const MAX_ADDRESS_LEN: usize = 998;

/// Validates and normalises one address as an editor types it or a list holds it:
/// `jane@example.org`, `Jane Doe <jane@example.org>`, or with the name quoted as mail
/// quotes it (`"Doe, Jane" <jane@example.org>`, `"Jane \"JD\" Doe" <...>`), read by
/// lettre's RFC 5322 mailbox parser. Returns the address and the name, when one was given.
///
/// The address is stored in one form whatever its spelling, so one person is one row:
/// - the local part as written (matching ignores ASCII case, as the database does);
/// - the domain in its ASCII form, lowercased (IDNA, UTS #46, with the hostname rules
///   of RFC 5321): `jane@BÜCHER.de` and `jane@xn--bcher-kva.de` are both
///   `jane@xn--bcher-kva.de`. That is the form SMTP needs without SMTPUTF8, and the
///   one a mail server announces.
///
/// Lists written before domains were stored in ASCII may hold a domain as it was
/// typed, lowercased (`jane@bücher.de`). Those rows are kept as they are (no
/// migration: rewriting them could make two rows collide, and merging people is not
/// newsdesk's call): lookups by address ([`find`], imports, `unsubscribe --email`,
/// `remove`) match both spellings instead.
pub fn normalise(raw: &str) -> Result<(String, Option<String>), String> {
    let raw = raw.trim().trim_start_matches('\u{feff}').trim();
    if raw.is_empty() {
        return Err("the address is empty".into());
    }
    if raw.len() > MAX_ADDRESS_LEN {
        return Err(format!("it is too long ({} bytes; an address and its name fit in {MAX_ADDRESS_LEN})", raw.len()));
    }
    let mailbox: lettre::message::Mailbox = raw.parse().map_err(|_| why_not_an_address(raw))?;
    let address = stored_address(mailbox.email.user(), mailbox.email.domain())?;
    Ok((address, mailbox.name.as_deref().and_then(clean_name)))
}

/// `user@domain` in its stored form (see [`normalise`]), or why it cannot be one.
fn stored_address(user: &str, domain: &str) -> Result<String, String> {
    use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
    if domain.is_empty() {
        return Err("there is nothing after the `@`".into());
    }
    let ascii = Uts46::new()
        .to_ascii(domain.as_bytes(), AsciiDenyList::STD3, Hyphens::CheckFirstLast, DnsLength::Verify)
        .map_err(|_| format!("`{domain}` is not a valid domain name"))?;
    if !ascii.contains('.') {
        return Err(format!("`{domain}` is not a full domain name (e.g. `example.org`)"));
    }
    let address = lettre::Address::new(user, &*ascii).map_err(|e| match e {
        lettre::address::AddressError::InvalidUser => format!("`{user}` is not a valid mailbox name"),
        lettre::address::AddressError::InvalidDomain => format!("`{domain}` is not a valid domain name"),
        other => other.to_string(),
    })?;
    Ok(address.to_string())
}

/// Why `raw` (trimmed, not empty) is not one mailbox, in the editor's words.
fn why_not_an_address(raw: &str) -> String {
    let (addr, named) = match (raw.rfind('<'), raw.ends_with('>')) {
        (Some(open), true) => (&raw[open + 1..raw.len() - 1], open > 0),
        (None, false) => (raw, false),
        _ => return "unbalanced angle brackets".into(),
    };
    if addr.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return "an address cannot contain spaces".into();
    }
    let Some((user, domain)) = addr.rsplit_once('@') else {
        return "there is no `@`".into();
    };
    if user.is_empty() {
        return "there is nothing before the `@`".into();
    }
    if let Err(why) = stored_address(user, domain) {
        return why;
    }
    if named {
        "write `Name <address>` with one address, and put a name holding `,`, `<`, `@` or `\"` in quotes: `\"Doe, Jane\" <jane@example.org>`".into()
    } else {
        "write `address` or `Name <address>`".into()
    }
}

/// The other spelling of a stored address that older lists may hold: the domain in
/// Unicode (`jane@bücher.de` for `jane@xn--bcher-kva.de`), or the address itself.
fn older_spelling(email: &str) -> String {
    let Some((user, domain)) = email.rsplit_once('@') else { return email.to_string() };
    match idna::domain_to_unicode(domain) {
        (unicode, Ok(())) if unicode != domain => format!("{user}@{unicode}"),
        _ => email.to_string(),
    }
}

/// Names end up in a `To:` header: control characters and line breaks become spaces.
pub fn clean_name(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!cleaned.is_empty()).then_some(cleaned)
}

/// Characters in an unsubscribe token (128 bits as hexadecimal digits).
pub const TOKEN_LEN: usize = 32;

/// A new random unsubscribe token: 128 bits from the OS, as 32 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an import did. Every row read has exactly one outcome, so `added + renamed +
/// unchanged + kept_unsubscribed + unsubscribed + duplicates + rejected.len() == rows`.
#[derive(Debug, Default, Serialize)]
pub struct ImportOutcome {
    /// Rows read (not counting the header, blank lines and `#` comments).
    pub rows: usize,
    pub added: usize,
    /// Existing subscribers whose name changed.
    pub renamed: usize,
    pub unchanged: usize,
    /// Rows for people who had unsubscribed: left unsubscribed.
    pub kept_unsubscribed: usize,
    /// Rows for suppressed addresses (bounced, or reported as spam): left suppressed,
    /// each listed in `suppressed_rows`.
    pub kept_suppressed: usize,
    /// The suppressed addresses the file named, with why.
    pub suppressed_rows: Vec<SuppressedRow>,
    /// Rows the file itself marks suppressed (`status` `bounced`, or a
    /// `suppressed_reason`, as `export --all` writes them): suppressed on the list.
    pub suppressed: usize,
    /// Rows whose `status` column said `unsubscribed`, applied to the list.
    pub unsubscribed: usize,
    /// Rows that repeat an earlier row of the file exactly: skipped, with a warning.
    pub duplicates: usize,
    /// The field separator, read from the first line: `,`, `;` or a tab.
    pub delimiter: String,
    /// One error per rejected row, with its line.
    #[serde(skip)]
    pub rejected: Vec<Diagnostic>,
    /// Warnings (repeated rows), with their lines.
    #[serde(skip)]
    pub warnings: Vec<Diagnostic>,
}

impl ImportOutcome {
    /// Rows that are on the list as the file says (added, updated or already there).
    pub fn imported(&self) -> usize {
        self.added
            + self.renamed
            + self.unchanged
            + self.kept_unsubscribed
            + self.kept_suppressed
            + self.suppressed
            + self.unsubscribed
    }
}

/// What an import reads of an existing row: id, name, status, suppressed reason, since.
type ExistingRow = (i64, Option<String>, String, Option<String>, Option<String>);

/// A row of an import naming a suppressed address.
#[derive(Debug, Clone, Serialize)]
pub struct SuppressedRow {
    pub line: u64,
    pub email: String,
    pub reason: String,
    pub since: String,
}

/// Which column holds what, from the header (or the default `email,name[,status]`).
struct Columns {
    email: usize,
    name: Option<usize>,
    status: Option<usize>,
    /// `suppressed_reason`, as `export --all` writes it.
    reason: Option<usize>,
}

impl Columns {
    /// `Some` when `fields` is a header row naming an email column.
    fn from_header(fields: &[String]) -> Option<Columns> {
        let find = |names: &[&str]| {
            fields.iter().position(|f| {
                let f = f.trim().trim_start_matches('\u{feff}').to_lowercase();
                names.contains(&f.as_str())
            })
        };
        let email = find(&["email", "e-mail", "email address", "e-mail address", "address", "mail"])?;
        Some(Columns {
            email,
            name: find(&["name", "full name", "display name"]),
            status: find(&["status"]),
            reason: find(&["suppressed_reason"]),
        })
    }
}

/// Imports `path` (CSV, `email,name` with or without a header). Valid rows are
/// imported in one transaction; bad rows are reported with their line and skipped.
pub fn import_csv(conn: &mut Connection, path: &Path) -> Result<ImportOutcome, SubscriberError> {
    let file = std::fs::File::open(path)
        .map_err(|source| SubscriberError::Read { path: path.display().to_string(), source })?;
    import_reader(conn, file, path)
}

/// Where each line starts, for turning byte offsets into line numbers. A line ends at
/// `\n`, `\r\n` or a lone `\r`, as the CSV reader counts them.
struct Lines(Vec<usize>);

impl Lines {
    fn new(bytes: &[u8]) -> Lines {
        let mut starts = vec![0];
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        Lines(starts)
    }

    /// The 1-based line holding byte `offset`.
    fn of(&self, offset: u64) -> u64 {
        self.0.partition_point(|&start| start as u64 <= offset).max(1) as u64
    }

    /// The line of the record the reader placed at `offset`: the reader may place it on
    /// the line end (the `\n` of a `\r\n`), or on blank and `#` comment lines before
    /// it, so those are skipped.
    fn of_record(&self, bytes: &[u8], offset: u64) -> u64 {
        let mut at = (offset as usize).min(bytes.len());
        loop {
            while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
                at += 1;
            }
            if bytes.get(at) != Some(&b'#') {
                break;
            }
            while at < bytes.len() && !matches!(bytes[at], b'\r' | b'\n') {
                at += 1;
            }
        }
        self.of(at.min(bytes.len().saturating_sub(1)) as u64)
    }
}

/// The separator of a file: `;` or a tab when the first line (outside quotes) has
/// more of it than of commas, else `,`.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let first = bytes
        .split(|&b| b == b'\n' || b == b'\r')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace) && !l.starts_with(b"#"))
        .unwrap_or(&[]);
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in first {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).unwrap_or(0);
    if counts[best] == 0 { b',' } else { [b',', b';', b'\t'][best] }
}

/// [`import_csv`] from any reader; `path` names the source in messages.
pub fn import_reader(
    conn: &mut Connection,
    mut input: impl Read,
    path: &Path,
) -> Result<ImportOutcome, SubscriberError> {
    let read_error = |source| SubscriberError::Read { path: path.display().to_string(), source };
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(read_error)?;
    let lines = Lines::new(&bytes);
    let delimiter = sniff_delimiter(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .delimiter(delimiter)
        .from_reader(&bytes[..]);
    let shown_delimiter = if delimiter == b'\t' { "a tab".to_string() } else { format!("`{}`", delimiter as char) };
    let mut out = ImportOutcome { delimiter: (delimiter as char).to_string(), ..ImportOutcome::default() };
    let mut columns: Option<Columns> = None;
    // Each address seen in this file: its line, name and status.
    let mut seen: std::collections::HashMap<String, (u64, Option<String>, SubscriberStatus)> =
        std::collections::HashMap::new();
    let tx = conn.transaction()?;
    let now = clock::now();
    {
        let mut find = tx.prepare(
            "SELECT id, name, status, suppressed_reason, suppressed_at FROM subscribers WHERE email IN (?1, ?2) ORDER BY email = ?1 DESC, id LIMIT 1",
        )?;
        let mut insert = tx.prepare(
            "INSERT INTO subscribers (email, name, token, status, subscribed_at, unsubscribed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?4 = 'unsubscribed' THEN ?5 END)",
        )?;
        let mut rename = tx.prepare("UPDATE subscribers SET name = ?2 WHERE id = ?1")?;
        let suppress_sql = "UPDATE subscribers SET status = ?2, suppressed_reason = ?3, suppressed_at = ?4,
                    unsubscribed_at = COALESCE(unsubscribed_at, ?4), suppressed_detail = 'imported'";
        let mut suppress_row = tx.prepare(&format!("{suppress_sql} WHERE email = ?1"))?;
        let mut suppress_id = tx.prepare(&format!("{suppress_sql} WHERE id = ?1"))?;
        let mut unsub =
            tx.prepare("UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?2 WHERE id = ?1")?;
        let mut record = csv::ByteRecord::new();
        loop {
            let start = reader.position().byte();
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    if let csv::ErrorKind::Io(io) = e.kind() {
                        return Err(read_error(std::io::Error::new(io.kind(), io.to_string())));
                    }
                    out.rows += 1;
                    let line = lines.of_record(&bytes, e.position().map_or(start, |p| p.byte()));
                    out.rejected.push(row_problem(
                        path,
                        line,
                        "unreadable-row",
                        format!("cannot read this row: {e}"),
                        None,
                    ));
                    continue;
                }
            }
            let line = lines.of_record(&bytes, record.position().map_or(start, |p| p.byte()));
            let fields: Vec<String> = match record.iter().map(|f| std::str::from_utf8(f).map(str::to_string)).collect()
            {
                Ok(f) => f,
                Err(_) => {
                    if columns.is_none() {
                        columns = Some(Columns { email: 0, name: Some(1), status: Some(2), reason: None });
                    }
                    out.rows += 1;
                    out.rejected.push(row_problem(
                        path,
                        line,
                        "bad-encoding",
                        "this row is not valid UTF-8".into(),
                        Some("save the file as UTF-8 (in a spreadsheet: \"CSV UTF-8\")"),
                    ));
                    continue;
                }
            };
            if fields.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            if columns.is_none() {
                if let Some(c) = Columns::from_header(&fields) {
                    columns = Some(c);
                    continue;
                }
                columns = Some(Columns { email: 0, name: Some(1), status: Some(2), reason: None });
            }
            let Some(cols) = columns.as_ref() else { continue };
            out.rows += 1;
            let raw_email = fields.get(cols.email).map(String::as_str).unwrap_or("");
            let (email, angle_name) = match normalise(raw_email) {
                Ok(v) => v,
                Err(reason) => {
                    let shown = raw_email.trim();
                    let message = if shown.is_empty() {
                        "this row has no email address".to_string()
                    } else {
                        format!("`{shown}` is not a valid email address: {reason}")
                    };
                    let other =
                        [';', '\t', ','].into_iter().find(|&c| c as u32 != delimiter as u32 && shown.contains(c));
                    let help = match other {
                        Some(c) => format!(
                            "is the file separated by {}? The first line decides the separator, and this file's is {shown_delimiter}: give the file a header row such as `email{}name`, or fix the row",
                            if c == '\t' { "tabs".to_string() } else { format!("`{c}`") },
                            if c == '\t' { "<tab>".to_string() } else { c.to_string() },
                        ),
                        None => {
                            "fix or delete the row and import again (rows already imported are not duplicated)".into()
                        }
                    };
                    out.rejected.push(row_problem(path, line, "bad-address", message, Some(&help)));
                    continue;
                }
            };
            let name = cols.name.and_then(|i| fields.get(i)).and_then(|n| clean_name(n)).or(angle_name);
            let status = match cols.status.and_then(|i| fields.get(i)).map(|s| s.trim().to_lowercase()).as_deref() {
                None | Some("") | Some("active") | Some("subscribed") => SubscriberStatus::Active,
                Some("unsubscribed") => SubscriberStatus::Unsubscribed,
                Some("bounced") => SubscriberStatus::Bounced,
                Some(other) => {
                    out.rejected.push(row_problem(
                        path,
                        line,
                        "bad-status",
                        format!("unknown status `{other}`"),
                        Some("use `active`, `unsubscribed`, `bounced` or leave the column empty"),
                    ));
                    continue;
                }
            };
            // A suppression the file carries (an export of another list): kept.
            let suppress: Option<&'static str> =
                match cols.reason.and_then(|i| fields.get(i)).map(|s| s.trim().to_lowercase()).as_deref() {
                    Some("hard-bounce") => Some("hard-bounce"),
                    Some("soft-bounces") => Some("soft-bounces"),
                    Some("complaint") => Some("complaint"),
                    _ if status == SubscriberStatus::Bounced => Some("hard-bounce"),
                    _ => None,
                };
            let status = match suppress {
                Some("complaint") => SubscriberStatus::Unsubscribed,
                Some(_) => SubscriberStatus::Bounced,
                None => status,
            };
            // Matching ignores ASCII case, as the database does.
            match seen.get(&email.to_ascii_lowercase()) {
                Some((first, first_name, first_status)) if *first_name == name && *first_status == status => {
                    out.duplicates += 1;
                    out.warnings.push(
                        Diagnostic::warning(
                            "repeated-row",
                            format!(
                                "`{}` is already on line {first}: this row repeats it and was skipped",
                                raw_email.trim()
                            ),
                        )
                        .in_file(path)
                        .at(line as usize, 0)
                        .help("delete one of the two rows"),
                    );
                    continue;
                }
                Some((first, _, _)) => {
                    out.rejected.push(row_problem(
                        path,
                        line,
                        "conflicting-row",
                        format!(
                            "`{}` is already on line {first} with a different name or status: this row was not imported",
                            raw_email.trim()
                        ),
                        Some(&format!("keep the right one of lines {first} and {line} (line {first}'s was imported) and import again")),
                    ));
                    continue;
                }
                None => {
                    seen.insert(email.to_ascii_lowercase(), (line, name.clone(), status));
                }
            }
            let existing: Option<ExistingRow> = find
                .query_row([&email, &older_spelling(&email)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?;
            match existing {
                None if suppress.is_some() => {
                    insert.execute(params![email, name, new_token(), "unsubscribed", now])?;
                    suppress_row.execute(params![email, status.as_str(), suppress, now])?;
                    out.suppressed += 1;
                }
                None => {
                    insert.execute(params![email, name, new_token(), status.as_str(), now])?;
                    out.added += 1;
                }
                // Never brought back by a list: it bounced or its reader reported spam.
                Some((_, _, _, Some(reason), since)) => {
                    out.kept_suppressed += 1;
                    out.suppressed_rows.push(SuppressedRow {
                        line,
                        email: email.clone(),
                        reason,
                        since: since.unwrap_or_default(),
                    });
                }
                Some((id, _, _, None, _)) if suppress.is_some() => {
                    suppress_id.execute(params![id, status.as_str(), suppress, now])?;
                    out.suppressed += 1;
                }
                Some((id, old_name, old_status, None, _)) => {
                    // One outcome per row: unsubscribing beats keeping unsubscribed beats renaming.
                    let was_unsubscribed = SubscriberStatus::from_db(&old_status) == SubscriberStatus::Unsubscribed;
                    let renamed = name.is_some() && name != old_name;
                    if renamed {
                        rename.execute(params![id, name])?;
                    }
                    if status == SubscriberStatus::Unsubscribed && !was_unsubscribed {
                        unsub.execute(params![id, now])?;
                        out.unsubscribed += 1;
                    } else if was_unsubscribed && status == SubscriberStatus::Active {
                        out.kept_unsubscribed += 1;
                    } else if renamed {
                        out.renamed += 1;
                    } else {
                        out.unchanged += 1;
                    }
                }
            }
        }
    }
    tx.commit()?;
    Ok(out)
}

fn row_problem(path: &Path, line: u64, code: &'static str, message: String, help: Option<&str>) -> Diagnostic {
    let d = Diagnostic::error(code, message).in_file(path).at(line as usize, 0);
    match help {
        Some(h) => d.help(h),
        None => d,
    }
}

/// What `add` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddOutcome {
    Added,
    /// Already on the list; the name was updated if one was given.
    AlreadySubscribed,
    Resubscribed,
}

/// Adds one subscriber. Someone who unsubscribed is only added back with `resubscribe`.
pub fn add(
    conn: &Connection,
    raw_email: &str,
    name: Option<&str>,
    resubscribe: bool,
) -> Result<(String, AddOutcome), SubscriberError> {
    let (email, angle_name) = normalise(raw_email)
        .map_err(|reason| SubscriberError::BadAddress { address: raw_email.trim().to_string(), reason })?;
    let name = name.and_then(clean_name).or(angle_name);
    let existing = find(conn, &email)?;
    let now = clock::now();
    let outcome = match existing {
        None => {
            conn.execute(
                "INSERT INTO subscribers (email, name, token, status, subscribed_at) VALUES (?1, ?2, ?3, 'active', ?4)",
                params![email, name, new_token(), now],
            )?;
            AddOutcome::Added
        }
        Some(s) => {
            if name.is_some() && name != s.name {
                conn.execute("UPDATE subscribers SET name = ?2 WHERE id = ?1", params![s.id, name])?;
            }
            match s.status {
                SubscriberStatus::Active => AddOutcome::AlreadySubscribed,
                SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced if resubscribe => {
                    conn.execute(
                        "UPDATE subscribers SET status = 'active', unsubscribed_at = NULL, subscribed_at = ?2,
                                suppressed_reason = NULL, suppressed_at = NULL, suppressed_detail = NULL
                         WHERE id = ?1",
                        params![s.id, now],
                    )?;
                    AddOutcome::Resubscribed
                }
                _ if s.suppressed.is_some() => {
                    let sup = s.suppressed.unwrap_or(Suppression {
                        reason: String::new(),
                        since: String::new(),
                        detail: None,
                    });
                    return Err(SubscriberError::Suppressed {
                        email: s.email,
                        why: suppression_words(&sup.reason),
                        when: sup.since,
                    });
                }
                SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced => {
                    return Err(SubscriberError::WasUnsubscribed {
                        email: s.email,
                        when: s.unsubscribed_at.unwrap_or_else(|| "an unknown date".into()),
                    });
                }
            }
        }
    };
    Ok((email, outcome))
}

/// Erases a subscriber and their delivery history (for "forget me" requests).
/// Use [`unsubscribe`] to stop mail while remembering not to re-add them.
pub fn remove(conn: &Connection, raw_email: &str) -> Result<String, SubscriberError> {
    let email = normalise(raw_email).map(|(e, _)| e).unwrap_or_else(|_| raw_email.trim().to_string());
    let n = conn.execute("DELETE FROM subscribers WHERE email IN (?1, ?2)", [&email, &older_spelling(&email)])?;
    if n == 0 {
        return Err(SubscriberError::NotFound(raw_email.trim().to_string()));
    }
    Ok(email)
}

/// Marks the subscriber with this address unsubscribed: the editor's command
/// (`newsdesk unsubscribe --email`), never what a reader's link carries.
/// Returns the subscriber as it was before, so callers can tell "already unsubscribed".
pub fn unsubscribe(conn: &Connection, email: &str) -> Result<Subscriber, SubscriberError> {
    let key = email.trim();
    let email = normalise(key).map(|(e, _)| e).unwrap_or_else(|_| key.to_string());
    let s = find(conn, &email)?.ok_or_else(|| SubscriberError::NotFound(key.to_string()))?;
    // Every row of the address: a list from before ASCII domains may hold both spellings.
    conn.execute(
        "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?3
         WHERE email IN (?1, ?2) AND status = 'active'",
        params![email, older_spelling(&email), clock::now()],
    )?;
    Ok(s)
}

/// Whether `text` has the shape of an unsubscribe token (see [`new_token`]).
pub fn is_token(text: &str) -> bool {
    text.len() == TOKEN_LEN && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Marks the subscriber whose unsubscribe token this is unsubscribed: what the link
/// in each message carries (`newsdesk unsubscribe TOKEN`). Anything that is not a
/// token is refused, and the token is never repeated in an error.
pub fn unsubscribe_token(conn: &Connection, token: &str) -> Result<Subscriber, SubscriberError> {
    let token = token.trim().to_ascii_lowercase();
    if !is_token(&token) {
        return Err(SubscriberError::NotAToken);
    }
    let s = query_one(conn, "WHERE token = ?1", &token)?.ok_or(SubscriberError::UnknownToken)?;
    mark_unsubscribed(conn, s)
}

/// Makes the holder of this unsubscribe token active again: the "resubscribe" button
/// on the page after an unsubscribe. Holding the token proves the mailbox, as a
/// confirm link does. Returns the subscriber as they were before.
pub fn resubscribe_token(conn: &Connection, token: &str) -> Result<Subscriber, SubscriberError> {
    let token = token.trim().to_ascii_lowercase();
    if !is_token(&token) {
        return Err(SubscriberError::NotAToken);
    }
    let s = query_one(conn, "WHERE token = ?1", &token)?.ok_or(SubscriberError::UnknownToken)?;
    if s.status == SubscriberStatus::Unsubscribed {
        // Holding the token proves the mailbox, and pressing the button is consent: a
        // complaint's suppression ends with it.
        conn.execute(
            "UPDATE subscribers SET status = 'active', unsubscribed_at = NULL, subscribed_at = ?2,
                    suppressed_reason = NULL, suppressed_at = NULL, suppressed_detail = NULL
             WHERE id = ?1",
            params![s.id, clock::now()],
        )?;
    }
    Ok(s)
}

fn mark_unsubscribed(conn: &Connection, s: Subscriber) -> Result<Subscriber, SubscriberError> {
    if s.status == SubscriberStatus::Active {
        conn.execute(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?2 WHERE id = ?1",
            params![s.id, clock::now()],
        )?;
    }
    Ok(s)
}

/// The subscriber with this (normalised) address, if any: stored so, or with the
/// domain in Unicode as older lists may hold it (see [`normalise`]).
pub fn find(conn: &Connection, email: &str) -> Result<Option<Subscriber>, SubscriberError> {
    let sql = format!("SELECT {COLUMNS} FROM subscribers WHERE email IN (?1, ?2) ORDER BY email = ?1 DESC, id LIMIT 1");
    Ok(conn.query_row(&sql, [email, &older_spelling(email)], from_row).optional()?)
}

const COLUMNS: &str = "id, email, name, token, status, subscribed_at, unsubscribed_at, suppressed_reason, suppressed_at, suppressed_detail";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Subscriber> {
    Ok(Subscriber {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        token: r.get(3)?,
        status: SubscriberStatus::from_db(&r.get::<_, String>(4)?),
        subscribed_at: r.get(5)?,
        unsubscribed_at: r.get(6)?,
        suppressed: match r.get::<_, Option<String>>(7)? {
            Some(reason) => Some(Suppression {
                reason,
                since: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                detail: r.get(9)?,
            }),
            None => None,
        },
    })
}

fn query_one(conn: &Connection, filter: &str, value: &str) -> Result<Option<Subscriber>, SubscriberError> {
    let sql = format!("SELECT {COLUMNS} FROM subscribers {filter}");
    Ok(conn.query_row(&sql, [value], from_row).optional()?)
}

/// Which subscribers a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Those who get the next issue.
    Active,
    /// Everyone, unsubscribed, bounced and suppressed included.
    All,
    /// Only suppressed addresses (bounced, or reported as spam).
    Suppressed,
}

/// Calls `f` for each subscriber in id order, one row at a time (the list is never
/// held in memory).
pub fn for_each(
    conn: &Connection,
    which: Which,
    mut f: impl FnMut(&Subscriber) -> Result<(), SubscriberError>,
) -> Result<(), SubscriberError> {
    let filter = match which {
        Which::Active => "WHERE status = 'active'",
        Which::All => "",
        Which::Suppressed => "WHERE suppressed_reason IS NOT NULL",
    };
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM subscribers {filter} ORDER BY id"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        f(&from_row(row)?)?;
    }
    Ok(())
}

/// Writes the list as CSV (`email,name,status,subscribed_at,unsubscribed_at`), which
/// `import` reads back. Tokens are secrets and are not exported.
pub fn export_csv(conn: &Connection, which: Which, out: impl Write) -> Result<usize, SubscriberError> {
    let mut w = csv::Writer::from_writer(out);
    let csv_err = |e: csv::Error| SubscriberError::Write(std::io::Error::other(e.to_string()));
    w.write_record([
        "email",
        "name",
        "status",
        "subscribed_at",
        "unsubscribed_at",
        "suppressed_reason",
        "suppressed_at",
    ])
    .map_err(csv_err)?;
    let mut n = 0;
    for_each(conn, which, |s| {
        n += 1;
        let sup = s.suppressed.as_ref();
        w.write_record([
            s.email.as_str(),
            s.name.as_deref().unwrap_or(""),
            s.status.as_str(),
            s.subscribed_at.as_str(),
            s.unsubscribed_at.as_deref().unwrap_or(""),
            sup.map(|x| x.reason.as_str()).unwrap_or(""),
            sup.map(|x| x.since.as_str()).unwrap_or(""),
        ])
        .map_err(csv_err)
    })?;
    w.flush()?;
    Ok(n)
}

/// SubscriberCounts of the list, for `subscribers list` and `status`.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct SubscriberCounts {
    pub active: i64,
    pub unsubscribed: i64,
    /// Addresses whose mail bounced for good.
    pub bounced: i64,
    /// Addresses never mailed (bounced, or reported as spam: `list --suppressed`).
    pub suppressed: i64,
    /// Addresses that asked on the web form and have not confirmed yet (not on the
    /// list: see [`super::confirmations`]).
    pub pending: i64,
}

/// How many subscribers are active and unsubscribed, and how many addresses wait for
/// their confirmation.
pub fn counts(conn: &Connection) -> Result<SubscriberCounts, SubscriberError> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(status = 'active'), 0), COALESCE(SUM(status = 'unsubscribed'), 0),
                (SELECT COUNT(*) FROM confirmations WHERE expires_at > ?1),
                COALESCE(SUM(status = 'bounced'), 0), COALESCE(SUM(suppressed_reason IS NOT NULL), 0)
         FROM subscribers",
        [clock::now()],
        |r| {
            Ok(SubscriberCounts {
                active: r.get(0)?,
                unsubscribed: r.get(1)?,
                pending: r.get(2)?,
                bounced: r.get(3)?,
                suppressed: r.get(4)?,
            })
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open(&dir.path().join("n.db")).unwrap();
        (dir, conn)
    }

    #[test]
    fn normalise_trims_and_lowercases_the_domain_only() {
        assert_eq!(normalise("  Ada@Example.ORG ").unwrap(), ("Ada@example.org".into(), None));
        assert_eq!(
            normalise("\"Ada Lovelace\" <ada@Example.org>").unwrap(),
            ("ada@example.org".into(), Some("Ada Lovelace".into()))
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a da@example.org",
            "ada@example..org",
            "a\"b@example.org",
            "<ada@x.org",
        ] {
            assert!(normalise(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn names_are_read_as_mail_reads_them() {
        for (raw, address, name) in [
            ("\"Doe, Jane\" <jane@x.org>", "jane@x.org", "Doe, Jane"),
            ("\"Jane <the boss>\" <jane@x.org>", "jane@x.org", "Jane <the boss>"),
            ("\"Jane \\\"JD\\\" Doe\" <jane@x.org>", "jane@x.org", "Jane \"JD\" Doe"),
            ("Jöran Ünal <jöran@X.org>", "jöran@x.org", "Jöran Ünal"),
            ("Ada<ada@x.org>", "ada@x.org", "Ada"),
        ] {
            assert_eq!(normalise(raw), Ok((address.to_string(), Some(name.to_string()))), "{raw}");
        }
        assert_eq!(normalise("<ada@x.org>"), Ok(("ada@x.org".into(), None)));
        assert_eq!(normalise("\"\" <ada@x.org>"), Ok(("ada@x.org".into(), None)));
        for bad in [
            "Jane <jane@x.org> <evil@y.org>",
            "jane@x.org, bob@x.org",
            "Ada <ada@x.org>>",
            "Ada <ada@x.org> trailing",
            "\"unterminated <ada@x.org>",
        ] {
            assert!(normalise(bad).is_err(), "{bad:?} should be rejected: {:?}", normalise(bad));
        }
    }

    #[test]
    fn domains_are_stored_in_their_ascii_form() {
        for raw in [
            "jane@BÜCHER.de",
            "jane@bücher.de",
            "jane@xn--bcher-kva.de",
            "jane@XN--BCHER-KVA.DE",
            "Jane <jane@Bücher.DE>",
        ] {
            assert_eq!(normalise(raw).unwrap().0, "jane@xn--bcher-kva.de", "{raw}");
        }
        // The local part stays as written.
        assert_eq!(normalise("Jöran@Bücher.de").unwrap().0, "Jöran@xn--bcher-kva.de");
        for (bad, named) in [
            ("jane@xn--zz.de", "`xn--zz.de`"),
            ("jane@bü cher.de", "spaces"),
            ("jane@b\u{fffd}cher.de", "`b\u{fffd}cher.de`"),
            ("jane@xn--bcher-kva", "`xn--bcher-kva`"),
            ("jane@-bücher.de", "`-bücher.de`"),
        ] {
            let why = normalise(bad).expect_err(bad);
            assert!(why.contains(named), "{bad}: {why}");
        }
        // Anything long is refused before it is parsed, in time linear in its length.
        for long in [format!("{}@x.org", "a".repeat(100_000)), format!("{} <a@x.org>", "a ".repeat(100_000))] {
            assert!(normalise(&long).unwrap_err().contains("long"), "{}", normalise(&long).unwrap_err());
        }
    }

    #[test]
    fn a_stored_address_reads_back_as_itself() {
        for raw in [
            "\"john doe\"@x.org",
            "\"a\\\"b\"@x.org",
            "Jane <\"j d\"@x.org>",
            "j.d+tag@sub.Bücher.DE",
            "jöran@x.org",
            "(comment) ada@x.org",
            "ada@x.org (comment)",
            "=?utf-8?q?J=C3=B6?= <j@x.org>",
            "!#$%&'*+-/=?^_`{|}~@x.org",
            "ada@[127.0.0.1]",
            "ada@x.org\u{0}",
        ] {
            // Quoted local parts, comments and address literals are refused, as before.
            let accepted = !raw.contains(['"', '(', '[', '\u{0}']);
            assert_eq!(normalise(raw).is_ok(), accepted, "{raw}: {:?}", normalise(raw));
            if let Ok((stored, _)) = normalise(raw) {
                assert_eq!(normalise(&stored), Ok((stored.clone(), None)), "{raw} → {stored}");
                assert!(!stored.chars().any(|c| c.is_whitespace() || c.is_control()), "{raw} → {stored:?}");
            }
        }
    }

    #[test]
    fn either_spelling_of_a_domain_is_one_subscriber() {
        let (_d, mut conn) = db();
        assert_eq!(
            add(&conn, "jane@BÜCHER.de", None, false).unwrap(),
            ("jane@xn--bcher-kva.de".into(), AddOutcome::Added)
        );
        assert_eq!(add(&conn, "jane@xn--bcher-kva.de", None, false).unwrap().1, AddOutcome::AlreadySubscribed);
        let out =
            import_reader(&mut conn, "jane@bücher.de\nJANE@XN--BCHER-KVA.DE\n".as_bytes(), Path::new("l.csv")).unwrap();
        assert_eq!((out.added, out.unchanged, out.duplicates), (0, 1, 1), "{:?}", out.warnings);
        assert_eq!(counts(&conn).unwrap().active, 1);
        assert_eq!(unsubscribe(&conn, "jane@Bücher.de").unwrap().email, "jane@xn--bcher-kva.de");
        assert_eq!(counts(&conn).unwrap().unsubscribed, 1);
        assert_eq!(remove(&conn, "jane@bücher.de").unwrap(), "jane@xn--bcher-kva.de");
        assert_eq!(counts(&conn).unwrap().unsubscribed, 0);
    }

    /// Rows stored before domains were stored in ASCII hold the domain as written,
    /// lowercased (`jane@bücher.de`): they are found by either spelling and kept as they are.
    #[test]
    fn rows_stored_with_a_unicode_domain_are_found_by_either_spelling() {
        let (_d, mut conn) = db();
        let legacy = |conn: &Connection, email: &str, token: &str| {
            conn.execute(
                "INSERT INTO subscribers (email, token, status, subscribed_at) VALUES (?1, ?2, 'active', 'then')",
                params![email, token],
            )
            .unwrap();
        };
        legacy(&conn, "jane@bücher.de", "t1");
        for spelling in ["jane@xn--bcher-kva.de", "jane@BÜCHER.de", "JANE@bücher.de"] {
            let found = find(&conn, &normalise(spelling).unwrap().0).unwrap();
            assert_eq!(found.map(|s| s.email).as_deref(), Some("jane@bücher.de"), "{spelling}");
        }
        assert_eq!(add(&conn, "jane@xn--bcher-kva.de", Some("Jane"), false).unwrap().1, AddOutcome::AlreadySubscribed);
        let out = import_reader(&mut conn, "jane@XN--bcher-kva.de,Jane\n".as_bytes(), Path::new("l.csv")).unwrap();
        assert_eq!((out.added, out.unchanged), (0, 1));
        // Nothing was merged or rewritten: one row, as stored.
        let rows: Vec<(String, Option<String>)> = conn
            .prepare("SELECT email, name FROM subscribers")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows, [("jane@bücher.de".to_string(), Some("Jane".to_string()))]);

        // Both spellings stored (possible before): unsubscribing by address stops both.
        legacy(&conn, "jane@xn--bcher-kva.de", "t2");
        assert_eq!(unsubscribe(&conn, "jane@bücher.de").unwrap().email, "jane@xn--bcher-kva.de");
        assert_eq!(counts(&conn).unwrap().active, 0);
        assert_eq!(counts(&conn).unwrap().unsubscribed, 2);
        assert!(matches!(add(&conn, "jane@BÜCHER.de", None, false), Err(SubscriberError::WasUnsubscribed { .. })));
        remove(&conn, "jane@xn--bcher-kva.de").unwrap();
        assert_eq!(counts(&conn).unwrap().unsubscribed, 0, "remove erases every spelling");
    }

    #[test]
    fn tokens_are_random_and_url_safe() {
        let a = new_token();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_token());
    }

    #[test]
    fn names_cannot_smuggle_header_lines() {
        assert_eq!(clean_name(" Ada\r\nBcc: x@evil.org "), Some("Ada Bcc: x@evil.org".into()));
        assert_eq!(clean_name(" \t "), None);
    }

    #[test]
    fn import_reports_bad_rows_by_line_and_keeps_the_good_ones() {
        let (_d, mut conn) = db();
        let csv =
            "email,name\nada@example.org,Ada\nnot-an-address,Bob\n\n\"carol@example.org\",\"Carol, C.\"\n,Nobody\n";
        let out = import_reader(&mut conn, csv.as_bytes(), Path::new("list.csv")).unwrap();
        assert_eq!(out.added, 2);
        let lines: Vec<usize> = out.rejected.iter().map(|d| d.line).collect();
        assert_eq!(lines, [3, 6]);
        assert!(out.rejected[0].message.contains("not-an-address"), "{}", out.rejected[0].message);
        let carol = find(&conn, "carol@example.org").unwrap().unwrap();
        assert_eq!(carol.name.as_deref(), Some("Carol, C."));
    }

    #[test]
    fn unsubscribe_survives_reimport() {
        let (_d, mut conn) = db();
        let csv = "ada@example.org,Ada\nbob@example.org\n";
        import_reader(&mut conn, csv.as_bytes(), Path::new("l.csv")).unwrap();
        let ada = find(&conn, "ada@example.org").unwrap().unwrap();
        let before = unsubscribe_token(&conn, &ada.token).unwrap();
        assert_eq!(before.status, SubscriberStatus::Active);
        let again = import_reader(&mut conn, csv.as_bytes(), Path::new("l.csv")).unwrap();
        assert_eq!((again.added, again.kept_unsubscribed, again.unchanged), (0, 1, 1));
        assert_eq!(find(&conn, "ada@example.org").unwrap().unwrap().status, SubscriberStatus::Unsubscribed);
        assert!(matches!(add(&conn, "ada@example.org", None, false), Err(SubscriberError::WasUnsubscribed { .. })));
        assert_eq!(add(&conn, "ADA@EXAMPLE.ORG", None, true).unwrap().1, AddOutcome::Resubscribed);
    }

    #[test]
    fn rejected_rows_are_on_their_own_line_whatever_the_line_ends() {
        for (csv, want) in [
            ("ok@example.org\n# a comment\nbad\n", vec![3]),
            ("ok@example.org\r\n# a comment\r\nbad\r\n", vec![3]),
            ("\n\n\nbad\r\n\r\n\r\nworse", vec![4, 7]),
            ("ok@example.org\rbad\r", vec![2]),
            ("email\r\n\"a\r\nb\"\r\nbad\r\n", vec![2, 4]),
        ] {
            let (_d, mut conn) = db();
            let out = import_reader(&mut conn, csv.as_bytes(), Path::new("l.csv")).unwrap();
            let lines: Vec<usize> = out.rejected.iter().map(|d| d.line).collect();
            assert_eq!(lines, want, "{csv:?}");
        }
    }
}
