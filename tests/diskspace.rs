//! The disk-space step against a real server: measurable and plausible on a local cluster,
//! unmeasurable for a remote one, tablespaces counted where they are, needs on one filesystem
//! added up, a full backup filesystem found.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::{Pg, sample_bundle};
use pgstep::conn::{ConnArgs, ConnSettings, ProcessEnv};
use pgstep::diskspace::{DiskReport, check};

fn clinic_v1() -> Pg {
    common::clinic_v1(&sample_bundle(), 2_000)
}

fn report(pg: &Pg, local: bool, backup_dir: &Path) -> DiskReport {
    check(
        &mut pg.client("clinic_v1"),
        local,
        "clinic_v1",
        Some(backup_dir),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn db_size(pg: &Pg) -> u64 {
    let size: i64 = pg.query_one("clinic_v1", "SELECT pg_database_size('clinic_v1')");
    u64::try_from(size).expect("size")
}

#[test]
fn a_local_cluster_is_measurable_with_plausible_numbers() {
    let pg = clinic_v1();
    let dir = tempfile::tempdir().expect("tempdir");
    let backups = dir.path().join("not yet there");
    let r = report(&pg, true, &backups);
    assert!(r.measurable, "{r:#?}");
    assert!(backups.is_dir(), "the backup directory is created");
    assert_eq!(r.items.len(), 2, "{r:#?}");
    let (clone, backup) = (&r.items[0], &r.items[1]);
    assert_eq!(clone.what, "clone of clinic_v1 (data directory)");
    assert_eq!(
        clone.path.canonicalize().expect("path"),
        pg.cluster.data_dir().canonicalize().expect("path")
    );
    assert!(clone.required > db_size(&pg), "{clone:?}");
    assert!(clone.available.is_some_and(|a| a > 0), "{clone:?}");
    assert_eq!(backup.what, "backup of clinic_v1 (backup directory)");
    assert!(
        backup.required > 0 && backup.required < clone.required,
        "{backup:?}"
    );
    assert!(backup.available.is_some_and(|a| a > 0));
    // The cluster and the backup are both under the temporary directory: one filesystem.
    assert_eq!(clone.filesystem_dev, backup.filesystem_dev);
    assert!(
        clone
            .note
            .as_deref()
            .is_some_and(|n| n.contains("needed together")),
        "{clone:?}"
    );
    let line = clone.describe();
    assert!(line.contains("needed") && line.contains("free"), "{line}");
    assert_eq!(r.all_ok(), r.items.iter().all(|i| i.ok == Some(true)));
}

#[test]
fn a_remote_server_gives_unmeasurable_items_but_the_backup_is_measured() {
    let pg = clinic_v1();
    let dir = tempfile::tempdir().expect("tempdir");
    let r = report(&pg, false, dir.path());
    assert!(!r.measurable);
    let clone = &r.items[0];
    assert_eq!((clone.available, clone.ok), (None, None), "{clone:?}");
    assert!(clone.required > 0);
    assert!(clone.describe().contains("confirm there is room"));
    let backup = r.items.last().expect("backup item");
    assert!(backup.ok.is_some(), "the backup directory is always local");
}

/// The OS user the server runs as owns a tablespace's directory.
fn hand_to_server(path: &Path) {
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if is_root {
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(path)
            .status()
            .expect("chown");
        assert!(status.success());
    }
}

#[test]
fn a_tablespace_is_counted_where_it_is() {
    let pg = clinic_v1();
    let location = pg.cluster.dir().join("fast_disk");
    std::fs::create_dir(&location).expect("mkdir");
    hand_to_server(&location);
    pg.exec(
        "postgres",
        &format!("CREATE TABLESPACE fast LOCATION '{}'", location.display()),
    );
    pg.exec(
        "clinic_v1",
        "CREATE TABLE clinic.archive TABLESPACE fast AS \
         SELECT g AS id, repeat(md5(g::text), 20) AS body FROM generate_series(1, 20000) g",
    );
    let in_fast: i64 = pg.query_one("clinic_v1", "SELECT pg_table_size('clinic.archive')");
    let dir = tempfile::tempdir().expect("tempdir");
    let r = report(&pg, true, dir.path());
    let ts = r
        .items
        .iter()
        .find(|i| i.what == "clone of clinic_v1 (tablespace fast)")
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert_eq!(ts.path, location);
    assert!(
        ts.required >= u64::try_from(in_fast).expect("size"),
        "{ts:?}"
    );
    assert!(ts.ok.is_some());
    let data_dir = &r.items[0];
    assert!(
        data_dir.required
            < db_size(&pg) + db_size(&pg) / 10 + pgstep::diskspace::CLONE_MARGIN_FIXED,
        "what is in the tablespace is not needed in the data directory too"
    );
}

#[test]
fn without_pg_read_all_settings_the_data_directory_is_unmeasurable_and_says_why() {
    let pg = clinic_v1();
    pg.exec("postgres", "CREATE ROLE clerk LOGIN");
    let args = ConnArgs {
        host: Some(pg.cluster.socket_dir().to_string_lossy().into_owned()),
        port: Some(pg.cluster.port().to_string()),
        user: Some("clerk".into()),
        dbname: Some("clinic_v1".into()),
    };
    let (settings, _) = ConnSettings::resolve(&args, &ProcessEnv).expect("settings");
    let mut client = settings.connect(None).expect("connect as clerk");
    let dir = tempfile::tempdir().expect("tempdir");
    let r =
        check(&mut client, true, "clinic_v1", Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.measurable);
    let clone = &r.items[0];
    assert_eq!(clone.ok, None);
    assert!(clone.path.as_os_str().is_empty());
    assert!(
        clone
            .note
            .as_deref()
            .is_some_and(|n| n.contains("pg_read_all_settings")),
        "{clone:?}"
    );
    assert!(clone.required > 0);
}

#[test]
fn a_connection_to_another_database_is_refused() {
    let pg = clinic_v1();
    let err = check(&mut pg.client("postgres"), true, "clinic_v1", None).expect_err("refused");
    assert!(
        err.to_string()
            .contains("needs a connection to \"clinic_v1\""),
        "{err}"
    );
}

/// A small tmpfs, unmounted when dropped.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_backup_directory_without_room_is_not_ok() {
    let pg = clinic_v1();
    let Some(fs) = SmallFs::mount("1m") else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root and permission to mount)");
        return;
    };
    let r = report(&pg, true, fs.dir.path());
    let backup = r.items.last().expect("backup item");
    assert_eq!(backup.ok, Some(false), "{backup:?}");
    assert!(backup.describe().contains("NOT ENOUGH"));
    assert!(!r.all_ok());
    assert_eq!(r.short().count(), 1);
}
