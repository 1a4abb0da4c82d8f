//! RSS 2.0 with the `atom:link rel="self"` that validators ask for, `content:encoded`
//! for the full issue and `dc:creator` for authors (RSS's own `author` needs an email).

use super::FeedInput;
use crate::chars::stripped as x;
use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::{Category, Channel, Guid, Item};
use std::io::Write;

/// Serialises the feed into `w`.
pub fn write(input: &FeedInput, w: &mut dyn Write) -> std::io::Result<()> {
    channel(input).pretty_write_to(w, b' ', 2).map_err(std::io::Error::other)?;
    Ok(())
}

/// The channel model, for callers that want to inspect it. Every text is stripped of
/// the characters XML forbids ([`crate::chars`]), whatever the loader let through.
pub fn channel(input: &FeedInput) -> Channel {
    let site = input.site;
    let mut links = vec![Link {
        href: x(&input.self_url),
        rel: "self".into(),
        mime_type: Some("application/rss+xml".into()),
        ..Default::default()
    }];
    if let Some(hub) = input.hub {
        links.push(Link { href: x(hub), rel: "hub".into(), ..Default::default() });
    }
    let items = input.items.iter().map(|r| {
        let p = r.post;
        let creators: Vec<String> = input.authors(r).into_iter().map(|a| x(&a.name)).collect();
        Item {
            title: Some(x(&p.title)),
            link: Some(x(&p.url)),
            description: Some(x(&r.summary_html)),
            content: Some(x(&r.html)),
            guid: Some(Guid { value: x(&p.id), permalink: p.id == p.url }),
            pub_date: Some(p.date.to_rfc2822()),
            categories: p.feed_categories().into_iter().map(|c| Category { name: x(c), domain: None }).collect(),
            dublin_core_ext: (!creators.is_empty()).then(|| DublinCoreExtension { creators, ..Default::default() }),
            ..Default::default()
        }
    });
    Channel {
        title: x(&site.title),
        link: x(&input.home_url()),
        description: x(&site.description),
        language: Some(x(&site.language)),
        generator: Some("newsdesk".into()),
        last_build_date: Some(input.updated.to_rfc2822()),
        pub_date: Some(input.updated.to_rfc2822()),
        atom_ext: Some(AtomExtension { links }),
        items: items.collect(),
        ..Default::default()
    }
}
