//! The failure path, with a fault injected at the end of every step (after the step has done
//! its work, so that the failure path must undo it): the source's content, its access and its
//! banner are as before, no clone is left behind, and the run is finished in its journal.
//! Fault points exist only in test builds (the `fault-injection` feature).

mod common;

use common::{Pg, Recorder, run, sample_bundle, source_state, yes};
use pgstep::bundle::Bundle;
use pgstep::checklist::{Outcome, PlanKind, StepId};

fn clinic_v1(bundle: &Bundle) -> Pg {
    common::clinic_v1(bundle, 300)
}

#[test]
fn a_failure_at_the_end_of_any_step_leaves_everything_as_it_was() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let before = source_state(&pg, "clinic_v1");
    let steps = PlanKind::Upgrade
        .steps()
        .iter()
        .filter(|s| **s != StepId::Confirmations);
    for &step in steps {
        let mut spec = pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None);
        spec.fault = Some(format!("{}:fail", step.key()));
        let out = run(spec, &yes());
        let Outcome::Failed {
            step: failed,
            what,
            advice,
            ..
        } = &out.outcome
        else {
            panic!("{step:?} did not fail: {}", out.explain())
        };
        assert_eq!(*failed, Some(step), "{what}");
        assert!(what.contains("injected fault"), "{step:?}: {what}");
        assert!(
            advice.is_empty(),
            "{step:?}: everything was undone: {advice:?}"
        );
        assert_eq!(
            source_state(&pg, "clinic_v1"),
            before,
            "{step:?}: content, banner, access and writability as before"
        );
        assert!(!pg.exists("clinic_v2"), "{step:?}: no clone left behind");
        assert!(
            pgstep::recover::interrupted(&pg.data_dir())
                .expect("journals")
                .is_empty(),
            "{step:?}: the run is finished in its journal"
        );
    }
    // And after all that, the upgrade itself still works.
    let out = run(
        pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None),
        &yes(),
    );
    assert!(out.ok(), "{}", out.explain());
}

#[test]
fn a_panic_in_the_executor_is_a_failed_step_and_recover_cleans_up() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let before = source_state(&pg, "clinic_v1");
    let mut spec = pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None);
    spec.fault = Some("clone_upgrade:panic".into());
    let out = run(spec, &yes());
    let Outcome::Failed {
        step, what, advice, ..
    } = &out.outcome
    else {
        panic!("{}", out.explain())
    };
    assert_eq!(*step, Some(StepId::CloneUpgrade));
    assert!(
        what.contains("internal error") && what.contains("injected panic"),
        "{what}"
    );
    assert!(
        advice.iter().any(|a| a.contains("pgstep recover")),
        "{advice:?}"
    );
    // The crash left the clone, the banner and the blocked access: the journal knows them.
    assert!(pg.exists("clinic_v2"));
    assert_eq!(
        pgstep::recover::interrupted(&pg.data_dir())
            .expect("journals")
            .len(),
        1
    );

    let mut rec = Recorder::default();
    let recovered = pgstep::recover::recover_all(
        &pg.settings("postgres"),
        &pg.data_dir(),
        None,
        false,
        &mut rec,
    )
    .expect("recover");
    assert_eq!(recovered.len(), 1);
    assert!(recovered[0].clean(), "{recovered:?}");
    assert_eq!(
        recovered[0].undone.len(),
        3,
        "clone, banner, access: {recovered:?}"
    );
    assert_eq!(source_state(&pg, "clinic_v1"), before);
    assert!(!pg.exists("clinic_v2"));
    // Recovering again finds nothing to do.
    assert!(
        pgstep::recover::recover_all(
            &pg.settings("postgres"),
            &pg.data_dir(),
            None,
            false,
            &mut rec
        )
        .expect("recover")
        .is_empty()
    );
}

#[test]
fn the_banner_is_set_during_the_run_and_reset_after_success() {
    let bundle = sample_bundle();
    let pg = clinic_v1(&bundle);
    let mut seen_during = None;
    let spec = pg.spec(PlanKind::Upgrade, &bundle, Some("clinic_v1"), None);
    let (checklist, outcome) = pgstep::drive::run(spec, &yes(), &mut |_, shown| {
        if let pgstep::session::Shown::Exec(pgstep::checklist::ExecEvent::StepDone {
            step: StepId::Banner,
            ..
        }) = shown
        {
            seen_during = pg.query_one::<Option<String>>(
                "clinic_v1",
                "SELECT message FROM clinic.logon_banner",
            );
        }
    });
    assert_eq!(outcome, Outcome::Success, "{checklist:?}");
    let during = seen_during.expect("a banner during the run");
    assert!(
        during.contains("upgrade clinic v1 → v2 in progress"),
        "{during}"
    );
    assert_eq!(
        pg.query_one::<Option<String>>("clinic_v2", "SELECT message FROM clinic.logon_banner"),
        None,
        "reset on the new database"
    );
}
