//! The digest as mail: `newsdesk preview` on the bundled issues, its `message.eml` read
//! back with an independent parser (mail-parser), plus the editor-facing behaviour of
//! `preview` (report, warnings, template errors, never connecting).

mod support;

use mail_parser::{MessageParser, MimeHeaders};
use std::net::TcpListener;
use support::{Site, mail_config, smtp::SmtpServer, text};

fn preview(site: &Site) -> Vec<u8> {
    let out = site.run(&["preview"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::read(site.path("_preview/message.eml")).unwrap()
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn headers_are_all_there_and_right() {
    let site = Site::new(&mail_config(closed_port()));
    let eml = preview(&site);
    let msg = MessageParser::default().parse(&eml).expect("message.eml parses");

    assert_eq!(msg.subject(), Some("LWKD: Week Ending May 10, 2020"));
    let from = msg.from().unwrap().first().unwrap();
    assert_eq!((from.name(), from.address()), (Some("LWKD"), Some("lwkd@example.org")));
    assert_eq!(msg.to().unwrap().first().unwrap().address(), Some("kubernetes-dev@example.org"));
    assert_eq!(msg.reply_to().unwrap().first().unwrap().address(), Some("lwkd@example.org"));
    // SOURCE_DATE_EPOCH fixes the Date: 2020-05-12T20:00:00Z.
    assert_eq!(msg.date().unwrap().to_timestamp(), 1_589_313_600);

    let id = msg.message_id().unwrap().to_string();
    assert!(id.starts_with("2020-05-10-update.") && id.ends_with("@example.org"), "{id}");
    assert_eq!(msg.header_raw("List-Id").unwrap().trim(), "LWKD <lwkd.example.org>");
    assert_eq!(msg.header_raw("List-Archive").unwrap().trim(), "<https://lwkd.info/2020/20200512>");
    let unsubscribe: String =
        msg.header_raw("List-Unsubscribe").unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(unsubscribe, "<mailto:lwkd+unsubscribe@example.org>, <https://lwkd.example.org/unsubscribe>");
    assert_eq!(msg.header_raw("List-Unsubscribe-Post").unwrap().trim(), "List-Unsubscribe=One-Click");
    assert_eq!(msg.header_raw("MIME-Version").unwrap().trim(), "1.0");

    // The Message-ID is derived from the issue: the same on every render.
    std::fs::remove_dir_all(site.path("_preview")).unwrap();
    let again = preview(&site);
    let msg2 = MessageParser::default().parse(&again).unwrap();
    assert_eq!(msg2.message_id().unwrap(), id);
    assert_eq!(again, eml, "two renders of the same issue at the same time are the same bytes");
}

#[test]
fn two_parts_text_first_utf8_short_lines() {
    let site = Site::new(&mail_config(closed_port()));
    let eml = preview(&site);
    let msg = MessageParser::default().parse(&eml).unwrap();

    let root = msg.content_type().unwrap();
    assert_eq!((root.ctype(), root.subtype()), ("multipart", Some("alternative")));
    let children = msg.root_part().sub_parts().unwrap();
    assert_eq!(children.len(), 2);
    let kinds: Vec<(String, String, String)> = children
        .iter()
        .map(|&i| {
            let ct = msg.part(i).unwrap().content_type().unwrap();
            (
                ct.ctype().to_string(),
                ct.subtype().unwrap_or("").to_string(),
                ct.attribute("charset").unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("text".to_string(), "plain".to_string(), "utf-8".to_string()),
            ("text".to_string(), "html".to_string(), "utf-8".to_string())
        ]
    );
    for &i in children {
        let cte = msg.part(i).unwrap().content_transfer_encoding().unwrap().to_ascii_lowercase();
        assert!(cte == "quoted-printable" || cte == "base64" || cte == "7bit", "{cte}");
    }
    // RFC 5322: no line over 998 octets; lettre's encoders keep them under 78.
    for (n, line) in eml.split(|&b| b == b'\n').enumerate() {
        assert!(line.len() <= 78, "line {} is {} octets", n + 1, line.len());
        assert!(line.is_ascii(), "line {} is not 7-bit", n + 1);
    }
    // Every line ends in CRLF.
    assert_eq!(eml.windows(2).filter(|w| w == b"\r\n").count(), eml.iter().filter(|&&b| b == b'\n').count());

    // The decoded parts are what preview wrote beside the message.
    let text = msg.body_text(0).unwrap();
    let html = msg.body_html(0).unwrap();
    assert_eq!(text.replace("\r\n", "\n"), std::fs::read_to_string(site.path("_preview/message.txt")).unwrap());
    assert_eq!(html.replace("\r\n", "\n"), std::fs::read_to_string(site.path("_preview/message.html")).unwrap());
}

#[test]
fn html_part_is_inlined_absolute_and_has_preheader_and_footer() {
    let site = Site::new(&mail_config(closed_port()));
    let eml = preview(&site);
    let msg = MessageParser::default().parse(&eml).unwrap();
    let html = msg.body_html(0).unwrap().to_string();

    // CSS inlined; one <style> block remains, holding only the media query.
    assert_eq!(html.matches("<style").count(), 1, "one <style> block");
    let style = &html[html.find("<style").unwrap()..html.find("</style>").unwrap()];
    assert!(style.contains("@media"), "{style}");
    assert!(!style.contains(".content h2 {"), "plain rules must be inlined, not kept: {style}");
    assert!(html.contains(r#"<h2 id="developer-news" style=""#), "headings carry inline styles");

    // Every link and image is absolute.
    let mut links = 0;
    for attr in [" href=\"", " src=\""] {
        for (i, _) in html.match_indices(attr) {
            let value = &html[i + attr.len()..];
            let value = &value[..value.find('"').unwrap()];
            links += 1;
            assert!(
                value.starts_with("https://") || value.starts_with("http://") || value.starts_with("mailto:"),
                "relative link {value:?}"
            );
        }
    }
    assert!(links > 30, "the issue has more than 30 links, found {links}");

    // Hidden preheader with the summary, before the content.
    let pre = html.find("display:none").expect("hidden preheader");
    assert!(
        html[pre..pre + 400].contains("The Amsterdam Contributor Summit has been cancelled"),
        "{}",
        &html[pre..pre + 400]
    );
    assert!(pre < html.find("<h1").unwrap());

    // Footer: web version, feed and unsubscribe.
    let footer = &html[html.rfind("View this issue on the web").expect("web version link") - 200..];
    assert!(footer.contains(r#"href="https://lwkd.info/2020/20200512""#), "{footer}");
    assert!(footer.contains(r#"href="https://lwkd.info/feed.xml""#), "{footer}");
    assert!(footer.contains(r#"href="https://lwkd.example.org/unsubscribe""#), "{footer}");
    assert!(footer.contains(r#"href="mailto:lwkd+unsubscribe@example.org""#), "{footer}");
}

#[test]
fn text_part_is_wrapped_with_numbered_link_references() {
    let site = Site::new(&mail_config(closed_port()));
    let eml = preview(&site);
    let msg = MessageParser::default().parse(&eml).unwrap();
    let text = msg.body_text(0).unwrap().replace("\r\n", "\n");

    assert!(text.contains("Developer News\n==============\n"), "h2 underlined");
    assert!(text.contains("#87746: Support compiling Kubelet w/o docker/docker [7]\n-------"), "h3 underlined");
    assert!(text.contains("\n* Fix chronic Azure disk attach issue [20]\n"), "list items kept");
    assert!(!text.contains("<a ") && !text.contains("href"), "no HTML in the text part");

    let (body, refs) = text.split_once("\nLinks:\n").expect("a link list under the text");
    for line in body.lines() {
        // Only a URL too long for a line may exceed 72 columns, and it is never broken.
        assert!(line.chars().count() <= 72 || !line.trim().contains(' '), "long line: {line:?}");
    }
    let refs: Vec<&str> = refs.lines().take_while(|l| l.starts_with('[')).collect();
    assert_eq!(refs.len(), 27);
    for (i, r) in refs.iter().enumerate() {
        let (num, url) = r.split_once(' ').unwrap();
        assert_eq!(num, format!("[{}]", i + 1));
        assert!(url.starts_with("https://"), "{url}");
        assert!(body.contains(&format!(" [{}]", i + 1)), "[{}] is cited in the text", i + 1);
    }
    assert!(!body.contains(&format!("[{}]", refs.len() + 1)), "no reference without an entry");
    assert_eq!(
        refs[0],
        "[1] https://groups.google.com/forum/?utm_medium=email&utm_source=footer#!topic/kubernetes-dev/jnPv42i2ACw"
    );

    // The footer tells how to unsubscribe, as the HTML does.
    assert!(text.contains("\n-- \n"), "signature separator");
    assert!(text.contains("Unsubscribe: https://lwkd.example.org/unsubscribe\n"), "{text}");
    assert!(text.contains("Feed:        https://lwkd.info/feed.xml\n"), "{text}");
}

#[test]
fn without_an_https_unsubscribe_url_there_is_no_one_click_header() {
    let config = mail_config(closed_port()).replace("unsubscribe_url = \"https://lwkd.example.org/unsubscribe\"\n", "");
    let site = Site::new(&config);
    let eml = preview(&site);
    let msg = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(msg.header_raw("List-Unsubscribe").unwrap().trim(), "<mailto:lwkd+unsubscribe@example.org>");
    assert!(msg.header_raw("List-Unsubscribe-Post").is_none());
    let text = msg.body_text(0).unwrap();
    assert!(text.contains("To unsubscribe, send an empty message to lwkd+unsubscribe@example.org."), "{text}");
}

#[test]
fn preview_reports_the_message_and_writes_the_feeds() {
    let site = Site::new(&mail_config(closed_port()));
    let out = site.run(&["preview", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &v["message"];
    assert_eq!(m["subject"], "LWKD: Week Ending May 10, 2020");
    assert_eq!(m["from"], "LWKD <lwkd@example.org>");
    assert_eq!(m["to"], "kubernetes-dev@example.org");
    let eml = std::fs::read(site.path("_preview/message.eml")).unwrap();
    assert_eq!(m["sizes"]["message"], eml.len());
    assert_eq!(m["sizes"]["html"], std::fs::metadata(site.path("_preview/message.html")).unwrap().len());
    assert_eq!(m["links"], 33);
    let id = MessageParser::default().parse(&eml).unwrap().message_id().unwrap().to_string();
    assert_eq!(m["message_id"], format!("<{id}>"));
    let written: Vec<&str> = v["written"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    for f in ["message.eml", "message.html", "message.txt", "rss.xml", "feed.xml", "feed.json"] {
        assert!(written.iter().any(|w| w.ends_with(f)), "{f} in {written:?}");
    }
    // The feeds are the ones `build` writes.
    let built = site.run(&["build", "--out", "_site"]);
    assert!(built.status.success(), "{}", text(&built));
    for f in ["rss.xml", "feed.xml", "feed.json"] {
        assert_eq!(
            std::fs::read(site.path(&format!("_preview/{f}"))).unwrap(),
            std::fs::read(site.path(&format!("_site/{f}"))).unwrap(),
            "{f}"
        );
    }
    // The known schemeless link in the issue is reported as a warning.
    assert!(v["diagnostics"].as_array().unwrap().iter().any(|d| d["code"] == "schemeless-link"));

    // Human output names the essentials.
    let out = site.run(&["preview", "--post", "2020-05-03-update"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("Subject:    LWKD: Week Ending May 3, 2020"), "{shown}");
    assert!(shown.contains("Message-ID: <2020-05-03-update."), "{shown}");
    assert!(shown.contains("_preview/message.eml"), "{shown}");
}

#[test]
fn preview_never_connects() {
    // A listening server: it must see no connection at all.
    let server = SmtpServer::start();
    let site = Site::new(&mail_config(server.port()));
    let out = site.run_env(&["preview"], &[("NEWSDESK_SMTP_PASSWORD", "x")]);
    assert!(out.status.success(), "{}", text(&out));
    // `send --dry-run` is preview under another name.
    let out = site.run(&["send", "--dry-run", "--out", "dry"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(site.path("dry/message.eml").exists());
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(server.connections(), 0);

    // A closed port and an address nothing answers on: preview does not care.
    for smtp in [
        format!("host = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"", closed_port()),
        "host = \"127.0.0.2\"\nport = 1\nsecurity = \"none\"".to_string(),
        "host = \"smtp.invalid\"\nport = 587\nsecurity = \"starttls\"\nusername = \"lwkd\"\npassword_env = \"UNSET_VAR\"".to_string(),
    ] {
        let config = mail_config(1).replace("host = \"127.0.0.1\"\nport = 1\nsecurity = \"none\"", &smtp);
        let site = Site::new(&config);
        let out = site.run(&["preview"]);
        assert!(out.status.success(), "{smtp}: {}", text(&out));
        assert!(site.path("_preview/message.eml").exists());
    }
}

#[test]
fn a_template_error_names_the_file_and_line() {
    let site = Site::new(&mail_config(closed_port()));
    let path = site.path("email-templates/digest.html");
    let html = std::fs::read_to_string(&path).unwrap();
    let broken = html.replacen("{{ post.title }}</h1>", "{{ post.title | nosuchfilter }}</h1>", 1);
    std::fs::write(&path, &broken).unwrap();
    let line = broken.lines().position(|l| l.contains("nosuchfilter")).unwrap() + 1;

    let out = site.run(&["preview"]);
    let shown = text(&out);
    assert!(!out.status.success());
    assert!(
        shown.contains(&format!("email-templates/digest.html:{line}: error: in template `digest.html`")),
        "{shown}"
    );
    assert!(shown.contains("nosuchfilter"), "{shown}");
    assert!(!site.path("_preview/message.eml").exists(), "nothing is written on errors");

    // `check` reports it too.
    let out = site.run(&["check"]);
    assert!(!out.status.success());
    assert!(text(&out).contains(&format!("digest.html:{line}")), "{}", text(&out));
}

#[test]
fn mail_warnings_in_preview_and_check() {
    let site = Site::new(&mail_config(closed_port()));
    // A subject over 150 characters, a relative link in the template, a huge issue.
    std::fs::write(site.path("email-templates/subject.txt"), format!("{{{{ post.title }}}} {}\n", "x".repeat(150)))
        .unwrap();
    let html = std::fs::read_to_string(site.path("email-templates/digest.html")).unwrap();
    std::fs::write(
        site.path("email-templates/digest.html"),
        html.replacen("<h1>", "<p><a href=\"/archive\">Archive</a></p>\n<h1>", 1),
    )
    .unwrap();
    let newest = site.path("posts/2020-05-10-update.md");
    let mut post = std::fs::read_to_string(&newest).unwrap();
    for i in 0..900 {
        post.push_str(&format!("\n* filler item {i} with a [link](https://example.org/{i}) to pad the issue out\n"));
    }
    std::fs::write(&newest, post).unwrap();

    for cmd in [&["preview"][..], &["check"][..]] {
        let out = site.run(cmd);
        let shown = text(&out);
        assert!(shown.contains("warning: the subject is 175 characters long"), "{cmd:?}: {shown}");
        assert!(shown.contains("warning: the link `/archive` in the digest is not absolute"), "{cmd:?}: {shown}");
        assert!(shown.contains("email-templates/digest.html:"), "{cmd:?}: points at the template: {shown}");
        assert!(shown.contains("warning: the HTML part is") && shown.contains("Gmail clips"), "{cmd:?}: {shown}");
    }
    let out = site.run(&["check", "--strict"]);
    assert!(!out.status.success(), "warnings fail --strict");

    // An empty subject is a warning too.
    std::fs::write(site.path("email-templates/subject.txt"), "{# nothing #}\n").unwrap();
    let out = site.run(&["preview"]);
    assert!(text(&out).contains("warning: the digest's subject is empty"), "{}", text(&out));
}

#[test]
fn bad_email_config_points_at_the_line() {
    let config =
        mail_config(closed_port()).replace("from = \"LWKD <lwkd@example.org>\"", "from = \"LWKD lwkd at example\"");
    let site = Site::new(&config);
    let out = site.run(&["preview"]);
    let shown = text(&out);
    assert!(!out.status.success());
    let line = std::fs::read_to_string(site.path("config.toml"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("from ="))
        .unwrap()
        + 1;
    assert!(
        shown
            .contains(&format!("config.toml:{line}:8: error: `from = \"LWKD lwkd at example\"` is not a mail address")),
        "{shown}"
    );

    let site = Site::new("");
    let out = site.run(&["preview"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("the config has no `[email]` section"), "{}", text(&out));

    let site = Site::new(&mail_config(closed_port()));
    let out = site.run(&["preview", "--post", "2020-05-10-updat"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no post has the slug or file name `2020-05-10-updat`"), "{}", text(&out));
    assert!(text(&out).contains("did you mean `2020-05-10-update`?"), "{}", text(&out));
}

#[test]
fn templates_are_editable_and_see_the_whole_context() {
    let site = Site::new(&mail_config(closed_port()));
    std::fs::write(site.path("email-templates/subject.txt"), "[{{ site.title }}] {{ post.title | upper }}\n").unwrap();
    std::fs::write(
        site.path("email-templates/digest.txt"),
        "{{ post.slug }} {{ post.date | date(\"%Y-%m-%d\") }} {{ toc | length }} sections\n{% for t in toc %}{{ t.text }} <{{ t.url }}>\n{% endfor %}{{ list.id }} {{ sender.email }} {{ post.summary }}\n",
    )
    .unwrap();
    let out = site.run(&["preview"]);
    assert!(out.status.success(), "{}", text(&out));
    let txt = std::fs::read_to_string(site.path("_preview/message.txt")).unwrap();
    assert!(
        txt.starts_with(
            "2020-05-10-update 2020-05-12 8 sections\nDeveloper News <https://lwkd.info/2020/20200512#developer-news>\n"
        ),
        "{txt}"
    );
    assert!(
        txt.contains("LWKD <lwkd.example.org> lwkd@example.org The Amsterdam Contributor Summit has been cancelled"),
        "{txt}"
    );
    let eml = std::fs::read(site.path("_preview/message.eml")).unwrap();
    let msg = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(msg.subject(), Some("[Last Week in Kubernetes Development] WEEK ENDING MAY 10, 2020"));
}

#[test]
fn open_starts_the_desktop_browser_when_there_is_one() {
    let site = Site::new(&mail_config(closed_port()));
    // No desktop: a note, and the preview is still written.
    let out = site.run(&["preview", "--open"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("note: cannot open a browser (no desktop session"), "{}", text(&out));

    // A desktop whose xdg-open records what it was asked to open.
    let bin = site.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let opener = bin.join("xdg-open");
    std::fs::write(&opener, format!("#!/bin/sh\necho \"$1\" > '{}'\n", site.path("opened").display())).unwrap();
    let mut perms = std::fs::metadata(&opener).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&opener, perms).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = site.run_env(&["preview", "--open"], &[("DISPLAY", ":99"), ("PATH", &path)]);
    assert!(out.status.success(), "{}", text(&out));
    let opened = (0..100)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::read_to_string(site.path("opened")).ok().filter(|s| !s.is_empty())
        })
        .expect("xdg-open was started");
    assert_eq!(opened.trim(), site.path("_preview/message.html").display().to_string());
}

#[test]
fn temporary_files_a_killed_build_or_preview_left_are_removed_by_the_next_run() {
    let site = Site::new(&mail_config(closed_port()));
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for (dir, command) in [("_site", &["build"][..]), ("_preview", &["preview"][..])] {
        std::fs::create_dir_all(site.path(dir)).unwrap();
        // What a killed run leaves: our exact naming, last written long ago.
        for name in [".newsdesk-Kil1ed.tmp", ".newsdesk-000000.tmp"] {
            let f = std::fs::File::create(site.path(&format!("{dir}/{name}"))).unwrap();
            f.set_len(1 << 20).unwrap();
            f.set_modified(an_hour_ago).unwrap();
        }
        // Not ours, or not ours to judge: left alone.
        for name in ["notes.tmp", ".newsdesk-Kil1ed.tmp.bak", ".newsdesk-toolong1.tmp", "newsdesk-Kil1ed.tmp"] {
            let f = std::fs::File::create(site.path(&format!("{dir}/{name}"))).unwrap();
            f.set_modified(an_hour_ago).unwrap();
        }
        let out = site.run(command);
        assert!(out.status.success(), "{}", text(&out));
        let mut left: Vec<String> = std::fs::read_dir(site.path(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("tmp"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".newsdesk-Kil1ed.tmp.bak", ".newsdesk-toolong1.tmp", "newsdesk-Kil1ed.tmp", "notes.tmp"],
            "{dir}"
        );
    }
}

#[test]
fn post_takes_a_slug_a_file_name_a_path_or_the_file_stem() {
    let site = Site::new(&mail_config(closed_port()));
    std::fs::write(
        site.path("posts/2020-04-01-special.md"),
        "---\ntitle: A Special Issue\ndate: 2020-04-01 10:00:00 -0000\nslug: special-issue\n---\n\nBody.\n",
    )
    .unwrap();
    let absolute = site.path("posts/2020-05-03-update.md").display().to_string();
    for (arg, slug) in [
        ("2020-05-03-update", "2020-05-03-update"),
        ("2020-05-03-update.md", "2020-05-03-update"),
        ("posts/2020-05-03-update.md", "2020-05-03-update"),
        (absolute.as_str(), "2020-05-03-update"),
        ("special-issue", "special-issue"),
        ("2020-04-01-special", "special-issue"),
        ("2020-04-01-special.md", "special-issue"),
        ("./posts/2020-04-01-special.md", "special-issue"),
    ] {
        let out = site.run(&["preview", "--post", arg, "--format", "json"]);
        assert!(out.status.success(), "{arg}: {}", text(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["message"]["issue"]["slug"], slug, "{arg}");
    }
    let out = site.run(&["preview", "--post", "2020-05-04-update.md"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no post has the slug or file name `2020-05-04-update.md`"), "{}", text(&out));
    assert!(text(&out).contains("did you mean `2020-05-03-update`?"), "{}", text(&out));
}

#[test]
fn a_future_post_or_a_draft_is_sent_or_previewed_only_when_asked_for() {
    let site = Site::new(&mail_config(closed_port()));
    std::fs::write(
        site.path("posts/2999-01-01-later.md"),
        "---\ntitle: Later\ndate: 2999-01-01 10:00:00 -0000\n---\n\nBody.\n",
    )
    .unwrap();
    std::fs::write(
        site.path("posts/2020-05-11-draft.md"),
        "---\ntitle: Draft\ndate: 2020-05-11 10:00:00 -0000\npublished: false\n---\n\nBody.\n",
    )
    .unwrap();
    for command in [&["preview"][..], &["send", "--to", "me@example.org"], &["send", "--dry-run"]] {
        let mut args = command.to_vec();
        args.extend(["--post", "2999-01-01-later"]);
        let out = site.run(&args);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {shown}");
        assert!(
            shown.contains(
                "posts/2999-01-01-later.md:3:1: error: this post is dated 2999-01-01 10:00 +0000, in the future"
            ),
            "{args:?}: {shown}"
        );
        assert!(shown.contains("it goes out on 2999-01-01 10:00 +0000"), "{shown}");
        assert!(shown.contains("pass `--future`"), "{shown}");

        let mut args = command.to_vec();
        args.extend(["--post", "2020-05-11-draft"]);
        let out = site.run(&args);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {shown}");
        assert!(
            shown.contains("posts/2020-05-11-draft.md: error: this post is a draft (`published: false`)"),
            "{shown}"
        );
        assert!(shown.contains("pass `--drafts`"), "{shown}");
    }
    let out = site.run(&["preview", "--post", "2999-01-01-later", "--future"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Subject:    LWKD: Later"), "{}", text(&out));
    let out = site.run(&["preview", "--post", "2020-05-11-draft", "--drafts"]);
    assert!(out.status.success(), "{}", text(&out));
    // Without --post, the newest published issue is the one before both.
    let out = site.run(&["preview"]);
    assert!(text(&out).contains("Week Ending May 10, 2020"), "{}", text(&out));
}

#[test]
fn list_mail_names_the_list_address_as_the_reason() {
    let site = Site::new(&mail_config(closed_port()));
    let out = site.run(&["preview"]);
    assert!(out.status.success(), "{}", text(&out));
    let txt = std::fs::read_to_string(site.path("_preview/message.txt")).unwrap();
    let html = std::fs::read_to_string(site.path("_preview/message.html")).unwrap();
    let unwrapped = txt.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(unwrapped.contains("because you subscribed to kubernetes-dev@example.org."), "{txt}");
    assert!(html.contains("because you subscribed to kubernetes-dev@example.org."), "{html}");
}
