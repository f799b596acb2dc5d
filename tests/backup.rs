//! Backups with the real pg_dump against a throw-away cluster: complete and verified in both
//! formats, described by their metadata, nothing left behind on failure, cancellation or a full
//! disk, and GNUmed's read-through.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Pg, Recorder, sample_bundle};
use pgstep::backup::{
    Backup, BackupError, BackupFormat, BackupRequest, read_metadata, read_through, take_backup,
    verify,
};
use pgstep::bundle::{Bundle, Version};
use pgstep::cancel::Cancel;
use pgstep::events::{Event, Unit};

const PATIENTS: u64 = 2_000;

fn v1() -> Version {
    "1".parse().expect("version")
}

fn clinic_v1(bundle: &Bundle) -> Pg {
    common::clinic_v1(bundle, PATIENTS)
}

fn server_version(pg: &Pg) -> u32 {
    pgstep::fingerprint::server_version_num(&mut pg.client("postgres")).expect("version")
}

fn backup_of(
    pg: &Pg,
    bundle: &Bundle,
    db: &str,
    dir: &Path,
    format: BackupFormat,
    cancel: &Cancel,
    obs: &mut dyn pgstep::events::Observer,
) -> Result<Backup, BackupError> {
    let settings = pg.settings("postgres");
    take_backup(
        &BackupRequest {
            server: &settings,
            db,
            dir,
            format,
            server_version_num: server_version(pg),
            version: v1(),
            fingerprint: "0123",
            schemas: &bundle.schemas,
            snapshot: None,
            alongside: false,
            path: None,
            fault: None,
        },
        cancel,
        obs,
    )
}

/// Every name in the directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn progress(rec: &Recorder, unit: Unit) -> Vec<(u64, Option<u64>)> {
    rec.events
        .iter()
        .filter_map(|e| match e {
            Event::Progress {
                unit: u,
                done,
                total,
            } if *u == unit => Some((*done, *total)),
            _ => None,
        })
        .collect()
}

fn assert_complete(backup: &Backup, bundle: &Bundle, format: &str, jobs: u32) {
    let meta = read_metadata(&backup.path).expect("metadata");
    assert_eq!(meta.database, "clinic_v1");
    assert_eq!(meta.version, "1");
    assert_eq!(meta.fingerprint, "0123");
    assert_eq!(meta.schemas, bundle.schemas);
    assert_eq!(meta.format, format);
    assert_eq!(meta.jobs, jobs);
    assert_eq!(meta.size, backup.size);
    assert_eq!(meta.sha256, backup.sha256);
    assert_eq!(meta.entries, backup.entries);
    assert_eq!(meta.pgstep_version, env!("CARGO_PKG_VERSION"));
    assert!(meta.pg_dump.starts_with("pg_dump (PostgreSQL)"), "{meta:?}");
    assert_eq!(
        read_metadata(&backup.metadata_path).expect("by its json"),
        meta
    );
    assert_eq!(
        verify(&backup.path, &meta).expect("verifies"),
        backup.entries
    );
}

#[test]
fn a_custom_backup_is_verified_described_and_reports_its_progress() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rec = Recorder::default();
    let backup = backup_of(
        &pg,
        &bundle,
        "clinic_v1",
        dir.path(),
        BackupFormat::Custom,
        &Cancel::new(),
        &mut rec,
    )
    .unwrap_or_else(|e| panic!("{e}"));

    assert!(backup.path.is_file());
    assert!(backup.entries > 10, "{backup:?}");
    assert_complete(&backup, &bundle, "custom", 1);
    let name = backup.path.file_name().expect("name").to_string_lossy();
    assert_eq!(
        listing(dir.path()),
        vec![name.to_string(), format!("{name}.json")],
        "exactly the backup and its metadata, nothing partial"
    );
    assert!(rec.has_log("pg_dump: dumping contents of table \"clinic.patient\""));
    let tables = progress(&rec, Unit::Tables);
    let total: i64 = pg.query_one(
        "clinic_v1",
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE relkind = 'r' AND nspname NOT IN ('pg_catalog', 'information_schema')",
    );
    let total = u64::try_from(total).expect("count");
    assert_eq!(tables.first(), Some(&(0, Some(total))));
    assert_eq!(tables.last(), Some(&(total, Some(total))), "{tables:?}");
    assert_eq!(backup.tables, total);
    let bytes = progress(&rec, Unit::Bytes);
    assert_eq!(bytes.last(), Some(&(backup.size, None)), "{bytes:?}");
}

#[test]
fn a_directory_backup_with_two_jobs_is_verified_and_described() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rec = Recorder::default();
    let backup = backup_of(
        &pg,
        &bundle,
        "clinic_v1",
        dir.path(),
        BackupFormat::Directory { jobs: 2 },
        &Cancel::new(),
        &mut rec,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(backup.path.is_dir());
    assert!(backup.path.join("toc.dat").is_file());
    assert!(backup.path.to_string_lossy().ends_with(".dir"));
    assert_complete(&backup, &bundle, "directory", 2);
    let meta = read_metadata(&backup.path).expect("metadata");
    assert_eq!(meta.checksum_of, "sorted files");
    assert_eq!(
        backup.metadata_path,
        PathBuf::from(format!("{}.json", backup.path.display()))
    );
    assert!(backup.tables > 0);
}

#[test]
fn a_modified_backup_fails_verification_with_the_reason() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let dir = tempfile::tempdir().expect("tempdir");
    let backup = backup_of(
        &pg,
        &bundle,
        "clinic_v1",
        dir.path(),
        BackupFormat::Custom,
        &Cancel::new(),
        &mut Recorder::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let meta = read_metadata(&backup.path).expect("metadata");
    let mut bytes = std::fs::read(&backup.path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&backup.path, &bytes).expect("write");
    let err = verify(&backup.path, &meta).expect_err("a flipped bit is found");
    let text = err.to_string();
    assert!(
        text.contains("checksum mismatch: the backup was modified or damaged"),
        "{text}"
    );
    assert!(
        text.contains(&backup.path.display().to_string()),
        "names the file: {text}"
    );
    bytes.pop();
    std::fs::write(&backup.path, &bytes).expect("write");
    let text = verify(&backup.path, &meta)
        .expect_err("shorter")
        .to_string();
    assert!(text.contains("size mismatch"), "{text}");
}

#[test]
fn a_backup_of_a_missing_database_fails_and_leaves_nothing() {
    let bundle = sample_bundle();
    let pg = Pg::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let err = backup_of(
        &pg,
        &bundle,
        "no_such_db",
        dir.path(),
        BackupFormat::Custom,
        &Cancel::new(),
        &mut Recorder::default(),
    )
    .expect_err("no such database");
    let text = err.to_string();
    assert!(text.contains("no_such_db"), "{text}");
    assert!(!err.is_cancelled());
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

/// No session of pg_dump is left on the server (waits, with a deadline, for the server to
/// notice that the killed client's connection is gone).
fn wait_until_no_pg_dump_session(pg: &Pg) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = pg.query_one(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'",
        );
        if n == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} pg_dump session(s) still connected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cancel_on_first_progress(format: BackupFormat) {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let dir = tempfile::tempdir().expect("tempdir");
    let cancel = Cancel::new();
    let requester = cancel.clone();
    let mut events = Vec::new();
    let mut obs = |e: Event| {
        if matches!(e, Event::Progress { .. }) && !requester.requested() {
            requester.request();
        }
        events.push(e);
    };
    let err = backup_of(
        &pg,
        &bundle,
        "clinic_v1",
        dir.path(),
        format,
        &cancel,
        &mut obs,
    )
    .expect_err("cancelled");
    assert!(err.is_cancelled(), "{err}");
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert_eq!(
        listing(dir.path()),
        Vec::<String>::new(),
        "no partial output"
    );
    wait_until_no_pg_dump_session(&pg);
}

#[test]
fn cancelling_a_custom_backup_kills_pg_dump_and_leaves_nothing() {
    cancel_on_first_progress(BackupFormat::Custom);
}

#[test]
fn cancelling_a_parallel_directory_backup_leaves_nothing() {
    cancel_on_first_progress(BackupFormat::Directory { jobs: 2 });
}

#[test]
fn read_through_reads_every_table_and_reports_the_bytes() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let mut rec = Recorder::default();
    let bytes = read_through(
        &pg.settings("postgres"),
        "clinic_v1",
        server_version(&pg),
        &Cancel::new(),
        &mut rec,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The patient table alone is bigger than this uncompressed.
    assert!(bytes > 100_000, "{bytes}");
    let tables = progress(&rec, Unit::Tables);
    let (done, total) = tables.last().copied().expect("table progress");
    assert_eq!(Some(done), total, "{tables:?}");
    assert_eq!(progress(&rec, Unit::Bytes).last(), Some(&(bytes, None)));
    assert!(rec.has_log("pg_dump: dumping contents of table \"clinic.encounter\""));
}

#[test]
fn read_through_of_a_missing_database_fails_with_its_name() {
    let pg = Pg::start();
    let err = read_through(
        &pg.settings("postgres"),
        "no_such_db",
        server_version(&pg),
        &Cancel::new(),
        &mut Recorder::default(),
    )
    .expect_err("no such database");
    assert!(err.to_string().contains("no_such_db"), "{err}");
}

/// A small tmpfs, unmounted (and its mount point removed) when dropped.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// `None` when this machine cannot mount one (not root, no tmpfs, in a restricted container).
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_fails_the_backup_cleanly_with_advice() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    // The sample's dump is several hundred kB; 64 kB cannot hold it.
    let Some(fs) = SmallFs::mount("64k") else {
        eprintln!(
            "skipped: cannot mount a small tmpfs here (needs root and permission to mount); \
             the full-disk path is then untested"
        );
        return;
    };
    for format in [BackupFormat::Custom, BackupFormat::Directory { jobs: 2 }] {
        let err = backup_of(
            &pg,
            &bundle,
            "clinic_v1",
            fs.path(),
            format,
            &Cancel::new(),
            &mut Recorder::default(),
        )
        .expect_err("the disk is full");
        let text = err.to_string();
        assert!(text.contains("No space left on device"), "{text}");
        assert!(text.contains("--backup-dir"), "{text}");
        assert!(text.contains("partial backup was removed"), "{text}");
        assert_eq!(listing(fs.path()), Vec::<String>::new(), "{format:?}");
    }
}
