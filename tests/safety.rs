//! Hostile or broken posts and configs (issue 8): deep nesting, control characters,
//! active content, paths that climb out of the site, impossible years. Each runs the
//! real binary and asserts a clean diagnostic (file, line, `help:`) and outputs that
//! readers and parsers accept, never a crash.

mod common;

use common::{LWKD_CONFIG, Site, copy_dir};
use std::path::Path;

/// LWKD's config plus an `[email]` section, with the bundled templates copied beside it.
fn mail_site() -> Site {
    let site = Site::new(&format!(
        "{LWKD_CONFIG}\n[email]\nfrom = \"LWKD <lwkd@example.org>\"\nto = \"list@example.org\"\ntransport = \"file\"\n"
    ));
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("email-templates"), &site.path("email-templates"));
    site
}

/// A post dated 2020-05-10 whose body starts on line 6.
fn post(title: &str, body: &str) -> String {
    format!("---\ntitle: {title}\ndate: 2020-05-10 20:00:00 -0000\n---\n\n{body}")
}

// ---------------------------------------------------------------------------------------
// 5. Deep nesting: a clean error, never a stack overflow

/// Bodies nested far past the limit, and where (line, column) the limit is crossed.
fn deep_bodies() -> Vec<(&'static str, String, (usize, usize))> {
    vec![
        ("20,000 `>`", format!("Intro.\n\n{} x\n", ">".repeat(20_000)), (8, 65)),
        ("10,000 nested `- `", format!("Intro.\n\n{}x\n", "- ".repeat(10_000)), (8, 65)),
        // Emphasis nests too: `***...x***...`.
        ("100,000 `*`", format!("Intro.\n\n{0}x{0}\n", "*".repeat(100_000)), (8, 127)),
        // Raw HTML elements count with the markdown ones (an HTML block adds none of its
        // own): the 65th `<div>` is too many.
        ("20,000 `<div>`", format!("Intro.\n\n{}\n", "<div>".repeat(20_000)), (8, 321)),
        // A tag may span lines in an HTML block: the 65th `<div` is on line 8 + 64.
        ("20,000 `<div` + newline", format!("Intro.\n\n{}\n", "<div\n>".repeat(20_000)), (72, 2)),
    ]
}

#[test]
fn deep_nesting_is_an_error_with_file_and_line_in_check_build_and_preview() {
    for (what, body, (line, column)) in deep_bodies() {
        let site = mail_site();
        site.post("2020-05-10-deep.md", &post("Deep", &body));
        let expected =
            format!("posts/2020-05-10-deep.md:{line}:{column}: error: nesting deeper than 64 levels (quotes, lists");
        for args in [&["check"][..], &["build", "--out", "_site"], &["preview"]] {
            let run = site.run(args);
            assert_eq!(run.code, Some(1), "{what}: `{}` exit status\n{}", args[0], run.stderr);
            let e = &run.stderr;
            assert!(e.contains(&expected), "{what}: `{}`:\n{e}", args[0]);
            assert!(e.contains("= help: each `>` or indented `-` opens one more level"), "{what}: {e}");
            assert_eq!(e.matches(": error:").count(), 1, "{what}: `{}` reports it once:\n{e}", args[0]);
            assert!(e.contains("1 error found"), "{what}: {e}");
        }
        // Nothing was written: neither the feeds nor the preview.
        assert!(!site.path("_site").exists(), "{what}");
        assert!(!site.path("_preview").exists(), "{what}");
    }
}

#[test]
fn nesting_up_to_the_limit_renders() {
    // 30 quotes holding a 15-level list (two elements a level) and emphasis: 61 levels.
    let list: String = (0..15).map(|i| format!("{}- level {i}\n", "  ".repeat(i))).collect();
    let quoted: String = list.lines().map(|l| format!("{} {l}\n", ">".repeat(30))).collect();
    let body = format!("Intro.\n\n{} *deep*\n", quoted.trim_end());
    let site = mail_site();
    site.post("2020-05-10-deep.md", &post("Deep", &body));
    let run = site.run(&["check"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    site.build("_site", &[]);
    let feed = site.feed("_site/feed.xml");
    let html = common::content(&feed.entries[0]);
    assert_eq!(html.matches("<blockquote>").count(), 30, "{html}");
    assert!(html.contains("level 14 <em>deep</em>"), "{html}");
    site.run(&["preview"]).expect_code(0);
    let text = site.read("_preview/message.txt");
    assert!(text.contains(&format!("{}* level 0", "> ".repeat(30))), "{text}");
}

// ---------------------------------------------------------------------------------------
// 6. Characters XML forbids: reported by check, never in a feed or the mail

/// Parses `text` with roxmltree, which enforces XML 1.0's `Char` production.
fn assert_well_formed_xml(what: &str, text: &str) {
    if let Err(e) = roxmltree::Document::parse(text) {
        panic!("{what} is not well-formed XML: {e}");
    }
}

fn forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

#[test]
fn control_characters_are_reported_and_never_reach_feeds_or_mail() {
    let site = mail_site();
    // ESC in the title, NUL in a tag, VT in the author, FF in the summary and a file
    // name's slug with ESC; ESC, VT, FF and NUL in the body (lines 10 to 13).
    let text = "---\n\
        title: \"Week\\e[1m Ending May 10, 2020\"\n\
        date: 2020-05-10 20:00:00 -0000\n\
        tags: [release, \"sig\\0node\"]\n\
        author: \"Jane\\vDoe <jane@example.org>\"\n\
        summary: \"One\\fsentence.\"\n\
        id: \"https://lwkd.info/x\\x01y\"\n\
        ---\n\
        \n\
        Colours: \u{1b}[31mred\u{1b}[0m.\n\
        A\u{b}vertical tab.\n\
        A\u{c}form feed, [a link](https://example.org/\u{1b}x).\n\
        A NUL: \u{0}.\n";
    site.post("2020-05-10-upd\u{1b}ate.md", text);

    let run = site.run(&["check", "--format", "json"]);
    run.expect_code(0);
    let report = run.json();
    let mut found: Vec<(u64, String)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "control-character")
        .map(|d| (d["line"].as_u64().unwrap(), d["message"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    let says =
        |what: &str, c: &str| format!("{what} contains {c}, which XML forbids: it is left out of feeds and mail");
    assert_eq!(
        found,
        [
            (0, says("the file name", "U+001B ESCAPE")),
            (2, says("`title`", "U+001B ESCAPE")),
            (4, says("`tags`", "U+0000 NULL")),
            (5, says("`author`", "U+000B LINE TABULATION")),
            (6, says("`summary`", "U+000C FORM FEED")),
            (7, says("`id`", "U+0001 START OF HEADING")),
            (10, says("the body", "U+001B ESCAPE")),
            (10, says("the body", "U+001B ESCAPE")),
            (11, says("the body", "U+000B LINE TABULATION")),
            (12, says("the body", "U+000C FORM FEED")),
            (12, says("the body", "U+001B ESCAPE")),
            (13, says("the body", "U+0000 NULL")),
        ],
        "{report:#}"
    );
    // For people: file, line, column of the character, and what to do.
    let e = site.run(&["check"]).stderr;
    assert!(e.contains(":10:10: warning: the body contains U+001B ESCAPE"), "{e}");
    assert!(e.contains("= help: delete it"), "{e}");

    site.build("_site", &[]);
    for file in ["rss.xml", "feed.xml", "feed.json"] {
        let bytes = site.read(&format!("_site/{file}"));
        if file.ends_with(".xml") {
            assert_well_formed_xml(file, &bytes);
        }
        // Not even escaped in the JSON Feed (`\u001b`).
        let json_escaped = bytes.contains("\\u00") && file.ends_with(".json");
        assert!(!bytes.chars().any(forbidden) && !json_escaped, "{file} carries a control character:\n{bytes}");
        let feed = site.feed(&format!("_site/{file}"));
        let entry = &feed.entries[0];
        assert_eq!(common::text(&entry.title), "Week[1m Ending May 10, 2020", "{file}");
        assert!(common::content(entry).contains("Colours: [31mred[0m."), "{file}");
    }
    site.run(&["preview"]).expect_code(0);
    for file in ["message.html", "message.txt", "message.eml"] {
        let bytes = std::fs::read(site.path(&format!("_preview/{file}"))).unwrap();
        assert!(!bytes.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')), "{file}");
    }
    // Nor quoted-printable-encoded in the message.
    let eml = site.read("_preview/message.eml");
    for code in ["=1B", "=00", "=0B", "=0C", "=01"] {
        assert!(!eml.contains(code), "message.eml carries {code}");
    }
}

// ---------------------------------------------------------------------------------------
// 7. Active content: warned about by check, removed from feeds and mail

#[test]
fn active_content_is_warned_about_and_removed_from_feeds_and_mail() {
    let site = mail_site();
    let body = "Intro with [a safe link](https://example.org/safe).\n\
        \n\
        <script>alert('script')</script>\n\
        \n\
        A <span onclick=\"alert('click')\">button</span> here.\n\
        \n\
        [Click me](javascript:alert('link')) and ![pixel](data:image/png;base64,iVBORw0KGgo=).\n\
        \n\
        <img src=\"data:image/svg+xml;base64,PHN2Zz4=\" alt=\"raw\"> <a href=\"JavaScript:alert('raw')\">raw link</a>\n";
    site.post("2020-05-10-active.md", &post("Active", body));

    let run = site.run(&["check", "--format", "json"]);
    run.expect_code(0);
    let report = run.json();
    let found: Vec<(u64, u64, String)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "active-content")
        .map(|d| (d["line"].as_u64().unwrap(), d["column"].as_u64().unwrap(), d["message"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        found,
        [
            (8, 1, "`<script>` is active content: it is removed from feeds and mail, with its content".to_string()),
            (10, 9, "the `onclick` attribute runs a script: it is removed from feeds and mail".into()),
            (12, 12, "link `javascript:alert('link')` runs a script: it is removed from feeds and mail".into()),
            (
                12,
                51,
                "link `data:image/png;base64,iVBORw0KGgo=` is a `data:` URL, which can carry scripts: it is removed from feeds and mail"
                    .into()
            ),
            (
                14,
                6,
                "`src` `data:image/svg+xml;base64,PHN2Zz4=` is a `data:` URL, which can carry scripts: it is removed from feeds and mail"
                    .into()
            ),
            (14, 61, "`href` `JavaScript:alert('raw')` runs a script: it is removed from feeds and mail".into()),
        ],
        "{report:#}"
    );
    let e = site.run(&["check"]).stderr;
    assert!(e.contains("posts/2020-05-10-active.md:10:9: warning: the `onclick` attribute runs a script"), "{e}");

    site.build("_site", &[]);
    site.run(&["preview"]).expect_code(0);
    let outputs =
        ["_site/rss.xml", "_site/feed.xml", "_site/feed.json", "_preview/message.html", "_preview/message.txt"];
    for file in outputs {
        let text = site.read(file);
        for active in ["<script", "alert(", "onclick", "javascript:", "data:image", "JavaScript:"] {
            assert!(!text.contains(active), "{file} still carries `{active}`:\n{text}");
        }
        // What is not active stays.
        assert!(text.contains("https://example.org/safe"), "{file}");
        assert!(text.contains("button") && text.contains("raw link"), "{file}");
    }
    // The message as sent, decoded.
    let eml = std::fs::read(site.path("_preview/message.eml")).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&eml).unwrap();
    let html = msg.body_html(0).unwrap();
    assert!(!html.contains("<script") && !html.contains("alert(") && !html.contains("onclick"), "{html}");
    assert!(html.contains("https://example.org/safe"), "{html}");
}

// ---------------------------------------------------------------------------------------
// 8. Base URL, paths and dates that would corrupt every link or the feed

#[test]
fn base_url_with_query_or_fragment_is_a_config_error() {
    let site = Site::new(&LWKD_CONFIG.replace("\"https://lwkd.info\"", "\"https://lwkd.info/?q=1#frag\""));
    site.post("2020-05-10-update.md", &post("A", "Body.\n"));
    for args in [&["check"][..], &["build", "--out", "_site"]] {
        let run = site.run(args);
        run.expect_code(1);
        let e = &run.stderr;
        assert!(e.contains("config.toml:4:12: error: `base_url` must not have a query (`?...`) or a fragment"), "{e}");
        assert!(e.contains("4 | base_url = \"https://lwkd.info/?q=1#frag\""), "{e}");
        assert!(e.contains("= help: write the site's address only, e.g. `base_url = \"https://lwkd.info\"`"), "{e}");
    }
    assert!(!site.path("_site").exists());
}

#[test]
fn slugs_and_permalinks_may_not_climb_out_of_the_site() {
    let site = Site::new(&LWKD_CONFIG.replace("/:year/:year:month:day", "/:title/"));
    site.post("2020-05-10-a.md", "---\ntitle: A\ndate: 2020-05-10\nslug: ../../etc/passwd\n---\n\nBody.\n");
    site.post("2020-05-11-b.md", "---\ntitle: B\ndate: 2020-05-11\npermalink: /2020/../../b/\n---\n\nBody.\n");
    site.post("2020-05-12-...md", "---\ntitle: C\n---\n\nBody.\n");
    let run = site.run(&["check"]);
    run.expect_code(1);
    let e = &run.stderr;
    assert!(
        e.contains(
            "posts/2020-05-10-a.md:4:7: error: the post's URL `/../../etc/passwd/` climbs out of the site (`..`)"
        ),
        "{e}"
    );
    assert!(e.contains("= help: remove the `..` from `slug`: a post's URL must lie below `https://lwkd.info`"), "{e}");
    assert!(e.contains("posts/2020-05-11-b.md:4:12: error: the post's URL `/2020/../../b/` climbs out"), "{e}");
    assert!(e.contains("= help: remove the `..` from `permalink`"), "{e}");
    assert!(e.contains("posts/2020-05-12-...md: error: the post's URL `/../` climbs out of the site"), "{e}");
    assert!(e.contains("3 errors"), "{e}");
    site.run(&["build", "--out", "_site"]).expect_code(1);
    assert!(!site.path("_site").exists());
}

#[test]
fn dates_before_1970_are_refused() {
    let site = Site::new(LWKD_CONFIG);
    site.post("2020-05-10-a.md", "---\ntitle: A\ndate: 0000-01-01\n---\n\nBody.\n");
    site.post("0000-01-01-x.md", "---\ntitle: B\n---\n\nBody.\n");
    let run = site.run(&["check"]);
    run.expect_code(1);
    let e = &run.stderr;
    assert!(
        e.contains("posts/2020-05-10-a.md:3:7: error: `0000-01-01` is out of range: feeds and mail carry dates from 1970 to 9999"),
        "{e}"
    );
    assert!(e.contains("= help: write the issue's real date, e.g. `date: 2020-05-12 20:00:00 -0000`"), "{e}");
    assert!(e.contains("posts/0000-01-01-x.md: error: the file name's date `0000-01-01` is out of range"), "{e}");
    site.run(&["build", "--out", "_site"]).expect_code(1);
    assert!(!site.path("_site").exists());
}

// ---------------------------------------------------------------------------------------
// 14. Links in the digest that are not absolute: pointed at in the post, and none for
// in-document footnotes

#[test]
fn footnote_links_do_not_warn_and_relative_body_links_point_at_the_post() {
    let site = mail_site();
    let body = "Intro with a footnote.[^1]\n\
        \n\
        A link with no target: [the KEP]().\n\
        \n\
        [^1]: The note.\n";
    site.post("2020-05-10-update.md", &post("Footnotes", body));
    for args in [&["check"][..], &["preview"]] {
        let run = site.run(args);
        run.expect_code(0);
        let e = &run.stderr;
        // The footnote reference `#1` targets the footnote in the same message.
        assert!(!e.contains("the link `#1`"), "{}: {e}", args[0]);
        assert!(!e.contains("digest.html"), "{}: no warning points into the template:\n{e}", args[0]);
        // `[the KEP]()` is written on line 8 of the post; its empty target at column 34.
        assert!(
            e.contains("posts/2020-05-10-update.md:8:34: warning: the link `` in the digest is not absolute"),
            "{}: {e}",
            args[0]
        );
        assert_eq!(e.matches("relative-link").count() + e.matches("is not absolute").count(), 1, "{e}");
    }
    // The footnote is in the message, so the link goes somewhere.
    let html = site.read("_preview/message.html");
    assert!(html.contains("href=\"#1\"") && html.contains("id=\"1\""), "{html}");
}
