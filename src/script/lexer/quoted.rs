//! The parts of the lexer that skip over quoted text and comments: strings (with SQL's
//! continuation across line breaks), quoted identifiers, dollar-quoted bodies, comments. Each
//! records the `@NAME@`s it contains with their context, except comments, where placeholders are
//! left alone.

use super::super::directive::is_known_ignoring_case;
use super::{
    Lexer, PlaceholderContext, SplitError, StrKind, is_horiz_space, is_ident_start, is_newline,
    is_space, is_tag_cont,
};

/// How a kind of quoted text is written: what [`Lexer::quoted`] needs to skip over it.
struct Quoting {
    quote: char,
    /// `E'…'`: a backslash escapes the character after it.
    backslash_escapes: bool,
    /// A string continues across a line break (`'a'\n'b'`); a quoted identifier does not.
    continues: bool,
    /// The context of the `@NAME@`s inside.
    context: PlaceholderContext,
    /// The message when the closing quote is missing.
    unterminated: &'static str,
}

impl Lexer<'_> {
    pub(super) fn line_comment(&mut self) -> Result<(), SplitError> {
        let start = self.i;
        let end = self.line_end(start);
        // A directive written after code on the same line would silently become a comment.
        // (Comments at the start of a line were looked at by `line_start`; here only a known
        // directive name counts, so that `-- #If you change this…` after code stays a comment.)
        let mut k = start + 2;
        while k < end && is_horiz_space(self.c[k]) {
            k += 1;
        }
        if self.at(k) == Some('#') && k < end {
            let name = self.text(k + 1, self.word_end(k + 1).min(end));
            if is_known_ignoring_case(&name) {
                return Err(self.err(
                    k,
                    format!("directive #{name} must stand alone on its own line"),
                ));
            }
        }
        self.i = end;
        Ok(())
    }

    pub(super) fn block_comment(&mut self) -> Result<(), SplitError> {
        let open = self.i;
        let mut depth = 0usize;
        let mut k = open + 2;
        loop {
            match (self.at(k), self.at(k + 1)) {
                (None, _) => {
                    return Err(self.err(
                        open,
                        "unterminated /* comment: it runs to the end of the file; close it with */ \
                         (comments nest: each /* needs its own */)"
                            .into(),
                    ));
                }
                (Some('*'), Some('/')) => {
                    k += 2;
                    if depth == 0 {
                        self.i = k;
                        return Ok(());
                    }
                    depth -= 1;
                }
                (Some('/'), Some('*')) => {
                    depth += 1;
                    k += 2;
                }
                _ => k += 1,
            }
        }
    }

    /// A string whose prefix starts at `open` and whose opening quote is at `q`.
    pub(super) fn string(
        &mut self,
        open: usize,
        q: usize,
        kind: StrKind,
    ) -> Result<(), SplitError> {
        let context = match kind {
            StrKind::Standard => PlaceholderContext::String {
                backslash_escapes: false,
            },
            StrKind::Escape => PlaceholderContext::String {
                backslash_escapes: true,
            },
            StrKind::Unicode => PlaceholderContext::UnicodeString,
        };
        self.quoted(
            open,
            q,
            &Quoting {
                quote: '\'',
                backslash_escapes: kind == StrKind::Escape,
                continues: true,
                context,
                unterminated: "unterminated quoted string: it runs to the end of the file; close it \
                               with ' (a quote inside a string is written '')",
            },
        )
    }

    /// SQL continues a string literal over whitespace that contains a line break: `'a'\n'b'` is
    /// `'ab'`. Returns the index of the continuing quote. Follows `{quotecontinue}` in
    /// psqlscan.l: horizontal whitespace and `--` comments, a line break, then any whitespace and
    /// `--` comments that end with a line break.
    pub(super) fn continuation(&self, from: usize) -> Option<usize> {
        let mut k = from;
        loop {
            match (self.at(k), self.at(k + 1)) {
                (Some(c), _) if is_horiz_space(c) => k += 1,
                (Some('-'), Some('-')) => k = self.line_end(k),
                _ => break,
            }
        }
        if !self.at(k).is_some_and(is_newline) {
            return None;
        }
        k += 1;
        loop {
            match (self.at(k), self.at(k + 1)) {
                (Some(c), _) if is_space(c) => k += 1,
                (Some('-'), Some('-')) => {
                    let e = self.line_end(k);
                    if e >= self.c.len() {
                        return None;
                    }
                    k = e + 1;
                }
                _ => break,
            }
        }
        (self.at(k) == Some('\'')).then_some(k)
    }

    pub(super) fn quoted_ident(&mut self, open: usize, q: usize) -> Result<(), SplitError> {
        self.quoted(
            open,
            q,
            &Quoting {
                quote: '"',
                backslash_escapes: false,
                continues: false,
                context: PlaceholderContext::QuotedIdentifier,
                unterminated: "unterminated quoted identifier: it runs to the end of the file; \
                               close it with \" (a quote inside is written \"\")",
            },
        )
    }

    /// Quoted text from just after its opening quote `q` (its prefix at `open`) to its closing
    /// quote: a doubled quote stands for one, and each `@NAME@` is recorded in its context.
    fn quoted(&mut self, open: usize, q: usize, how: &Quoting) -> Result<(), SplitError> {
        let mut k = q + 1;
        loop {
            match self.at(k) {
                None => return Err(self.err(open, how.unterminated.into())),
                Some(c) if c == how.quote && self.at(k + 1) == Some(how.quote) => k += 2,
                Some(c) if c == how.quote => {
                    match how.continues.then(|| self.continuation(k + 1)).flatten() {
                        Some(next_quote) => k = next_quote + 1,
                        None => {
                            self.i = k + 1;
                            return Ok(());
                        }
                    }
                }
                Some('\\') if how.backslash_escapes => k += 2,
                Some('@') => match self.placeholder_at(k) {
                    Some((name, len)) => {
                        self.record_use(k, name, len, how.context.clone());
                        k += len;
                    }
                    None => k += 1,
                },
                Some(_) => k += 1,
            }
        }
    }

    /// `$tag$…$tag$`, `$1`, or a lone `$`.
    pub(super) fn dollar(&mut self) -> Result<(), SplitError> {
        let s = self.i;
        self.begin_token(s);
        self.head_other();
        let mut j = s + 1;
        if self.at(j).is_some_and(is_ident_start) {
            j += 1;
            while self.at(j).is_some_and(is_tag_cont) {
                j += 1;
            }
        }
        if self.at(j) != Some('$') {
            // `$1` (a parameter) or a `$` that opens nothing; psql reads on after the `$`.
            let mut k = s + 1;
            while self.at(k).is_some_and(|c| c.is_ascii_digit()) {
                k += 1;
            }
            self.i = k;
            return Ok(());
        }
        let c = self.c;
        let delim = &c[s..=j];
        let body = j + 1;
        let close = c[body..]
            .windows(delim.len())
            .position(|w| w == delim)
            .map(|p| p + body);
        let Some(close) = close else {
            return Err(self.err(
                s,
                format!(
                    "unterminated dollar-quoted string: no closing {} before the end of the file",
                    self.text(s, j + 1)
                ),
            ));
        };
        let delimiter = self.text(s, j + 1);
        let mut k = body;
        while k < close {
            if self.c[k] == '@'
                && let Some((name, len)) = self.placeholder_at(k)
                && k + len <= close
            {
                let context = PlaceholderContext::DollarQuoted {
                    delimiter: delimiter.clone(),
                };
                self.record_use(k, name, len, context);
                k += len;
            } else {
                k += 1;
            }
        }
        self.i = close + delim.len();
        Ok(())
    }
}
