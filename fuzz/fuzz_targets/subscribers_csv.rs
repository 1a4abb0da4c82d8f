//! `newsdesk subscribers import` on arbitrary bytes, into a database in memory that
//! already holds an active and an unsubscribed subscriber (so updates, renames and
//! "kept unsubscribed" are reached too).
//!
//! Beyond not panicking: every reported row has a line number within the input, every
//! row read has exactly one outcome, and the database holds only valid, normalised,
//! distinct addresses with well-formed tokens.
//!
//! Run: `cargo +nightly fuzz run subscribers_csv -- -max_total_time=180`

#![no_main]

use libfuzzer_sys::fuzz_target;
use newsdesk::store::subscribers::{self, import_reader, normalise};
use std::collections::HashSet;
use std::path::Path;

/// Lines of `data` as the import counts them: a line ends at `\n`, `\r\n` or a lone `\r`.
fn line_count(data: &[u8]) -> usize {
    let breaks = data
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n')))
        .count();
    breaks + 1
}

fuzz_target!(|data: &[u8]| {
    let mut conn = newsdesk::store::db::open_in_memory().expect("a database in memory");
    let seed = "email,name,status\nada@example.org,Ada,active\ngrace@example.org,Grace,unsubscribed\n";
    let seeded = import_reader(&mut conn, seed.as_bytes(), Path::new("seed.csv")).expect("the seed imports");
    assert_eq!(seeded.added, 2);

    let out = match import_reader(&mut conn, data, Path::new("fuzz.csv")) {
        Ok(out) => out,
        Err(e) => panic!("import of bytes in memory failed: {e}"),
    };

    let lines = line_count(data);
    for d in out.rejected.iter().chain(&out.warnings) {
        assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}: {}", d.line, d.message);
    }
    assert!(out.rejected.iter().all(|d| d.is_error()));
    assert_eq!(out.warnings.len(), out.duplicates);
    let accounted = out.added
        + out.renamed
        + out.unchanged
        + out.kept_unsubscribed
        + out.unsubscribed
        + out.duplicates
        + out.rejected.len();
    assert_eq!(accounted, out.rows, "{out:?}");
    assert!(out.rows <= lines, "{} rows from {lines} lines", out.rows);

    let mut stmt = conn.prepare("SELECT email, name, token, status FROM subscribers").unwrap();
    let rows: Vec<(String, Option<String>, String, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2 + out.added);
    let mut distinct = HashSet::new();
    for (email, name, token, status) in &rows {
        assert_eq!(normalise(email).as_ref().map(|(e, n)| (e.as_str(), n.is_none())), Ok((email.as_str(), true)));
        assert!(distinct.insert(email.to_ascii_lowercase()), "`{email}` is on the list twice");
        assert!(subscribers::is_token(token), "{token:?}");
        assert!(status == "active" || status == "unsubscribed");
        if let Some(n) = name {
            assert!(!n.is_empty() && !n.chars().any(char::is_control), "{n:?}");
            assert_eq!(n.trim(), n);
        }
    }
    // Nobody who unsubscribed is subscribed again by an import.
    let grace: String =
        conn.query_row("SELECT status FROM subscribers WHERE email = 'grace@example.org'", [], |r| r.get(0)).unwrap();
    assert_eq!(grace, "unsubscribed");
});
