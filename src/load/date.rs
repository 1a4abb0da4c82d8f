//! Post dates in the forms Jekyll accepts, and, for the ones it should not have
//! accepted, what Jekyll made of them, so an editor can keep the published URL.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

/// Why a date was refused, and what Jekyll (Ruby's `Time.parse`) read instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateError {
    pub message: String,
    /// Jekyll's reading, when Ruby would have accepted the text.
    pub jekyll_reading: Option<DateTime<FixedOffset>>,
}

/// Parses `2020-05-12 20:00:00 -0000`, `2020-05-12 20:00:00`, `2020-05-12`, and RFC 3339.
/// Dates without an offset are in `tz`.
pub fn parse(text: &str, tz: chrono_tz::Tz) -> Result<DateTime<FixedOffset>, DateError> {
    let s = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d);
    }
    let parts = split(s).ok_or_else(|| DateError { message: format!("`{s}` is not a date"), jekyll_reading: None })?;
    let date = NaiveDate::from_ymd_opt(parts.year, parts.month, parts.day);
    let time = parts
        .time
        .as_ref()
        .map(|t| t.clean.and_then(|(h, m, sec)| NaiveTime::from_hms_opt(h, m, sec)))
        .unwrap_or(NaiveTime::from_hms_opt(0, 0, 0));

    match (date, time, parts.offset) {
        (Some(d), Some(t), Ok(offset)) => Ok(localize(d.and_time(t), offset, tz)),
        (_, _, Err(())) => Err(DateError {
            message: format!("`{s}` has an offset that is not `+HHMM`, `+HH:MM` or `Z`"),
            jekyll_reading: None,
        }),
        (date, time, Ok(offset)) => {
            let message = if date.is_none() {
                format!("`{:04}-{:02}-{:02}` is not a day in the calendar", parts.year, parts.month, parts.day)
            } else {
                let raw = parts.time.as_ref().map_or("", |t| t.raw);
                format!("`{raw}` is not a time of day")
            };
            let _ = time;
            Err(DateError { message, jekyll_reading: ruby_reading(&parts).map(|naive| localize(naive, offset, tz)) })
        }
    }
}

fn localize(naive: NaiveDateTime, offset: Option<FixedOffset>, tz: chrono_tz::Tz) -> DateTime<FixedOffset> {
    match offset {
        Some(o) => o.from_utc_datetime(&(naive - o)),
        None => {
            // A wall-clock time in a DST gap has no instant: Ruby moves it forward, so do we.
            let local = tz
                .from_local_datetime(&naive)
                .earliest()
                .or_else(|| tz.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest())
                .unwrap_or_else(|| tz.from_utc_datetime(&naive));
            local.fixed_offset()
        }
    }
}

struct Time<'a> {
    raw: &'a str,
    /// Hour, minute, second when every part is plain digits.
    clean: Option<(u32, u32, u32)>,
    /// What Ruby's parser takes from it: leading digits of each part, stopping at junk.
    lenient: Option<(u32, u32, u32)>,
}

struct Parts<'a> {
    year: i32,
    month: u32,
    day: u32,
    time: Option<Time<'a>>,
    /// `Ok(None)`: no offset written; `Err`: an offset we cannot read.
    offset: Result<Option<FixedOffset>, ()>,
}

fn split(s: &str) -> Option<Parts<'_>> {
    let (date, rest) = match s.find([' ', 'T', 't']) {
        Some(i) => (&s[..i], s[i + 1..].trim_start()),
        None => (s, ""),
    };
    let mut ymd = date.split('-');
    let year: i32 = digits(ymd.next()?, 4)?.parse().ok()?;
    let month: u32 = digits(ymd.next()?, 2)?.parse().ok()?;
    let day: u32 = digits(ymd.next()?, 2)?.parse().ok()?;
    if ymd.next().is_some() {
        return None;
    }
    if rest.is_empty() {
        return Some(Parts { year, month, day, time: None, offset: Ok(None) });
    }
    // The time runs up to whitespace or an offset sign / `Z`.
    let end = rest
        .char_indices()
        .find(|&(i, c)| c.is_whitespace() || ((c == '+' || c == '-' || c == 'Z' || c == 'z') && i > 0))
        .map_or(rest.len(), |(i, _)| i);
    let (raw_time, zone) = (&rest[..end], rest[end..].trim());
    if !raw_time.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let time = Time { raw: raw_time, clean: clean_time(raw_time), lenient: lenient_time(raw_time) };
    Some(Parts { year, month, day, time: Some(time), offset: offset(zone) })
}

fn digits(s: &str, max: usize) -> Option<&str> {
    (!s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

fn clean_time(t: &str) -> Option<(u32, u32, u32)> {
    let mut it = t.split(':');
    let h = digits(it.next()?, 2)?.parse().ok()?;
    let m = digits(it.next()?, 2)?.parse().ok()?;
    let sec = match it.next() {
        // Fractions of a second are dropped: feeds carry whole seconds.
        Some(s) => digits(s.split('.').next()?, 2)?.parse().ok()?,
        None => 0,
    };
    it.next().is_none().then_some((h, m, sec))
}

/// Ruby's `Date._parse` reads `14:4g5:00` as 14:04: each part's leading digits, and
/// nothing after the first part that has junk in it.
fn lenient_time(t: &str) -> Option<(u32, u32, u32)> {
    let mut values = [0u32; 3];
    for (i, part) in t.split(':').take(3).enumerate() {
        let lead: String = part.chars().take_while(char::is_ascii_digit).collect();
        if lead.is_empty() {
            if i < 2 {
                return None;
            }
            break;
        }
        values[i] = lead.parse().ok()?;
        if lead.len() != part.len() {
            break;
        }
    }
    (values[0] < 24 && values[1] < 60 && values[2] < 61).then_some((values[0], values[1], values[2].min(59)))
}

fn offset(zone: &str) -> Result<Option<FixedOffset>, ()> {
    match zone {
        "" => Ok(None),
        "Z" | "z" | "UTC" | "GMT" => Ok(FixedOffset::east_opt(0)),
        _ => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(()),
            };
            let rest: String = zone[1..].chars().filter(|&c| c != ':').collect();
            if rest.len() != 4 && rest.len() != 2 || !rest.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            let h: i32 = rest[..2].parse().map_err(|_| ())?;
            let m: i32 = if rest.len() == 4 { rest[2..].parse().map_err(|_| ())? } else { 0 };
            FixedOffset::east_opt(sign * (h * 3600 + m * 60)).map(Some).ok_or(())
        }
    }
}

/// What Ruby's `Time.parse` makes of a date with a day past the month's end (it rolls
/// into the next month, up to day 31) or a time with junk in it.
fn ruby_reading(p: &Parts) -> Option<NaiveDateTime> {
    if !(1..=12).contains(&p.month) || !(1..=31).contains(&p.day) {
        return None;
    }
    let first = NaiveDate::from_ymd_opt(p.year, p.month, 1)?;
    let date = first + chrono::Duration::days(i64::from(p.day) - 1);
    let (h, m, s) = match &p.time {
        None => (0, 0, 0),
        Some(t) => t.clean.or(t.lenient)?,
    };
    Some(date.and_time(NaiveTime::from_hms_opt(h, m, s)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> chrono_tz::Tz {
        chrono_tz::UTC
    }

    #[test]
    fn jekyll_formats() {
        let d = parse("2020-05-12 20:00:00 -0000", utc()).unwrap();
        assert_eq!(d.to_rfc3339(), "2020-05-12T20:00:00+00:00");
        let d = parse("2020-05-12 20:00:00 +0200", utc()).unwrap();
        assert_eq!(d.to_rfc3339(), "2020-05-12T20:00:00+02:00");
        let d = parse("2020-05-12 20:00:00 -07:00", utc()).unwrap();
        assert_eq!(d.to_rfc3339(), "2020-05-12T20:00:00-07:00");
        let d = parse("2020-05-12 20:00", utc()).unwrap();
        assert_eq!(d.to_rfc3339(), "2020-05-12T20:00:00+00:00");
        let d = parse("2020-05-12", utc()).unwrap();
        assert_eq!(d.to_rfc3339(), "2020-05-12T00:00:00+00:00");
        let d = parse("2020-05-12T20:00:00Z", utc()).unwrap();
        assert_eq!(d.to_rfc3339(), "2020-05-12T20:00:00+00:00");
        let d = parse("2020-05-12T20:00:00.250+05:30", utc()).unwrap();
        assert_eq!(d.timestamp(), 1589293800);
    }

    #[test]
    fn dates_without_offset_use_the_site_timezone() {
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let d = parse("2020-05-12 20:00:00", berlin).unwrap();
        assert_eq!(d.to_rfc3339(), "2020-05-12T20:00:00+02:00");
        let d = parse("2020-01-12", berlin).unwrap();
        assert_eq!(d.to_rfc3339(), "2020-01-12T00:00:00+01:00");
    }

    #[test]
    fn impossible_day_reports_jekylls_rollover() {
        let e = parse("2022-02-29 07:10:00 -0000", utc()).unwrap_err();
        assert_eq!(e.message, "`2022-02-29` is not a day in the calendar");
        assert_eq!(e.jekyll_reading.unwrap().to_rfc3339(), "2022-03-01T07:10:00+00:00");
        let e = parse("2021-04-31", utc()).unwrap_err();
        assert_eq!(e.jekyll_reading.unwrap().to_rfc3339(), "2021-05-01T00:00:00+00:00");
        // Ruby refuses day 32 and month 13 outright.
        assert_eq!(parse("2021-01-32", utc()).unwrap_err().jekyll_reading, None);
        assert_eq!(parse("2021-13-01", utc()).unwrap_err().jekyll_reading, None);
    }

    #[test]
    fn typo_in_time_reports_jekylls_reading() {
        let e = parse("2024-04-17 14:4g5:00 -0000", utc()).unwrap_err();
        assert_eq!(e.message, "`14:4g5:00` is not a time of day");
        assert_eq!(e.jekyll_reading.unwrap().to_rfc3339(), "2024-04-17T14:04:00+00:00");
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in ["yesterday", "2020/05/12", "12-05-2020", "2020-05-12 20:00:00 CEST", ""] {
            assert!(parse(bad, utc()).is_err(), "{bad:?} should not parse");
        }
    }
}
