//! Encode once, splice per recipient.
//!
//! A rendered part (subject, text, HTML) is literal text with per-recipient markers in
//! it. [`Spliced::new`] splits it at the markers once per send and, for the body parts,
//! quoted-printable-encodes each literal segment once (CRLF line ends, as lettre's
//! `Body::new` would). Per recipient, [`Spliced::encoded`] only encodes the short slot
//! values and concatenates: every piece is encoded on its own and ends with a soft line
//! break (`=\r\n`, unless it already ends a line), so the next piece starts on a fresh
//! encoded line and decoding the whole gives exactly the filled-in text with CRLF line
//! ends. Lines stay within 76 characters.

use std::borrow::Cow;

/// RFC 2045 6.7: encoded lines are at most 76 characters (without the CRLF).
const LIMIT: usize = 76;

/// A text split at its per-recipient markers.
#[derive(Debug, Clone)]
pub(super) struct Spliced {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone)]
enum Piece {
    /// Literal text and (for body parts) its quoted-printable encoding, made once.
    Literal { text: String, qp: String },
    /// The value of slot `n` (an index into the markers given to [`Spliced::new`]).
    Slot(usize),
}

impl Spliced {
    /// Splits `s` at every occurrence of one of `markers` (slot `n` is `markers[n]`).
    /// `encode`: also quoted-printable-encode the literal segments (body parts).
    pub(super) fn new(s: &str, markers: &[String], open: char, encode: bool) -> Spliced {
        let mut pieces = Vec::new();
        let mut literal_start = 0;
        let mut search = 0;
        while let Some(found) = s[search..].find(open) {
            let at = search + found;
            match markers.iter().position(|m| s[at..].starts_with(m.as_str())) {
                Some(n) => {
                    push_literal(&mut pieces, &s[literal_start..at], encode);
                    pieces.push(Piece::Slot(n));
                    search = at + markers[n].len();
                    literal_start = search;
                }
                None => search = at + open.len_utf8(),
            }
        }
        push_literal(&mut pieces, &s[literal_start..], encode);
        Spliced { pieces }
    }

    /// Whether slot `n` occurs in the text.
    pub(super) fn uses(&self, n: usize) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Slot(m) if *m == n))
    }

    /// The text with `values[n]` in place of slot `n`.
    pub(super) fn fill(&self, values: &[String]) -> String {
        let mut out = String::with_capacity(self.raw_pieces(values).map(str::len).sum());
        for raw in self.raw_pieces(values) {
            out.push_str(raw);
        }
        out
    }

    fn raw_pieces<'a>(&'a self, values: &'a [String]) -> impl Iterator<Item = &'a str> {
        self.pieces.iter().map(move |p| match p {
            Piece::Literal { text, .. } => text.as_str(),
            Piece::Slot(n) => values[*n].as_str(),
        })
    }

    /// The quoted-printable body (CRLF line ends) of the text with `values` filled in:
    /// decodes to what lettre's `Body::new` would have encoded for [`Spliced::fill`].
    /// Needs `encode` in [`Spliced::new`].
    pub(super) fn encoded(&self, values: &[String]) -> Vec<u8> {
        let pieces: Vec<(&str, Option<&str>)> = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Literal { text, qp } => (text.as_str(), Some(qp.as_str())),
                Piece::Slot(n) => (values[*n].as_str(), None),
            })
            .filter(|(raw, _)| !raw.is_empty())
            .collect();
        // A CR ending one piece and an LF starting the next are one line end in the
        // filled text, but two line ends if normalised apart: encode the whole then.
        if pieces.windows(2).any(|w| w[0].0.ends_with('\r') && w[1].0.starts_with('\n')) {
            return qp(&crlf(&self.fill(values))).into_bytes();
        }
        let capacity = pieces.iter().map(|(raw, qp)| qp.map_or(raw.len() * 3, str::len) + 6).sum();
        let mut out = Vec::with_capacity(capacity);
        let last = pieces.len().saturating_sub(1);
        for (k, (raw, encoded)) in pieces.into_iter().enumerate() {
            let encoded: Cow<str> = match encoded {
                Some(e) => Cow::Borrowed(e),
                None => Cow::Owned(qp(&crlf(raw))),
            };
            out.extend_from_slice(encoded.as_bytes());
            if k < last && !out.ends_with(b"\r\n") {
                soft_break(&mut out);
            }
        }
        out
    }
}

fn push_literal(pieces: &mut Vec<Piece>, text: &str, encode: bool) {
    if text.is_empty() {
        return;
    }
    let qp = if encode { qp(&crlf(text)) } else { String::new() };
    pieces.push(Piece::Literal { text: text.to_string(), qp });
}

/// Quoted-printable, as lettre encodes a `String` body (`quoted_printable::encode`).
fn qp(bytes: &[u8]) -> String {
    quoted_printable::encode_to_str(bytes)
}

/// LF → CRLF where not already CRLF, as lettre's `Body::new` does for a `String`.
fn crlf(s: &str) -> Cow<'_, [u8]> {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'\n') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    let mut prev = 0u8;
    for &b in bytes {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    Cow::Owned(out)
}

/// Ends the encoded line in progress with a soft line break. The encoder fills a final
/// line up to 76 characters, leaving no room for the `=`: its last unit (a character or
/// an `=XX` escape, since a literal `=` is always escaped) then moves to a line of its own.
fn soft_break(out: &mut Vec<u8>) {
    let line_start = out.windows(2).rposition(|w| w == b"\r\n").map_or(0, |i| i + 2);
    if out.len() - line_start >= LIMIT {
        let len = out.len();
        let unit = if out[len - 3] == b'=' { 3 } else { 1 };
        let tail: Vec<u8> = out.split_off(len - unit);
        out.extend_from_slice(b"=\r\n");
        out.extend_from_slice(&tail);
    }
    out.extend_from_slice(b"=\r\n");
}
