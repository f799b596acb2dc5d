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

/// "0.4 s", "12 s", "3 min 05 s", "1 h 02 min".
pub(super) fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".to_owned();
    }
    if seconds < 10.0 {
        return format!("{seconds:.1} s");
    }
    let whole = seconds.round() as u64;
    match whole {
        0..60 => format!("{whole} s"),
        60..3600 => format!("{} min {:02} s", whole / 60, whole % 60),
        _ => format!("{} h {:02} min", whole / 3600, whole % 3600 / 60),
    }
}

/// "12.3 MiB (12,912,345 bytes)".
pub(super) fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut exact = String::new();
    let digits = bytes.to_string();
    for (n, ch) in digits.chars().enumerate() {
        if n > 0 && (digits.len() - n).is_multiple_of(3) {
            exact.push(',');
        }
        exact.push(ch);
    }
    if bytes < 1024 {
        return format!("{exact} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit} ({exact} bytes)")
}
