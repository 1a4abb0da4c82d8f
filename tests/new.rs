//! `newsdesk new` through the binary: the next issue's post from the template, named
//! and dated by the rule, never overwriting, opened in $EDITOR, with a custom template;
//! and what `check` and `build` make of a post that goes out in the future.

mod support;

use std::os::unix::fs::PermissionsExt;
use support::{Site, text};

#[test]
fn new_writes_the_week_s_post_once() {
    let site = Site::new("");
    let out = site.run(&["new", "--date", "2099-06-17"]);
    assert!(out.status.success(), "{}", text(&out));
    // 2099-06-21 is the Sunday that ends the week of 2099-06-17; it goes out on the
    // Thursday after, at 22:00 in [site] timezone.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "posts/2099-06-21-update.md");
    let post = std::fs::read_to_string(site.path("posts/2099-06-21-update.md")).unwrap();
    assert!(
        post.starts_with(
            "---\nlayout: post\ntitle: Week Ending June 21, 2099\ndate: 2099-06-25 22:00:00 +0000\nslug: 2099-06-21-update\n---\n"
        ),
        "{post}"
    );
    assert!(post.contains("\n## Featured PRs\n"), "the editors' sections: {post}");
    // `check` says which upcoming issue it is and when it is due; `build` leaves it out.
    let out = site.run(&["check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("posts/2099-06-21-update.md:4:1: warning: this post is dated 2099-06-25 22:00 +0000 (in the future): \"Week Ending June 21, 2099\" is an upcoming issue, due in "),
        "{}",
        text(&out)
    );
    let out = site.run(&["build"]);
    assert!(out.status.success(), "{}", text(&out));
    let feed = std::fs::read_to_string(site.path("_site/feed.json")).unwrap();
    assert!(!feed.contains("2099-06-21"), "a future post is not in the feeds");
    // Again: refused, the file untouched.
    std::fs::write(site.path("posts/2099-06-21-update.md"), "edited").unwrap();
    let out = site.run(&["new", "--date", "2099-06-21"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("this post exists already: the issue for the week ending 2099-06-21"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(site.path("posts/2099-06-21-update.md")).unwrap(), "edited");
}

#[test]
fn without_a_date_new_starts_the_newest_week_without_a_post_then_the_next() {
    let site = Site::new("");
    let json = |out: &std::process::Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", text(out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = json(&site.run(&["new", "--format", "json"]));
    let day = |v: &serde_json::Value| {
        chrono::NaiveDate::parse_from_str(v["week_ending"].as_str().unwrap(), "%Y-%m-%d").unwrap()
    };
    let today = chrono::Utc::now().date_naive();
    use chrono::Datelike;
    assert_eq!(day(&first).weekday(), chrono::Weekday::Sun);
    assert!(day(&first) <= today && today - day(&first) < chrono::Duration::days(7), "{first}");
    let second = json(&site.run(&["new", "--format", "json"]));
    assert_eq!(day(&second) - day(&first), chrono::Duration::days(7), "the week after: {second}");
}

#[test]
fn a_custom_template_and_the_editor() {
    let site = Site::new(
        "\n[new]\ntemplate = \"issue.md\"\nweek_ends = \"friday\"\npublish_weekday = \"monday\"\npublish_time = \"09:30\"\n",
    );
    std::fs::write(
        site.path("issue.md"),
        "---\ntitle: {{ title }}\ndate: {{ publish | date(\"%Y-%m-%d %H:%M %z\") }}\n---\nWeek of {{ week_ending | date(\"%-d %B\") }}.\n",
    )
    .unwrap();
    let editor = site.path("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\necho 'Written in the editor.' >> \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = site
        .run_env(&["new", "--date", "2099-06-17", "--open"], &[("EDITOR", editor.to_str().unwrap()), ("VISUAL", "")]);
    assert!(out.status.success(), "{}", text(&out));
    // 2099-06-19 is a Friday; the Monday after is the 22nd.
    let post = std::fs::read_to_string(site.path("posts/2099-06-19-update.md")).unwrap();
    assert_eq!(
        post,
        "---\ntitle: Week Ending June 19, 2099\ndate: 2099-06-22 09:30 +0000\n---\nWeek of 19 June.\nWritten in the editor.\n"
    );
    // A template that does not render is an error naming it.
    std::fs::write(site.path("issue.md"), "{{ title | date(\"%Y\") }}").unwrap();
    let out = site.run(&["new", "--date", "2099-07-01"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("issue.md") && text(&out).contains("does not render"), "{}", text(&out));
    assert!(!site.path("posts/2099-07-03-update.md").exists(), "nothing half-written");
}

#[test]
fn bad_new_settings_point_at_their_line() {
    let site = Site::new("\n[new]\nweek_ends = \"sonday\"\n");
    let out = site.run(&["new"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("`week_ends = \"sonday\"` is not a day of the week"), "{}", text(&out));
}
