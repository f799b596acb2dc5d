//! The disk-space step of the checklist: is there room for the clone (where the server keeps
//! the source database: its data directory and tablespaces) and for the backup (where pgstep
//! writes it)? Needs come from the server's real sizes; free space is measured only where this
//! machine can see the place, and everything else is reported as unmeasurable so that the
//! operator is asked to confirm rather than told a guess.
//!
//! # What is needed
//! - **Clone**: `CREATE DATABASE … TEMPLATE` copies every file of the source, each into the
//!   tablespace it is in. Each place needs the source's bytes there plus a margin of
//!   [`CLONE_MARGIN_PERCENT`] % and [`CLONE_MARGIN_FIXED`] bytes: the upgrade scripts then grow
//!   the clone (a rewritten table exists twice until its transaction ends, new indexes, new
//!   rows), and a filesystem must never be run full under PostgreSQL — a full disk stops every
//!   database of the server, not just the clone. WAL is not counted separately: it is bounded by
//!   `max_wal_size` and recycled, but a data directory with less free space than that is tight
//!   even when this check passes.
//! - **Backup**: the heap and TOAST sizes of the tables pg_dump copies (indexes are not dumped,
//!   they are rebuilt on restore), plus large objects, plus [`BACKUP_MARGIN`] for the schema and
//!   the metadata. pgstep's formats compress, so this is an upper bound in practice (dead rows
//!   and free space in the tables are not dumped either), not a promise.
//!
//! Places on the same filesystem share its free space: their needs are added up before they are
//! compared with it.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use postgres::Client;
use serde::Serialize;

use crate::db::DbError;

/// Percent of the source's size added to the clone's need (see the module documentation).
pub const CLONE_MARGIN_PERCENT: u64 = 10;
/// Bytes added to the clone's need in each place (see the module documentation).
pub const CLONE_MARGIN_FIXED: u64 = 64 << 20;
/// Bytes added to the backup's estimate for the schema, table of contents and metadata.
pub const BACKUP_MARGIN: u64 = 16 << 20;

/// SQLSTATE 42501: insufficient privilege (SHOW data_directory without pg_read_all_settings).
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// One place that needs room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaceItem {
    /// What goes there: "clone of clinic_v1 (data directory)".
    pub what: String,
    /// Where, as the server (or for the backup, this machine) names it; empty when unknown.
    pub path: PathBuf,
    /// The filesystem (`st_dev`) the path is on, when this machine can see it.
    pub filesystem_dev: Option<u64>,
    /// Bytes needed, margin included.
    pub required: u64,
    /// Bytes free for an unprivileged writer (df's "Avail"), when measurable.
    pub available: Option<u64>,
    /// Whether the filesystem's free space covers this and every other need on it; `None` when
    /// it cannot be measured, and the operator must confirm.
    pub ok: Option<bool>,
    /// Why it could not be measured, or with what it shares its filesystem.
    pub note: Option<String>,
}

impl SpaceItem {
    /// One line for the operator: "clone of clinic_v1 (data directory) /var/lib/postgresql/15/main:
    /// 1.2 GB needed, 40.3 GB free".
    pub fn describe(&self) -> String {
        let place = if self.path.as_os_str().is_empty() {
            String::new()
        } else {
            format!(" {}", self.path.display())
        };
        let free = match self.available {
            Some(a) => format!("{} free", crate::format::bytes(a)),
            None => "free space unknown".to_owned(),
        };
        let verdict = match self.ok {
            Some(true) => String::new(),
            Some(false) => " — NOT ENOUGH".to_owned(),
            None => " — confirm there is room".to_owned(),
        };
        let note = self
            .note
            .as_ref()
            .map_or(String::new(), |n| format!(" ({n})"));
        format!(
            "{}{place}: {} needed, {free}{verdict}{note}",
            self.what,
            crate::format::bytes(self.required)
        )
    }
}

/// The disk-space check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskReport {
    pub items: Vec<SpaceItem>,
    /// Every item could be measured (each `ok` is `Some`).
    pub measurable: bool,
}

impl DiskReport {
    /// Whether every place was measured and has room.
    pub fn all_ok(&self) -> bool {
        self.items.iter().all(|i| i.ok == Some(true))
    }

    /// The items that were measured and lack room.
    pub fn short(&self) -> impl Iterator<Item = &SpaceItem> {
        self.items.iter().filter(|i| i.ok == Some(false))
    }
}

/// Checks the room for cloning `source_db` and for its backup in `backup_dir` (created if
/// missing). `client` must be connected to `source_db` (its catalog says which tablespaces the
/// database uses). `server_is_local`: the server's paths are paths on this machine (the caller
/// knows: a Unix socket or localhost); otherwise they are reported as unmeasurable.
pub fn check(
    client: &mut Client,
    server_is_local: bool,
    source_db: &str,
    backup_dir: Option<&Path>,
) -> Result<DiskReport, DbError> {
    ensure_connected_to(client, source_db)?;
    let mut items = clone_items(client, source_db)?;
    for item in &mut items {
        measure(item, server_is_local);
    }
    if let Some(dir) = backup_dir {
        let mut backup = backup_item(client, source_db, dir)?;
        measure(&mut backup, true);
        items.push(backup);
    }
    judge(&mut items);
    let measurable = items.iter().all(|i| i.ok.is_some());
    Ok(DiskReport { items, measurable })
}

fn ensure_connected_to(client: &mut Client, source_db: &str) -> Result<(), DbError> {
    let current: String = client
        .query_one("SELECT pg_catalog.current_database()::text", &[])
        .map_err(|e| DbError::query("read the current database", e))?
        .get(0);
    if current == source_db {
        Ok(())
    } else {
        Err(DbError::Refused(format!(
            "the disk-space check of \"{source_db}\" needs a connection to \"{source_db}\", not to \"{current}\""
        )))
    }
}

/// Bytes of the source in one tablespace, and where that tablespace is.
struct TablespaceUse {
    name: String,
    /// Empty for pg_default (the data directory).
    location: String,
    bytes: u64,
}

/// The clone's needs: the data directory for what is in pg_default, each other tablespace for
/// what the source keeps there.
fn clone_items(client: &mut Client, source_db: &str) -> Result<Vec<SpaceItem>, DbError> {
    let total = non_negative(
        client
            .query_one(
                "SELECT pg_catalog.pg_database_size(pg_catalog.current_database())",
                &[],
            )
            .map_err(|e| DbError::query(format!("measure database \"{source_db}\""), e))?
            .get(0),
    );
    let elsewhere = tablespaces_in_use(client, source_db)?;
    let in_other_tablespaces: u64 = elsewhere.iter().map(|t| t.bytes).sum();
    let data_dir = data_directory(client)?;
    let mut items = vec![SpaceItem {
        what: format!("clone of {source_db} (data directory)"),
        path: data_dir.clone().map(PathBuf::from).unwrap_or_default(),
        filesystem_dev: None,
        required: with_clone_margin(total.saturating_sub(in_other_tablespaces)),
        available: None,
        ok: None,
        note: data_dir.is_none().then(|| {
            "where it is cannot be read: SHOW data_directory needs a superuser or a member of pg_read_all_settings"
                .to_owned()
        }),
    }];
    items.extend(elsewhere.into_iter().map(|t| SpaceItem {
        what: format!("clone of {source_db} (tablespace {})", t.name),
        path: PathBuf::from(t.location),
        filesystem_dev: None,
        required: with_clone_margin(t.bytes),
        available: None,
        ok: None,
        note: None,
    }));
    Ok(items)
}

/// `SHOW data_directory`, or `None` when this role may not read it.
fn data_directory(client: &mut Client) -> Result<Option<String>, DbError> {
    match client.query_one("SHOW data_directory", &[]) {
        Ok(row) => Ok(Some(row.get(0))),
        Err(e) if e.code().is_some_and(|c| c.code() == INSUFFICIENT_PRIVILEGE) => Ok(None),
        Err(e) => Err(DbError::query(
            "read the data directory (SHOW data_directory)",
            e,
        )),
    }
}

/// The source's bytes in each tablespace other than pg_default, by relation, each relation in
/// its own tablespace or else the database's default one.
fn tablespaces_in_use(client: &mut Client, source_db: &str) -> Result<Vec<TablespaceUse>, DbError> {
    let rows = client
        .query(
            "SELECT t.spcname::text, pg_catalog.pg_tablespace_location(t.oid), \
                    sum(pg_catalog.pg_relation_size(c.oid, 'main') + pg_catalog.pg_relation_size(c.oid, 'fsm') \
                      + pg_catalog.pg_relation_size(c.oid, 'vm') + pg_catalog.pg_relation_size(c.oid, 'init'))::bigint \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_database d ON d.datname = pg_catalog.current_database() \
             JOIN pg_catalog.pg_tablespace t \
               ON t.oid = CASE WHEN c.reltablespace = 0 THEN d.dattablespace ELSE c.reltablespace END \
             WHERE c.relkind IN ('r', 'i', 't', 'm', 'S') AND NOT c.relisshared \
               AND t.spcname NOT IN ('pg_default', 'pg_global') \
             GROUP BY 1, 2 ORDER BY 1",
            &[],
        )
        .map_err(|e| DbError::query(format!("list the tablespaces of \"{source_db}\""), e))?;
    Ok(rows
        .iter()
        .map(|r| TablespaceUse {
            name: r.get(0),
            location: r.get(1),
            bytes: non_negative(r.get(2)),
        })
        .collect())
}

/// The backup's need in `dir`, which is created if missing (it is always on this machine).
fn backup_item(client: &mut Client, source_db: &str, dir: &Path) -> Result<SpaceItem, DbError> {
    crate::paths::private_dir(dir).map_err(|e| {
        DbError::Refused(format!(
            "cannot create the backup directory {}: {e}; choose another one with --backup-dir",
            dir.display()
        ))
    })?;
    let row = client
        .query_one(
            "SELECT (SELECT coalesce(sum(pg_catalog.pg_table_size(c.oid)), 0)::bigint \
                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind = 'r' \
                       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')), \
                    pg_catalog.pg_table_size('pg_catalog.pg_largeobject')",
            &[],
        )
        .map_err(|e| DbError::query(format!("estimate the backup size of \"{source_db}\""), e))?;
    let tables = non_negative(row.get(0));
    let large_objects = non_negative(row.get(1));
    Ok(SpaceItem {
        what: format!("backup of {source_db} (backup directory)"),
        path: dir.to_path_buf(),
        filesystem_dev: None,
        required: tables + large_objects + BACKUP_MARGIN,
        available: None,
        ok: None,
        note: None,
    })
}

/// Fills in the filesystem and its free space when the path can be seen from here.
fn measure(item: &mut SpaceItem, local: bool) {
    if !local {
        item.note.get_or_insert_with(|| {
            "the server is not on this machine: check the free space there".to_owned()
        });
        return;
    }
    if item.path.as_os_str().is_empty() {
        return;
    }
    let measured = std::fs::metadata(&item.path)
        .and_then(|m| Ok((m.dev(), fs4::available_space(&item.path)?)));
    match measured {
        Ok((dev, available)) => {
            item.filesystem_dev = Some(dev);
            item.available = Some(available);
        }
        Err(e) => {
            item.note
                .get_or_insert_with(|| format!("cannot be measured from here: {e}"));
        }
    }
}

/// Sets `ok` for every measured item: the needs of all items on one filesystem, together,
/// against its free space.
fn judge(items: &mut [SpaceItem]) {
    let mut per_fs: BTreeMap<u64, u64> = BTreeMap::new();
    for item in items.iter() {
        if let Some(dev) = item.filesystem_dev {
            *per_fs.entry(dev).or_default() += item.required;
        }
    }
    let sharing: Vec<(Option<u64>, String)> = items
        .iter()
        .map(|i| (i.filesystem_dev, i.what.clone()))
        .collect();
    for (n, item) in items.iter_mut().enumerate() {
        let (Some(dev), Some(available)) = (item.filesystem_dev, item.available) else {
            continue;
        };
        let together = per_fs.get(&dev).copied().unwrap_or(item.required);
        item.ok = Some(available >= together);
        let others: Vec<&str> = sharing
            .iter()
            .enumerate()
            .filter(|(m, (d, _))| *m != n && *d == Some(dev))
            .map(|(_, (_, w))| w.as_str())
            .collect();
        if !others.is_empty() {
            item.note = Some(format!(
                "same filesystem as {}: {} needed together",
                others.join(", "),
                crate::format::bytes(together)
            ));
        }
    }
}

fn with_clone_margin(bytes: u64) -> u64 {
    bytes + bytes * CLONE_MARGIN_PERCENT / 100 + CLONE_MARGIN_FIXED
}

fn non_negative(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(what: &str, dev: Option<u64>, required: u64, available: Option<u64>) -> SpaceItem {
        SpaceItem {
            what: what.into(),
            path: PathBuf::from("/x"),
            filesystem_dev: dev,
            required,
            available,
            ok: None,
            note: None,
        }
    }

    #[test]
    fn needs_on_one_filesystem_add_up() {
        let mut items = vec![
            item("clone (data directory)", Some(1), 600, Some(1000)),
            item("backup (backup directory)", Some(1), 500, Some(1000)),
            item("clone (tablespace fast)", Some(2), 500, Some(1000)),
            item("clone (remote)", None, 500, None),
        ];
        judge(&mut items);
        assert_eq!(items[0].ok, Some(false), "600 + 500 > 1000");
        assert_eq!(items[1].ok, Some(false));
        assert_eq!(items[2].ok, Some(true));
        assert_eq!(items[3].ok, None);
        assert!(
            items[0]
                .note
                .as_deref()
                .is_some_and(|n| n.contains("backup (backup directory)")),
            "{:?}",
            items[0].note
        );
    }

    #[test]
    fn the_description_says_need_free_and_verdict() {
        let mut i = item(
            "clone of clinic_v1 (data directory)",
            Some(1),
            1_200_000_000,
            Some(40_300_000_000),
        );
        i.path = PathBuf::from("/var/lib/postgresql/15/main");
        i.ok = Some(true);
        assert_eq!(
            i.describe(),
            "clone of clinic_v1 (data directory) /var/lib/postgresql/15/main: 1.2 GB needed, 40.3 GB free"
        );
        i.ok = Some(false);
        assert!(i.describe().ends_with("NOT ENOUGH"));
        i.available = None;
        i.ok = None;
        assert!(
            i.describe()
                .contains("free space unknown — confirm there is room")
        );
    }

    #[test]
    fn the_margin_covers_growth_and_a_floor() {
        assert_eq!(with_clone_margin(0), CLONE_MARGIN_FIXED);
        assert_eq!(with_clone_margin(1000), 1100 + CLONE_MARGIN_FIXED);
    }
}
