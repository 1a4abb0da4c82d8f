//! Characters XML 1.0 forbids (`Char` production): the C0 controls but tab, LF and CR,
//! and U+FFFE, U+FFFF (surrogates cannot occur in a Rust string). One in a feed makes
//! every XML parser reject the whole file, so the loader and the renderer report and
//! drop them, and the feed writers and the mail drop any that get through.

use std::borrow::Cow;

/// True for a character no XML 1.0 document may contain.
pub fn is_forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// `s` without forbidden characters (borrowed when it has none).
pub fn strip(s: &str) -> Cow<'_, str> {
    if s.chars().any(is_forbidden) {
        Cow::Owned(s.chars().filter(|c| !is_forbidden(*c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// [`strip`] into an owned string.
pub fn stripped(s: &str) -> String {
    strip(s).into_owned()
}

/// Removes forbidden characters in place; returns the first one removed.
pub fn strip_in_place(s: &mut String) -> Option<char> {
    let first = s.chars().find(|c| is_forbidden(*c))?;
    s.retain(|c| !is_forbidden(c));
    Some(first)
}

/// `U+001B ESCAPE`: the code point and its Unicode name.
pub fn describe(c: char) -> String {
    const C0: [&str; 32] = [
        "NULL",
        "START OF HEADING",
        "START OF TEXT",
        "END OF TEXT",
        "END OF TRANSMISSION",
        "ENQUIRY",
        "ACKNOWLEDGE",
        "BELL",
        "BACKSPACE",
        "CHARACTER TABULATION",
        "LINE FEED",
        "LINE TABULATION",
        "FORM FEED",
        "CARRIAGE RETURN",
        "SHIFT OUT",
        "SHIFT IN",
        "DATA LINK ESCAPE",
        "DEVICE CONTROL ONE",
        "DEVICE CONTROL TWO",
        "DEVICE CONTROL THREE",
        "DEVICE CONTROL FOUR",
        "NEGATIVE ACKNOWLEDGE",
        "SYNCHRONOUS IDLE",
        "END OF TRANSMISSION BLOCK",
        "CANCEL",
        "END OF MEDIUM",
        "SUBSTITUTE",
        "ESCAPE",
        "INFORMATION SEPARATOR FOUR",
        "INFORMATION SEPARATOR THREE",
        "INFORMATION SEPARATOR TWO",
        "INFORMATION SEPARATOR ONE",
    ];
    let name = match c as u32 {
        n @ 0..=31 => C0[n as usize],
        _ => "a noncharacter",
    };
    format!("U+{:04X} {name}", c as u32)
}

/// Removes forbidden characters from every string inside a JSON value.
pub fn strip_json(v: &mut serde_json::Value) -> Option<char> {
    match v {
        serde_json::Value::String(s) => strip_in_place(s),
        serde_json::Value::Array(items) => items.iter_mut().filter_map(strip_json).fold(None, |a, c| a.or(Some(c))),
        serde_json::Value::Object(map) => {
            let mut first = None;
            let keys: Vec<String> = map.keys().filter(|k| k.chars().any(is_forbidden)).cloned().collect();
            for k in keys {
                if let Some(value) = map.remove(&k) {
                    first = first.or(k.chars().find(|c| is_forbidden(*c)));
                    map.insert(stripped(&k), value);
                }
            }
            for value in map.values_mut() {
                first = first.or(strip_json(value));
            }
            first
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_is_xml_1_0s_complement_of_char() {
        for c in ['\t', '\n', '\r', ' ', '\u{7F}', '\u{85}', '\u{D7FF}', '\u{E000}', '\u{FFFD}', '\u{10000}'] {
            assert!(!is_forbidden(c), "{c:?}");
        }
        for c in ['\0', '\u{1B}', '\u{B}', '\u{C}', '\u{1F}', '\u{FFFE}', '\u{FFFF}'] {
            assert!(is_forbidden(c), "{c:?}");
        }
        assert_eq!(strip("a\u{1B}[1mb\0"), "a[1mb");
        assert!(matches!(strip("clean"), Cow::Borrowed(_)));
        assert_eq!(describe('\u{1B}'), "U+001B ESCAPE");
        assert_eq!(describe('\0'), "U+0000 NULL");
        assert_eq!(describe('\u{FFFF}'), "U+FFFF a noncharacter");
    }
}
