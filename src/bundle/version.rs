//! Application versions: `MAJOR` or `MAJOR.MINOR`, compared numerically.
//!
//! Major versions are reached by clone-and-upgrade steps, minor versions by fixups in place
//! (GNUmed's rules, seeds/002). `2` and `2.0` are the same version.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A version of an application's schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    pub const fn major_only(self) -> Self {
        Self::new(self.major, 0)
    }

    pub fn next_major(self) -> Option<Self> {
        self.major.checked_add(1).map(|m| Self::new(m, 0))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.minor == 0 {
            write!(f, "{}", self.major)
        } else {
            write!(f, "{}.{}", self.major, self.minor)
        }
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a text is not a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{text}\" is not a version: {why} (write MAJOR or MAJOR.MINOR, e.g. 2 or 2.1)")]
pub struct VersionError {
    pub text: String,
    pub why: &'static str,
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |why| VersionError {
            text: text.to_owned(),
            why,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(err("it is empty"));
        }
        let mut parts = trimmed.split('.');
        let major = parse_part(parts.next()).map_err(err)?;
        let minor = match parts.next() {
            Some(p) => parse_part(Some(p)).map_err(err)?,
            None => 0,
        };
        if parts.next().is_some() {
            return Err(err("it has more than two parts"));
        }
        Ok(Self::new(major, minor))
    }
}

fn parse_part(part: Option<&str>) -> Result<u32, &'static str> {
    let part = part.unwrap_or_default();
    if part.is_empty() {
        return Err("a part is empty");
    }
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err("only digits and one dot are allowed");
    }
    part.parse().map_err(|_| "a number is too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().expect("valid version")
    }

    #[test]
    fn compares_numerically_not_as_text() {
        assert!(v("10") > v("9"));
        assert!(v("2.10") > v("2.9"));
        assert!(v("3") > v("2.99"));
        assert_eq!(v("2"), v("2.0"));
    }

    #[test]
    fn displays_without_a_zero_minor() {
        assert_eq!(v("2.0").to_string(), "2");
        assert_eq!(v("2.1").to_string(), "2.1");
        assert_eq!(v(" 7 ").to_string(), "7");
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for bad in [
            "",
            "v2",
            "2.",
            ".1",
            "2.1.3",
            "-1",
            "+2",
            "2,1",
            "1e3",
            "99999999999",
        ] {
            let e = bad.parse::<Version>().expect_err(bad);
            assert!(e.to_string().contains("is not a version"), "{bad}: {e}");
        }
    }

    #[test]
    fn next_major_drops_the_minor() {
        assert_eq!(v("2.3").next_major(), Some(v("3")));
        assert_eq!(Version::new(u32::MAX, 0).next_major(), None);
    }
}
