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
fn without_a_date_new_starts_the_next_issue_to_go_out() {
    let site = Site::new("");
    let new_at = |now: &str| -> String {
        let out = site.run_env(&["new", "--format", "json"], &[("NEWSDESK_NOW", now)]);
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        format!("{} {}", v["week_ending"].as_str().unwrap(), v["publish"].as_str().unwrap())
    };
    // Tuesday 2026-12-01: the week that ended on Sunday the 29th goes out on Thursday.
    assert_eq!(new_at("2026-12-01T10:00:00+00:00"), "2026-11-29 2026-12-03T22:00:00+00:00");
    // Its post exists now: the next one is the week after.
    assert_eq!(new_at("2026-12-01T10:00:00+00:00"), "2026-12-06 2026-12-10T22:00:00+00:00");
    // A week whose issue should have gone out already is not started late: on Saturday
    // 2026-12-19 (no post for the week of the 13th, due on the 17th) the next is the 20th's.
    assert_eq!(new_at("2026-12-19T10:00:00+00:00"), "2026-12-20 2026-12-24T22:00:00+00:00");
    // On the Thursday itself, before 22:00, that day's issue is still the next one.
    assert_eq!(new_at("2027-01-07T21:59:00+00:00"), "2027-01-03 2027-01-07T22:00:00+00:00");
    // An unusable NEWSDESK_NOW is refused, not ignored.
    let out = site.run_env(&["new"], &[("NEWSDESK_NOW", "next thursday")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("NEWSDESK_NOW=`next thursday` is not an RFC 3339 time"), "{}", text(&out));
}

#[test]
fn a_date_out_of_range_is_an_error_not_a_panic() {
    let site = Site::new("");
    for date in ["+262142-12-31", "0001-01-01"] {
        let out = site.run(&["new", "--date", date]);
        assert_eq!(out.status.code(), Some(1), "{date}: {}", text(&out));
        assert!(text(&out).contains("is outside the years 1000 to 9999"), "{date}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{}", text(&out));
    }
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
    // At its line in the config (the bundled config, then the appended section).
    let config = std::fs::read_to_string(site.path("config.toml")).unwrap();
    let line = config.lines().position(|l| l.starts_with("week_ends")).unwrap() + 1;
    assert!(text(&out).contains(&format!("config.toml:{line}:")), "line {line}: {}", text(&out));
}

/// Runs newsdesk on a terminal (a pty from `script(1)`), answering `answer`; `None`
/// where `script` is not installed.
fn on_a_terminal(site: &Site, args: &str, answer: &str) -> Option<(bool, String)> {
    use std::io::Write;
    if !std::path::Path::new("/usr/bin/script").exists() {
        eprintln!("note: no script(1): the terminal question is not tested here");
        return None;
    }
    let command = format!("{} -c {} {args}", env!("CARGO_BIN_EXE_newsdesk"), site.path("config.toml").display());
    let mut child = std::process::Command::new("/usr/bin/script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(site.path(""))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(answer.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    ))
}

#[test]
fn a_future_post_is_used_after_a_yes_on_a_terminal_and_refused_without_one() {
    let site = Site::new("\n[email]\nfrom = \"LWKD <lwkd@example.org>\"\nto = \"list@example.org\"\n");
    assert!(site.run(&["new", "--date", "2099-06-17"]).status.success());
    let Some((ok, shown)) = on_a_terminal(&site, "preview --post 2099-06-21-update", "y\n") else { return };
    assert!(ok, "{shown}");
    assert!(shown.contains("\"Week Ending June 21, 2099\" is dated 2099-06-25 22:00 +0000,"), "{shown}");
    assert!(shown.contains("Use it anyway? [y/N]"), "{shown}");
    assert!(site.path("_preview/message.eml").exists());
    let (ok, shown) = on_a_terminal(&site, "preview --post 2099-06-21-update", "n\n").unwrap();
    assert!(!ok, "{shown}");
    assert!(shown.contains("pass `--future`"), "{shown}");
    // Without a terminal nobody is asked: the error says what to pass.
    let out = site.run(&["preview", "--post", "2099-06-21-update"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out).contains("Use it anyway?"), "{}", text(&out));
    assert!(text(&out).contains("pass `--future`"), "{}", text(&out));
}
