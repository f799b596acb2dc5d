//! Fingerprints against a real PostgreSQL: the same schema built in another order or under
//! another collation gives the same hash; any change to an object gives another hash and a
//! diff that names exactly that object.

mod common;

use common::Pg;
use pgstep::fingerprint::{self, Fingerprint};

/// The objects of a small application schema, one statement each, in dependency order.
const SCHEMA: &[&str] = &[
    "CREATE SCHEMA app",
    "CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%')",
    "CREATE TABLE app.\"Zeta\" (id bigserial PRIMARY KEY, label text NOT NULL DEFAULT 'z')",
    "CREATE TABLE app.alpha (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, zeta_id bigint REFERENCES app.\"Zeta\"(id), \
     mail app.email, mood app.mood DEFAULT 'ok', created timestamptz NOT NULL DEFAULT now(), CHECK (id > 0))",
    "CREATE UNIQUE INDEX alpha_mail_idx ON app.alpha (lower(mail))",
    "CREATE SEQUENCE app.ticket_seq START 100 INCREMENT 5",
    "CREATE VIEW app.v_alpha AS SELECT id, mail FROM app.alpha WHERE mood <> 'sad'",
    "CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created := now(); RETURN NEW; END $$",
    "CREATE TRIGGER alpha_touch BEFORE UPDATE ON app.alpha FOR EACH ROW EXECUTE FUNCTION app.touch()",
    "CREATE FUNCTION app.add(a int, b int DEFAULT 1) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b'",
];

fn fp(pg: &Pg, db: &str) -> Fingerprint {
    let mut c = pg.client(db);
    fingerprint::compute(&mut c, &["app".to_owned()]).expect("fingerprint")
}

fn build(pg: &Pg, db: &str, create: &str, statements: &[&str]) {
    pg.exec("postgres", &format!("CREATE DATABASE {db} {create}"));
    let mut c = pg.client(db);
    for s in statements {
        c.batch_execute(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

#[test]
fn same_schema_in_another_order_and_collation_gives_the_same_hash() {
    let pg = Pg::start();
    build(&pg, "a", "", SCHEMA);
    // The same objects created in another order (dependencies permitting), a dropped column
    // leaving a hole in the attribute numbers, and an ICU collation for the database.
    let mut reordered: Vec<&str> = vec![
        SCHEMA[0],
        SCHEMA[6],
        SCHEMA[1],
        SCHEMA[2],
        SCHEMA[10],
        SCHEMA[3],
        "ALTER TABLE app.\"Zeta\" ADD COLUMN gone int",
        "ALTER TABLE app.\"Zeta\" DROP COLUMN gone",
    ];
    reordered.extend_from_slice(&[SCHEMA[8], SCHEMA[4], SCHEMA[9], SCHEMA[7], SCHEMA[5]]);
    build(
        &pg,
        "b",
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LOCALE 'C'",
        &reordered,
    );
    let (a, b) = (fp(&pg, "a"), fp(&pg, "b"));
    assert_eq!(a.text, b.text);
    assert_eq!(a.hash, b.hash);
    assert!(a.lines > 20, "{}", a.text);
    // pgstep's own bookkeeping is left out.
    pg.exec(
        "b",
        "CREATE SCHEMA pgstep; CREATE TABLE pgstep.history (id int)",
    );
    assert_eq!(fp(&pg, "b").hash, a.hash);
}

#[test]
fn every_kind_of_change_gives_another_hash_and_names_the_object() {
    let pg = Pg::start();
    build(&pg, "base", "", SCHEMA);
    let base = fp(&pg, "base");
    // (change, what the diff must say)
    let cases: &[(&str, &str)] = &[
        (
            "ALTER TABLE app.alpha ADD COLUMN note text",
            "+ column app.alpha.note: text",
        ),
        (
            "ALTER TABLE app.alpha ALTER COLUMN created TYPE timestamp",
            "~ column app.alpha.created",
        ),
        (
            "ALTER TABLE app.alpha ALTER COLUMN mood DROP DEFAULT",
            "~ column app.alpha.mood",
        ),
        (
            "ALTER TABLE app.\"Zeta\" ALTER COLUMN label DROP NOT NULL",
            "~ column app.\"Zeta\".label",
        ),
        (
            "DROP INDEX app.alpha_mail_idx",
            "- index app.alpha_mail_idx",
        ),
        (
            "CREATE INDEX alpha_created_idx ON app.alpha (created)",
            "+ index app.alpha_created_idx",
        ),
        (
            "ALTER TABLE app.alpha ADD CONSTRAINT alpha_mood_ck CHECK (mood IS NOT NULL)",
            "+ constraint app.alpha.alpha_mood_ck",
        ),
        (
            "CREATE OR REPLACE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
            "~ function app.touch()",
        ),
        (
            "CREATE OR REPLACE VIEW app.v_alpha AS SELECT id, mail FROM app.alpha",
            "~ view app.v_alpha",
        ),
        (
            "ALTER TYPE app.mood ADD VALUE 'ecstatic'",
            "~ enum app.mood",
        ),
        ("ALTER DOMAIN app.email SET NOT NULL", "~ domain app.email"),
        (
            "ALTER SEQUENCE app.ticket_seq INCREMENT 10",
            "~ sequence app.ticket_seq",
        ),
        (
            "ALTER TABLE app.alpha DISABLE TRIGGER alpha_touch",
            "~ trigger app.alpha.alpha_touch",
        ),
        ("CREATE TABLE app.extra (x int)", "+ table app.extra"),
        (
            "ALTER TABLE app.alpha RENAME CONSTRAINT alpha_id_check TO alpha_positive",
            "- constraint app.alpha.alpha_id_check",
        ),
        (
            "ALTER TABLE app.alpha ENABLE ROW LEVEL SECURITY",
            "~ table app.alpha",
        ),
        (
            "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA app",
            "+ extension pg_trgm",
        ),
    ];
    for (n, (change, expected)) in cases.iter().enumerate() {
        let db = format!("c{n}");
        pg.exec("postgres", &format!("CREATE DATABASE {db} TEMPLATE base"));
        pg.exec(&db, change);
        let changed = fp(&pg, &db);
        assert_ne!(changed.hash, base.hash, "{change} must change the hash");
        let d = fingerprint::diff(&base.text, &changed.text).to_string();
        let (sign, object) = expected.split_at(1);
        let word = match sign {
            "+" => "added",
            "-" => "removed",
            _ => "changed",
        };
        assert!(
            d.contains(&format!("{sign} {word:<8} {}", object.trim_start())),
            "{change}:\n{d}"
        );
        // Only that object (and what belongs to it, such as an extension's members) differs.
        assert!(
            fingerprint::diff(&base.text, &changed.text).len() <= 2,
            "{change}:\n{d}"
        );
    }
}

#[test]
fn the_reference_file_round_trips_through_the_text() {
    let pg = Pg::start();
    build(&pg, "a", "", SCHEMA);
    let f = fp(&pg, "a");
    let (text, hash) =
        fingerprint::canonical_reference(&format!("# clinic v1, generated by pgstep\n{}", f.text));
    assert_eq!(text, f.text);
    assert_eq!(hash, f.hash);
    assert!(f.text.starts_with(fingerprint::FORMAT_LINE));
}
