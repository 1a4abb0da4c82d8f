//! `newsdesk social` through the binary: the editors' own example from LWKD's
//! publishing.md reproduced from a post's `highlights:`, each service's count and limit,
//! highlights dropped from the end until the text fits, and highlights taken from the
//! Featured PRs headings when the front matter has none.

mod support;

use support::{Site, text};

const HASHTAGS: &str = "\n[social]\nhashtags = [\"#kubernetes\", \"#containers\", \"#CloudNative\"]\n";

fn post(site: &Site, highlights: &[&str]) {
    let list: Vec<String> = highlights.iter().map(|h| format!("  - {h}\n")).collect();
    std::fs::write(
        site.path("posts/2026-08-02-update.md"),
        format!(
            "---\nlayout: post\ntitle: Week Ending August 2, 2026\ndate: 2026-08-06 23:45:00 -0000\nslug: 2026-08-02-update\nhighlights:\n{}---\n\n## Developer News\n\nNews.\n",
            list.concat()
        ),
    )
    .unwrap();
}

#[test]
fn the_editors_example_comes_out_as_they_wrote_it() {
    let site = Site::new(HASHTAGS);
    post(&site, &["Steering candidates selected", "CPU manager", "Statefulset scaledown", "NominatedNodeName"]);
    let out = site.run(&["social", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // publishing.md's example, word for word (the URL is the post's permalink).
    let expected = "Week ending August 2: Steering candidates selected, CPU manager, Statefulset scaledown, NominatedNodeName\n\nhttps://lwkd.info/2026/20260806\n\n#kubernetes #containers #CloudNative";
    for service in ["bluesky", "mastodon"] {
        assert_eq!(json[service]["text"], expected, "{service}");
        assert_eq!(json[service]["dropped"].as_array().unwrap().len(), 0);
    }
    // Bluesky counts every grapheme (142); Mastodon counts the 31-character link as 23.
    assert_eq!(json["bluesky"]["length"], expected.chars().count());
    assert_eq!(json["mastodon"]["length"], expected.chars().count() - 31 + 23);
    assert_eq!((json["bluesky"]["limit"].as_u64(), json["mastodon"]["limit"].as_u64()), (Some(300), Some(500)));
}

#[test]
fn highlights_are_dropped_from_the_end_until_each_text_fits() {
    let site = Site::new(HASHTAGS);
    let many: Vec<String> = (1..=12).map(|i| format!("Highlight number {i} about a fairly long change")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    post(&site, &refs);
    let out = site.run(&["social", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = |service: &str| 12 - json[service]["dropped"].as_array().unwrap().len();
    for service in ["bluesky", "mastodon"] {
        let t = &json[service];
        assert!(t["length"].as_u64() <= t["limit"].as_u64(), "{t:#}");
        let dropped: Vec<&str> = t["dropped"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
        // The last ones go first, and what is kept is the list's beginning.
        let n = dropped.len();
        let expected: Vec<&str> = refs[12 - n..].iter().rev().copied().collect();
        assert_eq!(dropped, expected, "{service}");
        let text = t["text"].as_str().unwrap();
        assert!(text.contains(refs[12 - n - 1]) && !text.contains(refs[12 - n]), "{service}: {text}");
    }
    // Bluesky's 300 hold fewer than Mastodon's 500.
    assert!(kept("bluesky") < kept("mastodon"), "{json:#}");
    // One more highlight would not have fitted.
    let b = &json["bluesky"];
    assert!(b["length"].as_u64().unwrap() + 2 + refs[kept("bluesky")].len() as u64 > 300, "{b:#}");
    // People see both texts and what was left out.
    let out = site.run(&["social"]);
    assert!(text(&out).contains("── Bluesky ("), "{}", text(&out));
    assert!(text(&out).contains("(left out to fit: Highlight number 12 about a fairly long change;"), "{}", text(&out));
}

#[test]
fn without_a_list_the_featured_prs_are_the_highlights() {
    // The bundled newest issue (2020-05-10) has no `highlights:`.
    let site = Site::new("");
    let out = site.run(&["social", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = json["bluesky"]["text"].as_str().unwrap();
    assert!(t.starts_with("Week ending May 10: Support compiling Kubelet w/o docker/docker, "), "{t}");
    assert!(t.ends_with("\n\nhttps://lwkd.info/2020/20200512"), "no hashtags configured: {t}");
}
