//! The sanity checks after an upgrade, against a real PostgreSQL: clinic_v1 with sample data and
//! a clone of it ("the new database") that each test damages in its own way.

mod common;

use common::{Pg, Recorder, sample_bundle, with_ctx};
use pgstep::bundle::{Bundle, Version};
use pgstep::checklist::CheckResult;
use pgstep::checklist::PlanKind;
use pgstep::db::Session;
use pgstep::db::checks;
use pgstep::db::clone::{carry_over, create_clone};
use pgstep::engine::bootstrap::bootstrap;

const PATIENTS: u64 = 300;

/// clinic_v1 with sample data, and `clinic_new`, a clone of it.
fn clinic_and_clone(bundle: &Bundle) -> Pg {
    let pg = Pg::start();
    let mut rec = Recorder::default();
    with_ctx(&pg, bundle, &mut rec, |ctx| {
        bootstrap(ctx, "clinic_v1", Some(Version::new(1, 0)), false)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut session = Session::open(&pg.settings("clinic_v1"), &[]).expect("session");
    pgstep::sample::generate(&mut session, &bundle.root, PATIENTS, &mut rec).expect("generate");
    drop(session);
    // A column privilege, to see it carried and compared too.
    pg.exec(
        "clinic_v1",
        "GRANT SELECT (last_name), UPDATE (phone) ON clinic.patient TO clinic_report",
    );
    let mut maint = pg.client("postgres");
    create_clone(&mut maint, "clinic_v1", "clinic_new", None).expect("clone");
    carry_over(&mut maint, "clinic_v1", "clinic_new", None).expect("carry over");
    pg
}

/// The rows of clinic_v1's tables, as the summary writes them.
fn counts_total(pg: &Pg) -> String {
    let n: i64 = pg.query_one(
        "clinic_v1",
        "SELECT (SELECT count(*) FROM clinic.staff) + (SELECT count(*) FROM clinic.patient) \
              + (SELECT count(*) FROM clinic.encounter) + (SELECT count(*) FROM clinic.schema_version) \
              + (SELECT count(*) FROM clinic.logon_banner)",
    );
    let s = n.to_string();
    if s.len() > 3 {
        format!("{},{}", &s[..s.len() - 3], &s[s.len() - 3..])
    } else {
        s
    }
}

fn schemas(bundle: &Bundle) -> Vec<String> {
    bundle.schemas.clone()
}

fn summary<'a>(results: &'a [CheckResult], name: &str) -> &'a CheckResult {
    results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no {name} summary in {results:?}"))
}

fn failures(results: &[CheckResult]) -> Vec<&CheckResult> {
    results.iter().filter(|r| !r.ok).collect()
}

#[test]
fn row_counts_equal_on_a_clone_and_a_deleted_row_is_named() {
    let bundle = sample_bundle();
    let pg = clinic_and_clone(&bundle);
    let (mut old, mut new) = (pg.client("clinic_v1"), pg.client("clinic_new"));

    let results = checks::row_counts(&mut old, &mut new, &schemas(&bundle));
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].ok, "{results:?}");
    assert!(
        results[0].detail.starts_with("5 tables, ") && results[0].detail.ends_with("all equal"),
        "{}",
        results[0].detail
    );

    let encounters: i64 = pg.query_one("clinic_v1", "SELECT count(*) FROM clinic.encounter");
    pg.exec(
        "clinic_new",
        "DELETE FROM clinic.encounter WHERE id = (SELECT min(id) FROM clinic.encounter); \
         CREATE TABLE clinic.added (id int); \
         ALTER TABLE clinic.logon_banner RENAME TO \"Logon Banner\"",
    );
    let results = checks::row_counts(&mut old, &mut new, &schemas(&bundle));
    let failed = failures(&results);
    assert_eq!(failed.len(), 2, "{results:?}");
    assert_eq!(failed[0].name, "row count: clinic.encounter");
    let fmt = |n: i64| {
        let s = n.to_string();
        if s.len() > 3 {
            format!("{},{}", &s[..s.len() - 3], &s[s.len() - 3..])
        } else {
            s
        }
    };
    assert_eq!(
        failed[0].detail,
        format!(
            "clinic.encounter: the old database has {} rows, the new one {} (1 missing)",
            fmt(encounters),
            fmt(encounters - 1)
        )
    );
    let all = summary(&results, "row counts");
    assert!(!all.ok);
    assert!(
        all.detail
            .contains("dropped by the upgrade: clinic.logon_banner"),
        "{}",
        all.detail
    );
    assert!(
        all.detail
            .ends_with("added by the upgrade: clinic.\"Logon Banner\", clinic.added"),
        "{}",
        all.detail
    );
}

#[test]
fn count_rows_only_counts_tables_that_exist() {
    let bundle = sample_bundle();
    let pg = clinic_and_clone(&bundle);
    let mut c = pg.client("clinic_v1");
    let both = checks::tables_in_both(&mut c, &mut pg.client("clinic_new"), &schemas(&bundle))
        .expect("tables");
    assert!(both.contains(&"clinic.patient".to_owned()), "{both:?}");
    assert_eq!(
        checks::count_rows(&mut c, "clinic.patient").expect("count"),
        i64::try_from(PATIENTS).expect("fits")
    );
    let err = checks::count_rows(&mut c, "clinic.patient; DROP TABLE clinic.staff")
        .expect_err("not a table name")
        .to_string();
    assert!(err.contains("clinic.patient; DROP"), "{err}");
    assert!(checks::count_rows(&mut c, "clinic.nothing").is_err());
    assert!(pg.query_one::<bool>(
        "clinic_v1",
        "SELECT to_regclass('clinic.staff') IS NOT NULL"
    ));
}

#[test]
fn a_table_recreated_without_its_grants_is_named_with_role_and_privilege() {
    let bundle = sample_bundle();
    let pg = clinic_and_clone(&bundle);
    let (mut old, mut new) = (pg.client("clinic_v1"), pg.client("clinic_new"));
    let results = checks::privileges(&mut old, &mut new, &schemas(&bundle));
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].ok, "{results:?}");

    // What real scripts do: a new table in place of the old one, grants forgotten; and a
    // column privilege revoked.
    pg.exec(
        "clinic_new",
        "CREATE TABLE clinic.staff_new (LIKE clinic.staff INCLUDING ALL); \
         INSERT INTO clinic.staff_new SELECT * FROM clinic.staff; \
         DROP TABLE clinic.staff CASCADE; \
         ALTER TABLE clinic.staff_new RENAME TO staff; \
         REVOKE UPDATE (phone) ON clinic.patient FROM clinic_report; \
         GRANT DELETE ON clinic.logon_banner TO clinic_report",
    );
    let results = checks::privileges(&mut old, &mut new, &schemas(&bundle));
    let failed = failures(&results);
    let staff = failed
        .iter()
        .find(|r| r.name == "privileges: clinic.staff")
        .unwrap_or_else(|| panic!("{results:?}"));
    for lost in [
        "clinic_app lost INSERT",
        "clinic_app lost DELETE",
        "clinic_report lost SELECT",
    ] {
        assert!(staff.detail.contains(lost), "{lost}: {}", staff.detail);
    }
    assert!(
        staff.detail.starts_with("clinic.staff: "),
        "{}",
        staff.detail
    );
    let patient = failed
        .iter()
        .find(|r| r.name == "privileges: clinic.patient")
        .unwrap_or_else(|| panic!("{results:?}"));
    assert_eq!(
        patient.detail,
        "clinic.patient: clinic_report lost UPDATE on column phone"
    );
    let banner = failed
        .iter()
        .find(|r| r.name == "privileges: clinic.logon_banner")
        .unwrap_or_else(|| panic!("{results:?}"));
    assert_eq!(
        banner.detail,
        "clinic.logon_banner: clinic_report gained DELETE"
    );
    let all = summary(&results, "privileges");
    assert!(!all.ok);
    assert!(all.detail.contains("clinic.staff"), "{}", all.detail);
}

#[test]
fn the_version_marker_is_checked() {
    let bundle = sample_bundle();
    let pg = clinic_and_clone(&bundle);
    let mut new = pg.client("clinic_new");
    let ok = checks::version_marker(&mut new, &bundle.version_query, Version::new(1, 0));
    assert!(ok.ok, "{ok:?}");
    let wrong = checks::version_marker(&mut new, &bundle.version_query, Version::new(2, 0));
    assert!(!wrong.ok);
    assert_eq!(wrong.detail, "database \"clinic_new\" says 1, expected 2");
    let broken =
        checks::version_marker(&mut new, "SELECT nothing FROM nowhere", Version::new(1, 0));
    assert!(!broken.ok);
    assert!(broken.detail.contains("version query failed"), "{broken:?}");
}

#[test]
fn amcheck_checks_every_btree_index_and_leaves_nothing_behind() {
    let bundle = sample_bundle();
    let pg = clinic_and_clone(&bundle);
    let available: bool = pg.query_one(
        "postgres",
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck')",
    );
    let mut new = pg.client("clinic_new");
    let result = checks::amcheck(&mut new, &schemas(&bundle));
    assert!(result.ok, "{result:?}");
    if !available {
        eprintln!("amcheck is not available on this server: only the skip was tested");
        assert_eq!(
            result.detail,
            "amcheck is not installed on this server: skipped"
        );
        return;
    }
    let indexes: i64 = pg.query_one(
        "clinic_new",
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam \
         WHERE n.nspname = 'clinic' AND a.amname = 'btree'",
    );
    assert!(
        result
            .detail
            .starts_with(&format!("{indexes} btree indexes checked in")),
        "{indexes}: {}",
        result.detail
    );
    let leftovers: i64 = pg.query_one(
        "clinic_new",
        "SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'amcheck') \
              + (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstep_amcheck')",
    );
    assert_eq!(leftovers, 0);

    // A corrupt index: built with one order, checked with another (its comparison function
    // changed afterwards, as a collation change of the C library would do). It is named, and
    // the other indexes are still checked.
    pg.exec(
        "clinic_new",
        "CREATE FUNCTION clinic.cmp(int, int) RETURNS int LANGUAGE sql IMMUTABLE \
           AS 'SELECT CASE WHEN $1 < $2 THEN -1 WHEN $1 > $2 THEN 1 ELSE 0 END'; \
         CREATE OPERATOR CLASS clinic.odd_ops FOR TYPE int USING btree AS \
           OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, \
           FUNCTION 1 clinic.cmp(int, int); \
         CREATE TABLE clinic.odd (id int); \
         INSERT INTO clinic.odd SELECT generate_series(1, 2000); \
         CREATE INDEX odd_idx ON clinic.odd (id clinic.odd_ops); \
         CREATE OR REPLACE FUNCTION clinic.cmp(int, int) RETURNS int LANGUAGE sql IMMUTABLE \
           AS 'SELECT CASE WHEN $1 < $2 THEN 1 WHEN $1 > $2 THEN -1 ELSE 0 END'",
    );
    let result = checks::amcheck(&mut new, &schemas(&bundle));
    assert!(!result.ok, "{result:?}");
    assert!(
        result.detail.starts_with(&format!(
            "1 of {} btree indexes failed the check: clinic.odd_idx: ERROR XX002",
            indexes + 1
        )),
        "{}",
        result.detail
    );

    // Installed by the site: used where it is, and kept.
    pg.exec("clinic_new", "DROP TABLE clinic.odd");
    pg.exec("clinic_new", "CREATE EXTENSION amcheck");
    let result = checks::amcheck(&mut new, &schemas(&bundle));
    assert!(result.ok, "{result:?}");
    assert_eq!(
        pg.query_one::<i64>(
            "clinic_new",
            "SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'"
        ),
        1
    );
}

#[test]
fn analyze_gathers_statistics() {
    let bundle = sample_bundle();
    let pg = clinic_and_clone(&bundle);
    pg.exec(
        "clinic_new",
        "CREATE TABLE clinic.fresh WITH (autovacuum_enabled = off) AS \
         SELECT g AS id FROM generate_series(1, 1000) g",
    );
    let stats = |pg: &Pg| -> i64 {
        pg.query_one(
            "clinic_new",
            "SELECT count(*) FROM pg_stats WHERE schemaname = 'clinic' AND tablename = 'fresh'",
        )
    };
    assert_eq!(stats(&pg), 0);
    let result = checks::analyze(&mut pg.client("clinic_new"));
    assert!(result.ok, "{result:?}");
    assert!(
        result.detail.starts_with("statistics gathered in "),
        "{result:?}"
    );
    assert_eq!(stats(&pg), 1);
}

#[test]
fn a_real_upgrade_that_recreates_tables_keeps_counts_and_privileges() {
    let bundle = sample_bundle();
    let pg = clinic_and_clone(&bundle);
    pg.exec("postgres", "DROP DATABASE clinic_new");
    let ran = common::run(
        pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), Some("2")),
        &common::yes(),
    );
    assert!(ran.ok(), "{}", ran.explain());
    let (mut old, mut new) = (pg.client("clinic_v1"), pg.client("clinic_v2"));
    // The step adds a 'system' staff account: more rows is reported, and is not a failure.
    let counts = checks::row_counts(&mut old, &mut new, &schemas(&bundle));
    assert!(failures(&counts).is_empty(), "{counts:?}");
    assert_eq!(
        summary(&counts, "row counts").detail,
        format!(
            "5 tables, {} rows: none lost; more rows in the new database: clinic.staff (+1); \
             added by the upgrade: clinic.allergen, clinic.allergy",
            counts_total(&pg)
        ),
    );
    let privileges = checks::privileges(&mut old, &mut new, &schemas(&bundle));
    assert!(failures(&privileges).is_empty(), "{privileges:?}");
    let amcheck = checks::amcheck(&mut new, &schemas(&bundle));
    assert!(amcheck.ok, "{amcheck:?}");
}
