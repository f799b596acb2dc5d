//! The psql meta-commands pgstep understands, and the refusal of all others.
//!
//! pgstep cannot give most meta-commands the meaning psql would (`\connect`, `\gset`, `\copy`,
//! `\if`, variables, …), and silently skipping one would run the script differently from what
//! its author tested with `psql -f`; so anything not listed here is an error.

/// A meta-command that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Meta {
    /// `\set ON_ERROR_STOP on`: what pgstep always does anyway.
    OnErrorStop,
    Echo(String),
    /// `\i` (`relative: false`, from the bundle root) or `\ir` (from the including file's
    /// directory).
    Include {
        path: String,
        relative: bool,
    },
}

/// Why a meta-command line is refused; the caller adds the location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MetaError {
    #[error(
        "psql meta-command \\{name} is not supported ({}); pgstep understands only \
         \\set ON_ERROR_STOP 1, \\echo, \\i and \\ir",
        unsupported_why(.name)
    )]
    Unsupported { name: String },
    #[error("unterminated ' in the arguments; close it")]
    UnterminatedQuote,
    #[error("text right after a closing ' ; separate arguments with spaces")]
    TextAfterQuote,
    #[error(
        "\\set without arguments lists psql's variables, which means nothing to \
         pgstep; remove the line"
    )]
    SetWithoutArguments,
    #[error(
        "\\set {var}: psql variables are not supported by pgstep (only \\set ON_ERROR_STOP 1 \
         is accepted)"
    )]
    SetVariable { var: String },
    #[error("\\set ON_ERROR_STOP off: pgstep always stops at the first error; remove the line")]
    ErrorStopOff,
    #[error("\\set ON_ERROR_STOP needs the value 1 (or on, true), not {value:?}")]
    ErrorStopValue { value: String },
    #[error("\\{name} needs a file name: \\{name} path/to/file.sql")]
    IncludeWithoutFile { name: String },
    #[error("\\{name} takes one file name; put a name containing spaces in single quotes")]
    IncludeManyFiles { name: String },
}

/// Parses `\name args`.
pub(crate) fn parse(name: &str, args: &str) -> Result<Meta, MetaError> {
    match name {
        "set" => set(args),
        "echo" => Ok(Meta::Echo(echo_text(args))),
        "i" | "include" => include(name, args, false),
        "ir" | "include_relative" => include(name, args, true),
        _ => Err(MetaError::Unsupported {
            name: name.to_owned(),
        }),
    }
}

/// Why psql meta-command `\name` is refused.
fn unsupported_why(name: &str) -> &'static str {
    match name {
        "c" | "connect" => {
            "each script runs in a session pgstep opens on the application's database"
        }
        "copy" => "pgstep does not move files between client and server; use INSERT … VALUES",
        "g" | "gset" | "gexec" | "gx" | "gdesc" | "crosstabview" | "watch" => {
            "pgstep sends each statement once and does not show or reuse its results"
        }
        "if" | "elif" | "else" | "endif" => {
            "use pgstep's directives (#IfNotTable …, #EndIf) for conditional parts"
        }
        "unset" | "getenv" | "prompt" => "pgstep does not support psql variables",
        "!" | "setenv" | "cd" | "o" | "out" | "w" | "write" => {
            "an upgrade script must not depend on the machine it is run from"
        }
        "q" | "quit" => "a script ends at the end of its file",
        "." => "inline COPY data is not supported; use INSERT … VALUES",
        _ => "pgstep cannot give it the meaning psql would",
    }
}

/// psql splits arguments at whitespace and lets '…' quote one (with '' for a quote).
fn split_args(args: &str) -> Result<Vec<String>, MetaError> {
    let mut out = Vec::new();
    let mut chars = args.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let mut arg = String::new();
        if first == '\'' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(MetaError::UnterminatedQuote),
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        arg.push('\'');
                    }
                    Some('\'') => break,
                    Some(c) => arg.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(MetaError::TextAfterQuote);
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                arg.push(c);
            }
        }
        out.push(arg);
    }
    Ok(out)
}

fn set(args: &str) -> Result<Meta, MetaError> {
    let parts = split_args(args)?;
    let Some(var) = parts.first() else {
        return Err(MetaError::SetWithoutArguments);
    };
    if var != "ON_ERROR_STOP" {
        return Err(MetaError::SetVariable { var: var.clone() });
    }
    // psql concatenates the values; "on" written twice would be "onon", which psql rejects too.
    let value = parts[1..].concat().to_ascii_lowercase();
    match value.as_str() {
        "1" | "on" | "true" | "yes" => Ok(Meta::OnErrorStop),
        "0" | "off" | "false" | "no" => Err(MetaError::ErrorStopOff),
        _ => Err(MetaError::ErrorStopValue {
            value: parts[1..].join(" "),
        }),
    }
}

/// The rest of the line; one pair of surrounding single quotes is removed (with '' inside
/// meaning ').
fn echo_text(args: &str) -> String {
    let t = args.trim();
    if t.len() >= 2 && t.starts_with('\'') && t.ends_with('\'') {
        let inner = &t[1..t.len() - 1];
        // Only when the quotes really enclose the whole text: 'a' 'b' is two quoted words.
        if !inner.replace("''", "").contains('\'') {
            return inner.replace("''", "'");
        }
    }
    t.to_string()
}

fn include(name: &str, args: &str, relative: bool) -> Result<Meta, MetaError> {
    let parts = split_args(args)?;
    match parts.as_slice() {
        [path] if !path.is_empty() => Ok(Meta::Include {
            path: path.clone(),
            relative,
        }),
        [] | [_] => Err(MetaError::IncludeWithoutFile {
            name: name.to_owned(),
        }),
        _ => Err(MetaError::IncludeManyFiles {
            name: name.to_owned(),
        }),
    }
}
