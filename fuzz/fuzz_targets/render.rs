//! The markdown renderers on arbitrary text: the HTML body (links made absolute,
//! sanitised) and the text part, then every feed built from the post.
//!
//! Properties beyond "no panic":
//! - the RSS and Atom feeds of the post are well-formed XML (quick-xml reads them to the
//!   end, entities and all) and carry no character XML forbids; the JSON Feed parses;
//! - the HTML carries no active content (script tags, `on*` handlers, `javascript:`
//!   targets);
//! - the text part's prose respects the wrap rule: a line is at most `text::WIDTH`
//!   columns unless it is a single word after its prefix (`wrap` exactly, and the whole
//!   text part for bodies without code blocks, tables or footnotes, which keep their lines).

#![no_main]

use libfuzzer_sys::fuzz_target;
use newsdesk::config::FeedsConfig;
use newsdesk::feeds::{FeedInput, atom, json, rss};
use newsdesk::model::{BodyStart, Post, Site};
use newsdesk::render::text::{GLUE, WIDTH, render_text, wrap};
use newsdesk::render::{html, render_markdown, sanitize};
use pulldown_cmark::{Event, Parser, Tag};
use quick_xml::XmlVersion;
use quick_xml::events::Event as XmlEvent;
use unicode_width::UnicodeWidthStr;

fn site() -> Site {
    Site {
        title: "LWKD".into(),
        description: "Weekly".into(),
        base_url: "https://lwkd.info".into(),
        language: "en".into(),
        timezone: "UTC".into(),
        tz: chrono_tz::UTC,
        permalink: "/:year/:year:month:day".into(),
        author: Some(newsdesk::model::Person { name: "Editors".into(), email: None, url: None }),
    }
}

fn post(title: &str) -> Post {
    let url = "https://lwkd.info/2020/20200512".to_string();
    Post {
        source: "posts/2020-05-10-update.md".into(),
        file_stem: "2020-05-10-update".into(),
        title: title.to_string(),
        date: chrono::DateTime::parse_from_rfc3339("2020-05-12T20:00:00Z").expect("a date"),
        updated: None,
        slug: "2020-05-10-update".into(),
        slug_from_front_matter: false,
        path: "/2020/20200512".into(),
        url: url.clone(),
        id: url,
        authors: vec![],
        tags: vec![title.to_string()],
        categories: vec![],
        summary: None,
        layout: None,
        published: true,
        extra: Default::default(),
        body_start: BodyStart { byte: 0, line: 5 },
        date_line: 3,
    }
}

/// Reads `xml` to the end with quick-xml; panics on anything ill-formed.
fn assert_well_formed(what: &str, xml: &str) {
    if let Some(c) = xml.chars().find(|c| newsdesk::chars::is_forbidden(*c)) {
        panic!("{what} carries {}:\n{xml}", newsdesk::chars::describe(c));
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(XmlEvent::Eof) => break,
            Ok(XmlEvent::Start(e)) => {
                depth += 1;
                for a in e.attributes() {
                    let a = a.unwrap_or_else(|err| panic!("{what}: bad attribute: {err}\n{xml}"));
                    a.normalized_value(XmlVersion::Implicit1_0)
                        .unwrap_or_else(|err| panic!("{what}: bad attribute value: {err}\n{xml}"));
                }
            }
            Ok(XmlEvent::End(_)) => depth -= 1,
            Ok(XmlEvent::Text(t)) => {
                let _ = t.xml_content(XmlVersion::Implicit1_0);
            }
            Ok(XmlEvent::GeneralRef(r)) => {
                let name = r.xml_content(XmlVersion::Implicit1_0);
                let known = matches!(&*name, "amp" | "lt" | "gt" | "quot" | "apos") || r.is_char_ref();
                assert!(known, "{what}: unknown entity `&{name};`\n{xml}");
                if r.is_char_ref() {
                    let c = r.resolve_char_ref().unwrap_or_else(|err| panic!("{what}: bad char ref: {err}\n{xml}"));
                    assert!(c.is_some_and(|c| !newsdesk::chars::is_forbidden(c)), "{what}: `&{name};`\n{xml}");
                }
            }
            Ok(_) => {}
            Err(e) => panic!("{what} is not well-formed at {}: {e}\n{xml}", reader.error_position()),
        }
    }
    assert_eq!(depth, 0, "{what}: unclosed elements\n{xml}");
}

/// No script tags, event handlers or script/data URLs in `fragment`.
fn assert_no_active_content(what: &str, fragment: &str) {
    for t in html::tags(fragment).iter().filter(|t| !t.end) {
        assert!(
            !matches!(t.name.as_str(), "script" | "iframe" | "object" | "embed" | "style"),
            "{what} has <{}>:\n{fragment}",
            t.name
        );
        for (name, value) in &t.attrs {
            assert!(!name.starts_with("on"), "{what} has `{name}` on <{}>:\n{fragment}", t.name);
            if sanitize::is_url_attribute(name) {
                assert!(sanitize::url_allowed(value), "{what} has {name}={value:?}:\n{fragment}");
            }
        }
    }
}

/// The wrap rule for one line, `prefix` being what `wrap` put before its words.
fn assert_wrapped(what: &str, line: &str, prefix: &str, all: &str) {
    if line.width() <= WIDTH {
        return;
    }
    let content = line.strip_prefix(prefix).unwrap_or(line);
    // A link's text and its ` [n]` marker are glued: one unit for wrapping.
    let words = content.split_whitespace().filter(|w| !is_marker(w)).count().max(1);
    assert!(words <= 1, "{what}: line of {} columns holds several words: {line:?}\n{all}", line.width());
}

/// `[12]` (with whatever text followed the link, `[12].`): a link's reference number,
/// which `wrap` keeps on the line of the link's last word.
fn is_marker(word: &str) -> bool {
    word.strip_prefix('[')
        .and_then(|w| w.split_once(']'))
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fuzz_target!(|data: &str| {
    let (title, markdown) = data.split_once('\n').unwrap_or((data, ""));
    let p = post(title);
    let rendered = render_markdown(&p, markdown.to_string());
    assert_no_active_content("the body", &rendered.html);
    assert_no_active_content("the summary", &rendered.summary_html);

    // Feeds of the rendered post.
    let site = site();
    let feeds = FeedsConfig::default();
    let items = [rendered];
    let input = FeedInput::new(&site, &feeds, &items, "feed.xml");
    for (name, write) in
        [("rss", rss::write as fn(&FeedInput, &mut dyn std::io::Write) -> std::io::Result<()>), ("atom", atom::write)]
    {
        let mut out = Vec::new();
        write(&input, &mut out).unwrap_or_else(|e| panic!("{name} cannot be written: {e}"));
        let xml = String::from_utf8(out).unwrap_or_else(|e| panic!("{name} is not UTF-8: {e}"));
        assert_well_formed(name, &xml);
    }
    let mut out = Vec::new();
    json::write(&input, &mut out).expect("the JSON Feed is written");
    let value: serde_json::Value = serde_json::from_slice(&out).expect("the JSON Feed parses");
    assert!(!value.to_string().contains("\\u00"), "the JSON Feed carries a control character");

    // The text part.
    let base = url::Url::parse(&p.url).ok();
    let text = render_text(&items[0].markdown, base.as_ref());
    let keeps_lines = Parser::new_ext(&items[0].markdown, newsdesk::render::options())
        .any(|e| matches!(e, Event::Start(Tag::CodeBlock(_) | Tag::Table(_) | Tag::FootnoteDefinition(_))));
    if !keeps_lines {
        for line in text.body.lines() {
            let prefix: String = line.chars().take_while(|c| matches!(c, '>' | ' ' | '*' | '.' | '0'..='9')).collect();
            assert_wrapped("the text part", line, &prefix, &text.body);
        }
    }

    // `wrap` itself, with prefixes picked by the title's length.
    const PREFIXES: [&str; 6] =
        ["", "> ", "* ", "  ", "12. ", "> > > > > > > > > > > > > > > > > > > > > > > > > > > > > > > "];
    let first = PREFIXES[title.len() % PREFIXES.len()];
    let rest = PREFIXES[(title.len() / PREFIXES.len()) % PREFIXES.len()];
    let prose: String = markdown.chars().filter(|c| *c != GLUE).collect();
    let lines = wrap(&prose, WIDTH, first, rest);
    for (i, line) in lines.iter().enumerate() {
        let prefix = if i == 0 { first } else { rest };
        assert!(line.starts_with(prefix.trim_end()), "line {i} lost its prefix {prefix:?}: {line:?}");
        assert_wrapped("wrap", line, prefix, &lines.join("\n"));
    }
});
