//! The post loader on arbitrary bytes: front matter, YAML, dates, slugs, permalinks.
//!
//! Property: it never panics, and a post it returns has a title, slug, id and URL free
//! of the characters XML forbids, a URL below the base URL and no `..` segment in its
//! path or id.

#![no_main]

use libfuzzer_sys::fuzz_target;
use newsdesk::model::Site;
use std::io::Write;

/// File names that steer the loader: a dated one, one with a year 0, a slug of `..`,
/// one without a date.
const NAMES: [&str; 4] = ["2020-05-10-update.md", "0000-01-01-x.md", "2020-01-01-...md", "notes.md"];
const PERMALINKS: [&str; 4] = ["/:year/:year:month:day", "/:title/", "date", "/:categories/:slug"];
const ID_RULES: [&str; 3] = ["permalink", "jekyll", "/:year/:title"];

fuzz_target!(|data: &[u8]| {
    let Some((&steer, bytes)) = data.split_first() else { return };
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join(NAMES[usize::from(steer & 3)]);
    std::fs::File::create(&path).and_then(|mut f| f.write_all(bytes)).expect("write the post");
    let site = Site {
        title: "T".into(),
        description: String::new(),
        base_url: "https://lwkd.info".into(),
        language: "en".into(),
        timezone: "UTC".into(),
        tz: if steer & 64 == 0 { chrono_tz_utc() } else { "Pacific/Kiritimati".parse().expect("a zone") },
        permalink: PERMALINKS[usize::from((steer >> 2) & 3)].into(),
        author: None,
    };
    let id_rule = ID_RULES[usize::from(steer >> 4) % 3];
    let Ok((post, _warnings)) = newsdesk::load::load_post(&path, &site, id_rule) else { return };
    for (what, value) in [("title", &post.title), ("slug", &post.slug), ("id", &post.id), ("url", &post.url)] {
        assert!(!value.chars().any(newsdesk::chars::is_forbidden), "{what} {value:?} has a control character");
    }
    assert!(post.url.starts_with("https://lwkd.info/"), "url {:?} is not below the base URL", post.url);
    assert!(!newsdesk::permalink::climbs(&post.path), "path {:?} climbs out of the site", post.path);
    if let Some(rest) = post.id.strip_prefix("https://lwkd.info") {
        assert!(!newsdesk::permalink::climbs(rest), "id {:?} climbs out of the site", post.id);
    }
    let url = url::Url::parse(&post.url).unwrap_or_else(|e| panic!("url {:?} does not parse: {e}", post.url));
    assert_eq!(url.host_str(), Some("lwkd.info"), "{:?}", post.url);
    // Dates the feeds can print.
    let _ = (post.date.to_rfc2822(), post.date.to_rfc3339());
});

fn chrono_tz_utc() -> chrono_tz::Tz {
    chrono_tz::UTC
}
