//! Lines that are not SQL: psql meta-commands (`\echo …`) and directives (`#IfNotTable …`,
//! `-- #EndIf`), recognised at the start of a line outside any string or comment, and the errors
//! for a backslash or `#` found where neither may stand.

use super::{Lexer, RawPiece, SplitError, directive_like, is_horiz_space, is_space};

impl Lexer<'_> {
    /// At the start of a line: recognises meta-command and directive lines. Returns true when it
    /// consumed the line.
    pub(super) fn line_start(&mut self) -> Result<bool, SplitError> {
        let mut j = self.i;
        while self.at(j).is_some_and(is_horiz_space) {
            j += 1;
        }
        match (self.at(j), self.at(j + 1)) {
            (Some('\\'), _) => self.meta_line(j).map(|()| true),
            (Some('#'), _) => {
                let name_end = self.word_end(j + 1);
                let name = self.text(j + 1, name_end);
                if self.stmt.is_some() && !directive_like(&name) {
                    return Ok(false); // the `#` operator continuing a statement
                }
                self.directive_line(j, name_end, name).map(|()| true)
            }
            (Some('-'), Some('-')) => {
                let mut k = j + 2;
                while self.at(k).is_some_and(is_horiz_space) {
                    k += 1;
                }
                if self.at(k) != Some('#') {
                    return Ok(false);
                }
                let name_end = self.word_end(k + 1);
                let name = self.text(k + 1, name_end);
                if !directive_like(&name) {
                    return Ok(false); // an ordinary comment
                }
                self.directive_line(k, name_end, name).map(|()| true)
            }
            _ => Ok(false),
        }
    }

    /// A psql meta-command line whose backslash is at `j`.
    fn meta_line(&mut self, j: usize) -> Result<(), SplitError> {
        let name_end = self.meta_name_end(j);
        let name = self.text(j + 1, name_end);
        if let Some(line) = self.pending_line() {
            return Err(self.err(
                j,
                format!(
                    "backslash command \\{name} inside an unterminated statement \
                     started at line {line}; end that statement with ';' first"
                ),
            ));
        }
        if name.is_empty() {
            return Err(self.err(
                j,
                "a lone backslash is not a psql meta-command; remove it".into(),
            ));
        }
        let end = self.line_end(name_end);
        let args = self.text(name_end, end).trim().to_string();
        let at = self.pos(j);
        self.out.push(RawPiece::Meta { name, args, at });
        self.i = end;
        Ok(())
    }

    /// The end of the meta-command name after the backslash at `backslash`.
    fn meta_name_end(&self, backslash: usize) -> usize {
        let mut k = backslash + 1;
        while self.at(k).is_some_and(|c| !is_space(c) && c != '\\') {
            k += 1;
        }
        k
    }

    pub(super) fn directive_line(
        &mut self,
        hash: usize,
        name_end: usize,
        name: String,
    ) -> Result<(), SplitError> {
        if let Some(line) = self.pending_line() {
            return Err(self.err(
                hash,
                format!(
                    "directive #{name} inside an unterminated statement started at line {line}; \
                     end that statement with ';' first"
                ),
            ));
        }
        let end = self.line_end(name_end);
        let args = self.text(name_end, end);
        let (at, args_at) = (self.pos(hash), self.pos(name_end));
        self.out.push(RawPiece::Directive {
            name,
            args,
            at,
            args_at,
        });
        self.i = end;
        Ok(())
    }

    pub(super) fn backslash_in_code(&self, i: usize) -> SplitError {
        let name = self.text(i + 1, self.meta_name_end(i));
        let what = if name.starts_with(';') {
            "\\; (psql's forced semicolon) is not supported".to_string()
        } else {
            format!("backslash command \\{name} in the middle of a line is not supported")
        };
        let context = match self.pending_line() {
            Some(line) => format!(" (inside the statement started at line {line})"),
            None => String::new(),
        };
        self.err(
            i,
            format!(
                "{what}{context}: pgstep only accepts \\set ON_ERROR_STOP 1, \\echo, \\i and \\ir, \
                 each on a line of its own between statements"
            ),
        )
    }

    pub(super) fn hash_mid_line(&self, i: usize) -> SplitError {
        let name = self.text(i + 1, self.word_end(i + 1));
        if directive_like(&name) {
            self.err(
                i,
                format!("directive #{name} must stand alone at the start of its own line"),
            )
        } else {
            self.err(
                i,
                "a statement cannot start with '#'; write comments with -- and directives alone \
                 on their own line"
                    .into(),
            )
        }
    }
}
