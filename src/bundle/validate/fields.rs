//! The manifest's plain values: names, versions, schemas, notify channels, session settings.

use super::{MAX_IDENTIFIER_BYTES, Validator};
use crate::bundle::Version;
use crate::bundle::manifest::{RawManifest, Text};

impl Validator<'_> {
    pub(super) fn non_empty(&mut self, t: &Text, what: &str) -> Option<String> {
        let s = t.get_ref().trim();
        if s.is_empty() {
            self.problem(t, format!("{what} is empty"));
            None
        } else {
            Some(s.to_owned())
        }
    }

    pub(super) fn version(&mut self, t: &Text) -> Option<Version> {
        match t.get_ref().parse::<Version>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(t, e.to_string());
                None
            }
        }
    }

    pub(super) fn server_version(&mut self, t: &Text) -> Option<u32> {
        let v = self.version(t)?;
        if v.major < 10 && v.minor == 0 || v.major >= 10 && v.minor != 0 {
            self.problem(
                t,
                format!(
                    "min_server_version \"{}\" is not a PostgreSQL major version (10 or later: \"13\"; before 10: \"9.6\")",
                    t.get_ref()
                ),
            );
            return None;
        }
        // Same numbering as server_version_num / 10000 (9.6 → 906? no: 90600 / 10000 = 9).
        Some(if v.major >= 10 {
            v.major * 10000
        } else {
            v.major * 10000 + v.minor * 100
        })
    }

    pub(super) fn schemas(&mut self, raw: &RawManifest) -> Vec<String> {
        let list = &raw.database.get_ref().schemas;
        if list.get_ref().is_empty() {
            self.problem(
                list,
                "database.schemas is empty: name the schemas the application owns".into(),
            );
        }
        let mut out = Vec::new();
        for s in list.get_ref() {
            let name = s.get_ref();
            if name.is_empty()
                || name == "pgstep"
                || name.starts_with("pg_")
                || name == "information_schema"
            {
                self.problem(s, format!("\"{name}\" cannot be an application schema (empty, reserved by PostgreSQL, or pgstep's own)"));
            } else if out.contains(name) {
                self.problem(s, format!("schema \"{name}\" is listed twice"));
            } else {
                out.push(name.clone());
            }
        }
        out
    }

    pub(super) fn notify(&mut self, raw: &RawManifest) -> Vec<String> {
        let Some(n) = &raw.notify else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for c in &n.get_ref().channels {
            if let Some(name) = self.non_empty(c, "notify channel") {
                if name.len() > MAX_IDENTIFIER_BYTES {
                    self.problem(
                        c,
                        format!(
                            "channel name \"{name}\" is longer than {MAX_IDENTIFIER_BYTES} bytes"
                        ),
                    );
                } else {
                    out.push(name);
                }
            }
        }
        out
    }

    pub(super) fn session(&mut self, raw: &RawManifest) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, value) in &raw.session {
            let text = match value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => if *b { "on" } else { "off" }.to_owned(),
                _ => {
                    self.problem(
                        value,
                        format!("session setting {name} must be a string, number or boolean"),
                    );
                    continue;
                }
            };
            let valid_name = !name.is_empty()
                && name.split('.').all(|p| {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            if !valid_name {
                self.problem(
                    value,
                    format!("\"{name}\" is not a PostgreSQL setting name"),
                );
                continue;
            }
            out.push((name.clone(), text));
        }
        out
    }
}
