//! Tests of loading whole scripts: includes, meta-commands, blocks.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new(files: &[(&str, &str)]) -> Bundle {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let b = Bundle { dir };
        for (path, text) in files {
            b.write(path, text.as_bytes());
        }
        b
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn write(&self, path: &str, bytes: &[u8]) {
        let p = self.root().join(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {path}: {e}"));
    }

    fn load(&self, path: &str) -> Result<Script, ScriptError> {
        let mut p = Placeholders::new();
        p.insert(
            "DB_NAME".into(),
            Placeholder {
                kind: PlaceholderKind::Identifier,
                value: "clinic_v2".into(),
            },
        );
        load_script(&self.root(), Path::new(path), &p)
    }

    fn ok(&self, path: &str) -> Script {
        self.load(path).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(&self, path: &str) -> String {
        match self.load(path) {
            Ok(s) => panic!("expected an error, got {s:?}"),
            Err(e) => e.to_string(),
        }
    }
}

fn sqls(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| match n {
            Node::Statement(s) => s.sql.clone(),
            Node::Echo { text, .. } => format!("echo {text}"),
            Node::Block {
                condition, body, ..
            } => {
                format!("{} [{}]", condition.describe(), sqls(body).join("; "))
            }
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

#[test]
fn a_script_with_everything() {
    let main = "\\set ON_ERROR_STOP on\n\\echo 'starting ''v2'''\nBEGIN;\n\
                #IfNotTable clinic.patient\nCREATE TABLE clinic.patient (id int);\n\
                -- #IfMissingColumn clinic.patient name\nALTER TABLE clinic.patient ADD name text;\n\
                -- #EndIf\n#EndIf\n\\ir lib/funcs.sql\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON clinic.patient (id);\n\
                ALTER DATABASE @DB_NAME@ SET work_mem = '8MB'";
    let b = Bundle::new(&[
        ("v1-v2/01.sql", main),
        (
            "v1-v2/lib/funcs.sql",
            "CREATE FUNCTION f() RETURNS int RETURN 1;\n\\i common/x.sql\n",
        ),
        ("common/x.sql", "SELECT 'x';"),
    ]);
    let s = b.ok("v1-v2/01.sql");
    assert_eq!(
        sqls(&s.nodes),
        [
            "echo starting 'v2'",
            "BEGIN",
            "#IfNotTable clinic.patient [CREATE TABLE clinic.patient (id int); \
             #IfMissingColumn clinic.patient name [ALTER TABLE clinic.patient ADD name text]]",
            "CREATE FUNCTION f() RETURNS int RETURN 1",
            "SELECT 'x'",
            "COMMIT",
            "CREATE INDEX CONCURRENTLY i ON clinic.patient (id)",
            "ALTER DATABASE \"clinic_v2\" SET work_mem = '8MB'",
        ]
    );
    let kinds: Vec<StatementKind> = s.statements().iter().map(|st| st.kind).collect();
    use StatementKind::{NoTransactionBlock as NoTx, Other, TransactionControl as Tc};
    assert_eq!(kinds, [Tc, Other, Other, Other, Other, Tc, NoTx, Other]);
    assert_eq!(s.sha256, sha256_hex(main.as_bytes()));
    assert_eq!(
        s.included,
        [
            (
                PathBuf::from("v1-v2/lib/funcs.sql"),
                sha256_hex(b"CREATE FUNCTION f() RETURNS int RETURN 1;\n\\i common/x.sql\n")
            ),
            (PathBuf::from("common/x.sql"), sha256_hex(b"SELECT 'x';")),
        ]
    );
    assert_ne!(s.combined_sha256(), s.sha256);
    // Locations name the file each node comes from.
    let st = s.statements();
    assert_eq!(st[3].at.to_string(), "v1-v2/lib/funcs.sql:1:1");
    assert_eq!(st[4].at.to_string(), "common/x.sql:1:1");
    assert_eq!(st[6].at.to_string(), "v1-v2/01.sql:12:1");
    match &s.nodes[2] {
        Node::Block { at, .. } => assert_eq!(at.to_string(), "v1-v2/01.sql:4:1"),
        n => panic!("{n:?}"),
    }
}

#[test]
fn meta_commands_accepted_and_refused() {
    for ok in [
        "\\set ON_ERROR_STOP 1",
        "\\set ON_ERROR_STOP true",
        "\\set ON_ERROR_STOP ON",
    ] {
        let b = Bundle::new(&[("a.sql", ok)]);
        assert!(b.ok("a.sql").nodes.is_empty(), "{ok}");
    }
    let cases = [
        (
            "\\set ON_ERROR_STOP 0",
            "a.sql:1:1: \\set ON_ERROR_STOP off: pgstep always stops at the first error; remove the line",
        ),
        ("\\set ON_ERROR_STOP off", "always stops"),
        ("\\set ON_ERROR_STOP false", "always stops"),
        ("\\set ON_ERROR_STOP", "needs the value 1"),
        ("\\set AUTOCOMMIT off", "psql variables are not supported"),
        (
            "SELECT 1;\n\\connect other",
            "a.sql:2:1: psql meta-command \\connect is not supported",
        ),
        ("\\copy t from x.csv", "\\copy is not supported"),
        ("\\gset", "\\gset is not supported"),
        ("\\if :x", "use pgstep's directives"),
        ("\\i", "needs a file name"),
        ("\\i a.sql b.sql", "takes one file name"),
        ("\\i 'a.sql", "unterminated '"),
    ];
    for (text, msg) in cases {
        let b = Bundle::new(&[("a.sql", text)]);
        let e = b.err("a.sql");
        assert!(e.contains(msg), "{text}: {e}");
    }
}

#[test]
fn includes_must_stay_inside_the_bundle() {
    let b = Bundle::new(&[
        ("a.sql", "\\i ../outside.sql"),
        ("sub/b.sql", "\\ir ../../outside.sql"),
        ("sub/c.sql", "\\ir ../d.sql"),
        ("d.sql", "SELECT 'd';"),
        ("abs.sql", "\\i /etc/passwd"),
        ("missing.sql", "SELECT 1;\n\\i nope.sql"),
        ("dir.sql", "\\i sub"),
    ]);
    fs::write(b.dir.path().join("outside.sql"), "SELECT 'secret';")
        .unwrap_or_else(|e| panic!("{e}"));
    let e = b.err("a.sql");
    assert!(
        e.starts_with("a.sql:1:1: \\i ../outside.sql resolves to")
            && e.contains("outside the bundle"),
        "{e}"
    );
    assert!(b.err("sub/b.sql").contains("outside the bundle"));
    assert!(b.err("abs.sql").contains("absolute paths are refused"));
    assert!(
        b.err("missing.sql")
            .starts_with("missing.sql:2:1: \\i nope.sql: cannot open the file")
    );
    assert!(b.err("dir.sql").contains("not a regular file"));
    // `..` that stays inside is fine, and the path is recorded relative to the bundle root.
    let s = b.ok("sub/c.sql");
    assert_eq!(s.included[0].0, PathBuf::from("d.sql"));
    // The top script itself must be inside too.
    assert!(
        b.err("../outside.sql")
            .contains("outside the bundle directory")
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(b.dir.path().join("outside.sql"), b.root().join("link.sql"))
            .unwrap_or_else(|e| panic!("{e}"));
        b.write("via_link.sql", b"\\i link.sql");
        assert!(b.err("via_link.sql").contains("outside the bundle"));
    }
}

#[test]
fn include_cycles_are_refused_with_the_chain() {
    let b = Bundle::new(&[
        ("a.sql", "\\i lib/b.sql"),
        ("lib/b.sql", "SELECT 1;\n\\ir c.sql"),
        ("lib/c.sql", "\\i a.sql"),
        ("self.sql", "\\ir self.sql"),
        ("twice.sql", "\\i d.sql\n\\i d.sql"),
        ("d.sql", "SELECT 'd';"),
    ]);
    let e = b.err("a.sql");
    assert_eq!(
        e,
        "lib/c.sql:1:1: include cycle: a.sql → lib/b.sql → lib/c.sql → a.sql"
    );
    assert!(
        b.err("self.sql")
            .contains("include cycle: self.sql → self.sql")
    );
    // Including the same file twice is not a cycle; it is recorded once.
    let s = b.ok("twice.sql");
    assert_eq!(s.statements().len(), 2);
    assert_eq!(s.included.len(), 1);
}

#[test]
fn block_structure_errors() {
    let cases = [
        ("SELECT 1;\n#EndIf", "a.sql:2:1: #EndIf without an open #If"),
        (
            "#IfNotTable a\nSELECT 1;\n-- #IfTable b\n#EndIf\n",
            "a.sql:1:1: #IfNotTable a has no matching #EndIf",
        ),
        (
            "#IfTable a\n#IfTable b\n",
            "a.sql:2:1: #IfTable b has no matching #EndIf before the end of the file (1 enclosing",
        ),
        (
            "#IfTable a\n\\i b.sql\n#EndIf",
            "b.sql:1:1: #IfTable x has no matching #EndIf",
        ),
        (
            "#IfNotTabel a",
            "a.sql:1:1: unknown directive #IfNotTabel (did you mean #IfNotTable?)",
        ),
        (
            "SELECT 1\n-- #EndIf\n;",
            "a.sql:2:4: directive #EndIf inside an unterminated statement started at line 1",
        ),
        ("#IfRow t c 'x", "a.sql:1:12: unterminated '"),
    ];
    for (text, msg) in cases {
        let b = Bundle::new(&[("a.sql", text), ("b.sql", "#IfTable x\n")]);
        let e = b.err("a.sql");
        assert!(e.starts_with(msg), "{text}:\n{e}\nwanted {msg}");
    }
}

#[test]
fn file_level_errors() {
    let b = Bundle::new(&[("ok.sql", "SELECT 1;")]);
    b.write("latin1.sql", b"SELECT 1;\nSELECT 'caf\xe9';");
    assert_eq!(
        b.err("latin1.sql"),
        "latin1.sql:2:12: the file is not valid UTF-8 here; save it as UTF-8 (pgstep sends scripts to the server as UTF-8)"
    );
    b.write("bom.sql", "\u{feff}SELECT 1;\nSELECT 'caf".as_bytes());
    assert!(
        b.err("bom.sql")
            .starts_with("bom.sql:2:8: unterminated quoted string")
    );
    let e = b.err("nope.sql");
    assert!(e.starts_with("nope.sql: cannot open the script"), "{e}");
    let e = b.err("/etc/passwd");
    assert!(e.contains("relative to the bundle directory"), "{e}");
}

#[test]
fn placeholder_errors_name_the_file_and_warnings_are_collected() {
    let b = Bundle::new(&[
        ("a.sql", "SELECT 1;\nGRANT ALL ON t TO @OWNER@;"),
        ("w.sql", "SELECT 'Dear @NAME@';"),
    ]);
    assert!(
        b.err("a.sql")
            .starts_with("a.sql:2:19: unknown placeholder @OWNER@ (defined: DB_NAME)")
    );
    let s = b.ok("w.sql");
    assert_eq!(s.warnings.len(), 1);
    assert!(
        s.warnings[0]
            .to_string()
            .starts_with("w.sql:1:14: @NAME@ inside a string"),
        "{}",
        s.warnings[0]
    );
}
