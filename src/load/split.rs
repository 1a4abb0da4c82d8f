//! Splits the `---` front matter from the body, reading no further than the closing
//! fence: the body is fetched later, and only for posts an output needs.

use crate::model::BodyStart;
use std::io::BufRead;

/// The front matter of one file and where its body begins.
#[derive(Debug, PartialEq, Eq)]
pub struct FrontMatter {
    /// The YAML between the fences, line endings normalised to `\n`.
    pub yaml: String,
    /// 1-based file line of the YAML's first line.
    pub first_line: usize,
    pub body_start: BodyStart,
}

/// Why a file has no usable front matter.
#[derive(Debug, PartialEq, Eq)]
pub enum SplitError {
    /// The first line is not `---`; carries that line.
    NoOpeningFence(String),
    /// The file ends before a closing `---`; carries the line count read.
    Unclosed(usize),
    NotUtf8(usize),
    Io(String),
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads the front matter from `reader`, tolerating a UTF-8 BOM and CRLF endings.
pub fn split(mut reader: impl BufRead) -> Result<FrontMatter, SplitError> {
    let mut line = Vec::with_capacity(128);
    let mut consumed: u64 = 0;
    let mut read_line = |line: &mut Vec<u8>| -> Result<usize, SplitError> {
        line.clear();
        let n = reader.read_until(b'\n', line).map_err(|e| SplitError::Io(e.to_string()))?;
        consumed += n as u64;
        Ok(n)
    };

    if read_line(&mut line)? == 0 {
        return Err(SplitError::NoOpeningFence(String::new()));
    }
    let first = line.strip_prefix(BOM).unwrap_or(&line);
    if !is_fence(first, b"---") {
        return Err(SplitError::NoOpeningFence(String::from_utf8_lossy(first).trim_end().to_string()));
    }
    let mut yaml = String::new();
    let mut line_no = 1;
    loop {
        if read_line(&mut line)? == 0 {
            return Err(SplitError::Unclosed(line_no));
        }
        line_no += 1;
        if is_fence(&line, b"---") || is_fence(&line, b"...") {
            return Ok(FrontMatter {
                yaml,
                first_line: 2,
                body_start: BodyStart { byte: consumed, line: line_no + 1 },
            });
        }
        let text = std::str::from_utf8(&line).map_err(|_| SplitError::NotUtf8(line_no))?;
        yaml.push_str(text.trim_end_matches(['\r', '\n']));
        yaml.push('\n');
    }
}

fn is_fence(line: &[u8], fence: &[u8]) -> bool {
    let trimmed = line.trim_ascii_end();
    trimmed == fence
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn split_str(s: &str) -> Result<FrontMatter, SplitError> {
        split(Cursor::new(s.as_bytes()))
    }

    #[test]
    fn splits_and_records_body_start() {
        let text = "---\ntitle: A\ndate: 2020-05-12\n---\n\nBody\n";
        let fm = split_str(text).unwrap();
        assert_eq!(fm.yaml, "title: A\ndate: 2020-05-12\n");
        assert_eq!(fm.first_line, 2);
        assert_eq!(fm.body_start.line, 5);
        assert_eq!(&text[fm.body_start.byte as usize..], "\nBody\n");
    }

    #[test]
    fn tolerates_bom_and_crlf() {
        let text = "\u{feff}---\r\ntitle: A\r\n---\r\nBody\r\n";
        let fm = split_str(text).unwrap();
        assert_eq!(fm.yaml, "title: A\n");
        assert_eq!(&text[fm.body_start.byte as usize..], "Body\r\n");
        assert_eq!(fm.body_start.line, 4);
    }

    #[test]
    fn yaml_document_end_closes_too() {
        let fm = split_str("---\ntitle: A\n...\nBody").unwrap();
        assert_eq!(fm.yaml, "title: A\n");
    }

    #[test]
    fn missing_or_unclosed_front_matter() {
        assert_eq!(split_str("# Title\n"), Err(SplitError::NoOpeningFence("# Title".into())));
        assert_eq!(split_str(""), Err(SplitError::NoOpeningFence(String::new())));
        assert_eq!(split_str("---\ntitle: A\nbody"), Err(SplitError::Unclosed(3)));
    }
}
