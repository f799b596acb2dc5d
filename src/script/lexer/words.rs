//! Words: keywords and identifiers (with psql's tracking of `CREATE FUNCTION … BEGIN ATOMIC`
//! bodies), strings with a letter prefix (`E'…'`, `U&'…'`, …), and numbers.

use super::{Lexer, SplitError, StrKind, is_ident_cont, is_ident_start};

impl Lexer<'_> {
    /// A number. PostgreSQL 16+ reads `123abc` as one (invalid) token; either way the letters
    /// must not be taken for a string prefix such as the E of `E'…'`.
    pub(super) fn number(&mut self) {
        let i = self.i;
        self.begin_token(i);
        self.head_other();
        let mut k = i;
        while self.at(k).is_some_and(|c| c.is_ascii_digit()) {
            k += 1;
        }
        if self.at(k).is_some_and(is_ident_start) {
            while self.at(k).is_some_and(is_ident_cont) {
                k += 1;
            }
        }
        self.i = k;
    }

    /// An identifier or keyword, or a string with a one-letter prefix (E'…', U&'…', …).
    pub(super) fn word(&mut self) -> Result<(), SplitError> {
        let s = self.i;
        let (ch, n1, n2) = (self.c[s], self.at(s + 1), self.at(s + 2));
        self.begin_token(s);
        match (ch.to_ascii_lowercase(), n1, n2) {
            ('e', Some('\''), _) => {
                self.head_other();
                return self.string(s, s + 1, StrKind::Escape);
            }
            ('b' | 'x' | 'n', Some('\''), _) => {
                self.head_other();
                return self.string(s, s + 1, StrKind::Standard);
            }
            ('u', Some('&'), Some('\'')) => {
                self.head_other();
                return self.string(s, s + 2, StrKind::Unicode);
            }
            ('u', Some('&'), Some('"')) => {
                self.head_other();
                return self.quoted_ident(s, s + 2);
            }
            _ => {}
        }
        let mut k = s;
        while self.at(k).is_some_and(is_ident_cont) {
            k += 1;
        }
        self.i = k;
        let upper = self.text(s, k).to_ascii_uppercase();
        self.track_function_body(s, &upper);
        self.head_word(upper);
        Ok(())
    }

    /// psql's heuristic for SQL-standard function bodies: in a statement that starts with
    /// CREATE [OR REPLACE] FUNCTION|PROCEDURE, outside parentheses, BEGIN opens a block, CASE opens
    /// one when already inside a block, and END closes one. A `;` ends the statement only when
    /// no block is open.
    pub(super) fn track_function_body(&mut self, at: usize, upper: &str) {
        let Some(p) = self.stmt.as_mut() else { return };
        let initial = match upper {
            "CREATE" | "FUNCTION" | "PROCEDURE" | "OR" | "REPLACE" => upper.as_bytes()[0],
            _ => 0,
        };
        if p.ident_count < p.initials.len() {
            p.initials[p.ident_count] = initial.to_ascii_lowercase();
        }
        p.ident_count += 1;
        let id = p.initials;
        let creates_routine = id[0] == b'c'
            && (id[1] == b'f'
                || id[1] == b'p'
                || (id[1] == b'o' && id[2] == b'r' && (id[3] == b'f' || id[3] == b'p')));
        if !creates_routine || !p.parens.is_empty() {
            return;
        }
        match upper {
            "BEGIN" => p.begins.push(at),
            "CASE" if !p.begins.is_empty() => p.begins.push(at),
            "END" => {
                p.begins.pop();
            }
            _ => {}
        }
    }
}
