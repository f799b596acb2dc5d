//! The old database after a cut-over: kept, read-only, and closed to users for good.

use postgres::Client;

use super::access::{connect_grantees, grant, in_transaction, revoke, snapshot};
use super::session::DbError;

/// After a successful upgrade the old database is kept, read-only (`default_transaction_read_only`,
/// set by the clone step), but not open to users: CONNECT is revoked from everyone but its owner,
/// and granted to the owner if it lacks it. Superusers can still connect.
///
/// To reopen it, as a superuser or its owner: `GRANT CONNECT ON DATABASE "old" TO PUBLIC` (or to
/// the roles that need it), and for writing `ALTER DATABASE "old" RESET
/// default_transaction_read_only`; or [`restore`](super::access::restore) the snapshot [`block`](super::access::block) returned, which the
/// journal keeps, for exactly the access it had before.
pub fn close_for_good(client: &mut Client, db: &str) -> Result<(), DbError> {
    in_transaction(
        client,
        &format!("close database \"{db}\" to users"),
        |client| {
            let now = snapshot(client, db)?;
            let others: Vec<String> = connect_grantees(&now.effective)
                .filter(|g| *g != now.owner)
                .map(str::to_owned)
                .collect();
            for grantee in &others {
                revoke(client, db, "CONNECT", grantee)?;
            }
            let owner_has_connect = connect_grantees(&now.effective).any(|g| g == now.owner);
            if !owner_has_connect {
                grant(client, db, &now.owner, "CONNECT", false)?;
            }
            Ok(())
        },
    )
}

/// Retires the old database after a cut-over: new sessions start read-only and only its owner
/// may connect; then reads both back, so that "kept read-only and closed" is said only when it
/// holds. Idempotent: recovery calls it again after a cut-over the run could not finish.
pub fn retire(client: &mut Client, db: &str) -> Result<(), DbError> {
    super::clone::set_read_only(client, db)?;
    close_for_good(client, db)?;
    let read_only: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s \
               JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase \
              WHERE d.datname = $1 AND s.setrole = 0 \
                AND 'default_transaction_read_only=on' = ANY (s.setconfig))",
            &[&db],
        )
        .map_err(|e| DbError::query(format!("read back whether \"{db}\" is read-only"), e))?
        .get(0);
    let now = snapshot(client, db)?;
    let open_to: Vec<&str> = connect_grantees(&now.effective)
        .filter(|g| *g != now.owner)
        .collect();
    match (read_only, open_to.is_empty()) {
        (true, true) => Ok(()),
        (false, _) => Err(DbError::Refused(format!(
            "\"{db}\" is not read-only after ALTER DATABASE … SET default_transaction_read_only"
        ))),
        (true, false) => Err(DbError::Refused(format!(
            "\"{db}\" can still be connected to by {}",
            open_to.join(", ")
        ))),
    }
}
