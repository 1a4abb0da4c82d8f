//! Jekyll-compatible permalink patterns (`/:year/:year:month:day`), so a site that
//! moves from Jekyll keeps every published URL.

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

/// Placeholders a pattern may use, longest first so `:i_month` wins over `:i`.
pub const PLACEHOLDERS: [&str; 14] = [
    "categories",
    "output_ext",
    "short_year",
    "i_month",
    "minute",
    "second",
    "i_day",
    "month",
    "title",
    "y_day",
    "year",
    "hour",
    "slug",
    "day",
];

/// Jekyll's named styles; anything else is taken as a pattern.
pub fn preset(name: &str) -> &str {
    match name {
        "date" => "/:categories/:year/:month/:day/:title:output_ext",
        "pretty" => "/:categories/:year/:month/:day/:title/",
        "ordinal" => "/:categories/:year/:y_day/:title:output_ext",
        "none" => "/:categories/:title:output_ext",
        other => other,
    }
}

/// What a pattern is filled with.
pub struct Fields<'a> {
    pub date: DateTime<FixedOffset>,
    /// The front-matter slug, or the file name's slug part.
    pub slug: &'a str,
    pub categories: &'a [String],
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'static str),
}

fn pieces(pattern: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(i) = rest.find(':') {
        if i > 0 {
            out.push(Piece::Text(&rest[..i]));
        }
        let after = &rest[i + 1..];
        match PLACEHOLDERS.iter().find(|p| after.starts_with(**p)) {
            Some(p) => {
                out.push(Piece::Var(p));
                rest = &after[p.len()..];
            }
            None => {
                let word: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                return Err(word);
            }
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// Checks a pattern; on failure returns the unknown placeholder's name.
pub fn validate(pattern: &str) -> Result<(), String> {
    pieces(pattern).map(|_| ())
}

/// Expands a (validated) pattern into a site-root path: leading slash, no `//`.
pub fn expand(pattern: &str, f: &Fields) -> String {
    let pattern = preset(pattern);
    let mut out = String::with_capacity(pattern.len() + 16);
    let Ok(pieces) = pieces(pattern) else {
        return pattern.to_string();
    };
    let d = f.date;
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(v) => {
                let s = match v {
                    "year" => format!("{:04}", d.year()),
                    "short_year" => format!("{:02}", d.year() % 100),
                    "month" => format!("{:02}", d.month()),
                    "i_month" => d.month().to_string(),
                    "day" => format!("{:02}", d.day()),
                    "i_day" => d.day().to_string(),
                    "y_day" => format!("{:03}", d.ordinal()),
                    "hour" => format!("{:02}", d.hour()),
                    "minute" => format!("{:02}", d.minute()),
                    "second" => format!("{:02}", d.second()),
                    "title" => f.slug.to_string(),
                    "slug" => slugify(f.slug),
                    "categories" => {
                        f.categories.iter().map(|c| slugify(c)).filter(|c| !c.is_empty()).collect::<Vec<_>>().join("/")
                    }
                    "output_ext" => ".html".to_string(),
                    _ => unreachable!("placeholder list and match agree"),
                };
                out.push_str(&s);
            }
        }
    }
    let mut clean = String::with_capacity(out.len() + 1);
    if !out.starts_with('/') {
        clean.push('/');
    }
    for c in out.chars() {
        if c == '/' && clean.ends_with('/') {
            continue;
        }
        clean.push(c);
    }
    clean
}

/// Jekyll's default slugify: runs of anything but letters and digits become one `-`,
/// lowercased, no leading or trailing `-`.
pub fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        } else {
            dash = true;
        }
    }
    out
}

/// Whether `path` has a `..` segment (also written `%2e%2e`, or with `\`, which URL
/// parsers read as `/`): a URL that climbs out of the folder it names.
pub fn climbs(path: &str) -> bool {
    path.split(['/', '\\']).any(|segment| {
        let s = segment.to_ascii_lowercase().replace("%2e", ".");
        s == ".."
    })
}

/// Ruby's `File.dirname` on a URL path, as jekyll-feed's ids use it.
pub fn dirname(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &trimmed[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn run_together_placeholders() {
        let f = Fields { date: date("2020-05-12T20:00:00+00:00"), slug: "2020-05-10-update", categories: &[] };
        assert_eq!(expand("/:year/:year:month:day", &f), "/2020/20200512");
    }

    #[test]
    fn presets_and_categories() {
        let cats = vec!["Release Notes".to_string(), "k8s".to_string()];
        let f = Fields { date: date("2021-01-02T03:04:05+00:00"), slug: "Hello World", categories: &cats };
        assert_eq!(expand("date", &f), "/release-notes/k8s/2021/01/02/Hello World.html");
        assert_eq!(expand("pretty", &f), "/release-notes/k8s/2021/01/02/Hello World/");
        assert_eq!(expand("/:year/:slug/", &f), "/2021/hello-world/");
        // No categories: the empty segment collapses.
        let f = Fields { categories: &[], ..f };
        assert_eq!(expand("/:categories/:i_month/:i_day/:slug", &f), "/1/2/hello-world");
        assert_eq!(expand("ordinal", &f), "/2021/002/Hello World.html");
    }

    #[test]
    fn unknown_placeholder_is_named() {
        assert_eq!(validate("/:year/:yaer"), Err("yaer".to_string()));
        assert!(validate("/:year/:month/:day/:title:output_ext").is_ok());
    }

    #[test]
    fn climbing_segments() {
        for bad in ["/../x", "/a/..", "..", "/a/%2E%2e/b", "/a/.%2e/", "a\\..\\b"] {
            assert!(climbs(bad), "{bad}");
        }
        for fine in ["/2020/x", "/a..b/", "/.../", "/./x", "/a.b/c..d"] {
            assert!(!climbs(fine), "{fine}");
        }
    }

    #[test]
    fn dirname_matches_ruby() {
        assert_eq!(dirname("/2020/20200512"), "/2020");
        assert_eq!(dirname("/2020/05/12/slug/"), "/2020/05/12");
        assert_eq!(dirname("/slug"), "/");
    }
}
