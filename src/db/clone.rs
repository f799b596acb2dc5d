//! Database-level operations on the maintenance connection: clone with `CREATE DATABASE …
//! TEMPLATE`, carry over what the template copy does not (owner, comment, settings, privileges,
//! connection limit), rename, drop, make read-only.
//!
//! DDL cannot take bound parameters, so every statement here is built by the server's own
//! `format()` from bound values (`%I` quotes identifiers, `%L` literals): nothing is spliced.

use postgres::Client;

use super::acl::effective_acl;
use super::session::{DbError, describe};
use super::sessions::other_sessions;

/// SQLSTATE 55006: "source database is being accessed by other users".
const OBJECT_IN_USE: &str = "55006";

/// How CREATE DATABASE copies the template (PostgreSQL 15 and later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneStrategy {
    /// Copy through the WAL, block by block: best for small databases.
    WalLog,
    /// Copy the files after a checkpoint: best for large ones.
    FileCopy,
}

/// Runs one statement built by the server's `format()` from a template and bound arguments.
pub fn exec_format(
    client: &mut Client,
    template: &str,
    args: &[&str],
) -> Result<(), postgres::Error> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let row = client.query_one(
        "SELECT pg_catalog.format($1, VARIADIC $2::text[])",
        &[&template, &args],
    )?;
    let sql: String = row.get(0);
    client.batch_execute(&sql)
}

pub fn database_exists(client: &mut Client, name: &str) -> Result<bool, DbError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1)",
            &[&name],
        )
        .map_err(|e| DbError::query(format!("look for database {name}"), e))?;
    Ok(row.get(0))
}

pub fn database_size(client: &mut Client, name: &str) -> Result<i64, DbError> {
    let row = client
        .query_one("SELECT pg_catalog.pg_database_size($1::text)", &[&name])
        .map_err(|e| DbError::query(format!("measure database {name}"), e))?;
    Ok(row.get(0))
}

/// `CREATE DATABASE target TEMPLATE source`. Refused, listing them, while others are connected.
pub fn create_clone(
    client: &mut Client,
    source: &str,
    target: &str,
    strategy: Option<CloneStrategy>,
) -> Result<(), DbError> {
    create_clone_with(client, source, target, strategy, false)
}

/// [`create_clone`] with `ALLOW_CONNECTIONS = false`: nobody, not even a superuser, can connect
/// to the new database until [`allow_connections`] (a new database's ACL is NULL, which lets
/// PUBLIC connect: closed this way it is never open before its privileges are set).
pub fn create_closed_clone(
    client: &mut Client,
    source: &str,
    target: &str,
    strategy: Option<CloneStrategy>,
) -> Result<(), DbError> {
    create_clone_with(client, source, target, strategy, true)
}

/// `ALTER DATABASE … ALLOW_CONNECTIONS true`: who may connect is then up to its privileges.
pub fn allow_connections(client: &mut Client, db: &str) -> Result<(), DbError> {
    exec_format(client, "ALTER DATABASE %I ALLOW_CONNECTIONS true", &[db])
        .map_err(|e| DbError::query(format!("allow connections to database \"{db}\""), e))
}

fn create_clone_with(
    client: &mut Client,
    source: &str,
    target: &str,
    strategy: Option<CloneStrategy>,
    closed: bool,
) -> Result<(), DbError> {
    let template = match (strategy, closed) {
        (None, false) => "CREATE DATABASE %I TEMPLATE %I",
        (None, true) => "CREATE DATABASE %I TEMPLATE %I ALLOW_CONNECTIONS = false",
        (Some(CloneStrategy::WalLog), false) => "CREATE DATABASE %I TEMPLATE %I STRATEGY = WAL_LOG",
        (Some(CloneStrategy::WalLog), true) => {
            "CREATE DATABASE %I TEMPLATE %I STRATEGY = WAL_LOG ALLOW_CONNECTIONS = false"
        }
        (Some(CloneStrategy::FileCopy), false) => {
            "CREATE DATABASE %I TEMPLATE %I STRATEGY = FILE_COPY"
        }
        (Some(CloneStrategy::FileCopy), true) => {
            "CREATE DATABASE %I TEMPLATE %I STRATEGY = FILE_COPY ALLOW_CONNECTIONS = false"
        }
    };
    match exec_format(client, template, &[target, source]) {
        Ok(()) => Ok(()),
        Err(e) if e.code().is_some_and(|c| c.code() == OBJECT_IN_USE) => {
            let sessions = other_sessions(client, source).unwrap_or_default();
            let list: Vec<String> = sessions.iter().map(|s| format!("  {s}")).collect();
            Err(DbError::Refused(format!(
                "cannot clone database \"{source}\": other sessions are connected to it and PostgreSQL \
                 copies a database only when nobody uses it:\n{}\n  Ask them to disconnect (or stop the \
                 application) and run pgstep again.",
                if list.is_empty() {
                    "  (they left before they could be listed)".to_owned()
                } else {
                    list.join("\n")
                }
            )))
        }
        Err(e) => Err(DbError::query(
            format!("clone database \"{source}\" into \"{target}\""),
            e,
        )),
    }
}

/// What `carry_over` copied, for the report.
#[derive(Debug, Default, Clone)]
pub struct CarriedOver {
    pub actions: Vec<String>,
}

/// Copies to `target` what CREATE DATABASE … TEMPLATE leaves behind: owner, comment,
/// database-level and role-in-database settings, privileges and connection limit.
pub fn carry_over(
    client: &mut Client,
    source: &str,
    target: &str,
    acl: Option<&[(String, String, bool)]>,
) -> Result<CarriedOver, DbError> {
    let mut done = CarriedOver::default();
    let q = |what: &str| format!("carry the {what} of \"{source}\" over to \"{target}\"");
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_get_userbyid(datdba)::text, pg_catalog.shobj_description(oid, 'pg_database'), \
                    datconnlimit \
             FROM pg_catalog.pg_database WHERE datname = $1",
            &[&source],
        )
        .map_err(|e| DbError::query(q("owner"), e))?;
    let (owner, comment, connlimit): (String, Option<String>, i32) =
        (row.get(0), row.get(1), row.get(2));
    exec_format(client, "ALTER DATABASE %I OWNER TO %I", &[target, &owner])
        .map_err(|e| DbError::query(q("owner"), e))?;
    done.actions.push(format!("owner {owner}"));
    if let Some(comment) = comment {
        exec_format(client, "COMMENT ON DATABASE %I IS %L", &[target, &comment])
            .map_err(|e| DbError::query(q("comment"), e))?;
        done.actions.push("comment".into());
    }
    if connlimit != -1 {
        let limit = connlimit.to_string();
        exec_format(
            client,
            "ALTER DATABASE %I CONNECTION LIMIT %s",
            &[target, &limit],
        )
        .map_err(|e| DbError::query(q("connection limit"), e))?;
        done.actions.push(format!("connection limit {limit}"));
    }
    carry_settings(client, source, target, &mut done)
        .map_err(|e| DbError::query(q("settings"), e))?;
    carry_privileges(client, source, target, &owner, acl, &mut done)?;
    Ok(done)
}

fn carry_settings(
    client: &mut Client,
    source: &str,
    target: &str,
    done: &mut CarriedOver,
) -> Result<(), postgres::Error> {
    let rows = client.query(
        "SELECT r.rolname::text, s.setconfig \
         FROM pg_catalog.pg_db_role_setting s \
         JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase \
         LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole \
         WHERE d.datname = $1",
        &[&source],
    )?;
    for row in rows {
        let role: Option<String> = row.get(0);
        let config: Vec<String> = row.get(1);
        for item in config {
            let Some((name, value)) = item.split_once('=') else {
                continue;
            };
            let values = setting_values(name, value);
            let name_sql = quoted_setting_name(client, name)?;
            let (template, args): (String, Vec<&str>) = match &role {
                None => (
                    "ALTER DATABASE %I SET %s TO %s".into(),
                    vec![target, &name_sql],
                ),
                Some(r) => (
                    "ALTER ROLE %I IN DATABASE %I SET %s TO %s".into(),
                    vec![r, target, &name_sql],
                ),
            };
            let literals = client.query_one(
                "SELECT pg_catalog.string_agg(pg_catalog.quote_literal(v), ', ' ORDER BY n) \
                 FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY AS x(v, n)",
                &[&values],
            )?;
            let literals: String = literals.get(0);
            let mut all = args.clone();
            all.push(&literals);
            exec_format(client, &template, &all)?;
            done.actions.push(match &role {
                None => format!("setting {name}"),
                Some(r) => format!("setting {name} for role {r}"),
            });
        }
    }
    Ok(())
}

/// A setting's name with each dotted part quoted (`app.mode` → `"app".mode`).
fn quoted_setting_name(client: &mut Client, name: &str) -> Result<String, postgres::Error> {
    let row = client.query_one(
        "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(p), '.' ORDER BY n) \
         FROM pg_catalog.unnest(pg_catalog.string_to_array($1, '.')) WITH ORDINALITY AS x(p, n)",
        &[&name],
    )?;
    Ok(row.get(0))
}

/// The values of a stored setting. List-valued settings are stored as a quoted list and must be
/// given back element by element, or `search_path = '"$user", public'` would become one schema
/// named `"$user", public` (pg_dump's SplitGUCList does the same).
pub fn setting_values(name: &str, value: &str) -> Vec<String> {
    const LIST_SETTINGS: [&str; 6] = [
        "local_preload_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    ];
    if !LIST_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
        return vec![value.to_owned()];
    }
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut current).trim().to_owned()),
            c if c.is_whitespace() && !quoted && current.trim().is_empty() => {}
            c => current.push(c),
        }
    }
    out.push(current.trim().to_owned());
    out.retain(|v| !v.is_empty());
    out
}

/// Grants on the database itself, made equal to the source's and then compared.
/// Grants on the database itself, made equal to `acl` (the source's own when None: during a
/// downtime the source's access is blocked, and the caller passes what it was before) and then
/// compared. Grantors are not compared.
fn carry_privileges(
    client: &mut Client,
    source: &str,
    target: &str,
    owner: &str,
    acl: Option<&[(String, String, bool)]>,
    done: &mut CarriedOver,
) -> Result<(), DbError> {
    let q = |e| {
        DbError::query(
            format!("carry the privileges of \"{source}\" over to \"{target}\""),
            e,
        )
    };
    let grants = match acl {
        Some(acl) => {
            let mut v = acl.to_vec();
            v.sort();
            v
        }
        None => effective_acl(client, source).map_err(q)?,
    };
    if grants == effective_acl(client, target).map_err(q)? {
        return Ok(()); // already equal (the default privileges, typically)
    }
    exec_format(
        client,
        "REVOKE ALL ON DATABASE %I FROM PUBLIC, %I",
        &[target, owner],
    )
    .map_err(q)?;
    for (grantee, privilege, grantable) in &grants {
        let template = match (grantee.as_str(), grantable) {
            ("PUBLIC", false) => "GRANT %s ON DATABASE %I TO PUBLIC",
            ("PUBLIC", true) => "GRANT %s ON DATABASE %I TO PUBLIC WITH GRANT OPTION",
            (_, false) => "GRANT %s ON DATABASE %I TO %I",
            (_, true) => "GRANT %s ON DATABASE %I TO %I WITH GRANT OPTION",
        };
        let args: Vec<&str> = if grantee == "PUBLIC" {
            vec![privilege, target]
        } else {
            vec![privilege, target, grantee]
        };
        exec_format(client, template, &args).map_err(q)?;
    }
    let copied = effective_acl(client, target).map_err(q)?;
    if copied != grants {
        return Err(DbError::Refused(format!(
            "the privileges on database \"{target}\" could not be made equal to those of \"{source}\": expected {grants:?}, found {copied:?}"
        )));
    }
    done.actions.push(format!("{} privilege(s)", grants.len()));
    Ok(())
}

pub fn drop_database(client: &mut Client, name: &str) -> Result<(), DbError> {
    exec_format(client, "DROP DATABASE IF EXISTS %I", &[name]).map_err(|e| {
        DbError::Refused(format!(
            "failed to drop database \"{name}\": {}",
            describe(&e)
        ))
    })
}

/// Drops a database pgstep made, ending whatever session still uses it: `WITH (FORCE)` on
/// PostgreSQL 13 and later (a killed run's session may still be executing a statement in it);
/// a plain DROP before that.
pub fn drop_database_force(client: &mut Client, name: &str) -> Result<(), DbError> {
    let version: i32 = client
        .query_one(
            "SELECT pg_catalog.current_setting('server_version_num')::int",
            &[],
        )
        .map_err(|e| DbError::query("read the server version", e))?
        .get(0);
    let sql = if version >= 130_000 {
        "DROP DATABASE IF EXISTS %I WITH (FORCE)"
    } else {
        "DROP DATABASE IF EXISTS %I"
    };
    exec_format(client, sql, &[name]).map_err(|e| {
        DbError::Refused(format!(
            "failed to drop database \"{name}\": {}",
            describe(&e)
        ))
    })
}

pub fn rename_database(client: &mut Client, from: &str, to: &str) -> Result<(), DbError> {
    exec_format(client, "ALTER DATABASE %I RENAME TO %I", &[from, to])
        .map_err(|e| DbError::query(format!("rename database \"{from}\" to \"{to}\""), e))
}

/// New sessions on `name` start read-only (existing ones are unaffected).
pub fn set_read_only(client: &mut Client, name: &str) -> Result<(), DbError> {
    exec_format(
        client,
        "ALTER DATABASE %I SET default_transaction_read_only = on",
        &[name],
    )
    .map_err(|e| DbError::query(format!("make database \"{name}\" read-only"), e))
}

/// A table's storage as the catalog records it: what tells whether an upgrade rewrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFile {
    pub oid: u32,
    /// `schema.table`
    pub name: String,
    /// A rewrite (ALTER TABLE … TYPE, VACUUM FULL, CLUSTER, TRUNCATE) gives the table a new file.
    pub filenode: u32,
    /// The planner's row count (exact after ANALYZE; negative: never analysed).
    pub rows: f64,
    /// Bytes, TOAST included.
    pub bytes: u64,
}

/// The tables (and materialized views) of `schemas`, with their files. A clone made by
/// `CREATE DATABASE … TEMPLATE` keeps its template's OIDs and file numbers, so comparing the
/// clone's list with the source's names what the upgrade rewrote and what it created.
pub fn table_files(client: &mut Client, schemas: &[String]) -> Result<Vec<TableFile>, DbError> {
    let rows = client
        .query(
            "SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname), c.relfilenode, \
                    c.reltuples::float8, pg_catalog.pg_table_size(c.oid) \
               FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relkind IN ('r', 'm') AND n.nspname = ANY ($1) \
              ORDER BY 2",
            &[&schemas],
        )
        .map_err(|e| DbError::query("list the tables and their files", e))?;
    Ok(rows
        .iter()
        .map(|r| TableFile {
            oid: r.get(0),
            name: r.get(1),
            filenode: r.get(2),
            rows: r.get(3),
            bytes: u64::try_from(r.get::<_, i64>(4)).unwrap_or(0),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::setting_values;

    #[test]
    fn list_settings_are_split_like_pg_dump_does() {
        assert_eq!(
            setting_values("search_path", "\"$user\", public"),
            vec!["$user", "public"]
        );
        assert_eq!(
            setting_values("search_path", "clinic,\"odd, name\",\"q\"\"uote\""),
            vec!["clinic", "odd, name", "q\"uote"]
        );
        assert_eq!(setting_values("work_mem", "64MB"), vec!["64MB"]);
        assert_eq!(
            setting_values("TimeZone", "Europe/Berlin"),
            vec!["Europe/Berlin"]
        );
    }
}
