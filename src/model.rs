//! The shared model: what every output (feeds, email) reads, and nothing else.
//!
//! Pure data, no I/O: the loader keeps front matter only and a post's body is read
//! when an output needs it ([`crate::load::read_body`]), so loading a 100,000-post
//! archive stays cheap.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A person credited for the site or a post (Atom requires at least one per entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Person {
    /// Reads `Name <email>` or a bare name.
    pub fn parse(s: &str) -> Person {
        let s = s.trim();
        if let (Some(open), true) = (s.rfind('<'), s.ends_with('>')) {
            let email = s[open + 1..s.len() - 1].trim();
            let name = s[..open].trim().trim_matches('"').trim();
            if email.contains('@') {
                return Person {
                    name: if name.is_empty() { email } else { name }.to_string(),
                    email: Some(email.to_string()),
                    url: None,
                };
            }
        }
        Person { name: s.to_string(), email: None, url: None }
    }
}

/// The site as configured: everything about the newsletter that is not a post.
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    pub title: String,
    pub description: String,
    /// Absolute http(s) URL without a trailing slash.
    pub base_url: String,
    pub language: String,
    pub timezone: String,
    #[serde(skip)]
    pub tz: chrono_tz::Tz,
    pub permalink: String,
    pub author: Option<Person>,
}

impl Site {
    /// Joins a site-root path (`/2020/20200512`) to the base URL.
    pub fn absolute(&self, path: &str) -> String {
        if path.starts_with('/') { format!("{}{}", self.base_url, path) } else { format!("{}/{}", self.base_url, path) }
    }
}

/// Where a post's markdown starts in its file, so bodies can be read later and
/// diagnostics in the body can name the right line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyStart {
    pub byte: u64,
    /// 1-based line of the body's first line in the file.
    pub line: usize,
}

/// One issue of the newsletter, as loaded from its file (front matter only).
#[derive(Debug, Clone, Serialize)]
pub struct Post {
    #[serde(skip)]
    pub source: PathBuf,
    /// File name without extension (`2020-05-10-update`); jekyll-feed ids use it.
    #[serde(skip)]
    pub file_stem: String,
    pub title: String,
    pub date: DateTime<FixedOffset>,
    pub updated: Option<DateTime<FixedOffset>>,
    pub slug: String,
    /// Whether `slug` came from the front matter (jekyll-feed ids depend on it).
    #[serde(skip)]
    pub slug_from_front_matter: bool,
    /// Site-root path (`/2020/20200512`).
    pub path: String,
    /// Absolute permalink.
    pub url: String,
    /// The stable feed id (never changes when the title is edited).
    pub id: String,
    pub authors: Vec<Person>,
    pub tags: Vec<String>,
    pub categories: Vec<String>,
    /// Summary given in front matter (`summary`, `description` or `excerpt`), as markdown.
    pub summary: Option<String>,
    pub layout: Option<String>,
    /// `false` for drafts (`published: false`).
    pub published: bool,
    /// Every front-matter key newsdesk does not interpret, for templates.
    pub extra: BTreeMap<String, serde_json::Value>,
    #[serde(skip)]
    pub body_start: BodyStart,
    /// File line of the `date:` key (0 when the date came from the file name).
    #[serde(skip)]
    pub date_line: usize,
}

impl Post {
    /// Tags, then categories not already among them: the feed's `category` list.
    pub fn feed_categories(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for t in self.tags.iter().chain(&self.categories) {
            if !out.contains(&t.as_str()) {
                out.push(t);
            }
        }
        out
    }

    /// The newest of the publication and last-modified dates.
    pub fn last_changed(&self) -> DateTime<FixedOffset> {
        match self.updated {
            Some(u) if u > self.date => u,
            _ => self.date,
        }
    }

    pub fn source(&self) -> &Path {
        &self.source
    }
}

/// All posts of a site, oldest first (by date, then slug), drafts and future posts
/// included: selection happens in [`Archive::published`].
#[derive(Debug, Clone)]
pub struct Archive {
    pub site: Site,
    pub posts: Vec<Post>,
}

/// Which posts count as published for this run.
#[derive(Debug, Clone, Copy)]
pub struct Selection {
    pub drafts: bool,
    pub future: bool,
    pub now: DateTime<FixedOffset>,
}

impl Selection {
    pub fn includes(&self, post: &Post) -> bool {
        (post.published || self.drafts) && (self.future || post.date <= self.now)
    }
}

impl Archive {
    /// Sorts oldest first; ties on the date are broken by slug so the order never
    /// depends on the file system.
    pub fn new(site: Site, mut posts: Vec<Post>) -> Archive {
        posts.sort_by(|a, b| (a.date, &a.slug, &a.source).cmp(&(b.date, &b.slug, &b.source)));
        Archive { site, posts }
    }

    /// Published posts, newest first.
    pub fn published(&self, sel: Selection) -> impl Iterator<Item = &Post> {
        self.posts.iter().rev().filter(move |p| sel.includes(p))
    }

    /// The newest published issue: the one the email digest is about.
    pub fn newest(&self, sel: Selection) -> Option<&Post> {
        self.published(sel).next()
    }

    /// A post by slug (or file stem), for `--post SLUG`.
    pub fn by_slug(&self, slug: &str) -> Option<&Post> {
        self.posts
            .iter()
            .rev()
            .find(|p| p.slug == slug)
            .or_else(|| self.posts.iter().rev().find(|p| p.file_stem == slug))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_reads_name_and_address() {
        let p = Person::parse("LWKD <lwkd@example.org>");
        assert_eq!(p.name, "LWKD");
        assert_eq!(p.email.as_deref(), Some("lwkd@example.org"));
        let p = Person::parse("Josh Berkus");
        assert_eq!(p.name, "Josh Berkus");
        assert_eq!(p.email, None);
    }
}
