//! The banner step: the bundle's logon banner tells users the upgrade is under way (the
//! previous text journalled first, for the undo and the cut-over's reset). A rehearsal sets
//! none: users see nothing.

use crate::checklist::{StepOutput, StepStatus};
use crate::db::banner;
use crate::engine::plan::Mode;
use crate::events::Level;
use crate::executor::ctx::Ctx;
use crate::executor::error::StepResult;
use crate::executor::state::{Changes, Source};
use crate::journal::Change;

pub(in crate::executor) fn run(
    ctx: &mut Ctx,
    source: &Source,
    changes: &mut Changes,
    mode: Mode,
) -> StepResult {
    if mode == Mode::Rehearsal {
        return Ok((
            StepStatus::Skipped,
            StepOutput::Nothing {
                note: "rehearsal: no banner, users see nothing".into(),
            },
        ));
    }
    let db = source.name()?;
    let Some(b) = ctx.bundle()?.banner.clone() else {
        let note = "the bundle defines no logon banner: tell users by other means (mail, phone, a note at the front desk)";
        ctx.log(Level::Warning, note);
        return Ok((
            StepStatus::Skipped,
            StepOutput::Nothing { note: note.into() },
        ));
    };
    let message = source.banner_text(ctx.spec.bundle.as_ref());
    let mut session = ctx.session(&db)?;
    let previous = banner::get(&mut session.client, &b)?;
    let id = ctx.journal_change(Change::BannerSet {
        db: db.clone(),
        previous: previous.clone(),
    })?;
    banner::set(&mut session.client, &b, &message)?;
    ctx.journal_confirm(id);
    changes.banner_previous = Some(previous);
    ctx.log(Level::Info, format!("logon banner of \"{db}\": {message}"));
    Ok((
        StepStatus::Done,
        StepOutput::Banner {
            message: Some(message),
        },
    ))
}
