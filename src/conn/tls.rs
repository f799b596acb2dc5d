//! sslmode and the native-tls connector that implements it.
//!
//! The `postgres` crate only knows disable/prefer/require; certificate
//! checking is the connector's job. libpq's rules (libpq-ssl docs and
//! fe-secure-openssl.c), as implemented here:
//! - root certificates come from `sslrootcert`, default
//!   `~/.postgresql/root.crt`; `sslrootcert=system` means the system store.
//! - verify-ca / verify-full: that file must exist; the chain is checked
//!   against it only (built-in roots disabled); verify-full also checks the
//!   host name. verify-ca accepts any host name.
//! - require / prefer / allow: no verification — unless the root file exists,
//!   in which case libpq checks the chain (as verify-ca) for compatibility.
//! - client certificate: `sslcert`/`sslkey`, default
//!   `~/.postgresql/postgresql.crt`/`.key`, sent when the certificate file
//!   exists. The key must be an unencrypted PKCS#8 PEM (native-tls cannot
//!   read others) with libpq's permission rules.
//! - TLS 1.2 minimum unless `ssl_min_protocol_version` says otherwise.
//! - Unix sockets never use TLS (libpq does not request it there).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use native_tls::{Certificate, Identity, Protocol, TlsConnector};

use super::error::{ConnError, Origin};

/// libpq's sslmode.
/// Ordered from weakest to strongest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub const CHOICES: &'static str =
        "use disable, allow, prefer, require, verify-ca or verify-full";

    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// Parses `TLSv1`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3` (case-insensitive, as libpq).
pub(crate) fn parse_protocol(s: &str) -> Option<Protocol> {
    Some(match s.to_ascii_lowercase().as_str() {
        "tlsv1" => Protocol::Tlsv10,
        "tlsv1.1" => Protocol::Tlsv11,
        "tlsv1.2" => Protocol::Tlsv12,
        "tlsv1.3" => Protocol::Tlsv13,
        _ => return None,
    })
}

pub(crate) fn protocol_rank(p: Protocol) -> u8 {
    match p {
        Protocol::Tlsv10 => 10,
        Protocol::Tlsv11 => 11,
        Protocol::Tlsv12 => 12,
        Protocol::Tlsv13 => 13,
        _ => 0,
    }
}

/// Resolved TLS settings (explicit values keep their origin for messages).
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub mode: SslMode,
    pub mode_origin: Origin,
    /// `sslrootcert` as given: a path or `system`.
    pub rootcert: Option<(String, Origin)>,
    pub cert: Option<(String, Origin)>,
    pub key: Option<(String, Origin)>,
    pub sni: bool,
    /// False with `sslcertmode=disable`.
    pub send_client_cert: bool,
    pub min_protocol: Option<(String, Protocol)>,
    pub max_protocol: Option<(String, Protocol)>,
    /// For the `~/.postgresql/...` defaults.
    pub home: Option<PathBuf>,
}

/// Where root certificates come from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Roots {
    System,
    File(PathBuf),
    /// No file (the path that was looked for, if any).
    Missing(Option<PathBuf>),
}

impl TlsSettings {
    fn default_file(&self, name: &str) -> Option<PathBuf> {
        self.home.as_ref().map(|h| h.join(".postgresql").join(name))
    }

    pub(crate) fn roots(&self) -> Roots {
        let path = match &self.rootcert {
            Some((v, _)) if v == "system" => return Roots::System,
            Some((v, _)) => Some(PathBuf::from(v)),
            None => self.default_file("root.crt"),
        };
        match path {
            Some(p) if p.exists() => Roots::File(p),
            other => Roots::Missing(other),
        }
    }

    /// Builds the connector for TCP connections.
    pub(crate) fn connector(&self) -> Result<TlsConnector, ConnError> {
        let mut b = TlsConnector::builder();
        let min = self
            .min_protocol
            .as_ref()
            .map_or(Protocol::Tlsv12, |(_, p)| *p);
        b.min_protocol_version(Some(min));
        b.max_protocol_version(self.max_protocol.as_ref().map(|(_, p)| *p));
        b.use_sni(self.sni);
        match self.roots() {
            Roots::System => {} // built-in roots, full checks (verify-full is enforced at resolve)
            Roots::File(path) => {
                let pem = read(&path, "root certificate file")?;
                let certs = Certificate::stack_from_pem(&pem)
                    .ok()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| {
                        ConnError::Tls(format!(
                            "root certificate file {} holds no readable PEM certificate",
                            path.display()
                        ))
                    })?;
                b.disable_built_in_roots(true);
                for c in certs {
                    b.add_root_certificate(c);
                }
                b.danger_accept_invalid_hostnames(self.mode != SslMode::VerifyFull);
            }
            Roots::Missing(path) => {
                if self.mode.verifies() {
                    let what = path.map_or_else(
                        || "~/.postgresql/root.crt (no home directory)".to_string(),
                        |p| p.display().to_string(),
                    );
                    return Err(ConnError::Tls(format!(
                        "root certificate file {what} does not exist, but sslmode is {} (from {}) — provide the file, set sslrootcert to the CA file (or to \"system\"), or choose a weaker sslmode",
                        self.mode.as_str(),
                        self.mode_origin
                    )));
                }
                b.danger_accept_invalid_certs(true);
                b.danger_accept_invalid_hostnames(true);
            }
        }
        if let Some(identity) = self.identity()? {
            b.identity(identity);
        }
        b.build()
            .map_err(|e| ConnError::Tls(format!("could not set up TLS: {e}")))
    }

    /// The client certificate and key, if a certificate file exists.
    fn identity(&self) -> Result<Option<Identity>, ConnError> {
        if !self.send_client_cert {
            return Ok(None);
        }
        let cert = match &self.cert {
            Some((v, _)) => Some(PathBuf::from(v)),
            None => self.default_file("postgresql.crt"),
        };
        let Some(cert) = cert.filter(|c| c.exists()) else {
            return Ok(None); // libpq sends no certificate then
        };
        let key = match &self.key {
            Some((v, _)) => Some(PathBuf::from(v)),
            None => self.default_file("postgresql.key"),
        };
        let Some(key) = key.filter(|k| k.exists()) else {
            return Err(ConnError::Tls(format!(
                "client certificate {} is present, but not its private key file — set sslkey",
                cert.display()
            )));
        };
        check_key_permissions(&key)?;
        let key_pem = read(&key, "private key file")?;
        let key_pem = pkcs8_block(&key, &key_pem)?;
        let cert_pem = read(&cert, "client certificate")?;
        Identity::from_pkcs8(&cert_pem, key_pem)
            .map(Some)
            .map_err(|e| {
                ConnError::Tls(format!(
                    "could not load client certificate {} with key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, ConnError> {
    std::fs::read(path)
        .map_err(|e| ConnError::Tls(format!("could not read {what} {}: {e}", path.display())))
}

/// libpq's rule: owned by us → no group/other access; owned by root → at
/// most u=rw,g=r.
fn check_key_permissions(key: &Path) -> Result<(), ConnError> {
    let meta = std::fs::metadata(key).map_err(|e| {
        ConnError::Tls(format!(
            "could not read private key file {}: {e}",
            key.display()
        ))
    })?;
    if !meta.is_file() {
        return Err(ConnError::Tls(format!(
            "private key file {} is not a regular file",
            key.display()
        )));
    }
    let mode = meta.mode();
    let euid = super::env::effective_uid();
    let too_open =
        (Some(meta.uid()) == euid && mode & 0o077 != 0) || (meta.uid() == 0 && mode & 0o037 != 0);
    if too_open {
        return Err(ConnError::Tls(format!(
            "private key file {0} has group or world access (mode {1:04o}); it must be u=rw (0600) or less if owned by you, or u=rw,g=r (0640) or less if owned by root — fix it with: chmod 0600 {0}",
            key.display(),
            mode & 0o7777
        )));
    }
    Ok(())
}

/// The PKCS#8 PEM block of a key file; other key formats are refused with
/// the command that converts them.
fn pkcs8_block<'a>(path: &Path, pem: &'a [u8]) -> Result<&'a [u8], ConnError> {
    let text = String::from_utf8_lossy(pem);
    let begin = text.find("-----BEGIN ");
    let kind = begin
        .map(|i| &text[i + 11..])
        .and_then(|t| t.split("-----").next());
    let shown = path.display();
    match (begin, kind) {
        (Some(i), Some("PRIVATE KEY")) => Ok(&pem[i..]),
        (_, Some("ENCRYPTED PRIVATE KEY")) => Err(ConnError::Tls(format!(
            "private key file {shown} is encrypted, which pgstep does not support (no sslpassword) — decrypt it with: openssl pkcs8 -in {shown} -out {shown}.plain (then chmod 0600 it and point sslkey at it)"
        ))),
        (_, Some(k)) if k.ends_with("PRIVATE KEY") => Err(ConnError::Tls(format!(
            "private key file {shown} is a {k} (PKCS#1/SEC1); pgstep needs PKCS#8 — convert it with: openssl pkcs8 -topk8 -nocrypt -in {shown} -out {shown}.pk8 (then chmod 0600 it and point sslkey at it)"
        ))),
        _ => Err(ConnError::Tls(format!(
            "private key file {shown} is not a PEM private key"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn settings(mode: SslMode, home: &Path) -> TlsSettings {
        TlsSettings {
            mode,
            mode_origin: Origin::Env("PGSSLMODE"),
            rootcert: None,
            cert: None,
            key: None,
            sni: true,
            send_client_cert: true,
            min_protocol: None,
            max_protocol: None,
            home: Some(home.to_path_buf()),
        }
    }

    #[test]
    fn sslmode_round_trip_and_rejects_typos() {
        for s in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            assert_eq!(SslMode::parse(s).map(SslMode::as_str), Some(s));
        }
        assert_eq!(SslMode::parse("requir"), None);
        assert_eq!(SslMode::parse("Require"), None); // libpq compares exactly
    }

    #[test]
    fn protocols() {
        assert_eq!(parse_protocol("tlsv1.3").map(protocol_rank), Some(13));
        assert_eq!(parse_protocol("TLSv1").map(protocol_rank), Some(10));
        assert!(parse_protocol("TLSv2").is_none());
    }

    #[test]
    fn roots_default_explicit_and_system() {
        let home = tempfile::tempdir().expect("tempdir");
        let mut s = settings(SslMode::Require, home.path());
        let default = home.path().join(".postgresql/root.crt");
        assert_eq!(s.roots(), Roots::Missing(Some(default.clone())));
        std::fs::create_dir_all(default.parent().expect("parent")).expect("mkdir");
        std::fs::write(&default, "x").expect("write");
        assert_eq!(s.roots(), Roots::File(default));
        s.rootcert = Some(("system".into(), Origin::ConnString));
        assert_eq!(s.roots(), Roots::System);
        s.rootcert = Some(("/nonexistent/ca.pem".into(), Origin::ConnString));
        assert_eq!(
            s.roots(),
            Roots::Missing(Some("/nonexistent/ca.pem".into()))
        );
    }

    #[test]
    fn verify_modes_need_a_root_file_weaker_modes_do_not() {
        let home = tempfile::tempdir().expect("tempdir");
        for mode in [SslMode::Prefer, SslMode::Require, SslMode::Allow] {
            assert!(settings(mode, home.path()).connector().is_ok(), "{mode:?}");
        }
        let e = settings(SslMode::VerifyFull, home.path())
            .connector()
            .expect_err("no root.crt");
        assert_eq!(
            e.to_string(),
            format!(
                "root certificate file {}/.postgresql/root.crt does not exist, but sslmode is verify-full (from PGSSLMODE) — provide the file, set sslrootcert to the CA file (or to \"system\"), or choose a weaker sslmode",
                home.path().display()
            )
        );
        let mut s = settings(SslMode::VerifyFull, home.path());
        s.rootcert = Some(("system".into(), Origin::ConnString));
        assert!(s.connector().is_ok());
    }

    #[test]
    fn unreadable_root_file_is_refused() {
        let home = tempfile::tempdir().expect("tempdir");
        let ca = home.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").expect("write");
        let mut s = settings(SslMode::VerifyCa, home.path());
        s.rootcert = Some((ca.to_string_lossy().into_owned(), Origin::ConnString));
        let e = s.connector().expect_err("garbage");
        assert!(
            e.to_string().contains("holds no readable PEM certificate"),
            "{e}"
        );
    }

    #[test]
    fn client_key_rules() {
        let home = tempfile::tempdir().expect("tempdir");
        let dir = home.path().join(".postgresql");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("postgresql.crt"), "cert").expect("write");
        let s = settings(SslMode::Require, home.path());
        let e = s.connector().expect_err("no key");
        assert!(
            e.to_string()
                .contains("present, but not its private key file"),
            "{e}"
        );

        let key = dir.join("postgresql.key");
        std::fs::write(
            &key,
            "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n",
        )
        .expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = s.connector().expect_err("loose key");
        assert!(
            e.to_string()
                .contains("has group or world access (mode 0644)"),
            "{e}"
        );

        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = s.connector().expect_err("pkcs1");
        assert!(
            e.to_string().contains("openssl pkcs8 -topk8 -nocrypt"),
            "{e}"
        );

        std::fs::write(&key, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n").expect("write");
        let e = s.connector().expect_err("encrypted");
        assert!(e.to_string().contains("is encrypted"), "{e}");
    }
}
