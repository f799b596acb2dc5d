//! The canonical fingerprint text: one line per object attribute, `kind<TAB>identity<TAB>details`,
//! sorted byte-wise, with control characters escaped so that a line is always one line.
//!
//! The text is the reference; its sha256 is the fingerprint. Pure: no database here.

use crate::hex;

/// The first line of every fingerprint text: the format can evolve without silent mismatches.
pub const FORMAT_LINE: &str = "format\tpgstep\t1";

/// Builds the canonical text from catalog rows (kind, identity, details).
pub fn canonical_text(rows: impl IntoIterator<Item = (String, String, String)>) -> String {
    let mut lines: Vec<String> = rows
        .into_iter()
        .map(|(kind, identity, details)| {
            let mut line = format!("{}\t{}", escape(&kind), escape(&identity));
            if !details.is_empty() {
                line.push('\t');
                line.push_str(&escape(&details));
            }
            line
        })
        .collect();
    lines.sort_unstable();
    lines.dedup();
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum::<usize>() + 16);
    text.push_str(FORMAT_LINE);
    text.push('\n');
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// A reference file normalised (CRLF, blank and `#` comment lines dropped) and its hash.
/// Returns an empty text when the file holds no object line.
pub fn canonical_reference(file_text: &str) -> (String, String) {
    let mut text = String::with_capacity(file_text.len());
    for line in file_text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    let hash = hash_of(&text);
    (text, hash)
}

/// Why a reference file is not a fingerprint text, with the 1-based line in the file, if it is
/// not: the text `canonical_text` writes (the format line, then `kind<TAB>identity[<TAB>details]`
/// lines in byte order, each once), with the blank and `#` comment lines a reference may add.
pub fn reference_problem(file_text: &str) -> Option<(u32, String)> {
    let mut format_seen = false;
    let mut previous: Option<&str> = None;
    for (i, line) in file_text.lines().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !format_seen {
            if line != FORMAT_LINE {
                return Some((
                    n,
                    format!(
                        "this is not a pgstep fingerprint text: its first line must be \"{}\"",
                        FORMAT_LINE.replace('\t', "<TAB>")
                    ),
                ));
            }
            format_seen = true;
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let kind_ok = fields.first().is_some_and(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == ' ')
        });
        if !(2..=3).contains(&fields.len()) || !kind_ok || fields[1].is_empty() {
            return Some((
                n,
                "not a fingerprint line: expected kind<TAB>identity<TAB>details (e.g. \
                 \"table<TAB>clinic.patient\")"
                    .to_owned(),
            ));
        }
        if previous.is_some_and(|p| p >= line) {
            return Some((
                n,
                "the lines are not in the order pgstep writes them (sorted, each once): the \
                 text was edited"
                    .to_owned(),
            ));
        }
        previous = Some(line);
    }
    None
}

/// The fingerprint of a canonical text.
pub fn hash_of(text: &str) -> String {
    hex::sha256(text.as_bytes())
}

fn escape(s: &str) -> String {
    if !s.contains(['\\', '\t', '\n', '\r']) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(k: &str, i: &str, d: &str) -> (String, String, String) {
        (k.into(), i.into(), d.into())
    }

    #[test]
    fn order_of_rows_does_not_matter() {
        let a = canonical_text([row("table", "s.b", ""), row("table", "s.a", "")]);
        let b = canonical_text([row("table", "s.a", ""), row("table", "s.b", "")]);
        assert_eq!(a, b);
        assert!(a.starts_with(FORMAT_LINE));
    }

    #[test]
    fn newlines_and_tabs_in_definitions_stay_on_one_line() {
        let t = canonical_text([row("constraint", "s.t.c", "CHECK (x <> 'a\tb\nc\\')")]);
        assert_eq!(t.lines().count(), 2);
        assert!(t.contains("a\\tb\\nc\\\\"), "{t}");
    }

    #[test]
    fn a_written_text_is_a_valid_reference_and_junk_is_not() {
        let text = canonical_text([row("table", "s.b", ""), row("column", "s.b.x", "int")]);
        assert_eq!(reference_problem(&format!("# comment\n\n{text}")), None);
        for v in ["v1", "v2", "v2.1", "v3"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("sql/clinic/fingerprints/{v}.txt"));
            let t = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(reference_problem(&t), None, "{}", path.display());
        }
        assert_eq!(reference_problem("junk\nmore junk\n").map(|p| p.0), Some(1));
        let unsorted = format!("{FORMAT_LINE}\ntable\ts.b\ntable\ts.a\n");
        assert_eq!(reference_problem(&unsorted).map(|p| p.0), Some(3));
        let bad = format!("{FORMAT_LINE}\n\ntable s.a\n");
        assert_eq!(reference_problem(&bad).map(|p| p.0), Some(3));
    }

    #[test]
    fn reference_files_tolerate_comments_crlf_and_blank_lines() {
        let text = canonical_text([row("schema", "s", "")]);
        let (_, want) = canonical_reference(&text);
        let edited = format!(
            "# generated by pgstep\r\n\r\n{}\r\n\r\n",
            text.replace('\n', "\r\n")
        );
        let (norm, got) = canonical_reference(&edited);
        assert_eq!(norm, text);
        assert_eq!(got, want);
        assert_eq!(want, hash_of(&text));
    }
}
