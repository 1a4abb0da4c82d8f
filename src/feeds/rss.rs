//! RSS 2.0 with the `atom:link rel="self"` that validators ask for, `content:encoded`
//! for the full issue and `dc:creator` for authors (RSS's own `author` needs an email).

use super::FeedInput;
use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::{Category, Channel, Guid, Item};
use std::io::Write;

/// Serialises the feed into `w`.
pub fn write(input: &FeedInput, w: &mut dyn Write) -> std::io::Result<()> {
    channel(input).pretty_write_to(w, b' ', 2).map_err(std::io::Error::other)?;
    Ok(())
}

/// The channel model, for callers that want to inspect it.
pub fn channel(input: &FeedInput) -> Channel {
    let site = input.site;
    let mut links = vec![Link {
        href: input.self_url.clone(),
        rel: "self".into(),
        mime_type: Some("application/rss+xml".into()),
        ..Default::default()
    }];
    if let Some(hub) = input.hub {
        links.push(Link { href: hub.to_string(), rel: "hub".into(), ..Default::default() });
    }
    let items = input.items.iter().map(|r| {
        let p = r.post;
        let creators: Vec<String> = input.authors(r).into_iter().map(|a| a.name).collect();
        Item {
            title: Some(p.title.clone()),
            link: Some(p.url.clone()),
            description: Some(r.summary_html.clone()),
            content: Some(r.html.clone()),
            guid: Some(Guid { value: p.id.clone(), permalink: p.id == p.url }),
            pub_date: Some(p.date.to_rfc2822()),
            categories: p
                .feed_categories()
                .into_iter()
                .map(|c| Category { name: c.to_string(), domain: None })
                .collect(),
            dublin_core_ext: (!creators.is_empty()).then(|| DublinCoreExtension { creators, ..Default::default() }),
            ..Default::default()
        }
    });
    Channel {
        title: site.title.clone(),
        link: input.home_url(),
        description: site.description.clone(),
        language: Some(site.language.clone()),
        generator: Some("newsdesk".into()),
        last_build_date: Some(input.updated.to_rfc2822()),
        pub_date: Some(input.updated.to_rfc2822()),
        atom_ext: Some(AtomExtension { links }),
        items: items.collect(),
        ..Default::default()
    }
}
