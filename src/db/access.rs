//! Who may connect to a database during the downtime: block new connections, restore exactly the
//! access there was before. (Closing the old database for good is `retire.rs`; ending sessions
//! and telling clients, `sessions.rs`; reading the ACL, `acl.rs`.)
//!
//! Access is the `CONNECT` privilege on the database (and its connection limit). [`block`] takes
//! `CONNECT` from everyone but the operator and returns an [`AccessSnapshot`] of what there was,
//! which the journal keeps so that [`restore`] can put it back even after a crash. Superusers
//! cannot be blocked this way (privileges do not apply to them): [`BlockReport`] lists them so the
//! operator is told. `pg_hba.conf` is not touched.
//!
//! Every change runs in one transaction: it is all done or not at all, and nobody ever sees a
//! half-changed set of privileges. Call these outside a transaction of your own.
//!
//! DDL is built by the server's `format()` from bound values (`%I` quotes identifiers); the only
//! `%s` arguments are privilege keywords, checked against [`DATABASE_PRIVILEGES`] first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use postgres::Client;
use serde::{Deserialize, Serialize};

use super::clone::exec_format;
use super::session::DbError;

/// The privileges a database can have (what `aclexplode` calls them).
pub const DATABASE_PRIVILEGES: [&str; 3] = ["CONNECT", "CREATE", "TEMPORARY"];

/// The grantee `aclexplode` reports as 0: everybody.
const PUBLIC: &str = "PUBLIC";

/// Who could use a database, as it was: what [`restore`] makes true again.
///
/// `effective` holds (grantee, privilege, grantable) — grantee `"PUBLIC"` or a role name — from
/// `aclexplode(coalesce(datacl, acldefault('d', datdba)))`: a NULL ACL is read as the defaults it
/// stands for. One entry per grantee and privilege, grantable when any grantor gave it with grant
/// option; grantors are not kept (a restore grants as the owner, as pg_dump does). Sorted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AccessSnapshot {
    pub db: String,
    /// The ACL was NULL (never changed: the defaults). A restore grants those defaults
    /// explicitly, which gives a non-NULL ACL with the same effective privileges; that counts
    /// as restored (see [`AccessSnapshot::differences`]).
    pub acl_was_null: bool,
    pub effective: Vec<(String, String, bool)>,
    pub connlimit: i32,
    /// The owner when the snapshot was taken (for the record; restore does not change owners).
    pub owner: String,
}

impl AccessSnapshot {
    /// How `other` differs from this snapshot in effective privileges and connection limit, one
    /// sentence each; empty when they are equal. Whether the ACL is NULL is not compared: NULL
    /// and explicitly granted defaults give the same access.
    pub fn differences(&self, other: &AccessSnapshot) -> Vec<String> {
        let want = by_grant(&self.effective);
        let got = by_grant(&other.effective);
        let mut out = Vec::new();
        for ((grantee, privilege), grantable) in &want {
            match got.get(&(grantee, privilege)) {
                None => out.push(format!("{grantee} lacks {privilege}")),
                Some(g) if g != grantable => out.push(format!(
                    "{grantee} has {privilege} {}, it had it {}",
                    option_words(*g),
                    option_words(*grantable)
                )),
                Some(_) => {}
            }
        }
        for (grantee, privilege) in got.keys() {
            if !want.contains_key(&(grantee, privilege)) {
                out.push(format!("{grantee} has {privilege}, which it did not have"));
            }
        }
        if self.connlimit != other.connlimit {
            out.push(format!(
                "the connection limit is {}, it was {}",
                limit_words(other.connlimit),
                limit_words(self.connlimit)
            ));
        }
        out
    }
}

fn by_grant(entries: &[(String, String, bool)]) -> BTreeMap<(&str, &str), bool> {
    entries
        .iter()
        .map(|(g, p, o)| ((g.as_str(), p.as_str()), *o))
        .collect()
}

fn option_words(grantable: bool) -> &'static str {
    if grantable {
        "with grant option"
    } else {
        "without grant option"
    }
}

fn limit_words(limit: i32) -> String {
    if limit < 0 {
        "unlimited".to_owned()
    } else {
        limit.to_string()
    }
}

/// What [`block`] did, and who can still connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockReport {
    /// Grantees (`PUBLIC` or roles) whose CONNECT was revoked.
    pub revoked_from: Vec<String>,
    /// The operator had CONNECT only through PUBLIC or another role and was granted it directly.
    pub granted_to_operator: bool,
    /// Login roles that can still open new sessions on the database: warn the operator.
    pub can_still_connect: Vec<StillAllowed>,
}

/// A login role that a block does not keep out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StillAllowed {
    pub role: String,
    pub why: Why,
}

/// Why a role can still connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// pgstep's own role, kept on purpose.
    Operator,
    /// Superusers bypass privilege checks.
    Superuser,
    /// A member of the operator's role inherits its CONNECT.
    MemberOfOperator,
    /// Through a path pgstep does not know (should not happen; shown so it is not hidden).
    Other,
}

impl fmt::Display for StillAllowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.why {
            Why::Operator => "the role pgstep runs as",
            Why::Superuser => "a superuser: privileges do not apply to superusers",
            Why::MemberOfOperator => "a member of the role pgstep runs as, which keeps CONNECT",
            Why::Other => "still has CONNECT through a path pgstep could not revoke",
        };
        write!(f, "{} ({why})", self.role)
    }
}

/// Reads a database's access rights.
pub fn snapshot(client: &mut Client, db: &str) -> Result<AccessSnapshot, DbError> {
    let action = || format!("read the access rights of database \"{db}\"");
    let row = client
        .query_opt(
            "SELECT datacl IS NULL, datconnlimit, pg_catalog.pg_get_userbyid(datdba)::text \
             FROM pg_catalog.pg_database WHERE datname = $1",
            &[&db],
        )
        .map_err(|e| DbError::query(action(), e))?
        .ok_or_else(|| DbError::Refused(format!("database \"{db}\" does not exist")))?;
    let effective =
        super::acl::one_per_privilege(client, db).map_err(|e| DbError::query(action(), e))?;
    Ok(AccessSnapshot {
        db: db.to_owned(),
        acl_was_null: row.get(0),
        effective,
        connlimit: row.get(1),
        owner: row.get(2),
    })
}

/// Makes new connections to `db` impossible for every role but `operator` (and superusers, whom
/// privileges cannot stop): CONNECT is revoked from PUBLIC and from every grantee but the
/// operator, and granted to the operator directly when it had it only through PUBLIC or another
/// role. Sessions already connected are not affected. Returns the access there was (keep it: it
/// is what [`restore`] needs) and who can still connect.
pub fn block(
    client: &mut Client,
    db: &str,
    operator: &str,
) -> Result<(AccessSnapshot, BlockReport), DbError> {
    in_transaction(
        client,
        &format!("block new connections to \"{db}\""),
        |client| {
            let before = snapshot(client, db)?;
            let revoked_from: Vec<String> = connect_grantees(&before.effective)
                .filter(|g| *g != operator)
                .map(str::to_owned)
                .collect();
            for grantee in &revoked_from {
                revoke(client, db, "CONNECT", grantee)?;
            }
            let granted_to_operator = keep_operator_connect(client, db, operator)?;
            let can_still_connect = can_still_connect(client, db, operator)?;
            let report = BlockReport {
                revoked_from,
                granted_to_operator,
                can_still_connect,
            };
            Ok((before, report))
        },
    )
}

/// Grantees holding CONNECT directly (PUBLIC included).
pub(super) fn connect_grantees(effective: &[(String, String, bool)]) -> impl Iterator<Item = &str> {
    effective
        .iter()
        .filter(|(_, p, _)| p == "CONNECT")
        .map(|(g, _, _)| g.as_str())
}

/// Grants the operator CONNECT when, after the revokes, it no longer has it (it had it through
/// PUBLIC or a role). Superusers need no privilege. Returns whether it granted.
fn keep_operator_connect(client: &mut Client, db: &str, operator: &str) -> Result<bool, DbError> {
    let action = || format!("check that role \"{operator}\" can still connect to \"{db}\"");
    let row = client
        .query_opt(
            "SELECT r.rolsuper, pg_catalog.has_database_privilege(r.oid, d.oid, 'CONNECT') \
             FROM pg_catalog.pg_roles r, pg_catalog.pg_database d \
             WHERE r.rolname = $1 AND d.datname = $2",
            &[&operator, &db],
        )
        .map_err(|e| DbError::query(action(), e))?
        .ok_or_else(|| DbError::Refused(format!("role \"{operator}\" does not exist")))?;
    let (superuser, has_connect): (bool, bool) = (row.get(0), row.get(1));
    if superuser || has_connect {
        return Ok(false);
    }
    grant(client, db, operator, "CONNECT", false)?;
    Ok(true)
}

/// Login roles that can open a new session on `db` now, and why.
fn can_still_connect(
    client: &mut Client,
    db: &str,
    operator: &str,
) -> Result<Vec<StillAllowed>, DbError> {
    let rows = client
        .query(
            "SELECT r.rolname::text, r.rolname = $2, r.rolsuper, \
                    coalesce(pg_catalog.pg_has_role(r.oid, o.oid, 'USAGE'), false) \
             FROM pg_catalog.pg_roles r \
             CROSS JOIN pg_catalog.pg_database d \
             LEFT JOIN pg_catalog.pg_roles o ON o.rolname = $2 \
             WHERE d.datname = $1 AND r.rolcanlogin \
               AND (r.rolsuper OR pg_catalog.has_database_privilege(r.oid, d.oid, 'CONNECT')) \
             ORDER BY r.rolname COLLATE \"C\"",
            &[&db, &operator],
        )
        .map_err(|e| DbError::query(format!("list who can still connect to \"{db}\""), e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let (is_operator, superuser, member): (bool, bool, bool) =
                (r.get(1), r.get(2), r.get(3));
            let why = if is_operator {
                Why::Operator
            } else if superuser {
                Why::Superuser
            } else if member {
                Why::MemberOfOperator
            } else {
                Why::Other
            };
            StillAllowed {
                role: r.get(0),
                why,
            }
        })
        .collect())
}

/// Makes the database's effective privileges and connection limit equal to `snapshot` again,
/// then re-reads them and compares: an error naming every difference if they are not equal (and
/// then nothing was changed: it all happens in one transaction).
///
/// Idempotent: when the access already equals the snapshot nothing is done, so restoring twice,
/// or without a block before (recovery after a crash does not know whether `block` ran), is fine.
///
/// A snapshot whose ACL was NULL (the defaults, which follow the owner) gets its NULL back: the
/// catalog value itself, written into `pg_database` — which only a superuser may do. An operator
/// who is not a superuser gets the defaults granted explicitly instead: the same access, but an
/// ACL that no longer follows a change of owner; [`restore`] then returns
/// [`Restored::Equivalent`] so that nobody claims "exactly as before".
pub fn restore(client: &mut Client, snapshot: &AccessSnapshot) -> Result<Restored, DbError> {
    let db = snapshot.db.as_str();
    check_privilege_names(snapshot)?;
    in_transaction(
        client,
        &format!("restore the access to \"{db}\""),
        |client| {
            let now = self::snapshot(client, db)?;
            if !snapshot.differences(&now).is_empty() {
                let grantees: BTreeSet<&str> =
                    now.effective.iter().map(|(g, _, _)| g.as_str()).collect();
                for grantee in grantees {
                    revoke(client, db, "ALL", grantee)?;
                }
                for (grantee, privilege, grantable) in &snapshot.effective {
                    grant(client, db, grantee, privilege, *grantable)?;
                }
                if now.connlimit != snapshot.connlimit {
                    set_connlimit(client, db, snapshot.connlimit)?;
                }
            }
            let mut after = self::snapshot(client, db)?;
            if snapshot.acl_was_null && !after.acl_was_null && reset_acl_to_null(client, db)? {
                after = self::snapshot(client, db)?;
            }
            let differences = snapshot.differences(&after);
            if differences.is_empty() {
                Ok(if snapshot.acl_was_null == after.acl_was_null {
                    Restored::Exactly
                } else {
                    Restored::Equivalent
                })
            } else {
                Err(DbError::Refused(format!(
                    "the access to database \"{db}\" could not be restored as it was (nothing was \
                     changed): {}",
                    differences.join("; ")
                )))
            }
        },
    )
}

/// The privileges a clone gets while it is upgraded: those of `original` without CONNECT, which
/// only `operator` keeps (granted directly; a superuser needs none). The application's roles,
/// PUBLIC and the owner cannot connect to the half-upgraded clone; the cut-over gives it
/// `original` with [`restore`]. Sorted like [`AccessSnapshot::effective`].
pub fn closed_privileges(
    client: &mut Client,
    original: &AccessSnapshot,
    operator: &str,
) -> Result<Vec<(String, String, bool)>, DbError> {
    let superuser: bool = client
        .query_opt(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = $1",
            &[&operator],
        )
        .map_err(|e| DbError::query(format!("look up role \"{operator}\""), e))?
        .is_some_and(|r| r.get(0));
    let mut closed: Vec<(String, String, bool)> = original
        .effective
        .iter()
        .filter(|(_, p, _)| p != "CONNECT")
        .cloned()
        .collect();
    if !superuser {
        closed.push((operator.to_owned(), "CONNECT".to_owned(), false));
    }
    closed.sort();
    Ok(closed)
}

/// How [`restore`] put the access back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// The catalog values themselves: the ACL (NULL included) and the connection limit.
    Exactly,
    /// The same effective privileges, but the NULL ACL could not be written back (the operator
    /// is not a superuser): the defaults are granted explicitly.
    Equivalent,
}

impl Restored {
    /// How to say it: "exactly as before" only when it is.
    pub fn words(self) -> &'static str {
        match self {
            Restored::Exactly => "exactly as before",
            Restored::Equivalent => {
                "with the same privileges as before (granted explicitly: the default access list \
                 can be written back only by a superuser)"
            }
        }
    }
}

/// Sets the database's ACL back to NULL (the defaults, following the owner) when the session
/// is a superuser's — no SQL command does that, only a write to the catalog. Returns whether
/// it did.
fn reset_acl_to_null(client: &mut Client, db: &str) -> Result<bool, DbError> {
    let superuser: bool = client
        .query_one(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
            &[],
        )
        .map_err(|e| DbError::query("check whether pgstep runs as a superuser", e))?
        .get(0);
    if !superuser {
        return Ok(false);
    }
    client
        .execute(
            "UPDATE pg_catalog.pg_database SET datacl = NULL WHERE datname = $1",
            &[&db],
        )
        .map_err(|e| {
            DbError::query(
                format!("give database \"{db}\" back its default (NULL) access list"),
                e,
            )
        })?;
    Ok(true)
}

/// A snapshot comes from the journal, a file: its privilege names go into `%s` and must be
/// privilege keywords, nothing else.
fn check_privilege_names(snapshot: &AccessSnapshot) -> Result<(), DbError> {
    match snapshot
        .effective
        .iter()
        .find(|(_, p, _)| !DATABASE_PRIVILEGES.contains(&p.as_str()))
    {
        None => Ok(()),
        Some((_, p, _)) => Err(DbError::Refused(format!(
            "the saved access rights of database \"{}\" name an unknown privilege \"{p}\": \
             the journal is damaged; nothing was changed",
            snapshot.db
        ))),
    }
}

/// Runs `f` between BEGIN and COMMIT on `client`, rolling back when it fails. Plain statements
/// because [`exec_format`] takes the client itself, not a `Transaction`. READ WRITE: the session
/// may be on a database already made read-only for new sessions (the old one, in recovery).
pub(super) fn in_transaction<T>(
    client: &mut Client,
    action: &str,
    f: impl FnOnce(&mut Client) -> Result<T, DbError>,
) -> Result<T, DbError> {
    client
        .batch_execute("BEGIN READ WRITE")
        .map_err(|e| DbError::query(action, e))?;
    match f(client) {
        Ok(value) => {
            client
                .batch_execute("COMMIT")
                .map_err(|e| DbError::query(action, e))?;
            Ok(value)
        }
        Err(e) => {
            // The error is what matters; a failed ROLLBACK means the connection is gone, and
            // the server rolls back by itself then.
            let _ = client.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

/// `REVOKE privilege ON DATABASE db FROM grantee CASCADE`: CASCADE also takes back what the
/// grantee granted others with its grant option, or such grants would keep them in.
pub(super) fn revoke(
    client: &mut Client,
    db: &str,
    privilege: &str,
    grantee: &str,
) -> Result<(), DbError> {
    let result = if grantee == PUBLIC {
        exec_format(
            client,
            "REVOKE %s ON DATABASE %I FROM PUBLIC CASCADE",
            &[privilege, db],
        )
    } else {
        exec_format(
            client,
            "REVOKE %s ON DATABASE %I FROM %I CASCADE",
            &[privilege, db, grantee],
        )
    };
    result.map_err(|e| {
        DbError::query(
            format!("revoke {privilege} on database \"{db}\" from {grantee}"),
            e,
        )
    })
}

pub(super) fn grant(
    client: &mut Client,
    db: &str,
    grantee: &str,
    privilege: &str,
    grantable: bool,
) -> Result<(), DbError> {
    let template = match (grantee == PUBLIC, grantable) {
        (true, false) => "GRANT %s ON DATABASE %I TO PUBLIC",
        (true, true) => "GRANT %s ON DATABASE %I TO PUBLIC WITH GRANT OPTION",
        (false, false) => "GRANT %s ON DATABASE %I TO %I",
        (false, true) => "GRANT %s ON DATABASE %I TO %I WITH GRANT OPTION",
    };
    let args: Vec<&str> = if grantee == PUBLIC {
        vec![privilege, db]
    } else {
        vec![privilege, db, grantee]
    };
    exec_format(client, template, &args).map_err(|e| {
        DbError::query(
            format!("grant {privilege} on database \"{db}\" to {grantee}"),
            e,
        )
    })
}

fn set_connlimit(client: &mut Client, db: &str, limit: i32) -> Result<(), DbError> {
    let limit_text = limit.to_string();
    exec_format(
        client,
        "ALTER DATABASE %I CONNECTION LIMIT %s",
        &[db, &limit_text],
    )
    .map_err(|e| {
        DbError::query(
            format!("set the connection limit of database \"{db}\" to {limit}"),
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::AccessSnapshot;

    fn snap(effective: &[(&str, &str, bool)], connlimit: i32) -> AccessSnapshot {
        AccessSnapshot {
            db: "d".into(),
            acl_was_null: false,
            effective: effective
                .iter()
                .map(|(g, p, o)| ((*g).to_owned(), (*p).to_owned(), *o))
                .collect(),
            connlimit,
            owner: "o".into(),
        }
    }

    #[test]
    fn differences_name_each_grant_and_the_limit() {
        let was = snap(
            &[("PUBLIC", "CONNECT", false), ("app", "CONNECT", true)],
            -1,
        );
        let now = snap(&[("app", "CONNECT", false), ("app", "CREATE", false)], 5);
        assert_eq!(
            was.differences(&now),
            vec![
                "PUBLIC lacks CONNECT",
                "app has CONNECT without grant option, it had it with grant option",
                "app has CREATE, which it did not have",
                "the connection limit is 5, it was unlimited",
            ]
        );
    }

    #[test]
    fn a_null_acl_equals_the_same_grants_made_explicit() {
        let mut was = snap(&[("PUBLIC", "CONNECT", false)], -1);
        was.acl_was_null = true;
        let now = snap(&[("PUBLIC", "CONNECT", false)], -1);
        assert!(was.differences(&now).is_empty());
    }
}
