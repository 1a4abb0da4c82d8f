//! JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/), serialised with serde.

use super::FeedInput;
use crate::chars::{strip, stripped};
use serde::Serialize;
use std::borrow::Cow;
use std::io::Write;

/// The top-level object; field order is the spec's, and stable.
#[derive(Serialize)]
pub struct JsonFeed<'a> {
    pub version: &'static str,
    pub title: Cow<'a, str>,
    pub home_page_url: String,
    pub feed_url: Cow<'a, str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: Cow<'a, str>,
    pub language: Cow<'a, str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<Author>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hubs: Vec<Hub<'a>>,
    pub items: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
pub struct Author {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Serialize)]
pub struct Hub<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub url: Cow<'a, str>,
}

#[derive(Serialize)]
pub struct JsonItem<'a> {
    pub id: Cow<'a, str>,
    pub url: Cow<'a, str>,
    pub title: Cow<'a, str>,
    pub content_html: Cow<'a, str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub summary: Cow<'a, str>,
    pub date_published: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_modified: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<Author>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Cow<'a, str>>,
}

fn author(p: crate::model::Person) -> Author {
    let url = p.url.or(p.email.map(|e| format!("mailto:{e}")));
    Author { url: url.as_deref().map(stripped), name: stripped(&p.name) }
}

/// The feed as a serialisable value; texts are stripped of the characters XML forbids
/// ([`crate::chars`]) as in the XML feeds, so all three carry the same text.
pub fn feed<'a>(input: &'a FeedInput) -> JsonFeed<'a> {
    let site = input.site;
    JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: strip(&site.title),
        home_page_url: stripped(&input.home_url()),
        feed_url: strip(&input.self_url),
        description: strip(&site.description),
        language: strip(&site.language),
        authors: site.author.clone().into_iter().map(author).collect(),
        hubs: input.hub.map(|url| Hub { kind: "WebSub", url: strip(url) }).into_iter().collect(),
        items: input
            .items
            .iter()
            .map(|r| {
                let p = r.post;
                JsonItem {
                    id: strip(&p.id),
                    url: strip(&p.url),
                    title: strip(&p.title),
                    content_html: strip(&r.html),
                    summary: strip(&r.summary_text),
                    date_published: p.date.to_rfc3339(),
                    date_modified: p.updated.map(|u| u.to_rfc3339()),
                    authors: input.authors(r).into_iter().map(author).collect(),
                    tags: p.feed_categories().into_iter().map(strip).collect(),
                }
            })
            .collect(),
    }
}

/// Serialises the feed into `w`.
pub fn write(input: &FeedInput, w: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &feed(input))?;
    w.write_all(b"\n")
}
