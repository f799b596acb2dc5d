//! Helpers shared by the resolution tests: a hermetic home directory and
//! short constructors.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::conninfo::Pairs;
use super::env::TestEnv;
use super::*;

/// A hermetic home: no files unless a test writes them, and a PGSYSCONFDIR
/// that holds nothing (so the machine's /etc is never read).
pub(super) struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn env(&self, vars: &[(&str, &str)]) -> TestEnv {
        let sysconf = self.path().join("sysconf").to_string_lossy().into_owned();
        let mut env = TestEnv::new(self.path()).set("PGSYSCONFDIR", &sysconf);
        for (k, v) in vars {
            env = env.set(k, v);
        }
        env
    }

    pub fn write(&self, name: &str, text: &str, mode: u32) {
        let p = self.path().join(name);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

pub(super) fn args(h: Option<&str>, p: Option<&str>, u: Option<&str>, d: Option<&str>) -> ConnArgs {
    let own = |v: Option<&str>| v.map(str::to_string);
    ConnArgs {
        host: own(h),
        port: own(p),
        user: own(u),
        dbname: own(d),
    }
}

pub(super) fn resolve(a: &ConnArgs, env: &TestEnv) -> (ConnSettings, Vec<String>) {
    ConnSettings::resolve(a, env).expect("resolves")
}

pub(super) fn err(a: &ConnArgs, env: &TestEnv) -> String {
    ConnSettings::resolve(a, env)
        .expect_err("must fail")
        .to_string()
}

/// (name, value, origin) of one explained setting.
pub(super) fn get(s: &ConnSettings, name: &str) -> (String, Origin) {
    let (_, v, o) = s
        .explain()
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .expect("known name");
    (v, o)
}

/// Parsed `(keyword, value)` pairs with owned keywords, to compare with [`pairs`].
pub(super) fn owned_pairs(parsed: Pairs) -> Vec<(String, String)> {
    parsed
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Expected `(keyword, value)` pairs.
pub(super) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
