//! `newsdesk check`, and what `build` does with broken posts and configs: every problem
//! named with file, line and a `help:`, and nothing written.

mod common;

use common::{LWKD_CONFIG, Site, seed_post, snapshot};

// ---------------------------------------------------------------------------------------
// check on the seed issue

/// Line 48 of the seed issue: the link target starts in column 72.
const SEED_LINE_48: &str =
    "* `cloud.google.com/network-tier` annotation is [available by default](cloud.google.com/network-tier)";

fn seed_site() -> Site {
    let site = Site::new(LWKD_CONFIG);
    site.post("2020-05-10-update.md", &seed_post());
    site
}

#[test]
fn seed_line_48_is_the_schemeless_link() {
    // Guards the positions below against an edit of the committed post.
    let seed = seed_post();
    let line = seed.lines().nth(47).unwrap();
    assert_eq!(line, SEED_LINE_48);
    assert_eq!(line.find("](").unwrap() + 3, 72);
}

#[test]
fn check_warns_about_the_schemeless_link_and_passes() {
    let site = seed_site();
    let run = site.run(&["check"]);
    run.expect_code(0);
    let e = &run.stderr;
    assert!(
        e.contains(
            "posts/2020-05-10-update.md:48:72: warning: link `cloud.google.com/network-tier` looks like a web address but has no scheme"
        ),
        "{e}"
    );
    assert!(e.contains(&format!("48 | {SEED_LINE_48}")), "{e}");
    // The underline sits under the link target: 71 columns in, 29 characters long.
    assert!(e.contains(&format!("   | {}{}\n", " ".repeat(71), "^".repeat(29))), "{e}");
    assert!(e.contains("= help: write `https://cloud.google.com/network-tier`"), "{e}");
    assert!(e.contains("1 warning found"), "{e}");
    assert_eq!(e.matches("warning:").count(), 1, "{e}");
}

#[test]
fn strict_check_fails_on_warnings() {
    let site = seed_site();
    let run = site.run(&["check", "--strict"]);
    run.expect_code(1);
    assert!(run.stderr.contains("posts/2020-05-10-update.md:48:72: warning:"), "{}", run.stderr);
}

#[test]
fn check_as_json() {
    let site = seed_site();
    let run = site.run(&["check", "--format", "json"]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["warnings"], 1);
    let diags = report["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 1);
    let d = &diags[0];
    assert_eq!(d["file"], "posts/2020-05-10-update.md");
    assert_eq!(d["line"], 48);
    assert_eq!(d["column"], 72);
    assert_eq!(d["severity"], "warning");
    assert_eq!(d["code"], "schemeless-link");
    assert!(d["message"].as_str().unwrap().contains("`cloud.google.com/network-tier`"), "{d}");
    assert!(d["help"].as_str().unwrap().contains("https://cloud.google.com/network-tier"), "{d}");

    let run = site.run(&["check", "--format", "json", "--strict"]);
    run.expect_code(1);
    assert_eq!(run.json()["ok"], false);
}

#[test]
fn check_warns_about_future_posts_unless_asked_to_publish_them() {
    let site = seed_site();
    site.post("2999-01-01-later.md", "---\ntitle: Later\ndate: 2999-01-01 10:00:00 -0000\n---\n\nBody.\n");
    let run = site.run(&["check", "--format", "json"]);
    run.expect_code(0);
    let report = run.json();
    let future: Vec<_> =
        report["diagnostics"].as_array().unwrap().iter().filter(|d| d["code"] == "future-date").collect();
    assert_eq!(future.len(), 1, "{report}");
    assert_eq!(future[0]["file"], "posts/2999-01-01-later.md");
    assert_eq!(future[0]["line"], 3);

    let report = site.run(&["check", "--format", "json", "--future"]).json();
    assert!(!report["diagnostics"].as_array().unwrap().iter().any(|d| d["code"] == "future-date"), "{report}");
}

// ---------------------------------------------------------------------------------------
// Broken posts: reported with file, line and help; nothing written

/// A site with the seed issue, already built once into `_site`.
fn built_site() -> (Site, Vec<(String, Vec<u8>)>) {
    let site = seed_site();
    site.build("_site", &[]);
    let before = snapshot(&site.path("_site"));
    assert_eq!(before.len(), 3);
    (site, before)
}

/// Builds, expecting failure and the previous feeds untouched; returns stderr.
fn failed_build(site: &Site, before: &[(String, Vec<u8>)]) -> String {
    let run = site.run(&["build", "--out", "_site"]);
    run.expect_code(1);
    // Byte-identical, and no temporary file left beside them.
    assert_eq!(snapshot(&site.path("_site")), before, "a refused build changed the output folder");
    assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
    run.stderr
}

#[test]
fn impossible_date_stops_the_build() {
    let (site, before) = built_site();
    site.post(
        "2021-02-28-update.md",
        "---\ntitle: Week Ending February 28, 2021\ndate: 2021-02-30 10:00:00 -0000\n---\n\nBody.\n",
    );
    let e = failed_build(&site, &before);
    assert!(e.contains("posts/2021-02-28-update.md:3:7: error: `2021-02-30` is not a day in the calendar"), "{e}");
    assert!(e.contains("3 | date: 2021-02-30 10:00:00 -0000"), "{e}");
    // Ruby rolls 30 February 2021 over into 2 March.
    assert!(e.contains("= help: Jekyll read this as 2021-03-02 10:00:00 +0000"), "{e}");
}

#[test]
fn invalid_yaml_stops_the_build() {
    let (site, before) = built_site();
    site.post("2021-03-07-update.md", "---\ntitle: Week Ending: March 7, 2021\ndate: 2021-03-09\n---\n\nBody.\n");
    let e = failed_build(&site, &before);
    assert!(e.contains("posts/2021-03-07-update.md:2:"), "{e}");
    assert!(e.contains("error: front matter is not valid YAML"), "{e}");
    assert!(e.contains("= help: a value containing `: ` must be quoted"), "{e}");
}

#[test]
fn missing_front_matter_stops_the_build() {
    let (site, before) = built_site();
    site.post("2021-03-14-update.md", "# Week Ending March 14, 2021\n\nBody.\n");
    let e = failed_build(&site, &before);
    assert!(e.contains("posts/2021-03-14-update.md:1:1: error: this post has no front matter"), "{e}");
    assert!(e.contains("= help: start the file with a `---` line"), "{e}");
}

#[test]
fn one_bad_post_does_not_hide_another() {
    let (site, before) = built_site();
    site.post("2021-02-28-update.md", "---\ntitle: A\ndate: 2021-02-30\n---\n");
    site.post("2021-03-14-update.md", "no front matter\n");
    let e = failed_build(&site, &before);
    assert!(e.contains("posts/2021-02-28-update.md:3:7: error:"), "{e}");
    assert!(e.contains("posts/2021-03-14-update.md:1:1: error:"), "{e}");
    assert_eq!(e.matches("= help:").count(), 2, "{e}");
    assert!(e.contains("2 errors"), "{e}");

    // The same, for scripts.
    let run = site.run(&["build", "--out", "_site", "--format", "json"]);
    run.expect_code(1);
    let report = run.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["written"], serde_json::json!([]));
    let errors: Vec<_> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| (d["file"].as_str().unwrap(), d["line"].as_u64().unwrap(), d["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [("posts/2021-02-28-update.md", 3, "bad-date"), ("posts/2021-03-14-update.md", 1, "no-front-matter")]
    );
    assert_eq!(snapshot(&site.path("_site")), before);

    // `check` reports both too.
    let run = site.run(&["check"]);
    run.expect_code(1);
    assert!(run.stderr.contains("2 errors, 1 warning found"), "{}", run.stderr);
}

#[test]
fn broken_post_into_an_empty_folder_creates_nothing() {
    let site = seed_site();
    site.post("2021-02-28-update.md", "---\ntitle: A\ndate: 2021-02-30\n---\n");
    site.run(&["build", "--out", "_site"]).expect_code(1);
    assert!(!site.path("_site/rss.xml").exists());
    assert!(!site.path("_site").exists() || snapshot(&site.path("_site")).is_empty());
}

// ---------------------------------------------------------------------------------------
// Config errors

#[test]
fn unknown_config_key_suggests_the_known_one() {
    let site = Site::new(&LWKD_CONFIG.replacen("title = ", "tittle = ", 1));
    site.post("2020-05-10-update.md", &seed_post());
    for command in [&["check"][..], &["build", "--out", "_site"][..]] {
        let run = site.run(command);
        run.expect_code(1);
        let e = &run.stderr;
        assert!(e.contains("config.toml:2:1: error: unknown field `tittle`"), "{e}");
        assert!(e.contains("2 | tittle = \"Last Week in Kubernetes Development\""), "{e}");
        assert!(e.contains("= help: did you mean `title`?"), "{e}");
    }
    assert!(!site.path("_site").exists());
}

#[test]
fn relative_base_url_is_an_error() {
    let site = Site::new(&LWKD_CONFIG.replace("\"https://lwkd.info\"", "\"lwkd.info\""));
    site.post("2020-05-10-update.md", &seed_post());
    let run = site.run(&["check", "--format", "json"]);
    run.expect_code(1);
    let report = run.json();
    let d = &report["diagnostics"][0];
    assert_eq!(d["code"], "bad-base-url");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], "config.toml");
    assert_eq!(d["line"], 4);
    assert!(d["message"].as_str().unwrap().contains("`lwkd.info`"), "{d}");
    assert!(d["help"].as_str().unwrap().contains("https://"), "{d}");
    site.run(&["build", "--out", "_site"]).expect_code(1);
    assert!(!site.path("_site").exists());
}

// ---------------------------------------------------------------------------------------
// Secrets and settings in the config

#[test]
fn a_password_in_the_config_is_never_printed() {
    const SECRET: &str = "hunter2-Pa55";
    for lines in [
        format!("[smtp]\nhost = \"smtp.example.org\"\npassword = \"{SECRET}\"\n"),
        format!("[smtp]\npassword = {SECRET}\n"),
        format!("[email]\nfrom = \"a@example.org\"\napi_key = \"{SECRET}\"\n"),
        format!("[smtp]\npassword_env = \"{SECRET} \"\n"),
    ] {
        let site = Site::new(&format!("{LWKD_CONFIG}{lines}"));
        site.post("2020-05-10-update.md", &seed_post());
        for args in [
            &["check"][..],
            &["check", "--format", "json"],
            &["build", "--format", "json"],
            &["preview", "--format", "json"],
            &["send", "--format", "json"],
            &["subscribers", "list", "--format", "json"],
            &["build"],
            &["send", "--subscribers"],
        ] {
            let run = site.run(args);
            run.expect_code(1);
            let all = format!("{}{}", run.stdout, run.stderr);
            assert!(!all.contains(SECRET), "{args:?} printed the secret:\n{all}");
            assert!(all.contains("config.toml"), "{args:?}: {all}");
            if lines.contains("password = ") {
                assert!(all.contains("password_env") && all.contains("password_file"), "{args:?}: {all}");
            }
        }
    }
}

#[test]
fn check_refuses_smtp_and_subscriber_settings_that_send_would_refuse() {
    for (lines, key, message) in [
        ("[smtp]\nsecurity = \"ssl\"\n", "security", "unknown SMTP security `ssl`"),
        (
            "[smtp]\nhost = \"smtp.example.org\"\nsecurity = \"none\"\n",
            "security",
            "would send the message and password unencrypted",
        ),
        ("[smtp]\nport = \"587\"\n", "port", "`port` must be a whole number between 1 and 65535"),
        (
            "[subscribers]\nunsubscribe_url = \"https://lwkd.example.org/unsubscribe\"\n",
            "unsubscribe_url",
            "has no `{token}`",
        ),
    ] {
        let text = format!("{LWKD_CONFIG}{lines}");
        let line = text.lines().position(|l| l.starts_with(key)).unwrap() + 1;
        let site = Site::new(&text);
        site.post("2020-05-10-update.md", &seed_post());
        let run = site.run(&["check"]);
        run.expect_code(1);
        assert!(run.stderr.contains(&format!("config.toml:{line}:")), "{lines}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{lines}: {}", run.stderr);
        assert!(run.stderr.contains("= help:"), "{lines}: {}", run.stderr);
        let report = site.run(&["check", "--format", "json"]).json();
        assert_eq!(report["diagnostics"][0]["line"], line, "{report}");
    }
}

#[test]
fn check_validates_the_email_section_even_without_posts() {
    let site = Site::new(&format!("{LWKD_CONFIG}[email]\nfrom = \"not an address\"\ntransport = \"pigeon\"\n"));
    let run = site.run(&["check"]);
    run.expect_code(1);
    assert!(run.stderr.contains("is not a mail address"), "{}", run.stderr);
    assert!(run.stderr.contains("unknown transport `pigeon`"), "{}", run.stderr);
}

#[test]
fn build_says_which_future_posts_it_left_out() {
    let site = seed_site();
    site.post("2999-01-01-later.md", "---\ntitle: Later\ndate: 2999-01-01 10:00:00 -0000\n---\n\nBody.\n");
    site.post("2998-06-01-soon.md", "---\ntitle: Soon\ndate: 2998-06-01 10:00:00 -0000\n---\n\nBody.\n");
    let run = site.run(&["build", "--out", "_site"]);
    run.expect_code(0);
    let e = &run.stderr;
    assert!(
        e.contains("posts/2999-01-01-later.md:3:1: warning: this post is dated 2999-01-01 10:00 +0000 (in the future)"),
        "{e}"
    );
    assert!(e.contains("posts/2998-06-01-soon.md:3:1: warning: this post is dated 2998-06-01"), "{e}");
    assert!(e.contains("left out 2 posts dated in the future (listed above); `--future` includes them"), "{e}");
    assert!(e.contains("wrote _site/rss.xml (1 items)"), "{e}");

    let report = site.run(&["build", "--out", "_site", "--format", "json"]).json();
    assert_eq!(
        report["future"],
        serde_json::json!(["posts/2998-06-01-soon.md", "posts/2999-01-01-later.md"]),
        "{report}"
    );
    assert_eq!(report["items"], 1);

    let run = site.run(&["build", "--out", "_site", "--future"]);
    run.expect_code(0);
    assert!(!run.stderr.contains("dated in the future"), "{}", run.stderr);
    assert!(run.stderr.contains("(3 items)"), "{}", run.stderr);
}

#[test]
fn build_leaves_out_future_posts_without_losing_published_ones() {
    // More future posts than the feed holds: the feed still has `limit` published posts.
    let site = Site::new(&LWKD_CONFIG.replace("[feeds]\n", "[feeds]\nlimit = 2\n"));
    for day in 1..=3 {
        site.post(
            &format!("2020-01-0{day}-past.md"),
            &format!("---\ntitle: Past {day}\ndate: 2020-01-0{day}\n---\n\nBody.\n"),
        );
    }
    for n in 0..70 {
        let year = 2900 + n;
        site.post(&format!("{year}-01-01-f{n}.md"), &format!("---\ntitle: F{n}\ndate: {year}-01-01\n---\n\nB.\n"));
    }
    let run = site.run(&["build", "--out", "_site", "--format", "json"]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["items"], 2);
    assert_eq!(report["future"].as_array().unwrap().len(), 70);
    let feed = site.feed("_site/rss.xml");
    let titles: Vec<&str> = feed.entries.iter().map(|e| common::text(&e.title)).collect();
    assert_eq!(titles, ["Past 3", "Past 2"]);
}

#[test]
fn check_with_posts_names_the_folder_it_checked() {
    let site = Site::new(LWKD_CONFIG);
    site.write(
        "elsewhere/2020-05-10-update.md",
        &seed_post().replace("(cloud.google.com/network-tier)", "(https://cloud.google.com/network-tier)"),
    );
    let run = site.run(&["--posts", "elsewhere", "check"]);
    run.expect_code(0);
    assert!(run.stderr.contains("checked elsewhere: no errors"), "{}", run.stderr);
    let run = site.run(&["check"]);
    run.expect_code(0);
    assert!(run.stderr.contains("checked posts: no errors"), "{}", run.stderr);
}

#[test]
fn check_reads_the_dkim_key_as_preview_and_send_would() {
    let mail = "[email]\nfrom = \"LWKD <lwkd@example.org>\"\n[email.dkim]\ndomain = \"example.org\"\nselector = \"s1\"\nkey_file = \"missing.pem\"\n";
    let site = Site::new(&format!("{LWKD_CONFIG}{mail}"));
    site.post("2020-05-10-update.md", &seed_post());
    let run = site.run(&["check"]);
    run.expect_code(1);
    assert!(run.stderr.contains("missing.pem"), "{}", run.stderr);
    assert!(run.stderr.contains("= help: point `[email.dkim] key_file`"), "{}", run.stderr);
}

#[test]
fn a_duplicate_slug_names_both_posts_with_their_lines() {
    let site = seed_site();
    site.post("2020-05-17-update.md", "---\ntitle: Week Ending May 17, 2020\nslug: same-week\n---\nBody.\n");
    site.post("2020-05-24-update.md", "---\ntitle: Week Ending May 24, 2020\nslug: same-week\n---\nBody.\n");
    let run = site.run(&["check"]);
    run.expect_code(1);
    let e = &run.stderr;
    // The seed post has no `slug:`: only the two that write one collide.
    assert!(e.contains("posts/2020-05-24-update.md:3:7: error: slug `same-week` is also used by"), "{e}");
    assert!(e.contains("3 | slug: same-week\n  |       ^^^^^^^^^\n"), "{e}");
    assert!(e.contains("note: the slug is first used here\n --> posts/2020-05-17-update.md:3:7\n"), "{e}");
    assert_eq!(e.matches("error: slug").count(), 1, "{e}");
    // JSON keeps its keys: the other post is named in the message.
    let run = site.run(&["check", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let d = &json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "duplicate" && d["message"].as_str().unwrap().starts_with("slug"))
        .unwrap();
    assert_eq!((&d["file"], &d["line"], &d["column"]), (&"posts/2020-05-24-update.md".into(), &3.into(), &7.into()));
    assert!(d["message"].as_str().unwrap().contains("2020-05-17-update.md"), "{d}");
    assert!(d.get("also").is_none(), "{d}");
}

#[test]
fn an_email_setting_is_pointed_at_however_the_key_is_spelled() {
    let bad = "\"LWKD lwkd at example\"";
    for (config, written) in [
        (format!("email = {{ from = {bad}, to = \"list@example.org\" }}\n{LWKD_CONFIG}"), "email = {"),
        (format!("email.from = {bad}\n{LWKD_CONFIG}"), "email.from"),
        (format!("{LWKD_CONFIG}[email]\n\"from\" = {bad}\n"), "\"from\""),
    ] {
        let site = Site::new(&config);
        let run = site.run(&["check"]);
        run.expect_code(1);
        let text = std::fs::read_to_string(site.path("config.toml")).unwrap();
        let line = text.lines().position(|l| l.starts_with(written)).unwrap();
        let column = text.lines().nth(line).unwrap().find(bad).unwrap() + 1;
        let at = format!("config.toml:{}:{column}: error: `from = {bad}` is not a mail address", line + 1);
        assert!(run.stderr.contains(&at), "{config}\nwanted {at}:\n{}", run.stderr);
    }
}
