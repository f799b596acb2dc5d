//! Sizes, durations and ages in words, the way the screens show them: one formatter for every
//! front end (screens, headless lines, checklist notes). Pure.

use std::time::Duration;

/// "1.2 GB", "640.0 MB", "512 bytes" (decimal units, as `df -H`).
pub fn bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// "12.9 MB (12,912,345 bytes)": a size in a record, where the exact figure matters too.
pub fn bytes_exact(n: u64) -> String {
    let exact = thousands(i64::try_from(n).unwrap_or(i64::MAX));
    if n < 1000 {
        return format!("{exact} bytes");
    }
    format!("{} ({exact} bytes)", bytes(n))
}

/// A size in round words, for a sentence about a whole database: "640 MB", "1.2 GB".
pub fn bytes_round(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.0} MB", b / 1e6)
    }
}

/// `0.4s`, `12s`, `3m05`: a duration where room is short (sidebar, tables).
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{s:.0}s")
    } else {
        format!("{}m{:02}", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// "0.4 s", "12 s", "3 min 05 s", "1 h 02 min": a duration in a record or a sentence, where
/// there is room for the units.
pub fn duration_words(seconds: f64) -> String {
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

/// "12.3 s": a duration in a sentence.
pub fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// "45 s ago", "12 min ago", "3 h ago": how long ago something began, `s` seconds back.
pub fn age(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s => format!("{} h ago", s / 3600),
    }
}

/// 1234567 → "1,234,567".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A row count as people read it: exact below a million, then "5.2 M", "1.3 bn".
pub fn rows(n: i64) -> String {
    match n {
        n if n < 1_000_000 => thousands(n),
        n if n < 1_000_000_000 => format!("{:.1} M", n as f64 / 1e6),
        n => format!("{:.1} bn", n as f64 / 1e9),
    }
}

/// Names for a message: all of them up to ten, then "… and N more".
pub fn name_list(names: &[String]) -> String {
    const MAX: usize = 10;
    let shown = names
        .iter()
        .take(MAX)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(MAX) {
        0 => shown,
        more => format!("{shown} … and {more} more"),
    }
}

/// How long a session has been connected: `45s`, `12m`, `3h05`, `2d04`.
pub fn age_short(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h{:02}", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}", s / 86_400, s / 3600 % 24),
    }
}

/// Durations in JSON: seconds, to the millisecond.
pub mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
    }
}

/// Optional durations in JSON: seconds, or null.
pub mod secs_opt {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::secs::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_df_h_does() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1_200_000_000), "1.2 GB");
        assert_eq!(bytes(40_300_000_000), "40.3 GB");
        assert_eq!(bytes(64 << 20), "67.1 MB");
        assert_eq!(bytes_round(640_000_000), "640 MB");
        assert_eq!(bytes_round(1_200_000_000), "1.2 GB");
    }

    #[test]
    fn durations_and_ages_are_short() {
        assert_eq!(duration(Duration::from_millis(400)), "0.4s");
        assert_eq!(duration(Duration::from_secs(12)), "12s");
        assert_eq!(duration(Duration::from_secs(185)), "3m05");
        assert_eq!(seconds(Duration::from_millis(12_340)), "12.3 s");
        assert_eq!(age(45), "45 s ago");
        assert_eq!(age(720), "12 min ago");
        assert_eq!(age(3 * 3600 + 5), "3 h ago");
    }

    #[test]
    fn numbers_read_like_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234), "1,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rows(12_345), "12,345");
        assert_eq!(rows(5_234_000), "5.2 M");
        assert_eq!(rows(1_300_000_000), "1.3 bn");
    }

    #[test]
    fn short_ages_read_at_a_glance() {
        assert_eq!(age_short(-5), "0s");
        assert_eq!(age_short(59), "59s");
        assert_eq!(age_short(600), "10m");
        assert_eq!(age_short(3600 + 5 * 60), "1h05");
        assert_eq!(age_short(2 * 86_400 + 4 * 3600), "2d04");
    }
}
