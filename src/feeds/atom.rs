//! Atom 1.0 (RFC 4287): the format jekyll-feed publishes, so ids and links must match it.

use super::FeedInput;
use atom_syndication::{Category, Content, Entry, Feed, FixedDateTime, Generator, Link, Person, Text, WriteConfig};
use std::io::Write;

/// Serialises the feed into `w`.
pub fn write(input: &FeedInput, w: &mut dyn Write) -> std::io::Result<()> {
    let config = WriteConfig { write_document_declaration: true, indent_size: Some(2) };
    feed(input).write_with_config(w, config).map_err(std::io::Error::other)?;
    Ok(())
}

fn person(p: crate::model::Person) -> Person {
    Person { name: p.name, email: p.email, uri: p.url, ..Default::default() }
}

/// The feed model, for callers that want to inspect it.
pub fn feed(input: &FeedInput) -> Feed {
    let site = input.site;
    let mut links = vec![
        Link {
            href: input.self_url.clone(),
            rel: "self".into(),
            mime_type: Some("application/atom+xml".into()),
            ..Default::default()
        },
        Link {
            href: input.home_url(),
            rel: "alternate".into(),
            mime_type: Some("text/html".into()),
            ..Default::default()
        },
    ];
    if let Some(hub) = input.hub {
        links.push(Link { href: hub.to_string(), rel: "hub".into(), ..Default::default() });
    }
    let entries = input.items.iter().map(|r| {
        let p = r.post;
        Entry {
            title: Text::plain(p.title.clone()),
            id: p.id.clone(),
            updated: FixedDateTime::from(p.last_changed()),
            published: Some(p.date),
            authors: input.authors(r).into_iter().map(person).collect(),
            links: vec![Link {
                href: p.url.clone(),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                title: Some(p.title.clone()),
                ..Default::default()
            }],
            summary: (!r.summary_html.is_empty()).then(|| Text::html(r.summary_html.clone())),
            content: Some(Content {
                base: Some(p.url.clone()),
                value: Some(r.html.clone()),
                content_type: Some("html".into()),
                ..Default::default()
            }),
            categories: p
                .feed_categories()
                .into_iter()
                .map(|c| Category { term: c.to_string(), ..Default::default() })
                .collect(),
            ..Default::default()
        }
    });
    Feed {
        title: Text::plain(site.title.clone()),
        subtitle: (!site.description.is_empty()).then(|| Text::plain(site.description.clone())),
        id: input.self_url.clone(),
        updated: input.updated,
        authors: site.author.clone().into_iter().map(person).collect(),
        links,
        generator: Some(Generator { value: "newsdesk".into(), uri: None, version: None }),
        lang: Some(site.language.clone()),
        entries: entries.collect(),
        ..Default::default()
    }
}
