//! Reading a script file and everything it includes into a [`Script`].

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::classify::classify;
use super::directive::{self, Directive};
use super::lexer::{Pos, RawPiece, RawStatement, split};
use super::meta::{self, Meta};
use super::placeholder::substitute;
use super::{
    Condition, Location, Node, Placeholders, Script, ScriptError, ScriptWarning, Statement, hex,
};

/// Reads `rel_path` (relative to `bundle_root`), splits it, resolves `\i`/`\ir`, builds the
/// block tree and substitutes placeholders. The first problem found is returned, with its file,
/// line and column.
pub fn load_script(
    bundle_root: &Path,
    rel_path: &Path,
    placeholders: &Placeholders,
) -> Result<Script, ScriptError> {
    let whole_file = |message: String| ScriptError {
        at: Location {
            file: rel_path.to_path_buf(),
            line: 0,
            column: 0,
        },
        message,
    };
    let root = fs::canonicalize(bundle_root).map_err(|e| {
        whole_file(format!(
            "cannot open the bundle directory {}: {e}",
            bundle_root.display()
        ))
    })?;
    if rel_path.is_absolute() {
        return Err(whole_file(
            "script paths must be relative to the bundle directory".into(),
        ));
    }
    let canon = fs::canonicalize(root.join(rel_path))
        .map_err(|e| whole_file(format!("cannot open the script: {e}")))?;
    if !canon.starts_with(&root) {
        return Err(whole_file(format!(
            "the script resolves to {}, outside the bundle directory {}; scripts must stay \
             inside the bundle",
            canon.display(),
            root.display()
        )));
    }
    let bytes = fs::read(&canon).map_err(|e| whole_file(format!("cannot read the script: {e}")))?;
    let mut loader = Loader {
        root,
        placeholders,
        included: Vec::new(),
        warnings: Vec::new(),
        stack: vec![(canon, rel_path.to_path_buf())],
    };
    let nodes = loader.nodes(rel_path, &bytes)?;
    Ok(Script {
        path: rel_path.to_path_buf(),
        sha256: hex(&Sha256::digest(&bytes)),
        included: loader.included,
        nodes,
        warnings: loader.warnings,
    })
}

struct Loader<'a> {
    root: PathBuf,
    placeholders: &'a Placeholders,
    included: Vec<(PathBuf, String)>,
    warnings: Vec<ScriptWarning>,
    /// The chain of files being loaded (canonical path, path for messages), to refuse cycles.
    stack: Vec<(PathBuf, PathBuf)>,
}

/// An open `#If…` block: its condition, where it was opened, and the nodes before it.
type OpenBlock = (Condition, Location, Vec<Node>);

impl Loader<'_> {
    fn nodes(&mut self, file: &Path, bytes: &[u8]) -> Result<Vec<Node>, ScriptError> {
        let fail = |at: Pos, message: String| ScriptError {
            at: Location::new(file, at),
            message,
        };
        let text = decode(bytes).map_err(|(at, m)| fail(at, m))?;
        let pieces = split(text).map_err(|e| fail(e.at, e.message))?;
        let mut open: Vec<OpenBlock> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        for piece in pieces {
            match piece {
                RawPiece::Statement(raw) => nodes.push(Node::Statement(self.statement(file, raw)?)),
                RawPiece::Meta { name, args, at } => {
                    let meta = meta::parse(&name, &args).map_err(|e| fail(at, e.to_string()))?;
                    nodes.extend(self.meta(file, at, meta)?);
                }
                RawPiece::Directive {
                    name,
                    args,
                    at,
                    args_at,
                } => {
                    let directive =
                        directive::parse(&name, &args, at, args_at).map_err(|(p, m)| fail(p, m))?;
                    apply_directive(file, at, directive, &mut open, &mut nodes)?;
                }
            }
        }
        match open.pop() {
            Some((condition, opened, _)) => Err(unclosed(&condition, opened, open.len())),
            None => Ok(nodes),
        }
    }

    /// The nodes a psql meta-command at `at` stands for: none, an echo, or an included file's.
    fn meta(&mut self, file: &Path, at: Pos, meta: Meta) -> Result<Vec<Node>, ScriptError> {
        Ok(match meta {
            Meta::OnErrorStop => Vec::new(),
            Meta::Echo(text) => vec![Node::Echo {
                text,
                at: Location::new(file, at),
            }],
            Meta::Include { path, relative } => self.include(file, at, &path, relative)?,
        })
    }

    fn statement(&mut self, file: &Path, raw: RawStatement) -> Result<Statement, ScriptError> {
        let done = substitute(&raw, self.placeholders).map_err(|(at, message)| ScriptError {
            at: Location::new(file, at),
            message,
        })?;
        for (at, message) in done.warnings {
            self.warnings.push(ScriptWarning {
                at: Location::new(file, at),
                message,
            });
        }
        Ok(Statement {
            sql: done.sql,
            at: Location::new(file, raw.at),
            kind: classify(&raw.head),
            line_map: done.line_map,
        })
    }

    fn include(
        &mut self,
        file: &Path,
        at: Pos,
        path: &str,
        relative: bool,
    ) -> Result<Vec<Node>, ScriptError> {
        let fail = |message: String| ScriptError {
            at: Location::new(file, at),
            message,
        };
        let cmd = if relative { "\\ir" } else { "\\i" };
        let (canon, rel) = self.include_path(file, at, cmd, path, relative)?;
        if let Some(i) = self.stack.iter().position(|(c, _)| *c == canon) {
            let chain: Vec<String> = self.stack[i..]
                .iter()
                .map(|(_, r)| r.display().to_string())
                .chain(std::iter::once(rel.display().to_string()))
                .collect();
            return Err(fail(format!("include cycle: {}", chain.join(" → "))));
        }
        if !canon.is_file() {
            return Err(fail(format!("{cmd} {path}: not a regular file")));
        }
        let bytes = fs::read(&canon)
            .map_err(|e| fail(format!("{cmd} {path}: cannot read the file: {e}")))?;
        if !self.included.iter().any(|(r, _)| *r == rel) {
            self.included
                .push((rel.clone(), hex(&Sha256::digest(&bytes))));
        }
        self.stack.push((canon, rel.clone()));
        let nodes = self.nodes(&rel, &bytes);
        self.stack.pop();
        nodes
    }

    /// Where `\i path` (or `\ir path`) leads: the canonical path and the path inside the
    /// bundle; an error if it is absolute, cannot be opened or leads outside the bundle.
    fn include_path(
        &self,
        file: &Path,
        at: Pos,
        cmd: &str,
        path: &str,
        relative: bool,
    ) -> Result<(PathBuf, PathBuf), ScriptError> {
        let fail = |message: String| ScriptError {
            at: Location::new(file, at),
            message,
        };
        let p = Path::new(path);
        if p.is_absolute() {
            return Err(fail(format!(
                "{cmd} {path}: absolute paths are refused (a bundle must work wherever it is \
                 copied); give the path relative to {}",
                if relative {
                    "this file's directory"
                } else {
                    "the bundle directory"
                }
            )));
        }
        let base = match (relative, self.stack.last()) {
            (true, Some((including, _))) => including
                .parent()
                .map_or_else(|| self.root.clone(), Path::to_path_buf),
            _ => self.root.clone(),
        };
        let canon = fs::canonicalize(base.join(p))
            .map_err(|e| fail(format!("{cmd} {path}: cannot open the file: {e}")))?;
        let Ok(rel) = canon.strip_prefix(&self.root).map(Path::to_path_buf) else {
            return Err(fail(format!(
                "{cmd} {path} resolves to {}, outside the bundle directory; included files must \
                 stay inside the bundle",
                canon.display()
            )));
        };
        Ok((canon, rel))
    }
}

/// Opens or closes a block for an `#If…` or `#EndIf` at `at`.
fn apply_directive(
    file: &Path,
    at: Pos,
    directive: Directive,
    open: &mut Vec<OpenBlock>,
    nodes: &mut Vec<Node>,
) -> Result<(), ScriptError> {
    match directive {
        Directive::If(condition) => {
            let outer = std::mem::take(nodes);
            open.push((condition, Location::new(file, at), outer));
        }
        Directive::EndIf => {
            let Some((condition, opened, outer)) = open.pop() else {
                return Err(ScriptError {
                    at: Location::new(file, at),
                    message: "#EndIf without an open #If… block in this file; remove it or \
                              add the missing #If…"
                        .into(),
                });
            };
            let body = std::mem::replace(nodes, outer);
            nodes.push(Node::Block {
                condition,
                at: opened,
                body,
            });
        }
    }
    Ok(())
}

/// The error for a block still open at the end of its file, with `enclosing` more around it.
fn unclosed(condition: &Condition, opened: Location, enclosing: usize) -> ScriptError {
    let also = match enclosing {
        0 => String::new(),
        n => format!(" ({n} enclosing block(s) are not closed either)"),
    };
    ScriptError {
        at: opened,
        message: format!(
            "{} has no matching #EndIf before the end of the file{also}; every block \
             must be closed in the file that opens it",
            condition.describe()
        ),
    }
}

/// The file as text; `Err` points at the first byte that is not UTF-8.
fn decode(bytes: &[u8]) -> Result<&str, (Pos, String)> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        // Valid up to here, so this cannot fail; fall back to a lossy view to be safe.
        let good = String::from_utf8_lossy(good);
        let line = good.matches('\n').count() + 1;
        let last = good.rsplit('\n').next().unwrap_or("");
        // The lexer skips a byte order mark; count columns the same way.
        let last = if line == 1 {
            last.trim_start_matches('\u{feff}')
        } else {
            last
        };
        let column = last.chars().count() + 1;
        (
            Pos {
                line: u32::try_from(line).unwrap_or(u32::MAX),
                column: u32::try_from(column).unwrap_or(u32::MAX),
            },
            "the file is not valid UTF-8 here; save it as UTF-8 (pgstep sends scripts to the \
             server as UTF-8)"
                .into(),
        )
    })
}
