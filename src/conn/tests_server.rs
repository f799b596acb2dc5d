//! Tests against a throw-away PostgreSQL 15 cluster (scram-sha-256, Unix
//! socket only). Skipped, with a message, where the server binaries are
//! missing. As root, the server runs as the `postgres` OS user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use super::env::{TestEnv, effective_uid};
use super::*;

const BIN: &str = "/usr/lib/postgresql/15/bin";
const PASSWORD: &str = "s3cr:et\\pw 'x'";

struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    /// Starts a cluster whose superuser `postgres` has [`PASSWORD`],
    /// listening on its own socket directory only.
    fn start(port_offset: u16) -> Option<Cluster> {
        let cluster = Cluster::init(port_offset)?;
        cluster.run_server("");
        Some(cluster)
    }

    /// initdb only; `run_server` starts it.
    fn init(port_offset: u16) -> Option<Cluster> {
        if !Path::new(BIN).join("initdb").exists() {
            eprintln!("skipping: no PostgreSQL binaries in {BIN}");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::create_dir(dir.path().join("sock")).expect("mkdir");
        std::fs::write(dir.path().join("pwfile"), PASSWORD).expect("pwfile");
        let port = 40000 + (std::process::id() % 5000) as u16 * 4 + port_offset;
        let cluster = Cluster { dir, port };
        cluster.chown();
        run(cluster
            .pg("initdb")
            .args([
                "-A",
                "scram-sha-256",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", cluster.path("pwfile").display()))
            .arg("-D")
            .arg(cluster.path("data")));
        Some(cluster)
    }

    /// As root, hands everything in the directory to `postgres`.
    fn chown(&self) {
        if effective_uid() == Some(0) {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(self.dir.path()));
        }
    }

    fn run_server(&self, extra: &str) {
        let opts = format!(
            "-k {} -c listen_addresses='' -c fsync=off -p {} {extra}",
            self.socket().display(),
            self.port
        );
        run(self
            .pg("pg_ctl")
            .arg("-w")
            .arg("-D")
            .arg(self.path("data"))
            .arg("-l")
            .arg(self.path("log"))
            .args(["-o", &opts, "start"]));
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn socket(&self) -> PathBuf {
        self.path("sock")
    }

    /// A server binary, run as `postgres` when we are root.
    fn pg(&self, tool: &str) -> Command {
        let exe = Path::new(BIN).join(tool);
        if effective_uid() == Some(0) {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// An environment pointing at this cluster as user postgres.
    fn env(&self, home: &Path, vars: &[(&str, &str)]) -> TestEnv {
        let mut env = TestEnv::new(home)
            .set("PGHOST", &self.socket().to_string_lossy())
            .set("PGPORT", &self.port.to_string())
            .set("PGUSER", "postgres")
            .set("PGSYSCONFDIR", &home.join("sysconf").to_string_lossy());
        for (k, v) in vars {
            env = env.set(k, v);
        }
        env
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.path("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn resolve(env: &TestEnv) -> ConnSettings {
    ConnSettings::resolve(&ConnArgs::default(), env)
        .expect("resolves")
        .0
}

/// Runs the real psql with the child environment and returns its output.
fn child_psql(child: &ChildEnv, sql: &str) -> String {
    let mut cmd = Command::new(Path::new(BIN).join("psql"));
    cmd.args(["-X", "-A", "-t", "-w", "-c", sql]);
    child.apply(&mut cmd);
    let out = cmd.output().expect("psql");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn password_file_notices_and_child_psql() {
    let Some(cluster) = Cluster::start(0) else {
        return;
    };
    let home = tempfile::tempdir().expect("home");
    let pgpass = home.path().join(".pgpass");
    // The socket is not the default directory, so the file names its path.
    let line = format!(
        "{}:{}:*:postgres:{}\n",
        cluster.socket().display(),
        cluster.port,
        PASSWORD.replace('\\', "\\\\").replace(':', "\\:")
    );
    std::fs::write(&pgpass, line).expect("write");
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let settings = resolve(&cluster.env(home.path(), &[]));

    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&notices);
    let mut client = settings
        .connect_with(
            Some(Box::new(move |n| sink.lock().expect("lock").push(n))),
            &NoPrompt,
        )
        .expect("connects with the password from .pgpass");
    let row = client
        .query_one(
            "SELECT current_user::text, current_setting('application_name')",
            &[],
        )
        .expect("query");
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("postgres".into(), "pgstep".into())
    );
    client
        .batch_execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$")
        .expect("notice");
    let got = notices.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            got[0].severity.as_str(),
            got[0].code.as_str(),
            got[0].message.as_str()
        ),
        ("NOTICE", "00000", "hello 42")
    );

    let e = settings
        .with_dbname("nosuchdb")
        .connect_with(None, &NoPrompt)
        .err()
        .expect("no such db");
    assert_eq!(
        e.to_string(),
        format!(
            "could not connect to server at {} (socket, port {}) as user \"postgres\": database \"nosuchdb\" does not exist — check the name with: psql -l",
            cluster.socket().display(),
            cluster.port
        )
    );

    // A host list: the unreachable first host is skipped.
    let list = ConnArgs {
        dbname: Some(format!(
            "host=/nonexistent-dir,{} port={}",
            cluster.socket().display(),
            cluster.port
        )),
        ..Default::default()
    };
    let (listed, _) =
        ConnSettings::resolve(&list, &cluster.env(home.path(), &[])).expect("resolves");
    listed.connect_with(None, &NoPrompt).expect("second host");

    // The child gets the password through its own 0600 file and real libpq
    // reads it (escapes included).
    let child = settings
        .with_dbname("template1")
        .child_env()
        .expect("child env");
    assert_eq!(child_psql(&child, "SELECT current_database()"), "template1");
}

#[test]
fn prompts_at_most_once_and_says_what_to_do() {
    let Some(cluster) = Cluster::start(1) else {
        return;
    };
    let home = tempfile::tempdir().expect("home");
    let socket = format!(
        "{} (socket, port {})",
        cluster.socket().display(),
        cluster.port
    );

    // No password anywhere, nobody to ask.
    let e = resolve(&cluster.env(home.path(), &[]))
        .connect_with(None, &NoPrompt)
        .err()
        .expect("needs a password");
    assert!(matches!(e, ConnError::PasswordRequired { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("put it in ~/.pgpass (chmod 0600) or set PGPASSWORD"),
        "{e}"
    );

    // A wrong PGPASSWORD: one prompt, naming the rejected source.
    let asked = Mutex::new(Vec::new());
    let prompt = |r: &PasswordRequest| {
        asked.lock().expect("lock").push(r.reason.clone());
        Ok(Some(Secret::new(PASSWORD)))
    };
    let settings = resolve(&cluster.env(home.path(), &[("PGPASSWORD", "wrong")]));
    settings
        .connect_with(None, &prompt)
        .expect("the typed password works");
    assert_eq!(
        *asked.lock().expect("lock"),
        vec![PromptReason::Rejected(Origin::Env("PGPASSWORD"))]
    );
    // Later connections and children reuse the accepted password silently.
    settings
        .with_dbname("template1")
        .connect_with(None, &NoPrompt)
        .expect("reused");
    assert_eq!(
        child_psql(&settings.child_env().expect("child env"), "SELECT 1"),
        "1"
    );

    // A wrong typed password is not asked for again.
    let count = Mutex::new(0);
    let bad = |_: &PasswordRequest| {
        *count.lock().expect("lock") += 1;
        Ok(Some(Secret::new("still wrong")))
    };
    let e = resolve(&cluster.env(home.path(), &[]))
        .connect_with(None, &bad)
        .err()
        .expect("wrong twice");
    assert_eq!(*count.lock().expect("lock"), 1);
    assert_eq!(
        e.to_string(),
        format!(
            "could not connect to server at {socket} as user \"postgres\": password authentication failed for user \"postgres\" — the password typed at the prompt is wrong"
        )
    );
    assert!(!e.to_string().contains("still wrong"));
}

/// `openssl` with arguments, in `dir`.
fn openssl(dir: &Path, args: &str) {
    run(Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace()));
}

/// A CA, a server certificate for DNS:localhost only, a client certificate
/// for `certuser` (PKCS#8 key), and an unrelated CA.
fn make_certificates(dir: &Path) {
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::fs::write(dir.join("san.cnf"), "subjectAltName=DNS:localhost\n").expect("write");
    openssl(
        dir,
        &format!("req -x509 {ec} -keyout ca.key -out ca.crt -days 2 -subj /CN=pgstep-test-ca"),
    );
    openssl(
        dir,
        &format!("req -x509 {ec} -keyout other.key -out other.crt -days 2 -subj /CN=other-ca"),
    );
    openssl(
        dir,
        &format!("req {ec} -keyout server.key -out server.csr -subj /CN=localhost"),
    );
    openssl(
        dir,
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.cnf",
    );
    openssl(
        dir,
        &format!("req {ec} -keyout client.key -out client.csr -subj /CN=certuser"),
    );
    openssl(
        dir,
        "x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2",
    );
    for key in ["server.key", "client.key"] {
        std::fs::set_permissions(dir.join(key), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
}

#[test]
fn sslmodes_against_a_tls_server() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipping: no openssl command");
        return;
    }
    let Some(cluster) = Cluster::init(2) else {
        return;
    };
    let certs = cluster.path("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    make_certificates(&certs);
    // TCP only with TLS; certuser authenticates with its certificate.
    std::fs::write(
        cluster.path("data").join("pg_hba.conf"),
        "local all all scram-sha-256\nhostssl all certuser 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
    )
    .expect("hba");
    cluster.chown();
    let c = |f: &str| certs.join(f).display().to_string();
    cluster.run_server(&format!(
        "-c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c ssl_ca_file={}",
        c("server.crt"),
        c("server.key"),
        c("ca.crt")
    ));
    {
        let admin = resolve(&cluster.env(cluster.dir.path(), &[("PGPASSWORD", PASSWORD)]));
        let mut client = admin
            .connect_with(None, &NoPrompt)
            .expect("socket connection");
        client
            .batch_execute("CREATE ROLE certuser LOGIN")
            .expect("role");
    }
    let home = tempfile::tempdir().expect("home");
    let env = TestEnv::new(home.path())
        .set("PGPASSWORD", PASSWORD)
        .set("PGSYSCONFDIR", "/nonexistent");
    let connect = |conninfo: String| {
        let args = ConnArgs {
            dbname: Some(format!(
                "port={} user=postgres dbname=postgres {conninfo}",
                cluster.port
            )),
            ..Default::default()
        };
        let (s, _) = ConnSettings::resolve(&args, &env).expect("resolves");
        s.connect_with(None, &NoPrompt).map(|mut client| {
            let row = client
                .query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .expect("query");
            row.get::<_, bool>(0)
        })
    };
    let ca = c("ca.crt");
    // Weak modes use TLS without checking; allow retries with TLS after the
    // server refuses plain text.
    for mode in ["allow", "prefer", "require"] {
        assert_eq!(
            connect(format!("host=127.0.0.1 sslmode={mode}")).ok(),
            Some(true),
            "{mode}"
        );
    }
    assert_eq!(
        connect(format!(
            "host=localhost sslmode=verify-full sslrootcert={ca}"
        ))
        .ok(),
        Some(true)
    );
    // verify-ca accepts a certificate for another name; verify-full does not.
    assert_eq!(
        connect(format!("host=127.0.0.1 sslmode=verify-ca sslrootcert={ca}")).ok(),
        Some(true)
    );
    let e = connect(format!(
        "host=127.0.0.1 sslmode=verify-full sslrootcert={ca}"
    ))
    .expect_err("wrong name");
    assert!(
        e.to_string().contains("must be signed by a CA in")
            && e.to_string()
                .contains("be issued for the host name 127.0.0.1"),
        "{e}"
    );
    let e = connect(format!(
        "host=localhost sslmode=verify-ca sslrootcert={}",
        c("other.crt")
    ))
    .expect_err("wrong CA");
    assert!(e.to_string().contains("TLS handshake failed"), "{e}");
    // The server refuses plain text: the pg_hba.conf hint.
    let e = connect("host=127.0.0.1 sslmode=disable".into()).expect_err("hostssl only");
    assert!(
        e.to_string().contains("no pg_hba.conf entry")
            && e.to_string().contains("ask its administrator"),
        "{e}"
    );
    // Client certificate authentication, no password involved.
    let args = ConnArgs {
        dbname: Some(format!(
            "host=localhost port={} user=certuser dbname=postgres sslmode=verify-full sslrootcert={ca} sslcert={} sslkey={}",
            cluster.port,
            c("client.crt"),
            c("client.key")
        )),
        ..Default::default()
    };
    let no_password = TestEnv::new(home.path()).set("PGSYSCONFDIR", "/nonexistent");
    let (s, _) = ConnSettings::resolve(&args, &no_password).expect("resolves");
    let mut client = s.connect_with(None, &NoPrompt).expect("certificate login");
    let who: String = client
        .query_one("SELECT current_user::text", &[])
        .expect("query")
        .get(0);
    assert_eq!(who, "certuser");
}
