//! Turns a raw manifest into a [`Bundle`], collecting every problem with its file and line.
//!
//! Validation continues past the first problem so that a bundle author sees all of them at once;
//! the bundle is refused if there is any.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use toml::Spanned;

use super::manifest::{RawManifest, Text};
use super::{
    Banner, Baseline, Bundle, BundleError, BundleProblem, Fixup, Naming, Plausibility, Precheck,
    Reference, Step, Version,
};
use crate::fingerprint::{canonical_reference, reference_problem};
use crate::hex;
use crate::script::{
    self, Node, Placeholder, PlaceholderKind, Placeholders, Script, StatementKind,
};

const MANIFEST: &str = "bundle.toml";
/// PostgreSQL truncates identifiers longer than this many bytes.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// Loads and validates the bundle in `root`.
pub fn load(root: &Path) -> Result<Bundle, BundleError> {
    let manifest_path = root.join(MANIFEST);
    let fail = |message: String| BundleError {
        root: root.to_path_buf(),
        problems: vec![BundleProblem {
            file: super::display_path(root, Path::new(MANIFEST)),
            line: 0,
            column: 0,
            message,
        }],
    };
    let text = match std::fs::read_to_string(&manifest_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(format!(
                "no bundle.toml here: is {} an upgrade bundle directory?",
                root.display()
            )));
        }
        Err(e) => return Err(fail(format!("cannot read it: {e}"))),
    };
    let mut v = Validator::new(root, &text);
    let raw: RawManifest = match toml::from_str(&text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            v.problem_at(&span, e.message().trim().to_owned());
            return Err(v.into_error());
        }
    };
    let bundle = v.bundle(raw, &text);
    match bundle {
        Some(b) if v.problems.is_empty() => Ok(b),
        _ => Err(v.into_error()),
    }
}

struct Validator<'a> {
    root: &'a Path,
    text: &'a str,
    problems: Vec<BundleProblem>,
    /// Every file the bundle names, for the bundle's checksum.
    files: BTreeMap<PathBuf, String>,
}

impl<'a> Validator<'a> {
    fn new(root: &'a Path, text: &'a str) -> Self {
        Self {
            root,
            text,
            problems: Vec::new(),
            files: BTreeMap::new(),
        }
    }

    fn into_error(self) -> BundleError {
        BundleError {
            root: self.root.to_path_buf(),
            problems: self.problems,
        }
    }

    fn problem_at(&mut self, span: &Range<usize>, message: String) {
        let (line, column) = line_col(self.text, span.start);
        self.problems.push(BundleProblem {
            file: super::display_path(self.root, Path::new(MANIFEST)),
            line,
            column,
            message,
        });
    }

    fn problem<T>(&mut self, at: &Spanned<T>, message: String) {
        self.problem_at(&at.span(), message);
    }

    fn bundle(&mut self, raw: RawManifest, text: &str) -> Option<Bundle> {
        let app = raw.application.get_ref();
        let name = self.non_empty(&app.name, "application.name");
        let min_server_version = app
            .min_server_version
            .as_ref()
            .and_then(|t| self.server_version(t));
        let naming = self.naming(&raw);
        let schemas = self.schemas(&raw);
        let version_query = self.non_empty(&raw.version.get_ref().query, "version.query");
        if version_query.is_some() {
            self.one_statement(&raw.version.get_ref().query, "the [version] query");
        }
        let placeholders = self.placeholders(&raw);

        let baseline_version = self.version(&raw.baseline.get_ref().version);
        let baseline_scripts = self.scripts(&raw.baseline.get_ref().scripts, &placeholders);
        let steps = self.steps(&raw, baseline_version, &placeholders);
        let last_major = steps.last().map(|s| s.to).or(baseline_version);
        let fixups = self.fixups(&raw, baseline_version, last_major, &placeholders);
        let fingerprints = self.fingerprints(&raw, baseline_version, last_major);
        let prechecks = self.prechecks(&raw, &placeholders);
        let plausibility = self.plausibility(&raw);
        let banner = raw.banner.as_ref().map(|b| self.banner(b));
        let notify_channels = self.notify(&raw);
        let session = self.session(&raw);

        self.files
            .insert(PathBuf::from(MANIFEST), hex::sha256(text.as_bytes()));
        let sha256 = self.bundle_checksum();
        Some(Bundle {
            root: self.root.to_path_buf(),
            name: name?,
            description: app.description.as_ref().map(|d| d.get_ref().clone()),
            pre_release: app.pre_release,
            min_server_version,
            naming: naming?,
            schemas,
            version_query: version_query?,
            baseline: Baseline {
                version: baseline_version?,
                scripts: baseline_scripts,
            },
            steps,
            fixups,
            fingerprints,
            prechecks,
            plausibility,
            banner: banner.flatten(),
            notify_channels,
            placeholders,
            session,
            sha256,
        })
    }

    fn bundle_checksum(&self) -> String {
        let mut h = Sha256::new();
        for (path, sum) in &self.files {
            h.update(path.to_string_lossy().as_bytes());
            h.update([0]);
            h.update(sum.as_bytes());
            h.update([b'\n']);
        }
        hex::encode(&h.finalize())
    }

    fn non_empty(&mut self, t: &Text, what: &str) -> Option<String> {
        let s = t.get_ref().trim();
        if s.is_empty() {
            self.problem(t, format!("{what} is empty"));
            None
        } else {
            Some(s.to_owned())
        }
    }

    fn version(&mut self, t: &Text) -> Option<Version> {
        match t.get_ref().parse::<Version>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(t, e.to_string());
                None
            }
        }
    }

    fn server_version(&mut self, t: &Text) -> Option<u32> {
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

    fn naming(&mut self, raw: &RawManifest) -> Option<Naming> {
        let db = raw.database.get_ref();
        let name = db.name.get_ref().trim().to_owned();
        let naming = match db.naming.get_ref().as_str() {
            "versioned" => {
                if !name.contains("{major}") {
                    self.problem(
                        &db.name,
                        format!("database.name \"{name}\" must contain {{major}} with naming = \"versioned\" (e.g. \"clinic_v{{major}}\")"),
                    );
                    return None;
                }
                if let Some(aside) = &db.aside {
                    self.problem(
                        aside,
                        "database.aside only applies to naming = \"fixed\"".into(),
                    );
                }
                Naming::Versioned {
                    pattern: name.clone(),
                }
            }
            "fixed" => {
                if name.contains('{') {
                    self.problem(
                        &db.name,
                        format!("database.name \"{name}\" is the one fixed name with naming = \"fixed\": it cannot contain a {{…}} pattern"),
                    );
                    return None;
                }
                let aside = db
                    .aside
                    .as_ref()
                    .map_or_else(|| "{name}_v{major}".to_owned(), |a| a.get_ref().clone());
                if !aside.contains("{major}") {
                    if let Some(a) = &db.aside {
                        self.problem(a, format!("database.aside \"{aside}\" must contain {{major}} so that each old version gets its own name"));
                    }
                    return None;
                }
                Naming::Fixed {
                    name: name.clone(),
                    aside,
                }
            }
            other => {
                self.problem(
                    &db.naming,
                    format!(
                        "database.naming \"{other}\" is not known: use \"versioned\" or \"fixed\""
                    ),
                );
                return None;
            }
        };
        let sample = naming
            .aside_for(99_999)
            .unwrap_or_else(|| naming.name_for(99_999));
        if name.is_empty() || sample.len() > MAX_IDENTIFIER_BYTES {
            self.problem(
                &db.name,
                format!("database name \"{name}\" is empty or longer than {MAX_IDENTIFIER_BYTES} bytes once the version is filled in"),
            );
        }
        Some(naming)
    }

    fn schemas(&mut self, raw: &RawManifest) -> Vec<String> {
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

    fn placeholders(&mut self, raw: &RawManifest) -> Placeholders {
        let mut out = Placeholders::new();
        for (name, p) in &raw.placeholders {
            let raw_p = p.get_ref();
            if !script::is_placeholder_name(name) {
                self.problem(p, format!("placeholder name \"{name}\" must be an upper-case letter, then upper-case letters, digits and _ (used as @{name}@)"));
                continue;
            }
            if name == "DB_NAME" || name == "DB_USER" {
                self.problem(
                    p,
                    format!("@{name}@ is defined by pgstep itself and cannot be set in the bundle"),
                );
                continue;
            }
            let kind = match raw_p.kind.get_ref().as_str() {
                "identifier" => PlaceholderKind::Identifier,
                "literal" => PlaceholderKind::Literal,
                other => {
                    self.problem(&raw_p.kind, format!("placeholder kind \"{other}\" is not known: use \"identifier\" or \"literal\""));
                    continue;
                }
            };
            let placeholder = Placeholder {
                kind,
                value: raw_p.value.get_ref().clone(),
            };
            if let Err(why) = script::validate_placeholder(name, &placeholder) {
                self.problem(&raw_p.value, format!("placeholder {name}: {why}"));
                continue;
            }
            out.insert(name.clone(), placeholder);
        }
        out
    }

    /// Loads the scripts of a list, reporting missing files at the manifest line.
    fn scripts(&mut self, list: &Spanned<Vec<Text>>, placeholders: &Placeholders) -> Vec<Script> {
        if list.get_ref().is_empty() {
            self.problem(list, "the list of scripts is empty".into());
        }
        list.get_ref()
            .iter()
            .filter_map(|t| self.script(t, placeholders))
            .collect()
    }

    fn script(&mut self, t: &Text, placeholders: &Placeholders) -> Option<Script> {
        let rel = self.bundle_file(t)?;
        let with_builtins = validation_placeholders(placeholders);
        match script::load_script(self.root, &rel, &with_builtins) {
            Ok(s) => {
                self.files.insert(s.path.clone(), s.sha256.clone());
                for (p, sum) in &s.included {
                    self.files.insert(p.clone(), sum.clone());
                }
                Some(s)
            }
            Err(e) => {
                self.problems.push(BundleProblem {
                    file: super::display_path(self.root, &e.at.file),
                    line: e.at.line,
                    column: e.at.column,
                    message: e.message,
                });
                None
            }
        }
    }

    /// A path named by the manifest: relative, inside the bundle, an existing file.
    fn bundle_file(&mut self, t: &Text) -> Option<PathBuf> {
        let rel = PathBuf::from(t.get_ref());
        let escapes = rel.is_absolute()
            || rel
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)));
        if t.get_ref().is_empty() || escapes {
            self.problem(
                t,
                format!(
                    "\"{}\" must be a path inside the bundle directory, relative to it",
                    t.get_ref()
                ),
            );
            return None;
        }
        if !self.root.join(&rel).is_file() {
            self.problem(
                t,
                format!(
                    "file {} does not exist",
                    super::display_path(self.root, &rel).display()
                ),
            );
            return None;
        }
        Some(rel)
    }

    fn steps(
        &mut self,
        raw: &RawManifest,
        baseline: Option<Version>,
        ph: &Placeholders,
    ) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut expected_from = baseline.map(Version::major_only);
        for s in &raw.step {
            let rs = s.get_ref();
            let (from, to) = (self.version(&rs.from), self.version(&rs.to));
            let scripts = self.scripts(&rs.scripts, ph);
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            if from.minor != 0 || to.minor != 0 {
                self.problem(s, format!("step {from} → {to}: steps go between major versions (fixups handle minor ones)"));
            } else if Some(to) != from.next_major() {
                self.problem(
                    s,
                    format!("step {from} → {to} skips a version: each step goes from N to N+1"),
                );
            } else if expected_from.is_some_and(|e| e != from) {
                let e = expected_from.map_or_else(String::new, |e| e.to_string());
                self.problem(s, format!("step {from} → {to} is out of order: the previous step (or the baseline) ends at version {e}; steps must be consecutive and in order"));
            }
            expected_from = Some(to);
            if rs.single_transaction {
                self.check_single_transaction(&scripts);
            }
            steps.push(Step {
                from,
                to,
                scripts,
                single_transaction: rs.single_transaction,
            });
        }
        steps
    }

    fn check_single_transaction(&mut self, scripts: &[Script]) {
        for script in scripts {
            walk_statements(&script.nodes, &mut |st| {
                let why = match st.kind {
                    StatementKind::TransactionControl => "manages its own transaction",
                    StatementKind::NoTransactionBlock => "cannot run inside a transaction block",
                    StatementKind::Other => return,
                };
                self.problems.push(BundleProblem {
                    file: super::display_path(self.root, &st.at.file),
                    line: st.at.line,
                    column: st.at.column,
                    message: format!("this statement {why}, but its step is declared single_transaction = true: remove single_transaction or the statement"),
                });
            });
        }
    }

    fn fixups(
        &mut self,
        raw: &RawManifest,
        first: Option<Version>,
        last: Option<Version>,
        ph: &Placeholders,
    ) -> Vec<Fixup> {
        let mut out: Vec<Fixup> = Vec::new();
        for f in &raw.fixup {
            let rf = f.get_ref();
            let scripts = self.scripts(&rf.scripts, ph);
            let Some(version) = self.version(&rf.version) else {
                continue;
            };
            if version.minor == 0 {
                self.problem(&rf.version, format!("fixup version {version} has no minor part: fixups bring N.x to N.y (e.g. 2.1)"));
                continue;
            }
            let in_range = first.is_none_or(|b| version.major >= b.major)
                && last.is_none_or(|l| version.major <= l.major);
            if !in_range {
                self.problem(&rf.version, format!("fixup {version} belongs to no major version that the baseline and steps reach"));
            }
            if let Some(prev) = out.last().filter(|p| p.version >= version) {
                self.problem(&rf.version, format!("fixup {version} comes after fixup {}: list fixups in increasing version order, each once", prev.version));
            }
            out.push(Fixup { version, scripts });
        }
        out
    }

    fn fingerprints(
        &mut self,
        raw: &RawManifest,
        first: Option<Version>,
        last: Option<Version>,
    ) -> BTreeMap<Version, Reference> {
        let mut out = BTreeMap::new();
        for (key, path) in &raw.fingerprints {
            let version = match key.parse::<Version>() {
                Ok(v) => v,
                Err(e) => {
                    self.problem(path, format!("fingerprints key: {e}"));
                    continue;
                }
            };
            let Some(rel) = self.bundle_file(path) else {
                continue;
            };
            match std::fs::read_to_string(self.root.join(&rel)) {
                Ok(text) => {
                    if let Some((line, message)) = reference_problem(&text) {
                        self.problems.push(BundleProblem {
                            file: super::display_path(self.root, &rel),
                            line,
                            column: 1,
                            message: format!("reference fingerprint for version {version}: {message}; regenerate it with `pgstep fingerprint --full --database DB` on a database at that version"),
                        });
                        continue;
                    }
                    let (text, hash) = canonical_reference(&text);
                    if text.is_empty() {
                        self.problem(path, format!("reference fingerprint {} is empty: fill it with the text `pgstep fingerprint --full --database DB` prints for a database at version {version}", rel.display()));
                        continue;
                    }
                    self.files.insert(rel.clone(), hash.clone());
                    out.insert(
                        version,
                        Reference {
                            path: rel,
                            text,
                            hash,
                        },
                    );
                }
                Err(e) => self.problem(path, format!("cannot read {}: {e}", rel.display())),
            }
        }
        if let (Some(first), Some(last)) = (first, last) {
            for major in first.major..=last.major {
                if !out.contains_key(&Version::new(major, 0)) {
                    let span = raw.database.span();
                    let span = if raw.fingerprints.is_empty() {
                        span
                    } else {
                        raw.fingerprints.values().next().map_or(span, Spanned::span)
                    };
                    self.problem_at(&span, format!("[fingerprints] has no reference for version {major}: every major version needs one (generate it with `pgstep fingerprint --full`)"));
                }
            }
        }
        out
    }

    fn prechecks(&mut self, raw: &RawManifest, ph: &Placeholders) -> Vec<Precheck> {
        let mut out = Vec::new();
        for p in &raw.precheck {
            let rp = p.get_ref();
            let name = self.non_empty(&rp.name, "precheck.name");
            let script = self.script(&rp.script, ph);
            if let Some(s) = &script {
                self.read_only_script(s);
            }
            if let (Some(name), Some(script)) = (name, script) {
                out.push(Precheck { name, script });
            }
        }
        out
    }

    fn plausibility(&mut self, raw: &RawManifest) -> Vec<Plausibility> {
        let mut out = Vec::new();
        for p in &raw.plausibility {
            let rp = p.get_ref();
            let name = self.non_empty(&rp.name, "plausibility.name");
            let old = self.non_empty(&rp.old, "plausibility.old");
            let new = self.non_empty(&rp.new, "plausibility.new");
            if old.is_some() {
                self.one_statement(&rp.old, "plausibility.old");
            }
            if new.is_some() {
                self.one_statement(&rp.new, "plausibility.new");
            }
            let from = rp.from.as_ref().map(|t| self.version(t));
            let to = rp.to.as_ref().map(|t| self.version(t));
            if from.is_some_and(|v| v.is_none()) || to.is_some_and(|v| v.is_none()) {
                continue;
            }
            if let (Some(name), Some(old), Some(new)) = (name, old, new) {
                out.push(Plausibility {
                    name,
                    old,
                    new,
                    from: from.flatten(),
                    to: to.flatten(),
                });
            }
        }
        out
    }

    /// SQL of the manifest that pgstep sends on its own (version query, banner, plausibility
    /// pairs): exactly one statement, no transaction control; the problem at its line.
    fn one_statement(&mut self, t: &Text, what: &str) {
        let Err(e) = script::single_read_query(t.get_ref()) else {
            return;
        };
        let span = t.span();
        let (line, column) = line_col(self.text, span.start);
        // A multi-line string (''' or """) drops the line break right after its opening quotes.
        let opening = self.text.get(span.start..).unwrap_or("");
        let skipped = u32::from(
            ["'''\n", "'''\r\n", "\"\"\"\n", "\"\"\"\r\n"]
                .iter()
                .any(|q| opening.starts_with(q)),
        );
        let (line, column) = if e.at.line <= 1 && skipped == 0 {
            (line, column)
        } else {
            (line + e.at.line - 1 + skipped, e.at.column)
        };
        self.problems.push(BundleProblem {
            file: super::display_path(self.root, Path::new(MANIFEST)),
            line,
            column,
            message: format!("{what}: {}", e.message),
        });
    }

    /// A precheck runs in a READ ONLY transaction, statement by statement: none of its
    /// statements may end that transaction or make it writable.
    fn read_only_script(&mut self, script: &Script) {
        walk_statements(&script.nodes, &mut |st| {
            if let Some(message) = script::read_only_statement_problem(&st.sql) {
                self.problems.push(BundleProblem {
                    file: super::display_path(self.root, &st.at.file),
                    line: st.at.line,
                    column: st.at.column,
                    message: format!("precheck: {message}"),
                });
            }
        });
    }

    fn banner(&mut self, b: &Spanned<super::manifest::RawBanner>) -> Option<Banner> {
        let rb = b.get_ref();
        let get = self.non_empty(&rb.get, "banner.get");
        let set = self.non_empty(&rb.set, "banner.set");
        let clear = self.non_empty(&rb.clear, "banner.clear");
        for (t, v, what) in [
            (&rb.get, &get, "banner.get"),
            (&rb.set, &set, "banner.set"),
            (&rb.clear, &clear, "banner.clear"),
        ] {
            if v.is_some() {
                self.one_statement(t, what);
            }
        }
        if let Some(s) = &set
            && !s.contains("$1")
        {
            self.problem(
                &rb.set,
                "banner.set must take the message as the bound parameter $1".into(),
            );
        }
        Some(Banner {
            get: get?,
            set: set?,
            clear: clear?,
        })
    }

    fn notify(&mut self, raw: &RawManifest) -> Vec<String> {
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

    fn session(&mut self, raw: &RawManifest) -> Vec<(String, String)> {
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

/// Placeholders with stand-ins for those pgstep defines at run time, so that scripts can be
/// checked completely before any database is known.
pub(crate) fn validation_placeholders(manifest: &Placeholders) -> Placeholders {
    let mut all = manifest.clone();
    for name in ["DB_NAME", "DB_USER"] {
        all.insert(
            name.to_owned(),
            Placeholder {
                kind: PlaceholderKind::Identifier,
                value: name.to_ascii_lowercase(),
            },
        );
    }
    all
}

/// Calls `f` for every statement, inside conditional blocks too.
pub(crate) fn walk_statements<'s>(nodes: &'s [Node], f: &mut impl FnMut(&'s script::Statement)) {
    for node in nodes {
        match node {
            Node::Statement(s) => f(s),
            Node::Block { body, .. } => walk_statements(body, f),
            Node::Echo { .. } => {}
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn line_col_counts_characters() {
        let t = "a = 1\nnäme = \"x\"\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        let at_eq = t.find('=').map(|_| t.rfind('=').unwrap_or(0)).unwrap_or(0);
        assert_eq!(line_col(t, at_eq), (2, 6));
    }
}
