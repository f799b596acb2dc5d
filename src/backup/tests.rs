use std::fs;
use std::path::{Path, PathBuf};

use super::*;

fn meta(server: &str, pg_dump: &str) -> BackupMetadata {
    serde_json::from_value(serde_json::json!({
        "database": "clinic_v1", "version": "1", "fingerprint": "ab",
        "server_version": server, "pg_dump": pg_dump, "created_at": "now",
        "format": "custom", "file": "x.dump", "size": 1, "sha256": "cd"
    }))
    .expect("metadata without the newer fields still reads")
}

#[test]
fn older_metadata_reads_with_defaults() {
    let m = meta("15.4", "pg_dump (PostgreSQL) 15.4");
    assert_eq!((m.jobs, m.checksum_of.as_str(), m.entries), (1, "file", 0));
    assert!(m.schemas.is_empty());
}

#[test]
fn the_archive_needs_the_newer_of_server_and_pg_dump() {
    assert_eq!(
        archive_version_num(&meta("15.4", "pg_dump (PostgreSQL) 16.2")),
        160_000
    );
    assert_eq!(
        archive_version_num(&meta("9.6.24", "pg_dump (PostgreSQL) 9.6.24")),
        90_000
    );
}

#[test]
fn metadata_sits_beside_files_and_directories() {
    assert_eq!(
        metadata_path_of(Path::new("/b/x-v1-t.dir/")),
        PathBuf::from("/b/x-v1-t.dir.json")
    );
    assert_eq!(
        metadata_path_of(Path::new("/b/x-v1-t.dump")),
        PathBuf::from("/b/x-v1-t.dump.json")
    );
}

#[test]
fn directory_checksum_covers_names_sizes_and_contents() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("toc.dat"), b"abc").expect("write");
    fs::write(dir.path().join("1.dat.gz"), b"de").expect("write");
    let (size, first) = checksum_directory(dir.path()).expect("checksum");
    assert_eq!(size, 5);
    fs::rename(dir.path().join("1.dat.gz"), dir.path().join("2.dat.gz")).expect("rename");
    let (_, renamed) = checksum_directory(dir.path()).expect("checksum");
    assert_ne!(first, renamed, "a renamed file changes the checksum");
    // Moving a byte from one file to the next changes it too (sizes are hashed).
    fs::write(dir.path().join("2.dat.gz"), b"d").expect("write");
    fs::write(dir.path().join("toc.dat"), b"eabc").expect("write");
    let (_, moved) = checksum_directory(dir.path()).expect("checksum");
    assert_ne!(renamed, moved);
}

#[test]
fn a_name_in_use_gets_a_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v: Version = "1".parse().expect("version");
    let first = new_backup_path(dir.path(), "db", v, BackupFormat::Custom);
    fs::write(&first, b"x").expect("write");
    let second = new_backup_path(dir.path(), "db", v, BackupFormat::Custom);
    assert_ne!(first, second);
    assert!(!second.exists());
}
