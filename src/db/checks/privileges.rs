//! The privileges on the relations in both databases are unchanged.

use std::collections::{BTreeMap, BTreeSet};

use postgres::Client;

use super::{CheckResult, len_i64};
use crate::db::session::describe;
use crate::format::{name_list, thousands};

/// Privileges on one relation: (column or None for the relation itself, grantee, privilege)
/// → grantable. Grantee `PUBLIC` or a role name.
type Grants = BTreeMap<(Option<String>, String, String), bool>;

/// A table, view, sequence, materialized view or foreign table, with its owner, columns and
/// privileges.
#[derive(Debug, Default)]
struct RelationAcl {
    owner: String,
    columns: BTreeSet<String>,
    grants: Grants,
}

/// The privileges every role has on the tables, views and sequences present in both databases
/// are unchanged: real upgrade scripts drop and recreate tables and forget to grant again.
/// Compared: the relation's privileges (`aclexplode` of its ACL, the defaults when it is NULL),
/// column privileges of columns present in both, and the owner. Every role is included, the
/// superusers and the predefined `pg_*` roles too: a grant an application made to any of them
/// and lost is a loss. Grantors are not compared. One failed result per relation that differs,
/// naming role and privilege ("clinic.staff: clinic_app lost INSERT"), then a summary.
pub fn privileges(old: &mut Client, new: &mut Client, schemas: &[String]) -> Vec<CheckResult> {
    let read = |client: &mut Client, which: &str| {
        read_relation_acls(client, schemas).map_err(|e| {
            format!(
                "cannot read the privileges in the {which} database: {}",
                describe(&e)
            )
        })
    };
    let (old_acls, new_acls) = match read(old, "old").and_then(|o| Ok((o, read(new, "new")?))) {
        Ok(both) => both,
        Err(detail) => {
            return vec![CheckResult::new("privileges", false, detail)];
        }
    };
    let mut out = Vec::new();
    let mut compared = 0_usize;
    for (name, was) in &old_acls {
        let Some(now) = new_acls.get(name) else {
            continue; // dropped by the upgrade: the row-count summary lists tables
        };
        compared += 1;
        let changes = acl_changes(was, now);
        if !changes.is_empty() {
            out.push(CheckResult::new(
                format!("privileges: {name}"),
                false,
                format!("{name}: {}", changes.join("; ")),
            ));
        }
    }
    let changed: Vec<String> = out
        .iter()
        .filter_map(|r| r.name.strip_prefix("privileges: ").map(str::to_owned))
        .collect();
    let detail = if changed.is_empty() {
        format!(
            "{} tables, views and sequences: every role keeps its privileges",
            thousands(len_i64(compared))
        )
    } else {
        format!(
            "{} of {} tables, views and sequences lost or gained privileges: {}",
            thousands(len_i64(changed.len())),
            thousands(len_i64(compared)),
            name_list(&changed)
        )
    };
    out.push(CheckResult::new("privileges", changed.is_empty(), detail));
    out
}

/// How the privileges on one relation changed, one phrase per role and privilege.
fn acl_changes(was: &RelationAcl, now: &RelationAcl) -> Vec<String> {
    let mut out = Vec::new();
    if was.owner != now.owner {
        out.push(format!("owner changed from {} to {}", was.owner, now.owner));
    }
    // Privileges on a column the upgrade dropped went with it: not a loss.
    let kept = |column: &Option<String>| {
        column
            .as_ref()
            .is_none_or(|c| was.columns.contains(c) && now.columns.contains(c))
    };
    let on = |column: &Option<String>| match column {
        None => String::new(),
        Some(c) => format!(" on column {c}"),
    };
    for ((column, grantee, privilege), grantable) in &was.grants {
        if !kept(column) {
            continue;
        }
        let key = (column.clone(), grantee.clone(), privilege.clone());
        match now.grants.get(&key) {
            None => out.push(format!("{grantee} lost {privilege}{}", on(column))),
            Some(g) if g != grantable => out.push(format!(
                "{grantee} {} the grant option on {privilege}{}",
                if *grantable { "lost" } else { "gained" },
                on(column)
            )),
            Some(_) => {}
        }
    }
    for (column, grantee, privilege) in now.grants.keys() {
        let key = (column.clone(), grantee.clone(), privilege.clone());
        if kept(column) && !was.grants.contains_key(&key) {
            out.push(format!("{grantee} gained {privilege}{}", on(column)));
        }
    }
    out
}

/// Owner, columns and privileges of every relation in `schemas`, by quoted name.
fn read_relation_acls(
    client: &mut Client,
    schemas: &[String],
) -> Result<BTreeMap<String, RelationAcl>, postgres::Error> {
    let mut acls: BTreeMap<String, RelationAcl> = BTreeMap::new();
    let relations = client
        .query(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), \
                    pg_catalog.pg_get_userbyid(c.relowner)::text, \
                    ARRAY(SELECT pg_catalog.quote_ident(a.attname) FROM pg_catalog.pg_attribute a \
                          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname::text = ANY ($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
            &[&schemas],
        )
?;
    for r in &relations {
        let columns: Vec<String> = r.get(2);
        acls.insert(
            r.get(0),
            RelationAcl {
                owner: r.get(1),
                columns: columns.into_iter().collect(),
                grants: Grants::new(),
            },
        );
    }
    let grants = client.query(RELATION_GRANTS, &[&schemas])?;
    for r in &grants {
        let name: String = r.get(0);
        if let Some(acl) = acls.get_mut(&name) {
            acl.grants.insert((r.get(1), r.get(2), r.get(3)), r.get(4));
        }
    }
    Ok(acls)
}

/// (relation, column or NULL, grantee, privilege, grantable) for the relations of the schemas
/// `$1`: relation ACLs with the defaults for NULL (sequences have their own), and column ACLs
/// (NULL there means no column privileges). Grantable when any grantor gave it so.
const RELATION_GRANTS: &str = "\
WITH rel AS (
  SELECT c.oid, c.relkind, c.relowner, c.relacl,
         pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS name
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname::text = ANY ($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
), grants AS (
  SELECT rel.name, NULL::text AS col, a.grantee, a.privilege_type, a.is_grantable
  FROM rel, pg_catalog.aclexplode(coalesce(rel.relacl, pg_catalog.acldefault(
         CASE WHEN rel.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", rel.relowner))) a
  UNION ALL
  SELECT rel.name, pg_catalog.quote_ident(att.attname), a.grantee, a.privilege_type, a.is_grantable
  FROM rel
  JOIN pg_catalog.pg_attribute att
    ON att.attrelid = rel.oid AND att.attnum > 0 AND NOT att.attisdropped AND att.attacl IS NOT NULL,
  pg_catalog.aclexplode(att.attacl) a
)
SELECT name, col,
       CASE WHEN grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(grantee)::text END,
       privilege_type, bool_or(is_grantable)
FROM grants
GROUP BY 1, 2, 3, 4";
