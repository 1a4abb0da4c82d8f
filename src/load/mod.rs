//! The post loader: walks the posts folder, reads each file's front matter once (in
//! parallel, stopping at the closing fence), and builds the [`Archive`]. Every broken
//! post is reported; none hides another.

pub mod date;
pub mod front_matter;
pub mod split;

use crate::config::Config;
use crate::diag::{Diagnostic, Location, Report};
use crate::model::{Archive, Post, Selection, Site};
use crate::permalink::{self, Fields};
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use rayon::prelude::*;
use split::SplitError;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The archive plus everything found wrong while loading it.
pub struct Loaded {
    pub archive: Archive,
    pub report: Report,
}

/// Which loaded posts to keep in memory.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    /// Every post, drafts and future ones included (`check`, `--post SLUG`).
    All,
    /// Only the newest `limit` posts that `selection` publishes (`build`): an archive of
    /// 100,000 posts then costs the front matter of each, not 100,000 models.
    Newest { selection: Selection, limit: usize },
}

/// Loads every post of the config's posts folder (`[site] posts`, or `--posts`).
pub fn load(config: &Config) -> Loaded {
    scan(config, Keep::All)
}

/// Loads the whole folder, checking every post, but keeps only the newest `limit`
/// published posts in the archive.
pub fn load_newest(config: &Config, selection: Selection, limit: usize) -> Loaded {
    scan(config, Keep::Newest { selection, limit })
}

/// Posts ordered as the archive orders them (date, slug, file), for the top-N heap.
struct Ranked(Post);

impl Ranked {
    fn key(&self) -> (DateTime<FixedOffset>, &str, &Path) {
        (self.0.date, &self.0.slug, &self.0.source)
    }
}
impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// What each loader thread gathers; merged at the end.
#[derive(Default)]
struct Gathered {
    all: Vec<Post>,
    /// Min-heap of the newest posts (`Keep::Newest`).
    newest: BinaryHeap<Reverse<Ranked>>,
    /// (which key, hash of its value, file index) for finding duplicates cheaply.
    keys: Vec<(u8, u64, u32)>,
    diagnostics: Vec<Diagnostic>,
}

impl Gathered {
    fn add(&mut self, post: Post, index: u32, keep: Keep) {
        // A slug taken from the file name (`2020-05-10-update.md` → `update`) repeats by
        // design in Jekyll sites; only slugs written in front matter must be unique.
        for (kind, value) in [(0u8, &post.slug), (1, &post.path), (2, &post.id)] {
            if kind == 0 && !post.slug_from_front_matter {
                continue;
            }
            let mut h = DefaultHasher::new();
            value.hash(&mut h);
            self.keys.push((kind, h.finish(), index));
        }
        match keep {
            Keep::All => self.all.push(post),
            Keep::Newest { selection, limit } => {
                if selection.includes(&post) {
                    self.newest.push(Reverse(Ranked(post)));
                    if self.newest.len() > limit {
                        self.newest.pop();
                    }
                }
            }
        }
    }

    fn merge(mut self, other: Gathered, keep: Keep) -> Gathered {
        self.all.extend(other.all);
        self.keys.extend(other.keys);
        self.diagnostics.extend(other.diagnostics);
        for Reverse(Ranked(post)) in other.newest {
            if let Keep::Newest { limit, .. } = keep {
                self.newest.push(Reverse(Ranked(post)));
                if self.newest.len() > limit {
                    self.newest.pop();
                }
            }
        }
        self
    }
}

fn scan(config: &Config, keep: Keep) -> Loaded {
    let dir = &config.posts_dir;
    let mut report = Report::default();
    let files = match find_posts(dir) {
        Ok(files) => files,
        Err(e) => {
            report.push(
                Diagnostic::error("no-posts-folder", format!("cannot read the posts folder `{}`: {e}", dir.display()))
                    .in_file(&config.path)
                    .help("set `posts` in `[site]` to the folder holding the posts (`_posts` for a Jekyll site), or pass `--posts DIR`"),
            );
            Vec::new()
        }
    };
    let gathered = files
        .par_iter()
        .with_min_len(32)
        .enumerate()
        .fold(Gathered::default, |mut g, (i, path)| {
            match load_post(path, &config.site, &config.feeds.id) {
                Ok((post, warnings)) => {
                    g.diagnostics.extend(warnings);
                    g.add(post, i as u32, keep);
                }
                Err(d) => g.diagnostics.push(d),
            }
            g
        })
        .reduce(Gathered::default, |a, b| a.merge(b, keep));
    report.extend(gathered.diagnostics);
    report.extend(duplicates(&files, gathered.keys, config));
    let posts = match keep {
        Keep::All => gathered.all,
        Keep::Newest { .. } => gathered.newest.into_iter().map(|Reverse(Ranked(p))| p).collect(),
    };
    Loaded { archive: Archive::new(config.site.clone(), posts), report }
}

/// Every `*.md` / `*.markdown` file below `dir`, in a stable order, skipping hidden entries.
/// Reads a post's markdown body (the loader keeps front matter only); the error names
/// the file.
pub fn read_body(post: &Post) -> Result<String, Diagnostic> {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(&post.source)?;
        file.seek(SeekFrom::Start(post.body_start.byte))?;
        let mut body = String::new();
        file.read_to_string(&mut body)?;
        Ok(body)
    };
    read().map_err(|e| {
        Diagnostic::error("unreadable", format!("cannot read this post's body: {e}")).in_file(&post.source)
    })
}

pub fn find_posts(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"));
    }
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(dir).into_iter();
    for entry in walker.filter_entry(|e| e.depth() == 0 || !e.file_name().as_encoded_bytes().starts_with(b".")) {
        let entry = entry.map_err(std::io::Error::other)?;
        let is_post = entry.path().extension().is_some_and(|x| x == "md" || x == "markdown");
        if entry.file_type().is_file() && is_post {
            files.push(entry.into_path());
        }
    }
    // One sort of the whole list by bytes (walkdir's per-folder sort re-parses every
    // path on each comparison, which dominated listing 100,000 files).
    files.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    Ok(files)
}

/// `2020-05-10-update` → (2020-05-10, `update`); `None` when the name carries no date.
pub fn split_file_stem(stem: &str) -> Option<(Option<NaiveDate>, &str)> {
    let b = stem.as_bytes();
    let shaped = b.len() > 11
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9].iter().all(|&i| b[i].is_ascii_digit());
    if !shaped {
        return None;
    }
    let date = NaiveDate::parse_from_str(&stem[..10], "%Y-%m-%d").ok();
    Some((date, &stem[11..]))
}

/// Reads one post's front matter and builds its model.
pub fn load_post(path: &Path, site: &Site, id_rule: &str) -> Result<(Post, Vec<Diagnostic>), Diagnostic> {
    let file = File::open(path)
        .map_err(|e| Diagnostic::error("unreadable", format!("cannot read this post: {e}")).in_file(path))?;
    let fm = split::split(BufReader::with_capacity(4096, file)).map_err(|e| split_error(e).in_file(path))?;
    let (fields, mut warnings) = front_matter::parse(&fm.yaml, fm.first_line).map_err(|d| d.in_file(path))?;
    let mut stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(c) = crate::chars::strip_in_place(&mut stem) {
        warnings.push(front_matter::control_character("the file name", c).in_file(path));
    }
    let from_name = split_file_stem(&stem);

    let title = match fields.title.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => {
            let at = front_matter::locate(&fm.yaml, fm.first_line, "title");
            let mut d = Diagnostic::error("no-title", "this post has no title")
                .in_file(path)
                .help("add a line such as `title: Week Ending May 10, 2020` to the front matter");
            if let Some(at) = at {
                d = d.at(at.line, at.value_column).with_source(at.source, 1);
            } else {
                d = d.at(1, 1);
            }
            return Err(d);
        }
    };

    let slug_from_name = from_name.map(|(_, s)| s).unwrap_or(&stem);
    let slug = fields.slug.clone().unwrap_or_else(|| slug_from_name.to_string());
    let permalink_pattern = fields.permalink.as_deref().unwrap_or(&site.permalink).to_string();
    let expand = |date: DateTime<FixedOffset>, pattern: &str| {
        permalink::expand(pattern, &Fields { date, slug: &slug, categories: &fields.categories })
    };

    let date = match &fields.date {
        Some(at) => date::parse(&at.value, site.tz).map_err(|e| {
            let mut d = Diagnostic::error("bad-date", e.message)
                .in_file(path)
                .at(at.line, at.column)
                .with_source(at.source.clone(), at.value.chars().count());
            d = match e.jekyll_reading {
                Some(j) => {
                    let written = j.format("%Y-%m-%d %H:%M:%S %z");
                    d.help(format!(
                        "Jekyll read this as {written} and published the post at {}; write `date: {written}` to keep that URL",
                        expand(j, &permalink_pattern)
                    ))
                }
                None => d.help("write the date as `2020-05-12 20:00:00 -0000` (or `2020-05-12`)"),
            };
            d
        })?,
        None => match from_name {
            Some((Some(day), _)) => {
                let date = midnight(day, site.tz);
                if !date_in_range(date) {
                    return Err(Diagnostic::error(
                        "bad-date",
                        format!("the file name's date `{}` is out of range: feeds and mail carry dates from 1970 to 9999", day.format("%Y-%m-%d")),
                    )
                    .in_file(path)
                    .help("rename the file to the issue's real date (`YYYY-MM-DD-slug.md`), or add `date:` to the front matter"));
                }
                date
            }
            _ => {
                return Err(Diagnostic::error("no-date", "this post has no date")
                    .in_file(path)
                    .at(1, 1)
                    .help("add `date: 2020-05-12 20:00:00 -0000` to the front matter, or name the file `YYYY-MM-DD-slug.md`"));
            }
        },
    };
    if let Some(at) = fields.date.as_ref().filter(|_| !date_in_range(date)) {
        return Err(out_of_range(&at.value, "date")
            .in_file(path)
            .at(at.line, at.column)
            .with_source(at.source.clone(), at.value.chars().count()));
    }
    let updated = match &fields.updated {
        Some(at) => Some(date::parse(&at.value, site.tz).map_err(|e| {
            Diagnostic::error("bad-date", e.message)
                .in_file(path)
                .at(at.line, at.column)
                .with_source(at.source.clone(), at.value.chars().count())
                .help("write the date as `2020-05-12 20:00:00 -0000` (or `2020-05-12`)")
        })?),
        None => None,
    };
    if let (Some(u), Some(at)) = (updated, &fields.updated)
        && !date_in_range(u)
    {
        return Err(out_of_range(&at.value, "updated")
            .in_file(path)
            .at(at.line, at.column)
            .with_source(at.source.clone(), at.value.chars().count()));
    }

    if let (Some(fm_slug), Some((_, name_slug))) = (&fields.slug, from_name)
        && fm_slug != name_slug
        && *fm_slug != stem
    {
        let at = front_matter::locate(&fm.yaml, fm.first_line, "slug");
        let mut d = Diagnostic::warning(
            "slug-mismatch",
            format!(
                "slug `{fm_slug}` disagrees with the file name `{}`",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
        )
        .in_file(path)
        .help(format!(
            "rename the file to `{}` (keep the slug: published feed ids are built from it)",
            suggested_file_name(&stem, fm_slug, path)
        ));
        if let Some(at) = at {
            d = d.at(at.line, at.value_column).with_source(at.source, fm_slug.chars().count());
        }
        warnings.push(d);
    }

    let path_part = expand(date, &permalink_pattern);
    let url = site.absolute(&path_part);
    // The site path the id is made from, when it is made from one.
    let id_path = match &fields.id {
        Some(id) if id.contains(':') => None,
        Some(id) => Some(id.clone()),
        None => match id_rule {
            "permalink" => None,
            // jekyll-feed: `post.id` = dirname(url) joined with the slug (or the file's
            // whole base name), made absolute.
            "jekyll" => {
                let tail = fields.slug.as_deref().unwrap_or(&stem);
                let dir = permalink::dirname(&path_part);
                Some(if dir.ends_with('/') { format!("{dir}{tail}") } else { format!("{dir}/{tail}") })
            }
            pattern => Some(expand(date, pattern)),
        },
    };
    // No URL or id may climb out of the site with `..`.
    for (what, value) in [("URL", Some(&path_part)), ("feed id", id_path.as_ref())] {
        let Some(value) = value.filter(|v| permalink::climbs(v)) else { continue };
        let key = if fields.id.is_some() && what == "feed id" {
            "id"
        } else if fields.permalink.as_deref().is_some_and(permalink::climbs) {
            "permalink"
        } else {
            "slug"
        };
        let mut d =
            Diagnostic::error("climbs-out", format!("the post's {what} `{value}` climbs out of the site (`..`)"))
                .in_file(path)
                .help(format!("remove the `..` from `{key}`: a post's {what} must lie below `{}`", site.base_url));
        match front_matter::locate(&fm.yaml, fm.first_line, key) {
            Some(at) => {
                let len = at.source.chars().count().saturating_sub(at.value_column - 1).max(1);
                d = d.at(at.line, at.value_column).with_source(at.source, len);
            }
            None => d = d.help(format!("rename the file: its name gives the slug `{slug}`, which has a `..` segment")),
        }
        return Err(d);
    }
    let id = match (&fields.id, id_path) {
        (Some(id), None) => id.clone(),
        (_, Some(p)) => site.absolute(&p),
        (None, None) => url.clone(),
    };

    let post = Post {
        source: path.to_path_buf(),
        file_stem: stem.clone(),
        title,
        date,
        updated,
        slug_from_front_matter: fields.slug.is_some(),
        slug,
        path: path_part,
        url,
        id,
        authors: fields.authors,
        tags: fields.tags,
        categories: fields.categories,
        summary: fields.summary,
        layout: fields.layout,
        published: fields.published,
        extra: fields.extra,
        body_start: fm.body_start,
        date_line: fields.date.as_ref().map_or(0, |d| d.line),
    };
    let warnings = warnings.into_iter().map(|d| if d.file.is_none() { d.in_file(path) } else { d }).collect();
    Ok((post, warnings))
}

/// Dates feeds and mail can carry: RFC 822/3339 years have four digits, and a date
/// before the Unix epoch (year 0 from a typo) is never a real issue's.
fn date_in_range(d: DateTime<FixedOffset>) -> bool {
    use chrono::Datelike;
    (1970..=9999).contains(&d.year()) && d.timestamp() >= 0
}

fn out_of_range(value: &str, key: &str) -> Diagnostic {
    Diagnostic::error(
        "bad-date",
        format!("`{}` is out of range: feeds and mail carry dates from 1970 to 9999", value.trim()),
    )
    .help(format!("write the issue's real date, e.g. `{key}: 2020-05-12 20:00:00 -0000`"))
}

/// The file name that would agree with a front-matter slug.
fn suggested_file_name(stem: &str, slug: &str, path: &Path) -> String {
    let ext = path.extension().map_or("md".into(), |e| e.to_string_lossy());
    if split_file_stem(slug).is_some() { format!("{slug}.{ext}") } else { format!("{}-{slug}.{ext}", &stem[..10]) }
}

fn midnight(day: NaiveDate, tz: chrono_tz::Tz) -> DateTime<FixedOffset> {
    let naive = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&naive).earliest().unwrap_or_else(|| tz.from_utc_datetime(&naive)).fixed_offset()
}

fn split_error(e: SplitError) -> Diagnostic {
    match e {
        SplitError::NoOpeningFence(first) => {
            let d = Diagnostic::error("no-front-matter", "this post has no front matter")
                .at(1, 1)
                .help("start the file with a `---` line, then `title:` and `date:` lines, then another `---`");
            if first.is_empty() { d } else { d.with_source(first.clone(), first.chars().count()) }
        }
        SplitError::Unclosed(lines) => {
            Diagnostic::error("unclosed-front-matter", "the front matter is never closed").at(1, 1).help(format!(
                "add a `---` line after the last front-matter key (the file has {lines} lines and none is `---`)"
            ))
        }
        SplitError::NotUtf8(line) => Diagnostic::error("not-utf8", "the front matter is not valid UTF-8")
            .at(line, 1)
            .help("save the file as UTF-8"),
        SplitError::Io(e) => Diagnostic::error("unreadable", format!("cannot read this post: {e}")),
    }
}

/// Two posts with one slug, URL or feed id would overwrite each other in every reader.
/// Keys are compared by hash first; the rare matches are confirmed by reloading both
/// posts, so no key strings are held for the whole archive.
fn duplicates(files: &[PathBuf], mut keys: Vec<(u8, u64, u32)>, config: &Config) -> Vec<Diagnostic> {
    // What collides, the front-matter key that may have written it, and what to do.
    const WHAT: [(&str, &str, &str); 3] = [
        ("slug", "slug", "give each post its own `slug:`"),
        ("permalink", "permalink", "two posts on one day need a permalink with `:slug`, or a `permalink:` in one post"),
        ("feed id", "id", "give one of the posts its own `id:` in its front matter"),
    ];
    keys.sort_unstable();
    let mut out = Vec::new();
    let mut reloaded: HashMap<u32, Option<Post>> = HashMap::new();
    let mut post_at = |i: u32| -> Option<Post> {
        reloaded
            .entry(i)
            .or_insert_with(|| load_post(&files[i as usize], &config.site, &config.feeds.id).ok().map(|(p, _)| p))
            .clone()
    };
    for run in keys.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1).filter(|run| run.len() > 1) {
        let kind = run[0].0 as usize;
        let value = |p: &Post| match kind {
            0 => p.slug.clone(),
            1 => p.path.clone(),
            _ => p.id.clone(),
        };
        // Files in path order; each later file is reported against the first with the same value.
        let mut firsts: Vec<(String, PathBuf)> = Vec::new();
        for &(_, _, i) in run {
            let Some(p) = post_at(i) else { continue };
            let v = value(&p);
            match firsts.iter().find(|(fv, _)| *fv == v) {
                Some((_, first)) => {
                    let (what, key, help) = WHAT[kind];
                    let d =
                        Diagnostic::error("duplicate", format!("{what} `{v}` is also used by `{}`", first.display()))
                            .in_file(&p.source)
                            .help(help);
                    // Both files, at the key when the front matter writes it.
                    let d = match key_in_file(&p.source, key) {
                        Some((line, column, src, len)) => d.at(line, column).with_source(src, len),
                        None => d.at(1, 1),
                    };
                    let label = format!("the {what} is first used here");
                    let also = match key_in_file(first, key) {
                        Some((line, column, src, len)) => {
                            Location::new(first, label).at(line, column).with_source(src, len)
                        }
                        None => Location::new(first, label),
                    };
                    out.push(d.also(also));
                }
                None => firsts.push((v, p.source.clone())),
            }
        }
    }
    out
}

/// Where `key:` is written in the front matter of `path`: its line, the column of its
/// value, the line's text and the value's length as written. Read again only for the
/// rare duplicate.
fn key_in_file(path: &Path, key: &str) -> Option<(usize, usize, String, usize)> {
    let file = File::open(path).ok()?;
    let fm = split::split(BufReader::with_capacity(4096, file)).ok()?;
    let at = front_matter::locate(&fm.yaml, fm.first_line, key)?;
    let len = at.source.trim_end().chars().count().saturating_sub(at.value_column - 1);
    Some((at.line, at.value_column, at.source.to_string(), len.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn site() -> Site {
        Site {
            title: "T".into(),
            description: String::new(),
            base_url: "https://lwkd.info".into(),
            language: "en".into(),
            timezone: "UTC".into(),
            tz: chrono_tz::UTC,
            permalink: "/:year/:year:month:day".into(),
            author: None,
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(text.as_bytes()).unwrap();
        p
    }

    #[test]
    fn file_name_supplies_date_and_slug() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "2018-01-14-update.md", "---\ntitle: Week Ending January 14, 2018\n---\nBody\n");
        let (post, w) = load_post(&p, &site(), "permalink").unwrap();
        assert!(w.is_empty());
        assert_eq!(post.date.to_rfc3339(), "2018-01-14T00:00:00+00:00");
        assert_eq!(post.slug, "update");
        assert_eq!(post.url, "https://lwkd.info/2018/20180114");
        assert_eq!(read_body(&post).unwrap(), "Body\n");
    }

    #[test]
    fn front_matter_wins_and_jekyll_ids() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "2020-05-10-update.md",
            "---\ntitle: T\ndate: 2020-05-12 20:00:00 -0000\nslug: 2020-05-10-update\n---\nB",
        );
        let (post, w) = load_post(&p, &site(), "jekyll").unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(post.slug, "2020-05-10-update");
        assert_eq!(post.url, "https://lwkd.info/2020/20200512");
        assert_eq!(post.id, "https://lwkd.info/2020/2020-05-10-update");
        let (post, _) = load_post(&p, &site(), "/:year/:slug").unwrap();
        assert_eq!(post.id, "https://lwkd.info/2020/2020-05-10-update");
    }

    #[test]
    fn jekyll_id_without_slug_uses_whole_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "2018-01-14-update.md", "---\ntitle: T\n---\n");
        let (post, _) = load_post(&p, &site(), "jekyll").unwrap();
        assert_eq!(post.id, "https://lwkd.info/2018/2018-01-14-update");
    }

    #[test]
    fn bad_dates_say_what_jekyll_did() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "2022-02-27-update.md", "---\ntitle: T\ndate: 2022-02-29 07:10:00 -0000\n---\n");
        let e = load_post(&p, &site(), "permalink").unwrap_err();
        assert_eq!((e.line, e.column), (3, 7));
        assert_eq!(
            e.help.unwrap(),
            "Jekyll read this as 2022-03-01 07:10:00 +0000 and published the post at /2022/20220301; write `date: 2022-03-01 07:10:00 +0000` to keep that URL"
        );
        let p = write(dir.path(), "2024-04-14-update.md", "---\ntitle: T\ndate: 2024-04-17 14:4g5:00 -0000\n---\n");
        let e = load_post(&p, &site(), "permalink").unwrap_err();
        assert!(e.help.unwrap().contains("2024-04-17 14:04:00 +0000"));
    }

    #[test]
    fn missing_title_date_and_front_matter_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "notes.md", "---\ntitle: T\n---\n");
        assert_eq!(load_post(&p, &site(), "permalink").unwrap_err().code, "no-date");
        let p = write(dir.path(), "2020-01-01-a.md", "---\ndate: 2020-01-01\n---\n");
        assert_eq!(load_post(&p, &site(), "permalink").unwrap_err().code, "no-title");
        let p = write(dir.path(), "2020-01-01-b.md", "# Just markdown\n");
        let e = load_post(&p, &site(), "permalink").unwrap_err();
        assert_eq!(e.code, "no-front-matter");
        assert_eq!(e.file.as_deref(), Some(p.as_path()));
    }

    #[test]
    fn slug_that_disagrees_with_the_file_name_warns() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "2024-03-24-update.md",
            "---\ntitle: T\ndate: 2024-03-27\nslug: 2024-03-27-update\n---\n",
        );
        let (_, w) = load_post(&p, &site(), "permalink").unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].code, "slug-mismatch");
        assert_eq!(w[0].line, 4);
    }

    fn config_for(dir: &Path) -> Config {
        let text = "[site]\ntitle = \"T\"\nbase_url = \"https://lwkd.info\"\nposts = \".\"\npermalink = \"/:year/:year:month:day\"\n";
        crate::config::parse(text, &dir.join("config.toml")).unwrap()
    }

    #[test]
    fn duplicates_are_errors_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "2020-05-10-a.md", "---\ntitle: A\ndate: 2020-05-12\nslug: same\n---\n");
        write(dir.path(), "2020-05-11-b.md", "---\ntitle: B\ndate: 2020-05-12\nslug: same\n---\n");
        write(dir.path(), "2020-05-13-c.md", "---\ntitle: C\n---\n");
        let config = config_for(dir.path());
        let loaded = load(&config);
        let dups: Vec<_> = loaded.report.diagnostics.iter().filter(|d| d.code == "duplicate").collect();
        // Same slug, same permalink (same day) and, from the permalink, the same id.
        assert_eq!(dups.len(), 3, "{dups:#?}");
        assert!(dups.iter().all(|d| d.file.as_deref() == Some(dir.path().join("2020-05-11-b.md").as_path())));
        assert!(dups[0].message.contains("2020-05-10-a.md"), "{}", dups[0].message);
        assert_eq!(loaded.archive.posts.len(), 3);
    }

    #[test]
    fn a_duplicate_slug_points_at_the_slug_in_both_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "2020-05-10-a.md", "---\ntitle: A\ndate: 2020-05-10\nslug: same\n---\n");
        write(dir.path(), "2020-05-17-b.md", "---\ntitle: B\nslug:   same\ndate: 2020-05-17\n---\n");
        let loaded = load(&config_for(dir.path()));
        let dups: Vec<_> = loaded.report.diagnostics.iter().filter(|d| d.code == "duplicate").collect();
        assert_eq!(dups.len(), 1, "{dups:#?}");
        let d = dups[0];
        assert_eq!(d.file.as_deref(), Some(dir.path().join("2020-05-17-b.md").as_path()));
        assert_eq!((d.line, d.column, d.span_len, d.source_line.as_deref()), (3, 9, 4, Some("slug:   same")));
        assert_eq!(d.also.len(), 1, "{d:#?}");
        let first = &d.also[0];
        assert_eq!(first.file, dir.path().join("2020-05-10-a.md"));
        assert_eq!((first.line, first.column, first.span_len), (4, 7, 4));
        assert_eq!(first.source_line.as_deref(), Some("slug: same"));
        let text = d.render(Some(dir.path()));
        assert!(text.starts_with("2020-05-17-b.md:3:9: error: slug `same` is also used by"), "{text}");
        assert!(text.contains("\n --> 2020-05-10-a.md:4:7\n"), "{text}");
        assert!(text.contains("4 | slug: same\n  |       ----\n"), "{text}");
    }

    #[test]
    fn newest_keeps_only_the_newest_published() {
        let dir = tempfile::tempdir().unwrap();
        for day in 1..=9 {
            write(dir.path(), &format!("2020-01-0{day}-p.md"), "---\ntitle: P\n---\n");
        }
        write(dir.path(), "2020-01-10-draft.md", "---\ntitle: D\npublished: false\n---\n");
        write(dir.path(), "2999-01-01-future.md", "---\ntitle: F\n---\n");
        let config = config_for(dir.path());
        let sel = Selection { drafts: false, future: false, now: chrono::Utc::now().fixed_offset() };
        let loaded = load_newest(&config, sel, 3);
        assert!(loaded.report.diagnostics.is_empty(), "{:?}", loaded.report);
        let days: Vec<_> = loaded.archive.posts.iter().map(|p| p.file_stem.as_str()).collect();
        assert_eq!(days, ["2020-01-07-p", "2020-01-08-p", "2020-01-09-p"]);
        let sel = Selection { drafts: true, future: true, ..sel };
        let loaded = load_newest(&config, sel, 2);
        let days: Vec<_> = loaded.archive.posts.iter().map(|p| p.file_stem.as_str()).collect();
        assert_eq!(days, ["2020-01-10-draft", "2999-01-01-future"]);
    }

    #[test]
    fn dates_before_1970_are_errors_at_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "2020-01-01-a.md", "---\ntitle: T\ndate: 0000-01-01\n---\n");
        let e = load_post(&p, &site(), "permalink").unwrap_err();
        assert_eq!((e.code, e.line, e.column), ("bad-date", 3, 7));
        assert_eq!(e.message, "`0000-01-01` is out of range: feeds and mail carry dates from 1970 to 9999");
        let p = write(dir.path(), "2020-01-02-b.md", "---\ntitle: T\ndate: 1970-01-01 00:30:00 +0100\n---\n");
        assert_eq!(load_post(&p, &site(), "permalink").unwrap_err().line, 3);
        let p = write(dir.path(), "2020-01-03-c.md", "---\ntitle: T\nupdated: 1969-12-31\n---\n");
        assert_eq!(load_post(&p, &site(), "permalink").unwrap_err().line, 3);
        let p = write(dir.path(), "0000-01-01-x.md", "---\ntitle: T\n---\n");
        let e = load_post(&p, &site(), "permalink").unwrap_err();
        assert!(e.message.starts_with("the file name's date `0000-01-01` is out of range"), "{}", e.message);
        let p = write(dir.path(), "1970-01-01-epoch.md", "---\ntitle: T\n---\n");
        assert!(load_post(&p, &site(), "permalink").is_ok());
    }

    #[test]
    fn slugs_permalinks_and_ids_may_not_climb_out_of_the_site() {
        let dir = tempfile::tempdir().unwrap();
        let site = Site { permalink: "/:title/".into(), ..site() };
        let p = write(dir.path(), "2020-01-01-a.md", "---\ntitle: T\nslug: ../../etc/passwd\n---\n");
        let e = load_post(&p, &site, "permalink").unwrap_err();
        assert_eq!((e.code, e.line, e.column), ("climbs-out", 3, 7));
        assert_eq!(e.message, "the post's URL `/../../etc/passwd/` climbs out of the site (`..`)");
        let p = write(dir.path(), "2020-01-02-b.md", "---\ntitle: T\npermalink: /x/%2e%2e/y\n---\n");
        assert_eq!(load_post(&p, &site, "permalink").unwrap_err().line, 3);
        let p = write(dir.path(), "2020-01-03-c.md", "---\ntitle: T\nid: ../elsewhere\n---\n");
        assert_eq!(
            load_post(&p, &site, "permalink").unwrap_err().message,
            "the post's feed id `../elsewhere` climbs out of the site (`..`)"
        );
        let p = write(dir.path(), "2020-01-04-...md", "---\ntitle: T\n---\n");
        let e = load_post(&p, &site, "permalink").unwrap_err();
        assert_eq!((e.code, e.line), ("climbs-out", 0));
        // `:slug` slugifies, so the URL is fine; jekyll ids use the slug as written.
        let site = Site { permalink: "/:year/:slug/".into(), ..site };
        let p = write(dir.path(), "2020-01-05-e.md", "---\ntitle: T\nslug: a/../../b\n---\n");
        assert!(load_post(&p, &site, "permalink").is_ok());
        assert_eq!(load_post(&p, &site, "jekyll").unwrap_err().line, 3);
    }

    #[test]
    fn stem_split() {
        assert_eq!(split_file_stem("2020-05-10-update"), Some((NaiveDate::from_ymd_opt(2020, 5, 10), "update")));
        assert_eq!(split_file_stem("2022-02-30-x"), Some((None, "x")));
        assert_eq!(split_file_stem("notes"), None);
    }
}
