//! `newsdesk new`: the next issue's post, scaffolded from the template with its title,
//! date, slug and file name computed the way the archive names them, so none of them is
//! typed by hand.
//!
//! The rule (checked against the LWKD archive by `tests/corpus.rs`): an issue is named
//! for the last day of its week (`[new] week_ends`, Sunday by default): title `Week
//! Ending August 16, 2026`, slug and file name `2026-08-16-update`. It is dated when it
//! goes out: the first `publish_weekday` after that day, at `publish_time`, in `[site]
//! timezone`.

use crate::config::Config;
use crate::diag::Diagnostic;
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone};
use serde::Serialize;
use std::path::PathBuf;

/// The built-in post template (the repository's `post.md`).
pub const BUILTIN_TEMPLATE: &str = include_str!("../../post.md");

/// What `new` makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Planned {
    /// The week's last day: the name.
    pub week_ending: NaiveDate,
    /// When it goes out (RFC 3339, in the site's timezone).
    pub publish: String,
    /// The same, as a time.
    #[serde(skip)]
    pub publish_at: DateTime<FixedOffset>,
    pub title: String,
    pub slug: String,
    /// The file in `posts/`.
    pub file: PathBuf,
}

/// The last day of the week `day` is in: `day` itself or the next `week_ends`.
pub fn week_ending(day: NaiveDate, week_ends: chrono::Weekday) -> NaiveDate {
    let ahead = (7 + week_ends.num_days_from_monday() as i64 - day.weekday().num_days_from_monday() as i64) % 7;
    day + Duration::days(ahead)
}

/// Title, slug, file name and publication time of the issue of the week `day` is in.
pub fn plan(config: &Config, day: NaiveDate) -> Planned {
    let n = &config.new;
    let week_end = week_ending(day, n.week_end_day.unwrap_or(chrono::Weekday::Sun));
    let publish_day = n.publish_day.unwrap_or(chrono::Weekday::Thu);
    // The first publish_weekday after the week's end (a week later when it is the same day).
    let mut publish_date = week_end + Duration::days(1);
    while publish_date.weekday() != publish_day {
        publish_date += Duration::days(1);
    }
    let time = n.publish_at.unwrap_or_default();
    let local = publish_date.and_time(time);
    let tz = config.site.tz;
    // A time skipped by a DST change is moved on by an hour; a repeated one takes the first.
    let publish_at = tz
        .from_local_datetime(&local)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(local + Duration::hours(1))).earliest())
        .map(|t| t.fixed_offset())
        .unwrap_or_else(|| local.and_utc().fixed_offset());
    let slug = format!("{}-update", week_end.format("%Y-%m-%d"));
    Planned {
        week_ending: week_end,
        publish: publish_at.to_rfc3339(),
        publish_at,
        title: format!("Week Ending {} {}, {}", week_end.format("%B"), week_end.day(), week_end.year()),
        file: PathBuf::from(format!("{slug}.md")),
        slug,
    }
}

/// What `newsdesk new` was asked for.
#[derive(Debug, Clone)]
pub struct NewOptions {
    /// `--date`: any day of the wanted week. Without it: the next issue to go out, the
    /// first week whose go-out time is still ahead and that has no post yet.
    pub date: Option<NaiveDate>,
    pub now: DateTime<FixedOffset>,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub path: PathBuf,
    #[serde(flatten)]
    pub planned: Planned,
}

/// Writes the next issue's post; never overwrites a file.
pub fn create(config: &Config, options: &NewOptions) -> Result<Created, Diagnostic> {
    let planned = match options.date {
        // Years the archive's names and dates can hold (and no date arithmetic overflows).
        Some(day) if !(1000..=9999).contains(&day.year()) => {
            return Err(Diagnostic::error("bad-date", format!("`--date {day}` is outside the years 1000 to 9999"))
                .help("pick a day of the issue's week, e.g. `--date 2026-08-16`"));
        }
        Some(day) => plan(config, day),
        None => {
            let week_ends = config.new.week_end_day.unwrap_or(chrono::Weekday::Sun);
            // From the week that ended last (its issue may still be due), the first
            // whose issue has not gone out and has no post: a week that was skipped
            // stays skipped.
            let today = options.now.with_timezone(&config.site.tz).date_naive();
            let mut day = week_ending(today, week_ends) - Duration::days(7);
            let mut p = plan(config, day);
            while p.publish_at <= options.now || config.posts_dir.join(&p.file).exists() {
                day += Duration::days(7);
                p = plan(config, day);
            }
            p
        }
    };
    let path = config.posts_dir.join(&planned.file);
    let template_path = config.resolve(&config.new.template);
    let template = match std::fs::read_to_string(&template_path) {
        Ok(t) => t,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound && config.new.template == std::path::Path::new("post.md") =>
        {
            BUILTIN_TEMPLATE.to_string()
        }
        Err(e) => {
            return Err(crate::config::config_diagnostic(
                config,
                "new",
                "template",
                Diagnostic::error(
                    "new-template",
                    format!("cannot read the post template `{}`: {e}", template_path.display()),
                )
                .help("point `[new] template` at a markdown file, or remove it to use the built-in template"),
            ));
        }
    };
    let text = render(&template, &planned).map_err(|e| {
        Diagnostic::error("new-template", format!("the post template does not render: {e}"))
            .in_file(&template_path)
            .help("the template can use title, slug, week_ending and publish, and `| date(\"%B %-d, %Y\")`")
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            Diagnostic::error("new-write", format!("cannot create the posts folder `{}`: {e}", dir.display()))
        })?;
    }
    // Written whole beside it, then linked into place only if no file is there: a
    // failed write leaves nothing half-written, and an existing post is never replaced.
    let write_err =
        |e: std::io::Error| Diagnostic::error("new-write", format!("cannot write `{}`: {e}", path.display()));
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).and_then(|_| tmp.as_file().sync_all()).map_err(write_err)?;
    match tmp.persist_noclobber(&path) {
        Ok(_) => {}
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Diagnostic::error(
                "post-exists",
                format!(
                    "this post exists already: the issue for the week ending {} has been started",
                    planned.week_ending
                ),
            )
            .in_file(&path)
            .help("edit that file, or pick another week with `--date YYYY-MM-DD`"));
        }
        Err(e) => return Err(write_err(e.error)),
    }
    Ok(Created { path, planned })
}

/// The template with the values; `date(fmt)` formats a date or a time.
pub fn render(template: &str, planned: &Planned) -> Result<String, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    // A post ends with a newline, as its template does.
    let syntax = minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).build()?;
    env.set_syntax(syntax);
    env.add_filter("date", |value: String, format: String| -> Result<String, minijinja::Error> {
        use std::fmt::Write;
        let mut out = String::new();
        let bad =
            |_| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("bad date format `{format}`"));
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&value) {
            write!(out, "{}", t.format(&format)).map_err(bad)?;
        } else if let Ok(d) = NaiveDate::parse_from_str(&value, "%Y-%m-%d") {
            write!(out, "{}", d.format(&format)).map_err(bad)?;
        } else {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("`{value}` is not a date (YYYY-MM-DD) or a time (RFC 3339)"),
            ));
        }
        Ok(out)
    });
    env.add_template("post", template)?;
    env.get_template("post")?.render(minijinja::context! {
        title => &planned.title,
        slug => &planned.slug,
        week_ending => planned.week_ending.to_string(),
        publish => &planned.publish,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_ends_on_its_last_day() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 2026-08-16 is a Sunday.
        assert_eq!(week_ending(d("2026-08-10"), chrono::Weekday::Sun), d("2026-08-16"));
        assert_eq!(week_ending(d("2026-08-16"), chrono::Weekday::Sun), d("2026-08-16"));
        assert_eq!(week_ending(d("2026-08-17"), chrono::Weekday::Sun), d("2026-08-23"));
        assert_eq!(week_ending(d("2026-08-17"), chrono::Weekday::Fri), d("2026-08-21"));
    }

    #[test]
    fn the_built_in_template_renders_the_archive_s_front_matter() {
        let planned = Planned {
            week_ending: NaiveDate::from_ymd_opt(2026, 8, 16).unwrap(),
            publish: "2026-08-20T22:00:00+00:00".into(),
            publish_at: chrono::DateTime::parse_from_rfc3339("2026-08-20T22:00:00+00:00").unwrap(),
            title: "Week Ending August 16, 2026".into(),
            slug: "2026-08-16-update".into(),
            file: "2026-08-16-update.md".into(),
        };
        let text = render(BUILTIN_TEMPLATE, &planned).unwrap();
        assert!(
            text.starts_with("---\nlayout: post\ntitle: Week Ending August 16, 2026\ndate: 2026-08-20 22:00:00 +0000\nslug: 2026-08-16-update\n---\n\n## Developer News\n"),
            "{text}"
        );
        assert!(text.ends_with("#shoutouts channel.\n"), "{text:?}");
        let custom =
            render("{{ week_ending | date(\"%B %-d, %Y\") }} / {{ publish | date(\"%A %H:%M\") }}", &planned).unwrap();
        assert_eq!(custom, "August 16, 2026 / Thursday 22:00");
        assert!(render("{{ title | date(\"%Y\") }}", &planned).is_err());
    }
}
