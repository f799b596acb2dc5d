//! Splitting a script into statements, meta-command lines and directive lines, with psql's
//! rules (`src/fe_utils/psqlscan.l`): a `;` ends a statement unless it is inside a string
//! (`'…'`, `E'…'`, `U&'…'`, `B'…'`, `X'…'`, with SQL's continuation of a string across a line
//! break), a quoted identifier, a comment (`--`, nested `/* */`), a dollar-quoted body, parentheses
//! or the `BEGIN … END` of a `CREATE FUNCTION|PROCEDURE … BEGIN ATOMIC` body.
//!
//! The text is handled as a slice of `char`s so that columns count characters and nothing is
//! ever cut inside a UTF-8 sequence. A line ends at `\n`, `\r\n` or a lone `\r`, as in psql.

use super::classify::{self, HeadToken};
use super::quote::is_placeholder_name;

mod lines;
mod quoted;
mod words;

/// A line and column (both 1-based, column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// The script cannot be split; `at` is where the problem starts (for an unterminated string:
/// where it was opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    pub at: Pos,
    pub message: String,
}

/// The lexical context of a `@NAME@`, which decides how its value must be quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceholderContext {
    Code,
    /// Inside `'…'` (also `B'…'`, `X'…'`, `N'…'`); `E'…'` has `backslash_escapes`.
    String {
        backslash_escapes: bool,
    },
    /// Inside `U&'…'`.
    UnicodeString,
    /// Inside a dollar-quoted body; `delimiter` is the whole `$tag$`.
    DollarQuoted {
        delimiter: String,
    },
    /// Inside `"…"` or `U&"…"`.
    QuotedIdentifier,
}

/// One `@NAME@` found outside comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderUse {
    pub name: String,
    /// Offset in characters from the start of the statement's text.
    pub offset: usize,
    /// Length in characters, both `@`s included.
    pub len: usize,
    pub at: Pos,
    pub context: PlaceholderContext,
}

/// A statement as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStatement {
    /// From the first token to just before the terminating `;`, trailing whitespace removed.
    pub text: String,
    pub at: Pos,
    pub uses: Vec<PlaceholderUse>,
    /// The first top-level tokens, for classification.
    pub head: Vec<HeadToken>,
    /// False for a last statement that ends at the end of the file without `;`.
    pub terminated: bool,
}

/// What [`split`] finds, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawPiece {
    Statement(RawStatement),
    /// `\name args…` on a line of its own; `args` is the rest of the line, trimmed.
    Meta {
        name: String,
        args: String,
        at: Pos,
    },
    /// `#name args…` or `-- #name args…` on a line of its own; `at` is the `#`, `args_at` the
    /// first character after the name.
    Directive {
        name: String,
        args: String,
        at: Pos,
        args_at: Pos,
    },
}

/// Splits a script (BOM allowed) into statements, meta-commands and directives.
pub fn split(text: &str) -> Result<Vec<RawPiece>, SplitError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let mut lx = Lexer::new(&chars);
    if let Some(i) = chars.iter().position(|&c| c == '\0') {
        return Err(lx.err(
            i,
            "NUL character: PostgreSQL cannot accept it in a statement; is this really a text \
             file?"
                .into(),
        ));
    }
    lx.run()?;
    Ok(lx.out)
}

/// The head of one statement's text (the first top-level tokens, as [`split`] records them in
/// [`RawStatement::head`]), for readers of a statement already split and substituted: the plan
/// preview reads from it what the statement changes. A text the lexer cannot read to its end
/// gives the tokens before the problem; a text of several statements, the first one's.
pub fn statement_head(sql: &str) -> Vec<HeadToken> {
    let chars: Vec<char> = sql.chars().collect();
    let mut lx = Lexer::new(&chars);
    let _ = lx.run();
    let first = lx.out.into_iter().find_map(|piece| match piece {
        RawPiece::Statement(s) => Some(s.head),
        _ => None,
    });
    first
        .or_else(|| lx.stmt.map(|p| p.head))
        .unwrap_or_default()
}

/// Words that make a `-- #…` comment (or a `#` line inside a statement) count as a directive,
/// possibly misspelt: those starting with `If` or being `EndIf`, in any case, ignoring what
/// follows the letters (so that `-- #EndIf;` is reported rather than ignored).
pub(crate) fn directive_like(word: &str) -> bool {
    let w: String = word
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    w.starts_with("if") || w == "endif"
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}
fn is_horiz_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}
fn is_newline(c: char) -> bool {
    c == '\n' || c == '\r'
}
/// PostgreSQL's `ident_start`: any non-ASCII character counts (the scanner works on bytes
/// `\200-\377`).
fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}
fn is_ident_cont(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '$'
}
/// Dollar-quote tags are identifiers without `$`.
fn is_tag_cont(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

/// The statement being accumulated.
struct Pending {
    start: usize,
    /// Positions of the open parentheses.
    parens: Vec<usize>,
    /// Positions of the open `BEGIN`/`CASE` of a function body (psql's `begin_depth`).
    begins: Vec<usize>,
    /// psql's `identifiers[]`: initials of the first four identifiers when they are one of
    /// create/or/replace/function/procedure, to recognise `CREATE [OR REPLACE] FUNCTION`.
    initials: [u8; 4],
    ident_count: usize,
    uses: Vec<PlaceholderUse>,
    head: Vec<HeadToken>,
    group_open: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StrKind {
    Standard,
    Escape,
    Unicode,
}

struct Lexer<'a> {
    c: &'a [char],
    line_starts: Vec<usize>,
    i: usize,
    out: Vec<RawPiece>,
    stmt: Option<Pending>,
}

const HEAD_MAX: usize = 64;
const GROUP_WORDS_MAX: usize = 8;

impl<'a> Lexer<'a> {
    fn new(c: &'a [char]) -> Lexer<'a> {
        let mut line_starts = vec![0];
        for (i, &ch) in c.iter().enumerate() {
            if ch == '\n' || (ch == '\r' && c.get(i + 1) != Some(&'\n')) {
                line_starts.push(i + 1);
            }
        }
        Lexer {
            c,
            line_starts,
            i: 0,
            out: Vec::new(),
            stmt: None,
        }
    }

    fn pos(&self, idx: usize) -> Pos {
        let line = self.line_starts.partition_point(|&s| s <= idx).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(idx - start + 1).unwrap_or(u32::MAX),
        }
    }

    fn err(&self, idx: usize, message: String) -> SplitError {
        SplitError {
            at: self.pos(idx),
            message,
        }
    }

    fn at(&self, idx: usize) -> Option<char> {
        self.c.get(idx).copied()
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.c[from..to].iter().collect()
    }

    /// Index of the line break (or end of text) at or after `from`.
    fn line_end(&self, from: usize) -> usize {
        let mut k = from;
        while k < self.c.len() && !is_newline(self.c[k]) {
            k += 1;
        }
        k
    }

    /// End of the run of non-whitespace characters starting at `from`.
    fn word_end(&self, from: usize) -> usize {
        let mut k = from;
        while k < self.c.len() && !is_space(self.c[k]) {
            k += 1;
        }
        k
    }

    fn at_line_start(&self, i: usize) -> bool {
        i == 0 || self.c[i - 1] == '\n' || (self.c[i - 1] == '\r' && self.at(i) != Some('\n'))
    }

    fn pending_line(&self) -> Option<u32> {
        self.stmt.as_ref().map(|p| self.pos(p.start).line)
    }

    fn run(&mut self) -> Result<(), SplitError> {
        while self.i < self.c.len() {
            let i = self.i;
            if self.at_line_start(i) && self.line_start()? {
                continue;
            }
            let ch = self.c[i];
            let next = self.at(i + 1);
            match ch {
                c if is_space(c) => self.i += 1,
                '-' if next == Some('-') => self.line_comment()?,
                '/' if next == Some('*') => self.block_comment()?,
                ';' => self.semicolon()?,
                '(' => {
                    self.begin_token(i);
                    self.paren_open(i);
                    self.i += 1;
                }
                ')' => {
                    self.begin_token(i);
                    if let Some(p) = self.stmt.as_mut() {
                        p.parens.pop();
                        if p.parens.is_empty() {
                            p.group_open = false;
                        }
                    }
                    self.i += 1;
                }
                '\'' => {
                    self.begin_token(i);
                    self.head_other();
                    self.string(i, i, StrKind::Standard)?;
                }
                '"' => self.plain_quoted_ident(i)?,
                '$' => self.dollar()?,
                '\\' => return Err(self.backslash_in_code(i)),
                '@' => {
                    self.begin_token(i);
                    self.head_other();
                    match self.placeholder_at(i) {
                        Some((name, len)) => {
                            self.record_use(i, name, len, PlaceholderContext::Code);
                            self.i += len;
                        }
                        None => self.i += 1,
                    }
                }
                '#' if self.stmt.is_none() => return Err(self.hash_mid_line(i)),
                c if is_ident_start(c) => self.word()?,
                c if c.is_ascii_digit() => self.number(),
                _ => self.punctuation(i, ch),
            }
        }
        self.finish()
    }

    /// A one-character token that is not a parenthesis: `.` and `,` (which name lists need
    /// in the head), an operator, ….
    fn punctuation(&mut self, i: usize, ch: char) {
        self.begin_token(i);
        self.head_token(match ch {
            '.' => HeadToken::Dot,
            ',' => HeadToken::Comma,
            _ => HeadToken::Other,
        });
        self.i += 1;
    }

    /// A `"quoted identifier"` at `i`, recorded in the head resolved (`""` read as `"`).
    fn plain_quoted_ident(&mut self, i: usize) -> Result<(), SplitError> {
        self.begin_token(i);
        self.quoted_ident(i, i)?;
        let name = self.text(i + 1, self.i - 1).replace("\"\"", "\"");
        self.head_token(HeadToken::Quoted(name));
        Ok(())
    }

    /// Marks `idx` as part of a statement, starting one if none is pending.
    fn begin_token(&mut self, idx: usize) {
        if self.stmt.is_none() {
            self.stmt = Some(Pending {
                start: idx,
                parens: Vec::new(),
                begins: Vec::new(),
                initials: [0; 4],
                ident_count: 0,
                uses: Vec::new(),
                head: Vec::new(),
                group_open: false,
            });
        }
    }

    fn head_other(&mut self) {
        self.head_token(HeadToken::Other);
    }

    /// Records a top-level token of the statement's head (a word has its own, [`Self::head_word`]).
    fn head_token(&mut self, token: HeadToken) {
        if let Some(p) = self.stmt.as_mut()
            && p.parens.is_empty()
            && p.head.len() < HEAD_MAX
        {
            p.head.push(token);
        }
    }

    fn head_word(&mut self, upper: String) {
        let Some(p) = self.stmt.as_mut() else { return };
        if p.parens.is_empty() {
            if p.head.len() < HEAD_MAX {
                p.head.push(HeadToken::Word(upper));
            }
        } else if p.group_open
            && let Some(HeadToken::Group(words)) = p.head.last_mut()
            && words.len() < GROUP_WORDS_MAX
        {
            words.push(upper);
        }
    }

    fn paren_open(&mut self, i: usize) {
        if let Some(p) = self.stmt.as_mut() {
            if p.parens.is_empty() && p.head.len() < HEAD_MAX {
                p.head.push(HeadToken::Group(Vec::new()));
                p.group_open = true;
            }
            p.parens.push(i);
        }
    }

    fn record_use(&mut self, idx: usize, name: String, len: usize, context: PlaceholderContext) {
        let at = self.pos(idx);
        if let Some(p) = self.stmt.as_mut() {
            p.uses.push(PlaceholderUse {
                name,
                offset: idx,
                len,
                at,
                context,
            });
        }
    }

    /// `@NAME@` at `idx`: its name and length in characters.
    fn placeholder_at(&self, idx: usize) -> Option<(String, usize)> {
        let mut k = idx + 1;
        while self
            .at(k)
            .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            k += 1;
        }
        if self.at(k) != Some('@') {
            return None;
        }
        let name = self.text(idx + 1, k);
        is_placeholder_name(&name).then(|| (name, k + 1 - idx))
    }

    fn semicolon(&mut self) -> Result<(), SplitError> {
        let i = self.i;
        self.i += 1;
        match &self.stmt {
            None => Ok(()), // an empty statement: nothing to send
            Some(p) if p.parens.is_empty() && p.begins.is_empty() => self.end_statement(i, true),
            Some(_) => {
                self.head_other();
                Ok(())
            }
        }
    }

    fn end_statement(&mut self, end: usize, terminated: bool) -> Result<(), SplitError> {
        // Checked before the statement is taken, so that a refused one stays pending (its head
        // is still read by [`statement_head`]).
        if let Some(p) = &self.stmt
            && let Some(problem) = classify::unsupported(&p.head)
        {
            return Err(self.err(p.start, problem));
        }
        let Some(p) = self.stmt.take() else {
            return Ok(());
        };
        let mut e = end;
        while e > p.start && is_space(self.c[e - 1]) {
            e -= 1;
        }
        let uses = p
            .uses
            .into_iter()
            .map(|u| PlaceholderUse {
                offset: u.offset - p.start,
                ..u
            })
            .collect();
        self.out.push(RawPiece::Statement(RawStatement {
            text: self.text(p.start, e),
            at: self.pos(p.start),
            uses,
            head: p.head,
            terminated,
        }));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SplitError> {
        if let Some(p) = &self.stmt {
            if let Some(&open) = p.parens.last() {
                return Err(self.err(
                    open,
                    format!(
                        "this parenthesis is never closed: the statement started at line {} runs \
                         to the end of the file",
                        self.pos(p.start).line
                    ),
                ));
            }
            if let Some(&open) = p.begins.last() {
                return Err(self.err(
                    open,
                    format!(
                        "this BEGIN (of the function body in the statement started at line {}) \
                         has no matching END before the end of the file",
                        self.pos(p.start).line
                    ),
                ));
            }
        }
        self.end_statement(self.c.len(), false)
    }
}
