//! The fingerprint step: the source's schema against the bundle's reference for its version.
//! A mismatch stops the real run unless the operator accepts it; a rehearsal notes it and
//! goes on.

use crate::checklist::{StepOutput, StepStatus};
use crate::engine::plan::Mode;
use crate::events::Level;
use crate::executor::ctx::Ctx;
use crate::executor::error::{StepResult, refused};
use crate::executor::state::{Changes, Record, Source};
use crate::fingerprint;

pub(in crate::executor) fn run(
    ctx: &mut Ctx,
    source: &Source,
    changes: &mut Changes,
    record: &mut Record,
    mode: Mode,
) -> StepResult {
    let db = source.name()?;
    let current = source.current()?;
    let bundle = ctx.bundle()?;
    let schemas = bundle.schemas.clone();
    let reference = bundle
        .reference_for(current)
        .map(|(v, r)| (v, r.text.clone(), r.hash.clone()));
    let mut session = ctx.session(&db)?;
    let fp =
        fingerprint::compute(&mut session.client, &schemas).map_err(|e| crate::db::describe(&e))?;
    let Some((version, text, hash)) = reference else {
        return Err(refused(format!(
            "the bundle has no reference fingerprint for version {current}"
        )));
    };
    let matches = fp.hash == hash;
    let diff = if matches {
        String::new()
    } else {
        fingerprint::diff(&text, &fp.text).to_string()
    };
    let status = if !matches && mode == Mode::Rehearsal {
        // A rehearsal notes the drift (the real run would stop here) and goes on.
        record.problems.push(format!("the schema differs from the reference for version {version}; the real run would stop at the fingerprint step:\n{diff}"));
        ctx.log(
            Level::Warning,
            "rehearsal: the schema differs from the reference; the real run would stop here",
        );
        StepStatus::Warning
    } else {
        let detail = if matches {
            format!("{} matches version {version}", fp.display_hash())
        } else {
            format!(
                "{} differs from the reference for version {version}:\n{diff}",
                fp.display_hash()
            )
        };
        ctx.check("source fingerprint", matches, detail);
        StepStatus::Done
    };
    let output = StepOutput::Fingerprint {
        hash: fp.hash.clone(),
        matches,
        reference: Some(version),
        diff,
    };
    changes.fingerprint = Some(fp);
    Ok((status, output))
}

/// The operator proceeds despite a mismatch: recorded in the history the cut-over writes.
pub(in crate::executor) fn accept(changes: &mut Changes) -> (&'static str, Option<StepOutput>) {
    changes.fingerprint_overridden = true;
    let output = changes
        .fingerprint
        .as_ref()
        .map(|fp| StepOutput::Fingerprint {
            hash: fp.hash.clone(),
            matches: false,
            reference: None,
            diff: "accepted".into(),
        });
    (
        "the operator proceeded despite the fingerprint mismatch",
        output,
    )
}
