//! The real archive: 386 issues of LWKD (`../shared/corpus/lwkd/_posts`, CC BY 4.0),
//! checked and built with a config equivalent to lwkd.info's Jekyll `_config.yml`.
//! Skipped, with a note, in a checkout without the corpus beside it.
//!
//! Every expected diagnostic below was confirmed by reading the post it names.

mod common;

use common::{Site, alternate, copy_dir, corpus_posts};

/// lwkd.info's `_config.yml` in newsdesk terms: same title, description, permalink;
/// jekyll-feed's feed name and ids. Like the Jekyll site it names no author.
const LWKD_JEKYLL_CONFIG: &str = r#"[site]
title = "Last Week in Kubernetes Development"
description = "Stay up-to-date on Kubernetes development in 15 minutes a week."
base_url = "https://lwkd.info"
posts = "_posts"
permalink = "/:year/:year:month:day"

[feeds]
atom = "feed.xml"
id = "jekyll"
"#;

fn corpus_site(test: &str) -> Option<Site> {
    let posts = corpus_posts(test)?;
    let site = Site::new(LWKD_JEKYLL_CONFIG);
    copy_dir(&posts, &site.path("_posts"));
    Some(site)
}

/// The two dates in the archive that do not exist, set to what Jekyll read them as.
fn fix_dates(site: &Site) {
    for (file, bad, good) in [
        ("_posts/2022-02-27-update.md", "date: 2022-02-29 07:10:00 -0000", "date: 2022-03-01 07:10:00 -0000"),
        ("_posts/2024-04-14-update.md", "date: 2024-04-17 14:4g5:00 -0000", "date: 2024-04-17 14:04:00 -0000"),
    ] {
        let text = site.read(file);
        assert!(text.contains(bad), "{file} no longer has `{bad}`: update this test");
        site.write(file, &text.replacen(bad, good, 1));
    }
}

/// (code, file) of every diagnostic of `severity`, sorted.
fn found(report: &serde_json::Value, severity: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == severity)
        .map(|d| (d["code"].as_str().unwrap().to_string(), d["file"].as_str().unwrap().to_string()))
        .collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<_> = list.iter().map(|(c, f)| (c.to_string(), f.to_string())).collect();
    out.sort();
    out
}

/// Posts whose front-matter `slug:` is not their file name (lwkd.info publishes under
/// the slug, so they keep it; the warning suggests renaming the file).
const SLUG_MISMATCHES: [&str; 10] = [
    "2018-07-02-update.md",
    "2022-08-15-update.md",
    "2024-03-24-update.md",
    "2024-03-31-update.md",
    "2024-04-07-update.md",
    "2024-05-05-update.md",
    "2024-05-19-update.md",
    "2024-06-02-update.md",
    "2024-10-20-update.md",
    "2025-07-27-update.md",
];

/// Warnings on the archive as it is (the posts with a bad date are not loaded, so
/// 2024-04-14-update.md's own slug mismatch shows only once its date is fixed).
fn expected_warnings() -> Vec<(String, String)> {
    let mut list: Vec<(&str, String)> =
        SLUG_MISMATCHES.iter().map(|f| ("slug-mismatch", format!("_posts/{f}"))).collect();
    // Line 34 opens a code span it never closes, so five `<string>`s are raw HTML.
    list.extend((0..5).map(|_| ("unknown-html-tag", "_posts/2023-12-17-update.md".to_string())));
    for f in ["2023-08-20", "2023-11-12", "2024-01-07", "2024-01-21", "2026-05-24"] {
        list.push(("http-link", format!("_posts/{f}-update.md")));
    }
    // `(apiregistration.k8s.io/v1beta1)` and `(cloud.google.com/network-tier)`.
    list.push(("schemeless-link", "_posts/2020-05-03-update.md".to_string()));
    list.push(("schemeless-link", "_posts/2020-05-10-update.md".to_string()));
    // Atom needs an author; neither the site nor 384 of the posts name one.
    list.push(("no-author", "config.toml".to_string()));
    let list: Vec<(&str, &str)> = list.iter().map(|(c, f)| (*c, f.as_str())).collect();
    pairs(&list)
}

#[test]
fn check_finds_the_two_bad_dates_and_only_real_warnings() {
    let Some(site) = corpus_site("check_finds_the_two_bad_dates_and_only_real_warnings") else { return };
    let run = site.run(&["check", "--format", "json"]);
    run.expect_code(1);
    let report = run.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"], 2, "{report:#}");

    let errors: Vec<&serde_json::Value> =
        report["diagnostics"].as_array().unwrap().iter().filter(|d| d["severity"] == "error").collect();
    let leap = errors[0];
    assert_eq!(leap["file"], "_posts/2022-02-27-update.md");
    assert_eq!((leap["line"].as_u64(), leap["column"].as_u64()), (Some(4), Some(7)));
    assert_eq!(leap["code"], "bad-date");
    assert!(leap["message"].as_str().unwrap().contains("`2022-02-29`"), "{leap}");
    let help = leap["help"].as_str().unwrap();
    assert!(help.contains("2022-03-01 07:10:00") && help.contains("/2022/20220301"), "{help}");

    let typo = errors[1];
    assert_eq!(typo["file"], "_posts/2024-04-14-update.md");
    assert_eq!(typo["line"], 4);
    assert_eq!(typo["code"], "bad-date");
    assert!(typo["message"].as_str().unwrap().contains("`14:4g5:00`"), "{typo}");
    assert!(typo["help"].as_str().unwrap().contains("14:04:00"), "{typo}");

    assert_eq!(found(&report, "warning"), expected_warnings(), "{report:#}");

    // The same two errors for people, with the source line.
    let run = site.run(&["check"]);
    run.expect_code(1);
    assert!(run.stderr.contains("_posts/2022-02-27-update.md:4:7: error: `2022-02-29` is not a day"), "{}", run.stderr);
    assert!(run.stderr.contains("4 | date: 2024-04-17 14:4g5:00 -0000"), "{}", run.stderr);
}

#[test]
fn build_refuses_the_archive_until_the_dates_are_fixed() {
    let Some(site) = corpus_site("build_refuses_the_archive_until_the_dates_are_fixed") else { return };
    let run = site.run(&["build", "--out", "_site", "--format", "json"]);
    run.expect_code(1);
    assert_eq!(run.json()["errors"], 2);
    assert!(!site.path("_site").exists());

    fix_dates(&site);
    let report = site.run(&["check", "--format", "json"]).json();
    assert_eq!(report["errors"], 0, "{report:#}");
    let mut warnings = expected_warnings();
    warnings.push(("slug-mismatch".into(), "_posts/2024-04-14-update.md".into()));
    warnings.sort();
    assert_eq!(found(&report, "warning"), warnings);

    let run = site.run(&["build", "--out", "_site", "--format", "json"]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["items"], 20);
    assert_eq!(report["written"], serde_json::json!(["_site/rss.xml", "_site/feed.xml", "_site/feed.json"]));
    for file in ["rss.xml", "feed.xml", "feed.json"] {
        let feed = site.feed(&format!("_site/{file}"));
        assert_eq!(feed.entries.len(), 20, "{file}");
        let dates: Vec<_> = feed.entries.iter().map(|e| e.published.unwrap()).collect();
        assert!(dates.windows(2).all(|w| w[0] > w[1]), "{file} not newest first");
        // The feed's own date is its newest entry's (JSON Feed has no feed date).
        if file != "feed.json" {
            assert_eq!(feed.updated, Some(dates[0]), "{file}");
        }
    }
}

#[test]
fn jekyll_ids_for_posts_whose_slug_is_not_the_file_name() {
    let Some(site) = corpus_site("jekyll_ids_for_posts_whose_slug_is_not_the_file_name") else { return };
    fix_dates(&site);
    site.write("config.toml", &LWKD_JEKYLL_CONFIG.replace("[feeds]\n", "[feeds]\nlimit = 400\n"));
    site.build("_site", &[]);
    let feed = site.feed("_site/feed.xml");
    let posts = std::fs::read_dir(site.path("_posts")).unwrap().count();
    assert_eq!(feed.entries.len(), posts);
    let find = |id: &str| feed.entries.iter().find(|e| e.id == id).unwrap_or_else(|| panic!("no entry with id {id}"));
    // 2024-03-24-update.md: `date: 2024-03-27 20:28:00`, `slug: 2024-03-27-update`.
    assert_eq!(alternate(find("https://lwkd.info/2024/2024-03-27-update")), "https://lwkd.info/2024/20240327");
    // 2024-04-07-update.md carries `slug: 2024-01-10-update`.
    let e = find("https://lwkd.info/2024/2024-01-10-update");
    assert_eq!(e.title.as_ref().unwrap().content, "Week Ending April 07, 2024");
    // 2022-02-27-update.md, dated (as Jekyll read it) 1 March.
    assert_eq!(alternate(find("https://lwkd.info/2022/2022-02-27-update")), "https://lwkd.info/2022/20220301");
    // 2018-01-14-update.md has no date: the file name's, at midnight UTC.
    let e = find("https://lwkd.info/2018/2018-01-14-update");
    assert_eq!(alternate(e), "https://lwkd.info/2018/20180114");
    assert_eq!(e.published.unwrap().to_rfc3339(), "2018-01-14T00:00:00+00:00");
}

/// The sanitiser (ammonia) changes nothing in the real archive: for every issue the
/// body and summary HTML are exactly what the markdown renders to, but for the one post
/// with raw tags that are no HTML element.
#[test]
fn sanitizing_changes_no_issue_of_the_archive() {
    let Some(site) = corpus_site("sanitizing_changes_no_issue_of_the_archive") else { return };
    fix_dates(&site);
    let config = newsdesk::config::load(&site.path("config.toml")).unwrap();
    let loaded = newsdesk::load::load(&config);
    assert_eq!(loaded.archive.posts.len(), 386);
    let mut changed = Vec::new();
    for post in &loaded.archive.posts {
        let r = newsdesk::render::render(post).unwrap();
        if r.sanitized {
            changed.push(post.file_stem.clone());
        }
        assert!(!r.diagnostics.iter().any(|d| d.code == "active-content"), "{}", post.file_stem);
    }
    // Line 34 opens a code span it never closes, so five `<string>` (no HTML element,
    // warned as `unknown-html-tag`) are raw HTML: the sanitiser drops those tags and
    // keeps their text, which every browser shows the same.
    assert_eq!(changed, ["2023-12-17-update"]);
}

/// `newsdesk new`'s rule checked against the archive. An issue is dated when it went
/// out, and named for the last day (a Sunday) of the week before that date: from each
/// 2024-2026 post's `date:`, the rule gives the file name, title and slug `new` would
/// have written, which are compared with the real ones. The differences below were each
/// read by hand.
#[test]
fn new_names_issues_as_the_archive_does() {
    let Some(posts) = corpus_posts("new_names_issues_as_the_archive_does") else { return };
    let config = newsdesk::config::parse(LWKD_JEKYLL_CONFIG, std::path::Path::new("config.toml")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&posts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| ["2024", "2025", "2026"].iter().any(|y| f.starts_with(y)))
        .collect();
    files.sort();
    assert_eq!(files.len(), 124);
    let mut differ = Vec::new();
    let mut weekdays = std::collections::BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(posts.join(file)).unwrap();
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}:")))
                .map(|v| v.trim().trim_matches('"').to_string())
                .unwrap()
        };
        let date = field("date");
        let Ok(went_out) = chrono::NaiveDate::parse_from_str(&date[..10], "%Y-%m-%d") else {
            differ.push(format!("{file}: date {date}"));
            continue;
        };
        *weekdays.entry(went_out.format("%a").to_string()).or_insert(0) += 1;
        // The week before the day it went out: the Sunday before that day.
        let planned = newsdesk::ops::new::plan(&config, went_out - chrono::Duration::days(7));
        if planned.file.to_string_lossy() != file.as_str() {
            differ.push(format!("{file}: dated {date}, new would name it {}", planned.file.display()));
            continue;
        }
        if planned.title != field("title") {
            differ.push(format!("{file}: title {}", field("title")));
        }
        if planned.slug != field("slug") {
            differ.push(format!("{file}: slug {}", field("slug")));
        }
    }
    let expected = [
        // Zero-padded days and "2nd" in titles (11); slugs carrying the day the issue
        // went out or a typo of the month (10); and three issues dated on or before the
        // last day of their own week, which the rule names for the week before.
        "2024-02-04-update.md: title Week Ending February 04, 2024",
        "2024-02-11-update.md: dated 2024-02-11 22:00:00 -0000, new would name it 2024-02-04-update.md",
        "2024-03-24-update.md: slug 2024-03-27-update",
        "2024-03-31-update.md: slug 2024-04-01-update",
        "2024-04-07-update.md: title Week Ending April 07, 2024",
        "2024-04-07-update.md: slug 2024-01-10-update",
        "2024-04-14-update.md: slug 2024-01-16-update",
        "2024-05-05-update.md: slug 2024-05-06-update",
        "2024-05-19-update.md: slug 2024-05-21-update",
        "2024-06-02-update.md: title Week Ending June 2nd, 2024",
        "2024-06-02-update.md: slug 2024-06-03-update",
        "2024-07-07-update.md: title Week Ending July 07, 2024",
        "2024-08-04-update.md: title Week Ending August 04, 2024",
        "2024-10-06-update.md: title Week Ending October 06, 2024",
        "2024-10-20-update.md: slug 2024-10-22-update",
        "2025-02-02-update.md: title Week Ending February 02, 2025",
        "2025-02-09-update.md: title Week Ending February 09, 2025",
        "2025-07-27-update.md: slug 2025-01-27-update",
        "2025-11-02-update.md: title Week Ending November 02, 2025",
        "2026-03-15-update.md: dated 2026-03-13 19:00:00 -0000, new would name it 2026-03-08-update.md",
        "2026-05-24-update.md: dated 2026-05-24 22:00:00 -0000, new would name it 2026-05-17-update.md",
        "2026-07-05-update.md: title Week Ending July 05, 2026",
        "2026-08-02-update.md: title Week Ending August 02, 2026",
        "2026-08-09-update.md: title Week Ending August 09, 2026",
    ];
    assert_eq!(differ, expected, "posts whose name or title differ from new's rule");
    // 124 posts, 22 with a difference: 102 agree in file name, title and slug.
    let posts_differing: std::collections::BTreeSet<&str> = differ.iter().map(|d| &d[..20]).collect();
    assert_eq!(posts_differing.len(), 22);
    // They went out on Wednesdays and Thursdays alike, hence `[new] publish_weekday`.
    let days: Vec<(&str, i32)> = weekdays.iter().map(|(d, n)| (d.as_str(), *n)).collect();
    assert_eq!(days, [("Fri", 11), ("Mon", 3), ("Sat", 1), ("Sun", 2), ("Thu", 44), ("Tue", 19), ("Wed", 44)]);
    // Any day of the week names the same issue, its last day included.
    for day in ["2026-08-10", "2026-08-13", "2026-08-16"] {
        let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        assert_eq!(newsdesk::ops::new::plan(&config, d).slug, "2026-08-16-update");
    }
    assert_eq!(
        newsdesk::ops::new::plan(&config, chrono::NaiveDate::from_ymd_opt(2026, 8, 16).unwrap()).publish,
        "2026-08-20T22:00:00+00:00"
    );
}

/// The social texts' highlights found in the real issues of 2025 and 2026: every one
/// that has a Featured PRs or KEP of the Week entry gives at least one, whether the
/// entry is a heading, a paragraph or a list item opening with its link.
#[test]
fn every_recent_issue_with_featured_prs_has_highlights() {
    let Some(site) = corpus_site("every_recent_issue_with_featured_prs_has_highlights") else { return };
    fix_dates(&site);
    let config = newsdesk::config::load(&site.path("config.toml")).unwrap();
    let loaded = newsdesk::load::load(&config);
    let (mut with_section, mut without) = (0, Vec::new());
    for post in
        loaded.archive.posts.iter().filter(|p| p.file_stem.starts_with("2025") || p.file_stem.starts_with("2026"))
    {
        let rendered = newsdesk::render::render(post).unwrap();
        let has_section = rendered.markdown.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with('#') && (l.contains("featured pr") || l.contains("kep of the week"))
        });
        if !has_section {
            continue;
        }
        with_section += 1;
        if newsdesk::social::highlights(&rendered).is_empty() {
            without.push(post.file_stem.clone());
        }
    }
    assert!(with_section > 60, "{with_section}");
    assert_eq!(without, Vec::<String>::new(), "issues whose entries give no highlight");
    // The two shapes, as the archive writes them.
    let by_name = |stem: &str| loaded.archive.posts.iter().find(|p| p.file_stem == stem).unwrap();
    let h = newsdesk::social::highlights(&newsdesk::render::render(by_name("2025-03-02-update")).unwrap());
    assert_eq!(h, ["Declarative Validation: Add validation generator"]);
    let h = newsdesk::social::highlights(&newsdesk::render::render(by_name("2026-01-11-update")).unwrap());
    assert_eq!(
        h,
        ["Graduate watch_list_duration_seconds to Beta", "Enable declarative-native validation for API strategies"]
    );
    let h = newsdesk::social::highlights(&newsdesk::render::render(by_name("2026-08-02-update")).unwrap());
    assert_eq!(
        h,
        [
            "Fix CPU Manager re-allocations for pods using pod-level…",
            "Fix StatefulSet parallel scale down after failed scale up",
            "Nominated node name for an expected pod placement"
        ]
    );
}
