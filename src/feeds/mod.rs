//! Feed writers: RSS 2.0, Atom 1.0 and JSON Feed 1.1 from the rendered newest posts.
//!
//! Each writer takes the same [`FeedInput`] and streams bytes to a writer. Nothing here
//! reads the clock: a feed's own date is its newest item's, so rebuilding unchanged
//! posts gives byte-identical files and readers see no false updates.

pub mod atom;
pub mod json;
pub mod rss;

use crate::config::FeedsConfig;
use crate::model::{Person, Site};
use crate::render::RenderedPost;
use chrono::{DateTime, FixedOffset};

/// Everything a feed writer needs, resolved once.
pub struct FeedInput<'a> {
    pub site: &'a Site,
    /// Items, newest first.
    pub items: &'a [RenderedPost<'a>],
    /// Absolute URL where this feed is served (its self link).
    pub self_url: String,
    /// Optional WebSub hub.
    pub hub: Option<&'a str>,
    /// The newest item's last change, or the Unix epoch for an empty feed.
    pub updated: DateTime<FixedOffset>,
}

impl<'a> FeedInput<'a> {
    pub fn new(site: &'a Site, feeds: &'a FeedsConfig, items: &'a [RenderedPost<'a>], file_name: &str) -> Self {
        let updated =
            items.iter().map(|r| r.post.last_changed()).max().unwrap_or_else(|| DateTime::UNIX_EPOCH.fixed_offset());
        FeedInput { site, items, self_url: site.absolute(file_name), hub: feeds.hub.as_deref(), updated }
    }

    /// A post's authors, or the site's author when the post names none.
    pub fn authors(&self, r: &RenderedPost) -> Vec<Person> {
        if r.post.authors.is_empty() { self.site.author.iter().cloned().collect() } else { r.post.authors.clone() }
    }

    /// The site's home page, with a trailing slash.
    pub fn home_url(&self) -> String {
        format!("{}/", self.site.base_url)
    }
}
