//! Atom 1.0 (RFC 4287): the format jekyll-feed publishes, so ids and links must match it.

use super::FeedInput;
use crate::chars::stripped as x;
use atom_syndication::{Category, Content, Entry, Feed, FixedDateTime, Generator, Link, Person, Text, WriteConfig};
use std::io::Write;

/// Serialises the feed into `w`.
pub fn write(input: &FeedInput, w: &mut dyn Write) -> std::io::Result<()> {
    let config = WriteConfig { write_document_declaration: true, indent_size: Some(2) };
    feed(input).write_with_config(w, config).map_err(std::io::Error::other)?;
    Ok(())
}

fn person(p: crate::model::Person) -> Person {
    Person { name: x(&p.name), email: p.email.as_deref().map(x), uri: p.url.as_deref().map(x), ..Default::default() }
}

/// The feed model, for callers that want to inspect it. Every text is stripped of the
/// characters XML forbids ([`crate::chars`]), whatever the loader let through.
pub fn feed(input: &FeedInput) -> Feed {
    let site = input.site;
    let mut links = vec![
        Link {
            href: x(&input.self_url),
            rel: "self".into(),
            mime_type: Some("application/atom+xml".into()),
            ..Default::default()
        },
        Link {
            href: x(&input.home_url()),
            rel: "alternate".into(),
            mime_type: Some("text/html".into()),
            ..Default::default()
        },
    ];
    if let Some(hub) = input.hub {
        links.push(Link { href: x(hub), rel: "hub".into(), ..Default::default() });
    }
    let entries = input.items.iter().map(|r| {
        let p = r.post;
        Entry {
            title: Text::plain(x(&p.title)),
            id: x(&p.id),
            updated: FixedDateTime::from(p.last_changed()),
            published: Some(p.date),
            authors: input.authors(r).into_iter().map(person).collect(),
            links: vec![Link {
                href: x(&p.url),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                title: Some(x(&p.title)),
                ..Default::default()
            }],
            summary: (!r.summary_html.is_empty()).then(|| Text::html(x(&r.summary_html))),
            content: Some(Content {
                base: Some(x(&p.url)),
                value: Some(x(&r.html)),
                content_type: Some("html".into()),
                ..Default::default()
            }),
            categories: p
                .feed_categories()
                .into_iter()
                .map(|c| Category { term: x(c), ..Default::default() })
                .collect(),
            ..Default::default()
        }
    });
    Feed {
        title: Text::plain(x(&site.title)),
        subtitle: (!site.description.is_empty()).then(|| Text::plain(x(&site.description))),
        id: x(&input.self_url),
        updated: input.updated,
        authors: site.author.clone().into_iter().map(person).collect(),
        links,
        generator: Some(Generator { value: "newsdesk".into(), uri: None, version: None }),
        lang: Some(x(&site.language)),
        entries: entries.collect(),
        ..Default::default()
    }
}
