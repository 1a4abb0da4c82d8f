//! Front matter: YAML checked for shape by the parser, then read key by key so each
//! problem can name its line. Unknown keys are kept for templates.
//!
//! YAML is parsed with `serde_norway`, a maintained fork of `serde_yaml` (archived and
//! marked deprecated upstream in 2024) with the same API, so front matter keeps the
//! exact YAML semantics Jekyll sites were written against while receiving fixes.

use crate::diag::Diagnostic;
use crate::model::Person;
use serde_norway::Value;
use std::collections::BTreeMap;

/// Keys newsdesk interprets; anything else goes to `extra`.
pub const KNOWN_KEYS: &[&str] = &[
    "title",
    "date",
    "slug",
    "layout",
    "author",
    "authors",
    "tags",
    "tag",
    "categories",
    "category",
    "description",
    "summary",
    "excerpt",
    "published",
    "permalink",
    "last_modified_at",
    "updated",
    "id",
];

/// The interpreted keys of one post's front matter, still as text where the meaning
/// depends on the site (dates, permalinks).
#[derive(Debug, Default)]
pub struct Fields {
    pub title: Option<String>,
    pub date: Option<Located>,
    pub updated: Option<Located>,
    pub slug: Option<String>,
    pub layout: Option<String>,
    pub authors: Vec<Person>,
    pub tags: Vec<String>,
    pub categories: Vec<String>,
    pub summary: Option<String>,
    pub published: bool,
    pub permalink: Option<String>,
    pub id: Option<String>,
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A value with the file line it was written on, for pointing at it later.
#[derive(Debug, Clone)]
pub struct Located {
    pub value: String,
    pub line: usize,
    pub column: usize,
    pub source: String,
}

/// Where a top-level key is written in the YAML.
pub struct KeyLine<'a> {
    pub line: usize,
    pub value_column: usize,
    pub source: &'a str,
}

/// Finds top-level `key:` in the YAML; `first_line` is the file line of the YAML's first line.
pub fn locate<'a>(yaml: &'a str, first_line: usize, key: &str) -> Option<KeyLine<'a>> {
    yaml.lines().enumerate().find_map(|(i, l)| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let pad = rest.len() - rest.trim_start().len();
        Some(KeyLine { line: first_line + i, value_column: key.chars().count() + 2 + pad, source: l })
    })
}

/// Reads the YAML; returns the fields and warnings, or the one error that makes the
/// front matter unusable.
pub fn parse(yaml: &str, first_line: usize) -> Result<(Fields, Vec<Diagnostic>), Diagnostic> {
    let value: Value = if yaml.trim().is_empty() {
        Value::Mapping(Default::default())
    } else {
        serde_norway::from_str(yaml).map_err(|e| yaml_error(&e, yaml, first_line))?
    };
    let map = match value {
        Value::Mapping(m) => m,
        Value::Null => Default::default(),
        _ => {
            return Err(Diagnostic::error("bad-front-matter", "front matter is not a list of `key: value` lines")
                .at(first_line, 1)
                .help(
                    "write one `key: value` per line between the `---` fences, e.g. `title: Week Ending May 10, 2020`",
                ));
        }
    };
    let mut fields = Fields { published: true, ..Fields::default() };
    let mut warnings = Vec::new();
    let mut summary_rank: Option<usize> = None;
    let locate_value = |key: &str| -> Located {
        match locate(yaml, first_line, key) {
            Some(k) => Located { value: String::new(), line: k.line, column: k.value_column, source: k.source.into() },
            None => Located { value: String::new(), line: first_line, column: 0, source: String::new() },
        }
    };

    for (k, mut v) in map {
        let Some(mut key) = scalar(&k) else { continue };
        let bad = crate::chars::strip_in_place(&mut key).or_else(|| strip_value(&mut v));
        if let Some(c) = bad {
            let at = locate_value(&key);
            warnings.push(
                control_character(&format!("`{key}`"), c).at(at.line, 1).with_source(at.source, key.chars().count()),
            );
        }
        let wrong_type = |what: &str| {
            let at = locate_value(&key);
            Diagnostic::error("bad-front-matter", format!("`{key}` must be {what}"))
                .at(at.line, at.column.max(1))
                .with_source(
                    at.source.clone(),
                    at.source.chars().count().saturating_sub(at.column.saturating_sub(1)).max(1),
                )
        };
        match key.as_str() {
            "title" => {
                fields.title =
                    Some(scalar(&v).ok_or_else(|| wrong_type("text").help("write `title: Week Ending May 10, 2020`"))?)
            }
            "date" | "last_modified_at" | "updated" => {
                let text =
                    scalar(&v).ok_or_else(|| wrong_type("a date").help("write `date: 2020-05-12 20:00:00 -0000`"))?;
                let located = Located { value: text, ..locate_value(&key) };
                if key == "date" {
                    fields.date = Some(located);
                } else if fields.updated.is_none() || key == "last_modified_at" {
                    fields.updated = Some(located);
                }
            }
            "slug" => {
                fields.slug =
                    Some(scalar(&v).ok_or_else(|| wrong_type("text").help("write `slug: 2020-05-10-update`"))?)
            }
            "layout" => fields.layout = scalar(&v),
            "permalink" => {
                fields.permalink =
                    Some(scalar(&v).ok_or_else(|| wrong_type("a path").help("write `permalink: /2020/my-post/`"))?)
            }
            "id" => fields.id = scalar(&v),
            "published" => match v {
                Value::Bool(b) => fields.published = b,
                _ => {
                    return Err(
                        wrong_type("`true` or `false`").help("write `published: false` to keep a post as a draft")
                    );
                }
            },
            "author" | "authors" => fields.authors.extend(people(&v).ok_or_else(|| {
                wrong_type("a name, a list of names, or `name:`/`email:` entries")
                    .help("write `author: Jane Doe <jane@example.org>`")
            })?),
            "tags" | "tag" => fields.tags.extend(
                words(&v).ok_or_else(|| wrong_type("a word or a list").help("write `tags: [release, sig-node]`"))?,
            ),
            "categories" | "category" => fields
                .categories
                .extend(words(&v).ok_or_else(|| wrong_type("a word or a list").help("write `categories: [news]`"))?),
            "summary" | "description" | "excerpt" => {
                let text = scalar(&v)
                    .ok_or_else(|| wrong_type("text").help(format!("write `{key}: One sentence about this issue.`")))?;
                // `summary` wins over `description`, which wins over `excerpt`.
                let rank = ["summary", "description", "excerpt"].iter().position(|x| *x == key);
                if summary_rank.is_none_or(|r| rank < Some(r)) {
                    fields.summary = Some(text);
                    summary_rank = rank;
                }
            }
            _ => {
                if let Some(similar) = typo_of_known(&key) {
                    let at = locate_value(&key);
                    warnings.push(
                        Diagnostic::warning("unknown-key", format!("unknown front-matter key `{key}`"))
                            .at(at.line, 1)
                            .with_source(at.source, key.chars().count())
                            .help(format!("did you mean `{similar}`? (unknown keys are kept for templates)")),
                    );
                }
                fields.extra.insert(key, to_json(&v));
            }
        }
    }
    Ok((fields, warnings))
}

/// The warning for a forbidden character in `what` (`` `title` ``, "the file name").
pub fn control_character(what: &str, c: char) -> Diagnostic {
    Diagnostic::warning(
        "control-character",
        format!("{what} contains {}, which XML forbids: it is left out of feeds and mail", crate::chars::describe(c)),
    )
    .help("delete it (most editors do not show it; in quoted YAML `\\e`, `\\x1b` or `\\u001b` write one)")
}

/// Removes XML-forbidden characters from every string in `v`; returns the first.
fn strip_value(v: &mut Value) -> Option<char> {
    match v {
        Value::String(s) => crate::chars::strip_in_place(s),
        Value::Sequence(items) => items.iter_mut().filter_map(strip_value).fold(None, |a, c| a.or(Some(c))),
        Value::Mapping(m) => m.values_mut().filter_map(strip_value).fold(None, |a, c| a.or(Some(c))),
        Value::Tagged(t) => strip_value(&mut t.value),
        _ => None,
    }
}

/// A known key within two edits of `key` (`tittle` → `title`), if any.
fn typo_of_known(key: &str) -> Option<&'static str> {
    if key.len() < 3 {
        return None;
    }
    KNOWN_KEYS
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(d, _)| *d > 0 && *d <= 2)
        .min()
        .map(|(_, k)| k)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

/// Jekyll reads `tags: a b` as two tags, and accepts a list.
fn words(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Sequence(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|s| s.split_whitespace().map(str::to_string).collect()),
    }
}

fn people(v: &Value) -> Option<Vec<Person>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Sequence(items) => items.iter().map(person).collect(),
        other => person(other).map(|p| vec![p]),
    }
}

fn person(v: &Value) -> Option<Person> {
    match v {
        Value::Mapping(m) => {
            let get = |k: &str| m.get(k).and_then(scalar);
            Some(Person { name: get("name")?, email: get("email"), url: get("url").or_else(|| get("uri")) })
        }
        other => scalar(other).map(|s| Person::parse(&s)),
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_else(|_| match v {
        // Mappings with non-text keys: keep what can be kept.
        Value::Mapping(m) => {
            serde_json::Value::Object(m.iter().filter_map(|(k, v)| Some((scalar(k)?, to_json(v)))).collect())
        }
        Value::Sequence(s) => serde_json::Value::Array(s.iter().map(to_json).collect()),
        Value::Tagged(t) => to_json(&t.value),
        other => serde_json::Value::String(scalar(other).unwrap_or_default()),
    })
}

fn yaml_error(e: &serde_norway::Error, yaml: &str, first_line: usize) -> Diagnostic {
    let text = e.to_string();
    // serde_norway appends " at line L column C"; the location is shown separately.
    let message = text.split(" at line ").next().unwrap_or(&text).to_string();
    let mut d = Diagnostic::error("bad-yaml", format!("front matter is not valid YAML: {message}"));
    let hint = if message.contains("mapping values are not allowed") {
        "a value containing `: ` must be quoted, e.g. `title: \"Week Ending: May 10\"`"
    } else if message.contains("found character that cannot start any token") {
        "quote values that start with `@`, `` ` `` or `%`, e.g. `author: \"@lwkd\"`"
    } else {
        "check the indentation and quote values that contain `:`, `#` or start with a special character"
    };
    d = d.help(hint);
    match e.location() {
        Some(loc) => {
            let line_in_yaml = loc.line().max(1);
            let src = yaml.lines().nth(line_in_yaml - 1).unwrap_or("");
            d.at(first_line + line_in_yaml - 1, loc.column().max(1)).with_source(src, 1)
        }
        None => d.at(first_line, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_known_key() {
        let yaml = "title: Week Ending May 10, 2020\ndate: 2020-05-12 20:00:00 -0000\nslug: 2020-05-10-update\nlayout: post\nauthor: Jane <jane@example.org>\nauthors: [Bob]\ntags: release sig-node\ncategories: [News]\ndescription: About\npublished: false\npermalink: /x/\nupdated: 2020-05-13\nimage: cover.png\n";
        let (f, w) = parse(yaml, 2).unwrap();
        assert!(w.is_empty());
        assert_eq!(f.title.as_deref(), Some("Week Ending May 10, 2020"));
        let date = f.date.unwrap();
        assert_eq!(date.value, "2020-05-12 20:00:00 -0000");
        assert_eq!((date.line, date.column), (3, 7));
        assert_eq!(f.slug.as_deref(), Some("2020-05-10-update"));
        assert_eq!(f.authors.len(), 2);
        assert_eq!(f.authors[0].email.as_deref(), Some("jane@example.org"));
        assert_eq!(f.tags, ["release", "sig-node"]);
        assert_eq!(f.categories, ["News"]);
        assert_eq!(f.summary.as_deref(), Some("About"));
        assert!(!f.published);
        assert_eq!(f.permalink.as_deref(), Some("/x/"));
        assert_eq!(f.updated.unwrap().value, "2020-05-13");
        assert_eq!(f.extra["image"], serde_json::json!("cover.png"));
    }

    #[test]
    fn summary_beats_description_beats_excerpt() {
        let (f, _) = parse("excerpt: E\nsummary: S\ndescription: D\n", 2).unwrap();
        assert_eq!(f.summary.as_deref(), Some("S"));
        let (f, _) = parse("excerpt: E\ndescription: D\n", 2).unwrap();
        assert_eq!(f.summary.as_deref(), Some("D"));
        assert!(f.extra.is_empty());
    }

    #[test]
    fn invalid_yaml_names_the_file_line() {
        let e = parse("title: A\ndate: 2020-05-12\nbad: [unclosed\n", 2).unwrap_err();
        assert_eq!(e.code, "bad-yaml");
        assert!(e.line >= 4, "line {}", e.line);
        assert!(e.message.starts_with("front matter is not valid YAML"));
    }

    #[test]
    fn colon_in_title_gets_a_quoting_hint() {
        let e = parse("title: Week: May: 10\nslug: a: b\n", 2).unwrap_err();
        assert!(e.help.unwrap().contains("quoted"));
    }

    #[test]
    fn typo_of_a_known_key_warns() {
        let (f, w) = parse("tittle: A\n", 2).unwrap();
        assert!(f.title.is_none());
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].help.as_deref(), Some("did you mean `title`? (unknown keys are kept for templates)"));
        assert_eq!(w[0].line, 2);
    }

    #[test]
    fn control_characters_are_dropped_with_a_warning_at_their_key() {
        let yaml =
            "title: \"Week\\e[1m Ending\"\ntags: [ok, \"b\\0ad\"]\nauthor: {name: \"A\\vB\"}\nimage: \"x\\fy\"\n";
        let (f, w) = parse(yaml, 2).unwrap();
        assert_eq!(f.title.as_deref(), Some("Week[1m Ending"));
        assert_eq!(f.tags, ["ok", "bad"]);
        assert_eq!(f.authors[0].name, "AB");
        assert_eq!(f.extra["image"], serde_json::json!("xy"));
        let found: Vec<_> = w.iter().map(|d| (d.code, d.line, d.message.as_str())).collect();
        assert_eq!(
            found,
            [
                (
                    "control-character",
                    2,
                    "`title` contains U+001B ESCAPE, which XML forbids: it is left out of feeds and mail"
                ),
                (
                    "control-character",
                    3,
                    "`tags` contains U+0000 NULL, which XML forbids: it is left out of feeds and mail"
                ),
                (
                    "control-character",
                    4,
                    "`author` contains U+000B LINE TABULATION, which XML forbids: it is left out of feeds and mail"
                ),
                (
                    "control-character",
                    5,
                    "`image` contains U+000C FORM FEED, which XML forbids: it is left out of feeds and mail"
                ),
            ]
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        let e = parse("title: A\npublished: maybe\n", 2).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("`published`"));
        let e = parse("title: [a, b]\n", 2).unwrap_err();
        assert!(e.message.contains("`title` must be text"));
    }
}
