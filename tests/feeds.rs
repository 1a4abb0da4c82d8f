//! `newsdesk build`: the three feeds, parsed back by feed-rs (and serde_json for the
//! JSON Feed's own fields), compared field by field with what the posts say.

mod common;

use common::{LWKD_CONFIG, Site, alternate, content, feed_link, seed_post, snapshot, text, url_attributes};

const SEED_ID: &str = "https://lwkd.info/2020/2020-05-10-update";
const SEED_URL: &str = "https://lwkd.info/2020/20200512";
const SEED_TITLE: &str = "Week Ending May 10, 2020";

/// The seed issue with tags and a category added to its front matter (body unchanged).
fn seed_with_tags() -> String {
    let seed = seed_post();
    let tagged = seed.replacen(
        "slug: 2020-05-10-update\n",
        "slug: 2020-05-10-update\ntags: [release, sig-node]\ncategories: [news]\n",
        1,
    );
    assert_ne!(seed, tagged, "the seed post's front matter changed: update this test");
    tagged
}

fn seed_site() -> Site {
    let site = Site::new(LWKD_CONFIG);
    site.post("2020-05-10-update.md", &seed_with_tags());
    site
}

/// The first paragraph of the seed issue, as HTML and as text (read off line 10 of the post).
const SUMMARY_LINK: &str =
    "https://groups.google.com/forum/?utm_medium=email&utm_source=footer#!topic/kubernetes-dev/jnPv42i2ACw";
const SUMMARY_REST: &str = " has been cancelled, and will not be held as a virtual version either in order to limit \"virtual conference fatigue.\" The next contributor summit will be in Boston. The New Contributor Workshop is moving to an online-only version that should be ready sometime in July.";

fn summary_html() -> String {
    format!(
        "<p>The <a href=\"{}\">Amsterdam Contributor Summit</a>{}</p>",
        SUMMARY_LINK.replace('&', "&amp;"),
        SUMMARY_REST
    )
}

/// Checks the full HTML body of the seed issue as one feed carries it.
fn assert_seed_content(html: &str, format: &str) {
    for expected in [
        r#"<h2 id="developer-news">Developer News</h2>"#,
        r#"<h2 id="release-schedule">Release Schedule</h2>"#,
        // Jekyll's id for `### [#87746: Support compiling Kubelet w/o docker/docker](...)`.
        r#"<h3 id="87746-support-compiling-kubelet-wo-dockerdocker"><a href="https://github.com/kubernetes/kubernetes/pull/87746">#87746: Support compiling Kubelet w/o docker/docker</a></h3>"#,
        r#"<code>dockerless</code>"#,
        // The last list item of the issue: the body is complete.
        r#"<li><a href="https://github.com/kubernetes/kubernetes/pull/90744">kube-dns to 1.15.10</a></li>"#,
        // A schemeless link resolves against the post, as it did on the web.
        r#"<a href="https://lwkd.info/2020/cloud.google.com/network-tier">available by default</a>"#,
    ] {
        assert!(html.contains(expected), "{format} content lacks {expected}:\n{html}");
    }
    assert!(html.contains(&summary_html()), "{format} content lacks the first paragraph");
    for url in url_attributes(html) {
        assert!(url.starts_with("https://"), "{format}: relative or odd URL `{url}` in content");
    }
}

#[test]
fn seed_issue_in_rss() {
    let site = seed_site();
    site.build("_site", &[]);
    let raw = site.read("_site/rss.xml");
    let feed = site.feed("_site/rss.xml");
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::RSS2);
    assert_eq!(text(&feed.title), "Last Week in Kubernetes Development");
    assert_eq!(feed_link(&feed, "self"), Some("https://lwkd.info/rss.xml"));
    assert!(
        raw.contains(r#"<atom:link href="https://lwkd.info/rss.xml" rel="self" type="application/rss+xml"/>"#),
        "{raw}"
    );
    // The channel's dates are the newest post's, not the time of the build.
    assert!(raw.contains("<lastBuildDate>Tue, 12 May 2020 20:00:00 +0000</lastBuildDate>"), "{raw}");
    assert_eq!(feed.updated.unwrap().to_rfc3339(), "2020-05-12T20:00:00+00:00");

    assert_eq!(feed.entries.len(), 1);
    let e = &feed.entries[0];
    assert_eq!(text(&e.title), SEED_TITLE);
    assert_eq!(alternate(e), SEED_URL);
    assert_eq!(e.id, SEED_ID);
    // The id is not the link, so it must not claim to be one.
    assert!(raw.contains(&format!(r#"<guid isPermaLink="false">{SEED_ID}</guid>"#)), "{raw}");
    // RFC 822 date (12 May 2020 was a Tuesday).
    assert!(raw.contains("<pubDate>Tue, 12 May 2020 20:00:00 +0000</pubDate>"), "{raw}");
    assert_eq!(e.published.unwrap().to_rfc3339(), "2020-05-12T20:00:00+00:00");
    let authors: Vec<_> = e.authors.iter().map(|a| a.name.as_deref()).collect();
    assert_eq!(authors, [Some("LWKD editors")]);
    let categories: Vec<_> = e.categories.iter().map(|c| c.term.as_str()).collect();
    assert_eq!(categories, ["release", "sig-node", "news"]);
    assert_eq!(text(&e.summary), summary_html());
    assert_seed_content(content(e), "RSS");
}

#[test]
fn seed_issue_in_atom() {
    let site = seed_site();
    site.build("_site", &[]);
    let raw = site.read("_site/feed.xml");
    let feed = site.feed("_site/feed.xml");
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
    assert_eq!(text(&feed.title), "Last Week in Kubernetes Development");
    assert_eq!(feed.id, "https://lwkd.info/feed.xml");
    assert_eq!(feed_link(&feed, "self"), Some("https://lwkd.info/feed.xml"));
    assert_eq!(feed_link(&feed, "alternate"), Some("https://lwkd.info/"));
    assert_eq!(feed.updated.unwrap().to_rfc3339(), "2020-05-12T20:00:00+00:00");
    assert!(raw.contains("<updated>2020-05-12T20:00:00+00:00</updated>"), "{raw}");
    assert_eq!(feed.authors[0].name.as_deref(), Some("LWKD editors"));

    assert_eq!(feed.entries.len(), 1);
    let e = &feed.entries[0];
    assert_eq!(text(&e.title), SEED_TITLE);
    assert_eq!(alternate(e), SEED_URL);
    assert_eq!(e.id, SEED_ID);
    assert!(raw.contains("<published>2020-05-12T20:00:00+00:00</published>"), "{raw}");
    assert_eq!(e.published.unwrap().to_rfc3339(), "2020-05-12T20:00:00+00:00");
    assert_eq!(e.updated.unwrap().to_rfc3339(), "2020-05-12T20:00:00+00:00");
    assert_eq!(e.authors.len(), 1);
    assert_eq!(e.authors[0].name.as_deref(), Some("LWKD editors"));
    assert_eq!(e.authors[0].email.as_deref(), Some("lwkd@example.org"));
    let categories: Vec<_> = e.categories.iter().map(|c| c.term.as_str()).collect();
    assert_eq!(categories, ["release", "sig-node", "news"]);
    assert_eq!(text(&e.summary), summary_html());
    assert_seed_content(content(e), "Atom");
}

#[test]
fn seed_issue_in_json_feed() {
    let site = seed_site();
    site.build("_site", &[]);
    let raw = site.read("_site/feed.json");
    let feed = site.feed("_site/feed.json");
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::JSON);
    assert_eq!(text(&feed.title), "Last Week in Kubernetes Development");
    assert_eq!(feed.entries.len(), 1);
    let e = &feed.entries[0];
    assert_eq!(text(&e.title), SEED_TITLE);
    assert_eq!(alternate(e), SEED_URL);
    assert_eq!(e.id, SEED_ID);
    assert_eq!(e.published.unwrap().to_rfc3339(), "2020-05-12T20:00:00+00:00");
    assert_eq!(e.authors[0].name.as_deref(), Some("LWKD editors"));
    let categories: Vec<_> = e.categories.iter().map(|c| c.term.as_str()).collect();
    assert_eq!(categories, ["release", "sig-node", "news"]);
    assert_seed_content(content(e), "JSON");

    // The fields feed-rs does not map, read directly.
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(json["feed_url"], "https://lwkd.info/feed.json");
    assert_eq!(json["home_page_url"], "https://lwkd.info/");
    let item = &json["items"][0];
    assert_eq!(item["date_published"], "2020-05-12T20:00:00+00:00");
    assert_eq!(item["url"], SEED_URL);
    assert_eq!(item["summary"], format!("The Amsterdam Contributor Summit{SUMMARY_REST}"));
    assert_eq!(json.get("hubs"), None);
}

#[test]
fn the_three_feeds_carry_the_same_body() {
    let site = seed_site();
    site.build("_site", &[]);
    let rss = site.feed("_site/rss.xml");
    let atom = site.feed("_site/feed.xml");
    let json = site.feed("_site/feed.json");
    let rss = content(&rss.entries[0]);
    // feed-rs trims Atom and JSON bodies; the files end them with the same newline.
    assert_eq!(rss.trim_end(), content(&atom.entries[0]));
    assert_eq!(rss.trim_end(), content(&json.entries[0]));
    assert!(site.read("_site/feed.xml").contains("&lt;/ul&gt;\n</content>"));
    assert_eq!(site.json("_site/feed.json")["items"][0]["content_html"], rss);
}

#[test]
fn permalink_ids_are_permalink_guids() {
    let site = Site::new(&LWKD_CONFIG.replace("id = \"jekyll\"", "id = \"permalink\""));
    site.post("2020-05-10-update.md", &seed_post());
    site.build("_site", &[]);
    let raw = site.read("_site/rss.xml");
    assert!(!raw.contains("isPermaLink=\"false\""), "{raw}");
    for file in ["rss.xml", "feed.xml", "feed.json"] {
        let feed = site.feed(&format!("_site/{file}"));
        assert_eq!(feed.entries[0].id, SEED_URL, "{file}");
    }
}

// ---------------------------------------------------------------------------------------
// Escaping

const HOSTILE_SITE_TITLE: &str = "Tom & Jerry's <Weekly> \"Digest\" 🚀";
const HOSTILE_TITLE: &str = "Week: A & B <c> \"q\" 'x' 🚀 日本語 العربية ]]> end";
const HOSTILE_AUTHOR: &str = "O'Brien & Søn";

fn hostile_site() -> Site {
    let site = Site::new(&format!(
        r#"[site]
title = "{}"
description = "Kubernetes & <friends> — 週刊"
base_url = "https://example.org"
permalink = "/:year/:slug/"

[feeds]
id = "permalink"
"#,
        HOSTILE_SITE_TITLE.replace('"', "\\\"")
    ));
    site.post(
        "2021-03-04-hostile.md",
        // The title needs YAML quoting for its `: `; inside double quotes `\"` is a quote.
        r#"---
title: "Week: A & B <c> \"q\" 'x' 🚀 日本語 العربية ]]> end"
date: 2021-03-04 10:00:00 +0100
author: O'Brien & Søn <ob@example.org>
tags: ["a&b", "<x>", 日本, "]]>"]
---

Body with & ampersand, 1 < 2 > 0, "double" 'single', emoji 🎉, 中文, مرحبا.

```
code with ]]> and <tag> & stuff
```

Inline `]]>` and text ]]> here.

<div data-x="]]>">raw ]]> inside HTML</div>
"#,
    );
    site
}

#[test]
fn hostile_strings_survive_every_feed() {
    let site = hostile_site();
    site.build("_site", &[]);
    let mut bodies = Vec::new();
    for file in ["rss.xml", "atom.xml", "feed.json"] {
        let feed = site.feed(&format!("_site/{file}"));
        assert_eq!(text(&feed.title), HOSTILE_SITE_TITLE, "{file}");
        assert_eq!(feed.entries.len(), 1, "{file}");
        let e = &feed.entries[0];
        assert_eq!(text(&e.title), HOSTILE_TITLE, "{file}");
        assert_eq!(e.id, "https://example.org/2021/hostile/", "{file}");
        assert_eq!(e.authors[0].name.as_deref(), Some(HOSTILE_AUTHOR), "{file}");
        let tags: Vec<_> = e.categories.iter().map(|c| c.term.as_str()).collect();
        assert_eq!(tags, ["a&b", "<x>", "日本", "]]>"], "{file}");
        let html = content(e);
        for expected in [
            "<p>Body with &amp; ampersand, 1 &lt; 2 &gt; 0, \"double\" 'single', emoji 🎉, 中文, مرحبا.</p>",
            "<pre><code>code with ]]&gt; and &lt;tag&gt; &amp; stuff\n</code></pre>",
            "<p>Inline <code>]]&gt;</code> and text ]]&gt; here.</p>",
            // Raw HTML passes through untouched, `]]>` and all.
            "<div data-x=\"]]>\">raw ]]> inside HTML</div>",
        ] {
            assert!(html.contains(expected), "{file} content lacks {expected:?}:\n{html}");
        }
        bodies.push(html.to_string());
        assert_eq!(e.published.unwrap().to_rfc3339(), "2021-03-04T09:00:00+00:00", "{file}");
    }
    // feed-rs trims Atom and JSON bodies.
    assert_eq!(bodies[0].trim_end(), bodies[1]);
    assert_eq!(bodies[0].trim_end(), bodies[2]);
    // The offset written in the post is kept.
    assert!(site.read("_site/rss.xml").contains("<pubDate>Thu, 4 Mar 2021 10:00:00 +0100</pubDate>"));
    assert!(site.read("_site/atom.xml").contains("<published>2021-03-04T10:00:00+01:00</published>"));
    assert_eq!(site.json("_site/feed.json")["description"], "Kubernetes & <friends> — 週刊");
}

// ---------------------------------------------------------------------------------------
// Reproducible output

#[test]
fn rebuilding_gives_byte_identical_files() {
    let site = seed_site();
    let bundled = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("posts");
    common::copy_dir(&bundled, &site.path("posts"));
    site.build("a", &[]);
    site.build("b", &[]);
    let a = snapshot(&site.path("a"));
    let names: Vec<_> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["feed.json", "feed.xml", "rss.xml"]);
    assert_eq!(a, snapshot(&site.path("b")), "two builds differ");
    site.build("a", &[]);
    assert_eq!(a, snapshot(&site.path("a")), "rebuilding in place changed the files");
}

// ---------------------------------------------------------------------------------------
// Links

#[test]
fn relative_links_become_absolute_in_every_feed() {
    let site = Site::new(LWKD_CONFIG);
    site.post(
        "2020-05-10-update.md",
        r#"---
title: Links
date: 2020-05-12 20:00:00 -0000
---

![diagram](/2018/images/x.png) and ![local](img.png), see [below](#anchor),
[the archive](/2018/20180205) and [a sibling](../2019/20190101).

<img src="/x.png" alt="raw">

## Anchor
"#,
    );
    site.build("_site", &[]);
    for file in ["rss.xml", "feed.xml", "feed.json"] {
        let feed = site.feed(&format!("_site/{file}"));
        let html = content(&feed.entries[0]);
        for expected in [
            r#"src="https://lwkd.info/2018/images/x.png""#,
            r#"src="https://lwkd.info/2020/img.png""#,
            r#"href="https://lwkd.info/2020/20200512#anchor""#,
            r#"href="https://lwkd.info/2018/20180205""#,
            r#"href="https://lwkd.info/2019/20190101""#,
            r#"<img src="https://lwkd.info/x.png" alt="raw">"#,
        ] {
            assert!(html.contains(expected), "{file} lacks {expected}:\n{html}");
        }
        let urls = url_attributes(html);
        assert_eq!(urls.len(), 6, "{file}: {urls:?}");
        for url in urls {
            assert!(url.starts_with("https://lwkd.info/"), "{file}: `{url}` is not absolute");
        }
    }
}

// ---------------------------------------------------------------------------------------
// [feeds] options

#[test]
fn disabled_and_renamed_feeds_and_a_hub() {
    let site = Site::new(&LWKD_CONFIG.replace(
        "[feeds]\natom = \"feed.xml\"\n",
        "[feeds]\nrss = false\natom = \"lwkd.atom\"\njson = \"feeds/lwkd.json\"\nhub = \"https://hub.example.org/\"\n",
    ));
    site.post("2020-05-10-update.md", &seed_post());
    let run = site.build("out", &["--format", "json"]);
    let report = run.json();
    assert_eq!(report["ok"], true);
    let written: Vec<_> = report["written"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(written, ["out/lwkd.atom", "out/feeds/lwkd.json"]);
    assert!(!site.path("out/rss.xml").exists(), "RSS was disabled");
    let names: Vec<_> = snapshot(&site.path("out")).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["feeds/", "lwkd.atom"]);

    let atom = site.feed("out/lwkd.atom");
    assert_eq!(feed_link(&atom, "self"), Some("https://lwkd.info/lwkd.atom"));
    assert_eq!(feed_link(&atom, "hub"), Some("https://hub.example.org/"));
    let json = site.json("out/feeds/lwkd.json");
    assert_eq!(json["feed_url"], "https://lwkd.info/feeds/lwkd.json");
    assert_eq!(json["hubs"], serde_json::json!([{ "type": "WebSub", "url": "https://hub.example.org/" }]));
    assert_eq!(site.feed("out/feeds/lwkd.json").entries[0].id, SEED_ID);

    // RSS carries the hub as an atom:link too.
    let site = Site::new(&LWKD_CONFIG.replace("[feeds]\n", "[feeds]\nhub = \"https://hub.example.org/\"\n"));
    site.post("2020-05-10-update.md", &seed_post());
    site.build("out", &[]);
    let rss = site.feed("out/rss.xml");
    assert_eq!(feed_link(&rss, "hub"), Some("https://hub.example.org/"));
    assert_eq!(feed_link(&rss, "self"), Some("https://lwkd.info/rss.xml"));
}

// ---------------------------------------------------------------------------------------
// Selection: limit, order, drafts, future posts

/// 300 weekly issues from 2015 on. Each is dated two days after the date in its file
/// name, so the order comes from the front matter; every 7th has an odd hour so ties
/// never happen. Returns the ids (jekyll rule: the file stem), newest first.
fn archive_site(extra_config: &str) -> (Site, Vec<String>) {
    let site = Site::new(&format!("{LWKD_CONFIG}{extra_config}"));
    let start = chrono::NaiveDate::from_ymd_opt(2015, 1, 4).unwrap();
    let mut ids = Vec::new();
    for i in 0..300 {
        let name_day = start + chrono::Duration::weeks(i);
        let date = name_day + chrono::Duration::days(2);
        let stem = format!("{}-update", name_day.format("%Y-%m-%d"));
        let hour = if i % 7 == 0 { 9 } else { 20 };
        site.post(
            &format!("{stem}.md"),
            &format!("---\ntitle: Issue {i}\ndate: {} {hour}:00:00 -0000\n---\n\nIssue number {i}.\n", date),
        );
        // jekyll-feed ids take the year from the permalink, so from the date.
        ids.push(format!("https://lwkd.info/{}/{stem}", date.format("%Y")));
    }
    // A draft newer than everything, and an issue dated far in the future.
    site.post(
        "2026-01-04-draft.md",
        "---\ntitle: Draft\ndate: 2026-01-04 10:00:00 -0000\npublished: false\n---\n\nNot yet.\n",
    );
    site.post("2999-01-01-future.md", "---\ntitle: Future\ndate: 2999-01-01 10:00:00 -0000\n---\n\nLater.\n");
    ids.reverse();
    (site, ids)
}

fn ids(site: &Site, file: &str) -> Vec<String> {
    site.feed(file).entries.into_iter().map(|e| e.id).collect()
}

const DRAFT_ID: &str = "https://lwkd.info/2026/2026-01-04-draft";
const FUTURE_ID: &str = "https://lwkd.info/2999/2999-01-01-future";

#[test]
fn default_limit_is_the_twenty_newest_published_posts() {
    let (site, all) = archive_site("");
    let report = site.build("_site", &["--format", "json"]).json();
    assert_eq!(report["items"], 20);
    for file in ["_site/rss.xml", "_site/feed.xml", "_site/feed.json"] {
        assert_eq!(ids(&site, file), all[..20], "{file}");
    }
    let atom = site.feed("_site/feed.xml");
    let dates: Vec<_> = atom.entries.iter().map(|e| e.published.unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] > w[1]), "not newest first: {dates:?}");
    // The feed's date is the newest published issue's (2020-09-29), not the draft's.
    assert_eq!(atom.updated.unwrap().to_rfc3339(), "2020-09-29T20:00:00+00:00");
}

#[test]
fn custom_limit_drafts_and_future_posts() {
    let (site, all) = archive_site("limit = 7\n");
    site.build("plain", &[]);
    assert_eq!(ids(&site, "plain/feed.json"), all[..7]);

    site.build("drafts", &["--drafts"]);
    let mut expected = vec![DRAFT_ID.to_string()];
    expected.extend_from_slice(&all[..6]);
    assert_eq!(ids(&site, "drafts/feed.xml"), expected);

    site.build("future", &["--future"]);
    let mut expected = vec![FUTURE_ID.to_string()];
    expected.extend_from_slice(&all[..6]);
    assert_eq!(ids(&site, "future/rss.xml"), expected);

    site.build("both", &["--drafts", "--future"]);
    let mut expected = vec![FUTURE_ID.to_string(), DRAFT_ID.to_string()];
    expected.extend_from_slice(&all[..5]);
    assert_eq!(ids(&site, "both/feed.json"), expected);
}

#[test]
fn limit_larger_than_the_archive_takes_everything() {
    let (site, all) = archive_site("limit = 1000\n");
    let report = site.build("_site", &["--format", "json"]).json();
    assert_eq!(report["items"], 300);
    assert_eq!(ids(&site, "_site/feed.xml"), all);
}

// ---------------------------------------------------------------------------------------
// jekyll-feed ids

#[test]
fn jekyll_ids_use_the_front_matter_slug_and_links_use_the_date() {
    let site = Site::new(LWKD_CONFIG);
    // The front matter of LWKD's 2024-03-24-update.md: published on the 27th, under a
    // slug that is not the file name.
    site.post(
        "2024-03-24-update.md",
        "---\nlayout: post\ntitle: Week Ending March 24, 2024\ndate: 2024-03-27 20:28:00 -0000\nslug: 2024-03-27-update\n\n---\n\nBody.\n",
    );
    // No slug: jekyll-feed uses the whole file name.
    site.post("2018-01-14-update.md", "---\nlayout: post\ntitle: Week Ending January 14, 2018\n---\n\nBody.\n");
    // An explicit id wins.
    site.post("2019-06-02-update.md", "---\ntitle: Own id\nid: tag:lwkd.info,2019:own\n---\n\nBody.\n");
    site.build("_site", &[]);
    for file in ["rss.xml", "feed.xml", "feed.json"] {
        let feed = site.feed(&format!("_site/{file}"));
        let got: Vec<_> = feed.entries.iter().map(|e| (e.id.as_str(), alternate(e))).collect();
        assert_eq!(
            got,
            [
                ("https://lwkd.info/2024/2024-03-27-update", "https://lwkd.info/2024/20240327"),
                ("tag:lwkd.info,2019:own", "https://lwkd.info/2019/20190602"),
                ("https://lwkd.info/2018/2018-01-14-update", "https://lwkd.info/2018/20180114"),
            ],
            "{file}"
        );
    }
}
