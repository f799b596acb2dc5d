//! The sample application's logon banner, set and put back with the bundle's own SQL.

mod common;

use common::{Pg, Recorder, sample_bundle, with_ctx};
use pgstep::bundle::{Banner, Version};
use pgstep::db::Session;
use pgstep::db::banner;
use pgstep::engine::bootstrap::bootstrap;

/// A cluster with clinic_v1 (no patients needed), and the bundle's banner SQL.
fn clinic() -> (Pg, Banner) {
    let bundle = sample_bundle();
    let pg = Pg::start();
    let mut rec = Recorder::default();
    with_ctx(&pg, &bundle, &mut rec, |ctx| {
        bootstrap(ctx, "clinic_v1", Some(Version::new(1, 0)), false)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let banner = bundle.banner.clone().expect("the sample has a banner");
    (pg, banner)
}

fn session(pg: &Pg) -> Session {
    Session::open(&pg.settings("clinic_v1"), &sample_bundle().session).expect("session")
}

fn stored(pg: &Pg) -> Option<String> {
    pg.query_one("clinic_v1", "SELECT message FROM clinic.logon_banner")
}

#[test]
fn set_then_restore_to_no_banner() {
    let (pg, b) = clinic();
    let mut s = session(&pg);
    assert_eq!(banner::get(&mut s.client, &b).expect("get"), None);

    let message = banner::in_progress_message("clinic", &Version::new(1, 0), &Version::new(2, 0));
    assert_eq!(
        message,
        "upgrade clinic v1 → v2 in progress: please log off; the system is back soon"
    );
    banner::set(&mut s.client, &b, &message).expect("set");
    assert_eq!(
        banner::get(&mut s.client, &b).expect("get"),
        Some(message.clone())
    );
    assert_eq!(stored(&pg), Some(message));

    banner::restore(&mut s.client, &b, None).expect("restore");
    assert_eq!(banner::get(&mut s.client, &b).expect("get"), None);
    assert_eq!(stored(&pg), None, "cleared: NULL, as before");
}

#[test]
fn a_previous_banner_with_quotes_comes_back_exactly() {
    let (pg, b) = clinic();
    let previous = "Dr. O'Brien's \"clinic\" — closed on Friday; call $1 or 555-0100 \\n";
    let mut s = session(&pg);
    banner::set(&mut s.client, &b, previous).expect("set the site's banner");
    let got = banner::get(&mut s.client, &b).expect("get");
    assert_eq!(got.as_deref(), Some(previous));

    banner::set(&mut s.client, &b, "upgrade in progress").expect("set");
    banner::restore(&mut s.client, &b, got.as_deref()).expect("restore");
    assert_eq!(stored(&pg).as_deref(), Some(previous));
}

#[test]
fn the_message_is_bound_never_spliced() {
    let (pg, b) = clinic();
    let mut s = session(&pg);
    let evil = "x'); DROP TABLE clinic.patient; --";
    banner::set(&mut s.client, &b, evil).expect("set");
    assert_eq!(stored(&pg).as_deref(), Some(evil));
    assert!(pg.query_one::<bool>(
        "clinic_v1",
        "SELECT to_regclass('clinic.patient') IS NOT NULL"
    ));
}

#[test]
fn a_set_that_stores_nothing_is_an_error_and_changes_nothing() {
    let (pg, b) = clinic();
    let mut s = session(&pg);
    banner::set(&mut s.client, &b, "before").expect("set");
    // A bundle whose set statement finds no row: the banner would silently not show.
    let wrong = Banner {
        set: "UPDATE clinic.logon_banner SET message = $1 WHERE id = 2".into(),
        clear: "UPDATE clinic.logon_banner SET message = 'not cleared' WHERE id = 1".into(),
        ..b.clone()
    };
    let err = banner::set(&mut s.client, &wrong, "upgrade in progress")
        .expect_err("nothing stored")
        .to_string();
    assert!(err.contains("\"before\""), "{err}");
    let err = banner::restore(&mut s.client, &wrong, None)
        .expect_err("not cleared")
        .to_string();
    assert!(err.contains("clear"), "{err}");
    assert_eq!(stored(&pg).as_deref(), Some("before"), "rolled back");
}

#[test]
fn the_banner_of_a_read_only_database_can_still_be_put_back() {
    let (pg, b) = clinic();
    banner::set(&mut session(&pg).client, &b, "upgrade in progress").expect("set");
    pg.exec(
        "postgres",
        "ALTER DATABASE clinic_v1 SET default_transaction_read_only = on",
    );
    let mut s = session(&pg);
    banner::restore(&mut s.client, &b, None).expect("restore");
    assert_eq!(stored(&pg), None);
}
