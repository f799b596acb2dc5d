//! A database's access control list as the server applies it: `aclexplode` over the ACL, the
//! defaults (`acldefault`) where none was ever granted. Read only.

use postgres::Client;

/// (grantee, privilege, grantable) of a database's effective ACL, grantee `"PUBLIC"` or a role
/// name: one entry per grantor (grantors are not returned), sorted by grantee, privilege and
/// grantable (bytewise).
pub fn effective_acl(
    client: &mut Client,
    db: &str,
) -> Result<Vec<(String, String, bool)>, postgres::Error> {
    let rows = client.query(
        "SELECT grantee, privilege, grantable FROM ( \
           SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END, \
                  a.privilege_type, a.is_grantable \
           FROM pg_catalog.pg_database d, pg_catalog.aclexplode(coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) a \
           WHERE d.datname = $1 \
         ) AS x (grantee, privilege, grantable) \
         ORDER BY grantee COLLATE \"C\", privilege COLLATE \"C\", grantable",
        &[&db],
    )?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// [`effective_acl`] with one entry per grantee and privilege, grantable when any grantor gave
/// it with grant option. Sorted.
pub fn one_per_privilege(
    client: &mut Client,
    db: &str,
) -> Result<Vec<(String, String, bool)>, postgres::Error> {
    Ok(merge_grantors(effective_acl(client, db)?))
}

/// Folds the entries of one grantee and privilege (adjacent, the input being sorted) into one.
fn merge_grantors(sorted: Vec<(String, String, bool)>) -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = Vec::with_capacity(sorted.len());
    for (grantee, privilege, grantable) in sorted {
        match out.last_mut() {
            Some(last) if last.0 == grantee && last.1 == privilege => last.2 |= grantable,
            _ => out.push((grantee, privilege, grantable)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(g: &str, p: &str, o: bool) -> (String, String, bool) {
        (g.into(), p.into(), o)
    }

    #[test]
    fn grantors_of_one_privilege_fold_into_one_entry() {
        let rows = vec![
            e("PUBLIC", "CONNECT", false),
            e("PUBLIC", "TEMPORARY", false),
            e("app", "CONNECT", false),
            e("app", "CONNECT", true),
            e("app", "CREATE", false),
            e("app", "CREATE", false),
        ];
        assert_eq!(
            merge_grantors(rows),
            vec![
                e("PUBLIC", "CONNECT", false),
                e("PUBLIC", "TEMPORARY", false),
                e("app", "CONNECT", true),
                e("app", "CREATE", false),
            ]
        );
    }
}
