//! How the report writes times, durations and sizes.

pub(super) fn parse_time(at: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(at).ok()
}

pub(super) fn seconds_between(from: &str, to: &str) -> f64 {
    match (parse_time(from), parse_time(to)) {
        (Some(a), Some(b)) => (b - a).num_milliseconds().max(0) as f64 / 1000.0,
        _ => 0.0,
    }
}

/// "2026-05-01 02:15:00 UTC" (or with its offset) from an RFC 3339 time; the text itself if it
/// does not parse.
pub(super) fn when(at: &str) -> String {
    match parse_time(at) {
        Some(t) if t.offset().local_minus_utc() == 0 => {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        }
        Some(t) => t.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
        None => at.to_owned(),
    }
}

/// The time of day of an RFC 3339 time (as recorded, in its own offset); the text itself if
/// it does not parse.
pub(super) fn clock(at: &str) -> String {
    parse_time(at).map_or_else(|| at.to_owned(), |t| t.format("%H:%M:%S").to_string())
}

/// The report's durations and sizes are the one formatter's (`crate::format`).
pub(super) use crate::format::{bytes_exact as size_text, duration_words as duration};
