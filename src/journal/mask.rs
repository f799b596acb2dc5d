//! A defensive filter that masks anything resembling a password in free text.

const MASK: &str = "***";

/// Masks what looks like a password in free text: `password=…` / `PGPASSWORD=…` /
/// `sslpassword = '…'` / `"password": "…"` (any case, quoted or not) and the password of a URI's
/// `user:password@`. Defensive only — callers never pass passwords — so it errs towards masking
/// too much.
pub fn mask_secrets(text: &str) -> String {
    mask_uri_passwords(&mask_password_keys(text))
}

/// `…password<sep>value` → `…password<sep>***`, where sep is `=` or `:` with optional spaces and
/// a closing quote of the key, and value is quoted (up to its closing quote, honouring `\`
/// escapes) or bare (up to whitespace).
fn mask_password_keys(text: &str) -> String {
    const KEY: &str = "password";
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(KEY) {
        let key_end = search + found + KEY.len();
        search = key_end;
        let Some(value_start) = separator_end(bytes, key_end) else {
            continue;
        };
        let value_end = value_end(bytes, value_start);
        if value_end == value_start {
            continue;
        }
        let (open, close) = quoted_span(bytes, value_start, value_end);
        out.push_str(&text[copied..open]);
        out.push_str(MASK);
        copied = close;
        search = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// After a key: an optional closing quote, spaces, `=` or `:`, spaces. Returns where the value
/// starts, or None when no separator follows.
fn separator_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    if matches!(bytes.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    while bytes.get(i).is_some_and(|b| *b == b' ' || *b == b'\t') {
        i += 1;
    }
    if !matches!(bytes.get(i), Some(b'=' | b':')) {
        return None;
    }
    i += 1;
    while bytes.get(i).is_some_and(|b| *b == b' ' || *b == b'\t') {
        i += 1;
    }
    Some(i)
}

/// Where a value starting at `i` ends: after its closing quote, or at whitespace.
fn value_end(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i) {
        Some(q @ (b'"' | b'\'')) => {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != *q {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(bytes.len())
        }
        _ => {
            let mut j = i;
            while j < bytes.len() && !bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            j
        }
    }
}

/// The part of a value to replace: inside the quotes when quoted (the quotes stay).
fn quoted_span(bytes: &[u8], start: usize, end: usize) -> (usize, usize) {
    let quoted = matches!(bytes.get(start), Some(b'"' | b'\''))
        && end >= start + 2
        && bytes.get(end - 1) == bytes.get(start);
    if quoted {
        (start + 1, end - 1)
    } else {
        (start, end)
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`. The user part runs from `://` to
/// the last `@` before whitespace, so a password containing `/` or `@` is masked whole.
fn mask_uri_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let after = pos + 3;
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let token_end = rest
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '<' || c == '>')
            .unwrap_or(rest.len());
        let token = &rest[..token_end];
        match token
            .rfind('@')
            .and_then(|at| Some((token[..at].find(':')?, at)))
        {
            Some((colon, at)) if at > colon + 1 => {
                out.push_str(&token[..=colon]);
                out.push_str(MASK);
                out.push_str(&token[at..]);
            }
            _ => out.push_str(token),
        }
        rest = &rest[token_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_mask_hides_keyword_passwords() {
        let cases = [
            (
                "host=db password=s3cret user=x",
                "host=db password=*** user=x",
            ),
            ("PGPASSWORD=s3cret pg_dump", "PGPASSWORD=*** pg_dump"),
            (
                "password = 'a b\\' c' dbname=x",
                "password = '***' dbname=x",
            ),
            ("sslpassword=k", "sslpassword=***"),
            (
                r#"{"password":"hunter2","user":"x"}"#,
                r#"{"password":"***","user":"x"}"#,
            ),
            ("Password: hunter2", "Password: ***"),
            (
                "password authentication failed for user \"x\"",
                "password authentication failed for user \"x\"",
            ),
            ("no password", "no password"),
            ("password=", "password="),
            ("é password=ü€ é", "é password=*** é"),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_secrets(input), expected, "{input}");
        }
    }

    #[test]
    fn journal_mask_hides_uri_passwords() {
        let cases = [
            (
                "postgres://alice:s3cret@db:5432/clinic",
                "postgres://alice:***@db:5432/clinic",
            ),
            (
                "connect to postgresql://u:p%40ss@h/db now",
                "connect to postgresql://u:***@h/db now",
            ),
            ("postgres://u:pa/ss@host/db", "postgres://u:***@host/db"),
            ("postgres://u:p@ss@host/db", "postgres://u:***@host/db"),
            ("postgres://alice@db/clinic", "postgres://alice@db/clinic"),
            ("http://db:8080/x", "http://db:8080/x"),
            (
                "'postgres://a:b@h' and postgres://c:d@h",
                "'postgres://a:***@h' and postgres://c:***@h",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_secrets(input), expected, "{input}");
        }
    }
}
