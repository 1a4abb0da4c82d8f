//! The one timestamp format of the database: UTC, milliseconds, fixed width
//! (`2020-05-10T12:00:00.000Z`), so text order is time order and SQL can compare
//! timestamps as strings.

use chrono::{DateTime, Utc};

/// The stored form of `at`.
pub fn format(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The current time, stored form.
pub fn now() -> String {
    format(Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_so_text_order_is_time_order() {
        let a = format(DateTime::from_timestamp(1_589_313_600, 5_000_000).unwrap());
        let b = format(DateTime::from_timestamp(1_589_313_601, 0).unwrap());
        assert_eq!(a, "2020-05-12T20:00:00.005Z");
        assert_eq!(b, "2020-05-12T20:00:01.000Z");
        assert!(a < b);
    }
}
